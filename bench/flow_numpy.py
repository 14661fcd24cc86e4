#!/usr/bin/python3
"""Plain numpy reference for bench_flow: one explicit Euler flow step
X <- X + h K(X) X (W_V = I) with dot scores x^T y / eps, for SoftMax and for
Sinkhorn (the symmetric averaged fixed point u <- sqrt(u / (K0 u)), the same
algorithm as attnflow's symmetric path, to max |u * (K0 u) - 1| <= tol,
warm-started from the previous step's u).

usage: flow_numpy.py n d steps [eps] [h] [tol]
prints: softmax_step SECONDS
        sinkhorn_step SECONDS ITERS_COLD ITERS_WARM
(per step, averaged over `steps` timed steps after one untimed step)."""
import sys
import time

import numpy as np

n, d, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
eps = float(sys.argv[4]) if len(sys.argv) > 4 else np.sqrt(d)
h = float(sys.argv[5]) if len(sys.argv) > 5 else 0.01
tol = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-9
rng = np.random.default_rng(1)
X0 = rng.standard_normal((n, d))


def softmax_step(X):
    C = (X @ X.T) / eps
    C -= C.max(axis=1, keepdims=True)
    np.exp(C, out=C)
    C /= C.sum(axis=1, keepdims=True)
    return X + h * (C @ X)


def sinkhorn_step(X, u):
    C = (X @ X.T) / eps
    C -= C.max()              # one global shift keeps K0 symmetric
    np.exp(C, out=C)          # K0
    if u is None:
        u = np.ones(n)
    it = 0
    while True:
        Ku = C @ u
        if np.max(np.abs(u * Ku - 1.0)) <= tol or it >= 10000:
            break
        u = np.sqrt(u / Ku)
        it += 1
    KX = u[:, None] * (C @ (u[:, None] * X))
    return X + h * KX, u, it


X = softmax_step(X0.copy())
t0 = time.perf_counter()
for _ in range(steps):
    X = softmax_step(X)
print("softmax_step %.6g" % ((time.perf_counter() - t0) / steps))

X, u, it_cold = sinkhorn_step(X0.copy(), None)
t0 = time.perf_counter()
its = 0
for _ in range(steps):
    X, u, it = sinkhorn_step(X, u)
    its += it
print("sinkhorn_step %.6g %d %.3g" % ((time.perf_counter() - t0) / steps, it_cold, its / steps))

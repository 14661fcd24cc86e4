#!/usr/bin/python3
"""Plain numpy reference for bench_heat.

usage: heat_numpy.py flow NORM n steps   (NORM: sinkhorn | softmax)
         the reference heat case: x ~ N(0, I) in 2-D, L2 scores eps = 0.05,
         v = -(2/eps)(K X - X), Euler h = 0.005; Sinkhorn by the symmetric
         averaged fixed point u <- sqrt(u / (K0 u)) to max |u (K0 u) - 1| <= 1e-9,
         warm-started from the previous step (the algorithm of attnflow's
         symmetric path). prints: seconds var_increment iterations
       heat_numpy.py pde N reps
         heat equation on an N x N periodic grid: one rfft2 of the initial
         density, then per solve a multiplication by exp(-|xi|^2 t) and an
         irfft2. prints: seconds_per_solve"""
import sys
import time

import numpy as np

mode = sys.argv[1]
if mode == "flow":
    norm, n, steps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    eps, h, tol = 0.05, 0.005, 1e-9
    X = np.random.default_rng(1).standard_normal((n, 2))
    v0 = X.var(axis=0).mean()
    u = np.ones(n)
    its = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        sq = (X * X).sum(axis=1)
        C = (X @ X.T - 0.5 * sq[:, None] - 0.5 * sq[None, :]) / eps
        np.minimum(C, 0.0, out=C)
        np.exp(C, out=C)                       # K0, entries in (0, 1]
        if norm == "softmax":
            KX = (C @ X) / C.sum(axis=1)[:, None]
        else:
            while True:
                Ku = C @ u
                if np.max(np.abs(u * Ku - 1.0)) <= tol or its > 10 ** 6:
                    break
                u = np.sqrt(u / Ku)
                its += 1
            KX = u[:, None] * (C @ (u[:, None] * X))
        X = X + h * (-(2.0 / eps) * (KX - X))
    dt = time.perf_counter() - t0
    print("%.6g %.6g %d" % (dt, X.var(axis=0).mean() - v0, its))
elif mode == "pde":
    N, reps = int(sys.argv[2]), int(sys.argv[3])
    L = 20.0
    x = -L / 2 + L * np.arange(N) / N
    rho0 = np.exp(-0.5 * (x[:, None] ** 2 + x[None, :] ** 2)) / (2 * np.pi)
    k0 = 2 * np.pi * np.fft.fftfreq(N, d=L / N)
    k1 = 2 * np.pi * np.fft.rfftfreq(N, d=L / N)
    xi2 = k0[:, None] ** 2 + k1[None, :] ** 2
    spec = np.fft.rfft2(rho0)
    t0 = time.perf_counter()
    for r in range(reps):
        rho = np.fft.irfft2(spec * np.exp(-xi2 * 0.5), s=(N, N))
    print("%.6g" % ((time.perf_counter() - t0) / reps))

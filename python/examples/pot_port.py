#!/usr/bin/env python3
"""A POT user's experiment, ported: entropic OT between two 2-D samples.

POT (the 'plot_OT_2D_samples' example) writes

    M = ot.dist(xs, xt); M /= M.max()
    G = ot.sinkhorn(a, b, M, reg)            # a, b uniform

attnflow works with scores C = -M / reg and returns K = n * G (rows sum to
1, columns to n/m) together with diagnostics. This script computes both,
prints the agreement, the iteration counts and the times.

usage: pot_port.py [n] [m] [reg]
"""
import sys
import time

import numpy as np

import attnflow

n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
m = int(sys.argv[2]) if len(sys.argv) > 2 else 200
reg = float(sys.argv[3]) if len(sys.argv) > 3 else 5e-2

rng = np.random.default_rng(0)
xs = rng.multivariate_normal([0, 0], [[1, 0], [0, 1]], n)
xt = rng.multivariate_normal([4, 4], [[1, -0.8], [-0.8, 1]], m)
M = ((xs[:, None, :] - xt[None, :, :]) ** 2).sum(-1)   # ot.dist(xs, xt)
M /= M.max()

C = -M / reg
attnflow.sinkhorn(C, bound="none")   # warm-up: OpenMP threads, page faults
t0 = time.perf_counter()
K, diag = attnflow.sinkhorn(C, tol=1e-9, max_iters=100000, bound="none")
t_af = time.perf_counter() - t0
G_af = K / n
print(f"attnflow: {diag.path} path, {diag.iterations} normalisations, "
      f"max(row, col) error {diag.errors[-1]:.2e}, {t_af * 1e3:.2f} ms")
# The exact Hilbert diameter costs O(n^2 m), more than the solve: asked for separately.
_, with_bound = attnflow.sinkhorn(C, tol=1e-9, max_iters=100000, bound="exact")
print(f"  Birkhoff-Hopf rate bound {with_bound.bound:.6f}, observed rate per full iteration "
      f"{(diag.col_errors[-1] / diag.col_errors[-3]):.4f}; cost <G, M> = {np.sum(G_af * M):.6f}")

try:
    import ot
except ImportError:
    print("POT is not installed (Debian: python3-pot): nothing to compare with")
    sys.exit(0)
a, b = np.full(n, 1 / n), np.full(m, 1 / m)
ot.sinkhorn(a, b, M, reg)           # warm-up
t0 = time.perf_counter()
G_pot, log = ot.sinkhorn(a, b, M, reg, numItermax=100000, stopThr=1e-12, log=True)
t_pot = time.perf_counter() - t0
print(f"POT:      {log['niter']} iterations, {t_pot * 1e3:.2f} ms")
print(f"max |G_attnflow - G_POT| = {np.abs(G_af - G_pot).max():.2e} "
      f"(relative to max G: {np.abs(G_af - G_pot).max() / G_pot.max():.2e})")

"""Baseline for bench_convex.c: the convex attention program in numpy.

Same problem as attnflow's af_convex_solve (linear attention, mean loss over
tokens + beta |Z|_*), same stopping rule (relative Fenchel duality gap <=
tol, checked every iteration), FISTA with singular-value thresholding and
gradient restart, fixed step 1/L from a power iteration (no backtracking).
Usage: convex_numpy.py X.bin Y.bin N n d c squared|ce beta tol
Prints: seconds iterations."""
import sys
import time

import numpy as np


def main():
    xf, yf = sys.argv[1], sys.argv[2]
    N, n, d, c = (int(v) for v in sys.argv[3:7])
    loss, beta, tol = sys.argv[7], float(sys.argv[8]), float(sys.argv[9])
    X = np.fromfile(xf).reshape(N, n, d)
    Y = np.fromfile(yf).reshape(N, n, c)
    T = N * n
    t0 = time.perf_counter()
    Gf = np.einsum('itl,itp->ilp', X, X).reshape(N, d * d)  # vec(G_i), (l, p)

    def forward(Z):  # Z: (d*d, d*c), rows (l, k), cols (p, o)
        Zp = Z.reshape(d, d, d, c).transpose(0, 2, 1, 3).reshape(d * d, d * c)  # rows (l,p), cols (k,o)
        M = (Gf @ Zp).reshape(N, d, c)
        return X @ M

    def backward(R):  # R: (N, n, c) unweighted per-token gradients
        dM = (X.transpose(0, 2, 1) @ R).reshape(N, d * c)
        Gp = (Gf.T @ dM) / T
        return Gp.reshape(d, d, d, c).transpose(0, 2, 1, 3).reshape(d * d, d * c)

    def loss_res(F):
        if loss == 'squared':
            E = F - Y
            return 0.5 * np.sum(E * E) / T, E
        m = F.max(axis=2, keepdims=True)
        e = np.exp(F - m)
        z = e.sum(axis=2, keepdims=True)
        val = np.sum(m[..., 0] + np.log(z[..., 0]) - np.sum(Y * F, axis=2)) / T
        return val, e / z - Y

    def dual(R, s):
        th = s * R
        if loss == 'squared':
            return -np.sum(0.5 * th * th + th * Y) / T
        q = th + Y
        q = q[q > 0]
        return -np.sum(q * np.log(q)) / T

    # Lipschitz constant of the gradient by power iteration
    v = np.ones((d * d, d * c))
    lam = 1.0
    for _ in range(30):
        v /= np.linalg.norm(v)
        u = backward(forward(v))
        lam = np.sum(u * v)
        v = u
    step = 1.0 / ((0.5 if loss == 'ce' else 1.0) * lam)

    Z = np.zeros((d * d, d * c))
    Yk = Z.copy()
    theta = 1.0
    it = 0
    while it < 20000:
        F = forward(Yk)
        _, R = loss_res(F)
        W = Yk - step * backward(R)
        U, S, Vt = np.linalg.svd(W, full_matrices=False)
        S = np.maximum(S - step * beta, 0)
        r = int(np.sum(S > 0))
        Zn = (U[:, :r] * S[:r]) @ Vt[:r]
        it += 1
        if np.sum((Yk - Zn) * (Zn - Z)) > 0:
            theta = 1.0
        th = (1 + np.sqrt(1 + 4 * theta * theta)) / 2
        Yk = Zn + ((theta - 1) / th) * (Zn - Z)
        theta = th
        Z = Zn
        # certificate at Z
        Fz = forward(Z)
        Lz, Rz = loss_res(Fz)
        G = backward(Rz)
        gn = np.linalg.svd(G, compute_uv=False)[0]
        P = Lz + beta * np.sum(S)
        D = dual(Rz, min(1.0, beta / gn) if gn > 0 else 1.0)
        if (P - D) / abs(P) <= tol:
            break
    print(f"{time.perf_counter() - t0:.6f} {it}")


if __name__ == '__main__':
    main()

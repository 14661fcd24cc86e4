"""Scores, SoftMax and Sinkhorn attention (docs/theory.md sections 1, 2)."""
import ctypes
import warnings
from dataclasses import dataclass

import numpy as np

from . import _structs as S
from ._lib import (lib, check, check_alloc, as_c, ptr, sinkhorn_type, rng, enum_from_name,
                   ConvergenceWarning, AF_EMAXITER, Error)


def softmax(C):
    """Row SoftMax of the scores C (n x m), computed stably: rows of exp(C)
    normalised to sum to 1."""
    C = as_c(C, 2, "C")
    K = np.empty_like(C)
    check(lib.af_softmax(C.shape[0], C.shape[1], ptr(C), ptr(K)))
    return K


@dataclass
class SinkhornDiagnostics:
    """What af_sinkhorn reports about one solve.

    iterations: normalisations done (a symmetric step counts as one);
    row_errors, col_errors: max_i |row_i - 1| and max_j |col_j m/n - 1| after
    each normalisation; converged: tolerance met or fixed count done; path:
    the path that produced the result ('scaling', 'log', 'symmetric', ...);
    fell_back: a scaling path was abandoned for log space; f, g: potentials,
    K_ij = exp(f_i + C_ij + g_j); hilbert_diameter: Delta of exp(C) (or an
    upper bound, bound_exact = False); bound: the Birkhoff-Hopf rate per full
    iteration, tanh(Delta/4)^2."""
    iterations: int
    row_errors: np.ndarray
    col_errors: np.ndarray
    converged: bool
    path: str
    fell_back: bool
    f: np.ndarray
    g: np.ndarray
    hilbert_diameter: float
    bound_exact: bool
    bound: float

    @property
    def errors(self):
        """max(row error, column error) after each normalisation."""
        return np.maximum(self.row_errors, self.col_errors)

    @property
    def potentials(self):
        return self.f, self.g


_BOUNDS = {"none": 0, "auto": 1, "exact": 2}


def sinkhorn(C, tol=1e-9, iters=None, max_iters=10000, path="auto", bound="auto",
             assume_symmetric=False):
    """Sinkhorn attention of the scores C (n x m): alternate row and column
    normalisation of exp(C), rows first, until max(row error, column error)
    <= tol, or exactly `iters` normalisations (iters=1 is SoftMax bit for
    bit). Columns are normalised to n/m, so K is n times the entropic OT plan
    between uniform weights for the cost -C.

    Returns (K, SinkhornDiagnostics). A tolerance not met within max_iters
    gives a ConvergenceWarning and diagnostics.converged = False. Invalid
    input (NaN scores, tol <= 0, ...) raises attnflow.Error."""
    C = as_c(C, 2, "C")
    n, m = C.shape
    if bound not in _BOUNDS:
        raise ValueError(f"bound: one of {sorted(_BOUNDS)} (got {bound!r})")
    opt = lib.af_sinkhorn_options_default()
    opt.path = sinkhorn_type(path)
    opt.tol = tol
    opt.iters = 0 if iters is None else int(iters)
    if iters is not None and iters < 1:
        raise ValueError(f"iters: must be >= 1 (got {iters})")
    opt.max_iters = int(max_iters)
    opt.assume_symmetric = int(bool(assume_symmetric))
    opt.compute_bound = _BOUNDS[bound]
    lib.af_clear_error()
    ws = check_alloc(lib.af_sinkhorn_alloc(n, m), "sinkhorn")
    try:
        K = np.empty_like(C)
        info = S.SinkhornInfo()
        st = lib.af_sinkhorn(ws, ptr(C), ctypes.byref(opt), ptr(K), ctypes.byref(info))
        if st and st != AF_EMAXITER:
            check(st)
        it = info.iterations
        diag = SinkhornDiagnostics(
            iterations=it,
            row_errors=np.ctypeslib.as_array(info.row_hist, (it,)).copy() if it else np.empty(0),
            col_errors=np.ctypeslib.as_array(info.col_hist, (it,)).copy() if it else np.empty(0),
            converged=bool(info.converged),
            path=lib.af_sinkhorn_type_name(info.path).decode() if info.path else "none",
            fell_back=bool(info.fell_back),
            f=np.ctypeslib.as_array(info.f, (n,)).copy(),
            g=np.ctypeslib.as_array(info.g, (m,)).copy(),
            hilbert_diameter=info.hilbert_diam, bound_exact=bool(info.bound_exact),
            bound=info.bh_rate)
        if st == AF_EMAXITER:
            warnings.warn(f"sinkhorn: {lib.af_last_error().decode()}", ConvergenceWarning,
                          stacklevel=2)
        return K, diag
    finally:
        lib.af_sinkhorn_free(ws)


def second_singular_value(K, tol=1e-12, max_iter=100000):
    """sigma_2(K) of a doubly stochastic n x n matrix: sigma_2^2 is the sharp
    asymptotic Sinkhorn rate per full iteration."""
    K = as_c(K, 2, "K")
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"K: must be square, got shape {K.shape}")
    out = ctypes.c_double()
    check(lib.af_second_singular_value(K.shape[0], ptr(K), tol, max_iter, ctypes.byref(out)))
    return out.value


_KINDS = {"dot": 0, "l2": 1}


def scores_params(kind="dot", eps=1.0, beta=1.0, A=None, d=None):
    """af_scores_params for kind 'dot' (beta x^T A y / eps) or 'l2'
    (-beta |x - y|^2 / (2 eps)); returns (params, A array kept alive)."""
    if kind not in _KINDS:
        raise ValueError(f"kind: 'dot' or 'l2' (got {kind!r})")
    p = lib.af_scores_params_default()
    p.kind = _KINDS[kind]
    p.eps = eps
    p.beta = beta
    Aa = None
    if A is not None:
        Aa = as_c(A, 2, "A")
        if d is not None and Aa.shape != (d, d):
            raise ValueError(f"A: expected shape ({d}, {d}), got {Aa.shape}")
        p.A = ptr(Aa)
    return p, Aa


def scores(X, Y=None, kind="dot", eps=1.0, beta=1.0, A=None):
    """Scores between queries X (n x d) and keys Y (m x d, default X):
    dot C_ij = (beta/eps) x_i^T A y_j, l2 C_ij = -(beta/eps) |x_i - y_j|^2 / 2.
    With Y None and A symmetric, C is exactly symmetric."""
    X = as_c(X, 2, "X")
    n, d = X.shape
    Yc = X if Y is None else as_c(Y, 2, "Y")
    if Yc.shape[1] != d:
        raise ValueError(f"Y: {Yc.shape[1]} columns, X has {d}")
    m = Yc.shape[0]
    p, Aa = scores_params(kind, eps, beta, A, d)
    C = np.empty((n, m))
    work = np.empty(n * d + n + m)
    check(lib.af_scores(ctypes.byref(p), n, m, d, ptr(X), ptr(Yc), ptr(C), ptr(work)))
    return C


def init_cloud(kind="gaussian", n=64, d=2, seed=1, mean=None, cov=None, components=3,
               spread=2.0, width=0.5, rho0=0.1):
    """The initial clouds of the CLI's --init (same generator, same seed ->
    the same tokens bit for bit): gaussian N(mean, cov), uniform [-1, 1]^d,
    mixture, sphere, equiangular."""
    p = lib.af_init_params_default()
    p.kind = enum_from_name(lib.af_init_kind_from_name, kind, "kind")
    p.n, p.d = n, d
    keep = []
    if mean is not None:
        m = as_c(np.broadcast_to(np.asarray(mean, dtype=float), (d,)), 1, "mean")
        keep.append(m)
        p.mean = ptr(m)
    if cov is not None:
        c = np.asarray(cov, dtype=float)
        c = c * np.eye(d) if c.ndim == 0 else (np.diag(c) if c.ndim == 1 else c)
        c = as_c(c, 2, "cov")
        keep.append(c)
        p.cov = ptr(c)
    p.components, p.spread, p.width, p.rho0 = components, spread, width, rho0
    X = np.empty((n, d))
    r = rng(seed)
    try:
        check(lib.af_init_cloud(ctypes.byref(p), r, ptr(X)))
    finally:
        lib.gsl_rng_free(r)
    return X

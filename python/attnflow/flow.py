"""Token clouds moving under self-attention (docs/theory.md sections 3, 4, 7)."""
import ctypes
import math

import numpy as np

from . import _structs as S
from ._lib import (lib, check, check_alloc, as_c, ptr, inplace, enum_from_name)
from .attention import scores_params

_WARM = {"none": 0, "last": 1, "extrapolate": 2}


class Flow:
    """A particle flow workspace for n tokens in dimension d (af_flow_ws).

        dx_i/dt = sum_j K_ij W_V x_j          (skip=False)
        dx_i/dt = W_V (sum_j K_ij x_j - x_i)  (skip=True)

    K is the SoftMax matrix of the scores (norm='softmax'; usa=True divides
    by n instead of the row sum) or the Sinkhorn matrix (norm='sinkhorn', to
    `tol`, or exactly `iters` normalisations). Scores as attnflow.scores.
    W_V is V (d x d) or value * I. geometry='sphere' projects the field on
    the tangent space and renormalises after each step. Defaults are the
    CLI's (`attnflow flow`).

    Token arrays are (n, d) float64, C-contiguous: step and integrate move
    them in place (no copy), velocity and kernel return new arrays."""

    def __init__(self, n, d, norm="softmax", scores="dot", eps=1.0, beta=1.0, A=None, V=None,
                 value=1.0, skip=False, usa=False, geometry="euclid", integrator="rk4",
                 atol=1e-8, rtol=1e-8, tol=1e-9, max_iters=10000, iters=None,
                 warm="extrapolate"):
        self._ws = self._obs = None
        self.n, self.d = int(n), int(d)
        p = lib.af_flow_params_default(self.n, self.d)
        p.norm = enum_from_name(lib.af_flow_norm_from_name, norm, "norm")
        p.scores, Aa = scores_params(scores, eps, beta, A, self.d)
        Va = None
        if V is not None:
            Va = as_c(V, 2, "V")
            if Va.shape != (self.d, self.d):
                raise ValueError(f"V: expected shape ({self.d}, {self.d}), got {Va.shape}")
            p.V = ptr(Va)
        p.value = value
        p.skip, p.usa = int(bool(skip)), int(bool(usa))
        p.geometry = enum_from_name(lib.af_flow_geometry_from_name, geometry, "geometry")
        p.integrator = enum_from_name(lib.af_flow_integrator_from_name, integrator, "integrator")
        p.atol, p.rtol = atol, rtol
        p.sinkhorn.tol = tol
        p.sinkhorn.max_iters = int(max_iters)
        if iters is not None and iters < 1:
            raise ValueError(f"iters: must be >= 1 (got {iters})")
        p.sinkhorn.iters = 0 if iters is None else int(iters)
        if warm not in _WARM:
            raise ValueError(f"warm: one of {sorted(_WARM)} (got {warm!r})")
        p.warm_start = _WARM[warm]
        lib.af_clear_error()
        self._ws = check_alloc(lib.af_flow_alloc(ctypes.byref(p)), "flow")  # copies A and V
        self._scores = dict(kind=scores, eps=eps, beta=beta, A=None if Aa is None else Aa.copy())
        self._tol, self._max_iters = tol, max_iters

    def close(self):
        if self._ws:
            lib.af_flow_free(self._ws)
            self._ws = None
        if self._obs:
            self._obs.close()
            self._obs = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _x(self, X, name="X"):
        X = as_c(X, 2, name)
        if X.shape != (self.n, self.d):
            raise ValueError(f"{name}: expected shape ({self.n}, {self.d}), got {X.shape}")
        return X

    def velocity(self, X):
        """The field T(X), an (n, d) array."""
        X = self._x(X)
        out = np.empty_like(X)
        check(lib.af_flow_velocity(self._ws, ptr(X), ptr(out)))
        return out

    def attention(self, X):
        """Attention output K(X) X W_V^T (no skip, no projection)."""
        X = self._x(X)
        out = np.empty_like(X)
        check(lib.af_flow_attention(self._ws, ptr(X), ptr(out)))
        return out

    def kernel(self, X):
        """The attention matrix K(X) (n x n) the velocity uses."""
        X = self._x(X)
        K = np.empty((self.n, self.n))
        check(lib.af_flow_kernel(self._ws, ptr(X), ptr(K)))
        return K

    def project(self, X):
        """On the sphere, normalise every token in place (else nothing)."""
        check(lib.af_flow_project(self._ws, ptr(self._x(inplace(X)))))
        return X

    def step(self, X, h):
        """One integrator step of size h > 0, in place; returns X."""
        check(lib.af_flow_step(self._ws, ptr(self._x(inplace(X))), h))
        return X

    def integrate(self, X, T, h):
        """ceil(T / h) equal steps covering [0, T], in place; returns X."""
        check(lib.af_flow_integrate(self._ws, ptr(self._x(inplace(X))), T, h))
        return X

    def pure_layer(self, X):
        """One pure attention layer X <- K(X) X W_V^T (Dong et al.), in place."""
        check(lib.af_flow_pure_layer(self._ws, ptr(self._x(inplace(X)))))
        return X

    def trajectory(self, X0, T, dt, save_every=1, pure=False):
        """Integrates a copy of X0 to time T the way `attnflow flow` does
        (steps ending at s*dt, the last at T; pure=True: --pure layers) and
        returns (times, positions) with positions of shape (times, n, d):
        t = 0, every save_every steps, and T. X0 is projected first."""
        X = np.array(self._x(X0, "X0"), dtype=np.float64, order="C", copy=True)
        nsteps = math.ceil(T / dt - 1e-9) if T > 0 else 0
        self.project(X)
        times, frames = [0.0], [X.copy()]
        t = 0.0
        for s in range(1, nsteps + 1):
            t_next = T if s == nsteps else s * dt
            if pure:
                self.pure_layer(X)
            else:
                self.step(X, t_next - t)
            t = t_next
            if s % save_every == 0 or s == nsteps:
                times.append(t)
                frames.append(X.copy())
        return np.array(times), np.stack(frames)

    @property
    def stats(self):
        """Counters since allocation: evaluations, sinkhorn_iterations,
        last_iterations, steps, rejected."""
        st = S.FlowStats()
        lib.af_flow_get_stats(self._ws, ctypes.byref(st))
        return {k: getattr(st, k) for k, _ in S.FlowStats._fields_}

    def reset_potentials(self):
        """Forget the Sinkhorn warm start (before reusing on another cloud)."""
        lib.af_flow_reset_potentials(self._ws)

    def observables(self, X, energy=True, cluster_tol=1e-3):
        """The observables of the CLI's --observables file for cloud X, as a
        dict: mean, var, energy, colsum_err, rank_res, clusters, min_dist,
        max_ip (docs/cli.md). The energy is NaN for non-symmetric scores."""
        if self._obs is None or self._obs.key != (energy, cluster_tol):
            if self._obs:
                self._obs.close()
            self._obs = Observables(self.n, self.d, energy=energy, cluster_tol=cluster_tol,
                                    tol=self._tol, max_iters=self._max_iters, **self._scores)
        return self._obs(X)


class Observables:
    """af_obs_ws: every observable of a cloud at once (docs/theory.md 3, 4, 7)."""

    def __init__(self, n, d, kind="dot", eps=1.0, beta=1.0, A=None, energy=True,
                 cluster_tol=1e-3, tol=1e-9, max_iters=10000):
        self._ws = None
        self.n, self.d = n, d
        self.key = (energy, cluster_tol)
        p = lib.af_obs_params_default(n, d)
        p.scores, Aa = scores_params(kind, eps, beta, A, d)
        p.energy = int(bool(energy))
        p.cluster_tol = cluster_tol
        p.sinkhorn.tol = tol
        p.sinkhorn.max_iters = int(max_iters)
        lib.af_clear_error()
        self._ws = check_alloc(lib.af_obs_alloc(ctypes.byref(p)), "observables")

    def __call__(self, X):
        X = as_c(X, 2, "X")
        if X.shape != (self.n, self.d):
            raise ValueError(f"X: expected shape ({self.n}, {self.d}), got {X.shape}")
        mean = np.empty(self.d)
        v = S.ObsValues()
        check(lib.af_obs_compute(self._ws, ptr(X), ptr(mean), ctypes.byref(v)))
        out = {"mean": mean}
        out.update({k: getattr(v, k) for k, _ in S.ObsValues._fields_})
        return out

    def close(self):
        if self._ws:
            lib.af_obs_free(self._ws)
            self._ws = None

    def __del__(self):
        self.close()

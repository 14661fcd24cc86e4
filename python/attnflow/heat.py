"""The heat equation d/dt rho = kappa Laplacian(rho) on a periodic box,
solved exactly per Fourier mode with FFTW (docs/theory.md section 5)."""
import ctypes

import numpy as np

from . import _structs as S
from ._lib import lib, check, check_alloc, as_c, ptr, rng, enum_from_name

FFTW_MEASURE = 0
FFTW_ESTIMATE = 1 << 6


class Density:
    """An analytic density whose heat evolution is known in closed form:
    'gaussian' N(mean, sigma^2 I), 'mixture' sum_k w_k N(centre_k, width^2 I),
    'uniform' on the cube [mean - half_width, mean + half_width]^d."""

    def __init__(self, kind="gaussian", d=1, mean=None, sigma=1.0, half_width=1.0,
                 centres=None, weights=None, width=0.5):
        p = lib.af_density_default()
        p.kind = enum_from_name(lib.af_density_kind_from_name, kind, "kind")
        p.d = d
        self._keep = []
        if mean is not None:
            m = as_c(np.broadcast_to(np.asarray(mean, dtype=float), (d,)), 1, "mean")
            self._keep.append(m)
            p.mean = ptr(m)
        p.sigma, p.half_width, p.width = sigma, half_width, width
        if centres is not None:
            c = as_c(np.asarray(centres, dtype=float).reshape(-1, d), 2, "centres")
            self._keep.append(c)
            p.centres, p.components = ptr(c), c.shape[0]
            if weights is not None:
                w = as_c(weights, 1, "weights")
                if w.shape[0] != c.shape[0]:
                    raise ValueError(f"weights: {w.shape[0]} values for {c.shape[0]} centres")
                self._keep.append(w)
                p.weights = ptr(w)
        self.params = p
        self.d = d
        check(lib.af_density_check(ctypes.byref(p)))

    def variance(self, s=0.0, coord=0):
        """Per-coordinate variance of the solution at s = kappa t."""
        return lib.af_density_variance(ctypes.byref(self.params), s, coord)

    def sample(self, n, seed=1):
        """n independent draws (n x d) with the CLI's generator."""
        X = np.empty((n, self.d))
        r = rng(seed)
        try:
            check(lib.af_density_sample(ctypes.byref(self.params), r, n, ptr(X)))
        finally:
            lib.gsl_rng_free(r)
        return X


class Heat:
    """The FFTW solver on the periodic box [-half, half)^d with N nodes per
    coordinate (d = 1 or 2): plan once, then set an initial condition and
    evolve to as many times as wanted (one inverse FFT each).

        h = attnflow.Heat(d=2, N=256, half=8.0)
        h.set_density(attnflow.Density('gaussian', d=2))
        rho = h.evolve(0.5)            # (N, N) array, rho[i, j] = rho(x1_i, x2_j)
    """

    def __init__(self, d=1, N=256, half=8.0, fftw="estimate"):
        self._plan = None
        g = S.Grid()
        g.d = d
        for k in range(min(d, 2)):  # af_grid_check reports any other d
            g.N[k], g.lo[k], g.L[k] = N, -half, 2.0 * half
        check(lib.af_grid_check(ctypes.byref(g)))
        flags = {"estimate": FFTW_ESTIMATE, "measure": FFTW_MEASURE}.get(fftw)
        if flags is None:
            raise ValueError(f"fftw: 'estimate' or 'measure' (got {fftw!r})")
        self.grid = g
        self.d, self.N = d, N
        self.shape = (N,) * d
        lib.af_clear_error()
        self._plan = check_alloc(lib.af_heat_plan_alloc(ctypes.byref(g), flags), "heat plan")

    def close(self):
        if self._plan:
            lib.af_heat_plan_free(self._plan)
            self._plan = None

    def __del__(self):
        self.close()

    @property
    def nodes(self):
        """Node coordinates per axis (one array of N values for each coordinate)."""
        return [self.grid.lo[k] + np.arange(self.N) * self.grid.L[k] / self.N for k in range(self.d)]

    def set(self, rho0):
        """Initial condition from node values (array of shape (N,)*d)."""
        rho0 = as_c(rho0, None, "rho0")
        if rho0.shape != self.shape:
            raise ValueError(f"rho0: expected shape {self.shape}, got {rho0.shape}")
        check(lib.af_heat_set(self._plan, ptr(rho0)))

    def set_density(self, density):
        """Initial condition from the closed-form spectrum of an analytic density."""
        check(lib.af_heat_set_density(self._plan, ctypes.byref(density.params)))

    def evolve(self, t, kappa=1.0):
        """rho(t) on the nodes, an array of shape (N,)*d."""
        rho = np.empty(self.shape)
        check(lib.af_heat_evolve(self._plan, kappa, t, ptr(rho)))
        return rho

    @property
    def mass(self):
        return lib.af_heat_initial_mass(self._plan)

    def exact(self, density, t, kappa=1.0):
        """The free-space solution from `density` at time t on the nodes."""
        rho = np.empty(self.shape)
        check(lib.af_density_on_grid(ctypes.byref(density.params), kappa * t,
                                     ctypes.byref(self.grid), ptr(rho)))
        return rho

    def wrap_error(self, rho0, t, kappa=1.0):
        """(L1, max) difference between this box's solution and the one on a
        box twice as large: the error of the periodic wrap."""
        rho0 = as_c(rho0, None, "rho0")
        if rho0.shape != self.shape:
            raise ValueError(f"rho0: expected shape {self.shape}, got {rho0.shape}")
        l1, linf = ctypes.c_double(), ctypes.c_double()
        check(lib.af_heat_wrap_error(ctypes.byref(self.grid), ptr(rho0), kappa, t,
                                     ctypes.byref(l1), ctypes.byref(linf)))
        return l1.value, linf.value

"""Loading libattnflow and calling it: prototypes, errors, array helpers.

The shared library is found, in this order, at $ATTNFLOW_LIB, at the path
`make install` recorded (_installed.py), in the source tree's build/ folder
(python/ next to build/), and finally by its soname through the dynamic
loader (LD_LIBRARY_PATH, ldconfig).
"""
import ctypes
import ctypes.util
import os

import numpy as np

from . import _structs as S

SONAME = "libattnflow.so.0"


def _candidates():
    env = os.environ.get("ATTNFLOW_LIB")
    if env:
        yield env
        return
    try:
        from ._installed import LIBRARY
        yield LIBRARY
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "build", "libattnflow.so")
    found = ctypes.util.find_library("attnflow")
    if found:
        yield found
    yield SONAME


def _load():
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append(f"{path}: no such file")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise ImportError("attnflow: cannot load the shared library libattnflow "
                      "(set ATTNFLOW_LIB, or run make install): " + "; ".join(errors))


lib = _load()

# ---- errors ---------------------------------------------------------------

STATUS_NAMES = ["AF_SUCCESS", "AF_EINVAL", "AF_EDOM", "AF_ENOMEM", "AF_EIO", "AF_EFORMAT",
                "AF_EBADLEN", "AF_EMAXITER", "AF_ENUMERIC", "AF_ELIB"]
AF_EMAXITER = 7

lib.af_last_error.restype = ctypes.c_char_p
lib.af_last_error.argtypes = []
lib.af_strerror.restype = ctypes.c_char_p
lib.af_strerror.argtypes = [ctypes.c_int]
lib.af_clear_error.restype = None
lib.af_clear_error.argtypes = []
lib.af_version.restype = ctypes.c_char_p
lib.af_version.argtypes = []


class Error(RuntimeError):
    """A libattnflow call failed. `status` is the af_status name (e.g.
    'AF_EINVAL'), `code` its number, and the message is af_last_error()."""

    def __init__(self, code, message):
        self.code = int(code)
        self.status = STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else str(code)
        self.message = message
        super().__init__(f"{message} ({self.status})")


class ConvergenceWarning(RuntimeWarning):
    """A tolerance was not met within the iteration bound (AF_EMAXITER);
    the result is still returned, with diagnostics saying so."""


def last_error():
    return lib.af_last_error().decode(errors="replace")


def check(status):
    """Raises Error for a non-zero af_status."""
    if status:
        msg = last_error() or lib.af_strerror(status).decode()
        raise Error(status, msg)
    return status


def check_alloc(ptr, what):
    """A NULL workspace: the library's message says why."""
    if not ptr:
        raise Error(1, last_error() or f"{what}: allocation failed")
    return ptr


# ---- arrays ---------------------------------------------------------------

DP = ctypes.POINTER(ctypes.c_double)


def as_c(a, ndim=None, name="array"):
    """A C-contiguous float64 view of a (a copy only when a is not one)."""
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    return arr


def ptr(arr):
    return None if arr is None else arr.ctypes.data_as(DP)


def inplace(X, name="X"):
    """X itself, checked to be a writable C-contiguous float64 2-D array."""
    if not (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
            and X.flags.c_contiguous and X.flags.writeable):
        raise ValueError(f"{name}: in-place operations need a writable C-contiguous float64 "
                         "2-D array (np.ascontiguousarray(X, dtype=float))")
    return X


def sinkhorn_type(name):
    """The const af_sinkhorn_type * of a path name ('auto' -> NULL)."""
    if name in (None, "auto"):
        return None
    sym = {"scaling": "af_sinkhorn_scaling", "log": "af_sinkhorn_log",
           "symmetric": "af_sinkhorn_symmetric", "symmetric-log": "af_sinkhorn_symmetric_log",
           "symmetric_log": "af_sinkhorn_symmetric_log"}.get(name)
    if sym is None:
        raise ValueError(f"path: unknown Sinkhorn path '{name}' "
                         "(auto, scaling, log, symmetric, symmetric-log)")
    return ctypes.c_void_p.in_dll(lib, sym).value


# ---- prototypes -------------------------------------------------------------

c_size = ctypes.c_size_t
c_int = ctypes.c_int
c_double = ctypes.c_double
vp = ctypes.c_void_p


def proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


proto("af_softmax", c_int, c_size, c_size, DP, DP)
proto("af_sinkhorn_options_default", S.SinkhornOptions)
proto("af_sinkhorn_alloc", vp, c_size, c_size)
proto("af_sinkhorn_free", None, vp)
proto("af_sinkhorn", c_int, vp, DP, ctypes.POINTER(S.SinkhornOptions), DP,
      ctypes.POINTER(S.SinkhornInfo))
proto("af_sinkhorn_type_name", ctypes.c_char_p, vp)
proto("af_second_singular_value", c_int, c_size, DP, c_double, c_size, DP)
proto("af_scores_params_default", S.ScoresParams)
proto("af_scores", c_int, ctypes.POINTER(S.ScoresParams), c_size, c_size, c_size, DP, DP, DP, DP)
proto("af_init_params_default", S.InitParams)
proto("af_init_kind_from_name", c_int, ctypes.c_char_p, ctypes.POINTER(c_int))
proto("af_init_cloud", c_int, ctypes.POINTER(S.InitParams), vp, DP)
proto("af_flow_params_default", S.FlowParams, c_size, c_size)
proto("af_flow_alloc", vp, ctypes.POINTER(S.FlowParams))
proto("af_flow_free", None, vp)
proto("af_flow_velocity", c_int, vp, DP, DP)
proto("af_flow_attention", c_int, vp, DP, DP)
proto("af_flow_kernel", c_int, vp, DP, DP)
proto("af_flow_project", c_int, vp, DP)
proto("af_flow_step", c_int, vp, DP, c_double)
proto("af_flow_integrate", c_int, vp, DP, c_double, c_double)
proto("af_flow_pure_layer", c_int, vp, DP)
proto("af_flow_get_stats", None, vp, ctypes.POINTER(S.FlowStats))
proto("af_flow_reset_potentials", None, vp)
proto("af_flow_norm_from_name", c_int, ctypes.c_char_p, ctypes.POINTER(c_int))
proto("af_flow_geometry_from_name", c_int, ctypes.c_char_p, ctypes.POINTER(c_int))
proto("af_flow_integrator_from_name", c_int, ctypes.c_char_p, ctypes.POINTER(c_int))
proto("af_obs_params_default", S.ObsParams, c_size, c_size)
proto("af_obs_alloc", vp, ctypes.POINTER(S.ObsParams))
proto("af_obs_free", None, vp)
proto("af_obs_compute", c_int, vp, DP, DP, ctypes.POINTER(S.ObsValues))
proto("af_grid_check", c_int, ctypes.POINTER(S.Grid))
proto("af_grid_size", c_size, ctypes.POINTER(S.Grid))
proto("af_grid_node", None, ctypes.POINTER(S.Grid), c_size, DP)
proto("af_grid_mass", c_double, ctypes.POINTER(S.Grid), DP)
proto("af_density_default", S.Density)
proto("af_density_kind_from_name", c_int, ctypes.c_char_p, ctypes.POINTER(c_int))
proto("af_density_check", c_int, ctypes.POINTER(S.Density))
proto("af_density_on_grid", c_int, ctypes.POINTER(S.Density), c_double, ctypes.POINTER(S.Grid), DP)
proto("af_density_variance", c_double, ctypes.POINTER(S.Density), c_double, c_size)
proto("af_density_sample", c_int, ctypes.POINTER(S.Density), vp, c_size, DP)
proto("af_heat_plan_alloc", vp, ctypes.POINTER(S.Grid), ctypes.c_uint)
proto("af_heat_plan_free", None, vp)
proto("af_heat_set", c_int, vp, DP)
proto("af_heat_set_density", c_int, vp, ctypes.POINTER(S.Density))
proto("af_heat_evolve", c_int, vp, c_double, c_double, DP)
proto("af_heat_initial_mass", c_double, vp)
proto("af_heat_wrap_error", c_int, ctypes.POINTER(S.Grid), DP, c_double, c_double, DP, DP)

# GSL's generator (libgsl is a dependency of libattnflow: found through its handle).
proto("gsl_rng_alloc", vp, vp)
proto("gsl_rng_set", None, vp, ctypes.c_ulong)
proto("gsl_rng_free", None, vp)


def rng(seed):
    """A gsl_rng (MT19937, the CLI's generator) seeded like `--seed`."""
    r = check_alloc(lib.gsl_rng_alloc(ctypes.c_void_p.in_dll(lib, "gsl_rng_mt19937").value), "gsl_rng")
    lib.gsl_rng_set(r, seed)
    return r


def enum_from_name(fn, name, what):
    out = c_int()
    lib.af_clear_error()
    if fn(str(name).encode(), ctypes.byref(out)):
        raise ValueError(f"{what}: {last_error()}")
    return out.value

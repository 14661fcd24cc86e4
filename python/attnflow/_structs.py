"""ctypes mirrors of the public parameter structs. Each class names its C
type in _c_name_; python/tests/test_structs.py compiles a C program against
the installed headers and checks every field offset and size, so a change
of a header cannot go unnoticed."""
import ctypes

c_size = ctypes.c_size_t
c_int = ctypes.c_int
c_double = ctypes.c_double
vp = ctypes.c_void_p
DP = ctypes.POINTER(ctypes.c_double)


class SinkhornOptions(ctypes.Structure):
    _c_name_ = "af_sinkhorn_options"
    _fields_ = [("path", vp), ("tol", c_double), ("iters", c_size), ("max_iters", c_size),
                ("warm_start", c_int), ("assume_symmetric", c_int), ("compute_bound", c_int)]


class SinkhornInfo(ctypes.Structure):
    _c_name_ = "af_sinkhorn_info"
    _fields_ = [("iterations", c_size), ("row_err", c_double), ("col_err", c_double),
                ("converged", c_int), ("path", vp), ("fell_back", c_int), ("row_hist", DP),
                ("col_hist", DP), ("hilbert_diam", c_double), ("bound_exact", c_int),
                ("bh_rate", c_double), ("f", DP), ("g", DP)]


class ScoresParams(ctypes.Structure):
    _c_name_ = "af_scores_params"
    _fields_ = [("kind", c_int), ("eps", c_double), ("beta", c_double), ("A", DP)]


class InitParams(ctypes.Structure):
    _c_name_ = "af_init_params"
    _fields_ = [("kind", c_int), ("n", c_size), ("d", c_size), ("mean", DP), ("cov", DP),
                ("components", c_size), ("spread", c_double), ("width", c_double),
                ("rho0", c_double)]


class FlowParams(ctypes.Structure):
    _c_name_ = "af_flow_params"
    _fields_ = [("n", c_size), ("d", c_size), ("norm", c_int), ("scores", ScoresParams),
                ("V", DP), ("value", c_double), ("skip", c_int), ("usa", c_int),
                ("geometry", c_int), ("integrator", c_int), ("atol", c_double),
                ("rtol", c_double), ("sinkhorn", SinkhornOptions), ("warm_start", c_int),
                ("backend", vp), ("precision", c_int), ("pm_tol", c_double),
                ("comm", vp)]


class FlowStats(ctypes.Structure):
    _c_name_ = "af_flow_stats"
    _fields_ = [("evaluations", c_size), ("sinkhorn_iterations", c_size),
                ("last_iterations", c_size), ("steps", c_size), ("rejected", c_size)]


class ObsParams(ctypes.Structure):
    _c_name_ = "af_obs_params"
    _fields_ = [("n", c_size), ("d", c_size), ("scores", ScoresParams), ("energy", c_int),
                ("sinkhorn", SinkhornOptions), ("cluster_tol", c_double), ("backend", vp)]


class ObsValues(ctypes.Structure):
    _c_name_ = "af_obs_values"
    _fields_ = [("var", c_double), ("energy", c_double), ("colsum_err", c_double),
                ("rank_res", c_double), ("min_dist", c_double), ("max_ip", c_double),
                ("clusters", c_size), ("energy_iters", c_size)]


class Grid(ctypes.Structure):
    _c_name_ = "af_grid"
    _fields_ = [("d", c_size), ("N", c_size * 2), ("lo", c_double * 2), ("L", c_double * 2)]


class Density(ctypes.Structure):
    _c_name_ = "af_density"
    _fields_ = [("kind", c_int), ("d", c_size), ("mean", DP), ("sigma", c_double),
                ("half_width", c_double), ("components", c_size), ("centres", DP),
                ("weights", DP), ("width", c_double)]


ALL = [SinkhornOptions, SinkhornInfo, ScoresParams, InitParams, FlowParams, FlowStats,
       ObsParams, ObsValues, Grid, Density]
HEADERS = ["normalize.h", "scores.h", "init.h", "flow.h", "observables.h", "heat.h"]

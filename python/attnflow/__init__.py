"""attnflow: the attention-Wasserstein toolkit from Python.

A thin layer over the C library libattnflow (ctypes): numpy float64 arrays
in and out, no copies of C-contiguous inputs, errors raised as
attnflow.Error with the library's message (af_last_error()).

    import attnflow
    X = attnflow.init_cloud('gaussian', n=500, d=2, seed=1)
    C = attnflow.scores(X, eps=0.5)
    K, diag = attnflow.sinkhorn(C, tol=1e-9)
    flow = attnflow.Flow(500, 2, norm='sinkhorn')
    times, traj = flow.trajectory(X, T=1.0, dt=0.01)
    data = attnflow.load('out/traj.dat')          # any attnflow data file

The mathematics: docs/theory.md; the C interface: include/attnflow/*.h.
"""
from ._version import __version__
from ._lib import Error, ConvergenceWarning, lib as _lib
from .attention import (softmax, sinkhorn, scores, init_cloud, second_singular_value,
                        SinkhornDiagnostics)
from .flow import Flow, Observables
from .heat import Heat, Density
from .io import load, Data


def library_version():
    """The version of the libattnflow actually loaded (af_version())."""
    return _lib.af_version().decode()


def set_num_threads(k):
    """OpenMP threads of the library's parallel kernels (omp_set_num_threads)."""
    _lib.omp_set_num_threads(int(k))


__all__ = ["Error", "ConvergenceWarning", "softmax", "sinkhorn", "scores", "init_cloud",
           "second_singular_value", "SinkhornDiagnostics", "Flow", "Observables", "Heat",
           "Density", "load", "Data", "library_version", "set_num_threads", "__version__"]

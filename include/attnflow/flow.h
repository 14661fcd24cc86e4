/* Particle flows: token clouds moving under self-attention (docs/theory.md 3, 7).
 *
 *   dx_i/dt = T(X)_i = sum_j K_ij W_V x_j              (default)
 *   dx_i/dt = W_V (sum_j K_ij x_j - x_i)               (skip = 1)
 * with K the SoftMax matrix of the scores C (rows sum to 1, "SA"), the
 * unnormalised kernel exp(C_ij) / n ("USA", Geshkovski et al.), or the
 * Sinkhorn matrix (rows and columns sum to 1). On the sphere the field is
 * projected on the tangent space, P_x y = y - <x, y> x; |x_i| = 1 is
 * invariant under the exact flow of that field (d|x|^2/dt = 2<x,y>(1-|x|^2)),
 * so the integrators work in R^{nd} and renormalise after every step.
 *
 * Arrays are row-major: token i is X + i*d. One workspace (FFTW-style plan)
 * holds everything a step needs, including the Sinkhorn workspace whose
 * potentials warm-start the next velocity evaluation.
 *
 * Usage:
 *   af_flow_params p = af_flow_params_default(n, d);   (then set fields)
 *   af_flow_ws *ws = af_flow_alloc(&p);                 (NULL: see af_last_error)
 *   af_flow_project(ws, X);                             (sphere: normalise rows)
 *   for (...) af_flow_step(ws, X, h);                   (or af_flow_integrate)
 *   af_flow_free(ws);
 */
#ifndef AF_FLOW_H
#define AF_FLOW_H

#include <stddef.h>
#include "attnflow/backend.h"
#include "attnflow/error.h"
#include "attnflow/normalize.h"
#include "attnflow/pm.h"
#include "attnflow/scores.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

typedef enum {
    AF_FLOW_SOFTMAX = 0,  /* K = N_R(exp C) (SA); with usa = 1, K = exp(C) / n (USA) */
    AF_FLOW_SINKHORN = 1  /* doubly stochastic limit (or opt.iters normalisations) */
} af_flow_norm;

typedef enum { AF_FLOW_EUCLID = 0, AF_FLOW_SPHERE = 1 } af_flow_geometry;

typedef enum {
    AF_FLOW_EULER = 0,    /* one residual layer per step, order 1 */
    AF_FLOW_HEUN = 1,     /* explicit trapezoid, order 2 */
    AF_FLOW_RK4 = 2,      /* classical Runge-Kutta, order 4 */
    AF_FLOW_ADAPTIVE = 3  /* GSL odeiv2 rkf45 with abs/rel error control */
} af_flow_integrator;

typedef struct {
    size_t n, d;
    af_flow_norm norm;
    af_scores_params scores;  /* dot: beta x^T A y / eps, l2: -beta |x-y|^2 / (2 eps);
                               * scores.A (d x d, NULL = I) is copied by af_flow_alloc */
    const double *V;          /* W_V, d x d (copied); NULL: W_V = value * I */
    double value;             /* default 1 */
    int skip;                 /* 1: W_V (K X - X) instead of W_V K X (default 0) */
    int usa;                  /* 1: K = exp(C) / n (SoftMax only; default 0) */
    af_flow_geometry geometry;
    af_flow_integrator integrator;    /* default RK4 */
    double atol, rtol;        /* adaptive error control (defaults 1e-8, 1e-8) */
    af_sinkhorn_options sinkhorn;     /* per velocity evaluation (tol 1e-9; iters > 0:
                                       * exactly that many normalisations, 1 = SoftMax) */
    int warm_start;           /* Sinkhorn starting potentials (ignored for a fixed count
                               * of normalisations, which starts from 0 like SoftMax):
                               * 0 zero (cold), 1 those of the last evaluation,
                               * 2 (default) the fixed-step integrators extrapolate the
                               * last four solves of the same stage cubically (Lagrange
                               * polynomial; fewer while the history fills) to the stage
                               * time (other calls fall back to 1) */
    const af_backend_type *backend; /* af_backend_dense (default, NULL), af_backend_tiled
                                     * (matrix-free, O(n d) memory; no af_flow_kernel) or
                                     * af_backend_pm (particle-mesh, attnflow/pm.h: d <= 3,
                                     * L2 or dot scores with A = a I, no USA, O(n) memory,
                                     * no af_flow_kernel; tolerance AF_PM_TOL_DEFAULT unless
                                     * pm_tol says otherwise) */
    af_precision precision;         /* AF_PRECISION_SINGLE: float32 exps (dense, tiled) */
    double pm_tol;            /* compatibility spelling of the pm backend: > 0 selects
                               * af_backend_pm (whatever backend says) with this relative
                               * accuracy, in [1e-15, 1e-2]; 0 (default): backend decides.
                               * af_flow_get_params reports the tolerance in use. */
    const af_comm *comm;            /* NULL: one process. Several ranks (attnflow/comm.h;
                                     * tiled backend, the default then): each computes its
                                     * row block of K X, the blocks are all-gathered, and
                                     * every rank holds the same X and runs the same
                                     * integrator (call every af_flow_* on every rank) */
} af_flow_params;

/* Defaults of docs/cli.md: SoftMax, dot scores, eps = beta = 1, A = W_V = I, no
 * skip, Euclidean, RK4, Sinkhorn tol 1e-9, extrapolated warm starts. */
af_flow_params af_flow_params_default(size_t n, size_t d);

/* Counters since af_flow_alloc (or af_flow_reset_stats). */
typedef struct {
    size_t evaluations;          /* velocity (or attention) evaluations */
    size_t sinkhorn_iterations;  /* normalisations over all evaluations */
    size_t last_iterations;      /* normalisations of the last evaluation */
    size_t steps;                /* accepted steps (adaptive: internal steps) */
    size_t rejected;             /* adaptive: rejected trial steps */
} af_flow_stats;

typedef struct af_flow_ws af_flow_ws;

/* Checks the parameters and allocates (dense Sinkhorn: O(n^2) memory for
 * the scores and its kernel; SoftMax and the tiled backend: O(n d)).
 * Returns NULL with af_last_error() set. */
af_flow_ws *af_flow_alloc(const af_flow_params *p);
void af_flow_free(af_flow_ws *ws);
/* The parameters in use (A and V point into the workspace). */
const af_flow_params *af_flow_get_params(const af_flow_ws *ws);

/* Velocity field T(X) (n x d) into vel, which must not overlap X. Usable on
 * its own (finite differences, comparisons). */
af_status af_flow_velocity(af_flow_ws *ws, const double *X, double *vel);

/* Attention output Y = K(X) X W_V^T, i.e. rows sum_j K_ij W_V x_j, without
 * skip or projection. Y must not overlap X. */
af_status af_flow_attention(af_flow_ws *ws, const double *X, double *Y);

/* The attention matrix K(X) (n x n) the velocity uses (dense backend only:
 * AF_EINVAL on tiled). */
af_status af_flow_kernel(af_flow_ws *ws, const double *X, double *K);

/* On the sphere: x_i <- x_i / |x_i| (AF_ENUMERIC for a zero row). Elsewhere a no-op. */
af_status af_flow_project(const af_flow_ws *ws, double *X);

/* One step of size h > 0 in place with the chosen integrator (adaptive:
 * integrates over [0, h] with as many internal steps as the tolerances ask). */
af_status af_flow_step(af_flow_ws *ws, double *X, double h);

/* Integrates over a time span T >= 0 with steps of at most h: ceil(T / h)
 * equal steps (adaptive: h is the first trial step). */
af_status af_flow_integrate(af_flow_ws *ws, double *X, double T, double h);

/* One pure attention layer (Dong et al.), no residual: X <- K(X) X W_V^T,
 * renormalised on the sphere. */
af_status af_flow_pure_layer(af_flow_ws *ws, double *X);

/* Grid, window and measured wrap of the particle-mesh backend (AF_EINVAL
 * on another backend; zeros before the first evaluation). */
af_status af_flow_pm_info(const af_flow_ws *ws, af_pm_info *info);

void af_flow_get_stats(const af_flow_ws *ws, af_flow_stats *stats);
void af_flow_reset_stats(af_flow_ws *ws);
/* Forgets the Sinkhorn potentials and their history: the next evaluation
 * starts cold. Call it before reusing a workspace on an unrelated cloud. */
void af_flow_reset_potentials(af_flow_ws *ws);

/* Names <-> enums, for the CLI ("softmax"/"sinkhorn", "euclid"/"sphere",
 * "euler"/"heun"/"rk4"/"adaptive"). */
af_status af_flow_norm_from_name(const char *name, af_flow_norm *out);
af_status af_flow_geometry_from_name(const char *name, af_flow_geometry *out);
af_status af_flow_integrator_from_name(const char *name, af_flow_integrator *out);
const char *af_flow_integrator_name(af_flow_integrator k);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* Observables of a token cloud X (n x d, row-major), as recorded along a
 * flow (docs/theory.md sections 3, 4, 7):
 *   mean        m = (1/n) sum_i x_i
 *   var         mean per-coordinate variance (1/d) sum_k (1/n) sum_i (x_ik - m_k)^2
 *               (population, 1/n: the moment of the empirical measure)
 *   energy      Sinkhorn OT energy F_n = (1/2) OT_eps(mu, mu) for the cost -C
 *               (C the scores): F_n = (1/(2n)) sum_i (phi_i + psi_i) with the
 *               OT potentials phi_i + psi_j = f_i + g_j + log n, i.e.
 *               F_n = (sum f + sum g) / (2n) + (1/2) log n from the attention
 *               potentials f, g (computed by af_energy, energy.h). Defined
 *               for symmetric scores (dot with A symmetric, or L2); NaN
 *               otherwise or if Sinkhorn fails. With dot scores and
 *               W_V = (beta/eps) A, T(X)_i = -n dF_n/dx_i.
 *   colsum_err  max_j |sum_i K_ij - 1| of the SoftMax matrix K = N_R(exp C)
 *   rank_res    |X - 1 m^T|_F / |X|_F (Dong et al.; 0/0 -> 0)
 *   clusters    connected components of the graph |x_i - x_j| <= cluster_tol
 *   min_dist    min_{i != j} |x_i - x_j| (NaN for n = 1)
 *   max_ip      max_{i != j} <x_i, x_j>  (NaN for n = 1)
 */
#ifndef AF_OBSERVABLES_H
#define AF_OBSERVABLES_H

#include <stddef.h>
#include "attnflow/backend.h"
#include "attnflow/error.h"
#include "attnflow/normalize.h"
#include "attnflow/scores.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---- single observables, no workspace ---- */
void af_obs_mean(size_t n, size_t d, const double *X, double *mean);
double af_obs_variance(size_t n, size_t d, const double *X);
double af_obs_rank_residual(size_t n, size_t d, const double *X);
/* max_j |sum_i K_ij - 1| of an n x m matrix. */
double af_obs_colsum_error(size_t n, size_t m, const double *K);

/* ---- all of them at once, on a workspace ---- */
typedef struct {
    size_t n, d;
    af_scores_params scores;     /* the flow's scores (A is copied) */
    int energy;                  /* 1: compute F_n (default 1; NaN if scores not symmetric) */
    af_sinkhorn_options sinkhorn;/* for F_n (tol 1e-12, warm-started between calls) */
    double cluster_tol;          /* default 1e-3 */
    const af_backend_type *backend; /* colsum_err and F_n: dense (default, NULL), tiled
                                     * or pm (L2 scores or A = a I, d <= 3) */
} af_obs_params;

af_obs_params af_obs_params_default(size_t n, size_t d);

typedef struct {
    double var, energy, colsum_err, rank_res, min_dist, max_ip;
    size_t clusters;
    size_t energy_iters;         /* Sinkhorn normalisations spent on F_n */
} af_obs_values;

typedef struct af_obs_ws af_obs_ws;
af_obs_ws *af_obs_alloc(const af_obs_params *p); /* NULL: see af_last_error() */
void af_obs_free(af_obs_ws *ws);

/* Every observable of X; mean (d) may be NULL. */
af_status af_obs_compute(af_obs_ws *ws, const double *X, double *mean, af_obs_values *out);

/* Clusters, min distance and max inner product alone, from direct pairwise
 * differences (no Gram matrix, so distances of merging tokens stay accurate);
 * the workspace supplies only the union-find array. */
af_status af_obs_geometry(af_obs_ws *ws, const double *X, size_t *clusters, double *min_dist,
                          double *max_ip);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

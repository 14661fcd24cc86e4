/* SoftMax and Sinkhorn normalisation of attention kernels K0 = exp(C).
 *
 * Conventions (docs/theory.md section 2, Sinkformers):
 *  - SoftMax: K = N_R(exp C), rows sum to 1, computed stably (row max).
 *  - Sinkhorn alternates N_R, N_C, N_R, ... starting with rows, so one
 *    normalisation is SoftMax exactly (bit for bit). Columns are normalised
 *    to n/m (1 for square matrices): K is n times the entropic OT plan
 *    between uniform weights.
 *  - The result is K_ij = exp(f_i + C_ij + g_j) with potentials f, g.
 *
 * Paths (each a const af_sinkhorn_type, GSL style):
 *  - af_sinkhorn_scaling: stores K0 = exp(C_ij - rowmax_i); one fused pass
 *    over K0 per full (row+column) iteration. Fast.
 *  - af_sinkhorn_log: potentials in log space, exp recomputed every pass;
 *    survives huge scores (eps -> 0) where scalings under/overflow.
 *  - af_sinkhorn_symmetric: for symmetric C, f = g and the relaxed update
 *    f <- f / 3 - (2 / 3) LSE_j(C_ij + f_j) (contracts at rate <= 1/3 when
 *    exp(C) is PSD) with stationary Chebyshev acceleration (rate 0.172,
 *    docs/theory.md); stored symmetric kernel, falls back to log space like
 *    the others.
 * With path AUTO the solver picks: symmetric when C is exactly symmetric
 * and a tolerance (not a fixed count) is asked; scaling otherwise; and it
 * restarts in log space, from the last finite potentials, when a scaling
 * under/overflows or when the score range makes the scaling form unsafe.
 *
 * Usage, one-shot:   af_sinkhorn(ws, C, &opt, K, &info);
 * or GSL style:      af_sinkhorn_set(ws, C, &opt);
 *                    while (!af_sinkhorn_done(ws)) af_sinkhorn_iterate(ws);
 */
#ifndef AF_NORMALIZE_H
#define AF_NORMALIZE_H

#include <stddef.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* Row SoftMax of C (n x m) into K (may equal C). */
af_status af_softmax(size_t n, size_t m, const double *C, double *K);

typedef struct af_sinkhorn_type af_sinkhorn_type; /* opaque path descriptor */
extern const af_sinkhorn_type *const af_sinkhorn_scaling;
extern const af_sinkhorn_type *const af_sinkhorn_log;
extern const af_sinkhorn_type *const af_sinkhorn_symmetric;
extern const af_sinkhorn_type *const af_sinkhorn_symmetric_log; /* its log-space twin */
const char *af_sinkhorn_type_name(const af_sinkhorn_type *t);

typedef struct {
    const af_sinkhorn_type *path; /* NULL = automatic choice (default) */
    double tol;          /* stop when max(row_err, col_err) <= tol (default 1e-9) */
    size_t iters;        /* > 0: exactly this many normalisations, ignoring tol (default 0) */
    size_t max_iters;    /* bound when running to tol (default 10000) */
    int warm_start;      /* 1: start from the workspace's current potentials (default 0) */
    int assume_symmetric;/* 1: the caller guarantees C is exactly symmetric (af_scores with
                          * Y == X and a symmetric A), skipping the O(n^2) check (default 0) */
    int compute_bound;   /* Birkhoff-Hopf bound: 0 none, 1 exact if cheap else an
                          * upper bound on Delta (default), 2 always exact (O(n^2 m)) */
} af_sinkhorn_options;

af_sinkhorn_options af_sinkhorn_options_default(void);

typedef struct {
    size_t iterations;      /* normalisations done (a symmetric step counts as one) */
    double row_err, col_err;/* max_i |row_i - 1|, max_j |col_j m/n - 1| of the result */
    int converged;          /* tolerance met (or the fixed count done) */
    const af_sinkhorn_type *path; /* the path that produced the result */
    int fell_back;          /* 1 if a scaling path was abandoned for log space */
    const double *row_hist; /* row_err after each normalisation (iterations values) */
    const double *col_hist; /* col_err after each normalisation */
    double hilbert_diam;    /* Delta (or an upper bound, see bound_exact); NAN if not computed */
    int bound_exact;        /* 1 if hilbert_diam is exact */
    double bh_rate;         /* Birkhoff-Hopf rate per full iteration: tanh(Delta/4)^2 */
    const double *f, *g;    /* final potentials, K_ij = exp(f_i + C_ij + g_j) (n and m values;
                             * the workspace's, valid until its next call) */
} af_sinkhorn_info;

typedef struct af_sinkhorn_ws af_sinkhorn_ws;

/* Workspace for n x m problems, up to max_hist recorded iterations. */
af_sinkhorn_ws *af_sinkhorn_alloc(size_t n, size_t m);
void af_sinkhorn_free(af_sinkhorn_ws *ws);

/* One-shot: runs to tol or for opt->iters normalisations, writes K (n x m,
 * may be NULL) and fills info (may be NULL). C must stay valid while the
 * workspace uses it. Returns AF_EMAXITER (with K and info filled) if the
 * tolerance was not met within max_iters. */
af_status af_sinkhorn(af_sinkhorn_ws *ws, const double *C, const af_sinkhorn_options *opt,
                      double *K, af_sinkhorn_info *info);

/* GSL-style loop: set, iterate (one normalisation, or one symmetric step),
 * done, then read the state. */
af_status af_sinkhorn_set(af_sinkhorn_ws *ws, const double *C, const af_sinkhorn_options *opt);
af_status af_sinkhorn_iterate(af_sinkhorn_ws *ws);
int af_sinkhorn_done(const af_sinkhorn_ws *ws); /* 1: tol met, count done or max_iters hit */
void af_sinkhorn_get_info(af_sinkhorn_ws *ws, af_sinkhorn_info *info);

/* The current matrix K (n x m). */
af_status af_sinkhorn_matrix(const af_sinkhorn_ws *ws, double *K);
/* KY = K Y for Y (m x p): attention output without storing K. */
af_status af_sinkhorn_apply(af_sinkhorn_ws *ws, size_t p, const double *Y, double *KY);
/* Potentials of the current state: K_ij = exp(f_i + C_ij + g_j); f has n
 * entries, g has m. Pointers into the workspace, valid until its next call. */
const double *af_sinkhorn_f(af_sinkhorn_ws *ws);
const double *af_sinkhorn_g(af_sinkhorn_ws *ws);
/* Overwrites the potentials (e.g. to warm-start from saved ones). */
void af_sinkhorn_set_potentials(af_sinkhorn_ws *ws, const double *f, const double *g);

/* Hilbert projective diameter Delta of exp(C): max over i,j,k,l of
 * C_ik + C_jl - C_jk - C_il. exact = 0 returns the O(nm) upper bound
 * 2 max_i (max_k C_ik - min_k C_ik). */
double af_hilbert_diameter(size_t n, size_t m, const double *C, int exact);
/* Birkhoff-Hopf contraction per full iteration, tanh(Delta/4)^2. */
double af_birkhoff_hopf_rate(double delta);
/* Sharp asymptotic rate per full iteration: sigma_2(K)^2 of a doubly
 * stochastic n x n K (power iteration on K^T K restricted to 1-perp). */
af_status af_second_singular_value(size_t n, const double *K, double tol, size_t max_iter,
                                   double *sigma2);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

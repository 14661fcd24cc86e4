/* The particle-mesh backend: af_pm_attn (pm_attention.c) behind the
 * af_attn_* entry points. Every sum over tokens is a Gauss transform on a
 * grid, so nothing n x n and nothing per pair is formed; what needs the
 * matrix (K itself, its second singular value, the exact Hilbert diameter)
 * is refused, and so is what is not a Gaussian kernel (USA, d > 3, scores
 * other than L2 or dot with A = a I: af_pm_attn_alloc says which).
 *
 * The Sinkhorn solve is PM's own (af_pm_attn_sinkhorn): with a tolerance
 * and the automatic or a symmetric path, the over-relaxed symmetric update
 * (weight 2/3, one transform per update); a scaling or log path, or a
 * fixed count, alternates rows and columns. Its potentials live in the
 * af_pm_attn, so this backend has no af_sinkhorn_ws (ws->sk stays NULL). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend_internal.h"

#define PM_TOL_MIN 1e-15
#define PM_TOL_MAX 1e-2
/* Window points per dimension at the default tolerance (pm.c: 2W) */
#define PM_WINDOW_POINTS 16.0

static double pm_bytes(size_t n, size_t d, af_attn_norm norm, int threads)
{
    (void)norm;
    (void)threads;
    const double N = (double)n, D = (double)d;
    /* af_pm_attn: q f g a b (n each), weights and outputs (5 n each); the
     * engine's window cache (d x 2W weights and 3 offsets per token). The
     * grid depends on the cloud's extent, not on n: not counted. */
    return 8.0 * (15 * N + N * D * PM_WINDOW_POINTS + 3 * N);
}

/* The PM attention for scores sp into *out. af_pm_attn_alloc refuses
 * with its reason (d <= 3, A = a I, beta > 0) in the message, or runs out
 * of memory; its status is not returned, so it is read off the message. */
static af_status pm_attn_for(const af_attn_ws *ws, const af_scores_params *sp,
                             af_pm_attn **out)
{
    if ((*out = af_pm_attn_alloc(ws->p.n, ws->p.d, sp, ws->p.pm_tol)))
        return AF_SUCCESS;
    return strstr(af_last_error(), "out of memory") ? AF_ENOMEM : AF_EINVAL;
}

static af_status pm_init(af_attn_ws *ws)
{
    const double tol = ws->p.pm_tol;
    if (!(tol >= PM_TOL_MIN && tol <= PM_TOL_MAX))
        return af_error(AF_EINVAL, "attention: pm tolerance must be in [%g, %g] (got %g)",
                        PM_TOL_MIN, PM_TOL_MAX, tol);
    if (ws->p.norm == AF_ATTN_USA)
        return af_error(AF_EINVAL, "attention: the particle-mesh backend has no USA (exp(C) / "
                                   "n); use SoftMax or Sinkhorn");
    return pm_attn_for(ws, &ws->p.scores, &ws->pm);
}

static void pm_release(af_attn_ws *ws) { af_pm_attn_free(ws->pm); }

static af_status pm_set_scores(af_attn_ws *ws, const af_scores_params *sp)
{
    if (!ws->pm) /* af_attn_alloc stores the first scores before pm_init */
        return AF_SUCCESS;
    af_pm_attn *at;
    af_status st = pm_attn_for(ws, sp, &at);
    if (st)
        return st;
    af_pm_attn_free(ws->pm);
    ws->pm = at;
    ws->pm_solved = 0;
    return AF_SUCCESS;
}

/* The tokens X into the engine (AF_EDOM with "non-finite" for NaN / inf). */
static af_status pm_set(af_attn_ws *ws, const double *X)
{
    ws->pm_solved = 0;
    return af_pm_attn_set(ws->pm, X);
}

static af_status pm_softmax(af_attn_ws *ws, const double *X, double *KX)
{
    af_status st = pm_set(ws, X);
    if (!st)
        st = af_pm_attn_softmax(ws->pm);
    if (!st)
        st = af_pm_attn_apply(ws->pm, ws->p.d, X, KX);
    return st;
}

static af_status pm_sinkhorn(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                             af_sinkhorn_info *info)
{
    if (opt->compute_bound == 2)
        return af_error(AF_EINVAL, "attention: the exact Hilbert diameter needs the stored "
                                   "score matrix, which the pm backend never forms (use the "
                                   "dense backend)");
    af_status st = pm_set(ws, X);
    if (st)
        return st;
    st = af_pm_attn_sinkhorn(ws->pm, opt, info);
    /* a solve that ran out of iterations still leaves a usable kernel */
    ws->pm_solved = st == AF_SUCCESS || st == AF_EMAXITER;
    return st;
}

static af_status pm_apply(af_attn_ws *ws, double *KX)
{
    return af_pm_attn_apply(ws->pm, ws->p.d, ws->X, KX);
}

static af_status pm_kernel(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                           double *K)
{
    (void)ws, (void)X, (void)opt, (void)K;
    return af_error(AF_EINVAL, "attention: the particle-mesh backend never forms the n x n "
                               "kernel K (use the dense backend)");
}

/* K^T X: the scores are symmetric, so K^T_ij = exp(g_i + C_ij + f_j) is the
 * kernel with the potentials swapped (saved in rbias / cbias, which the pm
 * backend does not otherwise use). */
static af_status pm_transpose_apply(af_attn_ws *ws, double *KtX)
{
    const size_t n = ws->p.n;
    memcpy(ws->rbias, af_pm_attn_f(ws->pm), n * sizeof(double));
    memcpy(ws->cbias, af_pm_attn_g(ws->pm), n * sizeof(double));
    af_pm_attn_set_potentials(ws->pm, ws->cbias, ws->rbias);
    af_status st = af_pm_attn_apply(ws->pm, ws->p.d, ws->X, KtX);
    af_pm_attn_set_potentials(ws->pm, ws->rbias, ws->cbias);
    return st;
}

static af_status pm_marginals(af_attn_ws *ws, double *r, double *c, double *KX, double *KtX)
{
    af_status st = AF_SUCCESS;
    if (r || c)
        st = af_pm_attn_marginals(ws->pm, r, c);
    if (!st && KX)
        st = af_pm_attn_apply(ws->pm, ws->p.d, ws->X, KX);
    if (!st && KtX)
        st = pm_transpose_apply(ws, KtX);
    return st;
}

/* The SoftMax potentials replace the engine's for the time of the call:
 * the tokens and potentials of the last Sinkhorn solve are put back. */
static af_status pm_softmax_colsums(af_attn_ws *ws, const double *X, double *cs)
{
    const size_t n = ws->p.n;
    const int was_solved = ws->pm_solved;
    memcpy(ws->rbias, af_pm_attn_f(ws->pm), n * sizeof(double));
    memcpy(ws->cbias, af_pm_attn_g(ws->pm), n * sizeof(double));
    af_status st = pm_set(ws, X);
    if (!st)
        st = af_pm_attn_softmax(ws->pm);
    if (!st)
        st = af_pm_attn_marginals(ws->pm, NULL, cs);
    af_pm_attn_set_potentials(ws->pm, ws->rbias, ws->cbias);
    if (was_solved) /* ws->X was accepted by the engine before */
        ws->pm_solved = af_pm_attn_set(ws->pm, ws->X) == AF_SUCCESS;
    return st;
}

static int pm_solved(const af_attn_ws *ws) { return ws->pm_solved; }

static const double *pm_potential(const af_attn_ws *ws, int col)
{
    return col ? af_pm_attn_g(ws->pm) : af_pm_attn_f(ws->pm);
}

static void pm_set_potentials(af_attn_ws *ws, const double *f, const double *g)
{
    af_pm_attn_set_potentials(ws->pm, f, g);
}

af_status af_attn_pm_info(const af_attn_ws *ws, af_pm_info *info)
{
    if (ws->type != &af_backend_type_pm)
        return af_error(AF_EINVAL, "attention: this workspace uses the %s backend, not "
                                   "particle-mesh", ws->type->name);
    af_pm_attn_get_info(ws->pm, info);
    return AF_SUCCESS;
}

const af_backend_type af_backend_type_pm = {
    .name = "pm",
    .single = 0,
    .bytes = pm_bytes,
    .init = pm_init,
    .release = pm_release,
    .softmax = pm_softmax,
    .sinkhorn = pm_sinkhorn,
    .apply = pm_apply,
    .kernel = pm_kernel,
    .marginals = pm_marginals,
    .softmax_colsums = pm_softmax_colsums,
    .distributes = 0,
    .solved = pm_solved,
    .potential = pm_potential,
    .set_potentials = pm_set_potentials,
    .set_scores = pm_set_scores,
};

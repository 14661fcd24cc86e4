/* SoftMax and Sinkhorn attention through the particle-mesh Gauss transform
 * (attnflow/pm.h). Scores are reduced to C_ij = q_i + q_j - |x_i - x_j|^2 / (2 s^2)
 * (L2: q = 0, s^2 = eps / beta; dot with A = a I: c = beta a / eps,
 * q_i = c |x_i|^2 / 2, s^2 = 1 / c). With the folded potentials a = f + q,
 * b = g + q the kernel is K_ij = exp(a_i + b_j) G_ij, so every sum over j is
 * one Gauss transform of the weights exp(b_j - max b): the shift max b goes
 * back into the potential, never into an exponential. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/pm.h"
#include "normalize_internal.h"

/* The symmetric update is the dense and tiled paths' (normalize_internal.h):
 * f <- (1 - w) f + w T(f), T(f) = -LSE_j(C_ij + f_j), w = 2/3, which on the
 * positive semidefinite kernels here (the Gaussian, and exp(c x.y))
 * contracts by 1/3, with their stationary Chebyshev acceleration on top
 * (af__sym_step: rate 0.172; same fixed point). */

/* Weight columns per transform: the ones column and up to 4 data columns. */
#define PM_KMAX 5

struct af_pm_attn {
    size_t n, d;
    double s, c, tol;  /* kernel width; c > 0: dot scores q_i = c |x_i|^2 / 2 */
    af_pm_ws *pm;
    const double *X;
    double *q, *f, *g, *a, *b; /* n each */
    double *step;              /* n: the last symmetric step (acceleration) */
    double *wts, *out;         /* n x PM_KMAX */
};

static int is_scalar_matrix(size_t d, const double *A, double *a)
{
    *a = A ? A[0] : 1.0;
    if (!A)
        return 1;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            if (A[i * d + j] != (i == j ? *a : 0.0))
                return 0;
    return 1;
}

af_pm_attn *af_pm_attn_alloc(size_t n, size_t d, const af_scores_params *sp, double tol)
{
    double s, c = 0;
    if (d < 1 || d > AF_PM_MAX_D) {
        af_error(AF_EINVAL, "pm: the particle-mesh backend works in d <= 3 (got d = %zu)", d);
        return NULL;
    }
    if (n == 0 || !(sp->eps > 0) || !isfinite(sp->eps) || !isfinite(sp->beta)) {
        af_error(AF_EINVAL, "pm: need n >= 1, finite eps > 0 and finite beta");
        return NULL;
    }
    if (sp->kind == AF_SCORES_L2) {
        if (!(sp->beta > 0)) {
            af_error(AF_EINVAL, "pm: L2 scores need beta > 0 (a Gaussian kernel; got %g)",
                     sp->beta);
            return NULL;
        }
        s = sqrt(sp->eps / sp->beta);
    } else {
        double a;
        if (!is_scalar_matrix(d, sp->A, &a)) {
            af_error(AF_EINVAL, "pm: dot scores need A = a I (a scalar matrix); this A is not");
            return NULL;
        }
        c = sp->beta * a / sp->eps;
        if (!(c > 0) || !isfinite(c)) {
            af_error(AF_EINVAL, "pm: dot scores need beta a / eps > 0 (got %g)", c);
            return NULL;
        }
        s = 1 / sqrt(c);
    }
    af_pm_attn *at = calloc(1, sizeof *at);
    if (!at) {
        af_error(AF_ENOMEM, "pm: out of memory");
        return NULL;
    }
    at->n = n;
    at->d = d;
    at->s = s;
    at->c = c;
    at->tol = tol;
    int ok = (at->pm = af_pm_alloc(d, PM_KMAX)) != NULL;
    double **bufs[] = {&at->q, &at->f, &at->g, &at->a, &at->b, &at->step};
    for (size_t k = 0; ok && k < 6; k++)
        ok &= (*bufs[k] = calloc(n, sizeof(double))) != NULL;
    ok = ok && (at->wts = malloc(n * PM_KMAX * sizeof(double))) != NULL;
    ok = ok && (at->out = malloc(n * PM_KMAX * sizeof(double))) != NULL;
    if (!ok) {
        af_pm_attn_free(at);
        af_error(AF_ENOMEM, "pm: out of memory (n = %zu)", n);
        return NULL;
    }
    return at;
}

void af_pm_attn_free(af_pm_attn *at)
{
    if (!at)
        return;
    af_pm_free(at->pm);
    free(at->q);
    free(at->f);
    free(at->g);
    free(at->a);
    free(at->b);
    free(at->step);
    free(at->wts);
    free(at->out);
    free(at);
}

af_status af_pm_attn_set(af_pm_attn *at, const double *X)
{
    const size_t n = at->n, d = at->d;
    af_status st = af_pm_set(at->pm, n, X, at->s, at->tol);
    if (st)
        return st;
    at->X = X;
    for (size_t i = 0; i < n; i++) {
        double r = 0;
        for (size_t k = 0; k < d; k++)
            r += X[i * d + k] * X[i * d + k];
        at->q[i] = 0.5 * at->c * r;
    }
    return AF_SUCCESS;
}

static af_status need_tokens(const af_pm_attn *at)
{
    return at->X ? AF_SUCCESS : af_error(AF_EINVAL, "pm: tokens not set (af_pm_attn_set)");
}

static void fold(af_pm_attn *at)
{
    for (size_t i = 0; i < at->n; i++) {
        at->a[i] = at->f[i] + at->q[i];
        at->b[i] = at->g[i] + at->q[i];
    }
}

static void unfold(af_pm_attn *at)
{
    for (size_t i = 0; i < at->n; i++) {
        at->f[i] = at->a[i] - at->q[i];
        at->g[i] = at->b[i] - at->q[i];
    }
}

static double max_of(size_t n, const double *v)
{
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* lse_i = log sum_j exp(v_j) G_ij (into at->out, stride 1). */
static af_status gauss_lse(af_pm_attn *at, const double *v, double *lse)
{
    const size_t n = at->n;
    const double M = max_of(n, v);
    if (!isfinite(M))
        return af_error(AF_ENUMERIC, "pm: a Sinkhorn potential is not finite");
    for (size_t j = 0; j < n; j++)
        at->wts[j] = exp(v[j] - M);
    af_status st = af_pm_apply(at->pm, 1, at->wts, lse);
    if (st)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (!(lse[i] > 0))
            return af_error(AF_ENUMERIC, "pm: the Gauss sum at token %zu lost positivity (%g): "
                            "the weights span more than the accuracy %g resolves",
                            i, lse[i], at->tol);
        lse[i] = log(lse[i]) + M;
    }
    return AF_SUCCESS;
}

af_status af_pm_attn_softmax(af_pm_attn *at)
{
    af_status st = need_tokens(at);
    if (st)
        return st;
    const size_t n = at->n;
    double *L = at->out;
    if ((st = gauss_lse(at, at->q, L)))
        return st;
    for (size_t i = 0; i < n; i++) {
        at->a[i] = -L[i];
        at->b[i] = at->q[i];
    }
    unfold(at);
    return AF_SUCCESS;
}

/* err = max_i |exp(p_i + L_i) - 1|: the marginal residual of the state. */
static double residual(size_t n, const double *p, const double *L)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        const double r = fabs(expm1(p[i] + L[i]));
        e = r > e ? r : e;
    }
    return e;
}

af_status af_pm_attn_sinkhorn(af_pm_attn *at, const af_sinkhorn_options *opt,
                              af_sinkhorn_info *info)
{
    af_status st = need_tokens(at);
    if (st)
        return st;
    const size_t n = at->n, fixed = opt->iters;
    if (!fixed && !(opt->tol > 0))
        return af_error(AF_EINVAL, "pm: Sinkhorn tolerance must be > 0 (got %g)", opt->tol);
    const int symmetric = !fixed && (opt->path == NULL || opt->path == af_sinkhorn_symmetric
                                     || opt->path == af_sinkhorn_symmetric_log);
    if (!opt->warm_start || fixed) {
        memset(at->f, 0, n * sizeof(double));
        memset(at->g, 0, n * sizeof(double));
    } else if (symmetric) {
        for (size_t i = 0; i < n; i++)
            at->f[i] = at->g[i] = 0.5 * (at->f[i] + at->g[i]);
    }
    fold(at);
    memset(at->step, 0, n * sizeof(double)); /* no previous step */
    double *L = at->out;
    double row_err = NAN, col_err = NAN;
    size_t it = 0;
    const size_t cap = fixed ? fixed : opt->max_iters;
    int converged = 0;
    for (;;) {
        const int rows = symmetric || it % 2 == 0;
        double *p = rows ? at->a : at->b;
        if ((st = gauss_lse(at, rows ? at->b : at->a, L)))
            return st;
        if (!fixed) {
            const double e = residual(n, p, L);
            if (symmetric)
                row_err = col_err = e;
            else if (rows)
                row_err = e, col_err = it ? 0 : NAN;
            else
                col_err = e, row_err = 0;
            if (e <= opt->tol) {
                converged = 1;
                break;
            }
        }
        if (it == cap)
            break;
        if (symmetric)
            for (size_t i = 0; i < n; i++) {
                const double sk = af__sym_step(at->a[i] + L[i], at->step[i]);
                at->step[i] = sk;
                at->a[i] = at->b[i] = at->a[i] + sk;
            }
        else
            for (size_t i = 0; i < n; i++)
                p[i] = -L[i];
        it++;
        if (fixed && it == fixed) {
            converged = 1;
            break;
        }
    }
    unfold(at);
    if (info) {
        memset(info, 0, sizeof *info);
        info->iterations = it;
        info->row_err = row_err;
        info->col_err = col_err;
        info->converged = converged;
        info->hilbert_diam = NAN;
        info->f = at->f;
        info->g = at->g;
    }
    if (!converged)
        return af_error(AF_EMAXITER, "pm: Sinkhorn did not reach tol %g in %zu normalisations "
                        "(residual %.3g)", opt->tol, cap, fmax(row_err, col_err));
    return AF_SUCCESS;
}

af_status af_pm_attn_apply(af_pm_attn *at, size_t p, const double *Y, double *KY)
{
    af_status st = need_tokens(at);
    if (st)
        return st;
    const size_t n = at->n, K = PM_KMAX;
    fold(at);
    const double M = max_of(n, at->b);
    for (size_t c0 = 0; c0 < p; c0 += K - 1) {
        const size_t m = p - c0 < K - 1 ? p - c0 : K - 1;
        double mu[PM_KMAX] = {0};
        for (size_t j = 0; j < n; j++)
            for (size_t c = 0; c < m; c++)
                mu[c] += Y[j * p + c0 + c];
        for (size_t c = 0; c < m; c++)
            mu[c] /= (double)n;
        /* centred data: the error is relative to the spread of Y, not its offset */
        for (size_t j = 0; j < n; j++) {
            const double e = exp(at->b[j] - M);
            double *w = at->wts + j * (m + 1);
            w[0] = e;
            for (size_t c = 0; c < m; c++)
                w[c + 1] = e * (Y[j * p + c0 + c] - mu[c]);
        }
        if ((st = af_pm_apply(at->pm, m + 1, at->wts, at->out)))
            return st;
        for (size_t i = 0; i < n; i++) {
            const double *o = at->out + i * (m + 1), sc = exp(at->a[i] + M);
            for (size_t c = 0; c < m; c++)
                KY[i * p + c0 + c] = sc * (o[c + 1] + mu[c] * o[0]);
        }
    }
    return AF_SUCCESS;
}

af_status af_pm_attn_marginals(af_pm_attn *at, double *rows, double *cols)
{
    af_status st = need_tokens(at);
    if (st)
        return st;
    const size_t n = at->n;
    fold(at);
    const double Ma = max_of(n, at->a), Mb = max_of(n, at->b);
    for (size_t j = 0; j < n; j++) {
        at->wts[2 * j] = exp(at->b[j] - Mb);
        at->wts[2 * j + 1] = exp(at->a[j] - Ma);
    }
    if ((st = af_pm_apply(at->pm, 2, at->wts, at->out)))
        return st;
    for (size_t i = 0; i < n; i++) {
        if (rows)
            rows[i] = exp(at->a[i] + Mb) * at->out[2 * i];
        if (cols)
            cols[i] = exp(at->b[i] + Ma) * at->out[2 * i + 1];
    }
    return AF_SUCCESS;
}

const double *af_pm_attn_f(const af_pm_attn *at) { return at->f; }
const double *af_pm_attn_g(const af_pm_attn *at) { return at->g; }

void af_pm_attn_set_potentials(af_pm_attn *at, const double *f, const double *g)
{
    memcpy(at->f, f, at->n * sizeof(double));
    memcpy(at->g, g, at->n * sizeof(double));
}

void af_pm_attn_get_info(const af_pm_attn *at, af_pm_info *info) { af_pm_get_info(at->pm, info); }

/* The tiled (matrix-free) backend: nothing n x n is ever stored. Each
 * thread regenerates one score row at a time into its own n-vector (the
 * tile: 0.8 MB at n = 1e5, cache resident while it is exponentiated,
 * summed and multiplied into K X), on every pass. Sinkhorn runs
 * af_sinkhorn on the same row generator: the alternating iteration in log
 * space (one pass of scores + exp per normalisation), the symmetric one in
 * scaling form on upper triangles (sinkhorn_tiled.c, half the exps); the
 * potentials carry the warm start.
 *
 * SoftMax and the Sinkhorn output share one row kernel (af__row_max_shifted,
 * af__row_exp, af__row_sum, af__row_dot), so a single Sinkhorn
 * normalisation gives SoftMax bit for bit on this backend too. */
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "backend_internal.h"

static double tiled_bytes(size_t n, size_t d, af_attn_norm norm, int threads)
{
    return norm == AF_ATTN_SINKHORN ? af__sinkhorn_bytes(n, n, d, threads, 1) : 0.0;
}

static af_status tiled_init(af_attn_ws *ws)
{
    const size_t n = ws->p.n;
    if (ws->p.norm == AF_ATTN_SINKHORN && !(ws->sk = af__sinkhorn_alloc_matrix_free(n, n)))
        return af_error(AF_ENOMEM, "attention: out of memory (tiled backend, n = %zu)", n);
    return AF_SUCCESS;
}

static void tiled_release(af_attn_ws *ws) { free(ws->acc); }

/* Per-thread column accumulators (d + 1 rows of n each) on first use. */
static af_status column_accumulators(af_attn_ws *ws)
{
    const size_t len = (size_t)ws->nthreads * (ws->p.d + 1) * ws->p.n;
    if (!ws->acc && !(ws->acc = malloc(len * sizeof(double))))
        return af_error(AF_ENOMEM, "attention: out of memory (tiled column accumulators)");
    memset(ws->acc, 0, len * sizeof(double));
    return AF_SUCCESS;
}

/* out[q * n + j] = sum over threads of acc (q < rows). */
static void reduce_accumulators(const af_attn_ws *ws, size_t rows, double *out)
{
    const size_t n = ws->p.n, stride = (ws->p.d + 1) * n;
    for (size_t q = 0; q < rows * n; q++) {
        double v = 0;
        for (int t = 0; t < ws->nthreads; t++)
            v += ws->acc[(size_t)t * stride + q];
        out[q] = v;
    }
}

/* Row i of the scores, C_ij = (c_j + r_i) + s L_i . x_j, into buf. L2
 * scores are clipped at 0 (-|x - y|^2 <= 0) like af_scores. */
static const double *score_row_from(const void *ctx, size_t i, size_t j0, double *buf)
{
    const af_attn_ws *ws = ctx;
    const size_t n = ws->p.n, d = ws->p.d, len = n - j0;
    const double r = ws->rbias[i], *cb = ws->cbias + j0;
#pragma omp simd
    for (size_t j = 0; j < len; j++)
        buf[j] = cb[j] + r;
    for (size_t k = 0; k < d; k++) {
        const double a = ws->s * ws->L[i * d + k], *xt = ws->Xt + k * n + j0;
#pragma omp simd
        for (size_t j = 0; j < len; j++)
            buf[j] += a * xt[j];
    }
    if (ws->l2) {
#pragma omp simd
        for (size_t j = 0; j < len; j++)
            buf[j] = buf[j] > 0 ? 0 : buf[j];
    }
    return buf;
}

static const double *score_row(const void *ctx, size_t i, double *buf)
{
    return score_row_from(ctx, i, 0, buf);
}

static double score_entry(const void *ctx, size_t i, size_t j)
{
    const af_attn_ws *ws = ctx;
    const size_t n = ws->p.n, d = ws->p.d;
    double c = ws->cbias[j] + ws->rbias[i];
    for (size_t k = 0; k < d; k++)
        c += ws->s * ws->L[i * d + k] * ws->Xt[k * n + j];
    return ws->l2 && c > 0 ? 0 : c;
}

/* out = w * sum_j e_j x_j for the exponentiated row e (in place in c). */
static void row_times_x(const af_attn_ws *ws, const double *e, double w, double *out)
{
    const size_t n = ws->p.n, d = ws->p.d;
    for (size_t k = 0; k < d; k++)
        out[k] = af__row_dot(n, e, ws->Xt + k * n) * w;
}

/* Row SoftMax of c + g (g may be NULL) times X; 0 if the row is not finite. */
static int row_softmax_x(const af_attn_ws *ws, double *c, const double *g, double *out)
{
    const size_t n = ws->p.n;
    double mx = af__row_max_shifted(n, c, g);
    af__row_exp_p(ws->p.precision == AF_PRECISION_SINGLE, n, c, g, mx, c);
    double S = af__row_sum(n, c);
    row_times_x(ws, c, 1.0 / S, out);
    return isfinite(mx) && isfinite(S) && S > 0;
}

static af_status tiled_softmax(af_attn_ws *ws, const double *X, double *KX)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const int usa = ws->p.norm == AF_ATTN_USA;
    af__attn_prepare(ws, X, 1);
    const double inv_n = 1.0 / (double)n;
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(ws->nthreads) reduction(| : bad) \
    AF_PAR_IF((double)n * n)
    for (size_t i = ws->row_begin; i < ws->row_end; i++) {
        double *c = (double *)score_row(ws, i, ws->rows + (size_t)omp_get_thread_num() * n);
        if (usa) {
            af__row_exp_p(ws->p.precision == AF_PRECISION_SINGLE, n, c, NULL, 0.0, c);
            row_times_x(ws, c, inv_n, KX + i * d);
            for (size_t k = 0; k < d; k++)
                bad |= !isfinite(KX[i * d + k]);
        } else {
            bad |= !row_softmax_x(ws, c, NULL, KX + i * d);
        }
    }
    if (bad)
        return af__attn_softmax_failed(ws);
    return AF_SUCCESS;
}

static af_status tiled_sinkhorn(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                                af_sinkhorn_info *info)
{
    af__attn_prepare(ws, X, 1);
    const af__score_source src = {score_row_from, score_entry, ws, ws->Xt, ws->p.d,
                                  ws->p.precision == AF_PRECISION_SINGLE};
    return af__sinkhorn_solve_source(ws->sk, &src, opt, info);
}

/* K X from the potentials, K_ij = exp(f_i + C_ij + g_j); right after a row
 * normalisation as the row SoftMax of C + g (what the dense log path's
 * matrix does), so that one normalisation is SoftMax. */
static af_status tiled_apply(af_attn_ws *ws, double *KX)
{
    const size_t n = ws->p.n, d = ws->p.d;
    af_sinkhorn_ws *sk = ws->sk;
    int bad = 0;
    if (sk->type == &af_sinkhorn_type_sym_tiled) {
        /* K X = diag(a) K0 (a X): accumulated by the solver's last pass */
        const double *ky = af__sym_tiled_product(sk);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < d; k++) {
                KX[i * d + k] = sk->u[i] * ky[i * d + k];
                bad |= !isfinite(KX[i * d + k]);
            }
        return bad ? af_error(AF_ENUMERIC, "attention: the Sinkhorn kernel is not finite")
                   : AF_SUCCESS;
    }
    const double *f = af_sinkhorn_f(sk), *g = af_sinkhorn_g(sk);
    const int rows_last = !sk->type->symmetric && !sk->next_is_row;
#pragma omp parallel for schedule(static) num_threads(ws->nthreads) reduction(| : bad) \
    AF_PAR_IF((double)n * n)
    for (size_t i = ws->row_begin; i < ws->row_end; i++) {
        double *c = (double *)score_row(ws, i, ws->rows + (size_t)omp_get_thread_num() * n);
        if (rows_last) {
            bad |= !row_softmax_x(ws, c, g, KX + i * d);
        } else {
            af__row_exp_p(ws->p.precision == AF_PRECISION_SINGLE, n, c, g, -f[i], c);
            row_times_x(ws, c, 1.0, KX + i * d);
            for (size_t k = 0; k < d; k++)
                bad |= !isfinite(KX[i * d + k]);
        }
    }
    if (bad)
        return af_error(AF_ENUMERIC, "attention: the Sinkhorn kernel is not finite");
    return AF_SUCCESS;
}

/* One pass over K_ij = exp(f_i + C_ij + g_j): row sums and K X from each
 * row, column sums and K^T X into per-thread accumulators. */
static af_status tiled_marginals(af_attn_ws *ws, double *r, double *c, double *KX, double *KtX)
{
    const size_t n = ws->p.n, d = ws->p.d;
    af_status st = column_accumulators(ws);
    if (st)
        return st;
    const double *f = af_sinkhorn_f(ws->sk), *g = af_sinkhorn_g(ws->sk);
    const int cols = c || KtX;
#pragma omp parallel num_threads(ws->nthreads) AF_PAR_IF((double)n * n)
    {
        const int tid = omp_get_thread_num();
        double *acc = ws->acc + (size_t)tid * (d + 1) * n;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double *e = (double *)score_row(ws, i, ws->rows + (size_t)tid * n);
            af__row_exp_p(ws->p.precision == AF_PRECISION_SINGLE, n, e, g, -f[i], e);
            if (r)
                r[i] = af__row_sum(n, e);
            if (KX)
                row_times_x(ws, e, 1.0, KX + i * d);
            if (!cols)
                continue;
#pragma omp simd
            for (size_t j = 0; j < n; j++)
                acc[j] += e[j];
            for (size_t k = 0; k < d; k++) {
                const double xk = ws->X[i * d + k];
                double *a = acc + (k + 1) * n;
#pragma omp simd
                for (size_t j = 0; j < n; j++)
                    a[j] += e[j] * xk;
            }
        }
    }
    if (!cols)
        return AF_SUCCESS;
    if (c)
        reduce_accumulators(ws, 1, c);
    const size_t stride = (d + 1) * n;
    for (size_t j = 0; KtX && j < n; j++)
        for (size_t k = 0; k < d; k++) {
            double v = 0;
            for (int t = 0; t < ws->nthreads; t++)
                v += ws->acc[(size_t)t * stride + (k + 1) * n + j];
            KtX[j * d + k] = v;
        }
    return AF_SUCCESS;
}

static af_status tiled_softmax_colsums(af_attn_ws *ws, const double *X, double *cs)
{
    const size_t n = ws->p.n;
    af_status st = column_accumulators(ws);
    if (st)
        return st;
    af__attn_prepare(ws, X, 1);
    int bad = 0;
#pragma omp parallel num_threads(ws->nthreads) reduction(| : bad) AF_PAR_IF((double)n * n)
    {
        const int tid = omp_get_thread_num();
        double *acc = ws->acc + (size_t)tid * (ws->p.d + 1) * n;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double *e = (double *)score_row(ws, i, ws->rows + (size_t)tid * n);
            double mx = af__row_max_shifted(n, e, NULL);
            af__row_exp_p(ws->p.precision == AF_PRECISION_SINGLE, n, e, NULL, mx, e);
            double S = af__row_sum(n, e), inv = 1.0 / S;
            bad |= !isfinite(mx) || !isfinite(S);
#pragma omp simd
            for (size_t j = 0; j < n; j++)
                acc[j] += e[j] * inv;
        }
    }
    reduce_accumulators(ws, 1, cs);
    if (bad)
        return af_error(AF_EDOM, "softmax: scores contain NaN or infinite values");
    return AF_SUCCESS;
}

static af_status tiled_kernel(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                              double *K)
{
    (void)X, (void)opt, (void)K;
    return af_error(AF_EINVAL, "attention: the tiled backend never stores the %zu x %zu matrix K "
                               "(use the dense backend to write or analyse K)", ws->p.n, ws->p.n);
}

const af_backend_type af_backend_type_tiled = {
    "tiled", 1, tiled_bytes, tiled_init, tiled_release, tiled_softmax,
    tiled_sinkhorn, tiled_apply, tiled_kernel, tiled_marginals, tiled_softmax_colsums,
    .distributes = 1,
};

/* The dense backend: SoftMax / USA fused in blocks of rows (K never
 * stored: a block of score rows, their exp in place, K X for the block);
 * Sinkhorn on the stored n x n scores through af_sinkhorn (scaling paths on
 * a stored kernel, the fastest while n^2 fits in memory). */
#include "core/af_blas.h"
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "backend_internal.h"
#include "normalize_internal.h"

/* Up to this d, SoftMax rows are computed by hand inside one OpenMP team
 * (X^T stays in cache); above it, by dgemm on blocks of rows. Mixing
 * OpenBLAS's threads and OpenMP teams block by block makes them fight for
 * the cores. */
#define DENSE_ROW_KERNEL_MAX_D 16

/* ~2 MB blocks: big enough for dgemm, small enough for the cache. */
static size_t dense_tile(size_t n)
{
    size_t t = (size_t)262144 / n;
    t = t < 8 ? 8 : t > 256 ? 256 : t;
    return t > n ? n : t;
}

static double dense_bytes(size_t n, size_t d, af_attn_norm norm, int threads)
{
    const double N = (double)n, B = (double)dense_tile(n);
    double b = 8.0 * (AF_SCORES_WORK((double)n, (double)n, (double)d) + B * N + B);
    if (d == 2 && norm != AF_ATTN_SINKHORN) /* the tiled pass (single: its float copies) */
        b += 8.0 * 3.0 * N * threads + 20.0 * N;
    if (norm == AF_ATTN_SINKHORN)
        b += 8.0 * N * N + af__sinkhorn_bytes(n, n, d, threads, 0);
    return b;
}

static af_status dense_init(af_attn_ws *ws)
{
    const size_t n = ws->p.n, d = ws->p.d;
    ws->tile = dense_tile(n);
    int ok = (ws->swork = malloc(AF_SCORES_WORK(n, n, d) * sizeof(double))) != NULL;
    ok = ok && (ws->E = malloc(ws->tile * n * sizeof(double)));
    ok = ok && (ws->rinv = malloc(ws->tile * sizeof(double)));
    if (d == 2 && ws->p.norm != AF_ATTN_SINKHORN) {
        /* the tiled backend's pass for L2 self-scores (dense_softmax): its
         * weights and accumulators, and in single precision the float
         * copies, O(n) */
        ok = ok && (ws->symw = malloc(n * sizeof *ws->symw));
        ok = ok && (ws->acc = malloc((size_t)ws->nthreads * 3 * n * sizeof(double)));
        if (ws->p.precision == AF_PRECISION_SINGLE) {
            ok = ok && (ws->symwf = malloc(n * sizeof *ws->symwf));
            ok = ok && (ws->Xtf = malloc(2 * n * sizeof *ws->Xtf));
        }
    }
    if (ok && ws->p.norm == AF_ATTN_SINKHORN) {
        ok = (ws->C = malloc(n * n * sizeof(double))) != NULL;
        ok = ok && (ws->sk = af_sinkhorn_alloc(n, n));
        if (ok) /* the stored paths' exps in the workspace's precision */
            ws->sk->src.single = ws->p.precision == AF_PRECISION_SINGLE;
    }
    if (!ok)
        return af_error(AF_ENOMEM, "attention: out of memory (dense backend, n = %zu needs "
                                   "%.1f MB; the tiled backend needs %.1f MB)", n,
                        af_backend_bytes(af_backend_dense, n, d, ws->p.norm, ws->nthreads) / 1e6,
                        af_backend_bytes(af_backend_tiled, n, d, ws->p.norm, ws->nthreads) / 1e6);
    return AF_SUCCESS;
}

static void dense_release(af_attn_ws *ws)
{
    free(ws->K);
    free(ws->C);
    free(ws->swork);
    free(ws->E);
    free(ws->rinv);
    free(ws->symw);
    free(ws->symwf);
    free(ws->Xtf);
    free(ws->acc);
}

/* One SoftMax row for d = 2 in three sweeps over it, with the tiled
 * backend's kernels: scores and their maximum together; the exp with the
 * terms below exp(-708) flushed (the row sum is >= 1, so a dropped term
 * < 2.3e-308 cannot show); row sum and both dots with X together. Returns
 * 1 if the row is not finite. */
static int softmax_row_d2(int single, size_t n, double a0, double a1, const double *cbias,
                          const double *x0, const double *x1, double *e, double kx[2])
{
    double mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (size_t j = 0; j < n; j++) {
        const double c = cbias[j] + a0 * x0[j] + a1 * x1[j];
        e[j] = c;
        mx = c > mx ? c : mx;
    }
    if (!isfinite(mx))
        return 1;
    af__row_exp_flushed(single, n, e, NULL, mx, e);
    double sd[3];
    af__row_sum_dot2(n, e, x0, x1, sd);
    if (!isfinite(sd[0]) || !(sd[0] > 0))
        return 1;
    kx[0] = sd[1] / sd[0];
    kx[1] = sd[2] / sd[0];
    return 0;
}

/* Fused SoftMax / USA: KX = K X, block by block. r_i cancels in SoftMax
 * and is the USA row shift. */
static af_status dense_softmax(af_attn_ws *ws, const double *X, double *KX)
{
    const size_t n = ws->p.n, d = ws->p.d, B = ws->tile;
    const int usa = ws->p.norm == AF_ATTN_USA, small_d = d <= DENSE_ROW_KERNEL_MAX_D;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    af__attn_prepare(ws, X, small_d);
    const double s = ws->s, *L = ws->L;
    const double inv_n = 1.0 / (double)n;
    int bad = 0;
    if (ws->acc && ws->l2 && af__tiled_sym_prepare(ws, usa)) {
        /* L2 self-scores at d = 2 (s > 0): C_ij is symmetric with its row
         * maximum on the diagonal, so each exp serves row i and row j and
         * no shift is needed. The tiled backend's pass over the upper
         * triangle does that, four rows per sweep, and in single precision
         * as the issue defines it (float scores and exps, sums in double;
         * its error bound: docs, test_backend's single_error_bound). It
         * replaced a dense-only kernel of the same design that was 7 %
         * slower at n = 1e4. */
        if (single)
            af__float_coordinates(ws);
        if (af__tiled_softmax_sym(ws, usa, KX))
            return af__attn_softmax_failed(ws);
        return AF_SUCCESS;
    }
    if (small_d) {
        /* Row kernels: c_j = s L_i . x_j + c_j as d axpys over X^T, then
         * exp, then d dot products with X^T; all in cache for small d. */
        const double *Xt = ws->Xt;
#pragma omp parallel num_threads(ws->nthreads) reduction(| : bad) if (n > 256)
        {
            double *e = ws->rows + (size_t)omp_get_thread_num() * n;
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i++) {
                if (d == 2 && !usa) {
                    bad |= softmax_row_d2(single, n, s * L[2 * i], s * L[2 * i + 1], ws->cbias,
                                          Xt, Xt + n, e, KX + 2 * i);
                    continue;
                }
                memcpy(e, ws->cbias, n * sizeof *e);
                for (size_t k = 0; k < d; k++) {
                    const double a = s * L[i * d + k], *xt = Xt + k * n;
#pragma omp simd
                    for (size_t j = 0; j < n; j++)
                        e[j] += a * xt[j];
                }
                double shift = -ws->rbias[i];
                if (!usa)
                    shift = af__row_max_shifted(n, e, NULL);
                af__row_exp_p(single, n, e, NULL, shift, e);
                const double sum = af__row_sum(n, e);
                bad |= !isfinite(shift) || !isfinite(sum) || !(sum > 0);
                const double w = usa ? inv_n : 1.0 / sum;
                for (size_t k = 0; k < d; k++) {
                    const double *xt = Xt + k * n;
                    double acc = 0;
#pragma omp simd reduction(+ : acc)
                    for (size_t j = 0; j < n; j++)
                        acc += e[j] * xt[j];
                    KX[i * d + k] = w * acc;
                }
            }
        }
    }
    for (size_t i0 = small_d ? n : 0; i0 < n; i0 += B) {
        const size_t b = n - i0 < B ? n - i0 : B;
        double *E = ws->E;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)n, (int)d, s,
                    L + i0 * d, (int)d, X, (int)d, 0.0, E, (int)n);
        for (size_t r = 0; r < b; r++) {
            double *e = E + r * n;
            const double *cb = ws->cbias;
            const double shift = usa ? -ws->rbias[i0 + r] : af__row_max_shifted(n, e, cb);
            af__row_exp_p(single, n, e, cb, shift, e);
            const double sum = af__row_sum(n, e);
            bad |= !isfinite(shift) || !isfinite(sum) || !(sum > 0);
            ws->rinv[r] = usa ? inv_n : 1.0 / sum;
        }
        if (bad)
            break;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)b, (int)d, (int)n, 1.0, E,
                    (int)n, X, (int)d, 0.0, KX + i0 * d, (int)d);
        for (size_t r = 0; r < b; r++)
            for (size_t k = 0; k < d; k++)
                KX[(i0 + r) * d + k] *= ws->rinv[r];
    }
    if (bad)
        return af__attn_softmax_failed(ws);
    return AF_SUCCESS;
}

/* Up to this d the L2 Sinkhorn kernel is built straight from the tokens
 * and its passes carry K X along (the flows' d = 1, 2). */
#define DENSE_L2_KERNEL_MAX_D 2

/* The tolerance-mode symmetric solve of L2 self-scores (s = beta / eps > 0)
 * can skip the stored scores: C_ij = -s |x_i - x_j|^2 / 2 <= 0 with C_ii = 0,
 * so every row maximum is the diagonal's 0, K0 = exp(C) needs no shifts and
 * no pass over C, and the relaxed update never leaves the scaling form's
 * range on its own (a_i <= 1). A requested path other than the symmetric
 * one, a fixed count, the Hilbert bound (it reads C) or non-finite tokens
 * (af_scores names the bad entry) take the general route. */
static int l2_kernel_applies(const af_attn_ws *ws, const double *X, const af_sinkhorn_options *o)
{
    const size_t d = ws->p.d;
    if (ws->p.scores.kind != AF_SCORES_L2 || !(ws->p.scores.beta / ws->p.scores.eps > 0)
        || d > DENSE_L2_KERNEL_MAX_D || o->iters != 0 || o->compute_bound != 0
        || (o->path && o->path != af_sinkhorn_symmetric))
        return 0;
    return af__tokens_finite(ws, X);
}

/* Row i of K0: out[j] = exp(C_ij), j = i .. n - 1, with C_ij exactly as
 * af_scores writes the L2 self-scores (s x_i . x_j - s (|x_i|^2 + |x_j|^2)
 * / 2, clipped at 0, C_ii = 0), the scores never stored (ws->X the tokens,
 * ws->swork their |x_i|^2). Single precision: the float32 exp of the
 * rounded argument, as everywhere, widened to double (exact in float, the
 * storage); those below the smallest normal float (1.2e-38) as 0, which
 * keeps expf on its fast path: float32 storage holds no relative precision
 * there anyway, and a row sum of diag(a) K0 diag(a) is at least its
 * diagonal a_i^2, so they move it by less than n max(a) 1.2e-38 / a_i
 * relative. Called by the solve's first pass, which sums each row while it
 * is in cache and then streams it to the stored kernel. */
static void build_l2_row(void *ctx, size_t i, double *out)
{
    const af_attn_ws *ws = ctx;
    const size_t n = ws->p.n, d = ws->p.d;
    const double *X = ws->X, *nx = ws->swork, *xi = X + i * d;
    const double scale = ws->p.scores.beta / ws->p.scores.eps, h = 0.5 * scale;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    double *k = out;
    k[i] = 1.0; /* exp(0) */
    if (d == 2) {
        const double a0 = xi[0], a1 = xi[1], hi = nx[i];
        if (!single) {
#pragma omp simd
            for (size_t j = i + 1; j < n; j++) {
                const double v = scale * (a0 * X[2 * j] + a1 * X[2 * j + 1]) - h * (hi + nx[j]);
                k[j] = exp(v > 0 ? 0 : v);
            }
            return;
        }
#pragma omp simd
        for (size_t j = i + 1; j < n; j++) {
            const double v = scale * (a0 * X[2 * j] + a1 * X[2 * j + 1]) - h * (hi + nx[j]);
            k[j] = v > 0 ? 0 : v;
        }
    }
    for (size_t j = d == 2 ? n : i + 1; j < n; j++) {
        const double *xj = X + j * d;
        double dot = 0;
        for (size_t c = 0; c < d; c++)
            dot += xi[c] * xj[c];
        const double v = scale * dot - h * (nx[i] + nx[j]);
        k[j] = v > 0 ? 0 : v;
    }
    if (!single)
        af__row_exp(n - i - 1, k + i + 1, NULL, 0.0, k + i + 1);
    else
        af__row_exp_flushed(1, n - i - 1, k + i + 1, NULL, 0.0, k + i + 1);
}

/* |x_i|^2 into nx, for build_l2_row. */
static void l2_norms(size_t n, size_t d, const double *X, double *nx)
{
    for (size_t i = 0; i < n; i++) {
        double q = 0;
        for (size_t k = 0; k < d; k++)
            q += X[i * d + k] * X[i * d + k];
        nx[i] = q;
    }
}

/* The stored scores, for the solve's fall-back to log space. */
static void fill_scores(void *ctx)
{
    af_attn_ws *ws = ctx;
    af_scores(&ws->p.scores, ws->p.n, ws->p.n, ws->p.d, ws->X, ws->X, ws->C, ws->swork);
}

static af_status dense_sinkhorn(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                                af_sinkhorn_info *info)
{
    const size_t n = ws->p.n, d = ws->p.d;
    if (l2_kernel_applies(ws, X, opt)) {
        af__attn_prepare(ws, X, 1); /* X^T: the right-hand sides of K X */
        l2_norms(n, d, X, ws->swork);
        ws->X = X;
        return af__sinkhorn_solve_sym_kernel(ws->sk, ws->C, fill_scores, build_l2_row, ws,
                                             ws->Xt, d, opt, info);
    }
    af_status st = af_scores(&ws->p.scores, n, n, d, X, X, ws->C, ws->swork);
    if (!st)
        st = af_sinkhorn(ws->sk, ws->C, opt, NULL, info);
    return st;
}

static af_status dense_apply(af_attn_ws *ws, double *KX)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const double *P = af__sym_kernel_product(ws->sk), *a = ws->sk->u;
    if (!P)
        return af_sinkhorn_apply(ws->sk, d, ws->X, KX);
    /* K X = diag(a) K0 (a X), K0 (a X) from the last pass of the solve */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            KX[i * d + k] = a[i] * P[i * d + k];
    return AF_SUCCESS;
}

static af_status dense_kernel(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                              double *K)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    if (ws->p.norm == AF_ATTN_SINKHORN) {
        ws->X = X;
        af_sinkhorn_info info;
        af_status st = dense_sinkhorn(ws, X, opt, &info);
        return st ? st : af_sinkhorn_matrix(ws->sk, K);
    }
    af_status st = af_scores(&ws->p.scores, n, n, d, X, X, K, ws->swork);
    if (st)
        return st;
    if (ws->p.norm == AF_ATTN_USA) {
        /* Z_i = n: no row shift is possible, so large scores overflow. */
        const double inv_n = 1.0 / (double)n;
        af__row_exp_p(single, n * n, K, NULL, 0.0, K);
        for (size_t k = 0; k < n * n; k++) {
            K[k] *= inv_n;
            if (!isfinite(K[k]))
                return af_error(AF_ENUMERIC, "flow: USA kernel exp(C) overflows");
        }
        return AF_SUCCESS;
    }
    if (single) /* the rows as the SoftMax kernels form them: float exps, double sums */
        for (size_t i = 0; i < n; i++) {
            double *k = K + i * n;
            af__row_exp_p(1, n, k, NULL, af__row_max_shifted(n, k, NULL), k);
            const double inv = 1.0 / af__row_sum(n, k);
            for (size_t j = 0; j < n; j++)
                k[j] *= inv;
        }
    return single ? AF_SUCCESS : af_softmax(n, n, K, K);
}

/* n x n buffer on first use; AF_ENOMEM with the size otherwise. */
static af_status square_buffer(double **buf, size_t n)
{
    if (!*buf && !(*buf = malloc(n * n * sizeof(double))))
        return af_error(AF_ENOMEM, "attention: out of memory for a %zu x %zu matrix "
                                   "(the tiled backend needs none)", n, n);
    return AF_SUCCESS;
}

/* From K written out: its sums and products with X (dgemm). */
static af_status dense_marginals(af_attn_ws *ws, double *r, double *c, double *KX, double *KtX)
{
    const size_t n = ws->p.n, d = ws->p.d;
    af_status st = square_buffer(&ws->K, n);
    if (st || (st = af_sinkhorn_matrix(ws->sk, ws->K)))
        return st;
    const double *K = ws->K;
    if (r)
        for (size_t i = 0; i < n; i++) {
            double v = 0;
            for (size_t j = 0; j < n; j++)
                v += K[i * n + j];
            r[i] = v;
        }
    if (c) {
        memset(c, 0, n * sizeof *c);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                c[j] += K[i * n + j];
    }
    if (KX)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d, (int)n, 1.0, K,
                    (int)n, ws->X, (int)d, 0.0, KX, (int)d);
    if (KtX)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)d, (int)n, 1.0, K,
                    (int)n, ws->X, (int)d, 0.0, KtX, (int)d);
    return AF_SUCCESS;
}

/* Column sums of N_R(exp C), streamed row by row over the stored scores
 * (overwritten: they are scratch here). */
static af_status dense_softmax_colsums(af_attn_ws *ws, const double *X, double *cs)
{
    const size_t n = ws->p.n, d = ws->p.d;
    double **buf = ws->p.norm == AF_ATTN_SINKHORN ? &ws->K : &ws->C;
    af_status st = square_buffer(buf, n);
    if (st || (st = af_scores(&ws->p.scores, n, n, d, X, X, *buf, ws->swork)))
        return st;
    double *C = *buf;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    memset(cs, 0, n * sizeof *cs);
#pragma omp parallel for schedule(static) reduction(+ : cs[:n]) if (n > 256)
    for (size_t i = 0; i < n; i++) {
        double *c = C + i * n;
        af__row_exp_p(single, n, c, NULL, af__row_max_shifted(n, c, NULL), c);
        const double inv = 1.0 / af__row_sum(n, c);
        for (size_t j = 0; j < n; j++)
            cs[j] += c[j] * inv;
    }
    return AF_SUCCESS;
}

const af_backend_type af_backend_type_dense = {
    "dense", 1, dense_bytes, dense_init, dense_release, dense_softmax,
    dense_sinkhorn, dense_apply, dense_kernel, dense_marginals, dense_softmax_colsums,
    .distributes = 0, /* Sinkhorn on the stored n x n scores: one process */
};

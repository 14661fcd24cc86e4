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
    if (d == 2)
        b += 8.0 * 3.0 * N * threads;
    if (d == 2 && norm != AF_ATTN_SINKHORN) /* single precision's float pass */
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
    if (d == 2)
        ok = ok && (ws->colacc = malloc((size_t)ws->nthreads * 3 * n * sizeof(double)));
    if (d == 2 && ws->p.norm != AF_ATTN_SINKHORN && ws->p.precision == AF_PRECISION_SINGLE) {
        /* the tiled backend's float pass for L2 self-scores (dense_softmax):
         * its weights, float copies and accumulators, O(n) */
        ok = ok && (ws->symw = malloc(n * sizeof *ws->symw));
        ok = ok && (ws->symwf = malloc(n * sizeof *ws->symwf));
        ok = ok && (ws->Xtf = malloc(2 * n * sizeof *ws->Xtf));
        ok = ok && (ws->acc = malloc((size_t)ws->nthreads * 3 * n * sizeof(double)));
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
    free(ws->colacc);
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

/* SoftMax for d = 2 and L2 scores (s > 0): C_ij = -s |x_i - x_j|^2 / 2 is
 * symmetric with its row maximum on the diagonal (C_ii = 0 up to
 * rounding), so the shift 0 serves every row and each exp(C_ij) serves row
 * i and row j: half the exps. Rows go in blocks of four, each block in one
 * sweep over the columns j past it: the four scores of column j, their
 * flushed exps (every row sum is >= exp(C_ii) ~ 1, so a dropped term below
 * the fast exp range, < 2.3e-308 or float 1.2e-38, cannot show), the rows'
 * sums and dots, and the same terms added to row j in per-thread column
 * accumulators: the column data and the accumulators are loaded once per
 * four rows. Single precision rounds each argument to float32 and takes
 * expf; every sum stays double. */
static inline __attribute__((always_inline)) void
sym4_sweep_flush(size_t n, size_t i0, double s, const double *q, const double *x0,
                 const double *x1, double *a0, double *a1, double *a2, const int flush)
{
    const double lo = AF_EXP_FAST_MIN, tiny = exp(lo);
    const double q0 = q[i0], q1 = q[i0 + 1], q2 = q[i0 + 2], q3 = q[i0 + 3];
    const double p0 = x0[i0], p1 = x0[i0 + 1], p2 = x0[i0 + 2], p3 = x0[i0 + 3];
    const double w0 = x1[i0], w1 = x1[i0 + 1], w2 = x1[i0 + 2], w3 = x1[i0 + 3];
    const double b0 = s * p0, b1 = s * p1, b2 = s * p2, b3 = s * p3;
    const double c0 = s * w0, c1 = s * w1, c2 = s * w2, c3 = s * w3;
    double r0 = 0, r1 = 0, r2 = 0, r3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0;
    double v0 = 0, v1 = 0, v2 = 0, v3 = 0;
#pragma omp simd reduction(+ : r0, r1, r2, r3, u0, u1, u2, u3, v0, v1, v2, v3)
    for (size_t j = i0 + 4; j < n; j++) {
        const double qj = q[j], y0 = x0[j], y1 = x1[j];
        double e0 = (q0 + qj) + (b0 * y0 + c0 * y1), e1 = (q1 + qj) + (b1 * y0 + c1 * y1);
        double e2 = (q2 + qj) + (b2 * y0 + c2 * y1), e3 = (q3 + qj) + (b3 * y0 + c3 * y1);
        if (flush) {
            e0 = e0 < lo ? lo : e0, e1 = e1 < lo ? lo : e1;
            e2 = e2 < lo ? lo : e2, e3 = e3 < lo ? lo : e3;
        }
        e0 = exp(e0), e1 = exp(e1), e2 = exp(e2), e3 = exp(e3);
        if (flush) {
            e0 = e0 <= tiny ? 0.0 : e0, e1 = e1 <= tiny ? 0.0 : e1;
            e2 = e2 <= tiny ? 0.0 : e2, e3 = e3 <= tiny ? 0.0 : e3;
        }
        r0 += e0, r1 += e1, r2 += e2, r3 += e3;
        u0 += e0 * y0, u1 += e1 * y0, u2 += e2 * y0, u3 += e3 * y0;
        v0 += e0 * y1, v1 += e1 * y1, v2 += e2 * y1, v3 += e3 * y1;
        a0[j] += (e0 + e1) + (e2 + e3);
        a1[j] += (e0 * p0 + e1 * p1) + (e2 * p2 + e3 * p3);
        a2[j] += (e0 * w0 + e1 * w1) + (e2 * w2 + e3 * w3);
    }
    a0[i0] += r0, a0[i0 + 1] += r1, a0[i0 + 2] += r2, a0[i0 + 3] += r3;
    a1[i0] += u0, a1[i0 + 1] += u1, a1[i0 + 2] += u2, a1[i0 + 3] += u3;
    a2[i0] += v0, a2[i0 + 1] += v1, a2[i0 + 2] += v2, a2[i0 + 3] += v3;
}

/* The sweep of the block with its flush when one of its scores may fall
 * below the fast exp range: C_ij >= -s (|x_i| + |x_j|)^2 / 2, so with r the
 * block's largest |x_i|, R the largest |x_j| and s (r + R)^2 / 2 below 707
 * (a unit under the range: the scores' rounding is far smaller) nothing
 * does, and the clamp and select drop out of the loop. */
static void sym4_sweep_double(size_t n, size_t i0, double s, const double *q, const double *x0,
                              const double *x1, double *a0, double *a1, double *a2, double R)
{
    double r = 0;
    for (size_t k = i0; k < i0 + 4; k++)
        r = fmax(r, sqrt(x0[k] * x0[k] + x1[k] * x1[k]));
    if (0.5 * s * (r + R) * (r + R) < -AF_EXP_FAST_MIN - 1.0)
        sym4_sweep_flush(n, i0, s, q, x0, x1, a0, a1, a2, 0);
    else
        sym4_sweep_flush(n, i0, s, q, x0, x1, a0, a1, a2, 1);
}

/* Single precision: the same sweep in chunks of columns, with the float
 * exps in a loop of their own (gcc 12 leaves expf scalar when the clamp,
 * the conversions and the select share its loop): the clamped arguments
 * into an L1 buffer, their float32 exps (of the rounded arguments) widened
 * back into it, then the double sums. */
#define SYM4_CHUNK 256
static void sym4_sweep_single(size_t n, size_t i0, double s, const double *q, const double *x0,
                              const double *x1, double *a0, double *a1, double *a2)
{
    double e[4][SYM4_CHUNK];
    const double lo = AF_EXPF_FAST_MIN, tiny = (double)expf((float)lo);
    double qi[4], p[4], w[4], b[4], c[4], r[4] = {0}, u[4] = {0}, v[4] = {0};
    for (int k = 0; k < 4; k++) {
        qi[k] = q[i0 + (size_t)k], p[k] = x0[i0 + (size_t)k], w[k] = x1[i0 + (size_t)k];
        b[k] = s * p[k], c[k] = s * w[k];
    }
    for (size_t j0 = i0 + 4; j0 < n; j0 += SYM4_CHUNK) {
        const size_t len = n - j0 < SYM4_CHUNK ? n - j0 : SYM4_CHUNK;
        const double *qj = q + j0, *y0 = x0 + j0, *y1 = x1 + j0;
        for (int k = 0; k < 4; k++) {
            double *ek = e[k];
            const double qk = qi[k], bk = b[k], ck = c[k];
#pragma omp simd
            for (size_t j = 0; j < len; j++) {
                const double arg = (qk + qj[j]) + (bk * y0[j] + ck * y1[j]);
                ek[j] = arg < lo ? lo : arg;
            }
#pragma omp simd
            for (size_t j = 0; j < len; j++)
                ek[j] = (double)expf((float)ek[j]);
        }
        double r0 = 0, r1 = 0, r2 = 0, r3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0;
        double v0 = 0, v1 = 0, v2 = 0, v3 = 0;
        double *c0 = a0 + j0, *c1 = a1 + j0, *c2 = a2 + j0;
#pragma omp simd reduction(+ : r0, r1, r2, r3, u0, u1, u2, u3, v0, v1, v2, v3)
        for (size_t j = 0; j < len; j++) {
            const double e0 = e[0][j] <= tiny ? 0.0 : e[0][j];
            const double e1 = e[1][j] <= tiny ? 0.0 : e[1][j];
            const double e2 = e[2][j] <= tiny ? 0.0 : e[2][j];
            const double e3 = e[3][j] <= tiny ? 0.0 : e[3][j];
            r0 += e0, r1 += e1, r2 += e2, r3 += e3;
            u0 += e0 * y0[j], u1 += e1 * y0[j], u2 += e2 * y0[j], u3 += e3 * y0[j];
            v0 += e0 * y1[j], v1 += e1 * y1[j], v2 += e2 * y1[j], v3 += e3 * y1[j];
            c0[j] += (e0 + e1) + (e2 + e3);
            c1[j] += (e0 * p[0] + e1 * p[1]) + (e2 * p[2] + e3 * p[3]);
            c2[j] += (e0 * w[0] + e1 * w[1]) + (e2 * w[2] + e3 * w[3]);
        }
        r[0] += r0, r[1] += r1, r[2] += r2, r[3] += r3;
        u[0] += u0, u[1] += u1, u[2] += u2, u[3] += u3;
        v[0] += v0, v[1] += v1, v[2] += v2, v[3] += v3;
    }
    for (size_t k = 0; k < 4; k++)
        a0[i0 + k] += r[k], a1[i0 + k] += u[k], a2[i0 + k] += v[k];
}

static double exp_single(double x) { return (double)expf((float)x); }

/* The pairs i <= j inside rows [i0, i1) (a block's diagonal triangle, or
 * the last n mod 4 rows), one term at a time, in the kernel's precision. */
static void sym_corner(size_t i0, size_t i1, double s, int single, const double *q,
                       const double *x0, const double *x1, double *a0, double *a1, double *a2)
{
    for (size_t i = i0; i < i1; i++)
        for (size_t j = i; j < i1; j++) {
            const double c = (q[i] + q[j]) + (s * x0[i] * x0[j] + s * x1[i] * x1[j]);
            const double e = single ? exp_single(c) : exp(c); /* near the diagonal: no flush */
            a0[i] += e, a1[i] += e * x0[j], a2[i] += e * x1[j];
            if (j > i)
                a0[j] += e, a1[j] += e * x0[i], a2[j] += e * x1[i];
        }
}

static int softmax_symmetric_l2_d2(af_attn_ws *ws, double *KX)
{
    const size_t n = ws->p.n, T = (size_t)ws->nthreads, nb = n / 4;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    const double s = ws->s, *x0 = ws->Xt, *x1 = ws->Xt + n, *q = ws->cbias;
    double R = 0; /* the largest |x_j| (the double sweep's flush test) */
    for (size_t j = 0; j < n; j++)
        R = fmax(R, sqrt(x0[j] * x0[j] + x1[j] * x1[j]));
    double *acc = ws->colacc;
    int bad = 0;
    memset(acc, 0, T * 3 * n * sizeof *acc);
#pragma omp parallel num_threads(ws->nthreads) reduction(| : bad) if (n > 256)
    {
        const size_t t = (size_t)omp_get_thread_num();
        double *a0 = acc + t * 3 * n, *a1 = a0 + n, *a2 = a1 + n;
        /* cyclic chunks: the triangle balanced, and the same rows on the same
         * thread every run (reproducible sums) */
#pragma omp for schedule(static, 8)
        for (size_t b = 0; b < nb; b++) {
            if (single)
                sym4_sweep_single(n, 4 * b, s, q, x0, x1, a0, a1, a2);
            else
                sym4_sweep_double(n, 4 * b, s, q, x0, x1, a0, a1, a2, R);
            sym_corner(4 * b, 4 * b + 4, s, single, q, x0, x1, a0, a1, a2);
        }
#pragma omp single
        sym_corner(4 * nb, n, s, single, q, x0, x1, a0, a1, a2);
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double r[3] = {0, 0, 0};
            for (size_t u = 0; u < T; u++)
                for (int k = 0; k < 3; k++)
                    r[k] += acc[u * 3 * n + (size_t)k * n + i];
            bad |= !isfinite(r[0]) || !(r[0] > 0);
            KX[2 * i] = r[1] / r[0];
            KX[2 * i + 1] = r[2] / r[0];
        }
    }
    return bad;
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
    if (single && ws->acc && ws->l2 && af__tiled_sym_prepare(ws, usa)) {
        /* single precision as the issue defines it, float scores and exps,
         * sums in double: the tiled backend's float pass over the upper
         * triangle (its error bound: docs, test_backend's
         * single_error_bound); at n = 1e4 it is also the faster kernel */
        af__float_coordinates(ws);
        if (af__tiled_softmax_sym(ws, usa, KX))
            return af__attn_softmax_failed(ws);
        return AF_SUCCESS;
    }
    if (d == 2 && !usa && ws->l2 && s > 0) {
        if (softmax_symmetric_l2_d2(ws, KX))
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

/* The tiled (matrix-free) backend: nothing n x n is ever stored. SoftMax,
 * USA and K X from Sinkhorn potentials run one fused pass per block of rows
 * over L1-sized column tiles (block_pass: scores, exp, sum and K X of a
 * tile together, the shift a running row maximum); on L2 self-scores
 * and SoftMax on dot self-scores with A = I (d = 2) the upper triangle
 * only, each exp serving two rows (softmax_sym_tiled.c). The energy's marginals
 * and the SoftMax column sums regenerate one score row at a time into a
 * per-thread n-vector (0.8 MB at n = 1e5). Sinkhorn runs af_sinkhorn on the
 * same row generator: the alternating iteration in log space (one pass of
 * scores + exp per normalisation), the symmetric one in scaling form on
 * upper triangles (sinkhorn_tiled.c, half the exps); the potentials carry
 * the warm start.
 *
 * SoftMax and the Sinkhorn output after a row normalisation go through the
 * same block_pass (with g = 0 after one normalisation, C + g == C exactly),
 * so a single Sinkhorn normalisation gives SoftMax bit for bit (where
 * SoftMax takes the symmetric pass, so does that output). The SoftMax
 * and K X blocks cover this rank's rows [row_begin, row_end) only. */
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "backend_internal.h"

/* Column accumulators (T (d + 1) n doubles): allocated with a SoftMax /
 * USA workspace (the symmetric pass, softmax_sym_tiled.c); a Sinkhorn
 * workspace takes them on first use (its one-normalisation output on
 * symmetric self-scores, af_attn_marginals) in place of the symmetric
 * path's accumulators, which a fixed-count solve never allocates: counted
 * once in af__sinkhorn_bytes. Besides: the symmetric pass's weights (8 n),
 * and the float copies of X^T and of the weights (4 (d + 1) n, counted
 * whatever the precision: bytes() does not know it). */
static double tiled_bytes(size_t n, size_t d, af_attn_norm norm, int threads)
{
    const double N = (double)n, D = (double)d;
    const double own = norm == AF_ATTN_SINKHORN ? af__sinkhorn_bytes(n, n, d, threads, 1)
                                                : 8.0 * threads * (D + 1) * N;
    return own + 8.0 * N + 4.0 * (D + 1) * N;
}

/* ws->acc, allocated if it is not yet (not cleared). */
static af_status ensure_accumulators(af_attn_ws *ws)
{
    const size_t len = (size_t)ws->nthreads * (ws->p.d + 1) * ws->p.n;
    if (!ws->acc && !(ws->acc = malloc(len * sizeof(double))))
        return af_error(AF_ENOMEM, "attention: out of memory (tiled column accumulators)");
    return AF_SUCCESS;
}

static af_status tiled_init(af_attn_ws *ws)
{
    const size_t n = ws->p.n;
    if (ws->p.norm == AF_ATTN_SINKHORN && !(ws->sk = af__sinkhorn_alloc_matrix_free(n, n)))
        return af_error(AF_ENOMEM, "attention: out of memory (tiled backend, n = %zu)", n);
    if (ws->p.norm != AF_ATTN_SINKHORN && ensure_accumulators(ws))
        return AF_ENOMEM;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    if (!(ws->symw = malloc(n * sizeof *ws->symw))
        || (single && !(ws->Xtf = malloc(ws->p.d * n * sizeof *ws->Xtf)))
        || (single && !(ws->symwf = malloc(n * sizeof *ws->symwf))))
        return af_error(AF_ENOMEM, "attention: out of memory (tiled backend, n = %zu)", n);
    return AF_SUCCESS;
}

static void tiled_release(af_attn_ws *ws)
{
    free(ws->acc);
    free(ws->Xtf);
    free(ws->symw);
    free(ws->symwf);
}

/* Per-thread column accumulators (d + 1 rows of n each), cleared. */
static af_status column_accumulators(af_attn_ws *ws)
{
    const size_t len = (size_t)ws->nthreads * (ws->p.d + 1) * ws->p.n;
    af_status st = ensure_accumulators(ws);
    if (st)
        return st;
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

/* Scores C_ij = (c_j + r_i) + s L_i . x_j of row i for j in [j0, j0 + len)
 * into buf. L2 scores are clipped at 0 (-|x - y|^2 <= 0) like af_scores. */
static void score_tile(const af_attn_ws *ws, size_t i, size_t j0, size_t len, double *buf)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const double r = ws->rbias[i], *cb = ws->cbias + j0;
    if (d == 2) {
        /* one sweep instead of four (d = 2, the benchmarked case); the
         * same operations in the same order, so the same bits */
        const double a0 = ws->s * ws->L[i * d], a1 = ws->s * ws->L[i * d + 1];
        const double *x0 = ws->Xt + j0, *x1 = ws->Xt + n + j0;
        const int l2 = ws->l2;
#pragma omp simd
        for (size_t j = 0; j < len; j++) {
            double c = cb[j] + r;
            c += a0 * x0[j];
            c += a1 * x1[j];
            buf[j] = l2 && c > 0 ? 0 : c;
        }
        return;
    }
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
}

/* score_tile for d = 2 with the tile's minimum and maximum from the same
 * sweep (the fused pass needs both: the running maximum, and whether any
 * exp falls below the fast range). Same operations as score_tile. */
static void score_tile_range(const af_attn_ws *ws, size_t i, size_t j0, size_t len, double *buf,
                             double *lo, double *hi)
{
    const size_t n = ws->p.n;
    const double r = ws->rbias[i], *cb = ws->cbias + j0;
    const double a0 = ws->s * ws->L[i * 2], a1 = ws->s * ws->L[i * 2 + 1];
    const double *x0 = ws->Xt + j0, *x1 = ws->Xt + n + j0;
    const int l2 = ws->l2;
    double mn = INFINITY, mx = -INFINITY;
#pragma omp simd reduction(min : mn) reduction(max : mx)
    for (size_t j = 0; j < len; j++) {
        double c = cb[j] + r;
        c += a0 * x0[j];
        c += a1 * x1[j];
        c = l2 && c > 0 ? 0 : c;
        buf[j] = c;
        mn = c < mn ? c : mn;
        mx = c > mx ? c : mx;
    }
    *lo = mn;
    *hi = mx;
}

/* Row i of the scores from column j0 on, into buf. */
static const double *score_row_from(const void *ctx, size_t i, size_t j0, double *buf)
{
    const af_attn_ws *ws = ctx;
    score_tile(ws, i, j0, ws->p.n - j0, buf);
    return buf;
}

static void score_tile_cb(const void *ctx, size_t i, size_t j0, size_t len, double *buf)
{
    score_tile(ctx, i, j0, len, buf);
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

/* out = w * sum_j e_j x_j for an exponentiated full row e. */
static void row_times_x(const af_attn_ws *ws, const double *e, double w, double *out)
{
    for (size_t k = 0; k < ws->p.d; k++)
        out[k] = af__row_dot(ws->p.n, e, ws->Xt + k * ws->p.n) * w;
}

/* The fused row pass works on blocks of AF_ROW_BLOCK rows against tiles
 * of AF_ROW_TILE columns: a tile's scores, exps, sum and K X stay in L1
 * (4 KB) instead of streaming an n-vector through the cache once per step
 * (scores, max, exp, sum, d dots: d + 4 passes), and the column data of a
 * tile (c_j, x_j: (d + 1) x 4 KB) is read from memory once per block of
 * rows instead of once per row (at n = 1e5, d = 2 a row otherwise reads
 * 2.4 MB: memory bandwidth, not exp, was the bound). Each row's result is
 * accumulated over the tiles in the same order whatever its block. */
#define AF_ROW_TILE 512
#define AF_ROW_BLOCK 16

/* One row-tile step of block_pass in float (single precision, dot scores,
 * d = 2, no g): scores s L_i . x_j from float coordinates (ws->Xtf) with
 * their maximum, the running shift as in block_pass, expf of the clamped
 * arguments (far terms written as 0, as af__row_exp_flushed does: the row
 * holds a term exp(0) = 1 under a running maximum), and the tile's sum and
 * K x partials summed in float (at most AF_ROW_TILE terms), then added into
 * the double row totals S, o: the double accumulation of single precision. */
static void dot_tile_float(const af_attn_ws *ws, size_t i, size_t j0, size_t len, int online,
                           double *m, double *S, double *o)
{
    const size_t n = ws->p.n;
    const float a0 = (float)(ws->s * ws->L[2 * i]), a1 = (float)(ws->s * ws->L[2 * i + 1]);
    const float *y0 = ws->Xtf + j0, *y1 = ws->Xtf + n + j0;
    const float lo = (float)AF_EXPF_FAST_MIN, tiny = expf((float)AF_EXPF_FAST_MIN);
    float e[AF_ROW_TILE], mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (size_t j = 0; j < len; j++) {
        const float c = fmaf(a1, y1[j], a0 * y0[j]);
        e[j] = c;
        mx = c > mx ? c : mx;
    }
    if (online) {
        if (mx == -INFINITY)
            return; /* every term of the tile is 0 */
        if (mx > *m) {
            const double scale = exp(*m - mx); /* 0 on the first tile */
            *S *= scale;
            o[0] *= scale;
            o[1] *= scale;
            *m = mx;
        }
    }
    const float sh = (float)*m;
#pragma omp simd
    for (size_t j = 0; j < len; j++) {
        const float x = e[j] - sh;
        e[j] = x < lo ? lo : x;
    }
#pragma omp simd
    for (size_t j = 0; j < len; j++)
        e[j] = expf(e[j]);
    float s0 = 0, s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s0, s1, s2)
    for (size_t j = 0; j < len; j++) {
        const float k = e[j] <= tiny ? 0.0f : e[j];
        s0 += k;
        s1 = fmaf(k, y0[j], s1);
        s2 = fmaf(k, y1[j], s2);
    }
    *S += (double)s0;
    o[0] += (double)s1;
    o[1] += (double)s2;
}

/* Rows [i0, i1) (at most AF_ROW_BLOCK) of K_ij = exp(C_ij + g_j - shift_i)
 * (g may be NULL): S[i - i0] = sum_j K_ij and out + i * d = sum_j K_ij x_j,
 * in one pass. With `online` the shift follows the running row maximum,
 * and what was accumulated under an older shift is rescaled by
 * exp(old - new) when a tile raises it (every exp argument is <= 0, so
 * nothing overflows, and the largest term is 1, so the sum cannot
 * underflow); shift returns the row maxima. Otherwise shift is given
 * (Sinkhorn potentials, USA). */
static void block_pass(const af_attn_ws *ws, size_t i0, size_t i1, const double *g, int online,
                       double *shift, double *S, double *out)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    const int in_float = single && d == 2 && !g && !ws->l2;
    double tile[AF_ROW_TILE];
    for (size_t i = i0; i < i1; i++) {
        S[i - i0] = 0;
        for (size_t k = 0; k < d; k++)
            out[i * d + k] = 0;
    }
    for (size_t j0 = 0; j0 < n; j0 += AF_ROW_TILE) {
        const size_t len = n - j0 < AF_ROW_TILE ? n - j0 : AF_ROW_TILE;
        const double *gt = g ? g + j0 : NULL;
        for (size_t i = i0; i < i1; i++) {
            double *m = shift + (i - i0), *o = out + i * d;
            if (in_float) {
                dot_tile_float(ws, i, j0, len, online, m, S + (i - i0), o);
                continue;
            }
            double lo = INFINITY, hi = -INFINITY;
            if (!gt && d == 2)
                score_tile_range(ws, i, j0, len, tile, &lo, &hi);
            else
                score_tile(ws, i, j0, len, tile);
            if (online) {
                const double tm = isfinite(lo) ? hi : af__row_max_shifted(len, tile, gt);
                if (tm == -INFINITY)
                    continue; /* every term of the tile is 0 */
                if (tm > *m) {
                    const double scale = exp(*m - tm); /* 0 on the first tile */
                    S[i - i0] *= scale;
                    for (size_t k = 0; k < d; k++)
                        o[k] *= scale;
                    *m = tm;
                }
            }
            /* the tile's range known: nothing to flush -> the plain kernel
             * without af__row_exp_flushed's own minimum sweep */
            if (isfinite(lo) && !(lo - *m < (single ? AF_EXPF_FAST_MIN : AF_EXP_FAST_MIN)))
                af__row_exp_p(single, len, tile, NULL, *m, tile);
            else
                af__row_exp_flushed(single, len, tile, gt, *m, tile);
            if (d == 2) {
                double sums[3];
                af__row_sum_dot2(len, tile, ws->Xt + j0, ws->Xt + n + j0, sums);
                S[i - i0] += sums[0];
                o[0] += sums[1];
                o[1] += sums[2];
                continue;
            }
            S[i - i0] += af__row_sum(len, tile);
            for (size_t k = 0; k < d; k++)
                o[k] += af__row_dot(len, tile, ws->Xt + k * n + j0);
        }
    }
}

/* K X for this rank's rows, AF_ROW_BLOCK rows per task: the row SoftMax
 * of C + g (g may be NULL) if `softmax`, else w exp(C_ij + g_j + f_i) x_j
 * (f may be NULL: 0). Returns nonzero if a row is not finite. */
static int rows_times_x(const af_attn_ws *ws, const double *g, const double *f, int softmax,
                        double w, double *KX)
{
    const size_t n = ws->p.n, d = ws->p.d, b0 = ws->row_begin, end = ws->row_end;
    const size_t blocks = (end - b0 + AF_ROW_BLOCK - 1) / AF_ROW_BLOCK;
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(ws->nthreads) reduction(| : bad) \
    AF_PAR_IF((double)n * n)
    for (size_t b = 0; b < blocks; b++) {
        const size_t i0 = b0 + b * AF_ROW_BLOCK, i1 = i0 + AF_ROW_BLOCK < end ? i0 + AF_ROW_BLOCK : end;
        double shift[AF_ROW_BLOCK], S[AF_ROW_BLOCK];
        for (size_t i = i0; i < i1; i++)
            shift[i - i0] = softmax ? -INFINITY : f ? -f[i] : 0.0;
        block_pass(ws, i0, i1, g, softmax, shift, S, KX);
        for (size_t i = i0; i < i1; i++) {
            const double scale = softmax ? 1.0 / S[i - i0] : w;
            if (softmax)
                bad |= !(isfinite(shift[i - i0]) && isfinite(S[i - i0]) && S[i - i0] > 0);
            for (size_t k = 0; k < d; k++) {
                KX[i * d + k] *= scale;
                bad |= !isfinite(KX[i * d + k]);
            }
        }
    }
    return bad;
}

/* ws->Xtf = X^T in float (single precision: the float passes read it). */
void af__float_coordinates(af_attn_ws *ws)
{
    if (ws->Xtf)
        for (size_t q = 0; q < ws->p.d * ws->p.n; q++)
            ws->Xtf[q] = (float)ws->Xt[q];
}

static af_status tiled_softmax(af_attn_ws *ws, const double *X, double *KX)
{
    const size_t n = ws->p.n;
    const int usa = ws->p.norm == AF_ATTN_USA;
    af__attn_prepare(ws, X, 1);
    af__float_coordinates(ws);
    const int bad = af__tiled_sym_prepare(ws, usa) ? af__tiled_softmax_sym(ws, usa, KX)
                                                 : rows_times_x(ws, NULL, NULL, !usa,
                                                                1.0 / (double)n, KX);
    if (bad)
        return af__attn_softmax_failed(ws);
    return AF_SUCCESS;
}

static af_status tiled_sinkhorn(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                                af_sinkhorn_info *info)
{
    af__attn_prepare(ws, X, 1);
    /* L2 self-scores at d = 2 on one process: the SoftMax upper-triangle
     * kernel, weighted, serves the symmetric iteration's bounded passes */
    const int sym = ws->l2 && af__tiled_sym_applies(ws);
    /* L2 self-scores of finite tokens need no scan for their row maxima
     * (non-finite tokens keep the scan, which names the bad score) */
    const af__score_source src = {score_row_from, score_entry, ws, ws->Xt, ws->p.d,
                                  ws->p.precision == AF_PRECISION_SINGLE, score_tile_cb,
                                  sym ? af__tiled_sym_weighted : NULL,
                                  ws->l2 && ws->p.scores.beta > 0 && af__tokens_finite(ws, X)};
    return af__sinkhorn_solve_source(ws->sk, &src, opt, info);
}

static int all_zero(size_t n, const double *g)
{
    for (size_t j = 0; j < n; j++)
        if (g[j] != 0)
            return 0;
    return 1;
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
    af__float_coordinates(ws);
    if (rows_last && all_zero(n, g) && af__tiled_sym_prepare(ws, 0)) {
        /* the row SoftMax of C + 0 = C (one normalisation from g = 0):
         * SoftMax's own pass, so that the result is SoftMax bit for bit */
        af_status st = ensure_accumulators(ws);
        if (st)
            return st;
        bad = af__tiled_softmax_sym(ws, 0, KX);
    } else {
        /* rows last from g = 0: C + g == C, so no g (SoftMax's own pass) */
        bad = rows_times_x(ws, rows_last && all_zero(n, g) ? NULL : g, f, rows_last, 1.0, KX);
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

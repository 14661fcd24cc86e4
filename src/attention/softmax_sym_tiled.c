/* SoftMax and USA on the tiled backend for L2 self-scores (keys = queries,
 * s = beta / eps > 0), d = 2: C_ij = -(s / 2) |x_i - x_j|^2 is symmetric,
 * <= 0, and 0 on the diagonal. So the diagonal is every row's maximum (no
 * running maximum: the shift is 0 for SoftMax as for USA), every row sum
 * is >= exp(C_ii) = 1, and each exp(C_ij) serves row i and row j: the pass
 * visits the upper triangle only, n (n - 1) / 2 exps instead of n^2.
 * SoftMax on dot self-scores with A = I takes the same pass with column
 * weights: C_ij = (C_ii + C_jj) / 2 - (s / 2) |x_i - x_j|^2, and the
 * factor exp(C_ii / 2) of row i cancels in SoftMax, so row i's terms are
 * E_ij w_j with the symmetric E_ij = exp(-(s / 2) |x_i - x_j|^2) and
 * w_j = exp((C_jj - max C) / 2) (af__tiled_sym_prepare, which refuses when
 * the range of C_jj is too wide for that). L2 scores have w = 1 (the
 * products with 1 are exact: the same bits as without weights).
 *
 * Rows go in blocks of SYM_BLOCK: the block's own triangle first, then
 * tiles of SYM_TILE columns from the block's end (four rows per sweep, so
 * that the column data and partials are loaded and stored once for four
 * rows). The Sinkhorn iteration's passes that need only the row sums skip
 * the K X sums and partials. Row i's own terms add up in registers; the terms
 * it gives to the rows j > i (E_ij w_i and E_ij w_i x_i) gather over the
 * block in a tile-sized column buffer (L1), which is then added into the
 * thread's column accumulators (3 n doubles). Blocks are dealt to the
 * threads cyclically in a fixed order and the threads' accumulators are
 * summed in thread order at the end: the same bits on every run with the
 * same number of threads.
 *
 * The scores are formed from differences, -(s / 2) ((x_i0 - x_j0)^2 +
 * (x_i1 - x_j1)^2), not as c_j + r_i + s x_i . x_j: exactly 0 on the
 * diagonal, never positive, and in float without the cancellation of the
 * bias form (|x|^2 s / 2 against a difference of order 1).
 *
 * Far terms: arguments are clamped at the bottom of the vector exp's fast
 * range and the results at or below exp(bottom) written as 0 (as
 * af__row_exp_flushed does): each such term is below the smallest normal
 * number (float: 1.6e-38) next to a row sum >= 1.
 *
 * Single precision: coordinates as float (ws->Xtf), float scores, 16-wide
 * expf, and each tile's row sums and K X partials (at most SYM_TILE terms)
 * and each column's partials over a block (at most SYM_BLOCK terms) summed
 * in float; those partials are then added into double row totals and
 * double column accumulators (the double accumulation of the sums and of
 * K X: the float sums never span more than one tile). */
#include "core/af_simd_math.h"
#include <omp.h>
#include <string.h>
#include "backend_internal.h"

#define SYM_TILE 512
#define SYM_BLOCK 16

int af__tiled_sym_applies(const af_attn_ws *ws)
{
    return ws->p.d == 2 && ws->p.scores.beta > 0 && !ws->p.comm && ws->row_begin == 0
           && ws->row_end == ws->p.n;
}

int af__tiled_sym_prepare(af_attn_ws *ws, int usa)
{
    const size_t n = ws->p.n;
    const int single = ws->p.precision == AF_PRECISION_SINGLE;
    if (!af__tiled_sym_applies(ws))
        return 0;
    const double *x0 = ws->Xt, *x1 = ws->Xt + n;
    if (ws->p.scores.kind == AF_SCORES_L2) {
        for (size_t j = 0; j < n; j++)
            ws->symw[j] = 1.0;
    } else {
        if (usa || ws->p.scores.A)
            return 0;
        /* dot scores, A = I: C_ij = (C_ii + C_jj) / 2 - (s / 2) |x_i - x_j|^2,
         * so row i's terms are exp(-(s/2) |x_i - x_j|^2) w_j times a factor
         * of the row, w_j = exp((C_jj - M) / 2) <= 1, M = max C_jj. Every
         * row sum is then >= w_i (its diagonal); the flushed terms (each
         * below exp(bottom) w_j) stay below 2^-60 (float: 2^-30) of it when
         * w_i >= n exp(bottom) 2^60 for all i, i.e. when the range of
         * C_jj allows; otherwise the general pass with its running
         * maximum. */
        double qmin = INFINITY, qmax = -INFINITY;
        for (size_t j = 0; j < n; j++) {
            const double q = ws->s * (x0[j] * x0[j] + x1[j] * x1[j]);
            qmin = q < qmin ? q : qmin;
            qmax = q > qmax ? q : qmax;
        }
        const double room = -(single ? AF_EXPF_FAST_MIN : AF_EXP_FAST_MIN) - log((double)n)
                            - (single ? 30.0 : 60.0) * M_LN2;
        if (!isfinite(qmin) || !isfinite(qmax) || 0.5 * (qmax - qmin) > room)
            return 0;
        for (size_t j = 0; j < n; j++)
            ws->symw[j] = exp(0.5 * (ws->s * (x0[j] * x0[j] + x1[j] * x1[j]) - qmax));
    }
    if (ws->symwf)
        for (size_t j = 0; j < n; j++)
            ws->symwf[j] = (float)ws->symw[j];
    return 1;
}

/* Row i (coordinates xi0, xi1) against columns [a, b) of the tile at y0,
 * y1 (column buffer c0, c1, c2 indexed like y; weights wi of the row, wy
 * of the columns), all in type T with the exponential EXP clamped at LO:
 * the row's sums over the tile (in T, at
 * most SYM_TILE terms) added into the double totals r[3], the column terms
 * into c. e: scratch of the tile's length. One definition for double and
 * float (row_tile_double, row_tile_float). */
#define ROW_TILE(NAME, T, EXP, LO)                                                             \
    static void NAME(T h, T xi0, T xi1, T wi, size_t a, size_t b, const T *y0, const T *y1,    \
                     const T *wy, T *e, T *c0, T *c1, T *c2, double r[3])                      \
    {                                                                                          \
        const T lo = (T)(LO), tiny = EXP((T)(LO)), wx0 = wi * xi0, wx1 = wi * xi1;             \
        _Pragma("omp simd") for (size_t j = a; j < b; j++)                                     \
        {                                                                                      \
            const T u = xi0 - y0[j], v = xi1 - y1[j];                                          \
            const T x = -h * (u * u + v * v);                                                  \
            e[j] = x < lo ? lo : x;                                                            \
        }                                                                                      \
        _Pragma("omp simd") for (size_t j = a; j < b; j++) e[j] = EXP(e[j]);                   \
        T s0 = 0, s1 = 0, s2 = 0;                                                              \
        _Pragma("omp simd reduction(+ : s0, s1, s2)") for (size_t j = a; j < b; j++)           \
        {                                                                                      \
            const T k = e[j] <= tiny ? (T)0 : e[j], kw = k * wy[j];                            \
            s0 += kw;                                                                          \
            s1 += kw * y0[j];                                                                  \
            s2 += kw * y1[j];                                                                  \
            c0[j] += k * wi;                                                                   \
            c1[j] += k * wx0;                                                                  \
            c2[j] += k * wx1;                                                                  \
        }                                                                                      \
        r[0] += (double)s0;                                                                    \
        r[1] += (double)s1;                                                                    \
        r[2] += (double)s2;                                                                    \
    }

ROW_TILE(row_tile_double, double, exp, AF_EXP_FAST_MIN)
ROW_TILE(row_tile_float, float, expf, AF_EXPF_FAST_MIN)
/* float32 exps of double scores, everything else in double: the weighted
 * Sinkhorn pass in single precision (its row sums must stay smooth in the
 * weights, or the iteration stalls at the float resolution) */
static inline double expf_widened(double x) { return (double)expf((float)x); }
ROW_TILE(row_tile_mixed, double, expf_widened, AF_EXPF_FAST_MIN)

/* How a pass computes: all double; float scores, exps and tile sums
 * (SoftMax single); float exps only (Sinkhorn single). */
typedef enum { SYM_DOUBLE, SYM_FLOAT, SYM_MIXED } sym_mode;

/* Four rows (coordinates xi0[q], xi1[q], weights wi[q]) against a whole
 * tile of columns past the block, in double, the exps by EXP (exp, or
 * expf_widened for the single-precision Sinkhorn pass): the column data
 * and the column partials are loaded and stored once for the four rows.
 * Row by row (ROW_TILE) those loads and stores cost about as much as the
 * exps (44 % against 49 % of a tiled Sinkhorn step at n = 2e4). The
 * scores and exps are ROW_TILE's, bit for bit. With RHS3 0 only the sums
 * (c0 and r[q][0]): the Sinkhorn passes that do not carry K X. e: scratch
 * of 4 len. */
#define ROWS4_TILE(NAME, EXP, LO, RHS3)                                                        \
    static void NAME(double h, const double *xi0, const double *xi1, const double *wi,         \
                     size_t len, const double *y0, const double *y1, const double *wy,         \
                     double *e, double *c0, double *c1, double *c2, double (*r)[3])            \
    {                                                                                          \
        const double lo = (LO), tiny = EXP(LO);                                                \
        double p0[4], p1[4], w4[4], wx0[4], wx1[4];                                            \
        for (int q = 0; q < 4; q++) {                                                          \
            p0[q] = xi0[q], p1[q] = xi1[q], w4[q] = wi[q];                                     \
            wx0[q] = wi[q] * xi0[q], wx1[q] = wi[q] * xi1[q];                                  \
        }                                                                                      \
        double *e0 = e, *e1 = e + len, *e2 = e + 2 * len, *e3 = e + 3 * len;                   \
        _Pragma("omp simd") for (size_t j = 0; j < len; j++)                                   \
        {                                                                                      \
            double u = p0[0] - y0[j], v = p1[0] - y1[j], x = -h * (u * u + v * v);             \
            e0[j] = x < lo ? lo : x;                                                           \
            u = p0[1] - y0[j], v = p1[1] - y1[j], x = -h * (u * u + v * v);                    \
            e1[j] = x < lo ? lo : x;                                                           \
            u = p0[2] - y0[j], v = p1[2] - y1[j], x = -h * (u * u + v * v);                    \
            e2[j] = x < lo ? lo : x;                                                           \
            u = p0[3] - y0[j], v = p1[3] - y1[j], x = -h * (u * u + v * v);                    \
            e3[j] = x < lo ? lo : x;                                                           \
        }                                                                                      \
        _Pragma("omp simd") for (size_t j = 0; j < 4 * len; j++) e[j] = EXP(e[j]);             \
        double s00 = 0, s01 = 0, s02 = 0, s10 = 0, s11 = 0, s12 = 0;                           \
        double s20 = 0, s21 = 0, s22 = 0, s30 = 0, s31 = 0, s32 = 0;                           \
        _Pragma("omp simd reduction(+ : s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32)") \
        for (size_t j = 0; j < len; j++) {                                                     \
            const double k0 = e0[j] <= tiny ? 0.0 : e0[j], k1 = e1[j] <= tiny ? 0.0 : e1[j];   \
            const double k2 = e2[j] <= tiny ? 0.0 : e2[j], k3 = e3[j] <= tiny ? 0.0 : e3[j];   \
            const double w = wy[j];                                                            \
            const double q0 = k0 * w, q1 = k1 * w, q2 = k2 * w, q3 = k3 * w;                   \
            s00 += q0, s10 += q1, s20 += q2, s30 += q3;                                        \
            c0[j] += (k0 * w4[0] + k1 * w4[1]) + (k2 * w4[2] + k3 * w4[3]);                    \
            if (RHS3) {                                                                        \
                const double a = y0[j], b = y1[j];                                             \
                s01 += q0 * a, s02 += q0 * b, s11 += q1 * a, s12 += q1 * b;                    \
                s21 += q2 * a, s22 += q2 * b, s31 += q3 * a, s32 += q3 * b;                    \
                c1[j] += (k0 * wx0[0] + k1 * wx0[1]) + (k2 * wx0[2] + k3 * wx0[3]);            \
                c2[j] += (k0 * wx1[0] + k1 * wx1[1]) + (k2 * wx1[2] + k3 * wx1[3]);            \
            }                                                                                  \
        }                                                                                      \
        const double sums[4][3] = {                                                            \
            {s00, s01, s02}, {s10, s11, s12}, {s20, s21, s22}, {s30, s31, s32}};               \
        for (int q = 0; q < 4; q++)                                                            \
            for (int k = 0; k < 3; k++)                                                        \
                r[q][k] += sums[q][k];                                                         \
    }

ROWS4_TILE(rows4_tile_double, exp, AF_EXP_FAST_MIN, 1)
ROWS4_TILE(rows4_tile_double_sums, exp, AF_EXP_FAST_MIN, 0)
ROWS4_TILE(rows4_tile_mixed, expf_widened, AF_EXPF_FAST_MIN, 1)
ROWS4_TILE(rows4_tile_mixed_sums, expf_widened, AF_EXPF_FAST_MIN, 0)

/* Four rows (coordinates xi0[q], xi1[q]) against a whole tile of columns
 * past the block, in float: the column data and the column partials are
 * loaded and stored once for the four rows (the stores, not the exps,
 * bounded the one-row loop). e: scratch of 4 len. */
static void rows4_tile_float(float h, const float *xi0, const float *xi1, const float *wi,
                             size_t len, const float *y0, const float *y1, const float *wy,
                             float *e, float *c0, float *c1, float *c2, double (*r)[3])
{
    const float lo = (float)AF_EXPF_FAST_MIN, tiny = expf((float)AF_EXPF_FAST_MIN);
    float wx0[4], wx1[4], w4[4], p0[4], p1[4];
    for (int q = 0; q < 4; q++) {
        w4[q] = wi[q], p0[q] = xi0[q], p1[q] = xi1[q];
        wx0[q] = wi[q] * xi0[q], wx1[q] = wi[q] * xi1[q];
    }
    float *e0 = e, *e1 = e + len, *e2 = e + 2 * len, *e3 = e + 3 * len;
#pragma omp simd
    for (size_t j = 0; j < len; j++) {
        float u = p0[0] - y0[j], v = p1[0] - y1[j], x = -h * fmaf(u, u, v * v);
        e0[j] = x < lo ? lo : x;
        u = p0[1] - y0[j], v = p1[1] - y1[j], x = -h * fmaf(u, u, v * v);
        e1[j] = x < lo ? lo : x;
        u = p0[2] - y0[j], v = p1[2] - y1[j], x = -h * fmaf(u, u, v * v);
        e2[j] = x < lo ? lo : x;
        u = p0[3] - y0[j], v = p1[3] - y1[j], x = -h * fmaf(u, u, v * v);
        e3[j] = x < lo ? lo : x;
    }
#pragma omp simd
    for (size_t j = 0; j < 4 * len; j++)
        e[j] = expf(e[j]);
    float s00 = 0, s01 = 0, s02 = 0, s10 = 0, s11 = 0, s12 = 0;
    float s20 = 0, s21 = 0, s22 = 0, s30 = 0, s31 = 0, s32 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s10, s11, s12, s20, s21, s22, s30, s31, s32)
    for (size_t j = 0; j < len; j++) {
        const float k0 = e0[j] <= tiny ? 0.0f : e0[j], k1 = e1[j] <= tiny ? 0.0f : e1[j];
        const float k2 = e2[j] <= tiny ? 0.0f : e2[j], k3 = e3[j] <= tiny ? 0.0f : e3[j];
        const float a = y0[j], b = y1[j], w = wy[j];
        const float q0 = k0 * w, q1 = k1 * w, q2 = k2 * w, q3 = k3 * w;
        s00 += q0, s01 = fmaf(q0, a, s01), s02 = fmaf(q0, b, s02);
        s10 += q1, s11 = fmaf(q1, a, s11), s12 = fmaf(q1, b, s12);
        s20 += q2, s21 = fmaf(q2, a, s21), s22 = fmaf(q2, b, s22);
        s30 += q3, s31 = fmaf(q3, a, s31), s32 = fmaf(q3, b, s32);
        c0[j] += fmaf(k0, w4[0], k1 * w4[1]) + fmaf(k2, w4[2], k3 * w4[3]);
        c1[j] += fmaf(k0, wx0[0], k1 * wx0[1]) + fmaf(k2, wx0[2], k3 * wx0[3]);
        c2[j] += fmaf(k0, wx1[0], k1 * wx1[1]) + fmaf(k2, wx1[2], k3 * wx1[3]);
    }
    const float sums[4][3] = {{s00, s01, s02}, {s10, s11, s12}, {s20, s21, s22}, {s30, s31, s32}};
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < 3; k++)
            r[q][k] += (double)sums[q][k];
}

/* Rows [i0, i1) against the columns (i, n) of each row i: row totals and
 * column terms into the thread's accumulators acc (3 n: sums, then K X by
 * coordinate; with rhs 1 only the sums are meant, the rest is not kept up
 * to date). The diagonal term exp(0) = 1 is added exactly. */
static void block_upper(const af_attn_ws *ws, size_t i0, size_t i1, const double *w,
                        const float *wf, sym_mode mode, int rhs, double *acc)
{
    const size_t n = ws->p.n;
    const int single = mode == SYM_FLOAT;
    const double h = 0.5 * ws->s, *x0 = ws->Xt, *x1 = ws->Xt + n;
    const float *f0 = ws->Xtf, *f1 = ws->Xtf ? ws->Xtf + n : NULL;
    double rows[SYM_BLOCK][3];
    for (size_t i = i0; i < i1; i++) {
        rows[i - i0][0] = w[i]; /* the diagonal: E_ii = 1 */
        rows[i - i0][1] = w[i] * x0[i];
        rows[i - i0][2] = w[i] * x1[i];
    }
    /* the block's own triangle first (columns [i0, i1)), then whole tiles */
    for (size_t j0 = i0; j0 < n; j0 = j0 == i0 ? i1 : j0 + SYM_TILE) {
        const size_t end = j0 == i0 ? i1 : n - j0 < SYM_TILE ? n : j0 + SYM_TILE;
        const size_t len = end - j0;
        double *a0 = acc + j0, *a1 = acc + n + j0, *a2 = acc + 2 * n + j0;
        if (single) {
            float e[4 * SYM_TILE], c[3][SYM_TILE];
            memset(c, 0, sizeof c);
            size_t i = i0;
            if (j0 >= i1) /* past the block: four rows at a time */
                for (; i + 4 <= i1; i += 4)
                    rows4_tile_float((float)h, f0 + i, f1 + i, wf + i, len, f0 + j0, f1 + j0,
                                     wf + j0, e, c[0], c[1], c[2], rows + (i - i0));
            for (; i < i1; i++) {
                const size_t a = i + 1 > j0 ? i + 1 - j0 : 0;
                if (a < len)
                    row_tile_float((float)h, f0[i], f1[i], wf[i], a, len, f0 + j0, f1 + j0,
                                   wf + j0, e, c[0], c[1], c[2], rows[i - i0]);
            }
#pragma omp simd
            for (size_t j = 0; j < len; j++) {
                a0[j] += (double)c[0][j];
                a1[j] += (double)c[1][j];
                a2[j] += (double)c[2][j];
            }
        } else {
            double e[4 * SYM_TILE], c[3][SYM_TILE];
            memset(c, 0, sizeof c);
            size_t i = i0;
            if (j0 >= i1) { /* past the block: four rows at a time */
                const int mixed = mode == SYM_MIXED;
                void (*const rows4)(double, const double *, const double *, const double *,
                                    size_t, const double *, const double *, const double *,
                                    double *, double *, double *, double *, double (*)[3]) =
                    rhs == 3 ? (mixed ? rows4_tile_mixed : rows4_tile_double)
                             : (mixed ? rows4_tile_mixed_sums : rows4_tile_double_sums);
                for (; i + 4 <= i1; i += 4)
                    rows4(h, x0 + i, x1 + i, w + i, len, x0 + j0, x1 + j0, w + j0, e, c[0], c[1],
                          c[2], rows + (i - i0));
            }
            for (; i < i1; i++) {
                const size_t a = i + 1 > j0 ? i + 1 - j0 : 0;
                if (a < len)
                    (mode == SYM_MIXED ? row_tile_mixed : row_tile_double)(
                        h, x0[i], x1[i], w[i], a, len, x0 + j0, x1 + j0, w + j0, e, c[0], c[1],
                        c[2], rows[i - i0]);
            }
#pragma omp simd
            for (size_t j = 0; j < len; j++)
                a0[j] += c[0][j];
            if (rhs == 3) /* the K X partials: not wanted by a sums-only pass */
#pragma omp simd
                for (size_t j = 0; j < len; j++) {
                    a1[j] += c[1][j];
                    a2[j] += c[2][j];
                }
        }
    }
    for (size_t i = i0; i < i1; i++)
        for (int k = 0; k < 3; k++)
            acc[(size_t)k * n + i] += rows[i - i0][k];
}

/* The upper-triangle pass with weights w (wf: their float copy, SYM_FLOAT
 * only): ws->acc[k n + i] = sum_j E_ij w_j y_jk for y = (1, x_0, x_1), k <
 * rhs (3, or 1: the sums alone), the threads' accumulators summed into the
 * first one's in thread order. */
static void sym_pass(const af_attn_ws *ws, const double *w, const float *wf, sym_mode mode,
                     int rhs, double *accs, int threads)
{
    const size_t n = ws->p.n, blocks = (n + SYM_BLOCK - 1) / SYM_BLOCK;
    int team = 1;
#pragma omp parallel num_threads(threads) AF_PAR_IF((double)n * n / 2)
    {
        const int t = omp_get_thread_num();
        if (t == 0)
            team = omp_get_num_threads();
        double *acc = accs + (size_t)t * 3 * n;
        memset(acc, 0, 3 * n * sizeof *acc);
        /* one block at a time, dealt in turn: the triangle balanced, the
         * same blocks on the same thread every run */
#pragma omp for schedule(static, 1)
        for (size_t b = 0; b < blocks; b++) {
            const size_t i0 = b * SYM_BLOCK, i1 = i0 + SYM_BLOCK < n ? i0 + SYM_BLOCK : n;
            block_upper(ws, i0, i1, w, wf, mode, rhs, acc);
        }
    }
    for (int t = 1; t < team; t++)
        for (size_t q = 0; q < (size_t)rhs * n; q++)
            accs[q] += accs[(size_t)t * 3 * n + q];
}

int af__tiled_softmax_sym(af_attn_ws *ws, int usa, double *KX)
{
    const size_t n = ws->p.n;
    sym_pass(ws, ws->symw, ws->symwf,
             ws->p.precision == AF_PRECISION_SINGLE ? SYM_FLOAT : SYM_DOUBLE, 3, ws->acc,
             ws->nthreads);
    int bad = 0;
    const double w = 1.0 / (double)n;
    for (size_t i = 0; i < n; i++) {
        const double r[3] = {ws->acc[i], ws->acc[n + i], ws->acc[2 * n + i]};
        const double scale = usa ? w : 1.0 / r[0];
        bad |= !usa && !(isfinite(r[0]) && r[0] > 0);
        for (int k = 0; k < 2; k++) {
            KX[2 * i + k] = r[k + 1] * scale;
            bad |= !isfinite(KX[2 * i + k]);
        }
    }
    return bad;
}

void af__tiled_sym_weighted(const void *ctx, const double *w, int rhs, double *acc,
                            int threads)
{
    const af_attn_ws *ws = ctx; /* the source's context: the backend workspace */
    sym_pass(ws, w, NULL, ws->p.precision == AF_PRECISION_SINGLE ? SYM_MIXED : SYM_DOUBLE, rhs,
             acc, threads);
}

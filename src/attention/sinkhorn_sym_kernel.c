/* The symmetric scaling iteration on a kernel its caller builds (the dense
 * backend, L2 self-scores): the same state and update as the stored
 * symmetric path (a <- a r^-w accelerated, r the row sums of diag(a) K0
 * diag(a)), but K0 = exp(C) is written straight from the tokens, upper
 * triangle only, without the n x n scores and the passes over them (row
 * maxima, then the K0 build), by the caller's row builder inside the first
 * pass: each block of eight rows is built in the thread's scratch, summed
 * there and streamed to the storage, so the build and the first pass write
 * the kernel once and read nothing back. Each later pass reads the stored triangle once (8 n^2 / 2
 * bytes; in single precision 4 n^2 / 2, stored as float32), and the pass
 * expected to be the last also multiplies it with a * x_k for the flow's
 * right-hand sides, so K X = diag(a) K0 (a X) comes without a pass of its
 * own. The scores themselves are written (by the caller's fill) only if the
 * scalings leave double range and the iteration falls back to log space. */
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/af_alloc.h"
#include "core/af_stream.h"
#include "normalize_internal.h"

/* Right-hand sides of the fused pass: t (the row sums) and up to this many
 * token coordinates; more go through af_sinkhorn_apply's paths. */
#define SYMK_MAX_P 2

/* Rows per block of a pass (and per build step: the builder's scratch). */
#define SYMK_BLOCK 8

/* Rows i0 .. i0 + 3 of the stored upper triangle against columns j = j0 ..
 * n - 1, j0 = i0 + 4 (k[r][q]: entry (i0 + r, j0 + q); w[c] = a * y_c by
 * column, wi[c] the same at the four rows), in one sweep: row i gets
 * sum_j K0_ij w_j directly, and column j gets sum_i K0_ij wi_i through the
 * accumulators, so four rows share one load and store of the column
 * accumulators and of w.
 * The kernel is read in double, or in single precision as float32 (its
 * entries are float exps: exact in float, half the bytes per pass). */
#define SYMK_ROWS4(NAME, T)                                                                      \
static void NAME(size_t n, size_t i0, const T *const k[4], const double *const w[3],             \
             const double wi[3][4], double rowsum[3][4], double *const acc[3])                   \
{                                                                                                \
    const size_t j0 = i0 + 4, len = n - j0;                                                      \
    const T *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];                                      \
    const double *w0 = w[0] + j0, *w1 = w[1] + j0, *w2 = w[2] + j0;                              \
    double *c0 = acc[0] + j0, *c1 = acc[1] + j0, *c2 = acc[2] + j0;                              \
    const double u00 = wi[0][0], u01 = wi[0][1], u02 = wi[0][2], u03 = wi[0][3];                 \
    const double u10 = wi[1][0], u11 = wi[1][1], u12 = wi[1][2], u13 = wi[1][3];                 \
    const double u20 = wi[2][0], u21 = wi[2][1], u22 = wi[2][2], u23 = wi[2][3];                 \
    double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;               \
    double s20 = 0, s21 = 0, s22 = 0, s23 = 0;                                                   \
_Pragma("omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23)")    \
    for (size_t q = 0; q < len; q++) {                                                           \
        const double a = (double)k0[q], b = (double)k1[q], c = (double)k2[q], e = (double)k3[q]; \
        const double v0 = w0[q], v1 = w1[q], v2 = w2[q];                                         \
        s00 += a * v0, s01 += b * v0, s02 += c * v0, s03 += e * v0;                              \
        s10 += a * v1, s11 += b * v1, s12 += c * v1, s13 += e * v1;                              \
        s20 += a * v2, s21 += b * v2, s22 += c * v2, s23 += e * v2;                              \
        c0[q] += (u00 * a + u01 * b) + (u02 * c + u03 * e);                                      \
        c1[q] += (u10 * a + u11 * b) + (u12 * c + u13 * e);                                      \
        c2[q] += (u20 * a + u21 * b) + (u22 * c + u23 * e);                                      \
    }                                                                                            \
    const double s[3][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}, {s20, s21, s22, s23}};   \
    memcpy(rowsum, s, sizeof s);                                                                 \
}
SYMK_ROWS4(symk_rows4, double)
SYMK_ROWS4(symk_rows4_float, float)

/* Rows i0 .. i0 + 7 against columns j >= i0 + 8 for the row sums alone:
 * eight concurrent row streams keep more memory requests in flight than
 * four (a pass over the n = 1e4 triangle: 9 ms instead of 11.5 in a
 * stand-alone test), and halve the accumulator traffic per entry. */
#define SYMK_ROWS8_T(NAME, T)                                                                \
static void NAME(size_t n, size_t i0, const T *const k[8], const double *w,                 \
                 const double wi[8], double rowsum[8], double *acc)                         \
{                                                                                           \
    const size_t j0 = i0 + 8, len = n - j0;                                                 \
    const T *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];                                 \
    const T *k4 = k[4], *k5 = k[5], *k6 = k[6], *k7 = k[7];                                 \
    const double *wj = w + j0;                                                              \
    double *aj = acc + j0;                                                                  \
    const double u0 = wi[0], u1 = wi[1], u2 = wi[2], u3 = wi[3];                            \
    const double u4 = wi[4], u5 = wi[5], u6 = wi[6], u7 = wi[7];                            \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;                  \
_Pragma("omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)")                           \
    for (size_t q = 0; q < len; q++) {                                                      \
        const double a = (double)k0[q], b = (double)k1[q], c = (double)k2[q], e = (double)k3[q]; \
        const double f = (double)k4[q], g = (double)k5[q], h = (double)k6[q], o = (double)k7[q]; \
        const double v = wj[q];                                                             \
        s0 += a * v, s1 += b * v, s2 += c * v, s3 += e * v;                                 \
        s4 += f * v, s5 += g * v, s6 += h * v, s7 += o * v;                                 \
        aj[q] += ((u0 * a + u1 * b) + (u2 * c + u3 * e)) + ((u4 * f + u5 * g) + (u6 * h + u7 * o)); \
    }                                                                                       \
    const double r[8] = {s0, s1, s2, s3, s4, s5, s6, s7};                                   \
    memcpy(rowsum, r, sizeof r);                                                            \
}
SYMK_ROWS8_T(symk_rows8_t, double)
SYMK_ROWS8_T(symk_rows8_t_float, float)

/* The stored upper triangle is packed, row i (entries j = i .. n - 1)
 * right after row i - 1: n (n + 1) / 2 entries, in double or (single
 * precision) float32, at the start of the n x n allocation. Packed, the
 * triangle fills whole pages: with transparent huge pages (af__alloc_large)
 * an n x n layout would bring in the untouched lower triangle too. This is
 * the offset of entry (i, i). */
static inline size_t symk_off(size_t n, size_t i)
{
    return i * n - i * (i - 1) / 2;
}

/* Address of entry (i, j >= i) of the float32 (single precision) triangle. */
static inline const float *symk_frow(const af_sinkhorn_ws *ws, size_t i, size_t j)
{
    return (const float *)ws->K0 + symk_off(ws->n, i) + (j - i);
}

/* Address of entry (i, j >= i) of the double triangle. */
static inline const double *symk_drow(const af_sinkhorn_ws *ws, size_t i, size_t j)
{
    return ws->K0 + symk_off(ws->n, i) + (j - i);
}

/* Entry (i, j >= i) of the stored kernel in either storage. */
static inline double symk_entry(const af_sinkhorn_ws *ws, size_t i, size_t j)
{
    return ws->src.single ? (double)*symk_frow(ws, i, j) : *symk_drow(ws, i, j);
}

/* Rows i0 .. i1 - 1 of the kernel, built into the thread's scratch rows
 * (rows[(i - i0) n + j] = K0_ij, j >= i), and streamed to the storage
 * (double, or the float32 square in single precision: exact, the entries
 * are float exps). Streaming stores skip the read of each line before it
 * is written: the build pass n = 1e4 took 50 ms instead of 58. */
static void symk_build(af_sinkhorn_ws *ws, size_t i0, size_t i1, double *rows)
{
    const size_t n = ws->n;
    for (size_t i = i0; i < i1; i++)
        ws->build_row(ws->fill_ctx, i, rows + (i - i0) * n);
}

static void symk_store(af_sinkhorn_ws *ws, size_t i0, size_t i1, const double *rows)
{
    const size_t n = ws->n;
    for (size_t i = i0; i < i1; i++) {
        const double *k = rows + (i - i0) * n;
        if (!ws->src.single)
            af_stream_doubles((double *)symk_drow(ws, i, i), k + i, n - i);
        else
            af_stream_floats((float *)symk_frow(ws, i, i), k + i, n - i);
    }
}

/* One pass over the stored triangle. state: t = r = a * (K0 a) into ws->t
 * and the errors (1 if a row sum is not positive and finite); rhs: K0 (a
 * x_k) into apply_buf (n x p), which triples the arithmetic per entry, so
 * the passes carry it only when they are expected to be the last; build:
 * the first pass, which builds the kernel SYMK_BLOCK rows at a time in the
 * thread's scratch, sums them there (from cache) and streams them to the
 * storage. */
static int symk_pass_with(af_sinkhorn_ws *ws, int state, int rhs, int build)
{
    const size_t n = ws->n, p = rhs && ws->src.Yt ? ws->src.p : 0;
    const int nc = p ? 3 : 1; /* accumulated columns: t, then K0 (a x_k) */
    const int fl = !build && ws->src.single; /* read float32 entries */
    const double *a = ws->u, *Yt = ws->src.Yt;
    const size_t stride = 3 * n;
    /* after the per-thread accumulators: a, a y_0, a y_1 (zeros past p) */
    double *w = ws->apply_acc + (size_t)ws->nthreads * stride;
    for (size_t i = 0; i < n; i++) {
        w[i] = a[i];
        for (size_t k = 0; k < SYMK_MAX_P; k++)
            w[(k + 1) * n + i] = k < p ? a[i] * Yt[k * n + i] : 0.0;
    }
    int team = 1;
#pragma omp parallel num_threads(af__team_size(ws)) AF_PAR_IF(n * n / 2)
    {
        const int tid = omp_get_thread_num();
        if (tid == 0)
            team = omp_get_num_threads();
        double *ab = ws->apply_acc + (size_t)tid * stride;
        double *const acc[3] = {ab, ab + n, ab + 2 * n};
        const double *const wv[3] = {w, w + n, w + 2 * n};
        double *rows = build ? ws->symk_rows + (size_t)tid * SYMK_BLOCK * n : NULL;
        memset(ab, 0, (size_t)nc * n * sizeof(double));
        /* blocks of SYMK_BLOCK rows, handed out cyclically (the triangle
         * balanced, the same rows on the same thread every run); the row
         * sums alone in one sweep of eight rows, with K X in two of four */
#pragma omp for schedule(static, 1)
        for (size_t b = 0; b < n / SYMK_BLOCK; b++) {
            const size_t i0 = SYMK_BLOCK * b;
            if (build)
                symk_build(ws, i0, i0 + SYMK_BLOCK, rows);
            for (size_t lo = i0; lo < i0 + SYMK_BLOCK; lo += nc == 1 ? 8 : 4) {
                const size_t hi = lo + (nc == 1 ? 8 : 4), R = hi - lo;
                double wi[3][8], rs[3][8];
                for (int c = 0; c < 3; c++)
                    for (size_t r = 0; r < R; r++)
                        wi[c][r] = wv[c][lo + r];
                memset(rs, 0, sizeof rs);
                if (hi < n) {
                    const double *kd[8];
                    const float *kf[8];
                    for (size_t r = 0; r < R; r++) {
                        kd[r] = build ? rows + (lo + r - i0) * n + hi : symk_drow(ws, lo + r, hi);
                        kf[r] = fl ? symk_frow(ws, lo + r, hi) : NULL;
                    }
                    if (nc == 1 && fl)
                        symk_rows8_t_float(n, lo, kf, w, wi[0], rs[0], acc[0]);
                    else if (nc == 1)
                        symk_rows8_t(n, lo, kd, w, wi[0], rs[0], acc[0]);
                    else {
                        double r4[3][4], w4[3][4];
                        for (int c = 0; c < 3; c++)
                            for (int r = 0; r < 4; r++)
                                w4[c][r] = wi[c][r];
                        if (fl)
                            symk_rows4_float(n, lo, kf, wv, w4, r4, acc);
                        else
                            symk_rows4(n, lo, kd, wv, w4, r4, acc);
                        for (int c = 0; c < 3; c++)
                            for (int r = 0; r < 4; r++)
                                rs[c][r] = r4[c][r];
                    }
                }
                /* the R x R block on the diagonal: its upper triangle, each
                 * entry for both of its rows */
                for (size_t i = lo; i < hi; i++) {
                    const double kii = build ? rows[(i - i0) * n + i] : symk_entry(ws, i, i);
                    for (int c = 0; c < nc; c++)
                        acc[c][i] += rs[c][i - lo] + kii * wv[c][i];
                    for (size_t j = i + 1; j < hi; j++) {
                        const double kij = build ? rows[(i - i0) * n + j] : symk_entry(ws, i, j);
                        for (int c = 0; c < nc; c++) {
                            acc[c][i] += kij * wv[c][j];
                            acc[c][j] += kij * wv[c][i];
                        }
                    }
                }
            }
            if (build)
                symk_store(ws, i0, i0 + SYMK_BLOCK, rows);
        }
        /* the last n mod SYMK_BLOCK rows: the corner of the triangle */
#pragma omp single
        {
            const size_t c0 = n - n % SYMK_BLOCK;
            if (build)
                symk_build(ws, c0, n, rows);
            for (size_t i = c0; i < n; i++)
                for (size_t j = i; j < n; j++) {
                    const double kij = build ? rows[(i - c0) * n + j] : symk_entry(ws, i, j);
                    for (int c = 0; c < nc; c++) {
                        acc[c][i] += kij * wv[c][j];
                        if (j > i)
                            acc[c][j] += kij * wv[c][i];
                    }
                }
            if (build)
                symk_store(ws, c0, n, rows);
        }
        if (build)
            af_stream_fence(); /* the streamed rows before the next pass reads them */
    }
    double err = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double v[3] = {0, 0, 0};
        for (int th = 0; th < team; th++)
            for (int c = 0; c < nc; c++)
                v[c] += ws->apply_acc[(size_t)th * stride + (size_t)c * n + i];
        for (size_t k = 0; k < p; k++)
            ws->apply_buf[i * p + k] = v[k + 1];
        if (!state)
            continue;
        const double r = a[i] * v[0];
        bad |= !(r > 0) || !isfinite(r);
        ws->t[i] = r;
        err = fmax(err, fabs(r - 1.0));
    }
    ws->symk_product = p > 0;
    if (!state)
        return 0;
    ws->symk_prev_err = ws->row_err;
    ws->row_err = ws->col_err = err;
    if (bad && ws->fill_scores)
        ws->fill_scores(ws->fill_ctx); /* the log path that follows reads C */
    return bad;
}

/* Carry K X when this pass is likely the last (af__sym_pass_is_last; the
 * error falls by 0.15 - 0.3 per accelerated step). A wrong guess costs one
 * product-only pass (af__sym_kernel_product: the whole triangle again) or
 * arithmetic that was not needed; the iterates are the same either way. */
static int symk_pass(af_sinkhorn_ws *ws)
{
    return symk_pass_with(ws, 1, af__sym_pass_is_last(ws), 0);
}

static int symk_first_pass(af_sinkhorn_ws *ws)
{
    ws->symk_prev_err = INFINITY;
    return symk_pass_with(ws, 1, 0, 1); /* builds K0 as it goes */
}

static af_status symk_start(af_sinkhorn_ws *ws)
{
    /* a warm start out of range goes to log space before any pass: its
     * scores must be there */
    int bad = 0;
    for (size_t i = 0; bad == 0 && ws->opt.warm_start && i < ws->n; i++) {
        const double a = exp(ws->f[i] + 0.5 * ws->shift[i]);
        bad = !(a > 0) || !isfinite(a);
    }
    if (bad && ws->fill_scores)
        ws->fill_scores(ws->fill_ctx);
    return af__sym_scaling_begin(ws, symk_first_pass);
}

static af_status symk_step(af_sinkhorn_ws *ws) { return af__sym_scaling_advance(ws, symk_pass); }

static void symk_matrix(const af_sinkhorn_ws *ws, double *K)
{
    const size_t n = ws->n;
    /* K may be the storage itself (af_sinkhorn_apply's route for paths
     * without a product): rows last to first, each read into rowbuf before
     * it is written, since row i's place in the n x n layout starts at or
     * after its packed data and after all of rows 0 .. i - 1 */
    double *row = ws->rowbuf;
    for (size_t i = n; i-- > 0;) {
        for (size_t j = i; j < n; j++)
            row[j] = symk_entry(ws, i, j);
        for (size_t j = i; j < n; j++)
            K[i * n + j] = ws->u[i] * row[j] * ws->u[j];
    }
    af__mirror_upper(n, K);
}

const af_sinkhorn_type af_sinkhorn_type_sym_kernel = {
    "symmetric", 1, symk_start, symk_step, af__sym_scaling_potentials, symk_matrix,
};

const double *af__sym_kernel_product(af_sinkhorn_ws *ws)
{
    if (ws->type != &af_sinkhorn_type_sym_kernel || !ws->src.Yt)
        return NULL;
    if (!ws->symk_product) /* the last pass did not carry it: one more, state unchanged */
        symk_pass_with(ws, 0, 1, 0);
    return ws->apply_buf;
}

af_status af__sym_kernel_buffers(af_sinkhorn_ws *ws, size_t p)
{
    if (p > SYMK_MAX_P)
        return af_error(AF_EINVAL, "sinkhorn: the prebuilt symmetric kernel takes at most %d "
                                   "right-hand sides (got %zu)", SYMK_MAX_P, p);
    const size_t n = ws->n;
    if (!ws->symk_rows) { /* first use: the builder's rows, the packed triangle in huge pages */
        if (!(ws->symk_rows = malloc((size_t)ws->nthreads * SYMK_BLOCK * n * sizeof(double))))
            return af_error(AF_ENOMEM, "sinkhorn: out of memory for the kernel builder's rows");
        const size_t entry = ws->src.single ? sizeof(float) : sizeof(double);
        af__advise_huge(ws->K0, n * (n + 1) / 2 * entry);
    }
    if (af__grow(&ws->apply_acc, &ws->apply_acc_cap, ((size_t)ws->nthreads + 1) * 3 * n))
        return af_error(AF_ENOMEM, "sinkhorn: out of memory for the kernel pass accumulators");
    if (p && af__grow(&ws->apply_buf, &ws->apply_cap, n * p))
        return af_error(AF_ENOMEM, "sinkhorn: out of memory for K Y");
    return AF_SUCCESS;
}

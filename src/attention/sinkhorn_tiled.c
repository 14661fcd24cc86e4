/* The symmetric Sinkhorn iteration without a stored kernel. Same state and
 * update as the stored symmetric scaling path (a <- a r^-w accelerated, r the row
 * sums of diag(a) K0 diag(a), K0_ij = exp(C_ij - (s_i + s_j) / 2) <= 1),
 * but each pass regenerates the upper triangle of the scores row by row:
 * exp(C_ij) is computed once for the pair (i, j) and serves row i directly
 * and row j through per-thread column accumulators, so a pass costs
 * n (n + 1) / 2 exps, no row maxima and no logarithms. The same pass
 * multiplies K0 with a * Y for the right-hand sides of the score source,
 * so once the iteration has converged K Y = diag(a) (K0 (a Y)) is already
 * there (the flows' K X at no extra pass). The passes carry it only when
 * they are expected to be the last (the row sums alone are cheaper, on the
 * backend's upper-triangle kernel too, which serves most passes of L2
 * self-scores), and a wrong guess costs one product-only pass. Scalings that leave double
 * range fall back to the symmetric log path, as the stored path does. */
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "normalize_internal.h"

/* Per-thread accumulators: (p + 1) x n each (t, then K0 (a Y) by column). */
static af_status ensure_buffers(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n, p = ws->src.Yt ? ws->src.p : 0;
    const size_t need = (size_t)ws->nthreads * (p + 1) * n + n; /* + the half shifts */
    if (af__grow(&ws->apply_acc, &ws->apply_acc_cap, need))
        return af_error(AF_ENOMEM, "sinkhorn: out of memory for the tiled accumulators");
    if (p && af__grow(&ws->apply_buf, &ws->apply_cap, n * p))
        return af_error(AF_ENOMEM, "sinkhorn: out of memory for K Y");
    return AF_SUCCESS;
}

/* The flush bounds' constants: log of the largest exp a flushed term can
 * have (the exp's fast-range bound), and log of the share of a row sum it
 * may reach, far under the precision's resolution (2^-60 double, 2^-30
 * single, halved for the rounding of the last r). */
static double flush_log_tiny(int single) { return single ? AF_EXPF_FAST_MIN : AF_EXP_FAST_MIN; }
static double flush_log_res(int single) { return (single ? -30.0 : -60.0) * M_LN2 - M_LN2; }

/* May this pass flush the exps below glibc's fast range (see
 * af__row_exp_flushed)? Only when it provably cannot show in a row sum.
 * Called after the update a' = a exp(q) (af__sym_step) with ws->t still
 * holding the last pass's r: with m = min_k exp(q_k), a'_k >= m a_k, so
 * every new row sum is r'_j = a'_j sum_k K0_jk a'_k >= exp(q_j) r_j m =: L_j
 * (for the plain relaxed step q = -w log r this is r_j^(1 - w) / (max
 * r)^w). A flushed term of row j is a'_j a'_k K0_jk with K0_jk <= tiny (the
 * exp of the fast-range bound), so row j loses at most n a'_j max(a') tiny.
 * Flush when that is below res L_j for every j, res far under the
 * precision's resolution (2^-60 double, 2^-30 single, halved for the
 * rounding of the last r). */
int af__sym_tiled_flush_allowed(size_t n, const double *a, const double *r, const double *q,
                                int single)
{
    double qmin = INFINITY, amax = 0, worst = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        if (!(r[j] > 0) || !isfinite(r[j]) || !(a[j] > 0) || !isfinite(a[j]) || !isfinite(q[j]))
            return 0;
        qmin = fmin(qmin, q[j]);
        amax = fmax(amax, a[j]);
    }
    for (size_t j = 0; j < n; j++)
        worst = fmax(worst, log(a[j]) - (q[j] + log(r[j]) + qmin));
    return log((double)n) + log(amax) + worst + flush_log_tiny(single) <= flush_log_res(single);
}

/* The pass works on blocks of SYMT_BLOCK rows against tiles of SYMT_TILE
 * columns of the upper triangle. Row by row, each pair (i, j > i) would
 * stream the column data (a_j, s_j, y_j) and this thread's column
 * accumulators through the cache once per row: at n = 1e5, d = 2 that is
 * about 90 bytes per pair, and the pass was bound by memory bandwidth. On a
 * tile they stay in L1 (256 columns x 8 arrays = 16 KB) and are reused by
 * the block's rows. */
#define SYMT_TILE 256
#define SYMT_BLOCK 32

/* Segment [js, js + len) of row i (js >= i; js == i: the diagonal is its
 * first term): e_q = K0_{i,js+q} into the accumulators, row i directly and
 * the columns j > i through the symmetry, for t and each right-hand side. */
static void symt_segment(size_t n, size_t p, size_t i, size_t js, size_t len, const double *e,
                         const double *a, const double *Yt, double *acc)
{
    const size_t q0 = js == i; /* the diagonal serves row i only */
    const double *aj = a + js, *eq = e + q0, ai = a[i];
    double *at = acc + js + q0;
    const size_t cl = len - q0;
    if (p == 2) {
        /* d = 2: three row sums in one sweep, three column updates in another */
        const double *y0 = Yt + js, *y1 = Yt + n + js;
        double r = 0, r0 = 0, r1 = 0;
#pragma omp simd reduction(+ : r, r0, r1)
        for (size_t q = 0; q < len; q++) {
            const double w = e[q] * aj[q];
            r += w;
            r0 += w * y0[q];
            r1 += w * y1[q];
        }
        acc[i] += r;
        acc[n + i] += r0;
        acc[2 * n + i] += r1;
        const double w0 = ai * Yt[i], w1 = ai * Yt[n + i];
        double *a0 = acc + n + js + q0, *a1 = acc + 2 * n + js + q0;
#pragma omp simd
        for (size_t q = 0; q < cl; q++) {
            at[q] += ai * eq[q];
            a0[q] += w0 * eq[q];
            a1[q] += w1 * eq[q];
        }
        return;
    }
    acc[i] += af__row_dot(len, e, aj);
#pragma omp simd
    for (size_t q = 0; q < cl; q++)
        at[q] += ai * eq[q];
    for (size_t k = 0; k < p; k++) {
        const double *yt = Yt + k * n + js;
        double *ak = acc + (k + 1) * n, row = 0;
#pragma omp simd reduction(+ : row)
        for (size_t q = 0; q < len; q++)
            row += e[q] * (aj[q] * yt[q]);
        ak[i] += row;
        const double w = ai * Yt[k * n + i];
        double *akt = ak + js + q0;
#pragma omp simd
        for (size_t q = 0; q < cl; q++)
            akt[q] += w * eq[q];
    }
}

/* From a pass's sums (t = K0 a, then K0 (a Y) by column, n each; times
 * exp(-s_i / 2) when unshift): r = a * t into ws->t and the errors (if
 * state), K0 (a Y) into apply_buf (p columns, 0: none). 1 if a row sum is
 * not positive and finite. */
static int symt_finish(af_sinkhorn_ws *ws, int state, size_t p, const double *sums, int unshift)
{
    const size_t n = ws->n;
    const double *a = ws->u;
    double err = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const double back = unshift ? exp(-0.5 * ws->shift[i]) : 1.0;
        for (size_t k = 0; k < p; k++)
            ws->apply_buf[i * p + k] = back * sums[(k + 1) * n + i];
        if (!state)
            continue;
        const double r = a[i] * (back * sums[i]);
        bad |= !(r > 0) || !isfinite(r);
        ws->t[i] = r;
        err = fmax(err, fabs(r - 1.0));
    }
    ws->symk_product = p > 0;
    if (state) {
        ws->symk_prev_err = ws->row_err;
        ws->row_err = ws->col_err = err;
    }
    return bad;
}

/* t = r = a * (K0 a) into ws->t and the errors (if state), K0 (a Y) into
 * apply_buf (if rhs: the pass expected to be the last, or a product-only
 * pass; the others form the row sums alone). 1 if a row sum is not
 * positive and finite. flush: see af__sym_tiled_flush_allowed. Blocks go
 * to threads cyclically (static, 1): the triangle's work is balanced and
 * each thread's share, hence every sum, is the same on every run with the
 * same team. */
static int symt_pass_with(af_sinkhorn_ws *ws, int flush, int state, int rhs)
{
    const size_t n = ws->n, stride = ((ws->src.Yt ? ws->src.p : 0) + 1) * n;
    const size_t p = rhs && ws->src.Yt ? ws->src.p : 0, used = (p + 1) * n;
    const double *a = ws->u, *s = ws->shift, *Yt = ws->src.Yt;
    double *hs = ws->apply_acc + (size_t)ws->nthreads * stride; /* -s_j / 2 */
    for (size_t j = 0; j < n; j++)
        hs[j] = -0.5 * s[j];
    const size_t blocks = (n + SYMT_BLOCK - 1) / SYMT_BLOCK;
    int team = 1;
#pragma omp parallel num_threads(af__team_size(ws)) AF_PAR_IF(n * n / 2)
    {
        const int tid = omp_get_thread_num();
        if (tid == 0)
            team = omp_get_num_threads();
        double *acc = ws->apply_acc + (size_t)tid * stride, *e = ws->rowbuf + (size_t)tid * n;
        double *cb = ws->cbuf + (size_t)tid * ws->m;
        memset(acc, 0, used * sizeof(double));
#pragma omp for schedule(static, 1)
        for (size_t b = 0; b < blocks; b++) {
            const size_t i0 = b * SYMT_BLOCK, i1 = i0 + SYMT_BLOCK < n ? i0 + SYMT_BLOCK : n;
            for (size_t j0 = i0; j0 < n; j0 += SYMT_TILE) {
                const size_t j1 = j0 + SYMT_TILE < n ? j0 + SYMT_TILE : n;
                for (size_t i = i0; i < i1 && i < j1; i++) {
                    const size_t js = i > j0 ? i : j0, len = j1 - js;
                    const double *c = ws->C             ? ws->C + i * ws->m + js
                                      : ws->src.tile ? (ws->src.tile(ws->src.ctx, i, js, len, cb), cb)
                                                     : ws->src.row(ws->src.ctx, i, js, cb);
                    if (flush)
                        af__row_exp_flushed(ws->src.single, len, c, hs + js, -hs[i], e);
                    else
                        af__row_exp_p(ws->src.single, len, c, hs + js, -hs[i], e);
                    symt_segment(n, p, i, js, len, e, a, Yt, acc);
                }
            }
        }
    }
    /* the threads' accumulators into the first one's, in thread order */
    for (int th = 1; th < team; th++)
        for (size_t q = 0; q < used; q++)
            ws->apply_acc[q] += ws->apply_acc[(size_t)th * stride + q];
    ws->symt_last_pass = flush;
    return symt_finish(ws, state, p, ws->apply_acc, 0);
}

static int symt_pass(af_sinkhorn_ws *ws, int flush)
{
    return symt_pass_with(ws, flush, 1, af__sym_pass_is_last(ws));
}

/* May the first pass flush? It has no last r, but every row sum is at
 * least its diagonal term, r_j >= a_j^2 K0_jj (K0_jj = exp(C_jj - s_j), 1
 * for L2 self-scores), and a flushed term of row j is below a_j max(a)
 * tiny: flush when n max(a) tiny <= res a_j K0_jj for every j (res as in
 * af__sym_tiled_flush_allowed). kdiag: K0_jj. */
int af__sym_tiled_first_flush_allowed(size_t n, const double *a, const double *kdiag, int single)
{
    double amax = 0, worst = INFINITY;
    for (size_t j = 0; j < n; j++) {
        if (!(a[j] > 0) || !isfinite(a[j]) || !(kdiag[j] > 0) || !isfinite(kdiag[j]))
            return 0;
        amax = fmax(amax, a[j]);
        worst = fmin(worst, log(a[j]) + log(kdiag[j]));
    }
    return log((double)n) + log(amax) + flush_log_tiny(single) <= flush_log_res(single) + worst;
}

/* A bounded pass through the backend's upper-triangle kernel (L2
 * self-scores, d = 2: src.sym_pass), which works on blocks x tiles with
 * the scores formed from coordinate differences and the column partials
 * kept in registers and L1. With weights w_j = a_j exp(-s_j / 2) it gives
 * sum_j exp(C_ij) w_j (1, y_j) = exp(s_i / 2) (K0 a, K0 (a Y))_i. It
 * flushes every term whose exp is below the fast range, i.e. K0_ij
 * exp((s_i + s_j) / 2) <= tiny: the flush af__sym_tiled_flush_allowed
 * bounds, up to the factor exp(-(s_i + s_j) / 2) <= 1 + 2e-6 that the
 * caller's |s| <= 1e-6 allows (L2 self-scores: s_i = C_ii = 0 up to
 * rounding). Same result as symt_pass(ws, 1) up to rounding. state: the
 * row sums and errors (else only K0 (a Y)); rhs: K0 (a Y) too (the
 * kernel's sums-only sweep is cheaper: the passes carry K X only when they
 * are likely the last, af__sym_pass_is_last). */
static int symt_pass_kernel_with(af_sinkhorn_ws *ws, int state, int rhs)
{
    const size_t n = ws->n;
    const double *a = ws->u, *s = ws->shift;
    double *acc = ws->apply_acc, *w = acc + (size_t)ws->nthreads * 3 * n;
    for (size_t j = 0; j < n; j++)
        w[j] = a[j] * exp(-0.5 * s[j]);
    ws->src.sym_pass(ws->src.ctx, w, rhs ? 3 : 1, acc, af__team_size(ws));
    ws->symt_last_pass = 2;
    return symt_finish(ws, state, rhs ? 2 : 0, acc, 1);
}

static int symt_pass_kernel(af_sinkhorn_ws *ws)
{
    return symt_pass_kernel_with(ws, 1, af__sym_pass_is_last(ws));
}

/* May the kernel pass serve: a source that offers it, two right-hand
 * sides, and shifts within 1e-6 of 0 (see symt_pass_kernel). */
static int symt_kernel_applies(const af_sinkhorn_ws *ws)
{
    if (!ws->src.sym_pass || ws->C || !ws->src.Yt || ws->src.p != 2)
        return 0;
    for (size_t j = 0; j < ws->n; j++)
        if (!(fabs(ws->shift[j]) <= 1e-6))
            return 0;
    return 1;
}

static int symt_pass_bounded(af_sinkhorn_ws *ws)
{
    if (!af__sym_tiled_flush_allowed(ws->n, ws->u, ws->t, ws->u_next, ws->src.single))
        return symt_pass(ws, 0);
    return symt_kernel_applies(ws) ? symt_pass_kernel(ws) : symt_pass(ws, 1);
}

/* The first pass: flushed where the diagonal bound allows (glibc's exp
 * takes a slow scalar path for results below its fast range, which at
 * small eps is most of a row), else exact. */
static int symt_pass_first(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n;
    ws->symk_prev_err = INFINITY;
    double *kdiag = ws->f_next; /* free until the log form needs it */
    for (size_t j = 0; j < n; j++)
        kdiag[j] = exp(ws->src.entry(ws->src.ctx, j, j) - ws->shift[j]);
    if (!af__sym_tiled_first_flush_allowed(n, ws->u, kdiag, ws->src.single))
        return symt_pass(ws, 0);
    return symt_kernel_applies(ws) ? symt_pass_kernel(ws) : symt_pass(ws, 1);
}

static af_status symt_start(af_sinkhorn_ws *ws)
{
    af_status st = ensure_buffers(ws);
    return st ? st : af__sym_scaling_begin(ws, symt_pass_first);
}

static af_status symt_step(af_sinkhorn_ws *ws)
{
    return af__sym_scaling_advance(ws, symt_pass_bounded);
}

/* K_ij = a_i K0_ij a_j from regenerated rows (small n: tests). */
static void symt_matrix(const af_sinkhorn_ws *ws, double *K)
{
    const size_t n = ws->n;
    for (size_t i = 0; i < n; i++) {
        const double *c = af__score_row(ws, i, 0);
        for (size_t j = 0; j < n; j++)
            K[i * n + j] = ws->u[i] * exp(c[j] - 0.5 * (ws->shift[i] + ws->shift[j])) * ws->u[j];
    }
}

const double *af__sym_tiled_product(af_sinkhorn_ws *ws)
{
    /* the last pass did not carry it: one more of the same kind (the same
     * flushing), state unchanged */
    if (!ws->symk_product && ws->symt_last_pass == 2)
        symt_pass_kernel_with(ws, 0, 1);
    else if (!ws->symk_product)
        symt_pass_with(ws, ws->symt_last_pass, 0, 1);
    return ws->apply_buf;
}

const af_sinkhorn_type af_sinkhorn_type_sym_tiled = {
    "symmetric-tiled", 1, symt_start, symt_step, af__sym_scaling_potentials, symt_matrix,
};

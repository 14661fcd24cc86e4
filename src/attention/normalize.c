/* SoftMax, the Sinkhorn solver loop (GSL style: set / iterate / done) and
 * its diagnostics. The per-path numerics live in sinkhorn_paths.c. */
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include "core/af_alloc.h"
#include "normalize_internal.h"

const af_sinkhorn_type *const af_sinkhorn_scaling = &af_sinkhorn_type_scaling;
const af_sinkhorn_type *const af_sinkhorn_log = &af_sinkhorn_type_log;
const af_sinkhorn_type *const af_sinkhorn_symmetric = &af_sinkhorn_type_sym_scaling;
const af_sinkhorn_type *const af_sinkhorn_symmetric_log = &af_sinkhorn_type_sym_log;

/* Score range above which exp(C_ij - rowmax) would leave double range for
 * the scalings u, v (about 1e+-308): take the log path from the start. */
#define AF_SCALING_MAX_RANGE 600.0
/* Exact Hilbert diameter (O(n^2 m)) only below this many operations. */
#define AF_EXACT_BOUND_OPS 3.0e7

const char *af_sinkhorn_type_name(const af_sinkhorn_type *t) { return t ? t->name : "auto"; }

/* ---- row kernels (one definition, used by every path) ---- */

double af__row_max_shifted(size_t m, const double *c, const double *g)
{
    /* A plain comparison (not fmax, a libm call) so that the loop vectorises;
     * NaNs are skipped here and caught by the callers' finite-sum checks. */
    double mx = -INFINITY;
    if (g) {
#pragma omp simd reduction(max : mx)
        for (size_t j = 0; j < m; j++)
            mx = c[j] + g[j] > mx ? c[j] + g[j] : mx;
    } else {
#pragma omp simd reduction(max : mx)
        for (size_t j = 0; j < m; j++)
            mx = c[j] > mx ? c[j] : mx;
    }
    return mx;
}

void af__row_exp(size_t m, const double *c, const double *g, double shift, double *out)
{
    /* Vectorised exp (glibc libmvec) through omp simd; -fno-math-errno. */
    if (g) {
#pragma omp simd
        for (size_t j = 0; j < m; j++)
            out[j] = exp(c[j] + g[j] - shift);
    } else {
#pragma omp simd
        for (size_t j = 0; j < m; j++)
            out[j] = exp(c[j] - shift);
    }
}

void af__row_exp_single(size_t m, const double *c, const double *g, double shift, double *out)
{
    if (g) {
#pragma omp simd
        for (size_t j = 0; j < m; j++)
            out[j] = (double)expf((float)(c[j] + g[j] - shift));
    } else {
#pragma omp simd
        for (size_t j = 0; j < m; j++)
            out[j] = (double)expf((float)(c[j] - shift));
    }
}

/* glibc's vector exp leaves its fast path for arguments below about -708.4
 * (expf: -87.3), where the result is subnormal or 0, and finishes every
 * such lane with the scalar function: 15-25x slower per exp. Attention
 * rows at small eps are mostly there (L2 scores / eps reach -1e3 and
 * beyond), so the exp bound was missed by that much. The flushed kernel
 * clamps the argument into the fast range and writes 0 for the lanes below
 * it: each such term changes by less than the smallest normal number
 * (2.3e-308, float 1.2e-38), nothing next to a row sum >= 1 (every
 * max-shifted row) or a Sinkhorn row of mass ~ 1/n. */

/* Three short loops (clamp, exp, flush) rather than one: gcc 12 leaves the
 * float call scalar when clamp, conversion and select share its loop. The
 * clamped lanes come out as exactly exp(min), so the flush tests the
 * result: terms <= exp(min) (2.3e-308 in double, 1.6e-38 in float) are 0. */
#define AF_FLUSHED_EXP_LOOP(ARG)                                                        \
    {                                                                               \
        const double lo = single ? AF_EXPF_FAST_MIN : AF_EXP_FAST_MIN;              \
        const double tiny = single ? (double)expf((float)AF_EXPF_FAST_MIN) : exp(AF_EXP_FAST_MIN); \
        _Pragma("omp simd") for (size_t j = 0; j < m; j++)                          \
        {                                                                           \
            const double x = ARG;                                                   \
            out[j] = x < lo ? lo : x;                                               \
        }                                                                           \
        if (single) {                                                               \
            _Pragma("omp simd") for (size_t j = 0; j < m; j++)                      \
                out[j] = (double)expf((float)out[j]);                               \
        } else {                                                                    \
            _Pragma("omp simd") for (size_t j = 0; j < m; j++)                      \
                out[j] = exp(out[j]);                                               \
        }                                                                           \
        _Pragma("omp simd") for (size_t j = 0; j < m; j++)                          \
            out[j] = out[j] <= tiny ? 0.0 : out[j];                                 \
    }

void af__row_exp_flushed(int single, size_t m, const double *c, const double *g, double shift,
                         double *out)
{
    /* the plain kernel when nothing reaches the slow range (one cheap pass) */
    double mn = INFINITY;
    if (g) {
#pragma omp simd reduction(min : mn)
        for (size_t j = 0; j < m; j++)
            mn = c[j] + g[j] < mn ? c[j] + g[j] : mn;
    } else {
#pragma omp simd reduction(min : mn)
        for (size_t j = 0; j < m; j++)
            mn = c[j] < mn ? c[j] : mn;
    }
    if (!(mn - shift < (single ? AF_EXPF_FAST_MIN : AF_EXP_FAST_MIN))) {
        af__row_exp_p(single, m, c, g, shift, out);
        return;
    }
    if (g)
        AF_FLUSHED_EXP_LOOP(c[j] + g[j] - shift)
    else
        AF_FLUSHED_EXP_LOOP(c[j] - shift)
}

/* Sums with AF_LANES independent partial sums: one accumulator chain would
 * make the reductions latency-bound (an add every 4 cycles) instead of
 * bandwidth-bound. row_dot(a, ones) and row_sum(a) associate identically,
 * so SoftMax and one Sinkhorn normalisation agree bit for bit. */
#define AF_LANES 16

double af__row_sum(size_t m, const double *a)
{
    double acc[AF_LANES] = {0};
    size_t j = 0;
    for (; j + AF_LANES <= m; j += AF_LANES)
        for (size_t k = 0; k < AF_LANES; k++)
            acc[k] += a[j + k];
    double s = 0;
    for (; j < m; j++)
        s += a[j];
    for (size_t k = 0; k < AF_LANES; k++)
        s += acc[k];
    return s;
}

double af__row_dot(size_t m, const double *a, const double *b)
{
    double acc[AF_LANES] = {0};
    size_t j = 0;
    for (; j + AF_LANES <= m; j += AF_LANES)
        for (size_t k = 0; k < AF_LANES; k++)
            acc[k] += a[j + k] * b[j + k];
    double s = 0;
    for (; j < m; j++)
        s += a[j] * b[j];
    for (size_t k = 0; k < AF_LANES; k++)
        s += acc[k];
    return s;
}

/* row_sum(a), row_dot(a, x0), row_dot(a, x1) in one sweep over a (d = 2
 * rows of the fused passes), associated exactly as those: the same bits. */
void af__row_sum_dot2(size_t m, const double *a, const double *x0, const double *x1, double out[3])
{
    double s0[AF_LANES] = {0}, s1[AF_LANES] = {0}, s2[AF_LANES] = {0};
    size_t j = 0;
    for (; j + AF_LANES <= m; j += AF_LANES)
        for (size_t k = 0; k < AF_LANES; k++) {
            const double v = a[j + k];
            s0[k] += v;
            s1[k] += v * x0[j + k];
            s2[k] += v * x1[j + k];
        }
    double t0 = 0, t1 = 0, t2 = 0;
    for (; j < m; j++) {
        t0 += a[j];
        t1 += a[j] * x0[j];
        t2 += a[j] * x1[j];
    }
    for (size_t k = 0; k < AF_LANES; k++) {
        t0 += s0[k];
        t1 += s1[k];
        t2 += s2[k];
    }
    out[0] = t0;
    out[1] = t1;
    out[2] = t2;
}

/* ---- SoftMax ---- */

af_status af_softmax(size_t n, size_t m, const double *C, double *K)
{
    if (n == 0 || m == 0)
        return af_error(AF_EINVAL, "softmax: sizes must be >= 1 (n = %zu, m = %zu)", n, m);
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) AF_PAR_IF(n * m)
    for (size_t i = 0; i < n; i++) {
        const double *c = C + i * m;
        double *k = K + i * m;
        double mx = af__row_max_shifted(m, c, NULL);
        af__row_exp(m, c, NULL, mx, k);
        double S = af__row_sum(m, k), inv = 1.0 / S;
        /* fmax skips NaN: a NaN or +inf score shows up in the sum instead */
        if (!isfinite(mx) || !isfinite(S)) {
            bad = 1;
            continue;
        }
        for (size_t j = 0; j < m; j++)
            k[j] = (k[j] * 1.0) * inv; /* same expression as the scaling path's u_i K0_ij v_j */
    }
    if (bad)
        return af_error(AF_EDOM, "softmax: scores contain NaN or infinite values");
    return AF_SUCCESS;
}

/* ---- workspace ---- */

af_sinkhorn_options af_sinkhorn_options_default(void)
{
    af_sinkhorn_options o;
    o.path = NULL;
    o.tol = 1e-9;
    o.iters = 0;
    o.max_iters = 10000;
    o.warm_start = 0;
    o.assume_symmetric = 0;
    o.compute_bound = 1;
    return o;
}

static af_sinkhorn_ws *sinkhorn_alloc(size_t n, size_t m, int matrix_free)
{
    if (n == 0 || m == 0) {
        af_error(AF_EINVAL, "sinkhorn: sizes must be >= 1 (n = %zu, m = %zu)", n, m);
        return NULL;
    }
    /* the n x m kernel (and its thread-local row buffers) must be addressable:
     * a byte count that wraps would allocate a short buffer */
    size_t nm, bytes;
    if (__builtin_mul_overflow(n, m, &nm) || __builtin_mul_overflow(nm, 4 * sizeof(double), &bytes)) {
        af_error(AF_EINVAL, "sinkhorn: a %zu x %zu kernel does not fit in memory", n, m);
        return NULL;
    }
    af_sinkhorn_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        goto fail;
    ws->n = n;
    ws->m = m;
    ws->nthreads = ws->team = omp_get_max_threads();
    size_t T = (size_t)ws->nthreads;
    ws->matrix_free = matrix_free;
    if (matrix_free)
        ws->cbuf = malloc(T * m * sizeof(double));
    else
        ws->K0 = af__alloc_large(n * m * sizeof(double));
    ws->shift = calloc(n, sizeof(double));
    ws->f = calloc(n, sizeof(double));
    ws->g = calloc(m, sizeof(double));
    ws->u = calloc(n, sizeof(double));
    ws->v = calloc(m, sizeof(double));
    ws->u_next = calloc(n, sizeof(double));
    ws->f_next = calloc(n, sizeof(double));
    ws->t = calloc(n, sizeof(double));
    ws->w = calloc(m, sizeof(double));
    ws->csum = calloc(m, sizeof(double));
    ws->colacc = calloc(T * m, sizeof(double));
    ws->rowbuf = calloc(T * m, sizeof(double));
    ws->hist_cap = 256;
    ws->row_hist = malloc(ws->hist_cap * sizeof(double));
    ws->col_hist = malloc(ws->hist_cap * sizeof(double));
    if (!(matrix_free ? ws->cbuf : ws->K0) || !ws->shift || !ws->f || !ws->g || !ws->u || !ws->v || !ws->u_next
        || !ws->f_next || !ws->t || !ws->w || !ws->csum || !ws->colacc || !ws->rowbuf || !ws->row_hist
        || !ws->col_hist) {
        af_sinkhorn_free(ws);
        goto fail;
    }
    ws->delta = NAN;
    ws->row_end = n; /* one process: every row */
    return ws;
fail:
    af_error(AF_ENOMEM, "sinkhorn: out of memory for a %zu x %zu workspace", n, m);
    return NULL;
}

af_sinkhorn_ws *af_sinkhorn_alloc(size_t n, size_t m) { return sinkhorn_alloc(n, m, 0); }

af_sinkhorn_ws *af__sinkhorn_alloc_matrix_free(size_t n, size_t m)
{
    return sinkhorn_alloc(n, m, 1);
}

void af_sinkhorn_free(af_sinkhorn_ws *ws)
{
    if (!ws)
        return;
    free(ws->K0);
    free(ws->cbuf);
    free(ws->shift);
    free(ws->f);
    free(ws->g);
    free(ws->u);
    free(ws->v);
    free(ws->u_next);
    free(ws->f_next);
    free(ws->t);
    free(ws->w);
    free(ws->csum);
    free(ws->colacc);
    free(ws->rowbuf);
    free(ws->apply_buf);
    free(ws->apply_acc);
    free(ws->symk_rows);
    free(ws->row_hist);
    free(ws->col_hist);
    free(ws);
}

int af__team_size(const af_sinkhorn_ws *ws)
{
    int t = omp_get_max_threads();
    return t < ws->nthreads ? t : ws->nthreads;
}

/* ---- diagnostics ---- */

double af_birkhoff_hopf_rate(double delta)
{
    double l = tanh(delta / 4.0);
    return l * l;
}

double af_hilbert_diameter(size_t n, size_t m, const double *C, int exact)
{
    if (!exact) {
        /* C_ik - C_il <= range_i and C_jl - C_jk <= range_j. */
        double r = 0;
        for (size_t i = 0; i < n; i++) {
            double lo = INFINITY, hi = -INFINITY;
            for (size_t k = 0; k < m; k++) {
                lo = fmin(lo, C[i * m + k]);
                hi = fmax(hi, C[i * m + k]);
            }
            r = fmax(r, hi - lo);
        }
        return 2 * r;
    }
    /* Delta = max_{i,j} [max_k (C_ik - C_jk) + max_l (C_jl - C_il)]. */
    double best = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(max : best) AF_PAR_IF(n * n * m / 4)
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            double a = -INFINITY, b = -INFINITY;
            const double *ci = C + i * m, *cj = C + j * m;
            for (size_t k = 0; k < m; k++) {
                double dlt = ci[k] - cj[k];
                a = fmax(a, dlt);
                b = fmax(b, -dlt);
            }
            best = fmax(best, a + b);
        }
    }
    return best;
}

af_status af_second_singular_value(size_t n, const double *K, double tol, size_t max_iter,
                                   double *sigma2)
{
    if (n < 2)
        return af_error(AF_EINVAL, "second singular value: n must be >= 2");
    double *x = malloc(2 * n * sizeof *x), *y = x + n;
    if (!x)
        return af_error(AF_ENOMEM, "out of memory");
    /* Deterministic start, orthogonal to the ones vector. */
    for (size_t i = 0; i < n; i++)
        x[i] = cos(1.0 + 3.0 * (double)i) + 0.5 * sin(7.0 * (double)i * (double)i);
    double lam = 0, prev = -1;
    af_status st = AF_EMAXITER;
    for (size_t it = 0; it < max_iter; it++) {
        double mean = 0, nrm = 0;
        for (size_t i = 0; i < n; i++)
            mean += x[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) {
            x[i] -= mean;
            nrm += x[i] * x[i];
        }
        nrm = sqrt(nrm);
        if (nrm == 0)
            break;
        for (size_t i = 0; i < n; i++)
            x[i] /= nrm;
        /* y = K x, then x = K^T y: one application of K^T K */
#pragma omp parallel for schedule(static) AF_PAR_IF(n * n)
        for (size_t i = 0; i < n; i++)
            y[i] = af__row_dot(n, K + i * n, x);
        lam = 0;
        for (size_t i = 0; i < n; i++)
            lam += y[i] * y[i]; /* Rayleigh quotient x^T K^T K x */
        memset(x, 0, n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                x[j] += K[i * n + j] * y[i];
        if (fabs(lam - prev) <= tol * fabs(lam)) {
            st = AF_SUCCESS;
            break;
        }
        prev = lam;
    }
    free(x);
    *sigma2 = sqrt(lam);
    if (st != AF_SUCCESS)
        return af_error(st, "second singular value: power iteration did not converge");
    return st;
}

/* ---- the solver loop ---- */

/* Exact symmetry, tile by tile (cache friendly, parallel). */
static int is_symmetric(size_t n, const double *C)
{
    const size_t T = 64;
    int asym = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : asym) AF_PAR_IF(n * n)
    for (size_t bi = 0; bi < n; bi += T) {
        for (size_t bj = bi; bj < n && !asym; bj += T) {
            size_t ie = bi + T < n ? bi + T : n, je = bj + T < n ? bj + T : n;
            for (size_t i = bi; i < ie; i++)
                for (size_t j = bj > i ? bj : i + 1; j < je; j++)
                    asym |= C[i * n + j] != C[j * n + i];
        }
    }
    return !asym;
}

static af_status record(af_sinkhorn_ws *ws)
{
    if (ws->iter >= ws->hist_cap) {
        size_t cap = 2 * ws->hist_cap;
        double *r = realloc(ws->row_hist, cap * sizeof *r);
        if (r)
            ws->row_hist = r;
        double *c = realloc(ws->col_hist, cap * sizeof *c);
        if (c)
            ws->col_hist = c;
        if (!r || !c)
            return af_error(AF_ENOMEM, "sinkhorn: out of memory for the error history");
        ws->hist_cap = cap;
    }
    ws->row_hist[ws->iter - 1] = ws->row_err;
    ws->col_hist[ws->iter - 1] = ws->col_err;
    return AF_SUCCESS;
}

static void update_done(af_sinkhorn_ws *ws)
{
    if (ws->opt.iters > 0) {
        ws->converged = ws->done = ws->iter >= ws->opt.iters;
        return;
    }
    /* fmax ignores NaN: a NaN error (a state that is not a number) ends
     * the solve unconverged instead of passing for 0 */
    const int nan = isnan(ws->row_err) || isnan(ws->col_err);
    double err = fmax(ws->row_err, ws->col_err);
    ws->converged = !nan && ws->iter > 0 && err <= ws->opt.tol;
    ws->done = ws->converged || nan || ws->iter >= ws->opt.max_iters;
}

/* A new solve from the warm-start potentials (or zeros): no iteration done,
 * errors unknown, no bound. Warm potentials that are not finite are
 * refused: the passes measure their errors with fmax, which drops NaN, so
 * such a start would end "converged" on NaN. */
static af_status reset_solve(af_sinkhorn_ws *ws)
{
    if (!ws->opt.warm_start) {
        memset(ws->f, 0, ws->n * sizeof(double));
        memset(ws->g, 0, ws->m * sizeof(double));
    }
    for (size_t i = 0; i < ws->n + ws->m; i++) {
        const double v = i < ws->n ? ws->f[i] : ws->g[i - ws->n];
        if (!isfinite(v))
            return af_error(AF_EINVAL, "sinkhorn: warm-start potential %s[%zu] is %g",
                            i < ws->n ? "f" : "g", i < ws->n ? i : i - ws->n, v);
    }
    ws->iter = 0;
    ws->next_is_row = 1;
    ws->row_err = ws->col_err = INFINITY;
    ws->done = ws->converged = 0;
    ws->delta = NAN;
    ws->delta_exact = 0;
    return AF_SUCCESS;
}

/* One pass over the scores of this process's rows: the NaN/inf check
 * (bad_row: the last row with a non-finite score, or -1), the row maxima
 * (kept as the kernel shifts), range = largest spread of a row, and deficit
 * = largest gap between a row maximum and its diagonal score (square). */
static void scan_scores(af_sinkhorn_ws *ws, double *range_out, double *deficit_out,
                        long *bad_row_out)
{
    const size_t n = ws->n, m = ws->m;
    double range = 0, deficit = 0;
    long bad_row = -1;
#pragma omp parallel for schedule(static) reduction(max : range, deficit, bad_row) \
    num_threads(af__team_size(ws)) AF_PAR_IF(n * m)
    for (size_t i = ws->row_begin; i < ws->row_end; i++) {
        const double *c = af__score_row(ws, i, omp_get_thread_num());
        double lo = INFINITY, hi = -INFINITY;
        int nan = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : nan)
        for (size_t j = 0; j < m; j++) {
            lo = c[j] < lo ? c[j] : lo;
            hi = c[j] > hi ? c[j] : hi;
            nan |= c[j] != c[j];
        }
        if (nan || !isfinite(lo) || !isfinite(hi))
            bad_row = bad_row > (long)i ? bad_row : (long)i;
        ws->shift[i] = hi;
        range = range > hi - lo ? range : hi - lo;
        if (n == m)
            deficit = deficit > hi - c[i] ? deficit : hi - c[i];
    }
    *range_out = range;
    *deficit_out = deficit;
    *bad_row_out = bad_row;
}

/* Scores from C (stored) or, with C NULL, from ws->src (matrix-free). */
static af_status sinkhorn_set(af_sinkhorn_ws *ws, const double *C, const af_sinkhorn_options *opt)
{
    size_t n = ws->n, m = ws->m;
    if (opt && opt->warm_start && ws->ready)
        ws->type->potentials(ws); /* start from the previous problem's result */
    ws->ready = 0;
    ws->C = C;
    ws->opt = opt ? *opt : af_sinkhorn_options_default();
    if (ws->opt.iters == 0 && !(ws->opt.tol > 0))
        return af_error(AF_EINVAL, "sinkhorn: tol must be > 0 (got %g)", ws->opt.tol);
    if (ws->opt.iters == 0 && ws->opt.max_iters == 0)
        return af_error(AF_EINVAL, "sinkhorn: max_iters must be >= 1");
    double range = 0, deficit = 0;
    long bad_row = -1;
    /* Known L2 self-scores (matrix-free, one process, tolerance mode, the
     * symmetric path): row maxima 0, finite, deficit 0; the range only
     * feeds the alternating paths and the Hilbert bound, not asked here.
     * At n = 1e5 the scan is a pass over 1e10 scores per solve. */
    const int known = ws->src.l2_self && !C && n == m && !ws->comm && ws->opt.iters == 0
                      && ws->opt.compute_bound == 0
                      && (!ws->opt.path || ws->opt.path == &af_sinkhorn_type_sym_scaling);
    if (known)
        memset(ws->shift, 0, n * sizeof(double));
    else
        scan_scores(ws, &range, &deficit, &bad_row);
    if (ws->comm)
        af__sinkhorn_share_set(ws, &range, &deficit, &bad_row);
    if (bad_row >= 0) {
        size_t i = (size_t)bad_row, j = 0;
        const double *c = af__score_row(ws, i, 0);
        while (j < m && isfinite(c[j]))
            j++;
        return af_error(AF_EDOM, "sinkhorn: score (%zu, %zu) is not finite (%g)", i, j,
                        j < m ? c[j] : NAN);
    }
    /* Matrix-free: symmetry only as the caller guarantees it (checking
     * would regenerate every score). */
    int sym_ok = n == m && (known || ws->opt.assume_symmetric || (C && is_symmetric(n, C)));
    const af_sinkhorn_type *t = ws->opt.path;
    if (t == &af_sinkhorn_type_sym_scaling || t == &af_sinkhorn_type_sym_log) {
        if (!sym_ok)
            return af_error(AF_EINVAL, "sinkhorn: the symmetric path needs a symmetric square score matrix");
    }
    /* Scores spread over more than AF_SCALING_MAX_RANGE would push the
     * scalings out of double range: log space from the start (a requested
     * scaling path counts as having fallen back). The symmetric scaling is
     * bounded by the diagonal instead: its scalings satisfy
     * a_i <= exp((s_i - C_ii) / 2), so K_ij <= K0_ij exp(deficit) and entries
     * that underflow in K0 stay negligible while the deficit is moderate
     * (L2 scores: deficit 0 whatever the spread). */
    int unsafe = range > AF_SCALING_MAX_RANGE;
    int sym_unsafe = deficit > AF_SCALING_MAX_RANGE;
    if (!t)
        t = (sym_ok && ws->opt.iters == 0) ? &af_sinkhorn_type_sym_scaling : &af_sinkhorn_type_scaling;
    ws->fell_back = 0;
    if (unsafe && t == &af_sinkhorn_type_scaling)
        t = &af_sinkhorn_type_log, ws->fell_back = ws->opt.path != NULL;
    if (sym_unsafe && t == &af_sinkhorn_type_sym_scaling)
        t = &af_sinkhorn_type_sym_log, ws->fell_back = ws->opt.path != NULL;
    /* Without a stored kernel the alternating iteration runs in log space
     * on regenerated scores, the symmetric one in scaling form on
     * regenerated upper triangles (the same iterates either way). */
    if (ws->matrix_free)
        t = t == &af_sinkhorn_type_sym_scaling ? &af_sinkhorn_type_sym_tiled
            : t->symmetric                     ? &af_sinkhorn_type_sym_log
                                               : &af_sinkhorn_type_log;
    ws->type = t;
    af_status rs = reset_solve(ws);
    if (rs)
        return rs;
    if (ws->opt.compute_bound == 2 && !C)
        return af_error(AF_EINVAL, "sinkhorn: the exact Hilbert diameter needs the stored score "
                                   "matrix (use the dense backend)");
    if (ws->opt.compute_bound) {
        int exact = C && (ws->opt.compute_bound == 2
                          || (double)n * (double)n * (double)m <= AF_EXACT_BOUND_OPS);
        ws->delta = exact ? af_hilbert_diameter(n, m, C, 1) : 2 * range;
        ws->delta_exact = exact;
    }
    ws->ready = 1;
    af_status st = ws->type->start(ws);
    if (st == AF_SUCCESS)
        update_done(ws);
    return st;
}

af_status af_sinkhorn_set(af_sinkhorn_ws *ws, const double *C, const af_sinkhorn_options *opt)
{
    if (ws->matrix_free)
        return af_error(AF_EINVAL, "sinkhorn: a matrix-free workspace takes generated scores");
    return sinkhorn_set(ws, C, opt);
}

af_status af__sinkhorn_set_source(af_sinkhorn_ws *ws, const af__score_source *src,
                                  const af_sinkhorn_options *opt)
{
    ws->src = *src;
    return sinkhorn_set(ws, NULL, opt);
}

/* Called by a scaling path whose numbers left double range: continue the
 * same iteration in log space from the potentials of the last finite state. */
af_status af__sinkhorn_fall_back(af_sinkhorn_ws *ws)
{
    ws->type->potentials(ws);
    ws->type = ws->type->symmetric ? &af_sinkhorn_type_sym_log : &af_sinkhorn_type_log;
    ws->fell_back = 1;
    return ws->type->start(ws);
}

af_status af_sinkhorn_iterate(af_sinkhorn_ws *ws)
{
    if (!ws->ready)
        return af_error(AF_EINVAL, "sinkhorn: af_sinkhorn_set was not called");
    af_status st = ws->type->step(ws);
    if (st != AF_SUCCESS)
        return st;
    ws->iter++;
    st = record(ws);
    update_done(ws);
    return st;
}

int af_sinkhorn_done(const af_sinkhorn_ws *ws) { return ws->done; }

void af_sinkhorn_get_info(af_sinkhorn_ws *ws, af_sinkhorn_info *info)
{
    info->f = af_sinkhorn_f(ws); /* syncs the potentials of scaling paths */
    info->g = ws->g;
    info->iterations = ws->iter;
    info->row_err = ws->row_err;
    info->col_err = ws->col_err;
    info->converged = ws->converged;
    info->path = ws->type;
    info->fell_back = ws->fell_back;
    info->row_hist = ws->row_hist;
    info->col_hist = ws->col_hist;
    info->hilbert_diam = ws->delta;
    info->bound_exact = ws->delta_exact;
    info->bh_rate = isnan(ws->delta) ? NAN : af_birkhoff_hopf_rate(ws->delta);
}

/* The solver loop after set(). */
static af_status sinkhorn_run(af_sinkhorn_ws *ws, af_status st, double *K, af_sinkhorn_info *info)
{
    while (st == AF_SUCCESS && !ws->done)
        st = af_sinkhorn_iterate(ws);
    if (st != AF_SUCCESS)
        return st;
    if (K)
        ws->type->matrix(ws, K);
    if (info)
        af_sinkhorn_get_info(ws, info);
    if (!ws->converged)
        return af_error(AF_EMAXITER,
                        "sinkhorn: tolerance %g not reached in %zu iterations (error %g)",
                        ws->opt.tol, ws->iter, fmax(ws->row_err, ws->col_err));
    return AF_SUCCESS;
}

af_status af_sinkhorn(af_sinkhorn_ws *ws, const double *C, const af_sinkhorn_options *opt,
                      double *K, af_sinkhorn_info *info)
{
    return sinkhorn_run(ws, af_sinkhorn_set(ws, C, opt), K, info);
}

af_status af__sinkhorn_solve_source(af_sinkhorn_ws *ws, const af__score_source *src,
                                    const af_sinkhorn_options *opt, af_sinkhorn_info *info)
{
    return sinkhorn_run(ws, af__sinkhorn_set_source(ws, src, opt), NULL, info);
}

/* af_sinkhorn_set for a kernel the caller built (normalize_internal.h):
 * no pass over scores, row shifts 0, the symmetric path from the start. */
static af_status sym_kernel_set(af_sinkhorn_ws *ws, const double *C, void (*fill)(void *ctx),
                                void (*build)(void *ctx, size_t i, double *out),
                                void *ctx, const double *Yt, size_t p,
                                const af_sinkhorn_options *opt)
{
    if (opt->warm_start && ws->ready)
        ws->type->potentials(ws); /* start from the previous problem's result */
    ws->ready = 0;
    ws->opt = *opt;
    if (opt->iters != 0 || !(opt->tol > 0) || opt->max_iters == 0)
        return af_error(AF_EINVAL, "sinkhorn: the prebuilt symmetric kernel needs tol > 0 and "
                                   "max_iters >= 1 (no fixed count)");
    af_status st = af__sym_kernel_buffers(ws, Yt ? p : 0);
    if (st)
        return st;
    ws->C = C;
    ws->fill_scores = fill;
    ws->build_row = build;
    ws->fill_ctx = ctx;
    ws->src.Yt = Yt;
    ws->src.p = Yt ? p : 0;
    memset(ws->shift, 0, ws->n * sizeof(double));
    ws->type = &af_sinkhorn_type_sym_kernel;
    ws->fell_back = 0;
    if ((st = reset_solve(ws)))
        return st;
    ws->ready = 1;
    st = ws->type->start(ws);
    if (st == AF_SUCCESS)
        update_done(ws);
    return st;
}

af_status af__sinkhorn_solve_sym_kernel(af_sinkhorn_ws *ws, const double *C,
                                        void (*fill)(void *ctx),
                                        void (*build)(void *ctx, size_t i, double *out),
                                        void *ctx, const double *Yt, size_t p,
                                        const af_sinkhorn_options *opt, af_sinkhorn_info *info)
{
    return sinkhorn_run(ws, sym_kernel_set(ws, C, fill, build, ctx, Yt, p, opt), NULL, info);
}

af_status af_sinkhorn_matrix(const af_sinkhorn_ws *ws, double *K)
{
    if (!ws->ready)
        return af_error(AF_EINVAL, "sinkhorn: af_sinkhorn_set was not called");
    ws->type->matrix(ws, K);
    return AF_SUCCESS;
}

const double *af_sinkhorn_f(af_sinkhorn_ws *ws)
{
    if (ws->ready)
        ws->type->potentials(ws);
    return ws->f;
}

const double *af_sinkhorn_g(af_sinkhorn_ws *ws)
{
    if (ws->ready)
        ws->type->potentials(ws);
    return ws->g;
}

void af_sinkhorn_set_potentials(af_sinkhorn_ws *ws, const double *f, const double *g)
{
    memcpy(ws->f, f, ws->n * sizeof(double));
    memcpy(ws->g, g, ws->m * sizeof(double));
    ws->ready = 0; /* the next set() starts from these (with warm_start) */
}

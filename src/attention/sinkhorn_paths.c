/* The four Sinkhorn paths. Every path keeps, besides its state, the result
 * of one "fused pass" over the kernel that yields at once the row error of
 * the current state and the pending row update with the column sums it will
 * produce. A row normalisation then only commits the pending update (O(n+m))
 * and a column normalisation does the one pass, so a full row+column
 * iteration reads the n x m kernel once, and both errors are exact at every
 * normalisation. */
#include "core/af_blas.h"
#include "core/af_simd_math.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "normalize_internal.h"

/* Column target n/m: K is n times a transport plan with uniform marginals. */
static double col_target(const af_sinkhorn_ws *ws) { return (double)ws->n / (double)ws->m; }

/* Sums the per-thread column accumulators into out. */
static void reduce_columns(const af_sinkhorn_ws *ws, double *out)
{
    size_t m = ws->m, T = (size_t)ws->team;
    memcpy(out, ws->colacc, m * sizeof(double));
    for (size_t t = 1; t < T; t++) {
        const double *a = ws->colacc + t * m;
#pragma omp simd
        for (size_t j = 0; j < m; j++)
            out[j] += a[j];
    }
}

/* A row normalisation commits the update the last fused pass prepared
 * (next -> state): its column sums and row error are already known. */
static void commit_row_step(af_sinkhorn_ws *ws, double *state, const double *next)
{
    const double target = col_target(ws);
    memcpy(state, next, ws->n * sizeof(double));
    double ce = 0;
    for (size_t j = 0; j < ws->m; j++)
        ce = fmax(ce, fabs(ws->csum[j] / target - 1.0));
    ws->col_err = ce;
    ws->row_err = ws->next_row_err;
    ws->next_is_row = 0;
}

/* ------------------------------------------------------------------ scaling
 * K = diag(u) K0 diag(v), K0_ij = exp(C_ij - s_i). */

/* t = K0 v, u_next = 1/t, w = K0^T u_next; errors of the current state. */
#define AF_ROWS 4
static int scaling_pass(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n, m = ws->m;
    const double *K0 = ws->K0, *v = ws->v, *u = ws->u;
    double row_err = 0, next_err = 0;
    int bad = 0;
#pragma omp parallel reduction(max : row_err, next_err) reduction(| : bad) \
    num_threads(af__team_size(ws)) AF_PAR_IF(n * m)
    {
        if (omp_get_thread_num() == 0)
            ws->team = omp_get_num_threads();
        double *acc = ws->colacc + (size_t)omp_get_thread_num() * m;
        memset(acc, 0, m * sizeof(double));
        /* Rows in groups of AF_ROWS: their dots first, then one pass adding
         * all of them to the accumulator, so acc is loaded and stored once
         * per group instead of once per row. */
#pragma omp for schedule(static)
        for (size_t i0 = 0; i0 < n; i0 += AF_ROWS) {
            const size_t r = n - i0 < AF_ROWS ? n - i0 : AF_ROWS;
            double un[AF_ROWS] = {0};
            const double *k[AF_ROWS];
            for (size_t q = 0; q < AF_ROWS; q++)
                k[q] = K0 + (i0 + (q < r ? q : 0)) * m; /* padding rows get weight 0 */
            for (size_t q = 0; q < r; q++) {
                const size_t i = i0 + q;
                double t = af__row_dot(m, k[q], v);
                un[q] = 1.0 / t;
                bad |= !(t > 0) || !isfinite(un[q]);
                row_err = fmax(row_err, fabs(u[i] * t - 1.0));
                next_err = fmax(next_err, fabs(un[q] * t - 1.0));
                ws->t[i] = t;
                ws->u_next[i] = un[q];
            }
            const double *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];
#pragma omp simd
            for (size_t j = 0; j < m; j++)
                acc[j] += un[0] * k0[j] + un[1] * k1[j] + un[2] * k2[j] + un[3] * k3[j];
        }
    }
    reduce_columns(ws, ws->w);
    for (size_t j = 0; j < m; j++) {
        bad |= !(ws->w[j] > 0) || !isfinite(ws->w[j]);
        ws->csum[j] = v[j] * ws->w[j];
    }
    ws->row_err = row_err;
    ws->next_row_err = next_err;
    return bad;
}

/* K0 = exp(C_ij - s_i); the row maxima s were found by af_sinkhorn_set. */
static void build_K0_rowshift(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n, m = ws->m;
#pragma omp parallel for schedule(static) AF_PAR_IF(n * m)
    for (size_t i = 0; i < n; i++)
        af__row_exp_p(ws->src.single, m, ws->C + i * m, NULL, ws->shift[i], ws->K0 + i * m);
}

static af_status scaling_start(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n, m = ws->m;
    build_K0_rowshift(ws);
    int bad = 0;
    for (size_t j = 0; j < m; j++) {
        ws->v[j] = exp(ws->g[j]);
        bad |= !(ws->v[j] > 0) || !isfinite(ws->v[j]);
    }
    for (size_t i = 0; i < n; i++)
        ws->u[i] = exp(ws->f[i] + ws->shift[i]);
    if (bad || scaling_pass(ws))
        return af__sinkhorn_fall_back(ws);
    return AF_SUCCESS;
}

static af_status scaling_step(af_sinkhorn_ws *ws)
{
    const size_t m = ws->m;
    const double target = col_target(ws);
    if (ws->next_is_row) {
        commit_row_step(ws, ws->u, ws->u_next);
        return AF_SUCCESS;
    }
    double ce = 0;
    for (size_t j = 0; j < m; j++) {
        ws->v[j] = target / ws->w[j];
        ce = fmax(ce, fabs(ws->v[j] * ws->w[j] / target - 1.0));
    }
    ws->col_err = ce;
    ws->next_is_row = 1;
    if (scaling_pass(ws)) /* sets row_err; out of range: redo in log space */
        return af__sinkhorn_fall_back(ws);
    return AF_SUCCESS;
}

static void scaling_potentials(af_sinkhorn_ws *ws)
{
    for (size_t i = 0; i < ws->n; i++)
        ws->f[i] = log(ws->u[i]) - ws->shift[i];
    for (size_t j = 0; j < ws->m; j++)
        ws->g[j] = log(ws->v[j]);
}

static void scaling_matrix(const af_sinkhorn_ws *ws, double *K)
{
    const size_t n = ws->n, m = ws->m;
#pragma omp parallel for schedule(static) AF_PAR_IF(n * m)
    for (size_t i = 0; i < n; i++) {
        const double *k0 = ws->K0 + i * m;
        double *k = K + i * m, ui = ws->u[i];
        for (size_t j = 0; j < m; j++)
            k[j] = (k0[j] * ws->v[j]) * ui;
    }
}

const af_sinkhorn_type af_sinkhorn_type_scaling = {
    "scaling", 0, scaling_start, scaling_step, scaling_potentials, scaling_matrix,
};

/* ------------------------------------------------------------------ log
 * K_ij = exp(f_i + C_ij + g_j); each row is exponentiated once per pass
 * with its exact maximum as shift, so nothing overflows. */

/* f_next_i = -LSE_j(C_ij + g_j); csum = column sums with f_next; errors. */
static void log_pass(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n, m = ws->m;
    const double *g = ws->g, *f = ws->f;
    double row_err = 0, next_err = 0;
#pragma omp parallel reduction(max : row_err, next_err) num_threads(af__team_size(ws)) \
    AF_PAR_IF(n * m)
    {
        if (omp_get_thread_num() == 0)
            ws->team = omp_get_num_threads();
        int tid = omp_get_thread_num();
        double *acc = ws->colacc + (size_t)tid * m, *e = ws->rowbuf + (size_t)tid * m;
        memset(acc, 0, m * sizeof(double));
#pragma omp for schedule(static)
        for (size_t i = ws->row_begin; i < ws->row_end; i++) {
            const double *c = af__score_row(ws, i, tid);
            double mx = af__row_max_shifted(m, c, g);
            af__row_exp_p(ws->src.single, m, c, g, mx, e);
            double S = af__row_sum(m, e), inv = 1.0 / S;
            double lse = mx + log(S);
            ws->f_next[i] = -lse;
            row_err = fmax(row_err, fabs(exp(f[i] + lse) - 1.0));
            next_err = fmax(next_err, fabs(S * exp(-log(S)) - 1.0));
#pragma omp simd
            for (size_t j = 0; j < m; j++)
                acc[j] += e[j] * inv;
        }
    }
    reduce_columns(ws, ws->csum);
    if (ws->comm)
        af__sinkhorn_share_pass(ws, &row_err, &next_err);
    ws->row_err = row_err;
    ws->next_row_err = next_err;
}

static af_status log_start(af_sinkhorn_ws *ws)
{
    log_pass(ws);
    return AF_SUCCESS;
}

static double score(const af_sinkhorn_ws *ws, size_t i, size_t j)
{
    return ws->C ? ws->C[i * ws->m + j] : ws->src.entry(ws->src.ctx, i, j);
}

/* Exact -LSE_i(C_ij + f_i) for one column, for when its sum underflowed. */
static double column_neg_lse(const af_sinkhorn_ws *ws, size_t j)
{
    double mx = -INFINITY, s = 0;
    for (size_t i = ws->row_begin; i < ws->row_end; i++)
        mx = fmax(mx, score(ws, i, j) + ws->f[i]);
    mx = af__sinkhorn_share_max(ws, mx);
    for (size_t i = ws->row_begin; i < ws->row_end; i++)
        s += exp(score(ws, i, j) + ws->f[i] - mx);
    return -(mx + log(af__sinkhorn_share_sum(ws, s)));
}

static af_status log_step(af_sinkhorn_ws *ws)
{
    const size_t m = ws->m;
    const double target = col_target(ws), log_target = log(target);
    if (ws->next_is_row) {
        commit_row_step(ws, ws->f, ws->f_next);
        return AF_SUCCESS;
    }
    double ce = 0;
    for (size_t j = 0; j < m; j++) {
        double cs = ws->csum[j], gn;
        if (cs > 1e-290 && isfinite(cs)) {
            gn = ws->g[j] + log_target - log(cs);
            ce = fmax(ce, fabs(cs * exp(gn - ws->g[j]) / target - 1.0));
        } else {
            gn = log_target + column_neg_lse(ws, j); /* underflowed column */
        }
        ws->g[j] = gn;
    }
    ws->col_err = ce;
    ws->next_is_row = 1;
    log_pass(ws);
    return AF_SUCCESS;
}

static void log_potentials(af_sinkhorn_ws *ws) { (void)ws; /* f, g are the state */ }

static void log_matrix(const af_sinkhorn_ws *ws, double *K)
{
    const size_t n = ws->n, m = ws->m;
    if (!ws->next_is_row) {
        /* Last normalisation was on rows: a row SoftMax of C + g, exactly
         * as af_softmax computes it, so one normalisation is SoftMax. */
#pragma omp parallel for schedule(static) num_threads(af__team_size(ws)) AF_PAR_IF(n * m)
        for (size_t i = 0; i < n; i++) {
            const double *c = af__score_row(ws, i, omp_get_thread_num());
            double *k = K + i * m;
            double mx = af__row_max_shifted(m, c, ws->g);
            af__row_exp_p(ws->src.single, m, c, ws->g, mx, k);
            double inv = 1.0 / af__row_sum(m, k);
            for (size_t j = 0; j < m; j++)
                k[j] = (k[j] * 1.0) * inv;
        }
        return;
    }
#pragma omp parallel for schedule(static) num_threads(af__team_size(ws)) AF_PAR_IF(n * m)
    for (size_t i = 0; i < n; i++)
        af__row_exp_p(ws->src.single, m, af__score_row(ws, i, omp_get_thread_num()), ws->g,
                      -ws->f[i], K + i * m);
}

const af_sinkhorn_type af_sinkhorn_type_log = {
    "log", 0, log_start, log_step, log_potentials, log_matrix,
};

/* ------------------------------------------------------------------ symmetric
 * f = g; step f <- (1 - w) f - w LSE_j(C_ij + f_j), w = AF_SYM_RELAX, in
 * scaling form a <- a r^-w, accelerated (af__sym_step: AF_SYM_OMEGA)
 * with r the row sums of diag(a) K0 diag(a), K0_ij = exp(C_ij - (s_i + s_j)/2)
 * (entries <= 1 since C_ij <= min(s_i, s_j)). */

/* Only the upper triangle (j >= i) of the symmetric K0 is built and read:
 * each stored entry serves row i and, through the per-thread accumulators,
 * row j, so a pass reads half the kernel and the build does half the exps. */
/* out = K0 B (n x p) from the stored upper triangle of the symmetric K0.
 * Bt: the p right-hand sides column-major (p x n); accbuf: nthreads x n x p. Each stored row segment
 * of K0 is read once from memory and then used from cache by 2p contiguous
 * (vectorised) loops; accumulators are column-major too. */
static void sym_upper_matmul(af_sinkhorn_ws *ws, size_t p, const double *Bt, double *accbuf,
                             double *out)
{
    const size_t n = ws->n, np = n * p;
    int team = 1;
#pragma omp parallel num_threads(af__team_size(ws)) AF_PAR_IF(n * n / 2)
    {
        if (omp_get_thread_num() == 0)
            team = omp_get_num_threads();
        double *acc = accbuf + (size_t)omp_get_thread_num() * np;
        memset(acc, 0, np * sizeof(double));
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < n; i++) {
            const double *k = ws->K0 + i * n + i + 1;
            const size_t len = n - i - 1;
            for (size_t c = 0; c < p; c++) {
                const double *b = Bt + c * n;
                const double bi = b[i];
                double *a = acc + c * n;
                a[i] += ws->K0[i * n + i] * bi + af__row_dot(len, k, b + i + 1);
                double *aj = a + i + 1;
#pragma omp simd
                for (size_t j = 0; j < len; j++)
                    aj[j] += bi * k[j];
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < p; c++) {
            double v = 0;
            for (int t = 0; t < team; t++)
                v += accbuf[(size_t)t * np + c * n + i];
            out[i * p + c] = v;
        }
}
static int sym_scaling_pass(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n;
    const double *a = ws->u;
    sym_upper_matmul(ws, 1, a, ws->colacc, ws->t); /* t = K0 a */
    double err = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double r = a[i] * ws->t[i];
        bad |= !(r > 0) || !isfinite(r);
        ws->t[i] = r;
        err = fmax(err, fabs(r - 1.0));
    }
    ws->row_err = ws->col_err = err;
    return bad;
}

static af_status sym_scaling_start(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n; /* the row maxima s are set by af_sinkhorn_set */
#pragma omp parallel for schedule(dynamic, 16) AF_PAR_IF(n * n / 2)
    for (size_t i = 0; i < n; i++) {
        const double *c = ws->C + i * n;
        double *k = ws->K0 + i * n, si = ws->shift[i];
        if (ws->src.single) { /* float32 exps of the rounded arguments (dense, single) */
#pragma omp simd
            for (size_t j = i; j < n; j++)
                k[j] = (double)expf((float)(c[j] - 0.5 * (si + ws->shift[j])));
            continue;
        }
#pragma omp simd
        for (size_t j = i; j < n; j++)
            k[j] = exp(c[j] - 0.5 * (si + ws->shift[j]));
    }
    return af__sym_scaling_begin(ws, sym_scaling_pass);
}

af_status af__sym_scaling_begin(af_sinkhorn_ws *ws, int (*pass)(af_sinkhorn_ws *ws))
{
    int bad = 0;
    for (size_t i = 0; i < ws->n; i++) {
        /* cold start: a = 1; warm: a_i = exp(f_i + s_i / 2) */
        ws->u[i] = ws->opt.warm_start ? exp(ws->f[i] + 0.5 * ws->shift[i]) : 1.0;
        bad |= !(ws->u[i] > 0) || !isfinite(ws->u[i]);
        ws->u_next[i] = 0.0; /* no previous step */
    }
    if (bad) {
        /* warm potentials beyond the scaling form's range: the log path
         * starts from them as they are (reading them back from a = inf
         * would give infinite potentials) */
        ws->type = &af_sinkhorn_type_sym_log;
        ws->fell_back = 1;
        return ws->type->start(ws);
    }
    if (pass(ws))
        return af__sinkhorn_fall_back(ws);
    return AF_SUCCESS;
}

/* The lean towards "last": a wrong "last" costs about half a pass of
 * arithmetic, a wrong "not last" a whole product-only pass. */
#define SYM_LAST_SLACK 2.0
int af__sym_pass_is_last(const af_sinkhorn_ws *ws)
{
    const double e = ws->row_err, e0 = ws->symk_prev_err;
    const double rate = isfinite(e0) && e0 > 0 && e < e0 ? e / e0 : 1.0;
    const size_t next = ws->iter + 1;
    if (ws->opt.iters > 0)
        return next >= ws->opt.iters;
    return (isfinite(e) && rate * e <= SYM_LAST_SLACK * ws->opt.tol) || next >= ws->opt.max_iters;
}

af_status af__sym_scaling_advance(af_sinkhorn_ws *ws, int (*pass)(af_sinkhorn_ws *ws))
{
    for (size_t i = 0; i < ws->n; i++) {
        const double q = af__sym_step(log(ws->t[i]), ws->u_next[i]);
        ws->u_next[i] = q;
        ws->u[i] *= exp(q);
    }
    if (pass(ws))
        return af__sinkhorn_fall_back(ws);
    return AF_SUCCESS;
}

static af_status sym_scaling_step(af_sinkhorn_ws *ws)
{
    return af__sym_scaling_advance(ws, sym_scaling_pass);
}

void af__sym_scaling_potentials(af_sinkhorn_ws *ws)
{
    for (size_t i = 0; i < ws->n; i++)
        ws->f[i] = ws->g[i] = log(ws->u[i]) - 0.5 * ws->shift[i];
}

static void sym_scaling_matrix(const af_sinkhorn_ws *ws, double *K)
{
    const size_t n = ws->n;
#pragma omp parallel for schedule(dynamic, 16) AF_PAR_IF(n * n / 2)
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++)
            K[i * n + j] = ws->u[i] * ws->K0[i * n + j] * ws->u[j];
    af__mirror_upper(n, K);
}

const af_sinkhorn_type af_sinkhorn_type_sym_scaling = {
    "symmetric", 1, sym_scaling_start, sym_scaling_step, af__sym_scaling_potentials,
    sym_scaling_matrix,
};

/* Log form: f_next_i holds LSE_j(C_ij + f_j). */
static void sym_log_pass(af_sinkhorn_ws *ws)
{
    const size_t n = ws->n;
    double err = 0;
#pragma omp parallel reduction(max : err) num_threads(af__team_size(ws)) AF_PAR_IF(n * n)
    {
        const int tid = omp_get_thread_num();
        double *e = ws->rowbuf + (size_t)tid * n;
#pragma omp for schedule(static)
        for (size_t i = ws->row_begin; i < ws->row_end; i++) {
            const double *c = af__score_row(ws, i, tid);
            double mx = af__row_max_shifted(n, c, ws->f);
            /* max-shifted: the sum is >= 1, so the far terms flushed to 0
             * (each < 2.3e-308) cannot show in it */
            af__row_exp_flushed(ws->src.single, n, c, ws->f, mx, e);
            double lse = mx + log(af__row_sum(n, e));
            ws->f_next[i] = lse;
            err = fmax(err, fabs(exp(ws->f[i] + lse) - 1.0));
        }
    }
    if (ws->comm)
        err = af__sinkhorn_share_sym(ws);
    ws->row_err = ws->col_err = err;
}

static af_status sym_log_start(af_sinkhorn_ws *ws)
{
    memset(ws->u_next, 0, ws->n * sizeof(double)); /* no previous step */
    sym_log_pass(ws);
    return AF_SUCCESS;
}

static af_status sym_log_step(af_sinkhorn_ws *ws)
{
    for (size_t i = 0; i < ws->n; i++) { /* log r_i = f_i + LSE_i */
        const double q = af__sym_step(ws->f[i] + ws->f_next[i], ws->u_next[i]);
        ws->u_next[i] = q;
        ws->f[i] += q;
    }
    sym_log_pass(ws);
    return AF_SUCCESS;
}

static void sym_log_potentials(af_sinkhorn_ws *ws)
{
    memcpy(ws->g, ws->f, ws->n * sizeof(double));
}

static void sym_log_matrix(const af_sinkhorn_ws *ws, double *K)
{
    const size_t n = ws->n;
#pragma omp parallel for schedule(static) num_threads(af__team_size(ws)) AF_PAR_IF(n * n)
    for (size_t i = 0; i < n; i++)
        af__row_exp_p(ws->src.single, n, af__score_row(ws, i, omp_get_thread_num()), ws->f,
                      -ws->f[i], K + i * n);
}

const af_sinkhorn_type af_sinkhorn_type_sym_log = {
    "symmetric-log", 1, sym_log_start, sym_log_step, sym_log_potentials, sym_log_matrix,
};

/* ------------------------------------------------------------------ apply */

/* OpenBLAS's dsymm first copies the triangle into a full panel; for a few
 * right-hand sides (flows in low dimension) one pass of sym_upper_matmul
 * over the stored upper triangle is several times faster. */
#define AF_SYM_APPLY_MAX_P 8

af_status af_sinkhorn_apply(af_sinkhorn_ws *ws, size_t p, const double *Y, double *KY)
{
    const size_t n = ws->n, m = ws->m;
    if (!ws->ready)
        return af_error(AF_EINVAL, "sinkhorn: af_sinkhorn_set was not called");
    if (ws->matrix_free)
        return af_error(AF_EINVAL, "sinkhorn apply: a matrix-free workspace applies K through "
                                   "its backend (af_attn_apply)");
    if (p == 0)
        return af_error(AF_EINVAL, "sinkhorn apply: p must be >= 1");
    const af_sinkhorn_type *t = ws->type;
    if (t == &af_sinkhorn_type_scaling || t == &af_sinkhorn_type_sym_scaling) {
        /* K Y = diag(u) K0 (diag(v) Y): one dgemm on the stored kernel. */
        if (af__grow(&ws->apply_buf, &ws->apply_cap, m * p))
            return af_error(AF_ENOMEM, "sinkhorn apply: out of memory");
        const double *right = t->symmetric ? ws->u : ws->v;
        const int one_pass = t->symmetric && p <= AF_SYM_APPLY_MAX_P;
        for (size_t j = 0; j < m; j++) /* one_pass wants the columns contiguous */
            for (size_t k = 0; k < p; k++)
                ws->apply_buf[one_pass ? k * m + j : j * p + k] = right[j] * Y[j * p + k];
        if (one_pass) { /* one pass over half the kernel */
            if (af__grow(&ws->apply_acc, &ws->apply_acc_cap, (size_t)ws->nthreads * n * p))
                return af_error(AF_ENOMEM, "sinkhorn apply: out of memory");
            sym_upper_matmul(ws, p, ws->apply_buf, ws->apply_acc, KY);
        }
        else if (t->symmetric) /* only the upper triangle of K0 is stored */
            cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, (int)n, (int)p, 1.0, ws->K0, (int)n,
                        ws->apply_buf, (int)p, 0.0, KY, (int)p);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)p, (int)m, 1.0,
                        ws->K0, (int)m, ws->apply_buf, (int)p, 0.0, KY, (int)p);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < p; k++)
                KY[i * p + k] *= ws->u[i];
        return AF_SUCCESS;
    }
    /* Log paths: materialise K in the (unused) kernel buffer, then dgemm. */
    t->matrix(ws, ws->K0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)p, (int)m, 1.0, ws->K0,
                (int)m, Y, (int)p, 0.0, KY, (int)p);
    return AF_SUCCESS;
}

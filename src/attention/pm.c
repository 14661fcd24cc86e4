/* Particle-mesh discrete Gauss transform (see attnflow/pm.h and README
 * "Particle-mesh backend" for the error model).
 *
 * With the window variance tau = t s^2 (t = PM_TAU_FRAC = 1/4), band edge
 * K = pi / h and L = log(8 d / tol), the error terms are
 *   aliasing    max_k ghat(k + 2K) Hhat(k) ghat(k) = exp(-2 t (1 - t) s^2 K^2)
 *               (spread at one alias, read at the base band: the worst k is
 *               -2 t K, not 0)
 *   band edge   Ghat(K) = exp(-s^2 K^2 / 2)          (smaller for t <= 1/2)
 *   truncation  exp(-(W h)^2 / (2 tau))             (window of 2W points)
 * so h = pi s sqrt(2 t (1 - t) / L), W = ceil(sqrt(2 tau L) / h) =
 * ceil(L / (pi sqrt(1 - t))). The grid kernel has variance s^2 - 2 tau =
 * s^2 / 2 and reach R = sqrt(2 (s^2 / 2) L); the padding W h + R / 2 + 2 h
 * per side keeps the periodic images more than R apart. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fftw3.h>
#include <omp.h>
#include "attnflow/pm.h"

/* The error terms come once per dimension and alias direction: safety 8 d. */
#define PM_SAFETY 8.0
#define PM_TAU_FRAC 0.25
/* Private spreading grids per thread only while they stay this small (doubles). */
#define PM_PRIVATE_MAX ((size_t)1 << 25)
/* Window cache bound (bytes): 1e6 points in 3-D at tol 1e-8 take ~0.4 GB. */
#define PM_CACHE_MAX ((size_t)1 << 30)

struct af_pm_ws {
    size_t d, kmax;
    /* current problem */
    size_t n;
    const double *X;
    double s, tol, L, h, tau, a; /* a = h^2 / (2 tau) */
    size_t W;                    /* half window: 2W points per dimension */
    double *gtab;                /* exp(-a m^2), m = 0..W */
    /* grid: 3 dims, unused ones of size 1 */
    size_t N[3], G, stride, Gc;  /* points, padded real stride, complex size */
    double lo[3];
    double *R;                   /* kmax x stride real grids */
    double *priv;                /* (nthreads - 1) x kmax x stride, or NULL */
    int nthreads;
    fftw_complex *Cb;            /* Gc complex */
    fftw_plan fwd, bwd;
    double *sym[3];              /* per-dimension factor of the Fourier symbol */
    double sym_h, sym_s;         /* h and s the symbols were made for */
    size_t plans;
    double wrap_mass;
    /* windows of the points of the last af_pm_set, computed once for all the
     * transforms on them (NULL when over PM_CACHE_MAX): n x d x 2W weights,
     * n x 3 first indices */
    double *cw;
    size_t *cb;
    size_t ccap_w, ccap_n; /* weights and points the cache holds room for */
    int cvalid;
};

static size_t next_smooth(size_t m)
{
    for (;; m++) {
        size_t r = m;
        static const size_t p[] = {2, 3, 5, 7};
        for (int k = 0; k < 4; k++)
            while (r % p[k] == 0)
                r /= p[k];
        if (r == 1)
            return m;
    }
}

af_pm_ws *af_pm_alloc(size_t d, size_t kmax)
{
    if (d < 1 || d > AF_PM_MAX_D) {
        af_error(AF_EINVAL, "pm: the particle-mesh transform works in d <= 3 (got d = %zu)", d);
        return NULL;
    }
    if (kmax < 1) {
        af_error(AF_EINVAL, "pm: kmax must be >= 1");
        return NULL;
    }
    af_pm_ws *w = calloc(1, sizeof *w);
    if (!w) {
        af_error(AF_ENOMEM, "pm: out of memory");
        return NULL;
    }
    w->d = d;
    w->kmax = kmax;
    w->nthreads = omp_get_max_threads();
    return w;
}

static void free_grid(af_pm_ws *w)
{
    if (w->fwd)
        fftw_destroy_plan(w->fwd);
    if (w->bwd)
        fftw_destroy_plan(w->bwd);
    w->fwd = w->bwd = NULL;
    fftw_free(w->R);
    fftw_free(w->Cb);
    free(w->priv);
    w->R = NULL;
    w->Cb = NULL;
    w->priv = NULL;
    for (int k = 0; k < 3; k++) {
        free(w->sym[k]);
        w->sym[k] = NULL;
    }
    w->G = 0;
}

void af_pm_free(af_pm_ws *w)
{
    if (!w)
        return;
    free_grid(w);
    free(w->gtab);
    free(w->cw);
    free(w->cb);
    free(w);
}

/* Grid of N[] points: arrays and FFTW plans (plan/execute split: the plans
 * run later on each column through the new-array interface). */
static af_status make_grid(af_pm_ws *w, const size_t N[3])
{
    free_grid(w);
    memcpy(w->N, N, sizeof w->N);
    w->G = N[0] * N[1] * N[2];
    w->stride = (w->G + 7) / 8 * 8; /* keeps every column as aligned as the first */
    const size_t last = N[3 - 1];
    w->Gc = w->G / last * (last / 2 + 1);
    w->R = fftw_malloc(w->kmax * w->stride * sizeof(double));
    w->Cb = fftw_malloc(w->Gc * sizeof(fftw_complex));
    for (int k = 0; k < 3; k++)
        w->sym[k] = malloc(N[k] * sizeof(double));
    if (w->nthreads > 1 && (size_t)(w->nthreads - 1) * w->kmax * w->stride <= PM_PRIVATE_MAX)
        w->priv = malloc((size_t)(w->nthreads - 1) * w->kmax * w->stride * sizeof(double));
    if (!w->R || !w->Cb || !w->sym[0] || !w->sym[1] || !w->sym[2]) {
        free_grid(w);
        return af_error(AF_ENOMEM, "pm: out of memory for a %zu-point grid", w->G);
    }
    int dims[3], rank = (int)w->d;
    for (int k = 0; k < rank; k++)
        dims[k] = (int)N[3 - rank + k];
    /* measuring pays off only over many transforms; a small grid costs little either way */
    const unsigned flags = FFTW_ESTIMATE;
    w->fwd = fftw_plan_dft_r2c(rank, dims, w->R, w->Cb, flags);
    w->bwd = fftw_plan_dft_c2r(rank, dims, w->Cb, w->R, flags | FFTW_DESTROY_INPUT);
    if (!w->fwd || !w->bwd) {
        free_grid(w);
        return af_error(AF_ELIB, "pm: FFTW could not plan a %zu-point grid", w->G);
    }
    w->plans++;
    w->sym_h = 0;
    return AF_SUCCESS;
}

/* Per-dimension symbols: h * Hhat(k) = h s / (sqrt(2 pi) tau) exp(-(s^2 - 2 tau) k^2 / 2),
 * the 1/G of the inverse DFT folded into the last dimension. */
static void make_symbols(af_pm_ws *w)
{
    const double sh2 = w->s * w->s - 2 * w->tau;
    for (int k = 0; k < 3; k++) {
        const size_t N = w->N[k];
        const int used = k >= 3 - (int)w->d;
        for (size_t q = 0; q < N; q++) {
            if (!used) {
                w->sym[k][q] = 1;
                continue;
            }
            const double m = q <= N / 2 ? (double)q : (double)q - (double)N;
            const double kq = 2 * M_PI * m / ((double)N * w->h);
            w->sym[k][q] = w->h * w->s / (sqrt(2 * M_PI) * w->tau) * exp(-0.5 * sh2 * kq * kq);
        }
    }
    for (size_t q = 0; q < w->N[2]; q++)
        w->sym[2][q] /= (double)w->G;
    w->sym_h = w->h;
    w->sym_s = w->s;
}

/* Window of one coordinate t (grid units): first index and 2W weights. */
static inline size_t window_1d(const af_pm_ws *w, double t, double *wt)
{
    const double f = floor(t), u = t - f;
    const size_t W = w->W;
    /* exp(-a (u - m)^2) = exp(-a u^2) E^m exp(-a m^2), E = exp(2 a u) */
    const double e0 = exp(-w->a * u * u), E = exp(2 * w->a * u), Ei = 1 / E;
    /* offsets m = -(W-1) .. W relative to f: slot W-1+m */
    double p = e0;
    for (size_t m = 0; m <= W; m++) {
        wt[W - 1 + m] = p * w->gtab[m];
        p *= E;
    }
    p = e0 * Ei;
    for (size_t m = 1; m < W; m++) {
        wt[W - 1 - m] = p * w->gtab[m];
        p *= Ei;
    }
    return (size_t)f - (W - 1);
}

/* Window of a point in all three grid dimensions (unused ones: one weight
 * 1): first indices, lengths and weights (into buf, or into the cache). */
typedef struct {
    size_t base[3], len[3];
    const double *wt[3];
    double buf[3][2 * 64];
} pm_window;

static const double one_weight = 1.0;

static inline void window_compute(const af_pm_ws *w, const double *x, size_t *base, double *wt)
{
    for (size_t k = 0; k < w->d; k++)
        base[k] = window_1d(w, (x[k] - w->lo[k + 3 - w->d]) / w->h, wt + k * 2 * w->W);
}

/* Window of point i of P; cached: P is the set's points and the cache holds them. */
static inline void window_of(const af_pm_ws *w, const double *P, size_t i, int cached,
                             pm_window *win)
{
    const size_t off = 3 - w->d, L = 2 * w->W;
    size_t base[3];
    const double *wt;
    if (cached) {
        wt = w->cw + i * w->d * L;
        memcpy(base, w->cb + i * 3, 3 * sizeof *base);
    } else {
        window_compute(w, P + i * w->d, base, win->buf[0]);
        wt = win->buf[0];
    }
    for (size_t k = 0; k < 3; k++) {
        if (k < off) {
            win->base[k] = 0;
            win->len[k] = 1;
            win->wt[k] = &one_weight;
        } else {
            win->base[k] = base[k - off];
            win->len[k] = L;
            win->wt[k] = wt + (k - off) * L;
        }
    }
}

/* Fills the window cache for the set's points (if it fits). */
static void cache_windows(af_pm_ws *w)
{
    const size_t n = w->n, d = w->d, L = 2 * w->W;
    w->cvalid = 0;
    if ((double)n * (double)(d * L * sizeof(double) + 3 * sizeof(size_t)) > (double)PM_CACHE_MAX)
        return;
    if (w->ccap_w < n * d * L || w->ccap_n < n) {
        free(w->cw);
        free(w->cb);
        w->cw = malloc(n * d * L * sizeof(double));
        w->cb = malloc(n * 3 * sizeof(size_t));
        const int ok = w->cw && w->cb;
        w->ccap_w = ok ? n * d * L : 0;
        w->ccap_n = ok ? n : 0;
        if (!ok)
            return; /* no room: windows are computed on the fly */
    }
#pragma omp parallel for schedule(static) num_threads(w->nthreads) if (n > 4096)
    for (size_t i = 0; i < n; i++)
        window_compute(w, w->X + i * d, w->cb + i * 3, w->cw + i * d * L);
    w->cvalid = 1;
}

/* The innermost loops run along the last grid dimension; at the default
 * tolerance the window is 16 points, which gets a fixed-length (fully
 * vectorised) copy. */
static inline void axpy_len(double *r, double v, const double *wz, size_t len)
{
    if (len == 16) {
#pragma omp simd
        for (size_t z = 0; z < 16; z++)
            r[z] += v * wz[z];
        return;
    }
    for (size_t z = 0; z < len; z++)
        r[z] += v * wz[z];
}

static inline double dot_len(const double *r, const double *wz, size_t len)
{
    double acc = 0;
    if (len == 16) {
#pragma omp simd reduction(+ : acc)
        for (size_t z = 0; z < 16; z++)
            acc += wz[z] * r[z];
        return acc;
    }
    for (size_t z = 0; z < len; z++)
        acc += wz[z] * r[z];
    return acc;
}

/* Adds the k columns of weights Wt (n x k) of points P (n x d) to grids R. */
static void spread_range(const af_pm_ws *w, size_t i0, size_t i1, const double *P, int cached,
                         size_t k, const double *Wt, double *R)
{
    const size_t N1 = w->N[1], N2 = w->N[2], st = w->stride;
    pm_window win;
    for (size_t i = i0; i < i1; i++) {
        window_of(w, P, i, cached, &win);
        const double *wi = Wt + i * k;
        for (size_t a = 0; a < win.len[0]; a++)
            for (size_t b = 0; b < win.len[1]; b++) {
                const double wab = win.wt[0][a] * win.wt[1][b];
                const size_t row = ((win.base[0] + a) * N1 + win.base[1] + b) * N2 + win.base[2];
                const double *wz = win.wt[2];
                for (size_t c = 0; c < k; c++)
                    axpy_len(R + c * st + row, wab * wi[c], wz, win.len[2]);
            }
    }
}

static void spread(af_pm_ws *w, size_t n, const double *P, int cached, size_t k,
                   const double *Wt)
{
    const size_t len = k * w->stride;
    memset(w->R, 0, len * sizeof(double));
    if (!w->priv || n < 4096) {
        spread_range(w, 0, n, P, cached, k, Wt, w->R);
        return;
    }
    const int T = w->nthreads;
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        double *R = t == 0 ? w->R : w->priv + (size_t)(t - 1) * w->kmax * w->stride;
        if (t > 0)
            memset(R, 0, len * sizeof(double));
        spread_range(w, n * (size_t)t / (size_t)nt, n * (size_t)(t + 1) / (size_t)nt, P, cached,
                     k, Wt, R);
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t q = 0; q < len; q++) {
            double acc = 0;
            for (int u = 1; u < nt; u++)
                acc += w->priv[(size_t)(u - 1) * w->kmax * w->stride + q];
            w->R[q] += acc;
        }
    }
}

/* Each column: forward FFT, times the symbol, inverse FFT (in place in R). */
static void convolve(af_pm_ws *w, size_t k)
{
    const size_t N0 = w->N[0], N1 = w->N[1], N2 = w->N[2], Nh = N2 / 2 + 1;
    /* r2c halves the last dimension, which is always a used one */
    for (size_t c = 0; c < k; c++) {
        double *R = w->R + c * w->stride;
        fftw_execute_dft_r2c(w->fwd, R, w->Cb);
        for (size_t a = 0; a < N0; a++)
            for (size_t b = 0; b < N1; b++) {
                const double sab = w->sym[0][a] * w->sym[1][b];
                fftw_complex *cz = w->Cb + (a * N1 + b) * Nh;
                for (size_t z = 0; z < Nh; z++) {
                    const double m = sab * w->sym[2][z];
                    cz[z][0] *= m;
                    cz[z][1] *= m;
                }
            }
        fftw_execute_dft_c2r(w->bwd, w->Cb, R);
    }
}

/* out (n x k) = window-weighted sums of the convolved grids at points P. */
static void interpolate(const af_pm_ws *w, size_t n, const double *P, int cached, size_t k,
                        double *out)
{
    const size_t N1 = w->N[1], N2 = w->N[2], st = w->stride;
#pragma omp parallel for schedule(static) num_threads(w->nthreads) if (n > 4096)
    for (size_t i = 0; i < n; i++) {
        pm_window win;
        window_of(w, P, i, cached, &win);
        double *o = out + i * k;
        for (size_t c = 0; c < k; c++)
            o[c] = 0;
        for (size_t a = 0; a < win.len[0]; a++)
            for (size_t b = 0; b < win.len[1]; b++) {
                const double wab = win.wt[0][a] * win.wt[1][b];
                const size_t row = ((win.base[0] + a) * N1 + win.base[1] + b) * N2 + win.base[2];
                for (size_t c = 0; c < k; c++)
                    o[c] += wab * dot_len(w->R + c * st + row, win.wt[2], win.len[2]);
            }
    }
}

static void transform(af_pm_ws *w, size_t n, const double *P, size_t k, const double *Wt,
                      double *out)
{
    const int cached = w->cvalid && P == w->X && n == w->n;
    spread(w, n, P, cached, k, Wt);
    convolve(w, k);
    interpolate(w, n, P, cached, k, out);
}

/* Wrap check: a unit particle at the upper corner of the zone the grid is
 * sized for, read at the points the periodic FFT brings nearest to it (the
 * zone's other corners, 2^d - 1 of them): whatever arrives there beyond the
 * true Gaussian came across the box. */
static void measure_wrap(af_pm_ws *w)
{
    const int off = 3 - (int)w->d;
    const double R = sqrt(w->s * w->s * w->L); /* reach of the grid kernel */
    double hi[3], lo[3];
    for (int k = off; k < 3; k++) {
        /* particles may sit where their window stays R/2 + h off the grid's ends */
        const double m = (double)w->W * w->h + 0.5 * R + w->h;
        lo[k] = w->lo[k] + m;
        hi[k] = w->lo[k] + (double)(w->N[k] - 1) * w->h - m;
    }
    double P[8 * 3], one[8] = {1, 0, 0, 0, 0, 0, 0, 0}, out[8];
    const size_t np = (size_t)1 << w->d;
    for (size_t t = 0; t < np; t++)
        for (int k = off; k < 3; k++)
            P[t * w->d + (size_t)(k - off)] = (t >> (k - off)) & 1 ? lo[k] : hi[k];
    transform(w, np, P, 1, one, out);
    double worst = 0;
    for (size_t t = 1; t < np; t++) {
        double r2 = 0;
        for (size_t k = 0; k < w->d; k++)
            r2 += (P[t * w->d + k] - P[k]) * (P[t * w->d + k] - P[k]);
        const double leak = fabs(out[t] - exp(-r2 / (2 * w->s * w->s)));
        worst = leak > worst ? leak : worst;
    }
    w->wrap_mass = worst;
}

af_status af_pm_set(af_pm_ws *w, size_t n, const double *X, double s, double tol)
{
    if (n == 0)
        return af_error(AF_EINVAL, "pm: no points");
    if (!(s > 0) || !isfinite(s))
        return af_error(AF_EINVAL, "pm: kernel width must be > 0 and finite (got %g)", s);
    if (!(tol >= 1e-15 && tol <= 1e-2))
        return af_error(AF_EINVAL, "pm: tolerance must be in [1e-15, 1e-2] (got %g)", tol);
    const size_t d = w->d;
    double mn[3] = {0, 0, 0}, mx[3] = {0, 0, 0};
    for (size_t k = 0; k < d; k++)
        mn[k] = mx[k] = X[k];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) {
            const double v = X[i * d + k];
            if (!isfinite(v))
                return af_error(AF_EDOM, "pm: token %zu has a non-finite coordinate", i);
            mn[k] = v < mn[k] ? v : mn[k];
            mx[k] = v > mx[k] ? v : mx[k];
        }
    const double L = log(PM_SAFETY * (double)d / tol);
    const double t = PM_TAU_FRAC, tau = t * s * s;
    const double h = M_PI * s * sqrt(2 * t * (1 - t) / L);
    const size_t W = (size_t)ceil(sqrt(2 * tau * L) / h - 1e-12);
    const double pad = (double)W * h + 0.5 * sqrt(s * s * L) + 2 * h;
    size_t need[3] = {1, 1, 1}, N[3] = {1, 1, 1};
    const int off = 3 - (int)d;
    double cells = 1;
    for (size_t k = 0; k < d; k++) {
        const double m = ceil((mx[k] - mn[k] + 2 * pad) / h) + 1;
        cells *= m;
        if (!(cells < 1e10))
            return af_error(AF_EINVAL, "pm: the cloud spans %g kernel widths: the grid would "
                            "need more than 1e10 points (use the dense backend)",
                            (mx[k] - mn[k]) / s);
        need[k + (size_t)off] = (size_t)m;
    }
    /* keep the current grid while it is big enough and not 8 times too big */
    int keep = w->G > 0 && h == w->h && W == w->W;
    double have = 1;
    for (int k = 0; k < 3; k++) {
        keep &= w->N[k] >= need[k];
        have *= (double)w->N[k];
    }
    keep &= have <= 8 * cells;
    if (W != w->W || !w->gtab) {
        free(w->gtab);
        if (!(w->gtab = malloc((W + 1) * sizeof(double))))
            return af_error(AF_ENOMEM, "pm: out of memory");
    }
    w->n = n;
    w->X = X;
    w->s = s;
    w->tol = tol;
    w->L = L;
    w->h = h;
    w->tau = tau;
    w->a = h * h / (2 * tau);
    w->W = W;
    for (size_t m = 0; m <= W; m++)
        w->gtab[m] = exp(-w->a * (double)(m * m));
    if (!keep) {
        for (int k = 0; k < 3; k++)
            N[k] = k < off ? 1 : next_smooth(need[k]);
        af_status st = make_grid(w, N);
        if (st)
            return st;
    }
    for (int k = off; k < 3; k++)
        w->lo[k] = 0.5 * (mn[k - off] + mx[k - off]) - 0.5 * (double)(w->N[k] - 1) * h;
    w->cvalid = 0;
    if (w->sym_h != h || w->sym_s != s) {
        make_symbols(w);
        measure_wrap(w);
    }
    cache_windows(w);
    return AF_SUCCESS;
}

af_status af_pm_apply(af_pm_ws *w, size_t k, const double *Wt, double *out)
{
    if (!w->X || w->G == 0)
        return af_error(AF_EINVAL, "pm: af_pm_apply without a successful af_pm_set");
    if (k < 1 || k > w->kmax)
        return af_error(AF_EINVAL, "pm: %zu weight columns (workspace holds 1..%zu)", k, w->kmax);
    const size_t nk = w->n * k;
    if (Wt < out + nk && out < Wt + nk)
        return af_error(AF_EINVAL, "pm: output overlaps the weights");
    for (size_t q = 0; q < nk; q++)
        if (!isfinite(Wt[q]))
            return af_error(AF_EDOM, "pm: weight %zu of column %zu is not finite", q / k, q % k);
    transform(w, w->n, w->X, k, Wt, out);
    return AF_SUCCESS;
}

void af_pm_get_info(const af_pm_ws *w, af_pm_info *info)
{
    memset(info, 0, sizeof *info);
    const int off = 3 - (int)w->d;
    info->d = w->d;
    for (size_t k = 0; k < AF_PM_MAX_D; k++) {
        info->grid[k] = k < w->d ? w->N[k + (size_t)off] : 1;
        info->lo[k] = k < w->d ? w->lo[k + (size_t)off] : 0;
    }
    info->points = w->G;
    info->h = w->h;
    info->s = w->s;
    info->tau = w->tau;
    info->window = 2 * w->W;
    info->wrap_mass = w->wrap_mass;
    info->plans = w->plans;
    info->tol = w->tol;
}

af_status af_pm_gauss(size_t n, size_t d, const double *X, double s, double tol, size_t k,
                      const double *W, double *out, af_pm_info *info)
{
    af_pm_ws *w = af_pm_alloc(d, k);
    if (!w) /* the message is set */
        return d < 1 || d > AF_PM_MAX_D || k < 1 ? AF_EINVAL : AF_ENOMEM;
    af_status st = af_pm_set(w, n, X, s, tol);
    if (!st)
        st = af_pm_apply(w, k, W, out);
    if (!st && info)
        af_pm_get_info(w, info);
    af_pm_free(w);
    return st;
}

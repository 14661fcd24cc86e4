/* Particle-vs-density comparison tools: FFT kernel density estimate,
 * density distances, moments, 1-D Wasserstein through quantile functions,
 * sliced W2. See metrics.h for the definitions. */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "attnflow/io.h"
#include "attnflow/metrics.h"

/* ---- KDE ---- */

struct af_kde_ws {
    af_grid g;
    size_t M0, M1, Mc;   /* as in heat.c: 1-D is a 1 x N grid */
    double *real;
    fftw_complex *spec;
    double *xi0, *xi1;   /* wave numbers */
    double *dc0, *dc1;   /* 1 / sinc^2(xi dx / 2): binning deconvolution per coordinate */
    fftw_plan fwd, inv;
};

af_kde_options af_kde_options_default(void)
{
    af_kde_options o = {0.2, 1};
    return o;
}

void af_kde_free(af_kde_ws *ws)
{
    if (!ws)
        return;
    if (ws->fwd)
        fftw_destroy_plan(ws->fwd);
    if (ws->inv)
        fftw_destroy_plan(ws->inv);
    fftw_free(ws->real);
    fftw_free(ws->spec);
    free(ws->xi0);
    free(ws->xi1);
    free(ws->dc0);
    free(ws->dc1);
    free(ws);
}

static double inv_sinc2(double z)
{
    if (z == 0)
        return 1;
    double s = sin(z) / z;
    return 1 / (s * s);
}

af_kde_ws *af_kde_alloc(const af_grid *g, unsigned fftw_flags)
{
    if (af_grid_check(g))
        return NULL;
    af_kde_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        af_error(AF_ENOMEM, "out of memory");
        return NULL;
    }
    ws->g = *g;
    ws->M0 = g->d == 1 ? 1 : g->N[0];
    ws->M1 = g->d == 1 ? g->N[0] : g->N[1];
    ws->Mc = ws->M1 / 2 + 1;
    double L0 = g->d == 1 ? 1 : g->L[0], L1 = g->d == 1 ? g->L[0] : g->L[1];
    ws->real = fftw_malloc(ws->M0 * ws->M1 * sizeof *ws->real);
    ws->spec = fftw_malloc(ws->M0 * ws->Mc * sizeof *ws->spec);
    ws->xi0 = malloc(ws->M0 * sizeof *ws->xi0);
    ws->xi1 = malloc(ws->Mc * sizeof *ws->xi1);
    ws->dc0 = malloc(ws->M0 * sizeof *ws->dc0);
    ws->dc1 = malloc(ws->Mc * sizeof *ws->dc1);
    if (!ws->real || !ws->spec || !ws->xi0 || !ws->xi1 || !ws->dc0 || !ws->dc1) {
        af_error(AF_ENOMEM, "kde: out of memory");
        af_kde_free(ws);
        return NULL;
    }
    double dx0 = L0 / (double)ws->M0, dx1 = L1 / (double)ws->M1;
    for (size_t i = 0; i < ws->M0; i++) {
        double k = i <= ws->M0 / 2 ? (double)i : (double)i - (double)ws->M0;
        ws->xi0[i] = ws->M0 == 1 ? 0 : 2 * M_PI * k / L0;
        ws->dc0[i] = inv_sinc2(0.5 * ws->xi0[i] * dx0);
    }
    for (size_t j = 0; j < ws->Mc; j++) {
        ws->xi1[j] = 2 * M_PI * (double)j / L1;
        ws->dc1[j] = inv_sinc2(0.5 * ws->xi1[j] * dx1);
    }
    if (g->d == 1) {
        ws->fwd = fftw_plan_dft_r2c_1d((int)ws->M1, ws->real, ws->spec, fftw_flags);
        ws->inv = fftw_plan_dft_c2r_1d((int)ws->M1, ws->spec, ws->real, fftw_flags);
    } else {
        ws->fwd = fftw_plan_dft_r2c_2d((int)ws->M0, (int)ws->M1, ws->real, ws->spec, fftw_flags);
        ws->inv = fftw_plan_dft_c2r_2d((int)ws->M0, (int)ws->M1, ws->spec, ws->real, fftw_flags);
    }
    if (!ws->fwd || !ws->inv) {
        af_error(AF_ELIB, "kde: FFTW could not plan a %zu x %zu transform", ws->M0, ws->M1);
        af_kde_free(ws);
        return NULL;
    }
    return ws;
}

/* Cell index and fraction of coordinate x on an N-node periodic axis;
 * returns 0 if x is outside [lo, lo + L). */
static int locate(double x, double lo, double L, size_t N, size_t *i, double *f)
{
    double u = (x - lo) / L * (double)N;
    if (!(u >= 0) || !(u < (double)N))
        return 0;
    double fl = floor(u);
    *i = (size_t)fl;
    if (*i >= N) /* u just below N rounding up */
        *i = N - 1;
    *f = u - fl;
    return 1;
}

af_status af_kde(af_kde_ws *ws, const af_kde_options *opt, size_t n, const double *X,
                 double *rho, size_t *outside)
{
    if (n == 0)
        return af_error(AF_EINVAL, "kde: no particles");
    if (!(opt->bandwidth > 0) || !isfinite(opt->bandwidth))
        return af_error(AF_EINVAL, "kde: bandwidth must be > 0 (got %g)", opt->bandwidth);
    const af_grid *g = &ws->g;
    size_t M0 = ws->M0, M1 = ws->M1, d = g->d, out = 0;
    /* a NaN or infinite coordinate is an error, not a particle "outside" the box */
    af_status st = af_check_finite("kde: particle coordinates", n * d, X);
    if (st)
        return st;
    memset(ws->real, 0, M0 * M1 * sizeof *ws->real);
    double m = 1.0 / ((double)n * af_grid_cell(g));
    for (size_t p = 0; p < n; p++) {
        const double *x = X + p * d;
        if (d == 1) {
            size_t i;
            double f;
            if (!locate(x[0], g->lo[0], g->L[0], M1, &i, &f)) {
                out++;
                continue;
            }
            ws->real[i] += m * (1 - f);
            ws->real[(i + 1) % M1] += m * f;
        } else {
            size_t i, j;
            double f, e;
            if (!locate(x[0], g->lo[0], g->L[0], M0, &i, &f)
                || !locate(x[1], g->lo[1], g->L[1], M1, &j, &e)) {
                out++;
                continue;
            }
            size_t i1 = (i + 1) % M0, j1 = (j + 1) % M1;
            ws->real[i * M1 + j] += m * (1 - f) * (1 - e);
            ws->real[i * M1 + j1] += m * (1 - f) * e;
            ws->real[i1 * M1 + j] += m * f * (1 - e);
            ws->real[i1 * M1 + j1] += m * f * e;
        }
    }
    fftw_execute(ws->fwd);
    double s = 0.5 * opt->bandwidth * opt->bandwidth, inv = 1.0 / (double)(M0 * M1);
    for (size_t i = 0; i < M0; i++)
        for (size_t j = 0; j < ws->Mc; j++) {
            double xi2 = ws->xi0[i] * ws->xi0[i] + ws->xi1[j] * ws->xi1[j];
            double f = exp(-xi2 * s) * inv;
            if (opt->deconvolve)
                f *= ws->dc0[i] * ws->dc1[j];
            ws->spec[i * ws->Mc + j] *= f;
        }
    fftw_execute(ws->inv);
    memcpy(rho, ws->real, M0 * M1 * sizeof *rho);
    if (outside)
        *outside = out;
    return AF_SUCCESS;
}

double af_kde_silverman(size_t n, size_t d, const double *X)
{
    double sd = 0;
    for (size_t k = 0; k < d; k++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++)
            m += X[i * d + k];
        m /= (double)n;
        for (size_t i = 0; i < n; i++)
            v += (X[i * d + k] - m) * (X[i * d + k] - m);
        sd += sqrt(v / (double)n) / (double)d;
    }
    return sd * pow(4.0 / (((double)d + 2) * (double)n), 1.0 / ((double)d + 4));
}

void af_density_distance(const af_grid *g, const double *a, const double *b, double *l1,
                         double *l2)
{
    size_t M = af_grid_size(g);
    double s1 = 0, s2 = 0, dv = af_grid_cell(g);
    for (size_t j = 0; j < M; j++) {
        double e = a[j] - b[j];
        s1 += fabs(e);
        s2 += e * e;
    }
    if (l1)
        *l1 = s1 * dv;
    if (l2)
        *l2 = sqrt(s2 * dv);
}

af_status af_moments(size_t n, size_t d, const double *X, double *mean, double *cov)
{
    if (n == 0 || d == 0)
        return af_error(AF_EINVAL, "moments: empty cloud (n = %zu, d = %zu)", n, d);
    for (size_t k = 0; k < d; k++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += X[i * d + k];
        mean[k] = s / (double)n;
    }
    if (cov) {
        /* two-pass (centred) sums: no cancellation for far-off means */
        for (size_t k = 0; k < d; k++)
            for (size_t l = k; l < d; l++) {
                double s = 0;
                for (size_t i = 0; i < n; i++)
                    s += (X[i * d + k] - mean[k]) * (X[i * d + l] - mean[l]);
                cov[k * d + l] = cov[l * d + k] = s / (double)n;
            }
    }
    return AF_SUCCESS;
}

af_status af_grid_moments(const af_grid *g, const double *rho, int include_cell, double *mean,
                          double *cov)
{
    af_status st = af_grid_check(g);
    if (st)
        return st;
    size_t M = af_grid_size(g), d = g->d;
    double mass = 0, m[2] = {0, 0}, c[4] = {0, 0, 0, 0}, x[2];
    for (size_t j = 0; j < M; j++)
        mass += rho[j];
    if (!(mass > 0) || !isfinite(mass))
        return af_error(AF_EINVAL, "grid moments: the density has no positive finite mass");
    for (size_t j = 0; j < M; j++) {
        af_grid_node(g, j, x);
        for (size_t k = 0; k < d; k++)
            m[k] += rho[j] * x[k] / mass;
    }
    for (size_t j = 0; j < M; j++) {
        af_grid_node(g, j, x);
        for (size_t k = 0; k < d; k++)
            for (size_t l = 0; l < d; l++)
                c[k * d + l] += rho[j] * (x[k] - m[k]) * (x[l] - m[l]) / mass;
    }
    for (size_t k = 0; k < d; k++) {
        mean[k] = m[k];
        if (include_cell) {
            double h = af_grid_step(g, k);
            c[k * d + k] += h * h / 12;
        }
    }
    if (cov)
        memcpy(cov, c, d * d * sizeof *cov);
    return AF_SUCCESS;
}

/* ---- 1-D quantile functions ---- */

typedef struct {
    double pos, val; /* position; slope change (box edge) or mass (atom) */
    int atom;
} event;

struct af_measure1d {
    size_t cap, nseg;
    double *u0, *u1, *x0, *x1;
    event *ev;
};

af_measure1d *af_measure1d_alloc(size_t max_points)
{
    af_measure1d *m = calloc(1, sizeof *m);
    size_t c = max_points ? max_points : 1;
    if (m) {
        m->cap = c;
        m->u0 = malloc(2 * c * sizeof *m->u0);
        m->u1 = malloc(2 * c * sizeof *m->u1);
        m->x0 = malloc(2 * c * sizeof *m->x0);
        m->x1 = malloc(2 * c * sizeof *m->x1);
        m->ev = malloc(2 * c * sizeof *m->ev);
    }
    if (!m || !m->u0 || !m->u1 || !m->x0 || !m->x1 || !m->ev) {
        af_measure1d_free(m);
        af_error(AF_ENOMEM, "out of memory");
        return NULL;
    }
    return m;
}

void af_measure1d_free(af_measure1d *m)
{
    if (!m)
        return;
    free(m->u0);
    free(m->u1);
    free(m->x0);
    free(m->x1);
    free(m->ev);
    free(m);
}

static int event_cmp(const void *a, const void *b)
{
    const event *e = a, *f = b;
    return (e->pos > f->pos) - (e->pos < f->pos);
}

static void add_segment(af_measure1d *m, double u0, double u1, double x0, double x1)
{
    m->u0[m->nseg] = u0;
    m->u1[m->nseg] = u1;
    m->x0[m->nseg] = x0;
    m->x1[m->nseg] = x1;
    m->nseg++;
}

af_status af_measure1d_set(af_measure1d *m, size_t k, const double *x, size_t stride,
                           const double *w, double width, const double *widths)
{
    if (k == 0)
        return af_error(AF_EINVAL, "measure1d: no points");
    if (k > m->cap)
        return af_error(AF_EBADLEN, "measure1d: %zu points, workspace holds %zu", k, m->cap);
    double tot = 0;
    for (size_t i = 0; i < k; i++) {
        double wi = w ? w[i] : 1;
        if (!(wi >= 0) || !isfinite(wi) || !isfinite(x[i * stride]))
            return af_error(AF_EDOM, "measure1d: point %zu has a bad position or weight", i);
        tot += wi;
    }
    if (!(tot > 0))
        return af_error(AF_EINVAL, "measure1d: weights sum to 0");
    size_t ne = 0;
    for (size_t i = 0; i < k; i++) {
        double mi = (w ? w[i] : 1) / tot, wd = widths ? widths[i] : width;
        if (mi == 0)
            continue;
        if (wd > 0) {
            m->ev[ne++] = (event){x[i * stride] - 0.5 * wd, mi / wd, 0};
            m->ev[ne++] = (event){x[i * stride] + 0.5 * wd, -mi / wd, 0};
        } else {
            m->ev[ne++] = (event){x[i * stride], mi, 1};
        }
    }
    qsort(m->ev, ne, sizeof *m->ev, event_cmp);
    /* Walk the sorted events: between two of them the CDF grows linearly
     * with the current slope (sum of the open boxes' densities). */
    m->nseg = 0;
    double F = 0, slope = 0, prev = m->ev[0].pos;
    for (size_t e = 0; e < ne; e++) {
        const event *v = &m->ev[e];
        if (v->pos > prev && slope > 0) {
            double mass = slope * (v->pos - prev);
            add_segment(m, F, F + mass, prev, v->pos);
            F += mass;
        }
        prev = v->pos;
        if (v->atom) {
            add_segment(m, F, F + v->val, v->pos, v->pos);
            F += v->val;
        } else {
            slope += v->val;
            if (slope < 1e-12 * fabs(v->val)) /* boxes all closed: cancel the round-off */
                slope = 0;
        }
    }
    /* renormalise the u axis to end exactly at 1 */
    for (size_t s = 0; s < m->nseg; s++) {
        m->u0[s] /= F;
        m->u1[s] /= F;
    }
    m->u1[m->nseg - 1] = 1;
    return AF_SUCCESS;
}

af_status af_measure1d_set_grid(af_measure1d *m, const af_grid *g, const double *rho)
{
    af_status st = af_grid_check(g);
    if (st)
        return st;
    if (g->d != 1)
        return af_error(AF_EINVAL, "measure1d: grid must be 1-D (got %zu-D)", g->d);
    size_t N = g->N[0];
    if (N > m->cap)
        return af_error(AF_EBADLEN, "measure1d: %zu cells, workspace holds %zu", N, m->cap);
    double *x = malloc(N * sizeof *x), *w = malloc(N * sizeof *w);
    if (!x || !w) {
        free(x);
        free(w);
        return af_error(AF_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < N; j++) {
        af_grid_node(g, j, &x[j]);
        w[j] = rho[j] > 0 ? rho[j] : 0;
    }
    st = af_measure1d_set(m, N, x, 1, w, af_grid_step(g, 0), NULL);
    free(x);
    free(w);
    return st;
}

static double seg_eval(const af_measure1d *m, size_t s, double u)
{
    double du = m->u1[s] - m->u0[s];
    if (!(du > 0))
        return m->x0[s];
    return m->x0[s] + (m->x1[s] - m->x0[s]) * (u - m->u0[s]) / du;
}

double af_measure1d_quantile(const af_measure1d *m, double u)
{
    size_t lo = 0, hi = m->nseg - 1;
    while (lo < hi) { /* first segment with u1 >= u */
        size_t mid = lo + (hi - lo) / 2;
        if (m->u1[mid] >= u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return seg_eval(m, lo, u);
}

/* int_0^du |D(v)|^p dv for D linear from a to b, p = 1, 2. */
static double int_lin(double a, double b, double du, int p)
{
    if (p == 2)
        return du * (a * a + a * b + b * b) / 3;
    if ((a >= 0) == (b >= 0))
        return du * 0.5 * fabs(a + b);
    return du * 0.5 * (a * a + b * b) / (fabs(a) + fabs(b)); /* sign change inside */
}

double af_wasserstein1d(const af_measure1d *a, const af_measure1d *b, int p)
{
    size_t i = 0, j = 0;
    double u = 0, acc = 0;
    while (i < a->nseg && j < b->nseg) {
        double ue = fmin(a->u1[i], b->u1[j]);
        if (ue > u) {
            double d0 = seg_eval(a, i, u) - seg_eval(b, j, u);
            double d1 = seg_eval(a, i, ue) - seg_eval(b, j, ue);
            acc += int_lin(d0, d1, ue - u, p);
            u = ue;
        }
        if (a->u1[i] <= ue)
            i++;
        if (j < b->nseg && b->u1[j] <= ue)
            j++;
    }
    return p == 2 ? sqrt(acc) : acc;
}

af_status af_wasserstein1d_samples(size_t n, const double *x, size_t m, const double *y, int p,
                                   double *w)
{
    if (p != 1 && p != 2)
        return af_error(AF_EINVAL, "wasserstein: p must be 1 or 2 (got %d)", p);
    af_measure1d *a = af_measure1d_alloc(n), *b = af_measure1d_alloc(m);
    af_status st = (!a || !b) ? AF_ENOMEM : AF_SUCCESS;
    if (!st && !(st = af_measure1d_set(a, n, x, 1, NULL, 0, NULL))
        && !(st = af_measure1d_set(b, m, y, 1, NULL, 0, NULL)))
        *w = af_wasserstein1d(a, b, p);
    af_measure1d_free(a);
    af_measure1d_free(b);
    return st;
}

/* ---- sliced W2 ---- */

/* Histogram bins per unit of the smallest grid step: the projected grid
 * density is deposited on bins of width w_theta / SW_BINS_PER_CELL. */
#define SW_BINS_PER_CELL 4

/* Points the 1-D measure of a side needs: n atoms, or the histogram bins. */
static size_t side_points(size_t d, const af_sliced_side *s)
{
    if (s->X)
        return s->n;
    double diag = 0, hmin = INFINITY;
    for (size_t k = 0; k < d; k++) {
        diag += s->grid->L[k] * s->grid->L[k];
        hmin = fmin(hmin, af_grid_step(s->grid, k));
    }
    return (size_t)(SW_BINS_PER_CELL * (sqrt(diag) / hmin + 2)) + 4;
}

static af_status side_check(size_t d, const af_sliced_side *s)
{
    if (s->X)
        return s->n ? AF_SUCCESS : af_error(AF_EINVAL, "sliced W2: empty cloud");
    if (!s->grid || !s->rho)
        return af_error(AF_EINVAL, "sliced W2: a side needs a cloud or a grid density");
    af_status st = af_grid_check(s->grid);
    if (st)
        return st;
    if (s->grid->d != d)
        return af_error(AF_EBADLEN, "sliced W2: %zu-D grid for d = %zu", s->grid->d, d);
    return AF_SUCCESS;
}

/* The 1-D measure of a side projected on theta. A cloud gives atoms. A grid
 * density gives, per node, its mass spread uniformly over
 * [p - w/2, p + w/2] (p the projected node, w = sqrt(sum_k dx_k^2 theta_k^2),
 * the width with the variance of the projected cell); these boxes are
 * deposited exactly on a histogram of bins of width w / SW_BINS_PER_CELL,
 * read as piecewise constant: O(M) per direction instead of sorting M boxes. */
static af_status side_measure(size_t d, const af_sliced_side *s, const double *theta, double *proj,
                              double *w, af_measure1d *m)
{
    if (s->X) {
        for (size_t i = 0; i < s->n; i++) {
            double v = 0;
            for (size_t k = 0; k < d; k++)
                v += theta[k] * s->X[i * d + k];
            proj[i] = v;
        }
        return af_measure1d_set(m, s->n, proj, 1, NULL, 0, NULL);
    }
    const af_grid *g = s->grid;
    size_t M = af_grid_size(g), cap = side_points(d, s);
    double x[2], width2 = 0, pmin = INFINITY, pmax = -INFINITY;
    for (size_t k = 0; k < d; k++) {
        double h = af_grid_step(g, k);
        width2 += h * h * theta[k] * theta[k];
    }
    const double wd = sqrt(width2), delta = wd / SW_BINS_PER_CELL;
    /* corners of the box give the projected range */
    for (int c = 0; c < (1 << d); c++) {
        double v = 0;
        for (size_t k = 0; k < d; k++)
            v += theta[k] * (g->lo[k] + ((c >> k) & 1 ? g->L[k] - af_grid_step(g, k) : 0));
        pmin = fmin(pmin, v);
        pmax = fmax(pmax, v);
    }
    const double base = pmin - 0.5 * wd;
    size_t nb = (size_t)ceil((pmax - pmin + wd) / delta) + 1;
    if (nb > cap)
        nb = cap; /* cannot happen: cap bounds the range over the grid's step */
    memset(w, 0, nb * sizeof *w);
    for (size_t j = 0; j < M; j++) {
        double mass = s->rho[j] > 0 ? s->rho[j] : 0;
        if (mass == 0)
            continue;
        af_grid_node(g, j, x);
        double v = 0;
        for (size_t k = 0; k < d; k++)
            v += theta[k] * x[k];
        double a = (v - 0.5 * wd - base) / delta; /* in bin units */
        a = a < 0 ? 0 : a;                         /* round-off at the lowest corner */
        double b = a + SW_BINS_PER_CELL;
        size_t ia = (size_t)floor(a), ib = (size_t)floor(b);
        double dens = mass / SW_BINS_PER_CELL; /* mass per bin unit */
        if (ib >= nb)
            ib = nb - 1;
        if (ia == ib) {
            w[ia] += dens * (b - a);
            continue;
        }
        w[ia] += dens * ((double)(ia + 1) - a);
        for (size_t q = ia + 1; q < ib; q++)
            w[q] += dens;
        w[ib] += dens * (b - (double)ib);
    }
    for (size_t q = 0; q < nb; q++)
        proj[q] = base + ((double)q + 0.5) * delta;
    return af_measure1d_set(m, nb, proj, 1, w, delta, NULL);
}

af_status af_sliced_w2(size_t d, const af_sliced_side *a, const af_sliced_side *b, size_t K,
                       gsl_rng *rng, double *sw2, double *directions)
{
    af_status st;
    if (d == 0 || K == 0 || !rng)
        return af_error(AF_EINVAL, "sliced W2: need d >= 1, K >= 1 directions and a generator");
    if ((st = side_check(d, a)) || (st = side_check(d, b)))
        return st;
    size_t na = side_points(d, a), nb = side_points(d, b), nmax = na > nb ? na : nb;
    af_measure1d *ma = af_measure1d_alloc(na), *mb = af_measure1d_alloc(nb);
    double *proj = malloc(nmax * sizeof *proj), *w = malloc(nmax * sizeof *w),
           *theta = malloc(d * sizeof *theta);
    double acc = 0;
    if (!ma || !mb || !proj || !w || !theta) {
        st = af_error(AF_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < K; k++) {
        double r = 0;
        do { /* uniform on the sphere: normalised Gaussian vector */
            r = 0;
            for (size_t c = 0; c < d; c++) {
                theta[c] = gsl_ran_gaussian_ziggurat(rng, 1.0);
                r += theta[c] * theta[c];
            }
        } while (r < 1e-300);
        r = sqrt(r);
        for (size_t c = 0; c < d; c++)
            theta[c] /= r;
        if (directions)
            memcpy(directions + k * d, theta, d * sizeof *theta);
        if ((st = side_measure(d, a, theta, proj, w, ma)) || (st = side_measure(d, b, theta, proj, w, mb)))
            goto done;
        double wk = af_wasserstein1d(ma, mb, 2);
        acc += wk * wk;
    }
    *sw2 = sqrt(acc / (double)K);
done:
    af_measure1d_free(ma);
    af_measure1d_free(mb);
    free(proj);
    free(w);
    free(theta);
    return st;
}

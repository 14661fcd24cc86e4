/* Spectral heat solver (FFTW real transforms) and the closed-form heat
 * solutions of the analytic initial densities. See heat.h for the method
 * and its error terms. */
#include <complex.h>
#include <fftw3.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "attnflow/heat.h"

/* ---- grids ---- */

af_grid af_grid_cube(size_t d, size_t N, double half)
{
    af_grid g = {d, {N, d > 1 ? N : 1}, {-half, -half}, {2 * half, 2 * half}};
    return g;
}

af_status af_grid_check(const af_grid *g)
{
    if (!g)
        return af_error(AF_EINVAL, "grid: NULL grid");
    if (g->d != 1 && g->d != 2)
        return af_error(AF_EINVAL, "grid: dimension must be 1 or 2 (got %zu)", g->d);
    for (size_t k = 0; k < g->d; k++) {
        if (g->N[k] < 2)
            return af_error(AF_EINVAL, "grid: need at least 2 nodes per coordinate (got %zu)",
                            g->N[k]);
        if (g->N[k] > INT_MAX) /* FFTW takes int sizes */
            return af_error(AF_EINVAL, "grid: at most %d nodes per coordinate (got %zu)", INT_MAX,
                            g->N[k]);
        if (!(g->L[k] > 0) || !isfinite(g->L[k]) || !isfinite(g->lo[k]))
            return af_error(AF_EINVAL, "grid: box side must be > 0 and finite (got %g)", g->L[k]);
    }
    if (g->d == 2 && g->N[0] > (size_t)INT_MAX / g->N[1])
        return af_error(AF_EINVAL, "grid: %zu x %zu nodes: more than %d in all", g->N[0], g->N[1],
                        INT_MAX);
    /* the spectral solver divides by the box volume and the KDE by the cell
     * volume: both must be normal positive numbers (a tiny box underflows) */
    double cell = af_grid_cell(g), vol = g->d == 1 ? g->L[0] : g->L[0] * g->L[1];
    if (!(cell >= DBL_MIN) || !isfinite(cell) || !(vol >= DBL_MIN) || !isfinite(vol)
        || !isfinite(1 / cell))
        return af_error(AF_EINVAL, "grid: cell volume %g and box volume %g must be finite and "
                        "positive (box too small or too large)", cell, vol);
    return AF_SUCCESS;
}

size_t af_grid_size(const af_grid *g) { return g->d == 1 ? g->N[0] : g->N[0] * g->N[1]; }

double af_grid_step(const af_grid *g, size_t k) { return g->L[k] / (double)g->N[k]; }

double af_grid_cell(const af_grid *g)
{
    double v = 1;
    for (size_t k = 0; k < g->d; k++)
        v *= af_grid_step(g, k);
    return v;
}

void af_grid_node(const af_grid *g, size_t index, double *x)
{
    if (g->d == 1) {
        x[0] = g->lo[0] + (double)index * af_grid_step(g, 0);
    } else {
        size_t i = index / g->N[1], j = index % g->N[1];
        x[0] = g->lo[0] + (double)i * af_grid_step(g, 0);
        x[1] = g->lo[1] + (double)j * af_grid_step(g, 1);
    }
}

double af_grid_mass(const af_grid *g, const double *rho)
{
    size_t M = af_grid_size(g);
    double s = 0;
    for (size_t j = 0; j < M; j++)
        s += rho[j];
    return s * af_grid_cell(g);
}

/* ---- analytic densities ---- */

af_density af_density_default(void)
{
    af_density p;
    memset(&p, 0, sizeof p);
    p.kind = AF_DENSITY_GAUSSIAN;
    p.d = 1;
    p.sigma = 1;
    p.half_width = 1;
    p.width = 0.5;
    return p;
}

af_status af_density_kind_from_name(const char *name, af_density_kind *kind)
{
    if (strcmp(name, "gaussian") == 0)
        *kind = AF_DENSITY_GAUSSIAN;
    else if (strcmp(name, "mixture") == 0)
        *kind = AF_DENSITY_MIXTURE;
    else if (strcmp(name, "uniform") == 0)
        *kind = AF_DENSITY_UNIFORM;
    else
        return af_error(AF_EINVAL, "unknown density '%s' (gaussian, mixture, uniform)", name);
    return AF_SUCCESS;
}

af_status af_density_check(const af_density *p)
{
    if (p->d == 0)
        return af_error(AF_EINVAL, "density: dimension must be >= 1");
    switch (p->kind) {
    case AF_DENSITY_GAUSSIAN:
        if (!(p->sigma > 0) || !isfinite(p->sigma))
            return af_error(AF_EINVAL, "density: sigma must be > 0 (got %g)", p->sigma);
        break;
    case AF_DENSITY_UNIFORM:
        if (!(p->half_width > 0) || !isfinite(p->half_width))
            return af_error(AF_EINVAL, "density: half width must be > 0 (got %g)", p->half_width);
        break;
    case AF_DENSITY_MIXTURE: {
        if (p->components == 0 || !p->centres)
            return af_error(AF_EINVAL, "density: a mixture needs >= 1 component and its centres");
        if (!(p->width > 0) || !isfinite(p->width))
            return af_error(AF_EINVAL, "density: mixture width must be > 0 (got %g)", p->width);
        double tot = 0;
        for (size_t k = 0; k < p->components; k++) {
            double w = p->weights ? p->weights[k] : 1;
            if (!(w >= 0) || !isfinite(w))
                return af_error(AF_EINVAL, "density: mixture weight %zu must be >= 0 (got %g)", k, w);
            tot += w;
        }
        if (!(tot > 0))
            return af_error(AF_EINVAL, "density: mixture weights sum to 0");
        for (size_t k = 0; k < p->components * p->d; k++)
            if (!isfinite(p->centres[k]))
                return af_error(AF_EDOM, "density: mixture centre entry %zu is not finite", k);
        break;
    }
    default:
        return af_error(AF_EINVAL, "density: unknown kind %d", (int)p->kind);
    }
    if (p->mean)
        for (size_t k = 0; k < p->d; k++)
            if (!isfinite(p->mean[k]))
                return af_error(AF_EDOM, "density: mean entry %zu is not finite", k);
    return AF_SUCCESS;
}

static double mix_weight(const af_density *p, size_t k)
{
    double tot = 0;
    for (size_t c = 0; c < p->components; c++)
        tot += p->weights ? p->weights[c] : 1;
    return (p->weights ? p->weights[k] : 1) / tot;
}

static double centre(const af_density *p, size_t k) { return p->mean ? p->mean[k] : 0; }

/* Isotropic Gaussian density N(m, v I) at x. */
static double gauss_nd(size_t d, const double *m, double v, const double *x)
{
    double r2 = 0;
    for (size_t k = 0; k < d; k++) {
        double z = x[k] - (m ? m[k] : 0);
        r2 += z * z;
    }
    return exp(-0.5 * r2 / v) / pow(2 * M_PI * v, 0.5 * (double)d);
}

double af_density_eval(const af_density *p, double s, const double *x)
{
    switch (p->kind) {
    case AF_DENSITY_GAUSSIAN:
        return gauss_nd(p->d, p->mean, p->sigma * p->sigma + 2 * s, x);
    case AF_DENSITY_MIXTURE: {
        double v = p->width * p->width + 2 * s, r = 0;
        for (size_t c = 0; c < p->components; c++)
            r += mix_weight(p, c) * gauss_nd(p->d, p->centres + c * p->d, v, x);
        return r;
    }
    case AF_DENSITY_UNIFORM: {
        double a = p->half_width, r = 1;
        for (size_t k = 0; k < p->d; k++) {
            double z = x[k] - centre(p, k);
            if (s == 0) {
                r *= (z >= -a && z < a) ? 1 / (2 * a) : 0;
            } else {
                /* heat kernel of variance 2s against the indicator: erf difference */
                double q = sqrt(4 * s);
                r *= 0.5 * (erf((z + a) / q) - erf((z - a) / q)) / (2 * a);
            }
        }
        return r;
    }
    }
    return NAN;
}

af_status af_density_on_grid(const af_density *p, double s, const af_grid *g, double *rho)
{
    af_status st = af_grid_check(g);
    if (st)
        return st;
    if ((st = af_density_check(p)))
        return st;
    if (p->d != g->d)
        return af_error(AF_EBADLEN, "density of dimension %zu on a %zu-D grid", p->d, g->d);
    if (!(s >= 0))
        return af_error(AF_EINVAL, "density: time must be >= 0 (got %g)", s);
    size_t M = af_grid_size(g);
    for (size_t j = 0; j < M; j++) {
        double x[2];
        af_grid_node(g, j, x);
        rho[j] = af_density_eval(p, s, x);
    }
    return AF_SUCCESS;
}

double af_density_variance(const af_density *p, double s, size_t coord)
{
    switch (p->kind) {
    case AF_DENSITY_GAUSSIAN:
        return p->sigma * p->sigma + 2 * s;
    case AF_DENSITY_UNIFORM:
        return p->half_width * p->half_width / 3 + 2 * s;
    case AF_DENSITY_MIXTURE: {
        double m = 0, m2 = 0;
        for (size_t c = 0; c < p->components; c++) {
            double w = mix_weight(p, c), z = p->centres[c * p->d + coord];
            m += w * z;
            m2 += w * z * z;
        }
        return p->width * p->width + (m2 - m * m) + 2 * s;
    }
    }
    return NAN;
}

af_status af_density_sample(const af_density *p, gsl_rng *rng, size_t n, double *X)
{
    af_status st = af_density_check(p);
    if (st)
        return st;
    if (!rng)
        return af_error(AF_EINVAL, "density: a random generator is required");
    size_t d = p->d;
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * d;
        switch (p->kind) {
        case AF_DENSITY_GAUSSIAN:
            for (size_t k = 0; k < d; k++)
                x[k] = centre(p, k) + gsl_ran_gaussian_ziggurat(rng, p->sigma);
            break;
        case AF_DENSITY_UNIFORM:
            for (size_t k = 0; k < d; k++)
                x[k] = centre(p, k) + gsl_ran_flat(rng, -p->half_width, p->half_width);
            break;
        case AF_DENSITY_MIXTURE: {
            double u = gsl_rng_uniform(rng), acc = 0;
            size_t c = 0;
            for (; c + 1 < p->components; c++) {
                acc += mix_weight(p, c);
                if (u < acc)
                    break;
            }
            for (size_t k = 0; k < d; k++)
                x[k] = p->centres[c * d + k] + gsl_ran_gaussian_ziggurat(rng, p->width);
            break;
        }
        }
    }
    return AF_SUCCESS;
}

af_status af_grid_sample(const af_grid *g, const double *rho, gsl_rng *rng, size_t n, double *X)
{
    af_status st = af_grid_check(g);
    if (st)
        return st;
    if (!rng)
        return af_error(AF_EINVAL, "grid sample: a random generator is required");
    size_t M = af_grid_size(g);
    double *cum = malloc(M * sizeof *cum);
    if (!cum)
        return af_error(AF_ENOMEM, "out of memory");
    double acc = 0;
    for (size_t j = 0; j < M; j++) {
        acc += rho[j] > 0 ? rho[j] : 0;
        cum[j] = acc;
    }
    if (!(acc > 0) || !isfinite(acc)) {
        free(cum);
        return af_error(AF_EINVAL, "grid sample: the density has no positive (finite) mass");
    }
    for (size_t i = 0; i < n; i++) {
        double u = gsl_rng_uniform(rng) * acc;
        size_t lo = 0, hi = M - 1; /* first j with cum[j] > u */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cum[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        double x[2];
        af_grid_node(g, lo, x);
        for (size_t k = 0; k < g->d; k++)
            X[i * g->d + k] = x[k] + af_grid_step(g, k) * (gsl_rng_uniform(rng) - 0.5);
    }
    free(cum);
    return AF_SUCCESS;
}

/* Equal spacing within a relative tolerance (files written with %.17g and
 * grids built as lo + j dx agree to round-off). */
static int equally_spaced(size_t n, const double *x, size_t stride, double *dx)
{
    *dx = (x[(n - 1) * stride] - x[0]) / (double)(n - 1);
    if (!(*dx > 0))
        return 0;
    for (size_t j = 0; j < n; j++)
        if (fabs(x[j * stride] - (x[0] + (double)j * *dx)) > 1e-9 * fabs(*dx) * (double)(j + 1))
            return 0;
    return 1;
}

af_status af_grid_from_table(size_t rows, size_t cols, const double *table, af_grid *g,
                             double *rho)
{
    if (cols == 2) {
        double dx;
        if (rows < 2 || !equally_spaced(rows, table, 2, &dx))
            return af_error(AF_EFORMAT, "grid file: x must be increasing and equally spaced "
                            "(%zu rows of 'x rho')", rows);
        *g = (af_grid){1, {rows, 1}, {table[0], 0}, {dx * (double)rows, 1}};
        for (size_t j = 0; j < rows; j++)
            rho[j] = table[2 * j + 1];
        return AF_SUCCESS;
    }
    if (cols == 3) {
        size_t N1 = 0;
        while (N1 < rows && table[3 * N1] == table[0])
            N1++;
        if (N1 < 2 || rows % N1 != 0 || rows / N1 < 2)
            return af_error(AF_EFORMAT, "grid file: expected blocks of equal x1 of the same length "
                            "(%zu rows, first block %zu)", rows, N1);
        size_t N0 = rows / N1;
        double dx0, dx1;
        for (size_t i = 0; i < N0; i++)
            for (size_t j = 0; j < N1; j++) {
                const double *r = table + 3 * (i * N1 + j);
                if (r[0] != table[3 * i * N1] || r[1] != table[3 * j + 1])
                    return af_error(AF_EFORMAT, "grid file: row %zu breaks the x1-major grid layout",
                                    i * N1 + j + 1);
            }
        if (!equally_spaced(N0, table, 3 * N1, &dx0) || !equally_spaced(N1, table + 1, 3, &dx1))
            return af_error(AF_EFORMAT, "grid file: x1 and x2 must be increasing and equally spaced");
        *g = (af_grid){2, {N0, N1}, {table[0], table[1]}, {dx0 * (double)N0, dx1 * (double)N1}};
        for (size_t j = 0; j < rows; j++)
            rho[j] = table[3 * j + 2];
        return AF_SUCCESS;
    }
    return af_error(AF_EFORMAT, "grid file: expected 2 columns (x rho) or 3 (x1 x2 rho), got %zu",
                    cols);
}

/* ---- mean-field attention flow from a Gaussian ---- */

static double mf_rate(int sinkhorn, double eps, double s)
{
    if (!sinkhorn)
        return 4 * s / (s + eps);
    double k = s / eps;
    /* 1 - r without cancellation: 1 - r = (2k + 1 - sqrt(1 + 4k^2)) / (2k)
     * = (4k) / (2k (2k + 1 + sqrt(1 + 4k^2))) */
    double one_minus_r = 2.0 / (2 * k + 1 + sqrt(1 + 4 * k * k));
    return 4.0 / eps * one_minus_r * s;
}

af_status af_attention_gaussian_variance(int sinkhorn, double eps, double s0, double T,
                                         double *sT)
{
    if (!(eps > 0) || !(s0 > 0) || !(T >= 0) || !isfinite(eps * s0 * T))
        return af_error(AF_EINVAL, "mean-field variance: need eps > 0, s0 > 0, T >= 0 "
                        "(got %g, %g, %g)", eps, s0, T);
    size_t steps = (size_t)ceil(T / 1e-3);
    double h = steps ? T / (double)steps : 0, s = s0;
    for (size_t k = 0; k < steps; k++) {
        double k1 = mf_rate(sinkhorn, eps, s), k2 = mf_rate(sinkhorn, eps, s + 0.5 * h * k1);
        double k3 = mf_rate(sinkhorn, eps, s + 0.5 * h * k2), k4 = mf_rate(sinkhorn, eps, s + h * k3);
        s += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
    }
    *sT = s;
    return AF_SUCCESS;
}

af_status af_attention_gaussian_variance_euler(int sinkhorn, double eps, double s0, double T,
                                               double h, double *sT)
{
    if (!(eps > 0) || !(s0 > 0) || !(T >= 0) || !(h > 0) || !isfinite(eps * s0 * T * h))
        return af_error(AF_EINVAL, "mean-field variance (Euler): need eps > 0, s0 > 0, T >= 0, "
                        "h > 0 (got %g, %g, %g, %g)", eps, s0, T, h);
    if (T / h > 1e9)
        return af_error(AF_EINVAL, "mean-field variance (Euler): T / h = %g steps is too many",
                        T / h);
    double s = s0, t = 0;
    while (T - t > 1e-12 * T) {
        const double step = fmin(h, T - t);
        /* velocity (2/eps)(1 - r)(x - m) = mf_rate / (2 s) (x - m) */
        const double grow = 1 + step * mf_rate(sinkhorn, eps, s) / (2 * s);
        s *= grow * grow;
        t += step;
    }
    *sT = s;
    return AF_SUCCESS;
}

/* ---- spectral solver ---- */

/* Internally a 1-D grid is a 1 x N 2-D grid, so both share one code path:
 * M0 x M1 real nodes, M0 x (M1/2 + 1) complex modes. */
struct af_heat_plan {
    af_grid g;
    size_t M0, M1, Mc;       /* real rows, real columns, complex columns */
    double *real;            /* M0 * M1, fftw_malloc'ed (aligned) */
    fftw_complex *spec0;     /* initial coefficients, M0 * Mc */
    fftw_complex *work;      /* evolved coefficients (c2r destroys its input) */
    double *xi2;             /* |xi|^2 per mode */
    double *xi0, *xi1;       /* wave numbers per row / column index */
    fftw_plan fwd, inv;
    int ready;
};

const af_grid *af_heat_grid(const af_heat_plan *p) { return &p->g; }

void af_heat_plan_free(af_heat_plan *p)
{
    if (!p)
        return;
    if (p->fwd)
        fftw_destroy_plan(p->fwd);
    if (p->inv)
        fftw_destroy_plan(p->inv);
    fftw_free(p->real);
    fftw_free(p->spec0);
    fftw_free(p->work);
    free(p->xi2);
    free(p->xi0);
    free(p->xi1);
    free(p);
}

af_heat_plan *af_heat_plan_alloc(const af_grid *g, unsigned fftw_flags)
{
    if (af_grid_check(g))
        return NULL;
    af_heat_plan *p = calloc(1, sizeof *p);
    if (!p) {
        af_error(AF_ENOMEM, "out of memory");
        return NULL;
    }
    p->g = *g;
    p->M0 = g->d == 1 ? 1 : g->N[0];
    p->M1 = g->d == 1 ? g->N[0] : g->N[1];
    p->Mc = p->M1 / 2 + 1;
    double L0 = g->d == 1 ? 1 : g->L[0], L1 = g->d == 1 ? g->L[0] : g->L[1];
    p->real = fftw_malloc(p->M0 * p->M1 * sizeof *p->real);
    p->spec0 = fftw_malloc(p->M0 * p->Mc * sizeof *p->spec0);
    p->work = fftw_malloc(p->M0 * p->Mc * sizeof *p->work);
    p->xi2 = malloc(p->M0 * p->Mc * sizeof *p->xi2);
    p->xi0 = malloc(p->M0 * sizeof *p->xi0);
    p->xi1 = malloc(p->Mc * sizeof *p->xi1);
    if (!p->real || !p->spec0 || !p->work || !p->xi2 || !p->xi0 || !p->xi1) {
        af_error(AF_ENOMEM, "heat: out of memory for a %zu x %zu grid", p->M0, p->M1);
        af_heat_plan_free(p);
        return NULL;
    }
    /* wave numbers: index i <-> k = i for i <= M/2, i - M above (aliases of -k) */
    for (size_t i = 0; i < p->M0; i++) {
        double k = i <= p->M0 / 2 ? (double)i : (double)i - (double)p->M0;
        p->xi0[i] = p->M0 == 1 ? 0 : 2 * M_PI * k / L0;
    }
    for (size_t j = 0; j < p->Mc; j++)
        p->xi1[j] = 2 * M_PI * (double)j / L1;
    for (size_t i = 0; i < p->M0; i++)
        for (size_t j = 0; j < p->Mc; j++)
            p->xi2[i * p->Mc + j] = p->xi0[i] * p->xi0[i] + p->xi1[j] * p->xi1[j];
    /* |xi|^2 t of the finest mode must not overflow (exp(-inf 0) is NaN at t = 0) */
    if (!isfinite(p->xi2[(p->M0 / 2) * p->Mc + p->Mc - 1])) {
        af_error(AF_EINVAL, "heat: grid spacing too small (largest |xi|^2 overflows)");
        af_heat_plan_free(p);
        return NULL;
    }
    if (g->d == 1) {
        p->fwd = fftw_plan_dft_r2c_1d((int)p->M1, p->real, p->work, fftw_flags);
        p->inv = fftw_plan_dft_c2r_1d((int)p->M1, p->work, p->real, fftw_flags);
    } else {
        p->fwd = fftw_plan_dft_r2c_2d((int)p->M0, (int)p->M1, p->real, p->work, fftw_flags);
        p->inv = fftw_plan_dft_c2r_2d((int)p->M0, (int)p->M1, p->work, p->real, fftw_flags);
    }
    if (!p->fwd || !p->inv) {
        af_error(AF_ELIB, "heat: FFTW could not plan a %zu x %zu transform", p->M0, p->M1);
        af_heat_plan_free(p);
        return NULL;
    }
    return p;
}

af_status af_heat_set(af_heat_plan *p, const double *rho0)
{
    size_t M = p->M0 * p->M1;
    for (size_t j = 0; j < M; j++)
        if (!isfinite(rho0[j]))
            return af_error(AF_EDOM, "heat: initial density is not finite at node %zu", j);
    memcpy(p->real, rho0, M * sizeof *rho0);
    fftw_execute(p->fwd); /* real -> work (FFTW may overwrite real: it is scratch) */
    /* FFTW's transforms are unnormalised: divide once here so that the
     * coefficients are those of the trigonometric interpolant. */
    double inv = 1.0 / (double)M;
    for (size_t k = 0; k < p->M0 * p->Mc; k++)
        p->spec0[k] = p->work[k] * inv;
    p->ready = 1;
    return AF_SUCCESS;
}

/* Fourier transform int rho(x) e^{-i xi.x} dx of an analytic density, at
 * the 2-D wave vector (xi0, xi1) (xi0 ignored in 1-D). */
static double complex density_ft(const af_density *p, double xi0, double xi1)
{
    double xi[2] = {p->d == 1 ? xi1 : xi0, xi1};
    switch (p->kind) {
    case AF_DENSITY_GAUSSIAN: {
        double ph = 0, r2 = 0;
        for (size_t k = 0; k < p->d; k++) {
            ph += xi[k] * centre(p, k);
            r2 += xi[k] * xi[k];
        }
        return cexp(-I * ph) * exp(-0.5 * p->sigma * p->sigma * r2);
    }
    case AF_DENSITY_UNIFORM: {
        double complex r = 1;
        for (size_t k = 0; k < p->d; k++) {
            double z = xi[k] * p->half_width;
            r *= cexp(-I * xi[k] * centre(p, k)) * (z == 0 ? 1 : sin(z) / z);
        }
        return r;
    }
    case AF_DENSITY_MIXTURE: {
        double r2 = 0;
        for (size_t k = 0; k < p->d; k++)
            r2 += xi[k] * xi[k];
        double complex r = 0;
        for (size_t c = 0; c < p->components; c++) {
            double ph = 0;
            for (size_t k = 0; k < p->d; k++)
                ph += xi[k] * p->centres[c * p->d + k];
            r += mix_weight(p, c) * cexp(-I * ph);
        }
        return r * exp(-0.5 * p->width * p->width * r2);
    }
    }
    return NAN;
}

af_status af_heat_set_density(af_heat_plan *p, const af_density *dens)
{
    af_status st = af_density_check(dens);
    if (st)
        return st;
    if (dens->d != p->g.d)
        return af_error(AF_EBADLEN, "heat: density of dimension %zu on a %zu-D grid", dens->d,
                        p->g.d);
    p->ready = 0; /* until the whole spectrum is set */
    /* Poisson summation: the periodised density has Fourier coefficients
     * rho^(xi) / V; the phase e^{i xi.lo} moves the origin to the first node. */
    double V = p->g.d == 1 ? p->g.L[0] : p->g.L[0] * p->g.L[1];
    if (!(V > 0) || !isfinite(V))
        return af_error(AF_ENUMERIC, "heat: box volume %g is not finite and positive", V);
    double lo0 = p->g.d == 1 ? 0 : p->g.lo[0], lo1 = p->g.d == 1 ? p->g.lo[0] : p->g.lo[1];
    for (size_t i = 0; i < p->M0; i++)
        for (size_t j = 0; j < p->Mc; j++) {
            double x0 = p->xi0[i], x1 = p->xi1[j];
            double complex c = density_ft(dens, x0, x1) * cexp(I * (x0 * lo0 + x1 * lo1)) / V;
            /* a spectrum that overflows or is NaN (extreme boxes or widths) would
             * evolve into NaN densities: refuse it here */
            if (!isfinite(creal(c)) || !isfinite(cimag(c)))
                return af_error(AF_ENUMERIC, "heat: the initial spectrum is not finite at mode "
                                "(%zu, %zu) (box volume %g)", i, j, V);
            p->spec0[i * p->Mc + j] = c;
        }
    p->ready = 1;
    return AF_SUCCESS;
}

af_status af_heat_evolve(af_heat_plan *p, double kappa, double t, double *rho)
{
    if (!p->ready)
        return af_error(AF_EINVAL, "heat: no initial condition (call af_heat_set first)");
    if (!(kappa >= 0) || !(t >= 0) || !isfinite(kappa * t))
        return af_error(AF_EINVAL, "heat: kappa and t must be >= 0 and finite (got %g, %g)",
                        kappa, t);
    double s = kappa * t;
    for (size_t k = 0; k < p->M0 * p->Mc; k++)
        p->work[k] = p->spec0[k] * exp(-p->xi2[k] * s);
    fftw_execute(p->inv);
    memcpy(rho, p->real, p->M0 * p->M1 * sizeof *rho);
    return AF_SUCCESS;
}

double af_heat_initial_mass(const af_heat_plan *p)
{
    double V = p->g.d == 1 ? p->g.L[0] : p->g.L[0] * p->g.L[1];
    if (!(V > 0) || !isfinite(V))
        return af_error(AF_ENUMERIC, "heat: box volume %g is not finite and positive", V);
    return creal(p->spec0[0]) * V;
}

af_status af_heat_wrap_error(const af_grid *g, const double *rho0, double kappa, double t,
                             double *l1, double *linf)
{
    af_status st = af_grid_check(g);
    if (st)
        return st;
    af_grid G = *g;
    size_t off[2] = {0, 0};
    for (size_t k = 0; k < g->d; k++) {
        off[k] = g->N[k] / 2;
        G.N[k] = 2 * g->N[k];
        G.lo[k] = g->lo[k] - (double)off[k] * af_grid_step(g, k);
        G.L[k] = 2 * g->L[k];
    }
    size_t M = af_grid_size(g), MM = af_grid_size(&G);
    double *small = malloc(M * sizeof *small), *big = calloc(MM, sizeof *big);
    af_heat_plan *ps = af_heat_plan_alloc(g, FFTW_ESTIMATE);
    af_heat_plan *pb = af_heat_plan_alloc(&G, FFTW_ESTIMATE);
    if (!small || !big || !ps || !pb) {
        st = (!ps || !pb) ? AF_ELIB : af_error(AF_ENOMEM, "out of memory");
        goto done;
    }
    size_t N1 = g->d == 1 ? 1 : g->N[1], NN1 = g->d == 1 ? 1 : G.N[1];
    size_t rows = g->N[0];
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < N1; j++)
            big[(i + off[0]) * NN1 + (j + off[1])] = rho0[i * N1 + j];
    if ((st = af_heat_set(ps, rho0)) || (st = af_heat_set(pb, big))
        || (st = af_heat_evolve(ps, kappa, t, small)) || (st = af_heat_evolve(pb, kappa, t, big)))
        goto done;
    double s1 = 0, mx = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < N1; j++) {
            double e = fabs(small[i * N1 + j] - big[(i + off[0]) * NN1 + (j + off[1])]);
            s1 += e;
            mx = e > mx ? e : mx;
        }
    if (l1)
        *l1 = s1 * af_grid_cell(g);
    if (linf)
        *linf = mx;
done:
    free(small);
    free(big);
    af_heat_plan_free(ps);
    af_heat_plan_free(pb);
    return st;
}

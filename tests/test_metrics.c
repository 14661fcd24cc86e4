/* KDE, density distances, moments, 1-D Wasserstein and sliced W2 against
 * closed forms and independent naive implementations. */
#include <criterion/criterion.h>
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include "attnflow/metrics.h"

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

/* A 1-D Gaussian N(m, s^2) as a grid density on a fine grid. */
static af_measure1d *gauss_measure(double m, double s, af_grid *g, double *rho)
{
    af_density p = af_density_default();
    p.mean = &m;
    p.sigma = s;
    af_density_on_grid(&p, 0, g, rho);
    af_measure1d *q = af_measure1d_alloc(g->N[0]);
    cr_assert_eq(af_measure1d_set_grid(q, g, rho), AF_SUCCESS, "%s", af_last_error());
    return q;
}

Test(metrics, w2_gaussians_closed_form)
{
    af_grid g = af_grid_cube(1, 40000, 12);
    double *r1 = malloc(40000 * sizeof *r1), *r2 = malloc(40000 * sizeof *r2);
    double cases[4][4] = {{0, 1, 0.5, 1.5}, {-1, 0.7, 1, 0.7}, {0.3, 1, 0.3, 2}, {0, 1, 0, 1}};
    for (int c = 0; c < 4; c++) {
        double m1 = cases[c][0], s1 = cases[c][1], m2 = cases[c][2], s2 = cases[c][3];
        af_measure1d *a = gauss_measure(m1, s1, &g, r1), *b = gauss_measure(m2, s2, &g, r2);
        double w2 = af_wasserstein1d(a, b, 2);
        double ex = sqrt((m1 - m2) * (m1 - m2) + (s1 - s2) * (s1 - s2));
        cr_expect(fabs(w2 - ex) < 1e-6 + 1e-6 * ex, "case %d: W2 %.12g vs %.12g", c, w2, ex);
        double w1 = af_wasserstein1d(a, b, 1);
        if (s1 == s2) /* a translation: W1 = |m1 - m2| */
            cr_expect(fabs(w1 - fabs(m1 - m2)) < 1e-6, "case %d: W1 %.12g", c, w1);
        if (m1 == m2) /* same centre: W1 = |s1 - s2| E|Z| */
            cr_expect(fabs(w1 - fabs(s1 - s2) * sqrt(2 / M_PI)) < 1e-6, "case %d: W1 %.12g", c, w1);
        af_measure1d_free(a);
        af_measure1d_free(b);
    }
    free(r1);
    free(r2);
}

Test(metrics, w_samples_vs_naive)
{
    gsl_rng *r = rng_new(5);
    size_t n = 500;
    double x[500], y[500], xs[500], ys[500], z[1000];
    for (size_t i = 0; i < n; i++) {
        x[i] = gsl_ran_gaussian(r, 1);
        y[i] = 0.4 + gsl_ran_exponential(r, 1);
    }
    /* equal sizes: W_p^p = mean |x_(i) - y_(i)|^p over sorted samples */
    memcpy(xs, x, sizeof x);
    memcpy(ys, y, sizeof y);
    gsl_sort(xs, 1, n);
    gsl_sort(ys, 1, n);
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s1 += fabs(xs[i] - ys[i]) / (double)n;
        s2 += (xs[i] - ys[i]) * (xs[i] - ys[i]) / (double)n;
    }
    double w1, w2;
    cr_assert_eq(af_wasserstein1d_samples(n, x, n, y, 1, &w1), AF_SUCCESS);
    cr_assert_eq(af_wasserstein1d_samples(n, x, n, y, 2, &w2), AF_SUCCESS);
    cr_expect(fabs(w1 - s1) < 1e-12, "W1 %.15g vs %.15g", w1, s1);
    cr_expect(fabs(w2 - sqrt(s2)) < 1e-12, "W2 %.15g vs %.15g", w2, sqrt(s2));
    /* unequal sizes: W1 = int |F_x - F_y| dx, naive on the merged points */
    for (size_t i = 0; i < n; i++)
        z[i] = x[i], z[n + i] = y[i];
    gsl_sort(z, 1, 2 * n);
    size_t m = 300; /* y truncated to 300 points */
    double ysub[300];
    memcpy(ysub, y, sizeof ysub);
    double naive = 0;
    for (size_t k = 0; k + 1 < 2 * n; k++) {
        double fx = 0, fy = 0;
        for (size_t i = 0; i < n; i++)
            fx += (x[i] <= z[k]) / (double)n;
        for (size_t i = 0; i < m; i++)
            fy += (ysub[i] <= z[k]) / (double)m;
        naive += fabs(fx - fy) * (z[k + 1] - z[k]);
    }
    cr_assert_eq(af_wasserstein1d_samples(n, x, m, ysub, 1, &w1), AF_SUCCESS);
    cr_expect(fabs(w1 - naive) < 1e-12, "W1 %.15g vs naive %.15g", w1, naive);
    /* a sample against itself duplicated: 0 */
    double xx[1000];
    memcpy(xx, x, sizeof x);
    memcpy(xx + n, x, sizeof x);
    cr_assert_eq(af_wasserstein1d_samples(n, x, 2 * n, xx, 2, &w2), AF_SUCCESS);
    cr_expect(w2 * w2 < 1e-15, "%g", w2); /* u breakpoints differ by round-off only */
    cr_expect_eq(af_wasserstein1d_samples(n, x, n, y, 3, &w2), AF_EINVAL);
    gsl_rng_free(r);
}

Test(metrics, box_vs_atom)
{
    af_measure1d *a = af_measure1d_alloc(2), *b = af_measure1d_alloc(2);
    double c = 0.3, w = 0.8;
    af_measure1d_set(a, 1, &c, 1, NULL, w, NULL);
    af_measure1d_set(b, 1, &c, 1, NULL, 0, NULL);
    cr_expect(fabs(af_wasserstein1d(a, b, 2) - w / sqrt(12)) < 1e-15);
    cr_expect(fabs(af_wasserstein1d(a, b, 1) - w / 4) < 1e-15);
    /* two overlapping boxes: the quantile function follows the summed density */
    double x2[2] = {0, 0.5}, wts[2] = {1, 3};
    af_measure1d_set(a, 2, x2, 1, wts, 1.0, NULL);
    /* CDF on [-0.5, 0): 0.25 (v + 0.5); on [0, 0.5): 0.125 + v; on [0.5, 1]: 0.625 + 0.75 (v - 0.5) */
    cr_expect(fabs(af_measure1d_quantile(a, 0.0625) - (-0.25)) < 1e-14);
    cr_expect(fabs(af_measure1d_quantile(a, 0.5) - 0.375) < 1e-14);
    cr_expect(fabs(af_measure1d_quantile(a, 0.8125) - 0.75) < 1e-14);
    af_measure1d_free(a);
    af_measure1d_free(b);
}

Test(metrics, kde_matches_naive_kernel_sum)
{
    gsl_rng *r = rng_new(7);
    size_t n = 300;
    double X[600];
    for (size_t i = 0; i < 2 * n; i++)
        X[i] = gsl_ran_gaussian(r, 1);
    double b = 0.4, err[2];
    for (int level = 0; level < 2; level++) {
        af_grid g = af_grid_cube(2, level ? 256 : 128, 8);
        size_t M = af_grid_size(&g);
        double *rho = malloc(M * sizeof *rho);
        af_kde_ws *ws = af_kde_alloc(&g, FFTW_ESTIMATE);
        af_kde_options o = af_kde_options_default();
        o.bandwidth = b;
        o.deconvolve = 0; /* the binning error then is O(dx^2): checked by its rate */
        size_t out = 99;
        cr_assert_eq(af_kde(ws, &o, n, X, rho, &out), AF_SUCCESS, "%s", af_last_error());
        cr_expect_eq(out, 0);
        cr_expect(fabs(af_grid_mass(&g, rho) - 1) < 1e-12);
        double e = 0;
        for (size_t j = 0; j < M; j += 7) {
            double x[2], s = 0;
            af_grid_node(&g, j, x);
            for (size_t i = 0; i < n; i++) {
                double dx = x[0] - X[2 * i], dy = x[1] - X[2 * i + 1];
                s += exp(-0.5 * (dx * dx + dy * dy) / (b * b)) / (2 * M_PI * b * b * (double)n);
            }
            e = fmax(e, fabs(s - rho[j]));
        }
        err[level] = e;
        /* deconvolution reduces the error further */
        o.deconvolve = 1;
        af_kde(ws, &o, n, X, rho, NULL);
        double e2 = 0;
        for (size_t j = 0; j < M; j += 7) {
            double x[2], s = 0;
            af_grid_node(&g, j, x);
            for (size_t i = 0; i < n; i++) {
                double dx = x[0] - X[2 * i], dy = x[1] - X[2 * i + 1];
                s += exp(-0.5 * (dx * dx + dy * dy) / (b * b)) / (2 * M_PI * b * b * (double)n);
            }
            e2 = fmax(e2, fabs(s - rho[j]));
        }
        cr_expect_lt(e2, 0.5 * e, "level %d: deconvolved %g vs plain %g", level, e2, e);
        af_kde_free(ws);
        free(rho);
    }
    cr_expect_lt(err[0], 5e-3, "coarse error %g", err[0]);
    cr_expect(err[0] / err[1] > 3.0, "second order: %g -> %g", err[0], err[1]);
    gsl_rng_free(r);
}

Test(metrics, kde_counts_outside_and_checks)
{
    af_grid g = af_grid_cube(1, 64, 2);
    af_kde_ws *ws = af_kde_alloc(&g, FFTW_ESTIMATE);
    double X[4] = {0, 0.5, 3, -2.5}, rho[64];
    af_kde_options o = af_kde_options_default();
    size_t out;
    cr_assert_eq(af_kde(ws, &o, 4, X, rho, &out), AF_SUCCESS);
    cr_expect_eq(out, 2);
    cr_expect(fabs(af_grid_mass(&g, rho) - 0.5) < 1e-12);
    o.bandwidth = 0;
    cr_expect_eq(af_kde(ws, &o, 4, X, rho, &out), AF_EINVAL);
    /* a NaN or infinite particle is an error, not a particle outside the box
     * (it used to be counted in 'outside' and the run went on) */
    o = af_kde_options_default();
    double bad[3][4] = {{0, NAN, 0.5, 1}, {0, 0.5, INFINITY, 1}, {-INFINITY, 0, 0.5, 1}};
    for (int k = 0; k < 3; k++) {
        out = 77;
        cr_expect_eq(af_kde(ws, &o, 4, bad[k], rho, &out), AF_EDOM, "case %d", k);
        cr_expect_eq(out, 77, "case %d: outside untouched on error", k);
    }
    af_kde_free(ws);
    /* 2-D: one coordinate NaN */
    af_grid g2 = af_grid_cube(2, 16, 2);
    af_kde_ws *w2 = af_kde_alloc(&g2, FFTW_ESTIMATE);
    double X2[4] = {0, 0, 0.5, NAN}, rho2[256];
    cr_expect_eq(af_kde(w2, &o, 2, X2, rho2, NULL), AF_EDOM);
    af_kde_free(w2);
}

Test(metrics, kde_of_large_sample_estimates_smoothed_density)
{
    /* E[KDE] = rho * G_b = heat solution at s = b^2/2: the L1 error is the
     * sampling error only and shrinks like n^{-1/2} (checked at 2 sizes). */
    gsl_rng *r = rng_new(9);
    af_grid g = af_grid_cube(1, 512, 10);
    af_density p = af_density_default();
    double b = 0.25, ref[512], rho[512], l1[2];
    af_density_on_grid(&p, 0.5 * b * b, &g, ref);
    af_kde_ws *ws = af_kde_alloc(&g, FFTW_ESTIMATE);
    af_kde_options o = {b, 1};
    size_t sizes[2] = {1000, 64000};
    for (int k = 0; k < 2; k++) { /* mean over 4 samples: one L1 value fluctuates by ~50% */
        size_t n = sizes[k];
        double *X = malloc(n * sizeof *X), e;
        l1[k] = 0;
        for (int rep = 0; rep < 4; rep++) {
            af_density_sample(&p, r, n, X);
            af_kde(ws, &o, n, X, rho, NULL);
            af_density_distance(&g, rho, ref, &e, NULL);
            l1[k] += e / 4;
        }
        free(X);
    }
    cr_expect_lt(l1[1], 0.012, "L1 at n = 64000: %g", l1[1]);
    cr_expect(l1[0] / l1[1] > 4.0 && l1[0] / l1[1] < 16.0, "n x64 should cut L1 ~8x: %g -> %g",
              l1[0], l1[1]);
    af_kde_free(ws);
    gsl_rng_free(r);
}

Test(metrics, distances_and_moments)
{
    af_grid g = af_grid_cube(1, 4, 1); /* dx = 0.5 */
    double a[4] = {1, 2, 3, 4}, b[4] = {1, 1, 5, 4}, l1, l2;
    af_density_distance(&g, a, b, &l1, &l2);
    cr_expect(fabs(l1 - 1.5) < 1e-15);
    cr_expect(fabs(l2 - sqrt(2.5)) < 1e-15);
    double X[6] = {1, 2, 3, 5, 5, 11}, mean[2], cov[4];
    af_moments(3, 2, X, mean, cov);
    cr_expect(fabs(mean[0] - 3) < 1e-15 && fabs(mean[1] - 6) < 1e-15);
    cr_expect(fabs(cov[0] - 8.0 / 3) < 1e-14 && fabs(cov[3] - 42.0 / 3) < 1e-14);
    cr_expect(fabs(cov[1] - 6) < 1e-14 && cov[1] == cov[2]);
    /* grid moments of a Gaussian: exact on the nodes, + dx^2/12 for cells */
    af_grid h = af_grid_cube(2, 128, 8);
    double *rho = malloc(af_grid_size(&h) * sizeof *rho), m[2] = {0.5, -1}, gm[2], gc[4];
    af_density p = af_density_default();
    p.d = 2;
    p.mean = m;
    p.sigma = 0.9;
    af_density_on_grid(&p, 0, &h, rho);
    af_grid_moments(&h, rho, 0, gm, gc);
    cr_expect(fabs(gm[0] - 0.5) < 1e-12 && fabs(gm[1] + 1) < 1e-12);
    cr_expect(fabs(gc[0] - 0.81) < 1e-12 && fabs(gc[3] - 0.81) < 1e-12 && fabs(gc[1]) < 1e-12);
    af_grid_moments(&h, rho, 1, gm, gc);
    double dx = af_grid_step(&h, 0);
    cr_expect(fabs(gc[0] - 0.81 - dx * dx / 12) < 1e-12);
    free(rho);
}

Test(metrics, sliced_w2_translation_is_exact)
{
    /* b = a + v: each projection is a translation by theta.v, so
     * SW2^2 = mean_k (theta_k . v)^2 for the directions drawn */
    gsl_rng *r = rng_new(3);
    size_t n = 200, d = 3, K = 50;
    double *X = malloc(n * d * sizeof *X), *Y = malloc(n * d * sizeof *Y), dirs[150];
    double v[3] = {0.5, -1, 2};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) {
            X[i * d + k] = gsl_ran_gaussian(r, 1);
            Y[i * d + k] = X[i * d + k] + v[k];
        }
    af_sliced_side a = {n, X, NULL, NULL}, b = {n, Y, NULL, NULL};
    gsl_rng *rd = rng_new(42);
    double sw;
    cr_assert_eq(af_sliced_w2(d, &a, &b, K, rd, &sw, dirs), AF_SUCCESS, "%s", af_last_error());
    double ex = 0;
    for (size_t k = 0; k < K; k++) {
        double t = 0, nn = 0;
        for (size_t c = 0; c < d; c++) {
            t += dirs[k * d + c] * v[c];
            nn += dirs[k * d + c] * dirs[k * d + c];
        }
        cr_expect(fabs(nn - 1) < 1e-14);
        ex += t * t / (double)K;
    }
    cr_expect(fabs(sw - sqrt(ex)) < 1e-12, "%.15g vs %.15g", sw, sqrt(ex));
    /* seeded: the same seed gives the same value */
    gsl_rng_set(rd, 42);
    double sw2;
    af_sliced_w2(d, &a, &b, K, rd, &sw2, NULL);
    cr_expect_eq(sw, sw2);
    free(X);
    free(Y);
    gsl_rng_free(r);
    gsl_rng_free(rd);
}

Test(metrics, sliced_w2_grid_gaussians_closed_form)
{
    /* isotropic Gaussians: every projection is N(theta.m, s^2), so
     * W2^2 = (theta.m)^2 + (s1 - s2)^2 direction by direction */
    af_grid g = af_grid_cube(2, 256, 9);
    size_t M = af_grid_size(&g);
    double *r1 = malloc(M * sizeof *r1), *r2 = malloc(M * sizeof *r2), m[2] = {0.6, -0.3}, dirs[40];
    af_density p = af_density_default(), q = af_density_default();
    p.d = q.d = 2;
    q.mean = m;
    q.sigma = 1.4;
    af_density_on_grid(&p, 0, &g, r1);
    af_density_on_grid(&q, 0, &g, r2);
    af_sliced_side a = {0, NULL, &g, r1}, b = {0, NULL, &g, r2};
    gsl_rng *rd = rng_new(1);
    double sw;
    cr_assert_eq(af_sliced_w2(2, &a, &b, 20, rd, &sw, dirs), AF_SUCCESS, "%s", af_last_error());
    double ex = 0;
    for (int k = 0; k < 20; k++) {
        double t = dirs[2 * k] * m[0] + dirs[2 * k + 1] * m[1];
        ex += (t * t + 0.16) / 20;
    }
    cr_expect(fabs(sw - sqrt(ex)) < 2e-4, "%.10g vs %.10g", sw, sqrt(ex));
    /* a large cloud from q against the grid of q: close to 0 */
    gsl_rng *r = rng_new(2);
    size_t n = 20000;
    double *X = malloc(2 * n * sizeof *X);
    af_density_sample(&q, r, n, X);
    af_sliced_side c = {n, X, NULL, NULL}, e = {0, NULL, &g, r2}, f = {0, NULL, &g, r1};
    double s_same, s_other;
    af_sliced_w2(2, &c, &e, 20, rd, &s_same, NULL);
    af_sliced_w2(2, &c, &f, 20, rd, &s_other, NULL);
    cr_expect_lt(s_same, 0.03, "cloud vs its own density: %g", s_same);
    cr_expect_gt(s_other, 0.4, "cloud vs another density: %g", s_other);
    free(X);
    free(r1);
    free(r2);
    gsl_rng_free(r);
    gsl_rng_free(rd);
}

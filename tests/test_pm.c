/* Particle-mesh Gauss transform (attnflow/pm.h) against the direct O(n^2)
 * sum: d = 1, 2, 3, the tolerance controls the error, clouds at the edge of
 * the box and with far outliers (the box grows, nothing wraps), bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include "attnflow/pm.h"
#include "support/fixtures.h"

__attribute__((constructor)) static void one_thread(void) { omp_set_num_threads(1); }

static double *weights(size_t n, size_t k, int positive, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double *W = malloc(n * k * sizeof *W);
    for (size_t i = 0; i < n * k; i++)
        W[i] = positive ? 0.1 + gsl_rng_uniform(r) : 2 * gsl_rng_uniform(r) - 1;
    gsl_rng_free(r);
    return W;
}

static void direct(size_t n, size_t d, const double *X, double s, size_t k, const double *W,
                   double *out)
{
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < k; c++) {
            double acc = 0;
            for (size_t j = 0; j < n; j++) {
                double r2 = 0;
                for (size_t q = 0; q < d; q++) {
                    const double u = X[i * d + q] - X[j * d + q];
                    r2 += u * u;
                }
                acc += W[j * k + c] * exp(-r2 / (2 * s * s));
            }
            out[i * k + c] = acc;
        }
}

/* max_i,c |pm - direct| / (sum_j |W_jc| G_ij): the error relative to the
 * local mass the transform sees (pointwise relative for positive weights). */
static double pm_error(size_t n, size_t d, const double *X, double s, double tol, size_t k,
                       const double *W, af_pm_info *info)
{
    double *ref = malloc(n * k * sizeof *ref), *out = malloc(n * k * sizeof *out);
    double *absW = malloc(n * k * sizeof *absW), *mass = malloc(n * k * sizeof *mass);
    for (size_t q = 0; q < n * k; q++)
        absW[q] = fabs(W[q]);
    direct(n, d, X, s, k, W, ref);
    direct(n, d, X, s, k, absW, mass);
    cr_assert_eq(af_pm_gauss(n, d, X, s, tol, k, W, out, info), AF_SUCCESS, "%s", af_last_error());
    double e = 0;
    for (size_t q = 0; q < n * k; q++)
        e = fmax(e, fabs(out[q] - ref[q]) / mass[q]);
    free(ref);
    free(out);
    free(absW);
    free(mass);
    return e;
}

static void accuracy_case(size_t d, size_t n, double spread, double s)
{
    double *X = fx_gaussian_cloud(n, d, spread, 10 + d);
    double *W = weights(n, 3, 0, 20 + d);
    af_pm_info info;
    const double tols[] = {1e-4, 1e-10};
    double err[2];
    for (int t = 0; t < 2; t++) {
        err[t] = pm_error(n, d, X, s, tols[t], 3, W, &info);
        cr_expect(err[t] <= tols[t], "d = %zu tol %g: error %.3g", d, tols[t], err[t]);
        cr_expect(info.wrap_mass <= tols[t], "d = %zu tol %g: wrap %.3g", d, tols[t],
                  info.wrap_mass);
    }
    cr_expect(err[1] < 1e-3 * err[0], "d = %zu: tighter tol did not shrink the error "
              "(%.3g -> %.3g)", d, err[0], err[1]);
    free(X);
    free(W);
}

Test(pm, direct_sum_d1) { accuracy_case(1, 400, 1.0, 0.3); }
Test(pm, direct_sum_d2) { accuracy_case(2, 400, 1.0, 0.3); }
Test(pm, direct_sum_d3) { accuracy_case(3, 300, 1.0, 0.5); }

/* Positive weights: the error is pointwise relative, also at a point far
 * out (whose sum is essentially its own weight) and with points on the
 * boundary of the cloud's box. */
Test(pm, outliers_and_box_edge)
{
    for (size_t d = 1; d <= 3; d++) {
        const size_t n = 200;
        double *X = fx_gaussian_cloud(n, d, 0.5, 3);
        for (size_t q = 0; q < d; q++) {
            X[0 * d + q] = d < 3 ? 40.0 : 12.0; /* far outlier: the box grows to hold it */
            X[1 * d + q] = -3.0;        /* a corner of the box, near nobody */
        }
        double *W = weights(n, 1, 1, 4);
        af_pm_info info;
        const double e = pm_error(n, d, X, 0.4, 1e-8, 1, W, &info);
        cr_expect(e <= 1e-8, "d = %zu: relative error %.3g", d, e);
        cr_expect(info.wrap_mass <= 1e-8, "d = %zu: wrap %.3g", d, info.wrap_mass);
        cr_expect(info.lo[0] < -3.0 && info.lo[0] + (double)(info.grid[0] - 1) * info.h > X[0],
                  "d = %zu: the box does not hold the cloud", d);
        free(X);
        free(W);
    }
}

/* A workspace reused on moving clouds keeps its plan while the grid fits. */
Test(pm, plans_once_per_grid)
{
    const size_t n = 300, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 5), *W = weights(n, 1, 1, 6);
    double *out = malloc(n * sizeof *out);
    af_pm_ws *w = af_pm_alloc(d, 1);
    cr_assert(w);
    for (int step = 0; step < 5; step++) {
        for (size_t q = 0; q < n * d; q++)
            X[q] = 0.98 * X[q] + 0.3; /* drifts and shrinks */
        cr_assert_eq(af_pm_set(w, n, X, 0.3, 1e-8), AF_SUCCESS, "%s", af_last_error());
        cr_assert_eq(af_pm_apply(w, 1, W, out), AF_SUCCESS);
    }
    af_pm_info info;
    af_pm_get_info(w, &info);
    cr_expect_eq(info.plans, 1, "replanned %zu times", info.plans);
    af_pm_free(w);
    free(X);
    free(W);
    free(out);
}

Test(pm, bad_input)
{
    double X[4] = {0, 1, NAN, 2}, W[2] = {1, 1}, out[2];
    cr_expect_eq(af_pm_gauss(2, 2, X, 0.5, 1e-8, 1, W, out, NULL), AF_EDOM);
    cr_expect_null(af_pm_alloc(4, 1));
    X[2] = 0;
    W[1] = INFINITY;
    cr_expect_eq(af_pm_gauss(2, 2, X, 0.5, 1e-8, 1, W, out, NULL), AF_EDOM);
    W[1] = 1;
    cr_expect_eq(af_pm_gauss(2, 2, X, 0.0, 1e-8, 1, W, out, NULL), AF_EINVAL);
    cr_expect_eq(af_pm_gauss(2, 2, X, 0.5, 0.5, 1, W, out, NULL), AF_EINVAL);
}

/* One workspace, point sets of growing size and tightening tolerance (the
 * grid, window and caches are re-sized): each result matches the direct sum. */
Test(pm, workspace_reuse)
{
    af_pm_ws *w = af_pm_alloc(2, 2);
    cr_assert(w);
    const size_t ns[3] = {50, 400, 200};
    const double tols[3] = {1e-4, 1e-9, 1e-6};
    for (int k = 0; k < 3; k++) {
        const size_t n = ns[k];
        double *X = fx_gaussian_cloud(n, 2, 1.0, 30 + (unsigned long)k);
        double *W = weights(n, 2, 1, 40 + (unsigned long)k);
        double *ref = malloc(n * 2 * sizeof *ref), *out = malloc(n * 2 * sizeof *out);
        direct(n, 2, X, 0.4, 2, W, ref);
        cr_assert_eq(af_pm_set(w, n, X, 0.4, tols[k]), AF_SUCCESS, "%s", af_last_error());
        cr_assert_eq(af_pm_apply(w, 2, W, out), AF_SUCCESS, "%s", af_last_error());
        double e = 0;
        for (size_t q = 0; q < n * 2; q++)
            e = fmax(e, fabs(out[q] - ref[q]) / ref[q]);
        cr_expect(e <= tols[k], "n = %zu, tol %g: error %.3g", n, tols[k], e);
        free(X);
        free(W);
        free(ref);
        free(out);
    }
    af_pm_free(w);
}

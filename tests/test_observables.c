/* Observables: naive re-computations, the OT energy of docs/theory.md 4 (primal
 * value, finite-difference gradient = -velocity / n, decrease along the
 * Sinkhorn flow), clusters on constructed clouds. */
#include <criterion/criterion.h>
void openblas_set_num_threads(int num_threads); /* OpenBLAS (its cblas.h clashes with GSL's) */
#include <omp.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "attnflow/flow.h"
#include "attnflow/observables.h"

/* The cases are tiny (n <= 40): one thread each. Thread teams on a shared,
 * loaded 2-core machine cost far more than these problems themselves. */
__attribute__((constructor)) static void one_thread(void)
{
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

static double *gaussian(size_t n, size_t d, unsigned long seed, double scale)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double *X = malloc(n * d * sizeof *X);
    for (size_t k = 0; k < n * d; k++)
        X[k] = scale * gsl_ran_gaussian(r, 1.0) + (k % d == 0 ? 0.5 : 0.0);
    gsl_rng_free(r);
    return X;
}

static af_obs_ws *obs_ok(const af_obs_params *p)
{
    af_obs_ws *ws = af_obs_alloc(p);
    cr_assert_not_null(ws, "%s", af_last_error());
    return ws;
}

Test(observables, moments_and_rank_residual_match_naive)
{
    const size_t n = 37, d = 4;
    double *X = gaussian(n, d, 1, 1.3);
    double m[4], ref_m[4] = {0}, var = 0, res = 0, tot = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            ref_m[k] += X[i * d + k] / n;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) {
            double c = X[i * d + k] - ref_m[k];
            var += c * c / (n * d);
            res += c * c;
            tot += X[i * d + k] * X[i * d + k];
        }
    af_obs_mean(n, d, X, m);
    for (size_t k = 0; k < d; k++)
        cr_expect(fabs(m[k] - ref_m[k]) < 1e-14);
    cr_expect(fabs(af_obs_variance(n, d, X) - var) < 1e-13);
    cr_expect(fabs(af_obs_rank_residual(n, d, X) - sqrt(res / tot)) < 1e-13);
    /* rank one cloud 1 m^T: residual 0 */
    for (size_t i = 0; i < n; i++)
        memcpy(X + i * d, ref_m, sizeof ref_m);
    cr_expect(af_obs_rank_residual(n, d, X) < 1e-15);
    cr_expect(af_obs_variance(n, d, X) < 1e-30);
    free(X);
}

/* Naive SoftMax matrix and its column-sum error. */
Test(observables, colsum_error_of_softmax_matches_naive)
{
    const size_t n = 25, d = 3;
    double *X = gaussian(n, d, 2, 1.0);
    const double A[9] = {1.0, 0.3, 0.0, -0.2, 0.7, 0.1, 0.4, 0.0, 0.5};
    af_obs_params p = af_obs_params_default(n, d);
    p.scores.A = A;
    p.scores.beta = 1.5;
    af_obs_ws *ws = obs_ok(&p);
    af_obs_values v;
    cr_assert(af_obs_compute(ws, X, NULL, &v) == AF_SUCCESS, "%s", af_last_error());
    double *K = malloc(n * n * sizeof *K);
    for (size_t i = 0; i < n; i++) {
        double z = 0;
        for (size_t j = 0; j < n; j++) {
            double c = 0;
            for (size_t k = 0; k < d; k++)
                for (size_t l = 0; l < d; l++)
                    c += X[i * d + k] * A[k * d + l] * X[j * d + l];
            K[i * n + j] = exp(1.5 * c);
            z += K[i * n + j];
        }
        for (size_t j = 0; j < n; j++)
            K[i * n + j] /= z;
    }
    double ref = af_obs_colsum_error(n, n, K);
    cr_expect(ref > 0.1, "a non-trivial case (err %.3g)", ref);
    cr_expect(fabs(v.colsum_err - ref) < 1e-12, "%.15g vs %.15g", v.colsum_err, ref);
    /* A not symmetric: no OT energy */
    cr_expect(isnan(v.energy));
    free(K);
    af_obs_free(ws);
    free(X);
}

/* Primal value of (1/2) OT_eps(mu, mu) for the cost -C, eps = 1, from the
 * doubly stochastic K = n pi: sum pi (-C) + sum pi log(pi n^2). */
static double primal_energy(size_t n, const double *C, const double *K)
{
    double s = 0;
    for (size_t k = 0; k < n * n; k++) {
        double pi = K[k] / n;
        s += pi * (-C[k]) + (pi > 0 ? pi * log(pi * n * n) : 0);
    }
    return 0.5 * s;
}

Test(observables, energy_equals_primal_ot_value)
{
    const size_t n = 12, d = 2;
    double *X = gaussian(n, d, 3, 0.9);
    const double A[4] = {0.8, 0.3, 0.3, -0.4}; /* symmetric, indefinite */
    af_obs_params p = af_obs_params_default(n, d);
    p.scores.A = A;
    p.sinkhorn.tol = 1e-14;
    af_obs_ws *ws = obs_ok(&p);
    af_obs_values v;
    cr_assert(af_obs_compute(ws, X, NULL, &v) == AF_SUCCESS, "%s", af_last_error());
    /* K from the flow library (independent Sinkhorn call) and the scores. */
    af_flow_params fp = af_flow_params_default(n, d);
    fp.norm = AF_FLOW_SINKHORN;
    fp.scores.A = A;
    fp.sinkhorn.tol = 1e-14;
    af_flow_ws *fw = af_flow_alloc(&fp);
    cr_assert_not_null(fw);
    double K[144], C[144];
    cr_assert(af_flow_kernel(fw, X, K) == AF_SUCCESS, "%s", af_last_error());
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double c = 0;
            for (size_t k = 0; k < d; k++)
                for (size_t l = 0; l < d; l++)
                    c += X[i * d + k] * A[k * d + l] * X[j * d + l];
            C[i * n + j] = c;
        }
    double ref = primal_energy(n, C, K);
    cr_expect(fabs(v.energy - ref) < 1e-10, "dual %.15g vs primal %.15g", v.energy, ref);
    af_flow_free(fw);
    af_obs_free(ws);
    free(X);
}

static double energy_of(af_obs_ws *ws, const double *X)
{
    af_obs_values v;
    cr_assert(af_obs_compute(ws, X, NULL, &v) == AF_SUCCESS, "%s", af_last_error());
    return v.energy;
}

/* T(X)_i = -n dF_n/dx_i for Sinkhorn with W_V = A symmetric (docs/theory.md 4). */
Test(observables, energy_gradient_is_minus_velocity_over_n)
{
    const size_t n = 7, d = 2;
    double *X = gaussian(n, d, 4, 0.8);
    const double A[4] = {0.9, -0.4, -0.4, 0.6};
    const double beta = 1.3, eps = 0.7;
    double Aeff[4];
    for (int k = 0; k < 4; k++)
        Aeff[k] = beta / eps * A[k];
    af_obs_params op = af_obs_params_default(n, d);
    op.scores.A = A;
    op.scores.beta = beta;
    op.scores.eps = eps;
    op.sinkhorn.tol = 1e-15;
    op.sinkhorn.max_iters = 100000;
    af_obs_ws *ow = obs_ok(&op);
    af_flow_params fp = af_flow_params_default(n, d);
    fp.norm = AF_FLOW_SINKHORN;
    fp.scores = op.scores;
    fp.V = Aeff;
    fp.sinkhorn.tol = 1e-15;
    fp.sinkhorn.max_iters = 100000;
    af_flow_ws *fw = af_flow_alloc(&fp);
    cr_assert_not_null(fw, "%s", af_last_error());
    double vel[14];
    cr_assert(af_flow_velocity(fw, X, vel) == AF_SUCCESS, "%s", af_last_error());
    const double h = 1e-5;
    double worst = 0, scale = 0;
    for (size_t k = 0; k < n * d; k++) {
        double x0 = X[k];
        X[k] = x0 + h;
        double fp1 = energy_of(ow, X);
        X[k] = x0 - h;
        double fm1 = energy_of(ow, X);
        X[k] = x0;
        double grad = (fp1 - fm1) / (2 * h);
        worst = fmax(worst, fabs(-(double)n * grad - vel[k]));
        scale = fmax(scale, fabs(vel[k]));
    }
    cr_expect(scale > 0.1);
    cr_expect(worst < 1e-6 * scale, "max |T + n dF/dx| = %.3g (|T| up to %.3g)", worst, scale);
    af_flow_free(fw);
    af_obs_free(ow);
    free(X);
}

Test(observables, energy_decreases_along_sinkhorn_flow)
{
    const size_t n = 30, d = 2;
    double *X = gaussian(n, d, 5, 1.0);
    const double A[4] = {-0.5, 0.2, 0.2, -0.8}; /* W_V = A */
    af_obs_params op = af_obs_params_default(n, d);
    op.scores.A = A;
    af_obs_ws *ow = obs_ok(&op);
    af_flow_params fp = af_flow_params_default(n, d);
    fp.norm = AF_FLOW_SINKHORN;
    fp.scores.A = A;
    fp.V = A;
    af_flow_ws *fw = af_flow_alloc(&fp);
    cr_assert_not_null(fw);
    double prev = energy_of(ow, X);
    for (int s = 0; s < 20; s++) {
        cr_assert(af_flow_integrate(fw, X, 0.1, 0.02) == AF_SUCCESS, "%s", af_last_error());
        double e = energy_of(ow, X);
        cr_expect(e < prev, "step %d: F_n %.15g -> %.15g", s, prev, e);
        prev = e;
    }
    af_flow_free(fw);
    af_obs_free(ow);
    free(X);
}

Test(observables, clusters_distances_inner_products)
{
    /* Three groups of 4 tokens within 1e-4 of a centre, centres far apart. */
    const size_t n = 12, d = 3;
    const double centres[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, -1}};
    double X[36];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            X[i * d + k] = centres[i % 3][k] + 1e-5 * (double)((i * 7 + k * 3) % 5);
    af_obs_params p = af_obs_params_default(n, d);
    p.cluster_tol = 1e-3;
    p.energy = 0;
    af_obs_ws *ws = obs_ok(&p);
    size_t c;
    double dmin, ipmax;
    cr_assert(af_obs_geometry(ws, X, &c, &dmin, &ipmax) == AF_SUCCESS);
    cr_expect_eq(c, 3);
    double rd = INFINITY, rip = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            double s = 0, ip = 0;
            for (size_t k = 0; k < d; k++) {
                s += (X[i * d + k] - X[j * d + k]) * (X[i * d + k] - X[j * d + k]);
                ip += X[i * d + k] * X[j * d + k];
            }
            rd = fmin(rd, sqrt(s));
            rip = fmax(rip, ip);
        }
    cr_expect(fabs(dmin - rd) < 1e-15 && dmin > 0, "%.17g vs %.17g", dmin, rd);
    cr_expect(fabs(ipmax - rip) < 1e-15);
    af_obs_values v;
    cr_assert(af_obs_compute(ws, X, NULL, &v) == AF_SUCCESS);
    cr_expect_eq(v.clusters, 3);
    cr_expect(isnan(v.energy), "energy disabled");
    /* chain: tokens 1e-3/2 apart link into one cluster (single linkage) */
    double Y[10 * 1];
    for (int i = 0; i < 10; i++)
        Y[i] = 5e-4 * i;
    af_obs_params q = af_obs_params_default(10, 1);
    q.energy = 0;
    af_obs_ws *w1 = obs_ok(&q);
    cr_assert(af_obs_geometry(w1, Y, &c, NULL, NULL) == AF_SUCCESS);
    cr_expect_eq(c, 1);
    Y[5] += 1.0; /* breaks the chain into 3 */
    for (int i = 6; i < 10; i++)
        Y[i] += 2.0;
    cr_assert(af_obs_geometry(w1, Y, &c, NULL, NULL) == AF_SUCCESS);
    cr_expect_eq(c, 3);
    af_obs_free(w1);
    af_obs_free(ws);
    /* a single token: no pairs */
    af_obs_params one = af_obs_params_default(1, 2);
    one.energy = 0;
    af_obs_ws *w2 = obs_ok(&one);
    double Z[2] = {1, 2};
    cr_assert(af_obs_geometry(w2, Z, &c, &dmin, &ipmax) == AF_SUCCESS);
    cr_expect(c == 1 && isnan(dmin) && isnan(ipmax));
    af_obs_free(w2);
}

Test(observables, rejects_non_finite_tokens)
{
    af_obs_params p = af_obs_params_default(3, 1);
    af_obs_ws *ws = obs_ok(&p);
    double X[3] = {0, NAN, 1};
    af_obs_values v;
    cr_expect_neq(af_obs_compute(ws, X, NULL, &v), AF_SUCCESS);
    af_obs_free(ws);
}

/* Sizes whose BLAS int arguments or n x n byte count would overflow are
 * rejected with AF_EINVAL's message before anything is allocated. */
Test(observables, rejects_oversized_problems)
{
    const size_t sizes[][2] = {{(size_t)INT_MAX + 1, 1}, {3, (size_t)INT_MAX + 1},
                               {INT_MAX, 1}, {(size_t)1 << 29, INT_MAX}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        af_obs_params p = af_obs_params_default(sizes[k][0], sizes[k][1]);
        af_clear_error();
        af_obs_ws *ws = af_obs_alloc(&p);
        cr_expect_null(ws, "n = %zu, d = %zu", sizes[k][0], sizes[k][1]);
        af_obs_free(ws);
        cr_expect(strstr(af_last_error(), "too large") != NULL, "n = %zu, d = %zu: %s",
                  sizes[k][0], sizes[k][1], af_last_error());
    }
}

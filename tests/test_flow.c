/* Particle flows (docs/theory.md 3, 7): exact equiangular solutions, the mean
 * invariant of Sinkhorn flows, convergence orders, sphere invariance,
 * Sinkhorn with one normalisation = SoftMax, rank collapse. */
#include <criterion/criterion.h>
void openblas_set_num_threads(int num_threads); /* OpenBLAS (its cblas.h clashes with GSL's) */
#include <omp.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_odeiv2.h>
#include <gsl/gsl_rng.h>
#include "attnflow/flow.h"
#include "attnflow/init.h"
#include "attnflow/observables.h"

/* The cases are tiny (n <= 40): one thread each. Thread teams on a shared,
 * loaded 2-core machine cost far more than these problems themselves. */
__attribute__((constructor)) static void one_thread(void)
{
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

static double *cloud(af_init_kind kind, size_t n, size_t d, unsigned long seed)
{
    af_init_params ip = af_init_params_default();
    ip.kind = kind;
    ip.n = n;
    ip.d = d;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double *X = malloc(n * d * sizeof *X);
    cr_assert(af_init_cloud(&ip, r, X) == AF_SUCCESS, "%s", af_last_error());
    gsl_rng_free(r);
    return X;
}

static af_flow_ws *alloc_ok(const af_flow_params *p)
{
    af_flow_ws *ws = af_flow_alloc(p);
    cr_assert_not_null(ws, "af_flow_alloc: %s", af_last_error());
    return ws;
}

static double max_abs_diff(size_t m, const double *a, const double *b)
{
    double e = 0;
    for (size_t k = 0; k < m; k++)
        e = fmax(e, fabs(a[k] - b[k]));
    return e;
}

/* ---- equiangular tokens: the scalar ODE of docs/theory.md 3 ---- */

typedef struct {
    double n, beta;
    int usa;
} rho_params;

static int rho_rhs(double t, const double y[], double dy[], void *params)
{
    (void)t;
    const rho_params *q = params;
    double r = y[0], n = q->n, b = q->beta;
    double common = exp(b * r) * (1 - r) * (1 + (n - 1) * r);
    dy[0] = q->usa ? 2.0 / n * common : 2.0 * common / (exp(b) + (n - 1) * exp(b * r));
    return GSL_SUCCESS;
}

/* Independent reference: the scalar ODE with GSL's rk8pd at tight tolerance. */
static double rho_exact(size_t n, double beta, int usa, double rho0, double T)
{
    rho_params q = {(double)n, beta, usa};
    gsl_odeiv2_system sys = {rho_rhs, NULL, 1, &q};
    gsl_odeiv2_driver *drv = gsl_odeiv2_driver_alloc_y_new(&sys, gsl_odeiv2_step_rk8pd, 1e-3,
                                                           1e-14, 1e-14);
    double t = 0, y[1] = {rho0};
    cr_assert(gsl_odeiv2_driver_apply(drv, &t, T, y) == GSL_SUCCESS);
    gsl_odeiv2_driver_free(drv);
    return y[0];
}

/* Max over pairs i != j of |<x_i, x_j> - rho|. */
static double equiangular_error(size_t n, size_t d, const double *X, double rho)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double s = 0;
            for (size_t k = 0; k < d; k++)
                s += X[i * d + k] * X[j * d + k];
            e = fmax(e, fabs(s - rho));
        }
    return e;
}

static void check_equiangular(af_flow_norm norm, int usa)
{
    const size_t n = 8, d = 8;
    const double beta = 1, rho0 = 0.1, T = 3, h = 0.01;
    af_init_params ip = af_init_params_default();
    ip.kind = AF_INIT_EQUIANGULAR;
    ip.n = n;
    ip.d = d;
    ip.rho0 = rho0;
    double X[64];
    cr_assert(af_init_cloud(&ip, NULL, X) == AF_SUCCESS);
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = norm;
    p.usa = usa;
    p.scores.beta = beta;
    p.geometry = AF_FLOW_SPHERE;
    p.integrator = AF_FLOW_RK4;
    p.sinkhorn.tol = 1e-13;
    af_flow_ws *ws = alloc_ok(&p);
    /* Compare at intermediate times too, not only at T. */
    double t = 0;
    for (int seg = 1; seg <= 3; seg++) {
        cr_assert(af_flow_integrate(ws, X, 1.0, h) == AF_SUCCESS, "%s", af_last_error());
        t += 1.0;
        double rho = rho_exact(n, beta, usa, rho0, t);
        double err = equiangular_error(n, d, X, rho);
        cr_expect(err < 1e-6, "t = %g: rho = %.12f, max |<x_i,x_j> - rho| = %.3g", t, rho, err);
    }
    af_flow_free(ws);
    (void)T;
}

Test(flow_equiangular, reference_value_of_theory)
{
    /* docs/theory.md: n = 8, rho0 = 0.1, beta = 1, T = 3 gives rho(3) = 0.9860205734 (SA). */
    double rho = rho_exact(8, 1.0, 0, 0.1, 3.0);
    cr_expect(fabs(rho - 0.9860205734) < 1e-9, "SA rho(3) = %.12f", rho);
}

Test(flow_equiangular, softmax_sa) { check_equiangular(AF_FLOW_SOFTMAX, 0); }
Test(flow_equiangular, softmax_usa) { check_equiangular(AF_FLOW_SOFTMAX, 1); }
Test(flow_equiangular, sinkhorn_sa) { check_equiangular(AF_FLOW_SINKHORN, 0); }

Test(flow_equiangular, usa_is_rejected_for_sinkhorn)
{
    af_flow_params p = af_flow_params_default(4, 2);
    p.norm = AF_FLOW_SINKHORN;
    p.usa = 1;
    cr_expect_null(af_flow_alloc(&p));
    cr_expect(strstr(af_last_error(), "USA") != NULL, "message: %s", af_last_error());
}

/* ---- velocity against a naive implementation ---- */

static void naive_velocity(size_t n, size_t d, const double *X, const double *A, const double *V,
                           double beta, double eps, int l2, int usa, int skip, int sphere,
                           double *out)
{
    double *K = malloc(n * n * sizeof *K);
    for (size_t i = 0; i < n; i++) {
        double z = 0;
        for (size_t j = 0; j < n; j++) {
            double c = 0;
            if (l2) {
                for (size_t k = 0; k < d; k++)
                    c -= (X[i * d + k] - X[j * d + k]) * (X[i * d + k] - X[j * d + k]) / 2;
            } else {
                for (size_t k = 0; k < d; k++)
                    for (size_t l = 0; l < d; l++)
                        c += X[i * d + k] * A[k * d + l] * X[j * d + l];
            }
            K[i * n + j] = exp(beta / eps * c);
            z += K[i * n + j];
        }
        for (size_t j = 0; j < n; j++)
            K[i * n + j] /= usa ? (double)n : z;
    }
    for (size_t i = 0; i < n; i++) {
        double y[16] = {0};
        for (size_t j = 0; j < n; j++)
            for (size_t k = 0; k < d; k++)
                y[k] += K[i * n + j] * X[j * d + k];
        if (skip)
            for (size_t k = 0; k < d; k++)
                y[k] -= X[i * d + k];
        for (size_t k = 0; k < d; k++) {
            double s = 0;
            for (size_t l = 0; l < d; l++)
                s += V[k * d + l] * y[l];
            out[i * d + k] = s;
        }
        if (sphere) {
            double s = 0;
            for (size_t k = 0; k < d; k++)
                s += X[i * d + k] * out[i * d + k];
            for (size_t k = 0; k < d; k++)
                out[i * d + k] -= s * X[i * d + k];
        }
    }
    free(K);
}

Test(flow_velocity, matches_naive_softmax_variants)
{
    const size_t n = 13, d = 3;
    double *X = cloud(AF_INIT_GAUSSIAN, n, d, 3);
    const double A[9] = {0.5, 0.2, -0.1, 0.3, -0.4, 0.0, 0.1, 0.6, 0.2};
    const double V[9] = {1.0, -0.5, 0.2, 0.1, 0.7, 0.0, -0.3, 0.2, 0.4};
    double vel[39], ref[39];
    for (int variant = 0; variant < 6; variant++) {
        int l2 = variant == 1, usa = variant == 2, skip = variant == 3, sphere = variant >= 4;
        af_flow_params p = af_flow_params_default(n, d);
        p.scores.kind = l2 ? AF_SCORES_L2 : AF_SCORES_DOT;
        p.scores.A = l2 ? NULL : A;
        p.scores.beta = 1.7;
        p.scores.eps = 0.8;
        p.V = V;
        p.usa = usa;
        p.skip = skip || variant == 5;
        p.geometry = sphere ? AF_FLOW_SPHERE : AF_FLOW_EUCLID;
        af_flow_ws *ws = alloc_ok(&p);
        double Xs[39];
        memcpy(Xs, X, sizeof Xs);
        cr_assert(af_flow_project(ws, Xs) == AF_SUCCESS);
        cr_assert(af_flow_velocity(ws, Xs, vel) == AF_SUCCESS, "%s", af_last_error());
        naive_velocity(n, d, Xs, A, V, 1.7, 0.8, l2, usa, p.skip, sphere, ref);
        double err = max_abs_diff(n * d, vel, ref);
        cr_expect(err < 1e-12, "variant %d: max error %.3g", variant, err);
        af_flow_free(ws);
    }
    free(X);
}

Test(flow_velocity, sinkhorn_kernel_is_doubly_stochastic)
{
    const size_t n = 20, d = 2;
    double *X = cloud(AF_INIT_GAUSSIAN, n, d, 5);
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = AF_FLOW_SINKHORN;
    p.sinkhorn.tol = 1e-12;
    af_flow_ws *ws = alloc_ok(&p);
    double K[400], Y[40], KX[40];
    cr_assert(af_flow_kernel(ws, X, K) == AF_SUCCESS, "%s", af_last_error());
    for (size_t i = 0; i < n; i++) {
        double r = 0, c = 0;
        for (size_t j = 0; j < n; j++) {
            r += K[i * n + j];
            c += K[j * n + i];
        }
        cr_expect(fabs(r - 1) < 1e-11 && fabs(c - 1) < 1e-11, "row %zu: %.15f col %.15f", i, r, c);
    }
    /* attention output = K X (W_V = I) */
    cr_assert(af_flow_attention(ws, X, Y) == AF_SUCCESS);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) {
            double s = 0;
            for (size_t j = 0; j < n; j++)
                s += K[i * n + j] * X[j * d + k];
            KX[i * d + k] = s;
        }
    /* two solves (kernel, then attention warm-started from it), each
     * stopped within tol of the doubly stochastic limit: their K X can
     * differ by about 2 tol max |x| */
    double xmax = 0;
    for (size_t k = 0; k < n * d; k++)
        xmax = fmax(xmax, fabs(X[k]));
    cr_expect(max_abs_diff(n * d, Y, KX) < 2 * p.sinkhorn.tol * xmax, "%.3g vs %.3g",
              max_abs_diff(n * d, Y, KX), 2 * p.sinkhorn.tol * xmax);
    af_flow_free(ws);
    free(X);
}

/* ---- the mean of a Sinkhorn flow: m' = W_V m ---- */

static void expm_times(size_t d, const double *M, double t, const double *v, double *out)
{
    gsl_matrix *a = gsl_matrix_alloc(d, d), *e = gsl_matrix_alloc(d, d);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            gsl_matrix_set(a, i, j, t * M[i * d + j]);
    cr_assert(gsl_linalg_exponential_ss(a, e, GSL_PREC_DOUBLE) == GSL_SUCCESS);
    for (size_t i = 0; i < d; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += gsl_matrix_get(e, i, j) * v[j];
        out[i] = s;
    }
    gsl_matrix_free(a);
    gsl_matrix_free(e);
}

static double mean_error_after_flow(af_flow_norm norm)
{
    const size_t n = 24, d = 3;
    double *X = cloud(AF_INIT_GAUSSIAN, n, d, 11);
    for (size_t i = 0; i < n; i++)
        X[i * d] += 0.7; /* a non-zero mean, so that m(t) moves */
    const double A[9] = {0.4, 0.3, 0.0, -0.2, 0.5, 0.1, 0.0, 0.2, -0.3}; /* not symmetric */
    const double V[9] = {0.2, -0.6, 0.1, 0.5, 0.1, 0.0, 0.0, 0.3, -0.4}; /* not normal */
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = norm;
    p.scores.A = A;
    p.V = V;
    p.sinkhorn.tol = 1e-13;
    af_flow_ws *ws = alloc_ok(&p);
    double m0[3], m1[3], ref[3];
    af_obs_mean(n, d, X, m0);
    cr_assert(af_flow_integrate(ws, X, 1.0, 0.01) == AF_SUCCESS, "%s", af_last_error());
    af_obs_mean(n, d, X, m1);
    expm_times(d, V, 1.0, m0, ref);
    af_flow_free(ws);
    free(X);
    return max_abs_diff(d, m1, ref);
}

Test(flow_mean, sinkhorn_mean_follows_value_matrix)
{
    double err = mean_error_after_flow(AF_FLOW_SINKHORN);
    cr_expect(err < 1e-9, "|m(1) - exp(W_V) m(0)| = %.3g", err);
}

Test(flow_mean, softmax_mean_does_not)
{
    double err = mean_error_after_flow(AF_FLOW_SOFTMAX);
    cr_expect(err > 1e-3, "|m(1) - exp(W_V) m(0)| = %.3g (expected a clear deviation)", err);
}

/* ---- convergence orders ---- */

static void smooth_flow(af_flow_integrator integ, double h, double *X)
{
    const size_t n = 10, d = 2;
    double *X0 = cloud(AF_INIT_GAUSSIAN, n, d, 7);
    const double V[4] = {-0.5, 1.0, -1.0, -0.5}; /* rotating and contracting */
    af_flow_params p = af_flow_params_default(n, d);
    p.V = V;
    p.integrator = integ;
    p.atol = p.rtol = 1e-13;
    af_flow_ws *ws = alloc_ok(&p);
    cr_assert(af_flow_integrate(ws, X0, 1.0, h) == AF_SUCCESS, "%s", af_last_error());
    memcpy(X, X0, n * d * sizeof *X);
    af_flow_free(ws);
    free(X0);
}

/* Least-squares slope of log(err) against log(h). */
static double fitted_order(af_flow_integrator integ, const double *hs, size_t m)
{
    double ref[20], X[20];
    smooth_flow(AF_FLOW_RK4, 1.0 / 4096, ref);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t k = 0; k < m; k++) {
        smooth_flow(integ, hs[k], X);
        double e = max_abs_diff(20, X, ref);
        cr_assert(e > 1e-13, "error %.3g at h = %g is at round-off: choose larger steps", e, hs[k]);
        double x = log(hs[k]), y = log(e);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

Test(flow_order, euler_is_first_order)
{
    const double hs[] = {1.0 / 40, 1.0 / 80, 1.0 / 160, 1.0 / 320};
    double q = fitted_order(AF_FLOW_EULER, hs, 4);
    cr_expect(fabs(q - 1) < 0.1, "fitted order %.3f", q);
}

Test(flow_order, heun_is_second_order)
{
    const double hs[] = {1.0 / 20, 1.0 / 40, 1.0 / 80, 1.0 / 160};
    double q = fitted_order(AF_FLOW_HEUN, hs, 4);
    cr_expect(fabs(q - 2) < 0.1, "fitted order %.3f", q);
}

Test(flow_order, rk4_is_fourth_order)
{
    const double hs[] = {1.0 / 5, 1.0 / 10, 1.0 / 20, 1.0 / 40};
    double q = fitted_order(AF_FLOW_RK4, hs, 4);
    cr_expect(fabs(q - 4) < 0.2, "fitted order %.3f", q);
}

Test(flow_order, adaptive_meets_its_tolerance)
{
    double ref[20], X[20];
    smooth_flow(AF_FLOW_RK4, 1.0 / 4096, ref);
    smooth_flow(AF_FLOW_ADAPTIVE, 0.1, X);
    double e = max_abs_diff(20, X, ref);
    cr_expect(e < 1e-9, "adaptive (tol 1e-13) vs fine RK4: %.3g", e);
}

/* ---- sphere ---- */

Test(flow_sphere, norms_stay_one_for_every_integrator)
{
    const size_t n = 30, d = 3;
    for (int integ = AF_FLOW_EULER; integ <= AF_FLOW_ADAPTIVE; integ++)
        for (int norm = 0; norm < 2; norm++) {
            double *X = cloud(AF_INIT_SPHERE, n, d, 2);
            af_flow_params p = af_flow_params_default(n, d);
            p.norm = (af_flow_norm)norm;
            p.scores.beta = 3;
            p.geometry = AF_FLOW_SPHERE;
            p.integrator = (af_flow_integrator)integ;
            p.atol = p.rtol = 1e-7;
            af_flow_ws *ws = alloc_ok(&p);
            cr_assert(af_flow_integrate(ws, X, 2.0, 0.05) == AF_SUCCESS, "%s", af_last_error());
            double worst = 0;
            for (size_t i = 0; i < n; i++) {
                double s = 0;
                for (size_t k = 0; k < d; k++)
                    s += X[i * d + k] * X[i * d + k];
                worst = fmax(worst, fabs(sqrt(s) - 1));
            }
            cr_expect(worst < 1e-14, "%s, norm %d: max ||x_i| - 1| = %.3g",
                      af_flow_integrator_name((af_flow_integrator)integ), norm, worst);
            /* the tokens moved (the test would pass trivially otherwise) */
            double *X0 = cloud(AF_INIT_SPHERE, n, d, 2);
            cr_expect(max_abs_diff(n * d, X, X0) > 1e-2);
            free(X0);
            af_flow_free(ws);
            free(X);
        }
}

/* ---- Sinkhorn with one normalisation is SoftMax ---- */

Test(flow_sinkhorn, one_normalisation_equals_softmax)
{
    const size_t n = 16, d = 2;
    const double A[4] = {0.8, 0.5, -0.3, 1.1};
    double *X1 = cloud(AF_INIT_MIXTURE, n, d, 4), *X2 = cloud(AF_INIT_MIXTURE, n, d, 4);
    af_flow_params p = af_flow_params_default(n, d);
    p.scores.A = A;
    p.value = -0.5;
    af_flow_ws *soft = alloc_ok(&p);
    p.norm = AF_FLOW_SINKHORN;
    p.sinkhorn.iters = 1;
    af_flow_ws *sk = alloc_ok(&p);
    cr_assert(af_flow_integrate(soft, X1, 1.0, 0.05) == AF_SUCCESS, "%s", af_last_error());
    cr_assert(af_flow_integrate(sk, X2, 1.0, 0.05) == AF_SUCCESS, "%s", af_last_error());
    double err = max_abs_diff(n * d, X1, X2);
    cr_expect(err < 1e-12, "SoftMax vs Sinkhorn(1): %.3g", err);
    /* and two normalisations do differ */
    af_flow_free(sk);
    p.sinkhorn.iters = 2;
    sk = alloc_ok(&p);
    double *X3 = cloud(AF_INIT_MIXTURE, n, d, 4);
    cr_assert(af_flow_integrate(sk, X3, 1.0, 0.05) == AF_SUCCESS);
    cr_expect(max_abs_diff(n * d, X1, X3) > 1e-4);
    af_flow_free(soft);
    af_flow_free(sk);
    free(X1);
    free(X2);
    free(X3);
}

Test(flow_sinkhorn, warm_starts_save_iterations_and_agree)
{
    const size_t n = 40, d = 2;
    double *Xw = cloud(AF_INIT_GAUSSIAN, n, d, 9), *Xc = cloud(AF_INIT_GAUSSIAN, n, d, 9);
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = AF_FLOW_SINKHORN;
    p.sinkhorn.tol = 1e-9;
    p.value = -1;
    af_flow_ws *warm = alloc_ok(&p);
    p.warm_start = 0;
    af_flow_ws *cold = alloc_ok(&p);
    cr_assert(af_flow_integrate(warm, Xw, 0.5, 0.01) == AF_SUCCESS, "%s", af_last_error());
    cr_assert(af_flow_integrate(cold, Xc, 0.5, 0.01) == AF_SUCCESS, "%s", af_last_error());
    af_flow_stats sw, sc;
    af_flow_get_stats(warm, &sw);
    af_flow_get_stats(cold, &sc);
    cr_expect_eq(sw.evaluations, 200);
    /* measured: warm 982 vs cold 2800 with the accelerated symmetric step
     * (the acceleration shortens cold solves more than warm ones) */
    cr_expect(sw.sinkhorn_iterations * 5 < sc.sinkhorn_iterations * 2,
              "warm %zu vs cold %zu normalisations", sw.sinkhorn_iterations, sc.sinkhorn_iterations);
    cr_log_info("RK4: warm %zu vs cold %zu normalisations", sw.sinkhorn_iterations, sc.sinkhorn_iterations);
    cr_expect(max_abs_diff(n * d, Xw, Xc) < 1e-8);
    af_flow_free(warm);
    af_flow_free(cold);
    free(Xw);
    free(Xc);
}

/* ---- rank collapse (Dong et al.) ---- */

Test(flow_rank, pure_attention_collapses_skip_does_not)
{
    const size_t n = 32, d = 8, depth = 12;
    double *Xp = cloud(AF_INIT_GAUSSIAN, n, d, 21), *Xs = cloud(AF_INIT_GAUSSIAN, n, d, 21);
    for (int norm = 0; norm < 2; norm++) {
        af_flow_params p = af_flow_params_default(n, d);
        p.norm = (af_flow_norm)norm;
        p.integrator = AF_FLOW_EULER; /* X_{l+1} = X_l + h K X_l W_V */
        p.scores.eps = (double)d;     /* the usual 1/sqrt(d) scaling of Q and K */
        af_flow_ws *ws = alloc_ok(&p);
        double r0 = af_obs_rank_residual(n, d, Xp);
        for (size_t l = 0; l < depth; l++) {
            cr_assert(af_flow_pure_layer(ws, Xp) == AF_SUCCESS, "%s", af_last_error());
            cr_assert(af_flow_step(ws, Xs, 0.1) == AF_SUCCESS, "%s", af_last_error());
        }
        double rp = af_obs_rank_residual(n, d, Xp), rs = af_obs_rank_residual(n, d, Xs);
        cr_log_info("norm %d: pure %.3g skip %.3g start %.3g", norm, rp, rs, r0);
        cr_expect(rp < 1e-6 * r0, "norm %d: pure residual %.3g (start %.3g)", norm, rp, r0);
        cr_expect(rs > 0.2 * r0, "norm %d: skip residual %.3g (start %.3g)", norm, rs, r0);
        af_flow_free(ws);
        free(Xp);
        free(Xs);
        Xp = cloud(AF_INIT_GAUSSIAN, n, d, 21);
        Xs = cloud(AF_INIT_GAUSSIAN, n, d, 21);
    }
    free(Xp);
    free(Xs);
}

/* ---- errors ---- */

Test(flow_errors, bad_parameters_are_reported)
{
    af_flow_params p = af_flow_params_default(0, 2);
    cr_expect_null(af_flow_alloc(&p));
    p = af_flow_params_default(4, 2);
    p.scores.eps = 0;
    cr_expect_null(af_flow_alloc(&p));
    cr_expect(strstr(af_last_error(), "eps") != NULL, "%s", af_last_error());
    p = af_flow_params_default(4, 2);
    const double V[4] = {1, NAN, 0, 1};
    p.V = V;
    cr_expect_null(af_flow_alloc(&p));
    p = af_flow_params_default(4, 2);
    af_flow_ws *ws = alloc_ok(&p);
    double X[8] = {0}, Y[8];
    cr_expect_eq(af_flow_step(ws, X, -1), AF_EINVAL);
    cr_expect_eq(af_flow_velocity(ws, X, X), AF_EINVAL);
    cr_expect_eq(af_flow_velocity(ws, X, Y), AF_SUCCESS);
    af_flow_free(ws);
    /* a blow-up is reported, not silently written */
    p.value = 200;
    ws = alloc_ok(&p);
    double Z[8] = {1, 0, 0, 1, -1, 0, 0, -1};
    af_status st = af_flow_integrate(ws, Z, 50, 0.5);
    cr_expect_eq(st, AF_ENUMERIC, "status %d: %s", st, af_last_error());
    af_flow_free(ws);
}

/* Sizes whose int BLAS arguments or byte counts would overflow are
 * rejected up front with AF_EINVAL's message (before any allocation is
 * tried, so none of these may return a workspace or an out-of-memory error). */
Test(flow_errors, oversized_problems_are_rejected)
{
    const size_t big = (size_t)INT_MAX + 1, half = (size_t)1 << 31;
    const size_t sizes[][2] = {{big, 2}, {2, big}, {INT_MAX, 1}, {half - 1, half - 1},
                               {(size_t)1 << 29, INT_MAX}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int norm = 0; norm < 2; norm++) {
            af_flow_params p = af_flow_params_default(sizes[k][0], sizes[k][1]);
            p.norm = norm ? AF_FLOW_SINKHORN : AF_FLOW_SOFTMAX;
            af_clear_error();
            af_flow_ws *ws = af_flow_alloc(&p);
            cr_expect_null(ws, "n = %zu, d = %zu", sizes[k][0], sizes[k][1]);
            af_flow_free(ws);
            cr_expect(strstr(af_last_error(), "n and d must be <=") != NULL
                          || strstr(af_last_error(), "overflow") != NULL,
                      "n = %zu, d = %zu: %s", sizes[k][0], sizes[k][1], af_last_error());
        }
}

/* The fused, tiled SoftMax against the materialised kernel (af_scores +
 * af_softmax, then K X W_V^T): several row blocks (n = 300 > tile 256 for
 * d > 16) and the row-kernel path (d <= 16) with a parallel team (n > 256). */
Test(flow_velocity, fused_softmax_matches_materialised_kernel)
{
    const size_t n = 300;
    const size_t dims[] = {3, 20};
    omp_set_num_threads(2); /* exercise the parallel row kernels (this test only) */
    for (size_t id = 0; id < 2; id++) {
        const size_t d = dims[id];
        double *X = cloud(AF_INIT_GAUSSIAN, n, d, 13);
        double *A = malloc(d * d * sizeof *A), *V = malloc(d * d * sizeof *V);
        for (size_t k = 0; k < d * d; k++) {
            A[k] = 0.3 * sin(1.0 + (double)k) / sqrt((double)d);
            V[k] = 0.5 * cos(2.0 + 3.0 * (double)k);
        }
        for (int variant = 0; variant < 3; variant++) {
            af_flow_params p = af_flow_params_default(n, d);
            p.scores.kind = variant == 1 ? AF_SCORES_L2 : AF_SCORES_DOT;
            p.scores.A = variant == 1 ? NULL : A;
            p.scores.eps = 2.0 * (double)d;
            p.usa = variant == 2;
            p.V = V;
            af_flow_ws *ws = alloc_ok(&p);
            double *K = malloc(n * n * sizeof *K), *vel = malloc(n * d * sizeof *vel),
                   *ref = calloc(n * d, sizeof *ref);
            cr_assert(af_flow_velocity(ws, X, vel) == AF_SUCCESS, "%s", af_last_error());
            cr_assert(af_flow_kernel(ws, X, K) == AF_SUCCESS, "%s", af_last_error());
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < d; k++) {
                    double y = 0;
                    for (size_t l = 0; l < d; l++) {
                        double kx = 0;
                        for (size_t j = 0; j < n; j++)
                            kx += K[i * n + j] * X[j * d + l];
                        y += V[k * d + l] * kx;
                    }
                    ref[i * d + k] = y;
                }
            double err = max_abs_diff(n * d, vel, ref), scale = 0;
            for (size_t k = 0; k < n * d; k++)
                scale = fmax(scale, fabs(ref[k]));
            cr_expect(err < 1e-12 * fmax(1, scale), "d = %zu, variant %d: %.3g (scale %.3g)", d,
                      variant, err, scale);
            free(K);
            free(vel);
            free(ref);
            af_flow_free(ws);
        }
        free(A);
        free(V);
        free(X);
    }
}

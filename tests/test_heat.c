/* Spectral heat solver against the closed-form solutions; mass; periodic
 * wrap; grid files; samplers. */
#include <criterion/criterion.h>
#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <gsl/gsl_rng.h>
#include "attnflow/heat.h"

static double max_abs_diff(size_t n, const double *a, const double *b)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* Solver from node values vs the exact solution on the nodes. */
static double solver_error(const af_grid *g, const af_density *p, double kappa, double t,
                           int analytic_start)
{
    size_t M = af_grid_size(g);
    double *rho0 = malloc(M * sizeof *rho0), *num = malloc(M * sizeof *num),
           *ex = malloc(M * sizeof *ex);
    af_heat_plan *plan = af_heat_plan_alloc(g, FFTW_ESTIMATE);
    cr_assert_not_null(plan, "%s", af_last_error());
    if (analytic_start) {
        cr_assert_eq(af_heat_set_density(plan, p), AF_SUCCESS, "%s", af_last_error());
    } else {
        cr_assert_eq(af_density_on_grid(p, 0, g, rho0), AF_SUCCESS);
        cr_assert_eq(af_heat_set(plan, rho0), AF_SUCCESS);
    }
    cr_assert_eq(af_heat_evolve(plan, kappa, t, num), AF_SUCCESS);
    cr_assert_eq(af_density_on_grid(p, kappa * t, g, ex), AF_SUCCESS);
    double e = max_abs_diff(M, num, ex);
    af_heat_plan_free(plan);
    free(rho0);
    free(num);
    free(ex);
    return e;
}

Test(heat, gaussian_1d_matches_exact)
{
    af_grid g = af_grid_cube(1, 512, 16);
    af_density p = af_density_default();
    double m = 0.4;
    p.mean = &m;
    p.sigma = 0.7;
    double e = solver_error(&g, &p, 1.0, 0.5, 0);
    cr_expect_lt(e, 1e-8, "1-D max error %g", e);
    /* and it is not trivially zero-error: a wrong kappa is far off */
    size_t M = af_grid_size(&g);
    double *a = malloc(M * sizeof *a), *b = malloc(M * sizeof *b);
    af_density_on_grid(&p, 0.5, &g, a);
    af_density_on_grid(&p, 0.5 * 1.01, &g, b);
    cr_expect_gt(max_abs_diff(M, a, b), 1e-4);
    free(a);
    free(b);
}

Test(heat, gaussian_2d_matches_exact)
{
    af_grid g = af_grid_cube(2, 256, 12);
    af_density p = af_density_default();
    double m[2] = {0.3, -0.2};
    p.d = 2;
    p.mean = m;
    p.sigma = 0.8;
    double e = solver_error(&g, &p, 2.0, 0.3, 0);
    cr_expect_lt(e, 1e-8, "2-D max error %g", e);
    e = solver_error(&g, &p, 2.0, 0.3, 1);
    cr_expect_lt(e, 1e-8, "2-D analytic start, max error %g", e);
}

Test(heat, rectangular_box_2d)
{
    /* different N and L per coordinate exercise the index bookkeeping */
    af_grid g = {2, {192, 256}, {-10, -14}, {22, 26}};
    af_density p = af_density_default();
    double m[2] = {0.5, 1.0};
    p.d = 2;
    p.mean = m;
    double e = solver_error(&g, &p, 1.0, 0.7, 0);
    cr_expect_lt(e, 1e-8, "max error %g", e);
}

Test(heat, uniform_square_analytic_start)
{
    /* discontinuous start: the closed-form spectrum makes it exact for t > 0 */
    af_density p = af_density_default();
    double c[2] = {0.25, -0.5};
    p.kind = AF_DENSITY_UNIFORM;
    p.mean = c;
    p.half_width = 1.3;
    af_grid g1 = af_grid_cube(1, 1024, 10);
    double e1 = solver_error(&g1, &p, 1.0, 0.05, 1);
    cr_expect_lt(e1, 1e-8, "1-D uniform max error %g", e1);
    p.d = 2;
    af_grid g2 = af_grid_cube(2, 256, 8);
    double e2 = solver_error(&g2, &p, 1.0, 0.05, 1);
    cr_expect_lt(e2, 1e-8, "2-D uniform max error %g", e2);
    /* node values of the discontinuous start alias: a visibly larger error */
    double e3 = solver_error(&g2, &p, 1.0, 0.05, 0);
    cr_expect_gt(e3, 1e-4, "node-value start of a discontinuous density should alias (%g)", e3);
}

Test(heat, mixture_2d)
{
    af_density p = af_density_default();
    double centres[6] = {-1.5, 0, 1.5, 0.5, 0, -1.5};
    double w[3] = {1, 2, 1};
    p.kind = AF_DENSITY_MIXTURE;
    p.d = 2;
    p.components = 3;
    p.centres = centres;
    p.weights = w;
    p.width = 0.4;
    af_grid g = af_grid_cube(2, 256, 10);
    cr_expect_lt(solver_error(&g, &p, 1.0, 0.25, 0), 1e-8);
    cr_expect_lt(solver_error(&g, &p, 1.0, 0.25, 1), 1e-8);
}

Test(heat, mass_conserved)
{
    af_grid g = af_grid_cube(2, 128, 6);
    size_t M = af_grid_size(&g);
    double *rho = malloc(M * sizeof *rho);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    for (size_t j = 0; j < M; j++) /* rough, non-smooth data */
        rho[j] = gsl_rng_uniform(r);
    double m0 = af_grid_mass(&g, rho);
    af_heat_plan *plan = af_heat_plan_alloc(&g, FFTW_ESTIMATE);
    af_heat_set(plan, rho);
    cr_expect(fabs(af_heat_initial_mass(plan) - m0) <= 1e-12 * m0);
    double t[4] = {0.001, 0.1, 1, 10};
    for (int k = 0; k < 4; k++) {
        af_heat_evolve(plan, 1.5, t[k], rho);
        double m = af_grid_mass(&g, rho);
        cr_expect(fabs(m - m0) <= 1e-12 * m0, "t = %g: mass %.17g vs %.17g", t[k], m, m0);
    }
    af_heat_plan_free(plan);
    gsl_rng_free(r);
    free(rho);
}

Test(heat, plan_reused_many_times)
{
    /* evolving to t1 then t2 from the stored spectrum equals a fresh plan */
    af_grid g = af_grid_cube(1, 256, 12);
    af_density p = af_density_default();
    size_t M = af_grid_size(&g);
    double *a = malloc(M * sizeof *a), *b = malloc(M * sizeof *b), *r0 = malloc(M * sizeof *r0);
    af_density_on_grid(&p, 0, &g, r0);
    af_heat_plan *p1 = af_heat_plan_alloc(&g, FFTW_ESTIMATE);
    af_heat_set(p1, r0);
    for (int k = 0; k < 5; k++)
        af_heat_evolve(p1, 1, 0.1 * k, a);
    af_heat_evolve(p1, 1, 0.3, a);
    af_heat_plan *p2 = af_heat_plan_alloc(&g, FFTW_ESTIMATE);
    af_heat_set(p2, r0);
    af_heat_evolve(p2, 1, 0.3, b);
    cr_expect_eq(max_abs_diff(M, a, b), 0.0);
    /* t = 0 gives back the initial node values */
    af_heat_evolve(p2, 1, 0, b);
    cr_expect_lt(max_abs_diff(M, b, r0), 1e-15);
    af_heat_plan_free(p1);
    af_heat_plan_free(p2);
    free(a);
    free(b);
    free(r0);
}

Test(heat, periodic_wrap_check)
{
    af_density p = af_density_default();
    p.d = 2;
    /* small box: wrap visible; the doubled-box estimate equals the true
     * (periodic - free space) error */
    af_grid gs = af_grid_cube(2, 64, 3);
    size_t M = af_grid_size(&gs);
    double *r0 = malloc(M * sizeof *r0), *num = malloc(M * sizeof *num), *ex = malloc(M * sizeof *ex);
    af_density_on_grid(&p, 0, &gs, r0);
    double l1, linf;
    cr_assert_eq(af_heat_wrap_error(&gs, r0, 1, 0.5, &l1, &linf), AF_SUCCESS, "%s", af_last_error());
    cr_expect_gt(linf, 1e-3);
    af_heat_plan *plan = af_heat_plan_alloc(&gs, FFTW_ESTIMATE);
    af_heat_set(plan, r0);
    af_heat_evolve(plan, 1, 0.5, num);
    af_density_on_grid(&p, 0.5, &gs, ex);
    double true_linf = max_abs_diff(M, num, ex);
    cr_expect(fabs(linf - true_linf) < 0.05 * true_linf, "estimate %g vs true %g", linf, true_linf);
    af_heat_plan_free(plan);
    free(r0);
    free(num);
    free(ex);
    /* large box: negligible */
    af_grid gb = af_grid_cube(2, 128, 12);
    M = af_grid_size(&gb);
    r0 = malloc(M * sizeof *r0);
    af_density_on_grid(&p, 0, &gb, r0);
    cr_assert_eq(af_heat_wrap_error(&gb, r0, 1, 0.5, &l1, &linf), AF_SUCCESS);
    cr_expect_lt(l1, 1e-12);
    cr_expect_lt(linf, 1e-12);
    free(r0);
}

Test(heat, exact_solution_solves_heat_equation_any_d)
{
    /* d/ds rho = Laplacian(rho) by central differences, in d = 3 and 5 */
    double m[5] = {0.1, -0.2, 0.3, 0.0, 0.5};
    double c[15] = {1, 0, 0, 0, 0, -1, 0.5, 0, 0, 0, 0, 0, 1, 1, 0};
    af_density ps[3];
    for (int k = 0; k < 3; k++)
        ps[k] = af_density_default();
    ps[0].d = 5;
    ps[0].mean = m;
    ps[1].kind = AF_DENSITY_UNIFORM;
    ps[1].d = 3;
    ps[1].mean = m;
    ps[2].kind = AF_DENSITY_MIXTURE;
    ps[2].d = 5;
    ps[2].components = 3;
    ps[2].centres = c;
    double x[5] = {0.3, 0.1, -0.4, 0.2, 0.1};
    for (int k = 0; k < 3; k++) {
        af_density *p = &ps[k];
        double s = 0.2, hs = 1e-4, hx = 1e-3;
        double dt = (af_density_eval(p, s + hs, x) - af_density_eval(p, s - hs, x)) / (2 * hs);
        double lap = 0, f0 = af_density_eval(p, s, x);
        for (size_t i = 0; i < p->d; i++) {
            double xp[5], xm[5];
            for (size_t j = 0; j < 5; j++)
                xp[j] = xm[j] = x[j];
            xp[i] += hx;
            xm[i] -= hx;
            lap += (af_density_eval(p, s, xp) - 2 * f0 + af_density_eval(p, s, xm)) / (hx * hx);
        }
        cr_expect(fabs(dt - lap) < 1e-5 * fabs(f0) + 1e-9 + 1e-5 * fabs(dt),
                  "kind %d: d/ds %.10g vs Laplacian %.10g", k, dt, lap);
    }
    /* normalised Gaussian in d = 3: variance (sigma^2 + 2s) */
    cr_expect(fabs(af_density_variance(&ps[0], 0.25, 0) - 1.5) < 1e-15);
}

Test(heat, grid_file_round_trip)
{
    af_grid g = {2, {5, 4}, {-1, 2}, {2.5, 2}};
    size_t M = af_grid_size(&g);
    double *table = malloc(3 * M * sizeof *table), *rho = malloc(M * sizeof *rho);
    for (size_t j = 0; j < M; j++) {
        double x[2];
        af_grid_node(&g, j, x);
        table[3 * j] = x[0];
        table[3 * j + 1] = x[1];
        table[3 * j + 2] = (double)j;
    }
    af_grid h;
    cr_assert_eq(af_grid_from_table(M, 3, table, &h, rho), AF_SUCCESS, "%s", af_last_error());
    cr_expect_eq(h.N[0], 5);
    cr_expect_eq(h.N[1], 4);
    cr_expect(fabs(h.L[0] - 2.5) < 1e-14 && fabs(h.L[1] - 2) < 1e-14);
    cr_expect(h.lo[0] == -1 && h.lo[1] == 2);
    for (size_t j = 0; j < M; j++)
        cr_expect_eq(rho[j], (double)j);
    table[3 * 6 + 1] += 0.01; /* break the spacing */
    cr_expect_eq(af_grid_from_table(M, 3, table, &h, rho), AF_EFORMAT);
    cr_expect_eq(af_grid_from_table(M, 4, table, &h, rho), AF_EFORMAT);
    free(table);
    free(rho);
}

Test(heat, samplers_have_the_right_moments)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 11);
    size_t n = 40000;
    double *X = malloc(2 * n * sizeof *X);
    /* mixture sampler vs its closed-form variance */
    double centres[4] = {-2, 0, 2, 1};
    af_density p = af_density_default();
    p.kind = AF_DENSITY_MIXTURE;
    p.d = 2;
    p.components = 2;
    p.centres = centres;
    cr_assert_eq(af_density_sample(&p, r, n, X), AF_SUCCESS);
    for (size_t k = 0; k < 2; k++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++)
            m += X[2 * i + k] / (double)n;
        for (size_t i = 0; i < n; i++)
            v += (X[2 * i + k] - m) * (X[2 * i + k] - m) / (double)n;
        double ve = af_density_variance(&p, 0, k);
        /* sd of the sample variance, sqrt((mu4 - var^2) / n), with the central
         * fourth moment of the equal-weight mixture in closed form */
        double mc = 0, mu4 = 0, w2 = p.width * p.width;
        for (size_t j = 0; j < 2; j++)
            mc += centres[2 * j + k] / 2;
        for (size_t j = 0; j < 2; j++) {
            double c = centres[2 * j + k] - mc;
            mu4 += (c * c * c * c + 6 * c * c * w2 + 3 * w2 * w2) / 2;
        }
        double sd = sqrt((mu4 - ve * ve) / (double)n);
        cr_expect(fabs(v - ve) < 5 * sd, "coord %zu: %g vs %g (sd %g)", k, v, ve, sd);
    }
    /* grid sampler from a Gaussian grid density (cells of width dx add dx^2/12) */
    af_grid g = af_grid_cube(1, 200, 8);
    double *rho = malloc(200 * sizeof *rho);
    af_density q = af_density_default();
    q.sigma = 1.2;
    af_density_on_grid(&q, 0, &g, rho);
    cr_assert_eq(af_grid_sample(&g, rho, r, n, X), AF_SUCCESS);
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
        m += X[i] / (double)n;
    for (size_t i = 0; i < n; i++)
        v += (X[i] - m) * (X[i] - m) / (double)n;
    double dx = af_grid_step(&g, 0), ve = 1.44 + dx * dx / 12;
    cr_expect(fabs(m) < 6 * 1.2 / sqrt((double)n), "mean %g", m);
    cr_expect(fabs(v - ve) < 6 * ve * sqrt(2.0 / (double)n), "variance %g vs %g", v, ve);
    free(rho);
    free(X);
    gsl_rng_free(r);
}

Test(heat, errors_are_reported)
{
    af_grid g = af_grid_cube(3, 16, 1);
    cr_expect_null(af_heat_plan_alloc(&g, FFTW_ESTIMATE));
    cr_expect(strstr(af_last_error(), "dimension") != NULL, "%s", af_last_error());
    g = af_grid_cube(1, 16, 1);
    af_heat_plan *p = af_heat_plan_alloc(&g, FFTW_ESTIMATE);
    double rho[16];
    cr_expect_eq(af_heat_evolve(p, 1, 1, rho), AF_EINVAL);
    af_density dens = af_density_default();
    dens.d = 2;
    cr_expect_eq(af_heat_set_density(p, &dens), AF_EBADLEN);
    dens.d = 1;
    dens.sigma = -1;
    cr_expect_eq(af_heat_set_density(p, &dens), AF_EINVAL);
    for (int j = 0; j < 16; j++)
        rho[j] = j == 3 ? NAN : 1;
    cr_expect_eq(af_heat_set(p, rho), AF_EDOM);
    rho[3] = 1;
    af_heat_set(p, rho);
    cr_expect_eq(af_heat_evolve(p, -1, 1, rho), AF_EINVAL);
    af_heat_plan_free(p);
}

/* ---- the heat-diffusion limit of attention (docs/theory.md 5) ----
 * Reference case at n = 400 (the full n = 800 case is tests/long_heat.c):
 * d = 2, x ~ N(0, I), L2 scores eps = 0.05, v_i = -(2/eps)(sum_j K_ij x_j - x_i),
 * Euler h = 0.005 to T = 0.5. Measured (seeds 1-3): Sinkhorn increment
 * 0.913-0.921 (0.951 at n = 800: the shortfall shrinks with n), SoftMax-L2
 * 1.50-1.51 (1.67 at n = 800). */
#include "attnflow/flow.h"
#include "attnflow/metrics.h"
#include "support/heat_case.h"

/* The reference case at n = 400 (16 sliced-W2 directions). */
static double heat_increment(size_t n, af_flow_norm norm, unsigned long seed, double *sw_k1,
                             double *sw_k2, double *mean_drift)
{
    fx_heat_outcome o = fx_heat_reference(n, norm, seed, 16);
    *sw_k1 = o.sw_k1;
    *sw_k2 = o.sw_k2;
    *mean_drift = o.drift;
    return o.inc;
}

Test(heat_limit, sinkhorn_is_heat_softmax_l2_twice, .timeout = 120)
{
    double sk1, sk2, sm1, sm2, dk, dm;
    double inc_sk = heat_increment(400, AF_FLOW_SINKHORN, 1, &sk1, &sk2, &dk);
    double inc_sm = heat_increment(400, AF_FLOW_SOFTMAX, 1, &sm1, &sm2, &dm);
    /* heat equation: var(T) - var(0) = 2T = 1 per coordinate */
    cr_expect(fabs(inc_sk - 1.0) < 0.10, "Sinkhorn increment %.4f (2T = 1)", inc_sk);
    /* SoftMax-L2 diffuses clearly faster (toward 4T = 2) */
    cr_expect(inc_sm > 1.3 * inc_sk && inc_sm < 2.1, "SoftMax-L2 increment %.4f vs Sinkhorn %.4f",
              inc_sm, inc_sk);
    /* the Sinkhorn cloud sits nearer the kappa = 1 PDE than the kappa = 2 one,
     * and nearer it than the SoftMax cloud does (at n = 400 the SoftMax
     * increment, 1.5, is still halfway between 1 and 2: tests/long_heat.c
     * checks its side at n = 800) */
    cr_expect_lt(sk1, sk2, "Sinkhorn cloud: SW2 to kappa=1 %.4f, to kappa=2 %.4f", sk1, sk2);
    cr_expect_lt(sk1, sm1, "SW2 to kappa=1: Sinkhorn %.4f, SoftMax %.4f", sk1, sm1);
    /* doubly stochastic K: the mean does not move (sum_i v_i = -(2/eps) sum_j
     * (col_j - 1) x_j = 0); the Sinkhorn tolerance 1e-9 bounds the drift by
     * T (2/eps) 1e-9 max|x| ~ 1e-7 (measured 1e-13). SoftMax moves it (columns do
     * not sum to 1). */
    cr_expect_lt(dk, 1e-6, "Sinkhorn mean drift %g", dk);
    cr_expect_gt(dm, 1e-5, "SoftMax mean drift %g", dm); /* measured 5e-4 (seed 1) */
    cr_log_info("increments: Sinkhorn %.4f, SoftMax-L2 %.4f; mean drift %.3g vs %.3g", inc_sk, inc_sm,
                dk, dm);
}

/* ---- mean-field (n -> infinity) attention flow from a Gaussian ---- */

Test(heat_limit, meanfield_softmax_implicit_solution)
{
    /* ds/dt = 4 s / (s + eps)  <=>  s + eps log s = s0 + eps log s0 + 4 t */
    double eps = 0.1, s0 = 0.8, T = 0.7, sT;
    cr_assert_eq(af_attention_gaussian_variance(0, eps, s0, T, &sT), AF_SUCCESS);
    double lhs = sT + eps * log(sT), rhs = s0 + eps * log(s0) + 4 * T;
    cr_expect(fabs(lhs - rhs) < 1e-10, "%.15g vs %.15g", lhs, rhs);
    cr_expect_eq(af_attention_gaussian_variance(1, -1, s0, T, &sT), AF_EINVAL);
}

Test(heat_limit, meanfield_limits_and_bias)
{
    double sT;
    /* eps -> 0: the heat equation (+2T) and twice it (+4T) */
    af_attention_gaussian_variance(1, 1e-7, 1.0, 0.5, &sT);
    cr_expect(fabs(sT - 2.0) < 1e-6, "Sinkhorn, eps -> 0: %.10g", sT);
    af_attention_gaussian_variance(0, 1e-7, 1.0, 0.5, &sT);
    cr_expect(fabs(sT - 3.0) < 1e-6, "SoftMax, eps -> 0: %.10g", sT);
    /* O(eps) bias of the initial rate: Sinkhorn 2 (1 - eps/(4 s)), SoftMax 4 (1 - eps/s) */
    double eps = 1e-2, h = 1e-6;
    af_attention_gaussian_variance(1, eps, 1.0, h, &sT);
    cr_expect(fabs((sT - 1) / h - 2 * (1 - eps / 4)) < 2e-4, "Sinkhorn rate %.10g", (sT - 1) / h);
    af_attention_gaussian_variance(0, eps, 1.0, h, &sT);
    cr_expect(fabs((sT - 1) / h - 4 * (1 - eps)) < 2e-3, "SoftMax rate %.10g", (sT - 1) / h);
}

/* The Euler-step limit: one step is the closed form s (1 + h (2/eps)(1 -
 * r))^2 (SoftMax: 1 - r = eps / (s + eps)); as h -> 0 it tends to the ODE
 * value at first order (halving h halves the gap), from above here; a T
 * that is not a multiple of h ends with a shorter step. */
Test(heat_limit, meanfield_euler_steps)
{
    const double eps = 0.05, s0 = 1.0;
    double s1, ode, e[3];
    cr_assert_eq(af_attention_gaussian_variance_euler(0, eps, s0, 0.005, 0.005, &s1), AF_SUCCESS);
    const double g = 1 + 0.005 * (2 / eps) * eps / (s0 + eps);
    cr_expect(fabs(s1 - s0 * g * g) < 1e-15, "%.17g vs %.17g", s1, s0 * g * g);
    for (int sk = 0; sk < 2; sk++) {
        cr_assert_eq(af_attention_gaussian_variance(sk, eps, s0, 0.5, &ode), AF_SUCCESS);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(af_attention_gaussian_variance_euler(sk, eps, s0, 0.5, 0.005 / (1 << k),
                                                              &e[k]), AF_SUCCESS);
        cr_expect_gt(e[0] - ode, 0, "%s: Euler above the ODE", sk ? "Sinkhorn" : "SoftMax");
        for (int k = 0; k < 2; k++) {
            const double ratio = (e[k] - ode) / (e[k + 1] - ode);
            cr_expect(ratio > 1.9 && ratio < 2.1, "%s: gap ratio %.4f", sk ? "Sinkhorn" : "SoftMax",
                      ratio);
        }
        cr_log_info("%s: ODE %.6f, Euler h = 0.005 %.6f (bias %+.5f)", sk ? "Sinkhorn" : "SoftMax",
                    ode - s0, e[0] - s0, e[0] - ode);
    }
    /* T = 0.012 with h = 0.005: steps 0.005, 0.005, 0.002 */
    double a, b, c;
    af_attention_gaussian_variance_euler(1, eps, s0, 0.010, 0.005, &a);
    af_attention_gaussian_variance_euler(1, eps, a, 0.002, 0.002, &b);
    af_attention_gaussian_variance_euler(1, eps, s0, 0.012, 0.005, &c);
    cr_expect(fabs(b - c) < 1e-14, "%.17g vs %.17g", b, c);
    cr_expect_eq(af_attention_gaussian_variance_euler(1, eps, s0, 0.5, 0, &a), AF_EINVAL);
    cr_expect_eq(af_attention_gaussian_variance_euler(1, eps, s0, 1e3, 1e-9, &a), AF_EINVAL);
}

Test(heat_limit, meanfield_sinkhorn_matches_grid_sinkhorn)
{
    /* Independent check of the Sinkhorn barycentre slope r: entropic
     * self-transport of N(0, s) for the kernel exp(-(x-y)^2/(2 eps)),
     * discretised on a fine grid and solved by the symmetric fixed point. */
    const size_t N = 1201;
    const double s = 1.0, eps = 0.1, L = 9.0, dx = 2 * L / (double)(N - 1);
    double *x = malloc(N * sizeof *x), *w = malloc(N * sizeof *w), *f = calloc(N, sizeof *f);
    for (size_t i = 0; i < N; i++) {
        x[i] = -L + (double)i * dx;
        w[i] = exp(-0.5 * x[i] * x[i] / s) / sqrt(2 * M_PI * s) * dx;
    }
    /* plan P_ij = w_i w_j exp(f_i + f_j - (x_i - x_j)^2/(2 eps)), rows sum to w_i:
     * f_i <- (f_i - log sum_j w_j exp(f_j - (x_i-x_j)^2/(2 eps))) / 2 */
    double *g = malloc(N * sizeof *g), *E = malloc(N * N * sizeof *E);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            double z = x[i] - x[j];
            E[i * N + j] = w[j] * exp(-0.5 * z * z / eps);
        }
    for (int it = 0; it < 100; it++) { /* contracts at rate <= 1/2 */
        for (size_t j = 0; j < N; j++)
            g[j] = exp(f[j]);
        for (size_t i = 0; i < N; i++) {
            double acc = 0;
            for (size_t j = 0; j < N; j++)
                acc += E[i * N + j] * g[j];
            f[i] = 0.5 * (f[i] - log(acc)); /* f[i] is read only by row i: Jacobi update is safe via g */
        }
    }
    free(E);
    /* barycentre at x = 0.5 (away from the tails): E[y | x] = r x */
    size_t i0 = (size_t)llround((0.5 + L) / dx);
    double num = 0, den = 0;
    for (size_t j = 0; j < N; j++) {
        double z = x[i0] - x[j], k = w[j] * exp(f[j] - 0.5 * z * z / eps);
        num += k * x[j];
        den += k;
    }
    double r_grid = num / den / x[i0];
    double sT, h = 1e-7;
    af_attention_gaussian_variance(1, eps, s, h, &sT);
    double r_mf = 1 - (sT - s) / h * eps / (4 * s);
    double k = s / eps, r_formula = (sqrt(1 + 4 * k * k) - 1) / (2 * k);
    cr_expect(fabs(r_grid - r_formula) < 1e-6, "grid r %.10g vs formula %.10g", r_grid, r_formula);
    cr_expect(fabs(r_mf - r_formula) < 1e-6, "rate-implied r %.10g vs formula %.10g", r_mf, r_formula);
    free(x);
    free(w);
    free(f);
    free(g);
}

Test(heat, degenerate_grids_are_refused)
{
    /* a box so small that the cell volume underflows: the spectral solver
     * would divide by 0 and return NaN densities */
    af_grid g = af_grid_cube(2, 256, 1e-300);
    cr_expect_eq(af_grid_check(&g), AF_EINVAL);
    cr_expect_null(af_heat_plan_alloc(&g, FFTW_ESTIMATE));
    /* 1-D: the volume is fine but |xi|^2 of the finest mode overflows */
    g = af_grid_cube(1, 256, 1e-300);
    cr_expect_null(af_heat_plan_alloc(&g, FFTW_ESTIMATE));
    cr_expect_neq(strstr(af_last_error(), "too small"), NULL, "%s", af_last_error());
    /* FFTW takes int sizes */
    g = af_grid_cube(1, (size_t)INT_MAX + 1, 1);
    cr_expect_eq(af_grid_check(&g), AF_EINVAL);
    g = af_grid_cube(2, 65536, 1);
    cr_expect_eq(af_grid_check(&g), AF_EINVAL, "65536^2 nodes exceed INT_MAX");
    g = af_grid_cube(2, 64, 1);
    cr_expect_eq(af_grid_check(&g), AF_SUCCESS);
    /* a spectrum that overflows: a huge box makes the volume infinite */
    g = af_grid_cube(1, 64, 1e308);
    cr_expect_eq(af_grid_check(&g), AF_EINVAL, "L = 2e308 is not finite");
}


/* bench_pm: particle-mesh attention (attnflow/pm.h) in the heat-limit flow
 * dx_i/dt = -(2/eps) (sum_j K_ij x_j - x_i), K Sinkhorn of L2 scores,
 * eps = 0.05, d = 2, tokens ~ N(0, 0.5^2 I), Euler h = 0.005, Sinkhorn tol
 * 1e-9, PM tolerance 1e-8:
 *  - one warm flow step (the 3 steps after 4 untimed ones, averaged; wall
 *    and CPU seconds) with PM at n = 1e5 and 1e6, and with today's dense
 *    kernel at n = 2e4 in the same run; ratio = dense(2e4) / pm(n) step time
 *    (targets: 0.5 s at 1e5, 5 s at 1e6);
 *  - accuracy at the default tolerance against the dense kernel at n = 1e4,
 *    d = 1, 2, 3: max |v_pm - v_dense| / max |v_dense| of the velocity and of
 *    the attention output K X; and at n = 1000, 4000 (d = 2) the velocity
 *    error against the requested tolerance 1e-4 ... 1e-12.
 * Output lines: name value unit baseline ratio.
 * Environment: BENCH_PM_MAX_N caps the PM n (default 1000000),
 * BENCH_PM_DENSE_N the dense step's n (default 20000; 0 skips it),
 * BENCH_PM_ACC_N the accuracy n (default 10000; 0 skips). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/flow.h"
#include "attnflow/pm.h"

static size_t env_size(const char *name, size_t def)
{
    const char *v = getenv(name);
    return v ? (size_t)strtod(v, NULL) : def;
}

static double *cloud(size_t n, size_t d, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double *X = malloc(n * d * sizeof *X);
    for (size_t i = 0; X && i < n * d; i++)
        X[i] = gsl_ran_gaussian(r, 0.5);
    gsl_rng_free(r);
    return X;
}

static af_flow_params heat_params(size_t n, size_t d, double pm_tol)
{
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = AF_FLOW_SINKHORN;
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.05;
    p.skip = 1;
    p.value = -2.0 / 0.05;
    p.integrator = AF_FLOW_EULER;
    p.pm_tol = pm_tol;
    return p;
}

/* Seconds and Sinkhorn iterations per warm Euler step; NAN on failure. */
static double step_time(size_t n, size_t d, double pm_tol, size_t warmups, size_t steps,
                        double *iters, double *cpu_sec)
{
    af_flow_params p = heat_params(n, d, pm_tol);
    af_flow_ws *ws = af_flow_alloc(&p);
    double *X = cloud(n, d, 1);
    double sec = NAN;
    if (!ws || !X) {
        fprintf(stderr, "bench_pm: %s\n", ws ? "out of memory" : af_last_error());
        goto done;
    }
    for (size_t s = 0; s < warmups; s++)
        if (af_flow_step(ws, X, 0.005)) {
            fprintf(stderr, "bench_pm: %s\n", af_last_error());
            goto done;
        }
    af_flow_stats st;
    af_flow_get_stats(ws, &st);
    const size_t it0 = st.sinkhorn_iterations;
    const double t0 = now(), c0 = cpu();
    for (size_t s = 0; s < steps; s++)
        if (af_flow_step(ws, X, 0.005)) {
            fprintf(stderr, "bench_pm: %s\n", af_last_error());
            goto done;
        }
    sec = (now() - t0) / (double)steps;
    *cpu_sec = (cpu() - c0) / (double)steps;
    af_flow_get_stats(ws, &st);
    *iters = (double)(st.sinkhorn_iterations - it0) / (double)steps;
    if (pm_tol > 0) {
        af_pm_info info;
        af_flow_pm_info(ws, &info);
        printf("pm_grid_n%.0e %zu points 0 0 (window %zu, wrap %.2g)\n", (double)n, info.points,
               info.window, info.wrap_mass);
    }
done:
    af_flow_free(ws);
    free(X);
    return sec;
}

static double rel_err(size_t m, const double *a, const double *b)
{
    double e = 0, s = 0;
    for (size_t k = 0; k < m; k++) {
        e = fmax(e, fabs(a[k] - b[k]));
        s = fmax(s, fabs(b[k]));
    }
    return e / s;
}

/* PM vs dense at n tokens in d dimensions: velocity and K X errors at the
 * default tolerance. */
static void accuracy(size_t n, size_t d)
{
    double *X = cloud(n, d, 2), *v[2], *y[2];
    for (int b = 0; b < 2; b++) {
        v[b] = malloc(n * d * sizeof(double));
        y[b] = malloc(n * d * sizeof(double));
        af_flow_params p = heat_params(n, d, b ? AF_PM_TOL_DEFAULT : 0);
        p.sinkhorn.tol = 1e-12; /* the dense reference: converged well below 1e-8 */
        af_flow_ws *ws = af_flow_alloc(&p);
        if (!ws || af_flow_velocity(ws, X, v[b]) || af_flow_attention(ws, X, y[b])) {
            fprintf(stderr, "bench_pm: %s\n", af_last_error());
            exit(1);
        }
        af_flow_free(ws);
    }
    printf("pm_velocity_relerr_d%zu_n%zu %.3g rel %g %.3g\n", d, n, rel_err(n * d, v[1], v[0]),
           AF_PM_TOL_DEFAULT, rel_err(n * d, v[1], v[0]) / AF_PM_TOL_DEFAULT);
    printf("pm_KX_relerr_d%zu_n%zu %.3g rel %g %.3g\n", d, n, rel_err(n * d, y[1], y[0]),
           AF_PM_TOL_DEFAULT, rel_err(n * d, y[1], y[0]) / AF_PM_TOL_DEFAULT);
    for (int b = 0; b < 2; b++) {
        free(v[b]);
        free(y[b]);
    }
    free(X);
}

/* The velocity error against the requested tolerance (d = 2). */
static void tol_sweep(size_t n)
{
    const size_t d = 2;
    double *X = cloud(n, d, 3), *vd = malloc(n * d * sizeof *vd), *vp = malloc(n * d * sizeof *vp);
    af_flow_params p = heat_params(n, d, 0);
    p.sinkhorn.tol = 1e-13;
    af_flow_ws *ws = af_flow_alloc(&p);
    if (!ws || af_flow_velocity(ws, X, vd)) {
        fprintf(stderr, "bench_pm: %s\n", af_last_error());
        exit(1);
    }
    af_flow_free(ws);
    for (double tol = 1e-4; tol > 1e-13; tol *= 1e-2) {
        p.pm_tol = tol;
        ws = af_flow_alloc(&p);
        if (!ws || af_flow_velocity(ws, X, vp)) {
            fprintf(stderr, "bench_pm: %s\n", af_last_error());
            exit(1);
        }
        af_pm_info info;
        af_flow_pm_info(ws, &info);
        af_flow_free(ws);
        const double e = rel_err(n * d, vp, vd);
        printf("pm_velocity_relerr_n%zu_tol%.0e %.3g rel %g %.3g (grid %zu, window %zu)\n", n, tol,
               e, tol, e / tol, info.points, info.window);
    }
    free(X);
    free(vd);
    free(vp);
}

int main(void)
{
    const size_t max_n = env_size("BENCH_PM_MAX_N", 1000000);
    const size_t dense_n = env_size("BENCH_PM_DENSE_N", 20000);
    const size_t acc_n = env_size("BENCH_PM_ACC_N", 10000);
    printf("# bench_pm: heat-limit Sinkhorn flow step, d = 2, eps = 0.05, Euler h = 0.005, "
           "%d threads\n", omp_get_max_threads());
    printf("# columns: name value unit baseline ratio (ratio: dense step time / this)\n");
    double dense = NAN, it, c;
    if (dense_n) {
        dense = step_time(dense_n, 2, 0, 1, 1, &it, &c);
        printf("dense_step_n%zu %.4f s 0 1 (%.1f Sinkhorn iterations, %.2f CPU s)\n", dense_n,
               dense, it, c);
    }
    const size_t ns[] = {100000, 1000000};
    for (int k = 0; k < 2; k++) {
        if (ns[k] > max_n)
            continue;
        const double t = step_time(ns[k], 2, AF_PM_TOL_DEFAULT, 4, 3, &it, &c);
        printf("pm_step_n%zu %.4f s %.4f %.3g (%.1f Sinkhorn iterations, %.2f CPU s; target "
               "%s)\n", ns[k], t, dense, dense / t, it, c, ns[k] == 100000 ? "0.5 s" : "5 s");
    }
    if (acc_n) {
        for (size_t d = 1; d <= 3; d++)
            accuracy(acc_n, d);
        tol_sweep(1000);
        tol_sweep(4000);
    }
    return 0;
}

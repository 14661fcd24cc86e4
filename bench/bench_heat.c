/* make bench: speed of the heat-limit experiments (issue 5).
 *  1. the reference heat case of docs/theory.md 5: n = 800 tokens x ~ N(0, I) in
 *     2-D, L2 scores eps = 0.05, v = -(2/eps)(K X - X), Euler h = 0.005 to
 *     T = 0.5 (100 steps), Sinkhorn tol 1e-9 with warm starts, and SoftMax;
 *     baseline: the same loop in numpy (bench/heat_numpy.py, Debian's
 *     /usr/bin/python3, one BLAS thread);
 *  2. n = 10000 to T = 0.5: measured per warm step over a few steps and
 *     projected to the 100 steps (set BENCH_HEAT_FULL=1 to run all 100);
 *     the per-step time at n = 1000, 2000, 4000 gives the scaling exponent;
 *  3. the PDE on a 512 x 512 grid: FFTW planning (estimate, measure) and one
 *     solve (multiply + inverse real FFT); baseline numpy rfft2/irfft2;
 *  4. the FFT kernel density estimate of 10000 particles on 512 x 512.
 * Lines: name value unit baseline ratio (ratio = baseline / value, > 1 means
 * attnflow is faster). CPU seconds are printed beside wall seconds where the
 * build machine is shared. */
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/flow.h"
#include "attnflow/heat.h"
#include "attnflow/metrics.h"

static void line(const char *name, double value, const char *unit, double baseline)
{
    double ratio = (baseline > 0 && value > 0) ? baseline / value : NAN;
    printf("%-40s %12.4g %-8s %12.4g %8.3f\n", name, value, unit, baseline, ratio);
    fflush(stdout);
}

/* Runs the python baseline; returns its first number (NAN on failure). */
static double python(const char *args, double *second)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/heat_numpy.py %s 2>/dev/null",
             args);
    FILE *pp = popen(cmd, "r");
    double a = NAN, b = NAN;
    if (pp) {
        if (fscanf(pp, "%lf %lf", &a, &b) < 1)
            a = NAN;
        pclose(pp);
    }
    if (second)
        *second = b;
    return a;
}

typedef struct {
    double wall, cpu, inc, per_step;
    size_t iters;
} flow_run;

/* The reference flow: `steps` timed Euler steps (after `warmup` untimed ones). */
static flow_run run_flow(size_t n, af_flow_norm norm, size_t warmup, size_t steps)
{
    flow_run r = {NAN, NAN, NAN, NAN, 0};
    const size_t d = 2;
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 1);
    double *X = malloc(n * d * sizeof *X);
    for (size_t k = 0; k < n * d; k++)
        X[k] = gsl_ran_gaussian_ziggurat(g, 1.0);
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = norm;
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.05;
    p.value = -2 / 0.05;
    p.skip = 1;
    p.integrator = AF_FLOW_EULER;
    p.sinkhorn.tol = 1e-9;
    af_flow_ws *ws = af_flow_alloc(&p);
    if (!ws) {
        fprintf(stderr, "bench_heat: %s\n", af_last_error());
        free(X);
        gsl_rng_free(g);
        return r;
    }
    double m[2], c0[4], c1[4];
    af_moments(n, d, X, m, c0);
    for (size_t s = 0; s < warmup; s++)
        af_flow_step(ws, X, 0.005);
    double t0 = now(), u0 = cpu();
    for (size_t s = 0; s < steps; s++)
        if (af_flow_step(ws, X, 0.005)) {
            fprintf(stderr, "bench_heat: %s\n", af_last_error());
            break;
        }
    r.wall = now() - t0;
    r.cpu = cpu() - u0;
    r.per_step = r.wall / (double)steps;
    af_moments(n, d, X, m, c1);
    r.inc = 0.5 * (c1[0] - c0[0] + c1[3] - c0[3]);
    af_flow_stats st;
    af_flow_get_stats(ws, &st);
    r.iters = st.sinkhorn_iterations;
    af_flow_free(ws);
    free(X);
    gsl_rng_free(g);
    return r;
}

int main(void)
{
    printf("%-40s %12s %-8s %12s %8s\n", "name", "value", "unit", "baseline", "ratio");
    /* 1. reference case */
    flow_run sk = run_flow(800, AF_FLOW_SINKHORN, 0, 100);
    double py_inc, py_sk = python("flow sinkhorn 800 100", &py_inc);
    line("heat_ref_n800_sinkhorn_T0.5_wall", sk.wall, "s", py_sk);
    line("heat_ref_n800_sinkhorn_T0.5_cpu", sk.cpu, "s", NAN);
    line("heat_ref_n800_sinkhorn_var_increment", sk.inc, "", py_inc);
    line("heat_ref_n800_sinkhorn_iters_per_step", (double)sk.iters / 100, "", NAN);
    flow_run sm = run_flow(800, AF_FLOW_SOFTMAX, 0, 100);
    double py_sm = python("flow softmax 800 100", NULL);
    line("heat_ref_n800_softmax_T0.5_wall", sm.wall, "s", py_sm);
    line("heat_ref_n800_softmax_var_increment", sm.inc, "", NAN);

    /* 2. scaling and n = 10000 */
    size_t ns[3] = {1000, 2000, 4000};
    double lx[3], ly[3];
    for (int k = 0; k < 3; k++) {
        flow_run r = run_flow(ns[k], AF_FLOW_SINKHORN, 2, 5);
        char name[64];
        snprintf(name, sizeof name, "heat_sinkhorn_step_n%zu", ns[k]);
        line(name, r.per_step, "s/step", NAN);
        lx[k] = log((double)ns[k]);
        ly[k] = log(r.per_step);
    }
    double slope = ((ly[2] - ly[0]) / (lx[2] - lx[0]));
    line("heat_sinkhorn_step_scaling_exponent", slope, "", NAN);
    int full = getenv("BENCH_HEAT_FULL") != NULL;
    flow_run big = run_flow(10000, AF_FLOW_SINKHORN, full ? 0 : 2, full ? 100 : 3);
    line("heat_sinkhorn_step_n10000", big.per_step, "s/step", NAN);
    if (full)
        line("heat_n10000_sinkhorn_T0.5_wall", big.wall, "s", NAN);
    else
        line("heat_n10000_sinkhorn_T0.5_projected", 100 * big.per_step, "s", NAN);

    /* 3. PDE on 512 x 512 */
    af_grid g = af_grid_cube(2, 512, 10);
    size_t M = af_grid_size(&g);
    double *rho = malloc(M * sizeof *rho);
    af_density dens = af_density_default();
    dens.d = 2;
    af_density_on_grid(&dens, 0, &g, rho);
    double t0 = now();
    af_heat_plan *pe = af_heat_plan_alloc(&g, FFTW_ESTIMATE);
    line("pde_512x512_plan_estimate", 1e3 * (now() - t0), "ms", NAN);
    t0 = now();
    af_heat_plan *pm = af_heat_plan_alloc(&g, FFTW_MEASURE);
    line("pde_512x512_plan_measure", 1e3 * (now() - t0), "ms", NAN);
    double py_pde = 1e3 * python("pde 512 20", NULL);
    af_heat_plan *plans[2] = {pe, pm};
    const char *names[2] = {"pde_512x512_solve_estimate_plan", "pde_512x512_solve_measure_plan"};
    for (int k = 0; k < 2; k++) {
        af_heat_set(plans[k], rho);
        int reps = 20;
        t0 = now();
        for (int r = 0; r < reps; r++)
            af_heat_evolve(plans[k], 1.0, 0.5, rho);
        line(names[k], 1e3 * (now() - t0) / reps, "ms", py_pde);
        af_density_on_grid(&dens, 0, &g, rho);
    }
    t0 = now();
    af_heat_set(pm, rho);
    line("pde_512x512_set_forward_fft", 1e3 * (now() - t0), "ms", NAN);

    /* 4. KDE of 10000 particles on 512 x 512 */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    size_t n = 10000;
    double *X = malloc(2 * n * sizeof *X);
    af_density_sample(&dens, r, n, X);
    af_kde_ws *kw = af_kde_alloc(&g, FFTW_MEASURE);
    af_kde_options ko = af_kde_options_default();
    t0 = now();
    for (int k = 0; k < 10; k++)
        af_kde(kw, &ko, n, X, rho, NULL);
    line("kde_n10000_512x512", 1e3 * (now() - t0) / 10, "ms", NAN);
    af_kde_free(kw);
    af_heat_plan_free(pe);
    af_heat_plan_free(pm);
    gsl_rng_free(r);
    free(X);
    free(rho);
    return 0;
}

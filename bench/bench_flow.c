/* bench_flow: time per flow step (one explicit Euler step X <- X + h T(X),
 * i.e. one velocity evaluation: scores, normalisation, K X) for SoftMax and
 * Sinkhorn attention at n = 1000, 4000, 10000 and d = 2, 64, against plain
 * numpy (bench/flow_numpy.py) of the same step in the same run, plus the
 * Sinkhorn iterations per step with cold, last-potential and extrapolated
 * warm starts. Tokens x ~ N(0, I_d), scores x^T y / sqrt(d), W_V = I,
 * h = 0.01, Sinkhorn tol 1e-9.
 * Output lines: name value unit baseline ratio (ratio = baseline / value for
 * times, i.e. the speed-up; for iterations, cold / warm).
 * Environment: BENCH_FLOW_MAX_N (default 10000) caps n; BENCH_FLOW_NUMPY=0
 * skips the numpy baseline. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/flow.h"

typedef struct {
    double sec;         /* per timed step */
    double iters;       /* Sinkhorn normalisations per timed step */
    double first_iters; /* of the first (cold) step */
} run_result;

/* warmups untimed steps, then `steps` timed steps, from a copy of X0. */
static int run(size_t n, size_t d, const double *X0, af_flow_norm norm, int warm,
               size_t warmups, size_t steps, run_result *r)
{
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = norm;
    p.scores.eps = sqrt((double)d);
    p.integrator = AF_FLOW_EULER;
    p.warm_start = warm;
    af_flow_ws *ws = af_flow_alloc(&p);
    double *X = malloc(n * d * sizeof *X);
    if (!ws || !X) {
        fprintf(stderr, "bench_flow: %s\n", ws ? "out of memory" : af_last_error());
        af_flow_free(ws);
        free(X);
        return 1;
    }
    memcpy(X, X0, n * d * sizeof *X);
    const double h = 0.01;
    af_flow_stats st;
    int rc = 0;
    for (size_t s = 0; s < warmups && !rc; s++) {
        rc = af_flow_step(ws, X, h) != AF_SUCCESS;
        if (s == 0) {
            af_flow_get_stats(ws, &st);
            r->first_iters = (double)st.last_iterations;
        }
    }
    af_flow_get_stats(ws, &st);
    size_t it0 = st.sinkhorn_iterations;
    double t0 = now();
    for (size_t s = 0; s < steps && !rc; s++)
        rc = af_flow_step(ws, X, h) != AF_SUCCESS;
    r->sec = (now() - t0) / (double)steps;
    af_flow_get_stats(ws, &st);
    r->iters = (double)(st.sinkhorn_iterations - it0) / (double)steps;
    if (rc)
        fprintf(stderr, "bench_flow: %s\n", af_last_error());
    af_flow_free(ws);
    free(X);
    return rc;
}

int main(void)
{
    const size_t ns[] = {1000, 4000, 10000}, ds[] = {2, 64};
    const char *env = getenv("BENCH_FLOW_MAX_N");
    const size_t max_n = env ? (size_t)atol(env) : 10000;
    const char *np_env = getenv("BENCH_FLOW_NUMPY");
    const int use_numpy = !(np_env && strcmp(np_env, "0") == 0);
    printf("# bench_flow: one Euler flow step (one velocity evaluation), %d OpenMP threads;\n"
           "# x ~ N(0, I_d), scores x^T y / sqrt(d), W_V = I, h = 0.01, Sinkhorn tol 1e-9\n"
           "# name value unit baseline ratio\n",
           omp_get_max_threads());
    fflush(stdout);
    int rc = 0;
    for (size_t id = 0; id < 2; id++)
        for (size_t in = 0; in < 3; in++) {
            const size_t n = ns[in], d = ds[id];
            if (n > max_n)
                continue;
            const size_t steps = n <= 1000 ? 10 : n <= 4000 ? 4 : 2;
            double *X0 = malloc(n * d * sizeof *X0);
            gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
            gsl_rng_set(g, 1);
            for (size_t k = 0; k < n * d; k++)
                X0[k] = gsl_ran_gaussian_ziggurat(g, 1.0);
            gsl_rng_free(g);

            run_result soft = {0}, cold = {0}, last = {0}, extra = {0};
            rc |= run(n, d, X0, AF_FLOW_SOFTMAX, 0, 1, steps, &soft);
            rc |= run(n, d, X0, AF_FLOW_SINKHORN, 0, 1, steps, &cold);
            rc |= run(n, d, X0, AF_FLOW_SINKHORN, 1, 4, steps, &last);
            rc |= run(n, d, X0, AF_FLOW_SINKHORN, 2, 4, steps, &extra);
            free(X0);

            double np_soft = NAN, np_sk = NAN, np_cold = NAN, np_warm = NAN;
            if (use_numpy) {
                char cmd[256];
                snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/flow_numpy.py %zu %zu %zu", n, d,
                         steps);
                FILE *pp = popen(cmd, "r");
                char line[256];
                while (pp && fgets(line, sizeof line, pp)) {
                    double a, b, c;
                    if (sscanf(line, "softmax_step %lf", &a) == 1)
                        np_soft = a;
                    else if (sscanf(line, "sinkhorn_step %lf %lf %lf", &a, &b, &c) == 3)
                        np_sk = a, np_cold = b, np_warm = c;
                }
                if (!pp || pclose(pp) != 0)
                    fprintf(stderr, "bench_flow: numpy baseline failed (%s)\n", cmd);
            }
            printf("flow_step_softmax_n%zu_d%zu %.4g s %.4g %.1f\n", n, d, soft.sec, np_soft,
                   np_soft / soft.sec);
            printf("flow_step_sinkhorn_n%zu_d%zu %.4g s %.4g %.1f\n", n, d, extra.sec, np_sk,
                   np_sk / extra.sec);
            printf("flow_step_sinkhorn_cold_n%zu_d%zu %.4g s %.4g %.2f\n", n, d, cold.sec,
                   extra.sec, cold.sec / extra.sec);
            printf("flow_sinkhorn_iters_extrapolated_n%zu_d%zu %.3g iters/step %.3g %.2f\n", n, d,
                   extra.iters, cold.iters, cold.iters / extra.iters);
            printf("flow_sinkhorn_iters_last_n%zu_d%zu %.3g iters/step %.3g %.2f\n", n, d,
                   last.iters, cold.iters, cold.iters / last.iters);
            printf("flow_sinkhorn_iters_numpy_warm_n%zu_d%zu %.3g iters/step %.3g %.2f\n", n, d,
                   np_warm, np_cold, np_cold / np_warm);
            fflush(stdout);
        }
    return rc;
}

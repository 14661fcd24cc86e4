/* bench_backend: the attention backends against the exp bound.
 *
 * The matrix-free (tiled) backend spends its time in exp: every pass
 * regenerates n^2 scores and exponentiates them. So the yardstick is the
 * machine's vector exp throughput, measured here on all cores (glibc libmvec
 * through `omp simd`, as the library calls it; double and float), and every
 * kernel is printed as its time over (exps it must do) x (ns per exp):
 * ratio 1 = at the bound.
 *
 * Lines: name value unit baseline ratio.
 *   exp_bound_double / _float          ns per exp, all threads (baseline: 1 thread)
 *   tiled_softmax_velocity_n*_d2       s, heat case (L2 self-scores: the symmetric pass,
 *                                      n (n - 1) / 2 exps); baseline the bound n^2 exps
 *                                      (the yardstick); ratio time/bound
 *   tiled_softmax_velocity_dot_*       the same on dot scores (eps 1, A = I: the general
 *                                      pass, running row maxima, n^2 exps)
 *   tiled_sinkhorn_step_n*_d2          s per warm-started Euler step (Sinkhorn tol 1e-9,
 *                                      L2 scores eps 0.05 as the heat case); its iterations;
 *                                      ratio to the bound of (iterations + 1) n (n + 1) / 2
 *                                      exps (symmetric scores: half the pairs per pass)
 *   dense_*_step_n10000_d2             dense backend, s per step (numpy beside it: bench_flow);
 *                                      ratio to the double exp bound of the step's exps;
 *                                      every n = 1e4 step: best of 3 runs (steps 4 and 5 of
 *                                      a fresh flow each), all three on a `#` line
 *   exp_bound_double_dense, read_bandwidth: the yardsticks again before the n = 1e4 steps,
 *                                      best of 3 and 5 (GB/s: a sum over as many bytes as
 *                                      the stored triangle, 400 MB, eight streams a thread)
 *   dense_sinkhorn_step_floor_*        the build's exps at the bound plus one read of the
 *                                      triangle per pass at read_bandwidth; ratio step / floor
 *   dense_*_step_single_n10000_d2      the same in single precision; baseline the double step,
 *                                      ratio the speed-up; dense_*_iters_*: iterations per step
 *   tiled_*_step_n10000_d2             tiled, same step, ratio tiled / dense
 *   tiled_softmax_velocity_single_*    float32 pass: ratio to the float bound (n^2 float
 *                                      exps); speed-up over double in the same run
 *   single_velocity_relerr_*, *_sinkhorn_marginal_floor_*: accuracy of single precision;
 *   single_heat_velocity_relerr_*      the same for the heat-case velocity timed above
 *                                      (-2/eps (K X - x): K X's error times 40)
 *   dense_single_velocity_relerr_*     the same for the dense backend's single precision
 * Environment: BENCH_BACKEND_N (SoftMax velocity, default 100000),
 * BENCH_BACKEND_SK_N (Sinkhorn step, default 20000; 100000 takes minutes),
 * BENCH_BACKEND_ONLY=dense (the exp bound and the n = 1e4 dense / tiled steps only). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/flow.h"

#include "core/af_simd_math.h" /* glibc's vector exp/expf for omp simd loops */

#define EXP_LEN 4096 /* per thread: in L1 */


static double sink_d;
static float sink_f;

/* ns per exp with `threads` threads, each over its own L1-resident array. */
static double exp_ns(int threads, int single)
{
    const size_t reps = 20000;
    double t0 = now();
#pragma omp parallel num_threads(threads)
    {
        double a[EXP_LEN];
        float b[EXP_LEN];
        for (size_t j = 0; j < EXP_LEN; j++)
            a[j] = b[j] = -(float)j / EXP_LEN;
        double sd = 0;
        float sf = 0;
        for (size_t r = 0; r < reps; r++) {
            const double off = 1e-9 * (double)r;
            if (single) {
#pragma omp simd reduction(+ : sf)
                for (size_t j = 0; j < EXP_LEN; j++)
                    sf += expf(b[j] - (float)off);
            } else {
#pragma omp simd reduction(+ : sd)
                for (size_t j = 0; j < EXP_LEN; j++)
                    sd += exp(a[j] - off);
            }
        }
#pragma omp critical
        {
            sink_d += sd;
            sink_f += sf;
        }
    }
    return (now() - t0) * 1e9 / ((double)reps * EXP_LEN * threads); /* all threads together */
}

/* GB/s of a read of `bytes` on all threads (a sum, best of 5), each thread
 * reading its part as eight concurrent streams, as the stored Sinkhorn
 * passes read eight rows (one stream reaches about 20 % less here): the
 * yardstick of those passes, which read the kernel once each. */
static double read_gbs(size_t bytes)
{
    const size_t m = bytes / sizeof(double) / 16 * 16;
    double *a = malloc(m * sizeof *a), best = INFINITY;
    if (!a)
        return NAN;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < m; k++)
        a[k] = 1.0 / (double)(k + 1);
    for (int r = 0; r < 5; r++) {
        double acc = 0, t0 = now();
#pragma omp parallel reduction(+ : acc)
        {
            const size_t nt = (size_t)omp_get_num_threads(), part = m / nt / 8;
            const double *p = a + (size_t)omp_get_thread_num() * part * 8;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
            for (size_t q = 0; q < part; q++) {
                s0 += p[q], s1 += p[part + q], s2 += p[2 * part + q], s3 += p[3 * part + q];
                s4 += p[4 * part + q], s5 += p[5 * part + q], s6 += p[6 * part + q];
                s7 += p[7 * part + q];
            }
            acc += ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        }
        best = fmin(best, now() - t0);
        sink_d += acc;
    }
    free(a);
    return (double)m * sizeof(double) / best * 1e-9;
}

static double *gaussian(size_t n, size_t d)
{
    double *X = malloc(n * d * sizeof *X);
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 1);
    for (size_t k = 0; k < n * d; k++)
        X[k] = gsl_ran_gaussian_ziggurat(g, 1.0);
    gsl_rng_free(g);
    return X;
}

/* Precision of the steps step_time() runs (the dense single-precision lines). */
static af_precision step_precision = AF_PRECISION_DOUBLE;

/* Seconds per Euler step after `warmups` untimed steps; iterations per step. */
static double step_time(const af_backend_type *b, af_flow_norm norm, size_t n, size_t warmups,
                        size_t steps, double *iters)
{
    const size_t d = 2;
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = norm;
    p.backend = b;
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.05;
    p.value = -2.0 / 0.05; /* the heat-limit field */
    p.skip = 1;
    p.integrator = AF_FLOW_EULER;
    p.precision = step_precision;
    af_flow_ws *ws = af_flow_alloc(&p);
    double *X = gaussian(n, d);
    if (!ws) {
        fprintf(stderr, "bench_backend: %s\n", af_last_error());
        exit(1);
    }
    const double h = 0.005;
    for (size_t s = 0; s < warmups; s++)
        if (af_flow_step(ws, X, h)) {
            fprintf(stderr, "bench_backend: %s\n", af_last_error());
            exit(1);
        }
    af_flow_stats st;
    af_flow_get_stats(ws, &st);
    const size_t it0 = st.sinkhorn_iterations;
    double t0 = now();
    for (size_t s = 0; s < steps; s++)
        if (af_flow_step(ws, X, h)) {
            fprintf(stderr, "bench_backend: %s\n", af_last_error());
            exit(1);
        }
    double sec = (now() - t0) / (double)steps;
    af_flow_get_stats(ws, &st);
    if (iters)
        *iters = (double)(st.sinkhorn_iterations - it0) / (double)steps;
    af_flow_free(ws);
    free(X);
    return sec;
}

/* step_time's n = 1e4 measurement, best of STEP_RUNS runs (each a fresh
 * workspace, the same warm-up and timed steps): on a shared machine the
 * slower runs measure the neighbours, and a single run moved by 1.4x
 * between two bench runs minutes apart. All runs go to a `#` line. */
#define STEP_RUNS 3
static double step_best(const char *what, const af_backend_type *b, af_flow_norm norm, size_t n,
                        double *iters)
{
    double best = INFINITY, t[STEP_RUNS];
    for (int r = 0; r < STEP_RUNS; r++)
        best = fmin(best, t[r] = step_time(b, norm, n, 3, 2, iters));
    printf("# %s runs:", what);
    for (int r = 0; r < STEP_RUNS; r++)
        printf(" %.4g", t[r]);
    printf(" s\n");
    return best;
}

/* Seconds of one tiled SoftMax velocity: the heat case (L2 scores,
 * eps = 0.05, field -2 / eps with skip, as the steps below) or dot scores
 * (eps = 1, A = I). */
static double velocity_time(size_t n, int heat, af_precision prec, const double *X, double *V)
{
    af_flow_params p = af_flow_params_default(n, 2);
    p.backend = af_backend_tiled;
    p.precision = prec;
    if (heat) {
        p.scores.kind = AF_SCORES_L2;
        p.scores.eps = 0.05;
        p.value = -2.0 / 0.05;
        p.skip = 1;
    }
    af_flow_ws *ws = af_flow_alloc(&p);
    double t0 = now();
    if (!ws || af_flow_velocity(ws, X, V)) {
        fprintf(stderr, "bench_backend: %s\n", af_last_error());
        exit(1);
    }
    double sec = now() - t0;
    af_flow_free(ws);
    return sec;
}

/* Single against double on the same tiled problem: velocity relative
 * error (SoftMax and Sinkhorn), and the Sinkhorn marginal error floor of
 * the alternating path (non-symmetric dot scores, 400 normalisations). */
static void accuracy(size_t n)
{
    const size_t d = 2;
    static const double A[4] = {1.0, 0.4, -0.3, 0.8};
    double *X = gaussian(n, d), *vd = malloc(n * d * sizeof *vd), *vs = malloc(n * d * sizeof *vs);
    for (int norm = 0; norm < 2; norm++) {
        af_flow_params p = af_flow_params_default(n, d);
        p.norm = (af_flow_norm)norm;
        p.backend = af_backend_tiled;
        p.scores.kind = AF_SCORES_L2;
        p.scores.eps = 0.05;
        p.sinkhorn.tol = 1e-7;
        af_flow_ws *wd = af_flow_alloc(&p);
        p.precision = AF_PRECISION_SINGLE;
        af_flow_ws *ws = af_flow_alloc(&p);
        if (!wd || !ws || af_flow_velocity(wd, X, vd) || af_flow_velocity(ws, X, vs)) {
            fprintf(stderr, "bench_backend: %s\n", af_last_error());
            exit(1);
        }
        double e = 0, m = 0;
        for (size_t k = 0; k < n * d; k++)
            e = fmax(e, fabs(vs[k] - vd[k])), m = fmax(m, fabs(vd[k]));
        printf("single_velocity_relerr_%s_n%zu %.3g rel nan nan\n", norm ? "sinkhorn" : "softmax",
               n, e / m);
        af_flow_free(wd);
        af_flow_free(ws);
    }
    for (int prec = 0; prec < 2; prec++) {
        af_attn_params ap = af_attn_params_default(n, d);
        ap.norm = AF_ATTN_SINKHORN;
        ap.scores.A = A;
        ap.scores.eps = 0.5;
        ap.precision = (af_precision)prec;
        af_attn_ws *w = af_attn_alloc(af_backend_tiled, &ap);
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.iters = 400;
        af_sinkhorn_info info;
        if (!w || af_attn_sinkhorn(w, X, &o, &info)) {
            fprintf(stderr, "bench_backend: %s\n", af_last_error());
            exit(1);
        }
        printf("%s_sinkhorn_marginal_floor_n%zu %.3g max(row,col)_err nan nan\n",
               prec ? "single" : "double", n, fmax(info.row_err, info.col_err));
        af_attn_free(w);
    }
    free(X);
    free(vd);
    free(vs);
    fflush(stdout);
}

/* Dense single against dense double, the heat case at n (velocity, max
 * relative error; Sinkhorn at tol 1e-9 in double, 1e-7 in single). */
static void dense_accuracy(size_t n)
{
    const size_t d = 2;
    double *X = gaussian(n, d), *v[2] = {malloc(n * d * sizeof(double)),
                                         malloc(n * d * sizeof(double))};
    for (int norm = 0; norm < 2; norm++) {
        for (int prec = 0; prec < 2; prec++) {
            af_flow_params p = af_flow_params_default(n, d);
            p.norm = (af_flow_norm)norm;
            p.backend = af_backend_dense;
            p.precision = (af_precision)prec;
            p.scores.kind = AF_SCORES_L2;
            p.scores.eps = 0.05;
            p.sinkhorn.tol = prec ? 1e-7 : 1e-9;
            af_flow_ws *ws = af_flow_alloc(&p);
            if (!ws || af_flow_velocity(ws, X, v[prec])) {
                fprintf(stderr, "bench_backend: %s\n", af_last_error());
                exit(1);
            }
            af_flow_free(ws);
        }
        double e = 0, m = 0;
        for (size_t k = 0; k < n * d; k++)
            e = fmax(e, fabs(v[1][k] - v[0][k])), m = fmax(m, fabs(v[0][k]));
        printf("dense_single_velocity_relerr_%s_n%zu %.3g rel nan nan\n",
               norm ? "sinkhorn" : "softmax", n, e / m);
    }
    free(X), free(v[0]), free(v[1]);
}

int main(void)
{
    const char *e1 = getenv("BENCH_BACKEND_N"), *e2 = getenv("BENCH_BACKEND_SK_N");
    const size_t n_soft = e1 ? (size_t)atol(e1) : 100000, n_sk = e2 ? (size_t)atol(e2) : 20000;
    const char *only = getenv("BENCH_BACKEND_ONLY");
    const int dense_only = only && strcmp(only, "dense") == 0;
    const int T = omp_get_max_threads();
    printf("# bench_backend: %d OpenMP threads; d = 2, L2 scores eps = 0.05 (heat case), Euler "
           "h = 0.005\n# name value unit baseline ratio\n", T);
    const double ed1 = exp_ns(1, 0), ed = exp_ns(T, 0), ef1 = exp_ns(1, 1), ef = exp_ns(T, 1);
    printf("exp_bound_double %.4g ns/exp %.4g %.2f\n", ed, ed1, ed1 / ed);
    printf("exp_bound_float %.4g ns/exp %.4g %.2f\n", ef, ef1, ef1 / ef);
    printf("exp_float_vs_double %.4g ns/exp %.4g %.2f\n", ef, ed, ed / ef);
    fflush(stdout);

    /* SoftMax velocity, heat case (L2 self-scores: the symmetric pass),
     * double and single; then dot scores (the general pass) */
    if (!dense_only) {
        const size_t n = n_soft, d = 2;
        double *X = gaussian(n, d), *V[2];
        double sec[2];
        for (int prec = 0; prec < 2; prec++) {
            V[prec] = malloc(n * d * sizeof *V[prec]);
            sec[prec] = velocity_time(n, 1, (af_precision)prec, X, V[prec]);
        }
        const double bd = (double)n * n * ed * 1e-9, bf = (double)n * n * ef * 1e-9;
        printf("tiled_softmax_velocity_n%zu_d2 %.4g s %.4g %.2f\n", n, sec[0], bd, sec[0] / bd);
        printf("tiled_softmax_velocity_single_n%zu_d2 %.4g s %.4g %.2f\n", n, sec[1], bf,
               sec[1] / bf);
        printf("tiled_softmax_single_speedup_n%zu_d2 %.4g s %.4g %.2f\n", n, sec[1], sec[0],
               sec[0] / sec[1]);
        double e = 0, m = 0;
        for (size_t k = 0; k < n * d; k++)
            e = fmax(e, fabs(V[1][k] - V[0][k])), m = fmax(m, fabs(V[0][k]));
        printf("single_heat_velocity_relerr_softmax_n%zu %.3g rel nan nan\n", n, e / m);
        fflush(stdout);
        for (int prec = 0; prec < 2; prec++)
            sec[prec] = velocity_time(n, 0, (af_precision)prec, X, V[prec]);
        printf("tiled_softmax_velocity_dot_n%zu_d2 %.4g s %.4g %.2f\n", n, sec[0], bd,
               sec[0] / bd);
        printf("tiled_softmax_velocity_dot_single_n%zu_d2 %.4g s %.4g %.2f\n", n, sec[1], bf,
               sec[1] / bf);
        free(X), free(V[0]), free(V[1]);
        fflush(stdout);
    }
    /* warm-started tiled Sinkhorn step */
    if (!dense_only) {
        double it;
        const size_t n = n_sk;
        double sec = step_time(af_backend_tiled, AF_FLOW_SINKHORN, n, 3, 1, &it);
        /* symmetric scores: a pass is n (n + 1) / 2 exps, one per iteration
         * plus the starting pass (K X comes with the last pass) */
        double bound = (it + 1) * 0.5 * (double)n * (n + 1) * ed * 1e-9;
        printf("tiled_sinkhorn_step_n%zu_d2 %.4g s %.4g %.2f\n", n, sec, bound, sec / bound);
        printf("tiled_sinkhorn_iters_n%zu_d2 %.3g iters/step nan nan\n", n, it);
        fflush(stdout);
    }
    if (!dense_only)
        accuracy(2000);
    /* dense vs tiled at n = 1e4; the yardsticks again right before them
     * (the machine's speed drifts over minutes): the exp bound, and the
     * read bandwidth over the stored Sinkhorn triangle's bytes */
    double edn = INFINITY; /* best of 3, like the steps (the fastest moment: conservative) */
    for (int r = 0; r < 3; r++)
        edn = fmin(edn, exp_ns(T, 0));
    const double gbs = read_gbs(10000 * 10001 / 2 * sizeof(double));
    printf("exp_bound_double_dense %.4g ns/exp %.4g %.2f\n", edn, ed, edn / ed);
    printf("read_bandwidth %.4g GB/s nan nan\n", gbs);
    for (int norm = 0; norm < 2; norm++) {
        const size_t n = 10000;
        const char *name = norm ? "sinkhorn" : "softmax";
        double itd = 0, itt = 0;
        char what[64];
        snprintf(what, sizeof what, "dense_%s_step_n%zu_d2", name, n);
        double sd = step_best(what, af_backend_dense, (af_flow_norm)norm, n, &itd);
        snprintf(what, sizeof what, "tiled_%s_step_n%zu_d2", name, n);
        double stt = step_best(what, af_backend_tiled, (af_flow_norm)norm, n, &itt);
        double bound = (norm ? (itt + 1) * 0.5 : 1) * (double)n * n * ed * 1e-9;
        printf("dense_%s_step_n%zu_d2 %.4g s %.4g %.2f\n", name, n, sd, bound, sd / bound);
        printf("tiled_%s_step_n%zu_d2 %.4g s %.4g %.2f\n", name, n, stt, sd, stt / sd);
        printf("dense_%s_iters_n%zu_d2 %.3g iters/step nan nan\n", name, n, itd);
        if (norm) { /* its floor: the exps of the build, then one read of the triangle per pass */
            const double tri = 0.5 * (double)n * (n + 1);
            const double floor = tri * edn * 1e-9 + (itd + 1) * tri * sizeof(double) / gbs * 1e-9;
            printf("dense_sinkhorn_step_floor_n%zu_d2 %.4g s %.4g %.2f\n", n, floor, sd, sd / floor);
        }
        step_precision = AF_PRECISION_SINGLE;
        snprintf(what, sizeof what, "dense_%s_step_single_n%zu_d2", name, n);
        double its = 0, ss = step_best(what, af_backend_dense, (af_flow_norm)norm, n, &its);
        step_precision = AF_PRECISION_DOUBLE;
        printf("dense_%s_step_single_n%zu_d2 %.4g s %.4g %.2f\n", name, n, ss, sd, sd / ss);
        printf("dense_%s_iters_single_n%zu_d2 %.3g iters/step nan nan\n", name, n, its);
        fflush(stdout);
    }
    dense_accuracy(2000);
    return sink_d == 12345.0 && sink_f == 1.0f; /* keeps the exp loops alive */
}

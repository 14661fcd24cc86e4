/* make bench: speed of the convex attention solver (issue 7).
 *  1. iterations and seconds to a 1e-6 relative duality gap for linear
 *     attention, d = 16, c = 10, N = 3000 token matrices of n = 8 tokens
 *     (Z is 256 x 160), squared and cross-entropy losses, and the share of
 *     the time spent in SVDs (proximal step and the spectral norm of the
 *     certificate); baseline (squared loss): the same solve with GSL's SVD;
 *  2. one SVD with vectors of a 256 x 160 matrix: af_svt (LAPACK dgesdd)
 *     against GSL's gsl_linalg_SV_decomp;
 *  3. the same algorithm written in numpy (bench/convex_numpy.py, run with
 *     Debian's /usr/bin/python3) on the same data, squared loss: seconds to
 *     the same gap.
 * One thread everywhere (OpenBLAS, OpenMP; numpy through
 * OPENBLAS_NUM_THREADS=1). CPU seconds are reported next to wall seconds
 * because the build machine is shared.
 * Lines: name value unit baseline ratio (ratio = baseline / value, > 1 means
 * attnflow is faster). */
#include "core/af_blas.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/convex.h"

static void line(const char *name, double value, const char *unit, double baseline, double ratio)
{
    printf("%-44s %12.4g %-8s %12.4g %8.3f\n", name, value, unit, baseline, ratio);
    fflush(stdout);
}

enum { N = 3000, n = 8, d = 16, c = 10 };
static const double beta = 0.01, tol = 1e-6;

typedef struct {
    af_convex_state st;
    double wall, cpu;
} result;

static result solve(af_convex_problem *p, af_convex_svd svd)
{
    size_t zs = af_convex_z_size(p);
    double *Z = calloc(zs, sizeof *Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = beta;
    opt.tol = tol;
    opt.svd = svd;
    result r;
    double w0 = now(), c0 = cpu();
    af_status s = af_convex_solve(p, &opt, Z, &r.st);
    r.wall = now() - w0;
    r.cpu = cpu() - c0;
    if (s != AF_SUCCESS)
        fprintf(stderr, "bench_convex: %s\n", af_last_error());
    free(Z);
    return r;
}

static af_convex_problem *problem(af_convex_loss loss, double **Xout, double **Yout)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    af_convex_synth_params sp = af_convex_synth_params_default();
    double *X = malloc((size_t)N * n * d * sizeof *X), *Y = malloc((size_t)N * n * c * sizeof *Y);
    af_convex_shape sh = {AF_CONVEX_LINEAR, loss, N, n, d, c, 1, AF_CONVEX_ATTENTION, 0, 0, 0};
    af_convex_problem *p = NULL;
    if (af_convex_synth_tokens(&sp, N, n, d, rng, X, NULL) || af_convex_problem_alloc(&p, &sh, X, NULL)
        || af_convex_synth_targets(p, &sp, rng, Y) || af_convex_problem_set_targets(p, Y)) {
        fprintf(stderr, "bench_convex: %s\n", af_last_error());
        exit(1);
    }
    gsl_rng_free(rng);
    *Xout = X;
    *Yout = Y;
    return p;
}

/* the numpy implementation on the same data (binary float64 files) */
static double numpy_seconds(const double *X, const double *Y, const char *loss, double *iters)
{
    char xf[] = "/tmp/af_bench_convex_X_XXXXXX", yf[] = "/tmp/af_bench_convex_Y_XXXXXX";
    int fx = mkstemp(xf), fy = mkstemp(yf);
    if (fx < 0 || fy < 0)
        return NAN;
    FILE *a = fdopen(fx, "wb"), *b = fdopen(fy, "wb");
    fwrite(X, sizeof *X, (size_t)N * n * d, a);
    fwrite(Y, sizeof *Y, (size_t)N * n * c, b);
    fclose(a);
    fclose(b);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/convex_numpy.py "
             "%s %s %d %d %d %d %s %g %g 2>/dev/null",
             xf, yf, N, n, d, c, loss, beta, tol);
    FILE *pp = popen(cmd, "r");
    double sec = NAN, it = NAN;
    *iters = NAN;
    if (pp) {
        if (fscanf(pp, "%lf %lf", &sec, &it) != 2)
            sec = it = NAN;
        pclose(pp);
    }
    remove(xf);
    remove(yf);
    *iters = it;
    return sec;
}

int main(void)
{
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    printf("# bench_convex: linear attention, N=%d n=%d d=%d c=%d (Z %d x %d), beta %g, "
           "stop at relative duality gap %g; one thread\n",
           N, n, d, c, d * d, d * c, beta, tol);
    printf("# name value unit baseline ratio (ratio = baseline / value)\n");

    const char *lname[2] = {"squared", "ce"};
    for (int L = 0; L < 2; L++) {
        double *X, *Y;
        af_convex_problem *p = problem(L ? AF_CONVEX_CE : AF_CONVEX_SQUARED, &X, &Y);
        /* the GSL and numpy baselines only for the squared loss: they
         * would triple the run time of make bench */
        result a = solve(p, AF_CONVEX_SVD_LAPACK), g;
        if (L == 0)
            g = solve(p, AF_CONVEX_SVD_GSL);
        else
            memset(&g, 0, sizeof g);
        double gi = L == 0 ? (double)g.st.iter : NAN, gw = L == 0 ? g.wall : NAN;
        double gc = L == 0 ? g.cpu : NAN, gs = L == 0 ? g.st.svd_seconds / g.st.seconds : NAN;
        double gm = L == 0 ? 1e3 * g.st.seconds / (double)g.st.iter : NAN;
        double am = 1e3 * a.st.seconds / (double)a.st.iter;
        char name[96];
        snprintf(name, sizeof name, "convex_%s_iterations_to_1e-6", lname[L]);
        line(name, (double)a.st.iter, "iter", gi, gi / (double)a.st.iter);
        snprintf(name, sizeof name, "convex_%s_seconds_to_1e-6 (vs GSL SVD)", lname[L]);
        line(name, a.wall, "s", gw, gw / a.wall);
        snprintf(name, sizeof name, "convex_%s_cpu_seconds_to_1e-6 (vs GSL SVD)", lname[L]);
        line(name, a.cpu, "s", gc, gc / a.cpu);
        snprintf(name, sizeof name, "convex_%s_svd_share (vs GSL SVD)", lname[L]);
        line(name, a.st.svd_seconds / a.st.seconds, "frac", gs, NAN);
        snprintf(name, sizeof name, "convex_%s_ms_per_iteration (vs GSL SVD)", lname[L]);
        line(name, am, "ms", gm, gm / am);
        printf("#   %s: objective %.12g, rank %zu, relative gap %.3g, restarts %zu, backtracks %zu\n",
               lname[L], a.st.objective, a.st.rank, a.st.rel_gap, a.st.restarts, a.st.backtracks);
        if (L == 0) {
            double it_np = NAN, s_np = numpy_seconds(X, Y, lname[L], &it_np);
            snprintf(name, sizeof name, "convex_%s_seconds_vs_numpy", lname[L]);
            line(name, a.wall, "s", s_np, s_np / a.wall);
            printf("#   numpy: %.0f iterations (fixed step 1/L, FISTA with gradient restart)\n", it_np);
        }
        af_convex_problem_free(p);
        free(X);
        free(Y);
    }

    /* one SVD with vectors, 256 x 160 */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2);
    size_t M = d * d, K = d * c;
    double *A = malloc(M * K * sizeof *A), *B = malloc(M * K * sizeof *B), *sig = malloc(K * sizeof *sig);
    for (size_t q = 0; q < M * K; q++)
        A[q] = gsl_ran_gaussian(rng, 1.0);
    gsl_matrix *Ag = gsl_matrix_alloc(M, K), *V = gsl_matrix_alloc(K, K);
    gsl_vector *S = gsl_vector_alloc(K), *w = gsl_vector_alloc(K);
    int reps = 20;
    double t0 = now();
    for (int r = 0; r < reps; r++) {
        memcpy(B, A, M * K * sizeof *A);
        size_t rank;
        af_svt(M, K, B, 0.0, sig, &rank);
    }
    double t_lapack = (now() - t0) / reps;
    t0 = now();
    for (int r = 0; r < reps; r++) {
        memcpy(Ag->data, A, M * K * sizeof *A);
        gsl_linalg_SV_decomp(Ag, V, S, w);
    }
    double t_gsl = (now() - t0) / reps;
    line("svd_256x160_with_vectors (af_svt vs GSL)", 1e3 * t_lapack, "ms", 1e3 * t_gsl, t_gsl / t_lapack);
    printf("#   largest singular value: af_svt %.12g, GSL %.12g\n", sig[0], gsl_vector_get(S, 0));
    gsl_matrix_free(Ag);
    gsl_matrix_free(V);
    gsl_vector_free(S);
    gsl_vector_free(w);
    gsl_rng_free(rng);
    free(A);
    free(B);
    free(sig);
    return 0;
}

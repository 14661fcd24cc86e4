/* SoftMax and Sinkhorn: marginals, conventions, path agreement, invariances,
 * convergence rates against the Birkhoff-Hopf bound and sigma_2^2, and
 * errors on bad input. References: a naive long-double Sinkhorn on the
 * materialised matrix, brute-force O(n^4) Hilbert diameter, GSL's SVD. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_linalg.h>
#include <omp.h>
#include "attnflow/normalize.h"
#include "attnflow/scores.h"
#include "support/fixtures.h"

static double *dot_scores(size_t n, size_t d, const double *X, double eps)
{
    double *C = malloc(n * n * sizeof *C), *w = malloc(AF_SCORES_WORK(n, n, d) * sizeof *w);
    af_scores_params p = af_scores_params_default();
    p.eps = eps;
    cr_assert_eq(af_scores(&p, n, n, d, X, X, C, w), AF_SUCCESS);
    free(w);
    return C;
}

static double *random_scores(size_t n, size_t m, double scale, unsigned long seed)
{
    double *C = fx_gaussian_cloud(n, m, scale, seed);
    return C;
}

Test(softmax, rows_sum_to_one_and_match_naive)
{
    size_t n = 37, m = 23;
    double *C = random_scores(n, m, 3.0, 1), *K = malloc(n * m * sizeof *K), *R = malloc(n * m * sizeof *R);
    cr_assert_eq(af_softmax(n, m, C, K), AF_SUCCESS);
    fx_naive_sinkhorn(n, m, C, 1, R);
    cr_expect_leq(fx_max_abs_diff(n * m, K, R), 1e-15);
    double re, ce;
    fx_marginal_errors(n, m, K, &re, &ce);
    cr_expect_leq(re, 1e-14);
    cr_expect_gt(ce, 1e-2, "random SoftMax is not column stochastic");
    free(C); free(K); free(R);
}

Test(softmax, rejects_nan)
{
    double C[4] = {0, 1, NAN, 2}, K[4];
    cr_expect_eq(af_softmax(2, 2, C, K), AF_EDOM);
}

/* One normalisation must be SoftMax bit for bit, on every path. */
Test(sinkhorn, one_normalisation_is_softmax_exactly)
{
    size_t n = 64, m = 64;
    double *C = random_scores(n, m, 2.0, 2), *K = malloc(n * m * sizeof *K), *S = malloc(n * m * sizeof *S);
    af_softmax(n, m, C, S);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, m);
    const af_sinkhorn_type *paths[] = {NULL, af_sinkhorn_scaling, af_sinkhorn_log};
    for (size_t p = 0; p < 3; p++) {
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.iters = 1;
        o.path = paths[p];
        af_sinkhorn_info info;
        cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS);
        cr_expect_eq(info.iterations, 1);
        cr_expect_eq(memcmp(K, S, n * m * sizeof *K), 0, "path %s differs from SoftMax (max %g)",
                     af_sinkhorn_type_name(info.path), fx_max_abs_diff(n * m, K, S));
    }
    af_sinkhorn_free(ws);
    free(C); free(K); free(S);
}

/* A fixed count N follows the alternating convention (naive reference). */
Test(sinkhorn, fixed_counts_match_naive_reference)
{
    size_t n = 30, m = 20;
    double *C = random_scores(n, m, 1.5, 3), *K = malloc(n * m * sizeof *K), *R = malloc(n * m * sizeof *R);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, m);
    size_t counts[] = {2, 3, 4, 7, 20};
    const af_sinkhorn_type *paths[] = {af_sinkhorn_scaling, af_sinkhorn_log};
    for (size_t c = 0; c < 5; c++)
        for (size_t p = 0; p < 2; p++) {
            af_sinkhorn_options o = af_sinkhorn_options_default();
            o.iters = counts[c];
            o.path = paths[p];
            cr_assert_eq(af_sinkhorn(ws, C, &o, K, NULL), AF_SUCCESS);
            fx_naive_sinkhorn(n, m, C, counts[c], R);
            double e = fx_max_abs_diff(n * m, K, R);
            cr_expect_leq(e, 1e-13, "N = %zu, path %zu: error %g", counts[c], p, e);
        }
    af_sinkhorn_free(ws);
    free(C); free(K); free(R);
}

/* To tolerance, every path gives a doubly stochastic matrix (checked here
 * independently of the solver's own error). */
Test(sinkhorn, marginals_within_tol_on_every_path)
{
    size_t n = 120, d = 4;
    double *X = fx_gaussian_cloud(n, d, 0.6, 4);
    double eps[] = {0.5, 2.0, 10.0};
    const af_sinkhorn_type *paths[] = {NULL, af_sinkhorn_scaling, af_sinkhorn_log, af_sinkhorn_symmetric};
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    double *K = malloc(n * n * sizeof *K);
    for (size_t e = 0; e < 3; e++) {
        double *C = dot_scores(n, d, X, eps[e]);
        for (size_t p = 0; p < 4; p++) {
            af_sinkhorn_options o = af_sinkhorn_options_default();
            o.path = paths[p];
            o.tol = 1e-10;
            o.max_iters = 50000;
            af_sinkhorn_info info;
            cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS, "%s", af_last_error());
            double re, ce;
            fx_marginal_errors(n, n, K, &re, &ce);
            cr_expect_leq(re, 2e-10, "eps %g path %s row %g", eps[e], af_sinkhorn_type_name(info.path), re);
            cr_expect_leq(ce, 2e-10, "eps %g path %s col %g", eps[e], af_sinkhorn_type_name(info.path), ce);
            cr_expect_leq(fmax(info.row_err, info.col_err), 1e-10);
        }
        free(C);
    }
    af_sinkhorn_free(ws);
    free(X); free(K);
}

Test(sinkhorn, scaling_log_and_symmetric_paths_agree)
{
    size_t n = 150, d = 3;
    double *X = fx_gaussian_cloud(n, d, 1.0, 5), *C = dot_scores(n, d, X, 0.5);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    double *K[3];
    const af_sinkhorn_type *paths[] = {af_sinkhorn_scaling, af_sinkhorn_log, af_sinkhorn_symmetric};
    af_sinkhorn_info info;
    for (int p = 0; p < 3; p++) {
        K[p] = malloc(n * n * sizeof(double));
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.path = paths[p];
        o.tol = 1e-12;
        o.max_iters = 100000;
        cr_assert_eq(af_sinkhorn(ws, C, &o, K[p], &info), AF_SUCCESS, "%s", af_last_error());
        cr_expect_eq(info.path, paths[p]);
    }
    cr_expect_leq(fx_max_abs_diff(n * n, K[0], K[1]), 1e-10);
    cr_expect_leq(fx_max_abs_diff(n * n, K[0], K[2]), 1e-10);
    /* symmetric scores + tolerance: the automatic choice is the symmetric update */
    af_sinkhorn(ws, C, NULL, NULL, &info);
    cr_expect_eq(info.path, af_sinkhorn_symmetric);
    /* a caller that guarantees symmetry skips the check, same result */
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-12;
    o.assume_symmetric = 1;
    double *Ka = malloc(n * n * sizeof *Ka);
    cr_assert_eq(af_sinkhorn(ws, C, &o, Ka, &info), AF_SUCCESS);
    cr_expect_eq(info.path, af_sinkhorn_symmetric);
    cr_expect_eq(memcmp(Ka, K[2], n * n * sizeof *Ka), 0);
    free(Ka);
    for (int p = 0; p < 3; p++)
        free(K[p]);
    af_sinkhorn_free(ws);
    free(X); free(C);
}

/* Potentials reproduce the matrix: K_ij = exp(f_i + C_ij + g_j). */
Test(sinkhorn, potentials_reproduce_matrix)
{
    size_t n = 40, m = 55;
    double *C = random_scores(n, m, 1.0, 6), *K = malloc(n * m * sizeof *K);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, m);
    const af_sinkhorn_type *paths[] = {af_sinkhorn_scaling, af_sinkhorn_log};
    for (int p = 0; p < 2; p++) {
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.path = paths[p];
        af_sinkhorn_info info;
        cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS);
        const double *f = af_sinkhorn_f(ws), *g = af_sinkhorn_g(ws);
        cr_expect_eq(memcmp(f, info.f, n * sizeof *f), 0);
        cr_expect_eq(memcmp(g, info.g, m * sizeof *g), 0);
        double e = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < m; j++)
                e = fmax(e, fabs(exp(f[i] + C[i * m + j] + g[j]) - K[i * m + j]));
        cr_expect_leq(e, 1e-13);
        /* rectangular: rows sum to 1, columns to n/m */
        double re, ce;
        fx_marginal_errors(n, m, K, &re, &ce);
        cr_expect_leq(fmax(re, ce), 2e-9);
    }
    af_sinkhorn_free(ws);
    free(C); free(K);
}

/* THEORY 2: Sinkhorn(x.y/eps) == Sinkhorn(-|x-y|^2/(2eps)); SoftMax differs. */
Test(sinkhorn, dot_and_l2_scores_give_the_same_sinkhorn_not_softmax)
{
    size_t n = 100, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 7);
    double *Cd = malloc(n * n * sizeof *Cd), *Cl = malloc(n * n * sizeof *Cl);
    double *w = malloc(AF_SCORES_WORK(n, n, d) * sizeof *w);
    af_scores_params p = af_scores_params_default();
    p.eps = 0.7;
    af_scores(&p, n, n, d, X, X, Cd, w);
    p.kind = AF_SCORES_L2;
    af_scores(&p, n, n, d, X, X, Cl, w);
    double *Kd = malloc(n * n * sizeof *Kd), *Kl = malloc(n * n * sizeof *Kl);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-12;
    cr_assert_eq(af_sinkhorn(ws, Cd, &o, Kd, NULL), AF_SUCCESS);
    cr_assert_eq(af_sinkhorn(ws, Cl, &o, Kl, NULL), AF_SUCCESS);
    cr_expect_leq(fx_max_abs_diff(n * n, Kd, Kl), 1e-10);
    af_softmax(n, n, Cd, Kd);
    af_softmax(n, n, Cl, Kl);
    cr_expect_gt(fx_max_abs_diff(n * n, Kd, Kl), 1e-2, "SoftMax has no such invariance");
    af_sinkhorn_free(ws);
    free(X); free(Cd); free(Cl); free(w); free(Kd); free(Kl);
}

/* Brute-force O(n^4) Hilbert diameter. */
static double brute_delta(size_t n, size_t m, const double *C)
{
    double best = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            for (size_t k = 0; k < m; k++)
                for (size_t l = 0; l < m; l++)
                    best = fmax(best, C[i * m + k] + C[j * m + l] - C[j * m + k] - C[i * m + l]);
    return best;
}

Test(diagnostics, hilbert_diameter_exact_and_bound)
{
    size_t n = 12, m = 9;
    double *C = random_scores(n, m, 1.0, 8);
    double exact = af_hilbert_diameter(n, m, C, 1), brute = brute_delta(n, m, C);
    cr_expect_float_eq(exact, brute, 1e-12);
    cr_expect_geq(af_hilbert_diameter(n, m, C, 0), exact);
    cr_expect_float_eq(af_birkhoff_hopf_rate(2.0), pow(tanh(0.5), 2), 1e-15);
    free(C);
}

Test(diagnostics, second_singular_value_matches_svd)
{
    size_t n = 60, d = 3;
    double *X = fx_gaussian_cloud(n, d, 0.7, 9), *C = dot_scores(n, d, X, 1.0);
    double *K = malloc(n * n * sizeof *K);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-13;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K, NULL), AF_SUCCESS);
    double s2;
    cr_assert_eq(af_second_singular_value(n, K, 1e-14, 100000, &s2), AF_SUCCESS);
    gsl_matrix *A = gsl_matrix_alloc(n, n), *V = gsl_matrix_alloc(n, n);
    gsl_vector *S = gsl_vector_alloc(n), *work = gsl_vector_alloc(n);
    memcpy(A->data, K, n * n * sizeof *K);
    gsl_linalg_SV_decomp(A, V, S, work);
    cr_expect_float_eq(gsl_vector_get(S, 0), 1.0, 1e-9, "doubly stochastic: sigma_1 = 1");
    cr_expect_float_eq(s2, gsl_vector_get(S, 1), 1e-6, "power %g vs svd %g", s2, gsl_vector_get(S, 1));
    gsl_matrix_free(A); gsl_matrix_free(V); gsl_vector_free(S); gsl_vector_free(work);
    af_sinkhorn_free(ws);
    free(X); free(C); free(K);
}

/* Observed contraction per full iteration stays under the Birkhoff-Hopf
 * bound and approaches sigma_2(K_inf)^2 (THEORY 2). */
Test(diagnostics, observed_rate_under_bound_and_near_sharp_rate)
{
    size_t n = 80, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 10), *C = dot_scores(n, d, X, 1.0);
    double *K = malloc(n * n * sizeof *K);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.path = af_sinkhorn_scaling; /* alternating: the rate the bounds speak of */
    o.tol = 1e-13;
    o.max_iters = 200000;
    o.compute_bound = 2;
    af_sinkhorn_info info;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS);
    cr_assert_gt(info.iterations, 20);
    double s2;
    cr_assert_eq(af_second_singular_value(n, K, 1e-14, 100000, &s2), AF_SUCCESS);
    /* column errors after row steps (odd normalisations: indices 0, 2, ...) */
    const double *ce = info.col_hist;
    size_t last = (info.iterations - 1) & ~(size_t)1;
    for (size_t k = 2; k <= last; k += 2)
        if (ce[k] > 1e-11)
            cr_expect_leq(ce[k] / ce[k - 2], info.bh_rate * (1 + 1e-9), "k %zu", k);
    /* asymptotic ratio: geometric mean over the tail above round-off */
    size_t a = 0, b = 0;
    for (size_t k = 0; k <= last; k += 2)
        if (ce[k] > 1e-6) a = k;
    for (size_t k = 0; k <= last; k += 2)
        if (ce[k] > 1e-11) b = k;
    cr_assert_gt(b, a + 4);
    double rate = pow(ce[b] / ce[a], 2.0 / (double)(b - a));
    cr_expect_float_eq(rate, s2 * s2, 0.02 * s2 * s2, "observed %g sharp %g bound %g", rate, s2 * s2,
                       info.bh_rate);
    af_sinkhorn_free(ws);
    free(X); free(C); free(K);
}

/* eps = 1e-3: scores ~1e3 overflow exp; the log path keeps it finite.
 * The automatic choice (symmetric scores, a tolerance) is the symmetric
 * update in log space, which still converges in a few dozen steps; a
 * requested scaling path falls back to log space. */
Test(sinkhorn, huge_scores_take_log_path_and_stay_finite)
{
    size_t n = 50, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 11), *C = dot_scores(n, d, X, 1e-3);
    double *K = malloc(n * n * sizeof *K);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    af_sinkhorn_info info;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS, "%s", af_last_error());
    cr_expect_str_eq(af_sinkhorn_type_name(info.path), "symmetric-log");
    cr_expect_leq(info.iterations, 100);
    double re, ce;
    fx_marginal_errors(n, n, K, &re, &ce);
    cr_expect_leq(fmax(re, ce), 2e-9);
    o.path = af_sinkhorn_scaling;
    o.iters = 201; /* ends on rows */
    cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS);
    cr_expect_eq(info.path, af_sinkhorn_log);
    cr_expect(info.fell_back);
    for (size_t i = 0; i < n * n; i++)
        cr_assert(isfinite(K[i]));
    fx_marginal_errors(n, n, K, &re, &ce);
    cr_expect_leq(re, 1e-13);
    cr_expect_leq(ce, info.col_hist[0], "column error decreased");
    af_sinkhorn_free(ws);
    free(X); free(C); free(K);
}

/* The symmetric log passes flush the exps below -708 of their max-shifted
 * rows (sums >= 1). Scores where most terms are that far: the same plan as
 * a plain reference iteration to the same fixed point (the plain average
 * f <- (f - LSE_j(C_ij + f_j)) / 2, 500 times; the library's relaxed step
 * shares its fixed point) that computes every term with scalar exp
 * (subnormals included). */
Test(sinkhorn, symmetric_log_flushed_far_terms_match_reference)
{
    size_t n = 60, d = 2, far = 0;
    double *X = fx_gaussian_cloud(n, d, 1.0, 12), *C = dot_scores(n, d, X, 1e-3);
    for (size_t i = 0; i < n; i++) {
        double mx = -INFINITY;
        for (size_t j = 0; j < n; j++)
            mx = fmax(mx, C[i * n + j]);
        for (size_t j = 0; j < n; j++)
            far += C[i * n + j] - mx < -708.0;
    }
    cr_assert_gt(far, n * n / 2, "most exp arguments below -708 (%zu of %zu)", far, n * n);
    double *K = malloc(n * n * sizeof *K), *f = calloc(n, sizeof *f), *lse = malloc(n * sizeof *lse);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-12;
    af_sinkhorn_info info;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K, &info), AF_SUCCESS, "%s", af_last_error());
    cr_assert_str_eq(af_sinkhorn_type_name(info.path), "symmetric-log");
    for (int it = 0; it < 500; it++) {
        for (size_t i = 0; i < n; i++) {
            double mx = -INFINITY, sum = 0;
            for (size_t j = 0; j < n; j++)
                mx = fmax(mx, C[i * n + j] + f[j]);
            for (size_t j = 0; j < n; j++)
                sum += exp(C[i * n + j] + f[j] - mx);
            lse[i] = mx + log(sum);
        }
        for (size_t i = 0; i < n; i++)
            f[i] = 0.5 * (f[i] - lse[i]);
    }
    double diff = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            diff = fmax(diff, fabs(K[i * n + j] - exp(C[i * n + j] + f[i] + f[j])));
    cr_expect_leq(diff, 1e-11, "symmetric-log vs reference: %.3g", diff);
    af_sinkhorn_free(ws);
    free(X); free(C); free(K); free(f); free(lse);
}

/* The symmetric step's rate: on a PSD kernel (dot scores, exp(C) PSD by
 * the Schur product theorem) the relaxed step alone contracts by 1/3 per
 * step, the Chebyshev-accelerated one by 3 - 2 sqrt(2) ~ 0.172
 * (docs/theory.md). Measured over the tail of a cold solve to 1e-13 the
 * geometric mean factor per step must be well under 1/3 (it fails for the
 * relaxed step alone) and not under the theory's 0.172 by much (an error
 * history that falls faster than the linear analysis allows would mean the
 * measurement is not what it says). */
Test(sinkhorn, symmetric_step_accelerated_rate)
{
    size_t n = 300, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 5), *C = dot_scores(n, d, X, 0.2);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-13;
    af_sinkhorn_info info;
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &info), AF_SUCCESS, "%s", af_last_error());
    cr_assert_str_eq(af_sinkhorn_type_name(info.path), "symmetric");
    const double *e = info.row_hist;
    size_t a = 0, b = info.iterations - 1;
    while (a < b && e[a] > 1e-4) /* past the transient */
        a++;
    cr_assert_gt(b, a + 4, "%zu iterations, tail from %zu", info.iterations, a);
    const double rate = pow(e[b] / e[a], 1.0 / (double)(b - a));
    cr_expect_lt(rate, 0.25, "rate %.3f per step (relaxed alone: 1/3)", rate);
    cr_expect_gt(rate, 0.12, "rate %.3f per step (theory 0.172)", rate);
    cr_log_info("symmetric accelerated rate %.3f over steps %zu-%zu", rate, a, b);
    af_sinkhorn_free(ws);
    free(X); free(C);
}

Test(sinkhorn, warm_start_cuts_iterations)
{
    size_t n = 200, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 12), *C = dot_scores(n, d, X, 0.5);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.path = af_sinkhorn_scaling;
    af_sinkhorn_info cold, warm;
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &cold), AF_SUCCESS);
    /* Convergence is linear, so a warm start saves iterations in proportion
     * to log(initial error): a move of 1e-6 (a small flow step) starts at
     * error ~1e-6 instead of ~1 and needs about log(1e-9/1e-6)/log(1e-9) = 1/3
     * of the iterations (plus the one row step that starts every solve). */
    for (size_t i = 0; i < n * d; i++)
        X[i] *= 1 + 1e-6;
    free(C);
    C = dot_scores(n, d, X, 0.5);
    o.warm_start = 1;
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &warm), AF_SUCCESS);
    cr_expect_leq(warm.iterations, 0.4 * cold.iterations, "warm %zu cold %zu", warm.iterations, cold.iterations);
    /* restarting from the solution of the same problem: done at once */
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &warm), AF_SUCCESS);
    cr_expect_leq(warm.iterations, 2);
    af_sinkhorn_free(ws);
    free(X); free(C);
}

Test(sinkhorn, gsl_style_loop_matches_one_shot)
{
    size_t n = 30;
    double *C = random_scores(n, n, 1.0, 13), *K1 = malloc(n * n * sizeof *K1), *K2 = malloc(n * n * sizeof *K2);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_info info;
    cr_assert_eq(af_sinkhorn(ws, C, NULL, K1, &info), AF_SUCCESS);
    size_t its = info.iterations, count = 0;
    cr_assert_eq(af_sinkhorn_set(ws, C, NULL), AF_SUCCESS);
    while (!af_sinkhorn_done(ws)) {
        cr_assert_eq(af_sinkhorn_iterate(ws), AF_SUCCESS);
        count++;
    }
    af_sinkhorn_matrix(ws, K2);
    cr_expect_eq(count, its);
    cr_expect_eq(memcmp(K1, K2, n * n * sizeof *K1), 0);
    af_sinkhorn_free(ws);
    free(C); free(K1); free(K2);
}

Test(sinkhorn, symmetric_apply_equals_matrix_product)
{
    size_t n = 400, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 18), *C = dot_scores(n, d, X, 1.0);
    double *K = malloc(n * n * sizeof *K);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_info info;
    cr_assert_eq(af_sinkhorn(ws, C, NULL, K, &info), AF_SUCCESS);
    cr_assert_eq(info.path, af_sinkhorn_symmetric);
    size_t ps[] = {1, 2, 8, 12}; /* one-pass kernel up to 8 columns, dsymm above */
    for (int q = 0; q < 4; q++) {
        size_t p = ps[q];
        double *Y = random_scores(n, p, 1.0, 19), *KY = malloc(n * p * sizeof *KY), *R = calloc(n * p, sizeof *R);
        cr_assert_eq(af_sinkhorn_apply(ws, p, Y, KY), AF_SUCCESS);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                for (size_t k = 0; k < p; k++)
                    R[i * p + k] += K[i * n + j] * Y[j * p + k];
        cr_expect_leq(fx_max_abs_diff(n * p, KY, R), 1e-13, "p = %zu", p);
        free(Y); free(KY); free(R);
    }
    /* apply does not disturb the iteration state: one more step is a no-op */
    af_sinkhorn_info again;
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.warm_start = 1;
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &again), AF_SUCCESS);
    cr_expect_leq(again.iterations, 1);
    af_sinkhorn_free(ws);
    free(X); free(C); free(K);
}

Test(sinkhorn, apply_equals_matrix_product)
{
    size_t n = 45, m = 31, p = 3;
    double *C = random_scores(n, m, 1.0, 14), *Y = random_scores(m, p, 1.0, 15);
    double *K = malloc(n * m * sizeof *K), *KY = malloc(n * p * sizeof *KY), *R = calloc(n * p, sizeof *R);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, m);
    const af_sinkhorn_type *paths[] = {af_sinkhorn_scaling, af_sinkhorn_log};
    for (int q = 0; q < 2; q++) {
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.path = paths[q];
        cr_assert_eq(af_sinkhorn(ws, C, &o, K, NULL), AF_SUCCESS);
        cr_assert_eq(af_sinkhorn_apply(ws, p, Y, KY), AF_SUCCESS);
        memset(R, 0, n * p * sizeof *R);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < m; j++)
                for (size_t k = 0; k < p; k++)
                    R[i * p + k] += K[i * m + j] * Y[j * p + k];
        cr_expect_leq(fx_max_abs_diff(n * p, KY, R), 1e-13);
    }
    af_sinkhorn_free(ws);
    free(C); free(Y); free(K); free(KY); free(R);
}

Test(sinkhorn, bad_input_gives_errors)
{
    size_t n = 3;
    double C[9] = {0, 1, 2, 1, 0, NAN, 2, 1, 0};
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    cr_expect_eq(af_sinkhorn(ws, C, NULL, NULL, NULL), AF_EDOM);
    cr_expect_neq(strstr(af_last_error(), "not finite"), NULL);
    C[5] = 3;
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 0;
    cr_expect_eq(af_sinkhorn(ws, C, &o, NULL, NULL), AF_EINVAL);
    o = af_sinkhorn_options_default();
    o.path = af_sinkhorn_symmetric;
    cr_expect_eq(af_sinkhorn(ws, C, &o, NULL, NULL), AF_EINVAL, "C is not symmetric");
    o = af_sinkhorn_options_default();
    o.max_iters = 1;
    o.tol = 1e-15;
    cr_expect_eq(af_sinkhorn(ws, C, &o, NULL, NULL), AF_EMAXITER);
    af_sinkhorn_free(ws);
    cr_expect_null(af_sinkhorn_alloc(0, 3));
}

/* A workspace allocated for several threads must give the same answer when
 * the caller later runs with fewer (per-thread accumulators not reused stale). */
Test(sinkhorn, fewer_threads_after_alloc_same_answer)
{
    size_t n = 300;
    double *C = random_scores(n, n, 0.5, 16), *K1 = malloc(n * n * sizeof *K1), *K2 = malloc(n * n * sizeof *K2);
    int t0 = omp_get_max_threads();
    omp_set_num_threads(2);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.path = af_sinkhorn_log;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K1, NULL), AF_SUCCESS);
    omp_set_num_threads(1);
    cr_assert_eq(af_sinkhorn(ws, C, &o, K2, NULL), AF_SUCCESS);
    omp_set_num_threads(t0);
    double re, ce;
    fx_marginal_errors(n, n, K2, &re, &ce);
    cr_expect_leq(fmax(re, ce), 2e-9);
    cr_expect_leq(fx_max_abs_diff(n * n, K1, K2), 1e-12);
    af_sinkhorn_free(ws);
    free(C); free(K1); free(K2);
}

/* L2 scores at small eps spread far beyond double range, yet the diagonal is
 * every row's maximum, which bounds the symmetric scalings: the automatic
 * choice keeps the fast symmetric scaling path, and it agrees with log space. */
Test(sinkhorn, l2_scores_with_huge_spread_stay_on_symmetric_scaling)
{
    size_t n = 200, d = 2;
    double *X = fx_gaussian_cloud(n, d, 1.0, 17), *C = malloc(n * n * sizeof *C);
    double *w = malloc(AF_SCORES_WORK(n, n, d) * sizeof *w);
    af_scores_params p = af_scores_params_default();
    p.kind = AF_SCORES_L2;
    p.eps = 0.01;
    af_scores(&p, n, n, d, X, X, C, w);
    double lo = 0;
    for (size_t i = 0; i < n * n; i++)
        lo = fmin(lo, C[i]);
    cr_assert_lt(lo, -1000, "spread beyond exp's range");
    double *K1 = malloc(n * n * sizeof *K1), *K2 = malloc(n * n * sizeof *K2);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_info info;
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-12;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K1, &info), AF_SUCCESS);
    cr_expect_eq(info.path, af_sinkhorn_symmetric);
    cr_expect_eq(info.fell_back, 0);
    o.path = af_sinkhorn_symmetric_log;
    cr_assert_eq(af_sinkhorn(ws, C, &o, K2, &info), AF_SUCCESS);
    cr_expect_eq(info.path, af_sinkhorn_symmetric_log);
    cr_expect_leq(fx_max_abs_diff(n * n, K1, K2), 1e-10);
    af_sinkhorn_free(ws);
    free(X); free(C); free(w); free(K1); free(K2);
}

/* Warm potentials so large that the symmetric scalings a = exp(f + s/2)
 * overflow: the path falls back to log space from those (finite)
 * potentials and converges to the cold solution; it used to restart from
 * log(inf) and return NaN marked converged (fmax ignores NaN). */
Test(sinkhorn, symmetric_warm_start_beyond_double_range_falls_back)
{
    const size_t n = 40, d = 2;
    double *X = random_scores(n, d, 1.0, 23), *C = dot_scores(n, d, X, 0.5);
    af_sinkhorn_ws *ws = af_sinkhorn_alloc(n, n);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.path = af_sinkhorn_symmetric;
    af_sinkhorn_info cold, warm;
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &cold), AF_SUCCESS, "%s", af_last_error());
    double *f0 = malloc(n * sizeof *f0);
    memcpy(f0, cold.f, n * sizeof *f0);
    double *big = malloc(n * sizeof *big);
    for (size_t i = 0; i < n; i++)
        big[i] = 800.0; /* exp(800) = inf */
    af_sinkhorn_set_potentials(ws, big, big);
    o.warm_start = 1;
    cr_assert_eq(af_sinkhorn(ws, C, &o, NULL, &warm), AF_SUCCESS, "%s", af_last_error());
    cr_expect(warm.converged);
    for (size_t i = 0; i < n; i++)
        cr_expect(isfinite(warm.f[i]) && fabs(warm.f[i] - f0[i]) < 1e-8, "f[%zu] = %g vs %g", i,
                  warm.f[i], f0[i]);
    /* a NaN state is never reported converged */
    for (size_t i = 0; i < n; i++)
        big[i] = NAN;
    af_sinkhorn_set_potentials(ws, big, big);
    af_status st = af_sinkhorn(ws, C, &o, NULL, &warm);
    cr_expect(st != AF_SUCCESS || !warm.converged, "NaN potentials reported converged");
    af_sinkhorn_free(ws);
    free(X), free(C), free(f0), free(big);
}

/* Score matrices against naive loops; exact symmetry; bad parameters. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/flow.h"
#include "attnflow/scores.h"
#include "support/fixtures.h"

Test(scores, dot_with_A_matches_naive)
{
    size_t n = 17, d = 4;
    double *X = fx_gaussian_cloud(n, d, 1.0, 1), *A = fx_gaussian_cloud(d, d, 1.0, 2);
    double *C = malloc(n * n * sizeof *C), *R = malloc(n * n * sizeof *R), *w = malloc(AF_SCORES_WORK(n, n, d) * sizeof *w);
    af_scores_params p = af_scores_params_default();
    p.A = A;
    p.eps = 0.25;
    cr_assert_eq(af_scores(&p, n, n, d, X, X, C, w), AF_SUCCESS);
    fx_naive_dot_scores(n, d, X, A, 0.25, R);
    cr_expect_leq(fx_max_abs_diff(n * n, C, R), 1e-12);
    free(X); free(A); free(C); free(R); free(w);
}

Test(scores, symmetric_cases_are_exactly_symmetric)
{
    size_t n = 33, d = 3;
    double *X = fx_gaussian_cloud(n, d, 1.0, 3), *C = malloc(n * n * sizeof *C), *w = malloc(AF_SCORES_WORK(n, n, d) * sizeof *w);
    double A[9] = {2, 0.5, 0, 0.5, 1, 0.1, 0, 0.1, 3};
    for (int kind = 0; kind < 3; kind++) {
        af_scores_params p = af_scores_params_default();
        p.kind = kind == 2 ? AF_SCORES_L2 : AF_SCORES_DOT;
        p.A = kind == 1 ? A : NULL;
        cr_assert_eq(af_scores(&p, n, n, d, X, X, C, w), AF_SUCCESS);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                cr_assert_eq(C[i * n + j], C[j * n + i]);
    }
    free(X); free(C); free(w);
}

/* L2 scores at beta = 2, eps = 0.5 and their definition, -2 |x - y|^2 / 1. */
static af_scores_params l2_params(void)
{
    af_scores_params p = af_scores_params_default();
    p.kind = AF_SCORES_L2;
    p.eps = 0.5;
    p.beta = 2;
    return p;
}

static double naive_l2(size_t d, const double *x, const double *y)
{
    double s = 0;
    for (size_t k = 0; k < d; k++)
        s += pow(x[k] - y[k], 2);
    return -2.0 * s / (2 * 0.5);
}

Test(scores, l2_rectangular_matches_naive)
{
    size_t n = 9, m = 14, d = 3;
    double *X = fx_gaussian_cloud(n, d, 1.0, 4), *Y = fx_gaussian_cloud(m, d, 1.0, 5);
    double *C = malloc(n * m * sizeof *C), *w = malloc(AF_SCORES_WORK(n, m, d) * sizeof *w);
    af_scores_params p = l2_params();
    cr_assert_eq(af_scores(&p, n, m, d, X, Y, C, w), AF_SUCCESS);
    double e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++)
            e = fmax(e, fabs(C[i * m + j] - naive_l2(d, X + i * d, Y + j * d)));
    cr_expect_leq(e, 1e-12);
    free(X); free(Y); free(C); free(w);
}

/* L2 self-scores are written row by row (d = 2: its own vectorised loop;
 * small d: a generic one): against the definition, exactly symmetric, a
 * zero diagonal and nothing above 0. */
Test(scores, l2_self_scores_match_naive)
{
    for (size_t d = 2; d <= 3; d++) {
        size_t n = 41;
        double *X = fx_gaussian_cloud(n, d, 1.5, 6 + (int)d), *C = malloc(n * n * sizeof *C);
        double *w = malloc(AF_SCORES_WORK(n, n, d) * sizeof *w);
        af_scores_params p = l2_params();
        cr_assert_eq(af_scores(&p, n, n, d, X, X, C, w), AF_SUCCESS);
        double e = 0;
        for (size_t i = 0; i < n; i++) {
            cr_expect_eq(C[i * n + i], 0.0, "d %zu: diagonal %zu is %.3g", d, i, C[i * n + i]);
            for (size_t j = 0; j < n; j++) {
                e = fmax(e, fabs(C[i * n + j] - naive_l2(d, X + i * d, X + j * d)));
                cr_assert_eq(C[i * n + j], C[j * n + i], "d %zu: not symmetric at %zu %zu", d, i, j);
                cr_assert_leq(C[i * n + j], 0.0);
            }
        }
        cr_expect_leq(e, 1e-12, "d %zu: %.3g from the definition", d, e);
        free(X); free(C); free(w);
    }
}

Test(scores, bad_parameters)
{
    double X[2] = {1, 2}, C[4], w[8];
    af_scores_params p = af_scores_params_default();
    p.eps = 0;
    cr_expect_eq(af_scores(&p, 2, 2, 1, X, X, C, w), AF_EINVAL);
    p.eps = -1;
    cr_expect_eq(af_scores(&p, 2, 2, 1, X, X, C, w), AF_EINVAL);
    p.eps = NAN;
    cr_expect_eq(af_scores(&p, 2, 2, 1, X, X, C, w), AF_EINVAL);
    p.eps = 1;
    double A[1] = {INFINITY};
    p.A = A;
    cr_expect_eq(af_scores(&p, 2, 2, 1, X, X, C, w), AF_EDOM);
    cr_expect_eq(af_scores(&p, 0, 2, 1, X, X, C, w), AF_EINVAL);
    /* L2 with beta < 0: the kernels clip at 0 from above, so every score
     * would come out 0; refused (dot scores take any finite beta) */
    p.A = NULL;
    p.kind = AF_SCORES_L2;
    p.beta = -1;
    cr_expect_eq(af_scores(&p, 2, 2, 1, X, X, C, w), AF_EINVAL);
    p.kind = AF_SCORES_DOT;
    cr_expect_eq(af_scores(&p, 2, 2, 1, X, X, C, w), AF_SUCCESS);
}

/* The attention workspace refuses the same, whatever the backend. */
Test(scores, attention_refuses_l2_with_negative_beta)
{
    const af_backend_type *b[2] = {af_backend_dense, af_backend_tiled};
    for (int k = 0; k < 2; k++) {
        af_flow_params p = af_flow_params_default(8, 2);
        p.backend = b[k];
        p.scores.kind = AF_SCORES_L2;
        p.scores.beta = -0.5;
        af_flow_ws *ws = af_flow_alloc(&p);
        cr_expect_null(ws, "backend %d accepted beta < 0 with L2 scores", k);
        cr_expect(strstr(af_last_error(), "beta") != NULL, "%s", af_last_error());
        af_flow_free(ws);
    }
}

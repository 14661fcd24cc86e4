/* Shared test fixtures: seeded clouds, naive reference implementations. */
#ifndef AF_TEST_FIXTURES_H
#define AF_TEST_FIXTURES_H
#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "attnflow/train.h"

/* n x d Gaussian cloud N(0, s^2 I) from a fixed seed (GSL mt19937). */
double *fx_gaussian_cloud(size_t n, size_t d, double s, unsigned long seed);
/* Largest |a_i - b_i|. */
double fx_max_abs_diff(size_t len, const double *a, const double *b);
/* Naive triple-loop reference: dot scores x_i^T A x_j / eps (A NULL = I). */
void fx_naive_dot_scores(size_t n, size_t d, const double *X, const double *A, double eps, double *C);
/* Naive Sinkhorn: iters alternating normalisations (rows first) of exp(C)
 * in plain long double arithmetic on the materialised matrix. */
void fx_naive_sinkhorn(size_t n, size_t m, const double *C, size_t iters, double *K);
/* Row and column sum errors of K (columns against n/m). */
void fx_marginal_errors(size_t n, size_t m, const double *K, double *row_err, double *col_err);
/* Runs `cli args` through the shell with stderr merged into stdout; the
 * output (truncated to cap - 1 bytes) goes to out. Returns the exit status,
 * -1 if the command did not exit normally. */
int fx_run_cli(const char *cli, const char *args, char *out, size_t cap);
/* Writes text to a fresh temporary file and returns its path (static buffer per call slot). */
const char *fx_temp_file(const char *text);

/* A separable toy classification set for the trainer: n samples of 4
 * tokens in 2-D, label i % 2, tokens N(+-1, 0.5^2) by label (draws from r). */
af_dataset fx_toy_classes(size_t n, gsl_rng *r);

#endif

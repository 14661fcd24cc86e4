/* Attention scores between queries X (n x d) and keys Y (m x d), row-major.
 *   dot: C_ij = (beta / eps) x_i^T A y_j         (A = identity when NULL)
 *   l2 : C_ij = -(beta / eps) |x_i - y_j|^2 / 2
 * When Y == X (same pointer) and A is NULL or symmetric, C is made exactly
 * symmetric (upper triangle mirrored), so that symmetric Sinkhorn paths can
 * test symmetry bit for bit. */
#ifndef AF_SCORES_H
#define AF_SCORES_H

#include <stddef.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

typedef enum { AF_SCORES_DOT = 0, AF_SCORES_L2 = 1 } af_scores_kind;

typedef struct {
    af_scores_kind kind;
    double eps;       /* temperature, > 0 (default 1) */
    double beta;      /* inverse temperature multiplier (default 1) */
    const double *A;  /* d x d bilinear form for dot scores; NULL = identity */
} af_scores_params;

af_scores_params af_scores_params_default(void);

/* Doubles of scratch space af_scores needs. */
#define AF_SCORES_WORK(n, m, d) ((n) * (d) + (n) + (m))

/* Fills C (n x m). work: AF_SCORES_WORK(n, m, d) doubles. Checks sizes,
 * eps > 0 and finiteness of the parameters (not of X, Y: see af_check_finite). */
af_status af_scores(const af_scores_params *p, size_t n, size_t m, size_t d,
                    const double *X, const double *Y, double *C, double *work);

/* 1 if the d x d matrix A is exactly symmetric (NULL counts as symmetric). */
int af_matrix_is_symmetric(size_t d, const double *A);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* KKT conditions of min_Z L(Z) + beta sum_q |Z_q|_* at a solution, checked
 * independently of the dual gap through the subdifferential of the nuclear
 * norm: at Z_q = A S B^T (A, B orthonormal, from the balanced heads) the
 * gradient must be G_q = -beta (A B^T + W) with A^T W = 0, W B = 0 and
 * |W|_2 <= 1. Works for every token-mixing family (the columns of A are
 * the Z-row images of w1 / sqrt(sigma), found with af_convex_z_from_heads). */
#ifndef AF_TEST_CONVEX_KKT_H
#define AF_TEST_CONVEX_KKT_H
#include <stddef.h>
#include "attnflow/convex.h"

typedef struct {
    size_t heads;      /* heads of the balanced factorisation (rel tol 1e-9) */
    double align_err;  /* max |A^T G B + beta I| over blocks, entry-wise */
    double w_norm;     /* max_q |W_q|_2 */
} fx_kkt_result;

fx_kkt_result fx_convex_kkt(af_convex_problem *p, const double *Z, double beta);

/* a[q] = s N(0, 1) from rng (a gsl_rng *, void here to keep GSL out of the header) */
void fx_gaussian_fill(void *rng, size_t len, double s, double *a);
/* max_q |a[q]| */
double fx_maxabs(size_t len, const double *a);
#endif

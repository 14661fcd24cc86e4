/* Private parts of the convex-duality module shared by src/convex*.c. */
#ifndef AF_CONVEX_INTERNAL_H
#define AF_CONVEX_INTERNAL_H

/* OpenBLAS's cblas.h and GSL's gsl_cblas.h declare the same enums: take
 * OpenBLAS's and keep GSL from including its own copy. */
#include <cblas.h>
#define __GSL_CBLAS_H__
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include "attnflow/convex.h"
#include "attnflow/io.h"

/* The operator Z -> f in one shape for both kinds. The outputs are cut into
 * R "rows"; row r owns nr consecutive tokens (X + r*nr*d, F + r*nr*c) and a
 * feature vector feat_r of length K = P d^2, and
 *     F_r = Xblk_r M_r,   M_r (d x c) = sum_q feat_r[q] Zp[q]   (one GEMM),
 * where Zp holds the symmetrised blocks of Z (rows (g, l <= p), columns (k, o);
 * see to_sym in convex.c).
 * linear: R = N, nr = n, feat_i = vec(X_i^T X_i);
 * gated:  R = N n, nr = 1, feat_t = (vec G_{1,t}, ..., vec G_{P,t}). */
struct af_convex_problem {
    af_convex_shape sh;
    size_t P;        /* gates (1 for linear) */
    size_t d2, dc;   /* d^2, d c */
    size_t ds;       /* d (d + 1) / 2: packed symmetric Gram features */
    size_t zg;       /* doubles per gate block: d2 * dc */
    size_t R, nr, K; /* rows, tokens per row, feature length */
    size_t T;        /* tokens N n */
    double w;        /* 1 / T: the loss is a mean over tokens */
    double *X, *Y, *H;
    unsigned char *D; /* gated masks, P x N x n x n */
    double *feat;     /* R x K */
    double *M;        /* R x dc work */
    double *Zp;       /* P ds x dc work */
    double *F, *res;  /* T x c work */
    int has_targets;
};

/* OpenMP only pays off for loops of at least this many flops: below it the
 * fork/join (and spinning threads on a loaded machine) cost more than the
 * loop itself (measured: 25x slower on a 16x4x4 gated problem). */
#define AF_CX_OMP_WORK ((size_t)1 << 22)

/* F = A Z. */
void cx_forward(af_convex_problem *p, const double *Z, double *F);
/* G = (1/T) A^* res (res: unweighted per-token loss gradients). */
void cx_backward(af_convex_problem *p, const double *res, double *G);
/* Mean loss of F; res (nullable) receives grad h per token. */
double cx_loss(const af_convex_problem *p, const double *F, double *res);
/* Bregman divergence of the loss, L(F1) - L(F0) - <grad L(F0), F1 - F0>,
 * computed without cancellation (res0 = grad h at F0). */
double cx_bregman(const af_convex_problem *p, const double *F0, const double *res0,
                  const double *F1);
/* Dual value -(1/T) sum_t h*(s res_t), res = grad h at F. */
double cx_dual(const af_convex_problem *p, const double *F, const double *res, double s);

/* Head-form objective and gradients without allocation (work: cx_heads_work
 * doubles); no argument checks. */
size_t cx_heads_work(const af_convex_problem *p);
void cx_heads_objective(const af_convex_problem *p, double beta, size_t m, const double *W1,
                        const double *W2, const size_t *gate_of, double *objective, double *dW1,
                        double *dW2, double *work);

/* gap / |P|, defined (0) for the exact fit P = gap = 0 */
double cx_relative_gap(double gap, double objective);

/* SVD workspace (src/convex_svd.c): after cx_svd_run, sv (k values,
 * descending), U (rows x k) and Vt (k x cols), row-major, k = min(rows, cols). */
typedef struct {
    size_t rows, cols, k;
    af_convex_svd backend;
    double *sv, *U, *Vt;
    double *a, *work; /* LAPACK */
    int lwork, *iwork;
    int trans;        /* GSL: factor the transpose (GSL needs rows >= cols) */
    gsl_matrix *A, *V;
    gsl_vector *S, *gwork;
    gsl_matrix *Gram; /* spectral norm through the Gram matrix (GSL backend) */
    gsl_vector *eval;
    gsl_eigen_symm_workspace *eig;
} cx_svd;

cx_svd *cx_svd_alloc(size_t rows, size_t cols, af_convex_svd backend);
void cx_svd_free(cx_svd *s);
/* Decomposes in (rows x cols); vectors = 0 asks for the values only. */
af_status cx_svd_run(cx_svd *s, const double *in, int vectors);
/* out = U max(S - tau, 0) V^T (out may equal in); sigma gets the shrunk values. */
af_status cx_svt(cx_svd *s, const double *in, double tau, double *out, double *sigma,
                 size_t *rank);
/* Largest singular value. */
af_status cx_specnorm(cx_svd *s, const double *in, double *value);

#endif

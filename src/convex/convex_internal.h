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

typedef struct cx_family cx_family;

/* One problem: N samples of n tokens (d features), c outputs, and a
 * token-mixing family (attention, mixer, fno) behind the type object fam.
 * Every family has P "blocks" Z_q of zr x zc (one nuclear norm each): the
 * gates (and for B-FNO the channel groups, q = g B + b); a head in block q
 * is a pair (w1 in R^zr, w2 in R^zc) with Z_q = sum_h w1_h w2_h^T up to the
 * fixed reindexing of w1 described by fam->w1_side.
 *
 * Attention. The outputs are cut into R "rows"; row r owns nr consecutive
 * tokens (X + r*nr*d, F + r*nr*c) and a feature vector feat_r of length
 * K = P d^2, and
 *     F_r = Xblk_r M_r,   M_r (d x c) = sum_q feat_r[q] Zp[q]   (one GEMM),
 * where Zp holds the symmetrised blocks of Z (rows (g, l <= p), columns (k, o);
 * see to_sym in convex.c).
 * linear: R = N, nr = n, feat_i = vec(X_i^T X_i);
 * gated:  R = N n, nr = 1, feat_t = (vec G_{1,t}, ..., vec G_{P,t}). */
struct af_convex_problem {
    af_convex_shape sh;
    const cx_family *fam;
    size_t P;        /* nuclear-norm blocks (gates x channel groups) */
    size_t gates;    /* gates (1 for linear) */
    size_t B;        /* fno channel groups (1 otherwise) */
    size_t zr, zc;   /* rows and columns of one block = sizes of w1 and w2 */
    size_t ds;       /* d (d + 1) / 2: packed symmetric Gram features */
    size_t zg;       /* doubles per block: zr * zc */
    size_t R, nr, K; /* attention: rows, tokens per row, feature length */
    size_t T;        /* tokens N n */
    double w;        /* 1 / T: the loss is a mean over tokens */
    double *X, *Y, *H;
    unsigned char *D; /* gated masks (layout per family, see convex.h) */
    double *feat;     /* attention: R x K */
    double *M;        /* attention: R x zc work */
    double *Zp;       /* attention: P ds x zc work; mixer: permuted Z */
    double *F, *res;  /* T x c work */
    void *ext;        /* family-specific workspace (mixer, fno) */
    int has_targets;
};

/* The type object of a token-mixing family: the convex operator and its
 * adjoint, and one head of the nonconvex form (forward and the
 * backpropagation of an output gradient). */
struct cx_family {
    const char *name;
    /* sizes (zr, zc, P, ...) from p->sh; gate arrays of gate_size doubles */
    af_status (*setup)(af_convex_problem *p);
    size_t (*gate_size)(const af_convex_shape *sh);
    /* after X and H are copied: masks, features, plans */
    af_status (*init)(af_convex_problem *p);
    void (*release)(af_convex_problem *p);
    void (*forward)(af_convex_problem *p, const double *Z, double *F);
    void (*backward)(af_convex_problem *p, const double *res, double *G); /* (1/T) A^* res */
    /* one head's outputs on sample i (Fh: n x c, all of it written) */
    void (*head_forward)(const af_convex_problem *p, size_t i, const double *w1, const double *w2,
                         size_t block, double *Fh, double *work);
    /* dw1 += d<R, Fh>/dw1, dw2 likewise, for an output gradient R (n x c) */
    void (*head_backward)(const af_convex_problem *p, size_t i, const double *w1,
                          const double *w2, size_t block, const double *R, double *dw1,
                          double *dw2, double *work);
    size_t (*head_work)(const af_convex_problem *p); /* doubles of work for one head */
    /* > 0: w1 is a side x side row-major matrix whose column-major vec is
     * the row index of Z (attention: d, mixer: n); 0: w1 is the row index */
    size_t (*w1_side)(const af_convex_problem *p);
    size_t (*mask_size)(const af_convex_problem *p); /* bytes of D */
};

extern const cx_family cx_attention, cx_mixer, cx_fno;

/* OpenMP only pays off for loops of at least this many flops: below it the
 * fork/join (and spinning threads on a loaded machine) cost more than the
 * loop itself (measured: 25x slower on a 16x4x4 gated problem). */
#define AF_CX_OMP_WORK ((size_t)1 << 22)

/* F = A Z (dispatches to the family). */
void cx_forward(af_convex_problem *p, const double *Z, double *F);
/* G = (1/T) A^* res (res: unweighted per-token loss gradients). */
void cx_backward(af_convex_problem *p, const double *res, double *G);
/* Row-major C = alpha op(A) op(B) + beta C by plain loops, for the tiny
 * per-sample products of the head forms. */
void cx_small_gemm(int ta, int tb, size_t M, size_t N, size_t K, double alpha, const double *A,
                   size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc);
/* Zeroes the entries of A (len doubles) whose gate bit in the masks of
 * (gate g, sample i) is 0; the masks of one (g, i) are len bytes at
 * p->D + (g N + i) len. No-op for linear problems (p->D NULL). */
void cx_apply_mask(const af_convex_problem *p, size_t g, size_t i, size_t len, double *A);
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

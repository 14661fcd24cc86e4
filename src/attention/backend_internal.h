/* Internals of the attention backends (include/attnflow/backend.h). */
#ifndef AF_BACKEND_INTERNAL_H
#define AF_BACKEND_INTERNAL_H

#include "attnflow/backend.h"
#include "normalize_internal.h"

/* A backend, GSL style: a const object of function pointers. The
 * backend-neutral parts (parameter checks, the copy of A, the score terms)
 * live in backend.c; a backend only says how to store and traverse. */
struct af_backend_type {
    const char *name;
    int single;             /* offers AF_PRECISION_SINGLE */
    /* bytes of the backend's own buffers (af_backend_bytes adds the common ones) */
    double (*bytes)(size_t n, size_t d, af_attn_norm norm, int threads);
    af_status (*init)(af_attn_ws *ws);      /* allocate the backend's buffers */
    void (*release)(af_attn_ws *ws);        /* free them */
    af_status (*softmax)(af_attn_ws *ws, const double *X, double *KX);
    af_status (*sinkhorn)(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                          af_sinkhorn_info *info);
    af_status (*apply)(af_attn_ws *ws, double *KX);
    af_status (*kernel)(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                        double *K);
    af_status (*marginals)(af_attn_ws *ws, double *r, double *c, double *KX, double *KtX);
    af_status (*softmax_colsums)(af_attn_ws *ws, const double *X, double *cs);
    int distributes;  /* 1: computes row blocks across ranks (af_attn_params.comm) */
    /* Optional (NULL: the Sinkhorn workspace ws->sk holds the state, as on
     * dense and tiled): a backend with its own Sinkhorn state says whether
     * a solve is ready to apply and gives or sets its potentials. */
    int (*solved)(const af_attn_ws *ws);
    const double *(*potential)(const af_attn_ws *ws, int col); /* 0: f, 1: g */
    void (*set_potentials)(af_attn_ws *ws, const double *f, const double *g);
    /* Optional: checks and takes new scores sp before af_attn_set_scores
     * stores them (NULL: nothing depends on the scores beyond ws->p). */
    af_status (*set_scores)(af_attn_ws *ws, const af_scores_params *sp);
};

struct af_attn_ws {
    const af_backend_type *type;
    af_attn_params p;     /* scores.A points at the copy A */
    double *A;            /* d x d: the copy of A (p.scores.A = A, or NULL for I) */
    int nthreads;         /* OpenMP threads at allocation (per-thread buffers) */
    const double *X;      /* tokens of the last Sinkhorn solve */
    size_t row_begin, row_end; /* this rank's rows of K X (0, n on one process) */
    af_sinkhorn_ws *sk;   /* Sinkhorn state (dense: stored kernel; tiled: matrix-free) */

    /* Score terms C_ij = s L_i . x_j + rbias_i + cbias_j, s = beta / eps,
     * L = X (or X A) for dot scores; L2: rbias_i = cbias_i = -s |x_i|^2 / 2. */
    double s;
    int l2;
    const double *L;
    double *XA;           /* n x d */
    double *rbias, *cbias;/* n each */
    double *Xt;           /* d x n: X transposed (row kernels) */
    double *rows;         /* nthreads x n: per-thread kernel row */

    /* dense */
    double *C;            /* n x n scores (Sinkhorn, or af_attn_kernel) */
    double *swork;        /* AF_SCORES_WORK(n, n, d) */
    double *E;            /* tile x n block of SoftMax rows (large d) */
    double *rinv;         /* tile */
    size_t tile;
    double *K;            /* n x n, on first use (marginals) */
    /* tiled */
    double *acc;          /* nthreads x (d + 1) x n column accumulators (SoftMax / USA:
                           * allocated with the workspace; otherwise on first use) */
    float *Xtf;           /* d x n: X^T in float (single precision only) */
    double *symw;         /* n: column weights of the symmetric pass */
    float *symwf;         /* n: the same in float (single precision only) */
    /* pm */
    af_pm_attn *pm;       /* the particle-mesh attention (attnflow/pm.h) */
    int pm_solved;        /* its potentials are those of a Sinkhorn solve of X */
};

/* AF_ENUMERIC with the message of a non-finite SoftMax / USA kernel. */
af_status af__attn_softmax_failed(const af_attn_ws *ws);

/* Score terms of X into ws (L, rbias, cbias; Xt when with_xt). */
void af__attn_prepare(af_attn_ws *ws, const double *X, int with_xt);
/* 1 if the n d tokens are all finite (the L2 Sinkhorn shortcuts that skip
 * the scores' own finiteness check require it). */
int af__tokens_finite(const af_attn_ws *ws, const double *X);

/* Bytes of the buffers every backend has (XA, rbias, cbias, Xt, rows). */
double af__attn_common_bytes(size_t n, size_t d, int threads);
/* Bytes of a Sinkhorn workspace: stored (K0) or matrix-free (with the
 * symmetric path's accumulators for p = d right-hand sides). */
double af__sinkhorn_bytes(size_t n, size_t m, size_t d, int threads, int matrix_free);

/* Tiled SoftMax / USA on symmetric self-scores (softmax_sym_tiled.c):
 * af__tiled_sym_prepare says whether the upper-triangle pass applies (d = 2,
 * s > 0, one process; L2 scores, or SoftMax on dot scores with A = I whose
 * squared norms s |x|^2 span a range the precision can weight) and sets
 * its column weights; then the pass itself (after af__attn_prepare with
 * X^T; needs ws->acc of nthreads x 3 n, and ws->Xtf filled in single
 * precision). Returns nonzero if a row is not finite. */
int af__tiled_sym_prepare(af_attn_ws *ws, int usa);
/* The shape the upper-triangle pass needs: d = 2, s > 0, one process owning
 * every row (af__tiled_sym_prepare's first test; the Sinkhorn hook's too). */
int af__tiled_sym_applies(const af_attn_ws *ws);
/* ws->Xtf = X^T in float, if allocated (single precision's float passes). */
void af__float_coordinates(af_attn_ws *ws);
int af__tiled_softmax_sym(af_attn_ws *ws, int usa, double *KX);
/* The same pass with weights w (n) for the symmetric Sinkhorn iteration on
 * L2 self-scores (score source hook sym_pass, see normalize_internal.h):
 * acc[k n + i] = sum_j E_ij w_j y_jk, y = (1, x_0, x_1), k < rhs (3, or 1:
 * the row sums alone), E_ij = exp(C_ij), terms below the exp's fast range
 * flushed; double sums, float32 exps in single precision. acc: threads x 3
 * n, the caller's (the first rhs n hold the result). ctx: the af_attn_ws,
 * after af__attn_prepare. */
void af__tiled_sym_weighted(const void *ctx, const double *w, int rhs, double *acc,
                            int threads);

extern const af_backend_type af_backend_type_dense;
extern const af_backend_type af_backend_type_tiled;
extern const af_backend_type af_backend_type_pm;

#endif

/* Building blocks of the small Transformer/Sinkformer of `attnflow train`,
 * each with a hand-written exact backward pass (docs/theory.md section 6).
 *
 * Conventions: row-major double arrays, a batch of `rows` vectors stacked
 * row by row. Every backward function ACCUMULATES (+=) into the gradients it
 * is given (parameters and inputs alike), so residual connections and
 * parameter sums over a batch need no extra code; callers zero them first.
 * Gradients the caller does not need may be NULL. No allocation, no I/O. */
#ifndef AF_NN_H
#define AF_NN_H

#include <stddef.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* LayerNorm epsilon (PyTorch's default). */
#define AF_NN_LN_EPS 1e-5

/* Y = X W + b; X rows x in, W in x out, b out (may be NULL), Y rows x out. */
void af_nn_linear_forward(size_t rows, size_t in, size_t out, const double *X,
                          const double *W, const double *b, double *Y);
/* dX += dY W^T, dW += X^T dY, db += column sums of dY. */
void af_nn_linear_backward(size_t rows, size_t in, size_t out, const double *X,
                           const double *W, const double *dY, double *dX, double *dW,
                           double *db);

/* Y = gamma * (X - mean) / sqrt(var + eps) + beta per row (biased variance);
 * mean and rstd (rows each) are kept for the backward pass. */
void af_nn_layernorm_forward(size_t rows, size_t d, const double *X, const double *gamma,
                             const double *beta, double *Y, double *mean, double *rstd);
void af_nn_layernorm_backward(size_t rows, size_t d, const double *X, const double *gamma,
                              const double *mean, const double *rstd, const double *dY,
                              double *dX, double *dgamma, double *dbeta);

/* Y = max(X, 0); dX += dY where X > 0. */
void af_nn_relu_forward(size_t n, const double *X, double *Y);
void af_nn_relu_backward(size_t n, const double *X, const double *dY, double *dX);

/* Unrolled log-domain Sinkhorn of scores S (n x n) with n_it >= 1
 * normalisations, alternating rows, columns, rows, ... (n_it = 1 is SoftMax,
 * computed as exp(S - rowmax) / sum so that it matches a plain SoftMax).
 * The log-potentials are kept in S, which ends as log A; after the first
 * step each normalisation divides the previous matrix by its row (column)
 * sums, i.e. exp(L - log sum) without new exponentials, and any sum that
 * underflowed is recomputed from S by a max-shifted log-sum-exp.
 * hist (n_it * n * n) receives the matrix after each normalisation; the
 * last one is the attention A, also copied to A when A != NULL.
 * work: 2 * n doubles. */
void af_nn_sinkhorn_forward(size_t n, size_t n_it, double *S, double *hist, double *A,
                            double *work);
/* dS += d(loss)/dS given dA = d(loss)/dA, through all n_it normalisations
 * (exact: each step L' = L - lse(L) has Jacobian dL = dL' - P' * sum(dL')).
 * work: n * n doubles. */
void af_nn_sinkhorn_backward(size_t n, size_t n_it, const double *hist, const double *dA,
                             double *dS, double *work);

/* One attention head on one sequence of n tokens:
 * S = scale Q K^T, A = sinkhorn_{n_it}(S), O = A V. Q, K, V, O are n x dh
 * slices with leading dimensions ldq, ldk, ldv, ldo (so heads can live side
 * by side in one QKV matrix). hist: n_it * n * n (A is its last slice);
 * S is scratch (n * n + 2 * n). */
void af_nn_attention_forward(size_t n, size_t dh, double scale, size_t n_it,
                             const double *Q, size_t ldq, const double *K, size_t ldk,
                             const double *V, size_t ldv, double *S, double *hist,
                             double *O, size_t ldo);
/* dQ += .., dK += .., dV += .. given dO (any may be NULL). work: 3 * n * n doubles. */
void af_nn_attention_backward(size_t n, size_t dh, double scale, size_t n_it,
                              const double *Q, size_t ldq, const double *K, size_t ldk,
                              const double *V, size_t ldv, const double *hist,
                              const double *dO, size_t ldo, double *dQ, double *dK,
                              double *dV, double *work);

/* Softmax cross-entropy, averaged over rows: returns the mean loss, writes
 * class probabilities (rows x classes) and, if dlogits != NULL, adds
 * scale * (probs - onehot) / rows to it. *correct (may be NULL) counts the
 * rows whose arg-max is the label. */
double af_nn_xent(size_t rows, size_t classes, const double *logits, const int *labels,
                  double *probs, double *dlogits, double scale, size_t *correct);

/* Adam (Kingma & Ba) on a flat parameter vector, PyTorch's update rule. */
typedef struct {
    double lr, beta1, beta2, eps;
} af_adam_options;
af_adam_options af_adam_options_default(void); /* 1e-3, 0.9, 0.999, 1e-8 */
/* One step t (>= 1): m, v (n each) are the moment estimates, updated in place. */
void af_adam_step(const af_adam_options *opt, size_t n, unsigned long t, double *param,
                  const double *grad, double *m, double *v);

/* Profiling counters: time spent in the layers' matrix products (CBLAS
 * dgemm), for make bench's "dgemm share" of a training epoch. Off by default;
 * when on, each product costs two clock reads. The counters are process-wide
 * and updated from the calling thread: toggle and read them between runs. */
typedef struct {
    double gemm_seconds;      /* wall time inside the products */
    unsigned long gemm_calls; /* number of products */
} af_nn_profile;
void af_nn_profile_enable(int on);   /* also resets the counters */
af_nn_profile af_nn_profile_get(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* Convex duality of attention (Sahiner et al., ICML 2022; docs/theory.md section 8).
 *
 * Model. N token matrices X_i (n x d), targets Y_i (n x c). A linear
 * self-attention layer with m heads
 *     f(X) = sum_h X W1_h X^T X W2_h,    W1_h: d x d,  W2_h: d x c,
 * and its gated-ReLU variant, where head h belongs to gate g(h) with a fixed
 * 0/1 mask D_g(X)[t,s] = 1[x_t^T H_g x_s >= 0] (H_g a random gate matrix):
 *     f(X) = sum_h (D_g(h)(X) o (X W1_h X^T)) X W2_h.
 * Loss: the mean over all N n tokens of h(f_t, y_t), with
 *     squared  h(f, y) = |f - y|^2 / 2,
 *     ce       h(f, y) = logsumexp(f) - <y, f>   (y a probability vector).
 * Nonconvex training problem (weight decay beta):
 *     min_W  L(f) + (beta/2) sum_h (|W1_h|_F^2 + |W2_h|_F^2).
 *
 * Z form (derived in src/convex.c). With u_h = vec(W1_h) (column-major,
 * index l*d + k for W1[k,l]) and v_h = vec(W2_h) (row-major, index p*c + o
 * for W2[p,o]), every gate g has Z_g = sum_{h in g} u_h v_h^T, a d^2 x dc
 * matrix of d x c blocks Z^{(l,p)}, and
 *     linear:  f(X) = sum_{l,p} G[l,p] X Z^{(l,p)},   G = X^T X,
 *     gated:   f_t  = sum_g x_t^T sum_{l,p} G_{g,t}[l,p] Z_g^{(l,p)},
 *              G_{g,t} = sum_s D_g[t,s] x_s x_s^T.
 * Since |Z|_* <= (1/2) sum (|W1_h|^2 + |W2_h|^2) with equality for the
 * balanced SVD factorisation, the training problem has the optimal value of
 *     min_Z  L(A Z) + beta sum_g |Z_g|_*       (convex)
 * as soon as the head count covers rank(Z*) (per gate).
 *
 * Layout of every Z array in this API: gates blocks of d^2 x dc, row-major,
 * Z[g][(l*d + k)*(d*c) + p*c + o].
 *
 * Certificate. For the dual point theta_t = s grad h(f_t), s = min(1,
 * beta / max_g |G_g|_2) (G = grad L(Z)), weak duality gives
 *     D = -(1/(Nn)) sum_t h*(theta_t) <= optimum <= P(Z),
 * so gap = P - D bounds the suboptimality of Z; at Z = 0 the gap is exactly
 * zero iff max_g |G_g(0)|_2 <= beta. The solver stops on gap/P <= tol.
 * Away from Z = 0, |G|_2 <= beta is necessary but not sufficient (optimality
 * also needs G = -beta (U V^T + W) aligned with Z = U S V^T), so
 * (|G|_2/beta - 1)_+ is not a gap bound there; see tests/test_convex.c.
 *
 * As G is symmetric, only Z^{(l,p)} + Z^{(p,l)} reaches the outputs: the
 * operator Z -> f has a null space, and the nuclear norm picks the
 * cheapest Z among those with equal outputs (so does weight decay).
 */
#ifndef AF_CONVEX_H
#define AF_CONVEX_H

#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* Activation of a head (linear or gated ReLU) and the token mixing it sits on. */
typedef enum { AF_CONVEX_LINEAR = 0, AF_CONVEX_GATED } af_convex_kind;
typedef enum { AF_CONVEX_SQUARED = 0, AF_CONVEX_CE } af_convex_loss;
typedef enum { AF_CONVEX_ATTENTION = 0, AF_CONVEX_MIXER, AF_CONVEX_FNO } af_convex_mixing;

/* Parses "linear"/"gated", "squared"/"ce" and "attention"/"mixer"/"fno". */
af_status af_convex_kind_from_name(const char *name, af_convex_kind *kind);
af_status af_convex_loss_from_name(const char *name, af_convex_loss *loss);
af_status af_convex_mixing_from_name(const char *name, af_convex_mixing *mixing);

/* ---- the problem: data, gates and the linear operator Z -> f ---- */

typedef struct af_convex_problem af_convex_problem;

typedef struct {
    af_convex_kind kind;
    af_convex_loss loss;
    size_t N, n, d, c; /* samples, tokens per sample, token dimension, outputs */
    size_t gates;      /* gated: number of gate matrices P (linear: ignored, 1) */
    af_convex_mixing mixing; /* default (0) attention */
    size_t blocks;     /* fno: channel groups B of B-FNO (0 or 1: plain FNO); B | d, B | c */
    size_t grid_h, grid_w; /* fno: tokens on an h x w grid, row-major (h w = n);
                            * 0, 0: a 1-D sequence of n tokens */
} af_convex_shape;

/* How Z and a head are laid out (see docs/convex.md):
 *   Z = blocks matrices Z_q of rows x cols, row-major, one nuclear norm each;
 *   a head in block q is W1 (rows doubles) and W2 (cols doubles);
 *   block q = g * groups + b (gate g, B-FNO channel group b).
 * attention: W1 d x d, W2 d x c (rows d^2, cols d c), blocks = gates;
 * mixer:     W1 n x n (token mixing, W1[u,t]: token t into u), W2 d x c,
 *            Z row t n + u = W1[u,t], column k c + p = W2[k,p];
 * fno:       W1 = w1 in R^{n d/B} (index delta (d/B) + k: shift delta, channel
 *            k of the group), W2 = w2 in R^{c/B}; Z = sum w1 w2^T directly. */
typedef struct {
    size_t blocks, rows, cols, gates, groups;
} af_convex_layout;
/* Doubles per gate: attention d^2 (H_g), mixer n^2 (H_g, n x n), fno n d (h_g). */
size_t af_convex_gate_size(const af_convex_shape *shape);

/* Copies X (N x n x d) and, for gated, the gate weights H (gates x gate_size),
 * and precomputes the Gram features. Targets are set separately (the
 * synthetic teacher needs the problem to compute them). */
af_status af_convex_problem_alloc(af_convex_problem **prob, const af_convex_shape *shape,
                                  const double *X, const double *H);
void af_convex_problem_free(af_convex_problem *prob);
/* Y: N x n x c; for ce every row must be a probability vector. */
af_status af_convex_problem_set_targets(af_convex_problem *prob, const double *Y);
af_convex_shape af_convex_problem_shape(const af_convex_problem *prob);
af_convex_layout af_convex_problem_layout(const af_convex_problem *prob);
/* Number of doubles in Z: blocks * rows * cols. */
size_t af_convex_z_size(const af_convex_problem *prob);
/* Read access to the stored tokens, targets, and the gate masks of sample i
 * (1 = pass; NULL for linear): attention gate g at mask + (g*N + i) n^2
 * (n x n), mixer at (g*N + i) n d (n x d), fno at (g*N + i) n (one bit
 * per token). */
const double *af_convex_problem_tokens(const af_convex_problem *prob);
const double *af_convex_problem_targets(const af_convex_problem *prob);
const unsigned char *af_convex_problem_masks(const af_convex_problem *prob);

/* FNO evaluation engine of the operator Z -> F and its adjoint: through
 * FFTW over the token grid (default) or as dense circulant products (the
 * reference). Attention and mixer problems ignore it. */
typedef struct af_convex_fno_engine af_convex_fno_engine;
extern const af_convex_fno_engine *const af_convex_fno_fftw;
extern const af_convex_fno_engine *const af_convex_fno_dense;
af_status af_convex_problem_set_fno_engine(af_convex_problem *prob,
                                           const af_convex_fno_engine *engine);

/* Outputs of the Z form: F = A Z (N x n x c). */
af_status af_convex_predict(af_convex_problem *prob, const double *Z, double *F);
/* Mean loss of outputs F against the targets. */
af_status af_convex_loss_value(const af_convex_problem *prob, const double *F, double *loss);
/* Loss at Z and its gradient G (same layout as Z). G may be NULL. */
af_status af_convex_gradient(af_convex_problem *prob, const double *Z, double *loss, double *G);
/* Nuclear norm of a rows x cols matrix (GSL SVD). */
af_status af_nuclear_norm(size_t rows, size_t cols, const double *A, double *value);

typedef struct {
    double objective; /* P(Z) = loss + penalty */
    double loss;
    double penalty;   /* beta sum_g |Z_g|_* */
    double dual;      /* D(theta) <= optimum */
    double gap;       /* P - D >= 0 (up to rounding) */
    double rel_gap;   /* gap / |P| */
    double grad_norm; /* max_g |G_g|_2 */
    double grad_ratio;/* grad_norm / beta: <= 1 is necessary for optimality */
} af_convex_certificate;

/* Full certificate at Z (one forward, one backward, SVDs). */
af_status af_convex_certify(af_convex_problem *prob, double beta, const double *Z,
                            af_convex_certificate *cert);

/* ---- head form (the nonconvex parametrisation) ---- */

/* Outputs of m heads: W1 (m x rows), W2 (m x cols) (af_convex_layout);
 * gate_of (m entries, the block q < blocks of each head) or NULL (all in
 * block 0). */
af_status af_convex_heads_predict(const af_convex_problem *prob, size_t m, const double *W1,
                                  const double *W2, const size_t *gate_of, double *F);
/* Objective loss + (beta/2) sum |W|^2 and its gradients (dW1, dW2 may be NULL). */
af_status af_convex_heads_objective(const af_convex_problem *prob, double beta, size_t m,
                                    const double *W1, const double *W2, const size_t *gate_of,
                                    double *objective, double *dW1, double *dW2);
/* Z_q = sum_{h in q} u_h v_h^T (the identity's map heads -> Z). */
af_status af_convex_z_from_heads(const af_convex_problem *prob, size_t m, const double *W1,
                                 const double *W2, const size_t *gate_of, double *Z);
/* Balanced SVD factorisation of Z: one head per singular value above
 * rel_tol * (largest singular value of Z), scaled by sqrt(sigma). Writes at
 * most cap heads (cap >= blocks * min(rows, cols) always suffices); *m is the
 * count. sigma (optional, cap entries) receives the singular values. */
af_status af_convex_heads_from_z(const af_convex_problem *prob, const double *Z, double rel_tol,
                                 size_t cap, size_t *m, double *W1, double *W2, size_t *gate_of,
                                 double *sigma);

/* Token clustering read off the heads: C (n x m) gets, for the tokens of
 * sample i, the norm of each head's output |f_h(X_i)[t,:]|; a token's group
 * is the head that dominates its output. */
af_status af_convex_head_contributions(const af_convex_problem *prob, size_t m, const double *W1,
                                       const double *W2, const size_t *gate_of, size_t sample,
                                       double *C);

/* ---- FISTA solver (GSL style: alloc, set, iterate, read state) ---- */

/* SVD backend of the proximal step: LAPACK dgesdd (from the linked
 * OpenBLAS) or GSL's Golub-Reinsch SVD (slower, the reference). */
typedef enum { AF_CONVEX_SVD_LAPACK = 0, AF_CONVEX_SVD_GSL } af_convex_svd;

typedef struct {
    double beta;         /* weight decay / nuclear-norm weight (> 0) */
    double tol;          /* stop when the relative gap <= tol (default 1e-6) */
    size_t max_iter;     /* default 5000 */
    double step;         /* initial step; <= 0: 1 / L for the squared loss, 2 / L for
                          * cross-entropy (curvature <= L/2), L = power-iteration
                          * estimate of the largest eigenvalue of (1/T) A^* A */
    double backtrack;    /* step shrink factor in (0,1) (default 0.5) */
    double grow;         /* step growth tried before each step, >= 1 (default 1.1) */
    int restart;         /* gradient-based adaptive restart (default 1) */
    int accelerate;      /* 0: plain proximal gradient (default 1) */
    size_t gap_every;    /* certificate every k iterations (default 1) */
    af_convex_svd svd;   /* default AF_CONVEX_SVD_LAPACK */
} af_convex_options;

af_convex_options af_convex_options_default(void);

typedef struct {
    size_t iter;
    double objective, loss, penalty;
    double gap, rel_gap, dual, grad_norm, grad_ratio; /* at the last certified iterate */
    size_t rank;          /* total rank over gates after the last prox */
    double step;
    size_t restarts, backtracks;
    double seconds;       /* wall time inside set/iterate */
    double svd_seconds;   /* of which in SVDs */
    int certified;        /* the certificate fields refer to the current iterate */
    int converged;        /* rel_gap <= tol */
} af_convex_state;

typedef struct af_convex_solver af_convex_solver;

af_convex_solver *af_convex_solver_alloc(af_convex_problem *prob);
void af_convex_solver_free(af_convex_solver *s);
/* Starts from Z0 (NULL: zero). Certifies the starting point. */
af_status af_convex_solver_set(af_convex_solver *s, const af_convex_options *opt,
                               const double *Z0);
/* One FISTA step (with backtracking; certificate every gap_every steps). */
af_status af_convex_solver_iterate(af_convex_solver *s);
const af_convex_state *af_convex_solver_state(const af_convex_solver *s);
const double *af_convex_solver_z(const af_convex_solver *s);
/* Singular values of the current iterate, block after block, each
 * min(rows, cols) long, descending (exact: from the last prox). */
const double *af_convex_solver_sigma(const af_convex_solver *s);

/* One-shot: iterates to tol or max_iter. Z (in: start or NULL-equivalent
 * zeros; out: solution). Returns AF_EMAXITER (with Z and state filled) when
 * the tolerance was not reached. */
af_status af_convex_solve(af_convex_problem *prob, const af_convex_options *opt, double *Z,
                          af_convex_state *state);

/* Singular value thresholding of a rows x cols matrix in place:
 * A <- U max(S - tau, 0) V^T; sigma (min(rows,cols)) receives the shrunk
 * values, descending; *rank their count above 0. Workspace-free helper. */
af_status af_svt(size_t rows, size_t cols, double *A, double tau, double *sigma, size_t *rank);

/* ---- nonconvex baseline: Adam on the heads ---- */

typedef struct {
    double beta;      /* weight decay, as in the convex problem */
    double lr;        /* default 1e-2 */
    double beta1, beta2, eps; /* Adam (0.9, 0.999, 1e-8) */
    double init_scale;/* heads ~ N(0, init_scale^2) (default 0.1) */
} af_convex_adam_options;

af_convex_adam_options af_convex_adam_options_default(void);

typedef struct af_convex_adam af_convex_adam;

/* m heads; head h goes to block h mod blocks. */
af_convex_adam *af_convex_adam_alloc(af_convex_problem *prob, size_t m);
void af_convex_adam_free(af_convex_adam *a);
af_status af_convex_adam_set(af_convex_adam *a, const af_convex_adam_options *opt, gsl_rng *rng);
/* One full-batch Adam step; *objective is the value before the step. */
af_status af_convex_adam_iterate(af_convex_adam *a, double *objective);
/* The current heads (m x rows, m x cols) and block assignment. */
const double *af_convex_adam_w1(const af_convex_adam *a);
const double *af_convex_adam_w2(const af_convex_adam *a);
const size_t *af_convex_adam_gates(const af_convex_adam *a);

/* ---- token features of a frozen backbone (attnflow train --features-out) ---- */

typedef struct {
    size_t n, d;            /* tokens per sample, features per token */
    size_t grid_h, grid_w;  /* token grid (0 0: none given) */
    size_t classes;         /* largest label + 1 */
    size_t N[2];            /* samples: [0] train, [1] test */
    double *x[2];           /* N[k] x n x d */
    int *y[2];              /* N[k] labels */
} af_convex_features;

/* Reads a features file; AF_EFORMAT (file and reason) on wrong sizes,
 * non-finite values, bad or missing labels, or a missing train/test set. */
af_status af_convex_features_read(const char *path, af_convex_features *f);
void af_convex_features_free(af_convex_features *f);
/* Average pooling of the feature axis to dim (<= d) windows, in place. */
af_status af_convex_features_pool(af_convex_features *f, size_t dim);
/* Mean over the tokens of every sample, in place (n becomes 1, no grid). */
void af_convex_features_pool_tokens(af_convex_features *f);
/* Every feature centred and scaled to unit variance over the training
 * tokens (the same map on the test set), then scaled by 1/sqrt(n) as the
 * synthetic tokens are, so that X^T X stays O(1). */
void af_convex_features_standardise(af_convex_features *f);

/* ---- synthetic data ---- */

typedef struct {
    size_t clusters;      /* token clusters (default 3) */
    double spread;        /* std of the cluster centres (default 1) */
    double width;         /* std within a cluster (default 0.3) */
    size_t teacher_heads; /* heads of the planted teacher (default 2) */
    double noise;         /* squared: Gaussian noise std on the normalised
                             targets; ce: std of the logit noise (default 0.1) */
    double temperature;   /* ce: teacher logits are scaled to this RMS (default 3) */
} af_convex_synth_params;

af_convex_synth_params af_convex_synth_params_default(void);

/* Tokens (N x n x d): x = centre + width * N(0, I), scaled by 1/sqrt(n) so
 * that the Gram matrices stay O(1); labels (N x n, optional) the clusters. */
af_status af_convex_synth_tokens(const af_convex_synth_params *p, size_t N, size_t n, size_t d,
                                 gsl_rng *rng, double *X, size_t *cluster);
/* Gate matrices (gates x d x d), standard Gaussian (attention). */
af_status af_convex_synth_gates(size_t gates, size_t d, gsl_rng *rng, double *H);
/* Gate weights of any family: shape->gates x af_convex_gate_size(shape),
 * standard Gaussian. */
af_status af_convex_synth_gate_weights(const af_convex_shape *shape, gsl_rng *rng, double *H);
/* Targets from a random teacher in head form on the problem's tokens (and
 * gates), normalised to unit RMS: squared: + noise; ce: one-hot argmax of
 * the logits (scaled to RMS temperature) plus Gaussian noise. Y: N x n x c. */
af_status af_convex_synth_targets(const af_convex_problem *prob, const af_convex_synth_params *p,
                                  gsl_rng *rng, double *Y);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

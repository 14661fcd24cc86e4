/* Particle-mesh (PM) attention for tokens in d <= 3 (README "Particle-mesh
 * backend").
 *
 * 1. The discrete Gauss transform
 *        out_ic = sum_j W_jc exp(-|x_i - x_j|^2 / (2 s^2))      (k columns c)
 *    in O(n w^d + G log G) instead of O(n^2): the weighted particles are
 *    spread onto a uniform grid with a Gaussian window of variance tau, the
 *    grid is convolved with the Gaussian of variance s^2 - 2 tau by
 *    multiplying its DFT with that Gaussian's exact Fourier symbol (FFTW),
 *    and the result is interpolated back with the same window. The three
 *    Gaussians compose to exactly the kernel of variance s^2; what is left
 *    is the grid's aliasing, the window's truncation and the periodic wrap,
 *    each held below the requested relative accuracy tol. The grid box
 *    follows the cloud, padded so that nothing wraps; plans are made once
 *    per grid size.
 *
 * 2. Attention on top of it: with L2 scores C_ij = -beta |x_i - x_j|^2 /
 *    (2 eps), or dot scores with A = a I (C_ij = c x_i.x_j = q_i + q_j -
 *    c |x_i - x_j|^2 / 2, q_i = c |x_i|^2 / 2, c = beta a / eps > 0), the
 *    SoftMax and Sinkhorn kernels are K_ij = exp(a_i + b_j) G_ij with G the
 *    Gaussian of s^2 = eps / beta (resp. 1 / c) and the scalings q folded
 *    into the potentials. Row sums, column sums, log-sum-exps and K Y are
 *    Gauss transforms with weights exp(b_j - max b) (log-stabilised: the
 *    shift is carried in the potentials).
 *
 * Usage (engine):
 *   af_pm_ws *w = af_pm_alloc(d, kmax);
 *   af_pm_set(w, n, X, s, tol);            (box, grid, plans; X kept by pointer)
 *   af_pm_apply(w, k, W, out);              (as often as needed)
 *   af_pm_free(w);
 * Usage (attention):
 *   af_pm_attn *at = af_pm_attn_alloc(n, d, &scores, tol);
 *   af_pm_attn_set(at, X);
 *   af_pm_attn_softmax(at)  or  af_pm_attn_sinkhorn(at, &opt, &info);
 *   af_pm_attn_apply(at, p, Y, KY);         (K Y for the current kernel)
 */
#ifndef AF_PM_H
#define AF_PM_H

#include <stddef.h>
#include "attnflow/error.h"
#include "attnflow/normalize.h"
#include "attnflow/scores.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so where it is built with -fvisibility=hidden. */
#pragma GCC visibility push(default)

#define AF_PM_MAX_D 3
#define AF_PM_TOL_DEFAULT 1e-8

/* The grid and window in use, and the measured wrap. */
typedef struct {
    size_t d;
    size_t grid[AF_PM_MAX_D];  /* grid points per dimension (1 beyond d) */
    size_t points;             /* product of grid[] */
    double h;                  /* grid spacing (all dimensions) */
    double s;                  /* kernel standard deviation */
    double tau;                /* window variance (tau = s^2 / 4) */
    size_t window;             /* window width in grid points per dimension */
    double lo[AF_PM_MAX_D];    /* grid origin (first grid point) */
    double wrap_mass;          /* measured: mass of a unit impulse at the edge of the
                                * occupied zone that the periodic FFT carries into the
                                * zone across the box (relative; must be <= tol) */
    size_t plans;              /* FFTW plans made since af_pm_alloc */
    double tol;
} af_pm_info;

typedef struct af_pm_ws af_pm_ws;

/* Workspace for d in 1..3 and up to kmax weight columns. NULL: see af_last_error. */
af_pm_ws *af_pm_alloc(size_t d, size_t kmax);
void af_pm_free(af_pm_ws *w);

/* Sets the points X (n x d, row-major; kept by pointer until the next set)
 * and the kernel width s > 0, for relative accuracy tol in (0, 0.01].
 * Chooses the box, the grid and the window; replans only when the grid
 * must grow or is more than 8 times too big. AF_EDOM for non-finite X. */
af_status af_pm_set(af_pm_ws *w, size_t n, const double *X, double s, double tol);

/* out (n x k) = sum_j W_j exp(-|x_i - x_j|^2 / (2 s^2)), W (n x k, row-major),
 * 1 <= k <= kmax. out must not overlap W. AF_EDOM for non-finite W. */
af_status af_pm_apply(af_pm_ws *w, size_t k, const double *W, double *out);

void af_pm_get_info(const af_pm_ws *w, af_pm_info *info);

/* One-shot transform (allocates and frees a workspace). info may be NULL. */
af_status af_pm_gauss(size_t n, size_t d, const double *X, double s, double tol, size_t k,
                      const double *W, double *out, af_pm_info *info);

/* ---- attention ---- */

typedef struct af_pm_attn af_pm_attn;

/* Checks d <= 3, L2 scores or dot scores with A = a I (a beta > 0), and
 * allocates for n tokens. NULL with af_last_error for anything else. */
af_pm_attn *af_pm_attn_alloc(size_t n, size_t d, const af_scores_params *sp, double tol);
void af_pm_attn_free(af_pm_attn *at);

/* Sets the tokens (n x d; kept by pointer). AF_EDOM for non-finite tokens. */
af_status af_pm_attn_set(af_pm_attn *at, const double *X);

/* SoftMax: K_ij = exp(C_ij) / sum_l exp(C_il) (one Gauss transform). */
af_status af_pm_attn_softmax(af_pm_attn *at);

/* Sinkhorn to opt->tol (path NULL or symmetric: the averaged symmetric
 * update f <- (f - LSE_j(C_ij + f_j)) / 2; scaling or log: alternating row and
 * column normalisations), or exactly opt->iters alternating normalisations
 * from zero potentials (1 = SoftMax). opt->warm_start: start from the
 * current potentials (those of the last solve, or af_pm_attn_set_potentials).
 * One Gauss transform per normalisation; the residual of the state before
 * each update comes with that transform. info may be NULL (its hist, bound
 * and path fields are not filled: path is NULL). AF_EMAXITER if tol is not
 * reached. */
af_status af_pm_attn_sinkhorn(af_pm_attn *at, const af_sinkhorn_options *opt,
                              af_sinkhorn_info *info);

/* KY (n x p) = K Y for the current kernel, Y (n x p). One transform of p + 1
 * columns (Y centred, plus the row sums). */
af_status af_pm_attn_apply(af_pm_attn *at, size_t p, const double *Y, double *KY);

/* Row sums and column sums of the current kernel (n each; either may be NULL). */
af_status af_pm_attn_marginals(af_pm_attn *at, double *rows, double *cols);

/* Potentials of the current kernel in the dense convention K_ij =
 * exp(f_i + C_ij + g_j) (n values each; valid until the next call). */
const double *af_pm_attn_f(const af_pm_attn *at);
const double *af_pm_attn_g(const af_pm_attn *at);
void af_pm_attn_set_potentials(af_pm_attn *at, const double *f, const double *g);

/* The engine's grid (valid after af_pm_attn_set). */
void af_pm_attn_get_info(const af_pm_attn *at, af_pm_info *info);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* Attention backends: how the n x n attention of a token cloud is computed.
 *
 *   af_backend_dense  stores what is fastest to store: the n x n scores and,
 *                     for Sinkhorn, the n x n kernel (O(n^2) memory).
 *   af_backend_tiled  matrix-free: score rows are recomputed (and
 *                     exponentiated) on every pass, one row tile per thread
 *                     at a time, so memory is O(n (d + threads)). Sinkhorn
 *                     runs in log space (the same iterates as the dense
 *                     scaling paths: alternating rows first, or the averaged
 *                     symmetric update), one pass over the scores per
 *                     normalisation.
 *   af_backend_pm     particle-mesh (attnflow/pm.h): every sum over tokens
 *                     is a Gauss transform on a grid (FFTW), O(n) memory and
 *                     time, accurate to the relative tolerance
 *                     af_attn_params.pm_tol. Only where the kernel is a
 *                     Gaussian: d <= 3, L2 scores or dot scores with
 *                     A = a I (a beta > 0). Sinkhorn to a tolerance runs its
 *                     own over-relaxed, Chebyshev-accelerated symmetric
 *                     update (weight 2/3, as dense and tiled; the
 *                     scaling and log paths alternate rows and columns).
 * Dense and tiled compute the same attention (to round-off): SoftMax (SA),
 * USA (exp(C) / n) and Sinkhorn with a tolerance or a fixed count (count 1
 * = SoftMax bit for bit on each backend), warm-started from the potentials
 * of the previous solve; pm agrees with them to its tolerance. What needs
 * the n x n matrix itself (writing K, its second singular value, the exact
 * Hilbert diameter) is refused by the tiled and pm backends with AF_EINVAL
 * and a message that says so; pm also refuses USA, scores that are not a
 * Gaussian kernel, single precision and several MPI ranks.
 *
 * Usage (self-attention of X, n x d, row-major):
 *   af_attn_params p = af_attn_params_default(n, d);    (scores, norm)
 *   af_attn_ws *ws = af_attn_alloc(af_backend_tiled, &p);
 *   af_attn_softmax(ws, X, KX);                           (SoftMax / USA)
 *   af_attn_sinkhorn(ws, X, &opt, &info); af_attn_apply(ws, KX);  (Sinkhorn)
 *   af_attn_free(ws);
 */
#ifndef AF_BACKEND_H
#define AF_BACKEND_H

#include <stddef.h>
#include "attnflow/comm.h"
#include "attnflow/error.h"
#include "attnflow/normalize.h"
#include "attnflow/pm.h"
#include "attnflow/scores.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

typedef struct af_backend_type af_backend_type; /* opaque backend descriptor */
extern const af_backend_type *const af_backend_dense;
extern const af_backend_type *const af_backend_tiled;
extern const af_backend_type *const af_backend_pm;

const char *af_backend_name(const af_backend_type *t);
/* "dense", "tiled" or "pm" (AF_EINVAL otherwise). */
af_status af_backend_from_name(const char *name, const af_backend_type **out);

typedef enum {
    AF_ATTN_SOFTMAX = 0,  /* K = N_R(exp C) */
    AF_ATTN_USA = 1,      /* K = exp(C) / n */
    AF_ATTN_SINKHORN = 2  /* rows and columns normalised */
} af_attn_norm;

/* Dense and tiled backends: single = float32 exps of the scores (rounded to
 * float32), every sum, potential and K X accumulated in double; about 2-3x
 * the exp throughput, accuracy in the README ("Scale"). */
typedef enum { AF_PRECISION_DOUBLE = 0, AF_PRECISION_SINGLE = 1 } af_precision;

typedef struct {
    size_t n, d;
    af_scores_params scores;  /* A (d x d, NULL = I) is copied by af_attn_alloc */
    af_attn_norm norm;
    af_precision precision;   /* default double; single: dense or tiled */
    /* NULL: one process. Otherwise (tiled backend only) this rank computes
     * its block of rows (af_comm_rows) from the full X, which every rank
     * holds: af_attn_softmax / af_attn_apply return all n rows of K X on
     * every rank (each block all-gathered, statuses agreed); a Sinkhorn
     * normalisation exchanges the n column sums (alternating: allreduce) or
     * the n row LSEs (symmetric: allgather) and nothing else. The comm must
     * outlive the workspace. af_attn_marginals, af_attn_softmax_colsums and
     * af_attn_kernel stay one-process (AF_EINVAL). */
    const af_comm *comm;
    /* af_backend_pm only: relative accuracy of its Gauss transforms, in
     * [1e-15, 1e-2] (default AF_PM_TOL_DEFAULT); the other backends ignore it. */
    double pm_tol;
} af_attn_params;

af_attn_params af_attn_params_default(size_t n, size_t d);

/* Bytes af_attn_alloc allocates for these sizes with `threads` OpenMP
 * threads: the allocation size formula (no allocation is made). Dense
 * Sinkhorn ~ 16 n^2; tiled O(n (d + threads)); pm O(n (d + threads)) for
 * the tokens and their windows at the default tolerance, plus its grid,
 * which follows the extent of the cloud over the kernel width and is not
 * counted (af_attn_pm_info gives it once the tokens are set). */
double af_backend_bytes(const af_backend_type *t, size_t n, size_t d, af_attn_norm norm,
                        int threads);
/* The backend "auto" picks: dense while its bytes stay below `budget`
 * bytes, tiled beyond. */
const af_backend_type *af_backend_choose(size_t n, size_t d, af_attn_norm norm, int threads,
                                         double budget);

typedef struct af_attn_ws af_attn_ws;

/* NULL with af_last_error() set on bad parameters or out of memory. */
af_attn_ws *af_attn_alloc(const af_backend_type *t, const af_attn_params *p);
void af_attn_free(af_attn_ws *ws);
const af_backend_type *af_attn_backend(const af_attn_ws *ws);

/* KX = K(X) X (n x d) for SoftMax or USA. AF_ENUMERIC if the kernel is not
 * finite (tokens blew up, USA overflow). */
af_status af_attn_softmax(af_attn_ws *ws, const double *X, double *KX);

/* Sinkhorn of the scores of X. opt->warm_start starts from the workspace's
 * potentials (those of the last solve or of af_attn_set_potentials). X must
 * stay unchanged until af_attn_apply. Returns AF_EMAXITER (info filled) if
 * the tolerance was not met. */
af_status af_attn_sinkhorn(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                           af_sinkhorn_info *info);
/* KX = K X for the K and X of the last af_attn_sinkhorn. */
af_status af_attn_apply(af_attn_ws *ws, double *KX);
/* Potentials of the last solve, K_ij = exp(f_i + C_ij + g_j) (n values each). */
const double *af_attn_f(af_attn_ws *ws);
const double *af_attn_g(af_attn_ws *ws);
void af_attn_set_potentials(af_attn_ws *ws, const double *f, const double *g);

/* New scores (A copied) for the next calls; sizes and normalisation stay. */
af_status af_attn_set_scores(af_attn_ws *ws, const af_scores_params *sp);

/* Of the K of the last af_attn_sinkhorn, K_ij = exp(f_i + C_ij + g_j): row
 * sums r = K 1 and column sums c = K^T 1 (n each), K X and K^T X (n x d);
 * any may be NULL. One pass on tiled (per-thread column accumulators);
 * dense materialises K (n x n more, allocated on first use). */
af_status af_attn_marginals(af_attn_ws *ws, double *r, double *c, double *KX, double *KtX);

/* Column sums of the SoftMax matrix N_R(exp C(X)) (n values). */
af_status af_attn_softmax_colsums(af_attn_ws *ws, const double *X, double *cs);

/* The attention matrix K(X) (n x n) of the workspace's normalisation
 * (Sinkhorn: one solve with opt). Tiled, pm: AF_EINVAL (they never hold K). */
af_status af_attn_kernel(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                         double *K);

/* The grid, window and measured wrap of a pm workspace (after its first
 * af_attn_softmax / af_attn_sinkhorn). AF_EINVAL for the other backends. */
af_status af_attn_pm_info(const af_attn_ws *ws, af_pm_info *info);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

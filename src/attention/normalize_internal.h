/* Internals of the normalisers, shared by the path implementations. */
#ifndef AF_NORMALIZE_INTERNAL_H
#define AF_NORMALIZE_INTERNAL_H

#include <stdlib.h>
#include "attnflow/comm.h"
#include "attnflow/normalize.h"

/* The symmetric iteration's step, f <- (1 - w) f + w T(f) with T(f)_i =
 * -LSE_j(C_ij + f_j), in scaling form a <- a r^-w (r the row sums of
 * diag(a) K0 diag(a)). Linearised at the solution the error goes through
 * (1 - w) I - w P, P the doubly stochastic limit; for PSD kernels (L2
 * scores, dot scores with a PSD A: Schur product theorem) P's spectrum is
 * in [0, 1], so the rate is max(|1 - w|, |1 - 2 w|): 1/2 for the plain
 * average w = 1/2, 1/3 at the minimiser w = 2/3 (and no worse than w = 1/2
 * for any spectrum in [-1, 1]). Measured on the heat reference case: 136
 * instead of 200 normalisations over 10 flow steps, same increments. */
#define AF_SYM_RELAX (2.0 / 3.0)

/* On top of it, the stationary second-order (Chebyshev) acceleration:
 * step_k = omega (-w log r) + (omega - 1) step_{k-1} (in log a), i.e.
 * f_{k+1} = omega (f_k + w d_k) + (1 - omega) f_{k-1}. Each error mode of
 * the relaxed step with factor rho in [-1/3, 1/3] then goes through
 * z^2 - omega rho z + (omega - 1) = 0; at omega = 2 / (1 + sqrt(1 - 1/9))
 * = 18 - 12 sqrt(2) both roots have modulus sqrt(omega - 1) = 3 - 2 sqrt(2)
 * ~ 0.172 for every such rho: the rate falls from 1/3 to 0.172, about 0.61x
 * the passes to a tolerance, for the cost of one n-vector. Modes outside
 * (indefinite kernels, rho up to 1) still contract, as for any omega in
 * (1, 2). The first step of a solve has no previous step (step_{-1} = 0). */
#define AF_SYM_OMEGA (18.0 - 12.0 * M_SQRT2)

/* The accelerated step for row i from its row sum r_i and previous step
 * q_i (both in log form); the caller stores the result back into q_i. */
static inline double af__sym_step(double log_r, double q)
{
    return -AF_SYM_OMEGA * AF_SYM_RELAX * log_r + (AF_SYM_OMEGA - 1.0) * q;
}

/* A normalisation path, GSL style: a const object of function pointers. */
struct af_sinkhorn_type {
    const char *name;
    int symmetric;                                     /* f = g, one update per step */
    af_status (*start)(af_sinkhorn_ws *ws);            /* prepare from ws->f, ws->g */
    af_status (*step)(af_sinkhorn_ws *ws);             /* one normalisation / symmetric step */
    void (*potentials)(af_sinkhorn_ws *ws);            /* write ws->f, ws->g from the state */
    void (*matrix)(const af_sinkhorn_ws *ws, double *K);
};

/* Where the paths read score rows when no matrix is stored (matrix-free
 * backends): row(ctx, i, j0, buf) writes C_ij for j = j0 .. m-1 into
 * buf[0 .. m-j0) and returns buf; entry(ctx, i, j) is one score (the rare
 * exact column LSE). Yt (p x m, may be NULL): right-hand sides the
 * symmetric matrix-free path multiplies K with during its passes, so that
 * K Y costs nothing extra once it has converged. */
typedef struct {
    const double *(*row)(const void *ctx, size_t i, size_t j0, double *buf);
    double (*entry)(const void *ctx, size_t i, size_t j);
    const void *ctx;
    const double *Yt;
    size_t p;
    int single;     /* 1: exps in float32 (af__row_exp_single), sums in double */
    /* tile(ctx, i, j0, len, buf): C_ij for j = j0 .. j0 + len - 1 into buf
     * (may be NULL: row() is used). The symmetric matrix-free pass works on
     * cache-sized tiles and would otherwise generate whole row tails. */
    void (*tile)(const void *ctx, size_t i, size_t j0, size_t len, double *buf);
    /* sym_pass(ctx, w, rhs, acc, threads) (may be NULL): for L2 self-scores
     * with p = 2, acc[k m + i] = sum_j exp(C_ij) w_j y_jk for y = (1, Y), k <
     * rhs (3, or 1 for the row sums alone), far terms (below the exp's fast
     * range) flushed, using threads x 3 m of acc; the backend's own
     * upper-triangle kernel, which the symmetric iteration uses for the
     * passes where flushing is allowed. */
    void (*sym_pass)(const void *ctx, const double *w, int rhs, double *acc, int threads);
    /* 1: the scores are L2 self-scores of finite tokens (symmetric, <= 0,
     * C_ii = 0 up to rounding: every row maximum is 0), so a tolerance-mode
     * symmetric solve needs no pass over them for the row maxima, the
     * finiteness check or the symmetry */
    int l2_self;
} af__score_source;

struct af_sinkhorn_ws {
    size_t n, m;
    int ready;         /* set() was called on the current scores */
    int matrix_free;   /* no K0: log paths only, scores from src */
    af__score_source src;
    double *cbuf;      /* nthreads x m: generated score rows (matrix-free) */
    int nthreads;      /* per-thread accumulators allocated */
    int team;          /* threads of the last fused pass */
    const double *C;   /* stored scores, or NULL (matrix-free) */
    /* Scores written on demand (sinkhorn_sym_kernel.c: K0 built without
     * them): fill(fill_ctx) writes C before a fall-back to log space reads it. */
    void (*fill_scores)(void *ctx);
    /* build(fill_ctx, i, out) writes row i of the upper triangle of K0,
     * out[j] for j = i .. n - 1 (the sym_kernel path: its first pass builds
     * the kernel eight rows at a time into symk_rows, sums them there and
     * streams them to K0) */
    void (*build_row)(void *ctx, size_t i, double *out);
    double *symk_rows;    /* nthreads x 8 x n: the builder's rows */
    void *fill_ctx;
    /* the symmetric passes that carry K0 (a Y) only when they are likely
     * the last (sinkhorn_sym_kernel.c, sinkhorn_tiled.c; af__sym_pass_is_last) */
    double symk_prev_err; /* the error of the pass before the last (its rate) */
    int symk_product;     /* the last pass left K0 (a Y) in apply_buf */
    int symt_last_pass;   /* sym_tiled: its last pass exact (0), flushed (1), the kernel (2) */
    af_sinkhorn_options opt;
    const af_sinkhorn_type *type;

    double *K0;        /* n x m stored kernel (scaling paths); scratch for apply (log paths) */
    double *shift;     /* n: row shifts s_i of K0 = exp(C_ij - s_i) */
    double *f, *g;     /* potentials (n, m) */
    double *u, *v;     /* scalings (n, m) */
    double *u_next;    /* n: next row update, computed by the fused pass; the
                        * symmetric paths: the last step of log a (af__sym_step) */
    double *f_next;    /* n: next row potentials (log), or LSE_j(C_ij + f_j) (symmetric log) */
    double *t;         /* n: (K0 v)_i of the scaling paths */
    double *w;         /* m: (K0^T u_next)_j of the scaling path */
    double *csum;      /* m: column sums of the state after the next row update */
    double *colacc;    /* nthreads x m: per-thread column accumulators */
    double *rowbuf;    /* nthreads x m: per-thread row scratch */
    double *apply_buf; /* grows to m x p for af_sinkhorn_apply */
    size_t apply_cap;
    double *apply_acc; /* grows to nthreads x n x p: symmetric apply accumulators */
    size_t apply_acc_cap;

    double *row_hist, *col_hist;
    size_t hist_cap;

    size_t iter;       /* normalisations done */
    int next_is_row;   /* alternating paths: the next normalisation is on rows */
    double row_err, col_err;
    double next_row_err; /* row error once the pending row update is committed */
    int done, converged, fell_back;
    double delta;
    int delta_exact;

    /* Distributed (sinkhorn_distributed.c): the passes visit rows
     * [row_begin, row_end) only (0, n on one process) and exchange through
     * comm (NULL: one process) what the next step needs. */
    size_t row_begin, row_end;
    const af_comm *comm;
};

/* Threads only pay off above this many kernel entries per parallel loop:
 * below it, waking a team costs more than the loop (flows with small n
 * solve hundreds of small problems). */
#define AF_OMP_MIN_WORK 65536
#define AF_PAR_IF(work) if ((double)(work) >= AF_OMP_MIN_WORK)

/* Team size for the per-thread column accumulators: never more threads
 * than the workspace has accumulators for. */
int af__team_size(const af_sinkhorn_ws *ws);

/* Row i of the scores: the stored row, or generated into the calling
 * thread's slot of cbuf (tid < nthreads). */
static inline const double *af__score_row_from(const af_sinkhorn_ws *ws, size_t i, size_t j0,
                                               int tid)
{
    if (ws->C)
        return ws->C + i * ws->m + j0;
    return ws->src.row(ws->src.ctx, i, j0, ws->cbuf + (size_t)tid * ws->m);
}

static inline const double *af__score_row(const af_sinkhorn_ws *ws, size_t i, int tid)
{
    return af__score_row_from(ws, i, 0, tid);
}

/* Matrix-free workspace (no n x m kernel): the log paths only. */
af_sinkhorn_ws *af__sinkhorn_alloc_matrix_free(size_t n, size_t m);
/* af_sinkhorn_set on scores given by a generator (matrix-free workspace). */
af_status af__sinkhorn_set_source(af_sinkhorn_ws *ws, const af__score_source *src,
                                  const af_sinkhorn_options *opt);
/* af_sinkhorn (without K) on generated scores. */
af_status af__sinkhorn_solve_source(af_sinkhorn_ws *ws, const af__score_source *src,
                                    const af_sinkhorn_options *opt, af_sinkhorn_info *info);

/* Distributed passes (sinkhorn_distributed.c; comm non-NULL only). */
/* Matrix-free workspace: rows of this rank's block of af_comm_rows. */
void af__sinkhorn_distribute(af_sinkhorn_ws *ws, const af_comm *comm);
/* After af_sinkhorn_set's pass over the local rows: the maxima of range,
 * deficit and bad_row over all ranks, and every row shift. */
void af__sinkhorn_share_set(af_sinkhorn_ws *ws, double *range, double *deficit, long *bad_row);
/* After an alternating log pass: column sums over all rows, the largest
 * row errors. */
void af__sinkhorn_share_pass(af_sinkhorn_ws *ws, double *row_err, double *next_err);
/* After a symmetric log pass: every row's LSE (f_next); returns the row
 * error max_i |exp(f_i + f_next_i) - 1| over all rows. */
double af__sinkhorn_share_sym(af_sinkhorn_ws *ws);
/* Column max / sum of the rare exact column LSE over all ranks. */
double af__sinkhorn_share_max(const af_sinkhorn_ws *ws, double x);
double af__sinkhorn_share_sum(const af_sinkhorn_ws *ws, double x);

/* Paths. */
extern const af_sinkhorn_type af_sinkhorn_type_scaling;
extern const af_sinkhorn_type af_sinkhorn_type_log;
extern const af_sinkhorn_type af_sinkhorn_type_sym_scaling;
extern const af_sinkhorn_type af_sinkhorn_type_sym_log;
/* The symmetric scaling iteration on regenerated scores (matrix-free):
 * upper triangle only, each exp serving row i and row j. */
extern const af_sinkhorn_type af_sinkhorn_type_sym_tiled;
/* The symmetric scaling iteration around a pass that sets ws->t = r (the
 * row sums of diag(a) K0 diag(a)) and the errors, returning 1 when they
 * leave double range: begin (a from the potentials or 1, first pass),
 * advance (a <- a / sqrt(r), pass), both falling back to log space;
 * potentials f = g = log a - s / 2. Shared by the stored and the tiled path. */
af_status af__sym_scaling_begin(af_sinkhorn_ws *ws, int (*pass)(af_sinkhorn_ws *ws));
af_status af__sym_scaling_advance(af_sinkhorn_ws *ws, int (*pass)(af_sinkhorn_ws *ws));
void af__sym_scaling_potentials(af_sinkhorn_ws *ws);
/* The symmetric scaling iteration on a kernel the caller builds into ws->K0
 * (upper triangle, K0_ij = exp(C_ij) for scores whose row maxima are 0 on
 * the diagonal: L2 self-scores; build(ctx, i, out) writes row i into
 * out[i .. n), called by the first pass), with its passes also forming K0 (a Y) for
 * the p <= 2 right-hand sides Yt (p x n, may be NULL). C: where the scores
 * go if the iteration falls back to log space, written by fill(ctx) only
 * then. Tolerance mode only (opt->iters == 0). sinkhorn_sym_kernel.c. */
extern const af_sinkhorn_type af_sinkhorn_type_sym_kernel;
af_status af__sinkhorn_solve_sym_kernel(af_sinkhorn_ws *ws, const double *C,
                                        void (*fill)(void *ctx),
                                        void (*build)(void *ctx, size_t i, double *out),
                                        void *ctx, const double *Yt, size_t p,
                                        const af_sinkhorn_options *opt, af_sinkhorn_info *info);
af_status af__sym_kernel_buffers(af_sinkhorn_ws *ws, size_t p);
/* K0 (a Y) (n x p) of the solve's final scalings while it is on that path
 * (from its last pass, or one more pass that changes no state), else NULL. */
const double *af__sym_kernel_product(af_sinkhorn_ws *ws);
/* K0 (a Y) (n x p) of the sym_tiled state: from its last pass, or one more
 * pass that changes no state when the last one did not carry it. */
const double *af__sym_tiled_product(af_sinkhorn_ws *ws);
/* Should the next pass of a symmetric iteration carry K0 (a Y)? Yes when
 * it is likely the last: the error falls by a roughly steady factor, so
 * the next one is predicted from the last two (symk_prev_err, row_err)
 * and leaned towards "last" by a slack of 2; or a count ends next. A wrong
 * guess costs a product-only pass, or arithmetic that was not needed;
 * the iterates are the same either way. sinkhorn_paths.c. */
int af__sym_pass_is_last(const af_sinkhorn_ws *ws);

/* Grow *buf to hold need doubles (contents kept, as realloc); *cap its
 * size. 0 on success, 1 out of memory (*buf untouched). */
static inline int af__grow(double **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    double *b = realloc(*buf, need * sizeof(double));
    if (!b)
        return 1;
    *buf = b;
    *cap = need;
    return 0;
}

/* Continue in log space from the current state (a scaling left double range). */
af_status af__sinkhorn_fall_back(af_sinkhorn_ws *ws);

/* M_ij = M_ji for j < i (copies the upper triangle down), in cache tiles. */
void af__mirror_upper(size_t n, double *M);

/* Row kernels shared by SoftMax and the Sinkhorn paths, so that one
 * normalisation is SoftMax bit for bit. */
double af__row_max_shifted(size_t m, const double *c, const double *g);
void af__row_exp(size_t m, const double *c, const double *g, double shift, double *out);
/* The same with the argument rounded to float32 and a float32 exp (about
 * 3x the vector throughput of double); the result is widened to double so
 * that every sum after it accumulates in double. */
void af__row_exp_single(size_t m, const double *c, const double *g, double shift, double *out);
static inline void af__row_exp_p(int single, size_t m, const double *c, const double *g,
                                 double shift, double *out)
{
    (single ? af__row_exp_single : af__row_exp)(m, c, g, shift, out);
}
/* af__row_exp_p with the terms below the smallest normal number written as
 * 0, which keeps glibc's vector exp on its fast path (normalize.c). */
/* row_sum(a), row_dot(a, x0), row_dot(a, x1) in one sweep, same bits. */
void af__row_sum_dot2(size_t m, const double *a, const double *x0, const double *x1, double out[3]);
/* Bounds of glibc's fast vector exp range (see af__row_exp_flushed). */
#define AF_EXP_FAST_MIN (-708.0)
#define AF_EXPF_FAST_MIN (-87.0)
/* 1 if the next symmetric tiled pass may flush far exps (a: scalings after
 * the update, r: the last pass's row sums, q: the update's step, log of
 * new a over old a); sinkhorn_tiled.c. */
int af__sym_tiled_flush_allowed(size_t n, const double *a, const double *r, const double *q,
                                int single);
/* The same for the first pass, from the diagonal bound r_j >= a_j^2 K0_jj
 * (kdiag: K0_jj). */
int af__sym_tiled_first_flush_allowed(size_t n, const double *a, const double *kdiag, int single);
void af__row_exp_flushed(int single, size_t m, const double *c, const double *g, double shift,
                         double *out);
double af__row_sum(size_t m, const double *a);
double af__row_dot(size_t m, const double *a, const double *b);

#endif

/* Distributed attention without MPI (attnflow/comm.h): P "ranks" are P
 * threads of this process joined by a fake communicator (a barrier and
 * shared pointers), each with its own workspace for its block of rows. A
 * flow or a Sinkhorn solve on P ranks must give the one-process result to
 * 1e-12 for every normalisation path, and an error seen by one rank must
 * end every rank with that rank's status and message. The same library
 * code runs under mpirun with the CLI's MPI hooks (test_cli_mpi.c). */
#include <criterion/criterion.h>
void openblas_set_num_threads(int num_threads); /* OpenBLAS (its cblas.h clashes with GSL's) */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/backend.h"
#include "attnflow/comm.h"
#include "attnflow/flow.h"
#include "support/fixtures.h"

#define MAX_RANKS 4

__attribute__((constructor)) static void one_thread(void)
{
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

/* ---- the fake communicator: threads, a barrier, shared pointers ---- */

typedef struct {
    int size;
    pthread_barrier_t bar;
    double *buf[MAX_RANKS];
    af_status st[MAX_RANKS];
    char msg[MAX_RANKS][1024];
    size_t calls;                 /* collectives made by rank 0 */
} world;

static world *W(const af_comm *c) { return c->ctx; }

/* Same order on every rank (0, 1, ...): bit-identical sums everywhere. */
static void reduce(const af_comm *c, double *x, size_t k, int max)
{
    world *w = W(c);
    double *tmp = malloc(k * sizeof *tmp);
    w->buf[c->rank] = x;
    pthread_barrier_wait(&w->bar);
    for (size_t j = 0; j < k; j++) {
        double v = w->buf[0][j];
        for (int r = 1; r < w->size; r++)
            v = max ? fmax(v, w->buf[r][j]) : v + w->buf[r][j];
        tmp[j] = v;
    }
    pthread_barrier_wait(&w->bar);
    memcpy(x, tmp, k * sizeof *x);
    free(tmp);
    if (c->rank == 0)
        w->calls++;
}

static void fake_sum(const af_comm *c, double *x, size_t k) { reduce(c, x, k, 0); }
static void fake_max(const af_comm *c, double *x, size_t k) { reduce(c, x, k, 1); }

static void fake_gather(const af_comm *c, double *x, size_t n, size_t width)
{
    world *w = W(c);
    w->buf[c->rank] = x;
    pthread_barrier_wait(&w->bar);
    for (int r = 0; r < w->size; r++) {
        size_t b, e;
        af_comm_rows(n, r, w->size, &b, &e);
        if (r != c->rank) /* rank r's rows of its own buffer are not written by anyone */
            memcpy(x + b * width, w->buf[r] + b * width, (e - b) * width * sizeof *x);
    }
    pthread_barrier_wait(&w->bar);
    if (c->rank == 0)
        w->calls++;
}

static af_status fake_agree(const af_comm *c, af_status local)
{
    world *w = W(c);
    w->st[c->rank] = local;
    if (local)
        snprintf(w->msg[c->rank], sizeof w->msg[0], "%s", af_last_error());
    pthread_barrier_wait(&w->bar);
    af_status st = AF_SUCCESS;
    for (int r = 0; r < w->size && !st; r++)
        if (w->st[r]) {
            st = w->st[r];
            if (r != c->rank)
                af_error(st, "%s", w->msg[r]);
        }
    pthread_barrier_wait(&w->bar);
    return st;
}

/* ---- running one job on P thread-ranks ---- */

typedef struct {
    af_comm comm;
    void (*job)(void *arg, const af_comm *c);
    void *arg;
} rank_args;

static void *rank_main(void *p)
{
    rank_args *ra = p;
    omp_set_num_threads(1);
    ra->job(ra->arg, &ra->comm);
    return NULL;
}

/* Runs job(arg_r, comm_r) on `size` threads; args[r] is rank r's argument. */
static size_t run_ranks(int size, void (*job)(void *, const af_comm *), void **args)
{
    world w;
    memset(&w, 0, sizeof w);
    w.size = size;
    pthread_barrier_init(&w.bar, NULL, (unsigned)size);
    rank_args ra[MAX_RANKS];
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < size; r++) {
        ra[r].comm = (af_comm){r, size, &w, fake_sum, fake_max, fake_gather, fake_agree};
        ra[r].job = job;
        ra[r].arg = args[r];
        cr_assert(pthread_create(&th[r], NULL, rank_main, &ra[r]) == 0);
    }
    for (int r = 0; r < size; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w.bar);
    return w.calls;
}

/* ---- flows ---- */

typedef struct {
    af_flow_params p;
    const double *X0;
    size_t steps;
    double h;
    double *X;             /* result (n x d) */
    af_flow_stats stats;
    af_status st;
    char msg[1024];
} flow_job;

static void flow_run(void *arg, const af_comm *c)
{
    flow_job *j = arg;
    af_flow_params p = j->p;
    p.comm = c;
    const size_t nd = p.n * p.d;
    j->X = malloc(nd * sizeof *j->X);
    memcpy(j->X, j->X0, nd * sizeof *j->X);
    af_flow_ws *ws = af_flow_alloc(&p);
    if (!ws) {
        j->st = AF_EINVAL;
        snprintf(j->msg, sizeof j->msg, "%s", af_last_error());
        return;
    }
    j->st = af_flow_project(ws, j->X);
    for (size_t s = 0; s < j->steps && !j->st; s++)
        j->st = af_flow_step(ws, j->X, j->h);
    if (j->st)
        snprintf(j->msg, sizeof j->msg, "%s", af_last_error());
    af_flow_get_stats(ws, &j->stats);
    af_flow_free(ws);
}

/* The flow on one process (tiled, comm NULL) against `size` ranks: every
 * rank ends with the one-process tokens to 1e-12 and the same counts. */
static void same_as_one_process(af_flow_params p, const double *X0, size_t steps, double h,
                                int size, const char *what)
{
    p.backend = af_backend_tiled;
    flow_job one = {p, X0, steps, h, NULL, {0}, 0, ""};
    flow_run(&one, NULL);
    cr_assert(one.st == AF_SUCCESS, "%s (one process): %s", what, one.msg);
    flow_job jobs[MAX_RANKS];
    void *args[MAX_RANKS];
    for (int r = 0; r < size; r++) {
        jobs[r] = one;
        jobs[r].X = NULL;
        args[r] = &jobs[r];
    }
    size_t calls = run_ranks(size, flow_run, args);
    cr_assert(calls > 0, "%s: no collective was made", what);
    const size_t nd = p.n * p.d;
    for (int r = 0; r < size; r++) {
        cr_assert(jobs[r].st == AF_SUCCESS, "%s, rank %d: %s", what, r, jobs[r].msg);
        double diff = fx_max_abs_diff(nd, one.X, jobs[r].X);
        cr_assert(diff <= 1e-12, "%s: rank %d of %d differs from one process by %.3g", what, r,
                  size, diff);
        cr_assert(fx_max_abs_diff(nd, jobs[0].X, jobs[r].X) == 0,
                  "%s: ranks 0 and %d hold different states", what, r);
        cr_assert_eq(jobs[r].stats.evaluations, one.stats.evaluations, "%s", what);
        cr_assert_eq(jobs[r].stats.sinkhorn_iterations, one.stats.sinkhorn_iterations,
                     "%s: Sinkhorn iterations %zu vs %zu", what,
                     jobs[r].stats.sinkhorn_iterations, one.stats.sinkhorn_iterations);
    }
    for (int r = 0; r < size; r++)
        free(jobs[r].X);
    free(one.X);
}

/* n = 37: blocks of 19 + 18 (2 ranks), 10 + 9 + 9 + 9 (4 ranks). */
#define N 37

Test(distributed, sinkhorn_alternating_dot_scores)
{
    /* A not symmetric: the alternating path (column sums allreduced). */
    double A[4] = {1.0, 0.4, -0.3, 0.8};
    double *X0 = fx_gaussian_cloud(N, 2, 1.0, 7);
    af_flow_params p = af_flow_params_default(N, 2);
    p.norm = AF_FLOW_SINKHORN;
    p.scores.A = A;
    p.scores.eps = 0.5;
    p.sinkhorn.tol = 1e-11;
    same_as_one_process(p, X0, 5, 0.02, 2, "alternating, 2 ranks");
    same_as_one_process(p, X0, 3, 0.02, 4, "alternating, 4 ranks");
    free(X0);
}

Test(distributed, sinkhorn_symmetric_l2_scores)
{
    /* L2 scores: the symmetric relaxed update (row LSEs all-gathered). */
    double *X0 = fx_gaussian_cloud(N, 3, 1.0, 8);
    af_flow_params p = af_flow_params_default(N, 3);
    p.norm = AF_FLOW_SINKHORN;
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.2;
    p.skip = 1;
    p.integrator = AF_FLOW_EULER;
    same_as_one_process(p, X0, 6, 0.01, 2, "symmetric, 2 ranks");
    same_as_one_process(p, X0, 3, 0.01, 3, "symmetric, 3 ranks");
    free(X0);
}

Test(distributed, sinkhorn_fixed_count_and_small_eps)
{
    double *X0 = fx_gaussian_cloud(N, 2, 1.0, 9);
    af_flow_params p = af_flow_params_default(N, 2);
    p.norm = AF_FLOW_SINKHORN;
    p.sinkhorn.iters = 3; /* rows, columns, rows */
    same_as_one_process(p, X0, 3, 0.05, 2, "3 normalisations");
    /* eps = 0.001 on a cloud around (3, 3): scores spread over ~1e4, the
     * first column sums of interior tokens underflow and take the exact
     * column LSE (max and sum reduced over the ranks). */
    for (size_t k = 0; k < N * 2; k++)
        X0[k] += 3.0; /* away from 0: every row separates the columns */
    p.sinkhorn.iters = 6;
    p.scores.eps = 0.001;
    double A[4] = {1.0, 0.2, 0.0, 1.0};
    p.scores.A = A;
    same_as_one_process(p, X0, 1, 1e-5, 2, "eps = 0.001");
    free(X0);
}

Test(distributed, softmax_usa_sphere_adaptive)
{
    double *X0 = fx_gaussian_cloud(N, 3, 1.0, 10);
    af_flow_params p = af_flow_params_default(N, 3);
    p.geometry = AF_FLOW_SPHERE;
    p.integrator = AF_FLOW_HEUN;
    p.scores.beta = 2.0;
    same_as_one_process(p, X0, 5, 0.05, 2, "SoftMax on the sphere");
    p.geometry = AF_FLOW_EUCLID;
    p.integrator = AF_FLOW_ADAPTIVE;
    same_as_one_process(p, X0, 2, 0.05, 3, "SoftMax, adaptive");
    p.usa = 1;
    p.scores.kind = AF_SCORES_L2; /* exp(C) <= 1: no overflow */
    p.integrator = AF_FLOW_RK4;
    same_as_one_process(p, X0, 3, 0.05, 2, "USA");
    free(X0);
}

/* ---- failures ---- */

/* One step on 2 thread-ranks: each must fail with status st and a message
 * containing msg. */
static void fails_on_every_rank(af_flow_params p, const double *X0, af_status st, const char *msg)
{
    flow_job jobs[2];
    void *args[2] = {&jobs[0], &jobs[1]};
    for (int r = 0; r < 2; r++)
        jobs[r] = (flow_job){p, X0, 1, 0.01, NULL, {0}, 0, ""};
    run_ranks(2, flow_run, args);
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(jobs[r].st, st, "rank %d: status %d (%s)", r, jobs[r].st, jobs[r].msg);
        cr_assert(strstr(jobs[r].msg, msg), "rank %d: '%s'", r, jobs[r].msg);
        free(jobs[r].X);
    }
}

Test(distributed, error_on_one_rank_ends_every_rank)
{
    /* USA with one far token, the last (rank 1's block): only its own row
     * score |x|^2 / eps = 900 overflows exp; the other rows stay finite. */
    double *X0 = fx_gaussian_cloud(N, 2, 0.01, 11);
    X0[(N - 1) * 2] = 30.0;
    X0[(N - 1) * 2 + 1] = 0.0;
    for (size_t i = 0; i + 1 < N; i++)
        X0[2 * i] = 0.0; /* x_i . x_last = 0 for the others */
    af_flow_params p = af_flow_params_default(N, 2);
    p.usa = 1;
    p.backend = af_backend_tiled;
    p.integrator = AF_FLOW_EULER;
    fails_on_every_rank(p, X0, AF_ENUMERIC, "USA kernel exp(C) overflows");
    free(X0);
}

Test(distributed, dense_backend_refused)
{
    double *X0 = fx_gaussian_cloud(8, 2, 1.0, 12);
    af_flow_params p = af_flow_params_default(8, 2);
    p.norm = AF_FLOW_SINKHORN;
    p.backend = af_backend_dense;
    fails_on_every_rank(p, X0, AF_EINVAL, "dense backend runs on one process");
    free(X0);
}

/* ---- Sinkhorn solve: potentials, errors, iterations ---- */

typedef struct {
    const double *X;
    af_attn_params ap;
    const af_sinkhorn_type *path;
    af_sinkhorn_info info;
    double f[N], g[N], KX[N * 2];
    af_status st;
} solve_job;

static void solve_run(void *arg, const af_comm *c)
{
    solve_job *j = arg;
    af_attn_params ap = j->ap;
    ap.comm = c;
    af_attn_ws *ws = af_attn_alloc(af_backend_tiled, &ap);
    cr_assert_not_null(ws, "%s", af_last_error());
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-12;
    /* the path the ranks take (one process may pick another, same iterates
     * but not the same round-off near the tolerance) */
    o.path = j->path;
    j->st = af_attn_sinkhorn(ws, j->X, &o, &j->info);
    if (!j->st)
        j->st = af_attn_apply(ws, j->KX);
    memcpy(j->f, af_attn_f(ws), sizeof j->f);
    memcpy(j->g, af_attn_g(ws), sizeof j->g);
    j->info.row_hist = j->info.col_hist = NULL; /* they point into ws */
    af_attn_free(ws);
}

Test(distributed, sinkhorn_potentials_on_every_rank)
{
    double *X = fx_gaussian_cloud(N, 2, 1.0, 13);
    double A[4] = {1.0, -0.5, 0.2, 1.0};
    for (int sym = 0; sym < 2; sym++) {
        solve_job one = {0};
        one.X = X;
        one.ap = af_attn_params_default(N, 2);
        one.ap.norm = AF_ATTN_SINKHORN;
        one.ap.scores.A = sym ? NULL : A;
        one.path = sym ? af_sinkhorn_symmetric_log : af_sinkhorn_log;
        solve_run(&one, NULL);
        cr_assert(one.st == AF_SUCCESS, "%s", af_last_error());
        solve_job jobs[3];
        void *args[3];
        for (int r = 0; r < 3; r++)
            jobs[r] = one, args[r] = &jobs[r];
        run_ranks(3, solve_run, args);
        for (int r = 0; r < 3; r++) {
            cr_assert(jobs[r].st == AF_SUCCESS);
            cr_assert_eq(jobs[r].info.iterations, one.info.iterations);
            cr_assert(jobs[r].info.path == one.info.path);
            cr_assert(fabs(jobs[r].info.row_err - one.info.row_err) <= 1e-12);
            cr_assert(fabs(jobs[r].info.col_err - one.info.col_err) <= 1e-12);
            cr_assert(fx_max_abs_diff(N, jobs[r].f, one.f) <= 1e-12, "sym %d: f of rank %d", sym, r);
            cr_assert(fx_max_abs_diff(N, jobs[r].g, one.g) <= 1e-12, "sym %d: g of rank %d", sym, r);
            cr_assert(fx_max_abs_diff(2 * N, jobs[r].KX, one.KX) <= 1e-12);
        }
    }
    free(X);
}

Test(distributed, row_blocks_cover_every_row_once)
{
    for (size_t n = 1; n < 40; n++)
        for (int P = 1; P <= 7; P++) {
            size_t next = 0, lo = n, hi = 0;
            for (int r = 0; r < P; r++) {
                size_t b, e;
                af_comm_rows(n, r, P, &b, &e);
                cr_assert_eq(b, next, "n %zu P %d rank %d", n, P, r);
                cr_assert(e >= b);
                lo = e - b < lo ? e - b : lo;
                hi = e - b > hi ? e - b : hi;
                next = e;
            }
            cr_assert_eq(next, n);
            cr_assert(hi - lo <= 1, "balanced blocks");
        }
}

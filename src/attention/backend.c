/* Attention backends: the backend-neutral half (names, the allocation size
 * formula, parameter checks, score terms) and the af_attn_* entry points,
 * which only forward to the backend's type object. */
#include "core/af_blas.h"
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "backend_internal.h"

const af_backend_type *const af_backend_dense = &af_backend_type_dense;
const af_backend_type *const af_backend_tiled = &af_backend_type_tiled;
const af_backend_type *const af_backend_pm = &af_backend_type_pm;

const char *af_backend_name(const af_backend_type *t) { return t ? t->name : "auto"; }

af_status af_backend_from_name(const char *name, const af_backend_type **out)
{
    const af_backend_type *all[] = {af_backend_dense, af_backend_tiled, af_backend_pm};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (name && strcmp(name, all[k]->name) == 0) {
            *out = all[k];
            return AF_SUCCESS;
        }
    return af_error(AF_EINVAL, "unknown backend '%s' (dense|tiled|pm)", name ? name : "(null)");
}

af_attn_params af_attn_params_default(size_t n, size_t d)
{
    af_attn_params p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.d = d;
    p.scores = af_scores_params_default();
    p.norm = AF_ATTN_SOFTMAX;
    p.pm_tol = AF_PM_TOL_DEFAULT;
    return p;
}

/* ---- allocation size formula ---- */

double af__attn_common_bytes(size_t n, size_t d, int threads)
{
    const double N = (double)n, D = (double)d, T = (double)threads;
    return 8.0 * (N * D /* XA */ + 2 * N /* rbias, cbias */ + N * D /* Xt */ + T * N /* rows */
                  + D * D /* A */);
    /* (the on-demand buffers of af_attn_marginals / af_attn_softmax_colsums
     * are not counted: flows never use them) */
}

double af__sinkhorn_bytes(size_t n, size_t m, size_t d, int threads, int matrix_free)
{
    const double N = (double)n, M = (double)m, T = (double)threads, D = (double)d;
    /* shift f u u_next f_next t (n each), g v w csum (m each), colacc and
     * rowbuf (T m each), 2 x 256 history; stored: K0 (n m) and the prebuilt
     * symmetric kernel's (T + 1) 3 n pass accumulators and T 8 n builder
     * rows; matrix-free: cbuf (T m) and the symmetric path's T (d + 1) n
     * accumulators, its n weights and n d product */
    return 8.0 * (6 * N + 4 * M + 2 * T * M + 512
                  + (matrix_free ? T * M + T * (D + 1) * N + N + N * D
                                 : N * M + (T + 1) * 3 * N + 8 * T * N));
}

double af_backend_bytes(const af_backend_type *t, size_t n, size_t d, af_attn_norm norm,
                        int threads)
{
    if (threads < 1)
        threads = 1;
    return af__attn_common_bytes(n, d, threads) + t->bytes(n, d, norm, threads);
}

const af_backend_type *af_backend_choose(size_t n, size_t d, af_attn_norm norm, int threads,
                                         double budget)
{
    return af_backend_bytes(af_backend_dense, n, d, norm, threads) <= budget ? af_backend_dense
                                                                            : af_backend_tiled;
}

/* ---- workspace ---- */

static af_status check_params(const af_attn_params *p)
{
    if (p->n == 0 || p->d == 0)
        return af_error(AF_EINVAL, "attention: n and d must be >= 1 (n = %zu, d = %zu)", p->n,
                        p->d);
    if (p->n > INT_MAX || p->d > INT_MAX)
        return af_error(AF_EINVAL, "attention: n and d must be <= %d (BLAS int sizes)", INT_MAX);
    if (!(p->scores.eps > 0) || !isfinite(p->scores.eps))
        return af_error(AF_EINVAL, "attention: eps must be > 0 and finite (got %g)",
                        p->scores.eps);
    if (!isfinite(p->scores.beta))
        return af_error(AF_EINVAL, "attention: beta must be finite (got %g)", p->scores.beta);
    if (p->scores.kind != AF_SCORES_DOT && p->scores.kind != AF_SCORES_L2)
        return af_error(AF_EINVAL, "attention: unknown score kind %d", (int)p->scores.kind);
    if (p->scores.kind == AF_SCORES_L2 && p->scores.beta < 0)
        return af_error(AF_EINVAL, "attention: L2 scores need beta >= 0 (got %g): -beta |x - y|^2 "
                                   "/ (2 eps) is a distance kernel only for beta >= 0",
                        p->scores.beta);
    if ((unsigned)p->norm > AF_ATTN_SINKHORN)
        return af_error(AF_EINVAL, "attention: unknown normalisation %d", (int)p->norm);
    if (p->scores.A)
        for (size_t k = 0; k < p->d * p->d; k++)
            if (!isfinite(p->scores.A[k]))
                return af_error(AF_EDOM, "attention: A has a non-finite entry (%zu)", k);
    return AF_SUCCESS;
}

af_attn_ws *af_attn_alloc(const af_backend_type *t, const af_attn_params *p)
{
    if (!t) {
        af_error(AF_EINVAL, "attention: no backend given");
        return NULL;
    }
    if (check_params(p))
        return NULL;
    if (p->precision != AF_PRECISION_DOUBLE && (p->precision != AF_PRECISION_SINGLE || !t->single)) {
        af_error(AF_EINVAL, "attention: precision %d is not offered by the %s backend (single "
                            "precision: dense and tiled)", (int)p->precision, t->name);
        return NULL;
    }
    if (af_comm_distributed(p->comm) && !t->distributes) {
        af_error(AF_EINVAL, "attention: the %s backend runs on one process only (use the "
                            "tiled backend across %d ranks)", t->name, p->comm->size);
        return NULL;
    }
    af_attn_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        af_error(AF_ENOMEM, "attention: out of memory");
        return NULL;
    }
    const size_t n = p->n, d = p->d;
    ws->type = t;
    ws->p = *p;
    ws->nthreads = omp_get_max_threads();
    int ok = (ws->A = malloc(d * d * sizeof(double))) != NULL;
    if (ok)
        af_attn_set_scores(ws, &p->scores);
    ok = ok && (ws->XA = malloc(n * d * sizeof(double)));
    ok = ok && (ws->rbias = malloc(n * sizeof(double)));
    ok = ok && (ws->cbias = malloc(n * sizeof(double)));
    ok = ok && (ws->Xt = malloc(n * d * sizeof(double)));
    ok = ok && (ws->rows = malloc((size_t)ws->nthreads * n * sizeof(double)));
    if (!ok) {
        af_attn_free(ws);
        af_error(AF_ENOMEM, "attention: out of memory (n = %zu, d = %zu)", n, d);
        return NULL;
    }
    if (t->init(ws)) {
        af_attn_free(ws);
        return NULL;
    }
    ws->row_end = n;
    if (af_comm_distributed(p->comm)) {
        af_comm_rows(n, p->comm->rank, p->comm->size, &ws->row_begin, &ws->row_end);
        if (ws->sk)
            af__sinkhorn_distribute(ws->sk, p->comm);
    } else {
        ws->p.comm = NULL;
    }
    return ws;
}

void af_attn_free(af_attn_ws *ws)
{
    if (!ws)
        return;
    ws->type->release(ws);
    af_sinkhorn_free(ws->sk);
    free(ws->A);
    free(ws->XA);
    free(ws->rbias);
    free(ws->cbias);
    free(ws->Xt);
    free(ws->rows);
    free(ws);
}

const af_backend_type *af_attn_backend(const af_attn_ws *ws) { return ws->type; }

af_status af_attn_set_scores(af_attn_ws *ws, const af_scores_params *sp)
{
    af_attn_params q = ws->p;
    q.scores = *sp;
    af_status st = check_params(&q);
    if (!st && ws->type->set_scores)
        st = ws->type->set_scores(ws, sp);
    if (st)
        return st;
    ws->p.scores = *sp;
    if (sp->A) {
        if (sp->A != ws->A)
            memcpy(ws->A, sp->A, ws->p.d * ws->p.d * sizeof(double));
        ws->p.scores.A = ws->A;
    }
    return AF_SUCCESS;
}

int af__tokens_finite(const af_attn_ws *ws, const double *X)
{
    for (size_t k = 0; k < ws->p.n * ws->p.d; k++)
        if (!isfinite(X[k]))
            return 0;
    return 1;
}

void af__attn_prepare(af_attn_ws *ws, const double *X, int with_xt)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const af_scores_params *sp = &ws->p.scores;
    ws->s = sp->beta / sp->eps;
    ws->l2 = sp->kind == AF_SCORES_L2;
    ws->L = X;
    if (!ws->l2 && ws->p.scores.A) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d, (int)d, 1.0, X,
                    (int)d, ws->A, (int)d, 0.0, ws->XA, (int)d);
        ws->L = ws->XA;
    }
    for (size_t j = 0; j < n; j++) {
        double q = 0;
        if (ws->l2)
            for (size_t k = 0; k < d; k++)
                q += X[j * d + k] * X[j * d + k];
        ws->cbias[j] = ws->rbias[j] = -0.5 * ws->s * q;
    }
    if (with_xt)
        for (size_t j = 0; j < n; j++)
            for (size_t k = 0; k < d; k++)
                ws->Xt[k * n + j] = X[j * d + k];
}

af_status af__attn_softmax_failed(const af_attn_ws *ws)
{
    return af_error(AF_ENUMERIC, ws->p.norm == AF_ATTN_USA
                                     ? "flow: USA kernel exp(C) overflows (the USA field scales "
                                       "like e^beta / n: lower beta or the step, or use SA)"
                                     : "flow: SoftMax scores are not finite (tokens blew up)");
}

/* ---- entry points: forward to the backend ---- */

/* A Sinkhorn solve is ready for af_attn_apply / af_attn_marginals. */
static int solved(const af_attn_ws *ws)
{
    return ws->type->solved ? ws->type->solved(ws) : ws->sk && ws->sk->ready;
}

/* Distributed: every rank computed the rows of its block; agree on the
 * status (a non-finite row is seen by one rank only), then all-gather. */
static af_status share_rows(af_attn_ws *ws, af_status st, double *KX)
{
    const af_comm *c = ws->p.comm;
    if (!c)
        return st;
    st = c->agree(c, st);
    if (!st)
        c->allgather_rows(c, KX, ws->p.n, ws->p.d);
    return st;
}

static af_status one_process(const af_attn_ws *ws, const char *what)
{
    if (ws->p.comm)
        return af_error(AF_EINVAL, "attention: %s is not distributed (run it on one process)",
                        what);
    return AF_SUCCESS;
}

af_status af_attn_softmax(af_attn_ws *ws, const double *X, double *KX)
{
    if (ws->p.norm == AF_ATTN_SINKHORN)
        return af_error(AF_EINVAL, "attention: the workspace was made for Sinkhorn");
    return share_rows(ws, ws->type->softmax(ws, X, KX), KX);
}

af_status af_attn_sinkhorn(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                           af_sinkhorn_info *info)
{
    if (ws->p.norm != AF_ATTN_SINKHORN)
        return af_error(AF_EINVAL, "attention: the workspace was not made for Sinkhorn");
    ws->X = X;
    af_sinkhorn_info tmp;
    /* Self-attention scores are symmetric for L2 and for dot with a
     * symmetric A (af_scores mirrors them exactly; the tiled generator
     * cannot be checked without regenerating every score). */
    af_sinkhorn_options o = opt ? *opt : af_sinkhorn_options_default();
    o.assume_symmetric |= ws->p.scores.kind == AF_SCORES_L2
                          || af_matrix_is_symmetric(ws->p.d, ws->p.scores.A);
    af_status st = ws->type->sinkhorn(ws, X, &o, info ? info : &tmp);
    /* Alternating paths leave each rank the row potentials of its block:
     * gather them once per solve so that af_attn_f (warm starts, the flow's
     * predictor) is the same on every rank. */
    if (ws->p.comm && ws->sk->ready && !ws->sk->type->symmetric)
        ws->p.comm->allgather_rows(ws->p.comm, ws->sk->f, ws->p.n, 1);
    return st;
}

af_status af_attn_apply(af_attn_ws *ws, double *KX)
{
    if (!solved(ws) || !ws->X)
        return af_error(AF_EINVAL, "attention: apply needs a Sinkhorn solve first");
    return share_rows(ws, ws->type->apply(ws, KX), KX);
}

const double *af_attn_f(af_attn_ws *ws)
{
    return ws->type->potential ? ws->type->potential(ws, 0) : af_sinkhorn_f(ws->sk);
}

const double *af_attn_g(af_attn_ws *ws)
{
    return ws->type->potential ? ws->type->potential(ws, 1) : af_sinkhorn_g(ws->sk);
}

void af_attn_set_potentials(af_attn_ws *ws, const double *f, const double *g)
{
    if (ws->type->set_potentials)
        ws->type->set_potentials(ws, f, g);
    else
        af_sinkhorn_set_potentials(ws->sk, f, g);
}

af_status af_attn_marginals(af_attn_ws *ws, double *r, double *c, double *KX, double *KtX)
{
    if (!solved(ws) || !ws->X)
        return af_error(AF_EINVAL, "attention: marginals need a Sinkhorn solve first");
    af_status st = one_process(ws, "af_attn_marginals");
    return st ? st : ws->type->marginals(ws, r, c, KX, KtX);
}

af_status af_attn_softmax_colsums(af_attn_ws *ws, const double *X, double *cs)
{
    af_status st = one_process(ws, "af_attn_softmax_colsums");
    return st ? st : ws->type->softmax_colsums(ws, X, cs);
}

af_status af_attn_kernel(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                         double *K)
{
    af_status st = one_process(ws, "the attention matrix K");
    return st ? st : ws->type->kernel(ws, X, opt, K);
}

/* Observables of token clouds. Pairwise quantities use direct differences
 * (not the Gram matrix) so that distances of merging tokens stay accurate
 * far below sqrt(machine epsilon). */
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/energy.h"
#include "attnflow/io.h"
#include "attnflow/observables.h"

void af_obs_mean(size_t n, size_t d, const double *X, double *mean)
{
    for (size_t k = 0; k < d; k++)
        mean[k] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            mean[k] += X[i * d + k];
    for (size_t k = 0; k < d; k++)
        mean[k] /= (double)n;
}

/* Sum of squared deviations from the mean (two passes, no cancellation). */
static double centred_ss(size_t n, size_t d, const double *X, double *ss_total)
{
    double s = 0, t = 0;
    for (size_t k = 0; k < d; k++) {
        double m = 0;
        for (size_t i = 0; i < n; i++)
            m += X[i * d + k];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double x = X[i * d + k];
            s += (x - m) * (x - m);
            t += x * x;
        }
    }
    if (ss_total)
        *ss_total = t;
    return s;
}

double af_obs_variance(size_t n, size_t d, const double *X)
{
    return centred_ss(n, d, X, NULL) / ((double)n * (double)d);
}

double af_obs_rank_residual(size_t n, size_t d, const double *X)
{
    double tot, res = centred_ss(n, d, X, &tot);
    return tot > 0 ? sqrt(res / tot) : 0.0;
}

double af_obs_colsum_error(size_t n, size_t m, const double *K)
{
    double err = 0;
    for (size_t j = 0; j < m; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += K[i * m + j];
        err = fmax(err, fabs(s - 1.0));
    }
    return err;
}

/* ---- workspace ---- */

struct af_obs_ws {
    af_obs_params p;
    double *A;          /* owned copy of the score matrix */
    af_attn_ws *attn;   /* SoftMax on the chosen backend (column sums) */
    double *colsum;     /* n */
    size_t *parent;     /* n, union-find */
    af_energy_ws *ew;   /* F_n (energy.h, warm-started between calls) */
};

af_obs_params af_obs_params_default(size_t n, size_t d)
{
    af_obs_params p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.d = d;
    p.scores = af_scores_params_default();
    p.energy = 1;
    p.sinkhorn = af_sinkhorn_options_default();
    p.sinkhorn.tol = 1e-12;
    p.sinkhorn.compute_bound = 0;
    p.cluster_tol = 1e-3;
    return p;
}

af_obs_ws *af_obs_alloc(const af_obs_params *p)
{
    const size_t n = p->n, d = p->d;
    if (n == 0 || d == 0) {
        af_error(AF_EINVAL, "observables: n and d must be >= 1 (n = %zu, d = %zu)", n, d);
        return NULL;
    }
    /* af_scores hands n and d to BLAS as int, and C holds n x n doubles:
     * reject sizes whose byte counts would wrap around size_t. */
    const size_t max_elems = SIZE_MAX / (4 * sizeof(double)); /* spare for AF_SCORES_WORK's + 2n */
    if (n > INT_MAX || d > INT_MAX || n > max_elems / n || d > max_elems / n) {
        af_error(AF_EINVAL, "observables: n = %zu, d = %zu too large (BLAS int sizes, "
                 "n x n kernel must fit the address space)", n, d);
        return NULL;
    }
    if (!(p->cluster_tol >= 0)) {
        af_error(AF_EINVAL, "observables: cluster tolerance must be >= 0 (got %g)", p->cluster_tol);
        return NULL;
    }
    af_obs_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        af_error(AF_ENOMEM, "observables: out of memory");
        return NULL;
    }
    ws->p = *p;
    int ok = 1;
    if (p->scores.A) {
        ok &= (ws->A = malloc(d * d * sizeof *ws->A)) != NULL;
        if (ws->A)
            memcpy(ws->A, p->scores.A, d * d * sizeof *ws->A);
    }
    ws->p.scores.A = ws->A;
    const af_backend_type *backend = p->backend ? p->backend : af_backend_dense;
    ws->p.backend = backend;
    af_attn_params ap = af_attn_params_default(n, d);
    ap.scores = ws->p.scores;
    ap.norm = AF_ATTN_SOFTMAX;
    if (ok && !(ws->attn = af_attn_alloc(backend, &ap))) {
        af_obs_free(ws); /* af_attn_alloc's message stays */
        return NULL;
    }
    ok &= (ws->colsum = malloc(n * sizeof *ws->colsum)) != NULL;
    ok &= (ws->parent = malloc(n * sizeof *ws->parent)) != NULL;
    if (ok && p->energy)
        ok &= (ws->ew = af_energy_alloc_backend(n, d, backend)) != NULL;
    if (!ok) {
        af_obs_free(ws);
        af_error(AF_ENOMEM, "observables: out of memory (n = %zu)", n);
        return NULL;
    }
    return ws;
}

void af_obs_free(af_obs_ws *ws)
{
    if (!ws)
        return;
    free(ws->A);
    af_attn_free(ws->attn);
    free(ws->colsum);
    free(ws->parent);
    af_energy_free(ws->ew);
    free(ws);
}

static size_t uf_find(size_t *parent, size_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]]; /* path halving */
        i = parent[i];
    }
    return i;
}

af_status af_obs_geometry(af_obs_ws *ws, const double *X, size_t *clusters, double *min_dist,
                          double *max_ip)
{
    const size_t n = ws->p.n, d = ws->p.d;
    const double tol2 = ws->p.cluster_tol * ws->p.cluster_tol;
    double dmin2 = INFINITY, ipmax = -INFINITY;
#pragma omp parallel for schedule(dynamic, 16) reduction(min : dmin2) reduction(max : ipmax) if (n > 256)
    for (size_t i = 0; i < n; i++) {
        const double *x = X + i * d;
        for (size_t j = i + 1; j < n; j++) {
            const double *y = X + j * d;
            double s = 0, ip = 0;
            for (size_t k = 0; k < d; k++) {
                double t = x[k] - y[k];
                s += t * t;
                ip += x[k] * y[k];
            }
            dmin2 = s < dmin2 ? s : dmin2;
            ipmax = ip > ipmax ? ip : ipmax;
        }
    }
    /* Single-linkage components at the tolerance (union-find, serial). */
    size_t *parent = ws->parent, count = n;
    for (size_t i = 0; i < n; i++)
        parent[i] = i;
    for (size_t i = 0; i < n; i++) {
        const double *x = X + i * d;
        for (size_t j = i + 1; j < n; j++) {
            const double *y = X + j * d;
            double s = 0;
            for (size_t k = 0; k < d && s <= tol2; k++) {
                double t = x[k] - y[k];
                s += t * t;
            }
            if (s <= tol2) {
                size_t a = uf_find(parent, i), b = uf_find(parent, j);
                if (a != b) {
                    parent[a] = b;
                    count--;
                }
            }
        }
    }
    if (clusters)
        *clusters = count;
    if (min_dist)
        *min_dist = n > 1 ? sqrt(dmin2) : NAN;
    if (max_ip)
        *max_ip = n > 1 ? ipmax : NAN;
    return AF_SUCCESS;
}

/* max_j |sum_i K_ij - 1| of the SoftMax matrix of X (the backend streams
 * the rows; nothing n x n is kept). */
static af_status softmax_colsum_error(af_obs_ws *ws, const double *X, double *err_out)
{
    const size_t n = ws->p.n;
    af_status st = af_attn_softmax_colsums(ws->attn, X, ws->colsum);
    if (st)
        return st;
    double err = 0;
    for (size_t j = 0; j < n; j++)
        err = fmax(err, fabs(ws->colsum[j] - 1.0));
    *err_out = err;
    return AF_SUCCESS;
}

static int scores_symmetric(const af_obs_ws *ws)
{
    return ws->p.scores.kind == AF_SCORES_L2 || af_matrix_is_symmetric(ws->p.d, ws->p.scores.A);
}

af_status af_obs_compute(af_obs_ws *ws, const double *X, double *mean, af_obs_values *out)
{
    const size_t n = ws->p.n, d = ws->p.d;
    af_status st = af_check_finite("tokens", n * d, X);
    if (st)
        return st;
    if (mean)
        af_obs_mean(n, d, X, mean);
    out->var = af_obs_variance(n, d, X);
    out->rank_res = af_obs_rank_residual(n, d, X);
    if ((st = softmax_colsum_error(ws, X, &out->colsum_err)))
        return st;
    out->energy = NAN;
    out->energy_iters = 0;
    if (ws->ew && scores_symmetric(ws)) {
        af_energy_params ep = af_energy_params_default();
        ep.scores = ws->p.scores;
        ep.sinkhorn = ws->p.sinkhorn;
        ep.sinkhorn.iters = 0; /* F_n needs the converged potentials */
        double F;
        st = af_energy(ws->ew, &ep, X, &F, NULL);
        out->energy_iters = af_energy_iterations(ws->ew);
        if (st == AF_SUCCESS)
            out->energy = F;
        else if (st != AF_EMAXITER && st != AF_ENUMERIC)
            /* the energy is an entropic OT cost computed by Sinkhorn in every
             * run, SoftMax ones included: say so, not just "sinkhorn" */
            return af_error(st, "energy F_n (entropic OT of the cloud with itself, solved by "
                            "Sinkhorn whatever the flow's normalisation): %s", af_last_error());
        /* otherwise F_n stays undefined (NaN); the other observables are valid */
    }
    return af_obs_geometry(ws, X, &out->clusters, &out->min_dist, &out->max_ip);
}

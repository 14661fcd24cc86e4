/* Entropic OT energy F_n of a token cloud, its gradient, the dissipation
 * identity, and finite-difference Jacobians of particle fields. See
 * energy.h for the formulas. */
#include "core/af_blas.h"
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/energy.h"
#include "attnflow/io.h"

struct af_energy_ws {
    size_t n, d;
    af_attn_ws *attn;     /* the backend: Sinkhorn solve, sums and products of K */
    double *r, *c, *KX, *KtX, *Xp;
    int warm;
    size_t iters;
};

af_energy_params af_energy_params_default(void)
{
    af_energy_params p;
    p.scores = af_scores_params_default();
    p.sinkhorn = af_sinkhorn_options_default();
    p.sinkhorn.tol = 1e-12;
    p.sinkhorn.max_iters = 100000;
    p.sinkhorn.compute_bound = 0;
    return p;
}

void af_energy_free(af_energy_ws *ws)
{
    if (!ws)
        return;
    af_attn_free(ws->attn);
    free(ws->r);
    free(ws->c);
    free(ws->KX);
    free(ws->KtX);
    free(ws->Xp);
    free(ws);
}

af_energy_ws *af_energy_alloc(size_t n, size_t d)
{
    return af_energy_alloc_backend(n, d, af_backend_dense);
}

af_energy_ws *af_energy_alloc_backend(size_t n, size_t d, const af_backend_type *backend)
{
    if (n == 0 || d == 0) {
        af_error(AF_EINVAL, "energy: n and d must be >= 1 (n = %zu, d = %zu)", n, d);
        return NULL;
    }
    /* BLAS takes int sizes, and the n x n kernel and cost must be addressable */
    if (n > INT_MAX || d > INT_MAX || n * d > INT_MAX || n > SIZE_MAX / sizeof(double) / n) {
        af_error(AF_EINVAL, "energy: n = %zu, d = %zu too large (n d and n must fit an int, "
                 "n^2 doubles memory)", n, d);
        return NULL;
    }
    af_energy_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        af_error(AF_ENOMEM, "out of memory");
        return NULL;
    }
    ws->n = n;
    ws->d = d;
    af_attn_params ap = af_attn_params_default(n, d);
    ap.norm = AF_ATTN_SINKHORN;
    ws->r = malloc(n * sizeof *ws->r);
    ws->c = malloc(n * sizeof *ws->c);
    ws->KX = malloc(n * d * sizeof *ws->KX);
    ws->KtX = malloc(n * d * sizeof *ws->KtX);
    ws->Xp = malloc(n * d * sizeof *ws->Xp);
    if (!ws->r || !ws->c || !ws->KX || !ws->KtX || !ws->Xp) {
        af_energy_free(ws);
        af_error(AF_ENOMEM, "energy: out of memory (n = %zu)", n);
        return NULL;
    }
    if (!(ws->attn = af_attn_alloc(backend, &ap))) { /* its message stays */
        af_energy_free(ws);
        return NULL;
    }
    return ws;
}

void af_energy_reset(af_energy_ws *ws) { ws->warm = 0; }

size_t af_energy_iterations(const af_energy_ws *ws) { return ws->iters; }

af_status af_energy(af_energy_ws *ws, const af_energy_params *p, const double *X, double *F,
                    double *grad)
{
    const size_t n = ws->n, d = ws->d;
    const af_scores_params *sp = &p->scores;
    if (sp->kind == AF_SCORES_DOT && !af_matrix_is_symmetric(d, sp->A))
        return af_error(AF_EINVAL, "energy: F_n needs symmetric scores (A is not symmetric)");
    af_status st = af_check_finite("energy: X", n * d, X);
    if (st)
        return st;
    if ((st = af_attn_set_scores(ws->attn, sp)))
        return st;
    af_sinkhorn_options opt = p->sinkhorn;
    opt.iters = 0; /* F_n is defined at the converged plan only */
    opt.warm_start = ws->warm;
    af_sinkhorn_info info;
    info.iterations = 0;
    st = af_attn_sinkhorn(ws->attn, X, &opt, &info);
    ws->iters = info.iterations;
    if (st && st != AF_EMAXITER) {
        ws->warm = 0;
        return st;
    }
    ws->warm = 1;
    af_status ms = af_attn_marginals(ws->attn, ws->r, grad ? ws->c : NULL, grad ? ws->KX : NULL,
                                     grad ? ws->KtX : NULL);
    if (ms) {
        ws->warm = 0;
        return ms;
    }
    const double *f = af_attn_f(ws->attn), *g = af_attn_g(ws->attn);
    double sfg = 0, sK = 0;
    for (size_t i = 0; i < n; i++) {
        sfg += f[i] + g[i];
        sK += ws->r[i];
    }
    const double nn = (double)n;
    *F = 0.5 * (sfg / nn + log(nn) - sK / nn + 1);
    if (!isfinite(*F)) {
        ws->warm = 0;
        return af_error(AF_ENUMERIC, "energy: F_n is not finite (Sinkhorn potentials overflowed)");
    }
    if (grad) {
        const double s = sp->beta / sp->eps;
        /* ws->KX = K X, ws->KtX = K^T X (n x d), from af_attn_marginals */
        if (sp->kind == AF_SCORES_DOT) {
            /* dF/dx_i = -(s/(2n)) [A (KX)_i + A^T (K^T X)_i] */
            for (size_t i = 0; i < n; i++)
                for (size_t a = 0; a < d; a++) {
                    double v = 0;
                    for (size_t b = 0; b < d; b++) {
                        double Aab = sp->A ? sp->A[a * d + b] : (a == b);
                        double Aba = sp->A ? sp->A[b * d + a] : (a == b);
                        v += Aab * ws->KX[i * d + b] + Aba * ws->KtX[i * d + b];
                    }
                    grad[i * d + a] = -s / (2 * nn) * v;
                }
        } else {
            /* dF/dx_i = (s/(2n)) [(r_i + c_i) x_i - (KX)_i - (K^T X)_i], r, c row and
             * column sums (exact sums keep the formula the gradient of the dual) */
            for (size_t i = 0; i < n; i++)
                for (size_t a = 0; a < d; a++)
                    grad[i * d + a] = s / (2 * nn) * ((ws->r[i] + ws->c[i]) * X[i * d + a]
                                                      - ws->KX[i * d + a] - ws->KtX[i * d + a]);
        }
    }
    return st;
}

double af_energy_dissipation(size_t n, size_t d, const double *T)
{
    double s = 0;
    for (size_t k = 0; k < n * d; k++)
        s += T[k] * T[k];
    return -s / (double)n;
}

af_status af_energy_rate(af_energy_ws *ws, const af_energy_params *p, const double *X,
                         const double *V, double tau, double *rate)
{
    const size_t N = ws->n * ws->d;
    if (!(tau > 0))
        return af_error(AF_EINVAL, "energy rate: tau must be > 0 (got %g)", tau);
    double Fp, Fm;
    af_status st1, st2;
    for (size_t k = 0; k < N; k++)
        ws->Xp[k] = X[k] + tau * V[k];
    if ((st1 = af_energy(ws, p, ws->Xp, &Fp, NULL)) && st1 != AF_EMAXITER)
        return st1;
    for (size_t k = 0; k < N; k++)
        ws->Xp[k] = X[k] - tau * V[k];
    if ((st2 = af_energy(ws, p, ws->Xp, &Fm, NULL)) && st2 != AF_EMAXITER)
        return st2;
    *rate = (Fp - Fm) / (2 * tau);
    /* an unconverged Sinkhorn in either evaluation is reported (AF_EMAXITER;
     * af_last_error() names the evaluation that last failed) */
    return st1 ? st1 : st2;
}

/* Central-difference column b of J with step h into col (N values). */
static af_status fd_column(af_field_fn field, void *user, size_t N, double *Xw, size_t b, double h,
                           double *Tp, double *Tm, double *col)
{
    double x0 = Xw[b];
    af_status st;
    Xw[b] = x0 + h;
    if ((st = field(user, Xw, Tp)))
        goto done;
    Xw[b] = x0 - h;
    if ((st = field(user, Xw, Tm)))
        goto done;
    /* the step actually taken (x0 + h) - (x0 - h) may differ from 2h by round-off */
    double step = (x0 + h) - (x0 - h);
    for (size_t a = 0; a < N; a++)
        col[a] = (Tp[a] - Tm[a]) / step;
done:
    Xw[b] = x0;
    return st;
}

af_status af_fd_jacobian(af_field_fn field, void *user, size_t N, const double *X, double h,
                         double *J, double *err_est, double *work)
{
    if (N == 0 || !(h > 0))
        return af_error(AF_EINVAL, "jacobian: need N >= 1 and h > 0 (got N = %zu, h = %g)", N, h);
    double *Xw = work, *Tp = work + N, *Tm = work + 2 * N, *c2 = work + 3 * N;
    memcpy(Xw, X, N * sizeof *X);
    double err = 0;
    af_status st = AF_SUCCESS;
    for (size_t b = 0; b < N && !st; b++) {
        double hb = h * fmax(1.0, fabs(X[b]));
        /* step h */
        st = fd_column(field, user, N, Xw, b, hb, Tp, Tm, c2);
        if (st)
            break;
        for (size_t a = 0; a < N; a++)
            J[a * N + b] = c2[a];
        /* step 2h, for the error estimate */
        if (err_est) {
            st = fd_column(field, user, N, Xw, b, 2 * hb, Tp, Tm, c2);
            for (size_t a = 0; a < N && !st; a++)
                err = fmax(err, fabs(J[a * N + b] - c2[a]) / 3);
        }
    }
    if (err_est)
        *err_est = err;
    return st;
}

double af_jacobian_asymmetry(size_t N, const double *J)
{
    double num = 0, den = 0;
    for (size_t a = 0; a < N; a++)
        for (size_t b = 0; b < N; b++) {
            double v = J[a * N + b] - J[b * N + a];
            num += v * v;
            den += J[a * N + b] * J[a * N + b];
        }
    return den > 0 ? sqrt(num / den) : 0;
}

/* Layers of the training module: every backward pass against central finite
 * differences (normwise relative error < 1e-6), the unrolled Sinkhorn
 * against an independent long-double reference and the library's SoftMax,
 * and Adam against its closed-form first step. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include "attnflow/nn.h"
#include "attnflow/normalize.h"
#include "support/fixtures.h"

static gsl_rng *rng;
static void setup(void)
{
    rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 42);
}
static void teardown(void) { gsl_rng_free(rng); }
TestSuite(nn, .init = setup, .fini = teardown);

static double *randn(size_t n, double s)
{
    double *a = malloc(n * sizeof *a);
    for (size_t k = 0; k < n; k++)
        a[k] = gsl_ran_gaussian(rng, s);
    return a;
}

static double dot(size_t n, const double *a, const double *b)
{
    double s = 0;
    for (size_t k = 0; k < n; k++)
        s += a[k] * b[k];
    return s;
}

/* A scalar loss of some inputs, for finite differences. */
typedef double (*loss_fn)(void *ctx);

/* ||g_fd - g|| / ||g|| over all entries of p, step h. */
static double fd_check(loss_fn f, void *ctx, double *p, size_t n, const double *g, double h)
{
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        double save = p[k];
        p[k] = save + h;
        double fp = f(ctx);
        p[k] = save - h;
        double fm = f(ctx);
        p[k] = save;
        double fd = (fp - fm) / (2 * h);
        num += (fd - g[k]) * (fd - g[k]);
        den += g[k] * g[k];
    }
    cr_assert(den > 0, "gradient is identically zero: the check would be vacuous");
    return sqrt(num / den);
}

/* ---- linear ---- */
typedef struct {
    size_t rows, in, out;
    double *X, *W, *b, *R, *Y;
} lin_ctx;
static double lin_loss(void *c)
{
    lin_ctx *l = c;
    af_nn_linear_forward(l->rows, l->in, l->out, l->X, l->W, l->b, l->Y);
    return dot(l->rows * l->out, l->R, l->Y);
}

Test(nn, linear_gradient)
{
    lin_ctx l = {5, 4, 3, NULL, NULL, NULL, NULL, NULL};
    l.X = randn(20, 1), l.W = randn(12, 1), l.b = randn(3, 1), l.R = randn(15, 1);
    l.Y = malloc(15 * sizeof(double));
    double dX[20] = {0}, dW[12] = {0}, db[3] = {0};
    af_nn_linear_backward(5, 4, 3, l.X, l.W, l.R, dX, dW, db);
    cr_expect_lt(fd_check(lin_loss, &l, l.X, 20, dX, 1e-5), 1e-6);
    cr_expect_lt(fd_check(lin_loss, &l, l.W, 12, dW, 1e-5), 1e-6);
    cr_expect_lt(fd_check(lin_loss, &l, l.b, 3, db, 1e-5), 1e-6);
    /* backward accumulates: a second call doubles the gradients */
    double dW2[12];
    memcpy(dW2, dW, sizeof dW);
    af_nn_linear_backward(5, 4, 3, l.X, l.W, l.R, NULL, dW2, NULL);
    for (int k = 0; k < 12; k++)
        cr_expect_float_eq(dW2[k], 2 * dW[k], 1e-14 * (1 + fabs(dW[k])));
    free(l.X), free(l.W), free(l.b), free(l.R), free(l.Y);
}

/* ---- layernorm ---- */
typedef struct {
    size_t rows, d;
    double *X, *g, *b, *R, *Y, *mu, *rs;
} ln_ctx;
static double ln_loss(void *c)
{
    ln_ctx *l = c;
    af_nn_layernorm_forward(l->rows, l->d, l->X, l->g, l->b, l->Y, l->mu, l->rs);
    return dot(l->rows * l->d, l->R, l->Y);
}

Test(nn, layernorm_gradient)
{
    size_t rows = 4, d = 6;
    ln_ctx l = {rows, d, randn(rows * d, 2), randn(d, 1), randn(d, 1), randn(rows * d, 1),
                malloc(rows * d * sizeof(double)), malloc(rows * sizeof(double)),
                malloc(rows * sizeof(double))};
    double dX[24] = {0}, dg[6] = {0}, db[6] = {0};
    ln_loss(&l);
    af_nn_layernorm_backward(rows, d, l.X, l.g, l.mu, l.rs, l.R, dX, dg, db);
    cr_expect_lt(fd_check(ln_loss, &l, l.X, rows * d, dX, 1e-5), 1e-6);
    cr_expect_lt(fd_check(ln_loss, &l, l.g, d, dg, 1e-5), 1e-6);
    cr_expect_lt(fd_check(ln_loss, &l, l.b, d, db, 1e-5), 1e-6);
    /* forward: each output row has mean beta-weighted ... check with gamma=1, beta=0 */
    double one[6] = {1, 1, 1, 1, 1, 1}, zero[6] = {0};
    af_nn_layernorm_forward(rows, d, l.X, one, zero, l.Y, l.mu, l.rs);
    for (size_t r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (size_t k = 0; k < d; k++)
            m += l.Y[r * d + k];
        for (size_t k = 0; k < d; k++)
            v += l.Y[r * d + k] * l.Y[r * d + k];
        cr_expect_lt(fabs(m / d), 1e-14);
        cr_expect_lt(fabs(v / d - 1), 1e-4); /* 1 - eps / var */
    }
    free(l.X), free(l.g), free(l.b), free(l.R), free(l.Y), free(l.mu), free(l.rs);
}

/* ---- relu ---- */
typedef struct {
    double *X, *R, *Y;
} relu_ctx;
static double relu_loss(void *c)
{
    relu_ctx *r = c;
    af_nn_relu_forward(30, r->X, r->Y);
    return dot(30, r->R, r->Y);
}

Test(nn, relu_gradient)
{
    relu_ctx r = {randn(30, 1), randn(30, 1), malloc(30 * sizeof(double))};
    for (int k = 0; k < 30; k++) /* keep away from the kink */
        r.X[k] += r.X[k] > 0 ? 0.1 : -0.1;
    double dX[30] = {0};
    af_nn_relu_backward(30, r.X, r.R, dX);
    cr_expect_lt(fd_check(relu_loss, &r, r.X, 30, dX, 1e-6), 1e-9);
    free(r.X), free(r.R), free(r.Y);
}

/* ---- unrolled Sinkhorn ---- */
typedef struct {
    size_t n, n_it;
    double *S, *L, *hist, *A, *R;
} sk_ctx;
static double sk_loss(void *c)
{
    sk_ctx *s = c;
    memcpy(s->L, s->S, s->n * s->n * sizeof *s->L);
    double w[64];
    af_nn_sinkhorn_forward(s->n, s->n_it, s->L, s->hist, s->A, w);
    return dot(s->n * s->n, s->R, s->A);
}

Test(nn, sinkhorn_backward_matches_finite_differences)
{
    size_t n = 7;
    size_t its[] = {1, 2, 3, 4, 5, 9, 20};
    for (size_t t = 0; t < sizeof its / sizeof its[0]; t++) {
        sk_ctx s = {n, its[t], randn(n * n, 1.5), malloc(n * n * sizeof(double)),
                    malloc(its[t] * n * n * sizeof(double)), malloc(n * n * sizeof(double)),
                    randn(n * n, 1)};
        sk_loss(&s);
        double dS[49] = {0}, work[49];
        af_nn_sinkhorn_backward(n, s.n_it, s.hist, s.R, dS, work);
        double err = fd_check(sk_loss, &s, s.S, n * n, dS, 1e-5);
        cr_expect_lt(err, 1e-6, "n_it = %zu: relative error %g", s.n_it, err);
        free(s.S), free(s.L), free(s.hist), free(s.A), free(s.R);
    }
}

Test(nn, sinkhorn_forward_matches_independent_reference)
{
    size_t n = 9;
    double *S = randn(n * n, 2), L[81], A[81], K[81], work[18];
    for (size_t it = 1; it <= 12; it++) {
        double *hist = malloc(it * n * n * sizeof *hist);
        memcpy(L, S, sizeof L);
        af_nn_sinkhorn_forward(n, it, L, hist, A, work);
        fx_naive_sinkhorn(n, n, S, it, K);
        cr_expect_lt(fx_max_abs_diff(n * n, A, K), 1e-13, "n_it = %zu", it);
        /* log A is kept in L */
        for (size_t k = 0; k < n * n; k++)
            cr_expect_lt(fabs(exp(L[k]) - A[k]), 1e-14);
        /* odd counts end on rows, even counts on columns */
        double re, ce;
        fx_marginal_errors(n, n, A, &re, &ce);
        cr_expect_lt(it % 2 ? re : ce, 1e-14, "n_it = %zu", it);
        free(hist);
    }
    /* many normalisations: doubly stochastic */
    double *hist = malloc(400 * n * n * sizeof *hist);
    memcpy(L, S, sizeof L);
    af_nn_sinkhorn_forward(n, 400, L, hist, A, work);
    double re, ce;
    fx_marginal_errors(n, n, A, &re, &ce);
    cr_expect_lt(re, 1e-10);
    cr_expect_lt(ce, 1e-10);
    free(hist);
    free(S);
}

Test(nn, one_normalisation_is_softmax)
{
    size_t n = 17;
    double *S = randn(n * n, 3), L[289], A[289], hist[289], K[289], N[289];
    memcpy(L, S, sizeof L);
    af_nn_sinkhorn_forward(n, 1, L, hist, A, NULL);
    /* bit for bit the library's SoftMax (the Sinkformers convention) */
    cr_assert_eq(af_softmax(n, n, S, K), AF_SUCCESS);
    cr_expect_eq(memcmp(A, K, sizeof A), 0, "n_it = 1 differs from af_softmax");
    /* and the textbook formula exp(s - max) / sum, up to the rounding of 1/sum */
    for (size_t i = 0; i < n; i++) {
        double mx = S[i * n], s = 0;
        for (size_t j = 1; j < n; j++)
            mx = fmax(mx, S[i * n + j]);
        for (size_t j = 0; j < n; j++)
            s += exp(S[i * n + j] - mx);
        for (size_t j = 0; j < n; j++)
            N[i * n + j] = exp(S[i * n + j] - mx) / s;
    }
    for (size_t k = 0; k < n * n; k++)
        cr_expect_leq(fabs(A[k] - N[k]), 4 * DBL_EPSILON * N[k], "entry %zu: %.17g vs %.17g",
                      k, A[k], N[k]);
    free(S);
}

/* ---- attention head (strided Q, K, V inside one QKV matrix) ---- */
typedef struct {
    size_t n, dh, n_it, ld;
    double *QKV, *S, *hist, *O, *R;
} at_ctx;
static double at_loss(void *c)
{
    at_ctx *a = c;
    af_nn_attention_forward(a->n, a->dh, 0.5, a->n_it, a->QKV, a->ld, a->QKV + a->dh, a->ld,
                            a->QKV + 2 * a->dh, a->ld, a->S, a->hist, a->O, a->dh);
    return dot(a->n * a->dh, a->R, a->O);
}

Test(nn, attention_gradient)
{
    size_t n = 6, dh = 3, ld = 3 * dh;
    for (size_t n_it = 1; n_it <= 4; n_it += 3) {
        at_ctx a = {n, dh, n_it, ld, randn(n * ld, 1), malloc((n * n + 2 * n) * sizeof(double)),
                    malloc(n_it * n * n * sizeof(double)), malloc(n * dh * sizeof(double)),
                    randn(n * dh, 1)};
        at_loss(&a);
        double dQKV[54] = {0}, work[108];
        af_nn_attention_backward(n, dh, 0.5, n_it, a.QKV, ld, a.QKV + dh, ld, a.QKV + 2 * dh,
                                 ld, a.hist, a.R, dh, dQKV, dQKV + dh, dQKV + 2 * dh, work);
        double err = fd_check(at_loss, &a, a.QKV, n * ld, dQKV, 1e-5);
        cr_expect_lt(err, 1e-6, "n_it = %zu: %g", n_it, err);
        free(a.QKV), free(a.S), free(a.hist), free(a.O), free(a.R);
    }
}

/* ---- cross-entropy ---- */
typedef struct {
    double *Z, *P;
    int *y;
} xe_ctx;
static double xe_loss(void *c)
{
    xe_ctx *x = c;
    return af_nn_xent(4, 5, x->Z, x->y, x->P, NULL, 1, NULL);
}

Test(nn, xent_gradient_and_value)
{
    int y[4] = {0, 3, 4, 1};
    xe_ctx x = {randn(20, 2), malloc(20 * sizeof(double)), y};
    double dZ[20] = {0};
    size_t ok;
    double loss = af_nn_xent(4, 5, x.Z, y, x.P, dZ, 1, &ok);
    cr_expect_lt(fd_check(xe_loss, &x, x.Z, 20, dZ, 1e-5), 1e-6);
    double ref = 0;
    size_t ref_ok = 0;
    for (int r = 0; r < 4; r++) {
        double s = 0;
        int arg = 0;
        for (int c = 0; c < 5; c++) {
            s += exp(x.Z[r * 5 + c]);
            if (x.Z[r * 5 + c] > x.Z[r * 5 + arg])
                arg = c;
        }
        ref += log(s) - x.Z[r * 5 + y[r]];
        ref_ok += arg == y[r];
    }
    cr_expect_float_eq(loss, ref / 4, 1e-13);
    cr_expect_eq(ok, ref_ok);
    free(x.Z), free(x.P);
}

Test(nn, adam_first_step_closed_form)
{
    /* m_hat = g, v_hat = g^2 after one step: p -= lr g / (|g| + eps) */
    af_adam_options o = af_adam_options_default();
    double p[3] = {1, 2, 3}, g[3] = {0.5, -2, 1e-3}, m[3] = {0}, v[3] = {0};
    af_adam_step(&o, 3, 1, p, g, m, v);
    double p0[3] = {1, 2, 3};
    for (int k = 0; k < 3; k++)
        cr_expect_float_eq(p[k], p0[k] - o.lr * g[k] / (fabs(g[k]) + o.eps), 1e-15);
    /* a second step with the same gradient moves by the same amount */
    double q[3];
    memcpy(q, p, sizeof q);
    af_adam_step(&o, 3, 2, p, g, m, v);
    for (int k = 0; k < 3; k++)
        cr_expect_float_eq(p[k] - q[k], -o.lr * g[k] / (fabs(g[k]) + o.eps), 1e-12);
}

/* Plain log-domain Sinkhorn, every step a max-shifted log-sum-exp. */
static void naive_log_sinkhorn(size_t n, size_t it, const double *S, double *L)
{
    memcpy(L, S, n * n * sizeof *L);
    for (size_t k = 0; k < it; k++)
        for (size_t a = 0; a < n; a++) {
            /* row a (odd steps) or column a (even steps) */
            size_t st = k % 2 ? n : 1, base = k % 2 ? a : a * n;
            double mx = -INFINITY, s = 0;
            for (size_t b = 0; b < n; b++)
                mx = fmax(mx, L[base + b * st]);
            for (size_t b = 0; b < n; b++)
                s += exp(L[base + b * st] - mx);
            for (size_t b = 0; b < n; b++)
                L[base + b * st] -= mx + log(s);
        }
}

Test(nn, sinkhorn_survives_huge_scores)
{
    /* scores of std 3000: all but the largest entries underflow after the first SoftMax, so
     * whole columns sum to < 1e-200 and take the log-sum-exp fallback */
    size_t n = 12;
    double *S = randn(n * n, 3000), L[144], Lref[144], A[144], work[24];
    for (size_t it = 1; it <= 6; it++) {
        double *hist = malloc(it * n * n * sizeof *hist);
        memcpy(L, S, sizeof L);
        af_nn_sinkhorn_forward(n, it, L, hist, A, work);
        naive_log_sinkhorn(n, it, S, Lref);
        for (size_t k = 0; k < n * n; k++) {
            cr_expect(isfinite(A[k]) && isfinite(L[k]), "n_it %zu: non-finite entry", it);
            cr_expect_leq(fabs(L[k] - Lref[k]), 1e-12 * (1 + fabs(Lref[k])),
                          "n_it %zu entry %zu: log A %.17g vs %.17g", it, k, L[k], Lref[k]);
            cr_expect_leq(fabs(A[k] - exp(Lref[k])), 1e-13, "n_it %zu entry %zu", it, k);
        }
        double re, ce;
        fx_marginal_errors(n, n, A, &re, &ce);
        cr_expect_lt(it % 2 ? re : ce, 1e-13, "n_it %zu", it);
        free(hist);
    }
    free(S);
}

Test(nn, profile_counts_every_product_only_when_on)
{
    double X[6] = {1, 2, 3, 4, 5, 6}, W[6] = {1, 0, 0, 1, 1, 1}, b[2] = {0, 0}, Y[4];
    af_nn_profile_enable(0);
    af_nn_linear_forward(2, 3, 2, X, W, b, Y);
    cr_expect_eq(af_nn_profile_get().gemm_calls, 0);
    af_nn_profile_enable(1);
    af_nn_linear_forward(2, 3, 2, X, W, b, Y);
    af_nn_linear_forward(2, 3, 2, X, W, b, Y);
    af_nn_profile p = af_nn_profile_get();
    cr_expect_eq(p.gemm_calls, 2);
    cr_expect(p.gemm_seconds >= 0 && p.gemm_seconds < 1);
    af_nn_profile_enable(0);
    cr_expect_eq(af_nn_profile_get().gemm_calls, 0, "enable resets the counters");
}

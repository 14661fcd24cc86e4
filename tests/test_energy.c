/* The gradient-flow structure of Sinkhorn attention (docs/theory.md section 4):
 * finite differences of F_n against its closed-form gradient and against
 * the attention field, monotone decrease along Euler steps, the
 * dissipation identity, and symmetric vs non-symmetric field Jacobians. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "attnflow/energy.h"
#include "attnflow/normalize.h"
#include "attnflow/scores.h"

/* An attention field written out here, independently of the flow module:
 * T_i = sum_j K_ij W_V x_j with K SoftMax or Sinkhorn (cold start, tight tol). */
typedef struct {
    size_t n, d;
    int sinkhorn;
    af_scores_params sp;
    const double *WV; /* d x d */
    double *C, *K, *work;
    af_sinkhorn_ws *sk;
} field_ctx;

static af_status attn_field(void *user, const double *X, double *T)
{
    field_ctx *c = user;
    size_t n = c->n, d = c->d;
    af_status st = af_scores(&c->sp, n, n, d, X, X, c->C, c->work);
    if (st)
        return st;
    if (c->sinkhorn) {
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.tol = 1e-14;
        o.max_iters = 100000;
        o.compute_bound = 0;
        if ((st = af_sinkhorn(c->sk, c->C, &o, c->K, NULL)))
            return st;
    } else if ((st = af_softmax(n, n, c->C, c->K))) {
        return st;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t a = 0; a < d; a++) {
            double v = 0;
            for (size_t j = 0; j < n; j++)
                for (size_t b = 0; b < d; b++)
                    v += c->K[i * n + j] * c->WV[a * d + b] * X[j * d + b];
            T[i * d + a] = v;
        }
    return AF_SUCCESS;
}

static field_ctx field_new(size_t n, size_t d, int sinkhorn, af_scores_params sp, const double *WV)
{
    field_ctx c = {n, d, sinkhorn, sp, WV, malloc(n * n * sizeof(double)),
                   malloc(n * n * sizeof(double)), malloc(AF_SCORES_WORK(n, n, d) * sizeof(double)),
                   af_sinkhorn_alloc(n, n)};
    return c;
}

static void field_free(field_ctx *c)
{
    free(c->C);
    free(c->K);
    free(c->work);
    af_sinkhorn_free(c->sk);
}

static void cloud(gsl_rng *r, size_t n, size_t d, double s, double *X)
{
    for (size_t k = 0; k < n * d; k++)
        X[k] = gsl_ran_gaussian(r, s);
}

/* A = Q diag(l) Q^T style symmetric 3 x 3 (indefinite on purpose). */
static const double A3[9] = {1.0, 0.3, -0.2, 0.3, -0.5, 0.4, -0.2, 0.4, 0.8};

static double rel_max_diff(size_t N, const double *a, const double *b)
{
    double e = 0, m = 0;
    for (size_t k = 0; k < N; k++) {
        e = fmax(e, fabs(a[k] - b[k]));
        m = fmax(m, fabs(b[k]));
    }
    return e / m;
}

static void fd_gradient(af_energy_ws *ws, const af_energy_params *p, size_t N, const double *X,
                        double h, double *g)
{
    double *Y = malloc(N * sizeof *Y), Fp, Fm;
    memcpy(Y, X, N * sizeof *Y);
    for (size_t k = 0; k < N; k++) {
        Y[k] = X[k] + h;
        af_energy(ws, p, Y, &Fp, NULL);
        Y[k] = X[k] - h;
        af_energy(ws, p, Y, &Fm, NULL);
        Y[k] = X[k];
        g[k] = (Fp - Fm) / (2 * h);
    }
    free(Y);
}

Test(energy, gradient_matches_finite_differences)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1);
    size_t n = 12, d = 3, N = n * d;
    double X[36], g[36], gfd[36], F;
    cloud(r, n, d, 0.7, X);
    af_energy_ws *ws = af_energy_alloc(n, d);
    af_energy_params p = af_energy_params_default();
    /* dot scores with a symmetric indefinite A at two temperatures, then L2 */
    for (int c = 0; c < 3; c++) {
        p.scores.kind = c < 2 ? AF_SCORES_DOT : AF_SCORES_L2;
        p.scores.A = c < 2 ? A3 : NULL;
        p.scores.eps = c == 1 ? 0.5 : 1.0;
        cr_assert_eq(af_energy(ws, &p, X, &F, g), AF_SUCCESS, "%s", af_last_error());
        fd_gradient(ws, &p, N, X, 1e-5, gfd);
        double e = rel_max_diff(N, gfd, g);
        cr_expect_lt(e, 1e-6, "case %d: relative gradient error %g", c, e);
    }
    af_energy_free(ws);
    gsl_rng_free(r);
}

Test(energy, field_is_minus_n_gradient)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2);
    size_t n = 15, d = 3, N = n * d;
    double X[45], T[45], gfd[45], F, WV[9];
    cloud(r, n, d, 0.8, X);
    af_energy_params p = af_energy_params_default();
    p.scores.A = A3;
    p.scores.eps = 0.7;
    for (int k = 0; k < 9; k++) /* W_V = A / eps: the whole score matrix */
        WV[k] = A3[k] / p.scores.eps;
    field_ctx fc = field_new(n, d, 1, p.scores, WV);
    cr_assert_eq(attn_field(&fc, X, T), AF_SUCCESS);
    af_energy_ws *ws = af_energy_alloc(n, d);
    cr_assert_eq(af_energy(ws, &p, X, &F, NULL), AF_SUCCESS);
    fd_gradient(ws, &p, N, X, 1e-5, gfd);
    for (size_t k = 0; k < N; k++)
        gfd[k] *= -(double)n;
    double e = rel_max_diff(N, gfd, T);
    cr_expect_lt(e, 1e-6, "T vs -n dF/dx: relative error %g", e);
    /* the SoftMax field is not -n dF/dx */
    field_ctx fs = field_new(n, d, 0, p.scores, WV);
    attn_field(&fs, X, T);
    cr_expect_gt(rel_max_diff(N, gfd, T), 1e-2);
    field_free(&fc);
    field_free(&fs);
    af_energy_free(ws);
    gsl_rng_free(r);
}

Test(energy, decreases_along_euler_steps_with_predicted_rate)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    size_t n = 20, d = 2, N = n * d;
    double X[40], T[40], F0, F1, WV[4] = {1, 0.2, 0.2, -0.6};
    cloud(r, n, d, 1.0, X);
    af_energy_params p = af_energy_params_default();
    p.scores.A = WV; /* eps = 1: W_V = A */
    field_ctx fc = field_new(n, d, 1, p.scores, WV);
    af_energy_ws *ws = af_energy_alloc(n, d);
    cr_assert_eq(af_energy(ws, &p, X, &F0, NULL), AF_SUCCESS);
    double h = 1e-3;
    for (int step = 0; step < 30; step++) {
        attn_field(&fc, X, T);
        double pred = af_energy_dissipation(n, d, T);
        for (size_t k = 0; k < N; k++)
            X[k] += h * T[k];
        cr_assert_eq(af_energy(ws, &p, X, &F1, NULL), AF_SUCCESS);
        cr_expect_lt(F1, F0, "step %d: F rose from %.15g to %.15g", step, F0, F1);
        /* explicit Euler: (F1 - F0)/h = pred + O(h) */
        double meas = (F1 - F0) / h;
        cr_expect(fabs(meas - pred) < 0.02 * fabs(pred), "step %d: rate %g vs %g", step, meas, pred);
        F0 = F1;
    }
    field_free(&fc);
    af_energy_free(ws);
    gsl_rng_free(r);
}

Test(energy, dissipation_identity)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4);
    size_t n = 25, d = 2;
    double X[50], T[50], V[50], rate;
    cloud(r, n, d, 1.0, X);
    double A[4] = {0.5, 0.1, 0.1, 0.3};
    af_energy_params p = af_energy_params_default();
    p.scores.A = A;
    p.scores.eps = 0.5;
    double WV[4];
    for (int k = 0; k < 4; k++)
        WV[k] = A[k] / p.scores.eps;
    field_ctx fc = field_new(n, d, 1, p.scores, WV);
    attn_field(&fc, X, T);
    af_energy_ws *ws = af_energy_alloc(n, d);
    cr_assert_eq(af_energy_rate(ws, &p, X, T, 1e-5, &rate), AF_SUCCESS);
    double pred = af_energy_dissipation(n, d, T);
    cr_expect(fabs(rate - pred) < 1e-6 * fabs(pred), "dF/dt %.12g vs -(1/n) sum |T|^2 %.12g", rate,
              pred);
    /* along SoftMax, dF/dt = -(1/n) sum T_sink . T_soft (no sign) */
    field_ctx fs = field_new(n, d, 0, p.scores, WV);
    attn_field(&fs, X, V);
    cr_assert_eq(af_energy_rate(ws, &p, X, V, 1e-5, &rate), AF_SUCCESS);
    double dot = 0;
    for (size_t k = 0; k < n * d; k++)
        dot += T[k] * V[k];
    cr_expect(fabs(rate + dot / (double)n) < 1e-6 * fabs(dot / (double)n));
    field_free(&fc);
    field_free(&fs);
    af_energy_free(ws);
    gsl_rng_free(r);
}

Test(energy, heat_field_is_twice_n_gradient_of_l2_energy)
{
    /* v_i = -(2/eps)(sum_j K_ij x_j - x_i) = +2n dF_n/dx_i for L2 scores */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    size_t n = 30, d = 2;
    double X[60], KX[60], g[60], F, eps = 0.3, I2[4] = {1, 0, 0, 1};
    cloud(r, n, d, 1.0, X);
    af_energy_params p = af_energy_params_default();
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = eps;
    field_ctx fc = field_new(n, d, 1, p.scores, I2);
    attn_field(&fc, X, KX);
    af_energy_ws *ws = af_energy_alloc(n, d);
    af_energy(ws, &p, X, &F, g);
    double v[60], twice[60];
    for (size_t k = 0; k < n * d; k++) {
        v[k] = -(2 / eps) * (KX[k] - X[k]);
        twice[k] = 2 * (double)n * g[k];
    }
    cr_expect_lt(rel_max_diff(n * d, twice, v), 1e-8);
    field_free(&fc);
    af_energy_free(ws);
    gsl_rng_free(r);
}

Test(energy, closed_forms_and_potential_shift)
{
    /* n = 1: OT(delta_x, delta_x) = -C(x, x), F = -x^T A x / (2 eps) */
    double x[3] = {0.3, -1.2, 0.5}, F;
    af_energy_params p = af_energy_params_default();
    p.scores.A = A3;
    p.scores.eps = 0.4;
    af_energy_ws *w1 = af_energy_alloc(1, 3);
    cr_assert_eq(af_energy(w1, &p, x, &F, NULL), AF_SUCCESS);
    double q = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            q += x[a] * A3[a * 3 + b] * x[b];
    cr_expect(fabs(F + q / (2 * 0.4)) < 1e-13, "%.15g vs %.15g", F, -q / 0.8);
    af_energy_free(w1);
    /* L2 vs dot (A = I): the |x|^2 terms fold into the potentials (the
     * log n bookkeeping of phi, psi vs f, g must cancel exactly here) */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 6);
    size_t n = 40, d = 2;
    double X[80], Fd, Fl, s2 = 0;
    cloud(r, n, d, 1.0, X);
    af_energy_ws *ws = af_energy_alloc(n, d);
    p.scores.A = NULL;
    p.scores.eps = 0.5;
    af_energy(ws, &p, X, &Fd, NULL);
    p.scores.kind = AF_SCORES_L2;
    af_energy_reset(ws);
    af_energy(ws, &p, X, &Fl, NULL);
    for (size_t k = 0; k < n * d; k++)
        s2 += X[k] * X[k];
    cr_expect(fabs(Fl - (Fd + s2 / (2 * 0.5 * (double)n))) < 1e-11, "%.15g vs %.15g", Fl,
              Fd + s2 / (double)n);
    /* two points, A = I, eps = 1: the plan of a symmetric 2 x 2 problem in
     * closed form: K = [[a, 1-a], [1-a, a]] with a/(1-a) = exp((c11 + c22 - 2 c12)/2) */
    double Y[4] = {0.3, 0.1, -0.4, 0.6};
    af_energy_ws *w2 = af_energy_alloc(2, 2);
    p.scores.kind = AF_SCORES_DOT;
    p.scores.eps = 1;
    af_energy(w2, &p, Y, &F, NULL);
    double c11 = 0.1, c22 = 0.52, c12 = -0.06;
    double t = exp(0.5 * (c11 + c22 - 2 * c12)), a = t / (1 + t);
    /* OT = sum pi c + KL(pi | 1/4): pi = K / 2 */
    double ot = -(a * (c11 + c22) + 2 * (1 - a) * c12) / 2
                + 2 * (a / 2) * log(2 * a) + 2 * ((1 - a) / 2) * log(2 * (1 - a));
    cr_expect(fabs(F - ot / 2) < 1e-12, "F %.15g vs closed form %.15g", F, ot / 2);
    af_energy_free(w2);
    /* non-symmetric A is refused */
    double An[4] = {1, 2, 0, 1};
    p.scores.A = An;
    cr_expect_eq(af_energy(ws, &p, X, &F, NULL), AF_EINVAL);
    af_energy_free(ws);
    gsl_rng_free(r);
}

/* A field with a known Jacobian: T = M X + sin(X) (elementwise). */
typedef struct {
    size_t N;
    const double *M;
} toy_ctx;

static af_status toy_field(void *user, const double *X, double *T)
{
    toy_ctx *c = user;
    for (size_t a = 0; a < c->N; a++) {
        double v = sin(X[a]);
        for (size_t b = 0; b < c->N; b++)
            v += c->M[a * c->N + b] * X[b];
        T[a] = v;
    }
    return AF_SUCCESS;
}

Test(energy, fd_jacobian_checked_against_exact)
{
    size_t N = 6;
    double M[36], X[6], J[36], work[24], err;
    for (size_t k = 0; k < 36; k++)
        M[k] = sin(1.0 + (double)k);
    for (size_t k = 0; k < N; k++)
        X[k] = 0.3 * (double)k - 0.7;
    toy_ctx c = {N, M};
    cr_assert_eq(af_fd_jacobian(toy_field, &c, N, X, 1e-3, J, &err, work), AF_SUCCESS);
    double maxe = 0;
    for (size_t a = 0; a < N; a++)
        for (size_t b = 0; b < N; b++) {
            double ex = M[a * N + b] + (a == b ? cos(X[a]) : 0);
            maxe = fmax(maxe, fabs(J[a * N + b] - ex));
        }
    cr_expect_lt(maxe, 1e-6, "error %g", maxe);
    /* the estimate tracks the true O(h^2) error within a factor 2 */
    cr_expect(err > 0.5 * maxe && err < 2 * maxe, "estimate %g vs true %g", err, maxe);
    cr_expect(af_jacobian_asymmetry(N, J) > 0.1);
    double S[4] = {1, 2, 2, 3}, Z[4] = {0, 0, 0, 0};
    cr_expect_eq(af_jacobian_asymmetry(2, S), 0.0);
    cr_expect_eq(af_jacobian_asymmetry(2, Z), 0.0);
}

Test(energy, sinkhorn_jacobian_symmetric_softmax_not)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7);
    size_t n = 10, d = 2, N = n * d;
    double X[20], *J = malloc(N * N * sizeof *J), work[80], err;
    cloud(r, n, d, 1.0, X);
    double A[4] = {1, 0.4, 0.4, -0.5}, other[4] = {1, 0, 0, 1};
    af_scores_params sp = af_scores_params_default();
    sp.A = A;
    double asym[3];
    /* Sinkhorn with W_V = A; SoftMax with W_V = A; Sinkhorn with W_V != A */
    for (int c = 0; c < 3; c++) {
        field_ctx fc = field_new(n, d, c != 1, sp, c == 2 ? other : A);
        cr_assert_eq(af_fd_jacobian(attn_field, &fc, N, X, 1e-4, J, &err, work), AF_SUCCESS);
        asym[c] = af_jacobian_asymmetry(N, J);
        field_free(&fc);
    }
    cr_expect_lt(asym[0], 1e-7, "Sinkhorn, W_V = A: %g", asym[0]);
    cr_expect_gt(asym[1], 0.05, "SoftMax: %g", asym[1]);
    cr_expect_gt(asym[2], 0.05, "Sinkhorn, W_V != A: %g", asym[2]);
    free(J);
    gsl_rng_free(r);
}

Test(energy, rate_reports_unconverged_evaluations)
{
    /* Sinkhorn capped at 2 iterations: af_energy_rate must report AF_EMAXITER
     * (with the rate filled), not AF_SUCCESS. (A case where only the first of
     * its two evaluations fails could not be built: the second warm-starts
     * from the first's unconverged potentials and then fails too.) */
    size_t n = 12, d = 2;
    double X[24], V[24], Y[24], rate = NAN, F;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 8);
    cloud(r, n, d, 1.0, V);
    cloud(r, n, d, 1.0, X);
    const double tau = 0.5;
    af_energy_params p = af_energy_params_default();
    p.scores.eps = 0.5;
    p.sinkhorn.max_iters = 2;
    p.sinkhorn.tol = 1e-10;
    af_energy_ws *ws = af_energy_alloc(n, d);
    for (size_t k = 0; k < n * d; k++)
        Y[k] = X[k] + tau * V[k];
    af_status st = af_energy(ws, &p, Y, &F, NULL);
    cr_assert_eq(st, AF_EMAXITER, "2 iterations do not converge (%d: %s)", st, af_last_error());
    af_energy_reset(ws);
    st = af_energy_rate(ws, &p, X, V, tau, &rate);
    cr_expect_eq(st, AF_EMAXITER, "%d: %s", st, af_last_error());
    cr_expect(isfinite(rate), "the rate is still returned");
    af_energy_free(ws);
    gsl_rng_free(r);
}

Test(energy, alloc_refuses_sizes_that_overflow)
{
    af_clear_error();
    cr_expect_null(af_energy_alloc((size_t)1 << 40, 2));
    cr_expect_neq(strstr(af_last_error(), "too large"), NULL, "%s", af_last_error());
    cr_expect_null(af_energy_alloc(1000, (size_t)INT_MAX));
}

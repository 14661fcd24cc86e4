/* Convex duality of attention: the head/Z identity, the certificate, the
 * solver against closed forms, head extraction, the nonconvex baseline. */
#include <criterion/criterion.h>
#include "support/fixtures.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_sort_vector.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "attnflow/convex.h"
#include "support/convex_kkt.h"

typedef struct {
    af_convex_problem *p;
    gsl_rng *rng;
    double *X, *H, *Y;
    size_t zs;
} fixture;

static fixture make(af_convex_kind kind, af_convex_loss loss, size_t N, size_t n, size_t d,
                    size_t c, size_t P, unsigned long seed, double noise)
{
    fixture f = {0};
    f.rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(f.rng, seed);
    af_convex_synth_params sp = af_convex_synth_params_default();
    sp.noise = noise;
    f.X = malloc(N * n * d * sizeof *f.X);
    f.H = malloc(P * d * d * sizeof *f.H);
    f.Y = malloc(N * n * c * sizeof *f.Y);
    cr_assert_eq(af_convex_synth_tokens(&sp, N, n, d, f.rng, f.X, NULL), AF_SUCCESS);
    cr_assert_eq(af_convex_synth_gates(P, d, f.rng, f.H), AF_SUCCESS);
    af_convex_shape sh = {kind, loss, N, n, d, c, P, AF_CONVEX_ATTENTION, 0, 0, 0};
    cr_assert_eq(af_convex_problem_alloc(&f.p, &sh, f.X, f.H), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(af_convex_synth_targets(f.p, &sp, f.rng, f.Y), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(af_convex_problem_set_targets(f.p, f.Y), AF_SUCCESS, "%s", af_last_error());
    f.zs = af_convex_z_size(f.p);
    return f;
}

static void unmake(fixture *f)
{
    af_convex_problem_free(f->p);
    gsl_rng_free(f->rng);
    free(f->X);
    free(f->H);
    free(f->Y);
}


/* ---- the identity between the head form and the Z form ---- */

static void identity_case(af_convex_kind kind)
{
    size_t N = 6, n = 5, d = 3, c = 2, P = 3, m = 4;
    fixture f = make(kind, AF_CONVEX_SQUARED, N, n, d, c, P, 11, 0.1);
    double W1[m * d * d], W2[m * d * c], Z[f.zs], F1[N * n * c], F2[N * n * c];
    size_t gate_of[m];
    for (size_t h = 0; h < m; h++)
        gate_of[h] = kind == AF_CONVEX_GATED ? (h * 2) % P : 0;
    for (int rep = 0; rep < 5; rep++) {
        fx_gaussian_fill(f.rng, m * d * d, 1.0, W1);
        fx_gaussian_fill(f.rng, m * d * c, 1.0, W2);
        cr_assert_eq(af_convex_heads_predict(f.p, m, W1, W2, gate_of, F1), AF_SUCCESS);
        cr_assert_eq(af_convex_z_from_heads(f.p, m, W1, W2, gate_of, Z), AF_SUCCESS);
        cr_assert_eq(af_convex_predict(f.p, Z, F2), AF_SUCCESS);
        double scale = fx_maxabs(N * n * c, F1);
        cr_assert_gt(scale, 1e-3);
        for (size_t q = 0; q < N * n * c; q++)
            cr_assert_leq(fabs(F1[q] - F2[q]), 1e-12 * scale, "output %zu: heads %.17g, Z %.17g",
                          q, F1[q], F2[q]);
    }
    unmake(&f);
}

Test(convex, zform_identity_linear) { identity_case(AF_CONVEX_LINEAR); }
Test(convex, zform_identity_gated) { identity_case(AF_CONVEX_GATED); }

/* The identity by an independent, literal formula: f = X W1 X^T X W2 with
 * plain loops on one sample, against the Z form. */
Test(convex, zform_matches_literal_formula)
{
    size_t N = 1, n = 4, d = 3, c = 2;
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, N, n, d, c, 1, 5, 0);
    double W1[d * d], W2[d * c], Z[f.zs], F[n * c];
    fx_gaussian_fill(f.rng, d * d, 1, W1);
    fx_gaussian_fill(f.rng, d * c, 1, W2);
    cr_assert_eq(af_convex_z_from_heads(f.p, 1, W1, W2, NULL, Z), AF_SUCCESS);
    cr_assert_eq(af_convex_predict(f.p, Z, F), AF_SUCCESS);
    const double *X = f.X;
    for (size_t t = 0; t < n; t++)
        for (size_t o = 0; o < c; o++) {
            double v = 0;
            for (size_t s = 0; s < n; s++) {
                double a = 0, b = 0;
                for (size_t k = 0; k < d; k++)
                    for (size_t l = 0; l < d; l++)
                        a += X[t * d + k] * W1[k * d + l] * X[s * d + l];
                for (size_t q = 0; q < d; q++)
                    b += X[s * d + q] * W2[q * c + o];
                v += a * b;
            }
            cr_assert_float_eq(F[t * c + o], v, 1e-13 * (1 + fabs(v)));
        }
    unmake(&f);
}

Test(convex, nuclear_norm_bound_and_balanced_equality)
{
    size_t d = 3, c = 2, m = 3;
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, 4, 5, d, c, 1, 3, 0.1);
    double W1[m * d * d], W2[m * d * c], Z[f.zs], Z2[f.zs];
    size_t cap = d * c, mm;
    double V1[cap * d * d], V2[cap * d * c], sig[cap];
    for (int rep = 0; rep < 10; rep++) {
        fx_gaussian_fill(f.rng, m * d * d, 1.0, W1);
        fx_gaussian_fill(f.rng, m * d * c, 0.5 + rep, W2); /* unbalanced on purpose */
        af_convex_z_from_heads(f.p, m, W1, W2, NULL, Z);
        double nuc, reg = 0;
        cr_assert_eq(af_nuclear_norm(d * d, d * c, Z, &nuc), AF_SUCCESS);
        for (size_t q = 0; q < m * d * d; q++)
            reg += W1[q] * W1[q];
        for (size_t q = 0; q < m * d * c; q++)
            reg += W2[q] * W2[q];
        cr_assert_leq(nuc, 0.5 * reg * (1 + 1e-14));
        cr_assert_lt(nuc, 0.5 * reg * 0.999, "random heads are not balanced: strict inequality");
        /* balanced SVD factorisation: equality, and it rebuilds Z */
        cr_assert_eq(af_convex_heads_from_z(f.p, Z, 1e-12, cap, &mm, V1, V2, NULL, sig), AF_SUCCESS);
        cr_assert_eq(mm, m, "rank of a sum of 3 generic rank-one terms is 3");
        double breg = 0;
        for (size_t q = 0; q < mm * d * d; q++)
            breg += V1[q] * V1[q];
        for (size_t q = 0; q < mm * d * c; q++)
            breg += V2[q] * V2[q];
        cr_assert_float_eq(0.5 * breg, nuc, 1e-12 * nuc);
        for (size_t h = 0; h < mm; h++) { /* each head balanced: |W1_h| = |W2_h| = sqrt(sigma_h) */
            double a = 0, b = 0;
            for (size_t q = 0; q < d * d; q++)
                a += V1[h * d * d + q] * V1[h * d * d + q];
            for (size_t q = 0; q < d * c; q++)
                b += V2[h * d * c + q] * V2[h * d * c + q];
            cr_assert_float_eq(a, sig[h], 1e-12 * sig[h]);
            cr_assert_float_eq(b, sig[h], 1e-12 * sig[h]);
        }
        af_convex_z_from_heads(f.p, mm, V1, V2, NULL, Z2);
        for (size_t q = 0; q < f.zs; q++)
            cr_assert_float_eq(Z2[q], Z[q], 1e-12 * fx_maxabs(f.zs, Z));
    }
    unmake(&f);
}

/* ---- SVD, SVT, nuclear norm against independent computations ---- */

Test(convex, svt_against_eigenvalues)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2);
    size_t shapes[][2] = {{7, 4}, {4, 7}, {5, 5}};
    for (size_t k = 0; k < 3; k++) {
        size_t r = shapes[k][0], c = shapes[k][1], mn = r < c ? r : c;
        double A[r * c], B[r * c], sig[mn], rank0;
        fx_gaussian_fill(rng, r * c, 1, A);
        /* singular values from the eigenvalues of A^T A (independent path) */
        gsl_matrix *AtA = gsl_matrix_alloc(c, c);
        for (size_t i = 0; i < c; i++)
            for (size_t j = 0; j < c; j++) {
                double v = 0;
                for (size_t q = 0; q < r; q++)
                    v += A[q * c + i] * A[q * c + j];
                gsl_matrix_set(AtA, i, j, v);
            }
        gsl_vector *ev = gsl_vector_alloc(c);
        gsl_eigen_symm_workspace *w = gsl_eigen_symm_alloc(c);
        gsl_eigen_symm(AtA, ev, w);
        gsl_sort_vector(ev);
        double nuc_ref = 0;
        for (size_t j = 0; j < mn; j++)
            nuc_ref += sqrt(fmax(gsl_vector_get(ev, c - 1 - j), 0));
        double nuc;
        cr_assert_eq(af_nuclear_norm(r, c, A, &nuc), AF_SUCCESS);
        cr_assert_float_eq(nuc, nuc_ref, 1e-12 * nuc_ref);
        /* tau = 0 reproduces A */
        memcpy(B, A, sizeof B);
        size_t rank;
        cr_assert_eq(af_svt(r, c, B, 0, sig, &rank), AF_SUCCESS);
        cr_assert_eq(rank, mn);
        for (size_t q = 0; q < r * c; q++)
            cr_assert_float_eq(B[q], A[q], 1e-13);
        /* tau between the 2nd and 3rd singular values leaves rank 2 and
         * shrinks each value by tau */
        rank0 = 0.5 * (sig[1] + sig[2]);
        double s0 = sig[0], s1 = sig[1];
        memcpy(B, A, sizeof B);
        cr_assert_eq(af_svt(r, c, B, rank0, sig, &rank), AF_SUCCESS);
        cr_assert_eq(rank, 2);
        cr_assert_float_eq(sig[0], s0 - rank0, 1e-12);
        cr_assert_float_eq(sig[1], s1 - rank0, 1e-12);
        cr_assert_eq(sig[2], 0.0);
        double nb;
        af_nuclear_norm(r, c, B, &nb);
        cr_assert_float_eq(nb, sig[0] + sig[1], 1e-12);
        gsl_matrix_free(AtA);
        gsl_vector_free(ev);
        gsl_eigen_symm_free(w);
    }
    gsl_rng_free(rng);
}

/* ---- gradients against central finite differences ---- */

static void gradient_case(af_convex_kind kind, af_convex_loss loss)
{
    fixture f = make(kind, loss, 5, 4, 3, 3, 2, 21, 0.2);
    double Z[f.zs], G[f.zs], V[f.zs], Zp[f.zs];
    fx_gaussian_fill(f.rng, f.zs, 0.3, Z);
    fx_gaussian_fill(f.rng, f.zs, 1.0, V);
    double L0, Lp, Lm;
    cr_assert_eq(af_convex_gradient(f.p, Z, &L0, G), AF_SUCCESS);
    double h = 1e-5, dir = 0;
    for (size_t q = 0; q < f.zs; q++) {
        Zp[q] = Z[q] + h * V[q];
        dir += G[q] * V[q];
    }
    af_convex_gradient(f.p, Zp, &Lp, NULL);
    for (size_t q = 0; q < f.zs; q++)
        Zp[q] = Z[q] - h * V[q];
    af_convex_gradient(f.p, Zp, &Lm, NULL);
    double fd = (Lp - Lm) / (2 * h);
    cr_assert_float_eq(fd, dir, 1e-6 * (fabs(dir) + 1e-3), "fd %.12g vs gradient %.12g", fd, dir);
    cr_assert_gt(fabs(dir), 1e-4);
    unmake(&f);
}

Test(convex, gradient_fd_linear_squared) { gradient_case(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED); }
Test(convex, gradient_fd_linear_ce) { gradient_case(AF_CONVEX_LINEAR, AF_CONVEX_CE); }
Test(convex, gradient_fd_gated_squared) { gradient_case(AF_CONVEX_GATED, AF_CONVEX_SQUARED); }
Test(convex, gradient_fd_gated_ce) { gradient_case(AF_CONVEX_GATED, AF_CONVEX_CE); }

static void heads_gradient_case(af_convex_kind kind, af_convex_loss loss)
{
    size_t d = 3, c = 3, m = 3, P = 2;
    fixture f = make(kind, loss, 4, 5, d, c, P, 31, 0.2);
    size_t np = m * (d * d + d * c);
    double W[np], G[np], V[np], Wp[np];
    size_t gate_of[m];
    for (size_t h = 0; h < m; h++)
        gate_of[h] = h % P;
    size_t *go = kind == AF_CONVEX_GATED ? gate_of : NULL;
    fx_gaussian_fill(f.rng, np, 0.7, W);
    fx_gaussian_fill(f.rng, np, 1.0, V);
    double beta = 0.05, o0, op, om, dir = 0, h = 1e-5;
    size_t off = m * d * d;
    cr_assert_eq(af_convex_heads_objective(f.p, beta, m, W, W + off, go, &o0, G, G + off),
                 AF_SUCCESS);
    for (size_t q = 0; q < np; q++) {
        Wp[q] = W[q] + h * V[q];
        dir += G[q] * V[q];
    }
    af_convex_heads_objective(f.p, beta, m, Wp, Wp + off, go, &op, NULL, NULL);
    for (size_t q = 0; q < np; q++)
        Wp[q] = W[q] - h * V[q];
    af_convex_heads_objective(f.p, beta, m, Wp, Wp + off, go, &om, NULL, NULL);
    double fd = (op - om) / (2 * h);
    cr_assert_float_eq(fd, dir, 1e-6 * (fabs(dir) + 1e-3), "fd %.12g vs gradient %.12g", fd, dir);
    unmake(&f);
}

Test(convex, heads_gradient_fd_linear_ce) { heads_gradient_case(AF_CONVEX_LINEAR, AF_CONVEX_CE); }
Test(convex, heads_gradient_fd_gated_squared) { heads_gradient_case(AF_CONVEX_GATED, AF_CONVEX_SQUARED); }

/* The d = 1 linear problem in closed form: alpha = (1/T) sum a_t^2 and
 * b = (1/T) sum a_t y_t with a_t = x_t G_i (T = N n tokens); returns |b|. */
static double d1_problem(const fixture *f, size_t N, size_t n, size_t c, double *alpha, double *b)
{
    *alpha = 0;
    for (size_t o = 0; o < c; o++)
        b[o] = 0;
    for (size_t i = 0; i < N; i++) {
        double G = 0;
        for (size_t t = 0; t < n; t++)
            G += f->X[i * n + t] * f->X[i * n + t];
        for (size_t t = 0; t < n; t++) {
            double a = f->X[i * n + t] * G;
            *alpha += a * a;
            for (size_t o = 0; o < c; o++)
                b[o] += a * f->Y[(i * n + t) * c + o];
        }
    }
    *alpha /= (double)(N * n);
    double nb = 0;
    for (size_t o = 0; o < c; o++) {
        b[o] /= (double)(N * n);
        nb += b[o] * b[o];
    }
    return sqrt(nb);
}

/* ---- solver against a closed form ----
 * d = 1: Z is a 1 x c row, f_t = a_t Z with a_t = x_t G_i, the nuclear norm
 * is the Euclidean norm and the problem is
 *   min  alpha/2 |Z|^2 - <b, Z> + beta |Z| + const,
 *   alpha = (1/T) sum a_t^2,  b = (1/T) sum a_t y_t,
 * solved by Z* = (|b| - beta)_+ / alpha * b / |b| (group soft-thresholding). */
Test(convex, solver_closed_form_d1)
{
    size_t N = 20, n = 4, c = 3;
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, N, n, 1, c, 1, 41, 0.3);
    double alpha, b[3], nb = d1_problem(&f, N, n, c, &alpha, b);
    double betas[2] = {0.3 * nb, 0.8 * nb};
    for (int k = 0; k < 2; k++) {
        double beta = betas[k], Zs[3], Z[3] = {0, 0, 0};
        for (size_t o = 0; o < c; o++)
            Zs[o] = (nb - beta) / alpha * b[o] / nb;
        af_convex_options opt = af_convex_options_default();
        opt.beta = beta;
        opt.tol = 1e-12;
        af_convex_state st;
        cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
        cr_assert_leq(st.rel_gap, 1e-12);
        cr_assert_eq(st.rank, 1);
        /* alpha-strong convexity: |Z - Z*|^2 <= 2 (P(Z) - P*) / alpha <= 2 gap / alpha */
        double err = 0;
        for (size_t o = 0; o < c; o++)
            err += (Z[o] - Zs[o]) * (Z[o] - Zs[o]);
        double bound = 2 * fmax(st.gap, 1e-16 * st.objective) / alpha;
        cr_assert_leq(err, bound * 1.01, "|Z - Z*|^2 = %.3g > %.3g", err, bound);
        cr_assert_lt(sqrt(err), 1e-5 * fx_maxabs(3, Zs));
        /* the objective at the closed form, computed independently */
        double loss = 0;
        for (size_t i = 0; i < N; i++) {
            double G = 0;
            for (size_t t = 0; t < n; t++)
                G += f.X[i * n + t] * f.X[i * n + t];
            for (size_t t = 0; t < n; t++)
                for (size_t o = 0; o < c; o++) {
                    double e = f.X[i * n + t] * G * Zs[o] - f.Y[(i * n + t) * c + o];
                    loss += 0.5 * e * e;
                }
        }
        double obj = loss / (double)(N * n) + beta * (nb - beta) / alpha;
        cr_assert_float_eq(st.objective, obj, 1e-11 * obj);
    }
    unmake(&f);
}

/* ---- the zero solution is certified exactly when |grad L(0)|_2 <= beta ---- */

static void zero_case(af_convex_kind kind, af_convex_loss loss)
{
    fixture f = make(kind, loss, 8, 4, 3, 3, 2, 51, 0.2);
    double Z0[f.zs], Z[f.zs];
    memset(Z0, 0, sizeof Z0);
    af_convex_certificate cert;
    cr_assert_eq(af_convex_certify(f.p, 1.0, Z0, &cert), AF_SUCCESS);
    double g0 = cert.grad_norm;
    cr_assert_gt(g0, 0);
    /* above the threshold: gap zero up to rounding, and the solver stays at 0 */
    cr_assert_eq(af_convex_certify(f.p, g0 * 1.001, Z0, &cert), AF_SUCCESS);
    cr_assert_leq(fabs(cert.gap), 1e-14 * cert.objective, "gap %.3g", cert.gap);
    af_convex_options opt = af_convex_options_default();
    opt.beta = g0 * 1.001;
    opt.tol = 1e-10;
    af_convex_state st;
    memset(Z, 0, sizeof Z);
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS);
    cr_assert_eq(st.rank, 0);
    cr_assert_eq(fx_maxabs(f.zs, Z), 0.0);
    /* below it: a positive gap at 0, and a nonzero solution that beats 0 */
    cr_assert_eq(af_convex_certify(f.p, g0 * 0.98, Z0, &cert), AF_SUCCESS);
    cr_assert_gt(cert.gap, 1e-9 * cert.objective, "gap %.3g", cert.gap);
    double p0 = cert.objective;
    opt.beta = g0 * 0.98;
    memset(Z, 0, sizeof Z);
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
    cr_assert_geq(st.rank, 1);
    cr_assert_lt(st.objective, p0);
    unmake(&f);
}

Test(convex, zero_certificate_linear_squared) { zero_case(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED); }
Test(convex, zero_certificate_linear_ce) { zero_case(AF_CONVEX_LINEAR, AF_CONVEX_CE); }
Test(convex, zero_certificate_gated_squared) { zero_case(AF_CONVEX_GATED, AF_CONVEX_SQUARED); }

/* ---- heads extracted from Z* reproduce the convex objective ---- */

static void extraction_case(af_convex_kind kind, af_convex_loss loss, double beta)
{
    size_t d = 3, c = 3, P = 2;
    fixture f = make(kind, loss, 30, 5, d, c, P, 61, 0.2);
    double Z[f.zs];
    memset(Z, 0, sizeof Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = beta;
    opt.tol = 1e-10;
    af_convex_state st;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
    cr_assert_leq(st.rel_gap, 1e-10);
    cr_assert_geq(st.rank, 1);
    size_t cap = P * d * c, m;
    double W1[cap * d * d], W2[cap * d * c];
    size_t gate_of[cap];
    cr_assert_eq(af_convex_heads_from_z(f.p, Z, 1e-9, cap, &m, W1, W2, gate_of, NULL), AF_SUCCESS);
    cr_assert_eq(m, st.rank, "heads %zu, rank %zu", m, st.rank);
    double obj;
    cr_assert_eq(af_convex_heads_objective(f.p, beta, m, W1, W2, gate_of, &obj, NULL, NULL),
                 AF_SUCCESS);
    cr_assert_float_eq(obj, st.objective, 1e-8 * st.objective, "heads %.15g convex %.15g", obj,
                       st.objective);
    /* and no head form can beat the dual bound */
    cr_assert_geq(obj, st.dual);
    unmake(&f);
}

Test(convex, extracted_heads_linear_squared) { extraction_case(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, 2e-3); }
Test(convex, extracted_heads_linear_ce) { extraction_case(AF_CONVEX_LINEAR, AF_CONVEX_CE, 1e-3); }
Test(convex, extracted_heads_gated_squared) { extraction_case(AF_CONVEX_GATED, AF_CONVEX_SQUARED, 2e-3); }
Test(convex, extracted_heads_gated_ce) { extraction_case(AF_CONVEX_GATED, AF_CONVEX_CE, 1e-3); }

/* docs/theory.md section 8 reads the relative gap off (|grad|_2 / beta - 1)_+.
 * That holds at Z = 0 only: away from 0 optimality also needs the gradient
 * aligned with -beta U V^T. In the d = 1 closed form above, at
 * Z' = (|b| + beta)/alpha * b/|b| the gradient alpha Z' - b = beta b/|b| has
 * norm exactly beta, yet P(Z') - P* = 2 beta^2 / alpha > 0. The Fenchel gap
 * of this module sees it (gap = 2 beta |Z'| >= P(Z') - P*). */
Test(convex, spectral_ratio_alone_is_not_a_gap_bound)
{
    size_t N = 20, n = 4, c = 3;
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, N, n, 1, c, 1, 41, 0.3);
    double alpha, b[3], nb = d1_problem(&f, N, n, c, &alpha, b);
    double beta = 0.5 * nb, Zs[3], Zb[3];
    for (size_t o = 0; o < c; o++) {
        Zs[o] = (nb - beta) / alpha * b[o] / nb;
        Zb[o] = (nb + beta) / alpha * b[o] / nb;
    }
    af_convex_certificate cs, cb;
    cr_assert_eq(af_convex_certify(f.p, beta, Zs, &cs), AF_SUCCESS);
    cr_assert_eq(af_convex_certify(f.p, beta, Zb, &cb), AF_SUCCESS);
    cr_assert_float_eq(cs.grad_ratio, 1.0, 1e-10);
    cr_assert_leq(cs.rel_gap, 1e-12, "closed-form optimum certified (gap %.3g)", cs.rel_gap);
    cr_assert_float_eq(cb.grad_ratio, 1.0, 1e-10, "|grad|_2 = beta at the wrong point too");
    double subopt = cb.objective - cs.objective;
    cr_assert_float_eq(subopt, 2 * beta * beta / alpha, 1e-9 * subopt);
    cr_assert_gt(subopt, 0.1 * cs.objective, "clearly suboptimal");
    cr_assert_geq(cb.gap, subopt * (1 - 1e-12), "the Fenchel gap bounds the suboptimality");
    cr_assert_float_eq(cb.gap, 2 * beta * (nb + beta) / alpha, 1e-9 * cb.gap);
    unmake(&f);
}

/* ---- the nonconvex head form against the convex optimum ---- */

Test(convex, nonconvex_reaches_optimum_only_with_enough_heads)
{
    size_t d = 3, c = 3;
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, 30, 5, d, c, 1, 71, 0.2);
    double Z[f.zs];
    memset(Z, 0, sizeof Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = 0.02;
    opt.tol = 1e-11;
    af_convex_state st;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
    size_t r = st.rank;
    cr_assert_geq(r, 2, "the test needs rank(Z*) >= 2 (got %zu)", r);
    af_convex_adam_options ao = af_convex_adam_options_default();
    ao.beta = opt.beta;
    ao.lr = 0.02;
    size_t ms[2] = {r - 1, r + 1};
    double final[2];
    for (int k = 0; k < 2; k++) {
        af_convex_adam *a = af_convex_adam_alloc(f.p, ms[k]);
        cr_assert_not_null(a);
        gsl_rng_set(f.rng, 5);
        cr_assert_eq(af_convex_adam_set(a, &ao, f.rng), AF_SUCCESS);
        double obj = 0;
        for (int it = 0; it < 3000; it++) {
            cr_assert_eq(af_convex_adam_iterate(a, &obj), AF_SUCCESS);
            /* weak duality: no head configuration beats the dual bound */
            cr_assert_geq(obj, st.dual, "iteration %d: %.15g < dual %.15g", it, obj, st.dual);
        }
        cr_assert_eq(af_convex_heads_objective(f.p, opt.beta, ms[k], af_convex_adam_w1(a),
                                               af_convex_adam_w2(a), NULL, &final[k], NULL, NULL),
                     AF_SUCCESS);
        af_convex_adam_free(a);
    }
    /* r + 1 heads reach the convex optimum; r - 1 heads cannot (rank bound) */
    cr_assert_lt((final[1] - st.objective) / st.objective, 1e-4, "m = r+1: %.12g vs P* %.12g",
                 final[1], st.objective);
    /* with m < r heads Z has rank <= m; the best rank-(r-1) truncation of
     * Z* already costs more than P*, and Adam's value must stay above P* */
    cr_assert_gt(final[0], st.objective * (1 + 1e-6), "m = r-1: %.12g vs P* %.12g", final[0],
                 st.objective);
    unmake(&f);
}

/* ---- solver variants agree; gap_every; start from a given Z ---- */

Test(convex, solver_variants_agree)
{
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_CE, 30, 5, 3, 3, 1, 81, 0.2);
    double Z1[f.zs], Z2[f.zs], Z3[f.zs];
    memset(Z1, 0, sizeof Z1);
    af_convex_options opt = af_convex_options_default();
    opt.beta = 0.01;
    opt.tol = 1e-10;
    af_convex_state s1, s2, s3;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z1, &s1), AF_SUCCESS);
    af_convex_options o2 = opt;
    o2.accelerate = 0;
    o2.restart = 0;
    o2.max_iter = 100000;
    o2.gap_every = 7;
    o2.svd = AF_CONVEX_SVD_GSL; /* the other SVD backend too */
    memset(Z2, 0, sizeof Z2);
    cr_assert_eq(af_convex_solve(f.p, &o2, Z2, &s2), AF_SUCCESS, "%s", af_last_error());
    cr_assert_float_eq(s2.objective, s1.objective, 2e-10 * s1.objective);
    cr_assert_gt(s2.iter, s1.iter, "acceleration pays: %zu vs %zu", s1.iter, s2.iter);
    /* warm start at the solution: certified at once */
    memcpy(Z3, Z1, sizeof Z3);
    cr_assert_eq(af_convex_solve(f.p, &opt, Z3, &s3), AF_SUCCESS);
    cr_assert_eq(s3.iter, 0);
    cr_assert_float_eq(s3.objective, s1.objective, 1e-12 * s1.objective);
    unmake(&f);
}

/* ---- data and errors ---- */

Test(convex, synthetic_data_reproducible)
{
    fixture a = make(AF_CONVEX_GATED, AF_CONVEX_CE, 5, 4, 3, 4, 2, 99, 0.3);
    fixture b = make(AF_CONVEX_GATED, AF_CONVEX_CE, 5, 4, 3, 4, 2, 99, 0.3);
    fixture c = make(AF_CONVEX_GATED, AF_CONVEX_CE, 5, 4, 3, 4, 2, 100, 0.3);
    cr_assert_eq(memcmp(a.X, b.X, 5 * 4 * 3 * sizeof(double)), 0);
    cr_assert_eq(memcmp(a.Y, b.Y, 5 * 4 * 4 * sizeof(double)), 0);
    cr_assert_neq(memcmp(a.X, c.X, 5 * 4 * 3 * sizeof(double)), 0);
    for (size_t t = 0; t < 5 * 4; t++) { /* one-hot targets */
        double s = 0;
        for (size_t o = 0; o < 4; o++) {
            cr_assert(a.Y[t * 4 + o] == 0 || a.Y[t * 4 + o] == 1);
            s += a.Y[t * 4 + o];
        }
        cr_assert_eq(s, 1.0);
    }
    /* the masks are the signs of x_t^T H_g x_s */
    const unsigned char *D = af_convex_problem_masks(a.p);
    cr_assert_not_null(D);
    for (size_t g = 0; g < 2; g++)
        for (size_t t = 0; t < 4; t++)
            for (size_t s = 0; s < 4; s++) {
                double v = 0;
                for (size_t k = 0; k < 3; k++)
                    for (size_t l = 0; l < 3; l++)
                        v += a.X[t * 3 + k] * a.H[g * 9 + k * 3 + l] * a.X[s * 3 + l];
                cr_assert_eq(D[(g * 5 + 0) * 16 + t * 4 + s], v >= 0);
            }
    unmake(&a);
    unmake(&b);
    unmake(&c);
}

Test(convex, invalid_arguments)
{
    double X[2 * 3 * 2] = {0}, H[4] = {1, 0, 0, 1}, Y[6] = {0.5, 0.5, 0.2, 0.9, 1, 0};
    af_convex_problem *p = NULL;
    af_convex_shape sh = {AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, 0, 3, 2, 2, 1, AF_CONVEX_ATTENTION, 0, 0, 0};
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL);
    cr_assert_null(p);
    sh.N = 2;
    sh.loss = AF_CONVEX_CE;
    sh.c = 1;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL);
    sh.c = 2;
    sh.kind = AF_CONVEX_GATED;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, NULL), AF_EINVAL);
    X[3] = NAN;
    sh.kind = AF_CONVEX_LINEAR;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EDOM);
    X[3] = 0.5;
    sh.N = 1;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_SUCCESS);
    /* solver refuses before targets, and with beta <= 0 */
    af_convex_solver *s = af_convex_solver_alloc(p);
    af_convex_options opt = af_convex_options_default();
    cr_assert_eq(af_convex_solver_set(s, &opt, NULL), AF_EINVAL);
    cr_assert_eq(af_convex_problem_set_targets(p, Y), AF_EINVAL, "rows 2 and 3 do not sum to 1");
    double Yok[6] = {0.5, 0.5, 0, 1, 1, 0};
    cr_assert_eq(af_convex_problem_set_targets(p, Yok), AF_SUCCESS);
    opt.beta = 0;
    cr_assert_eq(af_convex_solver_set(s, &opt, NULL), AF_EINVAL);
    cr_assert_eq(af_convex_solver_iterate(s), AF_EINVAL);
    opt.beta = 1;
    opt.backtrack = 1;
    cr_assert_eq(af_convex_solver_set(s, &opt, NULL), AF_EINVAL);
    af_convex_solver_free(s);
    af_convex_kind k;
    af_convex_loss l;
    cr_assert_eq(af_convex_kind_from_name("relu", &k), AF_EINVAL);
    cr_assert_eq(af_convex_loss_from_name("hinge", &l), AF_EINVAL);
    cr_assert_eq(af_convex_kind_from_name("gated", &k), AF_SUCCESS);
    cr_assert_eq(k, AF_CONVEX_GATED);
    size_t gate_of[1] = {1};
    double W1[4] = {0}, W2[4] = {0}, F[6];
    cr_assert_eq(af_convex_heads_predict(p, 1, W1, W2, gate_of, F), AF_EINVAL, "gate 1 of 1");
    af_convex_problem_free(p);
}

/* ---- the command as a user runs it ---- */

/* value of "key value" in a summary file (NAN if absent) */
static double summary_value(const char *path, const char *key)
{
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    char line[512], k[128];
    double v, res = NAN;
    while (fgets(line, sizeof line, fp))
        if (line[0] != '#' && sscanf(line, "%127s %lf", k, &v) == 2 && strcmp(k, key) == 0)
            res = v;
    fclose(fp);
    return res;
}

Test(convex, cli_convex_and_nonconvex_outputs)
{
    char dir[] = "/tmp/af_convex_XXXXXX", out[8192], args[1024], path[1200];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(args, sizeof args, "convex --samples 30 --n 5 --d 3 --classes 3 --beta 0.02 "
             "--tol 1e-9 --out %s/c --quiet", dir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "objective="), "%s", out);
    snprintf(path, sizeof path, "%s/c/summary.txt", dir);
    double obj = summary_value(path, "objective"), gap = summary_value(path, "gap");
    double rank = summary_value(path, "rank"), hobj = summary_value(path, "head_objective");
    cr_assert(isfinite(obj) && obj > 0);
    cr_assert_leq(gap, 1e-9);
    cr_assert_geq(rank, 1);
    cr_assert_float_eq(hobj, obj, 1e-8 * obj, "heads written reproduce the objective");
    snprintf(path, sizeof path, "%s/c/iterations.dat", dir);
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp);
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, fp))
        found |= strncmp(line, "# columns: iter seconds objective gap", 37) == 0;
    fclose(fp);
    cr_assert(found, "iterations.dat names its columns");
    /* the nonconvex baseline on the same data can not beat the certified optimum */
    snprintf(args, sizeof args, "convex --samples 30 --n 5 --d 3 --classes 3 --beta 0.02 "
             "--nonconvex --heads 2 --steps 200 --out %s/n --quiet", dir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    snprintf(path, sizeof path, "%s/n/summary.txt", dir);
    double nobj = summary_value(path, "objective");
    cr_assert_geq(nobj, obj * (1 - 1e-9), "nonconvex %.15g below the optimum %.15g", nobj, obj);
    /* bad input: exit 1, one 'attnflow:' line, no files */
    snprintf(args, sizeof args, "convex --beta -1 --out %s/bad", dir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 1, "%s", out);
    cr_assert_eq(strncmp(out, "attnflow: ", 10), 0, "%s", out);
    snprintf(path, sizeof path, "%s/bad/summary.txt", dir);
    cr_assert_eq(access(path, F_OK), -1);
    snprintf(args, sizeof args, "convex --kind relu --out %s/bad", dir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 1, "%s", out);
    snprintf(args, sizeof args, "convex --bogus");
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 2, "%s", out);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Y = 0: Z = 0 fits exactly, P = D = 0; the relative gap must read 0
 * (not 0/0) and the solver stop at once. */
Test(convex, exact_fit_has_zero_gap)
{
    fixture f = make(AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, 5, 4, 2, 2, 1, 7, 0.1);
    double Y0[5 * 4 * 2] = {0}, Z[f.zs];
    cr_assert_eq(af_convex_problem_set_targets(f.p, Y0), AF_SUCCESS);
    memset(Z, 0, sizeof Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = 1e-3;
    af_convex_state st;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(st.iter, 0);
    cr_assert_eq(st.objective, 0.0);
    cr_assert_eq(st.rel_gap, 0.0);
    cr_assert_eq(st.grad_ratio, 0.0);
    unmake(&f);
}

/* Optimality checked independently of the dual gap (support/convex_kkt.c). */
static void kkt_case(af_convex_kind kind, af_convex_loss loss)
{
    fixture f = make(kind, loss, 30, 5, 3, 3, 2, 91, 0.2);
    double Z[f.zs], beta = 5e-3;
    memset(Z, 0, sizeof Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = beta;
    opt.tol = 1e-12;
    af_convex_state st;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
    fx_kkt_result k = fx_convex_kkt(f.p, Z, beta);
    cr_assert_geq(k.heads, 1);
    cr_assert_leq(k.align_err, 1e-4 * beta, "|A^T G B + beta I| = %.3g", k.align_err);
    cr_assert_leq(k.w_norm, 1 + 1e-6, "|W|_2 = %.10g", k.w_norm);
    unmake(&f);
}

Test(convex, kkt_linear_ce) { kkt_case(AF_CONVEX_LINEAR, AF_CONVEX_CE); }
Test(convex, kkt_gated_squared) { kkt_case(AF_CONVEX_GATED, AF_CONVEX_SQUARED); }

/* A huge cluster width overflows the teacher's outputs: the error must say
 * "not finite" (it used to claim the outputs were all zero). */
Test(convex, synthetic_targets_not_finite)
{
    const size_t N = 3, n = 4, d = 3, c = 2;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    af_convex_synth_params sp = af_convex_synth_params_default();
    sp.width = 1e200;
    double X[N * n * d], Y[N * n * c];
    cr_assert_eq(af_convex_synth_tokens(&sp, N, n, d, rng, X, NULL), AF_SUCCESS);
    for (size_t q = 0; q < N * n * d; q++)
        cr_assert(isfinite(X[q]));
    af_convex_problem *p = NULL;
    af_convex_shape sh = {AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, N, n, d, c, 1, AF_CONVEX_ATTENTION, 0, 0, 0};
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, NULL), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(af_convex_synth_targets(p, &sp, rng, Y), AF_ENUMERIC);
    cr_assert_not_null(strstr(af_last_error(), "not finite"), "%s", af_last_error());
    af_convex_problem_free(p);
    gsl_rng_free(rng);
}

/* docs/cli.md exit codes: conflicting options are usage errors (2), a bad value
 * is bad input (1); one 'attnflow:' line, no output directory content. */
Test(convex, cli_exit_codes)
{
    char dir[] = "/tmp/af_convex_XXXXXX", out[4096], args[1024], path[1200];
    cr_assert_not_null(mkdtemp(dir));
    struct { const char *opts; int code; const char *msg; } cases[] = {
        {"--heads 3", 2, "only with --nonconvex"},
        {"--steps 10", 2, "only with --nonconvex"},
        {"--task pointclouds --width 0.5", 2, "synthetic data only"},
        {"--task pointclouds --d 4", 2, "--task pointclouds"},
        {"--width 1e200 --samples 5 --n 3", 1, "not finite"},
        {"--grow 0.5", 1, "--grow: must be >= 1"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(args, sizeof args, "convex --quiet %s --out %s/o", cases[k].opts, dir);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, cases[k].code, "%s: exit %d: %s", cases[k].opts, code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "%s", out);
        cr_expect_not_null(strstr(out, cases[k].msg), "%s: %s", cases[k].opts, out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        snprintf(path, sizeof path, "%s/o/summary.txt", dir);
        cr_expect_eq(access(path, F_OK), -1, "%s left %s", cases[k].opts, path);
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

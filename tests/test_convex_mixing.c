/* Convex duality beyond self-attention: MLP-Mixer, FNO (1-D and 2-D token
 * grids) and block-diagonal B-FNO heads, linear and gated. The head/Z
 * identity both ways, balanced weight decay = nuclear norm, FFTW against
 * dense circulant sums, the adjoint (dot-product test), finite-difference
 * gradients, the zero certificate, KKT at the solution, and Adam with too
 * few heads against the certified optimum. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "attnflow/convex.h"
#include "support/convex_kkt.h"

typedef struct {
    af_convex_problem *p;
    gsl_rng *rng;
    double *X, *H, *Y;
    size_t zs, T, c;
    af_convex_layout lay;
} fixture;

typedef struct {
    af_convex_mixing mixing;
    af_convex_kind kind;
    size_t n, d, c, blocks, gh, gw;
    const char *name;
} family_case;

/* the cases every property is checked on */
static const family_case cases[] = {
    {AF_CONVEX_MIXER, AF_CONVEX_LINEAR, 5, 3, 2, 0, 0, 0, "mixer linear"},
    {AF_CONVEX_MIXER, AF_CONVEX_GATED, 5, 3, 2, 0, 0, 0, "mixer gated"},
    {AF_CONVEX_FNO, AF_CONVEX_LINEAR, 6, 3, 2, 0, 0, 0, "fno 1-D linear"},
    {AF_CONVEX_FNO, AF_CONVEX_GATED, 5, 3, 2, 0, 0, 0, "fno 1-D gated"},
    {AF_CONVEX_FNO, AF_CONVEX_LINEAR, 6, 2, 3, 0, 2, 3, "fno 2-D linear"},
    {AF_CONVEX_FNO, AF_CONVEX_GATED, 12, 2, 2, 0, 3, 4, "fno 2-D gated"},
    {AF_CONVEX_FNO, AF_CONVEX_LINEAR, 5, 4, 2, 2, 0, 0, "b-fno 1-D linear"},
    {AF_CONVEX_FNO, AF_CONVEX_GATED, 4, 4, 4, 2, 2, 2, "b-fno 2-D gated"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static fixture make(const family_case *fc, af_convex_loss loss, size_t N, size_t gates,
                    unsigned long seed, double noise)
{
    fixture f = {0};
    f.rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(f.rng, seed);
    af_convex_synth_params sp = af_convex_synth_params_default();
    sp.noise = noise;
    af_convex_shape sh = {fc->kind, loss, N, fc->n, fc->d, fc->c, gates, fc->mixing, fc->blocks,
                          fc->gh, fc->gw};
    f.T = N * fc->n;
    f.c = fc->c;
    f.X = malloc(f.T * fc->d * sizeof *f.X);
    f.H = malloc(gates * af_convex_gate_size(&sh) * sizeof *f.H);
    f.Y = malloc(f.T * fc->c * sizeof *f.Y);
    cr_assert_eq(af_convex_synth_tokens(&sp, N, fc->n, fc->d, f.rng, f.X, NULL), AF_SUCCESS);
    cr_assert_eq(af_convex_synth_gate_weights(&sh, f.rng, f.H), AF_SUCCESS);
    cr_assert_eq(af_convex_problem_alloc(&f.p, &sh, f.X, f.H), AF_SUCCESS, "%s: %s", fc->name,
                 af_last_error());
    cr_assert_eq(af_convex_synth_targets(f.p, &sp, f.rng, f.Y), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(af_convex_problem_set_targets(f.p, f.Y), AF_SUCCESS, "%s", af_last_error());
    f.zs = af_convex_z_size(f.p);
    f.lay = af_convex_problem_layout(f.p);
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


static void assert_close(size_t len, const double *a, const double *b, double rel, const char *what,
                         const char *name)
{
    double scale = fx_maxabs(len, a);
    cr_assert_gt(scale, 1e-6, "%s %s: outputs vanish", name, what);
    for (size_t q = 0; q < len; q++)
        cr_assert_leq(fabs(a[q] - b[q]), rel * scale, "%s %s, entry %zu: %.17g vs %.17g", name,
                      what, q, a[q], b[q]);
}

/* ---- head form == convex form, both directions ---- */

Test(convex_mixing, head_form_equals_convex_form)
{
    for (size_t k = 0; k < NCASES; k++) {
        const family_case *fc = &cases[k];
        fixture f = make(fc, AF_CONVEX_SQUARED, 5, 3, 11 + k, 0.1);
        size_t m = 4, R = f.lay.rows, C = f.lay.cols, TC = f.T * f.c;
        double *W1 = malloc(m * R * sizeof *W1), *W2 = malloc(m * C * sizeof *W2);
        double *Z = malloc(f.zs * sizeof *Z), *F1 = malloc(TC * sizeof *F1);
        double *F2 = malloc(TC * sizeof *F2);
        size_t gate_of[4];
        for (size_t h = 0; h < m; h++)
            gate_of[h] = (h * 3 + 1) % f.lay.blocks;
        /* heads -> Z */
        fx_gaussian_fill(f.rng, m * R, 1.0, W1);
        fx_gaussian_fill(f.rng, m * C, 1.0, W2);
        cr_assert_eq(af_convex_heads_predict(f.p, m, W1, W2, gate_of, F1), AF_SUCCESS);
        cr_assert_eq(af_convex_z_from_heads(f.p, m, W1, W2, gate_of, Z), AF_SUCCESS);
        cr_assert_eq(af_convex_predict(f.p, Z, F2), AF_SUCCESS);
        assert_close(TC, F1, F2, 1e-12, "heads -> Z", fc->name);
        /* Z -> heads (balanced SVD of a generic full-rank Z) */
        fx_gaussian_fill(f.rng, f.zs, 1.0, Z);
        size_t cap = f.lay.blocks * (R < C ? R : C), mm;
        double *V1 = malloc(cap * R * sizeof *V1), *V2 = malloc(cap * C * sizeof *V2);
        size_t *go = malloc(cap * sizeof *go);
        cr_assert_eq(af_convex_heads_from_z(f.p, Z, 0, cap, &mm, V1, V2, go, NULL), AF_SUCCESS);
        cr_assert_eq(mm, cap, "%s: a generic Z has full rank in every block", fc->name);
        cr_assert_eq(af_convex_predict(f.p, Z, F1), AF_SUCCESS);
        cr_assert_eq(af_convex_heads_predict(f.p, mm, V1, V2, go, F2), AF_SUCCESS);
        assert_close(TC, F1, F2, 1e-12, "Z -> heads", fc->name);
        free(V1);
        free(V2);
        free(go);
        free(W1);
        free(W2);
        free(Z);
        free(F1);
        free(F2);
        unmake(&f);
    }
}

/* A literal formula for each family on one sample (independent of both the
 * head code and the operator): mixer f = W1 X W2; fno f[t] =
 * sum_delta X[t - delta] L-merged w1 ... written with explicit grid shifts. */
Test(convex_mixing, literal_formulas)
{
    /* mixer, one head: f[u,p] = sum_{t,k} W1[u,t] X[t,k] W2[k,p] */
    family_case mc = {AF_CONVEX_MIXER, AF_CONVEX_LINEAR, 4, 3, 2, 0, 0, 0, "mixer"};
    fixture f = make(&mc, AF_CONVEX_SQUARED, 1, 1, 5, 0);
    double W1[16], W2[6], Z[f.zs], F[8];
    fx_gaussian_fill(f.rng, 16, 1, W1);
    fx_gaussian_fill(f.rng, 6, 1, W2);
    cr_assert_eq(af_convex_z_from_heads(f.p, 1, W1, W2, NULL, Z), AF_SUCCESS);
    cr_assert_eq(af_convex_predict(f.p, Z, F), AF_SUCCESS);
    for (size_t u = 0; u < 4; u++)
        for (size_t p = 0; p < 2; p++) {
            double v = 0;
            for (size_t t = 0; t < 4; t++)
                for (size_t k = 0; k < 3; k++)
                    v += W1[u * 4 + t] * f.X[t * 3 + k] * W2[k * 2 + p];
            cr_assert_float_eq(F[u * 2 + p], v, 1e-13 * (1 + fabs(v)));
        }
    unmake(&f);
    /* fno on a 2 x 3 grid: f[(a,b)] = sum_{(e,g),k} X[(a-e, b-g), k] w1[(e,g) d + k] w2 */
    family_case fc = {AF_CONVEX_FNO, AF_CONVEX_LINEAR, 6, 2, 2, 0, 2, 3, "fno"};
    f = make(&fc, AF_CONVEX_SQUARED, 1, 1, 6, 0);
    double w1[12], w2[2], Zf[f.zs], Ff[12];
    fx_gaussian_fill(f.rng, 12, 1, w1);
    fx_gaussian_fill(f.rng, 2, 1, w2);
    cr_assert_eq(af_convex_z_from_heads(f.p, 1, w1, w2, NULL, Zf), AF_SUCCESS);
    cr_assert_eq(af_convex_predict(f.p, Zf, Ff), AF_SUCCESS);
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < 3; b++) {
            double v = 0;
            for (size_t e = 0; e < 2; e++)
                for (size_t g = 0; g < 3; g++)
                    for (size_t k = 0; k < 2; k++)
                        v += f.X[(((a + 2 - e) % 2) * 3 + (b + 3 - g) % 3) * 2 + k]
                             * w1[(e * 3 + g) * 2 + k];
            for (size_t p = 0; p < 2; p++)
                cr_assert_float_eq(Ff[(a * 3 + b) * 2 + p], v * w2[p], 1e-13 * (1 + fabs(v)));
        }
    unmake(&f);
}

/* ---- balanced weight decay = nuclear norm; random heads pay more ---- */

Test(convex_mixing, regulariser_is_balanced_weight_decay)
{
    for (size_t k = 0; k < NCASES; k++) {
        const family_case *fc = &cases[k];
        fixture f = make(fc, AF_CONVEX_SQUARED, 4, 2, 21 + k, 0.1);
        size_t R = f.lay.rows, C = f.lay.cols, zg = R * C;
        size_t cap = f.lay.blocks * (R < C ? R : C), mm;
        double *Z = malloc(f.zs * sizeof *Z), *Z2 = malloc(f.zs * sizeof *Z2);
        double *V1 = malloc(cap * R * sizeof *V1), *V2 = malloc(cap * C * sizeof *V2);
        size_t *go = malloc(cap * sizeof *go);
        fx_gaussian_fill(f.rng, f.zs, 1.0, Z);
        double nuc = 0;
        for (size_t q = 0; q < f.lay.blocks; q++) {
            double v;
            cr_assert_eq(af_nuclear_norm(R, C, Z + q * zg, &v), AF_SUCCESS);
            nuc += v;
        }
        cr_assert_eq(af_convex_heads_from_z(f.p, Z, 0, cap, &mm, V1, V2, go, NULL), AF_SUCCESS);
        double reg = 0;
        for (size_t q = 0; q < mm * R; q++)
            reg += V1[q] * V1[q];
        for (size_t q = 0; q < mm * C; q++)
            reg += V2[q] * V2[q];
        cr_assert_float_eq(0.5 * reg, nuc, 1e-12 * nuc, "%s", fc->name);
        cr_assert_eq(af_convex_z_from_heads(f.p, mm, V1, V2, go, Z2), AF_SUCCESS);
        for (size_t q = 0; q < f.zs; q++)
            cr_assert_float_eq(Z2[q], Z[q], 1e-12 * fx_maxabs(f.zs, Z), "%s", fc->name);
        /* unbalanced rescaling of the same heads: same Z, larger weight decay */
        for (size_t q = 0; q < mm * R; q++)
            V1[q] *= 2;
        for (size_t q = 0; q < mm * C; q++)
            V2[q] /= 2;
        double reg2 = 0;
        for (size_t q = 0; q < mm * R; q++)
            reg2 += V1[q] * V1[q];
        for (size_t q = 0; q < mm * C; q++)
            reg2 += V2[q] * V2[q];
        cr_assert_gt(0.5 * reg2, nuc * 1.5, "%s", fc->name);
        free(Z);
        free(Z2);
        free(V1);
        free(V2);
        free(go);
        unmake(&f);
    }
}

/* ---- FFTW evaluation == dense circulant sums, forward and adjoint ---- */

Test(convex_mixing, fftw_equals_dense_circulant)
{
    for (size_t k = 2; k < NCASES; k++) { /* the fno cases */
        const family_case *fc = &cases[k];
        fixture f = make(fc, AF_CONVEX_CE, 7, 3, 31 + k, 0.2);
        size_t TC = f.T * f.c;
        double *Z = malloc(f.zs * sizeof *Z), *G1 = malloc(f.zs * sizeof *G1);
        double *G2 = malloc(f.zs * sizeof *G2), *F1 = malloc(TC * sizeof *F1);
        double *F2 = malloc(TC * sizeof *F2);
        fx_gaussian_fill(f.rng, f.zs, 0.5, Z);
        double L1, L2;
        cr_assert_eq(af_convex_problem_set_fno_engine(f.p, af_convex_fno_fftw), AF_SUCCESS);
        cr_assert_eq(af_convex_predict(f.p, Z, F1), AF_SUCCESS);
        cr_assert_eq(af_convex_gradient(f.p, Z, &L1, G1), AF_SUCCESS);
        cr_assert_eq(af_convex_problem_set_fno_engine(f.p, af_convex_fno_dense), AF_SUCCESS);
        cr_assert_eq(af_convex_predict(f.p, Z, F2), AF_SUCCESS);
        cr_assert_eq(af_convex_gradient(f.p, Z, &L2, G2), AF_SUCCESS);
        assert_close(TC, F2, F1, 1e-12, "fftw vs dense outputs", fc->name);
        assert_close(f.zs, G2, G1, 1e-12, "fftw vs dense adjoint", fc->name);
        cr_assert_float_eq(L1, L2, 1e-13 * L2);
        free(Z);
        free(G1);
        free(G2);
        free(F1);
        free(F2);
        unmake(&f);
    }
}

/* ---- adjoint == transpose: <A V, R> = T <V, A^* R / T> ----
 * With the squared loss, targets Y = -R and Z = 0 the residual is R, so
 * af_convex_gradient returns (1/T) A^* R. */
Test(convex_mixing, adjoint_dot_product_test)
{
    for (size_t k = 0; k < NCASES; k++) {
        const family_case *fc = &cases[k];
        fixture f = make(fc, AF_CONVEX_SQUARED, 6, 2, 41 + k, 0.1);
        size_t TC = f.T * f.c;
        double *V = malloc(f.zs * sizeof *V), *G = malloc(f.zs * sizeof *G);
        double *Z0 = calloc(f.zs, sizeof *Z0), *R = malloc(TC * sizeof *R);
        double *AV = malloc(TC * sizeof *AV), *mR = malloc(TC * sizeof *mR);
        for (int rep = 0; rep < 3; rep++) {
            fx_gaussian_fill(f.rng, f.zs, 1.0, V);
            fx_gaussian_fill(f.rng, TC, 1.0, R);
            for (size_t q = 0; q < TC; q++)
                mR[q] = -R[q];
            cr_assert_eq(af_convex_problem_set_targets(f.p, mR), AF_SUCCESS);
            cr_assert_eq(af_convex_gradient(f.p, Z0, NULL, G), AF_SUCCESS);
            cr_assert_eq(af_convex_predict(f.p, V, AV), AF_SUCCESS);
            double lhs = 0, rhs = 0, s1 = 0, s2 = 0;
            for (size_t q = 0; q < TC; q++) {
                lhs += AV[q] * R[q];
                s1 += fabs(AV[q] * R[q]);
            }
            for (size_t q = 0; q < f.zs; q++) {
                rhs += (double)f.T * V[q] * G[q];
                s2 += fabs((double)f.T * V[q] * G[q]);
            }
            cr_assert_leq(fabs(lhs - rhs), 1e-13 * (s1 + s2), "%s: <AV,R> %.17g vs <V,A*R> %.17g",
                          fc->name, lhs, rhs);
        }
        free(V);
        free(G);
        free(Z0);
        free(R);
        free(AV);
        free(mR);
        unmake(&f);
    }
}

/* ---- gradients (convex and head form) against central differences ---- */

Test(convex_mixing, gradients_finite_differences)
{
    af_convex_loss losses[2] = {AF_CONVEX_SQUARED, AF_CONVEX_CE};
    for (size_t k = 0; k < NCASES; k++)
        for (int li = 0; li < 2; li++) {
            const family_case *fc = &cases[k];
            fixture f = make(fc, losses[li], 4, 2, 51 + k, 0.2);
            double *Z = malloc(f.zs * sizeof *Z), *G = malloc(f.zs * sizeof *G);
            double *Vd = malloc(f.zs * sizeof *Vd), *Zp = malloc(f.zs * sizeof *Zp);
            fx_gaussian_fill(f.rng, f.zs, 0.3, Z);
            fx_gaussian_fill(f.rng, f.zs, 1.0, Vd);
            double L0, Lp, Lm, h = 1e-5, dir = 0;
            cr_assert_eq(af_convex_gradient(f.p, Z, &L0, G), AF_SUCCESS);
            for (size_t q = 0; q < f.zs; q++) {
                Zp[q] = Z[q] + h * Vd[q];
                dir += G[q] * Vd[q];
            }
            af_convex_gradient(f.p, Zp, &Lp, NULL);
            for (size_t q = 0; q < f.zs; q++)
                Zp[q] = Z[q] - h * Vd[q];
            af_convex_gradient(f.p, Zp, &Lm, NULL);
            double fd = (Lp - Lm) / (2 * h);
            cr_assert_float_eq(fd, dir, 1e-6 * (fabs(dir) + 1e-3), "%s Z: fd %.12g vs %.12g",
                               fc->name, fd, dir);
            /* head form, m = 3 heads spread over the blocks */
            size_t m = 3, R = f.lay.rows, C = f.lay.cols, np = m * (R + C), off = m * R;
            double *W = malloc(np * sizeof *W), *GW = malloc(np * sizeof *GW);
            double *VW = malloc(np * sizeof *VW), *Wp = malloc(np * sizeof *Wp);
            size_t go[3];
            for (size_t j = 0; j < m; j++)
                go[j] = j % f.lay.blocks;
            fx_gaussian_fill(f.rng, np, 0.7, W);
            fx_gaussian_fill(f.rng, np, 1.0, VW);
            double beta = 0.05, o0, op, om;
            dir = 0;
            cr_assert_eq(af_convex_heads_objective(f.p, beta, m, W, W + off, go, &o0, GW, GW + off),
                         AF_SUCCESS);
            for (size_t q = 0; q < np; q++) {
                Wp[q] = W[q] + h * VW[q];
                dir += GW[q] * VW[q];
            }
            af_convex_heads_objective(f.p, beta, m, Wp, Wp + off, go, &op, NULL, NULL);
            for (size_t q = 0; q < np; q++)
                Wp[q] = W[q] - h * VW[q];
            af_convex_heads_objective(f.p, beta, m, Wp, Wp + off, go, &om, NULL, NULL);
            fd = (op - om) / (2 * h);
            cr_assert_float_eq(fd, dir, 1e-6 * (fabs(dir) + 1e-3), "%s heads: fd %.12g vs %.12g",
                               fc->name, fd, dir);
            free(W);
            free(GW);
            free(VW);
            free(Wp);
            free(Z);
            free(G);
            free(Vd);
            free(Zp);
            unmake(&f);
        }
}

/* ---- Z = 0 is certified (zero gap) exactly when |grad L(0)|_2 <= beta ---- */

Test(convex_mixing, zero_certificate_iff_spectral_norm_below_beta)
{
    for (size_t k = 0; k < NCASES; k++) {
        const family_case *fc = &cases[k];
        fixture f = make(fc, k % 2 ? AF_CONVEX_CE : AF_CONVEX_SQUARED, 8, 2, 61 + k, 0.2);
        double *Z0 = calloc(f.zs, sizeof *Z0), *Z = calloc(f.zs, sizeof *Z);
        af_convex_certificate cert;
        cr_assert_eq(af_convex_certify(f.p, 1.0, Z0, &cert), AF_SUCCESS);
        double g0 = cert.grad_norm;
        cr_assert_gt(g0, 0);
        cr_assert_eq(af_convex_certify(f.p, g0 * 1.001, Z0, &cert), AF_SUCCESS);
        cr_assert_leq(fabs(cert.gap), 1e-14 * cert.objective, "%s: gap %.3g", fc->name, cert.gap);
        cr_assert_eq(af_convex_certify(f.p, g0 * 0.98, Z0, &cert), AF_SUCCESS);
        cr_assert_gt(cert.gap, 1e-9 * cert.objective, "%s: gap %.3g", fc->name, cert.gap);
        /* and the solver leaves 0 exactly when beta is below the threshold */
        af_convex_options opt = af_convex_options_default();
        opt.tol = 1e-9;
        af_convex_state st;
        opt.beta = g0 * 1.001;
        cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
        cr_assert_eq(st.rank, 0);
        opt.beta = g0 * 0.98;
        cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s", af_last_error());
        cr_assert_geq(st.rank, 1);
        free(Z0);
        free(Z);
        unmake(&f);
    }
}

/* ---- KKT at the solution, independently of the dual gap (support/convex_kkt.c) ---- */

static void kkt_case(const family_case *fc, af_convex_loss loss, double beta)
{
    fixture f = make(fc, loss, 30, 2, 91, 0.2);
    double *Z = calloc(f.zs, sizeof *Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = beta;
    opt.tol = 1e-12;
    opt.max_iter = 20000;
    af_convex_state st;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s: %s", fc->name, af_last_error());
    fx_kkt_result k = fx_convex_kkt(f.p, Z, beta);
    cr_assert_geq(k.heads, 1, "%s: the test needs a nonzero solution", fc->name);
    cr_assert_leq(k.align_err, 1e-4 * beta, "%s: |A^T G B + beta I| = %.3g", fc->name, k.align_err);
    cr_assert_leq(k.w_norm, 1 + 1e-6, "%s: |W|_2 = %.10g", fc->name, k.w_norm);
    free(Z);
    unmake(&f);
}

Test(convex_mixing, kkt_mixer_gated_squared) { kkt_case(&cases[1], AF_CONVEX_SQUARED, 5e-3); }
Test(convex_mixing, kkt_mixer_linear_ce) { kkt_case(&cases[0], AF_CONVEX_CE, 5e-3); }
Test(convex_mixing, kkt_fno_2d_linear_squared) { kkt_case(&cases[4], AF_CONVEX_SQUARED, 5e-3); }
Test(convex_mixing, kkt_fno_1d_gated_ce) { kkt_case(&cases[3], AF_CONVEX_CE, 5e-3); }
Test(convex_mixing, kkt_bfno_gated_squared) { kkt_case(&cases[7], AF_CONVEX_SQUARED, 5e-3); }

/* ---- B-FNO is FNO with a block-sparse Z ---- */

Test(convex_mixing, bfno_is_block_sparse_fno)
{
    family_case bc = {AF_CONVEX_FNO, AF_CONVEX_GATED, 6, 4, 2, 2, 2, 3, "b-fno"};
    family_case pc = bc;
    pc.blocks = 1;
    fixture fb = make(&bc, AF_CONVEX_SQUARED, 5, 2, 7, 0.1);
    fixture fp = make(&pc, AF_CONVEX_SQUARED, 5, 2, 7, 0.1); /* same seed: same X and gates */
    size_t n = 6, d = 4, c = 2, db = 2, cb = 1, TC = fb.T * c;
    double *Zb = malloc(fb.zs * sizeof *Zb), *Zp = calloc(fp.zs, sizeof *Zp);
    double *F1 = malloc(TC * sizeof *F1), *F2 = malloc(TC * sizeof *F2);
    fx_gaussian_fill(fb.rng, fb.zs, 1.0, Zb);
    double nb = 0, np = 0;
    for (size_t g = 0; g < 2; g++) {
        for (size_t b = 0; b < 2; b++) {
            const double *blk = Zb + (g * 2 + b) * fb.lay.rows * fb.lay.cols;
            double v;
            af_nuclear_norm(fb.lay.rows, fb.lay.cols, blk, &v);
            nb += v;
            for (size_t e = 0; e < n; e++)
                for (size_t k = 0; k < db; k++)
                    for (size_t o = 0; o < cb; o++)
                        Zp[g * n * d * c + (e * d + b * db + k) * c + b * cb + o] =
                            blk[(e * db + k) * cb + o];
        }
        double v;
        af_nuclear_norm(n * d, c, Zp + g * n * d * c, &v);
        np += v;
    }
    cr_assert_eq(af_convex_predict(fb.p, Zb, F1), AF_SUCCESS);
    cr_assert_eq(af_convex_predict(fp.p, Zp, F2), AF_SUCCESS);
    assert_close(TC, F2, F1, 1e-12, "b-fno vs block-sparse fno", "b-fno");
    /* the nuclear norm of the block-sparse Z is at most the sum over blocks
     * (equal when the blocks' row and column spaces are orthogonal, which the
     * disjoint channel and output groups make them) */
    cr_assert_float_eq(np, nb, 1e-12 * nb);
    free(Zb);
    free(Zp);
    free(F1);
    free(F2);
    unmake(&fb);
    unmake(&fp);
}

/* ---- invalid shapes ---- */

Test(convex_mixing, invalid_shapes)
{
    double X[2 * 6 * 4] = {0}, H[64] = {0};
    af_convex_problem *p = NULL;
    af_convex_shape sh = {AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, 2, 6, 4, 3, 1, AF_CONVEX_FNO, 2, 0, 0};
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL, "B = 2 does not divide c = 3");
    cr_assert(strstr(af_last_error(), "divide"), "%s", af_last_error());
    sh.c = 2;
    sh.blocks = 3;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL, "B = 3 does not divide d");
    sh.blocks = 2;
    sh.grid_h = 4;
    sh.grid_w = 2;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL, "4 x 2 grid != 6 tokens");
    cr_assert(strstr(af_last_error(), "grid"), "%s", af_last_error());
    sh.grid_h = 2;
    sh.grid_w = 3;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_SUCCESS, "%s", af_last_error());
    af_convex_problem_free(p);
    sh.mixing = AF_CONVEX_MIXER;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL, "blocks need fno");
    sh.mixing = (af_convex_mixing)7;
    sh.blocks = 0;
    cr_assert_eq(af_convex_problem_alloc(&p, &sh, X, H), AF_EINVAL);
    af_convex_mixing mx;
    cr_assert_eq(af_convex_mixing_from_name("fno", &mx), AF_SUCCESS);
    cr_assert_eq(mx, AF_CONVEX_FNO);
    cr_assert_eq(af_convex_mixing_from_name("relu", &mx), AF_EINVAL);
}

/* ---- Adam on the head form against the certificate ----
 * Weak duality: no head configuration goes below the dual bound D <= P*.
 * With fewer heads than rank(Z*) some block is short of heads, its Z has
 * too low a rank, and (Z* being unique: the operator is injective on these
 * data) Adam must stay strictly above P*. With enough heads in every block
 * it reaches P*. */

static void adam_case(const family_case *fc, af_convex_kind kind, size_t gates, int iters)
{
    family_case c = *fc;
    c.kind = kind;
    fixture f = make(&c, AF_CONVEX_SQUARED, 20, gates, 71, 0.2);
    double *Z = calloc(f.zs, sizeof *Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = 0.01;
    opt.tol = 1e-11;
    opt.max_iter = 20000;
    af_convex_state st;
    cr_assert_eq(af_convex_solve(f.p, &opt, Z, &st), AF_SUCCESS, "%s: %s", c.name, af_last_error());
    size_t r = st.rank;
    cr_assert_geq(r, 2, "%s: the test needs rank(Z*) >= 2 (got %zu)", c.name, r);
    /* enough heads: every block gets max rank + 1 (round robin h mod blocks) */
    size_t ms[2] = {r - 1, f.lay.blocks * (r + 1)};
    double final[2];
    af_convex_adam_options ao = af_convex_adam_options_default();
    ao.beta = opt.beta;
    ao.lr = 0.02;
    for (int k = 0; k < 2; k++) {
        af_convex_adam *a = af_convex_adam_alloc(f.p, ms[k]);
        cr_assert_not_null(a);
        gsl_rng_set(f.rng, 5);
        cr_assert_eq(af_convex_adam_set(a, &ao, f.rng), AF_SUCCESS);
        double obj = 0;
        for (int it = 0; it < iters; it++) {
            cr_assert_eq(af_convex_adam_iterate(a, &obj), AF_SUCCESS);
            cr_assert_geq(obj, st.dual, "%s m=%zu iteration %d: %.15g < dual %.15g", c.name, ms[k],
                          it, obj, st.dual);
        }
        cr_assert_eq(af_convex_heads_objective(f.p, opt.beta, ms[k], af_convex_adam_w1(a),
                                               af_convex_adam_w2(a), af_convex_adam_gates(a),
                                               &final[k], NULL, NULL),
                     AF_SUCCESS);
        af_convex_adam_free(a);
    }
    cr_assert_gt(final[0], st.objective * (1 + 1e-6), "%s m = r-1: %.12g vs P* %.12g", c.name,
                 final[0], st.objective);
    cr_assert_lt((final[1] - st.objective) / st.objective, 1e-4, "%s m = enough: %.12g vs P* %.12g",
                 c.name, final[1], st.objective);
    free(Z);
    unmake(&f);
}

Test(convex_mixing, adam_mixer_linear) { adam_case(&cases[0], AF_CONVEX_LINEAR, 1, 2500); }
Test(convex_mixing, adam_mixer_gated) { adam_case(&cases[1], AF_CONVEX_GATED, 2, 2500); }
/* Adam creeps here (0.8% above P* after 2500 steps, 1.5e-4 after 5000) */
Test(convex_mixing, adam_fno_1d_linear) { adam_case(&cases[2], AF_CONVEX_LINEAR, 1, 10000); }
Test(convex_mixing, adam_fno_2d_gated) { adam_case(&cases[4], AF_CONVEX_GATED, 2, 2500); }
Test(convex_mixing, adam_bfno_linear) { adam_case(&cases[6], AF_CONVEX_LINEAR, 1, 2500); }

/* ---- the CLI: features files and the new options ---- */

#include <sys/stat.h>
#include <unistd.h>
#include "support/fixtures.h"

/* A features file of N train + N test samples, n = 4 tokens on a 2 x 2
 * grid, d = 3, labels i mod 3; bad = 1: one row short, 2: a NaN, 3: a label
 * of -1, 4: no test set, 5: no size lines. */
static void features_file(const char *path, int bad)
{
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    if (bad != 5)
        fprintf(fp, "# feature_tokens: 4\n# feature_dim: 3\n# feature_grid: 2x2\n");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    for (int set = 0; set < 2; set++)
        for (int i = 0; i < 12; i++) {
            if (bad == 4 && set == 1)
                break;
            int lab = i % 3;
            fprintf(fp, "%d %d", set, bad == 3 && i == 5 ? -1 : lab);
            for (int q = 0; q < 12; q++) {
                if (bad == 1 && set == 0 && i == 7 && q == 11)
                    break;
                if (bad == 2 && set == 1 && i == 2 && q == 4)
                    fprintf(fp, " nan");
                else
                    fprintf(fp, " %.6f", (q % 3 == lab) + 0.5 * gsl_ran_gaussian(rng, 1.0));
            }
            fputc('\n', fp);
        }
    gsl_rng_free(rng);
    fclose(fp);
}

Test(convex_mixing, cli_features_and_kinds)
{
    char dir[] = "/tmp/af_cxmix_XXXXXX", out[4096], args[2048], path[1200], feat[1200];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(feat, sizeof feat, "%s/features.dat", dir);
    /* a good file: every kind runs and reports accuracies */
    features_file(feat, 0);
    const char *kinds[] = {"--kind mixer", "--kind fno", "--kind fno --gated --blocks 3",
                           "--kind fno --pool-tokens", "--kind linear",
                           "--kind mixer --nonconvex --heads 2 --steps 50"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        snprintf(args, sizeof args, "convex --quiet --task features --features %s --loss ce "
                 "--beta 0.01 --betas 0.001,0.01 %s --out %s/ok", feat, kinds[k], dir);
        cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s: %s", kinds[k], out);
        cr_assert_not_null(strstr(out, "test_acc="), "%s", out);
        snprintf(path, sizeof path, "%s/ok/summary.txt", dir);
        FILE *fp = fopen(path, "r");
        cr_assert_not_null(fp);
        char line[256];
        int seen = 0;
        while (fgets(line, sizeof line, fp))
            seen += strncmp(line, "test_accuracy ", 14) == 0 || strncmp(line, "val_accuracy ", 13) == 0;
        fclose(fp);
        cr_assert_eq(seen, 2, "%s: summary lacks the accuracies", kinds[k]);
    }
    /* the spellings from before the option renames (--data, --iters) still
     * work, each with one warning line */
    snprintf(args, sizeof args, "convex --quiet --data features --features %s --kind mixer "
             "--nonconvex --heads 2 --iters 20 --out %s/old", feat, dir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "attnflow: warning: --data"), "%s", out);
    cr_expect_not_null(strstr(out, "attnflow: warning: --iters"), "%s", out);
    cr_expect_not_null(strstr(out, "test_acc="), "%s", out);
    /* bad files: one error line, exit 1, no output */
    struct { int bad; const char *msg; } bad[] = {
        {1, "ragged rows"}, {2, "not finite"}, {3, "label"}, {4, "test"}, {5, "feature_tokens"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        features_file(feat, bad[k].bad);
        snprintf(args, sizeof args, "convex --quiet --task features --features %s --kind mixer "
                 "--out %s/bad", feat, dir);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, 1, "bad %d: exit %d: %s", bad[k].bad, code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "%s", out);
        cr_expect_not_null(strstr(out, bad[k].msg), "bad %d: %s", bad[k].bad, out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        snprintf(path, sizeof path, "%s/bad", dir);
        cr_expect_eq(access(path, F_OK), -1, "bad %d left %s", bad[k].bad, path);
    }
    /* wrong sizes for the chosen pooling / blocks; usage errors */
    features_file(feat, 0);
    struct { const char *opts; int code; const char *msg; } usage[] = {
        {"--kind fno --blocks 2", 1, "divide"},
        {"--kind mixer --pool-dim 5", 1, "pool-dim"},
        {"--kind mixer --blocks 3", 2, "only with --kind fno"},
        {"--kind linear --gated", 2, "--gated"},
        {"--kind mixer --d 4", 2, "features file sets it"},
        {"--kind fno --grid 3x3", 1, "grid"},
    };
    for (size_t k = 0; k < sizeof usage / sizeof usage[0]; k++) {
        snprintf(args, sizeof args, "convex --quiet --task features --features %s %s --out %s/bad",
                 feat, usage[k].opts, dir);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, usage[k].code, "%s: exit %d: %s", usage[k].opts, code, out);
        cr_expect_not_null(strstr(out, usage[k].msg), "%s: %s", usage[k].opts, out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
        snprintf(path, sizeof path, "%s/bad", dir);
        cr_expect_eq(access(path, F_OK), -1, "%s left %s", usage[k].opts, path);
    }
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* train --features-out is an output of the run (outputs.h): its folder is
 * made, the file appears only after a successful run, and it may not name a
 * file of the run's --out directory. */
Test(convex_mixing, cli_train_features_out_is_a_run_output)
{
    char dir[] = "/tmp/af_cxfeat_XXXXXX", out[4096], args[2048], path[1200];
    cr_assert_not_null(mkdtemp(dir));
    const char *small = "train --task pointclouds --n-train 20 --n-test 10 --n-points 8 --dim 8 "
                        "--head-dim 4 --mlp 8 --embed-hidden 8 --epochs 1 --quiet";
    snprintf(args, sizeof args, "%s --features-out %s/f/feat.dat --features-classes 1-3 --out %s/o",
             small, dir, dir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    snprintf(path, sizeof path, "%s/f/feat.dat", dir);
    af_convex_features fe;
    cr_assert_eq(af_convex_features_read(path, &fe), AF_SUCCESS, "%s", af_last_error());
    cr_expect_eq(fe.n, 8, "tokens %zu", fe.n);
    cr_expect_eq(fe.d, 8, "dim %zu", fe.d);
    cr_expect_eq(fe.classes, 3, "classes 1-3 relabelled 0-2: %zu", fe.classes);
    af_convex_features_free(&fe);
    /* the same file as the run's epochs.dat: refused before any work */
    snprintf(args, sizeof args, "%s --features-out %s/o/epochs.dat --out %s/o", small, dir, dir);
    snprintf(path, sizeof path, "%s/o/epochs.dat", dir);
    struct stat before, after;
    cr_assert_eq(stat(path, &before), 0);
    int code = fx_run_cli(AF_CLI, args, out, sizeof out);
    cr_expect_eq(code, 2, "exit %d: %s", code, out);
    cr_expect_not_null(strstr(out, "give each output its own file"), "%s", out);
    cr_assert_eq(stat(path, &after), 0);
    cr_expect_eq(before.st_ino, after.st_ino, "epochs.dat replaced");
    /* a failing run leaves neither the file nor its new folder */
    snprintf(args, sizeof args, "%s --features-out %s/g/feat.dat --features-classes 9-9 --out %s/p",
             small, dir, dir);
    code = fx_run_cli(AF_CLI, args, out, sizeof out);
    cr_expect_neq(code, 0, "%s", out);
    snprintf(path, sizeof path, "%s/g", dir);
    cr_expect_eq(access(path, F_OK), -1, "failed run left %s", path);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- the FNO regulariser in the Fourier domain ----
 * The DFT over the shift index is sqrt(n) times a unitary map on the rows of
 * Z (nd x c), so |Z|_* = |stack_l Zhat[l]|_* / sqrt(n) for the stacked
 * complex spectrum (nd x c); not the sum of the per-frequency nuclear norms.
 * Complex nuclear norms through the real embedding [[Re, -Im], [Im, Re]],
 * whose singular values are those of the complex matrix, each twice. */
Test(convex_mixing, fno_norm_is_stacked_spectrum_norm)
{
    size_t n = 6, d = 2, c = 3, R = n * d;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 17);
    double Z[R * c], Re[R * c], Im[R * c], E[4 * R * c], Eblk[4 * d * c];
    fx_gaussian_fill(rng, R * c, 1.0, Z);
    for (size_t l = 0; l < n; l++) /* Zhat[l][k][p] = sum_delta e^{-2 pi i l delta / n} Z[delta][k][p] */
        for (size_t k = 0; k < d; k++)
            for (size_t p = 0; p < c; p++) {
                double re = 0, im = 0;
                for (size_t e = 0; e < n; e++) {
                    double a = -2 * M_PI * (double)(l * e) / (double)n;
                    re += cos(a) * Z[(e * d + k) * c + p];
                    im += sin(a) * Z[(e * d + k) * c + p];
                }
                Re[(l * d + k) * c + p] = re;
                Im[(l * d + k) * c + p] = im;
            }
    double nz, ne, sum = 0;
    cr_assert_eq(af_nuclear_norm(R, c, Z, &nz), AF_SUCCESS);
    for (size_t a = 0; a < R; a++)
        for (size_t b = 0; b < c; b++) {
            E[a * 2 * c + b] = Re[a * c + b];
            E[a * 2 * c + c + b] = -Im[a * c + b];
            E[(R + a) * 2 * c + b] = Im[a * c + b];
            E[(R + a) * 2 * c + c + b] = Re[a * c + b];
        }
    cr_assert_eq(af_nuclear_norm(2 * R, 2 * c, E, &ne), AF_SUCCESS);
    cr_assert_float_eq(0.5 * ne / sqrt((double)n), nz, 1e-12 * nz);
    for (size_t l = 0; l < n; l++) {
        double v;
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < c; b++) {
                size_t q = (l * d + a) * c + b;
                Eblk[a * 2 * c + b] = Re[q];
                Eblk[a * 2 * c + c + b] = -Im[q];
                Eblk[(d + a) * 2 * c + b] = Im[q];
                Eblk[(d + a) * 2 * c + c + b] = Re[q];
            }
        cr_assert_eq(af_nuclear_norm(2 * d, 2 * c, Eblk, &v), AF_SUCCESS);
        sum += 0.5 * v;
    }
    cr_assert_gt(fabs(sum / sqrt((double)n) - nz), 1e-3 * nz,
                 "the per-frequency sum is a different regulariser (%.6g vs %.6g)",
                 sum / sqrt((double)n), nz);
    gsl_rng_free(rng);
}

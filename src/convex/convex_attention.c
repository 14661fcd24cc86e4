/* The self-attention family (docs/theory.md section 8). With G = X^T X,
 *     f = X W1 G W2 = sum_{l,p} G[l,p] X W1[:,l] W2[p,:],
 * and W1[:,l] W2[p,:] is the (l,p) block (d x c) of u v^T when u stacks the
 * columns of W1 (u[l*d+k] = W1[k,l]) and v the rows of W2 (v[p*c+o] =
 * W2[p,o]): the model is linear in Z = sum_h u_h v_h^T (d^2 x dc).
 * Gated ReLU: (D o X W1 X^T) X W2 at token t is
 *     sum_s D[t,s] (x_t^T W1 x_s) x_s^T W2 = x_t^T sum_{l,p} G_t[l,p] Z^{(l,p)},
 * G_t = sum_s D[t,s] x_s x_s^T, so each gate has its own Z_g. Both cases
 * are "rows of tokens times a feature-weighted sum of blocks"; see
 * convex_internal.h. */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <stdlib.h>
#include <string.h>

static af_status att_setup(af_convex_problem *p)
{
    size_t d = p->sh.d, c = p->sh.c;
    p->P = p->gates;
    p->zr = d * d;
    p->zc = d * c;
    p->ds = d * (d + 1) / 2;
    p->K = p->P * p->ds;
    if (p->sh.kind == AF_CONVEX_LINEAR) {
        p->R = p->sh.N;
        p->nr = p->sh.n;
    } else {
        p->R = p->T;
        p->nr = 1;
    }
    return AF_SUCCESS;
}

static size_t att_gate_size(const af_convex_shape *sh) { return sh->d * sh->d; }

static size_t att_mask_size(const af_convex_problem *p)
{
    return p->sh.kind == AF_CONVEX_GATED ? p->gates * p->T * p->sh.n : 0;
}

static void gated_features(af_convex_problem *p)
{
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d, P = p->P, K = p->K;
    memset(p->feat, 0, p->R * K * sizeof *p->feat);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        const double *X = p->X + i * n * d;
        double hx[d];
        for (size_t g = 0; g < P; g++) {
            const double *H = p->H + g * d * d;
            unsigned char *D = p->D + (g * N + i) * n * n;
            for (size_t t = 0; t < n; t++) {
                const double *xt = X + t * d;
                for (size_t l = 0; l < d; l++) { /* hx = H^T x_t, so x_t^T H x_s = hx . x_s */
                    double acc = 0;
                    for (size_t k = 0; k < d; k++)
                        acc += xt[k] * H[k * d + l];
                    hx[l] = acc;
                }
                double *f = p->feat + (i * n + t) * K + g * p->ds;
                for (size_t s = 0; s < n; s++) {
                    const double *xs = X + s * d;
                    double score = 0;
                    for (size_t l = 0; l < d; l++)
                        score += hx[l] * xs[l];
                    unsigned char on = score >= 0;
                    D[t * n + s] = on;
                    if (!on)
                        continue;
                    for (size_t l = 0, e = 0; l < d; l++)
                        for (size_t q = l; q < d; q++)
                            f[e++] += xs[l] * xs[q];
                }
            }
        }
    }
}

static af_status att_init(af_convex_problem *p)
{
    size_t d = p->sh.d;
    p->feat = calloc(p->R * p->K, sizeof *p->feat);
    p->M = malloc(p->R * p->zc * sizeof *p->M);
    p->Zp = malloc(p->P * p->ds * p->zc * sizeof *p->Zp);
    if (!p->feat || !p->M || !p->Zp)
        return af_error(AF_ENOMEM, "convex problem: out of memory (attention features)");
    if (p->sh.kind == AF_CONVEX_LINEAR) {
        for (size_t i = 0; i < p->sh.N; i++) {
            const double *Xi = p->X + i * p->sh.n * d;
            /* G_i = X_i^T X_i, its upper triangle packed row by row */
            double *f = p->feat + i * p->K;
            for (size_t t = 0; t < p->sh.n; t++)
                for (size_t l = 0, e = 0; l < d; l++)
                    for (size_t q = l; q < d; q++)
                        f[e++] += Xi[t * d + l] * Xi[t * d + q];
        }
    } else {
        gated_features(p);
    }
    return AF_SUCCESS;
}

static void att_release(af_convex_problem *p)
{
    free(p->feat);
    free(p->M);
    free(p->Zp);
}

/* ---- the operator ---- */

/* G is symmetric, so only Z^{(l,p)} + Z^{(p,l)} reaches the outputs:
 *   M = sum_{l<=p} G[l,p] S^{(l,p)},  S^{(l,p)} = Z^{(l,p)} + Z^{(p,l)} (l < p), Z^{(l,l)},
 * which halves the inner dimension of both GEMMs. Zp holds the S blocks,
 * Zp[(g ds + e(l,p)) dc + k c + o] with e the packed upper-triangle index.
 * Backward, dL/dZ^{(l,p)} = dL/dZ^{(p,l)} = dL/dS^{(l,p)}. (The antisymmetric
 * part of the blocks is invisible to the data: the operator has a null space.) */
static void to_sym(const af_convex_problem *p, const double *Z, double *Zp)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->zc;
    for (size_t g = 0; g < p->P; g++) {
        const double *Zg = Z + g * p->zg;
        for (size_t l = 0, e = 0; l < d; l++)
            for (size_t q = l; q < d; q++, e++) {
                double *row = Zp + (g * p->ds + e) * dc;
                for (size_t k = 0; k < d; k++) {
                    const double *a = Zg + (l * d + k) * dc + q * c, *b = Zg + (q * d + k) * dc + l * c;
                    for (size_t o = 0; o < c; o++)
                        row[k * c + o] = q == l ? a[o] : a[o] + b[o];
                }
            }
    }
}

static void from_sym(const af_convex_problem *p, const double *Zp, double *G)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->zc;
    for (size_t g = 0; g < p->P; g++) {
        double *Gg = G + g * p->zg;
        for (size_t l = 0, e = 0; l < d; l++)
            for (size_t q = l; q < d; q++, e++) {
                const double *row = Zp + (g * p->ds + e) * dc;
                for (size_t k = 0; k < d; k++) {
                    memcpy(Gg + (l * d + k) * dc + q * c, row + k * c, c * sizeof *G);
                    memcpy(Gg + (q * d + k) * dc + l * c, row + k * c, c * sizeof *G);
                }
            }
    }
}

static void att_forward(af_convex_problem *p, const double *Z, double *F)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->zc, nr = p->nr;
    to_sym(p, Z, p->Zp);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->R, (int)dc, (int)p->K, 1.0,
                p->feat, (int)p->K, p->Zp, (int)dc, 0.0, p->M, (int)dc);
#pragma omp parallel for schedule(static) if (p->T * p->zc > AF_CX_OMP_WORK)
    for (size_t r = 0; r < p->R; r++) {
        const double *M = p->M + r * dc;
        for (size_t t = r * nr; t < (r + 1) * nr; t++) {
            const double *x = p->X + t * d;
            double *f = F + t * c;
            for (size_t o = 0; o < c; o++)
                f[o] = 0;
            for (size_t k = 0; k < d; k++)
                for (size_t o = 0; o < c; o++)
                    f[o] += x[k] * M[k * c + o];
        }
    }
}

static void att_backward(af_convex_problem *p, const double *res, double *G)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->zc, nr = p->nr;
#pragma omp parallel for schedule(static) if (p->T * p->zc > AF_CX_OMP_WORK)
    for (size_t r = 0; r < p->R; r++) {
        double *M = p->M + r * dc;
        for (size_t q = 0; q < dc; q++)
            M[q] = 0;
        for (size_t t = r * nr; t < (r + 1) * nr; t++) {
            const double *x = p->X + t * d, *e = res + t * c;
            for (size_t k = 0; k < d; k++)
                for (size_t o = 0; o < c; o++)
                    M[k * c + o] += x[k] * e[o];
        }
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p->K, (int)dc, (int)p->R, p->w,
                p->feat, (int)p->K, p->M, (int)dc, 0.0, p->Zp, (int)dc);
    from_sym(p, p->Zp, G);
}

/* ---- losses and conjugates ---- */

/* S = mask o (X W1 X^T) (n x n) and B = X W2 (n x c) for one sample and head. */
static void head_scores(const af_convex_problem *p, size_t i, const double *W1, const double *W2,
                        size_t g, double *A, double *S, double *B)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    const double *X = p->X + i * n * d;
    cx_small_gemm(0, 0, n, d, d, 1.0, X, d, W1, d, 0.0, A, d);
    cx_small_gemm(0, 1, n, n, d, 1.0, A, d, X, d, 0.0, S, n);
    cx_apply_mask(p, g, i, n * n, S);
    cx_small_gemm(0, 0, n, c, d, 1.0, X, d, W2, c, 0.0, B, c);
}

/* F of the head form; work: n d + n^2 + n c doubles. */
static void att_head_forward(const af_convex_problem *p, size_t i, const double *W1,
                             const double *W2, size_t g, double *Fh, double *work)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    double *A = work, *S = A + n * d, *B = S + n * n;
    head_scores(p, i, W1, W2, g, A, S, B);
    cx_small_gemm(0, 0, n, c, n, 1.0, S, n, B, c, 0.0, Fh, c);
}

static void att_head_backward(const af_convex_problem *p, size_t i, const double *W1,
                              const double *W2, size_t g, const double *R, double *dW1,
                              double *dW2, double *work)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    double *A = work, *S = A + n * d, *B = S + n * n, *dS = B + n * c, *dB = dS + n * n;
    double *XtdS = dB + n * c;
    const double *X = p->X + i * n * d;
    head_scores(p, i, W1, W2, g, A, S, B);
    /* F = S B: dS = R B^T (masked), dB = S^T R */
    cx_small_gemm(0, 1, n, n, c, 1.0, R, c, B, c, 0.0, dS, n);
    cx_apply_mask(p, g, i, n * n, dS);
    cx_small_gemm(1, 0, n, c, n, 1.0, S, n, R, c, 0.0, dB, c);
    /* B = X W2: dW2 += X^T dB;  S = X W1 X^T: dW1 += X^T dS X */
    cx_small_gemm(1, 0, d, c, n, 1.0, X, d, dB, c, 1.0, dW2, c);
    cx_small_gemm(1, 0, d, n, n, 1.0, X, d, dS, n, 0.0, XtdS, n);
    cx_small_gemm(0, 0, d, d, n, 1.0, XtdS, n, X, d, 1.0, dW1, d);
}

static size_t att_head_work(const af_convex_problem *p)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    return n * d + 2 * n * n + 2 * n * c + d * n;
}

static size_t att_w1_side(const af_convex_problem *p) { return p->sh.d; }

const cx_family cx_attention = {
    "attention", att_setup, att_gate_size, att_init, att_release, att_forward, att_backward,
    att_head_forward, att_head_backward, att_head_work, att_w1_side, att_mask_size,
};

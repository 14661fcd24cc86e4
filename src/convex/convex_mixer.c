/* The MLP-Mixer family (Sahiner et al. 2022, Section 4.1). One head mixes
 * tokens with W1 (n x n) and then channels/outputs with W2 (d x c):
 *     linear  f(X) = W1 X W2,
 *     gated   f(X) = (M_g(X) o (W1 X)) W2,  M_g(X) = 1[H_g X >= 0] (n x d),
 * with H_g a fixed random n x n gate. Entry by entry
 *     f[u,p] = sum_{t,k} M[u,k] X[t,k] W1[u,t] W2[k,p],
 * so the model is linear in Z (n^2 x dc) with row t n + u = W1[u,t] and
 * column k c + p = W2[k,p]: Z = sum_h vec(W1_h^T) vec(W2_h)^T, exactly the
 * attention layout with side n instead of d.
 *
 * Evaluation. Permuting Z to Zperm (rows (t,k), columns (u,p)) turns the
 * linear operator into one GEMM over all samples, F (N x nc) = X (N x nd)
 * Zperm; the gated one into one GEMM per gate and output token u with the
 * masked tokens X o M[u,:] (built on the fly, N x nd). The adjoint is the
 * transposed product. Unlike linear attention the operator has no
 * structural null space: it is injective once the vec(X_i) span R^{nd}. */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *Zperm; /* nd x nc for one block */
    double *XM;    /* N x nd masked tokens (gated) */
} mixer_ws;

static af_status mix_setup(af_convex_problem *p)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    p->P = p->gates;
    p->zr = n * n;
    p->zc = d * c;
    return AF_SUCCESS;
}

static size_t mix_gate_size(const af_convex_shape *sh) { return sh->n * sh->n; }

static size_t mix_mask_size(const af_convex_problem *p)
{
    return p->sh.kind == AF_CONVEX_GATED ? p->gates * p->T * p->sh.d : 0;
}

static af_status mix_init(af_convex_problem *p)
{
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d;
    mixer_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return af_error(AF_ENOMEM, "convex problem: out of memory (mixer)");
    p->ext = ws;
    ws->Zperm = malloc(p->zg * sizeof *ws->Zperm);
    ws->XM = malloc(N * n * d * sizeof *ws->XM);
    if (!ws->Zperm || !ws->XM)
        return af_error(AF_ENOMEM, "convex problem: out of memory (mixer)");
    if (p->sh.kind == AF_CONVEX_GATED)
        for (size_t g = 0; g < p->gates; g++)
            for (size_t i = 0; i < N; i++) {
                const double *H = p->H + g * n * n, *X = p->X + i * n * d;
                unsigned char *D = p->D + (g * N + i) * n * d;
                for (size_t u = 0; u < n; u++)
                    for (size_t k = 0; k < d; k++) {
                        double v = 0;
                        for (size_t t = 0; t < n; t++)
                            v += H[u * n + t] * X[t * d + k];
                        D[u * d + k] = v >= 0;
                    }
            }
    return AF_SUCCESS;
}

static void mix_release(af_convex_problem *p)
{
    mixer_ws *ws = p->ext;
    if (!ws)
        return;
    free(ws->Zperm);
    free(ws->XM);
    free(ws);
    p->ext = NULL;
}

/* Zperm[(t d + k) nc + u c + q] = Z[(t n + u) dc + k c + q] (and back). */
static void permute(const af_convex_problem *p, const double *Z, double *Zperm, int back)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c, dc = d * c, nc = n * c;
    for (size_t t = 0; t < n; t++)
        for (size_t u = 0; u < n; u++)
            for (size_t k = 0; k < d; k++) {
                double *a = Zperm + (t * d + k) * nc + u * c;
                double *b = (double *)Z + (t * n + u) * dc + k * c;
                if (back)
                    memcpy(b, a, c * sizeof *a);
                else
                    memcpy(a, b, c * sizeof *a);
            }
}

/* XM[i, t d + k] = M_g[i, u, k] X[i, t, k] */
static void masked_tokens(const af_convex_problem *p, size_t g, size_t u, double *XM)
{
    size_t N = p->sh.N, n = p->sh.n, d = p->sh.d;
    for (size_t i = 0; i < N; i++) {
        const unsigned char *M = p->D + ((g * N + i) * n + u) * d;
        const double *X = p->X + i * n * d;
        double *o = XM + i * n * d;
        for (size_t t = 0; t < n; t++)
            for (size_t k = 0; k < d; k++)
                o[t * d + k] = M[k] ? X[t * d + k] : 0.0;
    }
}

static void mix_forward(af_convex_problem *p, const double *Z, double *F)
{
    mixer_ws *ws = p->ext;
    int N = (int)p->sh.N, nd = (int)(p->sh.n * p->sh.d), nc = (int)(p->sh.n * p->sh.c);
    int c = (int)p->sh.c;
    if (p->sh.kind == AF_CONVEX_LINEAR) {
        permute(p, Z, ws->Zperm, 0);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, nc, nd, 1.0, p->X, nd,
                    ws->Zperm, nc, 0.0, F, nc);
        return;
    }
    for (size_t g = 0; g < p->gates; g++) {
        permute(p, Z + g * p->zg, ws->Zperm, 0);
        for (size_t u = 0; u < p->sh.n; u++) {
            masked_tokens(p, g, u, ws->XM);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, c, nd, 1.0, ws->XM, nd,
                        ws->Zperm + u * (size_t)c, nc, g == 0 ? 0.0 : 1.0, F + u * (size_t)c, nc);
        }
    }
}

static void mix_backward(af_convex_problem *p, const double *res, double *G)
{
    mixer_ws *ws = p->ext;
    int N = (int)p->sh.N, nd = (int)(p->sh.n * p->sh.d), nc = (int)(p->sh.n * p->sh.c);
    int c = (int)p->sh.c;
    if (p->sh.kind == AF_CONVEX_LINEAR) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nd, nc, N, p->w, p->X, nd, res, nc,
                    0.0, ws->Zperm, nc);
        permute(p, G, ws->Zperm, 1);
        return;
    }
    for (size_t g = 0; g < p->gates; g++) {
        for (size_t u = 0; u < p->sh.n; u++) {
            masked_tokens(p, g, u, ws->XM);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nd, c, N, p->w, ws->XM, nd,
                        res + u * (size_t)c, nc, 0.0, ws->Zperm + u * (size_t)c, nc);
        }
        permute(p, G + g * p->zg, ws->Zperm, 1);
    }
}

/* A = W1 X (n x d), masked by gate g */
static void mix_mixed(const af_convex_problem *p, size_t i, const double *W1, size_t g, double *A)
{
    size_t n = p->sh.n, d = p->sh.d;
    cx_small_gemm(0, 0, n, d, n, 1.0, W1, n, p->X + i * n * d, d, 0.0, A, d);
    cx_apply_mask(p, g, i, n * d, A);
}

static void mix_head_forward(const af_convex_problem *p, size_t i, const double *W1,
                             const double *W2, size_t g, double *Fh, double *work)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    mix_mixed(p, i, W1, g, work);
    cx_small_gemm(0, 0, n, c, d, 1.0, work, d, W2, c, 0.0, Fh, c);
}

static void mix_head_backward(const af_convex_problem *p, size_t i, const double *W1,
                              const double *W2, size_t g, const double *R, double *dW1,
                              double *dW2, double *work)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    double *A = work, *dA = A + n * d;
    mix_mixed(p, i, W1, g, A);
    /* Fh = A W2: dW2 += A^T R, dA = R W2^T (masked); A = W1 X: dW1 += dA X^T */
    cx_small_gemm(1, 0, d, c, n, 1.0, A, d, R, c, 1.0, dW2, c);
    cx_small_gemm(0, 1, n, d, c, 1.0, R, c, W2, c, 0.0, dA, d);
    cx_apply_mask(p, g, i, n * d, dA);
    cx_small_gemm(0, 1, n, n, d, 1.0, dA, d, p->X + i * n * d, d, 1.0, dW1, n);
}

static size_t mix_head_work(const af_convex_problem *p) { return 2 * p->sh.n * p->sh.d; }
static size_t mix_w1_side(const af_convex_problem *p) { return p->sh.n; }

const cx_family cx_mixer = {
    "mixer", mix_setup, mix_gate_size, mix_init, mix_release, mix_forward, mix_backward,
    mix_head_forward, mix_head_backward, mix_head_work, mix_w1_side, mix_mask_size,
};

/* Layers of the small attention models and their exact backward passes.
 * Products go through CBLAS (OpenBLAS); the rest are plain loops. */
#include "core/af_blas.h"
#include <math.h>
#include <string.h>
#include "attnflow/nn.h"
#include "attnflow/normalize.h"
#include <time.h>

static int profile_on;
static af_nn_profile profile;

void af_nn_profile_enable(int on)
{
    profile_on = on;
    profile = (af_nn_profile){0, 0};
}

af_nn_profile af_nn_profile_get(void) { return profile; }

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every product of the layers goes through here, so the profile sees them all. */
static void nn_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                     int m, int n, int k, double alpha, const double *a, int lda,
                     const double *b, int ldb, double beta, double *c, int ldc)
{
    if (!profile_on) {
        cblas_dgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    double t0 = seconds_now();
    cblas_dgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    profile.gemm_seconds += seconds_now() - t0;
    profile.gemm_calls++;
}

void af_nn_linear_forward(size_t rows, size_t in, size_t out, const double *X,
                          const double *W, const double *b, double *Y)
{
    nn_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)out, (int)in, 1.0,
                X, (int)in, W, (int)out, 0.0, Y, (int)out);
    if (b)
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < out; k++)
                Y[r * out + k] += b[k];
}

void af_nn_linear_backward(size_t rows, size_t in, size_t out, const double *X,
                           const double *W, const double *dY, double *dX, double *dW,
                           double *db)
{
    if (dX)
        nn_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)in, (int)out, 1.0,
                    dY, (int)out, W, (int)out, 1.0, dX, (int)in);
    if (dW)
        nn_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)in, (int)out, (int)rows, 1.0,
                    X, (int)in, dY, (int)out, 1.0, dW, (int)out);
    if (db)
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < out; k++)
                db[k] += dY[r * out + k];
}

void af_nn_layernorm_forward(size_t rows, size_t d, const double *X, const double *gamma,
                             const double *beta, double *Y, double *mean, double *rstd)
{
    for (size_t r = 0; r < rows; r++) {
        const double *x = X + r * d;
        double mu = 0, var = 0;
        for (size_t k = 0; k < d; k++)
            mu += x[k];
        mu /= (double)d;
        for (size_t k = 0; k < d; k++)
            var += (x[k] - mu) * (x[k] - mu);
        var /= (double)d;
        double rs = 1.0 / sqrt(var + AF_NN_LN_EPS);
        mean[r] = mu;
        rstd[r] = rs;
        for (size_t k = 0; k < d; k++)
            Y[r * d + k] = gamma[k] * (x[k] - mu) * rs + beta[k];
    }
}

void af_nn_layernorm_backward(size_t rows, size_t d, const double *X, const double *gamma,
                              const double *mean, const double *rstd, const double *dY,
                              double *dX, double *dgamma, double *dbeta)
{
    for (size_t r = 0; r < rows; r++) {
        const double *x = X + r * d, *dy = dY + r * d;
        double mu = mean[r], rs = rstd[r];
        /* With xhat = (x - mu) rs and g = dy * gamma:
         * dx = rs (g - mean(g) - xhat mean(g xhat)). */
        double sg = 0, sgx = 0;
        for (size_t k = 0; k < d; k++) {
            double xh = (x[k] - mu) * rs, g = dy[k] * gamma[k];
            sg += g;
            sgx += g * xh;
            if (dgamma)
                dgamma[k] += dy[k] * xh;
            if (dbeta)
                dbeta[k] += dy[k];
        }
        sg /= (double)d;
        sgx /= (double)d;
        if (dX)
            for (size_t k = 0; k < d; k++) {
                double xh = (x[k] - mu) * rs;
                dX[r * d + k] += rs * (dy[k] * gamma[k] - sg - xh * sgx);
            }
    }
}

void af_nn_relu_forward(size_t n, const double *X, double *Y)
{
    for (size_t k = 0; k < n; k++)
        Y[k] = X[k] > 0 ? X[k] : 0.0;
}

void af_nn_relu_backward(size_t n, const double *X, const double *dY, double *dX)
{
    for (size_t k = 0; k < n; k++)
        if (X[k] > 0)
            dX[k] += dY[k];
}

/* Row normalisation in log space: L <- L - LSE_row(L), and P = the
 * library's SoftMax of the row (af_softmax), so that one normalisation is
 * af_softmax bit for bit (the Sinkformers convention, tested). */
static void norm_rows_exp(size_t n, double *L, double *P)
{
    for (size_t i = 0; i < n; i++) {
        double *l = L + i * n, *p = P + i * n;
        af_softmax(1, n, l, p); /* finite scores: cannot fail */
        double mx = l[0];
        for (size_t j = 1; j < n; j++)
            mx = l[j] > mx ? l[j] : mx;
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += exp(l[j] - mx);
        double lse = mx + log(s);
        for (size_t j = 0; j < n; j++)
            l[j] -= lse;
    }
}

/* Later normalisations reuse the previous matrix Pin = exp(L): dividing a
 * row (column) of Pin by its sum s is exp(L - log s), so the log-domain
 * potentials advance by log s with no new exponentials. A sum below
 * TINY_SUM (entries underflowed) is recomputed from L by a max-shifted
 * log-sum-exp, as in the pure log-domain iteration. */
#define TINY_SUM 1e-200

static void renorm_rows(size_t n, double *L, const double *Pin, double *P)
{
    for (size_t i = 0; i < n; i++) {
        double *l = L + i * n, *p = P + i * n;
        const double *q = Pin + i * n;
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += q[j];
        if (s > TINY_SUM) {
            double ls = log(s);
            for (size_t j = 0; j < n; j++) {
                p[j] = q[j] / s;
                l[j] -= ls;
            }
        } else {
            double mx = l[0];
            for (size_t j = 1; j < n; j++)
                mx = l[j] > mx ? l[j] : mx;
            double t = 0;
            for (size_t j = 0; j < n; j++)
                t += exp(l[j] - mx);
            double lse = mx + log(t);
            for (size_t j = 0; j < n; j++) {
                l[j] -= lse;
                p[j] = exp(l[j]);
            }
        }
    }
}

static void renorm_cols(size_t n, double *L, const double *Pin, double *P, double *work)
{
    double *s = work, *ls = work + n; /* column sums and log-sums */
    memset(s, 0, n * sizeof *s);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            s[j] += Pin[i * n + j];
    for (size_t j = 0; j < n; j++) {
        if (s[j] > TINY_SUM) {
            ls[j] = log(s[j]);
            continue;
        }
        /* underflowed column: exact log-sum-exp from L */
        double mx = L[j];
        for (size_t i = 1; i < n; i++)
            mx = L[i * n + j] > mx ? L[i * n + j] : mx;
        double t = 0;
        for (size_t i = 0; i < n; i++)
            t += exp(L[i * n + j] - mx);
        ls[j] = mx + log(t);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            size_t k = i * n + j;
            L[k] -= ls[j];
            P[k] = s[j] > TINY_SUM ? Pin[k] / s[j] : exp(L[k]);
        }
}

void af_nn_sinkhorn_forward(size_t n, size_t n_it, double *S, double *hist, double *A,
                            double *work)
{
    /* normalisation k+1: odd ones (k even) act on rows */
    norm_rows_exp(n, S, hist);
    for (size_t k = 1; k < n_it; k++) {
        const double *prev = hist + (k - 1) * n * n;
        if (k % 2 == 0)
            renorm_rows(n, S, prev, hist + k * n * n);
        else
            renorm_cols(n, S, prev, hist + k * n * n, work);
    }
    if (A && n_it > 0)
        memcpy(A, hist + (n_it - 1) * n * n, n * n * sizeof *A);
}

void af_nn_sinkhorn_backward(size_t n, size_t n_it, const double *hist, const double *dA,
                             double *dS, double *work)
{
    double *G = work;
    const double *A = hist + (n_it - 1) * n * n;
    /* A = exp(L_last): dL = dA * A. */
    for (size_t k = 0; k < n * n; k++)
        G[k] = dA[k] * A[k];
    for (size_t k = n_it; k-- > 0;) {
        const double *P = hist + k * n * n;
        if (k % 2 == 0) {
            for (size_t i = 0; i < n; i++) {
                double r = 0;
                for (size_t j = 0; j < n; j++)
                    r += G[i * n + j];
                for (size_t j = 0; j < n; j++)
                    G[i * n + j] -= P[i * n + j] * r;
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                double c = 0;
                for (size_t i = 0; i < n; i++)
                    c += G[i * n + j];
                for (size_t i = 0; i < n; i++)
                    G[i * n + j] -= P[i * n + j] * c;
            }
        }
    }
    for (size_t k = 0; k < n * n; k++)
        dS[k] += G[k];
}

void af_nn_attention_forward(size_t n, size_t dh, double scale, size_t n_it,
                             const double *Q, size_t ldq, const double *K, size_t ldk,
                             const double *V, size_t ldv, double *S, double *hist,
                             double *O, size_t ldo)
{
    nn_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)dh, scale, Q,
                (int)ldq, K, (int)ldk, 0.0, S, (int)n);
    af_nn_sinkhorn_forward(n, n_it, S, hist, NULL, S + n * n);
    const double *A = hist + (n_it - 1) * n * n;
    nn_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dh, (int)n, 1.0, A,
                (int)n, V, (int)ldv, 0.0, O, (int)ldo);
}

void af_nn_attention_backward(size_t n, size_t dh, double scale, size_t n_it,
                              const double *Q, size_t ldq, const double *K, size_t ldk,
                              const double *V, size_t ldv, const double *hist,
                              const double *dO, size_t ldo, double *dQ, double *dK,
                              double *dV, double *work)
{
    double *dA = work, *dS = work + n * n, *G = work + 2 * n * n;
    const double *A = hist + (n_it - 1) * n * n;
    nn_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)dh, 1.0, dO,
                (int)ldo, V, (int)ldv, 0.0, dA, (int)n);
    if (dV)
        nn_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)dh, (int)n, 1.0, A,
                    (int)n, dO, (int)ldo, 1.0, dV, (int)ldv);
    memset(dS, 0, n * n * sizeof *dS);
    af_nn_sinkhorn_backward(n, n_it, hist, dA, dS, G);
    if (dQ)
        nn_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dh, (int)n, scale,
                    dS, (int)n, K, (int)ldk, 1.0, dQ, (int)ldq);
    if (dK)
        nn_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)dh, (int)n, scale,
                    dS, (int)n, Q, (int)ldq, 1.0, dK, (int)ldk);
}

double af_nn_xent(size_t rows, size_t classes, const double *logits, const int *labels,
                  double *probs, double *dlogits, double scale, size_t *correct)
{
    double loss = 0;
    size_t ok = 0;
    for (size_t r = 0; r < rows; r++) {
        const double *z = logits + r * classes;
        double *p = probs + r * classes;
        size_t arg = 0;
        for (size_t c = 1; c < classes; c++)
            if (z[c] > z[arg])
                arg = c;
        double s = 0;
        for (size_t c = 0; c < classes; c++) {
            p[c] = exp(z[c] - z[arg]);
            s += p[c];
        }
        for (size_t c = 0; c < classes; c++)
            p[c] /= s;
        size_t y = (size_t)labels[r];
        loss += z[arg] + log(s) - z[y];
        ok += arg == y;
        if (dlogits)
            for (size_t c = 0; c < classes; c++)
                dlogits[r * classes + c] += scale * (p[c] - (c == y)) / (double)rows;
    }
    if (correct)
        *correct = ok;
    return loss / (double)rows;
}

af_adam_options af_adam_options_default(void)
{
    return (af_adam_options){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
}

void af_adam_step(const af_adam_options *opt, size_t n, unsigned long t, double *param,
                  const double *grad, double *m, double *v)
{
    double bc1 = 1 - pow(opt->beta1, (double)t), bc2 = 1 - pow(opt->beta2, (double)t);
    double step = opt->lr / bc1, sbc2 = sqrt(bc2);
    for (size_t k = 0; k < n; k++) {
        m[k] = opt->beta1 * m[k] + (1 - opt->beta1) * grad[k];
        v[k] = opt->beta2 * v[k] + (1 - opt->beta2) * grad[k] * grad[k];
        param[k] -= step * m[k] / (sqrt(v[k]) / sbc2 + opt->eps);
    }
}

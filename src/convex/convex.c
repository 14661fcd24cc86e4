/* Convex duality of attention: the problem, the linear operator Z -> f, the
 * losses and their conjugates, the certificate, and the head form.
 *
 * Derivation of the Z form (linear attention). With G = X^T X,
 *     f = X W1 G W2 = sum_{l,p} G[l,p] X W1[:,l] W2[p,:],
 * and W1[:,l] W2[p,:] is the (l,p) block (d x c) of u v^T when u stacks the
 * columns of W1 (u[l*d+k] = W1[k,l]) and v the rows of W2 (v[p*c+o] =
 * W2[p,o]). The model is linear in Z = sum_h u_h v_h^T. Each rank-one term
 * has |u v^T|_* = |u||v| <= (|u|^2 + |v|^2)/2 = (|W1|^2 + |W2|^2)/2, with
 * equality iff |u| = |v|, so the triangle inequality gives
 * |Z|_* <= (1/2) sum_h (|W1_h|^2 + |W2_h|^2), attained by the balanced SVD
 * factorisation u_h = sqrt(s_h) a_h, v_h = sqrt(s_h) b_h. Minimising the
 * weight decay over all factorisations of a fixed Z therefore gives
 * beta |Z|_*, and the nonconvex training problem equals the convex one when
 * the number of heads is at least rank(Z*).
 *
 * Gated ReLU: (D o X W1 X^T) X W2 at token t is
 *     sum_s D[t,s] (x_t^T W1 x_s) x_s^T W2 = x_t^T sum_{l,p} G_t[l,p] Z^{(l,p)},
 * G_t = sum_s D[t,s] x_s x_s^T, so each gate has its own Z_g and the
 * penalty is beta sum_g |Z_g|_*. Both cases are "rows of tokens times a
 * feature-weighted sum of blocks"; see convex_internal.h. */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>

af_status af_convex_kind_from_name(const char *name, af_convex_kind *kind)
{
    if (strcmp(name, "linear") == 0)
        *kind = AF_CONVEX_LINEAR;
    else if (strcmp(name, "gated") == 0)
        *kind = AF_CONVEX_GATED;
    else
        return af_error(AF_EINVAL, "unknown attention kind '%s' (linear|gated)", name);
    return AF_SUCCESS;
}

af_status af_convex_loss_from_name(const char *name, af_convex_loss *loss)
{
    if (strcmp(name, "squared") == 0)
        *loss = AF_CONVEX_SQUARED;
    else if (strcmp(name, "ce") == 0)
        *loss = AF_CONVEX_CE;
    else
        return af_error(AF_EINVAL, "unknown loss '%s' (squared|ce)", name);
    return AF_SUCCESS;
}

/* ---- problem ---- */

void af_convex_problem_free(af_convex_problem *p)
{
    if (!p)
        return;
    free(p->X);
    free(p->Y);
    free(p->H);
    free(p->D);
    free(p->feat);
    free(p->M);
    free(p->Zp);
    free(p->F);
    free(p->res);
    free(p);
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

af_status af_convex_problem_alloc(af_convex_problem **prob, const af_convex_shape *sh,
                                  const double *X, const double *H)
{
    *prob = NULL;
    if (!sh || !X)
        return af_error(AF_EINVAL, "convex problem: shape and tokens are required");
    if (sh->N == 0 || sh->n == 0 || sh->d == 0 || sh->c == 0)
        return af_error(AF_EINVAL, "convex problem: sizes must be >= 1 (N=%zu n=%zu d=%zu c=%zu)",
                        sh->N, sh->n, sh->d, sh->c);
    if (sh->kind != AF_CONVEX_LINEAR && sh->kind != AF_CONVEX_GATED)
        return af_error(AF_EINVAL, "convex problem: unknown kind %d", (int)sh->kind);
    if (sh->loss != AF_CONVEX_SQUARED && sh->loss != AF_CONVEX_CE)
        return af_error(AF_EINVAL, "convex problem: unknown loss %d", (int)sh->loss);
    if (sh->loss == AF_CONVEX_CE && sh->c < 2)
        return af_error(AF_EINVAL, "convex problem: cross-entropy needs c >= 2 classes (got %zu)", sh->c);
    if (sh->kind == AF_CONVEX_GATED && (sh->gates == 0 || !H))
        return af_error(AF_EINVAL, "convex problem: gated attention needs gates >= 1 and gate matrices");
    size_t T = sh->N * sh->n;
    af_status st = af_check_finite("tokens", T * sh->d, X);
    if (st)
        return st;
    af_convex_problem *p = calloc(1, sizeof *p);
    if (!p)
        return af_error(AF_ENOMEM, "convex problem: out of memory");
    p->sh = *sh;
    size_t d = sh->d, c = sh->c;
    p->P = sh->kind == AF_CONVEX_GATED ? sh->gates : 1;
    p->sh.gates = p->P;
    p->d2 = d * d;
    p->dc = d * c;
    p->zg = p->d2 * p->dc;
    p->T = T;
    p->w = 1.0 / (double)T;
    p->ds = d * (d + 1) / 2;
    p->K = p->P * p->ds;
    if (sh->kind == AF_CONVEX_LINEAR) {
        p->R = sh->N;
        p->nr = sh->n;
    } else {
        p->R = T;
        p->nr = 1;
    }
    p->X = malloc(T * d * sizeof *p->X);
    p->Y = calloc(T * c, sizeof *p->Y);
    p->feat = calloc(p->R * p->K, sizeof *p->feat);
    p->M = malloc(p->R * p->dc * sizeof *p->M);
    p->Zp = malloc(p->P * p->ds * p->dc * sizeof *p->Zp);
    p->F = malloc(T * c * sizeof *p->F);
    p->res = malloc(T * c * sizeof *p->res);
    if (sh->kind == AF_CONVEX_GATED) {
        p->H = malloc(p->P * d * d * sizeof *p->H);
        p->D = malloc(p->P * T * sh->n * sizeof *p->D);
    }
    if (!p->X || !p->Y || !p->feat || !p->M || !p->Zp || !p->F || !p->res
        || (sh->kind == AF_CONVEX_GATED && (!p->H || !p->D))) {
        af_convex_problem_free(p);
        return af_error(AF_ENOMEM, "convex problem: out of memory (N=%zu n=%zu d=%zu c=%zu)",
                        sh->N, sh->n, d, c);
    }
    memcpy(p->X, X, T * d * sizeof *p->X);
    if (sh->kind == AF_CONVEX_LINEAR) {
        for (size_t i = 0; i < sh->N; i++) {
            const double *Xi = X + i * sh->n * d;
            /* G_i = X_i^T X_i, its upper triangle packed row by row */
            double *f = p->feat + i * p->K;
            for (size_t t = 0; t < sh->n; t++)
                for (size_t l = 0, e = 0; l < d; l++)
                    for (size_t q = l; q < d; q++)
                        f[e++] += Xi[t * d + l] * Xi[t * d + q];
        }
    } else {
        st = af_check_finite("gate matrices", p->P * d * d, H);
        if (st) {
            af_convex_problem_free(p);
            return st;
        }
        memcpy(p->H, H, p->P * d * d * sizeof *p->H);
        gated_features(p);
    }
    *prob = p;
    return AF_SUCCESS;
}

af_status af_convex_problem_set_targets(af_convex_problem *p, const double *Y)
{
    size_t T = p->T, c = p->sh.c;
    af_status st = af_check_finite("targets", T * c, Y);
    if (st)
        return st;
    if (p->sh.loss == AF_CONVEX_CE)
        for (size_t t = 0; t < T; t++) {
            double sum = 0;
            for (size_t o = 0; o < c; o++) {
                if (Y[t * c + o] < 0)
                    return af_error(AF_EINVAL, "cross-entropy targets: token %zu has a negative "
                                    "probability (%g)", t, Y[t * c + o]);
                sum += Y[t * c + o];
            }
            if (fabs(sum - 1) > 1e-9)
                return af_error(AF_EINVAL, "cross-entropy targets: token %zu sums to %.17g, not 1",
                                t, sum);
        }
    memcpy(p->Y, Y, T * c * sizeof *p->Y);
    p->has_targets = 1;
    return AF_SUCCESS;
}

af_convex_shape af_convex_problem_shape(const af_convex_problem *p) { return p->sh; }
size_t af_convex_z_size(const af_convex_problem *p) { return p->P * p->zg; }
const double *af_convex_problem_tokens(const af_convex_problem *p) { return p->X; }
const double *af_convex_problem_targets(const af_convex_problem *p) { return p->Y; }
const unsigned char *af_convex_problem_masks(const af_convex_problem *p) { return p->D; }

/* ---- the operator ---- */

/* G is symmetric, so only Z^{(l,p)} + Z^{(p,l)} reaches the outputs:
 *   M = sum_{l<=p} G[l,p] S^{(l,p)},  S^{(l,p)} = Z^{(l,p)} + Z^{(p,l)} (l < p), Z^{(l,l)},
 * which halves the inner dimension of both GEMMs. Zp holds the S blocks,
 * Zp[(g ds + e(l,p)) dc + k c + o] with e the packed upper-triangle index.
 * Backward, dL/dZ^{(l,p)} = dL/dZ^{(p,l)} = dL/dS^{(l,p)}. (The antisymmetric
 * part of the blocks is invisible to the data: the operator has a null space.) */
static void to_sym(const af_convex_problem *p, const double *Z, double *Zp)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->dc;
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
    size_t d = p->sh.d, c = p->sh.c, dc = p->dc;
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

void cx_forward(af_convex_problem *p, const double *Z, double *F)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->dc, nr = p->nr;
    to_sym(p, Z, p->Zp);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->R, (int)dc, (int)p->K, 1.0,
                p->feat, (int)p->K, p->Zp, (int)dc, 0.0, p->M, (int)dc);
#pragma omp parallel for schedule(static) if (p->T * p->dc > AF_CX_OMP_WORK)
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

void cx_backward(af_convex_problem *p, const double *res, double *G)
{
    size_t d = p->sh.d, c = p->sh.c, dc = p->dc, nr = p->nr;
#pragma omp parallel for schedule(static) if (p->T * p->dc > AF_CX_OMP_WORK)
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

double cx_loss(const af_convex_problem *p, const double *F, double *res)
{
    size_t T = p->T, c = p->sh.c;
    double total = 0;
    if (p->sh.loss == AF_CONVEX_SQUARED) {
#pragma omp parallel for reduction(+ : total) schedule(static) if (T * c > AF_CX_OMP_WORK / 4)
        for (size_t t = 0; t < T; t++) {
            double acc = 0;
            for (size_t o = 0; o < c; o++) {
                double e = F[t * c + o] - p->Y[t * c + o];
                acc += e * e;
                if (res)
                    res[t * c + o] = e;
            }
            total += 0.5 * acc;
        }
    } else {
#pragma omp parallel for reduction(+ : total) schedule(static) if (T * c > AF_CX_OMP_WORK / 4)
        for (size_t t = 0; t < T; t++) {
            const double *f = F + t * c, *y = p->Y + t * c;
            double mx = f[0];
            for (size_t o = 1; o < c; o++)
                mx = f[o] > mx ? f[o] : mx;
            double z = 0, yf = 0;
            for (size_t o = 0; o < c; o++) {
                z += exp(f[o] - mx);
                yf += y[o] * f[o];
            }
            total += mx + log(z) - yf;
            if (res)
                for (size_t o = 0; o < c; o++)
                    res[t * c + o] = exp(f[o] - mx) / z - y[o];
        }
    }
    return p->w * total;
}

/* h*(theta) at theta = s res: squared 1/2|theta|^2 + <theta, y>; ce the
 * negative entropy of q = theta + y = s p + (1 - s) y, a probability vector. */
double cx_dual(const af_convex_problem *p, const double *F, const double *res, double s)
{
    (void)F;
    size_t T = p->T, c = p->sh.c;
    double total = 0;
    if (p->sh.loss == AF_CONVEX_SQUARED) {
#pragma omp parallel for reduction(+ : total) schedule(static) if (T * c > AF_CX_OMP_WORK / 4)
        for (size_t t = 0; t < T; t++)
            for (size_t o = 0; o < c; o++) {
                double th = s * res[t * c + o];
                total += 0.5 * th * th + th * p->Y[t * c + o];
            }
    } else {
#pragma omp parallel for reduction(+ : total) schedule(static) if (T * c > AF_CX_OMP_WORK / 4)
        for (size_t t = 0; t < T; t++)
            for (size_t o = 0; o < c; o++) {
                double q = s * res[t * c + o] + p->Y[t * c + o];
                if (q > 0)
                    total += q * log(q);
            }
    }
    return -p->w * total;
}

/* x - log(1 + x)-free pieces: e^u - 1 - u without cancellation */
static double expm1_minus(double u)
{
    if (fabs(u) < 1e-3)
        return u * u * (0.5 + u * (1.0 / 6 + u * (1.0 / 24 + u / 120)));
    return expm1(u) - u;
}

double cx_bregman(const af_convex_problem *p, const double *F0, const double *res0,
                  const double *F1)
{
    size_t T = p->T, c = p->sh.c;
    double total = 0;
    if (p->sh.loss == AF_CONVEX_SQUARED) {
#pragma omp parallel for reduction(+ : total) schedule(static) if (T * c > AF_CX_OMP_WORK / 4)
        for (size_t t = 0; t < T * c; t++) {
            double e = F1[t] - F0[t];
            total += 0.5 * e * e;
        }
    } else {
        /* lse(f1) - lse(f0) - <p, f1 - f0> = log sum_o p_o e^{u_o} with
         * u = delta - <p, delta>; as sum p_o u_o = 0 this is
         * log1p(sum_o p_o (e^{u_o} - 1 - u_o)), accurate for tiny delta */
#pragma omp parallel for reduction(+ : total) schedule(static) if (T * c > AF_CX_OMP_WORK / 4)
        for (size_t t = 0; t < T; t++) {
            const double *r = res0 + t * c, *y = p->Y + t * c;
            double mean = 0;
            for (size_t o = 0; o < c; o++)
                mean += (r[o] + y[o]) * (F1[t * c + o] - F0[t * c + o]);
            double acc = 0;
            for (size_t o = 0; o < c; o++)
                acc += (r[o] + y[o]) * expm1_minus(F1[t * c + o] - F0[t * c + o] - mean);
            total += log1p(acc);
        }
    }
    return p->w * total;
}

double cx_relative_gap(double gap, double objective)
{
    /* P = 0 happens for an exact fit at Z = 0 (then the gap is 0 too) */
    if (fabs(objective) > 0)
        return gap / fabs(objective);
    return gap <= 0 ? 0.0 : INFINITY;
}

static af_status need_targets(const af_convex_problem *p)
{
    if (!p->has_targets)
        return af_error(AF_EINVAL, "convex problem: targets not set");
    return AF_SUCCESS;
}

af_status af_convex_predict(af_convex_problem *p, const double *Z, double *F)
{
    af_status st = af_check_finite("Z", p->P * p->zg, Z);
    if (st)
        return st;
    cx_forward(p, Z, F);
    return AF_SUCCESS;
}

af_status af_convex_loss_value(const af_convex_problem *p, const double *F, double *loss)
{
    af_status st = need_targets(p);
    if (st)
        return st;
    *loss = cx_loss(p, F, NULL);
    return isfinite(*loss) ? AF_SUCCESS : af_error(AF_ENUMERIC, "convex loss is not finite");
}

af_status af_convex_gradient(af_convex_problem *p, const double *Z, double *loss, double *G)
{
    af_status st = need_targets(p);
    if (!st)
        st = af_check_finite("Z", p->P * p->zg, Z);
    if (st)
        return st;
    cx_forward(p, Z, p->F);
    double v = cx_loss(p, p->F, p->res);
    if (loss)
        *loss = v;
    if (G)
        cx_backward(p, p->res, G);
    return isfinite(v) ? AF_SUCCESS : af_error(AF_ENUMERIC, "convex loss is not finite");
}

/* ---- certificate ---- */

af_status af_convex_certify(af_convex_problem *p, double beta, const double *Z,
                            af_convex_certificate *cert)
{
    if (!(beta > 0) || !isfinite(beta))
        return af_error(AF_EINVAL, "certificate: beta must be > 0 (got %g)", beta);
    size_t zs = p->P * p->zg;
    double *G = malloc(zs * sizeof *G);
    cx_svd *s = cx_svd_alloc(p->d2, p->dc, AF_CONVEX_SVD_LAPACK);
    af_status st = (!G || !s) ? af_error(AF_ENOMEM, "certificate: out of memory") : AF_SUCCESS;
    double loss = 0, nuc = 0, gn = 0;
    if (!st)
        st = af_convex_gradient(p, Z, &loss, G);
    for (size_t g = 0; !st && g < p->P; g++) {
        double v;
        st = cx_specnorm(s, G + g * p->zg, &v);
        gn = v > gn ? v : gn;
        if (!st)
            st = cx_svd_run(s, Z + g * p->zg, 0);
        for (size_t j = 0; !st && j < s->k; j++)
            nuc += s->sv[j];
    }
    if (!st) {
        double sc = gn > beta ? beta / gn : 1.0;
        cert->loss = loss;
        cert->penalty = beta * nuc;
        cert->objective = loss + beta * nuc;
        cert->dual = cx_dual(p, p->F, p->res, sc);
        cert->gap = cert->objective - cert->dual;
        cert->rel_gap = cx_relative_gap(cert->gap, cert->objective);
        cert->grad_norm = gn;
        cert->grad_ratio = gn / beta;
    }
    free(G);
    cx_svd_free(s);
    return st;
}

/* ---- head form ---- */

static af_status check_heads(const af_convex_problem *p, size_t m, const double *W1,
                             const double *W2, const size_t *gate_of)
{
    if (m == 0 || !W1 || !W2)
        return af_error(AF_EINVAL, "heads: need m >= 1 and both weight arrays");
    if (gate_of)
        for (size_t h = 0; h < m; h++)
            if (gate_of[h] >= p->P)
                return af_error(AF_EINVAL, "heads: head %zu is in gate %zu, but there are %zu gates",
                                h, gate_of[h], p->P);
    af_status st = af_check_finite("W1", m * p->d2, W1);
    if (st)
        return st;
    return af_check_finite("W2", m * p->dc, W2);
}

/* Row-major C = alpha op(A) op(B) + beta C for the tiny per-sample products
 * of the head form (n, d, c of a few units to tens): a plain loop beats the
 * call overhead of cblas_dgemm by a wide margin there. */
static void small_gemm(int ta, int tb, size_t M, size_t N, size_t K, double alpha, const double *A,
                       size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++) {
        double *c = C + i * ldc;
        if (beta == 0)
            for (size_t j = 0; j < N; j++)
                c[j] = 0;
        else if (beta != 1)
            for (size_t j = 0; j < N; j++)
                c[j] *= beta;
        for (size_t k = 0; k < K; k++) {
            double a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
            if (a == 0)
                continue;
            if (!tb) {
                const double *b = B + k * ldb;
                for (size_t j = 0; j < N; j++)
                    c[j] += a * b[j];
            } else {
                for (size_t j = 0; j < N; j++)
                    c[j] += a * B[j * ldb + k];
            }
        }
    }
}

/* S = mask o (X W1 X^T) (n x n) and B = X W2 (n x c) for one sample and head. */
static void head_scores(const af_convex_problem *p, size_t i, const double *W1, const double *W2,
                        size_t g, double *A, double *S, double *B)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    const double *X = p->X + i * n * d;
    small_gemm(0, 0, n, d, d, 1.0, X, d, W1, d, 0.0, A, d);
    small_gemm(0, 1, n, n, d, 1.0, A, d, X, d, 0.0, S, n);
    if (p->D) {
        const unsigned char *D = p->D + (g * p->sh.N + i) * n * n;
        for (size_t q = 0; q < n * n; q++)
            if (!D[q])
                S[q] = 0;
    }
    small_gemm(0, 0, n, c, d, 1.0, X, d, W2, c, 0.0, B, c);
}

/* F of the head form; work: n d + n^2 + n c doubles. */
static void heads_predict(const af_convex_problem *p, size_t m, const double *W1, const double *W2,
                          const size_t *gate_of, double *F, double *work)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    double *A = work, *S = A + n * d, *B = S + n * n;
    for (size_t i = 0; i < p->sh.N; i++) {
        double *Fi = F + i * n * c;
        memset(Fi, 0, n * c * sizeof *Fi);
        for (size_t h = 0; h < m; h++) {
            head_scores(p, i, W1 + h * p->d2, W2 + h * p->dc, gate_of ? gate_of[h] : 0, A, S, B);
            small_gemm(0, 0, n, c, n, 1.0, S, n, B, c, 1.0, Fi, c);
        }
    }
}

af_status af_convex_heads_predict(const af_convex_problem *p, size_t m, const double *W1,
                                  const double *W2, const size_t *gate_of, double *F)
{
    af_status st = check_heads(p, m, W1, W2, gate_of);
    if (st)
        return st;
    size_t n = p->sh.n;
    double *work = malloc((n * p->sh.d + n * n + n * p->sh.c) * sizeof *work);
    if (!work)
        return af_error(AF_ENOMEM, "heads: out of memory");
    heads_predict(p, m, W1, W2, gate_of, F, work);
    free(work);
    return AF_SUCCESS;
}

size_t cx_heads_work(const af_convex_problem *p)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    return 2 * p->T * c + n * d + 2 * n * n + 2 * n * c + d * n;
}

void cx_heads_objective(const af_convex_problem *p, double beta, size_t m, const double *W1,
                        const double *W2, const size_t *gate_of, double *objective, double *dW1,
                        double *dW2, double *work)
{
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c, T = p->T;
    double *F = work, *res = F + T * c, *A = res + T * c, *S = A + n * d, *dS = S + n * n;
    double *B = dS + n * n, *dB = B + n * c, *XtdS = dB + n * c;
    heads_predict(p, m, W1, W2, gate_of, F, A);
    double loss = cx_loss(p, F, res);
    double reg = 0;
    for (size_t q = 0; q < m * p->d2; q++)
        reg += W1[q] * W1[q];
    for (size_t q = 0; q < m * p->dc; q++)
        reg += W2[q] * W2[q];
    *objective = loss + 0.5 * beta * reg;
    if (dW1 && dW2) {
        for (size_t q = 0; q < m * p->d2; q++)
            dW1[q] = beta * W1[q];
        for (size_t q = 0; q < m * p->dc; q++)
            dW2[q] = beta * W2[q];
        for (size_t i = 0; i < p->sh.N; i++) {
            const double *X = p->X + i * n * d, *Ri = res + i * n * c;
            for (size_t h = 0; h < m; h++) {
                size_t g = gate_of ? gate_of[h] : 0;
                head_scores(p, i, W1 + h * p->d2, W2 + h * p->dc, g, A, S, B);
                /* F = S B: dS = w R B^T (masked), dB = w S^T R */
                small_gemm(0, 1, n, n, c, p->w, Ri, c, B, c, 0.0, dS, n);
                if (p->D) {
                    const unsigned char *D = p->D + (g * p->sh.N + i) * n * n;
                    for (size_t q = 0; q < n * n; q++)
                        if (!D[q])
                            dS[q] = 0;
                }
                small_gemm(1, 0, n, c, n, p->w, S, n, Ri, c, 0.0, dB, c);
                /* B = X W2: dW2 += X^T dB;  S = X W1 X^T: dW1 += X^T dS X */
                small_gemm(1, 0, d, c, n, 1.0, X, d, dB, c, 1.0, dW2 + h * p->dc, c);
                small_gemm(1, 0, d, n, n, 1.0, X, d, dS, n, 0.0, XtdS, n);
                small_gemm(0, 0, d, d, n, 1.0, XtdS, n, X, d, 1.0, dW1 + h * p->d2, d);
            }
        }
    }
}

af_status af_convex_heads_objective(const af_convex_problem *p, double beta, size_t m,
                                    const double *W1, const double *W2, const size_t *gate_of,
                                    double *objective, double *dW1, double *dW2)
{
    af_status st = need_targets(p);
    if (!st)
        st = check_heads(p, m, W1, W2, gate_of);
    if (st)
        return st;
    double *work = malloc(cx_heads_work(p) * sizeof *work);
    if (!work)
        return af_error(AF_ENOMEM, "heads: out of memory");
    cx_heads_objective(p, beta, m, W1, W2, gate_of, objective, dW1, dW2, work);
    free(work);
    return isfinite(*objective) ? AF_SUCCESS : af_error(AF_ENUMERIC, "head objective is not finite");
}


af_status af_convex_z_from_heads(const af_convex_problem *p, size_t m, const double *W1,
                                 const double *W2, const size_t *gate_of, double *Z)
{
    af_status st = check_heads(p, m, W1, W2, gate_of);
    if (st)
        return st;
    size_t d = p->sh.d, dc = p->dc;
    memset(Z, 0, p->P * p->zg * sizeof *Z);
    for (size_t h = 0; h < m; h++) {
        double *Zg = Z + (gate_of ? gate_of[h] : 0) * p->zg;
        const double *w1 = W1 + h * p->d2, *v = W2 + h * dc;
        for (size_t l = 0; l < d; l++)
            for (size_t k = 0; k < d; k++) {
                double u = w1[k * d + l]; /* u[l d + k] = W1[k, l] */
                double *row = Zg + (l * d + k) * dc;
                for (size_t q = 0; q < dc; q++)
                    row[q] += u * v[q];
            }
    }
    return AF_SUCCESS;
}

af_status af_convex_heads_from_z(const af_convex_problem *p, const double *Z, double rel_tol,
                                 size_t cap, size_t *m, double *W1, double *W2, size_t *gate_of,
                                 double *sigma)
{
    if (!(rel_tol >= 0))
        return af_error(AF_EINVAL, "head extraction: rel_tol must be >= 0 (got %g)", rel_tol);
    cx_svd *s = cx_svd_alloc(p->d2, p->dc, AF_CONVEX_SVD_LAPACK);
    if (!s)
        return af_error(AF_ENOMEM, "head extraction: out of memory");
    af_status st = AF_SUCCESS;
    double smax = 0;
    for (size_t g = 0; !st && g < p->P; g++) {
        st = cx_svd_run(s, Z + g * p->zg, 0);
        if (!st)
            smax = s->sv[0] > smax ? s->sv[0] : smax;
    }
    size_t d = p->sh.d, dc = p->dc, count = 0, k = s->k;
    for (size_t g = 0; !st && g < p->P; g++) {
        st = cx_svd_run(s, Z + g * p->zg, 1);
        for (size_t j = 0; !st && j < k; j++) {
            double sv = s->sv[j];
            if (!(sv > rel_tol * smax) || sv == 0)
                break;
            if (count == cap) {
                st = af_error(AF_EINVAL, "head extraction: more than cap=%zu heads", cap);
                break;
            }
            double r = sqrt(sv);
            /* left vectors index rows (l d + k) of Z, right ones columns (p c + o) */
            for (size_t l = 0; l < d; l++)
                for (size_t q = 0; q < d; q++)
                    W1[count * p->d2 + q * d + l] = r * s->U[(l * d + q) * k + j];
            for (size_t q = 0; q < dc; q++)
                W2[count * dc + q] = r * s->Vt[j * dc + q];
            if (gate_of)
                gate_of[count] = g;
            if (sigma)
                sigma[count] = sv;
            count++;
        }
    }
    cx_svd_free(s);
    if (!st)
        *m = count;
    return st;
}

af_status af_convex_head_contributions(const af_convex_problem *p, size_t m, const double *W1,
                                       const double *W2, const size_t *gate_of, size_t sample,
                                       double *C)
{
    af_status st = check_heads(p, m, W1, W2, gate_of);
    if (st)
        return st;
    if (sample >= p->sh.N)
        return af_error(AF_EINVAL, "head contributions: sample %zu out of range (N = %zu)", sample,
                        p->sh.N);
    size_t n = p->sh.n, d = p->sh.d, c = p->sh.c;
    double *A = malloc((n * d + n * n + 2 * n * c) * sizeof *A);
    if (!A)
        return af_error(AF_ENOMEM, "head contributions: out of memory");
    double *S = A + n * d, *B = S + n * n, *Fh = B + n * c;
    for (size_t h = 0; h < m; h++) {
        head_scores(p, sample, W1 + h * p->d2, W2 + h * p->dc, gate_of ? gate_of[h] : 0, A, S, B);
        small_gemm(0, 0, n, c, n, 1.0, S, n, B, c, 0.0, Fh, c);
        for (size_t t = 0; t < n; t++) {
            double v = 0;
            for (size_t o = 0; o < c; o++)
                v += Fh[t * c + o] * Fh[t * c + o];
            C[t * m + h] = sqrt(v);
        }
    }
    free(A);
    return AF_SUCCESS;
}

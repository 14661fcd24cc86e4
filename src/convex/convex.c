/* Convex duality of token-mixing heads: the problem (shared by the
 * families attention, mixer and fno, see convex_internal.h), the losses and
 * their conjugates, the certificate, and the head form on top of the
 * families' one-head forward/backward.
 *
 * Why the convex program has the optimum of the head form: every family is
 * linear in Z_q = sum_{h in q} w1_h w2_h^T (up to a fixed reindexing of
 * w1), and each rank-one term has |w1 w2^T|_* = |w1||w2| <=
 * (|w1|^2 + |w2|^2)/2 with equality iff |w1| = |w2|. The triangle
 * inequality gives |Z_q|_* <= (1/2) sum_h (|w1_h|^2 + |w2_h|^2), attained
 * by the balanced SVD factorisation w1_h = sqrt(s_h) a_h, w2_h = sqrt(s_h) b_h.
 * Minimising the weight decay over all factorisations of a fixed Z
 * therefore gives beta sum_q |Z_q|_*, and the nonconvex training problem
 * equals the convex one when every block has at least rank(Z_q*) heads. */
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

af_status af_convex_mixing_from_name(const char *name, af_convex_mixing *mixing)
{
    if (strcmp(name, "attention") == 0)
        *mixing = AF_CONVEX_ATTENTION;
    else if (strcmp(name, "mixer") == 0)
        *mixing = AF_CONVEX_MIXER;
    else if (strcmp(name, "fno") == 0)
        *mixing = AF_CONVEX_FNO;
    else
        return af_error(AF_EINVAL, "unknown token mixing '%s' (attention|mixer|fno)", name);
    return AF_SUCCESS;
}

static const cx_family *family_of(af_convex_mixing m)
{
    static const cx_family *const table[] = {&cx_attention, &cx_mixer, &cx_fno};
    return (size_t)m < sizeof table / sizeof table[0] ? table[m] : NULL;
}

size_t af_convex_gate_size(const af_convex_shape *sh)
{
    const cx_family *f = family_of(sh->mixing);
    return f ? f->gate_size(sh) : 0;
}

af_convex_layout af_convex_problem_layout(const af_convex_problem *p)
{
    af_convex_layout l = {p->P, p->zr, p->zc, p->gates, p->B};
    return l;
}

void af_convex_problem_free(af_convex_problem *p)
{
    if (!p)
        return;
    if (p->fam)
        p->fam->release(p);
    free(p->X);
    free(p->Y);
    free(p->H);
    free(p->D);
    free(p->F);
    free(p->res);
    free(p);
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
    const cx_family *fam = family_of(sh->mixing);
    if (!fam)
        return af_error(AF_EINVAL, "convex problem: unknown token mixing %d", (int)sh->mixing);
    if (sh->loss != AF_CONVEX_SQUARED && sh->loss != AF_CONVEX_CE)
        return af_error(AF_EINVAL, "convex problem: unknown loss %d", (int)sh->loss);
    if (sh->loss == AF_CONVEX_CE && sh->c < 2)
        return af_error(AF_EINVAL, "convex problem: cross-entropy needs c >= 2 classes (got %zu)", sh->c);
    if (sh->kind == AF_CONVEX_GATED && (sh->gates == 0 || !H))
        return af_error(AF_EINVAL, "convex problem: gated heads need gates >= 1 and gate weights");
    if (sh->mixing != AF_CONVEX_FNO && sh->blocks > 1)
        return af_error(AF_EINVAL, "convex problem: --blocks (B-FNO) needs the fno mixing");
    size_t T = sh->N * sh->n;
    af_status st = af_check_finite("tokens", T * sh->d, X);
    if (st)
        return st;
    af_convex_problem *p = calloc(1, sizeof *p);
    if (!p)
        return af_error(AF_ENOMEM, "convex problem: out of memory");
    p->sh = *sh;
    size_t d = sh->d, c = sh->c;
    p->gates = sh->kind == AF_CONVEX_GATED ? sh->gates : 1;
    p->sh.gates = p->gates;
    p->B = 1;
    p->T = T;
    p->w = 1.0 / (double)T;
    st = fam->setup(p);
    if (st) {
        free(p);
        return st;
    }
    p->fam = fam;
    p->zg = p->zr * p->zc;
    size_t gs = fam->gate_size(&p->sh), ms = fam->mask_size(p);
    p->X = malloc(T * d * sizeof *p->X);
    p->Y = calloc(T * c, sizeof *p->Y);
    p->F = malloc(T * c * sizeof *p->F);
    p->res = malloc(T * c * sizeof *p->res);
    if (sh->kind == AF_CONVEX_GATED) {
        p->H = malloc(p->gates * gs * sizeof *p->H);
        p->D = malloc(ms ? ms : 1);
    }
    if (!p->X || !p->Y || !p->F || !p->res || (sh->kind == AF_CONVEX_GATED && (!p->H || !p->D))) {
        af_convex_problem_free(p);
        return af_error(AF_ENOMEM, "convex problem: out of memory (N=%zu n=%zu d=%zu c=%zu)",
                        sh->N, sh->n, d, c);
    }
    memcpy(p->X, X, T * d * sizeof *p->X);
    if (sh->kind == AF_CONVEX_GATED) {
        st = af_check_finite("gate weights", p->gates * gs, H);
        if (st) {
            af_convex_problem_free(p);
            return st;
        }
        memcpy(p->H, H, p->gates * gs * sizeof *p->H);
    }
    st = fam->init(p);
    if (st) {
        af_convex_problem_free(p);
        return st;
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

void cx_forward(af_convex_problem *p, const double *Z, double *F) { p->fam->forward(p, Z, F); }

void cx_apply_mask(const af_convex_problem *p, size_t g, size_t i, size_t len, double *A)
{
    if (!p->D)
        return;
    const unsigned char *D = p->D + (g * p->sh.N + i) * len;
    for (size_t q = 0; q < len; q++)
        if (!D[q])
            A[q] = 0;
}
void cx_backward(af_convex_problem *p, const double *res, double *G) { p->fam->backward(p, res, G); }

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
    cx_svd *s = cx_svd_alloc(p->zr, p->zc, AF_CONVEX_SVD_LAPACK);
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
    af_status st = af_check_finite("W1", m * p->zr, W1);
    if (st)
        return st;
    return af_check_finite("W2", m * p->zc, W2);
}

/* Row-major C = alpha op(A) op(B) + beta C for the tiny per-sample products
 * of the head form (n, d, c of a few units to tens): a plain loop beats the
 * call overhead of cblas_dgemm by a wide margin there. */
void cx_small_gemm(int ta, int tb, size_t M, size_t N, size_t K, double alpha, const double *A,
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

/* F of the head form; work: n c + head_work doubles. */
static void heads_predict(const af_convex_problem *p, size_t m, const double *W1, const double *W2,
                          const size_t *gate_of, double *F, double *work)
{
    size_t n = p->sh.n, c = p->sh.c;
    double *Fh = work, *hw = Fh + n * c;
    for (size_t i = 0; i < p->sh.N; i++) {
        double *Fi = F + i * n * c;
        memset(Fi, 0, n * c * sizeof *Fi);
        for (size_t h = 0; h < m; h++) {
            p->fam->head_forward(p, i, W1 + h * p->zr, W2 + h * p->zc, gate_of ? gate_of[h] : 0,
                                 Fh, hw);
            for (size_t q = 0; q < n * c; q++)
                Fi[q] += Fh[q];
        }
    }
}

af_status af_convex_heads_predict(const af_convex_problem *p, size_t m, const double *W1,
                                  const double *W2, const size_t *gate_of, double *F)
{
    af_status st = check_heads(p, m, W1, W2, gate_of);
    if (st)
        return st;
    double *work = malloc((p->sh.n * p->sh.c + p->fam->head_work(p)) * sizeof *work);
    if (!work)
        return af_error(AF_ENOMEM, "heads: out of memory");
    heads_predict(p, m, W1, W2, gate_of, F, work);
    free(work);
    return AF_SUCCESS;
}

size_t cx_heads_work(const af_convex_problem *p)
{
    return 2 * p->T * p->sh.c + p->sh.n * p->sh.c + p->fam->head_work(p);
}

void cx_heads_objective(const af_convex_problem *p, double beta, size_t m, const double *W1,
                        const double *W2, const size_t *gate_of, double *objective, double *dW1,
                        double *dW2, double *work)
{
    size_t n = p->sh.n, c = p->sh.c, T = p->T;
    double *F = work, *res = F + T * c, *hw = res + T * c;
    heads_predict(p, m, W1, W2, gate_of, F, hw);
    double loss = cx_loss(p, F, res);
    double reg = 0;
    for (size_t q = 0; q < m * p->zr; q++)
        reg += W1[q] * W1[q];
    for (size_t q = 0; q < m * p->zc; q++)
        reg += W2[q] * W2[q];
    *objective = loss + 0.5 * beta * reg;
    if (dW1 && dW2) {
        for (size_t q = 0; q < m * p->zr; q++)
            dW1[q] = beta * W1[q];
        for (size_t q = 0; q < m * p->zc; q++)
            dW2[q] = beta * W2[q];
        for (size_t q = 0; q < T * c; q++) /* d loss / dF */
            res[q] *= p->w;
        for (size_t i = 0; i < p->sh.N; i++)
            for (size_t h = 0; h < m; h++)
                p->fam->head_backward(p, i, W1 + h * p->zr, W2 + h * p->zc,
                                      gate_of ? gate_of[h] : 0, res + i * n * c, dW1 + h * p->zr,
                                      dW2 + h * p->zc, hw);
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

/* Row index of Z for entry q of w1: with side > 0, w1 is a side x side
 * row-major matrix and the row index is its column-major vec. */
static size_t w1_row(size_t side, size_t q)
{
    return side ? (q % side) * side + q / side : q;
}

af_status af_convex_z_from_heads(const af_convex_problem *p, size_t m, const double *W1,
                                 const double *W2, const size_t *gate_of, double *Z)
{
    af_status st = check_heads(p, m, W1, W2, gate_of);
    if (st)
        return st;
    size_t zr = p->zr, zc = p->zc, side = p->fam->w1_side(p);
    memset(Z, 0, p->P * p->zg * sizeof *Z);
    for (size_t h = 0; h < m; h++) {
        double *Zg = Z + (gate_of ? gate_of[h] : 0) * p->zg;
        const double *w1 = W1 + h * zr, *v = W2 + h * zc;
        for (size_t q = 0; q < zr; q++) {
            double u = w1[q];
            double *row = Zg + w1_row(side, q) * zc;
            for (size_t o = 0; o < zc; o++)
                row[o] += u * v[o];
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
    cx_svd *s = cx_svd_alloc(p->zr, p->zc, AF_CONVEX_SVD_LAPACK);
    if (!s)
        return af_error(AF_ENOMEM, "head extraction: out of memory");
    af_status st = AF_SUCCESS;
    double smax = 0;
    for (size_t g = 0; !st && g < p->P; g++) {
        st = cx_svd_run(s, Z + g * p->zg, 0);
        if (!st)
            smax = s->sv[0] > smax ? s->sv[0] : smax;
    }
    size_t zr = p->zr, zc = p->zc, count = 0, k = s->k, side = p->fam->w1_side(p);
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
            /* left vectors index the rows of Z, right ones its columns */
            for (size_t q = 0; q < zr; q++)
                W1[count * zr + q] = r * s->U[w1_row(side, q) * k + j];
            for (size_t q = 0; q < zc; q++)
                W2[count * zc + q] = r * s->Vt[j * zc + q];
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
    size_t n = p->sh.n, c = p->sh.c;
    double *Fh = malloc((n * c + p->fam->head_work(p)) * sizeof *Fh);
    if (!Fh)
        return af_error(AF_ENOMEM, "head contributions: out of memory");
    for (size_t h = 0; h < m; h++) {
        p->fam->head_forward(p, sample, W1 + h * p->zr, W2 + h * p->zc, gate_of ? gate_of[h] : 0,
                             Fh, Fh + n * c);
        for (size_t t = 0; t < n; t++) {
            double v = 0;
            for (size_t o = 0; o < c; o++)
                v += Fh[t * c + o] * Fh[t * c + o];
            C[t * m + h] = sqrt(v);
        }
    }
    free(Fh);
    return AF_SUCCESS;
}

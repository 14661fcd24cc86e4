/* FISTA for min_Z L(A Z) + beta sum_g |Z_g|_* with singular-value
 * soft-thresholding as the proximal step, monotone backtracking on the
 * step, gradient-based adaptive restart (O'Donoghue & Candes 2015) and the
 * duality-gap certificate of convex.h after every gap_every steps.
 *
 * Cost per step: one GEMM for the gradient at the extrapolated point, one
 * SVD per gate and one GEMM per trial step, and one more GEMM plus a small
 * symmetric eigenproblem for the certificate. The outputs at the
 * extrapolated point need no GEMM: A is linear, so
 * A Y = A Z_k + mom (A Z_k - A Z_{k-1}). */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct af_convex_solver {
    af_convex_problem *p;
    af_convex_options opt;
    size_t zs, fs, kmin;
    double *Z, *Zold, *Yk, *G, *Zn;
    double *Gz, *Gzold;   /* gradients at Z_k and Z_{k-1} from the certificates */
    size_t gz_iter, gzold_iter;
    int gz_ok, gzold_ok;
    double mom;           /* Y = Z + mom (Z - Zold) */
    double *FZ, *FZold, *FY, *Fn, *resY, *resZ, *resN;
    double *sig, *sign;
    cx_svd *svd;
    double t, theta, lossZ;
    double clock0;
    af_convex_state st;
    int ready;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

af_convex_options af_convex_options_default(void)
{
    af_convex_options o = {0};
    o.beta = 1e-3;
    o.tol = 1e-6;
    o.max_iter = 5000;
    o.step = 0;
    o.backtrack = 0.5;
    o.grow = 1.1;
    o.restart = 1;
    o.accelerate = 1;
    o.gap_every = 1;
    o.svd = AF_CONVEX_SVD_LAPACK;
    return o;
}

void af_convex_solver_free(af_convex_solver *s)
{
    if (!s)
        return;
    double *bufs[] = {s->Z, s->Zold, s->Yk, s->G, s->Zn, s->Gz, s->Gzold, s->FZ, s->FZold, s->FY,
                      s->Fn, s->resY, s->resZ, s->resN, s->sig, s->sign};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        free(bufs[k]);
    cx_svd_free(s->svd);
    free(s);
}

af_convex_solver *af_convex_solver_alloc(af_convex_problem *p)
{
    if (!p) {
        af_error(AF_EINVAL, "convex solver: no problem");
        return NULL;
    }
    af_convex_solver *s = calloc(1, sizeof *s);
    if (!s) {
        af_error(AF_ENOMEM, "convex solver: out of memory");
        return NULL;
    }
    s->p = p;
    s->zs = p->P * p->zg;
    s->fs = p->T * p->sh.c;
    s->kmin = p->zr < p->zc ? p->zr : p->zc;
    double **zb[] = {&s->Z, &s->Zold, &s->Yk, &s->G, &s->Zn, &s->Gz, &s->Gzold};
    double **fb[] = {&s->FZ, &s->FZold, &s->FY, &s->Fn, &s->resY, &s->resZ, &s->resN};
    int ok = 1;
    for (size_t k = 0; k < sizeof zb / sizeof zb[0]; k++)
        ok &= (*zb[k] = malloc(s->zs * sizeof(double))) != NULL;
    for (size_t k = 0; k < sizeof fb / sizeof fb[0]; k++)
        ok &= (*fb[k] = malloc(s->fs * sizeof(double))) != NULL;
    ok &= (s->sig = calloc(p->P * s->kmin, sizeof(double))) != NULL;
    ok &= (s->sign = calloc(p->P * s->kmin, sizeof(double))) != NULL;
    ok &= (s->svd = cx_svd_alloc(p->zr, p->zc, AF_CONVEX_SVD_LAPACK)) != NULL;
    if (!ok) {
        af_convex_solver_free(s);
        af_error(AF_ENOMEM, "convex solver: out of memory (Z has %zu entries)", s->zs);
        return NULL;
    }
    return s;
}

/* Certificate at the current iterate Z (outputs FZ, residual resZ). */
static af_status certify(af_convex_solver *s)
{
    af_convex_problem *p = s->p;
    /* keep the previous gradient: for the squared loss the gradient is
     * affine in Z, so the one at Y = Z + mom (Z - Zold) is a combination */
    double *tmp = s->Gzold;
    s->Gzold = s->Gz;
    s->Gz = tmp;
    s->gzold_ok = s->gz_ok;
    s->gzold_iter = s->gz_iter;
    cx_backward(p, s->resZ, s->Gz);
    s->gz_ok = 1;
    s->gz_iter = s->st.iter;
    double t0 = now(), gn = 0;
    for (size_t g = 0; g < p->P; g++) {
        double v;
        af_status st = cx_specnorm(s->svd, s->Gz + g * p->zg, &v);
        if (st)
            return st;
        gn = v > gn ? v : gn;
    }
    s->st.svd_seconds += now() - t0;
    double beta = s->opt.beta;
    double sc = gn > beta ? beta / gn : 1.0;
    s->st.grad_norm = gn;
    s->st.grad_ratio = gn / beta;
    s->st.dual = cx_dual(p, s->FZ, s->resZ, sc);
    s->st.gap = s->st.objective - s->st.dual;
    s->st.rel_gap = cx_relative_gap(s->st.gap, s->st.objective);
    s->st.certified = 1;
    s->st.converged = s->st.rel_gap <= s->opt.tol;
    return AF_SUCCESS;
}

/* Largest eigenvalue of (1/T) A^* A by power iteration: the curvature of
 * the squared loss (an upper bound for ce after the factor 1/2). */
static double lipschitz(af_convex_solver *s)
{
    af_convex_problem *p = s->p;
    double *v = s->Zn, *u = s->G;
    for (size_t q = 0; q < s->zs; q++)
        v[q] = 1.0 + 0.01 * (double)(q % 7); /* deterministic, not orthogonal to much */
    double lam = 0;
    for (int it = 0; it < 10; it++) { /* a rough start: backtracking and growth adapt it */
        double nv = 0;
        for (size_t q = 0; q < s->zs; q++)
            nv += v[q] * v[q];
        nv = sqrt(nv);
        if (nv == 0)
            return 1.0;
        for (size_t q = 0; q < s->zs; q++)
            v[q] /= nv;
        cx_forward(p, v, s->Fn);
        cx_backward(p, s->Fn, u);
        double nu = 0;
        for (size_t q = 0; q < s->zs; q++)
            nu += u[q] * v[q];
        lam = nu;
        memcpy(v, u, s->zs * sizeof *v);
    }
    return lam > 0 ? lam : 1.0;
}

af_status af_convex_solver_set(af_convex_solver *s, const af_convex_options *opt, const double *Z0)
{
    af_convex_problem *p = s->p;
    s->ready = 0;
    if (!p->has_targets)
        return af_error(AF_EINVAL, "convex solver: targets not set");
    if (!(opt->beta > 0) || !isfinite(opt->beta))
        return af_error(AF_EINVAL, "convex solver: beta must be > 0 (got %g)", opt->beta);
    if (!(opt->tol >= 0))
        return af_error(AF_EINVAL, "convex solver: tol must be >= 0 (got %g)", opt->tol);
    if (!(opt->backtrack > 0 && opt->backtrack < 1))
        return af_error(AF_EINVAL, "convex solver: backtrack factor must be in (0,1) (got %g)",
                        opt->backtrack);
    if (!(opt->grow >= 1) || !isfinite(opt->grow))
        return af_error(AF_EINVAL, "convex solver: grow factor must be >= 1 (got %g)", opt->grow);
    if (opt->max_iter == 0 || opt->gap_every == 0)
        return af_error(AF_EINVAL, "convex solver: max_iter and gap_every must be >= 1");
    if (!isfinite(opt->step))
        return af_error(AF_EINVAL, "convex solver: step must be finite");
    if (opt->svd != AF_CONVEX_SVD_LAPACK && opt->svd != AF_CONVEX_SVD_GSL)
        return af_error(AF_EINVAL, "convex solver: unknown SVD backend %d", (int)opt->svd);
    s->opt = *opt;
    s->svd->backend = opt->svd; /* the LAPACK workspace is always there; GSL needs none */
    memset(&s->st, 0, sizeof s->st);
    double t0 = now();
    s->clock0 = t0;
    af_status st;
    if (Z0) {
        st = af_check_finite("Z0", s->zs, Z0);
        if (st)
            return st;
        memcpy(s->Z, Z0, s->zs * sizeof *s->Z);
    } else {
        memset(s->Z, 0, s->zs * sizeof *s->Z);
    }
    /* penalty and rank of the start */
    double nuc = 0;
    size_t rank = 0;
    for (size_t g = 0; g < p->P; g++) {
        st = cx_svd_run(s->svd, s->Z + g * p->zg, 0);
        if (st)
            return st;
        for (size_t j = 0; j < s->kmin; j++) {
            double v = s->svd->sv[j];
            s->sig[g * s->kmin + j] = v;
            nuc += v;
            rank += v > 0;
        }
    }
    s->st.svd_seconds = now() - t0;
    s->st.step = opt->step > 0 ? opt->step
                               : 1.0 / ((p->sh.loss == AF_CONVEX_CE ? 0.5 : 1.0) * lipschitz(s));
    s->t = s->st.step;
    cx_forward(p, s->Z, s->FZ);
    s->lossZ = cx_loss(p, s->FZ, s->resZ);
    if (!isfinite(s->lossZ))
        return af_error(AF_ENUMERIC, "convex solver: loss at the start is not finite");
    memcpy(s->FZold, s->FZ, s->fs * sizeof *s->FZ);
    memcpy(s->FY, s->FZ, s->fs * sizeof *s->FZ);
    memcpy(s->Zold, s->Z, s->zs * sizeof *s->Z);
    memcpy(s->Yk, s->Z, s->zs * sizeof *s->Z);
    s->theta = 1;
    s->mom = 0;
    s->gz_ok = s->gzold_ok = 0;
    s->st.loss = s->lossZ;
    s->st.penalty = opt->beta * nuc;
    s->st.objective = s->st.loss + s->st.penalty;
    s->st.rank = rank;
    st = certify(s);
    s->st.seconds = now() - t0;
    if (!st)
        s->ready = 1;
    return st;
}

#define SWAP(a, b) do { double *tmp_ = (a); (a) = (b); (b) = tmp_; } while (0)

af_status af_convex_solver_iterate(af_convex_solver *s)
{
    if (!s->ready)
        return af_error(AF_EINVAL, "convex solver: call af_convex_solver_set first");
    af_convex_problem *p = s->p;
    double t0 = now(), beta = s->opt.beta;
    size_t zs = s->zs, fs = s->fs;
    cx_loss(p, s->FY, s->resY); /* residual at Y: gradient, and the ce Bregman test */
    size_t k = s->st.iter;
    if (s->gz_ok && s->gz_iter == k && (s->mom == 0 || (s->gzold_ok && s->gzold_iter + 1 == k))
        && p->sh.loss == AF_CONVEX_SQUARED) {
        /* saves one of the two GEMMs of the step (the certificate did it) */
        for (size_t q = 0; q < zs; q++)
            s->G[q] = s->mom == 0 ? s->Gz[q] : s->Gz[q] + s->mom * (s->Gz[q] - s->Gzold[q]);
    } else {
        cx_backward(p, s->resY, s->G);
    }
    double lossN;
    size_t rank;
    /* try a longer step first: the local curvature is often far below the
     * global bound (ce saturates); backtracking pulls it back */
    double t_prev = s->t;
    s->t *= s->opt.grow;
    for (;;) {
        for (size_t q = 0; q < zs; q++)
            s->Zn[q] = s->Yk[q] - s->t * s->G[q];
        double ts = now();
        rank = 0;
        for (size_t g = 0; g < p->P; g++) {
            size_t r;
            af_status st = cx_svt(s->svd, s->Zn + g * p->zg, s->t * beta, s->Zn + g * p->zg,
                                  s->sign + g * s->kmin, &r);
            if (st) {
                s->ready = 0;
                return st;
            }
            rank += r;
        }
        s->st.svd_seconds += now() - ts;
        cx_forward(p, s->Zn, s->Fn);
        lossN = cx_loss(p, s->Fn, s->resN);
        double sq = 0;
        for (size_t q = 0; q < zs; q++) {
            double e = s->Zn[q] - s->Yk[q];
            sq += e * e;
        }
        /* sufficient decrease L(Zn) <= L(Y) + <G, Zn - Y> + |Zn - Y|^2/(2t),
         * tested as Bregman divergence <= |Zn - Y|^2/(2t): both sides are
         * computed without cancellation, so the test stays meaningful when
         * the steps are tiny near the optimum */
        if (isfinite(lossN) && cx_bregman(p, s->FY, s->resY, s->Fn) <= sq / (2 * s->t))
            break;
        s->t *= s->opt.backtrack;
        s->st.backtracks++;
        if (!(s->t > 1e-300)) {
            s->ready = 0;
            return af_error(AF_ENUMERIC, "convex solver: step underflow in backtracking");
        }
    }
    /* accept Z_{k+1} = Zn */
    SWAP(s->Zold, s->Z);
    SWAP(s->Z, s->Zn);
    SWAP(s->FZold, s->FZ);
    SWAP(s->FZ, s->Fn);
    SWAP(s->resZ, s->resN);
    SWAP(s->sig, s->sign);
    s->lossZ = lossN;
    double nuc = 0;
    for (size_t q = 0; q < p->P * s->kmin; q++)
        nuc += s->sig[q];
    s->st.loss = lossN;
    s->st.penalty = beta * nuc;
    s->st.objective = lossN + beta * nuc;
    s->st.rank = rank;
    s->st.step = s->t;
    s->st.iter++;
    /* restart when the momentum points uphill: <Y - Z_{k+1}, Z_{k+1} - Z_k> > 0 */
    double dir = 0;
    for (size_t q = 0; q < zs; q++)
        dir += (s->Yk[q] - s->Z[q]) * (s->Z[q] - s->Zold[q]);
    if (s->opt.restart && dir > 0) {
        s->theta = 1;
        s->st.restarts++;
    }
    /* momentum for varying steps (Scheinberg, Goldfarb & Bai 2014) */
    double th = (1 + sqrt(1 + 4 * s->theta * s->theta * t_prev / s->t)) / 2;
    double mom = s->opt.accelerate ? (s->theta - 1) / th : 0;
    s->theta = th;
    s->mom = mom;
    for (size_t q = 0; q < zs; q++)
        s->Yk[q] = s->Z[q] + mom * (s->Z[q] - s->Zold[q]);
    for (size_t q = 0; q < fs; q++)
        s->FY[q] = s->FZ[q] + mom * (s->FZ[q] - s->FZold[q]);
    s->st.certified = 0;
    af_status st = AF_SUCCESS;
    if (s->st.iter % s->opt.gap_every == 0)
        st = certify(s);
    s->st.seconds += now() - t0;
    if (st)
        s->ready = 0;
    return st;
}

const af_convex_state *af_convex_solver_state(const af_convex_solver *s) { return &s->st; }
const double *af_convex_solver_z(const af_convex_solver *s) { return s->Z; }
const double *af_convex_solver_sigma(const af_convex_solver *s) { return s->sig; }

af_status af_convex_solve(af_convex_problem *p, const af_convex_options *opt, double *Z,
                          af_convex_state *state)
{
    af_convex_solver *s = af_convex_solver_alloc(p);
    if (!s)
        return AF_ENOMEM;
    af_status st = af_convex_solver_set(s, opt, Z);
    while (!st && !s->st.converged && s->st.iter < opt->max_iter)
        st = af_convex_solver_iterate(s);
    /* the last step may have skipped the certificate (gap_every > 1) */
    if (!st && !s->st.certified)
        st = certify(s);
    if (!st) {
        memcpy(Z, s->Z, s->zs * sizeof *Z);
        if (state)
            *state = s->st;
        if (!s->st.converged)
            st = af_error(AF_EMAXITER, "convex solver: relative gap %.3g > tol %.3g after %zu iterations",
                          s->st.rel_gap, opt->tol, s->st.iter);
    }
    af_convex_solver_free(s);
    return st;
}

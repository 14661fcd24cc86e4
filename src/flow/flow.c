/* Particle flows: velocity fields and integrators on one workspace.
 * The O(n^2) work of a velocity evaluation (scores, normalisation, K X) is
 * the attention backend's (attnflow/backend.h: dense, tiled or pm); the flow
 * asks it for K X and keeps the Sinkhorn warm-start predictor, the value
 * map, skip, the sphere projection and the integrators. */
#include "core/af_blas.h"
#include <math.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include "attnflow/flow.h"
#include "potential_history.h"


/* Most doubles in one array (see check_params). */
#define FLOW_MAX_ELEMS (SIZE_MAX / (4 * sizeof(double)))
#define FLOW_STAGES 4

struct af_flow_ws {
    af_flow_params p;     /* A and V point at the copies below */
    double *A, *V;        /* owned copies (NULL: identity / value * I) */
    af_attn_ws *attn;     /* the backend's workspace: scores, normalisation, K X */
    double *KX;           /* n x d */
    double *k1, *k2, *k3, *k4, *tmp; /* n x d stage buffers */
    af_flow_stats stats;
    int cold_next;        /* 1: the next Sinkhorn solve starts from zero potentials */

    /* Warm-start predictor: for each stage of the fixed-step integrators, the
     * potentials of its last POT_HIST solves (slot 0 newest). The stage
     * points of step n are smooth functions of X_n, so each stage's
     * potentials form a smooth sequence in n and extrapolate with error
     * O(h^POT_HIST) (one sequence for all stages would only give O(h^2):
     * intermediate stages lie O(h^2) off the trajectory). */
    pot_history hist[FLOW_STAGES];
    double *pred_f, *pred_g;
    double clock;         /* time of the fixed-step integrators (for the predictor) */

    /* adaptive integration (GSL odeiv2) */
    gsl_odeiv2_system sys;
    gsl_odeiv2_step *ode_step;
    gsl_odeiv2_control *ode_ctrl;
    gsl_odeiv2_evolve *ode_evolve;
    double h_adapt;       /* last accepted internal step, reused across calls */
    af_status cb_status;  /* status of a velocity evaluation inside GSL */
};

af_flow_params af_flow_params_default(size_t n, size_t d)
{
    af_flow_params p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.d = d;
    p.norm = AF_FLOW_SOFTMAX;
    p.scores = af_scores_params_default();
    p.V = NULL;
    p.value = 1.0;
    p.geometry = AF_FLOW_EUCLID;
    p.integrator = AF_FLOW_RK4;
    p.atol = 1e-8;
    p.rtol = 1e-8;
    p.sinkhorn = af_sinkhorn_options_default();
    p.sinkhorn.compute_bound = 0; /* the bound costs O(n^2) per evaluation and is unused */
    p.warm_start = 2;
    p.backend = NULL;
    return p;
}

const af_flow_params *af_flow_get_params(const af_flow_ws *ws) { return &ws->p; }

static int ode_rhs(double t, const double y[], double dydt[], void *params);

static double *dup_matrix(size_t d, const double *a)
{
    double *b = malloc(d * d * sizeof *b);
    if (b)
        memcpy(b, a, d * d * sizeof *b);
    return b;
}

static af_status check_matrix(const char *what, size_t d, const double *a)
{
    for (size_t k = 0; k < d * d; k++)
        if (!isfinite(a[k]))
            return af_error(AF_EDOM, "flow: %s has a non-finite entry (row %zu, column %zu)", what,
                            k / d + 1, k % d + 1);
    return AF_SUCCESS;
}

static af_status check_params(const af_flow_params *p)
{
    if (p->n == 0 || p->d == 0)
        return af_error(AF_EINVAL, "flow: n and d must be >= 1 (n = %zu, d = %zu)", p->n, p->d);
    /* BLAS takes int sizes, and the byte counts of the n x n kernel
     * (dense Sinkhorn, af_flow_kernel) and of the n x d buffers (plus small
     * extras such as AF_SCORES_WORK's 2n) must not wrap around size_t: reject
     * before any product is formed. FLOW_MAX_ELEMS leaves a factor 4 spare. */
    if (p->n > INT_MAX || p->d > INT_MAX)
        return af_error(AF_EINVAL, "flow: n and d must be <= %d (BLAS int sizes; n = %zu, d = %zu)",
                        INT_MAX, p->n, p->d);
    if (p->n > FLOW_MAX_ELEMS / p->n || p->d > FLOW_MAX_ELEMS / p->n)
        return af_error(AF_EINVAL, "flow: n = %zu, d = %zu: the n x n or n x d arrays would "
                        "overflow the address space", p->n, p->d);
    if (!(p->scores.eps > 0) || !isfinite(p->scores.eps))
        return af_error(AF_EINVAL, "flow: eps must be > 0 and finite (got %g)", p->scores.eps);
    if (!isfinite(p->scores.beta))
        return af_error(AF_EINVAL, "flow: beta must be finite (got %g)", p->scores.beta);
    if (p->scores.kind != AF_SCORES_DOT && p->scores.kind != AF_SCORES_L2)
        return af_error(AF_EINVAL, "flow: unknown score kind %d", (int)p->scores.kind);
    if (p->norm != AF_FLOW_SOFTMAX && p->norm != AF_FLOW_SINKHORN)
        return af_error(AF_EINVAL, "flow: unknown normalisation %d", (int)p->norm);
    if (p->geometry != AF_FLOW_EUCLID && p->geometry != AF_FLOW_SPHERE)
        return af_error(AF_EINVAL, "flow: unknown geometry %d", (int)p->geometry);
    if ((unsigned)p->integrator > AF_FLOW_ADAPTIVE)
        return af_error(AF_EINVAL, "flow: unknown integrator %d", (int)p->integrator);
    if (p->usa && p->norm != AF_FLOW_SOFTMAX)
        return af_error(AF_EINVAL, "flow: USA (Z_i = n) is a SoftMax variant; Sinkhorn "
                                   "normalises rows and columns by construction");
    if (!p->V && !isfinite(p->value))
        return af_error(AF_EINVAL, "flow: value must be finite (got %g)", p->value);
    if (p->integrator == AF_FLOW_ADAPTIVE && (!(p->atol >= 0) || !(p->rtol >= 0)
                                              || p->atol + p->rtol <= 0))
        return af_error(AF_EINVAL, "flow: adaptive tolerances must be >= 0, not both 0 "
                                   "(atol = %g, rtol = %g)", p->atol, p->rtol);
    if (p->norm == AF_FLOW_SINKHORN && p->sinkhorn.iters == 0 && !(p->sinkhorn.tol > 0))
        return af_error(AF_EINVAL, "flow: Sinkhorn tolerance must be > 0 (got %g)",
                        p->sinkhorn.tol);
    if (p->scores.A) {
        af_status st = check_matrix("A", p->d, p->scores.A);
        if (st)
            return st;
    }
    if (p->V) {
        af_status st = check_matrix("W_V", p->d, p->V);
        if (st)
            return st;
    }
    /* pm_tol > 0 is the compatibility spelling of backend = af_backend_pm
     * with that tolerance (the backend checks its range and the rest) */
    if (!(p->pm_tol >= 0))
        return af_error(AF_EINVAL, "flow: pm tolerance must be >= 0 (got %g; > 0 selects the "
                                   "particle-mesh backend)", p->pm_tol);
    return AF_SUCCESS;
}

af_flow_ws *af_flow_alloc(const af_flow_params *p)
{
    if (check_params(p) != AF_SUCCESS)
        return NULL;
    af_flow_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        af_error(AF_ENOMEM, "flow: out of memory");
        return NULL;
    }
    const size_t n = p->n, d = p->d, nd = n * d;
    ws->p = *p;
    int ok = 1;
    if (p->scores.A)
        ok &= (ws->A = dup_matrix(d, p->scores.A)) != NULL;
    if (p->V)
        ok &= (ws->V = dup_matrix(d, p->V)) != NULL;
    ws->p.scores.A = ws->A;
    ws->p.V = ws->V;
    if (p->pm_tol > 0)
        ws->p.backend = af_backend_pm;
    if (!ws->p.backend)
        ws->p.backend = af_comm_distributed(p->comm) ? af_backend_tiled : af_backend_dense;
    if (ok) {
        af_attn_params ap = af_attn_params_default(n, d);
        if (p->pm_tol > 0)
            ap.pm_tol = p->pm_tol;
        if (ws->p.backend == af_backend_pm) /* the tolerance in use */
            ws->p.pm_tol = ap.pm_tol;
        ap.scores = ws->p.scores;
        ap.precision = p->precision;
        ap.comm = p->comm;
        ap.norm = p->norm == AF_FLOW_SINKHORN ? AF_ATTN_SINKHORN
                  : p->usa                    ? AF_ATTN_USA
                                              : AF_ATTN_SOFTMAX;
        if (!(ws->attn = af_attn_alloc(ws->p.backend, &ap))) {
            af_flow_free(ws); /* af_attn_alloc's message stays */
            return NULL;
        }
    }
    double **bufs[] = {&ws->KX, &ws->k1, &ws->k2, &ws->k3, &ws->k4, &ws->tmp};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        ok &= (*bufs[k] = malloc(nd * sizeof(double))) != NULL;
    if (ok && p->norm == AF_FLOW_SINKHORN) {
        for (size_t s = 0; s < FLOW_STAGES; s++)
            ok &= pot_history_alloc(&ws->hist[s], n);
        ok &= (ws->pred_f = malloc(n * sizeof(double))) != NULL;
        ok &= (ws->pred_g = malloc(n * sizeof(double))) != NULL;
    }
    ws->cold_next = 1;
    if (ok && p->integrator == AF_FLOW_ADAPTIVE) {
        ws->sys.function = ode_rhs;
        ws->sys.jacobian = NULL;
        ws->sys.dimension = nd;
        ws->sys.params = ws;
        ok &= (ws->ode_step = gsl_odeiv2_step_alloc(gsl_odeiv2_step_rkf45, nd)) != NULL;
        ok &= (ws->ode_ctrl = gsl_odeiv2_control_y_new(p->atol, p->rtol)) != NULL;
        ok &= (ws->ode_evolve = gsl_odeiv2_evolve_alloc(nd)) != NULL;
    }
    if (!ok) {
        af_flow_free(ws);
        af_error(AF_ENOMEM, "flow: out of memory (n = %zu, d = %zu)", n, d);
        return NULL;
    }
    return ws;
}

void af_flow_free(af_flow_ws *ws)
{
    if (!ws)
        return;
    free(ws->A);
    free(ws->V);
    af_attn_free(ws->attn);
    free(ws->KX);
    free(ws->k1);
    free(ws->k2);
    free(ws->k3);
    free(ws->k4);
    free(ws->tmp);
    for (size_t s = 0; s < FLOW_STAGES; s++)
        pot_history_free(&ws->hist[s]);
    free(ws->pred_f);
    free(ws->pred_g);
    if (ws->ode_evolve)
        gsl_odeiv2_evolve_free(ws->ode_evolve);
    if (ws->ode_ctrl)
        gsl_odeiv2_control_free(ws->ode_ctrl);
    if (ws->ode_step)
        gsl_odeiv2_step_free(ws->ode_step);
    free(ws);
}

void af_flow_get_stats(const af_flow_ws *ws, af_flow_stats *stats) { *stats = ws->stats; }

void af_flow_reset_stats(af_flow_ws *ws) { memset(&ws->stats, 0, sizeof ws->stats); }

void af_flow_reset_potentials(af_flow_ws *ws)
{
    ws->cold_next = 1;
    for (size_t s = 0; s < FLOW_STAGES; s++)
        ws->hist[s].len = 0;
}

af_status af_flow_pm_info(const af_flow_ws *ws, af_pm_info *info)
{
    if (ws->p.backend != af_backend_pm)
        return af_error(AF_EINVAL, "flow: this workspace uses the %s backend, not particle-mesh",
                        af_backend_name(ws->p.backend));
    return af_attn_pm_info(ws->attn, info);
}

/* ---- attention ---- */

/* The Sinkhorn options of one evaluation (warm start, symmetry). */
static af_sinkhorn_options sinkhorn_options(af_flow_ws *ws)
{
    af_sinkhorn_options opt = ws->p.sinkhorn;
    /* The scores of X against itself are symmetric when A is */
    opt.assume_symmetric = af_matrix_is_symmetric(ws->p.d, ws->p.scores.A);
    /* A fixed count keeps the Sinkformers convention (count 1 = SoftMax),
     * which only holds from zero potentials. */
    opt.warm_start = ws->p.warm_start && opt.iters == 0 && !ws->cold_next;
    ws->cold_next = 0;
    return opt;
}

/* Sinkhorn solve of the scores of X at integrator stage `stage` (-1: none)
 * and time t, warm-started from extrapolated potentials. */
static af_status solve_sinkhorn(af_flow_ws *ws, const double *X, int stage, double t)
{
    af_sinkhorn_options opt = sinkhorn_options(ws);
    const int extrapolate = opt.warm_start && ws->p.warm_start >= 2 && stage >= 0;
    /* fewer than two solves stored: a plain warm start from the last one */
    if (extrapolate && pot_history_predict(&ws->hist[stage], ws->p.n, t, ws->pred_f, ws->pred_g))
        af_attn_set_potentials(ws->attn, ws->pred_f, ws->pred_g);
    af_sinkhorn_info info;
    af_status st = af_attn_sinkhorn(ws->attn, X, &opt, &info);
    if (st == AF_SUCCESS && extrapolate)
        pot_history_record(&ws->hist[stage], ws->p.n, t, af_attn_f(ws->attn), af_attn_g(ws->attn));
    ws->stats.last_iterations = info.iterations;
    ws->stats.sinkhorn_iterations += info.iterations;
    if (st == AF_EMAXITER)
        return af_error(AF_EMAXITER, "flow: Sinkhorn did not reach tol %g in %zu "
                                     "normalisations (row err %.3g, col err %.3g)",
                        opt.tol, opt.max_iters, info.row_err, info.col_err);
    return st;
}

/* ws->KX = K(X) X: SoftMax / USA, or Sinkhorn (solve, then apply). */
static af_status attend(af_flow_ws *ws, const double *X, int stage, double t)
{
    ws->stats.evaluations++;
    ws->stats.last_iterations = 0;
    if (ws->p.norm != AF_FLOW_SINKHORN)
        return af_attn_softmax(ws->attn, X, ws->KX);
    af_status st = solve_sinkhorn(ws, X, stage, t);
    if (!st)
        st = af_attn_apply(ws->attn, ws->KX);
    return st;
}

/* out = in W_V^T (rows W_V y_i); in may not alias out. */
static void apply_value(const af_flow_ws *ws, const double *in, double *out)
{
    const size_t n = ws->p.n, d = ws->p.d;
    if (ws->V) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)d, (int)d, 1.0, in,
                    (int)d, ws->V, (int)d, 0.0, out, (int)d);
    } else {
        const double s = ws->p.value;
        for (size_t k = 0; k < n * d; k++)
            out[k] = s * in[k];
    }
}

static af_status check_overlap(const af_flow_ws *ws, const double *X, const double *Y)
{
    const size_t nd = ws->p.n * ws->p.d;
    if (X < Y + nd && Y < X + nd)
        return af_error(AF_EINVAL, "flow: output array overlaps the tokens");
    return AF_SUCCESS;
}

af_status af_flow_attention(af_flow_ws *ws, const double *X, double *Y)
{
    af_status st = check_overlap(ws, X, Y);
    if (!st)
        st = attend(ws, X, -1, 0);
    if (!st)
        apply_value(ws, ws->KX, Y);
    return st;
}

/* The velocity at integrator stage `stage` (-1: none) and time t. */
static af_status velocity_at(af_flow_ws *ws, const double *X, int stage, double t, double *vel)
{
    const size_t n = ws->p.n, d = ws->p.d;
    af_status st = check_overlap(ws, X, vel);
    if (!st)
        st = attend(ws, X, stage, t);
    if (st)
        return st;
    if (ws->p.skip)
        for (size_t k = 0; k < n * d; k++)
            ws->KX[k] -= X[k];
    apply_value(ws, ws->KX, vel);
    if (ws->p.geometry == AF_FLOW_SPHERE) {
        for (size_t i = 0; i < n; i++) {
            const double *x = X + i * d;
            double *v = vel + i * d;
            double s = 0;
            for (size_t k = 0; k < d; k++)
                s += x[k] * v[k];
            for (size_t k = 0; k < d; k++)
                v[k] -= s * x[k];
        }
    }
    return AF_SUCCESS;
}

af_status af_flow_velocity(af_flow_ws *ws, const double *X, double *vel)
{
    return velocity_at(ws, X, -1, 0, vel);
}

af_status af_flow_kernel(af_flow_ws *ws, const double *X, double *K)
{
    af_sinkhorn_options opt = ws->p.norm == AF_FLOW_SINKHORN ? sinkhorn_options(ws)
                                                             : af_sinkhorn_options_default();
    af_status st = af_attn_kernel(ws->attn, X, &opt, K);
    if (st)
        return st;
    ws->stats.evaluations++;
    ws->stats.last_iterations = 0;
    return AF_SUCCESS;
}

af_status af_flow_project(const af_flow_ws *ws, double *X)
{
    if (ws->p.geometry != AF_FLOW_SPHERE)
        return AF_SUCCESS;
    const size_t n = ws->p.n, d = ws->p.d;
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * d, s = 0;
        for (size_t k = 0; k < d; k++)
            s += x[k] * x[k];
        s = sqrt(s);
        if (!(s > 0) || !isfinite(s))
            return af_error(AF_ENUMERIC, "flow: token %zu has norm %g, cannot be put on the sphere",
                            i, s);
        for (size_t k = 0; k < d; k++)
            x[k] /= s;
    }
    return AF_SUCCESS;
}

/* ---- integrators ---- */

static af_status check_tokens(const af_flow_ws *ws, const double *X)
{
    const size_t nd = ws->p.n * ws->p.d;
    for (size_t k = 0; k < nd; k++)
        if (!isfinite(X[k]))
            return af_error(AF_ENUMERIC, "flow: token %zu became non-finite (blow-up: lower "
                                        "--T, --dt or the size of W_V)", k / ws->p.d);
    return AF_SUCCESS;
}

/* y = x + a v */
static void axpy_to(size_t m, double *y, const double *x, double a, const double *v)
{
    for (size_t k = 0; k < m; k++)
        y[k] = x[k] + a * v[k];
}

static af_status step_fixed(af_flow_ws *ws, double *X, double h)
{
    const size_t nd = ws->p.n * ws->p.d;
    double *k1 = ws->k1, *k2 = ws->k2, *k3 = ws->k3, *k4 = ws->k4, *Y = ws->tmp;
    const double t = ws->clock;
    af_status st = velocity_at(ws, X, 0, t, k1);
    if (st)
        return st;
    switch (ws->p.integrator) {
    case AF_FLOW_EULER:
        for (size_t k = 0; k < nd; k++)
            X[k] += h * k1[k];
        break;
    case AF_FLOW_HEUN:
        axpy_to(nd, Y, X, h, k1);
        if ((st = velocity_at(ws, Y, 1, t + h, k2)))
            return st;
        for (size_t k = 0; k < nd; k++)
            X[k] += 0.5 * h * (k1[k] + k2[k]);
        break;
    case AF_FLOW_RK4:
        axpy_to(nd, Y, X, 0.5 * h, k1);
        if ((st = velocity_at(ws, Y, 1, t + 0.5 * h, k2)))
            return st;
        axpy_to(nd, Y, X, 0.5 * h, k2);
        if ((st = velocity_at(ws, Y, 2, t + 0.5 * h, k3)))
            return st;
        axpy_to(nd, Y, X, h, k3);
        if ((st = velocity_at(ws, Y, 3, t + h, k4)))
            return st;
        for (size_t k = 0; k < nd; k++)
            X[k] += h / 6.0 * (k1[k] + 2.0 * (k2[k] + k3[k]) + k4[k]);
        break;
    default:
        return af_error(AF_EINVAL, "flow: not a fixed-step integrator");
    }
    ws->stats.steps++;
    ws->clock = t + h;
    if ((st = check_tokens(ws, X)))
        return st;
    return af_flow_project(ws, X);
}

static int ode_rhs(double t, const double y[], double dydt[], void *params)
{
    (void)t;
    af_flow_ws *ws = params;
    ws->cb_status = af_flow_velocity(ws, y, dydt);
    /* An overflow at a trial point usually means the trial step was too
     * long: GSL_FAILURE makes evolve_apply restore y so that the step can be
     * retried shorter; anything else aborts. */
    if (ws->cb_status == AF_ENUMERIC)
        return GSL_FAILURE;
    return ws->cb_status ? GSL_EBADFUNC : GSL_SUCCESS;
}

/* Adaptive rkf45 over [0, h]; the internal step carries over between calls. */
static af_status step_adaptive(af_flow_ws *ws, double *X, double h)
{
    double t = 0, hh = ws->h_adapt > 0 ? fmin(ws->h_adapt, h) : h;
    af_status st = AF_SUCCESS;
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    gsl_odeiv2_evolve_reset(ws->ode_evolve);
    while (t < h) {
        ws->cb_status = AF_SUCCESS;
        size_t fails = ws->ode_evolve->failed_steps;
        int rc = gsl_odeiv2_evolve_apply(ws->ode_evolve, ws->ode_ctrl, ws->ode_step, &ws->sys,
                                         &t, h, &hh, X);
        ws->stats.rejected += ws->ode_evolve->failed_steps - fails;
        if (rc == GSL_FAILURE && ws->cb_status == AF_ENUMERIC && hh > 1e-12 * h) {
            hh *= 0.25; /* y and t were restored: retry shorter */
            ws->stats.rejected++;
            continue;
        }
        if (ws->cb_status) {
            st = ws->cb_status;
            break;
        }
        if (rc != GSL_SUCCESS) {
            st = af_error(AF_ELIB, "flow: GSL odeiv2 failed (%s) at t = %g with step %g",
                          gsl_strerror(rc), t, hh);
            break;
        }
        ws->stats.steps++;
        /* Renormalising between accepted steps is safe: rkf45 evaluates the
         * derivative afresh at the start of every evolve_apply call. */
        if ((st = check_tokens(ws, X)) || (st = af_flow_project(ws, X)))
            break;
    }
    gsl_set_error_handler(old);
    if (!st)
        ws->h_adapt = hh;
    return st;
}

af_status af_flow_step(af_flow_ws *ws, double *X, double h)
{
    if (!(h > 0) || !isfinite(h))
        return af_error(AF_EINVAL, "flow: step must be > 0 and finite (got %g)", h);
    if (ws->p.integrator == AF_FLOW_ADAPTIVE)
        return step_adaptive(ws, X, h);
    return step_fixed(ws, X, h);
}

af_status af_flow_integrate(af_flow_ws *ws, double *X, double T, double h)
{
    if (!(T >= 0) || !isfinite(T))
        return af_error(AF_EINVAL, "flow: time span must be >= 0 and finite (got %g)", T);
    if (!(h > 0) || !isfinite(h))
        return af_error(AF_EINVAL, "flow: step must be > 0 and finite (got %g)", h);
    if (T == 0)
        return AF_SUCCESS;
    if (ws->p.integrator == AF_FLOW_ADAPTIVE) {
        ws->h_adapt = h;
        return step_adaptive(ws, X, T);
    }
    /* Equal steps; the 1e-9 slack keeps T/h = 300.0000000001 at 300 steps. */
    size_t steps = (size_t)ceil(T / h - 1e-9);
    if (steps == 0)
        steps = 1;
    const double hh = T / (double)steps;
    for (size_t s = 0; s < steps; s++) {
        af_status st = step_fixed(ws, X, hh);
        if (st)
            return st;
    }
    return AF_SUCCESS;
}

af_status af_flow_pure_layer(af_flow_ws *ws, double *X)
{
    af_status st = af_flow_attention(ws, X, ws->tmp);
    if (st)
        return st;
    memcpy(X, ws->tmp, ws->p.n * ws->p.d * sizeof *X);
    ws->stats.steps++;
    if ((st = check_tokens(ws, X)))
        return st;
    return af_flow_project(ws, X);
}

/* ---- names ---- */

static af_status from_name(const char *what, const char *name, const char *const *names,
                           int *out)
{
    char list[128] = "";
    for (int k = 0; names[k]; k++) {
        if (strcmp(name, names[k]) == 0) {
            *out = k;
            return AF_SUCCESS;
        }
        strncat(list, k ? "|" : "", sizeof list - strlen(list) - 1);
        strncat(list, names[k], sizeof list - strlen(list) - 1);
    }
    return af_error(AF_EINVAL, "unknown %s '%s' (%s)", what, name, list);
}

static const char *const norm_names[] = {"softmax", "sinkhorn", NULL};
static const char *const geom_names[] = {"euclid", "sphere", NULL};
static const char *const integ_names[] = {"euler", "heun", "rk4", "adaptive", NULL};

af_status af_flow_norm_from_name(const char *name, af_flow_norm *out)
{
    int k;
    af_status st = from_name("normalisation", name, norm_names, &k);
    if (!st)
        *out = (af_flow_norm)k;
    return st;
}

af_status af_flow_geometry_from_name(const char *name, af_flow_geometry *out)
{
    int k;
    af_status st = from_name("geometry", name, geom_names, &k);
    if (!st)
        *out = (af_flow_geometry)k;
    return st;
}

af_status af_flow_integrator_from_name(const char *name, af_flow_integrator *out)
{
    int k;
    af_status st = from_name("integrator", name, integ_names, &k);
    if (!st)
        *out = (af_flow_integrator)k;
    return st;
}

const char *af_flow_integrator_name(af_flow_integrator k)
{
    return (unsigned)k <= AF_FLOW_ADAPTIVE ? integ_names[k] : "?";
}

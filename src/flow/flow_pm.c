/* Flows with particle-mesh attention: SoftMax or Sinkhorn solved by Gauss
 * transforms (attnflow/pm.h), K X by one more. Sinkhorn warm starts as in
 * flow.c: each integrator stage extrapolates its last PM_HIST solves in time
 * (Lagrange polynomial) to the stage time (warm_start 2), or the last solve
 * is reused (warm_start 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "flow/flow_pm.h"

#define PM_STAGES 4
#define PM_HIST 4

struct af_flow_pm {
    size_t n, d;
    af_flow_norm norm;
    af_sinkhorn_options opt;
    int warm;        /* af_flow_params.warm_start */
    int cold_next;   /* the next solve starts from zero potentials */
    af_pm_attn *at;
    struct {
        double *f[PM_HIST], *g[PM_HIST], t[PM_HIST]; /* slot 0 newest */
        size_t len;
    } hist[PM_STAGES];
    double *pf, *pg; /* predicted potentials */
};

/* The last error message without its "pm: " prefix, in a copy. */
static const char *last_message(void)
{
    static _Thread_local char buf[512];
    const char *m = af_last_error();
    snprintf(buf, sizeof buf, "%s", strncmp(m, "pm: ", 4) == 0 ? m + 4 : m);
    return buf;
}

af_status af_flow_pm_check(const af_flow_params *p)
{
    if (!(p->pm_tol >= 1e-15 && p->pm_tol <= 1e-2))
        return af_error(AF_EINVAL, "flow: pm tolerance must be in [1e-15, 1e-2] (got %g)",
                        p->pm_tol);
    if (p->usa)
        return af_error(AF_EINVAL, "flow: the particle-mesh backend has no USA (exp(C) / n); "
                                   "use SoftMax or Sinkhorn");
    af_pm_attn *at = af_pm_attn_alloc(1, p->d, &p->scores, p->pm_tol);
    if (!at) /* its message says what is wrong; copied before af_error reuses the buffer */
        return af_error(AF_EINVAL, "flow: %s", last_message());
    af_pm_attn_free(at);
    return AF_SUCCESS;
}

af_flow_pm *af_flow_pm_alloc(const af_flow_params *p)
{
    af_flow_pm *pm = calloc(1, sizeof *pm);
    if (!pm) {
        af_error(AF_ENOMEM, "flow: out of memory");
        return NULL;
    }
    const size_t n = p->n;
    pm->n = n;
    pm->d = p->d;
    pm->norm = p->norm;
    pm->opt = p->sinkhorn;
    pm->warm = p->warm_start;
    pm->cold_next = 1;
    int ok = (pm->at = af_pm_attn_alloc(n, p->d, &p->scores, p->pm_tol)) != NULL;
    if (ok && p->norm == AF_FLOW_SINKHORN && p->warm_start >= 2) {
        for (int s = 0; s < PM_STAGES; s++)
            for (int k = 0; k < PM_HIST; k++) {
                ok &= (pm->hist[s].f[k] = malloc(n * sizeof(double))) != NULL;
                ok &= (pm->hist[s].g[k] = malloc(n * sizeof(double))) != NULL;
            }
        ok &= (pm->pf = malloc(n * sizeof(double))) != NULL;
        ok &= (pm->pg = malloc(n * sizeof(double))) != NULL;
    }
    if (!ok) {
        af_flow_pm_free(pm);
        af_error(AF_ENOMEM, "flow: out of memory for the particle-mesh backend (n = %zu)", n);
        return NULL;
    }
    return pm;
}

void af_flow_pm_free(af_flow_pm *pm)
{
    if (!pm)
        return;
    af_pm_attn_free(pm->at);
    for (int s = 0; s < PM_STAGES; s++)
        for (int k = 0; k < PM_HIST; k++) {
            free(pm->hist[s].f[k]);
            free(pm->hist[s].g[k]);
        }
    free(pm->pf);
    free(pm->pg);
    free(pm);
}

void af_flow_pm_reset(af_flow_pm *pm)
{
    pm->cold_next = 1;
    for (int s = 0; s < PM_STAGES; s++)
        pm->hist[s].len = 0;
}

void af_flow_pm_get_info(const af_flow_pm *pm, af_pm_info *info)
{
    af_pm_attn_get_info(pm->at, info);
}

/* Potentials of stage s extrapolated to time t through its stored solves
 * (the last one alone while the history is that short). 0: no history. */
static int predict(af_flow_pm *pm, int s, double t)
{
    const size_t n = pm->n, m = pm->hist[s].len;
    const double *ht = pm->hist[s].t;
    if (!pm->hist[s].f[0] || m == 0)
        return 0;
    if (m < 2 || !(t > ht[0])) {
        af_pm_attn_set_potentials(pm->at, pm->hist[s].f[0], pm->hist[s].g[0]);
        return 1;
    }
    double c[PM_HIST];
    for (size_t a = 0; a < m; a++) {
        c[a] = 1;
        for (size_t b = 0; b < m; b++)
            if (b != a)
                c[a] *= (t - ht[b]) / (ht[a] - ht[b]);
    }
    for (size_t i = 0; i < n; i++) {
        double f = 0, g = 0;
        for (size_t a = 0; a < m; a++) {
            f += c[a] * pm->hist[s].f[a][i];
            g += c[a] * pm->hist[s].g[a][i];
        }
        pm->pf[i] = f;
        pm->pg[i] = g;
    }
    af_pm_attn_set_potentials(pm->at, pm->pf, pm->pg);
    return 1;
}

static void record(af_flow_pm *pm, int s, double t)
{
    if (!pm->hist[s].f[0])
        return;
    if (pm->hist[s].len > 0 && !(t > pm->hist[s].t[0]))
        pm->hist[s].len = 0; /* time went back: a new integration */
    double *f = pm->hist[s].f[PM_HIST - 1], *g = pm->hist[s].g[PM_HIST - 1];
    for (size_t k = PM_HIST - 1; k > 0; k--) {
        pm->hist[s].f[k] = pm->hist[s].f[k - 1];
        pm->hist[s].g[k] = pm->hist[s].g[k - 1];
        pm->hist[s].t[k] = pm->hist[s].t[k - 1];
    }
    pm->hist[s].f[0] = f;
    pm->hist[s].g[0] = g;
    pm->hist[s].t[0] = t;
    if (pm->hist[s].len < PM_HIST)
        pm->hist[s].len++;
    memcpy(f, af_pm_attn_f(pm->at), pm->n * sizeof(double));
    memcpy(g, af_pm_attn_g(pm->at), pm->n * sizeof(double));
}

af_status af_flow_pm_attend(af_flow_pm *pm, const double *X, int stage, double t, double *KX,
                            af_flow_stats *stats)
{
    af_status st = af_pm_attn_set(pm->at, X);
    if (st)
        return st == AF_EDOM ? af_error(AF_EDOM, "flow: %s", last_message()) : st;
    stats->evaluations++;
    stats->last_iterations = 0;
    if (pm->norm == AF_FLOW_SOFTMAX) {
        st = af_pm_attn_softmax(pm->at);
    } else {
        af_sinkhorn_options opt = pm->opt;
        /* a fixed count keeps the Sinkformers convention: from zero potentials */
        opt.warm_start = pm->warm && opt.iters == 0 && !pm->cold_next;
        pm->cold_next = 0;
        const int staged = opt.warm_start && pm->warm >= 2 && stage >= 0 && stage < PM_STAGES;
        if (staged)
            predict(pm, stage, t);
        af_sinkhorn_info info = {0};
        st = af_pm_attn_sinkhorn(pm->at, &opt, &info);
        stats->last_iterations = info.iterations;
        stats->sinkhorn_iterations += info.iterations;
        if (st == AF_EMAXITER)
            return af_error(AF_EMAXITER, "flow: PM Sinkhorn did not reach tol %g in %zu "
                            "normalisations (residual %.3g)", opt.tol, opt.max_iters,
                            fmax(info.row_err, info.col_err));
        if (!st && pm->warm >= 2 && stage >= 0 && stage < PM_STAGES)
            record(pm, stage, t);
    }
    if (!st)
        st = af_pm_attn_apply(pm->at, pm->d, X, KX);
    return st;
}

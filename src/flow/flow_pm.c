/* Flows with particle-mesh attention: SoftMax or Sinkhorn solved by Gauss
 * transforms (attnflow/pm.h), K X by one more. Sinkhorn warm starts as in
 * flow.c: each integrator stage extrapolates its last POT_HIST solves in time
 * (Lagrange polynomial) to the stage time (warm_start 2), or the last solve
 * is reused (warm_start 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "flow/flow_pm.h"
#include "potential_history.h"

#define PM_STAGES 4

struct af_flow_pm {
    size_t n, d;
    af_flow_norm norm;
    af_sinkhorn_options opt;
    int warm;        /* af_flow_params.warm_start */
    int cold_next;   /* the next solve starts from zero potentials */
    af_pm_attn *at;
    pot_history hist[PM_STAGES];
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
            ok &= pot_history_alloc(&pm->hist[s], n);
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
        pot_history_free(&pm->hist[s]);
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
    const pot_history *h = &pm->hist[s];
    if (!h->f[0] || h->len == 0)
        return 0;
    if (pot_history_predict(h, pm->n, t, pm->pf, pm->pg))
        af_pm_attn_set_potentials(pm->at, pm->pf, pm->pg);
    else
        af_pm_attn_set_potentials(pm->at, h->f[0], h->g[0]);
    return 1;
}

static void record(af_flow_pm *pm, int s, double t)
{
    if (pm->hist[s].f[0])
        pot_history_record(&pm->hist[s], pm->n, t, af_pm_attn_f(pm->at), af_pm_attn_g(pm->at));
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

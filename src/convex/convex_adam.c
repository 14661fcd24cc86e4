/* The nonconvex baseline: m heads (W1_h, W2_h) trained directly by
 * full-batch Adam on loss + (beta/2) sum |W|^2 (the weight decay is part of
 * the objective, so its value is comparable with the convex optimum), and
 * the synthetic token-classification data shared by both solvers. */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>

struct af_convex_adam {
    af_convex_problem *p;
    af_convex_adam_options opt;
    size_t m, np; /* heads, parameters */
    double *w, *g, *mom1, *mom2; /* parameters: W1 (m zr) then W2 (m zc) */
    double *work;                /* head-form objective, allocated once */
    size_t *gate_of;
    size_t step;
    int ready;
};

af_convex_adam_options af_convex_adam_options_default(void)
{
    af_convex_adam_options o = {0};
    o.beta = 1e-3;
    o.lr = 1e-2;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.init_scale = 0.1;
    return o;
}

void af_convex_adam_free(af_convex_adam *a)
{
    if (!a)
        return;
    free(a->w);
    free(a->g);
    free(a->mom1);
    free(a->mom2);
    free(a->gate_of);
    free(a->work);
    free(a);
}

af_convex_adam *af_convex_adam_alloc(af_convex_problem *p, size_t m)
{
    if (!p || m == 0) {
        af_error(AF_EINVAL, "adam: need a problem and m >= 1 heads");
        return NULL;
    }
    af_convex_adam *a = calloc(1, sizeof *a);
    if (!a) {
        af_error(AF_ENOMEM, "adam: out of memory");
        return NULL;
    }
    a->p = p;
    a->m = m;
    a->np = m * (p->zr + p->zc);
    a->w = calloc(a->np, sizeof *a->w);
    a->g = calloc(a->np, sizeof *a->g);
    a->mom1 = calloc(a->np, sizeof *a->mom1);
    a->mom2 = calloc(a->np, sizeof *a->mom2);
    a->gate_of = malloc(m * sizeof *a->gate_of);
    a->work = malloc(cx_heads_work(p) * sizeof *a->work);
    if (!a->w || !a->g || !a->mom1 || !a->mom2 || !a->gate_of || !a->work) {
        af_convex_adam_free(a);
        af_error(AF_ENOMEM, "adam: out of memory");
        return NULL;
    }
    for (size_t h = 0; h < m; h++)
        a->gate_of[h] = h % p->P;
    return a;
}

af_status af_convex_adam_set(af_convex_adam *a, const af_convex_adam_options *opt, gsl_rng *rng)
{
    a->ready = 0;
    if (!(opt->beta >= 0) || !(opt->lr > 0) || !(opt->beta1 >= 0 && opt->beta1 < 1)
        || !(opt->beta2 >= 0 && opt->beta2 < 1) || !(opt->eps > 0) || !(opt->init_scale >= 0))
        return af_error(AF_EINVAL, "adam: invalid options (beta %g, lr %g, beta1 %g, beta2 %g)",
                        opt->beta, opt->lr, opt->beta1, opt->beta2);
    if (!rng)
        return af_error(AF_EINVAL, "adam: a seeded gsl_rng is required");
    if (!a->p->has_targets)
        return af_error(AF_EINVAL, "adam: targets not set");
    a->opt = *opt;
    for (size_t q = 0; q < a->np; q++)
        a->w[q] = opt->init_scale * gsl_ran_gaussian(rng, 1.0);
    memset(a->mom1, 0, a->np * sizeof *a->mom1);
    memset(a->mom2, 0, a->np * sizeof *a->mom2);
    a->step = 0;
    a->ready = 1;
    return AF_SUCCESS;
}

af_status af_convex_adam_iterate(af_convex_adam *a, double *objective)
{
    if (!a->ready)
        return af_error(AF_EINVAL, "adam: call af_convex_adam_set first");
    af_convex_problem *p = a->p;
    size_t m = a->m, off = m * p->zr;
    double obj;
    cx_heads_objective(p, a->opt.beta, m, a->w, a->w + off, a->gate_of, &obj, a->g, a->g + off,
                       a->work);
    if (!isfinite(obj))
        return af_error(AF_ENUMERIC, "adam: head objective is not finite after %zu steps", a->step);
    a->step++;
    double b1 = a->opt.beta1, b2 = a->opt.beta2;
    double c1 = 1 - pow(b1, (double)a->step), c2 = 1 - pow(b2, (double)a->step);
    for (size_t q = 0; q < a->np; q++) {
        a->mom1[q] = b1 * a->mom1[q] + (1 - b1) * a->g[q];
        a->mom2[q] = b2 * a->mom2[q] + (1 - b2) * a->g[q] * a->g[q];
        a->w[q] -= a->opt.lr * (a->mom1[q] / c1) / (sqrt(a->mom2[q] / c2) + a->opt.eps);
    }
    if (objective)
        *objective = obj;
    return AF_SUCCESS;
}

const double *af_convex_adam_w1(const af_convex_adam *a) { return a->w; }
const double *af_convex_adam_w2(const af_convex_adam *a) { return a->w + a->m * a->p->zr; }
const size_t *af_convex_adam_gates(const af_convex_adam *a) { return a->gate_of; }

/* ---- synthetic data ---- */

af_convex_synth_params af_convex_synth_params_default(void)
{
    af_convex_synth_params s = {0};
    s.clusters = 3;
    s.spread = 1.0;
    s.width = 0.3;
    s.teacher_heads = 2;
    s.noise = 0.1;
    s.temperature = 3.0;
    return s;
}

af_status af_convex_synth_tokens(const af_convex_synth_params *sp, size_t N, size_t n, size_t d,
                                 gsl_rng *rng, double *X, size_t *cluster)
{
    if (!rng || N == 0 || n == 0 || d == 0 || sp->clusters == 0 || !(sp->spread >= 0)
        || !(sp->width >= 0))
        return af_error(AF_EINVAL, "synthetic tokens: need a rng, sizes >= 1, clusters >= 1, "
                        "spread and width >= 0");
    size_t K = sp->clusters;
    double *mu = malloc(K * d * sizeof *mu);
    if (!mu)
        return af_error(AF_ENOMEM, "synthetic tokens: out of memory");
    double scale = 1.0 / sqrt((double)n);
    for (size_t t = 0; t < N * n; t++) {
        /* every sample is its own scene with its own centres: otherwise all
         * Gram matrices X_i^T X_i are nearly equal and the operator Z -> f
         * is badly conditioned */
        if (t % n == 0)
            for (size_t q = 0; q < K * d; q++)
                mu[q] = sp->spread * gsl_ran_gaussian(rng, 1.0);
        size_t k = gsl_rng_uniform_int(rng, K);
        if (cluster)
            cluster[t] = k;
        for (size_t j = 0; j < d; j++)
            X[t * d + j] = scale * (mu[k * d + j] + sp->width * gsl_ran_gaussian(rng, 1.0));
    }
    free(mu);
    return AF_SUCCESS;
}

af_status af_convex_synth_gates(size_t gates, size_t d, gsl_rng *rng, double *H)
{
    if (!rng || gates == 0 || d == 0)
        return af_error(AF_EINVAL, "synthetic gates: need a rng and sizes >= 1");
    for (size_t q = 0; q < gates * d * d; q++)
        H[q] = gsl_ran_gaussian(rng, 1.0);
    return AF_SUCCESS;
}

af_status af_convex_synth_gate_weights(const af_convex_shape *sh, gsl_rng *rng, double *H)
{
    size_t size = af_convex_gate_size(sh);
    if (!rng || sh->gates == 0 || size == 0)
        return af_error(AF_EINVAL, "synthetic gates: need a rng, gates >= 1 and a known mixing");
    for (size_t q = 0; q < sh->gates * size; q++)
        H[q] = gsl_ran_gaussian(rng, 1.0);
    return AF_SUCCESS;
}

af_status af_convex_synth_targets(const af_convex_problem *p, const af_convex_synth_params *sp,
                                  gsl_rng *rng, double *Y)
{
    if (!rng || sp->teacher_heads == 0 || !(sp->noise >= 0) || !(sp->temperature > 0))
        return af_error(AF_EINVAL, "synthetic targets: need a rng, teacher_heads >= 1, noise >= 0, "
                        "temperature > 0");
    size_t m = sp->teacher_heads, T = p->T, c = p->sh.c;
    double *W1 = malloc(m * (p->zr + p->zc) * sizeof *W1);
    size_t *gate_of = malloc(m * sizeof *gate_of);
    if (!W1 || !gate_of) {
        free(W1);
        free(gate_of);
        return af_error(AF_ENOMEM, "synthetic targets: out of memory");
    }
    double *W2 = W1 + m * p->zr;
    for (size_t q = 0; q < m * (p->zr + p->zc); q++)
        W1[q] = gsl_ran_gaussian(rng, 1.0);
    for (size_t h = 0; h < m; h++)
        gate_of[h] = h % p->P;
    af_status st = af_convex_heads_predict(p, m, W1, W2, gate_of, Y);
    free(W1);
    free(gate_of);
    if (st)
        return st;
    double ss = 0;
    for (size_t q = 0; q < T * c; q++)
        ss += Y[q] * Y[q];
    double rms = sqrt(ss / (double)(T * c));
    /* A huge --width overflows the teacher's scores: inf/NaN outputs must not
     * be reported (or normalised) as if they were merely zero. */
    if (!isfinite(rms))
        return af_error(AF_ENUMERIC, "synthetic targets: the teacher outputs are not finite "
                        "(rms %g; is the cluster width too large?)", rms);
    if (!(rms > 0))
        return af_error(AF_ENUMERIC, "synthetic targets: the teacher outputs are all zero");
    if (p->sh.loss == AF_CONVEX_SQUARED) {
        for (size_t q = 0; q < T * c; q++)
            Y[q] = Y[q] / rms + sp->noise * gsl_ran_gaussian(rng, 1.0);
    } else {
        for (size_t t = 0; t < T; t++) {
            double *y = Y + t * c;
            size_t best = 0;
            double bv = -INFINITY;
            for (size_t o = 0; o < c; o++) {
                double v = sp->temperature * y[o] / rms + sp->noise * gsl_ran_gaussian(rng, 1.0);
                if (v > bv) {
                    bv = v;
                    best = o;
                }
            }
            for (size_t o = 0; o < c; o++)
                y[o] = o == best;
        }
    }
    return AF_SUCCESS;
}

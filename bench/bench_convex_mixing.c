/* make bench: convex Mixer / FNO / B-FNO heads next to self-attention
 * (issue 13), at the sizes of the convex_transfer experiment: N = 700
 * samples of n = 16 tokens on a 4 x 4 grid, d = 10 features, c = 5
 * classes, cross-entropy, 4 gates, B = 5 groups for B-FNO.
 *  1. iterations and seconds to a 1e-6 relative duality gap for every kind
 *     (baseline: linear attention on the same data);
 *  2. the FNO operator (one forward + one adjoint) through FFTW against the
 *     same sums as dense circulant products, at n = 16 (4 x 4) and n = 64
 *     (8 x 8);
 *  3. convex against Adam on the linear mixer: seconds of the certified
 *     solve against the seconds Adam (m = rank + 2 heads, lr 0.01) needs to
 *     come within 1e-6 of P* (or where it stalls after 4000 steps). The head
 *     form costs about 0.15 s per Adam step here (30 heads): this part takes
 *     minutes.
 * One thread (OpenBLAS, OpenMP). Lines: name value unit baseline ratio
 * (ratio = baseline / value). */
#include "core/af_blas.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/convex.h"

static void line(const char *name, double value, const char *unit, double baseline, double ratio)
{
    printf("%-44s %12.4g %-8s %12.4g %8.3f\n", name, value, unit, baseline, ratio);
    fflush(stdout);
}

enum { d = 10, c = 5, P = 4 };
static size_t N = 700;

/* Synthetic tokens (seeded) with planted-teacher one-hot targets. */
static af_convex_problem *problem(af_convex_mixing mix, af_convex_kind kind, size_t blocks,
                                  size_t gh, size_t gw, double **Xkeep)
{
    size_t n = gh * gw;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    af_convex_shape sh = {kind, AF_CONVEX_CE, N, n, d, c, P, mix, blocks, gh, gw};
    af_convex_synth_params sp = af_convex_synth_params_default();
    double *X = malloc(N * n * d * sizeof *X), *Y = malloc(N * n * c * sizeof *Y);
    double *H = malloc(P * af_convex_gate_size(&sh) * sizeof *H);
    af_convex_problem *p = NULL;
    if (af_convex_synth_tokens(&sp, N, n, d, rng, X, NULL) || af_convex_synth_gate_weights(&sh, rng, H)
        || af_convex_problem_alloc(&p, &sh, X, H) || af_convex_synth_targets(p, &sp, rng, Y)
        || af_convex_problem_set_targets(p, Y)) {
        fprintf(stderr, "bench_convex_mixing: %s\n", af_last_error());
        exit(1);
    }
    gsl_rng_free(rng);
    if (Xkeep)
        *Xkeep = X;
    else
        free(X);
    free(Y);
    free(H);
    return p;
}

static double solve(af_convex_problem *p, double beta, af_convex_state *st)
{
    double *Z = calloc(af_convex_z_size(p), sizeof *Z);
    af_convex_options opt = af_convex_options_default();
    opt.beta = beta;
    opt.tol = 1e-6;
    opt.max_iter = 20000;
    double t0 = now();
    if (af_convex_solve(p, &opt, Z, st))
        fprintf(stderr, "bench_convex_mixing: %s\n", af_last_error());
    free(Z);
    return now() - t0;
}

/* seconds per (forward + adjoint) of the operator, engine e */
static double op_seconds(af_convex_problem *p, const af_convex_fno_engine *e, int reps)
{
    af_convex_problem_set_fno_engine(p, e);
    size_t zs = af_convex_z_size(p);
    double *Z = malloc(zs * sizeof *Z), *G = malloc(zs * sizeof *G), loss;
    for (size_t q = 0; q < zs; q++)
        Z[q] = 0.01 * (double)((q * 7919) % 13) - 0.06;
    af_convex_gradient(p, Z, &loss, G); /* warm */
    double t0 = now();
    for (int r = 0; r < reps; r++)
        af_convex_gradient(p, Z, &loss, G);
    double s = (now() - t0) / reps;
    free(Z);
    free(G);
    af_convex_problem_set_fno_engine(p, af_convex_fno_fftw);
    return s;
}

int main(void)
{
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    printf("# bench_convex_mixing: N=%zu n=16 (4x4) d=%d c=%d ce, %d gates; one thread\n", N, d, c, P);
    printf("# %-42s %12s %-8s %12s %8s\n", "name", "value", "unit", "baseline", "ratio");
    const double beta = 1e-3;
    struct {
        const char *name;
        af_convex_mixing mix;
        af_convex_kind kind;
        size_t blocks;
    } kinds[] = {
        {"attention linear", AF_CONVEX_ATTENTION, AF_CONVEX_LINEAR, 0},
        {"attention gated", AF_CONVEX_ATTENTION, AF_CONVEX_GATED, 0},
        {"mixer linear", AF_CONVEX_MIXER, AF_CONVEX_LINEAR, 0},
        {"mixer gated", AF_CONVEX_MIXER, AF_CONVEX_GATED, 0},
        {"fno linear", AF_CONVEX_FNO, AF_CONVEX_LINEAR, 0},
        {"fno gated", AF_CONVEX_FNO, AF_CONVEX_GATED, 0},
        {"b-fno (B=5) linear", AF_CONVEX_FNO, AF_CONVEX_LINEAR, 5},
        {"b-fno (B=5) gated", AF_CONVEX_FNO, AF_CONVEX_GATED, 5},
    };
    double base = 0;
    char name[128];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        af_convex_problem *p = problem(kinds[k].mix, kinds[k].kind, kinds[k].blocks, 4, 4, NULL);
        af_convex_state st;
        double s = solve(p, beta, &st);
        if (k == 0)
            base = s;
        snprintf(name, sizeof name, "solve to 1e-6 gap: %s", kinds[k].name);
        line(name, s, "s", base, base / s);
        snprintf(name, sizeof name, "  iterations (gap %.1e, rank %zu)", st.rel_gap, st.rank);
        line(name, (double)st.iter, "iter", 0, 0);
        af_convex_problem_free(p);
    }
    /* FNO operator: FFTW vs dense circulant */
    size_t grids[2][2] = {{4, 4}, {8, 8}};
    for (int g = 0; g < 2; g++) {
        af_convex_problem *p = problem(AF_CONVEX_FNO, AF_CONVEX_LINEAR, 0, grids[g][0], grids[g][1],
                                       NULL);
        double dense = op_seconds(p, af_convex_fno_dense, g ? 3 : 10);
        double fft = op_seconds(p, af_convex_fno_fftw, g ? 10 : 30);
        snprintf(name, sizeof name, "fno forward+adjoint, fftw, %zux%zu grid", grids[g][0],
                 grids[g][1]);
        line(name, fft * 1e3, "ms", dense * 1e3, dense / fft);
        af_convex_problem_free(p);
    }
    /* convex vs Adam on the linear mixer */
    af_convex_problem *p = problem(AF_CONVEX_MIXER, AF_CONVEX_LINEAR, 0, 4, 4, NULL);
    af_convex_state st;
    double tc = solve(p, beta, &st);
    size_t m = st.rank + 2;
    af_convex_adam *ad = af_convex_adam_alloc(p, m);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    af_convex_adam_options ao = af_convex_adam_options_default();
    ao.beta = beta;
    af_convex_adam_set(ad, &ao, rng);
    double t0 = now(), obj = INFINITY, reach = NAN;
    size_t it = 0;
    for (; it < 4000; it++) {
        af_convex_adam_iterate(ad, &obj);
        if ((obj - st.objective) / st.objective <= 1e-6) {
            reach = now() - t0;
            break;
        }
    }
    double ta = now() - t0;
    snprintf(name, sizeof name, "mixer linear: convex certified (P*=%.6f)", st.objective);
    line(name, tc, "s", 0, 0);
    if (isfinite(reach)) {
        snprintf(name, sizeof name, "mixer linear: Adam m=%zu to P*(1+1e-6)", m);
        line(name, reach, "s", tc, tc / reach);
    } else {
        snprintf(name, sizeof name, "mixer linear: Adam m=%zu, 4000 steps, rel %.1e", m,
                 (obj - st.objective) / st.objective);
        line(name, ta, "s", tc, tc / ta);
    }
    af_convex_adam_free(ad);
    gsl_rng_free(rng);
    af_convex_problem_free(p);
    return 0;
}

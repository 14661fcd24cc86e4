/* Attention backends (attnflow/backend.h): the matrix-free tiled backend
 * computes the same flows as the dense one, to round-off, for every
 * normalisation, score kind, A / W_V, skip, sphere and integrator; one
 * Sinkhorn normalisation is SoftMax bit for bit on it; what needs the n x n
 * matrix is refused; its memory is O(n d) by the allocation formula. */
#include <criterion/criterion.h>
void openblas_set_num_threads(int num_threads); /* OpenBLAS (its cblas.h clashes with GSL's) */
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "attnflow/backend.h"
#include "attnflow/flow.h"
#include "attnflow/energy.h"
#include "attnflow/init.h"
#include "attnflow/observables.h"
#include "support/fixtures.h"
#include "attention/backend_internal.h"

/* Small clouds: one thread by default (a shared 2-core machine); the
 * per-thread tiles are exercised by the two-thread test below. */
__attribute__((constructor)) static void one_thread(void)
{
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

static double *cloud(size_t n, size_t d, unsigned long seed, double scale)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double *X = malloc(n * d * sizeof *X);
    for (size_t k = 0; k < n * d; k++)
        X[k] = scale * (2 * gsl_rng_uniform(r) - 1);
    gsl_rng_free(r);
    return X;
}

static af_flow_ws *alloc_on(af_flow_params p, const af_backend_type *b)
{
    p.backend = b;
    af_flow_ws *ws = af_flow_alloc(&p);
    cr_assert_not_null(ws, "af_flow_alloc (%s): %s", af_backend_name(b), af_last_error());
    return ws;
}

/* Integrates the same cloud on both backends for `steps` steps of h and
 * compares the trajectories (and the Sinkhorn iteration counts). */
static void same_flow(const af_flow_params *p, const double *X0, size_t steps, double h,
                      double tol, const char *what)
{
    const size_t nd = p->n * p->d;
    af_flow_ws *wd = alloc_on(*p, af_backend_dense), *wt = alloc_on(*p, af_backend_tiled);
    double *Xd = malloc(nd * sizeof *Xd), *Xt = malloc(nd * sizeof *Xt);
    memcpy(Xd, X0, nd * sizeof *Xd);
    memcpy(Xt, X0, nd * sizeof *Xt);
    cr_assert(af_flow_project(wd, Xd) == AF_SUCCESS && af_flow_project(wt, Xt) == AF_SUCCESS);
    double *vd = malloc(nd * sizeof *vd), *vt = malloc(nd * sizeof *vt);
    cr_assert(af_flow_velocity(wd, Xd, vd) == AF_SUCCESS, "%s: %s", what, af_last_error());
    cr_assert(af_flow_velocity(wt, Xt, vt) == AF_SUCCESS, "%s: %s", what, af_last_error());
    double ev = fx_max_abs_diff(nd, vd, vt);
    cr_expect(ev < tol, "%s: velocity differs by %.3g", what, ev);
    af_flow_reset_potentials(wd);
    af_flow_reset_potentials(wt);
    for (size_t s = 0; s < steps; s++) {
        cr_assert(af_flow_step(wd, Xd, h) == AF_SUCCESS, "%s dense: %s", what, af_last_error());
        cr_assert(af_flow_step(wt, Xt, h) == AF_SUCCESS, "%s tiled: %s", what, af_last_error());
    }
    double ex = fx_max_abs_diff(nd, Xd, Xt);
    cr_expect(ex < tol, "%s: trajectories differ by %.3g after %zu steps", what, ex, steps);
    af_flow_stats sd, st;
    af_flow_get_stats(wd, &sd);
    af_flow_get_stats(wt, &st);
    cr_expect_eq(sd.sinkhorn_iterations, st.sinkhorn_iterations,
                 "%s: %zu (dense) vs %zu (tiled) Sinkhorn iterations", what,
                 sd.sinkhorn_iterations, st.sinkhorn_iterations);
    cr_expect_eq(sd.evaluations, st.evaluations, "%s: evaluation counts", what);
    free(Xd), free(Xt), free(vd), free(vt);
    af_flow_free(wd);
    af_flow_free(wt);
}

/* n = 37: not a multiple of the vector widths or of the 16 partial sums. */
#define N 37
#define D 3

static const double A_sym[9] = {1.0, 0.3, -0.2, 0.3, 0.8, 0.1, -0.2, 0.1, 1.2};
static const double A_gen[9] = {0.9, 0.4, 0.0, -0.3, 1.1, 0.2, 0.1, -0.5, 0.7};
static const double W_V[9] = {0.5, -0.2, 0.1, 0.3, 0.9, 0.0, -0.1, 0.2, 0.7};

Test(backend_tiled, softmax_and_usa_match_dense)
{
    double *X = cloud(N, D, 1, 1.0);
    for (int kind = 0; kind < 2; kind++)
        for (int usa = 0; usa < 2; usa++)
            for (int a = 0; a < 3; a++) {
                af_flow_params p = af_flow_params_default(N, D);
                p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
                p.scores.A = a == 0 ? NULL : a == 1 ? A_sym : A_gen;
                p.usa = usa;
                p.V = W_V;
                p.integrator = AF_FLOW_RK4;
                char what[96];
                snprintf(what, sizeof what, "softmax kind %d usa %d A %d", kind, usa, a);
                same_flow(&p, X, 5, 0.05, 1e-12, what);
            }
    free(X);
}

Test(backend_tiled, sinkhorn_tolerance_and_counts_match_dense)
{
    double *X = cloud(N, D, 2, 1.0);
    const size_t counts[] = {0, 1, 2, 3, 6};
    for (int kind = 0; kind < 2; kind++)
        for (int a = 0; a < 3; a++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                af_flow_params p = af_flow_params_default(N, D);
                p.norm = AF_FLOW_SINKHORN;
                p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
                p.scores.A = a == 0 ? NULL : a == 1 ? A_sym : A_gen;
                p.sinkhorn.iters = counts[c];
                p.sinkhorn.tol = 1e-11;
                p.integrator = AF_FLOW_HEUN;
                char what[96];
                snprintf(what, sizeof what, "sinkhorn kind %d A %d count %zu", kind, a, counts[c]);
                same_flow(&p, X, 4, 0.05, 1e-12, what);
            }
    free(X);
}

Test(backend_tiled, value_skip_sphere_and_every_integrator_match_dense)
{
    double *X = cloud(N, D, 3, 1.0);
    const af_flow_integrator integ[] = {AF_FLOW_EULER, AF_FLOW_HEUN, AF_FLOW_RK4,
                                        AF_FLOW_ADAPTIVE};
    for (int norm = 0; norm < 2; norm++)
        for (size_t k = 0; k < 4; k++)
            for (int variant = 0; variant < 3; variant++) {
                af_flow_params p = af_flow_params_default(N, D);
                p.norm = norm ? AF_FLOW_SINKHORN : AF_FLOW_SOFTMAX;
                p.integrator = integ[k];
                p.scores.beta = 2.0;
                p.sinkhorn.tol = 1e-11;
                p.skip = variant == 1;
                p.V = variant == 1 ? W_V : NULL;
                p.value = 0.7;
                p.geometry = variant == 2 ? AF_FLOW_SPHERE : AF_FLOW_EUCLID;
                char what[96];
                snprintf(what, sizeof what, "norm %d integrator %s variant %d", norm,
                         af_flow_integrator_name(integ[k]), variant);
                same_flow(&p, X, 3, 0.1, 1e-12, what);
            }
    free(X);
}

/* eps small: the dense solver leaves the scaling form for log space; the
 * tiled one is in log space from the start. Same iterates. */
Test(backend_tiled, small_eps_log_domain_matches_dense)
{
    for (int kind = 0; kind < 2; kind++) {
        double *X = cloud(N, 2, 4, kind ? 3.0 : 1.5);
        af_flow_params p = af_flow_params_default(N, 2);
        p.norm = AF_FLOW_SINKHORN;
        p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
        p.scores.A = kind ? NULL : (const double[]){1.0, 0.5, -0.5, 1.0};
        p.scores.eps = kind ? 0.01 : 0.005; /* score ranges > 600: log space */
        p.sinkhorn.tol = 1e-10;
        /* low-temperature dot scores send many rows to the same extreme
         * tokens: Sinkhorn crawls there, so a fixed count of 30 */
        p.sinkhorn.iters = kind ? 0 : 30;
        p.integrator = AF_FLOW_EULER;
        same_flow(&p, X, 3, 0.002, 1e-11, kind ? "small eps l2" : "small eps dot, general A");
        free(X);
    }
}

/* The fused row pass of the tiled backend works on 512-column tiles with a
 * running row maximum (earlier tiles rescaled when a later one raises it)
 * and blocks of 16 rows: n = 1100 gives three tiles per row (the last one
 * partial) and a partial last block. The cloud is sorted by its first
 * coordinate so that with dot scores the maximum of most rows moves from
 * tile to tile. SoftMax, USA and the Sinkhorn output against dense. */
static int by_first(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(backend_tiled, row_tiles_and_running_max_match_dense)
{
    const size_t n = 1100, d = 2;
    double *X = cloud(n, d, 21, 2.0);
    qsort(X, n, d * sizeof *X, by_first);
    static const double A2[4] = {0.9, 0.4, -0.3, 1.1};
    for (int kind = 0; kind < 2; kind++)
        for (int variant = 0; variant < 4; variant++) {
            af_flow_params p = af_flow_params_default(n, d);
            p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
            /* variant 3: SoftMax with a general A (dot scores with A = I
             * take the symmetric pass, which needs no running maximum) */
            p.scores.A = variant == 3 ? A2 : NULL;
            /* USA is not normalised: velocities ~ exp(max C); eps 4 keeps
             * them O(1) so that 1e-12 is a relative bound here too */
            p.scores.eps = variant == 1 ? 4.0 : 0.5;
            p.usa = variant == 1;
            p.norm = variant == 2 ? AF_FLOW_SINKHORN : AF_FLOW_SOFTMAX;
            p.sinkhorn.tol = 1e-10;
            p.integrator = AF_FLOW_EULER;
            char what[64];
            snprintf(what, sizeof what, "n = 1100, kind %d, variant %d", kind, variant);
            same_flow(&p, X, 1, 0.01, 1e-12, what);
        }
    free(X);
}

/* Far scores (eps small: most exp arguments below -708, where glibc's
 * vector exp is slow and the result subnormal or 0): the tiled pass writes
 * those terms as 0, the dense backend computes them; same velocity and
 * trajectory to 1e-12. */
Test(backend_tiled, flushed_far_terms_match_dense)
{
    const size_t n = 600, d = 2;
    double *X = cloud(n, d, 22, 3.0);
    for (int kind = 0; kind < 2; kind++) {
        af_flow_params p = af_flow_params_default(n, d);
        p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
        p.scores.eps = kind ? 0.002 : 0.01; /* score ranges ~1e4 and ~2e3 */
        p.integrator = AF_FLOW_EULER;
        same_flow(&p, X, 2, 1e-4, 1e-12, kind ? "far scores, l2" : "far scores, dot");
    }
    free(X);
}

/* The dense SoftMax kernels for d = 2 (dot scores: scores and max in one sweep,
 * flushed exp, sum and dots in one sweep; L2 scores: the symmetric upper
 * triangle, each exp for two rows) against the same backend's
 * stored kernel (af_softmax: every exp computed, no flush) times X, on
 * near and far scores (most arguments below -708 at the small eps). */
Test(backend_dense, d2_softmax_rows_match_stored_kernel)
{
    const size_t n = 301, d = 2;
    static const double A2[4] = {1.1, 0.3, 0.3, 0.7};
    double *X = cloud(n, d, 23, 3.0), *K = malloc(n * n * sizeof *K);
    double KX[301 * 2];
    for (int kind = 0; kind < 2; kind++)
        for (int far = 0; far < 2; far++) {
            af_attn_params ap = af_attn_params_default(n, d);
            ap.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
            ap.scores.A = kind ? A2 : NULL;
            ap.scores.eps = far ? (kind ? 0.002 : 0.01) : 1.0;
            af_attn_ws *w = af_attn_alloc(af_backend_dense, &ap);
            cr_assert(w, "%s", af_last_error());
            cr_assert(af_attn_softmax(w, X, KX) == AF_SUCCESS, "%s", af_last_error());
            cr_assert(af_attn_kernel(w, X, NULL, K) == AF_SUCCESS, "%s", af_last_error());
            double err = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < d; k++) {
                    double ref = 0;
                    for (size_t j = 0; j < n; j++)
                        ref += K[i * n + j] * X[j * d + k];
                    err = fmax(err, fabs(KX[i * d + k] - ref));
                }
            cr_expect(err < 1e-12, "kind %d far %d: K X differs from the stored kernel by %.3g",
                      kind, far, err);
            af_attn_free(w);
        }
    free(X);
    free(K);
}

/* Reference for the dense L2 Sinkhorn: af_sinkhorn's symmetric path on the
 * stored scores (af_scores), K written out and K X by loops. */
typedef struct {
    af_sinkhorn_ws *sk;
    double *C, *K, *work;
} stored_ref;

/* A dense Sinkhorn workspace for L2 scores at eps and its reference. */
static af_attn_ws *dense_l2_pair(size_t n, size_t d, double eps, af_attn_params *ap,
                                 stored_ref *r)
{
    *ap = af_attn_params_default(n, d);
    ap->norm = AF_ATTN_SINKHORN;
    ap->scores.kind = AF_SCORES_L2;
    ap->scores.eps = eps;
    af_attn_ws *w = af_attn_alloc(af_backend_dense, ap);
    r->sk = af_sinkhorn_alloc(n, n);
    r->C = malloc(n * n * sizeof(double));
    r->K = malloc(n * n * sizeof(double));
    r->work = malloc(AF_SCORES_WORK(n, n, d) * sizeof(double));
    cr_assert(w && r->sk && r->C && r->K && r->work, "%s", af_last_error());
    return w;
}

static void dense_l2_pair_free(af_attn_ws *w, stored_ref *r)
{
    af_attn_free(w);
    af_sinkhorn_free(r->sk);
    free(r->C), free(r->K), free(r->work);
}

static void stored_solve(stored_ref *r, const af_attn_params *ap, const double *X,
                         const af_sinkhorn_options *o, af_sinkhorn_info *info, double *KX)
{
    const size_t n = ap->n, d = ap->d;
    cr_assert(af_scores(&ap->scores, n, n, d, X, X, r->C, r->work) == AF_SUCCESS);
    af_sinkhorn_options so = *o;
    so.path = af_sinkhorn_symmetric;
    cr_assert(af_sinkhorn(r->sk, r->C, &so, r->K, info) == AF_SUCCESS, "%s", af_last_error());
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) {
            double v = 0;
            for (size_t j = 0; j < n; j++)
                v += r->K[i * n + j] * X[j * d + k];
            KX[i * d + k] = v;
        }
}

/* One dense solve (and K X) against the stored reference: same path,
 * iteration count and fall-back, potentials and K X to 1e-12; whether the
 * solve ran on the kernel built from the tokens. */
static void dense_l2_against_stored(af_attn_ws *w, stored_ref *r, const af_attn_params *ap,
                                    const double *X, const af_sinkhorn_options *o,
                                    int want_fast, const char *what)
{
    const size_t n = ap->n, d = ap->d;
    double *KX = malloc(n * d * sizeof *KX), *KR = malloc(n * d * sizeof *KR);
    af_sinkhorn_info id, ir;
    cr_assert(af_attn_sinkhorn(w, X, o, &id) == AF_SUCCESS, "%s: %s", what, af_last_error());
    cr_assert(af_attn_apply(w, KX) == AF_SUCCESS, "%s: %s", what, af_last_error());
    stored_solve(r, ap, X, o, &ir, KR);
    cr_expect_eq(id.iterations, ir.iterations, "%s: %zu vs %zu iterations", what, id.iterations,
                 ir.iterations);
    cr_expect_eq(id.fell_back, ir.fell_back, "%s", what);
    cr_expect_str_eq(af_sinkhorn_type_name(id.path), af_sinkhorn_type_name(ir.path), "%s", what);
    const double ef = fx_max_abs_diff(n, af_attn_f(w), af_sinkhorn_f(r->sk));
    const double ek = fx_max_abs_diff(n * d, KX, KR);
    int finite = 1;
    for (size_t i = 0; i < n; i++)
        finite &= isfinite(af_attn_f(w)[i]) && isfinite(KX[i * d]);
    cr_expect(finite, "%s: non-finite potentials or K X", what);
    cr_expect(ef < 1e-12 && ek < 1e-12, "%s: potentials differ by %.3g, K X by %.3g", what, ef,
              ek);
    cr_expect_eq(af__sym_kernel_product(w->sk) != NULL, want_fast,
                 "%s: solved on the kernel built from the tokens: %d", what, !want_fast);
    if (want_fast) { /* K X from a pass of its own when the last pass did not carry it */
        const double err = id.row_err;
        w->sk->symk_product = 0;
        memset(w->sk->apply_buf, 0, n * d * sizeof(double));
        cr_assert(af_attn_apply(w, KR) == AF_SUCCESS);
        cr_expect(fx_max_abs_diff(n * d, KX, KR) < 1e-14 && w->sk->row_err == err, "%s", what);
    }
    free(KX);
    free(KR);
}

/* The dense L2 Sinkhorn solve in tolerance mode builds K0 = exp(C) from
 * the tokens (no stored scores) and carries K X through its passes: the
 * same iterates as the stored symmetric path, for n = 4k and 4k + 3 (the
 * triangle's corner rows), d = 1 and 2, one and two threads, cold and
 * warm-started; a fixed count or the Hilbert bound keep the general route. */
Test(backend_dense, l2_sinkhorn_kernel_from_tokens_matches_stored_scores)
{
    for (int threads = 1; threads <= 2; threads++)
        for (size_t d = 1; d <= 2; d++)
            for (size_t n = 200; n <= 203; n += 3) {
                omp_set_num_threads(threads);
                double *X = cloud(n, d, 31 + n, 1.5);
                af_attn_params ap;
                stored_ref r;
                af_attn_ws *w = dense_l2_pair(n, d, 0.1, &ap, &r);
                char what[96];
                snprintf(what, sizeof what, "threads %d d %zu n %zu", threads, d, n);
                af_sinkhorn_options o = af_sinkhorn_options_default();
                o.compute_bound = 0;
                o.tol = 1e-11;
                dense_l2_against_stored(w, &r, &ap, X, &o, 1, what);
                for (size_t k = 0; k < n * d; k++) /* a step of the tokens, warm started */
                    X[k] *= 1.01;
                o.warm_start = 1;
                dense_l2_against_stored(w, &r, &ap, X, &o, 1, what);
                o.warm_start = 0;
                o.compute_bound = 1;
                dense_l2_against_stored(w, &r, &ap, X, &o, 0, what);
                dense_l2_pair_free(w, &r);
                free(X);
            }
    omp_set_num_threads(1);
}

/* A warm start whose row sums leave double range (a = e^400, a^2 > 1e308)
 * sends the solve to log space after its first pass: the scores are
 * written then, and the result is the stored path's (which falls back the
 * same way); so is K X, through the log path's kernel. The next solve,
 * warm from there, stays in scaling form, and the kernel written out has
 * unit row sums. */
Test(backend_dense, l2_sinkhorn_kernel_falls_back_with_scores)
{
    const size_t n = 150, d = 2;
    double *X = cloud(n, d, 41, 1.0), *big = malloc(n * sizeof *big);
    af_attn_params ap;
    stored_ref r;
    af_attn_ws *w = dense_l2_pair(n, d, 0.2, &ap, &r);
    for (size_t i = 0; i < n; i++)
        big[i] = 400.0;
    af_attn_set_potentials(w, big, big);
    af_sinkhorn_set_potentials(r.sk, big, big);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.compute_bound = 0;
    o.warm_start = 1;
    dense_l2_against_stored(w, &r, &ap, X, &o, 0, "fall-back");
    cr_expect(af_sinkhorn_f(r.sk)[0] < 0 && af_attn_f(w)[0] < 0); /* fell back, then balanced */
    af_sinkhorn_info info;
    cr_assert(af_attn_sinkhorn(w, X, &o, &info) == AF_SUCCESS);
    cr_expect(info.fell_back == 0 && af__sym_kernel_product(w->sk) != NULL,
              "a warm start from the solution stays in scaling form");
    cr_assert(af_attn_kernel(w, X, &o, r.K) == AF_SUCCESS, "%s", af_last_error());
    double re, ce;
    fx_marginal_errors(n, n, r.K, &re, &ce);
    cr_expect(re < 1e-8 && ce < 1e-8, "kernel marginals %.3g %.3g", re, ce);
    dense_l2_pair_free(w, &r);
    free(X), free(big);
}

/* The symmetric tiled Sinkhorn passes flush far exps when the bound on the
 * row sums allows it (most arguments below -708 here): same trajectory as
 * the dense backend, which computes every term, to 1e-12. */
Test(backend_tiled, sinkhorn_flushed_far_terms_match_dense)
{
    const size_t n = 600, d = 2;
    double *X = cloud(n, d, 23, 3.0);
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = AF_FLOW_SINKHORN;
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.002;
    p.sinkhorn.tol = 1e-11;
    p.integrator = AF_FLOW_EULER;
    same_flow(&p, X, 2, 1e-4, 1e-12, "far scores, sinkhorn");
    /* the state of that case (a ~ 1, r ~ 1) is one where flushing is allowed */
    double *one = malloc(n * sizeof *one);
    for (size_t j = 0; j < n; j++)
        one[j] = 1.0;
    double *zero = calloc(n, sizeof *zero); /* the step to a = 1 from a = 1 */
    cr_expect(af__sym_tiled_flush_allowed(n, one, one, zero, 0));
    cr_expect(af__sym_tiled_flush_allowed(n, one, one, zero, 1));
    free(zero);
    free(one);
    free(X);
}

/* Where a dropped term could show in a row sum the bound forbids flushing:
 * a scaling so large that a_i a_j exp(-708) reaches the row sums'
 * resolution, or last row sums so uneven that the next ones have no useful
 * lower bound; single precision (terms below exp(-87)) refuses sooner. The
 * steps q are the plain relaxed ones, q = -w log r, unless said otherwise. */
static int flush_allowed_relaxed(size_t n, const double *a, const double *r, int single)
{
    double q[8];
    for (size_t j = 0; j < n; j++)
        q[j] = -AF_SYM_RELAX * log(r[j]);
    return af__sym_tiled_flush_allowed(n, a, r, q, single);
}

Test(backend_tiled, sinkhorn_flush_bound_refuses_when_terms_could_show)
{
    const size_t n = 4;
    double a[4] = {1, 1, 1, 1}, r[4] = {1, 1, 1, 1};
    cr_assert(flush_allowed_relaxed(n, a, r, 0));
    a[2] = exp(300.0); /* n a_j max(a) e^-708 ~ e^-106 relative to L ~ 1 */
    cr_expect(flush_allowed_relaxed(n, a, r, 0), "e^-106 is below 2^-61");
    a[2] = exp(340.0); /* ~ e^-26: could show */
    cr_expect(!flush_allowed_relaxed(n, a, r, 0));
    a[2] = 1.0;
    r[1] = exp(-2000.0); /* L_1 = r_1^(1/3) (max r)^(-2/3) ~ e^-667 */
    cr_expect(!flush_allowed_relaxed(n, a, r, 0));
    r[1] = 1.0;
    a[0] = exp(40.0); /* float: ln n + 80 - 87 > -21.5; double: far below */
    cr_expect(flush_allowed_relaxed(n, a, r, 0));
    cr_expect(!flush_allowed_relaxed(n, a, r, 1));
    a[0] = 1.0;
    /* the accelerated step: one entry stepping down by e^-700 lowers every
     * bound (min exp(q)) by as much, which forbids flushing */
    double q[4] = {0, 0, 0, -700.0};
    cr_expect(af__sym_tiled_flush_allowed(n, a, r, (double[4]){0, 0, 0, 0}, 0));
    cr_expect(!af__sym_tiled_flush_allowed(n, a, r, q, 0));
    q[3] = NAN; /* not a valid step: never flush */
    cr_expect(!af__sym_tiled_flush_allowed(n, a, r, q, 0));
    a[0] = 0.0; /* not a valid state: never flush */
    cr_expect(!flush_allowed_relaxed(n, a, r, 0));
}

/* The first pass's bound (no last row sums: r_j >= a_j^2 K0_jj): flushing
 * is allowed for comparable scalings and a unit diagonal, refused when one
 * scaling or diagonal entry is so small that a flushed term could reach
 * its row sum's resolution, or for a state that is not a number. */
Test(backend_tiled, sinkhorn_first_pass_flush_bound)
{
    const size_t n = 4;
    double a[4] = {1, 1, 1, 1}, k[4] = {1, 1, 1, 1};
    cr_expect(af__sym_tiled_first_flush_allowed(n, a, k, 0));
    cr_expect(af__sym_tiled_first_flush_allowed(n, a, k, 1));
    a[1] = exp(-680.0); /* double: ln 4 + 0 - 708 = -706.6 > -42.3 - 680 */
    cr_expect(!af__sym_tiled_first_flush_allowed(n, a, k, 0));
    a[1] = exp(-70.0); /* double fine (-706.6 <= -112.3); float: -85.6 > -21.5 - 70 */
    cr_expect(af__sym_tiled_first_flush_allowed(n, a, k, 0));
    cr_expect(!af__sym_tiled_first_flush_allowed(n, a, k, 1));
    a[1] = 1.0;
    k[2] = exp(-700.0); /* a diagonal that leaves no lower bound */
    cr_expect(!af__sym_tiled_first_flush_allowed(n, a, k, 0));
    k[2] = 1.0;
    a[3] = NAN;
    cr_expect(!af__sym_tiled_first_flush_allowed(n, a, k, 0));
}

/* The per-thread tiles: two threads, a cloud large enough for a team. */
Test(backend_tiled, two_threads_match_dense)
{
    omp_set_num_threads(2);
    const size_t n = 300, d = 2;
    double *X = cloud(n, d, 5, 1.0);
    for (int norm = 0; norm < 2; norm++) {
        af_flow_params p = af_flow_params_default(n, d);
        p.norm = norm ? AF_FLOW_SINKHORN : AF_FLOW_SOFTMAX;
        p.scores.kind = AF_SCORES_L2;
        p.scores.eps = 0.1;
        p.sinkhorn.tol = 1e-10;
        p.integrator = AF_FLOW_EULER;
        same_flow(&p, X, 3, 0.01, 1e-12, norm ? "2 threads sinkhorn" : "2 threads softmax");
    }
    free(X);
    omp_set_num_threads(1);
}

/* Self-scores, d = 2: the upper-triangle pass (each exp serving row i
 * and row j, no running maximum; softmax_sym_tiled.c) with two threads and
 * n = 1100, not a multiple of its 16-row blocks or 512-column tiles, at an
 * eps where many terms are flushed (score range ~ 200 at eps 0.05);
 * SoftMax and USA against the dense backend. */
Test(backend_tiled, symmetric_l2_pass_matches_dense)
{
    omp_set_num_threads(2);
    const size_t n = 1100, d = 2;
    double *X = cloud(n, d, 31, 2.0);
    for (int usa = 0; usa < 2; usa++)
        for (int e = 0; e < 2; e++) {
            af_flow_params p = af_flow_params_default(n, d);
            p.scores.kind = AF_SCORES_L2;
            p.scores.eps = e ? 0.05 : 0.5;
            p.scores.beta = usa ? 0.3 : 1.0;
            p.usa = usa;
            p.integrator = AF_FLOW_EULER;
            char what[64];
            snprintf(what, sizeof what, "symmetric L2 usa %d eps %g", usa, p.scores.eps);
            same_flow(&p, X, 2, 0.01, 1e-12, what);
        }
    /* SoftMax on dot scores with A = I: the same pass with column weights
     * (score range ~ 16 and ~ 160) */
    for (int e = 0; e < 2; e++) {
        af_flow_params p = af_flow_params_default(n, d);
        p.scores.eps = e ? 0.05 : 0.5;
        p.integrator = AF_FLOW_EULER;
        char what[64];
        snprintf(what, sizeof what, "symmetric dot eps %g", p.scores.eps);
        same_flow(&p, X, 2, 0.01, 1e-12, what);
    }
    free(X);
    omp_set_num_threads(1);
}

/* Sinkhorn with one normalisation against SoftMax on the tiled backend,
 * compared bit for bit, at the given precision. */
static void check_count_one(af_precision prec)
{
    for (int kind = 0; kind < 2; kind++) {
        double *X = cloud(N, D, 6, 1.5);
        af_flow_params p = af_flow_params_default(N, D);
        p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
        p.scores.A = A_gen;
        p.precision = prec;
        af_flow_ws *ws = alloc_on(p, af_backend_tiled);
        p.norm = AF_FLOW_SINKHORN;
        p.sinkhorn.iters = 1;
        af_flow_ws *wk = alloc_on(p, af_backend_tiled);
        double vs[N * D], vk[N * D];
        cr_assert(af_flow_velocity(ws, X, vs) == AF_SUCCESS);
        cr_assert(af_flow_velocity(wk, X, vk) == AF_SUCCESS);
        cr_expect(memcmp(vs, vk, sizeof vs) == 0, "precision %d kind %d: one normalisation "
                  "differs from SoftMax by %.3g", (int)prec, kind, fx_max_abs_diff(N * D, vs, vk));
        af_flow_free(ws);
        af_flow_free(wk);
        free(X);
    }
}

Test(backend_tiled, one_normalisation_is_softmax_bit_for_bit)
{
    check_count_one(AF_PRECISION_DOUBLE);
}

/* The same with d = 2, two threads, n = 1100: on L2 self-scores and dot
 * scores with A = I (the symmetric SoftMax pass: the one-normalisation
 * output must take it too) and on dot scores with a general A (single
 * precision: the float tile step, which the output must reach with g = 0
 * as no g). */
static void check_count_one_d2(af_precision prec)
{
    omp_set_num_threads(2);
    const size_t n = 1100, d = 2;
    static const double A2[4] = {0.9, 0.4, -0.3, 1.1};
    double *X = cloud(n, d, 8, 1.5);
    for (int l2 = 0; l2 < 3; l2++) { /* dot with A, L2, dot with A = I */
        af_flow_params p = af_flow_params_default(n, d);
        p.scores.kind = l2 == 1 ? AF_SCORES_L2 : AF_SCORES_DOT;
        p.scores.A = l2 == 0 ? A2 : NULL;
        p.scores.eps = 0.1;
        p.precision = prec;
        af_flow_ws *ws = alloc_on(p, af_backend_tiled);
        p.norm = AF_FLOW_SINKHORN;
        p.sinkhorn.iters = 1;
        af_flow_ws *wk = alloc_on(p, af_backend_tiled);
        double *vs = malloc(n * d * sizeof *vs), *vk = malloc(n * d * sizeof *vk);
        cr_assert(af_flow_velocity(ws, X, vs) == AF_SUCCESS);
        cr_assert(af_flow_velocity(wk, X, vk) == AF_SUCCESS);
        cr_expect(memcmp(vs, vk, n * d * sizeof *vs) == 0, "precision %d l2 %d: one "
                  "normalisation differs from SoftMax by %.3g", (int)prec, l2,
                  fx_max_abs_diff(n * d, vs, vk));
        af_flow_free(ws);
        af_flow_free(wk);
        free(vs), free(vk);
    }
    free(X);
    omp_set_num_threads(1);
}

Test(backend_tiled, one_normalisation_is_d2_softmax_bit_for_bit)
{
    check_count_one_d2(AF_PRECISION_DOUBLE);
}

/* Potentials and paths: alternating (log space), symmetric (scaling form
 * on regenerated triangles), and at small eps the symmetric log fallback
 * (the diagonal deficit leaves the scaling form's range) on both. */
Test(backend_tiled, potentials_match_dense)
{
    double *X = cloud(N, D, 7, 1.0);
    for (int sym = 0; sym < 3; sym++) {
        af_attn_params ap = af_attn_params_default(N, D);
        ap.norm = AF_ATTN_SINKHORN;
        ap.scores.A = sym ? A_sym : A_gen;
        ap.scores.eps = sym == 2 ? 0.0005 : 1.0;
        af_attn_ws *d = af_attn_alloc(af_backend_dense, &ap);
        af_attn_ws *t = af_attn_alloc(af_backend_tiled, &ap);
        cr_assert(d && t, "%s", af_last_error());
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.tol = 1e-12;
        af_sinkhorn_info id, it;
        cr_assert(af_attn_sinkhorn(d, X, &o, &id) == AF_SUCCESS, "%s", af_last_error());
        cr_assert(af_attn_sinkhorn(t, X, &o, &it) == AF_SUCCESS, "%s", af_last_error());
        cr_expect_eq(id.iterations, it.iterations);
        const char *pd = af_sinkhorn_type_name(id.path), *pt = af_sinkhorn_type_name(it.path);
        cr_expect_eq(strstr(pd, "symmetric") != NULL, sym > 0, "%s", pd);
        cr_expect_eq(strstr(pt, "symmetric") != NULL, sym > 0, "%s", pt);
        cr_expect_eq(strstr(pd, "log") != NULL, sym == 2, "sym %d: dense path %s", sym, pd);
        cr_expect_eq(strstr(pt, "log") != NULL, sym != 1, "sym %d: tiled path %s", sym, pt);
        double ef = fx_max_abs_diff(N, af_attn_f(d), af_attn_f(t));
        double eg = fx_max_abs_diff(N, af_attn_g(d), af_attn_g(t));
        cr_expect(ef < 1e-11 && eg < 1e-11, "sym %d: potentials differ by %.3g, %.3g", sym, ef,
                  eg);
        cr_expect(it.row_err <= 1e-12 && it.col_err <= 1e-12);
        af_attn_free(d);
        af_attn_free(t);
    }
    free(X);
}

/* K X of the tiled Sinkhorn against the dense kernel written out: the rows
 * and columns of the dense K sum to 1, and K X agrees. */
Test(backend_tiled, apply_matches_dense_kernel_times_x)
{
    double *X = cloud(N, D, 8, 1.0);
    af_attn_params ap = af_attn_params_default(N, D);
    ap.norm = AF_ATTN_SINKHORN;
    ap.scores.kind = AF_SCORES_L2;
    af_attn_ws *d = af_attn_alloc(af_backend_dense, &ap), *t = af_attn_alloc(af_backend_tiled, &ap);
    cr_assert(d && t);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-13;
    double *K = malloc(N * N * sizeof *K), KX[N * D], ref[N * D];
    cr_assert(af_attn_kernel(d, X, &o, K) == AF_SUCCESS, "%s", af_last_error());
    cr_assert(af_attn_sinkhorn(t, X, &o, NULL) == AF_SUCCESS, "%s", af_last_error());
    cr_assert(af_attn_apply(t, KX) == AF_SUCCESS);
    for (size_t i = 0; i < N; i++) {
        double row = 0, col = 0;
        for (size_t j = 0; j < N; j++)
            row += K[i * N + j], col += K[j * N + i];
        cr_expect(fabs(row - 1) < 1e-12 && fabs(col - 1) < 1e-12);
        for (size_t k = 0; k < D; k++) {
            double s = 0;
            for (size_t j = 0; j < N; j++)
                s += K[i * N + j] * X[j * D + k];
            ref[i * D + k] = s;
        }
    }
    double e = fx_max_abs_diff(N * D, KX, ref);
    cr_expect(e < 1e-12, "tiled K X vs dense K times X: %.3g", e);
    free(K);
    free(X);
    af_attn_free(d);
    af_attn_free(t);
}

/* The symmetric tiled passes carry K X only when they guess they are the
 * last; a solve that converges a pass earlier than guessed gets K X from
 * one more pass that changes nothing else. Over a sweep of tolerances both
 * cases occur, and K X matches the dense backend's each time: at d = 2 on
 * the upper-triangle kernel (n = 301: a last block of 13 rows, one past
 * the four-row groups), at d = 3 on the general tiled pass. */
static void product_with_and_without_carry(size_t n, size_t d)
{
    double *X = cloud(n, d, 17, 2.0);
    af_attn_params ap = af_attn_params_default(n, d);
    ap.norm = AF_ATTN_SINKHORN;
    ap.scores.kind = AF_SCORES_L2;
    ap.scores.eps = 0.5;
    af_attn_ws *dn = af_attn_alloc(af_backend_dense, &ap), *tl = af_attn_alloc(af_backend_tiled, &ap);
    cr_assert(dn && tl, "%s", af_last_error());
    double *kd = malloc(n * d * sizeof *kd), *kt = malloc(n * d * sizeof *kt);
    int carried = 0, extra = 0;
    for (double tol = 0.9; tol > 1e-13; tol /= 3) {
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.tol = tol;
        cr_assert(af_attn_sinkhorn(dn, X, &o, NULL) == AF_SUCCESS, "%s", af_last_error());
        cr_assert(af_attn_sinkhorn(tl, X, &o, NULL) == AF_SUCCESS, "%s", af_last_error());
        cr_assert(tl->sk->type == &af_sinkhorn_type_sym_tiled, "d %zu tol %g: %s path", d, tol,
                  tl->sk->type->name);
        cr_assert_eq(tl->sk->symt_last_pass == 2, d == 2, "d %zu: the kernel pass %s", d,
                     d == 2 ? "expected" : "not expected");
        if (tl->sk->symk_product)
            carried++;
        else
            extra++;
        cr_assert(af_attn_apply(dn, kd) == AF_SUCCESS && af_attn_apply(tl, kt) == AF_SUCCESS);
        const double e = fx_max_abs_diff(n * d, kd, kt);
        cr_expect(e < 1e-12, "d %zu tol %g: tiled K X differs from dense by %.3g", d, tol, e);
    }
    cr_expect(carried > 0 && extra > 0, "d %zu: K X carried by the last pass %d times, by an "
              "extra pass %d times: both should occur", d, carried, extra);
    free(kd), free(kt), free(X);
    af_attn_free(dn);
    af_attn_free(tl);
}

Test(backend_tiled, sinkhorn_product_whether_or_not_the_last_pass_carried_it)
{
    product_with_and_without_carry(301, 2);
    product_with_and_without_carry(301, 3);
}

Test(backend_tiled, what_needs_the_matrix_is_refused)
{
    double *X = cloud(N, D, 9, 1.0);
    for (int norm = 0; norm < 2; norm++) {
        af_flow_params p = af_flow_params_default(N, D);
        p.norm = norm ? AF_FLOW_SINKHORN : AF_FLOW_SOFTMAX;
        af_flow_ws *ws = alloc_on(p, af_backend_tiled);
        double *K = malloc(N * N * sizeof *K);
        cr_expect_eq(af_flow_kernel(ws, X, K), AF_EINVAL);
        cr_expect(strstr(af_last_error(), "tiled") && strstr(af_last_error(), "dense"), "%s",
                  af_last_error());
        free(K);
        af_flow_free(ws);
    }
    af_attn_params ap = af_attn_params_default(N, D);
    ap.norm = AF_ATTN_SINKHORN;
    af_attn_ws *t = af_attn_alloc(af_backend_tiled, &ap);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.compute_bound = 2; /* exact Hilbert diameter: O(n^2) scores at once */
    cr_expect_eq(af_attn_sinkhorn(t, X, &o, NULL), AF_EINVAL);
    cr_expect(strstr(af_last_error(), "Hilbert") != NULL, "%s", af_last_error());
    o.compute_bound = 1; /* the O(n m) upper bound is fine */
    af_sinkhorn_info info;
    cr_expect_eq(af_attn_sinkhorn(t, X, &o, &info), AF_SUCCESS, "%s", af_last_error());
    cr_expect(isfinite(info.hilbert_diam) && !info.bound_exact);
    af_attn_free(t);
    free(X);
}

/* O(n (d + threads)) with small constants: at most 8 n (4 d + 4 T (d + 1)
 * + 16) bytes (T threads: per-thread rows and column accumulators). */
static double linear_bound(double n, double d, double T)
{
    return 8.0 * n * (4 * d + 4 * T * (d + 1) + 16);
}

/* The allocation formula, evaluated without allocating: tiled memory grows
 * linearly in n (n = 1e6, d = 2: 256 MB with 2 threads, 1 GB with 16),
 * dense Sinkhorn quadratically (16 TB). */
Test(backend_tiled, workspace_is_linear_in_n)
{
    for (int norm = 0; norm < 3; norm++) {
        double b6 = af_backend_bytes(af_backend_tiled, 1000000, 2, (af_attn_norm)norm, 16);
        double b5 = af_backend_bytes(af_backend_tiled, 100000, 2, (af_attn_norm)norm, 16);
        cr_expect(b6 < linear_bound(1e6, 2, 16), "norm %d: %.3g bytes", norm, b6);
        cr_expect(fabs(b6 / b5 - 10) < 0.01, "norm %d: ratio %.4f", norm, b6 / b5);
        double bd = af_backend_bytes(af_backend_tiled, 1000000, 64, (af_attn_norm)norm, 1);
        cr_expect(bd < linear_bound(1e6, 64, 1), "d = 64: %.3g bytes", bd);
    }
    cr_expect(af_backend_bytes(af_backend_tiled, 1000000, 2, AF_ATTN_SINKHORN, 2) < 3e8);
    double dense = af_backend_bytes(af_backend_dense, 1000000, 2, AF_ATTN_SINKHORN, 16);
    cr_expect(dense > 16e12, "dense Sinkhorn n = 1e6: %.3g bytes", dense);
    cr_expect(af_backend_choose(1000, 2, AF_ATTN_SINKHORN, 2, 1e9) == af_backend_dense);
    cr_expect(af_backend_choose(100000, 2, AF_ATTN_SINKHORN, 2, 1e9) == af_backend_tiled);
}

Test(backend, names)
{
    const af_backend_type *b;
    cr_expect(af_backend_from_name("tiled", &b) == AF_SUCCESS && b == af_backend_tiled);
    cr_expect(af_backend_from_name("dense", &b) == AF_SUCCESS && b == af_backend_dense);
    cr_expect(af_backend_from_name("fast", &b) == AF_EINVAL);
    cr_expect_str_eq(af_backend_name(af_backend_tiled), "tiled");
}

/* The OT energy F_n and its gradient (envelope formula: K X, K^T X, row and
 * column sums) in one tiled pass, against the dense K written out. */
Test(backend_tiled, energy_and_gradient_match_dense)
{
    double *X = cloud(N, D, 10, 1.0);
    for (int kind = 0; kind < 2; kind++) {
        af_energy_params ep = af_energy_params_default();
        ep.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
        ep.scores.A = kind ? NULL : A_sym;
        ep.scores.eps = 0.5;
        af_energy_ws *d = af_energy_alloc_backend(N, D, af_backend_dense);
        af_energy_ws *t = af_energy_alloc_backend(N, D, af_backend_tiled);
        cr_assert(d && t, "%s", af_last_error());
        double Fd, Ft, gd[N * D], gt[N * D];
        for (int call = 0; call < 2; call++) { /* cold, then warm-started */
            cr_assert(af_energy(d, &ep, X, &Fd, gd) == AF_SUCCESS, "%s", af_last_error());
            cr_assert(af_energy(t, &ep, X, &Ft, gt) == AF_SUCCESS, "%s", af_last_error());
            cr_expect(fabs(Fd - Ft) < 1e-12, "kind %d: F %.17g vs %.17g", kind, Fd, Ft);
            double e = fx_max_abs_diff(N * D, gd, gt);
            cr_expect(e < 1e-12, "kind %d: gradients differ by %.3g", kind, e);
            cr_expect_eq(af_energy_iterations(d), af_energy_iterations(t));
            X[0] += 1e-3; /* a nearby cloud for the warm start */
        }
        af_energy_free(d);
        af_energy_free(t);
    }
    free(X);
}

Test(backend_tiled, observables_match_dense)
{
    double *X = cloud(N, D, 11, 1.0);
    af_obs_params op = af_obs_params_default(N, D);
    op.scores.kind = AF_SCORES_L2;
    op.backend = af_backend_dense;
    af_obs_ws *d = af_obs_alloc(&op);
    op.backend = af_backend_tiled;
    af_obs_ws *t = af_obs_alloc(&op);
    cr_assert(d && t, "%s", af_last_error());
    af_obs_values vd, vt;
    cr_assert(af_obs_compute(d, X, NULL, &vd) == AF_SUCCESS, "%s", af_last_error());
    cr_assert(af_obs_compute(t, X, NULL, &vt) == AF_SUCCESS, "%s", af_last_error());
    cr_expect(fabs(vd.colsum_err - vt.colsum_err) < 1e-13, "%.17g vs %.17g", vd.colsum_err,
              vt.colsum_err);
    cr_expect(vd.colsum_err > 1e-3); /* SoftMax columns are not normalised: a real check */
    cr_expect(fabs(vd.energy - vt.energy) < 1e-12, "%.17g vs %.17g", vd.energy, vt.energy);
    cr_expect_eq(vd.energy_iters, vt.energy_iters);
    cr_expect_eq(vd.clusters, vt.clusters);
    af_obs_free(d);
    af_obs_free(t);
    free(X);
}

/* ---- single precision (float32 exps and SoftMax/USA scores, sums accumulated in double) ---- */

static double rel_err(size_t m, const double *a, const double *ref)
{
    double e = 0, s = 0;
    for (size_t k = 0; k < m; k++) {
        e = fmax(e, fabs(a[k] - ref[k]));
        s = fmax(s, fabs(ref[k]));
    }
    return e / s;
}

Test(backend_single, one_normalisation_is_single_softmax_bit_for_bit)
{
    check_count_one(AF_PRECISION_SINGLE);
}

Test(backend_single, one_normalisation_is_d2_single_softmax_bit_for_bit)
{
    check_count_one_d2(AF_PRECISION_SINGLE);
}

/* Single against double precision on backend b, for Sinkhorn (single run to
 * tol 1e-7, above the alternating path's floor of ~1e-8, README), and on
 * the dense backend also SoftMax (USA too when usa), L2 / dot scores: the
 * README bound, velocity relative error below 1e-7 (float32 rounding of
 * each exp is 6e-8 relative, its rounded argument adds |C_ij| 6e-8 on terms
 * weighted by exp(C_ij); scores and sums are double), and not 0 (the mode
 * really is single). The tiled SoftMax / USA passes form their scores in
 * float too: their own, larger bound is single_error_bound below. */
static void check_single_velocity(const af_backend_type *b, size_t n, unsigned long seed, int usa)
{
    const size_t d = 2;
    double *X = cloud(n, d, seed, 1.0);
    double *vs = malloc(n * d * sizeof *vs), *vd = malloc(n * d * sizeof *vd);
    for (int norm = 0; norm < (usa ? 3 : 2); norm++)
        for (int kind = 0; kind < 2; kind++) {
            if (norm != 1 && (b == af_backend_tiled || kind == 1))
                continue; /* float scores (tiled; dense L2): check_single_with */
            af_flow_params p = af_flow_params_default(n, d);
            p.norm = norm == 1 ? AF_FLOW_SINKHORN : AF_FLOW_SOFTMAX;
            p.usa = norm == 2;
            p.scores.kind = kind ? AF_SCORES_L2 : AF_SCORES_DOT;
            p.scores.A = kind ? NULL : A_gen + 0; /* 2 x 2 block of a general A */
            p.scores.eps = 0.2;
            p.sinkhorn.tol = 1e-10;
            af_flow_ws *wd = alloc_on(p, b);
            p.precision = AF_PRECISION_SINGLE;
            p.sinkhorn.tol = 1e-7;
            af_flow_ws *ws = alloc_on(p, b);
            cr_assert(af_flow_velocity(wd, X, vd) == AF_SUCCESS, "%s", af_last_error());
            cr_assert(af_flow_velocity(ws, X, vs) == AF_SUCCESS, "%s", af_last_error());
            double e = rel_err(n * d, vs, vd);
            cr_expect(e < 1e-7 && e > 0, "%s norm %d kind %d: relative error %.3g",
                      af_backend_name(b), norm, kind, e);
            af_flow_free(wd);
            af_flow_free(ws);
        }
    free(vs);
    free(vd);
    free(X);
}

Test(backend_single, velocity_within_documented_bound)
{
    check_single_velocity(af_backend_tiled, 200, 13, 0);
}

/* The error bound of the float passes (softmax_sym_tiled.c for L2
 * self-scores, dot_tile_float in backend_tiled.c for dot scores; docs),
 * first order in the float unit roundoff u = 2^-24, term by term. A term
 * e_ij = exp(C_ij - m_i) (m_i: the row maximum for SoftMax on dot scores,
 * else 0) is perturbed relatively by at most r_ij = u times
 *   L2, C_ij = -(s/2) |x_i - x_j|^2 (j != i; the diagonal is exact):
 *     s sum_k |x_ik - x_jk| (|x_ik| + |x_jk|)  coordinates rounded to float,
 *                                  each difference moved by u (|x_ik| + |x_jk|)
 *     + 6 |C_ij|                   subtractions (2 u |C|), squares, sum, h;
 *   dot, C_ij = s L_i . x_j (L = X A):
 *     4 s sum_k |L_ik x_jk|        s L_ik and x_jk rounded to float, the
 *                                  product and the fused sum
 *     + |C_ij - m_i|               the shifted argument rounded;
 *   dot with A = I on the symmetric pass (sym: when the range of s |x|^2
 *   allows, the rule of af__tiled_sym_prepare), terms E_ij w_j with
 *   E_ij = exp(-(s/2) |x_i - x_j|^2): the L2 terms with C_ij replaced by
 *   that exponent, + 2 for w_j rounded to float and the product E_ij w_j
 *   (the diagonal, w_i in double, is exact to double rounding);
 *   and in both
 *     + 4                          expf (within 2 ulp)
 *     + 512                        float additions after it: at most
 *                                  511 in a tile's row sum (512 terms, in
 *                                  any order: whatever the vector width,
 *                                  scalar builds included), 16 in an L2
 *                                  block's column sum; then doubles
 *     + 2                          the float coordinate of a K X term and
 *                                  its product;
 * a term with C_ij - m_i < -86 may be flushed: r_ij = 1. SoftMax
 * v_i = N_i / S_i then moves by at most sum_j w_ij r_ij (|x_jk| + |v_ik|)
 * (w = e / S), USA v_i = N_i / n by (1 / n) sum_j e_ij r_ij |x_jk|. The
 * factor 1.01 covers the second-order terms (r_ij < 1e-4 unless flushed).
 * (The 16-lane sums of an AVX-512 build add at most 512 / 16 + 15 + 4
 * times after a term; the bound does not count on it.)
 * Fills bound (n x 2) and checks that vd is the velocity the bound is
 * about (K X from the double pass, to 1e-12). A: 2 x 2 (dot) or NULL. */
static void single_error_bound(size_t n, const double *X, int l2, const double *A, double s,
                               int usa, const double *vd, double *bound)
{
    const double u = 0x1p-24;
    double qmin = INFINITY, qmax = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        const double q = s * (X[2 * j] * X[2 * j] + X[2 * j + 1] * X[2 * j + 1]);
        qmin = fmin(qmin, q), qmax = fmax(qmax, q);
    }
    const int sym = l2 || (!A && !usa && 0.5 * (qmax - qmin) <= 87 - log((double)n) - 30 * M_LN2);
    double *L = malloc(2 * n * sizeof *L);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            L[2 * i + k] = A ? X[2 * i] * A[k] + X[2 * i + 1] * A[2 + k] : X[2 * i + k];
    for (size_t i = 0; i < n; i++) {
        double m = 0;
        for (size_t j = 0; !l2 && !usa && j < n; j++)
            m = fmax(j ? m : -INFINITY, s * (L[2 * i] * X[2 * j] + L[2 * i + 1] * X[2 * j + 1]));
        double S = 0, KX[2] = {0, 0}, B[2] = {0, 0}, Bv = 0;
        for (size_t j = 0; j < n; j++) {
            const double d0 = X[2 * i] - X[2 * j], d1 = X[2 * i + 1] - X[2 * j + 1];
            const double p0 = s * fabs(L[2 * i] * X[2 * j]), p1 = s * fabs(L[2 * i + 1] * X[2 * j + 1]);
            const double C = l2 ? -0.5 * s * (d0 * d0 + d1 * d1)
                                : s * (L[2 * i] * X[2 * j] + L[2 * i + 1] * X[2 * j + 1]);
            const double e = exp(C - m), E = -0.5 * s * (d0 * d0 + d1 * d1);
            double r = 0;
            if (sym ? E < -86 : C - m < -86)
                r = 1.0;
            else if (sym && j != i)
                r = u * (s * (fabs(d0) * (fabs(X[2 * i]) + fabs(X[2 * j]))
                              + fabs(d1) * (fabs(X[2 * i + 1]) + fabs(X[2 * j + 1])))
                         + 6 * fabs(E) + 4 + 512 + 2 + (l2 ? 0 : 2));
            else if (!sym)
                r = u * (4 * (p0 + p1) + fabs(C - m) + 4 + 512 + 2);
            S += e;
            Bv += e * r;
            for (int k = 0; k < 2; k++) {
                KX[k] += e * X[2 * j + k];
                B[k] += e * r * fabs(X[2 * j + k]);
            }
        }
        for (int k = 0; k < 2; k++) {
            const double v = usa ? KX[k] / (double)n : KX[k] / S;
            cr_assert(fabs(vd[2 * i + k] - v) <= 1e-12 * (1 + fabs(v)), "token %zu: %.17g vs %.17g",
                      i, vd[2 * i + k], v);
            bound[2 * i + k] = 1.01 * (usa ? B[k] / (double)n : (B[k] + Bv * fabs(v)) / S);
        }
    }
    free(L);
}

/* Single against double on the float passes, checked component by
 * component against single_error_bound; and the single result is not
 * double's (the mode really is single). */
static const double A_gen2[4] = {0.9, 0.4, -0.3, 1.1};

static void check_single_with_on(const af_backend_type *b, size_t n, int l2, const double *A,
                                 double eps, double beta, int usa, unsigned long seed,
                                 double scale)
{
    const size_t d = 2;
    double *X = cloud(n, d, seed, scale);
    double *vs = malloc(n * d * sizeof *vs), *vd = malloc(n * d * sizeof *vd);
    double *bound = malloc(n * d * sizeof *bound);
    af_flow_params p = af_flow_params_default(n, d);
    p.scores.kind = l2 ? AF_SCORES_L2 : AF_SCORES_DOT;
    p.scores.A = A;
    p.scores.eps = eps;
    p.scores.beta = beta;
    p.usa = usa;
    af_flow_ws *wd = alloc_on(p, b);
    p.precision = AF_PRECISION_SINGLE;
    af_flow_ws *ws = alloc_on(p, b);
    cr_assert(af_flow_velocity(wd, X, vd) == AF_SUCCESS, "%s", af_last_error());
    cr_assert(af_flow_velocity(ws, X, vs) == AF_SUCCESS, "%s", af_last_error());
    single_error_bound(n, X, l2, p.scores.A, beta / eps, usa, vd, bound);
    size_t worst = 0;
    double ratio = 0;
    for (size_t k = 0; k < n * d; k++)
        if (fabs(vs[k] - vd[k]) > ratio * bound[k])
            ratio = fabs(vs[k] - vd[k]) / bound[k], worst = k;
    cr_expect(ratio <= 1.0, "n %zu l2 %d eps %g usa %d: component %zu off by %.3g, bound %.3g", n,
              l2, eps, usa, worst, fabs(vs[worst] - vd[worst]), bound[worst]);
    cr_expect(fx_max_abs_diff(n * d, vs, vd) > 0, "single equals double");
    af_flow_free(wd);
    af_flow_free(ws);
    free(vs), free(vd), free(bound), free(X);
}

static void check_single_with(size_t n, int l2, const double *A, double eps, double beta, int usa,
                              unsigned long seed, double scale)
{
    check_single_with_on(af_backend_tiled, n, l2, A, eps, beta, usa, seed, scale);
}

static void check_single(size_t n, int l2, double eps, double beta, int usa, unsigned long seed,
                         double scale)
{
    check_single_with(n, l2, l2 ? NULL : A_gen2, eps, beta, usa, seed, scale);
}

/* SoftMax on dot scores with A (NULL: I). */
static void check_single_a(size_t n, double eps, const double *A, unsigned long seed, double scale)
{
    check_single_with(n, 0, A, eps, 1.0, 0, seed, scale);
}

/* SoftMax and USA on L2 and dot scores (a general A), two threads,
 * n = 1100 (several blocks and tiles), near and far scores. */
Test(backend_single, float_passes_within_error_bound)
{
    omp_set_num_threads(2);
    for (int usa = 0; usa < 2; usa++)
        for (int e = 0; e < 2; e++) {
            check_single(1100, 1, e ? 0.05 : 0.5, 1.0, usa, 13, 2.0);
            /* USA on dot scores: beta small enough for float exp(C) */
            check_single(1100, 0, e ? 0.05 : 0.5, usa ? 0.02 : 1.0, usa, 14, 2.0);
        }
    /* dot scores with A = I: the symmetric pass (eps 0.5: range of s |x|^2
     * ~ 16), the general one (eps 0.05: ~ 160, too wide for float weights) */
    for (int e = 0; e < 2; e++)
        check_single_a(1100, e ? 0.05 : 0.5, NULL, 15, 2.0);
    omp_set_num_threads(1);
}

/* Float exp arguments below -87 (eps small, L2 scores): flushed to 0 in
 * the tiled pass; still within the error bound. */
Test(backend_single, flushed_far_terms_within_error_bound)
{
    check_single(600, 1, 0.01, 1.0, 0, 23, 1.0); /* score range ~800 */
}

/* Equiangular tokens on the sphere (n = 8, d = 8, beta = 1, rho0 = 0.1):
 * rho(3) = 0.9860205734 (THEORY.md); single precision stays within 1e-9 of
 * it (README: measured error). */
Test(backend_single, equiangular_ode_within_documented_bound)
{
    const size_t n = 8, d = 8;
    af_init_params ip = af_init_params_default();
    ip.kind = AF_INIT_EQUIANGULAR;
    ip.n = n;
    ip.d = d;
    ip.rho0 = 0.1;
    double X[64];
    cr_assert(af_init_cloud(&ip, NULL, X) == AF_SUCCESS);
    af_flow_params p = af_flow_params_default(n, d);
    p.geometry = AF_FLOW_SPHERE;
    p.precision = AF_PRECISION_SINGLE;
    af_flow_ws *ws = alloc_on(p, af_backend_tiled);
    cr_assert(af_flow_integrate(ws, X, 3.0, 0.01) == AF_SUCCESS, "%s", af_last_error());
    double e = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double s = 0;
            for (size_t k = 0; k < d; k++)
                s += X[i * d + k] * X[j * d + k];
            e = fmax(e, fabs(s - 0.9860205734));
        }
    cr_expect(e < 1e-9, "max |<x_i, x_j> - rho(3)| = %.3g", e);
    af_flow_free(ws);
}

/* The dense backend in single precision: SoftMax and USA on dot scores
 * (the d = 2 row kernel), and Sinkhorn (the L2 kernel built from the
 * tokens, stored as float32, and the stored-score paths for dot scores);
 * n = 203 leaves a partial block of rows. */
Test(backend_single, dense_within_documented_bound)
{
    check_single_velocity(af_backend_dense, 203, 17, 1);
}

/* Dense SoftMax and USA on L2 self-scores at d = 2 take the tiled
 * backend's float pass in single precision: the same error bound, two
 * threads, n not a multiple of the block or tile, near and far terms. */
Test(backend_single, dense_l2_float_pass_within_error_bound)
{
    omp_set_num_threads(2);
    for (int usa = 0; usa < 2; usa++) {
        check_single_with_on(af_backend_dense, 1100, 1, NULL, 0.05, 1.0, usa, 31, 1.0);
        check_single_with_on(af_backend_dense, 203, 1, NULL, 0.2, 1.0, usa, 17, 1.0);
    }
}

/* The kernel written out and the SoftMax column sums honour single
 * precision too: rows sum to 1, within the bound of the double kernel; the
 * Sinkhorn kernel written from the float32 triangle is balanced. */
Test(backend_single, dense_kernel_and_colsums_within_documented_bound)
{
    const size_t n = 60, d = 2;
    double *X = cloud(n, d, 19, 1.0), K[2][60 * 60], cs[2][60];
    for (int prec = 0; prec < 2; prec++) {
        af_attn_params ap = af_attn_params_default(n, d);
        ap.scores.kind = AF_SCORES_L2;
        ap.scores.eps = 0.2;
        ap.precision = (af_precision)prec;
        af_attn_ws *w = af_attn_alloc(af_backend_dense, &ap);
        cr_assert(w, "%s", af_last_error());
        cr_assert(af_attn_kernel(w, X, NULL, K[prec]) == AF_SUCCESS, "%s", af_last_error());
        cr_assert(af_attn_softmax_colsums(w, X, cs[prec]) == AF_SUCCESS, "%s", af_last_error());
        af_attn_free(w);
    }
    double re, ce;
    fx_marginal_errors(n, n, K[1], &re, &ce);
    cr_expect(re < 1e-14, "single kernel rows sum to 1 (%.3g)", re);
    double ek = rel_err(n * n, K[1], K[0]), ec = rel_err(n, cs[1], cs[0]);
    cr_expect(ek < 1e-7 && ek > 0 && ec < 1e-7 && ec > 0, "kernel %.3g, column sums %.3g", ek, ec);
    /* the Sinkhorn kernel from the float32 triangle: balanced to the tolerance */
    af_attn_params ap = af_attn_params_default(n, d);
    ap.norm = AF_ATTN_SINKHORN;
    ap.scores.kind = AF_SCORES_L2;
    ap.scores.eps = 0.2;
    ap.precision = AF_PRECISION_SINGLE;
    af_attn_ws *w = af_attn_alloc(af_backend_dense, &ap);
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.compute_bound = 0;
    o.tol = 1e-12; /* the symmetric path balances the float-rounded kernel exactly */
    cr_assert(w && af_attn_kernel(w, X, &o, K[0]) == AF_SUCCESS, "%s", af_last_error());
    cr_expect(af__sym_kernel_product(w->sk) != NULL, "the kernel built from the tokens");
    fx_marginal_errors(n, n, K[0], &re, &ce);
    cr_expect(re < 1e-11 && ce < 1e-11, "single Sinkhorn kernel marginals %.3g %.3g", re, ce);
    af_attn_free(w);
    free(X);
}

/* ---- the particle-mesh backend (af_backend_pm) ---- */

/* Scores PM can take: L2 (eps 0.3) or dot with A = 0.8 I (A must hold d x d). */
static af_attn_params pm_params(size_t n, size_t d, int l2, double *A, af_attn_norm norm,
                                double tol)
{
    af_attn_params ap = af_attn_params_default(n, d);
    memset(A, 0, d * d * sizeof *A);
    for (size_t k = 0; k < d; k++)
        A[k * d + k] = 0.8;
    ap.scores.kind = l2 ? AF_SCORES_L2 : AF_SCORES_DOT;
    ap.scores.eps = l2 ? 0.3 : 1.0;
    ap.scores.A = l2 ? NULL : A;
    ap.norm = norm;
    ap.pm_tol = tol;
    return ap;
}

/* K X of a workspace: SoftMax, or a Sinkhorn solve with opt and apply. */
static void attend_kx(af_attn_ws *ws, const double *X, const af_sinkhorn_options *opt,
                      double *KX, af_sinkhorn_info *info)
{
    if (!opt) {
        cr_assert_eq(af_attn_softmax(ws, X, KX), AF_SUCCESS, "%s", af_last_error());
        return;
    }
    cr_assert_eq(af_attn_sinkhorn(ws, X, opt, info), AF_SUCCESS, "%s", af_last_error());
    cr_assert_eq(af_attn_apply(ws, KX), AF_SUCCESS, "%s", af_last_error());
}

/* SoftMax K X and Sinkhorn K X (to 1e-12) on the pm backend against the
 * dense ones, d = 1, 2, 3, L2 and dot scores: within the PM tolerance, and
 * the tolerance controls the error (1e-9 gives a thousand times less than 1e-5). */
Test(backend_pm, softmax_and_sinkhorn_match_dense)
{
    const size_t n = 120;
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-12;
    for (size_t d = 1; d <= 3; d++)
        for (int l2 = 0; l2 < 2; l2++)
            for (int sk = 0; sk < 2; sk++) {
                double *X = cloud(n, d, 60 + d, 1.0), A[9];
                double *ref = malloc(n * d * sizeof *ref), *KX = malloc(n * d * sizeof *KX);
                const af_attn_norm norm = sk ? AF_ATTN_SINKHORN : AF_ATTN_SOFTMAX;
                af_attn_params ap = pm_params(n, d, l2, A, norm, 0);
                af_attn_ws *wd = af_attn_alloc(af_backend_dense, &ap);
                cr_assert(wd, "%s", af_last_error());
                attend_kx(wd, X, sk ? &o : NULL, ref, NULL);
                double e[2];
                const double tols[2] = {1e-5, 1e-9};
                for (int t = 0; t < 2; t++) {
                    ap.pm_tol = tols[t];
                    af_attn_ws *wp = af_attn_alloc(af_backend_pm, &ap);
                    cr_assert(wp, "%s", af_last_error());
                    cr_assert_eq(af_attn_backend(wp), af_backend_pm);
                    attend_kx(wp, X, sk ? &o : NULL, KX, NULL);
                    e[t] = rel_err(n * d, KX, ref);
                    cr_expect(e[t] <= tols[t], "d %zu, %s, %s: pm tol %g, error %.3g", d,
                              l2 ? "l2" : "dot", sk ? "sinkhorn" : "softmax", tols[t], e[t]);
                    af_attn_free(wp);
                }
                cr_expect(e[1] < 1e-3 * e[0], "d %zu: the tolerance does not control the "
                          "error (%.3g, %.3g)", d, e[0], e[1]);
                af_attn_free(wd);
                free(X), free(ref), free(KX);
            }
}

/* K X of the pm workspace ws against an af_pm_attn engine made afresh for
 * the scores sp: bit for bit, with the same iteration count and
 * potentials. opt NULL: SoftMax. */
static void same_as_engine(af_attn_ws *ws, const af_scores_params *sp, double tol,
                           const double *X, size_t n, size_t d,
                           const af_sinkhorn_options *opt, const char *what)
{
    double *KX = malloc(n * d * sizeof *KX), *ref = malloc(n * d * sizeof *ref);
    af_pm_attn *at = af_pm_attn_alloc(n, d, sp, tol);
    cr_assert(at, "%s", af_last_error());
    af_sinkhorn_info iw = {0}, ia = {0};
    attend_kx(ws, X, opt, KX, &iw);
    cr_assert_eq(af_pm_attn_set(at, X), AF_SUCCESS);
    cr_assert_eq(opt ? af_pm_attn_sinkhorn(at, opt, &ia) : af_pm_attn_softmax(at), AF_SUCCESS);
    cr_assert_eq(af_pm_attn_apply(at, d, X, ref), AF_SUCCESS);
    cr_expect(memcmp(KX, ref, n * d * sizeof *KX) == 0, "%s: K X differs by %.3g", what,
              fx_max_abs_diff(n * d, KX, ref));
    cr_expect_eq(iw.iterations, ia.iterations, "%s", what);
    cr_expect(!opt || iw.iterations > 2, "%s: %zu iterations", what, iw.iterations);
    if (opt) {
        cr_expect(memcmp(af_attn_f(ws), af_pm_attn_f(at), n * sizeof(double)) == 0, "%s", what);
        cr_expect(memcmp(af_attn_g(ws), af_pm_attn_g(at), n * sizeof(double)) == 0, "%s", what);
    }
    af_pm_attn_free(at);
    free(KX);
    free(ref);
}

/* The backend is af_pm_attn (what the flows called before the backend
 * existed) behind the af_attn_* calls: the same K X bit for bit, the same
 * iteration counts and potentials, for SoftMax, the symmetric and the
 * alternating Sinkhorn and a fixed count; new scores (af_attn_set_scores)
 * act like a new engine. */
Test(backend_pm, same_results_as_pm_attention)
{
    const size_t n = 90, d = 2;
    double *X = cloud(n, d, 71, 1.0), A[4];
    const char *names[4] = {"softmax", "symmetric", "scaling", "3 normalisations"};
    const af_sinkhorn_type *paths[4] = {NULL, NULL, af_sinkhorn_scaling, NULL};
    for (int c = 0; c < 4; c++) {
        af_attn_params ap = pm_params(n, d, 1, A, c ? AF_ATTN_SINKHORN : AF_ATTN_SOFTMAX, 1e-9);
        af_sinkhorn_options o = af_sinkhorn_options_default();
        o.tol = 1e-11;
        o.path = paths[c];
        o.iters = c == 3 ? 3 : 0;
        af_attn_ws *ws = af_attn_alloc(af_backend_pm, &ap);
        cr_assert(ws, "%s", af_last_error());
        same_as_engine(ws, &ap.scores, ap.pm_tol, X, n, d, c ? &o : NULL, names[c]);
        af_scores_params sp = ap.scores;
        sp.eps = 0.5;
        cr_assert_eq(af_attn_set_scores(ws, &sp), AF_SUCCESS, "%s", af_last_error());
        same_as_engine(ws, &sp, ap.pm_tol, X, n, d, c ? &o : NULL, names[c]);
        af_attn_free(ws);
    }
    free(X);
}

/* Warm starts through af_attn_set_potentials: from the converged
 * potentials of a solve, a second workspace needs at most one update. */
Test(backend_pm, warm_start_from_set_potentials)
{
    const size_t n = 100, d = 3;
    double *X = cloud(n, d, 72, 1.0), A[9];
    af_attn_params ap = pm_params(n, d, 0, A, AF_ATTN_SINKHORN, 1e-10);
    af_attn_ws *w1 = af_attn_alloc(af_backend_pm, &ap), *w2 = af_attn_alloc(af_backend_pm, &ap);
    cr_assert(w1 && w2, "%s", af_last_error());
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = 1e-10;
    af_sinkhorn_info i1, i2;
    cr_assert_eq(af_attn_sinkhorn(w1, X, &o, &i1), AF_SUCCESS, "%s", af_last_error());
    af_attn_set_potentials(w2, af_attn_f(w1), af_attn_g(w1));
    o.warm_start = 1;
    cr_assert_eq(af_attn_sinkhorn(w2, X, &o, &i2), AF_SUCCESS, "%s", af_last_error());
    cr_expect(i1.iterations > 5 && i2.iterations <= 1, "cold %zu, warm %zu", i1.iterations,
              i2.iterations);
    af_attn_free(w1);
    af_attn_free(w2);
    free(X);
}

/* Row and column sums, K X and K^T X of an unbalanced kernel (two
 * alternating normalisations: f != g) and the SoftMax column sums, against
 * the dense backend. */
Test(backend_pm, marginals_and_colsums_match_dense)
{
    const size_t n = 100, d = 2;
    double *X = cloud(n, d, 73, 1.0), A[4];
    double r[2][100], c[2][100], kx[2][200], ktx[2][200], cs[2][100];
    const af_backend_type *b[2] = {af_backend_dense, af_backend_pm};
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.iters = 2;
    for (int k = 0; k < 2; k++) {
        af_attn_params ap = pm_params(n, d, 1, A, AF_ATTN_SINKHORN, 1e-11);
        af_attn_ws *ws = af_attn_alloc(b[k], &ap);
        cr_assert(ws, "%s", af_last_error());
        cr_assert_eq(af_attn_sinkhorn(ws, X, &o, NULL), AF_SUCCESS, "%s", af_last_error());
        cr_assert_eq(af_attn_marginals(ws, r[k], c[k], kx[k], ktx[k]), AF_SUCCESS, "%s",
                     af_last_error());
        af_attn_free(ws);
        ap.norm = AF_ATTN_SOFTMAX;
        ws = af_attn_alloc(b[k], &ap);
        cr_assert_eq(af_attn_softmax_colsums(ws, X, cs[k]), AF_SUCCESS, "%s", af_last_error());
        af_attn_free(ws);
    }
    cr_expect(rel_err(n, r[1], r[0]) < 1e-10, "row sums %.3g", rel_err(n, r[1], r[0]));
    cr_expect(rel_err(n, c[1], c[0]) < 1e-10, "col sums %.3g", rel_err(n, c[1], c[0]));
    cr_expect(rel_err(n * d, kx[1], kx[0]) < 1e-10, "K X %.3g", rel_err(n * d, kx[1], kx[0]));
    cr_expect(rel_err(n * d, ktx[1], ktx[0]) < 1e-10, "K^T X %.3g",
              rel_err(n * d, ktx[1], ktx[0]));
    cr_expect(rel_err(n * d, ktx[0], kx[0]) > 1e-3, "K is not symmetric here");
    cr_expect(rel_err(n, cs[1], cs[0]) < 1e-10, "SoftMax column sums %.3g",
              rel_err(n, cs[1], cs[0]));
    free(X);
}

/* What the pm backend cannot do: AF_EINVAL (AF_EDOM for non-finite tokens)
 * and a message that names the reason. */
Test(backend_pm, refusals_with_messages)
{
    double A[16], B[4], X[40], K[400];
    for (int k = 0; k < 40; k++)
        X[k] = 0.05 * k - 1;
    struct { af_attn_params p; const char *msg; } bad[6];
    bad[0].p = pm_params(10, 4, 1, A, AF_ATTN_SOFTMAX, 1e-8), bad[0].msg = "d <= 3";
    bad[1].p = pm_params(10, 2, 0, B, AF_ATTN_SOFTMAX, 1e-8), bad[1].msg = "A = a I";
    B[1] = 0.1; /* not a scalar matrix */
    bad[2].p = pm_params(10, 2, 1, A, AF_ATTN_USA, 1e-8), bad[2].msg = "USA";
    bad[3].p = pm_params(10, 2, 1, A, AF_ATTN_SOFTMAX, 0.1), bad[3].msg = "tolerance";
    bad[4].p = pm_params(10, 2, 1, A, AF_ATTN_SOFTMAX, 1e-8), bad[4].msg = "precision";
    bad[4].p.precision = AF_PRECISION_SINGLE;
    const af_comm two = {.rank = 0, .size = 2};
    bad[5].p = pm_params(10, 2, 1, A, AF_ATTN_SOFTMAX, 1e-8), bad[5].msg = "one process";
    bad[5].p.comm = &two;
    for (int k = 0; k < 6; k++) {
        cr_expect_null(af_attn_alloc(af_backend_pm, &bad[k].p), "case %d", k);
        cr_expect(strstr(af_last_error(), bad[k].msg), "case %d: %s", k, af_last_error());
    }
    af_attn_params ap = pm_params(20, 2, 1, A, AF_ATTN_SINKHORN, 1e-8);
    af_attn_ws *ws = af_attn_alloc(af_backend_pm, &ap);
    cr_assert(ws, "%s", af_last_error());
    af_sinkhorn_options o = af_sinkhorn_options_default();
    cr_expect_eq(af_attn_kernel(ws, X, &o, K), AF_EINVAL);
    cr_expect(strstr(af_last_error(), "never forms") && strstr(af_last_error(), "dense"), "%s",
              af_last_error());
    cr_expect_eq(af_attn_apply(ws, K), AF_EINVAL); /* no solve yet */
    o.compute_bound = 2; /* sigma_2 / the exact Hilbert diameter need the matrix */
    cr_expect_eq(af_attn_sinkhorn(ws, X, &o, NULL), AF_EINVAL);
    cr_expect(strstr(af_last_error(), "Hilbert"), "%s", af_last_error());
    o.compute_bound = 1;
    af_sinkhorn_info info;
    cr_expect_eq(af_attn_sinkhorn(ws, X, &o, &info), AF_SUCCESS, "%s", af_last_error());
    cr_expect(isnan(info.hilbert_diam)); /* not computed (no score range) */
    X[7] = NAN;
    cr_expect_eq(af_attn_sinkhorn(ws, X, &o, NULL), AF_EDOM);
    cr_expect(strstr(af_last_error(), "non-finite"), "%s", af_last_error());
    cr_expect_eq(af_attn_apply(ws, K), AF_EINVAL); /* the failed set forgot the solve */
    af_attn_free(ws);
}

/* The name, the grid info, and the O(n) allocation formula. */
Test(backend_pm, name_info_and_linear_bytes)
{
    const af_backend_type *b;
    cr_expect(af_backend_from_name("pm", &b) == AF_SUCCESS && b == af_backend_pm);
    cr_expect_str_eq(af_backend_name(af_backend_pm), "pm");
    cr_expect(af_backend_from_name("fast", &b) == AF_EINVAL
              && strstr(af_last_error(), "dense|tiled|pm"), "%s", af_last_error());
    double b6 = af_backend_bytes(af_backend_pm, 1000000, 3, AF_ATTN_SINKHORN, 2);
    double b5 = af_backend_bytes(af_backend_pm, 100000, 3, AF_ATTN_SINKHORN, 2);
    cr_expect(fabs(b6 / b5 - 10) < 0.01 && b6 < 1e9, "%.3g, %.3g bytes", b6, b5);
    double A[4], X[20], KX[20], *Xd = cloud(10, 2, 74, 1.0);
    memcpy(X, Xd, sizeof X);
    free(Xd);
    af_attn_params ap = pm_params(10, 2, 1, A, AF_ATTN_SOFTMAX, 1e-7);
    af_attn_ws *wp = af_attn_alloc(af_backend_pm, &ap), *wd = af_attn_alloc(af_backend_dense, &ap);
    cr_assert(wp && wd);
    af_pm_info info;
    cr_expect_eq(af_attn_pm_info(wd, &info), AF_EINVAL);
    cr_expect(strstr(af_last_error(), "dense"), "%s", af_last_error());
    cr_assert_eq(af_attn_softmax(wp, X, KX), AF_SUCCESS);
    cr_assert_eq(af_attn_pm_info(wp, &info), AF_SUCCESS);
    cr_expect(info.d == 2 && info.points > 0 && info.tol == 1e-7 && info.wrap_mass <= 1e-7);
    af_attn_free(wp);
    af_attn_free(wd);
}

/* The OT energy and its gradient (Sinkhorn potentials, K X, K^T X, row
 * and column sums) on the pm backend at its default tolerance 1e-8, L2
 * scores, against the dense backend; cold, then warm-started. */
Test(backend_pm, energy_and_gradient_match_dense)
{
    const size_t n = 80, d = 3;
    double *X = cloud(n, d, 75, 1.0);
    af_energy_params ep = af_energy_params_default();
    ep.scores.kind = AF_SCORES_L2;
    ep.scores.eps = 0.5;
    af_energy_ws *wd = af_energy_alloc_backend(n, d, af_backend_dense);
    af_energy_ws *wp = af_energy_alloc_backend(n, d, af_backend_pm);
    cr_assert(wd && wp, "%s", af_last_error());
    double Fd, Fp, gd[240], gp[240];
    for (int call = 0; call < 2; call++) {
        cr_assert(af_energy(wd, &ep, X, &Fd, gd) == AF_SUCCESS, "%s", af_last_error());
        cr_assert(af_energy(wp, &ep, X, &Fp, gp) == AF_SUCCESS, "%s", af_last_error());
        cr_expect(fabs(Fp - Fd) <= 1e-8 * fabs(Fd), "F %.17g vs %.17g", Fp, Fd);
        cr_expect(rel_err(n * d, gp, gd) <= 1e-8, "gradients: %.3g", rel_err(n * d, gp, gd));
        X[0] += 1e-3;
    }
    af_energy_free(wd);
    af_energy_free(wp);
    free(X);
}

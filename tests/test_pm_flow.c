/* Particle-mesh attention in the flows (pm_tol > 0) against the dense
 * kernel: SoftMax and Sinkhorn velocities, d = 1, 2, 3, L2 and dot scores
 * with A = a I, both Sinkhorn updates, the mean law m' = W_V m of Sinkhorn
 * flows, warm starts, and the inputs the backend must refuse. */
#include <criterion/criterion.h>
void openblas_set_num_threads(int num_threads);
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "attnflow/flow.h"
#include "attnflow/pm.h"
#include "support/fixtures.h"

__attribute__((constructor)) static void one_thread(void)
{
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

/* N(0, I) shifted by 0.7 along x_1 (a mean the mean law can move) */
static double *cloud(size_t n, size_t d, unsigned long seed)
{
    double *X = fx_gaussian_cloud(n, d, 1.0, seed);
    for (size_t i = 0; i < n; i++)
        X[i * d] += 0.7;
    return X;
}

static void velocity(const af_flow_params *p, const double *X, double *v)
{
    af_flow_ws *ws = af_flow_alloc(p);
    cr_assert(ws, "%s", af_last_error());
    cr_assert_eq(af_flow_velocity(ws, X, v), AF_SUCCESS, "%s", af_last_error());
    af_flow_free(ws);
}

/* max |v_pm - v_dense| / max |v_dense| */
static double pm_vs_dense(af_flow_params p, const double *X, double tol)
{
    const size_t nd = p.n * p.d;
    double *vd = malloc(nd * sizeof *vd), *vp = malloc(nd * sizeof *vp);
    p.pm_tol = 0;
    p.sinkhorn.tol = 1e-13;
    velocity(&p, X, vd);
    p.pm_tol = tol;
    p.sinkhorn.tol = 1e-13; /* the fixed point of the PM operator: its own error remains */
    velocity(&p, X, vp);
    double e = 0, m = 0;
    for (size_t k = 0; k < nd; k++) {
        e = fmax(e, fabs(vp[k] - vd[k]));
        m = fmax(m, fabs(vd[k]));
    }
    free(vd);
    free(vp);
    return e / m;
}

static void compare_case(af_flow_norm norm, af_scores_kind kind, const af_sinkhorn_type *path,
                         size_t n, double eps_l2)
{
    for (size_t d = 1; d <= 3; d++) {
        double *X = cloud(n, d, 40 + d);
        double A[9] = {0};
        for (size_t k = 0; k < d; k++)
            A[k * d + k] = 0.8;
        af_flow_params p = af_flow_params_default(n, d);
        p.norm = norm;
        p.scores.kind = kind;
        p.scores.eps = kind == AF_SCORES_L2 ? eps_l2 : 1.0;
        p.scores.beta = 1.0;
        p.scores.A = kind == AF_SCORES_DOT ? A : NULL;
        p.sinkhorn.path = path;
        const double loose = pm_vs_dense(p, X, 1e-4), tight = pm_vs_dense(p, X, 1e-9);
        cr_expect(loose <= 1e-4, "d = %zu: error %.3g at tol 1e-4", d, loose);
        cr_expect(tight <= 1e-9, "d = %zu: error %.3g at tol 1e-9", d, tight);
        cr_expect(tight < 1e-3 * loose, "d = %zu: tol does not control the error (%.3g, %.3g)",
                  d, loose, tight);
        free(X);
    }
}

Test(pm_flow, softmax_l2) { compare_case(AF_FLOW_SOFTMAX, AF_SCORES_L2, NULL, 150, 0.3); }
Test(pm_flow, softmax_dot_scalar_A) { compare_case(AF_FLOW_SOFTMAX, AF_SCORES_DOT, NULL, 150, 0.3); }
Test(pm_flow, sinkhorn_l2_symmetric) { compare_case(AF_FLOW_SINKHORN, AF_SCORES_L2, NULL, 150, 0.3); }
Test(pm_flow, sinkhorn_dot_symmetric) { compare_case(AF_FLOW_SINKHORN, AF_SCORES_DOT, NULL, 150, 0.3); }
Test(pm_flow, sinkhorn_l2_alternating)
{
    compare_case(AF_FLOW_SINKHORN, AF_SCORES_L2, af_sinkhorn_scaling, 60, 1.0); /* slower rate: a wider kernel */
}

/* Sinkhorn: columns sum to 1, so sum_i (K X)_i = sum_j x_j and the mean
 * obeys m' = W_V m. RK4 is linear in the field: the PM cloud's mean must
 * follow RK4 applied to m' = W_V m, to the PM tolerance. */
Test(pm_flow, sinkhorn_mean_law)
{
    const size_t n = 200, d = 2;
    double *X = cloud(n, d, 7);
    const double V[4] = {0.3, -0.8, 0.5, -0.2}, h = 0.05;
    af_flow_params p = af_flow_params_default(n, d);
    p.norm = AF_FLOW_SINKHORN;
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.2;
    p.V = V;
    p.pm_tol = 1e-8;
    af_flow_ws *ws = af_flow_alloc(&p);
    cr_assert(ws, "%s", af_last_error());
    double m[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            m[k] += X[i * d + k] / (double)n;
    for (int step = 0; step < 10; step++) {
        cr_assert_eq(af_flow_step(ws, X, h), AF_SUCCESS, "%s", af_last_error());
        double k1[2], k2[2], k3[2], k4[2], y[2];
#define LIN(out, in) (out)[0] = V[0] * (in)[0] + V[1] * (in)[1], (out)[1] = V[2] * (in)[0] + V[3] * (in)[1]
        LIN(k1, m);
        y[0] = m[0] + 0.5 * h * k1[0], y[1] = m[1] + 0.5 * h * k1[1];
        LIN(k2, y);
        y[0] = m[0] + 0.5 * h * k2[0], y[1] = m[1] + 0.5 * h * k2[1];
        LIN(k3, y);
        y[0] = m[0] + h * k3[0], y[1] = m[1] + h * k3[1];
        LIN(k4, y);
        for (int k = 0; k < 2; k++)
            m[k] += h / 6 * (k1[k] + 2 * (k2[k] + k3[k]) + k4[k]);
    }
    double mx[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++)
            mx[k] += X[i * d + k] / (double)n;
    for (int k = 0; k < 2; k++)
        cr_expect(fabs(mx[k] - m[k]) <= 1e-8, "mean[%d]: %.12g vs %.12g", k, mx[k], m[k]);
    af_flow_free(ws);
    free(X);
}

/* Warm starts: along the same trajectory, solves started from the
 * extrapolated potentials of the previous steps need fewer normalisations
 * than solves from zero. */
Test(pm_flow, warm_start_saves_iterations)
{
    const size_t n = 200, d = 2;
    size_t iters[2];
    for (int warm = 0; warm < 2; warm++) {
        double *X = cloud(n, d, 9);
        af_flow_params p = af_flow_params_default(n, d);
        p.norm = AF_FLOW_SINKHORN;
        p.scores.kind = AF_SCORES_L2;
        p.scores.eps = 0.2;
        p.integrator = AF_FLOW_EULER;
        p.pm_tol = 1e-8;
        p.warm_start = warm ? 2 : 0;
        af_flow_ws *ws = af_flow_alloc(&p);
        cr_assert(ws);
        af_flow_stats st;
        for (int s = 0; s < 4; s++)
            cr_assert_eq(af_flow_step(ws, X, 0.01), AF_SUCCESS, "%s", af_last_error());
        af_flow_get_stats(ws, &st);
        iters[warm] = st.last_iterations;
        af_pm_info info;
        cr_assert_eq(af_flow_pm_info(ws, &info), AF_SUCCESS);
        cr_expect(info.points > 0 && info.wrap_mass <= 1e-8 && info.plans == 1,
                  "grid %zu points, wrap %.3g, %zu plans", info.points, info.wrap_mass,
                  info.plans);
        af_flow_free(ws);
        free(X);
    }
    cr_expect(iters[1] < iters[0] * 3 / 4, "warm %zu vs cold %zu iterations", iters[1],
              iters[0]);
}

Test(pm_flow, refuses_what_it_cannot_do)
{
    af_flow_params p = af_flow_params_default(10, 4);
    p.pm_tol = 1e-8;
    p.scores.kind = AF_SCORES_L2;
    cr_expect_null(af_flow_alloc(&p));
    cr_expect(strstr(af_last_error(), "d <= 3"), "%s", af_last_error());

    p = af_flow_params_default(10, 2);
    p.pm_tol = 1e-8;
    const double A[4] = {1, 0.1, 0.1, 1};
    p.scores.A = A;
    cr_expect_null(af_flow_alloc(&p));
    cr_expect(strstr(af_last_error(), "A = a I"), "%s", af_last_error());

    p.scores.A = NULL;
    p.usa = 1;
    cr_expect_null(af_flow_alloc(&p));
    p.usa = 0;

    af_flow_ws *ws = af_flow_alloc(&p);
    cr_assert(ws, "%s", af_last_error());
    double X[20], v[20], K[100];
    for (int k = 0; k < 20; k++)
        X[k] = 0.1 * k;
    cr_expect_eq(af_flow_kernel(ws, X, K), AF_EINVAL);
    X[7] = NAN;
    cr_expect_eq(af_flow_velocity(ws, X, v), AF_EDOM);
    cr_expect(strstr(af_last_error(), "non-finite"), "%s", af_last_error());
    af_flow_free(ws);
}

/* Every integrator (and skip) runs on the PM backend: the trajectories agree
 * with the dense ones to the PM tolerance (times the integrators' own
 * sensitivity). */
Test(pm_flow, all_integrators)
{
    const size_t n = 120, d = 2;
    const af_flow_integrator kinds[] = {AF_FLOW_EULER, AF_FLOW_HEUN, AF_FLOW_RK4,
                                        AF_FLOW_ADAPTIVE};
    for (int k = 0; k < 4; k++) {
        double *X[2];
        for (int b = 0; b < 2; b++) {
            X[b] = cloud(n, d, 11);
            af_flow_params p = af_flow_params_default(n, d);
            p.norm = AF_FLOW_SINKHORN;
            p.scores.kind = AF_SCORES_L2;
            p.scores.eps = 0.3;
            p.skip = 1;
            p.value = -2 / 0.3;
            p.integrator = kinds[k];
            p.sinkhorn.tol = 1e-12;
            p.pm_tol = b ? 1e-11 : 0;
            af_flow_ws *ws = af_flow_alloc(&p);
            cr_assert(ws, "%s", af_last_error());
            cr_assert_eq(af_flow_integrate(ws, X[b], 0.1, 0.02), AF_SUCCESS, "%s",
                         af_last_error());
            af_flow_free(ws);
        }
        double e = 0;
        for (size_t q = 0; q < n * d; q++)
            e = fmax(e, fabs(X[0][q] - X[1][q]));
        cr_expect(e < 1e-9, "%s: PM vs dense %.3g", af_flow_integrator_name(kinds[k]), e);
        free(X[0]);
        free(X[1]);
    }
}

/* A fixed count of normalisations keeps the Sinkformers convention on the
 * PM backend: one normalisation is SoftMax, three match the dense three. */
Test(pm_flow, fixed_counts)
{
    const size_t n = 150, d = 2;
    double *X = cloud(n, d, 13), *v[3];
    for (int k = 0; k < 3; k++)
        v[k] = malloc(n * d * sizeof(double));
    af_flow_params p = af_flow_params_default(n, d);
    p.scores.kind = AF_SCORES_L2;
    p.scores.eps = 0.3;
    p.pm_tol = 1e-10;
    velocity(&p, X, v[0]); /* SoftMax */
    p.norm = AF_FLOW_SINKHORN;
    p.sinkhorn.iters = 1;
    velocity(&p, X, v[1]);
    double e = 0;
    for (size_t q = 0; q < n * d; q++)
        e = fmax(e, fabs(v[0][q] - v[1][q]));
    cr_expect(e < 1e-13, "Sinkhorn with 1 normalisation vs SoftMax: %.3g", e);
    p.sinkhorn.iters = 3;
    velocity(&p, X, v[1]);
    p.pm_tol = 0;
    velocity(&p, X, v[2]);
    e = 0;
    for (size_t q = 0; q < n * d; q++)
        e = fmax(e, fabs(v[1][q] - v[2][q]));
    cr_expect(e < 1e-9, "3 normalisations, PM vs dense: %.3g", e);
    for (int k = 0; k < 3; k++)
        free(v[k]);
    free(X);
}

/* pm_tol > 0 is the compatibility spelling of backend = af_backend_pm with
 * that tolerance: both give the same trajectory bit for bit; the backend
 * alone takes AF_PM_TOL_DEFAULT; the parameters in use say so. */
Test(pm_flow, pm_tol_is_the_pm_backend)
{
    const size_t n = 80, d = 2;
    double *X[2];
    for (int k = 0; k < 2; k++) {
        X[k] = cloud(n, d, 15);
        af_flow_params p = af_flow_params_default(n, d);
        p.norm = AF_FLOW_SINKHORN;
        p.scores.kind = AF_SCORES_L2;
        p.scores.eps = 0.3;
        if (k)
            p.backend = af_backend_pm;
        else
            p.pm_tol = AF_PM_TOL_DEFAULT, p.backend = af_backend_tiled; /* pm_tol wins */
        af_flow_ws *ws = af_flow_alloc(&p);
        cr_assert(ws, "%s", af_last_error());
        const af_flow_params *q = af_flow_get_params(ws);
        cr_expect(q->backend == af_backend_pm && q->pm_tol == AF_PM_TOL_DEFAULT);
        cr_assert_eq(af_flow_integrate(ws, X[k], 0.1, 0.02), AF_SUCCESS, "%s", af_last_error());
        af_pm_info info;
        cr_expect_eq(af_flow_pm_info(ws, &info), AF_SUCCESS);
        cr_expect(info.points > 0 && info.tol == AF_PM_TOL_DEFAULT);
        af_flow_free(ws);
    }
    cr_expect(memcmp(X[0], X[1], n * d * sizeof(double)) == 0);
    af_flow_params p = af_flow_params_default(n, d);
    af_flow_ws *ws = af_flow_alloc(&p);
    af_pm_info info;
    cr_expect_eq(af_flow_pm_info(ws, &info), AF_EINVAL);
    cr_expect(strstr(af_last_error(), "dense backend"), "%s", af_last_error());
    af_flow_free(ws);
    p.usa = 1;
    p.backend = af_backend_pm;
    cr_expect_null(af_flow_alloc(&p));
    cr_expect(strstr(af_last_error(), "USA"), "%s", af_last_error());
    p.usa = 0;
    p.backend = NULL;
    for (int k = 0; k < 3; k++) {
        const double bad[3] = {-1, NAN, 0.1};
        p.pm_tol = bad[k];
        cr_expect_null(af_flow_alloc(&p), "pm_tol %g", bad[k]);
        cr_expect(strstr(af_last_error(), "pm tolerance"), "%s", af_last_error());
    }
    free(X[0]);
    free(X[1]);
}

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <gsl/gsl_rng.h>
#include "attnflow/heat.h"
#include "attnflow/metrics.h"
#include "heat_case.h"

fx_heat_outcome fx_heat_reference(size_t n, af_flow_norm norm, unsigned long seed, size_t directions)
{
    const size_t d = 2;
    const double eps = 0.05, h = 0.005, T = 0.5;
    fx_heat_outcome o;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937), *rd = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    af_density p = af_density_default();
    p.d = d;
    double *X = malloc(n * d * sizeof *X), m0[2], c0[4], m1[2], c1[4];
    af_density_sample(&p, r, n, X);
    af_flow_params fp = af_flow_params_default(n, d);
    fp.norm = norm;
    fp.scores.kind = AF_SCORES_L2;
    fp.scores.eps = eps;
    fp.value = -2 / eps;
    fp.skip = 1;
    fp.integrator = AF_FLOW_EULER;
    fp.sinkhorn.tol = 1e-9;
    af_flow_ws *ws = af_flow_alloc(&fp);
    cr_assert_not_null(ws, "%s", af_last_error());
    af_moments(n, d, X, m0, c0);
    for (int s = 0; s < (int)(T / h + 0.5); s++)
        cr_assert_eq(af_flow_step(ws, X, h), AF_SUCCESS, "%s", af_last_error());
    af_moments(n, d, X, m1, c1);
    o.inc = 0.5 * (c1[0] - c0[0] + c1[3] - c0[3]);
    o.drift = hypot(m1[0] - m0[0], m1[1] - m0[1]);
    /* which PDE is the cloud closer to? sliced W2 against kappa = 1 and 2 */
    af_grid g = af_grid_cube(2, 128, 14);
    double *rho = malloc(af_grid_size(&g) * sizeof *rho);
    af_sliced_side a = {n, X, NULL, NULL}, b = {0, NULL, &g, rho};
    af_density_on_grid(&p, 1.0 * T, &g, rho);
    gsl_rng_set(rd, 5);
    af_sliced_w2(d, &a, &b, directions, rd, &o.sw_k1, NULL);
    af_density_on_grid(&p, 2.0 * T, &g, rho);
    gsl_rng_set(rd, 5);
    af_sliced_w2(d, &a, &b, directions, rd, &o.sw_k2, NULL);
    af_flow_free(ws);
    gsl_rng_free(r);
    gsl_rng_free(rd);
    free(X);
    free(rho);
    return o;
}

/* The heat-limit reference case of docs/theory.md section 5 at a chosen n:
 * x ~ N(0, I) in 2-D, L2 scores eps = 0.05, v_i = -(2/eps)(sum_j K_ij x_j - x_i),
 * Euler h = 0.005 to T = 0.5 (Sinkhorn to tol 1e-9, warm-started). */
#ifndef AF_TEST_HEAT_CASE_H
#define AF_TEST_HEAT_CASE_H
#include <stddef.h>
#include "attnflow/flow.h"

typedef struct {
    double inc;          /* per-coordinate variance increment var(T) - var(0) */
    double sw_k1, sw_k2; /* sliced W2 to the kappa = 1 and kappa = 2 heat solutions */
    double drift;        /* |mean(T) - mean(0)| */
} fx_heat_outcome;

/* Runs the case from the seeded cloud; sliced W2 with `directions` seeded directions. */
fx_heat_outcome fx_heat_reference(size_t n, af_flow_norm norm, unsigned long seed, size_t directions);
#endif

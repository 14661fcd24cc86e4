/* Sinkhorn attention as a Wasserstein gradient flow (docs/theory.md section 4).
 *
 * For symmetric scores C (dot scores x^T A y with A symmetric, or L2
 * scores) and weights 1/n, the entropic OT energy is
 *     F_n(X) = (1/2) OT_1(mu, mu),  cost -C, regularisation 1,
 * computed from the attention potentials f, g of normalize.h
 * (K_ij = exp(f_i + C_ij + g_j)) through the OT potentials
 * phi_i + psi_j = f_i + g_j + log n. We evaluate F_n as half the dual
 * objective at the computed potentials,
 *     F_n = (1/2) [ (1/n) sum_i (f_i + g_i) + log n - (1/n) sum_ij K_ij + 1 ],
 * which equals (1/(2n)) sum_i (phi_i + psi_i) at the optimum (sum K = n)
 * and is stationary there: a Sinkhorn error delta in the potentials moves
 * F_n by O(delta^2) only, so finite differences of F_n are clean.
 *
 * Gradient (envelope theorem: the potentials' own dependence on X drops
 * out at the optimum):
 *     dF_n/dx_i = -(1/(2n)) [ sum_k K_ik d1C(x_i, x_k) + sum_j K_ji d2C(x_j, x_i) ]
 * so with dot scores s x^T A y (s = beta / eps) and W_V = s A,
 *     T(X)_i = sum_j K_ij W_V x_j = -n dF_n/dx_i,
 * the Sinkhorn particle flow is the gradient flow of F_n and
 *     dF_n/dt = -(1/n) sum_i |T_i|^2 <= 0 (dissipation identity).
 * With L2 scores -s |x - y|^2 / 2 and the heat-limit field
 * v_i = -(2/eps)(sum_j K_ij x_j - x_i) (docs/theory.md section 5) one finds
 * v_i = +2n dF_n/dx_i: the Sinkhorn heat flow is the gradient flow of
 * E = -2 F_n (an entropy-like energy) with dE/dt = -(1/n) sum_i |v_i|^2.
 *
 * SoftMax attention has no such energy: its field is not a gradient, which
 * shows as a non-symmetric Jacobian. af_fd_jacobian computes the Jacobian of
 * any field X -> T(X) (R^{nd} -> R^{nd}) by central differences, with an
 * error estimate from a second step size. */
#ifndef AF_ENERGY_H
#define AF_ENERGY_H

#include <stddef.h>
#include "attnflow/backend.h"
#include "attnflow/error.h"
#include "attnflow/normalize.h"
#include "attnflow/scores.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

typedef struct {
    af_scores_params scores;      /* dot (A symmetric or NULL) or L2; eps, beta */
    af_sinkhorn_options sinkhorn; /* tol default 1e-12; warm starts are automatic
                                   * (from the previous call on the same workspace) */
} af_energy_params;

af_energy_params af_energy_params_default(void); /* dot, A = I, eps = 1, tol 1e-12 */

typedef struct af_energy_ws af_energy_ws;
af_energy_ws *af_energy_alloc(size_t n, size_t d); /* NULL: see af_last_error() */
/* The same on a given attention backend (af_energy_alloc: dense). Tiled:
 * O(n d) memory, F_n and its gradient in one extra pass over the scores.
 * pm: O(n), to AF_PM_TOL_DEFAULT; L2 scores or A = a I, d <= 3 (the first
 * af_energy with other scores returns AF_EINVAL). */
af_energy_ws *af_energy_alloc_backend(size_t n, size_t d, const af_backend_type *backend);
void af_energy_free(af_energy_ws *ws);
/* Forget the potentials: the next call starts cold. */
void af_energy_reset(af_energy_ws *ws);
/* Sinkhorn normalisations of the last call. */
size_t af_energy_iterations(const af_energy_ws *ws);

/* F_n(X) into *F and, if grad != NULL, dF_n/dX (n x d). Scores must be
 * symmetric (dot with symmetric A, or L2): AF_EINVAL otherwise. Returns the
 * Sinkhorn status (AF_EMAXITER with F filled if the tolerance was missed). */
af_status af_energy(af_energy_ws *ws, const af_energy_params *p, const double *X, double *F,
                    double *grad);

/* Predicted rate of F_n along the Sinkhorn flow, -(1/n) sum_i |T_i|^2. */
double af_energy_dissipation(size_t n, size_t d, const double *T);

/* dF_n/dt along an arbitrary field V at X, measured by a central difference
 * (F(X + tau V) - F(X - tau V)) / (2 tau). */
af_status af_energy_rate(af_energy_ws *ws, const af_energy_params *p, const double *X,
                         const double *V, double tau, double *rate);

/* ---- Jacobians of particle fields ---- */

/* A field on R^N (N = n d): T = field(X); returns a status. */
typedef af_status (*af_field_fn)(void *user, const double *X, double *T);

/* J (N x N, row-major, J[a N + b] = dT_a / dX_b) by central differences
 * with step h (per coordinate, times max(1, |X_b|)); *err_est (may be NULL)
 * receives max_ab |J_h - J_2h| / 3, the Richardson estimate of the O(h^2)
 * truncation error. Calls field 4N times. work: 4N doubles. */
af_status af_fd_jacobian(af_field_fn field, void *user, size_t N, const double *X, double h,
                         double *J, double *err_est, double *work);

/* |J - J^T|_F / |J|_F (0 for a zero matrix). */
double af_jacobian_asymmetry(size_t N, const double *J);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* The heat equation d/dt rho = kappa Laplacian(rho) (docs/theory.md section 5):
 * an FFTW spectral solver on a periodic box in 1-D and 2-D, exact per
 * Fourier mode, and the exact free-space solutions of the analytic initial
 * densities (Gaussian, Gaussian mixture, uniform square) in any dimension.
 *
 * Grid: a periodic box [lo_k, lo_k + L_k) per coordinate, N_k nodes
 * x_j = lo_k + j L_k / N_k. A density on the grid is an array of the node
 * values, row-major: rho[i * N_1 + j] = rho(x1_i, x2_j) in 2-D.
 *
 * Solver (FFTW style, plan once, execute many times):
 *     af_heat_plan *p = af_heat_plan_alloc(&grid, FFTW_ESTIMATE);
 *     af_heat_set(p, rho0);                 (or af_heat_set_density(p, &dens))
 *     af_heat_evolve(p, kappa, t1, rho1);   one inverse FFT per call
 *     af_heat_evolve(p, kappa, t2, rho2);
 *     af_heat_plan_free(p);
 * af_heat_set stores the Fourier coefficients of the trigonometric
 * interpolant of the node values (one forward FFT); af_heat_set_density
 * sets them from the closed-form Fourier transform of an analytic density,
 * which is exact also for the discontinuous uniform square (node values of a
 * discontinuous density would carry an O(dx) aliasing error forever).
 * Each evolve multiplies mode xi by exp(-kappa |xi|^2 t): the periodic
 * problem is solved exactly; the only errors are the truncation of the
 * Fourier series (negligible once exp(-kappa xi_max^2 t) or the initial
 * spectrum is below round-off) and the periodic wrap, i.e. the difference
 * between the periodic and the free-space problem.
 *
 * Periodic wrap check: the periodic solution is the sum over all images of
 * the free-space solution, so its error is the mass of the free-space
 * solution that leaves the box and comes back from the other side.
 * af_heat_wrap_error measures it directly: it solves the same problem on a
 * box twice as large in every direction (same spacing, initial density
 * zero-padded) and reports the L1 and max difference on the original box.
 * For the analytic densities the free-space solution is known
 * (af_density_eval) and can be compared with as well. */
#ifndef AF_HEAT_H
#define AF_HEAT_H

#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* A periodic box grid in d = 1 or 2 dimensions. */
typedef struct {
    size_t d;        /* 1 or 2 */
    size_t N[2];     /* nodes per coordinate (N[1] ignored when d = 1) */
    double lo[2];    /* lower corner */
    double L[2];     /* side lengths */
} af_grid;

/* Grid of N nodes per coordinate on the cube [-half, half)^d. */
af_grid af_grid_cube(size_t d, size_t N, double half);
/* Checks d in {1, 2}, N >= 2, L > 0 and finite. */
af_status af_grid_check(const af_grid *g);
size_t af_grid_size(const af_grid *g);        /* number of nodes */
double af_grid_cell(const af_grid *g);        /* cell volume dV = prod L_k / N_k */
double af_grid_step(const af_grid *g, size_t k); /* dx_k = L_k / N_k */
/* Coordinates of node `index` (row-major) into x (d values). */
void af_grid_node(const af_grid *g, size_t index, double *x);

/* Mass sum_j rho_j dV of a grid density. */
double af_grid_mass(const af_grid *g, const double *rho);

/* Analytic initial densities. Each evolves under the heat equation in
 * closed form (s = kappa t): a Gaussian N(m, sigma^2 I) becomes
 * N(m, (sigma^2 + 2 s) I); a mixture evolves componentwise; the uniform
 * square [c - a, c + a]^d becomes a product of erf differences. */
typedef enum {
    AF_DENSITY_GAUSSIAN = 0, /* N(mean, sigma^2 I) */
    AF_DENSITY_MIXTURE,      /* sum_k w_k N(centre_k, width^2 I) */
    AF_DENSITY_UNIFORM       /* uniform on [mean - half_width, mean + half_width]^d */
} af_density_kind;

typedef struct {
    af_density_kind kind;
    size_t d;                /* any d >= 1 (the grid solver needs 1 or 2) */
    const double *mean;      /* gaussian, uniform: centre (d values, NULL = 0) */
    double sigma;            /* gaussian: std per coordinate (default 1) */
    double half_width;       /* uniform: half side (default 1) */
    size_t components;       /* mixture: K */
    const double *centres;   /* mixture: K x d */
    const double *weights;   /* mixture: K, NULL = equal; normalised internally */
    double width;            /* mixture: std per coordinate of each component (default 0.5) */
} af_density;

af_density af_density_default(void); /* standard Gaussian in d = 1 */
af_status af_density_kind_from_name(const char *name, af_density_kind *kind);
af_status af_density_check(const af_density *p);

/* The exact free-space solution of d/dt rho = kappa Laplacian(rho) from p,
 * at s = kappa t >= 0, at the point x (d values). s = 0 gives p itself. */
double af_density_eval(const af_density *p, double s, const double *x);
/* Same on every node of a grid (g->d must equal p->d). */
af_status af_density_on_grid(const af_density *p, double s, const af_grid *g, double *rho);
/* Variance per coordinate of the solution at s = kappa t (all kinds:
 * var(0) + 2 s, with var(0) = sigma^2, width^2 + spread of the centres, a^2 / 3). */
double af_density_variance(const af_density *p, double s, size_t coord);
/* n independent draws (n x d, row-major) from p. */
af_status af_density_sample(const af_density *p, gsl_rng *rng, size_t n, double *X);

/* n independent draws from a grid density read as piecewise constant on
 * the cells [x_j - dx/2, x_j + dx/2) (negative values count as 0). */
af_status af_grid_sample(const af_grid *g, const double *rho, gsl_rng *rng, size_t n, double *X);

/* A grid density from a table (as af_read_matrix returns it): 1-D, rows
 * "x rho" with equally spaced x; 2-D, rows "x1 x2 rho" with x1 the slow
 * index and x2 the fast one, both equally spaced (the layout `attnflow heat`
 * writes). Fills g and rho (af_grid_size(g) values, caller-allocated with
 * rows entries). */
af_status af_grid_from_table(size_t rows, size_t cols, const double *table, af_grid *g,
                             double *rho);

/* ---- the attention heat flow in the mean-field limit ----
 * For n -> infinity at fixed eps, the flow v = -(2/eps)(sum_j K_ij x_j - x)
 * with L2 scores (docs/theory.md 5) started from a Gaussian N(m, s0 I) keeps
 * the density Gaussian: the barycentre E_K[y | x] = m + r (x - m) is linear
 * in x, so the velocity (2/eps)(1 - r)(x - m) is too. The per-coordinate
 * variance s(t) solves
 *   Sinkhorn (entropic self-transport of N(m, s I) for the cost |x-y|^2/(2 eps)):
 *     r = (sqrt(1 + 4 k^2) - 1) / (2 k), k = s / eps,  ds/dt = (4/eps)(1 - r) s
 *     = 2 (1 - eps/(4 s) + O(eps^2)): the heat equation plus an O(eps) bias;
 *   SoftMax (Gaussian posterior mean): r = s / (s + eps), ds/dt = 4 s / (s + eps)
 *     = 4 (1 - eps/s + O(eps^2)): twice the heat equation plus an O(eps) bias.
 * This separates the O(eps) bias (exact here) from the finite-n effects of
 * a particle run. Integrated with RK4 (step <= 1e-3, error < 1e-12). */
af_status af_attention_gaussian_variance(int sinkhorn, double eps, double s0, double T,
                                         double *sT);

/* The same n -> infinity limit for the particle flow taken with explicit
 * Euler steps of size h (the last one shortened to end at T): the velocity
 * is linear in x, so each step maps the Gaussian to a Gaussian, s <- s (1 +
 * h (2/eps)(1 - r(s)))^2, exactly. Its difference to
 * af_attention_gaussian_variance is the O(h) time-stepping bias that a
 * particle run with that h converges to as n grows (heat reference case,
 * eps = 0.05, h = 0.005, T = 0.5: +0.0017 Sinkhorn, +0.0050 SoftMax). */
af_status af_attention_gaussian_variance_euler(int sinkhorn, double eps, double s0, double T,
                                               double h, double *sT);

/* ---- spectral solver ---- */
typedef struct af_heat_plan af_heat_plan;

/* Plans the transforms of grid g once (flags: FFTW_ESTIMATE, FFTW_MEASURE,
 * ...). Returns NULL, with a message in af_last_error(), on failure. */
af_heat_plan *af_heat_plan_alloc(const af_grid *g, unsigned fftw_flags);
void af_heat_plan_free(af_heat_plan *p);
const af_grid *af_heat_grid(const af_heat_plan *p);

/* Initial condition from node values (one forward FFT). */
af_status af_heat_set(af_heat_plan *p, const double *rho0);
/* Initial condition from the closed-form Fourier transform of an analytic
 * density (its periodisation on the box). */
af_status af_heat_set_density(af_heat_plan *p, const af_density *dens);
/* rho(t) on the nodes for d/dt rho = kappa Laplacian(rho): one inverse FFT.
 * kappa >= 0, t >= 0. */
af_status af_heat_evolve(af_heat_plan *p, double kappa, double t, double *rho);
/* Mass of the current initial condition (its zero Fourier mode times the
 * box volume); every evolve returns exactly this mass up to round-off. */
double af_heat_initial_mass(const af_heat_plan *p);

/* Periodic-wrap error of solving from rho0 on g up to s = kappa t: the L1
 * and max norm of (solution on g) - (solution on the doubled box), on g.
 * Either output may be NULL. Allocates its own plans (a check, not a hot loop). */
af_status af_heat_wrap_error(const af_grid *g, const double *rho0, double kappa, double t,
                             double *l1, double *linf);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

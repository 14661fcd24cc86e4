/* Comparing a particle cloud with a density (docs/theory.md section 5): kernel
 * density estimate on a PDE grid (FFT-based), L1/L2 density errors,
 * moments, exact Wasserstein distances in 1-D through quantile functions,
 * and sliced W2 in d > 1 with seeded directions. */
#ifndef AF_METRICS_H
#define AF_METRICS_H

#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "attnflow/error.h"
#include "attnflow/heat.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---- kernel density estimate on a grid ----
 * The KDE with a Gaussian kernel of standard deviation b per coordinate is
 * the heat semigroup at s = b^2 / 2 applied to the empirical measure, so it
 * is computed like the PDE: linear ("cloud in cell") binning of the
 * particles onto the nodes, one forward FFT, a multiplication by
 * exp(-|xi|^2 b^2 / 2), one inverse FFT. Binning smooths by the hat
 * function of width dx; with deconvolve = 1 its Fourier transform
 * sinc^2(xi dx / 2) is divided out, so the estimate is unbiased for
 * rho * G_b up to aliasing (keep b >~ 2 dx). The box is periodic, like the
 * PDE's: particles outside it are dropped and counted. A fair comparison
 * with a PDE solution rho(t) is against rho * G_b = the PDE at s + b^2 / 2
 * (af_heat_evolve with kappa t + b^2 / 2), which removes the smoothing bias
 * and leaves the sampling error. */
typedef struct af_kde_ws af_kde_ws;
af_kde_ws *af_kde_alloc(const af_grid *g, unsigned fftw_flags); /* NULL on failure */
void af_kde_free(af_kde_ws *ws);

typedef struct {
    double bandwidth;  /* b, std per coordinate of the Gaussian kernel (> 0) */
    int deconvolve;    /* divide out the binning kernel (default 1) */
} af_kde_options;
af_kde_options af_kde_options_default(void); /* b = 0.2, deconvolve 1 */

/* rho (grid nodes) = KDE of the n x d cloud X (d = grid dimension), each
 * particle weight 1/n. *outside (may be NULL): particles outside the box. */
af_status af_kde(af_kde_ws *ws, const af_kde_options *opt, size_t n, const double *X,
                 double *rho, size_t *outside);

/* Silverman's rule of thumb for a Gaussian-like cloud: b = sigma (4 / ((d + 2) n))^{1/(d+4)}
 * with sigma the mean per-coordinate standard deviation of X. */
double af_kde_silverman(size_t n, size_t d, const double *X);

/* L1 = sum |a - b| dV and L2 = sqrt(sum (a - b)^2 dV) over the grid (either may be NULL). */
void af_density_distance(const af_grid *g, const double *a, const double *b, double *l1,
                         double *l2);

/* Mean (d) and covariance (d x d, divided by n) of a cloud; cov may be NULL. */
af_status af_moments(size_t n, size_t d, const double *X, double *mean, double *cov);
/* Mean and covariance of a grid density, normalised by its mass (node values
 * times dV; cells read as piecewise constant, so each adds dx^2 / 12 per
 * coordinate; include_cell = 0 leaves that out, i.e. point masses at the nodes). */
af_status af_grid_moments(const af_grid *g, const double *rho, int include_cell, double *mean,
                          double *cov);

/* ---- 1-D measures as quantile functions ----
 * A probability measure on R stored as its quantile function Q(u), u in
 * [0, 1], piecewise linear with jumps: a list of segments [u0, u1] on which
 * Q goes linearly from x0 to x1. Atoms (samples) give flat segments; boxes
 * (uniform on [x - w/2, x + w/2], e.g. a grid cell) give sloped ones and may
 * overlap. Then W_p(a, b)^p = int_0^1 |Q_a(u) - Q_b(u)|^p du exactly
 * (p = 1, 2: piecewise-linear integrands integrated in closed form). */
typedef struct af_measure1d af_measure1d;
af_measure1d *af_measure1d_alloc(size_t max_points); /* NULL on failure */
void af_measure1d_free(af_measure1d *m);

/* k points x (stride apart in memory) with weights w (NULL = equal; >= 0,
 * normalised internally), each an atom (width = 0) or a uniform box of the
 * given width (its own width per point when widths != NULL). */
af_status af_measure1d_set(af_measure1d *m, size_t k, const double *x, size_t stride,
                           const double *w, double width, const double *widths);
/* A 1-D grid density read as piecewise constant on its cells. */
af_status af_measure1d_set_grid(af_measure1d *m, const af_grid *g, const double *rho);
/* W_p between two measures, p = 1 or 2. */
double af_wasserstein1d(const af_measure1d *a, const af_measure1d *b, int p);
/* Quantile function value Q(u). */
double af_measure1d_quantile(const af_measure1d *m, double u);

/* Convenience: exact W_p (p = 1, 2) between two 1-D samples of sizes n, m. */
af_status af_wasserstein1d_samples(size_t n, const double *x, size_t m, const double *y, int p,
                                   double *w);

/* ---- sliced W2 ----
 * SW2(a, b)^2 = (1/K) sum_k W2(theta_k # a, theta_k # b)^2 over K directions
 * drawn uniformly on the sphere S^{d-1} from rng (seeded by the caller, so
 * the same directions can be reused). A side is either a cloud (n x d,
 * equal weights) or a 2-D grid density: its node masses projected on theta,
 * each spread as a uniform box of width sqrt(dx^2 cos^2 + dy^2 sin^2) (the
 * variance of the projected cell). */
typedef struct {
    size_t n;             /* cloud: number of points (0 for a grid) */
    const double *X;      /* cloud: n x d */
    const af_grid *grid;  /* grid density (d = 2), when X == NULL */
    const double *rho;
} af_sliced_side;

/* directions (K x d, may be NULL) receives the directions drawn. */
af_status af_sliced_w2(size_t d, const af_sliced_side *a, const af_sliced_side *b, size_t K,
                       gsl_rng *rng, double *sw2, double *directions);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

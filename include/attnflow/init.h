/* Initial token clouds, every random draw from a caller-seeded gsl_rng. */
#ifndef AF_INIT_H
#define AF_INIT_H

#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

typedef enum {
    AF_INIT_GAUSSIAN = 0, /* N(mean, cov), default N(0, I) */
    AF_INIT_UNIFORM,      /* uniform on [-1, 1]^d */
    AF_INIT_MIXTURE,      /* equal-weight Gaussian mixture, centres ~ N(0, spread^2 I) */
    AF_INIT_SPHERE,       /* uniform on the unit sphere S^{d-1} */
    AF_INIT_EQUIANGULAR   /* n <= d + 1 unit vectors with pairwise inner product rho0 */
} af_init_kind;

typedef struct {
    af_init_kind kind;
    size_t n, d;
    const double *mean;   /* d, or NULL for 0 (gaussian) */
    const double *cov;    /* d x d symmetric positive definite, or NULL for I (gaussian) */
    size_t components;    /* mixture: number of components (default 3) */
    double spread;        /* mixture: std of the centres (default 2) */
    double width;         /* mixture: std of each component (default 0.5) */
    double rho0;          /* equiangular: pairwise inner product, in [-1/(n-1), 1) (default 0.1) */
} af_init_params;

af_init_params af_init_params_default(void);

/* Parses "gaussian", "uniform", "mixture", "sphere", "equiangular". */
af_status af_init_kind_from_name(const char *name, af_init_kind *kind);

/* Fills X (n x d, row-major). rng may be NULL for equiangular. */
af_status af_init_cloud(const af_init_params *p, gsl_rng *rng, double *X);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

/* Initial clouds. Gaussian covariances go through a Cholesky factor (GSL);
 * equiangular sets through the eigendecomposition of their Gram matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include "attnflow/init.h"

af_init_params af_init_params_default(void)
{
    af_init_params p = {0};
    p.kind = AF_INIT_GAUSSIAN;
    p.components = 3;
    p.spread = 2.0;
    p.width = 0.5;
    p.rho0 = 0.1;
    return p;
}

af_status af_init_kind_from_name(const char *name, af_init_kind *kind)
{
    static const char *const names[] = {"gaussian", "uniform", "mixture", "sphere", "equiangular"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(name, names[k]) == 0) {
            *kind = (af_init_kind)k;
            return AF_SUCCESS;
        }
    return af_error(AF_EINVAL, "unknown initial cloud '%s' (gaussian|uniform|mixture|sphere|equiangular)",
                    name);
}

static af_status init_gaussian(const af_init_params *p, gsl_rng *rng, double *X)
{
    size_t n = p->n, d = p->d;
    gsl_matrix *L = NULL;
    if (p->cov) {
        L = gsl_matrix_alloc(d, d);
        if (!L)
            return af_error(AF_ENOMEM, "out of memory");
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                if (p->cov[i * d + j] != p->cov[j * d + i]) {
                    gsl_matrix_free(L);
                    return af_error(AF_EINVAL, "covariance is not symmetric (entry %zu,%zu)", i + 1, j + 1);
                }
                gsl_matrix_set(L, i, j, p->cov[i * d + j]);
            }
        gsl_error_handler_t *old = gsl_set_error_handler_off();
        int rc = gsl_linalg_cholesky_decomp1(L);
        gsl_set_error_handler(old);
        if (rc) {
            gsl_matrix_free(L);
            return af_error(AF_EINVAL, "covariance is not positive definite");
        }
    }
    double z[d];
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < d; k++)
            z[k] = gsl_ran_gaussian_ziggurat(rng, 1.0);
        for (size_t k = 0; k < d; k++) {
            double v = z[k];
            if (L) { /* x = mean + L z, L lower triangular */
                v = 0;
                for (size_t l = 0; l <= k; l++)
                    v += gsl_matrix_get(L, k, l) * z[l];
            }
            X[i * d + k] = v + (p->mean ? p->mean[k] : 0.0);
        }
    }
    gsl_matrix_free(L);
    return AF_SUCCESS;
}

static af_status init_equiangular(const af_init_params *p, double *X)
{
    size_t n = p->n, d = p->d;
    double rho = p->rho0;
    if (n > d + 1)
        return af_error(AF_EINVAL, "equiangular: n = %zu tokens need d >= n - 1 (d = %zu)", n, d);
    if (!(rho < 1) || (n > 1 && rho < -1.0 / (double)(n - 1)))
        return af_error(AF_EINVAL, "equiangular: rho0 = %g outside [-1/(n-1), 1)", rho);
    /* Gram matrix G = (1 - rho) I + rho 1 1^T = U diag(lambda) U^T; the rows of
     * U sqrt(lambda) (positive lambda only, at most d of them) are the tokens. */
    gsl_matrix *G = gsl_matrix_alloc(n, n), *U = gsl_matrix_alloc(n, n);
    gsl_vector *lam = gsl_vector_alloc(n);
    gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc(n);
    af_status st = AF_SUCCESS;
    if (!G || !U || !lam || !w) {
        st = af_error(AF_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            gsl_matrix_set(G, i, j, i == j ? 1.0 : rho);
    gsl_eigen_symmv(G, lam, U, w);
    gsl_eigen_symmv_sort(lam, U, GSL_EIGEN_SORT_VAL_DESC);
    memset(X, 0, n * d * sizeof *X);
    for (size_t k = 0, col = 0; k < n; k++) {
        double l = gsl_vector_get(lam, k);
        if (l <= 1e-12)
            continue;
        if (col == d) {
            st = af_error(AF_EINVAL, "equiangular: Gram matrix has rank > d");
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            X[i * d + col] = gsl_matrix_get(U, i, k) * sqrt(l);
        col++;
    }
    /* Exact unit norms (round-off only). */
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t k = 0; k < d; k++)
            s += X[i * d + k] * X[i * d + k];
        s = sqrt(s);
        for (size_t k = 0; k < d; k++)
            X[i * d + k] /= s;
    }
done:
    gsl_matrix_free(G);
    gsl_matrix_free(U);
    gsl_vector_free(lam);
    if (w)
        gsl_eigen_symmv_free(w);
    return st;
}

af_status af_init_cloud(const af_init_params *p, gsl_rng *rng, double *X)
{
    size_t n = p->n, d = p->d;
    if (n == 0 || d == 0)
        return af_error(AF_EINVAL, "init: n and d must be >= 1 (n = %zu, d = %zu)", n, d);
    if (p->kind != AF_INIT_EQUIANGULAR && !rng)
        return af_error(AF_EINVAL, "init: a random generator is required");
    switch (p->kind) {
    case AF_INIT_GAUSSIAN:
        return init_gaussian(p, rng, X);
    case AF_INIT_UNIFORM:
        for (size_t i = 0; i < n * d; i++)
            X[i] = gsl_ran_flat(rng, -1.0, 1.0);
        return AF_SUCCESS;
    case AF_INIT_MIXTURE: {
        size_t K = p->components ? p->components : 1;
        double *centres = malloc(K * d * sizeof *centres);
        if (!centres)
            return af_error(AF_ENOMEM, "out of memory");
        for (size_t k = 0; k < K * d; k++)
            centres[k] = gsl_ran_gaussian_ziggurat(rng, p->spread);
        for (size_t i = 0; i < n; i++) {
            size_t c = gsl_rng_uniform_int(rng, K);
            for (size_t k = 0; k < d; k++)
                X[i * d + k] = centres[c * d + k] + gsl_ran_gaussian_ziggurat(rng, p->width);
        }
        free(centres);
        return AF_SUCCESS;
    }
    case AF_INIT_SPHERE:
        for (size_t i = 0; i < n; i++)
            gsl_ran_dir_nd(rng, d, X + i * d);
        return AF_SUCCESS;
    case AF_INIT_EQUIANGULAR:
        return init_equiangular(p, X);
    }
    return af_error(AF_EINVAL, "init: unknown kind %d", (int)p->kind);
}

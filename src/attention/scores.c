/* Score matrices through CBLAS: dot scores are one or two dgemm calls, L2
 * scores a dgemm plus squared norms (|x - y|^2 = |x|^2 + |y|^2 - 2 x.y). */
#include "core/af_blas.h"
#include <math.h>
#include <string.h>
#include "attnflow/scores.h"
#include "normalize_internal.h"

af_scores_params af_scores_params_default(void)
{
    af_scores_params p = {AF_SCORES_DOT, 1.0, 1.0, NULL};
    return p;
}

int af_matrix_is_symmetric(size_t d, const double *A)
{
    if (!A)
        return 1;
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++)
            if (A[i * d + j] != A[j * d + i])
                return 0;
    return 1;
}

/* Mirror the upper triangle so that C is symmetric bit for bit. In tiles,
 * so that the column-wise reads stay in cache (a plain double loop strides
 * through memory and costs more than the dgemm at large n). */
#define AF_TILE 64
void af__mirror_upper(size_t n, double *C)
{
#pragma omp parallel for schedule(dynamic, 1) if ((double)n * n >= 262144.0)
    for (size_t bi = 0; bi < n; bi += AF_TILE)
        for (size_t bj = 0; bj <= bi; bj += AF_TILE) {
            size_t ie = bi + AF_TILE < n ? bi + AF_TILE : n;
            size_t je = bj + AF_TILE < n ? bj + AF_TILE : n;
            for (size_t i = bi; i < ie; i++)
                for (size_t j = bj; j < je && j < i; j++)
                    C[i * n + j] = C[j * n + i];
        }
}

/* Up to this d, L2 self-scores are written row by row in one pass: the
 * dot products by hand, bias and clip with them, each row in full. For d
 * = 2 at n = 1e4 that is one write of C instead of dsyrk, a bias pass and
 * the mirror's transposed copy (0.13-0.16 s -> one memory-bound sweep).
 * The expression is symmetric in i and j (products commute, the k order
 * is fixed), so C stays exactly symmetric. */
#define AF_SCORES_DIRECT_MAX_D 16

static void l2_scores_direct(size_t n, size_t d, const double *X, double scale, const double *nx,
                             double *C)
{
    const double h = 0.5 * scale;
#pragma omp parallel for schedule(static) if ((double)n * n >= 262144.0)
    for (size_t i = 0; i < n; i++) {
        const double *xi = X + i * d;
        double *c = C + i * n;
        if (d == 2) { /* the flows' case: one vectorised loop */
            const double a0 = xi[0], a1 = xi[1], hi = nx[i];
#pragma omp simd
            for (size_t j = 0; j < n; j++) {
                const double v = scale * (a0 * X[2 * j] + a1 * X[2 * j + 1]) - h * (hi + nx[j]);
                c[j] = v > 0 ? 0 : v;
            }
            c[i] = 0;
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            const double *xj = X + j * d;
            double dot = 0;
            for (size_t k = 0; k < d; k++)
                dot += xi[k] * xj[k];
            const double v = scale * dot - h * (nx[i] + nx[j]);
            c[j] = v > 0 ? 0 : v; /* -|x-y|^2 <= 0; clip round-off */
        }
        c[i] = 0; /* exactly -|x_i - x_i|^2 */
    }
}

af_status af_scores(const af_scores_params *p, size_t n, size_t m, size_t d,
                    const double *X, const double *Y, double *C, double *work)
{
    if (n == 0 || m == 0 || d == 0)
        return af_error(AF_EINVAL, "scores: sizes must be >= 1 (n = %zu, m = %zu, d = %zu)", n, m, d);
    if (!(p->eps > 0) || !isfinite(p->eps))
        return af_error(AF_EINVAL, "scores: eps must be > 0 and finite (got %g)", p->eps);
    if (!isfinite(p->beta))
        return af_error(AF_EINVAL, "scores: beta must be finite (got %g)", p->beta);
    /* the L2 kernels clip round-off at 0 from above (-|x - y|^2 <= 0), which
     * is only right for beta >= 0 */
    if (p->kind == AF_SCORES_L2 && p->beta < 0)
        return af_error(AF_EINVAL, "scores: L2 scores need beta >= 0 (got %g)", p->beta);
    const double scale = p->beta / p->eps;
    const int same = (X == Y) && n == m;

    if (p->kind == AF_SCORES_DOT) {
        const double *left = X;
        if (p->A) {
            for (size_t k = 0; k < d * d; k++)
                if (!isfinite(p->A[k]))
                    return af_error(AF_EDOM, "scores: A has a non-finite entry (%zu)", k);
            /* work = X A (n x d) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d, (int)d, 1.0, X,
                        (int)d, p->A, (int)d, 0.0, work, (int)d);
            left = work;
        }
        if (same && !p->A) {
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)d, scale, X, (int)d,
                        0.0, C, (int)n);
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)d, scale, left,
                        (int)d, Y, (int)d, 0.0, C, (int)m);
        }
        if (same && af_matrix_is_symmetric(d, p->A))
            af__mirror_upper(n, C);
        return AF_SUCCESS;
    }
    if (p->kind == AF_SCORES_L2) {
        double *nx = work, *ny = work + n;
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t k = 0; k < d; k++)
                s += X[i * d + k] * X[i * d + k];
            nx[i] = s;
        }
        for (size_t j = 0; j < m; j++) {
            double s = 0;
            for (size_t k = 0; k < d; k++)
                s += Y[j * d + k] * Y[j * d + k];
            ny[j] = s;
        }
        const double h = 0.5 * scale;
        if (same && d <= AF_SCORES_DIRECT_MAX_D) {
            l2_scores_direct(n, d, X, scale, nx, C);
            return AF_SUCCESS;
        }
        /* C = scale * X Y^T, then C_ij -= scale (|x_i|^2 + |y_j|^2) / 2 */
        if (same)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)d, scale, X, (int)d,
                        0.0, C, (int)n);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)d, scale, X,
                        (int)d, Y, (int)d, 0.0, C, (int)m);
#pragma omp parallel for schedule(static) if ((double)n * m >= 262144.0)
        for (size_t i = 0; i < n; i++) {
            size_t j0 = same ? i : 0;
            for (size_t j = j0; j < m; j++) {
                double c = C[i * m + j] - h * (nx[i] + ny[j]);
                C[i * m + j] = c > 0 ? 0 : c; /* -|x-y|^2 <= 0; clip round-off */
            }
        }
        if (same) {
            for (size_t i = 0; i < n; i++)
                C[i * n + i] = 0; /* exactly -|x_i - x_i|^2 */
            af__mirror_upper(n, C);
        }
        return AF_SUCCESS;
    }
    return af_error(AF_EINVAL, "scores: unknown kind %d", (int)p->kind);
}

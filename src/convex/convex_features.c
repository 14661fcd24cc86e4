/* Token features of a frozen backbone (attnflow train --features-out) as
 * convex-head data: a text matrix, one sample a line (set, label, then
 * the n x d token features token-major), its sizes in '#' metadata lines
 * feature_tokens, feature_dim and (optional) feature_grid HxW. */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void af_convex_features_free(af_convex_features *f)
{
    free(f->x[0]);
    free(f->x[1]);
    free(f->y[0]);
    free(f->y[1]);
    memset(f, 0, sizeof *f);
}

/* Reads the "# key: value" lines that give the sizes. */
static af_status read_sizes(const char *path, af_convex_features *f)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return af_error(AF_EIO, "%s: cannot open", path);
    char line[512];
    while (fgets(line, sizeof line, fp) && line[0] == '#') {
        size_t a, b;
        if (sscanf(line, "# feature_tokens: %zu", &a) == 1)
            f->n = a;
        else if (sscanf(line, "# feature_dim: %zu", &a) == 1)
            f->d = a;
        else if (sscanf(line, "# feature_grid: %zux%zu", &a, &b) == 2) {
            f->grid_h = a;
            f->grid_w = b;
        }
        /* long lines (the command) are read in pieces; a piece that does
         * not start with '#' after a full comment line ends the header */
        while (!strchr(line, '\n') && fgets(line, sizeof line, fp))
            ;
    }
    fclose(fp);
    if (f->n == 0 || f->d == 0)
        return af_error(AF_EFORMAT, "%s: no '# feature_tokens:' and '# feature_dim:' lines "
                        "(not a features file of attnflow train --features-out?)", path);
    if (f->grid_h && f->grid_h * f->grid_w != f->n)
        return af_error(AF_EFORMAT, "%s: feature_grid %zux%zu does not hold %zu tokens", path,
                        f->grid_h, f->grid_w, f->n);
    return AF_SUCCESS;
}

af_status af_convex_features_read(const char *path, af_convex_features *f)
{
    memset(f, 0, sizeof *f);
    af_status st = read_sizes(path, f);
    if (st)
        return st;
    double *a = NULL;
    size_t rows = 0, cols = 0, row = f->n * f->d;
    st = af_read_matrix(path, &a, &rows, &cols);
    if (st)
        return st;
    if (rows == 0)
        st = af_error(AF_EFORMAT, "%s: no samples", path);
    else if (cols != 2 + row)
        st = af_error(AF_EFORMAT, "%s: %zu numbers a line, expected 2 + %zu x %zu = %zu "
                      "(set, label, token features)", path, cols, f->n, f->d, 2 + row);
    size_t count[2] = {0, 0};
    int maxlab = -1;
    for (size_t i = 0; !st && i < rows; i++) {
        double s = a[i * cols], y = a[i * cols + 1];
        if (s != 0 && s != 1)
            st = af_error(AF_EFORMAT, "%s: sample %zu: set %g is neither 0 (train) nor 1 (test)",
                          path, i + 1, s);
        else if (!(y >= 0) || y != floor(y) || y > 1e6)
            st = af_error(AF_EFORMAT, "%s: sample %zu: label %g is not a class index >= 0", path,
                          i + 1, y);
        else {
            count[(int)s]++;
            maxlab = (int)y > maxlab ? (int)y : maxlab;
        }
    }
    if (!st && (count[0] == 0 || count[1] == 0))
        st = af_error(AF_EFORMAT, "%s: needs train (set 0) and test (set 1) samples (%zu, %zu)",
                      path, count[0], count[1]);
    for (int k = 0; !st && k < 2; k++) {
        f->N[k] = count[k];
        f->x[k] = malloc(count[k] * row * sizeof *f->x[k]);
        f->y[k] = malloc(count[k] * sizeof *f->y[k]);
        if (!f->x[k] || !f->y[k])
            st = af_error(AF_ENOMEM, "%s: out of memory", path);
    }
    if (!st) {
        size_t at[2] = {0, 0};
        f->classes = (size_t)maxlab + 1;
        for (size_t i = 0; i < rows; i++) {
            int k = (int)a[i * cols];
            memcpy(f->x[k] + at[k] * row, a + i * cols + 2, row * sizeof *a);
            f->y[k][at[k]++] = (int)a[i * cols + 1];
        }
    }
    free(a);
    if (st)
        af_convex_features_free(f);
    return st;
}

af_status af_convex_features_pool(af_convex_features *f, size_t dim)
{
    if (dim == 0 || dim > f->d)
        return af_error(AF_EINVAL, "feature pooling: --pool-dim %zu must be in 1..%zu", dim, f->d);
    /* average pooling of the feature axis into dim windows of (nearly) equal
     * width: window j covers [floor(j d / dim), floor((j + 1) d / dim)) */
    size_t d = f->d;
    for (int k = 0; k < 2; k++) {
        size_t T = f->N[k] * f->n;
        for (size_t t = 0; t < T; t++) {
            const double *src = f->x[k] + t * d;
            double out[dim];
            for (size_t j = 0; j < dim; j++) {
                size_t a = j * d / dim, b = (j + 1) * d / dim;
                double s = 0;
                for (size_t q = a; q < b; q++)
                    s += src[q];
                out[j] = s / (double)(b - a);
            }
            memcpy(f->x[k] + t * dim, out, dim * sizeof *out); /* in place: t * dim <= t * d */
        }
    }
    f->d = dim;
    return AF_SUCCESS;
}

void af_convex_features_pool_tokens(af_convex_features *f)
{
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < f->N[k]; i++)
            for (size_t q = 0; q < f->d; q++) {
                double s = 0;
                for (size_t t = 0; t < f->n; t++)
                    s += f->x[k][(i * f->n + t) * f->d + q];
                f->x[k][i * f->d + q] = s / (double)f->n; /* in place: i d <= i n d */
            }
    f->n = 1;
    f->grid_h = f->grid_w = 0;
}

void af_convex_features_standardise(af_convex_features *f)
{
    size_t T0 = f->N[0] * f->n, d = f->d;
    for (size_t q = 0; q < d; q++) {
        double m = 0, v = 0;
        for (size_t t = 0; t < T0; t++)
            m += f->x[0][t * d + q];
        m /= (double)T0;
        for (size_t t = 0; t < T0; t++)
            v += (f->x[0][t * d + q] - m) * (f->x[0][t * d + q] - m);
        double sd = sqrt(v / (double)T0), sc = (sd > 0 ? 1 / sd : 1.0) / sqrt((double)f->n);
        for (int k = 0; k < 2; k++)
            for (size_t t = 0; t < f->N[k] * f->n; t++)
                f->x[k][t * d + q] = (f->x[k][t * d + q] - m) * sc;
    }
}

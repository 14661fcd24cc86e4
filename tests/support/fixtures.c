#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "fixtures.h"

double *fx_gaussian_cloud(size_t n, size_t d, double s, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double *X = malloc(n * d * sizeof *X);
    for (size_t i = 0; i < n * d; i++)
        X[i] = gsl_ran_gaussian(r, s);
    gsl_rng_free(r);
    return X;
}

double fx_max_abs_diff(size_t len, const double *a, const double *b)
{
    double m = 0;
    for (size_t i = 0; i < len; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

void fx_naive_dot_scores(size_t n, size_t d, const double *X, const double *A, double eps, double *C)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t k = 0; k < d; k++)
                for (size_t l = 0; l < d; l++)
                    s += X[i * d + k] * (A ? A[k * d + l] : (k == l)) * X[j * d + l];
            C[i * n + j] = s / eps;
        }
}

void fx_naive_sinkhorn(size_t n, size_t m, const double *C, size_t iters, double *K)
{
    long double *P = malloc(n * m * sizeof *P);
    for (size_t i = 0; i < n * m; i++)
        P[i] = expl((long double)C[i]);
    for (size_t it = 0; it < iters; it++) {
        if (it % 2 == 0) {
            for (size_t i = 0; i < n; i++) {
                long double s = 0;
                for (size_t j = 0; j < m; j++)
                    s += P[i * m + j];
                for (size_t j = 0; j < m; j++)
                    P[i * m + j] /= s;
            }
        } else {
            for (size_t j = 0; j < m; j++) {
                long double s = 0;
                for (size_t i = 0; i < n; i++)
                    s += P[i * m + j];
                for (size_t i = 0; i < n; i++)
                    P[i * m + j] *= ((long double)n / m) / s;
            }
        }
    }
    for (size_t i = 0; i < n * m; i++)
        K[i] = (double)P[i];
    free(P);
}

void fx_marginal_errors(size_t n, size_t m, const double *K, double *row_err, double *col_err)
{
    double re = 0, ce = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < m; j++)
            s += K[i * m + j];
        re = fmax(re, fabs(s - 1));
    }
    for (size_t j = 0; j < m; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += K[i * m + j];
        ce = fmax(ce, fabs(s * m / n - 1));
    }
    *row_err = re;
    *col_err = ce;
}

const char *fx_temp_file(const char *text)
{
    static char paths[16][64];
    static int slot;
    char *p = paths[slot++ % 16];
    snprintf(p, 64, "/tmp/af_test_XXXXXX");
    int fd = mkstemp(p);
    if (fd < 0)
        return NULL;
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    close(fd);
    return p;
}

int fx_run_cli(const char *cli, const char *args, char *out, size_t cap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli, args);
    FILE *p = popen(cmd, "r");
    if (!p) {
        out[0] = '\0';
        return -1;
    }
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

af_dataset fx_toy_classes(size_t n, gsl_rng *r)
{
    af_dataset ds = {n, 4, 2, 2, malloc(n * 8 * sizeof(double)), malloc(n * sizeof(int))};
    for (size_t i = 0; i < n; i++) {
        ds.y[i] = (int)(i % 2);
        for (size_t k = 0; k < 8; k++)
            ds.x[i * 8 + k] = (ds.y[i] ? 1.0 : -1.0) + gsl_ran_gaussian(r, 0.5);
    }
    return ds;
}

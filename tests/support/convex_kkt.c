#include "convex_kkt.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>

fx_kkt_result fx_convex_kkt(af_convex_problem *p, const double *Z, double beta)
{
    fx_kkt_result res = {0, INFINITY, INFINITY};
    af_convex_layout lay = af_convex_problem_layout(p);
    size_t R = lay.rows, C = lay.cols, zg = R * C, zs = af_convex_z_size(p);
    size_t cap = lay.blocks * (R < C ? R : C), m;
    double *G = malloc(zs * sizeof *G), *W1 = malloc(cap * R * sizeof *W1);
    double *W2 = malloc(cap * C * sizeof *W2), *sig = malloc(cap * sizeof *sig);
    double *E = calloc(C, sizeof *E), *Zi = malloc(zs * sizeof *Zi), *w1 = malloc(R * sizeof *w1);
    double *A = malloc(R * cap * sizeof *A), *B = malloc(C * cap * sizeof *B);
    double *T1 = malloc(zg * sizeof *T1), *Wm = malloc(zg * sizeof *Wm);
    double *sv = malloc((R < C ? R : C) * sizeof *sv);
    size_t *go = malloc(cap * sizeof *go);
    if (af_convex_gradient(p, Z, NULL, G) || af_convex_heads_from_z(p, Z, 1e-9, cap, &m, W1, W2, go, sig))
        goto done;
    res.heads = m;
    res.align_err = res.w_norm = 0;
    E[0] = 1;
    for (size_t q = 0; q < lay.blocks; q++) {
        size_t r = 0;
        for (size_t h = 0; h < m; h++) {
            if (go[h] != q)
                continue;
            double s = sqrt(sig[h]);
            for (size_t a = 0; a < R; a++)
                w1[a] = W1[h * R + a] / s;
            af_convex_z_from_heads(p, 1, w1, E, NULL, Zi); /* column 0 = the Z-row image of w1 */
            for (size_t a = 0; a < R; a++)
                A[a * cap + r] = Zi[a * C];
            for (size_t b = 0; b < C; b++)
                B[b * cap + r] = W2[h * C + b] / s;
            r++;
        }
        const double *Gq = G + q * zg;
        for (size_t i = 0; i < r; i++) /* A^T G B = -beta I */
            for (size_t j = 0; j < r; j++) {
                double v = 0;
                for (size_t a = 0; a < R; a++)
                    for (size_t b = 0; b < C; b++)
                        v += A[a * cap + i] * Gq[a * C + b] * B[b * cap + j];
                double e = fabs(v - (i == j ? -beta : 0.0));
                res.align_err = e > res.align_err ? e : res.align_err;
            }
        /* W = -(I - A A^T) G (I - B B^T) / beta */
        for (size_t a = 0; a < R; a++)
            for (size_t b = 0; b < C; b++) {
                double v = Gq[a * C + b];
                for (size_t i = 0; i < r; i++) {
                    double ag = 0;
                    for (size_t u = 0; u < R; u++)
                        ag += A[u * cap + i] * Gq[u * C + b];
                    v -= A[a * cap + i] * ag;
                }
                T1[a * C + b] = v;
            }
        for (size_t a = 0; a < R; a++)
            for (size_t b = 0; b < C; b++) {
                double v = T1[a * C + b];
                for (size_t i = 0; i < r; i++) {
                    double tb = 0;
                    for (size_t u = 0; u < C; u++)
                        tb += T1[a * C + u] * B[u * cap + i];
                    v -= tb * B[b * cap + i];
                }
                Wm[a * C + b] = -v / beta;
            }
        size_t rk;
        if (af_svt(R, C, Wm, 0.0, sv, &rk)) {
            res.w_norm = INFINITY;
            goto done;
        }
        res.w_norm = sv[0] > res.w_norm ? sv[0] : res.w_norm;
    }
done:
    free(G); free(W1); free(W2); free(sig); free(E); free(Zi); free(w1);
    free(A); free(B); free(T1); free(Wm); free(sv); free(go);
    return res;
}

void fx_gaussian_fill(void *rng, size_t len, double s, double *a)
{
    for (size_t q = 0; q < len; q++)
        a[q] = s * gsl_ran_gaussian((gsl_rng *)rng, 1.0);
}

double fx_maxabs(size_t len, const double *a)
{
    double m = 0;
    for (size_t q = 0; q < len; q++)
        m = fabs(a[q]) > m ? fabs(a[q]) : m;
    return m;
}

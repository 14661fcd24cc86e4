/* Extrapolated warm starts of the flows' Sinkhorn solves (potential_history.h). */
#include <stdlib.h>
#include <string.h>
#include "potential_history.h"

int pot_history_alloc(pot_history *h, size_t n)
{
    int ok = 1;
    h->len = 0;
    for (size_t k = 0; k < POT_HIST; k++) {
        ok &= (h->f[k] = malloc(n * sizeof(double))) != NULL;
        ok &= (h->g[k] = malloc(n * sizeof(double))) != NULL;
    }
    return ok;
}

void pot_history_free(pot_history *h)
{
    for (size_t k = 0; k < POT_HIST; k++) {
        free(h->f[k]);
        free(h->g[k]);
        h->f[k] = h->g[k] = NULL;
    }
    h->len = 0;
}

void pot_history_record(pot_history *h, size_t n, double t, const double *f, const double *g)
{
    if (h->len > 0 && !(t > h->t[0]))
        h->len = 0; /* time went back: a new integration */
    double *of = h->f[POT_HIST - 1], *og = h->g[POT_HIST - 1];
    for (size_t k = POT_HIST - 1; k > 0; k--) {
        h->f[k] = h->f[k - 1];
        h->g[k] = h->g[k - 1];
        h->t[k] = h->t[k - 1];
    }
    h->f[0] = of;
    h->g[0] = og;
    h->t[0] = t;
    if (h->len < POT_HIST)
        h->len++;
    memcpy(of, f, n * sizeof(double));
    memcpy(og, g, n * sizeof(double));
}

int pot_history_predict(const pot_history *h, size_t n, double t, double *pf, double *pg)
{
    const size_t m = h->len;
    const double *ht = h->t;
    if (m < 2 || !(t > ht[0]))
        return 0;
    double w[POT_HIST]; /* Lagrange weights of the stored times at t */
    for (size_t a = 0; a < m; a++) {
        w[a] = 1;
        for (size_t b = 0; b < m; b++)
            if (b != a)
                w[a] *= (t - ht[b]) / (ht[a] - ht[b]);
    }
    for (size_t i = 0; i < n; i++) {
        double f = 0, g = 0;
        for (size_t a = 0; a < m; a++) {
            f += w[a] * h->f[a][i];
            g += w[a] * h->g[a][i];
        }
        pf[i] = f;
        pg[i] = g;
    }
    return 1;
}

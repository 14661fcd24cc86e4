/* Warm starts of the Sinkhorn solves along a flow (private to src/flow/):
 * the potentials of the last POT_HIST solves of one integrator stage,
 * newest first, and their extrapolation to the next stage time, for
 * flow.c (every attention backend, particle-mesh included). */
#ifndef AF_FLOW_POTENTIAL_HISTORY_H
#define AF_FLOW_POTENTIAL_HISTORY_H

#include <stddef.h>

#define POT_HIST 4 /* cubic extrapolation */

typedef struct {
    double *f[POT_HIST], *g[POT_HIST], t[POT_HIST]; /* slot 0 newest */
    size_t len;                                      /* solves stored */
} pot_history;

/* Buffers for n potentials per slot; 0 on out of memory (free it anyway). */
int pot_history_alloc(pot_history *h, size_t n);
void pot_history_free(pot_history *h);

/* Stores the potentials f, g (n each) of a solve at time t; a time not
 * after the newest starts a new history (a new integration). */
void pot_history_record(pot_history *h, size_t n, double t, const double *f, const double *g);

/* The Lagrange polynomial through the stored solves, evaluated at t, into
 * pf, pg (n each): 1. Returns 0 (pf, pg untouched) with fewer than two
 * solves or t not after the newest: the caller then starts from the newest
 * solve, if any. */
int pot_history_predict(const pot_history *h, size_t n, double t, double *pf, double *pg);

#endif

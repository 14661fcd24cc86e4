/* The Sinkhorn log paths on a block of rows: what each normalisation
 * exchanges between ranks (attnflow/comm.h). Each rank visits the score
 * rows of its block, all n columns, so
 *   - an alternating pass has the row LSEs of its own rows and partial
 *     column sums: one allreduce of the m column sums (plus the two row
 *     errors); the column update is then the same on every rank, and the
 *     row potentials of a rank's rows are only read by that rank;
 *   - a symmetric pass has LSE_j(C_ij + f_j) of its own rows: one allgather
 *     of those n values; every rank then makes the same relaxed update
 *     and the same error from all of them.
 * The row shifts and the checks of af_sinkhorn_set are shared once per
 * solve. A path that is not row-block aware (a pass over upper triangles,
 * say) must not be chosen while ws->comm is set: af_sinkhorn_set then keeps
 * the log paths above. */
#include <math.h>
#include "normalize_internal.h"

void af__sinkhorn_distribute(af_sinkhorn_ws *ws, const af_comm *comm)
{
    ws->comm = af_comm_distributed(comm) ? comm : NULL;
    if (ws->comm)
        af_comm_rows(ws->n, comm->rank, comm->size, &ws->row_begin, &ws->row_end);
    else
        ws->row_begin = 0, ws->row_end = ws->n;
}

void af__sinkhorn_share_set(af_sinkhorn_ws *ws, double *range, double *deficit, long *bad_row)
{
    const af_comm *c = ws->comm;
    double v[3] = {*range, *deficit, (double)*bad_row};
    c->allreduce_max(c, v, 3);
    *range = v[0];
    *deficit = v[1];
    *bad_row = (long)v[2];
    c->allgather_rows(c, ws->shift, ws->n, 1);
}

void af__sinkhorn_share_pass(af_sinkhorn_ws *ws, double *row_err, double *next_err)
{
    const af_comm *c = ws->comm;
    double e[2] = {*row_err, *next_err};
    c->allreduce_sum(c, ws->csum, ws->m);
    c->allreduce_max(c, e, 2);
    *row_err = e[0];
    *next_err = e[1];
}

double af__sinkhorn_share_sym(af_sinkhorn_ws *ws)
{
    const af_comm *c = ws->comm;
    c->allgather_rows(c, ws->f_next, ws->n, 1);
    double err = 0;
    for (size_t i = 0; i < ws->n; i++)
        err = fmax(err, fabs(exp(ws->f[i] + ws->f_next[i]) - 1.0));
    return err;
}

double af__sinkhorn_share_max(const af_sinkhorn_ws *ws, double x)
{
    if (ws->comm)
        ws->comm->allreduce_max(ws->comm, &x, 1);
    return x;
}

double af__sinkhorn_share_sum(const af_sinkhorn_ws *ws, double x)
{
    if (ws->comm)
        ws->comm->allreduce_sum(ws->comm, &x, 1);
    return x;
}

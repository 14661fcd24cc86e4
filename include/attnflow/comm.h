/* Communication hooks for running one computation on several processes
 * (MPI ranks) without libattnflow depending on MPI.
 *
 * The n tokens are split into P contiguous row blocks, rank r owning rows
 * [af_comm_rows(n, r, P)). A distributed workspace computes only its rows
 * of the n x n attention and exchanges through these hooks exactly what the
 * arithmetic needs (attnflow/backend.h says what, per normalisation). The
 * caller (the CLI's src/cli/mpi_comm.c for MPI, tests with threads) fills
 * the function pointers; every rank must call each hook in the same order
 * (they are collective). A NULL af_comm pointer means one process.
 *
 * Hooks must not fail (MPI's default error handler ends the job); each
 * must give bit-identical results on every rank, so that every rank takes
 * the same decisions (stopping tests) from the same numbers. */
#ifndef AF_COMM_H
#define AF_COMM_H

#include <stddef.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct af_comm af_comm;
struct af_comm {
    int rank, size;  /* this process, number of processes (>= 1) */
    void *ctx;       /* the implementation's state (e.g. an MPI communicator) */
    /* x[0..k) <- elementwise sum / max over the ranks, in place. */
    void (*allreduce_sum)(const af_comm *c, double *x, size_t k);
    void (*allreduce_max)(const af_comm *c, double *x, size_t k);
    /* x is n rows of `width` doubles; rank r holds the rows
     * af_comm_rows(n, r, size): afterwards every rank holds all n rows. */
    void (*allgather_rows)(const af_comm *c, double *x, size_t n, size_t width);
    /* Agreement on a status: returns the status of the lowest rank whose
     * `local` is not AF_SUCCESS (AF_SUCCESS if none) and sets af_last_error()
     * on every rank to that rank's message. */
    af_status (*agree)(const af_comm *c, af_status local);
};

/* Rank r's block of n rows, [*begin, *end): contiguous, balanced (sizes
 * differ by at most one, the larger first). */
void af_comm_rows(size_t n, int rank, int size, size_t *begin, size_t *end);

/* Number of doubles of a row block exchange: counts[r] = rows of rank r
 * times width, displs[r] = its offset. For hooks that call allgatherv. */
void af_comm_counts(size_t n, size_t width, int size, size_t *counts, size_t *displs);

/* 1 when c describes more than one process. */
int af_comm_distributed(const af_comm *c);

#ifdef __cplusplus
}
#endif
#endif

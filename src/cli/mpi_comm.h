/* The CLI's place in an mpirun job. attnflow initialises MPI only when an
 * MPI launcher started it (OMPI_COMM_WORLD_SIZE / PMI_SIZE in the
 * environment); a plain `attnflow ...` never touches MPI. Built without
 * MPI (no libopenmpi-dev), a run under mpirun with several ranks is refused.
 *
 * Under P > 1 ranks: rank 0 reads the inputs and broadcasts them, writes
 * every output file and every line of stdout/stderr (the other ranks'
 * stdout and stderr go to /dev/null); a failure on any rank is agreed on
 * (cli_mpi_agree) so that all ranks stop together and rank 0 prints the
 * failing rank's one 'attnflow:' line. */
#ifndef AF_CLI_MPI_COMM_H
#define AF_CLI_MPI_COMM_H

#include <stddef.h>
#include "attnflow/comm.h"

/* Before the command runs. 0, or an exit status (after one error line). */
int cli_mpi_init(int *argc, char ***argv);
/* After it: agrees on the exit status (the lowest failing rank's, its
 * message printed by rank 0 if rank 0 had none) and finalises MPI; returns
 * it on rank 0 and 0 on the other ranks (the job's status is rank 0's). */
int cli_mpi_finalize(int rc);

int cli_mpi_rank(void);
int cli_mpi_size(void);
int cli_mpi_root(void); /* rank 0 (or one process) */
/* The library's hooks for this job; NULL on one process. */
const af_comm *cli_mpi_comm(void);

/* Agreement on an exit status rc of this rank (0 = fine): returns the
 * status of the lowest failing rank, 0 if none; rank 0 prints that rank's
 * last cli_fail message when it was not rank 0's own. Collective. */
int cli_mpi_agree(int rc);
/* Whether flag is set on any rank (collective; flag itself on one process). */
int cli_mpi_any(int flag);
/* After rank 0 alone produced a rows x cols matrix *M (or NULL, 0 x 0)
 * with status rc: agrees on rc, then broadcasts the sizes and the values
 * to every rank (malloc'ed there). Returns the agreed status. */
int cli_mpi_share(int rc, double **M, size_t *rows, size_t *cols);

/* Payload bytes this rank passed to the library's hooks (for make bench). */
double cli_mpi_bytes_sent(void);

#endif

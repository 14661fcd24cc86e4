/* MPI (OpenMPI) behind the library's communication hooks (attnflow/comm.h)
 * and the CLI's agreement on statuses (mpi_comm.h). Compiled with MPI when
 * the Makefile finds `pkg-config ompi-c` (-DAF_HAVE_MPI); otherwise every
 * function describes one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attnflow/error.h"
#include "cli.h"
#include "mpi_comm.h"

static int the_rank = 0, the_size = 1;

/* The launcher's rank and size from the environment (-1 if not launched). */
static int launcher_env(const char *const *names)
{
    for (size_t k = 0; names[k]; k++) {
        const char *v = getenv(names[k]);
        if (v && *v)
            return atoi(v);
    }
    return -1;
}
static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};

int cli_mpi_rank(void) { return the_rank; }
int cli_mpi_size(void) { return the_size; }
int cli_mpi_root(void) { return the_rank == 0; }

#ifdef AF_HAVE_MPI
#include <mpi.h>

static int initialised = 0;
static af_comm the_comm;
static double bytes_sent = 0;

static void mpi_sum(const af_comm *c, double *x, size_t k)
{
    (void)c;
    bytes_sent += 8.0 * (double)k;
    MPI_Allreduce(MPI_IN_PLACE, x, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static void mpi_max(const af_comm *c, double *x, size_t k)
{
    (void)c;
    bytes_sent += 8.0 * (double)k;
    MPI_Allreduce(MPI_IN_PLACE, x, (int)k, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

static void mpi_gather(const af_comm *c, double *x, size_t n, size_t width)
{
    int *counts = malloc(2 * (size_t)c->size * sizeof *counts), *displs = counts + c->size;
    size_t *sc = malloc(2 * (size_t)c->size * sizeof *sc);
    if (!counts || !sc)
        MPI_Abort(MPI_COMM_WORLD, 1); /* a few bytes: nothing sensible is left to do */
    af_comm_counts(n, width, c->size, sc, sc + c->size);
    for (int r = 0; r < c->size; r++) {
        counts[r] = (int)sc[r];
        displs[r] = (int)sc[c->size + r];
    }
    bytes_sent += 8.0 * (double)counts[c->rank];
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, counts, displs, MPI_DOUBLE,
                   MPI_COMM_WORLD);
    free(counts);
    free(sc);
}

/* The lowest failing rank's status and message, on every rank. */
typedef struct {
    int code;
    char msg[1024];
} failure;

static int lowest_failing(int failed)
{
    int me = failed ? the_rank : the_size, first;
    MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return first;
}

static af_status mpi_agree(const af_comm *c, af_status local)
{
    (void)c;
    int first = lowest_failing(local != AF_SUCCESS);
    if (first == the_size)
        return AF_SUCCESS;
    failure f = {(int)local, ""};
    if (the_rank == first)
        snprintf(f.msg, sizeof f.msg, "%s", af_last_error());
    MPI_Bcast(&f, sizeof f, MPI_BYTE, first, MPI_COMM_WORLD);
    if (the_rank != first)
        af_error((af_status)f.code, "%s", f.msg);
    return (af_status)f.code;
}

int cli_mpi_init(int *argc, char ***argv)
{
    if (launcher_env(size_vars) <= 1)
        return 0; /* not started by mpirun (or one rank): one process, no MPI */
    int provided;
    /* Only the main thread calls MPI (OpenMP teams never do). */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cli_fail(CLI_EINPUT, "MPI_Init failed");
    initialised = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &the_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &the_size);
    the_comm = (af_comm){the_rank, the_size, NULL, mpi_sum, mpi_max, mpi_gather, mpi_agree};
    if (the_rank != 0) { /* one voice: rank 0 prints, the others only compute */
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            return cli_fail(CLI_EINPUT, "cannot silence rank %d", the_rank);
    }
    return 0;
}

const af_comm *cli_mpi_comm(void) { return the_size > 1 ? &the_comm : NULL; }

double cli_mpi_bytes_sent(void) { return bytes_sent; }

int cli_mpi_agree(int rc)
{
    if (the_size == 1)
        return rc;
    int first = lowest_failing(rc != 0);
    if (first == the_size)
        return 0;
    failure f = {rc, ""};
    if (the_rank == first)
        snprintf(f.msg, sizeof f.msg, "%s", cli_last_failure());
    MPI_Bcast(&f, sizeof f, MPI_BYTE, first, MPI_COMM_WORLD);
    if (the_rank == 0 && first != 0)
        cli_fail(f.code, "%s", f.msg);
    return f.code;
}

int cli_mpi_any(int flag)
{
    return the_size == 1 ? flag : lowest_failing(flag) != the_size;
}

int cli_mpi_share(int rc, double **M, size_t *rows, size_t *cols)
{
    if (the_size == 1 || (rc = cli_mpi_agree(rc)))
        return rc;
    unsigned long long dims[2] = {*M ? *rows : 0, *M ? *cols : 0};
    MPI_Bcast(dims, 2, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    const size_t len = (size_t)(dims[0] * dims[1]);
    int fail = 0;
    if (the_rank != 0) {
        *rows = (size_t)dims[0];
        *cols = (size_t)dims[1];
        *M = len ? malloc(len * sizeof **M) : NULL;
        if (len && !*M)
            fail = cli_fail(CLI_EINPUT, "out of memory for %zu x %zu (rank %d)", *rows, *cols,
                            the_rank);
    }
    if ((rc = cli_mpi_agree(fail)))
        return rc;
    /* in pieces below INT_MAX doubles */
    for (size_t off = 0; off < len; off += (size_t)1 << 30) {
        size_t k = len - off < ((size_t)1 << 30) ? len - off : (size_t)1 << 30;
        MPI_Bcast(*M + off, (int)k, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    }
    return 0;
}

int cli_mpi_finalize(int rc)
{
    if (!initialised)
        return rc;
    rc = cli_mpi_agree(rc);
    MPI_Finalize();
    /* The job's status is rank 0's. The other ranks end with 0: mpirun kills
     * the ranks still running when one ends non-zero, and rank 0, killed
     * while it finishes, would print a second line ('interrupted'). */
    return the_rank == 0 ? rc : 0;
}

#else /* one process */

static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};

int cli_mpi_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const int size = launcher_env(size_vars);
    if (size > 1) {
        if (launcher_env(rank_vars) <= 0) /* one line, from the first rank */
            cli_fail(CLI_EUSAGE, "this attnflow was built without MPI (install libopenmpi-dev "
                                 "and rebuild) but was started as one of %d ranks", size);
        return CLI_EUSAGE;
    }
    return 0;
}

int cli_mpi_finalize(int rc) { return rc; }
const af_comm *cli_mpi_comm(void) { return NULL; }
double cli_mpi_bytes_sent(void) { return 0; }
int cli_mpi_agree(int rc) { return rc; }
int cli_mpi_any(int flag) { return flag; }
int cli_mpi_share(int rc, double **M, size_t *rows, size_t *cols)
{
    (void)M, (void)rows, (void)cols;
    return rc;
}

#endif

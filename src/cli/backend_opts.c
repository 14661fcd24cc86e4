/* --backend: the choice and its '#' metadata (backend_opts.h). */
#include <omp.h>
#include <string.h>
#include <unistd.h>
#include "attnflow/io.h"
#include "backend_opts.h"
#include "mpi_comm.h"

/* A quarter of the physical memory: room for the rest of the run and for
 * other processes (dense Sinkhorn at n = 2e4 is 6.4 GB). */
static double memory_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? 0.25 * (double)pages * (double)size : 2e9;
}

int cli_backend(const cli_args *a, size_t n, size_t d, af_attn_norm norm, cli_backend_choice *c)
{
    static const char *const names[] = {"auto", "dense", "tiled", "pm", NULL};
    int k, rc;
    if ((rc = cli_choice(a, "backend", names, 0, &k)))
        return rc;
    const char *prec = cli_str(a, "precision", "double");
    if (strcmp(prec, "double") && strcmp(prec, "single"))
        return cli_fail(CLI_EUSAGE, "--precision: '%s' is not one of double|single", prec);
    c->precision = strcmp(prec, "single") == 0 ? AF_PRECISION_SINGLE : AF_PRECISION_DOUBLE;
    if (c->precision == AF_PRECISION_SINGLE && k == 3)
        return cli_fail(CLI_EUSAGE, "--precision single is a mode of the dense and tiled "
                                    "backends (not --backend %s)", names[k]);
    c->pm = k == 3;
    const int threads = omp_get_max_threads();
    c->budget = memory_budget();
    c->automatic = k == 0;
    c->type = k == 0 ? af_backend_choose(n, d, norm, threads, c->budget)
              : k == 1 || k == 3 ? af_backend_dense
                       : af_backend_tiled;
    if (cli_mpi_size() > 1) { /* only the tiled backend splits rows across ranks */
        if (k == 1)
            return cli_fail(CLI_EUSAGE, "--backend dense runs on one process: use --backend "
                                        "tiled (or auto) under mpirun (%d ranks)", cli_mpi_size());
        c->type = af_backend_tiled;
    }
    c->bytes = af_backend_bytes(c->type, n, d, norm, threads);
    return 0;
}

int cli_backend_needs_matrix(const cli_backend_choice *c, const char *what)
{
    if (c->type != af_backend_tiled)
        return 0;
    if (cli_mpi_size() > 1)
        return cli_fail(CLI_EUSAGE, "%s needs the n x n attention matrix, which only the dense "
                                    "backend stores: run it on one process, not under mpirun", what);
    return cli_fail(CLI_EUSAGE, "%s needs the n x n attention matrix, which the tiled backend "
                                "never stores: use --backend dense", what);
}

void cli_backend_meta(FILE *fp, const cli_backend_choice *c)
{
    if (c->pm)
        return;
    const char *why = !c->automatic                          ? ""
                      : c->type == af_backend_dense             ? " (auto: dense fits the budget)"
                                                                : " (auto: dense would exceed the budget)";
    af_write_meta(fp, "backend", "%s, attention workspace %.3g MB%s%s; budget %.3g MB (1/4 of "
                  "the memory)", af_backend_name(c->type), c->bytes / 1e6,
                  cli_mpi_size() > 1 ? " per rank" : "", why, c->budget / 1e6);
    af_write_meta(fp, "precision", "%s", c->precision == AF_PRECISION_SINGLE
                                             ? "single (float32 exps, sums accumulated in double)"
                                             : "double");
    if (cli_mpi_size() > 1)
        af_write_meta(fp, "mpi", "%d ranks, each computing a contiguous block of rows of K X",
                      cli_mpi_size());
}

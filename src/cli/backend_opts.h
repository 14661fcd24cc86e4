/* The --backend option shared by attention, flow, compare and gradflow:
 *   --backend auto|dense|tiled|pm  (auto: dense while its attention workspace
 *                                   fits in a quarter of the physical memory,
 *                                   tiled beyond; pm: particle-mesh, d <= 3,
 *                                   flow/compare/attention, see pm_opts.h)
 * Put CLI_BACKEND_OPTS in a command's option table, call cli_backend() once
 * the sizes are known, and cli_backend_meta() in every data file header. */
#ifndef AF_CLI_BACKEND_OPTS_H
#define AF_CLI_BACKEND_OPTS_H

#include <stdio.h>
#include "attnflow/backend.h"
#include "cli.h"

#define CLI_BACKEND_OPTS                                                                      \
    CLI_OPT("backend", "KIND", "attention backend auto|dense|tiled|pm (default auto: dense "     \
                               "(n x n stored) while it fits in 1/4 of the memory, tiled "        \
                               "(matrix-free, O(n d)) beyond; pm: particle-mesh, d <= 3, L2 "    \
                               "scores or A = a I, not in gradflow)"),                             \
    CLI_OPT("precision", "KIND", "double|single (single: float32 exps (and scores in SoftMax/USA "  \
                                 "at d = 2, except dense dot scores), sums accumulated in double; " \
                                 "dense or tiled backend, not pm) (default double)"),              \
    CLI_OPT("pm-tol", "TOL", "--backend pm: relative accuracy of the Gauss transforms "          \
                             "(default 1e-8)")

typedef struct {
    const af_backend_type *type;
    af_precision precision;
    int automatic;   /* chosen by auto */
    int pm;          /* --backend pm: the flow's particle-mesh path (type unused) */
    double bytes;    /* attention workspace estimate (af_backend_bytes) */
    double budget;   /* auto's limit in bytes */
} cli_backend_choice;

/* Reads --backend and --precision for an n x d problem with this
 * normalisation. 0, or a printed error: CLI_EINPUT for an unknown backend,
 * CLI_EUSAGE for a precision other than double|single or single on dense
 * or pm. For pm, c->pm is set and c->type is dense (pm_opts.h reads --pm-tol). */
int cli_backend(const cli_args *a, size_t n, size_t d, af_attn_norm norm, cli_backend_choice *c);
/* Refuses (CLI_EUSAGE, one line) an output that needs the n x n matrix on
 * the tiled backend; what names it ("--out (writes K)"). 0 otherwise. */
int cli_backend_needs_matrix(const cli_backend_choice *c, const char *what);
/* '# backend: ...' with the memory estimate (nothing for pm: cli_pm_meta). */
void cli_backend_meta(FILE *fp, const cli_backend_choice *c);

#endif

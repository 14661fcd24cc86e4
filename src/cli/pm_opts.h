/* --backend pm and --pm-tol, shared by flow, compare and attention: option
 * table entries, parsing, and the '#' metadata of the particle-mesh grid. */
#ifndef AF_CLI_PM_OPTS_H
#define AF_CLI_PM_OPTS_H

#include <stdio.h>
#include "attnflow/pm.h"
#include "cli.h"

#define CLI_PM_OPTS                                                                       \
    CLI_OPT("backend", "KIND", "attention backend dense|pm (default dense; pm: particle-mesh, " \
                               "d <= 3, L2 scores or A = a I)"),                                \
    CLI_OPT("pm-tol", "TOL", "--backend pm: relative accuracy of the Gauss transforms "         \
                             "(default 1e-8)")

/* *pm_tol = 0 for the dense backend, the --pm-tol value (default 1e-8) for pm.
 * 0 or a printed error's exit status (--pm-tol without --backend pm is a usage error). */
int cli_pm_options(const cli_args *a, double *pm_tol);

/* '# backend:' line, and for pm the grid, window and measured wrap. */
void cli_pm_meta(FILE *fp, double pm_tol, const af_pm_info *info);

/* The grid the PM backend builds for these tokens (a transient engine on X). */
af_status cli_pm_probe(size_t n, size_t d, const double *X, const af_scores_params *sp,
                       double pm_tol, af_pm_info *info);

#endif

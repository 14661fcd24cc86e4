/* --backend pm and --pm-tol, shared by flow, compare and attention (the
 * options themselves are in CLI_BACKEND_OPTS, backend_opts.h): parsing, and
 * the '#' metadata of the particle-mesh grid. */
#ifndef AF_CLI_PM_OPTS_H
#define AF_CLI_PM_OPTS_H

#include <stdio.h>
#include "attnflow/pm.h"
#include "cli.h"

/* *pm_tol = 0 unless --backend pm, then the --pm-tol value (default 1e-8).
 * 0 or a printed error's exit status (--pm-tol without --backend pm is a
 * usage error; an unknown backend name is left to cli_backend). */
int cli_pm_options(const cli_args *a, double *pm_tol);

/* For pm: the '# backend:' line, the grid, window and measured wrap (nothing
 * for the other backends: cli_backend_meta). */
void cli_pm_meta(FILE *fp, double pm_tol, const af_pm_info *info);

/* The grid the PM backend builds for these tokens (a transient engine on X). */
af_status cli_pm_probe(size_t n, size_t d, const double *X, const af_scores_params *sp,
                       double pm_tol, af_pm_info *info);

#endif

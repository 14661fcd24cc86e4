/* attnflow attention --backend pm (attention_pm.c). */
#ifndef AF_CLI_ATTENTION_PM_H
#define AF_CLI_ATTENTION_PM_H

#include <stdio.h>
#include "attnflow/normalize.h"
#include "attnflow/scores.h"
#include "cli.h"

/* Solves, writes out (--out, the caller's output stream or NULL: i f g row
 * col; the caller commits it) and the summary line; returns the exit status. */
int cli_attention_pm(const cli_args *a, size_t n, size_t d, const double *X,
                     const af_scores_params *sp, const af_sinkhorn_options *opt, int sinkhorn,
                     double pm_tol, FILE *out);

#endif

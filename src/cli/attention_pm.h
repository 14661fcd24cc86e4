/* attnflow attention --backend pm (attention_pm.c). */
#ifndef AF_CLI_ATTENTION_PM_H
#define AF_CLI_ATTENTION_PM_H

#include "attnflow/normalize.h"
#include "attnflow/scores.h"
#include "cli.h"

/* Solves, writes --out (i f g row col) and the summary line; returns the exit status. */
int cli_attention_pm(const cli_args *a, size_t n, size_t d, const double *X,
                     const af_scores_params *sp, const af_sinkhorn_options *opt, int sinkhorn,
                     double pm_tol);

#endif

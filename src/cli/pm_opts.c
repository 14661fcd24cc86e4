/* --backend / --pm-tol (see pm_opts.h). */
#include <math.h>
#include <string.h>
#include "pm_opts.h"

int cli_pm_options(const cli_args *a, double *pm_tol)
{
    int rc;
    *pm_tol = 0;
    if (strcmp(cli_str(a, "backend", "auto"), "pm") != 0)
        return cli_given(a, "pm-tol") ? cli_fail(CLI_EUSAGE, "--pm-tol goes with --backend pm") : 0;
    if ((rc = cli_positive(a, "pm-tol", AF_PM_TOL_DEFAULT, pm_tol)))
        return rc;
    return 0;
}

void cli_pm_meta(FILE *fp, double pm_tol, const af_pm_info *info)
{
    if (!(pm_tol > 0))
        return;
    fprintf(fp, "# backend: pm (particle-mesh), tol %.3g\n", pm_tol);
    if (!info)
        return;
    fprintf(fp, "# pm_grid: %zu", info->grid[0]);
    for (size_t k = 1; k < info->d; k++)
        fprintf(fp, " x %zu", info->grid[k]);
    fprintf(fp, " points, spacing %.6g (kernel sd %.6g)\n", info->h, info->s);
    fprintf(fp, "# pm_window: gaussian, %zu points per dimension, sd %.6g\n", info->window,
            sqrt(info->tau));
    fprintf(fp, "# pm_wrap_mass: %.3g (measured)\n", info->wrap_mass);
}

af_status cli_pm_probe(size_t n, size_t d, const double *X, const af_scores_params *sp,
                       double pm_tol, af_pm_info *info)
{
    af_pm_attn *at = af_pm_attn_alloc(n, d, sp, pm_tol);
    if (!at)
        return AF_EINVAL;
    af_status st = af_pm_attn_set(at, X);
    if (!st)
        af_pm_attn_get_info(at, info);
    af_pm_attn_free(at);
    return st;
}

/* attnflow attention --backend pm: SoftMax or Sinkhorn through particle-mesh
 * Gauss transforms. K (n x n) is never formed: the output holds the
 * potentials and the row and column sums of K (measured by one more
 * transform, so they show the true marginal error). */
#include <math.h>
#include <stdlib.h>
#include "attnflow/io.h"
#include "attnflow/pm.h"
#include "attention_pm.h"
#include "pm_opts.h"
#include "tokens.h"

int cli_attention_pm(const cli_args *a, size_t n, size_t d, const double *X,
                     const af_scores_params *sp, const af_sinkhorn_options *opt, int sinkhorn,
                     double pm_tol, FILE *out)
{
    if (cli_given(a, "keys") || cli_given(a, "log") || cli_flag(a, "sharp-rate")
        || cli_given(a, "bound"))
        return cli_fail(CLI_EUSAGE, "--backend pm: --keys, --log, --sharp-rate and --bound "
                                    "need the dense backend");
    af_status st;
    af_clear_error();
    af_pm_attn *at = af_pm_attn_alloc(n, d, sp, pm_tol);
    double *rows = malloc(n * sizeof *rows), *cols = malloc(n * sizeof *cols);
    int rc = CLI_EINPUT, converged = 1;
    af_sinkhorn_info info = {0};
    if (!at || !rows || !cols) {
        rc = at ? cli_fail(CLI_EINPUT, "out of memory") : cli_fail_alloc("attention");
        goto done;
    }
    const double t0 = cli_now();
    if ((st = af_pm_attn_set(at, X)))
        goto fail_status;
    st = sinkhorn ? af_pm_attn_sinkhorn(at, opt, &info) : af_pm_attn_softmax(at);
    if (st == AF_EMAXITER) {
        converged = 0;
        fprintf(stderr, "attnflow: warning: %s\n", af_last_error());
    } else if (st) {
        goto fail_status;
    }
    if ((st = af_pm_attn_marginals(at, rows, cols)))
        goto fail_status;
    const double seconds = cli_now() - t0;
    double row_err = 0, col_err = 0;
    for (size_t i = 0; i < n; i++) {
        row_err = fmax(row_err, fabs(rows[i] - 1));
        col_err = fmax(col_err, fabs(cols[i] - 1));
    }
    af_pm_info pmi;
    af_pm_attn_get_info(at, &pmi);
    const char *norm = sinkhorn ? "sinkhorn" : "softmax";
    if (out) {
        FILE *fp = out;
        af_write_header(fp, a->command_line);
        cli_tokens_meta(a, fp);
        af_write_meta(fp, "size", "n=%zu d=%zu", n, d);
        af_write_meta(fp, "norm", "%s", norm);
        af_write_meta(fp, "scores", "%s eps=%s beta=%s A=%s", cli_str(a, "scores", "dot"),
                      cli_str(a, "eps", "1"), cli_str(a, "beta", "1"), cli_str(a, "A", "identity"));
        cli_pm_meta(fp, pm_tol, &pmi);
        af_write_meta(fp, "iterations", "%zu", info.iterations);
        af_write_meta(fp, "row_err", "%.17g", row_err);
        af_write_meta(fp, "col_err", "%.17g", col_err);
        af_write_meta(fp, "potentials", "K_ij = exp(f_i + C_ij + g_j); row, col: sums of K");
        af_write_meta(fp, "columns", "i f g row col");
        const double *f = af_pm_attn_f(at), *g = af_pm_attn_g(at);
        for (size_t i = 0; i < n; i++) {
            fprintf(fp, "%zu ", i);
            const double v[4] = {f[i], g[i], rows[i], cols[i]};
            for (int k = 0; k < 4; k++) {
                af_write_double(fp, v[k]);
                fputc(k < 3 ? ' ' : '\n', fp);
            }
        }
    }
    printf("n=%zu d=%zu norm=%s backend=pm iters=%zu row_err=%.3g col_err=%.3g converged=%d "
           "grid=%zu wrap=%.3g seconds=%.6f\n", n, d, norm, info.iterations, row_err, col_err,
           converged, pmi.points, pmi.wrap_mass, seconds);
    rc = 0;
    goto done;
fail_status:
    rc = cli_fail_status(st);
done:
    af_pm_attn_free(at);
    free(rows);
    free(cols);
    return rc;
}

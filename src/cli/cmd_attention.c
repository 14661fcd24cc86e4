/* attnflow attention: the SoftMax or Sinkhorn attention matrix of a token
 * cloud, with a per-normalisation error log and convergence diagnostics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "alloc.h"
#include "attnflow/io.h"
#include "attnflow/normalize.h"
#include "attnflow/scores.h"
#include "attention_pm.h"
#include "backend_opts.h"
#include "cli.h"
#include "outputs.h"
#include "pm_opts.h"
#include "mpi_comm.h"
#include "tokens.h"

static const cli_opt attention_opts[] = {
    CLI_TOKEN_OPTS,
    CLI_OPT("keys", "FILE", "keys from FILE (m x d) for rectangular attention; default: the tokens"),
    CLI_OPT("norm", "KIND", "softmax|sinkhorn (default sinkhorn: this command studies the Sinkhorn "
                           "iteration; flow defaults to softmax, the Transformer layer)"),
    CLI_OPT("scores", "KIND", "dot: beta x^T A y / eps | l2: -beta |x - y|^2 / (2 eps) (default dot)"),
    CLI_OPT("eps", "E", "temperature, > 0 (default 1)"),
    CLI_OPT("beta", "B", "inverse temperature multiplier (default 1)"),
    CLI_OPT("A", "MATRIX", "d x d matrix of the dot scores: a FILE, or rows inline 'a,b;c,d' (default identity)"),
    CLI_OPT("iters", "N", "exactly N alternating normalisations, rows first (1 = SoftMax)"),
    CLI_OPT("tol", "TOL", "Sinkhorn tolerance on max(row_err, col_err) (default 1e-9)"),
    CLI_OPT("max-iters", "N", "bound on normalisations when running to --tol (default 10000)"),
    CLI_OPT("path", "KIND", "auto|scaling|log|symmetric|symmetric-log (default auto)"),
    CLI_OPT("bound", "KIND", "Birkhoff-Hopf diameter: auto (exact when cheap)|exact|none (default auto)"),
    CLI_FLAG("sharp-rate", "also compute sigma_2(K)^2, the sharp asymptotic rate (square, converged)"),
    CLI_OUT("out", "FILE", "write the n x m matrix to FILE"),
    CLI_OUT("log", "FILE", "write 'iter row_err col_err' per normalisation to FILE"),
    CLI_BACKEND_OPTS,
    CLI_END,
};

typedef struct {
    double *X, *Y, *A, *C, *K, *work;
    af_sinkhorn_ws *ws;
    cli_outputs files;
    FILE *out, *log; /* temporaries of --out and --log, or NULL */
    af_attn_ws *attn;  /* tiled backend */
} attention_state;

static void state_free(attention_state *s)
{
    if (s->Y != s->X)
        free(s->Y);
    free(s->X);
    free(s->A);
    free(s->C);
    free(s->K);
    free(s->work);
    af_sinkhorn_free(s->ws);
    af_attn_free(s->attn);
    cli_outputs_abort(&s->files);
}

static void write_meta(const cli_args *a, FILE *fp, size_t n, size_t m, size_t d, const char *norm,
                       const af_sinkhorn_info *info, int converged, const cli_backend_choice *bk)
{
    af_write_header(fp, a->command_line);
    cli_tokens_meta(a, fp);
    af_write_meta(fp, "size", "n=%zu m=%zu d=%zu", n, m, d);
    af_write_meta(fp, "norm", "%s", norm);
    af_write_meta(fp, "scores", "%s eps=%s beta=%s A=%s", cli_str(a, "scores", "dot"),
                  cli_str(a, "eps", "1"), cli_str(a, "beta", "1"), cli_str(a, "A", "identity"));
    cli_backend_meta(fp, bk);
    af_write_meta(fp, "path", "%s", af_sinkhorn_type_name(info->path));
    af_write_meta(fp, "iterations", "%zu", info->iterations);
    af_write_meta(fp, "row_err", "%.17g", info->row_err);
    af_write_meta(fp, "col_err", "%.17g", info->col_err);
    af_write_meta(fp, "converged", "%d", converged);
    af_write_meta(fp, "hilbert_diameter", "%.17g%s", info->hilbert_diam,
                  info->bound_exact ? "" : " (upper bound)");
    af_write_meta(fp, "bh_rate", "%.17g", info->bh_rate);
}

static int attention_run(const cli_args *a)
{
    static const char *const norms[] = {"softmax", "sinkhorn", NULL};
    static const char *const kinds[] = {"dot", "l2", NULL};
    static const char *const paths[] = {"auto", "scaling", "log", "symmetric", "symmetric-log", NULL};
    static const char *const bounds[] = {"none", "auto", "exact", NULL};
    attention_state s = {0};
    cli_outputs_init(&s.files);
    int agreed = 0; /* a failure was agreed on: done needs no agreement */
    size_t n, m, d, md;
    int norm, kind, path, bound, rc;
    unsigned long iters, max_iters;
    double eps, beta, tol;
    if ((rc = cli_choice(a, "norm", norms, 1, &norm)) || (rc = cli_choice(a, "scores", kinds, 0, &kind))
        || (rc = cli_choice(a, "path", paths, 0, &path)) || (rc = cli_choice(a, "bound", bounds, 1, &bound)) || (rc = cli_positive(a, "eps", 1.0, &eps))
        || (rc = cli_double(a, "beta", 1.0, &beta)) || (rc = cli_positive(a, "tol", 1e-9, &tol))
        || (rc = cli_ulong(a, "iters", 0, &iters)) || (rc = cli_ulong(a, "max-iters", 10000, &max_iters)))
        return rc;
    double pm_tol;
    if ((rc = cli_pm_options(a, &pm_tol)))
        return rc;
    if (cli_given(a, "iters") && iters == 0)
        return cli_fail(CLI_EINPUT, "--iters: must be >= 1");
    if (max_iters == 0)
        return cli_fail(CLI_EINPUT, "--max-iters: must be >= 1");
    if (norm == 0 && (cli_given(a, "iters") || cli_given(a, "tol") || cli_given(a, "path")))
        return cli_fail(CLI_EUSAGE, "--iters, --tol and --path apply to --norm sinkhorn");
    if (cli_given(a, "iters") && (path == 3 || path == 4))
        return cli_fail(CLI_EUSAGE, "--iters counts alternating normalisations (rows first); the "
                        "symmetric paths iterate another, relaxed update: use them with --tol, "
                        "or --iters with --path auto|scaling|log");
    if (kind == 1 && cli_given(a, "A"))
        return cli_fail(CLI_EUSAGE, "--A applies to --scores dot");
    /* Outputs are opened before the work so that a clash or an unwritable
     * path fails fast; they are renamed into place together at the end.
     * Under mpirun rank 0 alone writes, and reads the inputs and broadcasts
     * them. */
    if (cli_mpi_root() && cli_given(a, "out"))
        rc = cli_outputs_open(&s.files, "out", cli_str(a, "out", ""), &s.out);
    if (!rc && cli_mpi_root() && cli_given(a, "log"))
        rc = cli_outputs_open(&s.files, "log", cli_str(a, "log", ""), &s.log);
    if ((rc = cli_mpi_share(rc ? rc : cli_mpi_root() ? cli_tokens(a, &s.X, &n, &d) : 0, &s.X, &n, &d))) {
        agreed = 1;
        goto done;
    }
    s.Y = s.X;
    m = n;
    if (cli_given(a, "keys")) {
        af_status st = af_read_matrix(cli_str(a, "keys", ""), &s.Y, &m, &md);
        if (st) {
            s.Y = NULL;
            rc = cli_fail_status(st);
            goto done;
        }
        if (md != d) {
            rc = cli_fail(CLI_EINPUT, "--keys: %s has dimension %zu, the tokens %zu", cli_str(a, "keys", ""), md, d);
            goto done;
        }
    }
    size_t ad[2] = {d, d};
    if ((rc = cli_mpi_share(cli_mpi_root() ? cli_square_matrix(a, "A", d, &s.A) : 0, &s.A, ad,
                            ad + 1)))
        goto done;
    if (cli_flag(a, "sharp-rate") && (norm == 0 || m != n)) {
        rc = cli_fail(CLI_EUSAGE, "--sharp-rate needs --norm sinkhorn and square attention");
        goto done;
    }
    af_scores_params sp = af_scores_params_default();
    sp.kind = kind == 0 ? AF_SCORES_DOT : AF_SCORES_L2;
    sp.eps = eps;
    sp.beta = beta;
    sp.A = s.A;
    const af_sinkhorn_type *pt[] = {NULL, af_sinkhorn_scaling, af_sinkhorn_log,
                                    af_sinkhorn_symmetric, af_sinkhorn_symmetric_log};
    if (pm_tol > 0 && cli_mpi_size() > 1) {
        rc = cli_fail(CLI_EUSAGE, "--backend pm runs on one process (mpirun: use --backend tiled)");
        goto done;
    }
    if (pm_tol > 0) { /* particle-mesh: potentials and marginals, no K */
        af_sinkhorn_options po = af_sinkhorn_options_default();
        po.tol = tol;
        po.max_iters = max_iters;
        po.iters = iters;
        po.path = pt[path];
        rc = cli_attention_pm(a, n, d, s.X, &sp, &po, norm == 1, pm_tol, s.out);
        if (rc == 0)
            rc = cli_outputs_commit(&s.files, NULL);
        goto done;
    }
    /* What needs the n x n matrix (or rectangular scores) runs dense: auto
     * picks it, an explicit tiled is refused before any file is opened. */
    cli_backend_choice bk;
    const int needs_k = cli_given(a, "out") || cli_flag(a, "sharp-rate") || m != n
                        || bound == 2 || path == 1 || path == 3;
    if ((rc = cli_backend(a, n, d, AF_ATTN_SINKHORN, &bk)))
        goto done;
    if (bk.automatic && needs_k && cli_mpi_size() == 1) {
        bk.type = af_backend_dense;
        bk.bytes = af_backend_bytes(bk.type, n, d, AF_ATTN_SINKHORN, 1);
    }
    if (needs_k
        && (rc = cli_backend_needs_matrix(&bk, cli_given(a, "out")         ? "--out (writes K)"
                                               : cli_flag(a, "sharp-rate") ? "--sharp-rate (sigma_2 of K)"
                                               : m != n                    ? "--keys (rectangular scores)"
                                               : bound == 2                ? "--bound exact (Hilbert diameter)"
                                                           : "--path scaling|symmetric (stored kernel)")))
        goto done;
    af_status st;
    if ((rc = cli_mpi_agree(0))) { /* a failure of one rank above (inputs, options) */
        agreed = 1;
        goto done;
    }

    double t0 = cli_now();
    af_sinkhorn_info info;
    double row_err, col_err;
    int converged = 1;
    af_sinkhorn_options o = af_sinkhorn_options_default();
    o.tol = tol;
    o.max_iters = max_iters;
    o.compute_bound = bound; /* none 0, auto 1, exact 2: the library's codes */
    if (norm == 0) {
        o.iters = 1; /* SoftMax = one row normalisation: same code, same bits */
        o.path = bk.type == af_backend_tiled ? NULL : af_sinkhorn_scaling;
    } else {
        o.iters = iters;
        o.path = pt[path];
    }
    if (bk.type == af_backend_tiled) {
        /* Matrix-free: the same iteration on regenerated score rows. */
        af_attn_params ap = af_attn_params_default(n, d);
        ap.scores = sp;
        ap.norm = AF_ATTN_SINKHORN;
        ap.precision = bk.precision;
        ap.comm = cli_mpi_comm();
        af_clear_error();
        s.attn = af_attn_alloc(bk.type, &ap);
        if ((rc = cli_mpi_agree(s.attn ? 0 : cli_fail_alloc("attention")))) {
            agreed = 1;
            goto done;
        }
        st = af_attn_sinkhorn(s.attn, s.X, &o, &info);
    } else {
        s.C = cli_alloc(n, m, sizeof *s.C);
        s.K = cli_alloc(n, m, sizeof *s.K);
        s.work = malloc(AF_SCORES_WORK(n, m, d) * sizeof *s.work);
        if (!s.C || !s.K || !s.work) {
            rc = cli_fail(CLI_EINPUT, "out of memory for %zu x %zu attention (--backend tiled "
                                      "needs %.1f MB)", n, m,
                          af_backend_bytes(af_backend_tiled, n, d, AF_ATTN_SINKHORN, 1) / 1e6);
            goto done;
        }
        if ((st = af_scores(&sp, n, m, d, s.X, s.Y, s.C, s.work)))
            goto fail_status;
        if (!(s.ws = af_sinkhorn_alloc(n, m))) {
            rc = cli_fail_status(AF_ENOMEM);
            goto done;
        }
        st = af_sinkhorn(s.ws, s.C, &o, s.K, &info);
    }
    if (st == AF_EMAXITER) {
        converged = 0;
        fprintf(stderr, "attnflow: warning: %s\n", af_last_error());
    } else if (st) {
        goto fail_status;
    }
    row_err = info.row_err;
    col_err = info.col_err;
    /* a fixed count says nothing about the tolerance: report whether it was met */
    if (norm == 1 && iters > 0)
        converged = fmax(row_err, col_err) <= tol;
    double seconds = cli_now() - t0;
    double sharp = NAN;
    if (cli_flag(a, "sharp-rate")) {
        double s2;
        if ((st = af_second_singular_value(n, s.K, 1e-12, 100000, &s2)))
            goto fail_status;
        sharp = s2 * s2;
    }
    const char *norm_name = norms[norm];
    if (s.out) {
        FILE *fp = s.out;
        write_meta(a, fp, n, m, d, norm_name, &info, converged, &bk);
        af_write_matrix(fp, n, m, s.K);
    }
    if (s.log) {
        FILE *fp = s.log;
        write_meta(a, fp, n, m, d, norm_name, &info, converged, &bk);
        af_write_meta(fp, "sharp_rate", "%.17g", sharp);
        af_write_meta(fp, "columns", "iter row_err col_err");
        for (size_t k = 0; k < info.iterations; k++) {
            fprintf(fp, "%zu ", k + 1);
            af_write_double(fp, info.row_hist[k]);
            fputc(' ', fp);
            af_write_double(fp, info.col_hist[k]);
            fputc('\n', fp);
        }
    }
    if ((rc = cli_outputs_commit(&s.files, NULL)))
        goto done;
    /* the summary is the result when no file is written; with files and
     * --quiet the command prints nothing */
    if (cli_flag(a, "quiet") && (s.out || s.log)) {
        rc = 0;
        goto done;
    }
    printf("n=%zu d=%zu norm=%s path=%s iters=%zu row_err=%.3g col_err=%.3g converged=%d "
           "bh_rate=%.6g", n, d, norm_name, af_sinkhorn_type_name(info.path), info.iterations,
           row_err, col_err, converged, info.bh_rate);
    if (m != n)
        printf(" m=%zu", m);
    if (!isnan(sharp))
        printf(" sharp_rate=%.6g", sharp);
    printf(" seconds=%.6f\n", seconds);
    rc = 0;
    goto done;
fail_status:
    rc = cli_fail_status(st);
done:
    if (!agreed) /* every rank passes here once: the last agreement (rank 0's files) */
        rc = cli_mpi_agree(rc);
    state_free(&s);
    return rc;
}

const cli_command cli_cmd_attention = {
    "attention",
    "SoftMax or Sinkhorn attention matrix of a token cloud, with convergence log",
    "(--tokens FILE | --init KIND --n N --d D [--seed S]) [--norm softmax|sinkhorn] "
    "[--scores dot|l2] [--eps E] [--A MATRIX] [--iters N] [--tol T] [--out FILE] [--log FILE]",
    attention_opts,
    attention_run,
};

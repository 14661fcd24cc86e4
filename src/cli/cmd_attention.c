/* attnflow attention: the SoftMax or Sinkhorn attention matrix of a token
 * cloud, with a per-normalisation error log and convergence diagnostics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "attnflow/io.h"
#include "attnflow/normalize.h"
#include "attnflow/scores.h"
#include "backend_opts.h"
#include "cli.h"
#include "mpi_comm.h"
#include "tokens.h"

static const cli_opt attention_opts[] = {
    CLI_TOKEN_OPTS,
    {"keys", 1, "keys from FILE (m x d) for rectangular attention; default: the tokens"},
    {"norm", 1, "softmax|sinkhorn (default sinkhorn)"},
    {"scores", 1, "dot: beta x^T A y / eps | l2: -beta |x - y|^2 / (2 eps) (default dot)"},
    {"eps", 1, "temperature, > 0 (default 1)"},
    {"beta", 1, "inverse temperature multiplier (default 1)"},
    {"A", 1, "d x d matrix FILE of the dot scores (default identity)"},
    {"iters", 1, "exactly N alternating normalisations, rows first (1 = SoftMax)"},
    {"tol", 1, "Sinkhorn tolerance on max(row_err, col_err) (default 1e-9)"},
    {"max-iters", 1, "bound on normalisations when running to --tol (default 10000)"},
    {"path", 1, "auto|scaling|log|symmetric|symmetric-log (default auto)"},
    {"bound", 1, "Birkhoff-Hopf diameter: auto (exact when cheap)|exact|none (default auto)"},
    {"sharp-rate", 0, "also compute sigma_2(K)^2, the sharp asymptotic rate (square, converged)"},
    {"out", 1, "write the n x m matrix to FILE"},
    {"log", 1, "write 'iter row_err col_err' per normalisation to FILE"},
    CLI_BACKEND_OPTS,
    {NULL, 0, NULL},
};

typedef struct {
    double *X, *Y, *A, *C, *K, *work;
    af_sinkhorn_ws *ws;
    af_attn_ws *attn;  /* tiled backend */
    af_file *out, *log;
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
    af_file_abort(s->out);
    af_file_abort(s->log);
}

static void write_meta(const cli_args *a, FILE *fp, size_t n, size_t m, size_t d, const char *norm,
                       const af_sinkhorn_info *info, const cli_backend_choice *bk)
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
    if (cli_given(a, "iters") && iters == 0)
        return cli_fail(CLI_EINPUT, "--iters: must be >= 1");
    if (max_iters == 0)
        return cli_fail(CLI_EINPUT, "--max-iters: must be >= 1");
    if (norm == 0 && (cli_given(a, "iters") || cli_given(a, "tol") || cli_given(a, "path")))
        return cli_fail(CLI_EUSAGE, "--iters, --tol and --path apply to --norm sinkhorn");
    if (kind == 1 && cli_given(a, "A"))
        return cli_fail(CLI_EUSAGE, "--A applies to --scores dot");
    /* Under mpirun rank 0 reads the inputs and broadcasts them. */
    if ((rc = cli_mpi_share(cli_mpi_root() ? cli_tokens(a, &s.X, &n, &d) : 0, &s.X, &n, &d)))
        return rc;
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
    /* Outputs are opened before the work so that an unwritable path fails
     * fast; they are renamed into place only at the end. */
    af_status st;
    const int writes = cli_mpi_root(); /* under mpirun rank 0 alone writes */
    if (writes && cli_given(a, "out") && (st = af_file_open(&s.out, cli_str(a, "out", ""))))
        goto fail_status;
    if (writes && cli_given(a, "log") && (st = af_file_open(&s.log, cli_str(a, "log", ""))))
        goto fail_status;
    if ((rc = cli_mpi_agree(0))) {
        agreed = 1;
        goto done;
    }

    double t0 = cli_now();
    af_scores_params sp = af_scores_params_default();
    sp.kind = kind == 0 ? AF_SCORES_DOT : AF_SCORES_L2;
    sp.eps = eps;
    sp.beta = beta;
    sp.A = s.A;
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
        const af_sinkhorn_type *pt[] = {NULL, af_sinkhorn_scaling, af_sinkhorn_log,
                                        af_sinkhorn_symmetric, af_sinkhorn_symmetric_log};
        o.path = pt[path];
    }
    if (bk.type == af_backend_tiled) {
        /* Matrix-free: the same iteration on regenerated score rows. */
        af_attn_params ap = af_attn_params_default(n, d);
        ap.scores = sp;
        ap.norm = AF_ATTN_SINKHORN;
        ap.comm = cli_mpi_comm();
        af_clear_error();
        s.attn = af_attn_alloc(bk.type, &ap);
        if ((rc = cli_mpi_agree(s.attn ? 0 : cli_fail_alloc("attention")))) {
            agreed = 1;
            goto done;
        }
        st = af_attn_sinkhorn(s.attn, s.X, &o, &info);
    } else {
        s.C = malloc(n * m * sizeof *s.C);
        s.K = malloc(n * m * sizeof *s.K);
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
        FILE *fp = af_file_stream(s.out);
        write_meta(a, fp, n, m, d, norm_name, &info, &bk);
        af_write_matrix(fp, n, m, s.K);
    }
    if (s.log) {
        FILE *fp = af_file_stream(s.log);
        write_meta(a, fp, n, m, d, norm_name, &info, &bk);
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
    if (s.out) {
        st = af_file_commit(s.out);
        s.out = NULL;
        if (st)
            goto fail_status;
    }
    if (s.log) {
        st = af_file_commit(s.log);
        s.log = NULL;
        if (st) {
            if (cli_given(a, "out")) /* all or nothing */
                unlink(cli_str(a, "out", ""));
            goto fail_status;
        }
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
    "[--scores dot|l2] [--eps E] [--A FILE] [--iters N] [--tol T] [--out FILE] [--log FILE]",
    attention_opts,
    attention_run,
};

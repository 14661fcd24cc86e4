/* attnflow convex: solve linear / gated-ReLU attention heads to global
 * optimality through the convex Z program (FISTA + singular-value
 * thresholding, duality-gap certificate), or, with --nonconvex, train the
 * same heads directly with Adam on the same synthetic data (docs/cli.md
 * `convex`, issue 7, docs/theory.md section 8). */
#include "core/af_blas.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "alloc.h"
#include "attnflow/convex.h"
#include "attnflow/io.h"
#include "attnflow/train.h"
#include "cli.h"
#include "outputs.h"

static const cli_opt convex_opts[] = {
    CLI_OPT("task", "KIND", "synthetic|pointclouds (3-D shapes of the train command; d = 3, c = 6)"
                            "|features (--features FILE of attnflow train --features-out) "
                            "(default synthetic)"),
    CLI_OPT("features", "FILE", "--task features: the token-features file"),
    CLI_OPT("pool-dim", "P", "--task features: average-pool the feature axis to P features"),
    CLI_FLAG("pool-tokens", "--task features: average the tokens first (n = 1: linear model, or "
                            "with --kind fno --gated the convex gated two-layer MLP)"),
    CLI_OPT("betas", "LIST", "--task features: comma-separated betas; the one with the best "
                             "validation accuracy is refit on the whole training set (default: --beta)"),
    CLI_OPT("val-frac", "F", "--task features with --betas: validation share of the training set "
                             "(default 0.2)"),
    CLI_OPT("kind", "KIND", "linear|gated attention, or the token mixing attention|mixer|fno "
                            "(default linear)"),
    CLI_FLAG("gated", "gated-ReLU heads (with --kind attention|mixer|fno; --kind gated = attention)"),
    CLI_OPT("blocks", "B", "fno: B-FNO with B channel/output groups (B divides d and c) (default 1)"),
    CLI_OPT("grid", "HxW", "fno: tokens on an HxW grid, row-major (default: a 1-D sequence)"),
    CLI_OPT("loss", "KIND", "squared|ce (softmax cross-entropy) (default squared)"),
    CLI_OPT("beta", "B", "weight decay = nuclear-norm weight beta > 0 (default 0.01)"),
    CLI_OPT("seed", "S", "seed of the synthetic data (and gates) (default 1)"),
    CLI_OPT("tol", "TOL", "stop when the relative duality gap <= tol (default 1e-6)"),
    CLI_OPT("max-iters", "N", "convex: FISTA iteration bound (default 5000: FISTA steps, not Sinkhorn "
                              "normalisations)"),
    CLI_OPT("out", "DIR", "output directory (default out/convex)"),
    CLI_FLAG("nonconvex", "train the head form with Adam instead of solving the convex program"),
    CLI_OPT("heads", "M", "nonconvex: number of heads m (default 4)"),
    CLI_OPT("steps", "N", "nonconvex: Adam steps (default 2000)"),
    CLI_OPT("lr", "RATE", "nonconvex: Adam learning rate (default 0.01)"),
    CLI_OPT("init-scale", "S", "nonconvex: heads start ~ N(0, s^2) (default 0.1)"),
    CLI_OPT("init-seed", "S", "nonconvex: seed of the initial heads (default: --seed)"),
    CLI_OPT("samples", "N", "number of token matrices N (default 200)"),
    CLI_OPT("n", "N", "tokens per matrix n (default 8)"),
    CLI_OPT("d", "D", "token dimension d (default 4)"),
    CLI_OPT("classes", "C", "outputs / classes c (default 3)"),
    CLI_OPT("gates", "P", "gated: number of random gates P (default 4)"),
    CLI_OPT("clusters", "K", "token clusters per matrix (default 3)"),
    CLI_OPT("teacher-heads", "M", "heads of the planted teacher (default 2)"),
    CLI_OPT("noise", "S", "target noise (squared) or logit noise (ce) (default 0.1)"),
    CLI_OPT("width", "W", "std of a token cluster around its centre (default 0.3)"),
    CLI_FLAG("no-restart", "convex: no adaptive restart"),
    CLI_FLAG("no-accel", "convex: plain proximal gradient (no momentum)"),
    CLI_OPT("grow", "G", "convex: step growth tried before each step, >= 1 (default 1.1)"),
    CLI_OPT("svd", "KIND", "convex: SVD backend lapack|gsl (default lapack)"),
    CLI_OPT("gap-every", "K", "convex: certificate every K iterations (default 1)"),
    CLI_OPT("rank-tol", "TOL", "head extraction: singular values > tol * largest (default 1e-9)"),
    CLI_OPT("cluster-samples", "N", "token matrices written to clusters.dat (default 12)"),
    CLI_FLAG("verbose", "print the certificate of every iteration on stderr"),
    CLI_OPT("threads", "N", "OpenBLAS threads (default 1: small matrices, shared cores)"),
    CLI_ALIAS("data", "task"),
    CLI_ALIAS("tokens", "n"),
    CLI_ALIAS("dim", "d"),
    CLI_ALIAS("iters", "steps"),
    CLI_ALIAS("max-iter", "max-iters"),
    CLI_END,
};

typedef struct {
    int kind, loss, svd, data, mixing, gated;
    size_t blocks, grid_h, grid_w;
    double beta, tol, noise, width, lr, init_scale, grow, rank_tol;
    unsigned long seed, init_seed;
    size_t N, n, d, c, P, clusters, teacher, heads, iters, max_iter, gap_every, cluster_samples;
    const char *dir;
    bool nonconvex, quiet, verbose;
    cli_outputs *files; /* every output of the run (outputs.h) */
    /* --task features: the test set, scored after the fit */
    const af_convex_problem *test;
    const int *test_y, *train_y;
    double val_acc; /* --betas: validation accuracy of the chosen beta (< 0: none) */
} convex_run;

static const char *const kinds[] = {"linear", "gated", "attention", "mixer", "fno", NULL};
static const char *const mixings[] = {"attention", "mixer", "fno"};
static const char *const losses[] = {"squared", "ce", NULL};
static const char *const svds[] = {"lapack", "gsl", NULL};
static const char *const datas[] = {"synthetic", "pointclouds", "features", NULL};

/* Sizes from the command line or a features file: every array is a product
 * of them, so each is bounded and the token count checked before any
 * allocation. */
static int check_sizes(const convex_run *r)
{
    const struct { const char *name; size_t v; } sizes[] = {
        {"d", r->d}, {"classes", r->c}, {"gates", r->P}, {"heads", r->heads},
        {"clusters", r->clusters}, {"teacher-heads", r->teacher}, {"blocks", r->blocks}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (sizes[k].v > 1024)
            return cli_fail(CLI_EINPUT, "--%s: at most 1024 (got %zu)", sizes[k].name, sizes[k].v);
    if (r->n > 65536) /* the solver forms n x n blocks per sample */
        return cli_fail(CLI_EINPUT, "--n: at most 65536 tokens per sample (got %zu)", r->n);
    size_t tokens;
    if (!cli_mul_ok(r->N, r->n, &tokens) || tokens > ((size_t)1 << 32))
        return cli_fail(CLI_EINPUT, "--samples %zu x --n %zu: too many tokens (at most 2^32)",
                        r->N, r->n);
    return 0;
}

static int read_options(const cli_args *a, convex_run *r)
{
    int rc;
    if ((rc = cli_choice(a, "kind", kinds, 0, &r->kind)) || (rc = cli_choice(a, "loss", losses, 0, &r->loss))
        || (rc = cli_positive(a, "beta", 0.01, &r->beta)) || (rc = cli_ulong(a, "seed", 1, &r->seed))
        || (rc = cli_double(a, "tol", 1e-6, &r->tol)) || (rc = cli_size(a, "max-iters", 5000, &r->max_iter))
        || (rc = cli_size(a, "heads", 4, &r->heads)) || (rc = cli_size(a, "steps", 2000, &r->iters))
        || (rc = cli_positive(a, "lr", 0.01, &r->lr))
        || (rc = cli_double(a, "init-scale", 0.1, &r->init_scale))
        || (rc = cli_size(a, "samples", 200, &r->N)) || (rc = cli_size(a, "n", 8, &r->n))
        || (rc = cli_size(a, "d", 4, &r->d)) || (rc = cli_size(a, "classes", 3, &r->c))
        || (rc = cli_size(a, "gates", 4, &r->P)) || (rc = cli_size(a, "clusters", 3, &r->clusters))
        || (rc = cli_size(a, "teacher-heads", 2, &r->teacher))
        || (rc = cli_double(a, "noise", 0.1, &r->noise)) || (rc = cli_double(a, "width", 0.3, &r->width))
        || (rc = cli_double(a, "grow", 1.1, &r->grow)) || (rc = cli_size(a, "gap-every", 1, &r->gap_every))
        || (rc = cli_positive(a, "rank-tol", 1e-9, &r->rank_tol))
        || (rc = cli_ulong(a, "cluster-samples", 12, &r->cluster_samples)))
        return rc;
    if ((rc = cli_ulong(a, "init-seed", r->seed, &r->init_seed))
        || (rc = cli_choice(a, "svd", svds, 0, &r->svd))
        || (rc = cli_choice(a, "task", datas, 0, &r->data)))
        return rc;
    r->mixing = r->kind <= 2 ? AF_CONVEX_ATTENTION : r->kind == 3 ? AF_CONVEX_MIXER : AF_CONVEX_FNO;
    r->gated = r->kind == 1 || cli_flag(a, "gated");
    if (r->kind <= 1 && cli_flag(a, "gated"))
        return cli_fail(CLI_EUSAGE, "--gated: with --kind attention|mixer|fno (--kind %s says it already)",
                        kinds[r->kind]);
    if ((rc = cli_size(a, "blocks", 1, &r->blocks)))
        return rc;
    if (r->mixing != AF_CONVEX_FNO && (cli_given(a, "blocks") || cli_given(a, "grid")))
        return cli_fail(CLI_EUSAGE, "--blocks, --grid: only with --kind fno");
    if (cli_given(a, "grid")) {
        const char *g = cli_str(a, "grid", "");
        char *end;
        unsigned long h = strtoul(g, &end, 10), w = 0;
        if (*end == 'x')
            w = strtoul(end + 1, &end, 10);
        if (*end || *g == '-' || h == 0 || w == 0 || h > 65536 || w > 65536)
            return cli_fail(CLI_EINPUT, "--grid: expected HxW with 1 <= H, W <= 65536 (got '%s')", g);
        r->grid_h = h;
        r->grid_w = w;
    }
    if (r->data == 1) {
        if ((cli_given(a, "d") && r->d != 3)
            || (cli_given(a, "classes") && r->c != AF_POINTCLOUD_CLASSES))
            return cli_fail(CLI_EUSAGE, "--task pointclouds: tokens are 3-D points of %d classes "
                            "(--d 3, --classes %d)", AF_POINTCLOUD_CLASSES, AF_POINTCLOUD_CLASSES);
        if (cli_given(a, "clusters") || cli_given(a, "teacher-heads") || cli_given(a, "width"))
            return cli_fail(CLI_EUSAGE, "--clusters, --teacher-heads, --width: synthetic data only");
        r->d = 3;
        r->c = AF_POINTCLOUD_CLASSES;
    }
    if (r->data == 2) {
        static const char *const synth_only[] = {"samples", "n", "d", "classes", "clusters",
                                                 "teacher-heads", "width", "noise", NULL};
        for (size_t k = 0; synth_only[k]; k++)
            if (cli_given(a, synth_only[k]))
                return cli_fail(CLI_EUSAGE, "--%s: the features file sets it (--task features)",
                                synth_only[k]);
        if (!cli_given(a, "features"))
            return cli_fail(CLI_EUSAGE, "--task features: needs --features FILE");
    } else if (cli_given(a, "features") || cli_given(a, "pool-dim") || cli_given(a, "pool-tokens")
               || cli_given(a, "betas") || cli_given(a, "val-frac")) {
        return cli_fail(CLI_EUSAGE, "--features, --pool-dim, --pool-tokens, --betas, --val-frac: "
                        "only with --task features");
    }
    if (r->tol < 0)
        return cli_fail(CLI_EINPUT, "--tol: must be >= 0 (got %g)", r->tol);
    if (r->noise < 0 || r->width < 0 || r->init_scale < 0)
        return cli_fail(CLI_EINPUT, "--noise, --width, --init-scale: must be >= 0");
    if (r->grow < 1)
        return cli_fail(CLI_EINPUT, "--grow: must be >= 1 (got %g)", r->grow);
    if (r->loss == 1 && r->c < 2)
        return cli_fail(CLI_EINPUT, "--classes: cross-entropy needs at least 2 classes");
    if ((rc = check_sizes(r)))
        return rc;
    r->dir = cli_str(a, "out", "out/convex");
    r->nonconvex = cli_flag(a, "nonconvex");
    r->quiet = cli_flag(a, "quiet");
    r->verbose = cli_flag(a, "verbose");
    if (!r->nonconvex && (cli_given(a, "heads") || cli_given(a, "steps") || cli_given(a, "lr")))
        return cli_fail(CLI_EUSAGE, "--heads, --steps, --lr: only with --nonconvex");
    if (r->cluster_samples > r->N)
        r->cluster_samples = r->N;
    return 0;
}

/* The '#' header every file starts with: command, seed, problem. */
static void header(FILE *fp, const cli_args *a, const convex_run *r, const char *what)
{
    af_write_header(fp, a->command_line);
    af_write_meta(fp, "seed", "%lu", r->seed);
    af_write_meta(fp, "problem", "%s %s, %s loss, N=%zu n=%zu d=%zu c=%zu",
                  r->gated ? "gated" : "linear", mixings[r->mixing], losses[r->loss], r->N, r->n,
                  r->d, r->c);
    if (r->mixing == AF_CONVEX_FNO)
        af_write_meta(fp, "fno", "blocks=%zu grid=%zux%zu (FFTW over the token grid)", r->blocks,
                      r->grid_h ? r->grid_h : r->n, r->grid_w ? r->grid_w : 1);
    if (r->data == 0)
        af_write_meta(fp, "data", "synthetic: clusters=%zu width=%g teacher_heads=%zu noise=%g",
                      r->clusters, r->width, r->teacher, r->noise);
    else if (r->data == 2)
        af_write_meta(fp, "data", "features %s (pool-dim %s%s): standardised per feature on the "
                      "training set, scaled by 1/sqrt(n); target of every token = one-hot label of "
                      "its sample; prediction = arg max of the token-averaged outputs",
                      cli_str(a, "features", ""), cli_str(a, "pool-dim", "none"),
                      cli_flag(a, "pool-tokens") ? ", tokens averaged" : "");
    else
        af_write_meta(fp, "data", "pointclouds: %zu points per cloud, noise %g, scaled by "
                      "1/sqrt(n); target of every token = one-hot class of its cloud",
                      r->n, r->noise);
    if (r->gated)
        af_write_meta(fp, "gates", "%zu", r->P);
    af_write_meta(fp, "beta", "%.17g", r->beta);
    af_write_meta(fp, "contents", "%s", what);
}

typedef struct {
    FILE *fp; /* a temporary of r->files */
} outfile;

static int open_out(outfile *o, const convex_run *r, const char *name)
{
    char path[4200];
    int rc = cli_outputs_join(path, sizeof path, "out", r->dir, name);
    return rc ? rc : cli_outputs_open(r->files, "out", path, &o->fp);
}

/* heads.dat: one line per head: head block sigma W1 (row-major) W2 (row-major);
 * block = gate (B-FNO: gate * B + channel group). */
static void write_heads(FILE *fp, const convex_run *r, const af_convex_layout *lay, size_t m,
                        const double *W1, const double *W2, const size_t *gate_of,
                        const double *sigma)
{
    size_t R = lay->rows, C = lay->cols;
    size_t side = r->mixing == AF_CONVEX_ATTENTION ? r->d : r->mixing == AF_CONVEX_MIXER ? r->n : 0;
    fprintf(fp, "# columns: head gate sigma");
    for (size_t q = 0; q < R; q++)
        if (side)
            fprintf(fp, " W1_%zu_%zu", q / side + 1, q % side + 1);
        else
            fprintf(fp, " w1_%zu", q + 1);
    for (size_t q = 0; q < C; q++)
        if (side)
            fprintf(fp, " W2_%zu_%zu", q / r->c + 1, q % r->c + 1);
        else
            fprintf(fp, " w2_%zu", q + 1);
    fputc('\n', fp);
    for (size_t h = 0; h < m; h++) {
        fprintf(fp, "%zu %zu ", h + 1, gate_of ? gate_of[h] + 1 : 1);
        if (sigma) {
            af_write_double(fp, sigma[h]);
        } else { /* nonconvex heads: |W1| |W2|, the nuclear norm of the head's term */
            double a = 0, b = 0;
            for (size_t q = 0; q < R; q++)
                a += W1[h * R + q] * W1[h * R + q];
            for (size_t q = 0; q < C; q++)
                b += W2[h * C + q] * W2[h * C + q];
            af_write_double(fp, sqrt(a * b));
        }
        for (size_t q = 0; q < R; q++) {
            fputc(' ', fp);
            af_write_double(fp, W1[h * R + q]);
        }
        for (size_t q = 0; q < C; q++) {
            fputc(' ', fp);
            af_write_double(fp, W2[h * C + q]);
        }
        fputc('\n', fp);
    }
}

/* clusters.dat: one block (gnuplot index) per token matrix: the tokens,
 * their planted cluster, the dominant head (group) and each head's share. */
static af_status write_clusters(FILE *fp, const convex_run *r, const af_convex_problem *p,
                                const size_t *cluster, size_t m, const double *W1, const double *W2,
                                const size_t *gate_of)
{
    fprintf(fp, "# columns: sample token");
    for (size_t k = 0; k < r->d; k++)
        fprintf(fp, " x%zu", k + 1);
    fprintf(fp, " cluster group");
    for (size_t h = 0; h < m; h++)
        fprintf(fp, " head%zu", h + 1);
    fputc('\n', fp);
    if (m == 0)
        return AF_SUCCESS;
    double *C = cli_alloc(r->n, m, sizeof *C);
    if (!C)
        return af_error(AF_ENOMEM, "out of memory");
    const double *X = af_convex_problem_tokens(p);
    af_status s = AF_SUCCESS;
    for (size_t i = 0; i < r->cluster_samples && !s; i++) {
        s = af_convex_head_contributions(p, m, W1, W2, gate_of, i, C);
        if (i)
            fputs("\n\n", fp);
        for (size_t t = 0; t < r->n && !s; t++) {
            size_t best = 0;
            double tot = 0;
            for (size_t h = 0; h < m; h++) {
                tot += C[t * m + h];
                if (C[t * m + h] > C[t * m + best])
                    best = h;
            }
            fprintf(fp, "%zu %zu", i + 1, t + 1);
            for (size_t k = 0; k < r->d; k++) {
                fputc(' ', fp);
                af_write_double(fp, X[(i * r->n + t) * r->d + k]);
            }
            fprintf(fp, " %zu %zu", cluster[i * r->n + t] + 1, best + 1);
            for (size_t h = 0; h < m; h++) {
                fputc(' ', fp);
                af_write_double(fp, tot > 0 ? C[t * m + h] / tot : 0.0);
            }
            fputc('\n', fp);
        }
    }
    free(C);
    return s;
}

/* Accuracy on a set: the arg max of the token-averaged outputs F (N x n x c) against y. */
static double accuracy(const af_convex_shape *sh, const double *F, const int *y)
{
    size_t hit = 0, n = sh->n, c = sh->c;
    for (size_t i = 0; i < sh->N; i++) {
        size_t best = 0;
        double bv = -INFINITY;
        for (size_t o = 0; o < c; o++) {
            double v = 0;
            for (size_t t = 0; t < n; t++)
                v += F[(i * n + t) * c + o];
            if (v > bv) {
                bv = v;
                best = o;
            }
        }
        hit += (int)best == y[i];
    }
    return (double)hit / (double)sh->N;
}

/* Outputs of the convex solution Z (or of m heads) on problem q, and the accuracy. */
static af_status score(af_convex_problem *q, const int *y, const double *Z, size_t m,
                       const double *W1, const double *W2, const size_t *gate_of, double *acc)
{
    af_convex_shape sh = af_convex_problem_shape(q);
    double *F = cli_alloc(sh.N * sh.n, sh.c, sizeof *F);
    if (!F)
        return af_error(AF_ENOMEM, "out of memory");
    af_status st = Z ? af_convex_predict(q, Z, F)
                     : af_convex_heads_predict(q, m, W1, W2, gate_of, F);
    if (!st)
        *acc = accuracy(&sh, F, y);
    free(F);
    return st;
}

static af_status write_accuracy(FILE *fp, const convex_run *r, af_convex_problem *p,
                                const double *Z, size_t m, const double *W1, const double *W2,
                                const size_t *gate_of)
{
    double tr = 0, te = 0;
    af_status st = score(p, r->train_y, Z, m, W1, W2, gate_of, &tr);
    if (!st)
        st = score((af_convex_problem *)r->test, r->test_y, Z, m, W1, W2, gate_of, &te);
    if (!st) {
        fprintf(fp, "train_accuracy %.17g\ntest_accuracy %.17g\n", tr, te);
        if (r->val_acc >= 0)
            fprintf(fp, "val_accuracy %.17g\nbeta %.17g\n", r->val_acc, r->beta);
        printf("train_acc=%.4f test_acc=%.4f\n", tr, te);
    }
    return st;
}

static void iteration_line(FILE *fp, const af_convex_state *st)
{
    fprintf(fp, "%zu ", st->iter);
    const double v[] = {st->seconds, st->objective, st->rel_gap, st->gap, st->dual, st->loss,
                        st->penalty, st->grad_ratio};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        af_write_double(fp, v[k]);
        fputc(' ', fp);
    }
    fprintf(fp, "%zu ", st->rank);
    af_write_double(fp, st->step);
    fprintf(fp, " %zu %zu\n", st->restarts, st->backtracks);
}

static int run_convex_solver(const cli_args *a, const convex_run *r, af_convex_problem *p,
                             const size_t *cluster)
{
    enum { ITER, SUMMARY, HEADS, SV, CLUST, NOUT };
    outfile o[NOUT] = {{0}};
    const char *names[NOUT] = {"iterations.dat", "summary.txt", "heads.dat", "singular_values.dat",
                               "clusters.dat"};
    const char *what[NOUT] = {
        "FISTA iterations: gap = relative duality gap (P - D)/P, abs_gap = P - D, "
        "grad_ratio = max_g |grad_g|_2 / beta",
        "final certificate", "heads from the balanced SVD factorisation of Z*",
        "singular values of Z* (gate by gate)",
        "tokens of the first matrices; group = head dominating the token's output; "
        "headK = share of head K in the output norm"};
    af_convex_layout lay = af_convex_problem_layout(p);
    size_t kmin = lay.rows < lay.cols ? lay.rows : lay.cols;
    size_t zs = af_convex_z_size(p), cap = lay.blocks * kmin;
    double *Z = calloc(zs, sizeof *Z);
    double *W1 = cli_alloc(cap, lay.rows + lay.cols + 1, sizeof *W1);
    size_t *gate_of = malloc(cap * sizeof *gate_of);
    af_convex_solver *s = af_convex_solver_alloc(p);
    int rc = 0;
    af_status st = AF_SUCCESS;
    if (!Z || !W1 || !gate_of || !s) {
        rc = cli_fail(CLI_EINPUT, "out of memory");
        goto done;
    }
    double *W2 = W1 + cap * lay.rows, *sigma = W2 + cap * lay.cols;
    for (size_t k = 0; k < NOUT && !rc; k++)
        if (!(rc = open_out(&o[k], r, names[k])))
            header(o[k].fp, a, r, what[k]);
    if (rc)
        goto done;
    af_convex_options opt = af_convex_options_default();
    opt.beta = r->beta;
    opt.tol = r->tol;
    opt.max_iter = r->max_iter;
    opt.restart = !cli_flag(a, "no-restart");
    opt.accelerate = !cli_flag(a, "no-accel");
    opt.grow = r->grow;
    opt.gap_every = r->gap_every;
    opt.svd = r->svd == 0 ? AF_CONVEX_SVD_LAPACK : AF_CONVEX_SVD_GSL;
    af_write_meta(o[ITER].fp, "solver", "FISTA%s, SVT prox (%s SVD), backtracking %g, grow %g, restart %s, tol %g",
                  opt.accelerate ? "" : " without momentum", svds[r->svd], opt.backtrack, opt.grow,
                  opt.restart ? "on" : "off", opt.tol);
    fprintf(o[ITER].fp, "# columns: iter seconds objective gap abs_gap dual loss penalty grad_ratio "
                        "rank step restarts backtracks\n");
    if ((st = af_convex_solver_set(s, &opt, NULL)))
        goto done;
    const af_convex_state *S = af_convex_solver_state(s);
    cli_progress pr;
    cli_progress_start(&pr, "convex", r->max_iter, r->quiet);
    for (;;) {
        if (S->certified)
            iteration_line(o[ITER].fp, S);
        if (r->verbose && S->certified)
            fprintf(stderr, "convex: iter %zu objective %.12g gap %.3e grad/beta %.9f rank %zu\n",
                    S->iter, S->objective, S->rel_gap, S->grad_ratio, S->rank);
        if (S->converged || S->iter >= r->max_iter)
            break;
        if ((st = af_convex_solver_iterate(s))) {
            cli_progress_abort(&pr);
            goto done;
        }
        cli_progress_update(&pr, S->iter);
    }
    cli_progress_end(&pr);
    af_convex_state fin = *S;
    if (!fin.certified) { /* gap_every > 1 and the bound hit between certificates */
        af_convex_certificate cert;
        if ((st = af_convex_certify(p, r->beta, af_convex_solver_z(s), &cert)))
            goto done;
        fin.gap = cert.gap;
        fin.rel_gap = cert.rel_gap;
        fin.dual = cert.dual;
        fin.grad_ratio = cert.grad_ratio;
        fin.converged = cert.rel_gap <= r->tol;
        fin.certified = 1;
        iteration_line(o[ITER].fp, &fin);
    }
    S = &fin;
    memcpy(Z, af_convex_solver_z(s), zs * sizeof *Z);
    size_t m = 0;
    if ((st = af_convex_heads_from_z(p, Z, r->rank_tol, cap, &m, W1, W2, gate_of, sigma)))
        goto done;
    double head_obj = NAN;
    if (m > 0 && (st = af_convex_heads_objective(p, r->beta, m, W1, W2, gate_of, &head_obj, NULL, NULL)))
        goto done;
    if (m == 0)
        head_obj = S->loss; /* no heads: f = 0 */
    FILE *fp = o[SUMMARY].fp;
    fprintf(fp, "objective %.17g\ngap %.17g\nrank %zu\n", S->objective, S->rel_gap, S->rank);
    fprintf(fp, "abs_gap %.17g\ndual %.17g\nloss %.17g\npenalty %.17g\ngrad_ratio %.17g\n", S->gap,
            S->dual, S->loss, S->penalty, S->grad_ratio);
    fprintf(fp, "converged %d\niterations %zu\nseconds %.6g\nsvd_seconds %.6g\nrestarts %zu\n",
            S->converged, S->iter, S->seconds, S->svd_seconds, S->restarts);
    fprintf(fp, "heads %zu\nhead_objective %.17g\n", m, head_obj);
    if (r->test && (st = write_accuracy(fp, r, p, Z, 0, NULL, NULL, NULL)))
        goto done;
    write_heads(o[HEADS].fp, r, &lay, m, W1, W2, gate_of, sigma);
    fprintf(o[SV].fp, "# columns: gate index sigma\n");
    const double *sv = af_convex_solver_sigma(s);
    for (size_t g = 0; g < lay.blocks; g++)
        for (size_t j = 0; j < kmin; j++) {
            fprintf(o[SV].fp, "%zu %zu ", g + 1, j + 1);
            af_write_double(o[SV].fp, sv[g * kmin + j]);
            fputc('\n', o[SV].fp);
        }
    if ((st = write_clusters(o[CLUST].fp, r, p, cluster, m, W1, W2, gate_of)))
        goto done;
    printf("objective=%.12g gap=%.3e rank=%zu iters=%zu converged=%d seconds=%.3f grad_ratio=%.9f\n",
           S->objective, S->rel_gap, S->rank, S->iter, S->converged, S->seconds, S->grad_ratio);
    if (!S->converged && !r->quiet)
        fprintf(stderr, "attnflow: convex: warning: relative gap %.3e > tol %.3e after %zu iterations\n",
                S->rel_gap, r->tol, S->iter);
    rc = cli_outputs_commit(r->files, NULL);
done:
    if (st)
        rc = cli_fail_status(st);
    if (rc)
        cli_outputs_abort(r->files);
    af_convex_solver_free(s);
    free(Z);
    free(W1);
    free(gate_of);
    return rc;
}

static int run_nonconvex(const cli_args *a, const convex_run *r, af_convex_problem *p)
{
    enum { ITER, SUMMARY, HEADS, NOUT };
    outfile o[NOUT] = {{0}};
    const char *names[NOUT] = {"iterations.dat", "summary.txt", "heads.dat"};
    const char *what[NOUT] = {"Adam on the head form: objective = loss + (beta/2) sum |W|^2",
                              "final objective of the head form", "trained heads"};
    af_convex_adam *ad = af_convex_adam_alloc(p, r->heads);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    int rc = 0;
    af_status st = AF_SUCCESS;
    if (!ad || !rng) {
        rc = cli_fail(CLI_EINPUT, "out of memory");
        goto done;
    }
    gsl_rng_set(rng, r->init_seed);
    for (size_t k = 0; k < NOUT && !rc; k++)
        if (!(rc = open_out(&o[k], r, names[k]))) {
            header(o[k].fp, a, r, what[k]);
            af_write_meta(o[k].fp, "heads", "%zu", r->heads);
            af_write_meta(o[k].fp, "init_seed", "%lu", r->init_seed);
        }
    if (rc)
        goto done;
    af_convex_adam_options opt = af_convex_adam_options_default();
    opt.beta = r->beta;
    opt.lr = r->lr;
    opt.init_scale = r->init_scale;
    if ((st = af_convex_adam_set(ad, &opt, rng)))
        goto done;
    fprintf(o[ITER].fp, "# columns: iter seconds objective\n");
    cli_progress pr;
    cli_progress_start(&pr, "nonconvex", r->iters, r->quiet);
    double t0 = cli_now(), obj = NAN;
    for (size_t it = 0; it < r->iters; it++) {
        double el = cli_now() - t0;
        if ((st = af_convex_adam_iterate(ad, &obj))) {
            cli_progress_abort(&pr);
            goto done;
        }
        fprintf(o[ITER].fp, "%zu ", it); /* obj is the value before step it + 1 */
        af_write_double(o[ITER].fp, el);
        fputc(' ', o[ITER].fp);
        af_write_double(o[ITER].fp, obj);
        fputc('\n', o[ITER].fp);
        cli_progress_update(&pr, it + 1);
    }
    cli_progress_end(&pr);
    const double *W1 = af_convex_adam_w1(ad), *W2 = af_convex_adam_w2(ad);
    const size_t *gate_of = af_convex_adam_gates(ad);
    if ((st = af_convex_heads_objective(p, r->beta, r->heads, W1, W2, gate_of, &obj, NULL, NULL)))
        goto done;
    double seconds = cli_now() - t0;
    fprintf(o[ITER].fp, "%zu ", r->iters);
    af_write_double(o[ITER].fp, seconds);
    fputc(' ', o[ITER].fp);
    af_write_double(o[ITER].fp, obj);
    fputc('\n', o[ITER].fp);
    fprintf(o[SUMMARY].fp, "objective %.17g\nheads %zu\niterations %zu\nseconds %.6g\n", obj,
            r->heads, r->iters, seconds);
    if (r->test && (st = write_accuracy(o[SUMMARY].fp, r, p, NULL, r->heads, W1, W2, gate_of)))
        goto done;
    af_convex_layout lay = af_convex_problem_layout(p);
    write_heads(o[HEADS].fp, r, &lay, r->heads, W1, W2, lay.blocks > 1 ? gate_of : NULL, NULL);
    printf("objective=%.12g heads=%zu iters=%zu seconds=%.3f\n", obj, r->heads, r->iters, seconds);
    rc = cli_outputs_commit(r->files, NULL);
done:
    if (st)
        rc = cli_fail_status(st);
    if (rc)
        cli_outputs_abort(r->files);
    af_convex_adam_free(ad);
    gsl_rng_free(rng);
    return rc;
}

/* ---- --task features: heads on a frozen backbone's token features ---- */

/* A problem on samples idx[0..N) of a features set (NULL: all of them):
 * one-hot targets on every token; labels copied to y. */
static af_status features_problem(const convex_run *r, const af_convex_features *fe, int set,
                                  const size_t *idx, size_t N, const double *H,
                                  af_convex_problem **p, int *y)
{
    size_t n = fe->n, d = fe->d, c = r->c, T = N * n;
    double *X = cli_alloc(T, d, sizeof *X), *Y = cli_alloc(T, c, sizeof *Y);
    af_status st = (!X || !Y) ? af_error(AF_ENOMEM, "features: out of memory") : AF_SUCCESS;
    for (size_t i = 0; !st && i < N; i++) {
        size_t j = idx ? idx[i] : i;
        memcpy(X + i * n * d, fe->x[set] + j * n * d, n * d * sizeof *X);
        y[i] = fe->y[set][j];
        for (size_t t = 0; t < n; t++)
            for (size_t o = 0; o < c; o++)
                Y[(i * n + t) * c + o] = (int)o == y[i];
    }
    af_convex_shape sh = {r->gated ? AF_CONVEX_GATED : AF_CONVEX_LINEAR,
                          r->loss == 0 ? AF_CONVEX_SQUARED : AF_CONVEX_CE, N, n, d, c, r->P,
                          (af_convex_mixing)r->mixing, r->blocks, r->grid_h, r->grid_w};
    if (!st)
        st = af_convex_problem_alloc(p, &sh, X, H);
    if (!st)
        st = af_convex_problem_set_targets(*p, Y);
    free(X);
    free(Y);
    return st;
}

/* Fit at one beta (convex solve or Adam) on fit, accuracy on val. */
static af_status fit_and_score(const convex_run *r, af_convex_problem *fit, af_convex_problem *val,
                               const int *yval, double beta, double *acc)
{
    af_status st;
    if (!r->nonconvex) {
        double *Z = calloc(af_convex_z_size(fit), sizeof *Z);
        if (!Z)
            return af_error(AF_ENOMEM, "out of memory");
        af_convex_options opt = af_convex_options_default();
        opt.beta = beta;
        opt.tol = r->tol;
        opt.max_iter = r->max_iter;
        opt.gap_every = r->gap_every;
        af_convex_state state;
        st = af_convex_solve(fit, &opt, Z, &state);
        if (st == AF_EMAXITER) /* scored all the same: the gap is in the final fit's summary */
            st = AF_SUCCESS;
        if (!st)
            st = score(val, yval, Z, 0, NULL, NULL, NULL, acc);
        free(Z);
        return st;
    }
    af_convex_adam *ad = af_convex_adam_alloc(fit, r->heads);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!ad || !rng) {
        af_convex_adam_free(ad);
        gsl_rng_free(rng);
        return af_error(AF_ENOMEM, "out of memory");
    }
    gsl_rng_set(rng, r->init_seed);
    af_convex_adam_options ao = af_convex_adam_options_default();
    ao.beta = beta;
    ao.lr = r->lr;
    ao.init_scale = r->init_scale;
    st = af_convex_adam_set(ad, &ao, rng);
    for (size_t it = 0; !st && it < r->iters; it++)
        st = af_convex_adam_iterate(ad, NULL);
    if (!st)
        st = score(val, yval, NULL, r->heads, af_convex_adam_w1(ad), af_convex_adam_w2(ad),
                   af_convex_adam_gates(ad), acc);
    af_convex_adam_free(ad);
    gsl_rng_free(rng);
    return st;
}

/* Validation split of the training set and the best beta of the list. */
static int select_beta(const cli_args *a, convex_run *r, const af_convex_features *fe,
                       const double *H)
{
    double frac, betas[32];
    size_t nb = 0;
    int rc = cli_double(a, "val-frac", 0.2, &frac);
    if (rc)
        return rc;
    if (!(frac > 0 && frac < 1))
        return cli_fail(CLI_EINPUT, "--val-frac: must be in (0,1) (got %g)", frac);
    const char *v = cli_str(a, "betas", "");
    while (*v && nb < 32) {
        char *end;
        double b = strtod(v, &end);
        if (end == v || !(b > 0) || !isfinite(b) || (*end && *end != ','))
            return cli_fail(CLI_EINPUT, "--betas: expected a comma-separated list of betas > 0 "
                            "(got '%s')", cli_str(a, "betas", ""));
        betas[nb++] = b;
        v = *end ? end + 1 : end;
    }
    size_t N = fe->N[0], nv = (size_t)((double)N * frac + 0.5);
    if (nv == 0 || nv >= N)
        return cli_fail(CLI_EINPUT, "--val-frac %g leaves no validation or no fitting sample", frac);
    size_t *perm = malloc(N * sizeof *perm);
    int *y = malloc(N * sizeof *y);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    af_convex_problem *fit = NULL, *val = NULL;
    af_status st = (!perm || !y || !rng) ? af_error(AF_ENOMEM, "out of memory") : AF_SUCCESS;
    if (!st) {
        for (size_t i = 0; i < N; i++)
            perm[i] = i;
        gsl_rng_set(rng, r->seed + 7919); /* the split is its own stream */
        gsl_ran_shuffle(rng, perm, N, sizeof *perm);
        st = features_problem(r, fe, 0, perm, nv, H, &val, y);
    }
    int *yv = malloc(nv * sizeof *yv);
    if (!st && !yv)
        st = af_error(AF_ENOMEM, "out of memory");
    if (!st) {
        memcpy(yv, y, nv * sizeof *yv);
        st = features_problem(r, fe, 0, perm + nv, N - nv, H, &fit, y);
    }
    double best = -1;
    for (size_t k = 0; !st && k < nb; k++) {
        double acc = 0;
        st = fit_and_score(r, fit, val, yv, betas[k], &acc);
        if (!st && !r->quiet)
            fprintf(stderr, "convex: beta %g: validation accuracy %.4f\n", betas[k], acc);
        if (!st && acc >= best) { /* ties: the larger beta (the betas are tried ascending) */
            best = acc;
            r->beta = betas[k];
        }
    }
    r->val_acc = best;
    af_convex_problem_free(fit);
    af_convex_problem_free(val);
    gsl_rng_free(rng);
    free(perm);
    free(y);
    free(yv);
    return st ? cli_fail_status(st) : 0;
}

static int run_features(const cli_args *a, convex_run *r)
{
    af_convex_features fe;
    af_status st = af_convex_features_read(cli_str(a, "features", ""), &fe);
    if (st)
        return cli_fail_status(st);
    int rc = 0;
    size_t pool = 0;
    if (cli_given(a, "pool-dim") && ((rc = cli_size(a, "pool-dim", 1, &pool))
                                     || (st = af_convex_features_pool(&fe, pool)))) {
        rc = rc ? rc : cli_fail_status(st);
        af_convex_features_free(&fe);
        return rc;
    }
    if (cli_flag(a, "pool-tokens"))
        af_convex_features_pool_tokens(&fe);
    af_convex_features_standardise(&fe);
    r->N = fe.N[0];
    r->n = fe.n;
    r->d = fe.d;
    r->c = fe.classes;
    if (r->mixing == AF_CONVEX_FNO && !r->grid_h && fe.grid_h) {
        r->grid_h = fe.grid_h;
        r->grid_w = fe.grid_w;
    }
    if (r->loss == 1 && r->c < 2) {
        af_convex_features_free(&fe);
        return cli_fail(CLI_EINPUT, "--features: cross-entropy needs at least 2 classes");
    }
    if ((rc = check_sizes(r))) {
        af_convex_features_free(&fe);
        return rc;
    }
    if (r->cluster_samples > r->N)
        r->cluster_samples = r->N;
    af_convex_shape gs = {.n = r->n, .d = r->d, .mixing = (af_convex_mixing)r->mixing};
    size_t T = r->N * r->n;
    double *H = malloc((r->P * af_convex_gate_size(&gs) + 1) * sizeof *H);
    int *ytr = malloc(r->N * sizeof *ytr), *yte = malloc(fe.N[1] * sizeof *yte);
    size_t *cluster = malloc(T * sizeof *cluster);
    af_convex_problem *ptr = NULL, *pte = NULL;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!H || !ytr || !yte || !cluster || !rng) {
        rc = cli_fail(CLI_EINPUT, "out of memory");
        goto done;
    }
    gsl_rng_set(rng, r->seed);
    af_convex_shape sh = {r->gated ? AF_CONVEX_GATED : AF_CONVEX_LINEAR, AF_CONVEX_SQUARED, r->N,
                          r->n, r->d, r->c, r->P, (af_convex_mixing)r->mixing, r->blocks,
                          r->grid_h, r->grid_w};
    if ((st = af_convex_synth_gate_weights(&sh, rng, H))) {
        rc = cli_fail_status(st);
        goto done;
    }
    if (cli_given(a, "betas") && (rc = select_beta(a, r, &fe, H)))
        goto done;
    if ((st = features_problem(r, &fe, 0, NULL, r->N, H, &ptr, ytr))
        || (st = features_problem(r, &fe, 1, NULL, fe.N[1], H, &pte, yte))) {
        rc = cli_fail_status(st);
        goto done;
    }
    for (size_t t = 0; t < T; t++)
        cluster[t] = (size_t)ytr[t / r->n];
    r->test = pte;
    r->train_y = ytr;
    r->test_y = yte;
    if ((rc = cli_outputs_dir(r->files, "out", r->dir)))
        goto done;
    rc = r->nonconvex ? run_nonconvex(a, r, ptr) : run_convex_solver(a, r, ptr, cluster);
done:
    cli_outputs_abort(r->files); /* nothing left after a commit */
    af_convex_problem_free(ptr);
    af_convex_problem_free(pte);
    gsl_rng_free(rng);
    free(H);
    free(ytr);
    free(yte);
    free(cluster);
    af_convex_features_free(&fe);
    return rc;
}

static int run_convex(const cli_args *a)
{
    convex_run r = {0};
    r.val_acc = -1;
    int rc = read_options(a, &r);
    size_t threads;
    if (rc || (rc = cli_size(a, "threads", 1, &threads)))
        return rc;
    /* more threads than cores, or busy cores, make OpenBLAS spin: measured
     * 6x slower on the transfer experiment's FNO solve with 2 threads on a
     * loaded 2-core machine */
    openblas_set_num_threads((int)threads);
    cli_outputs files;
    cli_outputs_init(&files);
    r.files = &files;
    if (r.data == 2)
        return run_features(a, &r);
    /* data: tokens, gates, teacher targets, all from one generator seeded by --seed */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    size_t T = r.N * r.n;
    af_convex_shape gs = {.n = r.n, .d = r.d, .mixing = (af_convex_mixing)r.mixing};
    double *X = cli_alloc(T, r.d, sizeof *X), *H = cli_alloc(r.P, af_convex_gate_size(&gs), sizeof *H);
    double *Y = cli_alloc(T, r.c, sizeof *Y);
    size_t *cluster = malloc(T * sizeof *cluster);
    af_convex_problem *p = NULL;
    if (!rng || !X || !H || !Y || !cluster) {
        rc = cli_fail(CLI_EINPUT, "out of memory (N=%zu n=%zu d=%zu)", r.N, r.n, r.d);
        goto done;
    }
    gsl_rng_set(rng, r.seed);
    af_convex_synth_params sp = af_convex_synth_params_default();
    sp.clusters = r.clusters;
    sp.teacher_heads = r.teacher;
    sp.noise = r.noise;
    sp.width = r.width;
    af_convex_shape sh = {r.gated ? AF_CONVEX_GATED : AF_CONVEX_LINEAR,
                          r.loss == 0 ? AF_CONVEX_SQUARED : AF_CONVEX_CE, r.N, r.n, r.d, r.c, r.P,
                          (af_convex_mixing)r.mixing, r.blocks, r.grid_h, r.grid_w};
    af_status st;
    if (r.data == 0) {
        st = af_convex_synth_tokens(&sp, r.N, r.n, r.d, rng, X, cluster);
    } else {
        /* the point clouds of the train command; every token is asked for
         * the class of its cloud, and the points are scaled by 1/sqrt(n)
         * like the synthetic tokens so that X^T X stays O(1) */
        af_pointcloud_options po = af_pointcloud_options_default();
        po.n_points = r.n;
        if (cli_given(a, "noise"))
            po.noise = r.noise;
        r.noise = po.noise;
        af_dataset ds = {0};
        st = af_pointclouds_generate(r.N, &po, rng, &ds);
        if (!st) {
            double sc = 1.0 / sqrt((double)r.n);
            for (size_t q = 0; q < T * r.d; q++)
                X[q] = sc * ds.x[q];
            for (size_t t = 0; t < T; t++) {
                size_t k = (size_t)ds.y[t / r.n];
                cluster[t] = k;
                for (size_t o = 0; o < r.c; o++)
                    Y[t * r.c + o] = o == k;
            }
        }
        af_dataset_free(&ds);
    }
    if (!st)
        st = af_convex_synth_gate_weights(&sh, rng, H);
    if (!st)
        st = af_convex_problem_alloc(&p, &sh, X, H);
    if (!st && r.data == 0)
        st = af_convex_synth_targets(p, &sp, rng, Y);
    if (!st)
        st = af_convex_problem_set_targets(p, Y);
    if (st) {
        rc = cli_fail_status(st);
        goto done;
    }
    if ((rc = cli_outputs_dir(&files, "out", r.dir)))
        goto done;
    rc = r.nonconvex ? run_nonconvex(a, &r, p) : run_convex_solver(a, &r, p, cluster);
done:
    cli_outputs_abort(&files); /* nothing left after a commit */
    af_convex_problem_free(p);
    gsl_rng_free(rng);
    free(X);
    free(H);
    free(Y);
    free(cluster);
    return rc;
}

const cli_command cli_cmd_convex = {
    "convex",
    "attention, Mixer and FNO heads to global optimality via convex duality (certified), or the "
    "nonconvex baseline",
    "[FILE.ini] [--kind linear|gated|attention|mixer|fno] [--gated] [--blocks B] [--grid HxW]\n"
    "       [--loss squared|ce] [--beta B] [--seed S] [--tol T]\n"
    "       [--out DIR] [--nonconvex --heads M] [--task features --features FILE] [options]",
    convex_opts,
    run_convex,
};

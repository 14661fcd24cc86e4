/* attnflow convex: solve linear / gated-ReLU attention heads to global
 * optimality through the convex Z program (FISTA + singular-value
 * thresholding, duality-gap certificate), or, with --nonconvex, train the
 * same heads directly with Adam on the same synthetic data (docs/cli.md
 * `convex`, issue 7, docs/theory.md section 8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include "alloc.h"
#include "attnflow/convex.h"
#include "attnflow/io.h"
#include "attnflow/train.h"
#include "cli.h"
#include "outputs.h"

static const cli_opt convex_opts[] = {
    CLI_OPT("task", "KIND", "synthetic|pointclouds (3-D shapes of the train command; d = 3, c = 6) "
                            "(default synthetic)"),
    CLI_OPT("kind", "KIND", "linear|gated attention (default linear)"),
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
    CLI_ALIAS("data", "task"),
    CLI_ALIAS("tokens", "n"),
    CLI_ALIAS("dim", "d"),
    CLI_ALIAS("iters", "steps"),
    CLI_ALIAS("max-iter", "max-iters"),
    CLI_END,
};

typedef struct {
    int kind, loss, svd, data;
    double beta, tol, noise, width, lr, init_scale, grow, rank_tol;
    unsigned long seed, init_seed;
    size_t N, n, d, c, P, clusters, teacher, heads, iters, max_iter, gap_every, cluster_samples;
    const char *dir;
    bool nonconvex, quiet, verbose;
    cli_outputs *files; /* every output of the run (outputs.h) */
} convex_run;

static const char *const kinds[] = {"linear", "gated", NULL};
static const char *const losses[] = {"squared", "ce", NULL};
static const char *const svds[] = {"lapack", "gsl", NULL};
static const char *const datas[] = {"synthetic", "pointclouds", NULL};

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
    if (r->tol < 0)
        return cli_fail(CLI_EINPUT, "--tol: must be >= 0 (got %g)", r->tol);
    if (r->noise < 0 || r->width < 0 || r->init_scale < 0)
        return cli_fail(CLI_EINPUT, "--noise, --width, --init-scale: must be >= 0");
    if (r->grow < 1)
        return cli_fail(CLI_EINPUT, "--grow: must be >= 1 (got %g)", r->grow);
    if (r->loss == 1 && r->c < 2)
        return cli_fail(CLI_EINPUT, "--classes: cross-entropy needs at least 2 classes");
    /* Sizes from the command line: every array below is a product of them,
     * so each is bounded and the token count checked before any allocation. */
    const struct { const char *name; size_t v; } sizes[] = {
        {"d", r->d}, {"classes", r->c}, {"gates", r->P}, {"heads", r->heads},
        {"clusters", r->clusters}, {"teacher-heads", r->teacher}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        if (sizes[k].v > 1024)
            return cli_fail(CLI_EINPUT, "--%s: at most 1024 (got %zu)", sizes[k].name, sizes[k].v);
    if (r->n > 65536) /* the solver forms n x n blocks per sample */
        return cli_fail(CLI_EINPUT, "--n: at most 65536 tokens per sample (got %zu)", r->n);
    size_t tokens;
    if (!cli_mul_ok(r->N, r->n, &tokens) || tokens > ((size_t)1 << 32))
        return cli_fail(CLI_EINPUT, "--samples %zu x --n %zu: too many tokens (at most 2^32)",
                        r->N, r->n);
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
    af_write_meta(fp, "problem", "%s attention, %s loss, N=%zu n=%zu d=%zu c=%zu", kinds[r->kind],
                  losses[r->loss], r->N, r->n, r->d, r->c);
    if (r->data == 0)
        af_write_meta(fp, "data", "synthetic: clusters=%zu width=%g teacher_heads=%zu noise=%g",
                      r->clusters, r->width, r->teacher, r->noise);
    else
        af_write_meta(fp, "data", "pointclouds: %zu points per cloud, noise %g, scaled by "
                      "1/sqrt(n); target of every token = one-hot class of its cloud",
                      r->n, r->noise);
    if (r->kind == 1)
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

/* heads.dat: one line per head: head gate sigma W1 (row-major) W2 (row-major). */
static void write_heads(FILE *fp, const convex_run *r, size_t m, const double *W1, const double *W2,
                        const size_t *gate_of, const double *sigma)
{
    fprintf(fp, "# columns: head gate sigma");
    for (size_t k = 0; k < r->d; k++)
        for (size_t l = 0; l < r->d; l++)
            fprintf(fp, " W1_%zu_%zu", k + 1, l + 1);
    for (size_t k = 0; k < r->d; k++)
        for (size_t o = 0; o < r->c; o++)
            fprintf(fp, " W2_%zu_%zu", k + 1, o + 1);
    fputc('\n', fp);
    for (size_t h = 0; h < m; h++) {
        fprintf(fp, "%zu %zu ", h + 1, gate_of ? gate_of[h] + 1 : 1);
        if (sigma) {
            af_write_double(fp, sigma[h]);
        } else { /* nonconvex heads: |W1| |W2|, the nuclear norm of the head's term */
            double a = 0, b = 0;
            for (size_t q = 0; q < r->d * r->d; q++)
                a += W1[h * r->d * r->d + q] * W1[h * r->d * r->d + q];
            for (size_t q = 0; q < r->d * r->c; q++)
                b += W2[h * r->d * r->c + q] * W2[h * r->d * r->c + q];
            af_write_double(fp, sqrt(a * b));
        }
        for (size_t q = 0; q < r->d * r->d; q++) {
            fputc(' ', fp);
            af_write_double(fp, W1[h * r->d * r->d + q]);
        }
        for (size_t q = 0; q < r->d * r->c; q++) {
            fputc(' ', fp);
            af_write_double(fp, W2[h * r->d * r->c + q]);
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
    size_t zs = af_convex_z_size(p), cap = r->P * (r->d * r->d < r->d * r->c ? r->d * r->d : r->d * r->c);
    double *Z = calloc(zs, sizeof *Z);
    double *W1 = cli_alloc(cap, r->d * r->d + r->d * r->c + 1, sizeof *W1);
    size_t *gate_of = malloc(cap * sizeof *gate_of);
    af_convex_solver *s = af_convex_solver_alloc(p);
    int rc = 0;
    af_status st = AF_SUCCESS;
    if (!Z || !W1 || !gate_of || !s) {
        rc = cli_fail(CLI_EINPUT, "out of memory");
        goto done;
    }
    double *W2 = W1 + cap * r->d * r->d, *sigma = W2 + cap * r->d * r->c;
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
    write_heads(o[HEADS].fp, r, m, W1, W2, gate_of, sigma);
    fprintf(o[SV].fp, "# columns: gate index sigma\n");
    const double *sv = af_convex_solver_sigma(s);
    size_t kmin = r->d * r->d < r->d * r->c ? r->d * r->d : r->d * r->c;
    for (size_t g = 0; g < (r->kind == 1 ? r->P : 1); g++)
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
    write_heads(o[HEADS].fp, r, r->heads, W1, W2, r->kind == 1 ? gate_of : NULL, NULL);
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

static int run_convex(const cli_args *a)
{
    convex_run r = {0};
    int rc = read_options(a, &r);
    if (rc)
        return rc;
    cli_outputs files;
    cli_outputs_init(&files);
    r.files = &files;
    /* data: tokens, gates, teacher targets, all from one generator seeded by --seed */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    size_t T = r.N * r.n;
    double *X = cli_alloc(T, r.d, sizeof *X), *H = cli_alloc(r.P, r.d * r.d, sizeof *H);
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
    af_convex_shape sh = {r.kind == 0 ? AF_CONVEX_LINEAR : AF_CONVEX_GATED,
                          r.loss == 0 ? AF_CONVEX_SQUARED : AF_CONVEX_CE, r.N, r.n, r.d, r.c, r.P};
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
        st = af_convex_synth_gates(r.P, r.d, rng, H);
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
    "attention heads to global optimality via convex duality (certified), or the nonconvex baseline",
    "[FILE.ini] [--kind linear|gated] [--loss squared|ce] [--beta B] [--seed S] [--tol T]\n"
    "       [--out DIR] [--nonconvex --heads M] [options]",
    convex_opts,
    run_convex,
};

/* attnflow train: train a small Transformer or Sinkformer on digits or 3-D
 * point clouds and record, per epoch, how doubly stochastic its attention
 * is on held-out data (docs/cli.md `train`, issue 6, docs/theory.md section 6). */
#include "core/af_blas.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libgen.h>
#include <gsl/gsl_rng.h>
#include "alloc.h"
#include "attnflow/io.h"
#include "attnflow/train.h"
#include "cli.h"
#include "outputs.h"

static const cli_opt train_opts[] = {
    CLI_OPT("task", "KIND", "digits|pointclouds (default digits)"),
    CLI_OPT("model", "KIND", "transformer (SoftMax) | sinkformer (Sinkhorn attention) (default transformer)"),
    CLI_OPT("iters", "N", "sinkformer: unrolled Sinkhorn normalisations per attention, 1 = SoftMax "
                          "(default 3; transformer: 1)"),
    CLI_OPT("epochs", "N", "training epochs after epoch 0 (default 20)"),
    CLI_OPT("seed", "S", "seed of the split/data, initialisation, shuffling, null control (default 1)"),
    CLI_OPT("out", "DIR", "output directory: epochs.dat, colsums.dat, checkpoint.bin (default out/train)"),
    CLI_FLAG("resume", "continue from DIR/checkpoint.bin (same options) if it exists"),
    CLI_OPT("lr", "RATE", "Adam learning rate (default 1e-3)"),
    CLI_OPT("batch", "B", "minibatch size (default 10)"),
    CLI_FLAG("no-shuffle", "keep the training order fixed (the paper's script does not shuffle)"),
    CLI_OPT("dim", "N", "model dimension, the width of the attention layers (digits 128, "
                          "pointclouds 64; not a token dimension --d)"),
    CLI_OPT("heads", "M", "attention heads (default 1)"),
    CLI_OPT("head-dim", "D", "dimension per head (default 64)"),
    CLI_OPT("layers", "L", "attention layers (default 1)"),
    CLI_OPT("mlp", "H", "MLP hidden width after attention, 0 = none (digits 0, pointclouds 128)"),
    CLI_OPT("embed-hidden", "H", "token embedding: 0 linear, H a ReLU MLP in -> H -> dim (digits 0, "
                        "pointclouds 64)"),
    CLI_OPT("data", "FILE", "digits file (default: python3-sklearn's digits.csv.gz)"),
    CLI_OPT("n-test", "N", "held-out samples (digits 400 of 1797; pointclouds 300)"),
    CLI_OPT("n-train", "N", "pointclouds: training clouds (default 600)"),
    CLI_OPT("n-points", "N", "pointclouds: points per cloud (default 128)"),
    CLI_OPT("noise", "S", "pointclouds: Gaussian noise std (default 0.1)"),
    CLI_OPT("threads", "N", "OpenBLAS threads (default 1: small matrices, shared cores)"),
    CLI_OPT("train-classes", "LO-HI", "digits: train (and test) the backbone on classes LO-HI only "
                                      "(default all)"),
    CLI_OUT("features-out", "FILE", "after training, write the frozen model's token features (after "
                                    "the attention block, before pooling) of train and test samples "
                                    "to FILE"),
    CLI_OPT("features-classes", "LO-HI", "--features-out: samples of classes LO-HI only, labels "
                                         "shifted to 0.. (default all)"),
    CLI_ALIAS("n-it", "iters"),
    CLI_END,
};

typedef struct {
    const char *task, *model, *data;
    size_t n_it, n_train, n_test, epochs;
    unsigned long seed;
    af_pointcloud_options pc;
} run_info;

static void write_meta(FILE *fp, const cli_args *args, const run_info *ri,
                       const af_train_options *o, const af_dataset *tr, const af_dataset *te)
{
    af_write_header(fp, args->command_line);
    af_write_meta(fp, "seed", "%lu", ri->seed);
    af_write_meta(fp, "task", "%s", ri->task);
    af_write_meta(fp, "model", "%s", ri->model);
    af_write_meta(fp, "n_it", "%zu", o->model.n_it);
    af_write_meta(fp, "tokens", "%zu (%s)", o->model.n_in + (o->model.cls ? 1 : 0),
                  o->model.cls ? "CLS + inputs" : "inputs");
    af_write_meta(fp, "dim", "%zu", o->model.dim);
    af_write_meta(fp, "heads", "%zu", o->model.heads);
    af_write_meta(fp, "head_dim", "%zu", o->model.head_dim);
    af_write_meta(fp, "layers", "%zu", o->model.layers);
    af_write_meta(fp, "mlp", "%zu", o->model.mlp);
    af_write_meta(fp, "embed_hidden", "%zu", o->model.embed_hidden);
    af_write_meta(fp, "pool", "%s", o->model.pool == AF_POOL_CLS ? "cls" : "mean");
    af_write_meta(fp, "lr", "%.17g", o->adam.lr);
    af_write_meta(fp, "batch", "%zu", o->batch);
    af_write_meta(fp, "shuffle", "%d", o->shuffle);
    af_write_meta(fp, "train_size", "%zu", tr->n);
    af_write_meta(fp, "test_size", "%zu", te->n);
    if (strcmp(ri->task, "digits") == 0)
        af_write_meta(fp, "data", "%s", ri->data);
    else
        af_write_meta(fp, "clouds", "%zu points, noise %.17g, scale jitter %.17g",
                      ri->pc.n_points, ri->pc.noise, ri->pc.scale_jitter);
    af_write_meta(fp, "measured_on", "held-out (test) set, every sample, layer and head");
}

/* epochs.dat and colsums.dat for every epoch so far; status NULL, or why
 * the run stopped early (the files' '# status:' line). */
static int write_outputs(const cli_args *args, const char *dir, const run_info *ri,
                         const af_train_options *o, const af_dataset *tr, const af_dataset *te,
                         af_trainer *t, const char *status)
{
    char path[4200];
    size_t ne = af_trainer_epochs(t), T = o->model.n_in + (o->model.cls ? 1 : 0);
    const af_epoch_record *rec = af_trainer_records(t);
    /* both files of an epoch are renamed into place together (outputs.h) */
    cli_outputs files;
    cli_outputs_init(&files);
    FILE *fp, *fc;
    int rc;
    if ((rc = cli_outputs_join(path, sizeof path, "out", dir, "epochs.dat"))
        || (rc = cli_outputs_open(&files, "out", path, &fp))
        || (rc = cli_outputs_join(path, sizeof path, "out", dir, "colsums.dat"))
        || (rc = cli_outputs_open(&files, "out", path, &fc))) {
        cli_outputs_abort(&files);
        return rc;
    }
    write_meta(fp, args, ri, o, tr, te);
    af_write_meta(fp, "notes", "epoch 0 = before training; train_* of epoch 0 is a forward "
                               "pass over the training set, later ones average the epoch's "
                               "minibatches; colsum_* average over held-out matrices; null_* "
                               "permute each attention row at random first; sinkhorn_dist = "
                               "(1/T) sum_ij |A - P|, P the Sinkhorn projection of A");
    fputs("# columns: epoch train_loss train_acc test_loss test_acc colsum_std colsum_maxdev "
          "null_colsum_std null_colsum_maxdev row_entropy colsum_std_sd seconds "
          "sinkhorn_dist null_sinkhorn_dist\n", fp);
    for (size_t e = 0; e < ne; e++) {
        const af_epoch_record *r = &rec[e];
        double v[] = {r->train_loss, r->train_acc, r->test_loss, r->test_acc,
                      r->attn.colsum_std, r->attn.colsum_maxdev, r->attn.null_colsum_std,
                      r->attn.null_colsum_maxdev, r->attn.row_entropy, r->attn.colsum_std_sd,
                      r->seconds, r->attn.sinkhorn_dist, r->attn.null_sinkhorn_dist};
        fprintf(fp, "%zu", r->epoch);
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            fputc(' ', fp);
            af_write_double(fp, v[k]);
        }
        fputc('\n', fp);
    }
    fp = fc;
    write_meta(fp, args, ri, o, tr, te);
    af_write_meta(fp, "notes", "one block per epoch (gnuplot index = epoch): column sums of "
                               "each held-out attention matrix sorted ascending, averaged over "
                               "matrices; null = after permuting each row at random");
    fputs("# columns: epoch rank colsum null_colsum\n", fp);
    const double *p = af_trainer_profiles(t), *q = af_trainer_null_profiles(t);
    for (size_t e = 0; e < ne; e++) {
        if (e)
            fputs("\n\n", fp);
        for (size_t j = 0; j < T; j++) {
            fprintf(fp, "%zu %zu ", e, j);
            af_write_double(fp, p[e * T + j]);
            fputc(' ', fp);
            af_write_double(fp, q[e * T + j]);
            fputc('\n', fp);
        }
    }
    return cli_outputs_commit(&files, status);
}

static int size_opt(const cli_args *a, const char *name, size_t def, size_t *out)
{
    return cli_size(a, name, def, out);
}

/* A width where 0 is allowed (cli_size wants >= 1); unchanged if not given. */
static int size_or_zero(const cli_args *a, const char *name, size_t *out)
{
    if (!cli_given(a, name))
        return 0;
    double v;
    int rc = cli_double(a, name, 0, &v);
    if (rc)
        return rc;
    if (v < 0 || v > 1e6 || v != (double)(size_t)v)
        return cli_fail(CLI_EINPUT, "--%s: must be a whole number >= 0 (got %g)", name, v);
    *out = (size_t)v;
    return 0;
}

/* "LO-HI" (or one class "K") within 0..classes-1; *lo = -1 when not given. */
static int class_range(const cli_args *a, const char *name, int *lo, int *hi)
{
    *lo = *hi = -1;
    if (!cli_given(a, name))
        return 0;
    const char *v = cli_str(a, name, "");
    char *end;
    long l = strtol(v, &end, 10), h = l;
    if (*end == '-')
        h = strtol(end + 1, &end, 10);
    if (end == v || *end || l < 0 || h < l || h > 9)
        return cli_fail(CLI_EINPUT, "--%s: expected classes LO-HI within 0-9 (got '%s')", name, v);
    *lo = (int)l;
    *hi = (int)h;
    return 0;
}

/* --features-out naming a file the run writes into its --out directory
 * (epochs.dat, colsums.dat, checkpoint.bin): the outputs rule refuses two
 * outputs of one run naming the same file. */
static bool names_run_file(const char *dir, const char *path)
{
    static const char *const own[] = {"epochs.dat", "colsums.dat", "checkpoint.bin"};
    char *copy = strdup(path);
    char *rd = realpath(dir, NULL), *rp = copy ? realpath(dirname(copy), NULL) : NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    bool same = false;
    if (rd && rp && strcmp(rd, rp) == 0)
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
            same = same || strcmp(base, own[k]) == 0;
    free(copy);
    free(rd);
    free(rp);
    return same;
}

/* The features file: one line per sample: set (0 train, 1 test), label,
 * then the n_in x dim token features, token-major; fp is a declared output
 * of the run (outputs.h), committed with the run. */
static af_status write_features(FILE *fp, const cli_args *args, const run_info *ri,
                                const af_train_options *o, af_trainer *t, const af_dataset *sets[2],
                                int lo, int hi)
{
    size_t nt = o->model.n_in, D = o->model.dim, row = nt * D;
    af_status s = AF_SUCCESS;
    af_write_header(fp, args->command_line);
    af_write_meta(fp, "seed", "%lu", ri->seed);
    af_write_meta(fp, "task", "%s", ri->task);
    af_write_meta(fp, "contents", "token features of the trained, frozen model: the %zu input "
                  "tokens (no CLS) after the last block, before pooling", nt);
    af_write_meta(fp, "feature_tokens", "%zu", nt);
    af_write_meta(fp, "feature_dim", "%zu", D);
    if (strcmp(ri->task, "digits") == 0)
        af_write_meta(fp, "feature_grid", "4x4");
    af_write_meta(fp, "feature_classes", "%d-%d (label = class - %d)", lo, hi, lo);
    fputs("# columns: set(0 train, 1 test) label features(token-major)\n", fp);
    for (int k = 0; k < 2 && !s; k++) {
        const af_dataset *ds = sets[k];
        double *F = cli_alloc(ds->n ? ds->n : 1, row, sizeof *F);
        if (!F) {
            s = af_error(AF_ENOMEM, "features: out of memory");
            break;
        }
        s = af_model_token_features(af_trainer_model(t), ds->n, ds->x, F);
        for (size_t i = 0; !s && i < ds->n; i++) {
            fprintf(fp, "%d %d", k, ds->y[i] - lo);
            for (size_t q = 0; q < row; q++) {
                fputc(' ', fp);
                af_write_double(fp, F[i * row + q]);
            }
            fputc('\n', fp);
        }
        free(F);
    }
    return s;
}

static int run_train(const cli_args *args)
{
    static const char *const tasks[] = {"digits", "pointclouds", NULL};
    static const char *const models[] = {"transformer", "sinkformer", NULL};
    int task, model, rc;
    if ((rc = cli_choice(args, "task", tasks, 0, &task)) ||
        (rc = cli_choice(args, "model", models, 0, &model)))
        return rc;
    run_info ri = {.task = tasks[task], .model = models[model]};
    af_train_options o = af_train_options_default();
    o.model = task == 0 ? af_model_config_digits() : af_model_config_pointclouds();
    ri.pc = af_pointcloud_options_default();
    size_t threads;
    if ((rc = size_opt(args, "iters", model == 1 ? 3 : 1, &ri.n_it)) ||
        (rc = size_opt(args, "epochs", 20, &ri.epochs)) ||
        (rc = cli_ulong(args, "seed", 1, &ri.seed)) ||
        (rc = cli_positive(args, "lr", 1e-3, &o.adam.lr)) ||
        (rc = size_opt(args, "batch", 10, &o.batch)) ||
        (rc = size_opt(args, "dim", o.model.dim, &o.model.dim)) ||
        (rc = size_opt(args, "heads", o.model.heads, &o.model.heads)) ||
        (rc = size_opt(args, "head-dim", o.model.head_dim, &o.model.head_dim)) ||
        (rc = size_opt(args, "layers", o.model.layers, &o.model.layers)) ||
        (rc = size_opt(args, "n-test", task == 0 ? 400 : 300, &ri.n_test)) ||
        (rc = size_opt(args, "n-train", 600, &ri.n_train)) ||
        (rc = size_opt(args, "n-points", ri.pc.n_points, &ri.pc.n_points)) ||
        (rc = cli_double(args, "noise", ri.pc.noise, &ri.pc.noise)) ||
        (rc = size_opt(args, "threads", 1, &threads)))
        return rc;
    if (model == 0 && ri.n_it != 1)
        return cli_fail(CLI_EINPUT, "--iters %zu: a transformer uses SoftMax (n_it = 1); "
                                    "use --model sinkformer", ri.n_it);
    if ((rc = size_or_zero(args, "mlp", &o.model.mlp)) ||
        (rc = size_or_zero(args, "embed-hidden", &o.model.embed_hidden)))
        return rc;
    if (ri.pc.noise < 0)
        return cli_fail(CLI_EINPUT, "--noise: must be >= 0 (got %g)", ri.pc.noise);
    int tlo, thi, flo, fhi;
    if ((rc = class_range(args, "train-classes", &tlo, &thi)) ||
        (rc = class_range(args, "features-classes", &flo, &fhi)))
        return rc;
    if (task == 1 && tlo >= 0)
        return cli_fail(CLI_EINPUT, "--train-classes: digits task only");
    if (flo >= 0 && !cli_given(args, "features-out"))
        return cli_fail(CLI_EUSAGE, "--features-classes: only with --features-out");
    if (task == 0 && (cli_given(args, "n-train") || cli_given(args, "n-points") ||
                      cli_given(args, "noise")))
        return cli_fail(CLI_EINPUT, "--n-train, --n-points, --noise: pointclouds task only");
    if (task == 1 && cli_given(args, "data"))
        return cli_fail(CLI_EINPUT, "--data: digits task only");
    o.model.n_it = ri.n_it;
    o.seed = ri.seed;
    o.shuffle = !cli_flag(args, "no-shuffle");
    if (task == 1)
        o.model.n_in = ri.pc.n_points;
    openblas_set_num_threads((int)threads);
    const char *dir = cli_str(args, "out", "out/train");
    bool quiet = cli_flag(args, "quiet");
    cli_outputs made; /* the output directory: per-epoch files are committed each epoch */
    cli_outputs_init(&made);

    /* data: its own generator seeded by --seed, so the split is fixed by the seed */
    af_dataset all = {0}, train = {0}, test = {0};
    gsl_rng *dr = gsl_rng_alloc(gsl_rng_mt19937);
    if (!dr)
        return cli_fail(CLI_EINPUT, "out of memory");
    gsl_rng_set(dr, ri.seed);
    af_status s;
    if (task == 0) {
        ri.data = cli_str(args, "data", AF_DIGITS_DEFAULT_PATH);
        s = af_digits_read(ri.data, &all);
        if (s == AF_SUCCESS)
            s = af_dataset_split(&all, ri.n_test, dr, &train, &test);
        af_dataset_free(&all);
    } else {
        s = af_pointclouds_generate(ri.n_train, &ri.pc, dr, &train);
        if (s == AF_SUCCESS)
            s = af_pointclouds_generate(ri.n_test, &ri.pc, dr, &test);
    }
    gsl_rng_free(dr);
    /* the features' samples are the split's, before the class selection of
     * the backbone (a transfer experiment asks for classes it never saw) */
    af_dataset ftrain = {0}, ftest = {0};
    if (s == AF_SUCCESS && cli_given(args, "features-out")) {
        if (flo < 0) {
            flo = 0;
            fhi = (int)train.classes - 1;
        }
        s = af_dataset_select_classes(&train, flo, fhi, &ftrain);
        if (s == AF_SUCCESS)
            s = af_dataset_select_classes(&test, flo, fhi, &ftest);
    }
    if (s == AF_SUCCESS && tlo >= 0) {
        af_dataset a = train, b = test;
        s = af_dataset_select_classes(&a, tlo, thi, &train);
        if (s == AF_SUCCESS)
            s = af_dataset_select_classes(&b, tlo, thi, &test);
        af_dataset_free(&a);
        af_dataset_free(&b);
    }
    af_trainer *t = NULL;
    if (s == AF_SUCCESS && !(t = af_trainer_alloc(&o, &train, &test)))
        s = AF_EINVAL;
    if (s != AF_SUCCESS) {
        rc = cli_fail_status(s);
        goto done;
    }
    if ((rc = cli_outputs_dir(&made, "out", dir)))
        goto done;
    FILE *ff = NULL; /* --features-out, declared before the training it follows */
    if (cli_given(args, "features-out")) {
        const char *fpath = cli_str(args, "features-out", "");
        if (names_run_file(dir, fpath)) {
            rc = cli_fail(CLI_EUSAGE, "--features-out %s: a file of --out %s: give each output "
                          "its own file", fpath, dir);
            goto done;
        }
        if ((rc = cli_outputs_open(&made, "features-out", fpath, &ff)))
            goto done;
    }
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", dir);
    if (cli_flag(args, "resume")) {
        struct stat stt;
        if (stat(ckpt, &stt) == 0) {
            if ((s = af_trainer_load(t, ckpt)) != AF_SUCCESS) {
                rc = cli_fail_status(s);
                goto done;
            }
            if (!quiet)
                fprintf(stderr, "train: resuming %s after epoch %zu\n", ckpt,
                        af_trainer_epochs(t) - 1);
        } else if (!quiet) {
            fprintf(stderr, "train: no checkpoint %s, starting at epoch 0\n", ckpt);
        }
    }
    if (!quiet)
        fprintf(stderr, "train: %s, %s (n_it %zu), %zu parameters, %zu train / %zu test, "
                        "%zu epochs -> %s\n", ri.task, ri.model, o.model.n_it,
                af_model_nparams(af_trainer_model(t)), train.n, test.n, ri.epochs, dir);
    double t0 = cli_now();
    size_t start = af_trainer_epochs(t);
    /* a signal ends the run after the epoch in progress (a second one at once) */
    cli_stop_polling(1);
    while (af_trainer_epochs(t) <= ri.epochs) {
        char stop[1200] = "";
        if (cli_stop_requested())
            snprintf(stop, sizeof stop, "interrupted");
        else if ((s = af_trainer_advance(t)) != AF_SUCCESS)
            snprintf(stop, sizeof stop, "stopped: %s", af_last_error());
        if (stop[0]) {
            /* the files and the checkpoint hold every completed epoch: mark
             * the files and exit 3 (nothing to mark before the first epoch) */
            if (af_trainer_epochs(t) > start
                && (rc = write_outputs(args, dir, &ri, &o, &train, &test, t, stop)))
                goto done;
            rc = cli_fail(CLI_ESTOPPED, "%s%s", stop,
                          af_trainer_epochs(t) > start
                              ? "; the files and checkpoint keep the completed epochs"
                              : "");
            goto done;
        }
        size_t e = af_trainer_epochs(t) - 1;
        const af_epoch_record *r = &af_trainer_records(t)[e];
        if ((rc = write_outputs(args, dir, &ri, &o, &train, &test, t, NULL)))
            goto done;
        if ((s = af_trainer_save(t, ckpt)) != AF_SUCCESS) {
            rc = cli_fail_status(s);
            goto done;
        }
        if (!quiet) {
            double el = cli_now() - t0;
            size_t done_e = e + 1 - start, left = ri.epochs - e;
            fprintf(stderr,
                    "train: epoch %zu/%zu loss %.4f acc %.3f test %.3f colsum_std %.4f "
                    "null %.4f entropy %.3f  %.1fs, ~%.0fs left\n",
                    e, ri.epochs, r->train_loss, r->train_acc, r->test_acc, r->attn.colsum_std,
                    r->attn.null_colsum_std, r->attn.row_entropy, r->seconds,
                    done_e ? el / (double)done_e * (double)left : 0.0);
        }
    }
    if (ff) {
        const af_dataset *sets[2] = {&ftrain, &ftest};
        if ((s = write_features(ff, args, &ri, &o, t, sets, flo, fhi)) != AF_SUCCESS) {
            rc = cli_fail_status(s);
            goto done;
        }
        if (!quiet)
            fprintf(stderr, "train: token features of %zu + %zu samples (classes %d-%d) -> %s\n",
                    ftrain.n, ftest.n, flo, fhi, cli_str(args, "features-out", ""));
    }
    /* keeps the directory; renames the features file into place */
    if ((rc = cli_outputs_commit(&made, NULL)))
        goto done;
done:
    cli_stop_polling(0);
    cli_outputs_abort(&made); /* removes it if this run created it and left it empty */
    af_trainer_free(t);
    af_dataset_free(&ftrain);
    af_dataset_free(&ftest);
    af_dataset_free(&train);
    af_dataset_free(&test);
    return rc;
}

const cli_command cli_cmd_train = {
    "train",
    "train a small Transformer/Sinkformer; per-epoch column sums of its attention",
    "[FILE.ini] [--task digits|pointclouds] [--model transformer|sinkformer] [--iters N]\n"
    "       [--epochs E] [--seed S] [--out DIR] [--resume] [options]",
    train_opts,
    run_train,
};

/* make bench: speed of `attnflow train` (issue 6).
 *  1. seconds per training epoch of the default digits experiment (the
 *     paper's attention-only ViT, 1397 images, batch 10, Adam), plus the
 *     held-out measurement pass, single thread;
 *  2. the share of that time spent in the layers' dgemm products (the
 *     library's own profiling counters, af_nn_profile);
 *  3. the same epoch of a Sinkformer (n_it = 9) and of the point-cloud model;
 *  4. against PyTorch on the CPU, one thread, same model and batch
 *     (bench/train_torch.py), in float64 (as here) and float32, when
 *     Debian's python3-torch is installed; otherwise the baseline is nan;
 *  5. with PyTorch: loss and gradient of the digits model (SoftMax and
 *     Sinkhorn n_it = 3) against autograd on the same parameters and batch,
 *     an independent check of the whole hand-written backward pass.
 * Lines: name value unit baseline ratio (ratio = baseline / value, > 1 means
 * attnflow is faster). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/af_blas.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gsl/gsl_rng.h>
#include "bench_util.h"
#include "attnflow/train.h"

static void line(const char *name, double value, const char *unit, double baseline)
{
    printf("%-44s %12.4g %-8s %12.4g %8.3f\n", name, value, unit, baseline, baseline / value);
    fflush(stdout);
}

/* Best of `reps` training epochs (after epoch 0) of a trainer; also returns
 * the evaluation time and the dgemm share of the training epoch. */
static int time_epochs(const af_train_options *o, const af_dataset *tr, const af_dataset *te,
                       int reps, double *epoch_s, double *eval_s, double *gemm_share)
{
    af_trainer *t = af_trainer_alloc(o, tr, te);
    if (!t) {
        fprintf(stderr, "bench_train: %s\n", af_last_error());
        return 1;
    }
    double t0 = now();
    af_trainer_advance(t); /* epoch 0: evaluation only */
    *eval_s = now() - t0;
    *epoch_s = INFINITY;
    for (int r = 0; r < reps; r++) {
        af_nn_profile_enable(1);
        t0 = now();
        if (af_trainer_advance(t) != AF_SUCCESS) {
            fprintf(stderr, "bench_train: %s\n", af_last_error());
            af_trainer_free(t);
            return 1;
        }
        double dt = now() - t0;
        af_nn_profile prof = af_nn_profile_get();
        af_nn_profile_enable(0);
        if (dt < *epoch_s) {
            *epoch_s = dt;
            *gemm_share = prof.gemm_seconds / dt;
        }
    }
    af_trainer_free(t);
    return 0;
}

/* PyTorch seconds per epoch of the same digits model, float64 and float32
 * (nan if unavailable). */
static void torch_epoch(double *f64, double *f32)
{
    *f64 = *f32 = NAN;
    FILE *p = popen("/usr/bin/python3 bench/train_torch.py 2>/dev/null", "r");
    if (!p)
        return;
    char buf[256];
    while (fgets(buf, sizeof buf, p)) {
        if (strncmp(buf, "epoch_seconds ", 14) == 0)
            *f64 = atof(buf + 14);
        if (strncmp(buf, "epoch_seconds_f32 ", 18) == 0)
            *f32 = atof(buf + 18);
    }
    pclose(p);
}

/* Writes parameters, one batch, loss and gradient for train_torch.py --check
 * and reads back its relative errors (nan if PyTorch is unavailable). */
static void torch_check(const af_dataset *ds, size_t n_it, double *loss_err, double *grad_err)
{
    *loss_err = *grad_err = NAN;
    af_model_config c = af_model_config_digits();
    c.n_it = n_it;
    size_t B = 10;
    af_model *m = af_model_alloc(&c, B);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    af_model_init(m, r);
    gsl_rng_free(r);
    double loss;
    af_model_forward(m, B, ds->x, ds->y, &loss, NULL);
    af_model_backward(m);
    char path[] = "/tmp/af_bench_train_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        af_model_free(m);
        return;
    }
    size_t np = af_model_nparams(m);
    fprintf(f, "%zu %zu\n", n_it, B);
    const double *p = af_model_params(m), *g = af_model_grads(m);
    for (size_t k = 0; k < np; k++)
        fprintf(f, "%.17g\n", p[k]);
    for (size_t k = 0; k < B * 64; k++)
        fprintf(f, "%.17g\n", ds->x[k]);
    for (size_t k = 0; k < B; k++)
        fprintf(f, "%d\n", ds->y[k]);
    fprintf(f, "%.17g\n", loss);
    for (size_t k = 0; k < np; k++)
        fprintf(f, "%.17g\n", g[k]);
    fclose(f);
    af_model_free(m);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/train_torch.py --check %s 2>/dev/null", path);
    FILE *pp = popen(cmd, "r");
    char buf[256];
    while (pp && fgets(buf, sizeof buf, pp)) {
        if (strncmp(buf, "check_loss_relerr ", 18) == 0)
            *loss_err = atof(buf + 18);
        if (strncmp(buf, "check_grad_relerr ", 18) == 0)
            *grad_err = atof(buf + 18);
    }
    if (pp)
        pclose(pp);
    unlink(path);
}

int main(void)
{
    openblas_set_num_threads(1);
    af_dataset all, tr, te;
    if (af_digits_read(AF_DIGITS_DEFAULT_PATH, &all) != AF_SUCCESS) {
        fprintf(stderr, "bench_train: %s\n", af_last_error());
        return 1;
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1);
    af_dataset_split(&all, 400, r, &tr, &te);
    af_dataset_free(&all);

    af_train_options o = af_train_options_default();
    double ep, ev, share = NAN;
    if (time_epochs(&o, &tr, &te, 3, &ep, &ev, &share))
        return 1;
    double torch, torch32;
    torch_epoch(&torch, &torch32);
    if (isnan(torch))
        printf("# PyTorch baseline unavailable (python3-torch not installed): baseline = nan\n");
    line("train_digits_transformer_epoch", ep, "s", torch);
    line("train_digits_transformer_epoch_vs_torch_f32", ep, "s", torch32);
    line("train_digits_epoch0_eval_1797_images", ev, "s", NAN);
    line("train_digits_dgemm_share", share, "frac", NAN);

    o.model.n_it = 9;
    if (time_epochs(&o, &tr, &te, 2, &ep, &ev, &share))
        return 1;
    line("train_digits_sinkformer9_epoch", ep, "s", NAN);
    for (size_t it = 1; it <= 3; it += 2) {
        double le, ge;
        char name[64];
        torch_check(&tr, it, &le, &ge);
        snprintf(name, sizeof name, "train_vs_torch_n_it%zu_loss_relerr", it);
        line(name, le, "rel", NAN);
        snprintf(name, sizeof name, "train_vs_torch_n_it%zu_grad_relerr", it);
        line(name, ge, "rel", NAN);
    }
    af_dataset_free(&tr);
    af_dataset_free(&te);

    af_pointcloud_options po = af_pointcloud_options_default();
    po.n_points = 100;
    af_pointclouds_generate(600, &po, r, &tr);
    af_pointclouds_generate(300, &po, r, &te);
    o = af_train_options_default();
    o.model = af_model_config_pointclouds();
    o.model.n_in = 100;
    if (time_epochs(&o, &tr, &te, 2, &ep, &ev, &share))
        return 1;
    line("train_pointclouds100_transformer_epoch", ep, "s", NAN);
    line("train_pointclouds100_dgemm_share", share, "frac", NAN);
    o.model.n_it = 9;
    if (time_epochs(&o, &tr, &te, 1, &ep, &ev, &share))
        return 1;
    line("train_pointclouds100_sinkformer9_epoch", ep, "s", NAN);
    af_dataset_free(&tr);
    af_dataset_free(&te);
    gsl_rng_free(r);
    return 0;
}

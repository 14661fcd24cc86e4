/* Training experiments (docs/theory.md section 6): does SoftMax attention drift
 * toward doubly stochastic matrices while a small Transformer trains?
 *
 * - Data: the 8 x 8 digits of Debian's python3-sklearn as 16 tokens of
 *   2 x 2 patches, or synthetic 3-D point clouds (6 shape classes).
 * - Model: linear token embedding (+ CLS token, + learned positional
 *   embedding), `layers` pre-LayerNorm blocks z <- z + Attn(LN(z)) (and, if
 *   mlp > 0, z <- z + MLP(LN(z))), pooling (CLS row or mean over tokens),
 *   LayerNorm and a linear head. Attention is SoftMax (n_it = 1) or n_it
 *   unrolled log-domain Sinkhorn normalisations (Sinkformer); every gradient
 *   is exact and hand-written (include/attnflow/nn.h).
 * - Trainer: Adam on minibatches, seeded shuffling, per-epoch measurements
 *   of the attention on held-out data, atomic checkpoints that resume
 *   bit-for-bit.
 * Nothing here prints or exits; every failure is an af_status. */
#ifndef AF_TRAIN_H
#define AF_TRAIN_H

#include <stddef.h>
#include <gsl/gsl_rng.h>
#include "attnflow/error.h"
#include "attnflow/nn.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---------------------------------------------------------------- data */

/* A labelled set: n samples of n_tok tokens of in_dim features
 * (x: n * n_tok * in_dim, row-major), labels y in [0, classes). */
typedef struct {
    size_t n, n_tok, in_dim, classes;
    double *x;
    int *y;
} af_dataset;

void af_dataset_free(af_dataset *ds); /* frees x, y; zeroes the struct */

/* Where Debian's python3-sklearn puts digits.csv.gz. */
#define AF_DIGITS_DEFAULT_PATH \
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

/* Reads digits.csv.gz (gzip or plain text; 65 comma-separated integers a
 * line: 64 pixels in 0..16, then the label 0..9) into 16 tokens of 2 x 2
 * patches (vit-pytorch order: patch (r, c) of the 4 x 4 grid is token
 * 4r + c, features p1 p2 row-major) scaled to [0, 1]. AF_EIO if the file
 * cannot be opened (with a hint to install python3-sklearn), AF_EFORMAT with
 * file:line for a corrupt gzip stream, a bad field or count, or no data. */
af_status af_digits_read(const char *path, af_dataset *ds);
/* Same from size bytes of uncompressed text (name for messages). NUL and
 * control bytes are errors naming name:line:column. */
af_status af_digits_parse(const char *name, const char *text, size_t size, af_dataset *ds);

/* Random split: a seeded permutation, the first n_test samples to test. */
af_status af_dataset_split(const af_dataset *all, size_t n_test, gsl_rng *rng,
                           af_dataset *train, af_dataset *test);

/* The samples of classes lo..hi (labels kept), in their order. */
af_status af_dataset_select_classes(const af_dataset *in, int lo, int hi, af_dataset *out);

/* Synthetic 3-D point clouds. Classes: 0 sphere, 1 torus, 2 cube surface,
 * 3 cylinder surface, 4 cone surface, 5 ellipsoid. Each cloud: n_points
 * points drawn on the shape, scaled by a random factor in
 * [1 - scale_jitter, 1 + scale_jitter], randomly rotated (Haar), plus
 * isotropic Gaussian noise of std `noise`. Labels are balanced (sample i
 * has class i mod 6). */
typedef struct {
    size_t n_points;     /* default 128 */
    double noise;        /* default 0.1 */
    double scale_jitter; /* default 0.3 */
} af_pointcloud_options;
af_pointcloud_options af_pointcloud_options_default(void);
#define AF_POINTCLOUD_CLASSES 6
const char *af_pointcloud_class_name(int k);
af_status af_pointclouds_generate(size_t n, const af_pointcloud_options *opt, gsl_rng *rng,
                                  af_dataset *ds);

/* --------------------------------------------------------------- model */

typedef enum { AF_POOL_CLS = 0, AF_POOL_MEAN = 1 } af_pool;

typedef struct {
    size_t n_in;     /* input tokens per sample (patches, points) */
    size_t in_dim;   /* features per input token */
    size_t embed_hidden; /* 0: linear token embedding; > 0: per-token ReLU MLP
                          * in_dim -> embed_hidden -> dim (PointNet-style) */
    size_t classes;
    size_t dim;      /* model dimension */
    size_t heads;
    size_t head_dim;
    size_t layers;
    size_t mlp;      /* hidden width of the MLP block (ReLU); 0 = attention only */
    int cls;         /* 1: prepend a learned CLS token */
    int pos;         /* 1: learned positional embedding */
    af_pool pool;
    size_t n_it;     /* normalisations: 1 = SoftMax (Transformer), > 1 Sinkformer */
} af_model_config;

/* The paper's attention-only ViT on 8 x 8 digits: 16 patch tokens + CLS,
 * dim 128, 1 layer, 1 head of dim 64, no MLP, CLS pooling, 10 classes. */
af_model_config af_model_config_digits(void);
/* Set-Transformer-style point-cloud classifier: n_in = 128 points in R^3,
 * per-point MLP embedding 3 -> 64 -> 64, 1 layer, 1 head of dim 64, MLP 128,
 * mean pooling, 6 classes. */
af_model_config af_model_config_pointclouds(void);
af_status af_model_config_check(const af_model_config *cfg);

typedef struct af_model af_model;

/* Workspace for batches of up to max_batch samples; NULL (with af_error
 * set) on a bad configuration or out of memory. */
af_model *af_model_alloc(const af_model_config *cfg, size_t max_batch);
void af_model_free(af_model *m);
const af_model_config *af_model_get_config(const af_model *m);
size_t af_model_tokens(const af_model *m); /* n_in + cls */

/* Flat parameter and gradient vectors (af_model_nparams entries each). */
size_t af_model_nparams(const af_model *m);
double *af_model_params(af_model *m);
double *af_model_grads(af_model *m);
/* Named blocks of the flat vector (for tests, checkpoints and inspection). */
size_t af_model_nblocks(const af_model *m);
const char *af_model_block(const af_model *m, size_t k, size_t *offset, size_t *size);

/* PyTorch's default initialisation: Linear weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), CLS and positional embedding N(0, 1),
 * LayerNorm gamma = 1, beta = 0. */
void af_model_init(af_model *m, gsl_rng *rng);

/* Forward pass on batch samples (x: batch * n_in * in_dim): mean
 * cross-entropy in *loss and the number of correct arg-max predictions in
 * *correct (either may be NULL). Keeps every activation for the backward
 * pass and the attention matrices for inspection. */
af_status af_model_forward(af_model *m, size_t batch, const double *x, const int *y,
                           double *loss, size_t *correct);
/* Exact gradient of the last forward pass's mean loss into af_model_grads
 * (overwritten). */
void af_model_backward(af_model *m);
/* Attention matrix (T x T, T = af_model_tokens) of sample b, layer, head in
 * the last forward pass: the matrix the model uses (after n_it
 * normalisations). */
const double *af_model_attention(const af_model *m, size_t b, size_t layer, size_t head);
/* Token features of the frozen model: the n_in input tokens (CLS left
 * out) after the last block, before pooling, for n samples (x: n * n_in *
 * in_dim) in batches of the workspace size; out: n * n_in * dim. Replaces
 * the last forward pass. */
af_status af_model_token_features(af_model *m, size_t n, const double *x, double *out);
/* Logits (batch x classes) of the last forward pass. */
const double *af_model_logits(const af_model *m);

/* ------------------------------------------------------------ measures */

/* Statistics of attention matrices A (T x T, rows summing to 1), one per
 * (held-out sample, layer, head), averaged over all of them. Column sums
 * c_j = sum_i A_ij; the null control permutes each row of A independently
 * at random (same row entropy, no structure) before taking column sums. */
typedef struct {
    double colsum_std;         /* population std of c over j, averaged */
    double colsum_maxdev;      /* max_j |c_j - 1|, averaged */
    double null_colsum_std;
    double null_colsum_maxdev;
    double row_entropy;        /* -sum_j A_ij log A_ij / log T, averaged over rows */
    double colsum_std_sd;      /* spread (std over matrices) of colsum_std */
    double sinkhorn_dist;      /* (1/T) sum_ij |A - P|_ij, P = Sinkhorn projection of A */
    double null_sinkhorn_dist; /* the same for the row-permuted matrix */
} af_attn_stats;

/* Sinkhorn projection in the meter: scaling iterations until every row sum
 * is within AF_PROJ_TOL of 1, at most AF_PROJ_ITERS (bounded cost when the
 * attention is far from doubly stochastic: then the distance is approximate
 * but large anyway). */
#define AF_PROJ_ITERS 200
#define AF_PROJ_TOL 1e-8

typedef struct af_attn_meter af_attn_meter;
/* Accumulator for T x T matrices; rng draws the null permutations. */
af_attn_meter *af_attn_meter_alloc(size_t T);
void af_attn_meter_free(af_attn_meter *a);
void af_attn_meter_reset(af_attn_meter *a);
void af_attn_meter_add(af_attn_meter *a, const double *A, gsl_rng *rng);
/* Averages so far; profile and null_profile (T each, may be NULL) get the
 * mean of the per-matrix sorted (ascending) column sums. */
void af_attn_meter_get(const af_attn_meter *a, af_attn_stats *st, double *profile,
                       double *null_profile);

/* ------------------------------------------------------------- trainer */

typedef struct {
    af_model_config model;
    af_adam_options adam;
    size_t batch;        /* minibatch size (default 10) */
    unsigned long seed;  /* initialisation, shuffling, null permutations */
    int shuffle;         /* 1: reshuffle the training set every epoch (default) */
    size_t eval_batch;   /* batch size of the held-out evaluation (default 50) */
} af_train_options;

af_train_options af_train_options_default(void); /* digits model, Adam 1e-3, batch 10, seed 1 */

/* One row of the per-epoch record; epoch 0 is before training (its train
 * loss and accuracy are a forward pass over the training set; later epochs
 * average the minibatch values seen during the epoch). */
typedef struct {
    size_t epoch;
    double train_loss, train_acc;
    double test_loss, test_acc;
    af_attn_stats attn;
    double seconds;      /* wall time of the epoch's training + measurement */
} af_epoch_record;

typedef struct af_trainer af_trainer;

/* train and test must stay valid and unchanged while the trainer lives.
 * Parameters are initialised from opt->seed. NULL with af_error set on
 * bad options or sizes that do not match the model. */
af_trainer *af_trainer_alloc(const af_train_options *opt, const af_dataset *train,
                             const af_dataset *test);
void af_trainer_free(af_trainer *tr);

/* The next record: the first call measures epoch 0 (no training), every
 * later call trains one epoch, then measures. */
af_status af_trainer_advance(af_trainer *tr);
/* Records so far (epochs 0..count-1) and sorted column-sum profiles
 * (count x T each, T = af_model_tokens). */
size_t af_trainer_epochs(const af_trainer *tr);
const af_epoch_record *af_trainer_records(const af_trainer *tr);
const double *af_trainer_profiles(const af_trainer *tr);
const double *af_trainer_null_profiles(const af_trainer *tr);
af_model *af_trainer_model(af_trainer *tr);

/* Evaluates a set (forward passes only): mean loss, accuracy and, if st is
 * given, the attention statistics with null permutations drawn from a
 * generator seeded by nullseed (profiles: T each, may be NULL). */
af_status af_trainer_evaluate(af_trainer *tr, const af_dataset *ds, unsigned long nullseed,
                              double *loss, double *acc, af_attn_stats *st, double *profile,
                              double *null_profile);

/* Atomic checkpoint (temporary file + rename): options, parameters, Adam
 * moments and step, the shuffling generator's state and every record. */
af_status af_trainer_save(const af_trainer *tr, const char *path);
/* Restores a checkpoint written with the same options and data sizes
 * (AF_EFORMAT with the reason otherwise). The file carries a format
 * version, its sizes and a CRC-32 of its contents; a truncated, corrupt or
 * inconsistent checkpoint (step not matching its records, non-finite
 * parameters) is refused and the trainer left unchanged. */
af_status af_trainer_load(af_trainer *tr, const char *path);
/* Same from the size bytes of a checkpoint in memory (name for messages). */
af_status af_trainer_load_buffer(af_trainer *tr, const char *name, const void *buf, size_t size);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

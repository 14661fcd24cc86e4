/* Trainer of `attnflow train`: Adam on seeded minibatches, per-epoch
 * measurements of the attention on held-out data (column sums, their
 * spread, the row-permuted null control, row entropy), and atomic
 * checkpoints from which a run resumes bit for bit. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <zlib.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sort.h>
#include "attnflow/io.h"
#include "attnflow/train.h"

/* ------------------------------------------------------------ meter */

struct af_attn_meter {
    size_t T, count;
    double s_std, s_std2, s_max, s_nstd, s_nmax, s_ent, s_dist, s_ndist;
    double *prof, *nprof, *c, *cn, *An, *u, *v, *w;
    size_t *perm;
};

af_attn_meter *af_attn_meter_alloc(size_t T)
{
    if (T < 2) {
        af_error(AF_EINVAL, "attention meter: need T >= 2 tokens (got %zu)", T);
        return NULL;
    }
    af_attn_meter *a = calloc(1, sizeof *a);
    if (a) {
        a->T = T;
        a->prof = calloc(T, sizeof *a->prof);
        a->nprof = calloc(T, sizeof *a->nprof);
        a->c = calloc(T, sizeof *a->c);
        a->cn = calloc(T, sizeof *a->cn);
        a->perm = calloc(T, sizeof *a->perm);
        a->An = calloc(T * T, sizeof *a->An);
        a->u = calloc(T, sizeof *a->u);
        a->v = calloc(T, sizeof *a->v);
        a->w = calloc(T, sizeof *a->w);
    }
    if (!a || !a->prof || !a->nprof || !a->c || !a->cn || !a->perm || !a->An || !a->u ||
        !a->v || !a->w) {
        af_attn_meter_free(a);
        af_error(AF_ENOMEM, "attention meter: out of memory");
        return NULL;
    }
    return a;
}

void af_attn_meter_free(af_attn_meter *a)
{
    if (!a)
        return;
    free(a->prof);
    free(a->nprof);
    free(a->c);
    free(a->cn);
    free(a->perm);
    free(a->An);
    free(a->u);
    free(a->v);
    free(a->w);
    free(a);
}

void af_attn_meter_reset(af_attn_meter *a)
{
    a->count = 0;
    a->s_std = a->s_std2 = a->s_max = a->s_nstd = a->s_nmax = a->s_ent = 0;
    a->s_dist = a->s_ndist = 0;
    memset(a->prof, 0, a->T * sizeof *a->prof);
    memset(a->nprof, 0, a->T * sizeof *a->nprof);
}

/* std over columns and max |c - 1|; sorts c in place and adds it to prof. */
static void colsum_stats(size_t T, double *c, double *prof, double *std, double *maxdev)
{
    double mu = 0, var = 0, mx = 0;
    for (size_t j = 0; j < T; j++)
        mu += c[j];
    mu /= (double)T;
    for (size_t j = 0; j < T; j++) {
        var += (c[j] - mu) * (c[j] - mu);
        double dev = fabs(c[j] - 1);
        mx = dev > mx ? dev : mx;
    }
    *std = sqrt(var / (double)T);
    *maxdev = mx;
    gsl_sort(c, 1, T);
    for (size_t j = 0; j < T; j++)
        prof[j] += c[j];
}

/* Distance of A to its Sinkhorn projection diag(u) A diag(v) (doubly
 * stochastic): (1/T) sum_ij |A_ij - u_i A_ij v_j|, the mean L1 change per
 * row. Scaling iterations until the row sums are within AF_PROJ_TOL of 1
 * or AF_PROJ_ITERS iterations; a column of zeros keeps v_j = 0. */
static double projection_distance(size_t T, const double *A, double *u, double *v, double *w)
{
    for (size_t j = 0; j < T; j++)
        v[j] = 1;
    for (size_t it = 0; it < AF_PROJ_ITERS; it++) {
        double err = 0;
        for (size_t i = 0; i < T; i++) {
            double s = 0;
            for (size_t j = 0; j < T; j++)
                s += A[i * T + j] * v[j];
            if (it > 0) /* row sums of the current diag(u) A diag(v) */
                err = fmax(err, fabs(u[i] * s - 1));
            u[i] = s > 0 ? 1 / s : 0;
        }
        if (it > 0 && err < AF_PROJ_TOL)
            break;
        memset(w, 0, T * sizeof *w);
        for (size_t i = 0; i < T; i++)
            for (size_t j = 0; j < T; j++)
                w[j] += A[i * T + j] * u[i];
        for (size_t j = 0; j < T; j++)
            v[j] = w[j] > 0 ? 1 / w[j] : 0;
    }
    double d = 0;
    for (size_t i = 0; i < T; i++)
        for (size_t j = 0; j < T; j++)
            d += fabs(A[i * T + j] * (1 - u[i] * v[j]));
    return d / (double)T;
}

void af_attn_meter_add(af_attn_meter *a, const double *A, gsl_rng *rng)
{
    size_t T = a->T;
    memset(a->c, 0, T * sizeof *a->c);
    memset(a->cn, 0, T * sizeof *a->cn);
    double ent = 0;
    for (size_t i = 0; i < T; i++) {
        const double *row = A + i * T;
        for (size_t j = 0; j < T; j++)
            a->perm[j] = j;
        gsl_ran_shuffle(rng, a->perm, T, sizeof *a->perm);
        for (size_t j = 0; j < T; j++) {
            a->c[j] += row[j];
            a->cn[a->perm[j]] += row[j];
            a->An[i * T + a->perm[j]] = row[j];
            if (row[j] > 0)
                ent -= row[j] * log(row[j]);
        }
    }
    double sd, mx, nsd, nmx;
    colsum_stats(T, a->c, a->prof, &sd, &mx);
    colsum_stats(T, a->cn, a->nprof, &nsd, &nmx);
    a->s_std += sd;
    a->s_std2 += sd * sd;
    a->s_max += mx;
    a->s_nstd += nsd;
    a->s_nmax += nmx;
    a->s_ent += ent / ((double)T * log((double)T));
    a->s_dist += projection_distance(T, A, a->u, a->v, a->w);
    a->s_ndist += projection_distance(T, a->An, a->u, a->v, a->w);
    a->count++;
}

void af_attn_meter_get(const af_attn_meter *a, af_attn_stats *st, double *profile,
                       double *null_profile)
{
    double n = a->count ? (double)a->count : NAN;
    if (st) {
        st->colsum_std = a->s_std / n;
        st->colsum_maxdev = a->s_max / n;
        st->null_colsum_std = a->s_nstd / n;
        st->null_colsum_maxdev = a->s_nmax / n;
        st->row_entropy = a->s_ent / n;
        st->sinkhorn_dist = a->s_dist / n;
        st->null_sinkhorn_dist = a->s_ndist / n;
        double var = a->s_std2 / n - st->colsum_std * st->colsum_std;
        st->colsum_std_sd = sqrt(var > 0 ? var : 0);
    }
    for (size_t j = 0; j < a->T; j++) {
        if (profile)
            profile[j] = a->prof[j] / n;
        if (null_profile)
            null_profile[j] = a->nprof[j] / n;
    }
}

/* ---------------------------------------------------------- trainer */

struct af_trainer {
    af_train_options opt;
    const af_dataset *train, *test;
    af_model *m;
    gsl_rng *rng;
    double *am, *av;
    unsigned long step;
    size_t count, T;
    af_epoch_record *rec;
    double *prof, *nprof;
    size_t *perm;
    double *xb;
    int *yb;
    af_attn_meter *meter;
};

af_train_options af_train_options_default(void)
{
    return (af_train_options){.model = af_model_config_digits(),
                              .adam = af_adam_options_default(),
                              .batch = 10,
                              .seed = 1,
                              .shuffle = 1,
                              .eval_batch = 50};
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static af_status check_set(const af_model_config *c, const af_dataset *ds, const char *what)
{
    if (!ds || ds->n == 0)
        return af_error(AF_EINVAL, "trainer: empty %s set", what);
    if (ds->n_tok != c->n_in || ds->in_dim != c->in_dim || ds->classes != c->classes)
        return af_error(AF_EBADLEN,
                        "trainer: %s set has %zu tokens x %zu features, %zu classes; the "
                        "model expects %zu x %zu, %zu", what, ds->n_tok, ds->in_dim,
                        ds->classes, c->n_in, c->in_dim, c->classes);
    return AF_SUCCESS;
}

void af_trainer_free(af_trainer *tr)
{
    if (!tr)
        return;
    af_model_free(tr->m);
    if (tr->rng)
        gsl_rng_free(tr->rng);
    af_attn_meter_free(tr->meter);
    free(tr->am);
    free(tr->av);
    free(tr->rec);
    free(tr->prof);
    free(tr->nprof);
    free(tr->perm);
    free(tr->xb);
    free(tr->yb);
    free(tr);
}

af_trainer *af_trainer_alloc(const af_train_options *opt, const af_dataset *train,
                             const af_dataset *test)
{
    if (opt->batch == 0 || opt->eval_batch == 0) {
        af_error(AF_EINVAL, "trainer: batch sizes must be >= 1");
        return NULL;
    }
    if (!(opt->adam.lr > 0) || !(opt->adam.beta1 >= 0 && opt->adam.beta1 < 1) ||
        !(opt->adam.beta2 >= 0 && opt->adam.beta2 < 1) || !(opt->adam.eps > 0)) {
        af_error(AF_EINVAL, "trainer: Adam needs lr > 0, betas in [0, 1), eps > 0");
        return NULL;
    }
    if (af_model_config_check(&opt->model) != AF_SUCCESS ||
        check_set(&opt->model, train, "training") != AF_SUCCESS ||
        check_set(&opt->model, test, "test") != AF_SUCCESS)
        return NULL;
    af_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) {
        af_error(AF_ENOMEM, "trainer: out of memory");
        return NULL;
    }
    tr->opt = *opt;
    tr->train = train;
    tr->test = test;
    size_t mb = opt->batch > opt->eval_batch ? opt->batch : opt->eval_batch;
    tr->m = af_model_alloc(&opt->model, mb);
    if (!tr->m) {
        af_trainer_free(tr);
        return NULL;
    }
    tr->T = af_model_tokens(tr->m);
    size_t np = af_model_nparams(tr->m), row = train->n_tok * train->in_dim;
    tr->rng = gsl_rng_alloc(gsl_rng_mt19937);
    tr->meter = af_attn_meter_alloc(tr->T);
    tr->am = calloc(np, sizeof *tr->am);
    tr->av = calloc(np, sizeof *tr->av);
    tr->perm = calloc(train->n, sizeof *tr->perm);
    tr->xb = calloc(mb * row, sizeof *tr->xb);
    tr->yb = calloc(mb, sizeof *tr->yb);
    if (!tr->rng || !tr->meter || !tr->am || !tr->av || !tr->perm || !tr->xb || !tr->yb) {
        af_trainer_free(tr);
        af_error(AF_ENOMEM, "trainer: out of memory");
        return NULL;
    }
    gsl_rng_set(tr->rng, opt->seed);
    af_model_init(tr->m, tr->rng);
    return tr;
}

af_model *af_trainer_model(af_trainer *tr) { return tr->m; }
size_t af_trainer_epochs(const af_trainer *tr) { return tr->count; }
const af_epoch_record *af_trainer_records(const af_trainer *tr) { return tr->rec; }
const double *af_trainer_profiles(const af_trainer *tr) { return tr->prof; }
const double *af_trainer_null_profiles(const af_trainer *tr) { return tr->nprof; }

static void gather(const af_dataset *ds, const size_t *idx, size_t first, size_t count,
                   double *xb, int *yb)
{
    size_t row = ds->n_tok * ds->in_dim;
    for (size_t k = 0; k < count; k++) {
        size_t i = idx ? idx[first + k] : first + k;
        memcpy(xb + k * row, ds->x + i * row, row * sizeof *xb);
        yb[k] = ds->y[i];
    }
}

af_status af_trainer_evaluate(af_trainer *tr, const af_dataset *ds, unsigned long nullseed,
                              double *loss, double *acc, af_attn_stats *st, double *profile,
                              double *null_profile)
{
    const af_model_config *c = &tr->opt.model;
    gsl_rng *nr = NULL;
    if (st || profile || null_profile) {
        nr = gsl_rng_alloc(gsl_rng_mt19937);
        if (!nr)
            return af_error(AF_ENOMEM, "trainer: out of memory");
        gsl_rng_set(nr, nullseed);
        af_attn_meter_reset(tr->meter);
    }
    double sl = 0;
    size_t ok = 0;
    af_status s = AF_SUCCESS;
    for (size_t first = 0; first < ds->n && s == AF_SUCCESS; first += tr->opt.eval_batch) {
        size_t bs = ds->n - first < tr->opt.eval_batch ? ds->n - first : tr->opt.eval_batch;
        gather(ds, NULL, first, bs, tr->xb, tr->yb);
        double l;
        size_t cr;
        s = af_model_forward(tr->m, bs, tr->xb, tr->yb, &l, &cr);
        sl += l * (double)bs;
        ok += cr;
        if (nr)
            for (size_t b = 0; b < bs; b++)
                for (size_t ly = 0; ly < c->layers; ly++)
                    for (size_t h = 0; h < c->heads; h++)
                        af_attn_meter_add(tr->meter, af_model_attention(tr->m, b, ly, h), nr);
    }
    if (nr) {
        af_attn_meter_get(tr->meter, st, profile, null_profile);
        gsl_rng_free(nr);
    }
    if (loss)
        *loss = sl / (double)ds->n;
    if (acc)
        *acc = (double)ok / (double)ds->n;
    return s;
}

static af_status train_epoch(af_trainer *tr, double *loss, double *acc)
{
    const af_dataset *ds = tr->train;
    size_t n = ds->n, np = af_model_nparams(tr->m);
    for (size_t i = 0; i < n; i++)
        tr->perm[i] = i;
    if (tr->opt.shuffle)
        gsl_ran_shuffle(tr->rng, tr->perm, n, sizeof *tr->perm);
    double sl = 0;
    size_t ok = 0;
    for (size_t first = 0; first < n; first += tr->opt.batch) {
        size_t bs = n - first < tr->opt.batch ? n - first : tr->opt.batch;
        gather(ds, tr->perm, first, bs, tr->xb, tr->yb);
        double l;
        size_t cr;
        af_status s = af_model_forward(tr->m, bs, tr->xb, tr->yb, &l, &cr);
        if (s != AF_SUCCESS)
            return af_error(s, "epoch %zu, step %lu: %s", tr->count, tr->step + 1,
                            af_last_error());
        af_model_backward(tr->m);
        af_adam_step(&tr->opt.adam, np, ++tr->step, af_model_params(tr->m),
                     af_model_grads(tr->m), tr->am, tr->av);
        sl += l * (double)bs;
        ok += cr;
    }
    *loss = sl / (double)n;
    *acc = (double)ok / (double)n;
    return AF_SUCCESS;
}

static af_status grow_records(af_trainer *tr, size_t count)
{
    af_epoch_record *r = realloc(tr->rec, count * sizeof *r);
    if (r)
        tr->rec = r;
    double *p = r ? realloc(tr->prof, count * tr->T * sizeof *p) : NULL;
    if (p)
        tr->prof = p;
    double *q = p ? realloc(tr->nprof, count * tr->T * sizeof *q) : NULL;
    if (q)
        tr->nprof = q;
    return q ? AF_SUCCESS : af_error(AF_ENOMEM, "trainer: out of memory");
}

af_status af_trainer_advance(af_trainer *tr)
{
    af_status s = grow_records(tr, tr->count + 1);
    if (s != AF_SUCCESS)
        return s;
    double t0 = now_seconds();
    af_epoch_record *r = &tr->rec[tr->count];
    memset(r, 0, sizeof *r);
    r->epoch = tr->count;
    if (tr->count == 0)
        s = af_trainer_evaluate(tr, tr->train, 0, &r->train_loss, &r->train_acc, NULL, NULL,
                                NULL);
    else
        s = train_epoch(tr, &r->train_loss, &r->train_acc);
    if (s != AF_SUCCESS)
        return s;
    /* null permutations: their own generator, so measuring never moves the
     * training stream (and a resumed run draws the same ones) */
    unsigned long nullseed = tr->opt.seed * 1000003UL + 7919UL * tr->count + 1;
    s = af_trainer_evaluate(tr, tr->test, nullseed, &r->test_loss, &r->test_acc, &r->attn,
                            tr->prof + tr->count * tr->T, tr->nprof + tr->count * tr->T);
    if (s != AF_SUCCESS)
        return s;
    r->seconds = now_seconds() - t0;
    tr->count++;
    return AF_SUCCESS;
}

/* ------------------------------------------------------- checkpoints */

/* Layout (native byte order, like the doubles it holds):
 *   "AFTRAIN2" | u32 format version | u32 CRC-32 of the payload | u64 payload bytes
 *   payload: u64 nf | nf fingerprint doubles | u64 step, count, nparams, T,
 *            record bytes, generator bytes | parameters, Adam m, Adam v |
 *            generator state | count records | count * T profiles, null profiles
 * Every size is checked against this run and the whole length against the
 * header before anything is copied, so a truncated, extended or corrupt file
 * is refused with its reason and never half-loaded. */
#define CKPT_MAGIC "AFTRAIN2"
#define CKPT_MAGIC_V1 "AFTRAIN1"
#define CKPT_VERSION 2u
#define CKPT_HEADER 24
#define CKPT_MAX_BYTES ((uint64_t)1 << 36)

/* Everything a checkpoint must agree on, as exact doubles. */
static size_t fingerprint(const af_trainer *tr, double *f)
{
    const af_train_options *o = &tr->opt;
    const af_model_config *c = &o->model;
    double v[] = {(double)c->n_in, (double)c->in_dim, (double)c->embed_hidden,
                  (double)c->classes, (double)c->dim,
                  (double)c->heads, (double)c->head_dim, (double)c->layers, (double)c->mlp,
                  (double)c->cls, (double)c->pos, (double)c->pool, (double)c->n_it,
                  o->adam.lr, o->adam.beta1, o->adam.beta2, o->adam.eps, (double)o->batch,
                  (double)o->seed, (double)o->shuffle, (double)o->eval_batch,
                  (double)tr->train->n, (double)tr->test->n,
                  (double)af_model_nparams(tr->m)};
    size_t n = sizeof v / sizeof v[0];
    if (f)
        memcpy(f, v, sizeof v);
    return n;
}

static const char *fp_names[] = {"tokens", "input dim", "embedding hidden width", "classes", "dim", "heads", "head dim",
                                 "layers", "mlp", "cls", "pos", "pool", "n_it", "lr",
                                 "beta1", "beta2", "adam eps", "batch", "seed", "shuffle",
                                 "eval batch", "training set size", "test set size",
                                 "parameter count"};

/* A growing byte buffer for the payload (its CRC is known only at the end). */
typedef struct {
    unsigned char *p;
    size_t len, cap;
    int bad;
} ckpt_buf;

static void put(ckpt_buf *b, const void *src, size_t n)
{
    if (b->bad || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->bad = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u64(ckpt_buf *b, uint64_t v) { put(b, &v, sizeof v); }

/* Optimizer steps after count records: record 0 is before training, each
 * later one is an epoch of ceil(n / batch) steps. */
static uint64_t steps_after(const af_trainer *tr, uint64_t count)
{
    uint64_t per = (tr->train->n + tr->opt.batch - 1) / tr->opt.batch;
    return count ? (count - 1) * per : 0;
}

af_status af_trainer_save(const af_trainer *tr, const char *path)
{
    double fpv[32];
    uint64_t nf = fingerprint(tr, fpv);
    size_t np = af_model_nparams(tr->m), rs = gsl_rng_size(tr->rng);
    ckpt_buf b = {0};
    put_u64(&b, nf);
    put(&b, fpv, nf * sizeof *fpv);
    put_u64(&b, tr->step);
    put_u64(&b, tr->count);
    put_u64(&b, np);
    put_u64(&b, tr->T);
    put_u64(&b, sizeof *tr->rec);
    put_u64(&b, rs);
    put(&b, af_model_params(tr->m), np * sizeof(double));
    put(&b, tr->am, np * sizeof(double));
    put(&b, tr->av, np * sizeof(double));
    put(&b, gsl_rng_state(tr->rng), rs);
    put(&b, tr->rec, tr->count * sizeof *tr->rec);
    put(&b, tr->prof, tr->count * tr->T * sizeof(double));
    put(&b, tr->nprof, tr->count * tr->T * sizeof(double));
    if (b.bad) {
        free(b.p);
        return af_error(AF_ENOMEM, "%s: out of memory for the checkpoint", path);
    }
    uint32_t version = CKPT_VERSION, crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b.p, (uInt)b.len);
    uint64_t len = b.len;
    af_file *f;
    af_status s = af_file_open(&f, path);
    if (s != AF_SUCCESS) {
        free(b.p);
        return s;
    }
    FILE *fp = af_file_stream(f);
    int ok = fwrite(CKPT_MAGIC, 1, 8, fp) == 8 && fwrite(&version, sizeof version, 1, fp) == 1 &&
             fwrite(&crc, sizeof crc, 1, fp) == 1 && fwrite(&len, sizeof len, 1, fp) == 1 &&
             fwrite(b.p, 1, b.len, fp) == b.len;
    free(b.p);
    if (!ok || ferror(fp)) {
        af_file_abort(f);
        return af_error(AF_EIO, "%s: cannot write the checkpoint", path);
    }
    return af_file_commit(f);
}

/* A cursor over the payload: reads fail (return 0) past its end. */
typedef struct {
    const unsigned char *p;
    size_t left;
} ckpt_in;

static int take(ckpt_in *in, void *dst, size_t n)
{
    if (n > in->left)
        return 0;
    memcpy(dst, in->p, n);
    in->p += n;
    in->left -= n;
    return 1;
}

static int take_u64(ckpt_in *in, uint64_t *v) { return take(in, v, sizeof *v); }

af_status af_trainer_load_buffer(af_trainer *tr, const char *name, const void *buf, size_t size)
{
    const unsigned char *data = buf;
    uint32_t version, crc;
    uint64_t len;
    if (size < 8 || (memcmp(data, CKPT_MAGIC, 8) != 0 && memcmp(data, CKPT_MAGIC_V1, 8) != 0))
        return af_error(AF_EFORMAT, "%s: not an attnflow train checkpoint", name);
    if (memcmp(data, CKPT_MAGIC_V1, 8) == 0)
        return af_error(AF_EFORMAT, "%s: checkpoint format 1 (no checksum) is no longer read; "
                        "this attnflow reads format %u: train again without --resume", name,
                        CKPT_VERSION);
    if (size < CKPT_HEADER)
        return af_error(AF_EFORMAT, "%s: truncated checkpoint (%zu bytes, the header alone is %d)",
                        name, size, CKPT_HEADER);
    memcpy(&version, data + 8, sizeof version);
    memcpy(&crc, data + 12, sizeof crc);
    memcpy(&len, data + 16, sizeof len);
    if (version != CKPT_VERSION)
        return af_error(AF_EFORMAT, "%s: checkpoint format version %u, this attnflow reads %u",
                        name, (unsigned)version, CKPT_VERSION);
    if (len != size - CKPT_HEADER)
        return af_error(AF_EFORMAT, "%s: checkpoint %s: %zu payload bytes, the header says %llu",
                        name, len > size - CKPT_HEADER ? "truncated" : "has extra bytes",
                        size - CKPT_HEADER, (unsigned long long)len);
    const unsigned char *payload = data + CKPT_HEADER;
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), payload, (uInt)len) != crc)
        return af_error(AF_EFORMAT, "%s: checkpoint checksum mismatch (corrupt file)", name);

    ckpt_in in = {payload, len};
    double want[32], got[32];
    uint64_t nf = 0, step, count, np, T, recsz, rngsz;
    size_t n = fingerprint(tr, want);
    if (!take_u64(&in, &nf) || nf != n || !take(&in, got, n * sizeof *got))
        return af_error(AF_EFORMAT, "%s: checkpoint of another kind of run (%llu settings, "
                        "expected %zu)", name, (unsigned long long)nf, n);
    for (size_t k = 0; k < n; k++)
        if (!(got[k] == want[k]))
            return af_error(AF_EFORMAT,
                            "%s: checkpoint was written with %s = %.17g, this run has %.17g", name,
                            fp_names[k], got[k], want[k]);
    if (!take_u64(&in, &step) || !take_u64(&in, &count) || !take_u64(&in, &np) ||
        !take_u64(&in, &T) || !take_u64(&in, &recsz) || !take_u64(&in, &rngsz))
        return af_error(AF_EFORMAT, "%s: truncated checkpoint", name);
    if (np != af_model_nparams(tr->m) || T != tr->T || recsz != sizeof *tr->rec ||
        rngsz != gsl_rng_size(tr->rng))
        return af_error(AF_EFORMAT, "%s: checkpoint sizes (%llu parameters, %llu profile points, "
                        "%llu-byte records, %llu-byte generator) differ from this run's (%zu, "
                        "%zu, %zu, %zu)", name, (unsigned long long)np, (unsigned long long)T,
                        (unsigned long long)recsz, (unsigned long long)rngsz,
                        af_model_nparams(tr->m), tr->T, sizeof *tr->rec, gsl_rng_size(tr->rng));
    /* count bounds the rest: records and profiles must fill the payload exactly */
    uint64_t rest = in.left, fixed = 3 * np * sizeof(double) + rngsz, per;
    if (__builtin_mul_overflow(T, 2 * sizeof(double), &per) ||
        __builtin_add_overflow(per, recsz, &per) || rest < fixed || (rest - fixed) % per != 0 ||
        (rest - fixed) / per != count)
        return af_error(AF_EFORMAT, "%s: checkpoint holds %llu epoch records but not their data",
                        name, (unsigned long long)count);
    if (step != steps_after(tr, count))
        return af_error(AF_EFORMAT, "%s: checkpoint step %llu does not match its %llu epoch "
                        "records (expected step %llu)", name, (unsigned long long)step,
                        (unsigned long long)count, (unsigned long long)steps_after(tr, count));
    for (size_t k = 0; k < 3 * np; k++) {
        double v;
        memcpy(&v, in.p + k * sizeof v, sizeof v);
        if (!isfinite(v) || (k >= 2 * np && v < 0))
            return af_error(AF_EFORMAT, "%s: checkpoint %s entry %zu is %g", name,
                            k < np ? "parameter" : k < 2 * np ? "Adam first moment"
                                                              : "Adam second moment",
                            k % np, v);
    }
    af_status s = grow_records(tr, count ? count : 1);
    if (s != AF_SUCCESS)
        return s;
    take(&in, af_model_params(tr->m), np * sizeof(double));
    take(&in, tr->am, np * sizeof(double));
    take(&in, tr->av, np * sizeof(double));
    take(&in, gsl_rng_state(tr->rng), rngsz);
    take(&in, tr->rec, count * sizeof *tr->rec);
    take(&in, tr->prof, count * T * sizeof(double));
    take(&in, tr->nprof, count * T * sizeof(double));
    tr->step = step;
    tr->count = count;
    return AF_SUCCESS;
}

af_status af_trainer_load(af_trainer *tr, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return af_error(AF_EIO, "%s: cannot open the checkpoint: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return af_error(AF_EIO, "%s: the checkpoint is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > CKPT_MAX_BYTES) {
        fclose(fp);
        return af_error(AF_EFORMAT, "%s: %lld bytes: too large for a checkpoint", path,
                        (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *data = malloc(size ? size : 1);
    if (!data) {
        fclose(fp);
        return af_error(AF_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(data, 1, size, fp);
    int err = ferror(fp);
    fclose(fp);
    af_status s = err || got != size ? af_error(AF_EIO, "%s: read error", path)
                                     : af_trainer_load_buffer(tr, path, data, size);
    free(data);
    return s;
}

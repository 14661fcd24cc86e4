/* The training module: the whole model's gradient against finite
 * differences (every parameter block, SoftMax and Sinkhorn attention, CLS
 * and mean pooling), learning on a separable toy problem, seeded data,
 * the digits reader (layout, corrupt files), the attention statistics on
 * matrices with known column sums, and bit-for-bit resume. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include "attnflow/train.h"
#include "support/fixtures.h"

static gsl_rng *new_rng(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

/* A small config exercising every block: CLS + positions, 2 layers, 2 heads,
 * MLP, n_it normalisations. */
static af_model_config small_config(size_t n_it, af_pool pool)
{
    af_model_config c = af_model_config_digits();
    c.n_in = 5;
    c.in_dim = 3;
    c.classes = 4;
    c.dim = 6;
    c.heads = 2;
    c.head_dim = 3;
    c.layers = 2;
    c.mlp = 7;
    c.embed_hidden = pool == AF_POOL_MEAN ? 5 : 0; /* both embeddings */
    c.n_it = n_it;
    c.pool = pool;
    c.cls = pool == AF_POOL_CLS;
    return c;
}

static void check_model_gradient(af_model_config c)
{
    size_t B = 3;
    af_model *m = af_model_alloc(&c, B);
    cr_assert_not_null(m, "%s", af_last_error());
    gsl_rng *r = new_rng(7);
    af_model_init(m, r);
    /* random LayerNorm affine parameters so that their gradients are generic */
    size_t np = af_model_nparams(m);
    double *p = af_model_params(m);
    for (size_t k = 0; k < af_model_nblocks(m); k++) {
        size_t off, sz;
        const char *name = af_model_block(m, k, &off, &sz);
        if (strstr(name, "gamma") || strstr(name, "beta"))
            for (size_t j = 0; j < sz; j++)
                p[off + j] += gsl_ran_gaussian(r, 0.3);
    }
    double x[3 * 5 * 3];
    for (size_t k = 0; k < sizeof x / sizeof x[0]; k++)
        x[k] = gsl_ran_gaussian(r, 1);
    int y[3] = {0, 3, 1};
    double loss;
    cr_assert_eq(af_model_forward(m, B, x, y, &loss, NULL), AF_SUCCESS);
    af_model_backward(m);
    double *g = malloc(np * sizeof *g);
    memcpy(g, af_model_grads(m), np * sizeof *g);
    const double h = 1e-5;
    for (size_t k = 0; k < af_model_nblocks(m); k++) {
        size_t off, sz;
        const char *name = af_model_block(m, k, &off, &sz);
        double num = 0, den = 0;
        for (size_t j = off; j < off + sz; j++) {
            double save = p[j], lp, lm;
            p[j] = save + h;
            af_model_forward(m, B, x, y, &lp, NULL);
            p[j] = save - h;
            af_model_forward(m, B, x, y, &lm, NULL);
            p[j] = save;
            double fd = (lp - lm) / (2 * h);
            num += (fd - g[j]) * (fd - g[j]);
            den += g[j] * g[j];
        }
        cr_expect_gt(den, 0, "block %s: zero gradient", name);
        cr_expect_lt(sqrt(num / den), 1e-6, "block %s (n_it %zu): relative error %g", name,
                     c.n_it, sqrt(num / den));
    }
    free(g);
    gsl_rng_free(r);
    af_model_free(m);
}

Test(train, model_gradient_softmax_cls) { check_model_gradient(small_config(1, AF_POOL_CLS)); }
Test(train, model_gradient_sinkhorn_cls) { check_model_gradient(small_config(3, AF_POOL_CLS)); }
Test(train, model_gradient_sinkhorn_mean) { check_model_gradient(small_config(4, AF_POOL_MEAN)); }

Test(train, default_configs_are_the_issue_models)
{
    af_model_config d = af_model_config_digits();
    af_model *m = af_model_alloc(&d, 10);
    cr_assert_not_null(m);
    cr_expect_eq(af_model_tokens(m), 17);
    /* embed 4*128+128, cls 128, pos 17*128, ln 256, qkv 128*192, out 64*128+128,
     * final ln 256, head 128*10+10 */
    size_t want = 4 * 128 + 128 + 128 + 17 * 128 + 256 + 128 * 192 + 64 * 128 + 128 + 256 +
                  128 * 10 + 10;
    cr_expect_eq(af_model_nparams(m), want);
    af_model_free(m);
    d.pool = AF_POOL_CLS;
    d.cls = 0;
    cr_expect_null(af_model_alloc(&d, 10), "CLS pooling without a CLS token accepted");
}

/* Two classes told apart by the sign of the tokens' mean: any working
 * trainer drives the loss down. */
static af_dataset toy_set(size_t n, gsl_rng *r) { return fx_toy_classes(n, r); }

static af_train_options toy_options(size_t n_it)
{
    af_train_options o = af_train_options_default();
    o.model = small_config(n_it, AF_POOL_MEAN);
    o.model.n_in = 4;
    o.model.in_dim = 2;
    o.model.classes = 2;
    o.model.layers = 1;
    o.batch = 8;
    o.eval_batch = 16;
    o.adam.lr = 1e-2;
    return o;
}

Test(train, loss_decreases_on_separable_problem)
{
    for (size_t n_it = 1; n_it <= 3; n_it += 2) {
        gsl_rng *r = new_rng(3);
        af_dataset tr = toy_set(64, r), te = toy_set(32, r);
        af_train_options o = toy_options(n_it);
        af_trainer *t = af_trainer_alloc(&o, &tr, &te);
        cr_assert_not_null(t, "%s", af_last_error());
        for (int e = 0; e <= 15; e++)
            cr_assert_eq(af_trainer_advance(t), AF_SUCCESS, "%s", af_last_error());
        const af_epoch_record *rec = af_trainer_records(t);
        cr_expect_eq(af_trainer_epochs(t), 16);
        cr_expect_lt(rec[15].test_loss, 0.2 * rec[0].test_loss, "n_it %zu: %g -> %g", n_it,
                     rec[0].test_loss, rec[15].test_loss);
        cr_expect_geq(rec[15].test_acc, 0.97);
        cr_expect_eq(rec[3].epoch, 3);
        af_trainer_free(t);
        af_dataset_free(&tr);
        af_dataset_free(&te);
        gsl_rng_free(r);
    }
}

Test(train, resume_is_bit_for_bit)
{
    gsl_rng *r = new_rng(5);
    af_dataset tr = toy_set(40, r), te = toy_set(20, r);
    af_train_options o = toy_options(3);
    o.batch = 6; /* a partial last batch */
    af_trainer *a = af_trainer_alloc(&o, &tr, &te), *b = af_trainer_alloc(&o, &tr, &te);
    for (int e = 0; e < 4; e++)
        cr_assert_eq(af_trainer_advance(a), AF_SUCCESS);
    for (int e = 0; e < 2; e++)
        cr_assert_eq(af_trainer_advance(b), AF_SUCCESS);
    char path[] = "/tmp/af_test_ckpt_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(af_trainer_save(b, path), AF_SUCCESS, "%s", af_last_error());
    af_trainer_free(b);
    af_trainer *c = af_trainer_alloc(&o, &tr, &te);
    cr_assert_eq(af_trainer_load(c, path), AF_SUCCESS, "%s", af_last_error());
    cr_expect_eq(af_trainer_epochs(c), 2);
    for (int e = 0; e < 2; e++)
        cr_assert_eq(af_trainer_advance(c), AF_SUCCESS);
    af_model *ma = af_trainer_model(a), *mc = af_trainer_model(c);
    size_t np = af_model_nparams(ma);
    cr_expect_eq(memcmp(af_model_params(ma), af_model_params(mc), np * sizeof(double)), 0,
                 "resumed parameters differ");
    const af_epoch_record *ra = af_trainer_records(a), *rc = af_trainer_records(c);
    for (int e = 0; e < 4; e++) {
        cr_expect_eq(ra[e].test_loss, rc[e].test_loss, "epoch %d", e);
        cr_expect_eq(ra[e].attn.colsum_std, rc[e].attn.colsum_std, "epoch %d", e);
        cr_expect_eq(ra[e].attn.null_colsum_std, rc[e].attn.null_colsum_std, "epoch %d", e);
    }
    /* a checkpoint of another configuration is refused with the reason */
    af_train_options o2 = o;
    o2.adam.lr = 0.5;
    af_trainer *d = af_trainer_alloc(&o2, &tr, &te);
    cr_expect_eq(af_trainer_load(d, path), AF_EFORMAT);
    cr_expect(strstr(af_last_error(), "lr") != NULL, "message: %s", af_last_error());
    af_trainer_free(d);
    unlink(path);
    af_trainer_free(a);
    af_trainer_free(c);
    af_dataset_free(&tr);
    af_dataset_free(&te);
    gsl_rng_free(r);
}

/* Writes len bytes to path. */
static void write_bytes(const char *path, const unsigned char *b, size_t len)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(b, 1, len, fp), len);
    fclose(fp);
}

/* The header's CRC-32 recomputed after a deliberate edit of the payload, so
 * that the semantic checks (not only the checksum) are exercised. */
static void reseal(unsigned char *b, size_t len)
{
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + 24, (uInt)(len - 24));
    memcpy(b + 12, &crc, sizeof crc);
}

Test(train, corrupt_checkpoints_are_refused_with_the_reason)
{
    gsl_rng *r = new_rng(7);
    af_dataset tr = toy_set(40, r), te = toy_set(20, r);
    af_train_options o = toy_options(1);
    af_trainer *a = af_trainer_alloc(&o, &tr, &te);
    for (int e = 0; e < 2; e++)
        cr_assert_eq(af_trainer_advance(a), AF_SUCCESS);
    char path[] = "/tmp/af_test_ckbad_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(af_trainer_save(a, path), AF_SUCCESS, "%s", af_last_error());
    FILE *fp = fopen(path, "rb");
    static unsigned char good[1 << 20], bad[1 << 20];
    size_t len = fread(good, 1, sizeof good, fp);
    fclose(fp);
    cr_assert_gt(len, 200);
    uint64_t nf;
    memcpy(&nf, good + 24, sizeof nf);
    const size_t step_at = 24 + 8 + nf * 8, param_at = step_at + 6 * 8;
    const uint64_t huge = (uint64_t)1 << 63;
    const double nan = NAN;
    enum { TRUNC, TRUNC_BIG, EXTRA, FLIP, VERSION, V1, STEP, NANPARAM, EMPTY, NCASES };
    const char *want[NCASES] = {"truncated", "truncated", "extra bytes", "checksum mismatch",
                                "format version 3", "format 1", "does not match its",
                                "parameter entry 0 is nan", "not an attnflow train checkpoint"};
    for (int k = 0; k < NCASES; k++) {
        size_t n = len;
        memcpy(bad, good, len);
        switch (k) {
        case TRUNC: n = len - 1; break;
        case TRUNC_BIG: n = len - 150; break;
        case EXTRA: bad[n++] = 0; break;
        case FLIP: bad[len / 2] ^= 0x10; break;
        case VERSION: bad[8] = 3; break;
        case V1: memcpy(bad, "AFTRAIN1", 8); break;
        case STEP: memcpy(bad + step_at, &huge, sizeof huge); reseal(bad, n); break;
        case NANPARAM: memcpy(bad + param_at, &nan, sizeof nan); reseal(bad, n); break;
        case EMPTY: n = 0; break;
        }
        write_bytes(path, bad, n);
        af_trainer *c = af_trainer_alloc(&o, &tr, &te);
        af_clear_error();
        cr_expect_eq(af_trainer_load(c, path), AF_EFORMAT, "case %d: %s", k, af_last_error());
        cr_expect_neq(strstr(af_last_error(), want[k]), NULL, "case %d: %s", k, af_last_error());
        cr_expect_eq(af_trainer_epochs(c), 0, "case %d: the trainer was changed", k);
        af_trainer_free(c);
    }
    /* the untouched bytes still load */
    write_bytes(path, good, len);
    af_trainer *c = af_trainer_alloc(&o, &tr, &te);
    cr_expect_eq(af_trainer_load(c, path), AF_SUCCESS, "%s", af_last_error());
    cr_expect_eq(af_trainer_epochs(c), 2);
    af_trainer_free(c);
    unlink(path);
    af_trainer_free(a);
    af_dataset_free(&tr);
    af_dataset_free(&te);
    gsl_rng_free(r);
}

Test(train, pointclouds_deterministic_under_seed)
{
    af_pointcloud_options po = af_pointcloud_options_default();
    po.n_points = 50;
    af_dataset a, b, c;
    gsl_rng *r1 = new_rng(11), *r2 = new_rng(11), *r3 = new_rng(12);
    cr_assert_eq(af_pointclouds_generate(30, &po, r1, &a), AF_SUCCESS);
    cr_assert_eq(af_pointclouds_generate(30, &po, r2, &b), AF_SUCCESS);
    cr_assert_eq(af_pointclouds_generate(30, &po, r3, &c), AF_SUCCESS);
    cr_expect_eq(memcmp(a.x, b.x, 30 * 50 * 3 * sizeof(double)), 0);
    cr_expect_eq(memcmp(a.y, b.y, 30 * sizeof(int)), 0);
    cr_expect_neq(memcmp(a.x, c.x, 30 * 50 * 3 * sizeof(double)), 0);
    /* shapes: without noise or jitter a sphere has unit radius; labels balanced */
    po.noise = 0;
    po.scale_jitter = 0;
    af_dataset s;
    cr_assert_eq(af_pointclouds_generate(12, &po, r1, &s), AF_SUCCESS);
    for (size_t j = 0; j < 50; j++) {
        const double *p = s.x + j * 3; /* sample 0 is a sphere */
        cr_expect_float_eq(p[0] * p[0] + p[1] * p[1] + p[2] * p[2], 1.0, 1e-12);
        /* sample 2 is a (rotated) cube surface: between the face centres and
         * the corners, 0.6 <= |p| <= 0.6 sqrt(3) */
        const double *q = s.x + (2 * 50 + j) * 3;
        double nq = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
        cr_expect(nq >= 0.6 - 1e-12 && nq <= 0.6 * sqrt(3) + 1e-12, "cube point at %g", nq);
    }
    for (size_t i = 0; i < 12; i++)
        cr_expect_eq(s.y[i], (int)(i % 6));
    af_dataset_free(&a), af_dataset_free(&b), af_dataset_free(&c), af_dataset_free(&s);
    gsl_rng_free(r1), gsl_rng_free(r2), gsl_rng_free(r3);
}

/* ---- digits reader ---- */

static void write_gz(const char *path, const char *text)
{
    gzFile g = gzopen(path, "wb");
    cr_assert_not_null(g);
    gzputs(g, text);
    gzclose(g);
}

static char *digit_line(int label, int base)
{
    static char buf[1024];
    size_t len = 0;
    for (int k = 0; k < 64; k++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%d,", (base + k) % 17);
    snprintf(buf + len, sizeof buf - len, "%d\n", label);
    return buf;
}

Test(train, digits_reader_layout_and_split)
{
    char path[] = "/tmp/af_test_digits_XXXXXX";
    close(mkstemp(path));
    char text[8192] = "";
    for (int i = 0; i < 12; i++)
        strcat(text, digit_line(i % 10, i));
    write_gz(path, text);
    af_dataset ds;
    cr_assert_eq(af_digits_read(path, &ds), AF_SUCCESS, "%s", af_last_error());
    cr_expect_eq(ds.n, 12);
    cr_expect_eq(ds.n_tok, 16);
    cr_expect_eq(ds.in_dim, 4);
    /* sample 3: pixel (r, c) = (3 + 8r + c) % 17; token 4h+w holds pixels
     * (2h+p1, 2w+p2) at feature 2 p1 + p2, divided by 16 */
    for (int h = 0; h < 4; h++)
        for (int w = 0; w < 4; w++)
            for (int p1 = 0; p1 < 2; p1++)
                for (int p2 = 0; p2 < 2; p2++) {
                    int pix = (3 + 8 * (2 * h + p1) + 2 * w + p2) % 17;
                    cr_expect_eq(ds.x[3 * 64 + (4 * h + w) * 4 + 2 * p1 + p2], pix / 16.0);
                }
    cr_expect_eq(ds.y[3], 3);
    /* split: deterministic under a seed, a partition of the samples */
    gsl_rng *r1 = new_rng(9), *r2 = new_rng(9);
    af_dataset tr1, te1, tr2, te2;
    cr_assert_eq(af_dataset_split(&ds, 4, r1, &tr1, &te1), AF_SUCCESS);
    cr_assert_eq(af_dataset_split(&ds, 4, r2, &tr2, &te2), AF_SUCCESS);
    cr_expect_eq(tr1.n, 8);
    cr_expect_eq(te1.n, 4);
    cr_expect_eq(memcmp(te1.x, te2.x, 4 * 64 * sizeof(double)), 0);
    cr_expect_eq(memcmp(tr1.y, tr2.y, 8 * sizeof(int)), 0);
    int seen[12] = {0};
    for (size_t i = 0; i < 12; i++) {
        const double *xi = i < 4 ? te1.x + i * 64 : tr1.x + (i - 4) * 64;
        for (size_t j = 0; j < 12; j++)
            if (memcmp(xi, ds.x + j * 64, 64 * sizeof(double)) == 0)
                seen[j]++;
    }
    for (int j = 0; j < 12; j++)
        cr_expect_eq(seen[j], 1, "sample %d appears %d times", j, seen[j]);
    af_dataset_free(&tr1), af_dataset_free(&te1), af_dataset_free(&tr2), af_dataset_free(&te2);
    af_dataset_free(&ds);
    gsl_rng_free(r1), gsl_rng_free(r2);
    unlink(path);
}

Test(train, digits_reader_reads_the_sklearn_file)
{
    af_dataset ds;
    cr_assert_eq(af_digits_read(AF_DIGITS_DEFAULT_PATH, &ds), AF_SUCCESS,
                 "%s (the bootstrap installs python3-sklearn)", af_last_error());
    cr_expect_eq(ds.n, 1797);
    int count[10] = {0};
    for (size_t i = 0; i < ds.n; i++)
        count[ds.y[i]]++;
    for (int k = 0; k < 10; k++)
        cr_expect(count[k] >= 170 && count[k] <= 190, "class %d: %d", k, count[k]);
    af_dataset_free(&ds);
}

static void expect_rejected(const char *text, int gz, const char *needle)
{
    char path[] = "/tmp/af_test_bad_XXXXXX";
    close(mkstemp(path));
    if (gz) {
        write_gz(path, text);
    } else {
        FILE *f = fopen(path, "wb");
        fputs(text, f);
        fclose(f);
    }
    af_dataset ds = {0};
    af_status s = af_digits_read(path, &ds);
    cr_expect_eq(s, AF_EFORMAT, "accepted a corrupt file (%s)", needle);
    cr_expect(strstr(af_last_error(), needle) != NULL, "message '%s' lacks '%s'",
              af_last_error(), needle);
    cr_expect(strstr(af_last_error(), path) != NULL, "message lacks the path");
    cr_expect_null(ds.x);
    unlink(path);
}

Test(train, digits_reader_rejects_corrupt_files)
{
    char good[2048];
    snprintf(good, sizeof good, "%s", digit_line(1, 0));
    char text[4096];
    /* a field out of range on line 2 */
    snprintf(text, sizeof text, "%s0,17%s", good, strchr(digit_line(2, 0), ','));
    expect_rejected(text, 1, ":2:");
    /* too few values */
    expect_rejected("1,2,3\n", 1, "comma-separated");
    /* a label outside 0..9 */
    snprintf(text, sizeof text, "%s", digit_line(1, 0));
    strcpy(strrchr(text, ',') + 1, "12\n");
    expect_rejected(text, 1, "outside 0..9");
    /* not a number */
    snprintf(text, sizeof text, "%s", good);
    text[0] = 'x';
    expect_rejected(text, 1, "not an integer");
    /* empty */
    expect_rejected("", 1, "no digits");
    /* a NUL byte after the label hid the rest of the line from the parser */
    snprintf(text, sizeof text, "%s", good);
    size_t gl = strlen(text);
    memcpy(text + gl - 1, "\0,7\n", 4);
    af_dataset dn = {0};
    cr_expect_eq(af_digits_parse("nul.csv", text, gl + 3, &dn), AF_EFORMAT);
    char want[64];
    snprintf(want, sizeof want, "nul.csv:1:%zu: NUL byte", gl);
    cr_expect_neq(strstr(af_last_error(), want), NULL, "%s (want %s)", af_last_error(), want);
    cr_expect_null(dn.x);
    cr_expect_eq(af_digits_parse("ok.csv", good, strlen(good), &dn), AF_SUCCESS, "%s",
                 af_last_error());
    af_dataset_free(&dn);
    /* a truncated gzip stream */
    char path[] = "/tmp/af_test_trunc_XXXXXX";
    close(mkstemp(path));
    char big[65536] = "";
    for (int i = 0; i < 40; i++)
        strcat(big, digit_line(i % 10, 3 * i));
    write_gz(path, big);
    FILE *f = fopen(path, "rb");
    unsigned char buf[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(path, "wb");
    fwrite(buf, 1, len / 2, f);
    fclose(f);
    af_dataset ds = {0};
    cr_expect_eq(af_digits_read(path, &ds), AF_EFORMAT, "accepted a truncated gzip file");
    cr_expect(strstr(af_last_error(), "gzip") != NULL, "message: %s", af_last_error());
    /* garbage after a gzip header */
    buf[len / 2] = 0;
    for (size_t k = 12; k < 200 && k < len; k++)
        buf[k] ^= 0x5a;
    f = fopen(path, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    cr_expect_eq(af_digits_read(path, &ds), AF_EFORMAT, "accepted a corrupt gzip stream");
    unlink(path);
    /* missing file: I/O error naming the package */
    cr_expect_eq(af_digits_read("/nonexistent/digits.csv.gz", &ds), AF_EIO);
    cr_expect(strstr(af_last_error(), "python3-sklearn") != NULL);
}

/* ---- attention statistics ---- */

Test(train, attention_meter_closed_forms)
{
    size_t T = 5;
    af_attn_meter *m = af_attn_meter_alloc(T);
    gsl_rng *r = new_rng(1);
    double A[25], prof[5], nprof[5];
    af_attn_stats st;
    /* uniform attention: column sums all 1, entropy maximal, null identical */
    for (int k = 0; k < 25; k++)
        A[k] = 1.0 / T;
    af_attn_meter_add(m, A, r);
    af_attn_meter_get(m, &st, prof, nprof);
    cr_expect_lt(st.colsum_std, 1e-15);
    cr_expect_lt(st.null_colsum_std, 1e-15);
    cr_expect_float_eq(st.row_entropy, 1.0, 1e-14);
    /* every row on token 0: column sums (T, 0, ..., 0) */
    af_attn_meter_reset(m);
    memset(A, 0, sizeof A);
    for (size_t i = 0; i < T; i++)
        A[i * T] = 1;
    af_attn_meter_add(m, A, r);
    af_attn_meter_get(m, &st, prof, nprof);
    cr_expect_float_eq(st.colsum_std, sqrt((double)T - 1), 1e-14);
    cr_expect_float_eq(st.colsum_maxdev, (double)T - 1, 1e-14);
    cr_expect_eq(st.row_entropy, 0.0);
    cr_expect_eq(prof[T - 1], (double)T);
    cr_expect_eq(prof[0], 0.0);
    /* a permutation matrix is doubly stochastic, its null control is not
     * (in general); averaged null column sums still total T */
    af_attn_meter_reset(m);
    memset(A, 0, sizeof A);
    for (size_t i = 0; i < T; i++)
        A[i * T + (i + 2) % T] = 1;
    double nstd = 0;
    for (int rep = 0; rep < 50; rep++)
        af_attn_meter_add(m, A, r);
    af_attn_meter_get(m, &st, prof, nprof);
    nstd = st.null_colsum_std;
    cr_expect_lt(st.colsum_std, 1e-15);
    cr_expect_gt(nstd, 0.3);
    double tot = 0;
    for (size_t j = 0; j < T; j++) {
        tot += nprof[j];
        cr_expect_float_eq(prof[j], 1.0, 1e-15);
        if (j)
            cr_expect_geq(nprof[j], nprof[j - 1], "profile not sorted");
    }
    cr_expect_float_eq(tot, (double)T, 1e-12);
    gsl_rng_free(r);
    af_attn_meter_free(m);
}

Test(train, attention_meter_sinkhorn_projection_distance)
{
    /* P doubly stochastic (many normalisations of a random positive matrix);
     * A = rows of P diag(e) normalised. The Sinkhorn projection of A is P
     * (unique), so the distance must be (1/T) sum |A - P|. */
    size_t T = 6;
    gsl_rng *r = new_rng(4);
    double S[36], L[36], hist[400 * 36], P[36], A[36], e[6], work[12];
    for (int k = 0; k < 36; k++)
        L[k] = S[k] = gsl_ran_gaussian(r, 1);
    af_nn_sinkhorn_forward(T, 400, L, hist, P, work);
    for (size_t j = 0; j < T; j++)
        e[j] = exp(gsl_ran_gaussian(r, 0.7));
    double want = 0;
    for (size_t i = 0; i < T; i++) {
        double s = 0;
        for (size_t j = 0; j < T; j++)
            s += P[i * T + j] * e[j];
        for (size_t j = 0; j < T; j++) {
            A[i * T + j] = P[i * T + j] * e[j] / s;
            want += fabs(A[i * T + j] - P[i * T + j]);
        }
    }
    want /= (double)T;
    af_attn_meter *m = af_attn_meter_alloc(T);
    af_attn_stats st;
    af_attn_meter_add(m, A, r);
    af_attn_meter_get(m, &st, NULL, NULL);
    cr_expect_gt(want, 0.05, "test matrix too close to doubly stochastic to be useful");
    cr_expect_float_eq(st.sinkhorn_dist, want, 1e-7, "distance %.10g, expected %.10g",
                       st.sinkhorn_dist, want);
    /* a doubly stochastic matrix is its own projection */
    af_attn_meter_reset(m);
    af_attn_meter_add(m, P, r);
    af_attn_meter_get(m, &st, NULL, NULL);
    cr_expect_lt(st.sinkhorn_dist, 1e-9);
    cr_expect_gt(st.null_sinkhorn_dist, 0.0);
    af_attn_meter_free(m);
    gsl_rng_free(r);
}

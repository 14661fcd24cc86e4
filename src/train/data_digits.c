/* The 8 x 8 handwritten digits (sklearn's digits.csv.gz, read with zlib)
 * as sequences of 2 x 2 patches, and dataset helpers shared by the tasks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <gsl/gsl_randist.h>
#include "attnflow/io.h"
#include "attnflow/train.h"

void af_dataset_free(af_dataset *ds)
{
    if (!ds)
        return;
    free(ds->x);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

static af_status dataset_alloc(af_dataset *ds, size_t n, size_t n_tok, size_t in_dim,
                               size_t classes)
{
    memset(ds, 0, sizeof *ds);
    /* sizes come from options (--n-train, --n-points): the byte count is
     * checked, a product that wraps would allocate a tiny buffer */
    size_t row, bytes, m = n ? n : 1;
    if (__builtin_mul_overflow(n_tok, in_dim, &row) || __builtin_mul_overflow(m, row, &bytes)
        || __builtin_mul_overflow(bytes, sizeof *ds->x, &bytes))
        return af_error(AF_EINVAL, "dataset: %zu samples of %zu x %zu values: too large", n,
                        n_tok, in_dim);
    ds->x = malloc(bytes);
    ds->y = malloc(m * sizeof *ds->y);
    if (!ds->x || !ds->y) {
        af_dataset_free(ds);
        return af_error(AF_ENOMEM, "dataset: out of memory (%zu samples)", n);
    }
    ds->n = n;
    ds->n_tok = n_tok;
    ds->in_dim = in_dim;
    ds->classes = classes;
    return AF_SUCCESS;
}

#define DIGIT_SIDE 8
#define DIGIT_PIX (DIGIT_SIDE * DIGIT_SIDE)
#define DIGIT_FIELDS (DIGIT_PIX + 1)

/* Parses one line of 65 integers; returns 0 or writes a reason. */
static int parse_digit_line(char *line, int *v, char *why, size_t whylen)
{
    char *p = line;
    for (int k = 0; k < DIGIT_FIELDS; k++) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno) {
            snprintf(why, whylen, "field %d is not an integer", k + 1);
            return -1;
        }
        p = end;
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        long hi = k < DIGIT_PIX ? 16 : 9;
        if (x < 0 || x > hi) {
            snprintf(why, whylen, "field %d = %ld outside 0..%ld", k + 1, x, hi);
            return -1;
        }
        v[k] = (int)x;
        if (k < DIGIT_FIELDS - 1) {
            if (*p != ',') {
                snprintf(why, whylen, "expected %d comma-separated values, found %d",
                         DIGIT_FIELDS, k + 1);
                return -1;
            }
            p++;
        }
    }
    if (*p != '\n' && *p != '\0') {
        snprintf(why, whylen, "more than %d values", DIGIT_FIELDS);
        return -1;
    }
    return 0;
}

af_status af_digits_parse(const char *name, const char *text, size_t size, af_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    size_t cap = 64, n = 0;
    double *x = malloc(cap * DIGIT_PIX * sizeof *x);
    int *y = malloc(cap * sizeof *y);
    char line[4096], why[128];
    int v[DIGIT_FIELDS];
    size_t lineno = 0, pos = 0;
    af_status st = AF_SUCCESS;
    if (!x || !y)
        st = af_error(AF_ENOMEM, "digits: out of memory");
    while (st == AF_SUCCESS && pos < size) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) + 1 : size - pos;
        if ((st = af_check_text_line(name, lineno, text + pos, len)) != AF_SUCCESS)
            break;
        if (len >= sizeof line) {
            st = af_error(AF_EFORMAT, "%s:%zu: line too long", name, lineno);
            break;
        }
        memcpy(line, text + pos, len);
        line[len] = '\0';
        pos += len;
        if (line[0] == '\n' || (line[0] == '\r' && line[1] == '\n'))
            continue;
        if (parse_digit_line(line, v, why, sizeof why) != 0) {
            st = af_error(AF_EFORMAT, "%s:%zu: corrupt digits file: %s", name, lineno, why);
            break;
        }
        if (n == cap) {
            cap *= 2;
            double *nx = realloc(x, cap * DIGIT_PIX * sizeof *x);
            int *ny = nx ? realloc(y, cap * sizeof *y) : NULL;
            if (nx)
                x = nx;
            if (ny)
                y = ny;
            if (!nx || !ny) {
                st = af_error(AF_ENOMEM, "digits: out of memory");
                break;
            }
        }
        /* 2 x 2 patches, vit-pytorch order 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)' */
        double *xi = x + n * DIGIT_PIX;
        for (int h = 0; h < 4; h++)
            for (int w = 0; w < 4; w++)
                for (int p1 = 0; p1 < 2; p1++)
                    for (int p2 = 0; p2 < 2; p2++)
                        xi[(h * 4 + w) * 4 + p1 * 2 + p2] =
                            v[(2 * h + p1) * DIGIT_SIDE + 2 * w + p2] / 16.0;
        y[n++] = v[DIGIT_PIX];
    }
    if (st == AF_SUCCESS && n == 0)
        st = af_error(AF_EFORMAT, "%s: no digits in the file", name);
    if (st != AF_SUCCESS) {
        free(x);
        free(y);
        return st;
    }
    ds->x = x;
    ds->y = y;
    ds->n = n;
    ds->n_tok = 16;
    ds->in_dim = 4;
    ds->classes = 10;
    return AF_SUCCESS;
}

/* The uncompressed text is read whole (the data set is about 0.5 MB), so
 * the line parser sees every byte, NULs included. */
#define DIGITS_MAX_BYTES ((size_t)64 << 20)

af_status af_digits_read(const char *path, af_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return af_error(AF_EIO,
                        "%s: cannot open the digits data (%s); it ships with Debian's "
                        "python3-sklearn (apt-get install python3-sklearn) or give --data FILE",
                        path, errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    af_status st = text ? AF_SUCCESS : af_error(AF_ENOMEM, "digits: out of memory");
    while (st == AF_SUCCESS) {
        if (len == cap) {
            char *t = cap < DIGITS_MAX_BYTES ? realloc(text, 2 * cap) : NULL;
            if (!t) {
                st = af_error(AF_EFORMAT, "%s: more than %zu MB of text: not the digits data",
                              path, DIGITS_MAX_BYTES >> 20);
                break;
            }
            text = t;
            cap *= 2;
        }
        int got = gzread(gz, text + len, (unsigned)(cap - len));
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            st = af_error(AF_EFORMAT, "%s: corrupt gzip stream: %s", path, msg);
        } else if (got == 0) {
            break;
        }
        if (got > 0)
            len += (size_t)got;
    }
    if (st == AF_SUCCESS) {
        int zerr;
        const char *msg = gzerror(gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END)
            st = af_error(AF_EFORMAT, "%s: corrupt gzip stream: %s", path, msg);
    }
    gzclose(gz);
    if (st == AF_SUCCESS)
        st = af_digits_parse(path, text, len, ds);
    free(text);
    return st;
}

af_status af_dataset_split(const af_dataset *all, size_t n_test, gsl_rng *rng,
                           af_dataset *train, af_dataset *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (n_test == 0 || n_test >= all->n)
        return af_error(AF_EINVAL, "split: test size %zu must be in 1..%zu", n_test,
                        all->n - 1);
    size_t *perm = malloc(all->n * sizeof *perm);
    if (!perm)
        return af_error(AF_ENOMEM, "split: out of memory");
    for (size_t i = 0; i < all->n; i++)
        perm[i] = i;
    gsl_ran_shuffle(rng, perm, all->n, sizeof *perm);
    size_t row = all->n_tok * all->in_dim;
    af_status st = dataset_alloc(test, n_test, all->n_tok, all->in_dim, all->classes);
    if (st == AF_SUCCESS)
        st = dataset_alloc(train, all->n - n_test, all->n_tok, all->in_dim, all->classes);
    if (st != AF_SUCCESS) {
        af_dataset_free(test);
        free(perm);
        return st;
    }
    for (size_t k = 0; k < all->n; k++) {
        af_dataset *d = k < n_test ? test : train;
        size_t i = k < n_test ? k : k - n_test;
        memcpy(d->x + i * row, all->x + perm[k] * row, row * sizeof *d->x);
        d->y[i] = all->y[perm[k]];
    }
    free(perm);
    return AF_SUCCESS;
}

/* Shared with data_pointclouds.c. */
af_status af__dataset_alloc(af_dataset *ds, size_t n, size_t n_tok, size_t in_dim,
                            size_t classes);
af_status af__dataset_alloc(af_dataset *ds, size_t n, size_t n_tok, size_t in_dim,
                            size_t classes)
{
    return dataset_alloc(ds, n, n_tok, in_dim, classes);
}

af_status af_dataset_select_classes(const af_dataset *in, int lo, int hi, af_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (lo > hi || lo < 0 || (size_t)hi >= in->classes)
        return af_error(AF_EINVAL, "class selection %d-%d outside 0-%zu", lo, hi, in->classes - 1);
    size_t keep = 0, row = in->n_tok * in->in_dim;
    for (size_t i = 0; i < in->n; i++)
        keep += in->y[i] >= lo && in->y[i] <= hi;
    if (keep == 0)
        return af_error(AF_EINVAL, "class selection %d-%d: no sample", lo, hi);
    af_status st = dataset_alloc(out, keep, in->n_tok, in->in_dim, in->classes);
    if (st)
        return st;
    for (size_t i = 0, k = 0; i < in->n; i++)
        if (in->y[i] >= lo && in->y[i] <= hi) {
            memcpy(out->x + k * row, in->x + i * row, row * sizeof *out->x);
            out->y[k++] = in->y[i];
        }
    return AF_SUCCESS;
}

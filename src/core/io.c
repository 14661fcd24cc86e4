/* Matrix reader and atomic, self-describing writers. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attnflow/io.h"
#include "attnflow/version.h"

struct af_file {
    FILE *fp;
    char *path;
    char *tmp;
};

/* The temporary names of the files open now, so that a signal handler can
 * remove them (af_file_remove_temporaries). Slots are claimed and released
 * with atomic exchanges: no lock a handler could interrupt. */
#define LIVE_SLOTS 64
static char *_Atomic live_tmp[LIVE_SLOTS];

static void live_add(char *tmp)
{
    for (size_t k = 0; k < LIVE_SLOTS; k++) {
        char *expect = NULL;
        if (atomic_compare_exchange_strong(&live_tmp[k], &expect, tmp))
            return;
    }
}

static void live_remove(char *tmp)
{
    for (size_t k = 0; k < LIVE_SLOTS; k++) {
        char *expect = tmp;
        if (atomic_compare_exchange_strong(&live_tmp[k], &expect, NULL))
            return;
    }
}

void af_file_remove_temporaries(void)
{
    for (size_t k = 0; k < LIVE_SLOTS; k++) {
        char *p = atomic_load(&live_tmp[k]);
        if (p)
            unlink(p);
    }
}

const char *af_file_path(const af_file *file) { return file->path; }
const char *af_file_temp_path(const af_file *file) { return file->tmp; }

static int is_blank_or_comment(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    return *s == '\0' || *s == '#';
}

af_status af_check_text_line(const char *name, size_t lineno, const char *line, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)line[k];
        if (c == '\0')
            return af_error(AF_EFORMAT, "%s:%zu:%zu: NUL byte in a text file", name, lineno, k + 1);
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            return af_error(AF_EFORMAT, "%s:%zu:%zu: control byte 0x%02x in a text file", name,
                            lineno, k + 1, c);
    }
    return AF_SUCCESS;
}

af_status af_read_matrix_stream(FILE *fp, const char *name, double **data,
                                size_t *rows, size_t *cols)
{
    char *line = NULL;
    size_t cap = 0, nrows = 0, ncols = 0, len = 0, alloc = 0, lineno = 0;
    double *a = NULL;
    af_status st = AF_SUCCESS;

    ssize_t got;
    while ((got = getline(&line, &cap, fp)) != -1) {
        lineno++;
        if ((st = af_check_text_line(name, lineno, line, (size_t)got)) != AF_SUCCESS)
            goto done;
        if (is_blank_or_comment(line))
            continue;
        size_t count = 0;
        char *p = line;
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ',')
                p++;
            if (*p == '\0' || *p == '#')
                break;
            char *end;
            errno = 0;
            double x = strtod(p, &end);
            if (end == p || !(*end == '\0' || *end == ' ' || *end == '\t' || *end == '\r'
                              || *end == '\n' || *end == ',' || *end == '#')) {
                char tok[32];
                size_t k = 0;
                while (p[k] && p[k] != ' ' && p[k] != '\t' && p[k] != '\n' && p[k] != '\r'
                       && k < sizeof tok - 1) {
                    tok[k] = p[k];
                    k++;
                }
                tok[k] = '\0';
                st = af_error(AF_EFORMAT, "%s:%zu: column %zu: not a number: '%s'",
                              name, lineno, count + 1, tok);
                goto done;
            }
            if (!isfinite(x)) {
                st = af_error(AF_EDOM, "%s:%zu: column %zu: value is not finite (%.*s)",
                              name, lineno, count + 1, (int)(end - p), p);
                goto done;
            }
            if (len == alloc) {
                alloc = alloc ? 2 * alloc : 1024;
                double *b = realloc(a, alloc * sizeof *a);
                if (!b) {
                    st = af_error(AF_ENOMEM, "%s: out of memory", name);
                    goto done;
                }
                a = b;
            }
            a[len++] = x;
            count++;
            p = end;
        }
        if (nrows == 0)
            ncols = count;
        else if (count != ncols) {
            st = af_error(AF_EFORMAT, "%s:%zu: ragged rows: expected %zu numbers, found %zu",
                          name, lineno, ncols, count);
            goto done;
        }
        nrows++;
    }
    if (ferror(fp)) {
        st = af_error(AF_EIO, "%s: read error: %s", name, strerror(errno));
        goto done;
    }
    if (nrows == 0 || ncols == 0)
        st = af_error(AF_EFORMAT, "%s: no data (empty file or only comments)", name);

done:
    free(line);
    if (st != AF_SUCCESS) {
        free(a);
        return st;
    }
    *data = a;
    *rows = nrows;
    *cols = ncols;
    return AF_SUCCESS;
}

/* Opens path and reads it with one of the stream readers above. */
typedef af_status (*stream_reader)(FILE *, const char *, double **, size_t *, size_t *);

static af_status read_path(stream_reader read, const char *path, double **data, size_t *rows,
                           size_t *cols)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return af_error(AF_EIO, "%s: cannot open: %s", path, strerror(errno));
    af_status st = read(fp, path, data, rows, cols);
    fclose(fp);
    return st;
}

af_status af_read_matrix(const char *path, double **data, size_t *rows, size_t *cols)
{
    return read_path(af_read_matrix_stream, path, data, rows, cols);
}

af_status af_file_open(af_file **file, const char *path)
{
    af_file *f = calloc(1, sizeof *f);
    if (!f)
        return af_error(AF_ENOMEM, "out of memory");
    size_t n = strlen(path);
    f->path = strdup(path);
    f->tmp = malloc(n + 16);
    if (!f->path || !f->tmp) {
        free(f->path);
        free(f->tmp);
        free(f);
        return af_error(AF_ENOMEM, "out of memory");
    }
    /* Same directory as the target, so rename() is atomic. */
    snprintf(f->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(f->tmp);
    if (fd >= 0) {
        live_add(f->tmp);
        /* mkstemp creates 0600; give the file the mode open() would have. */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    if (fd < 0 || !(f->fp = fdopen(fd, "w"))) {
        af_status st = af_error(AF_EIO, "%s: cannot create: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(f->tmp);
            live_remove(f->tmp);
        }
        free(f->path);
        free(f->tmp);
        free(f);
        return st;
    }
    *file = f;
    return AF_SUCCESS;
}

FILE *af_file_stream(af_file *file) { return file->fp; }

static void file_free(af_file *f)
{
    live_remove(f->tmp);
    free(f->path);
    free(f->tmp);
    free(f);
}

af_status af_file_commit(af_file *f)
{
    af_status st = AF_SUCCESS;
    int bad = ferror(f->fp);
    if (fclose(f->fp) != 0 || bad)
        st = af_error(AF_EIO, "%s: write failed: %s", f->path, strerror(errno));
    else if (rename(f->tmp, f->path) != 0)
        st = af_error(AF_EIO, "%s: cannot rename into place: %s", f->path, strerror(errno));
    if (st != AF_SUCCESS)
        unlink(f->tmp);
    file_free(f);
    return st;
}

void af_file_abort(af_file *f)
{
    if (!f)
        return;
    fclose(f->fp);
    unlink(f->tmp);
    file_free(f);
}

void af_write_header(FILE *fp, const char *command)
{
    fprintf(fp, "# attnflow %s\n", af_version());
    if (command)
        fprintf(fp, "# command: %s\n", command);
}

void af_write_meta(FILE *fp, const char *key, const char *fmt, ...)
{
    va_list ap;
    fprintf(fp, "# %s: ", key);
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    fputc('\n', fp);
}

void af_write_double(FILE *fp, double x)
{
    if (isnan(x))
        fputs("nan", fp);
    else if (isinf(x))
        fputs(x > 0 ? "inf" : "-inf", fp);
    else
        fprintf(fp, "%.17g", x);
}

void af_write_matrix(FILE *fp, size_t rows, size_t cols, const double *a)
{
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            if (j)
                fputc(' ', fp);
            af_write_double(fp, a[i * cols + j]);
        }
        fputc('\n', fp);
    }
}

af_status af_check_finite(const char *what, size_t n, const double *a)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return af_error(AF_EDOM, "%s: entry %zu is not finite (%g)", what, i, a[i]);
    return AF_SUCCESS;
}

/* ---- grid density tables ---- */

af_status af_read_grid_table_stream(FILE *fp, const char *name, double **table, size_t *rows,
                                    size_t *cols)
{
    char *line = NULL;
    size_t cap = 0, nrow = 0, rcap = 0, lineno = 0, blanks = 0;
    long fields = -1, rho = -1; /* fields per data line, index of the rho column */
    double *t = NULL;
    af_status st = AF_SUCCESS;
    int new_block = 0;
    ssize_t len;
    while (st == AF_SUCCESS && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if ((st = af_check_text_line(name, lineno, line, (size_t)len)) != AF_SUCCESS)
            break;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0') {
            if (++blanks >= 2)
                new_block = 1;
            continue;
        }
        blanks = 0;
        if (*p == '#') {
            if (strncmp(p, "# t:", 4) == 0) {
                new_block = 1;
            } else if (strncmp(p, "# columns:", 10) == 0 && fields < 0) {
                long k = 0;
                char *save = NULL;
                for (char *tok = strtok_r(p + 10, " \t\r\n", &save); tok;
                     tok = strtok_r(NULL, " \t\r\n", &save), k++)
                    if (strcmp(tok, "rho") == 0 && rho < 0)
                        rho = k;
                if (rho != 1 && rho != 2)
                    st = af_error(AF_EFORMAT, "%s:%zu: the '# columns:' line needs 'rho' after "
                                  "1 or 2 coordinate columns", name, lineno);
                fields = k;
            }
            continue;
        }
        if (new_block) {
            nrow = 0; /* keep the last block only */
            new_block = 0;
        }
        double v[64];
        long k = 0;
        char *end;
        for (;;) {
            while (isspace((unsigned char)*p))
                p++;
            if (*p == '\0')
                break;
            errno = 0;
            double x = strtod(p, &end);
            if (end == p || (*end && !isspace((unsigned char)*end)) || k == 64) {
                st = af_error(AF_EFORMAT, "%s:%zu: not a row of numbers", name, lineno);
                break;
            }
            v[k++] = x;
            p = end;
        }
        if (st != AF_SUCCESS)
            break;
        if (fields < 0) {
            if (k != 2 && k != 3) {
                st = af_error(AF_EFORMAT, "%s:%zu: expected 2 columns (x rho) or 3 (x1 x2 rho), "
                              "got %ld", name, lineno, k);
                break;
            }
            fields = k;
            rho = k - 1;
        }
        if (k != fields) {
            st = af_error(AF_EFORMAT, "%s:%zu: %ld numbers, expected %ld", name, lineno, k, fields);
            break;
        }
        for (long j = 0; j < rho; j++)
            if (!isfinite(v[j])) {
                st = af_error(AF_EDOM, "%s:%zu: coordinate %ld is not finite (%g)", name, lineno,
                              j + 1, v[j]);
                break;
            }
        if (st != AF_SUCCESS)
            break;
        if (nrow == rcap) {
            rcap = rcap ? 2 * rcap : 1024;
            double *nt = realloc(t, rcap * (size_t)(rho + 1) * sizeof *t);
            if (!nt) {
                st = af_error(AF_ENOMEM, "%s: out of memory", name);
                break;
            }
            t = nt;
        }
        memcpy(t + nrow * (size_t)(rho + 1), v, (size_t)(rho + 1) * sizeof *v);
        nrow++;
    }
    free(line);
    if (st == AF_SUCCESS && ferror(fp))
        st = af_error(AF_EIO, "%s: read error: %s", name, strerror(errno));
    if (st == AF_SUCCESS && nrow == 0)
        st = af_error(AF_EFORMAT, "%s: no data rows", name);
    if (st != AF_SUCCESS) {
        free(t);
        return st;
    }
    *table = t;
    *rows = nrow;
    *cols = (size_t)rho + 1;
    return AF_SUCCESS;
}

af_status af_read_grid_table(const char *path, double **table, size_t *rows, size_t *cols)
{
    return read_path(af_read_grid_table_stream, path, table, rows, cols);
}

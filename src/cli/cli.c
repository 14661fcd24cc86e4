/* What every command shares besides option parsing (options.c): one-line
 * errors, typed option values, output folders, number lists, progress. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"

/* A '\r' progress line is on stderr without its newline (cli_progress_update);
 * an error message must not be appended to it. */
static int progress_line_open;

/* The last cli_fail message (an MPI rank that is not rank 0 hands it over). */
static char last_failure[1024];

const char *cli_last_failure(void) { return last_failure; }

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    if (progress_line_open) {
        fputc('\n', stderr);
        progress_line_open = 0;
    }
    /* the message may quote input (a value, a token, an INI line): raw
     * control bytes are shown as \xNN, so the error stays one readable line */
    va_start(ap, fmt);
    vsnprintf(last_failure, sizeof last_failure, fmt, ap);
    va_end(ap);
    fputs("attnflow: ", stderr);
    for (const unsigned char *p = (const unsigned char *)last_failure; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    fputc('\n', stderr);
    return code;
}

int cli_fail_status(af_status st)
{
    const char *msg = af_last_error();
    return cli_fail(CLI_EINPUT, "%s", msg[0] ? msg : af_strerror(st));
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* ---- typed access ---- */

bool cli_given(const cli_args *a, const char *name)
{
    long k = cli_opt_index(a->cmd, name);
    return k >= 0 && a->value[k] != NULL;
}

const char *cli_str(const cli_args *a, const char *name, const char *def)
{
    long k = cli_opt_index(a->cmd, name);
    return (k >= 0 && a->value[k]) ? a->value[k] : def;
}

/* A flag is given or not: INI values true/false were mapped to that when read. */
bool cli_flag(const cli_args *a, const char *name)
{
    return cli_given(a, name);
}

int cli_double(const cli_args *a, const char *name, double def, double *out)
{
    const char *v = cli_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0')
        return cli_fail(CLI_EINPUT, "--%s: not a number: '%s'", name, v);
    if (errno == ERANGE)
        return cli_fail(CLI_EINPUT, "--%s: %s is out of the range of a double (%s)", name, v,
                        fabs(x) < 1 ? "too close to 0" : "too large");
    if (!isfinite(x))
        return cli_fail(CLI_EINPUT, "--%s: must be finite (got '%s')", name, v);
    *out = x;
    return 0;
}

int cli_positive(const cli_args *a, const char *name, double def, double *out)
{
    int rc = cli_double(a, name, def, out);
    if (rc == 0 && !(*out > 0))
        return cli_fail(CLI_EINPUT, "--%s: must be > 0 (got %g)", name, *out);
    return rc;
}

int cli_ulong(const cli_args *a, const char *name, unsigned long def, unsigned long *out)
{
    const char *v = cli_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (end == v || *end != '\0' || errno == ERANGE || v[0] == '-')
        return cli_fail(CLI_EINPUT, "--%s: not a non-negative integer: '%s'", name, v);
    *out = x;
    return 0;
}

int cli_size(const cli_args *a, const char *name, size_t def, size_t *out)
{
    unsigned long x = 0;
    int rc = cli_ulong(a, name, def, &x);
    if (rc)
        return rc;
    if (x < 1)
        return cli_fail(CLI_EINPUT, "--%s: must be >= 1 (got %lu)", name, x);
    *out = x;
    return 0;
}

int cli_choice(const cli_args *a, const char *name, const char *const *choices, int def, int *out)
{
    const char *v = cli_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    for (int k = 0; choices[k]; k++)
        if (strcmp(v, choices[k]) == 0) {
            *out = k;
            return 0;
        }
    char list[256] = "";
    for (int k = 0; choices[k]; k++) {
        strncat(list, k ? "|" : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[k], sizeof list - strlen(list) - 1);
    }
    return cli_fail(CLI_EINPUT, "--%s: '%s' is not one of %s", name, v, list);
}

/* ---- output directories ---- */

int cli_make_dirs_noting(const char *option, const char *path, cli_made_dirs *made)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return cli_fail(CLI_EINPUT, "--%s: bad directory name '%s'", option, path);
    memcpy(buf, path, len + 1);
    for (size_t k = 1; k <= len; k++) {
        if (buf[k] != '/' && buf[k] != '\0')
            continue;
        char c = buf[k];
        buf[k] = '\0';
        struct stat sb;
        if (mkdir(buf, 0777) == 0) {
            if (made && made->count < sizeof made->path / sizeof made->path[0])
                made->path[made->count++] = strdup(buf);
        } else if (errno != EEXIST || stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            return cli_fail(CLI_EINPUT, "--%s: cannot create directory %s: %s", option, buf,
                            errno == EEXIST ? "a file is in the way" : strerror(errno));
        }
        buf[k] = c;
    }
    return 0;
}

int cli_make_dirs(const char *option, const char *path)
{
    return cli_make_dirs_noting(option, path, NULL);
}

void cli_made_dirs_release(cli_made_dirs *made, bool remove)
{
    for (size_t j = made->count; j-- > 0;) {
        if (remove)
            rmdir(made->path[j]); /* fails, as it should, unless still empty */
        free(made->path[j]);
    }
    made->count = 0;
}

int cli_fail_alloc(const char *what)
{
    const char *msg = af_last_error();
    return msg && msg[0] ? cli_fail(CLI_EINPUT, "%s", msg)
                         : cli_fail(CLI_EINPUT, "%s: cannot allocate the workspace", what);
}

/* ---- number lists and step counts ---- */

long cli_parse_list(const char *s, double *out, size_t cap)
{
    long count = 0;
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(x))
            return -1;
        if ((size_t)count < cap)
            out[count] = x;
        count++;
        p = end;
        /* one separator: blanks, optionally around one ',' or ';' */
        int blanks = 0, sep = 0;
        while (*p == ' ' || *p == '\t') {
            p++;
            blanks = 1;
        }
        if (*p == ',' || *p == ';') {
            p++;
            sep = 1;
            while (*p == ' ' || *p == '\t')
                p++;
        }
        if (*p == '\0')
            return sep ? -1 : count; /* "1," : a number is missing */
        if (!blanks && !sep)
            return -1; /* "1x" */
    }
    return count;
}

int cli_steps(const char *what, double T, double dt, double max, size_t *n)
{
    double steps = ceil(T / dt - 1e-9);
    if (!(T >= 0) || !isfinite(T) || !(dt > 0) || !isfinite(steps) || !(steps <= max))
        return cli_fail(CLI_EINPUT, "%s: %g / %g = %g steps: T must be >= 0 and the step "
                        "count finite and at most %g", what, T, dt, T / dt, max);
    *n = T > 0 && steps > 0 ? (size_t)steps : 0;
    return 0;
}

/* ---- progress ---- */

void cli_progress_start(cli_progress *p, const char *label, size_t total, bool quiet)
{
    p->label = label;
    p->total = total;
    p->t0 = p->last = cli_now();
    p->quiet = quiet;
}

void cli_progress_update(cli_progress *p, size_t done)
{
    double now = cli_now();
    if (p->quiet || now - p->last < 1.0)
        return;
    p->last = now;
    double el = now - p->t0, left = done ? el * (double)(p->total - done) / (double)done : 0;
    fprintf(stderr, "\r%s: %zu/%zu, %.0f s elapsed, ~%.0f s left   ", p->label, done, p->total,
            el, left);
    progress_line_open = 1;
}

void cli_progress_abort(cli_progress *p)
{
    if (progress_line_open)
        fputc('\n', stderr); /* the error message then starts on its own line */
    progress_line_open = 0;
    p->quiet = true;
}

void cli_progress_end(cli_progress *p)
{
    if (!p->quiet && p->last > p->t0)
        fprintf(stderr, "\r%s: %zu/%zu done in %.1f s%20s\n", p->label, p->total, p->total,
                cli_now() - p->t0, "");
    progress_line_open = 0;
}

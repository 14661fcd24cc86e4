/* Option handling shared by every command: getopt_long for the command
 * line, inih for INI files, one table for both. */
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "cli.h"

static const cli_opt common_opts[] = {
    {"quiet", 0, "no progress messages on stderr"},
    {"help", 0, "show this help"},
    {NULL, 0, NULL},
};

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
    va_start(ap, fmt);
    vsnprintf(last_failure, sizeof last_failure, fmt, ap);
    va_end(ap);
    fprintf(stderr, "attnflow: %s\n", last_failure);
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

/* The option table of a command: its own options, then the common ones. */
static size_t opt_count(const cli_command *cmd)
{
    size_t n = 0;
    while (cmd->opts[n].name)
        n++;
    return n;
}

static const cli_opt *opt_at(const cli_command *cmd, size_t k)
{
    size_t n = opt_count(cmd);
    return k < n ? &cmd->opts[k] : &common_opts[k - n];
}

static size_t opt_total(const cli_command *cmd)
{
    return opt_count(cmd) + sizeof common_opts / sizeof common_opts[0] - 1;
}

static long opt_index(const cli_command *cmd, const char *name)
{
    for (size_t k = 0; k < opt_total(cmd); k++)
        if (strcmp(opt_at(cmd, k)->name, name) == 0)
            return (long)k;
    return -1;
}

static void args_init(cli_args *a, const cli_command *cmd)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->nopts = opt_total(cmd);
}

static void args_free(cli_args *a)
{
    for (size_t k = 0; k < CLI_MAX_OPTS; k++)
        free(a->owned[k]);
}

static int args_set(cli_args *a, const char *name, const char *value, bool copy)
{
    long k = opt_index(a->cmd, name);
    if (k < 0)
        return -1;
    free(a->owned[k]);
    a->owned[k] = NULL;
    if (copy && value) {
        a->owned[k] = strdup(value);
        value = a->owned[k];
    }
    a->value[k] = value ? value : "";
    return 0;
}

/* The effective command (INI values included), for data-file headers. */
static void args_command_line(cli_args *a)
{
    size_t cap = sizeof a->command_line, len = 0;
    len += snprintf(a->command_line, cap, "attnflow %s", a->cmd->name);
    for (size_t k = 0; k < a->nopts && len < cap; k++) {
        const cli_opt *o = opt_at(a->cmd, k);
        if (!a->value[k] || strcmp(o->name, "help") == 0)
            continue;
        if (o->has_arg) {
            bool quote = strpbrk(a->value[k], " \t") != NULL || a->value[k][0] == '\0';
            len += snprintf(a->command_line + len, cap - len, quote ? " --%s '%s'" : " --%s %s",
                            o->name, a->value[k]);
        } else {
            len += snprintf(a->command_line + len, cap - len, " --%s", o->name);
        }
    }
}

static void print_help(const cli_command *cmd)
{
    printf("usage: attnflow %s %s\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->summary);
    for (size_t k = 0; k < opt_total(cmd); k++) {
        const cli_opt *o = opt_at(cmd, k);
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->has_arg ? " VALUE" : "");
        printf("  %-22s %s\n", left, o->help);
    }
}

/* INI loading: only the section named after the command. */
typedef struct {
    cli_args *args;
    const char *section;
    const char *path;
    int error;
} ini_one;

static int ini_one_handler(void *user, const char *section, const char *name, const char *value)
{
    ini_one *s = user;
    if (strcmp(section, s->section) != 0)
        return 1;
    if (args_set(s->args, name, value, true) != 0) {
        cli_fail(CLI_EUSAGE, "%s: [%s]: unknown option '%s'", s->path, section, name);
        s->error = 1;
        return 0;
    }
    return 1;
}

static int load_ini_section(cli_args *a, const char *path)
{
    ini_one s = {a, a->cmd->name, path, 0};
    int rc = ini_parse(path, ini_one_handler, &s);
    if (s.error)
        return CLI_EUSAGE;
    if (rc < 0)
        return cli_fail(CLI_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (rc > 0)
        return cli_fail(CLI_EINPUT, "%s:%d: INI syntax error", path, rc);
    return 0;
}

/* Parses argv into a (which may already hold INI values). */
static int parse_argv(cli_args *a, int argc, char **argv, const char **positional)
{
    struct option lo[CLI_MAX_OPTS + 1];
    size_t n = a->nopts;
    for (size_t k = 0; k < n; k++) {
        lo[k].name = opt_at(a->cmd, k)->name;
        lo[k].has_arg = opt_at(a->cmd, k)->has_arg ? required_argument : no_argument;
        lo[k].flag = NULL;
        lo[k].val = 256 + (int)k;
    }
    memset(&lo[n], 0, sizeof lo[n]);
    optind = 0; /* GNU: full re-initialisation, so commands can be parsed repeatedly */
    opterr = 0;
    *positional = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "-", lo, NULL)) != -1) {
        if (c == 1) { /* a non-option argument, in order */
            if (*positional)
                return cli_fail(CLI_EUSAGE, "%s: unexpected argument '%s' (see --help)",
                                a->cmd->name, optarg);
            *positional = optarg;
        } else if (c >= 256) {
            size_t k = (size_t)(c - 256);
            free(a->owned[k]);
            a->owned[k] = NULL;
            a->value[k] = optarg ? optarg : "";
        } else if (c == ':' || optopt) {
            return cli_fail(CLI_EUSAGE, "%s: option '%s' needs a value (see --help)",
                            a->cmd->name, argv[optind - 1]);
        } else {
            return cli_fail(CLI_EUSAGE, "%s: unknown option '%s' (see --help)",
                            a->cmd->name, argv[optind - 1]);
        }
    }
    return 0;
}

int cli_dispatch(const cli_command *cmd, int argc, char **argv)
{
    cli_args a;
    const char *ini = NULL;
    args_init(&a, cmd);
    int rc = parse_argv(&a, argc, argv, &ini);
    if (rc == 0 && cli_flag(&a, "help")) {
        print_help(cmd);
        args_free(&a);
        return 0;
    }
    if (rc == 0 && ini) {
        /* FILE.ini first, then the command line again so that it overrides. */
        cli_args b;
        args_init(&b, cmd);
        rc = load_ini_section(&b, ini);
        if (rc == 0)
            rc = parse_argv(&b, argc, argv, &ini);
        args_free(&a);
        a = b;
    }
    if (rc == 0) {
        args_command_line(&a);
        rc = cmd->run(&a);
    }
    args_free(&a);
    return rc;
}

/* `attnflow run FILE.ini`: every section, in file order, is one command. */
static const cli_command *section_command(const char *section)
{
    char name[64];
    size_t k = 0;
    while (section[k] && section[k] != '.' && k < sizeof name - 1) {
        name[k] = section[k];
        k++;
    }
    name[k] = '\0';
    return cli_find_command(name);
}

typedef struct {
    cli_args *runs;
    size_t count, cap;
    const char *path;
    int error;
} ini_all;

static int ini_all_handler(void *user, const char *section, const char *name, const char *value)
{
    ini_all *s = user;
    const cli_command *cmd = section_command(section);
    cli_args *cur = s->count ? &s->runs[s->count - 1] : NULL;
    long k = opt_index(cmd, name);
    if (k < 0) {
        cli_fail(CLI_EUSAGE, "%s: [%s]: unknown option '%s'", s->path, section, name);
        s->error = 1;
        return 0;
    }
    return args_set(cur, name, value, true) == 0;
}

static int ini_all_section(void *user, const char *section)
{
    ini_all *s = user;
    const cli_command *cmd = section_command(section);
    if (!cmd) {
        cli_fail(CLI_EUSAGE, "%s: [%s]: no such command", s->path, section);
        s->error = 1;
        return 0;
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        cli_args *r = realloc(s->runs, cap * sizeof *r);
        if (!r) {
            s->error = 1;
            return 0;
        }
        s->runs = r;
        s->cap = cap;
    }
    args_init(&s->runs[s->count++], cmd);
    return 1;
}

/* inih has no section callback: a run starts wherever the section name
 * changes. Sections name a command, optionally with a suffix after a '.'
 * ([attention.eps1], [attention.eps10]) so that one file can hold several
 * runs of the same command. */
typedef struct {
    ini_all *all;
    char last[128];
    int started;
} ini_walk;

static int ini_walk_handler(void *user, const char *section, const char *name, const char *value)
{
    ini_walk *w = user;
    if (!w->started || strcmp(w->last, section) != 0) {
        strncpy(w->last, section, sizeof w->last - 1);
        w->started = 1;
        if (!ini_all_section(w->all, section))
            return 0;
    }
    return ini_all_handler(w->all, section, name, value);
}

int cli_run_ini(const char *path, int argc, char **argv)
{
    ini_all all = {NULL, 0, 0, path, 0};
    ini_walk walk = {&all, {0}, 0};
    int rc = ini_parse(path, ini_walk_handler, &walk);
    if (!all.error && rc < 0)
        rc = cli_fail(CLI_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    else if (!all.error && rc > 0)
        rc = cli_fail(CLI_EINPUT, "%s:%d: INI syntax error", path, rc);
    else if (all.error)
        rc = CLI_EUSAGE;
    else if (all.count == 0)
        rc = cli_fail(CLI_EINPUT, "%s: no [command] section", path);
    for (size_t r = 0; rc == 0 && r < all.count; r++) {
        cli_args *a = &all.runs[r];
        /* Command-line overrides apply to the sections whose command knows them. */
        for (int i = 0; i < argc && rc == 0; i++) {
            if (strncmp(argv[i], "--", 2) != 0)
                return cli_fail(CLI_EUSAGE, "run: unexpected argument '%s'", argv[i]);
            long k = opt_index(a->cmd, argv[i] + 2);
            bool has_arg = k >= 0 && opt_at(a->cmd, (size_t)k)->has_arg;
            if (k >= 0) {
                if (has_arg && i + 1 >= argc)
                    rc = cli_fail(CLI_EUSAGE, "run: option '%s' needs a value", argv[i]);
                else
                    args_set(a, argv[i] + 2, has_arg ? argv[i + 1] : "", false);
            }
            if (has_arg || (k < 0 && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0))
                i++;
        }
        if (rc == 0) {
            args_command_line(a);
            rc = a->cmd->run(a);
        }
    }
    for (size_t r = 0; r < all.count; r++)
        args_free(&all.runs[r]);
    free(all.runs);
    return rc;
}

/* ---- typed access ---- */

bool cli_given(const cli_args *a, const char *name)
{
    long k = opt_index(a->cmd, name);
    return k >= 0 && a->value[k] != NULL;
}

const char *cli_str(const cli_args *a, const char *name, const char *def)
{
    long k = opt_index(a->cmd, name);
    return (k >= 0 && a->value[k]) ? a->value[k] : def;
}

bool cli_flag(const cli_args *a, const char *name)
{
    const char *v = cli_str(a, name, NULL);
    if (!v)
        return false;
    /* INI files write flags as "name = true/false/1/0" */
    return !(strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0
             || strcasecmp(v, "off") == 0);
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
    if (end == v || *end != '\0' || errno == ERANGE)
        return cli_fail(CLI_EINPUT, "--%s: not a number: '%s'", name, v);
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

int cli_make_dirs(const char *option, const char *path)
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
        if (mkdir(buf, 0777) != 0 && (errno != EEXIST || stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return cli_fail(CLI_EINPUT, "--%s: cannot create directory %s: %s", option, buf,
                            errno == EEXIST ? "a file is in the way" : strerror(errno));
        buf[k] = c;
    }
    return 0;
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

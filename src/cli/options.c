/* Options of every command from one table (cli.h): the command-line parser,
 * the INI files (`attnflow CMD FILE.ini`, `attnflow run FILE.ini`), --help,
 * deprecated spellings and "did you mean" suggestions. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cli.h"
#include "ini.h"

static const cli_opt common_opts[] = {
    CLI_FLAG("quiet", "no progress messages on stderr"),
    CLI_FLAG("help", "show this help (also -h)"),
    CLI_END,
};

/* ---- the table of a command: its own entries, then the common ones ---- */

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

/* Index of a canonical (non-alias) name, -1 if none. */
long cli_opt_index(const cli_command *cmd, const char *name)
{
    for (size_t k = 0; k < opt_total(cmd); k++) {
        const cli_opt *o = opt_at(cmd, k);
        if (!o->alias_of && strcmp(o->name, name) == 0)
            return (long)k;
    }
    return -1;
}

/* Exact name or deprecated spelling -> index of the canonical entry; *alias
 * is set to the deprecated entry when one was used. */
static long opt_lookup(const cli_command *cmd, const char *name, const cli_opt **alias)
{
    *alias = NULL;
    for (size_t k = 0; k < opt_total(cmd); k++) {
        const cli_opt *o = opt_at(cmd, k);
        if (strcmp(o->name, name) != 0)
            continue;
        if (!o->alias_of)
            return (long)k;
        *alias = o;
        return cli_opt_index(cmd, o->alias_of);
    }
    return -1;
}

/* GNU-style unambiguous abbreviation (--tok for --tokens), as getopt_long
 * accepted before: -1 none, -2 ambiguous. */
static long opt_prefix(const cli_command *cmd, const char *name, size_t len, const cli_opt **alias)
{
    long found = -1;
    *alias = NULL;
    for (size_t k = 0; k < opt_total(cmd); k++) {
        const cli_opt *o = opt_at(cmd, k);
        if (strncmp(o->name, name, len) != 0)
            continue;
        long target = o->alias_of ? cli_opt_index(cmd, o->alias_of) : (long)k;
        if (found >= 0 && found != target)
            return -2;
        if (found < 0 || !o->alias_of)
            *alias = o->alias_of ? o : NULL;
        found = target;
    }
    return found;
}

/* ---- suggestions ---- */

/* Optimal string alignment distance (a swap of neighbours counts 1). */
static size_t osa_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *cli_closest(const char *word, const char *const *candidates, size_t n)
{
    size_t len = strlen(word);
    /* a typo is at most one edit in a short word, two in a long one */
    size_t allowed = len <= 2 ? 0 : len <= 5 ? 1 : 2;
    const char *best = NULL;
    size_t best_d = allowed + 1;
    for (size_t k = 0; k < n; k++) {
        size_t dist = osa_distance(word, candidates[k]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[k];
        }
    }
    return best;
}

/* The option of cmd closest to name (deprecated spellings suggest their
 * replacement), or NULL. */
static const char *suggest_option(const cli_command *cmd, const char *name)
{
    const char *cands[CLI_MAX_OPTS];
    size_t n = 0;
    for (size_t k = 0; k < opt_total(cmd) && n < CLI_MAX_OPTS; k++)
        cands[n++] = opt_at(cmd, k)->name;
    const char *best = cli_closest(name, cands, n);
    const cli_opt *alias;
    if (best && opt_lookup(cmd, best, &alias) >= 0 && alias)
        best = alias->alias_of;
    return best;
}

/* " (did you mean --seed?)" or, without a suggestion, otherwise */
static const char *did_you_mean(char *buf, size_t cap, const char *pre, const char *best,
                                const char *post, const char *otherwise)
{
    if (!best)
        return otherwise;
    snprintf(buf, cap, " (did you mean %s%s%s?)", pre, best, post);
    return buf;
}

static void deprecated(const char *where, const cli_opt *alias, const char *dashes)
{
    fprintf(stderr, "attnflow: warning: %s%s%s is deprecated, use %s%s instead\n", where,
            dashes, alias->name, dashes, alias->alias_of);
}

/* ---- values ---- */

static void args_init(cli_args *a, const cli_command *cmd)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->nopts = opt_total(cmd);
    if (a->nopts > CLI_MAX_OPTS) { /* a programming error: raise CLI_MAX_OPTS */
        fprintf(stderr, "attnflow: %s has %zu options, more than CLI_MAX_OPTS = %d\n", cmd->name,
                a->nopts, CLI_MAX_OPTS);
        abort();
    }
}

static void args_free(cli_args *a)
{
    for (size_t k = 0; k < CLI_MAX_OPTS; k++)
        free(a->owned[k]);
    memset(a->owned, 0, sizeof a->owned);
}

/* value NULL: unset (an INI flag = false). copy: duplicate (INI strings). */
static int args_set(cli_args *a, size_t k, const char *value, bool copy)
{
    free(a->owned[k]);
    a->owned[k] = NULL;
    if (copy && value && !(a->owned[k] = strdup(value)))
        return cli_fail(CLI_EINPUT, "out of memory");
    a->value[k] = copy && value ? a->owned[k] : value;
    return 0;
}

/* An INI flag: true/yes/1 -> set, false/no/0 -> unset; anything else refused. */
static int flag_value(const char *v, bool *on)
{
    static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};
    for (size_t k = 0; k < 3; k++) {
        if (strcasecmp(v, yes[k]) == 0)
            return *on = true, 0;
        if (strcasecmp(v, no[k]) == 0)
            return *on = false, 0;
    }
    return -1;
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

/* ---- help ---- */

static void print_option(FILE *fp, const char *left, const char *help)
{
    if (strlen(left) <= 24)
        fprintf(fp, "  %-24s %s\n", left, help);
    else
        fprintf(fp, "  %s\n  %-24s %s\n", left, "", help);
}

void cli_print_help(const cli_command *cmd, FILE *fp)
{
    fprintf(fp, "usage: attnflow %s %s\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->summary);
    bool any_alias = false;
    for (size_t k = 0; k < opt_total(cmd); k++) {
        const cli_opt *o = opt_at(cmd, k);
        if (o->alias_of) {
            any_alias = true;
            continue;
        }
        char left[96];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->has_arg ? " " : "",
                 o->has_arg ? (o->arg ? o->arg : "VALUE") : "");
        print_option(fp, left, o->help);
    }
    if (any_alias) {
        fprintf(fp, "\ndeprecated spellings (still accepted, with a warning):\n");
        for (size_t k = 0; k < opt_total(cmd); k++) {
            const cli_opt *o = opt_at(cmd, k);
            if (!o->alias_of)
                continue;
            char left[96], help[128];
            snprintf(left, sizeof left, "--%s", o->name);
            snprintf(help, sizeof help, "use --%s", o->alias_of);
            print_option(fp, left, help);
        }
    }
    fprintf(fp, "\nFILE.ini: options from the file's [%s] section (keys are option names\n"
            "without '--', flags take true/false/1/0/yes/no); the command line overrides them.\n",
            cmd->name);
}

void cli_print_run_help(FILE *fp)
{
    fprintf(fp, "usage: attnflow run FILE.ini [--option [value] ...]\n"
            "run every section of an INI file, in file order, as one command: a section\n"
            "[CMD] or [CMD.label] runs `attnflow CMD` with the section's keys as options\n"
            "(names without '--'; flags take true/false/1/0/yes/no). Options given after\n"
            "FILE.ini override the file in every section whose command knows them; an\n"
            "option no section knows, an unknown key or a section naming no command is an\n"
            "error (exit 2) before anything runs.\n");
}

/* ---- command line ---- */

/* "--key=value" or "--key": the key into key[cap]; *eq at the '=' or NULL. */
static void split_long(const char *arg, char *key, size_t cap, const char **eq)
{
    const char *opt = arg + 2;
    *eq = strchr(opt, '=');
    size_t len = *eq ? (size_t)(*eq - opt) : strlen(opt);
    snprintf(key, cap, "%.*s", (int)(len < cap ? len : cap - 1), opt);
}

/* The value of option o found at argv[*i]: after its '=' or the next
 * argument (taken even if it starts with '-': --value -1); "" for a flag. */
static int option_value(const char *who, const cli_opt *o, const char *eq, int argc, char **argv,
                        int *i, const char **value)
{
    *value = "";
    if (o->has_arg && eq)
        *value = eq + 1;
    else if (o->has_arg && *i + 1 < argc)
        *value = argv[++*i];
    else if (o->has_arg)
        return cli_fail(CLI_EUSAGE, "%s: option '--%s' needs a value (--%s %s)", who, o->name,
                        o->name, o->arg ? o->arg : "VALUE");
    else if (eq)
        return cli_fail(CLI_EUSAGE, "%s: option '--%s' is a flag and takes no value (see --help)",
                        who, o->name);
    return 0;
}

/* Parses argv (argv[0] is the command name) into a; *positional receives the
 * one non-option argument (FILE.ini), *help whether -h/--help was given. */
static int parse_argv(cli_args *a, int argc, char **argv, const char **positional, bool *help)
{
    const char *name = a->cmd->name;
    char hint[128];
    bool only_positional = false;
    *positional = NULL;
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (*positional)
                return cli_fail(CLI_EUSAGE, "%s: unexpected argument '%s' (see --help)", name, arg);
            *positional = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            *help = true;
            continue;
        }
        if (arg[1] != '-') { /* short options: only -h exists */
            const cli_opt *alias;
            bool is_long = opt_lookup(a->cmd, arg + 1, &alias) >= 0;
            return cli_fail(CLI_EUSAGE, "%s: unknown option '%s'%s", name, arg,
                            did_you_mean(hint, sizeof hint, "--",
                                         is_long ? arg + 1 : suggest_option(a->cmd, arg + 1), "",
                                         " (see --help)"));
        }
        char key[128];
        const char *eq, *value;
        split_long(arg, key, sizeof key, &eq);
        const cli_opt *alias;
        long k = opt_lookup(a->cmd, key, &alias);
        if (k < 0)
            k = opt_prefix(a->cmd, key, strlen(key), &alias);
        if (k == -2)
            return cli_fail(CLI_EUSAGE, "%s: option '--%s' is ambiguous (see --help)", name, key);
        if (k < 0)
            return cli_fail(CLI_EUSAGE, "%s: unknown option '--%s'%s", name, key,
                            did_you_mean(hint, sizeof hint, "--", suggest_option(a->cmd, key), "",
                                         " (see --help)"));
        const cli_opt *o = opt_at(a->cmd, (size_t)k);
        if (alias)
            deprecated("", alias, "--");
        int rc = option_value(name, o, eq, argc, argv, &i, &value);
        if (rc)
            return rc;
        if (strcmp(o->name, "help") == 0)
            *help = true;
        args_set(a, (size_t)k, value, false);
    }
    return 0;
}

/* ---- output folders ---- */

/* Creates the missing parent folders of an output file. */
static int make_parent_dirs(const char *option, const char *path, cli_made_dirs *made)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    if ((size_t)(slash - path) >= sizeof dir)
        return cli_fail(CLI_EINPUT, "--%s: path too long", option);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return cli_make_dirs_noting(option, dir, made);
}

/* Runs the command: parent folders of its output files first; when it fails,
 * the folders made for it go again (rmdir: only if they stayed empty). */
static int run_command(cli_args *a)
{
    cli_made_dirs made = {{0}, 0};
    int rc = 0;
    args_command_line(a);
    for (size_t k = 0; k < a->nopts && rc == 0; k++) {
        const cli_opt *o = opt_at(a->cmd, k);
        if ((o->flags & CLI_OUT_FILE) && a->value[k] && a->value[k][0])
            rc = make_parent_dirs(o->name, a->value[k], &made);
    }
    if (rc == 0)
        rc = a->cmd->run(a);
    cli_made_dirs_release(&made, rc != 0);
    return rc;
}

/* ---- INI files ---- */

/* The command a section runs: its name up to the first '.'. */
static const cli_command *section_command(const char *section)
{
    char name[64];
    size_t k = 0;
    while (section[k] && section[k] != '.' && k < sizeof name - 1) {
        name[k] = section[k];
        k++;
    }
    name[k] = '\0';
    return section[k] == '.' || section[k] == '\0' ? cli_find_command(name) : NULL;
}

typedef struct {
    const char *path;
    const cli_command *only; /* attnflow CMD FILE.ini: keep the [CMD] section only */
    cli_args *target;        /* ... into this */
    bool target_seen;
    cli_args *runs;          /* attnflow run FILE.ini: one per section */
    size_t count, cap;
    const cli_command *cur;  /* command of the current section */
    bool cur_kept;
} ini_state;

static int on_section(void *user, const char *section, long line)
{
    ini_state *s = user;
    char hint[160];
    s->cur = section_command(section);
    if (!s->cur) {
        const char *names[16];
        size_t n = 0;
        for (const char *const *c = cli_command_names(); *c && n < 16; c++)
            names[n++] = *c;
        return cli_fail(CLI_EUSAGE, "%s:%ld: [%s]: no such command%s", s->path, line, section,
                        did_you_mean(hint, sizeof hint, "[", cli_closest(section, names, n), "]", ""));
    }
    if (s->only) {
        s->cur_kept = strcmp(section, s->only->name) == 0;
        s->target_seen |= s->cur_kept;
        return 0;
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        cli_args *r = realloc(s->runs, cap * sizeof *r);
        if (!r)
            return cli_fail(CLI_EINPUT, "out of memory");
        s->runs = r;
        s->cap = cap;
    }
    args_init(&s->runs[s->count++], s->cur);
    s->cur_kept = true;
    return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value, long line)
{
    ini_state *s = user;
    char hint[128];
    if (!s->cur)
        return cli_fail(CLI_EUSAGE, "%s:%ld: '%s' before any [command] section", s->path, line,
                        key);
    const cli_opt *alias;
    long k = opt_lookup(s->cur, key, &alias);
    if (k < 0 || strcmp(key, "help") == 0)
        return cli_fail(CLI_EUSAGE, "%s:%ld: [%s]: unknown option '%s'%s", s->path, line, section,
                        key, did_you_mean(hint, sizeof hint, "'", suggest_option(s->cur, key), "'", ""));
    const cli_opt *o = opt_at(s->cur, (size_t)k);
    bool on = true;
    if (!o->has_arg && flag_value(value, &on) != 0)
        return cli_fail(CLI_EUSAGE, "%s:%ld: [%s]: '%s' is a flag: true/false/1/0/yes/no "
                        "(got '%s')", s->path, line, section, key, value);
    if (alias) {
        char where[300];
        snprintf(where, sizeof where, "%s:%ld: [%s]: ", s->path, line, section);
        deprecated(where, alias, "");
    }
    if (!s->cur_kept)
        return 0;
    cli_args *a = s->only ? s->target : &s->runs[s->count - 1];
    return args_set(a, (size_t)k, o->has_arg ? value : on ? "" : NULL, true);
}

static int read_ini(ini_state *s)
{
    int rc = cli_ini_read(s->path, on_section, on_key, s);
    if (rc == 0 && s->only && !s->target_seen)
        rc = cli_fail(CLI_EUSAGE, "%s: no [%s] section (sections [%s.label] run with "
                      "`attnflow run %s`)", s->path, s->only->name, s->only->name, s->path);
    if (rc == 0 && !s->only && s->count == 0)
        rc = cli_fail(CLI_EUSAGE, "%s: no [command] section", s->path);
    return rc;
}

int cli_dispatch(const cli_command *cmd, int argc, char **argv)
{
    cli_args a;
    const char *ini = NULL;
    bool help;
    args_init(&a, cmd);
    int rc = parse_argv(&a, argc, argv, &ini, &help);
    if (rc == 0 && help) {
        cli_print_help(cmd, stdout);
        return 0;
    }
    if (rc == 0 && ini) {
        /* FILE.ini first; the command line overrides it. */
        cli_args b;
        args_init(&b, cmd);
        ini_state s = {.path = ini, .only = cmd, .target = &b};
        rc = read_ini(&s);
        for (size_t k = 0; k < a.nopts; k++)
            if (a.value[k])
                args_set(&b, k, a.value[k], false);
        args_free(&a);
        a = b;
    }
    if (rc == 0)
        rc = run_command(&a);
    args_free(&a);
    return rc;
}

/* ---- attnflow run FILE.ini [--option [value] ...] ---- */

/* The overrides given after FILE.ini, applied to each section whose command
 * knows them; one no section knows is an error. */
static int apply_overrides(ini_state *s, int argc, char **argv)
{
    char hint[128];
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return cli_fail(CLI_EUSAGE, "run: unexpected argument '%s' (options after FILE.ini "
                            "are --name [value])", arg);
        char key[128];
        const char *eq, *value;
        split_long(arg, key, sizeof key, &eq);
        /* a name may be current in one command and deprecated in another
         * (--iters: flow's normalisations, convex's old spelling of --steps):
         * each section looks it up in its own table */
        const cli_opt *o = NULL, *alias = NULL, *used_alias = NULL;
        const char *best = NULL;
        bool current = false; /* no warning where the name is some section's own */
        for (size_t r = 0; r < s->count; r++) {
            long k = opt_lookup(s->runs[r].cmd, key, &alias);
            if (k >= 0 && !o)
                o = opt_at(s->runs[r].cmd, (size_t)k);
            if (k >= 0 && alias && !used_alias)
                used_alias = alias;
            current |= k >= 0 && !alias;
            if (k < 0 && !best)
                best = suggest_option(s->runs[r].cmd, key);
        }
        if (!o)
            return cli_fail(CLI_EUSAGE, "run: option '--%s' applies to no section of %s%s", key,
                            s->path, did_you_mean(hint, sizeof hint, "--", best, "", ""));
        if (used_alias && !current)
            deprecated("", used_alias, "--");
        int rc = option_value("run", o, eq, argc, argv, &i, &value);
        if (rc)
            return rc;
        for (size_t r = 0; r < s->count; r++) {
            long k = opt_lookup(s->runs[r].cmd, key, &alias);
            if (k >= 0)
                args_set(&s->runs[r], (size_t)k, value, false);
        }
    }
    return 0;
}

int cli_run_ini(const char *path, int argc, char **argv)
{
    ini_state s = {.path = path};
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_print_run_help(stdout);
            return 0;
        }
    int rc = read_ini(&s);
    if (rc == 0)
        rc = apply_overrides(&s, argc, argv);
    for (size_t r = 0; rc == 0 && r < s.count; r++)
        rc = run_command(&s.runs[r]);
    for (size_t r = 0; r < s.count; r++)
        args_free(&s.runs[r]);
    free(s.runs);
    return rc;
}

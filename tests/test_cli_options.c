/* Command-line conventions shared by every command (README "Command-line
 * conventions", src/cli/cli.h): -h / --help / `attnflow help CMD` everywhere,
 * value kinds in the help, old option spellings still working as deprecated
 * aliases, and every usage error (unknown option, INI key or section, bad flag
 * value, a value missing or given to a flag) exiting 2 with exactly one
 * 'attnflow:' line. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "support/fixtures.h"

static const char *const commands[] = {"attention", "flow", "train", "convex",
                                       "heat", "compare", "gradflow"};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Lines of out that start with prefix. */
static int count_lines(const char *out, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    return n;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t len = fread(buf, 1, (1 << 20) - 1, fp);
    buf[len] = '\0';
    fclose(fp);
    return buf;
}

/* The file without its lines that hold a timing ('seconds'), so that two runs
 * of the same computation compare equal. */
static char *slurp_untimed(const char *path)
{
    char *s = slurp(path);
    cr_assert_not_null(s, "%s not written", path);
    char *w = s;
    for (char *line = s; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        if (!memmem(line, len, "seconds", 7)) {
            memmove(w, line, len);
            w += len;
        }
        line += len;
    }
    *w = '\0';
    return s;
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/af_cli_options_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cli_options, .init = make_tmpdir, .fini = remove_tmpdir);

/* ---- help ---- */

Test(cli_options, help_on_every_command)
{
    static char a[1 << 16], b[1 << 16], c[1 << 16];
    for (size_t k = 0; k < NCOMMANDS; k++) {
        char args[128], usage[64];
        snprintf(usage, sizeof usage, "usage: attnflow %s ", commands[k]);
        snprintf(args, sizeof args, "%s -h", commands[k]);
        cr_expect_eq(fx_run_cli(AF_CLI, args, a, sizeof a), 0, "%s: %s", args, a);
        snprintf(args, sizeof args, "%s --help", commands[k]);
        cr_expect_eq(fx_run_cli(AF_CLI, args, b, sizeof b), 0, "%s: %s", args, b);
        snprintf(args, sizeof args, "help %s", commands[k]);
        cr_expect_eq(fx_run_cli(AF_CLI, args, c, sizeof c), 0, "%s: %s", args, c);
        cr_expect_eq(strncmp(a, usage, strlen(usage)), 0, "%s -h: %s", commands[k], a);
        cr_expect_str_eq(a, b, "%s: -h and --help differ", commands[k]);
        cr_expect_str_eq(a, c, "%s: -h and `help %s` differ", commands[k], commands[k]);
        /* every option shows the kind of its value, none the placeholder */
        cr_expect_null(strstr(a, "VALUE"), "%s --help shows VALUE:\n%s", commands[k], a);
        cr_expect_not_null(strstr(a, "--quiet"), "%s", a);
        cr_expect_eq(count_lines(a, "attnflow:"), 0, "%s", a);
        /* -h after other options still asks for help, never runs */
        snprintf(args, sizeof args, "%s --quiet -h", commands[k]);
        cr_expect_eq(fx_run_cli(AF_CLI, args, b, sizeof b), 0, "%s: %s", args, b);
        cr_expect_str_eq(a, b, "%s", args);
    }
}

Test(cli_options, help_shows_value_kinds_and_deprecated_spellings)
{
    static char out[1 << 16];
    cr_assert_eq(fx_run_cli(AF_CLI, "attention --help", out, sizeof out), 0);
    cr_expect_not_null(strstr(out, "--eps E "), "%s", out);
    cr_expect_not_null(strstr(out, "--tokens FILE "), "%s", out);
    cr_expect_not_null(strstr(out, "--A MATRIX "), "%s", out);
    cr_assert_eq(fx_run_cli(AF_CLI, "help convex", out, sizeof out), 0);
    cr_expect_not_null(strstr(out, "--out DIR "), "%s", out);
    cr_expect_not_null(strstr(out, "deprecated spellings"), "%s", out);
    cr_expect_not_null(strstr(out, "--max-iter "), "%s", out);
    cr_expect_not_null(strstr(out, "use --max-iters"), "%s", out);
    /* --norm defaults differ between commands: each help says why */
    cr_assert_eq(fx_run_cli(AF_CLI, "flow --help", out, sizeof out), 0);
    cr_expect_not_null(strstr(out, "attention and compare default to sinkhorn"), "%s", out);
}

Test(cli_options, help_of_run_and_global_usage)
{
    static char a[1 << 14], b[1 << 14];
    cr_expect_eq(fx_run_cli(AF_CLI, "help run", a, sizeof a), 0, "%s", a);
    cr_expect_eq(strncmp(a, "usage: attnflow run FILE.ini", 28), 0, "%s", a);
    cr_expect_eq(fx_run_cli(AF_CLI, "run --help", b, sizeof b), 0, "%s", b);
    cr_expect_str_eq(a, b);
    cr_expect_eq(fx_run_cli(AF_CLI, "run x.ini -h", b, sizeof b), 0, "%s", b);
    cr_expect_str_eq(a, b);
    cr_expect_eq(fx_run_cli(AF_CLI, "help", a, sizeof a), 0, "%s", a);
    cr_expect_not_null(strstr(a, "attnflow help <command>"), "%s", a);
    cr_expect_eq(fx_run_cli(AF_CLI, "--help", b, sizeof b), 0, "%s", b);
    cr_expect_str_eq(a, b);
    cr_expect_eq(fx_run_cli(AF_CLI, "help help", b, sizeof b), 0, "%s", b);
    cr_expect_str_eq(a, b, "help help is the global usage");
}

/* ---- usage errors: exit 2, exactly one 'attnflow:' line ---- */

/* src with every token replaced by value. */
static void expand(char *dst, size_t cap, const char *src, const char *token, const char *value)
{
    size_t len = 0, tl = strlen(token);
    dst[0] = '\0';
    for (const char *p = src; *p && len + 1 < cap;) {
        if (strncmp(p, token, tl) == 0) {
            len += (size_t)snprintf(dst + len, cap - len, "%s", value);
            p += tl;
        } else {
            dst[len++] = *p++;
            dst[len] = '\0';
        }
    }
}

typedef struct {
    const char *ini;  /* INI text written to a temporary file ($INI in args), or NULL */
    const char *args;
    int code;
    const char *msg;
} error_case;

static void check_error_cases(const error_case *cases, size_t count)
{
    static char out[1 << 14];
    for (size_t k = 0; k < count; k++) {
        char args[1024], ini[256] = "", msg[512];
        if (cases[k].ini)
            snprintf(ini, sizeof ini, "%s", fx_temp_file(cases[k].ini));
        expand(args, sizeof args, cases[k].args, "$INI", ini);
        expand(msg, sizeof msg, cases[k].msg, "$INI", ini);
        int code = fx_run_cli(AF_CLI, args, out, sizeof out);
        cr_expect_eq(code, cases[k].code, "`%s`: exit %d: %s", args, code, out);
        cr_expect_eq(strncmp(out, "attnflow: ", 10), 0, "`%s`: %s", args, out);
        cr_expect_eq(count_lines(out, "attnflow:"), 1, "`%s`: not one line: %s", args, out);
        cr_expect_not_null(strstr(out, msg), "`%s`: '%s' not in: %s", args, msg, out);
        cr_expect_null(strstr(out, "warning"), "`%s`: %s", args, out);
    }
}

/* D9: the messages named the wrong problem ("needs a value") or the wrong word. */
Test(cli_options, d9_option_errors_name_the_real_problem)
{
    const error_case cases[] = {
        {NULL, "flow -x", 2, "flow: unknown option '-x'"},
        {NULL, "flow --quiet=1", 2, "option '--quiet' is a flag and takes no value"},
        {NULL, "attention -xy", 2, "attention: unknown option '-xy'"},
        {NULL, "flow --n 4 --eps", 2, "option '--eps' needs a value (--eps E)"},
        {NULL, "attention -eps 2", 2, "unknown option '-eps' (did you mean --eps?)"},
        {NULL, "flow --s 1", 2, "option '--s' is ambiguous"},
        {NULL, "flow a.ini b.ini", 2, "flow: unexpected argument 'b.ini'"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
}

Test(cli_options, typos_get_a_suggestion)
{
    const error_case cases[] = {
        {NULL, "flow --sede 2", 2, "unknown option '--sede' (did you mean --seed?)"},
        {NULL, "attention --tokns x", 2, "unknown option '--tokns' (did you mean --tokens?)"},
        {NULL, "convex --max-itres 3", 2, "(did you mean --max-iters?)"},
        /* a typo of a deprecated spelling suggests the current name */
        {NULL, "train --n-iy 3", 2, "unknown option '--n-iy' (did you mean --iters?)"},
        {NULL, "flow --bogus 1", 2, "unknown option '--bogus' (see --help)"},
        {NULL, "flwo --n 3", 2, "unknown command 'flwo' (did you mean flow?)"},
        {NULL, "help atention", 2, "unknown command 'atention' (did you mean attention?)"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
}

/* D7: sections that name no command ran the defaults with exit 0 (and
 * `run` crashed on such a file with several keys); a directory read as an
 * empty file. */
Test(cli_options, d7_unmatched_sections_and_directories)
{
    const char *typo = "[attenton]\nn = 3\nd = 2\neps = 2\nquiet = 1\n";
    const error_case cases[] = {
        {typo, "run $INI", 2, "$INI:1: [attenton]: no such command (did you mean [attention]?)"},
        {typo, "attention $INI", 2, "$INI:1: [attenton]: no such command"},
        {"[flow]\nn = 3\n\n[heta]\nT = 1\n", "flow $INI", 2, "$INI:4: [heta]: no such command"},
        {"[flow.x]\nn = 3\n", "flow $INI", 2, "no [flow] section"},
        {"[heat]\nT = 1\n", "flow $INI", 2, "$INI: no [flow] section"},
        {"; only a comment\n", "run $INI", 2, "no [command] section"},
        {"n = 3\n[flow]\n", "run $INI", 2, "$INI:1: 'n' before any [command] section"},
        {NULL, "run /tmp", 2, "/tmp: is a directory, not an INI file"},
        {NULL, "heat /tmp", 2, "/tmp: is a directory, not an INI file"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
    /* the same file given to each of the 7 commands */
    for (size_t k = 0; k < NCOMMANDS; k++) {
        char args[64];
        snprintf(args, sizeof args, "%s $INI", commands[k]);
        error_case c = {typo, args, 2, "$INI:1: [attenton]: no such command"};
        check_error_cases(&c, 1);
    }
}

Test(cli_options, unknown_ini_keys_are_errors_with_file_and_line)
{
    const error_case cases[] = {
        {"[attention]\nn = 3\nsede = 2\n", "attention $INI", 2,
         "$INI:3: [attention]: unknown option 'sede' (did you mean 'seed'?)"},
        {"[attention]\nn = 3\nsede = 2\n", "run $INI", 2, "$INI:3: [attention]: unknown option 'sede'"},
        /* keys of the other sections are checked too */
        {"[flow]\nn = 3\n[heat]\nkapa = 2\n", "flow $INI", 2,
         "$INI:4: [heat]: unknown option 'kapa' (did you mean 'kappa'?)"},
        {"[flow]\nhelp = 1\n", "flow $INI", 2, "$INI:2: [flow]: unknown option 'help'"},
        {"[flow]\nn\n", "flow $INI", 1, "$INI:2: INI syntax error"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
}

Test(cli_options, ini_flags_accept_only_booleans)
{
    const error_case cases[] = {
        {"[attention]\nn = 3\nsharp-rate = maybe\n", "attention $INI", 2,
         "$INI:3: [attention]: 'sharp-rate' is a flag: true/false/1/0/yes/no (got 'maybe')"},
        {"[flow]\nquiet = on\n", "run $INI", 2, "'quiet' is a flag"},
        {"[flow]\nquiet =\n", "run $INI", 2, "'quiet' is a flag"},
        /* yes is yes: --usa with Sinkhorn is refused ... */
        {"[flow]\nnorm = sinkhorn\nusa = YES\n", "flow $INI --n 3", 2, "SoftMax variant"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
    /* ... and no is no: the same run without it goes through */
    static char out[1 << 14];
    char args[512];
    snprintf(args, sizeof args, "flow %s --n 3 --T 0.02 --dt 0.01",
             fx_temp_file("[flow]\nnorm = sinkhorn\nusa = no\nquiet = true\n"));
    cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
}

/* D8: an override no section knows was ignored with exit 0. */
Test(cli_options, d8_run_overrides_must_apply)
{
    const char *ini = "[attention]\nn = 3\nquiet = 1\n";
    const error_case cases[] = {
        {ini, "run $INI --bogus 1", 2, "run: option '--bogus' applies to no section of $INI"},
        {ini, "run $INI --sede 2", 2, "(did you mean --seed?)"},
        {ini, "run $INI --epochs 2", 2, "option '--epochs' applies to no section"},
        {ini, "run $INI --eps", 2, "run: option '--eps' needs a value (--eps E)"},
        {ini, "run $INI --quiet=0", 2, "'--quiet' is a flag and takes no value"},
        /* a stray word: exit 2 (also under ASan: the error path freed the runs) */
        {ini, "run $INI stray", 2, "run: unexpected argument 'stray'"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
}

/* Line numbers count physical lines, however long: a long comment used to
 * shift every later line number (and an over-long line is refused at its own). */
Test(cli_options, ini_line_numbers_after_long_lines)
{
    size_t len = 70000;
    char *text = malloc(len + 128);
    strcpy(text, "[attention]\n# ");
    memset(text + 14, 'x', 1000);
    strcpy(text + 1014, "\nn = 3\nfoo = 2\n");
    error_case c1 = {text, "run $INI", 2, "$INI:4: [attention]: unknown option 'foo'"};
    check_error_cases(&c1, 1);
    strcpy(text, "[attention]\nn = 3\n# ");
    memset(text + 20, 'x', len);
    strcpy(text + 20 + len, "\neps = 1\n");
    error_case c2 = {text, "run $INI", 1, "$INI:3: line longer than 65536 bytes"};
    check_error_cases(&c2, 1);
    free(text);
}

/* ---- deprecated spellings: same run, one warning line ---- */

/* Runs `cmd OLD` and `cmd NEW` with outputs in the same folder and checks that
 * the old spelling warns once and writes the same files (the '# command:'
 * header names options by their current names, so it matches too). */
static void check_alias(const char *cmd, const char *old_opts, const char *new_opts,
                        const char *warning, const char *const *files)
{
    static char out[1 << 14];
    char args[1024], path[256];
    char *before[8] = {NULL};
    snprintf(args, sizeof args, "%s %s --out %s/o", cmd, old_opts, tmpdir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s: %s", args, out);
    cr_expect_eq(count_lines(out, "attnflow: warning:"), 1, "%s: %s", args, out);
    cr_expect_not_null(strstr(out, warning), "%s: '%s' not in %s", args, warning, out);
    for (size_t f = 0; files[f]; f++) {
        snprintf(path, sizeof path, "%s/o/%s", tmpdir, files[f]);
        before[f] = slurp_untimed(path);
    }
    snprintf(args, sizeof args, "%s %s --out %s/o", cmd, new_opts, tmpdir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s: %s", args, out);
    cr_expect_null(strstr(out, "warning"), "%s: %s", args, out);
    for (size_t f = 0; files[f]; f++) {
        snprintf(path, sizeof path, "%s/o/%s", tmpdir, files[f]);
        char *after = slurp_untimed(path);
        cr_expect_str_eq(before[f], after, "%s differs between `%s` and `%s`", files[f], old_opts,
                         new_opts);
        free(after);
        free(before[f]);
    }
}

static const char *const convex_files[] = {"summary.txt", "heads.dat", NULL};
#define CONVEX_SMALL "--quiet --samples 10 --classes 2 --max-iters 4"

Test(cli_options, alias_convex_max_iter)
{
    check_alias("convex", "--quiet --samples 10 --n 3 --max-iter 4",
                "--quiet --samples 10 --n 3 --max-iters 4",
                "--max-iter is deprecated, use --max-iters instead", convex_files);
}

Test(cli_options, alias_convex_tokens)
{
    check_alias("convex", CONVEX_SMALL " --tokens 3", CONVEX_SMALL " --n 3",
                "--tokens is deprecated, use --n instead", convex_files);
}

Test(cli_options, alias_convex_dim)
{
    check_alias("convex", CONVEX_SMALL " --dim 3", CONVEX_SMALL " --d 3",
                "--dim is deprecated, use --d instead", convex_files);
}

Test(cli_options, alias_convex_data)
{
    check_alias("convex", "--quiet --samples 12 --max-iters 3 --data pointclouds",
                "--quiet --samples 12 --max-iters 3 --task pointclouds",
                "--data is deprecated, use --task instead", convex_files);
}

Test(cli_options, alias_convex_iters)
{
    check_alias("convex", CONVEX_SMALL " --nonconvex --heads 2 --iters 20",
                CONVEX_SMALL " --nonconvex --heads 2 --steps 20",
                "--iters is deprecated, use --steps instead", convex_files);
}

Test(cli_options, alias_train_n_it)
{
    static const char *const files[] = {"colsums.dat", NULL};
#define TRAIN_SMALL "--quiet --task pointclouds --n-train 12 --n-test 6 --n-points 8 --epochs 1 " \
                    "--model sinkformer --dim 8 --head-dim 8 --mlp 0 --embed-hidden 0"
    check_alias("train", TRAIN_SMALL " --n-it 2", TRAIN_SMALL " --iters 2",
                "--n-it is deprecated, use --iters instead", files);
}

/* Old spellings work in INI files and as run overrides too, warning with the
 * place; the existing experiments use the current names. */
Test(cli_options, alias_in_ini_files_and_run_overrides)
{
    static char out[1 << 14];
    char args[1024], path[256];
    const char *ini = fx_temp_file("[convex]\nquiet = 1\nsamples = 10\nmax-iter = 4\n");
    snprintf(args, sizeof args, "convex %s --out %s/o", ini, tmpdir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    char want[256];
    snprintf(want, sizeof want, "attnflow: warning: %s:4: [convex]: max-iter is deprecated, use "
             "max-iters instead", ini);
    cr_expect_not_null(strstr(out, want), "%s", out);
    snprintf(path, sizeof path, "%s/o/summary.txt", tmpdir);
    char *s = slurp(path);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "iterations 4\n"), "%s", s);
    free(s);
    ini = fx_temp_file("[convex]\nquiet = 1\nsamples = 10\n");
    snprintf(args, sizeof args, "run %s --max-iter 3 --out %s/o", ini, tmpdir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    cr_expect_eq(count_lines(out, "attnflow: warning: --max-iter is deprecated"), 1, "%s", out);
    s = slurp(path);
    cr_expect_not_null(strstr(s, "iterations 3\n"), "%s", s);
    free(s);
}

/* An override is looked up in each section's own table: --iters is the
 * normalisation count of attention and the old spelling of convex --steps. */
Test(cli_options, run_overrides_follow_each_command)
{
    static char out[1 << 14];
    char ini[512], args[1024], path[256];
    snprintf(ini, sizeof ini, "[convex]\nquiet = 1\nsamples = 10\nnonconvex = 1\nheads = 2\n"
             "out = %s/rc\n[attention]\nn = 4\nquiet = 1\nout = %s/ra.dat\n", tmpdir, tmpdir);
    snprintf(args, sizeof args, "run %s --iters 7", fx_temp_file(ini));
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    cr_expect_null(strstr(out, "warning"), "%s", out);
    snprintf(path, sizeof path, "%s/rc/summary.txt", tmpdir);
    char *s = slurp(path);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, " --steps 7 "), "%s", s);
    free(s);
    snprintf(path, sizeof path, "%s/ra.dat", tmpdir);
    s = slurp(path);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, " --iters 7 "), "%s", s);
    free(s);
}

Test(cli_options, experiments_read_without_errors_or_warnings)
{
    static char out[1 << 14];
    glob_t g;
    cr_assert_eq(glob(AF_SRC_ROOT "/experiments/*.ini", 0, NULL, &g), 0);
    cr_assert_geq(g.gl_pathc, 10);
    for (size_t k = 0; k < g.gl_pathc; k++) {
        char args[1024];
        /* the file is read and checked whole before anything runs; the stray
         * word then stops the run */
        snprintf(args, sizeof args, "run %s stray", g.gl_pathv[k]);
        cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 2, "%s", out);
        cr_expect_eq(count_lines(out, "attnflow:"), 1, "%s: %s", g.gl_pathv[k], out);
        cr_expect_not_null(strstr(out, "unexpected argument 'stray'"), "%s: %s", g.gl_pathv[k],
                           out);
    }
    globfree(&g);
}

/* ---- --A: one meaning (a d x d matrix, FILE or inline) everywhere ---- */

static char *data_lines(const char *path)
{
    char *s = slurp(path), *w = s;
    cr_assert_not_null(s, "%s", path);
    for (char *line = s; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        if (line[0] != '#') {
            memmove(w, line, len);
            w += len;
        }
        line += len;
    }
    *w = '\0';
    return s;
}

Test(cli_options, matrix_option_file_or_inline)
{
    static char out[1 << 14];
    char args[1024], p1[256], p2[256], afile[64];
    snprintf(afile, sizeof afile, "%s", fx_temp_file("2 0.5\n0.5 1\n"));
    const char *cmds[][2] = {
        {"attention --quiet --n 5 --eps 2 --A", "--out"},
        {"flow --quiet --n 5 --T 0.05 --dt 0.01 --A", "--out"},
        {"gradflow --quiet --n 5 --T 0.05 --dt 0.01 --A", "--out"},
    };
    for (size_t k = 0; k < 3; k++) {
        snprintf(p1, sizeof p1, "%s/m1.dat", tmpdir);
        snprintf(p2, sizeof p2, "%s/m2.dat", tmpdir);
        snprintf(args, sizeof args, "%s %s %s %s", cmds[k][0], afile, cmds[k][1], p1);
        cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s: %s", args, out);
        snprintf(args, sizeof args, "%s '2,0.5;0.5,1' %s %s", cmds[k][0], cmds[k][1], p2);
        cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s: %s", args, out);
        char *a = data_lines(p1), *b = data_lines(p2);
        cr_expect_gt(strlen(a), 0);
        cr_expect_str_eq(a, b, "%s: FILE and inline --A differ", cmds[k][0]);
        free(a);
        free(b);
    }
    const error_case cases[] = {
        {NULL, "attention --n 4 --A '1,2;3'", 1, "--A: '1,2;3' is not 4 numbers"},
        {NULL, "gradflow --A /nonexistent_A", 1, "cannot open"},
    };
    check_error_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---- output folders ---- */

Test(cli_options, output_folders_are_created_and_removed_on_failure)
{
    static char out[1 << 14];
    char args[1024], path[256];
    snprintf(args, sizeof args, "flow --quiet --n 4 --T 0.02 --dt 0.01 --observables %s/new/a/x.obs "
             "--out %s/new/b/t.dat", tmpdir, tmpdir);
    cr_assert_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s", out);
    snprintf(path, sizeof path, "%s/new/a/x.obs", tmpdir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
    snprintf(path, sizeof path, "%s/new/b/t.dat", tmpdir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
    const char *more[] = {"attention --quiet --n 4 --out $T/at/m.dat --log $T/lg/l.dat",
                          "heat --quiet --T 0.01 --N 16 --d 1 --out $T/ht/h.dat",
                          "gradflow --quiet --n 4 --T 0.02 --out $T/gf/e.dat"};
    for (size_t k = 0; k < 3; k++) {
        expand(args, sizeof args, more[k], "$T", tmpdir);
        cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 0, "%s: %s", args, out);
    }
    snprintf(path, sizeof path, "%s/at/m.dat", tmpdir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
    snprintf(path, sizeof path, "%s/lg/l.dat", tmpdir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
    snprintf(path, sizeof path, "%s/ht/h.dat", tmpdir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
    snprintf(path, sizeof path, "%s/gf/e.dat", tmpdir);
    cr_expect_eq(access(path, F_OK), 0, "%s", path);
    /* a run that fails leaves no new folder behind */
    snprintf(args, sizeof args, "flow --quiet --n 4 --eps -1 --observables %s/gone/deep/x.obs",
             tmpdir);
    cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 1, "%s", out);
    snprintf(path, sizeof path, "%s/gone", tmpdir);
    cr_expect_eq(access(path, F_OK), -1, "%s left behind", path);
    /* a file in the way of a folder */
    snprintf(path, sizeof path, "%s/afile", tmpdir);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    snprintf(args, sizeof args, "flow --quiet --n 4 --out %s/afile/t.dat", tmpdir);
    cr_expect_eq(fx_run_cli(AF_CLI, args, out, sizeof out), 1, "%s", out);
    cr_expect_not_null(strstr(out, "a file is in the way"), "%s", out);
    cr_expect_eq(count_lines(out, "attnflow:"), 1, "%s", out);
}

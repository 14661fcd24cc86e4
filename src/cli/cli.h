/* The CLI layer: one option table per command feeds the command-line parser,
 * the INI reader (section = command name, keys = long option names) and
 * --help (and so the man pages generated from it). Commands read typed values
 * through the cli_get_* helpers, which print a one-line 'attnflow: ...' error
 * on bad values. No mathematics here: commands call the library and write files.
 *
 * Option tables (one per command, shared groups in tokens.h and density_opts.h)
 * are written with these macros, ended by CLI_END:
 *   CLI_OPT("eps", "E", "help")       an option with a value; "E" is the kind of
 *                                      the value --help shows (--eps E): FILE, DIR,
 *                                      N, KIND, LIST, MATRIX, ... never VALUE
 *                                      (a test checks every command's --help).
 *   CLI_FLAG("quiet", "help")         a flag (INI: true/false/1/0/yes/no only).
 *   CLI_OUT("out", "FILE", "help")    a file the command writes: its missing
 *                                      parent folders are created before the run
 *                                      (and removed again if the run fails).
 *   CLI_ALIAS("max-iter", "max-iters") a deprecated old spelling of an entry of
 *                                      the same table: parsed as the new name on
 *                                      the command line, in INI files and in run
 *                                      overrides, with one 'attnflow: warning:'
 *                                      line; --help lists it apart. Commands only
 *                                      ask for the new name.
 * Porting an entry of the former format: {"x", 1, "help"} -> CLI_OPT("x", "KIND",
 * "help"); {"x", 0, "help"} -> CLI_FLAG("x", "help"); an output file -> CLI_OUT;
 * {NULL, 0, NULL} -> CLI_END. A renamed option keeps its old name as a CLI_ALIAS.
 *
 * One meaning per option name across commands (see README "Command-line
 * conventions"): --tokens FILE, --n tokens, --d token dimension, --iters
 * normalisations, --max-iters iteration bound, --A MATRIX (FILE or inline),
 * --task data kind, --data FILE. */
#ifndef AF_CLI_H
#define AF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "attnflow/error.h"

/* Entries of one command's table, deprecated spellings and --quiet/--help included. */
#define CLI_MAX_OPTS 64

/* Exit statuses (docs/cli.md): 1 bad input or options, 2 usage errors
 * (unknown or malformed options, INI keys and sections). */
enum { CLI_OK = 0, CLI_EINPUT = 1, CLI_EUSAGE = 2 };

typedef struct {
    const char *name;     /* long option name, without "--" */
    int has_arg;          /* 0: flag, 1: takes a value */
    const char *help;     /* one line, shown by --help */
    const char *arg;      /* kind of the value for --help: "E", "FILE", ... */
    unsigned flags;       /* CLI_OUT_FILE */
    const char *alias_of; /* deprecated spelling of that option (CLI_ALIAS) */
} cli_opt;

enum { CLI_OUT_FILE = 1u };
#define CLI_OPT(name, arg, help) {name, 1, help, arg, 0, NULL}
#define CLI_FLAG(name, help) {name, 0, help, NULL, 0, NULL}
#define CLI_OUT(name, arg, help) {name, 1, help, arg, CLI_OUT_FILE, NULL}
#define CLI_ALIAS(old, new) {old, 0, NULL, NULL, 0, new}
#define CLI_END {NULL, 0, NULL, NULL, 0, NULL}

typedef struct cli_args cli_args;
typedef int (*cli_run_fn)(const cli_args *args);

typedef struct {
    const char *name;
    const char *summary;
    const char *usage;     /* synopsis line(s) after the command name */
    const cli_opt *opts;   /* terminated by CLI_END */
    cli_run_fn run;
} cli_command;

struct cli_args {
    const cli_command *cmd;
    size_t nopts;
    const char *value[CLI_MAX_OPTS]; /* NULL: not given (an INI flag set to false
                                        reads as not given; a flag given: "") */
    char *owned[CLI_MAX_OPTS];       /* strings duplicated from INI files */
    char command_line[4096];         /* the effective command, for '#' headers */
};

/* Commands (one file each under src/cli/). */
extern const cli_command cli_cmd_attention;
extern const cli_command cli_cmd_flow;
extern const cli_command cli_cmd_train;
extern const cli_command cli_cmd_convex;
extern const cli_command cli_cmd_heat;
extern const cli_command cli_cmd_compare;
extern const cli_command cli_cmd_gradflow;

/* Looks up a command by name (NULL if none); the names, NULL-terminated. */
const cli_command *cli_find_command(const char *name);
const char *const *cli_command_names(void);
/* Index of an option's canonical name in a command's table (with the common
 * options), -1 if none: the slot of args->value. */
long cli_opt_index(const cli_command *cmd, const char *name);
/* Parses argv (after the command name) and runs the command; returns the exit status. */
int cli_dispatch(const cli_command *cmd, int argc, char **argv);
/* Runs every section of an INI file as a command; argv options override. */
int cli_run_ini(const char *path, int argc, char **argv);
/* --help of a command, and of `attnflow run`. */
void cli_print_help(const cli_command *cmd, FILE *fp);
void cli_print_run_help(FILE *fp);
/* The candidate nearest to word (optimal string alignment distance), or NULL
 * when none is close enough to be a likely typo. */
const char *cli_closest(const char *word, const char *const *candidates, size_t n);

/* Prints "attnflow: <message>" on stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message of the last cli_fail ("" if none). */
const char *cli_last_failure(void);
/* Prints the library's last error for a failed status and returns CLI_EINPUT. */
int cli_fail_status(af_status st);

/* A library allocator returned NULL: prints its last message (bad parameters or
 * out of memory; call af_clear_error() before the allocation) and returns CLI_EINPUT. */
int cli_fail_alloc(const char *what);

/* Typed access; each returns 0 on success or prints an error and returns CLI_EINPUT. */
bool cli_given(const cli_args *a, const char *name);
const char *cli_str(const cli_args *a, const char *name, const char *def);
bool cli_flag(const cli_args *a, const char *name);
int cli_double(const cli_args *a, const char *name, double def, double *out);
int cli_positive(const cli_args *a, const char *name, double def, double *out); /* > 0, finite */
int cli_size(const cli_args *a, const char *name, size_t def, size_t *out);       /* >= 1 */
int cli_ulong(const cli_args *a, const char *name, unsigned long def, unsigned long *out);
/* Value among choices (NULL-terminated); *out is its index. */
int cli_choice(const cli_args *a, const char *name, const char *const *choices,
               int def, int *out);

/* mkdir -p for an output directory option; 0 or a printed error (CLI_EINPUT). */
int cli_make_dirs(const char *option, const char *path);
/* The same, noting the folders it created (made may be NULL), so that a failed
 * run can remove them again with cli_made_dirs_release(made, true). */
typedef struct {
    char *path[16];
    size_t count;
} cli_made_dirs;
int cli_make_dirs_noting(const char *option, const char *path, cli_made_dirs *made);
void cli_made_dirs_release(cli_made_dirs *made, bool remove);

/* Numbers separated by ',' or ';' (blanks allowed around them) or by blanks
 * alone: "1,2", "1; 2", "1 2". Stores the first cap numbers in out and returns
 * how many the string holds (which may exceed cap), 0 for an empty string, -1 if
 * a field is not a finite number (also out of range, empty fields, "1,"). */
long cli_parse_list(const char *s, double *out, size_t cap);
/* Number of steps ceil(T / dt) of a time loop (0 for T = 0); 0 or a printed
 * error (CLI_EINPUT) if T < 0, not finite, or the count exceeds max. */
int cli_steps(const char *what, double T, double dt, double max, size_t *n);

/* Progress on stderr (unless --quiet): "name: done/total, elapsed, left". */
typedef struct {
    const char *label;
    size_t total;
    double t0, last;
    bool quiet;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, size_t total, bool quiet);
void cli_progress_update(cli_progress *p, size_t done);
void cli_progress_end(cli_progress *p);
/* Ends a shown progress line without a summary (cli_fail also starts a new
 * line itself when a progress line is open) and silences p. */
void cli_progress_abort(cli_progress *p);
double cli_now(void);

#endif

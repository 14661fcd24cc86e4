/* The CLI layer: one option table per command feeds both getopt_long (the
 * command line) and inih (INI files, section = command name, keys = long
 * option names). Commands read typed values through the cli_get_* helpers,
 * which print a one-line 'attnflow: ...' error on bad values. No mathematics
 * here: commands call the library and write files. */
#ifndef AF_CLI_H
#define AF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "attnflow/error.h"

#define CLI_MAX_OPTS 64

/* Exit statuses (CLI.md): 1 bad input or options, 2 usage errors. */
enum { CLI_OK = 0, CLI_EINPUT = 1, CLI_EUSAGE = 2 };

typedef struct {
    const char *name;  /* long option name, without "--" */
    int has_arg;       /* 0: flag, 1: takes a value */
    const char *help;  /* one line, shown by --help */
} cli_opt;

typedef struct cli_args cli_args;
typedef int (*cli_run_fn)(const cli_args *args);

typedef struct {
    const char *name;
    const char *summary;
    const char *usage;     /* synopsis line(s) after the command name */
    const cli_opt *opts;   /* terminated by {NULL} */
    cli_run_fn run;
} cli_command;

struct cli_args {
    const cli_command *cmd;
    size_t nopts;
    const char *value[CLI_MAX_OPTS]; /* NULL: not given */
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

/* Looks up a command by name (NULL if none). */
const cli_command *cli_find_command(const char *name);
/* Parses argv (after the command name) and runs the command; returns the exit status. */
int cli_dispatch(const cli_command *cmd, int argc, char **argv);
/* Runs every section of an INI file as a command; argv options override. */
int cli_run_ini(const char *path, int argc, char **argv);

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

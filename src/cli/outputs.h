/* The output rule of every command (docs/robustness.md), kept here:
 *  - every output is written to a temporary name next to its target, and
 *    all of them are renamed into place together, only when the command
 *    succeeds (cli_outputs_commit);
 *  - on an error (cli_outputs_abort) no new file remains and every
 *    pre-existing file is untouched; output directories created for the run
 *    are removed again if they are still empty;
 *  - two outputs naming the same file, or an output naming a directory, are
 *    refused when the outputs are declared, before any work;
 *  - a long run that stops for a numerical reason or on SIGINT/SIGTERM may
 *    keep what it computed up to its last saved step: cli_outputs_commit
 *    with a status writes '# status: <status>' as the second header line of
 *    each file, and the command exits CLI_ESTOPPED (3);
 *  - a signal never leaves a temporary file: commands that poll
 *    cli_stop_requested() stop at their next step; any other command is
 *    ended by the signal after its temporaries are removed. */
#ifndef AF_CLI_OUTPUTS_H
#define AF_CLI_OUTPUTS_H

#include <stddef.h>
#include <stdio.h>
#include "attnflow/io.h"
#include "cli.h"

/* Exit status of a run stopped early that kept its partial, complete files. */
enum { CLI_ESTOPPED = 3 };

#define CLI_MAX_OUTPUTS 16

typedef struct {
    size_t count;
    struct {
        const char *option; /* "out", "observables", ... for messages */
        char *path;
        af_file *file;
    } out[CLI_MAX_OUTPUTS];
    cli_made_dirs made; /* directories created by this run */
} cli_outputs;

void cli_outputs_init(cli_outputs *o);

/* Declares the output of option at path and opens its temporary; *fp is the
 * stream to write. Refuses (printed error, CLI_EUSAGE) a path that another
 * output of the run already names, and (CLI_EINPUT) a directory or a path
 * that cannot be created. */
int cli_outputs_open(cli_outputs *o, const char *option, const char *path, FILE **fp);

/* mkdir -p for an output directory of option; the directories it creates
 * are removed by cli_outputs_abort if still empty. 0 or a printed error. */
int cli_outputs_dir(cli_outputs *o, const char *option, const char *dir);

/* dir/name into buf (cap bytes); 0 or a printed error if too long. */
int cli_outputs_join(char *buf, size_t cap, const char *option, const char *dir,
                     const char *name);

/* Flushes and closes every output, then renames all into place. status NULL:
 * a complete run; otherwise '# status: <status>' is added after the first
 * line of each file. On a write error nothing is renamed (printed error,
 * CLI_EINPUT). Every output is consumed either way. */
int cli_outputs_commit(cli_outputs *o, const char *status);

/* Removes every temporary and the empty directories this run created. */
void cli_outputs_abort(cli_outputs *o);

/* Signals: SIGINT and SIGTERM remove the temporaries and end the program,
 * unless a command has called cli_stop_polling(1): then the first signal
 * only sets the flag that cli_stop_requested() returns (the signal number)
 * and the command stops at its next step; a second one ends it. */
void cli_signals_install(void);
void cli_stop_polling(int on);
int cli_stop_requested(void);

#endif

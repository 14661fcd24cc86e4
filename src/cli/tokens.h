/* Token sources shared by commands (flow, attention, ...): either
 *   --tokens FILE           one token per line (af_read_matrix format), or
 *   --init KIND --n N --d D [--seed S] [--rho0 R] [--mean M] [--cov S]
 *          [--components K] [--spread S] [--width W]
 * Put CLI_TOKEN_OPTS in a command's option table, then call cli_tokens(). */
#ifndef AF_CLI_TOKENS_H
#define AF_CLI_TOKENS_H

#include <stddef.h>
#include <stdio.h>
#include "cli.h"

#define CLI_TOKEN_OPTS                                                                          \
    CLI_OPT("tokens", "FILE", "read the tokens from FILE (one token per line, '#' lines ignored)"),       \
    CLI_OPT("init", "KIND", "initial cloud gaussian|uniform|mixture|sphere|equiangular (default gaussian)"), \
    CLI_OPT("n", "N", "number of tokens for --init (default 64)"),                                     \
    CLI_OPT("d", "D", "dimension for --init (default 2)"),                                             \
    CLI_OPT("seed", "S", "seed of every random draw (default 1)"),                                     \
    CLI_OPT("rho0", "R", "equiangular: pairwise inner product (default 0.1)"),                         \
    CLI_OPT("mean", "M", "gaussian mean: a number, d numbers 'a,b,...', or a file (default 0)"),       \
    CLI_OPT("cov", "C", "gaussian covariance: s (s I), d numbers (diagonal), or a d x d file (default I)"), \
    CLI_OPT("components", "K", "mixture: number of components (default 3)"),                          \
    CLI_OPT("spread", "S", "mixture: std of the component centres (default 2)"),                       \
    CLI_OPT("width", "W", "mixture: std within a component (default 0.5)")

/* Reads or draws the tokens: *X (n x d, row-major) is malloc'ed, owned by
 * the caller. Returns 0, or prints a one-line error and returns the exit
 * status (CLI_EINPUT / CLI_EUSAGE). */
int cli_tokens(const cli_args *a, double **X, size_t *n, size_t *d);

/* '# tokens: ...' and '# seed: ...' metadata lines describing the source. */
void cli_tokens_meta(const cli_args *a, FILE *fp);

/* A d x d matrix option (--A MATRIX, --V MATRIX): a FILE (one row per line),
 * or the rows inline 'a,b;c,d' (d x d numbers) when no file has that name.
 * *M malloc'ed, or NULL when the option is absent. Returns 0 or the exit
 * status after a one-line error. */
int cli_square_matrix(const cli_args *a, const char *name, size_t d, double **M);

#endif

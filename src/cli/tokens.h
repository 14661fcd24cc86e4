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
    {"tokens", 1, "read the tokens from FILE (one token per line, '#' lines ignored)"},       \
    {"init", 1, "initial cloud gaussian|uniform|mixture|sphere|equiangular (default gaussian)"}, \
    {"n", 1, "number of tokens for --init (default 64)"},                                     \
    {"d", 1, "dimension for --init (default 2)"},                                             \
    {"seed", 1, "seed of every random draw (default 1)"},                                     \
    {"rho0", 1, "equiangular: pairwise inner product (default 0.1)"},                         \
    {"mean", 1, "gaussian mean: a number, d numbers 'a,b,...', or a file (default 0)"},       \
    {"cov", 1, "gaussian covariance: s (s I), d numbers (diagonal), or a d x d file (default I)"}, \
    {"components", 1, "mixture: number of components (default 3)"},                          \
    {"spread", 1, "mixture: std of the component centres (default 2)"},                       \
    {"width", 1, "mixture: std within a component (default 0.5)"}

/* Reads or draws the tokens: *X (n x d, row-major) is malloc'ed, owned by
 * the caller. Returns 0, or prints a one-line error and returns the exit
 * status (CLI_EINPUT / CLI_EUSAGE). */
int cli_tokens(const cli_args *a, double **X, size_t *n, size_t *d);

/* '# tokens: ...' and '# seed: ...' metadata lines describing the source. */
void cli_tokens_meta(const cli_args *a, FILE *fp);

/* A d x d matrix option (--A FILE, --V FILE): *M malloc'ed, or NULL when the
 * option is absent. Returns 0 or the exit status after a one-line error. */
int cli_square_matrix(const cli_args *a, const char *name, size_t d, double **M);

#endif

/* The --backend option shared by attention, flow, compare and gradflow:
 *   --backend auto|dense|tiled   (auto: dense while its attention workspace
 *                                 fits in a quarter of the physical memory,
 *                                 tiled beyond)
 * Put CLI_BACKEND_OPTS in a command's option table, call cli_backend() once
 * the sizes are known, and cli_backend_meta() in every data file header. */
#ifndef AF_CLI_BACKEND_OPTS_H
#define AF_CLI_BACKEND_OPTS_H

#include <stdio.h>
#include "attnflow/backend.h"
#include "cli.h"

#define CLI_BACKEND_OPTS                                                                        \
    {"backend", 1, "attention backend auto|dense|tiled (default auto: dense (n x n stored) "   \
                   "while it fits in 1/4 of the memory, tiled (matrix-free, O(n d)) beyond)"}, \
    {"precision", 1, "double|single (single: float32 exps, double sums; tiled backend, which "  \
                     "auto then picks) (default double)"}

typedef struct {
    const af_backend_type *type;
    af_precision precision;
    int automatic;   /* chosen by auto */
    double bytes;    /* attention workspace estimate (af_backend_bytes) */
    double budget;   /* auto's limit in bytes */
} cli_backend_choice;

/* Reads --backend and --precision for an n x d problem with this
 * normalisation. 0, or a printed error: CLI_EINPUT for an unknown backend,
 * CLI_EUSAGE for a precision other than double|single or single on dense. */
int cli_backend(const cli_args *a, size_t n, size_t d, af_attn_norm norm, cli_backend_choice *c);
/* Refuses (CLI_EUSAGE, one line) an output that needs the n x n matrix on
 * the tiled backend; what names it ("--out (writes K)"). 0 otherwise. */
int cli_backend_needs_matrix(const cli_backend_choice *c, const char *what);
/* '# backend: ...' with the memory estimate. */
void cli_backend_meta(FILE *fp, const cli_backend_choice *c);

#endif

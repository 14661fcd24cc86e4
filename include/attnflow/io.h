/* Text input and gnuplot-friendly output.
 * Readers report file:line in every error. Writers go through af_file, which
 * writes to a temporary file in the target's directory and renames it into
 * place on af_file_commit(), so a failed run never leaves a half-written
 * file behind. */
#ifndef AF_IO_H
#define AF_IO_H

#include <stddef.h>
#include <stdio.h>
#include "attnflow/error.h"

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* Reads a whitespace-separated numeric matrix: one row per line, '#' lines
 * and blank lines ignored. Rejects ragged rows, non-numbers, NaN/inf and
 * empty files. On success *data (row-major rows x cols) is malloc'ed and
 * owned by the caller. */
af_status af_read_matrix(const char *path, double **data, size_t *rows, size_t *cols);

/* Same from an open stream; name is used in messages. */
af_status af_read_matrix_stream(FILE *fp, const char *name, double **data,
                                size_t *rows, size_t *cols);

/* Text inputs are text: a NUL byte or a control byte other than tab, CR and
 * LF in line lineno (len bytes) is an AF_EFORMAT error naming
 * name:line:column. Every reader calls it on every line. */
af_status af_check_text_line(const char *name, size_t lineno, const char *line, size_t len);

/* Reads the last block of a grid density file: rows 'x rho' or 'x1 x2 rho',
 * or, when a '# columns:' line names them, the columns before 'rho' as
 * coordinates and 'rho' as the density (a file written by `attnflow heat
 * --out`, with its 'exact' column, reads back). Blocks are separated by a
 * '# t:' line or two blank lines (single blank lines separate 2-D grid
 * rows). Coordinates must be finite. On success *table (malloc'ed) holds
 * rows x cols numbers, cols = coordinates + 1. */
af_status af_read_grid_table(const char *path, double **table, size_t *rows, size_t *cols);
af_status af_read_grid_table_stream(FILE *fp, const char *name, double **table, size_t *rows,
                                    size_t *cols);

/* Atomic output file. */
typedef struct af_file af_file;
af_status af_file_open(af_file **file, const char *path);
FILE *af_file_stream(af_file *file);
af_status af_file_commit(af_file *file);   /* flush, close, rename; frees file */
void af_file_abort(af_file *file);         /* close, remove temporary; frees file */
const char *af_file_path(const af_file *file);      /* the target path */
const char *af_file_temp_path(const af_file *file); /* the temporary it is written to */
/* Removes the temporary of every af_file open now (they stay open and must
 * still be aborted). Async-signal-safe: meant for a SIGINT/SIGTERM handler
 * of the program (the library installs none), so that a killed run leaves
 * no temporary file behind. */
void af_file_remove_temporaries(void);

/* Metadata header: "# attnflow <version>" and "# command: <command>". */
void af_write_header(FILE *fp, const char *command);
/* One "# key: value" metadata line. */
void af_write_meta(FILE *fp, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A rows x cols matrix, one row per line, '%.17g' (full double precision). */
void af_write_matrix(FILE *fp, size_t rows, size_t cols, const double *a);
/* One number in '%.17g' ("nan", "inf" for non-finite values). */
void af_write_double(FILE *fp, double x);

/* Checks that all n values are finite; on failure names the first bad index. */
af_status af_check_finite(const char *what, size_t n, const double *a);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

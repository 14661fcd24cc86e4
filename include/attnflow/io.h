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

/* Atomic output file. */
typedef struct af_file af_file;
af_status af_file_open(af_file **file, const char *path);
FILE *af_file_stream(af_file *file);
af_status af_file_commit(af_file *file);   /* flush, close, rename; frees file */
void af_file_abort(af_file *file);         /* close, remove temporary; frees file */

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

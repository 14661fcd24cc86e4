/* Error codes and messages. Every library call that can fail returns an
 * af_status; on failure a readable, specific message for the calling thread
 * is available from af_last_error(). The library never prints or exits. */
#ifndef AF_ERROR_H
#define AF_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif
/* Exported from libattnflow.so (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

typedef enum {
    AF_SUCCESS = 0,
    AF_EINVAL,   /* invalid argument (size 0, eps <= 0, unknown name, ...) */
    AF_EDOM,     /* NaN or infinite input value */
    AF_ENOMEM,   /* allocation failed */
    AF_EIO,      /* file could not be opened, read or written */
    AF_EFORMAT,  /* malformed file: ragged rows, not a number, empty */
    AF_EBADLEN,  /* sizes do not match (matrix of the wrong shape) */
    AF_EMAXITER, /* iteration limit reached before the tolerance */
    AF_ENUMERIC, /* numerical breakdown (overflow, non-finite result) */
    AF_ELIB      /* an external library (FFTW, GSL, LAPACK) failed */
} af_status;

/* Generic text of a code, e.g. "invalid argument". */
const char *af_strerror(af_status code);

/* Message of the last failure in this thread, e.g.
 * "tokens.txt:3: expected 2 numbers, found 3". Empty if none. */
const char *af_last_error(void);

/* Records a formatted message for this thread and returns code, so library
 * code can write `return af_error(AF_EINVAL, "eps must be > 0 (got %g)", e);`. */
af_status af_error(af_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the message of this thread. */
void af_clear_error(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif

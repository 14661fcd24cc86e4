/* Per-thread error message, like errno but with text: the caller decides
 * whether and how to report it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include "attnflow/error.h"

/* GSL's default error handler calls abort(): a truncated file given to
 * gsl_rng_fread, a failed gsl_matrix_alloc or a singular decomposition would
 * kill the host program. The library checks every GSL return code and turns
 * it into an af_status, so the handler is switched off once, when the
 * library is loaded (this object holds af_error, which every module uses,
 * so a static link always includes it). A host program that wants GSL's
 * handler back can set its own after start-up; the calls that can fail in
 * normal use (decompositions, the ODE stepper) also switch it off around
 * themselves. */
__attribute__((constructor)) static void af_gsl_handler_off(void)
{
    gsl_set_error_handler_off();
}

static _Thread_local char last_message[1024];

const char *af_strerror(af_status code)
{
    switch (code) {
    case AF_SUCCESS:  return "success";
    case AF_EINVAL:   return "invalid argument";
    case AF_EDOM:     return "NaN or infinite value";
    case AF_ENOMEM:   return "out of memory";
    case AF_EIO:      return "input/output error";
    case AF_EFORMAT:  return "malformed input";
    case AF_EBADLEN:  return "size mismatch";
    case AF_EMAXITER: return "iteration limit reached";
    case AF_ENUMERIC: return "numerical breakdown";
    case AF_ELIB:     return "external library failure";
    }
    return "unknown error";
}

const char *af_last_error(void) { return last_message; }

void af_clear_error(void) { last_message[0] = '\0'; }

af_status af_error(af_status code, const char *fmt, ...)
{
    /* Formatted into a separate buffer first: callers may pass
     * af_last_error() itself as an argument ("step 2: %s", af_last_error()),
     * and vsnprintf must not read the buffer it is writing. */
    char buf[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_message, buf, sizeof buf);
    return code;
}

/* Per-thread error message, like errno but with text: the caller decides
 * whether and how to report it. */
#include <stdarg.h>
#include <stdio.h>
#include "attnflow/error.h"

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
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return code;
}

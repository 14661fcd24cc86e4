/* Allocation of arrays whose sizes come from input (options, files): the
 * byte count a * b * elem is computed with overflow checks, and a count
 * that does not fit in size_t gives NULL like a failed malloc, so every
 * caller's "out of memory" path also covers absurd sizes instead of a
 * wrapped, too small buffer. */
#ifndef AF_CLI_ALLOC_H
#define AF_CLI_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* *out = a * b; false if the product overflows size_t. */
static inline bool cli_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* malloc(a * b * elem), NULL on overflow (or a zero count: no caller wants one). */
static inline void *cli_alloc(size_t a, size_t b, size_t elem)
{
    size_t ab, bytes;
    if (!cli_mul_ok(a, b, &ab) || !cli_mul_ok(ab, elem, &bytes) || bytes == 0)
        return NULL;
    return malloc(bytes);
}

/* calloc of a * b elements of elem bytes, NULL on overflow. */
static inline void *cli_calloc(size_t a, size_t b, size_t elem)
{
    size_t ab;
    if (!cli_mul_ok(a, b, &ab) || ab == 0)
        return NULL;
    return calloc(ab, elem);
}

#endif

/* Streaming (non-temporal) stores for data written once and read much
 * later, such as a stored kernel of hundreds of MB: an ordinary store
 * first reads the cache line it writes into (read for ownership), so
 * writing a large array costs twice its bytes in memory traffic and evicts
 * the working set; a streaming store writes the line without reading it.
 * x86 only (SSE2, part of x86-64); elsewhere plain stores. The caller ends
 * its writes with af_stream_fence() before another thread may read them. */
#ifndef AF_STREAM_H
#define AF_STREAM_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* dst[q] = src[q], q < len. */
static inline void af_stream_doubles(double *dst, const double *src, size_t len)
{
    size_t q = 0;
#if defined(__SSE2__)
    for (; q < len && ((uintptr_t)(dst + q) & 15) != 0; q++) /* to a 16-byte boundary */
        dst[q] = src[q];
    for (; q + 2 <= len; q += 2)
        _mm_stream_pd(dst + q, _mm_loadu_pd(src + q));
#endif
    for (; q < len; q++)
        dst[q] = src[q];
}

/* dst[q] = (float)src[q], q < len (round to nearest). */
static inline void af_stream_floats(float *dst, const double *src, size_t len)
{
    size_t q = 0;
#if defined(__SSE2__)
    for (; q < len && ((uintptr_t)(dst + q) & 15) != 0; q++)
        dst[q] = (float)src[q];
    for (; q + 4 <= len; q += 4) {
        const __m128 lo = _mm_cvtpd_ps(_mm_loadu_pd(src + q));
        const __m128 hi = _mm_cvtpd_ps(_mm_loadu_pd(src + q + 2));
        _mm_stream_ps(dst + q, _mm_movelh_ps(lo, hi));
    }
#endif
    for (; q < len; q++)
        dst[q] = (float)src[q];
}

static inline void af_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

#endif

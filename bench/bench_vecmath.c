/* bench_vecmath: which vector exp the library should call, by measurement.
 *
 * The tiled backend is exp-bound (bench_backend), so the choice of vector
 * math library sets its speed. Candidates, all Debian packages:
 *   libmvec  glibc's vector variants, reached through `#pragma omp simd`
 *            (src/core/af_simd_math.h): what the library calls today;
 *   SLEEF    libsleef-dev, called here through its intrinsics API at the
 *            same widths (Sleef_expd8_u10avx512f, ..., 1-ULP variants, the
 *            accuracy class of libmvec's).
 * For each: ns per exp on one thread and on all threads, over an L1-resident
 * array, for "near" arguments in [-30, 0] (the bulk of a max-shifted score
 * row) and "far" ones in [-1000, 0] (L2 scores at small eps: glibc finishes
 * lanes whose result is subnormal or zero with its scalar exp); and the
 * largest error in ULPs against long double expl over the same ranges.
 *
 * Lines: name value unit baseline ratio; baseline = libmvec at the same
 * width, precision and range in the same run (ratio < 1: SLEEF faster).
 * Widths not compiled for (no AVX-512 / AVX2 in -march) are skipped with a
 * line saying so. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include <sleef.h>
#include "bench_util.h"

#include "core/af_simd_math.h" /* glibc's vector exp/expf for omp simd loops */

#define LEN 4096 /* per thread, in L1 */
#define REPS 4000

typedef enum { MVEC_D, MVEC_F, SLEEF_D, SLEEF_F } kind;

static volatile double sink;

/* One pass of exp over a[] (double) or b[] (float) into the same array's sum. */
static double pass(kind k, const double *a, const float *b)
{
    double s = 0;
    switch (k) {
    case MVEC_D: {
#pragma omp simd reduction(+ : s)
        for (size_t j = 0; j < LEN; j++)
            s += exp(a[j]);
        break;
    }
    case MVEC_F: {
        float sf = 0;
#pragma omp simd reduction(+ : sf)
        for (size_t j = 0; j < LEN; j++)
            sf += expf(b[j]);
        s = sf;
        break;
    }
    case SLEEF_D: {
#if defined(__AVX512F__)
        __m512d acc = _mm512_setzero_pd();
        for (size_t j = 0; j < LEN; j += 8)
            acc = _mm512_add_pd(acc, Sleef_expd8_u10avx512f(_mm512_loadu_pd(a + j)));
        s = _mm512_reduce_add_pd(acc);
#elif defined(__AVX2__)
        __m256d acc = _mm256_setzero_pd();
        for (size_t j = 0; j < LEN; j += 4)
            acc = _mm256_add_pd(acc, Sleef_expd4_u10avx2(_mm256_loadu_pd(a + j)));
        double t[4];
        _mm256_storeu_pd(t, acc);
        s = t[0] + t[1] + t[2] + t[3];
#endif
        break;
    }
    case SLEEF_F: {
#if defined(__AVX512F__)
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < LEN; j += 16)
            acc = _mm512_add_ps(acc, Sleef_expf16_u10avx512f(_mm512_loadu_ps(b + j)));
        s = _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__)
        __m256 acc = _mm256_setzero_ps();
        for (size_t j = 0; j < LEN; j += 8)
            acc = _mm256_add_ps(acc, Sleef_expf8_u10avx2(_mm256_loadu_ps(b + j)));
        float t[8];
        _mm256_storeu_ps(t, acc);
        for (int q = 0; q < 8; q++)
            s += t[q];
#endif
        break;
    }
    }
    return s;
}

static void fill(double lo, double *a, float *b)
{
    /* a fixed permutation of an even grid over [lo, 0]: every lane sees the
     * whole range, as in a score row of an unsorted cloud */
    for (size_t j = 0; j < LEN; j++) {
        const size_t q = (j * 2654435761u) % LEN;
        a[j] = lo * (double)q / (LEN - 1);
        b[j] = (float)a[j];
    }
}

/* ns per exp, all `threads` together. */
static double rate(kind k, double lo, int threads)
{
    double t0 = now(), s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
    {
        double *a = malloc(LEN * sizeof *a);
        float *b = malloc(LEN * sizeof *b);
        fill(lo, a, b);
        for (int r = 0; r < REPS; r++) {
            s += pass(k, a, b);
            a[r % LEN] += 0.0; /* keeps the passes from being merged */
        }
        free(a);
        free(b);
    }
    sink = s;
    return (now() - t0) * 1e9 / ((double)REPS * LEN * threads);
}

/* Largest error in ULPs of the result's precision against expl. */
static double ulps(kind k, double lo)
{
    enum { N = 1 << 16 };
    static double a[N], ra[N];
    static float b[N], rb[N];
    for (size_t j = 0; j < N; j++) {
        a[j] = lo * (double)j / (N - 1);
        b[j] = (float)a[j];
    }
    switch (k) {
    case MVEC_D:
#pragma omp simd
        for (size_t j = 0; j < N; j++)
            ra[j] = exp(a[j]);
        break;
    case MVEC_F:
#pragma omp simd
        for (size_t j = 0; j < N; j++)
            rb[j] = expf(b[j]);
        break;
    case SLEEF_D:
#if defined(__AVX512F__)
        for (size_t j = 0; j < N; j += 8)
            _mm512_storeu_pd(ra + j, Sleef_expd8_u10avx512f(_mm512_loadu_pd(a + j)));
#elif defined(__AVX2__)
        for (size_t j = 0; j < N; j += 4)
            _mm256_storeu_pd(ra + j, Sleef_expd4_u10avx2(_mm256_loadu_pd(a + j)));
#endif
        break;
    case SLEEF_F:
#if defined(__AVX512F__)
        for (size_t j = 0; j < N; j += 16)
            _mm512_storeu_ps(rb + j, Sleef_expf16_u10avx512f(_mm512_loadu_ps(b + j)));
#elif defined(__AVX2__)
        for (size_t j = 0; j < N; j += 8)
            _mm256_storeu_ps(rb + j, Sleef_expf8_u10avx2(_mm256_loadu_ps(b + j)));
#endif
        break;
    }
    double worst = 0;
    for (size_t j = 0; j < N; j++) {
        const int single = k == MVEC_F || k == SLEEF_F;
        const long double ref = expl(single ? (long double)b[j] : (long double)a[j]);
        const long double got = single ? rb[j] : ra[j];
        /* one ULP at ref, floored at the smallest subnormal spacing */
        const long double u = single ? fmaxl(ldexpl(1, ilogbl(ref) - 23), ldexpl(1, -149))
                                     : fmaxl(ldexpl(1, ilogbl(ref) - 52), ldexpl(1, -1074));
        if (ref == 0)
            continue;
        worst = fmax(worst, (double)(fabsl(got - ref) / u));
    }
    return worst;
}

int main(void)
{
#if !defined(__AVX512F__) && !defined(__AVX2__)
    puts("sleef_comparison skipped: built without AVX2/AVX-512 (-march); nan nan nan");
    return 0;
#endif
    const int all = omp_get_max_threads();
    const char *width = 0;
#if defined(__AVX512F__)
    width = "avx512";
#else
    width = "avx2";
#endif
    static const struct {
        const char *name;
        double lo;
    } ranges[] = {{"near", -30.0}, {"far", -1000.0}};
    static const struct {
        const char *name;
        kind mvec, sleef;
    } precs[] = {{"double", MVEC_D, SLEEF_D}, {"float", MVEC_F, SLEEF_F}};
    for (size_t p = 0; p < 2; p++)
        for (size_t r = 0; r < 2; r++) {
            const double lo = precs[p].mvec == MVEC_F && ranges[r].lo < -100 ? -100.0 : ranges[r].lo;
            for (int th = 1; th <= all; th += all > 1 ? all - 1 : 1) {
                const double m = rate(precs[p].mvec, lo, th), s = rate(precs[p].sleef, lo, th);
                printf("libmvec_exp_%s_%s_%s_t%d %.4g ns nan nan\n", precs[p].name, ranges[r].name,
                       width, th, m);
                printf("sleef_exp_%s_%s_%s_t%d %.4g ns %.4g %.2f\n", precs[p].name, ranges[r].name,
                       width, th, s, m, s / m);
            }
            printf("libmvec_exp_%s_%s_maxulp %.3g ulp nan nan\n", precs[p].name, ranges[r].name,
                   ulps(precs[p].mvec, lo));
            printf("sleef_exp_%s_%s_maxulp %.3g ulp nan nan\n", precs[p].name, ranges[r].name,
                   ulps(precs[p].sleef, lo));
            fflush(stdout);
        }
    return 0;
}

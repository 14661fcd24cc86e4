/* Vector math from glibc's libmvec without -ffast-math.
 * glibc announces its SIMD variants of exp/log (_ZGVeN8v_exp, ...) to the
 * compiler only under __FAST_MATH__, and -ffast-math would also break the
 * NaN/inf checks this library relies on. Declaring the variants ourselves
 * lets `#pragma omp simd` loops call them; with -fno-math-errno the scalar
 * and vector functions have the same semantics (errno aside). libm.so's
 * linker script pulls in libmvec.so as needed. Include this header instead
 * of <math.h> in files with hot exp/log loops. */
#ifndef AF_SIMD_MATH_H
#define AF_SIMD_MATH_H
#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__FAST_MATH__)
#pragma omp declare simd notinbranch
double exp(double x);
#pragma omp declare simd notinbranch
double log(double x);
#pragma omp declare simd notinbranch
float expf(float x);
#endif

#endif

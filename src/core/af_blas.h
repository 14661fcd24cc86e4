/* CBLAS declarations. The symbols come from OpenBLAS (linked -lopenblas);
 * the declarations from GSL's gsl_cblas.h, because OpenBLAS's own cblas.h
 * redeclares the CBLAS enums that every GSL matrix header also declares,
 * so the two cannot be included in one file. Same ABI. */
#ifndef AF_BLAS_H
#define AF_BLAS_H
#include <gsl/gsl_cblas.h>

/* OpenBLAS's thread control (declared in its cblas.h, which we cannot include). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif

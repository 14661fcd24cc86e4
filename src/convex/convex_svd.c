/* SVDs for the convex attention solver: singular-value thresholding (the
 * proximal map of the nuclear norm), nuclear and spectral norms.
 *
 * Two backends behind one layout (U rows x k, Vt k x cols, row-major,
 * values descending):
 *  - LAPACK dgesdd (divide and conquer) from the OpenBLAS library the
 *    project links anyway (Fortran symbol, no LAPACKE needed); 8x faster
 *    than GSL on the 256 x 160 matrices of d = 16, c = 10 (bench_convex);
 *  - GSL's Golub-Reinsch gsl_linalg_SV_decomp, the reference and the
 *    fallback when dgesdd reports a failure. */
#include "convex_internal.h" /* first: it settles the cblas.h / gsl_cblas.h clash */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>

/* LAPACK (Fortran ABI; the trailing length is the hidden CHARACTER length
 * gfortran passes, harmless for a C-translated LAPACK) */
extern void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda,
                    double *s, double *u, const int *ldu, double *vt, const int *ldvt,
                    double *work, const int *lwork, int *iwork, int *info, size_t jobz_len);

void cx_svd_free(cx_svd *s)
{
    if (!s)
        return;
    free(s->sv);
    free(s->U);
    free(s->Vt);
    free(s->a);
    free(s->work);
    free(s->iwork);
    if (s->A) gsl_matrix_free(s->A);
    if (s->V) gsl_matrix_free(s->V);
    if (s->S) gsl_vector_free(s->S);
    if (s->gwork) gsl_vector_free(s->gwork);
    if (s->Gram) gsl_matrix_free(s->Gram);
    if (s->eval) gsl_vector_free(s->eval);
    if (s->eig) gsl_eigen_symm_free(s->eig);
    free(s);
}

cx_svd *cx_svd_alloc(size_t rows, size_t cols, af_convex_svd backend)
{
    cx_svd *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rows = rows;
    s->cols = cols;
    s->k = rows < cols ? rows : cols;
    s->backend = backend;
    s->trans = rows < cols; /* GSL's SVD needs M >= N */
    size_t M = s->trans ? cols : rows, N = s->k;
    int ok = (s->sv = malloc(N * sizeof *s->sv)) && (s->U = malloc(rows * N * sizeof *s->U))
             && (s->Vt = malloc(N * cols * sizeof *s->Vt)) && (s->A = gsl_matrix_alloc(M, N))
             && (s->V = gsl_matrix_alloc(N, N)) && (s->S = gsl_vector_alloc(N))
             && (s->gwork = gsl_vector_alloc(N)) && (s->Gram = gsl_matrix_alloc(N, N))
             && (s->eval = gsl_vector_alloc(N)) && (s->eig = gsl_eigen_symm_alloc(N));
    if (ok && backend == AF_CONVEX_SVD_LAPACK) {
        /* workspace query for the largest job ('S', vectors) */
        int m = (int)cols, n = (int)rows, lda = m, ldu = m, ldvt = (int)N, lwork = -1, info = 0;
        double q = 0;
        ok = (s->a = malloc(rows * cols * sizeof *s->a)) && (s->iwork = malloc(8 * N * sizeof *s->iwork));
        if (ok) {
            dgesdd_("S", &m, &n, s->a, &lda, s->sv, s->Vt, &ldu, s->U, &ldvt, &q, &lwork, s->iwork,
                    &info, 1);
            s->lwork = (int)q + 1;
            ok = info == 0 && (s->work = malloc((size_t)s->lwork * sizeof *s->work));
        }
    }
    if (!ok) {
        cx_svd_free(s);
        return NULL;
    }
    return s;
}

/* LAPACK sees the row-major rows x cols input as the column-major
 * cols x rows matrix A^T = U' S V'^T, so A = V' S U'^T: with U' written to
 * s->Vt (ldu = cols) and V'^T to s->U (ldvt = k), both buffers are, read
 * row-major, exactly U (rows x k) and V^T (k x cols) of A. */
static int lapack_run(cx_svd *s, const double *in, int vectors)
{
    int m = (int)s->cols, n = (int)s->rows, lda = m, ldu = m, ldvt = (int)s->k, info = 0;
    memcpy(s->a, in, s->rows * s->cols * sizeof *in);
    dgesdd_(vectors ? "S" : "N", &m, &n, s->a, &lda, s->sv, s->Vt, &ldu, s->U, &ldvt, s->work,
            &s->lwork, s->iwork, &info, 1);
    return info;
}

static af_status gsl_run(cx_svd *s, const double *in)
{
    size_t N = s->k;
    if (!s->trans)
        memcpy(s->A->data, in, s->rows * s->cols * sizeof *in);
    else
        for (size_t i = 0; i < s->rows; i++)
            for (size_t j = 0; j < s->cols; j++)
                s->A->data[j * N + i] = in[i * s->cols + j];
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc = gsl_linalg_SV_decomp(s->A, s->V, s->S, s->gwork);
    gsl_set_error_handler(old);
    if (rc)
        return af_error(AF_ELIB, "GSL SVD of a %zu x %zu matrix failed: %s", s->rows, s->cols,
                        gsl_strerror(rc));
    /* to the common layout: A = U S V^T; if transposed, GSL factored A^T */
    const gsl_matrix *L = s->trans ? s->V : s->A, *R = s->trans ? s->A : s->V;
    for (size_t j = 0; j < N; j++)
        s->sv[j] = gsl_vector_get(s->S, j);
    for (size_t i = 0; i < s->rows; i++)
        for (size_t j = 0; j < N; j++)
            s->U[i * N + j] = gsl_matrix_get(L, i, j);
    for (size_t j = 0; j < N; j++)
        for (size_t q = 0; q < s->cols; q++)
            s->Vt[j * s->cols + q] = gsl_matrix_get(R, q, j);
    return AF_SUCCESS;
}

af_status cx_svd_run(cx_svd *s, const double *in, int vectors)
{
    if (s->backend == AF_CONVEX_SVD_LAPACK) {
        int info = lapack_run(s, in, vectors);
        if (info == 0)
            return AF_SUCCESS;
        if (info < 0)
            return af_error(AF_ELIB, "LAPACK dgesdd: argument %d is invalid", -info);
        /* info > 0: no convergence; GSL's independent algorithm below */
    }
    return gsl_run(s, in);
}

af_status cx_svt(cx_svd *s, const double *in, double tau, double *out, double *sigma,
                 size_t *rank)
{
    af_status st = cx_svd_run(s, in, 1);
    if (st)
        return st;
    size_t r = 0, N = s->k;
    for (size_t j = 0; j < N; j++) {
        double v = s->sv[j] - tau;
        v = v > 0 ? v : 0;
        if (sigma)
            sigma[j] = v;
        r += v > 0;
    }
    /* values are descending, so the first r triples survive: scale the rows of V^T */
    for (size_t j = 0; j < r; j++) {
        double v = s->sv[j] - tau;
        for (size_t q = 0; q < s->cols; q++)
            s->Vt[j * s->cols + q] *= v;
    }
    if (r == 0)
        memset(out, 0, s->rows * s->cols * sizeof *out);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->rows, (int)s->cols, (int)r,
                    1.0, s->U, (int)N, s->Vt, (int)s->cols, 0.0, out, (int)s->cols);
    if (rank)
        *rank = r;
    return AF_SUCCESS;
}

af_status cx_specnorm(cx_svd *s, const double *in, double *value)
{
    if (s->backend == AF_CONVEX_SVD_LAPACK && lapack_run(s, in, 0) == 0) {
        *value = s->sv[0];
        return AF_SUCCESS;
    }
    /* largest eigenvalue of the Gram matrix of the smaller side */
    size_t N = s->k;
    if (!s->trans)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)N, (int)s->rows, 1.0, in,
                    (int)s->cols, 0.0, s->Gram->data, (int)N);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)N, (int)s->cols, 1.0, in,
                    (int)s->cols, 0.0, s->Gram->data, (int)N);
    for (size_t i = 0; i < N; i++) /* gsl_eigen_symm reads the lower triangle */
        for (size_t j = 0; j < i; j++)
            s->Gram->data[i * N + j] = s->Gram->data[j * N + i];
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc = gsl_eigen_symm(s->Gram, s->eval, s->eig);
    gsl_set_error_handler(old);
    if (rc)
        return af_error(AF_ELIB, "GSL symmetric eigensolver failed: %s", gsl_strerror(rc));
    double mx = 0;
    for (size_t j = 0; j < N; j++)
        mx = gsl_vector_get(s->eval, j) > mx ? gsl_vector_get(s->eval, j) : mx;
    *value = sqrt(mx);
    return AF_SUCCESS;
}

af_status af_nuclear_norm(size_t rows, size_t cols, const double *A, double *value)
{
    if (rows == 0 || cols == 0)
        return af_error(AF_EINVAL, "nuclear norm: empty matrix (%zu x %zu)", rows, cols);
    cx_svd *s = cx_svd_alloc(rows, cols, AF_CONVEX_SVD_LAPACK);
    if (!s)
        return af_error(AF_ENOMEM, "nuclear norm: out of memory");
    af_status st = cx_svd_run(s, A, 0);
    double sum = 0;
    for (size_t j = 0; !st && j < s->k; j++)
        sum += s->sv[j];
    cx_svd_free(s);
    if (!st)
        *value = sum;
    return st;
}

af_status af_svt(size_t rows, size_t cols, double *A, double tau, double *sigma, size_t *rank)
{
    if (rows == 0 || cols == 0 || !(tau >= 0))
        return af_error(AF_EINVAL, "svt: need a non-empty matrix and tau >= 0 (got %zu x %zu, tau %g)",
                        rows, cols, tau);
    cx_svd *s = cx_svd_alloc(rows, cols, AF_CONVEX_SVD_LAPACK);
    if (!s)
        return af_error(AF_ENOMEM, "svt: out of memory");
    af_status st = cx_svt(s, A, tau, A, sigma, rank);
    cx_svd_free(s);
    return st;
}

/* libFuzzer harness: the matrix/token reader (af_read_matrix_stream), the
 * reader behind --tokens, --keys, --A, --V, --mean and --cov files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "attnflow/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *fp = fmemopen((void *)data, size, "r");
    if (!fp)
        return 0;
    double *a = NULL;
    size_t rows = 0, cols = 0;
    if (af_read_matrix_stream(fp, "fuzz", &a, &rows, &cols) == AF_SUCCESS) {
        /* every entry must be readable and finite */
        volatile double sum = 0;
        for (size_t k = 0; k < rows * cols; k++)
            sum += a[k];
        if (rows == 0 || cols == 0 || sum != sum)
            abort();
        free(a);
    }
    fclose(fp);
    return 0;
}

/* libFuzzer harness: the grid density reader (--grid-file) and the grid it
 * describes (af_grid_from_table). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "attnflow/heat.h"
#include "attnflow/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *fp = fmemopen((void *)data, size, "r");
    if (!fp)
        return 0;
    double *t = NULL;
    size_t rows = 0, cols = 0;
    if (af_read_grid_table_stream(fp, "fuzz", &t, &rows, &cols) == AF_SUCCESS) {
        if (rows == 0 || (cols != 2 && cols != 3))
            abort();
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c + 1 < cols; c++)
                if (!isfinite(t[r * cols + c]))
                    abort(); /* coordinates are finite */
        double *rho = malloc(rows * sizeof *rho);
        af_grid g;
        if (rho && af_grid_from_table(rows, cols, t, &g, rho) == AF_SUCCESS
            && af_grid_size(&g) != rows)
            abort();
        free(rho);
        free(t);
    }
    fclose(fp);
    return 0;
}

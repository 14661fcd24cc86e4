/* Row blocks of a distributed computation (attnflow/comm.h). */
#include "attnflow/comm.h"

void af_comm_rows(size_t n, int rank, int size, size_t *begin, size_t *end)
{
    const size_t P = size > 0 ? (size_t)size : 1, r = rank > 0 ? (size_t)rank : 0;
    const size_t q = n / P, extra = n % P;
    *begin = r * q + (r < extra ? r : extra);
    *end = *begin + q + (r < extra);
}

void af_comm_counts(size_t n, size_t width, int size, size_t *counts, size_t *displs)
{
    for (int r = 0; r < size; r++) {
        size_t b, e;
        af_comm_rows(n, r, size, &b, &e);
        counts[r] = (e - b) * width;
        displs[r] = b * width;
    }
}

int af_comm_distributed(const af_comm *c) { return c && c->size > 1; }

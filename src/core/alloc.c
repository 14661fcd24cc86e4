/* Large allocations (af_alloc.h). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "core/af_alloc.h"

#define AF_HUGE_PAGE ((size_t)2 << 20)

void *af__alloc_large(size_t bytes)
{
    if (bytes < AF_ALLOC_LARGE_MIN)
        return malloc(bytes);
    const size_t rounded = (bytes + AF_HUGE_PAGE - 1) / AF_HUGE_PAGE * AF_HUGE_PAGE;
    if (rounded < bytes) /* overflow */
        return NULL;
    return aligned_alloc(AF_HUGE_PAGE, rounded);
}

void af__advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    /* the whole huge pages inside the range */
    const uintptr_t a = (uintptr_t)p, b = a + bytes;
    const uintptr_t lo = (a + AF_HUGE_PAGE - 1) / AF_HUGE_PAGE * AF_HUGE_PAGE;
    const uintptr_t hi = b / AF_HUGE_PAGE * AF_HUGE_PAGE;
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

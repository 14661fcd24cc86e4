/* Allocation of the large stored kernels. */
#ifndef AF_ALLOC_H
#define AF_ALLOC_H

#include <stddef.h>

/* malloc for arrays of hundreds of MB that passes stream through many
 * times (stored kernels): from AF_ALLOC_LARGE_MIN bytes on, aligned to
 * 2 MiB, so that af__advise_huge can hand whole huge pages to the parts
 * that are used. Free with free(). */
void *af__alloc_large(size_t bytes);

/* Ask for transparent huge pages on [p, p + bytes) of an af__alloc_large
 * block (Linux madvise; THP "madvise" mode is Debian's default): a pass over
 * 400 MB then walks 200 pages instead of 100000. Only for ranges that are
 * touched in full: a huge page is resident as a whole. A hint: nothing
 * changes where it is not honoured. */
void af__advise_huge(void *p, size_t bytes);

#define AF_ALLOC_LARGE_MIN ((size_t)4 << 20)

#endif

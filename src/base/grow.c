/* grow: doubling arrays (grow.h). */
#include "pyflame/base/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *pf_grow(void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return items;
    size_t want = *cap ? *cap * 2 : first;
    if (want <= n || size == 0 || want > SIZE_MAX / size)
        return NULL;
    void *v = realloc(items, want * size);
    if (v)
        *cap = want;
    return v;
}

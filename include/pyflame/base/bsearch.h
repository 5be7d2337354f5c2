/* bsearch: binary search over sorted arrays of records with a uint64_t key,
 * for "which entry covers this address" lookups (maps by start, symbols by
 * value). Header only: the helper is a few lines, and inlined with a
 * constant stride and key offset it compiles to the loop each caller used
 * to write by hand. */
#ifndef PYFLAME_BSEARCH_H
#define PYFLAME_BSEARCH_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/bsearch.h");

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* How many of the n records at base (stride bytes apart, sorted by the
 * uint64_t key at key_off) have a key <= x: the index just past the last
 * such record, so the last one at or below x is [result - 1], and there is
 * none when the result is 0. Use offsetof for key_off. */
static inline size_t pf_bsearch_count_le(const void *base, size_t n, size_t stride,
                                         size_t key_off, uint64_t x)
{
    const unsigned char *b = base;
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t key;
        memcpy(&key, b + mid * stride + key_off, sizeof(key));
        if (key <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#endif

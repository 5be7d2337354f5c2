/* grow: room for one more element at the end of an array that doubles as
 * it fills (tasks, processes, stacks, rows, segments...). */
#ifndef PYFLAME_GROW_H
#define PYFLAME_GROW_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/grow.h");

#include <stddef.h>

/* items holds n elements of `size` bytes in room for *cap. When n < *cap,
 * returns items. Else returns the array moved to room for twice as many
 * (or `first` when *cap is 0), and updates *cap; NULL when out of memory,
 * with items and *cap untouched. */
void *pf_grow(void *items, size_t n, size_t *cap, size_t size, size_t first);

#endif

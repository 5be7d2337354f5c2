/* hashindex: an open-addressing hash index from a 32-bit hash to dense ids
 * (0, 1, 2...) of entries that the caller keeps in its own append-only
 * array. Interning (strings, frames) and aggregation (stacks) each needed
 * one, on the sampler's hot path; this is the one copy. It never sees the
 * keys: a probe yields the ids whose stored hash matches, the caller
 * compares its own entries, and on a miss inserts the new id where the
 * probe stopped.
 *
 * Slots keep the full hash beside the id, so a probe rejects most
 * candidates without touching the caller's entries, and growing needs no
 * callback. Capacity is a power of two, probing is linear, and the index
 * doubles once it is half full. A lookup never allocates; an insert
 * allocates only when it grows the index. */
#ifndef PYFLAME_HASHINDEX_H
#define PYFLAME_HASHINDEX_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/hashindex.h");

#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"

/* What pf_hashindex_next returns when the probe has reached an empty slot. */
#define PF_HASHINDEX_END UINT32_MAX

struct pf_hashindex_slot {
    uint32_t hash;
    uint32_t id_plus_1; /* 0: empty */
};

struct pf_hashindex {
    struct pf_hashindex_slot *slots;
    size_t mask; /* slots - 1 */
    size_t count;
};

/* Where a probe is: after a miss, the empty slot an insert fills. */
struct pf_hashindex_probe {
    size_t at;
    uint32_t hash;
};

/* slots: a power of two, at least 2. */
pf_err pf_hashindex_init(struct pf_hashindex *ix, size_t slots);
/* Accepts a zeroed struct. */
void pf_hashindex_free(struct pf_hashindex *ix);
/* Forget every id, keeping the memory. */
void pf_hashindex_clear(struct pf_hashindex *ix);

static inline void pf_hashindex_probe(const struct pf_hashindex *ix, uint32_t hash,
                                      struct pf_hashindex_probe *p)
{
    p->at = hash & ix->mask;
    p->hash = hash;
}

/* The next id whose hash is p's, or PF_HASHINDEX_END: then p->at is the
 * empty slot where that hash goes. Inline: it is the hot loop. */
static inline uint32_t pf_hashindex_next(const struct pf_hashindex *ix,
                                         struct pf_hashindex_probe *p)
{
    for (;; p->at = (p->at + 1) & ix->mask) {
        const struct pf_hashindex_slot *s = &ix->slots[p->at];
        if (!s->id_plus_1)
            return PF_HASHINDEX_END;
        if (s->hash == p->hash) {
            p->at = (p->at + 1) & ix->mask; /* resume past it */
            return s->id_plus_1 - 1;
        }
    }
}

/* Put id in the empty slot where the probe p ended (pf_hashindex_next
 * returned PF_HASHINDEX_END, and nothing was inserted since). id must be
 * below PF_HASHINDEX_END. The id is in the index even when growing then
 * fails (PF_ERR_NOMEM): the index is only fuller than it should be. */
pf_err pf_hashindex_insert(struct pf_hashindex *ix, const struct pf_hashindex_probe *p,
                           uint32_t id);

#endif

#include "pyflame/base/hashindex.h"

#include <stdlib.h>
#include <string.h>

pf_err pf_hashindex_init(struct pf_hashindex *ix, size_t slots)
{
    *ix = (struct pf_hashindex){0};
    if (slots < 2 || (slots & (slots - 1)) != 0)
        return PF_ERR_INTERNAL;
    ix->slots = calloc(slots, sizeof(*ix->slots));
    if (!ix->slots)
        return PF_ERR_NOMEM;
    ix->mask = slots - 1;
    return PF_OK;
}

void pf_hashindex_free(struct pf_hashindex *ix)
{
    free(ix->slots);
    *ix = (struct pf_hashindex){0};
}

void pf_hashindex_clear(struct pf_hashindex *ix)
{
    if (ix->slots)
        memset(ix->slots, 0, (ix->mask + 1) * sizeof(*ix->slots));
    ix->count = 0;
}

/* Double the slots. The stored hashes say where each id goes, so the
 * caller's entries are not needed. */
static pf_err grow(struct pf_hashindex *ix)
{
    size_t n = (ix->mask + 1) * 2, mask = n - 1;
    struct pf_hashindex_slot *slots = calloc(n, sizeof(*slots));

    if (!slots)
        return PF_ERR_NOMEM;
    for (size_t i = 0; i <= ix->mask; i++) {
        const struct pf_hashindex_slot *s = &ix->slots[i];
        if (!s->id_plus_1)
            continue;
        size_t j = s->hash & mask;
        while (slots[j].id_plus_1)
            j = (j + 1) & mask;
        slots[j] = *s;
    }
    free(ix->slots);
    ix->slots = slots;
    ix->mask = mask;
    return PF_OK;
}

pf_err pf_hashindex_insert(struct pf_hashindex *ix, const struct pf_hashindex_probe *p,
                           uint32_t id)
{
    ix->slots[p->at] = (struct pf_hashindex_slot){.hash = p->hash, .id_plus_1 = id + 1};
    ix->count++;
    /* Half full: linear probing's chains stay short below that. */
    if (ix->count * 2 > ix->mask + 1)
        return grow(ix);
    return PF_OK;
}

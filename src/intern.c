#include "pyflame/intern.h"

#include <stdlib.h>
#include <string.h>

/* Two open-addressing tables (strings, frames) over append-only arrays.
 * Slots hold id+1 so 0 means empty. Grows at 50% load. */
struct pf_intern {
    char **strs;
    uint32_t *str_hash;
    size_t nstr, capstr;
    uint32_t *str_slots;
    size_t nslots_str;

    struct pf_frame_text *frames;
    size_t nframe, capframe;
    uint32_t *frame_slots;
    size_t nslots_frame;
};

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t hash_frame(const struct pf_frame_text *f)
{
    uint64_t x = ((uint64_t)f->file << 32 | f->name) * 0x9E3779B97F4A7C15ull;
    x ^= (uint64_t)(uint32_t)f->line * 0xC2B2AE3D27D4EB4Full + f->kind;
    x ^= x >> 29;
    return (uint32_t)(x ^ (x >> 32));
}

pf_err pf_intern_new(struct pf_intern **out)
{
    struct pf_intern *t = calloc(1, sizeof(*t));
    if (!t)
        return PF_ERR_NOMEM;
    t->nslots_str = 1024;
    t->nslots_frame = 1024;
    t->str_slots = calloc(t->nslots_str, sizeof(uint32_t));
    t->frame_slots = calloc(t->nslots_frame, sizeof(uint32_t));
    if (!t->str_slots || !t->frame_slots) {
        pf_intern_free(t);
        return PF_ERR_NOMEM;
    }
    *out = t;
    return PF_OK;
}

void pf_intern_free(struct pf_intern *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nstr; i++)
        free(t->strs[i]);
    free(t->strs);
    free(t->str_hash);
    free(t->str_slots);
    free(t->frames);
    free(t->frame_slots);
    free(t);
}

static pf_err rehash_str(struct pf_intern *t)
{
    size_t n = t->nslots_str * 2;
    uint32_t *slots = calloc(n, sizeof(uint32_t));
    if (!slots)
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < t->nstr; i++) {
        size_t j = t->str_hash[i] & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(t->str_slots);
    t->str_slots = slots;
    t->nslots_str = n;
    return PF_OK;
}

pf_err pf_intern_str(struct pf_intern *t, const char *s, size_t len, uint32_t *id)
{
    uint32_t h = hash_bytes(s, len);
    size_t mask = t->nslots_str - 1;
    size_t j = h & mask;

    for (; t->str_slots[j]; j = (j + 1) & mask) {
        uint32_t k = t->str_slots[j] - 1;
        if (t->str_hash[k] == h && strncmp(t->strs[k], s, len) == 0 && t->strs[k][len] == '\0') {
            *id = k;
            return PF_OK;
        }
    }
    if (t->nstr == t->capstr) {
        size_t cap = t->capstr ? t->capstr * 2 : 256;
        char **strs = realloc(t->strs, cap * sizeof(*strs));
        if (!strs)
            return PF_ERR_NOMEM;
        t->strs = strs;
        uint32_t *hs = realloc(t->str_hash, cap * sizeof(*hs));
        if (!hs)
            return PF_ERR_NOMEM;
        t->str_hash = hs;
        t->capstr = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return PF_ERR_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    uint32_t k = (uint32_t)t->nstr++;
    t->strs[k] = copy;
    t->str_hash[k] = h;
    t->str_slots[j] = k + 1;
    if (t->nstr * 2 > t->nslots_str) {
        pf_err err = rehash_str(t);
        if (err)
            return err;
    }
    *id = k;
    return PF_OK;
}

const char *pf_intern_text(const struct pf_intern *t, uint32_t id)
{
    return id < t->nstr ? t->strs[id] : "?";
}

static pf_err rehash_frame(struct pf_intern *t)
{
    size_t n = t->nslots_frame * 2;
    uint32_t *slots = calloc(n, sizeof(uint32_t));
    if (!slots)
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < t->nframe; i++) {
        size_t j = hash_frame(&t->frames[i]) & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(t->frame_slots);
    t->frame_slots = slots;
    t->nslots_frame = n;
    return PF_OK;
}

pf_err pf_intern_frame(struct pf_intern *t, const struct pf_frame_text *f, uint32_t *id)
{
    size_t mask = t->nslots_frame - 1;
    size_t j = hash_frame(f) & mask;

    for (; t->frame_slots[j]; j = (j + 1) & mask) {
        const struct pf_frame_text *g = &t->frames[t->frame_slots[j] - 1];
        if (g->kind == f->kind && g->file == f->file && g->name == f->name && g->line == f->line) {
            *id = t->frame_slots[j] - 1;
            return PF_OK;
        }
    }
    if (t->nframe == t->capframe) {
        size_t cap = t->capframe ? t->capframe * 2 : 256;
        struct pf_frame_text *fr = realloc(t->frames, cap * sizeof(*fr));
        if (!fr)
            return PF_ERR_NOMEM;
        t->frames = fr;
        t->capframe = cap;
    }
    uint32_t k = (uint32_t)t->nframe++;
    t->frames[k] = *f;
    t->frame_slots[j] = k + 1;
    if (t->nframe * 2 > t->nslots_frame) {
        pf_err err = rehash_frame(t);
        if (err)
            return err;
    }
    *id = k;
    return PF_OK;
}

const struct pf_frame_text *pf_intern_frame_get(const struct pf_intern *t, uint32_t id)
{
    return id < t->nframe ? &t->frames[id] : NULL;
}

size_t pf_intern_frame_count(const struct pf_intern *t)
{
    return t->nframe;
}

size_t pf_intern_str_count(const struct pf_intern *t)
{
    return t->nstr;
}

#include "pyflame/base/intern.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/grow.h"
#include "pyflame/base/hashindex.h"

/* Strings and frames in append-only arrays (an id is the index), each
 * found through its own hash index. */
struct pf_intern {
    char **strs;
    size_t nstr, capstr;
    struct pf_hashindex str_index;

    struct pf_frame_text *frames;
    size_t nframe, capframe;
    struct pf_hashindex frame_index;
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
    if (pf_hashindex_init(&t->str_index, 1024) || pf_hashindex_init(&t->frame_index, 1024)) {
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
    pf_hashindex_free(&t->str_index);
    free(t->frames);
    pf_hashindex_free(&t->frame_index);
    free(t);
}

pf_err pf_intern_str(struct pf_intern *t, const char *s, size_t len, uint32_t *id)
{
    struct pf_hashindex_probe probe;
    uint32_t k;

    pf_hashindex_probe(&t->str_index, hash_bytes(s, len), &probe);
    while ((k = pf_hashindex_next(&t->str_index, &probe)) != PF_HASHINDEX_END) {
        if (strncmp(t->strs[k], s, len) == 0 && t->strs[k][len] == '\0') {
            *id = k;
            return PF_OK;
        }
    }
    char **strs = pf_grow(t->strs, t->nstr, &t->capstr, sizeof(*strs), 256);
    if (!strs)
        return PF_ERR_NOMEM;
    t->strs = strs;
    char *copy = malloc(len + 1);
    if (!copy)
        return PF_ERR_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    k = (uint32_t)t->nstr++;
    t->strs[k] = copy;
    pf_err err = pf_hashindex_insert(&t->str_index, &probe, k);
    if (err)
        return err;
    *id = k;
    return PF_OK;
}

const char *pf_intern_text(const struct pf_intern *t, uint32_t id)
{
    return id < t->nstr ? t->strs[id] : "?";
}

pf_err pf_intern_frame(struct pf_intern *t, const struct pf_frame_text *f, uint32_t *id)
{
    struct pf_hashindex_probe probe;
    uint32_t k;

    pf_hashindex_probe(&t->frame_index, hash_frame(f), &probe);
    while ((k = pf_hashindex_next(&t->frame_index, &probe)) != PF_HASHINDEX_END) {
        const struct pf_frame_text *g = &t->frames[k];
        if (g->kind == f->kind && g->file == f->file && g->name == f->name && g->line == f->line) {
            *id = k;
            return PF_OK;
        }
    }
    struct pf_frame_text *fr = pf_grow(t->frames, t->nframe, &t->capframe, sizeof(*fr), 256);
    if (!fr)
        return PF_ERR_NOMEM;
    t->frames = fr;
    k = (uint32_t)t->nframe++;
    t->frames[k] = *f;
    pf_err err = pf_hashindex_insert(&t->frame_index, &probe, k);
    if (err)
        return err;
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

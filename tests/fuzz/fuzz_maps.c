/* Fuzz target: the /proc/PID/maps parser (maps.c) and its lookups.
 *
 * Input: the text of a maps file, in libFuzzer's exact-size buffer (no NUL
 * terminator, so a read past the end is an ASan report). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_image.h"
#include "pyflame/target/maps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What find_addr must answer when mappings do not overlap: the linear
 * search. */
static const struct pf_map *linear(const struct pf_maps *maps, uint64_t addr)
{
    for (size_t i = 0; i < maps->n; i++)
        if (maps->v[i].start <= addr && addr < maps->v[i].end)
            return &maps->v[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pf_maps maps = {(struct pf_map *)&maps, 4242};
    pf_err err = pf_maps_parse((const char *)data, size, &maps);

    FUZZ_CHECK(err == PF_OK || err == PF_ERR_CORRUPT);
    if (err) {
        FUZZ_CHECK(maps.v == (struct pf_map *)&maps && maps.n == 4242);
        return 0;
    }

    /* Every line is a mapping: count the lines ourselves. */
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (size > 0 && data[size - 1] != '\n')
        lines++;
    FUZZ_CHECK(maps.n == lines);
    FUZZ_CHECK(maps.n == 0 || maps.v != NULL);

    bool overlap = false;
    for (size_t i = 0; i < maps.n; i++) {
        const struct pf_map *m = &maps.v[i];
        FUZZ_CHECK(m->start < m->end);
        if (i > 0) {
            FUZZ_CHECK(maps.v[i - 1].start <= m->start); /* sorted */
            overlap = overlap || maps.v[i - 1].end > m->start;
        }
        if (m->path) {
            size_t n = strlen(m->path);
            FUZZ_CHECK(n > 0 && n <= size);
            FUZZ_CHECK(m->path[0] != ' ' && !memchr(m->path, '\n', n));
            /* The lowest mapping of a file at an offset is found. */
            const struct pf_map *f = pf_maps_find_file(&maps, m->path, m->offset);
            FUZZ_CHECK(f != NULL && f <= m && strcmp(f->path, m->path) == 0 &&
                       f->offset == m->offset);
        }
    }
    for (size_t i = 0; i < maps.n && !overlap; i++) {
        const struct pf_map *m = &maps.v[i];
        const uint64_t probe[] = {m->start, m->end - 1, m->end, m->start - 1,
                                  m->start + (m->end - m->start) / 2};
        for (size_t j = 0; j < sizeof(probe) / sizeof(probe[0]); j++)
            FUZZ_CHECK(pf_maps_find_addr(&maps, probe[j]) == linear(&maps, probe[j]));
    }
    if (!overlap)
        FUZZ_CHECK(pf_maps_find_addr(&maps, UINT64_MAX) == linear(&maps, UINT64_MAX));
    pf_maps_free(&maps);
    FUZZ_CHECK(maps.v == NULL && maps.n == 0);
    return 0;
}

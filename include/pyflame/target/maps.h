/* maps: the /proc/PID/maps parser, and load-bias arithmetic on its ranges.
 * It reads only the maps text; ELF files are elf.h's business. */
#ifndef PYFLAME_MAPS_H
#define PYFLAME_MAPS_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/maps.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"

struct pf_map {
    uint64_t start, end, offset;
    uint64_t inode;
    bool r, w, x;
    char *path; /* NULL for anonymous mappings; "[heap]", "[stack]"... kept as is */
};

struct pf_maps {
    struct pf_map *v;
    size_t n;
};

/* Parse the text of a maps file. Lines that do not parse are an error. */
pf_err pf_maps_parse(const char *text, size_t len, struct pf_maps *out);

/* Read and parse /proc/PID/maps. */
pf_err pf_maps_read(pid_t pid, struct pf_diag *diag, struct pf_maps *out);

/* Accepts a zeroed struct. */
void pf_maps_free(struct pf_maps *maps);

/* The lowest mapping of `path` (by start address) with the given file
 * offset, or NULL. Borrowed. */
const struct pf_map *pf_maps_find_file(const struct pf_maps *maps, const char *path,
                                       uint64_t offset);

/* The mapping containing addr, or NULL. Borrowed. */
const struct pf_map *pf_maps_find_addr(const struct pf_maps *maps, uint64_t addr);

#endif

/* code: reads code objects (filename, name, first line, line table) and
 * caches them by remote address. A cache entry keeps the header fields it
 * was built from; a fresh copy of the header (read in the same batch as the
 * frames) revalidates it, since a freed code object's address gets reused.
 * It interns names into the intern table; it knows nothing about frames. */
#ifndef PYFLAME_CODE_H
#define PYFLAME_CODE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/code.h");

#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/target/mem.h"

/* Addresses of type objects in the target, used to check what we read.
 * 0 means unknown (not checked). */
struct pf_pytypes {
    uint64_t code, str, bytes;
};

struct pf_code {
    uint64_t addr;
    uint32_t file, name;   /* intern ids */
    int32_t firstlineno;
    int32_t firsttraceable; /* 3.11+: first traceable code unit */
    uint8_t *linetable;
    size_t linetable_len;
    /* validation key: header fields this entry was built from */
    uint64_t key_name, key_file, key_table;
    /* last lookup, since a hot frame asks for the same offset again and again */
    int64_t memo_offset;
    int32_t memo_line;
};

struct pf_code_cache;

pf_err pf_code_cache_new(size_t capacity, struct pf_code_cache **out);
void pf_code_cache_free(struct pf_code_cache *c);

/* The entry for the code object at addr. `hdr` is a fresh copy of the first
 * L->code.size bytes of the object (plus ob_type), or NULL to read it now.
 * On a miss or a stale entry, reads the strings and line table through mem.
 * The returned entry is borrowed and valid until the next call.
 * Fails with PF_ERR_CORRUPT if the object is not a code object (type check). */
pf_err pf_code_get(struct pf_code_cache *c, struct pf_mem *mem, const struct pf_layout *L,
                   const struct pf_pytypes *types, struct pf_intern *names, uint64_t addr,
                   const uint8_t *hdr, size_t hdr_len, struct pf_code **out);

/* Bytes of the header copy pf_code_get wants. */
size_t pf_code_header_size(const struct pf_layout *L);

/* Line executing at byte offset `offset` into the bytecode (see linetable.h).
 * Uses and updates the entry's memo. */
pf_err pf_code_line(struct pf_code *code, const struct pf_layout *L, int64_t offset, int *line);

#endif

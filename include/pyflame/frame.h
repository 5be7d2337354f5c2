/* frame: walks one thread's chain of Python frames, innermost first, into
 * (code address, instruction offset) records. It copies raw values only and
 * decodes nothing, so it is cheap enough for the stop window. Shim frames
 * owned by the C stack (3.12+) are skipped. */
#ifndef PYFLAME_FRAME_H
#define PYFLAME_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/error.h"
#include "pyflame/layout.h"
#include "pyflame/mem.h"

struct pf_frame_rec {
    uint64_t code_addr;
    /* Byte offset of the executing instruction into the bytecode, as
     * linetable.h wants it. For 3.11+ it is computed from the instruction
     * pointer and the code object's address. */
    int64_t offset;
    uint8_t owner; /* 3.11+: _PyInterpreterFrame.owner */
};

/* The first frame of a thread, from a copy of its PyThreadState
 * (tstate_len bytes). For 3.11/3.12 this reads the _PyCFrame. *frame_addr is
 * 0 when the thread runs no Python code. */
pf_err pf_frame_first(struct pf_mem *mem, const struct pf_layout *L, const uint8_t *tstate,
                      size_t tstate_len, uint64_t *frame_addr);

/* Walk from frame_addr. Writes at most cap records; *n is how many.
 * *truncated is set when the chain went on past cap (deeper than we keep).
 * A chain that loops is PF_ERR_CORRUPT. */
pf_err pf_frame_walk(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                     struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated);

#endif

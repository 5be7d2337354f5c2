/* frame: walks one thread's chain of Python frames, innermost first, into
 * (code address, instruction offset) records. It copies raw values only and
 * decodes nothing, so it is cheap enough for the stop window. Shim frames
 * owned by the C stack (3.12+) are skipped; pf_frame_walk_runs instead
 * reports where each C call of the eval loop begins, for --native. */
#ifndef PYFLAME_FRAME_H
#define PYFLAME_FRAME_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/frame.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/base/limits.h"
#include "pyflame/target/mem.h"

struct pf_frame_rec {
    uint64_t frame_addr; /* where the frame is (0 for a run end) */
    uint64_t code_addr;
    /* Byte offset of the executing instruction into the bytecode, as
     * linetable.h wants it. For 3.11+ it is computed from the instruction
     * pointer and the code object's address. */
    int64_t offset;
    uint8_t owner; /* 3.11+: _PyInterpreterFrame.owner */
    uint8_t flags; /* PF_FRAME_RUN_END: not a frame, see pf_frame_walk_runs */
};

enum { PF_FRAME_RUN_END = 1 };

/* Most records pf_frame_walk_runs writes: a frame and a run end each. */
#define PF_FRAME_RUNS_MAX (2 * PF_MAX_DEPTH)

/* The first frame of a thread, from a copy of its PyThreadState
 * (tstate_len bytes). For 3.11/3.12 this reads the _PyCFrame. *frame_addr is
 * 0 when the thread runs no Python code. */
pf_err pf_frame_first(struct pf_mem *mem, const struct pf_layout *L, const uint8_t *tstate,
                      size_t tstate_len, uint64_t *frame_addr);

/* The copy part of a walk, for the stop window: as pf_frame_walk but
 * without the loop check of a chain cut at the cap, which the caller makes
 * with pf_frame_check_loop after the thread runs again. *stop_addr is the
 * frame the walk stopped at (0 when it reached the end). */
pf_err pf_frame_copy(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr, bool runs,
                     struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated,
                     uint64_t *stop_addr);

/* PF_ERR_CORRUPT when the frames of a walk cut at its cap (stop_addr != 0)
 * repeat an address: a chain read mid-update can loop, and a loop must not
 * be shown as a deep stack. Sorts a copy of the addresses in scratch (room
 * for n + 1). */
pf_err pf_frame_check_loop(const struct pf_frame_rec *recs, size_t n, uint64_t stop_addr,
                           uint64_t *scratch);

/* Walk from frame_addr. Writes at most cap records; *n is how many.
 * *truncated is set when the chain went on past cap (deeper than we keep).
 * A chain that loops is PF_ERR_CORRUPT. */
pf_err pf_frame_walk(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                     struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated);

/* As pf_frame_walk, and after the outermost frame of each "run" (the frames
 * one C call of the eval loop executes) a record with flags
 * PF_FRAME_RUN_END and nothing else. Up to 3.10 every frame is a run of its
 * own; in 3.11 a run ends at a frame with is_entry set; from 3.12 a shim
 * frame (skipped by pf_frame_walk) is the end of a run, so a run may be
 * empty. merge.h pairs runs with the eval loop's native frames. cap may be
 * up to PF_FRAME_RUNS_MAX. */
pf_err pf_frame_walk_runs(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                          struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated);

#endif

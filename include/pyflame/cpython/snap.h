/* snap: one thread's stack in two steps, so that the stop window holds
 * copies only.
 *
 * pf_snap_take runs while the thread is stopped (or, for --nonblocking,
 * twice, to compare): it copies the thread state, follows the frame chain
 * and copies each frame's (code address, instruction offset) and the header
 * of each code object. Nothing is decoded, looked up or interned.
 *
 * pf_snap_decode runs after the thread is resumed: loop check, code-object
 * cache (a miss reads the names and line table from the live process and
 * then checks the header is still the one copied), line numbers, interning.
 * It knows nothing of ptrace or of which threads are stopped. */
#ifndef PYFLAME_SNAP_H
#define PYFLAME_SNAP_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/snap.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/cpython/code.h"
#include "pyflame/base/error.h"
#include "pyflame/cpython/frame.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/target/mem.h"

/* Bytes of a thread state we copy at most (layouts need far less). */
#define PF_SNAP_TSTATE 1024

struct pf_snap {
    uint64_t tstate_addr;
    uint8_t tstate[PF_SNAP_TSTATE];
    /* frame records, innermost first; with runs, run ends too (frame.h) */
    struct pf_frame_rec *recs;
    size_t n, recs_cap;
    bool truncated;
    uint64_t stop_addr; /* where a walk cut at the cap stopped (loop check) */
    /* code headers: hdr_of[i] is the index in headers of recs[i]'s header */
    uint8_t *headers;
    unsigned char *hdr_ok;
    uint32_t *hdr_of;
    size_t nhdr, hdr_cap, header_size;
};

/* Free the arrays; the struct can be reused (accepts a zeroed snap). */
void pf_snap_release(struct pf_snap *snap);

/* Copy the stack of the thread whose state is at tstate_addr, through mem
 * (a prefetch view, prefetch.h). With runs, the walk marks the end of each
 * run of the eval loop (--native). Errors: the thread state or a frame
 * could not be read (PF_ERR_FAULT), or made no sense (PF_ERR_CORRUPT);
 * PF_ERR_NOMEM. */
pf_err pf_snap_take(struct pf_snap *snap, struct pf_mem *mem, const struct pf_layout *L,
                    uint64_t tstate_addr, bool runs);

/* The thread-identity field of the copied thread state: native_thread_id
 * (the kernel TID, 3.11+) or thread_id (pthread_self(), up to 3.10). */
pf_err pf_snap_thread_id(const struct pf_snap *snap, const struct pf_layout *L, uint64_t *id);

/* Whether two copies show the same stack: the same frames at the same
 * addresses running the same code objects, each at the same instruction
 * but the innermost (which moves on while a thread runs; the line read
 * first is the one shown). For --nonblocking's torn-read check. */
bool pf_snap_same(const struct pf_snap *a, const struct pf_snap *b);
/* The same, the innermost instruction included: a thread that did not run
 * Python between the two copies. */
bool pf_snap_identical(const struct pf_snap *a, const struct pf_snap *b);

struct pf_snap_decoder {
    struct pf_code_cache *codes;
    struct pf_mem *live; /* for cache misses, read while the thread runs */
    const struct pf_layout *layout;
    const struct pf_pytypes *types;
    struct pf_intern *names;
    bool line_numbers;
    uint64_t *scratch; /* PF_FRAME_RUNS_MAX + 1, for the loop check */
};

/* Decode a snap into frame ids, innermost first (ids: room for
 * PF_MAX_DEPTH). With runs (room for PF_FRAME_RUNS_MAX), also the ids with
 * PF_MERGE_RUN_END between runs, for merge.h. */
pf_err pf_snap_decode(const struct pf_snap *snap, const struct pf_snap_decoder *d, uint32_t *ids,
                      size_t *depth, uint32_t *runs, size_t *runs_n);

#endif

/* prefetch: speculative copies of remote memory, so that reading a stack
 * costs one batched process_vm_readv whatever its depth.
 *
 * A stack changes little from one sample to the next. So each thread keeps
 * a plan: the ranges its last read touched (thread state, frames, code
 * headers, the GIL state). At the next sample pf_prefetch_fill copies every
 * range of every plan in one batched read; the walk then reads through the
 * view (pf_prefetch_mem), which serves a read from those copies when they
 * cover it and goes to the real memory otherwise. Nothing is trusted from
 * the plan: the walk follows the pointers it reads now, so a frame that was
 * popped is simply never asked for, and a frame pushed since (or a frame
 * address reused by another code object) is a miss: the block around it is
 * read, and serves the next misses until the next fill (prefetch.c). What
 * the walk read, exactly, is journaled and becomes the next plan.
 *
 * The copies are only as fresh as the fill: fill while the thread is
 * stopped, or compare two fills (--nonblocking). It knows nothing of
 * CPython. */
#ifndef PYFLAME_PREFETCH_H
#define PYFLAME_PREFETCH_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/prefetch.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/target/mem.h"

struct pf_range {
    uint64_t addr;
    uint32_t len;
};

/* A list of ranges: a thread's plan, or a journal being written. */
struct pf_plan {
    struct pf_range *r;
    size_t n, cap;
};

/* Ranges one plan may hold; a walk that reads more journals the first ones. */
#define PF_PLAN_MAX 8192

void pf_plan_clear(struct pf_plan *p);
void pf_plan_free(struct pf_plan *p); /* accepts a zeroed plan */
/* Append; a full plan drops the range (the plan is only a guess). */
void pf_plan_add(struct pf_plan *p, uint64_t addr, size_t len);
/* Swap contents (a journal becomes a plan without copying). */
void pf_plan_swap(struct pf_plan *a, struct pf_plan *b);

struct pf_prefetch;

/* base is borrowed and must outlive the prefetch. */
pf_err pf_prefetch_new(struct pf_mem *base, struct pf_prefetch **out);
void pf_prefetch_free(struct pf_prefetch *p);

/* Forget the copies of the last fill, keeping the buffers. */
void pf_prefetch_reset(struct pf_prefetch *p);

/* Copy the ranges of plans[0..n) in one batched read (ranges that overlap
 * or lie within one page of each other are read as one piece; see
 * prefetch.c). Replaces the copies of the last fill, and the blocks read
 * on misses since. A range that cannot be read is left out, not an error:
 * the walk will miss it and read it alone. */
pf_err pf_prefetch_fill(struct pf_prefetch *p, const struct pf_plan *const *plans, size_t n);

/* The view: reads served from the copies when one covers them, else from
 * base. Borrowed; valid as long as p. */
struct pf_mem *pf_prefetch_mem(struct pf_prefetch *p);

/* While a journal is set, every successful read through the view (served
 * from the copies or not) is appended to it. NULL stops journaling. */
void pf_prefetch_journal(struct pf_prefetch *p, struct pf_plan *journal);

/* Reads the view served from the copies, and reads it passed on to base. */
void pf_prefetch_counts(const struct pf_prefetch *p, uint64_t *hits, uint64_t *misses);

#endif

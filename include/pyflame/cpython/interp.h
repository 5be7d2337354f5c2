/* interp: a found CPython runtime (struct pf_target, filled by discover.h),
 * and reading from it, at every tick, the main interpreter, its thread list
 * and the GIL holder, through pf_mem. It does not stop or resume anything. */
#ifndef PYFLAME_INTERP_H
#define PYFLAME_INTERP_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/interp.h");

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/cpython/code.h"
#include "pyflame/target/elf.h"
#include "pyflame/base/error.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/target/mem.h"
#include "pyflame/cpython/pyver.h"

struct pf_target {
    const struct pf_layout *layout;
    struct pf_pyver version;
    uint64_t runtime_addr;        /* _PyRuntime (3.7+), else 0 */
    uint64_t interp_head_addr;    /* &interp_head (2.7, 3.6), else 0 */
    uint64_t tstate_current_addr; /* &_PyThreadState_Current (2.7, 3.6), else 0 */
    struct pf_pytypes types;
    char elf_path[PATH_MAX]; /* the file that holds the runtime, as the target maps it */
    char how[128];           /* which clue located the runtime (symbol, section) */
    /* 3.13+: the layout built from the target's own _Py_DebugOffsets. When
     * used, `layout` points here, so a pf_target is never copied by value:
     * pf_target_copy does it. */
    struct pf_layout own_layout;
    char layout_source[64]; /* where the layout came from, for messages */
};

/* Copy a target (its layout pointer kept pointing into the copy): how
 * discovery hands its result out, and how a process forked from a known
 * one takes its parent's (the same image at the same addresses). */
void pf_target_copy(struct pf_target *dst, const struct pf_target *src);

/* The main interpreter's address. PF_ERR_NOTREADY while the runtime has no
 * interpreter yet (early start-up, or finalisation). */
pf_err pf_interp_main(struct pf_mem *mem, const struct pf_target *t, uint64_t *interp);

/* The thread state holding interp's GIL, or 0 if nobody holds it. */
pf_err pf_interp_gil_holder(struct pf_mem *mem, const struct pf_target *t, uint64_t interp,
                            uint64_t *tstate);

/* Thread states of interp, newest first, at most cap. */
pf_err pf_interp_threads(struct pf_mem *mem, const struct pf_target *t, uint64_t interp,
                         uint64_t *tstates, size_t cap, size_t *n);

#endif

/* interp: finding the CPython runtime in a process (which ELF file, which
 * version, where _PyRuntime / interp_head are after relocation), and reading
 * the interpreter and thread lists and the GIL holder from it. It reads
 * /proc/PID/maps and ELF files, and the target's memory through pf_mem; it
 * does not stop or resume anything. */
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
     * used, `layout` points here, so a discovered pf_target is used where
     * pf_interp_discover wrote it and never copied by value. */
    struct pf_layout own_layout;
    char layout_source[64]; /* where the layout came from, for messages */
};

/* Look for a CPython runtime in process pid, in this order (docs/discovery.md):
 * every mapped libpython*, then the executable, then any other mapped ELF
 * file (an embedding host may load it under any name), each opened through
 * /proc/PID/root (or /proc/PID/map_files), so a process in another mount
 * namespace is read from its own files. In each: the symbol _PyRuntime, the
 * section .PyRuntime, the symbol interp_head, PyInterpreterState_Head's
 * code, the _Py_DebugOffsets cookie in the file's writable mappings. The
 * layout comes from the target's _Py_DebugOffsets (3.13+) or the generated
 * table for its version; abi (may be NULL) forces the version. Before the
 * layout is trusted the interpreter state is checked (pf_interp_validate).
 * Fails with PF_ERR_NOTPYTHON (nothing found; diag says what was looked
 * for), PF_ERR_NOTREADY (found but not initialised), PF_ERR_STARTING
 * (nothing found yet in a process that is still starting), PF_ERR_UNSUPPORTED (a version or build
 * we cannot read, or a layout the memory contradicts), PF_ERR_USAGE (a bad
 * abi), PF_ERR_NOPROC. */
pf_err pf_interp_discover(pid_t pid, const char *abi, struct pf_diag *diag, struct pf_target *out);

/* Check that t's layout fits the memory: the main interpreter's first
 * thread state must point back to it, the code object of that thread's
 * innermost frame (if any) must have the code type and string names, and
 * the GIL state must be readable.
 * PF_ERR_NOTREADY while there is no interpreter or thread yet;
 * PF_ERR_CORRUPT when the memory contradicts the layout; diag says what. */
pf_err pf_interp_validate(struct pf_mem *mem, const struct pf_target *t, struct pf_diag *diag);

/* 2.7/3.6: the unrelocated address of the static interp_head, from its
 * .symtab symbol, or, when stripped, decoded from the exported
 * PyInterpreterState_Head(). how is static text naming which. */
pf_err pf_interp_find_head(const struct pf_elf *e, uint64_t *vaddr, const char **how);

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

/* interp: finding the CPython runtime in a process (which ELF file, which
 * version, where _PyRuntime / interp_head are after relocation), and reading
 * the interpreter and thread lists and the GIL holder from it. It reads
 * /proc/PID/maps and ELF files, and the target's memory through pf_mem; it
 * does not stop or resume anything. */
#ifndef PYFLAME_INTERP_H
#define PYFLAME_INTERP_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/code.h"
#include "pyflame/error.h"
#include "pyflame/layout.h"
#include "pyflame/mem.h"
#include "pyflame/pyver.h"

struct pf_target {
    const struct pf_layout *layout;
    struct pf_pyver version;
    uint64_t runtime_addr;        /* _PyRuntime (3.7+), else 0 */
    uint64_t interp_head_addr;    /* &interp_head (2.7, 3.6), else 0 */
    uint64_t tstate_current_addr; /* &_PyThreadState_Current (2.7, 3.6), else 0 */
    struct pf_pytypes types;
    char elf_path[PATH_MAX]; /* the file that holds the runtime, as the target maps it */
    char how[128];           /* which clue located the runtime (symbol, section) */
};

/* Look for a CPython runtime in process pid. abi (may be NULL) forces the
 * layout version. Fails with PF_ERR_NOTPYTHON (nothing found; diag says what
 * was looked for), PF_ERR_UNSUPPORTED (found, no layout), PF_ERR_NOPROC. */
pf_err pf_interp_discover(pid_t pid, const char *abi, struct pf_diag *diag, struct pf_target *out);

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

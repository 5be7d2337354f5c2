/* discover: finding the CPython runtime in a process (which ELF file, which
 * version, where _PyRuntime / interp_head are after relocation, which
 * layout reads it), and checking that layout against the process's memory
 * before it is trusted. It reads /proc/PID/maps and ELF files, and the
 * target's memory through pf_mem; it does not stop or resume anything.
 * docs/discovery.md tells the whole search. */
#ifndef PYFLAME_DISCOVER_H
#define PYFLAME_DISCOVER_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/discover.h");

#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/target/elf.h"
#include "pyflame/target/mem.h"

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

#endif

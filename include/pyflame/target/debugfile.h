/* debugfile: finding the separate debug file of an ELF file that has no
 * .symtab (a distribution's stripped library), the way gdb does, so
 * native frames get names. It only reads files. */
#ifndef PYFLAME_DEBUGFILE_H
#define PYFLAME_DEBUGFILE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/debugfile.h");

#include <sys/types.h>

#include "pyflame/target/elf.h"

/* The debug file of elf, the file mapped at `path` in process pid, or NULL.
 * Searched as gdb does: /usr/lib/debug/.build-id/xx/rest.debug, then the
 * .gnu_debuglink name next to the file, in .debug/ beside it, and under
 * /usr/lib/debug; each in the target's root (/proc/PID/root) first, then in
 * ours. A candidate is used only if it has a .symtab and elf's build ID. */
struct pf_elf *pf_debugfile_find(pid_t pid, const char *path, const struct pf_elf *elf);

#endif

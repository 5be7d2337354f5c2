/* pyver: working out which CPython an ELF file holds, without running
 * anything: Py_Version (3.11+), the _Py_DebugOffsets cookie at the start of
 * .PyRuntime (3.13+), the libpython file name, a version string in .rodata. */
#ifndef PYFLAME_PYVER_H
#define PYFLAME_PYVER_H

#include "pyflame/elf.h"
#include "pyflame/error.h"

struct pf_pyver {
    unsigned major, minor, micro;
    const char *how; /* static text: which clue gave the version */
};

/* path is the file's name as mapped (for the libpythonX.Y hint). */
pf_err pf_pyver_from_elf(const struct pf_elf *e, const char *path, struct pf_pyver *out);

/* Parse "3.11" or "3.11.7" (the --abi value). */
pf_err pf_pyver_parse(const char *text, struct pf_pyver *out);

/* Parse "libpython3.11.so.1.0", "libpython3.7m.so", "/x/libpython2.7.so". */
pf_err pf_pyver_from_name(const char *path, struct pf_pyver *out);

#endif

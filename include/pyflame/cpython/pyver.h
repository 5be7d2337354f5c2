/* pyver: working out which CPython an ELF file holds, without running
 * anything. In order: the _Py_DebugOffsets version at the start of
 * .PyRuntime (3.13+), Py_Version (3.11+), the DT_SONAME (libpythonX.Y),
 * a version string in .rodata, and last the file name it is mapped under. */
#ifndef PYFLAME_PYVER_H
#define PYFLAME_PYVER_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/pyver.h");

#include <stdbool.h>
#include <stdint.h>

#include "pyflame/target/elf.h"
#include "pyflame/base/error.h"

struct pf_pyver {
    unsigned major, minor, micro;
    const char *how; /* static text: which clue gave the version */
    /* The clue states this interpreter's version (_Py_DebugOffsets,
     * Py_Version, DT_SONAME), rather than being a string that might be
     * another's or a name that a copy may have changed. */
    bool certain;
};

/* Decode PY_VERSION_HEX (Include/patchlevel.h): the one place pyflame
 * does. how is the static text stored in out->how. PF_ERR_CORRUPT for a
 * value that is no CPython 2 or 3 version. */
pf_err pf_pyver_from_hex(uint64_t hex, const char *how, struct pf_pyver *out);

/* path is the file's name as mapped (for the libpythonX.Y hint). */
pf_err pf_pyver_from_elf(const struct pf_elf *e, const char *path, struct pf_pyver *out);

/* Parse "3.11" or "3.11.7" (the --abi value). */
pf_err pf_pyver_parse(const char *text, struct pf_pyver *out);

/* Parse "libpython3.11.so.1.0", "libpython3.7m.so", "/x/libpython2.7.so". */
pf_err pf_pyver_from_name(const char *path, struct pf_pyver *out);

#endif

/* pystr: reading CPython string objects out of remote memory as UTF-8:
 * 2.7 str (PyStringObject), PEP 393 str (ASCII, latin-1, UCS-2, UCS-4;
 * compact or not). Bounded by PF_MAX_STRING; it does not check the object's
 * type (the caller knows which type it expects and checks ob_type). */
#ifndef PYFLAME_PYSTR_H
#define PYFLAME_PYSTR_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/pystr.h");

#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/target/mem.h"

/* Read the string object at addr into out (cap bytes, NUL-terminated), as
 * UTF-8. Fails with PF_ERR_CORRUPT when the length exceeds cap-1 or
 * PF_MAX_STRING, the kind is invalid, or a code point is not valid Unicode. */
pf_err pf_pystr_read(struct pf_mem *m, const struct pf_layout *L, uint64_t addr, char *out,
                     size_t cap, size_t *len_out);

/* Read a bytes object (PyBytesObject; PyStringObject in 2.7) at addr into a
 * malloc'd buffer of at most max bytes. On success *out is owned by the caller. */
pf_err pf_pybytes_read(struct pf_mem *m, const struct pf_layout *L, uint64_t addr, size_t max,
                       uint8_t **out, size_t *len_out);

/* Encode code points of `kind` bytes each (1, 2, 4) as UTF-8 into out.
 * Pure; exposed for tests. */
pf_err pf_pystr_encode_utf8(const uint8_t *data, size_t count, unsigned kind, char *out,
                            size_t cap, size_t *len_out);

#endif

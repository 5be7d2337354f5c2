/* debug_offsets: CPython 3.13+'s _Py_DebugOffsets, the table of struct
 * offsets a runtime publishes at the very start of _PyRuntime for
 * out-of-process tools (3.13 Include/internal/pycore_runtime.h, 3.14
 * Include/internal/pycore_debug_offsets.h). This module parses the raw
 * bytes, validates them the way pystack's validateDebugOffsets/clampSizes
 * do, and turns them into a struct pf_layout. It never reads memory: the
 * caller copies the bytes from the target or from the ELF file. */
#ifndef PYFLAME_DEBUG_OFFSETS_H
#define PYFLAME_DEBUG_OFFSETS_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/debug_offsets.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/layout.h"

/* Bytes to copy from the start of _PyRuntime: more than any known
 * version's _Py_DebugOffsets (592 in 3.13, about 800 in 3.14). */
#define PF_DEBUG_OFFSETS_READ 2048

/* No CPython struct we read through debug offsets is anywhere near this;
 * a larger size means we are not looking at debug offsets. */
#define PF_DEBUG_OFFSETS_MAX_SIZE (1u << 20)

/* The offsets pyflame uses, as the target published them. Offsets are
 * from the start of the struct named by the group; `size` is its sizeof. */
struct pf_debug_offsets {
    uint64_t version; /* PY_VERSION_HEX */
    unsigned major, minor, micro;
    const char *format; /* static: which _Py_DebugOffsets layout matched */
    struct {
        uint64_t size, interpreters_head;
    } runtime;
    struct {
        uint64_t size, next, threads_head, ceval_gil;
        uint64_t gil_runtime_state, gil_locked, gil_holder; /* from the interpreter */
    } interp;
    struct {
        uint64_t size, next, interp, current_frame, thread_id, native_thread_id, status;
    } tstate;
    struct {
        uint64_t size, previous, executable, instr_ptr, owner;
    } iframe;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, code_adaptive;
    } code;
    struct {
        uint64_t size, ob_type;
    } object;
    struct {
        uint64_t size, ob_size, ob_sval;
    } bytes;
    struct {
        uint64_t size, state, length, ascii_size;
    } unicode;
};

/* True if buf (len bytes from the start of _PyRuntime) begins with the
 * cookie "xdebugpy". */
bool pf_debug_offsets_present(const uint8_t *buf, size_t len);

/* Parse and validate len bytes from the start of _PyRuntime. force_minor
 * (0 = none; --abi) reads a 3.x runtime with the struct layout of 3.<minor>
 * whatever its version field says. runtime_size (0 = unknown) is
 * _PyRuntime's size from its symbol, checked against runtime_state.size.
 * Fails with PF_ERR_NOTFOUND (no cookie), PF_ERR_UNSUPPORTED (a version or
 * build we have no parser for) or PF_ERR_CORRUPT (values that fail
 * validation), diag saying which. */
pf_err pf_debug_offsets_parse(const uint8_t *buf, size_t len, unsigned force_minor,
                              uint64_t runtime_size, struct pf_diag *diag,
                              struct pf_debug_offsets *out);

/* Build a layout from validated offsets. Debug offsets lack a few things
 * pyflame needs (docs/cpython-internals.md §10.2): the formats and
 * capabilities come from `base` (pf_layout_debug_base()) when it is of the
 * same version, else from pf_layout_later(); field widths from `base`; the
 * few unpublished offsets at base's distance from a published neighbour
 * (NEIGHBOURS in the .c file). PF_ERR_CORRUPT when those do not fit the
 * published struct sizes, PF_ERR_INTERNAL without a base or row, diag
 * saying which. out->source is left NULL for the caller to set. */
pf_err pf_debug_offsets_layout(const struct pf_debug_offsets *d, const struct pf_layout *base,
                               struct pf_diag *diag, struct pf_layout *out);

/* Fields of two layouts that a debug-offsets layout fills in (from the
 * offsets or derived), compared: writes the names of those that differ to
 * names (up to cap) and returns how many differ. For the 3.13 cross-check. */
size_t pf_debug_offsets_diff(const struct pf_layout *a, const struct pf_layout *b,
                             const char **names, size_t cap);

#endif

/* layout: where each field we read sits in CPython's structs, per version.
 *
 * The tables are generated from the real headers by scripts/gen-layouts
 * (src/cpython/layouts/cpython_*.inc) and never typed by hand. This module owns the
 * struct, the lookup by version, and the checked field accessors; it knows
 * nothing about processes or memory. */
#ifndef PYFLAME_LAYOUT_H
#define PYFLAME_LAYOUT_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/layout.h");

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pyflame/base/error.h"

/* A field of a struct: byte offset from the start of the struct and width in
 * bytes. width 0 means "this version has no such field". */
struct pf_field {
    uint32_t off;
    uint32_t width;
};

enum pf_arch { PF_ARCH_X86_64 = 1, PF_ARCH_AARCH64 = 2 };

/* Build flags that change object layouts. */
enum { PF_BUILD_FREE_THREADED = 1u << 0, PF_BUILD_DEBUG = 1u << 1 };

struct pf_layout_key {
    uint8_t major, minor;
    uint8_t arch;  /* enum pf_arch */
    uint8_t flags; /* PF_BUILD_* */
};

/* How a code object maps an instruction offset to a line. */
enum pf_linetable_kind {
    PF_LT_LNOTAB_27 = 1, /* co_lnotab, unsigned line deltas (2.7) */
    PF_LT_LNOTAB_36,     /* co_lnotab, signed line deltas (3.6-3.9) */
    PF_LT_LINETABLE_310, /* co_linetable, PEP 626 (3.10) */
    PF_LT_LOCATIONS_311, /* co_linetable location table (3.11+) */
};

/* Where a thread's frames are and how they chain. */
enum pf_frame_kind {
    PF_FRAMES_OBJECT = 1, /* tstate->frame: PyFrameObject, f_back (<=3.10) */
    PF_FRAMES_CFRAME,     /* tstate->cframe->current_frame: _PyInterpreterFrame (3.11, 3.12) */
    PF_FRAMES_INTERP,     /* tstate->current_frame: _PyInterpreterFrame (3.13+) */
};

/* Where the GIL holder is recorded. */
enum pf_gil_kind {
    PF_GIL_CURRENT_SYMBOL = 1, /* the _PyThreadState_Current variable (2.7, 3.6) */
    PF_GIL_RUNTIME_CURRENT,    /* _PyRuntime.gilstate.tstate_current (3.7-3.11) */
    PF_GIL_INTERP_GIL,         /* interp->ceval.gil -> {locked, last_holder} (3.12+) */
};

/* How names and filenames are stored. */
enum pf_str_kind {
    PF_STR_BYTES = 1, /* PyStringObject: ob_size bytes at ob_sval (2.7) */
    PF_STR_PEP393,    /* PyUnicodeObject, compact or not (3.3+) */
};

/* How a thread state names the OS thread it runs on
 * (docs/cpython-internals.md §3.3). */
enum pf_thread_id_kind {
    PF_TID_PTHREAD = 1, /* thread_id = pthread_self(), mapped to a TID by tick.c (<=3.10) */
    PF_TID_NATIVE,      /* native_thread_id, the kernel TID (3.11+) */
};

/* What a frame's instruction field counts (docs/cpython-internals.md §5.2,
 * §6.3). The walker hands the line-table decoder a byte offset for each. */
enum pf_instr_kind {
    PF_INSTR_LASTI_BYTES = 1, /* f_lasti, bytes into co_code (2.7-3.9) */
    PF_INSTR_LASTI_UNITS,     /* f_lasti, 2-byte code units (3.10) */
    PF_INSTR_POINTER,         /* a pointer into co_code_adaptive (3.11+) */
};

/* What the code outside this module may branch on, besides the kinds
 * above: one named fact each, never a version number and never the
 * presence of an unrelated field. Generated with the offsets by
 * scripts/layout-probe.c; for versions read only through _Py_DebugOffsets,
 * pf_layout_later() holds them (layout.c). docs/cpython-internals.md §1.5. */
struct pf_layout_caps {
    /* _PyRuntime exists (3.7+): interpreters are found through it, else
     * through the interp_head static (2.7, 3.6). */
    bool has_runtime;
    /* Frames may be pushed before their first traceable instruction
     * (3.11+, _PyFrame_IsIncomplete): snap.c drops those. */
    bool incomplete_frames;
    uint8_t thread_id; /* enum pf_thread_id_kind */
    uint8_t instr;     /* enum pf_instr_kind */
    /* FRAME_OWNED_BY_GENERATOR: such frames are never incomplete (3.11+;
     * else 0). */
    uint8_t owner_generator;
    /* Bit n set: a frame whose owner is n is not a frame of the program
     * but the interpreter's (a shim at the base of each eval-loop call);
     * frame.c skips it and ends a run there. 0 up to 3.11. */
    uint8_t shim_owners;
    /* The C function that evaluates frames, whose native frames --native
     * replaces with Python ones (docs/cpython-internals.md §5.3). */
    const char *eval_symbol;
};

struct pf_layout {
    struct pf_layout_key key;
    const char *source; /* the exact version the offsets were generated from */
    uint8_t linetable;  /* enum pf_linetable_kind */
    uint8_t frames;     /* enum pf_frame_kind */
    uint8_t gil;        /* enum pf_gil_kind */
    uint8_t str;        /* enum pf_str_kind */
    struct pf_layout_caps caps;

    /* Each `size` is the number of bytes we copy: the end of the last field
     * used, not sizeof (3.11's _PyRuntimeState is ~160 KiB). */
    struct { /* _PyRuntimeState (3.7+) */
        uint32_t size;
        struct pf_field interp_head, interp_main, tstate_current, gil_locked, gil_last_holder;
    } runtime;
    struct { /* PyInterpreterState */
        uint32_t size;
        struct pf_field next, threads_head, ceval_gil;
    } interp;
    struct { /* PyThreadState */
        uint32_t size;
        struct pf_field next, interp, frame, thread_id, native_thread_id, state;
    } tstate;
    struct { /* _PyCFrame (3.11, 3.12) */
        uint32_t size;
        struct pf_field current_frame;
    } cframe;
    struct { /* PyFrameObject (<=3.10) */
        uint32_t size;
        struct pf_field back, code, lasti;
    } pyframe;
    struct { /* _PyInterpreterFrame (3.11+) */
        uint32_t size;
        struct pf_field previous, code, instr, owner, is_entry;
    } iframe;
    struct { /* PyCodeObject */
        uint32_t size;
        struct pf_field filename, name, qualname, firstlineno, linetable, code_adaptive,
            firsttraceable;
    } code;
    struct { /* PyObject / PyVarObject */
        struct pf_field ob_type, ob_size;
    } object;
    struct { /* PyBytesObject, or PyStringObject in 2.7 */
        uint32_t size;
        struct pf_field ob_size, ob_sval;
    } bytes;
    struct { /* PEP 393 strings */
        uint32_t size;         /* bytes to copy for the header */
        uint32_t ascii_size;   /* sizeof(PyASCIIObject): data of compact ASCII strings */
        uint32_t compact_size; /* sizeof(PyCompactUnicodeObject): data of other compact strings */
        struct pf_field length, state, data;
    } unicode;
    struct { /* struct _gil_runtime_state (3.12+, reached through interp->ceval.gil) */
        uint32_t size;
        struct pf_field locked, last_holder;
    } gilstate;
};

/* The generated tables, in version order. */
size_t pf_layout_count(void);
const struct pf_layout *pf_layout_at(size_t i);

/* The entry for a version on this build's architecture, or NULL. */
const struct pf_layout *pf_layout_find(unsigned major, unsigned minor, unsigned flags);

/* A version pyflame reads only through its _Py_DebugOffsets, having no
 * generated table for it: the formats and capabilities its offsets do not
 * say, from one hand-kept row per version in layout.c. */
struct pf_layout_later {
    uint8_t major, minor;
    uint8_t linetable, frames, gil, str; /* as in struct pf_layout */
    struct pf_layout_caps caps;
};

/* The row for major.minor, or NULL. */
const struct pf_layout_later *pf_layout_later(unsigned major, unsigned minor);

/* "3.14": the versions of those rows, for messages. Borrowed, static. */
const char *pf_layout_later_names(void);

/* The hand-kept rows, in version order (for tests). */
size_t pf_layout_later_count(void);
const struct pf_layout_later *pf_layout_later_at(size_t i);

/* The generated default-build table that a layout built from the
 * _Py_DebugOffsets of major.minor takes what the offsets do not publish
 * from: the same version's, or else the newest older one with the same
 * frame chain as the row of pf_layout_later(). NULL if none. */
const struct pf_layout *pf_layout_debug_base(unsigned major, unsigned minor);

/* "3.11" etc., for messages and test names. Borrowed, static. */
const char *pf_layout_name(const struct pf_layout *L);

/* "2.7, 3.6, ..., 3.13": the versions we have tables for. Borrowed, static. */
const char *pf_layout_supported(void);

static inline bool pf_field_ok(struct pf_field f, size_t len)
{
    return f.width != 0 && f.off <= len && len - f.off >= f.width;
}

/* Read an unsigned field of width 1, 2, 4 or 8 from a local copy of a struct.
 * The buffer and the offsets may both be wrong; this checks them. */
static inline pf_err pf_field_uint(const uint8_t *buf, size_t len, struct pf_field f, uint64_t *out)
{
    if (!pf_field_ok(f, len))
        return PF_ERR_CORRUPT;
    switch (f.width) {
    case 1: { uint8_t v; memcpy(&v, buf + f.off, 1); *out = v; return PF_OK; }
    case 2: { uint16_t v; memcpy(&v, buf + f.off, 2); *out = v; return PF_OK; }
    case 4: { uint32_t v; memcpy(&v, buf + f.off, 4); *out = v; return PF_OK; }
    case 8: { uint64_t v; memcpy(&v, buf + f.off, 8); *out = v; return PF_OK; }
    default: return PF_ERR_CORRUPT;
    }
}

/* A pointer field (8 bytes on the architectures we support). */
static inline pf_err pf_field_ptr(const uint8_t *buf, size_t len, struct pf_field f, uint64_t *out)
{
    if (f.width != 8)
        return PF_ERR_CORRUPT;
    return pf_field_uint(buf, len, f, out);
}

/* A signed field of width 4 or 8 (f_lasti, co_firstlineno). */
static inline pf_err pf_field_int(const uint8_t *buf, size_t len, struct pf_field f, int64_t *out)
{
    uint64_t u;
    pf_err err = pf_field_uint(buf, len, f, &u);
    if (err)
        return err;
    if (f.width == 4)
        *out = (int32_t)(uint32_t)u;
    else if (f.width == 8)
        *out = (int64_t)u;
    else
        *out = (int64_t)u;
    return PF_OK;
}

#endif

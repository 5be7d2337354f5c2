/* merge: one stack from a thread's native frames and its Python frames, and
 * which native frames belong to the interpreter's machinery. Pure functions
 * over arrays of intern ids: no target, no I/O, no libunwind. unwind.c
 * classifies each frame once (by symbol); the sampler calls pf_merge on every
 * native sample.
 *
 * The model: every native frame of the interpreter's frame-evaluation
 * function (_PyEval_EvalFrameDefault; PyEval_EvalFrameEx on 2.7) ran one
 * "run" of Python frames. Up to 3.10 a run is one frame. From 3.11 a Python
 * call from Python does not recurse in C, so one native frame runs several
 * Python frames: the run ends at its entry frame (3.11 is_entry) or at a
 * shim frame owned by the C stack (3.12+). frame.c reports these ends; see
 * pf_frame_walk_runs. */
#ifndef PYFLAME_MERGE_H
#define PYFLAME_MERGE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(NATIVE, "pyflame/native/merge.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* In the Python item list given to pf_merge: the outer end of one run. */
#define PF_MERGE_RUN_END UINT32_MAX

enum pf_native_kind {
    PF_NATIVE_SHOW = 0, /* kept as is: C extensions, libc, start-up code, unknown addresses */
    PF_NATIVE_EVAL,     /* the frame-evaluation function: replaced by the Python frames it ran */
    PF_NATIVE_HIDE,     /* the interpreter's call plumbing between Python frames: dropped */
};

struct pf_native_item {
    uint32_t frame; /* intern frame id; used for PF_NATIVE_SHOW only */
    uint8_t kind;   /* enum pf_native_kind */
};

/* What a native frame is, from its symbol. Only frames of the object that
 * holds the interpreter (libpython, or a static python executable) can be
 * EVAL or HIDE: the same name elsewhere is someone else's function.
 * eval_symbol is the interpreter's frame-evaluation function, as its
 * layout names it (pf_layout_caps.eval_symbol); NULL matches nothing.
 * Symbol suffixes that the compiler or the linker adds (".cold",
 * ".isra.0", ".constprop.0", "@GLIBC_2.2.5") are ignored. */
enum pf_native_kind pf_merge_classify(const char *symbol, bool in_interpreter,
                                      const char *eval_symbol);

enum pf_merge_result {
    PF_MERGE_OK = 0,
    /* The native stack holds a different number of evaluation frames than
     * the Python stack has runs: a thread caught entering or leaving the
     * eval loop, or frames we cannot recognise. */
    PF_MERGE_MISMATCH,
    /* One of the two stacks is not whole: unwinding stopped before the base
     * of the native stack, or either stack hit its depth cap. */
    PF_MERGE_INCOMPLETE,
};

/* Frames for the stacks that cannot be merged (intern ids). */
struct pf_merge_marks {
    uint32_t mismatch, incomplete;
};

/* Merge one thread's stacks, innermost frame first on both sides.
 * - native[0..nn): the unwound frames; `native_whole` says whether unwinding
 *   reached the base of the stack (and was not cut by a cap).
 * - py[0..np): Python frame ids, with PF_MERGE_RUN_END after the outermost
 *   frame of each run (a run may be empty: a shim with no frame above it);
 *   `py_whole` is false when the Python walk was cut at its cap.
 * - out: room for at least nn + np + 1 ids; *n is how many were written,
 *   innermost first.
 * Merged, each EVAL frame becomes the next run's Python frames, HIDE frames
 * go, SHOW frames stay. When that cannot be done exactly, out holds the
 * Python frames alone with the matching mark as the outermost (root) frame:
 * the sample is kept, the native side is not guessed. */
enum pf_merge_result pf_merge(const struct pf_native_item *native, size_t nn, bool native_whole,
                              const uint32_t *py, size_t np, bool py_whole,
                              const struct pf_merge_marks *marks, uint32_t *out, size_t *n);

#endif

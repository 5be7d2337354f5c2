/* limits: every cap on data that comes from the target, in one place.
 * Whatever we read from another process may be garbage or change under us;
 * each count, length and depth we act on is checked against one of these. */
#ifndef PYFLAME_LIMITS_H
#define PYFLAME_LIMITS_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/limits.h");

/* Frames in one stack. A deeper chain is cut and marked "(truncated)". */
#define PF_MAX_DEPTH 2048
/* Python thread states walked in one interpreter. */
#define PF_MAX_THREADS 4096
/* Interpreters walked in one runtime. */
#define PF_MAX_INTERPRETERS 64
/* Bytes of one name or filename, after UTF-8 encoding. */
#define PF_MAX_STRING 4096
/* Bytes of one line table (co_lnotab / co_linetable). */
#define PF_MAX_LINETABLE (1u << 20)
/* One remote read: guards against lengths read from the target. */
#define PF_MAX_READ (4u << 20)
/* Size of any one struct prefix we copy (layouts say how much we need). */
#define PF_MAX_STRUCT 4096
/* OS threads of the target we track. */
#define PF_MAX_TASKS 65536
/* Native frames unwound in one stack (--native). A deeper stack is shown
 * without its native frames, marked (see merge.h). */
#define PF_MAX_NATIVE_DEPTH 4096
/* Bytes of one thread's stack copied for unwinding (the default thread
 * stack is 8 MiB). */
#define PF_MAX_NATIVE_STACK (8u << 20)

/* Bytes copied by one speculative fill (prefetch.h): the plans of every
 * thread read in one tick. */
#define PF_MAX_PREFETCH (16u << 20)

#endif

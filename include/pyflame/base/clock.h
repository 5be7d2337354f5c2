/* clock: the monotonic clock in nanoseconds, the one time base of the
 * sampler's deadlines, the native unwinder's back-off and --serve's
 * timeline. One function, so every module reads the same clock the same
 * way; wall-clock time is main.c's alone (it converts for the writers). */
#ifndef PYFLAME_CLOCK_H
#define PYFLAME_CLOCK_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/clock.h");

#include <stdint.h>

/* CLOCK_MONOTONIC, in ns: never steps back when the wall clock is set. */
uint64_t pf_clock_now_ns(void);

#endif

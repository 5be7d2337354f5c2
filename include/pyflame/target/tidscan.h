/* tidscan: where glibc's struct pthread keeps the thread's kernel TID.
 *
 * CPython <= 3.10 names a thread by pthread_self(), the address of glibc's
 * struct pthread, and that struct holds the kernel TID at an offset that
 * depends on the glibc build (0x2d0 on x86-64 glibc 2.36). Knowing it,
 * a thread state maps to its OS thread with one read and no stop; without
 * it, each thread is stopped once to read its TLS base (proc.h). The
 * offset is found from the target itself: given a copy of the start of the
 * struct pthread of several threads, it is the one offset at which every
 * copy holds a distinct live TID of the target. */
#ifndef PYFLAME_TIDSCAN_H
#define PYFLAME_TIDSCAN_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/tidscan.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes of each struct pthread to copy for the scan. */
#define PF_TIDSCAN_LEN 2048

/* blocks: n copies of PF_TIDSCAN_LEN bytes, one per thread. is_live says
 * whether a number is a live TID of the target. The smallest offset (a
 * multiple of 4, at least 8) where all n hold distinct live TIDs, none of
 * them the upper half of a pointer; 0 if there is none. With one thread,
 * several offsets can hold its TID by chance: callers scan as many threads
 * as they can. */
uint32_t pf_tidscan_offset(const uint8_t *blocks, size_t n, bool (*is_live)(void *ctx, pid_t tid),
                           void *ctx);

#endif

/* agg: counts per distinct stack (an array of frame ids, root first), plus
 * the samples that had no stack: idle (nobody ran Python) and failed, by
 * reason. It holds ids only; writers turn them into text through intern. */
#ifndef PYFLAME_AGG_H
#define PYFLAME_AGG_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(PROFILE, "pyflame/profile/agg.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"

/* Why a sample could not be read. Reported in the stderr summary. */
enum pf_fail_reason {
    PF_FAIL_MEMORY = 0,   /* a read of the target's memory failed */
    PF_FAIL_CORRUPT,      /* what we read was inconsistent (cycle, bad type, bad table) */
    PF_FAIL_GIL_MOVED,    /* the GIL changed hands while we stopped the holder */
    PF_FAIL_THREAD_GONE,  /* the thread exited while we stopped it */
    PF_FAIL_NO_THREAD,    /* a thread state maps to no OS thread we know (starting or gone) */
    PF_FAIL_NOT_READY,    /* the interpreter was not (or no longer) initialised */
    PF_FAIL_PTRACE,       /* stopping or resuming the thread failed */
    PF_FAIL_TORN,         /* --nonblocking: the stack changed while it was read */
    PF_FAIL_SLOW_STOP,    /* the thread did not stop in time, and no live copy was confirmed */
    PF_FAIL__COUNT
};

const char *pf_fail_reason_name(enum pf_fail_reason r);

struct pf_agg;

pf_err pf_agg_new(struct pf_agg **out);
void pf_agg_free(struct pf_agg *a);

/* Forget every count, stack and timeline entry (--flush-reset: a new
 * window), keeping the memory for the next. */
void pf_agg_reset(struct pf_agg *a);

/* Count one sample of a stack of n frame ids, root first. */
pf_err pf_agg_add(struct pf_agg *a, const uint32_t *frames, size_t n, uint64_t count);

void pf_agg_add_idle(struct pf_agg *a, uint64_t count);
void pf_agg_add_failed(struct pf_agg *a, enum pf_fail_reason why, uint64_t count);

uint64_t pf_agg_idle(const struct pf_agg *a);
uint64_t pf_agg_failed(const struct pf_agg *a);
uint64_t pf_agg_failed_by(const struct pf_agg *a, enum pf_fail_reason why);
/* Samples that produced a stack (sum of all stack counts). */
uint64_t pf_agg_stack_samples(const struct pf_agg *a);

/* Distinct stacks, in first-seen order. */
size_t pf_agg_stack_count(const struct pf_agg *a);
/* Stack i: its frames (borrowed), length and count. */
void pf_agg_stack_at(const struct pf_agg *a, size_t i, const uint32_t **frames, size_t *n,
                     uint64_t *count);

/* The timeline, for formats that show time (flamechart, chrome): off
 * unless asked for, since it grows with every sample (8 bytes a sample,
 * 8 more a tick). pf_agg_set_time() marks the instant of the tick the next
 * samples belong to. */
pf_err pf_agg_keep_timeline(struct pf_agg *a);
void pf_agg_set_time(struct pf_agg *a, uint64_t mono_ns);

/* What a timeline entry is: a stack index (pf_agg_stack_at), or one of: */
#define PF_AGG_IDLE UINT32_MAX
#define PF_AGG_FAILED(reason) (UINT32_MAX - 1 - (uint32_t)(reason))
#define PF_AGG_IS_FAILED(what) ((what) < PF_AGG_IDLE && (what) >= PF_AGG_FAILED(PF_FAIL__COUNT - 1))
#define PF_AGG_FAILED_REASON(what) ((enum pf_fail_reason)(UINT32_MAX - 1 - (what)))

size_t pf_agg_timeline_count(const struct pf_agg *a);
/* False once the timeline could not grow (out of memory): it stopped
 * there, and a format with time must not present it as whole. */
bool pf_agg_timeline_complete(const struct pf_agg *a);
/* Entry i, in the order sampled: its tick's instant (the monotonic clock
 * given to pf_agg_set_time) and what it was. */
void pf_agg_timeline_at(const struct pf_agg *a, size_t i, uint64_t *mono_ns, uint32_t *what);

/* Drop the timeline's entries older than mono_ns (--serve keeps only the
 * last minutes). The counts and stacks stay. Dropping everything up to the
 * last tick also restarts a timeline that had run out of memory. */
void pf_agg_timeline_drop_before(struct pf_agg *a, uint64_t mono_ns);

/* One thread's stack as read at one tick, for -d: the sampler hands it to
 * a callback (main.c prints it with pf_writer_dump_thread), bypassing the
 * aggregate, as a dump counts nothing. */
struct pf_thread_stack {
    pid_t tid;
    const char *name;       /* OS thread name */
    char state;             /* kernel state before the stop: 'R', 'S', 'D'... */
    bool gil;               /* holds the GIL */
    const uint32_t *frames; /* frame ids (intern), innermost first */
    size_t depth;
    bool truncated;
    enum pf_fail_reason failed; /* PF_FAIL__COUNT when the stack was read */
    const char *process;        /* --subprocesses: "(process PID COMMAND)", else NULL */
};

#endif

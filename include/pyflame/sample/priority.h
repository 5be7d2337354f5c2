/* priority: how the kernel schedules pyflame itself while it samples.
 *
 * A sampler's timer wake-up must run when it fires, whatever the target is
 * doing. As a time-shared (SCHED_OTHER) task it does not: PTRACE_CONT wakes
 * the target, the scheduler often puts it on pyflame's CPU, and pyflame's
 * next wake-up waits there until the target's busy thread sleeps or its
 * slice ends (milliseconds). Samples then slide out of the target's CPU
 * work into its sleeps: a thread busy half of the time in 5 ms bursts
 * showed 3.3 points less busy than it was; at SCHED_FIFO priority 1, 0.2
 * (docs/performance.md, "Scheduling"). So the sampler runs at real-time
 * priority 1 when it may (CAP_SYS_NICE, or RLIMIT_RTPRIO), with two
 * guards:
 *  - SCHED_RESET_ON_FORK: nothing pyflame starts inherits the policy;
 *  - RLIMIT_RTTIME (its soft limit only, restored after): running
 *    PF_PRIORITY_RT_SLICE_US without blocking means pyflame cannot keep
 *    up; the kernel then sends SIGXCPU, and
 *    pf_priority_on_sigxcpu() puts pyflame back to time sharing for the
 *    rest of the run, so it can never take a CPU from the machine.
 * Otherwise (not permitted, --no-realtime) it asks for a short time slice,
 * which lets its wake-ups preempt sooner on Linux 6.12+. */
#ifndef PYFLAME_PRIORITY_H
#define PYFLAME_PRIORITY_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(SAMPLE, "pyflame/sample/priority.h");

#include <stdbool.h>

#define PF_PRIORITY_RT_SLICE_US 50000

enum pf_priority {
    PF_PRIORITY_NORMAL,      /* as pyflame was started (nice, SCHED_IDLE, ...) */
    PF_PRIORITY_SHORT_SLICE, /* SCHED_OTHER with a 0.1 ms slice */
    PF_PRIORITY_REALTIME,    /* SCHED_FIFO 1 */
    PF_PRIORITY_DEMOTED,     /* was real-time, back to time sharing (RLIMIT_RTTIME) */
};

/* Raise pyflame's priority for sampling: real-time if allow_realtime and
 * permitted, else a short slice. Only a time-shared pyflame is raised, and
 * one started with a positive nice value only to the short slice (keeping
 * its nice value); one under SCHED_IDLE or a real-time policy keeps what
 * it was given. Returns what it got. */
enum pf_priority pf_priority_raise(bool allow_realtime);

/* Back to time sharing (the write at the end has no schedule to keep). */
void pf_priority_lower(void);

/* Around work between ticks that may run long (a flush, a scrape's
 * profile): time-shared for it, so it neither takes a CPU from the machine
 * nor uses up the RLIMIT_RTTIME guard. */
void pf_priority_pause(void);
void pf_priority_resume(void);

/* The SIGXCPU handler's work: async-signal-safe. A SIGXCPU that is not
 * the guard's (RLIMIT_CPU) gets its default action. */
void pf_priority_on_sigxcpu(void);

/* What pyflame ran at: the last raise, or DEMOTED if the guard fired. */
enum pf_priority pf_priority_current(void);

/* "real-time (SCHED_FIFO 1)" and so on, for --stats. */
const char *pf_priority_name(enum pf_priority p);

#endif

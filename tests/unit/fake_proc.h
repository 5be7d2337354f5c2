/* fake_proc: the ptrace layer (pyflame/target/proc.h) over an in-memory
 * model of a process, for unit tests of the sampling strategies. It is
 * linked in place of src/target/proc.c (tests/meson.build), and defines
 * only the pf_proc_* functions the strategies and tick.c call.
 *
 * Each thread has a TID, a kernel state ('R', 'S', ...), a schedstat run
 * counter, a TLS base (pthread_self() of <= 3.10) and a stopped flag.
 * Every stop and resume is recorded, in order, and so is every misuse the
 * real layer would not survive or that breaks pyflame's rules
 * (docs/design.md, "Stopping threads"): stopping a thread already stopped,
 * resuming one that is not, and asking /proc or the TLS map about threads
 * while a thread is held (nothing but copying happens in a stop window).
 * Tests assert on fake_proc_violations() == 0 at the end. */
#ifndef PYFLAME_TEST_FAKE_PROC_H
#define PYFLAME_TEST_FAKE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/target/proc.h"

#define FAKE_MAX_THREADS 16
#define FAKE_MAX_CALLS 256

struct fake_thread {
    pid_t tid;
    char state;         /* what pf_proc_thread_state reports while it runs */
    uint64_t runs;      /* schedstat run count ... */
    uint64_t runs_step; /* ... which grows by this after each read (it ran meanwhile) */
    uint64_t tls;       /* TLS base: pthread_self() */
    char name[32];
    bool stopped;       /* held by a stop */
    bool gone;          /* exited: not a thread of the process any more */
    /* What the next stops find: */
    bool vanish_on_stop; /* the thread exits as it is stopped: PF_STOP_GONE */
    bool too_slow;       /* it does not stop in time: PF_STOP_TOO_SLOW */
    unsigned stops, resumes;
};

enum fake_call_kind {
    FAKE_STOP,   /* a thread in a pf_proc_stop_threads call; result: PF_STOP_* */
    FAKE_RESUME, /* pf_proc_resume_thread */
    FAKE_TLS,    /* pf_proc_tid_by_tls; tid: the answer */
    FAKE_STATE,  /* pf_proc_thread_state */
    FAKE_RUNS,   /* pf_proc_thread_runs */
    FAKE_POLL,   /* pf_proc_poll */
};

struct fake_call {
    enum fake_call_kind kind;
    pid_t tid;
    unsigned batch;        /* FAKE_STOP: which pf_proc_stop_threads call, from 1 */
    unsigned char result;  /* FAKE_STOP: PF_STOP_HELD, _GONE, _TOO_SLOW */
};

struct pf_proc {
    struct fake_thread threads[FAKE_MAX_THREADS];
    size_t n;
    struct fake_call calls[FAKE_MAX_CALLS];
    size_t ncalls;
    unsigned batches; /* pf_proc_stop_threads calls */
    unsigned violations;
    char first_violation[160];
    /* Called for each thread a stop holds, once every thread of the call
     * is stopped: a test changes the target's memory "while stopped". */
    void (*on_stop)(void *ctx, pid_t tid);
    void *on_stop_ctx;
};

/* A fake process with no threads (calloc'd; free() it). */
struct pf_proc *fake_proc_new(void);

/* Add a running thread; returns it to set more. */
struct fake_thread *fake_proc_add(struct pf_proc *p, pid_t tid, char state, uint64_t tls);

/* The thread tid (gone or not), or NULL. */
struct fake_thread *fake_proc_thread(struct pf_proc *p, pid_t tid);

/* Threads held right now. */
size_t fake_proc_held(const struct pf_proc *p);

/* Calls of a kind recorded (tid 0: for every thread). */
size_t fake_proc_count(const struct pf_proc *p, enum fake_call_kind kind, pid_t tid);

/* Forget the record (the threads and their counters stay). */
void fake_proc_clear_record(struct pf_proc *p);

#endif

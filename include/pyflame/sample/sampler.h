/* sampler: the loop. Ticks sit on a fixed schedule of absolute deadlines,
 * one in each interval (at a random instant of it, unless --no-jitter), so
 * the time a sample takes never shifts the next. A tick that comes late
 * is taken late and counted, never dropped: dropping the ticks after a
 * slow sample would drop them when the target is in a state that is slow
 * to read, and bias the profile. If pyflame cannot keep up, or would keep
 * the target stopped more than a quarter of the time, it thins the whole
 * schedule (a longer interval from then on) and says so. At each tick the
 * chosen strategy (tick.h) reads the stacks. It knows nothing of the
 * output format. */
#ifndef PYFLAME_SAMPLER_H
#define PYFLAME_SAMPLER_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(SAMPLE, "pyflame/sample/sampler.h");

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/target/mem.h"
#include "pyflame/target/proc.h"

/* Where the run is, for between_ticks. */
struct pf_sampler_progress {
    double elapsed;   /* seconds since the schedule started */
    uint64_t ticks;   /* ticks taken */
    double interval;  /* the interval now (thinning doubles it) */
    unsigned py_major, py_minor, py_micro; /* the interpreter's version */
};

struct pf_sampler_opts {
    double interval;       /* seconds between ticks (-r) */
    double duration;       /* seconds to sample (-s); < 0: until the target ends */
    bool line_numbers;     /* false with -n */
    bool wait_for_python;  /* launch mode: keep looking until the interpreter appears */
    double ready_timeout;  /* attach mode: how long to wait for an initialising interpreter */
    const char *abi;       /* --abi, or NULL */
    bool all_threads;      /* --threads: every Python thread, not only the GIL holder */
    bool skip_idle;        /* -x with --threads: do not read threads the kernel says sleep */
    bool thread_roots;     /* --show-threads: a root frame per thread */
    bool native;           /* --native: native frames merged with the Python frames */
    bool jitter;           /* --jitter: each tick at a random point of its interval's first half */
    bool nonblocking;      /* --nonblocking: never stop the target; torn reads are failures */
    /* Called once, when the interpreter is found and the schedule starts
     * (main raises pyflame's priority there, priority.h), or NULL. */
    void (*on_schedule)(void *ctx);
    void *on_schedule_ctx;
    /* Called between ticks, while the target runs (main writes flushes and
     * the progress line there), or NULL. */
    void (*between_ticks)(void *ctx, const struct pf_sampler_progress *p);
    void *between_ticks_ctx;
    /* -d: at the first tick, report every thread to dump() and stop. */
    void (*dump)(void *ctx, const struct pf_thread_stack *thread);
    void *dump_ctx;
};

/* What happened, for the summary on stderr. */
struct pf_sampler_stats {
    uint64_t ticks;           /* ticks taken: samples, idle and failed */
    uint64_t thread_samples;  /* --threads: thread stacks read or attempted */
    uint64_t late;            /* ticks taken more than one interval after their time */
    uint64_t thinned;         /* times the schedule was thinned (interval doubled) */
    uint64_t dropped;         /* ticks given up when thinning (the backlog at that point) */
    double interval;          /* the interval at the end (the asked one unless thinned) */
    uint64_t before_ready;    /* ticks before the interpreter was initialised (not samples) */
    uint64_t stopped_samples; /* samples that stopped a thread */
    uint64_t stop_ns_median, stop_ns_p99, stop_ns_max;
    uint64_t gil_released;    /* released between look and stop: the look's copy counted */
    uint64_t gil_idle;        /* ... that copy unconfirmed and nobody holds the GIL: idle */
    uint64_t gil_retried;     /* ... unconfirmed and another thread holds it: that one read */
    uint64_t slow_stops;      /* threads that did not stop within an interval (look's copy used) */
    uint64_t reread;          /* neither the stopped nor the live copy stood: read again */
    uint64_t reads;           /* system calls reading the target's memory */
    uint64_t prefetch_hits, prefetch_misses; /* reads served by the speculative copy, or not */
    uint64_t native_mismatch;   /* --native: stacks shown without native frames, as the  */
    uint64_t native_incomplete; /* two did not pair up, or unwinding stopped early */
    uint64_t native_samples;    /* --native: stacks unwound */
    uint64_t native_frames;     /* native frames in them */
    uint64_t native_unwind_ns;  /* time spent unwinding them (in the stop window) */
    uint64_t native_merge_ns;   /* time spent naming and merging them (after it) */
    double elapsed;           /* seconds from the first tick to the end */
    pf_err end;               /* why the loop ended: PF_OK (time or signal), EXITED, EXEC */
    bool target_found;
};

struct pf_sampler;

pf_err pf_sampler_new(struct pf_proc *proc, struct pf_mem *mem, struct pf_intern *names,
                      struct pf_agg *agg, const struct pf_sampler_opts *opts,
                      struct pf_sampler **out);
void pf_sampler_free(struct pf_sampler *s);

/* Sample until the duration is over, *stop becomes non-zero, or the target
 * ends or execs. Setup failures (not Python, unsupported) come back with
 * diag filled; the target has been left running either way. */
pf_err pf_sampler_run(struct pf_sampler *s, volatile sig_atomic_t *stop, struct pf_diag *diag);

/* Statistics so far (complete after pf_sampler_run). Borrowed. */
const struct pf_sampler_stats *pf_sampler_stats(struct pf_sampler *s);

#endif

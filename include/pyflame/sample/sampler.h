/* sampler: the loop. Ticks sit on a fixed schedule of absolute deadlines,
 * one in each interval (at a random instant of it, unless --no-jitter), so
 * the time a sample takes never shifts the next. A tick that comes late
 * is taken late and counted, never dropped: dropping the ticks after a
 * slow sample would drop them when the target is in a state that is slow
 * to read, and bias the profile. If pyflame cannot keep up, or would keep
 * the target stopped more than a quarter of the time, it thins the whole
 * schedule (a longer interval from then on) and says so. At each tick the
 * chosen strategy (tick.h) reads the stacks. It starts with a target
 * already found (ready.h), and knows nothing of the output format. */
#ifndef PYFLAME_SAMPLER_H
#define PYFLAME_SAMPLER_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(SAMPLE, "pyflame/sample/sampler.h");

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "pyflame/profile/agg.h"
#include "pyflame/sample/procset.h"
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
    bool all_threads;      /* --threads: every Python thread, not only the GIL holder */
    bool skip_idle;        /* -x with --threads: do not read threads the kernel says sleep */
    bool thread_roots;     /* --show-threads: a root frame per thread */
    bool native;           /* --native: native frames merged with the Python frames */
    bool jitter;           /* each tick at a random instant of its interval (false: --no-jitter) */
    bool nonblocking;      /* --nonblocking: never stop the target; torn reads are failures */
    bool subprocesses;     /* --subprocesses: the root's tree (procset.h) */
    bool launched;         /* -t: the run ends with the command (with subprocesses) */
    const char *abi;       /* --abi, or NULL: for processes of the tree */
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
    uint64_t process_ticks;   /* processes read over all ticks (= ticks alone) */
    uint64_t thread_samples;  /* --threads: thread stacks read or attempted */
    uint64_t late;            /* ticks taken more than one interval after their time */
    uint64_t thinned;         /* times the schedule was thinned (interval doubled) */
    uint64_t dropped;         /* ticks given up when thinning (the backlog at that point) */
    double interval;          /* the interval at the end (the asked one unless thinned) */
    uint64_t before_ready;    /* ticks the interpreter was not initialised at (not samples) */
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
    double elapsed;           /* seconds from the start of the schedule to the end */
    pf_err end;               /* why the loop ended: PF_OK (time or signal), EXITED, EXEC */
    struct pf_procset_counts processes; /* --subprocesses: processes seen, profiled, skipped */
};

struct pf_sampler;

/* A sampler of the target ready.h found, or with opts->subprocesses of the
 * tree under proc (mem and target NULL: procset.h finds each process).
 * proc, mem, target, names and agg are borrowed and must outlive it. diag
 * is filled when --native's unwinder cannot be set up. */
pf_err pf_sampler_new(struct pf_proc *proc, struct pf_mem *mem, struct pf_target *target,
                      struct pf_intern *names, struct pf_agg *agg,
                      const struct pf_sampler_opts *opts, struct pf_diag *diag,
                      struct pf_sampler **out);
void pf_sampler_free(struct pf_sampler *s);

/* Sample until the duration is over, *stop becomes non-zero, or the target
 * ends or execs (stats.end says which). The target is left running.
 * PF_ERR_NOTPYTHON: --subprocesses, attached, and no process of the tree
 * is CPython. */
pf_err pf_sampler_run(struct pf_sampler *s, volatile sig_atomic_t *stop);

/* Statistics so far (complete after pf_sampler_run). Borrowed. */
const struct pf_sampler_stats *pf_sampler_stats(struct pf_sampler *s);

#endif

/* tick: what one tick of sampling is made of, shared by the stopping
 * strategies (strategy_*.c). The sampler owns a struct pf_tick and calls
 * its strategy's tick() on schedule; a strategy decides which threads to
 * stop (or none), and uses these services for the rest:
 *
 *   look    pf_tick_look: the main interpreter, the GIL holder, the thread
 *           list, read live in one batched read (prefetch.h)
 *   map     pf_tick_slot / pf_tick_resolve: thread state -> OS thread,
 *           cached per thread state, resolved outside any stop window
 *   copy    pf_tick_fill + pf_tick_copy: one batched speculative read of
 *           every thread to be read, then each thread's walk through the
 *           copies (snap.h); the only work done while threads are stopped
 *   count   pf_tick_count: decode, intern and count, after every stopped
 *           thread runs again
 *
 * Adding a strategy is a new strategy_X.c with a struct pf_strategy,
 * declared at the end of this file, and a case in pf_sampler_new
 * (sampler.c), which picks the strategy from the options. */
#ifndef PYFLAME_TICK_H
#define PYFLAME_TICK_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(SAMPLE, "pyflame/sample/tick.h");

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/profile/agg.h"
#include "pyflame/cpython/code.h"
#include "pyflame/base/error.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/base/intern.h"
#include "pyflame/target/mem.h"
#include "pyflame/native/merge.h"
#include "pyflame/target/prefetch.h"
#include "pyflame/target/proc.h"
#include "pyflame/cpython/snap.h"
#include "pyflame/native/unwind.h"

/* One Python thread state we have read, and what we know of it. */
struct pf_thread_slot {
    uint64_t tstate_addr;
    uint64_t thread_id; /* its identity field when tid was resolved (snap.h) */
    pid_t tid;          /* 0: not resolved */
    uint64_t last_tick; /* the tick it was last used in, for eviction */
    struct pf_plan plan, journal; /* what to prefetch; what this read touched */
    /* copies: snap, taken live at the look; again, a second live copy
     * that confirms it (or not); stopped, taken while the thread is
     * stopped. Which one is counted is each strategy's choice. */
    struct pf_snap snap, again, stopped;
    bool confirmed;      /* snap and again agree (pf_snap_same) */
    /* this tick (strategies) */
    char state;          /* kernel state before the read ('R', 'S', 'D'...) */
    uint64_t runs;       /* schedstat run count before a live read */
    bool asleep;         /* read live, without a stop */
    bool stop;           /* to be stopped for the read */
    bool slow;           /* ... and did not stop in time */
    size_t stop_idx;     /* its thread in the tick's list of threads to stop */
    bool copied;         /* snap holds this tick's copy */
    bool in_syscall;     /* --native: stopped inside a system call */
    enum pf_fail_reason failed; /* PF_FAIL__COUNT: no failure */
};

struct pf_tick_opts {
    bool line_numbers;    /* false with -n */
    bool all_threads;     /* --threads */
    bool skip_idle;       /* -x with --threads */
    bool thread_roots;    /* --show-threads */
    bool native;          /* --native */
    /* -d: report every thread once */
    void (*dump)(void *ctx, const struct pf_thread_stack *thread);
    void *dump_ctx;
};

/* Counters the summary and --stats print. */
struct pf_tick_stats {
    uint64_t thread_samples;  /* --threads: thread stacks read or attempted */
    uint64_t before_ready;    /* ticks before the interpreter was initialised */
    uint64_t stopped_samples; /* samples that stopped a thread */
    uint64_t stop_ns_max;
    uint64_t gil_released;    /* released between look and stop: the look's copy counted */
    uint64_t gil_idle;        /* ... and that copy unconfirmed, nobody holds it: idle */
    uint64_t gil_retried;     /* ... unconfirmed, another thread holds it: that one read */
    uint64_t reread;          /* neither the stopped nor the live copy stood: read again */
    uint64_t slow_stops;      /* threads that did not stop within the budget */
    uint64_t native_mismatch, native_incomplete, native_samples, native_frames;
    uint64_t native_unwind_ns, native_merge_ns;
};

#define PF_STOP_HIST_US 10000 /* stop-time histogram: 1 us buckets to 10 ms */

struct pf_tick {
    /* borrowed from the sampler */
    struct pf_proc *proc;
    struct pf_mem *mem; /* live memory */
    struct pf_intern *names;
    struct pf_agg *agg;
    const struct pf_target *target;
    struct pf_tick_opts opts;
    struct pf_tick_stats stats;

    struct pf_prefetch *pre;
    struct pf_mem *view; /* pf_prefetch_mem(pre) */
    struct pf_code_cache *codes;
    struct pf_snap_decoder decoder;
    uint64_t tick_no;
    /* The interpreter has been seen initialised (a thread, a GIL). True
     * from the start for a target discover.h found (procset.c sets it:
     * discovery checks both); a tick set up before that (the unit tests'
     * fixtures) counts its ticks until the first GIL holder as
     * before-ready rather than idle. */
    bool ready;
    uint64_t interp;             /* this tick's main interpreter */
    struct pf_plan look_plan, look_journal;

    /* thread states seen, by address */
    struct pf_thread_slot **slots;
    size_t nslots, slots_cap;
    size_t slot_hint; /* where pf_tick_slot starts looking */
    /* this tick's thread list (pf_tick_look with threads) */
    uint64_t *tstates;
    size_t ntstates;
    struct pf_thread_slot **batch; /* slots read this tick */
    const struct pf_plan **plan_ptrs; /* their plans, for one fill */
    pid_t *batch_tids;
    unsigned char *batch_stopped;
    uint64_t holder; /* GIL holder at the look, 0 for none */
    bool holder_read; /* ... and it could be read */
    uint64_t predicted; /* the thread state copied along with the look (0: none) */
    bool look_copied;   /* ... and its copy is in its slot's snap */

    uint32_t tid_offset; /* <= 3.10: TID inside struct pthread, 0 = unknown */
    bool tid_offset_tried;

    /* scratch for counting: the hot path does not allocate */
    uint32_t *ids;   /* frame ids of one stack, innermost first */
    uint32_t *stack; /* root first, for agg */
    uint32_t *runs;  /* --native: ids with run ends, for merge */
    size_t runs_n;
    uint64_t *loop_scratch;
    uint32_t idle_frame, truncated_frame;
    /* --subprocesses: every stack's root, "(process PID COMMAND)" */
    bool process_root;
    uint32_t process_frame;

    /* stop time */
    uint64_t stop_budget_ns; /* longest wait for a stop (the sampler sets it) */
    uint64_t tick_stop_ns; /* threads held this tick, for the schedule */
    uint64_t held_since;   /* when the last pf_tick_stop had its threads stopped */
    bool slow_pending;     /* a thread was given up on: poll for its stop after resuming */
    bool nomem;            /* out of memory where a tick could not say so: end the run */
    uint64_t *hist;

    /* --native */
    struct pf_unwind *unwind;
    struct pf_native_frame *native;
    struct pf_native_item *items;
    size_t native_n;
    enum pf_unwind_end native_end;
    struct pf_merge_marks marks;
};

pf_err pf_tick_init(struct pf_tick *t);
void pf_tick_release(struct pf_tick *t);
/* Once the target is found: sizes that depend on its layout. */
pf_err pf_tick_target_ready(struct pf_tick *t, const struct pf_target *target);

/* Look at the interpreter, live: t->interp and t->holder, and with
 * `threads` the thread list in t->tstates. With a `predicted` slot (the
 * last GIL holder), its stack is copied in the same batched read, so that
 * when it holds the GIL its copy (slot->snap, t->look_copied) shows the
 * instant of the look. Returns false when the tick is settled already
 * (counted as before-ready or failed). */
bool pf_tick_look(struct pf_tick *t, bool threads, struct pf_thread_slot *predicted);

/* Live copies of slots[0..n), without stopping anything: into each slot's
 * snap (unless `have_first`: the look copied it already), then a second
 * time into again; slot->confirmed says whether the two agree. *gil1 and
 * *gil2 (may be NULL) get the GIL holder read with each. */
pf_err pf_tick_copy_live(struct pf_tick *t, struct pf_thread_slot **slots, size_t n,
                         bool have_first, uint64_t *gil1, uint64_t *gil2);

/* The slot of a thread state, made on first sight (NULL: out of memory). */
struct pf_thread_slot *pf_tick_slot(struct pf_tick *t, uint64_t tstate_addr);

/* Map a slot to its OS thread, from a live read of its thread state. May
 * stop threads of the target for a moment (<= 3.10 without the struct
 * pthread offset), so never call it while a thread is held. PF_ERR_NOTFOUND:
 * no thread of the target matches. */
pf_err pf_tick_resolve(struct pf_tick *t, struct pf_thread_slot *slot);

/* One batched speculative read of the plans of slots[0..n). */
pf_err pf_tick_fill(struct pf_tick *t, struct pf_thread_slot *const *slots, size_t n);

/* A GIL holder that could not be read (pf_tick_copy's *gil). */
#define PF_TICK_GIL_UNREAD UINT64_MAX

/* Copy a slot's stack through the copies of the last fill into into
 * (slot->snap or slot->again), journaling what was read as the slot's next
 * plan. With gil, the GIL holder is read first, into *gil
 * (PF_TICK_GIL_UNREAD if it cannot be: the copy goes on without it). */
pf_err pf_tick_copy(struct pf_tick *t, struct pf_thread_slot *slot, struct pf_snap *into,
                    uint64_t *gil);

/* Stop threads, at most until t->stop_budget_ns after now (see
 * pf_proc_stop_threads: PF_STOP_HELD, PF_STOP_GONE, PF_STOP_TOO_SLOW in
 * stopped[]). *t0 is when the stop began. */
pf_err pf_tick_stop(struct pf_tick *t, const pid_t *tids, size_t n, unsigned char *stopped,
                    uint64_t *t0);
/* Resume one thread stopped by pf_tick_stop, keeping stop-time statistics. */
void pf_tick_resume(struct pf_tick *t, pid_t tid, uint64_t t0);
/* --native, in the window: unwind a stopped thread. */
void pf_tick_unwind(struct pf_tick *t, struct pf_thread_slot *slot);

/* After the window: check the copy belongs to the slot's thread, decode,
 * and count it (or report it with -d). idle marks the stack idle. A failed
 * slot (slot->failed) is counted as failed. Returns an error only for what
 * ends the run (out of memory). */
pf_err pf_tick_count(struct pf_tick *t, struct pf_thread_slot *slot, const struct pf_snap *copy,
                     bool idle, bool holder_sample);

/* As pf_tick_count, but a copy that does not decode (a frame that is no
 * frame, a code object that cannot be read) is not counted: *unsound gets
 * its reason (PF_FAIL_CORRUPT, PF_FAIL_MEMORY; else PF_FAIL__COUNT, done)
 * and the strategy decides what the tick is instead. For a live copy,
 * confirmation is not proof: a program that repeats itself writes the same
 * bytes at the same addresses each time round, and two reads torn alike
 * agree (seen on 3.13 under load, about once in 10^5 samples of a ctypes
 * callback: the innermost frame at its return, and the eval loop's entry
 * frame on the C stack, which it links to, already overwritten by other C
 * code, in both copies). */
pf_err pf_tick_try_count(struct pf_tick *t, struct pf_thread_slot *slot, const struct pf_snap *copy,
                         bool idle, bool holder_sample, enum pf_fail_reason *unsound);

/* Nobody holds the GIL: an idle tick, or one before the interpreter ran
 * any thread (counted as before-ready). */
void pf_tick_no_holder(struct pf_tick *t);

/* The slot of the thread state tstate for this tick (with --threads),
 * reset, counted as a thread sample, and mapped to its OS thread. *slot is
 * NULL when the thread state has no OS thread (starting or gone): that is
 * counted already. Errors end the run (out of memory). */
pf_err pf_tick_thread(struct pf_tick *t, uint64_t tstate, struct pf_thread_slot **slot);

/* Every thread of this tick's list (pf_tick_look with threads) through
 * pf_tick_thread, into t->batch[0 .. *nb), each with its kernel state read
 * just before (and its run count, with `runs`) and `asleep` set from it;
 * with -x, sleeping threads are counted idle and left out. Before the
 * interpreter has had a thread, *nb is 0 and the tick counts as before-ready.
 * Errors end the run. */
pf_err pf_tick_threads(struct pf_tick *t, bool runs, size_t *nb);

/* Drop slots not used for a while (threads that ended). */
void pf_tick_evict(struct pf_tick *t);

struct pf_strategy {
    const char *name;
    /* One tick. Returns an error only for conditions that end the run
     * (exec, out of memory); failed samples are counted in t->agg. */
    pf_err (*tick)(struct pf_tick *t);
};

extern const struct pf_strategy pf_strategy_gil;        /* default: the GIL holder */
extern const struct pf_strategy pf_strategy_threads;    /* --threads, -d */
extern const struct pf_strategy pf_strategy_nonblocking; /* --nonblocking */

#endif

#include "pyflame/sample/sampler.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyflame/base/clock.h"
#include "pyflame/base/log.h"
#include "pyflame/sample/procset.h"
#include "pyflame/sample/tick.h"
#include "pyflame/native/unwind.h"

/* The schedule is checked over windows of this length (or of 100 ticks,
 * whichever is longer). It is thinned (the interval doubled) when, over a
 * window, the target was stopped more than MAX_STOPPED of the time, or
 * pyflame fell behind by more than half a window: it cannot keep up.
 * Thinning depends on whole windows, never on one sample, so which ticks
 * are taken does not depend on what the target was doing at any of them. */
#define CHECK_NS 1000000000ull
#define MAX_STOPPED 0.25

struct pf_sampler {
    struct pf_proc *proc; /* the root (proc.h) */
    struct pf_sampler_opts opts;
    struct pf_sampler_stats stats;
    const struct pf_strategy *strategy;
    struct pf_procset *set;
    uint64_t *hist; /* the stop-time histogram of every process, for gather */
    struct pf_tick_stats tick_stats;
};

static struct timespec to_ts(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

pf_err pf_sampler_new(struct pf_proc *proc, struct pf_mem *mem, struct pf_target *target,
                      struct pf_intern *names, struct pf_agg *agg,
                      const struct pf_sampler_opts *opts, struct pf_diag *diag,
                      struct pf_sampler **out)
{
    struct pf_sampler *s = calloc(1, sizeof(*s));
    pf_err err = PF_ERR_NOMEM;

    if (!s)
        return PF_ERR_NOMEM;
    s->proc = proc;
    s->opts = *opts;
    /* What every process's tick starts from (procset.h). */
    struct pf_tick tmpl = {
        .names = names,
        .agg = agg,
        .opts = {
            .line_numbers = opts->line_numbers,
            .all_threads = opts->all_threads,
            .skip_idle = opts->skip_idle,
            .thread_roots = opts->thread_roots,
            .native = opts->native,
            .dump = opts->dump,
            .dump_ctx = opts->dump_ctx,
        },
    };
    if (opts->nonblocking)
        s->strategy = &pf_strategy_nonblocking;
    else if (opts->all_threads || opts->dump)
        s->strategy = &pf_strategy_threads;
    else
        s->strategy = &pf_strategy_gil;
    if (!(s->hist = calloc(PF_STOP_HIST_US + 1, sizeof(*s->hist))) ||
        (err = pf_procset_new(proc, opts->subprocesses, opts->abi, mem, target, &tmpl, diag,
                              &s->set))) {
        pf_sampler_free(s);
        return err;
    }
    *out = s;
    return PF_OK;
}

void pf_sampler_free(struct pf_sampler *s)
{
    if (!s)
        return;
    pf_procset_free(s->set);
    free(s->hist);
    free(s);
}

static uint64_t percentile(const struct pf_sampler *s, double q)
{
    uint64_t want = (uint64_t)(q * (double)s->tick_stats.stopped_samples), seen = 0;
    for (size_t i = 0; i <= PF_STOP_HIST_US; i++) {
        seen += s->hist[i];
        if (seen > want)
            return (uint64_t)i * 1000 + 500; /* bucket middle */
    }
    return 0;
}

/* Copy the ticks' counters, over every process, into the run's statistics. */
static void gather(struct pf_sampler *s)
{
    const struct pf_tick_stats *ts = &s->tick_stats;
    struct pf_sampler_stats *st = &s->stats;
    uint64_t reads, hits, misses;

    pf_procset_sum(s->set, &s->tick_stats, s->hist, &reads, &hits, &misses);
    st->thread_samples = ts->thread_samples;
    st->before_ready = ts->before_ready;
    st->stopped_samples = ts->stopped_samples;
    st->stop_ns_max = ts->stop_ns_max;
    st->gil_retried = ts->gil_retried;
    st->gil_released = ts->gil_released;
    st->gil_idle = ts->gil_idle;
    st->slow_stops = ts->slow_stops;
    st->reread = ts->reread;
    st->native_mismatch = ts->native_mismatch;
    st->native_incomplete = ts->native_incomplete;
    st->native_samples = ts->native_samples;
    st->native_frames = ts->native_frames;
    st->native_unwind_ns = ts->native_unwind_ns;
    st->native_merge_ns = ts->native_merge_ns;
    st->reads = reads;
    st->prefetch_hits = hits;
    st->prefetch_misses = misses;
    st->stop_ns_median = percentile(s, 0.5);
    st->stop_ns_p99 = percentile(s, 0.99);
    st->processes = s->set->counts;
}

const struct pf_sampler_stats *pf_sampler_stats(struct pf_sampler *s)
{
    return &s->stats;
}

/* The next draw of a 64-bit LCG (Knuth's MMIX constants): the schedule's
 * jitter needs no more than an even spread. */
static uint64_t next_jitter(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state;
}

/* fraction (of 2^64) of interval, in ns. */
static uint64_t in_interval(uint64_t fraction, uint64_t interval)
{
    return (uint64_t)(((unsigned __int128)fraction * interval) >> 64);
}

/* One tick of every process being read: each through the strategy, one
 * after another (each stops only its own threads). *held_ns: the longest
 * any one process was held. */
static pf_err tick_members(struct pf_sampler *s, uint64_t budget, uint64_t *held_ns)
{
    for (size_t i = 0; i < s->set->n; i++) {
        struct pf_member *m = s->set->v[i];
        struct pf_tick *t = &m->tick;
        pf_err err = PF_OK;
        if (m->state != PF_MEMBER_READY)
            continue;
        /* Events handled while another process was read: one that exited
         * is not read, one that executed is looked at anew. */
        if (s->opts.subprocesses && pf_proc_gone(m->proc))
            continue;
        if (s->opts.subprocesses && pf_proc_execed(m->proc)) {
            pf_procset_execed(s->set, m);
            continue;
        }
        t->stop_budget_ns = budget;
        t->tick_no++;
        s->stats.process_ticks++;
        if (pf_proc_group_stopped(m->proc))
            pf_agg_add_idle(t->agg, 1); /* stopped by job control: nothing runs */
        else
            err = s->strategy->tick(t);
        if (err == PF_ERR_EXEC && s->opts.subprocesses) {
            /* One process of the tree executed a program: look at it anew. */
            pf_procset_execed(s->set, m);
            continue;
        }
        if (err)
            return err;
        if (t->nomem)
            return PF_ERR_NOMEM;
        /* Each process is held only while its own threads are read: the
         * schedule's guard is how long any one of them was. */
        if (t->tick_stop_ns > *held_ns)
            *held_ns = t->tick_stop_ns;
        t->tick_stop_ns = 0;
        if (t->tick_no % 4096 == 0)
            pf_tick_evict(t);
    }
    return PF_OK;
}

/* -d: every process read once (and, with --subprocesses, none still being
 * looked at, for at most 2 s). */
static bool dump_done(const struct pf_sampler *s, uint64_t elapsed_ns)
{
    if (s->opts.subprocesses && elapsed_ns < 2000000000ull && pf_procset_any_looking(s->set))
        return false;
    for (size_t i = 0; i < s->set->n; i++)
        if (s->set->v[i]->state == PF_MEMBER_READY && !s->set->v[i]->tick.ready)
            return false;
    return true;
}

/* The target of the first process being read, for the progress line. */
static const struct pf_target *first_target(const struct pf_sampler *s)
{
    for (size_t i = 0; i < s->set->n; i++)
        if (s->set->v[i]->state == PF_MEMBER_READY)
            return s->set->v[i]->target;
    return NULL;
}

pf_err pf_sampler_run(struct pf_sampler *s, volatile sig_atomic_t *stop)
{
    uint64_t asked = (uint64_t)(s->opts.interval * 1e9);
    uint64_t interval = asked ? asked : 1;
    uint64_t run_start = pf_clock_now_ns(), start = run_start, tick = 0;
    uint64_t jitter_state = start ^ (uint64_t)pf_proc_pid(s->proc);
    uint64_t end = s->opts.duration < 0 ? UINT64_MAX : start + (uint64_t)(s->opts.duration * 1e9);
    uint64_t win_start = start, win_stopped = 0, win_ticks = 0;
    /* Where in its interval this tick and the next fall, as fractions of
     * 2^64 (the interval can double when the schedule is thinned). */
    uint64_t at = next_jitter(&jitter_state), at_next = next_jitter(&jitter_state);
    pf_err err = PF_OK;

    while (!*stop) {
        /* With jitter (the default), at a uniformly random instant of the
         * tick's interval: one sample per interval, so the rate does not
         * drift. On a fixed grid, work the target does at the sampling
         * period, or at a multiple of it, stays in step with the samples;
         * and as each stop delays the target a little, that step slides
         * through its busy phases faster than through its sleeps, which
         * under-reports the busy part (docs/performance.md, "Scheduling"). */
        uint64_t deadline = start + tick * interval + in_interval(s->opts.jitter ? at : 0, interval);
        uint64_t next_deadline =
            start + (tick + 1) * interval + in_interval(s->opts.jitter ? at_next : 0, interval);
        if (deadline >= end && tick > 0)
            break; /* the jittered instant of the last interval fell past -s */
        /* A stop waits at most until the next tick is due (at least 100 us,
         * at most 10 ms): past that the thread is waiting for a CPU, and
         * waiting for it would make the next ticks late (tick.h). */
        uint64_t gap = next_deadline - deadline;
        uint64_t budget = gap < 100000 ? 100000 : gap > 10000000 ? 10000000 : gap;
        /* A dump has no schedule to keep, and --native needs the stop: wait. */
        if (s->opts.dump || s->opts.native)
            budget = 0;
        /* Wait for the tick, handling the target's ptrace events (signals to
         * re-inject, new threads) as they come. A tick whose time has passed
         * is taken at once. */
        while (!*stop) {
            struct timespec ts = to_ts(deadline);
            err = pf_proc_wait(s->proc, &ts);
            if (err || pf_clock_now_ns() >= deadline)
                break;
        }
        if (err || *stop)
            break;
        uint64_t tick_at = pf_clock_now_ns();
        bool late = tick_at > deadline + interval;

        /* With --subprocesses: processes born, exited, executed; a look at
         * one that may have become CPython. */
        if ((err = pf_procset_update(s->set, tick_at, interval / 2)))
            break;
        if (s->opts.subprocesses && !s->opts.launched && !pf_procset_any_ready(s->set) &&
            !pf_procset_any_looking(s->set)) {
            err = PF_ERR_NOTPYTHON; /* attached to a tree with no CPython in it */
            break;
        }
        /* The instant the tick's samples belong to (formats with time):
         * the clock read that decided the tick was due. */
        pf_agg_set_time(s->set->tmpl.agg, tick_at);
        uint64_t held = 0;
        if ((err = tick_members(s, budget, &held)))
            break;
        win_stopped += held;
        s->stats.ticks++;
        s->stats.late += late;
        if (s->opts.dump && dump_done(s, tick_at - run_start))
            break;
        if (s->opts.duration == 0 && s->stats.ticks > 0)
            break;
        tick++;
        at = at_next;
        at_next = next_jitter(&jitter_state);
        win_ticks++;
        uint64_t now = pf_clock_now_ns();
        if (now - win_start >= CHECK_NS && win_ticks >= 100) {
            uint64_t next = start + tick * interval;
            uint64_t behind = now > next ? now - next : 0;
            double stopped = (double)win_stopped / (double)(now - win_start);
            if (stopped > MAX_STOPPED || behind > CHECK_NS / 2) {
                uint64_t backlog = behind / interval;
                s->stats.thinned++;
                s->stats.dropped += backlog;
                pf_log(PF_LOG_WARN,
                       "%s: sampling every %g s instead of every %g s from now on",
                       stopped > MAX_STOPPED ? "the target was stopped more than a quarter of "
                                               "the time"
                                             : "cannot keep up with the rate asked for",
                       (double)interval * 2 / 1e9, (double)interval / 1e9);
                interval *= 2;
                start = now;
                tick = 0;
            }
            win_start = now;
            win_stopped = 0;
            win_ticks = 0;
        }
        if (s->opts.between_ticks) {
            const struct pf_target *T = first_target(s);
            struct pf_sampler_progress p = {
                .elapsed = (double)(now - run_start) / 1e9,
                .ticks = s->stats.ticks,
                .interval = (double)interval / 1e9,
                .py_major = T ? T->version.major : 0,
                .py_minor = T ? T->version.minor : 0,
                .py_micro = T ? T->version.micro : 0,
            };
            s->opts.between_ticks(s->opts.between_ticks_ctx, &p);
        }
        if (start + tick * interval >= end)
            break;
    }
    gather(s);
    s->stats.interval = (double)interval / 1e9;
    s->stats.elapsed = (double)(pf_clock_now_ns() - run_start) / 1e9;
    s->stats.end = err == PF_ERR_EXITED || err == PF_ERR_EXEC ? err : PF_OK;
    if (err == PF_ERR_EXITED || err == PF_ERR_EXEC)
        return PF_OK;
    return err;
}

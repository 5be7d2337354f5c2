#include "pyflame/sample/tick.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyflame/base/clock.h"
#include "pyflame/cpython/frame.h"
#include "pyflame/base/limits.h"
#include "pyflame/base/log.h"
#include "pyflame/target/tidscan.h"

#define CODE_CACHE_SIZE 8192
/* Slots of thread states not seen for this many ticks are dropped. */
#define SLOT_IDLE_TICKS 1000

static pf_err pseudo_frame(struct pf_tick *t, const char *text, uint32_t *id)
{
    struct pf_frame_text f = {.kind = PF_FRAME_PSEUDO};
    pf_err err = pf_intern_str(t->names, text, strlen(text), &f.name);
    return err ? err : pf_intern_frame(t->names, &f, id);
}

pf_err pf_tick_init(struct pf_tick *t)
{
    bool native = t->opts.native;
    /* With --native a stack holds native frames too. */
    size_t depth = native ? PF_MAX_DEPTH + PF_MAX_NATIVE_DEPTH + 1 : PF_MAX_DEPTH;
    pf_err err;

    t->ids = calloc(depth, sizeof(*t->ids));
    /* + process, thread, (truncated), (idle) */
    t->stack = calloc(depth + 4, sizeof(*t->stack));
    t->tstates = calloc(PF_MAX_THREADS, sizeof(*t->tstates));
    t->hist = calloc(PF_STOP_HIST_US + 1, sizeof(*t->hist));
    t->loop_scratch = calloc(PF_FRAME_RUNS_MAX + 1, sizeof(*t->loop_scratch));
    if (!t->ids || !t->stack || !t->tstates || !t->hist || !t->loop_scratch)
        return PF_ERR_NOMEM;
    if (native) {
        t->native = calloc(PF_MAX_NATIVE_DEPTH, sizeof(*t->native));
        t->items = calloc(PF_MAX_NATIVE_DEPTH, sizeof(*t->items));
        t->runs = calloc(PF_FRAME_RUNS_MAX, sizeof(*t->runs));
        if (!t->native || !t->items || !t->runs)
            return PF_ERR_NOMEM;
        if ((err = pseudo_frame(t, "(native unwind incomplete)", &t->marks.incomplete)) ||
            (err = pseudo_frame(t, "(native merge mismatch)", &t->marks.mismatch)))
            return err;
    }
    if ((err = pf_prefetch_new(t->mem, &t->pre)) ||
        (err = pf_code_cache_new(CODE_CACHE_SIZE, &t->codes)))
        return err;
    t->view = pf_prefetch_mem(t->pre);
    if ((err = pseudo_frame(t, "(truncated)", &t->truncated_frame)) ||
        (err = pseudo_frame(t, "(idle)", &t->idle_frame)))
        return err;
    return PF_OK;
}

static void slot_free(struct pf_thread_slot *s)
{
    if (!s)
        return;
    pf_plan_free(&s->plan);
    pf_plan_free(&s->journal);
    pf_snap_release(&s->snap);
    pf_snap_release(&s->again);
    pf_snap_release(&s->stopped);
    free(s);
}

void pf_tick_release(struct pf_tick *t)
{
    for (size_t i = 0; i < t->nslots; i++)
        slot_free(t->slots[i]);
    free(t->slots);
    free(t->batch);
    free(t->batch_tids);
    free(t->batch_stopped);
    free(t->plan_ptrs);
    pf_plan_free(&t->look_plan);
    pf_plan_free(&t->look_journal);
    pf_prefetch_free(t->pre);
    pf_code_cache_free(t->codes);
    pf_unwind_free(t->unwind);
    free(t->native);
    free(t->items);
    free(t->runs);
    free(t->ids);
    free(t->stack);
    free(t->tstates);
    free(t->hist);
    free(t->loop_scratch);
}

pf_err pf_tick_target_ready(struct pf_tick *t, const struct pf_target *target)
{
    t->target = target;
    t->decoder = (struct pf_snap_decoder){
        .codes = t->codes,
        .live = t->mem,
        .layout = target->layout,
        .types = &target->types,
        .names = t->names,
        .line_numbers = t->opts.line_numbers,
        .scratch = t->loop_scratch,
    };
    return PF_OK;
}

static enum pf_fail_reason reason_of(pf_err err)
{
    switch (err) {
    case PF_ERR_FAULT: return PF_FAIL_MEMORY;
    case PF_ERR_NOTREADY: return PF_FAIL_NOT_READY;
    case PF_ERR_NOPROC: return PF_FAIL_THREAD_GONE;
    default: return PF_FAIL_CORRUPT;
    }
}

static bool live_tid(void *ctx, pid_t tid)
{
    return pf_proc_has_thread(ctx, tid);
}

/* <= 3.10: where glibc's struct pthread holds the TID (tidscan.h), from
 * the struct pthread of every thread state of interp. */
static void find_tid_offset(struct pf_tick *t, uint64_t interp)
{
    const struct pf_target *T = t->target;
    const struct pf_layout *L = T->layout;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t tstates[64]; /* not t->tstates: it holds this tick's list */
    size_t n = 0, good = 0;
    uint8_t *blocks = NULL;

    if (L->tstate.size > sizeof(ts) ||
        pf_interp_threads(t->mem, T, interp, tstates, 64, &n) != PF_OK || n == 0)
        return;
    if (!(blocks = malloc(n * PF_TIDSCAN_LEN)))
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        if (pf_mem_read(t->mem, tstates[i], ts, L->tstate.size) == PF_OK &&
            pf_field_uint(ts, L->tstate.size, L->tstate.thread_id, &id) == PF_OK &&
            pf_mem_read(t->mem, id, blocks + good * PF_TIDSCAN_LEN, PF_TIDSCAN_LEN) == PF_OK)
            good++;
    }
    if (good == n && (t->tid_offset = pf_tidscan_offset(blocks, n, live_tid, t->proc)))
        pf_log(PF_LOG_INFO, "threads: struct pthread holds the TID at offset %u", t->tid_offset);
    free(blocks);
}

bool pf_tick_look(struct pf_tick *t, bool threads, struct pf_thread_slot *predicted)
{
    const struct pf_target *T = t->target;
    const struct pf_plan *plans[2] = {&t->look_plan, predicted ? &predicted->plan : NULL};
    uint64_t interp = 0, holder = 0;
    size_t n = 0;
    pf_err err;

    t->holder = 0;
    t->ntstates = 0;
    t->look_copied = false;
    /* Live: the interpreter, the GIL and the thread list are read in one
     * batch at the addresses they had last tick, and followed from there. */
    if ((err = pf_prefetch_fill(t->pre, plans, 2)) == PF_ERR_NOMEM) {
        t->nomem = true; /* the sampler ends the run */
        return false;
    }
    pf_plan_clear(&t->look_journal);
    pf_prefetch_journal(t->pre, &t->look_journal);
    err = pf_interp_main(t->view, T, &interp);
    pf_err gil_err = err ? err : pf_interp_gil_holder(t->view, T, interp, &holder);
    if (!err && threads)
        err = pf_interp_threads(t->view, T, interp, t->tstates, PF_MAX_THREADS, &n);
    pf_prefetch_journal(t->pre, NULL);
    pf_plan_swap(&t->look_plan, &t->look_journal);
    t->interp = interp;
    if (!err && !gil_err && predicted && holder == predicted->tstate_addr) {
        /* The holder is the one predicted: its copy from the same batch
         * is its stack at the instant of the look. */
        predicted->failed = PF_FAIL__COUNT;
        t->look_copied = pf_tick_copy(t, predicted, &predicted->snap, NULL) == PF_OK;
    }
    pf_prefetch_reset(t->pre);

    if (err == PF_ERR_NOTREADY && !t->ready) {
        t->stats.before_ready++;
        return false;
    }
    if (!err && !threads)
        err = gil_err;
    if (err) {
        pf_agg_add_failed(t->agg, reason_of(err), 1);
        return false;
    }
    t->holder = gil_err ? 0 : holder; /* with threads, only a mark */
    t->holder_read = !gil_err;
    t->ntstates = n;
    if (!t->tid_offset_tried && T->layout->caps.thread_id == PF_TID_PTHREAD) {
        find_tid_offset(t, interp);
        /* Give up only once threads exist to learn from. */
        t->tid_offset_tried = t->tid_offset != 0 || t->ready;
    }
    return true;
}

pf_err pf_tick_copy_live(struct pf_tick *t, struct pf_thread_slot **slots, size_t n,
                         bool have_first, uint64_t *gil1, uint64_t *gil2)
{
    pf_err err;

    for (int round = have_first ? 1 : 0; round < 2; round++) {
        uint64_t *gil = round ? gil2 : gil1;
        /* The first round's journal is the second round's plan: the second
         * fill reads exactly what the first walk read. */
        if ((err = pf_tick_fill(t, slots, n)))
            return err;
        for (size_t i = 0; i < n; i++) {
            struct pf_thread_slot *s = slots[i];
            if (s->failed != PF_FAIL__COUNT)
                continue;
            /* the GIL is read with the first copy of the round */
            pf_err e = pf_tick_copy(t, s, round ? &s->again : &s->snap, gil);
            gil = NULL;
            if (e == PF_ERR_NOMEM)
                return e;
            if (e)
                s->failed = e == PF_ERR_FAULT ? PF_FAIL_MEMORY : PF_FAIL_TORN;
        }
    }
    pf_prefetch_reset(t->pre);
    for (size_t i = 0; i < n; i++)
        slots[i]->confirmed = slots[i]->failed == PF_FAIL__COUNT &&
                              pf_snap_same(&slots[i]->snap, &slots[i]->again);
    return PF_OK;
}

struct pf_thread_slot *pf_tick_slot(struct pf_tick *t, uint64_t tstate_addr)
{
    /* --threads asks for every thread state each tick, in list order, and
     * slots are made in that order: searching on from the last one found
     * makes a tick's lookups linear in the threads, not quadratic. */
    for (size_t k = 0; k < t->nslots; k++) {
        size_t i = (t->slot_hint + k) % t->nslots;
        if (t->slots[i]->tstate_addr == tstate_addr) {
            t->slot_hint = i + 1;
            t->slots[i]->last_tick = t->tick_no;
            return t->slots[i];
        }
    }
    if (t->nslots == t->slots_cap) {
        size_t cap = t->slots_cap ? t->slots_cap * 2 : 16;
        struct pf_thread_slot **v = realloc(t->slots, cap * sizeof(*v));
        /* 3x: a slot may be read twice in a tick (strategy_threads.c), and
         * stop_and_copy keeps its list of held slots after the slots it gets. */
        struct pf_thread_slot **b = realloc(t->batch, 3 * cap * sizeof(*b));
        if (v)
            t->slots = v;
        if (b)
            t->batch = b;
        pid_t *tids = realloc(t->batch_tids, cap * sizeof(*tids));
        if (tids)
            t->batch_tids = tids;
        unsigned char *st = realloc(t->batch_stopped, cap);
        if (st)
            t->batch_stopped = st;
        const struct pf_plan **pp = realloc(t->plan_ptrs, cap * sizeof(*pp));
        if (pp)
            t->plan_ptrs = pp;
        if (!v || !b || !tids || !st || !pp)
            return NULL;
        t->slots_cap = cap;
    }
    struct pf_thread_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->tstate_addr = tstate_addr;
    s->last_tick = t->tick_no;
    s->failed = PF_FAIL__COUNT;
    t->slots[t->nslots++] = s;
    t->slot_hint = t->nslots;
    return s;
}

void pf_tick_no_holder(struct pf_tick *t)
{
    if (!t->ready)
        t->stats.before_ready++;
    else
        pf_agg_add_idle(t->agg, 1);
}

pf_err pf_tick_thread(struct pf_tick *t, uint64_t tstate, struct pf_thread_slot **slot)
{
    struct pf_thread_slot *s = pf_tick_slot(t, tstate);
    pf_err err;

    *slot = NULL;
    if (!s)
        return PF_ERR_NOMEM;
    s->failed = PF_FAIL__COUNT;
    s->state = '?';
    s->asleep = s->stop = s->slow = s->copied = s->in_syscall = false;
    t->stats.thread_samples++;
    if (!s->tid && (err = pf_tick_resolve(t, s))) {
        /* A thread state whose OS thread is starting or gone. */
        s->failed = err == PF_ERR_NOTFOUND ? PF_FAIL_NO_THREAD : PF_FAIL_MEMORY;
        return pf_tick_count(t, s, &s->snap, false, false);
    }
    *slot = s;
    return PF_OK;
}

pf_err pf_tick_threads(struct pf_tick *t, bool runs, size_t *nb)
{
    pf_err err;

    *nb = 0;
    if (t->ntstates == 0 && !t->ready) {
        t->stats.before_ready++;
        return PF_OK;
    }
    t->ready = true;
    for (size_t i = 0; i < t->ntstates; i++) {
        struct pf_thread_slot *s;
        if ((err = pf_tick_thread(t, t->tstates[i], &s)))
            return err;
        if (!s)
            continue;
        /* Idle is what the kernel says just before we read the thread. */
        s->asleep = (!runs || pf_proc_thread_runs(t->proc, s->tid, &s->runs) == PF_OK) &&
                    pf_proc_thread_state(t->proc, s->tid, &s->state) == PF_OK &&
                    (s->state == 'S' || s->state == 'D');
        if (s->asleep && t->opts.skip_idle && !t->opts.dump) {
            pf_agg_add_idle(t->agg, 1);
            continue;
        }
        t->batch[(*nb)++] = s;
    }
    return PF_OK;
}

void pf_tick_evict(struct pf_tick *t)
{
    for (size_t i = 0; i < t->nslots;) {
        if (t->tick_no - t->slots[i]->last_tick > SLOT_IDLE_TICKS) {
            slot_free(t->slots[i]);
            t->slots[i] = t->slots[--t->nslots];
        } else {
            i++;
        }
    }
}

pf_err pf_tick_resolve(struct pf_tick *t, struct pf_thread_slot *slot)
{
    const struct pf_layout *L = t->target->layout;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t id;
    pid_t tid = 0;
    pf_err err;

    slot->tid = 0;
    if (L->tstate.size > sizeof(ts))
        return PF_ERR_CORRUPT;
    if ((err = pf_mem_read(t->mem, slot->tstate_addr, ts, L->tstate.size)))
        return err;
    if (L->caps.thread_id == PF_TID_NATIVE) {
        /* 3.11+: the kernel's TID, stored by the thread itself. */
        uint64_t self;
        if ((err = pf_field_uint(ts, L->tstate.size, L->tstate.native_thread_id, &id)))
            return err;
        tid = (pid_t)id;
        /* A process forked by C code that did not tell CPython (uWSGI's
         * workers) keeps the forking thread's TID there. Its thread_id,
         * pthread_self(), is still the thread's TLS base: glibc moves the
         * forking thread's struct pthread into the child, and a thread
         * state of a thread the fork did not copy matches no thread. */
        if ((tid <= 0 || !pf_proc_has_thread(t->proc, tid)) &&
            pf_field_uint(ts, L->tstate.size, L->tstate.thread_id, &self) == PF_OK && self)
            tid = pf_proc_tid_by_tls(t->proc, self);
    } else {
        /* <= 3.10: thread_id is pthread_self(), the address of glibc's
         * struct pthread, which holds the kernel TID (find_tid_offset). */
        if ((err = pf_field_uint(ts, L->tstate.size, L->tstate.thread_id, &id)))
            return err;
        if (t->tid_offset) {
            int32_t v;
            if ((err = pf_mem_read(t->mem, id + t->tid_offset, &v, sizeof(v))))
                return err;
            tid = v;
        } else {
            /* pthread_self() is also the thread's TLS base (fs_base on
             * x86-64), which proc learns by stopping a thread once. */
            tid = pf_proc_tid_by_tls(t->proc, id);
        }
    }
    if (tid <= 0 || !pf_proc_has_thread(t->proc, tid))
        return PF_ERR_NOTFOUND;
    slot->tid = tid;
    slot->thread_id = id;
    return PF_OK;
}

pf_err pf_tick_fill(struct pf_tick *t, struct pf_thread_slot *const *slots, size_t n)
{
    /* n <= nslots <= slots_cap, the size of plan_ptrs */
    for (size_t i = 0; i < n; i++)
        t->plan_ptrs[i] = &slots[i]->plan;
    /* A fill that fails (the process is exiting) leaves no copies: the
     * walks then read the process and fail by themselves, per thread. Only
     * running out of memory ends the run. */
    pf_err err = pf_prefetch_fill(t->pre, t->plan_ptrs, n);
    return err == PF_ERR_NOMEM ? err : PF_OK;
}

pf_err pf_tick_copy(struct pf_tick *t, struct pf_thread_slot *slot, struct pf_snap *into,
                    uint64_t *gil)
{
    pf_err err = PF_OK;

    pf_plan_clear(&slot->journal);
    pf_prefetch_journal(t->pre, &slot->journal);
    if (gil && pf_interp_gil_holder(t->view, t->target, t->interp, gil) != PF_OK)
        *gil = PF_TICK_GIL_UNREAD;
    err = pf_snap_take(into, t->view, t->target->layout, slot->tstate_addr, t->opts.native);
    pf_prefetch_journal(t->pre, NULL);
    pf_plan_swap(&slot->plan, &slot->journal);
    return err;
}

static void record_stop_time(struct pf_tick *t, uint64_t ns)
{
    uint64_t us = ns / 1000;
    t->hist[us < PF_STOP_HIST_US ? us : PF_STOP_HIST_US]++;
    t->stats.stopped_samples++;
    if (ns > t->stats.stop_ns_max)
        t->stats.stop_ns_max = ns;
}

pf_err pf_tick_stop(struct pf_tick *t, const pid_t *tids, size_t n, unsigned char *stopped,
                    uint64_t *t0)
{
    uint64_t start = pf_clock_now_ns(), end = start + t->stop_budget_ns;
    struct timespec deadline = {(time_t)(end / 1000000000u), (long)(end % 1000000000u)};
    pf_err err = pf_proc_stop_threads(t->proc, tids, n, stopped, t->stop_budget_ns ? &deadline : NULL);

    for (size_t i = 0; i < n; i++)
        if (stopped[i] == PF_STOP_TOO_SLOW) {
            t->stats.slow_stops++;
            t->slow_pending = true;
        }
    *t0 = start;
    t->held_since = pf_clock_now_ns();
    return err;
}

void pf_tick_resume(struct pf_tick *t, pid_t tid, uint64_t t0)
{
    /* A thread that died while stopped cannot be resumed; nothing is lost. */
    pf_proc_resume_thread(t->proc, tid);
    uint64_t now = pf_clock_now_ns();
    /* The statistics count from the interrupt, as the floor probe does;
     * the schedule's protection counts the time the thread was held, from
     * when its stop was seen: the wait before it is the target's own wait
     * for a CPU, not time pyflame took from it. */
    record_stop_time(t, now - t0);
    /* Threads stopped together are resumed one after the other: the
     * target was held from the stop to the last resume, once, not once
     * per thread. */
    uint64_t from = t->held_since > t0 ? t->held_since : t0;
    t->tick_stop_ns += now - from;
    t->held_since = now;
    /* A thread given up on as too slow may have stopped by now: resume it
     * rather than leave it until the next wait. */
    if (t->slow_pending) {
        t->slow_pending = false;
        pf_proc_poll(t->proc);
    }
}

void pf_tick_unwind(struct pf_tick *t, struct pf_thread_slot *slot)
{
    uint64_t t0 = pf_clock_now_ns();
    slot->in_syscall = false;
    if (pf_unwind_thread(t->unwind, slot->tid, t->native, PF_MAX_NATIVE_DEPTH, &t->native_n,
                         &t->native_end, &slot->in_syscall) != PF_OK) {
        t->native_n = 0;
        t->native_end = PF_UNWIND_STOPPED;
    }
    t->stats.native_samples++;
    t->stats.native_frames += t->native_n;
    t->stats.native_unwind_ns += pf_clock_now_ns() - t0;
}

/* --native, after the thread runs again: name the native frames and merge
 * them with the Python frames into t->ids. When the two cannot be paired
 * exactly, t->ids is the Python stack with a mark at its root. */
static pf_err merge_native(struct pf_tick *t, size_t *depth, bool truncated)
{
    uint64_t t0 = pf_clock_now_ns();
    bool whole = t->native_end == PF_UNWIND_WHOLE;
    pf_err err = pf_unwind_symbolize(t->unwind, t->native, t->native_n, t->items);

    if (err == PF_ERR_NOMEM)
        return err;
    if (err)
        whole = false;
    switch (pf_merge(t->items, t->native_n, whole, t->runs, t->runs_n, !truncated, &t->marks,
                     t->ids, depth)) {
    case PF_MERGE_OK:
        break;
    case PF_MERGE_MISMATCH:
        /* Usually a thread caught while entering or leaving the eval loop;
         * a steady stream of them means a CPython we do not model (say so
         * with --verbose, a few times). */
        if (t->stats.native_mismatch++ < 5) {
            size_t evals = 0, runs = 0;
            for (size_t i = 0; i < t->native_n; i++)
                evals += t->items[i].kind == PF_NATIVE_EVAL;
            for (size_t i = 0; i < t->runs_n; i++)
                runs += t->runs[i] == PF_MERGE_RUN_END;
            pf_log(PF_LOG_INFO,
                   "native: %zu native frames with %zu of the eval loop, %zu runs of "
                   "Python frames: shown without native frames",
                   t->native_n, evals, runs);
        }
        break;
    case PF_MERGE_INCOMPLETE:
        t->stats.native_incomplete++;
        break;
    }
    t->stats.native_merge_ns += pf_clock_now_ns() - t0;
    return PF_OK;
}

/* Count the stack in t->ids (innermost first) for one thread. */
static pf_err count_stack(struct pf_tick *t, pid_t tid, size_t depth, bool truncated, bool idle)
{
    size_t k = 0;
    pf_err err;

    if (t->process_root)
        t->stack[k++] = t->process_frame;
    if (t->opts.thread_roots) {
        char name[32] = "", label[64];
        pf_proc_thread_name(t->proc, tid, name, sizeof(name));
        snprintf(label, sizeof(label), "(thread %d %s)", (int)tid, name);
        if ((err = pseudo_frame(t, label, &t->stack[k++])))
            return err;
    }
    if (truncated)
        t->stack[k++] = t->truncated_frame;
    for (size_t i = depth; i-- > 0;)
        t->stack[k++] = t->ids[i];
    if (idle)
        t->stack[k++] = t->idle_frame;
    return pf_agg_add(t->agg, t->stack, k, 1);
}

/* With unsound (pf_tick_try_count), a copy that does not decode is left
 * uncounted and its reason returned there. */
static pf_err count(struct pf_tick *t, struct pf_thread_slot *slot, const struct pf_snap *copy,
                    bool idle, bool holder_sample, enum pf_fail_reason *unsound)
{
    const struct pf_layout *L = t->target->layout;
    size_t depth = 0;
    bool truncated = copy->truncated;
    enum pf_fail_reason why = slot->failed;
    pf_err err = PF_OK;

    if (why == PF_FAIL__COUNT) {
        /* The thread state may have been freed and reused by another thread
         * since it was mapped to this one. */
        uint64_t id;
        if (pf_snap_thread_id(copy, L, &id) != PF_OK || id != slot->thread_id) {
            why = PF_FAIL_THREAD_GONE;
            slot->tid = 0; /* map it again next time */
        }
    }
    if (why == PF_FAIL__COUNT) {
        err = pf_snap_decode(copy, &t->decoder, t->ids, &depth, t->unwind ? t->runs : NULL,
                             &t->runs_n);
        if (err == PF_ERR_NOMEM)
            return err;
        if (err)
            why = reason_of(err);
        if (unsound && (why == PF_FAIL_CORRUPT || why == PF_FAIL_MEMORY)) {
            *unsound = why;
            return PF_OK;
        }
    }
    if (why == PF_FAIL__COUNT && t->unwind && t->native_n && (depth || truncated) &&
        (err = merge_native(t, &depth, truncated)))
        return err;
    if (t->opts.dump) {
        char name[32] = "";
        pf_proc_thread_name(t->proc, slot->tid, name, sizeof(name));
        struct pf_thread_stack th = {
            .tid = slot->tid,
            .name = name,
            .state = slot->state ? slot->state : '?',
            .gil = slot->tstate_addr == t->holder,
            .frames = t->ids,
            .depth = depth,
            .truncated = truncated,
            .failed = why,
            .process = t->process_root
                           ? pf_intern_text(t->names, pf_intern_frame_get(t->names, t->process_frame)->name)
                           : NULL,
        };
        t->opts.dump(t->opts.dump_ctx, &th);
        return PF_OK;
    }
    if (why != PF_FAIL__COUNT) {
        pf_agg_add_failed(t->agg, why, 1);
        return PF_OK;
    }
    if (depth == 0 && !truncated) {
        /* No Python frame: a GIL holder in start-up, shutdown or C code
         * called before the first frame runs nothing of the program
         * (idle); a thread of --threads in that state is not shown. */
        if (holder_sample)
            pf_agg_add_idle(t->agg, 1);
        return PF_OK;
    }
    return count_stack(t, slot->tid, depth, truncated, idle);
}

pf_err pf_tick_count(struct pf_tick *t, struct pf_thread_slot *slot, const struct pf_snap *copy,
                     bool idle, bool holder_sample)
{
    return count(t, slot, copy, idle, holder_sample, NULL);
}

pf_err pf_tick_try_count(struct pf_tick *t, struct pf_thread_slot *slot, const struct pf_snap *copy,
                         bool idle, bool holder_sample, enum pf_fail_reason *unsound)
{
    *unsound = PF_FAIL__COUNT;
    return count(t, slot, copy, idle, holder_sample, unsound);
}

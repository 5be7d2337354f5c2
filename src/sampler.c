#include "pyflame/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyflame/code.h"
#include "pyflame/frame.h"
#include "pyflame/limits.h"
#include "pyflame/linetable.h"
#include "pyflame/log.h"
#include "pyflame/merge.h"
#include "pyflame/unwind.h"

#define CODE_CACHE_SIZE 8192
#define HIST_US 10000 /* stop-time histogram: 1 us buckets up to 10 ms */
/* After a tick that kept threads stopped for d, the next tick waits at
 * least STOP_GAP * d, so that the target is never stopped for more than
 * 1 / (1 + STOP_GAP) of the time, however deep its stacks or high the rate
 * asked for. The ticks given up are counted and reported. */
#define STOP_GAP 3

struct pf_sampler {
    struct pf_proc *proc;
    struct pf_mem *mem;
    struct pf_intern *names;
    struct pf_agg *agg;
    struct pf_sampler_opts opts;
    struct pf_code_cache *codes;
    struct pf_sampler_stats stats;
    bool ready; /* the interpreter has been seen initialised */
    uint32_t truncated_frame;

    /* scratch, allocated once: the hot path does not allocate */
    struct pf_frame_rec *frames;
    uint8_t *headers;
    size_t header_size;
    struct pf_iov *iov;
    unsigned char *ok;
    uint32_t *ids; /* frame ids of one stack, innermost first */
    uint32_t *stack;
    uint64_t *tstates;
    uint32_t idle_frame;
    uint32_t tid_offset; /* <= 3.10: TID inside struct pthread, 0 = unknown */
    bool tid_offset_tried;
    uint64_t tick_stop_ns; /* time threads spent stopped in this tick */
    uint64_t *hist; /* HIST_US + 1 buckets */

    /* --native */
    struct pf_unwind *unwind;
    struct pf_native_frame *native; /* one thread's native frames, innermost first */
    struct pf_native_item *items;   /* their names and kinds */
    size_t native_n;
    enum pf_unwind_end native_end;
    bool native_in_syscall; /* stopped inside a system call */
    uint32_t *runs;         /* Python frame ids and PF_MERGE_RUN_END, for pf_merge */
    size_t runs_n;
    struct pf_merge_marks marks;
};

static pf_err pseudo_frame(struct pf_sampler *s, const char *text, uint32_t *id);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec to_ts(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

pf_err pf_sampler_new(struct pf_proc *proc, struct pf_mem *mem, struct pf_intern *names,
                      struct pf_agg *agg, const struct pf_sampler_opts *opts,
                      struct pf_sampler **out)
{
    struct pf_sampler *s = calloc(1, sizeof(*s));
    pf_err err = PF_ERR_NOMEM;

    if (!s)
        return PF_ERR_NOMEM;
    s->proc = proc;
    s->mem = mem;
    s->names = names;
    s->agg = agg;
    s->opts = *opts;
    /* With --native a stack holds native frames too, and the frame walk
     * adds a record at the end of each run of the eval loop. */
    size_t depth = opts->native ? PF_MAX_DEPTH + PF_MAX_NATIVE_DEPTH + 1 : PF_MAX_DEPTH;
    size_t recs = opts->native ? PF_FRAME_RUNS_MAX : PF_MAX_DEPTH;
    s->frames = calloc(recs, sizeof(*s->frames));
    s->iov = calloc(PF_MAX_DEPTH, sizeof(*s->iov));
    s->ok = calloc(PF_MAX_DEPTH, 1);
    s->ids = calloc(depth, sizeof(*s->ids));
    s->stack = calloc(depth + 3, sizeof(*s->stack)); /* + thread, (truncated), (idle) */
    s->tstates = calloc(PF_MAX_THREADS, sizeof(*s->tstates));
    s->hist = calloc(HIST_US + 1, sizeof(*s->hist));
    if (!s->frames || !s->iov || !s->ok || !s->ids || !s->stack || !s->tstates || !s->hist)
        goto fail;
    if (opts->native) {
        s->native = calloc(PF_MAX_NATIVE_DEPTH, sizeof(*s->native));
        s->items = calloc(PF_MAX_NATIVE_DEPTH, sizeof(*s->items));
        s->runs = calloc(PF_FRAME_RUNS_MAX, sizeof(*s->runs));
        if (!s->native || !s->items || !s->runs)
            goto fail;
        if ((err = pseudo_frame(s, "(native unwind incomplete)", &s->marks.incomplete)) ||
            (err = pseudo_frame(s, "(native merge mismatch)", &s->marks.mismatch)))
            goto fail;
    }
    if ((err = pf_code_cache_new(CODE_CACHE_SIZE, &s->codes)))
        goto fail;
    if ((err = pseudo_frame(s, "(truncated)", &s->truncated_frame)) ||
        (err = pseudo_frame(s, "(idle)", &s->idle_frame)))
        goto fail;
    *out = s;
    return PF_OK;
fail:
    pf_sampler_free(s);
    return err;
}

void pf_sampler_free(struct pf_sampler *s)
{
    if (!s)
        return;
    pf_code_cache_free(s->codes);
    pf_unwind_free(s->unwind);
    free(s->native);
    free(s->items);
    free(s->runs);
    free(s->frames);
    free(s->headers);
    free(s->iov);
    free(s->ok);
    free(s->ids);
    free(s->stack);
    free(s->tstates);
    free(s->hist);
    free(s);
}

const struct pf_sampler_stats *pf_sampler_stats(const struct pf_sampler *s)
{
    return &s->stats;
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

/* The OS thread that owns a thread state, from a copy of the tstate. */
static pf_err thread_of(struct pf_sampler *s, const uint8_t *ts, pid_t *tid)
{
    const struct pf_layout *L = s->stats.target.layout;
    uint64_t id;
    pf_err err;

    if (L->tstate.native_thread_id.width) {
        /* 3.11+: the kernel's TID, stored by the thread itself. */
        if ((err = pf_field_uint(ts, L->tstate.size, L->tstate.native_thread_id, &id)))
            return err;
        *tid = (pid_t)id;
        return id && pf_proc_has_thread(s->proc, (pid_t)id) ? PF_OK : PF_ERR_NOTFOUND;
    }
    /* <= 3.10: thread_id is pthread_self(), the address of glibc's struct
     * pthread, which holds the kernel TID (see find_tid_offset). */
    if ((err = pf_field_uint(ts, L->tstate.size, L->tstate.thread_id, &id)))
        return err;
    if (s->tid_offset) {
        int32_t v;
        if ((err = pf_mem_read(s->mem, id + s->tid_offset, &v, sizeof(v))))
            return err;
        *tid = v;
        return v > 0 && pf_proc_has_thread(s->proc, v) ? PF_OK : PF_ERR_NOTFOUND;
    }
    /* Without it: pthread_self() is also the thread's TLS base (fs_base on
     * x86-64), which proc learns by stopping a thread once (CPYTHON.md 5). */
    *tid = pf_proc_tid_by_tls(s->proc, id);
    return *tid ? PF_OK : PF_ERR_NOTFOUND;
}

/* <= 3.10 name threads by pthread_self(), the address of glibc's struct
 * pthread, which holds the thread's kernel TID at an offset that depends on
 * the glibc build (0x2d0 on x86-64 glibc 2.36). Find it from the target
 * itself: the one offset at which the struct pthread of every thread state
 * holds a distinct TID of the target. Reading it then needs no stop; the
 * alternative (fs_base) stops every thread once. */
#define PTHREAD_SCAN 2048
static void find_tid_offset(struct pf_sampler *s, uint64_t interp)
{
    const struct pf_target *T = &s->stats.target;
    const struct pf_layout *L = T->layout;
    uint8_t ts[PF_MAX_STRUCT];
    size_t n = 0, good = 0;
    uint8_t *blocks = NULL;

    if (pf_interp_threads(s->mem, T, interp, s->tstates, 64, &n) != PF_OK || n == 0)
        return;
    if (!(blocks = malloc(n * PTHREAD_SCAN)))
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        if (pf_mem_read(s->mem, s->tstates[i], ts, L->tstate.size) == PF_OK &&
            pf_field_uint(ts, L->tstate.size, L->tstate.thread_id, &id) == PF_OK &&
            pf_mem_read(s->mem, id, blocks + good * PTHREAD_SCAN, PTHREAD_SCAN) == PF_OK)
            good++;
    }
    for (uint32_t off = 8; good == n && off + 4 <= PTHREAD_SCAN; off += 4) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++) {
            int32_t v;
            uint64_t word;
            memcpy(&v, blocks + i * PTHREAD_SCAN + off, 4);
            memcpy(&word, blocks + i * PTHREAD_SCAN + off - 4, 8);
            all = v > 0 && pf_proc_has_thread(s->proc, v);
            /* The upper half of a user-space pointer can look like a TID. */
            if (off % 8 == 4 && (uint32_t)word != 0 && word >> 32 == (uint32_t)v)
                all = false;
            for (size_t j = 0; j < i && all; j++)
                all = memcmp(blocks + j * PTHREAD_SCAN + off, &v, 4) != 0;
        }
        if (all) {
            s->tid_offset = off;
            pf_log(PF_LOG_INFO, "threads: struct pthread holds the TID at offset %u", off);
            break;
        }
    }
    free(blocks);
}

/* Copy one thread's stack while it is stopped: frames, code objects (from
 * the cache, revalidated in one batched read), and the line of each frame.
 * `ts` is a copy of the thread state taken while stopped. With --native it
 * also lists, in s->runs, the frames with the end of each run of the eval
 * loop between them, for pf_merge. */
static pf_err read_stack(struct pf_sampler *s, const uint8_t *ts, size_t *depth, bool *truncated)
{
    const struct pf_target *T = &s->stats.target;
    const struct pf_layout *L = T->layout;
    uint64_t frame;
    size_t n = 0, k = 0, nf = 0, r = 0;
    pf_err err;

    if ((err = pf_frame_first(s->mem, L, ts, L->tstate.size, &frame)))
        return err;
    if (s->opts.native)
        err = pf_frame_walk_runs(s->mem, L, frame, s->frames, PF_FRAME_RUNS_MAX, &n, truncated);
    else
        err = pf_frame_walk(s->mem, L, frame, s->frames, PF_MAX_DEPTH, &n, truncated);
    if (err)
        return err;
    /* Run ends are not frames: nothing to read for them. At most
     * PF_MAX_DEPTH frames (frame.h). */
    for (size_t i = 0; i < n; i++)
        if (!(s->frames[i].flags & PF_FRAME_RUN_END)) {
            s->iov[nf] = (struct pf_iov){s->frames[i].code_addr, s->headers + nf * s->header_size, s->header_size};
            nf++;
        }
    if (nf && (err = pf_mem_readv(s->mem, s->iov, nf, s->ok)))
        return err;
    for (size_t i = 0, j = 0; i < n; i++) {
        struct pf_code *code;
        int line = PF_LINE_OMITTED;
        if (s->frames[i].flags & PF_FRAME_RUN_END) {
            s->runs[r++] = PF_MERGE_RUN_END;
            continue;
        }
        if (!s->ok[j])
            return PF_ERR_FAULT;
        if ((err = pf_code_get(s->codes, s->mem, L, &T->types, s->names, s->frames[i].code_addr,
                               s->headers + j * s->header_size, s->header_size, &code)))
            return err;
        j++;
        /* 3.11+: a frame whose code has not reached its first traceable
         * instruction is still being set up (_PyFrame_IsIncomplete in
         * Include/internal/pycore_frame.h); CPython's own walkers skip it.
         * Generator frames are never incomplete. Its run end, if it has
         * one, stays: the eval loop's C frame exists already. */
        if (L->linetable == PF_LT_LOCATIONS_311 && s->frames[i].owner != L->iframe.owner_generator &&
            s->frames[i].offset / 2 < code->firsttraceable)
            continue;
        if (s->opts.line_numbers && (err = pf_code_line(code, L, s->frames[i].offset, &line)))
            return err;
        struct pf_frame_text f = {.kind = PF_FRAME_PYTHON, .file = code->file, .name = code->name, .line = line};
        if ((err = pf_intern_frame(s->names, &f, &s->ids[k++])))
            return err;
        if (s->opts.native)
            s->runs[r++] = s->ids[k - 1];
    }
    *depth = k;
    s->runs_n = r;
    return PF_OK;
}

static void record_stop_time(struct pf_sampler *s, uint64_t ns)
{
    uint64_t us = ns / 1000;
    s->hist[us < HIST_US ? us : HIST_US]++;
    s->stats.stopped_samples++;
    s->tick_stop_ns += ns;
    if (ns > s->stats.stop_ns_max)
        s->stats.stop_ns_max = ns;
}

static pf_err pseudo_frame(struct pf_sampler *s, const char *text, uint32_t *id)
{
    struct pf_frame_text f = {.kind = PF_FRAME_PSEUDO};
    pf_err err = pf_intern_str(s->names, text, strlen(text), &f.name);
    return err ? err : pf_intern_frame(s->names, &f, id);
}

/* Count the stack in s->ids (innermost first) for one thread. */
static pf_err count_stack(struct pf_sampler *s, pid_t tid, size_t depth, bool truncated, bool idle)
{
    size_t k = 0;
    pf_err err;

    if (s->opts.thread_roots) {
        char name[32] = "", label[64];
        pf_proc_thread_name(s->proc, tid, name, sizeof(name));
        snprintf(label, sizeof(label), "(thread %d %s)", (int)tid, name);
        if ((err = pseudo_frame(s, label, &s->stack[k++])))
            return err;
    }
    if (truncated)
        s->stack[k++] = s->truncated_frame;
    for (size_t i = depth; i-- > 0;)
        s->stack[k++] = s->ids[i];
    if (idle)
        s->stack[k++] = s->idle_frame;
    return pf_agg_add(s->agg, s->stack, k, 1);
}

/* --native, in the stop window: the thread's native frames. A failed
 * unwind is not a failed sample: the Python frames are still shown, marked
 * (see merge_native). */
static void unwind_native(struct pf_sampler *s, pid_t tid)
{
    uint64_t t0 = now_ns();
    if (pf_unwind_thread(s->unwind, tid, s->native, PF_MAX_NATIVE_DEPTH, &s->native_n,
                         &s->native_end, &s->native_in_syscall) != PF_OK) {
        s->native_n = 0;
        s->native_end = PF_UNWIND_STOPPED;
    }
    s->stats.native_samples++;
    s->stats.native_frames += s->native_n;
    s->stats.native_unwind_ns += now_ns() - t0;
}

/* --native, after the thread runs again: name the native frames and merge
 * them with the Python frames read in the stop window into s->ids. When
 * the two cannot be paired exactly, s->ids is the Python stack with a mark
 * at its root, counted for the summary. */
static pf_err merge_native(struct pf_sampler *s, size_t *depth, bool truncated)
{
    uint64_t t0 = now_ns();
    bool whole = s->native_end == PF_UNWIND_WHOLE;
    pf_err err = pf_unwind_symbolize(s->unwind, s->native, s->native_n, s->items);

    if (err == PF_ERR_NOMEM)
        return err;
    if (err)
        whole = false;
    switch (pf_merge(s->items, s->native_n, whole, s->runs, s->runs_n, !truncated, &s->marks,
                     s->ids, depth)) {
    case PF_MERGE_OK:
        break;
    case PF_MERGE_MISMATCH:
        /* Usually a thread caught while entering or leaving the eval loop;
         * a steady stream of them means a CPython we do not model (say so
         * with --verbose, a few times). */
        if (s->stats.native_mismatch++ < 5) {
            size_t evals = 0, runs = 0;
            for (size_t i = 0; i < s->native_n; i++)
                evals += s->items[i].kind == PF_NATIVE_EVAL;
            for (size_t i = 0; i < s->runs_n; i++)
                runs += s->runs[i] == PF_MERGE_RUN_END;
            pf_log(PF_LOG_INFO,
                   "native: %zu native frames with %zu of the eval loop, %zu runs of "
                   "Python frames: shown without native frames",
                   s->native_n, evals, runs);
        }
        break;
    case PF_MERGE_INCOMPLETE:
        s->stats.native_incomplete++;
        break;
    }
    s->stats.native_merge_ns += now_ns() - t0;
    return PF_OK;
}

/* Stop one thread, check it still is what we think, read its stack,
 * resume it. `holder` is the GIL holder's tstate we expect, or 0 when the
 * GIL does not matter. On a failure that is not fatal, *why says why. */
static pf_err sample_thread(struct pf_sampler *s, uint64_t interp, uint64_t tstate, pid_t tid,
                            uint64_t holder, size_t *depth, bool *truncated,
                            enum pf_fail_reason *why)
{
    const struct pf_target *T = &s->stats.target;
    const struct pf_layout *L = T->layout;
    uint8_t ts[PF_MAX_STRUCT];
    pf_err err;

    *why = PF_FAIL__COUNT;
    *depth = 0;
    *truncated = false;
    s->native_n = 0;
    s->native_in_syscall = false;
    /* The stop window: only reads until the thread is resumed. */
    uint64_t t0 = now_ns();
    err = pf_proc_stop_thread(s->proc, tid);
    if (err == PF_ERR_EXEC || err == PF_ERR_NOMEM)
        return err;
    if (err) {
        *why = PF_FAIL_THREAD_GONE;
        return PF_OK;
    }
    if (holder) {
        /* The GIL may have moved between our first look and the stop; a
         * stopped thread that still holds it cannot lose it, so its stack
         * is the one running Python now. */
        uint64_t again;
        err = pf_interp_gil_holder(s->mem, T, interp, &again);
        if (!err && again != holder)
            *why = PF_FAIL_GIL_MOVED;
    }
    if (!err && *why == PF_FAIL__COUNT) {
        err = pf_mem_read(s->mem, tstate, ts, L->tstate.size);
        pid_t owner = 0;
        /* The tstate may have been freed and reused by another thread
         * since we listed it. */
        if (!err && (thread_of(s, ts, &owner) != PF_OK || owner != tid))
            *why = PF_FAIL_THREAD_GONE;
        else if (!err)
            err = read_stack(s, ts, depth, truncated);
        /* A thread with no Python frame is not shown (or is idle), native
         * or not: no need to unwind it. */
        if (!err && *why == PF_FAIL__COUNT && s->unwind && (*depth || *truncated))
            unwind_native(s, tid);
    }
    /* A thread that died while stopped cannot be resumed; nothing is lost. */
    pf_proc_resume_thread(s->proc, tid);
    record_stop_time(s, now_ns() - t0);
    if (!err && *why == PF_FAIL__COUNT && s->unwind && (*depth || *truncated))
        err = merge_native(s, depth, *truncated);
    if (err == PF_ERR_NOMEM)
        return err;
    if (err)
        *why = reason_of(err);
    return PF_OK;
}

/* A sleeping thread cannot change its own stack, so it is read without
 * being stopped (a stop would also pull it out of its system call). The
 * read counts only if the thread was not put on a CPU meanwhile: its
 * schedstat run count, taken while it slept, is the same afterwards. */
static bool read_asleep(struct pf_sampler *s, uint64_t tstate, pid_t tid, uint64_t runs_before,
                        size_t *depth, bool *truncated)
{
    const struct pf_layout *L = s->stats.target.layout;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t runs_after;
    pid_t owner = 0;

    /* Read the thread state again: it may have run since the last copy. */
    if (pf_mem_read(s->mem, tstate, ts, L->tstate.size) != PF_OK || thread_of(s, ts, &owner) != PF_OK ||
        owner != tid || read_stack(s, ts, depth, truncated) != PF_OK)
        return false;
    return pf_proc_thread_runs(s->proc, tid, &runs_after) == PF_OK && runs_after == runs_before;
}

/* The main interpreter, or why there is none yet. Returns false when the
 * tick is settled (counted) already. */
static bool main_interp(struct pf_sampler *s, uint64_t *interp)
{
    pf_err err = pf_interp_main(s->mem, &s->stats.target, interp);
    if (err == PF_ERR_NOTREADY && !s->ready) {
        s->stats.before_ready++;
        return false;
    }
    if (err) {
        pf_agg_add_failed(s->agg, reason_of(err), 1);
        return false;
    }
    if (!s->tid_offset_tried && !s->stats.target.layout->tstate.native_thread_id.width) {
        find_tid_offset(s, *interp);
        /* Give up only once threads exist to learn from. */
        s->tid_offset_tried = s->tid_offset != 0 || s->ready;
    }
    return true;
}

/* One sample of the GIL holder, as Pyflame does by default. Returns an
 * error only for conditions that end the run (exec, out of memory). */
static pf_err sample_gil_holder(struct pf_sampler *s)
{
    const struct pf_target *T = &s->stats.target;
    const struct pf_layout *L = T->layout;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t interp, holder;
    enum pf_fail_reason why;
    size_t depth;
    bool truncated;
    pid_t tid = 0;
    pf_err err;

    if (!main_interp(s, &interp))
        return PF_OK;
    if ((err = pf_interp_gil_holder(s->mem, T, interp, &holder))) {
        pf_agg_add_failed(s->agg, reason_of(err), 1);
        return PF_OK;
    }
    if (!holder) {
        if (!s->ready) {
            s->stats.before_ready++;
            return PF_OK;
        }
        pf_agg_add_idle(s->agg, 1);
        return PF_OK;
    }
    s->ready = true;
    if ((err = pf_mem_read(s->mem, holder, ts, L->tstate.size)) || (err = thread_of(s, ts, &tid))) {
        pf_agg_add_failed(s->agg, err == PF_ERR_NOTFOUND ? PF_FAIL_NO_THREAD : reason_of(err), 1);
        return PF_OK;
    }
    if ((err = sample_thread(s, interp, holder, tid, holder, &depth, &truncated, &why)))
        return err;
    if (why != PF_FAIL__COUNT) {
        pf_agg_add_failed(s->agg, why, 1);
        return PF_OK;
    }
    if (depth == 0 && !truncated) {
        /* The holder runs no Python frame: start-up, shutdown, or C code
         * called before the first frame. Nothing of the program runs. */
        pf_agg_add_idle(s->agg, 1);
        return PF_OK;
    }
    return count_stack(s, tid, depth, truncated, false);
}

/* One tick of --threads (and of -d): every Python thread of the main
 * interpreter, each stopped only while its own stack is read. */
static pf_err sample_all_threads(struct pf_sampler *s)
{
    const struct pf_target *T = &s->stats.target;
    const struct pf_layout *L = T->layout;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t interp, holder = 0;
    size_t n = 0;
    pf_err err;

    if (!main_interp(s, &interp))
        return PF_OK;
    if ((err = pf_interp_threads(s->mem, T, interp, s->tstates, PF_MAX_THREADS, &n))) {
        pf_agg_add_failed(s->agg, reason_of(err), 1);
        return PF_OK;
    }
    if (n == 0 && !s->ready) {
        s->stats.before_ready++;
        return PF_OK;
    }
    s->ready = true;
    pf_interp_gil_holder(s->mem, T, interp, &holder); /* only a mark; 0 if unreadable */
    for (size_t i = 0; i < n; i++) {
        struct pf_thread_stack th = {.failed = PF_FAIL__COUNT, .state = '?', .name = ""};
        char name[32] = "";
        uint64_t runs = 0;
        bool idle = false;
        pid_t tid = 0;

        s->stats.thread_samples++;
        if ((err = pf_mem_read(s->mem, s->tstates[i], ts, L->tstate.size)) ||
            (err = thread_of(s, ts, &tid))) {
            /* A thread state whose OS thread is starting or gone. */
            th.failed = err == PF_ERR_NOTFOUND ? PF_FAIL_NO_THREAD : reason_of(err);
            goto report;
        }
        th.tid = tid;
        th.gil = s->tstates[i] == holder;
        /* Idle is what the kernel says just before we read the thread:
         * sleeping ('S') or in uninterruptible wait ('D') is not running. */
        if (pf_proc_thread_runs(s->proc, tid, &runs) == PF_OK &&
            pf_proc_thread_state(s->proc, tid, &th.state) == PF_OK)
            idle = th.state == 'S' || th.state == 'D';
        if (idle && s->opts.skip_idle && !s->opts.dump) {
            pf_agg_add_idle(s->agg, 1);
            continue;
        }
        bool asleep = idle;
        /* --native stops sleeping threads too: unwinding needs their
         * registers, which only a stopped thread gives. */
        if (asleep && !s->unwind && read_asleep(s, s->tstates[i], tid, runs, &th.depth, &th.truncated))
            goto report;
        /* Running, or woke up while we read it: stop it and read again. */
        idle = false;
        if ((err = sample_thread(s, interp, s->tstates[i], tid, 0, &th.depth, &th.truncated, &th.failed)))
            return err;
        /* A sleeper that the stop found still inside a system call did not
         * run meanwhile: still idle (the kernel restarts the call when it
         * resumes; see docs/usage.md on --native). */
        if (asleep && s->unwind && th.failed == PF_FAIL__COUNT && s->native_in_syscall)
            idle = true;
        else if (th.state == 'S' || th.state == 'D')
            th.state = 'R';
    report:
        if (s->opts.dump) {
            pf_proc_thread_name(s->proc, tid, name, sizeof(name));
            th.name = name;
            th.frames = s->ids;
            s->opts.dump(s->opts.dump_ctx, &th);
            continue;
        }
        if (th.failed != PF_FAIL__COUNT)
            pf_agg_add_failed(s->agg, th.failed, 1);
        else if (th.depth == 0 && !th.truncated)
            continue; /* a thread in C code with no Python frame yet */
        else if ((err = count_stack(s, tid, th.depth, th.truncated, idle)))
            return err;
    }
    return PF_OK;
}

/* Find the runtime; in launch mode keep trying until it appears. */
static pf_err discover(struct pf_sampler *s, uint64_t started, struct pf_diag *diag)
{
    pf_err err = pf_interp_discover(pf_proc_pid(s->proc), s->opts.abi, diag, &s->stats.target);
    if (err == PF_OK) {
        const struct pf_target *T = &s->stats.target;
        s->header_size = pf_code_header_size(T->layout);
        free(s->headers);
        s->headers = calloc(PF_MAX_DEPTH, s->header_size);
        if (!s->headers)
            return PF_ERR_NOMEM;
        /* Native frames of the file that holds the runtime are the eval
         * loop and its plumbing (merge.h). */
        if (s->opts.native &&
            (err = pf_unwind_new(pf_proc_pid(s->proc), s->mem, s->names, T->elf_path,
                                 T->layout->key.major, diag, &s->unwind)))
            return err;
        s->stats.target_found = true;
        return PF_OK;
    }
    if ((err == PF_ERR_NOTPYTHON || err == PF_ERR_NOTREADY) && s->opts.wait_for_python)
        return PF_ERR_NOTREADY;
    if (err == PF_ERR_NOTREADY && (now_ns() - started) < s->opts.ready_timeout * 1e9)
        return PF_ERR_NOTREADY;
    return err;
}

static uint64_t percentile(const struct pf_sampler *s, double q)
{
    uint64_t want = (uint64_t)(q * (double)s->stats.stopped_samples), seen = 0;
    for (size_t i = 0; i <= HIST_US; i++) {
        seen += s->hist[i];
        if (seen > want)
            return (uint64_t)i * 1000 + 500; /* bucket middle */
    }
    return 0;
}

pf_err pf_sampler_run(struct pf_sampler *s, volatile sig_atomic_t *stop, struct pf_diag *diag)
{
    uint64_t interval = (uint64_t)(s->opts.interval * 1e9);
    uint64_t start = now_ns(), tick = 0;
    uint64_t jitter_state = start ^ (uint64_t)pf_proc_pid(s->proc);
    uint64_t end = s->opts.duration < 0 ? UINT64_MAX : start + (uint64_t)(s->opts.duration * 1e9);
    pf_err err = PF_OK;

    if (interval == 0)
        interval = 1;
    while (!*stop) {
        uint64_t deadline = start + tick * interval;
        if (s->opts.jitter) {
            /* Anywhere in the first half of the tick's interval, so that work
             * the target does at a fixed period cannot stay in step with the
             * samples; the schedule itself does not drift. */
            jitter_state = jitter_state * 6364136223846793005ull + 1442695040888963407ull;
            deadline += (jitter_state >> 33) % (interval / 2 + 1);
        }
        /* Wait for the tick, handling the target's ptrace events (signals to
         * re-inject, new threads) as they come. */
        while (!*stop) {
            struct timespec ts = to_ts(deadline);
            err = pf_proc_wait(s->proc, &ts);
            if (err == PF_ERR_EXEC && !s->stats.target_found && s->opts.wait_for_python) {
                /* A wrapper (env, a shell, a pyenv shim) became the next
                 * program on the way to the interpreter: follow it. */
                pf_proc_exec_seen_ok(s->proc);
                err = PF_OK;
                continue;
            }
            if (err || now_ns() >= deadline)
                break;
        }
        if (err || *stop)
            break;

        if (!s->stats.target_found) {
            err = discover(s, start, diag);
            if (err == PF_ERR_NOTREADY) {
                s->stats.before_ready++;
                err = PF_OK;
                goto next;
            }
            if (err)
                break;
        }
        if (pf_proc_group_stopped(s->proc)) {
            /* Stopped by job control: nothing runs. */
            pf_agg_add_idle(s->agg, 1);
        } else if ((err = s->opts.all_threads || s->opts.dump ? sample_all_threads(s)
                                                             : sample_gil_holder(s))) {
            break;
        }
        s->stats.ticks++;
        if (s->opts.dump && s->ready)
            break;
    next:
        if (s->opts.duration == 0 && s->stats.ticks > 0)
            break;
        tick++;
        uint64_t now = now_ns();
        uint64_t earliest = now + STOP_GAP * s->tick_stop_ns;
        s->tick_stop_ns = 0;
        if (start + tick * interval < earliest) {
            /* Give up the ticks whose time has passed (sampling fell
             * behind) or that would stop the target too much; say how many. */
            uint64_t want = (earliest - start + interval - 1) / interval;
            uint64_t passed = now > start ? (now - start) / interval + 1 : tick;
            if (passed > want)
                passed = want;
            if (passed > tick)
                s->stats.skipped += passed - tick;
            s->stats.throttled += want - (passed > tick ? passed : tick);
            tick = want;
        }
        if (start + tick * interval >= end)
            break;
    }
    s->stats.elapsed = (double)(now_ns() - start) / 1e9;
    s->stats.stop_ns_median = percentile(s, 0.5);
    s->stats.stop_ns_p99 = percentile(s, 0.99);
    s->stats.end = err == PF_ERR_EXITED || err == PF_ERR_EXEC ? err : PF_OK;
    if (err == PF_ERR_EXITED || err == PF_ERR_EXEC)
        return PF_OK;
    return err;
}

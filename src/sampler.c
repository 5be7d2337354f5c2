#include "pyflame/sampler.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyflame/code.h"
#include "pyflame/frame.h"
#include "pyflame/limits.h"
#include "pyflame/linetable.h"
#include "pyflame/log.h"

#define CODE_CACHE_SIZE 8192
#define HIST_US 10000 /* stop-time histogram: 1 us buckets up to 10 ms */

/* One frame as copied in the stop window. */
struct rec {
    uint32_t file, name;
    int32_t line;
};

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
    struct rec *recs;
    uint32_t *stack;
    uint64_t *hist; /* HIST_US + 1 buckets */
};

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
    s->frames = calloc(PF_MAX_DEPTH, sizeof(*s->frames));
    s->iov = calloc(PF_MAX_DEPTH, sizeof(*s->iov));
    s->ok = calloc(PF_MAX_DEPTH, 1);
    s->recs = calloc(PF_MAX_DEPTH, sizeof(*s->recs));
    s->stack = calloc(PF_MAX_DEPTH + 1, sizeof(*s->stack));
    s->hist = calloc(HIST_US + 1, sizeof(*s->hist));
    if (!s->frames || !s->iov || !s->ok || !s->recs || !s->stack || !s->hist)
        goto fail;
    if ((err = pf_code_cache_new(CODE_CACHE_SIZE, &s->codes)))
        goto fail;
    struct pf_frame_text t = {.kind = PF_FRAME_PSEUDO};
    if ((err = pf_intern_str(names, "(truncated)", 11, &t.name)) ||
        (err = pf_intern_frame(names, &t, &s->truncated_frame)))
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
    free(s->frames);
    free(s->headers);
    free(s->iov);
    free(s->ok);
    free(s->recs);
    free(s->stack);
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

/* The OS thread that owns a thread state. */
static pf_err thread_of(struct pf_sampler *s, uint64_t tstate, pid_t *tid)
{
    const struct pf_layout *L = s->stats.target.layout;
    uint8_t buf[PF_MAX_STRUCT];
    uint64_t id;
    pf_err err;

    if (L->tstate.size > sizeof(buf))
        return PF_ERR_CORRUPT;
    if ((err = pf_mem_read(s->mem, tstate, buf, L->tstate.size)))
        return err;
    if (L->tstate.native_thread_id.width) {
        /* 3.11+: the kernel's TID, stored by the thread itself. */
        if ((err = pf_field_uint(buf, L->tstate.size, L->tstate.native_thread_id, &id)))
            return err;
        *tid = (pid_t)id;
        return id && pf_proc_has_thread(s->proc, (pid_t)id) ? PF_OK : PF_ERR_NOTFOUND;
    }
    /* <= 3.10: thread_id is pthread_self(), which on glibc is the thread's
     * TLS base (fs_base on x86-64); proc maps it to a TID (CPYTHON.md 5). */
    if ((err = pf_field_uint(buf, L->tstate.size, L->tstate.thread_id, &id)))
        return err;
    *tid = pf_proc_tid_by_tls(s->proc, id);
    return *tid ? PF_OK : PF_ERR_NOTFOUND;
}

/* Copy one thread's stack while it is stopped: frames, code objects (from
 * the cache, revalidated in one batched read), and the line of each frame. */
static pf_err read_stack(struct pf_sampler *s, uint64_t tstate, size_t *depth, bool *truncated)
{
    const struct pf_target *T = &s->stats.target;
    const struct pf_layout *L = T->layout;
    uint8_t buf[PF_MAX_STRUCT];
    uint64_t frame;
    size_t n = 0, k = 0;
    pf_err err;

    if ((err = pf_mem_read(s->mem, tstate, buf, L->tstate.size)) ||
        (err = pf_frame_first(s->mem, L, buf, L->tstate.size, &frame)) ||
        (err = pf_frame_walk(s->mem, L, frame, s->frames, PF_MAX_DEPTH, &n, truncated)))
        return err;
    for (size_t i = 0; i < n; i++)
        s->iov[i] = (struct pf_iov){s->frames[i].code_addr, s->headers + i * s->header_size, s->header_size};
    if (n && (err = pf_mem_readv(s->mem, s->iov, n, s->ok)))
        return err;
    for (size_t i = 0; i < n; i++) {
        struct pf_code *code;
        int line = PF_LINE_OMITTED;
        if (!s->ok[i])
            return PF_ERR_FAULT;
        if ((err = pf_code_get(s->codes, s->mem, L, &T->types, s->names, s->frames[i].code_addr,
                               s->headers + i * s->header_size, s->header_size, &code)))
            return err;
        /* 3.11+: a frame whose code has not reached its first traceable
         * instruction is still being set up (_PyFrame_IsIncomplete in
         * Include/internal/pycore_frame.h); CPython's own walkers skip it.
         * Generator frames are never incomplete. */
        if (L->linetable == PF_LT_LOCATIONS_311 && s->frames[i].owner != L->iframe.owner_generator &&
            s->frames[i].offset / 2 < code->firsttraceable)
            continue;
        if (s->opts.line_numbers && (err = pf_code_line(code, L, s->frames[i].offset, &line)))
            return err;
        s->recs[k++] = (struct rec){code->file, code->name, line};
    }
    *depth = k;
    return PF_OK;
}

static void record_stop_time(struct pf_sampler *s, uint64_t ns)
{
    uint64_t us = ns / 1000;
    s->hist[us < HIST_US ? us : HIST_US]++;
    s->stats.stopped_samples++;
    if (ns > s->stats.stop_ns_max)
        s->stats.stop_ns_max = ns;
}

/* Count a stack whose frames are in s->recs, innermost first. */
static pf_err count_stack(struct pf_sampler *s, size_t depth, bool truncated)
{
    size_t k = 0;
    pf_err err;

    if (truncated)
        s->stack[k++] = s->truncated_frame;
    for (size_t i = depth; i-- > 0;) {
        struct pf_frame_text f = {.kind = PF_FRAME_PYTHON, .file = s->recs[i].file,
                                  .name = s->recs[i].name, .line = s->recs[i].line};
        if ((err = pf_intern_frame(s->names, &f, &s->stack[k++])))
            return err;
    }
    return pf_agg_add(s->agg, s->stack, k, 1);
}

/* One sample of the GIL holder, as Pyflame does by default. Returns an
 * error only for conditions that end the run (exec, out of memory). */
static pf_err sample_gil_holder(struct pf_sampler *s)
{
    const struct pf_target *T = &s->stats.target;
    uint64_t interp, holder, again;
    size_t depth = 0;
    bool truncated = false;
    pid_t tid = 0;
    pf_err err;

    err = pf_interp_main(s->mem, T, &interp);
    if (err == PF_ERR_NOTREADY && !s->ready) {
        s->stats.before_ready++;
        return PF_OK;
    }
    if (err) {
        pf_agg_add_failed(s->agg, reason_of(err), 1);
        return PF_OK;
    }
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
    if ((err = thread_of(s, holder, &tid))) {
        pf_agg_add_failed(s->agg, err == PF_ERR_NOTFOUND ? PF_FAIL_NO_THREAD : reason_of(err), 1);
        return PF_OK;
    }

    /* The stop window: only reads until the thread is resumed. */
    uint64_t t0 = now_ns();
    err = pf_proc_stop_thread(s->proc, tid);
    if (err == PF_ERR_EXEC)
        return err;
    if (err) {
        pf_agg_add_failed(s->agg, PF_FAIL_THREAD_GONE, 1);
        return PF_OK;
    }
    /* The GIL may have moved between our first look and the stop; a
     * stopped thread that still holds it cannot lose it, so its stack is
     * the one running Python now. */
    enum pf_fail_reason why = PF_FAIL__COUNT;
    err = pf_interp_gil_holder(s->mem, T, interp, &again);
    if (!err && again != holder)
        why = PF_FAIL_GIL_MOVED;
    else if (!err)
        err = read_stack(s, holder, &depth, &truncated);
    /* A thread that died while stopped cannot be resumed; nothing is lost. */
    pf_proc_resume_thread(s->proc, tid);
    record_stop_time(s, now_ns() - t0);

    if (err == PF_ERR_NOMEM)
        return err;
    if (err)
        why = reason_of(err);
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
    return count_stack(s, depth, truncated);
}

/* Find the runtime; in launch mode keep trying until it appears. */
static pf_err discover(struct pf_sampler *s, uint64_t started, struct pf_diag *diag)
{
    pf_err err = pf_interp_discover(pf_proc_pid(s->proc), s->opts.abi, diag, &s->stats.target);
    if (err == PF_OK) {
        s->stats.target_found = true;
        s->header_size = pf_code_header_size(s->stats.target.layout);
        free(s->headers);
        s->headers = calloc(PF_MAX_DEPTH, s->header_size);
        return s->headers ? PF_OK : PF_ERR_NOMEM;
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
    uint64_t end = s->opts.duration < 0 ? UINT64_MAX : start + (uint64_t)(s->opts.duration * 1e9);
    pf_err err = PF_OK;

    if (interval == 0)
        interval = 1;
    while (!*stop) {
        uint64_t deadline = start + tick * interval;
        /* Wait for the tick, handling the target's ptrace events (signals to
         * re-inject, new threads) as they come. */
        while (!*stop) {
            struct timespec ts = to_ts(deadline);
            err = pf_proc_wait(s->proc, &ts);
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
        } else if ((err = sample_gil_holder(s))) {
            break;
        }
        s->stats.ticks++;
    next:
        if (s->opts.duration == 0 && s->stats.ticks > 0)
            break;
        tick++;
        uint64_t now = now_ns();
        if (now > start + tick * interval + interval) {
            /* Sampling fell more than a tick behind: skip the ticks that are
             * past, and say how many. */
            uint64_t behind = (now - start) / interval;
            s->stats.skipped += behind - tick;
            tick = behind;
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

/* procset: the processes one run reads (procset.h). */
#include "pyflame/sample/procset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/clock.h"
#include "pyflame/base/grow.h"
#include "pyflame/base/log.h"
#include "pyflame/native/unwind.h"
#include "pyflame/sample/priority.h"
#include "pyflame/target/procstat.h"

/* A process that is not CPython, or not yet, is looked at again after
 * 10 ms, then after twice as long each time, up to every 5 s: a shell or
 * a launcher may execute Python (an exec is seen at once), an embedding
 * host may load it later. */
#define LOOK_FIRST_NS 10000000ull
#define LOOK_MAX_NS 5000000000ull
/* The command line shown in a process's root frame, at most. */
#define LABEL_CMD 60

static pf_err add_member(struct pf_procset *set, struct pf_proc *proc, struct pf_member **out)
{
    struct pf_member *m;
    struct pf_member **v = pf_grow(set->v, set->n, &set->cap, sizeof(*v), 8);
    if (!v)
        return PF_ERR_NOMEM;
    set->v = v;
    if (!(m = calloc(1, sizeof(*m))))
        return PF_ERR_NOMEM;
    m->proc = proc;
    m->state = PF_MEMBER_LOOKING;
    set->v[set->n++] = m;
    set->counts.seen++;
    *out = m;
    return PF_OK;
}

/* "(process PID COMMAND)", the command line cut to LABEL_CMD bytes. */
static pf_err process_frame(struct pf_procset *set, pid_t pid, uint32_t *id)
{
    char cmd[LABEL_CMD + 4], label[LABEL_CMD + 48];
    size_t n = pf_procstat_cmdline(pid, cmd, sizeof(cmd));
    if (n > LABEL_CMD)
        memcpy(cmd + LABEL_CMD - 3, "...", 4);
    snprintf(label, sizeof(label), n ? "(process %d %s)" : "(process %d)", (int)pid, cmd);
    struct pf_frame_text f = {.kind = PF_FRAME_PSEUDO};
    pf_err err = pf_intern_str(set->tmpl.names, label, strlen(label), &f.name);
    return err ? err : pf_intern_frame(set->tmpl.names, &f, id);
}

/* From a found target to a tick that reads it. */
static pf_err start_tick(struct pf_procset *set, struct pf_member *m, struct pf_diag *diag)
{
    struct pf_tick *t = &m->tick;
    const struct pf_target *T = m->target;
    pf_err err;

    *t = set->tmpl;
    t->proc = m->proc;
    t->mem = m->mem;
    m->tick_live = true;
    if ((err = pf_tick_init(t)))
        return err;
    /* Native frames of the file that holds the runtime are the eval loop
     * and its plumbing (merge.h). */
    if (t->opts.native &&
        (err = pf_unwind_new(pf_proc_pid(m->proc), m->mem, t->names, T->elf_path,
                             T->layout->caps.eval_symbol, diag, &t->unwind)))
        return err;
    if (set->follow) {
        if ((err = process_frame(set, pf_proc_pid(m->proc), &t->process_frame)))
            return err;
        t->process_root = true;
    }
    /* Found with a thread and a GIL (discover.h: the layout is checked
     * against them), or forked from one that was: a tick with no GIL
     * holder is idle, not "before the interpreter was ready" (an idle
     * service, a worker waiting for its first request). */
    t->ready = true;
    return pf_tick_target_ready(t, T);
}

static void add_stats(struct pf_tick_stats *to, const struct pf_tick_stats *from)
{
    to->thread_samples += from->thread_samples;
    to->before_ready += from->before_ready;
    to->stopped_samples += from->stopped_samples;
    if (from->stop_ns_max > to->stop_ns_max)
        to->stop_ns_max = from->stop_ns_max;
    to->gil_released += from->gil_released;
    to->gil_idle += from->gil_idle;
    to->gil_retried += from->gil_retried;
    to->reread += from->reread;
    to->slow_stops += from->slow_stops;
    to->native_mismatch += from->native_mismatch;
    to->native_incomplete += from->native_incomplete;
    to->native_samples += from->native_samples;
    to->native_frames += from->native_frames;
    to->native_unwind_ns += from->native_unwind_ns;
    to->native_merge_ns += from->native_merge_ns;
}

/* A live tick's counters, stop-time histogram and prefetch counts, added. */
static void add_tick(const struct pf_tick *t, struct pf_tick_stats *stats, uint64_t *hist,
                     uint64_t *hits, uint64_t *misses)
{
    uint64_t h = 0, mi = 0;
    add_stats(stats, &t->stats);
    for (size_t i = 0; t->hist && i <= PF_STOP_HIST_US; i++)
        hist[i] += t->hist[i];
    if (t->pre)
        pf_prefetch_counts(t->pre, &h, &mi);
    *hits += h;
    *misses += mi;
}

/* Fold a member's tick into the totals of released members, and free
 * what it read the process with. */
static void stop_reading(struct pf_procset *set, struct pf_member *m)
{
    if (m->tick_live) {
        add_tick(&m->tick, &set->gone_stats, set->gone_hist, &set->gone_hits, &set->gone_misses);
        pf_tick_release(&m->tick);
        memset(&m->tick, 0, sizeof(m->tick));
        m->tick_live = false;
    }
    if (m->own_target)
        free(m->target);
    m->target = NULL;
    m->own_target = false;
    if (m->mem_open) {
        set->gone_reads += m->own_mem.reads;
        pf_mem_close(&m->own_mem);
        m->mem_open = false;
        m->mem = NULL;
    }
}

pf_err pf_procset_new(struct pf_proc *root, bool follow, const char *abi, struct pf_mem *mem,
                      struct pf_target *target, const struct pf_tick *tmpl, struct pf_diag *diag,
                      struct pf_procset **out)
{
    struct pf_procset *set = calloc(1, sizeof(*set));
    struct pf_member *m;
    pf_err err;

    if (!set || !(set->gone_hist = calloc(PF_STOP_HIST_US + 1, sizeof(*set->gone_hist)))) {
        free(set);
        return PF_ERR_NOMEM;
    }
    set->root = root;
    set->follow = follow;
    set->abi = abi;
    set->tmpl = *tmpl;
    if ((err = add_member(set, root, &m)))
        goto fail;
    if (!follow) {
        /* The one process, found already: read through the caller's
         * memory and target. */
        m->mem = mem;
        m->target = target;
        m->state = PF_MEMBER_READY;
        m->profiled = true;
        set->counts.profiled++;
        if ((err = start_tick(set, m, diag)))
            goto fail;
    }
    *out = set;
    return PF_OK;
fail:
    pf_procset_free(set);
    return err;
}

void pf_procset_free(struct pf_procset *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        stop_reading(set, set->v[i]);
        free(set->v[i]);
    }
    free(set->v);
    free(set->gone_hist);
    free(set);
}

void pf_procset_execed(struct pf_procset *set, struct pf_member *m)
{
    pf_proc_exec_seen_ok(m->proc);
    stop_reading(set, m);
    m->state = PF_MEMBER_LOOKING;
    m->next_look_ns = 0;
    m->look_delay_ns = 0;
}

/* Discover m: READY, looked at again later, or settled as not Python or
 * skipped. */
static pf_err look(struct pf_procset *set, struct pf_member *m, uint64_t now)
{
    struct pf_diag diag = {{0}};
    pid_t pid = pf_proc_pid(m->proc);
    pf_err err;

    if (pf_proc_borrows_memory(m->proc))
        goto later; /* a vfork child: what it shows is its parent's */
    if (!(m->target = calloc(1, sizeof(*m->target))))
        return PF_ERR_NOMEM;
    m->own_target = true;
    err = pf_interp_discover(pid, set->abi, &diag, m->target);
    if (err == PF_OK) {
        if ((err = pf_mem_open_pid(pid, &m->own_mem)))
            goto later;
        m->mem_open = true;
        m->mem = &m->own_mem;
        if ((err = start_tick(set, m, &diag))) {
            if (err == PF_ERR_NOMEM)
                return err;
            pf_log(PF_LOG_WARN, "process %d: %s; not profiled", (int)pid,
                   diag.msg[0] ? diag.msg : pf_strerror(err));
            stop_reading(set, m);
            m->state = PF_MEMBER_SKIPPED;
            set->counts.skipped++;
            return PF_OK;
        }
        m->state = PF_MEMBER_READY;
        if (!m->profiled)
            set->counts.profiled++;
        m->profiled = true;
        pf_log(PF_LOG_INFO, "process %d: CPython %u.%u.%u", (int)pid, m->target->version.major,
               m->target->version.minor, m->target->version.micro);
        return PF_OK;
    }
    stop_reading(set, m);
    switch (err) {
    case PF_ERR_NOMEM:
        return err;
    case PF_ERR_NOTPYTHON:
        m->state = PF_MEMBER_NOT_PYTHON;
        break; /* looked at again, rarely (LOOK_MAX_NS) */
    case PF_ERR_UNSUPPORTED:
    case PF_ERR_USAGE:
    case PF_ERR_CORRUPT:
        /* Said once: a process of the tree we cannot read is not a reason
         * to stop reading the others. */
        pf_log(PF_LOG_WARN, "process %d: %s; not profiled", (int)pid, diag.msg);
        m->state = PF_MEMBER_SKIPPED;
        set->counts.skipped++;
        return PF_OK;
    default:
        break; /* starting, not initialised, gone meanwhile: later */
    }
later:
    stop_reading(set, m);
    m->look_delay_ns = m->look_delay_ns ? m->look_delay_ns * 2 : LOOK_FIRST_NS;
    if (m->look_delay_ns > LOOK_MAX_NS)
        m->look_delay_ns = LOOK_MAX_NS;
    m->next_look_ns = now + m->look_delay_ns;
    return PF_OK;
}

/* A process forked (not vforked) from one being read is a copy of it, at
 * the same addresses, until it executes something else: read it with its
 * parent's target, without a look (gunicorn's and uWSGI's workers, a
 * multiprocessing pool with fork). */
static pf_err take_parents(struct pf_procset *set, struct pf_member *m)
{
    struct pf_proc *parent = pf_proc_forked_from(m->proc);
    struct pf_diag diag = {{0}};
    pf_err err = PF_OK;

    for (size_t i = 0; parent && i < set->n; i++) {
        const struct pf_member *pm = set->v[i];
        if (pm->proc != parent || pm->state != PF_MEMBER_READY)
            continue;
        if (!(m->target = calloc(1, sizeof(*m->target))))
            return PF_ERR_NOMEM;
        m->own_target = true;
        pf_target_copy(m->target, pm->target);
        if ((err = pf_mem_open_pid(pf_proc_pid(m->proc), &m->own_mem)))
            break;
        m->mem_open = true;
        m->mem = &m->own_mem;
        if ((err = start_tick(set, m, &diag)))
            break;
        m->state = PF_MEMBER_READY;
        m->profiled = true;
        set->counts.profiled++;
        return PF_OK;
    }
    stop_reading(set, m); /* not forked from one being read: look at it */
    return err == PF_ERR_NOMEM ? err : PF_OK;
}

pf_err pf_procset_update(struct pf_procset *set, uint64_t now, uint64_t budget_ns)
{
    struct pf_proc *p;
    struct pf_member *m;
    pf_err err;

    if (!set->follow)
        return PF_OK; /* alone, an exit or exec ends the run (proc.h) */
    while ((p = pf_proc_next_new(set->root))) {
        if ((err = add_member(set, p, &m)))
            return err;
        if ((err = take_parents(set, m)))
            return err;
    }
    for (size_t i = 0; i < set->n;) {
        m = set->v[i];
        if (m->state != PF_MEMBER_GONE && pf_proc_gone(m->proc)) {
            stop_reading(set, m);
            m->state = PF_MEMBER_GONE;
        } else if (m->state != PF_MEMBER_GONE && pf_proc_execed(m->proc)) {
            pf_procset_execed(set, m);
        }
        if (m->state == PF_MEMBER_GONE && m->proc != set->root) {
            /* A worker that exited (and perhaps was replaced): nothing of
             * it is kept but its counts. */
            pf_proc_release(m->proc);
            free(m);
            set->v[i] = set->v[--set->n];
            continue;
        }
        i++;
    }
    /* Looks, the one due longest first, within the budget (at least one):
     * each reads ELF files, milliseconds, time-shared (priority.h): they
     * have no schedule to keep. */
    bool paused = false;
    err = PF_OK;
    for (uint64_t t0 = pf_clock_now_ns(); !err;) {
        struct pf_member *due = NULL;
        if (paused && pf_clock_now_ns() - t0 >= budget_ns)
            break; /* one look at least, then within the budget */
        for (size_t i = 0; i < set->n; i++) {
            m = set->v[i];
            bool lookable = m->state == PF_MEMBER_LOOKING || m->state == PF_MEMBER_NOT_PYTHON;
            if (lookable && m->next_look_ns <= now &&
                (!due || m->next_look_ns < due->next_look_ns))
                due = m;
        }
        if (!due)
            break;
        if (!paused)
            pf_priority_pause();
        paused = true;
        err = look(set, due, now);
    }
    if (paused)
        pf_priority_resume();
    return err;
}

bool pf_procset_any_ready(const struct pf_procset *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->state == PF_MEMBER_READY)
            return true;
    return false;
}

bool pf_procset_any_looking(const struct pf_procset *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->state == PF_MEMBER_LOOKING)
            return true;
    return false;
}

void pf_procset_sum(const struct pf_procset *set, struct pf_tick_stats *stats, uint64_t *hist,
                    uint64_t *reads, uint64_t *hits, uint64_t *misses)
{
    *stats = set->gone_stats;
    memcpy(hist, set->gone_hist, (PF_STOP_HIST_US + 1) * sizeof(*hist));
    *reads = set->gone_reads;
    *hits = set->gone_hits;
    *misses = set->gone_misses;
    for (size_t i = 0; i < set->n; i++) {
        const struct pf_member *m = set->v[i];
        if (m->tick_live)
            add_tick(&m->tick, stats, hist, hits, misses);
        if (m->mem)
            *reads += m->mem->reads;
    }
}

#include "fake_proc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static void violation(struct pf_proc *p, const char *fmt,
                                                            ...)
{
    if (p->violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->first_violation, sizeof(p->first_violation), fmt, ap);
        va_end(ap);
    }
}

static void record(struct pf_proc *p, enum fake_call_kind kind, pid_t tid, unsigned char result)
{
    if (p->ncalls == FAKE_MAX_CALLS) {
        violation(p, "more than %d calls recorded", FAKE_MAX_CALLS);
        return;
    }
    p->calls[p->ncalls++] = (struct fake_call){kind, tid, p->batches, result};
}

static struct fake_thread *live(struct pf_proc *p, pid_t tid)
{
    struct fake_thread *t = fake_proc_thread(p, tid);
    return t && !t->gone ? t : NULL;
}

/* /proc and the TLS map are read outside stop windows only. */
static void not_in_window(struct pf_proc *p, const char *what, pid_t tid)
{
    if (fake_proc_held(p))
        violation(p, "%s(%d) while %zu thread(s) held", what, (int)tid, fake_proc_held(p));
}

struct pf_proc *fake_proc_new(void)
{
    return calloc(1, sizeof(struct pf_proc));
}

struct fake_thread *fake_proc_add(struct pf_proc *p, pid_t tid, char state, uint64_t tls)
{
    if (p->n == FAKE_MAX_THREADS)
        return NULL;
    struct fake_thread *t = &p->threads[p->n++];
    *t = (struct fake_thread){.tid = tid, .state = state, .runs = 1000, .tls = tls};
    snprintf(t->name, sizeof(t->name), "thread-%d", (int)tid);
    return t;
}

struct fake_thread *fake_proc_thread(struct pf_proc *p, pid_t tid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    return NULL;
}

size_t fake_proc_held(const struct pf_proc *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        k += p->threads[i].stopped;
    return k;
}

size_t fake_proc_count(const struct pf_proc *p, enum fake_call_kind kind, pid_t tid)
{
    size_t k = 0;
    for (size_t i = 0; i < p->ncalls; i++)
        k += p->calls[i].kind == kind && (tid == 0 || p->calls[i].tid == tid);
    return k;
}

void fake_proc_clear_record(struct pf_proc *p)
{
    p->ncalls = 0;
    p->batches = 0;
}

/* The pf_proc_* functions tick.c and the strategies call. */

pf_err pf_proc_stop_threads(struct pf_proc *p, const pid_t *tids, size_t n, unsigned char *stopped,
                            const struct timespec *deadline)
{
    (void)deadline;
    p->batches++;
    for (size_t i = 0; i < n; i++) {
        struct fake_thread *t = live(p, tids[i]);
        stopped[i] = PF_STOP_GONE;
        for (size_t j = 0; j < i; j++)
            if (tids[j] == tids[i])
                violation(p, "thread %d listed twice in one stop", (int)tids[i]);
        if (!t) {
            /* gone: as proc.c, a missing thread is reported gone */
        } else if (t->stopped) {
            violation(p, "stop of thread %d, which is stopped already", (int)t->tid);
        } else if (t->vanish_on_stop) {
            t->gone = true;
        } else if (t->too_slow) {
            stopped[i] = PF_STOP_TOO_SLOW;
        } else {
            t->stopped = true;
            t->stops++;
            stopped[i] = PF_STOP_HELD;
        }
        record(p, FAKE_STOP, tids[i], stopped[i]);
    }
    if (p->on_stop)
        for (size_t i = 0; i < n; i++)
            if (stopped[i] == PF_STOP_HELD)
                p->on_stop(p->on_stop_ctx, tids[i]);
    return PF_OK;
}

pf_err pf_proc_resume_thread(struct pf_proc *p, pid_t tid)
{
    struct fake_thread *t = live(p, tid);
    record(p, FAKE_RESUME, tid, 0);
    if (!t)
        return PF_ERR_NOPROC;
    if (!t->stopped) {
        violation(p, "resume of thread %d, which is not stopped", (int)tid);
        return PF_ERR_IO;
    }
    t->stopped = false;
    t->resumes++;
    return PF_OK;
}

void pf_proc_poll(struct pf_proc *p)
{
    record(p, FAKE_POLL, 0, 0);
}

pid_t pf_proc_tid_by_tls(struct pf_proc *p, uint64_t tls)
{
    pid_t tid = 0;
    not_in_window(p, "pf_proc_tid_by_tls", 0);
    for (size_t i = 0; i < p->n && !tid; i++)
        if (!p->threads[i].gone && p->threads[i].tls == tls)
            tid = p->threads[i].tid;
    record(p, FAKE_TLS, tid, 0);
    return tid;
}

bool pf_proc_has_thread(const struct pf_proc *p, pid_t tid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->threads[i].tid == tid)
            return !p->threads[i].gone;
    return false;
}

pf_err pf_proc_thread_state(struct pf_proc *p, pid_t tid, char *state)
{
    struct fake_thread *t = live(p, tid);
    not_in_window(p, "pf_proc_thread_state", tid);
    record(p, FAKE_STATE, tid, 0);
    if (!t)
        return PF_ERR_NOPROC;
    *state = t->stopped ? 't' : t->state;
    return PF_OK;
}

pf_err pf_proc_thread_runs(struct pf_proc *p, pid_t tid, uint64_t *runs)
{
    struct fake_thread *t = live(p, tid);
    not_in_window(p, "pf_proc_thread_runs", tid);
    record(p, FAKE_RUNS, tid, 0);
    if (!t)
        return PF_ERR_NOPROC;
    *runs = t->runs;
    t->runs += t->runs_step;
    return PF_OK;
}

pf_err pf_proc_thread_name(struct pf_proc *p, pid_t tid, char *buf, size_t cap)
{
    struct fake_thread *t = live(p, tid);
    if (!t)
        return PF_ERR_NOPROC;
    snprintf(buf, cap, "%s", t->name);
    return PF_OK;
}

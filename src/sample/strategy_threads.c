/* --threads (and -d): every Python thread of the main interpreter, each
 * tick. Threads are read together, not one after another, and each sample
 * shows its thread as it was at one instant, the look:
 *
 *  1. the thread list is looked up live (pf_tick_look), and each thread's
 *     kernel state read: a sleeping thread ('S', 'D') is shown idle and is
 *     never stopped (a stop would pull it out of its system call, and an
 *     interrupted epoll_wait returns EINTR, which Python 2.7 code does not
 *     retry);
 *  2. every thread's stack is copied live twice, all threads in one
 *     batched read each time (pf_tick_copy_live): the copy of the instant
 *     of the look, and its confirmation;
 *  3. every running thread that may be running Python is interrupted: the
 *     GIL holder, and any thread whose two copies differ (a running
 *     thread that held no GIL at the reads and whose copies are identical,
 *     to the instruction, did not run Python between them, and is counted
 *     from its copy without a stop); all
 *     the stops are awaited (pf_proc_stop_threads), one batched read
 *     copies them all, and they are resumed;
 *  4. for a running thread the stopped copy is counted if it shows the
 *     same calls as the live one (only the innermost line moved on); if
 *     the thread called or returned in between, the live copy is counted,
 *     when confirmed: the stopped copy would show a later instant, which
 *     for a thread about to sleep is its sleep, and would under-report
 *     its CPU work. For a sleeping thread the live copy is counted if the
 *     kernel did not run it meanwhile (schedstat) or if it is confirmed;
 *     else it is stopped and read like a running one;
 *  5. only then is anything decoded and counted. A live copy that does
 *     not decode was torn however well it agreed with its confirmation
 *     (pf_tick_try_count): the stopped copy is counted instead, if any.
 *
 * With --native each thread is unwound while stopped, and sleeping threads
 * are stopped too (unwinding needs their registers): those are read one
 * after the other, as the unwinder's buffers hold one thread, and the
 * stopped copy is counted. */
#include "pyflame/sample/tick.h"

#include "pyflame/base/clock.h"

static enum pf_fail_reason copy_failure(pf_err err)
{
    return err == PF_ERR_FAULT ? PF_FAIL_MEMORY : PF_FAIL_CORRUPT;
}

/* Stop slots[0..n) together, copy them all from one fill, resume them.
 * Two thread states can name the same thread for a moment (3.11 fills a
 * new thread state with its creator's ids until the thread starts), so
 * each thread is stopped once however many slots name it. */
static pf_err stop_and_copy(struct pf_tick *t, struct pf_thread_slot **slots, size_t n)
{
    size_t k = 0;
    pf_err err;

    for (size_t i = 0; i < n; i++) {
        struct pf_thread_slot *s = slots[i];
        if (!s->stop)
            continue;
        size_t j = 0;
        while (j < k && t->batch_tids[j] != s->tid)
            j++;
        if (j == k)
            t->batch_tids[k++] = s->tid;
        s->stop_idx = j;
    }
    uint64_t t0 = pf_clock_now_ns();
    if (k && (err = pf_tick_stop(t, t->batch_tids, k, t->batch_stopped, &t0)))
        return err; /* PF_ERR_EXEC: nothing is left stopped */
    for (size_t i = 0; i < n; i++) {
        struct pf_thread_slot *s = slots[i];
        if (!s->stop)
            continue;
        if (t->batch_stopped[s->stop_idx] == PF_STOP_GONE) {
            s->failed = PF_FAIL_THREAD_GONE;
            s->tid = 0;
        } else if (t->batch_stopped[s->stop_idx] == PF_STOP_TOO_SLOW) {
            /* waits for a CPU: its confirmed live copy stands, if any */
            s->failed = s->confirmed ? PF_FAIL__COUNT : PF_FAIL_SLOW_STOP;
            s->stop = false;
            s->slow = true;
        }
    }
    /* The window: one batched read for every thread held (the others
     * were copied live, before), then their walks. */
    struct pf_thread_slot **held = slots + n; /* batch has room for 3 x the slots (tick.c) */
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i]->stop && slots[i]->failed == PF_FAIL__COUNT)
            held[nh++] = slots[i];
    err = pf_tick_fill(t, held, nh);
    for (size_t i = 0; !err && i < nh; i++) {
        struct pf_thread_slot *s = held[i];
        pf_err e = pf_tick_copy(t, s, &s->stopped, NULL);
        if (e == PF_ERR_NOMEM)
            err = e;
        else if (e && !s->confirmed)
            s->failed = copy_failure(e);
        else if (!e)
            s->copied = true;
        /* else: stopped halfway through an update of its frames; the
         * confirmed live copy stands (strategy_gil.c) */
    }
    for (size_t j = 0; j < k; j++)
        if (t->batch_stopped[j] == PF_STOP_HELD)
            pf_tick_resume(t, t->batch_tids[j], t0);
    pf_prefetch_reset(t->pre);
    return err;
}

/* --native: one thread at a time, each stopped, copied and unwound. */
static pf_err read_native(struct pf_tick *t, struct pf_thread_slot *s)
{
    unsigned char stopped;
    uint64_t t0;
    pf_err err = pf_tick_stop(t, &s->tid, 1, &stopped, &t0);

    t->native_n = 0;
    s->copied = false;
    if (err == PF_ERR_EXEC || err == PF_ERR_NOMEM)
        return err;
    if (stopped != PF_STOP_HELD) {
        s->failed = stopped == PF_STOP_GONE ? PF_FAIL_THREAD_GONE : PF_FAIL_SLOW_STOP;
        if (stopped == PF_STOP_GONE)
            s->tid = 0;
        return PF_OK;
    }
    if ((err = pf_tick_fill(t, &s, 1)) == PF_OK)
        err = pf_tick_copy(t, s, &s->stopped, NULL);
    if (!err && (s->stopped.n || s->stopped.truncated))
        pf_tick_unwind(t, s);
    pf_tick_resume(t, s->tid, t0);
    pf_prefetch_reset(t->pre);
    if (err == PF_ERR_NOMEM)
        return err;
    if (err)
        s->failed = copy_failure(err);
    return PF_OK;
}

static pf_err threads_tick(struct pf_tick *t)
{
    size_t nb = 0;
    pf_err err;

    if (!pf_tick_look(t, true, NULL))
        return PF_OK;
    if ((err = pf_tick_threads(t, true, &nb)))
        return err;
    for (size_t i = 0; i < nb; i++)
        t->batch[i]->stop = !t->batch[i]->asleep || t->unwind;
    if (t->unwind) {
        for (size_t i = 0; i < nb; i++) {
            struct pf_thread_slot *s = t->batch[i];
            if ((err = read_native(t, s)))
                return err;
            /* A sleeper that the stop found still inside its system call
             * did not run meanwhile: still idle (docs/usage.md, --native). */
            bool idle = s->asleep && s->failed == PF_FAIL__COUNT && s->in_syscall;
            if (s->asleep && !idle)
                s->state = 'R';
            if ((err = pf_tick_count(t, s, &s->stopped, idle, false)))
                return err;
        }
        return PF_OK;
    }
    /* The instant of the look: every thread, live, twice. */
    uint64_t gil1 = PF_TICK_GIL_UNREAD, gil2 = PF_TICK_GIL_UNREAD;
    if ((err = pf_tick_copy_live(t, t->batch, nb, false, &gil1, &gil2)))
        return err;
    bool gil_known = t->holder_read && gil1 != PF_TICK_GIL_UNREAD && gil2 != PF_TICK_GIL_UNREAD;
    for (size_t i = 0; i < nb; i++) {
        struct pf_thread_slot *s = t->batch[i];
        if (!s->stop)
            continue;
        /* Only the thread holding the GIL runs Python code; the others
         * wait for it, or run C code that released it, and cannot change
         * their Python frames until they take it. A running thread that
         * held it at none of the three reads (the look and both copies),
         * and whose two copies are identical to the instruction, did not
         * run Python between them: its copy is as sound as a stopped one
         * (a confirmed live copy, as --nonblocking counts), and it is not
         * stopped. It may have taken and released the GIL between the
         * reads, and then the copy is of the instant of the first copy,
         * not of the look: a few microseconds later. This is what keeps
         * 2.7's --threads on schedule: its waiting threads are runnable,
         * and each would need a CPU to stop. */
        uint64_t a = s->tstate_addr;
        if (gil_known && s->confirmed && pf_snap_identical(&s->snap, &s->again) &&
            a != t->holder && a != gil1 && a != gil2) {
            s->stop = false;
            continue;
        }
        s->failed = PF_FAIL__COUNT; /* a live copy that tore: the stop decides */
    }
    if ((err = stop_and_copy(t, t->batch, nb)))
        return err;
    /* Sleepers that ran while they were read, without a confirmed copy:
     * stop them and read them as running threads. */
    size_t nw = 0;
    for (size_t i = 0; i < nb; i++) {
        struct pf_thread_slot *s = t->batch[i];
        uint64_t runs;
        if (!s->asleep || (s->failed == PF_FAIL__COUNT && s->confirmed))
            continue;
        if (s->failed == PF_FAIL__COUNT &&
            pf_proc_thread_runs(t->proc, s->tid, &runs) == PF_OK && runs == s->runs)
            continue;
        s->asleep = false;
        s->stop = true;
        s->copied = false;
        s->confirmed = false;
        s->failed = PF_FAIL__COUNT;
        s->state = 'R';
        t->batch[nb + nw++] = s; /* batch has room for 3 x the slots (tick.c) */
    }
    if (nw && (err = stop_and_copy(t, t->batch + nb, nw)))
        return err;
    for (size_t i = 0; i < nb; i++) {
        struct pf_thread_slot *s = t->batch[i];
        const struct pf_snap *copy = &s->snap;
        if (s->stop && s->copied && (!s->confirmed || pf_snap_same(&s->again, &s->stopped)))
            copy = &s->stopped;
        if (copy == &s->snap && s->failed == PF_FAIL__COUNT) {
            /* A live copy is counted only if it decodes (pf_tick_try_count).
             * Else: the stopped copy if there is one; a thread that did not
             * stop in time fails as such; one trusted for its confirmation
             * alone, as torn. */
            enum pf_fail_reason unsound;
            if ((err = pf_tick_try_count(t, s, copy, s->asleep, false, &unsound)))
                return err;
            if (unsound == PF_FAIL__COUNT)
                continue;
            if (s->stop && s->copied)
                copy = &s->stopped;
            else
                s->failed = s->slow                    ? PF_FAIL_SLOW_STOP
                            : s->confirmed && !s->stop ? PF_FAIL_TORN
                                                       : unsound;
        }
        if ((err = pf_tick_count(t, s, copy, s->asleep, false)))
            return err;
    }
    return PF_OK;
}

const struct pf_strategy pf_strategy_threads = {
    .name = "threads",
    .tick = threads_tick,
};

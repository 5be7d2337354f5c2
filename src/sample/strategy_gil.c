/* The default strategy, as Pyflame had it: each tick reads the thread that
 * holds the GIL, the one running Python, and stops only that thread.
 *
 * A sample is the state of the program at the instant of the look, when
 * the GIL holder is read; the stop comes some tens of microseconds later.
 * Between the two the holder may release the GIL (time.sleep, I/O, a C
 * call through ctypes). Counting such a tick as idle, or dropping it,
 * would take the state at the stop for those ticks and at the look for the
 * others, and under-report CPU work (a thread busy 46% of the time showed
 * 38% busy at 1 kHz). So the holder's stack is also copied live with the
 * look (in the same batched read, prefetch.h) and once more right after;
 * then:
 *  - the thread still holds the GIL when stopped: the stopped copy is
 *    counted (it cannot have lost the GIL while stopped), unless it was
 *    stopped halfway through an update of its frames and the copy makes
 *    no sense: then the confirmed live copy of the look is, if it decodes
 *    (two live copies can agree and still be torn: pf_tick_try_count),
 *    else the thread is read once more;
 *  - it released it in between: the live copy is counted if the second
 *    live copy agrees with it (pf_snap_same) and it decodes;
 *  - if they disagree (the stack moved in those microseconds too), or the
 *    copy does not decode, the look's stack is unknown, and the tick is
 *    taken at the stop instead: idle if nobody holds the GIL then, else
 *    the new holder is read, once;
 *    a GIL that moves again fails the tick as "GIL changed hands". Rare
 *    (about one tick in a few hundred during an interpreter's start-up,
 *    none in a steady program), so the small bias it keeps is negligible.
 * Never a guess, never another thread's stack. */
#include "pyflame/sample/tick.h"

/* The GIL holder as read in the stop window, before it is read. */
#define UNREAD PF_TICK_GIL_UNREAD

/* Count the look's confirmed copy if it decodes (pf_tick_try_count);
 * *counted false: it does not, and the tick goes on as if it had not been
 * confirmed. */
static pf_err count_look(struct pf_tick *t, struct pf_thread_slot *slot, bool *counted)
{
    enum pf_fail_reason unsound;
    pf_err err = pf_tick_try_count(t, slot, &slot->snap, false, true, &unsound);

    *counted = unsound == PF_FAIL__COUNT;
    return err;
}

/* Read the thread holding the GIL (holder), whose live copy was taken
 * with the look when have_first. *torn: the holder's value makes no sense
 * (nothing counted; the caller looks again). */
static pf_err read_holder(struct pf_tick *t, uint64_t holder, bool have_first, int attempt,
                          bool *torn)
{
    uint64_t t0, again = UNREAD;
    bool counted;
    pf_err err;

    struct pf_thread_slot *slot = pf_tick_slot(t, holder);
    if (!slot)
        return PF_ERR_NOMEM;
    if (!slot->tid && (err = pf_tick_resolve(t, slot))) {
        /* process_vm_readv copies bytes, not words: a pointer the target
         * writes as we read it can come out half old, half new (seen:
         * 0x7f0000000000 for a thread state at 0x7f5495eb36c8, as the
         * holder went to NULL). Such a holder is no thread state at all. */
        if (torn && err != PF_ERR_NOTFOUND) {
            *torn = true;
            return PF_OK;
        }
        pf_agg_add_failed(t->agg, err == PF_ERR_NOTFOUND ? PF_FAIL_NO_THREAD : PF_FAIL_MEMORY, 1);
        return PF_OK;
    }
    t->predicted = holder;
    slot->state = 'R';
    if (!have_first)
        slot->failed = PF_FAIL__COUNT;
    if ((err = pf_tick_copy_live(t, &slot, 1, have_first, NULL, NULL)))
        return err;
    slot->failed = PF_FAIL__COUNT;
    t->native_n = 0;

    /* The stop window: one batched read (the GIL and what this thread's
     * last copy read), the walk through it, and (--native) the unwind. */
    unsigned char stopped;
    err = pf_tick_stop(t, &slot->tid, 1, &stopped, &t0);
    if (err == PF_ERR_EXEC || err == PF_ERR_NOMEM)
        return err;
    if (stopped == PF_STOP_GONE) {
        slot->tid = 0;
        pf_agg_add_failed(t->agg, PF_FAIL_THREAD_GONE, 1);
        return PF_OK;
    }
    if (stopped == PF_STOP_TOO_SLOW) {
        /* The thread waits for a CPU (a loaded machine): rather than make
         * the next ticks wait too, count the look's confirmed copy. */
        if (slot->confirmed && ((err = count_look(t, slot, &counted)) || counted))
            return err;
        pf_agg_add_failed(t->agg, PF_FAIL_SLOW_STOP, 1);
        return PF_OK;
    }
    if ((err = pf_tick_fill(t, &slot, 1)) == PF_OK)
        err = pf_tick_copy(t, slot, &slot->stopped, &again);
    if (!err && again == holder && t->unwind)
        pf_tick_unwind(t, slot);
    pf_tick_resume(t, slot->tid, t0);
    pf_prefetch_reset(t->pre);

    if (err == PF_ERR_NOMEM)
        return err;
    if (again == holder && !err) {
        enum pf_fail_reason unsound;
        if ((err = pf_tick_try_count(t, slot, &slot->stopped, false, true, &unsound)) ||
            unsound == PF_FAIL__COUNT)
            return err;
        err = unsound == PF_FAIL_MEMORY ? PF_ERR_FAULT : PF_ERR_CORRUPT;
    }
    t->native_n = 0; /* the registers are the stop's, not the look's */
    if (again == holder || again == UNREAD) {
        /* Still the holder, but the stopped copy makes no sense (its walk
         * or its decoding failed): stopped halfway through an update
         * CPython makes when it enters or leaves the eval loop (3.11/3.12
         * set tstate->cframe before filling the _PyCFrame it points to;
         * ctypes callbacks do that thousands of times a second). Or the
         * GIL itself could not be read. The look's confirmed copy is the
         * sample if it decodes; else read again once, a moment later. */
        pf_err copy_err = err;
        if (slot->confirmed && ((err = count_look(t, slot, &counted)) || counted))
            return err;
        if (attempt == 0) {
            t->stats.reread++;
            return read_holder(t, holder, false, 1, NULL);
        }
        pf_agg_add_failed(t->agg, copy_err == PF_ERR_FAULT ? PF_FAIL_MEMORY : PF_FAIL_CORRUPT, 1);
        return PF_OK;
    }
    /* Released (or handed over) between the look and the stop: the
     * stopped copy, whatever it shows, is of a thread that no longer runs
     * Python. A retry is counted once, as retried. */
    if (slot->confirmed) {
        if ((err = count_look(t, slot, &counted)))
            return err;
        if (counted) {
            t->stats.gil_released += attempt == 0;
            return PF_OK;
        }
    }
    if (again == 0) {
        t->stats.gil_idle += attempt == 0;
        pf_agg_add_idle(t->agg, 1);
        return PF_OK;
    }
    if (attempt == 0) {
        t->stats.gil_retried++;
        t->holder = again;
        return read_holder(t, again, false, 1, NULL);
    }
    pf_agg_add_failed(t->agg, PF_FAIL_GIL_MOVED, 1);
    return PF_OK;
}

static pf_err gil_tick(struct pf_tick *t)
{
    for (int look = 0;; look++) {
        struct pf_thread_slot *pred = t->predicted ? pf_tick_slot(t, t->predicted) : NULL;
        bool torn = false;

        if (!pf_tick_look(t, false, pred))
            return PF_OK;
        if (!t->holder) {
            pf_tick_no_holder(t);
            return PF_OK;
        }
        t->ready = true;
        bool have = t->look_copied && pred && pred->tstate_addr == t->holder;
        pf_err err = read_holder(t, t->holder, have, 0, look == 0 ? &torn : NULL);
        if (err || !torn)
            return err;
    }
}

const struct pf_strategy pf_strategy_gil = {
    .name = "gil",
    .tick = gil_tick,
};

/* --nonblocking: never stop anything. Each stack is read live, twice, and
 * shown only if both copies agree (pf_snap_same: the same frames at the
 * same addresses running the same code, each at the same instruction but
 * the innermost, and with the GIL, the same holder). A thread that pushed
 * or popped a frame between the two reads may have been read half before
 * and half after: that sample is counted as failed ("stack changed while
 * read"), never printed. Both reads are one batched process_vm_readv each
 * (prefetch.h), so a check costs one system call, and no ptrace call is
 * made at all. What remains possible is a stack that changed and changed
 * back between the two reads; the chance shrinks with the time between
 * them, a few microseconds.
 *
 * Without --threads it reads the GIL holder (nobody: idle); with --threads
 * every thread, marking those the kernel says sleep as idle. */
#include "pyflame/sample/tick.h"

/* Count a slot's live copy: one its confirmation disagrees with, or that
 * does not decode however well it agreed (pf_tick_try_count), is torn. */
static pf_err count_live(struct pf_tick *t, struct pf_thread_slot *s, bool idle, bool holder_sample)
{
    enum pf_fail_reason unsound = PF_FAIL__COUNT;
    pf_err err;

    if (s->failed == PF_FAIL__COUNT && !s->confirmed)
        s->failed = PF_FAIL_TORN;
    if (s->failed == PF_FAIL__COUNT &&
        ((err = pf_tick_try_count(t, s, &s->snap, idle, holder_sample, &unsound)) ||
         unsound == PF_FAIL__COUNT))
        return err;
    if (unsound != PF_FAIL__COUNT)
        s->failed = PF_FAIL_TORN;
    return pf_tick_count(t, s, &s->snap, idle, holder_sample);
}

static pf_err holder_tick(struct pf_tick *t, struct pf_thread_slot *pred)
{
    pf_err err;

    if (!t->holder) {
        pf_tick_no_holder(t);
        return PF_OK;
    }
    t->ready = true;
    struct pf_thread_slot *s = pf_tick_slot(t, t->holder);
    if (!s)
        return PF_ERR_NOMEM;
    t->predicted = t->holder;
    s->state = 'R';
    /* The OS thread matters only for --show-threads: the identity check
     * of pf_tick_count needs the slot mapped all the same. */
    if (!s->tid && (err = pf_tick_resolve(t, s))) {
        pf_agg_add_failed(t->agg, err == PF_ERR_NOTFOUND ? PF_FAIL_NO_THREAD : PF_FAIL_MEMORY, 1);
        return PF_OK;
    }
    /* The look copied the holder along with the GIL when it was the one
     * predicted; else the first copy comes a few microseconds after. */
    bool have = t->look_copied && s == pred;
    if (!have)
        s->failed = PF_FAIL__COUNT;
    if ((err = pf_tick_copy_live(t, &s, 1, have, NULL, NULL)))
        return err;
    return count_live(t, s, false, true);
}

static pf_err threads_tick(struct pf_tick *t)
{
    size_t nb = 0;
    pf_err err;

    if ((err = pf_tick_threads(t, false, &nb)))
        return err;
    if ((err = pf_tick_copy_live(t, t->batch, nb, false, NULL, NULL)))
        return err;
    for (size_t i = 0; i < nb; i++) {
        struct pf_thread_slot *s = t->batch[i];
        if ((err = count_live(t, s, s->asleep, false)))
            return err;
    }
    return PF_OK;
}

static pf_err nonblocking_tick(struct pf_tick *t)
{
    bool threads = t->opts.all_threads || t->opts.dump;
    struct pf_thread_slot *pred = !threads && t->predicted ? pf_tick_slot(t, t->predicted) : NULL;
    if (!pf_tick_look(t, threads, pred))
        return PF_OK;
    return threads ? threads_tick(t) : holder_tick(t, pred);
}

const struct pf_strategy pf_strategy_nonblocking = {
    .name = "nonblocking",
    .tick = nonblocking_tick,
};

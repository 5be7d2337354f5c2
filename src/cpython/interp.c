/* interp: reading a found runtime's interpreter, its thread list and its
 * GIL holder (interp.h), at every tick. */
#include "pyflame/cpython/interp.h"

#include "pyflame/base/limits.h"

static pf_err read_ptr(struct pf_mem *mem, uint64_t addr, uint64_t *out)
{
    return pf_mem_read(mem, addr, out, sizeof(*out));
}

void pf_target_copy(struct pf_target *dst, const struct pf_target *src)
{
    *dst = *src;
    if (src->layout == &src->own_layout) {
        dst->layout = &dst->own_layout;
        dst->own_layout.source = dst->layout_source;
    }
}

pf_err pf_interp_main(struct pf_mem *mem, const struct pf_target *t, uint64_t *interp)
{
    const struct pf_layout *L = t->layout;
    uint64_t addr = 0;
    pf_err err;

    if (L->caps.has_runtime) {
        /* interpreters.main (3.7+). */
        struct pf_field f =
            L->runtime.interp_main.width ? L->runtime.interp_main : L->runtime.interp_head;
        err = read_ptr(mem, t->runtime_addr + f.off, &addr);
    } else {
        err = read_ptr(mem, t->interp_head_addr, &addr);
    }
    if (err)
        return err;
    if (!addr)
        return PF_ERR_NOTREADY;
    if (!L->runtime.interp_main.width) {
        /* 2.7/3.6 keep only the head, and PyInterpreterState_New puts
         * each new interpreter there (Python/pystate.c): the main one,
         * made first, is the last of the list. One sub-interpreter is
         * enough to make the head the wrong one. */
        uint64_t next;
        for (int n = 0;; n++) {
            if (n == PF_MAX_INTERPRETERS)
                return PF_ERR_CORRUPT;
            if ((err = read_ptr(mem, addr + L->interp.next.off, &next)))
                return err;
            if (!next)
                break;
            addr = next;
        }
    }
    *interp = addr;
    return PF_OK;
}

pf_err pf_interp_gil_holder(struct pf_mem *mem, const struct pf_target *t, uint64_t interp,
                            uint64_t *tstate)
{
    const struct pf_layout *L = t->layout;
    uint64_t v = 0;
    pf_err err;

    switch (L->gil) {
    case PF_GIL_CURRENT_SYMBOL:
        /* 2.7/3.6: the thread state of whoever holds the GIL, NULL when
         * nobody does (Python/pystate.c, _PyThreadState_Current). */
        err = read_ptr(mem, t->tstate_current_addr, &v);
        break;
    case PF_GIL_RUNTIME_CURRENT:
        err = read_ptr(mem, t->runtime_addr + L->runtime.tstate_current.off, &v);
        break;
    case PF_GIL_INTERP_GIL: {
        /* 3.12+: the GIL lives behind interp->ceval.gil; last_holder stays
         * set after release, so only `locked` says whether anyone holds it
         * (docs/cpython-internals.md §4.3). */
        uint64_t gil;
        uint8_t buf[64];
        if ((err = read_ptr(mem, interp + L->interp.ceval_gil.off, &gil)))
            return err;
        if (L->gilstate.size > sizeof(buf))
            return PF_ERR_CORRUPT;
        if ((err = pf_mem_read(mem, gil, buf, L->gilstate.size)))
            return err;
        uint64_t locked;
        if ((err = pf_field_uint(buf, L->gilstate.size, L->gilstate.locked, &locked)))
            return err;
        /* -1: no GIL (not created yet, or destroyed at finalisation, when
         * last_holder may name a freed thread state): nobody holds it. */
        uint64_t uninitialized = L->gilstate.locked.width >= 8
                                     ? UINT64_MAX
                                     : (UINT64_C(1) << (8 * L->gilstate.locked.width)) - 1;
        if (locked && locked != uninitialized) {
            if ((err = pf_field_ptr(buf, L->gilstate.size, L->gilstate.last_holder, &v)))
                return err;
        }
        break;
    }
    default:
        return PF_ERR_INTERNAL;
    }
    if (err)
        return err;
    *tstate = v;
    return PF_OK;
}

pf_err pf_interp_threads(struct pf_mem *mem, const struct pf_target *t, uint64_t interp,
                         uint64_t *tstates, size_t cap, size_t *n)
{
    const struct pf_layout *L = t->layout;
    uint64_t addr;
    size_t k = 0;
    pf_err err;

    if ((err = read_ptr(mem, interp + L->interp.threads_head.off, &addr)))
        return err;
    /* Brent's cycle detection: a list read mid-update can loop, and a
     * pairwise check would cost n^2 per tick with thousands of threads. */
    uint64_t saved = addr;
    size_t power = 1, lam = 0;
    while (addr && k < cap && k < PF_MAX_THREADS) {
        tstates[k++] = addr;
        if ((err = read_ptr(mem, addr + L->tstate.next.off, &addr)))
            return err;
        if (addr && addr == saved)
            return PF_ERR_CORRUPT; /* the list loops */
        if (++lam == power) {
            saved = addr;
            power *= 2;
            lam = 0;
        }
    }
    /* Cut at the cap: a list that loops back exactly there is a loop, not
     * a long list. */
    for (size_t i = 0; addr && i < k; i++)
        if (tstates[i] == addr)
            return PF_ERR_CORRUPT;
    *n = k;
    return PF_OK;
}

#include "pyflame/cpython/frame.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"

pf_err pf_frame_first(struct pf_mem *mem, const struct pf_layout *L, const uint8_t *tstate,
                      size_t tstate_len, uint64_t *frame_addr)
{
    uint64_t addr;
    pf_err err = pf_field_ptr(tstate, tstate_len, L->tstate.frame, &addr);

    if (err)
        return err;
    if (L->frames == PF_FRAMES_CFRAME && addr) {
        /* 3.11/3.12: tstate->cframe points at a _PyCFrame on the C stack,
         * whose current_frame is the innermost _PyInterpreterFrame. */
        uint8_t cframe[64];
        if (L->cframe.size > sizeof(cframe))
            return PF_ERR_CORRUPT;
        if ((err = pf_mem_read(mem, addr, cframe, L->cframe.size)))
            return err;
        if ((err = pf_field_ptr(cframe, L->cframe.size, L->cframe.current_frame, &addr)))
            return err;
    }
    *frame_addr = addr;
    return PF_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

pf_err pf_frame_check_loop(const struct pf_frame_rec *recs, size_t n, uint64_t stop_addr,
                           uint64_t *scratch)
{
    size_t k = 0;

    if (!stop_addr)
        return PF_OK; /* the chain ended: it cannot have looped */
    for (size_t i = 0; i < n; i++)
        if (!(recs[i].flags & PF_FRAME_RUN_END))
            scratch[k++] = recs[i].frame_addr;
    scratch[k++] = stop_addr;
    qsort(scratch, k, sizeof(*scratch), cmp_u64);
    for (size_t i = 1; i < k; i++)
        if (scratch[i] == scratch[i - 1])
            return PF_ERR_CORRUPT;
    return PF_OK;
}

/* 3.11+ frames live in the thread's data stack, each just above the frame
 * that called it (Include/internal/pycore_frame.h, _PyThreadState_PushFrame):
 * one read of the WINDOW bytes that end at a frame usually holds its callers
 * too, so a deep stack costs a few reads instead of one per frame. */
#define WINDOW 4096
#define PAGE 4096

struct window {
    uint64_t base;
    size_t len;
    uint8_t data[WINDOW];
};

/* Copy `size` bytes at addr through the window, refilling it on a miss. */
static pf_err window_read(struct pf_mem *mem, struct window *w, uint64_t addr, uint8_t *out,
                          size_t size)
{
    if (w->len && addr >= w->base && addr - w->base <= w->len && w->len - (addr - w->base) >= size) {
        memcpy(out, w->data + (addr - w->base), size);
        return PF_OK;
    }
    w->len = 0;
    /* A copy prefetched from the last sample (prefetch.h) serves it
     * without a system call; the window would only miss it. */
    if (size > WINDOW || addr + size < addr || pf_mem_has(mem, addr, size))
        return pf_mem_read(mem, addr, out, size);
    uint64_t end = addr + size;
    /* The whole window, else from the frame's own page (the bytes below a
     * chunk of the data stack may be unmapped), else the frame alone. */
    uint64_t tries[2] = {end > WINDOW ? end - WINDOW : 0, addr & ~(uint64_t)(PAGE - 1)};
    for (int i = 0; i < 2; i++) {
        if (tries[i] == 0 || (i == 1 && tries[1] <= tries[0]))
            continue;
        if (pf_mem_read(mem, tries[i], w->data, end - tries[i]) == PF_OK) {
            w->base = tries[i];
            w->len = end - tries[i];
            memcpy(out, w->data + (addr - w->base), size);
            return PF_OK;
        }
    }
    return pf_mem_read(mem, addr, out, size);
}

/* With `runs`, records of PF_FRAME_RUN_END follow the outermost frame of
 * each run of the eval loop (frame.h). *stop is the frame the walk stopped
 * at when it hit the cap. */
static pf_err walk_objects(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr,
                           struct pf_frame_rec *recs, size_t cap, size_t *n, uint64_t *stop,
                           bool runs)
{
    uint8_t buf[PF_MAX_STRUCT];
    size_t size = L->pyframe.size, k = 0;
    pf_err err;

    if (size > sizeof(buf))
        return PF_ERR_CORRUPT;
    while (addr) {
        uint64_t code, back;
        int64_t lasti;
        if (k + (runs ? 2 : 1) > cap) {
            *stop = addr;
            break;
        }
        if ((err = pf_mem_read(mem, addr, buf, size)))
            return err;
        if ((err = pf_field_ptr(buf, size, L->pyframe.code, &code)) ||
            (err = pf_field_ptr(buf, size, L->pyframe.back, &back)) ||
            (err = pf_field_int(buf, size, L->pyframe.lasti, &lasti)))
            return err;
        if (back == addr)
            return PF_ERR_CORRUPT;
        /* f_lasti counts bytes up to 3.9 and 2-byte code units in 3.10
         * (docs/cpython-internals.md §5.2); -1 before the first
         * instruction stays negative. */
        if (L->caps.instr == PF_INSTR_LASTI_UNITS && lasti >= 0)
            lasti *= 2;
        recs[k++] = (struct pf_frame_rec){.frame_addr = addr, .code_addr = code, .offset = lasti};
        /* Up to 3.10 every frame has a C call of the eval loop of its own:
         * the loop sets tstate->frame to it on entry and back on exit
         * (Python/ceval.c, _PyEval_EvalFrameDefault). */
        if (runs)
            recs[k++] = (struct pf_frame_rec){.flags = PF_FRAME_RUN_END};
        addr = back;
    }
    *n = k;
    return PF_OK;
}

static pf_err walk_interp(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr,
                          struct pf_frame_rec *recs, size_t cap, size_t *n, uint64_t *stop,
                          bool runs)
{
    uint8_t buf[PF_MAX_STRUCT];
    struct window w;
    size_t size = L->iframe.size, k = 0, nf = 0, steps = 0;
    pf_err err;

    w.len = 0;
    if (size > sizeof(buf))
        return PF_ERR_CORRUPT;
    while (addr) {
        uint64_t code, prev, instr, owner, entry = 0;
        /* At most PF_MAX_DEPTH Python frames, with or without run ends. */
        if (k + (runs ? 2 : 1) > cap || nf == PF_MAX_DEPTH) {
            *stop = addr;
            break;
        }
        /* As many shims as Python frames at most (one per entry into the
         * eval loop): a chain of more is a loop of shims. */
        if (steps++ == PF_MAX_DEPTH * 2)
            return PF_ERR_CORRUPT;
        if ((err = window_read(mem, &w, addr, buf, size)))
            return err;
        if ((err = pf_field_ptr(buf, size, L->iframe.code, &code)) ||
            (err = pf_field_ptr(buf, size, L->iframe.previous, &prev)) ||
            (err = pf_field_ptr(buf, size, L->iframe.instr, &instr)) ||
            (err = pf_field_uint(buf, size, L->iframe.owner, &owner)))
            return err;
        /* 3.11: the first frame a call of the eval loop runs has is_entry
         * set (Include/internal/pycore_frame.h); frames it then calls from
         * Python run in the same C call. */
        if (runs && L->iframe.is_entry.width &&
            (err = pf_field_uint(buf, size, L->iframe.is_entry, &entry)))
            return err;
        if (prev == addr)
            return PF_ERR_CORRUPT;
        /* 3.12+: the eval loop pushes a shim frame below the frames it runs
         * (Python/ceval.c, entry_frame), owned by the C stack in 3.12 and
         * 3.13 and by the interpreter in 3.14 (enum _frameowner); it runs
         * no Python code of the program, so it is skipped and, with
         * `runs`, ends a run. Which owners are shims is the layout's list,
         * never a comparison: 3.14 adds an owner after the old shim value
         * (docs/cpython-internals.md §6.4). */
        if (owner < 8 && (L->caps.shim_owners >> owner & 1u)) {
            if (runs)
                recs[k++] = (struct pf_frame_rec){.flags = PF_FRAME_RUN_END};
        } else {
            /* 3.13 f_executable is a PyObject*; 3.14 tags its low bits
             * (_PyStackRef). Objects are 8-aligned, so masking is safe. */
            code &= ~(uint64_t)7;
            /* The instruction pointer points into co_code_adaptive, inline in
             * the code object: its offset from there is the bytecode offset
             * (3.11 prev_instr, 3.13 instr_ptr; never +-1:
             * docs/cpython-internals.md §6.3). */
            int64_t offset = (int64_t)(instr - (code + L->code.code_adaptive.off));
            nf++;
            recs[k++] = (struct pf_frame_rec){
                .frame_addr = addr, .code_addr = code, .offset = offset, .owner = (uint8_t)owner};
            if (entry)
                recs[k++] = (struct pf_frame_rec){.flags = PF_FRAME_RUN_END};
        }
        addr = prev;
    }
    *n = k;
    return PF_OK;
}

pf_err pf_frame_copy(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr, bool runs,
                     struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated,
                     uint64_t *stop_addr)
{
    uint64_t stop = 0;
    size_t k = 0;
    pf_err err;

    if (cap > (runs ? PF_FRAME_RUNS_MAX : PF_MAX_DEPTH))
        cap = runs ? PF_FRAME_RUNS_MAX : PF_MAX_DEPTH;
    if (L->frames == PF_FRAMES_OBJECT)
        err = walk_objects(mem, L, frame_addr, recs, cap, &k, &stop, runs);
    else
        err = walk_interp(mem, L, frame_addr, recs, cap, &k, &stop, runs);
    if (err)
        return err;
    *n = k;
    *truncated = stop != 0;
    *stop_addr = stop;
    return PF_OK;
}

static pf_err walk(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                   struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated, bool runs)
{
    uint64_t scratch[PF_FRAME_RUNS_MAX + 1];
    uint64_t stop;
    size_t k;
    bool more;
    pf_err err = pf_frame_copy(mem, L, frame_addr, runs, recs, cap, &k, &more, &stop);

    if (!err)
        err = pf_frame_check_loop(recs, k, stop, scratch);
    if (err)
        return err;
    *n = k;
    *truncated = more;
    return PF_OK;
}

pf_err pf_frame_walk(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                     struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated)
{
    return walk(mem, L, frame_addr, recs, cap, n, truncated, false);
}

pf_err pf_frame_walk_runs(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                          struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated)
{
    return walk(mem, L, frame_addr, recs, cap, n, truncated, true);
}

#include "pyflame/frame.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/limits.h"

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

/* Called only when a walk hit its cap: a chain read mid-update can loop, and
 * a loop must not be reported as a deep stack. */
static bool has_repeat(const uint64_t *addrs, size_t n)
{
    uint64_t *copy = malloc(n * sizeof(*copy));
    bool repeat = false;
    if (!copy)
        return true; /* cannot tell: call it corrupt rather than guess */
    memcpy(copy, addrs, n * sizeof(*copy));
    qsort(copy, n, sizeof(*copy), cmp_u64);
    for (size_t i = 1; i < n && !repeat; i++)
        repeat = copy[i] == copy[i - 1];
    free(copy);
    return repeat;
}

static pf_err walk_objects(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr,
                           struct pf_frame_rec *recs, size_t cap, size_t *n, uint64_t *seen,
                           bool *more)
{
    uint8_t buf[PF_MAX_STRUCT];
    size_t size = L->pyframe.size, k = 0;
    pf_err err;

    if (size > sizeof(buf))
        return PF_ERR_CORRUPT;
    while (addr) {
        uint64_t code, back;
        int64_t lasti;
        if (k == cap) {
            *more = true;
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
         * (CPython 3.10 Include/cpython/frameobject.h); -1 before the first
         * instruction stays negative. */
        if (L->linetable == PF_LT_LINETABLE_310 && lasti >= 0)
            lasti *= 2;
        seen[k] = addr;
        recs[k++] = (struct pf_frame_rec){.code_addr = code, .offset = lasti};
        addr = back;
    }
    *n = k;
    return PF_OK;
}

static pf_err walk_interp(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr,
                          struct pf_frame_rec *recs, size_t cap, size_t *n, uint64_t *seen,
                          bool *more)
{
    uint8_t buf[PF_MAX_STRUCT];
    size_t size = L->iframe.size, k = 0, steps = 0;
    pf_err err;

    if (size > sizeof(buf))
        return PF_ERR_CORRUPT;
    while (addr) {
        uint64_t code, prev, instr, owner;
        if (k == cap || steps == PF_MAX_DEPTH * 2) {
            *more = true;
            break;
        }
        steps++;
        if ((err = pf_mem_read(mem, addr, buf, size)))
            return err;
        if ((err = pf_field_ptr(buf, size, L->iframe.code, &code)) ||
            (err = pf_field_ptr(buf, size, L->iframe.previous, &prev)) ||
            (err = pf_field_ptr(buf, size, L->iframe.instr, &instr)) ||
            (err = pf_field_uint(buf, size, L->iframe.owner, &owner)))
            return err;
        if (prev == addr)
            return PF_ERR_CORRUPT;
        /* 3.12+: a frame owned by the C stack is a shim that marks an entry
         * from C (3.12 Include/internal/pycore_frame.h, FRAME_OWNED_BY_CSTACK);
         * it runs no Python code of the program. */
        if (!(L->iframe.owner_cstack && owner >= L->iframe.owner_cstack)) {
            /* 3.13 f_executable is a PyObject*; 3.14 tags its low bits
             * (_PyStackRef). Objects are 8-aligned, so masking is safe. */
            code &= ~(uint64_t)7;
            /* The instruction pointer points into co_code_adaptive, inline in
             * the code object: its offset from there is the bytecode offset
             * (3.11 prev_instr, 3.13 instr_ptr; CPYTHON.md 6.3: never +-1). */
            int64_t offset = (int64_t)(instr - (code + L->code.code_adaptive.off));
            seen[k] = addr;
            recs[k++] = (struct pf_frame_rec){.code_addr = code, .offset = offset, .owner = (uint8_t)owner};
        }
        addr = prev;
    }
    *n = k;
    return PF_OK;
}

pf_err pf_frame_walk(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame_addr,
                     struct pf_frame_rec *recs, size_t cap, size_t *n, bool *truncated)
{
    uint64_t seen[PF_MAX_DEPTH]; /* frame addresses, for loop detection */
    bool more = false;
    size_t k = 0;
    pf_err err;

    if (cap > PF_MAX_DEPTH)
        cap = PF_MAX_DEPTH;
    if (L->frames == PF_FRAMES_OBJECT)
        err = walk_objects(mem, L, frame_addr, recs, cap, &k, seen, &more);
    else
        err = walk_interp(mem, L, frame_addr, recs, cap, &k, seen, &more);
    if (!err && more && has_repeat(seen, k))
        err = PF_ERR_CORRUPT;
    if (err)
        return err;
    *n = k;
    *truncated = more;
    return PF_OK;
}

#include "pyflame/cpython/snap.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/native/merge.h"

void pf_snap_release(struct pf_snap *snap)
{
    if (!snap)
        return;
    free(snap->recs);
    free(snap->headers);
    free(snap->hdr_ok);
    free(snap->hdr_of);
    snap->recs = NULL;
    snap->headers = NULL;
    snap->hdr_ok = NULL;
    snap->hdr_of = NULL;
    snap->n = snap->nhdr = snap->recs_cap = snap->hdr_cap = 0;
}

/* Grow the arrays geometrically: a thread's snaps stay as large as its
 * deepest stack so far, and stop allocating once they have seen it. */
static pf_err grow_recs(struct pf_snap *snap, size_t want)
{
    if (snap->recs_cap >= want)
        return PF_OK;
    size_t cap = snap->recs_cap ? snap->recs_cap : 64;
    while (cap < want)
        cap *= 4;
    struct pf_frame_rec *r = realloc(snap->recs, cap * sizeof(*r));
    if (r)
        snap->recs = r;
    uint32_t *of = realloc(snap->hdr_of, cap * sizeof(*of));
    if (of)
        snap->hdr_of = of;
    if (!r || !of)
        return PF_ERR_NOMEM;
    snap->recs_cap = cap;
    return PF_OK;
}

static pf_err grow_headers(struct pf_snap *snap, size_t want, size_t header_size)
{
    if (snap->header_size != header_size) {
        snap->hdr_cap = 0; /* another layout: the old room is in other units */
        snap->header_size = header_size;
    }
    if (snap->hdr_cap >= want)
        return PF_OK;
    size_t cap = snap->hdr_cap ? snap->hdr_cap : 16;
    while (cap < want)
        cap *= 4;
    uint8_t *h = realloc(snap->headers, cap * header_size);
    if (h)
        snap->headers = h;
    unsigned char *ok = realloc(snap->hdr_ok, cap);
    if (ok)
        snap->hdr_ok = ok;
    if (!h || !ok)
        return PF_ERR_NOMEM;
    snap->hdr_cap = cap;
    return PF_OK;
}

pf_err pf_snap_take(struct pf_snap *snap, struct pf_mem *mem, const struct pf_layout *L,
                    uint64_t tstate_addr, bool runs)
{
    struct pf_iov iov[PF_READV_BATCH];
    size_t header_size = pf_code_header_size(L);
    uint64_t frame;
    pf_err err;

    snap->n = snap->nhdr = 0;
    snap->truncated = false;
    snap->stop_addr = 0;
    snap->tstate_addr = tstate_addr;
    size_t max = runs ? PF_FRAME_RUNS_MAX : PF_MAX_DEPTH;
    if (L->tstate.size > sizeof(snap->tstate) || header_size > PF_MAX_STRUCT)
        return PF_ERR_CORRUPT;
    if ((err = grow_recs(snap, 64)))
        return err;
    if ((err = pf_mem_read(mem, tstate_addr, snap->tstate, L->tstate.size)) ||
        (err = pf_frame_first(mem, L, snap->tstate, L->tstate.size, &frame)))
        return err;
    while (frame) {
        if ((err = pf_frame_copy(mem, L, frame, runs, snap->recs, snap->recs_cap, &snap->n,
                                 &snap->truncated, &snap->stop_addr)))
            return err;
        /* Cut by our room, not by the cap: grow and walk again (through
         * the same copies: no new reads but the ones past the room). */
        if (!snap->truncated || snap->recs_cap >= max)
            break;
        if ((err = grow_recs(snap, snap->recs_cap * 4 < max ? snap->recs_cap * 4 : max)))
            return err;
    }
    /* One header per run of frames of the same code object (a recursion
     * reads it once), all in batched reads. */
    uint64_t last = 0;
    for (size_t i = 0; i < snap->n; i++) {
        const struct pf_frame_rec *r = &snap->recs[i];
        if (r->flags & PF_FRAME_RUN_END)
            continue;
        if (snap->nhdr == 0 || r->code_addr != last) {
            last = r->code_addr;
            snap->nhdr++;
        }
        snap->hdr_of[i] = (uint32_t)(snap->nhdr - 1);
    }
    if ((err = grow_headers(snap, snap->nhdr, header_size)))
        return err;
    for (size_t done = 0, i = 0; done < snap->nhdr;) {
        size_t k = 0;
        last = 0;
        for (; i < snap->n && k < PF_READV_BATCH; i++) {
            const struct pf_frame_rec *r = &snap->recs[i];
            if (r->flags & PF_FRAME_RUN_END || snap->hdr_of[i] < done + k)
                continue;
            iov[k] = (struct pf_iov){r->code_addr, snap->headers + (done + k) * header_size,
                                     header_size};
            k++;
        }
        if (k == 0)
            return PF_ERR_INTERNAL;
        if ((err = pf_mem_readv(mem, iov, k, snap->hdr_ok + done)))
            return err;
        done += k;
    }
    return PF_OK;
}

pf_err pf_snap_thread_id(const struct pf_snap *snap, const struct pf_layout *L, uint64_t *id)
{
    struct pf_field f =
        L->caps.thread_id == PF_TID_NATIVE ? L->tstate.native_thread_id : L->tstate.thread_id;
    return pf_field_uint(snap->tstate, L->tstate.size, f, id);
}

static bool same(const struct pf_snap *a, const struct pf_snap *b, bool innermost_offset)
{
    if (a->tstate_addr != b->tstate_addr || a->n != b->n || a->truncated != b->truncated)
        return false;
    bool innermost = !innermost_offset;
    for (size_t i = 0; i < a->n; i++) {
        const struct pf_frame_rec *x = &a->recs[i], *y = &b->recs[i];
        if (x->flags != y->flags || x->frame_addr != y->frame_addr || x->code_addr != y->code_addr)
            return false;
        if (x->flags & PF_FRAME_RUN_END)
            continue;
        if (!innermost && x->offset != y->offset)
            return false;
        innermost = false;
    }
    return true;
}

bool pf_snap_same(const struct pf_snap *a, const struct pf_snap *b)
{
    return same(a, b, false);
}

bool pf_snap_identical(const struct pf_snap *a, const struct pf_snap *b)
{
    return same(a, b, true);
}

pf_err pf_snap_decode(const struct pf_snap *snap, const struct pf_snap_decoder *d, uint32_t *ids,
                      size_t *depth, uint32_t *runs, size_t *runs_n)
{
    const struct pf_layout *L = d->layout;
    size_t k = 0, r = 0;
    pf_err err;

    if ((err = pf_frame_check_loop(snap->recs, snap->n, snap->stop_addr, d->scratch)))
        return err;
    for (size_t i = 0; i < snap->n; i++) {
        const struct pf_frame_rec *rec = &snap->recs[i];
        struct pf_code *code;
        int line = PF_LINE_OMITTED;
        if (rec->flags & PF_FRAME_RUN_END) {
            if (runs)
                runs[r++] = PF_MERGE_RUN_END;
            continue;
        }
        uint32_t h = snap->hdr_of[i];
        if (!snap->hdr_ok[h])
            return PF_ERR_FAULT;
        if ((err = pf_code_get(d->codes, d->live, L, d->types, d->names, rec->code_addr,
                               snap->headers + (size_t)h * snap->header_size, snap->header_size,
                               &code)))
            return err;
        /* 3.11+: a frame whose code has not reached its first traceable
         * instruction is still being set up (_PyFrame_IsIncomplete in
         * Include/internal/pycore_frame.h); CPython's own walkers skip it.
         * Generator frames are never incomplete. Its run end, if it has
         * one, stays: the eval loop's C frame exists already. */
        if (L->caps.incomplete_frames && rec->owner != L->caps.owner_generator &&
            rec->offset / 2 < code->firsttraceable)
            continue;
        if (d->line_numbers && (err = pf_code_line(code, L, rec->offset, &line)))
            return err;
        struct pf_frame_text f = {.kind = PF_FRAME_PYTHON, .file = code->file, .name = code->name,
                                  .line = line};
        if ((err = pf_intern_frame(d->names, &f, &ids[k++])))
            return err;
        if (runs)
            runs[r++] = ids[k - 1];
    }
    *depth = k;
    if (runs_n)
        *runs_n = r;
    return PF_OK;
}

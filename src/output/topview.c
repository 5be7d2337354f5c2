/* topview: the rows of `pyflame --top` (topview.h). */
#include "pyflame/output/topview.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/grow.h"

pf_top_fn pf_top_fn_of(const struct pf_intern *names, uint32_t frame)
{
    const struct pf_frame_text *f = pf_intern_frame_get(names, frame);
    if (!f)
        return 0;
    uint64_t file = f->kind == PF_FRAME_PYTHON ? f->file : UINT32_MAX;
    return (file << 32) | f->name;
}

static bool is_thread_root(const struct pf_intern *names, uint32_t frame)
{
    const struct pf_frame_text *f = pf_intern_frame_get(names, frame);
    return f && f->kind == PF_FRAME_PSEUDO && strncmp(pf_intern_text(names, f->name), "(thread ", 8) == 0;
}

struct rows {
    struct pf_top_row *v;
    size_t n, cap;
};

/* The row of fn (linear: a view has tens to hundreds of rows). */
static struct pf_top_row *row(struct rows *r, pf_top_fn fn, uint32_t frame)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].fn == fn)
            return &r->v[i];
    struct pf_top_row *v = pf_grow(r->v, r->n, &r->cap, sizeof(*v), 64);
    if (!v)
        return NULL;
    r->v = v;
    r->v[r->n] = (struct pf_top_row){.fn = fn, .frame = frame};
    return &r->v[r->n++];
}

static enum pf_top_sort g_sort;

static int cmp_row(const void *a, const void *b)
{
    const struct pf_top_row *x = a, *y = b;
    uint64_t kx = g_sort == PF_TOP_BY_OWN ? x->own : x->total, ky = g_sort == PF_TOP_BY_OWN ? y->own : y->total;
    if (kx != ky)
        return kx < ky ? 1 : -1;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return x->fn < y->fn ? -1 : x->fn > y->fn;
}

/* Where the path's run starts in frames[0..n), or -1. */
static long find_path(const struct pf_intern *names, const uint32_t *frames, size_t n,
                      const struct pf_top_query *q, size_t from)
{
    size_t last = q->anchored ? from : n;
    for (size_t i = from; i <= last && i + q->npath <= n; i++) {
        size_t k = 0;
        while (k < q->npath && pf_top_fn_of(names, frames[i + k]) == q->path[k])
            k++;
        if (k == q->npath)
            return (long)i;
    }
    return -1;
}

pf_err pf_top_rows(const struct pf_agg *agg, const struct pf_intern *names, const uint64_t *counts,
                   size_t ncounts, const struct pf_top_query *q, struct pf_top_row **out, size_t *n,
                   uint64_t *context)
{
    struct rows r = {0};
    size_t nstacks = pf_agg_stack_count(agg);
    pf_top_fn *seen = NULL;
    size_t cap_seen = 0;

    *context = 0;
    for (size_t s = 0; s < nstacks; s++) {
        const uint32_t *frames;
        size_t depth;
        uint64_t count;
        pf_agg_stack_at(agg, s, &frames, &depth, &count);
        if (counts)
            count = s < ncounts ? counts[s] : 0;
        if (!count)
            continue;
        size_t from = q->skip_threads && depth && is_thread_root(names, frames[0]) ? 1 : 0;
        if (q->npath == 0 && !q->anchored) {
            /* Flat: every function of the stack, once. */
            if (depth > cap_seen) {
                pf_top_fn *v = realloc(seen, depth * sizeof(*v));
                if (!v)
                    goto nomem;
                seen = v;
                cap_seen = depth;
            }
            size_t nseen = 0;
            *context += count;
            for (size_t d = from; d < depth; d++) {
                const struct pf_frame_text *f = pf_intern_frame_get(names, frames[d]);
                if (!f || f->kind == PF_FRAME_PSEUDO)
                    continue;
                pf_top_fn fn = pf_top_fn_of(names, frames[d]);
                bool dup = false;
                for (size_t k = 0; k < nseen && !dup; k++)
                    dup = seen[k] == fn;
                struct pf_top_row *rw = row(&r, fn, frames[d]);
                if (!rw)
                    goto nomem;
                if (!dup) {
                    seen[nseen++] = fn;
                    rw->total += count;
                }
                if (d == depth - 1)
                    rw->own += count;
            }
            continue;
        }
        long at = find_path(names, frames, depth, q, from);
        if (at < 0)
            continue;
        *context += count;
        size_t next = (size_t)at + q->npath;
        struct pf_top_row *rw;
        if (next >= depth) {
            rw = row(&r, PF_TOP_SELF, q->npath ? frames[next - 1] : 0);
            if (!rw)
                goto nomem;
            rw->own += count;
            rw->total += count;
        } else {
            rw = row(&r, pf_top_fn_of(names, frames[next]), frames[next]);
            if (!rw)
                goto nomem;
            rw->total += count;
            if (next == depth - 1)
                rw->own += count;
        }
    }
    free(seen);
    g_sort = q->sort;
    if (r.n)
        qsort(r.v, r.n, sizeof(*r.v), cmp_row);
    *out = r.v;
    *n = r.n;
    return PF_OK;
nomem:
    free(seen);
    free(r.v);
    return PF_ERR_NOMEM;
}

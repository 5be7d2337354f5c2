#include "pyflame/target/prefetch.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"

/* Two ranges closer than this are read as one piece. Both ends are
 * readable, and a gap under a page lies within their two pages, so the
 * merged piece touches no page that was not going to be read anyway. */
#define MERGE_GAP 1024

/* A miss reads the aligned block of four pages around what was asked (if
 * part of it is not mapped, the page, or two if the range crosses into the
 * next), and keeps it until the next fill or reset: when
 * a walk meets frames it has not seen (3.10 and older allocate a frame
 * object per call, and a deep recursion gets new ones each time it is
 * entered), those were allocated one after another and lie side by side,
 * several to a page, so one read serves the next few misses. A page that
 * holds a readable byte is readable to its end. */
#define RA_PAGE 4096u
#define RA_BLOCK (4 * RA_PAGE)
#define RA_SLOTS 16 /* a walk moves through memory one way: a few blocks suffice */

struct piece {
    uint64_t addr;
    size_t len;
    size_t off; /* into data */
};

struct pf_prefetch {
    struct pf_mem *base;
    struct pf_mem view;
    struct piece *pieces; /* sorted by addr, disjoint: the copies */
    size_t n, cap;
    uint8_t *data;
    size_t data_cap;
    struct pf_range *scratch; /* the ranges of a fill, sorted */
    size_t scratch_cap;
    struct pf_iov *iov;
    size_t iov_cap;
    unsigned char *ok;
    size_t ok_cap;
    struct pf_plan *journal;
    uint64_t hits, misses;
    /* pages read on a miss since the last fill or reset (RA_PAGE) */
    uint64_t ra_addr[RA_SLOTS];
    size_t ra_len[RA_SLOTS];
    uint8_t *ra_data; /* RA_SLOTS x RA_BLOCK */
    size_t ra_n, ra_next;
};

void pf_plan_clear(struct pf_plan *p)
{
    p->n = 0;
}

void pf_plan_free(struct pf_plan *p)
{
    if (!p)
        return;
    free(p->r);
    *p = (struct pf_plan){0};
}

/* Whether [start, start+span) holds all of [addr, addr+len). */
static bool holds(uint64_t start, size_t span, uint64_t addr, size_t len)
{
    return addr >= start && addr - start <= span && span - (addr - start) >= len;
}

/* How many of a plan's last ranges a new one is checked against. */
#define PLAN_WINDOW 4

void pf_plan_add(struct pf_plan *p, uint64_t addr, size_t len)
{
    if (len == 0 || len > UINT32_MAX || p->n >= PF_PLAN_MAX)
        return;
    /* A walk alternates between a few places (a frame, then its code
     * object: in a recursion the same one each time), so a range that one
     * of the last few holds is dropped: a deep stack's plan keeps a range
     * per frame, not per read. */
    for (size_t i = p->n, k = 0; i-- > 0 && k < PLAN_WINDOW; k++)
        if (holds(p->r[i].addr, p->r[i].len, addr, len))
            return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct pf_range *r = realloc(p->r, cap * sizeof(*r));
        if (!r)
            return; /* a shorter plan only costs a miss */
        p->r = r;
        p->cap = cap;
    }
    p->r[p->n++] = (struct pf_range){addr, (uint32_t)len};
}

void pf_plan_swap(struct pf_plan *a, struct pf_plan *b)
{
    struct pf_plan t = *a;
    *a = *b;
    *b = t;
}


/* The copy covering [addr, addr+len), or NULL. */
static const struct piece *find(const struct pf_prefetch *p, uint64_t addr, size_t len)
{
    size_t lo = 0, hi = p->n;
    /* last piece with piece.addr <= addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->pieces[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct piece *c = &p->pieces[lo - 1];
    return holds(c->addr, c->len, addr, len) ? c : NULL;
}

static void journal(struct pf_prefetch *p, uint64_t addr, size_t len)
{
    if (p->journal)
        pf_plan_add(p->journal, addr, len);
}

static pf_err view_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
    struct pf_prefetch *p = ctx;
    const struct piece *c = find(p, addr, len);

    if (c) {
        memcpy(dst, p->data + c->off + (addr - c->addr), len);
        p->hits++;
        journal(p, addr, len);
        return PF_OK;
    }
    for (size_t i = 0; i < p->ra_n; i++) {
        if (holds(p->ra_addr[i], p->ra_len[i], addr, len)) {
            memcpy(dst, p->ra_data + i * RA_BLOCK + (addr - p->ra_addr[i]), len);
            p->hits++;
            journal(p, addr, len);
            return PF_OK;
        }
    }
    p->misses++;
    /* the block of RA_BLOCK around the range, else its page or two */
    uint64_t block = addr & ~(uint64_t)(RA_BLOCK - 1), page = addr & ~(uint64_t)(RA_PAGE - 1);
    size_t pages = addr + len - page <= RA_PAGE ? RA_PAGE : 2 * RA_PAGE;
    struct { uint64_t at; size_t span; } tries[2] = {{block, RA_BLOCK}, {page, pages}};
    for (int k = 0; k < 2 && p->ra_data && len > 0 && addr + len >= addr; k++) {
        uint64_t at = tries[k].at;
        size_t span = tries[k].span;
        if (!holds(at, span, addr, len))
            continue;
        size_t slot = p->ra_next;
        uint8_t *buf = p->ra_data + slot * RA_BLOCK;
        /* A failed read may have written part of the buffer: the slot's old
         * block is gone whatever happens. */
        p->ra_len[slot] = 0;
        if (pf_mem_read(p->base, at, buf, span) != PF_OK)
            continue; /* part of the block is not mapped */
        p->ra_addr[slot] = at;
        p->ra_len[slot] = span;
        p->ra_next = (slot + 1) % RA_SLOTS;
        if (p->ra_n < RA_SLOTS)
            p->ra_n++;
        memcpy(dst, buf + (addr - at), len);
        journal(p, addr, len);
        return PF_OK;
    }
    pf_err err = pf_mem_read(p->base, addr, dst, len);
    if (!err)
        journal(p, addr, len);
    return err;
}

static pf_err view_readv(void *ctx, const struct pf_iov *iov, size_t n, unsigned char *ok)
{
    struct pf_prefetch *p = ctx;
    struct pf_iov miss[PF_READV_BATCH];
    unsigned char miss_ok[PF_READV_BATCH];
    size_t idx[PF_READV_BATCH], k = 0;

    /* pf_mem_readv hands us at most PF_READV_BATCH pieces. */
    for (size_t i = 0; i < n; i++) {
        const struct piece *c = find(p, iov[i].addr, iov[i].len);
        if (c) {
            memcpy(iov[i].dst, p->data + c->off + (iov[i].addr - c->addr), iov[i].len);
            ok[i] = 1;
            p->hits++;
            journal(p, iov[i].addr, iov[i].len);
        } else {
            idx[k] = i;
            miss[k++] = iov[i];
        }
    }
    if (k == 0)
        return PF_OK;
    p->misses += k;
    pf_err err = pf_mem_readv(p->base, miss, k, miss_ok);
    if (err)
        return err;
    for (size_t j = 0; j < k; j++) {
        ok[idx[j]] = miss_ok[j];
        if (miss_ok[j])
            journal(p, miss[j].addr, miss[j].len);
    }
    return PF_OK;
}

static bool view_has(void *ctx, uint64_t addr, size_t len)
{
    return find(ctx, addr, len) != NULL;
}

static const struct pf_mem_ops VIEW_OPS = {
    .read = view_read,
    .readv = view_readv,
    .has = view_has,
};

pf_err pf_prefetch_new(struct pf_mem *base, struct pf_prefetch **out)
{
    struct pf_prefetch *p = calloc(1, sizeof(*p));
    if (!p)
        return PF_ERR_NOMEM;
    p->base = base;
    p->view = (struct pf_mem){.ops = &VIEW_OPS, .ctx = p};
    p->ra_data = malloc(RA_SLOTS * RA_BLOCK); /* without it, misses read exactly */
    *out = p;
    return PF_OK;
}

void pf_prefetch_free(struct pf_prefetch *p)
{
    if (!p)
        return;
    free(p->pieces);
    free(p->data);
    free(p->scratch);
    free(p->iov);
    free(p->ok);
    free(p->ra_data);
    free(p);
}

void pf_prefetch_reset(struct pf_prefetch *p)
{
    p->n = 0;
    p->ra_n = p->ra_next = 0;
}

struct pf_mem *pf_prefetch_mem(struct pf_prefetch *p)
{
    return &p->view;
}

void pf_prefetch_journal(struct pf_prefetch *p, struct pf_plan *j)
{
    p->journal = j;
}

void pf_prefetch_counts(const struct pf_prefetch *p, uint64_t *hits, uint64_t *misses)
{
    *hits = p->hits;
    *misses = p->misses;
}

/* Sort r[0..n) by address, with tmp (room for n) as scratch. A plan is a
 * few monotonic runs (a walk goes up or down a data stack, or along a
 * chain of heap frames), so a natural merge sort does it in about one pass
 * where qsort's indirect comparisons were an eighth of a deep stack's
 * sample. Descending runs are turned around first. */
static void sort_ranges(struct pf_range *r, size_t n, struct pf_range *tmp)
{
    for (;;) {
        size_t runs = 0;
        for (size_t a = 0; a < n;) {
            size_t b = a + 1;
            if (b < n && r[b].addr < r[a].addr) {
                while (b < n && r[b].addr < r[b - 1].addr)
                    b++;
                for (size_t i = a, j = b - 1; i < j; i++, j--) {
                    struct pf_range t = r[i];
                    r[i] = r[j];
                    r[j] = t;
                }
            }
            while (b < n && r[b].addr >= r[b - 1].addr)
                b++;
            a = b;
            runs++;
        }
        if (runs <= 1)
            return;
        /* Merge neighbouring runs pairwise into tmp, then copy back. */
        size_t out = 0;
        for (size_t a = 0; a < n;) {
            size_t m = a + 1;
            while (m < n && r[m].addr >= r[m - 1].addr)
                m++;
            size_t e = m;
            if (e < n) {
                e++;
                while (e < n && r[e].addr >= r[e - 1].addr)
                    e++;
            }
            size_t i = a, j = m;
            while (i < m && j < e)
                tmp[out++] = r[j].addr < r[i].addr ? r[j++] : r[i++];
            while (i < m)
                tmp[out++] = r[i++];
            while (j < e)
                tmp[out++] = r[j++];
            a = e;
        }
        memcpy(r, tmp, n * sizeof(*r));
    }
}

/* Grow *buf to hold at least want elements of size sz (geometrically, so
 * the hot path allocates only while the plans still grow). */
static bool reserve(void **buf, size_t *cap, size_t want, size_t sz)
{
    if (want <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < want)
        c *= 2;
    void *v = realloc(*buf, c * sz);
    if (!v)
        return false;
    *buf = v;
    *cap = c;
    return true;
}

pf_err pf_prefetch_fill(struct pf_prefetch *p, const struct pf_plan *const *plans, size_t nplans)
{
    size_t total = 0, m = 0, bytes = 0;

    p->n = 0;
    p->ra_n = p->ra_next = 0;
    for (size_t i = 0; i < nplans; i++)
        total += plans[i] ? plans[i]->n : 0;
    if (total == 0)
        return PF_OK;
    if (!reserve((void **)&p->scratch, &p->scratch_cap, 2 * total, sizeof(*p->scratch)))
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < nplans; i++)
        if (plans[i] && plans[i]->n) {
            memcpy(p->scratch + m, plans[i]->r, plans[i]->n * sizeof(*p->scratch));
            m += plans[i]->n;
        }
    sort_ranges(p->scratch, m, p->scratch + m);
    /* Merge into pieces: overlapping, touching, or closer than MERGE_GAP. */
    if (!reserve((void **)&p->pieces, &p->cap, m, sizeof(*p->pieces)))
        return PF_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t a = p->scratch[i].addr, e = a + p->scratch[i].len;
        if (a == 0 || e < a)
            continue;
        if (n) {
            struct piece *last = &p->pieces[n - 1];
            uint64_t le = last->addr + last->len;
            if (a <= le + MERGE_GAP && (e > le ? e - last->addr : last->len) <= PF_MAX_READ) {
                if (e > le)
                    last->len = (size_t)(e - last->addr);
                continue;
            }
        }
        p->pieces[n++] = (struct piece){.addr = a, .len = (size_t)(e - a)};
    }
    for (size_t i = 0; i < n; i++) {
        if (bytes + p->pieces[i].len > PF_MAX_PREFETCH) {
            n = i; /* the rest will be misses */
            break;
        }
        p->pieces[i].off = bytes;
        bytes += p->pieces[i].len;
    }
    if (!reserve((void **)&p->data, &p->data_cap, bytes, 1) ||
        !reserve((void **)&p->iov, &p->iov_cap, n, sizeof(*p->iov)) ||
        !reserve((void **)&p->ok, &p->ok_cap, n, 1))
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        p->iov[i] = (struct pf_iov){p->pieces[i].addr, p->data + p->pieces[i].off, p->pieces[i].len};
    pf_err err = pf_mem_readv(p->base, p->iov, n, p->ok);
    if (err)
        return err;
    /* Keep the pieces that were read; order (and so the search) stays. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (p->ok[i])
            p->pieces[kept++] = p->pieces[i];
    p->n = kept;
    return PF_OK;
}

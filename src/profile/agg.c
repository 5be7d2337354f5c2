#include "pyflame/profile/agg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/grow.h"
#include "pyflame/base/hashindex.h"

struct stack {
    size_t off; /* into frames[] */
    uint32_t n;
    uint64_t count;
};

struct pf_agg {
    uint32_t *frames; /* every stack's ids, back to back */
    size_t nframes, capframes;
    struct stack *stacks;
    size_t nstacks, capstacks;
    struct pf_hashindex index; /* over stacks */
    uint64_t idle, failed[PF_FAIL__COUNT], total;
    /* The timeline: entries (what, index into times) and tick instants. */
    bool timeline;
    struct entry {
        uint32_t what, time;
    } *entries;
    size_t nentries, capentries;
    uint64_t *times;
    size_t ntimes, captimes;
    uint64_t now;
    bool now_recorded;
    bool nomem; /* the timeline could not grow: it stops, the counts go on */
};

static const char *const REASONS[PF_FAIL__COUNT] = {
    [PF_FAIL_MEMORY] = "memory read failed",
    [PF_FAIL_CORRUPT] = "inconsistent data",
    [PF_FAIL_GIL_MOVED] = "GIL changed hands",
    [PF_FAIL_THREAD_GONE] = "thread exited",
    [PF_FAIL_NO_THREAD] = "thread state not matched to a thread",
    [PF_FAIL_NOT_READY] = "interpreter not initialised",
    [PF_FAIL_PTRACE] = "ptrace stop failed",
    [PF_FAIL_TORN] = "stack changed while read",
    [PF_FAIL_SLOW_STOP] = "thread did not stop in time",
};

const char *pf_fail_reason_name(enum pf_fail_reason r)
{
    return (unsigned)r < PF_FAIL__COUNT ? REASONS[r] : "?";
}

static uint32_t hash_ids(const uint32_t *ids, size_t n)
{
    uint64_t h = 0x84222325cbf29ce4ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= ids[i];
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

pf_err pf_agg_new(struct pf_agg **out)
{
    struct pf_agg *a = calloc(1, sizeof(*a));
    if (!a)
        return PF_ERR_NOMEM;
    if (pf_hashindex_init(&a->index, 1024)) {
        free(a);
        return PF_ERR_NOMEM;
    }
    *out = a;
    return PF_OK;
}

void pf_agg_free(struct pf_agg *a)
{
    if (!a)
        return;
    free(a->frames);
    free(a->stacks);
    pf_hashindex_free(&a->index);
    free(a->entries);
    free(a->times);
    free(a);
}

void pf_agg_reset(struct pf_agg *a)
{
    pf_hashindex_clear(&a->index);
    a->nstacks = a->nframes = a->nentries = a->ntimes = 0;
    a->idle = a->total = 0;
    memset(a->failed, 0, sizeof(a->failed));
    a->now_recorded = false;
    a->nomem = false;
}

pf_err pf_agg_keep_timeline(struct pf_agg *a)
{
    a->timeline = true;
    return PF_OK;
}

void pf_agg_set_time(struct pf_agg *a, uint64_t mono_ns)
{
    a->now = mono_ns;
    a->now_recorded = false;
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 4096;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * size);
    if (q)
        *cap = n;
    return q;
}

static void record(struct pf_agg *a, uint32_t what, uint64_t count)
{
    if (!a->timeline || a->nomem)
        return;
    if (!a->now_recorded) {
        uint64_t *t = grow(a->times, &a->captimes, a->ntimes + 1, sizeof(*t));
        if (!t) {
            a->nomem = true;
            return;
        }
        a->times = t;
        a->times[a->ntimes++] = a->now;
        a->now_recorded = true;
    }
    struct entry *e = grow(a->entries, &a->capentries, a->nentries + count, sizeof(*e));
    if (!e) {
        a->nomem = true;
        return;
    }
    a->entries = e;
    for (uint64_t i = 0; i < count; i++)
        a->entries[a->nentries++] = (struct entry){what, (uint32_t)(a->ntimes - 1)};
}

void pf_agg_timeline_drop_before(struct pf_agg *a, uint64_t mono_ns)
{
    size_t t = 0, e = 0;
    /* A timeline that stopped for want of memory starts again once nobody
     * needs anything up to now (--serve with no scrape waiting): what
     * comes next is whole. */
    if (a->nomem && mono_ns >= a->now)
        a->nomem = false;
    while (t < a->ntimes && a->times[t] < mono_ns)
        t++;
    if (t == 0)
        return;
    if (t == a->ntimes)
        a->now_recorded = false; /* the current tick's instant went too */
    while (e < a->nentries && a->entries[e].time < t)
        e++;
    memmove(a->times, a->times + t, (a->ntimes - t) * sizeof(*a->times));
    a->ntimes -= t;
    memmove(a->entries, a->entries + e, (a->nentries - e) * sizeof(*a->entries));
    a->nentries -= e;
    for (size_t i = 0; i < a->nentries; i++)
        a->entries[i].time -= (uint32_t)t;
}

bool pf_agg_timeline_complete(const struct pf_agg *a)
{
    return !a->nomem;
}

size_t pf_agg_timeline_count(const struct pf_agg *a)
{
    return a->nentries;
}

void pf_agg_timeline_at(const struct pf_agg *a, size_t i, uint64_t *mono_ns, uint32_t *what)
{
    *mono_ns = a->times[a->entries[i].time];
    *what = a->entries[i].what;
}

pf_err pf_agg_add(struct pf_agg *a, const uint32_t *frames, size_t n, uint64_t count)
{
    struct pf_hashindex_probe probe;
    uint32_t k;

    pf_hashindex_probe(&a->index, hash_ids(frames, n), &probe);
    while ((k = pf_hashindex_next(&a->index, &probe)) != PF_HASHINDEX_END) {
        struct stack *s = &a->stacks[k];
        if (s->n == n && memcmp(a->frames + s->off, frames, n * sizeof(*frames)) == 0) {
            s->count += count;
            a->total += count;
            record(a, k, count);
            return PF_OK;
        }
    }
    if (a->nframes + n > a->capframes) {
        size_t cap = a->capframes ? a->capframes : 4096;
        while (cap < a->nframes + n)
            cap *= 2;
        uint32_t *f = realloc(a->frames, cap * sizeof(*f));
        if (!f)
            return PF_ERR_NOMEM;
        a->frames = f;
        a->capframes = cap;
    }
    struct stack *s = pf_grow(a->stacks, a->nstacks, &a->capstacks, sizeof(*s), 256);
    if (!s)
        return PF_ERR_NOMEM;
    a->stacks = s;
    if (n)
        memcpy(a->frames + a->nframes, frames, n * sizeof(*frames));
    k = (uint32_t)a->nstacks++;
    a->stacks[k] = (struct stack){.off = a->nframes, .n = (uint32_t)n, .count = count};
    a->nframes += n;
    a->total += count;
    record(a, k, count);
    return pf_hashindex_insert(&a->index, &probe, k);
}

void pf_agg_add_idle(struct pf_agg *a, uint64_t count)
{
    a->idle += count;
    record(a, PF_AGG_IDLE, count);
}

void pf_agg_add_failed(struct pf_agg *a, enum pf_fail_reason why, uint64_t count)
{
    if ((unsigned)why < PF_FAIL__COUNT)
        a->failed[why] += count;
    record(a, PF_AGG_FAILED(why), count);
}

uint64_t pf_agg_idle(const struct pf_agg *a)
{
    return a->idle;
}

uint64_t pf_agg_failed(const struct pf_agg *a)
{
    uint64_t sum = 0;
    for (int i = 0; i < PF_FAIL__COUNT; i++)
        sum += a->failed[i];
    return sum;
}

uint64_t pf_agg_failed_by(const struct pf_agg *a, enum pf_fail_reason why)
{
    return (unsigned)why < PF_FAIL__COUNT ? a->failed[why] : 0;
}

uint64_t pf_agg_stack_samples(const struct pf_agg *a)
{
    return a->total;
}

size_t pf_agg_stack_count(const struct pf_agg *a)
{
    return a->nstacks;
}

void pf_agg_stack_at(const struct pf_agg *a, size_t i, const uint32_t **frames, size_t *n,
                     uint64_t *count)
{
    const struct stack *s = &a->stacks[i];
    *frames = a->frames + s->off;
    *n = s->n;
    *count = s->count;
}

/* Chrome's Trace Event Format (JSON), as Perfetto UI and chrome://tracing
 * open it: per thread (its "(thread TID NAME)" root frame with
 * --show-threads; one track otherwise: with --threads, use
 * --show-threads, or the threads' samples of one tick share a track), one
 * complete event ("ph":"X") per
 * contiguous run of samples in which a frame stays at its depth of the
 * stack. A sample lasts until the next tick, the last one an interval.
 * Times in microseconds since the epoch. Idle and failed samples close
 * every open frame: they show as gaps. */
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/escape.h"
#include "pyflame/output/writer.h"

/* What is open on one track: the frames of its current stack with the
 * time each was entered. */
struct track {
    int tid;
    uint64_t last; /* the last instant it had a sample */
    uint32_t *frames;
    uint64_t *since;
    size_t depth, cap;
};

/* A complete event, kept until the end: readers (speedscope's importer)
 * want a parent before the children that start at its instant, and frames
 * close innermost first. */
struct event {
    uint64_t ts, end;
    uint32_t frame;
    uint32_t depth;
    int tid;
};

struct chrome {
    struct event *events;
    size_t nevents, capevents;
    bool nomem;
    FILE *out;
    const struct pf_intern *names;
    const struct pf_write_opts *opts;
    struct track *tracks;
    size_t ntracks;
    bool first;
};

static struct track *track_for(struct chrome *c, int tid, const char *label)
{
    for (size_t i = 0; i < c->ntracks; i++)
        if (c->tracks[i].tid == tid)
            return &c->tracks[i];
    struct track *t = &c->tracks[c->ntracks++];
    *t = (struct track){.tid = tid};
    /* Name the track, as Perfetto shows it. */
    fprintf(c->out, "%s{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":",
            c->first ? "" : ",\n", tid);
    pf_escape_json(c->out, label ? label : "Python");
    fputs("}}", c->out);
    c->first = false;
    return t;
}

static void close_to(struct chrome *c, struct track *t, size_t depth, uint64_t now)
{
    while (t->depth > depth) {
        t->depth--;
        if (c->nevents == c->capevents) {
            size_t cap = c->capevents ? c->capevents * 2 : 4096;
            struct event *e = realloc(c->events, cap * sizeof(*e));
            if (!e) {
                c->nomem = true;
                continue;
            }
            c->events = e;
            c->capevents = cap;
        }
        c->events[c->nevents++] = (struct event){
            .ts = t->since[t->depth], .end = now, .frame = t->frames[t->depth],
            .depth = (uint32_t)t->depth, .tid = t->tid};
    }
}

static int cmp_event(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->depth < y->depth ? -1 : x->depth > y->depth;
}

static void print_event(struct chrome *c, const struct event *ev)
{
    const char *function, *file;
    int line;
    pf_writer_frame_parts(c->names, ev->frame, &function, &file, &line);
    int64_t ts = ((int64_t)ev->ts + c->opts->mono_to_unix_ns) / 1000;
    int64_t end = ((int64_t)ev->end + c->opts->mono_to_unix_ns) / 1000;
    fprintf(c->out, ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%lld,\"dur\":%lld,\"name\":", ev->tid,
            (long long)ts, (long long)(end - ts));
    pf_escape_json(c->out, function);
    if (*file) {
        fputs(",\"args\":{\"file\":", c->out);
        pf_escape_json(c->out, file);
        if (line > 0)
            fprintf(c->out, ",\"line\":%d", line);
        putc('}', c->out);
    }
    putc('}', c->out);
}

static pf_err open_stack(struct track *t, const uint32_t *ids, size_t depth, uint64_t now)
{
    size_t same = 0;
    while (same < t->depth && same < depth && t->frames[same] == ids[same])
        same++;
    if (depth > t->cap) {
        size_t cap = depth * 2;
        uint32_t *f = realloc(t->frames, cap * sizeof(*f));
        if (!f)
            return PF_ERR_NOMEM;
        t->frames = f;
        uint64_t *s = realloc(t->since, cap * sizeof(*s));
        if (!s)
            return PF_ERR_NOMEM;
        t->since = s;
        t->cap = cap;
    }
    for (size_t d = same; d < depth; d++) {
        t->frames[d] = ids[d];
        t->since[d] = now;
    }
    t->depth = depth;
    return PF_OK;
}

static size_t common_prefix(const struct track *t, const uint32_t *ids, size_t depth)
{
    size_t same = 0;
    while (same < t->depth && same < depth && t->frames[same] == ids[same])
        same++;
    return same;
}

static pf_err write_chrome(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                           const struct pf_write_opts *opts)
{
    size_t n = pf_agg_timeline_count(agg);
    struct chrome c = {.out = out, .names = names, .opts = opts, .first = true};
    uint64_t interval_ns = (uint64_t)(opts->interval * 1e9), last = 0;
    pf_err err = PF_OK;

    if (!pf_agg_timeline_complete(agg))
        return PF_ERR_NOMEM; /* a time line with a hole would lie */
    c.tracks = calloc(pf_agg_stack_count(agg) + 1, sizeof(*c.tracks));
    if (!c.tracks)
        return PF_ERR_NOMEM;
    fputs("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"title\":", out);
    pf_escape_json(out, opts->title ? opts->title : "pyflame");
    fputs("},\"traceEvents\":[\n", out);
    fputs("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{\"name\":", out);
    pf_escape_json(out, opts->title ? opts->title : "pyflame");
    fputs("}}", out);
    c.first = false;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t t;
        uint32_t what;
        pf_agg_timeline_at(agg, i, &t, &what);
        if (i && t != last) {
            /* A new tick: a track with no sample at the last one (its
             * thread was not read then: GIL mode, -x) ends there, rather
             * than run on to its next sample. */
            for (size_t k = 0; k < c.ntracks; k++)
                if (c.tracks[k].last != last)
                    close_to(&c, &c.tracks[k], 0, last);
        }
        last = t;
        if (what == PF_AGG_IDLE || PF_AGG_IS_FAILED(what)) {
            /* No thread is known for it: every track's frames end. */
            for (size_t k = 0; k < c.ntracks; k++)
                close_to(&c, &c.tracks[k], 0, t);
            continue;
        }
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        const char *label;
        pf_agg_stack_at(agg, what, &ids, &depth, &count);
        enum pf_writer_root kind;
        int tid = pf_writer_root_of(names, ids, depth, &kind, &label);
        struct track *tr = track_for(&c, tid, label);
        tr->last = t;
        if (tid) {
            /* The thread frame names the track; it is no event of its own. */
            ids++;
            depth--;
        }
        close_to(&c, tr, common_prefix(tr, ids, depth), t);
        err = open_stack(tr, ids, depth, t);
    }
    for (size_t k = 0; k < c.ntracks; k++) {
        close_to(&c, &c.tracks[k], 0, c.tracks[k].last == last ? last + interval_ns : last);
        free(c.tracks[k].frames);
        free(c.tracks[k].since);
    }
    free(c.tracks);
    if (c.nomem && !err)
        err = PF_ERR_NOMEM;
    if (c.nevents)
        qsort(c.events, c.nevents, sizeof(*c.events), cmp_event);
    for (size_t i = 0; i < c.nevents; i++)
        print_event(&c, &c.events[i]);
    free(c.events);
    fputs("\n]}\n", out);
    if (!err && (fflush(out) != 0 || ferror(out)))
        err = PF_ERR_IO;
    return err;
}

const struct pf_writer pf_writer_chrome = {
    .name = "chrome",
    .needs_timeline = true,
    .write = write_chrome,
};

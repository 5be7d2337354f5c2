/* speedscope's file format (https://www.speedscope.app/file-format-schema.json):
 * one "sampled" profile, or one per thread when --show-threads put a
 * thread frame at the root of every stack; a shared frame table with
 * names, files and lines; each distinct stack once, weighted by its
 * samples times the interval, in seconds. Idle and failed samples are the
 * stacks ["(idle)"] and ["(failed)"] (idle ones left out with -x). */
#include <stdlib.h>

#include "pyflame/base/escape.h"
#include "pyflame/output/writer.h"
#include "pyflame_config.h"

/* The profiles: one per thread seen at the root, or one. */
struct track {
    int tid;
    const char *label;
};

static size_t track_of(struct track *tracks, size_t *n, int tid, const char *label)
{
    for (size_t i = 0; i < *n; i++)
        if (tracks[i].tid == tid)
            return i;
    tracks[*n] = (struct track){tid, label};
    return (*n)++;
}

static pf_err write_speedscope(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                               const struct pf_write_opts *opts)
{
    size_t nframes = pf_intern_frame_count(names), nstacks = pf_agg_stack_count(agg);
    /* Two pseudo frames of our own after the interned ones. */
    size_t idle_frame = nframes, failed_frame = nframes + 1;
    struct track *tracks = calloc(nstacks + 1, sizeof(*tracks));
    size_t *track_at = calloc(nstacks + 1, sizeof(*track_at));
    size_t ntracks = 0;

    if (!tracks || !track_at) {
        free(tracks);
        free(track_at);
        return PF_ERR_NOMEM;
    }
    for (size_t i = 0; i < nstacks; i++) {
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        const char *label;
        pf_agg_stack_at(agg, i, &ids, &depth, &count);
        enum pf_writer_root kind;
        int tid = pf_writer_root_of(names, ids, depth, &kind, &label);
        track_at[i] = track_of(tracks, &ntracks, tid, label);
    }
    if (ntracks == 0)
        track_of(tracks, &ntracks, 0, NULL);

    fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",", out);
    fputs("\"exporter\":\"pyflame " PYFLAME_VERSION "\",\"name\":", out);
    pf_escape_json(out, opts->title ? opts->title : "pyflame");
    fputs(",\"activeProfileIndex\":0,\"shared\":{\"frames\":[", out);
    for (size_t f = 0; f < nframes; f++) {
        const char *function, *file;
        int line;
        pf_writer_frame_parts(names, (uint32_t)f, &function, &file, &line);
        fputs(f ? ",{\"name\":" : "{\"name\":", out);
        pf_escape_json(out, function);
        if (*file) {
            fputs(",\"file\":", out);
            pf_escape_json(out, file);
        }
        if (line > 0)
            fprintf(out, ",\"line\":%d", line);
        putc('}', out);
    }
    fprintf(out, "%s{\"name\":\"(idle)\"},{\"name\":\"(failed)\"}]},\"profiles\":[",
            nframes ? "," : "");
    for (size_t t = 0; t < ntracks; t++) {
        double total = 0;
        fputs(t ? ",{\"type\":\"sampled\",\"name\":" : "{\"type\":\"sampled\",\"name\":", out);
        pf_escape_json(out, tracks[t].label ? tracks[t].label : (opts->title ? opts->title : "pyflame"));
        fputs(",\"unit\":\"seconds\",\"startValue\":0,\"samples\":[", out);
        bool first = true;
        for (size_t i = 0; i < nstacks; i++) {
            const uint32_t *ids;
            size_t depth;
            uint64_t count;
            if (track_at[i] != t)
                continue;
            pf_agg_stack_at(agg, i, &ids, &depth, &count);
            fputs(first ? "[" : ",[", out);
            first = false;
            /* A thread's frame names its profile; it is not in its stacks. */
            size_t from = tracks[t].tid ? 1 : 0;
            for (size_t d = from; d < depth; d++)
                fprintf(out, d > from ? ",%u" : "%u", ids[d]);
            putc(']', out);
        }
        /* Samples without a stack belong to no thread: the first profile. */
        uint64_t idle = t == 0 && opts->include_idle ? pf_agg_idle(agg) : 0;
        uint64_t failed = t == 0 ? pf_agg_failed(agg) : 0;
        if (idle) {
            fprintf(out, "%s[%zu]", first ? "" : ",", idle_frame);
            first = false;
        }
        if (failed)
            fprintf(out, "%s[%zu]", first ? "" : ",", failed_frame);
        fputs("],\"weights\":[", out);
        first = true;
        for (size_t i = 0; i < nstacks; i++) {
            const uint32_t *ids;
            size_t depth;
            uint64_t count;
            if (track_at[i] != t)
                continue;
            pf_agg_stack_at(agg, i, &ids, &depth, &count);
            fprintf(out, "%s%.9g", first ? "" : ",", (double)count * opts->interval);
            total += (double)count * opts->interval;
            first = false;
        }
        if (idle) {
            fprintf(out, "%s%.9g", first ? "" : ",", (double)idle * opts->interval);
            total += (double)idle * opts->interval;
            first = false;
        }
        if (failed) {
            fprintf(out, "%s%.9g", first ? "" : ",", (double)failed * opts->interval);
            total += (double)failed * opts->interval;
        }
        fprintf(out, "],\"endValue\":%.9g}", total);
    }
    fputs("]}\n", out);
    free(tracks);
    free(track_at);
    return fflush(out) != 0 || ferror(out) ? PF_ERR_IO : PF_OK;
}

const struct pf_writer pf_writer_speedscope = {
    .name = "speedscope",
    .write = write_speedscope,
};

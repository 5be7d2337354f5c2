/* Pyflame's --flamechart format: for every sample, in the order taken, a
 * line with its time in microseconds since the epoch, then a line with its
 * stack, root first, each frame followed by ';' (no count); "(idle)" and
 * "(failed)" for samples without a stack, idle ones left out with -x.
 * Pyflame's utils/flame-chart-json reads it. */
#include "pyflame/base/limits.h"
#include "pyflame/output/writer.h"

static pf_err write_flamechart(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                               const struct pf_write_opts *opts)
{
    char frame[PF_MAX_STRING * 2 + 64];
    size_t n = pf_agg_timeline_count(agg);
    if (!pf_agg_timeline_complete(agg))
        return PF_ERR_NOMEM; /* a time line with a hole would lie */

    for (size_t i = 0; i < n; i++) {
        uint64_t t;
        uint32_t what;
        pf_agg_timeline_at(agg, i, &t, &what);
        if (what == PF_AGG_IDLE && !opts->include_idle)
            continue;
        fprintf(out, "%lld\n", (long long)(((int64_t)t + opts->mono_to_unix_ns) / 1000));
        if (what == PF_AGG_IDLE) {
            fputs("(idle)\n", out);
            continue;
        }
        if (PF_AGG_IS_FAILED(what)) {
            fputs("(failed)\n", out);
            continue;
        }
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        pf_agg_stack_at(agg, what, &ids, &depth, &count);
        for (size_t d = 0; d < depth; d++) {
            pf_writer_frame_text(names, ids[d], frame, sizeof(frame));
            fputs(frame, out);
            putc(';', out);
        }
        putc('\n', out);
    }
    return fflush(out) != 0 || ferror(out) ? PF_ERR_IO : PF_OK;
}

const struct pf_writer pf_writer_flamechart = {
    .name = "flamechart",
    .needs_timeline = true,
    .write = write_flamechart,
};

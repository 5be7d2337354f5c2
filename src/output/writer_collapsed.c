/* Collapsed stacks, the format of FlameGraph's stackcollapse scripts:
 * one line per distinct stack, frames root first joined by ';', a space,
 * the count. Lines are sorted so the output of a run is reproducible and
 * diffs well; flamegraph.pl does not care about order. */
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"
#include "pyflame/output/writer.h"

struct line {
    char *text;
    uint64_t count;
};

static int cmp_line(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

static pf_err write_collapsed(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                              const struct pf_write_opts *opts)
{
    size_t n = pf_agg_stack_count(agg);
    struct line *lines = calloc(n ? n : 1, sizeof(*lines));
    char frame[PF_MAX_STRING * 2 + 64];
    pf_err err = PF_OK;

    if (!lines)
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *ids;
        size_t depth, len = 0, cap = 256;
        uint64_t count;
        char *text = malloc(cap);

        if (!text) {
            err = PF_ERR_NOMEM;
            goto out;
        }
        pf_agg_stack_at(agg, i, &ids, &depth, &count);
        text[0] = '\0';
        for (size_t d = 0; d < depth; d++) {
            size_t fl = pf_writer_frame_text(names, ids[d], frame, sizeof(frame));
            if (len + fl + 2 > cap) {
                while (len + fl + 2 > cap)
                    cap *= 2;
                char *t = realloc(text, cap);
                if (!t) {
                    free(text);
                    err = PF_ERR_NOMEM;
                    goto out;
                }
                text = t;
            }
            if (d)
                text[len++] = ';';
            memcpy(text + len, frame, fl + 1);
            len += fl;
        }
        lines[i] = (struct line){text, count};
    }
    qsort(lines, n, sizeof(*lines), cmp_line);
    for (size_t i = 0; i < n; i++)
        if (fprintf(out, "%s %llu\n", lines[i].text, (unsigned long long)lines[i].count) < 0) {
            err = PF_ERR_IO;
            goto out;
        }
    if (opts->include_idle && pf_agg_idle(agg))
        fprintf(out, "(idle) %llu\n", (unsigned long long)pf_agg_idle(agg));
    if (pf_agg_failed(agg))
        fprintf(out, "(failed) %llu\n", (unsigned long long)pf_agg_failed(agg));
    if (fflush(out) != 0 || ferror(out))
        err = PF_ERR_IO;
out:
    for (size_t i = 0; i < n; i++)
        free(lines[i].text);
    free(lines);
    return err;
}

const struct pf_writer pf_writer_collapsed = {
    .name = "collapsed",
    .write = write_collapsed,
};

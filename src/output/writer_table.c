/* A table of functions by time, for those who read `python -m cProfile -s
 * cumtime`: one row per function (per line with --table-lines), with the
 * share and seconds of samples in which it was running itself (own: the
 * innermost frame) and in which it was on the stack at all (total: it or
 * its callees; once per sample, however deep it recursed). Sorted by total
 * (--sort=own: by own). Sampling counts time, not calls, so there is no
 * ncalls column. Pseudo frames (thread roots, "(truncated)") are not
 * functions and have no row; shares are of every sample, idle and failed
 * included (idle left out with -x). */
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/escape.h"
#include "pyflame/output/writer.h"

struct row {
    const char *function, *file;
    int line; /* --table-lines only */
    uint64_t own, total;
    size_t last_stack; /* the stack that last counted it in total, + 1 */
};

struct table {
    struct row *rows;
    size_t n;
    size_t *row_of_frame; /* frame id -> row + 1 */
};

static int cmp_total(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    if (x->own != y->own)
        return x->own < y->own ? 1 : -1;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->function, y->function) ? strcmp(x->function, y->function) : x->line - y->line;
}

static int cmp_own(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->own != y->own)
        return x->own < y->own ? 1 : -1;
    return cmp_total(a, b);
}

/* The row of frame id f, made on first use; NULL for pseudo frames. */
static struct row *row_for(struct table *t, const struct pf_intern *names, uint32_t f, bool lines)
{
    if (t->row_of_frame[f])
        return &t->rows[t->row_of_frame[f] - 1];
    const struct pf_frame_text *ft = pf_intern_frame_get(names, f);
    if (!ft || ft->kind == PF_FRAME_PSEUDO)
        return NULL;
    const char *function, *file;
    int line;
    pf_writer_frame_parts(names, f, &function, &file, &line);
    if (!lines)
        line = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->rows[i].line == line && strcmp(t->rows[i].function, function) == 0 &&
            strcmp(t->rows[i].file, file) == 0) {
            t->row_of_frame[f] = i + 1;
            return &t->rows[i];
        }
    t->rows[t->n] = (struct row){.function = function, .file = file, .line = line};
    t->row_of_frame[f] = ++t->n;
    return &t->rows[t->n - 1];
}

static pf_err write_table(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                          const struct pf_write_opts *opts)
{
    size_t nframes = pf_intern_frame_count(names), nstacks = pf_agg_stack_count(agg);
    struct table t = {
        .rows = calloc(nframes + 1, sizeof(struct row)),
        .row_of_frame = calloc(nframes + 1, sizeof(size_t)),
    };
    if (!t.rows || !t.row_of_frame) {
        free(t.rows);
        free(t.row_of_frame);
        return PF_ERR_NOMEM;
    }
    /* Rows are found by a linear scan the first time a frame id is seen:
     * frame ids are far fewer than samples. */
    for (size_t i = 0; i < nstacks; i++) {
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        pf_agg_stack_at(agg, i, &ids, &depth, &count);
        struct row *leaf = NULL;
        for (size_t d = 0; d < depth; d++) {
            struct row *r = row_for(&t, names, ids[d], opts->table_lines);
            if (!r)
                continue;
            if (r->last_stack != i + 1) {
                r->total += count;
                r->last_stack = i + 1;
            }
            leaf = r;
        }
        /* The innermost function; a pseudo leaf ("(idle)" of --threads)
         * means the thread ran none. */
        if (depth && leaf && row_for(&t, names, ids[depth - 1], opts->table_lines) == leaf)
            leaf->own += count;
    }
    uint64_t idle = opts->include_idle ? pf_agg_idle(agg) : 0;
    uint64_t all = pf_agg_stack_samples(agg) + idle + pf_agg_failed(agg);
    qsort(t.rows, t.n, sizeof(*t.rows), opts->sort == PF_SORT_OWN ? cmp_own : cmp_total);

    fprintf(out, "%llu samples in %.3f s, one every %g s (%llu idle, %llu failed)",
            (unsigned long long)all, opts->duration, opts->interval, (unsigned long long)idle,
            (unsigned long long)pf_agg_failed(agg));
    if (opts->title) {
        fputs(": ", out);
        pf_escape_text(out, opts->title);
    }
    fputc('\n', out);
    fputs("Sampled: seconds are samples times the interval, not measured calls; "
          "there is no call count.\n", out);
    fprintf(out, "Sorted by %s time.\n\n", opts->sort == PF_SORT_OWN ? "own" : "total");
    fprintf(out, "%7s %7s %9s %9s  %s\n", "%own", "%total", "own_s", "total_s",
            opts->table_lines ? "function (file:line)" : "function (file)");
    for (size_t i = 0; i < t.n; i++) {
        const struct row *r = &t.rows[i];
        double own = all ? 100.0 * (double)r->own / (double)all : 0;
        double total = all ? 100.0 * (double)r->total / (double)all : 0;
        fprintf(out, "%6.2f%% %6.2f%% %9.3f %9.3f  ", own, total, (double)r->own * opts->interval,
                (double)r->total * opts->interval);
        pf_escape_text(out, r->function);
        if (*r->file) {
            fputs(" (", out);
            pf_escape_text(out, r->file);
            if (r->line > 0)
                fprintf(out, ":%d", r->line);
            fputc(')', out);
        }
        fputc('\n', out);
    }
    free(t.rows);
    free(t.row_of_frame);
    return fflush(out) != 0 || ferror(out) ? PF_ERR_IO : PF_OK;
}

const struct pf_writer pf_writer_table = {
    .name = "table",
    .write = write_table,
};

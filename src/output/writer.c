#include "pyflame/output/writer.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pyflame/base/limits.h"
#include "pyflame/cpython/linetable.h"

/* Every format: a new writer is a writer_<name>.c and a line here. */
static const struct pf_writer *const WRITERS[] = {
    &pf_writer_collapsed, &pf_writer_flamechart, &pf_writer_speedscope,
    &pf_writer_chrome,    &pf_writer_table,      &pf_writer_pprof,
    &pf_writer_svg,
};
#define NWRITERS (sizeof(WRITERS) / sizeof(WRITERS[0]))

const struct pf_writer *pf_writer_find(const char *name)
{
    for (size_t i = 0; i < NWRITERS; i++)
        if (strcmp(WRITERS[i]->name, name) == 0)
            return WRITERS[i];
    return NULL;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

const struct pf_writer *pf_writer_for_path(const char *path)
{
    static const struct {
        const char *ext, *writer;
    } BY_EXT[] = {
        {".svg", "svg"}, {".json", "speedscope"}, {".pb.gz", "pprof"}, {".txt", "collapsed"},
    };
    for (size_t i = 0; i < sizeof(BY_EXT) / sizeof(BY_EXT[0]); i++)
        if (ends_with(path, BY_EXT[i].ext))
            return pf_writer_find(BY_EXT[i].writer);
    return NULL;
}

const char *pf_writer_names(void)
{
    static char buf[256];
    if (!buf[0])
        for (size_t i = 0; i < NWRITERS; i++) {
            if (i)
                strcat(buf, "|");
            strcat(buf, WRITERS[i]->name);
        }
    return buf;
}

/* FlameGraph splits frames on ';' and records on newlines. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (*s == ';')
            *s = ':';
        else if (*s == '\n' || *s == '\r')
            *s = ' ';
}

size_t pf_writer_frame_text(const struct pf_intern *names, uint32_t frame_id, char *buf, size_t cap)
{
    const struct pf_frame_text *f = pf_intern_frame_get(names, frame_id);
    int n;

    if (!f)
        n = snprintf(buf, cap, "(unknown)");
    else if (f->kind == PF_FRAME_PSEUDO || f->kind == PF_FRAME_NATIVE)
        n = snprintf(buf, cap, "%s", pf_intern_text(names, f->name));
    else if (f->line == PF_LINE_OMITTED)
        n = snprintf(buf, cap, "%s:%s", pf_intern_text(names, f->file), pf_intern_text(names, f->name));
    else if (f->line == PF_LINE_NONE)
        /* The table says this instruction has no line (3.10+): say so
         * rather than print a line that was not executing. */
        n = snprintf(buf, cap, "%s:%s:?", pf_intern_text(names, f->file), pf_intern_text(names, f->name));
    else
        n = snprintf(buf, cap, "%s:%s:%d", pf_intern_text(names, f->file), pf_intern_text(names, f->name),
                     (int)f->line);
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap)
        n = cap ? (int)cap - 1 : 0;
    sanitize(buf);
    return (size_t)n;
}

void pf_writer_frame_parts(const struct pf_intern *names, uint32_t frame_id, const char **function,
                           const char **file, int *line)
{
    const struct pf_frame_text *f = pf_intern_frame_get(names, frame_id);
    *function = f ? pf_intern_text(names, f->name) : "(unknown)";
    *file = f && f->kind == PF_FRAME_PYTHON ? pf_intern_text(names, f->file) : "";
    *line = f && f->kind == PF_FRAME_PYTHON && f->line > 0 ? (int)f->line : 0;
}

int pf_writer_root_of(const struct pf_intern *names, const uint32_t *frames, size_t n,
                      enum pf_writer_root *kind, const char **label)
{
    *label = NULL;
    *kind = PF_ROOT_NONE;
    if (n == 0)
        return 0;
    const struct pf_frame_text *f = pf_intern_frame_get(names, frames[0]);
    if (!f || f->kind != PF_FRAME_PSEUDO)
        return 0;
    const char *text = pf_intern_text(names, f->name);
    int id = 0;
    if (sscanf(text, "(thread %d", &id) == 1 && id > 0)
        *kind = PF_ROOT_THREAD;
    else if (sscanf(text, "(process %d", &id) == 1 && id > 0)
        *kind = PF_ROOT_PROCESS;
    else
        return 0;
    *label = text;
    return id;
}

pf_err pf_writer_dump_thread(FILE *out, const struct pf_intern *names, const struct pf_thread_stack *t)
{
    char frame[PF_MAX_STRING * 2 + 64];
    const char *what = t->state == 'S' || t->state == 'D' ? " (idle)" : "";

    fprintf(out, "Thread %d (%s)%s%s%s%s\n", (int)t->tid, t->name, t->process ? " of " : "",
            t->process ? t->process : "", t->gil ? " [holds the GIL]" : "", what);
    if (t->failed != PF_FAIL__COUNT)
        fprintf(out, "    (failed: %s)\n", pf_fail_reason_name(t->failed));
    else if (t->depth == 0 && !t->truncated)
        fprintf(out, "    (no Python frames)\n");
    for (size_t i = 0; t->failed == PF_FAIL__COUNT && i < t->depth; i++) {
        pf_writer_frame_text(names, t->frames[i], frame, sizeof(frame));
        fprintf(out, "    %s\n", frame);
    }
    if (t->failed == PF_FAIL__COUNT && t->truncated)
        fprintf(out, "    (truncated)\n");
    fputc('\n', out);
    return ferror(out) ? PF_ERR_IO : PF_OK;
}

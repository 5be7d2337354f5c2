/* writer: the output interface. A writer gets the aggregate and the intern
 * table at the end of a run and writes one format to the FILE it is given,
 * and nowhere else. New formats (flamechart, speedscope, ...) are new
 * writer_<name>.c files registered in writer.c; the sampler never knows. */
#ifndef PYFLAME_WRITER_H
#define PYFLAME_WRITER_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(OUTPUT, "pyflame/output/writer.h");

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"

enum pf_table_sort { PF_SORT_TOTAL, PF_SORT_OWN };

struct pf_write_opts {
    bool include_idle;       /* idle samples shown (off with -x) */
    double interval;         /* seconds between ticks (-r; the thinned one if thinned) */
    double duration;         /* seconds sampled */
    int64_t mono_to_unix_ns; /* add to a timeline instant for nanoseconds since the epoch */
    int64_t start_unix_ns;   /* when sampling started, ns since the epoch (0: unknown) */
    const char *title;       /* what was profiled: "pid 1234" or the command line */
    enum pf_table_sort sort; /* table: --sort */
    bool table_lines;        /* table: --table-lines, a row per line, not per function */
};

struct pf_writer {
    const char *name;
    bool needs_timeline; /* reads pf_agg_timeline_* (pf_agg_keep_timeline before sampling) */
    pf_err (*write)(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                    const struct pf_write_opts *opts);
};

/* The writer called `name`, or NULL. */
const struct pf_writer *pf_writer_find(const char *name);

/* The writer a file name asks for by its extension (.svg, .json:
 * speedscope, .pb.gz: pprof, .txt: collapsed), or NULL. */
const struct pf_writer *pf_writer_for_path(const char *path);

/* "collapsed|flamechart|..." for messages. */
const char *pf_writer_names(void);

/* Format one frame as it appears in collapsed output into buf (always
 * NUL-terminated); ';' and newlines in names are replaced, since they would
 * break the format. Returns the length. */
size_t pf_writer_frame_text(const struct pf_intern *names, uint32_t frame_id, char *buf,
                            size_t cap);

/* A frame's parts, for formats that keep them apart: its function (or the
 * whole label of a pseudo or native frame), its file ("" when it has
 * none) and its line (0 when none or omitted). Borrowed strings. */
void pf_writer_frame_parts(const struct pf_intern *names, uint32_t frame_id, const char **function,
                           const char **file, int *line);

/* The root frame of a stack that names a track of its own: "(thread TID
 * NAME)" (--show-threads) or "(process PID COMMAND)" (--subprocesses; a
 * thread frame then comes second). Returns the TID or PID (one namespace:
 * they never collide) with its kind and text, or 0 (PF_ROOT_NONE, *label
 * NULL) when the stack has no such root. */
enum pf_writer_root { PF_ROOT_NONE, PF_ROOT_THREAD, PF_ROOT_PROCESS };
int pf_writer_root_of(const struct pf_intern *names, const uint32_t *frames, size_t n,
                      enum pf_writer_root *kind, const char **label);

/* -d: print one thread's stack, innermost frame first, one
 * "file:function:line" per line, under a header with the thread id, its
 * name, and marks for the GIL holder and idle threads. */
pf_err pf_writer_dump_thread(FILE *out, const struct pf_intern *names, const struct pf_thread_stack *t);

extern const struct pf_writer pf_writer_collapsed;
extern const struct pf_writer pf_writer_flamechart;
extern const struct pf_writer pf_writer_speedscope;
extern const struct pf_writer pf_writer_chrome;
extern const struct pf_writer pf_writer_table;
extern const struct pf_writer pf_writer_pprof;
extern const struct pf_writer pf_writer_svg;

#endif

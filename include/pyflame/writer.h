/* writer: the output interface. A writer gets the aggregate and the intern
 * table at the end of a run and writes one format to the FILE it is given,
 * and nowhere else. New formats (flamechart, speedscope, ...) are new
 * writer_<name>.c files registered in writer.c; the sampler never knows. */
#ifndef PYFLAME_WRITER_H
#define PYFLAME_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pyflame/agg.h"
#include "pyflame/error.h"
#include "pyflame/intern.h"

struct pf_write_opts {
    bool include_idle; /* print the "(idle) N" line (off with -x) */
};

struct pf_writer {
    const char *name;
    pf_err (*write)(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                    const struct pf_write_opts *opts);
};

/* The writer called `name`, or NULL. */
const struct pf_writer *pf_writer_find(const char *name);

/* Format one frame as it appears in collapsed output into buf (always
 * NUL-terminated); ';' and newlines in names are replaced, since they would
 * break the format. Returns the length. */
size_t pf_writer_frame_text(const struct pf_intern *names, uint32_t frame_id, char *buf,
                            size_t cap);

/* One thread's stack as read at one tick, for -d. */
struct pf_thread_stack {
    pid_t tid;
    const char *name;       /* OS thread name */
    char state;             /* kernel state before the stop: 'R', 'S', 'D'... */
    bool gil;               /* holds the GIL */
    const uint32_t *frames; /* frame ids (intern), innermost first */
    size_t depth;
    bool truncated;
    enum pf_fail_reason failed; /* PF_FAIL__COUNT when the stack was read */
};

/* -d: print one thread's stack, innermost frame first, one
 * "file:function:line" per line, under a header with the thread id, its
 * name, and marks for the GIL holder and idle threads. */
pf_err pf_writer_dump_thread(FILE *out, const struct pf_intern *names, const struct pf_thread_stack *t);

extern const struct pf_writer pf_writer_collapsed;

#endif

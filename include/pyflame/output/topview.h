/* topview: what `pyflame --top` shows, computed from the aggregate and
 * nothing else, so it is tested without a terminal (top.c draws it).
 *
 * A function is a (file, name) pair: the rows of a view gather its frames
 * of every line. Three kinds of view:
 *  - flat (path empty, not anchored): every function, like `py-spy top`;
 *  - callees (path F1..Fk): in the stacks where F1 calls F2 ... calls Fk
 *    (the first such run in each stack), what Fk calls, one row per callee,
 *    and a "(self)" row for the samples in Fk itself;
 *  - anchored (the path starts at the root; --threads: the roots are the
 *    "(thread TID NAME)" frames, so the first level lists the threads).
 * own: samples in which the row's function was the innermost frame; total:
 * in which it was there at all (once per stack, however deep it recursed).
 * counts[i] replaces stack i's count (the last interval's samples; stacks
 * from ncounts on, new since, count 0), or NULL for the aggregate's own
 * (cumulated). */
#ifndef PYFLAME_TOPVIEW_H
#define PYFLAME_TOPVIEW_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(OUTPUT, "pyflame/output/topview.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"

/* A function: (file string id << 32) | name string id. */
typedef uint64_t pf_top_fn;

#define PF_TOP_SELF UINT64_MAX /* the "(self)" row of a callees view */

struct pf_top_row {
    pf_top_fn fn;
    uint32_t frame; /* one of its frames, for its text */
    uint64_t own, total;
};

enum pf_top_sort { PF_TOP_BY_TOTAL, PF_TOP_BY_OWN };

struct pf_top_query {
    const pf_top_fn *path;
    size_t npath;
    bool anchored;     /* the path starts at the root frame */
    bool skip_threads; /* flat and callees views: "(thread ...)" roots are not functions */
    enum pf_top_sort sort;
};

/* The rows of a view, sorted, into *rows (malloc'd; the caller frees).
 * *context: the samples the view covers (those whose stack holds the path). */
pf_err pf_top_rows(const struct pf_agg *agg, const struct pf_intern *names, const uint64_t *counts,
                   size_t ncounts, const struct pf_top_query *q, struct pf_top_row **rows, size_t *n,
                   uint64_t *context);

/* The function of a frame id. */
pf_top_fn pf_top_fn_of(const struct pf_intern *names, uint32_t frame);

#endif

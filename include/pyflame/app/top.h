/* top: `pyflame --top`, a full-screen live view (ncurses) of the profile
 * as it is sampled, refreshed every --delay seconds: a header (target,
 * Python, achieved rate, samples, idle and failed shares, threads), a table
 * of functions (topview.h) over the last interval or cumulated, and a walk
 * down the call tree. Driven from the sampler's between_ticks hook, so it
 * reads the aggregate between two ticks, never while a thread is stopped.
 * Keys: Up/Down/PgUp/PgDn select, Enter opens the callees of the selected
 * row, Backspace goes back, s sorts by own or total, c switches between
 * the last interval and cumulated, p pauses the view (sampling goes on),
 * t shows threads first (--threads), q quits (pyflame detaches; the target
 * runs on). */
#ifndef PYFLAME_TOP_H
#define PYFLAME_TOP_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(APP, "pyflame/app/top.h");

#include <stdbool.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"
#include "pyflame/sample/sampler.h"

struct pf_top;

/* Take the terminal (stdout must be one). threads: --threads, whose stacks
 * have "(thread ...)" roots. */
pf_err pf_top_start(const struct pf_agg *agg, const struct pf_intern *names, const char *title,
                    double asked_interval, double delay, bool threads, struct pf_top **out,
                    struct pf_diag *diag);

/* Between ticks: read keys, redraw when due and the terminal takes output
 * (a stalled one must not block sampling). Returns true when q was
 * pressed. */
bool pf_top_update(struct pf_top *t, const struct pf_sampler_progress *p);

/* Give the terminal back. */
void pf_top_end(struct pf_top *t);

#endif

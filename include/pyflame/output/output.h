/* output: where a profile goes, and how it gets there whole. A profile for
 * -o PATH is written to PATH.tmp and renamed over PATH, so a reader (a
 * dashboard, a script tailing the file, a scrape while --flush-every runs)
 * never sees half a file. PATH may hold placeholders, filled in at each
 * write: %t the Unix time (seconds) the profile's window started, %n the
 * window's number from 0 (--flush-reset), %% a '%'. Without -o the profile
 * goes to stdout, once, at the end. A PATH that exists and is not a
 * regular file (a device such as /dev/null, a FIFO, a symlink) is written
 * through instead: renaming over it would replace it. */
#ifndef PYFLAME_OUTPUT_H
#define PYFLAME_OUTPUT_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(OUTPUT, "pyflame/output/output.h");

#include <stdbool.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/output/writer.h"

struct pf_output;

/* path NULL: stdout. Checks that PATH's directory takes the temporary
 * file (creating and removing it), so a bad -o fails before the target is
 * touched. */
pf_err pf_output_open(const char *path, struct pf_output **out, struct pf_diag *diag);
void pf_output_free(struct pf_output *o);

/* True when the path has %t or %n: each window gets a file of its own. */
bool pf_output_per_window(const struct pf_output *o);

/* Write one profile: the window that started at unix_s, numbered n. On
 * failure the previous file at the path is left as it was. */
pf_err pf_output_write(struct pf_output *o, const struct pf_writer *w, const struct pf_agg *agg,
                       const struct pf_intern *names, const struct pf_write_opts *wo, int64_t unix_s,
                       unsigned n, struct pf_diag *diag);

/* The path the last write went to (or would go to), for messages. */
const char *pf_output_last_path(const struct pf_output *o);

#endif

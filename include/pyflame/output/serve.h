/* serve: `pyflame --serve ADDR`, the HTTP endpoint of Go's net/http/pprof
 * that Parca and Grafana Alloy's pyroscope.scrape collect, over
 * libmicrohttpd:
 *   GET /debug/pprof/profile?seconds=N  a gzipped pprof CPU profile of the
 *                                       next N seconds (default 30, 1-300)
 *   GET /debug/pprof/                   an index page
 *   GET /healthz                        "ok"
 * A scrape waits its N seconds in its own connection thread; then it asks
 * the sampling thread for the samples of that window, which builds the
 * profile from the aggregate's timeline between two ticks (the only thread
 * that touches the aggregate) and hands the bytes back; the connection
 * thread sends them. So a slow or stuck client holds only its own thread,
 * never a tick, and several scrapes run at once. Why the next N seconds
 * rather than the last N from a ring: that is what the endpoint means in
 * Go, and what a scraper asking every N seconds expects (no window counted
 * twice); the timeline is only kept for the longest scrape in progress. */
#ifndef PYFLAME_SERVE_H
#define PYFLAME_SERVE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(OUTPUT, "pyflame/output/serve.h");

#include <stdbool.h>
#include <stdint.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"
#include "pyflame/output/writer.h"

#define PF_SERVE_MAX_SECONDS 300

struct pf_serve;

/* Listen on addr ("PORT", ":PORT", "HOST:PORT"; no host: 127.0.0.1; port
 * 0: any free port). base: the write options of every profile (title,
 * idle). mono_to_unix_ns as in pf_write_opts. */
pf_err pf_serve_start(const char *addr, const struct pf_write_opts *base, struct pf_serve **out,
                      struct pf_diag *diag);

/* Check addr's form without listening (before attaching to anything). */
pf_err pf_serve_check_addr(const char *addr, struct pf_diag *diag);

/* "http://127.0.0.1:6060" as bound. */
const char *pf_serve_url(const struct pf_serve *s);

/* True when a scrape's window has ended: pf_serve_poll will build a
 * profile (main lowers pyflame's priority around that work). */
bool pf_serve_due(struct pf_serve *s);

/* From the sampling thread, between ticks: answer the scrapes whose window
 * has ended, from agg's timeline; drop what no scrape can still need.
 * interval: the sampling interval now. */
void pf_serve_poll(struct pf_serve *s, struct pf_agg *agg, const struct pf_intern *names,
                   double interval);

/* Answer every waiting scrape with 503, stop listening, free. */
void pf_serve_stop(struct pf_serve *s);

#endif

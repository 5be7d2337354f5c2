/* log: debug/info messages through a sink that main.c installs. Without a
 * sink nothing is printed, so library code can log without owning stderr.
 * Errors are returned, never logged by the code that returns them. */
#ifndef PYFLAME_LOG_H
#define PYFLAME_LOG_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/log.h");

enum pf_log_level { PF_LOG_DEBUG = 0, PF_LOG_INFO = 1, PF_LOG_WARN = 2 };

typedef void (*pf_log_sink)(enum pf_log_level level, const char *msg);

void pf_log_set_sink(pf_log_sink sink, enum pf_log_level min_level);

void pf_log(enum pf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

#include "pyflame/base/log.h"

#include <stdarg.h>
#include <stdio.h>

/* Set once by main.c before anything runs; read-only afterwards. */
static pf_log_sink g_sink;
static enum pf_log_level g_min = PF_LOG_WARN;

void pf_log_set_sink(pf_log_sink sink, enum pf_log_level min_level)
{
    g_sink = sink;
    g_min = min_level;
}

void pf_log(enum pf_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!g_sink || level < g_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    g_sink(level, msg);
}

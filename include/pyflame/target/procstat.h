/* procstat: reading and parsing /proc/PID/stat (and the same format of
 * /proc/PID/task/TID/stat), and the fields of /proc/PID/status. Discovery wants the process's start time and
 * whether it is exiting, the sampler each thread's run state; they share
 * this parser because the format has one trap: the command name (field 2,
 * in parentheses) may hold spaces and ')', so fields are counted from the
 * last ')' (proc(5)). */
#ifndef PYFLAME_PROCSTAT_H
#define PYFLAME_PROCSTAT_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/procstat.h");

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pyflame/base/error.h"

/* Read /proc/PID/stat into buf (NUL-terminated, cut at cap - 1 bytes). */
pf_err pf_procstat_read(pid_t pid, char *buf, size_t cap);

/* Field 3, the state letter ('R', 'S', 'D', 'Z'...), of stat text. False
 * when the text has no "(comm) S" shape. */
bool pf_procstat_state(const char *text, char *state);

/* Field `field` (1-based, 3 or more, as numbered in proc(5)) of stat text
 * as an unsigned number. False when the text has fewer fields. */
bool pf_procstat_field(const char *text, int field, unsigned long long *value);

/* The first number after "key:" in /proc/PID/status (pid 0: pyflame's
 * own), e.g. "TracerPid", "Uid" (the real one), "VmHWM" (in kB). False
 * when the file or the key is missing. */
bool pf_procstatus_value(pid_t pid, const char *key, long *value);

/* /proc/PID/cmdline as one line (arguments joined by spaces, cut at
 * cap - 1 bytes) into buf; its length, 0 when unknown or empty (a kernel
 * thread, a zombie). */
size_t pf_procstat_cmdline(pid_t pid, char *buf, size_t cap);

#endif

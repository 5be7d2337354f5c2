/* cli: the command line, with the original Pyflame's flags (-p -t -s -r -o
 * -x -n -v -h, --abi) and our additions. It parses and validates, and does
 * nothing else: no I/O, no exit. */
#ifndef PYFLAME_CLI_H
#define PYFLAME_CLI_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(APP, "pyflame/app/cli.h");

#include <stdbool.h>
#include <sys/types.h>

#include "pyflame/base/error.h"

struct pf_options {
    pid_t pid;          /* -p, or the deprecated bare PID */
    char **trace_argv;  /* -t: the command (points into argv), else NULL */
    double seconds;     /* -s; < 0 means "until the target ends" */
    double rate;        /* -r: seconds between samples */
    const char *output; /* -o, or NULL for stdout */
    const char *abi;    /* --abi */
    bool exclude_idle;  /* -x */
    bool line_numbers;  /* false with -n */
    bool version;       /* -v */
    bool help;          /* -h */
    bool verbose;       /* --verbose: how the interpreter was found, on stderr */
    bool bare_pid;      /* the PID came as a bare argument (deprecated) */
    bool threads;       /* --threads */
    bool show_threads;  /* --show-threads */
    bool dump;          /* -d */
    bool stats;         /* --stats */
    bool native;        /* --native */
    bool jitter;        /* true unless --no-jitter */
    bool nonblocking;   /* --nonblocking */
    bool subprocesses;  /* --subprocesses: the process and its descendants */
    const char *format; /* -f/--format, --flamechart; NULL: from -o's extension, else collapsed */
    bool sort_own;      /* --sort=own (table) */
    bool table_lines;   /* --table-lines (table) */
    double flush_every; /* --flush-every SECS, 0: none */
    bool flush_reset;   /* --flush-reset */
    bool quiet;         /* --quiet: no progress line */
    bool top;           /* --top */
    const char *serve;  /* --serve ADDR, or NULL */
    double delay;       /* --delay: --top's refresh, seconds */
    bool no_realtime;   /* --no-realtime: no SCHED_FIFO while sampling (priority.h) */
};

/* Parse argv. On PF_ERR_USAGE, diag says what is wrong. */
pf_err pf_cli_parse(int argc, char **argv, struct pf_options *out, struct pf_diag *diag);

/* The --help text. */
const char *pf_cli_usage(void);

#endif

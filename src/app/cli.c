#include "pyflame/app/cli.h"

#include "pyflame/output/writer.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "Usage: pyflame [options] -p PID\n"
    "       pyflame [options] -t COMMAND [ARG...]\n"
    "\n"
    "Sample the Python stacks of a running process (-p) or of a command (-t)\n"
    "and print them as collapsed stacks (\"frame;frame;frame COUNT\", root first),\n"
    "the input of flamegraph.pl, speedscope and inferno.\n"
    "\n"
    "Options:\n"
    "  -p, --pid=PID            profile the running process PID\n"
    "  -t, --trace COMMAND...   run COMMAND and profile it until it exits; must come last\n"
    "  -s, --seconds=SECS       how long to profile (default 1; with -t, until the command\n"
    "                           exits); 0 takes a single snapshot\n"
    "  -r, --rate=SECS          seconds between samples (default 0.01)\n"
    "  -o, --output=PATH        write the profile to PATH instead of stdout\n"
    "  -f, --format=FORMAT      collapsed (default: \"frame;frame;frame COUNT\", no time),\n"
    "                           flamechart (Pyflame's: a timestamped stack per sample),\n"
    "                           speedscope (JSON), chrome (Trace Event JSON, for\n"
    "                           Perfetto), table (functions by time, like cProfile),\n"
    "                           pprof (gzipped profile.proto, for go tool pprof),\n"
    "                           svg (an interactive flame graph: hover, click to zoom,\n"
    "                           search with Ctrl-F); without -f, -o PATH ending in\n"
    "                           .svg picks svg, .json speedscope, .pb.gz pprof, .txt\n"
    "                           collapsed\n"
    "      --flamechart         the same as --format=flamechart\n"
    "      --sort=total|own     table: sort by time in the function and its callees\n"
    "                           (default, like cProfile's cumtime) or in it alone\n"
    "      --table-lines        table: a row per line, not per function\n"
    "      --flush-every=SECS   also write the profile so far every SECS (needs -o; SIGUSR1\n"
    "                           writes it at once); each write replaces PATH whole\n"
    "      --flush-reset        start a new profile after each write; with %t (time) or\n"
    "                           %n (number) in -o PATH, each goes to its own file\n"
    "      --top                a live full-screen view of the hottest functions, with\n"
    "                           a walk down the call tree (keys shown at the bottom;\n"
    "                           q quits and leaves the target running); until q\n"
    "                           unless -s is given\n"
    "      --delay=SECS         --top: seconds between refreshes (default 1)\n"
    "      --serve=ADDR         sample until stopped and serve pprof profiles over HTTP\n"
    "                           on ADDR (PORT, :PORT or IP:PORT; 127.0.0.1 unless an\n"
    "                           IP is given): GET /debug/pprof/profile?seconds=N, as\n"
    "                           Go's net/http/pprof, for Parca and Grafana Alloy\n"
    "      --quiet              no progress line on stderr (shown when it is a terminal)\n"
    "  -x, --exclude-idle       leave out idle samples: the \"(idle)\" line, and with\n"
    "                           --threads the threads the kernel says are sleeping\n"
    "      --threads            sample every Python thread, not only the GIL holder;\n"
    "                           stacks of sleeping threads end in an \"(idle)\" frame\n"
    "      --show-threads       add a root frame \"(thread TID NAME)\" to every stack\n"
    "      --subprocesses       profile the process and every descendant that is or\n"
    "                           becomes CPython (gunicorn and uWSGI workers,\n"
    "                           multiprocessing, a script that starts Python), each\n"
    "                           stack under a root frame \"(process PID COMMAND)\"\n"
    "  -d, --dump               print the stack of every thread once and exit\n"
    "      --native             show native (C) frames too, merged with the Python\n"
    "                           frames in call order: C extensions, libc, the kernel\n"
    "                           calls a thread waits in\n"
    "  -n, --no-line-numbers    frames are file:function, without the line\n"
    "      --abi=X.Y            read the interpreter as CPython X.Y (for builds whose\n"
    "                           version cannot be detected)\n"
    "      --verbose            say on stderr how the interpreter was found\n"
    "      --nonblocking        never stop the target: read each stack live, twice, and\n"
    "                           count it as failed (\"stack changed while read\") when\n"
    "                           the two reads differ; cannot be used with --native\n"
    "      --no-jitter          take the samples exactly every -r seconds, as Pyflame\n"
    "                           did; by default each is at a random instant of its\n"
    "                           interval, so periodic work cannot stay in step with -r\n"
    "      --no-realtime        sample at normal priority; by default pyflame runs at\n"
    "                           real-time priority 1 when permitted, so its samples\n"
    "                           are on time while the target computes\n"
    "      --stats              print pyflame's own costs on stderr at the end: time\n"
    "                           the target was stopped, CPU per sample, memory\n"
    "  -v, --version            print the version and exit\n"
    "  -h, --help               print this help and exit\n"
    "\n"
    "Examples:\n"
    "  pyflame -s 30 -r 0.001 -p 1234 > profile.txt\n"
    "  pyflame -o profile.txt -t python3 app.py --port 8000\n"
    "  pyflame -p 1234 | flamegraph.pl > profile.svg\n"
    "  pyflame --native --threads -s 10 -p 1234 > profile.txt\n";

const char *pf_cli_usage(void)
{
    return USAGE;
}

/* A finite number, all of the text. */
static bool parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_pid(const char *text, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v <= 0 || v > 0x3fffffff)
        return false;
    *out = (pid_t)v;
    return true;
}

enum { OPT_ABI = 256, OPT_VERBOSE, OPT_THREADS, OPT_SHOW_THREADS, OPT_STATS, OPT_NATIVE, OPT_JITTER, OPT_NO_JITTER,
       OPT_NONBLOCKING, OPT_NO_REALTIME, OPT_FLAMECHART, OPT_SORT, OPT_TABLE_LINES,
       OPT_FLUSH_EVERY, OPT_FLUSH_RESET, OPT_QUIET, OPT_TOP, OPT_DELAY, OPT_SERVE,
       OPT_SUBPROCESSES };

pf_err pf_cli_parse(int argc, char **argv, struct pf_options *out, struct pf_diag *diag)
{
    static const struct option LONG[] = {
        {"pid", required_argument, NULL, 'p'},
        {"trace", no_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},
        {"exclude-idle", no_argument, NULL, 'x'},
        {"no-line-numbers", no_argument, NULL, 'n'},
        {"abi", required_argument, NULL, OPT_ABI},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"show-threads", no_argument, NULL, OPT_SHOW_THREADS},
        {"subprocesses", no_argument, NULL, OPT_SUBPROCESSES},
        {"dump", no_argument, NULL, 'd'},
        {"stats", no_argument, NULL, OPT_STATS},
        {"jitter", no_argument, NULL, OPT_JITTER}, /* the default; kept for scripts */
        {"no-jitter", no_argument, NULL, OPT_NO_JITTER},
        {"native", no_argument, NULL, OPT_NATIVE},
        {"nonblocking", no_argument, NULL, OPT_NONBLOCKING},
        {"no-realtime", no_argument, NULL, OPT_NO_REALTIME},
        {"format", required_argument, NULL, 'f'},
        {"flamechart", no_argument, NULL, OPT_FLAMECHART},
        {"sort", required_argument, NULL, OPT_SORT},
        {"table-lines", no_argument, NULL, OPT_TABLE_LINES},
        {"flush-every", required_argument, NULL, OPT_FLUSH_EVERY},
        {"flush-reset", no_argument, NULL, OPT_FLUSH_RESET},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"top", no_argument, NULL, OPT_TOP},
        {"delay", required_argument, NULL, OPT_DELAY},
        {"serve", required_argument, NULL, OPT_SERVE},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pf_options o = {.seconds = 1.0, .rate = 0.01, .line_numbers = true, .delay = 1.0,
                         .jitter = true};
    bool seconds_given = false, trace = false;
    int c;

    optind = 1;
    opterr = 0;
    /* '+': stop at the first non-option, so -t's command keeps its own flags. */
    while (!trace && (c = getopt_long(argc, argv, "+:p:ts:r:o:f:xnvhd", LONG, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (!parse_pid(optarg, &o.pid))
                return pf_diag_set(diag, PF_ERR_USAGE, "-p: '%s' is not a process ID", optarg);
            break;
        case 't':
            trace = true;
            break;
        case 's':
            if (!parse_double(optarg, &o.seconds) || o.seconds < 0)
                return pf_diag_set(diag, PF_ERR_USAGE,
                                   "-s: '%s' is not a number of seconds (0 or more)", optarg);
            seconds_given = true;
            break;
        case 'r':
            if (!parse_double(optarg, &o.rate) || o.rate <= 0)
                return pf_diag_set(diag, PF_ERR_USAGE,
                                   "-r: '%s' is not a positive interval in seconds (e.g. 0.001)", optarg);
            if (o.rate < 1e-6)
                return pf_diag_set(diag, PF_ERR_USAGE, "-r: %s is below 1 microsecond", optarg);
            break;
        case 'o':
            if (!*optarg)
                return pf_diag_set(diag, PF_ERR_USAGE, "-o: empty path");
            o.output = optarg;
            break;
        case 'x': o.exclude_idle = true; break;
        case 'n': o.line_numbers = false; break;
        case 'v': o.version = true; break;
        case 'h': o.help = true; break;
        case OPT_ABI: o.abi = optarg; break;
        case OPT_VERBOSE: o.verbose = true; break;
        case OPT_THREADS: o.threads = true; break;
        case OPT_SHOW_THREADS: o.show_threads = true; break;
        case 'd': o.dump = true; break;
        case OPT_STATS: o.stats = true; break;
        case OPT_JITTER: o.jitter = true; break;
        case OPT_NO_JITTER: o.jitter = false; break;
        case OPT_NATIVE: o.native = true; break;
        case OPT_NONBLOCKING: o.nonblocking = true; break;
        case OPT_SUBPROCESSES: o.subprocesses = true; break;
        case OPT_NO_REALTIME: o.no_realtime = true; break;
        case 'f':
            if (!pf_writer_find(optarg))
                return pf_diag_set(diag, PF_ERR_USAGE, "-f: unknown format '%s' (one of %s)", optarg,
                                   pf_writer_names());
            if (o.format && strcmp(o.format, optarg) != 0)
                return pf_diag_set(diag, PF_ERR_USAGE, "two formats given: %s and %s", o.format, optarg);
            o.format = optarg;
            break;
        case OPT_FLAMECHART:
            /* Pyflame's flag, the same as --format=flamechart. */
            if (o.format && strcmp(o.format, "flamechart") != 0)
                return pf_diag_set(diag, PF_ERR_USAGE, "two formats given: %s and flamechart", o.format);
            o.format = "flamechart";
            break;
        case OPT_SORT:
            if (strcmp(optarg, "total") == 0)
                o.sort_own = false;
            else if (strcmp(optarg, "own") == 0)
                o.sort_own = true;
            else
                return pf_diag_set(diag, PF_ERR_USAGE, "--sort: '%s' is not total or own", optarg);
            break;
        case OPT_TABLE_LINES: o.table_lines = true; break;
        case OPT_FLUSH_EVERY:
            if (!parse_double(optarg, &o.flush_every) || o.flush_every <= 0)
                return pf_diag_set(diag, PF_ERR_USAGE,
                                   "--flush-every: '%s' is not a positive number of seconds", optarg);
            break;
        case OPT_FLUSH_RESET: o.flush_reset = true; break;
        case OPT_QUIET: o.quiet = true; break;
        case OPT_TOP: o.top = true; break;
        case OPT_SERVE: o.serve = optarg; break;
        case OPT_DELAY:
            if (!parse_double(optarg, &o.delay) || o.delay < 0.05)
                return pf_diag_set(diag, PF_ERR_USAGE, "--delay: '%s' is not a number of seconds (0.05 or more)",
                                   optarg);
            break;
        case ':':
            return pf_diag_set(diag, PF_ERR_USAGE, "option %s needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return pf_diag_set(diag, PF_ERR_USAGE, "unknown option -%c", optopt);
            return pf_diag_set(diag, PF_ERR_USAGE, "unknown option %s", argv[optind - 1]);
        }
    }
    if (o.help || o.version) {
        *out = o;
        return PF_OK;
    }
    if (o.serve && (o.output || o.format || o.flush_every > 0 || o.flush_reset || o.dump || o.top))
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--serve answers scrapes with pprof profiles and writes none: leave out -o, "
                           "-f, -d, --top and the flush options");
    if (o.top && (o.output || o.format || o.flush_every > 0 || o.flush_reset || o.dump))
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--top shows the profile live and writes none: leave out -o, -f, -d and "
                           "the flush options");
    if ((o.flush_every > 0 || o.flush_reset) && !o.output)
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--flush-every and --flush-reset write the profile to a file: give -o PATH");
    if (o.dump && (o.flush_every > 0 || o.flush_reset))
        return pf_diag_set(diag, PF_ERR_USAGE, "-d takes one snapshot: there is nothing to flush");
    if (o.native && o.nonblocking)
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--native needs to stop each thread to unwind its native stack; "
                           "it cannot be used with --nonblocking");
    if (o.dump && trace)
        return pf_diag_set(diag, PF_ERR_USAGE, "-d takes a running process (-p), not -t");
    if (o.subprocesses && o.top)
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--top shows one process; --subprocesses writes a profile of the "
                           "tree (-o) or serves it (--serve)");
    if ((o.top || o.serve) && !seconds_given)
        o.seconds = -1; /* until q, or a signal */
    if (trace) {
        if (optind >= argc)
            return pf_diag_set(diag, PF_ERR_USAGE, "-t needs a command to run");
        if (o.pid)
            return pf_diag_set(diag, PF_ERR_USAGE, "-p and -t cannot be used together");
        o.trace_argv = argv + optind;
        if (!seconds_given)
            o.seconds = -1;
    } else {
        if (optind < argc) {
            /* Pyflame once took the PID as a bare argument; still accepted. */
            if (o.pid || optind + 1 < argc || !parse_pid(argv[optind], &o.pid))
                return pf_diag_set(diag, PF_ERR_USAGE, "unexpected argument '%s'", argv[optind]);
            o.bare_pid = true;
        }
        if (!o.pid)
            return pf_diag_set(diag, PF_ERR_USAGE, "give a process with -p PID or a command with -t");
    }
    *out = o;
    return PF_OK;
}

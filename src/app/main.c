/* main: the only code that prints diagnostics, installs signal handlers and
 * decides the exit status. It wires the stages together:
 * attach/launch -> sample (read, decode, aggregate) -> detach -> write. */
#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyflame/profile/agg.h"
#include "pyflame/app/cli.h"
#include "pyflame/base/intern.h"
#include "pyflame/base/log.h"
#include "pyflame/target/mem.h"
#include "pyflame/output/output.h"
#include "pyflame/sample/priority.h"
#include "pyflame/target/proc.h"
#include "pyflame/target/procstat.h"
#include "pyflame/sample/ready.h"
#include "pyflame/sample/sampler.h"
#include "pyflame/output/serve.h"
#include "pyflame/app/top.h"
#include "pyflame/native/unwind.h"
#include "pyflame/output/writer.h"
#include "pyflame_config.h"

/* Set by SIGINT/SIGTERM, read by the sampler loop. */
static volatile sig_atomic_t g_stop;
/* Set by SIGUSR1: write the profile so far (between two ticks). */
static volatile sig_atomic_t g_flush;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void on_flush_signal(int sig)
{
    (void)sig;
    g_flush = 1;
}

static void log_to_stderr(enum pf_log_level level, const char *msg)
{
    (void)level;
    fprintf(stderr, "pyflame: %s\n", msg);
}

struct dump_ctx {
    FILE *out;
    const struct pf_intern *names;
    pf_err err;
};

static void dump_thread(void *ctx, const struct pf_thread_stack *t)
{
    struct dump_ctx *d = ctx;
    if (!d->err)
        d->err = pf_writer_dump_thread(d->out, d->names, t);
}

static void on_sigxcpu(int sig)
{
    (void)sig;
    pf_priority_on_sigxcpu();
}

static void restart_after_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static void install_signals(void)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a signal must cut the wait for the next tick short. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A closed output pipe (pyflame ... | head) must not kill us while the
     * target is attached; the write fails with EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    sa.sa_handler = on_flush_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_stop_signal;
    /* RLIMIT_RTTIME's warning: pyflame ran too long at real-time
     * priority without a pause; it goes back to time sharing. */
    sa.sa_handler = on_sigxcpu;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGXCPU, &sa, NULL);
    sa.sa_flags = 0;
    /* ptrace events arrive as SIGCHLD; the sampler waits for them. */
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, NULL);
}

static void print_summary(const struct pf_sampler_stats *st, const struct pf_agg *agg,
                          uint64_t earlier_stacks, const struct pf_options *o)
{
    uint64_t failed = pf_agg_failed(agg);
    double rate = st->elapsed > 0 ? (double)st->ticks / st->elapsed : 0;

    /* With --subprocesses each tick reads every CPython process of the
     * tree: one sample each. */
    fprintf(stderr, "pyflame: %llu %s in %.2f s (%.1f/s, requested %.1f/s): %llu with a stack, "
                    "%llu idle, %llu failed",
            (unsigned long long)st->ticks, o->subprocesses ? "ticks" : "samples", st->elapsed, rate,
            1.0 / o->rate,
            (unsigned long long)(pf_agg_stack_samples(agg) + earlier_stacks),
            (unsigned long long)pf_agg_idle(agg),
            (unsigned long long)failed);
    if (failed) {
        const char *sep = " (";
        for (int r = 0; r < PF_FAIL__COUNT; r++) {
            uint64_t n = pf_agg_failed_by(agg, (enum pf_fail_reason)r);
            if (n) {
                fprintf(stderr, "%s%llu %s", sep, (unsigned long long)n, pf_fail_reason_name((enum pf_fail_reason)r));
                sep = ", ";
            }
        }
        fputc(')', stderr);
    }
    if (st->gil_released || st->gil_idle || st->gil_retried)
        fprintf(stderr, "; the GIL holder released the GIL before it was stopped %llu times "
                        "(%llu read as it was at the look, %llu idle, %llu the next holder read)",
                (unsigned long long)(st->gil_released + st->gil_idle + st->gil_retried),
                (unsigned long long)st->gil_released, (unsigned long long)st->gil_idle,
                (unsigned long long)st->gil_retried);
    if (st->slow_stops)
        fprintf(stderr, "; %llu stops not waited for past an interval (the thread was waiting "
                        "for a CPU; read as it was at the look)",
                (unsigned long long)st->slow_stops);
    if (st->late)
        fprintf(stderr, "; %llu samples taken late (more than one interval after their time)",
                (unsigned long long)st->late);
    if (st->thinned)
        fprintf(stderr, "; rate lowered %llu times, to one sample every %g s (%llu ticks dropped)",
                (unsigned long long)st->thinned, st->interval, (unsigned long long)st->dropped);
    if (st->before_ready)
        fprintf(stderr, "; %llu ticks before the interpreter was ready", (unsigned long long)st->before_ready);
    if (st->stopped_samples)
        fprintf(stderr, "; target stopped %.0f us per sample (median, p99 %.0f us)",
                st->stop_ns_median / 1e3, st->stop_ns_p99 / 1e3);
    if (o->native && (st->native_mismatch || st->native_incomplete))
        fprintf(stderr, "; %llu stacks without native frames (%llu native unwind incomplete, "
                        "%llu native merge mismatch)",
                (unsigned long long)(st->native_mismatch + st->native_incomplete),
                (unsigned long long)st->native_incomplete, (unsigned long long)st->native_mismatch);
    if (o->subprocesses) {
        const struct pf_procset_counts *c = &st->processes;
        fprintf(stderr, "; processes: %llu seen, %llu profiled, %llu skipped (CPython that cannot "
                        "be read), %llu not CPython",
                (unsigned long long)c->seen, (unsigned long long)c->profiled,
                (unsigned long long)c->skipped,
                (unsigned long long)(c->seen - c->profiled - c->skipped));
    }
    fputc('\n', stderr);
}

/* Peak resident memory of this process image, from /proc/self/status
 * (VmHWM; unlike getrusage, it does not include what the parent had
 * before the exec). */
static long peak_rss_kib(void)
{
    long kib;
    return pf_procstatus_value(0, "VmHWM", &kib) ? kib : -1;
}

/* --stats: what profiling cost, for scripts/bench and the curious. */
static void print_stats(const struct pf_sampler_stats *st, enum pf_priority ran_at)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    /* A sample: a thread read (--threads), else a process read at a tick. */
    uint64_t samples = st->thread_samples ? st->thread_samples : st->process_ticks;
    fprintf(stderr,
            "pyflame: stats: ticks=%llu samples=%llu late=%llu thinned=%llu dropped=%llu "
            "interval_s=%g elapsed_s=%.3f stopped_samples=%llu stop_us_median=%.1f "
            "stop_us_p99=%.1f stop_us_max=%.1f cpu_s=%.3f cpu_us_per_sample=%.2f "
            "reads_per_sample=%.2f prefetch_hit_ratio=%.3f gil_released=%llu gil_idle=%llu "
            "gil_retried=%llu slow_stops=%llu reread=%llu "
            "peak_rss_kib=%ld scheduling=%s",
            (unsigned long long)st->ticks, (unsigned long long)samples,
            (unsigned long long)st->late, (unsigned long long)st->thinned,
            (unsigned long long)st->dropped, st->interval, st->elapsed,
            (unsigned long long)st->stopped_samples, st->stop_ns_median / 1e3, st->stop_ns_p99 / 1e3,
            st->stop_ns_max / 1e3, cpu, samples ? cpu * 1e6 / (double)samples : 0,
            samples ? (double)st->reads / (double)samples : 0,
            st->prefetch_hits + st->prefetch_misses
                ? (double)st->prefetch_hits / (double)(st->prefetch_hits + st->prefetch_misses)
                : 0,
            (unsigned long long)st->gil_released, (unsigned long long)st->gil_idle,
            (unsigned long long)st->gil_retried, (unsigned long long)st->slow_stops,
            (unsigned long long)st->reread, peak_rss_kib(), pf_priority_name(ran_at));
    if (st->native_samples)
        /* --native: wall time of the native part alone, per native sample:
         * unwinding (in the stop window), then naming and merging. */
        fprintf(stderr,
                " native_samples=%llu native_frames_per_sample=%.1f native_unwind_us=%.2f "
                "native_merge_us=%.2f",
                (unsigned long long)st->native_samples,
                (double)st->native_frames / (double)st->native_samples,
                (double)st->native_unwind_ns / 1e3 / (double)st->native_samples,
                (double)st->native_merge_ns / 1e3 / (double)st->native_samples);
    fputc('\n', stderr);
}

/* What main does between two ticks, while the target runs: flushes
 * (SIGUSR1, --flush-every), the progress line, --top's screen and
 * --serve's scrapes (design.md, "One sample, end to end"). */
struct live {
    const struct pf_options *o;
    const struct pf_writer *writer;
    struct pf_output *output;
    struct pf_agg *agg;
    const struct pf_intern *names;
    struct pf_write_opts wo;
    bool progress;        /* stderr is a terminal and not --quiet */
    bool progress_shown;  /* a line is on screen: clear it before other output */
    double next_progress, next_flush;
    double window_start;  /* elapsed seconds at the start of this window */
    int64_t window_unix;  /* ... as Unix time */
    int64_t window_unix_ns; /* ... in ns, once a window was reset (0 before) */
    unsigned window_no;
    struct pf_top *top;     /* --top */
    struct pf_serve *serve; /* --serve */
    /* Samples of the windows written and reset (--flush-reset), for the
     * summary of the whole run. */
    uint64_t done_stacks, done_idle, done_failed[PF_FAIL__COUNT];
};

static int64_t unix_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t unix_now(void)
{
    return unix_now_ns() / 1000000000;
}

/* When the window being written started, for formats that say (pprof's
 * time_nanos): the first window from the schedule's own clock (its first
 * tick), later ones from when the last was reset. */
static int64_t window_start_ns(const struct live *l, double elapsed)
{
    return l->window_unix_ns ? l->window_unix_ns : unix_now_ns() - (int64_t)(elapsed * 1e9);
}

/* A terminal that takes no output now (Ctrl-S, a stalled ssh) must not
 * block the sampling thread: a target thread waiting on pyflame (a signal
 * to pass on) would wait with it. The progress line is skipped instead. */
static bool writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

static void clear_progress(struct live *l)
{
    if (l->progress_shown) {
        fputs("\r\033[K", stderr);
        l->progress_shown = false;
    }
}

/* Write the window so far; with --flush-reset start the next one. */
static void flush(struct live *l, const struct pf_sampler_progress *p)
{
    struct pf_diag diag = {{0}};
    pf_priority_pause();
    l->wo.interval = p->interval;
    l->wo.duration = p->elapsed - l->window_start;
    l->wo.start_unix_ns = window_start_ns(l, p->elapsed);
    if (pf_output_write(l->output, l->writer, l->agg, l->names, &l->wo, l->window_unix, l->window_no,
                        &diag)) {
        clear_progress(l);
        fprintf(stderr, "pyflame: %s; sampling goes on\n", diag.msg);
        pf_priority_resume();
        return;
    }
    if (l->o->flush_reset) {
        l->done_stacks += pf_agg_stack_samples(l->agg);
        l->done_idle += pf_agg_idle(l->agg);
        for (int r = 0; r < PF_FAIL__COUNT; r++)
            l->done_failed[r] += pf_agg_failed_by(l->agg, (enum pf_fail_reason)r);
        pf_agg_reset(l->agg);
        l->window_start = p->elapsed;
        l->window_unix_ns = unix_now_ns();
        l->window_unix = l->window_unix_ns / 1000000000;
        l->window_no++;
    }
    pf_priority_resume();
}

static void between_ticks(void *ctx, const struct pf_sampler_progress *p)
{
    struct live *l = ctx;
    if (l->top) {
        if (pf_top_update(l->top, p))
            g_stop = 1; /* q: detach and end */
        return;
    }
    if (l->serve) {
        bool work = pf_serve_due(l->serve);
        if (work)
            pf_priority_pause();
        pf_serve_poll(l->serve, l->agg, l->names, p->interval);
        if (work)
            pf_priority_resume();
        return;
    }
    if (g_flush) {
        g_flush = 0;
        if (l->o->output)
            flush(l, p);
    }
    if (l->o->flush_every > 0 && p->elapsed >= l->next_flush) {
        flush(l, p);
        l->next_flush = p->elapsed + l->o->flush_every;
    }
    if (l->progress && p->elapsed >= l->next_progress && writable(STDERR_FILENO)) {
        /* Shares of this window; samples of the whole run. */
        uint64_t window = pf_agg_stack_samples(l->agg) + pf_agg_idle(l->agg) + pf_agg_failed(l->agg);
        uint64_t samples = window + l->done_stacks + l->done_idle;
        for (int r = 0; r < PF_FAIL__COUNT; r++)
            samples += l->done_failed[r];
        double all = window ? (double)window : 1;
        char length[32] = "";
        if (l->o->seconds > 0)
            snprintf(length, sizeof(length), "/%.0f", l->o->seconds);
        fprintf(stderr, "\r\033[Kpyflame: %.1f%s s, %llu samples (%.0f/s), %.1f%% idle, %.1f%% failed -> %s",
                p->elapsed, length, (unsigned long long)samples,
                p->elapsed > 0 ? (double)p->ticks / p->elapsed : 0, 100.0 * (double)pf_agg_idle(l->agg) / all,
                100.0 * (double)pf_agg_failed(l->agg) / all,
                l->o->output ? pf_output_last_path(l->output) : "stdout at the end");
        fflush(stderr);
        l->progress_shown = true;
        l->next_progress = p->elapsed + 0.25;
    }
}

int main(int argc, char **argv)
{
    struct pf_options o;
    struct pf_diag diag = {{0}};
    struct pf_proc *proc = NULL;
    struct pf_mem mem = {0};
    struct pf_intern *names = NULL;
    struct pf_agg *agg = NULL;
    struct pf_sampler *sampler = NULL;
    /* Static: a discovered target is large, and never copied (interp.h). */
    static struct pf_target target;
    FILE *out = stdout;  /* -d writes here as it reads */
    struct pf_output *output = NULL;
    struct live live = {0};
    int status = 1;
    pf_err err;

    if ((err = pf_cli_parse(argc, argv, &o, &diag))) {
        fprintf(stderr, "pyflame: %s\nTry 'pyflame --help' for more information.\n", diag.msg);
        return 2;
    }
    if (o.help) {
        fputs(pf_cli_usage(), stdout);
        return 0;
    }
    if (o.version) {
        printf("pyflame %s\n", PYFLAME_VERSION);
        return 0;
    }
    if (o.bare_pid)
        fprintf(stderr, "pyflame: warning: a bare PID is deprecated; use -p %d\n", (int)o.pid);
    pf_log_set_sink(log_to_stderr, o.verbose ? PF_LOG_INFO : PF_LOG_WARN);
    if (o.serve && pf_serve_check_addr(o.serve, &diag)) {
        fprintf(stderr, "pyflame: %s\n", diag.msg);
        return 2;
    }
    if (o.top && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
        fprintf(stderr, "pyflame: --top draws on a terminal: stdin and stdout must be one "
                        "(to record to a file or a pipe, leave --top out)\n");
        return 2;
    }
    if (o.native && !pf_unwind_available()) {
        fprintf(stderr, "pyflame: --native: this pyflame was built without native stack support "
                        "(libunwind); install libunwind-dev and rebuild\n");
        return 1;
    }
    if (o.dump && o.output && !(out = fopen(o.output, "we"))) {
        fprintf(stderr, "pyflame: cannot write %s: %s\n", o.output, strerror(errno));
        return 1;
    }
    /* A profile is written whole, by rename (output.h); check the path now,
     * before the target is touched. */
    if (!o.dump && pf_output_open(o.output, &output, &diag)) {
        fprintf(stderr, "pyflame: %s\n", diag.msg);
        return 1;
    }
    install_signals();

    if (o.trace_argv)
        err = pf_proc_launch(o.trace_argv, o.output == NULL, o.subprocesses, &diag, &proc);
    else
        err = pf_proc_attach(o.pid, o.subprocesses, &diag, &proc);
    if (err) {
        fprintf(stderr, "pyflame: %s\n", diag.msg[0] ? diag.msg : pf_strerror(err));
        goto out;
    }
    /* Find the interpreter before anything else is set up: in launch mode
     * it may take a few execs (env, a shell, a pyenv shim) to appear. */
    struct pf_ready_opts ro = {
        .wait_for_python = o.trace_argv != NULL,
        .timeout = 2.0,
        .poll = o.rate > 0 ? o.rate : 0.001,
        .abi = o.abi,
    };
    /* With --subprocesses the sampler looks at every process of the tree
     * itself, as it comes (procset.h). */
    if (!o.subprocesses && (err = pf_ready_wait(proc, &ro, &g_stop, &target, &diag))) {
        pf_proc_detach(proc);
        proc = NULL;
        fprintf(stderr, "pyflame: %s\n", diag.msg[0] ? diag.msg : pf_strerror(err));
        goto out;
    }
    if ((!o.subprocesses && (err = pf_mem_open_pid(pf_proc_pid(proc), &mem))) ||
        (err = pf_intern_new(&names)) ||
        (err = pf_agg_new(&agg))) {
        fprintf(stderr, "pyflame: %s\n", pf_strerror(err));
        goto out;
    }
    /* The format: -f, else -o's extension, else collapsed (cli.c checked
     * the name). */
    const struct pf_writer *writer = o.format ? pf_writer_find(o.format) : NULL;
    if (!writer && o.output)
        writer = pf_writer_for_path(o.output);
    if (!writer)
        writer = &pf_writer_collapsed;
    if ((writer->needs_timeline || o.serve) && (err = pf_agg_keep_timeline(agg))) {
        fprintf(stderr, "pyflame: %s\n", pf_strerror(err));
        goto out;
    }
    /* Timeline instants are monotonic; formats print wall-clock time. */
    struct timespec rt, mt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    int64_t mono_to_unix = ((int64_t)rt.tv_sec - (int64_t)mt.tv_sec) * 1000000000 +
                           ((int64_t)rt.tv_nsec - (int64_t)mt.tv_nsec);
    char title[256];
    if (o.trace_argv) {
        size_t len = 0;
        title[0] = '\0';
        for (char **a = o.trace_argv; *a && len + 2 < sizeof(title); a++)
            len += (size_t)snprintf(title + len, sizeof(title) - len, "%s%s", len ? " " : "", *a);
    } else {
        /* "pid 1234: python3 app.py --port 8000", from /proc: what a reader
         * of the profile (or --top's header) needs to know what it was. */
        char cmd[200];
        pf_procstat_cmdline(o.pid, cmd, sizeof(cmd));
        snprintf(title, sizeof(title), cmd[0] ? "pid %d: %s" : "pid %d", (int)o.pid, cmd);
    }
    live = (struct live){
        .o = &o,
        .writer = writer,
        .output = output,
        .agg = agg,
        .names = names,
        .wo = {
            .include_idle = !o.exclude_idle,
            .interval = o.rate,
            .mono_to_unix_ns = mono_to_unix,
            .title = title,
            .sort = o.sort_own ? PF_SORT_OWN : PF_SORT_TOTAL,
            .table_lines = o.table_lines,
        },
        .progress = !o.quiet && !o.dump && !o.top && !o.serve && isatty(STDERR_FILENO),
        .next_flush = o.flush_every,
        .window_unix = unix_now(),
    };
    struct pf_sampler_opts so = {
        .interval = o.rate,
        .duration = o.seconds,
        .line_numbers = o.line_numbers,
        .all_threads = o.threads,
        .skip_idle = o.exclude_idle,
        /* --top --threads: the thread frames let 't' list threads first. */
        .thread_roots = o.show_threads || (o.top && o.threads),
        .jitter = o.jitter,
        .native = o.native,
        .nonblocking = o.nonblocking,
        .subprocesses = o.subprocesses,
        .launched = o.trace_argv != NULL,
        .abi = o.abi,
        .between_ticks = between_ticks,
        .between_ticks_ctx = &live,
    };
    struct dump_ctx dump = {.out = out, .names = names};
    if (o.dump) {
        so.dump = dump_thread;
        so.dump_ctx = &dump;
    }
    if ((err = pf_sampler_new(proc, o.subprocesses ? NULL : &mem, o.subprocesses ? NULL : &target,
                              names, agg, &so, &diag, &sampler))) {
        fprintf(stderr, "pyflame: %s\n", diag.msg[0] ? diag.msg : pf_strerror(err));
        goto out;
    }
    if (o.top && (err = pf_top_start(agg, names, title, o.rate, o.delay, o.threads, &live.top, &diag))) {
        fprintf(stderr, "pyflame: %s\n", diag.msg);
        goto out;
    }
    if (o.serve) {
        if ((err = pf_serve_start(o.serve, &live.wo, &live.serve, &diag))) {
            fprintf(stderr, "pyflame: %s\n", diag.msg);
            goto out;
        }
        fprintf(stderr, "pyflame: serving pprof profiles at %s/debug/pprof/profile?seconds=N\n",
                pf_serve_url(live.serve));
        fflush(stderr);
    }
    pf_priority_raise(!o.no_realtime);
    err = pf_sampler_run(sampler, &g_stop);
    enum pf_priority ran_at = pf_priority_current();
    pf_priority_lower();
    const struct pf_sampler_stats *st = pf_sampler_stats(sampler);

    /* Let the target go before anything else: writing can take a while. */
    int wstatus = 0;
    bool exited = pf_proc_exit_status(proc, &wstatus);
    pf_proc_detach(proc);
    proc = NULL;
    /* Only now, the target let go: giving the terminal back, or waiting
     * for the HTTP connections to close, may take a while, and a thread of
     * the target must not wait on pyflame meanwhile (a signal to pass on). */
    pf_top_end(live.top);
    live.top = NULL;
    pf_serve_stop(live.serve);
    live.serve = NULL;
    clear_progress(&live);
    /* From here a signal has nothing left to cut short: let an interrupted
     * write go on instead of failing with EINTR (a second Ctrl-C, or the
     * SIGTERM of a supervisor, while the profile is written). */
    restart_after_signals();

    if (err == PF_ERR_NOTPYTHON) {
        fprintf(stderr, "pyflame: no process of the tree of %d is CPython (%llu processes looked "
                        "at)\n",
                (int)o.pid, (unsigned long long)st->processes.seen);
        goto out;
    }
    if (err) {
        fprintf(stderr, "pyflame: %s\n", pf_strerror(err));
        goto out;
    }
    if (o.subprocesses && st->processes.profiled == 0) {
        fprintf(stderr, "pyflame: %s before a CPython interpreter was ready in any of its "
                        "processes (%llu looked at)\n",
                o.trace_argv ? "the command ended" : "the process tree ended",
                (unsigned long long)st->processes.seen);
        goto out;
    }
    if (st->end == PF_ERR_EXEC)
        fprintf(stderr, "pyflame: the process executed a new program; stopped profiling\n");
    if (o.dump) {
        if (dump.err || fflush(out) != 0) {
            fprintf(stderr, "pyflame: writing the dump failed\n");
            goto out;
        }
        status = 0;
        goto out;
    }
    if (o.top || o.serve) {
        /* The view, or the scrapes, were the output. */
        print_summary(st, agg, 0, &o);
        if (o.stats)
            print_stats(st, ran_at);
        status = 0;
        goto out;
    }
    live.wo.interval = st->interval;
    live.wo.duration = st->elapsed - live.window_start;
    live.wo.start_unix_ns = window_start_ns(&live, st->elapsed);
    if ((err = pf_output_write(output, writer, agg, names, &live.wo, live.window_unix, live.window_no,
                               &diag))) {
        fprintf(stderr, "pyflame: %s\n", diag.msg);
        goto out;
    }
    /* The summary is of the whole run: add the windows written before. */
    pf_agg_add_idle(agg, live.done_idle);
    for (int r = 0; r < PF_FAIL__COUNT; r++)
        pf_agg_add_failed(agg, (enum pf_fail_reason)r, live.done_failed[r]);
    print_summary(st, agg, live.done_stacks, &o);
    if (o.stats)
        print_stats(st, ran_at);
    status = 0;
    if (o.trace_argv && exited) {
        /* With -t, exit as the command did, like time(1) does. */
        if (WIFEXITED(wstatus))
            status = WEXITSTATUS(wstatus);
        else if (WIFSIGNALED(wstatus))
            status = 128 + WTERMSIG(wstatus);
    } else if (!o.trace_argv && st->end == PF_ERR_EXITED) {
        fprintf(stderr, "pyflame: process %d exited\n", (int)o.pid);
    }
out:
    pf_top_end(live.top);
    pf_serve_stop(live.serve);
    pf_sampler_free(sampler);
    pf_proc_detach(proc);
    pf_mem_close(&mem);
    pf_agg_free(agg);
    pf_intern_free(names);
    pf_output_free(output);
    if (out != stdout && out && fclose(out) != 0 && status == 0) {
        fprintf(stderr, "pyflame: cannot write %s: %s\n", o.output, strerror(errno));
        status = 1;
    }
    return status;
}

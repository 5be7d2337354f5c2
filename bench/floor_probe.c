/* floor_probe: the least a ptrace-stopping sampler can do per tick, measured.
 *
 *   floor_probe -p PID [-r INTERVAL] [-s SECONDS] [--pieces N] [--bytes B]
 *               [--stride S] [--addr HEX] [--threads | --running] [--gap G]
 *
 * Seizes every thread of PID (PTRACE_SEIZE with PTRACE_O_TRACECLONE only:
 * never PTRACE_ATTACH, never PTRACE_O_EXITKILL). At each tick, on absolute
 * deadlines start + k * INTERVAL (clock_nanosleep, TIMER_ABSTIME,
 * CLOCK_MONOTONIC), it stops one thread (PTRACE_INTERRUPT, waitpid for the
 * stop), copies N pieces of B bytes out of the target with one
 * process_vm_readv, and resumes it (PTRACE_CONT, with any signal that
 * arrived meanwhile). That is pyflame's stop window without any of
 * pyflame's work: no interpreter, no frames, no decoding, no aggregation.
 *
 * Which thread: by default the thread-group leader (PID), every tick.
 * --running: one thread that /proc says is running (round-robin); none
 * running, the tick stops nothing (as pyflame in GIL mode when nobody holds
 * the GIL). --threads: every thread per tick, one after the other, each
 * stopped only for its own read; a thread that /proc says is asleep is read
 * without a stop and the read kept if its schedstat run count did not change
 * meanwhile (else it is stopped and read again): pyflame's --threads rule.
 *
 * The schedule is pyflame's: a tick whose time has passed is skipped, and
 * after a tick that kept threads stopped for d the next waits at least G*d
 * (--gap, default 3, as pyflame; 0 turns it off). Between ticks, events of
 * the target (a signal to re-inject, a new thread, an exit) are handled at
 * least every 10 ms; SIGCHLD stays blocked, so no signal handler runs in
 * the stop window.
 *
 * It ends when SECONDS are over, on SIGINT or SIGTERM, or when the target
 * exits; then every thread is stopped once more and detached with the
 * signal it was about to receive, so the target runs on as before. Last, one
 * line on stdout, shaped like pyflame's --stats line:
 *
 *   floor: ticks=... samples=... stopped_samples=... skipped=... throttled=...
 *   elapsed_s=... cpu_s=... cpu_us_per_tick=... cpu_us_per_sample=...
 *   stop_us_median=... stop_us_p99=... stop_us_max=... read_fail=...
 *
 * stop = from PTRACE_INTERRUPT to the return of PTRACE_CONT, per stopped
 * thread; median and p99 from 1 us buckets (bucket middle), as pyflame.
 * samples = thread reads (= ticks without --threads, minus idle ticks of
 * --running); cpu_s = user + system time of this whole process.
 *
 * Built by scripts/bench: cc -O2 -std=c11 -Wall -Wextra. Not part of pyflame.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 10000 /* 1 us buckets up to 10 ms, then one overflow bucket */
#define SPIN_POLLS 64 /* non-blocking waitpid calls before a blocking one, as pyflame */
#define MAX_PIECES 1024
#define MAX_NAP_NS 10000000u /* target events wait at most 10 ms between ticks */

struct task {
    pid_t tid;
    bool interrupt_sent; /* a PTRACE_INTERRUPT whose stop we have not seen */
    bool group_stop;     /* in a job-control stop, held with PTRACE_LISTEN */
    int pending_sig;     /* signal-delivery stop held: the signal to re-inject */
    int stat_fd, schedstat_fd;
};

enum outcome { RUNNING, HELD, GONE };

static pid_t pid;
static struct task *tasks;
static size_t ntasks, cap_tasks;
static bool gone; /* the thread-group leader exited: the process is over */
static volatile sig_atomic_t stop_flag;

static uint64_t hist[HIST_US + 1];
static uint64_t stopped_samples, stop_ns_max, tick_stop_ns;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct task *find(pid_t tid)
{
    for (size_t i = 0; i < ntasks; i++)
        if (tasks[i].tid == tid)
            return &tasks[i];
    return NULL;
}

static struct task *add(pid_t tid)
{
    struct task *t = find(tid);
    if (t)
        return t;
    if (ntasks == cap_tasks) {
        size_t cap = cap_tasks ? 2 * cap_tasks : 64;
        struct task *n = realloc(tasks, cap * sizeof(*n));
        if (!n)
            return NULL;
        tasks = n;
        cap_tasks = cap;
    }
    tasks[ntasks] = (struct task){.tid = tid, .stat_fd = -1, .schedstat_fd = -1};
    return &tasks[ntasks++];
}

static void drop(pid_t tid)
{
    struct task *t = find(tid);
    if (!t)
        return;
    if (t->stat_fd >= 0)
        close(t->stat_fd);
    if (t->schedstat_fd >= 0)
        close(t->schedstat_fd);
    *t = tasks[--ntasks];
}

static bool is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* One wait status. With want_stop, a stop of the thread is kept (HELD) for
 * the caller; otherwise every stop is resumed as the target would have
 * gone on without us. */
static enum outcome handle(pid_t tid, int status, bool want_stop)
{
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        drop(tid);
        if (tid == pid)
            gone = true;
        return GONE;
    }
    if (!WIFSTOPPED(status))
        return RUNNING;
    int sig = WSTOPSIG(status), event = status >> 16;
    struct task *t = find(tid);
    if (!t && !(t = add(tid))) {
        /* a new thread, and no memory to follow it: let it go on */
        ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)(event == 0 ? sig : 0));
        return RUNNING;
    }
    switch (event) {
    case PTRACE_EVENT_STOP:
        if (is_stop_signal(sig)) {
            /* Job control stopped the process: it stays stopped until
             * SIGCONT, which PTRACE_LISTEN lets through. */
            t->group_stop = true;
            if (want_stop)
                return HELD;
            ptrace(PTRACE_LISTEN, tid, 0, 0);
            return RUNNING;
        }
        /* SIGTRAP: our PTRACE_INTERRUPT, a new thread's first stop, or
         * the end of a job-control stop. */
        t->group_stop = false;
        if (t->interrupt_sent) {
            t->interrupt_sent = false;
            if (want_stop)
                return HELD;
        }
        ptrace(PTRACE_CONT, tid, 0, 0);
        return RUNNING;
    case PTRACE_EVENT_CLONE: {
        unsigned long child = 0;
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child)
            add((pid_t)child); /* may move tasks[]: t is stale after this */
        if (want_stop)
            return HELD;
        ptrace(PTRACE_CONT, tid, 0, 0);
        return RUNNING;
    }
    case 0:
        /* Signal-delivery stop: the signal is the target's, re-injected
         * when the thread resumes (the original siginfo is kept). */
        if (want_stop) {
            t->pending_sig = sig;
            return HELD;
        }
        ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)sig);
        return RUNNING;
    default:
        ptrace(PTRACE_CONT, tid, 0, 0);
        return RUNNING;
    }
}

static void drain(void)
{
    for (;;) {
        int status;
        pid_t r = waitpid(-1, &status, WNOHANG | __WALL);
        if (r <= 0)
            return;
        handle(r, status, false);
    }
}

/* Stop one thread; true when it is held in a ptrace-stop. */
static bool stop_thread(pid_t tid)
{
    struct task *t = find(tid);
    int status;
    if (!t)
        return false;
    if (t->group_stop)
        return true; /* stopped by job control already */
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
        drain();
        return false;
    }
    t->interrupt_sent = true;
    for (int spin = 0; spin < SPIN_POLLS; spin++) {
        pid_t r = waitpid(tid, &status, WNOHANG | __WALL);
        if (r == tid) {
            enum outcome o = handle(tid, status, true);
            if (o == HELD)
                return true;
            if (o == GONE || !find(tid))
                return false;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    for (;;) {
        /* Any thread: a zombie leader reports only once the other threads
         * are reaped, and those are ours to reap. */
        pid_t r = waitpid(-1, &status, __WALL);
        if (r < 0) {
            if (errno == EINTR)
                continue; /* never leave with the stop pending */
            drop(tid);
            return false;
        }
        if (r != tid) {
            handle(r, status, false);
            if (!find(tid))
                return false;
            continue;
        }
        enum outcome o = handle(tid, status, true);
        if (o == HELD)
            return true;
        if (o == GONE || !find(tid))
            return false;
    }
}

static void resume_thread(pid_t tid)
{
    struct task *t = find(tid);
    if (!t)
        return;
    if (t->group_stop) {
        ptrace(PTRACE_LISTEN, tid, 0, 0);
        return;
    }
    int sig = t->pending_sig;
    t->pending_sig = 0;
    ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)sig);
}

static void detach_all(void)
{
    /* PTRACE_DETACH needs a ptrace-stop: stop each thread, then detach it
     * with the signal it was about to receive. New threads may appear
     * meanwhile (clone events), hence the rounds. */
    for (int round = 0; ntasks > 0 && round < 100000; round++) {
        pid_t tid = tasks[ntasks - 1].tid;
        struct task *t = &tasks[ntasks - 1];
        /* In a LISTEN (job-control stop): interrupt it to get a
         * ptrace-stop; it stays in its job-control stop after the detach. */
        t->group_stop = false;
        if (stop_thread(tid)) {
            t = find(tid);
            int sig = t ? t->pending_sig : 0;
            ptrace(PTRACE_DETACH, tid, 0, (void *)(intptr_t)sig);
        }
        drop(tid);
        drain();
    }
}

static int seize_all(void)
{
    char path[64];
    bool added = true;
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(intptr_t)PTRACE_O_TRACECLONE) != 0) {
        fprintf(stderr, "floor_probe: ptrace(PTRACE_SEIZE, %d): %s\n", (int)pid, strerror(errno));
        return -1;
    }
    if (!add(pid))
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    for (int round = 0; added && round < 100; round++) {
        DIR *d = opendir(path);
        struct dirent *de;
        added = false;
        if (!d)
            return -1;
        while ((de = readdir(d))) {
            pid_t tid = (pid_t)atoi(de->d_name);
            if (tid <= 0 || find(tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(intptr_t)PTRACE_O_TRACECLONE) != 0)
                continue; /* exited meanwhile */
            if (!add(tid)) {
                closedir(d);
                return -1;
            }
            added = true;
        }
        closedir(d);
    }
    return 0;
}

/* pread of /proc/PID/task/TID/NAME through a cached descriptor. */
static bool task_file(struct task *t, int *fd, const char *name, char *buf, size_t cap)
{
    if (*fd < 0) {
        char path[80];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)t->tid, name);
        if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return false;
    }
    ssize_t n = pread(*fd, buf, cap - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

static char thread_state(struct task *t)
{
    char buf[512];
    if (!task_file(t, &t->stat_fd, "stat", buf, sizeof(buf)))
        return '?';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

static bool thread_runs(struct task *t, unsigned long long *runs)
{
    char buf[128];
    unsigned long long run_ns, wait_ns;
    return task_file(t, &t->schedstat_fd, "schedstat", buf, sizeof(buf)) &&
           sscanf(buf, "%llu %llu %llu", &run_ns, &wait_ns, runs) == 3;
}

/* The read of one sample. */
static struct iovec local_iov[MAX_PIECES], remote_iov[MAX_PIECES];
static int npieces = 30;
static size_t piece_bytes = 64;
static uint64_t read_fail;

static void read_pieces(void)
{
    ssize_t r = process_vm_readv(pid, local_iov, (unsigned long)npieces, remote_iov,
                                 (unsigned long)npieces, 0);
    if (r != (ssize_t)(piece_bytes * (size_t)npieces))
        read_fail++;
}

static void record_stop(uint64_t ns)
{
    uint64_t us = ns / 1000;
    hist[us < HIST_US ? us : HIST_US]++;
    stopped_samples++;
    tick_stop_ns += ns;
    if (ns > stop_ns_max)
        stop_ns_max = ns;
}

static uint64_t percentile(double q)
{
    uint64_t want = (uint64_t)(q * (double)stopped_samples), seen = 0;
    for (size_t i = 0; i <= HIST_US; i++) {
        seen += hist[i];
        if (seen > want)
            return (uint64_t)i * 1000 + 500;
    }
    return 0;
}

/* Stop, read, resume one thread; false if it could not be stopped. */
static bool stopped_read(pid_t tid)
{
    uint64_t t0 = now_ns();
    if (!stop_thread(tid))
        return false;
    read_pieces();
    resume_thread(tid);
    record_stop(now_ns() - t0);
    return true;
}

/* The first rw-p mapping with room for the pieces: the interpreter's data,
 * mapped for as long as the process lives. */
static uint64_t default_addr(size_t need)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    uint64_t found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long long lo, hi;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 && strcmp(perms, "rw-p") == 0 &&
            hi - lo >= need)
            found = lo;
    }
    fclose(f);
    return found;
}

_Noreturn static void usage(void)
{
    fprintf(stderr,
            "usage: floor_probe -p PID [-r INTERVAL] [-s SECONDS] [--pieces N] [--bytes B]\n"
            "                   [--stride S] [--addr HEX] [--threads | --running] [--gap G]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double interval = 0.001, seconds = 10;
    uint64_t addr = 0, gap = 3;
    size_t stride = 0;
    bool all_threads = false, running_only = false;
    enum { O_PIECES = 256, O_BYTES, O_STRIDE, O_ADDR, O_THREADS, O_RUNNING, O_GAP };
    static const struct option longopts[] = {{"pieces", required_argument, 0, O_PIECES},
                                             {"bytes", required_argument, 0, O_BYTES},
                                             {"stride", required_argument, 0, O_STRIDE},
                                             {"addr", required_argument, 0, O_ADDR},
                                             {"threads", no_argument, 0, O_THREADS},
                                             {"running", no_argument, 0, O_RUNNING},
                                             {"gap", required_argument, 0, O_GAP},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:r:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            pid = (pid_t)atoi(optarg);
            break;
        case 'r':
            interval = atof(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case O_PIECES:
            npieces = atoi(optarg);
            break;
        case O_BYTES:
            piece_bytes = (size_t)strtoul(optarg, NULL, 0);
            break;
        case O_STRIDE:
            stride = (size_t)strtoul(optarg, NULL, 0);
            break;
        case O_ADDR:
            addr = strtoull(optarg, NULL, 16);
            break;
        case O_THREADS:
            all_threads = true;
            break;
        case O_RUNNING:
            running_only = true;
            break;
        case O_GAP:
            gap = strtoull(optarg, NULL, 0);
            break;
        default:
            usage();
        }
    }
    if (pid <= 0 || interval <= 0 || seconds <= 0 || npieces < 1 || npieces > MAX_PIECES ||
        piece_bytes < 1 || (all_threads && running_only) || optind != argc)
        usage();
    if (stride < piece_bytes)
        stride = piece_bytes;

    char *buf = malloc(piece_bytes * (size_t)npieces);
    if (!buf)
        return 1;
    if (!addr && !(addr = default_addr(stride * (size_t)(npieces - 1) + piece_bytes))) {
        fprintf(stderr, "floor_probe: no rw-p mapping in /proc/%d/maps\n", (int)pid);
        return 1;
    }
    for (int i = 0; i < npieces; i++) {
        local_iov[i] = (struct iovec){buf + (size_t)i * piece_bytes, piece_bytes};
        remote_iov[i] =
            (struct iovec){(void *)(uintptr_t)(addr + (uint64_t)i * stride), piece_bytes};
    }

    /* SIGINT and SIGTERM only set a flag (no SA_RESTART: they end
     * clock_nanosleep); the loop ends and detaches. SIGCHLD, which every
     * ptrace stop of the target sends us, stays blocked: a handler run in
     * the stop window costs ~20 us on a VM, more than the read. */
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    if (seize_all() != 0) {
        detach_all();
        return 1;
    }

    const uint64_t iv = (uint64_t)(interval * 1e9) ? (uint64_t)(interval * 1e9) : 1;
    const uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    uint64_t tick = 0, ticks = 0, samples = 0, idle = 0, skipped = 0, throttled = 0;
    size_t rr = 0;      /* --running: where the round-robin search starts */
    pid_t *tids = NULL; /* --threads: the threads of this tick */
    size_t tids_cap = 0;

    while (!stop_flag && !gone) {
        /* Sleep to the tick's deadline, in steps of at most MAX_NAP_NS:
         * target events (a signal to re-inject, a new thread, an exit) are
         * handled at the end of each step, so none waits longer than
         * MAX_NAP_NS, and short intervals cost no extra wake-up. */
        const uint64_t deadline = start + tick * iv;
        for (;;) {
            drain();
            uint64_t now = now_ns();
            if (stop_flag || gone || now >= deadline)
                break;
            uint64_t wake = deadline - now > MAX_NAP_NS ? now + MAX_NAP_NS : deadline;
            struct timespec ts = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* EINTR: SIGINT, SIGTERM */
        }
        if (stop_flag || gone || ntasks == 0)
            break;

        ticks++;
        if (all_threads) {
            /* Each thread on its own: sleepers read live and checked. */
            size_t n = ntasks;
            if (n > tids_cap) {
                pid_t *grown = realloc(tids, n * sizeof(*tids));
                if (!grown)
                    break;
                tids = grown;
                tids_cap = n;
            }
            for (size_t i = 0; i < n; i++)
                tids[i] = tasks[i].tid;
            for (size_t i = 0; i < n && !gone; i++) {
                struct task *t = find(tids[i]);
                unsigned long long before = 0, after = 0;
                if (!t)
                    continue;
                samples++;
                if (t->group_stop) {
                    read_pieces();
                    continue;
                }
                bool have_runs = thread_runs(t, &before);
                char st = thread_state(t);
                if (have_runs && (st == 'S' || st == 'D')) {
                    read_pieces();
                    t = find(tids[i]);
                    if (t && thread_runs(t, &after) && after == before)
                        continue;
                }
                stopped_read(tids[i]);
            }
        } else if (running_only) {
            size_t n = ntasks, i;
            for (i = 0; i < n; i++)
                if (thread_state(&tasks[(rr + i) % n]) == 'R')
                    break;
            if (i == n) {
                idle++;
            } else {
                pid_t tid = tasks[(rr + i) % n].tid;
                rr = (rr + i + 1) % n;
                samples++;
                stopped_read(tid);
            }
        } else {
            samples++;
            stopped_read(pid);
        }

        /* The schedule: skip ticks whose time has passed; after a tick that
         * kept threads stopped for d, wait at least gap * d. */
        tick++;
        uint64_t now = now_ns(), earliest = now + gap * tick_stop_ns;
        tick_stop_ns = 0;
        if (start + tick * iv < earliest) {
            uint64_t want = (earliest - start + iv - 1) / iv;
            uint64_t passed = now > start ? (now - start) / iv + 1 : tick;
            if (passed > want)
                passed = want;
            if (passed > tick)
                skipped += passed - tick;
            throttled += want - (passed > tick ? passed : tick);
            tick = want;
        }
        if (start + tick * iv >= end)
            break;
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    bool target_gone = gone;
    detach_all();

    const uint64_t p50 = percentile(0.5), p99 = percentile(0.99);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("floor: ticks=%" PRIu64 " samples=%" PRIu64 " stopped_samples=%" PRIu64 " idle=%" PRIu64
           " skipped=%" PRIu64 " throttled=%" PRIu64
           " elapsed_s=%.3f cpu_s=%.3f cpu_us_per_tick=%.2f"
           " cpu_us_per_sample=%.2f stop_us_median=%.1f stop_us_p99=%.1f stop_us_max=%.1f"
           " read_fail=%" PRIu64 " pieces=%d bytes=%zu target_exited=%d\n",
           ticks, samples, stopped_samples, idle, skipped, throttled, elapsed, cpu,
           ticks ? cpu * 1e6 / (double)ticks : 0, samples ? cpu * 1e6 / (double)samples : 0,
           stopped_samples ? (double)p50 / 1e3 : 0, stopped_samples ? (double)p99 / 1e3 : 0,
           (double)stop_ns_max / 1e3, read_fail, npieces, piece_bytes, target_gone ? 1 : 0);
    free(tids);
    free(buf);
    free(tasks);
    return 0;
}

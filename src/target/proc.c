#include "pyflame/target/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyflame/base/limits.h"
#include "pyflame/base/log.h"
#include "pyflame/target/procstat.h"

#define SEIZE_OPTIONS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)
/* Non-blocking polls for a stop before a blocking wait (about 1 us each). */
#define SPIN_POLLS 64

struct task {
    pid_t tid;
    uint64_t tls;
    bool tls_known;
    bool tls_tried; /* stopped once to read it: never again */
    bool interrupt_sent; /* a PTRACE_INTERRUPT whose stop we have not seen */
    bool group_stop;     /* in a job-control stop, held with PTRACE_LISTEN */
    int pending_sig;     /* signal to re-inject on resume */
    int stat_fd;         /* /proc/PID/task/TID/stat, opened on first use */
    int schedstat_fd;    /* /proc/PID/task/TID/schedstat, likewise */
    char comm[16];       /* thread name, read on first use */
};

struct pf_proc {
    pid_t pid;
    bool launched;
    struct task *tasks;
    size_t n, cap;
    bool gone, exec_seen;
    bool have_status;
    int status;
};

/* What a wait status meant for the thread that reported it. */
enum outcome {
    HELD,    /* the thread is in a ptrace-stop and we keep it there */
    RUNNING, /* handled; the thread runs (or stays in job control) */
    GONE,    /* the thread exited */
    EXECED,  /* the process executed a new program; the thread is held */
};

static struct task *find(struct pf_proc *p, pid_t tid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->tasks[i].tid == tid)
            return &p->tasks[i];
    return NULL;
}

static struct task *add(struct pf_proc *p, pid_t tid)
{
    struct task *t = find(p, tid);
    if (t)
        return t;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct task *v = realloc(p->tasks, cap * sizeof(*v));
        if (!v)
            return NULL;
        p->tasks = v;
        p->cap = cap;
    }
    t = &p->tasks[p->n++];
    *t = (struct task){.tid = tid, .stat_fd = -1, .schedstat_fd = -1};
    return t;
}

static void drop(struct pf_proc *p, pid_t tid)
{
    struct task *t = find(p, tid);
    if (t) {
        if (t->stat_fd >= 0)
            close(t->stat_fd);
        if (t->schedstat_fd >= 0)
            close(t->schedstat_fd);
        *t = p->tasks[--p->n]; /* order does not matter */
    }
}

static void read_tls(struct task *t)
{
#if defined(__x86_64__)
    errno = 0;
    long v = ptrace(PTRACE_PEEKUSER, t->tid, offsetof(struct user, regs.fs_base), 0);
    if (errno == 0) {
        t->tls = (uint64_t)v;
        t->tls_known = true;
    }
#else
    (void)t; /* aarch64: TPIDR_EL0 through PTRACE_GETREGSET NT_ARM_TLS, to do */
#endif
}

static bool is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void cont(struct task *t, int sig)
{
    /* ESRCH here means the thread died while stopped (SIGKILL); its exit
     * is reported by waitpid later. */
    ptrace(PTRACE_CONT, t->tid, 0, (void *)(intptr_t)sig);
}

/* Interpret one wait status. With `want_stop`, a stop of this thread is kept
 * for the caller; otherwise every stop is resumed as the target would
 * have continued without us. */
static enum outcome handle(struct pf_proc *p, pid_t tid, int status, bool want_stop)
{
    struct task *t = find(p, tid);

    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        drop(p, tid);
        if (tid == p->pid) {
            p->gone = true;
            p->have_status = true;
            p->status = status;
        }
        return GONE;
    }
    if (!WIFSTOPPED(status))
        return RUNNING;
    if (!t) {
        /* A new thread can report its first stop before its creator
         * reports the clone event. */
        t = add(p, tid);
        if (!t) {
            int sig = (status >> 16) == 0 ? WSTOPSIG(status) : 0; /* the target's signal */
            ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)sig);
            return RUNNING;
        }
    }
    int sig = WSTOPSIG(status);
    int event = status >> 16;

    switch (event) {
    case PTRACE_EVENT_STOP:
        /* Any of these stops is the trap a pending PTRACE_INTERRUPT asked
         * for: the kernel clears it on entering the trap (a job-control
         * stop included), so nothing is pending any more. */
        if (is_stop_signal(sig)) {
            /* Job control: someone stopped the process. It must stay
             * stopped until SIGCONT, which LISTEN lets it receive. */
            t->group_stop = true;
            t->interrupt_sent = false;
            if (want_stop)
                return HELD;
            ptrace(PTRACE_LISTEN, tid, 0, 0);
            return RUNNING;
        }
        /* SIGTRAP: our PTRACE_INTERRUPT, a new thread's first stop, or
         * the end of a job-control stop after SIGCONT. */
        t->group_stop = false;
        if (!t->tls_known)
            read_tls(t);
        if (t->interrupt_sent) {
            t->interrupt_sent = false;
            if (want_stop)
                return HELD;
        }
        cont(t, 0);
        return RUNNING;
    case PTRACE_EVENT_CLONE: {
        unsigned long child = 0;
        /* add() may move the task array: t is not valid after it. */
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child)
            add(p, (pid_t)child);
        if (want_stop)
            return HELD;
        ptrace(PTRACE_CONT, tid, 0, 0);
        return RUNNING;
    }
    case PTRACE_EVENT_EXEC:
        /* Every address we know belongs to the old image. */
        p->exec_seen = true;
        if (want_stop)
            return EXECED;
        cont(t, 0);
        return RUNNING;
    case 0:
        /* Signal-delivery stop: the signal is the target's; it gets it back
         * when the thread resumes. */
        t->pending_sig = sig;
        if (want_stop)
            return HELD;
        t->pending_sig = 0;
        cont(t, sig);
        return RUNNING;
    default:
        cont(t, 0);
        return RUNNING;
    }
}

static void drain(struct pf_proc *p)
{
    for (;;) {
        int status;
        pid_t tid = waitpid(-1, &status, WNOHANG | __WALL);
        if (tid <= 0)
            return;
        handle(p, tid, status, false);
    }
}

static pf_err explain_seize_failure(pid_t pid, int errnum, struct pf_diag *diag)
{
    char path[64], line[256];
    long tracer = 0, uid = -1;
    FILE *f;

    if (errnum == ESRCH)
        return pf_diag_set(diag, PF_ERR_NOPROC, "no process with PID %d", (int)pid);
    if (errnum != EPERM && errnum != EACCES)
        return pf_diag_errno(diag, PF_ERR_IO, errnum, "ptrace(PTRACE_SEIZE, %d)", (int)pid);
    /* Kernel threads cannot be traced by anyone, and have no executable. */
    char exe[64];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    if (readlink(path, exe, sizeof(exe)) < 0 && errno == ENOENT)
        return pf_diag_set(diag, PF_ERR_NOTPYTHON,
                           "process %d is a kernel thread, not a program: no Python to profile",
                           (int)pid);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "re"))) {
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "TracerPid: %ld", &tracer) == 1)
                continue;
            sscanf(line, "Uid: %*d %ld", &uid);
        }
        fclose(f);
    }
    if (tracer > 0)
        return pf_diag_set(diag, PF_ERR_PERM,
                           "cannot attach to process %d: it is already traced by process %ld "
                           "(a debugger or another profiler); detach that first",
                           (int)pid, tracer);
    if (geteuid() != 0 && uid >= 0 && (uid_t)uid != geteuid())
        return pf_diag_set(diag, PF_ERR_PERM,
                           "cannot attach to process %d: ptrace not permitted: it runs as uid %ld "
                           "and pyflame as uid %d; run pyflame as that user or as root "
                           "(CAP_SYS_PTRACE)",
                           (int)pid, uid, (int)geteuid());
    int scope = -1;
    if ((f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re"))) {
        if (fscanf(f, "%d", &scope) != 1)
            scope = -1;
        fclose(f);
    }
    if (scope >= 1)
        return pf_diag_set(diag, PF_ERR_PERM,
                           "cannot attach to process %d: ptrace not permitted by Yama "
                           "(kernel.yama.ptrace_scope = %d); run pyflame as root or with "
                           "CAP_SYS_PTRACE, or set the sysctl kernel.yama.ptrace_scope=0",
                           (int)pid, scope);
    return pf_diag_set(diag, PF_ERR_PERM,
                       "cannot attach to process %d: ptrace not permitted; pyflame needs "
                       "CAP_SYS_PTRACE (run as root; in a container add --cap-add=SYS_PTRACE "
                       "and allow ptrace in its seccomp profile)",
                       (int)pid);
}

/* Seize every thread, re-listing /proc/PID/task until no new one shows up:
 * threads may be created while we go. */
pf_err pf_proc_attach(pid_t pid, struct pf_diag *diag, struct pf_proc **out)
{
    struct pf_proc *p;
    char path[64];
    bool added = true;
    pf_err err;

    if (pid <= 0)
        return pf_diag_set(diag, PF_ERR_USAGE, "invalid PID %d", (int)pid);
    if (pid == getpid())
        return pf_diag_set(diag, PF_ERR_USAGE, "pyflame cannot profile itself");
    if (!(p = calloc(1, sizeof(*p))))
        return PF_ERR_NOMEM;
    p->pid = pid;
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(intptr_t)SEIZE_OPTIONS) != 0) {
        err = explain_seize_failure(pid, errno, diag);
        free(p);
        return err;
    }
    if (!add(p, pid)) {
        err = PF_ERR_NOMEM;
        goto fail;
    }
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    for (int round = 0; added && round < 100; round++) {
        DIR *d = opendir(path);
        struct dirent *de;
        added = false;
        if (!d) {
            err = pf_diag_errno(diag, PF_ERR_NOPROC, errno, "cannot list %s", path);
            goto fail;
        }
        while ((de = readdir(d))) {
            pid_t tid = (pid_t)atoi(de->d_name);
            if (tid <= 0 || find(p, tid))
                continue;
            if (p->n >= PF_MAX_TASKS)
                break;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(intptr_t)SEIZE_OPTIONS) != 0)
                continue; /* it exited meanwhile */
            if (!add(p, tid)) {
                closedir(d);
                err = PF_ERR_NOMEM;
                goto fail;
            }
            added = true;
        }
        closedir(d);
    }
    *out = p;
    return PF_OK;
fail:
    pf_proc_detach(p);
    return err;
}

pf_err pf_proc_launch(char *const argv[], bool stdout_to_stderr, struct pf_diag *diag,
                      struct pf_proc **out)
{
    int go[2], report[2];
    struct pf_proc *p;
    pid_t child;
    pf_err err;

    if (!argv || !argv[0])
        return pf_diag_set(diag, PF_ERR_USAGE, "-t needs a command to run");
    if (pipe2(go, O_CLOEXEC) != 0)
        return pf_diag_errno(diag, PF_ERR_IO, errno, "pipe");
    if (pipe2(report, O_CLOEXEC) != 0) {
        close(go[0]);
        close(go[1]);
        return pf_diag_errno(diag, PF_ERR_IO, errno, "pipe");
    }
    child = fork();
    if (child < 0) {
        err = pf_diag_errno(diag, PF_ERR_IO, errno, "fork");
        close(go[0]), close(go[1]), close(report[0]), close(report[1]);
        return err;
    }
    if (child == 0) {
        /* The command gets the signal state a shell would give it, not ours. */
        sigset_t none;
        char c;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        if (stdout_to_stderr)
            dup2(STDERR_FILENO, STDOUT_FILENO);
        close(go[1]);
        close(report[0]);
        /* Wait until the parent has seized us, so that we are traced from
         * the exec on. No signal is involved, so no stop can leak. */
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        execvp(argv[0], argv);
        int e = errno;
        if (write(report[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(go[0]);
    close(report[1]);
    if (!(p = calloc(1, sizeof(*p)))) {
        close(go[1]);
        close(report[0]);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return PF_ERR_NOMEM;
    }
    p->pid = child;
    p->launched = true;
    if (ptrace(PTRACE_SEIZE, child, 0, (void *)(intptr_t)SEIZE_OPTIONS) != 0 || !add(p, child)) {
        err = find(p, child) || errno != ENOMEM
                  ? pf_diag_errno(diag, PF_ERR_PERM, errno, "ptrace(PTRACE_SEIZE) of the launched command")
                  : PF_ERR_NOMEM;
        close(go[1]);
        close(report[0]);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        free(p->tasks);
        free(p);
        return err;
    }
    close(go[1]); /* let the child exec */
    int child_errno = 0;
    ssize_t r;
    while ((r = read(report[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
        ;
    close(report[0]);
    if (r > 0) {
        /* exec failed: the child exits 127 by itself; reap it. */
        int status;
        while (waitpid(child, &status, __WALL) > 0 && !WIFEXITED(status) && !WIFSIGNALED(status))
            ptrace(PTRACE_CONT, child, 0, 0);
        free(p->tasks);
        free(p);
        return pf_diag_errno(diag, child_errno == ENOENT ? PF_ERR_NOTFOUND : PF_ERR_IO, child_errno,
                             "cannot run %s", argv[0]);
    }
    /* Wait for the exec stop: from here on the new program runs. */
    for (;;) {
        int status;
        pid_t tid = waitpid(child, &status, __WALL);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            err = pf_diag_errno(diag, PF_ERR_IO, errno, "waitpid");
            goto fail;
        }
        enum outcome o = handle(p, tid, status, true);
        if (o == GONE) {
            err = pf_diag_set(diag, PF_ERR_EXITED, "%s exited before it started", argv[0]);
            goto fail;
        }
        if (o == EXECED) {
            p->exec_seen = false;
            cont(find(p, child), 0);
            break;
        }
        if (o == HELD)
            cont(find(p, child), find(p, child)->pending_sig), find(p, child)->pending_sig = 0;
    }
    *out = p;
    return PF_OK;
fail:
    pf_proc_detach(p);
    return err;
}

void pf_proc_exec_seen_ok(struct pf_proc *p)
{
    p->exec_seen = false;
}

pid_t pf_proc_pid(const struct pf_proc *p)
{
    return p->pid;
}

static int64_t ns_until(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 + (deadline->tv_nsec - now.tv_nsec);
}

pf_err pf_proc_wait(struct pf_proc *p, const struct timespec *deadline)
{
    drain(p);
    if (p->gone)
        return PF_ERR_EXITED;
    if (p->exec_seen)
        return PF_ERR_EXEC;
    int64_t ns = ns_until(deadline);
    if (ns <= 0)
        return PF_OK;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    /* Returns on SIGCHLD (a ptrace event), on timeout, or with EINTR when
     * a handled signal (SIGINT, SIGTERM) arrives. */
    sigtimedwait(&set, NULL, &ts);
    drain(p);
    if (p->gone)
        return PF_ERR_EXITED;
    if (p->exec_seen)
        return PF_ERR_EXEC;
    return PF_OK;
}

/* A wait status of the thread pf_proc_stop_thread waits for: true when
 * the wait is over, with *err its result (PF_OK: the thread is held). */
static bool stop_reported(struct pf_proc *p, pid_t tid, int status, pf_err *err)
{
    switch (handle(p, tid, status, true)) {
    case HELD:
        *err = PF_OK;
        return true;
    case GONE:
        *err = PF_ERR_NOPROC;
        return true;
    case EXECED:
        cont(find(p, tid), 0);
        *err = PF_ERR_EXEC;
        return true;
    case RUNNING:
        break;
    }
    *err = PF_ERR_NOPROC;
    return !find(p, tid);
}

pf_err pf_proc_stop_thread(struct pf_proc *p, pid_t tid)
{
    struct task *t = find(p, tid);
    pf_err err;

    if (!t)
        return PF_ERR_NOPROC;
    if (t->group_stop)
        return PF_OK; /* stopped by job control already; memory is stable */
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
        drain(p);
        return PF_ERR_NOPROC;
    }
    t->interrupt_sent = true;
    /* A thread running on another CPU stops within microseconds; polling for
     * that briefly saves the sleep and wake-up of a blocking wait, which on
     * a busy machine costs more than the stop itself. Then block. */
    for (int spin = 0; spin < SPIN_POLLS; spin++) {
        int status;
        pid_t r = waitpid(tid, &status, WNOHANG | __WALL);
        if (r == tid && stop_reported(p, tid, status, &err))
            return err;
        if (r < 0 && errno != EINTR)
            break;
    }
    for (;;) {
        int status;
        /* Wait for any thread, not just this one: a zombie thread-group
         * leader reports only after every other thread has been reaped, and
         * those threads are ours to reap. Other threads' events are handled
         * (resumed) as they come. */
        pid_t r = waitpid(-1, &status, __WALL);
        if (r < 0) {
            if (errno == EINTR)
                continue; /* we must not leave with the stop pending */
            drop(p, tid);
            return PF_ERR_NOPROC;
        }
        if (r != tid) {
            bool exec_before = p->exec_seen;
            handle(p, r, status, false);
            if (p->exec_seen && !exec_before)
                return PF_ERR_EXEC; /* the thread we wait for is gone with the old image */
            if (!find(p, tid))
                return PF_ERR_NOPROC;
            continue;
        }
        if (stop_reported(p, tid, status, &err))
            return err;
    }
}

static size_t index_of(const pid_t *tids, size_t n, pid_t tid)
{
    for (size_t i = 0; i < n; i++)
        if (tids[i] == tid)
            return i;
    return n;
}

#define PENDING 2 /* interrupt sent, stop not seen yet */

pf_err pf_proc_stop_threads(struct pf_proc *p, const pid_t *tids, size_t n, unsigned char *stopped,
                            const struct timespec *deadline)
{
    size_t pending = 0;
    bool exec_seen = false;
    int polls = 0;

    for (size_t i = 0; i < n; i++) {
        struct task *t = find(p, tids[i]);
        stopped[i] = PF_STOP_GONE;
        if (!t || index_of(tids, i, tids[i]) < i)
            continue;
        if (t->group_stop) {
            stopped[i] = PF_STOP_HELD; /* stopped by job control already */
            continue;
        }
        /* An interrupt still pending from an earlier, too slow stop brings
         * the stop we want: a second one would trap the thread again right
         * after we resume it (ptrace(2): another trap follows the current
         * one), outside any stop window. Without a deadline (-d, --native)
         * we must not wait on a flag alone: interrupt anyway; a second trap
         * is resumed by the next wait. */
        if (!(t->interrupt_sent && deadline) && ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) != 0)
            continue; /* gone: its exit is reaped by a later wait */
        t->interrupt_sent = true;
        stopped[i] = PENDING;
        pending++;
    }
    /* As in pf_proc_stop_thread: poll briefly (threads on other CPUs stop
     * within microseconds), then block, until the deadline if there is
     * one; other threads' events are handled as they come. */
    while (pending) {
        int status;
        pid_t r = waitpid(-1, &status, WNOHANG | __WALL);
        if (r == 0) {
            if (polls++ < SPIN_POLLS)
                continue;
            if (!deadline) {
                r = waitpid(-1, &status, __WALL);
            } else {
                int64_t ns = ns_until(deadline);
                if (ns <= 0)
                    break;
                sigset_t set;
                sigemptyset(&set);
                sigaddset(&set, SIGCHLD);
                struct timespec ts = {ns / 1000000000, ns % 1000000000};
                sigtimedwait(&set, NULL, &ts);
                continue;
            }
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* No child left to wait for: every pending thread is gone. */
            for (size_t i = 0; i < n; i++)
                if (stopped[i] == PENDING) {
                    stopped[i] = PF_STOP_GONE;
                    drop(p, tids[i]);
                }
            pending = 0;
            break;
        }
        size_t i = index_of(tids, n, r);
        bool gone = false;
        if (i == n || stopped[i] != PENDING) {
            bool before = p->exec_seen;
            gone = handle(p, r, status, false) == GONE;
            if (p->exec_seen && !before)
                exec_seen = true;
        } else {
            switch (handle(p, r, status, true)) {
            case HELD:
                stopped[i] = PF_STOP_HELD;
                pending--;
                break;
            case GONE:
                stopped[i] = PF_STOP_GONE;
                pending--;
                break;
            case EXECED:
                cont(find(p, r), 0);
                stopped[i] = PF_STOP_GONE;
                pending--;
                exec_seen = true;
                break;
            case RUNNING:
                break; /* not our stop yet */
            }
        }
        /* Threads that vanished while we waited (an exec, an exit seen
         * through another thread's event): only after such an event, so
         * that waiting for n stops stays linear in the events. */
        for (size_t j = 0; (gone || exec_seen) && j < n; j++)
            if (stopped[j] == PENDING && !find(p, tids[j])) {
                stopped[j] = PF_STOP_GONE;
                pending--;
            }
        if (exec_seen)
            break;
    }
    /* Not stopped in time: the interrupt stays sent (interrupt_sent), so
     * the stop, when it comes, is resumed at once (handle). */
    for (size_t i = 0; i < n; i++)
        if (stopped[i] == PENDING)
            stopped[i] = PF_STOP_TOO_SLOW;
    if (exec_seen) {
        /* The old image is gone: let go of whatever is still held. */
        for (size_t i = 0; i < n; i++)
            if (stopped[i] == PF_STOP_HELD)
                pf_proc_resume_thread(p, tids[i]);
        memset(stopped, PF_STOP_GONE, n);
        return PF_ERR_EXEC;
    }
    return PF_OK;
}

void pf_proc_poll(struct pf_proc *p)
{
    drain(p);
}

pf_err pf_proc_resume_thread(struct pf_proc *p, pid_t tid)
{
    struct task *t = find(p, tid);
    if (!t)
        return PF_ERR_NOPROC;
    if (t->group_stop) {
        /* Keep the job-control stop; LISTEN lets SIGCONT through. */
        ptrace(PTRACE_LISTEN, tid, 0, 0);
        return PF_OK;
    }
    int sig = t->pending_sig;
    t->pending_sig = 0;
    if (ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)sig) != 0)
        return errno == ESRCH ? PF_ERR_NOPROC : PF_ERR_IO;
    return PF_OK;
}

pid_t pf_proc_tid_by_tls(struct pf_proc *p, uint64_t tls)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->tasks[i].tls_known && p->tasks[i].tls == tls)
            return p->tasks[i].tid;
    /* Learn the TLS base of threads we have not seen stopped yet (threads
     * that existed when we attached). Each is stopped once, for one read. */
    pid_t *unknown = malloc(p->n * sizeof(*unknown) + 1);
    size_t nunknown = 0;
    pid_t found = 0;
    if (!unknown)
        return 0;
    for (size_t i = 0; i < p->n; i++)
        if (!p->tasks[i].tls_known && !p->tasks[i].tls_tried && !p->tasks[i].group_stop)
            unknown[nunknown++] = p->tasks[i].tid;
    for (size_t i = 0; i < nunknown && !found; i++) {
        if (pf_proc_stop_thread(p, unknown[i]) != PF_OK)
            continue;
        struct task *t = find(p, unknown[i]);
        if (t) {
            t->tls_tried = true;
            if (!t->tls_known)
                read_tls(t);
            if (t->tls_known && t->tls == tls)
                found = t->tid;
        }
        pf_proc_resume_thread(p, unknown[i]);
    }
    free(unknown);
    return found;
}

bool pf_proc_has_thread(const struct pf_proc *p, pid_t tid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->tasks[i].tid == tid)
            return true;
    return false;
}

size_t pf_proc_thread_count(const struct pf_proc *p)
{
    return p->n;
}

/* pread a /proc/PID/task/TID file through a cached descriptor. */
static pf_err read_task_file(struct pf_proc *p, struct task *t, int *fd, const char *name, char *buf,
                             size_t cap)
{
    if (*fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)p->pid, (int)t->tid, name);
        *fd = open(path, O_RDONLY | O_CLOEXEC);
        if (*fd < 0)
            return pf_err_from_errno(errno);
    }
    /* One pread of an open file: the kernel formats it afresh each time. */
    ssize_t n = pread(*fd, buf, cap - 1, 0);
    if (n <= 0)
        return PF_ERR_NOPROC;
    buf[n] = '\0';
    return PF_OK;
}

pf_err pf_proc_thread_state(struct pf_proc *p, pid_t tid, char *state)
{
    struct task *t = find(p, tid);
    char buf[512];
    pf_err err;

    if (!t)
        return PF_ERR_NOPROC;
    if ((err = read_task_file(p, t, &t->stat_fd, "stat", buf, sizeof(buf))))
        return err;
    return pf_procstat_state(buf, state) ? PF_OK : PF_ERR_CORRUPT;
}

pf_err pf_proc_thread_runs(struct pf_proc *p, pid_t tid, uint64_t *runs)
{
    struct task *t = find(p, tid);
    char buf[128];
    unsigned long long run_ns, wait_ns, count;
    pf_err err;

    if (!t)
        return PF_ERR_NOPROC;
    if ((err = read_task_file(p, t, &t->schedstat_fd, "schedstat", buf, sizeof(buf))))
        return err;
    /* "run_ns wait_ns timeslices" (Documentation/scheduler/sched-stats.rst) */
    if (sscanf(buf, "%llu %llu %llu", &run_ns, &wait_ns, &count) != 3)
        return PF_ERR_CORRUPT;
    *runs = count;
    return PF_OK;
}

pf_err pf_proc_thread_name(struct pf_proc *p, pid_t tid, char *buf, size_t cap)
{
    struct task *t = find(p, tid);

    if (!t)
        return PF_ERR_NOPROC;
    if (!t->comm[0]) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)p->pid, (int)tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return pf_err_from_errno(errno);
        ssize_t n = read(fd, t->comm, sizeof(t->comm) - 1);
        close(fd);
        if (n <= 0)
            return PF_ERR_NOPROC;
        t->comm[n] = '\0';
        char *nl = strchr(t->comm, '\n');
        if (nl)
            *nl = '\0';
    }
    snprintf(buf, cap, "%s", t->comm);
    return PF_OK;
}

bool pf_proc_group_stopped(const struct pf_proc *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->tasks[i].tid == p->pid)
            return p->tasks[i].group_stop;
    return false;
}

bool pf_proc_exit_status(const struct pf_proc *p, int *status)
{
    if (p->have_status)
        *status = p->status;
    return p->have_status;
}

void pf_proc_detach(struct pf_proc *p)
{
    if (!p)
        return;
    /* PTRACE_DETACH needs the thread in a ptrace-stop: stop, then detach
     * with whatever signal it was about to receive. New threads may appear
     * meanwhile (clone events), so repeat until none is left. */
    for (int round = 0; p->n > 0 && round < 1000; round++) {
        pid_t tid = p->tasks[p->n - 1].tid;
        struct task *t = &p->tasks[p->n - 1];
        if (t->group_stop) {
            /* In a LISTEN: interrupt to get a ptrace-stop; it stays in the
             * job-control stop after the detach. */
            t->group_stop = false;
        }
        pf_err err = pf_proc_stop_thread(p, tid);
        if (err == PF_OK) {
            t = find(p, tid);
            int sig = t ? t->pending_sig : 0;
            ptrace(PTRACE_DETACH, tid, 0, (void *)(intptr_t)sig);
        }
        drop(p, tid);
        drain(p);
    }
    for (size_t i = 0; i < p->n; i++) {
        if (p->tasks[i].stat_fd >= 0)
            close(p->tasks[i].stat_fd);
        if (p->tasks[i].schedstat_fd >= 0)
            close(p->tasks[i].schedstat_fd);
    }
    free(p->tasks);
    free(p);
}

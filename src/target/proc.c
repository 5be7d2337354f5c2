/* proc: the ptrace core (proc.h): the traced threads, their ptrace events,
 * attaching, stopping, resuming and detaching. Launching, TLS look-ups,
 * per-thread /proc files and the diagnosis of a refused attach are in
 * proc_*.c beside it. */
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
#include "proc_impl.h"

struct task *pf_proc_find(struct pf_proc *p, pid_t tid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->tasks[i].tid == tid)
            return &p->tasks[i];
    return NULL;
}

struct task *pf_proc_add(struct pf_proc *p, pid_t tid)
{
    struct task *t = pf_proc_find(p, tid);
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

void pf_proc_drop(struct pf_proc *p, pid_t tid)
{
    struct task *t = pf_proc_find(p, tid);
    if (t) {
        if (t->stat_fd >= 0)
            close(t->stat_fd);
        if (t->schedstat_fd >= 0)
            close(t->schedstat_fd);
        *t = p->tasks[--p->n]; /* order does not matter */
    }
}

static bool is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

void pf_proc_cont(struct task *t, int sig)
{
    /* ESRCH here means the thread died while stopped (SIGKILL); its exit
     * is reported by waitpid later. */
    ptrace(PTRACE_CONT, t->tid, 0, (void *)(intptr_t)sig);
}

/* Interpret one wait status. With `want_stop`, a stop of this thread is kept
 * for the caller; otherwise every stop is resumed as the target would
 * have continued without us. */
enum outcome pf_proc_handle(struct pf_proc *p, pid_t tid, int status, bool want_stop)
{
    struct task *t = pf_proc_find(p, tid);

    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        pf_proc_drop(p, tid);
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
        t = pf_proc_add(p, tid);
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
            pf_proc_read_tls(t);
        if (t->interrupt_sent) {
            t->interrupt_sent = false;
            if (want_stop)
                return HELD;
        }
        pf_proc_cont(t, 0);
        return RUNNING;
    case PTRACE_EVENT_CLONE: {
        unsigned long child = 0;
        /* pf_proc_add() may move the task array: t is not valid after it. */
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child)
            pf_proc_add(p, (pid_t)child);
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
        pf_proc_cont(t, 0);
        return RUNNING;
    case 0:
        /* Signal-delivery stop: the signal is the target's; it gets it back
         * when the thread resumes. */
        t->pending_sig = sig;
        if (want_stop)
            return HELD;
        t->pending_sig = 0;
        pf_proc_cont(t, sig);
        return RUNNING;
    default:
        pf_proc_cont(t, 0);
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
        pf_proc_handle(p, tid, status, false);
    }
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
        err = pf_proc_explain_seize_failure(pid, errno, diag);
        free(p);
        return err;
    }
    if (!pf_proc_add(p, pid)) {
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
            if (tid <= 0 || pf_proc_find(p, tid))
                continue;
            if (p->n >= PF_MAX_TASKS)
                break;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(intptr_t)SEIZE_OPTIONS) != 0)
                continue; /* it exited meanwhile */
            if (!pf_proc_add(p, tid)) {
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
    switch (pf_proc_handle(p, tid, status, true)) {
    case HELD:
        *err = PF_OK;
        return true;
    case GONE:
        *err = PF_ERR_NOPROC;
        return true;
    case EXECED:
        pf_proc_cont(pf_proc_find(p, tid), 0);
        *err = PF_ERR_EXEC;
        return true;
    case RUNNING:
        break;
    }
    *err = PF_ERR_NOPROC;
    return !pf_proc_find(p, tid);
}

pf_err pf_proc_stop_thread(struct pf_proc *p, pid_t tid)
{
    struct task *t = pf_proc_find(p, tid);
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
            pf_proc_drop(p, tid);
            return PF_ERR_NOPROC;
        }
        if (r != tid) {
            bool exec_before = p->exec_seen;
            pf_proc_handle(p, r, status, false);
            if (p->exec_seen && !exec_before)
                return PF_ERR_EXEC; /* the thread we wait for is gone with the old image */
            if (!pf_proc_find(p, tid))
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
        struct task *t = pf_proc_find(p, tids[i]);
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
                    pf_proc_drop(p, tids[i]);
                }
            pending = 0;
            break;
        }
        size_t i = index_of(tids, n, r);
        bool gone = false;
        if (i == n || stopped[i] != PENDING) {
            bool before = p->exec_seen;
            gone = pf_proc_handle(p, r, status, false) == GONE;
            if (p->exec_seen && !before)
                exec_seen = true;
        } else {
            switch (pf_proc_handle(p, r, status, true)) {
            case HELD:
                stopped[i] = PF_STOP_HELD;
                pending--;
                break;
            case GONE:
                stopped[i] = PF_STOP_GONE;
                pending--;
                break;
            case EXECED:
                pf_proc_cont(pf_proc_find(p, r), 0);
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
            if (stopped[j] == PENDING && !pf_proc_find(p, tids[j])) {
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
    struct task *t = pf_proc_find(p, tid);
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
            t = pf_proc_find(p, tid);
            int sig = t ? t->pending_sig : 0;
            ptrace(PTRACE_DETACH, tid, 0, (void *)(intptr_t)sig);
        }
        pf_proc_drop(p, tid);
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

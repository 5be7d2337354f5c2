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

#include "pyflame/base/grow.h"
#include "pyflame/base/limits.h"
#include "pyflame/base/log.h"
#include "pyflame/target/procstat.h"
#include "proc_impl.h"

struct task *pf_proc_find(struct pf_proc *p, pid_t tid)
{
    struct pf_tracer *tr = p->tr;
    for (size_t i = 0; i < tr->n; i++)
        if (tr->tasks[i].tid == tid)
            return &tr->tasks[i];
    return NULL;
}

struct task *pf_proc_add(struct pf_proc *p, pid_t tid)
{
    struct pf_tracer *tr = p->tr;
    struct task *t = pf_proc_find(p, tid);
    if (t)
        return t;
    struct task *v = pf_grow(tr->tasks, tr->n, &tr->cap, sizeof(*v), 16);
    if (!v)
        return NULL;
    tr->tasks = v;
    t = &tr->tasks[tr->n++];
    *t = (struct task){.tid = tid, .proc = p, .stat_fd = -1, .schedstat_fd = -1};
    return t;
}

void pf_proc_drop(struct pf_proc *p, pid_t tid)
{
    struct pf_tracer *tr = p->tr;
    struct task *t = pf_proc_find(p, tid);
    if (t) {
        if (t->stat_fd >= 0)
            close(t->stat_fd);
        if (t->schedstat_fd >= 0)
            close(t->schedstat_fd);
        *t = tr->tasks[--tr->n]; /* order does not matter */
    }
}

struct pf_proc *pf_proc_new_in(struct pf_tracer *tr, pid_t pid)
{
    struct pf_proc *p;
    struct pf_proc **v = pf_grow(tr->procs, tr->nprocs, &tr->capprocs, sizeof(*v), 8);
    if (!v)
        return NULL;
    tr->procs = v;
    if (!(p = calloc(1, sizeof(*p))))
        return NULL;
    p->tr = tr;
    p->pid = pid;
    tr->procs[tr->nprocs++] = p;
    return p;
}

struct pf_proc *pf_proc_new_root(pid_t pid, bool follow)
{
    struct pf_tracer *tr = calloc(1, sizeof(*tr));
    struct pf_proc *p;
    if (!tr)
        return NULL;
    tr->follow = follow;
    tr->options = follow ? FOLLOW_OPTIONS : SEIZE_OPTIONS;
    tr->handed_out = 1;
    if (!(p = pf_proc_new_in(tr, pid))) {
        free(tr);
        return NULL;
    }
    return p;
}

void pf_proc_free_root(struct pf_proc *root)
{
    struct pf_tracer *tr = root->tr;
    for (size_t i = 0; i < tr->nprocs; i++)
        free(tr->procs[i]);
    free(tr->procs);
    free(tr->tasks);
    free(tr);
}

/* The record of process pid, live or (with `gone`) exited too, or NULL. */
static struct pf_proc *proc_of(struct pf_tracer *tr, pid_t pid, bool gone)
{
    for (size_t i = 0; i < tr->nprocs; i++)
        if (tr->procs[i]->pid == pid && (gone || !tr->procs[i]->gone))
            return tr->procs[i];
    return NULL;
}

/* A thread we did not know of reports: a new thread of a traced process,
 * or (--subprocesses) the first thread of a new process, whose creator's
 * event may come after it. /proc says which: its thread group. */
static struct task *adopt(struct pf_proc *p, pid_t tid)
{
    struct pf_tracer *tr = p->tr;
    struct pf_proc *owner = p;
    long tgid = 0;
    if (tr->follow) {
        /* A thread whose process cannot be told (it is exiting) is not
         * given to any: resumed, its later events are looked at again. */
        if (!pf_procstatus_value(tid, "Tgid", &tgid) || tgid <= 0)
            return NULL;
        owner = proc_of(tr, (pid_t)tgid, false);
        if (!owner && !(owner = pf_proc_new_in(tr, (pid_t)tgid)))
            return NULL;
    }
    return pf_proc_add(owner, tid);
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

enum outcome pf_proc_handle(struct pf_proc *caller, pid_t tid, int status, bool want_stop)
{
    struct task *t = pf_proc_find(caller, tid);

    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        struct pf_proc *p = t ? t->proc : proc_of(caller->tr, tid, false);
        pf_proc_drop(caller, tid);
        if (p && tid == p->pid) {
            p->gone = true;
            p->have_status = true;
            p->status = status;
        }
        return GONE;
    }
    if (!WIFSTOPPED(status))
        return RUNNING;
    if (!t && !(t = adopt(caller, tid))) {
        int sig = (status >> 16) == 0 ? WSTOPSIG(status) : 0; /* the target's signal */
        ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)sig);
        return RUNNING;
    }
    struct pf_proc *p = t->proc;
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
    case PTRACE_EVENT_CLONE:
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK: {
        unsigned long child = 0;
        /* The new thread, or process, is traced already (PTRACE_O_TRACE*);
         * its first stop may have come before this event or come after.
         * adopt() may move the task array: t is not valid after it. */
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child) {
            if (event == PTRACE_EVENT_CLONE) {
                if (!pf_proc_find(caller, (pid_t)child))
                    adopt(p, (pid_t)child);
            } else if (!proc_of(p->tr, (pid_t)child, true) && kill((pid_t)child, 0) == 0) {
                /* Not seen yet (its first stop may come first, and it may
                 * even have exited already: then its record is there, gone). */
                struct pf_proc *np = pf_proc_new_in(p->tr, (pid_t)child);
                if (np)
                    pf_proc_add(np, (pid_t)child);
            }
            struct pf_proc *np = proc_of(p->tr, (pid_t)child, false);
            if (np && event != PTRACE_EVENT_CLONE && !np->exec_seen) {
                /* A fork child is a copy of p until it executes; a vfork
                 * child runs in p's memory until then. */
                np->forked_from = event == PTRACE_EVENT_FORK ? p : NULL;
                np->vforked = event == PTRACE_EVENT_VFORK;
            }
        }
        if (want_stop)
            return HELD;
        ptrace(PTRACE_CONT, tid, 0, 0);
        return RUNNING;
    }
    case PTRACE_EVENT_EXEC:
        /* Every address we know belongs to the old image. The other
         * threads are gone, and the one that called execve now has the
         * process's PID (ptrace(2), "execve(2) under ptrace"): keep only
         * that one. */
        p->exec_seen = true;
        p->forked_from = NULL;
        p->vforked = false;
        if (p->tr->follow) {
            for (size_t i = p->tr->n; i-- > 0;) {
                struct task *o = &p->tr->tasks[i];
                if (o->proc == p && o->tid != tid && o->tid != p->pid)
                    pf_proc_drop(p, o->tid);
            }
            t = pf_proc_find(p, tid);
            /* What was known of the thread belongs to the old program. */
            t->tls_known = t->tls_tried = false;
            t->comm[0] = '\0';
            if (t->stat_fd >= 0)
                close(t->stat_fd);
            if (t->schedstat_fd >= 0)
                close(t->schedstat_fd);
            t->stat_fd = t->schedstat_fd = -1;
        }
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

/* Seize every thread of p, re-listing /proc/PID/task until no new one
 * shows up: threads may be created while we go. Its first thread is
 * seized already. */
static pf_err seize_threads(struct pf_proc *p, struct pf_diag *diag)
{
    char path[64];
    bool added = true;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
    for (int round = 0; added && round < 100; round++) {
        DIR *d = opendir(path);
        struct dirent *de;
        added = false;
        if (!d)
            return pf_diag_errno(diag, PF_ERR_NOPROC, errno, "cannot list %s", path);
        while ((de = readdir(d))) {
            pid_t tid = (pid_t)atoi(de->d_name);
            if (tid <= 0 || pf_proc_find(p, tid))
                continue;
            if (p->tr->n >= PF_MAX_TASKS)
                break;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)p->tr->options) != 0)
                continue; /* it exited meanwhile */
            if (!pf_proc_add(p, tid)) {
                closedir(d);
                return PF_ERR_NOMEM;
            }
            added = true;
        }
        closedir(d);
    }
    return PF_OK;
}

/* Every process's parent, from one pass over /proc (field 4 of each stat). */
struct parentage {
    pid_t pid, ppid;
};

static pf_err list_parents(struct parentage **out, size_t *n, struct pf_diag *diag)
{
    size_t cap = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;

    *n = 0;
    if (!d)
        return pf_diag_errno(diag, PF_ERR_IO, errno, "cannot list /proc");
    while ((de = readdir(d))) {
        pid_t pid = (pid_t)atoi(de->d_name);
        char stat[512];
        unsigned long long ppid;
        if (pid <= 0 || pf_procstat_read(pid, stat, sizeof(stat)) ||
            !pf_procstat_field(stat, 4, &ppid))
            continue;
        struct parentage *v = pf_grow(*out, *n, &cap, sizeof(*v), 256);
        if (!v) {
            closedir(d);
            return PF_ERR_NOMEM;
        }
        *out = v;
        v[(*n)++] = (struct parentage){pid, (pid_t)ppid};
    }
    closedir(d);
    return PF_OK;
}

/* --subprocesses, at attach: every descendant of the root that exists now,
 * parents before children. Those born from now on are seized by the kernel
 * (PTRACE_O_TRACEFORK) once their parent is seized; one born in between is
 * found by the next pass over /proc: passes repeat until one finds nothing
 * new. Seizing a process twice fails harmlessly. */
static pf_err seize_descendants(struct pf_proc *root, struct pf_diag *diag)
{
    struct pf_tracer *tr = root->tr;
    struct parentage *all = NULL;
    size_t n = 0;
    pf_err err = PF_OK;

    for (int pass = 0, added = 1; added && pass < 100 && !err; pass++) {
        added = 0;
        if ((err = list_parents(&all, &n, diag)))
            break;
        for (size_t done = 0; done < tr->nprocs && !err; done++) {
            pid_t parent = tr->procs[done]->pid;
            for (size_t i = 0; i < n && !err; i++) {
                pid_t pid = all[i].pid;
                if (all[i].ppid != parent || proc_of(tr, pid, true))
                    continue;
                if (ptrace(PTRACE_SEIZE, pid, 0, (void *)tr->options) != 0)
                    continue; /* gone, or seized by the kernel already: its event tells */
                struct pf_proc *p = pf_proc_new_in(tr, pid);
                if (!p || !pf_proc_add(p, pid))
                    err = PF_ERR_NOMEM;
                else if (seize_threads(p, NULL) == PF_ERR_NOMEM)
                    err = PF_ERR_NOMEM;
                added = 1;
            }
        }
    }
    free(all);
    return err;
}

pf_err pf_proc_attach(pid_t pid, bool follow, struct pf_diag *diag, struct pf_proc **out)
{
    struct pf_proc *p;
    pf_err err;

    if (pid <= 0)
        return pf_diag_set(diag, PF_ERR_USAGE, "invalid PID %d", (int)pid);
    if (pid == getpid())
        return pf_diag_set(diag, PF_ERR_USAGE, "pyflame cannot profile itself");
    if (!(p = pf_proc_new_root(pid, follow)))
        return PF_ERR_NOMEM;
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)p->tr->options) != 0) {
        err = pf_proc_explain_seize_failure(pid, errno, diag);
        pf_proc_detach(p);
        return err;
    }
    if (!pf_proc_add(p, pid)) {
        err = PF_ERR_NOMEM;
        goto fail;
    }
    if ((err = seize_threads(p, diag)))
        goto fail;
    if (follow && (err = seize_descendants(p, diag)))
        goto fail;
    *out = p;
    return PF_OK;
fail:
    pf_proc_detach(p);
    return err;
}

struct pf_proc *pf_proc_next_new(struct pf_proc *root)
{
    struct pf_tracer *tr = root->tr;
    return tr->handed_out < tr->nprocs ? tr->procs[tr->handed_out++] : NULL;
}

void pf_proc_release(struct pf_proc *p)
{
    struct pf_tracer *tr = p->tr;
    if (!p->gone || p == tr->procs[0])
        return;
    for (size_t i = 0; i < tr->nprocs; i++)
        if (tr->procs[i]->forked_from == p)
            tr->procs[i]->forked_from = NULL;
    /* Threads whose exit was never reported (they died with the process
     * before their first event): nothing may point to p once it is freed. */
    for (size_t i = tr->n; i-- > 0;)
        if (tr->tasks[i].proc == p)
            pf_proc_drop(p, tr->tasks[i].tid);
    for (size_t i = 1; i < tr->nprocs; i++)
        if (tr->procs[i] == p) {
            memmove(&tr->procs[i], &tr->procs[i + 1], (tr->nprocs - i - 1) * sizeof(*tr->procs));
            tr->nprocs--;
            if (i < tr->handed_out)
                tr->handed_out--;
            free(p);
            return;
        }
}

struct pf_proc *pf_proc_forked_from(const struct pf_proc *p)
{
    return p->forked_from && !p->forked_from->gone ? p->forked_from : NULL;
}

bool pf_proc_borrows_memory(const struct pf_proc *p)
{
    return p->vforked;
}

bool pf_proc_execed(const struct pf_proc *p)
{
    return p->exec_seen;
}

bool pf_proc_gone(const struct pf_proc *p)
{
    return p->gone;
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

/* What pf_proc_wait reports of the run: alone, p's exit or exec ends it;
 * with --subprocesses a launched command's exit does, and when attached
 * the exit of the whole tree (an exec is the sampler's to handle). */
static pf_err run_state(const struct pf_proc *p)
{
    const struct pf_tracer *tr = p->tr;
    if (!tr->follow)
        return p->gone ? PF_ERR_EXITED : p->exec_seen ? PF_ERR_EXEC : PF_OK;
    if (p->launched)
        return p->gone ? PF_ERR_EXITED : PF_OK;
    for (size_t i = 0; i < tr->nprocs; i++)
        if (!tr->procs[i]->gone)
            return PF_OK;
    return PF_ERR_EXITED;
}

pf_err pf_proc_wait(struct pf_proc *p, const struct timespec *deadline)
{
    pf_err err;
    drain(p);
    if ((err = run_state(p)))
        return err;
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
    return run_state(p);
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
    const struct pf_tracer *tr = p->tr;
    for (size_t i = 0; i < tr->n; i++)
        if (tr->tasks[i].tid == tid)
            return tr->tasks[i].proc == p;
    return false;
}

size_t pf_proc_thread_count(const struct pf_proc *p)
{
    const struct pf_tracer *tr = p->tr;
    size_t n = 0;
    for (size_t i = 0; i < tr->n; i++)
        n += tr->tasks[i].proc == p;
    return n;
}

bool pf_proc_group_stopped(const struct pf_proc *p)
{
    const struct pf_tracer *tr = p->tr;
    for (size_t i = 0; i < tr->n; i++)
        if (tr->tasks[i].tid == p->pid)
            return tr->tasks[i].group_stop;
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
    struct pf_tracer *tr = p->tr;
    /* PTRACE_DETACH needs the thread in a ptrace-stop: stop, then detach
     * with whatever signal it was about to receive. New threads, and with
     * --subprocesses new processes, may appear meanwhile (their events are
     * drained in between), so repeat until none is left. Every process of
     * the tree is let go, whichever one p is. */
    for (int round = 0; tr->n > 0 && round < 100000; round++) {
        pid_t tid = tr->tasks[tr->n - 1].tid;
        struct task *t = &tr->tasks[tr->n - 1];
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
    for (size_t i = 0; i < tr->n; i++) {
        if (tr->tasks[i].stat_fd >= 0)
            close(tr->tasks[i].stat_fd);
        if (tr->tasks[i].schedstat_fd >= 0)
            close(tr->tasks[i].schedstat_fd);
    }
    pf_proc_free_root(p);
}

/* proc_impl: what the modules of the ptrace layer share (proc.c, the core;
 * proc_launch.c; proc_tls.c; proc_files.c; proc_seize_failure.c). Private
 * to src/target/: nothing outside them sees a struct task. */
#ifndef PYFLAME_PROC_IMPL_H
#define PYFLAME_PROC_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"
#include "pyflame/target/proc.h"

#define SEIZE_OPTIONS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)
/* --subprocesses: new processes are seized by the kernel as they are born. */
#define FOLLOW_OPTIONS (SEIZE_OPTIONS | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK)
/* Non-blocking polls for a stop before a blocking wait (about 1 us each). */
#define SPIN_POLLS 64

struct task {
    pid_t tid;
    struct pf_proc *proc; /* the process it is a thread of */
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

/* Everything traced in one run: one process, or with --subprocesses a
 * tree of them. One tracer, because waitpid(-1) reports the events of
 * every tracee to whoever asks: they are dispatched here to the process
 * each thread belongs to. */
struct pf_tracer {
    struct task *tasks; /* every traced thread, of every process */
    size_t n, cap;
    struct pf_proc **procs; /* every process, the root first */
    size_t nprocs, capprocs;
    size_t handed_out; /* procs[1 .. handed_out) were returned by pf_proc_next_new */
    bool follow;       /* --subprocesses */
    long options;      /* PTRACE_SEIZE options */
};

struct pf_proc {
    struct pf_tracer *tr;
    pid_t pid;
    /* The process that fork()ed it while traced, while it has not executed
     * a new program: until then it is a copy of that one's image. */
    struct pf_proc *forked_from;
    /* A vfork child that has not executed yet: it runs in its parent's
     * memory, and what it would show is the parent's. */
    bool vforked;
    bool launched;
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

/* The task of tid, of any process, or NULL. */
struct task *pf_proc_find(struct pf_proc *p, pid_t tid);
/* The task of tid, added to p if new; NULL when out of memory. May move
 * the task array: task pointers taken before it are stale. */
struct task *pf_proc_add(struct pf_proc *p, pid_t tid);
/* Forget tid (it exited), closing its cached files. */
void pf_proc_drop(struct pf_proc *p, pid_t tid);
/* A new process record in p's tracer (not seized here), or NULL. */
struct pf_proc *pf_proc_new_in(struct pf_tracer *tr, pid_t pid);
/* A tracer and its root process, pid; NULL when out of memory. */
struct pf_proc *pf_proc_new_root(pid_t pid, bool follow);
/* Free a root's tracer without detaching: nothing of it is traced. */
void pf_proc_free_root(struct pf_proc *root);
/* PTRACE_CONT with sig (the target's signal, or 0). */
void pf_proc_cont(struct task *t, int sig);
/* Interpret one wait status of tid. With want_stop, a stop of this thread
 * is kept for the caller (HELD, EXECED); otherwise every stop is resumed as
 * the target would have continued without us. */
enum outcome pf_proc_handle(struct pf_proc *p, pid_t tid, int status, bool want_stop);
/* Read a stopped thread's TLS base into t (proc_tls.c). */
void pf_proc_read_tls(struct task *t);
/* The error and message for a failed PTRACE_SEIZE of pid: who or what
 * forbids it, and what to do (proc_seize_failure.c). */
pf_err pf_proc_explain_seize_failure(pid_t pid, int errnum, struct pf_diag *diag);

#endif

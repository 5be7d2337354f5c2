/* proc: ptrace. Seizes every thread of the target once (PTRACE_SEIZE, never
 * PTRACE_ATTACH, so no SIGSTOP is ever sent), follows new threads with
 * PTRACE_O_TRACECLONE, stops and resumes single threads for a sample,
 * re-injects every signal the target receives, keeps job-control stops
 * stopped (PTRACE_LISTEN), and detaches. It does not read Python memory.
 *
 * With `follow` (--subprocesses) it traces a process tree: every
 * descendant at attach (from /proc), and every process born after
 * (PTRACE_O_TRACEFORK/VFORK), each a struct pf_proc of its own that
 * pf_proc_next_new hands out. The one given by attach or launch is the
 * root: pf_proc_wait and pf_proc_detach take it and act on the whole tree.
 *
 * The caller must keep SIGCHLD blocked: pf_proc_wait waits for it with
 * sigtimedwait. */
#ifndef PYFLAME_PROC_H
#define PYFLAME_PROC_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/proc.h");

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "pyflame/base/error.h"

struct pf_proc;

/* Seize every thread of pid (and with follow, of its descendants). */
pf_err pf_proc_attach(pid_t pid, bool follow, struct pf_diag *diag, struct pf_proc **out);

/* Start argv[0] (searched in PATH) as a traced child; returns once it has
 * executed the program. With stdout_to_stderr, the child's stdout is its
 * stderr, so the profile on our stdout stays clean. */
pf_err pf_proc_launch(char *const argv[], bool stdout_to_stderr, bool follow,
                      struct pf_diag *diag, struct pf_proc **out);

/* follow: the next process of the tree not handed out yet (found at
 * attach, or born since), or NULL. Owned by the root: valid until
 * pf_proc_release or pf_proc_detach. */
struct pf_proc *pf_proc_next_new(struct pf_proc *root);

/* Whether p has exited; whether it has executed a new program since the
 * last pf_proc_exec_seen_ok (with follow, an exec does not end the run:
 * the process is read anew). */
bool pf_proc_gone(const struct pf_proc *p);
bool pf_proc_execed(const struct pf_proc *p);

/* follow: the live process whose fork() made p while traced, as long as p
 * has not executed a new program (its memory is a copy of that one's, at
 * the same addresses); else NULL. Not for vfork: a vfork child borrows
 * its parent's memory. */
struct pf_proc *pf_proc_forked_from(const struct pf_proc *p);

/* follow: p is a vfork child that has not executed yet: it runs in its
 * parent's memory, so reading it would show the parent. */
bool pf_proc_borrows_memory(const struct pf_proc *p);

/* follow: done with p, which has exited: its record is freed. No-op for
 * the root or a live process. */
void pf_proc_release(struct pf_proc *p);

pid_t pf_proc_pid(const struct pf_proc *p);

/* Acknowledge an exec reported as PF_ERR_EXEC, to go on tracing the new
 * program (launch mode, before the interpreter appears: `env`, shell
 * wrappers and pyenv shims exec the real interpreter). */
void pf_proc_exec_seen_ok(struct pf_proc *p);

/* Handle pending ptrace events, then wait for more until `deadline`
 * (CLOCK_MONOTONIC), a signal to us, or an event. Returns PF_ERR_EXITED once
 * the target is gone and PF_ERR_EXEC once it has executed a new program.
 * With follow: PF_ERR_EXITED once a launched root is gone, or, attached,
 * every process of the tree; never PF_ERR_EXEC. */
pf_err pf_proc_wait(struct pf_proc *p, const struct timespec *deadline);

/* Handle the ptrace events already reported, without waiting: a stop that
 * came after pf_proc_stop_threads gave up on it is resumed here. */
void pf_proc_poll(struct pf_proc *p);

/* Stop one thread (PTRACE_INTERRUPT and wait for the stop). On PF_OK the
 * thread is stopped and the caller must call pf_proc_resume_thread, on every
 * path. PF_ERR_NOPROC: the thread is gone. PF_ERR_EXEC: the process execed. */
pf_err pf_proc_stop_thread(struct pf_proc *p, pid_t tid);
pf_err pf_proc_resume_thread(struct pf_proc *p, pid_t tid);

/* Stop several threads together: PTRACE_INTERRUPT every one, then wait
 * for all the stops, so that n threads cost one round trip, not n.
 * stopped[i] is PF_STOP_HELD when tids[i] is now stopped (the caller must
 * resume it), PF_STOP_GONE when the thread is gone, PF_STOP_TOO_SLOW when
 * it had not stopped by `deadline` (CLOCK_MONOTONIC; NULL: no limit): a
 * thread that waits for a CPU stops only once it gets one, and a sampler
 * blocked on it would take its next ticks late. Such a thread is resumed
 * by pf_proc_wait as soon as its stop comes. A thread listed twice is
 * interrupted once: callers pass distinct threads. PF_ERR_EXEC: the
 * process execed (no thread of the set is left stopped). */
enum { PF_STOP_GONE = 0, PF_STOP_HELD = 1, PF_STOP_TOO_SLOW = 3 };
pf_err pf_proc_stop_threads(struct pf_proc *p, const pid_t *tids, size_t n, unsigned char *stopped,
                            const struct timespec *deadline);

/* The thread whose TLS base (x86-64 fs_base, the pthread_t of glibc) is
 * `tls`, or 0. Threads whose TLS is not known yet are stopped once, briefly,
 * to read it. */
pid_t pf_proc_tid_by_tls(struct pf_proc *p, uint64_t tls);

/* Is tid a live thread of p (not of another process of the tree)? */
bool pf_proc_has_thread(const struct pf_proc *p, pid_t tid);

/* The kernel's scheduling state of a thread ('R' running, 'S' sleeping,
 * 'D' disk sleep, 'T'/'t' stopped...), from /proc/PID/task/TID/stat. */
pf_err pf_proc_thread_state(struct pf_proc *p, pid_t tid, char *state);

/* How many times the thread has been put on a CPU (the third field of
 * /proc/PID/task/TID/schedstat). Unchanged across an interval, with the
 * thread sleeping at both ends, means it did not run in between. */
pf_err pf_proc_thread_runs(struct pf_proc *p, pid_t tid, uint64_t *runs);

/* The thread's OS name (comm), read once and cached. */
pf_err pf_proc_thread_name(struct pf_proc *p, pid_t tid, char *buf, size_t cap);

size_t pf_proc_thread_count(const struct pf_proc *p);

/* Whether the whole target is in a job-control stop (SIGSTOP etc.). */
bool pf_proc_group_stopped(const struct pf_proc *p);

/* Raw wait status of the target's exit, if we saw it. */
bool pf_proc_exit_status(const struct pf_proc *p, int *status);

/* Detach from every thread of every process, leaving each as it was
 * (running, or stopped by job control), re-injecting any signal we held.
 * Then free. Takes the root; accepts NULL. */
void pf_proc_detach(struct pf_proc *p);

#endif

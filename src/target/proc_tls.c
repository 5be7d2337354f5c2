/* proc_tls: which thread has a given TLS base (x86-64 fs_base: glibc's
 * pthread_t), for mapping a Python thread state to its OS thread when the
 * interpreter does not record the thread id (proc.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/user.h>

#include "proc_impl.h"

void pf_proc_read_tls(struct task *t)
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

pid_t pf_proc_tid_by_tls(struct pf_proc *p, uint64_t tls)
{
    struct pf_tracer *tr = p->tr;
    /* Only p's threads: a forked child's threads sit at the addresses of
     * its parent's. */
    for (size_t i = 0; i < tr->n; i++)
        if (tr->tasks[i].proc == p && tr->tasks[i].tls_known && tr->tasks[i].tls == tls)
            return tr->tasks[i].tid;
    /* Learn the TLS base of threads we have not seen stopped yet (threads
     * that existed when we attached). Each is stopped once, for one read. */
    pid_t *unknown = malloc(tr->n * sizeof(*unknown) + 1);
    size_t nunknown = 0;
    pid_t found = 0;
    if (!unknown)
        return 0;
    for (size_t i = 0; i < tr->n; i++)
        if (tr->tasks[i].proc == p && !tr->tasks[i].tls_known && !tr->tasks[i].tls_tried &&
            !tr->tasks[i].group_stop)
            unknown[nunknown++] = tr->tasks[i].tid;
    for (size_t i = 0; i < nunknown && !found; i++) {
        if (pf_proc_stop_thread(p, unknown[i]) != PF_OK)
            continue;
        struct task *t = pf_proc_find(p, unknown[i]);
        if (t) {
            t->tls_tried = true;
            if (!t->tls_known)
                pf_proc_read_tls(t);
            if (t->tls_known && t->tls == tls)
                found = t->tid;
        }
        pf_proc_resume_thread(p, unknown[i]);
    }
    free(unknown);
    return found;
}

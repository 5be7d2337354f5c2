/* proc_seize_failure: why PTRACE_SEIZE was refused, said so that the user
 * knows what to do. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "pyflame/target/procstat.h"
#include "proc_impl.h"

pf_err pf_proc_explain_seize_failure(pid_t pid, int errnum, struct pf_diag *diag)
{
    char path[64];
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
    if (!pf_procstatus_value(pid, "TracerPid", &tracer))
        tracer = 0;
    if (!pf_procstatus_value(pid, "Uid", &uid))
        uid = -1;
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

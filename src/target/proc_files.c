/* proc_files: a traced thread's /proc/PID/task/TID files (stat,
 * schedstat, comm), read through descriptors cached per thread, because
 * --threads reads them at every tick (proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pyflame/target/procstat.h"
#include "proc_impl.h"

/* pread a /proc/PID/task/TID file through a cached descriptor. */
static pf_err read_task_file(const struct task *t, int *fd, const char *name, char *buf, size_t cap)
{
    if (*fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)t->proc->pid, (int)t->tid, name);
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
    struct task *t = pf_proc_find(p, tid);
    char buf[512];
    pf_err err;

    if (!t)
        return PF_ERR_NOPROC;
    if ((err = read_task_file(t, &t->stat_fd, "stat", buf, sizeof(buf))))
        return err;
    return pf_procstat_state(buf, state) ? PF_OK : PF_ERR_CORRUPT;
}

pf_err pf_proc_thread_runs(struct pf_proc *p, pid_t tid, uint64_t *runs)
{
    struct task *t = pf_proc_find(p, tid);
    char buf[128];
    unsigned long long run_ns, wait_ns, count;
    pf_err err;

    if (!t)
        return PF_ERR_NOPROC;
    if ((err = read_task_file(t, &t->schedstat_fd, "schedstat", buf, sizeof(buf))))
        return err;
    /* "run_ns wait_ns timeslices" (Documentation/scheduler/sched-stats.rst) */
    if (sscanf(buf, "%llu %llu %llu", &run_ns, &wait_ns, &count) != 3)
        return PF_ERR_CORRUPT;
    *runs = count;
    return PF_OK;
}

pf_err pf_proc_thread_name(struct pf_proc *p, pid_t tid, char *buf, size_t cap)
{
    struct task *t = pf_proc_find(p, tid);

    if (!t)
        return PF_ERR_NOPROC;
    if (!t->comm[0]) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)t->proc->pid, (int)tid);
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

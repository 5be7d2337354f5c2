/* The live backend of pf_mem: process_vm_readv(2), which copies without
 * stopping or writing to the target, falling back to pread on /proc/PID/mem
 * where the syscall is missing (ENOSYS, some seccomp profiles). */
#include "pyflame/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

struct pid_mem {
    pid_t pid;
    int mem_fd; /* /proc/PID/mem, opened on first fallback */
    int use_fd;
};

static pf_err fd_read(struct pid_mem *pm, uint64_t addr, void *dst, size_t len)
{
    if (pm->mem_fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)pm->pid);
        pm->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (pm->mem_fd < 0)
            return pf_err_from_errno(errno);
    }
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(pm->mem_fd, (char *)dst + done, len - done, (off_t)(addr + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 || errno == EIO ? PF_ERR_FAULT : pf_err_from_errno(errno);
        done += (size_t)r;
    }
    return PF_OK;
}

static pf_err pid_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
    struct pid_mem *pm = ctx;
    size_t done = 0;

    if (pm->use_fd)
        return fd_read(pm, addr, dst, len);
    /* process_vm_readv may stop at a page boundary (a partial read); loop
     * until the whole range is copied or a page is really unmapped. */
    while (done < len) {
        struct iovec local = {(char *)dst + done, len - done};
        struct iovec remote = {(void *)(uintptr_t)(addr + done), len - done};
        ssize_t r = process_vm_readv(pm->pid, &local, 1, &remote, 1, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS) {
                pm->use_fd = 1;
                return fd_read(pm, addr + done, (char *)dst + done, len - done);
            }
            return errno == EFAULT ? PF_ERR_FAULT : pf_err_from_errno(errno);
        }
        if (r == 0)
            return PF_ERR_FAULT;
        done += (size_t)r;
    }
    return PF_OK;
}

static pf_err pid_readv(void *ctx, const struct pf_iov *iov, size_t n, unsigned char *ok)
{
    struct pid_mem *pm = ctx;
    struct iovec local[PF_READV_BATCH], remote[PF_READV_BATCH];
    size_t total = 0;

    if (n == 0)
        return PF_OK;
    if (n > PF_READV_BATCH || pm->use_fd)
        goto one_by_one;
    for (size_t i = 0; i < n; i++) {
        local[i] = (struct iovec){iov[i].dst, iov[i].len};
        remote[i] = (struct iovec){(void *)(uintptr_t)iov[i].addr, iov[i].len};
        total += iov[i].len;
    }
    ssize_t r = process_vm_readv(pm->pid, local, n, remote, n, 0);
    if (r == (ssize_t)total) {
        for (size_t i = 0; i < n; i++)
            ok[i] = 1;
        return PF_OK;
    }
    if (r < 0 && errno == ESRCH)
        return PF_ERR_NOPROC;
    /* Some piece faulted: the syscall stops at the first bad piece, so take
     * the others one at a time. Rare (only when the target changed under us). */
one_by_one:
    for (size_t i = 0; i < n; i++) {
        pf_err err = pid_read(pm, iov[i].addr, iov[i].dst, iov[i].len);
        if (err == PF_ERR_NOPROC)
            return err;
        ok[i] = err == PF_OK;
    }
    return PF_OK;
}

static void pid_close(void *ctx)
{
    struct pid_mem *pm = ctx;
    if (pm->mem_fd >= 0)
        close(pm->mem_fd);
    free(pm);
}

static const struct pf_mem_ops PID_OPS = {
    .read = pid_read,
    .readv = pid_readv,
    .close = pid_close,
};

pf_err pf_mem_open_pid(pid_t pid, struct pf_mem *out)
{
    struct pid_mem *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return PF_ERR_NOMEM;
    pm->pid = pid;
    pm->mem_fd = -1;
    *out = (struct pf_mem){.ops = &PID_OPS, .ctx = pm};
    return PF_OK;
}

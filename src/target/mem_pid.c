/* The live backend of pf_mem: process_vm_readv(2), which copies without
 * stopping or writing to the target, falling back to pread on /proc/PID/mem
 * where the syscall is missing (ENOSYS, some seccomp profiles). */
#include "pyflame/target/mem.h"

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
    size_t i = 0;

    if (n > PF_READV_BATCH || pm->use_fd) {
        for (i = 0; i < n; i++) {
            pf_err err = pid_read(pm, iov[i].addr, iov[i].dst, iov[i].len);
            if (err == PF_ERR_NOPROC)
                return err;
            ok[i] = err == PF_OK;
        }
        return PF_OK;
    }
    /* The kernel copies piece after piece and stops at the first one it
     * cannot read, returning the bytes copied so far. So on a short count:
     * the pieces before are whole, the one it stopped in is read alone
     * (it may be readable and merely cut at a page boundary, see pid_read),
     * and the batch goes on after it: a speculative read that faults costs
     * two more system calls, not one per piece. */
    while (i < n) {
        size_t total = 0, k = n - i;
        for (size_t j = 0; j < k; j++) {
            local[j] = (struct iovec){iov[i + j].dst, iov[i + j].len};
            remote[j] = (struct iovec){(void *)(uintptr_t)iov[i + j].addr, iov[i + j].len};
            total += iov[i + j].len;
        }
        ssize_t r = process_vm_readv(pm->pid, local, k, remote, k, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ESRCH)
            return PF_ERR_NOPROC;
        if (r < 0 && errno == ENOSYS) {
            pm->use_fd = 1;
            return pid_readv(ctx, iov + i, n - i, ok + i);
        }
        if (r == (ssize_t)total) {
            for (size_t j = i; j < n; j++)
                ok[j] = 1;
            return PF_OK;
        }
        size_t done = r > 0 ? (size_t)r : 0;
        while (i < n && done >= iov[i].len) {
            done -= iov[i].len;
            ok[i++] = 1;
        }
        if (i == n)
            break;
        pf_err err = pid_read(pm, iov[i].addr, iov[i].dst, iov[i].len);
        if (err == PF_ERR_NOPROC)
            return err;
        ok[i] = err == PF_OK;
        i++;
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

/* mem: the remote-memory reader interface. Everything we learn about the
 * target comes through here, so decoders can run against an in-memory image
 * in unit tests and fuzzers (image.h) exactly as against a live process
 * (mem_pid.c). It owns no knowledge of CPython. */
#ifndef PYFLAME_MEM_H
#define PYFLAME_MEM_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/mem.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"
#include "pyflame/base/limits.h"

/* One piece of a batched read. */
struct pf_iov {
    uint64_t addr;
    void *dst;
    size_t len;
};

struct pf_mem_ops {
    /* Copy exactly len bytes from remote addr. A short read is PF_ERR_FAULT,
     * never a partial success. */
    pf_err (*read)(void *ctx, uint64_t addr, void *dst, size_t len);
    /* Several reads in one go (one syscall for a live process). ok[i] says
     * whether piece i was read whole; returns PF_OK unless the whole batch
     * failed for a reason other than a fault (e.g. the process is gone). */
    pf_err (*readv)(void *ctx, const struct pf_iov *iov, size_t n, unsigned char *ok);
    /* Optional: whether a read of [addr, addr+len) would be served without
     * a system call (a prefetched copy covers it). NULL means never. */
    bool (*has)(void *ctx, uint64_t addr, size_t len);
    void (*close)(void *ctx);
};

struct pf_mem {
    const struct pf_mem_ops *ops;
    void *ctx;
    uint64_t reads; /* syscalls issued, for --stats */
};

static inline pf_err pf_mem_read(struct pf_mem *m, uint64_t addr, void *dst, size_t len)
{
    if (addr == 0)
        return PF_ERR_FAULT; /* NULLs are common in a live target */
    if (len > PF_MAX_READ || addr + len < addr)
        return PF_ERR_CORRUPT; /* len was probably read from the target */
    m->reads++;
    return m->ops->read(m->ctx, addr, dst, len);
}

/* Pieces sent to the kernel in one process_vm_readv (IOV_MAX). */
#define PF_READV_BATCH 1024

/* See pf_mem_ops.has. */
static inline bool pf_mem_has(const struct pf_mem *m, uint64_t addr, size_t len)
{
    return m->ops->has && m->ops->has(m->ctx, addr, len);
}

/* Batched read; pieces with a NULL, overflowing or oversized address are
 * marked not ok without being sent. */
pf_err pf_mem_readv(struct pf_mem *m, const struct pf_iov *iov, size_t n, unsigned char *ok);

/* The live backend: process_vm_readv, falling back to /proc/PID/mem. */
pf_err pf_mem_open_pid(pid_t pid, struct pf_mem *out);

/* Accepts a zeroed struct. */
void pf_mem_close(struct pf_mem *m);

#endif

#include "pyflame/target/mem.h"

#include <stdlib.h>

pf_err pf_mem_readv(struct pf_mem *m, const struct pf_iov *iov, size_t n, unsigned char *ok)
{
    /* Filter out pieces that cannot be valid before sending the batch, so one
     * NULL pointer read from the target does not fail the others. */
    struct pf_iov keep[PF_READV_BATCH];
    size_t idx[PF_READV_BATCH];
    size_t done = 0;

    while (done < n) {
        size_t k = 0, i;
        for (i = done; i < n && k < PF_READV_BATCH; i++) {
            ok[i] = 0;
            if (iov[i].addr == 0 || iov[i].len > PF_MAX_READ || iov[i].addr + iov[i].len < iov[i].addr)
                continue;
            if (iov[i].len == 0) {
                ok[i] = 1;
                continue;
            }
            keep[k] = iov[i];
            idx[k] = i;
            k++;
        }
        if (k > 0) {
            unsigned char kok[PF_READV_BATCH];
            m->reads++;
            pf_err err = m->ops->readv(m->ctx, keep, k, kok);
            if (err)
                return err;
            for (size_t j = 0; j < k; j++)
                ok[idx[j]] = kok[j];
        }
        done = i;
    }
    return PF_OK;
}

void pf_mem_close(struct pf_mem *m)
{
    if (m && m->ops && m->ops->close)
        m->ops->close(m->ctx);
    if (m) {
        m->ops = NULL;
        m->ctx = NULL;
    }
}

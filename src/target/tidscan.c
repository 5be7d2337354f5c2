/* tidscan: the TID's offset in glibc's struct pthread (tidscan.h). */
#include "pyflame/target/tidscan.h"

#include <string.h>

uint32_t pf_tidscan_offset(const uint8_t *blocks, size_t n, bool (*is_live)(void *ctx, pid_t tid),
                           void *ctx)
{
    if (n == 0)
        return 0;
    for (uint32_t off = 8; off + 4 <= PF_TIDSCAN_LEN; off += 4) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++) {
            const uint8_t *b = blocks + i * PF_TIDSCAN_LEN;
            int32_t v;
            uint64_t word;
            memcpy(&v, b + off, 4);
            memcpy(&word, b + off - 4, 8);
            all = v > 0 && is_live(ctx, v);
            /* The upper half of a user-space pointer can look like a TID. */
            if (off % 8 == 4 && (uint32_t)word != 0 && word >> 32 == (uint32_t)v)
                all = false;
            for (size_t j = 0; j < i && all; j++)
                all = memcmp(blocks + j * PF_TIDSCAN_LEN + off, &v, 4) != 0;
        }
        if (all)
            return off;
    }
    return 0;
}

/* Fuzz target: the line-table decoders (linetable.c), every format.
 *
 * Input: u8 kind (mod 4 picks lnotab-2.7, lnotab-3.6, linetable-3.10 or
 * locations-3.11), i32 co_firstlineno, i64 instruction offset (both
 * little-endian), then the table. The table is the tail of libFuzzer's own
 * exact-size buffer, so reading one byte past it is an ASan report. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_image.h"
#include "pyflame/cpython/linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pf_err decode(enum pf_linetable_kind kind, const uint8_t *t, size_t len, int first,
                     int64_t offset, int *line)
{
    int l = 12345, again = 54321;
    pf_err err = pf_linetable_line(kind, t, len, first, offset, &l);

    FUZZ_CHECK(err == PF_OK || err == PF_ERR_CORRUPT || err == PF_ERR_NOTFOUND);
    /* lnotab covers every offset: past the end it keeps the last line. */
    if (kind <= PF_LT_LNOTAB_36)
        FUZZ_CHECK(err != PF_ERR_NOTFOUND);
    if (err) {
        FUZZ_CHECK(l == 12345); /* out-parameters only on success */
        return err;
    }
    if (offset < 0)
        FUZZ_CHECK(l == first);
    /* Pure: the same question gets the same answer. */
    FUZZ_CHECK(pf_linetable_line(kind, t, len, first, offset, &again) == PF_OK && again == l);
    *line = l;
    return PF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 13)
        return 0;
    enum pf_linetable_kind kind = (enum pf_linetable_kind)(PF_LT_LNOTAB_27 + data[0] % 4);
    int32_t first;
    int64_t offset;
    memcpy(&first, data + 1, 4);
    memcpy(&offset, data + 5, 8);
    const uint8_t *t = data + 13;
    size_t len = size - 13;
    int line;

    /* The offset asked for, then the edges: the first instruction, the
     * odd byte after it, before the start, and the farthest offset. */
    const int64_t offsets[] = {offset, 0, 1, -1, INT64_MAX, offset / 2};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++)
        decode(kind, t, len, first, offsets[i], &line);

    /* An empty table: lnotab answers firstlineno, the others not found. */
    if (decode(kind, len ? t : NULL, 0, first, offset, &line) == PF_OK && offset >= 0)
        FUZZ_CHECK(kind <= PF_LT_LNOTAB_36 && line == first);
    return 0;
}

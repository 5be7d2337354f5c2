/* Fuzz target: CPython 3.13+'s _Py_DebugOffsets (debug_offsets.c), the
 * offsets a target publishes about itself, then a whole sample read with
 * the layout built from them (fuzz_image.h, fuzz_sample). From 3.13 on the
 * layout itself comes from target memory, so every size and offset the
 * readers use is hostile too.
 *
 * root0 is _PyRuntime, where the offsets start; root1 is _PyRuntime's size
 * from its symbol (0: unknown); with flag bit 1 set, the header's minor is
 * forced as --abi=3.MINOR forces it. */
#include <string.h>

#include "fuzz_image.h"
#include "pyflame/cpython/debug_offsets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FORCE_MINOR = 1u << 1 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t head[PF_DEBUG_OFFSETS_READ];
    struct fuzz_input in;
    struct pf_mem mem;
    struct pf_debug_offsets d;
    struct pf_diag diag = {{0}};
    struct pf_target t;

    if (!fuzz_input_parse(data, size, &in))
        return 0;
    FUZZ_CHECK(pf_mem_open_image(in.img, &mem) == PF_OK);
    if (pf_mem_read(&mem, in.root0, head, sizeof(head)) != PF_OK)
        goto out;

    unsigned force = in.flags & FORCE_MINOR ? in.minor : 0;
    pf_err err = pf_debug_offsets_parse(head, sizeof(head), force, in.root1, &diag, &d);
    FUZZ_CHECK(err == PF_OK || err == PF_ERR_NOTFOUND || err == PF_ERR_UNSUPPORTED ||
               err == PF_ERR_CORRUPT);
    FUZZ_CHECK(!err || diag.msg[0] != '\0');
    FUZZ_CHECK(err != PF_ERR_NOTFOUND || !pf_debug_offsets_present(head, sizeof(head)));
    if (err)
        goto out;

    /* The base discovery uses (interp.c, choose_layout). */
    const struct pf_layout *base = pf_layout_debug_base(d.major, d.minor);
    if (!base)
        goto out;
    memset(&t, 0, sizeof(t));
    err = pf_debug_offsets_layout(&d, base, &diag, &t.own_layout);
    FUZZ_CHECK(err == PF_OK || err == PF_ERR_CORRUPT);
    if (err)
        goto out;
    /* The readers copy each struct prefix into a PF_MAX_STRUCT buffer and
     * refuse a larger one; whatever passed validation, they must survive
     * it. A table compared with itself differs in nothing. */
    FUZZ_CHECK(pf_debug_offsets_diff(&t.own_layout, &t.own_layout, NULL, 0) == 0);
    t.layout = &t.own_layout;
    t.runtime_addr = in.root0;
    t.types = in.types;

    struct pf_code_cache *codes = NULL;
    struct pf_intern *names = NULL;
    uint64_t holder;
    size_t n;
    FUZZ_CHECK(pf_code_cache_new(64, &codes) == PF_OK);
    FUZZ_CHECK(pf_intern_new(&names) == PF_OK);
    fuzz_sample(&mem, &t, codes, names, &holder, &n);
    pf_intern_free(names);
    pf_code_cache_free(codes);
out:
    pf_mem_close(&mem);
    fuzz_input_free(&in);
    return 0;
}

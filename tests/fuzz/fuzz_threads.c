/* Fuzz target: a whole sample (interp.c: main interpreter, GIL holder,
 * thread list; then each stack as fuzz_frame reads it) over a fake process
 * built from the input (fuzz_image.h). The header's version picks the
 * layout; root0 is _PyRuntime (3.7+) or &interp_head (2.7, 3.6), root1
 * &_PyThreadState_Current (2.7, 3.6). */
#include <string.h>

#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    struct pf_mem mem;
    struct pf_code_cache *codes = NULL;
    struct pf_intern *names = NULL;
    struct pf_target t;
    uint64_t holder;
    size_t n;

    if (!fuzz_input_parse(data, size, &in))
        return 0;
    memset(&t, 0, sizeof(t));
    t.layout = fuzz_layout(in.major, in.minor);
    if (t.layout->runtime.size)
        t.runtime_addr = in.root0;
    else
        t.interp_head_addr = in.root0;
    t.tstate_current_addr = in.root1;
    t.types = in.types;

    FUZZ_CHECK(pf_mem_open_image(in.img, &mem) == PF_OK);
    FUZZ_CHECK(pf_code_cache_new(64, &codes) == PF_OK);
    FUZZ_CHECK(pf_intern_new(&names) == PF_OK);
    fuzz_sample(&mem, &t, codes, names, &holder, &n);
    pf_intern_free(names);
    pf_code_cache_free(codes);
    pf_mem_close(&mem);
    fuzz_input_free(&in);
    return 0;
}

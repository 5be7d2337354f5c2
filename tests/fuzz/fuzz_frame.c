/* Fuzz target: one thread's stack as the sampler reads it (frame.c walk,
 * code.c lookup and cache, pystr.c names, linetable.c lines) over a fake
 * process built from the input (fuzz_image.h), with every layout.
 *
 * root0 is the thread state. One code cache serves all layouts of an input,
 * as in a long run where a freed code object's address is reused: entries
 * must be revalidated, never trusted. */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    struct pf_mem mem;
    struct pf_code_cache *codes = NULL;
    struct pf_intern *names = NULL;
    struct fuzz_stack_stats st;

    if (!fuzz_input_parse(data, size, &in))
        return 0;
    FUZZ_CHECK(pf_mem_open_image(in.img, &mem) == PF_OK);
    FUZZ_CHECK(pf_code_cache_new(64, &codes) == PF_OK);
    FUZZ_CHECK(pf_intern_new(&names) == PF_OK);
    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        fuzz_read_stack(&mem, L, &in.types, codes, names, in.root0, &st);
        /* Twice: the second walk runs on a warm cache and must agree. */
        struct fuzz_stack_stats again;
        fuzz_read_stack(&mem, L, &in.types, codes, names, in.root0, &again);
        FUZZ_CHECK(again.frames == st.frames && again.decoded == st.decoded &&
                   again.truncated == st.truncated && again.err == st.err);
    }
    pf_intern_free(names);
    pf_code_cache_free(codes);
    pf_mem_close(&mem);
    fuzz_input_free(&in);
    return 0;
}

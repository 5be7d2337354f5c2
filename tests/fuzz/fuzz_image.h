/* fuzz_image: the input format of the fuzz targets that read a fake process
 * (pystr, frame, threads), and the sampler's walk over it, shared with the
 * seed tool that records the same walk in a real interpreter.
 *
 * An input is a header, then segments of memory separated by FUZZ_SEG_MAGIC:
 *
 *   u8  flags        FUZZ_TYPES: check ob_type against the three types below
 *   u8  major, minor the layout, for targets that use one (threads)
 *   u64 root0        where the walk starts: the string object (pystr), the
 *                    thread state (frame), _PyRuntime or &interp_head (threads)
 *   u64 root1        &_PyThreadState_Current (threads); a cap (pystr)
 *   u64 type_code, type_str, type_bytes
 *   then: u64 addr, bytes... [ "SEG!" u64 addr, bytes... ]...
 *
 * Integers are little-endian. Each segment is mapped at its address; one
 * that is empty, wraps around, or overlaps an earlier one is dropped. A
 * delimiter rather than lengths keeps the format robust to the fuzzer's
 * byte-level mutations: inserting a byte moves one segment's data, not
 * every later segment. */
#ifndef PYFLAME_FUZZ_IMAGE_H
#define PYFLAME_FUZZ_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pyflame/cpython/code.h"
#include "pyflame/cpython/frame.h"
#include "pyflame/target/image.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/target/mem.h"

#define FUZZ_SEG_MAGIC "SEG!"
#define FUZZ_SEG_MAGIC_LEN 4
#define FUZZ_HEADER_LEN 43
#define FUZZ_MAX_SEGMENTS 256
#define FUZZ_MAX_SEGMENT (1u << 20)

enum { FUZZ_TYPES = 1u << 0 };

/* A broken invariant is a finding: print it and abort, which libFuzzer
 * reports as a crash with the input that caused it. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

struct fuzz_input {
    uint8_t flags, major, minor;
    uint64_t root0, root1;
    struct pf_pytypes types; /* zero unless FUZZ_TYPES */
    struct pf_image *img;
    size_t segments; /* how many were mapped */
};

/* Parse data into a fresh image. Returns false for inputs too short to have
 * a header (or on allocation failure); *in is then untouched. */
bool fuzz_input_parse(const uint8_t *data, size_t size, struct fuzz_input *in);
void fuzz_input_free(struct fuzz_input *in);

/* The layout with this version, or one picked by the bytes when there is
 * none (every input runs on some layout). */
const struct pf_layout *fuzz_layout(uint8_t major, uint8_t minor);

/* Writing inputs (the seed tool): the header, then one segment per call. */
void fuzz_write_header(FILE *f, uint8_t flags, uint8_t major, uint8_t minor, uint64_t root0,
                       uint64_t root1, const struct pf_pytypes *types);
void fuzz_write_segment(FILE *f, bool first, uint64_t addr, const void *bytes, size_t len);

/* What a walk did, for invariants and for the seed tool's messages. */
struct fuzz_stack_stats {
    size_t frames;  /* records from pf_frame_walk */
    size_t decoded; /* frames whose code object and line were decoded */
    bool truncated;
    pf_err err; /* the first error, PF_OK if none */
};

/* One thread's stack as the sampler reads it (src/sample/sampler.c read_stack):
 * copy the thread state at tstate_addr, find the first frame, walk, read
 * every code header in one batch, look each code object up in the cache,
 * find its line and intern the frame. Checks the invariants the modules
 * promise (record counts within caps, names within PF_MAX_STRING...) and
 * aborts through FUZZ_CHECK when one breaks. */
void fuzz_read_stack(struct pf_mem *mem, const struct pf_layout *L, const struct pf_pytypes *types,
                     struct pf_code_cache *codes, struct pf_intern *names, uint64_t tstate_addr,
                     struct fuzz_stack_stats *st);

/* One sample of the target as the sampler takes it: the main interpreter,
 * the GIL holder, the thread list, and the stacks of the holder and of the
 * first few threads. Returns the first error (PF_OK if none); *holder and
 * *nthreads say what was found (0 when unknown). */
pf_err fuzz_sample(struct pf_mem *mem, const struct pf_target *t, struct pf_code_cache *codes,
                   struct pf_intern *names, uint64_t *holder, size_t *nthreads);

#endif

#include "fuzz_image.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"
#include "pyflame/cpython/linetable.h"

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(FILE *f, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        fputc((int)(v >> (8 * i) & 0xff), f);
}

bool fuzz_input_parse(const uint8_t *data, size_t size, struct fuzz_input *in)
{
    struct pf_image *img = NULL;
    size_t mapped = 0, pieces = 0;

    if (size < FUZZ_HEADER_LEN || pf_image_new(&img) != PF_OK)
        return false;

    const uint8_t *p = data + FUZZ_HEADER_LEN, *end = data + size;
    for (;;) {
        const uint8_t *next = memmem(p, (size_t)(end - p), FUZZ_SEG_MAGIC, FUZZ_SEG_MAGIC_LEN);
        const uint8_t *stop = next ? next : end;
        if (stop - p > 8) {
            uint64_t addr = le64(p);
            size_t len = (size_t)(stop - p) - 8;
            if (len > FUZZ_MAX_SEGMENT)
                len = FUZZ_MAX_SEGMENT;
            /* Overlapping or wrapping segments are refused by the image. */
            if (pf_image_map(img, addr, len) == PF_OK) {
                FUZZ_CHECK(pf_image_write(img, addr, p + 8, len) == PF_OK);
                mapped++;
            }
        }
        if (!next || ++pieces == FUZZ_MAX_SEGMENTS)
            break;
        p = next + FUZZ_SEG_MAGIC_LEN;
    }

    *in = (struct fuzz_input){
        .flags = data[0],
        .major = data[1],
        .minor = data[2],
        .root0 = le64(data + 3),
        .root1 = le64(data + 11),
        .img = img,
        .segments = mapped,
    };
    if (in->flags & FUZZ_TYPES)
        in->types = (struct pf_pytypes){le64(data + 19), le64(data + 27), le64(data + 35)};
    return true;
}

void fuzz_input_free(struct fuzz_input *in)
{
    pf_image_free(in->img);
    in->img = NULL;
}

const struct pf_layout *fuzz_layout(uint8_t major, uint8_t minor)
{
    const struct pf_layout *L = pf_layout_find(major, minor, 0);
    return L ? L : pf_layout_at((size_t)(major * 31u + minor) % pf_layout_count());
}

void fuzz_write_header(FILE *f, uint8_t flags, uint8_t major, uint8_t minor, uint64_t root0,
                       uint64_t root1, const struct pf_pytypes *types)
{
    fputc(flags, f);
    fputc(major, f);
    fputc(minor, f);
    put_le64(f, root0);
    put_le64(f, root1);
    put_le64(f, types ? types->code : 0);
    put_le64(f, types ? types->str : 0);
    put_le64(f, types ? types->bytes : 0);
}

void fuzz_write_segment(FILE *f, bool first, uint64_t addr, const void *bytes, size_t len)
{
    if (!first)
        fwrite(FUZZ_SEG_MAGIC, 1, FUZZ_SEG_MAGIC_LEN, f);
    put_le64(f, addr);
    fwrite(bytes, 1, len, f);
}

/* Reads one stack may issue, loosely: the thread state and _PyCFrame; at
 * most 2 * PF_MAX_DEPTH steps in each of the two walks (shims included);
 * the batched headers; and per code object on a cache miss, a handful for
 * each string (type, header, the rest of the header, inline data or the
 * legacy buffer) and for the line table: 13 today, 16 allowed. Anything past
 * this bound is a read loop nobody meant to write. */
#define MAX_READS_PER_STACK (2 + 4 * PF_MAX_DEPTH + PF_MAX_DEPTH / 64 + 1 + 16 * PF_MAX_DEPTH)

/* The walk --native uses (pf_frame_walk_runs) must see the same frames as
 * the plain one, with run ends between them, whenever neither was cut. */
static void check_runs(struct pf_mem *mem, const struct pf_layout *L, uint64_t frame,
                       const struct pf_frame_rec *recs, size_t n, bool truncated)
{
    static struct pf_frame_rec runs[PF_FRAME_RUNS_MAX];
    size_t m = 0xdead, k = 0;
    bool more = true;
    pf_err err = pf_frame_walk_runs(mem, L, frame, runs, PF_FRAME_RUNS_MAX, &m, &more);

    if (err) {
        FUZZ_CHECK(m == 0xdead && more);
        return;
    }
    FUZZ_CHECK(m <= PF_FRAME_RUNS_MAX);
    for (size_t i = 0; i < m; i++) {
        FUZZ_CHECK(runs[i].flags == 0 || runs[i].flags == PF_FRAME_RUN_END);
        if (runs[i].flags == PF_FRAME_RUN_END)
            FUZZ_CHECK(runs[i].code_addr == 0);
    }
    if (truncated || more)
        return;
    for (size_t i = 0; i < m; i++) {
        if (runs[i].flags)
            continue;
        FUZZ_CHECK(k < n && runs[i].code_addr == recs[k].code_addr &&
                   runs[i].offset == recs[k].offset && runs[i].owner == recs[k].owner);
        k++;
    }
    FUZZ_CHECK(k == n);
}

void fuzz_read_stack(struct pf_mem *mem, const struct pf_layout *L, const struct pf_pytypes *types,
                     struct pf_code_cache *codes, struct pf_intern *names, uint64_t tstate_addr,
                     struct fuzz_stack_stats *st)
{
    static struct pf_frame_rec recs[PF_MAX_DEPTH];
    static struct pf_iov iov[PF_MAX_DEPTH];
    static unsigned char ok[PF_MAX_DEPTH];
    static uint8_t headers[PF_MAX_DEPTH * PF_MAX_STRUCT];
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t frame = 0, reads0 = mem->reads;
    size_t n = 0, hsize = pf_code_header_size(L);
    bool truncated = false;
    pf_err err;

    *st = (struct fuzz_stack_stats){0};
    FUZZ_CHECK(L->tstate.size <= sizeof(ts) && hsize <= PF_MAX_STRUCT);
    if ((err = pf_mem_read(mem, tstate_addr, ts, L->tstate.size)) ||
        (err = pf_frame_first(mem, L, ts, L->tstate.size, &frame))) {
        st->err = err;
        return;
    }
    /* Out-parameters are written only on success: poison them first. */
    n = 0xdead;
    truncated = true;
    err = pf_frame_walk(mem, L, frame, recs, PF_MAX_DEPTH, &n, &truncated);
    if (err) {
        FUZZ_CHECK(n == 0xdead && truncated);
        st->err = err;
        return;
    }
    FUZZ_CHECK(n <= PF_MAX_DEPTH);
    FUZZ_CHECK(!truncated || frame != 0);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(recs[i].flags == 0);
    st->frames = n;
    st->truncated = truncated;
    check_runs(mem, L, frame, recs, n, truncated);

    for (size_t i = 0; i < n; i++)
        iov[i] = (struct pf_iov){recs[i].code_addr, headers + i * hsize, hsize};
    if (n && (err = pf_mem_readv(mem, iov, n, ok))) {
        st->err = err;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct pf_code *code = NULL;
        uint32_t id;
        int line = 12345;

        if (!ok[i]) {
            if (!st->err)
                st->err = PF_ERR_FAULT;
            continue; /* the sampler stops here; go on, to reach more code */
        }
        err = pf_code_get(codes, mem, L, types, names, recs[i].code_addr, headers + i * hsize,
                          hsize, &code);
        if (err) {
            FUZZ_CHECK(code == NULL);
            if (!st->err)
                st->err = err;
            continue;
        }
        FUZZ_CHECK(code != NULL && code->addr == recs[i].code_addr);
        FUZZ_CHECK(code->firstlineno >= 0 && code->firsttraceable >= 0);
        FUZZ_CHECK(code->linetable != NULL && code->linetable_len <= PF_MAX_LINETABLE);
        const char *file = pf_intern_text(names, code->file);
        const char *name = pf_intern_text(names, code->name);
        FUZZ_CHECK(file && name);
        FUZZ_CHECK(strlen(file) <= PF_MAX_STRING && strlen(name) <= PF_MAX_STRING);

        err = pf_code_line(code, L, recs[i].offset, &line);
        if (err) {
            FUZZ_CHECK(line == 12345);
            if (!st->err)
                st->err = err;
            continue;
        }
        /* intern.h: a frame's line is PF_LINE_NONE, PF_LINE_OMITTED or >= 0,
         * and only 3.10+ tables can say "no line". */
        if (!(line >= 0 || (line == PF_LINE_NONE && L->linetable >= PF_LT_LINETABLE_310)))
            fprintf(stderr, "layout %s, code 0x%llx, firstlineno %d, offset %lld: line %d\n",
                    pf_layout_name(L), (unsigned long long)code->addr, code->firstlineno,
                    (long long)recs[i].offset, line);
        FUZZ_CHECK(line >= 0 || (line == PF_LINE_NONE && L->linetable >= PF_LT_LINETABLE_310));
        struct pf_frame_text f = {
            .kind = PF_FRAME_PYTHON, .file = code->file, .name = code->name, .line = line};
        FUZZ_CHECK(pf_intern_frame(names, &f, &id) == PF_OK);
        st->decoded++;
    }
    FUZZ_CHECK(mem->reads - reads0 <= MAX_READS_PER_STACK);
}

/* Stacks walked per sample besides the GIL holder's: enough to reach every
 * code path, few enough to keep an input fast. */
#define SAMPLE_THREADS 4

pf_err fuzz_sample(struct pf_mem *mem, const struct pf_target *t, struct pf_code_cache *codes,
                   struct pf_intern *names, uint64_t *holder, size_t *nthreads)
{
    static uint64_t tstates[PF_MAX_THREADS];
    struct fuzz_stack_stats st;
    uint64_t interp = 0xdead, h = 0xdead;
    size_t n = 0xdead;
    pf_err err, first = PF_OK;

    *holder = 0;
    *nthreads = 0;
    err = pf_interp_main(mem, t, &interp);
    if (err) {
        FUZZ_CHECK(interp == 0xdead);
        return err;
    }
    FUZZ_CHECK(interp != 0);

    err = pf_interp_gil_holder(mem, t, interp, &h);
    if (err) {
        FUZZ_CHECK(h == 0xdead);
        first = err;
    } else {
        *holder = h;
        if (h) {
            fuzz_read_stack(mem, t->layout, &t->types, codes, names, h, &st);
            if (!first)
                first = st.err;
        }
    }

    err = pf_interp_threads(mem, t, interp, tstates, PF_MAX_THREADS, &n);
    if (err) {
        FUZZ_CHECK(n == 0xdead);
        return first ? first : err;
    }
    FUZZ_CHECK(n <= PF_MAX_THREADS);
    /* A list that loops is refused, so every listed state is distinct. The
     * check is quadratic; cheap next to the reads that built the list. */
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(tstates[i] != 0);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(tstates[i] != tstates[j]);
    }
    *nthreads = n;
    for (size_t i = 0; i < n && i < SAMPLE_THREADS; i++) {
        if (tstates[i] == h)
            continue;
        fuzz_read_stack(mem, t->layout, &t->types, codes, names, tstates[i], &st);
        if (!first)
            first = st.err;
    }
    return first;
}

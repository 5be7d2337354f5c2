/* fuzz_seeds: writes the seed corpora of tests/fuzz/corpus/ (run through
 * tests/fuzz/make-corpus, which says when to re-run it).
 *
 *   fuzz_seeds synth DIR       line tables captured from every interpreter
 *                              (tests/unit/linetable_vectors.h) and string
 *                              objects of every kind for every layout
 *   fuzz_seeds record PID DIR NAME
 *                              one sample of a real, running (preferably
 *                              stopped) CPython process, as the sampler
 *                              takes it: every byte it read, written as
 *                              inputs of the frame, threads, pystr and
 *                              linetable targets, named NAME-*
 *
 * DIR holds one directory per target. Recording reads the target through
 * process_vm_readv, so it needs the right to ptrace it (root, or the same
 * user with Yama's ptrace_scope 0); it does not attach. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_image.h"
#include "pyflame/cpython/debug_offsets.h"
#include "pyflame/cpython/discover.h"
#include "pyflame/base/limits.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/cpython/pystr.h"

#include "linetable_vectors.h"

static const char *root_dir;

static FILE *open_seed(const char *target, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root_dir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void close_seed(FILE *f)
{
    if (ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_seeds: write failed\n");
        exit(1);
    }
}

static void put_le(FILE *f, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        fputc((int)(v >> (8 * i) & 0xff), f);
}

/* ------------------------------------------------------------ linetable */

static void linetable_seed(const char *name, enum pf_linetable_kind kind, int32_t first,
                           int64_t offset, const uint8_t *table, size_t len)
{
    FILE *f = open_seed("linetable", name);
    fputc(kind - PF_LT_LNOTAB_27, f); /* the target adds it back, mod 4 */
    put_le(f, (uint32_t)first, 4);
    put_le(f, (uint64_t)offset, 8);
    fwrite(table, 1, len, f);
    close_seed(f);
}

static void synth_linetables(void)
{
    for (size_t i = 0; i < sizeof(LT_VECTORS) / sizeof(LT_VECTORS[0]); i++) {
        const struct lt_vector *v = &LT_VECTORS[i];
        char name[256];
        snprintf(name, sizeof(name), "%s-%s", v->python, v->func);
        for (char *p = name; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", *p))
                *p = '_';
        /* An offset in the middle of the code, where the walk has work to do. */
        linetable_seed(name, v->kind, v->firstlineno, (int64_t)(v->code_len / 2), v->table,
                       v->table_len);
    }
}

/* ------------------------------------------------------------ strings */

#define OBJ 0x100000ull  /* where a synthetic object lives */
#define DATA 0x200000ull /* a legacy string's characters */

static void put_field(uint8_t *buf, size_t len, struct pf_field f, uint64_t v)
{
    if (f.width == 0 || f.off + f.width > len) {
        fprintf(stderr, "fuzz_seeds: field at %u+%u outside %zu bytes\n", f.off, f.width, len);
        exit(1);
    }
    for (unsigned i = 0; i < f.width; i++)
        buf[f.off + i] = (uint8_t)(v >> (8 * i));
}

/* Code points as kind-byte units, NUL-terminated as CPython stores them. */
static size_t pack(uint8_t *dst, const uint32_t *cps, size_t n, unsigned kind)
{
    for (size_t i = 0; i <= n; i++) {
        uint32_t c = i < n ? cps[i] : 0;
        for (unsigned b = 0; b < kind; b++)
            dst[i * kind + b] = (uint8_t)(c >> (8 * b));
    }
    return (n + 1) * kind;
}

/* The object is exactly as long as CPython makes it, so a read past its end
 * faults in the image as it may at the end of a real mapping. */
static void write_object(const char *name, const struct pf_layout *L, const uint8_t *obj,
                         size_t len, const uint8_t *data, size_t data_len)
{
    FILE *f = open_seed("pystr", name);
    /* root1: small caps of 17 characters and 32 bytes (fuzz_pystr.c). */
    fuzz_write_header(f, 0, L->key.major, L->key.minor, OBJ, 0x2010, NULL);
    fuzz_write_segment(f, true, OBJ, obj, len);
    if (data)
        fuzz_write_segment(f, false, DATA, data, data_len);
    close_seed(f);
}

/* state: interned, kind, compact, ascii; bit 7 (ready up to 3.11) set; and
 * the garbage real processes have in the unused high bits. */
static uint32_t state_word(const struct pf_layout *L, unsigned kind, bool compact, bool ascii)
{
    uint32_t s = 1u | kind << 2 | (uint32_t)compact << 5 | (uint32_t)ascii << 6;
    if (L->key.minor <= 11)
        s |= 0x80;
    return s | 0x42f61900u;
}

static void pep393(const struct pf_layout *L, const char *what, const uint32_t *cps, size_t n,
                   unsigned kind, bool ascii, bool compact)
{
    uint8_t obj[PF_MAX_STRUCT + 4 * 64], chars[4 * 64];
    char name[128];
    size_t off = ascii ? L->unicode.ascii_size : L->unicode.compact_size;
    size_t len = compact ? off + (n + 1) * kind : L->unicode.size;

    memset(obj, 0, sizeof(obj));
    put_field(obj, len, L->object.ob_type, 0x7100);
    put_field(obj, len, L->unicode.length, n);
    put_field(obj, len, L->unicode.state, state_word(L, kind, compact, ascii));
    snprintf(name, sizeof(name), "%s-%s", pf_layout_name(L), what);
    if (compact) {
        pack(obj + off, cps, n, kind);
        write_object(name, L, obj, len, NULL, 0);
    } else {
        put_field(obj, len, L->unicode.data, DATA);
        write_object(name, L, obj, len, chars, pack(chars, cps, n, kind));
    }
}

static void var_bytes(const struct pf_layout *L, const char *what, const void *data, size_t n)
{
    uint8_t obj[PF_MAX_STRUCT + 64];
    char name[128];
    size_t len = L->bytes.ob_sval.off + n + 1;

    memset(obj, 0, sizeof(obj));
    put_field(obj, len, L->object.ob_type, 0x7200);
    put_field(obj, len, L->bytes.ob_size, n);
    memcpy(obj + L->bytes.ob_sval.off, data, n);
    snprintf(name, sizeof(name), "%s-%s", pf_layout_name(L), what);
    write_object(name, L, obj, len, NULL, 0);
}

static void synth_strings(void)
{
    static const uint32_t ascii[] = {'a', 'p', 'p', '.', 'p', 'y'};
    static const uint32_t latin1[] = {'c', 'a', 'f', 0xe9};
    static const uint32_t ucs2[] = {0x51fd, 0x6570, 0xd800}; /* 函数, a lone surrogate */
    static const uint32_t ucs4[] = {'f', 0x20000, 0x10ffff}; /* 𠀀 */
    static const uint8_t table[] = {0x80, 0x00, 0xd8, 0x02, 0x04};
#define N(a) (sizeof(a) / sizeof((a)[0]))

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        var_bytes(L, "bytes", table, sizeof(table));
        if (L->str == PF_STR_BYTES) {
            var_bytes(L, "str", "app.py", 6);
            continue;
        }
        pep393(L, "ascii", ascii, N(ascii), 1, true, true);
        pep393(L, "latin1", latin1, N(latin1), 1, false, true);
        pep393(L, "ucs2", ucs2, N(ucs2), 2, false, true);
        pep393(L, "ucs4", ucs4, N(ucs4), 4, false, true);
        pep393(L, "legacy-ascii", ascii, N(ascii), 1, true, false);
        pep393(L, "legacy-ucs2", ucs2, N(ucs2), 2, false, false);
    }
#undef N
}

/* ------------------------------------------------------------ recording */

struct range {
    uint64_t addr;
    size_t len;
};

/* A pf_mem that reads through another and remembers what it read. */
struct recorder {
    struct pf_mem *inner;
    struct range *v;
    size_t n, cap;
};

static void remember(struct recorder *r, uint64_t addr, size_t len)
{
    if (len == 0)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
        if (!r->v) {
            fprintf(stderr, "fuzz_seeds: out of memory\n");
            exit(1);
        }
    }
    r->v[r->n++] = (struct range){addr, len};
}

static pf_err rec_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
    struct recorder *r = ctx;
    pf_err err = r->inner->ops->read(r->inner->ctx, addr, dst, len);
    if (!err)
        remember(r, addr, len);
    return err;
}

static pf_err rec_readv(void *ctx, const struct pf_iov *iov, size_t n, unsigned char *ok)
{
    struct recorder *r = ctx;
    pf_err err = r->inner->ops->readv(r->inner->ctx, iov, n, ok);
    for (size_t i = 0; !err && i < n; i++)
        if (ok[i])
            remember(r, iov[i].addr, iov[i].len);
    return err;
}

static const struct pf_mem_ops RECORDER_OPS = {.read = rec_read, .readv = rec_readv};

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Write every byte the recorder saw as segments: overlapping and adjacent
 * reads merged, each range read again from the (stopped) target. */
static void write_recording(FILE *f, struct recorder *r)
{
    size_t n = 0;

    qsort(r->v, r->n, sizeof(*r->v), cmp_range);
    for (size_t i = 0; i < r->n; i++) {
        struct range *last = n ? &r->v[n - 1] : NULL;
        if (last && r->v[i].addr <= last->addr + last->len) {
            uint64_t end = r->v[i].addr + r->v[i].len;
            if (end > last->addr + last->len)
                last->len = (size_t)(end - last->addr);
        } else {
            r->v[n++] = r->v[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf = malloc(r->v[i].len);
        if (!buf || r->inner->ops->read(r->inner->ctx, r->v[i].addr, buf, r->v[i].len)) {
            fprintf(stderr, "fuzz_seeds: cannot read 0x%llx again\n",
                    (unsigned long long)r->v[i].addr);
            exit(1);
        }
        /* The delimiter inside target memory would split the segment. */
        if (memmem(buf, r->v[i].len, FUZZ_SEG_MAGIC, FUZZ_SEG_MAGIC_LEN)) {
            fprintf(stderr, "fuzz_seeds: the target's memory holds the segment delimiter\n");
            exit(1);
        }
        fuzz_write_segment(f, i == 0, r->v[i].addr, buf, r->v[i].len);
        free(buf);
    }
    r->n = 0;
}

struct session {
    struct recorder rec;
    struct pf_mem mem; /* reads through rec */
    struct pf_code_cache *codes;
    struct pf_intern *names;
};

static void session_start(struct session *s, struct pf_mem *inner)
{
    memset(s, 0, sizeof(*s));
    s->rec.inner = inner;
    s->mem = (struct pf_mem){.ops = &RECORDER_OPS, .ctx = &s->rec};
    if (pf_code_cache_new(64, &s->codes) || pf_intern_new(&s->names)) {
        fprintf(stderr, "fuzz_seeds: out of memory\n");
        exit(1);
    }
}

static void session_end(struct session *s)
{
    pf_code_cache_free(s->codes);
    pf_intern_free(s->names);
    free(s->rec.v);
}

static int record(pid_t pid, const char *name)
{
    struct pf_diag diag = {{0}};
    struct pf_target t;
    struct pf_mem pidmem = {0};
    struct session s;
    struct fuzz_stack_stats st;
    uint64_t holder = 0, interp = 0, tstates[64];
    size_t nthreads = 0;
    char seed[256];
    pf_err err;

    if ((err = pf_interp_discover(pid, NULL, &diag, &t))) {
        fprintf(stderr, "fuzz_seeds: %s\n", diag.msg);
        return 1;
    }
    const struct pf_layout *L = t.layout;
    pf_mem_open_pid(pid, &pidmem);
    uint8_t flags = FUZZ_TYPES, major = (uint8_t)t.version.major, minor = (uint8_t)t.version.minor;

    /* threads: the whole sample. */
    session_start(&s, &pidmem);
    err = fuzz_sample(&s.mem, &t, s.codes, s.names, &holder, &nthreads);
    snprintf(seed, sizeof(seed), "%s-sample", name);
    FILE *f = open_seed("threads", seed);
    fuzz_write_header(f, flags, major, minor, t.runtime_addr ? t.runtime_addr : t.interp_head_addr,
                      t.tstate_current_addr, &t.types);
    write_recording(f, &s.rec);
    close_seed(f);
    session_end(&s);
    fprintf(stderr, "%s: sample of %zu threads (GIL holder 0x%llx): %s\n", seed, nthreads,
            (unsigned long long)holder, pf_strerror(err));

    /* debug_offsets (3.13+): the offsets at the start of _PyRuntime, then
     * the sample read with the layout built from them, as discovery does. */
    static uint8_t head[PF_DEBUG_OFFSETS_READ];
    struct pf_debug_offsets d;
    struct pf_target dt = t;
    if (t.runtime_addr && pf_mem_read(&pidmem, t.runtime_addr, head, sizeof(head)) == PF_OK &&
        pf_debug_offsets_present(head, sizeof(head))) {
        session_start(&s, &pidmem);
        pf_mem_read(&s.mem, t.runtime_addr, head, sizeof(head));
        err = pf_debug_offsets_parse(head, sizeof(head), 0, 0, NULL, &d);
        if (!err)
            err = pf_debug_offsets_layout(&d, L, NULL, &dt.own_layout);
        if (!err) {
            dt.layout = &dt.own_layout;
            err = fuzz_sample(&s.mem, &dt, s.codes, s.names, &holder, &nthreads);
        }
        snprintf(seed, sizeof(seed), "%s-sample", name);
        f = open_seed("debug_offsets", seed);
        fuzz_write_header(f, flags, major, minor, t.runtime_addr, 0, &t.types);
        write_recording(f, &s.rec);
        close_seed(f);
        session_end(&s);
        fprintf(stderr, "%s: debug offsets, sample of %zu threads: %s\n", seed, nthreads,
                pf_strerror(err));
    }

    /* frame: the stack of the GIL holder, or of the newest thread. */
    if (!holder && pf_interp_main(&pidmem, &t, &interp) == PF_OK &&
        pf_interp_threads(&pidmem, &t, interp, tstates, 64, &nthreads) == PF_OK && nthreads)
        holder = tstates[0];
    if (!holder) {
        fprintf(stderr, "fuzz_seeds: no thread state to record\n");
        return 1;
    }
    session_start(&s, &pidmem);
    fuzz_read_stack(&s.mem, L, &t.types, s.codes, s.names, holder, &st);
    snprintf(seed, sizeof(seed), "%s-stack", name);
    f = open_seed("frame", seed);
    fuzz_write_header(f, flags, major, minor, holder, 0, &t.types);
    write_recording(f, &s.rec);
    close_seed(f);
    fprintf(stderr, "%s: %zu frames, %zu decoded: %s\n", seed, st.frames, st.decoded,
            pf_strerror(st.err));

    /* pystr and linetable: the innermost code object's name, filename and
     * line table, as the code reader reads them. */
    uint8_t ts[PF_MAX_STRUCT], hdr[PF_MAX_STRUCT];
    struct pf_frame_rec recs[PF_MAX_DEPTH];
    uint64_t frame, fields[3];
    size_t n = 0;
    bool truncated;
    if (pf_mem_read(&pidmem, holder, ts, L->tstate.size) ||
        pf_frame_first(&pidmem, L, ts, L->tstate.size, &frame) ||
        pf_frame_walk(&pidmem, L, frame, recs, PF_MAX_DEPTH, &n, &truncated) || n == 0 ||
        pf_mem_read(&pidmem, recs[0].code_addr, hdr, pf_code_header_size(L)) ||
        pf_field_ptr(hdr, L->code.size, L->code.name, &fields[0]) ||
        pf_field_ptr(hdr, L->code.size, L->code.filename, &fields[1]) ||
        pf_field_ptr(hdr, L->code.size, L->code.linetable, &fields[2])) {
        fprintf(stderr, "fuzz_seeds: cannot read the innermost code object\n");
        session_end(&s);
        return 1;
    }
    static const char *const what[] = {"name", "filename", "linetable"};
    for (int i = 0; i < 3; i++) {
        char text[PF_MAX_STRING + 1];
        uint8_t *bytes = NULL;
        size_t len = 0;
        struct session one;
        session_start(&one, &pidmem);
        err = i < 2 ? pf_pystr_read(&one.mem, L, fields[i], text, sizeof(text), &len)
                    : pf_pybytes_read(&one.mem, L, fields[i], PF_MAX_LINETABLE, &bytes, &len);
        snprintf(seed, sizeof(seed), "%s-%s", name, what[i]);
        f = open_seed("pystr", seed);
        fuzz_write_header(f, flags, major, minor, fields[i], 0x2010, &t.types);
        write_recording(f, &one.rec);
        close_seed(f);
        session_end(&one);
        fprintf(stderr, "%s: %zu bytes: %s\n", seed, len, pf_strerror(err));
        if (i == 2 && !err) {
            int64_t first;
            if (pf_field_int(hdr, L->code.size, L->code.firstlineno, &first) == PF_OK) {
                snprintf(seed, sizeof(seed), "%s-innermost", name);
                linetable_seed(seed, (enum pf_linetable_kind)L->linetable, (int32_t)first,
                               recs[0].offset, bytes, len);
            }
        }
        free(bytes);
    }
    session_end(&s);
    pf_mem_close(&pidmem);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "synth") == 0) {
        root_dir = argv[2];
        synth_linetables();
        synth_strings();
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "record") == 0) {
        root_dir = argv[3];
        return record((pid_t)atoi(argv[2]), argv[4]);
    }
    fprintf(stderr, "usage: fuzz_seeds synth DIR\n"
                    "       fuzz_seeds record PID DIR NAME\n");
    return 2;
}

#include "fake_python.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Garbage for the unused bits 8-31 of the PEP 393 `state` word: CPython
 * leaves them uninitialised and real processes show values like 0x42f6192a
 * (docs/cpython-internals.md §9.2), so readers must mask. */
#define STATE_GARBAGE 0xa5c3f100u

static void map(struct pf_image *img, uint64_t addr, size_t len)
{
    pf_err err = pf_image_map(img, addr, len);
    if (err != PF_OK)
        fail_msg("fake_python: pf_image_map(0x%llx, %zu): %s", (unsigned long long)addr, len,
                 pf_strerror(err));
}

static void write_bytes(struct pf_image *img, uint64_t addr, const void *src, size_t len)
{
    pf_err err = len ? pf_image_write(img, addr, src, len) : PF_OK;
    if (err != PF_OK)
        fail_msg("fake_python: pf_image_write(0x%llx, %zu): %s", (unsigned long long)addr, len,
                 pf_strerror(err));
}

/* Write a field this version must have. */
static void put(struct pf_image *img, uint64_t obj, struct pf_field f, uint64_t value,
                const char *what)
{
    if (f.width == 0)
        fail_msg("fake_python: layout has no field %s", what);
    pf_err err = pf_image_write_uint(img, obj + f.off, value, f.width);
    if (err != PF_OK)
        fail_msg("fake_python: writing %s at 0x%llx: %s", what, (unsigned long long)(obj + f.off),
                 pf_strerror(err));
}

/* Write a field some versions lack. */
static void put_opt(struct pf_image *img, uint64_t obj, struct pf_field f, uint64_t value,
                    const char *what)
{
    if (f.width != 0)
        put(img, obj, f, value, what);
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Decode test input; malformed UTF-8 is a bug in the test. *n gets the
 * count, *maxcp the largest code point. The caller frees. */
static uint32_t *decode_utf8(const char *s, size_t *n, uint32_t *maxcp)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s), k = 0;
    uint32_t *cps = malloc((len + 1) * sizeof(*cps));

    if (!cps)
        fail_msg("fake_python: out of memory");
    *maxcp = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = p[i];
        size_t extra = c < 0x80             ? 0
                       : (c & 0xe0) == 0xc0 ? 1
                       : (c & 0xf0) == 0xe0 ? 2
                       : (c & 0xf8) == 0xf0 ? 3
                                            : 9;
        if (extra == 9 || len - i <= extra)
            fail_msg("fake_python: invalid UTF-8 in %s", s);
        if (extra)
            c &= 0x3fu >> extra;
        for (size_t j = 1; j <= extra; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                fail_msg("fake_python: invalid UTF-8 in %s", s);
            c = (c << 6) | (p[i + j] & 0x3f);
        }
        i += extra + 1;
        cps[k++] = c;
        if (c > *maxcp)
            *maxcp = c;
    }
    *n = k;
    return cps;
}

/* Code points as `kind`-byte units plus a NUL unit, as CPython stores them. */
static uint8_t *pack(const uint32_t *cps, size_t n, unsigned kind, size_t *bytes)
{
    uint8_t *buf = calloc(n + 1, kind);
    if (!buf)
        fail_msg("fake_python: out of memory");
    for (size_t i = 0; i < n; i++) {
        uint8_t b1 = (uint8_t)cps[i];
        uint16_t b2 = (uint16_t)cps[i];
        uint32_t b4 = cps[i];
        memcpy(buf + i * kind,
               kind == 1   ? (void *)&b1
               : kind == 2 ? (void *)&b2
                           : (void *)&b4,
               kind);
    }
    *bytes = (n + 1) * kind;
    return buf;
}

/* 2.7 PyStringObject and 3.x PyBytesObject share their shape: ob_size bytes
 * at ob_sval, NUL-terminated. */
static uint64_t var_bytes(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                          uint64_t type, const void *data, size_t len)
{
    size_t size = max_size(max_size(L->bytes.size, 0x100), L->bytes.ob_sval.off + len + 1);

    map(img, addr, round16(size));
    put(img, addr, L->object.ob_type, type, "ob_type");
    put(img, addr, L->bytes.ob_size, len, "ob_size");
    write_bytes(img, addr + L->bytes.ob_sval.off, data, len);
    return addr;
}

static uint8_t state_byte(const struct pf_layout *L, unsigned kind, bool compact, bool ascii)
{
    unsigned s = 1u /* interned */ | kind << 2 | (unsigned)compact << 5 | (unsigned)ascii << 6;
    /* Bit 7: `ready` up to 3.11 (always set by then); `statically_allocated`
     * from 3.12 (clear for heap strings). */
    if (L->key.major == 3 && L->key.minor <= 11)
        s |= 0x80;
    return (uint8_t)s;
}

/* Length and state of a PEP 393 string; state's high bits get garbage. */
static void put_pep393_header(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                              size_t n, uint8_t state)
{
    put(img, addr, L->object.ob_type, FAKE_TYPE_STR, "ob_type");
    put(img, addr, L->unicode.length, n, "length");
    put(img, addr, L->unicode.state, STATE_GARBAGE | state, "state");
}

static unsigned kind_for(uint32_t maxcp)
{
    return maxcp < 0x100 ? 1 : maxcp < 0x10000 ? 2 : 4;
}

uint64_t fake_str(struct pf_image *img, const struct pf_layout *L, uint64_t addr, const char *utf8)
{
    if (L->str == PF_STR_BYTES)
        return var_bytes(img, L, addr, FAKE_TYPE_STR, utf8, strlen(utf8));

    size_t n, bytes;
    uint32_t maxcp;
    uint32_t *cps = decode_utf8(utf8, &n, &maxcp);
    bool ascii = maxcp < 0x80;
    unsigned kind = kind_for(maxcp);
    uint8_t *data = pack(cps, n, kind, &bytes);
    size_t off = ascii ? L->unicode.ascii_size : L->unicode.compact_size;

    map(img, addr, round16(max_size(max_size(L->unicode.size, 0x100), off + bytes)));
    put_pep393_header(img, L, addr, n, state_byte(L, kind, true, ascii));
    write_bytes(img, addr + off, data, bytes);
    free(data);
    free(cps);
    return addr;
}

uint64_t fake_str_legacy(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                         const char *utf8)
{
    if (L->str != PF_STR_PEP393)
        fail_msg("fake_python: fake_str_legacy needs a PEP 393 layout, not %s", pf_layout_name(L));

    size_t n, bytes;
    uint32_t maxcp;
    uint32_t *cps = decode_utf8(utf8, &n, &maxcp);
    unsigned kind = kind_for(maxcp);
    uint8_t *data = pack(cps, n, kind, &bytes);
    size_t size = round16(max_size(L->unicode.size, 0x100));
    uint64_t buf = addr + size;

    map(img, addr, size);
    map(img, buf, round16(bytes));
    /* A ready legacy string keeps `ascii` for all-ASCII text (PyUnicode_READY). */
    put_pep393_header(img, L, addr, n, state_byte(L, kind, false, maxcp < 0x80));
    put(img, addr, L->unicode.data, buf, "data");
    write_bytes(img, buf, data, bytes);
    free(data);
    free(cps);
    return addr;
}

uint64_t fake_bytes(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                    const void *data, size_t len)
{
    uint64_t type = L->str == PF_STR_BYTES ? FAKE_TYPE_STR : FAKE_TYPE_BYTES;
    return var_bytes(img, L, addr, type, data, len);
}

uint64_t fake_code(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                   const char *filename, const char *name, int firstlineno,
                   const uint8_t *linetable, size_t linetable_len)
{
    size_t size = max_size(L->code.size, 0x100);

    /* Room for some bytecode after co_code_adaptive, so instruction
     * pointers into it are addresses inside the object. */
    if (L->code.code_adaptive.width != 0)
        size = max_size(size, L->code.code_adaptive.off + 0x200);
    if (size > 0x1000)
        fail_msg("fake_python: code object of %zu bytes overlaps its strings", size);
    map(img, addr, round16(size));
    put(img, addr, L->object.ob_type, FAKE_TYPE_CODE, "ob_type");
    put(img, addr, L->code.firstlineno, (uint32_t)firstlineno, "co_firstlineno");
    put(img, addr, L->code.filename, fake_str(img, L, addr + 0x1000, filename), "co_filename");
    put(img, addr, L->code.name, fake_str(img, L, addr + 0x2000, name), "co_name");
    if (L->code.qualname.width != 0)
        put(img, addr, L->code.qualname, fake_str(img, L, addr + 0x3000, name), "co_qualname");
    put(img, addr, L->code.linetable, fake_bytes(img, L, addr + 0x4000, linetable, linetable_len),
        "co_linetable");
    put_opt(img, addr, L->code.firsttraceable, 0, "_co_firsttraceable");
    return addr;
}

uint64_t fake_instr(const struct pf_layout *L, uint64_t code, int64_t offset)
{
    if (offset < 0)
        fail_msg("fake_python: fake_instr takes offsets >= 0, not %lld", (long long)offset);
    if (L->frames == PF_FRAMES_OBJECT)
        return (uint64_t)(L->linetable == PF_LT_LINETABLE_310 ? offset / 2 : offset);
    if (L->code.code_adaptive.width == 0)
        fail_msg("fake_python: layout %s has no co_code_adaptive", pf_layout_name(L));
    return code + L->code.code_adaptive.off + (uint64_t)offset;
}

uint64_t fake_frame(struct pf_image *img, const struct pf_layout *L, uint64_t addr, uint64_t code,
                    uint64_t back, uint64_t instr, uint8_t owner)
{
    if (L->frames == PF_FRAMES_OBJECT) {
        map(img, addr, round16(max_size(L->pyframe.size, 0x100)));
        put(img, addr, L->pyframe.back, back, "f_back");
        put(img, addr, L->pyframe.code, code, "f_code");
        put(img, addr, L->pyframe.lasti, instr, "f_lasti"); /* truncated to int: -1 stays -1 */
        return addr;
    }
    map(img, addr, round16(max_size(L->iframe.size, 0x100)));
    put(img, addr, L->iframe.previous, back, "previous");
    put(img, addr, L->iframe.code, code, "f_code");
    put(img, addr, L->iframe.instr, instr, "prev_instr");
    put(img, addr, L->iframe.owner, owner, "owner");
    return addr;
}

uint64_t fake_tstate(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                     uint64_t interp, uint64_t next, uint64_t frame)
{
    if (L->tstate.size > 0x800)
        fail_msg("fake_python: PyThreadState of %u bytes overlaps its _PyCFrame", L->tstate.size);
    map(img, addr, round16(max_size(L->tstate.size, 0x100)));
    put(img, addr, L->tstate.next, next, "next");
    put(img, addr, L->tstate.interp, interp, "interp");
    if (L->frames == PF_FRAMES_CFRAME) {
        uint64_t cframe = addr + 0x800;
        map(img, cframe, round16(max_size(L->cframe.size, 0x100)));
        put(img, cframe, L->cframe.current_frame, frame, "current_frame");
        put(img, addr, L->tstate.frame, cframe, "cframe");
    } else {
        put(img, addr, L->tstate.frame, frame, "frame");
    }
    return addr;
}

uint64_t fake_interp(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                     uint64_t next, uint64_t threads_head, uint64_t gil)
{
    map(img, addr, round16(max_size(L->interp.size, 0x100)));
    put(img, addr, L->interp.next, next, "next");
    put(img, addr, L->interp.threads_head, threads_head, "threads.head");
    if (gil != 0)
        put(img, addr, L->interp.ceval_gil, gil, "ceval.gil");
    return addr;
}

uint64_t fake_gil(struct pf_image *img, const struct pf_layout *L, uint64_t addr, int locked,
                  uint64_t last_holder)
{
    if (L->gilstate.size == 0)
        fail_msg("fake_python: layout %s has no _gil_runtime_state", pf_layout_name(L));
    map(img, addr, round16(max_size(L->gilstate.size, 0x100)));
    put(img, addr, L->gilstate.locked, (uint64_t)locked, "locked");
    put(img, addr, L->gilstate.last_holder, last_holder, "last_holder");
    return addr;
}

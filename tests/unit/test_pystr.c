/* String and bytes objects read out of a fake image, once per generated
 * layout: 2.7 PyStringObject, PEP 393 compact ASCII / latin-1 / UCS-2 /
 * UCS-4, legacy (non-compact) strings, bytes, and the hostile cases: lengths
 * over the caps, garbage state bytes, unmapped pointers, objects at the very
 * end of a mapping. Plus the pure UTF-8 encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_python.h"
#include "pyflame/target/image.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/base/limits.h"
#include "pyflame/target/mem.h"
#include "pyflame/cpython/pystr.h"

#define OBJ 0x100000ull /* where each test puts its object */

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem mem;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->L = *state;
    assert_int_equal(pf_image_new(&f->img), PF_OK);
    assert_int_equal(pf_mem_open_image(f->img, &f->mem), PF_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pf_mem_close(&f->mem);
    pf_image_free(f->img);
    free(f);
    return 0;
}

static bool is27(const struct pf_layout *L)
{
    return L->str == PF_STR_BYTES;
}

/* Read the string at addr and compare with the expected UTF-8. */
static void expect_str(struct fixture *f, uint64_t addr, const char *want)
{
    char out[PF_MAX_STRING + 1];
    size_t len = 12345;
    memset(out, 'x', sizeof(out));
    assert_int_equal(pf_pystr_read(&f->mem, f->L, addr, out, sizeof(out), &len), PF_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len + 1); /* NUL-terminated */
}

static void expect_str_err(struct fixture *f, uint64_t addr, size_t cap, pf_err want)
{
    char out[PF_MAX_STRING + 2];
    size_t len = 12345;
    assert_true(cap <= sizeof(out));
    assert_int_equal(pf_pystr_read(&f->mem, f->L, addr, out, cap, &len), want);
    assert_int_equal(len, 12345); /* written only on success */
}

/* Overwrite the low byte of `state` (3.x). */
static void set_state(struct fixture *f, uint64_t addr, uint64_t state)
{
    struct pf_field s = f->L->unicode.state;
    assert_int_equal(pf_image_write_uint(f->img, addr + s.off, state, s.width), PF_OK);
}

static uint64_t get_state(struct fixture *f, uint64_t addr)
{
    uint64_t v = 0;
    struct pf_field s = f->L->unicode.state;
    assert_int_equal(pf_mem_read(&f->mem, addr + s.off, &v, s.width), PF_OK);
    return v;
}

static void ascii(void **state)
{
    struct fixture *f = *state;
    expect_str(f, fake_str(f->img, f->L, OBJ, "/usr/lib/python3/app.py"),
               "/usr/lib/python3/app.py");
    expect_str(f, fake_str(f->img, f->L, OBJ + 0x1000, "f"), "f");
    expect_str(f, fake_str(f->img, f->L, OBJ + 0x2000, "<module>"), "<module>");
}

/* Short names cost one read: the header read brings the characters. */
static void one_read_for_short_strings(void **state)
{
    struct fixture *f = *state;
    uint64_t a = fake_str(f->img, f->L, OBJ, "handler");
    uint64_t b = fake_str(f->img, f->L, OBJ + 0x1000, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
    f->mem.reads = 0;
    expect_str(f, a, "handler");
    assert_int_equal(f->mem.reads, 1);
    f->mem.reads = 0;
    expect_str(f, b, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
    assert_int_equal(f->mem.reads, 1);
}

/* pystr.c's first read copies 256 bytes (HEAD_READ): an object that ends
 * within them costs one read, one byte more costs two, and every length
 * around the edge comes back intact. Each length uses its own letter, so a
 * byte left over from the previous call can't pass for the right one. */
static void head_read_boundary(void **state)
{
    struct fixture *f = *state;
    const struct pf_layout *L = f->L;
    size_t off = is27(L) ? L->bytes.ob_sval.off : L->unicode.ascii_size;
    char s[400];
    uint8_t *p;
    size_t n;

    for (size_t len = 150; len < 300; len++) {
        memset(s, 'a' + (int)(len % 26), len);
        s[len] = '\0';
        uint64_t a = fake_str(f->img, L, OBJ + len * 0x1000, s);
        f->mem.reads = 0;
        expect_str(f, a, s);
        assert_int_equal(f->mem.reads, off + len <= 256 ? 1 : 2);

        uint64_t b = fake_bytes(f->img, L, OBJ + 0x1000000 + len * 0x1000, s, len);
        f->mem.reads = 0;
        assert_int_equal(pf_pybytes_read(&f->mem, L, b, 1000, &p, &n), PF_OK);
        assert_int_equal(f->mem.reads, L->bytes.ob_sval.off + len <= 256 ? 1 : 2);
        assert_int_equal(n, len);
        assert_memory_equal(p, s, len);
        free(p);
    }
}

/* Long strings: a header read and one data read, never more. */
static void two_reads_for_long_strings(void **state)
{
    struct fixture *f = *state;
    char s[2001];
    memset(s, 'a', 2000);
    s[2000] = '\0';
    uint64_t a = fake_str(f->img, f->L, OBJ, s);
    f->mem.reads = 0;
    expect_str(f, a, s);
    assert_int_equal(f->mem.reads, 2);

    /* UCS-2, 1000 characters: 2000 bytes of data, 3000 of UTF-8. */
    char u[3001];
    for (int i = 0; i < 1000; i++)
        memcpy(u + 3 * i, "\xe2\x82\xac", 3); /* U+20AC */
    u[3000] = '\0';
    uint64_t b = fake_str(f->img, f->L, OBJ + 0x10000, u);
    f->mem.reads = 0;
    expect_str(f, b, u);
    assert_int_equal(f->mem.reads, 2);
}

static void latin1(void **state)
{
    struct fixture *f = *state;
    uint64_t a = fake_str(f->img, f->L, OBJ, "caf\xc3\xa9");
    expect_str(f, a, "caf\xc3\xa9");
    expect_str(f, fake_str(f->img, f->L, OBJ + 0x1000, "\xc3\xa9"), "\xc3\xa9");
    expect_str(f, fake_str(f->img, f->L, OBJ + 0x2000, "\xc3\xbf\xc2\x80"), "\xc3\xbf\xc2\x80");
    if (!is27(f->L))
        assert_int_equal((get_state(f, a) >> 2) & 7, 1); /* really kind 1 */
}

static void ucs2(void **state)
{
    struct fixture *f = *state;
    uint64_t a = fake_str(f->img, f->L, OBJ, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
    expect_str(f, a, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
    expect_str(f, fake_str(f->img, f->L, OBJ + 0x1000, "\xef\xbf\xbf\xdf\xbf\xe0\xa0\x80"),
               "\xef\xbf\xbf\xdf\xbf\xe0\xa0\x80"); /* U+FFFF U+07FF U+0800 */
    if (!is27(f->L))
        assert_int_equal((get_state(f, a) >> 2) & 7, 2);
}

static void ucs4(void **state)
{
    struct fixture *f = *state;
    /* U+1F40D SNAKE, U+1F600, U+10FFFF, U+10000 */
    const char *s = "\xf0\x9f\x90\x8d py \xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xf0\x90\x80\x80";
    uint64_t a = fake_str(f->img, f->L, OBJ, s);
    expect_str(f, a, s);
    if (!is27(f->L))
        assert_int_equal((get_state(f, a) >> 2) & 7, 4);
}

static void empty(void **state)
{
    struct fixture *f = *state;
    expect_str(f, fake_str(f->img, f->L, OBJ, ""), "");
    if (is27(f->L))
        return;
    uint64_t a = fake_str_legacy(f->img, f->L, OBJ + 0x10000, "");
    expect_str(f, a, "");
    /* An empty legacy string needs no buffer: a NULL one is not a fault. */
    assert_int_equal(pf_image_write_uint(f->img, a + f->L->unicode.data.off, 0, 8), PF_OK);
    expect_str(f, a, "");
}

/* 2.7 str is bytes in whatever encoding the source used: copied as is. */
static void str27_raw_bytes(void **state)
{
    struct fixture *f = *state;
    if (!is27(f->L))
        skip();
    expect_str(f, fake_str(f->img, f->L, OBJ, "caf\xe9"), "caf\xe9");
    uint64_t a = fake_str(f->img, f->L, OBJ + 0x1000, "app.py");
    uint64_t type = 0;
    assert_int_equal(pf_mem_read(&f->mem, a + f->L->object.ob_type.off, &type, 8), PF_OK);
    assert_int_equal(type, FAKE_TYPE_STR);
}

static void legacy(void **state)
{
    struct fixture *f = *state;
    if (is27(f->L))
        skip();
    const char *cases[] = {"app.py", "caf\xc3\xa9", "r\xc3\xa9sum\xc3\xa9_\xcf\x80",
                           "\xf0\x9f\x90\x8d"};
    for (size_t i = 0; i < 4; i++) {
        uint64_t a = fake_str_legacy(f->img, f->L, OBJ + i * 0x10000, cases[i]);
        assert_int_equal((get_state(f, a) >> 5) & 1, 0); /* not compact */
        f->mem.reads = 0;
        expect_str(f, a, cases[i]);
        assert_int_equal(f->mem.reads, 2); /* header, then the data buffer */
    }
}

/* The state word's high bits are garbage in real processes (the fake
 * already writes some); only the low byte counts, bit 7 included. */
static void state_high_bits_ignored(void **state)
{
    struct fixture *f = *state;
    if (is27(f->L))
        skip();
    uint64_t a = fake_str(f->img, f->L, OBJ, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
    uint64_t low = get_state(f, a) & 0xff;
    assert_int_not_equal(get_state(f, a) >> 8, 0);
    set_state(f, a, 0xffffff00u | low);
    expect_str(f, a, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
    set_state(f, a, 0x42f61900u | (low ^ 0x80)); /* ready / statically_allocated flipped */
    expect_str(f, a, "r\xc3\xa9sum\xc3\xa9_\xcf\x80");
}

static void garbage_state(void **state)
{
    struct fixture *f = *state;
    if (is27(f->L))
        skip();
    /* kinds 0 (not ready), 3, 5, 6, 7, on an ASCII and a UCS-2 string */
    const unsigned bad_kinds[] = {0, 3, 5, 6, 7};
    uint64_t u = fake_str(f->img, f->L, OBJ + 0x2000, "\xcf\x80\xcf\x80");
    uint64_t ulow = get_state(f, u) & 0xff;
    for (size_t i = 0; i < 5; i++) {
        set_state(f, u, (ulow & ~0x1cu) | bad_kinds[i] << 2);
        expect_str_err(f, u, 64, PF_ERR_CORRUPT);
    }
    set_state(f, u, ulow);
    expect_str(f, u, "\xcf\x80\xcf\x80");
    uint64_t a = fake_str(f->img, f->L, OBJ, "hello");
    uint64_t low = get_state(f, a) & 0xff;
    for (size_t i = 0; i < 5; i++) {
        set_state(f, a, (low & ~0x1cu) | bad_kinds[i] << 2);
        expect_str_err(f, a, 64, PF_ERR_CORRUPT);
    }
    /* ascii with kind 2 or 4 */
    set_state(f, a, (low & ~0x1cu) | 2u << 2);
    expect_str_err(f, a, 64, PF_ERR_CORRUPT);
    set_state(f, a, (low & ~0x1cu) | 4u << 2);
    expect_str_err(f, a, 64, PF_ERR_CORRUPT);
    set_state(f, a, low);
    expect_str(f, a, "hello");

    /* An "ASCII" string holding a byte >= 0x80. */
    uint8_t hi = 0xe9;
    assert_int_equal(pf_image_write(f->img, a + f->L->unicode.ascii_size + 1, &hi, 1), PF_OK);
    expect_str_err(f, a, 64, PF_ERR_CORRUPT);

    /* A compact UCS-4 string holding a code point past U+10FFFF. */
    uint64_t b = fake_str(f->img, f->L, OBJ + 0x1000, "\xf0\x9f\x90\x8d!");
    uint32_t big = 0x110000;
    assert_int_equal(pf_image_write(f->img, b + f->L->unicode.compact_size, &big, 4), PF_OK);
    expect_str_err(f, b, 64, PF_ERR_CORRUPT);
}

/* A lone surrogate is valid in a Python str; it comes out as U+FFFD. */
static void lone_surrogate(void **state)
{
    struct fixture *f = *state;
    if (is27(f->L))
        skip();
    uint64_t a = fake_str(f->img, f->L, OBJ, "a\xcf\x80z"); /* kind 2 */
    uint16_t sur = 0xd800;
    assert_int_equal(pf_image_write(f->img, a + f->L->unicode.compact_size + 4, &sur, 2), PF_OK);
    expect_str(f, a, "a\xcf\x80\xef\xbf\xbd");
}

static void length_caps(void **state)
{
    struct fixture *f = *state;
    /* 10 characters need cap 11. */
    uint64_t a = fake_str(f->img, f->L, OBJ, "0123456789");
    expect_str_err(f, a, 10, PF_ERR_CORRUPT);
    expect_str_err(f, a, 1, PF_ERR_CORRUPT);
    char out[11];
    size_t len = 0;
    assert_int_equal(pf_pystr_read(&f->mem, f->L, a, out, 11, &len), PF_OK);
    assert_int_equal(len, 10);
    assert_int_equal(pf_pystr_read(&f->mem, f->L, a, out, 0, &len), PF_ERR_INTERNAL);

    /* 4 code points, 8 bytes of UTF-8: the code-point count fits cap 6, the
     * encoding does not. */
    uint64_t b = fake_str(f->img, f->L, OBJ + 0x1000, "\xcf\x80\xcf\x80\xcf\x80\xcf\x80");
    expect_str_err(f, b, 6, PF_ERR_CORRUPT);
    expect_str_err(f, b, 8, PF_ERR_CORRUPT);
    assert_int_equal(pf_pystr_read(&f->mem, f->L, b, out, 9, &len), PF_OK);
    assert_int_equal(len, 8);

    /* PF_MAX_STRING bytes are fine, one more is not, whatever the cap. */
    char *s = malloc(PF_MAX_STRING + 2);
    assert_non_null(s);
    memset(s, 'n', PF_MAX_STRING + 1);
    s[PF_MAX_STRING] = '\0';
    expect_str(f, fake_str(f->img, f->L, OBJ + 0x10000, s), s);
    s[PF_MAX_STRING] = 'n';
    s[PF_MAX_STRING + 1] = '\0';
    expect_str_err(f, fake_str(f->img, f->L, OBJ + 0x20000, s), PF_MAX_STRING + 2, PF_ERR_CORRUPT);
    free(s);

    /* Length fields read as garbage: huge, negative. */
    struct pf_field lenf = is27(f->L) ? f->L->bytes.ob_size : f->L->unicode.length;
    uint64_t c = fake_str(f->img, f->L, OBJ + 0x30000, "abc");
    const uint64_t bad[] = {1ull << 62, UINT64_MAX, 1ull << 32, PF_MAX_STRING + 1};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pf_image_write_uint(f->img, c + lenf.off, bad[i], lenf.width), PF_OK);
        expect_str_err(f, c, PF_MAX_STRING + 2, PF_ERR_CORRUPT);
    }
    /* A length that fits the cap but runs past the mapped object: a fault. */
    assert_int_equal(pf_image_write_uint(f->img, c + lenf.off, 4000, lenf.width), PF_OK);
    expect_str_err(f, c, PF_MAX_STRING + 2, PF_ERR_FAULT);
}

static void unmapped(void **state)
{
    struct fixture *f = *state;
    expect_str_err(f, 0, 64, PF_ERR_FAULT);
    expect_str_err(f, 0xdead0000, 64, PF_ERR_FAULT);
    expect_str_err(f, UINT64_MAX - 8, 64, PF_ERR_CORRUPT);
    uint8_t *p = NULL;
    size_t len = 0;
    assert_int_equal(pf_pybytes_read(&f->mem, f->L, 0, 100, &p, &len), PF_ERR_FAULT);
    assert_int_equal(pf_pybytes_read(&f->mem, f->L, 0xdead0000, 100, &p, &len), PF_ERR_FAULT);
    assert_null(p);
    if (is27(f->L))
        return;
    /* A legacy string whose data pointer is NULL or dangling. */
    uint64_t a = fake_str_legacy(f->img, f->L, OBJ, "app.py");
    struct pf_field d = f->L->unicode.data;
    assert_int_equal(pf_image_write_uint(f->img, a + d.off, 0, 8), PF_OK);
    expect_str_err(f, a, 64, PF_ERR_FAULT);
    assert_int_equal(pf_image_write_uint(f->img, a + d.off, 0xdead0000, 8), PF_OK);
    expect_str_err(f, a, 64, PF_ERR_FAULT);
}

/* Copy the first n bytes of the object at from into a new mapping that ends
 * exactly where the object's data ends, so any read past it faults. */
static uint64_t move_to_mapping_end(struct fixture *f, uint64_t from, size_t n, uint64_t to)
{
    uint8_t buf[4096];
    assert_true(n <= sizeof(buf));
    assert_int_equal(pf_mem_read(&f->mem, from, buf, n), PF_OK);
    assert_int_equal(pf_image_map(f->img, to, n), PF_OK);
    assert_int_equal(pf_image_write(f->img, to, buf, n), PF_OK);
    return to;
}

/* The speculative first read faults at the end of a mapping; the minimal
 * header and the data are then read separately. Each object is copied with
 * its real size (sys.getsizeof): a compact ASCII string is smaller than the
 * layout's unicode.size, which reaches the legacy `data` field. */
static void object_at_end_of_mapping(void **state)
{
    struct fixture *f = *state;
    const struct pf_layout *L = f->L;
    size_t n;
    uint64_t a, b;

    a = fake_str(f->img, L, OBJ, "tail.py");
    n = (is27(L) ? L->bytes.ob_sval.off : L->unicode.ascii_size) + 8;
    b = move_to_mapping_end(f, a, n, OBJ + 0x10000);
    f->mem.reads = 0;
    expect_str(f, b, "tail.py");
    assert_int_equal(f->mem.reads, 3); /* failed first read, header, data */

    if (!is27(L)) {
        a = fake_str(f->img, L, OBJ + 0x20000, "\xcf\x80\xcf\x80");
        n = L->unicode.compact_size + 3 * 2; /* two UCS-2 chars and the NUL */
        b = move_to_mapping_end(f, a, n, OBJ + 0x30000);
        expect_str(f, b, "\xcf\x80\xcf\x80");

        a = fake_str(f->img, L, OBJ + 0x60000, "");
        b = move_to_mapping_end(f, a, L->unicode.ascii_size + 1, OBJ + 0x70000);
        expect_str(f, b, "");

        /* A legacy string's object ends with its data pointer. */
        a = fake_str_legacy(f->img, L, OBJ + 0x80000, "caf\xc3\xa9");
        b = move_to_mapping_end(f, a, L->unicode.data.off + 8, OBJ + 0x90000);
        expect_str(f, b, "caf\xc3\xa9");
    }

    static const uint8_t lt[] = {0x80, 0x00, 0xd8, 0x09, 0x0a};
    a = fake_bytes(f->img, L, OBJ + 0x40000, lt, sizeof(lt));
    b = move_to_mapping_end(f, a, L->bytes.ob_sval.off + sizeof(lt), OBJ + 0x50000);
    uint8_t *p = NULL;
    assert_int_equal(pf_pybytes_read(&f->mem, L, b, 100, &p, &n), PF_OK);
    assert_int_equal(n, sizeof(lt));
    assert_memory_equal(p, lt, sizeof(lt));
    free(p);
}

static void bytes_objects(void **state)
{
    struct fixture *f = *state;
    const struct pf_layout *L = f->L;
    uint8_t *p = NULL;
    size_t n = 0;

    /* With NULs inside: the length is ob_size, not strlen. */
    static const uint8_t lt[] = {0x00, 0x01, 0x00, 0xff, 0x80, 0x00};
    uint64_t a = fake_bytes(f->img, L, OBJ, lt, sizeof(lt));
    f->mem.reads = 0;
    assert_int_equal(pf_pybytes_read(&f->mem, L, a, 100, &p, &n), PF_OK);
    assert_int_equal(f->mem.reads, 1);
    assert_int_equal(n, sizeof(lt));
    assert_memory_equal(p, lt, sizeof(lt));
    free(p);

    uint64_t type = 0;
    assert_int_equal(pf_mem_read(&f->mem, a + L->object.ob_type.off, &type, 8), PF_OK);
    assert_int_equal(type, is27(L) ? FAKE_TYPE_STR : FAKE_TYPE_BYTES);

    /* Empty. */
    uint64_t e = fake_bytes(f->img, L, OBJ + 0x1000, NULL, 0);
    p = NULL;
    assert_int_equal(pf_pybytes_read(&f->mem, L, e, 100, &p, &n), PF_OK);
    assert_int_equal(n, 0);
    assert_non_null(p);
    free(p);

    /* Large: two reads, every byte right. */
    size_t big = 70000;
    uint8_t *src = malloc(big);
    assert_non_null(src);
    for (size_t i = 0; i < big; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 8));
    uint64_t g = fake_bytes(f->img, L, OBJ + 0x10000, src, big);
    f->mem.reads = 0;
    assert_int_equal(pf_pybytes_read(&f->mem, L, g, PF_MAX_LINETABLE, &p, &n), PF_OK);
    assert_int_equal(f->mem.reads, 2);
    assert_int_equal(n, big);
    assert_memory_equal(p, src, big);
    free(p);

    /* Over max: refused before any data is read or allocated. */
    p = NULL;
    n = 777;
    assert_int_equal(pf_pybytes_read(&f->mem, L, g, big - 1, &p, &n), PF_ERR_CORRUPT);
    assert_null(p);
    assert_int_equal(n, 777);
    assert_int_equal(pf_pybytes_read(&f->mem, L, g, big, &p, &n), PF_OK);
    free(p);
    free(src);

    /* Negative or absurd ob_size. */
    struct pf_field sz = L->bytes.ob_size;
    p = NULL;
    assert_int_equal(pf_image_write_uint(f->img, a + sz.off, (uint64_t)-1, sz.width), PF_OK);
    assert_int_equal(pf_pybytes_read(&f->mem, L, a, SIZE_MAX, &p, &n), PF_ERR_CORRUPT);
    assert_int_equal(pf_image_write_uint(f->img, a + sz.off, 1ull << 40, sz.width), PF_OK);
    assert_int_equal(pf_pybytes_read(&f->mem, L, a, SIZE_MAX, &p, &n), PF_ERR_CORRUPT);
    /* Fits max, but runs past the mapping. */
    assert_int_equal(pf_image_write_uint(f->img, a + sz.off, 100000, sz.width), PF_OK);
    assert_int_equal(pf_pybytes_read(&f->mem, L, a, SIZE_MAX, &p, &n), PF_ERR_FAULT);
    assert_null(p);
}

/* Strings in a fake code object, as the code reader will find them. */
static void code_object_strings(void **state)
{
    struct fixture *f = *state;
    const struct pf_layout *L = f->L;
    static const uint8_t lt[] = {0x00, 0x01, 0x03, 0x01};
    uint64_t c = fake_code(f->img, L, OBJ, "app.py", "r\xc3\xa9sum\xc3\xa9", 42, lt, sizeof(lt));
    uint8_t buf[PF_MAX_STRUCT];
    uint64_t v = 0;

    assert_int_equal(pf_mem_read(&f->mem, c, buf, L->code.size), PF_OK);
    assert_int_equal(pf_field_ptr(buf, L->code.size, L->object.ob_type, &v), PF_OK);
    assert_int_equal(v, FAKE_TYPE_CODE);
    int64_t first;
    assert_int_equal(pf_field_int(buf, L->code.size, L->code.firstlineno, &first), PF_OK);
    assert_int_equal(first, 42);
    assert_int_equal(pf_field_ptr(buf, L->code.size, L->code.filename, &v), PF_OK);
    expect_str(f, v, "app.py");
    assert_int_equal(pf_field_ptr(buf, L->code.size, L->code.name, &v), PF_OK);
    expect_str(f, v, "r\xc3\xa9sum\xc3\xa9"); /* 2.7: the bytes as given */
    if (L->code.qualname.width) {
        assert_int_equal(pf_field_ptr(buf, L->code.size, L->code.qualname, &v), PF_OK);
        expect_str(f, v, "r\xc3\xa9sum\xc3\xa9");
    }
    if (L->code.firsttraceable.width) {
        assert_int_equal(pf_field_uint(buf, L->code.size, L->code.firsttraceable, &v), PF_OK);
        assert_int_equal(v, 0);
    }
    assert_int_equal(pf_field_ptr(buf, L->code.size, L->code.linetable, &v), PF_OK);
    uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(pf_pybytes_read(&f->mem, L, v, PF_MAX_LINETABLE, &p, &n), PF_OK);
    assert_int_equal(n, sizeof(lt));
    assert_memory_equal(p, lt, sizeof(lt));
    free(p);
}

/* A layout whose sizes are impossible is refused, not trusted. */
static void bad_layout(void **state)
{
    struct fixture *f = *state;
    struct pf_layout L = *f->L;
    uint64_t a = fake_str(f->img, f->L, OBJ, "x");
    uint64_t b = fake_bytes(f->img, f->L, OBJ + 0x1000, "y", 1);
    char out[16];
    size_t len;
    uint8_t *p;

    L.unicode.ascii_size = PF_MAX_STRUCT + 1;
    L.bytes.size = PF_MAX_STRUCT + 1;
    assert_int_equal(pf_pystr_read(&f->mem, &L, a, out, sizeof(out), &len), PF_ERR_CORRUPT);
    assert_int_equal(pf_pybytes_read(&f->mem, &L, b, 16, &p, &len), PF_ERR_CORRUPT);
    L = *f->L;
    L.unicode.ascii_size = 0;
    L.bytes.size = 0;
    assert_int_equal(pf_pystr_read(&f->mem, &L, a, out, sizeof(out), &len), PF_ERR_CORRUPT);
    assert_int_equal(pf_pybytes_read(&f->mem, &L, b, 16, &p, &len), PF_ERR_CORRUPT);
    L = *f->L;
    L.str = 0;
    assert_int_equal(pf_pystr_read(&f->mem, &L, a, out, sizeof(out), &len), PF_ERR_UNSUPPORTED);
    L = *f->L;
    L.bytes.ob_size.off = 4090; /* outside the header the reader copies */
    assert_int_equal(pf_pybytes_read(&f->mem, &L, b, 16, &p, &len), PF_ERR_CORRUPT);

    /* Offsets that would put data over the header or past our buffers. */
    if (!is27(f->L)) {
        uint64_t u = fake_str(f->img, f->L, OBJ + 0x2000, "\xcf\x80");
        uint64_t g = fake_str_legacy(f->img, f->L, OBJ + 0x3000, "legacy");
        L = *f->L;
        L.unicode.compact_size = 0;
        assert_int_equal(pf_pystr_read(&f->mem, &L, u, out, sizeof(out), &len), PF_ERR_CORRUPT);
        L = *f->L;
        L.unicode.data.off = 1u << 20;
        assert_int_equal(pf_pystr_read(&f->mem, &L, g, out, sizeof(out), &len), PF_ERR_CORRUPT);
        L.unicode.data.off = PF_MAX_STRUCT - 7;
        assert_int_equal(pf_pystr_read(&f->mem, &L, g, out, sizeof(out), &len), PF_ERR_CORRUPT);
        L = *f->L;
        assert_int_equal(pf_pystr_read(&f->mem, &L, g, out, sizeof(out), &len), PF_OK);
    }

    /* A data offset that wraps around the address space from an object at
     * its very top. */
    uint64_t top = UINT64_MAX - 0x1ff;
    fake_str(f->img, f->L, top, "x");
    L = *f->L;
    L.unicode.ascii_size = PF_MAX_STRUCT;
    L.bytes.ob_sval.off = PF_MAX_STRUCT;
    assert_int_equal(pf_pystr_read(&f->mem, &L, top, out, sizeof(out), &len), PF_ERR_CORRUPT);
    assert_int_equal(pf_pybytes_read(&f->mem, &L, top, 16, &p, &len), PF_ERR_CORRUPT);
}

/* The encoder on its own: every UTF-8 length boundary, surrogates, values
 * past U+10FFFF, bad kinds, exact caps. */
static void encode_utf8(void **state)
{
    (void)state;
    char out[64];
    size_t n = 99;

    const uint32_t cps[] = {0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xfffd, 0xffff, 0x10000, 0x10ffff};
    const char *want = "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbd\xef\xbf\xbf"
                       "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)cps, 9, 4, out, sizeof(out), &n), PF_OK);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n + 1);
    /* Exactly enough room (23 bytes + NUL), then one byte short. */
    assert_int_equal(n, 23);
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)cps, 9, 4, out, 24, &n), PF_OK);
    n = 99;
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)cps, 9, 4, out, 23, &n), PF_ERR_CORRUPT);
    assert_int_equal(n, 99);

    const uint32_t too_big[] = {0x41, 0x110000};
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)too_big, 2, 4, out, sizeof(out), &n),
                     PF_ERR_CORRUPT);
    const uint32_t huge[] = {0xffffffffu};
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)huge, 1, 4, out, sizeof(out), &n),
                     PF_ERR_CORRUPT);

    const uint16_t sur[] = {0xd800, 0x61, 0xdfff, 0xdbff, 0xdc00};
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)sur, 5, 2, out, sizeof(out), &n), PF_OK);
    const char *rep = "\xef\xbf\xbd"
                      "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
    assert_int_equal(n, strlen(rep));
    assert_memory_equal(out, rep, n + 1);
    const uint32_t sur4[] = {0xdc80};
    assert_int_equal(pf_pystr_encode_utf8((const uint8_t *)sur4, 1, 4, out, sizeof(out), &n),
                     PF_OK);
    assert_string_equal(out, "\xef\xbf\xbd");

    const uint8_t l1[] = {'c', 'a', 'f', 0xe9, 0xff};
    assert_int_equal(pf_pystr_encode_utf8(l1, 5, 1, out, sizeof(out), &n), PF_OK);
    assert_string_equal(out, "caf\xc3\xa9\xc3\xbf");

    assert_int_equal(pf_pystr_encode_utf8(NULL, 0, 1, out, 1, &n), PF_OK);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    /* Bad kinds, over data that any width would read as valid 'A's. */
    const uint8_t as[32] = {'A', 0, 0, 0, 'A', 0, 0, 0, 'A', 0, 0, 0, 'A'};
    for (unsigned k = 0; k < 9; k++) {
        if (k == 1 || k == 2 || k == 4)
            continue;
        assert_int_equal(pf_pystr_encode_utf8(as, 1, k, out, sizeof(out), &n), PF_ERR_CORRUPT);
    }
    assert_int_equal(pf_pystr_encode_utf8(l1, 1, 1, out, 0, &n), PF_ERR_INTERNAL);
    assert_int_equal(pf_pystr_encode_utf8(NULL, 1, 1, out, 8, &n), PF_ERR_INTERNAL);

    /* PF_MAX_STRING bounds the output even with a bigger buffer. */
    char *big = malloc(PF_MAX_STRING + 16);
    uint8_t *in = malloc(PF_MAX_STRING + 1);
    assert_non_null(big);
    assert_non_null(in);
    memset(in, 0xe9, PF_MAX_STRING + 1);
    assert_int_equal(pf_pystr_encode_utf8(in, PF_MAX_STRING / 2, 1, big, PF_MAX_STRING + 16, &n),
                     PF_OK);
    assert_int_equal(n, PF_MAX_STRING);
    assert_int_equal(
        pf_pystr_encode_utf8(in, PF_MAX_STRING / 2 + 1, 1, big, PF_MAX_STRING + 16, &n),
        PF_ERR_CORRUPT);
    free(in);
    free(big);
}

int main(void)
{
    int failed = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate_setup_teardown(ascii, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(one_read_for_short_strings, setup, teardown,
                                                     (void *)L),
            cmocka_unit_test_prestate_setup_teardown(two_reads_for_long_strings, setup, teardown,
                                                     (void *)L),
            cmocka_unit_test_prestate_setup_teardown(head_read_boundary, setup, teardown,
                                                     (void *)L),
            cmocka_unit_test_prestate_setup_teardown(latin1, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(ucs2, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(ucs4, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(empty, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(str27_raw_bytes, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(legacy, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(state_high_bits_ignored, setup, teardown,
                                                     (void *)L),
            cmocka_unit_test_prestate_setup_teardown(garbage_state, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(lone_surrogate, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(length_caps, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(unmapped, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(object_at_end_of_mapping, setup, teardown,
                                                     (void *)L),
            cmocka_unit_test_prestate_setup_teardown(bytes_objects, setup, teardown, (void *)L),
            cmocka_unit_test_prestate_setup_teardown(code_object_strings, setup, teardown,
                                                     (void *)L),
            cmocka_unit_test_prestate_setup_teardown(bad_layout, setup, teardown, (void *)L),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }

    const struct CMUnitTest pure[] = {
        cmocka_unit_test(encode_utf8),
    };
    failed += cmocka_run_group_tests_name("utf8", pure, NULL, NULL);
    return failed != 0;
}

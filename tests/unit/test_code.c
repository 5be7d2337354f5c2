/* The code-object reader and its cache over fake code objects, once per
 * generated layout: names and filenames interned, hits that read nothing
 * but the header, revalidation when an address is reused, type checks on
 * the code object and on its strings, the hostile cases, and line numbers
 * from tables captured from real interpreters, including the memo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_python.h"
#include "linetable_vectors.h"
#include "pyflame/cpython/code.h"
#include "pyflame/target/image.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/base/limits.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/target/mem.h"

#define NVECTORS (sizeof(LT_VECTORS) / sizeof(LT_VECTORS[0]))

#define CODE 0x100000ull    /* the code object most tests use */
#define CODES 0x1000000ull  /* code object i at CODES + i * 0x10000 */
#define STRS 0x900000ull    /* extra strings and tables, 0x1000 apart */
#define UNMAPPED 0xdead0000ull

/* An lnotab that any version's decoder accepts as far as reading goes; the
 * line tests use captured tables instead. */
static const uint8_t LT[] = {0x00, 0x01, 0x04, 0x01, 0x06, 0x02};

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem mem;
    struct pf_intern *names;
    struct pf_code_cache *cache;
    struct pf_pytypes types;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->L = *state;
    assert_int_equal(pf_image_new(&fx->img), PF_OK);
    assert_int_equal(pf_mem_open_image(fx->img, &fx->mem), PF_OK);
    assert_int_equal(pf_intern_new(&fx->names), PF_OK);
    assert_int_equal(pf_code_cache_new(256, &fx->cache), PF_OK);
    /* As pf_interp_discover fills them in: 2.7 names are str, and so are
     * its line tables. */
    fx->types = (struct pf_pytypes){
        .code = FAKE_TYPE_CODE,
        .str = FAKE_TYPE_STR,
        .bytes = fx->L->str == PF_STR_BYTES ? FAKE_TYPE_STR : FAKE_TYPE_BYTES,
    };
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pf_code_cache_free(fx->cache);
    pf_intern_free(fx->names);
    pf_mem_close(&fx->mem);
    pf_image_free(fx->img);
    free(fx);
    return 0;
}

static void set_field(struct fixture *fx, uint64_t obj, struct pf_field f, uint64_t v)
{
    assert_int_not_equal(f.width, 0);
    assert_int_equal(pf_image_write_uint(fx->img, obj + f.off, v, f.width), PF_OK);
}

static struct pf_code *get_ok(struct fixture *fx, uint64_t addr)
{
    struct pf_code *c = NULL;
    pf_err err = pf_code_get(fx->cache, &fx->mem, fx->L, &fx->types, fx->names, addr, NULL, 0, &c);
    if (err != PF_OK)
        fail_msg("pf_code_get(0x%llx): %s", (unsigned long long)addr, pf_strerror(err));
    assert_non_null(c);
    assert_int_equal(c->addr, addr);
    return c;
}

/* pf_code_get must fail with want and leave *out alone. */
static void get_err(struct fixture *fx, const struct pf_pytypes *types, uint64_t addr,
                    const uint8_t *hdr, size_t hdr_len, pf_err want)
{
    struct pf_code sentinel, *c = &sentinel;
    pf_err err = pf_code_get(fx->cache, &fx->mem, fx->L, types, fx->names, addr, hdr, hdr_len, &c);
    if (err != want)
        fail_msg("pf_code_get(0x%llx): %s, want %s", (unsigned long long)addr, pf_strerror(err),
                 pf_strerror(want));
    assert_ptr_equal(c, &sentinel);
}

static void expect_text(struct fixture *fx, uint32_t id, const char *want)
{
    assert_string_equal(pf_intern_text(fx->names, id), want);
}

/* Names, filenames, first line and line table of a fresh entry. Equal
 * strings in different objects get the same id. */
static void reads_and_interns(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    const char *name = "r\xc3\xa9sum\xc3\xa9"; /* 2.7: the bytes as given */

    fake_code(fx->img, L, CODE, "app.py", name, 42, LT, sizeof(LT));
    fake_code(fx->img, L, CODES, "app.py", "other", 7, LT, 2);
    struct pf_code *c = get_ok(fx, CODE);
    expect_text(fx, c->file, "app.py");
    expect_text(fx, c->name, name);
    assert_int_equal(c->firstlineno, 42);
    assert_int_equal(c->firsttraceable, 0);
    assert_int_equal(c->linetable_len, sizeof(LT));
    assert_memory_equal(c->linetable, LT, sizeof(LT));
    uint32_t file = c->file, nm = c->name;

    c = get_ok(fx, CODES);
    assert_int_equal(c->file, file); /* same text, same id */
    assert_int_not_equal(c->name, nm);
    expect_text(fx, c->name, "other");
    assert_int_equal(c->firstlineno, 7);
    assert_int_equal(c->linetable_len, 2);

    /* The first entry survived the second lookup. */
    c = get_ok(fx, CODE);
    expect_text(fx, c->name, name);
    assert_int_equal(c->firstlineno, 42);
}

/* A hit reads the header and nothing else; with the header given (as the
 * sampler batches it with the frames) it reads nothing at all. */
static void hit_reads_only_the_header(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    fx->mem.reads = 0;
    struct pf_code *c1 = get_ok(fx, CODE);
    assert_true(fx->mem.reads >= 4); /* header, two strings, a table */
    uint32_t file = c1->file, name = c1->name;

    fx->mem.reads = 0;
    struct pf_code *c2 = get_ok(fx, CODE);
    assert_int_equal(fx->mem.reads, 1);
    assert_ptr_equal(c2, c1);
    assert_int_equal(c2->file, file);
    assert_int_equal(c2->name, name);

    uint8_t hdr[PF_MAX_STRUCT];
    size_t len = pf_code_header_size(L);
    assert_int_equal(pf_mem_read(&fx->mem, CODE, hdr, len), PF_OK);
    fx->mem.reads = 0;
    struct pf_code *c3 = NULL;
    assert_int_equal(
        pf_code_get(fx->cache, &fx->mem, L, &fx->types, fx->names, CODE, hdr, len, &c3), PF_OK);
    assert_int_equal(fx->mem.reads, 0);
    assert_ptr_equal(c3, c1);
    assert_int_equal(c3->name, name);
}

/* The header copy covers every field the reader takes from it. */
static void header_size_covers_fields(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    size_t n = pf_code_header_size(L);

    assert_true(n >= L->code.size);
    assert_true(n <= PF_MAX_STRUCT);
    assert_true(pf_field_ok(L->object.ob_type, n));
    assert_true(pf_field_ok(L->code.name, n));
    assert_true(pf_field_ok(L->code.filename, n));
    assert_true(pf_field_ok(L->code.linetable, n));
    assert_true(pf_field_ok(L->code.firstlineno, n));
    if (L->code.firsttraceable.width)
        assert_true(pf_field_ok(L->code.firsttraceable, n));
}

/* A code object freed and another allocated at its address: each header
 * field the entry was built from is checked, and a change reloads it. */
static void reloads_when_reused(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    static const uint8_t lt2[] = {0x00, 0x02, 0x02, 0x01};

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    get_ok(fx, CODE);

    /* A new name object at the same code address. */
    set_field(fx, CODE, L->code.name, fake_str(fx->img, L, STRS, "g"));
    fx->mem.reads = 0;
    struct pf_code *c = get_ok(fx, CODE);
    assert_true(fx->mem.reads > 1);
    expect_text(fx, c->name, "g");
    expect_text(fx, c->file, "app.py");

    set_field(fx, CODE, L->code.filename, fake_str(fx->img, L, STRS + 0x1000, "lib.py"));
    c = get_ok(fx, CODE);
    expect_text(fx, c->file, "lib.py");
    expect_text(fx, c->name, "g");

    set_field(fx, CODE, L->code.linetable, fake_bytes(fx->img, L, STRS + 0x2000, lt2, sizeof(lt2)));
    c = get_ok(fx, CODE);
    assert_int_equal(c->linetable_len, sizeof(lt2));
    assert_memory_equal(c->linetable, lt2, sizeof(lt2));

    set_field(fx, CODE, L->code.firstlineno, 77);
    c = get_ok(fx, CODE);
    assert_int_equal(c->firstlineno, 77);

    /* And unchanged again: a hit. */
    fx->mem.reads = 0;
    c = get_ok(fx, CODE);
    assert_int_equal(fx->mem.reads, 1);
    expect_text(fx, c->name, "g");
}

/* More code objects than cache slots: collisions evict, never mix up. */
static void many_code_objects(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_code_cache *small = NULL;
    char name[32];

    assert_int_equal(pf_code_cache_new(1, &small), PF_OK);
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        fake_code(fx->img, L, CODES + (uint64_t)i * 0x10000, "m.py", name, i + 1, LT, sizeof(LT));
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 150; i++) {
            struct pf_code *c = NULL;
            uint64_t addr = CODES + (uint64_t)i * 0x10000;
            assert_int_equal(
                pf_code_get(small, &fx->mem, L, &fx->types, fx->names, addr, NULL, 0, &c), PF_OK);
            snprintf(name, sizeof(name), "f%d", i);
            assert_int_equal(c->addr, addr);
            expect_text(fx, c->name, name);
            assert_int_equal(c->firstlineno, i + 1);
        }
    }
    pf_code_cache_free(small);
    pf_code_cache_free(NULL);
}

/* Not a code object: refused when the code type is known, before and
 * after the address was cached; not checked when it is unknown. */
static void code_type_checked(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_pytypes unknown = fx->types;
    unknown.code = 0;

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    set_field(fx, CODE, L->object.ob_type, FAKE_TYPE_STR);
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    struct pf_code *c = NULL;
    assert_int_equal(
        pf_code_get(fx->cache, &fx->mem, L, &unknown, fx->names, CODE, NULL, 0, &c), PF_OK);
    expect_text(fx, c->name, "f");

    /* Cached now; the type is still checked on every lookup. */
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    uint8_t hdr[PF_MAX_STRUCT];
    size_t len = pf_code_header_size(L);
    assert_int_equal(pf_mem_read(&fx->mem, CODE, hdr, len), PF_OK);
    get_err(fx, &fx->types, CODE, hdr, len, PF_ERR_CORRUPT);

    set_field(fx, CODE, L->object.ob_type, FAKE_TYPE_CODE);
    c = get_ok(fx, CODE);
    expect_text(fx, c->name, "f");
}

/* A name or filename that is not a str object is refused (when the str
 * type is known); the entry then does not serve the bad object. */
static void string_types_checked(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_pytypes unknown = fx->types;
    unknown.str = 0;

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    uint64_t name = CODE + 0x2000, file = CODE + 0x1000; /* where fake_code puts them */
    set_field(fx, name, L->object.ob_type, FAKE_TYPE_CODE);
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    struct pf_code *c = NULL;
    assert_int_equal(
        pf_code_get(fx->cache, &fx->mem, L, &unknown, fx->names, CODE, NULL, 0, &c), PF_OK);
    set_field(fx, name, L->object.ob_type, FAKE_TYPE_STR);

    set_field(fx, file, L->object.ob_type, 0x1234);
    set_field(fx, CODE, L->code.firstlineno, 11); /* so the entry is reloaded */
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT); /* no stale hit either */
    set_field(fx, file, L->object.ob_type, FAKE_TYPE_STR);
    c = get_ok(fx, CODE);
    expect_text(fx, c->file, "app.py");
    assert_int_equal(c->firstlineno, 11);

    /* A name pointer redirected at a non-string after caching. */
    uint64_t bogus = fake_bytes(fx->img, L, STRS, "xy", 2);
    if (L->str != PF_STR_BYTES) { /* 2.7 bytes are str objects */
        set_field(fx, CODE, L->code.name, bogus);
        get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    }
}

/* A line table that is not a bytes object (str in 2.7) is not decoded. */
static void linetable_type_checked(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    uint64_t table = fake_bytes(fx->img, L, STRS + 0x3000, LT, sizeof(LT));
    set_field(fx, CODE, L->code.linetable, table);
    get_ok(fx, CODE);
    set_field(fx, table, L->object.ob_type, FAKE_TYPE_CODE);
    set_field(fx, CODE, L->code.firstlineno, 11); /* so the entry is reloaded */
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
}

/* Pointers into unmapped memory fault; NULL ones too. */
static void unmapped(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    get_err(fx, &fx->types, UNMAPPED, NULL, 0, PF_ERR_FAULT);
    get_err(fx, &fx->types, 0, NULL, 0, PF_ERR_FAULT);

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    const struct pf_field fields[] = {L->code.name, L->code.filename, L->code.linetable};
    for (size_t i = 0; i < 3; i++) {
        uint64_t saved = 0;
        assert_int_equal(pf_mem_read(&fx->mem, CODE + fields[i].off, &saved, 8), PF_OK);
        set_field(fx, CODE, fields[i], UNMAPPED);
        get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_FAULT);
        set_field(fx, CODE, fields[i], 0);
        get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_FAULT);
        set_field(fx, CODE, fields[i], saved);
        get_ok(fx, CODE);
    }
}

/* Values no real code object has. */
static void hostile_values(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    fake_code(fx->img, L, CODE, "app.py", "f", 10, LT, sizeof(LT));
    set_field(fx, CODE, L->code.firstlineno, (uint32_t)-5);
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    set_field(fx, CODE, L->code.firstlineno, 10);
    get_ok(fx, CODE);

    if (L->code.firsttraceable.width) {
        set_field(fx, CODE, L->code.firsttraceable, (uint32_t)-1);
        set_field(fx, CODE, L->code.firstlineno, 12); /* force a reload */
        get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
        set_field(fx, CODE, L->code.firsttraceable, 0);
    }

    /* A line table longer than we accept. */
    uint64_t table = CODE + 0x4000; /* fake_code's bytes object */
    set_field(fx, table, L->bytes.ob_size, PF_MAX_LINETABLE + 1);
    set_field(fx, CODE, L->code.firstlineno, 13);
    get_err(fx, &fx->types, CODE, NULL, 0, PF_ERR_CORRUPT);
    set_field(fx, table, L->bytes.ob_size, sizeof(LT));
    assert_int_equal(get_ok(fx, CODE)->linetable_len, sizeof(LT));

    /* A header copy too short for the fields. */
    uint8_t hdr[PF_MAX_STRUCT];
    size_t len = pf_code_header_size(L);
    assert_int_equal(pf_mem_read(&fx->mem, CODE, hdr, len), PF_OK);
    get_err(fx, &fx->types, CODE, hdr, L->code.name.off + 4, PF_ERR_CORRUPT);
    get_err(fx, &fx->types, CODE, hdr, 0, PF_ERR_CORRUPT);
}

/* 3.11+: _co_firsttraceable comes from the header; older versions have
 * none and report 0. */
static void firsttraceable_from_header(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    fake_code(fx->img, L, CODE, "gen.py", "coro", 30, LT, sizeof(LT));
    if (L->linetable == PF_LT_LOCATIONS_311) {
        assert_int_not_equal(L->code.firsttraceable.width, 0);
        set_field(fx, CODE, L->code.firsttraceable, 2); /* as for every gen/coro seen */
    }
    struct pf_code *c = get_ok(fx, CODE);
    assert_int_equal(c->firsttraceable, L->linetable == PF_LT_LOCATIONS_311 ? 2 : 0);
}

/* Vectors captured from the interpreter this layout was generated from. */
static bool vector_matches(const struct pf_layout *L, const struct lt_vector *v)
{
    size_t n = strlen(L->source);
    return v->kind == L->linetable && strncmp(v->python, L->source, n) == 0 &&
           (v->python[n] == '\0' || v->python[n] == ' ');
}

static void expect_line(struct pf_code *c, const struct pf_layout *L, int64_t offset, int want,
                        const char *what)
{
    int line = -12345;
    pf_err err = pf_code_line(c, L, offset, &line);
    if (err != PF_OK || line != want)
        fail_msg("%s offset %lld: %s, line %d; want line %d", what, (long long)offset,
                 pf_strerror(err), line, want);
}

/* Every captured table, through a fake code object and the cache: every
 * offset gives the line the interpreter reported, forwards and backwards
 * (the memo must not leak between offsets); before the first instruction
 * gives co_firstlineno. */
static void lines_from_captured_tables(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    size_t used = 0;
    char what[160];

    for (size_t k = 0; k < NVECTORS; k++) {
        const struct lt_vector *v = &LT_VECTORS[k];
        if (!vector_matches(L, v))
            continue;
        uint64_t addr = CODES + (uint64_t)used * 0x10000;
        used++;
        fake_code(fx->img, L, addr, "vec.py", v->func, v->firstlineno, v->table, v->table_len);
        struct pf_code *c = get_ok(fx, addr);
        expect_text(fx, c->name, v->func);
        snprintf(what, sizeof(what), "%s %s", v->python, v->func);
        for (size_t i = 0; i < v->nlines; i++)
            expect_line(c, L, (int64_t)(i * v->step), v->lines[i], what);
        for (size_t i = v->nlines; i-- > 0;)
            expect_line(c, L, (int64_t)(i * v->step), v->lines[i], what);
        expect_line(c, L, -1, v->firstlineno, what);
        expect_line(c, L, -2, v->firstlineno, what);
    }
    /* Eleven functions per interpreter (ten for 2.7), more for 3.11+. */
    assert_true(used >= 10);
}

/* The first captured table of this version with two offsets on different
 * lines. */
static const struct lt_vector *two_line_vector(const struct pf_layout *L, int64_t *a, int64_t *b)
{
    for (size_t k = 0; k < NVECTORS; k++) {
        const struct lt_vector *v = &LT_VECTORS[k];
        if (!vector_matches(L, v))
            continue;
        for (size_t i = 0; i < v->nlines; i++) {
            for (size_t j = i + 1; j < v->nlines; j++) {
                if (v->lines[i] > 0 && v->lines[j] > 0 && v->lines[i] != v->lines[j]) {
                    *a = (int64_t)(i * v->step);
                    *b = (int64_t)(j * v->step);
                    return v;
                }
            }
        }
    }
    fail_msg("no captured table with two lines for %s", pf_layout_name(L));
    return NULL;
}

static int line_at(const struct lt_vector *v, int64_t offset)
{
    return v->lines[(size_t)offset / v->step];
}

/* The memo answers a repeated offset without decoding, follows a new
 * offset, and does not survive a reload of the entry. */
static void line_memo(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    int64_t a = 0, b = 0;
    const struct lt_vector *v = two_line_vector(L, &a, &b);

    fake_code(fx->img, L, CODE, "memo.py", v->func, v->firstlineno, v->table, v->table_len);
    struct pf_code *c = get_ok(fx, CODE);
    expect_line(c, L, a, line_at(v, a), "first");
    assert_int_equal(c->memo_offset, a);
    assert_int_equal(c->memo_line, line_at(v, a));

    /* With the table hidden, only the memo can answer offset a. */
    size_t len = c->linetable_len;
    c->linetable_len = 0;
    expect_line(c, L, a, line_at(v, a), "memo");
    c->linetable_len = len;

    expect_line(c, L, b, line_at(v, b), "second");
    assert_int_equal(c->memo_offset, b);
    assert_int_equal(c->memo_line, line_at(v, b));
    expect_line(c, L, a, line_at(v, a), "back");

    /* A failed lookup leaves the memo as it was. */
    int line = -7;
    c->linetable_len = 1; /* truncated mid-entry: corrupt or not found */
    pf_err err = pf_code_line(c, L, b, &line);
    c->linetable_len = len;
    if (err != PF_OK) {
        assert_int_equal(line, -7);
        assert_int_equal(c->memo_offset, a);
    }

    /* Same table, first line moved by 100 (the code object at this address
     * was replaced): the reloaded entry answers from the new values, not
     * from the old memo. Every format stores lines relative to
     * co_firstlineno. */
    expect_line(c, L, a, line_at(v, a), "before reload");
    set_field(fx, CODE, L->code.firstlineno, (uint64_t)(v->firstlineno + 100));
    c = get_ok(fx, CODE);
    expect_line(c, L, a, line_at(v, a) + 100, "after reload");
}

#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)L)

/* Found by the frame fuzzer: a line table whose deltas take the line below
 * zero must not produce a negative line (which -1 and -2 would turn into
 * "no line" or "line omitted"). */
static void negative_line_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    static const uint8_t lnotab[] = {0x00, 0xa9, 0x00, 0x01, 0x14, 0x00, 0x00, 0x10};
    static const uint8_t lt310[] = {0x02, 0xf2}; /* 12 - 14 */
    static const uint8_t lt311[] = {0xe8, 0x1d}; /* svarint -14 */
    const uint8_t *t = L->linetable == PF_LT_LINETABLE_310 ? lt310
                     : L->linetable == PF_LT_LOCATIONS_311 ? lt311 : lnotab;
    size_t n = t == lt310 ? sizeof(lt310) : t == lt311 ? sizeof(lt311) : sizeof(lnotab);
    if (L->linetable == PF_LT_LNOTAB_27)
        skip(); /* 2.7 line deltas are unsigned */
    fake_code(fx->img, L, CODE, "neg.py", "f", 12, t, n);
    struct pf_code *c = get_ok(fx, CODE);
    int line = 777;
    assert_int_equal(pf_code_line(c, L, 0, &line), PF_ERR_CORRUPT);
    assert_int_equal(line, 777);
    assert_int_not_equal(c->memo_offset, 0);
    expect_line(c, L, -1, 12, "before the first instruction");
}

int main(void)
{
    int failed = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            T(reads_and_interns),
            T(hit_reads_only_the_header),
            T(header_size_covers_fields),
            T(reloads_when_reused),
            T(many_code_objects),
            T(code_type_checked),
            T(string_types_checked),
            T(linetable_type_checked),
            T(unmapped),
            T(hostile_values),
            T(firsttraceable_from_header),
            T(lines_from_captured_tables),
            T(line_memo),
            T(negative_line_is_corrupt),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }
    return failed != 0;
}

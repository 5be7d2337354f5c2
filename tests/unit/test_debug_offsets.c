/* _Py_DebugOffsets: parsing, validation, and the layout built from them.
 *
 * The reference is the generated 3.13 table: the debug offsets read from
 * the real libpython3.13 file (the .PyRuntime section, through
 * pf_elf_read_vaddr) must give a layout equal to it in every field they
 * fill in. The validator is then fed the same bytes, captured below from
 * CPython 3.13.0, with one value broken at a time. 3.14 is not installed
 * here: its two shapes are built from the 3.13 values plus the entries
 * 3.14 adds, to test that the parser tells them apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/cpython/debug_offsets.h"
#include "pyflame/target/elf.h"
#include "pyflame/cpython/layout.h"

/* The words after the cookie in libpython3.13.so.1.0 of CPython 3.13.0,
 * x86_64, up to unicode_object (read with readelf and a hex dump of the
 * .PyRuntime section). */
static const uint64_t CPYTHON_3_13_0[] = {
    /* version, free_threaded */ 0x30d00f0,
    0x0,
    /* runtime_state */ 0x452b8,
    0x260,
    0x278,
    /* interpreter_state */ 0x2f998,
    0x1c68,
    0x1c60,
    0x1cb0,
    0x1ce8,
    0x1de8,
    0x1dd8,
    0x1de0,
    0x10,
    0x1e48,
    0x0,
    0x1e58,
    0x1e50,
    /* thread_state */ 0x130,
    0x0,
    0x8,
    0x10,
    0x48,
    0x98,
    0xa0,
    0xe8,
    0x20,
    /* interpreter_frame */ 0x50,
    0x8,
    0x0,
    0x38,
    0x48,
    0x46,
    /* code_object */ 0xd0,
    0x70,
    0x78,
    0x80,
    0x88,
    0x44,
    0x34,
    0x60,
    0x68,
    0xc8,
    /* pyobject */ 0x10,
    0x8,
    /* type_object */ 0x1a0,
    0x18,
    0x58,
    0xa8,
    /* tuple_object */ 0x20,
    0x18,
    0x10,
    /* list_object */ 0x28,
    0x18,
    0x10,
    /* dict_object */ 0x30,
    0x20,
    0x28,
    /* float_object */ 0x18,
    0x10,
    /* long_object */ 0x20,
    0x10,
    0x18,
    /* bytes_object */ 0x28,
    0x10,
    0x20,
    /* unicode_object */ 0x40,
    0x20,
    0x10,
    0x28,
};
#define NWORDS (sizeof(CPYTHON_3_13_0) / sizeof(CPYTHON_3_13_0[0]))

/* Indexes into the words above. */
enum {
    W_VERSION = 0,
    W_FREE_THREADED = 1,
    W_RUNTIME_SIZE = 2,
    W_INTERP_HEAD = 4,
    W_INTERP_SIZE = 5,
    W_INTERP_THREADS_HEAD = 8,
    W_GIL_STATE = 14,
    W_GIL_LOCKED = 16,
    W_GIL_HOLDER = 17,
    W_TSTATE_SIZE = 18,
    W_TSTATE_PREV = 19,
    W_TSTATE_NEXT = 20,
    W_TSTATE_INTERP = 21,
    W_TSTATE_NATIVE = 24,
    W_IFRAME_SIZE = 27,
    W_IFRAME_PREVIOUS = 28,
    W_IFRAME_INSTR = 30,
    W_IFRAME_OWNER = 32,
    W_CODE_SIZE = 33,
    W_CODE_FILENAME = 34,
    W_CODE_ADAPTIVE = 42,
    W_LIST_END = 55, /* first word after list_object: where 3.14 puts set_object */
    W_UNICODE_SIZE = 66,
    W_UNICODE_ASCII = 69,
};

#define BUF_LEN PF_DEBUG_OFFSETS_READ

static void fill(uint8_t *buf, const uint64_t *words, size_t n)
{
    memset(buf, 0, BUF_LEN);
    memcpy(buf, "xdebugpy", 8);
    memcpy(buf + 8, words, n * 8);
}

static void fill_313(uint8_t *buf)
{
    fill(buf, CPYTHON_3_13_0, NWORDS);
}

static void put(uint8_t *buf, size_t word, uint64_t v)
{
    memcpy(buf + 8 + word * 8, &v, 8);
}

static const struct pf_layout *table_313(void)
{
    const struct pf_layout *L = pf_layout_find(3, 13, 0);
    assert_non_null(L);
    return L;
}

static void check_agrees(const struct pf_layout *built, const struct pf_layout *table)
{
    const char *names[64];
    size_t n = pf_debug_offsets_diff(built, table, names, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        print_error("differs from the generated %s table: %s\n", pf_layout_name(table), names[i]);
    assert_int_equal(n, 0);
}

/* The captured 3.13.0 bytes give exactly the generated 3.13 table. */
static void captured_313_matches_table(void **state)
{
    (void)state;
    uint8_t buf[BUF_LEN];
    struct pf_debug_offsets d;
    struct pf_layout built;
    struct pf_diag diag = {{0}};

    fill_313(buf);
    assert_true(pf_debug_offsets_present(buf, sizeof(buf)));
    assert_int_equal(pf_debug_offsets_parse(buf, sizeof(buf), 0, 0x452b8, &diag, &d), PF_OK);
    assert_string_equal(d.format, "3.13");
    assert_int_equal(d.major, 3);
    assert_int_equal(d.minor, 13);
    assert_int_equal(d.micro, 0);
    assert_int_equal(d.tstate.native_thread_id, 0xa0);
    assert_int_equal(d.interp.gil_locked, 0x1e58);
    assert_int_equal(pf_debug_offsets_layout(&d, table_313(), NULL, &built), PF_OK);
    check_agrees(&built, table_313());
}

/* Every field the builder fills comes from the offsets, not from the base
 * table: a base with those fields scrambled gives the same layout. */
static void built_from_offsets_not_base(void **state)
{
    (void)state;
    uint8_t buf[BUF_LEN];
    struct pf_debug_offsets d;
    struct pf_layout scrambled = *table_313(), built;

    fill_313(buf);
    assert_int_equal(pf_debug_offsets_parse(buf, sizeof(buf), 0, 0, NULL, &d), PF_OK);
    /* Every offset moved, each by its own amount, but the widths (the C
     * types) and the distances between the pairs NEIGHBOURS relies on kept:
     * those two are what the builder takes from its base. */
    struct pf_field *moved[] = {
        &scrambled.interp.next,       &scrambled.interp.threads_head, &scrambled.interp.ceval_gil,
        &scrambled.tstate.next,       &scrambled.tstate.interp,       &scrambled.tstate.frame,
        &scrambled.tstate.thread_id,  &scrambled.tstate.native_thread_id,
        &scrambled.iframe.previous,   &scrambled.iframe.code,         &scrambled.iframe.instr,
        &scrambled.iframe.owner,      &scrambled.code.filename,       &scrambled.code.name,
        &scrambled.code.qualname,     &scrambled.code.firstlineno,    &scrambled.code.linetable,
        &scrambled.object.ob_type,    &scrambled.object.ob_size,      &scrambled.bytes.ob_size,
        &scrambled.bytes.ob_sval,     &scrambled.unicode.length,      &scrambled.unicode.state,
        &scrambled.gilstate.locked,   &scrambled.gilstate.last_holder,
    };
    for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++)
        moved[i]->off += 1000 + 8 * (uint32_t)i;
    scrambled.runtime.interp_head.off += 96;
    scrambled.runtime.interp_main.off += 96;
    scrambled.code.code_adaptive.off += 104;
    scrambled.code.firsttraceable.off += 104;
    scrambled.unicode.ascii_size += 112;
    scrambled.unicode.compact_size += 112;
    scrambled.unicode.data.off += 112;
    scrambled.runtime.size = scrambled.interp.size = scrambled.tstate.size = 1;
    scrambled.iframe.size = scrambled.code.size = scrambled.bytes.size = 1;
    scrambled.unicode.size = scrambled.gilstate.size = 1;
    assert_int_equal(pf_debug_offsets_layout(&d, &scrambled, NULL, &built), PF_OK);
    check_agrees(&built, table_313());
    /* And the comparison itself notices a difference. */
    const char *names[4];
    assert_int_equal(pf_debug_offsets_diff(&scrambled, table_313(), names, 4), 40);
    built.tstate.native_thread_id.off += 8;
    assert_int_equal(pf_debug_offsets_diff(&built, table_313(), names, 4), 1);
    assert_string_equal(names[0], "tstate.native_thread_id");
}

static char *newest(const char *pattern)
{
    glob_t g;
    char *path = NULL;
    if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0)
        path = strdup(g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    return path;
}

static char *find_libpython313(void)
{
    char pattern[4096];
    const char *root = getenv("PYENV_ROOT");
    char *path;

    if (root && *root) {
        snprintf(pattern, sizeof(pattern), "%s/versions/3.13.*/lib/libpython3.13.so.1.0", root);
        if ((path = newest(pattern)))
            return path;
    }
    if (getenv("HOME")) {
        snprintf(pattern, sizeof(pattern), "%s/.pyenv/versions/3.13.*/lib/libpython3.13.so.1.0",
                 getenv("HOME"));
        if ((path = newest(pattern)))
            return path;
    }
    return NULL;
}

/* The debug offsets in the real libpython3.13 file agree with the table
 * generated from the same interpreter's headers. */
static void real_libpython313_agrees(void **state)
{
    (void)state;
    char *path = find_libpython313();
    struct pf_elf *e = NULL;
    struct pf_diag diag = {{0}};
    uint64_t addr, size, sym, sym_size;
    uint8_t buf[BUF_LEN];
    struct pf_debug_offsets d;
    struct pf_layout built;

    if (!path) {
        print_message("libpython3.13 not installed (pyenv): skipped\n");
        skip();
    }
    print_message("reading %s\n", path);
    if (pf_elf_open(path, &diag, &e) != PF_OK)
        fail_msg("%s", diag.msg);
    assert_int_equal(pf_elf_section(e, ".PyRuntime", &addr, &size), PF_OK);
    assert_int_equal(pf_elf_symbol(e, "_PyRuntime", &sym, &sym_size), PF_OK);
    assert_int_equal(sym, addr); /* the section holds exactly _PyRuntime */
    assert_true(size >= sizeof(buf));
    assert_int_equal(pf_elf_read_vaddr(e, addr, buf, sizeof(buf)), PF_OK);
    if (pf_debug_offsets_parse(buf, sizeof(buf), 0, sym_size, &diag, &d) != PF_OK)
        fail_msg("%s", diag.msg);
    assert_int_equal(d.minor, 13);
    assert_int_equal(d.runtime.size, sym_size);
    assert_int_equal(pf_debug_offsets_layout(&d, table_313(), NULL, &built), PF_OK);
    check_agrees(&built, table_313());
    pf_elf_close(e);
    free(path);
}

/* Parse buf; it must fail with `want` and a message containing `text`,
 * leaving the output untouched. */
static void expect_bad(const uint8_t *buf, size_t len, uint64_t runtime_size, pf_err want,
                       const char *text)
{
    struct pf_debug_offsets d, before;
    struct pf_diag diag = {{0}};

    memset(&d, 0x5a, sizeof(d));
    before = d;
    pf_err err = pf_debug_offsets_parse(buf, len, 0, runtime_size, &diag, &d);
    if (err != want || !strstr(diag.msg, text))
        fail_msg("got %s: \"%s\"; wanted %s with \"%s\"", pf_strerror(err), diag.msg,
                 pf_strerror(want), text);
    assert_memory_equal(&d, &before, sizeof(d));
}

/* The bytes parse, but the layout built from them (on the 3.13 table)
 * fails, with a message containing `text`. */
static void expect_bad_layout(const uint8_t *buf, const char *text)
{
    struct pf_debug_offsets d;
    struct pf_diag diag = {{0}};
    struct pf_layout built;

    if (pf_debug_offsets_parse(buf, BUF_LEN, 0, 0, &diag, &d) != PF_OK)
        fail_msg("parse: %s", diag.msg);
    pf_err err = pf_debug_offsets_layout(&d, table_313(), &diag, &built);
    if (err != PF_ERR_CORRUPT || !strstr(diag.msg, text))
        fail_msg("got %s: \"%s\"; wanted inconsistent data with \"%s\"", pf_strerror(err),
                 diag.msg, text);
}

static void rejects_wrong_cookie(void **state)
{
    (void)state;
    uint8_t buf[BUF_LEN];
    fill_313(buf);
    buf[7] = 'Y';
    expect_bad(buf, sizeof(buf), 0, PF_ERR_NOTFOUND, "cookie");
    assert_false(pf_debug_offsets_present(buf, sizeof(buf)));
    fill_313(buf);
    expect_bad(buf, 7, 0, PF_ERR_NOTFOUND, "cookie");
    expect_bad(buf, 20, 0, PF_ERR_CORRUPT, "only 20 bytes");
}

static void rejects_bad_versions(void **state)
{
    (void)state;
    uint8_t buf[BUF_LEN];

    fill_313(buf);
    put(buf, W_VERSION, 0x030c01f0); /* 3.12 had no debug offsets */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "not a CPython 3.13 or later");
    put(buf, W_VERSION, 0x020712f0);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "not a CPython 3.13");
    put(buf, W_VERSION, 0x1030d00f0ull);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "version");
    /* A newer minor: refused with its version, not guessed. */
    put(buf, W_VERSION, 0x030f00a1);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_UNSUPPORTED, "CPython 3.15.0 publishes");
    fill_313(buf);
    put(buf, W_FREE_THREADED, 1);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_UNSUPPORTED, "free-threaded");
    put(buf, W_FREE_THREADED, 7);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "free_threaded = 7");
}

static void rejects_bad_sizes(void **state)
{
    (void)state;
    uint8_t buf[BUF_LEN];

    fill_313(buf);
    put(buf, W_TSTATE_SIZE, (1u << 20) + 8);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "thread_state.size = 1048584");
    put(buf, W_TSTATE_SIZE, 0);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "thread_state.size = 0");
    fill_313(buf);
    put(buf, W_CODE_SIZE, UINT64_MAX);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "code_object.size");
    /* _PyRuntime's symbol size must be the runtime_state.size. */
    fill_313(buf);
    expect_bad(buf, sizeof(buf), 0x452c0, PF_ERR_CORRUPT, "_PyRuntime is 283328 bytes");
    /* The words must all be there. */
    expect_bad(buf, 8 + 8 * W_CODE_SIZE, 0, PF_ERR_CORRUPT, "past the");
}

static void rejects_fields_outside_structs(void **state)
{
    (void)state;
    uint8_t buf[BUF_LEN];

    fill_313(buf);
    put(buf, W_TSTATE_NATIVE, 0x130); /* == thread_state.size */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT,
               "thread_state.native_thread_id = 304 is outside");
    fill_313(buf);
    put(buf, W_TSTATE_NATIVE, 0x12c); /* inside, but an 8-byte field would cross the end */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "thread_state.native_thread_id at 300");
    fill_313(buf);
    put(buf, W_INTERP_HEAD, 0x452b8 - 4); /* the head pointer itself does not fit */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "interpreters_head");
    /* The head fits and main, the pointer after it, does not. */
    fill_313(buf);
    put(buf, W_INTERP_HEAD, 0x452b8 - 8);
    expect_bad_layout(buf, "runtime.interp_main");
    fill_313(buf);
    put(buf, W_IFRAME_OWNER, 0x50);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "interpreter_frame.owner = 80 is outside");
    fill_313(buf);
    put(buf, W_CODE_FILENAME, 0x71); /* misaligned pointer */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "code_object.filename at 113 is not 8-byte");
    fill_313(buf);
    put(buf, W_IFRAME_INSTR, 0x8); /* two fields in one place */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "previous and interpreter_frame.instr_ptr");
    fill_313(buf);
    put(buf, W_TSTATE_NEXT, 0); /* a second zero besides prev */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "both at offset 0");
    /* Fields we copy must lie in the prefix we read into PF_MAX_STRUCT bytes. */
    fill_313(buf);
    put(buf, W_CODE_SIZE, 0x3000);
    put(buf, W_CODE_ADAPTIVE, 0x2000);
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "past 4096 bytes");
    /* Relations the builder relies on. */
    fill_313(buf);
    put(buf, W_GIL_LOCKED, 0x1e40); /* before the GIL itself */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "GIL");
    fill_313(buf);
    put(buf, W_UNICODE_ASCII, 0x18); /* state and length past PyASCIIObject */
    expect_bad(buf, sizeof(buf), 0, PF_ERR_CORRUPT, "PEP 393");
    /* A PyASCIIObject 8 bytes larger leaves PyUnicodeObject's data
     * pointer, placed as in the 3.13 headers, past the published size. */
    fill_313(buf);
    put(buf, W_UNICODE_ASCII, 0x30);
    expect_bad_layout(buf, "unicode.data");
    /* A PyUnicodeObject 8 bytes larger: data no longer ends it. */
    fill_313(buf);
    put(buf, W_UNICODE_SIZE, 0x48);
    expect_bad_layout(buf, "PEP 393");
    /* Bytecode too close to the start for _co_firsttraceable before it. */
    fill_313(buf);
    put(buf, W_CODE_ADAPTIVE, 0x8);
    expect_bad_layout(buf, "code.firsttraceable");
}

/* 3.14's shapes, from the 3.13 words: threads_main after threads_head,
 * stackpointer after owner, set_object after list_object, and with tlbc
 * the four thread-local-bytecode entries. */
static size_t build_314(uint64_t *w, bool tlbc)
{
    size_t n = 0;
    for (size_t i = 0; i < NWORDS; i++) {
        if (i == W_LIST_END) {
            const uint64_t set[] = {0xc8, 0x10, 0x28, 0x20};
            memcpy(w + n, set, sizeof(set));
            n += 4;
        }
        w[n++] = i == W_VERSION ? 0x030e00f0 : CPYTHON_3_13_0[i];
        if (i == W_INTERP_THREADS_HEAD)
            w[n++] = 0x1cb8; /* threads_main */
        if (i == W_GIL_HOLDER && tlbc) {
            w[n++] = 0x1f00; /* code_object_generation */
            w[n++] = 0;      /* tlbc_generation: free-threaded builds only */
        }
        if (i == W_IFRAME_OWNER) {
            w[n++] = 0x40; /* stackpointer */
            if (tlbc)
                w[n++] = 0; /* tlbc_index */
        }
        if (i == W_CODE_ADAPTIVE && tlbc)
            w[n++] = 0; /* co_tlbc */
    }
    return n;
}

static void reads_both_314_shapes(void **state)
{
    (void)state;
    uint64_t w[NWORDS + 16];
    uint8_t buf[BUF_LEN];
    struct pf_debug_offsets d;
    struct pf_diag diag = {{0}};
    struct pf_layout built;
    const bool shapes[] = {true, false};

    for (size_t s = 0; s < 2; s++) {
        size_t n = build_314(w, shapes[s]);
        fill(buf, w, n);
        if (pf_debug_offsets_parse(buf, sizeof(buf), 0, 0, &diag, &d) != PF_OK)
            fail_msg("%s", diag.msg);
        /* The other shape was tried and refused by validation. */
        assert_string_equal(d.format, shapes[s] ? "3.14" : "3.14 (early)");
        assert_int_equal(d.minor, 14);
        assert_int_equal(pf_debug_offsets_layout(&d, table_313(), NULL, &built), PF_OK);
        assert_int_equal(built.key.minor, 14);
        /* Not published, and 3.13's value is not assumed for 3.14. */
        assert_int_equal(built.tstate.state.width, 0);
        built.tstate.state = table_313()->tstate.state;
        built.key = table_313()->key;
        check_agrees(&built, table_313());
    }
    /* --abi=3.13 on a 3.14 runtime reads it as 3.13's shape: refused. */
    build_314(w, true);
    fill(buf, w, NWORDS + 8);
    assert_int_not_equal(pf_debug_offsets_parse(buf, sizeof(buf), 13, 0, NULL, &d), PF_OK);
    /* And a 3.13 runtime read as 3.14 (--abi=3.14) is refused too. */
    fill_313(buf);
    assert_int_equal(pf_debug_offsets_parse(buf, sizeof(buf), 13, 0, NULL, &d), PF_OK);
    assert_int_not_equal(pf_debug_offsets_parse(buf, sizeof(buf), 14, 0, NULL, &d), PF_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(captured_313_matches_table),
        cmocka_unit_test(built_from_offsets_not_base),
        cmocka_unit_test(real_libpython313_agrees),
        cmocka_unit_test(rejects_wrong_cookie),
        cmocka_unit_test(rejects_bad_versions),
        cmocka_unit_test(rejects_bad_sizes),
        cmocka_unit_test(rejects_fields_outside_structs),
        cmocka_unit_test(reads_both_314_shapes),
    };
    return cmocka_run_group_tests_name("debug_offsets", tests, NULL, NULL);
}

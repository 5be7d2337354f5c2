/* Line-table decoders against tables captured from the real interpreters
 * (linetable_vectors.h, made by gen_linetable_vectors.py: every instruction
 * offset with the line the interpreter itself reports), the worked examples
 * of docs/cpython-internals.md §8.5, and hostile tables: truncated, empty,
 * garbage, overflowing. Hostile tables are copied into exact-size heap
 * buffers so an over-read shows up under -Db_sanitize=address. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/cpython/linetable.h"

#include "linetable_vectors.h"

#define NVECTORS (sizeof(LT_VECTORS) / sizeof(LT_VECTORS[0]))

static const char *kind_name(enum pf_linetable_kind kind)
{
    switch (kind) {
    case PF_LT_LNOTAB_27:
        return "lnotab-2.7";
    case PF_LT_LNOTAB_36:
        return "lnotab-3.6";
    case PF_LT_LINETABLE_310:
        return "linetable-3.10";
    case PF_LT_LOCATIONS_311:
        return "locations-3.11";
    }
    return "?";
}

/* Decode from an exact-size copy of the table. */
static pf_err decode(enum pf_linetable_kind kind, const uint8_t *t, size_t len, int first,
                     int64_t offset, int *line)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, t, len);
    }
    pf_err err = pf_linetable_line(kind, copy, len, first, offset, line);
    free(copy);
    return err;
}

/* Assert one (offset -> line) with enough context to find the failing entry. */
static void expect_line(const struct lt_vector *v, int64_t offset, int want)
{
    int line = INT_MIN + 7;
    pf_err err = pf_linetable_line(v->kind, v->table, v->table_len, v->firstlineno, offset, &line);
    if (err != PF_OK || line != want) {
        print_error("%s %s (%s): offset %lld: got err %d line %d, want line %d\n", v->python,
                    v->func, kind_name(v->kind), (long long)offset, err, line, want);
        fail();
    }
}

static void expect_err(const struct lt_vector *v, int64_t offset, pf_err want)
{
    int line = INT_MIN + 7;
    pf_err err = pf_linetable_line(v->kind, v->table, v->table_len, v->firstlineno, offset, &line);
    if (err != want || line != INT_MIN + 7) {
        print_error("%s %s: offset %lld: got err %d line %d, want err %d, line untouched\n",
                    v->python, v->func, (long long)offset, err, line, want);
        fail();
    }
}

/* One captured code object: every instruction offset gives the line the
 * interpreter gave; the odd byte of a 2-byte instruction gives the same; a
 * negative offset gives co_firstlineno; past the end, lnotab keeps the last
 * line and the 3.10+ formats say not found. */
static void captured_vector(void **state)
{
    const struct lt_vector *v = *state;

    assert_true(v->nlines > 0);
    assert_int_equal(v->nlines, (v->code_len + v->step - 1) / v->step);
    for (size_t i = 0; i < v->nlines; i++) {
        int64_t off = (int64_t)(i * v->step);
        expect_line(v, off, v->lines[i]);
        if (v->step == 2)
            expect_line(v, off + 1, v->lines[i]);
    }
    expect_line(v, -1, v->firstlineno);
    expect_line(v, -2, v->firstlineno);
    expect_line(v, INT64_MIN, v->firstlineno);

    const int64_t beyond[] = {(int64_t)v->code_len, (int64_t)v->code_len + 1,
                              (int64_t)v->code_len + 100000, INT32_MAX, INT64_MAX};
    for (size_t i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
        if (v->kind == PF_LT_LNOTAB_27 || v->kind == PF_LT_LNOTAB_36)
            expect_line(v, beyond[i], v->lines[v->nlines - 1]);
        else
            expect_err(v, beyond[i], PF_ERR_NOTFOUND);
    }
}

/* Every prefix of every captured table decodes without reading past its
 * end. A 3.10+ prefix either gives the full table's answer or says
 * NOTFOUND/CORRUPT (a range is only reported once it is complete); an lnotab
 * prefix cannot know it was cut at a pair boundary, so only its error codes
 * are checked. */
static void captured_prefixes(void **state)
{
    (void)state;
    for (size_t n = 0; n < NVECTORS; n++) {
        const struct lt_vector *v = &LT_VECTORS[n];
        bool lnotab = v->kind == PF_LT_LNOTAB_27 || v->kind == PF_LT_LNOTAB_36;
        for (size_t k = 0; k < v->table_len; k++) {
            for (size_t i = 0; i < v->nlines; i++) {
                int line = 0;
                pf_err err =
                    decode(v->kind, v->table, k, v->firstlineno, (int64_t)(i * v->step), &line);
                if (err == PF_OK && !lnotab && line != v->lines[i]) {
                    print_error("%s %s: prefix %zu offset %zu: line %d, want %d\n", v->python,
                                v->func, k, i * v->step, line, v->lines[i]);
                    fail();
                }
                if (lnotab) {
                    /* Odd prefixes may be corrupt; even ones never are. */
                    assert_true(err == PF_OK || (err == PF_ERR_CORRUPT && k % 2 == 1));
                } else {
                    assert_true(err == PF_OK || err == PF_ERR_NOTFOUND || err == PF_ERR_CORRUPT);
                }
            }
        }
    }
}

/* The vectors still contain what the tests are meant to cover. */
static void captured_coverage(void **state)
{
    (void)state;
    size_t per_kind[5] = {0}, noline[5] = {0}, backwards[5] = {0}, nonascii = 0;
    int big_jump = 0;

    for (size_t n = 0; n < NVECTORS; n++) {
        const struct lt_vector *v = &LT_VECTORS[n];
        per_kind[v->kind]++;
        int prev = v->firstlineno;
        for (size_t i = 0; i < v->nlines; i++) {
            if (v->lines[i] == PF_LINE_NONE) {
                noline[v->kind]++;
                continue;
            }
            if (v->lines[i] < prev)
                backwards[v->kind]++;
            if (v->lines[i] - prev > 255)
                big_jump |= 1 << v->kind;
            prev = v->lines[i];
        }
        if ((unsigned char)v->func[0] >= 0x80 || strchr(v->func, '\303'))
            nonascii++;
    }
    for (int k = PF_LT_LNOTAB_27; k <= PF_LT_LOCATIONS_311; k++) {
        assert_true(per_kind[k] >= 9);
        assert_true(big_jump & (1 << k));
    }
    assert_true(noline[PF_LT_LINETABLE_310] > 0);
    assert_true(noline[PF_LT_LOCATIONS_311] > 0);
    assert_true(backwards[PF_LT_LNOTAB_36] > 0); /* 3.8/3.9 */
    assert_true(backwards[PF_LT_LINETABLE_310] > 0);
    assert_true(backwards[PF_LT_LOCATIONS_311] > 0);
    assert_true(nonascii >= 8); /* 3.6 .. 3.13 */
}

struct probe {
    int64_t offset;
    pf_err err;
    int line;
};

static void run_probes(enum pf_linetable_kind kind, const uint8_t *t, size_t len, int first,
                       const struct probe *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int line = INT_MIN + 7;
        pf_err err = decode(kind, t, len, first, p[i].offset, &line);
        if (err != p[i].err || (err == PF_OK && line != p[i].line) ||
            (err != PF_OK && line != INT_MIN + 7)) {
            print_error("%s probe %zu (offset %lld): got err %d line %d, want err %d line %d\n",
                        kind_name(kind), i, (long long)p[i].offset, err, line, p[i].err, p[i].line);
            fail();
        }
    }
}

#define PROBE(kind, table, first, ...)                                                             \
    do {                                                                                           \
        static const uint8_t t_[] = table;                                                         \
        static const struct probe p_[] = {__VA_ARGS__};                                            \
        run_probes(kind, t_, sizeof(t_), first, p_, sizeof(p_) / sizeof(p_[0]));                   \
    } while (0)
/* clang-format off */
#define BYTES(...) {__VA_ARGS__}
#define OK(off, ln) {off, PF_OK, ln}
#define ERR(off, e) {off, e, 0}
/* clang-format on */

/* docs/cpython-internals.md §8.5, `small`, and the long jumps of §8.1-§8.3,
 * by hand. */
static void worked_examples(void **state)
{
    (void)state;
    /* 2.7.18: from byte 0 line 2, byte 3 line 3, byte 10 line 4; BINARY_ADD at 6 -> 3. */
    PROBE(PF_LT_LNOTAB_27, BYTES(0x00, 0x01, 0x03, 0x01, 0x07, 0x01), 1, OK(0, 2), OK(2, 2),
          OK(3, 3), OK(6, 3), OK(9, 3), OK(10, 4), OK(13, 4), OK(-1, 1));
    /* 3.6.15: byte 0: 2, byte 2: 3, byte 8: 4; BINARY_ADD at 4 -> 3. */
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0x01, 0x02, 0x01, 0x06, 0x01), 1, OK(0, 2), OK(2, 3),
          OK(4, 3), OK(8, 4), OK(10, 4));
    /* 3.8.18: 0xff is -1: byte 4 goes back to line 2. */
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0x01, 0x02, 0x01, 0x02, 0xff, 0x04, 0x02), 1, OK(0, 2),
          OK(2, 3), OK(4, 2), OK(6, 2), OK(8, 4), OK(10, 4));
    /* 2.7 unsigned: +301 in one pair of pairs; as 3.6 signed, 0xff is -1. */
    PROBE(PF_LT_LNOTAB_27, BYTES(0x0a, 0xff, 0x00, 0x2e), 1, OK(9, 1), OK(10, 302));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x0a, 0xff, 0x00, 0x2e), 1, OK(9, 1), OK(10, 46));
    /* 3.6+: jumps over +127 are split. */
    PROBE(PF_LT_LNOTAB_36, BYTES(0x0a, 0x7f, 0x00, 0x7f, 0x00, 0x2f), 1, OK(9, 1), OK(10, 302));
    /* 3.10: [0,2) 2, [2,4) 3, [4,8) 2, [8,12) 4; f_lasti 2 units = byte 4 -> 2. */
    PROBE(PF_LT_LINETABLE_310, BYTES(0x02, 0x01, 0x02, 0x01, 0x04, 0xff, 0x04, 0x02), 1, OK(0, 2),
          OK(1, 2), OK(2, 3), OK(4, 2), OK(7, 2), OK(8, 4), OK(11, 4), ERR(12, PF_ERR_NOTFOUND),
          OK(-1, 1));
    /* 3.10: zero-length pairs only move the line (+302). */
    PROBE(PF_LT_LINETABLE_310, BYTES(0x00, 0x7f, 0x00, 0x7f, 0x04, 0x30), 1, OK(0, 303), OK(3, 303),
          ERR(4, PF_ERR_NOTFOUND));
    /* 3.10: -128 is "no line" and leaves the running line alone. */
    PROBE(PF_LT_LINETABLE_310, BYTES(0x02, 0x01, 0x02, 0x80, 0x02, 0x01), 10, OK(0, 11),
          OK(2, PF_LINE_NONE), OK(3, PF_LINE_NONE), OK(4, 12), ERR(6, PF_ERR_NOTFOUND));
    /* 3.11-3.13 `small`: units 0..7 -> 1 2 3 2 2 2 4 4 (offsets in bytes). */
    PROBE(PF_LT_LOCATIONS_311,
          BYTES(0x80, 0x00, 0xd8, 0x09, 0x0a, 0xd8, 0x09, 0x0a, 0xf1, 0x03, 0x01, 0x0a, 0x0b, 0x80,
                0x41, 0xe0, 0x0b, 0x0c, 0x80, 0x48),
          1, OK(0, 1), OK(2, 2), OK(4, 3), OK(6, 2), OK(8, 2), OK(9, 2), OK(10, 2), OK(12, 4),
          OK(14, 4), OK(15, 4), ERR(16, PF_ERR_NOTFOUND), OK(-2, 1), OK(-1, 1));
}

/* Location-table entry kinds one by one, including a no-location entry
 * (code 15) that must not move the line, and multi-unit entries. */
static void location_kinds(void **state)
{
    (void)state;
    PROBE(PF_LT_LOCATIONS_311,
          BYTES(0xfb,                                /* 15, 4 units: no location */
                0xe8, 0x06,                          /* 13, 1 unit: +3 */
                0xf9,                                /* 15, 2 units */
                0xeb, 0x03,                          /* 13, 4 units: -1 */
                0xd1, 0x00, 0x01,                    /* 10, 2 units: +0 */
                0xe7, 0x01, 0x02,                    /* 12, 8 units: +2 */
                0xf0, 0x44, 0x04, 0x00, 0x01, 0x01), /* 14, 1 unit: +130 (svarint 260) */
          100, OK(0, PF_LINE_NONE), OK(7, PF_LINE_NONE), OK(8, 103), OK(10, PF_LINE_NONE),
          OK(13, PF_LINE_NONE), OK(14, 102), OK(21, 102), OK(22, 102), OK(25, 102), OK(26, 104),
          OK(41, 104), OK(42, 234), OK(43, 234), ERR(44, PF_ERR_NOTFOUND));
}

static void empty_tables(void **state)
{
    (void)state;
    int line = 0;
    /* lnotab records changes only: an empty one means "all firstlineno". */
    for (int k = PF_LT_LNOTAB_27; k <= PF_LT_LNOTAB_36; k++) {
        assert_int_equal(pf_linetable_line(k, NULL, 0, 42, 0, &line), PF_OK);
        assert_int_equal(line, 42);
        assert_int_equal(pf_linetable_line(k, NULL, 0, 42, INT64_MAX, &line), PF_OK);
        assert_int_equal(line, 42);
    }
    for (int k = PF_LT_LINETABLE_310; k <= PF_LT_LOCATIONS_311; k++) {
        line = 5;
        assert_int_equal(pf_linetable_line(k, NULL, 0, 42, 0, &line), PF_ERR_NOTFOUND);
        assert_int_equal(line, 5);
        assert_int_equal(pf_linetable_line(k, (const uint8_t *)"", 0, 42, 1000, &line),
                         PF_ERR_NOTFOUND);
        assert_int_equal(pf_linetable_line(k, NULL, 0, 42, -1, &line), PF_OK);
        assert_int_equal(line, 42);
    }
}

static void bad_arguments(void **state)
{
    (void)state;
    static const uint8_t t[] = {0x80, 0x00};
    int line = 5;
    assert_int_equal(pf_linetable_line(PF_LT_LOCATIONS_311, NULL, 2, 1, 0, &line), PF_ERR_INTERNAL);
    assert_int_equal(pf_linetable_line(PF_LT_LOCATIONS_311, t, 2, 1, 0, NULL), PF_ERR_INTERNAL);
    assert_int_equal(pf_linetable_line(0, t, 2, 1, 0, &line), PF_ERR_UNSUPPORTED);
    assert_int_equal(pf_linetable_line(99, t, 2, 1, 0, &line), PF_ERR_UNSUPPORTED);
    assert_int_equal(line, 5);
}

static void truncated_tables(void **state)
{
    (void)state;
    /* lnotab: a lone address increment. Below it the line is known; at or
     * past it, the missing line increment decides. */
    PROBE(PF_LT_LNOTAB_27, BYTES(0x00, 0x01, 0x03), 1, OK(0, 2), OK(2, 2), ERR(3, PF_ERR_CORRUPT),
          ERR(100, PF_ERR_CORRUPT));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x05), 1, OK(4, 1), ERR(5, PF_ERR_CORRUPT));
    /* 3.10: a lone byte is a range without its line. */
    PROBE(PF_LT_LINETABLE_310, BYTES(0x02, 0x01, 0x02), 1, OK(0, 2), ERR(2, PF_ERR_CORRUPT),
          ERR(9, PF_ERR_CORRUPT));
    /* 3.11: entries cut inside their column bytes or varints. */
    PROBE(PF_LT_LOCATIONS_311, BYTES(0x80, 0x00, 0xd8, 0x09), 1, OK(0, 1), ERR(2, PF_ERR_CORRUPT));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0x80), 1, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xf0, 0x06, 0x01, 0x0a), 1, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xe8, 0x41), 1, ERR(0, PF_ERR_CORRUPT)); /* varint goes on */
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xe8), 1, ERR(0, PF_ERR_CORRUPT));
    /* The next entry's header where a column byte should be: cut short. */
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xd8, 0x09, 0x80, 0x00), 1, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xe8, 0x42, 0x80), 1, ERR(0, PF_ERR_CORRUPT));
    /* A byte without bit 7 where an entry should start. */
    PROBE(PF_LT_LOCATIONS_311, BYTES(0x80, 0x00, 0x08, 0x00), 1, OK(0, 1), ERR(2, PF_ERR_CORRUPT));
}

/* Append a location-table varint. */
static size_t put_varint(uint8_t *t, size_t n, uint64_t v)
{
    while (v >= 0x40) {
        t[n++] = (uint8_t)(0x40 | (v & 0x3f));
        v >>= 6;
    }
    t[n++] = (uint8_t)v;
    return n;
}

static void varint_limits(void **state)
{
    (void)state;
    uint8_t t[64];
    size_t n;
    int line = 0;

    /* The largest value CPython can write (32 bits) decodes: svarint
     * 0xffffffff is -(2^31 - 1). */
    n = 0;
    t[n++] = 0xe8;
    n = put_varint(t, n, 0xffffffffu);
    assert_int_equal(n, 7);
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, INT_MAX, 0, &line), PF_OK);
    assert_int_equal(line, INT_MAX - INT32_MAX);
    /* 2^32 fits in six groups but not in 32 bits (as a line delta it
     * would be +2^31, which INT_MIN + 10 could absorb). */
    n = 0;
    t[n++] = 0xe8;
    n = put_varint(t, n, 0x100000000ull);
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, INT_MIN + 10, 0, &line), PF_ERR_CORRUPT);
    /* Seven groups. */
    static const uint8_t seven[] = {0xe8, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x00};
    assert_int_equal(decode(PF_LT_LOCATIONS_311, seven, sizeof(seven), 1, 0, &line),
                     PF_ERR_CORRUPT);
    /* Endless continuation bits until the end of the table. */
    uint8_t endless[40];
    endless[0] = 0xe8;
    memset(endless + 1, 0x7f, sizeof(endless) - 1);
    assert_int_equal(decode(PF_LT_LOCATIONS_311, endless, sizeof(endless), 1, 0, &line),
                     PF_ERR_CORRUPT);
    /* Long form: each of the three trailing varints is checked. */
    n = 0;
    t[n++] = 0xf0;
    n = put_varint(t, n, 2);           /* +1 */
    n = put_varint(t, n, 0);           /* end line */
    n = put_varint(t, n, 1000);        /* start column + 1 */
    n = put_varint(t, n, 0xffffffffu); /* end column + 1 */
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, 7, 1, &line), PF_OK);
    assert_int_equal(line, 8);
    t[n - 1] |= 0x40; /* the last varint now continues past the end */
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, 7, 1, &line), PF_ERR_CORRUPT);
}

/* Deltas that would carry the line out of int are corrupt, not wrapped. */
static void line_overflow(void **state)
{
    (void)state;
    PROBE(PF_LT_LNOTAB_27, BYTES(0x00, 0x01), INT_MAX, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0xff), INT_MIN, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0xff), INT_MIN + 1, OK(0, INT_MIN));
    PROBE(PF_LT_LINETABLE_310, BYTES(0x02, 0x01), INT_MAX, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xd0, 0x00, 0x00), INT_MAX, OK(0, INT_MAX));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xd8, 0x00, 0x00), INT_MAX, ERR(0, PF_ERR_CORRUPT));

    /* Many maximal deltas in a row. */
    uint8_t t[7 * 1000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        t[n++] = 0xe8;
        n = put_varint(t, n, 0xfffffffeu); /* +(2^31 - 1) */
    }
    int line = 0;
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, 0, 0, &line), PF_OK);
    assert_int_equal(line, INT32_MAX);
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, 0, 2, &line), PF_ERR_CORRUPT);
    assert_int_equal(decode(PF_LT_LOCATIONS_311, t, n, 0, 1000000, &line), PF_ERR_CORRUPT);
}

/* A large table of no-location entries: unit lookups stay exact far in. */
static void long_noline_table(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint8_t *t = malloc(N);
    assert_non_null(t);
    memset(t, 0xff, N); /* code 15, 8 units each */
    int line = 0;
    assert_int_equal(pf_linetable_line(PF_LT_LOCATIONS_311, t, N, 3, 0, &line), PF_OK);
    assert_int_equal(line, PF_LINE_NONE);
    assert_int_equal(pf_linetable_line(PF_LT_LOCATIONS_311, t, N, 3, 2 * 8 * N - 1, &line), PF_OK);
    assert_int_equal(line, PF_LINE_NONE);
    assert_int_equal(pf_linetable_line(PF_LT_LOCATIONS_311, t, N, 3, 2 * 8 * N, &line),
                     PF_ERR_NOTFOUND);
    /* The same bytes as 3.10 pairs (255 bytes, -1) and lnotab pairs. */
    assert_int_equal(pf_linetable_line(PF_LT_LINETABLE_310, t, N, 3, 255 * (N / 2) - 1, &line),
                     PF_OK);
    assert_int_equal(line, 3 - N / 2);
    assert_int_equal(pf_linetable_line(PF_LT_LNOTAB_27, t, N, 3, INT64_MAX, &line), PF_OK);
    assert_int_equal(line, 3 + 255 * (N / 2));
    free(t);
}

/* Random bytes in every format: no crash, no over-read, only the codes the
 * header promises. */
static void garbage_tables(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint8_t buf[96];
    size_t ok = 0, bad = 0;

    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        for (size_t i = 0; i < sizeof(buf); i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
            if (i == 0)
                len = (size_t)(x >> 32) % (sizeof(buf) + 1);
        }
        enum pf_linetable_kind kind = (enum pf_linetable_kind)(PF_LT_LNOTAB_27 + round % 4);
        int64_t offs[] = {0, 1, (int64_t)(x >> 40) % 400, (int64_t)(x % 10000000), INT64_MAX};
        for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
            int line = 0;
            pf_err err = decode(kind, buf, len, (int)(x >> 48) - 30000, offs[j], &line);
            assert_true(err == PF_OK || err == PF_ERR_CORRUPT || err == PF_ERR_NOTFOUND);
            if (kind <= PF_LT_LNOTAB_36)
                assert_int_not_equal(err, PF_ERR_NOTFOUND);
            if (err == PF_OK)
                ok++;
            else
                bad++;
        }
    }
    /* Both outcomes happen, so the loop is exercising something. */
    assert_true(ok > 1000);
    assert_true(bad > 1000);
}

/* Found by tests/fuzz/fuzz_frame: deltas that add up to -1 made the
 * decoder answer PF_LINE_NONE, which means "this instruction has no line",
 * for a line that is garbage. A computed -1 is corrupt in every format
 * (including co_firstlineno -1 before the first instruction); a real
 * no-line entry still answers PF_LINE_NONE, and other negative lines are
 * still given (code.c refuses them; this module only decodes). */
static void computed_minus_one_is_corrupt(void **state)
{
    (void)state;
    int line = 777;

    PROBE(PF_LT_LNOTAB_27, BYTES(0x00, 0x01), -2, ERR(0, PF_ERR_CORRUPT), ERR(9, PF_ERR_CORRUPT));
    PROBE(PF_LT_LNOTAB_27, BYTES(0x00, 0x01), -3, OK(0, -2));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0xff), 0, ERR(0, PF_ERR_CORRUPT));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0xff, 0x04, 0xff), 1, OK(3, 0), ERR(4, PF_ERR_CORRUPT));
    PROBE(PF_LT_LNOTAB_36, BYTES(0x00, 0xfe), 0, OK(0, -2));
    PROBE(PF_LT_LINETABLE_310, BYTES(0x02, 0xff, 0x02, 0x80), 0, ERR(0, PF_ERR_CORRUPT),
          OK(2, PF_LINE_NONE));
    PROBE(PF_LT_LINETABLE_310, BYTES(0x02, 0xfe), 1, ERR(0, PF_ERR_CORRUPT));
    /* 3.11 code 13 (no columns) with svarint -1 (0x03), then code 15. */
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xe8, 0x03, 0xf8), 0, ERR(0, PF_ERR_CORRUPT),
          OK(2, PF_LINE_NONE));
    PROBE(PF_LT_LOCATIONS_311, BYTES(0xe8, 0x03), 5, OK(0, 4));
    for (enum pf_linetable_kind k = PF_LT_LNOTAB_27; k <= PF_LT_LOCATIONS_311; k++) {
        line = 777;
        assert_int_equal(pf_linetable_line(k, NULL, 0, PF_LINE_NONE, -1, &line), PF_ERR_CORRUPT);
        assert_int_equal(line, 777);
        assert_int_equal(pf_linetable_line(k, NULL, 0, -2, -1, &line), PF_OK);
        assert_int_equal(line, -2);
    }
}

int main(void)
{
    static struct CMUnitTest vec_tests[NVECTORS];
    static char names[NVECTORS][96];
    int failed = 0;

    for (size_t i = 0; i < NVECTORS; i++) {
        snprintf(names[i], sizeof(names[i]), "%s %s", LT_VECTORS[i].python, LT_VECTORS[i].func);
        vec_tests[i] = (struct CMUnitTest){
            .name = names[i],
            .test_func = captured_vector,
            .initial_state = (void *)&LT_VECTORS[i],
        };
    }
    failed += _cmocka_run_group_tests("captured", vec_tests, NVECTORS, NULL, NULL);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(captured_coverage), cmocka_unit_test(captured_prefixes),
        cmocka_unit_test(worked_examples),   cmocka_unit_test(location_kinds),
        cmocka_unit_test(empty_tables),      cmocka_unit_test(bad_arguments),
        cmocka_unit_test(truncated_tables),  cmocka_unit_test(varint_limits),
        cmocka_unit_test(line_overflow),     cmocka_unit_test(long_noline_table),
        cmocka_unit_test(garbage_tables),    cmocka_unit_test(computed_minus_one_is_corrupt),
    };
    failed += cmocka_run_group_tests_name("linetable", tests, NULL, NULL);
    return failed != 0;
}

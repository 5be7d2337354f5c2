/* The protobuf encoder (src/output/protobuf.c) byte for byte against encodings
 * worked out by hand from the wire format: varints at the edges of their
 * byte counts, tags, packed fields, and nested messages whose length takes
 * one, two and three bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/output/protobuf.h"

/* b holds exactly the n bytes of want. */
static void check_bytes(const struct pf_pb *b, const uint8_t *want, size_t n)
{
    assert_int_equal(pf_pb_error(b), PF_OK);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

#define CHECK(b, ...)                                                                              \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        check_bytes(b, want_, sizeof(want_));                                                      \
    } while (0)

static void varint_edges(void **state)
{
    (void)state;
    struct pf_pb b;
    static const struct {
        uint64_t v;
        uint8_t bytes[PF_PB_VARINT_MAX];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2},
        {300, {0xac, 0x02}, 2},
        {16383, {0xff, 0x7f}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {UINT32_MAX, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
        {(uint64_t)1 << 63, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 10},
        {UINT64_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pf_pb_init(&b);
        pf_pb_varint(&b, cases[i].v);
        check_bytes(&b, cases[i].bytes, cases[i].n);
        pf_pb_free(&b);
    }
}

static void tags_and_scalars(void **state)
{
    (void)state;
    struct pf_pb b;

    pf_pb_init(&b);
    pf_pb_tag(&b, 1, PF_PB_VARINT);
    pf_pb_tag(&b, 2, PF_PB_LEN);
    pf_pb_tag(&b, 15, PF_PB_I64);
    pf_pb_tag(&b, 16, PF_PB_LEN); /* the first field number whose tag takes 2 bytes */
    CHECK(&b, 0x08, 0x12, 0x79, 0x82, 0x01);
    pf_pb_free(&b);

    pf_pb_init(&b);
    pf_pb_uint64(&b, 1, 0); /* written: the plain form keeps a 0 */
    pf_pb_uint64_nz(&b, 2, 0);
    pf_pb_int64_nz(&b, 3, 0);
    pf_pb_uint64_nz(&b, 4, 150);
    /* An int64 -1 is its two's complement: ten bytes. */
    pf_pb_int64_nz(&b, 5, -1);
    CHECK(&b, 0x08, 0x00, 0x20, 0x96, 0x01, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0x01);
    pf_pb_free(&b);

    pf_pb_init(&b);
    pf_pb_string(&b, 6, "ab");
    pf_pb_string(&b, 6, "");
    pf_pb_bytes(&b, 7, "\0\xff", 2);
    CHECK(&b, 0x32, 0x02, 'a', 'b', 0x32, 0x00, 0x3a, 0x02, 0x00, 0xff);
    pf_pb_free(&b);
}

static void packed(void **state)
{
    (void)state;
    struct pf_pb b;
    pf_pb_init(&b);
    uint64_t v[] = {1, 300, 0, (uint64_t)1 << 63};
    pf_pb_packed(&b, 1, v, 4);
    pf_pb_packed(&b, 2, v, 0); /* nothing at all */
    CHECK(&b, 0x0a, 14, 0x01, 0xac, 0x02, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
          0x80, 0x01);
    pf_pb_free(&b);
}

/* A nested message of body_len bytes of 'x' in field 2: the tag, the
 * length's varint, the body, whatever room the length first had. */
static void nested_len(size_t body_len, const uint8_t *len_bytes, size_t len_n)
{
    struct pf_pb b;
    pf_pb_init(&b);
    pf_pb_uint64(&b, 1, 7);
    size_t m = pf_pb_begin(&b, 2);
    char *body = malloc(body_len + 1);
    assert_non_null(body);
    memset(body, 'x', body_len);
    pf_pb_raw(&b, body, body_len);
    pf_pb_end(&b, m);
    pf_pb_uint64(&b, 3, 9); /* after the message, in place */
    assert_int_equal(pf_pb_error(&b), PF_OK);
    assert_int_equal(b.len, 2 + 1 + len_n + body_len + 2);
    assert_int_equal(b.data[0], 0x08);
    assert_int_equal(b.data[1], 7);
    assert_int_equal(b.data[2], 0x12);
    assert_memory_equal(b.data + 3, len_bytes, len_n);
    assert_memory_equal(b.data + 3 + len_n, body, body_len);
    assert_int_equal(b.data[3 + len_n + body_len], 0x18);
    assert_int_equal(b.data[3 + len_n + body_len + 1], 9);
    free(body);
    pf_pb_free(&b);
}

static void nested(void **state)
{
    (void)state;
    nested_len(0, (const uint8_t[]){0x00}, 1);
    nested_len(127, (const uint8_t[]){0x7f}, 1);
    nested_len(128, (const uint8_t[]){0x80, 0x01}, 2);
    nested_len(20000, (const uint8_t[]){0xa0, 0x9c, 0x01}, 3);

    /* Messages in messages: the inner one's length grows after the
     * outer's mark, and the outer's takes it into account. */
    struct pf_pb b;
    pf_pb_init(&b);
    size_t outer = pf_pb_begin(&b, 1);
    size_t inner = pf_pb_begin(&b, 2);
    for (int i = 0; i < 200; i++)
        pf_pb_raw(&b, "y", 1);
    pf_pb_end(&b, inner);
    pf_pb_uint64(&b, 3, 1);
    pf_pb_end(&b, outer);
    /* outer: 0x0a, length 1 + 2 + 200 + 2 = 205 (0xcd 0x01);
     * inner: 0x12, length 200 (0xc8 0x01). */
    assert_int_equal(pf_pb_error(&b), PF_OK);
    assert_int_equal(b.len, 3 + 205);
    static const uint8_t head[] = {0x0a, 0xcd, 0x01, 0x12, 0xc8, 0x01, 'y'};
    assert_memory_equal(b.data, head, sizeof(head));
    assert_int_equal(b.data[b.len - 2], 0x18);
    assert_int_equal(b.data[b.len - 1], 0x01);
    pf_pb_free(&b);
}

/* Past the first allocation, many times over: every byte kept. */
static void grows(void **state)
{
    (void)state;
    struct pf_pb b;
    pf_pb_init(&b);
    for (uint64_t i = 0; i < 100000; i++)
        pf_pb_varint(&b, i);
    assert_int_equal(pf_pb_error(&b), PF_OK);
    size_t at = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t v = 0;
        for (int shift = 0;; shift += 7) {
            assert_true(at < b.len);
            uint8_t c = b.data[at++];
            v |= (uint64_t)(c & 0x7f) << shift;
            if (!(c & 0x80))
                break;
        }
        assert_int_equal(v, i);
    }
    assert_int_equal(at, b.len);
    pf_pb_free(&b);
    assert_null(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_edges), cmocka_unit_test(tags_and_scalars),
        cmocka_unit_test(packed),       cmocka_unit_test(nested),
        cmocka_unit_test(grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

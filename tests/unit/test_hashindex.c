/* src/base/hashindex.c: the hash index under intern and agg. Ids come back for
 * their hash only, every id with an equal hash comes back, a miss ends at
 * the slot an insert fills, and growing keeps every id findable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/base/hashindex.h"

/* Look hash up, then insert id if nothing with that hash was there. */
static void add(struct pf_hashindex *ix, uint32_t hash, uint32_t id)
{
    struct pf_hashindex_probe p;
    pf_hashindex_probe(ix, hash, &p);
    while (pf_hashindex_next(ix, &p) != PF_HASHINDEX_END)
        ;
    assert_int_equal(pf_hashindex_insert(ix, &p, id), PF_OK);
}

/* The ids stored under hash, in probe order; how many. */
static size_t ids_of(const struct pf_hashindex *ix, uint32_t hash, uint32_t *out, size_t cap)
{
    struct pf_hashindex_probe p;
    uint32_t id;
    size_t n = 0;
    pf_hashindex_probe(ix, hash, &p);
    while ((id = pf_hashindex_next(ix, &p)) != PF_HASHINDEX_END)
        if (n < cap)
            out[n++] = id;
    return n;
}

static void sizes(void **state)
{
    (void)state;
    struct pf_hashindex ix;
    assert_int_equal(pf_hashindex_init(&ix, 0), PF_ERR_INTERNAL);
    assert_int_equal(pf_hashindex_init(&ix, 1), PF_ERR_INTERNAL);
    assert_int_equal(pf_hashindex_init(&ix, 12), PF_ERR_INTERNAL);
    assert_null(ix.slots);
    pf_hashindex_free(&ix); /* a zeroed struct is fine */
    assert_int_equal(pf_hashindex_init(&ix, 16), PF_OK);
    assert_int_equal(ix.mask, 15);
    pf_hashindex_free(&ix);
    assert_null(ix.slots);
}

static void found_by_hash(void **state)
{
    (void)state;
    struct pf_hashindex ix;
    uint32_t got[4];
    assert_int_equal(pf_hashindex_init(&ix, 16), PF_OK);
    add(&ix, 0xabc0, 0);
    add(&ix, 0x1234, 1);
    assert_int_equal(ids_of(&ix, 0xabc0, got, 4), 1);
    assert_int_equal(got[0], 0);
    assert_int_equal(ids_of(&ix, 0x1234, got, 4), 1);
    assert_int_equal(got[0], 1);
    /* Same slot (low bits), another hash: not a candidate. */
    assert_int_equal(ids_of(&ix, 0xfff0, got, 4), 0);
    assert_int_equal(ix.count, 2);
    pf_hashindex_free(&ix);
}

/* Equal hashes are the caller's to tell apart: each of them is offered. */
static void equal_hashes(void **state)
{
    (void)state;
    struct pf_hashindex ix;
    uint32_t got[8];
    assert_int_equal(pf_hashindex_init(&ix, 16), PF_OK);
    for (uint32_t id = 0; id < 5; id++)
        add(&ix, 7, id);
    assert_int_equal(ids_of(&ix, 7, got, 8), 5);
    for (uint32_t id = 0; id < 5; id++)
        assert_int_equal(got[id], id); /* in insertion order */
    pf_hashindex_free(&ix);
}

/* A miss leaves the probe on the empty slot it reached, wrapping past the
 * last slot to the first. */
static void miss_wraps(void **state)
{
    (void)state;
    struct pf_hashindex ix;
    struct pf_hashindex_probe p;
    uint32_t got[4];
    assert_int_equal(pf_hashindex_init(&ix, 16), PF_OK);
    add(&ix, 15, 0);
    add(&ix, 31, 1); /* slot 15 taken: wraps to 0 */
    assert_int_equal(ix.slots[0].id_plus_1, 2);
    pf_hashindex_probe(&ix, 47, &p);
    assert_int_equal(pf_hashindex_next(&ix, &p), PF_HASHINDEX_END);
    assert_int_equal(p.at, 1);
    assert_int_equal(pf_hashindex_insert(&ix, &p, 2), PF_OK);
    assert_int_equal(ids_of(&ix, 47, got, 4), 1);
    assert_int_equal(got[0], 2);
    assert_int_equal(ids_of(&ix, 31, got, 4), 1);
    assert_int_equal(got[0], 1);
    pf_hashindex_free(&ix);
}

/* Past half full it doubles, and every id stays under its hash. */
static void grows(void **state)
{
    (void)state;
    struct pf_hashindex ix;
    uint32_t got[4];
    const uint32_t n = 20000;
    assert_int_equal(pf_hashindex_init(&ix, 2), PF_OK);
    for (uint32_t id = 0; id < n; id++) {
        add(&ix, id * 2654435761u, id);
        assert_true(ix.count * 2 <= ix.mask + 1);
    }
    assert_int_equal(ix.count, n);
    for (uint32_t id = 0; id < n; id++) {
        assert_int_equal(ids_of(&ix, id * 2654435761u, got, 4), 1);
        assert_int_equal(got[0], id);
    }
    pf_hashindex_free(&ix);
}

static void clear_keeps_memory(void **state)
{
    (void)state;
    struct pf_hashindex ix;
    uint32_t got[4];
    assert_int_equal(pf_hashindex_init(&ix, 4), PF_OK);
    for (uint32_t id = 0; id < 100; id++)
        add(&ix, id, id);
    size_t slots = ix.mask + 1;
    pf_hashindex_clear(&ix);
    assert_int_equal(ix.count, 0);
    assert_int_equal(ix.mask + 1, slots);
    assert_int_equal(ids_of(&ix, 5, got, 4), 0);
    add(&ix, 5, 0);
    assert_int_equal(ids_of(&ix, 5, got, 4), 1);
    assert_int_equal(got[0], 0);
    pf_hashindex_free(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes),
        cmocka_unit_test(found_by_hash),
        cmocka_unit_test(equal_hashes),
        cmocka_unit_test(miss_wraps),
        cmocka_unit_test(grows),
        cmocka_unit_test(clear_keeps_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

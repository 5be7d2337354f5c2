/* agg: counts per stack, idle and failed by reason, the timeline the
 * formats with time read, windows (reset) and the --serve trim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/profile/agg.h"

static void counts_and_reasons(void **state)
{
    (void)state;
    struct pf_agg *a;
    assert_int_equal(pf_agg_new(&a), PF_OK);
    uint32_t s1[] = {1, 2, 3}, s2[] = {1, 2}, s3[] = {1, 2, 3, 3};
    assert_int_equal(pf_agg_add(a, s1, 3, 2), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 2, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s1, 3, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s3, 4, 1), PF_OK); /* a prefix is another stack */
    assert_int_equal(pf_agg_add(a, NULL, 0, 1), PF_OK); /* an empty stack is one too */
    pf_agg_add_idle(a, 4);
    pf_agg_add_failed(a, PF_FAIL_TORN, 2);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);
    pf_agg_add_failed(a, PF_FAIL__COUNT, 9); /* not a reason: ignored */
    assert_int_equal(pf_agg_stack_count(a), 4);
    assert_int_equal(pf_agg_stack_samples(a), 6);
    assert_int_equal(pf_agg_idle(a), 4);
    assert_int_equal(pf_agg_failed(a), 3);
    assert_int_equal(pf_agg_failed_by(a, PF_FAIL_TORN), 2);
    const uint32_t *f;
    size_t n;
    uint64_t c;
    pf_agg_stack_at(a, 0, &f, &n, &c); /* first seen first */
    assert_int_equal(n, 3);
    assert_int_equal(c, 3);
    assert_memory_equal(f, s1, sizeof(s1));
    assert_string_equal(pf_fail_reason_name(PF_FAIL_TORN), "stack changed while read");
    assert_string_equal(pf_fail_reason_name(PF_FAIL__COUNT), "?");
    /* No timeline unless asked. */
    assert_int_equal(pf_agg_timeline_count(a), 0);
    pf_agg_free(a);
}

static void timeline(void **state)
{
    (void)state;
    struct pf_agg *a;
    assert_int_equal(pf_agg_new(&a), PF_OK);
    assert_int_equal(pf_agg_keep_timeline(a), PF_OK);
    uint32_t s1[] = {7, 8}, s2[] = {7};
    pf_agg_set_time(a, 100);
    assert_int_equal(pf_agg_add(a, s1, 2, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 1, 2), PF_OK); /* --threads: two at one tick */
    pf_agg_set_time(a, 200);
    pf_agg_add_idle(a, 1);
    pf_agg_set_time(a, 300);
    pf_agg_add_failed(a, PF_FAIL_SLOW_STOP, 1);
    pf_agg_set_time(a, 400);
    assert_int_equal(pf_agg_add(a, s1, 2, 1), PF_OK);
    assert_int_equal(pf_agg_timeline_count(a), 6);
    static const struct {
        uint64_t t;
        uint32_t what;
    } WANT[] = {{100, 0}, {100, 1}, {100, 1}, {200, PF_AGG_IDLE}, {300, PF_AGG_FAILED(PF_FAIL_SLOW_STOP)}, {400, 0}};
    for (size_t i = 0; i < 6; i++) {
        uint64_t t;
        uint32_t what;
        pf_agg_timeline_at(a, i, &t, &what);
        assert_int_equal(t, WANT[i].t);
        assert_int_equal(what, WANT[i].what);
    }
    uint32_t w;
    uint64_t t;
    pf_agg_timeline_at(a, 4, &t, &w);
    assert_true(PF_AGG_IS_FAILED(w));
    assert_int_equal(PF_AGG_FAILED_REASON(w), PF_FAIL_SLOW_STOP);
    assert_false(PF_AGG_IS_FAILED(PF_AGG_IDLE));
    assert_false(PF_AGG_IS_FAILED(0));

    /* --serve's trim: entries before 250 go, indices into the rest hold. */
    pf_agg_timeline_drop_before(a, 250);
    assert_int_equal(pf_agg_timeline_count(a), 2);
    pf_agg_timeline_at(a, 0, &t, &w);
    assert_int_equal(t, 300);
    pf_agg_timeline_at(a, 1, &t, &w);
    assert_int_equal(t, 400);
    assert_int_equal(w, 0);
    pf_agg_timeline_drop_before(a, 10); /* nothing older */
    assert_int_equal(pf_agg_timeline_count(a), 2);
    pf_agg_timeline_drop_before(a, 1000); /* everything, the counts stay */
    assert_int_equal(pf_agg_timeline_count(a), 0);
    assert_int_equal(pf_agg_stack_samples(a), 4);
    /* A later tick records again. */
    pf_agg_set_time(a, 500);
    pf_agg_add_idle(a, 1);
    pf_agg_timeline_at(a, 0, &t, &w);
    assert_int_equal(t, 500);
    pf_agg_free(a);
}

/* --flush-reset: a window starts empty; stack indices restart. */
static void reset(void **state)
{
    (void)state;
    struct pf_agg *a;
    assert_int_equal(pf_agg_new(&a), PF_OK);
    assert_int_equal(pf_agg_keep_timeline(a), PF_OK);
    for (uint32_t i = 0; i < 3000; i++) { /* the hash table grows */
        uint32_t s[] = {i, i + 1};
        pf_agg_set_time(a, i);
        assert_int_equal(pf_agg_add(a, s, 2, 1), PF_OK);
    }
    pf_agg_add_idle(a, 2);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);
    pf_agg_reset(a);
    assert_int_equal(pf_agg_stack_count(a), 0);
    assert_int_equal(pf_agg_stack_samples(a) + pf_agg_idle(a) + pf_agg_failed(a), 0);
    assert_int_equal(pf_agg_timeline_count(a), 0);
    uint32_t s[] = {5, 6};
    pf_agg_set_time(a, 9);
    assert_int_equal(pf_agg_add(a, s, 2, 3), PF_OK);
    assert_int_equal(pf_agg_stack_count(a), 1); /* {5, 6} was stack 5: now 0 */
    const uint32_t *f;
    size_t n;
    uint64_t c;
    pf_agg_stack_at(a, 0, &f, &n, &c);
    assert_int_equal(c, 3);
    assert_int_equal(pf_agg_timeline_count(a), 3);
    pf_agg_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_and_reasons),
        cmocka_unit_test(timeline),
        cmocka_unit_test(reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* grow: doubling arrays, and failing without losing the array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "pyflame/base/grow.h"

static void doubles(void **state)
{
    (void)state;
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++) {
        int *w = pf_grow(v, n, &cap, sizeof(*w), 4);
        assert_non_null(w);
        v = w;
        v[n++] = i;
        assert_true(n <= cap);
    }
    assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    /* Room left: the same array, cap unchanged. */
    assert_ptr_equal(pf_grow(v, 100, &cap, sizeof(*v), 4), v);
    assert_int_equal(cap, 128);
    free(v);
}

/* A size that cannot be allocated: NULL, the array and cap untouched. */
static void fails_cleanly(void **state)
{
    (void)state;
    size_t cap = 0;
    char *v = pf_grow(NULL, 0, &cap, 1, 8);
    assert_non_null(v);
    size_t big = SIZE_MAX / 2 + 1;
    size_t cap2 = big;
    assert_null(pf_grow(v, big, &cap2, 2, 8)); /* would overflow */
    assert_int_equal(cap2, big);
    assert_null(pf_grow(v, 8, &cap, 0, 8)); /* full, and zero-sized elements */
    assert_int_equal(cap, 8);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doubles),
        cmocka_unit_test(fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

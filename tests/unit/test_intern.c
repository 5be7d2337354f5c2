/* intern: strings and frames to dense ids and back; equal in, equal id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/base/intern.h"

static void strings(void **state)
{
    (void)state;
    struct pf_intern *t;
    uint32_t a, b, c, d;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_intern_str(t, "main", 4, &a), PF_OK);
    assert_int_equal(pf_intern_str(t, "mainly", 4, &b), PF_OK); /* only len bytes count */
    assert_int_equal(pf_intern_str(t, "other", 5, &c), PF_OK);
    assert_int_equal(pf_intern_str(t, "a\0b", 3, &d), PF_OK);    /* not NUL-terminated text */
    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
    assert_string_equal(pf_intern_text(t, a), "main");
    assert_string_equal(pf_intern_text(t, c), "other");
    size_t n = pf_intern_str_count(t);
    /* Dense ids, stable while the table grows. */
    for (int i = 0; i < 20000; i++) {
        char buf[32];
        uint32_t id;
        int len = snprintf(buf, sizeof(buf), "name%d", i);
        assert_int_equal(pf_intern_str(t, buf, (size_t)len, &id), PF_OK);
        assert_int_equal(id, n + (size_t)i);
    }
    assert_string_equal(pf_intern_text(t, a), "main");
    assert_string_equal(pf_intern_text(t, (uint32_t)(n + 19999)), "name19999");
    pf_intern_free(t);
}

static void frames(void **state)
{
    (void)state;
    struct pf_intern *t;
    uint32_t file, name, f1, f2, f3, f4;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_intern_str(t, "a.py", 4, &file), PF_OK);
    assert_int_equal(pf_intern_str(t, "f", 1, &name), PF_OK);
    struct pf_frame_text x = {.kind = PF_FRAME_PYTHON, .file = file, .name = name, .line = 3};
    assert_int_equal(pf_intern_frame(t, &x, &f1), PF_OK);
    assert_int_equal(pf_intern_frame(t, &x, &f2), PF_OK);
    x.line = 4;
    assert_int_equal(pf_intern_frame(t, &x, &f3), PF_OK);
    x.line = 3;
    x.kind = PF_FRAME_NATIVE; /* same fields, another kind: another frame */
    assert_int_equal(pf_intern_frame(t, &x, &f4), PF_OK);
    assert_int_equal(f1, f2);
    assert_int_not_equal(f1, f3);
    assert_int_not_equal(f1, f4);
    assert_int_equal(pf_intern_frame_count(t), 3);
    const struct pf_frame_text *g = pf_intern_frame_get(t, f3);
    assert_non_null(g);
    assert_int_equal(g->line, 4);
    assert_int_equal(g->name, name);
    assert_null(pf_intern_frame_get(t, 99));
    for (int i = 0; i < 50000; i++) {
        struct pf_frame_text y = {.kind = PF_FRAME_PYTHON, .file = file, .name = name, .line = 100 + i};
        uint32_t id;
        assert_int_equal(pf_intern_frame(t, &y, &id), PF_OK);
        assert_int_equal(id, 3 + (uint32_t)i);
    }
    assert_int_equal(pf_intern_frame_get(t, f1)->line, 3);
    pf_intern_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings),
        cmocka_unit_test(frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

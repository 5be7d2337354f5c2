/* topview: the rows --top shows, over a fixed aggregate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/output/topview.h"

#include "frames_fixture.h"



struct fixture {
    struct pf_intern *t;
    struct pf_agg *a;
    uint32_t th1, th2, mod, main_, main2, heavy, heavy2, light, rec;
};

/* Two threads; main calls heavy (two lines) and light; heavy recurses. */
static void build(struct fixture *f)
{
    assert_int_equal(pf_intern_new(&f->t), PF_OK);
    assert_int_equal(pf_agg_new(&f->a), PF_OK);
    f->th1 = frame(f->t, PF_FRAME_PSEUDO, NULL, "(thread 1 main)", 0);
    f->th2 = frame(f->t, PF_FRAME_PSEUDO, NULL, "(thread 2 worker)", 0);
    f->mod = frame(f->t, PF_FRAME_PYTHON, "a.py", "<module>", 1);
    f->main_ = frame(f->t, PF_FRAME_PYTHON, "a.py", "main", 5);
    f->main2 = frame(f->t, PF_FRAME_PYTHON, "a.py", "main", 6);
    f->heavy = frame(f->t, PF_FRAME_PYTHON, "a.py", "heavy", 10);
    f->heavy2 = frame(f->t, PF_FRAME_PYTHON, "a.py", "heavy", 11);
    f->light = frame(f->t, PF_FRAME_PYTHON, "b.py", "light", 20);
    uint32_t s1[] = {f->th1, f->mod, f->main_, f->heavy};            /* 6 */
    uint32_t s2[] = {f->th1, f->mod, f->main_, f->heavy, f->heavy2}; /* 2: recursion */
    uint32_t s3[] = {f->th1, f->mod, f->main2, f->light};            /* 3 */
    uint32_t s4[] = {f->th1, f->mod, f->main_};                      /* 1: main itself */
    uint32_t s5[] = {f->th2, f->light};                              /* 4 */
    assert_int_equal(pf_agg_add(f->a, s1, 4, 6), PF_OK);
    assert_int_equal(pf_agg_add(f->a, s2, 5, 2), PF_OK);
    assert_int_equal(pf_agg_add(f->a, s3, 4, 3), PF_OK);
    assert_int_equal(pf_agg_add(f->a, s4, 3, 1), PF_OK);
    assert_int_equal(pf_agg_add(f->a, s5, 2, 4), PF_OK);
}

static const struct pf_top_row *find(const struct pf_top_row *rows, size_t n, pf_top_fn fn)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].fn == fn)
            return &rows[i];
    return NULL;
}

static void flat_view(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct pf_top_query q = {.skip_threads = true};
    struct pf_top_row *rows;
    size_t n;
    uint64_t context;
    assert_int_equal(pf_top_rows(f.a, f.t, NULL, 0, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(context, 16);
    assert_int_equal(n, 4); /* <module>, main, heavy, light: no thread rows */
    const struct pf_top_row *heavy = find(rows, n, pf_top_fn_of(f.t, f.heavy));
    const struct pf_top_row *main_ = find(rows, n, pf_top_fn_of(f.t, f.main2));
    const struct pf_top_row *light = find(rows, n, pf_top_fn_of(f.t, f.light));
    assert_non_null(heavy);
    assert_int_equal(heavy->total, 8); /* once per stack, recursion or not */
    assert_int_equal(heavy->own, 8);
    assert_int_equal(main_->total, 12); /* both lines are one function */
    assert_int_equal(main_->own, 1);
    assert_int_equal(light->total, 7);
    /* Sorted by total: <module> and main (12) lead. */
    assert_int_equal(rows[0].total, 12);
    assert_int_equal(rows[2].fn, pf_top_fn_of(f.t, f.heavy));
    free(rows);
    q.sort = PF_TOP_BY_OWN;
    assert_int_equal(pf_top_rows(f.a, f.t, NULL, 0, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(rows[0].fn, pf_top_fn_of(f.t, f.heavy));
    assert_int_equal(rows[1].fn, pf_top_fn_of(f.t, f.light));
    free(rows);
    pf_agg_free(f.a);
    pf_intern_free(f.t);
}

static void callees_view(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    pf_top_fn path[] = {pf_top_fn_of(f.t, f.main_)};
    struct pf_top_query q = {.path = path, .npath = 1, .skip_threads = true};
    struct pf_top_row *rows;
    size_t n;
    uint64_t context;
    assert_int_equal(pf_top_rows(f.a, f.t, NULL, 0, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(context, 12);
    assert_int_equal(n, 3);
    assert_int_equal(find(rows, n, pf_top_fn_of(f.t, f.heavy))->total, 8);
    assert_int_equal(find(rows, n, pf_top_fn_of(f.t, f.heavy))->own, 6);
    assert_int_equal(find(rows, n, pf_top_fn_of(f.t, f.light))->total, 3);
    assert_int_equal(find(rows, n, PF_TOP_SELF)->own, 1);
    free(rows);
    /* main > heavy: heavy calls itself in 2 samples, runs itself in 6. */
    pf_top_fn path2[] = {pf_top_fn_of(f.t, f.main_), pf_top_fn_of(f.t, f.heavy)};
    q.path = path2;
    q.npath = 2;
    assert_int_equal(pf_top_rows(f.a, f.t, NULL, 0, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(context, 8);
    assert_int_equal(find(rows, n, PF_TOP_SELF)->own, 6);
    assert_int_equal(find(rows, n, pf_top_fn_of(f.t, f.heavy))->total, 2);
    free(rows);
    pf_agg_free(f.a);
    pf_intern_free(f.t);
}

/* --threads: anchored at the root, the first level is the threads; the
 * last interval's counts replace the aggregate's. */
static void threads_and_interval(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct pf_top_query q = {.anchored = true};
    struct pf_top_row *rows;
    size_t n;
    uint64_t context;
    assert_int_equal(pf_top_rows(f.a, f.t, NULL, 0, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].fn, pf_top_fn_of(f.t, f.th1));
    assert_int_equal(rows[0].total, 12);
    assert_int_equal(rows[1].total, 4);
    free(rows);
    uint64_t counts[] = {0, 0, 0, 0, 5}; /* only the worker ran lately */
    assert_int_equal(pf_top_rows(f.a, f.t, counts, 5, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].fn, pf_top_fn_of(f.t, f.th2));
    assert_int_equal(rows[0].total, 5);
    assert_int_equal(context, 5);
    free(rows);
    /* Stacks newer than the counts (seen since the last refresh) count 0. */
    assert_int_equal(pf_top_rows(f.a, f.t, counts, 2, &q, &rows, &n, &context), PF_OK);
    assert_int_equal(n, 0);
    assert_int_equal(context, 0);
    free(rows);
    pf_agg_free(f.a);
    pf_intern_free(f.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flat_view),
        cmocka_unit_test(callees_view),
        cmocka_unit_test(threads_and_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

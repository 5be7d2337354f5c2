/* The collapsed writer on fixed aggregates, compared byte for byte with
 * tests/golden/ (FlameGraph's test.sh pattern). scripts/update-golden
 * rewrites the golden files after an intended change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/output/writer.h"

#include "frames_fixture.h"




static char *render(const struct pf_agg *agg, const struct pf_intern *names, bool idle)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct pf_write_opts o = {.include_idle = idle};
    assert_non_null(f);
    assert_int_equal(pf_writer_collapsed.write(f, agg, names, &o), PF_OK);
    fclose(f);
    return buf;
}

static char *slurp(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/golden/%s", PF_SOURCE_ROOT, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void check_golden(const char *name, const char *got)
{
    if (getenv("PF_UPDATE_GOLDEN")) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/tests/golden/%s", PF_SOURCE_ROOT, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
        return;
    }
    char *want = slurp(name);
    if (strcmp(want, got) != 0)
        fail_msg("output differs from tests/golden/%s:\n--- got ---\n%s--- want ---\n%s", name, got, want);
    free(want);
}

static void collapsed_basic(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);

    uint32_t mod = py(t, "/app/main.py", "<module>", 30);
    uint32_t run = py(t, "/app/main.py", "run", 12);
    uint32_t work = py(t, "/app/work.py", "work", 5);
    uint32_t work7 = py(t, "/app/work.py", "work", 7);
    uint32_t s1[] = {mod, run, work};
    uint32_t s2[] = {mod, run, work7};
    uint32_t s3[] = {mod};
    assert_int_equal(pf_agg_add(a, s1, 3, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 3, 2), PF_OK);
    assert_int_equal(pf_agg_add(a, s1, 3, 4), PF_OK); /* merges with the first */
    assert_int_equal(pf_agg_add(a, s3, 1, 1), PF_OK);
    pf_agg_add_idle(a, 3);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);
    pf_agg_add_failed(a, PF_FAIL_GIL_MOVED, 1);
    assert_int_equal(pf_agg_stack_count(a), 3);
    assert_int_equal(pf_agg_stack_samples(a), 8);
    assert_int_equal(pf_agg_failed(a), 2);

    char *with_idle = render(a, t, true);
    check_golden("collapsed_basic.txt", with_idle);
    char *without = render(a, t, false);
    assert_null(strstr(without, "(idle)"));
    assert_non_null(strstr(without, "(failed) 2\n"));
    free(with_idle);
    free(without);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* Names that would break the format, pseudo-frames, frames without lines. */
static void collapsed_special(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);

    uint32_t s1[] = {pseudo(t, "(truncated)"), py(t, "/odd;dir/x.py", "f", 3)};
    uint32_t s2[] = {py(t, "/app/r\xc3\xa9sum\xc3\xa9.py", "r\xc3\xa9sum\xc3\xa9_\xcf\x80", PF_LINE_NONE)};
    uint32_t s3[] = {py(t, "x.py", "no\nline", PF_LINE_OMITTED)};
    assert_int_equal(pf_agg_add(a, s1, 2, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 1, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s3, 1, 1), PF_OK);
    char *got = render(a, t, true);
    check_golden("collapsed_special.txt", got);
    free(got);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* Many stacks: the hash tables grow and keep every count. */
static void agg_grows(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 5000; i++) {
            uint32_t s[] = {py(t, "a.py", "f", i), py(t, "a.py", "g", i % 7)};
            assert_int_equal(pf_agg_add(a, s, 2, 1), PF_OK);
        }
    assert_int_equal(pf_agg_stack_count(a), 5000);
    assert_int_equal(pf_agg_stack_samples(a), 10000);
    for (size_t i = 0; i < pf_agg_stack_count(a); i++) {
        const uint32_t *ids;
        size_t n;
        uint64_t c;
        pf_agg_stack_at(a, i, &ids, &n, &c);
        assert_int_equal(n, 2);
        assert_int_equal(c, 2);
    }
    assert_int_equal(pf_intern_frame_count(t), 5000 + 7);
    pf_agg_free(a);
    pf_intern_free(t);
}

static char *render_with(const struct pf_writer *w, const struct pf_agg *agg,
                         const struct pf_intern *names, const struct pf_write_opts *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(w->write(f, agg, names, o), PF_OK);
    fclose(f);
    return buf;
}

/* One fixed run for every format with time: seven ticks, 1 ms apart, with
 * a stack that changes, idle, failed, names that break formats, and a
 * thread root frame (--show-threads). */
static void timeline_run(struct pf_intern **tp, struct pf_agg **ap)
{
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    assert_int_equal(pf_agg_keep_timeline(a), PF_OK);
    uint32_t mod = py(t, "/app/main.py", "<module>", 30);
    uint32_t run = py(t, "/app/main.py", "run", 12);
    uint32_t work = py(t, "/app/work.py", "work", 5);
    uint32_t work7 = py(t, "/app/work.py", "work", 7);
    uint32_t odd = py(t, "/odd;dir/x.py", "q\"<&>\n\xc3\xa9\xff", 3);
    uint32_t s1[] = {mod, run, work}, s2[] = {mod, run, work7}, s3[] = {mod, odd};
    uint32_t s4[] = {pseudo(t, "(thread 7 worker)"), mod, run};
    uint64_t ms = 1000000;
    pf_agg_set_time(a, 1 * ms);
    assert_int_equal(pf_agg_add(a, s1, 3, 1), PF_OK);
    pf_agg_set_time(a, 2 * ms);
    assert_int_equal(pf_agg_add(a, s2, 3, 1), PF_OK);
    pf_agg_set_time(a, 3 * ms);
    pf_agg_add_idle(a, 1);
    pf_agg_set_time(a, 4 * ms);
    assert_int_equal(pf_agg_add(a, s1, 3, 1), PF_OK);
    pf_agg_set_time(a, 5 * ms);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);
    pf_agg_set_time(a, 6 * ms);
    assert_int_equal(pf_agg_add(a, s3, 2, 1), PF_OK);
    pf_agg_set_time(a, 7 * ms);
    assert_int_equal(pf_agg_add(a, s4, 3, 1), PF_OK);
    assert_int_equal(pf_agg_timeline_count(a), 7);
    *tp = t;
    *ap = a;
}

static const struct pf_write_opts RUN_OPTS = {
    .include_idle = true,
    .interval = 0.001,
    .duration = 0.007,
    .mono_to_unix_ns = 1700000000000000000ll,
    .title = "pid 42",
};

static void formats_golden(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    timeline_run(&t, &a);
    static const struct {
        const char *writer, *golden;
    } CASES[] = {
        {"flamechart", "flamechart.txt"},
        {"speedscope", "speedscope.json"},
        {"chrome", "chrome.json"},
        {"table", "table.txt"},
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        const struct pf_writer *w = pf_writer_find(CASES[i].writer);
        assert_non_null(w);
        char *got = render_with(w, a, t, &RUN_OPTS);
        check_golden(CASES[i].golden, got);
        free(got);
    }
    /* The table's other views. */
    struct pf_write_opts o = RUN_OPTS;
    o.sort = PF_SORT_OWN;
    o.table_lines = true;
    o.include_idle = false;
    char *got = render_with(&pf_writer_table, a, t, &o);
    check_golden("table_own_lines.txt", got);
    free(got);
    /* -x: no idle sample in the flamechart. */
    got = render_with(&pf_writer_flamechart, a, t, &o);
    assert_null(strstr(got, "(idle)"));
    assert_non_null(strstr(got, "(failed)\n"));
    free(got);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* Formats chosen by the output file's name. */
static void writer_for_path(void **state)
{
    (void)state;
    assert_ptr_equal(pf_writer_for_path("a/b.json"), &pf_writer_speedscope);
    assert_ptr_equal(pf_writer_for_path("p.txt"), &pf_writer_collapsed);
    assert_null(pf_writer_for_path("profile"));
    assert_null(pf_writer_for_path(".jsonx"));
    assert_non_null(strstr(pf_writer_names(), "collapsed|flamechart"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(collapsed_basic),
        cmocka_unit_test(collapsed_special),
        cmocka_unit_test(agg_grows),
        cmocka_unit_test(formats_golden),
        cmocka_unit_test(writer_for_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

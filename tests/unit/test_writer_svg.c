/* The svg writer (src/output/writer_svg.c) on fixed aggregates: the output is
 * well-formed XML and valid UTF-8 whatever the names hold, boxes are where
 * the samples put them, narrow boxes are left out and counted, colours
 * depend on the file only. Rendering and the script are tested in a
 * browser by tests/integration/formats_svg_test.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/escape.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/output/writer.h"

#include "frames_fixture.h"




static char *render(const struct pf_agg *agg, const struct pf_intern *names, bool idle)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct pf_write_opts o = {
        .include_idle = idle, .interval = 0.01, .duration = 2, .title = "pid 42"};
    assert_non_null(f);
    assert_int_equal(pf_writer_svg.write(f, agg, names, &o), PF_OK);
    fclose(f);
    assert_int_equal(strlen(buf), len); /* no NUL byte written */
    return buf;
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* The <g> element of the box whose tooltip starts with title, from "<g" to
 * "</g>", copied; fails if there is none, or more than one. */
static char *box(const char *svg, const char *title)
{
    char key[512];
    snprintf(key, sizeof(key), "><title>%s: ", title);
    const char *t = strstr(svg, key);
    if (!t) {
        fail_msg("no box titled %s", title);
        return NULL; /* not reached: fail_msg does not return */
    }
    if (strstr(t + 1, key))
        fail_msg("two boxes titled %s", title);
    const char *start = t;
    while (start > svg && strncmp(start, "<g ", 3) != 0)
        start--;
    const char *end = strstr(t, "</g>");
    assert_non_null(end);
    return strndup(start, (size_t)(end + 4 - start));
}

/* An entity reference XML knows without a DTD, at s (which starts with
 * '&'): its length, or 0. */
static size_t entity(const char *s)
{
    static const char *const NAMED[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(s, NAMED[i], strlen(NAMED[i])) == 0)
            return strlen(NAMED[i]);
    return 0;
}

/* Minimal XML 1.0 well-formedness, enough for what the writer emits: valid
 * UTF-8 with no forbidden control character; one root element, <svg>;
 * tags balanced and properly nested; attribute values quoted, with no '<'
 * and no '&' that does not start an entity; the same for '&' in text;
 * comments, CDATA sections and the XML declaration skipped whole. */
static void check_xml(const char *doc)
{
    const char *stack[64];
    size_t depth = 0, roots = 0;
    const char *p = doc;

    for (const unsigned char *u = (const unsigned char *)doc; *u;) {
        int n = pf_utf8_len(u);
        if (n == 0)
            fail_msg("invalid UTF-8 at byte %zu", (size_t)((const char *)u - doc));
        if (n == 1 && *u < 0x20 && *u != '\t' && *u != '\n' && *u != '\r')
            fail_msg("control character 0x%02x at byte %zu", *u, (size_t)((const char *)u - doc));
        u += n;
    }
    while (*p) {
        if (*p == '&') {
            if (!entity(p))
                fail_msg("bare '&' in text at byte %zu", (size_t)(p - doc));
            p++;
            continue;
        }
        if (strncmp(p, "]]>", 3) == 0)
            fail_msg("']]>' in text at byte %zu", (size_t)(p - doc));
        if (*p != '<') {
            if (depth == 0 && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
                fail_msg("text outside the root element at byte %zu", (size_t)(p - doc));
            p++;
            continue;
        }
        const char *close = NULL;
        if (strncmp(p, "<?", 2) == 0)
            close = "?>";
        else if (strncmp(p, "<!--", 4) == 0)
            close = "-->";
        else if (strncmp(p, "<![CDATA[", 9) == 0) {
            if (depth == 0)
                fail_msg("CDATA outside the root element");
            close = "]]>";
        }
        if (close) {
            const char *e = strstr(p, close);
            if (!e)
                fail_msg("unterminated %.4s at byte %zu", p, (size_t)(p - doc));
            p = e + strlen(close);
            continue;
        }
        bool end = p[1] == '/';
        const char *name = p + (end ? 2 : 1);
        size_t nlen = strcspn(name, " \t\n/>");
        if (nlen == 0)
            fail_msg("'<' without a tag name at byte %zu", (size_t)(p - doc));
        p = name + nlen;
        if (end) {
            if (depth == 0 || strncmp(stack[depth - 1], name, nlen) != 0 ||
                strcspn(stack[depth - 1], " \t\n/>") != nlen)
                fail_msg("</%.*s> does not close the open element at byte %zu", (int)nlen, name,
                         (size_t)(name - doc));
            depth--;
            while (*p == ' ' || *p == '\n')
                p++;
            if (*p != '>')
                fail_msg("junk in an end tag at byte %zu", (size_t)(p - doc));
            p++;
            continue;
        }
        /* Attributes: name="value" or name='value'. */
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t')
                p++;
            if (*p == '>' || strncmp(p, "/>", 2) == 0)
                break;
            size_t alen = strcspn(p, "= \t\n/>");
            if (alen == 0 || p[alen] != '=' || (p[alen + 1] != '"' && p[alen + 1] != '\''))
                fail_msg("malformed attribute at byte %zu: %.40s", (size_t)(p - doc), p);
            char quote = p[alen + 1];
            p += alen + 2;
            for (; *p != quote; p++) {
                if (!*p)
                    fail_msg("unterminated attribute value");
                if (*p == '<')
                    fail_msg("'<' inside an attribute value at byte %zu", (size_t)(p - doc));
                if (*p == '&' && !entity(p))
                    fail_msg("bare '&' in an attribute value at byte %zu", (size_t)(p - doc));
            }
            p++;
        }
        if (*p == '/') {
            if (depth == 0)
                roots++;
            p += 2;
            continue;
        }
        if (depth == 0)
            roots++;
        if (depth == 64)
            fail_msg("elements nested too deep");
        stack[depth++] = name;
        p++;
    }
    if (depth)
        fail_msg("%zu elements left open", depth);
    if (roots != 1)
        fail_msg("%zu root elements", roots);
    assert_int_equal(strncmp(doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"", 36), 0);
    assert_non_null(strstr(doc, "?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "));
}

/* The attribute `name` of the first element in s: its value as a double. */
static double attr(const char *s, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), " %s=\"", name);
    const char *p = strstr(s, key);
    if (!p)
        fail_msg("no %s in %s", name, s);
    return strtod(p + strlen(key), NULL);
}

/* Names that would break some format: ';' (collapsed), quotes, '<', '&',
 * a newline, non-ASCII, invalid UTF-8, in function, file and pseudo names. */
static void svg_special_names(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);

    uint32_t f = py(t, "/odd;dir/q\"uo'te.py", "f<g>&h", 3);
    uint32_t nl = py(t, "/app/r\xc3\xa9sum\xc3\xa9.py", "new\nline", 4);
    uint32_t bad = py(t, "/bad/\xff\xfe.py",
                      "inv\xc3"
                      "lid\x01",
                      5);
    uint32_t thr = pseudo(t, "(thread 12 <main> & co)");
    uint32_t s1[] = {f, nl}, s2[] = {f, bad}, s3[] = {thr, f};
    assert_int_equal(pf_agg_add(a, s1, 2, 3), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 2, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s3, 2, 2), PF_OK);
    pf_agg_add_idle(a, 1);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);

    char *svg = render(a, t, true);
    check_xml(svg);
    /* The tooltips, escaped; ';' is kept (SVG does not split on it). */
    assert_non_null(strstr(
        svg,
        "<title>f&lt;g&gt;&amp;h (/odd;dir/q&quot;uo&apos;te.py:3): 4 samples, 50.00%</title>"));
    assert_non_null(strstr(
        svg, "<title>new\nline (/app/r\xc3\xa9sum\xc3\xa9.py:4): 3 samples, 37.50%</title>"));
    /* Invalid bytes and the control character become U+FFFD. */
    assert_non_null(strstr(svg, "<title>inv\xef\xbf\xbdlid\xef\xbf\xbd "
                                "(/bad/\xef\xbf\xbd\xef\xbf\xbd.py:5): 1 sample, 12.50%</title>"));
    assert_non_null(
        strstr(svg, "<title>(thread 12 &lt;main&gt; &amp; co): 2 samples, 25.00%</title>"));
    /* The labels, whole: every box is wide enough. */
    assert_non_null(strstr(svg, ">f&lt;g&gt;&amp;h (/odd;dir/q&quot;uo&apos;te.py:3)</text>"));
    /* The same names in the script's JSON, escaped as JSON, then as XML. */
    assert_non_null(
        strstr(svg, "&quot;f&lt;g&gt;&amp;h (/odd;dir/q\\&quot;uo&apos;te.py:3)&quot;"));
    assert_non_null(strstr(svg, "&quot;new\\nline (/app/r\xc3\xa9sum\xc3\xa9.py:4)&quot;"));
    assert_non_null(
        strstr(svg, "&quot;inv\xef\xbf\xbdlid\\u0001 (/bad/\xef\xbf\xbd\xef\xbf\xbd.py:5)&quot;"));
    assert_null(strstr(svg, "\xff"));
    /* Nothing the target named is in a CDATA section, where escaping
     * would not apply: the only one is the script's. */
    assert_int_equal(count(svg, "<![CDATA["), 1);
    const char *cdata = strstr(svg, "<![CDATA[");
    assert_null(strstr(cdata, "f<g>"));
    assert_null(strstr(cdata, "(thread"));
    assert_int_equal(count(cdata, "]]>"), 1);
    free(svg);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* collapsed_basic's aggregate (tests/unit/test_writer.c): the tree, its
 * order, the exact boxes and where one of them is. */
static void svg_geometry(void **state)
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
    uint32_t s1[] = {mod, run, work}, s2[] = {mod, run, work7}, s3[] = {mod};
    assert_int_equal(pf_agg_add(a, s1, 3, 1), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 3, 2), PF_OK);
    assert_int_equal(pf_agg_add(a, s1, 3, 4), PF_OK);
    assert_int_equal(pf_agg_add(a, s3, 1, 1), PF_OK);
    pf_agg_add_idle(a, 3);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);
    pf_agg_add_failed(a, PF_FAIL_GIL_MOVED, 1);

    char *svg = render(a, t, true);
    check_xml(svg);
    /* all, (failed), (idle), <module>, run, work:5, work:7, and the
     * background: 13 samples, none hidden. */
    assert_int_equal(count(svg, "<rect "), 8);
    assert_int_equal(count(svg, "<g data-i="), 7);
    assert_null(strstr(svg, "id=\"pf-note\""));
    assert_non_null(
        strstr(svg, ">13 samples in 2.00 s, one every 0.01 s: 8 with a stack, 3 idle, 2 failed<"));
    /* Sorted by name on each row, like flamegraph.pl: '(' < '<'. */
    char *failed = box(svg, "(failed)"), *idle = box(svg, "(idle)");
    char *module = box(svg, "&lt;module&gt; (/app/main.py:30)");
    char *w5 = box(svg, "work (/app/work.py:5)"), *w7 = box(svg, "work (/app/work.py:7)");
    char *all = box(svg, "all");
    assert_non_null(strstr(failed, "data-o=\"0\" data-n=\"2\" data-d=\"1\""));
    assert_non_null(strstr(idle, "data-o=\"2\" data-n=\"3\" data-d=\"1\""));
    assert_non_null(strstr(module, "data-o=\"5\" data-n=\"8\" data-d=\"1\""));
    assert_non_null(strstr(w5, "data-o=\"5\" data-n=\"5\" data-d=\"3\""));
    /* work:7 starts 10 samples of 13 in, is 2 wide, on a graph 1180 wide
     * from x = 10: x = 10 + 10 * 1180 / 13, width 2 * 1180 / 13. Rows are
     * 16 high from y = 66, the root at the bottom: 4 rows, work's the top. */
    assert_non_null(strstr(w7, "data-o=\"10\" data-n=\"2\" data-d=\"3\""));
    assert_non_null(strstr(w7, "<rect x=\"917.69\" y=\"66\" width=\"181.54\" height=\"15\""));
    assert_non_null(strstr(w7, "<text x=\"920.69\" y=\"78\">work (/app/work.py:7)</text>"));
    assert_non_null(strstr(all, "<rect x=\"10.00\" y=\"114\" width=\"1180.00\""));
    assert_true(attr(module, "y") > attr(w5, "y"));
    free(failed), free(idle), free(module), free(w5), free(w7), free(all);
    free(svg);

    /* -x: no idle box, and 10 samples. */
    svg = render(a, t, false);
    check_xml(svg);
    assert_null(strstr(svg, "(idle)"));
    assert_int_equal(count(svg, "<rect "), 7);
    assert_non_null(strstr(
        svg,
        ">10 samples in 2.00 s, one every 0.01 s: 8 with a stack, idle left out (-x), 2 failed<"));
    w7 = box(svg, "work (/app/work.py:7)");
    /* x = 10 + 7 * 1180 / 10, width 2 * 1180 / 10. */
    assert_non_null(strstr(w7, "<rect x=\"836.00\" y=\"66\" width=\"236.00\""));
    free(w7);
    free(svg);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* Boxes under 0.1% of the samples are not drawn, nor what they called; the
 * graph says how many, and the script's data keeps them for the search.
 * Labels are cut, by characters, to the box. */
static void svg_hidden_and_cut(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    char wide[2 * 200 + 1] = "";
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    for (int i = 0; i < 200; i++)
        strcat(wide, "\xc3\xa9"); /* é: 2 bytes, 1 character */
    uint32_t top = py(t, "a.py", "a", 1), b = py(t, "b.py", wide, 2);
    uint32_t c = py(t, "c.py", "c", 3), d = py(t, "d.py", "d", 4);
    uint32_t s1[] = {top, b}, s2[] = {top, c, d};
    assert_int_equal(pf_agg_add(a, s1, 2, 2000), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 3, 1), PF_OK);

    char *svg = render(a, t, true);
    check_xml(svg);
    /* 1 sample of 2001 is under 0.1%: c and d are not drawn. */
    assert_int_equal(count(svg, "<g data-i="), 3);
    assert_null(strstr(svg, "<title>c (c.py:3)"));
    assert_non_null(strstr(
        svg,
        ">2 boxes narrower than 0.1% of the width not drawn (search still counts them)</text>"));
    /* all, a, b, c, d take names 0-4 in the order first met; c sorts
     * before b's "\xc3\xa9...", byte by byte, so it starts at 0. */
    assert_non_null(strstr(svg, "],&quot;hidden&quot;:[3,0,1,4,0,1]}"));
    /* b is 2000 * 1180 / 2001 = 1179.41 wide: (1179.41 - 6) / 7.3 = 160
     * characters fit, 158 of its name and "..". */
    char want[512] = ">";
    for (int i = 0; i < 158; i++)
        strcat(want, "\xc3\xa9");
    strcat(want, "..</text>");
    assert_non_null(strstr(svg, want));
    free(svg);

    /* 1 sample of 1000 is 0.1%: drawn. */
    pf_agg_free(a);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    assert_int_equal(pf_agg_add(a, s1, 2, 999), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 3, 1), PF_OK);
    svg = render(a, t, true);
    assert_int_equal(count(svg, "<g data-i="), 5);
    assert_null(strstr(svg, "id=\"pf-note\""));
    assert_non_null(strstr(svg, "&quot;hidden&quot;:[]}"));
    free(svg);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* A sleeping thread with no Python frame is a pseudo "(idle)" stack under
 * --threads: it and the idle samples are one box. An empty profile is
 * still a valid document. */
static void svg_idle_merge_and_empty(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);

    char *svg = render(a, t, true);
    check_xml(svg);
    assert_int_equal(count(svg, "<rect "), 1);
    assert_non_null(strstr(svg, ">No samples</text>"));
    free(svg);

    uint32_t s1[] = {pseudo(t, "(idle)")}, s2[] = {py(t, "x.py", "x", 1)};
    assert_int_equal(pf_agg_add(a, s1, 1, 2), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 1, 5), PF_OK);
    pf_agg_add_idle(a, 3);
    svg = render(a, t, true);
    check_xml(svg);
    assert_int_equal(count(svg, "<title>(idle): "), 1);
    assert_non_null(strstr(svg, "<title>(idle): 5 samples, 50.00%</title>"));
    free(svg);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* "#rrggbb" -> hue in degrees. */
static double hue_of(const char *fill)
{
    unsigned r, g, b;
    assert_int_equal(sscanf(fill, "#%02x%02x%02x", &r, &g, &b), 3);
    double mx = r > g ? (r > b ? r : b) : (g > b ? g : b),
           mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (mx == mn)
        return 0;
    double h = mx == r   ? (g - (double)b) / (mx - mn)
               : mx == g ? 2 + (b - (double)r) / (mx - mn)
                         : 4 + (r - (double)g) / (mx - mn);
    h *= 60;
    return h < 0 ? h + 360 : h;
}

static const char *fill_of(const char *svg, const char *title, char out[8])
{
    char *g = box(svg, title);
    const char *p = strstr(g, "fill=\"");
    assert_non_null(p);
    memcpy(out, p + 6, 7);
    out[7] = '\0';
    free(g);
    return out;
}

/* Colours come from names, not from ids or order: the same frame has the
 * same fill in another profile; one file has one hue. */
static void svg_colours(void **state)
{
    (void)state;
    struct pf_intern *t1, *t2;
    struct pf_agg *a1, *a2;
    char f1[8], f2[8], f3[8], f4[8];
    assert_int_equal(pf_intern_new(&t1), PF_OK);
    assert_int_equal(pf_intern_new(&t2), PF_OK);
    assert_int_equal(pf_agg_new(&a1), PF_OK);
    assert_int_equal(pf_agg_new(&a2), PF_OK);

    uint32_t s1[] = {py(t1, "/srv/app.py", "main", 1), py(t1, "/srv/app.py", "handle", 2),
                     py(t1, "/srv/db.py", "query", 3)};
    assert_int_equal(pf_agg_add(a1, s1, 3, 1), PF_OK);
    /* Another profile: other frames interned first, other counts. */
    uint32_t other = py(t2, "/srv/other.py", "x", 9);
    uint32_t s2[] = {other, py(t2, "/srv/db.py", "query", 3)};
    assert_int_equal(pf_agg_add(a2, s2, 2, 7), PF_OK);

    char *one = render(a1, t1, true), *two = render(a2, t2, true);
    assert_string_equal(fill_of(one, "query (/srv/db.py:3)", f1),
                        fill_of(two, "query (/srv/db.py:3)", f2));
    fill_of(one, "main (/srv/app.py:1)", f3);
    fill_of(one, "handle (/srv/app.py:2)", f4);
    assert_true(hue_of(f3) - hue_of(f4) < 1.5 && hue_of(f4) - hue_of(f3) < 1.5);
    double d = hue_of(f1) - hue_of(f3);
    assert_true(d > 1.5 || d < -1.5); /* app.py and db.py hash apart */
    /* Pseudo boxes are grey. */
    assert_string_equal(fill_of(one, "all", f1), "#dcdcdc");
    free(one);
    free(two);
    pf_agg_free(a1);
    pf_agg_free(a2);
    pf_intern_free(t1);
    pf_intern_free(t2);
}

/* 10,000 distinct frames of one sample each beside one big one: none of
 * them is drawn (each is 1/20,000 of the graph), the note counts them, the
 * data lists them all, and the file stays small. */
static void svg_many_frames(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    char name[32];
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    uint32_t main_ = py(t, "m.py", "main", 1), big = py(t, "m.py", "big", 2);
    uint32_t s[] = {main_, big};
    assert_int_equal(pf_agg_add(a, s, 2, 10000), PF_OK);
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "small_%d", i);
        s[1] = py(t, "s.py", name, i + 1);
        assert_int_equal(pf_agg_add(a, s, 2, 1), PF_OK);
    }
    char *svg = render(a, t, true);
    check_xml(svg);
    assert_int_equal(count(svg, "<g data-i="), 3); /* all, main, big */
    assert_non_null(strstr(svg, ">10000 boxes narrower than 0.1% of the width not drawn"));
    assert_int_equal(count(svg, "&quot;small_"), 10000);
    assert_true(strlen(svg) < 1024 * 1024);
    free(svg);
    pf_agg_free(a);
    pf_intern_free(t);
}

struct drawn {
    unsigned i, d;
    unsigned long long o, n;
    char name[64];
    int parent;
};

/* Random stacks over a few frames: every drawn box has exactly the samples
 * of the stacks that start with its path (its ancestors' names and its
 * own), boxes of a row do not overlap, children sit inside their parent in
 * name order, and x and width are where the samples say. */
static void svg_random_tree(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    enum { NSTACKS = 600, MAXD = 7, NF = 6 };
    static uint32_t stacks[NSTACKS][MAXD];
    static size_t depth[NSTACKS];
    static uint64_t counts[NSTACKS];
    uint32_t f[NF];
    char name[32];
    uint32_t seed = 12345;
    uint64_t total = 0;

    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    /* Interned in an order other than their names'. */
    for (int k = 0; k < NF; k++) {
        snprintf(name, sizeof(name), "f%d", (k * 5 + 3) % NF);
        f[k] = py(t, "r.py", name, 1);
    }
    for (int i = 0; i < NSTACKS; i++) {
        seed = seed * 1103515245u + 12345u;
        depth[i] = 1 + (seed >> 16) % MAXD;
        for (size_t d = 0; d < depth[i]; d++) {
            seed = seed * 1103515245u + 12345u;
            /* Mostly the first frames, so paths repeat. */
            stacks[i][d] = f[((seed >> 16) % 100) < 70 ? (seed >> 8) % 2 : (seed >> 8) % NF];
        }
        seed = seed * 1103515245u + 12345u;
        counts[i] = 1 + (seed >> 16) % 40;
        total += counts[i];
        assert_int_equal(pf_agg_add(a, stacks[i], depth[i], counts[i]), PF_OK);
    }
    char *svg = render(a, t, false);
    check_xml(svg);

    static struct drawn b[4096];
    size_t nb = 0;
    for (const char *p = strstr(svg, "<g data-i="); p; p = strstr(p + 1, "<g data-i=")) {
        assert_true(nb < 4096);
        struct drawn *x = &b[nb++];
        assert_int_equal(
            sscanf(p, "<g data-i=\"%u\" data-o=\"%llu\" data-n=\"%llu\" data-d=\"%u\"><title>",
                   &x->i, &x->o, &x->n, &x->d),
            4);
        /* The name: the title up to ": N samples". */
        const char *nm = strstr(p, "<title>") + 7, *colon = strstr(nm, ": ");
        assert_true(colon && colon - nm < 64);
        memcpy(x->name, nm, (size_t)(colon - nm));
        x->name[colon - nm] = '\0';
        /* x and width from the samples: 10 + o * 1180 / total, n * 1180 / total. */
        char want[128];
        snprintf(want, sizeof(want), "<rect x=\"%.2f\" y=\"",
                 10 + (double)x->o * 1180 / (double)total);
        const char *r = strstr(p, "<rect ");
        assert_int_equal(strncmp(r, want, strlen(want)), 0);
        snprintf(want, sizeof(want), " width=\"%.2f\" ", (double)x->n * 1180 / (double)total);
        assert_non_null(strstr(r, want) && strstr(r, want) < strstr(r, "/>") ? want : NULL);
    }
    assert_true(nb > 50);
    for (size_t k = 0; k < nb; k++) {
        b[k].parent = -1;
        for (size_t j = 0; j < nb; j++) {
            if (j == k)
                continue;
            bool overlap = b[j].o < b[k].o + b[k].n && b[k].o < b[j].o + b[j].n;
            if (b[j].d == b[k].d && overlap)
                fail_msg("boxes %zu and %zu overlap on row %u", j, k, b[k].d);
            if (b[j].d + 1 == b[k].d && b[j].o <= b[k].o && b[k].o + b[k].n <= b[j].o + b[j].n)
                b[k].parent = (int)j;
        }
        if (b[k].d > 0 && b[k].parent < 0)
            fail_msg("box %s on row %u has no parent", b[k].name, b[k].d);
    }
    for (size_t k = 0; k < nb; k++) {
        /* Its path, root first, and the samples of the stacks it starts. */
        const char *path[MAXD + 1];
        size_t len = 0;
        for (int j = (int)k; j >= 0 && b[j].d > 0; j = b[j].parent)
            path[len++] = b[j].name;
        uint64_t want = b[k].d == 0 ? total : 0;
        for (int i = 0; b[k].d > 0 && i < NSTACKS; i++) {
            if (depth[i] < len)
                continue;
            bool match = true;
            for (size_t d = 0; d < len && match; d++) {
                snprintf(name, sizeof(name), "%s (r.py:1)",
                         pf_intern_text(t, pf_intern_frame_get(t, stacks[i][d])->name));
                match = strcmp(name, path[len - 1 - d]) == 0;
            }
            if (match)
                want += counts[i];
        }
        if (b[k].n != want)
            fail_msg("box %s on row %u: %llu samples, the stacks say %llu", b[k].name, b[k].d,
                     b[k].n, (unsigned long long)want);
        /* Siblings left of it have smaller names; together, children
         * have no more samples than their parent. */
        uint64_t below = 0;
        for (size_t j = 0; j < nb; j++) {
            if (j != k && b[k].d > 0 && b[j].parent == b[k].parent && b[j].o < b[k].o &&
                strcmp(b[j].name, b[k].name) >= 0)
                fail_msg("%s is left of %s", b[j].name, b[k].name);
            if (b[j].parent == (int)k)
                below += b[j].n;
        }
        assert_true(below <= b[k].n);
    }
    free(svg);
    pf_agg_free(a);
    pf_intern_free(t);
}

static void svg_registered(void **state)
{
    (void)state;
    assert_ptr_equal(pf_writer_find("svg"), &pf_writer_svg);
    assert_ptr_equal(pf_writer_for_path("/tmp/profile.svg"), &pf_writer_svg);
    assert_non_null(strstr(pf_writer_names(), "svg"));
    assert_false(pf_writer_svg.needs_timeline);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(svg_special_names),  cmocka_unit_test(svg_geometry),
        cmocka_unit_test(svg_hidden_and_cut), cmocka_unit_test(svg_idle_merge_and_empty),
        cmocka_unit_test(svg_colours),        cmocka_unit_test(svg_many_frames),
        cmocka_unit_test(svg_random_tree),    cmocka_unit_test(svg_registered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

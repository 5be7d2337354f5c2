/* src/base/escape.c: the one JSON and the one XML escaper every writer uses.
 * Each case is the exact output for names a target can hold: markup,
 * quotes, control characters, non-ASCII, and bytes that are not UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/base/escape.h"

#define FFFD "\xef\xbf\xbd"

static char *run(void (*escape)(FILE *, const char *), const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    escape(f, s);
    fclose(f);
    return buf;
}

static void check(void (*escape)(FILE *, const char *), const char *in, const char *want)
{
    char *got = run(escape, in);
    if (strcmp(got, want) != 0)
        fail_msg("escaped %s:\n got  [%s]\n want [%s]",
                 escape == pf_escape_xml ? "as XML" : "as JSON", got, want);
    free(got);
}

static void utf8_len(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int len;
    } CASES[] = {
        {"a", 1},
        {"\x7f", 1},
        {"\xc3\xa9", 2},         /* é */
        {"\xe2\x82\xac", 3},     /* € */
        {"\xf0\x9f\x94\xa5", 4}, /* U+1F525 */
        {"\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF, the last */
        {"\xf4\x90\x80\x80", 0}, /* past U+10FFFF */
        {"\xc0\x80", 0},         /* overlong NUL */
        {"\xc1\xbf", 0},         /* overlong */
        {"\xe0\x80\xaf", 0},     /* overlong '/' */
        {"\xf0\x80\x80\xaf", 0}, /* overlong '/' */
        {"\xed\xa0\x80", 0},     /* a UTF-16 surrogate */
        {"\x80", 0},             /* a lone continuation byte */
        {"\xff", 0},
        {"\xe2\x82", 0}, /* cut short by the end of the string */
        {"\xc3(", 0},    /* cut short by an ASCII byte */
    };
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++)
        if (pf_utf8_len((const unsigned char *)CASES[i].s) != CASES[i].len)
            fail_msg("case %zu: %d, want %d", i, pf_utf8_len((const unsigned char *)CASES[i].s),
                     CASES[i].len);
}

static void xml(void **state)
{
    (void)state;
    check(pf_escape_xml, "", "");
    check(pf_escape_xml, "plain_name", "plain_name");
    check(pf_escape_xml, "<module>", "&lt;module&gt;");
    check(pf_escape_xml, "a&b \"c\" 'd'", "a&amp;b &quot;c&quot; &apos;d&apos;");
    /* Already an entity: escaped again, it is a name, not markup. */
    check(pf_escape_xml, "&amp;", "&amp;amp;");
    check(pf_escape_xml, "]]>", "]]&gt;");
    check(pf_escape_xml, "semi;colon", "semi;colon");
    /* Tab, newline and CR are allowed in XML 1.0; other C0 controls and
     * DEL are not, and become U+FFFD. */
    check(pf_escape_xml, "a\tb\nc\rd", "a\tb\nc\rd");
    check(pf_escape_xml, "\x01x\x1f\x7f", FFFD "x" FFFD FFFD);
    /* UTF-8 passes through; a byte that is not UTF-8 is one U+FFFD each. */
    check(pf_escape_xml, "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5",
          "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5");
    check(pf_escape_xml, "\xff\xfe", FFFD FFFD);
    check(pf_escape_xml, "a\xc3", "a" FFFD);
    check(pf_escape_xml, "\xc3<", FFFD "&lt;");
    check(pf_escape_xml, "\xed\xa0\x80", FFFD FFFD FFFD);
    check(pf_escape_xml, "\xc0\x80", FFFD FFFD);
}

static void json(void **state)
{
    (void)state;
    check(pf_escape_json, "", "\"\"");
    check(pf_escape_json, "main", "\"main\"");
    check(pf_escape_json, "say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\"");
    check(pf_escape_json, "a\nb\tc", "\"a\\nb\\tc\"");
    check(pf_escape_json, "\r\x01\x1f\x7f", "\"\\u000d\\u0001\\u001f\\u007f\"");
    /* Markup and '/' need nothing in JSON (the svg writer escapes the
     * whole JSON text again as XML). */
    check(pf_escape_json, "</script><&>", "\"</script><&>\"");
    check(pf_escape_json, "r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x94\xa5",
          "\"r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x94\xa5\"");
    check(pf_escape_json, "bad\xff\xc3", "\"bad" FFFD FFFD "\"");
    check(pf_escape_json, "\xe2\x82\"", "\"" FFFD FFFD "\\\"\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_len),
        cmocka_unit_test(xml),
        cmocka_unit_test(json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

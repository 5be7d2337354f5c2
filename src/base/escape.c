/* escape: one tested helper per output format (escape.h). */
#include "pyflame/base/escape.h"

#include <stdbool.h>

int pf_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n;
    unsigned min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3f >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */

/* The walk every format shares: invalid UTF-8 becomes U+FFFD, valid
 * multi-byte characters pass as they are, and each ASCII byte goes to the
 * format's own rule. */
static void escape(FILE *out, const char *s, void (*ascii)(FILE *out, unsigned c), bool xml)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = pf_utf8_len(p);
        /* XML 1.0 allows neither U+FFFE nor U+FFFF (EF BF BE, EF BF BF). */
        if (xml && n == 3 && p[0] == 0xef && p[1] == 0xbf && p[2] >= 0xbe) {
            fputs(REPLACEMENT, out);
            p += 3;
        } else if (n == 0) {
            fputs(REPLACEMENT, out);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, (size_t)n, out);
            p += n;
        } else {
            ascii(out, *p++);
        }
    }
}

static void json_ascii(FILE *out, unsigned c)
{
    if (c == '"' || c == '\\')
        fprintf(out, "\\%c", c);
    else if (c == '\n')
        fputs("\\n", out);
    else if (c == '\t')
        fputs("\\t", out);
    else if (c < 0x20 || c == 0x7f)
        fprintf(out, "\\u%04x", c);
    else
        putc((int)c, out);
}

void pf_escape_json(FILE *out, const char *s)
{
    putc('"', out);
    escape(out, s, json_ascii, false);
    putc('"', out);
}

static void xml_ascii(FILE *out, unsigned c)
{
    switch (c) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\'': fputs("&apos;", out); break;
    default:
        /* XML 1.0 allows no other control character, escaped or not. */
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            fputs(REPLACEMENT, out);
        else
            putc((int)c, out);
    }
}

void pf_escape_xml(FILE *out, const char *s)
{
    escape(out, s, xml_ascii, true);
}

static void text_ascii(FILE *out, unsigned c)
{
    putc(c < 0x20 || c == 0x7f ? ' ' : (int)c, out);
}

void pf_escape_text(FILE *out, const char *s)
{
    escape(out, s, text_ascii, false);
}

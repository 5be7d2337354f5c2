/* escape: text from the target (function and file names, thread names) made
 * safe for one output format each. Names are bytes: CPython gives UTF-8,
 * file systems give anything; invalid UTF-8 becomes U+FFFD so every file we
 * write is valid UTF-8. */
#ifndef PYFLAME_ESCAPE_H
#define PYFLAME_ESCAPE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/escape.h");

#include <stdio.h>

/* s as a JSON string, quotes included (RFC 8259: '"', '\\' and control
 * characters escaped). */
void pf_escape_json(FILE *out, const char *s);

/* s as XML character data or an attribute value: & < > " ' as entities;
 * control characters XML 1.0 does not allow become U+FFFD. */
void pf_escape_xml(FILE *out, const char *s);

/* s as one field of plain text (the table): control characters, newlines
 * included, become spaces, so a name cannot break a row or drive a
 * terminal. */
void pf_escape_text(FILE *out, const char *s);

/* The length of the valid UTF-8 sequence at s (1-4), or 0 if s does not
 * start one. */
int pf_utf8_len(const unsigned char *s);

#endif

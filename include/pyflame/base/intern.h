/* intern: text <-> small integer ids, and frames as ids. A frame is a
 * (kind, file, name, line) tuple turned into one uint32_t, so stacks are
 * arrays of ids that hash and compare cheaply; text is produced only when a
 * writer asks for it. Interned data lives as long as the table. */
#ifndef PYFLAME_INTERN_H
#define PYFLAME_INTERN_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/intern.h");

#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"

/* Line value of a frame printed without a line (-n). */
#define PF_LINE_OMITTED (-2)

enum pf_frame_kind_id {
    PF_FRAME_PYTHON = 0, /* file:name:line */
    PF_FRAME_PSEUDO = 1, /* a label such as "(truncated)"; only `name` is used */
    PF_FRAME_NATIVE = 2, /* a native frame, "function (lib)"; only `name` is used */
};

struct pf_frame_text {
    uint8_t kind; /* enum pf_frame_kind_id */
    uint32_t file, name; /* string ids */
    int32_t line; /* PF_LINE_NONE, PF_LINE_OMITTED or >= 0 */
};

struct pf_intern;

pf_err pf_intern_new(struct pf_intern **out);
void pf_intern_free(struct pf_intern *t);

/* Id of a string (len bytes, need not be NUL-terminated). Equal strings get
 * equal ids. Ids, of strings and of frames alike, are dense: 0, 1, 2... in
 * the order first interned, so writers index arrays by them. */
pf_err pf_intern_str(struct pf_intern *t, const char *s, size_t len, uint32_t *id);

/* The text of a string id, NUL-terminated. Borrowed; valid until pf_intern_free. */
const char *pf_intern_text(const struct pf_intern *t, uint32_t id);

/* Id of a frame. Equal tuples get equal ids. */
pf_err pf_intern_frame(struct pf_intern *t, const struct pf_frame_text *f, uint32_t *id);

/* The tuple of a frame id. Borrowed. */
const struct pf_frame_text *pf_intern_frame_get(const struct pf_intern *t, uint32_t id);

size_t pf_intern_frame_count(const struct pf_intern *t);
size_t pf_intern_str_count(const struct pf_intern *t);

#endif

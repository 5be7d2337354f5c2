#include "pyflame/cpython/linetable.h"

#include <limits.h>
#include <stdbool.h>

/* Every decoder walks the table once from the start, checks each index
 * against len before reading, and keeps the running line in an int64_t that
 * must stay inside int: a garbage table can pile up deltas, and the caller
 * gets PF_ERR_CORRUPT rather than a wrapped number. */

static bool add_line(int64_t *line, int64_t delta)
{
    *line += delta; /* |*line| <= INT_MAX and |delta| <= 2^32: no overflow */
    return *line >= INT_MIN && *line <= INT_MAX;
}

/* Give a line the table computed. One that equals PF_LINE_NONE would read
 * as "no line": only garbage deltas get there (CPython numbers no line
 * -1), so it is corrupt rather than a silent change of meaning. Found by
 * tests/fuzz/fuzz_frame. */
static pf_err give_line(int64_t line, int *out)
{
    if (line == PF_LINE_NONE)
        return PF_ERR_CORRUPT;
    *out = (int)line;
    return PF_OK;
}

/* co_lnotab, 2.7-3.9 (Objects/lnotab_notes.txt): pairs of (address
 * increment, line increment); the line increment is unsigned in 2.7 and a
 * signed char from 3.6. `line` holds from the pair's address up to the next
 * pair's, and past the last pair to the end of the code (the table records
 * changes only), exactly as PyCode_Addr2Line's loop. */
static pf_err lnotab(const uint8_t *t, size_t len, bool signed_delta, int firstlineno,
                     int64_t offset, int *out)
{
    int64_t line = firstlineno;
    uint64_t addr = 0;

    for (size_t i = 0; i < len; i += 2) {
        addr += t[i];
        if (addr > (uint64_t)offset)
            break;
        /* A lone last byte is an address increment without its line
         * increment: the table was cut, and the answer depends on what's
         * missing. */
        if (len - i < 2)
            return PF_ERR_CORRUPT;
        int64_t delta = signed_delta ? (int8_t)t[i + 1] : t[i + 1];
        if (!add_line(&line, delta))
            return PF_ERR_CORRUPT;
    }
    return give_line(line, out);
}

/* co_linetable, 3.10 (PEP 626; 3.10 Objects/lnotab_notes.txt): pairs of
 * (bytes covered, signed line delta); a delta of -128 marks the range as
 * having no line and leaves the running line alone. Zero-length ranges only
 * move the line. */
static pf_err linetable_310(const uint8_t *t, size_t len, int firstlineno, int64_t offset, int *out)
{
    int64_t line = firstlineno;
    uint64_t end = 0;

    for (size_t i = 0; i < len; i += 2) {
        if (len - i < 2)
            return PF_ERR_CORRUPT;
        uint64_t start = end;
        int8_t delta = (int8_t)t[i + 1];
        end += t[i];
        if (delta != -128 && !add_line(&line, delta))
            return PF_ERR_CORRUPT;
        if (start <= (uint64_t)offset && (uint64_t)offset < end) {
            if (delta != -128)
                return give_line(line, out);
            *out = PF_LINE_NONE;
            return PF_OK;
        }
    }
    return PF_ERR_NOTFOUND;
}

/* An unsigned varint of the location table (3.11 Objects/locations.md):
 * 6-bit groups, least significant first, bit 6 set when another follows.
 * CPython writes unsigned ints, so more than 6 groups (36 bits) or a value
 * over 32 bits is corrupt. Continuation bytes never have bit 7 set: that bit
 * starts an entry, so seeing it here means the entry was cut short. */
static pf_err read_varint(const uint8_t *t, size_t len, size_t *i, uint64_t *out)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 36; shift += 6) {
        if (*i >= len || (t[*i] & 0x80))
            return PF_ERR_CORRUPT;
        uint8_t b = t[(*i)++];
        v |= (uint64_t)(b & 0x3f) << shift;
        if (!(b & 0x40)) {
            if (v > UINT32_MAX)
                return PF_ERR_CORRUPT;
            *out = v;
            return PF_OK;
        }
    }
    return PF_ERR_CORRUPT;
}

static pf_err read_svarint(const uint8_t *t, size_t len, size_t *i, int64_t *out)
{
    uint64_t u;
    pf_err err = read_varint(t, len, i, &u);
    if (err)
        return err;
    *out = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
    return PF_OK;
}

/* Skip n bytes that must be column data (bit 7 clear). */
static pf_err skip_plain(const uint8_t *t, size_t len, size_t *i, unsigned n)
{
    for (unsigned k = 0; k < n; k++, (*i)++) {
        if (*i >= len || (t[*i] & 0x80))
            return PF_ERR_CORRUPT;
    }
    return PF_OK;
}

/* The location table, 3.11+ (Objects/locations.md). Each entry starts with a
 * byte with bit 7 set: bits 3-6 are the entry kind, bits 0-2 the number of
 * code units covered minus one (CACHE units included). Kinds: 0-9 short
 * form (one column byte, same line), 10-12 one-line form (line += kind-10,
 * two column bytes), 13 no columns (svarint line delta), 14 long form
 * (svarint line delta, then end-line delta, start and end column varints),
 * 15 no location (line unchanged). */
static pf_err locations_311(const uint8_t *t, size_t len, int firstlineno, int64_t offset, int *out)
{
    /* The table counts 2-byte code units; an odd offset falls inside the
     * unit that starts one byte earlier. */
    uint64_t unit = (uint64_t)offset / 2;
    int64_t line = firstlineno;
    uint64_t end = 0;
    size_t i = 0;

    while (i < len) {
        pf_err err = PF_OK;
        uint8_t first = t[i++];
        if (!(first & 0x80))
            return PF_ERR_CORRUPT; /* not at an entry boundary */
        unsigned code = (first >> 3) & 0x0f;
        uint64_t start = end;
        bool none = false;
        end += (first & 0x07) + 1u;

        if (code <= 9) {
            err = skip_plain(t, len, &i, 1);
        } else if (code <= 12) {
            err = add_line(&line, code - 10) ? skip_plain(t, len, &i, 2) : PF_ERR_CORRUPT;
        } else if (code <= 14) {
            int64_t delta;
            uint64_t skip;
            err = read_svarint(t, len, &i, &delta);
            if (!err && !add_line(&line, delta))
                err = PF_ERR_CORRUPT;
            for (int k = 0; !err && code == 14 && k < 3; k++)
                err = read_varint(t, len, &i, &skip);
        } else {
            none = true;
        }
        if (err)
            return err;
        if (start <= unit && unit < end) {
            if (!none)
                return give_line(line, out);
            *out = PF_LINE_NONE;
            return PF_OK;
        }
    }
    return PF_ERR_NOTFOUND;
}

pf_err pf_linetable_line(enum pf_linetable_kind kind, const uint8_t *table, size_t len,
                         int firstlineno, int64_t offset, int *line)
{
    if (!line || (!table && len > 0))
        return PF_ERR_INTERNAL;
    if (kind < PF_LT_LNOTAB_27 || kind > PF_LT_LOCATIONS_311)
        return PF_ERR_UNSUPPORTED;
    /* Before the first instruction (a fresh 3.11/3.12 frame, f_lasti -1):
     * PyCode_Addr2Line answers co_firstlineno. */
    if (offset < 0)
        return give_line(firstlineno, line);
    switch (kind) {
    case PF_LT_LNOTAB_27:
        return lnotab(table, len, false, firstlineno, offset, line);
    case PF_LT_LNOTAB_36:
        return lnotab(table, len, true, firstlineno, offset, line);
    case PF_LT_LINETABLE_310:
        return linetable_310(table, len, firstlineno, offset, line);
    case PF_LT_LOCATIONS_311:
        return locations_311(table, len, firstlineno, offset, line);
    }
    return PF_ERR_UNSUPPORTED;
}

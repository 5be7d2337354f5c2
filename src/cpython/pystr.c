#include "pyflame/cpython/pystr.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"

/* The first read of an object copies this many bytes (or the header, if
 * longer), so the characters of a short string come with its header: names
 * and filenames nearly always fit, and one read per string is the rule. A
 * short object near the end of a mapping makes that read fault, and then we
 * read the smallest header every such object has, then what it points to. */
#define HEAD_READ 256

/* Bytes of character data we may need: PF_MAX_STRING code points of up to
 * 4 bytes (UCS-4). */
#define MAX_RAW (4u * PF_MAX_STRING)

/* PEP 393 `state` bitfield (cpython/unicodeobject.h; GCC x86-64 and aarch64
 * allocate bitfields from the least significant bit). Only the low byte is
 * meaningful and these look at nothing else: the padding above it holds
 * garbage on every version sampled (docs/cpython-internals.md §9.2). Bit 7
 * is `ready` up to 3.11 and `statically_allocated` from 3.12, so it is
 * ignored too. */
#define STATE_KIND(s) (((s) >> 2) & 7u)
#define STATE_COMPACT(s) (((s) >> 5) & 1u)
#define STATE_ASCII(s) (((s) >> 6) & 1u)

/* Copy the object's first bytes into buf: max(hdr, HEAD_READ) bytes, or just
 * hdr when the longer read fails. *have says how many are valid. hdr must
 * not exceed the smallest object of the type, or the fallback faults too. */
static pf_err read_head(struct pf_mem *m, uint64_t addr, uint8_t *buf, size_t hdr, size_t *have)
{
    size_t want = hdr > HEAD_READ ? hdr : HEAD_READ;
    pf_err err = pf_mem_read(m, addr, buf, want);

    if (err == PF_OK) {
        *have = want;
        return PF_OK;
    }
    if (want == hdr || (err != PF_ERR_FAULT && err != PF_ERR_CORRUPT))
        return err;
    err = pf_mem_read(m, addr, buf, hdr);
    if (err)
        return err;
    *have = hdr;
    return PF_OK;
}

/* Make sure buf holds the n bytes at addr+off (inline object data, or a
 * field past the minimal header), with a second read unless the first one
 * brought them. buf must hold off + n. */
static pf_err fetch_inline(struct pf_mem *m, uint64_t addr, uint8_t *buf, size_t have, size_t off,
                           size_t n)
{
    if (off + n <= have)
        return PF_OK;
    if (off > UINT64_MAX - addr)
        return PF_ERR_CORRUPT;
    return pf_mem_read(m, addr + off, buf + off, n);
}

/* Check the layout values that size our reads; they may come from the
 * target (_Py_DebugOffsets). */
static bool size_ok(uint32_t size)
{
    return size <= PF_MAX_STRUCT;
}

static size_t limit_of(size_t cap)
{
    return cap - 1 < PF_MAX_STRING ? cap - 1 : PF_MAX_STRING;
}

/* 2.7 PyStringObject: ob_size bytes at ob_sval, copied as they are. They
 * are in whatever encoding the source or file system used; we don't guess. */
static pf_err read_str27(struct pf_mem *m, const struct pf_layout *L, uint64_t addr, char *out,
                         size_t cap, size_t *len_out)
{
    uint8_t buf[PF_MAX_STRUCT + PF_MAX_STRING];
    size_t hdr = L->bytes.size, off = L->bytes.ob_sval.off, have;
    int64_t n;
    pf_err err;

    /* bytes.size ends at ob_sval, and every object has at least its NUL. */
    if (!size_ok(L->bytes.size) || L->bytes.ob_sval.width == 0 || off > PF_MAX_STRUCT)
        return PF_ERR_CORRUPT;
    if ((err = read_head(m, addr, buf, hdr, &have)))
        return err;
    if ((err = pf_field_int(buf, hdr, L->bytes.ob_size, &n)))
        return err;
    if (n < 0 || (uint64_t)n > limit_of(cap))
        return PF_ERR_CORRUPT;
    if ((err = fetch_inline(m, addr, buf, have, off, (size_t)n)))
        return err;
    memcpy(out, buf + off, (size_t)n);
    out[n] = '\0';
    *len_out = (size_t)n;
    return PF_OK;
}

/* PEP 393 str: compact ASCII (chars right after PyASCIIObject), compact
 * latin-1/UCS-2/UCS-4 (after PyCompactUnicodeObject), or a legacy string
 * whose chars are behind the `data` pointer.
 *
 * The header we can always read is sizeof(PyASCIIObject), which holds
 * `length` and `state`: a compact ASCII string is no bigger than that plus
 * its characters ("app.py" is 55 bytes on 3.11), so copying the layout's
 * whole `unicode.size` (which reaches the legacy `data` field, 80 bytes)
 * would read past a short string and fault at the end of a mapping. */
static pf_err read_pep393(struct pf_mem *m, const struct pf_layout *L, uint64_t addr, char *out,
                          size_t cap, size_t *len_out)
{
    uint8_t buf[PF_MAX_STRUCT + MAX_RAW];
    size_t hdr = L->unicode.ascii_size, have;
    int64_t length;
    uint64_t state;
    const uint8_t *data;
    pf_err err;

    if (!size_ok(L->unicode.ascii_size) || !size_ok(L->unicode.compact_size))
        return PF_ERR_CORRUPT;
    if ((err = read_head(m, addr, buf, hdr, &have)))
        return err;
    if ((err = pf_field_int(buf, hdr, L->unicode.length, &length)) ||
        (err = pf_field_uint(buf, hdr, L->unicode.state, &state)))
        return err;

    unsigned kind = STATE_KIND(state);
    bool ascii = STATE_ASCII(state);
    /* Not ready (kind 0, 3.6-3.11 legacy strings before PyUnicode_READY) or
     * garbage. */
    if ((kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1))
        return PF_ERR_CORRUPT;
    /* Every code point takes at least one byte of UTF-8. */
    if (length < 0 || (uint64_t)length > limit_of(cap))
        return PF_ERR_CORRUPT;
    size_t n = (size_t)length * kind;

    if (STATE_COMPACT(state)) {
        size_t off = ascii ? L->unicode.ascii_size : L->unicode.compact_size;
        if (off == 0)
            return PF_ERR_CORRUPT;
        if ((err = fetch_inline(m, addr, buf, have, off, n)))
            return err;
        data = buf + off;
    } else {
        struct pf_field d = L->unicode.data;
        uint64_t data_addr;
        if (d.width != 8 || d.off > PF_MAX_STRUCT - 8)
            return PF_ERR_CORRUPT;
        if ((err = fetch_inline(m, addr, buf, have, d.off, 8)) ||
            (err = pf_field_ptr(buf, d.off + 8, d, &data_addr)))
            return err;
        /* Past anything the header reads used. An empty string needs no
         * buffer: don't fault on a NULL one. */
        data = buf + PF_MAX_STRUCT;
        if (n > 0 && (err = pf_mem_read(m, data_addr, buf + PF_MAX_STRUCT, n)))
            return err;
    }

    if (ascii) {
        for (size_t i = 0; i < n; i++) {
            if (data[i] >= 0x80)
                return PF_ERR_CORRUPT;
        }
        memcpy(out, data, n);
        out[n] = '\0';
        *len_out = n;
        return PF_OK;
    }
    return pf_pystr_encode_utf8(data, (size_t)length, kind, out, cap, len_out);
}

pf_err pf_pystr_read(struct pf_mem *m, const struct pf_layout *L, uint64_t addr, char *out,
                     size_t cap, size_t *len_out)
{
    if (!m || !L || !out || cap == 0 || !len_out)
        return PF_ERR_INTERNAL;
    switch (L->str) {
    case PF_STR_BYTES:
        return read_str27(m, L, addr, out, cap, len_out);
    case PF_STR_PEP393:
        return read_pep393(m, L, addr, out, cap, len_out);
    default:
        return PF_ERR_UNSUPPORTED;
    }
}

pf_err pf_pybytes_read(struct pf_mem *m, const struct pf_layout *L, uint64_t addr, size_t max,
                       uint8_t **out, size_t *len_out)
{
    uint8_t buf[PF_MAX_STRUCT > HEAD_READ ? PF_MAX_STRUCT : HEAD_READ];
    size_t hdr, off, have;
    int64_t n;
    pf_err err;

    if (!m || !L || !out || !len_out)
        return PF_ERR_INTERNAL;
    hdr = L->bytes.size;
    off = L->bytes.ob_sval.off;
    if (!size_ok(L->bytes.size) || L->bytes.ob_sval.width == 0 || off > PF_MAX_STRUCT)
        return PF_ERR_CORRUPT;
    if ((err = read_head(m, addr, buf, hdr, &have)))
        return err;
    if ((err = pf_field_int(buf, hdr, L->bytes.ob_size, &n)))
        return err;
    if (n < 0 || (uint64_t)n > max || (uint64_t)n > PF_MAX_READ)
        return PF_ERR_CORRUPT;
    if (off > UINT64_MAX - addr)
        return PF_ERR_CORRUPT;

    size_t len = (size_t)n;
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        return PF_ERR_NOMEM;
    if (off + len <= have) {
        memcpy(p, buf + off, len); /* the first read brought it all */
    } else if ((err = pf_mem_read(m, addr + off, p, len))) {
        free(p);
        return err;
    }
    *out = p;
    *len_out = len;
    return PF_OK;
}

pf_err pf_pystr_encode_utf8(const uint8_t *data, size_t count, unsigned kind, char *out, size_t cap,
                            size_t *len_out)
{
    if (!out || cap == 0 || !len_out || (!data && count > 0))
        return PF_ERR_INTERNAL;
    if (kind != 1 && kind != 2 && kind != 4)
        return PF_ERR_CORRUPT;

    size_t limit = limit_of(cap), n = 0;
    uint8_t *o = (uint8_t *)out;

    for (size_t i = 0; i < count; i++) {
        uint32_t c;
        /* Characters are stored in the target's byte order, which is ours. */
        if (kind == 1) {
            c = data[i];
        } else if (kind == 2) {
            uint16_t v;
            memcpy(&v, data + 2 * i, 2);
            c = v;
        } else {
            memcpy(&c, data + 4 * i, 4);
        }
        if (c > 0x10ffff)
            return PF_ERR_CORRUPT;
        /* A lone surrogate is a valid Python str ('\ud800') but has no UTF-8
         * form; print the replacement character rather than lose the name. */
        if (c >= 0xd800 && c <= 0xdfff)
            c = 0xfffd;

        size_t units = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        if (units > limit - n)
            return PF_ERR_CORRUPT;
        switch (units) {
        case 1:
            o[n++] = (uint8_t)c;
            break;
        case 2:
            o[n++] = (uint8_t)(0xc0 | (c >> 6));
            o[n++] = (uint8_t)(0x80 | (c & 0x3f));
            break;
        case 3:
            o[n++] = (uint8_t)(0xe0 | (c >> 12));
            o[n++] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
            o[n++] = (uint8_t)(0x80 | (c & 0x3f));
            break;
        default:
            o[n++] = (uint8_t)(0xf0 | (c >> 18));
            o[n++] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
            o[n++] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
            o[n++] = (uint8_t)(0x80 | (c & 0x3f));
            break;
        }
    }
    o[n] = '\0';
    *len_out = n;
    return PF_OK;
}

#include "pyflame/output/protobuf.h"

#include <stdlib.h>
#include <string.h>

void pf_pb_init(struct pf_pb *b)
{
    *b = (struct pf_pb){0};
}

void pf_pb_free(struct pf_pb *b)
{
    free(b->data);
    *b = (struct pf_pb){0};
}

pf_err pf_pb_error(const struct pf_pb *b)
{
    return b->nomem ? PF_ERR_NOMEM : PF_OK;
}

/* Room for n more bytes; false (and the buffer marked failed) if none. */
static bool reserve(struct pf_pb *b, size_t n)
{
    if (b->nomem)
        return false;
    if (n <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->nomem = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->nomem = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void pf_pb_raw(struct pf_pb *b, const void *data, size_t len)
{
    if (len == 0 || !reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p = (uint8_t)v;
}

void pf_pb_varint(struct pf_pb *b, uint64_t v)
{
    size_t n = varint_size(v);
    if (!reserve(b, n))
        return;
    put_varint(b->data + b->len, v);
    b->len += n;
}

void pf_pb_tag(struct pf_pb *b, uint32_t field, enum pf_pb_wire wire)
{
    pf_pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

void pf_pb_uint64(struct pf_pb *b, uint32_t field, uint64_t v)
{
    pf_pb_tag(b, field, PF_PB_VARINT);
    pf_pb_varint(b, v);
}

void pf_pb_uint64_nz(struct pf_pb *b, uint32_t field, uint64_t v)
{
    if (v)
        pf_pb_uint64(b, field, v);
}

void pf_pb_int64_nz(struct pf_pb *b, uint32_t field, int64_t v)
{
    if (v)
        pf_pb_uint64(b, field, (uint64_t)v);
}

void pf_pb_bytes(struct pf_pb *b, uint32_t field, const void *data, size_t len)
{
    pf_pb_tag(b, field, PF_PB_LEN);
    pf_pb_varint(b, len);
    pf_pb_raw(b, data, len);
}

void pf_pb_string(struct pf_pb *b, uint32_t field, const char *s)
{
    pf_pb_bytes(b, field, s, strlen(s));
}

void pf_pb_packed(struct pf_pb *b, uint32_t field, const uint64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += varint_size(v[i]);
    pf_pb_tag(b, field, PF_PB_LEN);
    pf_pb_varint(b, len);
    if (!reserve(b, len))
        return;
    for (size_t i = 0; i < n; i++) {
        put_varint(b->data + b->len, v[i]);
        b->len += varint_size(v[i]);
    }
}

/* The length goes before the body but is known only after it: reserve one
 * byte (enough for a body under 128 bytes, most of a profile's messages)
 * and move the body up when the length needs more. */
size_t pf_pb_begin(struct pf_pb *b, uint32_t field)
{
    pf_pb_tag(b, field, PF_PB_LEN);
    size_t mark = b->len;
    pf_pb_raw(b, "", 1);
    return mark;
}

void pf_pb_end(struct pf_pb *b, size_t mark)
{
    if (b->nomem)
        return;
    size_t body = b->len - mark - 1;
    size_t n = varint_size(body);
    if (n > 1) {
        if (!reserve(b, n - 1))
            return;
        memmove(b->data + mark + n, b->data + mark + 1, body);
        b->len += n - 1;
    }
    put_varint(b->data + mark, body);
}

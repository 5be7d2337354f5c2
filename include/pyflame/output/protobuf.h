/* protobuf: the few pieces of the protocol buffers wire format a writer
 * needs to emit a message (varints, length-delimited fields, packed
 * repeated integers, nested messages), into a growable byte buffer. It
 * only encodes; there is no schema and no decoder. The pprof writer
 * (src/output/writer_pprof.c) uses it: a generated encoder (protoc-c) would bring
 * a code generator and a library into the build for one message type.
 *
 * Errors are sticky: after an allocation fails every call does nothing and
 * pf_pb_error() says so, so a writer checks once at the end. */
#ifndef PYFLAME_PROTOBUF_H
#define PYFLAME_PROTOBUF_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(OUTPUT, "pyflame/output/protobuf.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"

/* Wire types (the low 3 bits of a tag). */
enum pf_pb_wire {
    PF_PB_VARINT = 0,
    PF_PB_I64 = 1,
    PF_PB_LEN = 2,
    PF_PB_I32 = 5,
};

struct pf_pb {
    uint8_t *data;
    size_t len, cap;
    bool nomem;
};

/* The longest varint: 64 bits, 7 a byte. */
#define PF_PB_VARINT_MAX 10

void pf_pb_init(struct pf_pb *b);
void pf_pb_free(struct pf_pb *b);
/* PF_OK, or PF_ERR_NOMEM if any call since pf_pb_init failed. */
pf_err pf_pb_error(const struct pf_pb *b);

/* Bare pieces. */
void pf_pb_raw(struct pf_pb *b, const void *data, size_t len);
void pf_pb_varint(struct pf_pb *b, uint64_t v);
void pf_pb_tag(struct pf_pb *b, uint32_t field, enum pf_pb_wire wire);

/* Fields. A proto3 reader takes a missing scalar as 0, so the _nz forms
 * leave a 0 out. int64 is sent as its two's complement (a negative value
 * takes 10 bytes), as int64 fields are on the wire. */
void pf_pb_uint64(struct pf_pb *b, uint32_t field, uint64_t v);
void pf_pb_uint64_nz(struct pf_pb *b, uint32_t field, uint64_t v);
void pf_pb_int64_nz(struct pf_pb *b, uint32_t field, int64_t v);
void pf_pb_bytes(struct pf_pb *b, uint32_t field, const void *data, size_t len);
void pf_pb_string(struct pf_pb *b, uint32_t field, const char *s);
/* A packed repeated varint field: one tag, the length, then the values.
 * Nothing at all when n is 0 (an empty packed field and a missing one read
 * the same). */
void pf_pb_packed(struct pf_pb *b, uint32_t field, const uint64_t *v, size_t n);

/* A nested message: pf_pb_begin writes its tag and returns a mark, the
 * caller writes the fields, pf_pb_end puts the length in front of them. */
size_t pf_pb_begin(struct pf_pb *b, uint32_t field);
void pf_pb_end(struct pf_pb *b, size_t mark);

#endif

#include "pyflame/cpython/code.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/limits.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/cpython/pystr.h"

/* Direct-mapped by address: a collision evicts. Bounded memory, no LRU
 * bookkeeping on the hot path; a program's hot code objects number in the
 * hundreds, far below the capacity. */
struct pf_code_cache {
    struct pf_code *slots;
    size_t cap; /* power of two */
};

pf_err pf_code_cache_new(size_t capacity, struct pf_code_cache **out)
{
    size_t cap = 64;
    while (cap < capacity)
        cap *= 2;
    struct pf_code_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return PF_ERR_NOMEM;
    c->slots = calloc(cap, sizeof(*c->slots));
    if (!c->slots) {
        free(c);
        return PF_ERR_NOMEM;
    }
    c->cap = cap;
    *out = c;
    return PF_OK;
}

void pf_code_cache_free(struct pf_code_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i].linetable);
    free(c->slots);
    free(c);
}

size_t pf_code_header_size(const struct pf_layout *L)
{
    size_t n = L->code.size;
    size_t t = L->object.ob_type.off + L->object.ob_type.width;
    return n > t ? n : t;
}

static size_t slot_of(const struct pf_code_cache *c, uint64_t addr)
{
    uint64_t h = (addr >> 4) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (c->cap - 1);
}

/* Read a name or filename and intern it. */
static pf_err intern_string(struct pf_mem *mem, const struct pf_layout *L,
                            const struct pf_pytypes *types, struct pf_intern *names, uint64_t addr,
                            uint32_t *id)
{
    char buf[PF_MAX_STRING + 1];
    size_t len;
    pf_err err;

    if (types->str) {
        uint64_t type;
        err = pf_mem_read(mem, addr + L->object.ob_type.off, &type, sizeof(type));
        if (err)
            return err;
        if (type != types->str)
            return PF_ERR_CORRUPT;
    }
    err = pf_pystr_read(mem, L, addr, buf, sizeof(buf), &len);
    if (err)
        return err;
    return pf_intern_str(names, buf, len, id);
}

static pf_err load(struct pf_code *slot, struct pf_mem *mem, const struct pf_layout *L,
                   const struct pf_pytypes *types, struct pf_intern *names, uint64_t addr,
                   const uint8_t *hdr, size_t len)
{
    uint64_t name_addr, file_addr, table_addr;
    int64_t firstlineno, firsttraceable = 0;
    uint32_t name, file;
    uint8_t *table = NULL;
    size_t table_len = 0;
    pf_err err;

    if ((err = pf_field_ptr(hdr, len, L->code.name, &name_addr)) ||
        (err = pf_field_ptr(hdr, len, L->code.filename, &file_addr)) ||
        (err = pf_field_ptr(hdr, len, L->code.linetable, &table_addr)) ||
        (err = pf_field_int(hdr, len, L->code.firstlineno, &firstlineno)))
        return err;
    if (L->code.firsttraceable.width &&
        (err = pf_field_int(hdr, len, L->code.firsttraceable, &firsttraceable)))
        return err;
    if (firstlineno < 0 || firstlineno > INT32_MAX || firsttraceable < 0 || firsttraceable > INT32_MAX)
        return PF_ERR_CORRUPT;
    if ((err = intern_string(mem, L, types, names, name_addr, &name)) ||
        (err = intern_string(mem, L, types, names, file_addr, &file)))
        return err;
    if (types->bytes) {
        /* The line table is a bytes object (str in 2.7): check before
         * trusting its length. */
        uint64_t type;
        if ((err = pf_mem_read(mem, table_addr + L->object.ob_type.off, &type, sizeof(type))))
            return err;
        if (type != types->bytes)
            return PF_ERR_CORRUPT;
    }
    err = pf_pybytes_read(mem, L, table_addr, PF_MAX_LINETABLE, &table, &table_len);
    if (err)
        return err;

    free(slot->linetable);
    *slot = (struct pf_code){
        .addr = addr,
        .file = file,
        .name = name,
        .firstlineno = (int32_t)firstlineno,
        .firsttraceable = (int32_t)firsttraceable,
        .linetable = table,
        .linetable_len = table_len,
        .key_name = name_addr,
        .key_file = file_addr,
        .key_table = table_addr,
        .memo_offset = INT64_MIN,
    };
    return PF_OK;
}

pf_err pf_code_get(struct pf_code_cache *c, struct pf_mem *mem, const struct pf_layout *L,
                   const struct pf_pytypes *types, struct pf_intern *names, uint64_t addr,
                   const uint8_t *hdr, size_t hdr_len, struct pf_code **out)
{
    uint8_t local[PF_MAX_STRUCT];
    struct pf_code *slot = &c->slots[slot_of(c, addr)];
    uint64_t type, name_addr, file_addr, table_addr;
    int64_t firstlineno;
    pf_err err;

    if (!hdr) {
        hdr_len = pf_code_header_size(L);
        if (hdr_len > sizeof(local))
            return PF_ERR_CORRUPT;
        if ((err = pf_mem_read(mem, addr, local, hdr_len)))
            return err;
        hdr = local;
    }
    if (types->code) {
        if ((err = pf_field_ptr(hdr, hdr_len, L->object.ob_type, &type)))
            return err;
        if (type != types->code)
            return PF_ERR_CORRUPT;
    }
    if ((err = pf_field_ptr(hdr, hdr_len, L->code.name, &name_addr)) ||
        (err = pf_field_ptr(hdr, hdr_len, L->code.filename, &file_addr)) ||
        (err = pf_field_ptr(hdr, hdr_len, L->code.linetable, &table_addr)) ||
        (err = pf_field_int(hdr, hdr_len, L->code.firstlineno, &firstlineno)))
        return err;
    if (slot->addr == addr && slot->key_name == name_addr && slot->key_file == file_addr &&
        slot->key_table == table_addr && slot->firstlineno == firstlineno) {
        *out = slot;
        return PF_OK;
    }
    if ((err = load(slot, mem, L, types, names, addr, hdr, hdr_len))) {
        slot->addr = 0; /* do not leave a half-valid entry */
        return err;
    }
    if (hdr != local) {
        /* The header was copied while the thread was stopped, the names
         * and line table were read after it ran on: if the code object was
         * freed meanwhile, its address may now hold something else. The
         * entry stands only if the object is still the one copied. */
        uint64_t again[4];
        if (hdr_len > sizeof(local))
            return PF_ERR_CORRUPT;
        if ((err = pf_mem_read(mem, addr, local, hdr_len)) ||
            (err = pf_field_ptr(local, hdr_len, L->code.name, &again[0])) ||
            (err = pf_field_ptr(local, hdr_len, L->code.filename, &again[1])) ||
            (err = pf_field_ptr(local, hdr_len, L->code.linetable, &again[2])) ||
            (err = pf_field_int(local, hdr_len, L->code.firstlineno, (int64_t *)&again[3])) ||
            again[0] != name_addr || again[1] != file_addr || again[2] != table_addr ||
            (int64_t)again[3] != firstlineno) {
            slot->addr = 0;
            return err ? err : PF_ERR_CORRUPT;
        }
    }
    *out = slot;
    return PF_OK;
}

pf_err pf_code_line(struct pf_code *code, const struct pf_layout *L, int64_t offset, int *line)
{
    int l;
    pf_err err;

    if (offset == code->memo_offset) {
        *line = code->memo_line;
        return PF_OK;
    }
    err = pf_linetable_line((enum pf_linetable_kind)L->linetable, code->linetable,
                            code->linetable_len, code->firstlineno, offset, &l);
    if (err)
        return err;
    /* CPython numbers no line below 0 (and co_firstlineno was checked on
     * load), so a negative line comes from a table of garbage deltas; a
     * frame's line must be >= 0 or PF_LINE_NONE (intern.h). Found by
     * tests/fuzz/fuzz_frame: a 3.6 lnotab walked down to line -71. */
    if (l < 0 && l != PF_LINE_NONE)
        return PF_ERR_CORRUPT;
    code->memo_offset = offset;
    code->memo_line = l;
    *line = l;
    return PF_OK;
}

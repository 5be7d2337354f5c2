#include "pyflame/cpython/debug_offsets.h"

#include <string.h>

#include "pyflame/base/limits.h"
#include "pyflame/cpython/pyver.h"

/* _Py_DebugOffsets is `char cookie[8]`, then uint64_t only: version,
 * free_threaded, then one group of entries per struct, each group (up to
 * the ones we read) starting with the struct's sizeof. It carries no size
 * or format number of its own, and its header promises stability only
 * across patch releases, so the layout is chosen by the version field
 * (docs/cpython-internals.md §10.1). A format below lists the groups in
 * declaration order, up to unicode_object, the last one pyflame reads. */
#define HEADER 24 /* cookie, version, free_threaded */

struct group {
    const char *name;
    const char *const *entries; /* NULL-terminated */
};

/* One group: its name, then its entries. */
/* clang-format off */
#define G(name, ...) {name, (const char *const[]){__VA_ARGS__, NULL}}
#define G_END {NULL, NULL}
/* clang-format on */

/* Groups that are the same in 3.13 and 3.14. */
#define RUNTIME_STATE G("runtime_state", "size", "finalizing", "interpreters_head")
#define THREAD_STATE                                                                               \
    G("thread_state", "size", "prev", "next", "interp", "current_frame", "thread_id",              \
      "native_thread_id", "datastack_chunk", "status")
#define PYOBJECT G("pyobject", "size", "ob_type")
#define TYPE_OBJECT G("type_object", "size", "tp_name", "tp_repr", "tp_flags")
#define TUPLE_OBJECT G("tuple_object", "size", "ob_item", "ob_size")
#define LIST_OBJECT G("list_object", "size", "ob_item", "ob_size")
#define DICT_OBJECT G("dict_object", "size", "ma_keys", "ma_values")
#define FLOAT_OBJECT G("float_object", "size", "ob_fval")
#define LONG_OBJECT G("long_object", "size", "lv_tag", "ob_digit")
#define BYTES_OBJECT G("bytes_object", "size", "ob_size", "ob_sval")
#define UNICODE_OBJECT G("unicode_object", "size", "state", "length", "asciiobject_size")

/* 3.13.0, Include/internal/pycore_runtime.h; checked against the bytes of
 * libpython3.13 by tests/unit/test_debug_offsets.c. */
static const struct group FORMAT_3_13[] = {
    RUNTIME_STATE,
    G("interpreter_state", "size", "id", "next", "threads_head", "gc", "imports_modules", "sysdict",
      "builtins", "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled",
      "gil_runtime_state_locked", "gil_runtime_state_holder"),
    THREAD_STATE,
    G("interpreter_frame", "size", "previous", "executable", "instr_ptr", "localsplus", "owner"),
    G("code_object", "size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
      "localsplusnames", "localspluskinds", "co_code_adaptive"),
    PYOBJECT,
    TYPE_OBJECT,
    TUPLE_OBJECT,
    LIST_OBJECT,
    DICT_OBJECT,
    FLOAT_OBJECT,
    LONG_OBJECT,
    BYTES_OBJECT,
    UNICODE_OBJECT,
    G_END,
};

/* 3.14, Include/internal/pycore_debug_offsets.h. Not installed here: read
 * from CPython's sources, where two shapes appear during 3.14's
 * development. Both add interpreter_state.threads_main,
 * interpreter_frame.stackpointer and a set_object group; the later one
 * also adds the thread-local-bytecode entries (code_object_generation,
 * tlbc_generation, tlbc_index, co_tlbc). Each is tried in turn and only one
 * that passes validation is used: the checks below reject the wrong one
 * (a shifted group puts two entries at one offset, or a field outside its
 * struct). */
static const struct group FORMAT_3_14_TLBC[] = {
    RUNTIME_STATE,
    G("interpreter_state", "size", "id", "next", "threads_head", "threads_main", "gc",
      "imports_modules", "sysdict", "builtins", "ceval_gil", "gil_runtime_state",
      "gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder",
      "code_object_generation", "tlbc_generation"),
    THREAD_STATE,
    G("interpreter_frame", "size", "previous", "executable", "instr_ptr", "localsplus", "owner",
      "stackpointer", "tlbc_index"),
    G("code_object", "size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
      "localsplusnames", "localspluskinds", "co_code_adaptive", "co_tlbc"),
    PYOBJECT,
    TYPE_OBJECT,
    TUPLE_OBJECT,
    LIST_OBJECT,
    G("set_object", "size", "used", "table", "mask"),
    DICT_OBJECT,
    FLOAT_OBJECT,
    LONG_OBJECT,
    BYTES_OBJECT,
    UNICODE_OBJECT,
    G_END,
};

static const struct group FORMAT_3_14_EARLY[] = {
    RUNTIME_STATE,
    G("interpreter_state", "size", "id", "next", "threads_head", "threads_main", "gc",
      "imports_modules", "sysdict", "builtins", "ceval_gil", "gil_runtime_state",
      "gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder"),
    THREAD_STATE,
    G("interpreter_frame", "size", "previous", "executable", "instr_ptr", "localsplus", "owner",
      "stackpointer"),
    G("code_object", "size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
      "localsplusnames", "localspluskinds", "co_code_adaptive"),
    PYOBJECT,
    TYPE_OBJECT,
    TUPLE_OBJECT,
    LIST_OBJECT,
    G("set_object", "size", "used", "table", "mask"),
    DICT_OBJECT,
    FLOAT_OBJECT,
    LONG_OBJECT,
    BYTES_OBJECT,
    UNICODE_OBJECT,
    G_END,
};

/* The formats, keyed by the version that publishes them, oldest first. */
struct format {
    unsigned major, minor;
    const char *name;
    const struct group *groups;
};

static const struct format FORMATS[] = {
    {3, 13, "3.13", FORMAT_3_13},
    {3, 14, "3.14", FORMAT_3_14_TLBC},
    {3, 14, "3.14 (early)", FORMAT_3_14_EARLY},
};
#define NFORMATS (sizeof(FORMATS) / sizeof(FORMATS[0]))

/* The groups whose values we validate: every struct we read through them. */
static const char *const CHECKED[] = {
    "runtime_state", "interpreter_state", "thread_state", "interpreter_frame",
    "code_object",   "pyobject",          "bytes_object", "unicode_object",
};

/* Entries that are 0 when the build lacks the feature (free-threading). */
static bool may_be_zero(const char *entry)
{
    static const char *const names[] = {"gil_runtime_state_enabled", "tlbc_generation",
                                        "tlbc_index", "co_tlbc"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(entry, names[i]) == 0)
            return true;
    return false;
}

struct parsed {
    const struct format *fmt;
    const uint8_t *buf;
    size_t len;
};

static bool word(const struct parsed *p, size_t index, uint64_t *out)
{
    size_t at = HEADER + index * 8;
    if (at > p->len || p->len - at < 8)
        return false;
    memcpy(out, p->buf + at, 8);
    return true;
}

/* Index of the first entry of a group, or SIZE_MAX. */
static size_t group_start(const struct format *fmt, const char *group, const struct group **g)
{
    size_t index = 0;
    for (const struct group *it = fmt->groups; it->name; it++) {
        if (strcmp(it->name, group) == 0) {
            *g = it;
            return index;
        }
        for (const char *const *e = it->entries; *e; e++)
            index++;
    }
    return SIZE_MAX;
}

static bool get(const struct parsed *p, const char *group, const char *entry, uint64_t *out)
{
    const struct group *g;
    size_t index = group_start(p->fmt, group, &g);
    if (index == SIZE_MAX)
        return false;
    for (const char *const *e = g->entries; *e; e++, index++)
        if (strcmp(*e, entry) == 0)
            return word(p, index, out);
    return false;
}

/* Generic checks of one group: a plausible sizeof, every entry inside it,
 * no two entries at one offset (CPython never puts two of these fields in
 * the same place; a shifted parse does). */
static pf_err check_group(const struct parsed *p, const char *name, struct pf_diag *diag)
{
    const struct group *g;
    size_t start = group_start(p->fmt, name, &g);
    uint64_t vals[24] = {0}, size;
    size_t n = 0;

    if (start == SIZE_MAX)
        return pf_diag_set(diag, PF_ERR_INTERNAL, "_Py_DebugOffsets: no group %s", name);
    for (const char *const *e = g->entries; *e && n < 24; e++, n++)
        if (!word(p, start + n, &vals[n]))
            return pf_diag_set(diag, PF_ERR_CORRUPT,
                               "_Py_DebugOffsets: %s.%s lies past the %zu bytes read", name, *e,
                               p->len);
    size = vals[0];
    if (size == 0 || size > PF_DEBUG_OFFSETS_MAX_SIZE)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: %s.size = %llu is not a plausible struct size", name,
                           (unsigned long long)size);
    for (size_t i = 1; i < n; i++) {
        if (vals[i] >= size)
            return pf_diag_set(diag, PF_ERR_CORRUPT,
                               "_Py_DebugOffsets: %s.%s = %llu is outside the struct (size %llu)",
                               name, g->entries[i], (unsigned long long)vals[i],
                               (unsigned long long)size);
        if (vals[i] == 0 && may_be_zero(g->entries[i]))
            continue;
        for (size_t j = 1; j < i; j++) {
            if (vals[j] == vals[i] && !(vals[j] == 0 && may_be_zero(g->entries[j])))
                return pf_diag_set(diag, PF_ERR_CORRUPT,
                                   "_Py_DebugOffsets: %s.%s and %s.%s are both at offset %llu",
                                   name, g->entries[j], name, g->entries[i],
                                   (unsigned long long)vals[i]);
        }
    }
    return PF_OK;
}

/* A field of `width` bytes at off inside a struct of `size`, aligned as
 * its type is on the ABIs we support. */
static pf_err check_field(const char *name, uint64_t off, unsigned width, uint64_t size,
                          struct pf_diag *diag)
{
    if (off > size || size - off < width)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: %s at %llu (%u bytes) does not fit its struct "
                           "(size %llu)",
                           name, (unsigned long long)off, width, (unsigned long long)size);
    unsigned align = width > 8 ? 8 : width; /* head + main: two pointers */
    if (width > 1 && off % align != 0)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: %s at %llu is not %u-byte aligned", name,
                           (unsigned long long)off, align);
    return PF_OK;
}

bool pf_debug_offsets_present(const uint8_t *buf, size_t len)
{
    return len >= 8 && memcmp(buf, "xdebugpy", 8) == 0;
}

/* Read the entries pyflame uses. Every group was checked already. */
static pf_err extract(const struct parsed *p, struct pf_debug_offsets *d, struct pf_diag *diag)
{
#define GET(grp, ent, dst)                                                                         \
    do {                                                                                           \
        if (!get(p, grp, ent, &(dst)))                                                             \
            return pf_diag_set(diag, PF_ERR_CORRUPT, "_Py_DebugOffsets: no %s.%s", grp, ent);      \
    } while (0)
    GET("runtime_state", "size", d->runtime.size);
    GET("runtime_state", "interpreters_head", d->runtime.interpreters_head);
    GET("interpreter_state", "size", d->interp.size);
    GET("interpreter_state", "next", d->interp.next);
    GET("interpreter_state", "threads_head", d->interp.threads_head);
    GET("interpreter_state", "ceval_gil", d->interp.ceval_gil);
    GET("interpreter_state", "gil_runtime_state", d->interp.gil_runtime_state);
    GET("interpreter_state", "gil_runtime_state_locked", d->interp.gil_locked);
    GET("interpreter_state", "gil_runtime_state_holder", d->interp.gil_holder);
    GET("thread_state", "size", d->tstate.size);
    GET("thread_state", "next", d->tstate.next);
    GET("thread_state", "interp", d->tstate.interp);
    GET("thread_state", "current_frame", d->tstate.current_frame);
    GET("thread_state", "thread_id", d->tstate.thread_id);
    GET("thread_state", "native_thread_id", d->tstate.native_thread_id);
    GET("thread_state", "status", d->tstate.status);
    GET("interpreter_frame", "size", d->iframe.size);
    GET("interpreter_frame", "previous", d->iframe.previous);
    GET("interpreter_frame", "executable", d->iframe.executable);
    GET("interpreter_frame", "instr_ptr", d->iframe.instr_ptr);
    GET("interpreter_frame", "owner", d->iframe.owner);
    GET("code_object", "size", d->code.size);
    GET("code_object", "filename", d->code.filename);
    GET("code_object", "name", d->code.name);
    GET("code_object", "qualname", d->code.qualname);
    GET("code_object", "linetable", d->code.linetable);
    GET("code_object", "firstlineno", d->code.firstlineno);
    GET("code_object", "co_code_adaptive", d->code.code_adaptive);
    GET("pyobject", "size", d->object.size);
    GET("pyobject", "ob_type", d->object.ob_type);
    GET("bytes_object", "size", d->bytes.size);
    GET("bytes_object", "ob_size", d->bytes.ob_size);
    GET("bytes_object", "ob_sval", d->bytes.ob_sval);
    GET("unicode_object", "size", d->unicode.size);
    GET("unicode_object", "state", d->unicode.state);
    GET("unicode_object", "length", d->unicode.length);
    GET("unicode_object", "asciiobject_size", d->unicode.ascii_size);
#undef GET
    return PF_OK;
}

/* The checks specific to the fields we read: widths and alignment from
 * their C types (pointers and Py_ssize_t 8, int 4, char 1), and the
 * relations the layout builder relies on. */
static pf_err check_fields(const struct pf_debug_offsets *d, uint64_t runtime_size,
                           struct pf_diag *diag)
{
    pf_err err;
    if ((err = check_field("runtime_state.interpreters_head", d->runtime.interpreters_head, 8,
                           d->runtime.size, diag)) ||
        (err = check_field("interpreter_state.next", d->interp.next, 8, d->interp.size, diag)) ||
        (err = check_field("interpreter_state.threads_head", d->interp.threads_head, 8,
                           d->interp.size, diag)) ||
        (err = check_field("interpreter_state.ceval_gil", d->interp.ceval_gil, 8, d->interp.size,
                           diag)) ||
        (err = check_field("interpreter_state.gil_runtime_state_locked", d->interp.gil_locked, 4,
                           d->interp.size, diag)) ||
        (err = check_field("interpreter_state.gil_runtime_state_holder", d->interp.gil_holder, 8,
                           d->interp.size, diag)) ||
        (err = check_field("thread_state.next", d->tstate.next, 8, d->tstate.size, diag)) ||
        (err = check_field("thread_state.interp", d->tstate.interp, 8, d->tstate.size, diag)) ||
        (err = check_field("thread_state.current_frame", d->tstate.current_frame, 8, d->tstate.size,
                           diag)) ||
        (err =
             check_field("thread_state.thread_id", d->tstate.thread_id, 8, d->tstate.size, diag)) ||
        (err = check_field("thread_state.native_thread_id", d->tstate.native_thread_id, 8,
                           d->tstate.size, diag)) ||
        (err = check_field("interpreter_frame.previous", d->iframe.previous, 8, d->iframe.size,
                           diag)) ||
        (err = check_field("interpreter_frame.executable", d->iframe.executable, 8, d->iframe.size,
                           diag)) ||
        (err = check_field("interpreter_frame.instr_ptr", d->iframe.instr_ptr, 8, d->iframe.size,
                           diag)) ||
        (err = check_field("interpreter_frame.owner", d->iframe.owner, 1, d->iframe.size, diag)) ||
        (err = check_field("code_object.filename", d->code.filename, 8, d->code.size, diag)) ||
        (err = check_field("code_object.name", d->code.name, 8, d->code.size, diag)) ||
        (err = check_field("code_object.qualname", d->code.qualname, 8, d->code.size, diag)) ||
        (err = check_field("code_object.linetable", d->code.linetable, 8, d->code.size, diag)) ||
        (err =
             check_field("code_object.firstlineno", d->code.firstlineno, 4, d->code.size, diag)) ||
        (err = check_field("code_object.co_code_adaptive", d->code.code_adaptive, 1, d->code.size,
                           diag)) ||
        (err = check_field("pyobject.ob_type", d->object.ob_type, 8, d->object.size, diag)) ||
        (err = check_field("bytes_object.ob_size", d->bytes.ob_size, 8, d->bytes.size, diag)) ||
        (err = check_field("bytes_object.ob_sval", d->bytes.ob_sval, 1, d->bytes.size, diag)) ||
        (err = check_field("unicode_object.state", d->unicode.state, 4, d->unicode.size, diag)) ||
        (err = check_field("unicode_object.length", d->unicode.length, 8, d->unicode.size, diag)))
        return err;

    /* The GIL is read through interp->ceval.gil, so its fields are wanted
     * relative to the embedded _gil the offsets are given for
     * (docs/cpython-internals.md §10.2). */
    if (d->interp.gil_locked <= d->interp.gil_runtime_state ||
        d->interp.gil_holder <= d->interp.gil_runtime_state ||
        d->interp.gil_locked - d->interp.gil_runtime_state > 256 ||
        d->interp.gil_holder - d->interp.gil_runtime_state > 256)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: the GIL's locked (%llu) and last_holder (%llu) are "
                           "not just after its start (%llu)",
                           (unsigned long long)d->interp.gil_locked,
                           (unsigned long long)d->interp.gil_holder,
                           (unsigned long long)d->interp.gil_runtime_state);
    /* PyASCIIObject is the head of every string: its fields lie in it, and
     * PyUnicodeObject extends it (the builder checks the rest). */
    if (d->unicode.size <= d->unicode.ascii_size || d->unicode.state >= d->unicode.ascii_size ||
        d->unicode.length >= d->unicode.ascii_size)
        return pf_diag_set(
            diag, PF_ERR_CORRUPT,
            "_Py_DebugOffsets: unicode_object (size %llu, PyASCIIObject %llu) is not "
            "shaped like a PEP 393 string",
            (unsigned long long)d->unicode.size, (unsigned long long)d->unicode.ascii_size);
    /* Clamp: we copy the prefix of each struct up to its last field used,
     * into buffers of PF_MAX_STRUCT bytes. */
    if (d->bytes.ob_sval >= PF_MAX_STRUCT || d->unicode.size > PF_MAX_STRUCT ||
        d->tstate.native_thread_id >= PF_MAX_STRUCT || d->tstate.next >= PF_MAX_STRUCT ||
        d->tstate.interp >= PF_MAX_STRUCT || d->tstate.current_frame >= PF_MAX_STRUCT ||
        d->tstate.thread_id >= PF_MAX_STRUCT || d->code.code_adaptive >= PF_MAX_STRUCT ||
        d->iframe.owner >= PF_MAX_STRUCT || d->iframe.previous >= PF_MAX_STRUCT ||
        d->iframe.executable >= PF_MAX_STRUCT || d->iframe.instr_ptr >= PF_MAX_STRUCT ||
        d->code.filename >= PF_MAX_STRUCT || d->code.name >= PF_MAX_STRUCT ||
        d->code.qualname >= PF_MAX_STRUCT || d->code.linetable >= PF_MAX_STRUCT ||
        d->code.firstlineno >= PF_MAX_STRUCT)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: a field pyflame copies lies past %u bytes",
                           (unsigned)PF_MAX_STRUCT);
    if (runtime_size && d->runtime.size != runtime_size)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: runtime_state.size = %llu, but _PyRuntime is %llu "
                           "bytes",
                           (unsigned long long)d->runtime.size, (unsigned long long)runtime_size);
    return PF_OK;
}

static pf_err try_format(const struct format *fmt, const uint8_t *buf, size_t len,
                         uint64_t runtime_size, struct pf_diag *diag, struct pf_debug_offsets *d)
{
    struct parsed p = {fmt, buf, len};
    pf_err err;

    for (size_t i = 0; i < sizeof(CHECKED) / sizeof(CHECKED[0]); i++)
        if ((err = check_group(&p, CHECKED[i], diag)))
            return err;
    if ((err = extract(&p, d, diag)) || (err = check_fields(d, runtime_size, diag)))
        return err;
    d->format = fmt->name;
    return PF_OK;
}

pf_err pf_debug_offsets_parse(const uint8_t *buf, size_t len, unsigned force_minor,
                              uint64_t runtime_size, struct pf_diag *diag,
                              struct pf_debug_offsets *out)
{
    struct pf_debug_offsets d;
    uint64_t version, free_threaded;
    struct pf_pyver ver;
    struct pf_diag first = {{0}};
    bool tried = false;
    pf_err first_err = PF_ERR_UNSUPPORTED;

    if (!pf_debug_offsets_present(buf, len))
        return pf_diag_set(diag, PF_ERR_NOTFOUND, "no _Py_DebugOffsets cookie");
    if (len < HEADER)
        return pf_diag_set(diag, PF_ERR_CORRUPT, "_Py_DebugOffsets: only %zu bytes", len);
    memset(&d, 0, sizeof(d));
    memcpy(&version, buf + 8, 8);
    memcpy(&free_threaded, buf + 16, 8);
    d.version = version;
    /* No release before the first format published the offsets: an older
     * version there means the bytes are not debug offsets. */
    if (pf_pyver_from_hex(version, "_Py_DebugOffsets.version", &ver) != PF_OK ||
        ver.major != FORMATS[0].major || ver.minor < FORMATS[0].minor)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: version 0x%llx is not a CPython %u.%u or later",
                           (unsigned long long)version, FORMATS[0].major, FORMATS[0].minor);
    d.major = ver.major;
    d.minor = ver.minor;
    d.micro = ver.micro;
    if (free_threaded > 1)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: free_threaded = %llu is not a flag",
                           (unsigned long long)free_threaded);
    if (free_threaded)
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "CPython %u.%u.%u is a free-threaded build (%u.%ut), which pyflame "
                           "cannot read yet",
                           d.major, d.minor, d.micro, d.major, d.minor);

    unsigned minor = force_minor ? force_minor : d.minor;
    for (size_t i = 0; i < NFORMATS; i++) {
        if (FORMATS[i].major != d.major || FORMATS[i].minor != minor)
            continue;
        struct pf_diag why = {{0}};
        pf_err err = try_format(&FORMATS[i], buf, len, runtime_size, &why, &d);
        if (err == PF_OK) {
            *out = d;
            return PF_OK;
        }
        if (!tried) {
            first = why;
            first_err = err;
            tried = true;
        }
    }
    if (!tried)
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "CPython %u.%u.%u publishes _Py_DebugOffsets in a layout this pyflame "
                           "does not know",
                           d.major, d.minor, d.micro);
    return pf_diag_set(diag, first_err, "CPython %u.%u.%u: %s", d.major, d.minor, d.micro,
                       first.msg);
}

/* A field at the offset the target published, with the width of the same
 * field in the generated table (the C type's, from the headers). */
static struct pf_field at(uint64_t off, struct pf_field like)
{
    return (struct pf_field){(uint32_t)off, like.width};
}

/* The end of the furthest field of a struct: how much of it we copy. */
static uint32_t end_of(const struct pf_field *fields, size_t n)
{
    uint32_t end = 0;
    for (size_t i = 0; i < n; i++)
        if (fields[i].width && fields[i].off + fields[i].width > end)
            end = fields[i].off + fields[i].width;
    return end;
}

/* END(a, b, ...): end_of over the fields listed. */
#define END(...)                                                                                   \
    end_of((const struct pf_field[]){__VA_ARGS__},                                                 \
           sizeof((const struct pf_field[]){__VA_ARGS__}) / sizeof(struct pf_field))

/* What _Py_DebugOffsets does not publish but pyflame reads: each is placed
 * at the distance from a published neighbour that the generated base
 * table has between the two (offsetof() of both, from the newest installed
 * headers), and checked to end inside the struct whose size the target
 * published. Nothing here is a typed number: a header change that moves
 * the pair apart shows as a check failing or as the cross-check of the
 * same version's table differing (docs/cpython-internals.md §10.2). The
 * positions are offsets into struct pf_layout: `field` of a struct
 * pf_field (or a uint32_t when !is_field), `anchor` of a uint32_t offset
 * or size (a struct pf_field's first member is its offset). */
struct neighbour {
    const char *name;
    size_t field, anchor;
    bool is_field;
    /* Which published size the result must fit in (index into sizes[]
     * of pf_debug_offsets_layout). */
    int within;
    const char *why;
};

enum { IN_RUNTIME, IN_CODE, IN_UNICODE };

#define POS(path) offsetof(struct pf_layout, path)

static const struct neighbour NEIGHBOURS[] = {
    {"runtime.interp_main", POS(runtime.interp_main), POS(runtime.interp_head), true, IN_RUNTIME,
     "struct pyinterpreters: main follows head (Include/internal/pycore_runtime.h; "
     "pycore_runtime_structs.h in 3.14)"},
    {"code.firsttraceable", POS(code.firsttraceable), POS(code.code_adaptive), true, IN_CODE,
     "_PyCode_DEF ends with _co_firsttraceable, co_extra, co_code_adaptive "
     "(Include/cpython/code.h)"},
    {"unicode.data", POS(unicode.data), POS(unicode.ascii_size), true, IN_UNICODE,
     "PyUnicodeObject is PyCompactUnicodeObject (PyASCIIObject, utf8_length, utf8) + data "
     "(Include/cpython/unicodeobject.h)"},
    {"unicode.compact_size", POS(unicode.compact_size), POS(unicode.ascii_size), false, IN_UNICODE,
     "as unicode.data"},
};

static uint32_t *u32_at(struct pf_layout *L, size_t pos)
{
    return (uint32_t *)(void *)((char *)L + pos);
}

static uint32_t u32_of(const struct pf_layout *L, size_t pos)
{
    uint32_t v;
    memcpy(&v, (const char *)L + pos, sizeof(v));
    return v;
}

pf_err pf_debug_offsets_layout(const struct pf_debug_offsets *d, const struct pf_layout *base,
                               struct pf_diag *diag, struct pf_layout *out)
{
    const struct pf_layout_later *row = pf_layout_later(d->major, d->minor);
    bool same = base && base->key.major == d->major && base->key.minor == d->minor;
    struct pf_layout L;

    if (!base || base->frames != PF_FRAMES_INTERP || (!same && !row))
        return pf_diag_set(diag, PF_ERR_INTERNAL,
                           "no generated table or capability row to complete CPython %u.%u's "
                           "_Py_DebugOffsets",
                           d->major, d->minor);
    /* What offsets cannot say: the formats and capabilities. The same
     * version's table has them from its headers; a later version's come
     * from its hand-kept row (layout.c), never from an older table. */
    L = *base;
    if (!same) {
        L.linetable = row->linetable;
        L.frames = row->frames;
        L.gil = row->gil;
        L.str = row->str;
        L.caps = row->caps;
        if (L.frames != PF_FRAMES_INTERP)
            return pf_diag_set(diag, PF_ERR_INTERNAL,
                               "CPython %u.%u: its frames do not chain as _Py_DebugOffsets "
                               "describe them",
                               d->major, d->minor);
    }
    L.key.major = (uint8_t)d->major;
    L.key.minor = (uint8_t)d->minor;
    L.source = NULL;

    memset(&L.runtime, 0, sizeof(L.runtime));
    L.runtime.interp_head = at(d->runtime.interpreters_head, base->runtime.interp_head);

    memset(&L.interp, 0, sizeof(L.interp));
    L.interp.next = at(d->interp.next, base->interp.next);
    L.interp.threads_head = at(d->interp.threads_head, base->interp.threads_head);
    L.interp.ceval_gil = at(d->interp.ceval_gil, base->interp.ceval_gil);
    L.interp.size = END(L.interp.next, L.interp.threads_head, L.interp.ceval_gil);

    /* tstate->state is not published; keep the table's only for the
     * version the table was generated from. */
    memset(&L.tstate, 0, sizeof(L.tstate));
    L.tstate.next = at(d->tstate.next, base->tstate.next);
    L.tstate.interp = at(d->tstate.interp, base->tstate.interp);
    L.tstate.frame = at(d->tstate.current_frame, base->tstate.frame);
    L.tstate.thread_id = at(d->tstate.thread_id, base->tstate.thread_id);
    L.tstate.native_thread_id = at(d->tstate.native_thread_id, base->tstate.native_thread_id);
    L.tstate.state = same ? base->tstate.state : (struct pf_field){0, 0};
    L.tstate.size = END(L.tstate.next, L.tstate.interp, L.tstate.frame, L.tstate.thread_id,
                        L.tstate.native_thread_id, L.tstate.state);

    memset(&L.iframe, 0, sizeof(L.iframe));
    L.iframe.previous = at(d->iframe.previous, base->iframe.previous);
    L.iframe.code = at(d->iframe.executable, base->iframe.code);
    L.iframe.instr = at(d->iframe.instr_ptr, base->iframe.instr);
    L.iframe.owner = at(d->iframe.owner, base->iframe.owner);
    L.iframe.size = END(L.iframe.previous, L.iframe.code, L.iframe.instr, L.iframe.owner);

    memset(&L.code, 0, sizeof(L.code));
    L.code.filename = at(d->code.filename, base->code.filename);
    L.code.name = at(d->code.name, base->code.name);
    L.code.qualname = at(d->code.qualname, base->code.qualname);
    L.code.firstlineno = at(d->code.firstlineno, base->code.firstlineno);
    L.code.linetable = at(d->code.linetable, base->code.linetable);
    L.code.code_adaptive = at(d->code.code_adaptive, base->code.code_adaptive); /* an address */

    /* ob_size is PyVarObject's, the same in every variable-size object. */
    L.object.ob_type = at(d->object.ob_type, base->object.ob_type);
    L.object.ob_size = at(d->bytes.ob_size, base->object.ob_size);

    L.bytes.ob_size = at(d->bytes.ob_size, base->bytes.ob_size);
    L.bytes.ob_sval = at(d->bytes.ob_sval, base->bytes.ob_sval);
    L.bytes.size = (uint32_t)d->bytes.ob_sval; /* the header, up to the characters */

    memset(&L.unicode, 0, sizeof(L.unicode));
    L.unicode.ascii_size = (uint32_t)d->unicode.ascii_size;
    L.unicode.length = at(d->unicode.length, base->unicode.length);
    L.unicode.state = at(d->unicode.state, base->unicode.state);

    /* The GIL is read through interp->ceval.gil (docs/cpython-internals.md
     * §4.3), so its fields are wanted from the start of the GIL struct;
     * the offsets give both that start and the fields from the
     * interpreter (check_fields made sure the fields come after it). */
    memset(&L.gilstate, 0, sizeof(L.gilstate));
    L.gilstate.locked =
        at(d->interp.gil_locked - d->interp.gil_runtime_state, base->gilstate.locked);
    L.gilstate.last_holder =
        at(d->interp.gil_holder - d->interp.gil_runtime_state, base->gilstate.last_holder);
    L.gilstate.size = END(L.gilstate.locked, L.gilstate.last_holder);

    const uint64_t sizes[] = {[IN_RUNTIME] = d->runtime.size,
                              [IN_CODE] = d->code.size,
                              [IN_UNICODE] = d->unicode.size};
    for (size_t i = 0; i < sizeof(NEIGHBOURS) / sizeof(NEIGHBOURS[0]); i++) {
        const struct neighbour *n = &NEIGHBOURS[i];
        int64_t dist = (int64_t)u32_of(base, n->field) - (int64_t)u32_of(base, n->anchor);
        int64_t off = (int64_t)u32_of(&L, n->anchor) + dist;
        uint32_t width = n->is_field ? u32_of(base, n->field + sizeof(uint32_t)) : 0;
        if (off < 0 || (uint64_t)off + width > sizes[n->within])
            return pf_diag_set(diag, PF_ERR_CORRUPT,
                               "_Py_DebugOffsets: %s, placed as in the generated %s table (%s), "
                               "falls outside its struct",
                               n->name, pf_layout_name(base), n->why);
        *u32_at(&L, n->field) = (uint32_t)off;
        if (n->is_field)
            *u32_at(&L, n->field + sizeof(uint32_t)) = width;
    }
    /* PyUnicodeObject ends with data: the one derived field whose end the
     * target publishes exactly. */
    if (L.unicode.data.off + L.unicode.data.width != d->unicode.size)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: unicode_object (size %llu, PyASCIIObject %llu) is "
                           "not shaped like the generated %s table's PEP 393 string",
                           (unsigned long long)d->unicode.size,
                           (unsigned long long)d->unicode.ascii_size, pf_layout_name(base));
    /* _co_firsttraceable lies before the bytecode, never on it. */
    if (L.code.firsttraceable.off + L.code.firsttraceable.width > L.code.code_adaptive.off)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: code_object.co_code_adaptive = %llu leaves no room "
                           "for _co_firsttraceable before it",
                           (unsigned long long)d->code.code_adaptive);
    L.runtime.size = END(L.runtime.interp_head, L.runtime.interp_main);
    L.code.size = END(L.code.filename, L.code.name, L.code.qualname, L.code.firstlineno,
                      L.code.linetable, L.code.code_adaptive, L.code.firsttraceable);
    L.unicode.size = END(L.unicode.length, L.unicode.state, L.unicode.data);
    if (L.code.size > PF_MAX_STRUCT || L.unicode.size > PF_MAX_STRUCT)
        return pf_diag_set(diag, PF_ERR_CORRUPT,
                           "_Py_DebugOffsets: a field pyflame copies lies past %u bytes",
                           (unsigned)PF_MAX_STRUCT);

    *out = L;
    return PF_OK;
}

struct filled {
    const char *name;
    size_t off;
    bool field; /* a struct pf_field; else a uint32_t size */
};

#define FIELD(path)                                                                                \
    {                                                                                              \
#path, offsetof(struct pf_layout, path), true                                              \
    }
#define SIZE(path)                                                                                 \
    {                                                                                              \
#path, offsetof(struct pf_layout, path), false                                             \
    }

/* Everything pf_debug_offsets_layout fills in. */
static const struct filled FILLED[] = {
    SIZE(runtime.size),
    FIELD(runtime.interp_head),
    FIELD(runtime.interp_main),
    SIZE(interp.size),
    FIELD(interp.next),
    FIELD(interp.threads_head),
    FIELD(interp.ceval_gil),
    SIZE(tstate.size),
    FIELD(tstate.next),
    FIELD(tstate.interp),
    FIELD(tstate.frame),
    FIELD(tstate.thread_id),
    FIELD(tstate.native_thread_id),
    SIZE(iframe.size),
    FIELD(iframe.previous),
    FIELD(iframe.code),
    FIELD(iframe.instr),
    FIELD(iframe.owner),
    SIZE(code.size),
    FIELD(code.filename),
    FIELD(code.name),
    FIELD(code.qualname),
    FIELD(code.firstlineno),
    FIELD(code.linetable),
    FIELD(code.code_adaptive),
    FIELD(code.firsttraceable),
    FIELD(object.ob_type),
    FIELD(object.ob_size),
    SIZE(bytes.size),
    FIELD(bytes.ob_size),
    FIELD(bytes.ob_sval),
    SIZE(unicode.size),
    SIZE(unicode.ascii_size),
    SIZE(unicode.compact_size),
    FIELD(unicode.length),
    FIELD(unicode.state),
    FIELD(unicode.data),
    SIZE(gilstate.size),
    FIELD(gilstate.locked),
    FIELD(gilstate.last_holder),
};

size_t pf_debug_offsets_diff(const struct pf_layout *a, const struct pf_layout *b,
                             const char **names, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < sizeof(FILLED) / sizeof(FILLED[0]); i++) {
        const char *x = (const char *)a + FILLED[i].off, *y = (const char *)b + FILLED[i].off;
        size_t len = FILLED[i].field ? sizeof(struct pf_field) : sizeof(uint32_t);
        if (memcmp(x, y, len) == 0)
            continue;
        if (n < cap)
            names[n] = FILLED[i].name;
        n++;
    }
    return n;
}

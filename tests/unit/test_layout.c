/* Tests for the generated layout tables and their lookup.
 *
 * The numbers come from scripts/gen-layouts (the `layouts` meson suite checks
 * them against the headers). These tests check what the rest of pyflame
 * relies on without re-reading any header: every field fits the prefix its
 * reader copies, the keys are unique and ordered, each version has the fields
 * and formats CPython's history says it has, and a few values that were
 * confirmed independently are still there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/cpython/layout.h"

#if defined(__x86_64__)
#define THIS_ARCH PF_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH PF_ARCH_AARCH64
#else
#define THIS_ARCH 0
#endif

/* major * 100 + minor, for readable version comparisons. */
static unsigned ver(const struct pf_layout *L)
{
    return L->key.major * 100u + L->key.minor;
}

static int present(struct pf_field f)
{
    return f.width != 0;
}

/* One field with the struct prefix its reader copies. */
struct named_field {
    const char *name;
    uint32_t size;
    struct pf_field f;
};

/* Every sized field of an entry. object has no size of its own: it is the
 * head of every other object, checked separately. */
static size_t fields_of(const struct pf_layout *L, struct named_field *out)
{
    size_t n = 0;
#define ADD(grp, fld) out[n++] = (struct named_field){ #grp "." #fld, L->grp.size, L->grp.fld }
    ADD(runtime, interp_head);
    ADD(runtime, interp_main);
    ADD(runtime, tstate_current);
    ADD(runtime, gil_locked);
    ADD(runtime, gil_last_holder);
    ADD(interp, next);
    ADD(interp, threads_head);
    ADD(interp, ceval_gil);
    ADD(tstate, next);
    ADD(tstate, interp);
    ADD(tstate, frame);
    ADD(tstate, thread_id);
    ADD(tstate, native_thread_id);
    ADD(tstate, state);
    ADD(cframe, current_frame);
    ADD(pyframe, back);
    ADD(pyframe, code);
    ADD(pyframe, lasti);
    ADD(iframe, previous);
    ADD(iframe, code);
    ADD(iframe, instr);
    ADD(iframe, owner);
    ADD(iframe, is_entry);
    ADD(code, filename);
    ADD(code, name);
    ADD(code, qualname);
    ADD(code, firstlineno);
    ADD(code, linetable);
    ADD(code, code_adaptive);
    ADD(code, firsttraceable);
    ADD(bytes, ob_size);
    ADD(unicode, length);
    ADD(unicode, state);
    ADD(unicode, data);
    ADD(gilstate, locked);
    ADD(gilstate, last_holder);
#undef ADD
    return n;
}

#define MAX_FIELDS 64

/* A field that fails a check names itself and its version in the output. */
static void fail_field(const struct pf_layout *L, const char *name, const char *why)
{
    print_error("%s (%s): %s %s\n", pf_layout_name(L), L->source, name, why);
    fail();
}

/* Every present field lies inside the prefix its reader copies, so a reader
 * that trusts `size` never reads past its buffer; absent fields are {0, 0}. */
static void fields_within_size(void **state)
{
    const struct pf_layout *L = *state;
    struct named_field fs[MAX_FIELDS];
    size_t n = fields_of(L, fs);

    for (size_t i = 0; i < n; i++) {
        struct pf_field f = fs[i].f;
        if (!present(f)) {
            if (f.off != 0)
                fail_field(L, fs[i].name, "is absent (width 0) but has an offset");
            continue;
        }
        if (!pf_field_ok(f, fs[i].size))
            fail_field(L, fs[i].name, "ends past its struct's size");
    }
    /* bytes.ob_sval is the start of the characters, not part of the header. */
    if (!present(L->bytes.ob_sval) || L->bytes.ob_sval.off != L->bytes.size)
        fail_field(L, "bytes.ob_sval", "is not where the bytes header ends");
    /* object's fields are the head of every object we read. */
    if (L->object.ob_type.off + L->object.ob_type.width > L->object.ob_size.off)
        fail_field(L, "object.ob_type", "overlaps ob_size");
    if (L->object.ob_size.off + L->object.ob_size.width > L->bytes.size)
        fail_field(L, "object.ob_size", "ends past the bytes header");
    /* PyASCIIObject starts with a PyObject (not a PyVarObject). */
    if (L->key.major >= 3 &&
        L->object.ob_type.off + L->object.ob_type.width > L->unicode.length.off)
        fail_field(L, "object.ob_type", "ends past the start of unicode.length");
}

/* size is the end of the last field used, not sizeof: copying 3.11's
 * 160 KiB _PyRuntimeState per sample would be absurd, and a size short of the
 * last field would make every read of it fail. */
static void size_is_end_of_last_field(void **state)
{
    const struct pf_layout *L = *state;
    const struct {
        const char *name;
        uint32_t size;
    } groups[] = {
        { "runtime", L->runtime.size },   { "interp", L->interp.size },
        { "tstate", L->tstate.size },     { "cframe", L->cframe.size },
        { "pyframe", L->pyframe.size },   { "iframe", L->iframe.size },
        { "code", L->code.size },         { "unicode", L->unicode.size },
        { "gilstate", L->gilstate.size },
    };
    struct named_field fs[MAX_FIELDS];
    size_t n = fields_of(L, fs);

    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        size_t len = strlen(groups[g].name);
        uint32_t end = 0;
        for (size_t i = 0; i < n; i++) {
            if (strncmp(fs[i].name, groups[g].name, len) != 0 || fs[i].name[len] != '.')
                continue;
            if (present(fs[i].f) && fs[i].f.off + fs[i].f.width > end)
                end = fs[i].f.off + fs[i].f.width;
        }
        if (groups[g].size != end)
            fail_field(L, groups[g].name, ".size is not the end of its last present field");
    }
}

/* Pointers are 8 bytes on both supported architectures; the others have the
 * C types CPython declares (int f_lasti, char owner, unsigned long
 * thread_id, ...). A reader calling pf_field_ptr on a 4-byte field fails. */
static void widths(void **state)
{
    const struct pf_layout *L = *state;
    const struct {
        const char *name;
        struct pf_field f;
        uint32_t width;
    } want[] = {
        { "runtime.interp_head", L->runtime.interp_head, 8 },
        { "runtime.interp_main", L->runtime.interp_main, 8 },
        { "runtime.tstate_current", L->runtime.tstate_current, 8 },
        { "runtime.gil_locked", L->runtime.gil_locked, 4 },
        { "runtime.gil_last_holder", L->runtime.gil_last_holder, 8 },
        { "interp.next", L->interp.next, 8 },
        { "interp.threads_head", L->interp.threads_head, 8 },
        { "interp.ceval_gil", L->interp.ceval_gil, 8 },
        { "tstate.next", L->tstate.next, 8 },
        { "tstate.interp", L->tstate.interp, 8 },
        { "tstate.frame", L->tstate.frame, 8 },
        { "tstate.thread_id", L->tstate.thread_id, 8 },
        { "tstate.native_thread_id", L->tstate.native_thread_id, 8 },
        { "tstate.state", L->tstate.state, 4 },
        { "cframe.current_frame", L->cframe.current_frame, 8 },
        { "pyframe.back", L->pyframe.back, 8 },
        { "pyframe.code", L->pyframe.code, 8 },
        { "pyframe.lasti", L->pyframe.lasti, 4 },
        { "iframe.previous", L->iframe.previous, 8 },
        { "iframe.code", L->iframe.code, 8 },
        { "iframe.instr", L->iframe.instr, 8 },
        { "iframe.owner", L->iframe.owner, 1 },
        { "iframe.is_entry", L->iframe.is_entry, 1 },
        { "code.filename", L->code.filename, 8 },
        { "code.name", L->code.name, 8 },
        { "code.qualname", L->code.qualname, 8 },
        { "code.firstlineno", L->code.firstlineno, 4 },
        { "code.linetable", L->code.linetable, 8 },
        { "code.code_adaptive", L->code.code_adaptive, 1 }, /* char[1] tail, address only */
        { "code.firsttraceable", L->code.firsttraceable, 4 },
        { "object.ob_type", L->object.ob_type, 8 },
        { "object.ob_size", L->object.ob_size, 8 },
        { "bytes.ob_size", L->bytes.ob_size, 8 },
        { "bytes.ob_sval", L->bytes.ob_sval, 1 },
        { "unicode.length", L->unicode.length, 8 },
        { "unicode.state", L->unicode.state, 4 },
        { "unicode.data", L->unicode.data, 8 },
        { "gilstate.locked", L->gilstate.locked, 4 },
        { "gilstate.last_holder", L->gilstate.last_holder, 8 },
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (present(want[i].f) && want[i].f.width != want[i].width)
            fail_field(L, want[i].name, "has an unexpected width");
}

/* Which fields exist in which version (docs/cpython-internals.md §1.4,
 * with §3-§7). A field missing where the reader expects it, or present
 * where it would be read by mistake, fails here before any sampling code
 * sees it. */
static void presence_by_version(void **state)
{
    const struct pf_layout *L = *state;
    unsigned v = ver(L);
    const struct {
        const char *name;
        struct pf_field f;
        int want;
    } rules[] = {
        { "runtime.interp_head", L->runtime.interp_head, v >= 307 },
        { "runtime.interp_main", L->runtime.interp_main, v >= 307 },
        /* 3.12 moved the GIL into the interpreter and the current tstate
         * into a thread-local. */
        { "runtime.tstate_current", L->runtime.tstate_current, v >= 307 && v <= 311 },
        { "runtime.gil_locked", L->runtime.gil_locked, v >= 307 && v <= 311 },
        { "runtime.gil_last_holder", L->runtime.gil_last_holder, v >= 307 && v <= 311 },
        { "interp.next", L->interp.next, 1 },
        { "interp.threads_head", L->interp.threads_head, 1 },
        { "interp.ceval_gil", L->interp.ceval_gil, v >= 312 },
        { "tstate.next", L->tstate.next, 1 },
        { "tstate.interp", L->tstate.interp, 1 },
        { "tstate.frame", L->tstate.frame, 1 },
        { "tstate.thread_id", L->tstate.thread_id, 1 },
        { "tstate.native_thread_id", L->tstate.native_thread_id, v >= 311 },
        { "tstate.state", L->tstate.state, v == 313 },
        { "cframe.current_frame", L->cframe.current_frame, v == 311 || v == 312 },
        { "pyframe.back", L->pyframe.back, v <= 310 },
        { "pyframe.code", L->pyframe.code, v <= 310 },
        { "pyframe.lasti", L->pyframe.lasti, v <= 310 },
        { "iframe.previous", L->iframe.previous, v >= 311 },
        { "iframe.code", L->iframe.code, v >= 311 },
        { "iframe.instr", L->iframe.instr, v >= 311 },
        { "iframe.owner", L->iframe.owner, v >= 311 },
        { "iframe.is_entry", L->iframe.is_entry, v == 311 },
        { "code.filename", L->code.filename, 1 },
        { "code.name", L->code.name, 1 },
        { "code.qualname", L->code.qualname, v >= 311 },
        { "code.firstlineno", L->code.firstlineno, 1 },
        { "code.linetable", L->code.linetable, 1 },
        { "code.code_adaptive", L->code.code_adaptive, v >= 311 },
        { "code.firsttraceable", L->code.firsttraceable, v >= 311 },
        { "object.ob_type", L->object.ob_type, 1 },
        { "object.ob_size", L->object.ob_size, 1 },
        { "bytes.ob_size", L->bytes.ob_size, 1 },
        { "bytes.ob_sval", L->bytes.ob_sval, 1 },
        { "unicode.length", L->unicode.length, v >= 300 },
        { "unicode.state", L->unicode.state, v >= 300 },
        { "unicode.data", L->unicode.data, v >= 300 },
        { "gilstate.locked", L->gilstate.locked, v >= 312 },
        { "gilstate.last_holder", L->gilstate.last_holder, v >= 312 },
    };

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (present(rules[i].f) && !rules[i].want)
            fail_field(L, rules[i].name, "is present but should not exist in this version");
        if (!present(rules[i].f) && rules[i].want)
            fail_field(L, rules[i].name, "is missing");
    }

    /* PEP 393: compact ASCII data follows PyASCIIObject, other compact data
     * follows PyCompactUnicodeObject, which PyUnicodeObject extends. */
    if (v >= 300) {
        if (!(L->unicode.ascii_size > L->unicode.state.off &&
              L->unicode.compact_size > L->unicode.ascii_size &&
              L->unicode.data.off >= L->unicode.compact_size))
            fail_field(L, "unicode.ascii_size/compact_size", "are out of order");
    } else if (L->unicode.size || L->unicode.ascii_size || L->unicode.compact_size) {
        fail_field(L, "unicode", "exists in 2.x");
    }
}

/* The decoding strategy per version (layout.h; docs/cpython-internals.md
 * §1.4). */
static void formats_by_version(void **state)
{
    const struct pf_layout *L = *state;
    unsigned v = ver(L);

    assert_int_equal(L->linetable, v == 207   ? PF_LT_LNOTAB_27
                                   : v <= 309 ? PF_LT_LNOTAB_36
                                   : v == 310 ? PF_LT_LINETABLE_310
                                              : PF_LT_LOCATIONS_311);
    assert_int_equal(L->frames, v <= 310   ? PF_FRAMES_OBJECT
                                : v <= 312 ? PF_FRAMES_CFRAME
                                           : PF_FRAMES_INTERP);
    assert_int_equal(L->gil, v <= 306   ? PF_GIL_CURRENT_SYMBOL
                             : v <= 311 ? PF_GIL_RUNTIME_CURRENT
                                        : PF_GIL_INTERP_GIL);
    assert_int_equal(L->str, v < 300 ? PF_STR_BYTES : PF_STR_PEP393);
}

/* The capabilities the readers branch on (struct pf_layout_caps;
 * docs/cpython-internals.md §1.5), per version. The owner values are the
 * enum's: FRAME_OWNED_BY_GENERATOR 1, FRAME_OWNED_BY_CSTACK 3 in 3.12 and
 * 3.13, FRAME_OWNED_BY_INTERPRETER 3 and FRAME_OWNED_BY_CSTACK 4 in 3.14. */
static void check_caps(const char *name, unsigned v, const struct pf_layout_caps *c)
{
    print_message("%s: checking capabilities\n", name);
    assert_int_equal(c->has_runtime, v >= 307);
    assert_int_equal(c->incomplete_frames, v >= 311);
    assert_int_equal(c->thread_id, v >= 311 ? PF_TID_NATIVE : PF_TID_PTHREAD);
    assert_int_equal(c->instr, v <= 309   ? PF_INSTR_LASTI_BYTES
                               : v == 310 ? PF_INSTR_LASTI_UNITS
                                          : PF_INSTR_POINTER);
    assert_int_equal(c->owner_generator, v >= 311 ? 1 : 0);
    assert_int_equal(c->shim_owners, v >= 314   ? (1u << 3 | 1u << 4)
                                     : v >= 312 ? 1u << 3
                                                : 0);
    assert_non_null(c->eval_symbol);
    assert_string_equal(c->eval_symbol, v < 300 ? "PyEval_EvalFrameEx" : "_PyEval_EvalFrameDefault");
}

static void caps_by_version(void **state)
{
    const struct pf_layout *L = *state;
    check_caps(pf_layout_name(L), ver(L), &L->caps);
    /* What a capability stands for agrees with the fields it needs. */
    if (L->caps.has_runtime != (L->runtime.size != 0))
        fail_field(L, "caps.has_runtime", "disagrees with the runtime group");
    if (L->caps.thread_id == PF_TID_NATIVE && !present(L->tstate.native_thread_id))
        fail_field(L, "caps.thread_id", "is native but there is no native_thread_id");
    if (L->caps.incomplete_frames && !present(L->code.firsttraceable))
        fail_field(L, "caps.incomplete_frames", "is set but there is no _co_firsttraceable");
    if ((L->caps.instr == PF_INSTR_POINTER) != present(L->iframe.instr))
        fail_field(L, "caps.instr", "disagrees with the frame's instruction field");
}

/* The hand-kept rows of the versions read through _Py_DebugOffsets alone:
 * their capabilities, their frame chain (the offsets describe
 * tstate->current_frame only), and agreement with a generated table of the
 * same version once one exists. */
static void later_rows(void **state)
{
    char list[128] = "";
    size_t used = 0;

    (void)state;
    assert_true(pf_layout_later_count() > 0);
    for (size_t i = 0; i < pf_layout_later_count(); i++) {
        const struct pf_layout_later *r = pf_layout_later_at(i);
        char name[16];
        snprintf(name, sizeof(name), "%u.%u", r->major, r->minor);
        check_caps(name, r->major * 100u + r->minor, &r->caps);
        assert_int_equal(r->frames, PF_FRAMES_INTERP);
        assert_ptr_equal(pf_layout_later(r->major, r->minor), r);
        const struct pf_layout *base = pf_layout_debug_base(r->major, r->minor);
        assert_non_null(base);
        assert_int_equal(base->frames, r->frames);
        const struct pf_layout *same = pf_layout_find(r->major, r->minor, 0);
        if (same) {
            /* Generated now: the row must say what the headers say. */
            assert_ptr_equal(base, same);
            assert_int_equal(same->linetable, r->linetable);
            assert_int_equal(same->frames, r->frames);
            assert_int_equal(same->gil, r->gil);
            assert_int_equal(same->str, r->str);
            assert_int_equal(same->caps.has_runtime, r->caps.has_runtime);
            assert_int_equal(same->caps.incomplete_frames, r->caps.incomplete_frames);
            assert_int_equal(same->caps.thread_id, r->caps.thread_id);
            assert_int_equal(same->caps.instr, r->caps.instr);
            assert_int_equal(same->caps.owner_generator, r->caps.owner_generator);
            assert_int_equal(same->caps.shim_owners, r->caps.shim_owners);
            assert_string_equal(same->caps.eval_symbol, r->caps.eval_symbol);
        } else {
            assert_true(base->key.major == r->major && base->key.minor < r->minor);
        }
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", name);
        assert_true(w > 0 && (size_t)w < sizeof(list) - used);
        used += (size_t)w;
    }
    assert_string_equal(pf_layout_later_names(), list);
    assert_null(pf_layout_later_at(pf_layout_later_count()));
    assert_null(pf_layout_later(3, 99));
    assert_null(pf_layout_debug_base(3, 99));
    /* A version with a table is its own base. */
    assert_ptr_equal(pf_layout_debug_base(3, 13), pf_layout_find(3, 13, 0));
}

/* The key says what the entry was generated from. */
static void key_matches_source(void **state)
{
    const struct pf_layout *L = *state;
    char prefix[16];

    assert_int_equal(L->key.arch, THIS_ARCH);
    assert_true((L->key.flags & ~(unsigned)(PF_BUILD_FREE_THREADED | PF_BUILD_DEBUG)) == 0);
    /* .source is "X.Y.Z..." for key X.Y. */
    assert_non_null(L->source);
    snprintf(prefix, sizeof(prefix), "%u.%u.", L->key.major, L->key.minor);
    assert_true(strncmp(L->source, prefix, strlen(prefix)) == 0);
    /* pf_layout_find returns this very entry. */
    assert_ptr_equal(pf_layout_find(L->key.major, L->key.minor, L->key.flags), L);
}

static uint32_t key_rank(const struct pf_layout_key *k)
{
    return (uint32_t)k->major << 24 | (uint32_t)k->minor << 16 | (uint32_t)k->flags << 8 | k->arch;
}

/* Keys are unique and in (major, minor, flags, arch) order, as index.inc
 * promises and as pf_layout_supported() lists them. */
static void keys_unique_and_ordered(void **state)
{
    (void)state;
    assert_true(pf_layout_count() > 0);
    for (size_t i = 1; i < pf_layout_count(); i++) {
        const struct pf_layout *a = pf_layout_at(i - 1);
        const struct pf_layout *b = pf_layout_at(i);
        if (key_rank(&a->key) >= key_rank(&b->key)) {
            print_error("entry %zu (%s) is not after entry %zu (%s)\n", i, pf_layout_name(b), i - 1,
                        pf_layout_name(a));
            fail();
        }
    }
    assert_null(pf_layout_at(pf_layout_count()));
}

/* The versions the project promises (README.md, docs/usage.md) all have a default-build
 * table, and the supported list names exactly the table's entries. */
static void expected_versions_and_names(void **state)
{
    static const unsigned expected[][2] = {
        { 2, 7 }, { 3, 6 },  { 3, 7 },  { 3, 8 },  { 3, 9 },
        { 3, 10 }, { 3, 11 }, { 3, 12 }, { 3, 13 },
    };
    char list[512] = "";
    size_t used = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const struct pf_layout *L = pf_layout_find(expected[i][0], expected[i][1], 0);
        if (!L) {
            print_error("no table for %u.%u\n", expected[i][0], expected[i][1]);
            fail();
        }
    }
    for (size_t i = 0; i < pf_layout_count(); i++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                         pf_layout_name(pf_layout_at(i)));
        assert_true(w > 0 && (size_t)w < sizeof(list) - used);
        used += (size_t)w;
    }
    assert_string_equal(pf_layout_supported(), list);

    assert_string_equal(pf_layout_name(pf_layout_find(3, 11, 0)), "3.11");
    assert_string_equal(pf_layout_name(pf_layout_find(2, 7, 0)), "2.7");
    assert_string_equal(pf_layout_name(NULL), "unknown");
}

/* Lookups that must fail: unknown versions, and known versions with build
 * flags we have no table for (a debug or free-threaded build moves every
 * object field, docs/cpython-internals.md §12). */
static void find_rejects_unknown(void **state)
{
    (void)state;
    assert_null(pf_layout_find(2, 6, 0));
    assert_null(pf_layout_find(3, 5, 0));
    assert_null(pf_layout_find(3, 99, 0));
    assert_null(pf_layout_find(4, 0, 0));
    assert_null(pf_layout_find(0, 0, 0));
    assert_null(pf_layout_find(3, 11, PF_BUILD_DEBUG));
    assert_null(pf_layout_find(3, 11, PF_BUILD_FREE_THREADED)); /* free threading begins in 3.13 */
    /* The key is (major, minor), not a number that 3.1 and 31 could share. */
    assert_null(pf_layout_find(3, 1, 0));
    assert_null(pf_layout_find(31, 3, 0));
}

/* Values confirmed outside the generator: 3.11's interpreters.head at 40
 * agrees with py-spy's hand-typed offset, and the 3.13 values
 * equal the _Py_DebugOffsets that libpython3.13.so.1.0 carries in its
 * .PyRuntime section (read from the 3.13.0 file). If the generator or the
 * probe's field mapping regresses, these catch it even where --check skips. */
static void known_values(void **state)
{
    const struct pf_layout *L;

    (void)state;
    /* Every default build: PyObject is {ob_refcnt, ob_type}. */
    for (size_t i = 0; i < pf_layout_count(); i++) {
        L = pf_layout_at(i);
        if (L->key.flags == 0 && L->key.arch == PF_ARCH_X86_64) {
            assert_int_equal(L->object.ob_type.off, 8);
            assert_int_equal(L->object.ob_size.off, 16);
        }
    }
    if (THIS_ARCH != PF_ARCH_X86_64)
        return;

    L = pf_layout_find(3, 11, 0);
    assert_non_null(L);
    assert_int_equal(L->runtime.interp_head.off, 40);
    assert_int_equal(L->interp.threads_head.off, 16);
    assert_int_equal(L->tstate.frame.off, 56);
    assert_int_equal(L->cframe.current_frame.off, 8);
    assert_int_equal(L->iframe.code.off, 32);
    assert_int_equal(L->iframe.previous.off, 48);
    assert_int_equal(L->iframe.instr.off, 56);
    assert_int_equal(L->iframe.owner.off, 69);
    assert_int_equal(L->code.code_adaptive.off, 184);

    L = pf_layout_find(3, 13, 0);
    assert_non_null(L);
    assert_int_equal(L->runtime.interp_head.off, 632);
    assert_int_equal(L->interp.next.off, 7264);
    assert_int_equal(L->interp.threads_head.off, 7344);
    assert_int_equal(L->interp.ceval_gil.off, 16);
    assert_int_equal(L->tstate.frame.off, 72);
    assert_int_equal(L->tstate.thread_id.off, 152);
    assert_int_equal(L->tstate.native_thread_id.off, 160);
    assert_int_equal(L->iframe.code.off, 0);
    assert_int_equal(L->iframe.previous.off, 8);
    assert_int_equal(L->iframe.instr.off, 56);
    assert_int_equal(L->iframe.owner.off, 70);
    assert_int_equal(L->code.filename.off, 112);
    assert_int_equal(L->code.name.off, 120);
    assert_int_equal(L->code.qualname.off, 128);
    assert_int_equal(L->code.linetable.off, 136);
    assert_int_equal(L->code.firstlineno.off, 68);
    assert_int_equal(L->code.code_adaptive.off, 200);
    assert_int_equal(L->gilstate.locked.off, 16); /* gil_runtime_state_locked - gil_runtime_state */
    assert_int_equal(L->gilstate.last_holder.off, 8);
    assert_int_equal(L->unicode.ascii_size, 40);

    /* 3.12 dropped wstr from PyASCIIObject (docs/cpython-internals.md §9.2). */
    assert_int_equal(pf_layout_find(3, 11, 0)->unicode.ascii_size, 48);
    assert_int_equal(pf_layout_find(3, 12, 0)->unicode.ascii_size, 40);
}

int main(void)
{
    int failed = 0;
    const struct CMUnitTest table_tests[] = {
        cmocka_unit_test(keys_unique_and_ordered),
        cmocka_unit_test(expected_versions_and_names),
        cmocka_unit_test(find_rejects_unknown),
        cmocka_unit_test(known_values),
        cmocka_unit_test(later_rows),
    };

    failed += cmocka_run_group_tests_name("table", table_tests, NULL, NULL);

    /* The per-entry checks run once for every generated table, named after
     * its version so a failure says which one. */
    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate(fields_within_size, (void *)L),
            cmocka_unit_test_prestate(size_is_end_of_last_field, (void *)L),
            cmocka_unit_test_prestate(widths, (void *)L),
            cmocka_unit_test_prestate(presence_by_version, (void *)L),
            cmocka_unit_test_prestate(formats_by_version, (void *)L),
            cmocka_unit_test_prestate(caps_by_version, (void *)L),
            cmocka_unit_test_prestate(key_matches_source, (void *)L),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }
    return failed != 0;
}

/* layout-probe: print one struct pf_layout entry (include/pyflame/cpython/layout.h)
 * for the CPython whose headers this file is compiled against.
 *
 * scripts/gen-layouts compiles it once per installed interpreter with only
 * `-I <include dir>` and runs it; the output is committed as
 * src/cpython/layouts/cpython_X_Y.inc. The numbers are offsetof()/sizeof() evaluated
 * here by the compiler, against the real headers, so nothing is typed by hand.
 * It needs headers only, never libpython.
 *
 *   layout-probe --key        "MAJOR MINOR FLAGS HEXVERSION TAG VERSION", for the
 *                             script to pick and name files
 *   layout-probe [PATH]       the entry; PATH is the include dir to name in the
 *                             header comment
 *
 * The include recipe per version is docs/cpython-internals.md §1.2. */

/* patchlevel.h is self-contained, so we can learn the version before deciding
 * whether the internal headers are needed. */
#include <patchlevel.h>

/* From 3.7 the runtime, interpreter and GIL structs are internal; their
 * headers refuse to compile (3.8+: #error, 3.7: unknown _Py_atomic_int)
 * unless Py_BUILD_CORE is set before Python.h. 2.7 and 3.6 must not get it:
 * everything is public there and the define changes unrelated macros. */
#if PY_VERSION_HEX >= 0x03070000 && !defined(Py_BUILD_CORE)
#define Py_BUILD_CORE 1
#endif

#include <Python.h>
#include <frameobject.h>

#if PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION == 7
#include "internal/pystate.h" /* _PyRuntimeState, struct _gil_runtime_state */
#elif PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION == 8
#include "internal/pycore_pystate.h" /* _PyRuntimeState, PyInterpreterState */
#elif PY_VERSION_HEX >= 0x03090000
#include "internal/pycore_interp.h"  /* PyInterpreterState */
#include "internal/pycore_runtime.h" /* _PyRuntimeState */
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h" /* _PyInterpreterFrame, FRAME_OWNED_BY_* */
#endif
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if PY_MAJOR_VERSION < 2 || (PY_MAJOR_VERSION == 2 && PY_MINOR_VERSION < 7) || \
    (PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION < 6)
#error "pyflame supports CPython 2.7 and 3.6+"
#endif
#if PY_VERSION_HEX >= 0x030E0000
/* 3.14 changes f_executable to a tagged _PyStackRef and renumbers the frame
 * owners (docs/cpython-internals.md §11.2): the field mapping below must be
 * reviewed first. */
#error "CPython 3.14+: review the field mapping in layout-probe.c before generating"
#endif

/* Py_TRACE_REFS adds two pointers to every PyObject. Up to 3.7 only Py_DEBUG
 * turns it on (covered by PF_BUILD_DEBUG); from 3.8 it is a separate option
 * and the layout key has no flag for it, so refuse rather than emit a table
 * that a default-build key would match. */
#if defined(Py_TRACE_REFS) && PY_VERSION_HEX >= 0x03080000
#error "Py_TRACE_REFS build: struct pf_layout_key has no flag for it"
#endif

#if defined(__x86_64__)
#define ARCH_ENUM "PF_ARCH_X86_64"
#define ARCH_NAME "x86_64"
#elif defined(__aarch64__)
#define ARCH_ENUM "PF_ARCH_AARCH64"
#define ARCH_NAME "aarch64"
#else
#error "unsupported architecture: pyflame knows x86_64 and aarch64"
#endif

#define V(maj, min) (PY_MAJOR_VERSION == (maj) && PY_MINOR_VERSION == (min))
#define AT_LEAST(maj, min) \
    (PY_MAJOR_VERSION > (maj) || (PY_MAJOR_VERSION == (maj) && PY_MINOR_VERSION >= (min)))

/* One field: the name in struct pf_layout, the C path it came from (printed
 * as a comment so a reader can check it against the header), its offset and
 * its width. Atomic wrappers (_Py_atomic_int/_address) are measured as the
 * outer member: their single _value sits at offset 0 of the wrapper. */
struct fld {
    const char *name;
    const char *path;
    size_t off;
    size_t width;
};

#define FLD(nm, type, member) { #nm, #member, offsetof(type, member), sizeof(((type *)0)->member) }
#define ABSENT(nm) { #nm, NULL, 0, 0 }

/* Extra scalar members of a group (sizes, enum values). */
struct extra {
    const char *name;
    size_t value;
    const char *why;
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The end of the last present field: the prefix the reader must copy. */
static size_t used_size(const struct fld *f, size_t n)
{
    size_t end = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].width && f[i].off + f[i].width > end)
            end = f[i].off + f[i].width;
    return end;
}

/* has_size: 0 for groups without a size member (object); 1 to print the
 * computed end; 2 to print `size` as given (bytes). */
static void group(const char *name, const char *ctype, int has_size, size_t size,
                  const struct fld *f, size_t n, const struct extra *x, size_t nx)
{
    printf("    .%s = { /* %s */\n", name, ctype);
    if (has_size == 1)
        printf("        .size = %zu,\n", used_size(f, n));
    else if (has_size == 2)
        printf("        .size = %zu,\n", size);
    for (size_t i = 0; i < nx; i++)
        printf("        .%s = %zu, /* %s */\n", x[i].name, x[i].value, x[i].why);
    for (size_t i = 0; i < n; i++) {
        if (f[i].width)
            printf("        .%s = { %zu, %zu }, /* %s */\n", f[i].name, f[i].off, f[i].width,
                   f[i].path);
        else
            printf("        .%s = { 0, 0 }, /* absent */\n", f[i].name);
    }
    printf("    },\n");
}

static unsigned build_flags(void)
{
    unsigned flags = 0;
#ifdef Py_GIL_DISABLED
    flags |= 1u; /* PF_BUILD_FREE_THREADED */
#endif
#ifdef Py_DEBUG
    flags |= 2u; /* PF_BUILD_DEBUG */
#endif
    return flags;
}

static const char *flags_expr(void)
{
    switch (build_flags()) {
    case 0: return "0";
    case 1: return "PF_BUILD_FREE_THREADED";
    case 2: return "PF_BUILD_DEBUG";
    default: return "PF_BUILD_FREE_THREADED | PF_BUILD_DEBUG";
    }
}

static const char *flags_words(void)
{
    switch (build_flags()) {
    case 0: return "default build";
    case 1: return "free-threaded build";
    case 2: return "debug build";
    default: return "free-threaded debug build";
    }
}

/* File-name tag: 3_11, 3_13t, 3_12d, 3_13td (the suffixes CPython uses for
 * its own ABI tags). */
static void print_key(void)
{
    unsigned fl = build_flags();
    printf("%d %d %u 0x%08lx %d_%d%s%s %s\n", PY_MAJOR_VERSION, PY_MINOR_VERSION, fl,
           (unsigned long)PY_VERSION_HEX, PY_MAJOR_VERSION, PY_MINOR_VERSION, (fl & 1u) ? "t" : "",
           (fl & 2u) ? "d" : "", PY_VERSION);
}

static void print_entry(const char *incdir)
{
    printf("/* GENERATED by scripts/gen-layouts from the headers of CPython %s\n"
           " * (%s), %s, %s.\n"
           " * Do not edit; re-run the script. */\n",
           PY_VERSION, incdir, ARCH_NAME, flags_words());
    printf("{\n");
    printf("    .key = { .major = %d, .minor = %d, .arch = %s, .flags = %s },\n", PY_MAJOR_VERSION,
           PY_MINOR_VERSION, ARCH_ENUM, flags_expr());
    printf("    .source = \"%s\",\n", PY_VERSION);

    /* Formats, from docs/cpython-internals.md §1.4. */
#if PY_MAJOR_VERSION == 2
    printf("    .linetable = PF_LT_LNOTAB_27,\n");
#elif !AT_LEAST(3, 10)
    printf("    .linetable = PF_LT_LNOTAB_36,\n");
#elif V(3, 10)
    printf("    .linetable = PF_LT_LINETABLE_310,\n");
#else
    printf("    .linetable = PF_LT_LOCATIONS_311,\n");
#endif
#if !AT_LEAST(3, 11)
    printf("    .frames = PF_FRAMES_OBJECT,\n");
#elif !AT_LEAST(3, 13)
    printf("    .frames = PF_FRAMES_CFRAME,\n");
#else
    printf("    .frames = PF_FRAMES_INTERP,\n");
#endif
#if !AT_LEAST(3, 7)
    printf("    .gil = PF_GIL_CURRENT_SYMBOL,\n");
#elif !AT_LEAST(3, 12)
    printf("    .gil = PF_GIL_RUNTIME_CURRENT,\n");
#else
    printf("    .gil = PF_GIL_INTERP_GIL,\n");
#endif
#if PY_MAJOR_VERSION == 2
    printf("    .str = PF_STR_BYTES,\n");
#else
    printf("    .str = PF_STR_PEP393,\n");
#endif

    /* Capabilities (struct pf_layout_caps): what the readers branch on,
     * decided here, once per version, from the same headers. */
    printf("    .caps = {\n");
    printf("        .has_runtime = %s, /* _PyRuntimeState */\n", AT_LEAST(3, 7) ? "true" : "false");
#if AT_LEAST(3, 11)
    /* _PyFrame_IsIncomplete (Include/internal/pycore_frame.h). */
    printf("        .incomplete_frames = true, /* _co_firsttraceable */\n");
    printf("        .thread_id = PF_TID_NATIVE, /* PyThreadState.native_thread_id */\n");
    printf("        .instr = PF_INSTR_POINTER, /* %s */\n", AT_LEAST(3, 13) ? "instr_ptr" : "prev_instr");
    printf("        .owner_generator = %d, /* FRAME_OWNED_BY_GENERATOR */\n",
           (int)FRAME_OWNED_BY_GENERATOR);
#else
    printf("        .incomplete_frames = false,\n");
    printf("        .thread_id = PF_TID_PTHREAD, /* thread_id only */\n");
    /* 3.10 counts f_lasti in _Py_CODEUNITs (docs/cpython-internals.md §5.2). */
    printf("        .instr = %s,\n", V(3, 10) ? "PF_INSTR_LASTI_UNITS" : "PF_INSTR_LASTI_BYTES");
    printf("        .owner_generator = 0, /* no _PyInterpreterFrame */\n");
#endif
    /* The owners of frames that run no code of the program: the shim at the
     * base of each eval-loop call (enum _frameowner). */
#if AT_LEAST(3, 14)
    printf("        .shim_owners = 0x%02x, /* 1 << FRAME_OWNED_BY_INTERPRETER | 1 << "
           "FRAME_OWNED_BY_CSTACK */\n",
           1u << FRAME_OWNED_BY_INTERPRETER | 1u << FRAME_OWNED_BY_CSTACK);
#elif AT_LEAST(3, 12)
    printf("        .shim_owners = 0x%02x, /* 1 << FRAME_OWNED_BY_CSTACK */\n",
           1u << FRAME_OWNED_BY_CSTACK);
#else
    printf("        .shim_owners = 0, /* no shim frames */\n");
#endif
    /* 2.7's loop is PyEval_EvalFrameEx; from 3.6 that is a wrapper calling
     * _PyEval_EvalFrameDefault through interp->eval_frame (PEP 523). */
    printf("        .eval_symbol = \"%s\",\n",
           PY_MAJOR_VERSION == 2 ? "PyEval_EvalFrameEx" : "_PyEval_EvalFrameDefault");
    printf("    },\n");

    /* _PyRuntimeState exists from 3.7. The GIL moved into the interpreter in
     * 3.12 and tstate_current into a thread-local, so both leave it then. */
    {
        const struct fld f[] = {
#if AT_LEAST(3, 7)
            FLD(interp_head, _PyRuntimeState, interpreters.head),
            FLD(interp_main, _PyRuntimeState, interpreters.main),
#else
            ABSENT(interp_head),
            ABSENT(interp_main),
#endif
#if AT_LEAST(3, 7) && !AT_LEAST(3, 12)
            FLD(tstate_current, _PyRuntimeState, gilstate.tstate_current),
            FLD(gil_locked, _PyRuntimeState, ceval.gil.locked),
            FLD(gil_last_holder, _PyRuntimeState, ceval.gil.last_holder),
#else
            ABSENT(tstate_current),
            ABSENT(gil_locked),
            ABSENT(gil_last_holder),
#endif
        };
        group("runtime", "_PyRuntimeState", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
            FLD(next, PyInterpreterState, next),
#if AT_LEAST(3, 11)
            FLD(threads_head, PyInterpreterState, threads.head),
#else
            FLD(threads_head, PyInterpreterState, tstate_head),
#endif
#if AT_LEAST(3, 12)
            FLD(ceval_gil, PyInterpreterState, ceval.gil),
#else
            ABSENT(ceval_gil),
#endif
        };
        group("interp", "PyInterpreterState", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
            FLD(next, PyThreadState, next),
            FLD(interp, PyThreadState, interp),
#if !AT_LEAST(3, 11)
            FLD(frame, PyThreadState, frame),
#elif !AT_LEAST(3, 13)
            FLD(frame, PyThreadState, cframe),
#else
            FLD(frame, PyThreadState, current_frame),
#endif
            FLD(thread_id, PyThreadState, thread_id),
#if AT_LEAST(3, 11)
            FLD(native_thread_id, PyThreadState, native_thread_id),
#else
            ABSENT(native_thread_id),
#endif
#if V(3, 13)
            FLD(state, PyThreadState, state),
#else
            ABSENT(state),
#endif
        };
        group("tstate", "PyThreadState", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
#if AT_LEAST(3, 11) && !AT_LEAST(3, 13)
            FLD(current_frame, _PyCFrame, current_frame),
#else
            ABSENT(current_frame),
#endif
        };
        group("cframe", "_PyCFrame", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
#if !AT_LEAST(3, 11)
            FLD(back, PyFrameObject, f_back),
            FLD(code, PyFrameObject, f_code),
            FLD(lasti, PyFrameObject, f_lasti),
#else
            ABSENT(back),
            ABSENT(code),
            ABSENT(lasti),
#endif
        };
        group("pyframe", "PyFrameObject", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
#if AT_LEAST(3, 11)
            FLD(previous, _PyInterpreterFrame, previous),
#if !AT_LEAST(3, 13)
            FLD(code, _PyInterpreterFrame, f_code),
            FLD(instr, _PyInterpreterFrame, prev_instr),
#else
            FLD(code, _PyInterpreterFrame, f_executable),
            FLD(instr, _PyInterpreterFrame, instr_ptr),
#endif
            FLD(owner, _PyInterpreterFrame, owner),
#if V(3, 11)
            FLD(is_entry, _PyInterpreterFrame, is_entry),
#else
            ABSENT(is_entry),
#endif
#else
            ABSENT(previous),
            ABSENT(code),
            ABSENT(instr),
            ABSENT(owner),
            ABSENT(is_entry),
#endif
        };
        group("iframe", "_PyInterpreterFrame", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
            FLD(filename, PyCodeObject, co_filename),
            FLD(name, PyCodeObject, co_name),
#if AT_LEAST(3, 11)
            FLD(qualname, PyCodeObject, co_qualname),
#else
            ABSENT(qualname),
#endif
            FLD(firstlineno, PyCodeObject, co_firstlineno),
#if AT_LEAST(3, 10)
            FLD(linetable, PyCodeObject, co_linetable),
#else
            FLD(linetable, PyCodeObject, co_lnotab),
#endif
#if AT_LEAST(3, 11)
            /* A char[1] flexible tail: only its address is used (instr -
             * address = unit offset), but its width keeps it "present". */
            FLD(code_adaptive, PyCodeObject, co_code_adaptive),
            FLD(firsttraceable, PyCodeObject, _co_firsttraceable),
#else
            ABSENT(code_adaptive),
            ABSENT(firsttraceable),
#endif
        };
        group("code", "PyCodeObject", 1, 0, f, NELEM(f), NULL, 0);
    }

    {
        const struct fld f[] = {
            FLD(ob_type, PyObject, ob_type),
            FLD(ob_size, PyVarObject, ob_size),
        };
        group("object", "PyObject / PyVarObject", 0, 0, f, NELEM(f), NULL, 0);
    }

    /* Only the header is copied: ob_sval is where the characters start. */
    {
#if PY_MAJOR_VERSION == 2
        const struct fld f[] = {
            FLD(ob_size, PyStringObject, ob_size),
            FLD(ob_sval, PyStringObject, ob_sval),
        };
        group("bytes", "PyStringObject", 2, offsetof(PyStringObject, ob_sval), f, NELEM(f), NULL,
              0);
#else
        const struct fld f[] = {
            FLD(ob_size, PyBytesObject, ob_base.ob_size),
            FLD(ob_sval, PyBytesObject, ob_sval),
        };
        group("bytes", "PyBytesObject", 2, offsetof(PyBytesObject, ob_sval), f, NELEM(f), NULL,
              0);
#endif
    }

    {
#if PY_MAJOR_VERSION >= 3
        /* `state` is a struct of bitfields: measured whole, as the reader
         * masks its low byte (docs/cpython-internals.md §9.2). */
        const struct fld f[] = {
            FLD(length, PyASCIIObject, length),
            FLD(state, PyASCIIObject, state),
            FLD(data, PyUnicodeObject, data),
        };
        const struct extra x[] = {
            { "ascii_size", sizeof(PyASCIIObject), "sizeof(PyASCIIObject)" },
            { "compact_size", sizeof(PyCompactUnicodeObject), "sizeof(PyCompactUnicodeObject)" },
        };
#else
        const struct fld f[] = {
            ABSENT(length),
            ABSENT(state),
            ABSENT(data),
        };
        const struct extra x[] = {
            { "ascii_size", 0, "no PEP 393 strings" },
            { "compact_size", 0, "no PEP 393 strings" },
        };
#endif
        group("unicode", "PyASCIIObject / PyUnicodeObject", 1, 0, f, NELEM(f), x, NELEM(x));
    }

    {
        const struct fld f[] = {
#if AT_LEAST(3, 12)
            FLD(locked, struct _gil_runtime_state, locked),
            FLD(last_holder, struct _gil_runtime_state, last_holder),
#else
            ABSENT(locked),
            ABSENT(last_holder),
#endif
        };
        group("gilstate", "struct _gil_runtime_state, through interp->ceval.gil", 1, 0, f,
              NELEM(f), NULL, 0);
    }

    printf("},\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--key") == 0) {
        print_key();
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "usage: %s --key | %s [INCLUDE-DIR-TO-NAME]\n", argv[0], argv[0]);
        return 2;
    }
    print_entry(argc == 2 ? argv[1] : "unknown include directory");
    return 0;
}

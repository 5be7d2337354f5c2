/* Discovery checks that need no live process:
 *
 * - interp_head in stripped 2.7/3.6: pf_interp_find_head on the real
 *   libpython2.7/3.6 (pyenv) gives the .symtab symbol, and on a copy
 *   stripped with objcopy --strip-all (made next to this test in the build
 *   directory) the same address, decoded from PyInterpreterState_Head.
 * - pf_interp_validate over a fake runtime, once per generated layout: a
 *   consistent interpreter and thread state pass; an uninitialised one is
 *   "not ready"; a thread state that does not point back, an unreadable
 *   interpreter or GIL, and every other version's layout read over this
 *   memory are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_python.h"
#include "pyflame/target/elf.h"
#include "pyflame/target/image.h"
#include "pyflame/cpython/discover.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/target/mem.h"

/* ---- interp_head in real, stripped libpythons ---- */

static char *newest(const char *pattern)
{
    glob_t g;
    char *path = NULL;
    if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0)
        path = strdup(g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    return path;
}

/* $(pyenv root)/versions/X.Y.*\/lib/<lib>, newest patch; NULL if absent. */
static char *find_lib(const char *minor, const char *lib)
{
    char pattern[PATH_MAX];
    const char *root = getenv("PYENV_ROOT");
    char *path = NULL;

    if (root && *root) {
        snprintf(pattern, sizeof(pattern), "%s/versions/%s.*/lib/%s", root, minor, lib);
        path = newest(pattern);
    }
    if (!path && getenv("HOME")) {
        snprintf(pattern, sizeof(pattern), "%s/.pyenv/versions/%s.*/lib/%s", getenv("HOME"), minor,
                 lib);
        path = newest(pattern);
    }
    return path;
}

static struct pf_elf *open_ok(const char *path)
{
    struct pf_elf *e = NULL;
    struct pf_diag diag = {{0}};
    if (pf_elf_open(path, &diag, &e) != PF_OK)
        fail_msg("%s", diag.msg);
    return e;
}

/* A --strip-all copy of path in this test's build directory. */
static void strip_copy(const char *path, const char *name, char *out, size_t cap)
{
    char self[PATH_MAX], cmd[3 * PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    assert_true(n > 0);
    self[n] = '\0';
    snprintf(out, cap, "%s/%s", dirname(self), name);
    snprintf(cmd, sizeof(cmd), "objcopy --strip-all '%s' '%s'", path, out);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

static void head_found_stripped(const char *minor, const char *lib)
{
    char *path = find_lib(minor, lib), stripped[PATH_MAX], name[64];
    struct pf_elf *full, *bare;
    uint64_t sym = 0, v = 0x5a5a, size;
    const char *how = NULL;

    if (!path) {
        print_message("CPython %s not installed (pyenv): skipped\n", minor);
        skip();
    }
    if (system("command -v objcopy >/dev/null 2>&1") != 0) {
        print_message("objcopy not installed: skipped\n");
        free(path);
        skip();
    }
    full = open_ok(path);
    assert_int_equal(pf_elf_symbol(full, "interp_head", &sym, &size), PF_OK);
    assert_int_equal(pf_interp_find_head(full, &v, &how), PF_OK);
    assert_string_equal(how, "symbol interp_head");
    assert_int_equal(v, sym);

    snprintf(name, sizeof(name), "%s.stripped", lib);
    strip_copy(path, name, stripped, sizeof(stripped));
    bare = open_ok(stripped);
    assert_int_equal(pf_elf_section(bare, ".symtab", NULL, NULL), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_symbol(bare, "interp_head", NULL, NULL), PF_ERR_NOTFOUND);
    v = 0;
    assert_int_equal(pf_interp_find_head(bare, &v, &how), PF_OK);
    assert_string_equal(how, "the code of PyInterpreterState_Head");
    assert_int_equal(v, sym);
    print_message("%s: interp_head at 0x%llx, found again in the stripped copy\n", path,
                  (unsigned long long)v);
    pf_elf_close(bare);
    pf_elf_close(full);
    free(path);
}

static void head_27(void **state)
{
    (void)state;
    head_found_stripped("2.7", "libpython2.7.so.1.0");
}

static void head_36(void **state)
{
    (void)state;
    head_found_stripped("3.6", "libpython3.6m.so.1.0");
}

/* 3.10+: PyInterpreterState_Head reads _PyRuntime, which lives in its own
 * .PyRuntime section, not in .data/.bss: the decoder must not take that
 * for interp_head. */
static void head_not_in_311(void **state)
{
    (void)state;
    char *path = find_lib("3.11", "libpython3.11.so.1.0");
    uint64_t v = 0x5a5a;
    const char *how = NULL;

    if (!path)
        skip();
    struct pf_elf *e = open_ok(path);
    assert_int_equal(pf_interp_find_head(e, &v, &how), PF_ERR_NOTFOUND);
    assert_int_equal(v, 0x5a5a);
    pf_elf_close(e);
    free(path);
}

/* ---- pf_interp_validate over a fake runtime ---- */

#define RUNTIME 0x100000ull /* _PyRuntime, or the 2.7/3.6 variables */
#define CURRENT_VAR 0x100040ull
#define INTERP 0x200000ull
#define TSTATE 0x400000ull
#define GIL 0x300000ull
#define FRAME 0x500000ull
#define CODE 0x600000ull
#define REGION 0x10000

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem mem;
    struct pf_target t;
};

/* Map a region filled with a non-zero pattern, so that reading a field at
 * the wrong offset gives an unmapped pointer, as garbage would. */
static void region(struct pf_image *img, uint64_t addr)
{
    static uint8_t junk[REGION];
    memset(junk, 0x5a, sizeof(junk));
    assert_int_equal(pf_image_map(img, addr, REGION), PF_OK);
    assert_int_equal(pf_image_write(img, addr, junk, sizeof(junk)), PF_OK);
}

static void put(struct fixture *f, uint64_t addr, struct pf_field field, uint64_t v)
{
    assert_int_not_equal(field.width, 0);
    assert_int_equal(pf_image_write_uint(f->img, addr + field.off, v, field.width), PF_OK);
}

/* A runtime with one interpreter and one thread, built through `build`;
 * the target reads it through f->L. */
static void make(struct fixture *f, const struct pf_layout *build)
{
    assert_int_equal(pf_image_new(&f->img), PF_OK);
    region(f->img, RUNTIME);
    region(f->img, INTERP);
    region(f->img, TSTATE);
    region(f->img, GIL);
    if (build->runtime.size) {
        put(f, RUNTIME, build->runtime.interp_head, INTERP);
        if (build->runtime.interp_main.width)
            put(f, RUNTIME, build->runtime.interp_main, INTERP);
        if (build->runtime.tstate_current.width)
            put(f, RUNTIME, build->runtime.tstate_current, 0);
    } else {
        assert_int_equal(pf_image_write_uint(f->img, RUNTIME, INTERP, 8), PF_OK);
        assert_int_equal(pf_image_write_uint(f->img, CURRENT_VAR, 0, 8), PF_OK);
    }
    put(f, INTERP, build->interp.next, 0);
    put(f, INTERP, build->interp.threads_head, TSTATE);
    if (build->interp.ceval_gil.width)
        put(f, INTERP, build->interp.ceval_gil, GIL);
    put(f, TSTATE, build->tstate.next, 0);
    put(f, TSTATE, build->tstate.interp, INTERP);
    /* The thread runs f() of app.py. */
    static const uint8_t table[] = {0x80, 0x00};
    uint64_t code = fake_code(f->img, build, CODE, "app.py", "f", 1, table, sizeof(table));
    fake_frame(f->img, build, FRAME, code, 0, fake_instr(build, code, 0), 0);
    if (build->frames == PF_FRAMES_CFRAME) {
        put(f, TSTATE, build->tstate.frame, TSTATE + 0x800);
        put(f, TSTATE + 0x800, build->cframe.current_frame, FRAME);
    } else {
        put(f, TSTATE, build->tstate.frame, FRAME);
    }
    assert_int_equal(pf_mem_open_image(f->img, &f->mem), PF_OK);
    memset(&f->t, 0, sizeof(f->t));
    f->t.layout = f->L;
    f->t.types = (struct pf_pytypes){FAKE_TYPE_CODE, FAKE_TYPE_STR, FAKE_TYPE_BYTES};
    if (f->L->runtime.size) {
        f->t.runtime_addr = RUNTIME;
    } else {
        f->t.interp_head_addr = RUNTIME;
        f->t.tstate_current_addr = CURRENT_VAR;
    }
}

static void unmake(struct fixture *f)
{
    pf_mem_close(&f->mem);
    pf_image_free(f->img);
    f->img = NULL;
}

static pf_err validate(struct fixture *f, char *msg, size_t cap)
{
    struct pf_diag diag = {{0}};
    pf_err err = pf_interp_validate(&f->mem, &f->t, &diag);
    if (msg)
        snprintf(msg, cap, "%s", diag.msg);
    return err;
}

static void valid_runtime_passes(void **state)
{
    struct fixture f = {.L = *state};
    char msg[PF_DIAG_LEN];

    make(&f, f.L);
    pf_err err = validate(&f, msg, sizeof(msg));
    if (err)
        fail_msg("%s: %s", pf_strerror(err), msg);
    unmake(&f);
}

/* A thread in C code, with no Python frame, leaves nothing to check. */
static void no_frame_passes(void **state)
{
    struct fixture f = {.L = *state};
    char msg[PF_DIAG_LEN];

    make(&f, f.L);
    if (f.L->frames == PF_FRAMES_CFRAME)
        put(&f, TSTATE + 0x800, f.L->cframe.current_frame, 0);
    else
        put(&f, TSTATE, f.L->tstate.frame, 0);
    pf_err err = validate(&f, msg, sizeof(msg));
    if (err)
        fail_msg("%s: %s", pf_strerror(err), msg);
    unmake(&f);
}

static void uninitialised_is_not_ready(void **state)
{
    struct fixture f = {.L = *state};
    char msg[PF_DIAG_LEN];

    /* No interpreter yet. */
    make(&f, f.L);
    if (f.L->runtime.size) {
        put(&f, RUNTIME, f.L->runtime.interp_head, 0);
        if (f.L->runtime.interp_main.width)
            put(&f, RUNTIME, f.L->runtime.interp_main, 0);
    } else {
        assert_int_equal(pf_image_write_uint(f.img, RUNTIME, 0, 8), PF_OK);
    }
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_NOTREADY);
    assert_non_null(strstr(msg, "not initialised"));
    unmake(&f);

    /* An interpreter with no thread yet. */
    make(&f, f.L);
    put(&f, INTERP, f.L->interp.threads_head, 0);
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_NOTREADY);
    assert_non_null(strstr(msg, "no thread"));
    unmake(&f);

    /* 3.12+: a thread, but no GIL created yet. */
    if (f.L->interp.ceval_gil.width) {
        make(&f, f.L);
        put(&f, INTERP, f.L->interp.ceval_gil, 0);
        assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_NOTREADY);
        unmake(&f);
    }
}

static void inconsistent_is_corrupt(void **state)
{
    struct fixture f = {.L = *state};
    char msg[PF_DIAG_LEN];

    /* The thread state names another interpreter. */
    make(&f, f.L);
    put(&f, TSTATE, f.L->tstate.interp, INTERP + 0x100);
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_CORRUPT);
    assert_non_null(strstr(msg, "does not look like one"));
    unmake(&f);

    /* The interpreter pointer leads nowhere. */
    make(&f, f.L);
    if (f.L->runtime.size) {
        put(&f, RUNTIME, f.L->runtime.interp_head, 0xdead0000);
        if (f.L->runtime.interp_main.width)
            put(&f, RUNTIME, f.L->runtime.interp_main, 0xdead0000);
    } else {
        assert_int_equal(pf_image_write_uint(f.img, RUNTIME, 0xdead0000, 8), PF_OK);
    }
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_CORRUPT);
    unmake(&f);

    /* The thread state leads nowhere. */
    make(&f, f.L);
    put(&f, INTERP, f.L->interp.threads_head, 0xdead0000);
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_CORRUPT);
    assert_non_null(strstr(msg, "cannot be read"));
    unmake(&f);

    /* The frame's code is not a code object. */
    make(&f, f.L);
    assert_int_equal(pf_image_write_uint(f.img, CODE + f.L->object.ob_type.off, 0x7777, 8), PF_OK);
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_CORRUPT);
    assert_non_null(strstr(msg, "not a code object"));
    unmake(&f);

    /* Its name is not a string. */
    make(&f, f.L);
    uint64_t name = 0;
    assert_int_equal(pf_mem_read(&f.mem, CODE + f.L->code.name.off, &name, 8), PF_OK);
    assert_int_equal(pf_image_write_uint(f.img, name + f.L->object.ob_type.off, 0x7777, 8), PF_OK);
    assert_int_equal(validate(&f, msg, sizeof(msg)), PF_ERR_CORRUPT);
    assert_non_null(strstr(msg, "not a string"));
    unmake(&f);

    /* Where the GIL holder is read is unreadable. */
    make(&f, f.L);
    if (f.L->gil == PF_GIL_INTERP_GIL)
        put(&f, INTERP, f.L->interp.ceval_gil, 0xdead0000);
    else if (f.L->gil == PF_GIL_CURRENT_SYMBOL)
        f.t.tstate_current_addr = 0xdead0000;
    else
        f.t.runtime_addr = RUNTIME + REGION - 4; /* runtime fields past the mapping */
    assert_int_not_equal(validate(&f, msg, sizeof(msg)), PF_OK);
    unmake(&f);
}

/* The fields validation reads: a layout that has them all where L has them
 * would pass over L's memory, rightly. */
static bool same_path(const struct pf_layout *a, const struct pf_layout *b)
{
    if (!!a->runtime.size != !!b->runtime.size)
        return false;
    struct pf_field am =
        a->runtime.interp_main.width ? a->runtime.interp_main : a->runtime.interp_head;
    struct pf_field bm =
        b->runtime.interp_main.width ? b->runtime.interp_main : b->runtime.interp_head;
    return am.off == bm.off && a->interp.threads_head.off == b->interp.threads_head.off &&
           a->tstate.interp.off == b->tstate.interp.off && a->gil == b->gil &&
           a->frames == b->frames && a->tstate.frame.off == b->tstate.frame.off &&
           a->cframe.current_frame.off == b->cframe.current_frame.off &&
           a->pyframe.code.off == b->pyframe.code.off && a->iframe.code.off == b->iframe.code.off &&
           a->code.name.off == b->code.name.off && a->code.filename.off == b->code.filename.off;
}

/* Memory of this version read with any other version's layout (as a wrong
 * --abi would) must be refused, not trusted. */
static void other_layouts_refused(void **state)
{
    const struct pf_layout *mine = *state;
    size_t refused = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *other = pf_layout_at(i);
        if (other == mine || same_path(other, mine))
            continue;
        struct fixture f = {.L = other};
        char msg[PF_DIAG_LEN];
        make(&f, mine);
        pf_err err = validate(&f, msg, sizeof(msg));
        if (err != PF_ERR_CORRUPT)
            fail_msg("%s memory read as %s: %s (%s)", pf_layout_name(mine), pf_layout_name(other),
                     pf_strerror(err), msg);
        refused++;
        unmake(&f);
    }
    print_message("%s: %zu other layouts refused\n", pf_layout_name(mine), refused);
}

int main(void)
{
    int failed = 0;
    const struct CMUnitTest elf_tests[] = {
        cmocka_unit_test(head_27),
        cmocka_unit_test(head_36),
        cmocka_unit_test(head_not_in_311),
    };
    failed += cmocka_run_group_tests_name("interp_head", elf_tests, NULL, NULL);

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate(valid_runtime_passes, (void *)L),
            cmocka_unit_test_prestate(no_frame_passes, (void *)L),
            cmocka_unit_test_prestate(uninitialised_is_not_ready, (void *)L),
            cmocka_unit_test_prestate(inconsistent_is_corrupt, (void *)L),
            cmocka_unit_test_prestate(other_layouts_refused, (void *)L),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }
    return failed != 0;
}

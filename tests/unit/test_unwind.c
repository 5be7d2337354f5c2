/* The native unwinder on a live process: this test forks a child that runs
 * a known call chain, seizes it, and unwinds it while it is stopped. The
 * chain includes functions named like CPython's eval loop and call
 * plumbing, and the unwinder is told this test binary is "the
 * interpreter", so naming, classification and pf_merge run end to end
 * without a Python. Checked: exact function names in call order, the walk
 * reaching _start, a sleeping child inside libc's sleep call and in a
 * system call, pc-1 lookup for return addresses, and a vanished thread.
 * Skipped (77) in a build without libunwind. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pyflame/target/elf.h"
#include "pyflame/base/intern.h"
#include "pyflame/base/limits.h"
#include "pyflame/target/maps.h"
#include "pyflame/target/mem.h"
#include "pyflame/native/merge.h"
#include "pyflame/target/proc.h"
#include "pyflame/native/unwind.h"
#include "pyflame/output/writer.h"

/* The child's call chain, outermost first:
 *   main -> run_child -> _PyEval_EvalFrameDefault -> PyObject_Call
 *        -> ext_function -> _PyEval_EvalFrameDefault (again) -> spin_leaf
 * Each is noinline and does work after its call, so no call becomes a
 * jump. `volatile` keeps the loops and the depth counter alive. */
#define NOINLINE __attribute__((noinline, used))
static volatile int g_mode; /* 0: spin, 1: sleep */
static volatile unsigned long g_counter;

/* Defined here with external linkage: they are the "interpreter's"
 * functions of this test. */
int _PyEval_EvalFrameDefault(int depth);
int PyObject_Call(int depth);
int ext_function(int depth);
int spin_leaf(void);

NOINLINE int spin_leaf(void)
{
    if (g_mode == 1) {
        for (;;) {
            struct timespec ts = {10, 0};
            nanosleep(&ts, NULL);
            g_counter++;
        }
    }
    for (;;)
        g_counter++;
    return (int)g_counter;
}

NOINLINE int ext_function(int depth)
{
    int r = _PyEval_EvalFrameDefault(depth + 1);
    g_counter += (unsigned long)r;
    return r + 1;
}

NOINLINE int PyObject_Call(int depth)
{
    int r = ext_function(depth);
    g_counter += (unsigned long)r;
    return r + 1;
}

NOINLINE int _PyEval_EvalFrameDefault(int depth)
{
    int r = depth < 1 ? PyObject_Call(depth) : spin_leaf();
    g_counter += (unsigned long)r;
    return r + 1;
}

static NOINLINE int run_child(void)
{
    int r = _PyEval_EvalFrameDefault(0);
    g_counter += (unsigned long)r;
    return r;
}

struct fixture {
    pid_t child;
    struct pf_proc *proc;
    struct pf_mem mem;
    struct pf_intern *names;
    struct pf_unwind *u;
    char self[4096];
    const char *base; /* our file name, as frames show it */
};

static int start(void **state, int mode)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct pf_diag diag = {{0}};

    assert_non_null(fx);
    ssize_t n = readlink("/proc/self/exe", fx->self, sizeof(fx->self) - 1);
    assert_true(n > 0);
    fx->self[n] = '\0';
    fx->base = strrchr(fx->self, '/') + 1;
    g_mode = mode;
    fx->child = fork();
    assert_true(fx->child >= 0);
    if (fx->child == 0) {
        run_child();
        _exit(0);
    }
    usleep(50000); /* let it reach its loop */
    if (pf_proc_attach(fx->child, false, &diag, &fx->proc) != PF_OK)
        fail_msg("attach: %s", diag.msg);
    assert_int_equal(pf_mem_open_pid(fx->child, &fx->mem), PF_OK);
    assert_int_equal(pf_intern_new(&fx->names), PF_OK);
    if (pf_unwind_new(fx->child, &fx->mem, fx->names, fx->self, "_PyEval_EvalFrameDefault", &diag, &fx->u) != PF_OK)
        fail_msg("unwinder: %s", diag.msg);
    *state = fx;
    return 0;
}

static int start_spinning(void **state)
{
    return start(state, 0);
}

static int start_sleeping(void **state)
{
    return start(state, 1);
}

static int stop(void **state)
{
    struct fixture *fx = *state;
    pf_unwind_free(fx->u);
    pf_proc_detach(fx->proc);
    kill(fx->child, SIGKILL);
    waitpid(fx->child, NULL, 0);
    pf_mem_close(&fx->mem);
    pf_intern_free(fx->names);
    free(fx);
    return 0;
}

/* Stop, unwind, resume, name: the frames' texts innermost first. */
static size_t sample(struct fixture *fx, struct pf_native_item *items, char text[][256], size_t cap,
                     enum pf_unwind_end *end, bool *in_syscall)
{
    struct pf_native_frame frames[64];
    size_t n = 0;

    assert_true(cap <= 64);
    assert_int_equal(pf_proc_stop_thread(fx->proc, fx->child), PF_OK);
    pf_err err = pf_unwind_thread(fx->u, fx->child, frames, cap, &n, end, in_syscall);
    pf_proc_resume_thread(fx->proc, fx->child);
    assert_int_equal(err, PF_OK);
    assert_int_equal(pf_unwind_symbolize(fx->u, frames, n, items), PF_OK);
    for (size_t i = 0; i < n; i++)
        pf_writer_frame_text(fx->names, items[i].frame, text[i], sizeof(text[i]));
    return n;
}

static size_t find(char text[][256], size_t n, const char *want, size_t from)
{
    for (size_t i = from; i < n; i++)
        if (strcmp(text[i], want) == 0)
            return i;
    return (size_t)-1;
}

static void print(char text[][256], const struct pf_native_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  #%zu %s [%d]\n", i, items[i].kind == PF_NATIVE_SHOW ? text[i] : "",
                items[i].kind);
}

/* The whole chain, by name, in order, classified, down to _start. */
static void spinning_chain(void **state)
{
    struct fixture *fx = *state;
    struct pf_native_item items[64];
    char text[64][256], want[256];
    enum pf_unwind_end end;
    bool in_syscall = true;

    /* Warm and cold samples must agree. */
    for (int round = 0; round < 3; round++) {
        size_t n = sample(fx, items, text, 64, &end, &in_syscall);
        if (end != PF_UNWIND_WHOLE || n < 8) {
            print(text, items, n);
            fail_msg("unwind ended %d after %zu frames", end, n);
        }
        assert_false(in_syscall); /* it was running user code */
        const char *chain[] = {"spin_leaf",     "_PyEval_EvalFrameDefault", "ext_function",
                               "PyObject_Call", "_PyEval_EvalFrameDefault", "run_child"};
        size_t at = 0;
        for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
            snprintf(want, sizeof(want), "%s (%s)", chain[i], fx->base);
            size_t k = find(text, n, want, at);
            if (k == (size_t)-1) {
                print(text, items, n);
                fail_msg("no frame '%s' after #%zu", want, at);
            }
            /* Consecutive: nothing was invented between two known calls. */
            if (i > 0 && k != at) {
                print(text, items, n);
                fail_msg("'%s' at #%zu, want #%zu", want, k, at);
            }
            at = k + 1;
        }
        /* run_child is called from cmocka (the test's setup), called from
         * our main, called from libc's start-up. */
        snprintf(want, sizeof(want), "main (%s)", fx->base);
        if (find(text, n, want, at) == (size_t)-1) {
            print(text, items, n);
            fail_msg("no '%s' below run_child", want);
        }
        snprintf(want, sizeof(want), "_start (%s)", fx->base);
        if (strcmp(text[n - 1], want) != 0) {
            print(text, items, n);
            fail_msg("root frame '%s', want '%s'", text[n - 1], want);
        }
        /* Kinds: this binary is "the interpreter". */
        snprintf(want, sizeof(want), "spin_leaf (%s)", fx->base);
        size_t leaf = find(text, n, want, 0);
        assert_int_equal(items[leaf].kind, PF_NATIVE_SHOW);
        assert_int_equal(items[leaf + 1].kind, PF_NATIVE_EVAL);
        assert_int_equal(items[leaf + 2].kind, PF_NATIVE_SHOW); /* ext_function */
        assert_int_equal(items[leaf + 3].kind, PF_NATIVE_HIDE); /* PyObject_Call */
        assert_int_equal(items[leaf + 4].kind, PF_NATIVE_EVAL);

        /* And through pf_merge with two runs of fake Python frames. */
        const uint32_t py[] = {101, 102, PF_MERGE_RUN_END, 103, PF_MERGE_RUN_END};
        const struct pf_merge_marks marks = {901, 902};
        uint32_t out[64 + 8];
        size_t m = 0;
        assert_int_equal(pf_merge(items, n, true, py, 5, true, &marks, out, &m), PF_MERGE_OK);
        assert_int_equal(out[leaf], items[leaf].frame);
        assert_int_equal(out[leaf + 1], 101);
        assert_int_equal(out[leaf + 2], 102);
        assert_int_equal(out[leaf + 3], items[leaf + 2].frame); /* ext_function */
        assert_int_equal(out[leaf + 4], 103);                   /* PyObject_Call is gone */
        assert_int_equal(
            m, n - 2 - 1 + 3); /* two evals and one plumbing frame out, three Python frames in */
    }
}

/* libc without .symtab but with its debug file installed (Debian's
 * libc6-dbg, found by build ID): a local function of libc that only the
 * debug file names shows by name. Skipped where that file is absent. */
static void debug_file_names_libc(void **state)
{
    struct fixture *fx = *state;
    struct pf_maps maps = {0};
    struct pf_elf *libc = NULL;
    char path[4096] = "", hex[129], debug[4096 + 64];
    uint8_t id[64];
    size_t idlen = 0;

    assert_int_equal(pf_maps_read(getpid(), NULL, &maps), PF_OK);
    for (size_t i = 0; i < maps.n && !path[0]; i++)
        if (maps.v[i].path && strstr(maps.v[i].path, "/libc.so"))
            snprintf(path, sizeof(path), "%s", maps.v[i].path);
    pf_maps_free(&maps);
    if (!path[0] || pf_elf_open(path, NULL, &libc) != PF_OK)
        skip();
    bool stripped = !pf_elf_has_symtab(libc);
    bool have_id = pf_elf_build_id(libc, id, sizeof(id), &idlen) == PF_OK;
    pf_elf_close(libc);
    if (!stripped || !have_id)
        skip();
    for (size_t i = 0; i < idlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
    if (access(debug, R_OK) != 0)
        skip();

    struct pf_native_item items[64];
    char text[64][256];
    enum pf_unwind_end end;
    bool in_syscall;
    size_t n = sample(fx, items, text, 64, &end, &in_syscall);
    if (find(text, n, "__libc_start_call_main (libc.so.6)", 0) == (size_t)-1) {
        print(text, items, n);
        fail_msg("%s has a debug file (%s) but __libc_start_call_main is not named", path, debug);
    }
}

/* A cap shorter than the stack: exactly cap frames, and said so. */
static void capped(void **state)
{
    struct fixture *fx = *state;
    struct pf_native_item items[64];
    char text[64][256];
    enum pf_unwind_end end;
    bool in_syscall;

    char want[256];
    size_t n = sample(fx, items, text, 3, &end, &in_syscall);
    assert_int_equal(n, 3);
    assert_int_equal(end, PF_UNWIND_CAPPED);
    snprintf(want, sizeof(want), "spin_leaf (%s)", fx->base);
    assert_string_equal(text[0], want);
}

/* Blocked in nanosleep: the stack goes through libc's sleep call, and the
 * thread was stopped inside a system call. */
static void sleeping_in_libc(void **state)
{
    struct fixture *fx = *state;
    struct pf_native_item items[64];
    char text[64][256];
    enum pf_unwind_end end;
    bool in_syscall = false;

    char want[256];
    size_t n = sample(fx, items, text, 64, &end, &in_syscall);
    assert_int_equal(end, PF_UNWIND_WHOLE);
    assert_true(in_syscall);
    snprintf(want, sizeof(want), "spin_leaf (%s)", fx->base);
    size_t leaf = find(text, n, want, 0);
    if (leaf == (size_t)-1 || leaf == 0) {
        print(text, items, n);
        fail_msg("no libc frame under spin_leaf");
    }
    bool libc = false;
    for (size_t i = 0; i < leaf; i++)
        libc = libc || strcmp(text[i], "clock_nanosleep (libc.so.6)") == 0 ||
               strcmp(text[i], "nanosleep (libc.so.6)") == 0;
    if (!libc) {
        print(text, items, n);
        fail_msg("no clock_nanosleep/nanosleep (libc.so.6) frame");
    }
}

/* A thread that is gone: an error, not a crash or a made-up stack. */
static void gone_thread(void **state)
{
    struct fixture *fx = *state;
    struct pf_native_frame frames[8];
    size_t n = 77;
    enum pf_unwind_end end;
    bool in_syscall;

    /* Not stopped (running): ptrace refuses to read its registers. */
    assert_int_not_equal(pf_unwind_thread(fx->u, fx->child, frames, 8, &n, &end, &in_syscall),
                         PF_OK);
    assert_int_equal(n, 77);
}

int main(void)
{
    if (!pf_unwind_available()) {
        printf("skipped: built without libunwind (-Dnative)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spinning_chain, start_spinning, stop),
        cmocka_unit_test_setup_teardown(capped, start_spinning, stop),
        cmocka_unit_test_setup_teardown(debug_file_names_libc, start_spinning, stop),
        cmocka_unit_test_setup_teardown(sleeping_in_libc, start_sleeping, stop),
        cmocka_unit_test_setup_teardown(gone_thread, start_spinning, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The interpreter, thread list and GIL holder over a fake runtime, once per
 * generated layout: interp_head / _PyThreadState_Current variables (2.7,
 * 3.6), _PyRuntime's interpreters and gilstate (3.7-3.11), interp->ceval.gil
 * (3.12+). Cases: not initialised, holder present, nobody holding (with a
 * stale last holder), per-interpreter GILs, thread lists in order, looping
 * and unmapped lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_python.h"
#include "pyflame/target/image.h"
#include "pyflame/cpython/discover.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/base/limits.h"
#include "pyflame/target/mem.h"

#define RUNTIME 0x100000ull     /* _PyRuntime, or the 2.7/3.6 variables */
#define CURRENT_VAR 0x100040ull /* 2.7/3.6 _PyThreadState_Current */
#define INTERP_MAIN 0x200000ull
#define INTERP_SUB 0x210000ull
#define GIL_MAIN 0x300000ull /* 3.12+ interp->_gil, wherever it is */
#define GIL_SUB 0x301000ull
#define TSTATES 0x400000ull /* thread state i at TSTATES + i * 0x1000 */
#define UNMAPPED 0xdead0000ull

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem mem;
    struct pf_target t;
};

static uint64_t ts(size_t i)
{
    return TSTATES + i * 0x1000;
}

static void set_field(struct fixture *fx, uint64_t obj, struct pf_field f, uint64_t v)
{
    assert_int_not_equal(f.width, 0);
    assert_int_equal(pf_image_write_uint(fx->img, obj + f.off, v, f.width), PF_OK);
}

static void set_ptr(struct fixture *fx, uint64_t addr, uint64_t v)
{
    assert_int_equal(pf_image_write_uint(fx->img, addr, v, 8), PF_OK);
}

/* The runtime globals, all NULL, and a target that points at them the way
 * pf_interp_discover would: _PyRuntime for 3.7+, the interp_head and
 * _PyThreadState_Current variables for 2.7/3.6. */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->L = *state;
    assert_int_equal(pf_image_new(&fx->img), PF_OK);
    assert_int_equal(pf_mem_open_image(fx->img, &fx->mem), PF_OK);

    const struct pf_layout *L = fx->L;
    size_t size = L->runtime.size > 0x100 ? L->runtime.size : 0x100;
    assert_int_equal(pf_image_map(fx->img, RUNTIME, (size + 15) & ~(size_t)15), PF_OK);
    fx->t.layout = L;
    fx->t.version = (struct pf_pyver){.major = L->key.major, .minor = L->key.minor};
    if (L->runtime.size) {
        fx->t.runtime_addr = RUNTIME;
    } else {
        fx->t.interp_head_addr = RUNTIME;
        fx->t.tstate_current_addr = CURRENT_VAR;
    }
    fx->t.types = (struct pf_pytypes){FAKE_TYPE_CODE, FAKE_TYPE_STR, FAKE_TYPE_BYTES};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pf_mem_close(&fx->mem);
    pf_image_free(fx->img);
    free(fx);
    return 0;
}

/* interpreters.head (newest) and interpreters.main; 2.7/3.6 have only the
 * head variable. */
static void set_interpreters(struct fixture *fx, uint64_t head, uint64_t main_interp)
{
    const struct pf_layout *L = fx->L;
    if (!L->runtime.size) {
        set_ptr(fx, fx->t.interp_head_addr, head);
        return;
    }
    set_field(fx, RUNTIME, L->runtime.interp_head, head);
    if (L->runtime.interp_main.width)
        set_field(fx, RUNTIME, L->runtime.interp_main, main_interp);
}

/* Record who holds the GIL the way this version does. `last` is the last
 * thread that held it: still written where the version keeps it (3.7+)
 * when nobody holds the GIL any more. For 3.12+ `gil` is the interpreter's
 * _gil_runtime_state. */
static void set_holder(struct fixture *fx, uint64_t gil, uint64_t holder, uint64_t last)
{
    const struct pf_layout *L = fx->L;
    switch (L->gil) {
    case PF_GIL_CURRENT_SYMBOL:
        set_ptr(fx, fx->t.tstate_current_addr, holder);
        break;
    case PF_GIL_RUNTIME_CURRENT:
        set_field(fx, RUNTIME, L->runtime.tstate_current, holder);
        set_field(fx, RUNTIME, L->runtime.gil_locked, holder != 0);
        set_field(fx, RUNTIME, L->runtime.gil_last_holder, holder ? holder : last);
        break;
    case PF_GIL_INTERP_GIL:
        set_field(fx, gil, L->gilstate.locked, holder != 0);
        set_field(fx, gil, L->gilstate.last_holder, holder ? holder : last);
        break;
    default:
        fail_msg("unknown GIL kind %u", L->gil);
    }
}

static bool per_interp_gil(const struct pf_layout *L)
{
    return L->gil == PF_GIL_INTERP_GIL;
}

/* The main interpreter with threads 1 <- 2 <- 3 (3 newest, the head), and
 * for 3.12+ its GIL at GIL_MAIN, free. */
static void one_interpreter(struct fixture *fx)
{
    const struct pf_layout *L = fx->L;
    uint64_t gil = per_interp_gil(L) ? fake_gil(fx->img, L, GIL_MAIN, 0, 0) : 0;

    fake_interp(fx->img, L, INTERP_MAIN, 0, ts(3), gil);
    fake_tstate(fx->img, L, ts(1), INTERP_MAIN, 0, 0);
    fake_tstate(fx->img, L, ts(2), INTERP_MAIN, ts(1), 0);
    fake_tstate(fx->img, L, ts(3), INTERP_MAIN, ts(2), 0);
    set_interpreters(fx, INTERP_MAIN, INTERP_MAIN);
}

static void holder_is(struct fixture *fx, uint64_t interp, uint64_t want)
{
    uint64_t got = 0xbad;
    pf_err err = pf_interp_gil_holder(&fx->mem, &fx->t, interp, &got);
    if (err != PF_OK)
        fail_msg("gil holder of 0x%llx: %s", (unsigned long long)interp, pf_strerror(err));
    assert_int_equal(got, want);
}

static void holder_err(struct fixture *fx, uint64_t interp, pf_err want)
{
    uint64_t got = 0xbad;
    assert_int_equal(pf_interp_gil_holder(&fx->mem, &fx->t, interp, &got), want);
    assert_int_equal(got, 0xbad);
}

static void threads_err(struct fixture *fx, uint64_t interp, size_t cap, pf_err want)
{
    uint64_t got[16];
    size_t n = 4242;
    assert_true(cap <= 16);
    pf_err err = pf_interp_threads(&fx->mem, &fx->t, interp, got, cap, &n);
    if (err != want)
        fail_msg("threads of 0x%llx: %s (n=%zu), want %s", (unsigned long long)interp,
                 pf_strerror(err), n, pf_strerror(want));
    assert_int_equal(n, 4242);
}

/* Before Py_Initialize made an interpreter, and after finalisation: the
 * globals are NULL. */
static void not_initialised(void **state)
{
    struct fixture *fx = *state;
    uint64_t interp = 0xbad;

    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_ERR_NOTREADY);
    assert_int_equal(interp, 0xbad);

    /* Ready once the interpreter exists. */
    one_interpreter(fx);
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_OK);
    assert_int_equal(interp, INTERP_MAIN);

    /* ... and not after finalisation cleared it again. */
    set_interpreters(fx, 0, 0);
    interp = 0xbad;
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_ERR_NOTREADY);
    assert_int_equal(interp, 0xbad);
}

/* Runtime globals we cannot read: a fault, not "not ready". */
static void runtime_unmapped(void **state)
{
    struct fixture *fx = *state;
    uint64_t interp = 0xbad;

    fx->t.runtime_addr = fx->t.runtime_addr ? UNMAPPED : 0;
    fx->t.interp_head_addr = fx->t.interp_head_addr ? UNMAPPED : 0;
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_ERR_FAULT);
    assert_int_equal(interp, 0xbad);
}

/* With a sub-interpreter the head of the list is the newest one; the main
 * interpreter is interpreters.main (3.7+), or the end of the list (2.7 and
 * 3.6, which have only the head). A list that does not end is corrupt. */
static void main_not_head(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    uint64_t interp = 0;

    one_interpreter(fx);
    fake_interp(fx->img, L, INTERP_SUB, INTERP_MAIN, 0, 0);
    set_interpreters(fx, INTERP_SUB, INTERP_MAIN);
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_OK);
    assert_int_equal(interp, INTERP_MAIN);

    if (L->runtime.interp_main.width)
        return;
    set_field(fx, INTERP_MAIN, L->interp.next, INTERP_SUB);
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_ERR_CORRUPT);
}

/* Thread 2 holds the GIL. */
static void holder_present(void **state)
{
    struct fixture *fx = *state;
    uint64_t interp = 0;

    one_interpreter(fx);
    set_holder(fx, GIL_MAIN, ts(2), ts(2));
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_OK);
    holder_is(fx, interp, ts(2));

    set_holder(fx, GIL_MAIN, ts(3), ts(2));
    holder_is(fx, interp, ts(3));
}

/* Nobody holds the GIL (all threads blocked): 0. The last holder is still
 * written (3.7+); 3.12+ must look at `locked`, not at last_holder alone. */
static void nobody_holds(void **state)
{
    struct fixture *fx = *state;

    one_interpreter(fx);
    set_holder(fx, GIL_MAIN, 0, ts(2));
    holder_is(fx, INTERP_MAIN, 0);

    if (per_interp_gil(fx->L)) {
        /* locked with a holder: that one; released again: nobody. */
        set_holder(fx, GIL_MAIN, ts(1), 0);
        holder_is(fx, INTERP_MAIN, ts(1));
        set_field(fx, GIL_MAIN, fx->L->gilstate.locked, 0);
        holder_is(fx, INTERP_MAIN, 0);
        /* Any non-zero `locked` counts, not just 1... */
        set_field(fx, GIL_MAIN, fx->L->gilstate.locked, 0x100);
        holder_is(fx, INTERP_MAIN, ts(1));
        /* ... but -1: the GIL does not exist (pycore_gil.h), and its
         * last holder may be freed. */
        uint64_t minus_one = fx->L->gilstate.locked.width >= 8
                                 ? UINT64_MAX
                                 : (UINT64_C(1) << (8 * fx->L->gilstate.locked.width)) - 1;
        set_field(fx, GIL_MAIN, fx->L->gilstate.locked, minus_one);
        holder_is(fx, INTERP_MAIN, 0);
    }
}

/* 3.12+: each interpreter's ceval.gil is followed. An isolated
 * sub-interpreter has its own GIL; a legacy one points at the main one's. */
static void gil_per_interpreter(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    if (!per_interp_gil(L))
        skip();
    one_interpreter(fx);
    fake_gil(fx->img, L, GIL_SUB, 1, ts(5));
    fake_tstate(fx->img, L, ts(5), INTERP_SUB, 0, 0);
    fake_interp(fx->img, L, INTERP_SUB, INTERP_MAIN, ts(5), GIL_SUB);
    set_interpreters(fx, INTERP_SUB, INTERP_MAIN);
    set_holder(fx, GIL_MAIN, ts(1), ts(1));

    holder_is(fx, INTERP_MAIN, ts(1));
    holder_is(fx, INTERP_SUB, ts(5));

    set_field(fx, INTERP_SUB, L->interp.ceval_gil, GIL_MAIN); /* shared */
    holder_is(fx, INTERP_SUB, ts(1));
}

/* Where the holder is kept cannot be read: a fault. */
static void gil_unreadable(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    one_interpreter(fx);
    set_holder(fx, GIL_MAIN, ts(2), ts(2));
    switch (L->gil) {
    case PF_GIL_CURRENT_SYMBOL:
        fx->t.tstate_current_addr = UNMAPPED;
        holder_err(fx, INTERP_MAIN, PF_ERR_FAULT);
        break;
    case PF_GIL_RUNTIME_CURRENT:
        fx->t.runtime_addr = UNMAPPED;
        holder_err(fx, INTERP_MAIN, PF_ERR_FAULT);
        break;
    case PF_GIL_INTERP_GIL:
        set_field(fx, INTERP_MAIN, L->interp.ceval_gil, 0);
        holder_err(fx, INTERP_MAIN, PF_ERR_FAULT);
        set_field(fx, INTERP_MAIN, L->interp.ceval_gil, UNMAPPED);
        holder_err(fx, INTERP_MAIN, PF_ERR_FAULT);
        holder_err(fx, UNMAPPED, PF_ERR_FAULT);
        break;
    default:
        fail_msg("unknown GIL kind %u", L->gil);
    }
}

/* Threads 3, 2, 1: newest first, as the list is linked. */
static void threads_newest_first(void **state)
{
    struct fixture *fx = *state;
    uint64_t got[8] = {0};
    size_t n = 0;

    one_interpreter(fx);
    assert_int_equal(pf_interp_threads(&fx->mem, &fx->t, INTERP_MAIN, got, 8, &n), PF_OK);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], ts(3));
    assert_int_equal(got[1], ts(2));
    assert_int_equal(got[2], ts(1));

    /* At most cap. */
    memset(got, 0, sizeof(got));
    assert_int_equal(pf_interp_threads(&fx->mem, &fx->t, INTERP_MAIN, got, 2, &n), PF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], ts(3));
    assert_int_equal(got[1], ts(2));
    assert_int_equal(got[2], 0);

    /* No threads. */
    fake_interp(fx->img, fx->L, INTERP_SUB, 0, 0,
                per_interp_gil(fx->L) ? fake_gil(fx->img, fx->L, GIL_SUB, 0, 0) : 0);
    n = 99;
    assert_int_equal(pf_interp_threads(&fx->mem, &fx->t, INTERP_SUB, got, 8, &n), PF_OK);
    assert_int_equal(n, 0);
}

/* A list read mid-update can loop: corrupt, wherever the loop closes. */
static void looping_thread_list(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    one_interpreter(fx);
    set_field(fx, ts(1), L->tstate.next, ts(3)); /* 3 -> 2 -> 1 -> 3 */
    threads_err(fx, INTERP_MAIN, 16, PF_ERR_CORRUPT);
    set_field(fx, ts(1), L->tstate.next, ts(2)); /* 3 -> 2 -> 1 -> 2 */
    threads_err(fx, INTERP_MAIN, 16, PF_ERR_CORRUPT);
    set_field(fx, ts(1), L->tstate.next, ts(1)); /* 1 -> 1 */
    threads_err(fx, INTERP_MAIN, 16, PF_ERR_CORRUPT);
    set_field(fx, ts(3), L->tstate.next, ts(3)); /* head -> itself */
    threads_err(fx, INTERP_MAIN, 16, PF_ERR_CORRUPT);
}

/* A thread state or interpreter we cannot read: a fault. */
static void unmapped_thread_list(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    one_interpreter(fx);
    set_field(fx, ts(2), L->tstate.next, UNMAPPED);
    threads_err(fx, INTERP_MAIN, 16, PF_ERR_FAULT);
    set_field(fx, INTERP_MAIN, L->interp.threads_head, UNMAPPED);
    threads_err(fx, INTERP_MAIN, 16, PF_ERR_FAULT);
    threads_err(fx, UNMAPPED, 16, PF_ERR_FAULT);
}

/* What the sampler does each tick: the main interpreter, its threads, the
 * holder among them. */
static void sampler_walk(void **state)
{
    struct fixture *fx = *state;
    uint64_t interp = 0, holder = 0, got[8];
    size_t n = 0;

    one_interpreter(fx);
    set_holder(fx, GIL_MAIN, ts(1), ts(1));
    assert_int_equal(pf_interp_main(&fx->mem, &fx->t, &interp), PF_OK);
    assert_int_equal(pf_interp_threads(&fx->mem, &fx->t, interp, got, 8, &n), PF_OK);
    assert_int_equal(pf_interp_gil_holder(&fx->mem, &fx->t, interp, &holder), PF_OK);
    assert_int_equal(n, 3);
    assert_int_equal(holder, got[2]);
}

#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)L)

int main(void)
{
    int failed = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            T(not_initialised),
            T(runtime_unmapped),
            T(main_not_head),
            T(holder_present),
            T(nobody_holds),
            T(gil_per_interpreter),
            T(gil_unreadable),
            T(threads_newest_first),
            T(looping_thread_list),
            T(unmapped_thread_list),
            T(sampler_walk),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }
    return failed != 0;
}

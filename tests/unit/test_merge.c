/* pf_merge and pf_merge_classify on synthetic stacks: native frames
 * (SHOW/EVAL/HIDE) against Python frames with run ends, as each CPython
 * version lays them out, and every way the two can fail to pair up: more
 * or fewer eval frames than runs, Python frames outside any run, an unwind
 * that stopped early, a Python walk cut at its cap. A failed merge must
 * keep every Python frame, in order, and add exactly one mark at the root:
 * never drop the sample, never guess the native side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/native/merge.h"

/* Frame ids: Python frames are 100+, native frames 200+, marks 900+. */
#define PY(x) (100u + (x))
#define NAT(x) (200u + (x))
#define MISMATCH 901u
#define INCOMPLETE 902u
#define END PF_MERGE_RUN_END

static const struct pf_merge_marks MARKS = {.mismatch = MISMATCH, .incomplete = INCOMPLETE};

static struct pf_native_item show(uint32_t id)
{
    return (struct pf_native_item){id, PF_NATIVE_SHOW};
}

static struct pf_native_item eval(void)
{
    return (struct pf_native_item){0, PF_NATIVE_EVAL};
}

static struct pf_native_item hide(void)
{
    return (struct pf_native_item){0, PF_NATIVE_HIDE};
}

/* Merge and compare with want[0..nwant) (innermost first). */
static void check(const struct pf_native_item *native, size_t nn, bool native_whole,
                  const uint32_t *py, size_t np, bool py_whole, enum pf_merge_result want_r,
                  const uint32_t *want, size_t nwant)
{
    uint32_t out[64];
    size_t n = 999;

    memset(out, 0xee, sizeof(out));
    assert_true(nn + np + 1 <= 64);
    enum pf_merge_result r = pf_merge(native, nn, native_whole, py, np, py_whole, &MARKS, out, &n);
    assert_int_equal(r, want_r);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < nwant; i++)
        if (out[i] != want[i])
            fail_msg("frame %zu: got %u, want %u", i, out[i], want[i]);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* <= 3.10: one eval frame per Python frame. main -> f -> C ext -> g, with
 * plumbing between them: _start;main;<eval f>;call;ext;call;<eval g>. */
static void one_frame_per_eval(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {
        eval(),                     /* g */
        hide(),       hide(),       /* _PyFunction_FastCall..., PyObject_Call */
        show(NAT(1)),               /* ext_func (ext.so) */
        hide(),                     /* cfunction_call */
        eval(),                     /* f */
        hide(),                     /* PyEval_EvalCode */
        eval(),                     /* <module> */
        show(NAT(2)), show(NAT(3)), /* Py_RunMain, _start */
    };
    const uint32_t py[] = {PY(3), END, PY(2), END, PY(1), END};
    const uint32_t want[] = {PY(3), NAT(1), PY(2), PY(1), NAT(2), NAT(3)};
    check(native, N(native), true, py, N(py), true, PF_MERGE_OK, want, N(want));
}

/* 3.11+: one eval frame runs several Python frames (calls from Python do
 * not recurse in C). h, g run in the inner eval; f, <module> in the outer. */
static void several_frames_per_eval(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {
        eval(), hide(), show(NAT(1)), hide(), eval(), show(NAT(2)),
    };
    const uint32_t py[] = {PY(4), PY(3), END, PY(2), PY(1), END};
    const uint32_t want[] = {PY(4), PY(3), NAT(1), PY(2), PY(1), NAT(2)};
    check(native, N(native), true, py, N(py), true, PF_MERGE_OK, want, N(want));
}

/* 3.12+: a shim with no frame above it (the eval loop caught on entry or
 * exit) is an empty run: its eval frame stands for nothing. */
static void empty_run(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), show(NAT(1)), eval(), show(NAT(2))};
    const uint32_t py[] = {END, PY(2), PY(1), END};
    const uint32_t want[] = {NAT(1), PY(2), PY(1), NAT(2)};
    check(native, N(native), true, py, N(py), true, PF_MERGE_OK, want, N(want));
}

/* Frames inside a C function called from Python come before (inner of) the
 * Python frame: time.sleep -> clock_nanosleep. */
static void native_leaf_frames(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {
        show(NAT(1)), show(NAT(2)), hide(), eval(), show(NAT(3)),
    };
    const uint32_t py[] = {PY(1), END};
    const uint32_t want[] = {NAT(1), NAT(2), PY(1), NAT(3)};
    check(native, N(native), true, py, N(py), true, PF_MERGE_OK, want, N(want));
}

/* No native frames at all: fine as long as there is no run either. */
static void nothing_native(void **state)
{
    (void)state;
    const uint32_t want[] = {NAT(1)};
    const struct pf_native_item native[] = {show(NAT(1))};
    check(native, 1, true, NULL, 0, true, PF_MERGE_OK, want, 1);
    check(NULL, 0, true, NULL, 0, true, PF_MERGE_OK, NULL, 0);
}

/* One eval frame more than there are runs: a thread caught entering the
 * eval loop before it linked its frame (<= 3.10 sets tstate->frame after
 * its prologue). Python frames only, mismatch mark at the root. */
static void more_evals_than_runs(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), hide(), eval(), eval(), show(NAT(1))};
    const uint32_t py[] = {PY(2), END, PY(1), END};
    const uint32_t want[] = {PY(2), PY(1), MISMATCH};
    check(native, N(native), true, py, N(py), true, PF_MERGE_MISMATCH, want, N(want));
}

/* Fewer eval frames than runs: e.g. an eval frame we could not name (its
 * library has no symbols), or a run whose C frame already returned. */
static void fewer_evals_than_runs(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), show(NAT(1)), show(NAT(2))};
    const uint32_t py[] = {PY(3), END, PY(2), PY(1), END};
    const uint32_t want[] = {PY(3), PY(2), PY(1), MISMATCH};
    check(native, N(native), true, py, N(py), true, PF_MERGE_MISMATCH, want, N(want));
}

/* Python frames after the last run end belong to no eval frame: even with
 * equal counts, that is a mismatch (it must not be pinned to a wrong
 * place). */
static void frames_outside_any_run(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), show(NAT(1))};
    const uint32_t py[] = {PY(2), END, PY(1)};
    const uint32_t want[] = {PY(2), PY(1), MISMATCH};
    check(native, N(native), true, py, N(py), true, PF_MERGE_MISMATCH, want, N(want));
}

/* Eval frames but no Python frame at all, and the reverse. */
static void one_side_empty(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), show(NAT(1))};
    const uint32_t none[] = {MISMATCH};
    check(native, N(native), true, NULL, 0, true, PF_MERGE_MISMATCH, none, 1);
    const uint32_t py[] = {PY(1), END};
    const uint32_t want[] = {PY(1), MISMATCH};
    check(NULL, 0, true, py, N(py), true, PF_MERGE_MISMATCH, want, N(want));
}

/* Unwinding stopped before the base of the stack, or hit the native cap:
 * even when the eval counts happen to agree, the native side is not whole,
 * so the sample is shown as Python frames with the "incomplete" mark. */
static void native_not_whole(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), show(NAT(1)), eval()};
    const uint32_t py[] = {PY(2), END, PY(1), END};
    const uint32_t want[] = {PY(2), PY(1), INCOMPLETE};
    check(native, N(native), false, py, N(py), true, PF_MERGE_INCOMPLETE, want, N(want));
    /* Nothing unwound at all (registers unreadable). */
    check(NULL, 0, false, py, N(py), true, PF_MERGE_INCOMPLETE, want, N(want));
}

/* The Python walk was cut at its cap: its outer runs are missing. */
static void python_not_whole(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {eval(), eval(), eval()};
    const uint32_t py[] = {PY(2), END, PY(1), END};
    const uint32_t want[] = {PY(2), PY(1), INCOMPLETE};
    check(native, N(native), true, py, N(py), false, PF_MERGE_INCOMPLETE, want, N(want));
}

/* Hidden frames never show, whatever their id; shown frames keep theirs. */
static void hide_drops_only_plumbing(void **state)
{
    (void)state;
    const struct pf_native_item native[] = {
        {NAT(9), PF_NATIVE_HIDE}, show(NAT(1)), {NAT(8), PF_NATIVE_HIDE}, eval(), show(NAT(2)),
    };
    const uint32_t py[] = {PY(1), END};
    const uint32_t want[] = {NAT(1), PY(1), NAT(2)};
    check(native, N(native), true, py, N(py), true, PF_MERGE_OK, want, N(want));
}

/* The eval loops the layouts name (pf_layout_caps.eval_symbol). */
#define EVAL2 "PyEval_EvalFrameEx"
#define EVAL3 "_PyEval_EvalFrameDefault"

static void classify(void **state)
{
    (void)state;
    /* The eval loop, as the layout names it. */
    assert_int_equal(pf_merge_classify("_PyEval_EvalFrameDefault", true, EVAL3), PF_NATIVE_EVAL);
    assert_int_equal(pf_merge_classify("_PyEval_EvalFrameDefault.cold", true, EVAL3), PF_NATIVE_EVAL);
    assert_int_equal(pf_merge_classify("PyEval_EvalFrameEx", true, EVAL2), PF_NATIVE_EVAL);
    /* 3.x: PyEval_EvalFrameEx only calls the loop through interp->eval_frame. */
    assert_int_equal(pf_merge_classify("PyEval_EvalFrameEx", true, EVAL3), PF_NATIVE_HIDE);
    assert_int_equal(pf_merge_classify("_PyEval_EvalFrameDefault", true, EVAL2), PF_NATIVE_SHOW);
    /* Plumbing, with and without compiler suffixes, and prefixed families. */
    assert_int_equal(pf_merge_classify("_PyFunction_Vectorcall", true, EVAL3), PF_NATIVE_HIDE);
    assert_int_equal(pf_merge_classify("_PyEval_Vector", true, EVAL3), PF_NATIVE_HIDE);
    assert_int_equal(pf_merge_classify("fast_function", true, EVAL2), PF_NATIVE_HIDE);
    assert_int_equal(pf_merge_classify("call_function.isra.0", true, EVAL3), PF_NATIVE_HIDE);
    assert_int_equal(pf_merge_classify("cfunction_vectorcall_O", true, EVAL3), PF_NATIVE_HIDE);
    assert_int_equal(pf_merge_classify("method_vectorcall_FASTCALL_KEYWORDS", true, EVAL3),
                     PF_NATIVE_HIDE);
    /* Real work of the interpreter stays: builtins, GC, start-up. */
    assert_int_equal(pf_merge_classify("time_sleep", true, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify("builtin_sorted", true, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify("gc_collect_main", true, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify("Py_RunMain", true, EVAL3), PF_NATIVE_SHOW);
    /* Names that merely start like plumbing are not plumbing. */
    assert_int_equal(pf_merge_classify("PyObject_CallFinalizer", true, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify("call_functionx", true, EVAL3), PF_NATIVE_SHOW);
    /* Outside the interpreter's own file, a name means nothing. */
    assert_int_equal(pf_merge_classify("_PyEval_EvalFrameDefault", false, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify("PyObject_Call", false, EVAL3), PF_NATIVE_SHOW);
    /* Nothing to go on. */
    assert_int_equal(pf_merge_classify(NULL, true, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify("", true, EVAL3), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify(EVAL3, true, NULL), PF_NATIVE_SHOW);
    assert_int_equal(pf_merge_classify(".cold", true, EVAL3), PF_NATIVE_SHOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_frame_per_eval),
        cmocka_unit_test(several_frames_per_eval),
        cmocka_unit_test(empty_run),
        cmocka_unit_test(native_leaf_frames),
        cmocka_unit_test(nothing_native),
        cmocka_unit_test(more_evals_than_runs),
        cmocka_unit_test(fewer_evals_than_runs),
        cmocka_unit_test(frames_outside_any_run),
        cmocka_unit_test(one_side_empty),
        cmocka_unit_test(native_not_whole),
        cmocka_unit_test(python_not_whole),
        cmocka_unit_test(hide_drops_only_plumbing),
        cmocka_unit_test(classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

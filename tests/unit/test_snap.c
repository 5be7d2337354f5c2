/* The speculative stack copy (prefetch.h + snap.h) over fake memory, once
 * per generated layout. A thread's stack is copied once with no plan (one
 * read per block of frames, or per window on 3.11+), then again with the plan the
 * first copy journaled: one batched read, whatever the depth. Then the
 * chain changes between the copies (a frame popped, a frame pushed, a
 * frame's address reused by another code object) and the second copy must
 * show the new chain exactly, reading only what changed. pf_snap_same, the
 * torn-read check of --nonblocking, and pf_snap_decode's names close it. */
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
#include "pyflame/cpython/code.h"
#include "pyflame/cpython/frame.h"
#include "pyflame/target/image.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/base/limits.h"
#include "pyflame/target/mem.h"
#include "pyflame/target/prefetch.h"
#include "pyflame/cpython/snap.h"

#define CODE_F 0x100000ull
#define CODE_G 0x110000ull
#define CODE_H 0x120000ull
#define TSTATE 0x180000ull
#define FRAMES 0x200000ull /* frame i at FRAMES + i * FRAME_STEP */
#define FRAME_STEP 0x100ull
#define PUSHED 0x400000ull /* a frame pushed later, away from the others */
#define DEPTH 40

static const uint8_t LT[] = {0x00, 0x01, 0x04, 0x01};

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem mem;
    struct pf_prefetch *pre;
    struct pf_plan plan, journal;
    struct pf_snap a, b;
    uint64_t f, g, h;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->L = *state;
    assert_int_equal(pf_image_new(&fx->img), PF_OK);
    assert_int_equal(pf_mem_open_image(fx->img, &fx->mem), PF_OK);
    assert_int_equal(pf_prefetch_new(&fx->mem, &fx->pre), PF_OK);
    fx->f = fake_code(fx->img, fx->L, CODE_F, "app.py", "f", 10, LT, sizeof(LT));
    fx->g = fake_code(fx->img, fx->L, CODE_G, "app.py", "g", 20, LT, sizeof(LT));
    fx->h = fake_code(fx->img, fx->L, CODE_H, "lib.py", "h", 30, LT, sizeof(LT));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pf_snap_release(&fx->a);
    pf_snap_release(&fx->b);
    pf_plan_free(&fx->plan);
    pf_plan_free(&fx->journal);
    pf_prefetch_free(fx->pre);
    pf_mem_close(&fx->mem);
    pf_image_free(fx->img);
    free(fx);
    return 0;
}

static uint64_t frame_at(size_t i)
{
    return FRAMES + i * FRAME_STEP;
}

/* A recursion of DEPTH frames of f, under one frame of g at the root:
 * frame 0 is the root, frame DEPTH-1 the innermost. Frame i runs at byte
 * offset 2 * i. Returns the innermost frame. */
static uint64_t build_chain(struct fixture *fx)
{
    uint64_t back = 0;
    for (size_t i = 0; i < DEPTH; i++) {
        uint64_t code = i == 0 ? fx->g : fx->f;
        back = fake_frame(fx->img, fx->L, frame_at(i), code, back,
                          fake_instr(fx->L, code, (int64_t)(2 * i)), 0);
    }
    fake_tstate(fx->img, fx->L, TSTATE, 0, 0, back);
    return back;
}

/* Point the thread at a new innermost frame. */
static void set_innermost(struct fixture *fx, uint64_t frame)
{
    const struct pf_layout *L = fx->L;
    if (L->frames == PF_FRAMES_CFRAME)
        assert_int_equal(pf_image_write_uint(fx->img, TSTATE + 0x800 + L->cframe.current_frame.off,
                                             frame, 8),
                         PF_OK);
    else
        assert_int_equal(pf_image_write_uint(fx->img, TSTATE + L->tstate.frame.off, frame, 8), PF_OK);
}

static void set_code(struct fixture *fx, uint64_t frame, uint64_t code, int64_t offset)
{
    const struct pf_layout *L = fx->L;
    struct pf_field fc = L->frames == PF_FRAMES_OBJECT ? L->pyframe.code : L->iframe.code;
    struct pf_field fi = L->frames == PF_FRAMES_OBJECT ? L->pyframe.lasti : L->iframe.instr;
    assert_int_equal(pf_image_write_uint(fx->img, frame + fc.off, code, fc.width), PF_OK);
    assert_int_equal(
        pf_image_write_uint(fx->img, frame + fi.off, fake_instr(L, code, offset), fi.width), PF_OK);
}

/* One copy the way the sampler makes it: fill from the plan, walk through
 * the view while journaling, and the journal becomes the next plan.
 * Returns the system calls the copy cost (reads of the image). */
static uint64_t copy(struct fixture *fx, struct pf_snap *into)
{
    const struct pf_plan *plans[1] = {&fx->plan};
    uint64_t before = fx->mem.reads;

    assert_int_equal(pf_prefetch_fill(fx->pre, plans, 1), PF_OK);
    pf_plan_clear(&fx->journal);
    pf_prefetch_journal(fx->pre, &fx->journal);
    assert_int_equal(pf_snap_take(into, pf_prefetch_mem(fx->pre), fx->L, TSTATE, false), PF_OK);
    pf_prefetch_journal(fx->pre, NULL);
    pf_plan_swap(&fx->plan, &fx->journal);
    pf_prefetch_reset(fx->pre);
    return fx->mem.reads - before;
}

/* The records of a chain of frames frame_at(top) .. frame_at(0). */
static void expect_chain(struct fixture *fx, const struct pf_snap *s, size_t top)
{
    assert_int_equal(s->n, top + 1);
    assert_false(s->truncated);
    for (size_t k = 0; k <= top; k++) {
        size_t i = top - k;
        assert_int_equal(s->recs[k].frame_addr, frame_at(i));
        assert_int_equal(s->recs[k].code_addr, i == 0 ? fx->g : fx->f);
        assert_int_equal(s->recs[k].offset, (int64_t)(2 * i));
    }
}

/* The second copy of an unchanged stack is one batched read (the fill),
 * where the first cost a read per block of frames (<= 3.10) or a few
 * windows. */
static void unchanged_stack_is_one_read(void **state)
{
    struct fixture *fx = *state;
    build_chain(fx);
    uint64_t first = copy(fx, &fx->a);
    expect_chain(fx, &fx->a, DEPTH - 1);
    uint64_t second = copy(fx, &fx->b);
    expect_chain(fx, &fx->b, DEPTH - 1);
    /* Without a plan, frame objects (<= 3.10) are misses; they lie side by
     * side here, as a recursion's frames do, and a miss reads the page
     * around it (prefetch.c), so fewer reads than frames serve them (the
     * count includes block reads that failed on the unmapped space around
     * the fake objects). */
    if (fx->L->frames == PF_FRAMES_OBJECT)
        assert_true(first >= 2 && first < DEPTH);
    assert_int_equal(second, 1);
    assert_true(pf_snap_same(&fx->a, &fx->b));
    /* and again: the plan does not decay */
    assert_int_equal(copy(fx, &fx->b), 1);
    expect_chain(fx, &fx->b, DEPTH - 1);
}

/* Frames popped since the last copy: the walk starts lower in the plan and
 * still costs the one read. */
static void popped_frames(void **state)
{
    struct fixture *fx = *state;
    build_chain(fx);
    copy(fx, &fx->a);
    set_innermost(fx, frame_at(DEPTH - 4));
    assert_int_equal(copy(fx, &fx->b), 1);
    expect_chain(fx, &fx->b, DEPTH - 4);
    assert_false(pf_snap_same(&fx->a, &fx->b));
}

/* A frame pushed since: it is a miss, read alone (with its code object's
 * header, also new); the rest comes from the copy. */
static void pushed_frame(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    uint64_t inner = build_chain(fx);
    copy(fx, &fx->a);
    fake_frame(fx->img, L, PUSHED, fx->h, inner, fake_instr(L, fx->h, 6), 0);
    set_innermost(fx, PUSHED);
    uint64_t reads = copy(fx, &fx->b);
    assert_int_equal(fx->b.n, DEPTH + 1);
    assert_int_equal(fx->b.recs[0].frame_addr, PUSHED);
    assert_int_equal(fx->b.recs[0].code_addr, fx->h);
    assert_int_equal(fx->b.recs[0].offset, 6);
    for (size_t k = 1; k <= DEPTH; k++)
        assert_int_equal(fx->b.recs[k].frame_addr, frame_at(DEPTH - k));
    /* fill, the new frame (a window, or the frame alone when the window
     * below it is not mapped), h's header; a miss on an object alone in
     * unmapped space tries its block and its page first (prefetch.c), so
     * each of the two misses costs up to three reads here */
    assert_true(reads >= 2 && reads <= 7);
    /* now part of the plan */
    assert_int_equal(copy(fx, &fx->b), 1);
}

/* The innermost frame returned and another call took its place at the
 * same address, running other code: the copy must show the new code, and
 * a --nonblocking comparison must see the change. */
static void address_reused_by_other_code(void **state)
{
    struct fixture *fx = *state;
    build_chain(fx);
    copy(fx, &fx->a);
    set_code(fx, frame_at(DEPTH - 1), fx->h, 8);
    uint64_t reads = copy(fx, &fx->b);
    assert_int_equal(fx->b.n, DEPTH);
    assert_int_equal(fx->b.recs[0].frame_addr, frame_at(DEPTH - 1));
    assert_int_equal(fx->b.recs[0].code_addr, fx->h);
    assert_int_equal(fx->b.recs[0].offset, 8);
    assert_int_equal(fx->b.recs[1].code_addr, fx->f);
    assert_int_equal(reads, 2); /* fill, h's header */
    assert_false(pf_snap_same(&fx->a, &fx->b));
}

/* A frame in the middle of the chain now leads elsewhere (its caller
 * returned and the stack was rebuilt): the walk follows the pointer it
 * reads now, not the plan. */
static void middle_link_changed(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    build_chain(fx);
    copy(fx, &fx->a);
    struct pf_field back = L->frames == PF_FRAMES_OBJECT ? L->pyframe.back : L->iframe.previous;
    /* frame 10's caller is now frame 2: frames 3..9 are gone */
    assert_int_equal(pf_image_write_uint(fx->img, frame_at(10) + back.off, frame_at(2), 8), PF_OK);
    assert_int_equal(copy(fx, &fx->b), 1);
    assert_int_equal(fx->b.n, DEPTH - 7);
    assert_int_equal(fx->b.recs[DEPTH - 11].frame_addr, frame_at(10));
    assert_int_equal(fx->b.recs[DEPTH - 10].frame_addr, frame_at(2));
    assert_int_equal(fx->b.recs[DEPTH - 8].frame_addr, frame_at(0));
}

/* --nonblocking's check: the innermost frame's instruction may move on,
 * nothing else may. */
static void same_allows_only_innermost_offset(void **state)
{
    struct fixture *fx = *state;
    build_chain(fx);
    copy(fx, &fx->a);
    set_code(fx, frame_at(DEPTH - 1), fx->f, 100);
    copy(fx, &fx->b);
    assert_int_equal(fx->b.recs[0].offset, 100);
    assert_true(pf_snap_same(&fx->a, &fx->b));
    /* ... which pf_snap_identical does not allow (--threads leaves a
     * thread unstopped only on identical copies) */
    assert_false(pf_snap_identical(&fx->a, &fx->b));
    copy(fx, &fx->a);
    assert_true(pf_snap_identical(&fx->a, &fx->b));
    set_code(fx, frame_at(DEPTH - 2), fx->f, 100);
    copy(fx, &fx->b);
    assert_false(pf_snap_same(&fx->a, &fx->b));
    assert_false(pf_snap_identical(&fx->a, &fx->b));
}

/* The decoded stack names the code objects read, innermost first, and a
 * plan that points at memory gone since costs a miss, not a failure. */
static void decode_names_and_stale_plan(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_code_cache *codes = NULL;
    struct pf_intern *names = NULL;
    struct pf_pytypes types = {FAKE_TYPE_CODE, FAKE_TYPE_STR,
                              L->str == PF_STR_BYTES ? FAKE_TYPE_STR : FAKE_TYPE_BYTES};
    uint64_t *scratch = calloc(PF_FRAME_RUNS_MAX + 1, sizeof(*scratch));
    uint32_t *ids = calloc(PF_MAX_DEPTH, sizeof(*ids));
    size_t depth = 0;

    assert_non_null(scratch);
    assert_non_null(ids);
    assert_int_equal(pf_code_cache_new(64, &codes), PF_OK);
    assert_int_equal(pf_intern_new(&names), PF_OK);
    build_chain(fx);
    copy(fx, &fx->a);
    /* a plan range that is no longer readable */
    pf_plan_add(&fx->plan, 0xdead0000ull, 64);
    copy(fx, &fx->b);
    expect_chain(fx, &fx->b, DEPTH - 1);
    struct pf_snap_decoder d = {codes, &fx->mem, L, &types, names, false, scratch};
    assert_int_equal(pf_snap_decode(&fx->b, &d, ids, &depth, NULL, NULL), PF_OK);
    assert_int_equal(depth, DEPTH);
    const struct pf_frame_text *inner = pf_intern_frame_get(names, ids[0]);
    const struct pf_frame_text *root = pf_intern_frame_get(names, ids[DEPTH - 1]);
    assert_string_equal(pf_intern_text(names, inner->name), "f");
    assert_string_equal(pf_intern_text(names, root->name), "g");
    assert_string_equal(pf_intern_text(names, root->file), "app.py");
    pf_code_cache_free(codes);
    pf_intern_free(names);
    free(scratch);
    free(ids);
}

#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)L)

int main(void)
{
    int failed = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            T(unchanged_stack_is_one_read),
            T(popped_frames),
            T(pushed_frame),
            T(address_reused_by_other_code),
            T(middle_link_changed),
            T(same_allows_only_innermost_offset),
            T(decode_names_and_stale_plan),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }
    return failed != 0;
}

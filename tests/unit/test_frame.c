/* The frame walker over fake frame chains, once per generated layout:
 * <=3.10 PyFrameObject chains (f_back, f_lasti in bytes or code units),
 * 3.11/3.12 _PyInterpreterFrame chains reached through tstate->cframe, 3.13
 * chains reached through tstate->current_frame; shim frames (3.12+); the
 * run ends of pf_frame_walk_runs (--native); and the hostile cases:
 * self-loops, 2-cycles, chains past the cap, unmapped frames, NULL. */
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
#include "pyflame/cpython/frame.h"
#include "pyflame/target/image.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/base/limits.h"
#include "pyflame/target/mem.h"

/* Where things go. fake_code needs 0x5000 + table bytes from its address. */
#define CODE_F 0x100000ull
#define CODE_G 0x110000ull
#define CODE_H 0x120000ull
#define CODE_SHIM 0x130000ull
#define FRAMES 0x200000ull /* frame i at FRAMES + i * FRAME_STEP */
#define FRAME_STEP 0x100ull
#define TSTATE 0x180000ull
#define UNMAPPED 0xdead0000ull /* never mapped by any test */

/* 3.6+ style lnotab; the walker never decodes it, any bytes will do. */
static const uint8_t LT[] = {0x00, 0x01, 0x04, 0x01};

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem mem;
    uint64_t f, g, h; /* code objects */
    struct pf_frame_rec *big; /* BIG_CAP records, freed even when a test fails */
};

#define BIG_CAP (PF_MAX_DEPTH + 100)

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->L = *state;
    fx->big = calloc(BIG_CAP, sizeof(*fx->big));
    assert_non_null(fx->big);
    assert_int_equal(pf_image_new(&fx->img), PF_OK);
    assert_int_equal(pf_mem_open_image(fx->img, &fx->mem), PF_OK);
    fx->f = fake_code(fx->img, fx->L, CODE_F, "app.py", "f", 10, LT, sizeof(LT));
    fx->g = fake_code(fx->img, fx->L, CODE_G, "app.py", "g", 20, LT, sizeof(LT));
    fx->h = fake_code(fx->img, fx->L, CODE_H, "lib.py", "h", 30, LT, sizeof(LT));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    pf_mem_close(&fx->mem);
    pf_image_free(fx->img);
    free(fx->big);
    free(fx);
    return 0;
}

static uint64_t frame_at(size_t i)
{
    return FRAMES + i * FRAME_STEP;
}

static bool has_iframes(const struct pf_layout *L)
{
    return L->frames != PF_FRAMES_OBJECT;
}

/* The lowest owner value the layout lists as a shim's (0 if none). */
static uint8_t first_shim_owner(const struct pf_layout *L)
{
    for (uint8_t o = 0; o < 8; o++)
        if (L->caps.shim_owners >> o & 1u)
            return o;
    return 0;
}

/* A plain Python frame at byte offset `offset` of code. */
static uint64_t py_frame(struct fixture *fx, uint64_t addr, uint64_t code, uint64_t back,
                         int64_t offset)
{
    return fake_frame(fx->img, fx->L, addr, code, back, fake_instr(fx->L, code, offset), 0);
}

/* Walk, expecting success; returns the record count. */
static size_t walk_ok(struct fixture *fx, uint64_t first, struct pf_frame_rec *recs, size_t cap,
                      bool *truncated)
{
    size_t n = 99999;
    *truncated = true;
    assert_int_equal(pf_frame_walk(&fx->mem, fx->L, first, recs, cap, &n, truncated), PF_OK);
    assert_true(n <= cap);
    return n;
}

/* Walk, expecting err; the out-parameters must stay untouched. */
static void walk_err(struct fixture *fx, uint64_t first, size_t cap, pf_err want)
{
    size_t n = 4242;
    bool truncated = true;
    assert_true(cap <= BIG_CAP);
    pf_err err = pf_frame_walk(&fx->mem, fx->L, first, fx->big, cap, &n, &truncated);
    if (err != want)
        fail_msg("walk from 0x%llx, cap %zu: %s (n=%zu, truncated=%d), want %s",
                 (unsigned long long)first, cap, pf_strerror(err), n, truncated, pf_strerror(want));
    assert_int_equal(n, 4242);
    assert_true(truncated);
}

/* The thread state leads to the innermost frame on every version: directly
 * (<=3.10 frame, 3.13 current_frame) or through the _PyCFrame (3.11/3.12). */
static void first_frame_from_tstate(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t frame = 1;

    uint64_t inner = py_frame(fx, frame_at(0), fx->g, 0, 4);
    fake_tstate(fx->img, L, TSTATE, 0, 0, inner);
    assert_int_equal(pf_mem_read(&fx->mem, TSTATE, ts, L->tstate.size), PF_OK);
    assert_int_equal(pf_frame_first(&fx->mem, L, ts, L->tstate.size, &frame), PF_OK);
    assert_int_equal(frame, inner);

    /* A thread that runs no Python code. */
    fake_tstate(fx->img, L, TSTATE + 0x1000, 0, 0, 0);
    frame = 1;
    assert_int_equal(pf_mem_read(&fx->mem, TSTATE + 0x1000, ts, L->tstate.size), PF_OK);
    assert_int_equal(pf_frame_first(&fx->mem, L, ts, L->tstate.size, &frame), PF_OK);
    assert_int_equal(frame, 0);

    /* The tstate copy is shorter than the frame field: refused. */
    frame = 1;
    assert_int_equal(pf_frame_first(&fx->mem, L, ts, L->tstate.frame.off + 4, &frame),
                     PF_ERR_CORRUPT);
    assert_int_equal(frame, 1);
}

/* 3.11/3.12: the _PyCFrame is read from the target; a NULL cframe means no
 * frame, an unmapped one is a fault. */
static void first_frame_through_cframe(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t frame = 1;

    if (L->frames != PF_FRAMES_CFRAME)
        skip();
    fake_tstate(fx->img, L, TSTATE, 0, 0, frame_at(0));
    assert_int_equal(pf_mem_read(&fx->mem, TSTATE, ts, L->tstate.size), PF_OK);
    /* The tstate's own field is the cframe, not the frame. */
    uint64_t cframe = 0;
    assert_int_equal(pf_field_ptr(ts, L->tstate.size, L->tstate.frame, &cframe), PF_OK);
    assert_int_equal(cframe, TSTATE + 0x800);

    memset(ts + L->tstate.frame.off, 0, 8);
    assert_int_equal(pf_frame_first(&fx->mem, L, ts, L->tstate.size, &frame), PF_OK);
    assert_int_equal(frame, 0);

    uint64_t bad = UNMAPPED;
    memcpy(ts + L->tstate.frame.off, &bad, 8);
    frame = 1;
    assert_int_equal(pf_frame_first(&fx->mem, L, ts, L->tstate.size, &frame), PF_ERR_FAULT);
    assert_int_equal(frame, 1);
}

/* f calls g: two records, innermost first, with the code addresses and
 * byte offsets the frames hold. Then tstate -> first -> walk, three deep. */
static void walks_two_and_three_frames(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[8];
    bool truncated;

    uint64_t outer = py_frame(fx, frame_at(0), fx->f, 0, 2);
    uint64_t inner = py_frame(fx, frame_at(1), fx->g, outer, 4);
    size_t n = walk_ok(fx, inner, recs, 8, &truncated);
    assert_int_equal(n, 2);
    assert_false(truncated);
    assert_int_equal(recs[0].code_addr, fx->g);
    assert_int_equal(recs[0].offset, 4);
    assert_int_equal(recs[1].code_addr, fx->f);
    assert_int_equal(recs[1].offset, 2);

    uint64_t h = py_frame(fx, frame_at(2), fx->h, inner, 26);
    fake_tstate(fx->img, L, TSTATE, 0, 0, h);
    uint8_t ts[PF_MAX_STRUCT];
    uint64_t first = 0;
    assert_int_equal(pf_mem_read(&fx->mem, TSTATE, ts, L->tstate.size), PF_OK);
    assert_int_equal(pf_frame_first(&fx->mem, L, ts, L->tstate.size, &first), PF_OK);
    assert_int_equal(first, h);
    n = walk_ok(fx, first, recs, 8, &truncated);
    assert_int_equal(n, 3);
    assert_false(truncated);
    const uint64_t want_code[] = {fx->h, fx->g, fx->f};
    const int64_t want_off[] = {26, 4, 2};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(recs[i].code_addr, want_code[i]);
        assert_int_equal(recs[i].offset, want_off[i]);
    }
}

/* The raw values each version stores, converted to a byte offset:
 * 2.7-3.9 f_lasti is bytes, 3.10 f_lasti is code units (x2), 3.11+ the
 * pointer's distance from co_code_adaptive (docs/cpython-internals.md
 * §5.2, §6.3). */
static void offsets_by_version(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[4];
    bool truncated;
    uint64_t raw;
    int64_t want;

    if (L->frames == PF_FRAMES_OBJECT) {
        raw = 9; /* same call site: f_lasti 6 on 3.9 is 3 on 3.10 */
        want = L->linetable == PF_LT_LINETABLE_310 ? 18 : 9;
    } else {
        assert_int_not_equal(L->code.code_adaptive.width, 0);
        raw = fx->g + L->code.code_adaptive.off + 18;
        want = 18;
    }
    fake_frame(fx->img, L, frame_at(0), fx->g, 0, raw, 0);
    assert_int_equal(walk_ok(fx, frame_at(0), recs, 4, &truncated), 1);
    assert_int_equal(recs[0].code_addr, fx->g);
    assert_int_equal(recs[0].offset, want);

    /* The first instruction is offset 0 everywhere. */
    fake_frame(fx->img, L, frame_at(1), fx->g, 0, fake_instr(L, fx->g, 0), 0);
    assert_int_equal(walk_ok(fx, frame_at(1), recs, 4, &truncated), 1);
    assert_int_equal(recs[0].offset, 0);
}

/* Before the first instruction: f_lasti -1 (<=3.10) stays -1, not -2 or a
 * huge unsigned value; a fresh 3.11/3.12 frame's prev_instr is one unit
 * before co_code_adaptive, which is offset -2 (3.13 starts at unit 0, but
 * the arithmetic is the same). */
static void before_first_instruction_is_negative(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[4];
    bool truncated;

    uint64_t raw = L->frames == PF_FRAMES_OBJECT ? (uint64_t)-1
                                                 : fx->g + L->code.code_adaptive.off - 2;
    int64_t want = L->frames == PF_FRAMES_OBJECT ? -1 : -2;
    uint64_t outer = fake_frame(fx->img, L, frame_at(0), fx->f, 0, fake_instr(L, fx->f, 6), 0);
    uint64_t inner = fake_frame(fx->img, L, frame_at(1), fx->g, outer, raw, 0);
    assert_int_equal(walk_ok(fx, inner, recs, 4, &truncated), 2);
    assert_int_equal(recs[0].code_addr, fx->g);
    assert_true(recs[0].offset < 0);
    assert_int_equal(recs[0].offset, want);
    assert_int_equal(recs[1].offset, 6);
}

/* 3.11+: the owner is copied; a generator's frame is an ordinary record. */
static void owner_is_recorded(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[4];
    bool truncated;

    if (!has_iframes(L))
        skip();
    uint64_t outer = fake_frame(fx->img, L, frame_at(0), fx->f, 0, fake_instr(L, fx->f, 2), 0);
    uint64_t gen = fake_frame(fx->img, L, frame_at(1), fx->g, outer, fake_instr(L, fx->g, 8),
                              L->caps.owner_generator);
    assert_int_equal(walk_ok(fx, gen, recs, 4, &truncated), 2);
    assert_int_equal(recs[0].code_addr, fx->g);
    assert_int_equal(recs[0].owner, L->caps.owner_generator);
    assert_int_equal(recs[0].offset, 8);
    assert_int_equal(recs[1].owner, 0);
}

/* 3.12+: frames owned by the C stack are skipped wherever they are: at the
 * bottom of the thread and between C and Python. 3.12 shims have a real
 * code object (<interpreter trampoline>), 3.13 ones f_executable = None. */
static void shim_frames_skipped(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[8];
    bool truncated;

    if (!has_iframes(L) || L->caps.shim_owners == 0)
        skip();
    uint8_t cs = first_shim_owner(L);
    uint64_t shim_code =
        L->key.minor == 12 ? fake_code(fx->img, L, CODE_SHIM, "<shim>", "<interpreter trampoline>",
                                       0, LT, sizeof(LT))
                           : FAKE_NONE;
    uint64_t shim_instr = L->key.minor == 12 ? fake_instr(L, shim_code, 0) : 0;

    /* bottom shim <- f <- shim <- g <- h (innermost) */
    uint64_t s0 = fake_frame(fx->img, L, frame_at(0), shim_code, 0, shim_instr, cs);
    uint64_t f = py_frame(fx, frame_at(1), fx->f, s0, 2);
    uint64_t s1 = fake_frame(fx->img, L, frame_at(2), shim_code, f, shim_instr, cs);
    uint64_t g = py_frame(fx, frame_at(3), fx->g, s1, 4);
    uint64_t h = py_frame(fx, frame_at(4), fx->h, g, 6);
    size_t n = walk_ok(fx, h, recs, 8, &truncated);
    assert_int_equal(n, 3);
    assert_false(truncated);
    assert_int_equal(recs[0].code_addr, fx->h);
    assert_int_equal(recs[1].code_addr, fx->g);
    assert_int_equal(recs[2].code_addr, fx->f);
    assert_int_equal(recs[2].offset, 2);

    /* Shims do not use up the cap: three Python frames fit in three, the
     * shim in between costs no record. (Whether the bottom shim left
     * unread counts as "truncated" is not asserted: the walker cannot know
     * without reading on.) */
    n = walk_ok(fx, h, recs, 3, &truncated);
    assert_int_equal(n, 3);
    assert_int_equal(recs[2].code_addr, fx->f);
    n = walk_ok(fx, h, recs, 2, &truncated);
    assert_int_equal(n, 2);
    assert_true(truncated);

    /* Every owner the layout lists is a shim's (3.14 lists two). */
    for (uint8_t o = 0; o < 8; o++) {
        if (!(L->caps.shim_owners >> o & 1u))
            continue;
        fake_frame(fx->img, L, frame_at(5u + o), shim_code, h, shim_instr, o);
        n = walk_ok(fx, frame_at(5u + o), recs, 8, &truncated);
        assert_int_equal(n, 3);
        assert_int_equal(recs[0].code_addr, fx->h);
    }
    /* An owner it does not list is a frame of the program, whatever its
     * value: FRAME_OWNED_BY_FRAME_OBJECT (2) sits below every shim owner. */
    fake_frame(fx->img, L, frame_at(13), fx->f, h, fake_instr(L, fx->f, 8), 2);
    n = walk_ok(fx, frame_at(13), recs, 8, &truncated);
    assert_int_equal(n, 4);
    assert_int_equal(recs[0].code_addr, fx->f);
    assert_int_equal(recs[0].owner, 2);

    /* A thread inside nothing but a shim has no Python frames. */
    n = walk_ok(fx, s0, recs, 8, &truncated);
    assert_int_equal(n, 0);
    assert_false(truncated);
}

/* A frame whose back pointer is itself: corrupt, at once. */
static void self_loop_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    uint64_t self = py_frame(fx, frame_at(0), fx->f, frame_at(0), 2);

    walk_err(fx, self, 8, PF_ERR_CORRUPT);
    walk_err(fx, self, PF_MAX_DEPTH, PF_ERR_CORRUPT);
    /* ... also further down the chain. */
    uint64_t top = py_frame(fx, frame_at(1), fx->g, self, 4);
    walk_err(fx, top, 8, PF_ERR_CORRUPT);
}

/* A -> B -> A, walked with caps well past the cycle: a loop is corrupt,
 * never a deep stack cut at the cap. */
static void two_cycle_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    uint64_t a = py_frame(fx, frame_at(0), fx->f, frame_at(1), 2);
    uint64_t b = py_frame(fx, frame_at(1), fx->g, a, 4);
    const size_t caps[] = {3, 4, 5, 8, 100, PF_MAX_DEPTH, PF_MAX_DEPTH + 1};

    (void)b;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        walk_err(fx, a, caps[i], PF_ERR_CORRUPT);

    /* A cycle below a normal top: top -> A -> B -> A ... */
    uint64_t top = py_frame(fx, frame_at(2), fx->h, a, 6);
    walk_err(fx, top, 8, PF_ERR_CORRUPT);
    walk_err(fx, top, PF_MAX_DEPTH, PF_ERR_CORRUPT);
}

/* The cap equal to the cycle's length: the walk stops with the whole cycle
 * recorded and the next frame (A again) unvisited. It is still a loop. */
static void cycle_as_long_as_cap_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    uint64_t a = py_frame(fx, frame_at(0), fx->f, frame_at(1), 2);
    py_frame(fx, frame_at(1), fx->g, a, 4);

    walk_err(fx, a, 2, PF_ERR_CORRUPT);
}

/* 3.12+: a cycle made only of shim frames records nothing, but is a loop
 * all the same, not a truncated empty stack. */
static void shim_cycle_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    if (!has_iframes(L) || L->caps.shim_owners == 0)
        skip();
    uint8_t cs = first_shim_owner(L);
    uint64_t s1 = fake_frame(fx->img, L, frame_at(0), FAKE_NONE, frame_at(1), 0, cs);
    fake_frame(fx->img, L, frame_at(1), FAKE_NONE, s1, 0, cs);
    uint64_t top = py_frame(fx, frame_at(2), fx->g, s1, 4);

    walk_err(fx, s1, PF_MAX_DEPTH, PF_ERR_CORRUPT);
    walk_err(fx, top, PF_MAX_DEPTH, PF_ERR_CORRUPT);
}

/* A chain of `len` distinct frames, frame_at(0) innermost; frame i runs at
 * offset 2 * i so each record can be told apart. */
static uint64_t chain(struct fixture *fx, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t back = i + 1 < len ? frame_at(i + 1) : 0;
        py_frame(fx, frame_at(i), i % 2 ? fx->g : fx->f, back, (int64_t)(2 * i));
    }
    return frame_at(0);
}

/* Deeper than the cap: exactly cap records, the innermost ones, marked
 * truncated. Exactly as deep as the cap: not truncated. */
static void longer_than_cap_is_truncated(void **state)
{
    struct fixture *fx = *state;
    struct pf_frame_rec recs[16];
    bool truncated;
    uint64_t top = chain(fx, 10);

    size_t n = walk_ok(fx, top, recs, 4, &truncated);
    assert_int_equal(n, 4);
    assert_true(truncated);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(recs[i].code_addr, i % 2 ? fx->g : fx->f);
        assert_int_equal(recs[i].offset, 2 * i);
    }

    n = walk_ok(fx, top, recs, 10, &truncated);
    assert_int_equal(n, 10);
    assert_false(truncated);
    assert_int_equal(recs[9].offset, 18);

    n = walk_ok(fx, top, recs, 9, &truncated);
    assert_int_equal(n, 9);
    assert_true(truncated);

    n = walk_ok(fx, top, recs, 16, &truncated);
    assert_int_equal(n, 10);
    assert_false(truncated);

    /* cap 0: nothing fits; the chain goes on, so it is truncated. */
    n = walk_ok(fx, top, recs, 0, &truncated);
    assert_int_equal(n, 0);
    assert_true(truncated);
}

/* A caller's cap above PF_MAX_DEPTH is clamped: a real (acyclic) stack
 * deeper than PF_MAX_DEPTH gives PF_MAX_DEPTH records, truncated. */
static void deep_stack_clamped_to_max_depth(void **state)
{
    struct fixture *fx = *state;
    size_t cap = BIG_CAP;
    struct pf_frame_rec *recs = fx->big;
    bool truncated;

    uint64_t top = chain(fx, PF_MAX_DEPTH + 5);
    size_t n = walk_ok(fx, top, recs, cap, &truncated);
    assert_int_equal(n, PF_MAX_DEPTH);
    assert_true(truncated);
    assert_int_equal(recs[PF_MAX_DEPTH - 1].offset, 2 * (PF_MAX_DEPTH - 1));

    n = walk_ok(fx, top, recs, PF_MAX_DEPTH, &truncated);
    assert_int_equal(n, PF_MAX_DEPTH);
    assert_true(truncated);
}

/* Frame pointers into unmapped memory fault: first or further down. */
static void unmapped_frame_is_fault(void **state)
{
    struct fixture *fx = *state;

    walk_err(fx, UNMAPPED, 8, PF_ERR_FAULT);
    uint64_t top = py_frame(fx, frame_at(0), fx->g, UNMAPPED, 4);
    walk_err(fx, top, 8, PF_ERR_FAULT);
    /* A frame whose end runs off its mapping. */
    size_t size = fx->L->frames == PF_FRAMES_OBJECT ? fx->L->pyframe.size : fx->L->iframe.size;
    uint64_t edge = frame_at(0) + 0x100 - size + 1;
    walk_err(fx, edge, 8, PF_ERR_FAULT);
}

/* No frame at all: no records, not truncated, nothing read. */
static void null_first_frame(void **state)
{
    struct fixture *fx = *state;
    struct pf_frame_rec recs[4];
    bool truncated;

    py_frame(fx, frame_at(0), fx->g, 0, 4); /* mapped, but not where we start */
    fx->mem.reads = 0;
    assert_int_equal(walk_ok(fx, 0, recs, 4, &truncated), 0);
    assert_false(truncated);
    assert_int_equal(fx->mem.reads, 0);
}

/* <= 3.10: one read per frame object: the walk stays cheap inside the
 * stop window. */
static void one_read_per_frame(void **state)
{
    struct fixture *fx = *state;
    struct pf_frame_rec recs[16];
    bool truncated;
    if (has_iframes(fx->L))
        skip(); /* see frames_share_reads */
    uint64_t top = chain(fx, 7);

    fx->mem.reads = 0;
    assert_int_equal(walk_ok(fx, top, recs, 16, &truncated), 7);
    assert_int_equal(fx->mem.reads, 7);
}

/* 3.11+: frames on the thread's data stack sit each just above its caller;
 * one read below the innermost frame takes in its callers: 7 frames, one
 * read that faults below the stack's start and one that succeeds. */
static void frames_share_reads(void **state)
{
    struct fixture *fx = *state;
    struct pf_frame_rec recs[16];
    bool truncated;
    if (!has_iframes(fx->L))
        skip();
    for (size_t i = 0; i < 7; i++) /* frame i calls frame i - 1: callers below */
        py_frame(fx, frame_at(i), i % 2 ? fx->g : fx->f, i ? frame_at(i - 1) : 0, (int64_t)(2 * i));

    fx->mem.reads = 0;
    assert_int_equal(walk_ok(fx, frame_at(6), recs, 16, &truncated), 7);
    assert_true(fx->mem.reads <= 2);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(recs[i].code_addr, (6 - i) % 2 ? fx->g : fx->f);
        assert_int_equal(recs[i].offset, (int64_t)(2 * (6 - i)));
    }
}

/* --native: pf_frame_walk_runs. Walk, expecting success. */
static size_t walk_runs_ok(struct fixture *fx, uint64_t first, struct pf_frame_rec *recs,
                           size_t cap, bool *truncated)
{
    size_t n = 99999;
    *truncated = true;
    assert_int_equal(pf_frame_walk_runs(&fx->mem, fx->L, first, recs, cap, &n, truncated), PF_OK);
    assert_true(n <= cap);
    return n;
}

/* The records as a string, innermost first: "h g | f |" where "|" is a run
 * end, so a test states the whole shape at once. */
static const char *shape(struct fixture *fx, const struct pf_frame_rec *recs, size_t n)
{
    static char buf[256];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len + 4 < sizeof(buf); i++) {
        const char *what = "?";
        if (recs[i].flags & PF_FRAME_RUN_END) {
            assert_int_equal(recs[i].code_addr, 0);
            what = "|";
        } else if (recs[i].code_addr == fx->f) {
            what = "f";
        } else if (recs[i].code_addr == fx->g) {
            what = "g";
        } else if (recs[i].code_addr == fx->h) {
            what = "h";
        }
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? " " : "", what);
    }
    return buf;
}

/* 3.11: mark a frame as the first its C call of the eval loop ran. */
static void set_entry(struct fixture *fx, uint64_t frame)
{
    const struct pf_layout *L = fx->L;
    assert_int_not_equal(L->iframe.is_entry.width, 0);
    assert_int_equal(pf_image_write_uint(fx->img, frame + L->iframe.is_entry.off, 1,
                                         L->iframe.is_entry.width), PF_OK);
}

/* f, called from C, calls g from C again (through a C function), and g calls
 * h from Python: two C calls of the eval loop. Each version says so its own
 * way, and the walk reports it the same way: "h g | f |". Up to 3.10 each
 * frame has its own C call: "h | g | f |". */
static void runs_end_where_eval_calls_begin(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[16];
    bool truncated;
    uint64_t top;

    if (!has_iframes(L)) {
        uint64_t f = py_frame(fx, frame_at(0), fx->f, 0, 2);
        uint64_t g = py_frame(fx, frame_at(1), fx->g, f, 4);
        top = py_frame(fx, frame_at(2), fx->h, g, 6);
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, top, recs, 16, &truncated)),
                            "h | g | f |");
    } else if (L->caps.shim_owners == 0) {
        /* 3.11: is_entry on the first frame of each C call */
        uint64_t f = py_frame(fx, frame_at(0), fx->f, 0, 2);
        uint64_t g = py_frame(fx, frame_at(1), fx->g, f, 4);
        top = py_frame(fx, frame_at(2), fx->h, g, 6);
        set_entry(fx, f);
        set_entry(fx, g);
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, top, recs, 16, &truncated)),
                            "h g | f |");
    } else {
        /* 3.12+: a shim below the first frame of each C call */
        uint8_t cs = first_shim_owner(L);
        uint64_t shim_code = L->key.minor == 12 ? fake_code(fx->img, L, CODE_SHIM, "<shim>",
                                                            "<interpreter trampoline>", 0, LT, sizeof(LT))
                                                : FAKE_NONE;
        uint64_t si = L->key.minor == 12 ? fake_instr(L, shim_code, 0) : 0;
        uint64_t s0 = fake_frame(fx->img, L, frame_at(0), shim_code, 0, si, cs);
        uint64_t f = py_frame(fx, frame_at(1), fx->f, s0, 2);
        uint64_t s1 = fake_frame(fx->img, L, frame_at(2), shim_code, f, si, cs);
        uint64_t g = py_frame(fx, frame_at(3), fx->g, s1, 4);
        top = py_frame(fx, frame_at(4), fx->h, g, 6);
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, top, recs, 16, &truncated)),
                            "h g | f |");
        /* A C call of the eval loop caught before its first frame (or after
         * its last): a shim on top, an empty run. */
        uint64_t s2 = fake_frame(fx->img, L, frame_at(5), shim_code, top, si, cs);
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, s2, recs, 16, &truncated)),
                            "| h g | f |");
    }
    assert_false(truncated);
    /* The frames themselves are what pf_frame_walk gives. */
    size_t n = walk_runs_ok(fx, top, recs, 16, &truncated);
    assert_int_equal(recs[0].code_addr, fx->h);
    assert_int_equal(recs[0].offset, 6);
    /* Without runs, the same chain has no run-end records (and 3.12+ shims
     * are skipped). */
    n = walk_ok(fx, top, recs, 16, &truncated);
    assert_string_equal(shape(fx, recs, n), "h g f");
}

/* A frame and its run end need room together: the walk stops before a frame
 * whose end would not fit, and says it was cut. */
static void runs_cap_keeps_frame_and_end(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[16];
    bool truncated;
    uint64_t top = chain(fx, 3);

    if (has_iframes(L) && L->caps.shim_owners == 0)
        for (size_t i = 0; i < 3; i++)
            set_entry(fx, frame_at(i)); /* 3.11: every frame entered from C */
    if (!has_iframes(L) || L->caps.shim_owners == 0) {
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, top, recs, 6, &truncated)),
                            "f | g | f |");
        assert_false(truncated);
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, top, recs, 5, &truncated)),
                            "f | g |");
        assert_true(truncated);
    } else {
        /* 3.12+ without shims: frames only, never an end. */
        assert_string_equal(shape(fx, recs, walk_runs_ok(fx, top, recs, 6, &truncated)), "f g f");
        assert_false(truncated);
    }
}

/* At most PF_MAX_DEPTH frames, with their ends, whatever cap is given. */
static void runs_deep_stack_clamped(void **state)
{
    struct fixture *fx = *state;
    struct pf_frame_rec *recs = calloc(PF_FRAME_RUNS_MAX + 10, sizeof(*recs));
    bool truncated;
    size_t frames = 0;

    assert_non_null(recs);
    uint64_t top = chain(fx, PF_MAX_DEPTH + 5);
    size_t n = walk_runs_ok(fx, top, recs, PF_FRAME_RUNS_MAX + 10, &truncated);
    for (size_t i = 0; i < n; i++)
        frames += !(recs[i].flags & PF_FRAME_RUN_END);
    free(recs);
    assert_int_equal(frames, PF_MAX_DEPTH);
    assert_true(truncated);
    assert_int_equal(n, has_iframes(fx->L) ? PF_MAX_DEPTH : PF_FRAME_RUNS_MAX);
}

/* Loops are as corrupt with runs as without. */
static void runs_loop_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    size_t n = 4242;
    bool truncated = false;
    uint64_t a = py_frame(fx, frame_at(0), fx->f, frame_at(1), 2);
    py_frame(fx, frame_at(1), fx->g, a, 4);

    assert_int_equal(pf_frame_walk_runs(&fx->mem, fx->L, a, fx->big, BIG_CAP, &n, &truncated),
                     PF_ERR_CORRUPT);
    assert_int_equal(n, 4242);
}

/* 3.14: the eval loop's entry frame is owned by the interpreter
 * (FRAME_OWNED_BY_INTERPRETER = 3, below FRAME_OWNED_BY_CSTACK = 4), so a
 * walker that skipped "owner >= the C-stack value" would show it as a
 * frame of the program. Run on the 3.14 capabilities only. */
static void interpreter_owned_frames_skipped(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;
    struct pf_frame_rec recs[16];
    bool truncated;
    const uint8_t interpreter = 3, cstack = 4; /* enum _frameowner, 3.14 */

    assert_true(L->caps.shim_owners >> interpreter & 1u);
    assert_true(L->caps.shim_owners >> cstack & 1u);
    /* entry <- f <- entry <- g (innermost), as _PyEval_EvalFrameDefault
     * pushes them: f_executable None, owner INTERPRETER. */
    uint64_t e0 = fake_frame(fx->img, L, frame_at(0), FAKE_NONE, 0, 0, interpreter);
    uint64_t f = py_frame(fx, frame_at(1), fx->f, e0, 2);
    uint64_t e1 = fake_frame(fx->img, L, frame_at(2), FAKE_NONE, f, 0, interpreter);
    uint64_t g = py_frame(fx, frame_at(3), fx->g, e1, 4);
    size_t n = walk_ok(fx, g, recs, 16, &truncated);
    assert_string_equal(shape(fx, recs, n), "g f");
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(recs[i].owner, interpreter);
    /* Each entry frame is where a C call of the eval loop begins. */
    n = walk_runs_ok(fx, g, recs, 16, &truncated);
    assert_string_equal(shape(fx, recs, n), "g | f |");
    /* And a C-stack-owned frame is skipped too. */
    fake_frame(fx->img, L, frame_at(4), FAKE_NONE, g, 0, cstack);
    n = walk_ok(fx, frame_at(4), recs, 16, &truncated);
    assert_string_equal(shape(fx, recs, n), "g f");
}

#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)L)

int main(void)
{
    int failed = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            T(first_frame_from_tstate),
            T(first_frame_through_cframe),
            T(walks_two_and_three_frames),
            T(offsets_by_version),
            T(before_first_instruction_is_negative),
            T(owner_is_recorded),
            T(shim_frames_skipped),
            T(self_loop_is_corrupt),
            T(two_cycle_is_corrupt),
            T(cycle_as_long_as_cap_is_corrupt),
            T(shim_cycle_is_corrupt),
            T(longer_than_cap_is_truncated),
            T(deep_stack_clamped_to_max_depth),
            T(unmapped_frame_is_fault),
            T(null_first_frame),
            T(one_read_per_frame),
            T(frames_share_reads),
            T(runs_end_where_eval_calls_begin),
            T(runs_cap_keeps_frame_and_end),
            T(runs_deep_stack_clamped),
            T(runs_loop_is_corrupt),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }

    /* 3.14, read through _Py_DebugOffsets: the 3.13 offsets with 3.14's
     * capabilities (layout.c), as pf_debug_offsets_layout builds it. */
    const struct pf_layout_later *row = pf_layout_later(3, 14);
    assert_non_null(row);
    static struct pf_layout l314;
    l314 = *pf_layout_find(3, 13, 0);
    l314.key.minor = 14;
    l314.linetable = row->linetable;
    l314.frames = row->frames;
    l314.gil = row->gil;
    l314.str = row->str;
    l314.caps = row->caps;
    {
        const struct pf_layout *L = &l314;
        const struct CMUnitTest tests[] = {
            T(walks_two_and_three_frames),
            T(owner_is_recorded),
            T(shim_frames_skipped),
            T(interpreter_owned_frames_skipped),
            T(shim_cycle_is_corrupt),
            T(runs_end_where_eval_calls_begin),
        };
        failed += cmocka_run_group_tests_name("3.14 (3.13 offsets, 3.14 capabilities)", tests,
                                              NULL, NULL);
    }
    return failed != 0;
}

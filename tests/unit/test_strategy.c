/* The sampling strategies (strategy_gil.c, strategy_threads.c,
 * strategy_nonblocking.c) driving a struct pf_tick over a fake CPython in
 * an image (fake_python.h) and a fake traced process (fake_proc.h, linked
 * in place of src/target/proc.c), once per generated layout.
 *
 * The process has three Python threads in the main interpreter:
 *   thread 0, TID 101, running ('R'):  app.py main:11 -> app.py work:22
 *   thread 1, TID 102, sleeping ('S'): threading.py run:42 -> lib.py wait:31
 *   thread 2, TID 103, running ('R'):  threading.py run:42 -> calc.py compute:52
 * and one of them (thread 0 unless a test says otherwise) holds the GIL.
 * The tests assert on what is counted (the aggregate, read back as text)
 * and on the fake process's record: which threads were stopped, in which
 * stop calls, that each was resumed, and that nothing else (a /proc read,
 * a TLS lookup) happened while a thread was held.
 *
 * Memory changes between reads come from two hooks: the fake process's
 * on_stop (the target moves on as a thread is stopped: it releases the
 * GIL), and a wrapper around the image's pf_mem that moves one frame's
 * instruction before every batched read (a thread that runs while it is
 * read: its two live copies disagree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_proc.h"
#include "fake_python.h"
#include "pyflame/base/intern.h"
#include "pyflame/cpython/interp.h"
#include "pyflame/cpython/layout.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/profile/agg.h"
#include "pyflame/sample/tick.h"
#include "pyflame/target/image.h"
#include "pyflame/target/mem.h"

#define RUNTIME 0x100000ull     /* _PyRuntime, or the 2.7/3.6 variables */
#define CURRENT_VAR 0x100040ull /* 2.7/3.6 _PyThreadState_Current */
#define INTERP 0x200000ull
#define GIL 0x300000ull       /* 3.12+ the main interpreter's _gil_runtime_state */
#define TSTATES 0x400000ull   /* thread i's state at TSTATES + i * 0x1000 */
#define FRAMES 0x800000ull    /* thread i's frame j at FRAMES + i * 0x10000 + j * 0x1000 */
#define CODES 0x1000000ull    /* code object k at CODES + k * 0x10000 */
#define TLS 0x7f0000000000ull /* <= 3.10 pthread_self() of thread i: TLS + i * 0x10000, unmapped */

#define NTHREADS 3
#define DEPTH 2

enum { C_MAIN, C_WORK, C_RUN, C_WAIT, C_CALC, NCODES };
static const struct {
    const char *file, *name;
    int first;
} CODE[NCODES] = {
    {"app.py", "main", 10},       {"app.py", "work", 20},     {"threading.py", "run", 40},
    {"lib.py", "wait", 30},       {"calc.py", "compute", 50},
};

/* Each thread's frames, root first: code and byte offset. Offsets 0..3 are
 * on the code's first line + 1, offsets 4..~250 on its first line + 2. */
static const struct {
    pid_t tid;
    char state;
    int code[DEPTH];
    int offset[DEPTH];
} THREAD[NTHREADS] = {
    {101, 'R', {C_MAIN, C_WORK}, {0, 6}},
    {102, 'S', {C_RUN, C_WAIT}, {4, 0}},
    {103, 'R', {C_RUN, C_CALC}, {4, 8}},
};

/* The stacks as counted (root first), and with the sleeper's idle mark. */
#define S0 "app.py:main:11;app.py:work:22"
#define S1 "threading.py:run:42;lib.py:wait:31"
#define S1_IDLE S1 ";(idle)"
#define S2 "threading.py:run:42;calc.py:compute:52"

/* Line tables giving the lines above, one per format. */
static const uint8_t LNOTAB[] = {0x00, 0x01, 0x04, 0x01};
static const uint8_t LINETABLE_310[] = {0x04, 0x01, 0xf0, 0x01};
/* 3.11+ entries without columns (code 13): 2 code units on line +1, then
 * 8 units on line +1, then 8 units at a time on the same line. */
static const uint8_t LOCATIONS_311[] = {
    0xe9, 0x02, 0xef, 0x02, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00,
    0xef, 0x00, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00, 0xef, 0x00,
    0xef, 0x00, 0xef, 0x00,
};

struct fixture {
    const struct pf_layout *L;
    struct pf_image *img;
    struct pf_mem image_mem; /* the image */
    struct pf_mem mem;       /* what the tick reads: image_mem, with the hook */
    struct pf_target target;
    struct pf_intern *names;
    struct pf_agg *agg;
    struct pf_proc *proc;
    struct pf_tick tick;
    bool tick_ready;
    /* before every batched read: move this frame's instruction 2 bytes on */
    uint64_t bump_frame, bump_code;
    int64_t bump_offset;
    unsigned bumps;
    /* the fake process's on_stop: the GIL is released, work() returns */
    bool release_on_stop;
    /* ... or, at the next stop, the GIL goes to this thread state */
    uint64_t handover_on_stop;
    /* ... or, at every stop, this frame names this code object */
    uint64_t recode_frame, recode_code;
    /* -d */
    struct pf_thread_stack dumped[8];
    size_t ndumped;
};

/* The image's reader, with a hook before each batched read. */
static pf_err hooked_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
    struct fixture *fx = ctx;
    return fx->image_mem.ops->read(fx->image_mem.ctx, addr, dst, len);
}

static void write_instr(struct fixture *fx, uint64_t frame, uint64_t code, int64_t offset)
{
    const struct pf_layout *L = fx->L;
    struct pf_field fi = L->frames == PF_FRAMES_OBJECT ? L->pyframe.lasti : L->iframe.instr;
    assert_int_equal(pf_image_write_uint(fx->img, frame + fi.off, fake_instr(L, code, offset), fi.width),
                     PF_OK);
}

static pf_err hooked_readv(void *ctx, const struct pf_iov *iov, size_t n, unsigned char *ok)
{
    struct fixture *fx = ctx;
    if (fx->bump_frame) {
        fx->bump_offset += 2;
        fx->bumps++;
        write_instr(fx, fx->bump_frame, fx->bump_code, fx->bump_offset);
    }
    return fx->image_mem.ops->readv(fx->image_mem.ctx, iov, n, ok);
}

static const struct pf_mem_ops HOOKED_OPS = {.read = hooked_read, .readv = hooked_readv};

static uint64_t ts(size_t i)
{
    return TSTATES + i * 0x1000;
}

static uint64_t frame_addr(size_t i, size_t j)
{
    return FRAMES + i * 0x10000 + j * 0x1000;
}

static uint64_t code_addr(int k)
{
    return CODES + (uint64_t)k * 0x10000;
}

static void set_field(struct fixture *fx, uint64_t obj, struct pf_field f, uint64_t v)
{
    assert_int_not_equal(f.width, 0);
    assert_int_equal(pf_image_write_uint(fx->img, obj + f.off, v, f.width), PF_OK);
}

/* Who holds the GIL, the way this version records it (test_interp.c). */
static void set_holder(struct fixture *fx, uint64_t holder)
{
    const struct pf_layout *L = fx->L;
    switch (L->gil) {
    case PF_GIL_CURRENT_SYMBOL:
        assert_int_equal(pf_image_write_uint(fx->img, CURRENT_VAR, holder, 8), PF_OK);
        break;
    case PF_GIL_RUNTIME_CURRENT:
        set_field(fx, RUNTIME, L->runtime.tstate_current, holder);
        set_field(fx, RUNTIME, L->runtime.gil_locked, holder != 0);
        if (holder)
            set_field(fx, RUNTIME, L->runtime.gil_last_holder, holder);
        break;
    case PF_GIL_INTERP_GIL:
        set_field(fx, GIL, L->gilstate.locked, holder != 0);
        if (holder)
            set_field(fx, GIL, L->gilstate.last_holder, holder);
        break;
    default:
        fail_msg("unknown GIL kind %u", L->gil);
    }
}

/* Point thread i at a new innermost frame. */
static void set_innermost(struct fixture *fx, size_t i, uint64_t frame)
{
    const struct pf_layout *L = fx->L;
    if (L->frames == PF_FRAMES_CFRAME)
        set_field(fx, ts(i) + 0x800, L->cframe.current_frame, frame);
    else
        set_field(fx, ts(i), L->tstate.frame, frame);
}

/* Frame j of thread i names the object at code (a code object, or none). */
static void set_code(struct fixture *fx, size_t i, size_t j, uint64_t code)
{
    const struct pf_layout *L = fx->L;
    set_field(fx, frame_addr(i, j), L->frames == PF_FRAMES_OBJECT ? L->pyframe.code : L->iframe.code,
              code);
}

/* No code object there: the frame reads as it would when torn. */
#define NOT_CODE (CODES + NCODES * 0x10000ull)

static const uint8_t *line_table(const struct pf_layout *L, size_t *len)
{
    switch (L->linetable) {
    case PF_LT_LNOTAB_27:
    case PF_LT_LNOTAB_36: *len = sizeof(LNOTAB); return LNOTAB;
    case PF_LT_LINETABLE_310: *len = sizeof(LINETABLE_310); return LINETABLE_310;
    default: *len = sizeof(LOCATIONS_311); return LOCATIONS_311;
    }
}

static void on_stop(void *ctx, pid_t tid)
{
    struct fixture *fx = ctx;
    (void)tid;
    if (fx->release_on_stop) {
        set_holder(fx, 0);
        set_innermost(fx, 0, frame_addr(0, 0));
    }
    if (fx->handover_on_stop) {
        set_holder(fx, fx->handover_on_stop);
        fx->handover_on_stop = 0;
    }
    if (fx->recode_frame) {
        const struct pf_layout *L = fx->L;
        set_field(fx, fx->recode_frame,
                  L->frames == PF_FRAMES_OBJECT ? L->pyframe.code : L->iframe.code, fx->recode_code);
    }
}

/* The process of the header comment, thread 0 holding the GIL; the tick
 * is not initialised yet (tests set its options first: start()). */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    const struct pf_layout *L = fx->L = *state;
    *state = fx;
    assert_int_equal(pf_image_new(&fx->img), PF_OK);
    assert_int_equal(pf_mem_open_image(fx->img, &fx->image_mem), PF_OK);
    fx->mem = (struct pf_mem){.ops = &HOOKED_OPS, .ctx = fx};
    assert_int_equal(pf_intern_new(&fx->names), PF_OK);
    assert_int_equal(pf_agg_new(&fx->agg), PF_OK);
    fx->proc = fake_proc_new();
    assert_non_null(fx->proc);
    fx->proc->on_stop = on_stop;
    fx->proc->on_stop_ctx = fx;

    /* The runtime, found the way pf_interp_discover would (test_interp.c). */
    size_t size = L->runtime.size > 0x100 ? L->runtime.size : 0x100;
    assert_int_equal(pf_image_map(fx->img, RUNTIME, (size + 15) & ~(size_t)15), PF_OK);
    fx->target.layout = L;
    fx->target.version = (struct pf_pyver){.major = L->key.major, .minor = L->key.minor};
    if (L->runtime.size) {
        fx->target.runtime_addr = RUNTIME;
        set_field(fx, RUNTIME, L->runtime.interp_head, INTERP);
        if (L->runtime.interp_main.width)
            set_field(fx, RUNTIME, L->runtime.interp_main, INTERP);
    } else {
        fx->target.interp_head_addr = RUNTIME;
        fx->target.tstate_current_addr = CURRENT_VAR;
        assert_int_equal(pf_image_write_uint(fx->img, RUNTIME, INTERP, 8), PF_OK);
    }
    fx->target.types = (struct pf_pytypes){FAKE_TYPE_CODE, FAKE_TYPE_STR,
                                           L->str == PF_STR_BYTES ? FAKE_TYPE_STR : FAKE_TYPE_BYTES};

    size_t lt_len;
    const uint8_t *lt = line_table(L, &lt_len);
    for (int k = 0; k < NCODES; k++) {
        fake_code(fx->img, L, code_addr(k), CODE[k].file, CODE[k].name, CODE[k].first, lt, lt_len);
        /* the table says what the header comment says */
        int line;
        assert_int_equal(pf_linetable_line(L->linetable, lt, lt_len, 7, 0, &line), PF_OK);
        assert_int_equal(line, 8);
        assert_int_equal(pf_linetable_line(L->linetable, lt, lt_len, 7, 200, &line), PF_OK);
        assert_int_equal(line, 9);
    }

    /* Threads, newest first in the interpreter's list: 2 -> 1 -> 0. */
    bool gil_struct = L->gil == PF_GIL_INTERP_GIL;
    fake_interp(fx->img, L, INTERP, 0, ts(NTHREADS - 1), gil_struct ? GIL : 0);
    if (gil_struct)
        fake_gil(fx->img, L, GIL, 0, 0);
    for (size_t i = 0; i < NTHREADS; i++) {
        uint64_t back = 0;
        for (size_t j = 0; j < DEPTH; j++) {
            uint64_t code = code_addr(THREAD[i].code[j]);
            back = fake_frame(fx->img, L, frame_addr(i, j), code, back,
                              fake_instr(L, code, THREAD[i].offset[j]), 0);
        }
        fake_tstate(fx->img, L, ts(i), INTERP, i ? ts(i - 1) : 0, back);
        uint64_t tls = TLS + i * 0x10000;
        set_field(fx, ts(i), L->tstate.thread_id, tls);
        if (L->tstate.native_thread_id.width)
            set_field(fx, ts(i), L->tstate.native_thread_id, (uint64_t)THREAD[i].tid);
        assert_non_null(fake_proc_add(fx->proc, THREAD[i].tid, THREAD[i].state, tls));
    }
    set_holder(fx, ts(0));
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx->tick_ready)
        pf_tick_release(&fx->tick);
    free(fx->proc);
    pf_agg_free(fx->agg);
    pf_intern_free(fx->names);
    pf_mem_close(&fx->image_mem);
    pf_image_free(fx->img);
    free(fx);
    return 0;
}

static void dump(void *ctx, const struct pf_thread_stack *thread)
{
    struct fixture *fx = ctx;
    assert_true(fx->ndumped < sizeof(fx->dumped) / sizeof(fx->dumped[0]));
    fx->dumped[fx->ndumped] = *thread;
    fx->dumped[fx->ndumped].frames = NULL; /* t->ids: not ours to keep */
    fx->ndumped++;
}

/* The tick, as pf_sampler_new and its discovery set it up. */
static void start(struct fixture *fx, struct pf_tick_opts opts)
{
    opts.line_numbers = true;
    if (opts.dump) {
        opts.dump = dump;
        opts.dump_ctx = fx;
    }
    fx->tick = (struct pf_tick){
        .proc = fx->proc, .mem = &fx->mem, .names = fx->names, .agg = fx->agg, .opts = opts};
    fx->tick_ready = true;
    assert_int_equal(pf_tick_init(&fx->tick), PF_OK);
    assert_int_equal(pf_tick_target_ready(&fx->tick, &fx->target), PF_OK);
}

/* One tick of a strategy, as the sampler runs it; then nothing may be
 * left stopped, and the fake saw no misuse. */
static void tick(struct fixture *fx, const struct pf_strategy *s)
{
    fx->tick.tick_no++;
    assert_int_equal(s->tick(&fx->tick), PF_OK);
    assert_false(fx->tick.nomem);
    assert_int_equal(fake_proc_held(fx->proc), 0);
    if (fx->proc->violations)
        fail_msg("fake process: %u violation(s), the first: %s", fx->proc->violations,
                 fx->proc->first_violation);
}

/* Stack i of the aggregate as text: "file:name:line;..." root first. */
static void stack_text(struct fixture *fx, size_t i, char *buf, size_t cap, uint64_t *count)
{
    const uint32_t *frames;
    size_t n, k = 0;
    pf_agg_stack_at(fx->agg, i, &frames, &n, count);
    buf[0] = '\0';
    for (size_t j = 0; j < n; j++) {
        const struct pf_frame_text *f = pf_intern_frame_get(fx->names, frames[j]);
        const char *sep = j ? ";" : "";
        if (f->kind == PF_FRAME_PYTHON)
            k += (size_t)snprintf(buf + k, cap - k, "%s%s:%s:%d", sep, pf_intern_text(fx->names, f->file),
                                  pf_intern_text(fx->names, f->name), (int)f->line);
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", sep, pf_intern_text(fx->names, f->name));
        assert_true(k < cap);
    }
}

/* How many samples the stack `want` has. */
static uint64_t counted(struct fixture *fx, const char *want)
{
    char buf[512];
    uint64_t count;
    for (size_t i = 0; i < pf_agg_stack_count(fx->agg); i++) {
        stack_text(fx, i, buf, sizeof(buf), &count);
        if (strcmp(buf, want) == 0)
            return count;
    }
    return 0;
}

/* Exactly these stacks, each counted `count` times: a NULL-terminated list. */
static void expect_stacks(struct fixture *fx, uint64_t count, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, count);
    for (const char *s; (s = va_arg(ap, const char *)); n++)
        if (counted(fx, s) != count) {
            char buf[512];
            uint64_t c;
            fprintf(stderr, "stacks counted:\n");
            for (size_t i = 0; i < pf_agg_stack_count(fx->agg); i++) {
                stack_text(fx, i, buf, sizeof(buf), &c);
                fprintf(stderr, "  %s %llu\n", buf, (unsigned long long)c);
            }
            va_end(ap);
            fail_msg("%s counted %llu times, want %llu", s, (unsigned long long)counted(fx, s),
                     (unsigned long long)count);
        }
    va_end(ap);
    assert_int_equal(pf_agg_stack_count(fx->agg), n);
    assert_int_equal(pf_agg_stack_samples(fx->agg), n * count);
}

/* The stops recorded, in order: "tid:batch" for each thread held, "tid:batch:gone"
 * or ":slow" for the others, space-separated. */
static void expect_stops(struct fixture *fx, const char *want)
{
    char buf[512] = "";
    size_t k = 0;
    for (size_t i = 0; i < fx->proc->ncalls; i++) {
        const struct fake_call *c = &fx->proc->calls[i];
        if (c->kind != FAKE_STOP)
            continue;
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s%d:%u%s", k ? " " : "", (int)c->tid,
                              c->batch,
                              c->result == PF_STOP_HELD   ? ""
                              : c->result == PF_STOP_GONE ? ":gone"
                                                          : ":slow");
    }
    assert_string_equal(buf, want);
}

/* Every thread held was resumed, once per stop. */
static void expect_all_resumed(struct fixture *fx)
{
    for (size_t i = 0; i < fx->proc->n; i++) {
        const struct fake_thread *t = &fx->proc->threads[i];
        assert_false(t->stopped);
        assert_int_equal(t->resumes, t->stops);
    }
}

static void expect_failed(struct fixture *fx, enum pf_fail_reason why, uint64_t n)
{
    assert_int_equal(pf_agg_failed_by(fx->agg, why), n);
    assert_int_equal(pf_agg_failed(fx->agg), n);
}

/* A frame of thread i moves on before every batched read. */
static void keep_moving(struct fixture *fx, size_t i, size_t j)
{
    fx->bump_frame = frame_addr(i, j);
    fx->bump_code = code_addr(THREAD[i].code[j]);
    fx->bump_offset = THREAD[i].offset[j];
}

/* ---- default: the GIL holder ---- */

/* Exactly the holder's stack, with its names and lines; only the holder
 * is stopped, and resumed. When another thread takes the GIL, that one. */
static void gil_reads_the_holder(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    tick(fx, &pf_strategy_gil);
    tick(fx, &pf_strategy_gil); /* the second look copies the predicted holder */
    expect_stacks(fx, 2, S0, NULL);
    expect_stops(fx, "101:1 101:2");
    expect_all_resumed(fx);
    assert_int_equal(fx->proc->threads[0].resumes, 2);
    assert_int_equal(pf_agg_idle(fx->agg), 0);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
    assert_int_equal(fx->tick.stats.stopped_samples, 2);

    set_holder(fx, ts(2));
    tick(fx, &pf_strategy_gil);
    assert_int_equal(counted(fx, S2), 1);
    assert_int_equal(counted(fx, S0), 2);
    expect_stops(fx, "101:1 101:2 103:3");
    expect_all_resumed(fx);
    /* mapping thread states to threads happened outside the stops (the
     * fake fails the tick otherwise), and only <= 3.10 needs the TLS */
    if (fx->L->tstate.native_thread_id.width)
        assert_int_equal(fake_proc_count(fx->proc, FAKE_TLS, 0), 0);
    else
        assert_int_equal(fake_proc_count(fx->proc, FAKE_TLS, 0), 2);
}

/* Nobody holds the GIL: before the first holder, the tick is counted as
 * before-ready; after, idle. Nothing is stopped. */
static void gil_nobody_holds(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    set_holder(fx, 0);
    tick(fx, &pf_strategy_gil);
    assert_int_equal(fx->tick.stats.before_ready, 1);
    assert_int_equal(pf_agg_idle(fx->agg), 0);

    set_holder(fx, ts(0));
    tick(fx, &pf_strategy_gil);
    set_holder(fx, 0);
    tick(fx, &pf_strategy_gil);
    tick(fx, &pf_strategy_gil);
    assert_int_equal(pf_agg_idle(fx->agg), 2);
    assert_int_equal(fx->tick.stats.before_ready, 1);
    expect_stacks(fx, 1, S0, NULL);
    expect_stops(fx, "101:1");
    expect_all_resumed(fx);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
}

/* The holder releases the GIL (and work() returns) between the look and
 * the stop: the sample is the look's, confirmed by the second live copy,
 * not the stopped copy of a thread no longer running Python. */
static void gil_released_before_the_stop(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    fx->release_on_stop = true;
    tick(fx, &pf_strategy_gil);
    expect_stacks(fx, 1, S0, NULL);
    assert_int_equal(fx->tick.stats.gil_released, 1);
    expect_stops(fx, "101:1");
    expect_all_resumed(fx);

    /* Nobody holds it now: idle, without a stop. */
    fx->release_on_stop = false;
    tick(fx, &pf_strategy_gil);
    assert_int_equal(pf_agg_idle(fx->agg), 1);
    expect_stops(fx, "101:1");
}

/* ... and when the look's copy is not confirmed either (the stack moved
 * between the two live copies), nothing is known of the instant of the
 * look: with nobody holding the GIL at the stop, the tick is idle. */
static void gil_released_unconfirmed_is_idle(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    fx->release_on_stop = true;
    keep_moving(fx, 0, 0); /* main(), the caller: the copies differ */
    tick(fx, &pf_strategy_gil);
    assert_true(fx->bumps >= 2);
    expect_stacks(fx, 1, NULL);
    assert_int_equal(pf_agg_idle(fx->agg), 1);
    assert_int_equal(fx->tick.stats.gil_idle, 1);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
    expect_stops(fx, "101:1");
    expect_all_resumed(fx);
}

/* Two live copies that agree can still be torn alike (tick.h,
 * pf_tick_try_count): a confirmed look copy that does not decode is
 * treated as unconfirmed. Released before the stop, the tick is idle (as
 * if unconfirmed), not a failure; the stopped copy of a thread that held
 * the GIL throughout is counted; a stop too slow fails as such. */
static void gil_undecodable_look_copy(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    set_code(fx, 0, 1, NOT_CODE);
    fx->release_on_stop = true;
    tick(fx, &pf_strategy_gil);
    assert_int_equal(pf_agg_idle(fx->agg), 1);
    assert_int_equal(fx->tick.stats.gil_idle, 1);
    assert_int_equal(fx->tick.stats.gil_released, 0);
    assert_int_equal(pf_agg_failed(fx->agg), 0);

    fx->release_on_stop = false;
    set_holder(fx, ts(0));
    set_innermost(fx, 0, frame_addr(0, 1));
    fx->recode_frame = frame_addr(0, 1); /* whole again when stopped */
    fx->recode_code = code_addr(C_WORK);
    tick(fx, &pf_strategy_gil);
    expect_stacks(fx, 1, S0, NULL);
    assert_int_equal(pf_agg_failed(fx->agg), 0);

    fx->recode_frame = 0;
    set_code(fx, 0, 1, NOT_CODE);
    fx->proc->threads[0].too_slow = true;
    tick(fx, &pf_strategy_gil);
    expect_failed(fx, PF_FAIL_SLOW_STOP, 1);
    expect_stacks(fx, 1, S0, NULL);
    expect_stops(fx, "101:1 101:2 101:3:slow");
    expect_all_resumed(fx);
}

/* A stopped copy that reads but does not decode (stopped halfway through
 * an update of its frames): the look's confirmed copy is counted; when
 * that one does not decode either, the thread is read once more, and a
 * second failure is counted with its reason. */
static void gil_undecodable_stopped_copy(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    fx->recode_frame = frame_addr(0, 1);
    fx->recode_code = NOT_CODE;
    tick(fx, &pf_strategy_gil);
    expect_stacks(fx, 1, S0, NULL);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
    assert_int_equal(fx->tick.stats.reread, 0);

    tick(fx, &pf_strategy_gil); /* now the look's copy is broken too */
    expect_failed(fx, PF_FAIL_MEMORY, 1);
    assert_int_equal(fx->tick.stats.reread, 1);
    expect_stacks(fx, 1, S0, NULL);
    expect_stops(fx, "101:1 101:2 101:3");
    expect_all_resumed(fx);
}

/* The GIL passes to thread 2 between the look and the stop, and the
 * look's copy of thread 0 is unconfirmed: the new holder is read instead,
 * once (stopped in a stop of its own, and resumed). */
static void gil_handed_over_reads_the_new_holder(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    fx->handover_on_stop = ts(2);
    keep_moving(fx, 0, 0);
    tick(fx, &pf_strategy_gil);
    expect_stacks(fx, 1, S2, NULL);
    assert_int_equal(fx->tick.stats.gil_retried, 1);
    expect_stops(fx, "101:1 103:2");
    expect_all_resumed(fx);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
}

/* The holder exits as it is stopped: one failed sample, "thread gone",
 * nothing resumed that was not held, no other thread touched; the next
 * tick finds no thread for its thread state. */
static void gil_holder_vanishes(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    fx->proc->threads[0].vanish_on_stop = true;
    tick(fx, &pf_strategy_gil);
    expect_failed(fx, PF_FAIL_THREAD_GONE, 1);
    expect_stacks(fx, 1, NULL);
    expect_stops(fx, "101:1:gone");
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RESUME, 0), 0);
    expect_all_resumed(fx);

    tick(fx, &pf_strategy_gil);
    assert_int_equal(pf_agg_failed_by(fx->agg, PF_FAIL_NO_THREAD), 1);
    assert_int_equal(pf_agg_failed(fx->agg), 2);
    expect_stops(fx, "101:1:gone");
}

/* The holder does not stop in time (it waits for a CPU): the look's
 * confirmed live copy is counted, and nothing is resumed that was not
 * held; without a confirmed copy the sample fails as a slow stop. */
static void gil_too_slow_stop(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    fx->proc->threads[0].too_slow = true;
    tick(fx, &pf_strategy_gil);
    expect_stacks(fx, 1, S0, NULL);
    assert_int_equal(fx->tick.stats.slow_stops, 1);
    expect_stops(fx, "101:1:slow");
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RESUME, 0), 0);

    keep_moving(fx, 0, 0); /* the copies differ */
    tick(fx, &pf_strategy_gil);
    expect_failed(fx, PF_FAIL_SLOW_STOP, 1);
    expect_stacks(fx, 1, S0, NULL);
    expect_stops(fx, "101:1:slow 101:2:slow");
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RESUME, 0), 0);
}

/* <= 3.10: with glibc's struct pthread readable, the TID is found in it
 * (at the one offset where every thread's holds a distinct TID of the
 * target), and no thread is stopped to learn its TLS base. */
static void gil_tid_from_struct_pthread(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    if (L->tstate.native_thread_id.width)
        skip();
    for (size_t i = 0; i < NTHREADS; i++) {
        uint64_t self = TLS + i * 0x10000;
        assert_int_equal(pf_image_map(fx->img, self, 0x1000), PF_OK);
        assert_int_equal(pf_image_write_uint(fx->img, self + 0x2d0, (uint64_t)THREAD[i].tid, 4),
                         PF_OK);
    }
    start(fx, (struct pf_tick_opts){0});
    tick(fx, &pf_strategy_gil);
    set_holder(fx, ts(2));
    tick(fx, &pf_strategy_gil);
    assert_int_equal(fx->tick.tid_offset, 0x2d0);
    assert_int_equal(fake_proc_count(fx->proc, FAKE_TLS, 0), 0);
    assert_int_equal(counted(fx, S0), 1);
    assert_int_equal(counted(fx, S2), 1);
    expect_stops(fx, "101:1 103:2");
    expect_all_resumed(fx);
}

/* 3.11+: a process forked by C code that did not tell CPython (uWSGI's
 * workers) keeps the forking thread's TID in native_thread_id. The thread
 * is then found from pthread_self(), its TLS base; a thread state whose
 * TLS base is no thread's (a thread the fork did not copy) fails rather
 * than be given to another thread. */
static void gil_stale_native_thread_id(void **state)
{
    struct fixture *fx = *state;
    const struct pf_layout *L = fx->L;

    if (L->caps.thread_id != PF_TID_NATIVE)
        skip();
    set_field(fx, ts(0), L->tstate.native_thread_id, 4242); /* not a thread of ours */
    start(fx, (struct pf_tick_opts){0});
    tick(fx, &pf_strategy_gil);
    expect_stacks(fx, 1, S0, NULL);
    expect_stops(fx, "101:1");
    expect_all_resumed(fx);
    assert_true(fake_proc_count(fx->proc, FAKE_TLS, 0) >= 1);

    set_field(fx, ts(2), L->tstate.native_thread_id, 4343);
    set_field(fx, ts(2), L->tstate.thread_id, 0x5150000); /* no thread's TLS */
    set_holder(fx, ts(2));
    tick(fx, &pf_strategy_gil);
    expect_failed(fx, PF_FAIL_NO_THREAD, 1);
    expect_stacks(fx, 1, S0, NULL);
    expect_stops(fx, "101:1");
}

/* ---- --threads ---- */

static const struct pf_tick_opts THREADS = {.all_threads = true};

/* Every thread's stack; the sleeper is read live, marked idle, never
 * stopped; the running thread without the GIL whose two copies are
 * identical is not stopped either: only the holder is. */
static void threads_reads_every_thread(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    tick(fx, &pf_strategy_threads);
    tick(fx, &pf_strategy_threads);
    expect_stacks(fx, 2, S0, S1_IDLE, S2, NULL);
    expect_stops(fx, "101:1 101:2");
    expect_all_resumed(fx);
    assert_int_equal(fx->tick.stats.thread_samples, 6);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
    assert_int_equal(pf_agg_idle(fx->agg), 0);

    /* The GIL moves to thread 2: now it is the one stopped. */
    set_holder(fx, ts(2));
    tick(fx, &pf_strategy_threads);
    expect_stops(fx, "101:1 101:2 103:3");
    expect_stacks(fx, 3, S0, S1_IDLE, S2, NULL);
    expect_all_resumed(fx);
}

/* A running thread without the GIL whose stack moves between the live
 * copies may be running Python: it is stopped too, with the holder, in
 * one stop, and its stopped copy counted. */
static void threads_stops_a_moving_thread(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    keep_moving(fx, 2, 1); /* compute(), innermost: the copies are not identical */
    tick(fx, &pf_strategy_threads);
    assert_true(fx->bumps >= 2);
    expect_stacks(fx, 1, S0, S1_IDLE, S2, NULL);
    expect_stops(fx, "103:1 101:1"); /* in list order, newest first */
    expect_all_resumed(fx);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
}

/* A sleeper whose copies disagree: if the kernel did not run it meanwhile
 * (schedstat unchanged), its live copy stands, without a stop; if it ran,
 * it is stopped, after the running threads, and read as a running thread
 * (not idle). */
static void threads_sleeper_that_ran(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    keep_moving(fx, 1, 0); /* run(), the caller: the copies differ */
    tick(fx, &pf_strategy_threads);
    expect_stacks(fx, 1, S0, S1_IDLE, S2, NULL);
    expect_stops(fx, "101:1");
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RUNS, 102), 2);

    fake_proc_clear_record(fx->proc);
    fx->proc->threads[1].runs_step = 1; /* it ran */
    tick(fx, &pf_strategy_threads);
    assert_int_equal(counted(fx, S1), 1);
    assert_int_equal(counted(fx, S1_IDLE), 1);
    expect_stops(fx, "101:1 102:2");
    expect_all_resumed(fx);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
}

/* A thread that exits as it is stopped is counted as gone; the thread
 * stopped with it is resumed; the others are counted as usual. */
static void threads_thread_vanishes(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    keep_moving(fx, 2, 1); /* thread 2 is stopped along with the holder */
    fx->proc->threads[0].vanish_on_stop = true;
    tick(fx, &pf_strategy_threads);
    expect_failed(fx, PF_FAIL_THREAD_GONE, 1);
    expect_stacks(fx, 1, S1_IDLE, S2, NULL);
    expect_stops(fx, "103:1 101:1:gone");
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RESUME, 101), 0);
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RESUME, 103), 1);
    expect_all_resumed(fx);

    /* Its thread state is still listed, mapped to no thread now. */
    tick(fx, &pf_strategy_threads);
    assert_int_equal(pf_agg_failed_by(fx->agg, PF_FAIL_NO_THREAD), 1);
    expect_stops(fx, "103:1 101:1:gone 103:2");
    expect_all_resumed(fx);
}

/* A running thread that does not stop in time: its confirmed live copy
 * is counted; the holder stopped with it is resumed; nothing else is. */
static void threads_too_slow_stop(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    keep_moving(fx, 2, 1); /* confirmed (only the innermost moves), not identical */
    fx->proc->threads[2].too_slow = true;
    tick(fx, &pf_strategy_threads);
    expect_stacks(fx, 1, S0, S1_IDLE, S2, NULL);
    expect_stops(fx, "103:1:slow 101:1");
    assert_int_equal(fake_proc_count(fx->proc, FAKE_RESUME, 103), 0);
    assert_int_equal(fx->tick.stats.slow_stops, 1);
    expect_all_resumed(fx);
    /* the stop given up on is polled for after the resume (tick.c) */
    assert_int_equal(fake_proc_count(fx->proc, FAKE_POLL, 0), 1);
}

/* A running thread without the GIL read live, not stopped (identical
 * copies), whose copy does not decode: torn, not a stack and not
 * "inconsistent data"; the others are counted as usual. */
static void threads_undecodable_live_copy(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    set_code(fx, 2, 1, NOT_CODE);
    tick(fx, &pf_strategy_threads);
    expect_failed(fx, PF_FAIL_TORN, 1);
    expect_stacks(fx, 1, S0, S1_IDLE, NULL);
    expect_stops(fx, "101:1");
    expect_all_resumed(fx);

    /* Moving (so stopped) but too slow to stop: a slow stop, as without a
     * confirmed copy. */
    keep_moving(fx, 2, 1);
    fx->proc->threads[2].too_slow = true;
    tick(fx, &pf_strategy_threads);
    assert_int_equal(pf_agg_failed_by(fx->agg, PF_FAIL_SLOW_STOP), 1);
    assert_int_equal(pf_agg_failed(fx->agg), 2);
    expect_stacks(fx, 2, S0, S1_IDLE, NULL);
    expect_all_resumed(fx);
}

/* -d hands every thread to the dump callback, with the holder marked,
 * and counts nothing. */
static void threads_dump(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){.dump = dump});

    tick(fx, &pf_strategy_threads);
    assert_int_equal(fx->ndumped, NTHREADS);
    for (size_t i = 0; i < NTHREADS; i++) {
        /* newest first, as the list is linked */
        const struct pf_thread_stack *d = &fx->dumped[i];
        size_t want = NTHREADS - 1 - i;
        assert_int_equal(d->tid, THREAD[want].tid);
        assert_int_equal(d->state, THREAD[want].state);
        assert_int_equal(d->gil, want == 0);
        assert_int_equal(d->depth, DEPTH);
        assert_int_equal(d->failed, PF_FAIL__COUNT);
    }
    expect_stacks(fx, 1, NULL);
    expect_stops(fx, "101:1");
}

/* ---- --nonblocking ---- */

/* The holder's stack, and idle without one; nothing is ever stopped. */
static void nonblocking_never_stops(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    tick(fx, &pf_strategy_nonblocking);
    tick(fx, &pf_strategy_nonblocking);
    expect_stacks(fx, 2, S0, NULL);
    set_holder(fx, 0);
    tick(fx, &pf_strategy_nonblocking);
    assert_int_equal(pf_agg_idle(fx->agg), 1);
    expect_stops(fx, "");
    assert_int_equal(fx->proc->batches, 0);
    assert_int_equal(pf_agg_failed(fx->agg), 0);
}

/* A stack that changes between the two live copies (here the caller's
 * instruction: only the innermost one may move) is a failure of its own,
 * "stack changed while read", never a stack; the look's own copy of the
 * predicted holder (the second tick) is checked the same way. */
static void nonblocking_torn_read_fails(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    keep_moving(fx, 0, 0);
    tick(fx, &pf_strategy_nonblocking);
    tick(fx, &pf_strategy_nonblocking);
    expect_failed(fx, PF_FAIL_TORN, 2);
    expect_stacks(fx, 1, NULL);
    assert_true(fx->bumps >= 2);

    /* Only the innermost instruction moving: the same stack. */
    keep_moving(fx, 0, 1);
    tick(fx, &pf_strategy_nonblocking);
    assert_int_equal(pf_agg_stack_samples(fx->agg), 1);
    assert_int_equal(pf_agg_stack_count(fx->agg), 1);
    assert_int_equal(pf_agg_failed(fx->agg), 2);
    expect_stops(fx, "");
}

/* A holder whose two copies agree but do not decode: torn. */
static void nonblocking_undecodable_is_torn(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){0});

    set_code(fx, 0, 1, NOT_CODE);
    tick(fx, &pf_strategy_nonblocking);
    tick(fx, &pf_strategy_nonblocking);
    expect_failed(fx, PF_FAIL_TORN, 2);
    expect_stacks(fx, 1, NULL);
    expect_stops(fx, "");
}

/* ... and with -d, handed over once, as torn. */
static void nonblocking_dump_undecodable(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){.dump = dump});

    set_code(fx, 2, 1, NOT_CODE);
    tick(fx, &pf_strategy_nonblocking);
    assert_int_equal(fx->ndumped, NTHREADS);
    assert_int_equal(fx->dumped[0].tid, 103);
    assert_int_equal(fx->dumped[0].failed, PF_FAIL_TORN);
    assert_int_equal(fx->dumped[1].failed, PF_FAIL__COUNT);
    assert_int_equal(fx->dumped[2].failed, PF_FAIL__COUNT);
}

/* --nonblocking --threads: every thread, live; the one torn is a failure,
 * the others are counted (the sleeper idle); nothing is stopped. */
static void nonblocking_threads(void **state)
{
    struct fixture *fx = *state;
    start(fx, THREADS);

    keep_moving(fx, 2, 0);
    tick(fx, &pf_strategy_nonblocking);
    expect_stacks(fx, 1, S0, S1_IDLE, NULL);
    expect_failed(fx, PF_FAIL_TORN, 1);
    expect_stops(fx, "");
    assert_int_equal(fx->proc->batches, 0);
}

/* With -d the torn thread is handed over as failed, not as a stack. */
static void nonblocking_dump_torn(void **state)
{
    struct fixture *fx = *state;
    start(fx, (struct pf_tick_opts){.dump = dump});

    keep_moving(fx, 2, 0);
    tick(fx, &pf_strategy_nonblocking);
    assert_int_equal(fx->ndumped, NTHREADS);
    assert_int_equal(fx->dumped[0].tid, 103);
    assert_int_equal(fx->dumped[0].failed, PF_FAIL_TORN);
    assert_int_equal(fx->dumped[1].failed, PF_FAIL__COUNT);
    assert_int_equal(fx->dumped[2].failed, PF_FAIL__COUNT);
    assert_int_equal(fx->dumped[2].depth, DEPTH);
    expect_stacks(fx, 1, NULL);
    assert_int_equal(pf_agg_failed(fx->agg), 0); /* -d counts nothing */
    assert_int_equal(fx->proc->batches, 0);
}

#define T(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)L)

int main(void)
{
    int failed = 0;

    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        const struct CMUnitTest tests[] = {
            T(gil_reads_the_holder),
            T(gil_nobody_holds),
            T(gil_released_before_the_stop),
            T(gil_released_unconfirmed_is_idle),
            T(gil_undecodable_look_copy),
            T(gil_undecodable_stopped_copy),
            T(gil_handed_over_reads_the_new_holder),
            T(gil_holder_vanishes),
            T(gil_too_slow_stop),
            T(gil_tid_from_struct_pthread),
            T(gil_stale_native_thread_id),
            T(threads_reads_every_thread),
            T(threads_stops_a_moving_thread),
            T(threads_sleeper_that_ran),
            T(threads_thread_vanishes),
            T(threads_too_slow_stop),
            T(threads_undecodable_live_copy),
            T(threads_dump),
            T(nonblocking_never_stops),
            T(nonblocking_torn_read_fails),
            T(nonblocking_undecodable_is_torn),
            T(nonblocking_dump_undecodable),
            T(nonblocking_threads),
            T(nonblocking_dump_torn),
        };
        failed += cmocka_run_group_tests_name(pf_layout_name(L), tests, NULL, NULL);
    }
    return failed != 0;
}

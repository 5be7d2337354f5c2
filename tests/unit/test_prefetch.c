/* prefetch: one fill covers a plan whatever the order of its ranges, and
 * a plan drops a range one of its last few already holds. Over the image
 * backend, which counts its reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/target/image.h"
#include "pyflame/target/prefetch.h"

#define BASE 0x100000ull
#define SLOTS 512
#define GAP 0x3000ull /* farther apart than a merge: one piece each */

static uint64_t slot(size_t i)
{
    return BASE + i * GAP;
}

/* SLOTS ranges of 48 bytes, each filled with its own byte. */
static void image(struct pf_image **img, struct pf_mem *mem)
{
    assert_int_equal(pf_image_new(img), PF_OK);
    assert_int_equal(pf_image_map(*img, BASE, SLOTS * GAP), PF_OK);
    for (size_t i = 0; i < SLOTS; i++) {
        uint8_t b[48];
        memset(b, (int)(i & 0xff), sizeof(b));
        assert_int_equal(pf_image_write(*img, slot(i), b, sizeof(b)), PF_OK);
    }
    assert_int_equal(pf_mem_open_image(*img, mem), PF_OK);
}

/* Fill with a plan in the given order, then read every slot through the
 * view: every read a hit, every byte right, one batched read. */
static void fill_and_check(const size_t *order)
{
    struct pf_image *img;
    struct pf_mem mem;
    struct pf_prefetch *pre;
    struct pf_plan plan = {0};
    uint64_t hits, misses;

    image(&img, &mem);
    assert_int_equal(pf_prefetch_new(&mem, &pre), PF_OK);
    for (size_t i = 0; i < SLOTS; i++)
        pf_plan_add(&plan, slot(order[i]), 48);
    assert_int_equal(plan.n, SLOTS);
    const struct pf_plan *plans[] = {&plan};
    uint64_t reads = mem.reads;
    assert_int_equal(pf_prefetch_fill(pre, plans, 1), PF_OK);
    assert_int_equal(mem.reads - reads, 1);
    struct pf_mem *view = pf_prefetch_mem(pre);
    for (size_t i = 0; i < SLOTS; i++) {
        uint8_t b[48], want[48];
        memset(want, (int)(i & 0xff), sizeof(want));
        assert_int_equal(pf_mem_read(view, slot(i), b, sizeof(b)), PF_OK);
        assert_memory_equal(b, want, sizeof(b));
    }
    pf_prefetch_counts(pre, &hits, &misses);
    assert_int_equal(hits, SLOTS);
    assert_int_equal(misses, 0);
    pf_plan_free(&plan);
    pf_prefetch_free(pre);
    pf_mem_close(&mem);
    pf_image_free(img);
}

static void orders(void **state)
{
    (void)state;
    size_t order[SLOTS];
    for (size_t i = 0; i < SLOTS; i++)
        order[i] = i; /* ascending */
    fill_and_check(order);
    for (size_t i = 0; i < SLOTS; i++)
        order[i] = SLOTS - 1 - i; /* descending: a 3.11+ data stack walked down */
    fill_and_check(order);
    for (size_t i = 0; i < SLOTS; i++) /* saw-tooth: runs up and down */
        order[i] = (i / 16) % 2 ? (i / 16) * 16 + 15 - i % 16 : i;
    fill_and_check(order);
    srand(7);
    for (size_t i = SLOTS - 1; i > 0; i--) { /* shuffled */
        size_t j = (size_t)rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    fill_and_check(order);
}

/* A range one of the last four holds is dropped; one further back is
 * kept (the plan is a guess: a repeat costs bytes, not a read). */
static void plan_window(void **state)
{
    (void)state;
    struct pf_plan p = {0};
    pf_plan_add(&p, 0x1000, 64);     /* a code object */
    pf_plan_add(&p, 0x9000, 80);     /* a frame */
    pf_plan_add(&p, 0x1000, 64);     /* the code object again: dropped */
    pf_plan_add(&p, 0x1010, 16);     /* inside it: dropped */
    pf_plan_add(&p, 0x8f00, 80);     /* the next frame */
    assert_int_equal(p.n, 3);
    pf_plan_add(&p, 0x1000, 65);     /* longer than held: kept */
    assert_int_equal(p.n, 4);
    for (uint64_t a = 0x20000; a < 0x20000 + 4 * 0x100; a += 0x100)
        pf_plan_add(&p, a, 8);       /* four others */
    pf_plan_add(&p, 0x9000, 80);     /* held five back: kept */
    assert_int_equal(p.n, 9);
    pf_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(orders),
        cmocka_unit_test(plan_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

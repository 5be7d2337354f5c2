/* tidscan: the TID's offset in struct pthread, over made-up blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/target/tidscan.h"

static uint8_t blocks[4][PF_TIDSCAN_LEN];
static const pid_t LIVE[] = {4242, 4243, 4244, 4245};

static bool is_live(void *ctx, pid_t tid)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(LIVE) / sizeof(LIVE[0]); i++)
        if (LIVE[i] == tid)
            return true;
    return false;
}

static void put32(size_t block, uint32_t off, int32_t v)
{
    memcpy(&blocks[block][off], &v, 4);
}

static void put64(size_t block, uint32_t off, uint64_t v)
{
    memcpy(&blocks[block][off], &v, 8);
}

static int setup(void **state)
{
    (void)state;
    memset(blocks, 0, sizeof(blocks));
    for (size_t i = 0; i < 4; i++)
        put32(i, 0x2d0, LIVE[i]); /* glibc 2.36, x86-64 */
    return 0;
}

/* The offset where every block holds its own live TID. */
static void finds_offset(void **state)
{
    (void)state;
    assert_int_equal(pf_tidscan_offset(&blocks[0][0], 4, is_live, NULL), 0x2d0);
}

/* Earlier offsets that look like TIDs are passed over: the same TID in
 * every block, a number that is not a live TID, the upper half of a
 * pointer. */
static void decoys(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        put32(i, 0x10, LIVE[0]);             /* live, not distinct */
        put32(i, 0x20, (int32_t)(100 + i));  /* distinct, not live */
        put64(i, 0x28, (uint64_t)LIVE[i] << 32 | 0x1000); /* a pointer's halves */
        put32(i, 0x40, -(int32_t)LIVE[i]);   /* negative */
    }
    assert_int_equal(pf_tidscan_offset(&blocks[0][0], 4, is_live, NULL), 0x2d0);
    /* One block whose TID is elsewhere: no offset works for all. */
    put32(3, 0x2d0, 0);
    put32(3, 0x2d4, LIVE[3]);
    assert_int_equal(pf_tidscan_offset(&blocks[0][0], 4, is_live, NULL), 0);
}

/* Nothing to scan; offsets below 8 are never the TID (struct pthread
 * starts with pointers). */
static void edges(void **state)
{
    (void)state;
    assert_int_equal(pf_tidscan_offset(&blocks[0][0], 0, is_live, NULL), 0);
    for (size_t i = 0; i < 4; i++)
        put32(i, 4, LIVE[i]);
    assert_int_equal(pf_tidscan_offset(&blocks[0][0], 4, is_live, NULL), 0x2d0);
    put32(0, PF_TIDSCAN_LEN - 4, LIVE[0]);
    assert_int_equal(pf_tidscan_offset(&blocks[0][0], 1, is_live, NULL), 0x2d0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(finds_offset, setup),
        cmocka_unit_test_setup(decoys, setup),
        cmocka_unit_test_setup(edges, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

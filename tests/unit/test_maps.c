/* pf_maps_*: parsing /proc/PID/maps text as the kernel prints it, lookups,
 * and reading this process's own maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyflame/target/maps.h"

/* Real lines, from an x86_64 6.x kernel, plus the odd cases: a path with
 * spaces, a deleted file, a shared mapping, anonymous lines with and
 * without the trailing space, and addresses at the top of the space. */
static const char MAPS[] =
    "00400000-00401000 r--p 00000000 fe:00 1234                               /usr/bin/python3.11\n"
    "00401000-00700000 r-xp 00001000 fe:00 1234                               /usr/bin/python3.11\n"
    "00a5e000-00a5f000 rw-p 0065e000 fe:00 1234                               /usr/bin/python3.11\n"
    "01c2d000-01d9a000 rw-p 00000000 00:00 0                                  [heap]\n"
    "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
    "7f0000021000-7f0004000000 ---p 00000000 00:00 0\n"
    "7f1234560000-7f1234561000 r--p 00000000 08:01 98765                      /opt/my app/lib python.so\n"
    "7f1234561000-7f1234562000 r-xp 00001000 08:01 98765                      /opt/my app/lib python.so\n"
    "7f2000000000-7f2000001000 r--p 00000000 103:02 555                       /tmp/libpython3.12.so.1.0 (deleted)\n"
    "7f2000001000-7f2000002000 r--p 00000000 103:02 555                       /tmp/libpython3.12.so.1.0 (deleted)\n"
    "7f3000000000-7f3000100000 rw-s 00000000 00:01 4096                       /dev/shm/ring\n"
    "7ffc1b2a0000-7ffc1b2c1000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffc1b3f4000-7ffc1b3f6000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

static void parse_fields(void **state)
{
    (void)state;
    struct pf_maps maps = {0};

    assert_int_equal(pf_maps_parse(MAPS, strlen(MAPS), &maps), PF_OK);
    assert_int_equal(maps.n, 14);

    const struct pf_map *m = &maps.v[0];
    assert_int_equal(m->start, 0x400000);
    assert_int_equal(m->end, 0x401000);
    assert_int_equal(m->offset, 0);
    assert_int_equal(m->inode, 1234);
    assert_true(m->r);
    assert_false(m->w);
    assert_false(m->x);
    assert_string_equal(m->path, "/usr/bin/python3.11");

    m = &maps.v[1];
    assert_true(m->r && !m->w && m->x);
    assert_int_equal(m->offset, 0x1000);

    m = &maps.v[2];
    assert_true(m->r && m->w && !m->x);
    assert_int_equal(m->offset, 0x65e000);

    assert_string_equal(maps.v[3].path, "[heap]");
    assert_null(maps.v[4].path); /* trailing space */
    assert_int_equal(maps.v[4].start, UINT64_C(0x7f0000000000));
    assert_null(maps.v[5].path); /* none */
    assert_false(maps.v[5].r || maps.v[5].w || maps.v[5].x);

    assert_string_equal(maps.v[6].path, "/opt/my app/lib python.so");
    assert_int_equal(maps.v[6].inode, 98765);
    assert_string_equal(maps.v[8].path, "/tmp/libpython3.12.so.1.0 (deleted)");
    assert_string_equal(maps.v[10].path, "/dev/shm/ring");
    assert_true(maps.v[10].w);
    assert_string_equal(maps.v[12].path, "[vdso]");

    m = &maps.v[13];
    assert_int_equal(m->start, UINT64_C(0xffffffffff600000));
    assert_int_equal(m->end, UINT64_C(0xffffffffff601000));
    assert_true(!m->r && !m->w && m->x);
    assert_string_equal(m->path, "[vsyscall]");

    pf_maps_free(&maps);
    assert_null(maps.v);
    assert_int_equal(maps.n, 0);
    pf_maps_free(&maps); /* zeroed: a no-op */
}

static void parse_edges(void **state)
{
    (void)state;
    struct pf_maps maps = {0};
    static const char one[] = "10-20 r-xp 00000000 00:00 0 /a\n";
    static const char full[] = "0000000000001000-ffffffffffffffff rw-p ffffffffffffffff "
                               "ff:ff 18446744073709551615 /x\n";

    /* Empty text is an empty map list. */
    assert_int_equal(pf_maps_parse("", 0, &maps), PF_OK);
    assert_int_equal(maps.n, 0);
    pf_maps_free(&maps);

    /* len is honoured: the text need not end at a NUL or a newline. */
    assert_int_equal(pf_maps_parse(one, strlen(one) - 2, &maps), PF_OK);
    assert_int_equal(maps.n, 1);
    assert_int_equal(maps.v[0].start, 0x10);
    assert_int_equal(maps.v[0].end, 0x20);
    assert_string_equal(maps.v[0].path, "/");
    pf_maps_free(&maps);

    /* The largest values that fit. */
    assert_int_equal(pf_maps_parse(full, strlen(full), &maps), PF_OK);
    assert_int_equal(maps.v[0].end, UINT64_MAX);
    assert_int_equal(maps.v[0].offset, UINT64_MAX);
    assert_int_equal(maps.v[0].inode, UINT64_MAX);
    pf_maps_free(&maps);

    /* Out of order (the target remapped while we read): sorted on parse. */
    static const char unsorted[] = "3000-4000 r--p 0 00:00 0 /c\n"
                                   "1000-2000 r--p 0 00:00 0 /a\n"
                                   "2000-3000 r--p 0 00:00 0 /b\n";
    assert_int_equal(pf_maps_parse(unsorted, strlen(unsorted), &maps), PF_OK);
    assert_int_equal(maps.n, 3);
    assert_string_equal(maps.v[0].path, "/a");
    assert_string_equal(maps.v[1].path, "/b");
    assert_string_equal(maps.v[2].path, "/c");
    assert_string_equal(pf_maps_find_addr(&maps, 0x2fff)->path, "/b");
    pf_maps_free(&maps);
}

static void parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\n",                                               /* empty line */
        "00400000-00401000 r--p 00000000 fe:00 1 /a\n\n",   /* empty line inside */
        "00400000 00401000 r--p 00000000 fe:00 1 /a",       /* no '-' */
        "00400000-00401000 r--p 00000000 fe:00",            /* no inode */
        "00400000-00401000 r--p 00000000 fe:00 ",           /* no inode */
        "00400000-00401000 r--p 00000000",                  /* truncated */
        "00400000-00401000 r-p 00000000 fe:00 1 /a",        /* 3 permissions */
        "00400000-00401000 rwzp 00000000 fe:00 1 /a",       /* bad permission */
        "00400000-00401000 rwxq 00000000 fe:00 1 /a",       /* neither p nor s */
        "0040000g-00401000 r--p 00000000 fe:00 1 /a",       /* not hex */
        "-00401000 r--p 00000000 fe:00 1 /a",               /* no start */
        "10000000000000000-10000000000000001 r--p 0 0:0 1", /* 17 digits */
        "00400000-00401000 r--p 00000000 fe00 1 /a",        /* device without ':' */
        "00400000-00401000 r--p 00000000 fe:00 x /a",       /* inode not decimal */
        "00400000-00401000 r--p 00000000 fe:00 18446744073709551616 /a", /* inode overflow */
        "00400000-00401000 r--p 00000000 fe:00 12/a",       /* path glued to inode */
        "00401000-00400000 r--p 00000000 fe:00 1 /a",       /* end before start */
        "00400000-00400000 r--p 00000000 fe:00 1 /a",       /* empty range */
        " 00400000-00401000 r--p 00000000 fe:00 1 /a",      /* leading space */
        "00400000-00401000  r--p 00000000 fe:00 1 /a",      /* double space */
        "00400000-00401000 r--p 00000000 fe:00 1 /a\ngarbage\n", /* a good line, then garbage */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pf_maps maps = {(struct pf_map *)&maps, 77}; /* untouched on failure */
        pf_err err = pf_maps_parse(bad[i], strlen(bad[i]), &maps);
        if (err != PF_ERR_CORRUPT)
            fail_msg("line %zu (%s): got %s", i, bad[i], pf_strerror(err));
        assert_ptr_equal(maps.v, &maps);
        assert_int_equal(maps.n, 77);
    }

    /* A NUL inside a line. */
    static const char nul[] = "00400000-00401000 r--p 00000000 fe:00 1 /a\0b\n";
    struct pf_maps maps = {0};
    assert_int_equal(pf_maps_parse(nul, sizeof(nul) - 1, &maps), PF_ERR_CORRUPT);
}

static void find_file(void **state)
{
    (void)state;
    struct pf_maps maps = {0};
    const struct pf_map *m;

    assert_int_equal(pf_maps_parse(MAPS, strlen(MAPS), &maps), PF_OK);

    m = pf_maps_find_file(&maps, "/usr/bin/python3.11", 0);
    assert_ptr_equal(m, &maps.v[0]);
    m = pf_maps_find_file(&maps, "/usr/bin/python3.11", 0x1000);
    assert_ptr_equal(m, &maps.v[1]);
    assert_null(pf_maps_find_file(&maps, "/usr/bin/python3.11", 0x2000));
    assert_null(pf_maps_find_file(&maps, "/usr/bin/python3", 0));
    assert_null(pf_maps_find_file(&maps, "python3.11", 0));

    /* Two mappings at offset 0: the lowest wins. */
    m = pf_maps_find_file(&maps, "/tmp/libpython3.12.so.1.0 (deleted)", 0);
    assert_ptr_equal(m, &maps.v[8]);
    /* The path is matched as the kernel printed it. */
    assert_null(pf_maps_find_file(&maps, "/tmp/libpython3.12.so.1.0", 0));

    assert_ptr_equal(pf_maps_find_file(&maps, "/opt/my app/lib python.so", 0x1000), &maps.v[7]);
    assert_ptr_equal(pf_maps_find_file(&maps, "[vdso]", 0), &maps.v[12]);
    pf_maps_free(&maps);

    struct pf_maps none = {0};
    assert_null(pf_maps_find_file(&none, "/usr/bin/python3.11", 0));
}

static void find_addr(void **state)
{
    (void)state;
    struct pf_maps maps = {0};

    assert_int_equal(pf_maps_parse(MAPS, strlen(MAPS), &maps), PF_OK);

    assert_null(pf_maps_find_addr(&maps, 0));
    assert_null(pf_maps_find_addr(&maps, 0x3fffff));
    assert_ptr_equal(pf_maps_find_addr(&maps, 0x400000), &maps.v[0]);
    assert_ptr_equal(pf_maps_find_addr(&maps, 0x400fff), &maps.v[0]);
    /* end is exclusive; the next mapping starts right there */
    assert_ptr_equal(pf_maps_find_addr(&maps, 0x401000), &maps.v[1]);
    assert_ptr_equal(pf_maps_find_addr(&maps, 0x6fffff), &maps.v[1]);
    /* a gap */
    assert_null(pf_maps_find_addr(&maps, 0x700000));
    assert_null(pf_maps_find_addr(&maps, 0xa5dfff));
    assert_ptr_equal(pf_maps_find_addr(&maps, 0xa5e000), &maps.v[2]);
    assert_ptr_equal(pf_maps_find_addr(&maps, UINT64_C(0x7f1234561234)), &maps.v[7]);
    assert_ptr_equal(pf_maps_find_addr(&maps, UINT64_C(0x7ffc1b3f5fff)), &maps.v[12]);
    assert_null(pf_maps_find_addr(&maps, UINT64_C(0x7ffc1b3f6000)));
    assert_ptr_equal(pf_maps_find_addr(&maps, UINT64_C(0xffffffffff600000)), &maps.v[13]);
    assert_null(pf_maps_find_addr(&maps, UINT64_C(0xffffffffff601000)));
    assert_null(pf_maps_find_addr(&maps, UINT64_MAX));

    /* Every address at either end of every mapping. */
    for (size_t i = 0; i < maps.n; i++) {
        assert_ptr_equal(pf_maps_find_addr(&maps, maps.v[i].start), &maps.v[i]);
        assert_ptr_equal(pf_maps_find_addr(&maps, maps.v[i].end - 1), &maps.v[i]);
    }
    pf_maps_free(&maps);

    struct pf_maps none = {0};
    assert_null(pf_maps_find_addr(&none, 0x400000));
}

static int global_data = 1;

static void read_self(void **state)
{
    (void)state;
    struct pf_maps maps = {0};
    struct pf_diag diag = {{0}};
    char exe[PATH_MAX];
    int local = 0;
    void *heap = malloc(64);
    const struct pf_map *m;

    if (pf_maps_read(getpid(), &diag, &maps) != PF_OK)
        fail_msg("pf_maps_read: %s", diag.msg);
    assert_true(maps.n > 5);
    for (size_t i = 1; i < maps.n; i++)
        assert_true(maps.v[i - 1].start < maps.v[i].start);

    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';

    /* Our code: executable, in our file. */
    m = pf_maps_find_addr(&maps, (uint64_t)(uintptr_t)&read_self);
    assert_non_null(m);
    assert_true(m->r && m->x && !m->w);
    assert_non_null(m->path);
    assert_string_equal(m->path, exe);
    /* A PIE's first mapping is its offset-0 mapping. */
    assert_non_null(pf_maps_find_file(&maps, exe, 0));
    assert_true(pf_maps_find_file(&maps, exe, 0)->start <= m->start);

    m = pf_maps_find_addr(&maps, (uint64_t)(uintptr_t)&global_data);
    assert_non_null(m);
    assert_true(m->r && m->w);

    m = pf_maps_find_addr(&maps, (uint64_t)(uintptr_t)&local);
    assert_non_null(m);
    assert_true(m->r && m->w && !m->x);
    assert_non_null(m->path);
    assert_string_equal(m->path, "[stack]");

    m = pf_maps_find_addr(&maps, (uint64_t)(uintptr_t)heap);
    assert_non_null(m);
    assert_true(m->w);

    assert_null(pf_maps_find_addr(&maps, 0));
    pf_maps_free(&maps);
    free(heap);
}

static void read_errors(void **state)
{
    (void)state;
    struct pf_maps maps = {(struct pf_map *)&maps, 77};
    struct pf_diag diag = {{0}};

    /* Above any pid_max the kernel allows (4194304). */
    assert_int_equal(pf_maps_read(INT_MAX, &diag, &maps), PF_ERR_NOPROC);
    assert_string_equal(diag.msg, "cannot read /proc/2147483647/maps: No such file or directory");
    assert_ptr_equal(maps.v, &maps);
    assert_int_equal(maps.n, 77);
    assert_int_equal(pf_maps_read(-1, NULL, &maps), PF_ERR_NOPROC);

    /* Another user's process is refused; root may read anything. */
    if (geteuid() != 0) {
        assert_int_equal(pf_maps_read(1, &diag, &maps), PF_ERR_PERM);
        assert_non_null(strstr(diag.msg, "cannot read /proc/1/maps: "));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_fields),
        cmocka_unit_test(parse_edges),
        cmocka_unit_test(parse_rejects),
        cmocka_unit_test(find_file),
        cmocka_unit_test(find_addr),
        cmocka_unit_test(read_self),
        cmocka_unit_test(read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* pf_elf_* against real files built from fixture.c (see meson.build):
 *   argv[1] the shared library (ET_DYN, SONAME libfixture.so.1)
 *   argv[2] a copy stripped with objcopy --strip-all, or "" if not built
 *   argv[3] a non-PIE executable (ET_EXEC), or "" if not built
 *   argv[4] a file that is not ELF (this test's source)
 *   argv[5] a stripped copy whose .gnu_debuglink names argv[1], or ""
 *   argv[6] a stripped copy whose .gnu_debuglink names argv[3], or ""
 * Load bias is also checked live: dlopen the fixtures, then for every ELF
 * object mapped into this process, bias = mapping start - load_base(offset)
 * must be one number per object and must turn st_value into dlsym's answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyflame/target/debugfile.h"
#include "pyflame/target/elf.h"
#include "pyflame/target/maps.h"

#include "fixture.h"

struct paths {
    const char *lib, *stripped, *exe, *not_elf, *linked, *badlink;
};

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

static struct pf_elf *open_ok(const char *path)
{
    struct pf_elf *e = NULL;
    struct pf_diag diag = {{0}};
    pf_err err = pf_elf_open(path, &diag, &e);

    if (err != PF_OK)
        fail_msg("pf_elf_open(%s): %s: %s", path, pf_strerror(err), diag.msg);
    assert_non_null(e);
    return e;
}

static uint64_t sym_value(const struct pf_elf *e, const char *name)
{
    uint64_t v = 0;

    assert_int_equal(pf_elf_symbol(e, name, &v, NULL), PF_OK);
    return v;
}

static void symbols_unstripped(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e = open_ok(p->lib);
    uint64_t v = SENTINEL, size = SENTINEL;

    assert_int_equal(pf_elf_symbol(e, "pf_fixture_data", &v, &size), PF_OK);
    assert_int_not_equal(v, 0);
    assert_int_equal(size, 8);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_runtime", NULL, &size), PF_OK);
    assert_int_equal(size, FIXTURE_RUNTIME_WORDS * 8);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_func", &v, &size), PF_OK);
    assert_true(size > 0);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_version", NULL, &size), PF_OK);
    assert_int_equal(size, sizeof(FIXTURE_VERSION));

    /* The static variable lives in .symtab only. */
    assert_int_equal(pf_elf_symbol(e, "fixture_local", &v, &size), PF_OK);
    assert_int_equal(size, 8);

    /* strlen is in .dynsym, but undefined (SHN_UNDEF): not ours. */
    v = size = SENTINEL;
    assert_int_equal(pf_elf_symbol(e, "strlen", &v, &size), PF_ERR_NOTFOUND);
    /* Exact names only, and outputs untouched on failure. */
    assert_int_equal(pf_elf_symbol(e, "pf_fixture", &v, &size), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_data_", &v, &size), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_symbol(e, "", &v, &size), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_symbol(e, "zzzz_not_a_symbol", &v, &size), PF_ERR_NOTFOUND);
    assert_int_equal(v, SENTINEL);
    assert_int_equal(size, SENTINEL);

    assert_int_equal(pf_elf_section(e, ".symtab", NULL, NULL), PF_OK);
    pf_elf_close(e);
}

static void symbols_stripped(void **state)
{
    const struct paths *p = *state;

    if (!*p->stripped)
        skip();
    struct pf_elf *full = open_ok(p->lib);
    struct pf_elf *e = open_ok(p->stripped);
    uint64_t v = SENTINEL;

    assert_int_equal(pf_elf_section(e, ".symtab", NULL, NULL), PF_ERR_NOTFOUND);
    /* Globals survive in .dynsym, with the same values. */
    assert_int_equal(sym_value(e, "pf_fixture_data"), sym_value(full, "pf_fixture_data"));
    assert_int_equal(sym_value(e, "pf_fixture_func"), sym_value(full, "pf_fixture_func"));
    assert_int_equal(pf_elf_symbol(e, "fixture_local", &v, NULL), PF_ERR_NOTFOUND);
    assert_int_equal(v, SENTINEL);
    assert_int_equal(pf_elf_symbol(e, "strlen", &v, NULL), PF_ERR_NOTFOUND);
    pf_elf_close(e);
    pf_elf_close(full);
}

/* The .PyRuntime section holds exactly pf_fixture_runtime, as in CPython
 * 3.10+; section headers survive strip, so it works on both files. */
static void check_pyruntime(const char *path, uint64_t symbol_value)
{
    struct pf_elf *e = open_ok(path);
    uint64_t addr = SENTINEL, size = SENTINEL;
    uint64_t words[FIXTURE_RUNTIME_WORDS];

    assert_int_equal(pf_elf_section(e, ".PyRuntime", &addr, &size), PF_OK);
    assert_int_equal(addr, symbol_value);
    assert_int_equal(size, sizeof(words));
    assert_int_equal(pf_elf_read_vaddr(e, addr, words, sizeof(words)), PF_OK);
    for (unsigned i = 0; i < FIXTURE_RUNTIME_WORDS; i++)
        assert_int_equal(words[i], i + 1);

    assert_int_equal(pf_elf_section(e, ".bss", &addr, &size), PF_OK);
    assert_true(size >= 8);
    addr = size = SENTINEL;
    assert_int_equal(pf_elf_section(e, ".PyRuntimeX", &addr, &size), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_section(e, ".PyRun", &addr, &size), PF_ERR_NOTFOUND);
    assert_int_equal(addr, SENTINEL);
    assert_int_equal(size, SENTINEL);
    pf_elf_close(e);
}

static void sections(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e = open_ok(p->lib);
    uint64_t runtime = sym_value(e, "pf_fixture_runtime");

    pf_elf_close(e);
    check_pyruntime(p->lib, runtime);
    if (*p->stripped)
        check_pyruntime(p->stripped, runtime);
}

static void check_read_vaddr(const char *path)
{
    struct pf_elf *e = open_ok(path);
    uint64_t data = sym_value(e, "pf_fixture_data");
    uint64_t bss = sym_value(e, "pf_fixture_bss");
    uint64_t bss_addr, bss_size;
    uint64_t v = 0;
    char version[sizeof(FIXTURE_VERSION)];

    assert_int_equal(pf_elf_read_vaddr(e, data, &v, sizeof(v)), PF_OK);
    assert_int_equal(v, FIXTURE_DATA_VALUE);
    assert_int_equal(pf_elf_read_vaddr(e, sym_value(e, "pf_fixture_version"), version,
                                       sizeof(version)),
                     PF_OK);
    assert_string_equal(version, FIXTURE_VERSION);
    /* Part of a value: from its second byte. */
    uint8_t b = 0;
    assert_int_equal(pf_elf_read_vaddr(e, data + 1, &b, 1), PF_OK);
    assert_int_equal(b, (uint8_t)(FIXTURE_DATA_VALUE >> 8));

    /* .bss is in memory only. */
    v = SENTINEL;
    assert_int_equal(pf_elf_read_vaddr(e, bss, &v, sizeof(v)), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_section(e, ".bss", &bss_addr, &bss_size), PF_OK);
    assert_int_equal(pf_elf_read_vaddr(e, bss_addr, &v, 1), PF_ERR_NOTFOUND);
    /* A range that starts in .data and runs into .bss is not all in the file. */
    assert_int_equal(pf_elf_read_vaddr(e, bss_addr - 4, &v, 8), PF_ERR_NOTFOUND);
    /* Addresses in no segment, and a range that wraps around. */
    assert_int_equal(pf_elf_read_vaddr(e, UINT64_C(0xffffffffffffff00), &v, 8),
                     PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_read_vaddr(e, data, &v, SIZE_MAX), PF_ERR_NOTFOUND);
    assert_int_equal(v, SENTINEL);
    pf_elf_close(e);
}

static void read_vaddr(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e = open_ok(p->lib);
    uint64_t v = 0;

    check_read_vaddr(p->lib);
    /* A local, through its .symtab address. */
    assert_int_equal(pf_elf_read_vaddr(e, sym_value(e, "fixture_local"), &v, sizeof(v)), PF_OK);
    assert_int_equal(v, FIXTURE_LOCAL_VALUE);
    pf_elf_close(e);
    if (*p->stripped)
        check_read_vaddr(p->stripped);
    if (*p->exe)
        check_read_vaddr(p->exe);
}

static void kind_and_soname(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e = open_ok(p->lib);

    assert_true(pf_elf_is_dyn(e));
    assert_non_null(pf_elf_soname(e));
    assert_string_equal(pf_elf_soname(e), FIXTURE_SONAME);
    pf_elf_close(e);

    if (*p->stripped) {
        e = open_ok(p->stripped);
        assert_true(pf_elf_is_dyn(e));
        assert_string_equal(pf_elf_soname(e), FIXTURE_SONAME);
        pf_elf_close(e);
    }
}

static void exec_fixture(void **state)
{
    const struct paths *p = *state;
    uint64_t base = SENTINEL;

    if (!*p->exe)
        skip();
    struct pf_elf *e = open_ok(p->exe);
    assert_false(pf_elf_is_dyn(e));
    assert_null(pf_elf_soname(e));
    /* x86_64's default non-PIE base; bias is 0, st_value is the address. */
    assert_int_equal(pf_elf_load_base(e, 0, &base), PF_OK);
    assert_int_equal(base, 0x400000);
    uint64_t data = sym_value(e, "pf_fixture_data");
    assert_true(data > 0x400000 && data < 0x1000000);
    assert_int_equal(pf_elf_section(e, ".PyRuntime", &base, NULL), PF_OK);
    assert_int_equal(base, sym_value(e, "pf_fixture_runtime"));
    pf_elf_close(e);
}

static void load_base_static(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e = open_ok(p->lib);
    uint64_t base = SENTINEL;

    /* A shared library's first PT_LOAD is at vaddr 0, file offset 0. */
    assert_int_equal(pf_elf_load_base(e, 0, &base), PF_OK);
    assert_int_equal(base, 0);
    /* An offset in the same page is the same segment. */
    assert_int_equal(pf_elf_load_base(e, 0x10, &base), PF_OK);
    assert_int_equal(base, 0);
    base = SENTINEL;
    assert_int_equal(pf_elf_load_base(e, UINT64_C(0x7fff0000000), &base), PF_ERR_NOTFOUND);
    assert_int_equal(base, SENTINEL);
    pf_elf_close(e);
}

/* An independent reader of PT_LOAD headers (64-bit only), so the live
 * check below does not grade pf_elf with pf_elf. */
struct load {
    uint64_t offset, filesz, vaddr;
};

static size_t oracle_loads(const char *path, struct load *out, size_t cap)
{
    Elf64_Ehdr eh;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &eh, sizeof(eh), 0), sizeof(eh));
    assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        assert_int_equal(pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))),
                         sizeof(ph));
        if (ph.p_type == PT_LOAD && n < cap)
            out[n++] = (struct load){ph.p_offset, ph.p_filesz, ph.p_vaddr};
    }
    close(fd);
    return n;
}

/* The link-time page addresses a mapping at file offset `offset` can have:
 * one per PT_LOAD whose file pages cover it. Usually one; two when
 * segments share a file page (a RW segment starting mid-page after R). */
static size_t candidates(const struct load *l, size_t n, uint64_t offset, uint64_t page,
                         uint64_t *out)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t first = l[i].offset & ~(page - 1);
        if (offset >= first && offset < l[i].offset + l[i].filesz)
            out[k++] = (l[i].vaddr & ~(page - 1)) + (offset - first);
    }
    return k;
}

/* Bias is taken from the object's lowest offset-0 mapping
 * (docs/cpython-internals.md §2.2). It must explain every other mapping of
 * the object, and pf_elf_load_base(offset) of each mapping must give the
 * right page when the offset alone determines it. Returns the bias. */
static uint64_t check_bias(const struct pf_maps *maps, const char *path)
{
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    const struct pf_map *first = pf_maps_find_file(maps, path, 0);
    struct pf_elf *e = open_ok(path);
    struct load loads[16];
    size_t nloads = oracle_loads(path, loads, 16);
    uint64_t base, bias;

    assert_non_null(first);
    assert_int_equal(pf_elf_load_base(e, 0, &base), PF_OK);
    assert_int_equal(base, loads[0].vaddr & ~(page - 1));
    bias = first->start - base;

    for (size_t i = 0; i < maps->n; i++) {
        const struct pf_map *m = &maps->v[i];
        uint64_t cand[16];
        size_t k;
        if (!m->path || strcmp(m->path, path) != 0)
            continue;
        k = candidates(loads, nloads, m->offset, page, cand);
        bool explained = false;
        for (size_t j = 0; j < k; j++)
            explained |= cand[j] == m->start - bias;
        if (!explained)
            fail_msg("%s: mapping 0x%llx offset 0x%llx not explained by bias 0x%llx", path,
                     (unsigned long long)m->start, (unsigned long long)m->offset,
                     (unsigned long long)bias);
        assert_int_equal(pf_elf_load_base(e, m->offset, &base), PF_OK);
        if (k == 1)
            assert_int_equal(base, m->start - bias);
        else
            assert_true(base == cand[0] || base == cand[1]);
    }
    pf_elf_close(e);
    return bias;
}

static void live_load_bias(void **state)
{
    const struct paths *p = *state;
    const char *libs[2] = {p->lib, p->stripped};
    void *handles[2] = {NULL, NULL};
    char real[2][PATH_MAX];
    struct pf_maps maps = {0};
    struct pf_diag diag = {{0}};

    for (int i = 0; i < 2; i++) {
        if (!*libs[i])
            continue;
        /* /proc/PID/maps prints the resolved path. */
        assert_non_null(realpath(libs[i], real[i]));
        handles[i] = dlopen(real[i], RTLD_NOW | RTLD_LOCAL);
        if (!handles[i])
            fail_msg("dlopen(%s): %s", real[i], dlerror());
    }
    if (pf_maps_read(getpid(), &diag, &maps) != PF_OK)
        fail_msg("pf_maps_read: %s", diag.msg);

    for (int i = 0; i < 2; i++) {
        if (!handles[i])
            continue;
        struct pf_elf *e = open_ok(real[i]);
        uint64_t bias = check_bias(&maps, real[i]);
        assert_int_equal(bias + sym_value(e, "pf_fixture_data"),
                         (uint64_t)(uintptr_t)dlsym(handles[i], "pf_fixture_data"));
        assert_int_equal(bias + sym_value(e, "pf_fixture_func"),
                         (uint64_t)(uintptr_t)dlsym(handles[i], "pf_fixture_func"));
        pf_elf_close(e);
    }
    /* And every other ELF object: the test itself (PIE), libc, ld.so... */
    size_t objects = 0;
    for (size_t i = 0; i < maps.n; i++) {
        const struct pf_map *m = &maps.v[i];
        struct pf_elf *e = NULL;
        if (!m->path || m->path[0] != '/' || pf_maps_find_file(&maps, m->path, 0) != m)
            continue;
        if (pf_elf_open(m->path, NULL, &e) != PF_OK)
            continue; /* locale archives, gconv caches... */
        pf_elf_close(e);
        check_bias(&maps, m->path);
        objects++;
    }
    assert_true(objects >= 3);

    pf_maps_free(&maps);
    for (int i = 0; i < 2; i++)
        if (handles[i])
            dlclose(handles[i]);
}

struct find {
    const char *needle;
    uint64_t vaddr;
    int calls;
};

static bool find_visit(void *ctx, const char *bytes, size_t len, uint64_t vaddr)
{
    struct find *f = ctx;
    const char *hit = memmem(bytes, len, f->needle, strlen(f->needle) + 1);

    f->calls++;
    if (hit)
        f->vaddr = vaddr + (uint64_t)(hit - bytes);
    return !hit;
}

static void check_rodata(const char *path)
{
    struct pf_elf *e = open_ok(path);
    struct find f = {.needle = FIXTURE_VERSION};

    assert_int_equal(pf_elf_scan_rodata(e, find_visit, &f), PF_OK);
    assert_true(f.calls >= 1);
    assert_int_equal(f.vaddr, sym_value(e, "pf_fixture_version"));
    pf_elf_close(e);
}

static void scan_rodata(void **state)
{
    const struct paths *p = *state;

    check_rodata(p->lib);
    if (*p->exe)
        check_rodata(p->exe);
}

static void open_fails(const char *path, pf_err want, const char *want_msg)
{
    struct pf_elf *e = (struct pf_elf *)&e; /* any non-NULL value */
    struct pf_elf *before = e;
    struct pf_diag diag = {{0}};
    char expect[PF_DIAG_LEN];

    assert_int_equal(pf_elf_open(path, &diag, &e), want);
    assert_ptr_equal(e, before);
    snprintf(expect, sizeof(expect), "%s: %s", path, want_msg);
    assert_string_equal(diag.msg, expect);
    /* A NULL diag is fine too. */
    assert_int_equal(pf_elf_open(path, NULL, &e), want);
    assert_ptr_equal(e, before);
}

/* Copy the first `keep` bytes of src (all if negative) to dst, after
 * letting edit change them. Returns src's size. */
static long copy_file(const char *src, const char *dst, long keep, void (*edit)(unsigned char *))
{
    FILE *in = fopen(src, "rb");
    FILE *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    assert_int_equal(fseek(in, 0, SEEK_END), 0);
    long size = ftell(in);
    rewind(in);
    unsigned char *buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, in), (size_t)size);
    if (edit)
        edit(buf);
    if (keep < 0 || keep > size)
        keep = size;
    assert_int_equal(fwrite(buf, 1, (size_t)keep, out), (size_t)keep);
    free(buf);
    fclose(in);
    fclose(out);
    return size;
}

static void expect_corrupt(const char *path)
{
    struct pf_elf *e = NULL;
    struct pf_diag diag = {{0}};
    char expect[PF_DIAG_LEN];

    assert_int_equal(pf_elf_open(path, &diag, &e), PF_ERR_CORRUPT);
    assert_null(e);
    snprintf(expect, sizeof(expect), "%s: malformed ELF file", path);
    assert_true(strncmp(diag.msg, expect, strlen(expect)) == 0);
}

/* What sstrip does: drop the section headers (e_shoff, e_shnum, e_shstrndx
 * zeroed). Program headers remain, and with them load_base and read_vaddr. */
static void drop_section_headers(unsigned char *b)
{
    Elf64_Ehdr eh;
    memcpy(&eh, b, sizeof(eh));
    eh.e_shoff = 0;
    eh.e_shnum = 0;
    eh.e_shstrndx = 0;
    memcpy(b, &eh, sizeof(eh));
}

static void no_section_headers(void **state)
{
    const struct paths *p = *state;
    char tmp[] = "/tmp/pyflame-test-elf-XXXXXX";
    struct pf_elf *full = open_ok(p->lib);
    uint64_t data = sym_value(full, "pf_fixture_data");
    uint64_t v = SENTINEL, base = SENTINEL;
    int fd = mkstemp(tmp);

    assert_true(fd >= 0);
    close(fd);
    pf_elf_close(full);
    copy_file(p->lib, tmp, -1, drop_section_headers);
    struct pf_elf *e = open_ok(tmp);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_data", &v, NULL), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_section(e, ".PyRuntime", &v, NULL), PF_ERR_NOTFOUND);
    assert_null(pf_elf_soname(e));
    assert_true(pf_elf_is_dyn(e));
    assert_int_equal(pf_elf_load_base(e, 0, &base), PF_OK);
    assert_int_equal(base, 0);
    assert_int_equal(pf_elf_read_vaddr(e, data, &v, sizeof(v)), PF_OK);
    assert_int_equal(v, FIXTURE_DATA_VALUE);
    pf_elf_close(e);
    unlink(tmp);
}

static void errors(void **state)
{
    const struct paths *p = *state;
    char empty[] = "/tmp/pyflame-test-elf-XXXXXX";
    char trunc[] = "/tmp/pyflame-test-elf-XXXXXX";
    int fd;

    open_fails("/nonexistent/libpython3.11.so.1.0", PF_ERR_IO,
               "open failed: No such file or directory");
    open_fails(p->not_elf, PF_ERR_NOTPYTHON, "not an ELF file");
    open_fails("/", PF_ERR_NOTPYTHON, "not an ELF file");

    fd = mkstemp(empty);
    assert_true(fd >= 0);
    close(fd);
    fd = mkstemp(trunc);
    assert_true(fd >= 0);
    close(fd);
    open_fails(empty, PF_ERR_NOTPYTHON, "not an ELF file");
    unlink(empty);

    /* Cut short: only the ELF header, or all but the last byte (the
     * section headers are at the end). */
    long size = copy_file(p->lib, trunc, 64, NULL);
    expect_corrupt(trunc);
    copy_file(p->lib, trunc, size - 1, NULL);
    expect_corrupt(trunc);
    unlink(trunc);

    pf_elf_close(NULL);
}

/* Address -> function (pf_elf_addrmap, for --native): every byte of a
 * function maps to it and no byte outside does; data symbols never name
 * code; the stripped copy still names exported functions (.dynsym). */
static void check_addrmap(const char *path)
{
    struct pf_elf *e = open_ok(path);
    struct pf_elf_addrmap *m = NULL;
    const char *name = NULL;
    uint64_t start = 0, value, size;

    assert_int_equal(pf_elf_addrmap_new(e, &m), PF_OK);
    assert_true(pf_elf_addrmap_count(m) > 0);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_func", &value, &size), PF_OK);
    assert_true(size > 0);
    for (uint64_t a = value; a < value + size; a++) {
        name = NULL;
        assert_int_equal(pf_elf_addrmap_find(m, a, &name, &start), PF_OK);
        assert_string_equal(name, "pf_fixture_func");
        assert_int_equal(start, value);
    }
    /* The byte after it is another function's or nobody's. */
    name = NULL;
    if (pf_elf_addrmap_find(m, value + size, &name, &start) == PF_OK)
        assert_string_not_equal(name, "pf_fixture_func");
    /* Data is not code. */
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_data", &value, NULL), PF_OK);
    name = NULL;
    if (pf_elf_addrmap_find(m, value, &name, NULL) == PF_OK)
        fail_msg("data symbol address named as function %s", name);
    /* Below every symbol, and far above: nothing. */
    assert_int_equal(pf_elf_addrmap_find(m, 0, &name, NULL), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_addrmap_find(m, UINT64_MAX, &name, NULL), PF_ERR_NOTFOUND);
    pf_elf_addrmap_free(m);
    pf_elf_addrmap_free(NULL);
    pf_elf_close(e);
}

static void addrmap(void **state)
{
    const struct paths *p = *state;
    check_addrmap(p->lib);
    if (p->stripped[0])
        check_addrmap(p->stripped);
    if (p->exe[0])
        check_addrmap(p->exe);
}

/* The build ID survives strip; the fixture has no .gnu_debuglink; .symtab
 * is there, then gone; PT_GNU_EH_FRAME (the unwind table) is found. */
static void build_id_and_debug_info(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e = open_ok(p->lib);
    uint8_t id[64], id2[64];
    size_t len = 0, len2 = 0;
    const char *link = NULL;
    uint64_t vaddr = 0, memsz = 0;

    pf_err err = pf_elf_build_id(e, id, sizeof(id), &len);
    if (err == PF_ERR_NOTFOUND) {
        pf_elf_close(e);
        skip(); /* a linker without --build-id by default */
    }
    assert_int_equal(err, PF_OK);
    assert_true(len >= 8 && len <= 64);
    assert_int_equal(pf_elf_build_id(e, id2, 4, &len2), PF_ERR_CORRUPT); /* does not fit */
    assert_true(pf_elf_has_symtab(e));
    assert_int_equal(pf_elf_debuglink(e, &link), PF_ERR_NOTFOUND);
    assert_int_equal(pf_elf_segment(e, PT_GNU_EH_FRAME, &vaddr, &memsz), PF_OK);
    assert_true(vaddr > 0 && memsz > 8);
    assert_int_equal(pf_elf_segment(e, 0x6fffffffu, &vaddr, &memsz), PF_ERR_NOTFOUND);
    pf_elf_close(e);
    if (p->stripped[0]) {
        e = open_ok(p->stripped);
        assert_int_equal(pf_elf_build_id(e, id2, sizeof(id2), &len2), PF_OK);
        assert_int_equal(len2, len);
        assert_memory_equal(id, id2, len);
        assert_false(pf_elf_has_symtab(e));
        pf_elf_close(e);
    }
}

/* The same file read from memory (how the vDSO is read) answers alike. */
static void open_from_memory(void **state)
{
    const struct paths *p = *state;
    FILE *f = fopen(p->lib, "rb");
    struct pf_elf *e = NULL, *disk = open_ok(p->lib);
    struct pf_diag diag = {{0}};
    uint64_t a = 0, b = 0, x = 0, y = 0;
    static char buf[1 << 22];

    assert_non_null(f);
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(len > 0 && len < sizeof(buf));
    assert_int_equal(pf_elf_open_mem(buf, len, "fixture", &diag, &e), PF_OK);
    memset(buf, 0, len); /* the image is a copy */
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_func", &a, NULL), PF_OK);
    assert_int_equal(pf_elf_symbol(disk, "pf_fixture_func", &b, NULL), PF_OK);
    assert_int_equal(a, b);
    assert_int_equal(pf_elf_symbol(e, "pf_fixture_data", &a, NULL), PF_OK);
    assert_int_equal(pf_elf_read_vaddr(e, a, &x, sizeof(x)), PF_OK);
    assert_int_equal(pf_elf_read_vaddr(disk, a, &y, sizeof(y)), PF_OK);
    assert_int_equal(x, y);
    assert_int_equal(x, FIXTURE_DATA_VALUE);
    pf_elf_close(e);
    pf_elf_close(disk);
    /* Not ELF, and empty. */
    e = NULL;
    assert_int_equal(pf_elf_open_mem("hello", 5, "junk", &diag, &e), PF_ERR_NOTPYTHON);
    assert_null(e);
    assert_int_equal(pf_elf_open_mem("", 0, "empty", &diag, &e), PF_ERR_NOTPYTHON);
}

/* A stripped file's debug file is found through its .gnu_debuglink, next
 * to it, and used only when its build ID is the file's. */
static void debug_file_search(void **state)
{
    const struct paths *p = *state;
    struct pf_elf *e, *d;
    uint64_t v = 0;
    char linked[PATH_MAX], stripped[PATH_MAX], badlink[PATH_MAX];

    if (!p->linked[0])
        skip(); /* no objcopy */
    /* Mapped files have absolute paths: the search starts from the file's
     * directory. */
    assert_non_null(realpath(p->linked, linked));
    e = open_ok(linked);
    assert_false(pf_elf_has_symtab(e));
    d = pf_debugfile_find(getpid(), linked, e);
    assert_non_null(d);
    assert_true(pf_elf_has_symtab(d));
    assert_int_equal(pf_elf_symbol(d, "pf_fixture_func", &v, NULL), PF_OK);
    assert_int_equal(v, sym_value(e = (pf_elf_close(e), open_ok(p->lib)), "pf_fixture_func"));
    pf_elf_close(d);
    pf_elf_close(e);
    /* Without a link, and no build-id file installed for a test fixture. */
    if (p->stripped[0]) {
        assert_non_null(realpath(p->stripped, stripped));
        e = open_ok(stripped);
        assert_null(pf_debugfile_find(getpid(), stripped, e));
        pf_elf_close(e);
    }
    /* A link to a file of another build. */
    if (p->badlink[0]) {
        assert_non_null(realpath(p->badlink, badlink));
        e = open_ok(badlink);
        assert_null(pf_debugfile_find(getpid(), badlink, e));
        pf_elf_close(e);
    }
    /* A path that is not a file's (the vDSO's). */
    e = open_ok(p->lib);
    assert_null(pf_debugfile_find(getpid(), "[vdso]", e));
    pf_elf_close(e);
}

int main(int argc, char **argv)
{
    static struct paths p;

    if (argc != 7) {
        fprintf(stderr, "usage: %s LIB STRIPPED-LIB|'' EXE|'' NOT-ELF LINKED|'' BADLINK|''\n",
                argv[0]);
        return 2;
    }
    p = (struct paths){argv[1], argv[2], argv[3], argv[4], argv[5], argv[6]};

    const struct CMUnitTest tests[] = {
        /* First: a failed assertion elsewhere leaks its pf_elf, and libelf's
         * whole-file mmap would then show up as one more mapping. */
        cmocka_unit_test_prestate(live_load_bias, &p),
        cmocka_unit_test_prestate(symbols_unstripped, &p),
        cmocka_unit_test_prestate(symbols_stripped, &p),
        cmocka_unit_test_prestate(sections, &p),
        cmocka_unit_test_prestate(read_vaddr, &p),
        cmocka_unit_test_prestate(kind_and_soname, &p),
        cmocka_unit_test_prestate(exec_fixture, &p),
        cmocka_unit_test_prestate(load_base_static, &p),
        cmocka_unit_test_prestate(scan_rodata, &p),
        cmocka_unit_test_prestate(no_section_headers, &p),
        cmocka_unit_test_prestate(errors, &p),
        cmocka_unit_test_prestate(addrmap, &p),
        cmocka_unit_test_prestate(build_id_and_debug_info, &p),
        cmocka_unit_test_prestate(open_from_memory, &p),
        cmocka_unit_test_prestate(debug_file_search, &p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

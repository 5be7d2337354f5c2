/* A small ELF object with symbols of every kind pf_elf_* must tell apart.
 * Built twice by tests/elf/meson.build: as a shared library (ET_DYN, with a
 * SONAME, and stripped) and, with fixture_exe.c, as a non-PIE ET_EXEC. */
#include "fixture.h"

#include <string.h>

uint64_t pf_fixture_data = FIXTURE_DATA_VALUE;
uint64_t pf_fixture_bss;
const char pf_fixture_version[] = FIXTURE_VERSION;

/* Like CPython's _PyRuntime (Include/internal/pycore_runtime.h). */
__attribute__((section(".PyRuntime"))) uint64_t pf_fixture_runtime[FIXTURE_RUNTIME_WORDS] = {
    1, 2, 3, 4};

/* Local: only .symtab names it, so it vanishes with strip. `used` keeps the
 * optimiser from folding it away. */
__attribute__((used)) static uint64_t fixture_local = FIXTURE_LOCAL_VALUE;

int pf_fixture_func(int x)
{
    return x + (int)(fixture_local & 0xff);
}

size_t pf_fixture_len(const char *s)
{
    return strlen(s);
}

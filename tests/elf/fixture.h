/* The symbols tests/elf/fixture.c defines and the values test_elf.c expects.
 * One header for both, so an expected value cannot drift from the fixture. */
#ifndef PYFLAME_TESTS_ELF_FIXTURE_H
#define PYFLAME_TESTS_ELF_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#define FIXTURE_SONAME "libfixture.so.1"
#define FIXTURE_DATA_VALUE UINT64_C(0xfeedfacecafebeef)
#define FIXTURE_LOCAL_VALUE UINT64_C(0x0123456789abcdef)
#define FIXTURE_VERSION "3.99.7+fixture (main, Jan 1 2000, 00:00:00)"
#define FIXTURE_RUNTIME_WORDS 4

extern uint64_t pf_fixture_data;       /* .data, initialised */
extern uint64_t pf_fixture_bss;        /* .bss: in no file */
extern const char pf_fixture_version[]; /* .rodata */
extern uint64_t pf_fixture_runtime[FIXTURE_RUNTIME_WORDS]; /* .PyRuntime */

int pf_fixture_func(int x);
size_t pf_fixture_len(const char *s); /* calls strlen: an undefined dynsym */

#endif

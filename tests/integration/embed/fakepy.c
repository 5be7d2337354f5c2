/* Fake CPython runtimes for pyflame's bad-input tests: shared objects that
 * carry the symbols discovery looks for, and nothing behind them. Loaded by
 * host.c --no-init (never run). Built once per FAKEPY_KIND:
 *   old      interp_head and _PyThreadState_Current, DT_SONAME
 *            libpython3.5m.so.1.0: a CPython older than any table;
 *   new      _PyRuntime and Py_Version = 3.15.0, no debug offsets;
 *   new_do   _PyRuntime starting with 3.15.0's _Py_DebugOffsets header;
 *   ft       _PyRuntime with 3.13.0's header, free_threaded = 1 (3.13t);
 *   bad      _PyRuntime and Py_Version = 3.11.0, whose interpreters.head
 *            and .main (offsets 40 and 48 in 3.11's _PyRuntimeState)
 *            point at nothing mapped: a runtime whose memory does not match
 *            its version's layout. */
#include <stdint.h>

#define KIND_OLD 1
#define KIND_NEW 2
#define KIND_NEW_DO 3
#define KIND_FT 4
#define KIND_BAD 5

#if FAKEPY_KIND == KIND_OLD
void *interp_head;
void *_PyThreadState_Current;
#else
/* PY_VERSION_HEX: 0xMMmmppLS */
#if FAKEPY_KIND == KIND_FT
#define VERSION 0x030d00f0ul
#elif FAKEPY_KIND == KIND_BAD
#define VERSION 0x030b00f0ul
#else
#define VERSION 0x030f00f0ul
#endif
const unsigned long Py_Version = VERSION;

struct runtime {
    char cookie[8];
    uint64_t version, free_threaded;
    uint64_t rest[509];
};
#if FAKEPY_KIND == KIND_NEW
struct runtime _PyRuntime = {{0}, 0, 0, {1}};
#elif FAKEPY_KIND == KIND_BAD
/* rest[2] and rest[3] are at offsets 40 and 48 */
struct runtime _PyRuntime = {{0}, 0, 0, {0, 0, 0xdead0000ul, 0xdead0000ul}};
#else
struct runtime _PyRuntime = {
    {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'}, VERSION, FAKEPY_KIND == KIND_FT, {0}};
#endif
#endif

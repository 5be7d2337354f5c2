/* fake_python: builders of fake CPython objects in a pf_image, for unit
 * tests. Every field is written through the `struct pf_layout` the code
 * under test reads, so one test runs unchanged against every generated
 * layout (2.7 PyStringObject, 3.x PEP 393 strings, each version's code
 * object). Builders map the memory they write; an image call that fails
 * fails the running cmocka test. Type pointers are fake addresses, never
 * mapped: code under test compares them, it never follows them. */
#ifndef PYFLAME_TEST_FAKE_PYTHON_H
#define PYFLAME_TEST_FAKE_PYTHON_H

#include <stddef.h>
#include <stdint.h>

#include "pyflame/target/image.h"
#include "pyflame/cpython/layout.h"

#define FAKE_TYPE_CODE 0x7000ull  /* fake &PyCode_Type */
#define FAKE_TYPE_STR 0x7100ull   /* fake &PyUnicode_Type / &PyString_Type */
#define FAKE_TYPE_BYTES 0x7200ull /* fake &PyBytes_Type (2.7: same as STR) */

/* Each maps memory at addr (at least max(the layout's size, 0x100) bytes,
 * more when the data needs it) and returns addr. */

/* 2.7: a PyStringObject holding the bytes of utf8. 3.x: a compact PEP 393
 * string: ASCII if every code point is below 0x80, else kind 1, 2 or 4 by
 * the largest code point. The `state` word's unused high bits are filled
 * with garbage, as in real processes. */
uint64_t fake_str(struct pf_image *img, const struct pf_layout *L, uint64_t addr, const char *utf8);

/* 3.x only: a non-compact ("legacy") string whose characters are in a
 * separate buffer, mapped right after the object's memory and pointed to by
 * the `data` field. Fails the test on a 2.7 layout. */
uint64_t fake_str_legacy(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                         const char *utf8);

/* A PyBytesObject (2.7: PyStringObject, typed FAKE_TYPE_STR) of len bytes. */
uint64_t fake_bytes(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                    const void *data, size_t len);

/* A code object at addr, with its filename/name/qualname strings and line
 * table (a bytes object) at addr+0x1000, +0x2000, +0x3000 and +0x4000; leave
 * 0x5000 + linetable_len bytes free from addr. The qualname (3.11+) is the
 * name. For 3.11+ co_code_adaptive is at the layout's code_adaptive offset
 * (mapped, zeroed: the bytecode itself is not written) and
 * _co_firsttraceable is 0. */
uint64_t fake_code(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                   const char *filename, const char *name, int firstlineno,
                   const uint8_t *linetable, size_t linetable_len);

/* Frames, thread states and interpreters (appended for test_frame,
 * test_interp). Addresses passed in as `code`, `back`, `next`, ... are
 * written as given: they may point anywhere, including at unmapped memory or
 * back at the object itself. */

#define FAKE_NONE 0x7300ull /* fake &_Py_NoneStruct (3.13 shim f_executable) */

/* The raw instruction value a frame stores when it executes the instruction
 * at byte offset `offset` (>= 0) of code's bytecode: f_lasti in bytes (<=3.9)
 * or in 2-byte code units (3.10), else the address of that byte inside
 * co_code_adaptive (3.11+ prev_instr / instr_ptr). */
uint64_t fake_instr(const struct pf_layout *L, uint64_t code, int64_t offset);

/* <=3.10: a PyFrameObject with f_back = back, f_code = code and f_lasti =
 * (int32_t)instr. 3.11+: a _PyInterpreterFrame with previous = back, f_code
 * (3.13: f_executable) = code, prev_instr (3.13: instr_ptr) = instr and
 * owner = owner (ignored <=3.10). Maps max(size, 0x100) bytes at addr. */
uint64_t fake_frame(struct pf_image *img, const struct pf_layout *L, uint64_t addr, uint64_t code,
                    uint64_t back, uint64_t instr, uint8_t owner);

/* A PyThreadState at addr with next, interp, and its innermost frame where
 * the version keeps it: <=3.10 tstate->frame, 3.13 tstate->current_frame;
 * 3.11/3.12 a _PyCFrame at addr + 0x800 (tstate->cframe points at it, its
 * current_frame is `frame`). Leave 0x900 bytes free from addr. */
uint64_t fake_tstate(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                     uint64_t interp, uint64_t next, uint64_t frame);

/* A PyInterpreterState at addr with next, the head of its thread list
 * (newest first) and, 3.12+, ceval.gil = gil (must be 0 on older layouts).
 * Maps max(size, 0x100) bytes. */
uint64_t fake_interp(struct pf_image *img, const struct pf_layout *L, uint64_t addr,
                     uint64_t next, uint64_t threads_head, uint64_t gil);

/* 3.12+: a struct _gil_runtime_state with locked and last_holder. Fails the
 * test on older layouts. */
uint64_t fake_gil(struct pf_image *img, const struct pf_layout *L, uint64_t addr, int locked,
                  uint64_t last_holder);

#endif

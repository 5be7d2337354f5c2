/* linetable: pure functions from (line table bytes, first line, instruction
 * offset) to the line being executed, one per CPython table format. No
 * memory access, no allocation: the caller copies the table first. */
#ifndef PYFLAME_LINETABLE_H
#define PYFLAME_LINETABLE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(CPYTHON, "pyflame/cpython/linetable.h");

#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/layout.h"

/* Returned in *line when the table says the instruction has no line
 * (3.10 ldelta -128, 3.11+ code 15). */
#define PF_LINE_NONE (-1)

/* Find the line of the instruction at byte offset `offset` into the
 * bytecode (for 3.10 pass f_lasti * 2; for 3.11+ pass the instruction
 * pointer minus co_code_adaptive). A negative offset means "before the first
 * instruction" and gives firstlineno, as PyCode_Addr2Line does.
 *
 * Returns PF_OK and the line (or PF_LINE_NONE); PF_ERR_CORRUPT when the
 * table is malformed (truncated entry, varint overflow, or a computed line
 * of -1, which would read as PF_LINE_NONE); PF_ERR_NOTFOUND when a 3.10+
 * table does not cover the offset. */
pf_err pf_linetable_line(enum pf_linetable_kind kind, const uint8_t *table, size_t len,
                         int firstlineno, int64_t offset, int *line);

#endif

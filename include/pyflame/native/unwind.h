/* unwind: native (C) stacks of stopped threads, and their symbols.
 *
 * Unwinding goes through libunwind's remote interface (unw_init_remote,
 * unw_step) with our own accessors, as Linux perf does: registers come from
 * one PTRACE_GETREGS per sample, stack memory from one process_vm_readv of
 * the stack's top (grown on demand), unwind tables from each object's
 * .eh_frame_hdr as it is mapped in the target. Symbols come from our own ELF
 * reader (elf.h: .symtab, .dynsym, and a separate debug file found by build
 * ID or .gnu_debuglink), files are opened through /proc/PID/root, and
 * /proc/PID/maps is re-read only when an address falls outside every known
 * mapping. Everything is cached by mapping and by address, so a warm sample
 * does no file I/O.
 *
 * It does not stop or resume threads (proc.h does) and knows nothing of
 * Python frames (merge.h puts the two stacks together). Built only with
 * -Dnative=enabled/auto and libunwind; otherwise pf_unwind_new fails with
 * PF_ERR_UNSUPPORTED. */
#ifndef PYFLAME_UNWIND_H
#define PYFLAME_UNWIND_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(NATIVE, "pyflame/native/unwind.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"
#include "pyflame/base/intern.h"
#include "pyflame/target/mem.h"
#include "pyflame/native/merge.h"

/* Whether this build can unwind native stacks at all. */
bool pf_unwind_available(void);

enum { PF_NATIVE_SIGNAL = 1 }; /* frame flags: the frame is a signal trampoline */

struct pf_native_frame {
    uint64_t pc;   /* as unwound: the innermost frame's pc, then return addresses */
    uint8_t flags; /* PF_NATIVE_* */
};

enum pf_unwind_end {
    PF_UNWIND_WHOLE = 0, /* reached the base of the stack (_start, clone) */
    PF_UNWIND_STOPPED,   /* libunwind could not go on (no unwind info, bad frame) */
    PF_UNWIND_CAPPED,    /* deeper than the cap we were given */
};

struct pf_unwind;

/* For process pid. interp_path is the file that holds the CPython runtime as
 * the target maps it (its frames can be the eval loop or plumbing), and
 * eval_symbol the name of its eval loop (the layout's caps.eval_symbol;
 * copied). mem and names are borrowed for the unwinder's life. */
pf_err pf_unwind_new(pid_t pid, struct pf_mem *mem, struct pf_intern *names,
                     const char *interp_path, const char *eval_symbol, struct pf_diag *diag,
                     struct pf_unwind **out);

/* Accepts NULL. */
void pf_unwind_free(struct pf_unwind *u);

/* Unwind thread tid, which the caller holds in a ptrace-stop. Writes at most
 * cap frames, innermost first, and how the walk ended. *in_syscall is true
 * when the thread was stopped inside a system call (x86-64: orig_rax is not
 * -1), i.e. it was blocked in the kernel, not running. Only reads: it is
 * what the stop window is for. PF_ERR_NOPROC when the thread's registers
 * cannot be read (it is gone or not stopped). */
pf_err pf_unwind_thread(struct pf_unwind *u, pid_t tid, struct pf_native_frame *frames, size_t cap,
                        size_t *n, enum pf_unwind_end *end, bool *in_syscall);

/* Name and classify frames from pf_unwind_thread, after the thread runs
 * again. items[i] gets the intern frame id of frames[i] ("function (lib)",
 * "lib+0xOFFSET", ...) and its kind (merge.h). The address looked up is the
 * pc, minus one for return addresses (so a call that is the last
 * instruction of a function is found in that function). */
pf_err pf_unwind_symbolize(struct pf_unwind *u, const struct pf_native_frame *frames, size_t n,
                           struct pf_native_item *items);

#endif

/* ready: the phase before sampling. Finds the CPython runtime in the target
 * (pf_interp_discover) and, where it is not there yet, waits for it while
 * handling the target's ptrace events: a launched command may go through
 * `env`, a shell or a pyenv shim (each an exec) before the interpreter
 * starts, and an attached process may be initialising. The sampler is
 * created only once this hands it a ready target, so its loop knows
 * nothing of discovery.
 *
 * The caller must keep SIGCHLD blocked (proc.h). */
#ifndef PYFLAME_READY_H
#define PYFLAME_READY_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(SAMPLE, "pyflame/sample/ready.h");

#include <signal.h>
#include <stdbool.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/discover.h"
#include "pyflame/target/proc.h"

struct pf_ready_opts {
    /* Launch mode: keep looking, through execs, until the interpreter
     * appears or the command ends. */
    bool wait_for_python;
    /* Attach mode: how long (seconds) to wait for a runtime that is found
     * but not initialised, or for a process that is still starting. */
    double timeout;
    double poll;     /* seconds between two looks */
    const char *abi; /* --abi, or NULL */
};

/* Fill *out (which must then stay where it is: struct pf_target is never
 * copied, interp.h). PF_OK: found and checked. PF_ERR_EXITED: the target
 * ended first. PF_ERR_INTERRUPTED: *stop became non-zero first. Any other
 * error is discovery's (not Python, unsupported, a bad --abi, still
 * starting when the timeout ran out). On every error diag says what was
 * last learned: a runtime seen but not initialised says more than the
 * empty mappings of a process that is exiting. The target runs throughout. */
pf_err pf_ready_wait(struct pf_proc *proc, const struct pf_ready_opts *opts,
                     volatile sig_atomic_t *stop, struct pf_target *out, struct pf_diag *diag);

#endif

/* ready: find the runtime before sampling starts (ready.h). */
#include "pyflame/sample/ready.h"

#include <time.h>

#include "pyflame/base/clock.h"

static struct timespec at_ns(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

/* Handle the target's events until `until`: signals to re-inject, new
 * threads, and, in launch mode, the execs of wrappers on the way to the
 * interpreter. */
static pf_err wait_until(struct pf_proc *proc, const struct pf_ready_opts *o,
                         volatile sig_atomic_t *stop, uint64_t until)
{
    struct timespec ts = at_ns(until);
    while (!*stop) {
        pf_err err = pf_proc_wait(proc, &ts);
        if (err == PF_ERR_EXEC && o->wait_for_python) {
            /* `env`, a shell or a pyenv shim became the next program. */
            pf_proc_exec_seen_ok(proc);
            continue;
        }
        if (err || pf_clock_now_ns() >= until)
            return err;
    }
    return PF_OK;
}

pf_err pf_ready_wait(struct pf_proc *proc, const struct pf_ready_opts *o,
                     volatile sig_atomic_t *stop, struct pf_target *out, struct pf_diag *diag)
{
    uint64_t started = pf_clock_now_ns();
    uint64_t poll = (uint64_t)(o->poll * 1e9);
    bool seen_runtime = false, seen_starting = false;
    struct pf_diag last = {{0}};
    pf_err err;

    if (poll == 0)
        poll = 1;
    for (;;) {
        struct pf_diag now = {{0}};
        err = pf_interp_discover(pf_proc_pid(proc), o->abi, &now, out);
        /* A process that exits while we look shows no files, or no
         * mappings at all: a runtime seen before says more than that. And
         * a process we waited for while it was starting, that ages out of
         * its start-up with still no runtime, is best told as such. */
        if (err == PF_ERR_NOTREADY)
            seen_runtime = true;
        bool aged_out = err == PF_ERR_NOTPYTHON && seen_starting;
        if (err == PF_ERR_STARTING)
            seen_starting = true;
        if (err == PF_OK || err == PF_ERR_NOTREADY || (!seen_runtime && !aged_out))
            last = now;
        if (err == PF_OK)
            return PF_OK;
        bool waiting = err == PF_ERR_NOTREADY || err == PF_ERR_STARTING;
        if (o->wait_for_python)
            waiting = waiting || err == PF_ERR_NOTPYTHON;
        else if (pf_clock_now_ns() - started >= (uint64_t)(o->timeout * 1e9))
            waiting = false;
        if (!waiting)
            break;
        if ((err = wait_until(proc, o, stop, pf_clock_now_ns() + poll)))
            break;
        if (*stop) {
            err = PF_ERR_INTERRUPTED;
            break;
        }
    }
    if (!diag)
        return err;
    if (err == PF_ERR_EXITED || err == PF_ERR_INTERRUPTED)
        pf_diag_set(diag, err, "%s before a CPython interpreter was ready in it%s%s",
                    err == PF_ERR_INTERRUPTED ? "pyflame was stopped"
                    : o->wait_for_python      ? "the command ended"
                                              : "the process exited",
                    seen_runtime ? ": " : o->wait_for_python && err == PF_ERR_EXITED
                                              ? "; if it runs Python in a child process (a "
                                                "shell script that does not exec it), add "
                                                "--subprocesses"
                                              : "",
                    seen_runtime ? last.msg : "");
    else
        *diag = last;
    return err;
}

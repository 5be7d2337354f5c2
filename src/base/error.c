#include "pyflame/base/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const NAMES[PF_ERR__COUNT] = {
    [PF_OK] = "success",
    [PF_ERR_NOMEM] = "out of memory",
    [PF_ERR_IO] = "I/O error",
    [PF_ERR_FAULT] = "memory fault",
    [PF_ERR_CORRUPT] = "inconsistent data",
    [PF_ERR_NOTFOUND] = "not found",
    [PF_ERR_NOPROC] = "no such process",
    [PF_ERR_PERM] = "permission denied",
    [PF_ERR_NOTPYTHON] = "not a CPython process",
    [PF_ERR_UNSUPPORTED] = "unsupported CPython version",
    [PF_ERR_NOTREADY] = "interpreter not initialised",
    [PF_ERR_STARTING] = "process still starting",
    [PF_ERR_USAGE] = "usage error",
    [PF_ERR_EXEC] = "process replaced its image (exec)",
    [PF_ERR_EXITED] = "process exited",
    [PF_ERR_INTERRUPTED] = "interrupted",
    [PF_ERR_INTERNAL] = "internal error",
};

const char *pf_strerror(pf_err err)
{
    if ((unsigned)err >= PF_ERR__COUNT || !NAMES[err])
        return "unknown error";
    return NAMES[err];
}

/* The attribute lets the compiler check callers' formats through it (clang's
 * -Wformat-nonliteral asks for it). */
__attribute__((format(printf, 2, 0))) static void vformat(struct pf_diag *diag, const char *fmt,
                                                          va_list ap)
{
    vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
}

pf_err pf_diag_set(struct pf_diag *diag, pf_err err, const char *fmt, ...)
{
    if (diag) {
        va_list ap;
        va_start(ap, fmt);
        vformat(diag, fmt, ap);
        va_end(ap);
    }
    return err;
}

pf_err pf_diag_errno(struct pf_diag *diag, pf_err err, int errnum, const char *fmt, ...)
{
    if (diag) {
        va_list ap;
        va_start(ap, fmt);
        vformat(diag, fmt, ap);
        va_end(ap);
        size_t used = strlen(diag->msg);
        snprintf(diag->msg + used, sizeof(diag->msg) - used, ": %s", strerror(errnum));
    }
    return err;
}

pf_err pf_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0: return PF_OK;
    case ENOMEM: return PF_ERR_NOMEM;
    case EFAULT: case EIO: return PF_ERR_FAULT;
    case ESRCH: case ENOENT: return PF_ERR_NOPROC;
    case EPERM: case EACCES: return PF_ERR_PERM;
    default: return PF_ERR_IO;
    }
}

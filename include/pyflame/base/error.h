/* error: the pf_err codes every fallible function returns, and struct pf_diag,
 * the human-readable message the setup path (attach, ELF, discovery) fills in.
 * It does not print: only main.c turns an error into output and an exit code. */
#ifndef PYFLAME_ERROR_H
#define PYFLAME_ERROR_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(BASE, "pyflame/base/error.h");

#include <stddef.h>

typedef enum {
    PF_OK = 0,
    PF_ERR_NOMEM,       /* allocation failed */
    PF_ERR_IO,          /* a local file or syscall failed */
    PF_ERR_FAULT,       /* remote memory could not be read (unmapped, NULL) */
    PF_ERR_CORRUPT,     /* remote data read but makes no sense */
    PF_ERR_NOTFOUND,    /* a symbol, section, entry or line does not exist */
    PF_ERR_NOPROC,      /* the process or thread does not exist (any more) */
    PF_ERR_PERM,        /* ptrace or /proc access refused */
    PF_ERR_NOTPYTHON,   /* no CPython runtime found in the process */
    PF_ERR_UNSUPPORTED, /* a CPython version or build we have no layout for */
    PF_ERR_NOTREADY,    /* the interpreter exists but is not initialised yet */
    PF_ERR_STARTING,    /* no runtime found (yet) in a process that is still starting */
    PF_ERR_USAGE,       /* bad command-line input */
    PF_ERR_EXEC,        /* the target replaced its image (execve) */
    PF_ERR_EXITED,      /* the target exited */
    PF_ERR_INTERRUPTED, /* a signal asked pyflame to stop first */
    PF_ERR_INTERNAL,    /* a bug in pyflame */
    PF_ERR__COUNT
} pf_err;

/* A short static name for a code, e.g. "memory fault". */
const char *pf_strerror(pf_err err);

#define PF_DIAG_LEN 512

/* The message that goes with a setup-path error. Functions that take one
 * write it only when they fail. A NULL diag is allowed and ignored. */
struct pf_diag {
    char msg[PF_DIAG_LEN];
};

/* Format a message into diag and return err (so callers can `return pf_diag_set(...)`). */
pf_err pf_diag_set(struct pf_diag *diag, pf_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As pf_diag_set, appending ": strerror(errnum)". */
pf_err pf_diag_errno(struct pf_diag *diag, pf_err err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Map an errno from a syscall on the target to a pf_err. */
pf_err pf_err_from_errno(int errnum);

#endif

/* The unwinder of a build without libunwind (-Dnative=disabled, or 'auto'
 * with libunwind missing): --native is refused with a message. */
#include "pyflame/native/unwind.h"

bool pf_unwind_available(void)
{
    return false;
}

pf_err pf_unwind_new(pid_t pid, struct pf_mem *mem, struct pf_intern *names,
                     const char *interp_path, const char *eval_symbol, struct pf_diag *diag,
                     struct pf_unwind **out)
{
    (void)pid, (void)mem, (void)names, (void)interp_path, (void)eval_symbol, (void)out;
    return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                       "this pyflame was built without native stack support (libunwind); "
                       "rebuild with libunwind-dev installed, or -Dnative=enabled");
}

void pf_unwind_free(struct pf_unwind *u)
{
    (void)u;
}

pf_err pf_unwind_thread(struct pf_unwind *u, pid_t tid, struct pf_native_frame *frames, size_t cap,
                        size_t *n, enum pf_unwind_end *end, bool *in_syscall)
{
    (void)u, (void)tid, (void)frames, (void)cap, (void)n, (void)end, (void)in_syscall;
    return PF_ERR_UNSUPPORTED;
}

pf_err pf_unwind_symbolize(struct pf_unwind *u, const struct pf_native_frame *frames, size_t n,
                           struct pf_native_item *items)
{
    (void)u, (void)frames, (void)n, (void)items;
    return PF_ERR_UNSUPPORTED;
}

#include "pyflame/interp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pyflame/elf.h"
#include "pyflame/limits.h"
#include "pyflame/log.h"
#include "pyflame/maps.h"

/* What one ELF file tells us. */
struct found {
    uint64_t bias;
    bool has_runtime, has_interp_head, has_current;
    uint64_t runtime, interp_head, current;
    uint64_t code_type, unicode_type, string_type, bytes_type;
    const char *how;
};

static bool sym(const struct pf_elf *e, const char *name, uint64_t *value)
{
    uint64_t size;
    return pf_elf_symbol(e, name, value, &size) == PF_OK && *value != 0;
}

/* Look at one mapped file. Returns true if it holds a CPython runtime. */
static bool inspect(const struct pf_elf *e, uint64_t bias, struct found *f)
{
    uint64_t v, size;

    memset(f, 0, sizeof(*f));
    f->bias = bias;
    if (sym(e, "_PyRuntime", &v)) {
        f->has_runtime = true;
        f->runtime = bias + v;
        f->how = "symbol _PyRuntime";
    } else if (pf_elf_section(e, ".PyRuntime", &v, &size) == PF_OK && v) {
        /* 3.10+ place _PyRuntime alone in this section; section headers
         * survive strip (CPYTHON.md 2.1). */
        f->has_runtime = true;
        f->runtime = bias + v;
        f->how = "section .PyRuntime";
    }
    if (sym(e, "interp_head", &v)) {
        f->has_interp_head = true;
        f->interp_head = bias + v;
        f->how = "symbol interp_head";
    }
    if (sym(e, "_PyThreadState_Current", &v)) {
        f->has_current = true;
        f->current = bias + v;
    }
    if (sym(e, "PyCode_Type", &v))
        f->code_type = bias + v;
    if (sym(e, "PyUnicode_Type", &v))
        f->unicode_type = bias + v;
    if (sym(e, "PyString_Type", &v))
        f->string_type = bias + v;
    if (sym(e, "PyBytes_Type", &v))
        f->bytes_type = bias + v;
    return f->has_runtime || f->has_interp_head;
}

static bool is_candidate(const char *path, const char *exe)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "libpython", 9) == 0)
        return true;
    return exe && strcmp(path, exe) == 0;
}

/* Candidates in the order we try them: libpython first, since a PIE
 * launcher links it dynamically, then the executable (static builds). */
pf_err pf_interp_discover(pid_t pid, const char *abi, struct pf_diag *diag, struct pf_target *out)
{
    struct pf_maps maps = {0};
    char exe[PATH_MAX] = "", link[64];
    pf_err err;
    int pass;
    bool any_python_file = false;

    err = pf_maps_read(pid, diag, &maps);
    if (err)
        return err;
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t r = readlink(link, exe, sizeof(exe) - 1);
    exe[r > 0 ? r : 0] = '\0';

    for (pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < maps.n; i++) {
            const struct pf_map *m = &maps.v[i];
            char file[PATH_MAX + 64];
            struct pf_elf *e = NULL;
            struct found f;
            uint64_t base;

            if (!m->path || m->path[0] != '/' || m->offset != 0)
                continue;
            if (!is_candidate(m->path, exe))
                continue;
            /* libpython on the first pass, the executable on the second */
            bool lib = strncmp(strrchr(m->path, '/') + 1, "libpython", 9) == 0;
            if (lib != (pass == 0))
                continue;
            if (pf_maps_find_file(&maps, m->path, 0) != m)
                continue; /* seen this file already */
            any_python_file = any_python_file || lib;
            /* Open through the target's root, so a process in another mount
             * namespace (container, chroot) is read from its own files. */
            snprintf(file, sizeof(file), "/proc/%d/root%s", (int)pid, m->path);
            if (pf_elf_open(file, NULL, &e) != PF_OK)
                continue;
            if (pf_elf_load_base(e, 0, &base) != PF_OK || !inspect(e, m->start - base, &f)) {
                pf_elf_close(e);
                continue;
            }

            struct pf_pyver ver;
            if (abi) {
                if (pf_pyver_parse(abi, &ver) != PF_OK) {
                    pf_elf_close(e);
                    err = pf_diag_set(diag, PF_ERR_USAGE, "--abi=%s: expected a version such as 3.11", abi);
                    goto out;
                }
            } else if (pf_pyver_from_elf(e, m->path, &ver) != PF_OK) {
                pf_elf_close(e);
                err = pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                                  "found a CPython runtime in %s (%s) but could not tell its version; "
                                  "pass --abi=X.Y (supported: %s)",
                                  m->path, f.how, pf_layout_supported());
                goto out;
            }
            pf_elf_close(e);
            const struct pf_layout *L = pf_layout_find(ver.major, ver.minor, 0);
            if (!L) {
                err = pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                                  "process %d runs CPython %u.%u.%u (from %s), which this pyflame "
                                  "cannot read; supported: %s",
                                  (int)pid, ver.major, ver.minor, ver.micro, ver.how, pf_layout_supported());
                goto out;
            }
            /* The layout must agree with what the file has: a 3.7+ table
             * needs _PyRuntime, a 2.7/3.6 one needs interp_head. */
            if ((L->runtime.size && !f.has_runtime) || (!L->runtime.size && !f.has_interp_head)) {
                err = pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                                  "%s does not look like CPython %u.%u (%s %s); check --abi",
                                  m->path, ver.major, ver.minor,
                                  L->runtime.size ? "no _PyRuntime" : "no interp_head",
                                  L->runtime.size ? "symbol or .PyRuntime section" : "symbol");
                goto out;
            }
            memset(out, 0, sizeof(*out));
            out->layout = L;
            out->version = ver;
            out->runtime_addr = L->runtime.size ? f.runtime : 0;
            out->interp_head_addr = L->runtime.size ? 0 : f.interp_head;
            out->tstate_current_addr = f.current;
            /* 2.7 names are str (PyStringObject); 3.x names are unicode. */
            if (L->str == PF_STR_BYTES)
                out->types = (struct pf_pytypes){f.code_type, f.string_type, f.string_type};
            else
                out->types = (struct pf_pytypes){f.code_type, f.unicode_type, f.bytes_type};
            snprintf(out->elf_path, sizeof(out->elf_path), "%s", m->path);
            snprintf(out->how, sizeof(out->how), "%s in %s", L->runtime.size ? (f.has_runtime ? f.how : "?") : "symbol interp_head", m->path);
            if (L->gil == PF_GIL_CURRENT_SYMBOL && !f.has_current) {
                err = pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                                  "%s has no _PyThreadState_Current symbol; cannot tell the GIL holder",
                                  m->path);
                goto out;
            }
            pf_log(PF_LOG_INFO, "CPython %u.%u.%u (version from %s), runtime: %s", ver.major,
                   ver.minor, ver.micro, ver.how, out->how);
            err = PF_OK;
            goto out;
        }
    }
    err = pf_diag_set(diag, any_python_file ? PF_ERR_NOTREADY : PF_ERR_NOTPYTHON,
                      "no CPython runtime found in process %d (%s): looked for the symbols "
                      "_PyRuntime and interp_head and the section .PyRuntime in its executable "
                      "and any mapped libpython",
                      (int)pid, exe[0] ? exe : "unknown executable");
out:
    pf_maps_free(&maps);
    return err;
}

static pf_err read_ptr(struct pf_mem *mem, uint64_t addr, uint64_t *out)
{
    return pf_mem_read(mem, addr, out, sizeof(*out));
}

pf_err pf_interp_main(struct pf_mem *mem, const struct pf_target *t, uint64_t *interp)
{
    const struct pf_layout *L = t->layout;
    uint64_t addr = 0;
    pf_err err;

    if (L->runtime.size) {
        /* interpreters.main when the version has it, else the head. */
        struct pf_field f = L->runtime.interp_main.width ? L->runtime.interp_main : L->runtime.interp_head;
        err = read_ptr(mem, t->runtime_addr + f.off, &addr);
    } else {
        err = read_ptr(mem, t->interp_head_addr, &addr);
    }
    if (err)
        return err;
    if (!addr)
        return PF_ERR_NOTREADY;
    *interp = addr;
    return PF_OK;
}

pf_err pf_interp_gil_holder(struct pf_mem *mem, const struct pf_target *t, uint64_t interp,
                            uint64_t *tstate)
{
    const struct pf_layout *L = t->layout;
    uint64_t v = 0;
    pf_err err;

    switch (L->gil) {
    case PF_GIL_CURRENT_SYMBOL:
        /* 2.7/3.6: the thread state of whoever holds the GIL, NULL when
         * nobody does (Python/pystate.c, _PyThreadState_Current). */
        err = read_ptr(mem, t->tstate_current_addr, &v);
        break;
    case PF_GIL_RUNTIME_CURRENT:
        err = read_ptr(mem, t->runtime_addr + L->runtime.tstate_current.off, &v);
        break;
    case PF_GIL_INTERP_GIL: {
        /* 3.12+: the GIL lives behind interp->ceval.gil; last_holder stays
         * set after release, so only `locked` says whether anyone holds it
         * (CPYTHON.md 4). */
        uint64_t gil;
        uint8_t buf[64];
        if ((err = read_ptr(mem, interp + L->interp.ceval_gil.off, &gil)))
            return err;
        if (L->gilstate.size > sizeof(buf))
            return PF_ERR_CORRUPT;
        if ((err = pf_mem_read(mem, gil, buf, L->gilstate.size)))
            return err;
        uint64_t locked;
        if ((err = pf_field_uint(buf, L->gilstate.size, L->gilstate.locked, &locked)))
            return err;
        if (locked) {
            if ((err = pf_field_ptr(buf, L->gilstate.size, L->gilstate.last_holder, &v)))
                return err;
        }
        break;
    }
    default:
        return PF_ERR_INTERNAL;
    }
    if (err)
        return err;
    *tstate = v;
    return PF_OK;
}

pf_err pf_interp_threads(struct pf_mem *mem, const struct pf_target *t, uint64_t interp,
                         uint64_t *tstates, size_t cap, size_t *n)
{
    const struct pf_layout *L = t->layout;
    uint64_t addr;
    size_t k = 0;
    pf_err err;

    if ((err = read_ptr(mem, interp + L->interp.threads_head.off, &addr)))
        return err;
    while (addr && k < cap && k < PF_MAX_THREADS) {
        for (size_t i = 0; i < k; i++)
            if (tstates[i] == addr)
                return PF_ERR_CORRUPT; /* the list loops */
        tstates[k++] = addr;
        if ((err = read_ptr(mem, addr + L->tstate.next.off, &addr)))
            return err;
    }
    *n = k;
    return PF_OK;
}

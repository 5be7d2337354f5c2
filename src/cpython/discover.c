/* discover: finding the CPython runtime in a process and checking the
 * layout chosen for it against its memory (discover.h, docs/discovery.md). */
#include "pyflame/cpython/discover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pyflame/cpython/debug_offsets.h"
#include "pyflame/cpython/frame.h"
#include "pyflame/base/limits.h"
#include "pyflame/base/log.h"
#include "pyflame/target/maps.h"
#include "pyflame/target/procstat.h"

/* A process younger than this with no CPython runtime mapped may still be
 * loading one (ld.so at work, or a host that dlopen()s libpython later), so
 * discovery answers "not ready" instead of "not Python" until then. */
#define START_GRACE_S 2.0

/* Bytes of a file's writable mappings searched for the _Py_DebugOffsets
 * cookie when it has neither the _PyRuntime symbol nor the section. */
#define COOKIE_SCAN_MAX (64u << 20)

/* Tries of the interpreter-state check when the thread list moves under it. */
#define VALIDATE_TRIES 5

/* Messages' list of what can be read: the tables (a %s), and the versions
 * read through _Py_DebugOffsets alone (another %s, from layout.c). */
#define SUPPORTED "supported: %s, and through _Py_DebugOffsets alone: %s"

static pf_err read_ptr(struct pf_mem *mem, uint64_t addr, uint64_t *out)
{
    return pf_mem_read(mem, addr, out, sizeof(*out));
}

/* What one ELF file tells us. Addresses are relocated. */
struct found {
    uint64_t bias;
    bool has_runtime, has_interp_head, has_current;
    uint64_t runtime, runtime_size, interp_head, current;
    uint64_t code_type, unicode_type, string_type, bytes_type;
    const char *how; /* which clue found the runtime */
};

static bool sym(const struct pf_elf *e, const char *name, uint64_t *value)
{
    uint64_t size;
    return pf_elf_symbol(e, name, value, &size) == PF_OK && *value != 0;
}

static bool in_section(const struct pf_elf *e, const char *name, uint64_t addr, uint64_t len)
{
    uint64_t start, size;
    return pf_elf_section(e, name, &start, &size) == PF_OK && addr >= start &&
           addr - start <= size && size - (addr - start) >= len;
}

pf_err pf_interp_find_head(const struct pf_elf *e, uint64_t *vaddr, const char **how)
{
    uint64_t fn, addr;
    uint8_t code[8];
    int32_t disp;

    if (sym(e, "interp_head", &addr)) {
        *vaddr = addr;
        *how = "symbol interp_head";
        return PF_OK;
    }
    /* Stripped 2.7/3.6: interp_head is a static in Python/pystate.c, gone
     * with .symtab, but the exported PyInterpreterState_Head() is just
     * `return interp_head;`, which x86-64 builds compile to
     * mov disp32(%rip),%rax; ret = 48 8b 05 <disp32> c3. The variable is
     * at the end of the mov (function + 7) plus disp32
     * (docs/cpython-internals.md §2.1). Other code (another compiler,
     * aarch64) does not match and is left. */
    if (!sym(e, "PyInterpreterState_Head", &fn) ||
        pf_elf_read_vaddr(e, fn, code, sizeof(code)) != PF_OK)
        return PF_ERR_NOTFOUND;
    if (code[0] != 0x48 || code[1] != 0x8b || code[2] != 0x05 || code[7] != 0xc3)
        return PF_ERR_NOTFOUND;
    memcpy(&disp, code + 3, sizeof(disp));
    addr = fn + 7 + (uint64_t)(int64_t)disp;
    /* A static pointer lives in writable data; anything else is a misread. */
    if (!in_section(e, ".bss", addr, 8) && !in_section(e, ".data", addr, 8))
        return PF_ERR_NOTFOUND;
    *vaddr = addr;
    *how = "the code of PyInterpreterState_Head";
    return PF_OK;
}

/* Look at one mapped file. Returns true if it holds a CPython runtime. */
static bool inspect(const struct pf_elf *e, uint64_t bias, struct found *f)
{
    uint64_t v, size;
    const char *how;

    memset(f, 0, sizeof(*f));
    f->bias = bias;
    if (pf_elf_symbol(e, "_PyRuntime", &v, &size) == PF_OK && v) {
        f->has_runtime = true;
        f->runtime = bias + v;
        f->runtime_size = size;
        f->how = "symbol _PyRuntime";
    } else if (pf_elf_section(e, ".PyRuntime", &v, &size) == PF_OK && v) {
        /* 3.10+ place _PyRuntime alone in this section; section headers
         * survive strip (docs/cpython-internals.md §2.1). */
        f->has_runtime = true;
        f->runtime = bias + v;
        f->how = "section .PyRuntime";
    } else if (pf_interp_find_head(e, &v, &how) == PF_OK) {
        /* 3.7+ also export PyInterpreterState_Head, reading _PyRuntime: look
         * for interp_head only where there is no _PyRuntime. */
        f->has_interp_head = true;
        f->interp_head = bias + v;
        f->how = how;
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

/* A file with neither symbols nor sections (sstrip) still carries 3.13+'s
 * _Py_DebugOffsets at the start of _PyRuntime, in its writable data: look
 * for the cookie at each 8-byte boundary of the file's writable mappings
 * and take the first hit that validates (pystack's
 * scanMemoryAreaForDebugOffsets). */
static bool scan_cookie(struct pf_mem *mem, const struct pf_maps *maps, const char *path,
                        struct found *f)
{
    static const size_t CHUNK = 64 * 1024;
    uint8_t *buf = malloc(CHUNK);
    uint8_t head[PF_DEBUG_OFFSETS_READ];
    size_t scanned = 0;
    bool hit = false;

    if (!buf)
        return false;
    for (size_t i = 0; i < maps->n && !hit && scanned < COOKIE_SCAN_MAX; i++) {
        const struct pf_map *m = &maps->v[i];
        if (!m->w || !m->r || !m->path || strcmp(m->path, path) != 0)
            continue;
        for (uint64_t at = m->start; at < m->end && !hit && scanned < COOKIE_SCAN_MAX;
             at += CHUNK) {
            size_t len = m->end - at < CHUNK ? (size_t)(m->end - at) : CHUNK;
            scanned += len;
            if (pf_mem_read(mem, at, buf, len) != PF_OK)
                break;
            for (size_t k = 0; k + 8 <= len && !hit; k += 8) {
                struct pf_debug_offsets d;
                if (memcmp(buf + k, "xdebugpy", 8) != 0 ||
                    pf_mem_read(mem, at + k, head, sizeof(head)) != PF_OK ||
                    pf_debug_offsets_parse(head, sizeof(head), 0, 0, NULL, &d) != PF_OK)
                    continue;
                memset(f, 0, sizeof(*f));
                f->has_runtime = true;
                f->runtime = at + k;
                f->how = "the _Py_DebugOffsets cookie in its data";
                hit = true;
            }
        }
    }
    free(buf);
    return hit;
}

/* How long ago the process started, from /proc/PID/stat (field 22,
 * starttime, in clock ticks since boot). */
static bool process_age(pid_t pid, double *age)
{
    char buf[1024];
    unsigned long long start = 0;
    struct timespec now;

    if (pf_procstat_read(pid, buf, sizeof(buf)) != PF_OK || !pf_procstat_field(buf, 22, &start))
        return false;
    long hz = sysconf(_SC_CLK_TCK);
    if (!start || hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) != 0)
        return false;
    *age = (double)now.tv_sec + (double)now.tv_nsec / 1e9 - (double)start / (double)hz;
    return true;
}

/* A process that is exiting loses its memory before it goes: reads then
 * fail for that reason, not because of a wrong layout. The runtime's own
 * variable, mapped for as long as the process has memory, tells. */
static bool process_exiting(pid_t pid, struct pf_mem *mem, const struct found *f)
{
    char buf[512], state;
    uint8_t byte;

    if (pf_mem_read(mem, f->has_runtime ? f->runtime : f->interp_head, &byte, 1) != PF_OK)
        return true;
    if (pf_procstat_read(pid, buf, sizeof(buf)) != PF_OK || !pf_procstat_state(buf, &state))
        return true;
    return state == 'Z' || state == 'X' || state == 'x';
}

static bool is_libpython(const char *path)
{
    const char *base = strrchr(path, '/');
    return strncmp(base ? base + 1 : path, "libpython", 9) == 0;
}

/* Mappings that name no ELF file worth opening. */
static bool is_special(const char *path)
{
    return path[0] != '/' || strncmp(path, "/dev/", 5) == 0 || strncmp(path, "/memfd:", 7) == 0 ||
           strncmp(path, "/SYSV", 5) == 0;
}

static pf_err validate_message(pf_err err, const struct pf_diag *why, struct pf_diag *diag,
                               pid_t pid, const struct pf_target *t, const struct pf_pyver *found,
                               const char *abi)
{
    if (err == PF_ERR_NOTREADY)
        return pf_diag_set(diag, err,
                           "process %d has CPython %u.%u.%u in %s (%s), but %s; it may still be "
                           "starting, or be an embedding host that has not called Py_Initialize",
                           (int)pid, t->version.major, t->version.minor, t->version.micro,
                           t->elf_path, t->how, why->msg);
    if (abi && found && (found->major != t->version.major || found->minor != t->version.minor))
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "--abi=%s does not match process %d: read as CPython %u.%u, %s. It "
                           "looks like CPython %u.%u.%u (from %s): remove --abi or pass "
                           "--abi=%u.%u",
                           abi, (int)pid, t->version.major, t->version.minor, why->msg,
                           found->major, found->minor, found->micro, found->how, found->major,
                           found->minor);
    if (abi)
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "--abi=%s does not match process %d: read as CPython %u.%u, %s", abi,
                           (int)pid, t->version.major, t->version.minor, why->msg);
    return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                       "process %d runs CPython %u.%u.%u (from %s), but its memory does not match "
                       "the layout pyflame takes from %s: %s. A patched or unusual build? "
                       "--abi=X.Y forces a version",
                       (int)pid, t->version.major, t->version.minor, t->version.micro,
                       t->version.how, t->layout_source, why->msg);
}

/* The layout for version ver: the target's _Py_DebugOffsets (head, when
 * have_do) or the generated table. Sets t->own_layout/layout_source. */
static pf_err choose_layout(pid_t pid, const struct found *f, const uint8_t *head, bool have_do,
                            const struct pf_pyver *ver, const char *abi, struct pf_diag *diag,
                            struct pf_target *t, const struct pf_layout **out)
{
    const struct pf_layout *table = pf_layout_find(ver->major, ver->minor, 0);
    pf_err err;

    /* _Py_DebugOffsets win over the generated table (the interpreter's own
     * account of its layout; docs/cpython-internals.md §10), which stays
     * the fallback and a cross-check; --abi=X.Y with a table uses it, and
     * without one reads the offsets in X.Y's format. */
    if (have_do && !(abi && table)) {
        struct pf_debug_offsets d;
        struct pf_diag why = {{0}};
        const struct pf_layout *base = NULL;
        err = pf_debug_offsets_parse(head, PF_DEBUG_OFFSETS_READ, abi ? ver->minor : 0,
                                     f->runtime_size, &why, &d);
        if (!err && !(base = pf_layout_debug_base(d.major, d.minor)))
            err = pf_diag_set(&why, PF_ERR_UNSUPPORTED, "no table to complete its offsets");
        if (!err && !(err = pf_debug_offsets_layout(&d, base, &why, &t->own_layout))) {
            snprintf(t->layout_source, sizeof(t->layout_source), "_Py_DebugOffsets (%s format)",
                     d.format);
            const char *names[64];
            size_t n = table ? pf_debug_offsets_diff(&t->own_layout, table, names, 64) : 0;
            if (table && n == 0)
                pf_log(PF_LOG_DEBUG, "_Py_DebugOffsets agree with the generated %s table",
                       pf_layout_name(table));
            for (size_t i = 0; i < n && i < 64; i++)
                pf_log(PF_LOG_DEBUG, "_Py_DebugOffsets and the generated %s table differ in %s",
                       pf_layout_name(table), names[i]);
            *out = &t->own_layout;
            return PF_OK;
        }
        if (err != PF_ERR_CORRUPT)
            /* A build the offsets say we cannot read (free-threaded, a
             * newer format): the table would be wrong too. */
            return pf_diag_set(diag, PF_ERR_UNSUPPORTED, "process %d: %s; " SUPPORTED, (int)pid,
                               why.msg, pf_layout_supported(), pf_layout_later_names());
        if (!table || abi)
            return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                               "process %d runs CPython %u.%u.%u (from %s), whose "
                               "_Py_DebugOffsets fail validation (%s); " SUPPORTED,
                               (int)pid, ver->major, ver->minor, ver->micro, ver->how, why.msg,
                               pf_layout_supported(), pf_layout_later_names());
        /* Offsets that fail validation are not used; the table of the same
         * version still describes a default build. */
        pf_log(PF_LOG_INFO, "not using _Py_DebugOffsets (%s); using the generated %s table",
               why.msg, pf_layout_name(table));
    }
    if (table) {
        snprintf(t->layout_source, sizeof(t->layout_source), "the generated %s table (from %s)",
                 pf_layout_name(table), table->source ? table->source : "?");
        *out = table;
        return PF_OK;
    }
    if (abi)
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--abi=%s: pyflame has no layout for CPython %u.%u; " SUPPORTED, abi,
                           ver->major, ver->minor, pf_layout_supported(), pf_layout_later_names());
    return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                       "process %d runs CPython %u.%u.%u (from %s), which this pyflame cannot "
                       "read; " SUPPORTED,
                       (int)pid, ver->major, ver->minor, ver->micro, ver->how,
                       pf_layout_supported(), pf_layout_later_names());
}

/* Everything about one file that holds a runtime: version, layout, checks.
 * Fills *t (a local) on success. */
static pf_err resolve(pid_t pid, struct pf_mem *mem, const struct pf_elf *e, const struct pf_map *m,
                      const struct found *f, const char *abi, struct pf_diag *diag,
                      struct pf_target *t)
{
    struct pf_pyver ver, detected;
    bool have_detected, have_do = false, forced = abi != NULL;
    uint8_t head[PF_DEBUG_OFFSETS_READ];
    const struct pf_layout *L = NULL;
    pf_err err;

    memset(t, 0, sizeof(*t));
    snprintf(t->elf_path, sizeof(t->elf_path), "%s", m->path);
    snprintf(t->how, sizeof(t->how), "%s", f->how);

    /* 3.13+: the runtime starts with _Py_DebugOffsets. Read it from the
     * target (what runs), or else from the file (the same initialised data). */
    if (f->has_runtime) {
        have_do = (pf_mem_read(mem, f->runtime, head, sizeof(head)) == PF_OK ||
                   pf_elf_read_vaddr(e, f->runtime - f->bias, head, sizeof(head)) == PF_OK) &&
                  pf_debug_offsets_present(head, sizeof(head));
    }
    /* The version as the target says it, even under --abi (for messages). */
    have_detected = pf_pyver_from_elf(e, m->path, &detected) == PF_OK;
    if (have_do) {
        uint64_t hex;
        memcpy(&hex, head + 8, sizeof(hex));
        if (pf_pyver_from_hex(hex, "the _Py_DebugOffsets version in memory", &detected) == PF_OK)
            have_detected = true;
    }
    if (forced) {
        if (pf_pyver_parse(abi, &ver) != PF_OK)
            return pf_diag_set(diag, PF_ERR_USAGE, "--abi=%s: expected a version such as 3.11",
                               abi);
    } else if (have_detected) {
        ver = detected;
    } else {
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "found a CPython runtime in %s (%s) but could not tell its version; "
                           "pass --abi=X.Y (" SUPPORTED ")",
                           m->path, f->how, pf_layout_supported(), pf_layout_later_names());
    }
    t->version = ver;
    /* --abi is for builds whose version cannot be told. Overriding a
     * version the interpreter states itself would read it with the wrong
     * layout, and fields shared by neighbouring versions would not show it:
     * 3.9's lnotab decoder over 3.10's line table gives wrong lines. */
    if (forced && have_detected && detected.certain &&
        (detected.major != ver.major || detected.minor != ver.minor))
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "--abi=%s does not match process %d: it runs CPython %u.%u.%u (from "
                           "%s in %s); remove --abi or pass --abi=%u.%u",
                           abi, (int)pid, detected.major, detected.minor, detected.micro,
                           detected.how, m->path, detected.major, detected.minor);
    if ((err = choose_layout(pid, f, head, have_do, &ver, abi, diag, t, &L)))
        return err;

    /* The layout must agree with what the file has: _PyRuntime where the
     * version has one, else interp_head. */
    if (L->caps.has_runtime ? !f->has_runtime : !f->has_interp_head) {
        const char *want = L->caps.has_runtime ? "_PyRuntime (symbol or .PyRuntime section)"
                                               : "interp_head (symbol or PyInterpreterState_Head)";
        if (forced)
            return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                               "--abi=%s does not match process %d: %s has %s but no %s, which "
                               "CPython %u.%u has; remove --abi or pass the right version",
                               abi, (int)pid, m->path, f->how, want, ver.major, ver.minor);
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "%s does not look like CPython %u.%u (from %s): it has %s but no %s",
                           m->path, ver.major, ver.minor, ver.how, f->how, want);
    }
    if (L->gil == PF_GIL_CURRENT_SYMBOL && !f->has_current)
        return pf_diag_set(diag, PF_ERR_UNSUPPORTED,
                           "%s has no _PyThreadState_Current symbol; cannot tell the GIL holder",
                           m->path);

    t->layout = L;
    t->runtime_addr = L->caps.has_runtime ? f->runtime : 0;
    t->interp_head_addr = L->caps.has_runtime ? 0 : f->interp_head;
    t->tstate_current_addr = f->current;
    /* 2.7 names are str (PyStringObject); 3.x names are unicode. */
    if (L->str == PF_STR_BYTES)
        t->types = (struct pf_pytypes){f->code_type, f->string_type, f->string_type};
    else
        t->types = (struct pf_pytypes){f->code_type, f->unicode_type, f->bytes_type};

    /* Trust nothing yet: the interpreter state must look like one. */
    struct pf_diag why = {{0}};
    err = pf_interp_validate(mem, t, &why);
    if (err == PF_ERR_CORRUPT && process_exiting(pid, mem, f))
        return pf_diag_set(diag, PF_ERR_NOTREADY,
                           "process %d has CPython %u.%u.%u in %s (%s), but it exited before its "
                           "interpreter was initialised",
                           (int)pid, ver.major, ver.minor, ver.micro, m->path, f->how);
    /* In a process this young ld.so may still be at work: the runtime's
     * variables are then what the file holds (the end of the data segment
     * is cleared, and pointers relocated, after it is mapped). Seen: 2.7's
     * interp_head read as 0x200009a1b0103e3 right after a launch. A layout
     * is condemned only once start-up is over. */
    double age;
    if (err == PF_ERR_CORRUPT && process_age(pid, &age) && age < START_GRACE_S)
        return pf_diag_set(diag, PF_ERR_NOTREADY,
                           "process %d has CPython %u.%u.%u in %s (%s), but %s; it is still "
                           "starting",
                           (int)pid, ver.major, ver.minor, ver.micro, m->path, f->how, why.msg);
    if (err)
        return validate_message(err, &why, diag, pid, t, have_detected ? &detected : NULL,
                                forced ? abi : NULL);
    return PF_OK;
}

pf_err pf_interp_discover(pid_t pid, const char *abi, struct pf_diag *diag, struct pf_target *out)
{
    struct pf_maps maps = {0};
    struct pf_mem mem = {0};
    char exe[PATH_MAX] = "", link[64];
    struct pf_pyver forced;
    size_t looked = 0;
    pf_err err;

    if (abi && pf_pyver_parse(abi, &forced) != PF_OK)
        return pf_diag_set(diag, PF_ERR_USAGE, "--abi=%s: expected a version such as 3.11", abi);
    err = pf_maps_read(pid, diag, &maps);
    if (err)
        return err;
    if ((err = pf_mem_open_pid(pid, &mem))) {
        pf_diag_set(diag, err, "cannot read the memory of process %d: %s", (int)pid,
                    pf_strerror(err));
        goto out;
    }
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t r = readlink(link, exe, sizeof(exe) - 1);
    exe[r > 0 ? r : 0] = '\0';

    /* libpython first (a PIE launcher links it dynamically), then the
     * executable (static builds), then any other ELF file: an embedding
     * host may dlopen() a libpython renamed, or a plugin that links it
     * statically. Names only order the search; they never decide it. */
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < maps.n; i++) {
            const struct pf_map *m = &maps.v[i];
            struct pf_elf *e = NULL;
            struct found f;
            uint64_t bias = 0; /* stays 0 when the file has no segment at offset 0 */

            if (!m->path || m->offset != 0 || is_special(m->path))
                continue;
            if (pf_maps_find_file(&maps, m->path, 0) != m)
                continue; /* seen this file already */
            bool lib = is_libpython(m->path), is_exe = strcmp(m->path, exe) == 0;
            if ((pass == 0 && !lib) || (pass == 1 && (lib || !is_exe)) ||
                (pass == 2 && (lib || is_exe)))
                continue;
            if (pf_elf_open_mapped(pid, m, &e) != PF_OK)
                continue;
            looked++;
            bool found = pf_elf_load_bias(e, m, &bias) == PF_OK && inspect(e, bias, &f);
            if (!found && scan_cookie(&mem, &maps, m->path, &f)) {
                f.bias = bias;
                found = true;
            }
            if (!found) {
                pf_elf_close(e);
                continue;
            }
            struct pf_target *t = calloc(1, sizeof(*t));
            if (!t) {
                pf_elf_close(e);
                err = pf_diag_set(diag, PF_ERR_NOMEM, "out of memory");
                goto out;
            }
            err = resolve(pid, &mem, e, m, &f, abi, diag, t);
            pf_elf_close(e);
            if (!err) {
                pf_target_copy(out, t);
                pf_log(PF_LOG_INFO,
                       "CPython %u.%u.%u (version from %s), runtime: %s in %s, layout: %s",
                       out->version.major, out->version.minor, out->version.micro, out->version.how,
                       out->how, out->elf_path, out->layout_source);
            }
            free(t);
            goto out;
        }
    }
    double age = 0;
    bool young = process_age(pid, &age) && age < START_GRACE_S;
    if (maps.n == 0) {
        err = pf_diag_set(diag, young ? PF_ERR_STARTING : PF_ERR_NOTPYTHON,
                          "process %d has no memory mappings: a kernel thread, or a process that "
                          "is exiting",
                          (int)pid);
        goto out;
    }
    err = pf_diag_set(diag, young ? PF_ERR_STARTING : PF_ERR_NOTPYTHON,
                      "no CPython runtime found in process %d (%s)%s: looked for the symbols "
                      "_PyRuntime and interp_head, the section .PyRuntime, the code of "
                      "PyInterpreterState_Head and the _Py_DebugOffsets cookie in the %zu ELF "
                      "file%s it maps (its executable and every library)",
                      (int)pid, exe[0] ? exe : "unknown executable",
                      young ? " while it was starting" : "", looked, looked == 1 ? "" : "s");
out:
    pf_mem_close(&mem);
    pf_maps_free(&maps);
    return err;
}

/* What is wrong with the innermost Python frame of thread state ts_addr,
 * read through t's layout, or NULL if nothing is (or there is no frame):
 * its code must have the type PyCode_Type, its name and file name the
 * string type, where those type addresses are known. */
static const char *code_problem(struct pf_mem *mem, const struct pf_target *t, uint64_t ts_addr)
{
    const struct pf_layout *L = t->layout;
    uint8_t ts[PF_MAX_STRUCT], hdr[PF_MAX_STRUCT];
    struct pf_frame_rec rec;
    uint64_t frame, type, name, file;
    size_t n = 0;
    bool more;

    if (L->tstate.size > sizeof(ts) || L->code.size > sizeof(hdr))
        return "its layout has structs larger than pyflame copies";
    if (pf_mem_read(mem, ts_addr, ts, L->tstate.size) ||
        pf_frame_first(mem, L, ts, L->tstate.size, &frame))
        return "the current frame of its first thread cannot be read";
    if (!frame)
        return NULL; /* the thread runs no Python code now */
    if (pf_frame_walk(mem, L, frame, &rec, 1, &n, &more))
        return "the frames of its first thread cannot be read";
    if (n == 0)
        return NULL;
    if (pf_mem_read(mem, rec.code_addr, hdr, L->code.size))
        return "the code object of its current frame cannot be read";
    if (t->types.code &&
        (pf_field_ptr(hdr, L->code.size, L->object.ob_type, &type) || type != t->types.code))
        return "what its current frame holds as code is not a code object";
    if (!t->types.str)
        return NULL;
    if (pf_field_ptr(hdr, L->code.size, L->code.name, &name) ||
        pf_field_ptr(hdr, L->code.size, L->code.filename, &file) ||
        read_ptr(mem, name + L->object.ob_type.off, &name) ||
        read_ptr(mem, file + L->object.ob_type.off, &file) || name != t->types.str ||
        file != t->types.str)
        return "the name or file name of its current code object is not a string";
    return NULL;
}

pf_err pf_interp_validate(struct pf_mem *mem, const struct pf_target *t, struct pf_diag *diag)
{
    const struct pf_layout *L = t->layout;
    uint64_t interp = 0, ts = 0, back = 0, v;
    pf_err err;

    err = pf_interp_main(mem, t, &interp);
    if (err == PF_ERR_NOTREADY)
        return pf_diag_set(diag, err, "its interpreter is not initialised");
    if (err)
        return pf_diag_set(diag, PF_ERR_CORRUPT, "its interpreter list cannot be read");
    /* The first thread state of the interpreter must name it as its
     * interpreter, and the code object of its innermost frame must look
     * like one. The target runs meanwhile (a thread may exit, a frame
     * return, between two reads), so a mismatch is looked at again before
     * it condemns the layout. */
    for (int tries = 1;; tries++) {
        const char *problem = NULL;
        if (read_ptr(mem, interp + L->interp.threads_head.off, &ts))
            return pf_diag_set(diag, PF_ERR_CORRUPT,
                               "what should be its interpreter state (0x%llx) cannot be read",
                               (unsigned long long)interp);
        if (!ts)
            return pf_diag_set(diag, PF_ERR_NOTREADY, "its interpreter has no thread yet");
        back = 0;
        if (read_ptr(mem, ts + L->tstate.interp.off, &back) == PF_OK && back == interp &&
            !(problem = code_problem(mem, t, ts)))
            break;
        if (tries == VALIDATE_TRIES && problem)
            return pf_diag_set(diag, PF_ERR_CORRUPT, "%s", problem);
        if (tries == VALIDATE_TRIES)
            return pf_diag_set(diag, PF_ERR_CORRUPT,
                               "the interpreter state at 0x%llx does not look like one: its "
                               "first thread state (0x%llx) %s 0x%llx",
                               (unsigned long long)interp, (unsigned long long)ts,
                               back ? "names another interpreter," : "cannot be read at",
                               (unsigned long long)(back ? back : ts + L->tstate.interp.off));
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    /* Where the GIL holder is read must be readable too. */
    if (pf_interp_gil_holder(mem, t, interp, &v) != PF_OK) {
        uint64_t gil = 0;
        if (L->gil == PF_GIL_INTERP_GIL &&
            read_ptr(mem, interp + L->interp.ceval_gil.off, &gil) == PF_OK && !gil)
            return pf_diag_set(diag, PF_ERR_NOTREADY, "its GIL is not created yet");
        return pf_diag_set(diag, PF_ERR_CORRUPT, "its GIL state cannot be read");
    }
    return PF_OK;
}

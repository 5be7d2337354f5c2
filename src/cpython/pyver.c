#include "pyflame/cpython/pyver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/cpython/layout.h"

pf_err pf_pyver_from_hex(uint64_t hex, const char *how, struct pf_pyver *out)
{
    /* PY_VERSION_HEX: 0xMMmmppLS (Include/patchlevel.h). */
    unsigned major = (hex >> 24) & 0xff, minor = (hex >> 16) & 0xff, micro = (hex >> 8) & 0xff;
    if (major < 2 || major > 3 || hex >> 32)
        return PF_ERR_CORRUPT;
    *out = (struct pf_pyver){major, minor, micro, how, true};
    return PF_OK;
}

pf_err pf_pyver_from_name(const char *path, struct pf_pyver *out)
{
    const char *base = strrchr(path, '/');
    unsigned major, minor;
    int used = 0;

    base = base ? base + 1 : path;
    if (sscanf(base, "libpython%u.%u%n", &major, &minor, &used) == 2 && used > 0 &&
        (major == 2 || major == 3)) {
        *out = (struct pf_pyver){major, minor, 0, "the libpython file name", false};
        return PF_OK;
    }
    return PF_ERR_NOTFOUND;
}

pf_err pf_pyver_parse(const char *text, struct pf_pyver *out)
{
    unsigned major, minor, micro = 0;
    int used = 0;

    if (sscanf(text, "%u.%u%n", &major, &minor, &used) == 2 && text[used] == '\0')
        goto ok;
    if (sscanf(text, "%u.%u.%u%n", &major, &minor, &micro, &used) == 3 && text[used] == '\0')
        goto ok;
    if (sscanf(text, "%1u%u%n", &major, &minor, &used) == 2 && text[used] == '\0')
        goto ok; /* Pyflame's --abi=36 spelling */
    return PF_ERR_USAGE;
ok:
    *out = (struct pf_pyver){major, minor, micro, "--abi", false};
    return PF_OK;
}

struct scan {
    unsigned major, minor, micro;
    int found;
};

/* A standalone PY_VERSION literal, "X.Y.Z" followed by NUL or a release
 * tag; the linker may have merged it into the tail of a longer string
 * ("/versions/3.9.18"), so look at every position. */
static bool visit_rodata(void *ctx, const char *bytes, size_t len, uint64_t vaddr)
{
    struct scan *s = ctx;
    (void)vaddr;
    for (size_t i = 0; i + 6 <= len; i++) {
        if ((bytes[i] != '2' && bytes[i] != '3') || bytes[i + 1] != '.')
            continue;
        if (i > 0 && ((bytes[i - 1] >= '0' && bytes[i - 1] <= '9') || bytes[i - 1] == '.'))
            continue;
        unsigned major = (unsigned)(bytes[i] - '0'), minor = 0, micro = 0;
        size_t j = i + 2, d = 0;
        for (; j < len && bytes[j] >= '0' && bytes[j] <= '9' && d < 3; j++, d++)
            minor = minor * 10 + (unsigned)(bytes[j] - '0');
        if (!d || j >= len || bytes[j] != '.')
            continue;
        j++;
        d = 0;
        for (; j < len && bytes[j] >= '0' && bytes[j] <= '9' && d < 3; j++, d++)
            micro = micro * 10 + (unsigned)(bytes[j] - '0');
        if (!d || j >= len)
            continue;
        if (bytes[j] != '\0' && bytes[j] != 'a' && bytes[j] != 'b' && bytes[j] != 'r' && bytes[j] != '+')
            continue;
        /* Only versions we have a table for count: other "X.Y.Z" strings
         * (library versions) must not be mistaken for Python's. */
        if (!pf_layout_find(major, minor, 0))
            continue;
        s->major = major;
        s->minor = minor;
        s->micro = micro;
        s->found = 1;
        return false;
    }
    return true;
}

pf_err pf_pyver_from_elf(const struct pf_elf *e, const char *path, struct pf_pyver *out)
{
    uint64_t value, size;
    char cookie[16];

    /* 3.13+: _PyRuntime starts with _Py_DebugOffsets: "xdebugpy", then
     * PY_VERSION_HEX (Include/internal/pycore_runtime.h). */
    if (pf_elf_section(e, ".PyRuntime", &value, &size) == PF_OK && size >= 16 &&
        pf_elf_read_vaddr(e, value, cookie, 16) == PF_OK && memcmp(cookie, "xdebugpy", 8) == 0) {
        uint64_t hex;
        memcpy(&hex, cookie + 8, 8);
        if (pf_pyver_from_hex(hex, "_Py_DebugOffsets.version", out) == PF_OK)
            return PF_OK;
    }
    /* 3.11+: const unsigned long Py_Version = PY_VERSION_HEX (Python/getversion.c). */
    if (pf_elf_symbol(e, "Py_Version", &value, &size) == PF_OK) {
        uint64_t hex = 0;
        if (size >= 4 && size <= 8 && pf_elf_read_vaddr(e, value, &hex, size) == PF_OK &&
            pf_pyver_from_hex(hex, "the Py_Version symbol", out) == PF_OK)
            return PF_OK;
    }
    struct scan s = {0};
    bool scanned = pf_elf_scan_rodata(e, visit_rodata, &s) == PF_OK && s.found;
    if (pf_elf_soname(e) && pf_pyver_from_name(pf_elf_soname(e), out) == PF_OK) {
        out->how = "the libpython soname";
        out->certain = true;
        /* The soname has no micro version; a string of the same X.Y does. */
        if (scanned && s.major == out->major && s.minor == out->minor)
            out->micro = s.micro;
        return PF_OK;
    }
    if (scanned) {
        *out = (struct pf_pyver){s.major, s.minor, s.micro, "a version string in .rodata", false};
        return PF_OK;
    }
    /* Last, the name the file is mapped under: renamed copies lie. */
    if (path && pf_pyver_from_name(path, out) == PF_OK)
        return PF_OK;
    return PF_ERR_NOTFOUND;
}

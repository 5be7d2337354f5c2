/* debugfile: a stripped ELF file's separate debug file (debugfile.h). */
#include "pyflame/target/debugfile.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A debug file is used only if its build ID is the object's. */
static struct pf_elf *try_debug(const char *file, const uint8_t *id, size_t idlen)
{
    struct pf_elf *d = NULL;
    uint8_t got[64];
    size_t gotlen;

    if (pf_elf_open(file, NULL, &d) != PF_OK)
        return NULL;
    if (!pf_elf_has_symtab(d) || pf_elf_build_id(d, got, sizeof(got), &gotlen) != PF_OK ||
        gotlen != idlen || memcmp(got, id, idlen) != 0) {
        pf_elf_close(d);
        return NULL;
    }
    return d;
}

/* The host's debug files serve a container's libraries when they are the
 * same build: a match is checked by build ID. */
struct pf_elf *pf_debugfile_find(pid_t pid, const char *path, const struct pf_elf *elf)
{
    uint8_t id[64];
    size_t idlen;
    char hex[2 * sizeof(id) + 1], file[PATH_MAX + 128], dir[PATH_MAX];
    const char *link = NULL;
    struct pf_elf *d = NULL;

    if (path[0] != '/' || pf_elf_build_id(elf, id, sizeof(id), &idlen) != PF_OK || idlen < 2)
        return NULL;
    for (size_t i = 0; i < idlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    pf_elf_debuglink(elf, &link);

    for (int root = 0; root < 2 && !d; root++) {
        char prefix[64] = "";
        if (root == 0)
            snprintf(prefix, sizeof(prefix), "/proc/%d/root", (int)pid);
        snprintf(file, sizeof(file), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", prefix, hex,
                 hex + 2);
        d = try_debug(file, id, idlen);
        if (!d && link) {
            static const char *const where[] = {"", "/.debug", "/usr/lib/debug"};
            for (size_t i = 0; i < sizeof(where) / sizeof(where[0]) && !d; i++) {
                /* dir/name, dir/.debug/name, /usr/lib/debug/dir/name */
                if (i < 2)
                    snprintf(file, sizeof(file), "%s%s%s/%s", prefix, dir, where[i], link);
                else
                    snprintf(file, sizeof(file), "%s%s%s/%s", prefix, where[i], dir, link);
                d = try_debug(file, id, idlen);
            }
        }
    }
    return d;
}

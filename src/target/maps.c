#include "pyflame/target/maps.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyflame/base/bsearch.h"

/* One line of /proc/PID/maps, as fs/proc/task_mmu.c prints it:
 *
 *   start-end perms offset major:minor inode [padding path]
 *
 * Numbers are hex except the inode. The path is the rest of the line, kept
 * exactly as printed: it may contain spaces, may end in " (deleted)", and
 * may be a pseudo-name such as "[heap]". The kernel escapes '\n' in names,
 * so a line never spans two. Anonymous lines end after the inode, usually
 * with one trailing space. */

struct cursor {
    const char *p, *end;
};

static bool parse_hex(struct cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = c->p;

    for (; c->p < c->end; c->p++) {
        char ch = *c->p;
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            break;
        if (v >> 60)
            return false; /* a 17th significant digit */
        v = (v << 4) | d;
    }
    if (c->p == start)
        return false;
    *out = v;
    return true;
}

static bool parse_dec(struct cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = c->p;

    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
        unsigned d = (unsigned)(*c->p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (c->p == start)
        return false;
    *out = v;
    return true;
}

static bool expect(struct cursor *c, char ch)
{
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

static bool perm(struct cursor *c, char yes, bool *out)
{
    if (c->p >= c->end || (*c->p != yes && *c->p != '-'))
        return false;
    *out = *c->p == yes;
    c->p++;
    return true;
}

/* Parse [line, end) (no newline) into m. The path, if any, is copied to
 * *strings, which advances past its NUL. */
static bool parse_line(const char *line, const char *end, struct pf_map *m, char **strings)
{
    struct cursor c = {line, end};
    uint64_t dev_major, dev_minor;

    if (memchr(line, '\0', (size_t)(end - line)))
        return false;
    if (!parse_hex(&c, &m->start) || !expect(&c, '-') || !parse_hex(&c, &m->end) ||
        !expect(&c, ' '))
        return false;
    if (!perm(&c, 'r', &m->r) || !perm(&c, 'w', &m->w) || !perm(&c, 'x', &m->x))
        return false;
    /* private or shared: not in struct pf_map, checked only to validate */
    if (!expect(&c, 'p') && !expect(&c, 's'))
        return false;
    if (!expect(&c, ' ') || !parse_hex(&c, &m->offset) || !expect(&c, ' '))
        return false;
    if (!parse_hex(&c, &dev_major) || !expect(&c, ':') || !parse_hex(&c, &dev_minor) ||
        !expect(&c, ' '))
        return false;
    if (!parse_dec(&c, &m->inode))
        return false;
    if (m->start >= m->end)
        return false;

    m->path = NULL;
    if (c.p == c.end)
        return true;
    if (*c.p != ' ')
        return false; /* e.g. "0x" or a letter glued to the inode */
    /* The kernel pads to a column before the name. A name cannot start
     * with a space in practice (paths are absolute, pseudo-names are
     * bracketed), so all leading spaces are padding. */
    while (c.p < c.end && *c.p == ' ')
        c.p++;
    if (c.p == c.end)
        return true;

    size_t n = (size_t)(c.end - c.p);
    memcpy(*strings, c.p, n);
    (*strings)[n] = '\0';
    m->path = *strings;
    *strings += n + 1;
    return true;
}

static int cmp_start(const void *a, const void *b)
{
    const struct pf_map *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return 0;
}

/* Parse text; on a bad line, set *bad_line (1-based) and fail. */
static pf_err parse(const char *text, size_t len, struct pf_maps *out, size_t *bad_line)
{
    size_t lines = 0;
    const char *p, *end = text + len;

    *bad_line = 0;
    for (p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        lines++;
        p = nl ? nl + 1 : end;
    }
    if (lines == 0) {
        out->v = NULL;
        out->n = 0;
        return PF_OK;
    }

    /* One allocation: the array, then every path string after it. A path
     * is at most its line, plus a NUL, so len + lines bounds them all.
     * pf_maps_free then frees one pointer, which also keeps it safe for
     * callers that build a struct pf_maps by hand with literal paths. */
    if (lines > (SIZE_MAX - len - lines) / sizeof(struct pf_map))
        return PF_ERR_NOMEM;
    size_t array_bytes = lines * sizeof(struct pf_map);
    struct pf_map *v = malloc(array_bytes + len + lines);
    if (!v)
        return PF_ERR_NOMEM;
    char *strings = (char *)v + array_bytes;

    size_t n = 0;
    bool sorted = true;
    for (p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if (!parse_line(p, eol, &v[n], &strings)) {
            *bad_line = n + 1;
            free(v);
            return PF_ERR_CORRUPT;
        }
        if (n > 0 && v[n].start < v[n - 1].start)
            sorted = false;
        n++;
        p = nl ? nl + 1 : end;
    }
    /* The kernel prints in address order, but a target that changes its
     * mappings while we read the file in pieces can make the text restart
     * a little earlier. find_addr needs order, so restore it. */
    if (!sorted)
        qsort(v, n, sizeof(*v), cmp_start);

    out->v = v;
    out->n = n;
    return PF_OK;
}

pf_err pf_maps_parse(const char *text, size_t len, struct pf_maps *out)
{
    size_t bad_line;

    return parse(text, len, out, &bad_line);
}

static pf_err maps_errno(int errnum)
{
    switch (errnum) {
    case ENOENT: case ESRCH: return PF_ERR_NOPROC;
    case EACCES: case EPERM: return PF_ERR_PERM;
    case ENOMEM: return PF_ERR_NOMEM;
    default: return PF_ERR_IO;
    }
}

pf_err pf_maps_read(pid_t pid, struct pf_diag *diag, struct pf_maps *out)
{
    char path[64];
    char *buf = NULL;
    size_t cap = 64 * 1024, len = 0;
    size_t bad_line;
    pf_err err;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return pf_diag_errno(diag, maps_errno(e), e, "cannot read %s", path);
    }
    buf = malloc(cap);
    if (!buf) {
        err = pf_diag_set(diag, PF_ERR_NOMEM, "cannot read %s: out of memory", path);
        goto out;
    }
    /* The file is generated as we read; it can be megabytes for processes
     * with many mappings, so grow until read() says the end. */
    for (;;) {
        if (len == cap) {
            char *bigger = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                err = pf_diag_set(diag, PF_ERR_NOMEM, "cannot read %s: out of memory", path);
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            err = pf_diag_errno(diag, maps_errno(e), e, "cannot read %s", path);
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }

    err = parse(buf, len, out, &bad_line);
    if (err == PF_ERR_CORRUPT)
        pf_diag_set(diag, err, "%s: line %zu does not parse", path, bad_line);
    else if (err)
        pf_diag_set(diag, err, "cannot parse %s: %s", path, pf_strerror(err));
out:
    free(buf);
    close(fd);
    return err;
}

void pf_maps_free(struct pf_maps *maps)
{
    if (!maps)
        return;
    free(maps->v); /* the paths live in the same block */
    maps->v = NULL;
    maps->n = 0;
}

const struct pf_map *pf_maps_find_file(const struct pf_maps *maps, const char *path,
                                       uint64_t offset)
{
    /* Sorted by start, so the first match is the lowest. */
    for (size_t i = 0; i < maps->n; i++) {
        const struct pf_map *m = &maps->v[i];
        if (m->offset == offset && m->path && strcmp(m->path, path) == 0)
            return m;
    }
    return NULL;
}

const struct pf_map *pf_maps_find_addr(const struct pf_maps *maps, uint64_t addr)
{
    /* The last mapping that starts at or below addr is the only candidate. */
    size_t i = pf_bsearch_count_le(maps->v, maps->n, sizeof(*maps->v),
                                   offsetof(struct pf_map, start), addr);
    if (i == 0)
        return NULL;
    const struct pf_map *m = &maps->v[i - 1];
    return addr < m->end ? m : NULL;
}

#include "pyflame/target/elf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyflame/base/bsearch.h"

/* One defined symbol. Names point into libelf's string tables, which live
 * as long as the Elf handle. */
struct sym {
    const char *name;
    uint64_t value, size;
    /* Tie-break among equal names: .symtab before .dynsym, then global/weak
     * before local, then table order. So a lookup returns what the header
     * promises (.symtab first) and prefers the symbol other objects see. */
    uint64_t rank;
    uint8_t type, bind; /* STT_*, STB_* */
};

struct section {
    const char *name;
    uint64_t addr, size;
    uint32_t type;
    Elf_Scn *scn;
};

struct pf_elf {
    int fd;
    Elf *elf;
    GElf_Ehdr ehdr;
    GElf_Phdr *ph;
    size_t nph;
    struct section *sec;
    size_t nsec;
    struct sym *sym; /* sorted by (name, rank) */
    size_t nsym;
    const char *soname;
    uint64_t page;
    char *image; /* pf_elf_open_mem: our copy of the bytes; fd is then -1 */
    size_t image_len;
};

void pf_elf_close(struct pf_elf *e)
{
    if (!e)
        return;
    free(e->sym);
    free(e->sec);
    free(e->ph);
    if (e->elf)
        elf_end(e->elf);
    if (e->fd >= 0)
        close(e->fd);
    free(e->image);
    free(e);
}

static int cmp_sym(const void *a, const void *b)
{
    const struct sym *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Number of entries of type t in the first data chunk of a section. */
static size_t entries(const struct pf_elf *e, Elf_Data *d, Elf_Type t)
{
    size_t one = gelf_fsize(e->elf, t, 1, EV_CURRENT);

    if (!d || !d->d_buf || one == 0)
        return 0;
    return d->d_size / one;
}

static pf_err index_symbols(struct pf_elf *e)
{
    size_t cap = 0, n = 0;

    for (size_t i = 0; i < e->nsec; i++)
        if (e->sec[i].type == SHT_SYMTAB || e->sec[i].type == SHT_DYNSYM)
            cap += entries(e, elf_getdata(e->sec[i].scn, NULL), ELF_T_SYM);
    if (cap == 0)
        return PF_OK;
    e->sym = malloc(cap * sizeof(*e->sym));
    if (!e->sym)
        return PF_ERR_NOMEM;

    for (size_t i = 0; i < e->nsec; i++) {
        const struct section *s = &e->sec[i];
        if (s->type != SHT_SYMTAB && s->type != SHT_DYNSYM)
            continue;
        GElf_Shdr sh;
        Elf_Data *d = elf_getdata(s->scn, NULL);
        size_t count = entries(e, d, ELF_T_SYM);
        if (count == 0 || !gelf_getshdr(s->scn, &sh))
            continue;
        uint64_t table = s->type == SHT_SYMTAB ? 0 : 1;
        for (size_t j = 0; j < count && n < cap; j++) {
            GElf_Sym st;
            if (!gelf_getsym(d, (int)j, &st) || st.st_shndx == SHN_UNDEF || st.st_name == 0)
                continue;
            int type = GELF_ST_TYPE(st.st_info);
            if (type == STT_SECTION || type == STT_FILE)
                continue;
            const char *name = elf_strptr(e->elf, sh.sh_link, st.st_name);
            if (!name || !*name)
                continue;
            uint64_t local = GELF_ST_BIND(st.st_info) == STB_LOCAL;
            e->sym[n++] = (struct sym){
                .name = name,
                .value = st.st_value,
                .size = st.st_size,
                .rank = table << 62 | local << 61 | j,
                .type = (uint8_t)type,
                .bind = (uint8_t)GELF_ST_BIND(st.st_info),
            };
        }
    }
    e->nsym = n;
    qsort(e->sym, n, sizeof(*e->sym), cmp_sym);
    return PF_OK;
}

static void find_soname(struct pf_elf *e)
{
    for (size_t i = 0; i < e->nsec; i++) {
        GElf_Shdr sh;
        if (e->sec[i].type != SHT_DYNAMIC || !gelf_getshdr(e->sec[i].scn, &sh))
            continue;
        Elf_Data *d = elf_getdata(e->sec[i].scn, NULL);
        size_t count = entries(e, d, ELF_T_DYN);
        for (size_t j = 0; j < count; j++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(d, (int)j, &dyn) || dyn.d_tag == DT_NULL)
                break;
            if (dyn.d_tag == DT_SONAME) {
                e->soname = elf_strptr(e->elf, sh.sh_link, dyn.d_un.d_val);
                return;
            }
        }
    }
}

static pf_err index_sections(struct pf_elf *e)
{
    size_t shnum, shstrndx;

    if (elf_getshdrnum(e->elf, &shnum) != 0)
        return PF_ERR_CORRUPT;
    /* A file without section headers (sstrip) still has program headers;
     * it just has no symbols or named sections. */
    if (shnum == 0) {
        /* libelf reports none when they lie past the end of the file. */
        return e->ehdr.e_shnum != 0 ? PF_ERR_CORRUPT : PF_OK;
    }
    if (elf_getshdrstrndx(e->elf, &shstrndx) != 0)
        return PF_ERR_CORRUPT;
    e->sec = calloc(shnum, sizeof(*e->sec));
    if (!e->sec)
        return PF_ERR_NOMEM;

    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e->elf, scn)) != NULL && e->nsec < shnum) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            return PF_ERR_CORRUPT;
        const char *name = elf_strptr(e->elf, shstrndx, sh.sh_name);
        e->sec[e->nsec++] = (struct section){
            .name = name ? name : "",
            .addr = sh.sh_addr,
            .size = sh.sh_size,
            .type = sh.sh_type,
            .scn = scn,
        };
    }
    return PF_OK;
}

static pf_err index_phdrs(struct pf_elf *e)
{
    size_t n;

    if (elf_getphdrnum(e->elf, &n) != 0)
        return PF_ERR_CORRUPT;
    if (n == 0)
        return PF_OK;
    e->ph = calloc(n, sizeof(*e->ph));
    if (!e->ph)
        return PF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (!gelf_getphdr(e->elf, (int)i, &e->ph[e->nph++]))
            return PF_ERR_CORRUPT;
    return PF_OK;
}

/* Everything after elf_begin/elf_memory, shared by both constructors. `what`
 * names the file in messages. On failure the caller frees e. */
static pf_err index_elf(struct pf_elf *e, const char *what, struct pf_diag *diag)
{
    pf_err err;

    if (!e->elf || elf_kind(e->elf) != ELF_K_ELF)
        return pf_diag_set(diag, PF_ERR_NOTPYTHON, "%s: not an ELF file", what);
    if (!gelf_getehdr(e->elf, &e->ehdr))
        return pf_diag_set(diag, PF_ERR_CORRUPT, "%s: bad ELF header: %s", what, elf_errmsg(-1));

    /* The kernel and ld.so map segments at the run-time page size, not at
     * p_align (which is the linker's max-page-size, up to 2 MiB on older
     * x86_64 binaries, and would merge a data segment's page with text). */
    long page = sysconf(_SC_PAGESIZE);
    e->page = page > 0 && (page & (page - 1)) == 0 ? (uint64_t)page : 4096;

    err = index_phdrs(e);
    if (!err)
        err = index_sections(e);
    if (!err)
        err = index_symbols(e);
    if (err) {
        if (err == PF_ERR_NOMEM)
            return pf_diag_set(diag, err, "%s: out of memory", what);
        int le = elf_errno(); /* 0 when the check was ours, not libelf's */
        return pf_diag_set(diag, err, "%s: malformed ELF file%s%s", what, le ? ": " : "",
                           le ? elf_errmsg(le) : "");
    }
    find_soname(e);
    return PF_OK;
}

pf_err pf_elf_open(const char *path, struct pf_diag *diag, struct pf_elf **out)
{
    pf_err err;
    struct pf_elf *e;

    if (elf_version(EV_CURRENT) == EV_NONE)
        return pf_diag_set(diag, PF_ERR_INTERNAL, "libelf: %s", elf_errmsg(-1));
    e = calloc(1, sizeof(*e));
    if (!e)
        return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", path);
    e->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (e->fd < 0) {
        err = pf_diag_errno(diag, PF_ERR_IO, errno, "%s: open failed", path);
        goto fail;
    }
    e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
    if ((err = index_elf(e, path, diag)))
        goto fail;
    *out = e;
    return PF_OK;
fail:
    pf_elf_close(e);
    return err;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

pf_err pf_elf_open_mapped(pid_t pid, const struct pf_map *m, struct pf_elf **out)
{
    char root_path[PATH_MAX + 64], map_path[96];
    struct stat st;
    bool deleted = ends_with(m->path, " (deleted)");

    snprintf(root_path, sizeof(root_path), "/proc/%d/root%s", (int)pid, m->path);
    snprintf(map_path, sizeof(map_path), "/proc/%d/map_files/%llx-%llx", (int)pid,
             (unsigned long long)m->start, (unsigned long long)m->end);
    if (!deleted && stat(root_path, &st) == 0 && (uint64_t)st.st_ino == m->inode &&
        pf_elf_open(root_path, NULL, out) == PF_OK)
        return PF_OK;
    if (pf_elf_open(map_path, NULL, out) == PF_OK)
        return PF_OK;
    if (deleted)
        return PF_ERR_NOTFOUND;
    return pf_elf_open(root_path, NULL, out);
}

pf_err pf_elf_open_mem(const void *bytes, size_t len, const char *what, struct pf_diag *diag,
                       struct pf_elf **out)
{
    pf_err err;
    struct pf_elf *e;

    if (elf_version(EV_CURRENT) == EV_NONE)
        return pf_diag_set(diag, PF_ERR_INTERNAL, "libelf: %s", elf_errmsg(-1));
    if (len == 0)
        return pf_diag_set(diag, PF_ERR_NOTPYTHON, "%s: not an ELF file", what);
    e = calloc(1, sizeof(*e));
    if (!e)
        return pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", what);
    e->fd = -1;
    if (!(e->image = malloc(len))) {
        err = pf_diag_set(diag, PF_ERR_NOMEM, "%s: out of memory", what);
        goto fail;
    }
    memcpy(e->image, bytes, len);
    e->image_len = len;
    e->elf = elf_memory(e->image, len);
    if ((err = index_elf(e, what, diag)))
        goto fail;
    *out = e;
    return PF_OK;
fail:
    pf_elf_close(e);
    return err;
}

pf_err pf_elf_symbol(const struct pf_elf *e, const char *name, uint64_t *value, uint64_t *size)
{
    size_t lo = 0, hi = e->nsym;

    /* Lower bound: the first entry with this name has the best rank. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(e->sym[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == e->nsym || strcmp(e->sym[lo].name, name) != 0)
        return PF_ERR_NOTFOUND;
    if (value)
        *value = e->sym[lo].value;
    if (size)
        *size = e->sym[lo].size;
    return PF_OK;
}

static const struct section *section_by_name(const struct pf_elf *e, const char *name)
{
    for (size_t i = 0; i < e->nsec; i++)
        if (strcmp(e->sec[i].name, name) == 0)
            return &e->sec[i];
    return NULL;
}

pf_err pf_elf_section(const struct pf_elf *e, const char *name, uint64_t *addr, uint64_t *size)
{
    const struct section *s = section_by_name(e, name);

    if (!s)
        return PF_ERR_NOTFOUND;
    if (addr)
        *addr = s->addr;
    if (size)
        *size = s->size;
    return PF_OK;
}

pf_err pf_elf_read_vaddr(const struct pf_elf *e, uint64_t vaddr, void *dst, size_t len)
{
    for (size_t i = 0; i < e->nph; i++) {
        const GElf_Phdr *p = &e->ph[i];
        if (p->p_type != PT_LOAD || vaddr < p->p_vaddr)
            continue;
        /* Only [p_vaddr, p_vaddr + p_filesz) is in the file; the rest of
         * p_memsz (.bss) is zero-filled at load time. */
        uint64_t off = vaddr - p->p_vaddr;
        if (off > p->p_filesz || len > p->p_filesz - off)
            continue;
        uint64_t pos = p->p_offset + off;
        if (pos < p->p_offset || pos > (uint64_t)INT64_MAX)
            return PF_ERR_CORRUPT;
        if (e->fd < 0) {
            if (pos > e->image_len || len > e->image_len - pos)
                return PF_ERR_IO; /* an image shorter than its headers */
            memcpy(dst, e->image + pos, len);
            return PF_OK;
        }

        size_t done = 0;
        while (done < len) {
            ssize_t got = pread(e->fd, (char *)dst + done, len - done, (off_t)(pos + done));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return PF_ERR_IO; /* an error, or a file shorter than its headers */
            done += (size_t)got;
        }
        return PF_OK;
    }
    return PF_ERR_NOTFOUND;
}

pf_err pf_elf_load_base(const struct pf_elf *e, uint64_t offset, uint64_t *vaddr_page)
{
    const uint64_t mask = ~(e->page - 1);
    const uint64_t want = offset & mask;

    /* The usual case: a mapping starts where a segment does, each segment
     * being mapped at page_down(p_offset) -> page_down(p_vaddr). Take the
     * first in header order, as segments of tiny files can share a page. */
    for (size_t i = 0; i < e->nph; i++) {
        const GElf_Phdr *p = &e->ph[i];
        if (p->p_type == PT_LOAD && (p->p_offset & mask) == want) {
            *vaddr_page = p->p_vaddr & mask;
            return PF_OK;
        }
    }
    /* A mapping can also start inside a segment: mprotect() splits a VMA,
     * e.g. the RW segment into its RELRO part (r--) and the rest (rw-).
     * Its offset then corresponds to a vaddr as far into the segment. */
    for (size_t i = 0; i < e->nph; i++) {
        const GElf_Phdr *p = &e->ph[i];
        uint64_t first = p->p_offset & mask;
        /* want < p_offset + p_filesz, written so it cannot overflow */
        if (p->p_type == PT_LOAD && want > first && want - p->p_offset < p->p_filesz) {
            *vaddr_page = (p->p_vaddr & mask) + (want - first);
            return PF_OK;
        }
    }
    return PF_ERR_NOTFOUND;
}

pf_err pf_elf_load_bias(const struct pf_elf *e, const struct pf_map *m, uint64_t *bias)
{
    uint64_t vaddr;
    pf_err err = pf_elf_load_base(e, m->offset, &vaddr);
    if (!err)
        *bias = m->start - vaddr;
    return err;
}

bool pf_elf_is_dyn(const struct pf_elf *e)
{
    return e->ehdr.e_type == ET_DYN;
}

const char *pf_elf_soname(const struct pf_elf *e)
{
    return e->soname;
}

pf_err pf_elf_scan_rodata(const struct pf_elf *e,
                          bool (*visit)(void *ctx, const char *bytes, size_t len, uint64_t vaddr),
                          void *ctx)
{
    const struct section *s = section_by_name(e, ".rodata");
    Elf_Data *d = NULL;
    bool any = false;

    if (!s || s->type == SHT_NOBITS)
        return PF_ERR_NOTFOUND;
    while ((d = elf_getdata(s->scn, d)) != NULL) {
        if (!d->d_buf || d->d_size == 0)
            continue;
        any = true;
        if (!visit(ctx, d->d_buf, d->d_size, s->addr + (uint64_t)d->d_off))
            break;
    }
    return any ? PF_OK : PF_ERR_NOTFOUND;
}

pf_err pf_elf_segment(const struct pf_elf *e, uint32_t type, uint64_t *vaddr, uint64_t *memsz)
{
    for (size_t i = 0; i < e->nph; i++)
        if (e->ph[i].p_type == type) {
            *vaddr = e->ph[i].p_vaddr;
            *memsz = e->ph[i].p_memsz;
            return PF_OK;
        }
    return PF_ERR_NOTFOUND;
}

bool pf_elf_has_symtab(const struct pf_elf *e)
{
    for (size_t i = 0; i < e->nsec; i++)
        if (e->sec[i].type == SHT_SYMTAB)
            return true;
    return false;
}

/* The first data chunk of a section with contents, or NULL. */
static Elf_Data *section_data(const struct section *s)
{
    if (!s || s->type == SHT_NOBITS)
        return NULL;
    Elf_Data *d = elf_getdata(s->scn, NULL);
    return d && d->d_buf && d->d_size ? d : NULL;
}

pf_err pf_elf_build_id(const struct pf_elf *e, uint8_t *buf, size_t cap, size_t *len)
{
    for (size_t i = 0; i < e->nsec; i++) {
        if (e->sec[i].type != SHT_NOTE)
            continue;
        Elf_Data *d = section_data(&e->sec[i]);
        size_t off = 0, name_off, desc_off;
        GElf_Nhdr nh;
        while (d && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
                memcmp((const char *)d->d_buf + name_off, "GNU", 4) != 0)
                continue;
            if (nh.n_descsz == 0 || nh.n_descsz > cap)
                return PF_ERR_CORRUPT;
            memcpy(buf, (const char *)d->d_buf + desc_off, nh.n_descsz);
            *len = nh.n_descsz;
            return PF_OK;
        }
    }
    return PF_ERR_NOTFOUND;
}

pf_err pf_elf_debuglink(const struct pf_elf *e, const char **name)
{
    Elf_Data *d = section_data(section_by_name(e, ".gnu_debuglink"));

    /* A NUL-terminated file name, padded to 4 bytes, then a CRC32. */
    if (!d)
        return PF_ERR_NOTFOUND;
    const char *s = d->d_buf;
    size_t n = strnlen(s, d->d_size);
    if (n == 0 || n == d->d_size || memchr(s, '/', n))
        return PF_ERR_CORRUPT;
    *name = s;
    return PF_OK;
}

/* Address -> function symbol. */

struct addr_sym {
    uint64_t value, size;
    const char *name;
};

struct pf_elf_addrmap {
    struct addr_sym *v; /* sorted by value; one entry per address */
    size_t n;
};

/* Which of two symbols at one address to show: one the object exports
 * (global or weak) over a local alias (glibc: clock_nanosleep over
 * __GI___clock_nanosleep), then fewer leading underscores (select over
 * __select), then global over weak, then the shorter, then by name, so the
 * choice never depends on table order. */
static int sym_better(const struct sym *a, const struct sym *b)
{
    bool la = a->bind == STB_LOCAL, lb = b->bind == STB_LOCAL;
    if (la != lb)
        return la ? 1 : -1;
    size_t ua = strspn(a->name, "_"), ub = strspn(b->name, "_");
    if (ua != ub)
        return ua < ub ? -1 : 1;
    if (a->bind != b->bind)
        return a->bind == STB_GLOBAL ? -1 : 1;
    size_t na = strlen(a->name), nb = strlen(b->name);
    if (na != nb)
        return na < nb ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int cmp_sym_addr(const void *x, const void *y)
{
    const struct sym *a = *(const struct sym *const *)x, *b = *(const struct sym *const *)y;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return sym_better(a, b);
}

pf_err pf_elf_addrmap_new(const struct pf_elf *e, struct pf_elf_addrmap **out)
{
    struct pf_elf_addrmap *m = calloc(1, sizeof(*m));
    const struct sym **tmp = NULL;
    size_t k = 0;

    if (!m)
        return PF_ERR_NOMEM;
    if (e->nsym) {
        tmp = malloc(e->nsym * sizeof(*tmp));
        m->v = malloc(e->nsym * sizeof(*m->v));
        if (!tmp || !m->v) {
            free(tmp);
            pf_elf_addrmap_free(m);
            return PF_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < e->nsym; i++)
        if ((e->sym[i].type == STT_FUNC || e->sym[i].type == STT_GNU_IFUNC) && e->sym[i].value)
            tmp[k++] = &e->sym[i];
    qsort(tmp, k, sizeof(*tmp), cmp_sym_addr);
    for (size_t i = 0; i < k; i++) {
        /* The best name at an address sorts first; keep it, and the largest
         * size any alias gives (a size-0 alias must not hide a sized one). */
        if (m->n && m->v[m->n - 1].value == tmp[i]->value) {
            if (tmp[i]->size > m->v[m->n - 1].size)
                m->v[m->n - 1].size = tmp[i]->size;
            continue;
        }
        m->v[m->n++] = (struct addr_sym){tmp[i]->value, tmp[i]->size, tmp[i]->name};
    }
    free(tmp);
    *out = m;
    return PF_OK;
}

void pf_elf_addrmap_free(struct pf_elf_addrmap *m)
{
    if (!m)
        return;
    free(m->v);
    free(m);
}

size_t pf_elf_addrmap_count(const struct pf_elf_addrmap *m)
{
    return m->n;
}

pf_err pf_elf_addrmap_find(const struct pf_elf_addrmap *m, uint64_t vaddr, const char **name,
                           uint64_t *start)
{
    /* The last symbol starting at or below vaddr... */
    size_t lo = pf_bsearch_count_le(m->v, m->n, sizeof(*m->v), offsetof(struct addr_sym, value),
                                    vaddr);
    /* ...or one just before it, if symbols nest (rare; a few steps at most).
     * A symbol whose size does not cover vaddr is not a match: we never
     * stretch a name over bytes it does not claim. Size 0 (hand-written
     * assembly without .size) claims only its first byte. */
    for (size_t i = lo, steps = 0; i-- > 0 && steps < 8; steps++) {
        const struct addr_sym *s = &m->v[i];
        if (vaddr == s->value || vaddr - s->value < s->size) {
            *name = s->name;
            if (start)
                *start = s->value;
            return PF_OK;
        }
    }
    return PF_ERR_NOTFOUND;
}

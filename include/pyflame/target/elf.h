/* elf: what we need from an ELF file on disk (or an image in memory, such
 * as the vDSO), through libelf (gelf): symbols from .symtab and .dynsym by
 * name and by address, sections by name, the program headers (for the load
 * bias and the unwind tables), build ID and debug link, and bytes of
 * initialized data at a virtual address. It never reads the target's
 * memory; it opens the target's files (pf_elf_open_mapped) through /proc. */
#ifndef PYFLAME_ELF_H
#define PYFLAME_ELF_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/elf.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyflame/base/error.h"
#include "pyflame/target/maps.h"

struct pf_elf;

/* Open and index an ELF file. */
pf_err pf_elf_open(const char *path, struct pf_diag *diag, struct pf_elf **out);

/* Open the file behind mapping m of process pid as the target sees it:
 * through /proc/PID/root, which resolves the path in the target's mount
 * namespace and root (containers, chroots), when that is still the mapped
 * file (same inode); otherwise through /proc/PID/map_files, which reaches
 * even a deleted or replaced file but needs CAP_SYS_ADMIN; last, the path
 * under the root whatever its inode. PF_ERR_NOTFOUND for a deleted file
 * map_files could not open. Discovery and the native unwinder both open
 * the target's files this one way. */
pf_err pf_elf_open_mapped(pid_t pid, const struct pf_map *m, struct pf_elf **out);

/* Index an ELF image held in memory (the vDSO, copied from the target).
 * The bytes are copied. `what` names the image in messages. */
pf_err pf_elf_open_mem(const void *bytes, size_t len, const char *what, struct pf_diag *diag,
                       struct pf_elf **out);

/* Accepts NULL. */
void pf_elf_close(struct pf_elf *e);

/* Look a symbol up by exact name in .symtab, then .dynsym. Gives the
 * unrelocated st_value and st_size. Undefined symbols (st_shndx == SHN_UNDEF)
 * are skipped. */
pf_err pf_elf_symbol(const struct pf_elf *e, const char *name, uint64_t *value, uint64_t *size);

/* Address (sh_addr) and size of a section by name. */
pf_err pf_elf_section(const struct pf_elf *e, const char *name, uint64_t *addr, uint64_t *size);

/* Copy len bytes of file-backed data at virtual address vaddr (from the
 * PT_LOAD segment that contains it). PF_ERR_NOTFOUND if not in the file
 * (e.g. .bss). */
pf_err pf_elf_read_vaddr(const struct pf_elf *e, uint64_t vaddr, void *dst, size_t len);

/* The PT_LOAD segment whose file range starts at the page containing
 * file offset `offset`: its p_vaddr rounded down to the page, so that
 * load bias = mapping start - this value. PF_ERR_NOTFOUND if none.
 * If no segment starts on that page but one covers it (a mapping split by
 * mprotect, e.g. RELRO), the page's vaddr inside that segment. Two segments
 * can start on the same file page (a RW segment beginning mid-page after an
 * R one); the first wins, so compute the bias from the mapping at offset 0. */
pf_err pf_elf_load_base(const struct pf_elf *e, uint64_t offset, uint64_t *vaddr_page);

/* Load bias (run-time address - ELF virtual address) of e as mapped by m:
 * m->start - pf_elf_load_base(e, m->offset). Pass the file's mapping at
 * offset 0 when there is one (see above). */
pf_err pf_elf_load_bias(const struct pf_elf *e, const struct pf_map *m, uint64_t *bias);

/* ET_DYN (PIE or shared library) vs ET_EXEC. */
bool pf_elf_is_dyn(const struct pf_elf *e);

/* DT_SONAME, or NULL. Borrowed. */
const char *pf_elf_soname(const struct pf_elf *e);

/* Call visit on the bytes of .rodata (one or more chunks; vaddr is the
 * address of bytes[0]) until it returns false. PF_ERR_NOTFOUND if the file
 * has no .rodata with contents. The bytes are borrowed for the call only. */
pf_err pf_elf_scan_rodata(const struct pf_elf *e,
                          bool (*visit)(void *ctx, const char *bytes, size_t len, uint64_t vaddr),
                          void *ctx);

/* The first program header of type `type` (e.g. PT_GNU_EH_FRAME): its
 * p_vaddr and p_memsz. PF_ERR_NOTFOUND if none. */
pf_err pf_elf_segment(const struct pf_elf *e, uint32_t type, uint64_t *vaddr, uint64_t *memsz);

/* Whether the file has a .symtab (else only exported symbols are known, and
 * a separate debug file may have the rest). */
bool pf_elf_has_symtab(const struct pf_elf *e);

/* The GNU build ID (NT_GNU_BUILD_ID note), at most cap bytes. */
pf_err pf_elf_build_id(const struct pf_elf *e, uint8_t *buf, size_t cap, size_t *len);

/* The file name in .gnu_debuglink (a base name, no '/'). Borrowed, valid
 * while e is open. */
pf_err pf_elf_debuglink(const struct pf_elf *e, const char **name);

/* Function symbols (STT_FUNC, STT_GNU_IFUNC) of .symtab and .dynsym sorted
 * by address, for turning addresses into names. Where several names share an
 * address, one is kept: exported over local, then fewer leading
 * underscores, then global over weak, then the shorter. Names are borrowed
 * from e: the map must not outlive it. */
struct pf_elf_addrmap;

pf_err pf_elf_addrmap_new(const struct pf_elf *e, struct pf_elf_addrmap **out);
void pf_elf_addrmap_free(struct pf_elf_addrmap *m); /* accepts NULL */
size_t pf_elf_addrmap_count(const struct pf_elf_addrmap *m);

/* The function whose [st_value, st_value + st_size) holds vaddr (an
 * unrelocated address; size 0 holds only st_value). Gives its name, as in
 * the table (it may carry a "@VERSION" suffix in .symtab), and start.
 * PF_ERR_NOTFOUND when no symbol claims the address: no name is guessed. */
pf_err pf_elf_addrmap_find(const struct pf_elf_addrmap *m, uint64_t vaddr, const char **name,
                           uint64_t *start);

#endif

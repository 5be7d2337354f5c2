/* elf: what we need from an ELF file on disk, through libelf (gelf):
 * symbols from .symtab and .dynsym, sections by name, the program headers
 * (for the load bias), and bytes of initialized data at a virtual address.
 * It never touches the target process. */
#ifndef PYFLAME_ELF_H
#define PYFLAME_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/error.h"

struct pf_elf;

/* Open and index an ELF file. */
pf_err pf_elf_open(const char *path, struct pf_diag *diag, struct pf_elf **out);

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

#endif

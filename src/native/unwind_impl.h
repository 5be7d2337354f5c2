/* unwind_impl: what unwind.c (walking a stopped thread's native stack with
 * libunwind) and symbolize.c (naming the addresses it found, after the
 * stop window) share. Private to src/native/. */
#ifndef PYFLAME_UNWIND_IMPL_H
#define PYFLAME_UNWIND_IMPL_H

#include <libunwind.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "pyflame/native/unwind.h"
#include "pyflame/target/elf.h"
#include "pyflame/target/maps.h"

#define PAGE 4096u
#define PAGE_SLOTS 64            /* read-only pages of code and unwind tables, direct-mapped */
#define PC_SLOTS 16384           /* symbolized addresses, open addressing; cleared when 3/4 full */
#define STACK_FIRST (16u << 10)  /* first read of a stack: grown to what recent samples used */
#define FRUITLESS_NS 1000000000u /* after a re-read of the maps that did not help, wait 1 s */
#define NAME_CAP 512             /* longest symbol we print, in bytes */

/* One mapped file (or the vDSO), shared by all its mappings. Opened on first
 * use, then kept: the target's libraries rarely change. */
struct obj {
    char *path; /* as in /proc/PID/maps */
    uint64_t inode;
    const char *base; /* the file name, for frame text */
    bool is_interp;
    bool tried; /* opening was attempted (elf may still be NULL) */
    struct pf_elf *elf;
    struct pf_elf *debug; /* separate debug file, when elf has no .symtab */
    bool syms_tried;
    struct pf_elf_addrmap *syms;
    bool bias_known;
    uint64_t bias; /* run-time address - ELF virtual address */
    /* .eh_frame_hdr binary-search table, in the target's memory */
    bool eh_tried, eh_ok;
    uint64_t eh_hdr, eh_table, eh_count;
};

struct page {
    uint64_t addr; /* 0: empty */
    uint8_t bytes[PAGE];
};

struct pc_entry {
    uint64_t key;   /* (address looked up) << 1 | 1; 0 is empty */
    uint32_t frame; /* intern frame id */
    uint8_t kind;   /* enum pf_native_kind */
};

/* glibc's <sys/user.h>: x86-64 rax...r15, rip, orig_rax; aarch64
 * regs[31], sp, pc. */
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "native unwinding supports x86_64 and aarch64"
#endif
typedef struct user_regs_struct regs_t;

struct pf_unwind {
    pid_t pid;
    struct pf_mem *mem;
    struct pf_intern *names;
    char *interp_path;
    char *eval_symbol; /* the eval loop's name, for pf_merge_classify */
    unw_addr_space_t as;

    struct pf_maps maps;
    struct obj **map_obj; /* per mapping: its object, or NULL (anonymous) */
    struct obj **objs;
    size_t nobj, capobj;
    bool reread_ok;        /* the maps may be read again in this sample */
    uint64_t fruitless_ns; /* when a re-read last failed to explain an address */

    /* the thread being unwound */
    pid_t tid;
    regs_t regs;
    uint8_t *stack; /* copy of [stack_lo, stack_lo + stack_len) */
    size_t stack_len, stack_cap;
    uint64_t stack_lo, stack_hi; /* the stack: from sp to the end of its mapping */
    bool stack_end;              /* the last read hit the end of readable memory */
    size_t stack_used;           /* bytes of it libunwind read, in this walk */
    size_t stack_hint;           /* how much to read first */

    struct page *pages;
    struct pc_entry *pcs;
    size_t npcs;
    bool unw_flush;
    bool no_info; /* find_proc_info found no unwind table entry in this step */
};

/* The mapping holding addr. With `reread`, an address outside every known
 * mapping makes us read the maps again (a library loaded since): once per
 * sample at most, and after a re-read that did not explain the address (a
 * corrupt pc), not again for FRUITLESS_NS. *idx: its index in u->maps. */
const struct pf_map *pf_unwind_find_map(struct pf_unwind *u, uint64_t addr, bool reread,
                                        size_t *idx);

/* Learn o's load bias (opening it first if need be); false if it cannot
 * be known. */
bool pf_unwind_obj_bias(struct pf_unwind *u, struct obj *o, const struct pf_map *m);

#endif

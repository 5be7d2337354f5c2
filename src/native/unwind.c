/* unwind: walking a stopped thread's native stack with libunwind's remote
 * interface (unwind.h), reading the target through our own accessors and
 * caches. Naming the frames is symbolize.c's. */
#include "pyflame/native/unwind.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <libunwind.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

#include "pyflame/base/clock.h"
#include "pyflame/base/grow.h"
#include "pyflame/target/elf.h"
#include "pyflame/base/limits.h"
#include "pyflame/base/log.h"
#include "pyflame/target/maps.h"
#include "unwind_impl.h"

/* libunwind exports this but declares it only in its private headers; Linux
 * perf declares it the same way (tools/perf/util/unwind-libunwind-local.c).
 * Given the location of an .eh_frame_hdr search table in the target, it
 * finds and parses the FDE for ip, reading through our access_mem. */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);
#define dwarf_search_unwind_table UNW_OBJ(dwarf_search_unwind_table)

bool pf_unwind_available(void)
{
    return true;
}

/* ---- objects and maps ---------------------------------------------------- */

static void obj_free(struct obj *o)
{
    if (!o)
        return;
    pf_elf_addrmap_free(o->syms);
    pf_elf_close(o->debug);
    pf_elf_close(o->elf);
    free(o->path);
    free(o);
}

static struct obj *obj_get(struct pf_unwind *u, const char *path, uint64_t inode)
{
    for (size_t i = 0; i < u->nobj; i++)
        if (u->objs[i]->inode == inode && strcmp(u->objs[i]->path, path) == 0)
            return u->objs[i];
    struct obj **v = pf_grow(u->objs, u->nobj, &u->capobj, sizeof(*v), 32);
    if (!v)
        return NULL;
    u->objs = v;
    struct obj *o = calloc(1, sizeof(*o));
    if (!o || !(o->path = strdup(path))) {
        free(o);
        return NULL;
    }
    o->inode = inode;
    const char *slash = strrchr(o->path, '/');
    o->base = slash ? slash + 1 : o->path;
    o->is_interp = strcmp(path, u->interp_path) == 0;
    u->objs[u->nobj++] = o;
    return o;
}

static bool file_backed(const struct pf_map *m)
{
    return m->path && (m->path[0] == '/' || strcmp(m->path, "[vdso]") == 0);
}

/* Everything cached by address depends on the maps. */
static void flush_address_caches(struct pf_unwind *u)
{
    for (size_t i = 0; i < PAGE_SLOTS; i++)
        u->pages[i].addr = 0;
    memset(u->pcs, 0, PC_SLOTS * sizeof(*u->pcs));
    u->npcs = 0;
    /* libunwind's own cache of unwind rules, by address: flushed before the
     * next walk, not from inside one (this can run in find_proc_info). */
    u->unw_flush = true;
}

static pf_err read_maps(struct pf_unwind *u)
{
    struct pf_maps maps = {0};
    struct obj **map_obj;
    pf_err err;

    if ((err = pf_maps_read(u->pid, NULL, &maps)))
        return err;
    if (!(map_obj = calloc(maps.n ? maps.n : 1, sizeof(*map_obj)))) {
        pf_maps_free(&maps);
        return PF_ERR_NOMEM;
    }
    for (size_t i = 0; i < maps.n; i++)
        if (file_backed(&maps.v[i]))
            map_obj[i] = obj_get(u, maps.v[i].path, maps.v[i].inode);
    /* A library loaded again can sit elsewhere. */
    for (size_t i = 0; i < u->nobj; i++) {
        u->objs[i]->bias_known = false;
        u->objs[i]->eh_tried = false;
    }
    pf_maps_free(&u->maps);
    free(u->map_obj);
    u->maps = maps;
    u->map_obj = map_obj;
    flush_address_caches(u);
    return PF_OK;
}

/* unwind_impl.h. */
const struct pf_map *pf_unwind_find_map(struct pf_unwind *u, uint64_t addr, bool reread, size_t *idx)
{
    const struct pf_map *m = pf_maps_find_addr(&u->maps, addr);
    if (!m && reread && u->reread_ok && pf_clock_now_ns() - u->fruitless_ns >= FRUITLESS_NS) {
        u->reread_ok = false;
        if (read_maps(u) == PF_OK)
            m = pf_maps_find_addr(&u->maps, addr);
        if (!m)
            u->fruitless_ns = pf_clock_now_ns();
    }
    if (m && idx)
        *idx = (size_t)(m - u->maps.v);
    return m;
}

static void obj_open(struct pf_unwind *u, struct obj *o, const struct pf_map *m)
{
    o->tried = true;
    if (strcmp(o->path, "[vdso]") == 0) {
        /* The kernel's vDSO is an ELF image in the target's memory only. */
        size_t len = m->end - m->start;
        uint8_t *buf = len <= (1u << 20) ? malloc(len) : NULL;
        if (buf && pf_mem_read(u->mem, m->start, buf, len) == PF_OK)
            pf_elf_open_mem(buf, len, "[vdso]", NULL, &o->elf);
        free(buf);
    } else {
        pf_elf_open_mapped(u->pid, m, &o->elf);
    }
}

/* Load bias from the object's mapping at file offset 0, as discover.c does
 * (docs/cpython-internals.md §2.2), else from the mapping in hand. */
bool pf_unwind_obj_bias(struct pf_unwind *u, struct obj *o, const struct pf_map *m)
{
    if (o->bias_known)
        return true;
    if (!o->tried)
        obj_open(u, o, m);
    if (!o->elf)
        return false;
    const struct pf_map *first =
        strcmp(o->path, "[vdso]") == 0 ? m : pf_maps_find_file(&u->maps, o->path, 0);
    if (!(first && pf_elf_load_bias(o->elf, first, &o->bias) == PF_OK) &&
        pf_elf_load_bias(o->elf, m, &o->bias) != PF_OK)
        return false;
    o->bias_known = true;
    return true;
}

/* ---- target memory ------------------------------------------------------- */

/* Grow the stack copy so it covers [stack_lo, want_end), reading onward from
 * where it stops. One process_vm_readv, which stops at the end of readable
 * memory and says how far it got. */
static void stack_grow(struct pf_unwind *u, uint64_t want_end)
{
    size_t want = (size_t)(want_end - u->stack_lo);
    size_t len = u->stack_len * 2 > want ? u->stack_len * 2 : want;

    len = (len + PAGE - 1) & ~(size_t)(PAGE - 1);
    if (len > u->stack_hi - u->stack_lo)
        len = (size_t)(u->stack_hi - u->stack_lo);
    if (len <= u->stack_len)
        return;
    if (len > u->stack_cap) {
        size_t cap = u->stack_cap ? u->stack_cap : STACK_FIRST;
        while (cap < len)
            cap *= 2;
        uint8_t *p = realloc(u->stack, cap);
        if (!p)
            return;
        u->stack = p;
        u->stack_cap = cap;
    }
    struct iovec local = {u->stack + u->stack_len, len - u->stack_len};
    struct iovec remote = {(void *)(uintptr_t)(u->stack_lo + u->stack_len), len - u->stack_len};
    ssize_t got = process_vm_readv(u->pid, &local, 1, &remote, 1, 0);
    if (got < 0 && errno == ENOSYS) {
        /* No process_vm_readv (seccomp): page by page through pf_mem. */
        got = 0;
        while ((size_t)got < local.iov_len &&
               pf_mem_read(u->mem, (uint64_t)(uintptr_t)remote.iov_base + (size_t)got,
                           (uint8_t *)local.iov_base + got, PAGE) == PF_OK)
            got += PAGE;
    }
    if (got <= 0 || (size_t)got < local.iov_len)
        u->stack_end = true;
    if (got > 0)
        u->stack_len += (size_t)got;
}

/* One word of the target, for libunwind: from the stack copy (grown on
 * demand up to the end of the stack's mapping), from a cached page of a
 * read-only file mapping (code, unwind tables: they cannot change while
 * mapped), else read on its own. */
static int read_word(struct pf_unwind *u, uint64_t addr, uint64_t *val)
{
    bool on_stack = addr >= u->stack_lo && addr < u->stack_hi && u->stack_hi - addr >= 8;

    if (on_stack && addr - u->stack_lo + 8 > u->stack_len && !u->stack_end)
        stack_grow(u, addr + 8);
    if (on_stack && addr - u->stack_lo + 8 <= u->stack_len) {
        memcpy(val, u->stack + (addr - u->stack_lo), 8);
        if (addr - u->stack_lo + 8 > u->stack_used)
            u->stack_used = (size_t)(addr - u->stack_lo + 8);
        return 0;
    }
    uint64_t page = addr & ~(uint64_t)(PAGE - 1);
    if (!on_stack && addr - page <= PAGE - 8) {
        struct page *p = &u->pages[(page / PAGE) % PAGE_SLOTS];
        if (p->addr != page) {
            const struct pf_map *m = pf_unwind_find_map(u, addr, false, NULL);
            if (m && !m->w && m->path && m->path[0] == '/' &&
                pf_mem_read(u->mem, page, p->bytes, PAGE) == PF_OK)
                p->addr = page;
        }
        if (p->addr == page) {
            memcpy(val, p->bytes + (addr - page), 8);
            return 0;
        }
    }
    return pf_mem_read(u->mem, addr, val, 8) == PF_OK ? 0 : -UNW_EINVAL;
}

/* ---- libunwind accessors ------------------------------------------------- */

/* The encoded pointers of an .eh_frame_hdr header we accept (DWARF EH
 * pointer encodings, low nibble): their size in bytes, or 0. */
static size_t eh_size(uint8_t enc)
{
    switch (enc & 0x0f) {
    case 0x00:
        return 8; /* absptr */
    case 0x02:
    case 0x0a:
        return 2;
    case 0x03:
    case 0x0b:
        return 4;
    case 0x04:
    case 0x0c:
        return 8;
    default:
        return 0; /* uleb128 and friends: not in practice */
    }
}

/* Locate the object's .eh_frame_hdr search table (PT_GNU_EH_FRAME) in the
 * target. Its header is version 1, three encodings, the encoded .eh_frame
 * pointer and FDE count, then (ip, fde) pairs as datarel sdata4, which is
 * the one table encoding libunwind searches. */
static bool obj_eh(struct pf_unwind *u, struct obj *o, const struct pf_map *m)
{
    uint64_t vaddr, memsz;
    uint8_t hdr[4 + 8 + 8];

    if (o->eh_tried)
        return o->eh_ok;
    o->eh_tried = true;
    o->eh_ok = false;
    if (!pf_unwind_obj_bias(u, o, m) || pf_elf_segment(o->elf, PT_GNU_EH_FRAME, &vaddr, &memsz) != PF_OK ||
        memsz < sizeof(hdr))
        return false;
    uint64_t at = o->bias + vaddr;
    if (pf_mem_read(u->mem, at, hdr, sizeof(hdr)) != PF_OK || hdr[0] != 1 || hdr[3] != 0x3b)
        return false;
    size_t ptr = eh_size(hdr[1]), cnt = eh_size(hdr[2]);
    if (!ptr || !cnt || hdr[1] == 0xff || hdr[2] == 0xff)
        return false;
    uint64_t count = 0;
    memcpy(&count, hdr + 4 + ptr, cnt); /* little-endian, unsigned or positive */
    if (count == 0 || count > memsz / 8)
        return false;
    o->eh_hdr = at;
    o->eh_table = at + 4 + ptr + cnt;
    o->eh_count = count;
    o->eh_ok = true;
    return true;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                          int need_unwind_info, void *arg)
{
    struct pf_unwind *u = arg;
    size_t idx;
    const struct pf_map *m = pf_unwind_find_map(u, ip, true, &idx);
    struct obj *o = m ? u->map_obj[idx] : NULL;

    if (!o || !m->x || !obj_eh(u, o, m)) {
        u->no_info = true;
        return -UNW_ENOINFO;
    }
    unw_dyn_info_t di;
    memset(&di, 0, sizeof(di));
    di.start_ip = m->start;
    di.end_ip = m->end;
    di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di.u.rti.segbase = o->eh_hdr;
    di.u.rti.table_data = o->eh_table;
    di.u.rti.table_len = o->eh_count * 8 / sizeof(unw_word_t);
    int r = dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
    if (r < 0)
        u->no_info = true;
    return r;
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    /* libunwind frees what dwarf_search_unwind_table allocated itself. */
    (void)as, (void)pi, (void)arg;
}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    /* No run-time registered unwind info (_U_dyn_register) is looked for. */
    (void)as, (void)addr, (void)arg;
    return -UNW_ENOINFO;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
    (void)as;
    if (write)
        return -UNW_EINVAL; /* we never write to the target */
    uint64_t v;
    int r = read_word(arg, addr, &v);
    if (r == 0)
        *val = v;
    return r;
}

/* Where libunwind's register numbers are in the PTRACE_GETREGS block. */
#if defined(__x86_64__)
#define NREGS (UNW_X86_64_RIP + 1)
static const size_t REG_OFFSET[NREGS] = {
    [UNW_X86_64_RAX] = offsetof(regs_t, rax), [UNW_X86_64_RDX] = offsetof(regs_t, rdx),
    [UNW_X86_64_RCX] = offsetof(regs_t, rcx), [UNW_X86_64_RBX] = offsetof(regs_t, rbx),
    [UNW_X86_64_RSI] = offsetof(regs_t, rsi), [UNW_X86_64_RDI] = offsetof(regs_t, rdi),
    [UNW_X86_64_RBP] = offsetof(regs_t, rbp), [UNW_X86_64_RSP] = offsetof(regs_t, rsp),
    [UNW_X86_64_R8] = offsetof(regs_t, r8),   [UNW_X86_64_R9] = offsetof(regs_t, r9),
    [UNW_X86_64_R10] = offsetof(regs_t, r10), [UNW_X86_64_R11] = offsetof(regs_t, r11),
    [UNW_X86_64_R12] = offsetof(regs_t, r12), [UNW_X86_64_R13] = offsetof(regs_t, r13),
    [UNW_X86_64_R14] = offsetof(regs_t, r14), [UNW_X86_64_R15] = offsetof(regs_t, r15),
    [UNW_X86_64_RIP] = offsetof(regs_t, rip),
};
#else
/* x0..x30 are regs[0..30], then sp, then pc (UNW_AARCH64_SP = 31, PC = 32). */
#define NREGS (UNW_AARCH64_PC + 1)
static const size_t REG_OFFSET[NREGS] = {
    [UNW_AARCH64_SP] = offsetof(regs_t, sp),
    [UNW_AARCH64_PC] = offsetof(regs_t, pc),
};
#endif

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    const struct pf_unwind *u = arg;
    size_t off;
    (void)as;

    if (write)
        return -UNW_EREADONLYREG;
    if (reg < 0 || reg >= NREGS)
        return -UNW_EBADREG;
#if defined(__aarch64__)
    off = reg <= UNW_AARCH64_X30 ? offsetof(regs_t, regs) + (size_t)reg * 8 : REG_OFFSET[reg];
#else
    off = REG_OFFSET[reg];
#endif
    memcpy(val, (const char *)&u->regs + off, sizeof(*val));
    return 0;
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
                        void *arg)
{
    (void)as, (void)reg, (void)val, (void)write, (void)arg;
    return -UNW_EBADREG; /* no unwind table we meet saves a floating-point register */
}

static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as, (void)c, (void)arg;
    return -UNW_EINVAL; /* read-only: never resumes the target */
}

static int get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                         unw_word_t *off, void *arg)
{
    (void)as, (void)addr, (void)buf, (void)len, (void)off, (void)arg;
    return -UNW_ENOINFO; /* we name frames ourselves, after the stop */
}

static unw_accessors_t ACCESSORS = {
    .find_proc_info = find_proc_info,
    .put_unwind_info = put_unwind_info,
    .get_dyn_info_list_addr = get_dyn_info_list_addr,
    .access_mem = access_mem,
    .access_reg = access_reg,
    .access_fpreg = access_fpreg,
    .resume = resume,
    .get_proc_name = get_proc_name,
};

/* ---- life cycle ---------------------------------------------------------- */

pf_err pf_unwind_new(pid_t pid, struct pf_mem *mem, struct pf_intern *names,
                     const char *interp_path, const char *eval_symbol,
                     struct pf_diag *diag, struct pf_unwind **out)
{
    struct pf_unwind *u = calloc(1, sizeof(*u));
    pf_err err = PF_ERR_NOMEM;

    if (!u)
        return pf_diag_set(diag, PF_ERR_NOMEM, "native unwinder: out of memory");
    u->pid = pid;
    u->mem = mem;
    u->names = names;
    u->stack_hint = STACK_FIRST;
    if (!(u->interp_path = strdup(interp_path ? interp_path : "")) ||
        !(u->eval_symbol = strdup(eval_symbol ? eval_symbol : "")) ||
        !(u->pages = calloc(PAGE_SLOTS, sizeof(*u->pages))) ||
        !(u->pcs = calloc(PC_SLOTS, sizeof(*u->pcs)))) {
        pf_diag_set(diag, err, "native unwinder: out of memory");
        goto fail;
    }
    if (!(u->as = unw_create_addr_space(&ACCESSORS, 0))) {
        err = pf_diag_set(diag, PF_ERR_INTERNAL, "libunwind: cannot create an address space");
        goto fail;
    }
    /* Cache each address's unwind rule across samples (perf does the same):
     * a warm sample then never looks an FDE up. */
    unw_set_caching_policy(u->as, UNW_CACHE_PER_THREAD);
    unw_set_cache_size(u->as, 4096, 0);
    if ((err = read_maps(u))) {
        pf_diag_set(diag, err, "cannot read /proc/%d/maps: %s", (int)pid, pf_strerror(err));
        goto fail;
    }
    *out = u;
    return PF_OK;
fail:
    pf_unwind_free(u);
    return err;
}

void pf_unwind_free(struct pf_unwind *u)
{
    if (!u)
        return;
    if (u->as)
        unw_destroy_addr_space(u->as);
    for (size_t i = 0; i < u->nobj; i++)
        obj_free(u->objs[i]);
    free(u->objs);
    free(u->map_obj);
    pf_maps_free(&u->maps);
    free(u->stack);
    free(u->pages);
    free(u->pcs);
    free(u->interp_path);
    free(u->eval_symbol);
    free(u);
}

/* ---- unwinding ----------------------------------------------------------- */

static pf_err get_regs(pid_t tid, regs_t *regs)
{
#if defined(__x86_64__)
    if (ptrace(PTRACE_GETREGS, tid, 0, regs) != 0)
        return errno == ESRCH ? PF_ERR_NOPROC : PF_ERR_PERM;
#else
    struct iovec io = {regs, sizeof(*regs)};
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &io) != 0)
        return errno == ESRCH ? PF_ERR_NOPROC : PF_ERR_PERM;
#endif
    return PF_OK;
}

pf_err pf_unwind_thread(struct pf_unwind *u, pid_t tid, struct pf_native_frame *frames, size_t cap,
                        size_t *n, enum pf_unwind_end *end, bool *in_syscall)
{
    unw_cursor_t c;
    size_t k = 0;
    pf_err err;

    if ((err = get_regs(tid, &u->regs)))
        return err;
    u->tid = tid;
    u->reread_ok = true;
    if (u->unw_flush) {
        unw_flush_cache(u->as, 0, 0);
        u->unw_flush = false;
    }
#if defined(__x86_64__)
    /* orig_rax holds the system call number while the thread is in one
     * (arch/x86/entry: -1 for any other entry into the kernel). */
    *in_syscall = u->regs.orig_rax != (unsigned long long)-1;
    u->stack_lo = u->regs.rsp;
#else
    *in_syscall = false;
    u->stack_lo = u->regs.sp;
#endif
    /* The stack from the stack pointer up, read once, as much as recent
     * samples needed: usually the only read of a warm sample. It ends with
     * its mapping (a new thread's may not be known yet: then the cap). */
    const struct pf_map *sm = pf_unwind_find_map(u, u->stack_lo, false, NULL);
    u->stack_hi = sm ? sm->end : u->stack_lo + PF_MAX_NATIVE_STACK;
    if (u->stack_hi - u->stack_lo > PF_MAX_NATIVE_STACK)
        u->stack_hi = u->stack_lo + PF_MAX_NATIVE_STACK;
    u->stack_len = 0;
    u->stack_used = 0;
    u->stack_end = false;
    stack_grow(u, u->stack_lo + u->stack_hint);

    *end = PF_UNWIND_STOPPED;
    if (unw_init_remote(&c, u->as, u) == 0) {
        for (;;) {
            unw_word_t ip = 0;
            if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
                break;
            if (k == cap) {
                *end = PF_UNWIND_CAPPED;
                break;
            }
            frames[k].pc = ip;
            frames[k].flags = unw_is_signal_frame(&c) > 0 ? PF_NATIVE_SIGNAL : 0;
            k++;
            u->no_info = false;
            int r = unw_step(&c);
            /* Without an unwind table entry for this frame libunwind falls
             * back on guesses (frame pointers, the PLT's shape). Whatever it
             * then finds, or that it ends there, is not known: stop. */
            if (u->no_info)
                break;
            if (r == 0)
                *end = PF_UNWIND_WHOLE;
            if (r <= 0)
                break;
        }
    }
    /* Next time, read at once what this walk used, plus a margin. */
    size_t want = (u->stack_used + 2 * PAGE - 1) & ~(size_t)(PAGE - 1);
    u->stack_hint = want > STACK_FIRST ? (want < PF_MAX_NATIVE_STACK ? want : PF_MAX_NATIVE_STACK)
                                       : STACK_FIRST;
    *n = k;
    return PF_OK;
}


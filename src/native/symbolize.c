/* symbolize: naming native frames (unwind.h, pf_unwind_symbolize), after
 * the stop window: which function of which file each address is in, cached
 * by address, with the function's symbols read from the file or its
 * separate debug file (debugfile.h) on first use. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/log.h"
#include "pyflame/native/merge.h"
#include "pyflame/target/debugfile.h"
#include "unwind_impl.h"

/* The object's function symbols, from its own tables or a debug file. Only
 * for naming, after the stop window: unwinding needs just the program
 * headers (obj_open). */
static void obj_symbols(struct pf_unwind *u, struct obj *o)
{
    o->syms_tried = true;
    if (!o->elf)
        return;
    if (!pf_elf_has_symtab(o->elf))
        o->debug = pf_debugfile_find(u->pid, o->path, o->elf);
    if (pf_elf_addrmap_new(o->debug ? o->debug : o->elf, &o->syms) != PF_OK)
        o->syms = NULL;
    pf_log(PF_LOG_INFO, "native: %s: %zu function symbols%s", o->path,
           o->syms ? pf_elf_addrmap_count(o->syms) : 0, o->debug ? " (from a debug file)" : "");
}

static pf_err intern_text(struct pf_unwind *u, const char *text, size_t len, uint32_t *id)
{
    struct pf_frame_text f = {.kind = PF_FRAME_NATIVE};
    pf_err err = pf_intern_str(u->names, text, len, &f.name);
    return err ? err : pf_intern_frame(u->names, &f, id);
}

/* Length of the name to show: without a .symtab version ("@GLIBC_2.2.5")
 * and without the suffixes GCC gives the copies it makes of a function f
 * ("f.cold", "f.isra.0", "f.constprop.0", "f.part.0", "f.lto_priv.0" and
 * their combinations): in the source, that code is f. Any other dot is
 * kept. */
static size_t display_len(const char *name)
{
    static const char *const SUFFIX[] = {"cold", "constprop", "isra",
                                         "part", "lto_priv",  "localalias"};
    size_t n = strcspn(name, "@");
    const char *dot = memchr(name, '.', n);

    if (!dot || dot == name)
        return n;
    for (const char *p = dot; p < name + n;) {
        const char *q = p + 1;
        size_t len = strcspn(q, ".@"), digits = strspn(q, "0123456789");
        bool known = len > 0 && digits == len;
        for (size_t i = 0; i < sizeof(SUFFIX) / sizeof(SUFFIX[0]) && !known; i++)
            known = strlen(SUFFIX[i]) == len && strncmp(q, SUFFIX[i], len) == 0;
        if (!known)
            return n;
        p = q + len;
    }
    return (size_t)(dot - name);
}

/* Text and kind of the code at addr. *cache is false when the answer may
 * change once the maps are read again (an address in no known mapping). */
static pf_err describe(struct pf_unwind *u, uint64_t addr, uint32_t *id, uint8_t *kind, bool *cache)
{
    char text[NAME_CAP + PATH_MAX + 32];
    size_t idx;
    int len;
    const struct pf_map *m = pf_unwind_find_map(u, addr, true, &idx);
    struct obj *o = m ? u->map_obj[idx] : NULL;

    *kind = PF_NATIVE_SHOW;
    *cache = m != NULL;
    if (!m) {
        len = snprintf(text, sizeof(text), "[unknown]+0x%" PRIx64, addr);
    } else if (!o) {
        /* Anonymous memory: generated code (a JIT), or a corrupt pc. */
        len = snprintf(text, sizeof(text), "%s+0x%" PRIx64, m->path ? m->path : "[anon]", addr);
    } else {
        const char *name = NULL;
        bool biased = pf_unwind_obj_bias(u, o, m);
        if (biased && !o->syms_tried)
            obj_symbols(u, o);
        uint64_t vaddr = biased ? addr - o->bias : addr - m->start + m->offset;
        if (biased && o->syms)
            pf_elf_addrmap_find(o->syms, vaddr, &name, NULL);
        if (name) {
            size_t nl = display_len(name);
            if (nl > NAME_CAP)
                nl = NAME_CAP;
            len = snprintf(text, sizeof(text), "%.*s (%s)", (int)nl, name, o->base);
            *kind = (uint8_t)pf_merge_classify(name, o->is_interp, u->eval_symbol);
        } else {
            /* No symbol claims it: the file and the address in it (the ELF
             * virtual address, what addr2line and objdump take). */
            len = snprintf(text, sizeof(text), "%s+0x%" PRIx64, o->base, vaddr);
        }
    }
    if (len < 0)
        return PF_ERR_INTERNAL;
    return intern_text(u, text, (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1, id);
}

static struct pc_entry *pc_slot(struct pf_unwind *u, uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 50) & (PC_SLOTS - 1);
    while (u->pcs[i].key && u->pcs[i].key != key)
        i = (i + 1) & (PC_SLOTS - 1);
    return &u->pcs[i];
}

pf_err pf_unwind_symbolize(struct pf_unwind *u, const struct pf_native_frame *frames, size_t n,
                           struct pf_native_item *items)
{
    u->reread_ok = true;
    for (size_t i = 0; i < n; i++) {
        /* A return address points after its call; the call may be the
         * function's last instruction, so look one byte back. Not for the
         * innermost frame (its pc is where it stopped), nor for a signal
         * trampoline or the frame a signal interrupted (their pc is exact). */
        bool back = i > 0 && !(frames[i].flags & PF_NATIVE_SIGNAL) &&
                    !(frames[i - 1].flags & PF_NATIVE_SIGNAL);
        uint64_t addr = frames[i].pc - back;
        uint64_t key = addr << 1 | 1;
        struct pc_entry *e = pc_slot(u, key);
        if (!e->key) {
            bool cache;
            uint32_t id;
            uint8_t kind;
            pf_err err = describe(u, addr, &id, &kind, &cache);
            if (err)
                return err;
            if (!cache) {
                items[i] = (struct pf_native_item){id, kind};
                continue;
            }
            if (u->npcs >= PC_SLOTS / 4 * 3) {
                memset(u->pcs, 0, PC_SLOTS * sizeof(*u->pcs));
                u->npcs = 0;
            }
            e = pc_slot(u, key); /* describe() may have re-read the maps */
            *e = (struct pc_entry){key, id, kind};
            u->npcs++;
        }
        items[i] = (struct pf_native_item){e->frame, e->kind};
    }
    return PF_OK;
}

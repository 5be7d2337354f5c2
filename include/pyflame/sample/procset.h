/* procset: the processes one run reads, each with its own memory, target
 * and tick (tick.h). Alone, that is the one process ready.h found. With
 * --subprocesses it is the tree proc.h traces: processes come (found at
 * attach, or forked), are looked at until they are CPython (a shell may
 * exec Python later), are read while they are, are looked at again after
 * an exec, and are let go when they exit. Each stack of a process of a
 * tree gets a root frame "(process PID COMMAND)", so one profile splits
 * by process.
 *
 * Discovery of a process (discover.h) reads its ELF files, milliseconds:
 * it runs between ticks, within a budget, and a process that is not
 * CPython (yet) is looked at again with a growing delay. */
#ifndef PYFLAME_PROCSET_H
#define PYFLAME_PROCSET_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(SAMPLE, "pyflame/sample/procset.h");

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/cpython/discover.h"
#include "pyflame/sample/tick.h"
#include "pyflame/target/mem.h"
#include "pyflame/target/proc.h"

enum pf_member_state {
    PF_MEMBER_LOOKING,    /* not (yet) known to be CPython: looked at again */
    PF_MEMBER_READY,      /* read at every tick */
    PF_MEMBER_NOT_PYTHON, /* not CPython: looked at again, rarely, and after an exec */
    PF_MEMBER_SKIPPED,    /* CPython we cannot read (said once on stderr) */
    PF_MEMBER_GONE,       /* exited */
};

struct pf_member {
    struct pf_proc *proc;
    enum pf_member_state state;
    struct pf_mem *mem; /* own_mem, or (alone) the caller's */
    struct pf_mem own_mem;
    bool mem_open; /* own_mem is open */
    struct pf_target *target; /* when READY; owned unless it is the root's given one */
    bool own_target;
    struct pf_tick tick;
    bool tick_live; /* tick initialised: released with the member */
    uint64_t next_look_ns, look_delay_ns;
    bool profiled; /* was READY at some point */
};

/* Counters the summary prints (--subprocesses). */
struct pf_procset_counts {
    uint64_t seen;       /* processes of the tree */
    uint64_t profiled;   /* found to be CPython and read */
    uint64_t not_python; /* never CPython */
    uint64_t skipped;    /* CPython pyflame cannot read */
};

struct pf_procset {
    struct pf_proc *root;
    bool follow;
    const char *abi;
    struct pf_tick tmpl; /* names, agg and options copied into each tick */
    struct pf_member **v;
    size_t n, cap;
    struct pf_tick_stats gone_stats; /* counters of members released */
    uint64_t *gone_hist;             /* their stop-time histogram */
    uint64_t gone_reads, gone_hits, gone_misses;
    struct pf_procset_counts counts;
};

/* A set over root. Alone (!follow), target is the root's, found by
 * ready.h, and mem reads it; both are borrowed. With follow, target and
 * mem are NULL: every process is looked at by the set. tmpl holds the
 * names, agg and options every tick gets. diag is filled when --native's
 * unwinder cannot be set up for the root. */
pf_err pf_procset_new(struct pf_proc *root, bool follow, const char *abi, struct pf_mem *mem,
                      struct pf_target *target, const struct pf_tick *tmpl, struct pf_diag *diag,
                      struct pf_procset **out);
void pf_procset_free(struct pf_procset *set);

/* Between ticks: take in the processes born since (a fork of a process
 * being read is read at once, with its parent's target), let go of those
 * that exited, look again at those that executed, and look at the
 * processes that are due, for about budget_ns (at least one). Errors end
 * the run (out of memory). */
pf_err pf_procset_update(struct pf_procset *set, uint64_t now_ns, uint64_t budget_ns);

/* A member whose strategy reported an exec (PF_ERR_EXEC): look at it
 * again. */
void pf_procset_execed(struct pf_procset *set, struct pf_member *m);

/* Whether any member is READY, or may become so (LOOKING). */
bool pf_procset_any_ready(const struct pf_procset *set);
bool pf_procset_any_looking(const struct pf_procset *set);

/* Sums over every member, current and released: the tick counters, the
 * stop-time histogram (PF_STOP_HIST_US + 1 buckets, into hist), remote
 * reads and prefetch hits and misses. */
void pf_procset_sum(const struct pf_procset *set, struct pf_tick_stats *stats, uint64_t *hist,
                    uint64_t *reads, uint64_t *hits, uint64_t *misses);

#endif

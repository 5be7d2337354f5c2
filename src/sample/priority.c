/* priority: pyflame's own scheduling while it samples (priority.h). */
#include "pyflame/sample/priority.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* SCHED_RESET_ON_FORK as a flag of sched_setattr(2) (linux/sched.h). */
#define RESET_ON_FORK_FLAG 0x01

/* struct sched_attr of sched_setattr(2), which glibc 2.36 does not
 * declare; its first 48 bytes (SCHED_ATTR_SIZE_VER0) are enough. */
struct sched_attr_v0 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};

static volatile sig_atomic_t g_current = PF_PRIORITY_NORMAL;
static int g_nice;
static struct rlimit g_old_rttime;

static int set_attr(uint32_t policy, uint32_t priority, uint64_t runtime_ns)
{
    struct sched_attr_v0 attr = {
        .size = sizeof(attr),
        .policy = policy,
        .flags = RESET_ON_FORK_FLAG,
        .nice = policy == SCHED_OTHER ? g_nice : 0,
        .priority = priority,
        .runtime = runtime_ns,
    };
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0);
}

enum pf_priority pf_priority_raise(bool allow_realtime)
{
    if (sched_getscheduler(0) != SCHED_OTHER)
        return PF_PRIORITY_NORMAL;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno)
        return PF_PRIORITY_NORMAL;
    g_nice = nice;
    /* One run under nice asked to yield: it gets no real-time. */
    if (allow_realtime && nice <= 0) {
        /* The guard first: real-time without it is never risked. Only the
         * soft limit, which any process may raise back: the hard one (a
         * kill) stays as it was, and the soft one is restored when
         * pyflame goes back to time sharing, or if real-time is refused. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_RTTIME, &g_old_rttime) == 0) {
            rl = g_old_rttime;
            if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > PF_PRIORITY_RT_SLICE_US)
                rl.rlim_cur = PF_PRIORITY_RT_SLICE_US;
            if (setrlimit(RLIMIT_RTTIME, &rl) == 0) {
                if (set_attr(SCHED_FIFO, 1, 0) == 0) {
                    g_current = PF_PRIORITY_REALTIME;
                    return PF_PRIORITY_REALTIME;
                }
                setrlimit(RLIMIT_RTTIME, &g_old_rttime);
            }
        }
    }
    /* 100 us: pyflame runs for microseconds per tick, so it never uses up
     * even that; older kernels ignore sched_runtime for SCHED_OTHER. */
    if (set_attr(SCHED_OTHER, 0, 100000) == 0) {
        g_current = PF_PRIORITY_SHORT_SLICE;
        return PF_PRIORITY_SHORT_SLICE;
    }
    return PF_PRIORITY_NORMAL;
}

void pf_priority_lower(void)
{
    if (g_current == PF_PRIORITY_REALTIME || g_current == PF_PRIORITY_DEMOTED)
        setrlimit(RLIMIT_RTTIME, &g_old_rttime);
    if (g_current == PF_PRIORITY_REALTIME || g_current == PF_PRIORITY_SHORT_SLICE)
        set_attr(SCHED_OTHER, 0, 0);
}

void pf_priority_pause(void)
{
    if (g_current == PF_PRIORITY_REALTIME)
        set_attr(SCHED_OTHER, 0, 100000);
}

void pf_priority_resume(void)
{
    if (g_current == PF_PRIORITY_REALTIME)
        set_attr(SCHED_FIFO, 1, 0);
}

void pf_priority_on_sigxcpu(void)
{
    /* Only syscalls here: this runs in a signal handler. */
    if (g_current != PF_PRIORITY_REALTIME) {
        /* Not ours (RLIMIT_CPU, `ulimit -t`): what SIGXCPU does by default. */
        signal(SIGXCPU, SIG_DFL);
        raise(SIGXCPU);
        return;
    }
    int saved = errno;
    set_attr(SCHED_OTHER, 0, 100000);
    g_current = PF_PRIORITY_DEMOTED;
    errno = saved;
}

enum pf_priority pf_priority_current(void)
{
    return (enum pf_priority)g_current;
}

const char *pf_priority_name(enum pf_priority p)
{
    switch (p) {
    case PF_PRIORITY_REALTIME: return "realtime";
    case PF_PRIORITY_SHORT_SLICE: return "short-slice";
    case PF_PRIORITY_DEMOTED: return "demoted";
    case PF_PRIORITY_NORMAL: break;
    }
    return "normal";
}

# Fixed-work targets for scripts/bench (Python 2.7 and 3.6+).
# Usage: target.py KIND WORK READY GO [CYCLES]
#   KIND:
#     single       one thread, 30-frame stack, CPU bound
#     deep         200-frame recursion, CPU bound
#     deep300      300-frame recursion, CPU bound
#     threads      50 threads sharing the work, CPU bound
#     busy8sleep8  8 threads sharing the work with a ~15-frame stack, and 8
#                  threads blocked in Event.wait() (17 Python threads with
#                  the main thread, all started before READY)
#     altXms       the main thread alternates busy() (CPU work for X/2 ms of
#                  wall time, by its clock) and rest() (time.sleep of X/2
#                  ms), CYCLES times: a period of X ms (alt10ms: 100 Hz,
#                  alt1ms: 1 kHz). Prints "busy_share S": the time spent in
#                  busy() over the time spent in busy() and rest(), measured
#                  by the target.
#     altworkXms   the same, but busy() does WORK loop iterations: a stop
#                  (or a wait for a CPU) lengthens its busy phase, so its
#                  share counts the profiler's own cost as CPU work, which
#                  no stopping sampler can see (docs/performance.md).
#     calibrate    prints "ips N": loop iterations per second of work()
#   WORK: loop iterations in all (altXms: per busy() call).
# Writes READY ("ready PID"), then spins in waiting(), holding the GIL, until
# the first byte of GO.flag (which it creates) becomes "1": until then every
# sample, in GIL mode too, is of a running thread, as during the work (a
# sleeping wait would give cheap idle samples and skew the per-sample
# figures). Then does the work and prints "elapsed S" (wall time of the work
# alone).
import mmap
import os
import sys
import threading
import time

try:
    xrange
except NameError:
    xrange = range
clock = getattr(time, "perf_counter", time.time)


def work(n):
    total = 0
    for i in xrange(n):
        total = (total + i * i) % 1000003
    return total


def nest(depth, n):
    if depth == 0:
        return work(n)
    return nest(depth - 1, n)


def wait_then(ev, depth, n):
    ev.wait()
    nest(depth, n)


def busy(n):
    # The loop is inline: while it runs, busy is the innermost frame.
    t0 = clock()
    total = 0
    for i in xrange(n):
        total = (total + i * i) % 1000003
    return clock() - t0


def busy_for(seconds):
    # The loop is inline, as in busy(); it ends when its half period has
    # passed, however long the profiler held the thread meanwhile.
    t0 = clock()
    end = t0 + seconds
    total = 0
    i = 0
    while clock() < end:
        total = (total + i * i) % 1000003
        i += 1
    return clock() - t0


def rest(seconds):
    t0 = clock()
    time.sleep(seconds)
    return clock() - t0


def waiting(flag):
    # Spins with the GIL held (no system call) until the bench writes "1".
    while flag[0:1] == b"\0":
        pass


def alternate(n, half_period, cycles, fixed_work):
    busy_s = rest_s = 0.0
    for _ in xrange(cycles):
        busy_s += busy(n) if fixed_work else busy_for(half_period)
        rest_s += rest(half_period)
    return busy_s / (busy_s + rest_s)


def calibrate():
    best = 0.0
    for _ in range(5):
        t0 = clock()
        work(200000)
        dt = clock() - t0
        best = max(best, 200000 / dt)
    print("ips %d" % best)


def signal_ready(ready):
    with open(ready + ".tmp", "w") as f:
        f.write("ready %d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)


def main():
    kind, total, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cycles = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    if kind == "calibrate":
        calibrate()
        return
    sys.setrecursionlimit(2000)
    threads, started = [], threading.Event()
    stop = threading.Event()
    if kind == "busy8sleep8":
        threads = [threading.Thread(target=wait_then, args=(started, 10, total // 8)) for _ in range(8)]
        sleepers = [threading.Thread(target=stop.wait) for _ in range(8)]
        for t in threads + sleepers:
            t.start()
    with open(go + ".flag", "wb") as f:
        f.write(b"\0")
    fd = os.open(go + ".flag", os.O_RDWR)
    flag = mmap.mmap(fd, 1)
    os.close(fd)
    signal_ready(ready)
    waiting(flag)
    start = time.time()
    if kind == "single":
        nest(30, total)
    elif kind == "deep":
        nest(200, total)
    elif kind == "deep300":
        nest(300, total)
    elif kind == "threads":
        threads = [threading.Thread(target=nest, args=(10, total // 50)) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif kind == "busy8sleep8":
        started.set()
        for t in threads:
            t.join()
        stop.set()
        for t in sleepers:
            t.join()
    elif kind.startswith("altwork") and kind.endswith("ms"):
        share = alternate(total, float(kind[7:-2]) / 1000 / 2, cycles, True)
        print("busy_share %.4f" % share)
    elif kind.startswith("alt") and kind.endswith("ms"):
        share = alternate(total, float(kind[3:-2]) / 1000 / 2, cycles, False)
        print("busy_share %.4f" % share)
    else:
        sys.exit("unknown kind " + kind)
    print("elapsed %.6f" % (time.time() - start))
    sys.stdout.flush()


main()

# A target for pyflame's schedule test; runs on Python 2.7 and 3.6+.
# Usage: alternate.py READY GO PERIOD_MS SECONDS DEPTH
# Spins (holding the GIL, in wait()) until GO exists, then for SECONDS
# alternates busy(), CPU work DEPTH calls deep, and rest(), time.sleep,
# half a PERIOD_MS each, and prints the share of that time it spent in
# busy(), as it measured it itself ("busy_share 0.5012"). The busy stack is
# deep so that it is slower to read than the rest: a sampler that drops
# ticks after slow samples under-reports it.
import os
import sys
import time

clock = getattr(time, "perf_counter", time.time)


def spin_until(deadline):
    while clock() < deadline:
        pass


def deep(depth, deadline):
    if depth == 0:
        return spin_until(deadline)  # LINE spin
    return deep(depth - 1, deadline)  # LINE recurse


def busy(depth, seconds):
    t0 = clock()
    deep(depth, t0 + seconds)
    return clock() - t0


def rest(seconds):
    t0 = clock()
    time.sleep(seconds)
    return clock() - t0


def wait(go):
    while not os.path.exists(go):
        spin_until(clock() + 0.001)


def main():
    ready, go, period, seconds, depth = sys.argv[1:6]
    half, depth = float(period) / 2000.0, int(depth)
    sys.setrecursionlimit(depth + 100)
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    wait(go)
    busy_s = rest_s = 0.0
    end = clock() + float(seconds)
    while clock() < end:
        busy_s += busy(depth, half)
        rest_s += rest(half)
    print("busy_share %.4f" % (busy_s / (busy_s + rest_s)))
    sys.stdout.flush()


main()

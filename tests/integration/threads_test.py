#!/usr/bin/env python3
"""Integration tests for --threads, the GIL holder, idle threads, -d and
thread churn, against a real interpreter.

    threads_test.py --pyflame BUILD/pyflame --python 3.11 --mode attach|launch|dump|churn

Exit 77 (meson "skipped") when that interpreter is not installed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from run import (SKIP, THREAD_STARTS_OR_ENDS, at_start_and_end, check_failed, check_released, fail,
                 find_python, markers, parse_collapsed, stats)

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = os.path.join(HERE, "targets", "threads.py")
CHURN = os.path.join(HERE, "targets", "churn.py")


def frame(name):
    return "%s:%s:%d" % (THREADS, name, markers(THREADS)[name])


def start(python, script, args):
    tmp = tempfile.mkdtemp(prefix="pyflame-it-")
    ready = os.path.join(tmp, "ready")
    target = subprocess.Popen([python, script] + args(ready), stdout=subprocess.PIPE,
                              universal_newlines=True)
    deadline = time.time() + 20
    while not os.path.exists(ready):
        if target.poll() is not None or time.time() > deadline:
            fail("target did not start (exit %r)" % target.poll())
        time.sleep(0.01)
    return target


def pyflame(cmd, timeout=60):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("pyflame did not finish within %d s: %s" % (timeout, " ".join(cmd)))
    if p.returncode != 0:
        fail("pyflame exited %d" % p.returncode, out, err)
    return out, err


def leaves(stacks):
    """Innermost Python frame of each stack -> (count, ends in (idle))."""
    result = {}
    for stack, count in stacks.items():
        idle = stack[-1] == "(idle)"
        py = [f for f in stack if not f.startswith("(")]
        if py:
            n, was_idle = result.get(py[-1], (0, False))
            result[py[-1]] = (n + count, was_idle or idle)
    return result


def leaf_count(got, f):
    return got.get(f, (0,))[0]


def check_threads_profiles(get_profile, launched):
    """launched: the profile covers the program's start and end (-t), when
    its threads start and, at the end, exit. Attached, it sees only the
    steady state: two threads spin, two have slept since before pyflame
    came, the main thread wakes every 50 ms to look at the clock. Every
    bound below holds however loaded the machine is: a sleeping thread
    stays asleep, and load can keep a thread that woke runnable for a few
    scheduler slices, never for most of the 50 ms it then sleeps."""
    spin0, spin1, sleeper, main = frame("spin_0"), frame("spin_1"), frame("sleeper"), frame("main")
    # Failures: every thread is stopped while it is read, or asleep on the
    # same line; -t adds the program's start and end, where its threads
    # start and end too (what --threads reads).
    failures = at_start_and_end() if launched else set()
    each_thread = failures | {THREAD_STARTS_OR_ENDS} if launched else failures

    # --threads: every worker with its exact line, sleepers and the main
    # thread too, their stacks ending in "(idle)".
    out, err = get_profile(["--threads"])
    stacks, idle, failed = parse_collapsed(out)
    got = leaves(stacks)
    for f in (spin0, spin1, sleeper, main):
        if f not in got:
            fail("--threads: no stack ends in %s" % f, out, err)
    # A sleeper that pyflame found asleep is idle in every sample (with -t
    # it runs for a moment when it starts, while it is runnable on its way
    # into time.sleep). The main thread sleeps 50 ms at a time, and runs for
    # a moment in between: idle in most samples.
    for f, every in ((sleeper, not launched), (main, False)):
        n_idle = n_all = 0
        for stack, count in stacks.items():
            py = [x for x in stack if not x.startswith("(")]
            if py and py[-1] == f:
                n_all += count
                n_idle += count if stack[-1] == "(idle)" else 0
        if (n_idle < n_all) if every else (2 * n_idle <= n_all):
            fail("--threads: %s idle in %d of %d samples (want %s)"
                 % (f, n_idle, n_all, "all" if every else "most"), out, err)
    check_failed(out, err, each_thread, "--threads: ")

    # Default: only the GIL holder, so only the spinning workers.
    out, err = get_profile([])
    stacks, idle, failed = parse_collapsed(out)
    got = leaves(stacks)
    if spin0 not in got or spin1 not in got:
        fail("GIL mode: both workers should hold the GIL in turn", out, err)
    # Attached, the sleepers sleep all along: they never hold the GIL. With
    # -t, each holds it at its start, on its way into time.sleep (waiting
    # for it there while the workers pass it around), and may be seen then.
    if sleeper in got and not launched:
        fail("GIL mode: a thread that never holds the GIL appears: %s" % sleeper, out, err)
    if leaf_count(got, sleeper) > 0.25 * max(1, sum(c for c, _ in got.values())):
        fail("GIL mode: a sleeping thread shown %d times" % leaf_count(got, sleeper), out, err)
    ticks = sum(c for f, (c, _) in got.items() if f in (spin0, spin1))
    # The main thread holds the GIL for microseconds every 50 ms.
    if leaf_count(got, main) > 0.2 * ticks:
        fail("GIL mode: the main thread, which holds the GIL only to check the clock, "
             "shown %d times" % got[main][0], out, err)
    # The two workers pass the GIL to each other every few milliseconds: the
    # holder pyflame looked up may have passed it on by the time it is
    # stopped, and the next one too (pyflame reads the new holder once).
    check_failed(out, err, failures | {"GIL changed hands"}, "GIL mode: ")

    # -x --threads: sleeping threads are not read, only counted.
    out, err = get_profile(["--threads", "-x", "--show-threads"])
    stacks, idle, failed = parse_collapsed(out)
    got = leaves(stacks)
    ticks = sum(c for f, (c, _) in got.items() if f in (spin0, spin1))
    # A worker shows when it runs (waiting for the GIL is sleeping): the
    # two take turns, so between them about once a tick. Were sleeping
    # threads shown, the main thread would be in every tick, as often as
    # both workers together, and each sleeper too. A sleeper runs only for
    # a moment when it starts (-t); the main thread for a moment after each
    # 50 ms sleep.
    if leaf_count(got, sleeper) > (0.25 * ticks if launched else 0):
        fail("-x --threads: sleeping thread %s shown %d times (the workers %d)"
             % (sleeper, leaf_count(got, sleeper), ticks), out, err)
    if leaf_count(got, main) > 0.5 * ticks:
        fail("-x --threads: the mostly sleeping main thread shown %d times (the workers %d)"
             % (leaf_count(got, main), ticks), out, err)
    if idle:
        fail("-x printed an (idle) line", out, err)
    for stack in stacks:
        if not stack[0].startswith("(thread "):
            fail("--show-threads: stack without a thread root: %s" % ";".join(stack), out, err)
    check_failed(out, err, each_thread, "-x --threads: ")


def mode_attach(pf, python):
    target = start(python, THREADS, lambda ready: ["2", "2", ready])
    try:
        def get(args):
            out, err = pyflame([pf, "-s", "1", "-r", "0.005"] + args + ["-p", str(target.pid)])
            check_released(target, out, err)
            return out, err
        check_threads_profiles(get, launched=False)
    finally:
        target.kill()
        target.wait()


def mode_launch(pf, python):
    tmp = tempfile.mkdtemp(prefix="pyflame-it-")

    def get(args):
        prof = os.path.join(tmp, "profile.txt")
        out, err = pyflame([pf, "-r", "0.005", "-o", prof] + args +
                           ["-t", python, THREADS, "2", "2", os.path.join(tmp, "ready"), "1.5"])
        os.unlink(os.path.join(tmp, "ready"))
        with open(prof) as f:
            return f.read(), err
    check_threads_profiles(get, launched=True)


def mode_dump(pf, python):
    target = start(python, THREADS, lambda ready: ["2", "2", ready])
    time.sleep(0.3)  # the main thread reaches its loop after writing "ready"
    try:
        out, err = pyflame([pf, "-d", "-p", str(target.pid)])
        check_released(target, out, err)
        tids = sorted(os.listdir("/proc/%d/task" % target.pid))
    finally:
        target.kill()
        target.wait()
    blocks = [b for b in out.strip().split("\n\n") if b]
    if len(blocks) != 5:
        fail("-d: expected 5 threads, got %d" % len(blocks), out, err)
    seen = {}
    holders = 0
    for block in blocks:
        lines = block.split("\n")
        head = lines[0].split()
        if head[0] != "Thread" or not head[1].isdigit():
            fail("-d: bad header %r" % lines[0], out, err)
        holders += "[holds the GIL]" in lines[0]
        frames = [l.strip() for l in lines[1:]]
        mine = [f for f in frames if f.startswith(THREADS + ":")]
        seen.setdefault(mine[0] if mine else "?", []).append((head[1], lines[0], frames))
    if sorted(t for v in seen.values() for t, _, _ in v) != tids:
        fail("-d: thread ids %r are not the target's %r" % (sorted(seen), tids), out, err)
    if holders > 1:
        fail("-d: %d threads marked as GIL holder" % holders, out, err)
    want = {frame("spin_0"): 1, frame("spin_1"): 1, frame("sleeper"): 2, frame("main"): 1}
    for f, n in want.items():
        if len(seen.get(f, [])) != n:
            fail("-d: expected %d thread(s) innermost at %s" % (n, f), out, err)
    # The main thread's stack, innermost first, exactly.
    _, head, frames = seen[frame("main")][0]
    L = markers(THREADS)
    if frames != ["%s:main:%d" % (THREADS, L["main"]), "%s:<module>:%d" % (THREADS, len(open(THREADS).read().splitlines()))]:
        fail("-d: main thread frames %r" % frames, out, err)
    for tid, head, frames in seen[frame("sleeper")]:
        if "(idle)" not in head:
            fail("-d: sleeping thread not marked idle: %r" % head, out, err)
        if frames[0] != frame("sleeper") or not re.search(r":_?_bootstrap:\d+$", frames[-1]):
            fail("-d: sleeper frames %r" % frames, out, err)


def sanitized(pf):
    """Whether pyflame was built with AddressSanitizer (-Db_sanitize)."""
    with open(pf, "rb") as f:
        return b"__asan_init" in f.read()


def mode_churn(pf, python):
    seconds = 10
    target = start(python, CHURN, lambda ready: ["200", str(seconds), ready])
    try:
        out, err = pyflame([pf, "-s", str(seconds - 1), "-r", "0.001", "--threads", "--stats",
                            "-p", str(target.pid)])
        rss = stats(err)["peak_rss_kib"]
        check_released(target, out, err)
        result, _ = target.communicate(timeout=30)
    finally:
        if target.poll() is None:
            target.kill()
        target.wait()
    if target.returncode != 0:
        fail("churn target exited %d" % target.returncode, out, err)
    started, done = int(result.split()[1]), int(result.split()[3])
    if started != done or started < 500:
        fail("churn target: %d threads started, %d finished" % (started, done), out, err)
    stacks, idle, failed = parse_collapsed(out)
    if not stacks:
        fail("churn: no stacks", out, err)
    # Threads start and end all the time: one can exit while it is stopped,
    # have a thread state but no OS thread yet (or any more), or leave the
    # list of thread states while pyflame walks it. Nothing else.
    check_failed(out, err, {"thread exited", THREAD_STARTS_OR_ENDS, "inconsistent data",
                            "memory read failed"}, "churn: ")
    # Every thread ever seen must not cost memory: ~2000 threads come and go.
    # A sanitizer build (build-asan/) carries ASan's runtime, shadow memory
    # and freed-memory quarantine in its RSS (about 10 MiB here); the bound
    # is for the program as shipped.
    if rss > (32 if sanitized(pf) else 8) * 1024:
        fail("churn: pyflame's peak RSS %d KiB" % rss, out, err)
    print("churn: %d threads in %d s; %d stacks, %d failed; pyflame peak RSS %d KiB"
          % (started, seconds, sum(stacks.values()), failed, rss))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--mode", choices=["attach", "launch", "dump", "churn"], required=True)
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    print("interpreter: %s" % python)
    {"attach": mode_attach, "launch": mode_launch, "dump": mode_dump, "churn": mode_churn}[a.mode](a.pyflame, python)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

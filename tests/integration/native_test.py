#!/usr/bin/env python3
"""Integration tests for --native: native frames merged with Python frames.

    native_test.py --pyflame BUILD/pyflame --python 3.11 --mode attach|launch|dump
                   --modules BUILD/tests/integration/native

The target (targets/native.py) runs Python -> C -> Python and spins there;
the C function is pfnative_call in tests/integration/native/pfnative.c,
built by meson as a module per version. A second thread sleeps in
time.sleep. Checked, with exact names and lines:
  - the spinning stack is, root first: native start-up frames, then
    <module> -> main -> outer -> pfnative_call (pfnative_X.so) -> inner,
    with nothing between them but (on a stripped interpreter) addresses
    inside the interpreter's own file, whose plumbing has no symbols;
  - the sleeping thread's stack ends in the libc call it sleeps in, under
    sleeper's line, and is marked idle;
  - few samples could not be merged; attached, none failed (with -t, only
    for reasons the program's start and end explain); and every thread
    runs again afterwards.
Exit 77 (meson "skipped") when the interpreter or its module is missing.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from run import (SKIP, THREAD_STARTS_OR_ENDS, at_start_and_end, check_failed, check_released, fail,
                 find_python, markers, parse_collapsed)

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "native.py")
MARKS = ("(native unwind incomplete)", "(native merge mismatch)")
# The system call time.sleep waits in: select() up to 3.10, clock_nanosleep()
# from 3.11 (Modules/timemodule.c, pysleep).
SLEEP_CALLS = ("clock_nanosleep", "nanosleep", "select", "__select", "pselect", "poll")


def module_name(tag):
    return "pfnative_" + tag.replace("debian-", "debian_").replace(".", "")


def py(name):
    """The frame of a marked line ("# LINE name"); "module" is <module>."""
    func = "<module>" if name == "module" else name
    return "%s:%s:%d" % (TARGET, func, markers(TARGET)[name])


def is_python(frame):
    return re.search(r":[^:;]+:(\d+|\?)$", frame) is not None and not frame.startswith("(")


def interp_file(python):
    """Base name of the file whose frames are the interpreter's own: the
    libpython the executable links, else the executable (static builds)."""
    real = os.path.realpath(python)
    out = subprocess.check_output(["ldd", real], universal_newlines=True)
    m = re.search(r"(libpython[\w.]+\.so[\w.]*)", out)
    return m.group(1) if m else os.path.basename(real)


GIL_HANDOFF = re.compile(r"^(PyThreadState_Swap|PyThread_\w+|PyEval_\w+|take_gil|drop_gil|"
                         r"sem_\w+|__new_sem_\w+|do_futex_wait\S*|__futex\w*|futex_\w+|pthread_\w+|"
                         r"__pthread_\w+|___pthread_\w+|__lll_\w+) \(")


def check_main_stack(stack, module, interp, out, err):
    """The spinning thread's stack, root first."""
    s = list(stack)
    where = "main thread stack %s" % ";".join(s)
    for m in MARKS:
        if m in s:
            fail("%s: marked %s" % (where, m), out, err)
    if not s[0].startswith("_start ("):
        fail("%s: the root frame is not _start" % where, out, err)
    want_py = [py("module"), py("main"), py("outer"), py("inner")]
    got_py = [f for f in s if is_python(f)]
    if got_py != want_py:
        fail("Python frames %r, want %r" % (got_py, want_py), out, err)
    # Everything above <module> is native start-up code.
    first = s.index(want_py[0])
    for f in s[:first]:
        if is_python(f) or f.startswith("("):
            fail("%s: non-native frame %s before <module>" % (where, f), out, err)
    # outer -> C -> inner, nothing else but addresses in the interpreter's
    # own file that have no symbol (a stripped interpreter's plumbing).
    c_frame = "pfnative_call (%s.so)" % module
    if c_frame not in s:
        fail("%s: no %s" % (where, c_frame), out, err)
    o, c, i = s.index(py("outer")), s.index(c_frame), s.index(py("inner"))
    if not o < c < i:
        fail("%s: order is not outer -> %s -> inner" % (where, c_frame), out, err)
    for f in s[o + 1:c] + s[c + 1:i]:
        if not f.startswith(interp + "+0x"):
            fail("%s: unexpected frame %s between Python and C" % (where, f), out, err)
    # After inner's spinning line, only the interpreter handing the GIL on:
    # 2.7 releases and takes it back every 100 bytecodes whenever there are
    # threads (Python/ceval.c, _Py_Ticker), and a stop can land in that.
    for f in s[i + 1:]:
        if not GIL_HANDOFF.match(f):
            fail("%s: frames after inner's spinning line: %r" % (where, s[i + 1:]), out, err)


def check_sleeper_stack(stack, out, err):
    """The sleeping thread's stack, root first: ... sleeper:LINE, then
    native frames ending in libc's sleeping call, then (idle)."""
    s = list(stack)
    where = "sleeper stack %s" % ";".join(s)
    k = s.index(py("sleeper"))
    below = [f for f in s[k + 1:] if f != "(idle)"]
    if not below or any(is_python(f) for f in below):
        fail("%s: no native frames under sleeper" % where, out, err)
    libc = [f for f in below if re.match(r"^(%s) \(libc\.so\.6\)$" % "|".join(SLEEP_CALLS), f)]
    if not libc:
        fail("%s: no libc sleeping call (%s) under sleeper" % (where, ", ".join(SLEEP_CALLS)), out, err)
    if not s[0].startswith(("clone", "__clone", "start_thread")):
        fail("%s: root is not the thread's start (clone)" % where, out, err)


def start_target(python, modules, module):
    tmp = tempfile.mkdtemp(prefix="pyflame-native-")
    ready = os.path.join(tmp, "ready")
    target = subprocess.Popen([python, TARGET, modules, module, ready])
    deadline = time.time() + 20
    while not os.path.exists(ready):
        if target.poll() is not None or time.time() > deadline:
            fail("target did not start (exit %r)" % target.poll())
        time.sleep(0.01)
    time.sleep(0.1)
    return target


def run_pyflame(cmd, timeout=60):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("pyflame did not finish within %d s: %s" % (timeout, " ".join(cmd)))
    if p.returncode != 0:
        fail("pyflame exited %d: %s" % (p.returncode, " ".join(cmd)), out, err)
    return out, err


def marked_share(stacks, out, err, limit=0.05):
    total = sum(stacks.values())
    marked = sum(c for s, c in stacks.items() if any(m in s for m in MARKS))
    if total == 0:
        fail("no stacks", out, err)
    if marked > max(2, limit * total):
        fail("%d of %d stacks could not be merged" % (marked, total), out, err)
    if marked and "stacks without native frames" not in err:
        fail("marked stacks not counted in the summary", out, err)
    return total, marked


def mode_profile(pf, python, modules, module, interp, launch):
    if launch:
        tmp = tempfile.mkdtemp(prefix="pyflame-native-")
        prof = os.path.join(tmp, "profile.txt")
        ready = os.path.join(tmp, "ready")
        out, err = run_pyflame([pf, "--native", "--threads", "-r", "0.005", "-o", prof, "-t",
                                python, TARGET, modules, module, ready, "1.5"])
        with open(prof) as f:
            out = f.read()
        runs = [(out, err)]
    else:
        target = start_target(python, modules, module)
        try:
            runs = []
            for args in (["--native"], ["--native", "--threads"]):
                o, e = run_pyflame([pf, "-s", "1", "-r", "0.005"] + args + ["-p", str(target.pid)])
                check_released(target, o, e)
                runs.append((o, e))
        finally:
            target.kill()
            target.wait()
    for n, (out, err) in enumerate(runs):
        stacks, idle, failed = parse_collapsed(out)
        total, marked = marked_share(stacks, out, err)
        # Attached, the main thread spins in inner, stopped while it is read,
        # and the sleeper sleeps: no sample fails (but for the machine's
        # load, run.LOADED). The main thread is the only one that takes the
        # GIL; 2.7 still lets go of it every 100 bytecodes, so a holder
        # stopped just then no longer holds it: that tick is idle or read as
        # at the look, and the GIL never goes to another thread. (This needs
        # the sampler that does so, instead of failing such a tick as "GIL
        # changed hands", as pyflame did up to bee120e.) -t adds the
        # program's start and end, and the sleeper's (with --threads).
        check_failed(out, err, at_start_and_end() | {THREAD_STARTS_OR_ENDS} if launch else (),
                     "%s: " % " ".join(["-t"] * launch + ["--native"] + ["--threads"] * (launch or n == 1)))
        mains = {s: c for s, c in stacks.items() if py("outer") in s}
        sleepers = {s: c for s, c in stacks.items() if py("sleeper") in s}
        if not mains:
            fail("no stack of the spinning thread", out, err)
        best = max(mains, key=mains.get)
        check_main_stack(best, module, interp, out, err)
        # Where in the interpreter's loop the thread is stopped varies the
        # native frames under inner; the expected stack is still most of
        # them, whatever the load.
        if 2 * mains[best] <= sum(mains.values()):
            fail("the expected stack is only %d of the spinning thread's %d samples"
                 % (mains[best], sum(mains.values())), out, err)
        threads = launch or n == 1
        if not threads:
            if sleepers:
                fail("GIL mode shows the sleeping thread", out, err)
            print("--native: %d samples, %d not merged; %s" % (total, marked, ";".join(best[-4:])))
            continue
        if not sleepers:
            fail("--threads: no stack of the sleeping thread", out, err)
        sbest = max(sleepers, key=sleepers.get)
        check_sleeper_stack(sbest, out, err)
        # The sleeper is idle in most samples, not all: --native stops it to
        # unwind it, which takes it out of its system call, and it is
        # runnable until it gets a CPU to go back to sleep (longer on a
        # loaded machine); with -t it also runs for a moment when it starts.
        idle_n = sum(c for s, c in sleepers.items() if s[-1] == "(idle)")
        if 2 * idle_n <= sum(sleepers.values()):
            fail("the sleeping thread is idle in only %d of %d samples"
                 % (idle_n, sum(sleepers.values())), out, err)
        print("--native --threads%s: %d samples, %d not merged; sleeper: %s" % (
            " (launch)" if launch else "", total, marked, ";".join(sbest[-4:])))


def mode_dump(pf, python, modules, module, interp):
    target = start_target(python, modules, module)
    try:
        out, err = run_pyflame([pf, "--native", "-d", "-p", str(target.pid)])
        check_released(target, out, err)
    finally:
        target.kill()
        target.wait()
    blocks = [b for b in out.strip().split("\n\n") if b]
    if len(blocks) != 2:
        fail("-d: expected 2 threads, got %d" % len(blocks), out, err)
    seen = set()
    for block in blocks:
        lines = block.split("\n")
        frames = [l.strip() for l in lines[1:]]
        stack = tuple(reversed(frames))  # -d prints innermost first
        if py("outer") in frames:
            check_main_stack(stack, module, interp, out, err)
            seen.add("main")
        elif py("sleeper") in frames:
            check_sleeper_stack(stack, out, err)
            if "(idle)" not in lines[0]:
                fail("-d: sleeping thread not marked idle: %r" % lines[0], out, err)
            seen.add("sleeper")
    if seen != {"main", "sleeper"}:
        fail("-d: threads seen: %r" % sorted(seen), out, err)
    print("-d --native: both threads as expected")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--mode", choices=["attach", "launch", "dump"], required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--available", default="1", help="0: pyflame was built without libunwind")
    a = ap.parse_args()
    if a.available != "1":
        print("skipped: this pyflame was built without libunwind (-Dnative)")
        return SKIP
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    module = module_name(a.python)
    if not os.path.exists(os.path.join(a.modules, module + ".so")):
        print("skipped: no C extension module for CPython %s (its headers are not installed)" % a.python)
        return SKIP
    interp = interp_file(python)
    print("interpreter: %s (%s)" % (python, interp))
    if a.mode == "dump":
        mode_dump(a.pyflame, python, a.modules, module, interp)
    else:
        mode_profile(a.pyflame, python, a.modules, module, interp, a.mode == "launch")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

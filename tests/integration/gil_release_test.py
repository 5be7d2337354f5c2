#!/usr/bin/env python3
"""Integration test: a GIL holder that releases the GIL between pyflame's
look and its stop is not a failure (issue 11).

    gil_release_test.py --pyflame BUILD/pyflame --python 3.11

targets/ctypes_qsort.py sorts through libc's qsort with a Python comparison
function: the GIL is released around every foreign call and taken back in
every callback. pyflame, attached for 1 s at 1 kHz in its default mode,
must fail no sample for the GIL's sake ("GIL changed hands"): a tick whose
holder released the GIL in between is counted as the stack copied with the
look, confirmed, or else at the stop (docs/usage.md, "The GIL holder").
The only failure the machine's load can explain is a thread that waited
for a CPU past the interval with a stack that would not confirm, or that
confirmed but did not decode (run.LOADED, which check_failed always
allows): two live reads can be torn alike, as a ctypes callback runs the
same code at the same addresses each time round (seen once in 10^5
samples on 3.13 under load). On 3.11 and 3.12 a thread can also be
stopped while it sets up a frame for a callback (see below). The stacks
must show the callback's exact frames and lines.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (SKIP, check_failed, check_released, fail, find_python, markers,  # noqa: E402
                 parse_collapsed)

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "ctypes_qsort.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    print("interpreter: %s" % python)
    ready = os.path.join(tempfile.mkdtemp(prefix="pyflame-gil-"), "ready")
    target = subprocess.Popen([python, TARGET, ready, "30"])
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if target.poll() is not None or time.time() > deadline:
                fail("the target did not start")
            time.sleep(0.01)
        time.sleep(0.2)
        pf = subprocess.run([a.pyflame, "-r", "0.001", "-s", "1", "--stats", "-p", str(target.pid)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            timeout=60)
        out, err = pf.stdout, pf.stderr
        if pf.returncode != 0:
            fail("pyflame exited with status %d" % pf.returncode, out, err)
        check_released(target, out, err)
    finally:
        target.kill()
        target.wait()
    # 3.11 and 3.12 point tstate->cframe at a _PyCFrame on the C stack
    # before they fill it (Python/ceval.c), and a ctypes callback enters and
    # leaves the eval loop thousands of times a second: a thread stopped in
    # that moment, whose look could not be confirmed either, is a sample
    # that could not be read, and is counted as such. Not the GIL's doing.
    cframe = a.python in ("3.11", "3.12", "debian-3.11")
    check_failed(out, err, {"memory read failed", "inconsistent data"} if cframe else ())
    stacks, idle, _ = parse_collapsed(out)
    lines = markers(TARGET)
    want = ("%s:<module>:%d" % (TARGET, lines["module"]), "%s:main:%d" % (TARGET, lines["main"]),
            "%s:sort_once:%d" % (TARGET, lines["qsort"]), "%s:compare:%d" % (TARGET, lines["compare"]))
    if want not in stacks:
        fail("the comparison callback's stack is missing:\n  %s" % ";".join(want), out, err)
    gil = [l for l in err.splitlines() if l.startswith("pyflame: stats:")]
    print("%d samples of the callback, %d idle; %s" % (stacks[want], idle, gil[0] if gil else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Integration test: `pyflame --top` (issue 13, part 1), run in tmux and
read back from the screen with capture-pane, as a user would see it.

    top_test.py --pyflame BUILD/pyflame --python 3.11

targets/formats.py calls heavy() twice as long as light(). On the screen:
the header (Python version, rate), the four functions with heavy's own
share above light's, Enter on main showing only its callees, Backspace,
the sort and cumulated toggles, pause (the sample count stops moving),
a terminal too small, q (pyflame ends, the target runs on untraced and
not stopped); and without a terminal, a clear error.
"""
import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, fail, find_python, thread_states  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "formats.py")


class Tmux(object):
    def __init__(self, cmd):
        self.sock = "pyflame-top-%d" % os.getpid()
        subprocess.check_call(["tmux", "-L", self.sock, "new-session", "-d", "-s", "t", "-x", "120",
                               "-y", "30", cmd])

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True).stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, pattern, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if re.search(pattern, s, re.M):
                return s
            time.sleep(0.1)
        fail("%s: %r never on screen:\n%s" % (what, pattern, self.screen()))

    def kill(self):
        self.tmux("kill-server")


def rows(screen):
    """{function: (own%, total%)} of the table on screen."""
    out = {}
    for line in screen.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+([\d.]+)%\s+[\d.]+\s+[\d.]+\s+(\S+)", line)
        if m:
            out[m.group(3)] = (float(m.group(1)), float(m.group(2)))
    return out


def samples(screen):
    m = re.search(r" (\d+) samples ", screen)
    return int(m.group(1)) if m else -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    if not shutil.which("tmux"):
        print("skipped: tmux is not installed")
        return SKIP
    print("interpreter: %s" % python)
    pf = os.path.abspath(a.pyflame)
    target = subprocess.Popen([python, TARGET, "120"])
    tm = None
    try:
        # No terminal: a clear error, nothing attached.
        p = subprocess.run([pf, "--top", "-p", str(target.pid)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, stdin=subprocess.DEVNULL)
        if p.returncode != 2 or "--top draws on a terminal" not in p.stderr:
            fail("--top without a terminal: exit %d, %r" % (p.returncode, p.stderr))
        # One file per run: the tests of two versions may run at once.
        scratch = tempfile.mkdtemp(prefix="pyflame-top-")
        atexit.register(shutil.rmtree, scratch, True)
        status = os.path.join(scratch, "status")
        tm = Tmux("'%s' --top -r 0.001 --delay 0.3 -p %d; echo $? > '%s'; sleep 60"
                  % (pf, target.pid, status))
        version = subprocess.check_output([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                          universal_newlines=True).strip()
        s = tm.wait_for(r"^Python %s\s+\d+ samples/s" % re.escape(version), "header")
        s = tm.wait_for(r"\blight \(", "the table")
        time.sleep(1.0)
        s = tm.screen()
        r = rows(s)
        for fn in ("<module>", "main", "heavy", "light"):
            if fn not in r:
                fail("no row for %s:\n%s" % (fn, s))
        if not r["heavy"][0] > r["light"][0] > 0 or r["main"][0] > 5:
            fail("own shares: %r\n%s" % (r, s))
        if TARGET not in s:
            fail("the file is not shown:\n%s" % s)
        # Walk into main: its callees only.
        table = [l for l in s.splitlines() if re.match(r"^\s*[\d.]+%", l)]
        index = [i for i, l in enumerate(table) if re.search(r"\bmain \(", l)][0]
        tm.keys(*(["Down"] * index + ["Enter"]))
        s = tm.wait_for(r"^main\s*$", "the path after Enter on main")
        time.sleep(0.8)
        s = tm.screen()
        r = rows(s)
        if set(r) - {"heavy", "light", "(self)"} or "heavy" not in r:
            fail("main's callees: %r\n%s" % (sorted(r), s))
        tm.keys("BSpace")
        tm.wait_for(r"^all functions\s*$", "Backspace")
        tm.keys("s")
        tm.wait_for(r"^last interval, by own", "s (sort by own)")
        tm.keys("c")
        tm.wait_for(r"^cumulated, by own", "c (cumulated)")
        tm.keys("p")
        s = tm.wait_for(r"\[paused\]", "p (pause)")
        n1 = samples(s)
        time.sleep(1.0)
        n2 = samples(tm.screen())
        if n1 != n2:
            fail("the view moved while paused: %d then %d samples" % (n1, n2))
        tm.keys("p")
        tm.wait_for(r"^cumulated, by own\s*$", "p again (resume)")
        time.sleep(1.0)
        if samples(tm.screen()) <= n2:
            fail("the view did not move on after the pause:\n%s" % tm.screen())
        tm.tmux("resize-window", "-t", "t", "-x", "40", "-y", "6")
        tm.wait_for(r"too small", "a terminal too small")
        tm.tmux("resize-window", "-t", "t", "-x", "120", "-y", "30")
        tm.wait_for(r"\bheavy \(", "the table after the resize")
        tm.keys("q")
        deadline = time.time() + 20
        while not os.path.exists(status) and time.time() < deadline:
            time.sleep(0.1)
        if not os.path.exists(status):
            fail("q did not end pyflame:\n%s" % tm.screen())
        with open(status) as f:
            code = f.read().strip()
        if code != "0":
            fail("pyflame --top exited %s after q" % code)
        if target.poll() is not None:
            fail("the target ended with pyflame")
        with open("/proc/%d/status" % target.pid) as f:
            if "TracerPid:\t0\n" not in f.read():
                fail("the target is still traced after q")
        bad = {t: st for t, st in thread_states(target.pid).items() if st in "tT"}
        if bad:
            fail("target threads left stopped: %r" % bad)
        print("top: header, rows (heavy own %.1f%% > light %.1f%%), Enter/Backspace, s, c, p, resize, q; "
              "the target runs on, untraced" % (r.get("heavy", (0,))[0] if "heavy" in r else 0,
                                               r.get("light", (0,))[0] if "light" in r else 0))
    finally:
        if tm:
            tm.kill()
        target.kill()
        target.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

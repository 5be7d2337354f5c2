#!/usr/bin/env python3
"""Integration test: profiles written while sampling (issue 13, parts 2-3).

    live_test.py --pyflame BUILD/pyflame --python 3.11 --case flush|sigusr1|reset|progress

  flush     --flush-every 0.2: a reader racing the writer never sees half a
            file (every read is whole collapsed lines), sees the profile
            grow, and the last file holds every sample the summary counts
  sigusr1   SIGUSR1 to an attached pyflame writes the profile at once and
            sampling goes on (still tracing, the final profile larger)
  reset     --flush-reset with %n in -o: a file per window, each whole, and
            their samples add up to the run's
  progress  with stderr on a terminal (a pty), a progress line updated in
            place; none with --quiet, none when stderr is a pipe
"""
import argparse
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, fail, find_python, summary  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FORMATS = os.path.join(HERE, "targets", "formats.py")
FAULTS = os.path.join(HERE, "targets", "faults.py")
LINE = re.compile(r"^\S.* \d+$")


def whole(text, what):
    """text is a whole collapsed profile: its total samples."""
    if not text.endswith("\n"):
        fail("%s: the file does not end with a newline (half written?)" % what, text[-300:])
    total = 0
    for line in text.splitlines():
        if not LINE.match(line):
            fail("%s: not a collapsed line: %r" % (what, line[:200]), text[-300:])
        total += int(line.rsplit(" ", 1)[1])
    return total


def case_flush(pf, python, tmp):
    path = os.path.join(tmp, "p.txt")
    p = subprocess.Popen([pf, "-r", "0.001", "-o", path, "--flush-every", "0.2", "-t", python, FORMATS, "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    totals, reads = [], 0
    while p.poll() is None:
        try:
            with open(path) as f:
                text = f.read()
        except IOError:
            continue  # not written yet
        reads += 1
        t = whole(text, "read %d while pyflame ran" % reads)
        if not totals or t != totals[-1]:
            totals.append(t)
    out, err = p.communicate()
    if p.returncode != 0:
        fail("pyflame exited %d" % p.returncode, out, err)
    with open(path) as f:
        final = whole(f.read(), "the final file")
    s = summary(err)
    if final != s["stacks"] + s["idle"] + s["failed"]:
        fail("the final file has %d samples, the summary %r" % (final, s), "", err)
    if len(totals) < 4 or totals != sorted(totals):
        fail("the profile did not grow by flushes: totals seen %r" % totals, "", err)
    if os.path.exists(path + ".tmp"):
        fail("the temporary file was left behind")
    print("flush: %d reads racing the writer, all whole; %d versions seen, growing; final %d samples"
          % (reads, len(totals), final))


def case_special(pf, python, tmp):
    """-o at something that is not a regular file is written through, not
    replaced: a FIFO stays a FIFO (its reader gets the profile), a symlink
    stays a symlink (its target gets it). As root, -o /dev/null must not
    turn /dev/null into a file."""
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    p = subprocess.run([pf, "-r", "0.002", "-o", fifo, "-t", python, FORMATS, "0.3"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    reader.join(30)
    if p.returncode != 0 or not got or whole(got[0], "the FIFO's reader") == 0:
        fail("-o FIFO: exit %d, read %r" % (p.returncode, got[:1]), "", p.stderr)
    if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
        fail("-o FIFO: the FIFO was replaced")
    target = os.path.join(tmp, "real.txt")
    link = os.path.join(tmp, "link.txt")
    os.symlink(target, link)
    p = subprocess.run([pf, "-r", "0.002", "-o", link, "-t", python, FORMATS, "0.3"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if p.returncode != 0 or not os.path.islink(link) or not os.path.exists(target):
        fail("-o SYMLINK: exit %d, still a link %r" % (p.returncode, os.path.islink(link)), "", p.stderr)
    with open(target) as f:
        whole(f.read(), "the symlink's target")
    print("special: a FIFO and a symlink written through, neither replaced")


def case_sigusr1(pf, python, tmp):
    ready = os.path.join(tmp, "ready")
    t = subprocess.Popen([python, FAULTS, "spin", ready, "0"], stdout=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if time.time() > deadline:
                fail("the target did not start")
            time.sleep(0.01)
        path = os.path.join(tmp, "p.txt")
        p = subprocess.Popen([pf, "-r", "0.001", "-s", "60", "-o", path, "-p", str(t.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        time.sleep(1.0)
        p.send_signal(signal.SIGUSR1)
        deadline = time.time() + 10
        while not os.path.exists(path):
            if time.time() > deadline or p.poll() is not None:
                fail("SIGUSR1 wrote nothing", *p.communicate())
            time.sleep(0.01)
        with open(path) as f:
            first = whole(f.read(), "after SIGUSR1")
        if p.poll() is not None:
            fail("pyflame ended after SIGUSR1", *p.communicate())
        with open("/proc/%d/status" % t.pid) as f:
            if "TracerPid:\t%d" % p.pid not in f.read():
                fail("pyflame stopped tracing after SIGUSR1")
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        if p.returncode != 0:
            fail("pyflame exited %d" % p.returncode, out, err)
        with open(path) as f:
            final = whole(f.read(), "the final file")
        if not first > 0 or not final > first:
            fail("samples: %d at SIGUSR1, %d at the end" % (first, final), "", err)
        print("sigusr1: %d samples written at the signal, sampling went on to %d" % (first, final))
    finally:
        t.kill()
        t.wait()


def case_reset(pf, python, tmp):
    path = os.path.join(tmp, "w-%n.txt")
    p = subprocess.run([pf, "-r", "0.001", "-o", path, "--flush-every", "0.3", "--flush-reset",
                        "-t", python, FORMATS, "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if p.returncode != 0:
        fail("pyflame exited %d" % p.returncode, p.stdout, p.stderr)
    files = sorted(f for f in os.listdir(tmp) if re.match(r"^w-\d+\.txt$", f))
    numbers = sorted(int(f[2:-4]) for f in files)
    if len(files) < 4 or numbers != list(range(len(files))):
        fail("window files %r" % files, "", p.stderr)
    totals = []
    for f in files:
        with open(os.path.join(tmp, f)) as fh:
            totals.append(whole(fh.read(), f))
    s = summary(p.stderr)
    if sum(totals) != s["stacks"] + s["idle"] + s["failed"]:
        fail("windows hold %r = %d samples, the summary %r" % (totals, sum(totals), s), "", p.stderr)
    print("reset: %d windows, %r samples, adding up to the run's %d" % (len(files), totals, sum(totals)))


def run_on_pty(argv):
    """Run argv with stderr on a pseudo-terminal; return what it wrote there."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif p.poll() is not None:
            break
    p.wait()
    os.close(master)
    return p.returncode, b"".join(chunks).decode("utf-8", "replace")


def case_progress(pf, python, tmp):
    path = os.path.join(tmp, "p.txt")
    base = [pf, "-r", "0.001", "-o", path, "-t", python, FORMATS, "1.5"]
    rc, text = run_on_pty(base)
    updates = re.findall(r"\r\x1b\[Kpyflame: ([\d.]+) s, (\d+) samples \(\d+/s\), [\d.]+% idle, [\d.]+% failed -> (\S+)",
                         text)
    if rc != 0 or len(updates) < 3:
        fail("no progress line on a terminal (exit %d): %r" % (rc, text[:2000]))
    if updates[-1][2] != path or int(updates[-1][1]) <= int(updates[0][1]):
        fail("progress does not advance or names %r: %r" % (updates[-1][2], updates))
    rc, quiet = run_on_pty(base[:1] + ["--quiet"] + base[1:])
    # (A terminal turns "\n" into "\r\n": look for the line's erase.)
    if rc != 0 or "\x1b[K" in quiet:
        fail("--quiet still shows a progress line: %r" % quiet[:500])
    p = subprocess.run(base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0 or "\r" in p.stderr or "\x1b[K" in p.stderr:
        fail("a progress line on a pipe: %r" % p.stderr[:500])
    print("progress: %d updates on a terminal (last: %s s, %s samples); none with --quiet or on a pipe"
          % (len(updates), updates[-1][0], updates[-1][1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--case", required=True, choices=["flush", "sigusr1", "reset", "progress"])
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    print("interpreter: %s" % python)
    pf = os.path.abspath(a.pyflame)
    # Usage errors first: a flush needs a file.
    p = subprocess.run([pf, "--flush-every", "1", "-p", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 2 or "give -o PATH" not in p.stderr:
        fail("--flush-every without -o: exit %d, %r" % (p.returncode, p.stderr))
    tmp = tempfile.mkdtemp(prefix="pyflame-live-")
    if a.case == "flush":
        case_special(pf, python, tempfile.mkdtemp(prefix="pyflame-live-"))
    {"flush": case_flush, "sigusr1": case_sigusr1, "reset": case_reset,
     "progress": case_progress}[a.case](pf, python, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Integration test of the pprof format, read by pprof itself: pyflame
attaches to a real interpreter running targets/formats_pprof.py with
-f pprof -o X.pb.gz --show-threads, and `go tool pprof -raw` must read the
file, without a warning, and show

- the target's spinning stack, leaf first, with the exact function names
  (<lambda> and <module> unchanged by pprof's demangler), files and line
  numbers of its `# LINE` markers, as the most frequent stack;
- every sample's cpu/nanoseconds equal to its count times the period, and
  the period the interval asked for (-r 0.005);
- as many samples in all, with a stack, idle (the target sleeps a quarter
  of the time) and failed (by reason) as pyflame's summary line on stderr
  says;
- the thread of --show-threads as labels (thread, tid) of each stack
  sample, not as a frame.

    formats_pprof_test.py --pyflame BUILD/pyflame --python 3.11

Exit 77 (meson's "skipped") when that interpreter or go is not installed
(scripts/test installs golang-go when run as root).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, check_released, fail, find_python, markers, summary  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "formats_pprof.py")
RATE_NS = 5000000  # -r 0.005


def find_go():
    go = shutil.which("go")
    if go:
        return go
    # Debian's golang-go links /usr/bin/go; a PATH without /usr/bin, or
    # golang-1.N-go alone, still has it here.
    for path in sorted(os.listdir("/usr/lib")) if os.path.isdir("/usr/lib") else ():
        cand = os.path.join("/usr/lib", path, "bin", "go")
        if path.startswith("go") and os.access(cand, os.X_OK):
            return cand
    return None


SAMPLE = re.compile(r"^\s+(\d+)\s+(\d+): ([\d ]*)$")
LABEL = re.compile(r"^\s+(\w+):\[(.*)\]$")
# "     3: 0x0 M=1 leaf /path/formats_pprof.py:16 s=0()": the system name, in
# parentheses, is empty (src/output/writer_pprof.c).
LOCATION = re.compile(r"^\s*(\d+): 0x[0-9a-f]+ M=1 (\S+) (.*):(\d+) s=0\(\)$")


def parse_raw(text, err):
    """go tool pprof -raw: the sample types, the period, the samples (values,
    location ids leaf first, labels) and the locations (id -> name, file,
    line)."""
    lines = text.splitlines()
    out = {"samples": [], "locations": {}, "types": None, "period": None}
    section = None
    for i, line in enumerate(lines):
        if line.startswith("PeriodType: "):
            out["period_type"] = line.split(": ", 1)[1]
        elif line.startswith("Period: "):
            out["period"] = int(line.split(": ", 1)[1])
        elif line == "Samples:":
            section = "types"
        elif section == "types":
            out["types"] = line.split()
            section = "samples"
        elif line in ("Locations", "Mappings"):
            section = line
        elif section == "samples":
            m = SAMPLE.match(line)
            if m:
                ids = [int(x) for x in m.group(3).split()]
                out["samples"].append({"count": int(m.group(1)), "ns": int(m.group(2)),
                                       "locs": ids, "labels": {}})
                continue
            m = LABEL.match(line)
            if m and out["samples"]:
                out["samples"][-1]["labels"][m.group(1)] = m.group(2)
                continue
            fail("go tool pprof -raw: unexpected line %d in the samples: %r" % (i + 1, line), text, err)
        elif section == "Locations":
            m = LOCATION.match(line)
            if not m:
                fail("go tool pprof -raw: unexpected location line %r" % line, text, err)
            out["locations"][int(m.group(1))] = (m.group(2), m.group(3), int(m.group(4)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    go = find_go()
    if not go:
        print("skipped: go not installed")
        return SKIP
    print("interpreter: %s; %s" % (python, subprocess.check_output([go, "version"],
                                                                   universal_newlines=True).strip()))

    tmp = tempfile.mkdtemp(prefix="pyflame-pprof-")
    ready = os.path.join(tmp, "ready")
    prof = os.path.join(tmp, "cpu.pb.gz")
    target = subprocess.Popen([python, TARGET, ready])
    try:
        deadline = time.time() + 20
        while not os.path.exists(ready):
            if target.poll() is not None or time.time() > deadline:
                fail("target did not start (exit %r)" % target.poll())
            time.sleep(0.01)
        cmd = [a.pyflame, "-s", "1", "-r", "0.005", "--show-threads", "-f", "pprof", "-o", prof,
               "-p", str(target.pid)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        if p.returncode != 0:
            fail("pyflame exited %d" % p.returncode, p.stdout, p.stderr)
        if p.stdout:
            fail("pyflame -o wrote to stdout: %r" % p.stdout[:200])
        check_released(target, "", p.stderr)
    finally:
        target.kill()
        target.wait()
    s = summary(p.stderr)
    print("  %s" % s["line"])

    # pprof writes nothing but what it is asked for, under a temporary
    # directory of its own; no network.
    env = dict(os.environ, PPROF_TMPDIR=tmp, HOME=tmp)
    g = subprocess.run([go, "tool", "pprof", "-raw", prof], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120, env=env)
    raw, gerr = g.stdout, g.stderr
    if g.returncode != 0:
        fail("go tool pprof -raw exited %d" % g.returncode, raw, gerr)
    if gerr.strip():
        fail("go tool pprof warned while reading the profile", raw, gerr)
    r = parse_raw(raw, gerr)

    if r["types"] != ["samples/count", "cpu/nanoseconds"]:
        fail("sample types %r" % r["types"], raw)
    if r.get("period_type") != "cpu nanoseconds" or r["period"] != RATE_NS:
        fail("period %r %r, want cpu nanoseconds %d" % (r.get("period_type"), r["period"], RATE_NS), raw)
    for smp in r["samples"]:
        if smp["ns"] != smp["count"] * RATE_NS:
            fail("a sample of %d counts %d ns, not %d" % (smp["count"], smp["ns"], smp["count"] * RATE_NS),
                 raw)
        for loc in smp["locs"]:
            if loc not in r["locations"]:
                fail("sample refers to location %d, which is not there" % loc, raw)

    def frames(smp):
        return [r["locations"][loc] for loc in smp["locs"]]

    def only(name):
        """The samples of the aggregate's own idle or failed counts: that one
        frame, and no thread (a thread's own "(idle)" leaf has one)."""
        return [x for x in r["samples"]
                if [f[0] for f in frames(x)] == [name] and "thread" not in x["labels"]]

    idle = sum(x["count"] for x in only("(idle)"))
    failed = {}
    for x in only("(failed)"):
        reason = x["labels"].get("reason")
        failed[reason] = failed.get(reason, 0) + x["count"]
    plain = only("(idle)") + only("(failed)")
    stacks = [x for x in r["samples"] if not any(x is y for y in plain)]
    with_stack = sum(x["count"] for x in stacks)
    total = sum(x["count"] for x in r["samples"])
    # The summary's first count is of ticks, and a tick before pyflame
    # knew the interpreter ready (here: attached while nobody held the GIL,
    # src/sample/tick.c) is no sample; it says how many there were.
    m = re.search(r"; (\d+) ticks before the interpreter was ready", s["line"])
    samples = s["samples"] - (int(m.group(1)) if m else 0)
    if (total, with_stack, idle, sum(failed.values())) != (samples, s["stacks"], s["idle"], s["failed"]):
        fail("pprof has %d samples (%d with a stack, %d idle, %d failed), the summary says %d (%d, %d, %d)"
             % (total, with_stack, idle, sum(failed.values()), samples, s["stacks"], s["idle"],
                s["failed"]), raw, p.stderr)
    if idle == 0:
        fail("no idle samples, though the target sleeps a quarter of the time", raw, p.stderr)
    if failed != s["reasons"]:
        fail("failed samples by reason %r, the summary says %r" % (failed, s["reasons"]), raw, p.stderr)

    # The thread: labels on every stack sample, and never a frame. The
    # target has one thread, whose id is the process's.
    for x in stacks:
        thread, tid = x["labels"].get("thread", ""), x["labels"].get("tid")
        if not thread.startswith("(thread %d " % target.pid) or tid != str(target.pid):
            fail("a stack sample's thread labels are %r, want the thread %d" % (x["labels"], target.pid), raw)
    for name, _, _ in r["locations"].values():
        if name.startswith("(thread"):
            fail("the thread is a frame: %s" % name, raw)

    L = markers(TARGET)
    want = [("leaf", TARGET, L["leaf"]), ("<lambda>", TARGET, L["lambda"]),
            ("middle", TARGET, L["middle"]), ("main", TARGET, L["main"]),
            ("<module>", TARGET, L["module"])]
    if not stacks:
        fail("no stacks in the profile", raw, p.stderr)
    best = max(stacks, key=lambda x: x["count"])
    if frames(best) != want:
        fail("the most frequent stack, leaf first, is\n  %s\nwant\n  %s"
             % ("\n  ".join(map(str, frames(best))), "\n  ".join(map(str, want))), raw, p.stderr)
    # The target spins on one line, stopped while it is read: its stack in
    # nearly every sample, whatever the load (as tests/integration/run.py
    # asks of spin.py attached).
    share = float(best["count"]) / with_stack
    if share < 0.9:
        fail("the spinning stack is %.0f%% of the stack samples (at least 90%%)" % (100 * share), raw)
    print("pprof: %d samples (%d with a stack, %d idle, %d failed); the spinning stack %d times"
          % (total, with_stack, idle, sum(failed.values()), best["count"]))
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

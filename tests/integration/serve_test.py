#!/usr/bin/env python3
"""Integration test: `pyflame --serve` (issue 13, part 4), scraped by the
real client, `go tool pprof`, as Parca and Grafana Alloy scrape it.

    serve_test.py --pyflame BUILD/pyflame --python 3.11

targets/formats.py calls heavy() twice as long as light(). pyflame
attaches with --serve on a free loopback port; then: /healthz, the index,
400 for bad seconds, 404, 405; two scrapes at once by go tool pprof, each
with heavy and light on their lines and about 2 s of samples; a client that
connects and says nothing does not stop the others or the sampling; SIGINT
ends pyflame with exit 0, the target untraced and running.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, fail, find_python, markers, thread_states  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "formats.py")
LINES = markers(TARGET)


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(base, seconds, results, i):
    p = subprocess.run(["go", "tool", "pprof", "-raw", "%s/debug/pprof/profile?seconds=%d" % (base, seconds)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                       env=dict(os.environ, PPROF_TMPDIR=os.environ.get("TMPDIR", "/tmp")))
    results[i] = p


def check_raw(p, what):
    if p.returncode != 0:
        fail("%s: go tool pprof exited %d" % (what, p.returncode), p.stdout, p.stderr)
    text = p.stdout
    # "Samples:" then "  COUNT  NANOS: LOC LOC ..."; "Locations" then
    # "     1: 0x0 M=1 heavy FILE:LINE s=0".
    samples = [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+\d+: [\d ]+$", text, re.M)]
    locs = re.findall(r"^\s+\d+: 0x0 M=1 (\S+) (\S+):(\d+)", text, re.M)
    names = {(n, f, int(l)) for n, f, l in locs}
    for fn in ("heavy", "light"):
        if (fn, TARGET, LINES[fn]) not in names:
            fail("%s: no %s at %s:%d" % (what, fn, TARGET, LINES[fn]), text[:3000], p.stderr)
    total = sum(samples)
    # 2 s at 200 Hz: 400 ticks; far margins (a loaded machine takes ticks
    # late, never more than asked).
    if not 100 <= total <= 440:
        fail("%s: %d samples in a 2 s scrape at 200 Hz" % (what, total), text[:3000], p.stderr)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    if not shutil.which("go"):
        print("skipped: go is not installed (scripts/test-tools installs golang-go as root)")
        return SKIP
    print("interpreter: %s" % python)
    pf = os.path.abspath(a.pyflame)
    bad = subprocess.run([pf, "--serve", "nonsense", "-p", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if bad.returncode == 0 or "--serve" not in bad.stderr:
        fail("--serve nonsense: exit %d, %r" % (bad.returncode, bad.stderr))
    target = subprocess.Popen([python, TARGET, "120"])
    p = None
    try:
        p = subprocess.Popen([pf, "--serve", "127.0.0.1:0", "-r", "0.005", "-p", str(target.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        line = p.stderr.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)/debug/pprof/profile", line)
        if not m:
            fail("no serving line: %r" % line)
        base = m.group(1)
        if get(base + "/healthz") != (200, b"ok\n"):
            fail("/healthz: %r" % (get(base + "/healthz"),))
        code, body = get(base + "/debug/pprof/")
        if code != 200 or b"profile?seconds" not in body:
            fail("the index: %d %r" % (code, body[:200]))
        for url, want in (("/debug/pprof/profile?seconds=abc", 400), ("/debug/pprof/profile?seconds=0", 400),
                          ("/debug/pprof/profile?seconds=301", 400), ("/nope", 404)):
            code, _ = get(base + url)
            if code != want:
                fail("%s: HTTP %d, not %d" % (url, code, want))
        if get(base + "/healthz", "POST")[0] != 405:
            fail("POST /healthz is not 405")
        # A client that connects and never sends a request.
        host, port = base[len("http://"):].split(":")
        idle_client = socket.create_connection((host, int(port)))
        results = [None, None]
        threads = [threading.Thread(target=scrape, args=(base, 2, results, i)) for i in range(2)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        took = time.time() - t0
        totals = [check_raw(r, "scrape %d" % i) for i, r in enumerate(results)]
        if took > 30:
            fail("two 2 s scrapes took %.1f s" % took)
        idle_client.close()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        if p.returncode != 0:
            fail("pyflame exited %d after SIGINT" % p.returncode, out, err)
        if target.poll() is not None:
            fail("the target ended")
        with open("/proc/%d/status" % target.pid) as f:
            if "TracerPid:\t0\n" not in f.read():
                fail("the target is still traced")
        stopped = {t: s for t, s in thread_states(target.pid).items() if s in "tT"}
        if stopped:
            fail("target threads left stopped: %r" % stopped)
        print("serve: healthz, index, 400/404/405; two concurrent 2 s scrapes by go tool pprof with heavy "
              "and light on their lines (%s samples) in %.1f s beside a silent client; SIGINT: exit 0, "
              "target untraced" % (totals, took))
    finally:
        if p and p.poll() is None:
            p.kill()
        target.kill()
        target.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

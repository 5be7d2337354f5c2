#!/usr/bin/env python3
"""Integration test: the output formats of issue 12, each read back by the
program (or the rules of the program) that reads it.

    formats_test.py --pyflame BUILD/pyflame --python 3.11 --format flamechart|table|speedscope|chrome

targets/formats.py calls heavy() twice as long as light(). Each format's
stacks must hold exactly those functions on their marked lines; shares are
asserted only as an order with a wide margin (heavy's total above light's).
  flamechart  Pyflame's format: timestamp and stack lines in pairs, read
              with the rules of Pyflame's utils/flame-chart-json (a stack
              is the frames of the line split on ';', the last one empty)
  table       the header and the rows of heavy, light and main
  speedscope  valid against speedscope's own file-format-schema.json (ajv),
              then imported by speedscope in headless Chromium: the page
              names the profile and its Sandwich view lists the functions
  chrome      complete events that nest, then imported by speedscope
A tool that is missing (scripts/test-tools installs them as root) makes
the part that needs it skip, by name; the test then exits 77 only if
nothing was checked by a real reader.
"""
import argparse
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, fail, find_python, markers, summary  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "formats.py")
TOOLS = os.path.join(HERE, "..", "..", ".test-tools", "node_modules")
VIEW = os.path.join(HERE, "formats_view.js")
CHROMIUM = "/usr/bin/chromium"
LINES = markers(TARGET)


def profile(pf, python, fmt, extra=()):
    out = tempfile.mktemp(prefix="pyflame-fmt-", suffix="." + fmt)
    t0 = time.time()
    p = subprocess.run([pf, "-r", "0.001", "-f", fmt, "-o", out] + list(extra) +
                       ["-t", python, TARGET, "1.5"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=120)
    t1 = time.time()
    if p.returncode != 0:
        fail("pyflame -f %s exited %d" % (fmt, p.returncode), p.stdout, p.stderr)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data.decode("utf-8"), p.stderr, t0, t1


def frame(name, line=True):
    """A frame of the target as collapsed output prints it."""
    return "%s:%s:%d" % (TARGET, name, LINES[name]) if line else "%s:%s" % (TARGET, name)


def check_flamechart(pf, python):
    text, err, t0, t1 = profile(pf, python, "flamechart")
    lines = text.split("\n")
    if lines[-1] != "":
        fail("flamechart does not end with a newline", text[-500:], err)
    lines = lines[:-1]
    if len(lines) % 2:
        fail("flamechart has an odd number of lines", text[-500:], err)
    last, seen, samples = 0, {}, 0
    want_heavy = ["%s:<module>:%d" % (TARGET, LINES["module"]), "%s:main:%d" % (TARGET, LINES["call_heavy"]),
                  "%s:heavy:%d" % (TARGET, LINES["heavy"])]
    for ts_line, stack in zip(lines[0::2], lines[1::2]):
        if not re.match(r"^\d+$", ts_line):
            fail("not a timestamp line: %r" % ts_line, text[:500], err)
        ts = int(ts_line)
        if ts < last or not (t0 - 1) * 1e6 <= ts <= (t1 + 1) * 1e6:
            fail("timestamp %d out of order or outside the run (%d..%d)" % (ts, t0 * 1e6, t1 * 1e6))
        last = ts
        samples += 1
        if stack in ("(idle)", "(failed)"):
            continue
        # flame-chart-json: the frames are the ';'-split line, '' skipped.
        if not stack.endswith(";"):
            fail("stack line does not end with ';': %r" % stack)
        frames = [f for f in stack.strip().split(";") if f != ""]
        if frames[-3:] == want_heavy:
            seen["heavy"] = seen.get("heavy", 0) + 1
        if frames[-1] == frame("light"):
            seen["light"] = seen.get("light", 0) + 1
    s = summary(err)
    if samples != s["stacks"] + s["idle"] + s["failed"]:
        fail("flamechart has %d samples, the summary %r" % (samples, s), "", err)
    if seen.get("heavy", 0) <= seen.get("light", 0) or not seen.get("light"):
        fail("heavy/light samples %r" % seen, text[:2000], err)
    print("flamechart: %d samples, timestamps in order, heavy %d, light %d"
          % (samples, seen["heavy"], seen["light"]))


def check_table(pf, python):
    text, err, _, _ = profile(pf, python, "table")
    head = text.splitlines()[:6]
    if not re.match(r"^\d+ samples in [\d.]+ s, one every 0.001 s \(\d+ idle, \d+ failed\): ", head[0]):
        fail("table header: %r" % head[0], text)
    if "no call count" not in head[1] or head[2] != "Sorted by total time.":
        fail("table notes: %r" % head[1:3], text)
    rows = {}
    for line in text.splitlines()[5:]:
        m = re.match(r"^\s*([\d.]+)% +([\d.]+)% +([\d.]+) +([\d.]+)  (\S+) \((.*)\)$", line)
        if not m:
            fail("not a table row: %r" % line, text)
        if m.group(6) == TARGET:
            rows[m.group(5)] = [float(m.group(i)) for i in range(1, 5)]
    for fn in ("heavy", "light", "main", "<module>"):
        if fn not in rows:
            fail("no row for %s" % fn, text)
    if not rows["heavy"][1] > rows["light"][1] > 0 or rows["main"][1] < rows["heavy"][1]:
        fail("shares out of order: %r" % rows, text)
    if rows["main"][0] > rows["heavy"][0]:
        fail("main runs more itself than heavy: %r" % rows, text)
    lines_text, _, _, _ = profile(pf, python, "table", ["--table-lines", "--sort=own"])
    want = "heavy (%s:%d)" % (TARGET, LINES["heavy"])
    first = lines_text.splitlines()[5]
    if not first.endswith(want):
        fail("--sort=own --table-lines: first row %r, not %r" % (first, want), lines_text)
    print("table: rows %s; --table-lines --sort=own starts with %s" % (sorted(rows), want))


def speedscope_view(tmp, name):
    """The profile tmp/name imported by speedscope in Chromium."""
    release = os.path.join(TOOLS, "speedscope", "dist", "release")
    if not (os.path.isdir(os.path.join(TOOLS, "puppeteer-core")) and os.path.isdir(release)
            and os.path.exists(CHROMIUM) and shutil.which("node")):
        print("skipped: speedscope import of %s (speedscope, puppeteer-core, chromium or node "
              "missing: scripts/test-tools)" % name)
        return None
    for f in os.listdir(release):
        dst = os.path.join(tmp, f)
        if not os.path.exists(dst):
            os.symlink(os.path.join(release, f), dst)
    handler = functools.partial(QuietHandler, directory=tmp)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    url = "http://127.0.0.1:%d/index.html#profileURL=http://127.0.0.1:%d/%s" % (port, port, name)
    try:
        p = subprocess.run(["node", VIEW, TOOLS, CHROMIUM, url], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=180)
    finally:
        server.shutdown()
    if p.returncode != 0:
        fail("speedscope did not import %s" % name, p.stdout, p.stderr)
    return json.loads(p.stdout)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def check_view(view, name, want_title):
    if view is None:
        return False
    if view["errors"]:
        fail("speedscope raised errors on %s: %r" % (name, view["errors"]))
    if want_title not in view["title"]:
        fail("speedscope's title %r does not name %r" % (view["title"], want_title))
    # The view is a virtual list: only the rows on screen are in the page,
    # those with the most own time, which main() has none of.
    for fn in ("heavy", "light"):
        # (speedscope names a Chrome event by its name and its args.)
        if not re.search(r"(^|\n)\s*%s( \{.*\})?(\n|$)" % re.escape(fn), view["text"]):
            fail("speedscope's Sandwich view of %s lists no %s" % (name, fn), view["text"][:3000])
    print("%s: imported by speedscope (title %r), Sandwich view lists heavy and light"
          % (name, view["title"]))
    return True


def check_speedscope(pf, python):
    text, err, _, _ = profile(pf, python, "speedscope")
    doc = json.loads(text)
    frames = doc["shared"]["frames"]
    names = {(f["name"], f.get("file"), f.get("line")) for f in frames}
    for fn, mark in (("heavy", "heavy"), ("light", "light")):
        if (fn, TARGET, LINES[mark]) not in names:
            fail("no frame %s at %s:%d" % (fn, TARGET, LINES[mark]), text[:3000])
    prof = doc["profiles"][0]
    total = sum(prof["weights"])
    if abs(total - prof["endValue"]) > 1e-6 or len(prof["samples"]) != len(prof["weights"]):
        fail("weights do not add up: %r vs %r" % (total, prof["endValue"]))
    checked = False
    tmp = tempfile.mkdtemp(prefix="pyflame-speedscope-")
    with open(os.path.join(tmp, "profile.speedscope.json"), "w") as f:
        f.write(text)
    schema = os.path.join(TOOLS, "speedscope", "dist", "release", "file-format-schema.json")
    if os.path.exists(schema) and shutil.which("node"):
        js = ("const Ajv=require(%r);const a=new Ajv({strict:false});"
              "const v=a.compile(require(%r));const ok=v(require(%r));"
              "if(!ok){console.log(JSON.stringify(v.errors));process.exit(1)}"
              % (os.path.join(TOOLS, "ajv"), schema, os.path.join(tmp, "profile.speedscope.json")))
        p = subprocess.run(["node", "-e", js], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        if p.returncode != 0:
            fail("not valid against speedscope's schema: %s" % (p.stdout + p.stderr)[:3000])
        print("speedscope: valid against speedscope %s's file-format-schema.json" % tool_version("speedscope"))
        checked = True
    else:
        print("skipped: speedscope schema check (speedscope or node missing)")
    view = speedscope_view(tmp, "profile.speedscope.json")
    checked |= check_view(view, "speedscope", doc["name"])
    return checked


def check_chrome(pf, python):
    text, err, t0, t1 = profile(pf, python, "chrome")
    doc = json.loads(text)
    events = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    if not events:
        fail("no complete events", text[:2000])
    # Events of one track nest: each lies within any other it overlaps.
    by_tid = {}
    for e in events:
        by_tid.setdefault(e["tid"], []).append(e)
    for tid, evs in by_tid.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_ = []
        for e in evs:
            while open_ and open_[-1]["ts"] + open_[-1]["dur"] <= e["ts"]:
                open_.pop()
            if open_ and e["ts"] + e["dur"] > open_[-1]["ts"] + open_[-1]["dur"]:
                fail("events overlap without nesting: %r and %r" % (open_[-1], e))
            open_.append(e)
    # heavy() runs its loop line; on entry (3.11+) it may show its def line.
    heavy = [e for e in events if e["name"] == "heavy"]
    lines = {e["args"]["line"] for e in heavy if e["args"].get("file") == TARGET}
    if not heavy or LINES["heavy"] not in lines or lines - {LINES["heavy"], LINES["heavy_def"]}:
        fail("heavy's events are on lines %r, not %d" % (sorted(lines), LINES["heavy"]), text[:2000])
    if not all((t0 - 1) * 1e6 <= e["ts"] <= (t1 + 1) * 1e6 for e in events):
        fail("event times outside the run")
    print("chrome: %d complete events that nest; heavy at line %d" % (len(events), LINES["heavy"]))
    tmp = tempfile.mkdtemp(prefix="pyflame-chrome-")
    with open(os.path.join(tmp, "trace.json"), "w") as f:
        f.write(text)
    return check_view(speedscope_view(tmp, "trace.json"), "chrome", "trace.json")


FORMATS = ["collapsed", "flamechart", "speedscope", "chrome", "table", "pprof", "svg"]


def readable(fmt, data):
    """data parses as fmt, as far as Python's standard library can tell."""
    if fmt in ("speedscope", "chrome"):
        json.loads(data.decode("utf-8"))
    elif fmt == "pprof":
        import gzip
        if not gzip.decompress(data):
            raise ValueError("empty profile")
    elif fmt == "svg":
        import xml.etree.ElementTree as ET
        ET.fromstring(data)
    else:
        data.decode("utf-8")


def check_options(pf, python):
    """Every format with the options that change what a stack holds:
    --threads --show-threads (thread frames), -n (no lines), -x (no idle),
    and --native (C frames) where this build has it."""
    sets = [["--threads", "--show-threads", "-n", "-x"]]
    if "libunwind" not in subprocess.run([pf, "--native", "-d", "-p", "1"], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, universal_newlines=True).stderr:
        sets.append(["--native"])
    for opts in sets:
        for fmt in FORMATS:
            out = tempfile.mktemp(prefix="pyflame-opt-")
            p = subprocess.run([pf, "-r", "0.002", "-f", fmt, "-o", out] + opts + ["-t", python, TARGET, "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=120)
            if p.returncode != 0:
                fail("-f %s %s: exit %d" % (fmt, " ".join(opts), p.returncode), p.stdout, p.stderr)
            with open(out, "rb") as f:
                data = f.read()
            os.unlink(out)
            try:
                readable(fmt, data)
            except Exception as e:  # noqa: BLE001 - any parse error is the failure
                fail("-f %s %s: not readable: %s" % (fmt, " ".join(opts), e), data[:1000].decode("utf-8", "replace"))
            text = data.decode("utf-8", "replace") if fmt != "pprof" else ""
            if "--show-threads" in opts and fmt in ("collapsed", "flamechart") and "(thread " not in text:
                fail("-f %s %s: no thread frame" % (fmt, " ".join(opts)), text[:1000])
            if "-n" in opts and fmt == "collapsed" and re.search(r":heavy:\d", text):
                fail("-f collapsed -n: a line number is shown", text[:1000])
        print("options: %s, each with %s" % (", ".join(FORMATS), " ".join(opts)))


def tool_version(pkg):
    try:
        with open(os.path.join(TOOLS, pkg, "package.json")) as f:
            return json.load(f)["version"]
    except (IOError, OSError, ValueError, KeyError):
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--format", required=True,
                    choices=["flamechart", "table", "speedscope", "chrome", "options"])
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    print("interpreter: %s" % python)
    pf = os.path.abspath(a.pyflame)
    if a.format == "flamechart":
        check_flamechart(pf, python)
    elif a.format == "table":
        check_table(pf, python)
    elif a.format == "options":
        check_options(pf, python)
    elif a.format == "speedscope":
        if not check_speedscope(pf, python):
            return SKIP
    else:
        if not check_chrome(pf, python):
            return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())

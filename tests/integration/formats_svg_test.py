#!/usr/bin/env python3
"""Integration test: the svg format (src/output/writer_svg.c) on a real CPython 3.11.

    formats_svg_test.py --pyflame BUILD/pyflame --python 3.11 --node-prefix DIR

pyflame attaches to targets/formats_svg.py for 2 s with -o profile.svg (the
format picked by the extension) and once with -f svg to stdout, then:

  xml       the file is well-formed: xmllint --noout, and Python's parser;
            the boxes of the target's functions are there with their exact
            files and lines, the root at the bottom;
  render    headless Chromium (/usr/bin/chromium --screenshot) draws it:
            the PNG is not blank (many colours, no one colour everywhere);
  browser   puppeteer-core (npm, installed into --node-prefix) drives it:
            Ctrl-F focuses the search, typing "beta" highlights only beta's
            boxes and shows a matched share that is the union of the
            matching samples, computed here from the file (hidden boxes
            included: "tiny_" matches mostly boxes too narrow to draw) and
            plausible for the target; hovering shows a box's samples;
            clicking zooms (the box takes the full width), and Reset zoom
            puts it back. No page error, no request but the file.

Exit 77 (skipped) without the interpreter or xmllint; render and browser
are skipped by name when Chromium, node or npm is missing, or npm cannot
install puppeteer-core.
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import SKIP, check_released, fail, find_python, markers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "formats_svg.py")
DRIVER = os.path.join(HERE, "formats_svg_browser.js")
CHROMIUM = "/usr/bin/chromium"
PUPPETEER = "puppeteer-core@24.43.1"  # the last line that runs on Node 18 and 20
SVG = "{http://www.w3.org/2000/svg}"
GRAPH_W = 1180.0  # src/output/writer_svg.c: GRAPH_W


def profile(pyflame, pid, args):
    p = subprocess.run([pyflame, "-s", "2", "-r", "0.001"] + args + ["-p", str(pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        fail("pyflame %s exited %d" % (" ".join(args), p.returncode), "",
             p.stderr.decode("utf-8", "replace"))
    return p.stdout, p.stderr.decode("utf-8", "replace")


def boxes(root):
    """Every drawn box: its name (the tooltip before ": N samples"), place
    in samples, row, and its rect's geometry."""
    out = []
    for g in root.find(SVG + "g[@id='pf-frames']"):
        title = g.find(SVG + "title").text
        rect = g.find(SVG + "rect")
        out.append({"name": re.sub(r": \d+ samples?, [\d.]+%$", "", title, flags=re.S),
                    "title": title, "o": int(g.get("data-o")), "n": int(g.get("data-n")),
                    "d": int(g.get("data-d")), "i": int(g.get("data-i")),
                    "x": float(rect.get("x")), "y": float(rect.get("y")),
                    "w": float(rect.get("width"))})
    return out


def matched_samples(data, drawn, query):
    """What the search must report for query: the union of the sample spans
    of every box whose name matches (a regular expression), drawn or not,
    "all" left out."""
    names = data["names"]
    hit = [re.search(query, n) is not None for n in names]
    spans = [(b["o"], b["n"]) for b in drawn if b["d"] > 0 and hit[b["i"]]]
    h = data["hidden"]
    spans += [(h[k + 1], h[k + 2]) for k in range(0, len(h), 3) if hit[h[k]]]
    total, end = 0, 0
    for o, n in sorted(spans):
        lo, hi = max(o, end), o + n
        if hi > lo:
            total += hi - lo
        end = max(end, hi)
    return total, sum(1 for k in range(0, len(h), 3) if hit[h[k]])


def check_xml(path, svg_bytes, lines):
    p = subprocess.run(["xmllint", "--noout", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        fail("xmllint --noout: exit %d\n%s" % (p.returncode, p.stderr))
    root = ET.fromstring(svg_bytes)
    if root.tag != SVG + "svg":
        fail("the root element is %s, not svg" % root.tag)
    drawn = boxes(root)
    data = json.loads(root.find(SVG + "script[@id='pf-data']").text)
    by_name = {}
    for b in drawn:
        by_name.setdefault(b["name"], []).append(b)
    want = {"alpha": "%s:%d" % (TARGET, lines["alpha"]), "beta": "%s:%d" % (TARGET, lines["beta"]),
            "spin": "%s:%d" % (TARGET, lines["spin"]),
            "main": "%s:%d" % (TARGET, lines["main_alpha"]),
            "<module>": "%s:%d" % (TARGET, lines["module"])}
    for func, where in want.items():
        if "%s (%s)" % (func, where) not in by_name:
            fail("no box for %s (%s); boxes: %s" % (func, where, sorted(by_name)[:20]))
    all_box = by_name["all"][0]
    if all_box["o"] != 0 or all_box["n"] != data["total"] or abs(all_box["w"] - GRAPH_W) > 0.01:
        fail("the root box does not span every sample: %r (total %d)" % (all_box, data["total"]))
    # Root at the bottom: every other box is above it.
    if any(b["y"] >= all_box["y"] for b in drawn if b is not all_box):
        fail("a box is drawn at or below the root")
    # Geometry from samples: x and width in proportion, to the rounding.
    for b in drawn:
        if abs(b["x"] - (10 + b["o"] * GRAPH_W / data["total"])) > 0.006 or \
                abs(b["w"] - b["n"] * GRAPH_W / data["total"]) > 0.006:
            fail("box %r is not where its samples put it" % b)
    print("xml: %d boxes drawn, %d hidden, %d samples; xmllint ok"
          % (len(drawn), len(data["hidden"]) // 3, data["total"]))
    return root, drawn, data


def png_pixels(path):
    """(width, height, rows of pixel tuples) of an 8-bit RGB or RGBA PNG,
    not interlaced: what Chromium writes."""
    with open(path, "rb") as f:
        png = f.read()
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s is not a PNG" % path)
    pos, idat = 8, b""
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail("PNG of a kind this test does not decode: depth %d, colour type %d, interlace %d"
             % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, rows = bytearray(stride), []
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def chromium_flags(tmp):
    # Keep Chromium off the network it would otherwise try (updates, sync,
    # QUIC); --no-sandbox: the tests run as root.
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--user-data-dir=" + os.path.join(tmp, "chromium-profile")]


def check_render(path, root, tmp):
    if not os.access(CHROMIUM, os.X_OK):
        print("render: skipped: chromium not installed (%s)" % CHROMIUM)
        return
    height = int(root.get("height"))
    png = os.path.join(tmp, "render.png")
    p = subprocess.run([CHROMIUM] + chromium_flags(tmp) + [
        "--window-size=1200,%d" % height, "--screenshot=" + png, "file://" + path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if p.returncode != 0 or not os.path.exists(png):
        fail("chromium --screenshot exited %d\n%s" % (p.returncode, p.stderr[-2000:]))
    w, h, rows = png_pixels(png)
    colours = {}
    for row in rows:
        for px in row:
            colours[px] = colours.get(px, 0) + 1
    top = max(colours.values())
    # The boxes of a dozen functions, text and the background: a blank or
    # unrendered page is one colour, or nearly.
    if len(colours) < 20 or top > 0.9 * w * h:
        fail("the screenshot looks blank: %d colours, the commonest on %.0f%% of %dx%d pixels"
             % (len(colours), 100.0 * top / (w * h), w, h))
    print("render: %dx%d, %d colours, the commonest on %.0f%% (%s)"
          % (w, h, len(colours), 100.0 * top / (w * h), png))


def install_puppeteer(prefix):
    """The directory holding node_modules/puppeteer-core, installed on first
    use; None, said why, when it cannot be."""
    mod = os.path.join(prefix, "node_modules", "puppeteer-core", "package.json")
    if os.path.exists(mod):
        with open(mod) as f:
            if json.load(f).get("version") == PUPPETEER.split("@")[1]:
                return os.path.join(prefix, "node_modules")
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            print("browser: skipped: %s not installed" % tool)
            return None
    env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1")
    try:
        p = subprocess.run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund",
                            "--loglevel=error", PUPPETEER], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    except subprocess.TimeoutExpired:
        print("browser: skipped: npm install %s took over 300 s" % PUPPETEER)
        return None
    if p.returncode != 0 or not os.path.exists(mod):
        print("browser: skipped: npm install %s failed (exit %d): %s"
              % (PUPPETEER, p.returncode, p.stderr.strip()[-500:]))
        return None
    return os.path.join(prefix, "node_modules")


def check_browser(path, root, drawn, data, prefix, tmp):
    if not os.access(CHROMIUM, os.X_OK):
        print("browser: skipped: chromium not installed (%s)" % CHROMIUM)
        return
    modules = install_puppeteer(prefix)
    if not modules:
        return
    results = {}
    for query, func in (("beta", "alpha"), ("tiny_", "gamma")):
        shot = os.path.join(tmp, "search-%s.png" % query.strip("_"))
        p = subprocess.run(["node", DRIVER, path, CHROMIUM, query, func, shot],
                           env=dict(os.environ, NODE_PATH=modules), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=180)
        if p.returncode != 0:
            fail("the browser driver exited %d\n%s" % (p.returncode, p.stderr[-3000:]))
        results[query] = r = json.loads(p.stdout)
        if r["errors"]:
            fail("errors in the page: %s" % r["errors"])
        if r["requests"]:
            fail("the page asked for something other than the file: %s" % r["requests"])
        if r["focused"] != "pf-search":
            fail("Ctrl-F focused %r, not the search box" % r["focused"])
        total = data["total"]
        want, hidden = matched_samples(data, drawn, query)
        m = re.match(r"Matched: ([\d.]+)% \((\d+) of (\d+) samples?\)$", r["matched"])
        if not m:
            fail("search %r: no matched share shown: %r" % (query, r["matched"]))
        pct, got, of = float(m.group(1)), int(m.group(2)), int(m.group(3))
        if of != total or got != want or abs(pct - 100.0 * want / total) > 0.006:
            fail("search %r shows %r; the file says %d of %d samples match (%d hidden boxes)"
                 % (query, r["matched"], want, total, hidden))
        # Every drawn box that matches, and only those, is highlighted; a
        # loaded machine may leave every "tiny_" box too narrow to draw.
        names = data["names"]
        drawn_hits = sum(1 for b in drawn if b["d"] > 0 and re.search(query, names[b["i"]]))
        if len(r["highlighted"]) != drawn_hits or not all(re.search(query, t) for t in r["highlighted"]):
            fail("search %r highlighted %d boxes, %d drawn match: %s"
                 % (query, len(r["highlighted"]), drawn_hits, r["highlighted"][:10]))
        if r["matchedAfterEscape"].strip() or r["highlightedAfterEscape"]:
            fail("Escape did not clear the search: %r" % r["matchedAfterEscape"])
        print("browser: search %r: %s; drawn boxes highlighted: %d, hidden boxes counted: %d"
              % (query, r["matched"], len(r["highlighted"]), hidden))
        # Hover, zoom and reset on the widest box of func.
        b, z, back = r["before"], r["zoomed"], r["reset"]
        if not b:
            fail("no box of %s to click" % func)
        if not re.match(r"%s \(.*\): \d+ samples?, [\d.]+%%$" % func, r["details"]):
            fail("hovering %s shows %r" % (func, r["details"]))
        if not z or abs(z["width"] - GRAPH_W) > 0.01 or z["x"] != 10 or not z["shown"]:
            fail("clicking %s (width %.2f) did not zoom it to the full width: %r" % (func, b["width"], z))
        if r["visibleZoomed"] >= r["visibleBefore"] or r["unzoomShown"] != "visible":
            fail("zoomed on %s, %d of %d boxes still shown, reset is %s"
                 % (func, r["visibleZoomed"], r["visibleBefore"], r["unzoomShown"]))
        # The script re-places every box from its samples: the same x and
        # width as pyflame wrote, to the rounding (C's printf and JS's
        # toFixed may round an exact tie apart), and the same label cut.
        if not back or abs(back["x"] - b["x"]) > 0.011 or abs(back["width"] - b["width"]) > 0.011 \
                or back["label"] != b["label"] or r["visibleReset"] != r["visibleBefore"]:
            fail("Reset zoom did not restore %s: %r, was %r" % (func, back, b))
        print("browser: %s: %s; click: width %.2f -> %.2f, %d -> %d boxes shown; reset ok"
              % (func, r["details"], b["width"], z["width"], r["visibleBefore"], r["visibleZoomed"]))
    # Plausible for the target: beta spins half as long as alpha, and the
    # two most of the time; load stretches both alike.
    r = results["beta"]
    share = float(re.match(r"Matched: ([\d.]+)%", r["matched"]).group(1))
    alpha = max(b["n"] for b in drawn if b["name"].startswith("alpha ("))
    if not 10 <= share <= 60 or not 100.0 * alpha / data["total"] > share:
        fail("beta matched %.2f%% of samples, alpha's box %.2f%%: not what the target does"
             % (share, 100.0 * alpha / data["total"]))
    print("browser: %s" % r["version"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--node-prefix", required=True,
                    help="where npm installs puppeteer-core (a cache in the build directory)")
    a = ap.parse_args()
    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    if not shutil.which("xmllint"):
        print("skipped: xmllint not installed")
        return SKIP
    print("interpreter: %s" % python)
    tmp = tempfile.mkdtemp(prefix="pyflame-svg-")
    ready = os.path.join(tmp, "ready")
    path = os.path.join(tmp, "profile.svg")
    target = subprocess.Popen([python, TARGET, ready, "60"])
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if target.poll() is not None or time.time() > deadline:
                fail("the target did not start")
            time.sleep(0.01)
        out, err = profile(a.pyflame, target.pid, ["-o", path])
        if out:
            fail("pyflame -o wrote to stdout: %r" % out[:200])
        check_released(target, "", err)
        out2, err2 = profile(a.pyflame, target.pid, ["-f", "svg"])
        if not out2.startswith(b"<?xml") or b"</svg>\n" not in out2[-16:]:
            fail("-f svg did not write an svg document to stdout: %r" % out2[:200], "", err2)
    finally:
        target.kill()
        target.wait()
    with open(path, "rb") as f:
        svg = f.read()
    lines = markers(TARGET)
    root, drawn, data = check_xml(path, svg, lines)
    ET.fromstring(out2)
    check_render(path, root, tmp)
    check_browser(path, root, drawn, data, a.node_prefix, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# -*- coding: utf-8 -*-
"""Capture line tables from real CPython interpreters for test_linetable.c.

Two modes:

  python gen_linetable_vectors.py --dump
      Run by any CPython 2.7 or 3.6+: compile the sample functions below and
      print, as JSON, each code object's line table bytes, co_firstlineno,
      bytecode length, and for every instruction offset the line the
      interpreter itself reports (dis.findlinestarts up to 3.9, co_lines() in
      3.10, co_positions() from 3.11). Each answer is cross-checked against
      the interpreter's C function PyCode_Addr2Line through ctypes.

  python3 gen_linetable_vectors.py [-o FILE] [PYTHON ...]
      Run --dump under each interpreter (default: every
      $(pyenv root)/versions/*/bin/python, and each 3.11+ once more with
      -X no_debug_ranges, which makes the compiler emit the no-column entry
      kind 13) and write the C header tests/unit/linetable_vectors.h.

Regenerate with:
  python3 tests/unit/gen_linetable_vectors.py -o tests/unit/linetable_vectors.h
"""
from __future__ import print_function

import dis
import glob
import json
import os
import subprocess
import sys
import textwrap

# Each sample is compiled on its own, so its line numbers are fixed by the
# text here. (name, source, needs_py3)
SAMPLES = [
    # The worked example of docs/cpython-internals.md §8.5, at line 1.
    ("small", u"def small(a):\n    b = (a +\n         1)\n    return b\n", False),
    # A multi-line call: 3.8+ attribute the CALL back to the first line
    # (negative deltas); a lambda nested inside.
    ("multiline_call",
     u"\n" * 9 +
     u"def multiline_call(f, x, y):\n"
     u"    r = f(\n"
     u"        x,\n"
     u"        y *\n"
     u"        2,\n"
     u"        key=lambda v: (v +\n"
     u"                       1),\n"
     u"    )\n"
     u"    return [r,\n"
     u"            x]\n", False),
    # Line jumps of +140 and +300: split lnotab pairs, long 3.10 pairs,
    # multi-byte varints in 3.11+. First line 1000.
    ("big_jumps",
     u"\n" * 999 +
     u"def big_jumps():\n"
     u"    a = 1\n" + u"\n" * 140 +
     u"    b = 2\n" + u"\n" * 300 +
     u"    return a + b\n", False),
    # Loops jump backwards; the condition split over two lines.
    ("loop",
     u"\n" * 49 +
     u"def loop(n):\n"
     u"    total = 0\n"
     u"    i = 0\n"
     u"    while i < n:\n"
     u"        if i % 3 == 0:\n"
     u"            total += i\n"
     u"        elif (i %\n"
     u"              5 == 0):\n"
     u"            total -= 1\n"
     u"        i += 1\n"
     u"    for j in range(n):\n"
     u"        total += j\n"
     u"    return total\n", False),
    # Exception handling: no-line ranges in 3.10, RERAISE/PUSH_EXC_INFO/
    # POP_EXCEPT/COPY with no location in 3.11+.
    ("tryexc",
     u"\n" * 199 +
     u"def tryexc(f):\n"
     u"    try:\n"
     u"        f()\n"
     u"    except ValueError as e:\n"
     u"        return str(e)\n"
     u"    except Exception:\n"
     u"        raise\n"
     u"    finally:\n"
     u"        f = None\n"
     u"    with open(__file__) as fp:\n"
     u"        fp.read()\n"
     u"    return 0\n", False),
    # A generator with a cell: GEN_START (3.10), MAKE_CELL/COPY_FREE_VARS/
    # RETURN_GENERATOR (3.11+) and the nested closure.
    ("closure_gen",
     u"\n" * 299 +
     u"def closure_gen(n):\n"
     u"    k = n\n"
     u"    def inner():\n"
     u"        return k\n"
     u"    yield inner()\n"
     u"    for i in range(n):\n"
     u"        yield (i,\n"
     u"               k)\n", False),
    # Columns past 127 force the long entry kind (14) in 3.11+.
    ("long_columns",
     u"\n" * 399 +
     u"def long_columns(a):\n"
     u"    return [" + u", ".join([u"a[%d]" % i for i in range(40)]) + u"]\n", False),
    # A decorator: co_firstlineno is the decorator's line.
    ("decorated",
     u"\n" * 499 +
     u"@staticmethod\n"
     u"def decorated(x):\n"
     u"    return x\n", False),
    # A non-ASCII function name (identifiers are ASCII-only in 2.7).
    (u"r\u00e9sum\u00e9_\u03c0",
     u"\n" * 599 +
     u"def r\u00e9sum\u00e9_\u03c0(x):\n"
     u"    return (x *\n"
     u"            2)\n", True),
]


def code_objects(code, prefix):
    """The code object and every code object nested in its constants."""
    yield prefix, code
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            for item in code_objects(c, prefix + "." + c.co_name):
                yield item


def addr2line():
    try:
        import ctypes
        f = ctypes.pythonapi.PyCode_Addr2Line
    except Exception:  # no ctypes in this build: skip the cross-check
        return None
    f.argtypes = [ctypes.py_object, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


def table_of(code):
    if sys.version_info >= (3, 10):
        return code.co_linetable
    return code.co_lnotab


def kind_of():
    if sys.version_info < (3, 0):
        return "PF_LT_LNOTAB_27"
    if sys.version_info < (3, 10):
        return "PF_LT_LNOTAB_36"
    if sys.version_info < (3, 11):
        return "PF_LT_LINETABLE_310"
    return "PF_LT_LOCATIONS_311"


def expected_lines(code):
    """(step, [line or None for offsets 0, step, 2*step, ... < len(co_code)]),
    from the interpreter's own Python-level API."""
    n = len(code.co_code)
    if sys.version_info < (3, 10):
        # Every byte offset on 2.7 (1- and 3-byte instructions), every
        # 2-byte instruction from 3.6. The line of an offset is that of the
        # last line start at or before it.
        step = 1 if sys.version_info < (3, 0) else 2
        starts = list(dis.findlinestarts(code))
        assert starts and starts[0][0] == 0, starts
        out = []
        for off in range(0, n, step):
            line = None
            for addr, ln in starts:
                if addr <= off:
                    line = ln
            out.append(line)
        return step, out
    if sys.version_info < (3, 11):
        ranges = list(code.co_lines())
        out = []
        for off in range(0, n, 2):
            hits = [ln for (start, end, ln) in ranges if start <= off < end]
            assert len(hits) == 1, (code.co_name, off, ranges)
            out.append(hits[0])
        assert ranges[-1][1] == n, (ranges[-1], n)  # exactly covers the code
        return 2, out
    positions = list(code.co_positions())
    assert len(positions) == n // 2, (len(positions), n)
    return 2, [p[0] for p in positions]


def dump():
    a2l = addr2line()
    out = []
    for name, src, py3 in SAMPLES:
        if py3 and sys.version_info < (3, 0):
            continue
        if sys.version_info < (3, 0):
            src = src.encode("utf-8")
        module = compile(src, "sample.py", "exec")
        found = [c for c in module.co_consts if hasattr(c, "co_code")]
        assert len(found) == 1, name
        for qual, code in code_objects(found[0], found[0].co_name):
            step, lines = expected_lines(code)
            if a2l is not None:
                for i, ln in enumerate(lines):
                    got = a2l(code, i * step)
                    assert got == (-1 if ln is None else ln), (qual, i * step, got, ln)
                assert a2l(code, -1) == code.co_firstlineno
            table = bytearray(table_of(code))
            if isinstance(qual, bytes):
                qual = qual.decode("utf-8")
            out.append({
                "func": qual,
                "firstlineno": code.co_firstlineno,
                "code_len": len(code.co_code),
                "table": list(table),
                "step": step,
                "lines": [-1 if ln is None else ln for ln in lines],
            })
    v = sys.version_info
    xoptions = getattr(sys, "_xoptions", {})
    print(json.dumps({
        "version": "%d.%d.%d" % (v[0], v[1], v[2]),
        "flags": " -X no_debug_ranges" if "no_debug_ranges" in xoptions else "",
        "kind": kind_of(),
        "vectors": out,
    }))


def pyenv_pythons():
    root = os.environ.get("PYENV_ROOT")
    if not root:
        try:
            root = subprocess.check_output(["pyenv", "root"]).decode().strip()
        except Exception:
            root = os.path.expanduser("~/.pyenv")
    return glob.glob(os.path.join(root, "versions", "*", "bin", "python"))


def c_ident(s):
    return "".join(ch if ch.isalnum() and ord(ch) < 128 else "_" for ch in s)


def c_string(s):
    # Non-ASCII as octal escapes of its UTF-8 bytes, so the header is ASCII.
    out = []
    for b in bytearray(s.encode("utf-8")):
        if 32 <= b < 127 and chr(b) not in '"\\':
            out.append(chr(b))
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def c_array(ctype, name, values, fmt):
    lines = ["static const %s %s[] = {" % (ctype, name)]
    for i in range(0, len(values), 12):
        lines.append("    " + ", ".join(fmt % v for v in values[i:i + 12]) + ",")
    lines.append("};")
    return "\n".join(lines)


def generate(pythons):
    runs = []
    for py in pythons:
        variants = [[]]
        ver = subprocess.check_output([py, "-c", "import sys; print(sys.version_info[:2])"])
        if eval(ver.decode()) >= (3, 11):
            variants.append(["-X", "no_debug_ranges"])
        for extra in variants:
            raw = subprocess.check_output([py] + extra + [os.path.abspath(__file__), "--dump"])
            runs.append(json.loads(raw.decode("utf-8")))
    runs.sort(key=lambda r: ([int(x) for x in r["version"].split(".")], r["flags"]))

    body, entries = [], []
    for r in runs:
        tag = "V" + c_ident(r["version"] + r["flags"])
        for vec in r["vectors"]:
            ident = tag + "_" + c_ident(vec["func"])
            body.append(c_array("uint8_t", ident + "_table", vec["table"] or [0], "0x%02x"))
            body.append(c_array("int", ident + "_lines", vec["lines"], "%d"))
            entries.append(
                "    {%s, %s, %s, %d, %s_table, %d, %d, %d, %s_lines, %d}," % (
                    c_string(r["version"] + r["flags"]), c_string(vec["func"]), r["kind"],
                    vec["firstlineno"], ident, len(vec["table"]), vec["code_len"],
                    vec["step"], ident, len(vec["lines"])))
    versions = textwrap.wrap("CPython " + ", ".join(r["version"] + r["flags"] for r in runs) + ".",
                             width=76, break_on_hyphens=False)
    return "\n".join([
        "/* GENERATED by tests/unit/gen_linetable_vectors.py from the interpreters",
    ] + [" * " + line for line in versions] + [
        " * Do not edit; re-run the script. Included once, by test_linetable.c only:",
        " * it defines the arrays it declares. */",
        "#ifndef PYFLAME_TEST_LINETABLE_VECTORS_H",
        "#define PYFLAME_TEST_LINETABLE_VECTORS_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#include \"pyflame/layout.h\"",
        "",
        "struct lt_vector {",
        "    const char *python;         /* the interpreter that compiled it */",
        "    const char *func;           /* code object, dotted for nested ones */",
        "    enum pf_linetable_kind kind;",
        "    int firstlineno;",
        "    const uint8_t *table;       /* co_lnotab or co_linetable */",
        "    size_t table_len;",
        "    size_t code_len;            /* bytes of bytecode */",
        "    unsigned step;              /* lines[i] is the line at byte offset i * step */",
        "    const int *lines;           /* -1: no line (None) */",
        "    size_t nlines;",
        "};",
        "",
    ] + body + [
        "",
        "static const struct lt_vector LT_VECTORS[] = {",
    ] + entries + [
        "};",
        "",
        "#endif",
        "",
    ])


def main():
    args = sys.argv[1:]
    if args == ["--dump"]:
        dump()
        return
    out = None
    if len(args) >= 2 and args[0] in ("-o", "--output"):
        out, args = args[1], args[2:]
    text = generate(args or pyenv_pythons())
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()

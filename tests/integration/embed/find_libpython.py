#!/usr/bin/env python3
"""Print "X.Y<TAB>INCLUDE_DIR<TAB>LIB_DIR<TAB>LIB_NAME" for the newest pyenv
CPython 3.x that has both its headers and a shared libpython, for building
host.c linked with it (meson, at configure time). Prints nothing if there is
none; the test that needs it then reports itself skipped."""
import glob
import os
import re
import sys

# pyenv_root is shared with the test drivers one directory up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from run import pyenv_root  # noqa: E402




def main():
    best = None
    for prefix in glob.glob(os.path.join(pyenv_root(), "versions", "3.*")):
        m = re.search(r"/(3)\.(\d+)\.(\d+)$", prefix)
        if not m:
            continue
        xy = "3.%s" % m.group(2)
        key = (int(m.group(2)), int(m.group(3)))
        for abi in ("", "m"):
            inc = os.path.join(prefix, "include", "python" + xy + abi)
            lib = os.path.join(prefix, "lib", "libpython%s%s.so" % (xy, abi))
            if os.path.isfile(os.path.join(inc, "Python.h")) and os.path.exists(lib):
                if best is None or key > best[0]:
                    best = (key, xy, inc, os.path.dirname(lib), "python" + xy + abi)
    if best:
        print("\t".join(best[1:]))


if __name__ == "__main__":
    main()

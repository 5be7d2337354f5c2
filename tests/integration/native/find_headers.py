#!/usr/bin/env python3
"""Print "TAG<TAB>INCLUDE_DIR" for every CPython whose headers are installed:
the newest pyenv build of each minor version (2.7, 3.6-3.13, ...) and
Debian's python3.11 (/usr/include/python3.11, from python3.11-dev). Run by
meson at configure time to build tests/integration/native/pfnative.c once per
version. The tags are run.py's --python spellings."""
import glob
import os
import re
import sys

# pyenv_root is shared with the test drivers one directory up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from run import pyenv_root  # noqa: E402




def main():
    newest = {}
    for inc in glob.glob(os.path.join(pyenv_root(), "versions", "*", "include", "python*")):
        m = re.search(r"/(\d+)\.(\d+)\.(\d+)/include/python\d+\.\d+m?$", inc)
        if not m or not os.path.isfile(os.path.join(inc, "Python.h")):
            continue
        tag = "%s.%s" % (m.group(1), m.group(2))
        patch = int(m.group(3))
        if tag not in newest or patch > newest[tag][0]:
            newest[tag] = (patch, inc)
    for tag in sorted(newest, key=lambda t: tuple(int(x) for x in t.split("."))):
        print("%s\t%s" % (tag, newest[tag][1]))
    debian = "/usr/include/python3.11"
    if os.path.isfile(os.path.join(debian, "Python.h")) and os.path.isfile("/usr/bin/python3.11"):
        print("debian-3.11\t%s" % debian)


if __name__ == "__main__":
    main()

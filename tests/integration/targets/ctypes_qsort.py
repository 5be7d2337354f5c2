# A target for pyflame's GIL-release test; runs on Python 2.7 and 3.6+.
# Usage: ctypes_qsort.py READY SECONDS
# Sorts arrays with libc's qsort through ctypes, with a Python comparison
# function: ctypes releases the GIL around the foreign call and every call
# of the comparison takes it back, so the GIL changes state tens of
# thousands of times a second, often between pyflame's look and its stop.
import ctypes
import ctypes.util
import os
import sys
import time

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


def compare(a, b):
    return a[0] - b[0]  # LINE compare


compare_c = COMPARE(compare)


def sort_once(n):
    values = (ctypes.c_int * n)(*range(n, 0, -1))
    libc.qsort(values, n, ctypes.sizeof(ctypes.c_int), compare_c)  # LINE qsort


def main():
    ready, seconds = sys.argv[1], float(sys.argv[2])
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    end = time.time() + seconds
    while time.time() < end:
        sort_once(300)  # LINE main


main()  # LINE module

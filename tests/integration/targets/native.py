# Integration target for --native; runs on Python 2.7 and 3.6+.
# Usage: native.py MODULE_DIR MODULE READY_PATH [SECONDS]
# The main thread calls outer(), which calls the C function MODULE.call()
# (tests/integration/native/pfnative.c), which calls inner() back, which
# spins: the stack runs Python -> C -> Python. A second thread sleeps in
# time.sleep, so its stack ends in a libc call. READY_PATH is written once
# both are in place; with SECONDS > 0 the program exits after that long.
# Keep the marked lines where they are, or update native_test.py.
import os
import sys
import threading
import time


def sleeper(seconds):
    time.sleep(seconds)  # LINE sleeper
    os._exit(0)


def inner(ready):
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    while 1: pass  # LINE inner


def outer(ext, ready):
    ext.call(inner, ready)  # LINE outer


def main():
    sys.path.insert(0, sys.argv[1])
    ext = __import__(sys.argv[2])
    ready = sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0
    t = threading.Thread(target=sleeper, args=(seconds if seconds > 0 else 3600,))
    t.daemon = True
    t.start()
    time.sleep(0.1)  # let the sleeper reach its call
    outer(ext, ready)  # LINE main


main()  # LINE module

# Integration target for the output formats; runs on Python 2.7 and 3.6+.
# Usage: formats_pprof.py READY_PATH
# Spins in one known call chain until killed, one frame of it a lambda, so
# a name in angle brackets ("<lambda>", "<module>") must come through each
# format as it is. Every 30 ms of spinning it sleeps 10 ms, without the GIL,
# so a profile has idle samples too. Writes READY_PATH once it spins. The
# tests assert the exact names and line numbers of the marked lines: keep
# them in place or update tests/integration/formats_pprof_test.py (targets/formats_pprof.py).
import os
import sys
import time


def leaf(ready):
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    while True:
        end = time.time() + 0.03
        while time.time() < end: pass  # LINE leaf
        time.sleep(0.01)


def middle(ready):
    call = lambda: leaf(ready)  # LINE lambda
    call()  # LINE middle


def main():
    middle(sys.argv[1])  # LINE main


main()  # LINE module

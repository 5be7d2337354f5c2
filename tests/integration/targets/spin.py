# A target for pyflame's integration tests; runs on Python 2.7 and 3.6+.
# The test asserts the exact names and line numbers of this call chain, so
# keep each marked line where it is, or update tests/integration/run.py.
import os
import sys
import time


def leaf(deadline, ready):
    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write("ready\n")
        os.rename(ready + ".tmp", ready)
    while deadline == 0 or time.time() < deadline: pass  # LINE leaf


def middle(deadline, ready):
    leaf(deadline, ready)  # LINE middle


def outer(deadline, ready):
    middle(deadline, ready)  # LINE outer


def main():
    seconds = float(sys.argv[1])
    ready = sys.argv[2] if len(sys.argv) > 2 else None
    deadline = time.time() + seconds if seconds > 0 else 0
    outer(deadline, ready)  # LINE main


main()  # LINE module

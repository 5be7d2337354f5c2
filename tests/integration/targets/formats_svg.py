# A target for tests/integration/formats_svg_test.py; runs on Python 2.7 and
# 3.6+. alpha spins about twice as long as beta, so their boxes in the
# flame graph have known names and plausible widths; gamma spreads a little
# time over 2000 generated functions (file "<tiny>"), most too narrow to be
# drawn, which the search must still count. The test looks lines up by
# their markers.
import os
import sys
import time

TINY = 2000


def spin(seconds):
    end = time.time() + seconds
    while time.time() < end: pass  # LINE spin


def alpha():
    spin(0.006)  # LINE alpha


def beta():
    spin(0.003)  # LINE beta


# Distinct code objects, so distinct frames: tiny_0 ... tiny_1999.
code = compile("".join("def tiny_%d(spin):\n    spin(0.0001)\n" % i for i in range(TINY)),
               "<tiny>", "exec")
tiny = {}
exec(code, tiny)
tiny = [tiny["tiny_%d" % i] for i in range(TINY)]


def gamma(n):
    for i in range(n, n + 10):
        tiny[i % TINY](spin)  # LINE gamma


def main():
    ready = sys.argv[1]
    deadline = time.time() + float(sys.argv[2])
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    n = 0
    while time.time() < deadline:
        alpha()  # LINE main_alpha
        beta()  # LINE main_beta
        gamma(n)
        n += 10


main()  # LINE module

# A target for the output-format tests (tests/integration/formats_test.py);
# runs on Python 2.7 and 3.6+. main() calls heavy() twice as long as
# light(), both CPU bound, for SECONDS in all, then exits.
# Usage: formats.py SECONDS
import sys
import time

clock = getattr(time, "perf_counter", time.time)


def heavy(until):  # LINE heavy_def
    while clock() < until: pass  # LINE heavy


def light(until):  # LINE light_def
    while clock() < until: pass  # LINE light


def main():
    end = clock() + float(sys.argv[1])
    while clock() < end:
        heavy(clock() + 0.02)  # LINE call_heavy
        light(clock() + 0.01)  # LINE call_light


main()  # LINE module

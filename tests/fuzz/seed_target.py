# Seed target for tests/fuzz/make-corpus; runs on Python 2.7 and 3.6+.
# A worker thread spins inside a call chain with a generator, a method, a
# lambda and (Python 3) names that are latin-1, UCS-2 and UCS-4 strings; a
# second thread sleeps; the main thread joins. One recorded sample then holds
# frames and strings of every kind. Usage: seed_target.py READY_PATH
import os
import sys
import threading
import time


def spin(ready):
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    while True:
        pass


def gen(ready):
    yield spin(ready)


class Box(object):
    def method(self, ready):
        return (lambda: next(gen(ready)))()


def chain(ready):
    return Box().method(ready)


if sys.version_info[0] >= 3:
    # caf\u00e9 (latin-1), \u51fd\u6570 (UCS-2), \U00020000 (UCS-4)
    exec(u"def caf\u00e9(r):\n    return chain(r)\n"
         u"def \u51fd\u6570(r):\n    return caf\u00e9(r)\n"
         u"def \U00020000(r):\n    return \u51fd\u6570(r)\n"
         u"entry = \U00020000\n")
else:
    entry = chain


def sleeper():
    while True:
        time.sleep(10)


def main():
    for target, args in ((sleeper, ()), (entry, (sys.argv[1],))):
        t = threading.Thread(target=target, args=args)
        t.daemon = True
        t.start()
    while True:
        time.sleep(10)


main()

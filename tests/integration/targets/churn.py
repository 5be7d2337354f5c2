# Integration target: starts and ends about RATE short threads per second
# for SECONDS seconds (Python 2.7 and 3.6+), then prints how many ran.
# Usage: churn.py RATE SECONDS READY_PATH
import os
import sys
import threading
import time


def short_lived(box):
    total = 0
    for i in range(2000):
        total += i
    box.append(total)


def main():
    rate, seconds, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)
    box = []
    started = 0
    start = time.time()
    while time.time() - start < seconds:
        t = threading.Thread(target=short_lived, args=(box,))
        t.start()
        started += 1
        t.join()
        time.sleep(1.0 / rate)
    print("threads %d done %d" % (started, len(box)))


main()

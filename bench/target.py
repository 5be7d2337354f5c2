# Fixed-work CPU-bound targets for scripts/bench (Python 2.7 and 3.6+).
# Usage: target.py KIND WORK READY GO
#   KIND: single (one thread, 30-frame stack), threads (50 threads sharing
#   the work), deep (200-frame recursion). WORK: loop iterations in all.
# Writes READY, waits for GO to exist, does the work, prints "elapsed S".
import os
import sys
import threading
import time


def work(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1000003
    return total


def nest(depth, n):
    if depth == 0:
        return work(n)
    return nest(depth - 1, n)


def main():
    kind, total, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    sys.setrecursionlimit(2000)
    with open(ready + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(go):
        time.sleep(0.001)
    start = time.time()
    if kind == "single":
        nest(30, total)
    elif kind == "deep":
        nest(200, total)
    else:
        threads = [threading.Thread(target=nest, args=(10, total // 50)) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print("elapsed %.6f" % (time.time() - start))


main()

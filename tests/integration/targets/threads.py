# Integration target for --threads and -d; runs on Python 2.7 and 3.6+.
# Usage: threads.py WORKERS SLEEPERS READY_PATH [SECONDS]
# WORKERS threads each spin in their own function on a known line; SLEEPERS
# threads sleep; the main thread joins. READY_PATH is written once all are
# in place; with SECONDS > 0 the program exits after that long. Keep the marked lines in place or update the tests.
import os
import sys
import threading
import time


def spin_0(ready):
    ready.release()
    while True: pass  # LINE spin_0


def spin_1(ready):
    ready.release()
    while True: pass  # LINE spin_1


def spin_2(ready):
    ready.release()
    while True: pass  # LINE spin_2


def spin_3(ready):
    ready.release()
    while True: pass  # LINE spin_3


def sleeper(ready):
    ready.release()
    while True: time.sleep(10)  # LINE sleeper


def main():
    workers, sleepers, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0
    deadline = time.time() + seconds
    spinners = [spin_0, spin_1, spin_2, spin_3][:workers]
    ready = threading.Semaphore(0)
    threads = [threading.Thread(target=f, args=(ready,)) for f in spinners]
    threads += [threading.Thread(target=sleeper, args=(ready,)) for _ in range(sleepers)]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        ready.acquire()
    time.sleep(0.2)  # let every thread reach its loop
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)
    while seconds <= 0 or time.time() < deadline: time.sleep(0.05)  # LINE main


main()

# A target for pyflame's --subprocesses tests (tests/integration/
# subprocesses_test.py); runs on Python 2.7 and 3.6+. The tests assert the
# exact names and line numbers of the marked lines.
#
#   tree.py pool SECONDS fork|spawn READY  a pool of 3 workers, each spinning
#   tree.py solo SECONDS                   one process spinning (run by a shell)
#   tree.py orphans SECONDS READY          forks 2 children that spin, then exits
#                                          once READY.go exists
#   tree.py exec-true SECONDS READY        a child that spins, then execs /bin/true
import os
import sys
import time


def work(seconds):
    deadline = time.time() + seconds
    while time.time() < deadline: pass  # LINE work
    return os.getpid()


def spin(seconds):
    return work(seconds)  # LINE spin


def touch(path):
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)


def pool(seconds, method, ready):
    import multiprocessing
    if method == "fork" and sys.version_info[0] == 2:
        p = multiprocessing.Pool(3)
    else:
        p = multiprocessing.get_context(method).Pool(3)
    # Every worker up (and imported, with spawn) before the test attaches.
    p.map(abs, range(3))
    touch(ready)
    pids = p.map(spin, [seconds] * 3, chunksize=1)
    p.close()
    p.join()
    print("result %d workers" % len(set(pids)))


def orphans(seconds, ready):
    for _ in range(2):
        if os.fork() == 0:
            spin(seconds)
            os._exit(0)
    touch(ready)
    # Exit only once pyflame follows the tree (the test says so): then the
    # children, left to init, are still pyflame's.
    deadline = time.time() + 60
    while not os.path.exists(ready + ".go") and time.time() < deadline:
        time.sleep(0.01)


def exec_true(seconds, ready):
    pid = os.fork()
    if pid == 0:
        spin(seconds)
        os.execv("/bin/true", ["/bin/true"])
    touch(ready)
    _, status = os.waitpid(pid, 0)
    print("result child status %d" % status)


def main():
    what = sys.argv[1]
    if what == "pool":
        pool(float(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif what == "solo":
        spin(float(sys.argv[2]))  # LINE main
    elif what == "orphans":
        orphans(float(sys.argv[2]), sys.argv[3])
    elif what == "exec-true":
        exec_true(float(sys.argv[2]), sys.argv[3])


if __name__ == "__main__":
    main()

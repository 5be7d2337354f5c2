# Integration target for the fault matrix (tests/integration/faults_test.py);
# runs on Python 2.7 and 3.6+. Usage: faults.py SCENARIO READY_PATH [ARG]
# Every scenario writes READY_PATH when it is about to do its work, and
# prints its result on stdout as "result ..." for the test to compare.
import os
import signal
import sys
import threading
import time


def ready(path):
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)


def busy(seconds):
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    return n


def wait_for(path, timeout=30):
    end = time.time() + timeout
    while not os.path.exists(path) and time.time() < end:
        busy(0.001)


def scenario_signals(path, arg):
    """Signals the target sends itself, so their number is exact: 1000
    SIGUSR1, SIGCHLD from 100 children one at a time, then a 1 kHz SIGALRM
    interval timer until 300 have arrived. The test compares the counts."""
    counts = {"usr1": 0, "chld": 0, "alrm": 0}

    def on(name):
        def handler(signum, frame):
            counts[name] += 1
        return handler
    signal.signal(signal.SIGUSR1, on("usr1"))
    signal.signal(signal.SIGCHLD, on("chld"))
    signal.signal(signal.SIGALRM, on("alrm"))
    ready(path)
    wait_for(arg)  # the test starts pyflame, then creates this file
    for i in range(1000):
        os.kill(os.getpid(), signal.SIGUSR1)
        busy(0.0002)
    for i in range(100):
        before = counts["chld"]
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        while counts["chld"] == before:
            busy(0.0001)
        os.waitpid(pid, 0)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    deadline = time.time() + 20
    while counts["alrm"] < 300 and time.time() < deadline:
        busy(0.001)
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    print("result usr1=%d chld=%d alrm=%d" % (counts["usr1"], counts["chld"], counts["alrm"] >= 300))


def scenario_spin(path, arg):
    """Spin for ARG seconds (0: for ever), then exit 0."""
    ready(path)
    seconds = float(arg)
    busy(seconds if seconds > 0 else 1e9)
    print("result done")


def scenario_end(path, how):
    """End in the middle of a profile: exit, _exit, segv, kill."""
    ready(path)
    busy(0.5)
    sys.stdout.flush()
    if how == "exit":
        sys.exit(3)
    if how == "_exit":
        os._exit(4)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "segv":
        import ctypes
        ctypes.string_at(0)  # a real SIGSEGV, delivered by the kernel
    busy(5)


def scenario_exec(path, what):
    """Replace the program: another Python, or a non-Python program."""
    ready(path)
    busy(0.5)
    sys.stdout.flush()
    if what == "python":
        os.execv(sys.executable, [sys.executable, "-c",
                                  "import time; t = time.time()\nwhile time.time() - t < 1.5: pass\nprint('result exec done')"])
    os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 1.5; echo result exec done"])


def child_work(n):
    total = 0
    for i in range(n):
        total += i
    return total


def scenario_fork(path, arg):
    """Fork children (os.fork, and multiprocessing when available) that work
    and exit with a known status; print their statuses and tracer PIDs."""
    ready(path)
    statuses, tracers = [], []
    for i in range(5):
        pid = os.fork()
        if pid == 0:
            busy(0.2)
            with open("/proc/self/status") as f:
                tracer = [l.split()[1] for l in f if l.startswith("TracerPid")][0]
            os._exit(10 + int(tracer != "0"))
        _, status = os.waitpid(pid, 0)
        statuses.append(os.WEXITSTATUS(status))
    try:
        import multiprocessing
        p = multiprocessing.Pool(2)
        results = p.map(child_work, [100000] * 8)
        p.close()
        p.join()
        mp = "ok" if results == [child_work(100000)] * 8 else "bad"
    except ImportError:
        mp = "ok"
    print("result fork=%s mp=%s" % (",".join(map(str, statuses)), mp))


def recurse(n, seconds):
    if n == 0:
        return busy(seconds)
    return recurse(n - 1, seconds)


def scenario_deep(path, arg):
    """A 1000-frame recursion spinning for ARG seconds."""
    sys.setrecursionlimit(5000)
    ready(path)
    recurse(1000, float(arg))
    print("result done")


def scenario_many(path, arg):
    """200 threads, each doing a fixed amount of work, for a while."""
    box = []

    def work():
        box.append(child_work(300000))
    threads = [threading.Thread(target=work) for _ in range(200)]
    ready(path)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("result threads=%d" % len(box))


if __name__ == "__main__":
    name, path = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else "0"
    globals()["scenario_" + name](path, arg)

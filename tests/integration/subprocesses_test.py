#!/usr/bin/env python3
"""--subprocesses (issue 14): a process tree profiled as one, each stack
under a root frame "(process PID COMMAND)", with exact names and lines;
nothing of the tree harmed or left stopped.

    subprocesses_test.py --pyflame BUILD/pyflame --python 3.11 --case pool-fork

Cases: pool-fork, pool-spawn (multiprocessing.Pool(3)), shell (launch
through sh), gunicorn and uwsgi (Debian's servers, real requests on
loopback), and the tree's fault rows: kill-pyflame, sigint, orphans (the
parent exits, its children run on), exec-true (a child executes a
non-Python program). Exit 77 when the interpreter or server is missing.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from run import SKIP, fail, find_python, markers, parse_collapsed, summary, thread_states

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.join(HERE, "targets", "tree.py")
APP = os.path.join(HERE, "targets", "wsgi_app.py")
ROOT = re.compile(r"^\(process (\d+)(?: (.*))?\)$")


def by_process(out):
    """{pid: {stack (without the root frame): count}} from collapsed text;
    every stack must start with a process root frame."""
    stacks, _, _ = parse_collapsed(out)
    procs = {}
    for stack, n in stacks.items():
        m = ROOT.match(stack[0])
        if not m:
            fail("a stack without its process root frame: %r" % (stack,), out)
        procs.setdefault(int(m.group(1)), {})[stack[1:]] = n
    return procs


def worker_chain(path, names):
    L = markers(path)
    return ["%s:%s:%d" % (path, name, L[name]) for name in names]


def ends_with(stack, chain):
    return len(stack) >= len(chain) and list(stack[-len(chain):]) == chain


def processes_with(procs, chain):
    """pid -> samples whose stack ends with chain (name:line exact)."""
    got = {}
    for pid, stacks in procs.items():
        n = sum(c for s, c in stacks.items() if ends_with(s, chain))
        if n:
            got[pid] = n
    return got


def tree_pids(root):
    """root and every descendant, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    data = f.read()
                parent[int(d)] = int(data[data.rindex(")") + 2:].split()[1])
            except (IOError, ValueError):
                pass
    pids, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in pids:
            continue
        pids.add(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return pids


def assert_tree_running(root, what, also=()):
    """No thread of any process of the tree (and of `also`) in a stop, nor
    traced."""
    for pid in tree_pids(root) | set(also):
        bad = {t: s for t, s in thread_states(pid).items() if s in "tT"}
        if bad:
            fail("%s: process %d has threads left stopped: %r" % (what, pid, bad))
        try:
            with open("/proc/%d/status" % pid) as f:
                tracer = [l.split()[1] for l in f if l.startswith("TracerPid:")]
        except IOError:
            continue
        if tracer and tracer[0] != "0":
            fail("%s: process %d is still traced by %s" % (what, pid, tracer[0]))


def wait_file(path, proc, timeout=60):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            fail("the target did not get ready (exit %r)" % proc.poll())
        time.sleep(0.01)


def run(argv, timeout=120):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        fail("pyflame hung: %s" % " ".join(argv), out, err)
    return p.returncode, out, err


def check_summary(out, err, profiled_at_least):
    s = summary(err, out)
    m = re.search(r"processes: (\d+) seen, (\d+) profiled", s["line"])
    if not m or int(m.group(2)) < profiled_at_least:
        fail("the summary should count at least %d processes profiled" % profiled_at_least,
             out, err)
    stacks, _, failed = parse_collapsed(out)
    if sum(stacks.values()) != s["stacks"] or failed != s["failed"]:
        fail("the profile and the summary disagree", out, err)


# ---- multiprocessing --------------------------------------------------------

def case_pool(a, method):
    """Launched: the pool's 3 workers each show work() under spin() with
    exact lines, each under its own process root; the parent's root is
    another."""
    python = a.python_path
    tmp = tempfile.mkdtemp(prefix="pyflame-sub-")
    ready = os.path.join(tmp, "ready")
    rc, out, err = run([a.pyflame, "--subprocesses", "-r", "0.005", "-t",
                        python, TREE, "pool", "1.0", method, ready])
    if rc != 0:
        fail("pyflame --subprocesses -t ... pool %s: exit %d" % (method, rc), out, err)
    procs = by_process(out)
    chain = worker_chain(TREE, ["spin", "work"])
    workers = processes_with(procs, chain)
    if len(workers) < 3:
        fail("expected work() at %s under 3 worker processes, got %r" % (chain, workers),
             out, err)
    # Each worker spun 1 s at 200 Hz: far more than a handful of samples,
    # whatever the load.
    if min(workers.values()) < 20:
        fail("a worker has too few samples: %r" % workers, out, err)
    check_summary(out, err, 4)
    print("pool %s: workers %r" % (method, workers))


# ---- a shell that starts Python ---------------------------------------------

def case_shell(a):
    """-t sh -c 'python ...; true': Python runs in a child of the shell.
    With --subprocesses its stack shows, under its own process (not the
    shell's); without, pyflame says to add --subprocesses."""
    cmd = "%s %s solo 1.0; true" % (a.python_path, TREE)
    rc, out, err = run([a.pyflame, "--subprocesses", "-r", "0.005", "-t",
                        "sh", "-c", cmd])
    if rc != 0:
        fail("pyflame --subprocesses -t sh -c ...: exit %d" % rc, out, err)
    procs = by_process(out)
    chain = worker_chain(TREE, ["main", "spin", "work"])
    got = processes_with(procs, chain)
    if len(got) != 1 or sum(got.values()) < 20:
        fail("expected main/spin/work with exact lines in one process, got %r" % got, out, err)
    rc, out2, err2 = run([a.pyflame, "-r", "0.005", "-t", "sh", "-c", cmd])
    if rc == 0 or "--subprocesses" not in err2:
        fail("without --subprocesses, a command whose Python runs in a child should fail "
             "and suggest --subprocesses (exit %d)" % rc, out2, err2)
    print("shell: %r; without: %s" % (got, err2.strip().splitlines()[-1]))


# ---- servers ----------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


class Load(object):
    """Requests in a loop from a child process, so that the workers spin."""

    def __init__(self, port, seconds):
        code = ("import socket,time\n"
                "end=time.time()+%f\n"
                "while time.time()<end:\n"
                "  try:\n"
                "    s=socket.create_connection(('127.0.0.1',%d),timeout=5)\n"
                "    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
                "    while s.recv(4096): pass\n"
                "    s.close()\n"
                "  except OSError: time.sleep(0.01)\n" % (seconds, port))
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]

    def wait(self):
        for p in self.procs:
            p.wait()


def children(pid):
    return sorted(p for p in tree_pids(pid) if p != pid)


def wait_workers(master, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(children(master)) >= n:
            return children(master)
        time.sleep(0.05)
    fail("the server did not start %d workers" % n)


def serve_and_profile(a, argv, name, env=None):
    """Start a server with 3 workers, load it, profile its master with
    --subprocesses for 4 s, SIGKILL one worker after 1 s: the handler
    shows with exact lines under 3 or more worker processes, the respawned
    worker among them, and nothing of the tree is left stopped."""
    port = free_port()
    argv = [x.format(port=port, app=APP, appdir=os.path.dirname(APP)) for x in argv]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                get(port, timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    fail("%s did not start (exit %r)" % (name, server.poll()), "",
                         server.stderr.read() if server.poll() is not None else "")
                time.sleep(0.1)
        master = server.pid
        before = wait_workers(master, 3)
        load = Load(port, 6)
        pf = subprocess.Popen([a.pyflame, "--subprocesses", "-s", "4", "-r", "0.002", "-p",
                               str(master)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        time.sleep(1.0)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        try:
            out, err = pf.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pf.kill()
            out, err = pf.communicate()
            fail("pyflame hung on %s" % name, out, err)
        load.wait()
        if pf.returncode != 0:
            fail("pyflame --subprocesses -p %s master: exit %d" % (name, pf.returncode), out, err)
        assert_tree_running(master, name)
        if server.poll() is not None:
            fail("%s died under pyflame" % name, out, err)
        after = children(master)
        procs = by_process(out)
        chain = worker_chain(APP, ["application", "handle"])
        got = processes_with(procs, chain)
        if len(got) < 3:
            fail("expected application/handle with exact lines under 3 workers, got %r"
                 % got, out, err)
        respawned = [p for p in got if p not in before]
        if not respawned:
            fail("the worker respawned after SIGKILL of %d does not show (before %r, after %r, "
                 "profiled %r)" % (victim, before, after, sorted(got)), out, err)
        check_summary(out, err, 3)
        # A worker waiting for a request holds no GIL: idle, not "before
        # the interpreter was ready" (it was found ready, or forked so).
        if "before the interpreter was ready" in err:
            fail("idle workers counted as not ready", out, err)
        # The server still answers.
        get(port)
        print("%s: handler in workers %r (respawned %r)" % (name, got, respawned))
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def case_gunicorn(a):
    exe = shutil.which("gunicorn")
    if not exe:
        print("skipped: gunicorn is not installed (apt-get install gunicorn)")
        sys.exit(SKIP)
    serve_and_profile(a, [exe, "-w", "3", "-b", "127.0.0.1:{port}", "--chdir", "{appdir}",
                          "--graceful-timeout", "2", "wsgi_app:application"], "gunicorn")


def case_uwsgi(a):
    exe = shutil.which("uwsgi")
    if not exe or not os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so"):
        print("skipped: uwsgi-core and uwsgi-plugin-python3 are not installed")
        sys.exit(SKIP)
    serve_and_profile(a, [exe, "--plugin", "python3", "--master", "--processes", "3",
                          "--http-socket", "127.0.0.1:{port}", "--wsgi-file", "{app}",
                          "--die-on-term", "--disable-logging"], "uwsgi")


# ---- the fault matrix, for a tree ---------------------------------------------

def start_tree(a, args):
    tmp = tempfile.mkdtemp(prefix="pyflame-sub-")
    ready = os.path.join(tmp, "ready")
    p = subprocess.Popen([a.python_path, TREE] + [x.format(ready=ready) for x in args],
                         stdout=subprocess.PIPE, universal_newlines=True)
    wait_file(ready, p)
    p.ready = ready
    return p


def wait_traced_all(root, pf, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        traced = 0
        for pid in tree_pids(root):
            try:
                with open("/proc/%d/status" % pid) as f:
                    if any(l.split() == ["TracerPid:", str(pf)] for l in f):
                        traced += 1
            except IOError:
                pass
        if traced >= n:
            return
        time.sleep(0.01)
    fail("pyflame did not attach to %d processes of the tree" % n)


def case_kill_pyflame(a, sig):
    """pyflame SIGKILLed, or SIGINTed, while it follows a pool: every
    process runs on untraced, the pool's result is right, and with SIGINT
    the profile is written."""
    target = start_tree(a, ["pool", "4.0", "fork", "{ready}"])
    pf = subprocess.Popen([a.pyflame, "--subprocesses", "-r", "0.002", "-p", str(target.pid)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    wait_traced_all(target.pid, pf.pid, 4)
    time.sleep(0.5)
    pf.send_signal(sig)
    out, err = pf.communicate(timeout=60)
    assert_tree_running(target.pid, "after pyflame got signal %d" % sig)
    result, _ = target.communicate(timeout=60)
    if target.returncode != 0 or "result 3 workers" not in result:
        fail("the pool did not finish right after pyflame got signal %d (exit %d, %r)"
             % (sig, target.returncode, result), out, err)
    if sig == signal.SIGINT:
        if pf.returncode != 0:
            fail("pyflame exited %d on SIGINT" % pf.returncode, out, err)
        got = processes_with(by_process(out), worker_chain(TREE, ["spin", "work"]))
        if len(got) < 3:
            fail("after SIGINT the profile should hold the 3 workers, got %r" % got, out, err)
    print("signal %d: pool finished, nothing left stopped" % sig)


def case_orphans(a):
    """The parent exits while its two children spin: pyflame goes on with
    the children, ends with them, and leaves them running meanwhile."""
    target = start_tree(a, ["orphans", "3.0", "{ready}"])
    kids = children(target.pid)
    pf = subprocess.Popen([a.pyflame, "--subprocesses", "-r", "0.005", "-s", "6", "-p",
                           str(target.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    wait_traced_all(target.pid, pf.pid, 3)
    open(target.ready + ".go", "w").close()  # the parent exits now
    out, err = pf.communicate(timeout=60)
    rc = pf.returncode
    target.wait()
    assert_tree_running(target.pid, "orphans", also=kids)
    if rc != 0:
        fail("pyflame exited %d" % rc, out, err)
    got = processes_with(by_process(out), worker_chain(TREE, ["spin", "work"]))
    if sorted(got) != sorted(kids):
        fail("expected the children %r spinning, got %r" % (kids, got), out, err)
    print("orphans: %r" % got)


def case_exec_true(a):
    """A child spins, then executes /bin/true: it is profiled while it is
    Python, then runs the other program untouched (exit status 0)."""
    target = start_tree(a, ["exec-true", "2.0", "{ready}"])
    rc, out, err = run([a.pyflame, "--subprocesses", "-r", "0.005", "-s", "4", "-p",
                        str(target.pid)])
    result, _ = target.communicate(timeout=60)
    if "result child status 0" not in result:
        fail("the child's exec of /bin/true did not exit 0: %r" % result, out, err)
    if rc != 0:
        fail("pyflame exited %d" % rc, out, err)
    got = processes_with(by_process(out), worker_chain(TREE, ["spin", "work"]))
    if len(got) != 1:
        fail("expected the child spinning before its exec, got %r" % got, out, err)
    print("exec-true: %r, child exit 0" % got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--case", required=True)
    a = ap.parse_args()
    if a.case in ("gunicorn", "uwsgi"):
        a.python_path = "/usr/bin/python3"
    else:
        a.python_path = find_python(a.python)
        if not a.python_path:
            print("skipped: Python %s is not installed" % a.python)
            return SKIP
    cases = {
        "pool-fork": lambda: case_pool(a, "fork"),
        "pool-spawn": lambda: case_pool(a, "spawn"),
        "shell": lambda: case_shell(a),
        "gunicorn": lambda: case_gunicorn(a),
        "uwsgi": lambda: case_uwsgi(a),
        "kill-pyflame": lambda: case_kill_pyflame(a, signal.SIGKILL),
        "sigint": lambda: case_kill_pyflame(a, signal.SIGINT),
        "orphans": lambda: case_orphans(a),
        "exec-true": lambda: case_exec_true(a),
    }
    cases[a.case]()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Integration test: profile a real interpreter running targets/spin.py and
check the exact stack, function names and line numbers pyflame reports.

    run.py --pyflame BUILD/pyflame --python 3.11 --mode attach|launch

--python is X.Y (the newest pyenv build of that minor version) or
"debian-3.11" (/usr/bin/python3.11, Debian's static, stripped build).
Exit 77 (meson's "skipped") when that interpreter is not installed.
"""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SPIN = os.path.join(HERE, "targets", "spin.py")
SKIP = 77


def pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    try:
        return subprocess.check_output(["pyenv", "root"], universal_newlines=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def find_python(spec):
    if spec == "debian-3.11":
        path = "/usr/bin/python3.11"
        if os.path.isfile(path) and not os.path.islink(path):
            return path
        return None
    def patch(p):
        m = re.search(r"/(\d+)\.(\d+)\.(\d+)/bin/python$", p)
        return int(m.group(3)) if m else -1
    found = glob.glob(os.path.join(pyenv_root(), "versions", spec + ".*", "bin", "python"))
    found = [p for p in found if re.search(r"/\d+\.\d+\.\d+/bin/python$", p)]
    return max(found, key=patch) if found else None


def markers(path):
    lines = {}
    with open(path) as f:
        for n, text in enumerate(f, 1):
            m = re.search(r"# LINE (\w+)", text)
            if m:
                lines[m.group(1)] = n
    return lines


def expected_stack(with_lines=True):
    L = markers(SPIN)
    chain = [("<module>", L["module"]), ("main", L["main"]), ("outer", L["outer"]),
             ("middle", L["middle"]), ("leaf", L["leaf"])]
    if with_lines:
        return ["%s:%s:%d" % (SPIN, name, line) for name, line in chain]
    return ["%s:%s" % (SPIN, name) for name, _ in chain]


def parse_collapsed(text):
    stacks, idle, failed = {}, 0, 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        assert stack and count.isdigit(), "malformed output line: %r" % line
        if stack == "(idle)":
            idle = int(count)
        elif stack == "(failed)":
            failed = int(count)
        else:
            key = tuple(stack.split(";"))
            assert key not in stacks, "stack printed twice: %r" % line
            stacks[key] = int(count)
    return stacks, idle, failed


def thread_states(pid):
    states = {}
    for stat in glob.glob("/proc/%d/task/*/stat" % pid):
        try:
            with open(stat) as f:
                data = f.read()
        except IOError:
            continue
        states[stat.split("/")[4]] = data[data.rindex(")") + 2]
    return states


SUMMARY = re.compile(r"pyflame: (\d+) (?:samples|ticks) in ([\d.]+) s \(([\d.]+)/s, requested ([\d.]+)/s\): "
                     r"(\d+) with a stack, (\d+) idle, (\d+) failed(?: \(([^)]*)\))?")


def summary(err, out=""):
    """pyflame's summary line on stderr: its counts, and the failed samples
    by reason, e.g. {"thread exited": 1} (docs/usage.md)."""
    for line in err.splitlines():
        m = SUMMARY.match(line)
        if m:
            reasons = {}
            for part in m.group(8).split(", ") if m.group(8) else ():
                n, _, reason = part.partition(" ")
                if not n.isdigit() or not reason:
                    fail("malformed failure reasons on the summary line: %r" % line, out, err)
                reasons[reason] = int(n)
            return {"line": line, "samples": int(m.group(1)), "seconds": float(m.group(2)),
                    "requested": float(m.group(4)), "stacks": int(m.group(5)),
                    "idle": int(m.group(6)), "failed": int(m.group(7)), "reasons": reasons}
    fail("no summary line on stderr", out, err)


# The one reason the machine's load explains, whatever the target: pyflame
# does not wait long for a thread that waits for a CPU to stop, and without
# a confirmed live copy of its stack that tick fails (src/sample/strategy_gil.c,
# src/sample/strategy_threads.c). Allowed everywhere.
LOADED = {"thread did not stop in time"}


def check_failed(out, err, allowed=(), what=""):
    """Every failed sample is counted with its reason, and each reason is one
    of allowed: those this target's own behaviour explains (and LOADED). No
    other reason may take a single sample, however loaded the machine is: a
    thread that is stopped while it is read cannot change its stack under
    pyflame. Returns the summary (summary())."""
    allowed = set(allowed) | LOADED
    s = summary(err, out)
    failed = parse_collapsed(out)[2]
    if failed != s["failed"] or sum(s["reasons"].values()) != failed:
        fail("%s(failed) %d in the profile, but the summary says %d failed (%s)"
             % (what, failed, s["failed"], s["reasons"]), out, err)
    bad = sorted(r for r in s["reasons"] if r not in allowed)
    if bad:
        fail("%s%d failed samples of %d (%s): %s not expected from this target (it explains %s)" % (
            what, failed, s["samples"],
            ", ".join("%d %s" % (n, r) for r, n in sorted(s["reasons"].items())),
            " and ".join('"%s"' % r for r in bad), ", ".join(sorted(allowed)) or "none"), out, err)
    print("  %s" % s["line"])
    return s


def at_start_and_end(end=True):
    """The failures check_failed allows when the interpreter's start-up is in
    the profile (-t, or attached as the program starts), and with end, its
    end (-t): ticks while a thread exits ("thread exited") and while
    Py_Finalize runs ("interpreter not initialised"). Start-up and
    finalisation build and free frames, code objects and modules, so a
    thread stopped there can be caught halfway ("inconsistent data") or
    holding a pointer to what was just freed ("memory read failed"). How
    many ticks those phases take depends on the machine's load, so none of
    these is counted. Nothing explains another reason, and the program's
    own steady state none at all (the attach tests)."""
    allowed = {"inconsistent data", "memory read failed"}
    if end:
        allowed |= {"thread exited", "interpreter not initialised"}
    return allowed


# A thread state whose OS thread has not started yet (its thread state is
# made by the thread that starts it) or is already gone counts as failed
# under this name (src/sample/strategy_threads.c: "starting or gone"). Allowed
# where threads start or end during the profile.
THREAD_STARTS_OR_ENDS = "thread state not matched to a thread"


def stats(err):
    """The fields of the --stats line on pyflame's stderr: numbers as
    floats, words (scheduling=realtime) as strings."""
    def value(v):
        try:
            return float(v)
        except ValueError:
            return v
    for line in err.splitlines():
        if line.startswith("pyflame: stats: "):
            return {k: value(v) for k, v in (kv.split("=") for kv in line.split()[2:])}
    fail("no --stats line on stderr", "", err)


def check_released(target, out="", err=""):
    """The target (a Popen) still runs and none of its threads is stopped."""
    time.sleep(0.05)
    if target.poll() is not None:
        fail("target died while profiled (status %r)" % target.returncode, out, err)
    bad = {t: s for t, s in thread_states(target.pid).items() if s in "tT"}
    if bad:
        fail("target threads left stopped: %r" % bad, out, err)


def fail(msg, out="", err=""):
    sys.stderr.write("FAIL: %s\n" % msg)
    if out:
        sys.stderr.write("--- profile ---\n%s\n" % out[-4000:])
    if err:
        sys.stderr.write("--- pyflame stderr ---\n%s\n" % err[-4000:])
    sys.exit(1)


def own_stacks(stacks, path=SPIN):
    """The program's own stacks: those whose outermost frame is in its
    script. The interpreter's start-up (site, importlib) and shutdown run
    outside it, for as long as the machine's load makes them last."""
    return {k: c for k, c in stacks.items() if k[0].startswith(path + ":")}


def check_profile(out, err, want, min_share, dominant=True, failures=()):
    """The profile of spin.py (a Popen or -t): want, its spinning stack, is
    there, is the most frequent of the program's own stacks and at least
    min_share of them; with dominant, it is the most frequent stack of all.
    Nothing else in spin.py takes more than a moment, so these hold however
    loaded the machine is: load stretches the interpreter's start-up, which
    is not the program's own. Failed samples: check_failed(failures)."""
    stacks, idle, failed = parse_collapsed(out)
    total = sum(stacks.values())
    if not stacks:
        fail("no stacks in the profile", out, err)
    if want not in stacks:
        fail("expected stack not found:\n  %s" % ";".join(want), out, err)
    own = own_stacks(stacks, want[0].split(":")[0])
    best = max(own, key=own.get)
    if best != want:
        fail("the program's most frequent stack is not the expected one:\n  got  %s\n  want %s"
             % (";".join(best), ";".join(want)), out, err)
    share = float(own[want]) / sum(own.values())
    if share < min_share:
        fail("expected stack is only %.0f%% of the program's own samples (at least %.0f%%)"
             % (100 * share, 100 * min_share), out, err)
    best = max(stacks, key=stacks.get)
    if dominant and best != want:
        fail("most frequent stack is not the expected one:\n  got  %s\n  want %s"
             % (";".join(best), ";".join(want)), out, err)
    check_failed(out, err, failures)
    return total, idle, failed


def attach(pyflame, python, args):
    tmp = tempfile.mkdtemp(prefix="pyflame-it-")
    ready = os.path.join(tmp, "ready")
    target = subprocess.Popen([python, SPIN, "0", ready])
    try:
        deadline = time.time() + 20
        while not os.path.exists(ready):
            if target.poll() is not None or time.time() > deadline:
                fail("target did not start (exit %r)" % target.poll())
            time.sleep(0.01)
        cmd = [pyflame, "-s", "1", "-r", "0.005"] + args + ["-p", str(target.pid)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("pyflame did not finish within 30 s")
        if p.returncode != 0:
            fail("pyflame exited %d" % p.returncode, out, err)
        time.sleep(0.05)
        if target.poll() is not None:
            fail("target died while profiled (status %r)" % target.returncode, out, err)
        states = thread_states(target.pid)
        bad = {t: s for t, s in states.items() if s in "tT"}
        if bad:
            fail("target threads left stopped: %r" % bad, out, err)
        return out, err
    finally:
        if target.poll() is None:
            target.send_signal(signal.SIGKILL)
        target.wait()


def launch(pyflame, python, args, seconds, rate, wrapper=()):
    tmp = tempfile.mkdtemp(prefix="pyflame-it-")
    prof = os.path.join(tmp, "profile.txt")
    cmd = [pyflame, "-r", rate, "-o", prof] + args + ["-t"] + list(wrapper) + [python, SPIN, seconds]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("pyflame -t did not finish within 60 s")
    if p.returncode != 0:
        fail("pyflame -t exited %d" % p.returncode, out, err)
    if out:
        fail("pyflame -t -o wrote to stdout: %r" % out[:200])
    with open(prof) as f:
        return f.read(), err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--mode", choices=["attach", "launch"], required=True)
    a = ap.parse_args()

    python = find_python(a.python)
    if not python:
        print("skipped: CPython %s is not installed" % a.python)
        return SKIP
    print("interpreter: %s" % python)
    if a.mode == "attach":
        # A thread that spins on one line, stopped while it is read: its
        # stack in (nearly) every sample, and no sample fails, whatever the
        # load.
        out, err = attach(a.pyflame, python, [])
        total, idle, failed = check_profile(out, err, tuple(expected_stack()), 0.9)
        # How many samples 1 s at 200 Hz gives depends on the load: pyflame
        # gives ticks up rather than keep a slow target stopped. The
        # requested rate must reach the sampler, though.
        if summary(err, out)["requested"] != 200.0:
            fail("-r 0.005 is not 200 samples/s", out, err)
        print("attach: %d samples, %d idle, %d failed" % (total, idle, failed))
        out, err = attach(a.pyflame, python, ["-n"])
        check_profile(out, err, tuple(expected_stack(False)), 0.9)
        print("attach -n: ok")
        # An idle process (its one thread asleep, no GIL holder): every
        # sample idle, none taken for "before the interpreter was ready".
        sleeper = subprocess.Popen([python, "-c", "import time; time.sleep(60)"])
        try:
            time.sleep(0.3)
            p = subprocess.run([a.pyflame, "-s", "0.3", "-p", str(sleeper.pid)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=60)
        finally:
            sleeper.kill()
            sleeper.wait()
        s = summary(p.stderr, p.stdout)
        if p.returncode != 0 or s["idle"] == 0 or s["stacks"] or s["idle"] != s["samples"] or \
                "before the interpreter was ready" in p.stderr:
            fail("an idle process: every sample should be idle", p.stdout, p.stderr)
        print("attach to an idle process: %d idle" % s["idle"])
    else:
        out, err = launch(a.pyflame, python, [], "1.0", "0.005")
        total, idle, failed = check_profile(out, err, tuple(expected_stack()), 0.5,
                                            failures=at_start_and_end())
        print("launch: %d samples, %d idle, %d failed" % (total, idle, failed))
        # A 50 ms program must still be seen: sampling starts at the exec.
        out, err = launch(a.pyflame, python, [], "0.05", "0.001")
        stacks, _, _ = parse_collapsed(out)
        want = tuple(expected_stack())
        # At least once: on a loaded machine fewer of the 50 ticks land in
        # the spin; the point is that the first frames are not missed.
        if stacks.get(want, 0) < 1:
            fail("a 50 ms run shows its stack %d times" % stacks.get(want, 0), out, err)
        check_failed(out, err, at_start_and_end())
        print("launch 50 ms: expected stack %d times" % stacks[want])
        # Through wrappers that exec the interpreter (env, a shell), as a
        # pyenv shim does: pyflame follows the execs. The spin is short, so
        # the start-up may outweigh it on a loaded machine: the program's
        # own stacks are what is checked.
        out, err = launch(a.pyflame, python, [], "0.3", "0.005", wrapper=("env", "sh", "-c", 'exec "$0" "$@"'))
        check_profile(out, err, want, 0.5, dominant=False, failures=at_start_and_end())
        print("launch through env and sh: ok")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

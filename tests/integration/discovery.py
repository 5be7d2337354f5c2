#!/usr/bin/env python3
"""Integration tests for finding the interpreter wherever it lives (issue 3).

    discovery.py --pyflame BUILD/pyflame --host-dlopen HOST --fakes DIR
                 [--host-linked HOST --host-linked-version X.Y]
                 --case CASE --python VER

Cases (VER is run.py's --python spelling, or "any"/"none"):
  renamed       the interpreter copied to "myservice" (pyenv: with its
                libpython copied elsewhere too), attach and launch
  embed-linked  a C program linked with libpython runs spin.py (VER "any":
                the version found when the test suite was configured)
  embed-dlopen  a C program dlopen()s a copy of libpython named
                libembedded-runtime.so, attach and launch
  namespace     the interpreter runs in another mount namespace, from a bind
                mount that pyflame's namespace does not have
  deleted       libpython deleted and its name reused after the target
                loaded it: read through /proc/PID/map_files
  stripped      2.7/3.6 with libpython stripped of .symtab (objcopy)
  section-only  Debian's python3.11 with _PyRuntime gone from .dynsym too:
                only the .PyRuntime section is left
  no-sections   3.13 libpython with no section headers at all: no symbols,
                no .PyRuntime; only the _Py_DebugOffsets cookie is left
  early         attach right after start, before the interpreter exists
  late-runtime  a host that loads libpython 1 s after start, and one that
                initialises it 1 s after loading: attach at once; and
                launch mode
  never-ready   a process that never gets a runtime, one whose runtime is
                never initialised (attach and launch): a clear error
  abi-mismatch  --abi forcing a version the process does not run
  mismatch      a runtime whose memory does not match its version's layout
  not-python    `sleep 100`: one line saying what was looked for, exit 1
  unsupported   fake runtimes older and newer than supported, and a
                free-threaded one: the version found and the supported list

Each run asserts exact function names and line numbers (run.py's spin.py
chain) or the exact error, and that the target is left running and not
stopped. The discovery path pyflame took (--verbose) is printed and checked.
Exit 77 (meson's "skipped") with the reason when a case cannot run here.
"""
import argparse
import atexit
import glob
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

from run import (SKIP, SPIN, at_start_and_end, check_profile, check_released, expected_stack, fail,
                 find_python, parse_collapsed)

WANT = tuple(expected_stack())
# Attached while the interpreter starts: its start-up is in the profile
# (run.at_start_and_end), its end is not.
STARTING = at_start_and_end(end=False)


def skip(reason):
    print("skipped: %s" % reason)
    sys.exit(SKIP)


def wait_ready(target, ready, timeout=20):
    deadline = time.time() + timeout
    while not os.path.exists(ready):
        if target.poll() is not None or time.time() > deadline:
            fail("target did not start (exit %r)" % target.poll())
        time.sleep(0.01)


def start(cmd, env=None, wait_for=None):
    """Start a target; with wait_for (a ready-file path), wait until it
    exists. stdout/stderr go to the test log."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    target = subprocess.Popen(cmd, env=full_env)
    if wait_for:
        wait_ready(target, wait_for)
    return target


def stop(target):
    if target.poll() is None:
        target.send_signal(signal.SIGKILL)
    target.wait()


def run_pyflame(args, timeout=60, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    t0 = time.time()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=full_env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("pyflame did not finish within %d s: %s" % (timeout, " ".join(args)))
    return p.returncode, out, err, time.time() - t0


def found_line(err):
    """pyflame --verbose's line saying what it found and how."""
    for line in err.splitlines():
        if line.startswith("pyflame: CPython "):
            return line
    return None


def check_found(err, out, *want):
    line = found_line(err)
    if not line:
        fail("no discovery line on stderr with --verbose", out, err)
    for text in want:
        if text not in line:
            fail("discovery line lacks %r:\n  %s" % (text, line), out, err)
    print("found: %s" % line[len("pyflame: "):])


def attach_profile(a, target, clues, seconds="1", min_share=0.9, extra=()):
    """Profile a running target that is already inside its deepest call."""
    rc, out, err, _ = run_pyflame([a.pyflame, "--verbose", "-s", seconds, "-r", "0.005"] +
                                  list(extra) + ["-p", str(target.pid)])
    if rc != 0:
        fail("pyflame exited %d" % rc, out, err)
    check_released(target, out, err)
    total, idle, failed = check_profile(out, err, WANT, min_share)
    check_found(err, out, *clues)
    print("attach: %d samples, %d idle, %d failed" % (total, idle, failed))


def launch_profile(a, cmd, clues, env=None, min_share=0.5):
    """pyflame -t CMD, CMD running spin.py for 1 s."""
    tmp = tmpdir()
    prof = os.path.join(tmp, "profile.txt")
    rc, out, err, _ = run_pyflame([a.pyflame, "--verbose", "-r", "0.005", "-o", prof, "-t"] + cmd,
                                  env=env)
    if rc != 0:
        fail("pyflame -t exited %d" % rc, out, err)
    with open(prof) as f:
        profile = f.read()
    total, idle, failed = check_profile(profile, err, WANT, min_share, failures=at_start_and_end())
    check_found(err, profile, *clues)
    print("launch: %d samples, %d idle, %d failed" % (total, idle, failed))


def expect_error(a, target, texts, extra=(), max_seconds=None):
    """pyflame -p on target must fail with exit 1 and one line on stderr
    containing every text, print nothing on stdout, and let target go."""
    rc, out, err, took = run_pyflame([a.pyflame, "-s", "1"] + list(extra) +
                                     ["-p", str(target.pid)])
    lines = err.strip().splitlines()
    if rc != 1:
        fail("pyflame exited %d, wanted 1" % rc, out, err)
    if out:
        fail("pyflame printed a profile on stdout", out, err)
    if len(lines) != 1:
        fail("wanted one line on stderr, got %d" % len(lines), out, err)
    for text in texts:
        if text not in lines[0]:
            fail("message lacks %r" % text, out, err)
    if max_seconds is not None and took > max_seconds:
        fail("pyflame took %.1f s to give up (at most %.1f)" % (took, max_seconds), out, err)
    check_released(target, out, err)
    print("error (%.1f s): %s" % (took, lines[0]))


TMPDIRS = []


def tmpdir():
    """A scratch directory, removed at exit (some hold copies of libpython)."""
    path = tempfile.mkdtemp(prefix="pyflame-disc-")
    TMPDIRS.append(path)
    return path


@atexit.register
def remove_tmpdirs():
    for path in TMPDIRS:
        shutil.rmtree(path, ignore_errors=True)


def need_python(spec):
    python = find_python(spec)
    if not python:
        skip("CPython %s is not installed" % spec)
    return python


def pyenv_parts(python):
    """(prefix, real executable, libpython) of a pyenv interpreter."""
    prefix = os.path.dirname(os.path.dirname(python))
    exe = os.path.realpath(python)
    libs = sorted(glob.glob(os.path.join(prefix, "lib", "libpython*.so.1.0")))
    if not libs:
        fail("no libpython under %s" % prefix)
    return prefix, exe, libs[0]


def spin_args(ready, seconds="0"):
    return [SPIN, seconds, ready]


def maps_paths(pid):
    with open("/proc/%d/maps" % pid) as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


# ---- cases ----

def case_renamed(a):
    python = need_python(a.python)
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    if a.python.startswith("debian"):
        service = os.path.join(tmp, "myservice")
        shutil.copy2(python, service)
        env, clues = {}, ["in " + service]
    else:
        # The executable and its libpython both somewhere else; the copy of
        # libpython is what the loader maps (LD_LIBRARY_PATH beats RUNPATH).
        prefix, exe, lib = pyenv_parts(python)
        os.makedirs(os.path.join(tmp, "bin"))
        os.makedirs(os.path.join(tmp, "lib"))
        service = os.path.join(tmp, "bin", "myservice")
        shutil.copy2(exe, service)
        lib_copy = os.path.join(tmp, "lib", os.path.basename(lib))
        shutil.copy2(lib, lib_copy)
        env = {"LD_LIBRARY_PATH": os.path.join(tmp, "lib"), "PYTHONHOME": prefix}
        clues = ["in " + lib_copy]
    target = start([service] + spin_args(ready), env, wait_for=ready)
    try:
        mapped = maps_paths(target.pid)
        if not any(c[len("in "):] in mapped for c in clues):
            fail("the copy is not what the target maps: %r" % sorted(mapped))
        attach_profile(a, target, clues)
    finally:
        stop(target)
    launch_profile(a, [service, SPIN, "1.0"], clues, env=env)


def case_embed_linked(a):
    if not a.host_linked:
        skip("no pyenv CPython 3.x with headers and libpython was found when the tests were "
             "configured")
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    print("host linked with CPython %s" % a.host_linked_version)
    lib = "libpython%s" % a.host_linked_version
    target = start([a.host_linked, "-"] + spin_args(ready), wait_for=ready)
    try:
        attach_profile(a, target, ["CPython %s." % a.host_linked_version, lib])
    finally:
        stop(target)
    launch_profile(a, [a.host_linked, "-", SPIN, "1.0"], [lib])


def case_embed_dlopen(a):
    python = need_python(a.python)
    prefix, _, lib = pyenv_parts(python)
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    # Under a name that says nothing: discovery must not rely on it.
    runtime = os.path.join(tmp, "libembedded-runtime.so")
    shutil.copy2(lib, runtime)
    env = {"PYTHONHOME": prefix}
    clues = ["CPython %s." % a.python, "in " + runtime]
    target = start([a.host_dlopen, runtime] + spin_args(ready), env, wait_for=ready)
    try:
        attach_profile(a, target, clues)
    finally:
        stop(target)
    launch_profile(a, [a.host_dlopen, runtime, SPIN, "1.0"], clues, env=env)


def case_namespace(a):
    python = need_python(a.python)
    if not shutil.which("unshare"):
        skip("unshare(1) is not installed")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs none /mnt 2>&1 || mount --bind / /mnt 2>&1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    if probe.returncode != 0:
        skip("cannot create a mount namespace here: %s" % probe.stdout.strip())
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    # An empty directory for pyflame; in the target's namespace the
    # interpreter is bind-mounted on it.
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    if a.python.startswith("debian"):
        source, exe = os.path.dirname(python), os.path.join(mnt, os.path.basename(python))
        env, runtime = {}, exe
    else:
        prefix, real, lib = pyenv_parts(python)
        source, exe = prefix, os.path.join(mnt, "bin", os.path.basename(real))
        runtime = os.path.join(mnt, "lib", os.path.basename(lib))
        env = {"LD_LIBRARY_PATH": os.path.join(mnt, "lib")}
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", source, mnt,
           exe] + spin_args(ready)
    target = start(cmd, env, wait_for=ready)
    try:
        if os.path.exists(runtime):
            fail("%s is visible outside the namespace: the test would prove nothing" % runtime)
        if runtime not in maps_paths(target.pid):
            fail("the target does not map %s" % runtime)
        attach_profile(a, target, ["in " + runtime])
    finally:
        stop(target)


def case_deleted(a):
    python = need_python(a.python)
    _, _, lib = pyenv_parts(python)
    tmp = tmpdir()
    os.makedirs(os.path.join(tmp, "lib"))
    copy = os.path.join(tmp, "lib", os.path.basename(lib))
    shutil.copy2(lib, copy)
    env = {"LD_LIBRARY_PATH": os.path.join(tmp, "lib")}
    ready = os.path.join(tmp, "ready")
    target = start([python] + spin_args(ready), env, wait_for=ready)
    try:
        # As after a package upgrade: the mapped file is gone, and another
        # file (not ELF) has its name.
        os.unlink(copy)
        with open(copy, "w") as f:
            f.write("not the library the process runs\n")
        attach_profile(a, target, ["in %s (deleted)" % copy])
    finally:
        stop(target)


def case_stripped(a):
    python = need_python(a.python)
    objcopy = shutil.which("objcopy")
    if not objcopy:
        skip("objcopy is not installed")
    _, _, lib = pyenv_parts(python)
    tmp = tmpdir()
    os.makedirs(os.path.join(tmp, "lib"))
    stripped = os.path.join(tmp, "lib", os.path.basename(lib))
    subprocess.check_call([objcopy, "--strip-all", lib, stripped])
    env = {"LD_LIBRARY_PATH": os.path.join(tmp, "lib")}
    clues = ["the code of PyInterpreterState_Head", "in " + stripped]
    ready = os.path.join(tmp, "ready")
    target = start([python] + spin_args(ready), env, wait_for=ready)
    try:
        attach_profile(a, target, clues)
    finally:
        stop(target)
    launch_profile(a, [python, SPIN, "1.0"], clues, env=env)


def dynstr(data):
    """(offset, size) of .dynstr in an ELF64 little-endian file."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    def section(i):
        name, _, _, _, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        if data[stroff + name:stroff + name + 8] == b".dynstr\0":
            return off, size
    return None


def case_section_only(a):
    python = need_python(a.python)
    if not a.python.startswith("debian"):
        skip("this case needs Debian's static python3.11 (no .symtab)")
    tmp = tmpdir()
    # Debian's python3.11 has no .symtab; rename _PyRuntime in .dynsym's
    # string table too, so only the .PyRuntime section is left to find it by.
    copy = os.path.join(tmp, "python3.11")
    with open(python, "rb") as f:
        data = bytearray(f.read())
    where = dynstr(data)
    if not where:
        skip("%s has no .dynstr" % python)
    off, size = where
    at = bytes(data[off:off + size]).find(b"\0_PyRuntime\0")
    if at < 0:
        fail("%s does not export _PyRuntime" % python)
    data[off + at + 1:off + at + 11] = b"_PyRuntimX"
    with open(copy, "wb") as f:
        f.write(data)
    os.chmod(copy, 0o755)
    clues = ["section .PyRuntime", "in " + copy]
    ready = os.path.join(tmp, "ready")
    target = start([copy] + spin_args(ready), wait_for=ready)
    try:
        attach_profile(a, target, clues)
    finally:
        stop(target)
    launch_profile(a, [copy, SPIN, "1.0"], clues)


def case_no_sections(a):
    python = need_python(a.python)
    _, _, lib = pyenv_parts(python)
    tmp = tmpdir()
    os.makedirs(os.path.join(tmp, "lib"))
    bare = os.path.join(tmp, "lib", os.path.basename(lib))
    # As sstrip leaves a file: the loader needs only the program headers, so
    # zero e_shoff, e_shnum and e_shstrndx (ELF64 header).
    with open(lib, "rb") as f:
        data = bytearray(f.read())
    if data[:5] != b"\x7fELF\x02":
        skip("%s is not a 64-bit ELF file" % lib)
    data[0x28:0x30] = bytes(8)
    data[0x3c:0x40] = bytes(4)
    with open(bare, "wb") as f:
        f.write(data)
    os.chmod(bare, 0o755)
    env = {"LD_LIBRARY_PATH": os.path.join(tmp, "lib")}
    clues = ["the _Py_DebugOffsets cookie", "in " + bare, "layout: _Py_DebugOffsets"]
    ready = os.path.join(tmp, "ready")
    target = start([python] + spin_args(ready), env, wait_for=ready)
    try:
        attach_profile(a, target, clues)
    finally:
        stop(target)


def case_early(a):
    python = need_python(a.python)
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    # No wait: pyflame starts while the target may still be in the dynamic
    # loader or initialising.
    target = start([python] + spin_args(ready))
    try:
        rc, out, err, _ = run_pyflame([a.pyflame, "--verbose", "-s", "2", "-r", "0.005", "-p",
                                       str(target.pid)])
        if rc != 0:
            fail("pyflame exited %d" % rc, out, err)
        check_released(target, out, err)
        total, idle, failed = check_profile(out, err, WANT, 0.5, failures=STARTING)
        check_found(err, out)
        print("attach at start: %d samples, %d idle, %d failed" % (total, idle, failed))
    finally:
        stop(target)


def case_late_runtime(a):
    python = need_python(a.python)
    prefix, _, lib = pyenv_parts(python)
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    env = {"PYTHONHOME": prefix}
    # No runtime for the first second: pyflame must keep looking.
    target = start([a.host_dlopen, "--delay", "1", lib] + spin_args(ready), env)
    try:
        rc, out, err, _ = run_pyflame([a.pyflame, "--verbose", "-s", "3", "-r", "0.005", "-p",
                                       str(target.pid)])
        if rc != 0:
            fail("pyflame exited %d" % rc, out, err)
        check_released(target, out, err)
        total, idle, failed = check_profile(out, err, WANT, 0.5, failures=STARTING)
        check_found(err, out, "in " + lib)
        print("attach before the runtime: %d samples, %d idle, %d failed" % (total, idle, failed))
    finally:
        stop(target)
    # A runtime there from the start, but initialised 1 s later.
    ready = os.path.join(tmp, "ready2")
    target = start([a.host_dlopen, "--init-delay", "1", lib] + spin_args(ready), env)
    try:
        rc, out, err, _ = run_pyflame([a.pyflame, "--verbose", "-s", "3", "-r", "0.005", "-p",
                                       str(target.pid)])
        if rc != 0:
            fail("pyflame exited %d" % rc, out, err)
        check_released(target, out, err)
        total, idle, failed = check_profile(out, err, WANT, 0.5, failures=STARTING)
        check_found(err, out, "in " + lib)
        print("attach before initialisation: %d samples, %d idle, %d failed"
              % (total, idle, failed))
    finally:
        stop(target)
    launch_profile(a, [a.host_dlopen, "--delay", "0.5", lib, SPIN, "1.0"], ["in " + lib], env=env)


def case_never_ready(a):
    python = need_python(a.python)
    prefix, _, lib = pyenv_parts(python)
    tmp = tmpdir()
    env = {"PYTHONHOME": prefix}
    # No runtime at all, attached at start: pyflame waits while the process
    # is young, then says what it looked for.
    target = start([a.host_dlopen, "--delay", "60", lib, SPIN])
    try:
        expect_error(a, target, ["no CPython runtime found in process %d" % target.pid,
                                 "while it was starting", "looked for"], max_seconds=10)
    finally:
        stop(target)
    # A runtime that is loaded but never initialised.
    ready = os.path.join(tmp, "ready")
    target = start([a.host_dlopen, "--no-init", "60", "--ready", ready, lib], env, wait_for=ready)
    try:
        expect_error(a, target, ["process %d has CPython %s." % (target.pid, a.python),
                                 "its interpreter is not initialised"], max_seconds=10)
    finally:
        stop(target)
    # The same in launch mode: the command ends without Python ever running.
    # The last look may come as the command exits.
    rc, out, err, _ = run_pyflame([a.pyflame, "-t", a.host_dlopen, "--no-init", "1", lib], env=env)
    if rc != 1 or "has CPython %s." % a.python not in err or (
            "its interpreter is not initialised" not in err and
            "it exited before its interpreter was initialised" not in err):
        fail("pyflame -t on a host that never initialises Python: exit %d" % rc, out, err)
    print("launch: %s" % err.strip())


def case_abi_mismatch(a):
    python = need_python(a.python)
    tmp = tmpdir()
    ready = os.path.join(tmp, "ready")
    target = start([python] + spin_args(ready), wait_for=ready)
    try:
        for wrong in ("3.6", "3.10"):
            expect_error(a, target, ["--abi=%s does not match process %d" % (wrong, target.pid),
                                     "it runs CPython %s." % a.python,
                                     "remove --abi or pass --abi=%s" % a.python],
                         extra=["--abi=%s" % wrong])
        attach_profile(a, target, ["CPython %s" % a.python], extra=["--abi=%s" % a.python])
    finally:
        stop(target)


def case_not_python(a):
    sleep = shutil.which("sleep")
    target = start([sleep, "100"])
    try:
        time.sleep(2.5)  # past the start-up grace: the answer is immediate
        expect_error(a, target, ["no CPython runtime found in process %d (%s)"
                                 % (target.pid, os.path.realpath(sleep)),
                                 "looked for the symbols _PyRuntime and interp_head, the section "
                                 ".PyRuntime"], max_seconds=1.5)
    finally:
        stop(target)
    # Attached right after start: the same answer, after the grace.
    target = start([sleep, "100"])
    try:
        expect_error(a, target, ["no CPython runtime found in process %d" % target.pid],
                     max_seconds=10)
    finally:
        stop(target)


def case_unsupported(a):
    cases = [("fakepy_old.so", ["CPython 3.5.0 (from the libpython soname)",
                                "cannot read; supported: 2.7, 3.6"]),
             ("fakepy_new.so", ["CPython 3.15.0 (from the Py_Version symbol)",
                                "cannot read; supported: 2.7, 3.6"]),
             ("fakepy_new_do.so", ["CPython 3.15.0 publishes _Py_DebugOffsets in a layout this "
                                   "pyflame does not know", "supported: 2.7, 3.6"]),
             ("fakepy_ft.so", ["CPython 3.13.0 is a free-threaded build (3.13t)",
                               "supported: 2.7, 3.6"])]
    for name, texts in cases:
        lib = os.path.join(a.fakes, name)
        if not os.path.exists(lib):
            fail("%s was not built" % lib)
        tmp = tmpdir()
        ready = os.path.join(tmp, "ready")
        target = start([a.host_dlopen, "--no-init", "60", "--ready", ready, lib], wait_for=ready)
        try:
            expect_error(a, target, texts)
        finally:
            stop(target)


def case_mismatch(a):
    """A runtime of a known version (3.11, fakepy_bad.so) whose memory does
    not match that version's layout. Attached as the process starts, the
    mismatch is not reported while the process is under 2 s old: until then
    ld.so may be halfway through loading libpython, the runtime's variables
    still the file's bytes (discover.c). pyflame -p waits 2 s, so it ends
    either with the mismatch, after the process turned 2 s old, or, when
    its own 2 s ran out first, saying the process is still starting.
    Attached later: the mismatch, at once."""
    lib = os.path.join(a.fakes, "fakepy_bad.so")
    if not os.path.exists(lib):
        fail("%s was not built" % lib)
    what = "what should be its interpreter state (0xdead0000) cannot be read"
    texts = ["CPython 3.11.0 (from the Py_Version symbol), but its memory does not match the "
             "layout pyflame takes from the generated 3.11 table", what,
             "A patched or unusual build? --abi=X.Y forces a version"]
    starting = ["has CPython 3.11.0 in %s (symbol _PyRuntime), but %s; it is still starting"
                % (lib, what)]
    ready = os.path.join(tmpdir(), "ready")
    born = time.time()
    target = start([a.host_dlopen, "--no-init", "60", "--ready", ready, lib], wait_for=ready)
    try:
        rc, out, err, _ = run_pyflame([a.pyflame, "-s", "1", "-p", str(target.pid)])
        age = time.time() - born
        want = starting if "it is still starting" in err else texts
        if rc != 1 or out or len(err.strip().splitlines()) != 1 or \
                any(t not in err for t in want):
            fail("attached at start-up: exit %d, wanted 1 and one line with %r" % (rc, want),
                 out, err)
        if want is texts and age < 2.0:
            fail("the mismatch was reported %.2f s after the target started, within its "
                 "start-up" % age, out, err)
        check_released(target, out, err)
        print("at start-up (%.1f s): %s" % (age, err.strip()))
        if time.time() - born < 2.0:
            time.sleep(2.0 - (time.time() - born))
        expect_error(a, target, texts, max_seconds=1.5)
    finally:
        stop(target)


CASES = {
    "renamed": case_renamed,
    "embed-linked": case_embed_linked,
    "embed-dlopen": case_embed_dlopen,
    "namespace": case_namespace,
    "deleted": case_deleted,
    "stripped": case_stripped,
    "section-only": case_section_only,
    "no-sections": case_no_sections,
    "early": case_early,
    "late-runtime": case_late_runtime,
    "never-ready": case_never_ready,
    "abi-mismatch": case_abi_mismatch,
    "mismatch": case_mismatch,
    "not-python": case_not_python,
    "unsupported": case_unsupported,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyflame", required=True)
    ap.add_argument("--host-dlopen", required=True)
    ap.add_argument("--host-linked")
    ap.add_argument("--host-linked-version")
    ap.add_argument("--fakes", required=True)
    ap.add_argument("--case", choices=sorted(CASES), required=True)
    ap.add_argument("--python", required=True)
    a = ap.parse_args()
    CASES[a.case](a)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

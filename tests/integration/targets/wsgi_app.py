# A WSGI application for pyflame's --subprocesses tests with gunicorn and
# uWSGI: every request spins for a few milliseconds on the marked line.
import os
import time


def handle():
    deadline = time.time() + 0.02
    while time.time() < deadline: pass  # LINE handle
    return os.getpid()


def application(environ, start_response):
    pid = handle()  # LINE application
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d\n" % pid).encode()]

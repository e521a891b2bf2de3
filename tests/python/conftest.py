"""Shared fixtures: each test module gets its own xapid on a free loopback port
with a fresh data directory, driven through the unmodified PyPI XenAPI client."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import XenAPI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XAPID = os.environ.get("XAPID_BIN", os.path.join(ROOT, "target", "debug", "xapid"))
PASSWORD = "test-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Xapid:
    """One server process: start, stop (gracefully or with SIGKILL), restart."""

    def __init__(self, data_dir=None, extra_args=()):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="xapid-test-")
        self.port = free_port()
        self.sock = os.path.join(self.data_dir, "xapi.sock")
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "xapid.log")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        log = open(self.log_path, "ab")
        args = [
            XAPID,
            "--data-dir", self.data_dir,
            "--http", "127.0.0.1:%d" % self.port,
            "--unix", self.sock,
            "--root-password", PASSWORD,
            "--login-failure-delay-ms", "100",
        ] + self.extra_args
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("xapid exited early; log:\n" + open(self.log_path).read())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("xapid did not start; log:\n" + open(self.log_path).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def session(self, url=None):
        s = XenAPI.Session(url or self.url)
        s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
        return s


@pytest.fixture(scope="module")
def xapid():
    x = Xapid().start()
    yield x
    x.cleanup()


@pytest.fixture(scope="module")
def session(xapid):
    s = xapid.session()
    yield s
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


@pytest.fixture(scope="module")
def api(session):
    return session.xenapi

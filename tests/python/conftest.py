"""Shared fixtures: each test module gets its own xapid on a free loopback port
with a fresh data directory, driven through the unmodified PyPI XenAPI client."""

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xmlrpc.client

import pytest
import XenAPI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XAPID = os.environ.get("XAPID_BIN", os.path.join(ROOT, "target", "debug", "xapid"))
PASSWORD = "test-password"


def require_tool(name):
    """The path of a tool a test needs. Missing, the test skips on a
    developer's machine but fails under CI (CI set), so a machine without it
    cannot pass silently (scripts/test.sh installs them)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("%s is not installed and CI is set" % name)
        pytest.skip("%s not installed" % name)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Xapid:
    """One server process: start, stop (gracefully or with SIGKILL), restart."""

    def __init__(self, data_dir=None, extra_args=(), netns=None):
        self.netns = netns
        self.proxy = None
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
        # In a network namespace the server listens on its Unix socket only
        # (a path, reachable from here); self.url is a TCP relay to it.
        tcp = [] if self.netns else ["--http", "127.0.0.1:%d" % self.port]
        args = [
            XAPID,
            "--data-dir", self.data_dir,
        ] + tcp + [
            "--unix", self.sock,
            "--root-password", PASSWORD,
        ] + ([] if "--login-failure-delay-ms" in self.extra_args else ["--login-failure-delay-ms", "100"]) \
            + self.extra_args
        if self.netns:
            args = ["ip", "netns", "exec", self.netns] + args
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("xapid exited early; log:\n" + open(self.log_path).read())
            try:
                if self.netns:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.settimeout(0.2)
                        s.connect(self.sock)
                    if self.proxy is None:
                        self.proxy = UnixRelay(self.port, self.sock)
                    return self
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
        if self.proxy:
            self.proxy.close()
        if self.own_dir and not os.environ.get("XAPI_TEST_KEEP"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self):
        """Graceful stop, then start again on the same data dir and port."""
        self.stop()
        return self.start()

    def session(self, url=None):
        s = XenAPI.Session(url or self.url)
        s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
        return s

    # ---- lower-level access, for wire-shape tests ----

    def raw(self, path="/"):
        """A plain xmlrpc.client proxy: calls return the raw
        {Status, Value|ErrorDescription} envelope (no XenAPI re-login magic)."""
        return xmlrpc.client.ServerProxy(self.url + path, allow_none=True)

    def connection(self, unix=False, timeout=10):
        """A keep-alive http.client connection over TCP or the Unix socket."""
        if unix:
            return UnixHTTPConnection(self.sock, timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def post(self, path, body, headers=None, method="POST", timeout=10, unix=False):
        """One raw HTTP request; returns (status, headers-dict-lowercased, body bytes)."""
        if isinstance(body, str):
            body = body.encode()
        c = self.connection(unix=unix, timeout=timeout)
        try:
            h = {"Content-Type": "text/xml"} if headers is None else headers
            c.request(method, path, body, h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def jsonrpc(self, method, params, id=1, version=1, path="/jsonrpc", unix=False):
        """One JSON-RPC call; returns (status, headers, decoded body or raw bytes)."""
        req = {"method": method, "params": params, "id": id}
        if version == 2:
            req["jsonrpc"] = "2.0"
        st, h, data = self.post(path, json.dumps(req), {"Content-Type": "application/json"}, unix=unix)
        try:
            return st, h, json.loads(data)
        except ValueError:
            return st, h, data

    def uds_session(self):
        """A XenAPI.Session speaking XML-RPC over this server's Unix socket."""
        return XenAPI.Session("http://localhost/", transport=UnixTransport(self.sock))


@contextlib.contextmanager
def netns(prefix, nics=("eth0",)):
    """A network namespace of its own, with lo up and each of `nics` a veth
    (its peer `<nic>p` beside it): a `--backend qemu` server in it makes its
    bridges and taps there, never on this machine's interfaces. Needs root:
    skipped on a developer's machine without it, a failure under CI."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("network namespaces need root, and CI is set")
        pytest.skip("network namespaces need root")
    require_tool("ip")
    name = "%s%d" % (prefix, os.getpid())
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for nic in nics:
            subprocess.run(["ip", "-n", name, "link", "add", nic, "type", "veth", "peer", "name", nic + "p"],
                           check=True)
        for dev in ["lo"] + [d for n in nics for d in (n, n + "p")]:
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name])


class UnixRelay:
    """A loopback TCP port relayed to a Unix socket: any client (PyPI
    XenAPI, npm xen-api, xe) reaches a server in a network namespace."""

    def __init__(self, port, path):
        self.path = path
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.socket(socket.AF_UNIX)
                u.connect(self.path)
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.lsock.close()


class UnixHTTPConnection(XenAPI.UDSHTTPConnection):
    """XenAPI's UDS connection, but with an explicit socket path
    (XenAPI derives the path from the host name, replacing '_' by '/')."""

    def __init__(self, path, timeout=None):
        if timeout is None:
            super().__init__("localhost")
        else:
            super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None and self.timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class UnixTransport(XenAPI.UDSTransport):
    def __init__(self, path):
        super().__init__()
        self.unix_path = path

    def make_connection(self, host):
        self._extra_headers = []
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._connection = host, UnixHTTPConnection(self.unix_path)
        return self._connection[1]


DATAMODEL = os.path.join(ROOT, "datamodel")


def dm_fields(cls):
    """The fields of a class from datamodel/<cls>.dm, as dicts
    {name (wire name), column (db column), type, qual, default (raw text or None), flags}."""
    out = []
    with open(os.path.join(DATAMODEL, cls + ".dm")) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("field "):
                continue
            data = line.split(" -- ", 1)[0].split()
            path, ty, qual = data[1], data[2], data[3]
            rest = data[4:]
            default = None
            if rest and rest[0] == "=":
                default = rest[1]
                rest = rest[2:]
            out.append({"name": path.replace("/", "_"), "column": path.replace("/", "__"),
                        "type": ty, "qual": qual, "default": default, "flags": rest})
    return out


def dm_messages(cls):
    """Explicit message names of a class."""
    out = []
    with open(os.path.join(DATAMODEL, cls + ".dm")) as f:
        for line in f:
            if line.startswith("message "):
                out.append(line.split()[1])
    return out


def vm_ctor(**kw):
    """A complete VM constructor struct (every required field), ints as strings."""
    d = {"name_label": "test-vm", "name_description": "", "user_version": "1", "is_a_template": False,
         "affinity": "OpaqueRef:NULL", "memory_static_max": str(1 << 30), "memory_dynamic_max": str(1 << 30),
         "memory_dynamic_min": str(1 << 29), "memory_static_min": str(1 << 28), "VCPUs_params": {},
         "VCPUs_max": "2", "VCPUs_at_startup": "1", "actions_after_shutdown": "destroy",
         "actions_after_reboot": "restart", "actions_after_crash": "restart", "PV_bootloader": "",
         "PV_kernel": "", "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "", "PV_legacy_args": "",
         "HVM_boot_policy": "BIOS order", "HVM_boot_params": {"order": "dc"}, "platform": {},
         "PCI_bus": "", "other_config": {}, "recommendations": ""}
    d.update(kw)
    return d


def failure(fn, *args):
    """Call fn(*args) and return the XenAPI.Failure details list (fails if no Failure)."""
    with pytest.raises(XenAPI.Failure) as ei:
        fn(*args)
    return ei.value.details


def halt_guests(api):
    """Hard-shut-down every guest still running or paused: a test that failed
    half-way must not leave its QEMU to the tests after it."""
    for vm, r in api.VM.get_all_records().items():
        if r["is_a_template"] or r["is_control_domain"] or r["power_state"] == "Halted":
            continue
        try:
            api.VM.hard_shutdown(vm)
        except XenAPI.Failure as e:
            print("halt_guests: %s: %s" % (r["name_label"], e.details))


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


@pytest.fixture(scope="module")
def sid(session):
    """The raw session ref of the module's session."""
    return session._session


@pytest.fixture(scope="module")
def raw(xapid):
    return xapid.raw()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test whose fixtures hold a pool lab (poollab.Lab, or a tuple
    with one) gets the lab's host logs in its report, while the hosts are
    still there (a `with lab()` inside the test prints them itself)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    seen = set()
    for value in getattr(item, "funcargs", {}).values():
        for v in (value if isinstance(value, tuple) else (value,)):
            logs = getattr(v, "logs", None)
            if type(v).__name__ == "Lab" and callable(logs) and id(v) not in seen:
                seen.add(id(v))
                rep.sections.append(("pool lab host logs", logs()[-600_000:]))

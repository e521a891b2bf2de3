"""A lab of xapid hosts for the pool tests (test_pool.py): each host a xapid in
a network namespace of its own, all of them on one bridge inside a "hub"
namespace, and nothing at all in this machine's own namespace.

    hub ns:    br0 10.77.0.1/24 -- vh1 -- vh2 -- vh3 ...
                                   |      |      |
    host ns:              eth0 10.77.0.11  .12    .13       (xapid on :80 / :443)

The test process stays in the root namespace. It reaches each host's TCP
listeners through relays (`TcpRelay`): loopback ports here whose connections
are opened from inside the host's namespace. A relayed connection is an
ordinary TCP client to the host (not its Unix socket, which is local root and
is forwarded by a pool member instead of being refused), so `PoolHost.url`
behaves as a remote client would see the host. The hosts' Unix sockets are
files in their data directories and are reachable from here as they are.

A member's HOST_IS_SLAVE answer names the master's address in the lab
(10.77.0.x), which only the namespaces can reach. A client that follows it by
itself runs inside the hub namespace: `Lab.hub_run(argv)` runs a command
there (e.g. node with npm xen-api), `Lab.in_hub(fn)` calls a Python function
on a thread that has entered the hub namespace. In the test process,
`Lab.by_address(ip)` maps an address back to its host (and so to a relay).

Needs root and `ip` (iproute2): without them the lab skips on a developer's
machine and fails under CI (CI set), as conftest.netns does.
"""

import atexit
import contextlib
import ctypes
import http.client
import os
import shutil
import socket
import subprocess
import ssl
import threading
import time
import xmlrpc.client

import pytest
import XenAPI

from conftest import PASSWORD, XAPID, Xapid, require_tool

SUBNET = "10.77.0"
HUB_ADDRESS = SUBNET + ".1"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def host_address(n):
    """The lab address of host number n (1-based): 10.77.0.(10+n)."""
    return "%s.%d" % (SUBNET, 10 + n)


def setns(name):
    """Move the calling thread (only it) into the network namespace `name`
    (os.setns only exists from Python 3.12; this is the same syscall)."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (name, os.strerror(e)))
    finally:
        os.close(fd)


def in_netns(name, fn, *args, timeout=120, **kw):
    """Call fn(*args, **kw) on a fresh thread inside namespace `name` and
    return its result (its exception is raised here). Sockets the function
    makes belong to that namespace."""
    box = {}

    def run():
        try:
            setns(name)
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: B902 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("%s in namespace %s did not return within %ss" % (fn, name, timeout))
    if "error" in box:
        raise box["error"]
    return box["value"]


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, capture_output=True, text=True)


def require_root():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the pool lab needs root (network namespaces), and CI is set")
        pytest.skip("the pool lab needs root (network namespaces)")
    require_tool("ip")


class TimeoutTransport(xmlrpc.client.Transport):
    """An XML-RPC transport whose connections give up after `timeout` seconds
    (XenAPI's default transport waits forever on a host that hangs)."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    """The HTTPS twin of TimeoutTransport, accepting any certificate."""

    def __init__(self, timeout):
        super().__init__(context=ssl._create_unverified_context())
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def client(url, timeout=30):
    """A PyPI XenAPI Session on `url` (http or https) with a bounded timeout, not logged in."""
    t = TimeoutSafeTransport(timeout) if url.startswith("https") else TimeoutTransport(timeout)
    return XenAPI.Session(url, transport=t)


class TcpRelay:
    """A loopback TCP port in this namespace relayed to addr:port as seen from
    inside namespace `netns`: each accepted connection is connected to the
    target by a thread that first enters the namespace. The target need not
    be listening yet (or any more): such a connection is simply closed."""

    def __init__(self, netns, addr, port, listen_port=0):
        self.netns, self.addr, self.target_port = netns, addr, port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(c,), daemon=True).start()

    def _connect(self, c):
        try:
            setns(self.netns)
            u = socket.create_connection((self.addr, self.target_port), timeout=10)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        threading.Thread(target=self._pump, args=(u, c), daemon=True).start()
        self._pump(c, u)

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
            a.close()

    def close(self):
        self.lsock.close()


class PoolHost(Xapid):
    """One lab host: a xapid in namespace `netns` listening on address:80 (HTTP)
    and address:443 (HTTPS) there, plus its Unix socket. `url` / `https_url`
    are loopback relays to those listeners, so every helper of conftest.Xapid
    (session, raw, post, jsonrpc, uds_session, kill9, restart) works over
    plain TCP. `lab_url` is the address other hosts and hub clients use."""

    def __init__(self, n, netns, extra_args=()):
        super().__init__(extra_args=extra_args, netns=netns)
        self.n = n
        self.name = "host%d" % n
        self.address = host_address(n)
        self.nic = "eth0"
        self.relay = None
        self.tls_relay = None

    @property
    def lab_url(self):
        return "http://%s" % self.address

    @property
    def https_url(self):
        return "https://127.0.0.1:%d" % self.tls_relay.port

    def args(self):
        return [
            XAPID,
            "--data-dir", self.data_dir,
            "--http", "%s:80" % self.address,
            "--https", "%s:443" % self.address,
            "--unix", self.sock,
            "--address", self.address,
            "--hostname", self.name,
            "--root-password", PASSWORD,
            "--nbd", "%s:10809" % self.address,
        ] + ([] if "--backend" in self.extra_args else ["--backend", "sim"]) \
            + ([] if "--login-failure-delay-ms" in self.extra_args else ["--login-failure-delay-ms", "100"]) \
            + self.extra_args

    def listening(self):
        """Whether the HTTP listener accepts connections (tried from inside the namespace)."""
        def probe():
            try:
                with socket.create_connection((self.address, 80), timeout=0.5):
                    return True
            except OSError:
                return False
        return in_netns(self.netns, probe, timeout=10)

    def start(self):
        if self.relay is None:
            self.relay = TcpRelay(self.netns, self.address, 80, listen_port=self.port)
            self.tls_relay = TcpRelay(self.netns, self.address, 443)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns] + self.args(), stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("xapid %s exited early; log:\n%s" % (self.name, self.log()))
            if os.path.exists(self.sock) and self.listening():
                return self
            time.sleep(0.1)
        raise RuntimeError("xapid %s did not start; log:\n%s" % (self.name, self.log()))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-20000:]
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        for r in (self.relay, self.tls_relay):
            if r:
                r.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---- the host's link ----

    def link(self, up):
        """Set the host's only NIC up or down inside its namespace (cuts it off the bridge)."""
        ip("-n", self.netns, "link", "set", self.nic, "up" if up else "down")

    # ---- clients ----

    def session(self, url=None, password=PASSWORD, timeout=30):
        """A PyPI XenAPI session over TCP (the relay), logged in as root;
        every call gives up after `timeout` seconds."""
        s = client(url or self.url, timeout)
        s.xenapi.login_with_password("root", password, "1.0", "pytest-pool")
        return s

    def local(self):
        """A XenAPI session over the host's Unix socket (local root: a member forwards it to the master)."""
        s = self.uds_session()
        s.xenapi.login_with_password("root", "", "1.0", "pytest-pool")
        return s

    def login_error(self, timeout=5):
        """The error list of a password login over TCP, None when it succeeds,
        ["DOWN", text] when the host does not answer at all."""
        try:
            s = self.session(timeout=timeout)
        except XenAPI.Failure as e:
            return e.details
        except (OSError, xmlrpc.client.ProtocolError, http.client.HTTPException) as e:
            return ["DOWN", repr(e)]
        try:
            s.xenapi.session.logout()
        except Exception:
            pass
        return None

    def __repr__(self):
        return "<%s %s in %s, relay :%s>" % (self.name, self.address, self.netns, self.port)


_open_labs = set()


@atexit.register
def _close_open_labs():
    """A lab still open when the interpreter exits (a test process cut short
    by sys.exit or an uncaught error outside a test) is torn down too."""
    for l in list(_open_labs):
        l.close()


class Lab:
    """The hub namespace with its bridge and a number of hosts. Use as a
    context manager (or call close()): leaving it always stops every xapid
    and deletes every namespace the lab made, whatever happened."""

    def __init__(self, count=2, prefix="pl", extra_args=()):
        require_root()
        self.tag = "%s%d" % (prefix, os.getpid())
        self.hub = self.tag + "hub"
        self.namespaces = []
        self.hosts = []
        _open_labs.add(self)
        try:
            self._netns_add(self.hub)
            ip("-n", self.hub, "link", "set", "lo", "up")
            ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            ip("-n", self.hub, "addr", "add", HUB_ADDRESS + "/24", "dev", "br0")
            ip("-n", self.hub, "link", "set", "br0", "up")
            for n in range(1, count + 1):
                self.add_host(n, extra_args)
        except BaseException:
            self.close()
            raise

    def _netns_add(self, name):
        ip("netns", "add", name)
        self.namespaces.append(name)

    def add_host(self, n, extra_args=()):
        """Make host n's namespace and veth, start its xapid; returns the PoolHost."""
        ns = "%sh%d" % (self.tag, n)
        self._netns_add(ns)
        vh = "vh%d" % n
        ip("-n", self.hub, "link", "add", vh, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", self.hub, "link", "set", vh, "master", "br0")
        ip("-n", self.hub, "link", "set", vh, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", host_address(n) + "/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        h = PoolHost(n, ns, extra_args=extra_args)
        self.hosts.append(h)
        h.start()
        return h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for h in self.hosts:
            try:
                h.cleanup()
            except Exception:
                pass
        self.hosts = []
        for ns in reversed(self.namespaces):
            ip("netns", "del", ns, check=False)
        self.namespaces = []
        _open_labs.discard(self)

    # ---- lookups ----

    def by_address(self, addr):
        for h in self.hosts:
            if h.address == addr:
                return h
        raise AssertionError("no lab host has address %r" % (addr,))

    # ---- running clients inside the hub ----

    def hub_run(self, argv, timeout=120, **kw):
        """Run a command inside the hub namespace (it reaches every host's
        lab address); returns the CompletedProcess (text, output captured)."""
        return subprocess.run(["ip", "netns", "exec", self.hub] + list(argv), capture_output=True, text=True,
                              timeout=timeout, **kw)

    def in_hub(self, fn, *args, timeout=120, **kw):
        """Call a Python function on a thread inside the hub namespace (see in_netns)."""
        return in_netns(self.hub, fn, *args, timeout=timeout, **kw)

    def logs(self):
        out = "\n".join("==== %s ====\n%s" % (h.name, h.log()) for h in self.hosts)
        if os.environ.get("POOLLAB_STACKS"):
            # A debugging aid for hangs: every thread's stack of every host.
            for h in self.hosts:
                if h.proc is not None and h.proc.poll() is None:
                    r = subprocess.run(["gdb", "-p", str(h.proc.pid), "-batch", "-ex", "thread apply all bt"],
                                       capture_output=True, text=True, timeout=120)
                    out += "\n==== %s: stacks ====\n%s" % (h.name, r.stdout[-100_000:])
        return out


@contextlib.contextmanager
def lab(count=2, **kw):
    """`with lab(3) as l:` a Lab of `count` hosts, torn down on the way out."""
    l = Lab(count, **kw)
    try:
        yield l
    except BaseException:
        # The hosts' logs go with the failure (pytest shows what a failed
        # test printed); the lab's directories do not outlive it.
        print(l.logs()[-600_000:])
        raise
    finally:
        l.close()


def leftovers():
    """Namespaces of this process's labs still present (for a test of the cleanup)."""
    tag = "pl%d" % os.getpid()
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(tag)]

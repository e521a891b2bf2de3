"""NBD export of VDIs (VDI.get_nbd_info and the NBD server, as xapi-nbd):
libnbd's nbdinfo and nbdcopy read a VDI over TLS (network purpose `nbd`)
and without (`insecure_nbd`) and get the bytes /export_raw_vdi sends; bad
sessions, unknown VDIs, a plain client on a TLS-only server, reads past the
end and writes are refused with clear errors, and nothing is written."""

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import urllib.parse
import urllib.request

import pytest

from conftest import Xapid, failure, free_port

MiB = 1 << 20
SIZE = 8 * MiB

NEED = [t for t in ("nbdinfo", "nbdcopy") if shutil.which(t) is None]
if NEED and os.environ.get("CI"):
    raise RuntimeError("tests/python/test_nbd.py needs %s (Debian's libnbd-bin)" % ", ".join(NEED))
pytestmark = pytest.mark.skipif(bool(NEED), reason="needs libnbd-bin (nbdinfo, nbdcopy)")


@pytest.fixture(scope="module")
def server():
    port = free_port()
    x = Xapid(extra_args=["--nbd", "127.0.0.1:%d" % port]).start()
    x.nbd_port = port
    yield x
    x.cleanup()


@pytest.fixture(scope="module")
def login(server):
    s = server.session()
    yield s.xenapi, s._session
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


@pytest.fixture(scope="module")
def api(login):
    return login[0]


@pytest.fixture(scope="module")
def mgmt(api):
    """The management PIF (127.0.0.1 here) and its network, with no NBD purpose."""
    pif = next(p for p, r in api.PIF.get_all_records().items() if r["management"])
    assert api.PIF.get_IP(pif) == "127.0.0.1"
    return pif, api.PIF.get_network(pif)


def set_purpose(api, net, purpose):
    for p in ("nbd", "insecure_nbd"):
        api.network.remove_purpose(net, p)
    if purpose:
        api.network.add_purpose(net, purpose)


def new_vdi(api, size=SIZE, sm_config=None):
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    return api.VDI.create({"SR": sr, "name_label": "nbd", "name_description": "", "virtual_size": str(size),
                           "type": "user", "sharable": False, "read_only": False, "other_config": {},
                           "xenstore_data": {}, "sm_config": sm_config or {}, "tags": []})


def put_raw(x, sid, vdi, data):
    req = urllib.request.Request("%s/import_raw_vdi?session_id=%s&vdi=%s&format=raw" % (x.url, sid, vdi),
                                 data=data, method="PUT")
    req.add_header("Content-Length", str(len(data)))
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        r.read()


def get_raw(x, sid, vdi):
    with urllib.request.urlopen("%s/export_raw_vdi?session_id=%s&vdi=%s&format=raw" % (x.url, sid, vdi),
                                timeout=60) as r:
        return r.read()


def content(size=SIZE, seed=1):
    """Known bytes with holes: every other MiB is zeros."""
    out = bytearray(size)
    for mib in range(0, size // MiB, 2):
        chunk = bytes((seed * 31 + mib * 7 + i) % 251 for i in range(4096))
        out[mib * MiB:(mib + 1) * MiB] = chunk * (MiB // 4096)
    out[-5:] = b"last!"
    return bytes(out)


def uri(info, tls, certdir=None, name=None):
    export = urllib.parse.quote(name if name is not None else info["exportname"], safe="")
    u = "%s://%s:%s/%s" % ("nbds" if tls else "nbd", info["address"], info["port"], export)
    if certdir:
        u += "?tls-certificates=" + certdir
    return u


def run(*args, timeout=60):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def refused(*args):
    """Run a libnbd tool that must fail; its stderr with libnbd's debug
    messages, which carry the server's error text (1.14 prints only errno)."""
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, LIBNBD_DEBUG="1"))
    assert r.returncode != 0, r.stdout
    return r.stderr


@pytest.fixture
def certdir(tmp_path):
    return str(tmp_path)


def write_cert(certdir, info):
    with open(os.path.join(certdir, "ca-cert.pem"), "w") as f:
        f.write(info["cert"])


def test_get_nbd_info_follows_network_purposes(api, login, server, mgmt):
    _, sid = login
    pif, net = mgmt
    vdi = new_vdi(api)
    set_purpose(api, net, None)
    assert api.VDI.get_nbd_info(vdi) == []
    set_purpose(api, net, "nbd")
    try:
        infos = api.VDI.get_nbd_info(vdi)
        assert len(infos) == 1
        info = infos[0]
        assert info["address"] == "127.0.0.1"
        assert int(info["port"]) == server.nbd_port
        assert info["exportname"] == "/%s?session_id=%s" % (api.VDI.get_uuid(vdi), sid)
        host = api.host.get_all()[0]
        assert info["cert"] == api.host.get_server_certificate(host)
        assert info["subject"] and "*" not in info["subject"]
        # insecure_nbd lists the same servers (without TLS).
        set_purpose(api, net, "insecure_nbd")
        assert len(api.VDI.get_nbd_info(vdi)) == 1
    finally:
        set_purpose(api, net, None)
    assert failure(api.VDI.get_nbd_info, "OpaqueRef:nope")[0] == "HANDLE_INVALID"


def test_nbdcopy_over_tls_equals_export_raw_vdi(api, login, server, mgmt, certdir, tmp_path):
    _, sid = login
    _, net = mgmt
    # Larger than the 32 MiB maximum request: nbdcopy splits its reads, and
    # asks block status about more than that at once.
    size = 48 * MiB
    vdi = new_vdi(api, size)
    data = content(size)
    put_raw(server, sid, vdi, data)
    set_purpose(api, net, "nbd")
    try:
        info = api.VDI.get_nbd_info(vdi)[0]
        write_cert(certdir, info)
        u = uri(info, True, certdir)
        r = run("nbdinfo", "--json", u)
        assert r.returncode == 0, r.stderr
        j = json.loads(r.stdout)
        assert j["exports"][0]["export-size"] == size
        assert j["exports"][0]["is_read_only"] is True
        assert j["exports"][0]["contexts"] == ["base:allocation"]
        out = str(tmp_path / "copy.raw")
        r = run("nbdcopy", u, out)
        assert r.returncode == 0, r.stderr
        got = open(out, "rb").read()
        assert got == data == get_raw(server, sid, vdi)
        # Holes are reported (block status), and only where the data is zeros.
        r = run("nbdinfo", "--map", u)
        assert r.returncode == 0, r.stderr
        rows = [line.split() for line in r.stdout.splitlines()]
        assert rows[0][0] == "0" and rows[0][3] == "data"
        assert sum(int(row[1]) for row in rows) == size
        holes = [(int(row[0]), int(row[1])) for row in rows if row[3] == "hole,zero"]
        assert holes and all(data[o:o + n] == bytes(n) for o, n in holes)

        # A plain client on a TLS-only server is told TLS is required.
        assert "TLS is required" in refused("nbdinfo", uri(info, False))
    finally:
        set_purpose(api, net, None)


def test_insecure_nbd_without_tls(api, login, server, mgmt, certdir, tmp_path):
    _, sid = login
    _, net = mgmt
    vdi = new_vdi(api)
    data = content(seed=2)
    put_raw(server, sid, vdi, data)
    set_purpose(api, net, "insecure_nbd")
    try:
        info = api.VDI.get_nbd_info(vdi)[0]
        out = str(tmp_path / "copy.raw")
        r = run("nbdcopy", uri(info, False), out)
        assert r.returncode == 0, r.stderr
        assert open(out, "rb").read() == data
        # A client that insists on TLS is refused it.
        write_cert(certdir, info)
        assert "TLS is not offered" in refused("nbdinfo", uri(info, True, certdir))
    finally:
        set_purpose(api, net, None)


def test_qcow2_vdi_over_nbd(api, login, server, mgmt, certdir, tmp_path):
    _, sid = login
    _, net = mgmt
    vdi = new_vdi(api, sm_config={"type": "qcow2"})
    assert api.VDI.get_sm_config(vdi).get("type") == "qcow2"
    data = content(seed=3)
    put_raw(server, sid, vdi, data)
    set_purpose(api, net, "nbd")
    try:
        info = api.VDI.get_nbd_info(vdi)[0]
        write_cert(certdir, info)
        out = str(tmp_path / "copy.raw")
        r = run("nbdcopy", uri(info, True, certdir), out)
        assert r.returncode == 0, r.stderr
        assert open(out, "rb").read() == data == get_raw(server, sid, vdi)
    finally:
        set_purpose(api, net, None)


def test_bad_sessions_and_exports_are_refused(api, server, mgmt, certdir):
    _, net = mgmt
    s = server.session()
    other, osid = s.xenapi, s._session
    vdi = new_vdi(api)
    set_purpose(api, net, "nbd")
    try:
        info = other.VDI.get_nbd_info(vdi)[0]
        write_cert(certdir, info)
        # A bogus VDI uuid.
        bogus = "/%s?session_id=%s" % ("00000000-0000-0000-0000-000000000000", osid)
        assert "UUID_INVALID [VDI; 00000000-" in refused("nbdinfo", uri(info, True, certdir, name=bogus))
        # Not an export name of ours.
        assert "session_id=<session>" in refused("nbdinfo", uri(info, True, certdir, name="disk"))
        # A session that has ended, and one that never was.
        other.session.logout()
        assert "SESSION_INVALID [%s]" % osid in refused("nbdinfo", uri(info, True, certdir))
        name = "/%s?session_id=OpaqueRef:bogus" % api.VDI.get_uuid(vdi)
        assert "SESSION_INVALID [OpaqueRef:bogus]" in refused("nbdinfo", uri(info, True, certdir, name=name))
        # nbdcopy says only that policy refused it (ERR_POLICY), and writes nothing.
        out = os.path.join(certdir, "never.raw")
        assert "policy prevents NBD_OPT_GO" in refused("nbdcopy", uri(info, True, certdir, name=name), out)
        assert not os.path.exists(out)
    finally:
        set_purpose(api, net, None)


# ---- a minimal client, to see the protocol's own answers


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        magic, opt, flags = struct.unpack(">QQH", self.recv(18))
        assert (magic, opt) == (0x4E42444D41474943, 0x49484156454F5054) and flags & 1
        self.s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("closed after %d of %d bytes" % (len(b), n))
            b += c
        return b

    def option(self, opt, data=b""):
        self.s.sendall(struct.pack(">QII", 0x49484156454F5054, opt, len(data)) + data)
        replies = []
        while True:
            magic, o, typ, n = struct.unpack(">QIII", self.recv(20))
            assert magic == 0x3E889045565A9 and o == opt
            replies.append((typ, self.recv(n)))
            if typ == 1 or typ >= 0x80000000:
                return replies

    def go(self, name):
        n = name.encode()
        return self.option(7, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))

    def request(self, cmd, offset, length, data=b""):
        self.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, cmd, 42, offset, length) + data)
        magic, err, cookie = struct.unpack(">IIQ", self.recv(16))
        assert magic == 0x67446698 and cookie == 42
        return err, (self.recv(length) if err == 0 and cmd == 0 else b"")

    def close(self):
        self.s.close()


def test_protocol_errors_reads_past_the_end_and_writes(api, login, server, mgmt):
    _, sid = login
    _, net = mgmt
    vdi = new_vdi(api)
    data = content(seed=4)
    put_raw(server, sid, vdi, data)
    name = "/%s?session_id=%s" % (api.VDI.get_uuid(vdi), sid)
    # No NBD purpose: the connection is closed before the greeting.
    set_purpose(api, net, None)
    c = socket.create_connection(("127.0.0.1", server.nbd_port), timeout=10)
    assert c.recv(18) == b""
    c.close()
    set_purpose(api, net, "nbd")
    try:
        c = Client(server.nbd_port)
        typ, msg = c.go(name)[-1]
        assert typ == 0x80000005 and b"TLS is required" in msg  # NBD_REP_ERR_TLS_REQD
        assert c.option(5, b"x")[-1][0] == 0x80000003  # STARTTLS with data: invalid
        c.close()
        set_purpose(api, net, "insecure_nbd")
        c = Client(server.nbd_port)
        assert c.option(5)[-1][0] == 0x80000002  # STARTTLS: policy (insecure_nbd)
        assert c.option(3) == [(1, b"")]  # LIST: nothing to list
        assert c.option(99)[-1][0] == 0x80000001  # unknown: unsupported
        typ, msg = c.go("/%s?session_id=OpaqueRef:dead" % api.VDI.get_uuid(vdi))[-1]
        assert typ == 0x80000002 and b"SESSION_INVALID" in msg
        typ, msg = c.go("/nope?session_id=%s" % sid)[-1]
        assert typ == 0x80000006 and b"UUID_INVALID" in msg
        replies = c.go(name)
        assert replies[-1] == (1, b"")
        info = next(d for t, d in replies if t == 3 and d[:2] == b"\0\0")
        size, flags = struct.unpack(">QH", info[2:12])
        assert size == SIZE and flags & 2  # read-only
        err, got = c.request(0, SIZE - 4096, 4096)
        assert err == 0 and got == data[-4096:]
        assert c.request(0, SIZE - 4096, 8192)[0] == 22  # past the end: EINVAL
        assert c.request(0, 1 << 62, 1)[0] == 22
        assert c.request(0, 0, 64 * MiB)[0] == 22  # larger than the maximum block size
        assert c.request(1, 0, 4096, b"\xff" * 4096)[0] == 1  # write: EPERM
        assert c.request(4, 0, 4096)[0] == 1  # trim: EPERM
        assert c.request(7, 0, 4096)[0] == 22  # block status without a meta context
        err, got = c.request(0, 0, 4096)
        assert err == 0 and got == data[:4096]
        c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 43, 0, 0))  # DISC
        assert c.s.recv(1) == b""
        c.close()
        # A VDI never written reads as zeros (sent by the plain writer after the file's data ends).
        empty = new_vdi(api)
        c = Client(server.nbd_port)
        assert c.go("/%s?session_id=%s" % (api.VDI.get_uuid(empty), sid))[-1] == (1, b"")
        err, got = c.request(0, SIZE - 3 * MiB, 3 * MiB)
        assert err == 0 and got == b"\0" * (3 * MiB)
        c.close()
    finally:
        set_purpose(api, net, None)
    assert get_raw(server, sid, vdi) == data  # nothing was written


"""VM consoles as xapi has them (xapi_xenops.ml, console.ml): a running VM
gets an `rfb` console whose location is https://<host address>/console?uuid=
<console uuid>; `CONNECT /console` answers 200 and then carries RFB, which
the simulator speaks itself (crates/server/src/rfb.rs)."""

import base64
import socket
import struct

import pytest
import XenAPI

from conftest import PASSWORD
from vmlib import remove, running

ETCH = "Debian Etch 4.0"


@pytest.fixture(scope="module")
def vm(api):
    v = running(api, "console vm", tmpl=ETCH)
    yield v
    remove(api, v)


def console_of(api, vm):
    cons = api.VM.get_consoles(vm)
    assert len(cons) == 1
    return cons[0]


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("got %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(1)
        if not c:
            break
        buf += c
    return buf.decode("latin-1")


def connect(xapid, query, method="CONNECT", headers=""):
    s = socket.create_connection(("127.0.0.1", xapid.port), timeout=10)
    s.sendall(("%s /console?%s HTTP/1.0\r\n%s\r\n" % (method, query, headers)).encode())
    return s, recv_head(s)


def status(head):
    return int(head.split(" ", 2)[1])


def test_running_vm_has_an_rfb_console(api, vm):
    con = console_of(api, vm)
    rec = api.console.get_record(con)
    assert rec["protocol"] == "rfb"
    assert rec["VM"] == vm
    assert rec["other_config"] == {}
    host = api.host.get_all()[0]
    assert rec["location"] == "https://%s/console?uuid=%s" % (api.host.get_address(host), rec["uuid"])


def test_rfb_38_handshake_and_full_update(xapid, api, sid, vm):
    con = console_of(api, vm)
    uuid = api.console.get_uuid(con)
    s, head = connect(xapid, "uuid=%s&session_id=%s" % (uuid, sid))
    with s:
        assert head.startswith("HTTP/1.1 200 OK\r\n"), head
        assert recv_exact(s, 12) == b"RFB 003.008\n"
        s.sendall(b"RFB 003.008\n")
        assert recv_exact(s, 2) == b"\x01\x01"
        s.sendall(b"\x01")
        assert recv_exact(s, 4) == b"\x00\x00\x00\x00"
        s.sendall(b"\x01")  # shared
        w, h = struct.unpack(">HH", recv_exact(s, 4))
        assert (w, h) == (640, 480)
        pf = recv_exact(s, 16)
        assert pf[0] == 32 and pf[1] == 24 and pf[2] == 0 and pf[3] == 1
        assert pf[10:13] == b"\x10\x08\x00"
        (n,) = struct.unpack(">I", recv_exact(s, 4))
        assert recv_exact(s, n).decode() == api.VM.get_name_label(vm)
        # SetEncodings [Raw], a key, the pointer, a cut text, then a full update.
        s.sendall(struct.pack(">BxHi", 2, 1, 0))
        s.sendall(struct.pack(">BBxxI", 4, 1, 0x61))
        s.sendall(struct.pack(">BBHH", 5, 0, 10, 10))
        s.sendall(struct.pack(">BxxxI", 6, 5) + b"hello")
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, 640, 480))
        t, nrects = struct.unpack(">BxH", recv_exact(s, 4))
        assert (t, nrects) == (0, 1)
        x, y, rw, rh, enc = struct.unpack(">HHHHi", recv_exact(s, 12))
        assert (x, y, rw, rh, enc) == (0, 0, 640, 480, 0)
        pixels = recv_exact(s, 640 * 480 * 4)
        assert len(set(pixels[i:i + 4] for i in range(0, len(pixels), 4 * 997))) > 1


def test_rfb_33_by_vm_ref_and_basic_auth(xapid, api, vm):
    auth = base64.b64encode(("root:" + PASSWORD).encode()).decode()
    s, head = connect(xapid, "ref=%s" % vm, headers="Authorization: Basic %s\r\n" % auth)
    with s:
        assert status(head) == 200, head
        assert recv_exact(s, 12) == b"RFB 003.008\n"
        s.sendall(b"RFB 003.003\n")
        assert recv_exact(s, 4) == b"\x00\x00\x00\x01"
        s.sendall(b"\x00")
        assert struct.unpack(">HH", recv_exact(s, 4)) == (640, 480)


def test_session_cookie_and_get(xapid, api, sid, vm):
    con = console_of(api, vm)
    s, head = connect(xapid, "ref=%s" % con, method="GET", headers="Cookie: session_id=%s\r\n" % sid)
    with s:
        assert status(head) == 200, head
        assert recv_exact(s, 12) == b"RFB 003.008\n"


def test_errors(xapid, api, sid, vm):
    uuid = api.console.get_uuid(console_of(api, vm))
    s, head = connect(xapid, "uuid=%s" % uuid)
    s.close()
    assert status(head) == 401 and "WWW-Authenticate" in head
    s, head = connect(xapid, "uuid=%s&session_id=OpaqueRef:nonsense" % uuid)
    s.close()
    assert status(head) == 401
    s, head = connect(xapid, "uuid=00000000-0000-0000-0000-000000000000&session_id=%s" % sid)
    s.close()
    assert status(head) == 404
    s, head = connect(xapid, "session_id=%s" % sid)
    s.close()
    assert status(head) == 404


WS = "Upgrade: websocket\r\nConnection: Upgrade\r\n"


def test_websocket_upgrades_it_cannot_do_are_501(xapid, sid, vm):
    """As xapi answers a failed upgrade (the WebSocket path itself is tested
    with the npm ws client in tests/node/test/console.test.mjs)."""
    q = "ref=%s&session_id=%s" % (vm, sid)
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    for extra in ["Sec-WebSocket-Version: 8\r\n" + key,  # another version
                  "Sec-WebSocket-Version: 13\r\n",  # no key
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: base64\r\n" + key]:
        s, head = connect(xapid, q, method="GET", headers=WS + extra)
        s.close()
        assert status(head) == 501, (extra, head)
    # A good upgrade: 101 with the RFC 6455 accept value for this key.
    s, head = connect(xapid, q, method="GET", headers=WS + "Sec-WebSocket-Version: 13\r\n" + key)
    with s:
        assert status(head) == 101, head
        assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
        assert "Sec-WebSocket-Protocol" not in head  # none asked for, none chosen
        # The first server message: a binary frame holding RFB's version.
        assert recv_exact(s, 2 + 12) == b"\x82\x0cRFB 003.008\n"


def test_garbage_after_connect_closes_cleanly(xapid, api, sid, vm):
    uuid = api.console.get_uuid(console_of(api, vm))
    s, head = connect(xapid, "uuid=%s&session_id=%s" % (uuid, sid))
    with s:
        assert status(head) == 200
        recv_exact(s, 12)
        s.sendall(b"RFB 003.008\n\x01\x01")
        recv_exact(s, 2 + 4 + 24 + len(api.VM.get_name_label(vm)))
        s.sendall(b"\x63")  # unknown message type
        assert s.recv(1) == b""
    # The server is still serving.
    assert api.VM.get_power_state(vm) == "Running"


def test_consoles_follow_the_domain(xapid, api, sid):
    v = running(api, "console lifecycle", tmpl=ETCH)
    try:
        con = console_of(api, v)
        uuid = api.console.get_uuid(con)
        api.VM.clean_reboot(v)
        assert api.VM.get_consoles(v) == [con]
        api.VM.pause(v)
        assert api.VM.get_consoles(v) == [con]
        s, head = connect(xapid, "uuid=%s&session_id=%s" % (uuid, sid))
        s.close()
        assert status(head) == 404  # not Running
        api.VM.unpause(v)
        # An open console session ends with the domain.
        s, head = connect(xapid, "uuid=%s&session_id=%s" % (uuid, sid))
        with s:
            assert status(head) == 200
            recv_exact(s, 12)
            s.sendall(b"RFB 003.008\n\x01\x01")
            recv_exact(s, 2 + 4 + 24 + len("console lifecycle"))
            api.VM.hard_shutdown(v)
            assert s.recv(1) == b""
        assert api.VM.get_consoles(v) == []
        with pytest.raises(XenAPI.Failure) as ei:
            api.console.get_record(con)
        assert ei.value.details[0] == "HANDLE_INVALID"
        s, head = connect(xapid, "uuid=%s&session_id=%s" % (uuid, sid))
        s.close()
        assert status(head) == 404
        api.VM.start(v, False, False)
        cons = api.VM.get_consoles(v)
        assert len(cons) == 1 and cons[0] != con
        api.VM.suspend(v)
        assert api.VM.get_consoles(v) == []
        api.VM.resume(v, False, False)
        assert len(api.VM.get_consoles(v)) == 1
        api.VM.clean_shutdown(v)
        assert api.VM.get_consoles(v) == []
        assert v not in [api.console.get_VM(c) for c in api.console.get_all()]
    finally:
        remove(api, v)

"""Large replies (hundreds of records) are sent while they are encoded:
chunked on HTTP/1.1, close-delimited on HTTP/1.0, byte-for-byte the reply a
whole encoding would give, and every client reads them unchanged."""

import json
import socket
import xmlrpc.client

import pytest

from conftest import vm_ctor

N = 300


@pytest.fixture(scope="module")
def many(api):
    refs = [api.VM.create(vm_ctor(name_label="bulk-%03d" % i, name_description="<&\"%d\">" % i)) for i in range(N)]
    return refs


def test_xenapi_reads_a_streamed_get_all_records(api, many):
    recs = api.VM.get_all_records()
    assert set(many) <= set(recs)
    for ref in many[:5] + many[-5:]:
        assert recs[ref] == api.VM.get_record(ref)
    assert len(api.VM.get_all()) == len(recs)


def test_streamed_reply_is_chunked_and_well_formed(xapid, sid, many):
    body = xmlrpc.client.dumps((sid,), "VM.get_all_records")
    st, h, data = xapid.post("/", body)
    assert st == 200
    assert h.get("transfer-encoding") == "chunked"
    assert "content-length" not in h
    assert h["content-type"] == "text/xml"
    (env,), _ = xmlrpc.client.loads(data)
    assert env["Status"] == "Success"
    assert set(many) <= set(env["Value"])
    # Small replies keep their Content-Length.
    st, h, _ = xapid.post("/", xmlrpc.client.dumps((sid, many[0]), "VM.get_record"))
    assert "content-length" in h and "transfer-encoding" not in h


@pytest.mark.parametrize("version", [1, 2])
def test_jsonrpc_streamed_reply(xapid, api, sid, many, version):
    st, h, reply = xapid.jsonrpc("VM.get_all_records", [sid], id="big", version=version)
    assert st == 200 and h.get("transfer-encoding") == "chunked"
    assert reply["id"] == "big"
    assert ("error" in reply) == (version == 1)
    if version == 1:
        assert reply["error"] is None
    recs = reply["result"]
    assert set(many) <= set(recs)
    assert recs[many[7]]["name_description"] == '<&"7">'
    st, h, reply = xapid.jsonrpc("VM.get_all", [sid], version=version)
    assert sorted(reply["result"]) == sorted(api.VM.get_all())


def test_unix_socket_streamed(xapid, many):
    s = xapid.uds_session()
    s.xenapi.login_with_password("root", "", "1.0", "pytest")
    assert set(many) <= set(s.xenapi.VM.get_all_records())


def test_http10_gets_a_close_delimited_body(xapid, sid, many):
    body = xmlrpc.client.dumps((sid,), "VM.get_all").encode()
    with socket.create_connection(("127.0.0.1", xapid.port), timeout=10) as c:
        c.sendall(b"POST / HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            data += b
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    assert b"chunked" not in head.lower()
    (env,), _ = xmlrpc.client.loads(payload)
    assert set(many) <= set(env["Value"])


def test_streamed_over_https():
    """The same over TLS (self-signed certificate, as clients connect)."""
    from conftest import PASSWORD, Xapid, free_port
    import XenAPI
    port = free_port()
    x = Xapid(extra_args=["--https", "127.0.0.1:%d" % port]).start()
    try:
        s = XenAPI.Session("https://127.0.0.1:%d" % port, ignore_ssl=True)
        s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
        api = s.xenapi
        refs = [api.VM.create(vm_ctor(name_label="tls-%d" % i)) for i in range(N)]
        recs = api.VM.get_all_records()
        assert set(refs) <= set(recs)
        assert recs[refs[-1]]["name_label"] == "tls-%d" % (N - 1)
    finally:
        x.cleanup()


def test_client_leaving_mid_reply(xapid, api, sid, many):
    """A client that closes the connection while a streamed reply is being
    sent stops its encoder; the server goes on serving."""
    body = xmlrpc.client.dumps((sid,), "VM.get_all_records").encode()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", xapid.port), timeout=10) as c:
            c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            assert c.recv(1000).startswith(b"HTTP/1.1 200")
    assert set(many) <= set(api.VM.get_all_records())

"""XML-RPC wire details, checked on the raw bytes (xapi-reference.md §1)."""

import re
import socket
import time
import xml.etree.ElementTree as ET
import xmlrpc.client

import pytest

from conftest import PASSWORD


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def call_xml(method, *values, prolog=True):
    """A methodCall whose params are the given raw <value> inner XML fragments."""
    params = "".join("<param><value>%s</value></param>" % v for v in values)
    return ('%s<methodCall><methodName>%s</methodName><params>%s</params></methodCall>'
            % ('<?xml version="1.0"?>' if prolog else "", method, params))


def s(v):
    """A string param, untyped."""
    return esc(v)


def envelope(body):
    """Decode a methodResponse with the stdlib; return the single param."""
    (v,), _ = xmlrpc.client.loads(body)
    return v


def value_xml(body):
    """The raw XML of the envelope's Value member."""
    m = re.search(rb"<member><name>Value</name>(.*)</member></struct></value></param></params></methodResponse>$",
                  body, re.S)
    assert m, body
    return m.group(1)


@pytest.fixture(scope="module")
def post(xapid):
    def _post(body, path="/", headers=None):
        return xapid.post(path, body, headers)
    return _post


@pytest.fixture(scope="module")
def xenbr0(api):
    (ref,) = [r for r, n in api.network.get_all_records().items() if n["bridge"] == "xenbr0"]
    return ref


@pytest.mark.parametrize("path", ["/", "/RPC2", "/xmlrpc", "/json", "/some/other/path"])
def test_xmlrpc_on_any_post_path(post, sid, path):
    st, h, body = post(call_xml("session.get_this_host", s(sid), s(sid)), path)
    assert st == 200
    assert h["content-type"] == "text/xml"
    v = envelope(body)
    assert v["Status"] == "Success"
    assert v["Value"].startswith("OpaqueRef:")


def test_no_prolog_and_whitespace_accepted(post, sid):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<methodCall>\n  <methodName>session.get_this_host</methodName>\n'
            '  <params>\n    <param>\n      <value><string>%s</string></value>\n    </param>\n'
            '    <param><value>%s</value></param>\n  </params>\n</methodCall>\n' % (sid, sid))
    st, _, out = post(body)
    assert st == 200 and envelope(out)["Status"] == "Success"
    st, _, out = post(call_xml("session.get_this_host", s(sid), s(sid), prolog=False))
    assert st == 200 and envelope(out)["Status"] == "Success"


def test_request_content_type_with_charset(post, sid):
    st, h, out = post(call_xml("pool.get_all", s(sid)), "/", {"Content-Type": "text/xml; charset=utf-8"})
    assert st == 200 and envelope(out)["Status"] == "Success"


def test_compact_xml_and_envelope_order(post, sid):
    st, _, body = post(call_xml("session.get_record", s(sid), s(sid)))
    assert st == 200
    assert body.startswith(b'<?xml version="1.0"?><methodResponse><params><param><value><struct>'
                           b'<member><name>Status</name><value>Success</value></member>'
                           b'<member><name>Value</name>')
    assert b"\n" not in body
    assert not re.search(rb">\s+<", body)
    assert b"<string>" not in body


def test_failure_envelope(post, sid):
    st, h, body = post(call_xml("VM.get_record", s(sid), s("OpaqueRef:nope")))
    assert st == 200
    assert h["content-type"] == "text/xml"
    assert body == (b'<?xml version="1.0"?><methodResponse><params><param><value><struct>'
                    b'<member><name>Status</name><value>Failure</value></member>'
                    b'<member><name>ErrorDescription</name><value><array><data>'
                    b'<value>HANDLE_INVALID</value><value>VM</value><value>OpaqueRef:nope</value>'
                    b'</data></array></value></member></struct></value></param></params></methodResponse>')
    assert b"<fault>" not in body


def test_int64_is_bare_value(post, sid, xenbr0):
    st, _, body = post(call_xml("network.get_MTU", s(sid), s(xenbr0)))
    assert value_xml(body) == b"<value>1500</value>"
    # A large one: host memory.
    host = envelope(post(call_xml("session.get_this_host", s(sid), s(sid)))[2])["Value"]
    hm = envelope(post(call_xml("host.get_metrics", s(sid), s(host)))[2])["Value"]
    st, _, body = post(call_xml("host_metrics.get_memory_total", s(sid), s(hm)))
    assert re.fullmatch(rb"<value>\d+</value>", value_xml(body)), body
    assert int(envelope(body)["Value"]) > 2 ** 31


def test_bool_encoding(post, sid):
    st, _, body = post(call_xml("session.get_is_local_superuser", s(sid), s(sid)))
    assert value_xml(body) == b"<value><boolean>1</boolean></value>"
    st, _, body = post(call_xml("session.get_pool", s(sid), s(sid)))
    assert value_xml(body) == b"<value><boolean>0</boolean></value>"


def test_datetime_encoding(post, sid):
    st, _, body = post(call_xml("session.get_last_active", s(sid), s(sid)))
    assert re.fullmatch(rb"<value><dateTime.iso8601>\d{8}T\d\d:\d\d:\d\dZ</dateTime.iso8601></value>",
                        value_xml(body)), body


def test_string_ref_and_null_ref_encoding(post, sid):
    st, _, body = post(call_xml("session.get_auth_user_name", s(sid), s(sid)))
    assert value_xml(body) == b"<value>root</value>"
    st, _, body = post(call_xml("session.get_this_user", s(sid), s(sid)))
    assert value_xml(body) == b"<value>OpaqueRef:NULL</value>"


def test_empty_set_and_map_encoding(post, sid):
    st, _, body = post(call_xml("session.get_rbac_permissions", s(sid), s(sid)))
    assert value_xml(body) == b"<value><array><data></data></array></value>"
    st, _, body = post(call_xml("session.get_record", s(sid), s(sid)))
    assert b"<member><name>other_config</name><value><struct></struct></value></member>" in body


def test_float_encoding(post, api, sid):
    vm = api.VM.get_by_name_label("Debian Bookworm 12")[0]
    st, _, body = post(call_xml("VM.get_HVM_shadow_multiplier", s(sid), s(vm)))
    assert value_xml(body) == b"<value><double>1</double></value>"


def test_void_result_is_empty_value(post, api, sid, xenbr0):
    st, _, body = post(call_xml("network.set_name_description", s(sid), s(xenbr0), s("d")))
    assert value_xml(body) == b"<value></value>"
    assert envelope(body) == {"Status": "Success", "Value": ""}


def test_string_escaping_roundtrip(post, api, sid):
    net = api.network.create({"name_label": "esc", "other_config": {}})
    try:
        tricky = 'a<b>&"c\' \u00e9\u4e2d'
        st, _, body = post(call_xml("network.set_name_label", s(sid), s(net), esc(tricky)))
        assert envelope(body)["Status"] == "Success"
        st, _, body = post(call_xml("network.get_name_label", s(sid), s(net)))
        assert envelope(body)["Value"] == tricky
        raw = value_xml(body)
        assert b"&lt;b&gt;&amp;" in raw
        assert b"<b>" not in raw
        assert "\u00e9\u4e2d".encode() in raw  # UTF-8 passed through raw
    finally:
        api.network.destroy(net)


@pytest.mark.parametrize("typed", ["<int>9000</int>", "<i4>9000</i4>", "<i8>9000</i8>",
                                   "9000", "<string>9000</string>"])
def test_int_param_encodings_accepted(post, api, sid, typed):
    net = api.network.create({"name_label": "mtu", "other_config": {}})
    try:
        st, _, body = post(call_xml("network.set_MTU", s(sid), s(net), typed))
        assert envelope(body) == {"Status": "Success", "Value": ""}, body
        assert api.network.get_MTU(net) == "9000"
    finally:
        api.network.destroy(net)


def test_bool_param_only_1_is_true(post, api, sid):
    pool = api.pool.get_all()[0]
    try:
        for text, expect in [("1", True), ("0", False), ("1", True), ("true", False)]:
            st, _, body = post(call_xml("pool.set_ha_allow_overcommit", s(sid), s(pool),
                                        "<boolean>%s</boolean>" % text))
            assert envelope(body)["Status"] == "Success"
            assert api.pool.get_ha_allow_overcommit(pool) is expect, text
    finally:
        api.pool.set_ha_allow_overcommit(pool, False)


def test_struct_and_array_params(post, api, sid):
    ctor = ("<struct><member><name>name_label</name><value>fromxml</value></member>"
            "<member><name>MTU</name><value><i4>1400</i4></value></member>"
            "<member><name>other_config</name><value><struct><member><name>k</name>"
            "<value>v</value></member></struct></value></member>"
            "<member><name>tags</name><value><array><data><value>t1</value><value><string>t2</string></value>"
            "</data></array></value></member></struct>")
    st, _, body = post(call_xml("network.create", s(sid), ctor))
    net = envelope(body)["Value"]
    try:
        rec = api.network.get_record(net)
        assert rec["name_label"] == "fromxml"
        assert rec["MTU"] == "1400"
        assert rec["other_config"] == {"k": "v"}
        assert sorted(rec["tags"]) == ["t1", "t2"]
    finally:
        api.network.destroy(net)


def test_empty_value_element_is_empty_string(post, api, sid):
    net = api.network.create({"name_label": "nonempty", "other_config": {}})
    try:
        body = ('<methodCall><methodName>network.set_name_label</methodName><params>'
                '<param><value>%s</value></param><param><value>%s</value></param>'
                '<param><value/></param></params></methodCall>' % (sid, net))
        st, _, out = post(body)
        assert envelope(out)["Status"] == "Success"
        assert api.network.get_name_label(net) == ""
    finally:
        api.network.destroy(net)


def test_underscore_method_names(post, sid):
    st, _, body = post(call_xml("session_get_this_host", s(sid), s(sid)))
    v = envelope(body)
    assert v["Status"] == "Success" and v["Value"].startswith("OpaqueRef:")
    st, _, body = post(call_xml("VM_get_all", s(sid)))
    v = envelope(body)
    assert v["Status"] == "Success" and len(v["Value"]) > 5


def test_xenapi_event_from_underscore(api):
    # xenapi.event_from goes out literally as "event_from".
    r = api.event_from(["pool"], "", 0.0)
    assert set(r) >= {"events", "valid_ref_counts", "token"}


def test_list_methods_bare_array(post, xapid):
    st, h, body = post(call_xml("system.listMethods"))
    assert st == 200 and h["content-type"] == "text/xml"
    assert body.startswith(b'<?xml version="1.0"?><methodResponse><params><param><value><array><data>')
    assert b"Status" not in body
    methods = envelope(body)
    assert isinstance(methods, list)
    for m in ["session.login_with_password", "session.logout", "VM.get_record", "VM.get_all_records",
              "VM.start", "event.from", "network.create", "pool.add_to_other_config", "host.get_record"]:
        assert m in methods, m
    assert not [m for m in methods if m.startswith("Async.")]
    # Via the standard library helper too.
    assert "VM.get_all" in xapid.raw().system.listMethods()


def test_is_alive(post):
    st, h, body = post(call_xml("system.isAlive:probe", s("hello")))
    assert st == 200
    assert envelope(body) == {"Status": "Success", "Value": "hello"}


def test_missing_params_is_http_500(post):
    st, h, body = post("<?xml version=\"1.0\"?><methodCall><methodName>system.listMethods</methodName></methodCall>")
    assert st == 500


@pytest.mark.parametrize("bad", [
    b"this is not xml",
    b"<methodCall><methodName>pool.get_all</methodName><params>",
    b"<methodCall><params></params></methodCall>",
    b"<methodCall><methodName>pool.get_all</methodName><params><param><value><struct><member>"
    b"</member></struct></value></param></params></methodCall>",
    b"<methodCall><methodName>pool.get_all</methodName><params><param><value><int>abc</int>"
    b"</value></param></params></methodCall>",
    b"<methodResponse><params></params></methodResponse>",
    b"\x00\xff\xfe garbage \x80",
    b"",
])
def test_malformed_xml_is_http_500_html(post, bad):
    st, h, body = post(bad)
    assert st == 500, (bad, st, body)
    assert h.get("content-type", "").startswith("text/html"), h


def test_server_survives_garbage(xapid, post, sid):
    for _ in range(3):
        post(b"<<<>>>")
    st, _, body = post(call_xml("pool.get_all", s(sid)))
    assert envelope(body)["Status"] == "Success"


def raw_http(xapid, request_bytes, send_after=b"", timeout=5.0):
    """Send bytes over a fresh TCP connection; return the response head+body read until close/timeout."""
    sock = socket.create_connection(("127.0.0.1", xapid.port), timeout=timeout)
    try:
        sock.sendall(request_bytes)
        if send_after:
            try:
                sock.sendall(send_after)
            except OSError:
                pass
        data = b""
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
        return data
    finally:
        sock.close()


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    assert m, resp[:200]
    return int(m.group(1))


def test_body_over_300k_rejected_without_reading_it(xapid):
    declared = 10 * 1024 * 1024
    head = ("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
            % declared).encode()
    t0 = time.time()
    resp = raw_http(xapid, head + b"<methodCall>" + b" " * 1000, timeout=5)
    assert time.time() - t0 < 4, "server waited for the whole declared body"
    assert status_of(resp) == 413


def test_body_just_over_limit_rejected(xapid, post, sid):
    filler = "x" * (300 * 1024)
    st, _, _ = post(call_xml("system.isAlive:x", s(filler)))
    assert st == 413
    # Just under is fine.
    st, _, body = post(call_xml("system.isAlive:x", s("y" * (299 * 1024))))
    assert st == 200 and envelope(body)["Status"] == "Success"


def test_missing_content_length_rejected(xapid, sid):
    body = call_xml("pool.get_all", s(sid)).encode()
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n" + body
    resp = raw_http(xapid, req, timeout=5)
    assert status_of(resp) == 500


def test_chunked_body_rejected(xapid, sid):
    body = call_xml("pool.get_all", s(sid)).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    req = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + chunked)
    resp = raw_http(xapid, req, timeout=5)
    assert status_of(resp) == 500


def test_keep_alive(xapid, sid):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", xapid.port, timeout=5)
    try:
        for _ in range(5):
            c.request("POST", "/", call_xml("pool.get_all", s(sid)), {"Content-Type": "text/xml"})
            r = c.getresponse()
            assert r.status == 200
            assert envelope(r.read())["Status"] == "Success"
    finally:
        c.close()


def test_cors_headers_on_rpc(post, sid, xapid):
    st, h, _ = post(call_xml("pool.get_all", s(sid)))
    assert h.get("access-control-allow-origin") == "*"
    assert "X-Requested-With" in h.get("access-control-allow-headers", "")
    st, h, _ = xapid.jsonrpc("pool.get_all", [sid])
    assert h.get("access-control-allow-origin") == "*"
    assert "X-Requested-With" in h.get("access-control-allow-headers", "")


@pytest.mark.parametrize("path", ["/", "/json", "/jsonrpc"])
def test_options_preflight(xapid, path):
    st, h, body = xapid.post(path, b"", {"Origin": "http://example.com",
                                         "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "content-type"},
                             method="OPTIONS")
    assert st == 200
    assert h.get("access-control-allow-origin") == "*"
    allow_headers = h.get("access-control-allow-headers", "")
    assert "content-type" in allow_headers.lower()
    assert "X-Requested-With" in allow_headers
    assert "access-control-allow-methods" in h


def test_login_over_raw_xml(post):
    st, _, body = post(call_xml("session.login_with_password", s("root"), s(PASSWORD)))
    v = envelope(body)
    assert v["Status"] == "Success"
    post(call_xml("session.logout", s(v["Value"])))


def test_get_all_records_xml_parses(post, sid):
    st, _, body = post(call_xml("VM.get_all_records", s(sid)))
    assert st == 200
    ET.fromstring(body)  # well-formed
    recs = envelope(body)["Value"]
    assert len(recs) > 5
    for ref, rec in recs.items():
        assert ref.startswith("OpaqueRef:")
        assert isinstance(rec["memory_static_max"], str) and rec["memory_static_max"].isdigit()


def test_control_characters_dropped_in_xml(xapid, post, api, sid):
    net = api.network.create({"name_label": "ctl", "other_config": {}})
    try:
        # JSON can carry a raw control character; XML-RPC output must drop it
        # (TAB, LF and CR are kept), so that XML parsers accept the reply.
        st, h, r = xapid.jsonrpc("network.set_name_label", [sid, net, "a\x01b\x1fc\td\ne\rf\"g"])
        assert r["error"] is None
        st, _, body = post(call_xml("network.get_name_label", s(sid), s(net)))
        assert value_xml(body) == b"<value>abc\td\ne\rf&quot;g</value>"
        ET.fromstring(body)
        # (an XML parser turns the CR into LF, so read the stored value back over JSON)
        assert xapid.jsonrpc("network.get_name_label", [sid, net])[2]["result"] == "a\x01b\x1fc\td\ne\rf\"g"
    finally:
        api.network.destroy(net)


def test_unsupported_http_method_is_501(xapid):
    st, h, body = xapid.post("/", b"", {}, method="DELETE")
    assert st == 501


def test_put_without_handler_is_403(xapid):
    st, h, body = xapid.post("/", b"x", {}, method="PUT")
    assert st == 403

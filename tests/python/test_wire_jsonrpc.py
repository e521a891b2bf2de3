"""JSON-RPC 1.0 / 2.0 on POST /jsonrpc: reply shapes, ids, errors, encodings."""

import json
import re

import pytest

from conftest import PASSWORD


def login(xapid, version=1):
    st, h, r = xapid.jsonrpc("session.login_with_password", ["root", PASSWORD, "1.0", "jsonrpc-test"],
                             version=version)
    assert st == 200, r
    return r["result"]


@pytest.fixture(scope="module")
def jsid(xapid):
    return login(xapid)


def test_v1_success_shape(xapid, jsid):
    st, h, r = xapid.jsonrpc("session.get_this_host", [jsid, jsid], id=7)
    assert st == 200
    assert h["content-type"] == "application/json"
    assert set(r) == {"result", "error", "id"}
    assert r["error"] is None
    assert r["id"] == 7
    assert r["result"].startswith("OpaqueRef:")


def test_v2_success_shape(xapid, jsid):
    st, h, r = xapid.jsonrpc("session.get_this_host", [jsid, jsid], id=8, version=2)
    assert st == 200
    assert h["content-type"] == "application/json"
    assert r["jsonrpc"] == "2.0"
    assert "error" not in r
    assert set(r) == {"jsonrpc", "result", "id"}
    assert r["id"] == 8


def test_v1_error_shape(xapid, jsid):
    st, h, r = xapid.jsonrpc("VM.get_record", [jsid, "OpaqueRef:bogus"], id=9)
    assert st == 200
    assert h["content-type"] == "application/json"
    assert r["result"] is None
    assert r["error"] == ["HANDLE_INVALID", "VM", "OpaqueRef:bogus"]
    assert r["id"] == 9


def test_v2_error_shape(xapid, jsid):
    st, h, r = xapid.jsonrpc("VM.get_record", [jsid, "OpaqueRef:bogus"], id=10, version=2)
    assert st == 200
    assert r == {"jsonrpc": "2.0",
                 "error": {"code": 1, "message": "HANDLE_INVALID", "data": ["VM", "OpaqueRef:bogus"]},
                 "id": 10}


def test_v2_error_without_params_has_empty_data(xapid, jsid):
    # MESSAGE_REMOVED has no parameters: data must still be a (string) array.
    st, h, r = xapid.jsonrpc("VM.get_record", [jsid, "x"], id=1, version=2)
    assert isinstance(r["error"]["data"], list)
    vdi_removed = xapid.jsonrpc("VDI.resize_online", [jsid, "OpaqueRef:x", 1], version=2)[2]
    assert vdi_removed["error"]["message"] == "MESSAGE_REMOVED"
    assert vdi_removed["error"]["data"] == []


def test_error_data_always_strings(xapid, jsid):
    st, h, r = xapid.jsonrpc("VM.get_record", [jsid], version=2)
    assert r["error"]["message"] == "MESSAGE_PARAMETER_COUNT_MISMATCH"
    assert r["error"]["data"] == ["VM.get_record", "1", "0"]
    assert all(isinstance(x, str) for x in r["error"]["data"])
    st, h, r = xapid.jsonrpc("VM.get_record", [jsid], version=1)
    assert r["error"] == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"]


@pytest.mark.parametrize("rid", [0, 1, 123456789012, "abc", "id-with-ünïcode", ""])
@pytest.mark.parametrize("version", [1, 2])
def test_ids_echoed(xapid, jsid, rid, version):
    st, h, r = xapid.jsonrpc("pool.get_all", [jsid], id=rid, version=version)
    assert st == 200
    assert r["id"] == rid
    assert type(r["id"]) is type(rid)


@pytest.mark.parametrize("version", [1, 2])
def test_missing_id_is_500(xapid, jsid, version):
    req = {"method": "pool.get_all", "params": [jsid]}
    if version == 2:
        req["jsonrpc"] = "2.0"
    st, h, body = xapid.post("/jsonrpc", json.dumps(req), {"Content-Type": "application/json"})
    assert st == 500


@pytest.mark.parametrize("version", [1, 2])
def test_null_id_is_500(xapid, jsid, version):
    req = {"method": "pool.get_all", "params": [jsid], "id": None}
    if version == 2:
        req["jsonrpc"] = "2.0"
    st, h, body = xapid.post("/jsonrpc", json.dumps(req), {"Content-Type": "application/json"})
    assert st == 500


def test_bad_jsonrpc_version_is_500(xapid, jsid):
    req = {"jsonrpc": "3.0", "method": "pool.get_all", "params": [jsid], "id": 1}
    st, _, _ = xapid.post("/jsonrpc", json.dumps(req), {"Content-Type": "application/json"})
    assert st == 500


@pytest.mark.parametrize("body", [b"not json", b"{", b"[]", b"{\"params\": [], \"id\": 1}", b"",
                                  b"{\"method\": \"pool.get_all\", \"params\": 5, \"id\": 1}"])
def test_malformed_json_is_500(xapid, body):
    st, h, _ = xapid.post("/jsonrpc", body, {"Content-Type": "application/json"})
    assert st == 500


def test_v2_params_absent_or_null(xapid):
    for params in (None, "absent"):
        req = {"jsonrpc": "2.0", "method": "system.listMethods", "id": 3}
        if params is None:
            req["params"] = None
        st, h, body = xapid.post("/jsonrpc", json.dumps(req), {"Content-Type": "application/json"})
        assert st == 200
        r = json.loads(body)
        assert "VM.get_record" in r["result"]


def test_sessions_shared_between_protocols(xapid, jsid):
    # JSON-RPC session used over XML-RPC ...
    r = getattr(xapid.raw(), "session.get_originator")(jsid, jsid)
    assert r == {"Status": "Success", "Value": "jsonrpc-test"}
    # ... and an XML-RPC session over JSON-RPC.
    s = xapid.session()
    st, h, r = xapid.jsonrpc("session.get_originator", [s._session, s._session])
    assert r["result"] == "pytest"
    s.xenapi.logout()


def test_json_encodings(xapid, jsid):
    host = xapid.jsonrpc("session.get_this_host", [jsid, jsid])[2]["result"]
    rec = xapid.jsonrpc("host.get_record", [jsid, host])[2]["result"]
    # int64 as JSON numbers
    assert isinstance(rec["API_version_major"], int) and rec["API_version_major"] == 2
    assert isinstance(rec["memory_overhead"], int)
    # bools as JSON booleans
    assert rec["enabled"] is True
    # datetimes as compact strings
    sess = xapid.jsonrpc("session.get_record", [jsid, jsid])[2]["result"]
    assert re.fullmatch(r"\d{8}T\d\d:\d\d:\d\dZ", sess["last_active"])
    # sets as arrays, maps as objects
    assert isinstance(rec["capabilities"], list)
    assert isinstance(rec["software_version"], dict)
    # floats as numbers
    vm = xapid.jsonrpc("VM.get_by_name_label", [jsid, "Debian Bookworm 12"])[2]["result"][0]
    mult = xapid.jsonrpc("VM.get_HVM_shadow_multiplier", [jsid, vm])[2]["result"]
    assert mult == 1.0 and isinstance(mult, (int, float))
    # void is ""
    r = xapid.jsonrpc("host.set_name_description", [jsid, host, "jd"])[2]
    assert r["result"] == "" and r["error"] is None


def test_int_params_as_number_or_string(xapid, jsid):
    net = xapid.jsonrpc("network.create", [jsid, {"name_label": "j", "other_config": {}, "MTU": "1600"}])[2]["result"]
    try:
        assert xapid.jsonrpc("network.get_MTU", [jsid, net])[2]["result"] == 1600
        assert xapid.jsonrpc("network.set_MTU", [jsid, net, 9000])[2]["error"] is None
        assert xapid.jsonrpc("network.get_MTU", [jsid, net])[2]["result"] == 9000
        assert xapid.jsonrpc("network.set_MTU", [jsid, net, "1280"])[2]["error"] is None
        assert xapid.jsonrpc("network.get_MTU", [jsid, net])[2]["result"] == 1280
    finally:
        xapid.jsonrpc("network.destroy", [jsid, net])


def test_event_from_valid_ref_counts_are_numbers(xapid, jsid):
    r = xapid.jsonrpc("event.from", [jsid, ["pool"], "", 0.0])[2]["result"]
    assert isinstance(r["valid_ref_counts"]["pool"], int) and r["valid_ref_counts"]["pool"] == 1
    assert r["events"][0]["class"] == "pool"


def test_request_content_type_variants(xapid, jsid):
    for ct in ["application/json", "application/json; charset=utf-8", "text/plain"]:
        body = json.dumps({"method": "pool.get_all", "params": [jsid], "id": 1})
        st, h, out = xapid.post("/jsonrpc", body, {"Content-Type": ct})
        assert st == 200, ct
        assert json.loads(out)["error"] is None


def test_underscore_names_and_list_methods(xapid, jsid):
    r = xapid.jsonrpc("pool_get_all", [jsid])[2]
    assert r["error"] is None and len(r["result"]) == 1
    r = xapid.jsonrpc("system.listMethods", [], version=2)[2]
    assert "event.from" in r["result"] and "jsonrpc" in r


def test_unknown_method(xapid, jsid):
    r = xapid.jsonrpc("VM.no_such_thing", [jsid], version=2)[2]
    assert r["error"] == {"code": 1, "message": "MESSAGE_METHOD_UNKNOWN", "data": ["VM.no_such_thing"]}


def test_logout_over_json(xapid):
    sid = login(xapid, version=2)
    r = xapid.jsonrpc("session.logout", [sid], version=2)[2]
    assert r == {"jsonrpc": "2.0", "result": "", "id": 1}
    r = xapid.jsonrpc("pool.get_all", [sid], version=2)[2]
    assert r["error"] == {"code": 1, "message": "SESSION_INVALID", "data": [sid]}


def test_wrong_password_over_json(xapid):
    r = xapid.jsonrpc("session.login_with_password", ["root", "nope"], version=2)[2]
    assert r["error"]["code"] == 1
    assert r["error"]["message"] == "SESSION_AUTHENTICATION_FAILED"
    assert r["error"]["data"][0] == "root" and len(r["error"]["data"]) == 2


def test_xml_at_jsonrpc_path_is_not_accepted_as_json(xapid, jsid):
    body = "<methodCall><methodName>pool.get_all</methodName><params><param><value>%s</value></param></params></methodCall>" % jsid
    st, h, out = xapid.post("/jsonrpc", body, {"Content-Type": "text/xml"})
    assert st == 500


def test_jsonrpc_body_limit(xapid, jsid):
    st, _, _ = xapid.jsonrpc("system.isAlive:x", ["z" * (301 * 1024)])
    assert st == 413


def test_keepalive_mixed_protocols(xapid, jsid):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", xapid.port, timeout=5)
    try:
        for i in range(3):
            c.request("POST", "/jsonrpc", json.dumps({"method": "pool.get_all", "params": [jsid], "id": i}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            assert json.loads(r.read())["id"] == i
            c.request("POST", "/", "<methodCall><methodName>pool.get_all</methodName><params><param>"
                      "<value>%s</value></param></params></methodCall>" % jsid, {"Content-Type": "text/xml"})
            r = c.getresponse()
            assert b"Success" in r.read()
    finally:
        c.close()


def test_v2_params_object_is_one_positional_param(xapid):
    body = {"jsonrpc": "2.0", "method": "session.login_with_password", "params": {"uname": "root"}, "id": 4}
    st, h, out = xapid.post("/jsonrpc", json.dumps(body), {"Content-Type": "application/json"})
    assert st == 200
    assert json.loads(out) == {"jsonrpc": "2.0", "id": 4, "error": {
        "code": 1, "message": "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "data": ["session.login_with_password", "2", "1"]}}


def test_v1_params_must_be_array(xapid):
    body = {"method": "session.login_with_password", "params": {"uname": "root"}, "id": 4}
    st, h, out = xapid.post("/jsonrpc", json.dumps(body), {"Content-Type": "application/json"})
    assert st == 500


def test_jsonrpc_error_is_html_500(xapid):
    st, h, out = xapid.post("/jsonrpc", b"{{{", {"Content-Type": "application/json"})
    assert st == 500 and h.get("content-type", "").startswith("text/html")

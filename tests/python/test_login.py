"""Sessions: login forms, failures, logout, the Unix socket, the session record."""

import re

import pytest
import XenAPI

from conftest import PASSWORD, failure

SESSION_FIELDS = {
    "uuid", "this_host", "this_user", "last_active", "pool", "other_config",
    "is_local_superuser", "subject", "validation_time", "auth_user_sid",
    "auth_user_name", "rbac_permissions", "tasks", "parent", "originator",
    "client_certificate",
}
REF_RE = re.compile(r"^OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def login_raw(raw, *args):
    """session.login_with_password with exactly these args; returns the envelope."""
    return getattr(raw, "session.login_with_password")(*args)


@pytest.mark.parametrize("args", [
    ("root", PASSWORD),
    ("root", PASSWORD, "1.0"),
    ("root", PASSWORD, "1.0", "pytest-4args"),
    ("root", PASSWORD, "2.23"),
    ("root", PASSWORD, "any version string at all", ""),
    ("root", PASSWORD, "", "x"),
])
def test_login_forms(xapid, raw, args):
    r = login_raw(raw, *args)
    assert r["Status"] == "Success", r
    ref = r["Value"]
    assert REF_RE.match(ref), ref
    # The new session is usable.
    r2 = getattr(raw, "session.get_uuid")(ref, ref)
    assert r2["Status"] == "Success" and UUID_RE.match(r2["Value"])
    # Originator is stored (default "").
    orig = args[3] if len(args) == 4 else ""
    assert getattr(raw, "session.get_originator")(ref, ref)["Value"] == orig
    getattr(raw, "session.logout")(ref)


def test_login_via_xenapi_client(xapid):
    for args in [("root", PASSWORD), ("root", PASSWORD, "1.0"), ("root", PASSWORD, "1.0", "o")]:
        s = XenAPI.Session(xapid.url)
        s.xenapi.login_with_password(*args)
        assert REF_RE.match(s._session)
        assert s.xenapi.pool.get_all()
        assert s.API_version.count(".") == 1
        s.xenapi.session.logout()


def test_login_slash_url(xapid):
    # http://host/ posts to "/", http://host posts to "/RPC2": both must work.
    s = XenAPI.Session(xapid.url + "/")
    s.xenapi.login_with_password("root", PASSWORD)
    assert s.xenapi.host.get_all()
    s.xenapi.logout()


def test_login_wrong_password(raw):
    r = login_raw(raw, "root", "definitely-wrong", "1.0", "pytest")
    assert r["Status"] == "Failure"
    err = r["ErrorDescription"]
    assert err[0] == "SESSION_AUTHENTICATION_FAILED"
    assert len(err) == 3, err
    assert err[1] == "root"
    assert isinstance(err[2], str) and err[2]


def test_login_unknown_user(raw):
    r = login_raw(raw, "nobody-here", PASSWORD)
    err = r["ErrorDescription"]
    assert err[0] == "SESSION_AUTHENTICATION_FAILED"
    assert err[1] == "nobody-here" and len(err) == 3


def test_login_wrong_password_xenapi_raises_failure(xapid):
    s = XenAPI.Session(xapid.url)
    details = failure(s.xenapi.login_with_password, "root", "bad", "1.0", "t")
    assert details[:2] == ["SESSION_AUTHENTICATION_FAILED", "root"]


def test_login_too_few_args(raw):
    # No session parameter here: received counts every argument.
    r = login_raw(raw, "root")
    assert r["ErrorDescription"] == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH", "session.login_with_password", "2", "1"]


def test_logout_then_use(xapid, raw):
    ref = login_raw(raw, "root", PASSWORD)["Value"]
    assert getattr(raw, "session.logout")(ref)["Status"] == "Success"
    r = getattr(raw, "VM.get_all")(ref)
    assert r == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", ref]}
    # Logging out twice is also SESSION_INVALID.
    r = getattr(raw, "session.logout")(ref)
    assert r["ErrorDescription"] == ["SESSION_INVALID", ref]


def test_bogus_session(raw):
    for bogus in ["OpaqueRef:NULL", "OpaqueRef:00000000-0000-0000-0000-000000000000", "garbage", ""]:
        r = getattr(raw, "pool.get_all")(bogus)
        assert r["ErrorDescription"] == ["SESSION_INVALID", bogus]


def test_xenapi_logout(xapid):
    s = XenAPI.Session(xapid.url)
    s.xenapi.login_with_password("root", PASSWORD)
    ref = s._session
    s.xenapi.session.logout()
    r = getattr(xapid.raw(), "session.get_uuid")(ref, ref)
    assert r["ErrorDescription"] == ["SESSION_INVALID", ref]


def test_unix_socket_login_without_password(xapid):
    s = xapid.uds_session()
    s.xenapi.login_with_password("root", "not-the-password", "1.0", "uds-test")
    ref = s._session
    rec = s.xenapi.session.get_record(ref)
    assert rec["is_local_superuser"] is True
    assert rec["auth_user_name"] == "root"
    assert rec["rbac_permissions"] == []
    assert rec["originator"] == "uds-test"
    # The session is a normal one: it works over TCP too.
    r = getattr(xapid.raw(), "VM.get_all")(ref)
    assert r["Status"] == "Success" and r["Value"]
    s.xenapi.session.logout()


def test_unix_socket_login_empty_password(xapid):
    s = xapid.uds_session()
    s.xenapi.login_with_password("root", "")
    assert s.xenapi.session.get_is_local_superuser(s._session) is True
    assert s.xenapi.pool.get_all()
    s.xenapi.session.logout()


def test_session_record(api, sid):
    rec = api.session.get_record(sid)
    assert set(rec) == SESSION_FIELDS
    assert UUID_RE.match(rec["uuid"])
    hosts = api.host.get_all()
    assert rec["this_host"] in hosts
    assert rec["this_user"] == "OpaqueRef:NULL"
    assert rec["pool"] is False
    assert rec["is_local_superuser"] is True
    assert rec["subject"] == "OpaqueRef:NULL"
    assert rec["auth_user_sid"] == ""
    assert rec["auth_user_name"] == "root"
    assert rec["rbac_permissions"] == []
    assert isinstance(rec["tasks"], list)
    assert rec["parent"] == "OpaqueRef:NULL"
    assert rec["originator"] == "pytest"
    assert rec["client_certificate"] is False
    assert isinstance(rec["other_config"], dict)
    for f in ("last_active", "validation_time"):
        v = rec[f]
        assert hasattr(v, "value"), "datetime must be <dateTime.iso8601>: %r" % (v,)
        assert re.match(r"^\d{8}T\d\d:\d\d:\d\dZ$", v.value), v.value
    assert api.session.get_by_uuid(rec["uuid"]) == sid


def test_session_get_this_host(api, sid):
    host = api.session.get_this_host(sid)
    pool = api.pool.get_all()[0]
    assert host == api.pool.get_master(pool)


def test_session_getters(api, sid):
    assert api.session.get_is_local_superuser(sid) is True
    assert api.session.get_this_user(sid) == "OpaqueRef:NULL"
    assert api.session.get_auth_user_name(sid) == "root"
    assert api.session.get_rbac_permissions(sid) == []
    assert api.session.get_all_subject_identifiers() == []


def test_session_get_this_host_of_other_session(xapid, api, sid):
    other = xapid.session()
    try:
        assert api.session.get_this_host(other._session) == api.session.get_this_host(sid)
    finally:
        other.xenapi.logout()


def test_session_other_config(api, sid):
    api.session.add_to_other_config(sid, "k", "v")
    assert api.session.get_other_config(sid)["k"] == "v"
    details = failure(api.session.add_to_other_config, sid, "k", "v2")
    assert details == ["MAP_DUPLICATE_KEY", "session", "other_config", sid, "k"]
    api.session.remove_from_other_config(sid, "k")
    assert "k" not in api.session.get_other_config(sid)


def test_no_session_get_all(raw, sid):
    # session is not in expose_get_all_messages_for: there is no session.get_all.
    r = getattr(raw, "session.get_all")(sid)
    assert r["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", "session.get_all"]


def test_slave_local_login_and_local_logout(xapid):
    s = XenAPI.Session(xapid.url)
    s.slave_local_login_with_password("root", PASSWORD)
    ref = s._session
    assert REF_RE.match(ref)
    assert s.xenapi.pool.get_all()
    s.xenapi.session.logout()  # XenAPI sends session.local_logout for slave_local logins
    r = getattr(xapid.raw(), "pool.get_all")(ref)
    assert r["ErrorDescription"] == ["SESSION_INVALID", ref]


def test_change_password(xapid):
    s = xapid.session()
    s.xenapi.session.change_password(PASSWORD, "new-pw-123")
    try:
        raw = xapid.raw()
        assert login_raw(raw, "root", PASSWORD)["ErrorDescription"][0] == "SESSION_AUTHENTICATION_FAILED"
        r = login_raw(raw, "root", "new-pw-123")
        assert r["Status"] == "Success"
        getattr(raw, "session.logout")(r["Value"])
    finally:
        s.xenapi.session.change_password("new-pw-123", PASSWORD)
    xapid.session().xenapi.logout()
    s.xenapi.logout()


def test_unix_socket_logs_anyone_in_as_superuser(xapid):
    s = xapid.uds_session()
    s.xenapi.login_with_password("someone-else", "whatever")
    try:
        rec = s.xenapi.session.get_record(s._session)
        assert rec["is_local_superuser"] is True
        assert rec["auth_user_name"] == "someone-else"
        assert rec["rbac_permissions"] == []
    finally:
        s.xenapi.logout()


def test_unix_socket_jsonrpc_login(xapid):
    st, h, r = xapid.jsonrpc("session.login_with_password", ["root", "wrong-but-local"], version=2, unix=True)
    assert st == 200 and h["content-type"] == "application/json"
    ref = r["result"]
    st, h, r = xapid.jsonrpc("session.get_is_local_superuser", [ref, ref], version=2)
    assert r["result"] is True
    xapid.jsonrpc("session.logout", [ref])

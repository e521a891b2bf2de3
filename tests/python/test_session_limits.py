"""Session garbage collection limits (xapi-reference.md §3.3): 500 sessions per
originator, 400 for root sessions without an originator; oldest evicted first.

Bulk logins go over the Unix socket (JSON-RPC), which skips the password hash
and keeps this fast; such sessions are ordinary root sessions."""

import json
import time

import pytest

from conftest import PASSWORD, Xapid


@pytest.fixture(scope="module")
def xapid():
    x = Xapid(extra_args=["--gc-interval-secs", "1"]).start()
    yield x
    x.cleanup()


def bulk_login(x, n, originator=None):
    c = x.connection(unix=True)
    refs = []
    try:
        for i in range(n):
            params = ["root", "", "1.0", originator] if originator is not None else ["root", ""]
            c.request("POST", "/jsonrpc", json.dumps({"method": "session.login_with_password",
                                                      "params": params, "id": i}),
                      {"Content-Type": "application/json"})
            r = json.loads(c.getresponse().read())
            assert r["error"] is None, r
            refs.append(r["result"])
    finally:
        c.close()
    return refs


def validity(x, refs):
    """{ref: True if the session still works}."""
    c = x.connection()
    out = {}
    try:
        for i, ref in enumerate(refs):
            c.request("POST", "/jsonrpc", json.dumps({"method": "session.get_originator",
                                                      "params": [ref, ref], "id": i}),
                      {"Content-Type": "application/json"})
            r = json.loads(c.getresponse().read())
            if r["error"] is None:
                out[ref] = True
            else:
                assert r["error"] == ["SESSION_INVALID", ref], r
                out[ref] = False
    finally:
        c.close()
    return out


def session_count(api):
    return api.event_from(["session"], "", 0.0)["valid_ref_counts"]["session"]


def wait_for_count(api, want, timeout=8.0):
    deadline = time.time() + timeout
    n = session_count(api)
    while n != want and time.time() < deadline:
        time.sleep(0.2)
        n = session_count(api)
    return n


def test_originator_limit_500(xapid, api):
    base = session_count(api)
    # Password logins over TCP and Unix-socket logins join the same originator group.
    old = []
    for _ in range(3):
        st, h, r = xapid.jsonrpc("session.login_with_password", ["root", PASSWORD, "1.0", "limit-test"])
        old.append(r["result"])
    old += bulk_login(xapid, 7, "limit-test")
    time.sleep(1.2)  # strictly older last_active
    new = bulk_login(xapid, 500, "limit-test")
    assert wait_for_count(api, base + 500) == base + 500
    v = validity(xapid, old + new)
    assert [r for r in old if v[r]] == [], "the oldest sessions must be evicted"
    assert all(v[r] for r in new), "the 500 newest must survive"
    # At exactly the limit nothing more goes.
    time.sleep(1.2)
    assert session_count(api) == base + 500


def test_no_originator_limit_400(xapid, api):
    base = session_count(api)
    old = bulk_login(xapid, 10)
    time.sleep(1.2)
    new = bulk_login(xapid, 400)
    assert wait_for_count(api, base + 400) == base + 400
    v = validity(xapid, old + new)
    assert [r for r in old if v[r]] == []
    assert all(v[r] for r in new)


def test_groups_are_independent(xapid, api):
    a = bulk_login(xapid, 300, "group-a")
    b = bulk_login(xapid, 300, "group-b")
    time.sleep(2.2)  # two GC passes
    v = validity(xapid, a + b)
    assert all(v.values()), "neither group is over its 500 limit"
    # The module's own session (originator "pytest") is never touched.
    assert api.pool.get_all()


def test_limit_enforced_at_login_oldest_first():
    # --gc-interval-secs 3600: no collection runs during the test, so the
    # limit must hold from the logins themselves. 600 logins with one
    # originator (5 with the password over TCP, the rest over the Unix
    # socket, which skips the hash) within the same seconds: the first 100
    # are the ones gone, at once.
    x = Xapid(extra_args=["--gc-interval-secs", "3600"]).start()
    try:
        api = x.session().xenapi
        base = session_count(api)
        refs = []
        for _ in range(5):
            st, h, r = x.jsonrpc("session.login_with_password", ["root", PASSWORD, "1.0", "burst"])
            refs.append(r["result"])
        refs += bulk_login(x, 595, "burst")
        assert session_count(api) == base + 500
        v = validity(x, refs)
        assert [r for r in refs[:100] if v[r]] == [], "the first 100 must be the ones evicted"
        assert all(v[r] for r in refs[100:]), "the last 500 must be valid"
        # The caller's own session (another originator) is untouched.
        assert api.pool.get_all()
    finally:
        x.cleanup()

"""Dispatcher errors with exact codes and parameters (xapi-reference.md §1.9, §12)."""

import time

import pytest

from conftest import PASSWORD


@pytest.fixture(scope="module")
def call(raw):
    """call(method, *params) -> ErrorDescription list, or ("OK", value) on success."""
    def _call(method, *params):
        r = getattr(raw, method)(*params)
        if r["Status"] == "Success":
            return ("OK", r["Value"])
        return r["ErrorDescription"]
    return _call


@pytest.fixture(scope="module")
def vm(api):
    return api.VM.get_by_name_label("Debian Bookworm 12")[0]


@pytest.fixture(scope="module")
def net(api):
    (ref,) = [r for r, n in api.network.get_all_records().items() if n["bridge"] == "xenbr0"]
    return ref


# ---------------------------------------------------------------- parameter counts

def test_count_mismatch_too_few(call, sid):
    assert call("VM.get_record", sid) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"]


def test_count_mismatch_too_many(call, sid, vm):
    assert call("VM.get_record", sid, vm, "x") == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "2"]


def test_count_mismatch_no_params_at_all(call):
    # The session is excluded from "received": zero params reports -1.
    assert call("VM.get_record") == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "-1"]
    assert call("pool.get_all") == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.get_all", "0", "-1"]


def test_count_mismatch_explicit_message(call, sid, vm):
    assert call("VM.start", sid, vm) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "1"]
    assert call("pool.add_to_other_config", sid, "x") == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.add_to_other_config", "3", "1"]
    assert call("event.from", sid, ["*"]) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "event.from", "3", "1"]


def test_count_mismatch_defaulted_params_not_counted(call, sid):
    # VM.snapshot(vm, new_name, ignore_vdis=[]): expected counts only the mandatory two.
    assert call("VM.snapshot", sid, "OpaqueRef:x") == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.snapshot", "2", "1"]


def test_count_mismatch_reports_name_as_sent(call, sid):
    assert call("VM_get_record", sid) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM_get_record", "1", "0"]


def test_count_mismatch_async_strips_prefix(call, sid):
    assert call("Async.VM.start", sid) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "0"]


def test_extra_trailing_params_ignored_with_defaults(call):
    r = call("session.login_with_password", "root", PASSWORD, "1.0", "orig", "extra", "more")
    assert r[0] == "OK"
    call("session.logout", r[1])


def test_count_checked_before_session(call):
    # Count mismatch wins over a bad session.
    assert call("VM.get_record", "bogus") == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"]


# ---------------------------------------------------------------- unknown methods

def test_unknown_method(call, sid):
    assert call("VM.frobnicate", sid) == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    assert call("VM.frobnicate", sid, "a", "b") == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    assert call("NoSuchClass.get_all", sid) == ["MESSAGE_METHOD_UNKNOWN", "NoSuchClass.get_all"]


def test_unknown_method_no_params(call):
    assert call("totally_unknown") == ["MESSAGE_METHOD_UNKNOWN", "totally_unknown"]
    assert call("VM.frobnicate") == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]


def test_unknown_method_bad_session(call):
    # With parameters, xapi treats the call as a host extension and checks p0 as a session first.
    assert call("VM.frobnicate", "not-a-session") == ["SESSION_INVALID", "not-a-session"]
    assert call("VM.frobnicate", "OpaqueRef:NULL", 1) == ["SESSION_INVALID", "OpaqueRef:NULL"]


def test_method_names_are_case_sensitive(call, sid):
    assert call("vm.get_all", sid) == ["MESSAGE_METHOD_UNKNOWN", "vm.get_all"]
    assert call("VM.Get_all", sid) == ["MESSAGE_METHOD_UNKNOWN", "VM.Get_all"]


def test_unknown_method_over_json(xapid, sid):
    st, h, r = xapid.jsonrpc("VM.frobnicate", [sid])
    assert r["error"] == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]


# ---------------------------------------------------------------- types

def test_field_type_error_struct_for_string(call, sid, net):
    assert call("network.set_name_description", sid, net, {"a": "b"}) == ["FIELD_TYPE_ERROR", "value"]


def test_field_type_error_array_for_ref(call, sid):
    assert call("VM.get_record", sid, ["x"]) == ["FIELD_TYPE_ERROR", "self"]


def test_field_type_error_int(call, sid, net, api):
    assert call("network.set_MTU", sid, net, "not-a-number") == ["FIELD_TYPE_ERROR", "value"]
    assert call("network.set_MTU", sid, net, {"x": 1}) == ["FIELD_TYPE_ERROR", "value"]
    assert api.network.get_MTU(net) == "1500"


def test_field_type_error_bool(call, sid, api):
    pool = api.pool.get_all()[0]
    assert call("pool.set_ha_allow_overcommit", sid, pool, {"x": 1}) == ["FIELD_TYPE_ERROR", "value"]
    assert call("pool.set_ha_allow_overcommit", sid, pool, ["x"]) == ["FIELD_TYPE_ERROR", "value"]


def test_bool_param_rejects_string(call, sid, api):
    pool = api.pool.get_all()[0]
    try:
        assert call("pool.set_ha_allow_overcommit", sid, pool, "true") == ["FIELD_TYPE_ERROR", "value"]
    finally:
        api.pool.set_ha_allow_overcommit(pool, False)


def test_field_type_error_map_and_set(call, sid, net):
    assert call("network.set_other_config", sid, net, "str") == ["FIELD_TYPE_ERROR", "value"]
    assert call("network.set_tags", sid, net, {"a": "b"}) == ["FIELD_TYPE_ERROR", "value"]
    assert call("event.from", sid, "not-a-list", "", 0.0) == ["FIELD_TYPE_ERROR", "classes"]


def test_type_error_before_session_check(call):
    # Unmarshalling happens before the session check.
    assert call("VM.get_record", "bogus", ["x"]) == ["FIELD_TYPE_ERROR", "self"]


def test_session_checked_after_types(call):
    assert call("VM.get_record", "bogus", "OpaqueRef:x") == ["SESSION_INVALID", "bogus"]


def test_int_accepts_number_and_string(call, sid, api):
    net = api.network.create({"other_config": {}})
    try:
        assert call("network.set_MTU", sid, net, 1280) == ("OK", "")
        assert call("network.set_MTU", sid, net, "1300") == ("OK", "")
        assert api.network.get_MTU(net) == "1300"
    finally:
        api.network.destroy(net)


def test_float_accepts_int_and_string(call, sid):
    assert call("event.from", sid, ["pool"], "", 0)[0] == "OK"
    assert call("event.from", sid, ["pool"], "", "0.0")[0] == "OK"
    assert call("event.from", sid, ["pool"], "", 0.0)[0] == "OK"


# ---------------------------------------------------------------- async

def test_async_on_non_async_message(call, sid, vm):
    assert call("Async.VM.get_name_label", sid, vm) == \
        ["Fault", "No async mode for this operation (rpc: VM.get_name_label)"]
    assert call("Async.VM.get_record", sid, vm) == \
        ["Fault", "No async mode for this operation (rpc: VM.get_record)"]
    pool = call("pool.get_all", sid)[1][0]
    assert call("Async.pool.add_to_other_config", sid, pool, "k", "v") == \
        ["Fault", "No async mode for this operation (rpc: pool.add_to_other_config)"]
    assert call("Async.event.from", sid, ["*"], "", 0.0) == \
        ["Fault", "No async mode for this operation (rpc: event.from)"]


# ---------------------------------------------------------------- removed

def test_message_removed(call, sid, vm, api):
    assert call("VM.set_protection_policy", sid, vm, "OpaqueRef:NULL") == ["MESSAGE_REMOVED"]
    host = api.host.get_all()[0]
    assert call("host.reset_cpu_features", sid, host) == ["MESSAGE_REMOVED"]
    assert call("VDI.resize_online", sid, "OpaqueRef:whatever", "1024") == ["MESSAGE_REMOVED"]


def test_message_removed_checks_session_first(call, vm):
    assert call("VM.set_protection_policy", "bogus", vm, "OpaqueRef:NULL") == ["SESSION_INVALID", "bogus"]


def test_message_removed_checks_count(call, sid, vm):
    assert call("VM.set_protection_policy", sid, vm) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.set_protection_policy", "2", "1"]


def test_removed_message_still_listed(xapid):
    assert "VM.set_protection_policy" in xapid.raw().system.listMethods()


# ---------------------------------------------------------------- misc

def test_failed_login_is_delayed(call):
    t0 = time.time()
    r = call("session.login_with_password", "root", "wrong")
    assert r[0] == "SESSION_AUTHENTICATION_FAILED"
    assert time.time() - t0 >= 0.09  # --login-failure-delay-ms 100


def test_errors_never_use_fault(xapid, sid):
    st, h, body = xapid.post("/", "<methodCall><methodName>VM.get_record</methodName><params>"
                                  "<param><value>%s</value></param></params></methodCall>" % sid)
    assert st == 200 and b"<fault>" not in body and b"MESSAGE_PARAMETER_COUNT_MISMATCH" in body


def test_error_params_are_strings_in_xml(xapid):
    st, h, body = xapid.post("/", "<methodCall><methodName>VM.get_record</methodName><params>"
                                  "</params></methodCall>")
    assert (b"<value>MESSAGE_PARAMETER_COUNT_MISMATCH</value><value>VM.get_record</value>"
            b"<value>1</value><value>-1</value>") in body

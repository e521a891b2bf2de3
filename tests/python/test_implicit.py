"""Implicit (datamodel-generated) messages on several classes: records, lookups,
getters/setters, map and set updates, the *_where expression language,
constructors/destructors and reverse-reference fields."""

import re
import uuid as uuidlib

import pytest
import XenAPI

from conftest import dm_fields, dm_messages, failure, vm_ctor

# Classes stored in the database with get_all / get_all_records.
GETALL_CLASSES = ["VM", "network", "pool", "host", "SR", "VDI", "PBD", "PIF", "host_metrics",
                  "host_cpu", "SM", "console", "VM_metrics", "PIF_metrics"]


def cls_api(api, cls):
    return getattr(api, cls)


@pytest.fixture(scope="module", autouse=True)
def a_vdi(api):
    """The seed has no VDIs; make one so every class below has an object."""
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    ref = api.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "user", "sharable": False,
                          "read_only": False, "other_config": {}, "name_label": "module-vdi"})
    yield ref
    api.VDI.destroy(ref)


@pytest.fixture(scope="module")
def pool(api):
    return api.pool.get_all()[0]


@pytest.fixture(scope="module")
def host(api, pool):
    return api.pool.get_master(pool)


@pytest.fixture(scope="module")
def dom0(api):
    (ref,) = api.VM.get_all_where('field "is_control_domain"="true"')
    return ref


@pytest.fixture(scope="module")
def xenbr0(api):
    (ref,) = [r for r, n in api.network.get_all_records().items() if n["bridge"] == "xenbr0"]
    return ref


@pytest.fixture()
def net(api):
    ref = api.network.create({"name_label": "implicit-net", "other_config": {}})
    yield ref
    try:
        api.network.destroy(ref)
    except XenAPI.Failure:
        pass


@pytest.fixture()
def vm(api):
    ref = api.VM.create(vm_ctor(name_label="implicit-vm"))
    yield ref
    try:
        api.VM.destroy(ref)
    except XenAPI.Failure:
        pass


# ---------------------------------------------------------------- records

@pytest.mark.parametrize("cls", GETALL_CLASSES)
def test_get_all_and_records(api, cls):
    c = cls_api(api, cls)
    refs = c.get_all()
    recs = c.get_all_records()
    assert isinstance(refs, list) and isinstance(recs, dict)
    assert refs, "seeded server has at least one %s" % cls
    assert sorted(refs) == sorted(recs)
    wire_fields = {f["name"] for f in dm_fields(cls)}
    for ref in refs:
        assert re.match(r"^OpaqueRef:[0-9a-f-]{36}$", ref), ref
        rec = recs[ref]
        assert set(rec) == wire_fields, (cls, set(rec) ^ wire_fields)
        assert c.get_by_uuid(rec["uuid"]) == ref
        assert c.get_uuid(ref) == rec["uuid"]


@pytest.mark.parametrize("cls", ["VM", "network", "pool", "host", "SR", "PIF", "PBD", "SM"])
def test_get_record_matches_get_all_records(api, cls):
    c = cls_api(api, cls)
    recs = c.get_all_records()
    for ref, rec in recs.items():
        assert c.get_record(ref) == rec


@pytest.mark.parametrize("cls", ["VM", "network", "pool", "host", "SR", "VDI", "PBD", "PIF", "SM", "console"])
def test_every_getter(api, cls):
    """get_<field> exists for every field and agrees with get_record."""
    c = cls_api(api, cls)
    refs = c.get_all()
    ref = refs[0]
    rec = c.get_record(ref)
    for f in dm_fields(cls):
        if "removed" in f["flags"]:
            continue  # getter is MESSAGE_REMOVED (test_removed_field_getter)
        got = getattr(c, "get_" + f["name"])(ref)
        assert got == rec[f["name"]], (cls, f["name"])


def test_removed_field_getter(api, dom0):
    # Implicit messages inherit the field's lifecycle: a removed field keeps its
    # place in get_record, but its getter answers MESSAGE_REMOVED.
    assert "is_snapshot_from_vmpp" in api.VM.get_record(dom0)
    assert failure(api.VM.get_is_snapshot_from_vmpp, dom0) == ["MESSAGE_REMOVED"]


def test_record_value_types(api, dom0):
    rec = api.VM.get_record(dom0)
    assert rec["power_state"] == "Running"
    assert rec["is_control_domain"] is True
    assert isinstance(rec["memory_static_max"], str) and rec["memory_static_max"].isdigit()
    assert isinstance(rec["VCPUs_params"], dict)
    assert isinstance(rec["tags"], list)
    assert isinstance(rec["HVM_shadow_multiplier"], float)
    assert rec["snapshot_time"].value == "19700101T00:00:00Z"
    assert rec["suspend_VDI"] == "OpaqueRef:NULL"


# ---------------------------------------------------------------- lookups

@pytest.mark.parametrize("cls", ["VM", "network", "pool", "host", "SR", "VDI", "PIF"])
def test_get_by_uuid_invalid(api, cls):
    u = str(uuidlib.uuid4())
    assert failure(cls_api(api, cls).get_by_uuid, u) == ["UUID_INVALID", cls, u]
    assert failure(cls_api(api, cls).get_by_uuid, "not-a-uuid") == ["UUID_INVALID", cls, "not-a-uuid"]


def test_get_by_uuid_wrong_class(api, dom0):
    u = api.VM.get_uuid(dom0)
    assert failure(api.network.get_by_uuid, u) == ["UUID_INVALID", "network", u]


def test_get_by_name_label(api, net):
    assert api.network.get_by_name_label("implicit-net") == [net]
    assert api.network.get_by_name_label("implicit") == []       # exact match only
    assert api.network.get_by_name_label("IMPLICIT-NET") == []   # case-sensitive
    assert api.network.get_by_name_label("no such network") == []
    vms = api.VM.get_by_name_label("Debian Bookworm 12")
    assert len(vms) == 1 and api.VM.get_is_a_template(vms[0]) is True
    net2 = api.network.create({"name_label": "implicit-net", "other_config": {}})
    try:
        assert sorted(api.network.get_by_name_label("implicit-net")) == sorted([net, net2])
    finally:
        api.network.destroy(net2)


def test_no_get_by_name_label_for_flat_name(raw, sid):
    # pool's name_label is not namespaced (name/label), so xapi generates no get_by_name_label.
    r = getattr(raw, "pool.get_by_name_label")(sid, "x")
    assert r["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", "pool.get_by_name_label"]


# ---------------------------------------------------------------- HANDLE_INVALID

@pytest.mark.parametrize("cls", ["VM", "network", "pool", "host", "SR", "VDI", "PBD", "console"])
def test_handle_invalid(api, cls):
    c = cls_api(api, cls)
    bogus = "OpaqueRef:" + str(uuidlib.uuid4())
    assert failure(c.get_record, bogus) == ["HANDLE_INVALID", cls, bogus]
    assert failure(c.get_uuid, bogus) == ["HANDLE_INVALID", cls, bogus]
    assert failure(c.get_other_config, bogus) == ["HANDLE_INVALID", cls, bogus]
    assert failure(c.add_to_other_config, bogus, "k", "v") == ["HANDLE_INVALID", cls, bogus]
    assert failure(c.set_other_config, bogus, {}) == ["HANDLE_INVALID", cls, bogus]
    for weird in ["OpaqueRef:NULL", "garbage", ""]:
        assert failure(c.get_record, weird) == ["HANDLE_INVALID", cls, weird]


def test_handle_invalid_wrong_class(api, xenbr0, dom0):
    assert failure(api.VM.get_record, xenbr0) == ["HANDLE_INVALID", "VM", xenbr0]
    assert failure(api.network.get_name_label, dom0) == ["HANDLE_INVALID", "network", dom0]


def test_destroy_unknown(api):
    bogus = "OpaqueRef:" + str(uuidlib.uuid4())
    assert failure(api.network.destroy, bogus) == ["HANDLE_INVALID", "network", bogus]
    assert failure(api.VM.destroy, bogus) == ["HANDLE_INVALID", "VM", bogus]


# ---------------------------------------------------------------- setters

def test_setters_vm(api, vm, host):
    api.VM.set_name_label(vm, "renamed")
    assert api.VM.get_name_label(vm) == "renamed"
    api.VM.set_name_description(vm, "desc")
    assert api.VM.get_name_description(vm) == "desc"
    api.VM.set_user_version(vm, "7")
    assert api.VM.get_user_version(vm) == "7"
    api.VM.set_is_a_template(vm, True)
    assert api.VM.get_is_a_template(vm) is True
    api.VM.set_is_a_template(vm, False)
    api.VM.set_affinity(vm, host)
    assert api.VM.get_affinity(vm) == host
    api.VM.set_affinity(vm, "OpaqueRef:NULL")
    api.VM.set_actions_after_shutdown(vm, "restart")
    assert api.VM.get_actions_after_shutdown(vm) == "restart"
    api.VM.set_PV_args(vm, "console=hvc0")
    assert api.VM.get_PV_args(vm) == "console=hvc0"
    api.VM.set_other_config(vm, {"a": "1", "b": "2"})
    assert api.VM.get_other_config(vm) == {"a": "1", "b": "2"}
    api.VM.set_other_config(vm, {})
    assert api.VM.get_other_config(vm) == {}
    api.VM.set_tags(vm, ["x", "y"])
    assert sorted(api.VM.get_tags(vm)) == ["x", "y"]
    api.VM.set_platform(vm, {"acpi": "1"})
    assert api.VM.get_platform(vm) == {"acpi": "1"}
    api.VM.set_hardware_platform_version(vm, "2")
    assert api.VM.get_hardware_platform_version(vm) == "2"
    api.VM.set_blocked_operations(vm, {"start": "no"})
    assert api.VM.get_blocked_operations(vm) == {"start": "no"}


def test_enum_setter_case_insensitive(api, vm):
    api.VM.set_actions_after_reboot(vm, "DESTROY")
    assert api.VM.get_actions_after_reboot(vm) == "destroy"
    api.VM.set_actions_after_reboot(vm, "Restart")
    assert api.VM.get_actions_after_reboot(vm) == "restart"


def test_enum_setter_bad_value(api, vm):
    d = failure(api.VM.set_actions_after_reboot, vm, "explode")
    assert d[0] == "INVALID_VALUE"
    assert api.VM.get_actions_after_reboot(vm) == "restart"


def test_setters_network(api, net):
    api.network.set_name_label(net, "n2")
    api.network.set_name_description(net, "d2")
    api.network.set_MTU(net, "9000")
    api.network.set_tags(net, ["t"])
    rec = api.network.get_record(net)
    assert (rec["name_label"], rec["name_description"], rec["MTU"], rec["tags"]) == ("n2", "d2", "9000", ["t"])


def test_setters_pool_and_host(api, pool, host):
    old = api.pool.get_name_label(pool)
    try:
        api.pool.set_name_label(pool, "my pool")
        assert api.pool.get_name_label(pool) == "my pool"
        api.pool.set_name_description(pool, "pd")
        assert api.pool.get_name_description(pool) == "pd"
        sr = api.pool.get_default_SR(pool)
        api.pool.set_default_SR(pool, sr)
        assert api.pool.get_default_SR(pool) == sr
        api.pool.set_gui_config(pool, {"g": "1"})
        assert api.pool.get_gui_config(pool) == {"g": "1"}
    finally:
        api.pool.set_name_label(pool, old)
    api.host.set_name_description(host, "hd")
    assert api.host.get_name_description(host) == "hd"
    api.host.set_logging(host, {"syslog_destination": "x"})
    assert api.host.get_logging(host) == {"syslog_destination": "x"}
    api.host.set_logging(host, {})


@pytest.mark.parametrize("method", [
    "VM.set_power_state", "VM.set_uuid", "VM.set_is_control_domain", "VM.set_resident_on",
    "VM.set_VBDs", "network.set_bridge", "network.set_PIFs", "pool.set_master", "host.set_enabled",
    "host.set_API_version_major", "SR.set_type", "VM.add_to_last_boot_CPU_flags", "VM.add_VBDs",
    "pool.add_to_restrictions", "host.add_to_software_version",
])
def test_no_setters_for_read_only_fields(raw, sid, method, dom0):
    r = getattr(raw, method)(sid, dom0, "x")
    assert r["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", method]


def test_setter_wrong_class_ref(api, xenbr0):
    assert failure(api.VM.set_name_label, xenbr0, "x") == ["HANDLE_INVALID", "VM", xenbr0]


# ---------------------------------------------------------------- maps

@pytest.mark.parametrize("cls", ["VM", "network", "pool", "host", "SR", "PBD", "PIF", "SM", "host_metrics"])
def test_map_add_remove_duplicate(api, cls):
    c = cls_api(api, cls)
    ref = c.get_all()[0]
    key = "pytest-key-" + cls
    c.add_to_other_config(ref, key, "v1")
    try:
        assert c.get_other_config(ref)[key] == "v1"
        d = failure(c.add_to_other_config, ref, key, "v2")
        assert d == ["MAP_DUPLICATE_KEY", cls, "other_config", ref, key]
        # Identical value is a duplicate too (legacy mode).
        d = failure(c.add_to_other_config, ref, key, "v1")
        assert d == ["MAP_DUPLICATE_KEY", cls, "other_config", ref, key]
        assert c.get_other_config(ref)[key] == "v1"
    finally:
        c.remove_from_other_config(ref, key)
    assert key not in c.get_other_config(ref)
    # Removing a missing key is a no-op.
    c.remove_from_other_config(ref, key)


def test_map_duplicate_key_uses_db_column_name(api, vm):
    api.VM.add_to_VCPUs_params(vm, "weight", "256")
    d = failure(api.VM.add_to_VCPUs_params, vm, "weight", "512")
    assert d == ["MAP_DUPLICATE_KEY", "VM", "VCPUs__params", vm, "weight"]
    api.VM.add_to_HVM_boot_params(vm, "firmware", "uefi")
    d = failure(api.VM.add_to_HVM_boot_params, vm, "firmware", "bios")
    assert d == ["MAP_DUPLICATE_KEY", "VM", "HVM__boot_params", vm, "firmware"]


def test_map_other_rw_maps(api, vm):
    api.VM.add_to_platform(vm, "viridian", "true")
    api.VM.add_to_xenstore_data(vm, "vm-data/x", "1")
    api.VM.add_to_blocked_operations(vm, "start", "blocked")
    rec = api.VM.get_record(vm)
    assert rec["platform"]["viridian"] == "true"
    assert rec["xenstore_data"]["vm-data/x"] == "1"
    assert rec["blocked_operations"] == {"start": "blocked"}
    api.VM.remove_from_blocked_operations(vm, "start")
    assert api.VM.get_blocked_operations(vm) == {}


def test_map_empty_key(api, net):
    d = failure(api.network.add_to_other_config, net, "", "v")
    assert d[0] == "INTERNAL_ERROR"


# ---------------------------------------------------------------- sets

@pytest.mark.parametrize("cls", ["VM", "network", "pool", "host", "SR", "VDI"])
def test_set_add_remove(api, cls):
    c = cls_api(api, cls)
    ref = c.get_all()[0]
    before = c.get_tags(ref)
    c.add_tags(ref, "pytest-tag")
    c.add_tags(ref, "pytest-tag")  # idempotent
    tags = c.get_tags(ref)
    assert tags.count("pytest-tag") == 1
    c.add_tags(ref, "pytest-tag-2")
    assert {"pytest-tag", "pytest-tag-2"} <= set(c.get_tags(ref))
    c.remove_tags(ref, "pytest-tag")
    c.remove_tags(ref, "pytest-tag")  # absent: no-op
    c.remove_tags(ref, "pytest-tag-2")
    assert sorted(c.get_tags(ref)) == sorted(before)


# ---------------------------------------------------------------- *_where

@pytest.fixture(scope="module")
def where_nets(api):
    a = api.network.create({"name_label": "w-a", "MTU": "1500", "other_config": {}})
    b = api.network.create({"name_label": "w-b", "MTU": "9000", "other_config": {}})
    c = api.network.create({"name_label": "w-c", "MTU": "1500", "other_config": {}})
    yield a, b, c
    for r in (a, b, c):
        api.network.destroy(r)


def where(api, expr, cls="network"):
    c = cls_api(api, cls)
    refs = c.get_all_where(expr)
    recs = c.get_all_records_where(expr)
    assert sorted(refs) == sorted(recs)
    return set(refs)


def test_where_field_eq(api, where_nets):
    a, b, c = where_nets
    assert where(api, 'field "name__label"="w-a"') == {a}
    assert where(api, 'field "name__label" = "w-b"') == {b}
    assert where(api, '"w-a"=field "name__label"') == {a}
    assert where(api, 'field "name__label"="nothing"') == set()
    assert where(api, 'field "uuid"="%s"' % api.network.get_uuid(c)) == {c}
    assert where(api, 'field "MTU"="9000"') & {a, b, c} == {b}


def test_where_records_content(api, where_nets):
    a, b, c = where_nets
    recs = api.network.get_all_records_where('field "name__label"="w-b"')
    assert recs == {b: api.network.get_record(b)}


def test_where_true_false(api, where_nets):
    allnets = set(api.network.get_all())
    assert where(api, "true") == allnets
    assert where(api, "false") == set()
    assert where(api, '"x"="x"') == allnets
    assert where(api, '"x"="y"') == set()
    assert where(api, "true", "VM") == set(api.VM.get_all())


def test_where_and_or_not(api, where_nets):
    a, b, c = where_nets
    allnets = set(api.network.get_all())
    assert where(api, 'field "name__label"="w-a" or field "name__label"="w-b"') == {a, b}
    assert where(api, 'field "name__label"="w-a" and field "MTU"="1500"') == {a}
    assert where(api, 'field "name__label"="w-a" and field "MTU"="9000"') == set()
    assert where(api, 'not field "name__label"="w-a"') == allnets - {a}
    assert where(api, 'not (field "name__label"="w-a")') == allnets - {a}
    assert where(api, '(field "name__label"="w-a" or field "name__label"="w-c") and field "MTU"="1500"') == {a, c}
    assert where(api, 'field "name__label"="w-a" or (field "name__label"="w-b" and field "MTU"="1500")') == {a}


def test_where_and_or_same_precedence_left_assoc(api, where_nets):
    # db_filter_parse.mly: %left LAND LOR -- one precedence level, left-associative.
    a, b, c = where_nets
    # ((C or A) and MTU=9000) -> nothing; with "and binds tighter" it would be {c}.
    assert where(api, 'field "name__label"="w-c" or field "name__label"="w-a" and field "MTU"="9000"') == set()
    # ((A and MTU=1500) or C) -> {a, c}
    assert where(api, 'field "name__label"="w-a" and field "MTU"="1500" or field "name__label"="w-c"') == {a, c}


def test_where_not_has_lowest_precedence(api, where_nets):
    # db_filter_parse.mly declares %right LNOT *before* %left LAND LOR, so "not" binds
    # more loosely than and/or: not A and B == not (A and B).
    a, b, c = where_nets
    allnets = set(api.network.get_all())
    assert where(api, 'not field "name__label"="w-a" and field "MTU"="9000"') == allnets


def test_where_vm_columns(api, dom0):
    templates = {r for r, v in api.VM.get_all_records().items() if v["is_a_template"]}
    assert where(api, 'field "is_a_template"="true"', "VM") == templates
    assert where(api, 'field "is_control_domain"="true"', "VM") == {dom0}
    assert where(api, 'field "power_state"="Running"', "VM") >= {dom0}
    assert where(api, 'field "is_a_template"="false" and field "is_control_domain"="false"', "VM") == \
        set(api.VM.get_all()) - templates - {dom0}


def test_where_ref_and_structured_columns(api, host, dom0):
    assert where(api, 'field "_ref"="%s"' % dom0, "VM") == {dom0}
    assert where(api, 'field "resident_on"="%s"' % host, "VM") == set(api.host.get_resident_VMs(host))
    net = api.network.create({"name_label": "sx", "other_config": {"k": "v"}, "tags": ["a", "b"]})
    try:
        # Sets and maps compare as their database S-expression strings.
        assert where(api, 'field "tags"="(\'a\' \'b\')"') == {net}
        assert where(api, 'field "other_config"="((\'k\' \'v\'))"') == {net}
        empty = {r for r, n in api.network.get_all_records().items() if n["other_config"] == {}}
        assert where(api, 'field "other_config"="()"') == empty
    finally:
        api.network.destroy(net)


def test_where_other_classes(api, pool, host):
    assert where(api, "true", "pool") == {pool}
    assert where(api, 'field "uuid"="%s"' % api.host.get_uuid(host), "host") == {host}
    srs = {r for r, s in api.SR.get_all_records().items() if s["type"] == "ext"}
    assert where(api, 'field "type"="ext"', "SR") == srs


@pytest.mark.parametrize("expr", [
    'field "name__label"=',
    "garbage",
    "(true",
    'field name__label="x"',
    '"a" "b"',
    "",
    'field "name__label"="x" and',
    "true false",
    'field "name__label"=="x"',
])
def test_where_bad_expression(api, expr):
    for fn in (api.network.get_all_records_where, api.network.get_all_where):
        d = failure(fn, expr)
        assert d[0] == "INVALID_VALUE"
        assert d[1] == expr
        assert len(d) == 3 and isinstance(d[2], str)


# ---------------------------------------------------------------- constructors

def test_network_create_minimal_defaults(api):
    ref = api.network.create({"other_config": {}})
    try:
        rec = api.network.get_record(ref)
        assert rec["name_label"] == "" and rec["name_description"] == ""
        assert rec["MTU"] == "1500"
        assert rec["bridge"] == "" or rec["bridge"].startswith("xapi")
        assert rec["managed"] is True
        assert rec["tags"] == [] and rec["VIFs"] == [] and rec["PIFs"] == []
        assert re.match(r"^[0-9a-f-]{36}$", rec["uuid"])
    finally:
        api.network.destroy(ref)


def test_create_int_as_string_and_number(api):
    for mtu in ["1400", 1400]:
        ref = api.network.create({"name_label": "mtu", "MTU": mtu, "other_config": {}})
        try:
            assert api.network.get_MTU(ref) == "1400"
        finally:
            api.network.destroy(ref)


def test_create_missing_required_field(api):
    d = failure(api.network.create, {"name_label": "x"})
    assert d == ["INTERNAL_ERROR", 'Server_helpers.Dispatcher_FieldNotFound("other_config")']
    assert api.network.get_by_name_label("x") == []


def test_create_extra_and_readonly_keys_ignored(api, xenbr0):
    fake_uuid = str(uuidlib.uuid4())
    ref = api.network.create({
        "name_label": "extra", "other_config": {"k": "v"},
        "uuid": fake_uuid, "PIFs": [api.network.get_PIFs(xenbr0)[0]], "VIFs": ["OpaqueRef:junk"],
        "assigned_ips": {"a": "b"}, "no_such_field": "whatever", "another": {"x": 1},
    })
    try:
        rec = api.network.get_record(ref)
        assert rec["uuid"] != fake_uuid
        assert rec["PIFs"] == [] and rec["VIFs"] == [] and rec["assigned_ips"] == {}
        assert rec["other_config"] == {"k": "v"}
        assert len(api.network.get_PIFs(xenbr0)) == 1
    finally:
        api.network.destroy(ref)


def test_create_ctor_takes_exactly_one_struct(raw, sid):
    r = getattr(raw, "network.create")(sid, {"other_config": {}}, "extra")
    assert r["ErrorDescription"] == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "network.create", "1", "2"]
    r = getattr(raw, "network.create")(sid)
    assert r["ErrorDescription"] == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "network.create", "1", "0"]


def test_destroy_then_handle_invalid(api):
    ref = api.network.create({"other_config": {}})
    api.network.destroy(ref)
    assert failure(api.network.get_record, ref) == ["HANDLE_INVALID", "network", ref]
    assert ref not in api.network.get_all()
    assert failure(api.network.destroy, ref) == ["HANDLE_INVALID", "network", ref]


def test_vm_create_and_destroy(api, host):
    ref = api.VM.create(vm_ctor(name_label="created", VCPUs_max=4, VCPUs_at_startup="2",
                                resident_on=host, uuid="junk"))
    try:
        rec = api.VM.get_record(ref)
        assert rec["name_label"] == "created"
        assert rec["power_state"] == "Halted"
        assert rec["resident_on"] == "OpaqueRef:NULL"
        assert rec["VCPUs_max"] == "4" and rec["VCPUs_at_startup"] == "2"
        assert rec["memory_static_max"] == str(1 << 30)
        assert rec["is_a_template"] is False and rec["is_control_domain"] is False
        assert rec["HVM_boot_params"] == {"order": "dc"}
        assert rec["uuid"] != "junk"
        assert rec["generation_id"] == "0:0"
        assert rec["tags"] == [] and rec["VBDs"] == [] and rec["VIFs"] == []
        assert ref in api.VM.get_all()
    finally:
        api.VM.destroy(ref)
    assert ref not in api.VM.get_all()


def test_vm_create_ignores_power_state(api):
    ref = api.VM.create(vm_ctor(name_label="not-running", power_state="Running"))
    try:
        assert api.VM.get_power_state(ref) == "Halted"
    finally:
        api.VM.destroy(ref)


def test_vm_create_missing_field(api):
    ctor = vm_ctor()
    del ctor["memory_static_max"]
    d = failure(api.VM.create, ctor)
    assert d == ["INTERNAL_ERROR", 'Server_helpers.Dispatcher_FieldNotFound("memory_static_max")']


def test_vm_create_server_side_fields(api):
    ref = api.VM.create(vm_ctor(HVM_boot_policy="BIOS order"))
    try:
        m = api.VM.get_metrics(ref)
        assert m != "OpaqueRef:NULL" and m in api.VM_metrics.get_all()
        assert api.VM.get_domain_type(ref) == "hvm"
    finally:
        api.VM.destroy(ref)
    ref = api.VM.create(vm_ctor(HVM_boot_policy=""))
    try:
        assert api.VM.get_domain_type(ref) == "pv"
    finally:
        api.VM.destroy(ref)


def test_vdi_create_and_reverse_ref(api, pool):
    sr = api.pool.get_default_SR(pool)
    assert sr != "OpaqueRef:NULL"
    vdi = api.VDI.create({"SR": sr, "virtual_size": str(1 << 30), "type": "user", "sharable": False,
                          "read_only": False, "other_config": {"o": "1"}, "name_label": "disk",
                          "tags": ["t"], "bogus": "ignored"})
    try:
        rec = api.VDI.get_record(vdi)
        assert rec["SR"] == sr and rec["name_label"] == "disk"
        assert rec["virtual_size"] == str(1 << 30)
        assert rec["type"] == "user" and rec["sharable"] is False and rec["read_only"] is False
        assert rec["other_config"] == {"o": "1"} and rec["tags"] == ["t"]
        assert vdi in api.SR.get_VDIs(sr)
        assert api.VDI.get_by_name_label("disk") == [vdi]
        assert api.VDI.get_by_uuid(rec["uuid"]) == vdi
    finally:
        api.VDI.destroy(vdi)
    assert vdi not in api.SR.get_VDIs(sr)


def test_vdi_create_missing_sr(api):
    d = failure(api.VDI.create, {"virtual_size": "1", "type": "user", "sharable": False,
                                 "read_only": False, "other_config": {}})
    assert d == ["INTERNAL_ERROR", 'Server_helpers.Dispatcher_FieldNotFound("SR")']


def test_no_ctor_for_pool_and_host_metrics(raw, sid):
    for m in ["pool.create", "pool.destroy", "host_metrics.create", "SM.create"]:
        r = getattr(raw, m)(sid, {})
        assert r["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", m], m


# ---------------------------------------------------------------- reverse references

def test_reverse_refs_seeded(api, host, dom0, pool):
    assert dom0 in api.host.get_resident_VMs(host)
    assert api.VM.get_resident_on(dom0) == host
    for r, v in api.VM.get_all_records().items():
        assert (r in api.host.get_resident_VMs(host)) == (v["resident_on"] == host)
    # SR.PBDs <-> PBD.SR, host.PBDs <-> PBD.host
    for pbd, p in api.PBD.get_all_records().items():
        assert pbd in api.SR.get_PBDs(p["SR"])
        assert pbd in api.host.get_PBDs(p["host"])
    for sr, s in api.SR.get_all_records().items():
        assert s["PBDs"], sr
        for pbd in s["PBDs"]:
            assert api.PBD.get_SR(pbd) == sr
    # network.PIFs <-> PIF.network, host.PIFs <-> PIF.host
    for pif, p in api.PIF.get_all_records().items():
        assert pif in api.network.get_PIFs(p["network"])
        assert pif in api.host.get_PIFs(p["host"])
    # VM.consoles <-> console.VM
    consoles = api.VM.get_consoles(dom0)
    assert consoles
    for c in consoles:
        assert api.console.get_VM(c) == dom0
    for c, rec in api.console.get_all_records().items():
        assert c in api.VM.get_consoles(rec["VM"])
    # host_CPUs
    for cpu, rec in api.host_cpu.get_all_records().items():
        assert cpu in api.host.get_host_CPUs(rec["host"])
    # SR.VDIs
    for vdi, rec in api.VDI.get_all_records().items():
        assert vdi in api.SR.get_VDIs(rec["SR"])


def test_reverse_refs_vif_vbd(api, vm, xenbr0, pool):
    vif = api.VIF.create({"device": "0", "network": xenbr0, "VM": vm, "MAC": "", "MTU": "1500",
                          "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    assert vif in api.network.get_VIFs(xenbr0)
    assert api.VM.get_VIFs(vm) == [vif]
    sr = api.pool.get_default_SR(pool)
    vdi = api.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "user", "sharable": False,
                          "read_only": False, "other_config": {}})
    vbd = api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW",
                          "type": "Disk", "empty": False, "other_config": {}, "qos_algorithm_type": "",
                          "qos_algorithm_params": {}})
    try:
        assert api.VM.get_VBDs(vm) == [vbd]
        assert api.VDI.get_VBDs(vdi) == [vbd]
        api.VBD.destroy(vbd)
        assert api.VM.get_VBDs(vm) == [] and api.VDI.get_VBDs(vdi) == []
        api.VIF.destroy(vif)
        assert vif not in api.network.get_VIFs(xenbr0)
        assert api.VM.get_VIFs(vm) == []
    finally:
        api.VDI.destroy(vdi)


def test_vm_destroy_removes_devices(api, xenbr0, pool):
    vm = api.VM.create(vm_ctor(name_label="doomed"))
    vif = api.VIF.create({"device": "0", "network": xenbr0, "VM": vm, "MAC": "", "MTU": "1500",
                          "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    sr = api.pool.get_default_SR(pool)
    vdi = api.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "user", "sharable": False,
                          "read_only": False, "other_config": {}})
    vbd = api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW",
                          "type": "Disk", "empty": False, "other_config": {}, "qos_algorithm_type": "",
                          "qos_algorithm_params": {}})
    try:
        api.VM.destroy(vm)
        assert vif not in api.VIF.get_all()
        assert vif not in api.network.get_VIFs(xenbr0)
        assert vbd not in api.VBD.get_all()
        assert api.VDI.get_VBDs(vdi) == []
        assert vdi in api.VDI.get_all()   # VDIs survive
    finally:
        for fn, r in ((api.VBD.destroy, vbd), (api.VIF.destroy, vif), (api.VDI.destroy, vdi)):
            try:
                fn(r)
            except XenAPI.Failure:
                pass


def test_reverse_ref_field_not_settable(raw, sid, xenbr0):
    r = getattr(raw, "network.set_VIFs")(sid, xenbr0, [])
    assert r["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", "network.set_VIFs"]
    r = getattr(raw, "network.add_VIFs")(sid, xenbr0, "OpaqueRef:x")
    assert r["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", "network.add_VIFs"]


# ---------------------------------------------------------------- message coverage

def test_list_methods_has_implicit_messages(xapid):
    methods = set(xapid.raw().system.listMethods())
    for cls in ["VM", "network", "host", "pool", "SR", "VDI"]:
        assert cls + ".get_record" in methods
        assert cls + ".get_by_uuid" in methods
        assert cls + ".get_all" in methods
        assert cls + ".get_all_records" in methods
        for f in dm_fields(cls):
            assert "%s.get_%s" % (cls, f["name"]) in methods
            explicit = dm_messages(cls)
            if f["qual"] == "rw":
                assert "%s.set_%s" % (cls, f["name"]) in methods
                if f["type"].startswith("map<"):
                    assert "%s.add_to_%s" % (cls, f["name"]) in methods
                    assert "%s.remove_from_%s" % (cls, f["name"]) in methods
            elif "set_" + f["name"] not in explicit:
                assert "%s.set_%s" % (cls, f["name"]) not in methods, f["name"]
    assert "VM.create" in methods and "VM.destroy" in methods
    assert "pool.create" not in methods


# ---------------------------------------------------------------- role (static, hand-written messages)

ROLE_NAMES = {"pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"}


def test_role_lookups(api):
    recs = api.role.get_all_records()
    assert sorted(api.role.get_all()) == sorted(recs)
    assert ROLE_NAMES <= {r["name_label"] for r in recs.values()}
    # Permissions are roles without subroles, named by the lowercased wire name.
    perms = {r["name_label"] for r in recs.values() if not r["subroles"]}
    assert {"vm.start", "vm.get_record", "session.logout"} <= perms
    (ref,) = api.role.get_by_name_label("vm-admin")
    assert api.role.get_record(ref) == recs[ref]
    assert api.role.get_by_uuid(recs[ref]["uuid"]) == ref


def test_role_get_all_records_where_magic(api):
    roles = api.role.get_all_records_where("subroles<>[]")
    assert {r["name_label"] for r in roles.values()} >= ROLE_NAMES
    assert all(r["subroles"] for r in roles.values())
    perms = api.role.get_all_records_where("subroles=[]")
    assert perms and not any(r["subroles"] for r in perms.values())
    assert "vm.start" in {r["name_label"] for r in perms.values()}
    assert len(roles) + len(perms) == len(api.role.get_all())
    assert len(api.role.get_all_records_where("anything at all")) == len(api.role.get_all())

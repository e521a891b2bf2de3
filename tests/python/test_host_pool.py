"""Host and pool operations that management tools call, with the PyPI XenAPI
client: enable/disable, evacuation, shutdown/reboot of the simulated host,
server time, licences, plugins, renaming, the pool's SR pointers and name, and
the SDK guide's chapter 7 other-config keys. Expected behaviour is xapi's
(xapi_host.ml, xapi_host_helpers.ml, xapi_vm_helpers.ml, xapi_plugins.ml)."""

import base64
import calendar
import re
import time

import pytest
import XenAPI

from conftest import failure
from vmlib import NULL, install, remove, running, wait_for, wait_task

ETCH = "Debian Etch 4.0"
DATETIME_UTC = re.compile(r"^\d{8}T\d\d:\d\d:\d\dZ$")
DATETIME_LOCAL = re.compile(r"^\d{8}T\d\d:\d\d:\d\d$")


def dt(v):
    return v.value if hasattr(v, "value") else str(v)


@pytest.fixture(scope="module")
def host(api):
    return api.host.get_all()[0]


@pytest.fixture(scope="module")
def pool(api):
    return api.pool.get_all()[0]


@pytest.fixture
def enabled_host(api, host):
    """Leaves the host enabled and live whatever the test did."""
    yield host
    wait_for(lambda: api.host_metrics.get_record(api.host.get_metrics(host))["live"], 10, "host back")
    if not api.host.get_enabled(host):
        api.host.enable(host)


def live(api, host):
    return api.host_metrics.get_record(api.host.get_metrics(host))["live"]


# ------------------------------------------------------------ enable / disable

def test_disable_and_enable(api, enabled_host):
    host = enabled_host
    vm = running(api, "keeps running", tmpl=ETCH)
    other = install(api, "cannot start", tmpl=ETCH)
    try:
        api.host.disable(host)
        assert api.host.get_enabled(host) is False
        # Running VMs keep running; new ones cannot start here.
        assert api.VM.get_power_state(vm) == "Running"
        assert failure(api.VM.start_on, other, host, False, False) == ["HOST_DISABLED", host]
        with pytest.raises(XenAPI.Failure):
            api.VM.start(other, False, False)
        assert api.VM.get_power_state(other) == "Halted"
        api.host.disable(host)                       # idempotent
        api.host.enable(host)
        assert api.host.get_enabled(host) is True
        api.host.enable(host)
        api.VM.start(other, False, False)
        assert api.VM.get_power_state(other) == "Running"
    finally:
        remove(api, vm)
        remove(api, other)


def test_start_with_no_enabled_host(api, enabled_host):
    vm = install(api, "nowhere to go", tmpl=ETCH)
    try:
        api.host.disable(enabled_host)
        assert failure(api.VM.start, vm, False, False) == ["NO_HOSTS_AVAILABLE"]
    finally:
        remove(api, vm)


def test_async_disable(api, enabled_host):
    task = api.Async.host.disable(enabled_host)
    assert wait_task(api, task)["status"] == "success"
    assert api.host.get_enabled(enabled_host) is False
    api.task.destroy(task)


# ------------------------------------------------------------ evacuation

def test_evacuation_of_an_empty_host(api, host):
    assert api.host.get_vms_which_prevent_evacuation(host) == {}
    api.host.assert_can_evacuate(host)
    api.host.evacuate(host)


def test_vms_which_prevent_evacuation(api, host):
    vm = running(api, "pinned", tmpl=ETCH)
    paused = running(api, "paused", tmpl=ETCH)
    api.VM.pause(paused)
    suspended = running(api, "suspended", tmpl=ETCH)
    api.VM.suspend(suspended)
    try:
        # A one-host pool has nowhere to send resident guests; suspended ones are not resident.
        assert api.host.get_vms_which_prevent_evacuation(host) == {
            vm: ["NO_HOSTS_AVAILABLE", vm], paused: ["NO_HOSTS_AVAILABLE", paused]}
        e = failure(api.host.assert_can_evacuate, host)
        assert e[0] == "CANNOT_EVACUATE_HOST" and len(e) == 2
        assert sorted(e[1].split("|")) == sorted(["NO_HOSTS_AVAILABLE," + vm, "NO_HOSTS_AVAILABLE," + paused])
        with pytest.raises(XenAPI.Failure):
            api.host.evacuate(host)
        assert api.VM.get_power_state(vm) == "Running"
        assert api.VM.get_resident_on(vm) == host
    finally:
        for v in (vm, paused, suspended):
            remove(api, v)


def test_cannot_evacuate_host_parameters(api, host):
    vm = running(api, "pinned alone", tmpl=ETCH)
    try:
        assert failure(api.host.assert_can_evacuate, host) == ["CANNOT_EVACUATE_HOST", "NO_HOSTS_AVAILABLE," + vm]
    finally:
        remove(api, vm)


def test_evacuate_raises_the_plan_error(api, host):
    vm = running(api, "pinned for evacuate", tmpl=ETCH)
    try:
        assert failure(api.host.evacuate, host) == ["NO_HOSTS_AVAILABLE", vm]
    finally:
        remove(api, vm)


# ------------------------------------------------------------ shutdown / reboot

def test_reboot_and_shutdown_need_a_disabled_host(api, enabled_host):
    host = enabled_host
    assert api.host.get_enabled(host) is True
    assert failure(api.host.reboot, host) == ["HOST_NOT_DISABLED"]
    assert failure(api.host.shutdown, host) == ["HOST_NOT_DISABLED"]
    assert live(api, host) is True


def test_reboot_goes_down_and_comes_back(api, enabled_host):
    host = enabled_host
    boot0 = float(api.host.get_other_config(host)["boot_time"])
    api.host.disable(host)
    api.host.reboot(host)
    wait_for(lambda: live(api, host) is False, 10, "host down")
    wait_for(lambda: live(api, host) is True, 15, "host back")
    # xapi re-enables the host on start-up (host_auto_enable).
    wait_for(lambda: api.host.get_enabled(host), 5, "host enabled again")
    assert float(api.host.get_other_config(host)["boot_time"]) >= boot0
    vm = running(api, "after reboot", tmpl=ETCH)
    remove(api, vm)


def test_shutdown_goes_down_and_stays_down(api, enabled_host):
    host = enabled_host
    api.host.disable(host)
    api.host.shutdown(host)
    wait_for(lambda: live(api, host) is False, 10, "host down")
    # Unlike a reboot, nothing brings it back but host.power_on.
    time.sleep(3)
    assert live(api, host) is False
    api.host.power_on(host)
    wait_for(lambda: live(api, host) is True, 10, "host powered on")


def test_messages_without_an_implementation_say_so(api, host):
    """Calls that would change nothing here answer NOT_IMPLEMENTED instead of success."""
    vm = running(api, "not implemented", tmpl=ETCH)
    try:
        assert failure(api.VM.send_sysrq, vm, "b") == ["NOT_IMPLEMENTED", "VM.send_sysrq"]
        assert failure(api.VM.send_trigger, vm, "reset") == ["NOT_IMPLEMENTED", "VM.send_trigger"]
        assert failure(api.VM.call_plugin, vm, "guest-agent-operation", "request-rdp-on", {}) == \
            ["NOT_IMPLEMENTED", "VM.call_plugin"]
        assert failure(api.VM.restart_device_models, vm) == ["NOT_IMPLEMENTED", "VM.restart_device_models"]
    finally:
        remove(api, vm)
    pool = api.pool.get_all()[0]
    assert failure(api.pool.enable_ssl_legacy, pool) == ["MESSAGE_REMOVED"]


def test_security_settings_are_recorded(api, host):
    pool = api.pool.get_all()[0]
    api.pool.disable_ssl_legacy(pool)
    assert api.host.get_ssl_legacy(host) is False
    api.pool.enable_tls_verification()
    assert api.pool.get_tls_verification_enabled(pool) is True
    assert api.host.get_tls_verification_enabled(host) is True


def test_pool_apply_edition_reaches_every_host(api, host):
    pool = api.pool.get_all()[0]
    before = api.host.get_edition(host)
    api.pool.apply_edition(pool, "xcp-ng")
    assert api.host.get_edition(host) == "xcp-ng"
    api.pool.apply_edition(pool, before)


def test_reboot_with_running_guests(api, enabled_host):
    host = enabled_host
    vm = running(api, "running through reboot", tmpl=ETCH)
    try:
        api.host.disable(host)
        api.host.reboot(host)
        wait_for(lambda: live(api, host) is False, 10, "host down")
        wait_for(lambda: live(api, host) is True, 15, "host back")
        assert api.VM.get_power_state(vm) == "Halted"
        assert api.VM.get_resident_on(vm) == NULL
    finally:
        remove(api, vm)


# ------------------------------------------------------------ time

def test_servertime_and_localtime(api, host):
    utc = dt(api.host.get_servertime(host))
    assert DATETIME_UTC.match(utc), utc
    assert abs(calendar.timegm(time.strptime(utc, "%Y%m%dT%H:%M:%SZ")) - time.time()) < 5
    local = dt(api.host.get_server_localtime(host))
    assert DATETIME_LOCAL.match(local), local
    assert abs(time.mktime(time.strptime(local, "%Y%m%dT%H:%M:%S")) - time.time()) < 5


# ------------------------------------------------------------ licences

def test_license_add(api, host):
    # Contents that are not base64 are refused before any licence daemon sees them (xapi_host.ml).
    assert failure(api.host.license_add, host, "this is not base64!") == ["LICENSE_PROCESSING_ERROR"]
    task = api.Async.host.license_add(host, "***")
    rec = wait_task(api, task)
    assert rec["status"] == "failure" and rec["error_info"] == ["LICENSE_PROCESSING_ERROR"]
    api.task.destroy(task)
    assert DATETIME_UTC.match(api.host.get_license_params(host)["expiry"])
    # license_apply was removed in favour of license_add.
    assert failure(api.host.license_apply, host, base64.b64encode(b"x").decode()) == ["MESSAGE_REMOVED"]


# ------------------------------------------------------------ plugins

def test_call_plugin_echo(api, host):
    assert api.host.call_plugin(host, "echo", "echo", {"b": "2", "a": "1", "c": "x y"}) == "a=1\nb=2\nc=x y"
    assert api.host.call_plugin(host, "echo", "echo", {}) == ""
    assert api.host.call_plugin(host, "echo", "ping", {}) == "pong"


def test_call_plugin_async_result(api, host):
    task = api.Async.host.call_plugin(host, "echo", "ping", {})
    rec = wait_task(api, task)
    assert rec["status"] == "success"
    assert rec["result"] == "<value>pong</value>"
    api.task.destroy(task)


def test_call_plugin_errors(api, host):
    assert failure(api.host.call_plugin, host, "no-such-plugin", "echo", {}) == \
        ["XENAPI_MISSING_PLUGIN", "no-such-plugin"]
    e = failure(api.host.call_plugin, host, "echo", "no-such-fn", {})
    assert e[0] == "XENAPI_PLUGIN_FAILURE" and len(e) == 4


# ------------------------------------------------------------ host name

def test_set_hostname_live(api, host):
    old_label = api.host.get_name_label(host)
    api.host.set_hostname_live(host, "sim-host.example")
    assert api.host.get_hostname(host) == "sim-host.example"
    assert api.host.get_name_label(host) == old_label
    for bad in ["", "bad_name", "-abc", "a b", "x" * 256]:
        assert failure(api.host.set_hostname_live, host, bad)[0] == "HOST_NAME_INVALID", bad
    assert api.host.get_hostname(host) == "sim-host.example"


def test_set_hostname_live_renames_the_control_domain(api, host):
    api.host.set_hostname_live(host, "renamed-host")
    assert api.VM.get_name_label(api.host.get_control_domain(host)) == "Control domain on host: renamed-host"


def test_set_hostname_live_error_text(api, host):
    assert failure(api.host.set_hostname_live, host, "") == ["HOST_NAME_INVALID", "hostname empty"]
    assert failure(api.host.set_hostname_live, host, "bad_name") == \
        ["HOST_NAME_INVALID", "hostname contains invalid characters"]
    assert failure(api.host.set_hostname_live, host, "x" * 256) == ["HOST_NAME_INVALID", "hostname is too long"]


def test_set_hostname_live_character_rules(api, host):
    assert failure(api.host.set_hostname_live, host, "abc-")[0] == "HOST_NAME_INVALID"
    api.host.set_hostname_live(host, "h" * 64)
    assert api.host.get_hostname(host) == "h" * 64


# ------------------------------------------------------------ pool

@pytest.fixture
def second_sr(api, host, pool):
    saved = {k: getattr(api.pool, "get_" + k)(pool) for k in ("default_SR", "suspend_image_SR", "crash_dump_SR")}
    sr = api.SR.create(host, {}, "0", "second SR", "", "ext", "user", False, {})
    yield sr
    for k, v in saved.items():
        getattr(api.pool, "set_" + k)(pool, v)
    for vdi in api.SR.get_VDIs(sr):
        try:
            api.VDI.destroy(vdi)
        except XenAPI.Failure:
            pass
    for pbd in api.SR.get_PBDs(sr):
        api.PBD.unplug(pbd)
    api.SR.destroy(sr)


def test_pool_sr_pointers_are_stored_and_used(api, pool, second_sr):
    api.pool.set_default_SR(pool, second_sr)
    api.pool.set_suspend_image_SR(pool, second_sr)
    api.pool.set_crash_dump_SR(pool, second_sr)
    rec = api.pool.get_record(pool)
    assert (rec["default_SR"], rec["suspend_image_SR"], rec["crash_dump_SR"]) == (second_sr,) * 3
    # Provisioning with sr="" uses the default SR; suspend images go to the suspend image SR.
    vm = running(api, "on second SR", tmpl=ETCH)
    try:
        (vbd,) = api.VM.get_VBDs(vm)
        assert api.VDI.get_SR(api.VBD.get_VDI(vbd)) == second_sr
        api.VM.suspend(vm)
        assert api.VDI.get_SR(api.VM.get_suspend_VDI(vm)) == second_sr
    finally:
        remove(api, vm)
    api.pool.set_crash_dump_SR(pool, NULL)
    assert api.pool.get_crash_dump_SR(pool) == NULL


def test_pool_name_label(api, pool):
    token = api.event_from(["pool"], "", 0.0)["token"]
    api.pool.set_name_label(pool, "my pool")
    assert api.pool.get_name_label(pool) == "my pool"
    assert api.pool.get_record(pool)["name_label"] == "my pool"
    r = api.event_from(["pool"], token, 5.0)
    assert [e["snapshot"]["name_label"] for e in r["events"] if e["ref"] == pool][-1] == "my pool"
    # Chapter 7: an empty name_label hides the pool in XenCenter; it is just stored.
    api.pool.set_name_label(pool, "")
    assert api.pool.get_name_label(pool) == ""
    api.pool.set_name_description(pool, "described")
    assert api.pool.get_name_description(pool) == "described"


# ------------------------------------------------------------ chapter 7 keys

def test_chapter7_host_keys(api, host):
    rec = api.host.get_record(host)
    assert rec["other_config"]["iscsi_iqn"] == rec["iscsi_iqn"]
    for k in ("boot_time", "agent_start_time"):
        float(rec["other_config"][k])
    lp = rec["license_params"]
    assert DATETIME_UTC.match(lp["expiry"])
    for k in ("sku_type", "restrict_pooling", "restrict_connection", "restrict_qos", "restrict_vlan",
              "restrict_pool_attached_storage"):
        assert k in lp, k
    sv = rec["software_version"]
    for k in ("product_version", "build_number", "xapi"):
        assert sv.get(k), k
    api.host.add_to_logging(host, "syslog_destination", "logs.example")
    assert api.host.get_logging(host)["syslog_destination"] == "logs.example"
    # No syslog forwarding here: the call says so rather than succeed.
    assert failure(api.host.syslog_reconfigure, host) == ["NOT_IMPLEMENTED", "host.syslog_reconfigure"]
    api.host.remove_from_logging(host, "syslog_destination")


def test_chapter7_vm_keys(api):
    t = [r for r, v in api.VM.get_all_records().items() if v["name_label"] == ETCH][0]
    methods = api.VM.get_other_config(t)["install-methods"].split(",")
    assert set(methods) <= {"cdrom", "nfs", "http", "ftp"}
    vm = install(api, "ch7 keys", tmpl=ETCH)
    try:
        keys = {"auto_poweron": "true", "ignore_excessive_vcpus": "true", "HideFromXenCenter": "true",
                "install-repository": "cdrom", "install_distro": "rhlike", "p2v_source_machine": "old-box"}
        for k, v in keys.items():
            api.VM.add_to_other_config(vm, k, v)
        oc = api.VM.get_other_config(vm)
        for k, v in keys.items():
            assert oc[k] == v
        api.VM.set_HVM_boot_params(vm, {"order": "CDN"})
        assert api.VM.get_HVM_boot_params(vm) == {"order": "CDN"}
        api.VM.add_to_VCPUs_params(vm, "weight", "512")
        assert api.VM.get_VCPUs_params(vm)["weight"] == "512"
        (vbd,) = api.VM.get_VBDs(vm)
        api.VBD.add_to_other_config(vbd, "is_owner", "true")
        api.VBD.add_to_other_config(vbd, "class", "4")
        assert {"is_owner": "true", "class": "4"}.items() <= api.VBD.get_other_config(vbd).items()
        vdi = api.VBD.get_VDI(vbd)
        assert api.VDI.get_sm_config(vdi)["vmhint"] == api.VM.get_uuid(vm)
        assert api.VDI.get_type(vdi) == "system"
    finally:
        remove(api, vm)


def test_chapter7_sr_network_and_guest_keys(api):
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    api.SR.add_to_other_config(sr, "auto-scan", "true")
    assert api.SR.get_other_config(sr)["auto-scan"] == "true"
    api.SR.remove_from_other_config(sr, "auto-scan")
    net = api.network.create({"name_label": "ch7 net", "other_config": {}})
    api.network.add_to_other_config(net, "automatic", "false")
    assert api.network.get_other_config(net)["automatic"] == "false"
    api.network.destroy(net)
    vm = running(api, "ch7 guest", tmpl=ETCH)
    try:
        gm = wait_for(lambda: (lambda g: g if g != NULL else None)(api.VM.get_guest_metrics(vm)), 10)
        pv = api.VM_guest_metrics.get_PV_drivers_version(gm)
        for k in ("major", "minor", "micro"):
            int(pv[k])
    finally:
        remove(api, vm)

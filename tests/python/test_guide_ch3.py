"""The SDK guide's chapter 3 "install and start" sequence, with the PyPI XenAPI
client: login -> pick a template from VM.get_all_records -> VM.clone ->
VM.provision -> VM.start -> VM.suspend -> VM.resume -> VM.clean_shutdown ->
session.logout (guide §3.2.1-3.2.6), checking what xapi records at each step
(xapi-reference.md §6.5; guide §4.1.4 and chapter 7)."""

import re
import time

import pytest
import XenAPI

from conftest import PASSWORD, failure
from vmlib import NULL, add_vif, free_memory, install, remove, wait_for

PROVISION_RE = re.compile(r'<disk device="(\d+)" size="(\d+)" sr="([^"]*)" bootable="(\w+)" type="(\w+)"/>')


def dt(v):
    """xmlrpc DateTime -> its raw string."""
    return v.value if hasattr(v, "value") else str(v)


@pytest.fixture(scope="module")
def host(api):
    return api.host.get_all()[0]


@pytest.mark.parametrize("tmpl_name", ["Debian Bookworm 12", "Debian Etch 4.0"])
def test_install_and_lifecycle(xapid, tmpl_name):
    # §3.2.1 Authentication: login_with_password(user, pw, version, originator).
    session = XenAPI.Session(xapid.url)
    session.xenapi.login_with_password("root", PASSWORD, "2.3", "My Widget v0.1")
    api = session.xenapi
    sid = session._session
    host = api.host.get_all()[0]
    pool = api.pool.get_all()[0]
    default_sr = api.pool.get_default_SR(pool)

    # §3.2.2 Templates: scan a get_all_records snapshot for is_a_template + name.
    records = api.VM.get_all_records()
    templates = {r: v for r, v in records.items() if v["is_a_template"]}
    (t_ref,) = [r for r, v in templates.items() if v["name_label"] == tmpl_name]
    t_rec = templates[t_ref]
    assert t_rec["other_config"].get("default_template") == "true"
    (disk,) = PROVISION_RE.findall(t_rec["other_config"]["disks"])
    disk_size = int(disk[1])

    # §3.2.3 clone: the result is still a template.
    vm = api.VM.clone(t_ref, "my first VM")
    rec = api.VM.get_record(vm)
    assert rec["name_label"] == "my first VM"
    assert rec["is_a_template"] is True
    assert rec["power_state"] == "Halted"
    assert rec["is_default_template"] is False
    assert "default_template" not in rec["other_config"]
    assert rec["other_config"]["base_template_name"] == tmpl_name
    assert rec["other_config"].get("mac_seed")
    assert rec["VBDs"] == []
    assert vm in api.VM.get_by_name_label("my first VM")

    # ... provision: is_a_template becomes false and the template's disk exists.
    api.VM.provision(vm)
    rec = api.VM.get_record(vm)
    assert rec["is_a_template"] is False
    assert "disks" not in rec["other_config"]
    (vbd,) = rec["VBDs"]
    vbd_rec = api.VBD.get_record(vbd)
    assert vbd_rec["userdevice"] == disk[0]
    assert vbd_rec["mode"] == "RW" and vbd_rec["type"] == "Disk"
    assert vbd_rec["bootable"] is True
    assert vbd_rec["currently_attached"] is False
    vdi = vbd_rec["VDI"]
    vdi_rec = api.VDI.get_record(vdi)
    assert int(vdi_rec["virtual_size"]) == disk_size
    assert vdi_rec["SR"] == default_sr          # sr="" means the pool's default SR
    assert vdi_rec["type"] == "system"
    assert vdi_rec["name_description"] == "Created by template provisioner"
    assert vdi_rec["sm_config"].get("vmhint") == rec["uuid"]
    assert "start" in rec["allowed_operations"]

    # A NIC, so that the guest agent has a network to report.
    vif = add_vif(api, vm)

    # §3.2.4 start / suspend / resume / shutdown.
    free0 = free_memory(api, host)
    dyn_max = int(rec["memory_dynamic_max"])

    api.VM.start(vm, False, False)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Running"
    assert rec["resident_on"] == host
    assert int(rec["domid"]) > 0
    assert vm in api.host.get_resident_VMs(host)
    assert api.VBD.get_currently_attached(vbd) is True
    assert api.VIF.get_currently_attached(vif) is True
    assert "start" not in rec["allowed_operations"]
    assert {"clean_shutdown", "hard_shutdown", "suspend", "pause"} <= set(rec["allowed_operations"])
    m = api.VM_metrics.get_record(rec["metrics"])
    assert int(m["VCPUs_number"]) == int(rec["VCPUs_at_startup"])
    assert int(m["memory_actual"]) > 0
    assert dt(m["start_time"]) != "19700101T00:00:00Z"
    assert free_memory(api, host) <= free0 - dyn_max

    # Guide §4.1.4: booting has finished once the agent reports guest metrics.
    gm = wait_for(lambda: (lambda g: g if g != NULL else None)(api.VM.get_guest_metrics(vm)), 10, "guest metrics")
    gm_rec = wait_for(lambda: (lambda r: r if "0/ip" in r["networks"] else None)(api.VM_guest_metrics.get_record(gm)),
                      10, "networks 0/ip")
    assert gm_rec["os_version"].get("name")
    assert "debian" in gm_rec["os_version"]["name"].lower()
    assert re.match(r"^\d+\.\d+\.\d+\.\d+$", gm_rec["networks"]["0/ip"])
    assert gm_rec["PV_drivers_version"].get("major")
    assert "0/ip" in api.VM_guest_metrics.get_networks(gm)

    api.VM.suspend(vm)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Suspended"
    suspend_vdi = rec["suspend_VDI"]
    assert suspend_vdi != NULL
    s_rec = api.VDI.get_record(suspend_vdi)
    assert s_rec["type"] == "suspend"
    assert s_rec["SR"] == api.pool.get_suspend_image_SR(pool)
    assert rec["resident_on"] == NULL
    assert int(rec["domid"]) == -1
    assert vm not in api.host.get_resident_VMs(host)
    assert {"resume", "hard_shutdown"} <= set(rec["allowed_operations"])
    assert "start" not in rec["allowed_operations"]
    assert free_memory(api, host) == free0

    api.VM.resume(vm, False, False)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Running"
    assert rec["suspend_VDI"] == NULL
    assert failure(api.VDI.get_record, suspend_vdi)[0] == "HANDLE_INVALID"
    assert rec["resident_on"] == host and int(rec["domid"]) > 0
    assert api.VBD.get_currently_attached(vbd) is True
    assert free_memory(api, host) <= free0 - dyn_max

    api.VM.clean_shutdown(vm)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Halted"
    assert rec["resident_on"] == NULL
    assert int(rec["domid"]) == -1
    assert api.VBD.get_currently_attached(vbd) is False
    assert api.VIF.get_currently_attached(vif) is False
    assert vm not in api.host.get_resident_VMs(host)
    assert "start" in rec["allowed_operations"]
    assert free_memory(api, host) == free0

    # §3.2.5 logout invalidates the session reference.
    session.xenapi.session.logout()
    raw = xapid.raw()
    r = raw.VM.get_all(sid)
    assert r["Status"] == "Failure"
    assert r["ErrorDescription"] == ["SESSION_INVALID", sid]

    # Clean up with a fresh session (the VM and its disk).
    s2 = xapid.session()
    s2.xenapi.VM.destroy(vm)
    s2.xenapi.VDI.destroy(vdi)
    s2.xenapi.session.logout()


def test_shutdown_tries_clean_first(api, host):
    """§3.2.4 ends with VM.shutdown: a clean shutdown that xapi falls back to
    hard_shutdown when the guest ignores it."""
    vm = install(api, "ch3 shutdown", tmpl="Debian Bookworm 12", other_config={"sim:clean-shutdown": "ignore"})
    try:
        api.VM.start(vm, False, False)
        t0 = time.time()
        api.VM.shutdown(vm)
        assert api.VM.get_power_state(vm) == "Halted"
        assert time.time() - t0 < 20
    finally:
        remove(api, vm)


def test_ignored_clean_shutdown_fails_and_vm_keeps_running(api, host):
    vm = install(api, "ch3 ignore", other_config={"sim:clean-shutdown": "ignore"})
    try:
        api.VM.start(vm, False, False)
        assert failure(api.VM.clean_shutdown, vm)[0] == "VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT"
        assert api.VM.get_power_state(vm) == "Running"
        assert api.VM.get_current_operations(vm) == {}
        api.VM.hard_shutdown(vm)
        assert api.VM.get_power_state(vm) == "Halted"
    finally:
        remove(api, vm)


def test_ignored_clean_shutdown_error_names_the_vm(api, host):
    vm = install(api, "ch3 ignore 2", other_config={"sim:clean-shutdown": "ignore"})
    try:
        api.VM.start(vm, False, False)
        assert failure(api.VM.clean_shutdown, vm) == ["VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT", vm]
    finally:
        remove(api, vm)

"""VM operations with xapi's preconditions, errors and exact error parameters
(xapi-reference.md §6, §12; checked against xapi's xapi_vm_lifecycle.ml,
xapi_vm.ml, xapi_vm_helpers.ml, xapi_vm_snapshot.ml and message_forwarding.ml),
driven through the PyPI XenAPI client, with the simulator's fault and delay
knobs (crates/backend/src/sim.rs) for the slow and failing paths."""

import time

import pytest
import XenAPI

from conftest import failure, vm_ctor
from vmlib import GIB, MIB, NULL, add_vif, free_memory, install, remove, running, template, wait_for, wait_task

ETCH = "Debian Etch 4.0"          # PV, 256 MiB: quick to suspend
OTHER = "Other install media"     # HVM


@pytest.fixture(scope="module")
def host(api):
    return api.host.get_all()[0]


@pytest.fixture(scope="module")
def dom0(api, host):
    return api.host.get_control_domain(host)


@pytest.fixture
def halted(api):
    vm = install(api, "ops halted", tmpl=ETCH)
    yield vm
    remove(api, vm)


@pytest.fixture
def live(api):
    """A running VM whose guest agent has reported."""
    vm = running(api, "ops running", tmpl=ETCH, vif=True)
    wait_for(lambda: api.VM.get_guest_metrics(vm) != NULL, 10, "guest metrics")
    yield vm
    remove(api, vm)


def bad_power(vm, expected, actual):
    return ["VM_BAD_POWER_STATE", vm, expected, actual]


# ------------------------------------------------- VM_BAD_POWER_STATE

def test_bad_power_state_on_a_halted_vm(api, halted, host):
    vm = halted
    assert failure(api.VM.suspend, vm) == bad_power(vm, "running", "halted")
    assert failure(api.VM.clean_shutdown, vm) == bad_power(vm, "running", "halted")
    assert failure(api.VM.pause, vm) == bad_power(vm, "running", "halted")
    assert failure(api.VM.unpause, vm) == bad_power(vm, "paused", "halted")
    assert failure(api.VM.resume, vm, False, False) == bad_power(vm, "suspended", "halted")
    assert failure(api.VM.hard_shutdown, vm) == bad_power(vm, "paused, suspended, running", "halted")
    assert failure(api.VM.hard_reboot, vm) == bad_power(vm, "paused, running", "halted")
    assert failure(api.VM.checkpoint, vm, "cp") == bad_power(vm, "paused, suspended, running", "halted")
    assert failure(api.VM.pool_migrate, vm, host, {"live": "true"}) == bad_power(vm, "running", "halted")
    assert api.VM.get_power_state(vm) == "Halted"


def test_bad_power_state_on_running_suspended_and_paused_vms(api, live, host):
    vm = live
    assert failure(api.VM.start, vm, False, False) == bad_power(vm, "halted", "running")
    assert failure(api.VM.start_on, vm, host, False, False) == bad_power(vm, "halted", "running")
    assert failure(api.VM.destroy, vm) == bad_power(vm, "halted, suspended", "running")
    assert failure(api.VM.clone, vm, "c") == bad_power(vm, "halted", "running")
    assert failure(api.VM.copy, vm, "c", NULL) == bad_power(vm, "halted", "running")
    assert failure(api.VM.unpause, vm) == bad_power(vm, "paused", "running")
    assert failure(api.VM.set_VCPUs_max, vm, "4") == bad_power(vm, "halted", "running")
    assert failure(api.VM.set_memory_limits, vm, str(256 * MIB), str(512 * MIB), str(256 * MIB),
                   str(256 * MIB)) == bad_power(vm, "halted", "running")

    api.VM.pause(vm)
    assert api.VM.get_power_state(vm) == "Paused"
    assert failure(api.VM.suspend, vm) == bad_power(vm, "running", "paused")
    assert failure(api.VM.pause, vm) == bad_power(vm, "running", "paused")
    assert failure(api.VM.clean_shutdown, vm) == bad_power(vm, "running", "paused")
    assert failure(api.VM.destroy, vm) == bad_power(vm, "halted, suspended", "paused")
    api.VM.unpause(vm)

    api.VM.suspend(vm)
    assert failure(api.VM.start, vm, False, False) == bad_power(vm, "halted", "suspended")
    assert failure(api.VM.clean_shutdown, vm) == bad_power(vm, "running", "suspended")
    assert failure(api.VM.clone, vm, "c") == bad_power(vm, "halted", "suspended")
    assert failure(api.VM.hard_reboot, vm) == bad_power(vm, "paused, running", "suspended")
    assert api.VM.get_power_state(vm) == "Suspended"


# ------------------------------------------- templates and snapshots

def test_vm_is_template_names_the_operation(api):
    t = template(api, ETCH)
    assert failure(api.VM.start, t, False, False) == ["VM_IS_TEMPLATE", t, "start"]
    assert failure(api.VM.snapshot, t, "s", []) == ["VM_IS_TEMPLATE", t, "snapshot"]
    # A default template cannot be destroyed...
    assert failure(api.VM.destroy, t) == ["VM_IS_TEMPLATE", t, "destroy"]
    assert api.VM.get_record(t)["is_a_template"] is True
    # ...but an ordinary template can.
    mine = api.VM.clone(t, "my template")
    assert api.VM.get_is_a_template(mine) is True
    assert failure(api.VM.start, mine, False, False) == ["VM_IS_TEMPLATE", mine, "start"]
    api.VM.destroy(mine)
    assert failure(api.VM.get_record, mine)[0] == "HANDLE_INVALID"


def test_provision_only_on_templates_and_revert_only_on_snapshots(api, halted):
    assert failure(api.VM.provision, halted) == ["PROVISION_ONLY_ALLOWED_ON_TEMPLATE"]
    assert failure(api.VM.revert, halted) == ["REVERT_ONLY_ALLOWED_ON_SNAPSHOT"]


def test_snapshot_refuses_most_operations(api, halted):
    snap = api.VM.snapshot(halted, "snap", [])
    try:
        assert failure(api.VM.start, snap, False, False) == ["VM_IS_SNAPSHOT", snap, "start"]
        assert failure(api.VM.provision, snap) == ["VM_IS_SNAPSHOT", snap, "provision"]
    finally:
        remove(api, snap)


# ---------------------------------------------------- blocked_operations

def test_operation_blocked_comes_first(api, halted):
    api.VM.add_to_blocked_operations(halted, "start", "my reason")
    api.VM.add_to_blocked_operations(halted, "suspend", "no suspend")
    assert failure(api.VM.start, halted, False, False) == ["OPERATION_BLOCKED", halted, "my reason"]
    # Checked before the power state.
    assert failure(api.VM.suspend, halted) == ["OPERATION_BLOCKED", halted, "no suspend"]
    ops = api.VM.get_allowed_operations(halted)
    assert "start" not in ops and "clone" in ops
    api.VM.remove_from_blocked_operations(halted, "start")
    assert "start" in api.VM.get_allowed_operations(halted)
    api.VM.start(halted, False, False)
    assert api.VM.get_power_state(halted) == "Running"


# ----------------------------------------------------- control domain

def test_control_domain_refuses_guest_operations(api, dom0):
    for call, args in [(api.VM.clean_shutdown, (dom0,)), (api.VM.pause, (dom0,)), (api.VM.suspend, (dom0,)),
                       (api.VM.snapshot, (dom0, "s", [])), (api.VM.hard_reboot, (dom0,))]:
        e = failure(call, *args)
        assert e[0] == "OPERATION_NOT_ALLOWED" and len(e) == 2, (call, e)
    # The power state is checked first.
    assert failure(api.VM.destroy, dom0) == bad_power(dom0, "halted, suspended", "running")
    assert failure(api.VM.start, dom0, False, False) == bad_power(dom0, "halted", "running")
    assert api.VM.get_power_state(dom0) == "Running"


def test_control_domain_refusal_text(api, dom0):
    assert failure(api.VM.clean_shutdown, dom0) == \
        ["OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain"]
    assert failure(api.VM.snapshot, dom0, "s", []) == \
        ["OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain"]


def test_control_domain_changing_vcpus(api, dom0):
    assert failure(api.VM.assert_operation_valid, dom0, "changing_VCPUs") == \
        ["OPERATION_NOT_ALLOWED", "This operation is not allowed on dom0"]


def test_control_domain_power_state_reset(api, dom0):
    assert failure(api.VM.power_state_reset, dom0) == ["CANNOT_RESET_CONTROL_DOMAIN", dom0]
    assert api.VM.get_power_state(dom0) == "Running"


def test_control_domain_allowed_operations(api, dom0):
    # xapi 24.12 lists a fixed set of operations, without metadata_export
    # (xapi_vm_lifecycle.ml, update_allowed_operations).
    assert set(api.VM.get_allowed_operations(dom0)) == {"changing_dynamic_range", "changing_static_range"}


# ----------------------------------------------------- resources

def test_no_suspend_sr(api, live, host):
    pool = api.pool.get_all()[0]
    pool_sr = api.pool.get_suspend_image_SR(pool)
    host_sr = api.host.get_suspend_image_sr(host)
    api.pool.set_suspend_image_SR(pool, NULL)
    api.host.set_suspend_image_sr(host, NULL)
    try:
        assert api.VM.get_suspend_SR(live) == NULL
        assert failure(api.VM.suspend, live) == ["VM_NO_SUSPEND_SR", live]
        assert api.VM.get_power_state(live) == "Running"
        assert api.VM.get_current_operations(live) == {}
        # A per-VM suspend SR is enough.
        api.VM.set_suspend_SR(live, pool_sr)
        api.VM.suspend(live)
        assert api.VDI.get_SR(api.VM.get_suspend_VDI(live)) == pool_sr
    finally:
        api.pool.set_suspend_image_SR(pool, pool_sr)
        api.host.set_suspend_image_sr(host, host_sr)


def test_not_enough_free_memory(api, host):
    big = str(40 * GIB)     # the host has 32 GiB
    vm = api.VM.create(vm_ctor(name_label="too big", memory_static_max=big, memory_dynamic_max=big,
                               memory_dynamic_min=big, memory_static_min=str(GIB)))
    try:
        free0 = free_memory(api, host)
        for call, args in [(api.VM.start, (vm, False, False)), (api.VM.start_on, (vm, host, False, False)),
                           (api.VM.assert_can_boot_here, (vm, host))]:
            e = failure(call, *args)
            assert e[0] == "HOST_NOT_ENOUGH_FREE_MEMORY", (call, e)
            assert len(e) == 3
            needed, available = int(e[1]), int(e[2])
            assert needed >= 40 * GIB
            assert available < needed and available <= 32 * GIB
        rec = api.VM.get_record(vm)
        assert rec["power_state"] == "Halted" and rec["current_operations"] == {}
        assert free_memory(api, host) == free0
    finally:
        api.VM.destroy(vm)


def test_memory_setters_refuse_a_bad_order(api, halted):
    before = api.VM.get_record(halted)
    for call, args in [(api.VM.set_memory_limits, (halted, str(2 * GIB), str(GIB), str(GIB), str(GIB))),
                       (api.VM.set_memory_dynamic_range, (halted, str(512 * MIB), str(128 * MIB))),
                       (api.VM.set_memory_static_range, (halted, str(512 * MIB), str(128 * MIB)))]:
        with pytest.raises(XenAPI.Failure):
            call(*args)
    after = api.VM.get_record(halted)
    for k in ("memory_static_min", "memory_dynamic_min", "memory_dynamic_max", "memory_static_max"):
        assert after[k] == before[k]
    # Valid limits are stored.
    api.VM.set_memory_limits(halted, str(128 * MIB), str(512 * MIB), str(256 * MIB), str(512 * MIB))
    rec = api.VM.get_record(halted)
    assert (rec["memory_static_min"], rec["memory_dynamic_min"], rec["memory_dynamic_max"],
            rec["memory_static_max"]) == (str(128 * MIB), str(256 * MIB), str(512 * MIB), str(512 * MIB))


def test_memory_setters_order_error(api, halted):
    # static_min <= dynamic_min <= dynamic_max <= static_max, else ..._ORDER [] (xapi_vm_memory_constraints.ml).
    assert failure(api.VM.set_memory_limits, halted, str(2 * GIB), str(GIB), str(GIB), str(GIB)) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert failure(api.VM.set_memory_dynamic_range, halted, str(512 * MIB), str(128 * MIB)) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert failure(api.VM.set_memory_static_range, halted, str(512 * MIB), str(128 * MIB)) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]


def test_invalid_memory_constraints_refuse_to_boot(api, host):
    # VM.create does not validate; booting does (validate_basic_parameters).
    vm = api.VM.create(vm_ctor(name_label="bad memory", memory_static_min=str(2 * GIB),
                               memory_static_max=str(GIB), memory_dynamic_min=str(GIB),
                               memory_dynamic_max=str(GIB)))
    try:
        assert failure(api.VM.assert_can_boot_here, vm, host) == ["MEMORY_CONSTRAINT_VIOLATION"]
        assert failure(api.VM.start_on, vm, host, False, False) == ["MEMORY_CONSTRAINT_VIOLATION"]
        assert api.VM.get_power_state(vm) == "Halted"
    finally:
        api.VM.destroy(vm)


# ------------------------------------------------- allowed_operations
# xapi 24.12's update_allowed_operations checks a fixed list of operations that
# does not include metadata_export (the "every operation but an ignore list"
# form, which lists it, arrived in 24.14), so metadata_export is never listed.

HALTED_OPS = {"changing_dynamic_range", "changing_static_range", "changing_shadow_memory", "changing_NVRAM",
              "make_into_template", "start", "start_on", "clone", "copy", "destroy", "export", "migrate_send",
              "snapshot", "create_vtpm"}
RUNNING_OPS = {"snapshot", "checkpoint", "clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot",
               "pause", "suspend", "pool_migrate", "migrate_send", "changing_dynamic_range",
               "changing_VCPUs_live"}
PAUSED_OPS = {"unpause", "hard_shutdown", "hard_reboot", "checkpoint", "snapshot"}
SUSPENDED_OPS = {"resume", "resume_on", "hard_shutdown", "checkpoint", "destroy", "export", "migrate_send",
                 "snapshot"}
DEFAULT_TEMPLATE_OPS = {"changing_dynamic_range", "changing_static_range", "changing_shadow_memory",
                        "changing_NVRAM", "clone", "copy", "export", "provision"}


def test_allowed_operations_halted(api, halted):
    assert set(api.VM.get_allowed_operations(halted)) == HALTED_OPS


def test_allowed_operations_running_paused_suspended(api, live):
    wait_for(lambda: api.VM.get_current_operations(live) == {}, 5)
    assert set(api.VM.get_allowed_operations(live)) - {"snapshot_with_quiesce"} == RUNNING_OPS
    api.VM.pause(live)
    assert set(api.VM.get_allowed_operations(live)) == PAUSED_OPS
    api.VM.unpause(live)
    api.VM.suspend(live)
    assert set(api.VM.get_allowed_operations(live)) == SUSPENDED_OPS


def test_allowed_operations_running_exact(api, live):
    wait_for(lambda: api.VM.get_current_operations(live) == {}, 5)
    assert set(api.VM.get_allowed_operations(live)) == RUNNING_OPS


def test_allowed_operations_templates(api):
    t = template(api, ETCH)
    assert set(api.VM.get_allowed_operations(t)) - {"create_vtpm"} == DEFAULT_TEMPLATE_OPS
    mine = api.VM.clone(t, "ordinary template")
    try:
        assert set(api.VM.get_allowed_operations(mine)) - {"create_vtpm"} == \
            DEFAULT_TEMPLATE_OPS | {"destroy", "migrate_send"}
    finally:
        api.VM.destroy(mine)


def test_allowed_operations_templates_exact(api):
    t = template(api, ETCH)
    assert set(api.VM.get_allowed_operations(t)) == DEFAULT_TEMPLATE_OPS
    assert failure(api.VM.assert_operation_valid, t, "create_vtpm") == ["VM_IS_TEMPLATE", t, "create_vtpm"]


# -------------------------------------------- current_operations, concurrency

def test_current_operations_during_a_slow_start(api, halted):
    api.VM.add_to_other_config(halted, "sim:delay-start", "800")
    task = api.Async.VM.start(halted, False, False)
    ops = wait_for(lambda: api.VM.get_current_operations(halted), 5, "current_operations")
    assert ops == {task: "start"}
    # Nothing else may run alongside a start.
    assert api.VM.get_allowed_operations(halted) == []
    assert failure(api.VM.assert_operation_valid, halted, "clone") == \
        ["OTHER_OPERATION_IN_PROGRESS", "VM", halted, "start", task]
    rec = wait_task(api, task)
    assert rec["status"] == "success"
    assert api.VM.get_current_operations(halted) == {}
    assert set(api.VM.get_allowed_operations(halted)) - {"snapshot_with_quiesce"} == RUNNING_OPS
    api.task.destroy(task)


def test_conflicting_call_waits_for_the_running_one(api):
    # (knobs are set before the VM starts: the simulator reads them at boot)
    live = running(api, "slow reboot", tmpl=ETCH, other_config={"sim:delay-clean_reboot": "1000"})
    task = api.Async.VM.clean_reboot(live)
    wait_for(lambda: api.VM.get_current_operations(live), 5, "clean_reboot in flight")
    assert failure(api.VM.assert_operation_valid, live, "suspend") == \
        ["OTHER_OPERATION_IN_PROGRESS", "VM", live, "clean_reboot", task]
    t0 = time.time()
    api.VM.suspend(live)              # waits, as xapi retries OTHER_OPERATION_IN_PROGRESS
    waited = time.time() - t0
    assert api.task.get_status(task) == "success"
    assert waited > 0.3
    assert api.VM.get_power_state(live) == "Suspended"
    assert api.VM.get_current_operations(live) == {}
    api.task.destroy(task)
    remove(api, live)


def test_a_waiting_call_rechecks_the_power_state(api):
    live = running(api, "slow suspend", tmpl=ETCH, other_config={"sim:delay-suspend": "800"})
    task = api.Async.VM.suspend(live)
    wait_for(lambda: api.VM.get_current_operations(live), 5, "suspend in flight")
    # pause waits for the suspend, then finds the VM Suspended.
    t0 = time.time()
    assert failure(api.VM.pause, live) == bad_power(live, "running", "suspended")
    assert time.time() - t0 > 0.2
    assert wait_task(api, task)["status"] == "success"
    api.task.destroy(task)
    remove(api, live)


def test_hard_shutdown_runs_alongside_a_clean_shutdown(api):
    live = running(api, "deaf guest", tmpl=ETCH, other_config={"sim:clean-shutdown": "ignore"})
    task = api.Async.VM.clean_shutdown(live)
    wait_for(lambda: "clean_shutdown" in api.VM.get_current_operations(live).values(), 5, "clean_shutdown")
    t0 = time.time()
    api.VM.hard_shutdown(live)        # allowed concurrently; cancels the clean shutdown
    assert time.time() - t0 < 1.0
    assert api.VM.get_power_state(live) == "Halted"
    # xapi's hard_shutdown cancels the in-progress clean_shutdown task.
    rec = wait_task(api, task)
    assert rec["status"] == "cancelled"
    assert rec["error_info"] == ["TASK_CANCELLED", task]
    wait_for(lambda: api.VM.get_current_operations(live) == {}, 5)
    api.task.destroy(task)
    remove(api, live)


# --------------------------------------- clone / copy / snapshot / checkpoint / revert

def disks(api, vm):
    return sorted(api.VBD.get_VDI(v) for v in api.VM.get_VBDs(vm) if api.VBD.get_type(v) == "Disk")


def test_clone_of_a_template(api):
    t = template(api, OTHER)
    t_rec = api.VM.get_record(t)
    c = api.VM.clone(t, "clone of template")
    try:
        rec = api.VM.get_record(c)
        assert rec["is_a_template"] is True
        assert rec["is_default_template"] is False
        assert rec["is_a_snapshot"] is False and rec["snapshot_of"] == NULL
        assert rec["power_state"] == "Halted"
        assert "default_template" not in rec["other_config"]
        assert rec["other_config"]["base_template_name"] == OTHER
        assert rec["other_config"].get("mac_seed")
        assert rec["other_config"].get("mac_seed") != t_rec["other_config"].get("mac_seed")
        assert rec["other_config"]["disks"] == t_rec["other_config"]["disks"]
        assert rec["blocked_operations"] == {}
        assert rec["uuid"] != t_rec["uuid"]
        assert rec["memory_static_max"] == t_rec["memory_static_max"]
    finally:
        api.VM.destroy(c)


def test_clone_and_copy_duplicate_disks(api, halted):
    pool = api.pool.get_all()[0]
    sr = api.pool.get_default_SR(pool)
    add_vif(api, halted)
    api.VM.add_to_blocked_operations(halted, "destroy", "keep")
    (src_vdi,) = disks(api, halted)
    seed = api.VM.get_other_config(halted)["mac_seed"]
    for kind in ("clone", "copy"):
        new = api.VM.clone(halted, "a clone") if kind == "clone" else api.VM.copy(halted, "a copy", sr)
        try:
            rec = api.VM.get_record(new)
            assert rec["is_a_template"] is False and rec["power_state"] == "Halted"
            assert rec["blocked_operations"] == {}
            assert rec["other_config"]["mac_seed"] != seed
            (vdi,) = disks(api, new)
            assert vdi != src_vdi, "%s shares the source's disk" % kind
            assert api.VDI.get_SR(vdi) == sr
            assert api.VDI.get_virtual_size(vdi) == api.VDI.get_virtual_size(src_vdi)
            (vif,) = rec["VIFs"]
            assert vif not in api.VM.get_VIFs(halted)
            assert api.VIF.get_MAC(vif) != api.VIF.get_MAC(api.VM.get_VIFs(halted)[0])
        finally:
            remove(api, new)
    assert disks(api, halted) == [src_vdi]
    api.VM.remove_from_blocked_operations(halted, "destroy")


def test_snapshot_semantics(api, live):
    (vdi,) = disks(api, live)
    t0 = time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    snap = api.VM.snapshot(live, "snap 1", [])
    try:
        rec = api.VM.get_record(snap)
        assert rec["is_a_snapshot"] is True
        assert rec["is_a_template"] is True
        assert rec["snapshot_of"] == live
        assert snap in api.VM.get_snapshots(live)
        st = rec["snapshot_time"].value if hasattr(rec["snapshot_time"], "value") else str(rec["snapshot_time"])
        assert st >= t0
        assert rec["power_state"] == "Halted"        # a disk-only snapshot
        (svdi,) = disks(api, snap)
        assert svdi != vdi
        assert api.VDI.get_is_a_snapshot(svdi) is True
        assert api.VDI.get_snapshot_of(svdi) == vdi
        assert api.VM.get_power_state(live) == "Running"
    finally:
        remove(api, snap)


def test_clone_of_a_snapshot_is_a_template(api, halted):
    snap = api.VM.snapshot(halted, "snap", [])
    c = api.VM.clone(snap, "from snapshot")
    try:
        crec = api.VM.get_record(c)
        assert crec["is_a_snapshot"] is False and crec["snapshot_of"] == NULL
        assert crec["is_a_template"] is True
    finally:
        remove(api, c)
        remove(api, snap)


def test_checkpoint_and_revert(api, live):
    cp = api.VM.checkpoint(live, "cp 1")
    try:
        rec = api.VM.get_record(cp)
        assert rec["is_a_snapshot"] is True and rec["snapshot_of"] == live
        assert rec["power_state"] == "Suspended"
        assert rec["suspend_VDI"] != NULL
        assert api.VDI.get_type(rec["suspend_VDI"]) == "suspend"
        assert api.VM.get_power_state(live) == "Running"
        api.VM.hard_shutdown(live)
        api.VM.revert(cp)
        vrec = api.VM.get_record(live)
        assert vrec["power_state"] == "Suspended"
        assert vrec["suspend_VDI"] not in (NULL, rec["suspend_VDI"])
        assert vrec["parent"] == cp
        api.VM.resume(live, False, False)
        assert api.VM.get_power_state(live) == "Running"
    finally:
        remove(api, cp)


def test_revert_a_disk_snapshot(api, halted):
    (vdi,) = disks(api, halted)
    api.VM.set_name_label(halted, "before")
    snap = api.VM.snapshot(halted, "s", [])
    try:
        api.VM.set_name_label(halted, "after")
        api.VM.revert(snap)
        rec = api.VM.get_record(halted)
        assert rec["power_state"] == "Halted"
        assert rec["is_a_snapshot"] is False and rec["is_a_template"] is False
        assert rec["parent"] == snap
        (new_vdi,) = disks(api, halted)
        assert new_vdi != vdi
        assert failure(api.VDI.get_record, vdi)[0] == "HANDLE_INVALID"
    finally:
        remove(api, snap)


def test_revert_repoints_snapshot_of(api, halted):
    snap = api.VM.snapshot(halted, "s", [])
    try:
        api.VM.revert(snap)
        (new_vdi,) = disks(api, halted)
        (svdi,) = disks(api, snap)
        assert api.VDI.get_snapshot_of(svdi) == new_vdi
    finally:
        remove(api, snap)


def test_revert_restores_fields(api, halted):
    api.VM.set_name_label(halted, "before")
    api.VM.set_VCPUs_max(halted, "2")
    snap = api.VM.snapshot(halted, "s", [])
    try:
        api.VM.set_name_label(halted, "after")
        api.VM.set_VCPUs_max(halted, "3")
        api.VM.revert(snap)
        rec = api.VM.get_record(halted)
        assert rec["name_label"] == "before"
        assert rec["VCPUs_max"] == "2"
    finally:
        remove(api, snap)


# ------------------------------------------------------------ destroy

def test_destroy_removes_devices_and_metrics_but_keeps_disks(api):
    vm = running(api, "to destroy", tmpl=ETCH, vif=True)
    wait_for(lambda: api.VM.get_guest_metrics(vm) != NULL, 10)
    api.VM.hard_shutdown(vm)
    rec = api.VM.get_record(vm)
    (vbd,) = rec["VBDs"]
    (vif,) = rec["VIFs"]
    vdi = api.VBD.get_VDI(vbd)
    api.VBD.add_to_other_config(vbd, "is_owner", "true")
    api.VM.destroy(vm)
    assert failure(api.VM.get_record, vm)[0] == "HANDLE_INVALID"
    assert failure(api.VBD.get_record, vbd)[0] == "HANDLE_INVALID"
    assert failure(api.VIF.get_record, vif)[0] == "HANDLE_INVALID"
    assert failure(api.VM_metrics.get_record, rec["metrics"])[0] == "HANDLE_INVALID"
    # VM.destroy never deletes disks (xapi_vm_helpers.ml, destroy), owned or not.
    assert api.VDI.get_VBDs(vdi) == []
    api.VDI.destroy(vdi)


def test_destroy_a_suspended_vm(api, live):
    api.VM.suspend(live)
    api.VM.destroy(live)
    assert failure(api.VM.get_record, live)[0] == "HANDLE_INVALID"


# ------------------------------------------------------------ devices

def test_allowed_vbd_devices(api, halted):
    (vbd,) = api.VM.get_VBDs(halted)
    assert api.VBD.get_userdevice(vbd) == "0"
    assert api.VM.get_allowed_VBD_devices(halted) == [str(i) for i in range(1, 255)]
    bare = api.VM.create(vm_ctor(name_label="no disks"))
    try:
        assert api.VM.get_allowed_VBD_devices(bare) == [str(i) for i in range(0, 255)]
    finally:
        api.VM.destroy(bare)


def test_allowed_vif_devices(api, halted):
    add_vif(api, halted, device="0")
    add_vif(api, halted, device="2")
    devs = api.VM.get_allowed_VIF_devices(halted)
    assert "0" not in devs and "2" not in devs
    assert devs[:3] == ["1", "3", "4"]


def test_allowed_vif_devices_go_up_to_6(api, halted):
    # xapi 24.12 allows VIF devices 0-6 for PV and HVM guests alike
    # (xapi_vm_helpers.ml, allowed_VIF_devices_*); the limit became 15 only in
    # 25.29 (commit 947e4965be).
    add_vif(api, halted, device="0")
    assert api.VM.get_allowed_VIF_devices(halted) == [str(i) for i in range(1, 7)]


# ------------------------------------------------------------ VCPUs

def test_vcpu_setters(api, halted):
    api.VM.set_VCPUs_max(halted, "4")
    api.VM.set_VCPUs_at_startup(halted, "3")
    rec = api.VM.get_record(halted)
    assert (rec["VCPUs_max"], rec["VCPUs_at_startup"]) == ("4", "3")
    for call, v in [(api.VM.set_VCPUs_max, "2"), (api.VM.set_VCPUs_max, "0"),
                    (api.VM.set_VCPUs_at_startup, "5"), (api.VM.set_VCPUs_at_startup, "0")]:
        with pytest.raises(XenAPI.Failure):
            call(halted, v)
    rec = api.VM.get_record(halted)
    assert (rec["VCPUs_max"], rec["VCPUs_at_startup"]) == ("4", "3")
    api.VM.start(halted, False, False)
    m = api.VM_metrics.get_record(api.VM.get_metrics(halted))
    assert m["VCPUs_number"] == "3"


def test_vcpu_setter_errors(api, halted):
    api.VM.set_VCPUs_max(halted, "4")
    api.VM.set_VCPUs_at_startup(halted, "3")
    msg = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"
    assert failure(api.VM.set_VCPUs_max, halted, "2") == ["INVALID_VALUE", msg, "2"]
    assert failure(api.VM.set_VCPUs_max, halted, "0") == ["INVALID_VALUE", msg, "0"]
    assert failure(api.VM.set_VCPUs_at_startup, halted, "5") == ["INVALID_VALUE", msg, "5"]
    assert failure(api.VM.set_VCPUs_at_startup, halted, "0") == ["INVALID_VALUE", msg, "0"]


def test_vcpus_at_startup_above_max_refuses_to_boot(api, host):
    vm = api.VM.create(vm_ctor(name_label="bad vcpus", VCPUs_max="1", VCPUs_at_startup="2"))
    try:
        assert failure(api.VM.assert_can_boot_here, vm, host) == \
            ["VALUE_NOT_SUPPORTED", "VCPUs-at-startup", "2", "value greater than VCPUs-max"]
    finally:
        api.VM.destroy(vm)


# ------------------------------------------------------ power_state_reset

def test_power_state_reset_of_a_running_vm(api, live):
    # A domain that is really running is not forgotten (xapi_vm.ml power_state_reset).
    assert failure(api.VM.power_state_reset, live) == ["DOMAIN_EXISTS", live]
    assert api.VM.get_power_state(live) == "Running"


def test_power_state_reset_of_a_suspended_vm(api, live, host):
    api.VM.suspend(live)
    api.VM.power_state_reset(live)
    rec = api.VM.get_record(live)
    assert rec["power_state"] == "Halted"
    assert rec["resident_on"] == NULL and rec["domid"] == "-1"
    api.VM.start(live, False, False)
    assert api.VM.get_power_state(live) == "Running"


# --------------------------------------------- guest-initiated halts and crashes

def test_guest_halt_with_destroy(api):
    vm = install(api, "halts itself", tmpl=ETCH, other_config={"sim:halt-after-ms": "300"})
    try:
        api.VM.set_actions_after_shutdown(vm, "destroy")
        api.VM.start(vm, False, False)
        wait_for(lambda: api.VM.get_power_state(vm) == "Halted", 5, "guest halt")
        rec = api.VM.get_record(vm)
        assert rec["resident_on"] == NULL and rec["domid"] == "-1"
        assert rec["current_operations"] == {}
        assert "start" in rec["allowed_operations"]
    finally:
        remove(api, vm)


def test_guest_halt_with_restart(api):
    vm = install(api, "reboots itself", tmpl=ETCH, other_config={"sim:halt-after-ms": "300"})
    try:
        api.VM.set_actions_after_shutdown(vm, "restart")
        api.VM.start(vm, False, False)
        d0 = api.VM.get_domid(vm)
        wait_for(lambda: api.VM.get_domid(vm) not in (d0, "-1"), 5, "a new domain")
        assert api.VM.get_power_state(vm) == "Running"
    finally:
        remove(api, vm)


def test_guest_crash_with_destroy_and_restart(api):
    vm = install(api, "crashes", tmpl=ETCH, other_config={"sim:crash-after-ms": "300"})
    try:
        api.VM.set_actions_after_crash(vm, "destroy")
        api.VM.start(vm, False, False)
        wait_for(lambda: api.VM.get_power_state(vm) == "Halted", 5, "crash -> destroy")
        api.VM.set_actions_after_crash(vm, "restart")
        api.VM.start(vm, False, False)
        d0 = api.VM.get_domid(vm)
        wait_for(lambda: api.VM.get_domid(vm) not in (d0, "-1"), 5, "crash -> restart")
        assert api.VM.get_power_state(vm) == "Running"
    finally:
        remove(api, vm)


# ------------------------------------------------------- injected failures

def test_injected_start_failure(api, halted, host):
    api.VM.add_to_other_config(halted, "sim:fail-start", "NO_HOSTS_AVAILABLE")
    free0 = free_memory(api, host)
    assert failure(api.VM.start, halted, False, False) == ["NO_HOSTS_AVAILABLE"]
    rec = api.VM.get_record(halted)
    assert rec["power_state"] == "Halted"
    assert rec["resident_on"] == NULL and rec["domid"] == "-1"
    assert rec["current_operations"] == {}
    assert "start" in rec["allowed_operations"]
    assert free_memory(api, host) == free0
    # The same through a task.
    task = api.Async.VM.start(halted, False, False)
    trec = wait_task(api, task)
    assert trec["status"] == "failure" and trec["error_info"] == ["NO_HOSTS_AVAILABLE"]
    api.task.destroy(task)
    api.VM.remove_from_other_config(halted, "sim:fail-start")
    api.VM.start(halted, False, False)
    assert api.VM.get_power_state(halted) == "Running"


def test_injected_failure_with_parameters(api):
    live = running(api, "failing suspend", tmpl=ETCH,
                   other_config={"sim:fail-suspend": "SR_BACKEND_FAILURE_44,,not enough space"})
    assert failure(api.VM.suspend, live) == ["SR_BACKEND_FAILURE_44", "", "not enough space"]
    rec = api.VM.get_record(live)
    assert rec["power_state"] == "Running" and rec["suspend_VDI"] == NULL
    assert rec["current_operations"] == {}
    remove(api, live)

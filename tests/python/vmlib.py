"""Helpers shared by the VM-lifecycle suites (test_guide_ch3/ch4, test_vm_ops,
test_host_pool): installing a VM the guide's way, waiting, task polling and
cleanup. Plain functions over a XenAPI `session.xenapi` proxy."""

import time

import XenAPI

NULL = "OpaqueRef:NULL"
GIB = 1 << 30
MIB = 1 << 20


def wait_for(fn, timeout=10.0, what="condition", interval=0.05):
    """Poll fn() until it returns something truthy (which is returned)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def template(api, name):
    """The guide's lookup: scan VM.get_all_records for a template by name."""
    found = [r for r, v in api.VM.get_all_records().items() if v["is_a_template"] and v["name_label"] == name]
    assert len(found) == 1, (name, found)
    return found[0]


def xenbr0(api):
    (ref,) = [r for r, n in api.network.get_all_records().items() if n["bridge"] == "xenbr0"]
    return ref


def add_vif(api, vm, device="0", network=None):
    return api.VIF.create({"device": device, "network": network or xenbr0(api), "VM": vm, "MAC": "",
                           "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                           "qos_algorithm_params": {}})


def install(api, name, tmpl="Other install media", other_config=None, vif=False, provision=True):
    """clone + provision (the guide's install), plus optional sim knobs and a NIC."""
    vm = api.VM.clone(template(api, tmpl), name)
    if provision:
        api.VM.provision(vm)
    for k, v in (other_config or {}).items():
        api.VM.add_to_other_config(vm, k, v)
    if vif:
        add_vif(api, vm)
    return vm


def running(api, name, **kw):
    vm = install(api, name, **kw)
    api.VM.start(vm, False, False)
    return vm


def remove(api, vm):
    """Best-effort teardown: power off, destroy the VM and the disks it owns."""
    try:
        ps = api.VM.get_power_state(vm)
    except XenAPI.Failure:
        return
    try:
        if ps != "Halted":
            api.VM.hard_shutdown(vm)
    except XenAPI.Failure:
        try:
            api.VM.power_state_reset(vm)
        except XenAPI.Failure:
            pass
    vdis = []
    try:
        for vbd in api.VM.get_VBDs(vm):
            vdi = api.VBD.get_VDI(vbd)
            if vdi != NULL:
                vdis.append(vdi)
        api.VM.destroy(vm)
    except XenAPI.Failure:
        pass
    for vdi in vdis:
        try:
            api.VDI.destroy(vdi)
        except XenAPI.Failure:
            pass


def wait_task(api, task, timeout=20.0):
    """The guide's loop: poll task.get_status while pending; return the record."""
    wait_for(lambda: api.task.get_status(task) != "pending", timeout, "task %s" % task, interval=0.02)
    return api.task.get_record(task)


def host_of(api):
    return api.host.get_all()[0]


def free_memory(api, host=None):
    host = host or host_of(api)
    # host_metrics.get_memory_free is a removed message (MESSAGE_REMOVED); the
    # field is still in the record, which is what XO and XenCenter read.
    return int(api.host_metrics.get_record(api.host.get_metrics(host))["memory_free"])

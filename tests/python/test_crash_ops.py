"""Operations are crash-safe: xapid killed with -9 in the middle of a VM start,
a clean shutdown, a VBD plug or an export comes back with no operation left
in any current_operations, and the objects are usable at once (no call waits
out the conflict timeout behind an operation whose process is gone)."""

import socket
import time

import pytest
import XenAPI

from conftest import Xapid
from vmlib import GIB, MIB, install, wait_for

# A stale operation would make the next call wait this long (lifecycle's
# CONFLICT_WAIT) before failing; a clean restart answers far sooner.
PROMPT = 5.0


@pytest.fixture()
def servers():
    first = Xapid().start()
    held = [first]
    yield held
    for s in reversed(held):
        s.stop()
    first.cleanup()


def restart_killed(held):
    old = held[-1]
    old.kill9()
    new = Xapid(data_dir=old.data_dir).start()
    held.append(new)
    return new.session().xenapi


def ops_left(api):
    """Every object of the classes with operations that still lists one."""
    left = []
    for cls in ("VM", "VBD", "VDI", "SR", "VIF", "host", "pool", "network", "PIF"):
        for ref, rec in getattr(api, cls).get_all_records().items():
            if rec.get("current_operations"):
                left.append((cls, ref, rec["current_operations"]))
    return left


def timed(fn, *args):
    t = time.time()
    out = fn(*args)
    assert time.time() - t < PROMPT, "call waited %.1fs" % (time.time() - t)
    return out


def wait_agent(api, vm):
    """Hot-plug needs the guest's PV drivers, which its agent reports."""
    wait_for(lambda: api.VM.get_guest_metrics(vm) != "OpaqueRef:NULL", 10, "guest agent")


def wait_op(api, cls, ref, op):
    wait_for(lambda: op in getattr(api, cls).get_current_operations(ref).values(), 10, "%s in progress" % op)


def test_kill_during_vm_start(servers):
    api = servers[0].session().xenapi
    vm = install(api, "crash-start", other_config={"sim:delay-start": "30000"})
    api.Async.VM.start(vm, False, False)
    wait_op(api, "VM", vm, "start")
    api = restart_killed(servers)
    assert ops_left(api) == []
    assert api.VM.get_power_state(vm) == "Halted"
    assert "start" in api.VM.get_allowed_operations(vm)
    api.VM.remove_from_other_config(vm, "sim:delay-start")
    timed(api.VM.start, vm, False, False)
    assert api.VM.get_power_state(vm) == "Running"


def test_kill_during_clean_shutdown(servers):
    api = servers[0].session().xenapi
    vm = install(api, "crash-shutdown", other_config={"sim:delay-clean_shutdown": "30000"})
    api.VM.start(vm, False, False)
    api.Async.VM.clean_shutdown(vm)
    wait_op(api, "VM", vm, "clean_shutdown")
    api = restart_killed(servers)
    assert ops_left(api) == []
    # The guest outlived the toolstack (the simulator re-creates the domains
    # of Running VMs at start, as a real host's guests keep running).
    assert api.VM.get_power_state(vm) == "Running"
    assert "clean_shutdown" in api.VM.get_allowed_operations(vm)
    timed(api.VM.hard_shutdown, vm)
    api.VM.remove_from_other_config(vm, "sim:delay-clean_shutdown")
    timed(api.VM.start, vm, False, False)
    timed(api.VM.clean_shutdown, vm)


def test_kill_during_vbd_plug(servers):
    api = servers[0].session().xenapi
    vm = install(api, "crash-plug", other_config={"sim:delay-plug_disk": "30000"})
    api.VM.start(vm, False, False)
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    vdi = api.VDI.create({"name_label": "hot", "SR": sr, "virtual_size": str(64 * MIB), "type": "user",
                          "sharable": False, "read_only": False, "other_config": {}})
    vbd = api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "3", "bootable": False, "mode": "RW",
                          "type": "Disk", "unpluggable": True, "empty": False, "other_config": {},
                          "qos_algorithm_type": "", "qos_algorithm_params": {}})
    wait_agent(api, vm)
    api.Async.VBD.plug(vbd)
    wait_op(api, "VBD", vbd, "plug")
    api = restart_killed(servers)
    assert ops_left(api) == []
    # The re-adopted domain was built from the VM's devices, this disk
    # included; the record says what the domain has.
    timed(api.VM.hard_shutdown, vm)
    api.VM.remove_from_other_config(vm, "sim:delay-plug_disk")
    timed(api.VM.start, vm, False, False)
    wait_agent(api, vm)
    timed(api.VBD.unplug, vbd)
    assert api.VBD.get_currently_attached(vbd) is False
    timed(api.VBD.plug, vbd)
    assert api.VBD.get_currently_attached(vbd) is True
    timed(api.VDI.destroy, api.VDI.clone(vdi, {}))


def test_kill_during_export(servers):
    x = servers[0]
    s = x.session()
    api = s.xenapi
    vm = install(api, "crash-export")
    # A disk larger than the socket buffers of a client that reads nothing.
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    vdi = api.VDI.create({"name_label": "big", "SR": sr, "virtual_size": str(GIB), "type": "user",
                          "sharable": False, "read_only": False, "other_config": {}})
    api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False, "mode": "RW", "type": "Disk",
                    "unpluggable": False, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                    "qos_algorithm_params": {}})
    chunk = b"\x5a" * MIB
    with socket.create_connection(("127.0.0.1", x.port)) as c:
        c.sendall(("PUT /import_raw_vdi?session_id=%s&vdi=%s HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
                   % (s._session, vdi, 64 * MIB)).encode())
        for _ in range(64):
            c.sendall(chunk)
        c.settimeout(30)
        assert c.recv(100).startswith(b"HTTP/1.")
    wait_for(lambda: not api.VDI.get_current_operations(vdi), 30, "import done")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", x.port))
    stalled.sendall(("GET /export?session_id=%s&uuid=%s HTTP/1.0\r\n\r\n"
                     % (s._session, api.VM.get_uuid(vm))).encode())
    wait_op(api, "VM", vm, "export")
    api = restart_killed(servers)
    stalled.close()
    assert ops_left(api) == []
    timed(api.VM.start, vm, False, False)
    timed(api.VM.hard_shutdown, vm)
    try:
        timed(api.VM.destroy, vm)
    except XenAPI.Failure as e:
        pytest.fail("VM not usable after restart: %s" % e.details)

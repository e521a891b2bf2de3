"""What domains do on their own reaches the VM records (the xenops service's
event loop), and a restarted server re-attaches to the domains that outlived
it: a dead hypervisor process halts the VM or restarts it per
actions_after_crash, a domain that pauses by itself shows Paused, and a
domain that died while the server was down leaves the VM Halted, never
Running."""

import pytest

from conftest import Xapid
from vmlib import install, remove, wait_for


@pytest.fixture()
def x():
    s = Xapid().start()
    yield s
    s.cleanup()


def test_dead_process_halts_or_restarts(x):
    api = x.session().xenapi
    vm = install(api, "dies", other_config={"sim:die-after-ms": "600"})
    api.VM.set_actions_after_crash(vm, "destroy")
    api.VM.start(vm, False, False)
    wait_for(lambda: api.VM.get_power_state(vm) == "Halted", 10, "halted after the process died")
    assert "hypervisor process died" in open(x.log_path).read()
    api.VM.set_actions_after_crash(vm, "restart")
    api.VM.start(vm, False, False)
    domid = api.VM.get_domid(vm)
    wait_for(lambda: api.VM.get_domid(vm) != domid, 10, "restarted with a new domain")
    assert api.VM.get_power_state(vm) == "Running"
    api.VM.remove_from_other_config(vm, "sim:die-after-ms")
    remove(api, vm)


def test_domain_pausing_by_itself_shows_paused(x):
    api = x.session().xenapi
    vm = install(api, "pauses", other_config={"sim:pause-after-ms": "600"})
    api.VM.start(vm, False, False)
    wait_for(lambda: api.VM.get_power_state(vm) == "Paused", 10, "paused by the domain")
    api.VM.unpause(vm)
    assert api.VM.get_power_state(vm) == "Running"
    remove(api, vm)


def test_domain_gone_after_restart_is_halted(x):
    api = x.session().xenapi
    kept = install(api, "kept")
    gone = install(api, "gone", other_config={"sim:adopt": "gone"})
    for vm in (kept, gone):
        api.VM.start(vm, False, False)
    x.kill9()
    x.start()
    api = x.session().xenapi
    wait_for(lambda: api.VM.get_power_state(gone) == "Halted", 10, "gone VM halted")
    assert api.VM.get_power_state(kept) == "Running"
    assert api.VM.get_resident_on(gone) == "OpaqueRef:NULL"
    assert "domain is gone" in open(x.log_path).read()

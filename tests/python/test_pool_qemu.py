"""Live migration of a real guest between two `xapid --backend qemu` hosts
of a pool (each in its own network namespace, poollab.py), over a shared
"file" SR: a directory both hosts reach.

The guest is the test guest (scripts/build-test-guest.sh) booted directly;
its disk is on the shared SR. VM.pool_migrate moves it while it runs: the
guest does not boot again (its uptime goes on and its shell keeps what it
was given), the disk stays writable, and no QEMU is left on the source.
Without QEMU or the guest the module is skipped, unless CI is set: then it
fails."""

import os
import re
import shutil
import signal
import tempfile
import time

import pytest

from poollab import lab
from test_cbt import changed
from test_pool import addresses, bounded, host_by_address, join
from test_qemu import BANNER, BOOT, guest_dir, guest_vm, qemu_pids, require, serial, type_line
from vmlib import wait_for


@pytest.fixture(scope="module")
def setup():
    require(shutil.which("qemu-system-x86_64"), "qemu-system-x86_64 not found")
    src = guest_dir()
    require(os.path.isfile(os.path.join(src, "vmlinuz")) and os.path.isfile(os.path.join(src, "initrd.img")),
            "no test guest in %s (scripts/build-test-guest.sh)" % src)
    kernels = tempfile.mkdtemp(prefix="xapi-guest-")
    shared = tempfile.mkdtemp(prefix="xapi-shared-sr-")
    for f in ("vmlinuz", "initrd.img"):
        shutil.copy(os.path.join(src, f), os.path.join(kernels, f))
    args = ["--backend", "qemu", "--guest-kernel-dir", kernels, "--nics", "eth0", "--sr-root", shared]
    try:
        with lab(2, extra_args=args) as l:
            try:
                yield l, kernels, shared
            finally:
                for h in l.hosts:
                    h.cleanup()
                    for pid in qemu_pids(h):
                        os.kill(pid, signal.SIGKILL)
    finally:
        shutil.rmtree(kernels, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)


def uptime(host, api, vm, tag):
    """The guest's uptime in whole seconds, asked on its serial console (of
    the host it runs on) with a marker of our own."""
    pat = re.compile(r"%s=(\d+)=" % tag)
    def read():
        m = pat.search(serial(host, api, vm))
        return int(m.group(1)) if m else None
    for attempt in range(5):
        type_line(host, api, vm, "echo %s=$(cut -d. -f1 /proc/uptime)=" % tag, reset=attempt > 0)
        try:
            return wait_for(read, 20, "the guest's answer on its console", interval=0.5)
        except AssertionError:
            continue
    raise AssertionError("no answer from the guest's shell on %s:\n%s" % (host.name, serial(host, api, vm)[-3000:]))


def test_live_migration_of_a_real_guest(setup):
    l, kernels, shared = setup
    master, member = l.hosts
    api = join(member, master).xenapi
    hosts = {a: host_by_address(api, a) for a in addresses(api)}
    sr = api.SR.create(hosts[master.address], {"location": shared}, "0", "shared", "", "file", "user", True, {})
    (pool,) = api.pool.get_all()
    api.pool.set_default_SR(pool, sr)
    vm = guest_vm(api, kernels, "live traveller")
    disks = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"]
    assert disks and all(api.VDI.get_SR(d) == sr for d in disks)

    api.VDI.enable_cbt(disks[0])
    bounded(api.VM.start_on, vm, hosts[master.address], False, False, timeout=120)
    wait_for(lambda: BANNER in serial(master, api, vm), BOOT, "the guest's banner", interval=0.5)
    # Changed blocks across the move: one written on each host.
    first = bounded(api.VDI.snapshot, disks[0], {}, timeout=120)
    type_line(master, api, vm, "printf x | dd of=/dev/vda bs=65536 seek=20 conv=fsync 2>/dev/null && echo W20-$((6*7))")
    wait_for(lambda: "W20-42" in serial(master, api, vm), 30, "a write to block 20 before the move")
    # Something only this boot of the guest knows.
    type_line(master, api, vm, "export MARK=kept-$((6*7))", reset=True)
    before = uptime(master, api, vm, "UPA")
    started = api.VM_metrics.get_start_time(api.VM.get_metrics(vm))
    (src_pid,) = qemu_pids(master)

    t0 = time.time()
    bounded(api.VM.pool_migrate, vm, hosts[member.address], {"live": "true"}, timeout=300)
    took = time.time() - t0
    assert api.VM.get_resident_on(vm) == hosts[member.address]
    assert api.VM.get_power_state(vm) == "Running"
    assert api.VM_metrics.get_start_time(api.VM.get_metrics(vm)) == started
    # The source's QEMU is gone; the member runs the guest.
    wait_for(lambda: qemu_pids(master) == [], 30, "the source's QEMU to end")
    assert len(qemu_pids(member)) == 1
    after = uptime(member, api, vm, "UPB")
    assert after >= before + int(took) - 1, (before, after, took)
    # Not booted again: no banner on the new console, and the shell still
    # holds what it was given before the move.
    assert BANNER not in serial(member, api, vm)
    type_line(member, api, vm, "echo MARK=$MARK=")
    wait_for(lambda: "MARK=kept-42=" in serial(member, api, vm), 30, "the shell's variable after the move")
    # The disk on the shared SR is the destination's now: it takes writes.
    type_line(member, api, vm, "dd if=/dev/zero of=/dev/vda bs=4k count=1 conv=fsync && echo DD-DONE")
    wait_for(lambda: "DD-DONE" in serial(member, api, vm), 30, "a write to the disk after the move")
    # A snapshot of that disk asked of the master runs where the guest runs:
    # its QEMU copies the disk at one instant.
    snap = bounded(api.VDI.snapshot, disks[0], {}, timeout=120)
    with open(member.log_path, errors="replace") as f:
        assert "copying a disk in use through its domain" in f.read()
    # The source handed its writes over as it let the guest go; the
    # destination's bitmap has the one after: exactly those two blocks.
    assert changed(api.VDI.list_changed_blocks(first, snap)) == {0, 20}
    api.VDI.destroy(snap)
    api.VDI.destroy(first)

    # And back to the master.
    bounded(api.VM.pool_migrate, vm, hosts[master.address], {}, timeout=300)
    assert api.VM.get_resident_on(vm) == hosts[master.address]
    wait_for(lambda: qemu_pids(member) == [], 30, "the member's QEMU to end")
    assert uptime(master, api, vm, "UPC") >= after
    bounded(api.VM.hard_shutdown, vm, timeout=60)
    assert api.VM.get_power_state(vm) == "Halted"
    assert qemu_pids(master) == [] and qemu_pids(member) == []

"""What a real guest of `xapid --backend qemu` carries in and out: its disks
through an XVA export and import and through Xen Orchestra's delta backups
and restore, and its screen through the console proxy.

The test guest (scripts/build-test-guest.sh) boots under TCG; at most two run
at once. Commands run in the guests through their serial console's root
shell. Without QEMU or the guest the module is skipped, unless CI is set:
then it fails."""

import json
import os
import pty
import select
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request
import xmlrpc.client

import pytest

from conftest import PASSWORD, ROOT, Xapid, failure, halt_guests, netns, require_tool
from test_cbt import changed
from test_qemu import (BANNER, BOOT, guest_value, guest_vm, kernels, qemu_pids, require, serial,  # noqa: F401
                       type_line, vm_dir)
from vmlib import NULL, wait_for

MARKER = "xva-round-trip-4242"
NODE_DIR = os.path.join(ROOT, "tests", "node")
VHD_BLOCK = 2 << 20
OVMF = "/usr/share/ovmf/OVMF.fd"


@pytest.fixture(scope="module")
def xapid(kernels):
    with netns("xrsio") as ns:
        x = Xapid(netns=ns, extra_args=["--backend", "qemu", "--guest-kernel-dir", kernels, "--nics", "eth0"]).start()
        yield x
        x.cleanup()
        for pid in qemu_pids(x):
            os.kill(pid, 9)


@pytest.fixture(scope="module")
def session(xapid):
    return xapid.session()


@pytest.fixture(autouse=True)
def no_guest_outlives_its_test(session):
    yield
    halt_guests(session.xenapi)


def shell(x, api, vm, cmd, want, timeout=BOOT):
    """Type `cmd` into the guest's shell until its output holds `want`
    (typed characters can be lost under load: each try starts afresh)."""
    def once():
        type_line(x, api, vm, cmd, reset=True)
        return want in serial(x, api, vm)
    try:
        wait_for(once, timeout, "%r in the guest's output" % want, interval=1)
    except AssertionError as e:
        raise AssertionError("%s; serial console:\n%s" % (e, serial(x, api, vm)[-3000:]))


def disk_device(api, vm):
    disk = next(b for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk")
    return "/dev/vd" + "abcdefgh"[int(api.VBD.get_userdevice(disk))]


def read_marker(x, api, vm):
    # The shell's output is "got-<marker>-end"; the echoed command line is not.
    n = len(MARKER)
    shell(x, api, vm, "echo got-$(head -c %d %s)-end" % (n, disk_device(api, vm)), "got-%s-end" % MARKER)


def agent_answers(api, vm):
    def gm():
        g = api.VM.get_guest_metrics(vm)
        return g != NULL and api.VM_guest_metrics.get_os_version(g).get("distro") == "xapi-rs-test-guest"
    wait_for(gm, 120, "the guest agent's report", interval=0.5)


def test_xva_round_trip_of_a_real_guest(xapid, session, kernels, tmp_path):
    """A guest writes known data to its disk; the halted VM is exported to an
    XVA and imported into the same host as a new VM, which boots with the
    same data and a working agent; the original still boots too."""
    api = session.xenapi
    sid = session._session
    vm = guest_vm(api, kernels, "xva original")
    api.VM.start(vm, False, False)
    dev = disk_device(api, vm)
    shell(xapid, api, vm, "printf %s | dd of=%s conv=notrunc 2>/dev/null && sync && echo wrote-$((6*7))"
          % (MARKER, dev), "wrote-42")
    read_marker(xapid, api, vm)
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []

    # Export: a stream to a file (the template's disk is large and sparse).
    xva = tmp_path / "guest.xva"
    q = urllib.parse.urlencode({"session_id": sid, "uuid": api.VM.get_uuid(vm)})
    with urllib.request.urlopen("%s/export?%s" % (xapid.url, q), timeout=300) as r, open(xva, "wb") as f:
        assert r.status == 200
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            f.write(chunk)

    # Import into the same SR: a new VM with new disks.
    task = api.task.create("import", "")
    q = urllib.parse.urlencode({"session_id": sid, "task_id": task})
    with open(xva, "rb") as f:
        req = urllib.request.Request("%s/import?%s" % (xapid.url, q), data=f, method="PUT")
        req.add_header("Content-Length", str(os.path.getsize(xva)))
        with urllib.request.urlopen(req, timeout=300) as r:
            assert r.status == 200
    wait_for(lambda: api.task.get_status(task) != "pending", 300, "the import task")
    rec = api.task.get_record(task)
    assert rec["status"] == "success", rec["error_info"]
    (refs,), _ = xmlrpc.client.loads("<params><param>%s</param></params>" % rec["result"])
    (copy,) = refs
    api.task.destroy(task)
    assert copy != vm and api.VM.get_uuid(copy) != api.VM.get_uuid(vm)
    assert api.VM.get_name_label(copy) == "xva original"
    vdis = lambda v: {api.VBD.get_VDI(b) for b in api.VM.get_VBDs(v) if api.VBD.get_type(b) == "Disk"}  # noqa: E731
    assert vdis(copy) and not vdis(copy) & vdis(vm)

    # The copy boots from its own disk, its agent answers, the data is there.
    api.VM.start(copy, False, False)
    wait_for(lambda: BANNER in serial(xapid, api, copy), BOOT, "the imported guest's banner", interval=0.5)
    agent_answers(api, copy)
    read_marker(xapid, api, copy)
    # Its disk is its own: a write there leaves the original's alone.
    shell(xapid, api, copy, "printf overwritten | dd of=%s conv=notrunc 2>/dev/null && sync && echo over-$((7*8))"
          % disk_device(api, copy), "over-56")

    # The original still works, beside it, with its data unchanged.
    api.VM.start(vm, False, False)
    agent_answers(api, vm)
    read_marker(xapid, api, vm)
    for v in (copy, vm):
        api.VM.hard_shutdown(v)
    assert qemu_pids(xapid) == []


def xo_backup(x, cmd, *args):
    """Xen Orchestra's delta backup job or restore, run by its own libraries
    (tests/node/bin/xo-backup.mjs): the JSON summary it prints."""
    node = require_tool("node")
    require(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@xen-orchestra", "backups")),
            "XO's libraries are not installed (cd tests/node && npm ci)")
    p = subprocess.run([node, os.path.join("bin", "xo-backup.mjs"), cmd, x.url, "root", PASSWORD] + list(args),
                       cwd=NODE_DIR, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def write_block(x, api, vm, block, text):
    """The guest writes `text` at the start of VHD block `block` of its disk."""
    shell(x, api, vm, "printf %s | dd of=%s bs=%d seek=%d 2>/dev/null && sync && echo wrote-%d-$((6*7))"
          % (text, disk_device(api, vm), VHD_BLOCK, block, block), "wrote-%d-42" % block)


def read_block(x, api, vm, block, text):
    shell(x, api, vm, "echo got-$(dd if=%s bs=%d skip=%d count=1 2>/dev/null | head -c %d)-end"
          % (disk_device(api, vm), VHD_BLOCK, block, len(text)), "got-%s-end" % text)


def test_xo_delta_backup_of_a_running_guest_restores_and_boots(xapid, session, kernels, tmp_path):
    """Xen Orchestra's delta backup job (@xen-orchestra/backups, as xo-server
    runs it) on a running guest: run 1 is a full; the guest then writes three
    blocks of its disk; run 2 is a delta of about those blocks (no fall back
    to a full). The chain restores into a new VM that boots from it and
    reads what the guest wrote last."""
    api = session.xenapi
    vm = guest_vm(api, kernels, "xo backed up")
    api.VM.start(vm, False, False)
    uuid = api.VM.get_uuid(vm)
    remote = str(tmp_path / "remote")
    os.mkdir(remote)
    for b in (1, 3):
        write_block(xapid, api, vm, b, "first-%d" % b)
    run1 = xo_backup(xapid, "backup", uuid, remote)
    assert run1["failures"] == [] and run1["isFull"] == [True], run1

    changed = (3, 7, 9)
    for b in changed:
        write_block(xapid, api, vm, b, "changed-%d" % b)
    run2 = xo_backup(xapid, "backup", uuid, remote)
    assert run2["failures"] == [] and run2["isFull"] == [False], run2
    assert not [w for w in run2["warnings"] if "fall back to a full" in w], run2
    # Each changed block is sent whole with its sector bitmap, and nothing else.
    limit = len(changed) * (VHD_BLOCK + 512) + (64 << 10)
    assert run2["transferred"] and all(0 < n <= limit for n in run2["transferred"]), run2
    assert api.VM.get_power_state(vm) == "Running"
    api.VM.hard_shutdown(vm)

    restore = xo_backup(xapid, "restore", uuid, remote, api.SR.get_uuid(api.pool.get_default_SR(
        api.pool.get_all()[0])))
    assert restore["failures"] == [] and restore["mode"] == "delta", restore
    copy = api.VM.get_by_uuid(restore["vm"])
    assert copy != vm
    api.VM.start(copy, False, False)
    wait_for(lambda: BANNER in serial(xapid, api, copy), BOOT, "the restored guest's banner", interval=0.5)
    read_block(xapid, api, copy, 1, "first-1")
    for b in changed:
        read_block(xapid, api, copy, b, "changed-%d" % b)
    api.VM.hard_shutdown(copy)
    assert qemu_pids(xapid) == []


def test_a_snapshot_of_a_running_guest_is_one_instant(xapid, session, kernels):
    """While the guest keeps writing a sequence number to its disk's first
    sector and then to a sector 1 GiB further, VM.snapshot copies the disk
    as it was at one instant (through QEMU's backup job, which copies each
    block before the guest overwrites it): the far sector holds the same
    number as the first or the one before, never a later one. The copy's
    file holds the disk's data, not its zeros."""
    api = session.xenapi
    sid = session._session
    vm = guest_vm(api, kernels, "snapshotted while writing")
    far = 1 << 30
    # Data all the way between the two sectors, so that a copy made by
    # reading the file while the guest writes would take long enough to
    # catch a later number in the far sector.
    (disk,) = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"]
    chunk, total = b"\xab" * (1 << 20), far + (1 << 20)
    body = (chunk for _ in range(total // len(chunk)))
    q = urllib.parse.urlencode({"session_id": sid, "vdi": disk, "format": "raw"})
    req = urllib.request.Request("%s/import_raw_vdi?%s" % (xapid.url, q), data=body, method="PUT")
    req.add_header("Content-Length", str(total))
    with urllib.request.urlopen(req, timeout=300) as r:
        assert r.status == 200
    api.VM.start(vm, False, False)
    dev = disk_device(api, vm)
    # sync after each write: the device sees them in this order.
    step = "printf seq-%%08d-end $i | dd of=%s bs=512 seek=%d 2>/dev/null; sync"
    # Bounded: it stops by itself (the VM is shut down well before). One
    # writer only, however often the line is typed again (mkdir is atomic).
    shell(xapid, api, vm, "if mkdir /tmp/writer 2>/dev/null; then (i=0; while [ $i -lt 20000 ]; do i=$((i+1)); "
          "%s; %s; done) & fi; echo writing-$((6*7))" % (step % (dev, 0), step % (dev, far // 512)), "writing-42")

    def seqs(vdi):
        q = urllib.parse.urlencode({"session_id": sid, "vdi": vdi, "format": "raw"})
        with urllib.request.urlopen("%s/export_raw_vdi?%s" % (xapid.url, q), timeout=120) as r:
            first = r.read(512)
            left = far - 512
            while left:
                left -= len(r.read(min(left, 1 << 20)))
            last = r.read(512)
        num = lambda b: int(b[4:12]) if b.startswith(b"seq-") else 0  # noqa: E731
        return num(first), num(last)

    seen = []
    for n in range(3):
        time.sleep(2)
        snap = api.VM.snapshot(vm, "instant %d" % n)
        (vdi,) = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(snap) if api.VBD.get_type(b) == "Disk"]
        first, last = seqs(vdi)
        assert first > 0 and last in (first - 1, first), (first, last)
        seen.append(first)
        # The copy takes the room of the disk's data, not of its size (QEMU
        # writes the holes as zeroes: the file system would allocate them).
        used, size = int(api.VDI.get_physical_utilisation(vdi)), int(api.VDI.get_virtual_size(vdi))
        assert used < total + (64 << 20) < size, (used, size)
    assert seen == sorted(seen) and seen[0] < seen[-1], seen
    assert api.VM.get_power_state(vm) == "Running"
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []


def test_a_running_guests_qcow2_disk_is_snapshotted_by_qemu(xapid, session, kernels):
    """A qcow2 data disk of a running guest: the snapshot QEMU makes of it is a
    qcow2 VDI holding what the guest wrote."""
    api = session.xenapi
    sid = session._session
    vm = guest_vm(api, kernels, "qcow2 data disk")
    (sr,) = {api.VDI.get_SR(api.VBD.get_VDI(b)) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"}
    data = api.VDI.create({"SR": sr, "name_label": "qcow2 data", "name_description": "", "virtual_size": str(64 << 20),
                           "type": "user", "sharable": False, "read_only": False, "other_config": {},
                           "xenstore_data": {}, "sm_config": {"type": "qcow2"}, "tags": []})
    api.VBD.create({"VM": vm, "VDI": data, "userdevice": "1", "bootable": False, "mode": "RW", "type": "Disk",
                    "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                    "qos_algorithm_params": {}})
    api.VM.start(vm, False, False)
    shell(xapid, api, vm, "printf qcow2-data-77 | dd of=/dev/vdb bs=1048576 seek=1 2>/dev/null && sync && echo "
          "q-$((6*7))", "q-42")
    snap = api.VM.snapshot(vm, "with a qcow2 disk")
    (copy,) = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(snap)
               if api.VBD.get_type(b) == "Disk" and api.VBD.get_userdevice(b) == "1"]
    assert copy != data and api.VDI.get_sm_config(copy).get("type") == "qcow2"
    q = urllib.parse.urlencode({"session_id": sid, "vdi": copy, "format": "raw"})
    with urllib.request.urlopen("%s/export_raw_vdi?%s" % (xapid.url, q), timeout=120) as r:
        body = r.read()
    assert len(body) == 64 << 20 and body[1 << 20:(1 << 20) + 13] == b"qcow2-data-77"
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []


def write_64k(x, api, vm, dev, block, tag):
    """The guest writes `tag` at the start of 64 KiB block `block` of `dev`."""
    shell(x, api, vm, "printf %s | dd of=%s bs=%d seek=%d 2>/dev/null && sync && echo %s-%d-$((6*7))"
          % (tag, dev, 64 << 10, block, tag, block), "%s-%d-42" % (tag, block))


def snapshot_disk(api, vm, name):
    """VM.snapshot, and the snapshot's disk."""
    s = api.VM.snapshot(vm, name)
    (v,) = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(s) if api.VBD.get_type(b) == "Disk"]
    return v


def changed_blocks(api, a, b):
    """The 64 KiB blocks VDI.list_changed_blocks names between two VDIs."""
    return changed(api.VDI.list_changed_blocks(a, b))


def test_disks_appear_in_userdevice_order(xapid, session, kernels):
    """The guest finds its disks in userdevice order (vda, vdb, vdc for 0, 1,
    2), whatever the order of VM.VBDs: disks made for 2 before 1 show their
    sizes at vdc and vdb."""
    api = session.xenapi
    vm = guest_vm(api, kernels, "three disks")
    (sr,) = {api.VDI.get_SR(api.VBD.get_VDI(b)) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"}
    for userdevice, mib in (("2", 32), ("1", 48)):
        vdi = api.VDI.create({"SR": sr, "name_label": "disk %s" % userdevice, "name_description": "",
                              "virtual_size": str(mib << 20), "type": "user", "sharable": False, "read_only": False,
                              "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": []})
        api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": False, "mode": "RW",
                        "type": "Disk", "unpluggable": True, "empty": False, "other_config": {},
                        "qos_algorithm_type": "", "qos_algorithm_params": {}})
    api.VM.start(vm, False, False)
    wait_for(lambda: BANNER in serial(xapid, api, vm), BOOT, "the guest's banner", interval=0.5)
    sizes = guest_value(xapid, api, vm, "$(cat /sys/block/vdb/size)-$(cat /sys/block/vdc/size)", r"[0-9]+-[0-9]+")
    assert sizes == "%d-%d" % ((48 << 20) // 512, (32 << 20) // 512), sizes
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []


def test_cbt_of_a_running_guest_names_the_blocks_it_wrote(xapid, session, kernels):
    """A CBT-enabled disk of a running guest: between two snapshots,
    VDI.list_changed_blocks names exactly the 64 KiB blocks the guest wrote
    (read from QEMU's dirty bitmap). The server restarts while the guest
    runs on: it finds QEMU's bitmap again, and the next snapshot is still
    exact."""
    api = session.xenapi
    vm = guest_vm(api, kernels, "tracked guest")
    (disk,) = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"]
    api.VDI.enable_cbt(disk)
    api.VM.start(vm, False, False)
    dev = disk_device(api, vm)

    def write(blocks, tag):
        for b in blocks:
            write_64k(xapid, api, vm, dev, b, tag)

    def snap(name):
        v = snapshot_disk(api, vm, name)
        assert api.VDI.get_cbt_enabled(v)
        return v

    s1 = snap("cbt 1")
    write([5, 100, 1000], "one")
    s2 = snap("cbt 2")
    assert changed_blocks(api, s1, s2) == {5, 100, 1000}
    s3 = snap("cbt 3")
    assert changed_blocks(api, s2, s3) == set()

    xapid.restart()
    api = xapid.session().xenapi
    assert api.VM.get_power_state(vm) == "Running"
    write([7], "two")
    s4 = snap("cbt 4")
    assert changed_blocks(api, s3, s4) == {7}
    write([9], "three")
    s5 = snap("cbt 5")
    assert changed_blocks(api, s4, s5) == {9}
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []


def test_cbt_follows_a_guest_across_its_shutdowns(xapid, session, kernels):
    """A guest's writes are recorded when it stops writing, not claimed as
    every block: blocks written before a clean shutdown (the guest powers
    off; QEMU, waiting with -no-shutdown, hands its dirty bitmap over before
    it quits), a hard shutdown or a suspend (stopped, then handed over), or
    a clean or hard reboot through the API are named exactly by the next
    snapshot, with those written after the next start, resume or reboot."""
    api = session.xenapi
    vm = guest_vm(api, kernels, "tracked across shutdowns")
    (disk,) = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"]
    api.VDI.enable_cbt(disk)
    api.VM.start(vm, False, False)
    dev = disk_device(api, vm)

    def write(b, tag):
        write_64k(xapid, api, vm, dev, b, tag)

    def snap(name):
        return snapshot_disk(api, vm, name)

    s1 = snap("across 1")
    write(5, "a")
    api.VM.clean_shutdown(vm)
    assert qemu_pids(xapid) == []
    api.VM.start(vm, False, False)
    write(6, "b")
    s2 = snap("across 2")
    assert changed_blocks(api, s1, s2) == {5, 6}
    write(8, "c")
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []
    api.VM.start(vm, False, False)
    shell(xapid, api, vm, "echo up-$((6*7))", "up-42")
    s3 = snap("across 3")
    assert changed_blocks(api, s2, s3) == {8}
    write(10, "d")
    api.VM.suspend(vm)
    assert qemu_pids(xapid) == []
    api.VM.resume(vm, False, False)
    write(11, "e")
    s4 = snap("across 4")
    assert changed_blocks(api, s3, s4) == {10, 11}
    # Reboots through the API: the next domain's batch opens beside the
    # running one's, which hands its writes over as it ends.
    write(12, "f")
    api.VM.clean_reboot(vm)
    write(13, "g")
    api.VM.hard_reboot(vm)
    write(14, "h")
    s5 = snap("across 5")
    assert changed_blocks(api, s4, s5) == {12, 13, 14}
    api.VM.hard_shutdown(vm)
    assert qemu_pids(xapid) == []


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("got %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def screenshot(x, location, sid):
    """One full frame of an RFB console, through xapid's CONNECT proxy at the
    console's location: RFB 3.8 with security None, Raw encoding, a
    non-incremental FramebufferUpdateRequest. Returns (width, height,
    bytes per pixel, pixels)."""
    target = urllib.parse.urlsplit(location)
    with socket.create_connection(("127.0.0.1", x.port), timeout=30) as s:
        s.sendall(("CONNECT %s?%s&session_id=%s HTTP/1.0\r\n\r\n" % (target.path, target.query, sid)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = s.recv(1)
            assert c, head
            head += c
        assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
        version = recv_exact(s, 12)
        assert version.startswith(b"RFB 003."), version
        s.sendall(b"RFB 003.008\n")
        (n,) = recv_exact(s, 1)
        types = recv_exact(s, n)
        assert 1 in types, types  # None: the socket is the access control
        s.sendall(b"\x01")
        assert recv_exact(s, 4) == b"\x00\x00\x00\x00"
        s.sendall(b"\x01")  # shared
        w, h = struct.unpack(">HH", recv_exact(s, 4))
        pf = recv_exact(s, 16)
        bpp = pf[0] // 8
        (n,) = struct.unpack(">I", recv_exact(s, 4))
        recv_exact(s, n)  # the desktop's name
        s.sendall(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings [Raw]
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
        frame = bytearray(w * h * bpp)
        covered = 0
        while covered < w * h:
            (t,) = recv_exact(s, 1)
            if t == 2:  # Bell
                continue
            if t == 3:  # ServerCutText
                recv_exact(s, 3)
                (n,) = struct.unpack(">I", recv_exact(s, 4))
                recv_exact(s, n)
                continue
            assert t == 0, "unexpected RFB message %d" % t
            (nrects,) = struct.unpack(">xH", recv_exact(s, 3))
            for _ in range(nrects):
                rx, ry, rw, rh, enc = struct.unpack(">HHHHi", recv_exact(s, 12))
                if enc != 0:
                    # A pseudo-encoding such as DesktopSize carries no pixels.
                    continue
                data = recv_exact(s, rw * rh * bpp)
                for row in range(rh):
                    off = ((ry + row) * w + rx) * bpp
                    frame[off:off + rw * bpp] = data[row * rw * bpp:(row + 1) * rw * bpp]
                covered += rw * rh
        return w, h, bpp, bytes(frame)


def test_the_console_shows_the_guest_screen(xapid, session, kernels):
    """The kernel writes to the VGA text console too (console=tty0): its rfb
    console, reached at the console object's location through xapid, shows
    a picture that is not one colour; its serial line is a vt100 console
    that `xe console` attaches a terminal to. The guest also runs with the platform
    flag nx=false (QEMU's CPU without NX) and reads its VM's xenstore_data vm-data/ keys from fw_cfg."""
    api = session.xenapi
    vm = guest_vm(api, kernels, "on screen")
    api.VM.set_PV_args(vm, "console=tty0 console=ttyS0 no_timer_check")
    # A platform flag for a BIOS guest: no NX bit. (acpi=0 is checked in
    # argv.rs only: without ACPI the guest finds no fw_cfg device for the
    # xenstore data.)
    for k, v in (("nx", "false"),):
        api.VM.remove_from_platform(vm, k)
        api.VM.add_to_platform(vm, k, v)
    # The guide's vm-data/ keys, for the guest to read (others stay host-side).
    api.VM.set_xenstore_data(vm, {"vm-data/greeting": "hello, world", "vm-data/net/ip": "10.0.0.2",
                                  "other/key": "not for the guest"})
    api.VM.start(vm, False, False)
    try:
        (pid,) = qemu_pids(xapid)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode().split("\0")
        assert "qemu64,-nx" in argv, argv
        wait_for(lambda: BANNER in serial(xapid, api, vm), BOOT, "the guest's banner", interval=0.5)
        shell(xapid, api, vm, "echo nx-$(grep -cw nx /proc/cpuinfo)-end", "nx-0-end")
        # xenstore_data: fw_cfg items opt/xenstore/<key>, read through the guest's sysfs.
        fw = "/sys/firmware/qemu_fw_cfg/by_name/opt/xenstore"
        shell(xapid, api, vm, "echo xs-$(cat %s/vm-data/greeting/raw)-$(cat %s/vm-data/net/ip/raw)-$(ls %s)-end"
              % (fw, fw, fw), "xs-hello, world-10.0.0.2-vm-data-end")
        (con,) = [c for c in api.VM.get_consoles(vm) if api.console.get_protocol(c) == "rfb"]
        location = api.console.get_location(con)

        def drawn():
            w, h, bpp, px = screenshot(xapid, location, session._session)
            pixels = [px[i:i + bpp] for i in range(0, len(px), bpp)]
            background = max(set(pixels[::97]), key=pixels[::97].count)
            lit = sum(1 for p in pixels if p != background)
            # Kernel messages fill lines of text: many lit pixels, not a cursor.
            return (w, h, lit) if lit > w * h // 100 else None
        w, h, lit = wait_for(drawn, 60, "text on the guest's screen", interval=2)
        assert w >= 640 and h >= 400, (w, h)

        # Its serial line is a vt100 console; `xe console` attaches a terminal to it.
        (text,) = [c for c in api.VM.get_consoles(vm) if api.console.get_protocol(c) == "vt100"]
        host = api.host.get_all()[0]
        assert api.console.get_location(text) == "https://%s/console?uuid=%s" % (
            api.host.get_address(host), api.console.get_uuid(text))
        xe_console(xapid, api, vm)
    finally:
        api.VM.hard_shutdown(vm)


def xe_console(x, api, vm):
    """`xe console vm=<uuid>` on a terminal (a pty): a shell that exits is
    started again by the guest's init, which prints the login line; a
    command typed runs; Ctrl-] leaves with exit code 0."""
    xe = os.environ.get("XE_BIN", os.path.join(ROOT, "target", "debug", "xe"))
    require(os.path.exists(xe), "xe is not built (cargo build -p xe)")
    master, slave = pty.openpty()
    env = dict(os.environ, XE_UNIX_SOCKET=x.sock, HOME=x.data_dir)
    p = subprocess.Popen([xe, "-s", "127.0.0.1", "-u", "root", "-pw", PASSWORD, "console",
                          "vm=" + api.VM.get_uuid(vm)], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = b""

    def read_for(secs):
        nonlocal seen
        end = time.time() + secs
        while time.time() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    return
    try:
        def answers(cmd, want):
            os.write(master, b"\x03")
            read_for(0.3)
            os.write(master, cmd + b"\r")
            read_for(2)
            return want in seen
        wait_for(lambda: answers(b"exit", b"xapi-test-guest login: root"), 60, "the login line", interval=0)
        wait_for(lambda: answers(b"echo hi-$((2+3))", b"hi-5"), 60, "the shell's answer", interval=0)
        os.write(master, b"\x1d")
        assert p.wait(timeout=20) == 0, seen[-2000:]
    except AssertionError as e:
        raise AssertionError("%s; xe console showed:\n%r" % (e, seen[-3000:]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_uefi_and_platform_flags(xapid, session, kernels):
    """HVM_boot_params:firmware=uefi boots the guest under OVMF (it sees
    /sys/firmware/efi); the platform flags the backend maps reach QEMU's
    command line and the guest: cores-per-socket (its CPU topology) and
    vga=cirrus (a Cirrus card on its PCI bus); nx=false is ignored (OVMF hangs
    without NX; the BIOS guest of the console test has it)."""
    require(os.path.isfile(OVMF), "no UEFI firmware (%s: apt-get install ovmf)" % OVMF)
    api = session.xenapi
    vm = guest_vm(api, kernels, "uefi")
    api.VM.set_VCPUs_max(vm, "2")
    api.VM.set_VCPUs_at_startup(vm, "2")
    api.VM.add_to_HVM_boot_params(vm, "firmware", "bogus")
    assert failure(api.VM.start, vm, False, False) == ["INVALID_VALUE", "HVM-boot-params['firmware']", "bogus"]
    api.VM.remove_from_HVM_boot_params(vm, "firmware")
    api.VM.add_to_HVM_boot_params(vm, "firmware", "uefi")
    api.VM.add_to_platform(vm, "cores-per-socket", "3")
    assert failure(api.VM.start, vm, False, False) == [
        "INVALID_VALUE", "platform:cores-per-socket", "VCPUs_max must be a multiple of this field"]
    api.VM.remove_from_platform(vm, "cores-per-socket")
    api.VM.add_to_platform(vm, "cores-per-socket", "two")
    assert failure(api.VM.start, vm, False, False) == [
        "INVALID_VALUE", "platform:cores-per-socket", "value = two is not a valid int"]
    assert api.VM.get_power_state(vm) == "Halted" and qemu_pids(xapid) == []
    api.VM.remove_from_platform(vm, "cores-per-socket")
    for k, v in (("cores-per-socket", "2"), ("nx", "false"), ("vga", "cirrus")):
        api.VM.remove_from_platform(vm, k)  # the template's own value
        api.VM.add_to_platform(vm, k, v)

    api.VM.start(vm, False, False)
    try:
        (pid,) = qemu_pids(xapid)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode().split("\0")
        assert any(a.endswith("OVMF.fd") for a in argv), argv
        assert "cirrus-vga" in argv and "-cpu" not in argv, argv
        assert any(a.startswith("cpus=2,maxcpus=2,sockets=1,cores=2") for a in argv), argv
        wait_for(lambda: BANNER in serial(xapid, api, vm), BOOT, "the UEFI guest's banner", interval=0.5)
        shell(xapid, api, vm, "echo efi-$(ls -d /sys/firmware/efi | wc -l)-end", "efi-1-end")
        shell(xapid, api, vm, "echo cores-$(grep -m1 'cpu cores' /proc/cpuinfo | tr -dc 0-9)-end", "cores-2-end")
        shell(xapid, api, vm, "echo cirrus-$(cat /sys/bus/pci/devices/*/vendor | grep -c 0x1013)-end", "cirrus-1-end")
    finally:
        api.VM.hard_shutdown(vm)

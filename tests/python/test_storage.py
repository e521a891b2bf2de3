"""Storage with the PyPI XenAPI client: SR drivers (file-backed ext, ISO
library), SR/PBD/VDI/VBD lifecycles with xapi's errors and parameters, files
checked on disk, hotplug and CD media on running VMs."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Xapid, failure, require_tool

NULL = "OpaqueRef:NULL"
MiB = 1 << 20


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def sr_root():
    """A directory the server may put SRs under (--sr-root), besides its data dir's sr/."""
    d = tempfile.mkdtemp(prefix="xapid-sr-root-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def xapid(sr_root):
    x = Xapid(extra_args=["--sr-root", sr_root]).start()
    yield x
    x.cleanup()


@pytest.fixture(scope="module")
def host(api):
    return api.host.get_all()[0]


@pytest.fixture(scope="module")
def pool(api):
    return api.pool.get_all()[0]


@pytest.fixture(scope="module")
def local_sr(api, pool):
    return api.pool.get_default_SR(pool)


@pytest.fixture(scope="module")
def iso_sr(api):
    return next(r for r, s in api.SR.get_all_records().items() if s["type"] == "iso")


def sr_dir(api, xapid, sr):
    """Where an SR keeps its files: device_config path/location, else under the data dir."""
    for pbd in api.SR.get_PBDs(sr):
        dc = api.PBD.get_device_config(pbd)
        for k in ("path", "location"):
            if dc.get(k, "").startswith("/"):
                return dc[k]
    return os.path.join(xapid.data_dir, "sr", api.SR.get_uuid(sr))


def vdi_file(api, xapid, vdi):
    rec = api.VDI.get_record(vdi)
    fmt = "qcow2" if rec["sm_config"].get("type") == "qcow2" else "raw"
    return os.path.join(sr_dir(api, xapid, rec["SR"]), "%s.%s" % (rec["location"], fmt))


def allocated(path):
    return os.stat(path).st_blocks * 512


def new_vdi(api, sr, size=4 * MiB, **kw):
    rec = {"SR": sr, "virtual_size": str(size), "type": "user", "sharable": False, "read_only": False,
           "other_config": {}, "name_label": "test-disk"}
    rec.update(kw)
    return api.VDI.create(rec)


def vbd_rec(vm, vdi, **kw):
    rec = {"VM": vm, "VDI": vdi, "userdevice": "autodetect", "bootable": False, "mode": "RW", "type": "Disk",
           "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}}
    rec.update(kw)
    return rec


def halted_vm(api, name="storage-vm"):
    """A VM from the 'Other install media' template, provisioned (one disk on the default SR)."""
    tpl = api.VM.get_by_name_label("Other install media")[0]
    vm = api.VM.clone(tpl, name)
    api.VM.provision(vm)
    return vm


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def running_vm(api, name="running-vm"):
    """A started HVM VM whose guest agent has reported (HVM hotplug needs PV drivers)."""
    vm = halted_vm(api, name)
    api.VM.start(vm, False, False)
    assert wait_for(lambda: api.VM.get_guest_metrics(vm) != NULL)
    return vm


def destroy_vm(api, vm):
    if api.VM.get_power_state(vm) != "Halted":
        api.VM.hard_shutdown(vm)
    # The provisioned disk goes with the VM; tests clean up their own VDIs.
    vdis = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm)
            if not api.VBD.get_empty(b) and api.VBD.get_userdevice(b) == "0"]
    api.VM.destroy(vm)
    for v in vdis:
        try:
            api.VDI.destroy(v)
        except Exception:
            pass


def write_at(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read_at(path, offset, n):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


# ------------------------------------------------------------ SM and SRs

def test_sm_records_match_the_drivers(api):
    sms = {r["type"]: r for r in api.SM.get_all_records().values()}
    assert set(sms) == {"ext", "iso", "file"}
    assert "VDI_CREATE" in sms["ext"]["capabilities"] and "VDI_RESIZE" in sms["ext"]["features"]
    assert "VDI_CREATE" not in sms["iso"]["capabilities"]
    assert sms["ext"]["features"]["VDI_RESET_ON_BOOT"] == "2"
    assert "path" in sms["ext"]["configuration"] and "location" in sms["iso"]["configuration"]
    assert sms["file"]["features"] == sms["ext"]["features"] and "location" in sms["file"]["configuration"]
    assert sorted(api.SR.get_supported_types()) == ["ext", "file", "iso"]


def test_seeded_srs_have_allowed_operations(api, local_sr, iso_sr):
    ops = api.SR.get_allowed_operations(local_sr)
    assert {"scan", "vdi_create", "vdi_destroy", "vdi_resize", "update"} <= set(ops)
    # Attached PBD: no destroy or forget.
    assert "destroy" not in ops and "forget" not in ops
    iso_ops = api.SR.get_allowed_operations(iso_sr)
    assert "scan" in iso_ops and "vdi_create" not in iso_ops and "vdi_destroy" not in iso_ops


def test_sr_create_makes_directory_pbd_and_sizes(api, xapid, host):
    sr = api.SR.create(host, {}, "0", "made", "desc", "ext", "user", False, {})
    try:
        rec = api.SR.get_record(sr)
        assert (rec["name_label"], rec["name_description"], rec["type"], rec["shared"]) == ("made", "desc", "ext", False)
        assert len(rec["PBDs"]) == 1
        pbd = api.PBD.get_record(rec["PBDs"][0])
        assert pbd["currently_attached"] is True and pbd["host"] == host
        d = sr_dir(api, xapid, sr)
        assert d == os.path.join(xapid.data_dir, "sr", rec["uuid"]) and os.path.isdir(d)
        st = os.statvfs(d)
        assert int(rec["physical_size"]) == st.f_blocks * st.f_frsize
        assert rec["physical_utilisation"] == "0" and rec["virtual_allocation"] == "0"
        # Sizes follow the VDIs.
        vdi = new_vdi(api, sr, 10 * MiB)
        assert api.SR.get_virtual_allocation(sr) == str(10 * MiB)
        api.VDI.destroy(vdi)
        assert api.SR.get_virtual_allocation(sr) == "0"
    finally:
        api.PBD.unplug(api.SR.get_PBDs(sr)[0])
        api.SR.destroy(sr)
    assert not os.path.exists(d)


def test_sr_create_with_path_and_declared_size(api, xapid, host, sr_root):
    path = os.path.join(sr_root, "custom-sr")
    sr = api.SR.create(host, {"path": path}, str(5 << 30), "custom", "", "EXT", "user", False, {})
    try:
        assert api.SR.get_type(sr) == "ext"
        assert sr_dir(api, xapid, sr) == path and os.path.isdir(path)
        assert api.SR.get_physical_size(sr) == str(5 << 30)
        api.SR.update(sr)
        assert api.SR.get_physical_size(sr) == str(5 << 30), "a declared size survives SR.update"
        vdi = new_vdi(api, sr)
        assert os.path.exists(os.path.join(path, api.VDI.get_uuid(vdi) + ".raw"))
        api.VDI.destroy(vdi)
    finally:
        api.PBD.unplug(api.SR.get_PBDs(sr)[0])
        api.SR.destroy(sr)


def test_sr_create_errors(api, host):
    assert failure(api.SR.create, host, {}, "0", "x", "", "nfs", "", False, {}) == ["SR_UNKNOWN_DRIVER", "nfs"]
    assert failure(api.SR.create, "OpaqueRef:nope", {}, "0", "x", "", "ext", "", False, {}) == \
        ["HANDLE_INVALID", "host", "OpaqueRef:nope"]
    d = failure(api.SR.create, host, {"SRmaster": "true"}, "0", "x", "", "ext", "", False, {})
    assert d == ["VALUE_NOT_SUPPORTED", "SRmaster", "true", "This key is for internal use only"]
    assert failure(api.SR.make, host, {}, "0", "x", "", "ext", "", {}) == ["MESSAGE_DEPRECATED"]


def test_sr_destroy_and_forget_rules(api, xapid, host):
    sr = api.SR.create(host, {}, "0", "doomed", "", "ext", "user", False, {})
    pbd = api.SR.get_PBDs(sr)[0]
    vdi = new_vdi(api, sr)
    path = vdi_file(api, xapid, vdi)
    assert failure(api.SR.destroy, sr) == ["SR_HAS_PBD", sr]
    assert failure(api.SR.forget, sr) == ["SR_HAS_PBD", sr]
    assert failure(api.PBD.destroy, pbd) == ["OPERATION_NOT_ALLOWED", "PBD is currently attached"]
    api.PBD.unplug(pbd)
    assert api.PBD.get_currently_attached(pbd) is False
    assert "destroy" not in api.SR.get_allowed_operations(sr)
    assert failure(api.SR.destroy, sr) == ["SR_NOT_EMPTY"]
    # Operations that need the SR attached now fail.
    assert failure(new_vdi, api, sr) == ["SR_HAS_NO_PBDS", sr]
    assert failure(api.SR.scan, sr) == ["SR_HAS_NO_PBDS", sr]
    api.PBD.destroy(pbd)
    assert api.SR.get_PBDs(sr) == []
    assert failure(api.SR.destroy, sr) == ["SR_HAS_NO_PBDS", sr]
    # Forget drops the records and keeps the data.
    api.SR.forget(sr)
    assert sr not in api.SR.get_all() and vdi not in api.VDI.get_all()
    assert os.path.exists(path)


def test_sr_introduce_pbd_plug_scans_existing_files(api, xapid, host):
    sr = api.SR.create(host, {}, "0", "original", "", "ext", "user", False, {})
    uuid = api.SR.get_uuid(sr)
    vdi = new_vdi(api, sr, 6 * MiB, name_label="keep-me")
    vdi_uuid = api.VDI.get_uuid(vdi)
    d = sr_dir(api, xapid, sr)
    pbd = api.SR.get_PBDs(sr)[0]
    api.PBD.unplug(pbd)
    api.SR.forget(sr)
    assert failure(api.SR.introduce, api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0])),
                   "dup", "", "ext", "", False, {})[0] == "SR_UUID_EXISTS"
    again = api.SR.introduce(uuid, "again", "back", "ext", "user", False, {})
    rec = api.SR.get_record(again)
    assert (rec["uuid"], rec["physical_size"], rec["PBDs"]) == (uuid, "-1", [])
    pbd = api.PBD.create({"host": host, "SR": again, "device_config": {"path": d}})
    assert api.PBD.get_currently_attached(pbd) is False
    d2 = failure(api.PBD.create, {"host": host, "SR": again, "device_config": {}})
    assert d2 == ["PBD_EXISTS", again, host, pbd]
    api.PBD.plug(pbd)
    vdis = api.SR.get_VDIs(again)
    assert [api.VDI.get_uuid(v) for v in vdis] == [vdi_uuid]
    assert api.VDI.get_virtual_size(vdis[0]) == str(6 * MiB)
    assert api.SR.get_virtual_allocation(again) == str(6 * MiB)
    api.VDI.destroy(vdis[0])
    api.PBD.unplug(pbd)
    api.SR.destroy(again)
    assert again not in api.SR.get_all()


def test_sr_introduce_of_unknown_type_fails_on_plug(api, host):
    sr = api.SR.introduce("", "weird", "", "lvmoiscsi", "", True, {})
    pbd = api.PBD.create({"host": host, "SR": sr, "device_config": {}})
    assert failure(api.PBD.plug, pbd) == ["SR_UNKNOWN_DRIVER", "lvmoiscsi"]
    api.PBD.destroy(pbd)
    api.SR.forget(sr)


def test_sr_scan_introduces_and_forgets_files(api, xapid, local_sr):
    d = sr_dir(api, xapid, local_sr)
    uuid = "0a1b2c3d-0000-4000-8000-%012d" % 42
    path = os.path.join(d, uuid + ".raw")
    with open(path, "wb") as f:
        f.truncate(8 * MiB)
    api.SR.scan(local_sr)
    vdi = api.VDI.get_by_uuid(uuid)
    rec = api.VDI.get_record(vdi)
    assert (rec["location"], rec["virtual_size"], rec["SR"], rec["managed"]) == (uuid, str(8 * MiB), local_sr, True)
    os.remove(path)
    api.SR.scan(local_sr)
    assert vdi not in api.VDI.get_all()
    # Files that are not VDIs are ignored.
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("hi")
    before = set(api.SR.get_VDIs(local_sr))
    api.SR.scan(local_sr)
    assert set(api.SR.get_VDIs(local_sr)) == before


def test_sr_probe(api, xapid, host, local_sr):
    xml = api.SR.probe(host, {}, "ext", {})
    assert xml.startswith('<?xml version="1.0" ?>\n<SRlist>\n')
    assert "<UUID>%s</UUID>" % api.SR.get_uuid(local_sr) in xml
    res = api.SR.probe_ext(host, {}, "ext", {})
    uuids = {r["sr"]["uuid"] for r in res}
    assert api.SR.get_uuid(local_sr) in uuids
    assert all(r["complete"] is True and int(r["sr"]["total_space"]) > 0 for r in res)
    assert failure(api.SR.probe, host, {}, "zfs", {}) == ["SR_UNKNOWN_DRIVER", "zfs"]


def test_sr_setters(api, host):
    sr = api.SR.create(host, {}, "0", "names", "", "ext", "user", False, {})
    api.SR.set_name_label(sr, "renamed")
    api.SR.set_name_description(sr, "described")
    api.SR.set_shared(sr, True)
    api.SR.set_physical_size(sr, str(1 << 30))
    rec = api.SR.get_record(sr)
    assert (rec["name_label"], rec["name_description"], rec["shared"], rec["physical_size"]) == \
        ("renamed", "described", True, str(1 << 30))
    api.SR.update(sr)
    assert api.SR.get_physical_size(sr) == str(1 << 30)
    api.PBD.unplug(api.SR.get_PBDs(sr)[0])
    api.SR.destroy(sr)


# ----------------------------------------------------------------- ISO SR

def test_iso_sr_scan_picks_up_dropped_files(api, xapid, iso_sr):
    d = sr_dir(api, xapid, iso_sr)
    assert os.path.isdir(d)
    with open(os.path.join(d, "debian-12.iso"), "wb") as f:
        f.write(b"\x01" * 8192)
    with open(os.path.join(d, "readme.txt"), "w") as f:
        f.write("not an image")
    api.SR.scan(iso_sr)
    vdis = {api.VDI.get_location(v): v for v in api.SR.get_VDIs(iso_sr)}
    assert set(vdis) == {"debian-12.iso"}
    rec = api.VDI.get_record(vdis["debian-12.iso"])
    assert (rec["type"], rec["read_only"], rec["virtual_size"], rec["name_label"]) == \
        ("user", True, "8192", "debian-12.iso")
    # Scanning again changes nothing.
    api.SR.scan(iso_sr)
    assert api.SR.get_VDIs(iso_sr) == [vdis["debian-12.iso"]]
    # ISO VDIs are never created or destroyed through the API.
    assert failure(new_vdi, api, iso_sr) == ["SR_OPERATION_NOT_SUPPORTED", iso_sr]
    assert failure(api.VDI.destroy, vdis["debian-12.iso"]) == ["SR_OPERATION_NOT_SUPPORTED", iso_sr]
    os.remove(os.path.join(d, "debian-12.iso"))
    api.SR.scan(iso_sr)
    assert api.SR.get_VDIs(iso_sr) == []
    assert vdis["debian-12.iso"] not in api.VDI.get_all()


def test_iso_sr_created_on_a_directory(api, xapid, host, sr_root):
    import pathlib
    lib = pathlib.Path(sr_root) / "isos"
    lib.mkdir()
    (lib / "a.iso").write_bytes(b"x" * 2048)
    (lib / "b.ISO").write_bytes(b"y" * 4096)
    sr = api.SR.create(host, {"location": str(lib)}, "0", "library", "", "iso", "iso", True, {})
    names = sorted(api.VDI.get_location(v) for v in api.SR.get_VDIs(sr))
    assert names == ["a.iso", "b.ISO"], "SR.create plugs and scans"
    v = api.VDI.introduce("", "", "", sr, "user", False, True, {}, "a.iso", {}, {}, True, "0", "0", NULL, False,
                          "19700101T00:00:00Z", NULL)
    assert api.VDI.get_location(v) == "a.iso" and len(api.SR.get_VDIs(sr)) == 2, "re-introduce keeps one record"
    d = failure(api.VDI.introduce, "", "", "", sr, "user", False, True, {}, "missing.iso", {}, {}, True, "0", "0",
                NULL, False, "19700101T00:00:00Z", NULL)
    assert d == ["VDI_LOCATION_MISSING", sr, "missing.iso"]
    api.PBD.unplug(api.SR.get_PBDs(sr)[0])
    api.SR.forget(sr)
    assert (lib / "a.iso").exists()


# -------------------------------------------------------------------- VDIs

def test_vdi_create_makes_a_sparse_rounded_file(api, xapid, local_sr):
    vdi = new_vdi(api, local_sr, 5 * MiB + 1, other_config={"k": "v"}, tags=["t"], xenstore_data={"a": "b"})
    try:
        rec = api.VDI.get_record(vdi)
        # ext rounds up to 2 MiB blocks, as xapi's ext SR does.
        assert rec["virtual_size"] == str(6 * MiB)
        assert rec["location"] == rec["uuid"] and rec["managed"] is True and rec["is_a_snapshot"] is False
        assert (rec["other_config"], rec["tags"], rec["xenstore_data"]) == ({"k": "v"}, ["t"], {"a": "b"})
        path = vdi_file(api, xapid, vdi)
        assert os.path.getsize(path) == 6 * MiB
        assert allocated(path) < MiB, "sparse"
        assert rec["physical_utilisation"] == str(allocated(path))
        assert set(rec["allowed_operations"]) >= {"clone", "copy", "resize", "snapshot", "destroy", "forget"}
    finally:
        api.VDI.destroy(vdi)
    assert not os.path.exists(path)
    assert vdi not in api.VDI.get_all()


def test_vdi_create_errors(api, local_sr):
    d = failure(new_vdi, api, local_sr, -5)
    assert d[0] == "SR_BACKEND_FAILURE_79" and d[2].startswith("VDI Invalid size")
    d = failure(lambda: new_vdi(api, local_sr, type="cbt_metadata"))
    assert d == ["VDI_INCOMPATIBLE_TYPE", "", "cbt_metadata"]
    assert failure(new_vdi, api, "OpaqueRef:nope") == ["HANDLE_INVALID", "SR", "OpaqueRef:nope"]


def test_vdi_resize(api, xapid, local_sr):
    vdi = new_vdi(api, local_sr, 4 * MiB)
    try:
        api.VDI.resize(vdi, str(9 * MiB))
        assert api.VDI.get_virtual_size(vdi) == str(10 * MiB)
        assert os.path.getsize(vdi_file(api, xapid, vdi)) == 10 * MiB
        d = failure(api.VDI.resize, vdi, str(2 * MiB))
        assert d == ["SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=shrinking not allowed]", ""]
        assert api.VDI.get_virtual_size(vdi) == str(10 * MiB)
    finally:
        api.VDI.destroy(vdi)


def test_vdi_clone_snapshot_copy_keep_data_and_holes(api, xapid, host, local_sr):
    vdi = new_vdi(api, local_sr, 16 * MiB, name_label="source", other_config={"o": "1"})
    other = api.SR.create(host, {}, "0", "copy-target", "", "ext", "user", False, {})
    made = []
    try:
        src = vdi_file(api, xapid, vdi)
        write_at(src, 3 * MiB, b"payload")
        clone = api.VDI.clone(vdi, {})
        snap = api.VDI.snapshot(vdi, {})
        copy = api.VDI.copy(vdi, other, NULL, NULL)
        made = [clone, snap, copy]
        for v in made:
            path = vdi_file(api, xapid, v)
            assert read_at(path, 3 * MiB, 7) == b"payload"
            assert os.path.getsize(path) == 16 * MiB
            assert allocated(path) <= 2 * MiB, "zero blocks stay holes"
            rec = api.VDI.get_record(v)
            assert (rec["name_label"], rec["virtual_size"], rec["other_config"]) == ("source", str(16 * MiB), {"o": "1"})
        s = api.VDI.get_record(snap)
        assert s["is_a_snapshot"] is True and s["snapshot_of"] == vdi and snap in api.VDI.get_snapshots(vdi)
        assert api.VDI.get_is_a_snapshot(clone) is False
        assert api.VDI.get_SR(copy) == other and api.VDI.get_SR(clone) == local_sr
        assert api.SR.get_virtual_allocation(other) == str(16 * MiB)
    finally:
        for v in made:
            api.VDI.destroy(v)
        api.VDI.destroy(vdi)
        api.PBD.unplug(api.SR.get_PBDs(other)[0])
        api.SR.destroy(other)


def test_vdi_copy_into_existing(api, xapid, local_sr):
    src = new_vdi(api, local_sr, 4 * MiB)
    small = new_vdi(api, local_sr, 2 * MiB)
    ro = new_vdi(api, local_sr, 4 * MiB, read_only=True)
    dst = new_vdi(api, local_sr, 4 * MiB)
    try:
        write_at(vdi_file(api, xapid, src), 0, b"fresh")
        write_at(vdi_file(api, xapid, dst), 2 * MiB, b"stale")
        assert failure(api.VDI.copy, src, NULL, NULL, small) == ["VDI_TOO_SMALL", small, str(4 * MiB)]
        assert failure(api.VDI.copy, src, NULL, NULL, ro) == ["VDI_READONLY", ro]
        assert api.VDI.copy(src, NULL, NULL, dst) == dst
        with open(vdi_file(api, xapid, src), "rb") as a, open(vdi_file(api, xapid, dst), "rb") as b:
            assert a.read() == b.read()
        assert failure(api.VDI.copy, src, NULL, NULL, NULL) == ["HANDLE_INVALID", "SR", NULL]
    finally:
        for v in (src, small, ro, dst):
            api.VDI.destroy(v)


def test_vdi_async_clone_reports_through_a_task(api, local_sr):
    vdi = new_vdi(api, local_sr)
    task = api.Async.VDI.clone(vdi, {})
    assert wait_for(lambda: api.task.get_status(task) != "pending")
    assert api.task.get_status(task) == "success"
    assert api.task.get_progress(task) == 1.0
    clone = api.task.get_result(task).replace("<value>", "").replace("</value>", "")
    assert api.VDI.get_SR(clone) == local_sr
    api.VDI.destroy(clone)
    api.VDI.destroy(vdi)


def test_vdi_forget_keeps_the_file_and_scan_brings_it_back(api, xapid, local_sr):
    vdi = new_vdi(api, local_sr)
    uuid, path = api.VDI.get_uuid(vdi), vdi_file(api, xapid, vdi)
    api.VDI.forget(vdi)
    assert vdi not in api.VDI.get_all() and os.path.exists(path)
    api.SR.scan(local_sr)
    again = api.VDI.get_by_uuid(uuid)
    assert api.VDI.get_virtual_size(again) == str(4 * MiB)
    api.VDI.destroy(again)
    assert not os.path.exists(path)


def test_vdi_update_and_missing_file(api, xapid, local_sr):
    vdi = new_vdi(api, local_sr)
    path = vdi_file(api, xapid, vdi)
    write_at(path, MiB, b"x" * 4096)
    api.VDI.update(vdi)
    assert int(api.VDI.get_physical_utilisation(vdi)) == allocated(path) > 0
    os.remove(path)
    assert failure(api.VDI.update, vdi) == ["VDI_MISSING", local_sr, vdi]
    api.VDI.destroy(vdi)


def test_vdi_setters(api, local_sr):
    vdi = new_vdi(api, local_sr)
    try:
        api.VDI.set_name_label(vdi, "n")
        api.VDI.set_name_description(vdi, "d")
        api.VDI.set_read_only(vdi, True)
        api.VDI.set_sharable(vdi, True)
        api.VDI.set_on_boot(vdi, "reset")
        api.VDI.set_allow_caching(vdi, True)
        rec = api.VDI.get_record(vdi)
        assert (rec["name_label"], rec["name_description"], rec["read_only"], rec["sharable"], rec["on_boot"],
                rec["allow_caching"]) == ("n", "d", True, True, "reset", True)
        # Sharable VDIs cannot be snapshotted; reset-on-boot ones cannot be copied.
        assert failure(api.VDI.snapshot, vdi, {}) == ["VDI_IS_SHARABLE", vdi]
        assert failure(api.VDI.copy, vdi, local_sr, NULL, NULL) == \
            ["VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"]
        assert "snapshot" not in api.VDI.get_allowed_operations(vdi)
    finally:
        api.VDI.destroy(vdi)


def test_qcow2_vdis_through_qemu_img(api, xapid, local_sr):
    require_tool("qemu-img")
    vdi = new_vdi(api, local_sr, 3 * MiB, sm_config={"type": "qcow2"})
    made = [vdi]
    try:
        rec = api.VDI.get_record(vdi)
        assert rec["sm_config"]["type"] == "qcow2" and rec["virtual_size"] == str(4 * MiB)
        path = vdi_file(api, xapid, vdi)
        assert path.endswith(".qcow2")
        info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", path]))
        assert info["format"] == "qcow2" and info["virtual-size"] == 4 * MiB
        api.VDI.resize(vdi, str(8 * MiB))
        info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", path]))
        assert info["virtual-size"] == 8 * MiB
        clone = api.VDI.clone(vdi, {})
        made.append(clone)
        assert vdi_file(api, xapid, clone).endswith(".qcow2")
        # A copy without sm_config lands in the target SR's format (raw here).
        copy = api.VDI.copy(vdi, local_sr, NULL, NULL)
        made.append(copy)
        assert vdi_file(api, xapid, copy).endswith(".raw") and os.path.getsize(vdi_file(api, xapid, copy)) == 8 * MiB
    finally:
        for v in made:
            api.VDI.destroy(v)


def test_qcow2_without_qemu_img_is_a_backend_failure():
    old = os.environ.get("XAPID_QEMU_IMG")
    os.environ["XAPID_QEMU_IMG"] = "/nonexistent/qemu-img"
    try:
        x = Xapid().start()
    finally:
        if old is None:
            del os.environ["XAPID_QEMU_IMG"]
        else:
            os.environ["XAPID_QEMU_IMG"] = old
    try:
        api = x.session().xenapi
        sr = api.pool.get_default_SR(api.pool.get_all()[0])
        d = failure(lambda: new_vdi(api, sr, sm_config={"type": "qcow2"}))
        assert d[0] == "SR_BACKEND_FAILURE" and "/nonexistent/qemu-img" in d[1]
        assert api.SR.get_VDIs(sr) == []
    finally:
        x.cleanup()


# -------------------------------------------------------------------- VBDs

def test_vbd_create_errors_with_xapi_params(api, local_sr):
    vm = halted_vm(api, "vbd-errors")
    vdi = new_vdi(api, local_sr)
    ro = new_vdi(api, local_sr, read_only=True)
    ha = new_vdi(api, local_sr, type="ha_statefile")
    try:
        assert failure(api.VBD.create, vbd_rec(vm, ha)) == ["VDI_INCOMPATIBLE_TYPE", ha, "ha_statefile"]
        assert failure(api.VBD.create, vbd_rec(vm, vdi, type="CD")) == ["VBD_CDS_MUST_BE_READONLY"]
        assert failure(api.VBD.create, vbd_rec(vm, NULL, empty=True)) == ["VBD_NOT_REMOVABLE_MEDIA", "in constructor"]
        assert failure(api.VBD.create, vbd_rec(vm, ro)) == ["VDI_READONLY", ro]
        assert failure(api.VBD.create, vbd_rec(vm, vdi, userdevice="bogus")) == ["INVALID_DEVICE", "bogus"]
        # The provisioned disk is device 0: 0 and xvda clash.
        assert failure(api.VBD.create, vbd_rec(vm, vdi, userdevice="0")) == ["DEVICE_ALREADY_EXISTS", "0"]
        assert failure(api.VBD.create, vbd_rec(vm, vdi, userdevice="xvda")) == ["DEVICE_ALREADY_EXISTS", "xvda"]
        assert failure(api.VBD.create, vbd_rec("OpaqueRef:nope", vdi)) == ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
        # Read-only attachment of a read-only VDI is fine; autodetect picks the next slot.
        vbd = api.VBD.create(vbd_rec(vm, ro, mode="RO"))
        rec = api.VBD.get_record(vbd)
        assert (rec["userdevice"], rec["device"], rec["currently_attached"]) == ("1", "", False)
        assert rec["allowed_operations"] == ["attach"]
        assert failure(api.VBD.plug, vbd) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        assert failure(api.VBD.unplug, vbd) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        api.VBD.set_mode(vbd, "RW")
        assert api.VBD.get_mode(vbd) == "RW"
        assert failure(api.VBD.assert_attachable, vbd) == ["VDI_READONLY", ro]
        api.VBD.set_mode(vbd, "RO")
        api.VBD.assert_attachable(vbd)
        api.VBD.destroy(vbd)
    finally:
        destroy_vm(api, vm)
        for v in (vdi, ro, ha):
            api.VDI.destroy(v)


def test_hotplug_on_a_running_vm(api, xapid, local_sr):
    vm = running_vm(api, "hotplug")
    vdi = new_vdi(api, local_sr, 8 * MiB)
    pbd = api.SR.get_PBDs(local_sr)[0]
    try:
        boot = api.VM.get_VBDs(vm)[0]
        assert api.VBD.get_currently_attached(boot) is True and api.VBD.get_device(boot) == "xvda"
        vbd = api.VBD.create(vbd_rec(vm, vdi))
        assert api.VBD.get_currently_attached(vbd) is False
        assert set(api.VBD.get_allowed_operations(vbd)) == {"attach", "plug", "pause", "unpause"}
        assert failure(api.VBD.unplug, vbd) == ["DEVICE_ALREADY_DETACHED", vbd]
        api.VBD.plug(vbd)
        rec = api.VBD.get_record(vbd)
        assert (rec["currently_attached"], rec["device"], rec["userdevice"]) == (True, "xvdb", "1")
        assert "unplug" in rec["allowed_operations"] and "plug" not in rec["allowed_operations"]
        assert failure(api.VBD.plug, vbd) == ["DEVICE_ALREADY_ATTACHED", vbd]
        # An attached VDI cannot be destroyed, resized or forgotten; live operations stay.
        assert failure(api.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]
        assert failure(api.VDI.resize, vdi, str(16 * MiB)) == ["VDI_IN_USE", vdi, "resize"]
        assert set(api.VDI.get_allowed_operations(vdi)) == {"clone", "snapshot", "resize_online"}
        assert failure(api.VDI.set_on_boot, vdi, "reset") == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        assert failure(api.VBD.set_mode, vbd, "RO") == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        # Nor the VBD, nor the SR under it.
        d = failure(api.VBD.destroy, vbd)
        assert d[0] == "OPERATION_NOT_ALLOWED" and "still attached" in d[1]
        d = failure(api.PBD.unplug, pbd)
        assert d[0] == "VDI_IN_USE" and vdi in d[1:]
        snap = api.VDI.snapshot(vdi, {})
        api.VDI.destroy(snap)
        api.VBD.unplug(vbd)
        assert api.VBD.get_currently_attached(vbd) is False
        assert "destroy" in api.VDI.get_allowed_operations(vdi)
        api.VBD.plug(vbd)
        api.VBD.unplug_force(vbd)
        assert api.VBD.get_currently_attached(vbd) is False
        # Not unpluggable: refused.
        api.VBD.plug(vbd)
        api.VBD.set_unpluggable(vbd, False)
        assert failure(api.VBD.unplug, vbd) == ["VBD_NOT_UNPLUGGABLE", vbd]
        assert "unplug" not in api.VBD.get_allowed_operations(vbd)
        api.VBD.set_unpluggable(vbd, True)
        api.VBD.unplug(vbd)
        api.VBD.destroy(vbd)
        # Shut down: disks are detached and plug needs a running VM again.
        api.VM.hard_shutdown(vm)
        assert api.VBD.get_currently_attached(boot) is False
        assert api.VBD.get_allowed_operations(boot) == ["attach"]
    finally:
        destroy_vm(api, vm)
        api.VDI.destroy(vdi)


def test_hvm_hotplug_needs_pv_drivers_and_backend_failures_surface(api, local_sr):
    vm = halted_vm(api, "no-agent")
    api.VM.add_to_other_config(vm, "sim:guest-agent", "false")
    api.VM.add_to_other_config(vm, "sim:fail-plug_disk", "SR_BACKEND_FAILURE_46,,The VDI is not available,")
    vdi = new_vdi(api, local_sr)
    try:
        api.VM.start(vm, False, False)
        vbd = api.VBD.create(vbd_rec(vm, vdi))
        assert failure(api.VBD.plug, vbd) == ["VM_MISSING_PV_DRIVERS", vm]
        assert "plug" not in api.VBD.get_allowed_operations(vbd)
        api.VM.hard_shutdown(vm)
        api.VM.remove_from_other_config(vm, "sim:guest-agent")
        api.VM.start(vm, False, False)
        assert wait_for(lambda: api.VM.get_guest_metrics(vm) != NULL)
        api.VBD.unplug(vbd)
        d = failure(api.VBD.plug, vbd)
        assert d == ["SR_BACKEND_FAILURE_46", "", "The VDI is not available", ""]
        assert api.VBD.get_currently_attached(vbd) is False
        assert api.VBD.get_current_operations(vbd) == {}
    finally:
        destroy_vm(api, vm)
        api.VDI.destroy(vdi)


def test_plug_needs_the_sr_attached(api, host):
    vm = running_vm(api, "sr-detached")
    sr = api.SR.create(host, {}, "0", "detachable", "", "ext", "user", False, {})
    pbd = api.SR.get_PBDs(sr)[0]
    vdi = new_vdi(api, sr)
    try:
        vbd = api.VBD.create(vbd_rec(vm, vdi))
        api.PBD.unplug(pbd)
        assert failure(api.VBD.plug, vbd) == ["SR_NOT_ATTACHED", sr]
        api.PBD.plug(pbd)
        api.VBD.plug(vbd)
        assert failure(api.PBD.unplug, pbd) == ["VDI_IN_USE", vdi]
        api.VBD.unplug(vbd)
    finally:
        destroy_vm(api, vm)
        api.VDI.destroy(vdi)
        api.PBD.unplug(pbd)
        api.SR.destroy(sr)


def test_vdi_sharing_between_running_vms(api, local_sr):
    a = running_vm(api, "share-a")
    b = running_vm(api, "share-b")
    vdi = new_vdi(api, local_sr)
    try:
        va = api.VBD.create(vbd_rec(a, vdi))
        vb = api.VBD.create(vbd_rec(b, vdi))
        api.VBD.plug(va)
        assert failure(api.VBD.plug, vb) == ["VDI_IN_USE", vdi]
        assert failure(api.VBD.assert_attachable, vb) == ["VDI_IN_USE", vdi]
        api.VBD.unplug(va)
        api.VDI.set_sharable(vdi, True)
        api.VBD.plug(va)
        api.VBD.plug(vb)
        assert api.VBD.get_currently_attached(vb) is True
        api.VBD.unplug(va)
        api.VBD.unplug(vb)
    finally:
        destroy_vm(api, a)
        destroy_vm(api, b)
        api.VDI.destroy(vdi)


def test_cd_insert_and_eject(api, xapid, iso_sr, local_sr):
    d = sr_dir(api, xapid, iso_sr)
    with open(os.path.join(d, "tools.iso"), "wb") as f:
        f.write(b"\x02" * 4096)
    api.SR.scan(iso_sr)
    iso = next(v for v in api.SR.get_VDIs(iso_sr) if api.VDI.get_location(v) == "tools.iso")
    vm = halted_vm(api, "cd-vm")
    disk = api.VM.get_VBDs(vm)[0]
    try:
        cd = api.VBD.create(vbd_rec(vm, NULL, type="CD", mode="RO", empty=True, userdevice="3"))
        assert api.VBD.get_empty(cd) is True
        assert failure(api.VBD.eject, cd) == ["VBD_IS_EMPTY", cd]
        assert failure(api.VBD.insert, disk, iso) == ["VBD_NOT_REMOVABLE_MEDIA", disk]
        assert failure(api.VBD.eject, disk) == ["VBD_NOT_REMOVABLE_MEDIA", disk]
        # Halted: only the database changes.
        api.VBD.insert(cd, iso)
        assert (api.VBD.get_VDI(cd), api.VBD.get_empty(cd)) == (iso, False)
        assert failure(api.VBD.insert, cd, iso) == ["VBD_NOT_EMPTY", cd]
        assert cd in api.VDI.get_VBDs(iso)
        api.VBD.eject(cd)
        assert (api.VBD.get_VDI(cd), api.VBD.get_empty(cd)) == (NULL, True)
        # Running: media changes go through the backend.
        api.VBD.insert(cd, iso)
        api.VM.start(vm, False, False)
        assert api.VBD.get_currently_attached(cd) is True
        assert set(api.VBD.get_allowed_operations(cd)) >= {"eject"}
        api.VBD.eject(cd)
        assert api.VBD.get_empty(cd) is True and "insert" in api.VBD.get_allowed_operations(cd)
        api.VBD.insert(cd, iso)
        assert api.VBD.get_VDI(cd) == iso
        assert failure(api.VBD.insert, "OpaqueRef:nope", iso) == ["HANDLE_INVALID", "VBD", "OpaqueRef:nope"]
    finally:
        destroy_vm(api, vm)
        os.remove(os.path.join(d, "tools.iso"))
        api.SR.scan(iso_sr)


def test_vdi_destroy_removes_its_vbds(api, local_sr):
    vm = halted_vm(api, "vbd-gc")
    vdi = new_vdi(api, local_sr)
    try:
        vbd = api.VBD.create(vbd_rec(vm, vdi))
        api.VDI.destroy(vdi)
        assert vbd not in api.VBD.get_all()
        assert len(api.VM.get_VBDs(vm)) == 1
    finally:
        destroy_vm(api, vm)


# ------------------------------------------------------------- default SR

def test_default_sr_not_found(api, pool, local_sr):
    tpl = api.VM.get_by_name_label("Other install media")[0]
    vm = api.VM.clone(tpl, "no-default-sr")
    api.pool.set_default_SR(pool, NULL)
    try:
        assert failure(api.VM.provision, vm) == ["DEFAULT_SR_NOT_FOUND", NULL]
    finally:
        api.pool.set_default_SR(pool, local_sr)
        api.VM.destroy(vm)
    assert api.pool.get_default_SR(pool) == local_sr


def test_state_survives_a_restart():
    x = Xapid().start()
    try:
        api = x.session().xenapi
        host = api.host.get_all()[0]
        sr = api.SR.create(host, {}, "0", "persisted", "", "ext", "user", False, {})
        vdi = new_vdi(api, sr, name_label="persisted-disk")
        x.restart()
        api = x.session().xenapi
        assert api.VDI.get_name_label(vdi) == "persisted-disk"
        assert api.PBD.get_currently_attached(api.SR.get_PBDs(sr)[0]) is True
        assert "vdi_create" in api.SR.get_allowed_operations(sr)
        assert api.VDI.get_current_operations(vdi) == {}
        api.SR.scan(sr)
        assert api.SR.get_VDIs(sr) == [vdi]
    finally:
        x.cleanup()


# ------------------------------------------------------- paths that escape

def export_raw(xapid, sid, vdi):
    """GET /export_raw_vdi: (status, body) whether it succeeds or not."""
    import urllib.error
    import urllib.request
    u = "%s/export_raw_vdi?session_id=%s&vdi=%s&format=raw" % (xapid.url, sid, vdi)
    try:
        with urllib.request.urlopen(u, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_iso_links_and_special_files_do_not_escape(api, xapid, sid, host, sr_root, tmp_path):
    secret = b"root:secret-hash:19000:0:99999:7:::\n" * 64
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_bytes(secret)
    (outside / "inner.iso").write_bytes(b"\x05" * 2048)
    lib = os.path.join(sr_root, "escape-isos")
    os.mkdir(lib)
    with open(os.path.join(lib, "good.iso"), "wb") as f:
        f.write(b"\x01" * 4096)
    os.symlink(str(outside / "shadow"), os.path.join(lib, "shadow.iso"))        # absolute link out
    os.symlink("../../outside/shadow", os.path.join(lib, "rel.iso"))            # relative link out
    os.symlink(str(outside), os.path.join(lib, "outdir.iso"))                   # link to a directory out
    os.symlink("/dev/zero", os.path.join(lib, "zero.iso"))                      # link to a device
    os.mkfifo(os.path.join(lib, "fifo.iso"))                                    # would block a reader
    try:
        os.mknod(os.path.join(lib, "null.iso"), 0o600 | __import__("stat").S_IFCHR, os.makedev(1, 3))
    except OSError:
        pass  # no CAP_MKNOD here; the /dev/zero link covers device nodes
    # Documented choice: a relative link to another image inside the SR is
    # served (a library of links), where the kernel has openat2.
    os.symlink("good.iso", os.path.join(lib, "alias.iso"))
    sr = api.SR.create(host, {"location": lib}, "0", "escape", "", "iso", "iso", False, {})
    try:
        names = sorted(api.VDI.get_location(v) for v in api.SR.get_VDIs(sr))
        assert names in (["alias.iso", "good.iso"], ["good.iso"]), names
        for bad in ["shadow.iso", "rel.iso", "outdir.iso", "zero.iso", "fifo.iso", "null.iso"]:
            d = failure(api.VDI.introduce, "", "", "", sr, "user", False, True, {}, bad, {}, {}, True, "0", "0",
                        NULL, False, "19700101T00:00:00Z", NULL)
            assert d[0] in ("SR_BACKEND_FAILURE_46", "VDI_LOCATION_MISSING"), (bad, d)
        # A served image swapped for a link out after the scan: export and
        # attach refuse it, and the next scan forgets it.
        good = next(v for v in api.SR.get_VDIs(sr) if api.VDI.get_location(v) == "good.iso")
        st, body = export_raw(xapid, sid, good)
        assert st == 200 and body == b"\x01" * 4096
        os.remove(os.path.join(lib, "good.iso"))
        os.symlink(str(outside / "shadow"), os.path.join(lib, "good.iso"))
        st, body = export_raw(xapid, sid, good)
        assert b"secret-hash" not in body and st == 500 and b"SR_BACKEND_FAILURE_46" in body, (st, body[:200])
        vm = halted_vm(api, "escape-vm")
        try:
            api.VBD.create(vbd_rec(vm, good, type="CD", mode="RO", userdevice="3"))
            d = failure(api.VM.start, vm, False, False)
            assert d[0] == "SR_BACKEND_FAILURE_46" and "good.iso" in d[2], d
            assert api.VM.get_power_state(vm) == "Halted"
        finally:
            destroy_vm(api, vm)
        # Media changes on a running VM go through the same check.
        vm = halted_vm(api, "escape-running")
        try:
            cd = api.VBD.create(vbd_rec(vm, NULL, type="CD", mode="RO", empty=True, userdevice="3"))
            api.VM.start(vm, False, False)
            d = failure(api.VBD.insert, cd, good)
            assert d[0] == "SR_BACKEND_FAILURE_46", d
            assert api.VBD.get_empty(cd) is True
        finally:
            destroy_vm(api, vm)
        api.SR.scan(sr)
        assert good not in api.SR.get_VDIs(sr)
        assert "good.iso" not in [api.VDI.get_location(v) for v in api.SR.get_VDIs(sr)]
    finally:
        api.PBD.unplug(api.SR.get_PBDs(sr)[0])
        api.SR.forget(sr)
    assert (outside / "shadow").read_bytes() == secret


def test_sr_paths_must_lie_under_an_allowed_root(api, xapid, host, sr_root, tmp_path):
    roots = [os.path.join(xapid.data_dir, "sr"), sr_root]
    elsewhere = str(tmp_path / "not-a-root" / "sr")
    for ty, dc, code in [("ext", {"path": elsewhere}, "SR_BACKEND_FAILURE_91"),
                         ("iso", {"location": elsewhere}, "SR_BACKEND_FAILURE_226"),
                         ("ext", {"path": sr_root + "/../escaped"}, "SR_BACKEND_FAILURE_91")]:
        before = set(api.SR.get_all())
        d = failure(api.SR.create, host, dc, "0", "x", "", ty, "", False, {})
        assert d[0] == code and all(r in d[2] for r in roots), d
        assert set(api.SR.get_all()) == before, "nothing is left behind"
    assert not os.path.exists(elsewhere) and not os.path.exists(os.path.join(os.path.dirname(sr_root), "escaped"))
    # A link inside a root that leads out does not make its target a root.
    os.symlink(str(tmp_path), os.path.join(sr_root, "link-out"))
    d = failure(api.SR.create, host, {"path": os.path.join(sr_root, "link-out", "sr")}, "0", "x", "", "ext", "",
                False, {})
    assert d[0] == "SR_BACKEND_FAILURE_91"
    assert not (tmp_path / "sr").exists()
    # Introduced SRs are checked when plugged; probes too.
    sr = api.SR.introduce("", "introduced", "", "ext", "user", False, {})
    try:
        pbd = api.PBD.create({"host": host, "SR": sr, "device_config": {"path": elsewhere}})
        assert failure(api.PBD.plug, pbd)[0] == "SR_BACKEND_FAILURE_91"
        assert api.PBD.get_currently_attached(pbd) is False
        api.PBD.destroy(pbd)
    finally:
        api.SR.forget(sr)
    assert failure(api.SR.probe, host, {"path": "/etc"}, "ext", {})[0] == "SR_BACKEND_FAILURE_91"
    # The data dir's sr/ and --sr-root directories are fine, at any depth.
    sr = api.SR.create(host, {"path": os.path.join(sr_root, "a", "b")}, "0", "deep", "", "ext", "user", False, {})
    api.PBD.unplug(api.SR.get_PBDs(sr)[0])
    api.SR.destroy(sr)

"""Database backup and restore: GET/PUT /pool/xmldbdump and xe's
pool-dump-database / pool-restore-database. A dump taken from one server is
restored on a fresh data dir: the restore is checked, staged, and applied when
the server restarts itself after the fuse (re-executing, as xapi restarts)."""

import base64
import os
import subprocess
import time

import pytest
import XenAPI

from vmlib import wait_for
from conftest import PASSWORD, ROOT, Xapid, vm_ctor

XE = os.environ.get("XE_BIN", os.path.join(ROOT, "target", "debug", "xe"))
AUTH = {"Authorization": "Basic " + base64.b64encode(("root:" + PASSWORD).encode()).decode()}


def xe(srv, *args):
    """The real xe client against a server's Unix socket."""
    if not os.path.exists(XE):
        if os.environ.get("CI"):
            pytest.fail("xe is missing: " + XE)
        pytest.skip("xe is not built (cargo build -p xe)")
    env = dict(os.environ, XE_UNIX_SOCKET=srv.sock, HOME=srv.data_dir)
    return subprocess.run([XE, *args], capture_output=True, text=True, timeout=60, env=env)


def contents(x):
    pool = x.pool.get_all()[0]
    return {
        "pool": (x.pool.get_uuid(pool), x.pool.get_name_label(pool), x.pool.get_other_config(pool)),
        "hosts": sorted(x.host.get_uuid(h) for h in x.host.get_all()),
        "networks": sorted((x.network.get_uuid(n), x.network.get_name_label(n)) for n in x.network.get_all()),
        "vms": sorted((x.VM.get_uuid(v), x.VM.get_name_label(v), tuple(x.VM.get_tags(v)))
                      for v in x.VM.get_all()),
        "vdis": sorted((x.VDI.get_uuid(v), x.VDI.get_name_label(v)) for v in x.VDI.get_all()),
    }


@pytest.fixture()
def source():
    srv = Xapid().start()
    x = srv.session().xenapi
    pool = x.pool.get_all()[0]
    x.pool.set_name_label(pool, "backed-up")
    x.pool.add_to_other_config(pool, "backup", "yes")
    for i in range(3):
        x.network.create({"name_label": "backup-net-%d" % i, "other_config": {}})
    vm = x.VM.create(vm_ctor(name_label="backup-vm"))
    x.VM.add_tags(vm, "t1")
    sr = x.pool.get_default_SR(pool)
    x.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "user", "sharable": False, "read_only": False,
                  "other_config": {}, "name_label": "backup-vdi"})
    yield srv
    srv.cleanup()


@pytest.fixture()
def target():
    srv = Xapid(extra_args=["--db-restore-fuse-secs", "1"]).start()
    servers = [srv]
    yield servers
    for s in servers:
        s.stop()
    srv.cleanup()


def put_dump(srv, body, dry_run):
    """PUT a dump under a task of ours; returns (HTTP status, task record)."""
    x = srv.session().xenapi
    task = x.task.create("restore", "")
    path = "/pool/xmldbdump?task_id=%s&dry_run=%s" % (task, "true" if dry_run else "false")
    st, _, _ = srv.post(path, body, dict(AUTH, **{"Content-Type": "application/octet-stream"}), method="PUT")
    deadline = time.time() + 30
    while x.task.get_status(task) == "pending" and time.time() < deadline:
        time.sleep(0.05)
    return st, x.task.get_record(task)


def test_dump_needs_credentials(source):
    st, _, _ = source.post("/pool/xmldbdump", b"", {}, method="GET")
    assert st == 401


def restarted_with(srv, want):
    """Wait for the server to restart itself with the restored database."""
    pid = srv.proc.pid

    def applied():
        if os.path.exists(os.path.join(srv.data_dir, "db", "restore")):
            return False
        try:
            return contents(srv.session().xenapi) == want
        except (OSError, XenAPI.Failure):
            return False
    wait_for(applied, 40, "the restore applied after the restart", interval=0.3)
    assert srv.proc.poll() is None and srv.proc.pid == pid
    return srv


def test_restore_needs_a_length(target):
    c = target[0].connection()
    c.putrequest("PUT", "/pool/xmldbdump?dry_run=true")
    for k, v in AUTH.items():
        c.putheader(k, v)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    c.send(b"0\r\n\r\n")
    assert c.getresponse().status == 400
    c.close()


def test_dump_and_restore_on_a_fresh_data_dir(source, target):
    want = contents(source.session().xenapi)
    st, h, dump = source.post("/pool/xmldbdump", b"", AUTH, method="GET")
    assert st == 200 and dump.startswith(b"xapi-rs database dump v1\n"), (st, dump[:40])
    srv = target[0]
    before = contents(srv.session().xenapi)
    assert before["pool"][0] != want["pool"][0]

    # Damaged, cut short, or not ours: refused, nothing staged.
    bad = bytearray(dump)
    bad[len(bad) // 2] ^= 1
    for body, code in [(bytes(bad), "RESTORE_SCRIPT_FAILED"), (dump[:-10], "RESTORE_SCRIPT_FAILED"),
                       (b"<database></database>", "RESTORE_INCOMPATIBLE_VERSION")]:
        st, rec = put_dump(srv, body, dry_run=False)
        assert st == 200
        assert rec["status"] == "failure" and rec["error_info"][0] == code, rec
    assert not os.path.exists(os.path.join(srv.data_dir, "db", "restore"))

    # A dry run checks and changes nothing.
    st, rec = put_dump(srv, dump, dry_run=True)
    assert rec["status"] == "success", rec
    assert not os.path.exists(os.path.join(srv.data_dir, "db", "restore"))
    assert contents(srv.session().xenapi) == before

    # The real restore: staged, then the server restarts itself after the
    # fuse (same process, re-executed) and applies it.
    st, rec = put_dump(srv, dump, dry_run=False)
    assert rec["status"] == "success", rec
    assert os.path.exists(os.path.join(srv.data_dir, "db", "restore"))
    again = restarted_with(srv, want)
    replaced = [f for f in os.listdir(os.path.join(srv.data_dir, "db")) if f.startswith("replaced-")]
    assert len(replaced) == 1, "the replaced store is kept"
    # Local SRs now live in this data dir, never in the source's.
    x = again.session().xenapi
    for pbd in x.PBD.get_all():
        dc = x.PBD.get_device_config(pbd)
        sr_uuid = x.SR.get_uuid(x.PBD.get_SR(pbd))
        for k in ("path", "location"):
            if k in dc:
                assert dc[k] == os.path.join(srv.data_dir, "sr", sr_uuid), dc
    # The root password is the target's own (it is not in the database).
    XenAPI.Session(again.url).xenapi.login_with_password("root", PASSWORD)


def test_xe_pool_dump_and_restore_database(source, target, tmp_path):
    want = contents(source.session().xenapi)
    f = str(tmp_path / "pool.db")
    r = xe(source, "pool-dump-database", "file-name=" + f)
    assert r.returncode == 0, r.stderr
    assert open(f, "rb").read().startswith(b"xapi-rs database dump v1\n")
    srv = target[0]
    r = xe(srv, "pool-restore-database", "file-name=" + f)
    assert r.returncode != 0 and "--force" in r.stdout + r.stderr, (r.stdout, r.stderr)
    r = xe(srv, "pool-restore-database", "file-name=" + f, "dry-run=true")
    assert r.returncode == 0 and "Dry-run backup restore successful" in r.stdout, (r.stdout, r.stderr)
    bad = tmp_path / "bad.db"
    data = bytearray(open(f, "rb").read())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    r = xe(srv, "pool-restore-database", "file-name=" + str(bad), "--force")
    assert r.returncode != 0 and "may be damaged" in r.stderr, (r.stdout, r.stderr)
    r = xe(srv, "pool-restore-database", "file-name=" + f, "--force")
    assert r.returncode == 0, (r.stdout, r.stderr)
    restarted_with(srv, want)


def test_restore_of_a_stream_shorter_than_its_length(source, target):
    """Xen Orchestra uploads streams of unknown size with a huge
    Content-Length and closes early: what came is the dump (a dry run here)."""
    import socket as so
    _, _, dump = source.post("/pool/xmldbdump", b"", AUTH, method="GET")
    srv = target[0]
    x = srv.session().xenapi
    task = x.task.create("restore", "")
    c = srv.connection()
    c.putrequest("PUT", "/pool/xmldbdump?dry_run=true&task_id=" + task)
    for k, v in AUTH.items():
        c.putheader(k, v)
    c.putheader("Content-Length", str(1 << 50))
    c.endheaders()
    c.send(dump)
    c.sock.shutdown(so.SHUT_WR)
    assert c.getresponse().status == 200
    c.close()
    deadline = time.time() + 30
    while x.task.get_status(task) == "pending" and time.time() < deadline:
        time.sleep(0.05)
    assert x.task.get_status(task) == "success", x.task.get_record(task)

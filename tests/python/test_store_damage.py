"""A damaged store never loses acknowledged writes silently.

One data dir is made once: a graceful restart puts some objects into the
snapshot, then writers create networks until the server is killed with
SIGKILL under load. Each test copies that dir, damages it one way, and checks
that xapid refuses to start (non-zero exit, a message naming the file and
the byte offset) without changing any file, and what --recover-store keeps.
A torn final write must still start with every acknowledged write."""

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import PASSWORD, XAPID, Xapid

WRITERS = 4
PER_WRITER = 400  # bound on each writer's attempts
KILL_AFTER = 240  # acknowledged writes before the SIGKILL


def db_dir(data_dir):
    return os.path.join(data_dir, "db")


def the_log(data_dir):
    logs = sorted(f for f in os.listdir(db_dir(data_dir)) if f.startswith("log-"))
    assert len(logs) == 1, logs
    return os.path.join(db_dir(data_dir), logs[0])


def frames(path):
    """(offset, length) of each record, by the lengths alone (the file is intact)."""
    data = open(path, "rb").read()
    out, i = [], 0
    while i + 12 <= len(data):
        (n,) = struct.unpack_from("<I", data, i)
        if n == 0:
            break
        out.append((i, n))
        i += 12 + n
    return out


def hashes(data_dir):
    """Every file of the data dir but the test's own log and the socket."""
    out = {}
    for root, _, files in os.walk(data_dir):
        for f in files:
            p = os.path.join(root, f)
            if f in ("xapid.log", "xapi.sock"):
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, data_dir)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def refused(data_dir):
    """Start xapid expecting a refusal; returns its stderr."""
    before = hashes(data_dir)
    args = [XAPID, "--data-dir", data_dir, "--http", "127.0.0.1:0", "--unix", os.path.join(data_dir, "x.sock"),
            "--root-password", PASSWORD]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, "xapid started on a damaged store:\n" + r.stderr
    assert "refusing to start" in r.stderr, r.stderr
    assert "--recover-store" in r.stderr, r.stderr
    assert hashes(data_dir) == before, "a refusal must leave every file as it was"
    return r.stderr


def network_names(x):
    return {x.network.get_name_label(n) for n in x.network.get_all()}


@pytest.fixture(scope="module")
def crashed():
    """A data dir with a snapshot (kept-* networks, a renamed pool) and a log
    of load-* networks, left by SIGKILL under load; and what was acknowledged."""
    srv = Xapid().start()
    x = srv.session().xenapi
    pool = x.pool.get_all()[0]
    x.pool.set_name_label(pool, "before-crash")
    for i in range(5):
        x.network.create({"name_label": "kept-%d" % i, "other_config": {}})
    pool_uuid = x.pool.get_uuid(pool)
    srv.stop()  # graceful: the snapshot now holds the above
    srv = Xapid(data_dir=srv.data_dir).start()
    acked = {w: [] for w in range(WRITERS)}
    lock = threading.Lock()
    total = [0]
    enough = threading.Event()

    def writer(w):
        x = srv.session().xenapi
        for i in range(PER_WRITER):
            if enough.is_set():
                return
            try:
                x.network.create({"name_label": "load-%d-%d" % (w, i), "other_config": {}})
            except Exception:
                return  # the server was killed mid-call
            with lock:
                acked[w].append(i)
                total[0] += 1
                if total[0] >= KILL_AFTER:
                    enough.set()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    assert enough.wait(120), "the write load did not reach %d acknowledgements" % KILL_AFTER
    srv.kill9()
    for t in threads:
        t.join(30)
    yield {"dir": srv.data_dir, "acked": acked, "pool_uuid": pool_uuid}
    shutil.rmtree(srv.data_dir, ignore_errors=True)


@pytest.fixture()
def copy(crashed):
    d = tempfile.mkdtemp(prefix="xapid-damage-")
    shutil.rmtree(d)
    shutil.copytree(crashed["dir"], d, ignore=shutil.ignore_patterns("xapi.sock", "xapid.log"))
    servers = []
    yield d, servers
    for s in servers:
        s.stop()
    shutil.rmtree(d, ignore_errors=True)


def recover(d, servers):
    s = Xapid(data_dir=d, extra_args=["--recover-store"]).start()
    servers.append(s)
    aside = [f for f in os.listdir(db_dir(d)) if f.startswith("damaged-")]
    assert len(aside) == 1, aside
    return s.session().xenapi, os.path.join(db_dir(d), aside[0])


def assert_kept_aside(before, aside_dir):
    """Every store file that was there is in the damaged-* folder, unchanged."""
    store = {k: v for k, v in before.items() if k.startswith("db" + os.sep)}
    got = {os.path.join("db", f): hashlib.sha256(open(os.path.join(aside_dir, f), "rb").read()).hexdigest()
           for f in os.listdir(aside_dir)}
    assert got == store


def test_undamaged_crash_keeps_every_acknowledged_write(crashed, copy):
    d, servers = copy
    s = Xapid(data_dir=d).start()
    servers.append(s)
    names = network_names(s.session().xenapi)
    for w, ids in crashed["acked"].items():
        missing = [i for i in ids if "load-%d-%d" % (w, i) not in names]
        assert not missing, (w, missing[:10])


def test_flipped_byte_mid_log_refuses_and_recovery_keeps_the_prefix(crashed, copy):
    d, servers = copy
    log = the_log(d)
    fr = frames(log)
    assert len(fr) > 100, len(fr)
    off, n = fr[len(fr) // 2]
    with open(log, "r+b") as f:
        f.seek(off + 12 + n // 2)
        b = f.read(1)
        f.seek(off + 12 + n // 2)
        f.write(bytes([b[0] ^ 0x10]))
    before = hashes(d)
    err = refused(d)
    assert "%s is damaged at byte offset %d" % (log, off) in err, err
    x, aside = recover(d, servers)
    assert_kept_aside(before, aside)
    names = network_names(x)
    assert {"kept-%d" % i for i in range(5)} <= names
    assert x.pool.get_uuid(x.pool.get_all()[0]) == crashed["pool_uuid"]
    # Each writer's writes were sequential: what is kept is a prefix of them,
    # and the records after the damage are gone (they are in the folder aside).
    kept = 0
    for w, ids in crashed["acked"].items():
        mine = sorted(int(nm.split("-")[2]) for nm in names if nm.startswith("load-%d-" % w))
        assert mine == list(range(len(mine))), (w, mine[:10])
        kept += len(mine)
    assert 0 < kept < sum(len(v) for v in crashed["acked"].values())


def test_deleted_snapshot_refuses_and_recovery_seeds_nothing_over_the_log(crashed, copy):
    d, servers = copy
    log = the_log(d)
    os.remove(os.path.join(db_dir(d), "snapshot"))
    before = hashes(d)
    err = refused(d)
    assert "no snapshot" in err and os.path.basename(log) in err, err
    x, aside = recover(d, servers)
    assert_kept_aside(before, aside)
    # A fresh pool, and none of the old objects mixed into it.
    assert x.pool.get_uuid(x.pool.get_all()[0]) != crashed["pool_uuid"]
    assert not {n for n in network_names(x) if n.startswith(("kept-", "load-"))}


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_lost_log_refuses_and_recovery_keeps_the_snapshot(crashed, copy, how):
    d, servers = copy
    log = the_log(d)
    if how == "deleted":
        os.remove(log)
    else:
        open(log, "wb").close()
    before = hashes(d)
    err = refused(d)
    if how == "deleted":
        assert "%s is missing" % log in err, err
    else:
        assert "%s is damaged at byte offset 0" % log in err, err
    x, aside = recover(d, servers)
    assert_kept_aside(before, aside)
    names = network_names(x)
    assert {"kept-%d" % i for i in range(5)} <= names
    assert not {n for n in names if n.startswith("load-")}
    pool = x.pool.get_all()[0]
    assert (x.pool.get_uuid(pool), x.pool.get_name_label(pool)) == (crashed["pool_uuid"], "before-crash")


def test_torn_final_write_still_starts_with_everything_acknowledged(crashed, copy):
    d, servers = copy
    log = the_log(d)
    off, n = frames(log)[-1]
    end = off + 12 + n
    with open(log, "r+b") as f:
        # Half of a record: its length, a checksum that cannot match, a
        # little of its payload.
        f.seek(end)
        f.write(struct.pack("<I", 4000) + b"\x01" * 8 + b"torn")
    s = Xapid(data_dir=d).start()
    servers.append(s)
    names = network_names(s.session().xenapi)
    for w, ids in crashed["acked"].items():
        missing = [i for i in ids if "load-%d-%d" % (w, i) not in names]
        assert not missing, (w, missing[:10])
    assert not [f for f in os.listdir(db_dir(d)) if f.startswith("damaged-")]

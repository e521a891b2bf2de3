"""A call that returned success survives kill -9; restarts keep state and do not re-seed."""

import threading

import pytest
import XenAPI

from conftest import Xapid, vm_ctor


@pytest.fixture()
def server():
    """A fresh server on its own data dir; the test may restart it (see restarted())."""
    first = Xapid().start()
    servers = [first]
    yield servers
    for s in reversed(servers):
        s.stop()
    first.cleanup()


def restarted(servers, kill=False):
    old = servers[-1]
    if kill:
        old.kill9()
    else:
        old.stop()
    new = Xapid(data_dir=old.data_dir).start()
    servers.append(new)
    return new


def snapshot_state(x):
    pool = x.pool.get_all()[0]
    templates = x.VM.get_all_where('field "is_a_template"="true"')
    return {
        "pool_uuid": x.pool.get_uuid(pool),
        "host_uuids": sorted(x.host.get_uuid(h) for h in x.host.get_all()),
        "templates": len(templates),
        "template_names": sorted(x.VM.get_name_label(t) for t in templates),
        "vms": len(x.VM.get_all()),
        "srs": sorted(x.SR.get_uuid(s) for s in x.SR.get_all()),
        "networks": sorted(x.network.get_uuid(n) for n in x.network.get_all()),
        "pifs": len(x.PIF.get_all()),
        "pbds": len(x.PBD.get_all()),
        "sms": len(x.SM.get_all()),
        "host_cpus": len(x.host_cpu.get_all()),
        "consoles": len(x.console.get_all()),
        "default_sr": x.pool.get_default_SR(pool),
    }


def test_kill9_keeps_acknowledged_writes(server):
    s = server[0].session()
    x = s.xenapi
    pool = x.pool.get_all()[0]
    tpl = x.VM.get_by_name_label("Debian Bookworm 12")[0]
    x.VM.set_name_label(tpl, "Renamed Bookworm")
    x.pool.add_to_other_config(pool, "durable", "yes")
    net = x.network.create({"name_label": "durable-net", "MTU": "9000", "other_config": {"a": "b"}})
    gone = x.network.create({"name_label": "deleted-net", "other_config": {}})
    x.network.destroy(gone)
    vm = x.VM.create(vm_ctor(name_label="durable-vm"))
    x.VM.add_tags(vm, "t1")
    sr = x.pool.get_default_SR(pool)
    vdi = x.VDI.create({"SR": sr, "virtual_size": "1048576", "type": "user", "sharable": False,
                        "read_only": False, "other_config": {}, "name_label": "durable-vdi"})
    before = snapshot_state(x)

    new = restarted(server, kill=True)
    x = new.session().xenapi
    assert x.VM.get_name_label(tpl) == "Renamed Bookworm"
    assert x.VM.get_by_name_label("Debian Bookworm 12") == []
    assert x.pool.get_other_config(pool)["durable"] == "yes"
    rec = x.network.get_record(net)
    assert (rec["name_label"], rec["MTU"], rec["other_config"]) == ("durable-net", "9000", {"a": "b"})
    assert x.network.get_by_name_label("deleted-net") == []
    assert x.VM.get_tags(vm) == ["t1"]
    assert x.VDI.get_name_label(vdi) == "durable-vdi"
    assert vdi in x.SR.get_VDIs(sr)
    assert snapshot_state(x) == before


def test_kill9_right_after_last_write(server):
    x = server[0].session().xenapi
    pool = x.pool.get_all()[0]
    for i in range(50):
        x.pool.set_name_description(pool, "write-%d" % i)
    new = restarted(server, kill=True)
    x = new.session().xenapi
    assert x.pool.get_name_description(pool) == "write-49"


def test_kill9_concurrent_writers(server):
    srv = server[0]
    pool = srv.session().xenapi.pool.get_all()[0]
    acked = {}
    lock = threading.Lock()

    def writer(n):
        x = srv.session().xenapi
        for i in range(20):
            key = "w%d-%d" % (n, i)
            x.pool.add_to_other_config(pool, key, str(i))
            with lock:
                acked[key] = str(i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    new = restarted(server, kill=True)
    oc = new.session().xenapi.pool.get_other_config(pool)
    missing = {k for k in acked if oc.get(k) != acked[k]}
    assert not missing, sorted(missing)[:10]


def test_graceful_restart_keeps_state_and_does_not_reseed(server):
    x = server[0].session().xenapi
    before = snapshot_state(x)
    pool = x.pool.get_all()[0]
    x.pool.set_name_label(pool, "kept")
    new = restarted(server)
    x = new.session().xenapi
    assert x.pool.get_all() == [pool]
    assert x.pool.get_name_label(pool) == "kept"
    assert snapshot_state(x) == before
    # And once more, through a kill -9 this time.
    new = restarted(server, kill=True)
    x = new.session().xenapi
    assert snapshot_state(x) == before


def test_restart_keeps_refs_and_uuids(server):
    x = server[0].session().xenapi
    recs = {r: v["uuid"] for r, v in x.VM.get_all_records().items()}
    new = restarted(server)
    x = new.session().xenapi
    assert {r: v["uuid"] for r, v in x.VM.get_all_records().items()} == recs


def test_restart_keeps_root_password(server):
    new = restarted(server)
    s = new.session()  # logs in with the fixture password
    assert s.xenapi.pool.get_all()
    bad = XenAPI.Session(new.url)
    with pytest.raises(XenAPI.Failure):
        bad.xenapi.login_with_password("root", "wrong")


def test_events_after_restart(server):
    new = restarted(server)
    x = new.session().xenapi
    r = x.event_from(["*"], "", 0.0)
    assert {e["operation"] for e in r["events"]} == {"add"}
    assert {e["ref"] for e in r["events"] if e["class"] == "vm"} == set(x.VM.get_all())
    tok = r["token"]
    pool = x.pool.get_all()[0]
    x.pool.add_to_other_config(pool, "after", "1")
    r2 = x.event_from(["pool"], tok, 5.0)
    assert [(e["class"], e["operation"]) for e in r2["events"]] == [("pool", "mod")]
    assert r2["token"] > tok


@pytest.mark.parametrize("kill", [False, True])
def test_token_from_before_restart_still_valid(server, kill):
    x = server[0].session().xenapi
    pool = x.pool.get_all()[0]
    x.pool.add_to_other_config(pool, "pre", "1")
    tok = x.event_from(["*"], "", 0.0)["token"]
    new = restarted(server, kill=kill)
    x = new.session().xenapi
    # The only change a start makes is the agent's start time on the host
    # (whole seconds, as xapi records it on every start): no event when the
    # restart fell within the same second.
    host = x.host.get_all()[0]

    def changes(since):
        return [(e["class"], e["operation"], e["ref"]) for e in x.event_from(["*"], since, 0.0)["events"]
                if (e["class"], e["ref"]) != ("host", host)]
    assert changes(tok) == []
    x.pool.add_to_other_config(pool, "post", "1")
    assert changes(tok) == [("pool", "mod", pool)]
    r = x.event_from(["*"], tok, 0.0)
    assert r["token"] > tok

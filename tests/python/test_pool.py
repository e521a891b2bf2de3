"""Pools of hosts (issue 16): join, HOST_IS_SLAVE and forwarding, clients that
follow it, liveness, failover under write load, a cut link, designating a new
master, eject, VM.start_on a member, and joins xapi refuses.

Every test builds its own lab (poollab.py): each host a xapid in a network
namespace of its own on a bridge in a hub namespace, reached from here through
loopback relays, so a call is an ordinary remote TCP client. The lab is torn
down (every xapid stopped, every namespace deleted) whatever the outcome.
Every wait has a deadline. Needs root; skipped without it on a developer's
machine, a failure under CI.

Error codes and orders are xapi's (ocaml/xapi/xapi_pool.ml pre_join_checks,
api_server.ml, xapi_session.ml); see the notes in the module's helpers."""

import http.client
import json
import os
import subprocess
import threading
import time

import pytest
import XenAPI

from conftest import PASSWORD, ROOT, require_tool, vm_ctor
from poollab import HUB_ADDRESS, client, in_netns, ip, lab, leftovers
import vmlib

NODE_DIR = os.path.join(ROOT, "tests", "node")
JOIN_TIMEOUT = 120      # a pool.join call must return within this
JOINED_TIMEOUT = 60     # ... and the member must act as one within this after it returned
LIVENESS_TIMEOUT = 30   # host_metrics.live follows a host's death or return within this
FAILOVER_TIMEOUT = 20   # a new master answers within this after the old one is killed (issue: "seconds")


# ---------------------------------------------------------------- helpers

def bounded(fn, *args, timeout=JOIN_TIMEOUT, what=None):
    """Call fn(*args) on a thread and wait at most `timeout` seconds for it;
    its result is returned and its exception raised here."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: B902 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("%s did not return within %ss" % (what or fn, timeout))
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_for(fn, timeout, what):
    return vmlib.wait_for(fn, timeout, what, interval=0.25)


def failure_of(fn, *args, timeout=JOIN_TIMEOUT):
    """The XenAPI.Failure details of fn(*args) (bounded), failing the test if it succeeds."""
    try:
        bounded(fn, *args, timeout=timeout)
    except XenAPI.Failure as e:
        return e.details
    raise AssertionError("%s%r succeeded; an error was expected" % (fn, args))


def is_slave_of(host, master):
    return host.login_error() == ["HOST_IS_SLAVE", master.address]


def is_master(host):
    return host.login_error() is None


def join(member, master):
    """pool.join on `member` (a session on the joiner) to `master`'s address, as
    xe pool-join does; then wait until the member answers HOST_IS_SLAVE naming
    the master and the master lists it. Returns a session on the master."""
    api = member.session().xenapi
    bounded(api.pool.join, master.address, "root", PASSWORD, what="pool.join")
    wait_for(lambda: is_slave_of(member, master), JOINED_TIMEOUT,
             "%s to answer HOST_IS_SLAVE [%s]" % (member.name, master.address))
    s = master.session()
    wait_for(lambda: member.address in addresses(s.xenapi), JOINED_TIMEOUT,
             "%s to list %s" % (master.name, member.name))
    return s


def send(host, method, path, body=None, timeout=60):
    """One plain HTTP request to a lab host: (status, Location, body)."""
    c = http.client.HTTPConnection("127.0.0.1", host.port, timeout=timeout)
    c.request(method, path, body=body, headers={"Content-Length": str(len(body))} if body else {})
    r = c.getresponse()
    out = (r.status, r.getheader("location"), r.read())
    c.close()
    return out


def diskless(api, name):
    """A VM with no disk of its own (its CD is on the pool's tools SR, which
    every host reaches): it can run on any host of the pool."""
    vm = vmlib.install(api, name, provision=False)
    api.VM.set_is_a_template(vm, False)
    return vm


def addresses(api):
    return sorted(r["address"] for r in api.host.get_all_records().values())


def host_by_address(api, address):
    (ref,) = [r for r, h in api.host.get_all_records().items() if h["address"] == address]
    return ref


def live(api, address):
    """host_metrics.live of the host with `address`, as the master records it."""
    return api.host_metrics.get_live(api.host.get_metrics(host_by_address(api, address)))


def state(host):
    """(pool uuid, master's uuid, host count) as the host itself reports it (it must be a master)."""
    api = host.session().xenapi
    try:
        (pool,) = api.pool.get_all()
        return (api.pool.get_uuid(pool), api.host.get_uuid(api.pool.get_master(pool)), len(api.host.get_all()))
    finally:
        api.session.logout()


@pytest.fixture
def lab2():
    with lab(2) as l:
        yield l


@pytest.fixture
def lab3():
    with lab(3) as l:
        yield l


@pytest.fixture
def lab6():
    with lab(6) as l:
        yield l


@pytest.fixture
def pool2(lab2):
    """host2 joined to host1. Yields (lab, master session api)."""
    master, member = lab2.hosts
    s = join(member, master)
    yield lab2, s.xenapi


@pytest.fixture
def pool3(lab3):
    """host2 and host3 joined to host1. Yields (lab, master session api)."""
    master, h2, h3 = lab3.hosts
    join(h2, master)
    s = join(h3, master)
    yield lab3, s.xenapi


# ---------------------------------------------------------------- the lab itself

def root_links():
    """The names of this machine's own links (other users of the machine may
    add their own meanwhile: compare only the names a lab would use)."""
    return {l["ifname"] for l in json.loads(ip("-j", "link", "show").stdout)}


def lab_names(names):
    return sorted(n for n in names if n.startswith("vh") or n in ("br0", "eth0") or n.startswith("pl"))


def test_lab_hosts_answer_on_their_own_addresses():
    """The lab works against any xapid: three hosts, each a master of its own
    pool, each reporting its lab address; TCP (HTTP and HTTPS, through the
    relays), the Unix socket and a client inside the hub all reach them; and
    nothing is made in this machine's own namespace."""
    before = root_links()
    with lab(3) as l:
        assert lab_names(root_links() - before) == [], "the lab touched the root namespace"
        pools = set()
        for h in l.hosts:
            api = h.session().xenapi
            (me,) = api.host.get_all()
            rec = api.host.get_record(me)
            assert (rec["address"], rec["hostname"]) == (h.address, h.name)
            (pool,) = api.pool.get_all()
            pools.add(api.pool.get_uuid(pool))
            pifs = [p for p in api.PIF.get_all_records().values() if p["device"] == "eth0"]
            assert [p["IP"] for p in pifs] == [h.address]
            tls = client(h.https_url)
            tls.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest-pool")
            assert tls.xenapi.host.get_all() == [me]
            assert h.local().xenapi.host.get_all() == [me]
        assert len(pools) == 3

        def from_hub(url):
            s = client(url, 10)
            s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest-pool")
            return s.xenapi.host.get_record(s.xenapi.host.get_all()[0])["hostname"]

        assert [l.in_hub(from_hub, h.lab_url) for h in l.hosts] == ["host1", "host2", "host3"]
        assert l.hub_run(["ping", "-c", "1", "-W", "2", l.hosts[2].address]).returncode == 0
        # Host to host, as a joiner reaches its master.
        assert subprocess.run(["ip", "netns", "exec", l.hosts[0].netns, "ping", "-c", "1", "-W", "2",
                               l.hosts[1].address], capture_output=True).returncode == 0
        # A host's link down cuts it off; up again, it is back.
        l.hosts[2].link(False)
        assert l.hub_run(["ping", "-c", "1", "-W", "1", l.hosts[2].address]).returncode != 0
        l.hosts[2].link(True)
        wait_for(lambda: l.hub_run(["ping", "-c", "1", "-W", "1", l.hosts[2].address]).returncode == 0, 10,
                 "the link to come back")
        # kill -9 and a restart on the same data dir and address.
        h = l.hosts[1]
        uuid_before = h.session().xenapi.host.get_uuid(h.session().xenapi.host.get_all()[0])
        h.kill9()
        assert h.login_error()[0] == "DOWN"
        h.start()
        api = h.session().xenapi
        assert api.host.get_uuid(api.host.get_all()[0]) == uuid_before
        # The hub's own address on the bridge (clients run there).
        assert HUB_ADDRESS in l.hub_run(["ip", "-4", "addr", "show", "br0"]).stdout
    assert leftovers() == []
    assert lab_names(root_links() - before) == []


# ---------------------------------------------------------------- join

def test_join_three_hosts_the_master_sees_everything(lab3):
    """Two hosts join a third: the master lists all three, is the pool's master,
    and holds the members' PIFs (on the pool network of the same bridge, as
    xapi matches physical networks), their local SRs with PBDs on them, their
    control domains and the halted VMs they had; the tools SR stays one."""
    master, h2, h3 = lab3.hosts
    before = {h.name: state(h) for h in lab3.hosts}
    # A halted VM on a joiner is carried into the pool (xapi imports the
    # joiner's VM metadata at join).
    a2 = h2.session().xenapi
    a2.VM.create(vm_ctor(name_label="brought-by-host2"))
    join(h2, master)
    s = join(h3, master)
    api = s.xenapi
    hosts = api.host.get_all_records()
    assert sorted((h["hostname"], h["address"]) for h in hosts.values()) == [
        ("host1", "10.77.0.11"), ("host2", "10.77.0.12"), ("host3", "10.77.0.13")]
    (pool,) = api.pool.get_all()
    assert api.pool.get_uuid(pool) == before["host1"][0], "the pool is the master's"
    assert hosts[api.pool.get_master(pool)]["address"] == master.address
    by_addr = {h["address"]: r for r, h in hosts.items()}
    # PIFs: each host's eth0 with its address, all on the one xenbr0 network.
    pifs = [p for p in api.PIF.get_all_records().values() if p["device"] == "eth0"]
    assert sorted((p["host"], p["IP"]) for p in pifs) == sorted((by_addr[a], a) for a in by_addr)
    assert len({p["network"] for p in pifs}) == 1
    assert api.network.get_bridge(pifs[0]["network"]) == "xenbr0"
    assert all(p["management"] for p in pifs)
    # Local SRs: one per host, not shared, its PBD on that host.
    srs = api.SR.get_all_records()
    local = [r for r in srs.values() if r["type"] == "ext" and not r["shared"]]
    owners = sorted(api.PBD.get_host(r["PBDs"][0]) for r in local if len(r["PBDs"]) == 1)
    assert owners == sorted(by_addr.values()), local
    # The tools SR is the pool's one, plugged on every host.
    tools = [r for r in srs.values() if r["content_type"] == "iso" and r["shared"] and "Tools" in r["name_label"]]
    assert len(tools) == 1
    assert sorted(api.PBD.get_host(p) for p in tools[0]["PBDs"]) == sorted(by_addr.values())
    # A control domain per host, resident on it.
    vms = api.VM.get_all_records()
    doms0 = sorted(v["resident_on"] for v in vms.values() if v["is_control_domain"])
    assert doms0 == sorted(by_addr.values())
    assert [v["name_label"] for v in vms.values() if v["name_label"] == "brought-by-host2"] == ["brought-by-host2"]
    # Everyone is live; the members' host_metrics are filled in.
    for a in by_addr:
        wait_for(lambda a=a: live(api, a), LIVENESS_TIMEOUT, "%s live" % a)
    # Host CPUs of every host are visible on the master.
    cpus = api.host_cpu.get_all_records().values()
    assert {c["host"] for c in cpus} == set(by_addr.values())


def test_member_answers_host_is_slave_over_tcp(pool2):
    """After the join, every call over TCP to the member (login included,
    XML-RPC and JSON-RPC v1/v2, HTTP and HTTPS, even with a wrong password:
    xapi checks the role before the credentials) answers HOST_IS_SLAVE with
    the master's address."""
    l, api = pool2
    master, member = l.hosts
    want = ["HOST_IS_SLAVE", master.address]
    login = ["root", PASSWORD, "1.0", "pytest"]
    assert member.raw().session.login_with_password(*login) == {"Status": "Failure", "ErrorDescription": want}
    assert member.raw().session.login_with_password("root", "wrong", "1.0", "pytest")["ErrorDescription"] == want
    st, _, body = member.jsonrpc("session.login_with_password", login)
    assert st == 200 and body["error"] == want, body
    st, _, body = member.jsonrpc("session.login_with_password", login, version=2)
    assert st == 200 and body["error"]["message"] == "HOST_IS_SLAVE" and body["error"]["data"] == [master.address]
    # A session of the master's used on the member: still HOST_IS_SLAVE.
    master_session = master.session()
    r = member.raw().VM.get_all(master_session._session)
    assert r == {"Status": "Failure", "ErrorDescription": want}, r
    st, _, body = member.jsonrpc("VM.get_all", [master_session._session])
    assert body["error"] == want, body
    assert failure_of(lambda: member.session(url=member.https_url)) == want


def test_member_unix_socket_forwards_to_the_master(pool2):
    """Over the member's Unix socket (local root) the pool's objects are seen
    and made, both ways, and a write the master acknowledged is seen there
    at once."""
    l, api = pool2
    master, member = l.hosts
    made_on_master = api.VM.create(vm_ctor(name_label="made-on-master"))
    local = member.local().xenapi
    assert made_on_master in local.VM.get_all()
    assert sorted(local.VM.get_all()) == sorted(api.VM.get_all())
    assert sorted(local.host.get_all()) == sorted(api.host.get_all())
    made_on_member = local.VM.create(vm_ctor(name_label="made-on-member"))
    assert api.VM.get_name_label(made_on_member) == "made-on-member"
    local.VM.set_name_label(made_on_master, "renamed-on-member")
    assert api.VM.get_name_label(made_on_master) == "renamed-on-member"
    # What the master has just acknowledged is what the member answers at
    # once (it catches up with the master's commit point first).
    seen = []
    for i in range(20):
        api.VM.set_name_description(made_on_master, "write %d" % i)
        seen.append(local.VM.get_name_description(made_on_master))
    assert seen == ["write %d" % i for i in range(20)]
    # JSON-RPC on the Unix socket too.
    st, _, body = member.jsonrpc("session.login_with_password", ["root", "", "1.0", "x"], unix=True)
    sess = body["result"]
    st, _, body = member.jsonrpc("pool.get_all", [sess], unix=True)
    assert body["result"] == api.pool.get_all()


def test_every_member_of_a_six_host_pool_sees_what_the_master_did(lab6):
    """Six hosts: five voters and a learner, whose appends the master paces
    (it waits for nobody). Still, on every member, a write the master has
    acknowledged is what the member's Unix socket answers at once, a call
    the master sends there right after a write sees it (VM.start_on of a
    VM just made), a member's own write reads back, and an HTTP request
    there names an object just made through the master."""
    master = lab6.hosts[0]
    for h in lab6.hosts[1:]:
        s = join(h, master)
    api = s.xenapi
    sid = s._session
    for member in lab6.hosts[1:]:
        m = host_by_address(api, member.address)
        local = member.local().xenapi
        vm = api.VM.create(vm_ctor(name_label="on %s" % member.name))
        seen = []
        for i in range(10):
            api.VM.set_name_description(vm, "write %d" % i)
            seen.append(local.VM.get_name_description(vm))
        assert seen == ["write %d" % i for i in range(10)], member.name
        local.VM.set_name_description(vm, "from the member")
        assert local.VM.get_name_description(vm) == "from the member"
        assert api.VM.get_name_description(vm) == "from the member"
        fresh = diskless(api, "started on %s" % member.name)
        bounded(api.VM.start_on, fresh, m, False, False, timeout=60, what="VM.start_on")
        assert api.VM.get_resident_on(fresh) == m
        other = api.VM.create(vm_ctor(name_label="exported from %s" % member.name))
        status, _, body = send(member, "GET", "/export_metadata?ref=%s&session_id=%s" % (other, sid))
        assert status == 200, (member.name, status, body[:200])


def test_pypi_xenapi_is_told_the_master(pool2):
    """The PyPI XenAPI Session does not follow HOST_IS_SLAVE by itself (its
    _login has no such case): a login on the member raises
    Failure(['HOST_IS_SLAVE', master]) and a script logs in again at that
    address, as the SDK guide's examples do. Run inside the hub, where the
    master's lab address is reachable."""
    l, _ = pool2
    master, member = l.hosts

    def follow():
        s = client(member.lab_url, 20)
        try:
            s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
            return ("logged in on the member", None)
        except XenAPI.Failure as e:
            first = e.details
        s = client("http://%s" % first[1], 20)
        s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
        return first, len(s.xenapi.host.get_all())

    first, count = l.in_hub(follow)
    assert first == ["HOST_IS_SLAVE", master.address]
    assert count == 2


def test_npm_xen_api_follows_host_is_slave(pool2):
    """npm xen-api, connected to the member's lab address (from inside the hub),
    follows HOST_IS_SLAVE and ends up connected to the master."""
    l, api = pool2
    master, member = l.hosts
    node = require_tool("node")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "xen-api")):
        if os.environ.get("CI"):
            pytest.fail("tests/node/node_modules is not installed (npm ci in tests/node) and CI is set")
        pytest.skip("tests/node/node_modules not installed (npm ci in tests/node)")
    for url in (member.lab_url, "https://%s" % member.address):
        p = l.hub_run([node, os.path.join("bin", "pool-follow.mjs"), url, "root", PASSWORD, "30000"],
                      cwd=NODE_DIR, timeout=60)
        assert p.returncode == 0, (url, p.stdout, p.stderr)
        got = json.loads(p.stdout)
        assert got["hostname"] == master.address, got
        assert got["hosts"] == 2 and got["master_address"] == master.address, got
        (pool,) = api.pool.get_all()
        assert got["pool_uuid"] == api.pool.get_uuid(pool)


def sdk_example():
    """The Rust SDK's `blocking` example (it logs in and lists VMs):
    XENAPI_BLOCKING_EXAMPLE, or target/debug/examples/blocking, built with
    `cargo build -p xenapi --features blocking --example blocking`."""
    path = os.environ.get("XENAPI_BLOCKING_EXAMPLE", os.path.join(ROOT, "target", "debug", "examples", "blocking"))
    if not os.access(path, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("%s is not built and CI is set" % path)
        pytest.skip("%s not built (cargo build -p xenapi --features blocking --example blocking)" % path)
    return path


def test_rust_sdk_follows_host_is_slave(pool2):
    """The Rust SDK (crates/xenapi) logging in at the member's lab address
    follows HOST_IS_SLAVE: the blocking example lists the pool's VMs, which
    only the master can answer over TCP."""
    l, api = pool2
    master, member = l.hosts
    example = sdk_example()
    api.VM.create(vm_ctor(name_label="seen-through-the-sdk"))
    # Plain HTTP only: the example has no way to accept the self-signed certificate.
    p = l.hub_run([example, member.lab_url, "root", PASSWORD], timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "seen-through-the-sdk" in p.stdout, p.stdout


# ---------------------------------------------------------------- liveness

def test_killed_member_is_marked_dead_and_comes_back(pool3):
    """kill -9 a member: within 30 s the master shows host_metrics.live false
    for it (the other hosts stay live); restarted, it is live again within
    30 s and answers HOST_IS_SLAVE, with nobody calling anything."""
    l, api = pool3
    master, h2, h3 = l.hosts
    wait_for(lambda: live(api, h3.address), LIVENESS_TIMEOUT, "host3 live")
    h3.kill9()
    t0 = time.time()
    wait_for(lambda: not live(api, h3.address), LIVENESS_TIMEOUT, "host3 marked not live")
    assert time.time() - t0 <= LIVENESS_TIMEOUT
    assert live(api, h2.address) and live(api, master.address)
    h3.start()
    wait_for(lambda: live(api, h3.address), LIVENESS_TIMEOUT, "host3 live again")
    assert is_slave_of(h3, master)
    assert len(api.host.get_all()) == 3


def test_member_cut_off_is_marked_dead_and_comes_back(pool3):
    """Set a member's only link down in its namespace: marked not live within
    30 s; link up again: live again within 30 s."""
    l, api = pool3
    master, h2, h3 = l.hosts
    wait_for(lambda: live(api, h2.address), LIVENESS_TIMEOUT, "host2 live")
    h2.link(False)
    try:
        wait_for(lambda: not live(api, h2.address), LIVENESS_TIMEOUT, "host2 marked not live")
        assert live(api, h3.address)
    finally:
        h2.link(True)
    wait_for(lambda: live(api, h2.address), LIVENESS_TIMEOUT, "host2 live again")
    assert is_slave_of(h2, master)


# ---------------------------------------------------------------- failover

class WriteLoad(threading.Thread):
    """A bounded write load: VM.create one VM after another on whichever host
    is master (following HOST_IS_SLAVE through the relays), logging in again
    whenever a call fails (sessions do not survive a failover). Every write
    the server acknowledged is recorded by name."""

    def __init__(self, lab, limit=120.0):
        super().__init__(daemon=True)
        self.lab = lab
        self.deadline = time.time() + limit
        self.stop_ev = threading.Event()
        self.acked = []
        self.errors = []
        self.ack_times = []

    def master_api(self):
        for h in self.lab.hosts:
            if h.proc is None:
                continue
            try:
                return h.session(timeout=5).xenapi
            except XenAPI.Failure as e:
                if e.details[0] == "HOST_IS_SLAVE":
                    try:
                        return self.lab.by_address(e.details[1]).session(timeout=5).xenapi
                    except Exception as e2:  # noqa: B902 - the next round tries again
                        self.errors.append(repr(e2))
            except Exception as e:  # noqa: B902
                self.errors.append(repr(e))
        return None

    def run(self):
        api = None
        i = 0
        while not self.stop_ev.is_set() and time.time() < self.deadline:
            try:
                if api is None:
                    api = self.master_api()
                    if api is None:
                        time.sleep(0.2)
                        continue
                name = "load-%d" % i
                i += 1
                api.VM.create(vm_ctor(name_label=name))
                self.acked.append(name)
                self.ack_times.append(time.time())
            except Exception as e:  # noqa: B902 - any failure: find the master again
                self.errors.append(repr(e))
                api = None
                time.sleep(0.1)

    def stop(self):
        self.stop_ev.set()
        self.join(30)
        assert not self.is_alive(), "the write load did not stop"


def test_kill_master_under_write_load(pool3):
    """kill -9 the master while a client writes: one of the two members
    answers as master within seconds (the other one's HOST_IS_SLAVE names
    it), every write the old master acknowledged is on the new one, writes
    go on there, and the old master, restarted, comes back as a member."""
    l, api = pool3
    old, h2, h3 = l.hosts
    (pool,) = api.pool.get_all()
    pool_uuid = api.pool.get_uuid(pool)
    load = WriteLoad(l)
    load.start()
    try:
        wait_for(lambda: len(load.acked) >= 20, 30, "20 acknowledged writes before the failover")
        old.kill9()
        killed_at = time.time()

        def new_master():
            for a, b in ((h2, h3), (h3, h2)):
                if is_master(a) and is_slave_of(b, a):
                    return a
            return None

        new = wait_for(new_master, FAILOVER_TIMEOUT, "a new master among host2 and host3")
        took = time.time() - killed_at
        n = len(load.acked)
        wait_for(lambda: len(load.acked) >= n + 10, 30, "writes to go on after the failover")
    finally:
        load.stop()
    api2 = new.session().xenapi
    names = {v["name_label"] for v in api2.VM.get_all_records().values()}
    lost = [n for n in load.acked if n not in names]
    assert lost == [], "acknowledged writes lost: %s" % lost
    (pool2,) = api2.pool.get_all()
    assert api2.pool.get_uuid(pool2) == pool_uuid
    assert api2.host.get_address(api2.pool.get_master(pool2)) == new.address
    assert len(api2.host.get_all()) == 3
    # The old master, restarted on its data, is a member of the new master.
    old.start()
    wait_for(lambda: is_slave_of(old, new), 30, "the old master to come back as a member")
    wait_for(lambda: live(api2, old.address), LIVENESS_TIMEOUT, "the old master live again")
    print("failover took %.1f s; %d writes acknowledged" % (took, len(load.acked)))


# ---------------------------------------------------------------- designate, eject

def test_designate_new_master(pool3):
    """pool.designate_new_master(host2): within seconds host2 is master, the
    old master and host3 answer HOST_IS_SLAVE naming it; the pool, its hosts
    and its objects are the same."""
    l, api = pool3
    old, h2, h3 = l.hosts
    (pool,) = api.pool.get_all()
    pool_uuid = api.pool.get_uuid(pool)
    vm = api.VM.create(vm_ctor(name_label="before-the-handover"))
    bounded(api.pool.designate_new_master, host_by_address(api, h2.address), timeout=60,
            what="pool.designate_new_master")
    wait_for(lambda: is_master(h2) and is_slave_of(old, h2) and is_slave_of(h3, h2), 30,
             "host2 master, host1 and host3 its members")
    api2 = h2.session().xenapi
    (p,) = api2.pool.get_all()
    assert api2.pool.get_uuid(p) == pool_uuid
    assert api2.host.get_address(api2.pool.get_master(p)) == h2.address
    assert addresses(api2) == ["10.77.0.11", "10.77.0.12", "10.77.0.13"]
    assert api2.VM.get_name_label(vm) == "before-the-handover"
    api2.VM.set_name_label(vm, "after-the-handover")
    # The former master, now a member, reads its replica: the new master's
    # write reaches it within moments.
    wait_for(lambda: old.local().xenapi.VM.get_name_label(vm) == "after-the-handover", 10,
             "the former master to see the new master's write")


def test_eject_member(pool3):
    """pool.eject(host3) on the master: host3 leaves host.get_all at once;
    within 30 s host3 answers as a single-host pool of its own (a new pool
    uuid), with the same root password; the rest of the pool is intact."""
    l, api = pool3
    master, h2, h3 = l.hosts
    (pool,) = api.pool.get_all()
    pool_uuid = api.pool.get_uuid(pool)
    h3_uuid = api.host.get_uuid(host_by_address(api, h3.address))
    bounded(api.pool.eject, host_by_address(api, h3.address), timeout=60, what="pool.eject")
    wait_for(lambda: h3.address not in addresses(api), 10, "host3 gone from host.get_all")
    assert addresses(api) == ["10.77.0.11", "10.77.0.12"]
    wait_for(lambda: is_master(h3), 30, "host3 to answer as a master of its own")
    st = state(h3)
    assert st[0] != pool_uuid and st[2] == 1, st
    a3 = h3.session().xenapi
    (me,) = a3.host.get_all()
    assert a3.host.get_address(me) == h3.address
    del h3_uuid
    assert is_slave_of(h2, master)
    assert state(master)[0] == pool_uuid


def test_eject_refusals(pool2):
    """Ejecting the master is refused (xapi raises Cannot_eject_master, an
    INTERNAL_ERROR; xapi-rs may name it more precisely, but it must fail and
    change nothing); so is ejecting a member with a running VM
    (OPERATION_NOT_ALLOWED ["VM resident on host"])."""
    l, api = pool2
    master, member = l.hosts
    details = failure_of(api.pool.eject, host_by_address(api, master.address), timeout=30)
    assert details[0] in ("INTERNAL_ERROR", "HOST_CANNOT_DESTROY_SELF", "OPERATION_NOT_ALLOWED"), details
    vm = diskless(api, "pinned")
    bounded(api.VM.start_on, vm, host_by_address(api, member.address), False, False, timeout=60)
    assert failure_of(api.pool.eject, host_by_address(api, member.address), timeout=30) == \
        ["OPERATION_NOT_ALLOWED", "VM resident on host"]
    assert addresses(api) == ["10.77.0.11", "10.77.0.12"]
    assert is_slave_of(member, master)


# ---------------------------------------------------------------- the hosts' own channel

ENGINE_PORT = 8998   # xapid's default --pool-port


def engine_certificate(address):
    """The certificate (DER) a host presents on its pool port; the TLS
    client checks nothing (a stranger's view)."""
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, ENGINE_PORT), timeout=10) as raw:
        with ctx.wrap_socket(raw) as t:
            return t.getpeercert(binary_form=True), t.version()


def plain_answer(address, port, request):
    """What a host answers to `request` sent in clear on `port` (b"" when
    it closes without a word)."""
    import socket
    with socket.create_connection((address, port), timeout=10) as c:
        c.sendall(request)
        got = b""
        try:
            while True:
                b = c.recv(4096)
                if not b:
                    break
                got += b
        except (socket.timeout, ConnectionResetError):
            pass
        return got


def test_hosts_talk_tls_with_the_pools_certificates(pool2):
    """The pool database's port speaks only TLS 1.3, each host presenting
    the internal certificate its `host_internal` Certificate row names (the
    only ones the other hosts accept); plain HTTP there gets no answer, and
    the master refuses a join request in clear (it carries a password)."""
    import hashlib
    l, api = pool2
    certs = api.Certificate.get_all_records().values()
    for h in l.hosts:
        der, version = in_netns(l.hub, engine_certificate, h.address)
        assert version == "TLSv1.3", version
        fp = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
        href = host_by_address(api, h.address)
        internal = [c["fingerprint"] for c in certs if c["host"] == href and c["type"] == "host_internal"]
        assert internal == [fp], (h.name, internal, fp)
        # Not the HTTPS certificate the user may replace.
        server = [c["fingerprint"] for c in certs if c["host"] == href and c["type"] == "host"]
        assert server and server != internal
    master = l.hosts[0]
    secret_less = b"POST /pool/point HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    got = in_netns(l.hub, plain_answer, master.address, ENGINE_PORT, secret_less)
    assert not got.startswith(b"HTTP/"), got[:200]
    join_in_clear = b"POST /pool/join HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    got = in_netns(l.hub, plain_answer, master.address, 80, join_in_clear)
    assert got.startswith(b"HTTP/1.1 403"), got[:200]


def test_host_messages_run_on_the_host_they_name(pool2):
    """Called on the master, the host messages that act on a host (its HTTPS
    and internal certificates, its agent) run on the host they name, as
    xapi forwards them: before, the master answered for itself.
    host.refresh_server_certificate gives a member a new internal
    certificate, which it presents from then on, and the pool goes on."""
    import hashlib
    l, api = pool2
    master, member = l.hosts
    hm, hs = host_by_address(api, master.address), host_by_address(api, member.address)

    def fingerprint_of(pem):
        import ssl
        return ":".join("%02X" % b for b in hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest())

    def rows(h, ty):
        return sorted(c["fingerprint"] for c in api.Certificate.get_all_records().values()
                      if c["host"] == h and c["type"] == ty)

    # Each host's HTTPS certificate, as its own row describes it.
    for h in (hm, hs):
        assert [fingerprint_of(api.host.get_server_certificate(h))] == rows(h, "host")
    assert rows(hm, "host") != rows(hs, "host")
    # A reset names the member's and changes only it.
    before = {h: rows(h, "host") for h in (hm, hs)}
    api.host.reset_server_certificate(hs)
    assert rows(hm, "host") == before[hm]
    assert rows(hs, "host") != before[hs]
    assert [fingerprint_of(api.host.get_server_certificate(hs))] == rows(hs, "host")
    # A new internal certificate for the member: it presents it on its
    # pool port, the pool's row names it, and writes still reach it.
    internal = {h: rows(h, "host_internal") for h in (hm, hs)}
    api.host.refresh_server_certificate(hs)
    assert rows(hm, "host_internal") == internal[hm]
    new = rows(hs, "host_internal")
    assert len(new) == 1 and new != internal[hs], (new, internal[hs])
    der, _ = in_netns(l.hub, engine_certificate, member.address)
    assert ":".join("%02X" % b for b in hashlib.sha256(der).digest()) == new[0]
    api.pool.set_name_description(api.pool.get_all()[0], "after the refresh")
    local = member.local().xenapi
    assert local.pool.get_name_description(local.pool.get_all()[0]) == "after the refresh"
    # And the master's own, from the master: the member still takes writes.
    api.host.refresh_server_certificate(hm)
    assert rows(hm, "host_internal") != internal[hm]
    vm = diskless(api, "after both refreshes")
    bounded(api.VM.start_on, vm, hs, False, False, timeout=60, what="VM.start_on the member")
    bounded(api.VM.hard_shutdown, vm, timeout=60)
    # Restart the member's agent: its agent_start_time moves, not the master's.
    start = {h: float(api.host.get_other_config(h)["agent_start_time"]) for h in (hm, hs)}
    time.sleep(1.1)  # one-second resolution
    api.host.restart_agent(hs)
    wait_for(lambda: float(api.host.get_other_config(hs)["agent_start_time"]) > start[hs], 60,
             "the member's agent to restart")
    assert float(api.host.get_other_config(hm)["agent_start_time"]) == start[hm]
    wait_for(lambda: live(api, member.address), 60, "the restarted member to be live")


# ---------------------------------------------------------------- VM.start_on

def test_vm_start_on_a_member(pool2):
    """VM.start_on(vm, member) called on the master runs the VM on the member:
    resident_on is the member, and the member's Unix socket sees the same."""
    l, api = pool2
    master, member = l.hosts
    m = host_by_address(api, member.address)
    # A disk on the master's local SR: the member cannot reach it (xapi's
    # VM_REQUIRES_SR names the VM and the SR).
    local_disk = vmlib.install(api, "disk-on-the-master")
    d = failure_of(api.VM.start_on, local_disk, m, False, False, timeout=60)
    assert d[0] == "VM_REQUIRES_SR" and d[1] == local_disk, d
    vm = diskless(api, "on-the-member")
    free = lambda: int(api.host.compute_free_memory(m))  # noqa: E731
    free0 = free()
    # Joining costs a member none of its memory: what it had as a lone
    # host (the machine's, less its own and its control domain's).
    for h in (m, host_by_address(api, master.address)):
        metrics = api.host_metrics.get_record(api.host.get_metrics(h))
        dom0 = api.host.get_control_domain(h)
        own = int(api.VM.get_memory_static_max(dom0))
        assert int(metrics["memory_free"]) == int(metrics["memory_total"]) - own, (metrics, own)
    bounded(api.VM.start_on, vm, m, False, False, timeout=60, what="VM.start_on")
    assert api.VM.get_power_state(vm) == "Running"
    # The member's free memory moves once by what the domain holds.
    held = int(api.VM.get_memory_dynamic_max(vm)) + int(api.VM.get_memory_overhead(vm))
    assert free0 - free() == held, (free0, free(), held)
    assert api.VM.get_resident_on(vm) == m
    assert vm in api.host.get_resident_VMs(m)
    assert member.local().xenapi.VM.get_resident_on(vm) == m
    bounded(api.VM.hard_shutdown, vm, timeout=60)
    assert api.VM.get_power_state(vm) == "Halted"
    assert free() == free0
    # And back on the master.
    bounded(api.VM.start_on, vm, host_by_address(api, master.address), False, False, timeout=60)
    assert api.VM.get_resident_on(vm) == host_by_address(api, master.address)


def test_operations_of_a_member_that_dies(pool2):
    """The master holds the operation of a call it forwards (as xapi's
    master does): the member runs it without recording it again, and when
    the member dies the call fails and the operation ends at once. An
    operation the member started itself (a call on its Unix socket) stays
    in current_operations while it is gone and ends when it comes back, so
    the VM takes new operations at once (not after a conflict timeout)."""
    l, api = pool2
    master, member = l.hosts
    m = host_by_address(api, member.address)
    vm = diskless(api, "interrupted")
    api.VM.add_to_other_config(vm, "sim:delay-pause", "60000")
    bounded(api.VM.start_on, vm, m, False, False, timeout=60)
    task = api.Async.VM.pause(vm)
    wait_for(lambda: list(api.VM.get_current_operations(vm).items()) == [(task, "pause")], 20,
             "the master holding the pause under its task")
    member.kill9()
    wait_for(lambda: api.task.get_status(task) != "pending", 60, "the call to fail with the member")
    wait_for(lambda: api.VM.get_current_operations(vm) == {}, 20, "the held pause to end")
    member.start()
    wait_for(lambda: live(api, member.address), LIVENESS_TIMEOUT, "the member back")
    local = member.local().xenapi
    local.Async.VM.pause(vm)
    wait_for(lambda: list(api.VM.get_current_operations(vm).values()) == ["pause"], 20, "the member's own pause")
    member.kill9()
    time.sleep(2)
    assert list(api.VM.get_current_operations(vm).values()) == ["pause"]
    member.start()
    wait_for(lambda: api.VM.get_current_operations(vm) == {}, 60, "the member to end what it left")
    api.VM.remove_from_other_config(vm, "sim:delay-pause")
    bounded(api.VM.hard_shutdown, vm, timeout=60)
    assert api.VM.get_power_state(vm) == "Halted"


def test_member_vm_console_and_statistics(pool2):
    """A VM on a member: its console's location is the member's; the member
    takes the session the client got from the master for the console and
    the statistics (xapi's members accept the pool's sessions); the master
    sends a request for the VM's RRD to the member with a 302, as xapi
    does. After a move the console's location follows the VM."""
    import socket
    l, api = pool2
    master, member = l.hosts
    m = host_by_address(api, member.address)
    sid = master.session()._session
    vm = diskless(api, "watched")
    uuid = api.VM.get_uuid(vm)
    bounded(api.VM.start_on, vm, m, False, False, timeout=60)
    (con,) = [c for c in api.VM.get_consoles(vm) if api.console.get_protocol(c) == "rfb"]
    assert api.console.get_location(con).startswith("https://%s/console?" % member.address)

    def get(host, path):
        return send(host, "GET", path, timeout=10)
    status, location, _ = get(master, "/vm_rrd?uuid=%s&session_id=%s" % (uuid, sid))
    assert status == 302, status
    assert location == "https://%s/vm_rrd?uuid=%s&session_id=%s" % (member.address, uuid, sid), location
    wait_for(lambda: get(member, "/vm_rrd?uuid=%s&session_id=%s" % (uuid, sid))[0] == 200, 30,
             "the VM's RRD on the member, with the master's session")
    status, _, body = get(member, "/rrd_updates?start=0&host=true&session_id=%s" % sid)
    assert status == 200 and b"<xport>" in body, (status, body[:200])
    assert get(member, "/rrd_updates?start=0&session_id=OpaqueRef:bogus")[0] == 401
    with socket.create_connection(("127.0.0.1", member.port), timeout=10) as c:
        c.sendall(("CONNECT /console?uuid=%s&session_id=%s HTTP/1.0\r\n\r\n"
                   % (api.console.get_uuid(con), sid)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = c.recv(1)
            assert b, head
            head += b
        assert head.startswith(b"HTTP/1.1 200"), head
        assert c.recv(12).startswith(b"RFB 003.00")
    bounded(api.VM.pool_migrate, vm, host_by_address(api, master.address), {}, timeout=60)
    assert api.console.get_location(con).startswith("https://%s/console?" % master.address)
    bounded(api.VM.hard_shutdown, vm, timeout=60)


def test_transfers_of_a_members_local_disk_go_to_the_member(pool2):
    """A disk on a member's local SR, imported and exported through the
    master: the master answers 302 naming the member (as xapi does when a
    VM's disks are only reachable on a member); there the client's session
    from the master is good, and the task the client made on the master
    follows the transfer (its progress and outcome are the member's). A
    VM export with the disk goes the same way; a task id the master does
    not know is refused on the member."""
    l, api = pool2
    master, member = l.hosts
    m = host_by_address(api, member.address)
    sid = master.session()._session
    (sr,) = [r for r, rec in api.SR.get_all_records().items()
             if not rec["shared"] and rec["content_type"] != "iso"
             and [api.PBD.get_host(p) for p in rec["PBDs"]] == [m]]
    vdi = api.VDI.create({"name_label": "member-local", "name_description": "", "SR": sr,
                          "virtual_size": str(4 << 20), "type": "user", "sharable": False, "read_only": False,
                          "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": []})
    data = bytes((i * 7 + 3) % 251 for i in range(4 << 20))

    def followed(method, path, body=None):
        """The request on the master, then where its 302 says (the member)."""
        status, location, _ = send(master, method, path, body)
        assert status == 302, status
        prefix = "https://%s" % member.address
        assert location.startswith(prefix + path.split("?")[0] + "?"), location
        return send(member, method, location[len(prefix):], body)

    task = api.task.create("upload", "to a member's disk")
    status, _, _ = followed("PUT", "/import_raw_vdi?vdi=%s&session_id=%s&task_id=%s" % (vdi, sid, task), data)
    assert status == 200, status
    wait_for(lambda: api.task.get_status(task) != "pending", 30, "the master's task to end")
    assert api.task.get_status(task) == "success", api.task.get_error_info(task)
    assert api.task.get_progress(task) == 1.0

    task = api.task.create("download", "from a member's disk")
    status, _, got = followed("GET", "/export_raw_vdi?vdi=%s&format=raw&session_id=%s&task_id=%s" % (vdi, sid, task))
    assert status == 200 and got == data, (status, len(got))
    wait_for(lambda: api.task.get_status(task) != "pending", 30, "the master's task to end")
    assert api.task.get_status(task) == "success", api.task.get_error_info(task)

    # A VM with the disk: its export is the member's too.
    vm = diskless(api, "with a member's disk")
    api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False, "mode": "RW", "type": "Disk",
                    "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    status, location, _ = send(master, "GET", "/export?ref=%s&session_id=%s" % (vm, sid))
    assert status == 302 and location.startswith("https://%s/export?" % member.address), (status, location)
    status, _, xva = send(member, "GET", "/export?ref=%s&session_id=%s" % (vm, sid))
    assert status == 200 and xva[257:262] == b"ustar", (status, xva[:300])
    # Our xe, asked of the master (from where every host's address is
    # reachable), follows the redirect to the member over TLS.
    out = os.path.join(master.data_dir, "member-disk.xva")
    r = l.hub_run([XE, "-s", master.address, "-u", "root", "-pw", PASSWORD, "vm-export",
                   "vm=%s" % api.VM.get_uuid(vm), "filename=%s" % out], env=dict(os.environ, HOME=master.data_dir))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert os.path.getsize(out) > len(data) // 2
    with open(out, "rb") as f:
        assert f.read(262)[257:262] == b"ustar"
    # No such task on the master: refused where the transfer runs.
    bogus = "OpaqueRef:00000000-0000-0000-0000-000000000000"
    status, _, _ = followed("GET", "/export_raw_vdi?vdi=%s&format=raw&session_id=%s&task_id=%s" % (vdi, sid, bogus))
    assert status >= 400, status


# ---------------------------------------------------------------- joins xapi refuses

@pytest.fixture(scope="module")
def pair():
    """Two single-host pools for the refused joins (each leaves both as they were)."""
    with lab(2, prefix="pb") as l:
        yield l


def assert_intact(l, before):
    assert {h.name: state(h) for h in l.hosts} == before


def snapshot(l):
    return {h.name: state(h) for h in l.hosts}


def test_pool_migrate_and_evacuate(pool3):
    """VM.pool_migrate moves a running VM to another host (its uptime goes
    on: VM_metrics.start_time is unchanged), there and back; nothing else
    holds the VM's domain on the way. host.evacuate of a host moves its
    running VMs off it; get_vms_which_prevent_evacuation names none."""
    l, api = pool3
    master, h2, h3 = l.hosts
    hosts = {a: host_by_address(api, a) for a in addresses(api)}
    vm = diskless(api, "traveller")
    bounded(api.VM.start_on, vm, hosts[h2.address], False, False, timeout=60)
    started = api.VM_metrics.get_start_time(api.VM.get_metrics(vm))
    bounded(api.VM.pool_migrate, vm, hosts[h3.address], {"live": "true"}, timeout=60)
    assert api.VM.get_resident_on(vm) == hosts[h3.address]
    assert api.VM.get_power_state(vm) == "Running"
    assert api.VM_metrics.get_start_time(api.VM.get_metrics(vm)) == started
    assert h3.local().xenapi.VM.get_resident_on(vm) == hosts[h3.address]
    bounded(api.VM.pool_migrate, vm, hosts[master.address], {}, timeout=60)
    assert api.VM.get_resident_on(vm) == hosts[master.address]
    # Evacuate the master's guests: they go elsewhere, still running.
    assert api.host.get_vms_which_prevent_evacuation(hosts[master.address]) == {}
    api.host.disable(hosts[master.address])
    bounded(api.host.evacuate, hosts[master.address], timeout=60)
    assert api.VM.get_resident_on(vm) in (hosts[h2.address], hosts[h3.address])
    assert api.VM.get_power_state(vm) == "Running"
    assert api.VM_metrics.get_start_time(api.VM.get_metrics(vm)) == started
    api.host.enable(hosts[master.address])
    bounded(api.VM.hard_shutdown, vm, timeout=60)
    assert api.VM.get_power_state(vm) == "Halted"


def test_migrate_send_within_the_pool(pool3):
    """host.migrate_receive gives xapi's keys; VM.assert_can_migrate and
    VM.migrate_send with it move a running VM between hosts of the pool
    (what XenCenter and XO do for a move with storage). What this pool does
    not do says NOT_IMPLEMENTED: another pool, storage motion, a halted VM."""
    l, api = pool3
    master, h2, h3 = l.hosts
    hosts = {a: host_by_address(api, a) for a in addresses(api)}
    net = api.network.get_all()[0]
    vm = diskless(api, "sent")
    assert sorted(api.VM.get_possible_hosts(vm)) == sorted(hosts.values())
    dest = api.host.migrate_receive(hosts[h3.address], net, {})
    assert set(dest) >= {"host", "session_id", "master", "xenops", "SM"}, dest
    assert dest["host"] == hosts[h3.address] and master.address in dest["master"]
    assert failure_of(api.host.migrate_receive, hosts[h3.address], "OpaqueRef:nope", {})[0] == "HANDLE_INVALID"
    err = failure_of(api.VM.migrate_send, vm, dest, True, {}, {}, {}, {})
    assert err[0] == "NOT_IMPLEMENTED", err
    bounded(api.VM.start_on, vm, hosts[h2.address], False, False, timeout=60)
    started = api.VM_metrics.get_start_time(api.VM.get_metrics(vm))
    api.VM.assert_can_migrate(vm, dest, True, {}, {}, {}, {})
    other = dict(dest, host="OpaqueRef:00000000-0000-0000-0000-00000000beef")
    assert failure_of(api.VM.assert_can_migrate, vm, other, True, {}, {}, {}, {})[0] == "NOT_IMPLEMENTED"
    cd = [api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm) if api.VBD.get_VDI(b) != "OpaqueRef:NULL"]
    local = [sr for sr in api.SR.get_all() if api.SR.get_type(sr) == "ext"][0]
    if cd:
        err = failure_of(api.VM.assert_can_migrate, vm, dest, True, {cd[0]: local}, {}, {}, {})
        assert err[0] == "NOT_IMPLEMENTED" and "storage motion" in err[1], err
    assert bounded(api.VM.migrate_send, vm, dest, True, {}, {}, {}, {}, timeout=60) == vm
    assert api.VM.get_resident_on(vm) == hosts[h3.address]
    assert api.VM.get_power_state(vm) == "Running"
    assert api.VM_metrics.get_start_time(api.VM.get_metrics(vm)) == started
    bounded(api.VM.hard_shutdown, vm, timeout=60)


def test_shared_file_sr_and_a_move_with_its_disk():
    """A shared "file" SR (one directory every host reaches) made on the
    master gets a PBD on each host, each attached by its own host; a host
    that joins later gets one too. A VM whose disk is on it starts on a
    member and moves to another host with VM.pool_migrate; its uptime goes on."""
    import shutil
    import tempfile
    shared = tempfile.mkdtemp(prefix="xapi-shared-sr-")
    try:
        with lab(3, extra_args=["--sr-root", shared]) as l:
            master, h2, h3 = l.hosts
            api = join(h2, master).xenapi
            hosts = lambda: {a: host_by_address(api, a) for a in addresses(api)}
            sr = api.SR.create(hosts()[master.address], {"location": shared}, "0", "shared", "", "file", "user",
                               True, {})
            assert api.SR.get_shared(sr) is True and api.SR.get_type(sr) == "file"

            def attached():
                pbds = [api.PBD.get_record(p) for p in api.SR.get_PBDs(sr)]
                return {api.host.get_address(p["host"]): p["currently_attached"] for p in pbds}
            assert attached() == {master.address: True, h2.address: True}
            # A bad directory: refused, nothing made.
            before = len(api.SR.get_all())
            err = failure_of(api.SR.create, hosts()[master.address], {"location": "/etc"}, "0", "bad", "", "file",
                             "user", True, {})
            assert err[0] == "SR_BACKEND_FAILURE_91", err
            assert len(api.SR.get_all()) == before
            # A later joiner reaches it too.
            api = join(h3, master).xenapi
            wait_for(lambda: attached() == {master.address: True, h2.address: True, h3.address: True}, 60,
                     "every host's PBD of the shared SR attached")
            h = hosts()
            vm = diskless(api, "shared-disk traveller")
            vdi = api.VDI.create({"name_label": "on the shared SR", "name_description": "", "SR": sr,
                                  "virtual_size": str(64 << 20), "type": "user", "sharable": False,
                                  "read_only": False, "other_config": {}, "xenstore_data": {}, "sm_config": {},
                                  "tags": []})
            api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW",
                            "type": "Disk", "unpluggable": False, "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}})
            assert any(f.startswith(api.VDI.get_location(vdi)) for f in os.listdir(shared))
            bounded(api.VM.start_on, vm, h[h2.address], False, False, timeout=60)
            started = api.VM_metrics.get_start_time(api.VM.get_metrics(vm))
            bounded(api.VM.pool_migrate, vm, h[h3.address], {"live": "true"}, timeout=60)
            assert api.VM.get_resident_on(vm) == h[h3.address]
            assert api.VM.get_power_state(vm) == "Running"
            assert api.VM_metrics.get_start_time(api.VM.get_metrics(vm)) == started
            bounded(api.VM.hard_shutdown, vm, timeout=60)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_emergency_transition_then_recover_the_old_master(pool2):
    """After pool.emergency_transition_to_master on the member, the old
    master comes back believing it is still the master; pool.recover_slaves
    on the new master tells it to follow (xapi's emergency_reset_master
    through the pool secret), and it rejoins as a member with the new
    master's database. emergency_reset_master refuses an empty address and
    the host's own."""
    l, api = pool2
    master, member = l.hosts
    vm = api.VM.create(vm_ctor(name_label="made before the emergency"))
    old = host_by_address(api, master.address)
    master.kill9()
    raw = member.raw()
    local = raw.session.slave_local_login_with_password("root", PASSWORD)["Value"]
    assert raw.pool.emergency_transition_to_master(local)["Status"] == "Success"
    wait_for(lambda: is_master(member), 30, "the member to answer as master")
    api2 = member.session().xenapi
    api2.VM.create(vm_ctor(name_label="made by the new master"))
    master.start()
    wait_for(lambda: is_master(master), 60, "the old master to come back, still a master")
    err = failure_of(api2.pool.emergency_reset_master, "")
    assert err[0] == "INVALID_VALUE", err
    err = failure_of(api2.pool.emergency_reset_master, member.address)
    assert err[0] == "OPERATION_NOT_ALLOWED", err
    assert api2.pool.recover_slaves() == [old]
    wait_for(lambda: is_slave_of(master, member), JOINED_TIMEOUT, "the old master to follow the new one")
    wait_for(lambda: live(api2, master.address), LIVENESS_TIMEOUT, "the old master live again")
    names = lambda a: {r["name_label"] for r in a.VM.get_all_records().values()}  # noqa: E731
    assert {"made before the emergency", "made by the new master"} <= names(api2)
    assert {"made before the emergency", "made by the new master"} <= names(master.local().xenapi)
    assert api2.VM.get_name_label(vm) == "made before the emergency"
    # Nobody left to recover; the xe commands.
    r = xe(member, "pool-recover-slaves")
    assert r.returncode == 0 and r.stdout.strip() == "", (r.stdout, r.stderr)
    r = xe(member, "pool-emergency-reset-master", "master-address=" + member.address)
    assert r.returncode != 0 and "cannot follow itself" in r.stderr, (r.stdout, r.stderr)


def test_emergency_transition_then_forget_the_dead_master(pool2):
    """Two hosts: the member has no vote, so when the master dies nobody is
    elected. pool.emergency_transition_to_master on the member (over TCP: an
    emergency call runs on a member) makes it the master of the same pool;
    the dead master is marked not live; host.destroy of a live host answers
    HOST_IS_LIVE, host.declare_dead then host.destroy of the dead one work."""
    l, api = pool2
    master, member = l.hosts
    (pool,) = api.pool.get_all()
    pool_uuid = api.pool.get_uuid(pool)
    vm = api.VM.create(vm_ctor(name_label="kept-through-the-emergency"))
    old = host_by_address(api, master.address)
    master.kill9()
    assert member.login_error() == ["HOST_IS_SLAVE", master.address]
    raw = member.raw()
    local = raw.session.slave_local_login_with_password("root", PASSWORD)
    assert local["Status"] == "Success", local
    r = raw.pool.emergency_transition_to_master(local["Value"])
    assert r["Status"] == "Success", r
    wait_for(lambda: is_master(member), 30, "the member to answer as master")
    api2 = member.session().xenapi
    (p,) = api2.pool.get_all()
    assert api2.pool.get_uuid(p) == pool_uuid
    assert api2.host.get_address(api2.pool.get_master(p)) == member.address
    assert api2.VM.get_name_label(vm) == "kept-through-the-emergency"
    me = host_by_address(api2, member.address)
    assert failure_of(api2.host.destroy, me, timeout=30)[0] in ("HOST_CANNOT_DESTROY_SELF", "HOST_IS_LIVE")
    wait_for(lambda: not live(api2, master.address), LIVENESS_TIMEOUT, "the dead master marked not live")
    api2.host.declare_dead(old)
    assert api2.host.get_enabled(old) is False
    api2.host.destroy(old)
    assert addresses(api2) == [member.address]


def test_join_with_a_wrong_password(pair):
    joiner, master = pair.hosts[1], pair.hosts[0]
    before = snapshot(pair)
    d = failure_of(joiner.session().xenapi.pool.join, master.address, "root", "not-the-password")
    assert d[0] == "SESSION_AUTHENTICATION_FAILED", d
    assert d[1] == "root"
    assert_intact(pair, before)


def test_join_to_an_unreachable_address(pair):
    """Nothing answers at 10.77.0.99: JOINING_HOST_CONNECTION_FAILED (xapi's
    mapping of a failed connection to the master; the CLI prints "Host cannot
    contact destination host")."""
    joiner = pair.hosts[1]
    before = snapshot(pair)
    d = failure_of(joiner.session().xenapi.pool.join, "10.77.0.99", "root", PASSWORD)
    assert d == ["JOINING_HOST_CONNECTION_FAILED"], d
    assert_intact(pair, before)


def test_join_to_itself(pair):
    """xapi: OPERATION_NOT_ALLOWED ["Host cannot become slave of itself"]."""
    joiner = pair.hosts[1]
    before = snapshot(pair)
    d = failure_of(joiner.session().xenapi.pool.join, joiner.address, "root", PASSWORD)
    assert d == ["OPERATION_NOT_ALLOWED", "Host cannot become slave of itself"], d
    assert_intact(pair, before)


def test_join_with_a_running_vm(pair):
    """xapi: JOINING_HOST_CANNOT_HAVE_RUNNING_VMS (no parameters)."""
    joiner, master = pair.hosts[1], pair.hosts[0]
    api = joiner.session().xenapi
    vm = vmlib.running(api, "keeps-running")
    try:
        before = snapshot(pair)
        d = failure_of(api.pool.join, master.address, "root", PASSWORD)
        assert d == ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"], d
        assert_intact(pair, before)
        assert api.VM.get_power_state(vm) == "Running"
    finally:
        api.VM.hard_shutdown(vm)
        api.VM.destroy(vm)


def test_second_join_and_joins_through_or_of_a_pool(lab3):
    """After host2 joined host1: joining again (pool.join on host2 through its
    Unix socket, forwarded to the master as xapi forwards) is refused with
    OPERATION_NOT_ALLOWED ["Host is already part of a pool"]; pool.join over
    TCP on host2 answers HOST_IS_SLAVE; host3 joining host2's address (a
    member) gets the member's HOST_IS_SLAVE from its login; the pool's master
    joining host3 is refused: JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS.
    Nothing changes."""
    master, h2, h3 = lab3.hosts
    s = join(h2, master)
    api = s.xenapi
    (pool,) = api.pool.get_all()
    pool_uuid = api.pool.get_uuid(pool)
    h3_before = state(h3)
    d = failure_of(h2.local().xenapi.pool.join, master.address, "root", PASSWORD)
    assert d == ["OPERATION_NOT_ALLOWED", "Host is already part of a pool"], d
    assert is_slave_of(h2, master)
    d = failure_of(h3.session().xenapi.pool.join, h2.address, "root", PASSWORD)
    assert d == ["HOST_IS_SLAVE", master.address], d
    d = failure_of(api.pool.join, h3.address, "root", PASSWORD)
    assert d == ["JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS"], d
    assert state(master) == (pool_uuid, api.host.get_uuid(host_by_address(api, master.address)), 2)
    assert state(h3) == h3_before
    assert is_slave_of(h2, master)


# ---------------------------------------------------------------- xe

XE = os.environ.get("XE_BIN", os.path.join(ROOT, "target", "debug", "xe"))


def xe(host, *args, unix=False):
    """Our xe against a lab host: over TCP through its relay (plain HTTP), or
    through its Unix socket (local root, forwarded by a member)."""
    if not os.path.exists(XE):
        if os.environ.get("CI"):
            pytest.fail("xe is missing: " + XE)
        pytest.skip("xe is not built (cargo build -p xe)")
    env = dict(os.environ, HOME=host.data_dir)
    if unix:
        env["XE_UNIX_SOCKET"] = host.sock
        argv = [XE] + list(args)
    else:
        argv = [XE, "-s", "127.0.0.1", "-p", str(host.port), "--nossl", "-u", "root", "-pw", PASSWORD] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=JOIN_TIMEOUT, env=env)


def test_xe_pool_commands(lab3):
    """xe pool-join (and its message for an unreachable master: xapi's CLI
    prints "Host cannot contact destination host: connection refused."
    rather than an error), xe on a member's Unix socket (forwarded),
    pool-designate-new-master host-uuid=, pool-eject host-uuid= --force."""
    h1, h2, h3 = lab3.hosts
    p = xe(h2, "pool-join", "master-address=" + h1.address, "master-username=root", "master-password=" + PASSWORD)
    assert p.returncode == 0, (p.stdout, p.stderr)
    wait_for(lambda: is_slave_of(h2, h1), JOINED_TIMEOUT, "host2 a member after xe pool-join")
    before = state(h3)
    p = xe(h3, "pool-join", "master-address=10.77.0.99", "master-username=root", "master-password=" + PASSWORD)
    assert "Host cannot contact destination host" in p.stdout + p.stderr, (p.stdout, p.stderr)
    assert state(h3) == before
    p = xe(h3, "pool-join", "master-address=" + h1.address, "master-username=root", "master-password=" + PASSWORD)
    assert p.returncode == 0, (p.stdout, p.stderr)
    wait_for(lambda: is_slave_of(h3, h1), JOINED_TIMEOUT, "host3 a member after xe pool-join")
    # On a member's Unix socket xe works: the calls go to the master.
    p = xe(h3, "host-list", "params=address", "--minimal", unix=True)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert sorted(p.stdout.strip().split(",")) == ["10.77.0.11", "10.77.0.12", "10.77.0.13"]
    api = h1.session().xenapi
    uuids = {a: api.host.get_uuid(host_by_address(api, a)) for a in addresses(api)}
    p = xe(h1, "pool-designate-new-master", "host-uuid=" + uuids[h2.address])
    assert p.returncode == 0, (p.stdout, p.stderr)
    wait_for(lambda: is_master(h2) and is_slave_of(h1, h2) and is_slave_of(h3, h2), 30,
             "host2 master after xe pool-designate-new-master")
    p = xe(h2, "pool-eject", "host-uuid=" + uuids[h3.address], "--force")
    assert p.returncode == 0, (p.stdout, p.stderr)
    wait_for(lambda: is_master(h3), 30, "host3 on its own after xe pool-eject")
    assert addresses(h2.session().xenapi) == ["10.77.0.11", "10.77.0.12"]
    assert state(h3)[2] == 1


# ---------------------------------------------------------------- cleanup

def test_lab_cleans_up_after_a_failure():
    """A failure inside the lab still stops every xapid and deletes every namespace."""
    procs = []
    with pytest.raises(RuntimeError):
        with lab(2, prefix="pc") as l:
            procs = [h.proc for h in l.hosts]
            raise RuntimeError("boom")
    assert all(p.poll() is not None for p in procs)
    out = ip("netns", "list").stdout
    assert not [n for n in out.split() if n.startswith("pc%d" % os.getpid())]

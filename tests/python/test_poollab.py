"""The namespace lab the pool tests (issue 16) run in: each host a xapid in a
network namespace of its own on a bridge in a hub namespace, reached from
here through loopback relays (poollab.py). These tests check the lab itself
against single hosts; the pool tests proper (join, HOST_IS_SLAVE, failover,
eject) arrive with pool.join. Needs root; skipped without it on a
developer's machine, a failure under CI."""

import json
import os
import subprocess

import pytest

from conftest import PASSWORD
from poollab import HUB_ADDRESS, client, ip, lab, leftovers
import vmlib


def wait_for(fn, timeout, what):
    return vmlib.wait_for(fn, timeout, what, interval=0.25)


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

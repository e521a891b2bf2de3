"""The host's own addresses with `xapid --backend qemu`, in network
namespaces the test makes: the host's NICs eth0 and eth1 are veths whose
peers sit in a "wire" namespace that holds the gateway (10.70.0.254 behind
eth0, 10.71.0.254 behind eth1). The machine's own interfaces are never
touched, and no guest is needed.

eth0 holds the host's address and default route when xapid starts, as on a
host installed without xapi-rs. It keeps them until an explicit
PIF.reconfigure_ip, which moves them onto the PIF's bridge (xenbr0) with the
NIC enslaved, as XenServer lays out its management interface; a laptop that
runs xapid never loses its network by itself. host.management_reconfigure and
pool.management_reconfigure then move management between PIFs."""

import json
import os
import subprocess

import pytest
import XenAPI

from conftest import Xapid, require_tool

TAG = "xrm%d" % os.getpid()
HOST_NS, WIRE_NS = TAG + "h", TAG + "w"


def sh(*cmd, ns=HOST_NS, check=True):
    full = ["ip", "netns", "exec", ns] + list(cmd)
    p = subprocess.run(full, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(full), p.stderr))
    return p.stdout


def addrs(dev):
    """The global addresses of `dev` in the host's namespace, as a/len."""
    out = json.loads(sh("ip", "-j", "addr", "show", "dev", dev) or "[]")
    return sorted("%s/%d" % (a["local"], a["prefixlen"]) for l in out for a in l.get("addr_info", [])
                  if a.get("scope") == "global")


def master(dev):
    (l,) = json.loads(sh("ip", "-j", "link", "show", "dev", dev))
    return l.get("master")


def default_routes():
    return sorted((r.get("gateway"), r.get("dev")) for r in json.loads(sh("ip", "-j", "route", "show", "default")))


def reachable(addr, ns=WIRE_NS):
    p = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "3", addr], capture_output=True)
    return p.returncode == 0


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("network namespaces need root, and CI is set")
        pytest.skip("network namespaces need root")
    require_tool("ip")
    require_tool("ping")
    for ns in (HOST_NS, WIRE_NS):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for i in (0, 1):
            subprocess.run(["ip", "link", "add", "eth%d" % i, "netns", HOST_NS, "type", "veth", "peer", "name",
                            "w%d" % i, "netns", WIRE_NS], check=True)
            sh("ip", "addr", "add", "10.7%d.0.254/24" % i, "dev", "w%d" % i, ns=WIRE_NS)
            sh("ip", "link", "set", "w%d" % i, "up", ns=WIRE_NS)
            sh("ip", "link", "set", "eth%d" % i, "up")
        sh("ip", "link", "set", "lo", "up")
        # The host as its installer left it: the address and default route on the NIC.
        sh("ip", "addr", "add", "10.70.0.1/24", "dev", "eth0")
        sh("ip", "route", "add", "default", "via", "10.70.0.254", "dev", "eth0")
        yield
    finally:
        for ns in (HOST_NS, WIRE_NS):
            subprocess.run(["ip", "netns", "del", ns])


@pytest.fixture(scope="module")
def xapid(lab):
    require_tool("qemu-system-x86_64")
    x = Xapid(netns=HOST_NS, extra_args=["--backend", "qemu", "--nics", "eth0,eth1"]).start()
    yield x
    x.cleanup()


@pytest.fixture(scope="module")
def api(xapid):
    s = xapid.session()
    # The first start made a PIF for the management NIC only.
    s.xenapi.PIF.scan(s.xenapi.host.get_all()[0])
    yield s.xenapi
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


def pif(api, device):
    (r,) = [r for r, p in api.PIF.get_all_records().items() if p["device"] == device and p["physical"]]
    return r


def bridge(api, p):
    return api.network.get_bridge(api.PIF.get_network(p))


def code(call, *args):
    with pytest.raises(XenAPI.Failure) as e:
        call(*args)
    return e.value.details


def test_a_nic_holding_the_hosts_address_is_left_alone(xapid, api):
    p0 = pif(api, "eth0")
    assert api.PIF.get_management(p0)
    assert addrs("eth0") == ["10.70.0.1/24"] and master("eth0") is None
    assert default_routes() == [("10.70.0.254", "eth0")]
    assert addrs(bridge(api, p0)) == []
    assert reachable("10.70.0.1")


def test_reconfigure_ip_moves_the_address_onto_the_bridge(xapid, api):
    p0 = pif(api, "eth0")
    br = bridge(api, p0)
    for _ in range(2):  # the second call finds everything in place
        api.PIF.reconfigure_ip(p0, "Static", "10.70.0.1", "255.255.255.0", "10.70.0.254", "")
        assert addrs(br) == ["10.70.0.1/24"]
        assert addrs("eth0") == [] and master("eth0") == br
        assert default_routes() == [("10.70.0.254", br)]
        assert reachable("10.70.0.1"), "the wire reaches the host on its bridge"
        assert reachable("10.70.0.254", ns=HOST_NS), "the host reaches its gateway"
    host = api.PIF.get_host(p0)
    assert api.host.get_address(host) == "10.70.0.1"
    oc = api.PIF.get_other_config(p0)
    assert oc.get("xapi-rs-host-ip") == "true"


def test_bad_configurations_change_nothing(xapid, api):
    p0, p1 = pif(api, "eth0"), pif(api, "eth1")
    br = bridge(api, p0)
    before = (addrs(br), api.PIF.get_record(p0)["IP"])
    # The QEMU backend runs no DHCP client for the host: refused up front.
    assert code(api.PIF.reconfigure_ip, p0, "DHCP", "", "", "", "")[0] == "NOT_IMPLEMENTED"
    assert code(api.PIF.reconfigure_ip, p0, "Static", "10.70.0.300", "255.255.255.0", "", "")[0] == \
        "INVALID_IP_ADDRESS_SPECIFIED"
    assert code(api.PIF.reconfigure_ip, p0, "None", "", "", "", "") == ["PIF_IS_MANAGEMENT_INTERFACE", p0]
    assert code(api.host.management_reconfigure, p1) == ["PIF_HAS_NO_NETWORK_CONFIGURATION", p1]
    assert code(api.host.local_management_reconfigure, "eth1")[0] == "NOT_IN_EMERGENCY_MODE"
    net = api.network.create({"name_label": "no PIF here", "name_description": "", "MTU": "1500",
                              "other_config": {}})
    try:
        assert code(api.pool.management_reconfigure, net)[0] == "PIF_NOT_PRESENT"
    finally:
        api.network.destroy(net)
    assert (addrs(br), api.PIF.get_record(p0)["IP"]) == before
    assert api.PIF.get_management(p0) and not api.PIF.get_management(p1)


def test_management_moves_between_pifs(xapid, api):
    p0, p1 = pif(api, "eth0"), pif(api, "eth1")
    host = api.PIF.get_host(p0)
    api.PIF.reconfigure_ip(p1, "Static", "10.71.0.1", "255.255.255.0", "", "")
    api.host.management_reconfigure(p1)
    assert api.PIF.get_management(p1) and not api.PIF.get_management(p0)
    assert api.host.get_management_interface(host) == p1
    assert api.host.get_address(host) == "10.71.0.1"
    br1 = bridge(api, p1)
    assert api.PIF.get_currently_attached(p1)
    assert addrs(br1) == ["10.71.0.1/24"] and master("eth1") == br1
    assert reachable("10.71.0.1")
    # The former management bridge keeps its address, as xapi leaves it.
    assert addrs(bridge(api, p0)) == ["10.70.0.1/24"]
    api.host.management_reconfigure(p1)  # already there: nothing to do
    # And back, by network, as the pool-wide call does it.
    api.pool.management_reconfigure(api.PIF.get_network(p0))
    assert api.PIF.get_management(p0) and not api.PIF.get_management(p1)
    assert api.host.get_address(host) == "10.70.0.1"


def test_addresses_come_back_after_a_restart(xapid, api):
    p0, p1 = pif(api, "eth0"), pif(api, "eth1")
    br0, br1 = bridge(api, p0), bridge(api, p1)
    # Lost behind xapid's back (as after a reboot of the machine).
    sh("ip", "addr", "flush", "dev", br1, "scope", "global")
    xapid.restart()

    def back():
        return addrs(br1) == ["10.71.0.1/24"]
    import time
    deadline = time.time() + 30
    while not back() and time.time() < deadline:
        time.sleep(0.5)
    assert back(), addrs(br1)
    assert addrs(br0) == ["10.70.0.1/24"] and default_routes() == [("10.70.0.254", br0)]
    assert reachable("10.70.0.1") and reachable("10.71.0.1")


def test_mode_none_takes_the_address_away(xapid):
    api = xapid.session().xenapi
    p1 = pif(api, "eth1")
    br1 = bridge(api, p1)
    api.PIF.reconfigure_ip(p1, "None", "", "", "", "")
    assert addrs(br1) == []
    assert not reachable("10.71.0.1")
    # The management bridge is untouched.
    assert reachable("10.70.0.1")

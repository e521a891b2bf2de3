"""Real networks for real guests: `xapid --backend qemu` in a network
namespace the test makes, its NICs veths whose other ends sit in a second
namespace (the "wire": a trunk switch and a peer host). The machine's own
interfaces are never touched.

Three test guests (scripts/build-test-guest.sh) boot once and are reused:

    A  eth0 on eth1's network (10.10.0.1), eth1 on a private network (10.50.0.1)
    A2 eth0 on eth2's network (10.10.0.2), eth1 on the private network (10.50.0.2)
    B  eth0 on eth2's network (10.10.0.3)

eth1 and eth2 meet only on the wire's plain bridge, so A reaches A2 only
through the host's NICs. For VLANs, NICs hot-plugged into A and A2 on VLAN
10 over eth1 and over eth2 reach each other only if both tag their frames
with 10, and one in B on VLAN 20 over eth2 reaches neither. Commands run in
the guests through their serial console's root shell.

VLANs and bonds need the kernel's 802.1Q and bonding drivers: where the
kernel has none (a micro-VM kernel), those tests are skipped with that
reason, loudly, and nothing else is; test_qemu_netlab.py then checks VLANs
and bonds in a QEMU guest with Debian's kernel, where they are always there."""

import itertools
import json
import os
import signal
import subprocess
import time

import pytest
import XenAPI

from conftest import PASSWORD, ROOT, Xapid, require_tool
from test_qemu import BOOT, answer, guest_vm, kernels, qemu_pids, serial, type_line, vm_dir, wait_banner  # noqa: F401
from vmlib import wait_for

NICS = ["eth0", "eth1", "eth2", "eth3", "eth4"]
NODE_DIR = os.path.join(ROOT, "tests", "node")
TAG = "xrs%d" % os.getpid()
HOST_NS, WIRE_NS = TAG + "h", TAG + "w"
_seq = itertools.count()
KERNEL = {}


def need_kernel(kind, what):
    if not KERNEL.get(kind):
        pytest.skip("this kernel has no %s driver (%s): %s with guests untested here (test_qemu_netlab.py "
                    "checks the host side on Debian's kernel)" % (
                        what, "/proc/config.gz" if os.path.exists("/proc/config.gz") else "modprobe failed", kind))


def sh(*cmd, ns=None, check=True):
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    p = subprocess.run(full, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(full), p.stderr))
    return p.stdout


def links(ns):
    """name → link record (ip -j -d) in a namespace."""
    return {l["ifname"]: l for l in json.loads(sh("ip", "-j", "-d", "link", "show", ns=ns))}


@pytest.fixture(scope="module")
def netns():
    require_tool("ip")
    require_tool("nft")
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("network namespaces need root, and CI is set")
        pytest.skip("network namespaces need root")
    for ns in (HOST_NS, WIRE_NS):
        sh("ip", "netns", "add", ns)
    try:
        for i, nic in enumerate(NICS):
            sh("ip", "link", "add", nic, "netns", HOST_NS, "type", "veth", "peer", "name", "w%d" % i, "netns", WIRE_NS)
        w = lambda *a: sh(*a, ns=WIRE_NS)  # noqa: E731
        w("ip", "link", "set", "lo", "up")
        # The trunk: a plain bridge, so tagged frames cross it unchanged.
        w("ip", "link", "add", "trunk", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        for p in ("w1", "w2"):
            w("ip", "link", "set", p, "master", "trunk", "up")
        w("ip", "link", "set", "trunk", "up")
        # The peer of the bond: a bridge over both legs with an address.
        w("ip", "link", "add", "bondsw", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        for p in ("w3", "w4"):
            w("ip", "link", "set", p, "master", "bondsw", "up")
        w("ip", "addr", "add", "10.30.0.100/24", "dev", "bondsw")
        w("ip", "link", "set", "bondsw", "up")
        w("ip", "link", "set", "w0", "up")
        for nic in NICS:
            sh("ip", "link", "set", nic, "up", ns=HOST_NS)
        sh("ip", "link", "set", "lo", "up", ns=HOST_NS)
        for kind, args in (("vlan", ["link", "w0", "name", "probe", "type", "vlan", "id", "99"]),
                           ("bond", ["name", "probe", "type", "bond"])):
            ok = subprocess.run(["ip", "-n", WIRE_NS, "link", "add"] + args, capture_output=True).returncode == 0
            KERNEL[kind] = ok
            if ok:
                sh("ip", "-n", WIRE_NS, "link", "del", "probe")
        yield HOST_NS
    finally:
        for ns in (HOST_NS, WIRE_NS):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def xapid(netns, kernels):  # noqa: F811
    x = Xapid(netns=netns,
              extra_args=["--backend", "qemu", "--guest-kernel-dir", kernels, "--nics", ",".join(NICS)]).start()
    yield x
    x.cleanup()
    for pid in qemu_pids(x):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def api(xapid):
    s = xapid.session()
    yield s.xenapi
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


def pif(api, device):
    (r,) = [r for r, p in api.PIF.get_all_records().items() if p["device"] == device and p["VLAN"] == "-1"
            and p["physical"]]
    return r


def network(api, name):
    return api.network.create({"name_label": name, "name_description": "", "MTU": "1500", "other_config": {}})


def vif(api, vm, device, net, other_config=None, mac=""):
    return api.VIF.create({"device": device, "network": net, "VM": vm, "MAC": mac, "MTU": "1500",
                           "other_config": other_config or {}, "qos_algorithm_type": "",
                           "qos_algorithm_params": {}})


def run(x, api, vm, cmd, timeout=30):
    """Run `cmd` in the guest's shell; its exit status. The marker is built
    by the shell, so the echoed input line never matches it (a late first
    run still answers with its own status)."""
    n = next(_seq)
    line = '%s >/dev/null 2>&1; echo "RC%d-$?-$((6*7))"' % (cmd, n)
    return int(answer(x, api, vm, line, r"RC%d-(\d+)-42" % n, "the guest's answer to %r" % cmd, timeout=timeout))


def can_ping(x, api, vm, addr, src=None):
    return run(x, api, vm, "ping -c 3 -W 2 %s%s" % ("-I %s " % src if src else "", addr), timeout=40) == 0


def eventually_pings(x, api, vm, addr, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if can_ping(x, api, vm, addr):
            return True
    return False


@pytest.fixture(scope="module")
def lab(xapid, api, kernels):  # noqa: F811
    """The three guests, running, on their networks."""
    api.PIF.scan(api.host.get_all()[0])
    for nic in ("eth1", "eth2"):
        api.PIF.plug(pif(api, nic))
    n1, n2 = api.PIF.get_network(pif(api, "eth1")), api.PIF.get_network(pif(api, "eth2"))
    private = network(api, "private")
    vms = {}
    for name, net, ip in (("A", n1, "10.10.0.1"), ("A2", n2, "10.10.0.2"), ("B", n2, "10.10.0.3")):
        vm = guest_vm(api, kernels, "net-" + name)
        api.VM.set_PV_args(vm, "console=ttyS0 no_timer_check xapi.ip=%s/24" % ip)
        vif(api, vm, "0", net)
        if name == "A2":
            # A MAC whose first octet is the one the tap's own MAC gets
            # (a generated MAC is one in 64 times): the bridge must still
            # pass the guest's frames.
            vif(api, vm, "1", private, mac="fe:16:3e:%02x:%02x:%02x" % tuple(os.urandom(3)))
        elif name == "A":
            vif(api, vm, "1", private)
        api.VM.start(vm, False, False)
        vms[name] = vm
    for name, vm in vms.items():
        wait_banner(xapid, api, vm)
        # The shell runs a moment after the banner: wait for it to answer.
        assert run(xapid, api, vm, "true", timeout=BOOT) == 0
    for name, ip in (("A", "10.50.0.1/24"), ("A2", "10.50.0.2/24")):
        # The guest's init leaves udhcpc retrying on eth1 in the background,
        # whose "deconfig" flushes the interface: stop it before a static
        # address, and make sure it is gone (a typed line can be garbled on a
        # busy UART, and a survivor flushes the address later).
        wait_for(lambda: run(xapid, api, vms[name], "killall udhcpc; ! pidof udhcpc") == 0, 60,
                 "udhcpc stopped in " + name)
        assert run(xapid, api, vms[name], "ip addr add %s dev eth1" % ip) == 0
        assert has_addr(xapid, api, vms[name], "eth1", ip)
    return {"vms": vms, "private": private}


def has_addr(x, api, vm, dev, cidr):
    return run(x, api, vm, "ip -o addr show dev %s | grep -q ' %s '" % (dev, cidr)) == 0


def test_switches_are_linux_bridges(xapid, api, lab):
    """Each network with a plugged PIF is a bridge named by network.bridge,
    with its PIF's link in it; a VIF is a tap on its network's bridge."""
    ls = links(HOST_NS)
    for net in api.network.get_all_records().values():
        attached = [p for p in net["PIFs"] if api.PIF.get_currently_attached(p)]
        if attached or any(api.VIF.get_currently_attached(v) for v in net["VIFs"]):
            assert net["bridge"] in ls, (net["name_label"], net["bridge"], sorted(ls))
            assert ls[net["bridge"]]["linkinfo"]["info_kind"] == "bridge"
    assert ls["eth1"]["master"] == api.network.get_bridge(api.PIF.get_network(pif(api, "eth1")))
    for key in ("A", "A2"):
        vm = lab["vms"][key]
        domid = api.VM.get_domid(vm)
        for v in api.VM.get_VIFs(vm):
            rec = api.VIF.get_record(v)
            tap = "vif%s.%s" % (domid, rec["device"])
            bridge = api.network.get_bridge(rec["network"])
            assert ls[tap]["master"] == bridge, ls[tap]
            # The host side is fe:… (fa:… for a guest's fe:…): never the
            # guest's MAC, which on the bridge would swallow its frames.
            first = "fa" if rec["MAC"].startswith("fe") else "fe"
            assert ls[tap]["address"] == first + rec["MAC"][2:], (ls[tap]["address"], rec["MAC"])


def test_guests_on_a_private_network_ping_each_other(xapid, api, lab):
    vms = lab["vms"]
    private = (("A", "10.50.0.1/24"), ("A2", "10.50.0.2/24"))
    assert eventually_pings(xapid, api, vms["A"], "10.50.0.2"), where_it_stops(xapid, api, vms, "eth1", private)
    assert can_ping(xapid, api, vms["A2"], "10.50.0.1"), where_it_stops(xapid, api, vms, "eth1", private)


def test_guests_reach_each_other_through_the_hosts_nics(xapid, api, lab):
    vms = lab["vms"]
    assert eventually_pings(xapid, api, vms["A"], "10.10.0.2"), "eth1 → wire → eth2"
    assert eventually_pings(xapid, api, vms["B"], "10.10.0.1"), where_it_stops(xapid, api, vms)


def where_it_stops(x, api, vms, dev="eth0", addrs=(("A", "10.10.0.1/24"), ("A2", "10.10.0.2/24"),
                                                     ("B", "10.10.0.3/24"))):
    """What a failed ping leaves to look at: which guest still has its
    address on `dev` (and that link's state and counters, its neighbours, on
    its console), the host's links with their counters and the bridges'
    forwarding tables."""
    have = {k: has_addr(x, api, vms[k], dev, ip) for k, ip in addrs}
    consoles = []
    for k, _ in addrs:
        type_line(x, api, vms[k], "ip -s link show %s; ip neigh" % dev, reset=True)
        time.sleep(2)
        consoles.append("---- %s's console ----\n%s" % (k, serial(x, api, vms[k])[-1200:]))
    return "\n".join([
        "addresses on %s: %r" % (dev, have),
        sh("ip", "-s", "-o", "link", ns=HOST_NS, check=False),
        sh("bridge", "fdb", "show", "dynamic", ns=HOST_NS, check=False),
        sh("ip", "-s", "-o", "link", ns=WIRE_NS, check=False)] + consoles)


def test_vlans_separate_guests_over_the_same_wire(xapid, api, lab):
    need_kernel("vlan", "802.1Q")
    vms = lab["vms"]
    nets = {}
    for key, nic, tag in (("A", "eth1", "10"), ("A2", "eth2", "10"), ("B", "eth2", "20")):
        nets[key] = network(api, "vlan%s-%s" % (tag, key))
        api.VLAN.create(pif(api, nic), tag, nets[key])
    ls = links(HOST_NS)
    assert ls["eth1.10"]["linkinfo"]["info_kind"] == "vlan"
    assert ls["eth1.10"]["linkinfo"]["info_data"]["id"] == 10
    assert ls["eth1.10"]["master"] == api.network.get_bridge(nets["A"])
    # The new NIC is the guest's next free ethN: A and A2 have two, B one.
    for i, (key, dev) in enumerate((("A", "eth2"), ("A2", "eth2"), ("B", "eth1"))):
        v = vif(api, vms[key], "3", nets[key])
        api.VIF.plug(v)
        wait_for(lambda: run(xapid, api, vms[key], "ip link set %s up" % dev) == 0, 30, "the VLAN NIC in the guest")
        assert run(xapid, api, vms[key], "ip addr add 10.60.0.%d/24 dev %s" % (i + 1, dev)) == 0
    assert eventually_pings(xapid, api, vms["A"], "10.60.0.2"), "VLAN 10 over eth1 → wire → eth2"
    assert not can_ping(xapid, api, vms["B"], "10.60.0.1"), "VLAN 20 reached VLAN 10"
    assert not can_ping(xapid, api, vms["A"], "10.60.0.3"), "VLAN 10 reached VLAN 20"
    for key in ("A", "A2", "B"):
        for v in api.VM.get_VIFs(vms[key]):
            if api.VIF.get_device(v) == "3":
                api.VIF.unplug(v)
                api.VIF.destroy(v)
    for v in api.VLAN.get_all():
        api.VLAN.destroy(v)
    assert not [n for n in links(HOST_NS) if "." in n]


def test_vif_unplug_stops_traffic_and_plug_restores_it(xapid, api, lab):
    vms = lab["vms"]
    (priv,) = [v for v in api.VM.get_VIFs(vms["A2"]) if api.VIF.get_device(v) == "1"]
    api.VIF.unplug(priv)
    assert not can_ping(xapid, api, vms["A"], "10.50.0.2")
    api.VIF.plug(priv)
    # A hot-plugged NIC comes up unconfigured in the guest.
    wait_for(lambda: run(xapid, api, vms["A2"], "ip link set eth1 up") == 0, 30, "eth1 back in the guest")
    run(xapid, api, vms["A2"], "ip addr add 10.50.0.2/24 dev eth1")
    assert eventually_pings(xapid, api, vms["A"], "10.50.0.2"), \
        where_it_stops(xapid, api, vms, "eth1", (("A", "10.50.0.1/24"), ("A2", "10.50.0.2/24")))


def test_a_locked_vif_passes_only_its_own_mac_and_addresses(xapid, api, lab):
    vms = lab["vms"]
    a = vms["A"]
    (v0,) = [v for v in api.VM.get_VIFs(a) if api.VIF.get_device(v) == "0"]
    api.VIF.set_ipv4_allowed(v0, ["10.10.0.1"])
    api.VIF.set_locking_mode(v0, "locked")
    try:
        assert eventually_pings(xapid, api, a, "10.10.0.2")
        # Another address of the guest's own: its traffic is dropped.
        assert run(xapid, api, a, "ip addr add 10.10.0.99/24 dev eth0") == 0
        assert not can_ping(xapid, api, a, "10.10.0.2", src="10.10.0.99")
        run(xapid, api, a, "ip addr del 10.10.0.99/24 dev eth0")
        # Another MAC: nothing passes.
        mac = api.VIF.get_MAC(v0)
        assert run(xapid, api, a, "ip link set eth0 address 02:de:ad:be:ef:01") == 0
        assert not can_ping(xapid, api, a, "10.10.0.2")
        run(xapid, api, a, "ip link set eth0 address %s" % mac)
        assert eventually_pings(xapid, api, a, "10.10.0.2")
        api.VIF.set_locking_mode(v0, "disabled")
        assert not can_ping(xapid, api, a, "10.10.0.2")
    finally:
        api.VIF.set_locking_mode(v0, "network_default")
    assert eventually_pings(xapid, api, a, "10.10.0.2")


def test_guest_addresses_reach_guest_metrics(xapid, api, lab):
    """The agent's addresses show in VM_guest_metrics.networks (what XO reads)."""
    vm = lab["vms"]["A"]

    def nets():
        gm = api.VM.get_guest_metrics(vm)
        return gm != "OpaqueRef:NULL" and api.VM_guest_metrics.get_networks(gm)

    got = wait_for(lambda: (nets() or {}).get("0/ip") == "10.10.0.1" and nets(), 60, "the guest's address")
    assert got.get("1/ip") == "10.50.0.1", got
    # The same through npm xen-api's event-fed object cache, as Xen Orchestra reads it.
    node = require_tool("node")
    p = subprocess.run([node, os.path.join("bin", "guest-networks.mjs"), xapid.url, "root", PASSWORD,
                        api.VM.get_uuid(vm), "30000", "0/ip=10.10.0.1", "1/ip=10.50.0.1"],
                       cwd=NODE_DIR, capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout)["0/ip"] == "10.10.0.1"


def test_mtu_from_other_config_shows_on_the_tap(xapid, api, lab):
    vm = lab["vms"]["B"]
    jumbo = network(api, "jumbo")
    v = vif(api, vm, "2", jumbo, {"mtu": "9000"})
    api.VIF.plug(v)
    tap = "vif%s.2" % api.VM.get_domid(vm)
    assert links(HOST_NS)[tap]["mtu"] == 9000
    api.VIF.unplug(v)
    api.VIF.destroy(v)
    assert tap not in links(HOST_NS)
    # The private switch went with its last port.
    assert api.network.get_bridge(jumbo) not in links(HOST_NS)
    api.network.destroy(jumbo)


def test_a_bond_keeps_the_guest_reachable_when_a_leg_fails(xapid, api, lab):
    need_kernel("bond", "bonding")
    vm = lab["vms"]["B"]
    net = network(api, "bonded")
    bond = api.Bond.create(net, [pif(api, "eth3"), pif(api, "eth4")], "", "active-backup", {})
    try:
        master = api.Bond.get_master(bond)
        dev = api.PIF.get_device(master)
        ls = links(HOST_NS)
        assert ls[dev]["linkinfo"]["info_kind"] == "bond"
        assert ls["eth3"]["master"] == dev and ls["eth4"]["master"] == dev
        v = vif(api, vm, "1", net)
        api.VIF.plug(v)
        wait_for(lambda: run(xapid, api, vm, "ip link set eth1 up") == 0, 30, "the bonded NIC in the guest")
        run(xapid, api, vm, "ip addr add 10.30.0.3/24 dev eth1")
        assert eventually_pings(xapid, api, vm, "10.30.0.100")
        for down, up in (("w3", None), ("w4", "w3")):
            if up:
                sh("ip", "link", "set", up, "up", ns=WIRE_NS)
            sh("ip", "link", "set", down, "down", ns=WIRE_NS)
            assert eventually_pings(xapid, api, vm, "10.30.0.100", timeout=30), "after %s went down" % down
        sh("ip", "link", "set", "w4", "up", ns=WIRE_NS)
        api.VIF.unplug(v)
        api.VIF.destroy(v)
    finally:
        api.Bond.destroy(bond)
    ls = links(HOST_NS)
    assert dev not in ls and ls["eth3"].get("master") is None
    api.network.destroy(net)


def test_bad_input_leaves_nothing_on_the_host(xapid, api, lab):
    before = sorted(links(HOST_NS))
    net = network(api, "bad")
    for tag in ("-1", "4095", "5000"):
        with pytest.raises(XenAPI.Failure) as e:
            api.VLAN.create(pif(api, "eth3"), tag, net)
        assert e.value.details[0] == "VLAN_TAG_INVALID", e.value.details
    other = network(api, "bad2")
    if KERNEL.get("bond"):
        bond = api.Bond.create(net, [pif(api, "eth3"), pif(api, "eth4")], "", "active-backup", {})
        with pytest.raises(XenAPI.Failure) as e:
            api.Bond.create(other, [pif(api, "eth3"), pif(api, "eth4")], "", "active-backup", {})
        assert e.value.details[0] == "PIF_ALREADY_BONDED", e.value.details
        api.Bond.destroy(bond)
    vm = lab["vms"]["B"]
    for mac in ("zz:00:00:00:00:01", "01:00:5e:00:00:01", "02:00:00:00:01"):
        with pytest.raises(XenAPI.Failure) as e:
            api.VIF.create({"device": "5", "network": net, "VM": vm, "MAC": mac, "MTU": "1500",
                            "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
        assert e.value.details[:2] == ["MAC_INVALID", mac], e.value.details
    api.network.destroy(net)
    api.network.destroy(other)
    assert sorted(links(HOST_NS)) == before


def test_nothing_is_left_on_the_host(xapid, api, lab):
    """Guests gone, PIFs unplugged: only the NICs, lo and the management
    switch remain (no stray bridge, tap, VLAN or bond)."""
    for vm in lab["vms"].values():
        api.VM.hard_shutdown(vm)
    assert not [n for n in links(HOST_NS) if n.startswith("vif")]
    for v in api.VLAN.get_all():
        api.VLAN.destroy(v)
    for nic in ("eth1", "eth2"):
        api.PIF.unplug(pif(api, nic))
    mgmt = api.network.get_bridge(api.PIF.get_network(pif(api, "eth0")))
    wait_for(lambda: sorted(links(HOST_NS)) == sorted(["lo", mgmt] + NICS), 10,
             "only lo, the NICs and %s (have %s)" % (mgmt, sorted(links(HOST_NS))))

"""VLANs and bonds on a kernel that has them: the part of test_qemu_net.py
this machine's kernel cannot run (a micro-VM kernel without the 802.1Q and
bonding drivers, and no modules to load).

The lab is a QEMU guest (TCG) booting the test guest's Debian kernel
(scripts/build-test-guest.sh ships 8021q, bonding, bridge and veth with it)
with a second initramfs appended: this machine's xapid, ip, bridge, nft,
ethtool and qemu-system-x86_64 with their libraries. Inside it xapid runs
`--backend qemu` as it would on a host, its NICs n1..n4 veths whose peers
w1..w4 sit in a namespace "wire" (w1 and w2 on a plain trunk bridge, w3 and
w4 on a bridge with 10.30.0.100, the bond's far end). The PyPI XenAPI client
drives it through QEMU's user network (a forwarded port); commands and checks
run in the lab's root shell on its serial console.

No guests run inside the lab (nested TCG is far too slow): a guest's NIC is
stood in for by a veth port on the switch whose other end sits in a
namespace with an address. What the guests' side of a switch does (taps,
hot-plug, locking) is test_qemu_net.py's, with real guests; this module
checks what only the host side of a VLAN or bond does."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import xmlrpc.client

import pytest
import XenAPI

from conftest import PASSWORD, XAPID, free_port, require_tool
from test_qemu import guest_dir, require
from vmlib import wait_for

BOOT = 300  # seconds: an initramfs of ~150 MB unpacked under TCG on a busy machine
READY = "xapi-rs netlab ready"
# A bound on one API call (a bond is made or taken apart in seconds; this
# is for a lab that wedges).
CALL_BOUND = 900
NICS = ["n1", "n2", "n3", "n4"]
# What runs inside the lab, from this machine (with their libraries).
TOOLS = ["ip", "bridge", "nft", "ethtool", "qemu-system-x86_64"]

RC_LOCAL = r"""#!/bin/sh
# The netlab (test_qemu_netlab.py): the wire, then xapid in the background.
# This machine's tools before busybox's.
# busybox's shell runs its own applets before PATH: name ours in full.
export PATH=/usr/local/sbin:/usr/local/bin:$PATH
IP=/usr/local/sbin/ip
modprobe bonding max_bonds=0
for m in 8021q bridge veth tun; do modprobe $m; done
$IP netns add wire
$IP -n wire link set lo up
i=1
for n in %(nics)s; do
    $IP link add $n type veth peer name w$i netns wire
    $IP link set $n up
    $IP -n wire link set w$i up
    i=$((i + 1))
done
$IP -n wire link add trunk type bridge stp_state 0 forward_delay 0
$IP -n wire link add bondsw type bridge stp_state 0 forward_delay 0
$IP -n wire link set w1 master trunk
$IP -n wire link set w2 master trunk
$IP -n wire link set w3 master bondsw
$IP -n wire link set w4 master bondsw
$IP -n wire addr add 10.30.0.100/24 dev bondsw
$IP -n wire link set trunk up
$IP -n wire link set bondsw up
mkdir -p /var/lib/xapi-rs
XAPI_ROOT_PASSWORD=%(password)s XAPI_LOG=info /usr/local/bin/xapid --backend qemu --nics %(nics_csv)s --qemu-user root \
    --http 0.0.0.0:80 --login-failure-delay-ms 0 --address 10.0.2.15 \
    >/var/log/xapid.log 2>&1 &
echo "%(ready)s"
"""


def ldd(path):
    """The shared libraries (and loader) a binary needs, as absolute paths."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def overlay(out):
    """A newc cpio, appended to the test guest's initramfs, with what the
    lab runs: xapid (without debug info), the tools and their libraries."""
    stage = tempfile.mkdtemp(prefix="xapi-netlab-")
    try:
        files = {}
        for t in TOOLS:
            p = shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin")
            assert p, "%s not found" % t
            # Not over busybox's applets: the guest's archive is unpacked
            # after this one and would win. PATH puts these first.
            files[os.path.realpath(p)] = "/usr/local/sbin/" + t
        for src, dest in list(files.items()) + [(XAPID, "/usr/local/bin/xapid")]:
            for lib in ldd(src):
                files.setdefault(os.path.realpath(lib), lib)
        files[XAPID] = "/usr/local/bin/xapid"
        for src, dest in files.items():
            d = os.path.join(stage, dest.lstrip("/"))
            os.makedirs(os.path.dirname(d), exist_ok=True)
            if src == XAPID:
                subprocess.run(["strip", "-o", d, src], check=True)
            else:
                shutil.copy2(src, d)
        rc = os.path.join(stage, "etc", "rc.local")
        os.makedirs(os.path.dirname(rc), exist_ok=True)
        with open(rc, "w") as f:
            f.write(RC_LOCAL % {"nics": " ".join(NICS), "nics_csv": ",".join(NICS), "password": PASSWORD,
                                "ready": READY})
        os.chmod(rc, 0o755)
        # Every parent directory is an entry of its own: the kernel's
        # unpacker does not make missing parents.
        names = subprocess.run(["find", "."], cwd=stage, capture_output=True, text=True, check=True).stdout
        with open(out, "wb") as f:
            subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=stage,
                           input="\n".join(sorted(names.split())).encode(), stdout=f, check=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class Lab:
    """The lab guest: its serial console (a root shell) and its forwarded port."""

    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        self.sock_path = os.path.join(d, "serial.sock")
        self.log = open(os.path.join(d, "serial.log"), "wb")
        self.buf = b""
        self.seq = 0
        # The uncompressed archive first, as early microcode is: the kernel
        # unpacks archives one after another, but not past a compressed one.
        initrd = os.path.join(d, "lab.img")
        overlay(initrd)
        with open(initrd, "ab") as f:
            with open(os.path.join(guest_dir(), "initrd.img"), "rb") as base:
                shutil.copyfileobj(base, f)
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", "1536", "-nographic", "-nodefaults",
             "-no-reboot", "-kernel", os.path.join(guest_dir(), "vmlinuz"), "-initrd", initrd,
             # loglevel=1: the kernel's messages stay off the serial line. Each
             # one is written a character at a time through an emulated UART
             # while the caller holds the networking lock, which made every
             # bond or bridge change take seconds (and minutes on a busy machine).
             "-append", "console=ttyS0 no_timer_check panic=-1 loglevel=1",
             "-netdev", "user,id=mgmt,hostfwd=tcp:127.0.0.1:%d-:80" % self.port,
             "-device", "virtio-net-pci,netdev=mgmt",
             "-chardev", "socket,id=s0,path=%s,server=on,wait=off" % self.sock_path, "-serial", "chardev:s0"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.sock_path) or self.proc.poll() is not None, 30, "QEMU's serial socket")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.sock_path)
        # rc.local prints READY before init starts the console's shell.
        self.read_until(READY.encode(), BOOT, fail_on=b"login: root")

    def read_until(self, needle, timeout, fail_on=None):
        deadline = time.time() + timeout
        while needle not in self.buf:
            if fail_on and fail_on in self.buf:
                raise AssertionError("%r came before %r: %r" % (fail_on, needle, self.buf[-3000:]))
            if self.proc.poll() is not None:
                raise AssertionError("the lab guest exited (%s): %r" % (self.proc.returncode, self.buf[-3000:]))
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %r from the lab within %ss: %r" % (needle, timeout, self.buf[-3000:]))
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            self.log.write(chunk)
            self.log.flush()
            self.buf += chunk
        i = self.buf.index(needle) + len(needle)
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def sh(self, cmd, check=True, timeout=300):
        """Run a shell command in the lab; its output (stdout and stderr)."""
        self.seq += 1
        n = self.seq
        # The markers are split in the typed line, so its echo never matches them.
        self.sock.sendall(('echo "B""EG%d"; { IP=/usr/local/sbin/ip; %s ; } 2>&1; echo "E""ND%d=$?"\n' % (n, cmd, n)).encode())
        self.read_until(b"BEG%d\r\n" % n, timeout)
        out = self.read_until(b"END%d=" % n, timeout)
        rc = int(self.read_until(b"\n", 10).strip())
        text = out[:-len(b"END%d=" % n)].decode(errors="replace").replace("\r\n", "\n")
        if check and rc != 0:
            raise AssertionError("lab: %s: exit %d: %s" % (cmd, rc, text))
        return text

    def rc(self, cmd, timeout=300):
        self.seq += 1
        n = self.seq
        self.sock.sendall(('echo "B""EG%d"; { IP=/usr/local/sbin/ip; %s ; } >/dev/null 2>&1; echo "E""ND%d=$?"\n' % (n, cmd, n)).encode())
        self.read_until(b"BEG%d\r\n" % n, timeout)
        self.read_until(b"END%d=" % n, timeout)
        return int(self.read_until(b"\n", 10).strip())

    def links(self, ns=None):
        out = self.sh("$IP %s -j -d link show" % ("-n " + ns if ns else ""))
        return {l["ifname"]: l for l in json.loads(out[out.index("["):])}

    def close(self):
        try:
            self.sock.close()
        finally:
            self.proc.kill()
            self.proc.wait()
            self.log.close()


@pytest.fixture(scope="module")
def lab():
    require(shutil.which("qemu-system-x86_64"), "qemu-system-x86_64 not found")
    src = guest_dir()
    require(os.path.isfile(os.path.join(src, "vmlinuz")) and os.path.isfile(os.path.join(src, "initrd.img")),
            "no test guest in %s (scripts/build-test-guest.sh)" % src)
    for t in ("cpio", "strip", "ldd", "ip", "nft", "ethtool"):
        require_tool(t)
    d = tempfile.mkdtemp(prefix="xapi-netlab-")
    lab = Lab(d)
    try:
        yield lab
    finally:
        lab.close()
        shutil.rmtree(d, ignore_errors=True)


class BoundedTransport(xmlrpc.client.Transport):
    """Calls that give up after `timeout` s: a lab kernel wedged under a
    loaded machine fails the test instead of hanging the whole suite."""

    def __init__(self, timeout):
        super().__init__()
        self.bound = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.bound
        return conn


@pytest.fixture(scope="module")
def api(lab):
    def login():
        try:
            s = XenAPI.Session("http://127.0.0.1:%d" % lab.port, transport=BoundedTransport(CALL_BOUND))
            s.xenapi.login_with_password("root", PASSWORD, "1.0", "test_qemu_netlab")
            return s
        except (OSError, http.client.HTTPException):
            return None  # xapid is still starting (QEMU accepts and drops until it listens)
    s = wait_for(login, 120, "xapid in the lab", interval=1)
    # A new host has a PIF for its first NIC; the scan finds the rest.
    for host in s.xenapi.host.get_all():
        s.xenapi.PIF.scan(host)
    yield s.xenapi
    try:
        s.xenapi.session.logout()
    except Exception:
        pass


def pif(api, device):
    (ref,) = [r for r, p in api.PIF.get_all_records().items() if p["device"] == device and p["VLAN"] == "-1"
              and not p["bond_master_of"]]
    return ref


def network(api, name):
    return api.network.create({"name_label": name, "name_description": "", "MTU": "1500", "other_config": {}})


def endpoint(lab, name, bridge, addr):
    """A stand-in for a guest's NIC: a veth port on `bridge` whose other end
    is in namespace `name` with `addr`."""
    lab.sh("$IP link add %s type veth peer name %sp && $IP link set %s master %s up && $IP netns add %s"
           " && $IP link set %sp netns %s && $IP -n %s addr add %s dev %sp && $IP -n %s link set %sp up"
           % (name, name, name, bridge, name, name, name, name, addr, name, name, name))


def drop_endpoint(lab, name):
    lab.sh("$IP link del %s; $IP netns del %s" % (name, name))


def pings(lab, ns, addr, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if lab.rc("$IP netns exec %s ping -c 1 -W 1 %s" % (ns, addr)) == 0:
            return True
    return False


def silent(lab, ns, addr):
    return lab.rc("$IP netns exec %s ping -c 3 -W 1 %s" % (ns, addr)) != 0


def members_follow_their_pifs(api, ls):
    """After a bond went, each former member is up, on its own network's
    bridge when its PIF is plugged, else on no bridge."""
    for nic in ("n3", "n4"):
        rec = api.PIF.get_record(pif(api, nic))
        want = api.network.get_bridge(rec["network"]) if rec["currently_attached"] else None
        assert ls[nic].get("master") == want, (nic, rec["currently_attached"], ls[nic])
        assert "UP" in ls[nic]["flags"], ls[nic]


def test_the_lab_runs_a_kernel_with_vlans_and_bonds(lab, api):
    assert lab.rc("$IP link add link n1 name probe type vlan id 99 && $IP link del probe") == 0
    assert lab.rc("$IP link add probe type bond && $IP link del probe") == 0
    (host,) = api.host.get_all()
    assert sorted(p["device"] for p in api.PIF.get_all_records().values()) == NICS
    assert api.host.get_software_version(host)


def test_vlans_separate_traffic_over_the_same_wire(lab, api):
    """As test_qemu_net's VLAN test: VLAN 10 over n1 and over n2 meet on the
    trunk; VLAN 20 over n2 reaches neither."""
    before = sorted(lab.links())
    nets = {}
    for key, nic, tag in (("a", "n1", "10"), ("b", "n2", "10"), ("c", "n2", "20")):
        nets[key] = network(api, "vlan%s-%s" % (tag, key))
        api.VLAN.create(pif(api, nic), tag, nets[key])
    ls = lab.links()
    for dev, tag, key in (("n1.10", 10, "a"), ("n2.10", 10, "b"), ("n2.20", 20, "c")):
        assert ls[dev]["linkinfo"]["info_kind"] == "vlan", ls[dev]
        assert ls[dev]["linkinfo"]["info_data"]["id"] == tag
        assert ls[dev]["link"] == dev.split(".")[0]
        assert ls[dev]["master"] == api.network.get_bridge(nets[key])
    for v in api.VLAN.get_all_records().values():
        untagged = api.PIF.get_record(v["untagged_PIF"])
        assert untagged["currently_attached"] and untagged["VLAN"] == v["tag"]
    for i, key in enumerate("abc"):
        endpoint(lab, "e" + key, api.network.get_bridge(nets[key]), "10.60.0.%d/24" % (i + 1))
    try:
        assert pings(lab, "ea", "10.60.0.2"), "VLAN 10 over n1 → trunk → n2"
        assert silent(lab, "ec", "10.60.0.1"), "VLAN 20 reached VLAN 10"
        assert silent(lab, "ea", "10.60.0.3"), "VLAN 10 reached VLAN 20"
    finally:
        for key in "abc":
            drop_endpoint(lab, "e" + key)
    for v in api.VLAN.get_all():
        api.VLAN.destroy(v)
    for n in nets.values():
        api.network.destroy(n)
    wait_for(lambda: sorted(lab.links()) == before, 120, "no VLAN device or bridge left (have %s)" % sorted(lab.links()))


@pytest.mark.parametrize("mode,kernel_mode", [("lacp", "802.3ad"), ("balance-slb", "balance-alb")])
def test_bond_modes_are_the_kernels(lab, api, mode, kernel_mode):
    # active-backup is the next test's.
    net = network(api, "bond-" + mode)
    bond = api.Bond.create(net, [pif(api, "n3"), pif(api, "n4")], "", mode, {})
    try:
        dev = api.PIF.get_device(api.Bond.get_master(bond))
        ls = lab.links()
        assert ls[dev]["linkinfo"]["info_kind"] == "bond"
        assert ls[dev]["linkinfo"]["info_data"]["mode"] == kernel_mode
        assert ls["n3"]["master"] == dev and ls["n4"]["master"] == dev
        assert ls[dev]["master"] == api.network.get_bridge(net)
        assert api.Bond.get_mode(bond) == mode
    finally:
        api.Bond.destroy(bond)
        api.network.destroy(net)
    ls = lab.links()
    assert dev not in ls
    members_follow_their_pifs(api, ls)


def test_a_bond_keeps_traffic_flowing_when_a_leg_fails(lab, api):
    net, other = network(api, "bonded"), network(api, "other")
    bond = api.Bond.create(net, [pif(api, "n3"), pif(api, "n4")], "", "active-backup", {})
    endpoint(lab, "eb", api.network.get_bridge(net), "10.30.0.3/24")
    try:
        # Bad input meets a real bond: xapi's errors, and nothing changes.
        ls = lab.links()
        with pytest.raises(XenAPI.Failure) as e:
            api.Bond.create(other, [pif(api, "n3"), pif(api, "n4")], "", "active-backup", {})
        assert e.value.details[0] == "PIF_ALREADY_BONDED", e.value.details
        with pytest.raises(XenAPI.Failure) as e:
            api.VLAN.create(pif(api, "n3"), "30", other)
        assert e.value.details[0] == "CANNOT_ADD_VLAN_TO_BOND_SLAVE", e.value.details
        for tag in ("-1", "4095", "5000"):
            with pytest.raises(XenAPI.Failure) as e:
                api.VLAN.create(api.Bond.get_master(bond), tag, other)
            assert e.value.details[0] == "VLAN_TAG_INVALID", e.value.details
        assert sorted(lab.links()) == sorted(ls)
        assert pings(lab, "eb", "10.30.0.100")
        # A leg's far end goes down: the bond sees carrier go (miimon) and moves on.
        for down, up in (("w3", None), ("w4", "w3")):
            if up:
                lab.sh("$IP -n wire link set %s up" % up)
            lab.sh("$IP -n wire link set %s down" % down)
            assert pings(lab, "eb", "10.30.0.100"), "after %s went down" % down
        lab.sh("$IP -n wire link set w4 up")
    finally:
        drop_endpoint(lab, "eb")
        api.Bond.destroy(bond)
        api.network.destroy(net)
        api.network.destroy(other)
    ls = lab.links()
    assert not [n for n, l in ls.items() if l.get("linkinfo", {}).get("info_kind") in ("bond", "vlan")], sorted(ls)
    members_follow_their_pifs(api, ls)
    # Every bridge left is a plugged PIF's.
    plugged = {api.network.get_bridge(p["network"]) for p in api.PIF.get_all_records().values()
               if p["currently_attached"]}
    assert {n for n, l in ls.items() if l.get("linkinfo", {}).get("info_kind") == "bridge"} <= plugged, sorted(ls)

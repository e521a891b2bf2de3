//! Host networking against the real kernel, each test in a network (and
//! mount) namespace of its own, so the machine's interfaces are never
//! touched: the test re-executes itself under `unshare --net --mount`, with
//! sysfs mounted again so /sys/class/net shows the namespace's interfaces.
//! The backend calls plain `ip`, `nft` and `ethtool`, which then act inside.
//!
//! Needs root (or `sudo -n`): without it a test prints why and passes,
//! unless CI is set; then it fails. Kernel features this machine may lack (bonding, 802.1Q)
//! skip their part with a message.

use backend::linux::{links, Net};
use backend::qemu::{Qemu, QemuConfig};
use backend::{BackendError, BondMode, DomainSpec, HostNetwork, Link, Locking, Map, Memory, Nic, Switch, Vcpus};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const INNER: &str = "XAPI_RS_NET_TEST_INNER";

fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what}; CI is set, so this is a failure");
    }
    eprintln!("skipped: {what}");
}

/// True inside the namespace (run the test); false outside, after running
/// this same test inside one (or skipping it). Not root, the test goes
/// through `sudo -n` (as scripts/test.sh installs packages) when it may.
fn inside(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !try_sh(&["sudo", "-n", "true"]) {
        missing("host networking tests need root or sudo without a password (each runs in a network namespace)");
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let mut env = vec![format!("{INNER}=1"), format!("XAPI_TEST_GUEST_DIR={}", guest_dir().display())];
    if let Some(ci) = std::env::var_os("CI") {
        env.push(format!("CI={}", ci.to_string_lossy()));
    }
    let mut cmd = Command::new(if root { "env" } else { "sudo" });
    if !root {
        cmd.args(["-n", "env"]);
    }
    let status = cmd
        .args(&env)
        .args(["unshare", "--net", "--mount", "--", "sh", "-c", "mount -t sysfs sysfs /sys && exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .status();
    match status {
        Ok(s) => assert!(s.success(), "{test} failed inside its network namespace ({s})"),
        Err(e) => missing(&format!("cannot run unshare (util-linux): {e}")),
    }
    false
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn try_sh(args: &[&str]) -> bool {
    Command::new(args[0]).args(&args[1..]).output().is_ok_and(|o| o.status.success())
}

fn link(name: &str) -> Option<Value> {
    let out = Command::new("ip").args(["-j", "-d", "link", "show", "dev", name]).output().unwrap();
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().and_then(|a| a.first().cloned())
}

fn field(name: &str, k: &str) -> String {
    let l = link(name).unwrap_or_else(|| panic!("{name} does not exist"));
    match &l[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn master(name: &str) -> String {
    field(name, "master")
}

fn veths(pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        sh(&["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
        sh(&["ip", "link", "set", b, "up"]);
    }
}

/// Whether the kernel can make links of this kind (in this namespace).
fn kernel_has(kind: &[&str]) -> bool {
    let mut args = vec!["ip", "link", "add", "xrsprobe"];
    args.extend(kind);
    let ok = try_sh(&args);
    if ok {
        sh(&["ip", "link", "del", "xrsprobe"]);
    }
    ok
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn switch(bridge: &str, mtu: i64, uplink: Option<Link>) -> Switch {
    Switch { bridge: bridge.into(), mtu, uplink, ethtool: Map::new(), promiscuous: false, host_ip: None }
}

/// Name, ifindex, master and MTU of every link: equal before and after a
/// re-apply means nothing was made again or changed.
fn snapshot() -> Vec<(String, i64, String, i64)> {
    let v: Value = serde_json::from_str(&sh(&["ip", "-j", "link", "show"])).unwrap();
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["ifname"].as_str().unwrap_or_default().to_string(),
                l["ifindex"].as_i64().unwrap_or(0),
                l["master"].as_str().unwrap_or_default().to_string(),
                l["mtu"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn switches_with_nic_vlan_and_bond_uplinks_are_reconciled() {
    if !inside("switches_with_nic_vlan_and_bond_uplinks_are_reconciled") {
        return;
    }
    veths(&[("a0", "b0"), ("a1", "b1"), ("a2", "b2"), ("a3", "b3")]);
    // Someone else's bridge, with a port: never ours to change.
    sh(&["ip", "link", "add", "fbr0", "type", "bridge"]);
    sh(&["ip", "link", "set", "b3", "master", "fbr0"]);
    let vlan = kernel_has(&["link", "a0", "type", "vlan", "id", "9"]);
    let bond = kernel_has(&["type", "bond"]);
    if !vlan {
        eprintln!("this kernel has no 802.1Q support: the VLAN part is skipped");
    }
    if !bond {
        eprintln!("this kernel has no bonding: the bond part is skipped");
    }
    let mut plan = HostNetwork {
        switches: vec![switch("xbr0", 1400, Some(Link::Nic { device: "a0".into() })), switch("xbr3", 1500, None)],
    };
    if vlan {
        let v = Link::Vlan { device: "a0.7".into(), parent: Box::new(Link::Nic { device: "a0".into() }), tag: 7 };
        plan.switches.push(switch("xbr1", 1400, Some(v)));
    }
    if bond {
        let mut props = Map::new();
        props.insert("updelay".into(), "200".into());
        let b = Link::Bond {
            device: "xbond0".into(),
            mode: BondMode::ActiveBackup,
            members: vec!["a1".into(), "a2".into()],
            props,
        };
        plan.switches.push(switch("xbr2", 1500, Some(b)));
    }
    let net = Net::new(None);
    let rt = runtime();
    rt.block_on(net.apply(&plan)).unwrap();
    for b in ["xbr0", "xbr3"] {
        assert_eq!(field(b, "ifalias"), links::MARK, "{b} is marked as ours");
        assert!(link(b).unwrap()["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "{b} is up");
    }
    assert_eq!(master("a0"), "xbr0");
    assert_eq!((field("a0", "mtu"), field("xbr0", "mtu")), ("1400".into(), "1400".into()));
    if vlan {
        let l = link("a0.7").unwrap();
        assert_eq!(l["linkinfo"]["info_data"]["id"], 7);
        assert_eq!((master("a0.7"), field("a0.7", "ifalias")), ("xbr1".into(), links::MARK.into()));
    }
    if bond {
        let l = link("xbond0").unwrap();
        assert_eq!(l["linkinfo"]["info_data"]["mode"], "active-backup");
        assert_eq!(l["linkinfo"]["info_data"]["updelay"], 200);
        assert_eq!((master("a1"), master("a2"), master("xbond0")), ("xbond0".into(), "xbond0".into(), "xbr2".into()));
    }

    // Again: nothing is made again or changed.
    let before = snapshot();
    rt.block_on(net.apply(&plan)).unwrap();
    assert_eq!(snapshot(), before);

    // The NIC moves from xbr0 to a bond; xbr0 keeps a VLAN-less uplink-less life.
    if bond {
        let b = Link::Bond {
            device: "xbond0".into(),
            mode: BondMode::ActiveBackup,
            members: vec!["a1".into(), "a2".into()],
            props: Map::new(),
        };
        let moved = HostNetwork { switches: vec![switch("xbr0", 1500, Some(b))] };
        rt.block_on(net.apply(&moved)).unwrap();
        assert_eq!(master("xbond0"), "xbr0");
        assert_eq!(master("a0"), "", "the former uplink was released");
        assert!(link("xbr2").is_none() && link("xbr3").is_none());
    }

    // Nothing wanted: everything we made goes, nothing else does.
    rt.block_on(net.apply(&HostNetwork::default())).unwrap();
    for gone in ["xbr0", "xbr1", "xbr2", "xbr3", "a0.7", "xbond0"] {
        assert!(link(gone).is_none(), "{gone} should be gone");
    }
    for nic in ["a0", "a1", "a2", "a3"] {
        assert_eq!(master(nic), "", "{nic} is free");
        let used = nic == "a0" || (bond && nic != "a3");
        let up = link(nic).unwrap()["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        assert!(up || !used, "{nic}, released, is up");
    }
    assert_eq!(master("b3"), "fbr0", "foreign bridge untouched");
}

#[test]
fn interfaces_carrying_the_host_are_never_taken() {
    if !inside("interfaces_carrying_the_host_are_never_taken") {
        return;
    }
    veths(&[("a0", "b0"), ("a1", "b1"), ("a2", "b2")]);
    sh(&["ip", "link", "set", "a1", "up"]);
    sh(&["ip", "addr", "add", "192.0.2.1/24", "dev", "a1"]);
    sh(&["ip", "link", "set", "a2", "up"]);
    sh(&["ip", "route", "add", "default", "dev", "a2"]);
    let net = Net::new(None);
    let rt = runtime();
    // NICs holding the host's address or default route are left as they are
    // (their switches get no uplink, with a warning, not an error: the
    // management NIC must not fail every later change); the rest applies.
    let plan = HostNetwork {
        switches: vec![
            switch("xbr1", 1500, Some(Link::Nic { device: "a1".into() })),
            switch("xbr0", 1500, Some(Link::Nic { device: "a0".into() })),
            switch("xbr2", 1500, Some(Link::Nic { device: "a2".into() })),
        ],
    };
    rt.block_on(net.apply(&plan)).unwrap();
    assert_eq!((master("a1"), master("a2"), master("a0")), (String::new(), String::new(), "xbr0".to_string()));
    assert!(sh(&["ip", "-j", "addr", "show", "dev", "a1"]).contains("192.0.2.1"));
    // Nor its MTU.
    let mtu = HostNetwork { switches: vec![switch("xbr1", 1400, Some(Link::Nic { device: "a1".into() }))] };
    rt.block_on(net.apply(&mtu)).unwrap();
    assert_eq!(field("a1", "mtu"), "1500");
    if kernel_has(&["type", "bond"]) {
        let b = Link::Bond {
            device: "xbond0".into(),
            mode: BondMode::Lacp,
            members: vec!["a0".into(), "a1".into()],
            props: Map::new(),
        };
        let plan = HostNetwork { switches: vec![switch("xbr0", 1500, Some(b))] };
        let e = rt.block_on(net.apply(&plan)).unwrap_err();
        assert_eq!(e, BackendError::WouldCutHost { device: "a1".into() });
        assert_eq!((master("a0"), master("a1")), ("xbond0".into(), String::new()));
    } else {
        eprintln!("this kernel has no bonding: the bond part is skipped");
    }
    rt.block_on(net.apply(&HostNetwork::default())).unwrap();
}

#[test]
fn nics_are_the_named_interfaces() {
    if !inside("nics_are_the_named_interfaces") {
        return;
    }
    veths(&[("a0", "b0"), ("a1", "b1")]);
    sh(&["ip", "link", "set", "a1", "mtu", "9000"]);
    sh(&["ip", "link", "add", "xbr9", "type", "bridge"]);
    // veths have no device behind them: found, none is a NIC.
    assert!(Net::new(None).nics().is_empty());
    let named = Net::new(Some(["a1", "xbr9", "lo", "nope", "a0"].map(String::from).to_vec())).nics();
    let names: Vec<&str> = named.iter().map(|n| n.device.as_str()).collect();
    assert_eq!(names, ["a1", "a0"]);
    assert_eq!(named[0].mac, field("a1", "address"));
    assert_eq!(named[0].mtu, 9000);
    assert!(!named[1].carrier, "a0 is down");
}

fn nft_table() -> String {
    let out = Command::new("nft").args(["list", "table", "bridge", "xapi_rs"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn guest_ports_join_their_bridge_with_locking() {
    if !inside("guest_ports_join_their_bridge_with_locking") {
        return;
    }
    if !try_sh(&["nft", "--version"]) {
        return missing("nft not found (apt-get install nftables)");
    }
    // A tap as QEMU would make it.
    sh(&["ip", "tuntap", "add", "vif9.0", "mode", "tap"]);
    let nic = Nic {
        device: "0".into(),
        mac: "02:12:34:56:78:9a".into(),
        bridge: "xbr9".into(),
        mtu: 1450,
        locking: Locking::Locked { ipv4: vec!["10.0.0.9".into()], ipv6: vec!["2001:db8::9".into()] },
        ..Default::default()
    };
    let net = Net::new(None);
    let rt = runtime();
    rt.block_on(net.attach("vif9.0", &nic)).unwrap();
    assert_eq!(master("vif9.0"), "xbr9");
    assert_eq!(field("xbr9", "ifalias"), links::MARK, "a private switch is made, and ours");
    assert_eq!((field("vif9.0", "address"), field("vif9.0", "mtu")), ("fe:12:34:56:78:9a".into(), "1450".into()));
    let t = nft_table();
    assert!(t.contains("\"vif9.0\" : jump in-vif9.0"), "{t}");
    assert!(t.contains("ether saddr != 02:12:34:56:78:9a drop") && t.contains("ip saddr 10.0.0.9 accept"), "{t}");
    assert!(!t.contains("out-vif9.0"), "{t}");
    // Twice is the same.
    rt.block_on(net.attach("vif9.0", &nic)).unwrap();
    assert_eq!(nft_table(), t);

    rt.block_on(net.set_locking("vif9.0", &nic.mac, &Locking::Disabled)).unwrap();
    let t = nft_table();
    assert!(t.contains("jump in-vif9.0") && t.contains("\"vif9.0\" : jump out-vif9.0"), "{t}");
    assert!(!t.contains("10.0.0.9"), "{t}");
    rt.block_on(net.set_locking("vif9.0", &nic.mac, &Locking::Unlocked)).unwrap();
    assert!(!nft_table().contains("vif9.0"));

    // A move to another switch: the empty private one goes.
    let moved = Nic { bridge: "xbr8".into(), locking: Locking::Disabled, ..nic.clone() };
    rt.block_on(net.attach("vif9.0", &moved)).unwrap();
    assert_eq!(master("vif9.0"), "xbr8");
    assert!(link("xbr9").is_none(), "the switch left empty is removed");

    // The NIC goes (QEMU exits): its rules and its switch too.
    sh(&["ip", "link", "del", "vif9.0"]);
    rt.block_on(net.release(&["vif9.0".to_string()]));
    assert!(!nft_table().contains("vif9.0"));
    assert!(link("xbr8").is_none());
}

fn guest_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XAPI_TEST_GUEST_DIR") {
        return d.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("xapi-rs/guest")
}

/// Whether 10.77.0.2 answers: a UDP datagram to a closed port brings back
/// ICMP port unreachable, which a connected socket reports as refused.
async fn answers(addr: &str) -> bool {
    let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
    s.connect(format!("{addr}:9")).await.unwrap();
    for _ in 0..3 {
        let _ = s.send(b"x").await;
        let mut buf = [0u8; 8];
        match tokio::time::timeout(Duration::from_secs(1), s.recv(&mut buf)).await {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => {}
        }
    }
    false
}

#[test]
fn a_guest_nic_is_a_tap_on_its_bridge() {
    if !inside("a_guest_nic_is_a_tap_on_its_bridge") {
        return;
    }
    if backend::qemu::probe::find_qemu().is_none() {
        return missing("qemu-system-x86_64 not found (apt-get install qemu-system-x86)");
    }
    if !try_sh(&["nft", "--version"]) {
        return missing("nft not found (apt-get install nftables)");
    }
    let guest = guest_dir();
    if !guest.join("vmlinuz").is_file() {
        return missing(&format!("no test guest in {} (scripts/build-test-guest.sh)", guest.display()));
    }
    let run = std::env::temp_dir().join(format!("xapi-rs-net-{}", std::process::id()));
    let cfg = QemuConfig { run_dir: run.clone(), kernel_dirs: vec![guest.clone()], ..Default::default() };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let q = Qemu::start(cfg).await.unwrap();
        // The host's side of the switch, so the guest can be reached.
        let plan = HostNetwork { switches: vec![switch("xbr0", 1500, None)] };
        q.apply_network(&plan).await.unwrap();
        sh(&["ip", "addr", "add", "10.77.0.1/24", "dev", "xbr0"]);
        let nic = Nic {
            device: "0".into(),
            mac: "02:00:0a:4d:00:02".into(),
            bridge: "xbr0".into(),
            mtu: 1400,
            locking: Locking::Locked { ipv4: vec!["10.77.0.2".into()], ipv6: vec![] },
            ..Default::default()
        };
        let spec = DomainSpec {
            uuid: "5a1c1a9e-0000-4000-8000-00000000000a".into(),
            name: "net".into(),
            vcpus: Vcpus { max: 1, at_startup: 1 },
            memory: Memory { static_max: 256 << 20, dynamic_max: 256 << 20, target: 256 << 20, ..Default::default() },
            kernel: guest.join("vmlinuz").display().to_string(),
            ramdisk: guest.join("initrd.img").display().to_string(),
            args: "console=ttyS0 no_timer_check xapi.ip=10.77.0.2/24".into(),
            nics: vec![nic.clone()],
            ..Default::default()
        };
        let domid = q.create(&spec, None).await.unwrap();
        let tap = format!("vif{domid}.0");
        // Before the guest runs, its port is ready.
        assert_eq!(master(&tap), "xbr0");
        assert_eq!((field(&tap, "address"), field(&tap, "mtu")), ("fe:00:0a:4d:00:02".into(), "1400".into()));
        assert!(nft_table().contains(&format!("jump in-{tap}")));
        q.unpause(&spec.uuid).await.unwrap();
        let serial = run.join(&spec.uuid).join("serial.log");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
        while !std::fs::read_to_string(&serial).unwrap_or_default().contains("xapi-rs test guest up") {
            assert!(tokio::time::Instant::now() < deadline, "the guest did not boot");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut reached = false;
        for _ in 0..20 {
            if answers("10.77.0.2").await {
                reached = true;
                break;
            }
        }
        assert!(reached, "the guest answers through the bridge");
        // Locked to another address: its answers are dropped.
        let other = Locking::Locked { ipv4: vec!["10.77.0.3".into()], ipv6: vec![] };
        q.set_nic_locking(&spec.uuid, "0", &other).await.unwrap();
        assert!(!answers("10.77.0.2").await, "a locked NIC sends from its addresses only");
        q.set_nic_locking(&spec.uuid, "0", &Locking::Unlocked).await.unwrap();
        assert!(answers("10.77.0.2").await);
        // Its traffic is counted on the tap.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !q.stats(&spec.uuid).is_some_and(|s| s.nics.iter().any(|n| n.0 == "0")) {
            assert!(tokio::time::Instant::now() < deadline, "no NIC statistics");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        // Hot-plug: a second NIC on its own tap, on a private switch.
        let hot = Nic { device: "1".into(), mac: "02:00:0a:4d:00:12".into(), bridge: "xbr5".into(), ..nic.clone() };
        q.plug_nic(&spec.uuid, &hot).await.unwrap();
        let tap1 = format!("vif{domid}.1");
        assert_eq!((master(&tap1), field(&tap1, "address")), ("xbr5".into(), "fe:00:0a:4d:00:12".into()));
        assert_eq!(field("xbr5", "ifalias"), links::MARK);
        // Plugged again: a move (its network went elsewhere); the empty
        // private switch goes.
        let moved = Nic { bridge: "xbr0".into(), mtu: 1300, locking: Locking::Disabled, ..hot.clone() };
        q.plug_nic(&spec.uuid, &moved).await.unwrap();
        assert_eq!((master(&tap1), field(&tap1, "mtu")), ("xbr0".into(), "1300".into()));
        assert!(link("xbr5").is_none(), "the private switch left empty is removed");
        assert!(nft_table().contains(&format!("jump out-{tap1}")));
        q.unplug_nic(&spec.uuid, "1", false).await.unwrap();
        assert!(link(&tap1).is_none() && !nft_table().contains(&tap1), "an unplugged NIC leaves nothing");

        q.shutdown(&spec.uuid, false, None).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while link(&tap).is_some() || nft_table().contains(&tap) {
            assert!(tokio::time::Instant::now() < deadline, "the tap and its rules outlive the guest");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(link("xbr0").is_some(), "a switch in the plan stays");
    });
    let _ = std::fs::remove_dir_all(&run);
}

//! Networks on the QEMU backend: guest-to-guest TCP throughput (iperf3 in
//! both test guests) over a private network of xapi-rs — its Linux bridge
//! and taps — against the very same two QEMU guests (the command lines
//! xapi-rs ran, re-run by hand) wired to a bridge and taps made by hand, in
//! the same run; and the time from a NIC hot-plug to the guest seeing
//! carrier, through `VIF.plug` and by hand (QMP `netdev_add`/`device_add`
//! and `ip link set … master`). The target is a ratio ≥ 0.95: the toolstack
//! adds no per-packet cost.
//!
//! Everything runs in a network namespace of its own (the bench re-executes
//! itself under `unshare --net`); it needs root, QEMU and the test guest
//! (scripts/build-test-guest.sh).
//!
//!     cargo bench -p bench --bench net

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xenapi::{NetworkRecord, Session, VifRecord};

const SECONDS: u32 = 8;
const ROUNDS: usize = 3;
const BOOT: Duration = Duration::from_secs(240);

fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().expect("run a command");
    assert!(st.success(), "{args:?} failed");
}

/// A guest's serial console: its log file and its shell's socket.
struct Serial {
    dir: PathBuf,
}

impl Serial {
    fn log(&self) -> String {
        std::fs::read(self.dir.join("serial.log")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
    fn type_line(&self, line: &str) {
        let mut s = UnixStream::connect(self.dir.join("serial.sock")).expect("serial socket");
        s.write_all(format!("{line}\n").as_bytes()).expect("type");
        std::thread::sleep(Duration::from_millis(300));
    }
    /// Wait for a line matching `f` in the log (after `from` bytes).
    fn wait(&self, from: usize, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<(String, Instant)> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let log = self.log();
            if let Some(l) = log.get(from..).and_then(|t| t.lines().find(|l| f(l))) {
                return Some((l.to_string(), Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
    fn wait_up(&self) {
        self.wait(0, BOOT, |l| l.contains("xapi-rs test guest up")).expect("the guest booted");
        // The shell's prompt follows the banner.
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// iperf3 from `client` to `server_ip` (whose guest runs `iperf3 -s`): Mbit/s received.
fn iperf(server: &Serial, client: &Serial, server_ip: &str) -> f64 {
    server.type_line("iperf3 -s -D >/dev/null 2>&1");
    std::thread::sleep(Duration::from_secs(1));
    let from = client.log().len();
    client.type_line(&format!("iperf3 -c {server_ip} -t {SECONDS} -f m 2>&1 | grep receiver | sed 's/^/IPERF /'"));
    let (line, _) = client
        .wait(from, Duration::from_secs(SECONDS as u64 + 60), |l| l.starts_with("IPERF ") && l.contains("Mbits/sec"))
        .expect("iperf3's result");
    server.type_line("killall iperf3");
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "Mbits/sec").expect("a rate");
    words[i - 1].parse().expect("a number")
}

/// Time from `plug` to the guest seeing carrier on a new eth1 (which it
/// brings up as soon as it appears: a down link has no carrier to read).
fn carrier_after(guest: &Serial, plug: impl FnOnce()) -> Duration {
    let from = guest.log().len();
    guest.type_line(
        "while ! ip link set eth1 up 2>/dev/null; do usleep 5000; done; \
         while ! grep -q 1 /sys/class/net/eth1/carrier 2>/dev/null; do usleep 5000; done; echo CARRIER-$((2*3))",
    );
    let t0 = Instant::now();
    plug();
    let (_, t1) =
        guest.wait(from, Duration::from_secs(120), |l| l.contains("CARRIER-6")).expect("carrier in the guest");
    t1 - t0
}

/// A QEMU guest of xapi-rs's (`pid`), re-run by hand: its own run
/// directory, its own copy of each disk, running at once, its NIC on tap
/// `tap` (see [`bench::replay_argv`]).
fn handmade(pid: u32, new_dir: &Path, tap: &str, disks: &HashMap<String, String>) -> Child {
    let (bin, args) = bench::replay_argv(pid, new_dir, tap, disks);
    Command::new(bin)
        .args(&args)
        .current_dir(new_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu")
}

fn qmp(sock: &Path, cmds: &[&str]) {
    let mut s = UnixStream::connect(sock).expect("qmp socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0u8; 65536];
    let _ = s.read(&mut buf);
    for c in std::iter::once(&r#"{"execute":"qmp_capabilities"}"#).chain(cmds) {
        s.write_all(c.as_bytes()).expect("qmp write");
        let n = s.read(&mut buf).unwrap_or(0);
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert!(!reply.contains("\"error\""), "{c}: {reply}");
    }
}

async fn run() {
    let guest = bench::guest_dir();
    if !guest.join("vmlinuz").is_file() || bench::which("qemu-system-x86_64").is_none() {
        println!("| net | not available (needs QEMU and the test guest: scripts/build-test-guest.sh) |");
        return;
    }
    sh(&["ip", "link", "set", "lo", "up"]);
    // The host's NIC: a veth (micro-VM kernels have no dummy driver).
    sh(&["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    sh(&["ip", "link", "set", "eth0", "up"]);
    sh(&["ip", "link", "set", "eth0p", "up"]);
    let mut data_dir = PathBuf::new();
    let x = bench::start_xapid_with(true, |cfg| {
        cfg.backend = "qemu".into();
        cfg.guest_kernel_dirs = vec![guest.clone()];
        cfg.nics = Some(vec!["eth0".into()]);
        data_dir = cfg.data_dir.clone();
    })
    .await;
    let s = Session::builder(&format!("http://{}", x.addr)).login("root", "pw").await.expect("login");
    let net = s
        .network()
        .create(&NetworkRecord { name_label: "bench".into(), mtu: 1500, ..Default::default() })
        .await
        .expect("network");
    let templates = s.vm().get_all_records_where(r#"field "is_a_template"="true""#).await.expect("templates");
    let (tmpl, _) = templates.into_iter().find(|(_, r)| r.name_label == "Debian Etch 4.0").expect("a PV template");
    let mut vms = Vec::new();
    for (i, ip) in ["10.9.0.1", "10.9.0.2"].iter().enumerate() {
        let vm = s.vm().clone(&tmpl, &format!("net-bench-{i}")).await.expect("clone");
        s.vm().provision(&vm).await.expect("provision");
        s.vm().set_pv_bootloader(&vm, "").await.expect("bootloader");
        s.vm().set_pv_kernel(&vm, &guest.join("vmlinuz").to_string_lossy()).await.expect("kernel");
        s.vm().set_pv_ramdisk(&vm, &guest.join("initrd.img").to_string_lossy()).await.expect("ramdisk");
        s.vm().set_pv_args(&vm, &format!("console=ttyS0 no_timer_check xapi.ip={ip}/24")).await.expect("args");
        let m = 256i64 << 20;
        s.vm().set_memory_limits(&vm, 128 << 20, m, m, m).await.expect("memory");
        s.vif()
            .create(&VifRecord {
                device: "0".into(),
                network: net.clone(),
                vm: vm.clone(),
                mtu: 1500,
                ..Default::default()
            })
            .await
            .expect("vif");
        s.vm().start(&vm, false, false).await.expect("start");
        vms.push(vm);
    }
    let mut serials = Vec::new();
    let mut pids = Vec::new();
    for vm in &vms {
        let uuid = s.vm().get_uuid(vm).await.expect("uuid");
        let dir = data_dir.join("qemu").join(&uuid);
        let pid: u32 = std::fs::read_to_string(dir.join("qemu.pid")).expect("pid").trim().parse().expect("pid");
        // Its disk images by device id (`vbd-<userdevice>`), as the SR keeps them.
        let mut disks = HashMap::new();
        for vbd in s.vm().get_vbds(vm).await.expect("VBDs") {
            let dev = s.vbd().get_userdevice(&vbd).await.expect("userdevice");
            let vdi = s.vbd().get_vdi(&vbd).await.expect("VDI");
            let sr = s.vdi().get_sr(&vdi).await.expect("SR");
            let (sr_uuid, vdi_uuid) =
                (s.sr().get_uuid(&sr).await.expect("uuid"), s.vdi().get_uuid(&vdi).await.expect("uuid"));
            let path = data_dir.join("sr").join(sr_uuid).join(format!("{vdi_uuid}.raw"));
            disks.insert(format!("vbd-{dev}"), path.to_string_lossy().into_owned());
        }
        pids.push((pid, disks));
        serials.push(Serial { dir });
    }
    for g in &serials {
        g.wait_up();
    }

    // The same guests by hand, running beside them (each pair on its own
    // switch), so the rounds can alternate and share the machine's state.
    sh(&["ip", "link", "add", "hbr", "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
    sh(&["ip", "link", "set", "hbr", "up"]);
    let base = tempfile::tempdir().expect("tempdir");
    let mut kids = Vec::new();
    let mut hand = Vec::new();
    for (i, (pid, disks)) in pids.iter().enumerate() {
        let nd = base.path().join(format!("g{i}"));
        let tap = format!("htap{i}");
        kids.push(handmade(*pid, &nd, &tap, disks));
        let end = Instant::now() + Duration::from_secs(20);
        while !Path::new(&format!("/sys/class/net/{tap}")).exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        sh(&["ip", "link", "set", &tap, "master", "hbr", "up"]);
        hand.push(Serial { dir: nd });
    }
    for g in &hand {
        g.wait_up();
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(iperf(&serials[0], &serials[1], "10.9.0.1"));
        theirs.push(iperf(&hand[0], &hand[1], "10.9.0.1"));
    }

    // Hot-plug through the API: a second VIF on the same network; by hand:
    // QMP netdev_add and device_add, then the tap into the bridge.
    let vif2 = s
        .vif()
        .create(&VifRecord {
            device: "1".into(),
            network: net.clone(),
            vm: vms[1].clone(),
            mtu: 1500,
            ..Default::default()
        })
        .await
        .expect("vif");
    let ours_plug = carrier_after(&serials[1], || {
        let fut = s.vif().plug(&vif2);
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(fut)).expect("VIF.plug");
    });
    let qmp_sock = hand[1].dir.join("qmp.sock");
    let hand_plug = carrier_after(&hand[1], || {
        qmp(
            &qmp_sock,
            &[
                r#"{"execute":"netdev_add","arguments":{"type":"tap","id":"hn1","ifname":"htap9","script":"no","downscript":"no"}}"#,
                r#"{"execute":"device_add","arguments":{"driver":"virtio-net-pci","netdev":"hn1","id":"hnic1","mac":"02:00:00:00:09:09"}}"#,
            ],
        );
        sh(&["ip", "link", "set", "htap9", "master", "hbr", "up"]);
    });
    for vm in &vms {
        s.vm().hard_shutdown(vm).await.expect("shutdown");
    }
    for mut k in kids {
        let _ = k.kill();
        let _ = k.wait();
    }

    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let (o, t) = (best(&ours), best(&theirs));
    println!("| what | xapi-rs | by hand | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| guest→guest TCP, iperf3 {SECONDS} s, best of {ROUNDS} (Mbit/s) | {o:.0} | {t:.0} | {:.2} |",
        if t > 0.0 { o / t } else { 0.0 }
    );
    println!(
        "| NIC hot-plug → carrier in the guest (ms) | {:.0} | {:.0} | {:.2} |",
        ours_plug.as_secs_f64() * 1e3,
        hand_plug.as_secs_f64() * 1e3,
        ours_plug.as_secs_f64() / hand_plug.as_secs_f64().max(1e-9)
    );
    println!("\nall rounds (Mbit/s): xapi-rs {ours:?}, by hand {theirs:?}");
}

fn main() {
    bench::in_own_netns(run);
}

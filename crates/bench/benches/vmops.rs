//! VM lifecycle on the QEMU backend against libvirt and against QEMU run by
//! hand, in the same run: the same test guest (scripts/build-test-guest.sh:
//! Debian's kernel, busybox, qemu-guest-agent), the same memory and vCPU,
//! started, suspended to disk, resumed, shut down cleanly through the guest
//! agent, started again and destroyed — through the XenAPI (`VM.start`,
//! `suspend`, `resume`, `clean_shutdown`, `hard_shutdown`) and through
//! libvirt (`virsh create`, `save`, `restore`, `shutdown --mode agent`,
//! `destroy`); by hand, the very command line xapi-rs ran (from /proc) is
//! started and killed. Rounds alternate so all share the machine's state. A
//! boot is timed from the call to the guest's banner on its serial console;
//! the rest until the call's end state (libvirt: until `virsh domstate`
//! says so). Then the toolstack's memory per running guest: the resident
//! size of xapid (in the bench's process) and of libvirtd with 1 and with
//! `MEM_GUESTS` guests running, less their size with none.
//!
//! libvirt runs its guests as root here (a `qemu.conf` saying so is bound
//! over the system's inside the bench's mount namespace): with /dev/kvm
//! present but unusable, libvirt otherwise probes QEMU again on every
//! start, which is not its steady state.
//!
//! Needs root, QEMU, the test guest and libvirt's daemons
//! (`apt-get install libvirt-daemon-system`; none may be running: the bench
//! starts `virtlogd` and `libvirtd` itself and stops them). It runs in a
//! network namespace of its own (re-executing itself under `unshare --net`),
//! so xapid's management bridge is made there.
//!
//!     cargo bench -p bench --bench vmops

use std::alloc::{GlobalAlloc, Layout};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use xenapi::Session;

/// xapid's allocator (mimalloc, as the real binary), counting the bytes in
/// use: the resident size hides growth that reuses freed pages, the count
/// does not.
struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = mimalloc::MiMalloc.alloc(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as i64, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = mimalloc::MiMalloc.alloc_zeroed(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as i64, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Relaxed);
        mimalloc::MiMalloc.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = mimalloc::MiMalloc.realloc(p, l, new);
        if !q.is_null() {
            LIVE.fetch_add(new as i64 - l.size() as i64, Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Rounds of each peer (`VMOPS_ROUNDS`, default 3).
fn rounds() -> usize {
    std::env::var("VMOPS_ROUNDS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(3)
}
const MEM_MIB: i64 = 256;
const BOOT: Duration = Duration::from_secs(300);
const BANNER: &str = "xapi-rs test guest up";
const URI: &str = "qemu:///system";
const DOMAIN: &str = "vmops-bench";
/// Guests running at once for the memory reading.
const MEM_GUESTS: usize = 10;

fn virsh(args: &[&str]) -> Result<String, String> {
    let out = Command::new("virsh").arg("-c").arg(URI).args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Instant {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return Instant::now();
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn banner_in(log: &Path) -> bool {
    std::fs::read(log).is_ok_and(|b| String::from_utf8_lossy(&b).contains(BANNER))
}

fn domstate() -> String {
    virsh(&["domstate", DOMAIN]).map(|s| s.trim().to_string()).unwrap_or_else(|_| "gone".into())
}

/// The libvirt twin of xapi-rs's PV guest: direct kernel boot, the same
/// memory and vCPU, a serial log, the guest agent's channel and a VNC
/// socket, as xapi-rs gives its guests.
fn domain_xml(name: &str, kernel: &Path, initrd: &Path, dir: &Path) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>{MEM_MIB}</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>\
         <cmdline>console=ttyS0 no_timer_check</cmdline></os><features><acpi/></features>\
         <on_poweroff>destroy</on_poweroff><devices>\
         <serial type='file'><source path='{}/serial.log'/></serial>\
         <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
         <graphics type='vnc' socket='{}/vnc.sock'/><memballoon model='none'/></devices>\
         <seclabel type='none'/></domain>",
        kernel.display(),
        initrd.display(),
        dir.display(),
        dir.display()
    )
}

/// A process's resident set size in KiB.
fn rss_kib(pid: &str) -> i64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Started by hand: the replayed command line, in its own directory.
fn hand_round(t: &mut Times, bin: &str, args: &[String], dir: &Path) {
    let log = dir.join("serial.log");
    for _ in 0..2 {
        let _ = std::fs::remove_file(&log);
        let t0 = Instant::now();
        let mut child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu by hand");
        t.start_call.push(secs(Instant::now() - t0));
        let t1 = wait_for("the hand-made guest's banner", BOOT, || banner_in(&log));
        t.boot.push(secs(t1 - t0));
        std::thread::sleep(AGENT_SETTLE);
        let t0 = Instant::now();
        let _ = child.kill();
        let _ = child.wait();
        t.hard_shutdown.push(secs(Instant::now() - t0));
    }
}

#[derive(Default)]
struct Times {
    boot: Vec<f64>,
    /// The start call alone (VM.start / virsh create) of each boot.
    start_call: Vec<f64>,
    suspend: Vec<f64>,
    resume: Vec<f64>,
    clean_shutdown: Vec<f64>,
    hard_shutdown: Vec<f64>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        0.0
    } else {
        s[s.len() / 2]
    }
}

/// Settles after a boot: the guest agent has started by then in both.
const AGENT_SETTLE: Duration = Duration::from_secs(3);

fn libvirt_round(t: &mut Times, xml: &Path, dir: &Path) {
    let log = dir.join("serial.log");
    let save = dir.join("save.img");
    for second in [false, true] {
        let _ = std::fs::remove_file(&log);
        let t0 = Instant::now();
        if let Err(e) = virsh(&["create", &xml.to_string_lossy()]) {
            panic!("virsh create: {e}");
        }
        t.start_call.push(secs(Instant::now() - t0));
        let t1 = wait_for("the libvirt guest's banner", BOOT, || banner_in(&log));
        t.boot.push(secs(t1 - t0));
        std::thread::sleep(AGENT_SETTLE);
        if second {
            let t0 = Instant::now();
            virsh(&["destroy", DOMAIN]).expect("virsh destroy");
            let t1 = wait_for("the domain gone", BOOT, || domstate() == "gone");
            t.hard_shutdown.push(secs(t1 - t0));
            continue;
        }
        let _ = std::fs::remove_file(&save);
        let t0 = Instant::now();
        virsh(&["save", DOMAIN, &save.to_string_lossy()]).expect("virsh save");
        t.suspend.push(secs(Instant::now() - t0));
        let t0 = Instant::now();
        virsh(&["restore", &save.to_string_lossy()]).expect("virsh restore");
        let t1 = wait_for("the domain running", BOOT, || domstate() == "running");
        t.resume.push(secs(t1 - t0));
        std::thread::sleep(AGENT_SETTLE);
        let t0 = Instant::now();
        virsh(&["shutdown", DOMAIN, "--mode", "agent"]).expect("virsh shutdown");
        let t1 = wait_for("the domain gone", BOOT, || domstate() == "gone");
        t.clean_shutdown.push(secs(t1 - t0));
    }
}

async fn xapi_round(t: &mut Times, s: &Session, vm: &xenapi::Ref<xenapi::Vm>, log: &Path) {
    for second in [false, true] {
        let t0 = Instant::now();
        s.vm().start(vm, false, false).await.expect("VM.start");
        t.start_call.push(secs(Instant::now() - t0));
        let t1 = wait_for("the xapi-rs guest's banner", BOOT, || banner_in(log));
        t.boot.push(secs(t1 - t0));
        std::thread::sleep(AGENT_SETTLE);
        if second {
            let t0 = Instant::now();
            s.vm().hard_shutdown(vm).await.expect("VM.hard_shutdown");
            t.hard_shutdown.push(secs(Instant::now() - t0));
            continue;
        }
        let t0 = Instant::now();
        s.vm().suspend(vm).await.expect("VM.suspend");
        t.suspend.push(secs(Instant::now() - t0));
        let t0 = Instant::now();
        s.vm().resume(vm, false, false).await.expect("VM.resume");
        t.resume.push(secs(Instant::now() - t0));
        std::thread::sleep(AGENT_SETTLE);
        let t0 = Instant::now();
        s.vm().clean_shutdown(vm).await.expect("VM.clean_shutdown");
        t.clean_shutdown.push(secs(Instant::now() - t0));
    }
}

async fn run() {
    let guest = bench::guest_dir();
    let missing: Vec<&str> = ["qemu-system-x86_64", "virsh", "libvirtd", "virtlogd"]
        .into_iter()
        .filter(|t| bench::which(t).is_none())
        .collect();
    if !guest.join("vmlinuz").is_file() || !missing.is_empty() {
        println!(
            "| vmops | not available: needs the test guest (scripts/build-test-guest.sh) and {missing:?} \
             (apt-get install qemu-system-x86 libvirt-daemon-system) |"
        );
        return;
    }
    // The namespace's lo, and a veth as the host's NIC (for xenbr0).
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"],
        &["link", "set", "eth0", "up"],
    ] {
        let status = Command::new("ip").args(args).status();
        assert!(status.is_ok_and(|s| s.success()), "ip {args:?}");
    }

    // libvirt's QEMU runs as libvirt-qemu: its files in a directory it may use.
    let base = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ldir = base.path().join("libvirt");
    std::fs::create_dir(&ldir).expect("dir");
    std::fs::set_permissions(&ldir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (kernel, initrd) = (base.path().join("vmlinuz"), base.path().join("initrd.img"));
    std::fs::copy(guest.join("vmlinuz"), &kernel).expect("copy kernel");
    std::fs::copy(guest.join("initrd.img"), &initrd).expect("copy initrd");
    let xml = base.path().join("domain.xml");
    std::fs::write(&xml, domain_xml(DOMAIN, &kernel, &initrd, &ldir)).expect("domain xml");
    for d in ["/run/libvirt", "/var/log/libvirt", "/var/lib/libvirt/qemu", "/var/cache/libvirt"] {
        let _ = std::fs::create_dir_all(d);
    }
    // Guests as root: libvirt's steady state here (see the module's doc).
    let conf = base.path().join("qemu.conf");
    std::fs::write(&conf, "user = \"root\"\ngroup = \"root\"\n").expect("qemu.conf");
    let system = Path::new("/etc/libvirt/qemu.conf");
    let bound = system.is_file()
        && Command::new("mount")
            .args(["--bind", &conf.to_string_lossy(), &system.to_string_lossy()])
            .status()
            .is_ok_and(|s| s.success());
    println!("libvirt's guests run as {}", if bound { "root" } else { "its configured user (qemu.conf not replaced)" });
    let mut daemons = Vec::new();
    for d in ["virtlogd", "libvirtd"] {
        let child = Command::new(bench::which(d).expect("daemon"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {d}: {e}"));
        daemons.push(child);
    }
    wait_for("libvirtd's socket", Duration::from_secs(30), || virsh(&["version"]).is_ok());
    println!("{}", virsh(&["version"]).unwrap_or_default().lines().find(|l| l.contains("hypervisor")).unwrap_or(""));

    let mut data_dir = PathBuf::new();
    let x = bench::start_xapid_with(true, |cfg| {
        cfg.backend = "qemu".into();
        cfg.guest_kernel_dirs = vec![guest.clone()];
        cfg.nics = Some(vec!["eth0".into()]);
        data_dir = cfg.data_dir.clone();
    })
    .await;
    let s = Session::builder(&format!("http://{}", x.addr)).login("root", "pw").await.expect("login");
    let templates = s.vm().get_all_records_where(r#"field "is_a_template"="true""#).await.expect("templates");
    let (tmpl, _) = templates.into_iter().find(|(_, r)| r.name_label == "Debian Etch 4.0").expect("a PV template");
    let vm = s.vm().clone(&tmpl, "vmops-bench").await.expect("clone");
    // A VM, not a template, and no disks: the libvirt twin has none either.
    s.vm().set_is_a_template(&vm, false).await.expect("not a template");
    s.vm().set_pv_bootloader(&vm, "").await.expect("bootloader");
    s.vm().set_pv_kernel(&vm, &guest.join("vmlinuz").to_string_lossy()).await.expect("kernel");
    s.vm().set_pv_ramdisk(&vm, &guest.join("initrd.img").to_string_lossy()).await.expect("ramdisk");
    s.vm().set_pv_args(&vm, "console=ttyS0 no_timer_check").await.expect("args");
    let m = MEM_MIB << 20;
    s.vm().set_memory_limits(&vm, m, m, m, m).await.expect("memory");
    s.vm().set_vcpus_max(&vm, 1).await.expect("vcpus");
    s.vm().set_vcpus_at_startup(&vm, 1).await.expect("vcpus");
    let uuid = s.vm().get_uuid(&vm).await.expect("uuid");
    let xlog = data_dir.join("qemu").join(&uuid).join("serial.log");

    // The command line to run by hand: xapi-rs's own, read while it runs.
    s.vm().start(&vm, false, false).await.expect("VM.start");
    let qemu_dir = data_dir.join("qemu").join(&uuid);
    let pid: u32 = std::fs::read_to_string(qemu_dir.join("qemu.pid")).expect("pid").trim().parse().expect("pid");
    let hdir = base.path().join("hand");
    // No disks: the libvirt twin has none either.
    let (bin, args) = bench::replay_argv(pid, &hdir, "htap0", &Default::default());
    s.vm().hard_shutdown(&vm).await.expect("VM.hard_shutdown");

    let (mut ours, mut theirs, mut hand) = (Times::default(), Times::default(), Times::default());
    let rounds = rounds();
    for _ in 0..rounds {
        xapi_round(&mut ours, &s, &vm, &xlog).await;
        hand_round(&mut hand, &bin, &args, &hdir);
        libvirt_round(&mut theirs, &xml, &ldir);
    }

    // Memory per running guest: xapid is this process.
    let libvirtd = daemons[1].id().to_string();
    let mut vms = vec![vm.clone()];
    for i in 1..MEM_GUESTS {
        vms.push(s.vm().clone(&vm, &format!("vmops-mem-{i}")).await.expect("clone"));
    }
    let settle = Duration::from_secs(12); // two statistics samples
    std::thread::sleep(settle);
    let (ours0, heap0, theirs0) = (rss_kib("self"), LIVE.load(Relaxed) / 1024, rss_kib(&libvirtd));
    let mut ours_mem = Vec::new();
    for (i, v) in vms.iter().enumerate() {
        let _ = std::fs::remove_file(
            data_dir.join("qemu").join(s.vm().get_uuid(v).await.expect("uuid")).join("serial.log"),
        );
        s.vm().start(v, false, false).await.expect("VM.start");
        if i == 0 || i + 1 == MEM_GUESTS {
            for v in &vms[..=i] {
                let log = data_dir.join("qemu").join(s.vm().get_uuid(v).await.expect("uuid")).join("serial.log");
                wait_for("a guest's banner", BOOT, || banner_in(&log));
            }
            std::thread::sleep(settle);
            ours_mem.push((i + 1, rss_kib("self") - ours0, LIVE.load(Relaxed) / 1024 - heap0));
        }
    }
    for v in &vms {
        s.vm().hard_shutdown(v).await.expect("VM.hard_shutdown");
    }
    let mut theirs_mem = Vec::new();
    let mut names = Vec::new();
    for i in 0..MEM_GUESTS {
        let name = format!("vmops-mem-{i}");
        let d = ldir.join(&name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let x = base.path().join(format!("{name}.xml"));
        std::fs::write(&x, domain_xml(&name, &kernel, &initrd, &d)).expect("domain xml");
        virsh(&["create", &x.to_string_lossy()]).unwrap_or_else(|e| panic!("virsh create: {e}"));
        names.push(name);
        if i == 0 || i + 1 == MEM_GUESTS {
            for n in &names {
                wait_for("a libvirt guest's banner", BOOT, || banner_in(&ldir.join(n).join("serial.log")));
            }
            std::thread::sleep(settle);
            theirs_mem.push((i + 1, rss_kib(&libvirtd) - theirs0));
        }
    }
    for n in &names {
        let _ = virsh(&["destroy", n]);
    }
    for mut d in daemons {
        let _ = d.kill();
        let _ = d.wait();
    }
    if bound {
        let _ = Command::new("umount").arg(system).status();
    }

    println!(
        "| operation (median of {rounds}, s) | xapi-rs | by hand | libvirt | xapi-rs − by hand | ratio to libvirt |"
    );
    println!("|---|---|---|---|---|---|");
    let hand_rows: [(&str, &Vec<f64>, &Vec<f64>); 2] = [
        ("start → banner on the serial console", &ours.boot, &hand.boot),
        ("hard shutdown (by hand: SIGKILL and wait)", &ours.hard_shutdown, &hand.hard_shutdown),
    ];
    for (what, o, h) in hand_rows {
        let (o, h) = (median(o), median(h));
        println!("| {what} (vs by hand) | {o:.2} | {h:.2} | | {:+.2} | |", o - h);
    }
    println!("\nby hand: boot {:?} kill {:?}", hand.boot, hand.hard_shutdown);
    println!(
        "\n| toolstack memory, KiB per running guest | xapid, heap in use | xapid, resident | libvirtd, resident |"
    );
    println!("|---|---|---|---|");
    for ((n, o, h), (_, t)) in ours_mem.iter().zip(&theirs_mem) {
        let per = |x: i64| x as f64 / *n as f64;
        println!("| {n} guest(s) (growth {h} / {o} / {t} KiB) | {:.0} | {:.0} | {:.0} |", per(*h), per(*o), per(*t));
    }
    println!("(with no guest: xapid's heap {heap0} KiB, resident {ours0} KiB; libvirtd resident {theirs0} KiB)\n");

    println!("| operation (median of {rounds}, s) | xapi-rs | libvirt | ratio |");
    println!("|---|---|---|---|");
    let after = |t: &Times| -> Vec<f64> { t.boot.iter().zip(&t.start_call).map(|(b, c)| b - c).collect() };
    let (ours_after, theirs_after) = (after(&ours), after(&theirs));
    let rows: [(&str, &Vec<f64>, &Vec<f64>); 7] = [
        ("start → banner on the serial console", &ours.boot, &theirs.boot),
        ("the start call alone (VM.start / virsh create)", &ours.start_call, &theirs.start_call),
        ("start call returned → banner (the guest's own boot)", &ours_after, &theirs_after),
        ("suspend to disk (VM.suspend / virsh save)", &ours.suspend, &theirs.suspend),
        ("resume (VM.resume / virsh restore)", &ours.resume, &theirs.resume),
        ("clean shutdown through the guest agent", &ours.clean_shutdown, &theirs.clean_shutdown),
        ("hard shutdown (VM.hard_shutdown / virsh destroy)", &ours.hard_shutdown, &theirs.hard_shutdown),
    ];
    for (what, o, t) in rows {
        let (o, t) = (median(o), median(t));
        println!("| {what} | {o:.2} | {t:.2} | {:.2} |", if t > 0.0 { o / t } else { 0.0 });
    }
    println!(
        "\nall samples (s): xapi-rs boot {:?} suspend {:?} resume {:?} clean {:?} hard {:?}",
        ours.boot, ours.suspend, ours.resume, ours.clean_shutdown, ours.hard_shutdown
    );
    println!(
        "libvirt boot {:?} save {:?} restore {:?} shutdown {:?} destroy {:?}",
        theirs.boot, theirs.suspend, theirs.resume, theirs.clean_shutdown, theirs.hard_shutdown
    );
}

fn main() {
    bench::in_own_netns(run);
}

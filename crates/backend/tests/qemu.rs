//! The QEMU building blocks against a real QEMU running the test guest that
//! scripts/build-test-guest.sh builds (found through XAPI_TEST_GUEST_DIR or
//! the default cache directory). Without QEMU or the guest a test prints why
//! and passes, unless CI is set: then it fails.

use backend::qemu::agent::Agent;
use backend::qemu::probe::{self, Accel, GuestRun};
use backend::qemu::qmp::{Event, EventKind, Qmp};
use backend::qemu::QmpError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::UnboundedReceiver;

/// TCG on a busy 2-core machine with other guests booting: the guest alone
/// takes about 20 s.
const BOOT: Duration = Duration::from_secs(150);
const STEP: Duration = Duration::from_secs(30);
const BANNER: &str = "xapi-rs test guest up";

fn guest_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XAPI_TEST_GUEST_DIR") {
        return d.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("xapi-rs/guest")
}

fn missing<T>(what: String) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{what}; CI is set, so this is a failure (install qemu-system-x86, run scripts/build-test-guest.sh)");
    }
    eprintln!("skipped: {what}");
    None
}

/// QEMU, or None when the test is to be skipped.
fn setup_qemu() -> Option<PathBuf> {
    probe::find_qemu().or_else(|| missing("qemu-system-x86_64 not found".into()))
}

/// QEMU and the guest directory, or None when the test is to be skipped.
fn setup() -> Option<(PathBuf, PathBuf)> {
    let qemu = setup_qemu()?;
    let dir = guest_dir();
    if !dir.join("vmlinuz").is_file() || !dir.join("initrd.img").is_file() {
        return missing(format!("no test guest in {} (scripts/build-test-guest.sh)", dir.display()));
    }
    Some((qemu, dir))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The accelerator the probe picks, probed once for all tests.
fn accel(qemu: &Path) -> Accel {
    static ACCEL: OnceLock<Accel> = OnceLock::new();
    *ACCEL.get_or_init(|| {
        let (accel, reason) = runtime().block_on(probe::choose_accel(qemu)).unwrap();
        eprintln!("accelerator: {accel} ({reason})");
        accel
    })
}

/// A running QEMU with the test guest; killed (and its directory removed)
/// when dropped, so a failing test leaves nothing behind.
struct Vm {
    child: tokio::process::Child,
    dir: PathBuf,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Vm {
    fn start(qemu: &Path, guest: &Path, accel: Accel, extra: &[String]) -> Vm {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xapi-rs-qemu-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = |f: &str| dir.join(f).display().to_string();
        let log = std::fs::File::create(dir.join("qemu.log")).unwrap();
        let child = tokio::process::Command::new(qemu)
            .args(["-accel", accel.as_arg(), "-m", "256", "-display", "none", "-nodefaults", "-no-user-config"])
            .arg("-kernel")
            .arg(guest.join("vmlinuz"))
            .arg("-initrd")
            .arg(guest.join("initrd.img"))
            // no_timer_check: under TCG with several guests booting on two
            // cores, the kernel's IO-APIC timer check can fail and panic.
            .args(["-append", "console=ttyS0 no_timer_check"])
            .arg("-chardev")
            .arg(format!("socket,id=ser0,path={},server=on,wait=off,logfile={}", p("serial.sock"), p("serial.log")))
            .args(["-serial", "chardev:ser0"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", p("qmp.sock")))
            .args(["-device", "virtio-serial", "-chardev"])
            .arg(format!("socket,id=qga0,path={},server=on,wait=off", p("qga.sock")))
            .args(["-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"])
            .args(["-device", "pvpanic"])
            .args(["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Vm { child, dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path("serial.log")).unwrap_or_default()).into_owned()
    }

    /// QMP, once QEMU has made its socket.
    async fn qmp(&self) -> (Qmp, UnboundedReceiver<Event>) {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match Qmp::connect(&self.path("qmp.sock"), STEP).await {
                Ok(c) => return c,
                Err(e) if tokio::time::Instant::now() > deadline => panic!("QMP: {e}; {}", self.qemu_log()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn qemu_log(&self) -> String {
        std::fs::read_to_string(self.path("qemu.log")).unwrap_or_default()
    }

    /// Wait until the serial console has shown `needle` `times` times.
    async fn wait_serial(&self, needle: &str, times: usize) {
        let deadline = tokio::time::Instant::now() + BOOT;
        while self.serial().matches(needle).count() < times {
            if tokio::time::Instant::now() > deadline {
                let s = self.serial();
                panic!("{needle:?} ×{times} not on the serial console within {BOOT:?}; last output:\n{}", tail(&s));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Type a line on the guest's serial console (a root shell).
    async fn type_line(&self, line: &str) {
        let mut s = tokio::net::UnixStream::connect(self.path("serial.sock")).await.unwrap();
        s.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        // Keep the connection until the shell has read the line.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    async fn exits_cleanly(&mut self) {
        let status = tokio::time::timeout(STEP, self.child.wait()).await.expect("QEMU did not exit").unwrap();
        assert!(status.success(), "QEMU exited with {status}; {}", self.qemu_log());
    }
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(3000);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

/// The next event that `want` accepts, within `limit`; events skipped on the
/// way are shown if it never comes.
async fn wait_event(
    events: &mut UnboundedReceiver<Event>,
    limit: Duration,
    what: &str,
    want: impl Fn(&EventKind) -> bool,
) -> Event {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) if want(&ev.kind()) => return ev,
            Ok(Some(ev)) => seen.push(ev.name),
            Ok(None) => panic!("QMP closed before {what}; events seen: {seen:?}"),
            Err(_) => panic!("no {what} within {limit:?}; events seen: {seen:?}"),
        }
    }
}

async fn status(qmp: &Qmp) -> String {
    qmp.execute("query-status", Value::Null).await.unwrap()["status"].as_str().unwrap_or_default().to_string()
}

/// The agent connection, after it has answered once (it starts just after the
/// banner).
async fn connect_agent(vm: &Vm) -> Agent {
    let mut agent = Agent::connect(&vm.path("qga.sock"), STEP).await.unwrap();
    agent.sync(BOOT).await.unwrap();
    agent
}

#[test]
fn probe_finds_qemu_and_runs_a_real_guest() {
    let Some(qemu) = setup_qemu() else { return };
    runtime().block_on(async {
        let p = probe::probe(Some(&qemu)).await.unwrap();
        eprintln!("{} → {} ({})", p.qemu.version_line, p.accel, p.reason);
        assert!(p.qemu.version.0 >= 6, "{:?}", p.qemu);
        // The image really reaches long mode and exits as the KVM check expects:
        // under TCG it must finish, so a KVM timeout means KVM, not the image.
        let run = probe::run_probe_guest(&qemu, Accel::Tcg, STEP).await.unwrap();
        assert!(matches!(run, GuestRun::Finished { .. }), "{run:?}");
        if p.accel == Accel::Kvm {
            let run = probe::run_probe_guest(&qemu, Accel::Kvm, STEP).await.unwrap();
            assert!(matches!(run, GuestRun::Finished { .. }), "{run:?}");
        }
    });
}

#[test]
fn guest_boots_reports_through_the_agent_pauses_and_powers_off_by_acpi() {
    let Some((qemu, guest)) = setup() else { return };
    let accel = accel(&qemu);
    runtime().block_on(async {
        let mut vm = Vm::start(&qemu, &guest, accel, &[]);
        let (qmp, mut events) = vm.qmp().await;
        assert!(qmp.greeting().version.0 >= 6);
        assert_eq!(status(&qmp).await, "running");
        vm.wait_serial(BANNER, 1).await;

        let mut agent = connect_agent(&vm).await;
        assert_eq!(agent.execute("guest-ping", Value::Null).await, Ok(json!({})));
        let os = agent.execute("guest-get-osinfo", Value::Null).await.unwrap();
        assert_eq!(os["id"], "xapi-rs-test-guest", "{os}");
        assert!(os["kernel-release"].as_str().is_some_and(|k| !k.is_empty()), "{os}");
        // QEMU's user network hands out 10.0.2.15; udhcpc has it before the banner.
        let nics = agent.execute("guest-network-get-interfaces", Value::Null).await.unwrap();
        let eth0 = nics.as_array().and_then(|a| a.iter().find(|n| n["name"] == "eth0")).cloned();
        let addrs = eth0.as_ref().and_then(|n| n["ip-addresses"].as_array()).cloned().unwrap_or_default();
        assert!(addrs.iter().any(|a| a["ip-address"] == "10.0.2.15"), "{nics}");
        let bad = agent.execute("guest-no-such-command", Value::Null).await;
        assert!(matches!(bad, Err(QmpError::Command { ref class, .. }) if class == "CommandNotFound"), "{bad:?}");

        // A hot-plugged disk shows up in the guest, and unplugs with the
        // guest's cooperation (ACPI eject) and a DEVICE_DELETED event.
        let disk = vm.path("disk1.raw");
        std::fs::File::create(&disk).unwrap().set_len(16 << 20).unwrap();
        let file = json!({"driver": "file", "filename": disk.display().to_string()});
        qmp.execute("blockdev-add", json!({"driver": "raw", "node-name": "disk1", "file": file})).await.unwrap();
        qmp.execute("device_add", json!({"driver": "virtio-blk-pci", "drive": "disk1", "id": "vbd1"})).await.unwrap();
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let disks = agent.execute("guest-get-disks", Value::Null).await.unwrap();
            if disks.as_array().is_some_and(|d| d.iter().any(|d| d["name"] == "/dev/vda")) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "guest never saw the disk: {disks}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        qmp.execute("device_del", json!({"id": "vbd1"})).await.unwrap();
        wait_event(
            &mut events,
            STEP,
            "DEVICE_DELETED vbd1",
            |k| matches!(k, EventKind::DeviceDeleted { device: Some(d), .. } if d == "vbd1"),
        )
        .await;
        qmp.execute("blockdev-del", json!({"node-name": "disk1"})).await.unwrap();
        let err = qmp.execute("device_del", json!({"id": "vbd1"})).await;
        assert!(matches!(err, Err(QmpError::Command { ref class, .. }) if class == "DeviceNotFound"), "{err:?}");

        qmp.execute("stop", Value::Null).await.unwrap();
        wait_event(&mut events, STEP, "STOP", |k| *k == EventKind::Stop).await;
        assert_eq!(status(&qmp).await, "paused");
        qmp.execute("cont", Value::Null).await.unwrap();
        wait_event(&mut events, STEP, "RESUME", |k| *k == EventKind::Resume).await;
        assert_eq!(status(&qmp).await, "running");

        // The ACPI power button: busybox acpid powers the guest off.
        qmp.execute("system_powerdown", Value::Null).await.unwrap();
        wait_event(&mut events, STEP, "POWERDOWN", |k| *k == EventKind::Powerdown).await;
        let ev = wait_event(&mut events, STEP, "SHUTDOWN", |k| matches!(k, EventKind::Shutdown { .. })).await;
        assert_eq!(ev.kind(), EventKind::Shutdown { guest: true, reason: "guest-shutdown".into() });
        vm.exits_cleanly().await;
        assert!(vm.serial().contains("reboot: Power down"), "{}", tail(&vm.serial()));
        let end = tokio::time::timeout(STEP, events.recv()).await.expect("event channel still open");
        assert_eq!(end, None);
        assert_eq!(qmp.execute("query-status", Value::Null).await, Err(QmpError::Closed));
    });
}

#[test]
fn agent_reboots_and_shuts_down_the_guest() {
    let Some((qemu, guest)) = setup() else { return };
    let accel = accel(&qemu);
    runtime().block_on(async {
        let mut vm = Vm::start(&qemu, &guest, accel, &[]);
        let (_qmp, mut events) = vm.qmp().await;
        vm.wait_serial(BANNER, 1).await;
        let mut agent = connect_agent(&vm).await;

        agent.send_no_reply("guest-shutdown", json!({"mode": "reboot"})).await.unwrap();
        let ev = wait_event(&mut events, STEP, "RESET", |k| matches!(k, EventKind::Reset { .. })).await;
        assert_eq!(ev.kind(), EventKind::Reset { guest: true, reason: "guest-reset".into() });
        vm.wait_serial(BANNER, 2).await;

        // A new agent in the rebooted guest: the client resynchronises.
        let os = agent.execute_timeout("guest-get-osinfo", Value::Null, BOOT).await.unwrap();
        assert_eq!(os["id"], "xapi-rs-test-guest");
        agent.send_no_reply("guest-shutdown", Value::Null).await.unwrap();
        let ev = wait_event(&mut events, STEP, "SHUTDOWN", |k| matches!(k, EventKind::Shutdown { .. })).await;
        assert_eq!(ev.kind(), EventKind::Shutdown { guest: true, reason: "guest-shutdown".into() });
        vm.exits_cleanly().await;
    });
}

#[test]
fn guest_panic_is_reported_through_pvpanic() {
    let Some((qemu, guest)) = setup() else { return };
    let accel = accel(&qemu);
    runtime().block_on(async {
        let vm = Vm::start(&qemu, &guest, accel, &[]);
        let (_qmp, mut events) = vm.qmp().await;
        vm.wait_serial(BANNER, 1).await;
        vm.type_line("echo c > /proc/sysrq-trigger").await;
        let ev =
            wait_event(&mut events, STEP, "GUEST_PANICKED", |k| matches!(k, EventKind::GuestPanicked { .. })).await;
        // QEMU's default panic action is to power the VM off.
        assert_eq!(ev.kind(), EventKind::GuestPanicked { action: "poweroff".into() });
        let ev = wait_event(&mut events, STEP, "SHUTDOWN", |k| matches!(k, EventKind::Shutdown { .. })).await;
        assert_eq!(ev.kind(), EventKind::Shutdown { guest: true, reason: "guest-panic".into() });
        // The console line can come out garbled under load ("TTernel panic"):
        // any of the kernel's panic lines will do.
        let serial = vm.serial();
        assert!(
            ["Kernel panic", "not syncing", "sysrq triggered crash"].iter().any(|l| serial.contains(l)),
            "{}",
            tail(&serial)
        );
    });
}

#[test]
fn guest_memory_survives_suspend_to_a_file_and_resume() {
    let Some((qemu, guest)) = setup() else { return };
    let accel = accel(&qemu);
    runtime().block_on(async {
        assert_eq!((b64(b"Man"), b64(b"Ma"), b64(b"M")), ("TWFu".into(), "TWE=".into(), "TQ==".into()));
        let token = format!("kept across suspend {}", std::process::id());
        let a = Vm::start(&qemu, &guest, accel, &[]);
        let (qmp, _events) = a.qmp().await;
        a.wait_serial(BANNER, 1).await;
        // Something only the guest's RAM holds: a file on its tmpfs.
        let mut agent = connect_agent(&a).await;
        let h = agent.execute("guest-file-open", json!({"path": "/run/marker", "mode": "w"})).await.unwrap();
        agent.execute("guest-file-write", json!({"handle": h, "buf-b64": b64(token.as_bytes())})).await.unwrap();
        agent.execute("guest-file-close", json!({"handle": h})).await.unwrap();
        drop(agent);

        // Suspend as the backend will: pause, stream the state to a file, quit.
        let image = a.path("state.bin");
        qmp.execute("stop", Value::Null).await.unwrap();
        qmp.execute("migrate", json!({"uri": format!("exec:cat > {}", image.display())})).await.unwrap();
        let deadline = tokio::time::Instant::now() + BOOT;
        loop {
            let st = qmp.execute("query-migrate", Value::Null).await.unwrap();
            match st["status"].as_str() {
                Some("completed") => break,
                Some("failed") | Some("cancelled") => panic!("migration: {st}"),
                _ => assert!(tokio::time::Instant::now() < deadline, "migration unfinished: {st}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(status(&qmp).await, "postmigrate");
        qmp.execute("quit", Value::Null).await.ok();
        drop(qmp);
        assert!(std::fs::metadata(&image).unwrap().len() > 1 << 20);

        // Resume in a new process with the same devices.
        let incoming = vec!["-incoming".to_string(), format!("exec:cat {}", image.display())];
        let b = Vm::start(&qemu, &guest, accel, &incoming);
        let (qmp, mut events) = b.qmp().await;
        let deadline = tokio::time::Instant::now() + BOOT;
        while status(&qmp).await != "paused" {
            assert!(tokio::time::Instant::now() < deadline, "state not loaded: {}", b.qemu_log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        qmp.execute("cont", Value::Null).await.unwrap();
        wait_event(&mut events, STEP, "RESUME", |k| *k == EventKind::Resume).await;
        let mut agent = connect_agent(&b).await;
        let h = agent.execute("guest-file-open", json!({"path": "/run/marker", "mode": "r"})).await.unwrap();
        let r = agent.execute("guest-file-read", json!({"handle": h})).await.unwrap();
        assert_eq!(r["buf-b64"], b64(token.as_bytes()), "{r}");
        // The serial console was not replayed: the guest did not boot again.
        assert_eq!(b.serial().matches(BANNER).count(), 0);
    });
}

/// Standard base64, as the agent's file commands want.
fn b64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

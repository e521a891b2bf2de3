//! The QEMU backend: one `qemu-system-x86_64` process per domain, driven
//! over QMP on a Unix socket in `<run dir>/<vm uuid>/`.
//!
//! Each domain has a task that owns its QMP event stream: it turns QEMU's
//! events into [`DomainEvent`]s, samples statistics, and when QEMU goes it
//! reaps the process, forgets the domain and reports the halt unless the
//! server asked for it. A second task polls the guest agent. The processes
//! are in their own process group and outlive the server: [`Qemu::adopt`]
//! finds them again by pidfile and QMP socket.

use super::agent::Agent;
use super::argv::{self, Launch, Layout};
use super::confine::{self, ChildSetup, RunAs};
use super::nbdc;
use super::probe::{self, Accel, Probe};
use super::qmp::{Event, EventKind, Qmp};
use super::QmpError;
use crate::linux::{ports, Net};
use crate::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Where xapi allows PV kernels and ramdisks to come from.
pub const GUEST_DIR: &str = "/var/lib/xcp/guest";

const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long QEMU may take to create its QMP socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const AGENT_TIMEOUT: Duration = Duration::from_secs(3);
const STATS_EVERY: Duration = Duration::from_secs(5);
/// After QMP closes, how long the process may take to be gone.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long handing a disk's writes over may wait for a disk copy, and
/// take to read its bitmap.
const HAND_OVER_LIMIT: Duration = Duration::from_secs(30);
/// How long a save or restore of guest memory may take.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Where each domain's directory is made (`<data dir>/qemu`).
    pub run_dir: PathBuf,
    /// Directories besides [`GUEST_DIR`] that kernels and ramdisks may come from.
    pub kernel_dirs: Vec<PathBuf>,
    /// The QEMU binary; found on PATH when None.
    pub binary: Option<PathBuf>,
    /// How long a guest has to power off after a clean shutdown request.
    pub shutdown_timeout: Duration,
    /// After `quit`, how long before SIGKILL.
    pub kill_grace: Duration,
    /// How long a guest has to release an unplugged device.
    pub unplug_timeout: Duration,
    /// QEMU's seccomp sandbox.
    pub sandbox: bool,
    /// The interfaces that are the host's NICs (xapid's `--nics`); None:
    /// every interface backed by a device.
    pub nics: Option<Vec<String>>,
    /// The unprivileged user QEMU runs as (made on first start) when the
    /// server runs as root; None or "root": as the server itself.
    pub user: Option<String>,
    /// A mount namespace of its own for each QEMU (when the server may
    /// make one), with these directories out of sight besides the run
    /// directory, the kernel directories and the directories of its disks.
    pub private_mounts: bool,
    pub hide: Vec<PathBuf>,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            run_dir: PathBuf::from("/var/lib/xapi-rs/qemu"),
            kernel_dirs: vec![],
            binary: None,
            shutdown_timeout: Duration::from_secs(60),
            kill_grace: Duration::from_secs(5),
            unplug_timeout: Duration::from_secs(30),
            sandbox: true,
            nics: None,
            user: Some(confine::DEFAULT_USER.to_string()),
            private_mounts: true,
            hide: vec![],
        }
    }
}

struct Dom {
    domid: i64,
    pid: u32,
    layout: Layout,
    spec: DomainSpec,
    /// Whether the domain is paused.
    paused: bool,
    /// STOP and RESUME events our own `stop` and `cont` will cause: QMP
    /// events are handled after the command returns, maybe after the next
    /// command, so a flag would mistake ours for the guest's.
    our_stops: u32,
    our_resumes: u32,
    qmp: Arc<Qmp>,
    /// The server asked for the process to end: its exit is no event.
    expect_exit: bool,
    /// Why the guest ended, from SHUTDOWN / GUEST_PANICKED.
    halt: Option<HaltReason>,
    /// Set (and the receiver woken) when the process is gone.
    exited: tokio::sync::watch::Receiver<bool>,
    /// Unplugs waiting for DEVICE_DELETED, by device id.
    unplugs: HashMap<String, oneshot::Sender<()>>,
    /// The dirty bitmap recording each tracked disk's writes, by device.
    bitmaps: HashMap<String, String>,
    /// Held by a disk copy: QEMU runs one NBD server at a time.
    copying: Arc<tokio::sync::Mutex<()>>,
    agent: Arc<tokio::sync::Mutex<Option<Agent>>>,
    agent_up: bool,
    stats: Stats,
}

struct Inner {
    cfg: QemuConfig,
    /// Who QEMU runs as; None: as the server.
    user: Option<RunAs>,
    /// Whether each QEMU gets a mount namespace of its own.
    private_mounts: bool,
    probe: Probe,
    allowed: Vec<PathBuf>,
    domains: Mutex<HashMap<String, Dom>>,
    next_domid: AtomicI64,
    events: broadcast::Sender<DomainEvent>,
    /// The host's switches and the guests' ports on them.
    net: Net,
    /// The host's CPU and NIC counters at the last statistics reading.
    meter: Mutex<host::Meter>,
    /// Where tracked disks' writes go when a guest stops writing.
    disk_writes: std::sync::OnceLock<crate::DiskWrites>,
}

#[derive(Clone)]
pub struct Qemu(Arc<Inner>);

fn hv(what: &str, e: QmpError) -> BackendError {
    BackendError::Hypervisor(format!("{what}: {e}"))
}

fn io_err(what: String, e: std::io::Error) -> BackendError {
    BackendError::Internal(format!("{what}: {e}"))
}

/// Whether a process exists (signal 0).
fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process.
    pid > 0 && unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
}

fn sigkill(pid: u32) {
    if pid > 0 {
        // SAFETY: plain kill(2) on a pid we started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// Connect to a socket of a domain's process, checked to be that process's.
async fn dial(l: &Listener, timeout: Duration) -> std::result::Result<tokio::net::UnixStream, QmpError> {
    tokio::time::timeout(timeout, l.connect())
        .await
        .map_err(|_| QmpError::Timeout { command: "connect".into(), timeout })?
        .map_err(QmpError::from)
}

/// QMP of the QEMU `pid` in `layout`, capabilities negotiated.
async fn qmp_of(
    layout: &Layout,
    pid: u32,
) -> std::result::Result<(Qmp, tokio::sync::mpsc::UnboundedReceiver<super::qmp::Event>), QmpError> {
    let s = dial(&Listener { path: layout.qmp(), pid }, QMP_TIMEOUT).await?;
    Qmp::handshake(s, QMP_TIMEOUT).await
}

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("; ")
}

/// A started process not yet handed to its domain task: killed and its
/// directory removed if creation fails half-way.
struct Spawned {
    pid: u32,
    dir: PathBuf,
    armed: bool,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.armed {
            sigkill(self.pid);
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), "cannot remove a failed domain's directory: {e}");
            }
        }
    }
}

impl Qemu {
    /// Find QEMU, choose the accelerator (once, by running a guest), and
    /// prepare the run directory.
    pub async fn start(cfg: QemuConfig) -> std::result::Result<Qemu, String> {
        let probe = probe::probe(cfg.binary.as_deref()).await.map_err(|e| e.to_string())?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let user = match cfg.user.as_deref() {
            Some(name) if root && name != "root" => {
                let u = confine::ensure_user(name)?;
                if probe.accel == Accel::Kvm && !confine::may_use_kvm(&u) {
                    // A /dev/kvm only root may open: KVM beats the user here.
                    tracing::warn!(user = name, "/dev/kvm is root's only: QEMU runs as root");
                    None
                } else {
                    Some(u)
                }
            }
            Some("root") if root => {
                tracing::warn!("QEMU runs as root, as configured");
                None
            }
            _ => None,
        };
        let runs_as = user.as_ref().map(|u| u.name.clone()).unwrap_or_else(|| {
            // SAFETY: as above.
            confine::user_name(unsafe { libc::geteuid() })
        });
        let private_mounts = cfg.private_mounts
            && match confine::mounts_work(&probe.qemu.binary) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("QEMU shares the server's mount namespace: cannot give it one of its own ({e})");
                    false
                }
            };
        tracing::info!(
            accel = %probe.accel,
            qemu = %probe.qemu.version_line,
            user = %runs_as,
            private_mounts,
            "QEMU backend ready"
        );
        std::fs::create_dir_all(&cfg.run_dir).map_err(|e| format!("{}: {e}", cfg.run_dir.display()))?;
        let mut allowed = vec![PathBuf::from(GUEST_DIR)];
        allowed.extend(cfg.kernel_dirs.iter().cloned());
        // Domids carry on from the domains that outlived the last run.
        let mut next = 1;
        if let Ok(rd) = std::fs::read_dir(&cfg.run_dir) {
            for e in rd.flatten() {
                let d = std::fs::read_to_string(e.path().join("domid")).ok();
                if let Some(n) = d.and_then(|s| s.trim().parse::<i64>().ok()) {
                    next = next.max(n + 1);
                }
            }
        }
        let (events, _) = broadcast::channel(1024);
        let net = Net::new(cfg.nics.clone());
        // A first reading, so the first sample already has rates to report.
        let mut meter = host::Meter::default();
        host::measure_local(&mut meter, net.sysfs(), &net.nic_names());
        Ok(Qemu(Arc::new(Inner {
            meter: Mutex::new(meter),
            net,
            cfg,
            user,
            private_mounts,
            probe,
            allowed,
            domains: Mutex::new(HashMap::new()),
            next_domid: AtomicI64::new(next),
            events,
            disk_writes: std::sync::OnceLock::new(),
        })))
    }

    pub fn name(&self) -> &'static str {
        "qemu"
    }

    pub fn accel(&self) -> Accel {
        self.0.probe.accel
    }

    pub fn events(&self) -> broadcast::Receiver<DomainEvent> {
        self.0.events.subscribe()
    }

    pub fn on_disk_writes(&self, sink: crate::DiskWrites) {
        if self.0.disk_writes.set(sink).is_err() {
            tracing::warn!("a second sink for disk writes, ignored");
        }
    }

    /// Hand the writes of the domain's tracked disks (only `device`, if
    /// given) to the sink, reading their dirty bitmaps; the guest writes
    /// no more (stopped, or the disk unplugged). The bitmaps go whatever
    /// happens: a disk whose writes could not be read keeps its batch open,
    /// which its owner reads as every block changed.
    async fn hand_over_writes(&self, uuid: &str, device: Option<&str>) {
        let Some(sink) = self.0.disk_writes.get().cloned() else { return };
        let Ok(Some((qmp, lock))) =
            self.with(uuid, |d| (!d.bitmaps.is_empty()).then(|| (d.qmp.clone(), d.copying.clone())))
        else {
            return;
        };
        // A disk copy under way holds QEMU's one NBD server and may swap a
        // bitmap: after it.
        let Ok(_one) = tokio::time::timeout(HAND_OVER_LIMIT, lock.lock()).await else {
            tracing::warn!(vm_uuid = %uuid, "a disk copy holds the domain: its disks' writes are not handed over");
            return;
        };
        let Ok(taken) = self.with(uuid, |d| {
            let devices: Vec<String> =
                d.bitmaps.keys().filter(|k| device.is_none_or(|x| x == k.as_str())).cloned().collect();
            devices
                .into_iter()
                .filter_map(|dev| {
                    let name = d.bitmaps.remove(&dev)?;
                    let disk = d.spec.disks.iter().find(|x| x.device == dev)?;
                    Some((dev, name, disk.path.clone()?, disk.change_batch.clone()?))
                })
                .collect::<Vec<_>>()
        }) else {
            return;
        };
        for (dev, name, path, batch) in taken {
            let Ok(node) = argv::node_id(&dev) else { continue };
            // Only a bitmap that records no more can be exported.
            let off = json!({ "node": node, "name": name });
            if let Err(e) = qmp.execute("block-dirty-bitmap-disable", off).await {
                tracing::warn!(vm_uuid = %uuid, device = dev, "cannot read the disk's writes: {e}");
                continue;
            }
            let read = tokio::time::timeout(HAND_OVER_LIMIT, self.read_bitmap(uuid, &qmp, &node, &name)).await;
            drop_bitmap(&qmp, uuid, &node, &name).await;
            match read {
                Ok(Ok(ranges)) => {
                    let sink = sink.clone();
                    match blocking_io(move || sink(&path, &batch, &ranges)).await {
                        Ok(()) => tracing::debug!(vm_uuid = %uuid, device = dev, "disk writes handed over"),
                        Err(e) => tracing::warn!(vm_uuid = %uuid, device = dev, "recording the disk's writes: {e}"),
                    }
                }
                Ok(Err(e)) => tracing::warn!(vm_uuid = %uuid, device = dev, "cannot read the disk's writes: {e}"),
                Err(_) => tracing::warn!(vm_uuid = %uuid, device = dev, "reading the disk's writes took too long"),
            }
        }
    }

    /// The guest ended (QEMU, with -no-shutdown, stopped it and waits): its
    /// disks' writes are handed over, then QEMU is told to quit.
    async fn end_stopped_guest(self, uuid: String, domid: i64) {
        self.hand_over_writes(&uuid, None).await;
        let Ok(Some((qmp, pid))) = self.with(&uuid, |d| (d.domid == domid).then(|| (d.qmp.clone(), d.pid))) else {
            return;
        };
        if let Err(e) = self.quit(&uuid, &qmp, pid).await {
            tracing::error!(vm_uuid = %uuid, "ending the QEMU of an ended guest: {e}");
        }
    }

    fn doms(&self) -> MutexGuard<'_, HashMap<String, Dom>> {
        // Updates under this lock cannot panic half-way.
        self.0.domains.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(&self, uuid: &str, f: impl FnOnce(&mut Dom) -> T) -> Result<T> {
        self.doms().get_mut(uuid).map(f).ok_or_else(|| BackendError::NoDomain(uuid.to_string()))
    }

    fn qmp(&self, uuid: &str) -> Result<Arc<Qmp>> {
        self.with(uuid, |d| d.qmp.clone())
    }

    fn send(&self, ev: DomainEvent) {
        // No receiver (yet) is not an error: the server subscribes at start.
        let _ = self.0.events.send(ev);
    }

    /// A kernel or ramdisk path, checked: absolute, no `..`, inside an
    /// allowed directory even after symlinks are resolved, and present.
    fn guest_file(&self, p: &str) -> Result<PathBuf> {
        let path = PathBuf::from(p);
        let not_allowed = || BackendError::PathNotAllowed { path: path.clone(), allowed: self.0.allowed.clone() };
        let lexical_ok = path.is_absolute()
            && !path.components().any(|c| matches!(c, Component::ParentDir))
            && self.0.allowed.iter().any(|d| path.starts_with(d));
        if !lexical_ok {
            return Err(not_allowed());
        }
        let real = std::fs::canonicalize(&path).map_err(|_| BackendError::MissingFile(path.clone()))?;
        let inside = self.0.allowed.iter().any(|d| std::fs::canonicalize(d).is_ok_and(|d| real.starts_with(d)));
        if !inside {
            return Err(not_allowed());
        }
        if !real.is_file() {
            return Err(BackendError::MissingFile(path.clone()));
        }
        Ok(real)
    }

    /// The launch decisions, and the files QEMU is to inherit (opened here,
    /// checked; see [`confine`]).
    fn launch(&self, spec: &DomainSpec, incoming: bool) -> Result<(Launch, Vec<OwnedFd>)> {
        let mut l = Launch { incoming, sandbox: self.0.cfg.sandbox, ..Default::default() };
        let mut fds = Vec::new();
        // QEMU reads the very file checked, through its descriptor.
        let pass = |path: PathBuf, fds: &mut Vec<OwnedFd>| -> Result<PathBuf> {
            let fd = confine::open_image(&path, true)?;
            let name = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            fds.push(fd);
            Ok(name)
        };
        if !spec.kernel.is_empty() {
            l.kernel = Some(pass(self.guest_file(&spec.kernel)?, &mut fds)?);
            if !spec.ramdisk.is_empty() {
                l.ramdisk = Some(pass(self.guest_file(&spec.ramdisk)?, &mut fds)?);
            }
        }
        if spec.firmware == Firmware::Uefi {
            let candidates = ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd"];
            let fw = candidates.iter().map(PathBuf::from).find(|p| p.is_file());
            l.firmware = Some(fw.ok_or_else(|| BackendError::Unsupported("UEFI firmware (install ovmf)".into()))?);
            if !spec.platform.nx {
                tracing::warn!(vm_uuid = %spec.uuid, "nx=false ignored: OVMF does not run on a CPU without NX");
            }
        }
        for d in &spec.disks {
            if let Some(p) = &d.path {
                let fd = open_disk(p, d.format, d.read_only || d.cdrom)?;
                l.disk_fds.insert(d.device.clone(), fd.as_raw_fd());
                fds.push(fd);
            }
        }
        Ok((l, fds))
    }

    /// The mount namespace QEMU gets for `spec`: nothing of the server's
    /// in sight, nor the SRs and kernels it was handed descriptors of.
    fn mounts(&self, spec: &DomainSpec) -> Result<Option<confine::Mounts>> {
        if !self.0.private_mounts {
            return Ok(None);
        }
        let mut hide = self.0.cfg.hide.clone();
        hide.push(self.0.cfg.run_dir.clone());
        hide.extend(self.0.allowed.iter().cloned());
        hide.extend(spec.disks.iter().filter_map(|d| d.path.as_deref()?.parent().map(Path::to_path_buf)));
        confine::Mounts::new(self.0.probe.accel == Accel::Kvm, &hide).map(Some)
    }

    /// Start QEMU for `spec`, paused, and connect to it. Returns the domid.
    async fn spawn(&self, spec: &DomainSpec, incoming: bool, cancel: &mut Option<Cancel>) -> Result<i64> {
        let skipped = argv::guest_data_items(spec).1;
        if !skipped.is_empty() {
            tracing::warn!(vm_uuid = %spec.uuid, ?skipped, "guest data keys left out: fw_cfg cannot name them");
        }
        if self.doms().contains_key(&spec.uuid) {
            return Err(BackendError::internal(format!("domain for VM {} already exists", spec.uuid)));
        }
        let (launch, mut fds) = self.launch(spec, incoming)?;
        if let Some(free) = available_memory() {
            if spec.memory.target > free {
                return Err(BackendError::NoMemory { needed: spec.memory.target, free });
            }
        }
        let layout = Layout::new(&self.0.cfg.run_dir, &spec.uuid);
        // Taken now: the NICs' taps on the command line are named after it.
        let domid = self.0.next_domid.fetch_add(1, Ordering::SeqCst);
        let mut launch = Launch { domid, ..launch };
        for n in &spec.nics {
            let fd = confine::open_tap(&ports::tap_name(domid, &n.device)?)?;
            launch.tap_fds.insert(n.device.clone(), fd.as_raw_fd());
            fds.push(fd);
        }
        let args = argv::command_line(spec, self.0.probe.accel, &launch)?;
        // A directory left by a process that is gone (adopt cleans up the
        // ones it finds; this covers a VM started again before that).
        if let Some(pid) = read_pid(&layout) {
            if alive(pid) && owns(pid, &layout) {
                return Err(BackendError::internal(format!("a QEMU process ({pid}) still runs VM {}", spec.uuid)));
            }
        }
        let _ = std::fs::remove_dir_all(&layout.dir);
        std::fs::create_dir_all(&layout.dir).map_err(|e| io_err(layout.dir.display().to_string(), e))?;
        std::fs::write(layout.domid(), domid.to_string()).map_err(|e| io_err("writing the domid".into(), e))?;
        let log = std::fs::File::create(layout.log()).map_err(|e| io_err("creating qemu.log".into(), e))?;
        confine::hand_over(&layout.dir, self.0.user.as_ref())?;
        let keep = fds.iter().map(|f| f.as_raw_fd()).collect();
        let setup = ChildSetup::new(&layout.dir, keep, self.0.user.clone(), self.mounts(spec)?)?;
        let mut cmd = tokio::process::Command::new(&self.0.probe.qemu.binary);
        // SAFETY: `apply` makes only async-signal-safe calls.
        unsafe { cmd.pre_exec(move || setup.apply()) };
        let mut child = cmd
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            // Guests outlive the server (adopt), and a terminal's ^C is not for them.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| BackendError::Hypervisor(format!("cannot run {}: {e}", self.0.probe.qemu.binary.display())))?;
        // QEMU has its copies: a tap now lives as long as QEMU.
        drop(fds);
        let pid = child.id().unwrap_or(0);
        let mut guard = Spawned { pid, dir: layout.dir.clone(), armed: true };
        // What a restarted server finds it by (adopt).
        std::fs::write(layout.pidfile(), format!("{pid}\n")).map_err(|e| io_err("writing the pidfile".into(), e))?;
        tracing::info!(vm_uuid = %spec.uuid, domid, pid, "started QEMU");
        let deadline = Instant::now() + START_TIMEOUT;
        let (qmp, events) = loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(BackendError::Hypervisor(format!("QEMU exited ({st}): {}", tail(&layout.log()))));
            }
            if layout.qmp().exists() {
                match qmp_of(&layout, pid).await {
                    Ok(c) => break c,
                    Err(e) if Instant::now() > deadline => return Err(hv("QMP", e)),
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                return Err(BackendError::Hypervisor(format!("no QMP socket within {START_TIMEOUT:?}")));
            }
            cancellable_sleep(Duration::from_millis(50), cancel).await?;
        };
        // QEMU made the taps before QMP answered; the guest is still
        // stopped (-S): its ports are ready before it runs.
        if let Err(e) = self.attach_nics(spec, domid).await {
            // Gone first, so the cleanup finds the taps gone too.
            sigkill(pid);
            if tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await.is_err() {
                tracing::warn!(vm_uuid = %spec.uuid, pid, "QEMU survives SIGKILL");
            }
            // Reaped: the guard must not signal a pid that may be reused.
            guard.armed = false;
            if let Err(e2) = std::fs::remove_dir_all(&layout.dir) {
                tracing::warn!(dir = %layout.dir.display(), "cannot remove a failed domain's directory: {e2}");
            }
            self.0.net.release(&nic_taps(spec, domid)).await;
            return Err(e);
        }
        let qmp = Arc::new(qmp);
        self.install(spec, domid, pid, layout, qmp, events, Some(child), true);
        guard.armed = false;
        // Still stopped (-S): the bitmaps see every write the guest makes.
        for d in spec.disks.iter().filter(|d| d.tracked() && d.path.is_some()) {
            self.track(&spec.uuid, &d.device).await;
        }
        Ok(domid)
    }

    /// Start a dirty bitmap on a disk. A failure is logged only: the disk
    /// goes untracked, which its owner treats as every block changed.
    async fn track(&self, uuid: &str, device: &str) {
        let Ok(qmp) = self.qmp(uuid) else { return };
        let Ok(node) = argv::node_id(device) else { return };
        let name = bitmap_name();
        match qmp.execute("block-dirty-bitmap-add", bitmap_add(&node, &name)).await {
            Ok(_) => {
                let _ = self.with(uuid, |d| d.bitmaps.insert(device.to_string(), name));
            }
            Err(e) => tracing::warn!(vm_uuid = %uuid, device, "cannot track the disk's writes: {e}"),
        }
    }

    /// Join each NIC's tap to its switch.
    async fn attach_nics(&self, spec: &DomainSpec, domid: i64) -> Result<()> {
        for n in &spec.nics {
            self.0.net.attach(&ports::tap_name(domid, &n.device)?, n).await?;
        }
        Ok(())
    }

    /// Record a domain and start its tasks.
    #[allow(clippy::too_many_arguments)]
    fn install(
        &self,
        spec: &DomainSpec,
        domid: i64,
        pid: u32,
        layout: Layout,
        qmp: Arc<Qmp>,
        events: mpsc::UnboundedReceiver<Event>,
        child: Option<tokio::process::Child>,
        paused: bool,
    ) {
        let (exited_tx, exited) = tokio::sync::watch::channel(false);
        let agent = Arc::new(tokio::sync::Mutex::new(None));
        let agent_sock = Listener { path: layout.agent(), pid };
        self.doms().insert(
            spec.uuid.clone(),
            Dom {
                domid,
                pid,
                layout,
                spec: spec.clone(),
                paused,
                our_stops: 0,
                our_resumes: 0,
                qmp,
                expect_exit: false,
                halt: None,
                exited,
                unplugs: HashMap::new(),
                bitmaps: HashMap::new(),
                copying: Arc::new(tokio::sync::Mutex::new(())),
                agent: agent.clone(),
                agent_up: false,
                stats: Stats::default(),
            },
        );
        tokio::spawn(self.clone().watch(spec.uuid.clone(), domid, pid, events, child, exited_tx));
        tokio::spawn(self.clone().poll_agent(spec.uuid.clone(), domid, agent_sock, agent));
    }

    /// The domain's task: QMP events, statistics, and the end of the process.
    async fn watch(
        self,
        uuid: String,
        domid: i64,
        pid: u32,
        mut events: mpsc::UnboundedReceiver<Event>,
        child: Option<tokio::process::Child>,
        exited: tokio::sync::watch::Sender<bool>,
    ) {
        let mut tick = tokio::time::interval(STATS_EVERY);
        let mut sampler = Sampler::default();
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => {
                        if self.on_event(&uuid, domid, ev) {
                            tokio::spawn(self.clone().end_stopped_guest(uuid.clone(), domid));
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.sample(&uuid, domid, pid, &mut sampler).await,
            }
        }
        // QMP is gone: so is QEMU, or it soon will be.
        match child {
            Some(mut c) => match tokio::time::timeout(EXIT_TIMEOUT, c.wait()).await {
                Ok(Ok(st)) => tracing::info!(vm_uuid = %uuid, domid, "QEMU exited: {st}"),
                Ok(Err(e)) => tracing::warn!(vm_uuid = %uuid, domid, "waiting for QEMU: {e}"),
                Err(_) => {
                    tracing::warn!(vm_uuid = %uuid, domid, pid, "QEMU closed QMP but did not exit: killing it");
                    if let Err(e) = c.start_kill() {
                        tracing::warn!(vm_uuid = %uuid, pid, "cannot kill QEMU: {e}");
                    }
                    if tokio::time::timeout(EXIT_TIMEOUT, c.wait()).await.is_err() {
                        tracing::error!(vm_uuid = %uuid, pid, "QEMU survives SIGKILL");
                    }
                }
            },
            None => {
                let deadline = Instant::now() + EXIT_TIMEOUT;
                while alive(pid) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if alive(pid) {
                    tracing::warn!(vm_uuid = %uuid, domid, pid, "QEMU closed QMP but did not exit: killing it");
                    sigkill(pid);
                }
            }
        }
        let dir = Layout::new(&self.0.cfg.run_dir, &uuid).dir;
        let mut taps = vec![];
        let report = {
            let mut m = self.doms();
            let ours = m.get(&uuid).is_some_and(|d| d.domid == domid);
            let report = if ours {
                let d = m.remove(&uuid);
                if let Some(d) = &d {
                    taps = nic_taps(&d.spec, domid);
                }
                // QEMU's last words stay beside the directory (why a guest
                // ended, why a resume was refused).
                let layout = Layout::new(&self.0.cfg.run_dir, &uuid);
                if let Err(e) = std::fs::rename(layout.log(), layout.last_log()) {
                    tracing::debug!(vm_uuid = %uuid, "keeping QEMU's log: {e}");
                }
                // Before anyone can start the VM again in the same directory.
                if let Err(e) = remove_dir_files(&dir) {
                    tracing::warn!(dir = %dir.display(), "cannot clean up a domain's directory: {e}");
                }
                d.filter(|d| !d.expect_exit).map(|d| d.halt.unwrap_or(HaltReason::ProcessDied))
            } else {
                None
            };
            // Under the lock, so a shutdown that times out sees either the
            // domain still there or the exit already counted.
            let _ = exited.send(true);
            report
        };
        // The taps went with QEMU; their rules and unused switches go now.
        if !taps.is_empty() {
            self.0.net.release(&taps).await;
        }
        if let Some(reason) = report {
            tracing::info!(vm_uuid = %uuid, domid, ?reason, "domain halted");
            self.send(DomainEvent::Halted { uuid, domid, reason });
        }
    }

    /// Whether the guest just ended (its QEMU then waits, stopped).
    fn on_event(&self, uuid: &str, domid: i64, ev: Event) -> bool {
        let kind = ev.kind();
        tracing::debug!(vm_uuid = %uuid, domid, event = %ev.name, "QMP event");
        let mut out = None;
        let mut ended = false;
        {
            let mut m = self.doms();
            let Some(d) = m.get_mut(uuid).filter(|d| d.domid == domid) else { return false };
            match kind {
                EventKind::Shutdown { guest: true, reason } => {
                    let why = match reason.as_str() {
                        "guest-reset" => HaltReason::Reboot,
                        "guest-panic" => HaltReason::Crash,
                        _ => HaltReason::Shutdown,
                    };
                    ended = d.halt.is_none();
                    d.halt.get_or_insert(why);
                }
                EventKind::GuestPanicked { .. } => {
                    ended = d.halt.is_none();
                    d.halt = Some(HaltReason::Crash);
                }
                // The stop that follows a guest's end is no pause.
                EventKind::Stop if d.halt.is_some() => {}
                EventKind::Stop if d.our_stops > 0 => d.our_stops -= 1,
                EventKind::Stop if !d.paused => {
                    d.paused = true;
                    out = Some(DomainEvent::Paused { uuid: uuid.into(), domid });
                }
                EventKind::Resume if d.our_resumes > 0 => d.our_resumes -= 1,
                EventKind::Resume if d.paused => {
                    d.paused = false;
                    out = Some(DomainEvent::Resumed { uuid: uuid.into(), domid });
                }
                EventKind::DeviceDeleted { device: Some(id), .. } => {
                    if let Some(w) = d.unplugs.remove(&id) {
                        let _ = w.send(());
                    } else if let Some(dev) = id.strip_prefix("vbd-") {
                        d.spec.disks.retain(|x| x.device != dev);
                        out = Some(DomainEvent::DeviceRemoved {
                            uuid: uuid.into(),
                            domid,
                            device: Device::Disk(dev.into()),
                        });
                    } else if let Some(dev) = id.strip_prefix("vif-") {
                        d.spec.nics.retain(|x| x.device != dev);
                        out = Some(DomainEvent::DeviceRemoved {
                            uuid: uuid.into(),
                            domid,
                            device: Device::Nic(dev.into()),
                        });
                    }
                }
                EventKind::BlockIoError { device, node_name, operation, reason, .. } => {
                    let name = node_name.unwrap_or(device);
                    let dev = name.trim_start_matches("node-").trim_start_matches("vbd-").to_string();
                    out = Some(DomainEvent::IoError {
                        uuid: uuid.into(),
                        domid,
                        device: dev,
                        message: format!("{operation}: {reason}"),
                    });
                }
                _ => {}
            }
        }
        if let Some(ev) = out {
            self.send(ev);
        }
        ended
    }

    async fn sample(&self, uuid: &str, domid: i64, pid: u32, s: &mut Sampler) {
        let Ok((qmp, vcpus, target, nics)) = self.with(uuid, |d| {
            let nics: Vec<String> = d.spec.nics.iter().map(|n| n.device.clone()).collect();
            (d.qmp.clone(), d.spec.vcpus.at_startup.max(1), d.spec.memory.target, nics)
        }) else {
            return;
        };
        let now = Instant::now();
        let cpu = cpu_ticks(pid);
        let mut stats = Stats { memory_actual: target, ..Default::default() };
        if let (Some(t), Some((t0, c0))) = (cpu, s.cpu) {
            let secs = now.duration_since(t0).as_secs_f64();
            if secs > 0.0 {
                let used = (t.saturating_sub(c0)) as f64 / clock_ticks() / secs / vcpus as f64;
                stats.vcpus = vec![used.clamp(0.0, 1.0); vcpus as usize];
            }
        }
        if let Some(t) = cpu {
            s.cpu = Some((now, t));
        }
        if let Ok(b) = qmp.execute_timeout("query-balloon", Value::Null, AGENT_TIMEOUT).await {
            if let Some(a) = b.get("actual").and_then(Value::as_i64) {
                stats.memory_actual = a;
            }
        }
        if let Ok(Value::Array(list)) = qmp.execute_timeout("query-blockstats", Value::Null, AGENT_TIMEOUT).await {
            for e in list {
                let qdev = e.get("qdev").and_then(Value::as_str).unwrap_or_default();
                let Some(dev) = qdev.split('/').find_map(|p| p.strip_prefix("vbd-")) else { continue };
                let n = |k: &str| e["stats"].get(k).and_then(Value::as_u64).unwrap_or(0);
                let (rd, wr) = (n("rd_bytes"), n("wr_bytes"));
                let (ro, wo) = (n("rd_operations"), n("wr_operations"));
                if let Some((t0, r0, w0, ro0, wo0)) = s.disks.get(dev) {
                    let secs = now.duration_since(*t0).as_secs_f64().max(0.001);
                    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                    stats.disks.push((dev.to_string(), rate(rd, *r0), rate(wr, *w0)));
                    stats.disk_ops.push((dev.to_string(), rate(ro, *ro0), rate(wo, *wo0)));
                }
                s.disks.insert(dev.to_string(), (now, rd, wr, ro, wo));
            }
        }
        for dev in nics {
            let Some((rx, tx)) = ports::tap_name(domid, &dev).ok().and_then(|t| tap_counters(&t)) else { continue };
            if let Some((t0, rx0, tx0)) = s.nics.get(&dev) {
                let secs = now.duration_since(*t0).as_secs_f64().max(0.001);
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                stats.nics.push((dev.clone(), rate(rx, *rx0), rate(tx, *tx0)));
            }
            s.nics.insert(dev, (now, rx, tx));
        }
        let _ = self.with(uuid, |d| {
            if d.domid == domid {
                d.stats = stats;
            }
        });
    }

    /// Ask the agent what the guest is, after boot and then now and then;
    /// report when it changes.
    async fn poll_agent(
        self,
        uuid: String,
        domid: i64,
        agent_sock: Listener,
        agent: Arc<tokio::sync::Mutex<Option<Agent>>>,
    ) {
        let mut last: Option<GuestInfo> = None;
        loop {
            let Ok((mine, paused, spec)) = self.with(&uuid, |d| (d.domid == domid, d.paused, d.spec.clone())) else {
                return;
            };
            if !mine {
                return;
            }
            let mut wait = Duration::from_secs(3);
            if !paused {
                let mut guard = agent.lock().await;
                if guard.is_none() {
                    *guard = dial(&agent_sock, AGENT_TIMEOUT).await.ok().map(|s| Agent::from_stream(s, AGENT_TIMEOUT));
                }
                let res = match guard.as_mut() {
                    Some(a) => guest_report(a, &spec).await,
                    None => Err(QmpError::Closed),
                };
                if matches!(res, Err(QmpError::Closed) | Err(QmpError::Io { .. })) {
                    *guard = None;
                }
                drop(guard);
                let up = res.is_ok();
                if self.with(&uuid, |d| {
                    d.domid == domid && {
                        d.agent_up = up;
                        true
                    }
                }) != Ok(true)
                {
                    return;
                }
                if let Ok(info) = res {
                    wait = Duration::from_secs(30);
                    if last.as_ref() != Some(&info) {
                        last = Some(info.clone());
                        self.send(DomainEvent::GuestInfo { uuid: uuid.clone(), domid, info });
                    }
                }
            }
            tokio::time::sleep(wait).await;
        }
    }

    pub async fn create(&self, spec: &DomainSpec, mut cancel: Option<Cancel>) -> Result<i64> {
        self.boot(spec, &mut cancel).await
    }

    /// A new domain that boots (not one that carries on from saved state).
    async fn boot(&self, spec: &DomainSpec, cancel: &mut Option<Cancel>) -> Result<i64> {
        let domid = self.spawn(spec, false, cancel).await?;
        // QEMU has the static maximum; the balloon holds the rest back (it
        // inflates once the guest's driver runs).
        if spec.memory.target < spec.memory.static_max {
            if let Err(e) = self.set_memory(&spec.uuid, spec.memory.target).await {
                tracing::warn!(vm_uuid = %spec.uuid, "the guest starts above its memory target: {e}");
            }
        }
        Ok(domid)
    }

    /// `cont` or `stop`, counting the RESUME or STOP it causes (QEMU sends
    /// one only when the state changes) as ours.
    async fn run_state(&self, uuid: &str, run: bool) -> Result<()> {
        let cmd = if run { "cont" } else { "stop" };
        let (qmp, changes) = self.with(uuid, |d| {
            let changes = d.paused == run;
            if changes {
                d.paused = !run;
                if run {
                    d.our_resumes += 1;
                } else {
                    d.our_stops += 1;
                }
            }
            (d.qmp.clone(), changes)
        })?;
        if let Err(e) = qmp.execute(cmd, Value::Null).await {
            if changes {
                let _ = self.with(uuid, |d| {
                    d.paused = run;
                    if run {
                        d.our_resumes = d.our_resumes.saturating_sub(1);
                    } else {
                        d.our_stops = d.our_stops.saturating_sub(1);
                    }
                });
            }
            return Err(hv(cmd, e));
        }
        Ok(())
    }

    pub async fn unpause(&self, uuid: &str) -> Result<()> {
        self.run_state(uuid, true).await
    }

    pub async fn pause(&self, uuid: &str) -> Result<()> {
        self.run_state(uuid, false).await
    }

    /// Wait until the domain's process is gone, at most `limit`.
    async fn wait_exit(&self, uuid: &str, limit: Duration, cancel: &mut Option<Cancel>) -> Result<bool> {
        let Ok(mut rx) = self.with(uuid, |d| d.exited.clone()) else { return Ok(true) };
        let deadline = Instant::now() + limit;
        loop {
            if *rx.borrow_and_update() {
                return Ok(true);
            }
            if let Some(c) = cancel.as_ref() {
                if *c.borrow() {
                    return Err(BackendError::Cancelled);
                }
            }
            let step = Instant::now() + Duration::from_millis(200);
            match tokio::time::timeout_at(step.min(deadline), rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(true),
                Err(_) if Instant::now() >= deadline => return Ok(false),
                Err(_) => {}
            }
        }
    }

    /// Ask the guest to power off (or reboot): through its agent when it
    /// answers, else the ACPI power button.
    async fn ask_guest(&self, uuid: &str, reboot: bool) -> Result<()> {
        let (qmp, agent, up) = self.with(uuid, |d| (d.qmp.clone(), d.agent.clone(), d.agent_up))?;
        if up {
            if let Ok(mut g) = tokio::time::timeout(Duration::from_secs(1), agent.lock()).await {
                if let Some(a) = g.as_mut() {
                    let mode = if reboot { "reboot" } else { "powerdown" };
                    match a.send_no_reply("guest-shutdown", json!({ "mode": mode })).await {
                        Ok(()) => return Ok(()),
                        Err(e) => tracing::info!(vm_uuid = %uuid, "guest agent shutdown failed ({e}); using ACPI"),
                    }
                }
            }
        }
        qmp.execute("system_powerdown", Value::Null).await.map_err(|e| hv("system_powerdown", e))?;
        Ok(())
    }

    /// End the process: `quit`, then SIGKILL after the grace period.
    async fn destroy(&self, uuid: &str) -> Result<()> {
        let (qmp, pid) = self.with(uuid, |d| {
            d.expect_exit = true;
            (d.qmp.clone(), d.pid)
        })?;
        self.quit(uuid, &qmp, pid).await
    }

    /// `quit` the domain's QEMU (`pid`), then SIGKILL after the grace period.
    async fn quit(&self, uuid: &str, qmp: &Qmp, pid: u32) -> Result<()> {
        if let Err(e) = qmp.execute_timeout("quit", Value::Null, self.0.cfg.kill_grace).await {
            tracing::debug!(vm_uuid = %uuid, "quit: {e}");
        }
        if !self.wait_exit(uuid, self.0.cfg.kill_grace, &mut None).await? {
            tracing::warn!(vm_uuid = %uuid, pid, "QEMU did not quit: SIGKILL");
            sigkill(pid);
            if !self.wait_exit(uuid, EXIT_TIMEOUT + EXIT_TIMEOUT, &mut None).await? {
                return Err(BackendError::Hypervisor(format!("QEMU process {pid} does not die")));
            }
        }
        Ok(())
    }

    /// A clean shutdown (or reboot) request and the wait for the process to
    /// end; a guest that does not comply keeps running.
    async fn clean_stop(&self, uuid: &str, reboot: bool, cancel: &mut Option<Cancel>) -> Result<()> {
        self.with(uuid, |d| d.expect_exit = true)?;
        let res = match self.ask_guest(uuid, reboot).await {
            Ok(()) => self.wait_exit(uuid, self.0.cfg.shutdown_timeout, cancel).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(true) => Ok(()),
            other => {
                // Still there: its later exit is the guest's own again.
                let gone = self.with(uuid, |d| d.expect_exit = false).is_err();
                match other {
                    _ if gone => Ok(()),
                    Err(e) => Err(e),
                    _ => Err(BackendError::NotAcknowledged(Request::Shutdown)),
                }
            }
        }
    }

    pub async fn shutdown(&self, uuid: &str, clean: bool, mut cancel: Option<Cancel>) -> Result<()> {
        if clean {
            self.clean_stop(uuid, false, &mut cancel).await
        } else {
            self.stop_recording(uuid).await;
            self.destroy(uuid).await
        }
    }

    /// Before a domain is destroyed for good (not moved to another host,
    /// whose domain goes on with the disk's batch): stop its guest and hand
    /// its disks' writes over.
    async fn stop_recording(&self, uuid: &str) {
        let Ok(Some(qmp)) = self.with(uuid, |d| {
            (!d.bitmaps.is_empty()).then(|| {
                d.our_stops += 1;
                d.qmp.clone()
            })
        }) else {
            return;
        };
        let stopped = match qmp.execute_timeout("stop", Value::Null, self.0.cfg.kill_grace).await {
            Ok(_) => true,
            // A migration's source has stopped already (postmigrate).
            Err(e) => match qmp.execute_timeout("query-status", Value::Null, self.0.cfg.kill_grace).await {
                Ok(st) if st["running"].as_bool() == Some(false) => true,
                _ => {
                    tracing::warn!(vm_uuid = %uuid, "stop before recording the disks' writes: {e}");
                    false
                }
            },
        };
        if stopped {
            self.hand_over_writes(uuid, None).await;
        }
    }

    /// A new process for the same VM (QEMU runs with -no-reboot), so a new domid.
    pub async fn reboot(&self, spec: &DomainSpec, clean: bool, mut cancel: Option<Cancel>) -> Result<i64> {
        if clean {
            self.clean_stop(&spec.uuid, true, &mut cancel).await?;
        } else {
            self.stop_recording(&spec.uuid).await;
            self.destroy(&spec.uuid).await?;
        }
        let domid = self.boot(spec, &mut cancel).await?;
        if let Err(e) = self.unpause(&spec.uuid).await {
            if let Err(e2) = self.destroy(&spec.uuid).await {
                tracing::warn!(vm_uuid = %spec.uuid, "cannot destroy the rebooted domain that failed to run: {e2}");
            }
            return Err(e);
        }
        Ok(domid)
    }

    /// Stream the paused guest's state into `image` over a Unix socket we
    /// listen on (QEMU's `exec:` would need to spawn, which the sandbox denies).
    async fn save_state(&self, uuid: &str, image: &Path, cancel: &mut Option<Cancel>) -> Result<()> {
        let file = tokio::fs::File::create(image).await.map_err(|e| io_err(image.display().to_string(), e))?;
        let what = format!("writing {}", image.display());
        self.stream_out(uuid, &what, cancel, move |mut conn| async move {
            let mut file = file;
            tokio::io::copy(&mut conn, &mut file).await?;
            file.sync_all().await
        })
        .await
    }

    /// Run QEMU's `migrate` into a Unix socket we listen on, handing the
    /// accepted connection to `sink`; returns once QEMU says the migration
    /// completed and the sink is done with the stream.
    async fn stream_out<F, Fut>(&self, uuid: &str, what: &str, cancel: &mut Option<Cancel>, sink: F) -> Result<()>
    where
        F: FnOnce(tokio::net::UnixStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (qmp, layout) = self.with(uuid, |d| (d.qmp.clone(), d.layout.clone()))?;
        let sock = layout.migration();
        let _ = std::fs::remove_file(&sock);
        let listener = tokio::net::UnixListener::bind(&sock).map_err(|e| io_err(sock.display().to_string(), e))?;
        if let Some(u) = &self.0.user {
            std::os::unix::fs::lchown(&sock, Some(u.uid), Some(u.gid))
                .map_err(|e| io_err(format!("giving {} to {}", sock.display(), u.name), e))?;
        }
        let copy = tokio::spawn(async move {
            let (conn, _) = listener.accept().await?;
            sink(conn).await
        });
        let res = async {
            qmp.execute("migrate", json!({ "uri": format!("unix:{}", argv::MIGRATION) }))
                .await
                .map_err(|e| hv("migrate", e))?;
            let deadline = Instant::now() + MIGRATION_TIMEOUT;
            let cancel_migration = || async {
                if let Err(e) = qmp.execute("migrate_cancel", Value::Null).await {
                    tracing::warn!(vm_uuid = %uuid, "migrate_cancel: {e}");
                }
            };
            loop {
                let st = qmp.execute("query-migrate", Value::Null).await.map_err(|e| hv("query-migrate", e))?;
                match st["status"].as_str() {
                    Some("completed") => break,
                    Some(s @ ("failed" | "cancelled")) => {
                        let why = st["error-desc"].as_str().unwrap_or_default();
                        return Err(BackendError::Hypervisor(format!("sending guest memory {s}: {why}")));
                    }
                    _ if Instant::now() > deadline => {
                        cancel_migration().await;
                        return Err(BackendError::Hypervisor("sending guest memory took too long".into()));
                    }
                    _ => {}
                }
                if let Err(e) = cancellable_sleep(Duration::from_millis(100), cancel).await {
                    cancel_migration().await;
                    return Err(e);
                }
            }
            Ok(())
        }
        .await;
        let written = if res.is_ok() {
            tokio::time::timeout(EXIT_TIMEOUT, copy).await
        } else {
            copy.abort();
            Ok(Ok(Ok(())))
        };
        let _ = std::fs::remove_file(&sock);
        res?;
        match written {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(io_err(what.to_string(), e)),
            _ => Err(BackendError::internal(format!("{what} did not finish"))),
        }
    }

    pub async fn suspend(&self, uuid: &str, image: &Path, mut cancel: Option<Cancel>) -> Result<()> {
        let was_paused = self.with(uuid, |d| d.paused)?;
        self.pause(uuid).await?;
        if let Err(e) = self.save_state(uuid, image, &mut cancel).await {
            if !was_paused {
                if let Err(e2) = self.unpause(uuid).await {
                    tracing::warn!(vm_uuid = %uuid, "cannot unpause after a failed suspend: {e2}");
                }
            }
            return Err(e);
        }
        self.stop_recording(uuid).await;
        self.destroy(uuid).await
    }

    pub async fn save(&self, uuid: &str, image: &Path, mut cancel: Option<Cancel>) -> Result<()> {
        let was_paused = self.with(uuid, |d| d.paused)?;
        self.pause(uuid).await?;
        let res = self.save_state(uuid, image, &mut cancel).await;
        if !was_paused {
            self.unpause(uuid).await?;
        }
        res
    }

    pub async fn resume(&self, spec: &DomainSpec, image: &Path, mut cancel: Option<Cancel>) -> Result<i64> {
        if !image.is_file() {
            return Err(BackendError::MissingFile(image.to_path_buf()));
        }
        let domid = self.spawn(spec, true, &mut cancel).await?;
        let res = self.load_state(&spec.uuid, image, &mut cancel).await;
        if let Err(e) = res {
            if let Err(e2) = self.destroy(&spec.uuid).await {
                tracing::warn!(vm_uuid = %spec.uuid, "cannot destroy the domain that failed to resume: {e2}");
            }
            return Err(e);
        }
        Ok(domid)
    }

    async fn load_state(&self, uuid: &str, image: &Path, cancel: &mut Option<Cancel>) -> Result<()> {
        let sock = self.start_incoming(uuid).await?;
        let pid = self.with(uuid, |d| d.pid)?;
        let mut conn = dial(&Listener { path: sock.clone(), pid }, QMP_TIMEOUT)
            .await
            .map_err(|e| hv(&sock.display().to_string(), e))?;
        let mut file = tokio::fs::File::open(image).await.map_err(|e| io_err(image.display().to_string(), e))?;
        let copy = tokio::io::copy(&mut file, &mut conn);
        match tokio::time::timeout(MIGRATION_TIMEOUT, copy).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                // QEMU refused the state: its log says why.
                let _ = self.wait_exit(uuid, Duration::from_secs(2), &mut None).await;
                let log = tail(&Layout::new(&self.0.cfg.run_dir, uuid).last_log());
                return Err(BackendError::Hypervisor(format!("sending {}: {e}; QEMU: {log}", image.display())));
            }
            Err(_) => return Err(BackendError::Hypervisor("restoring guest memory took too long".into())),
        }
        drop(conn);
        self.wait_incoming(uuid, cancel).await
    }

    /// Have the (incoming) domain's QEMU listen for its state on the
    /// migration socket; that socket.
    async fn start_incoming(&self, uuid: &str) -> Result<PathBuf> {
        let (qmp, layout) = self.with(uuid, |d| (d.qmp.clone(), d.layout.clone()))?;
        let sock = layout.migration();
        qmp.execute("migrate-incoming", json!({ "uri": format!("unix:{}", argv::MIGRATION) }))
            .await
            .map_err(|e| hv("migrate-incoming", e))?;
        Ok(sock)
    }

    /// Wait until an incoming domain has its whole state (it is then paused).
    async fn wait_incoming(&self, uuid: &str, cancel: &mut Option<Cancel>) -> Result<()> {
        let qmp = self.with(uuid, |d| d.qmp.clone())?;
        let deadline = Instant::now() + MIGRATION_TIMEOUT;
        loop {
            let st = qmp.execute("query-status", Value::Null).await.map_err(|e| hv("query-status", e))?;
            match st["status"].as_str() {
                Some("inmigrate") | Some("prelaunch") if Instant::now() < deadline => {}
                Some("paused") => return Ok(()),
                s => return Err(BackendError::Hypervisor(format!("receiving guest memory ended in state {s:?}"))),
            }
            cancellable_sleep(Duration::from_millis(100), cancel).await?;
        }
    }

    /// The receiving half of a live migration: a paused domain for `spec`
    /// whose QEMU waits for the running guest's state. Returns its domid.
    pub async fn prepare_incoming(&self, spec: &DomainSpec, mut cancel: Option<Cancel>) -> Result<i64> {
        let domid = self.spawn(spec, true, &mut cancel).await?;
        if let Err(e) = self.start_incoming(&spec.uuid).await {
            if let Err(e2) = self.destroy(&spec.uuid).await {
                tracing::warn!(vm_uuid = %spec.uuid, "cannot destroy the domain that failed to listen: {e2}");
            }
            return Err(e);
        }
        Ok(domid)
    }

    /// Feed a migration stream from another host into the waiting domain.
    pub async fn receive_stream<S>(&self, uuid: &str, mut conn: S) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    {
        let sock = self.with(uuid, |d| Listener { path: d.layout.migration(), pid: d.pid })?;
        let mut qemu = dial(&sock, QMP_TIMEOUT).await.map_err(|e| hv(&sock.path.display().to_string(), e))?;
        match tokio::time::timeout(MIGRATION_TIMEOUT, tokio::io::copy_bidirectional(&mut conn, &mut qemu)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(io_err("receiving guest memory".into(), e)),
            Err(_) => Err(BackendError::Hypervisor("receiving guest memory took too long".into())),
        }
    }

    /// Once the stream is in: wait for the whole state, then run the guest.
    pub async fn finish_incoming(&self, uuid: &str, mut cancel: Option<Cancel>) -> Result<()> {
        self.wait_incoming(uuid, &mut cancel).await?;
        self.unpause(uuid).await
    }

    /// The sending half: stream the running guest's state to `conn` while
    /// it runs (pre-copy); QEMU stops it for the last pages. On success the
    /// domain stays stopped, for the caller to destroy once the other side
    /// runs the guest (or to `unpause` if it cannot); on failure it runs on.
    pub async fn send_stream<S>(&self, uuid: &str, conn: S, mut cancel: Option<Cancel>) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // QEMU's STOP at the switch-over is ours, not the guest's.
        let was_paused = self.with(uuid, |d| {
            let was = d.paused;
            if !was {
                d.paused = true;
                d.our_stops += 1;
            }
            was
        })?;
        let res = self
            .stream_out(uuid, "sending guest memory", &mut cancel, move |mut qemu| async move {
                let mut conn = conn;
                tokio::io::copy_bidirectional(&mut qemu, &mut conn).await.map(drop)
            })
            .await;
        if res.is_err() && !was_paused {
            // QEMU runs the guest on after a failed migration; a cancelled
            // one may have stopped it already.
            let (qmp, stopped) = self.with(uuid, |d| (d.qmp.clone(), d.our_stops))?;
            let running = qmp
                .execute("query-status", Value::Null)
                .await
                .map(|st| st["running"].as_bool().unwrap_or(false))
                .unwrap_or(false);
            if running {
                self.with(uuid, |d| {
                    d.paused = false;
                    d.our_stops = stopped.saturating_sub(1);
                })?;
            } else {
                self.with(uuid, |d| {
                    d.paused = false;
                    d.our_resumes += 1;
                })?;
                if let Err(e) = qmp.execute("cont", Value::Null).await {
                    tracing::warn!(vm_uuid = %uuid, "cannot run the guest on after a failed migration: {e}");
                }
            }
        }
        res
    }

    pub async fn migrate(&self, _spec: &DomainSpec, _cancel: Option<Cancel>) -> Result<i64> {
        Err(BackendError::Unsupported("live migration".into()))
    }

    pub async fn plug_disk(&self, uuid: &str, disk: &Disk) -> Result<()> {
        let (qmp, hvm, attached, queues) = self.with(uuid, |d| {
            (d.qmp.clone(), d.spec.hvm, d.spec.disks.iter().any(|x| x.device == disk.device), argv::blk_queues(&d.spec))
        })?;
        if attached {
            return Err(BackendError::DeviceAttached(disk.device.clone()));
        }
        if hvm || disk.cdrom {
            return Err(BackendError::Unsupported("hot-plug of emulated IDE disks and CD drives".into()));
        }
        let (id, node) = (argv::disk_id(&disk.device)?, argv::node_id(&disk.device)?);
        let path =
            disk.path.clone().ok_or_else(|| BackendError::internal(format!("disk {} has no image", disk.device)))?;
        let fd = open_disk(&path, disk.format, disk.read_only)?;
        let set = add_fd(&qmp, &id, &fd).await?;
        let file = json!({ "driver": "file", "filename": argv::fdset_path(set) });
        let add = json!({ "driver": argv::format_name(disk.format), "node-name": node, "read-only": disk.read_only, "file": file });
        if let Err(e) = qmp.execute("blockdev-add", add).await {
            remove_fdsets(&qmp, uuid, &id, None).await;
            return Err(hv("blockdev-add", e));
        }
        let dev = json!({ "driver": "virtio-blk-pci", "drive": node, "id": id, "num-queues": queues });
        if let Err(e) = qmp.execute("device_add", dev).await {
            if let Err(e2) = qmp.execute("blockdev-del", json!({ "node-name": node })).await {
                tracing::warn!(vm_uuid = %uuid, "blockdev-del after a failed device_add: {e2}");
            }
            remove_fdsets(&qmp, uuid, &id, None).await;
            return Err(hv("device_add", e));
        }
        self.with(uuid, |d| d.spec.disks.push(disk.clone()))?;
        if disk.tracked() {
            self.track(uuid, &disk.device).await;
        }
        Ok(())
    }

    pub async fn unplug_disk(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        let (id, node) = (argv::disk_id(device)?, argv::node_id(device)?);
        let known = self.with(uuid, |d| d.spec.disks.iter().any(|x| x.device == device))?;
        if !known {
            return Ok(());
        }
        self.unplug_device(uuid, &id, device, force).await?;
        // The guest let go of the disk: what it wrote is known.
        self.hand_over_writes(uuid, Some(device)).await;
        let qmp = self.qmp(uuid)?;
        if let Err(e) = qmp.execute("blockdev-del", json!({ "node-name": node })).await {
            // Empty CD drives and drives already gone have no node.
            tracing::debug!(vm_uuid = %uuid, device, "blockdev-del: {e}");
        }
        remove_fdsets(&qmp, uuid, &id, None).await;
        self.with(uuid, |d| {
            d.spec.disks.retain(|x| x.device != device);
            d.bitmaps.remove(device);
        })?;
        Ok(())
    }

    /// A point-in-time copy of a running domain's disk `device` into
    /// `target` (an image of the same size, in `format`), made by QEMU while
    /// the guest runs: its backup job copies each block before the guest
    /// overwrites it, so the copy is the disk as it was when the job started
    /// (VDI.snapshot of a disk in use). Zeros stay holes in the target.
    ///
    /// With `track`, the same instant (one QMP transaction) freezes the
    /// disk's dirty bitmap and starts a new one; the frozen one's blocks are
    /// returned (read through QEMU's NBD server), or None if the disk had
    /// no bitmap. Without, any bitmap goes.
    pub async fn copy_disk(
        &self,
        uuid: &str,
        device: &str,
        target: &Path,
        format: DiskFormat,
        track: bool,
        mut cancel: Option<Cancel>,
    ) -> Result<Option<Vec<(u64, u64)>>> {
        let (qmp, attached, lock) = self.with(uuid, |d| {
            let attached = d.spec.disks.iter().any(|x| x.device == device && x.path.is_some());
            (d.qmp.clone(), attached, d.copying.clone())
        })?;
        if !attached {
            return Err(BackendError::Unsupported(format!("disk {device} is not attached to the domain")));
        }
        let _one = lock.lock().await;
        let old = self.with(uuid, |d| d.bitmaps.get(device).cloned())?;
        let new = track.then(bitmap_name);
        let (src, id) = (argv::node_id(device)?, format!("copy-{}", argv::disk_id(device)?));
        let fd = open_disk(target, format, false)?;
        let set = add_fd(&qmp, &id, &fd).await?;
        let file = json!({ "driver": "file", "filename": argv::fdset_path(set) });
        let add = json!({
            "driver": argv::format_name(format), "node-name": id, "file": file,
            "discard": "unmap", "detect-zeroes": "unmap",
        });
        if let Err(e) = qmp.execute("blockdev-add", add).await {
            remove_fdsets(&qmp, uuid, &id, None).await;
            return Err(hv("blockdev-add", e));
        }
        // One instant: the old bitmap stops, a new one starts, the copy begins.
        let mut actions = Vec::new();
        if let Some(old) = &old {
            actions.push(json!({ "type": "block-dirty-bitmap-disable", "data": { "node": src, "name": old } }));
        }
        if let Some(new) = &new {
            actions.push(json!({ "type": "block-dirty-bitmap-add", "data": bitmap_add(&src, new) }));
        }
        let job = json!({ "job-id": id, "device": src, "target": id, "sync": "full", "auto-dismiss": false });
        actions.push(json!({ "type": "blockdev-backup", "data": job }));
        // Nothing of a refused transaction happened: the old bitmap records on.
        let res = match qmp.execute("transaction", json!({ "actions": actions })).await {
            Err(e) => {
                drop_target(&qmp, uuid, device, &id).await;
                return Err(hv("transaction", e));
            }
            Ok(_) => {
                self.with(uuid, |d| match &new {
                    Some(n) => d.bitmaps.insert(device.to_string(), n.clone()),
                    None => d.bitmaps.remove(device),
                })?;
                wait_job(&qmp, &id, &mut cancel).await
            }
        };
        drop_target(&qmp, uuid, device, &id).await;
        if res.is_ok() && format == DiskFormat::Raw {
            let t = target.to_path_buf();
            if let Err(e) = blocking_io(move || release_unwritten(&t)).await {
                tracing::warn!(vm_uuid = %uuid, device, "the copy keeps its zeroed space: {e}");
            }
        }
        let Some(old) = old else { return res.map(|()| None) };
        if res.is_err() {
            if let Some(new) = &new {
                // The frozen blocks were not handed over: they stay recorded.
                let merge = json!({ "node": src, "target": new, "bitmaps": [old] });
                if let Err(e) = qmp.execute("block-dirty-bitmap-merge", merge).await {
                    tracing::warn!(vm_uuid = %uuid, device, "keeping a failed copy's dirty blocks: {e}");
                }
            }
            drop_bitmap(&qmp, uuid, &src, &old).await;
            return res.map(|()| None);
        }
        let dirty = self.read_bitmap(uuid, &qmp, &src, &old).await;
        drop_bitmap(&qmp, uuid, &src, &old).await;
        match dirty {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                // The copy is good; only what changed is unknown.
                tracing::warn!(vm_uuid = %uuid, device, "cannot read the disk's dirty bitmap: {e}");
                Ok(None)
            }
        }
    }

    /// The dirty blocks of bitmap `name` on node `node`, through an NBD
    /// export of the node that QEMU serves on a socket in the domain's
    /// directory for the time of the read.
    async fn read_bitmap(&self, uuid: &str, qmp: &Qmp, node: &str, name: &str) -> Result<Vec<(u64, u64)>> {
        let (layout, pid) = self.with(uuid, |d| (d.layout.clone(), d.pid))?;
        let _ = std::fs::remove_file(layout.nbd());
        let addr = json!({ "addr": { "type": "unix", "data": { "path": argv::NBD } } });
        qmp.execute("nbd-server-start", addr).await.map_err(|e| hv("nbd-server-start", e))?;
        let export = json!({
            "type": "nbd", "id": name, "node-name": node, "name": name, "writable": false, "bitmaps": [name],
        });
        let res = match qmp.execute("block-export-add", export).await {
            Err(e) => Err(hv("block-export-add", e)),
            Ok(_) => {
                let read = async {
                    let mut s = Listener { path: layout.nbd(), pid }.connect().await?;
                    nbdc::dirty_ranges(&mut s, name, name).await
                };
                let r = tokio::time::timeout(Duration::from_secs(60), read).await;
                if let Err(e) = qmp.execute("block-export-del", json!({ "id": name, "mode": "hard" })).await {
                    tracing::warn!(vm_uuid = %uuid, "block-export-del: {e}");
                }
                match r {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(BackendError::Hypervisor(format!("reading dirty bitmap {name}: {e}"))),
                    Err(_) => Err(BackendError::Hypervisor(format!("reading dirty bitmap {name}: no answer"))),
                }
            }
        };
        if let Err(e) = qmp.execute("nbd-server-stop", Value::Null).await {
            tracing::warn!(vm_uuid = %uuid, "nbd-server-stop: {e}");
        }
        let _ = std::fs::remove_file(layout.nbd());
        res
    }

    /// `device_del` and the wait for the guest to let go (DEVICE_DELETED).
    async fn unplug_device(&self, uuid: &str, id: &str, device: &str, force: bool) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let qmp = self.with(uuid, |d| {
            d.unplugs.insert(id.to_string(), tx);
            d.qmp.clone()
        })?;
        let res = async {
            qmp.execute("device_del", json!({ "id": id })).await.map_err(|e| hv("device_del", e))?;
            let limit = if force { Duration::from_secs(5) } else { self.0.cfg.unplug_timeout };
            match tokio::time::timeout(limit, rx).await {
                Ok(_) => Ok(()),
                Err(_) => {
                    Err(BackendError::Hypervisor(format!("the guest did not release device {device} within {limit:?}")))
                }
            }
        }
        .await;
        let _ = self.with(uuid, |d| d.unplugs.remove(id));
        res
    }

    pub async fn set_cd(&self, uuid: &str, device: &str, path: Option<PathBuf>) -> Result<()> {
        let id = argv::disk_id(device)?;
        let qmp = self.qmp(uuid)?;
        match &path {
            Some(p) => {
                let fd = confine::open_image(p, true)?;
                let set = add_fd(&qmp, &id, &fd).await?;
                let args = json!({ "id": id, "filename": argv::fdset_path(set), "format": "raw", "read-only-mode": "read-only" });
                if let Err(e) = qmp.execute("blockdev-change-medium", args).await {
                    if let Err(e2) = qmp.execute("remove-fd", json!({ "fdset-id": set })).await {
                        tracing::warn!(vm_uuid = %uuid, device, "remove-fd after a failed medium change: {e2}");
                    }
                    return Err(hv("blockdev-change-medium", e));
                }
                // The image it replaced, if any, is closed.
                remove_fdsets(&qmp, uuid, &id, Some(set)).await;
            }
            None => {
                qmp.execute("eject", json!({ "id": id, "force": true })).await.map_err(|e| hv("eject", e))?;
                remove_fdsets(&qmp, uuid, &id, None).await;
            }
        }
        self.with(uuid, |d| {
            if let Some(x) = d.spec.disks.iter_mut().find(|x| x.device == device) {
                x.path = path;
            }
        })
    }

    /// A NIC on a tap, as at start; for a NIC already plugged, a move of
    /// its tap to `nic.bridge` with `nic`'s settings (after its network
    /// moved, e.g. onto a bond).
    pub async fn plug_nic(&self, uuid: &str, nic: &Nic) -> Result<()> {
        let (qmp, hvm, domid, attached) = self
            .with(uuid, |d| (d.qmp.clone(), d.spec.hvm, d.domid, d.spec.nics.iter().any(|x| x.device == nic.device)))?;
        let (id, netdev) = (argv::nic_id(&nic.device)?, argv::netdev_id(&nic.device)?);
        argv::check_mac(nic)?;
        let tap = ports::tap_name(domid, &nic.device)?;
        if attached {
            self.0.net.attach(&tap, nic).await?;
            return self.with(uuid, |d| {
                if let Some(x) = d.spec.nics.iter_mut().find(|x| x.device == nic.device) {
                    *x = nic.clone();
                }
            });
        }
        // Made here and handed over (QEMU's user may not make taps).
        let fd = confine::open_tap(&tap)?;
        qmp.execute_with_fd("getfd", json!({ "fdname": netdev }), fd.as_fd()).await.map_err(|e| hv("getfd", e))?;
        drop(fd);
        let add = json!({ "type": "tap", "id": netdev, "fd": netdev });
        if let Err(e) = qmp.execute("netdev_add", add).await {
            if let Err(e2) = qmp.execute("closefd", json!({ "fdname": netdev })).await {
                tracing::warn!(vm_uuid = %uuid, "closefd after a failed netdev_add: {e2}");
            }
            return Err(hv("netdev_add", e));
        }
        let model = if hvm { "e1000" } else { "virtio-net-pci" };
        let mut dev = json!({ "driver": model, "netdev": netdev, "mac": nic.mac, "id": id });
        if let Some(slot) = argv::nic_slot(&nic.device) {
            dev["addr"] = json!(format!("{slot:#x}"));
        }
        let res = match self.0.net.attach(&tap, nic).await {
            Ok(()) => qmp.execute("device_add", dev).await.map(drop).map_err(|e| hv("device_add", e)),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            if let Err(e2) = qmp.execute("netdev_del", json!({ "id": netdev })).await {
                tracing::warn!(vm_uuid = %uuid, "netdev_del after a failed NIC plug: {e2}");
            }
            self.0.net.release(&[tap]).await;
            return Err(e);
        }
        self.with(uuid, |d| d.spec.nics.push(nic.clone()))?;
        Ok(())
    }

    pub async fn unplug_nic(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        let (id, netdev) = (argv::nic_id(device)?, argv::netdev_id(device)?);
        let (known, domid) = self.with(uuid, |d| (d.spec.nics.iter().any(|x| x.device == device), d.domid))?;
        if !known {
            return Ok(());
        }
        self.unplug_device(uuid, &id, device, force).await?;
        // The guest let go of the disk: what it wrote is known.
        self.hand_over_writes(uuid, Some(device)).await;
        let qmp = self.qmp(uuid)?;
        if let Err(e) = qmp.execute("netdev_del", json!({ "id": netdev })).await {
            tracing::debug!(vm_uuid = %uuid, device, "netdev_del: {e}");
        }
        self.with(uuid, |d| d.spec.nics.retain(|x| x.device != device))?;
        self.0.net.release(&[ports::tap_name(domid, device)?]).await;
        Ok(())
    }

    /// The balloon can give memory back up to what the domain was built with.
    pub async fn set_memory(&self, uuid: &str, target: i64) -> Result<()> {
        let (qmp, built) = self.with(uuid, |d| (d.qmp.clone(), d.spec.memory.static_max.max(d.spec.memory.target)))?;
        if target > built || target <= 0 {
            return Err(BackendError::Unsupported(format!("memory targets above the boot size ({built} bytes)")));
        }
        qmp.execute("balloon", json!({ "value": target })).await.map_err(|e| hv("balloon", e))?;
        Ok(())
    }

    /// Hot-plug vCPUs until `n` are present: QEMU's CPU slots in topology
    /// order (`query-hotpluggable-cpus`), `device_add` into the first empty
    /// ones; the guest agent, when it answers, onlines them, as Xen's guests
    /// do on their own. Fewer vCPUs is refused: a domain that had lost one
    /// (`device_del`, acknowledged by the guest) hung in its next save here
    /// (QEMU 7.2, TCG: the migration thread never ran).
    pub async fn set_vcpus(&self, uuid: &str, n: i64) -> Result<()> {
        let (qmp, max) = self.with(uuid, |d| (d.qmp.clone(), d.spec.vcpus.max))?;
        if n < 1 || n > max {
            return Err(BackendError::Unsupported(format!("{n} vCPUs (the domain has room for 1 to {max})")));
        }
        let list =
            qmp.execute("query-hotpluggable-cpus", Value::Null).await.map_err(|e| hv("query-hotpluggable-cpus", e))?;
        let mut slots: Vec<Value> = list.as_array().cloned().unwrap_or_default();
        let pos = |c: &Value, k: &str| c["props"][k].as_i64().unwrap_or(0);
        slots.sort_by_key(|c| (pos(c, "socket-id"), pos(c, "core-id"), pos(c, "thread-id")));
        let cur = slots.iter().filter(|c| c.get("qom-path").is_some()).count() as i64;
        if n > cur {
            for c in slots.iter().filter(|c| c.get("qom-path").is_none()).take((n - cur) as usize) {
                let mut dev = c["props"].clone();
                dev["driver"] = c["type"].clone();
                dev["id"] =
                    json!(format!("vcpu-{}-{}-{}", pos(c, "socket-id"), pos(c, "core-id"), pos(c, "thread-id")));
                qmp.execute("device_add", dev).await.map_err(|e| hv("device_add of a vCPU", e))?;
            }
            self.guest_vcpus(uuid, n).await;
        } else if n < cur {
            return Err(BackendError::Unsupported(format!("vCPU unplug ({cur} vCPUs are plugged, {n} asked)")));
        }
        self.with(uuid, |d| d.spec.vcpus.at_startup = n)
    }

    /// Have the guest agent online the first `n` CPUs (new CPUs take a
    /// moment to appear in the guest). Best effort: without an agent the
    /// guest decides, as a Xen guest does.
    async fn guest_vcpus(&self, uuid: &str, n: i64) {
        let Ok((agent, up)) = self.with(uuid, |d| (d.agent.clone(), d.agent_up)) else { return };
        if !up {
            tracing::info!(vm_uuid = %uuid, n, "no guest agent: the guest onlines its vCPUs itself, or not");
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut g = agent.lock().await;
            let Some(a) = g.as_mut() else { return };
            let cpus = match a.execute("guest-get-vcpus", Value::Null).await {
                Ok(v) => v.as_array().cloned().unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(vm_uuid = %uuid, "guest-get-vcpus: {e}");
                    return;
                }
            };
            let want: Vec<Value> = cpus
                .iter()
                .filter_map(|c| {
                    let id = c["logical-id"].as_i64()?;
                    (id < n && c["online"].as_bool() != Some(true)).then(|| json!({ "logical-id": id, "online": true }))
                })
                .collect();
            if !want.is_empty() {
                if let Err(e) = a.execute("guest-set-vcpus", json!({ "vcpus": want })).await {
                    tracing::warn!(vm_uuid = %uuid, "guest-set-vcpus: {e}");
                    return;
                }
            }
            drop(g);
            if cpus.len() as i64 >= n || Instant::now() > deadline {
                if (cpus.len() as i64) < n {
                    tracing::warn!(vm_uuid = %uuid, n, seen = cpus.len(), "the guest did not see every new vCPU in time");
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn set_nic_locking(&self, uuid: &str, device: &str, locking: &crate::Locking) -> Result<()> {
        let (domid, mac) =
            self.with(uuid, |d| (d.domid, d.spec.nics.iter().find(|n| n.device == device).map(|n| n.mac.clone())))?;
        let Some(mac) = mac else {
            return Err(BackendError::Internal(format!("no NIC {device} in domain {uuid}")));
        };
        self.0.net.set_locking(&ports::tap_name(domid, device)?, &mac, locking).await?;
        self.with(uuid, |d| {
            if let Some(n) = d.spec.nics.iter_mut().find(|n| n.device == device) {
                n.locking = locking.clone();
            }
        })
    }

    pub fn nics(&self) -> Vec<crate::HostNic> {
        self.0.net.nics()
    }

    pub async fn apply_network(&self, net: &crate::HostNetwork) -> Result<()> {
        self.0.net.apply(net).await
    }

    pub fn stats(&self, uuid: &str) -> Option<Stats> {
        self.doms().get(uuid).map(|d| d.stats.clone())
    }

    /// This machine's load since the last call, for the NICs we list.
    pub fn host_stats(&self) -> crate::HostStats {
        let nics = self.0.net.nic_names();
        let mut meter = self.0.meter.lock().unwrap_or_else(|e| e.into_inner());
        host::measure_local(&mut meter, self.0.net.sysfs(), &nics)
    }

    /// The serial line's socket (QEMU takes one client at a time).
    pub fn text_console(&self, uuid: &str) -> Option<Listener> {
        self.doms().get(uuid).map(|d| Listener { path: d.layout.serial(), pid: d.pid })
    }

    pub fn console(&self, uuid: &str) -> Option<Console> {
        self.doms().get(uuid).map(|d| Console::Unix(Listener { path: d.layout.vnc(), pid: d.pid }))
    }

    pub fn is_running(&self, uuid: &str) -> bool {
        self.doms().get(uuid).is_some_and(|d| !d.paused)
    }

    pub fn domains(&self) -> Vec<DomainInfo> {
        let state = |p: bool| if p { DomainState::Paused } else { DomainState::Running };
        self.doms()
            .iter()
            .map(|(u, d)| DomainInfo { uuid: u.clone(), domid: d.domid, state: state(d.paused) })
            .collect()
    }

    /// Remove the kept logs and empty directories of VMs not in `known`
    /// (destroyed since; a directory with anything in it is left alone).
    pub fn prune(&self, known: &std::collections::HashSet<String>) {
        let Ok(rd) = std::fs::read_dir(&self.0.cfg.run_dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let uuid = name.strip_suffix(".log").unwrap_or(&name);
            if uuid.len() != 36 || known.contains(uuid) || self.doms().contains_key(uuid) {
                continue;
            }
            let path = e.path();
            let res = if name.ends_with(".log") { std::fs::remove_file(&path) } else { std::fs::remove_dir(&path) };
            match res {
                Ok(()) => tracing::debug!(path = %path.display(), "removed what a destroyed VM left"),
                Err(e) => tracing::info!(path = %path.display(), "left in place: {e}"),
            }
        }
    }

    /// Re-attach to a QEMU that kept running while the server was down: its
    /// pidfile names a live process of this directory and its QMP socket
    /// answers. Otherwise the directory (and a QEMU that no longer answers)
    /// is cleaned up and the domain is gone.
    pub async fn adopt(&self, spec: &DomainSpec) -> Result<Option<DomainInfo>> {
        if let Some(d) = self.doms().get(&spec.uuid) {
            let state = if d.paused { DomainState::Paused } else { DomainState::Running };
            return Ok(Some(DomainInfo { uuid: spec.uuid.clone(), domid: d.domid, state }));
        }
        let layout = Layout::new(&self.0.cfg.run_dir, &spec.uuid);
        let pid = read_pid(&layout).filter(|&p| alive(p) && owns(p, &layout));
        let found = match pid {
            None => None,
            Some(pid) => match qmp_of(&layout, pid).await {
                Ok((qmp, events)) => match qmp.execute("query-status", Value::Null).await {
                    // The guest ended while no server watched (QEMU waits,
                    // -no-shutdown): it is halted; its writes are unknown.
                    Ok(st) if matches!(st["status"].as_str(), Some("shutdown" | "guest-panicked")) => {
                        tracing::info!(vm_uuid = %spec.uuid, pid, "the guest ended while the server was away: quitting QEMU");
                        if let Err(e) = qmp.execute_timeout("quit", Value::Null, self.0.cfg.kill_grace).await {
                            tracing::debug!(vm_uuid = %spec.uuid, "quit: {e}");
                        }
                        let deadline = Instant::now() + self.0.cfg.kill_grace;
                        while alive(pid) && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        if alive(pid) {
                            sigkill(pid);
                        }
                        None
                    }
                    Ok(st) => Some((pid, qmp, events, st)),
                    Err(e) => {
                        tracing::warn!(vm_uuid = %spec.uuid, pid, "QEMU does not answer ({e}): killing it");
                        sigkill(pid);
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(vm_uuid = %spec.uuid, pid, "cannot reach QEMU's QMP ({e}): killing it");
                    sigkill(pid);
                    None
                }
            },
        };
        let Some((pid, qmp, events, st)) = found else {
            // Its taps went with it; rules of them may be left.
            if let Some(domid) = std::fs::read_to_string(layout.domid()).ok().and_then(|s| s.trim().parse().ok()) {
                self.0.net.release(&nic_taps(spec, domid)).await;
            }
            if layout.dir.exists() {
                if let Err(e) = std::fs::remove_dir_all(&layout.dir) {
                    tracing::warn!(dir = %layout.dir.display(), "cannot remove a gone domain's directory: {e}");
                }
            }
            return Ok(None);
        };
        let domid = std::fs::read_to_string(layout.domid())
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or_else(|| self.0.next_domid.fetch_add(1, Ordering::SeqCst));
        let paused = st["running"].as_bool() != Some(true);
        tracing::info!(vm_uuid = %spec.uuid, domid, pid, "re-attached to QEMU");
        let qmp = Arc::new(qmp);
        let bitmaps = recording_bitmaps(&qmp, spec).await;
        self.install(spec, domid, pid, layout, qmp, events, None, paused);
        if let Err(e) = self.with(&spec.uuid, |d| d.bitmaps = bitmaps) {
            tracing::warn!(vm_uuid = %spec.uuid, "the adopted domain's bitmaps: {e}");
        }
        // Its taps are named after the domid: give them back their switch
        // and locking (rules may have been lost, the spec may have changed).
        if let Err(e) = self.attach_nics(spec, domid).await {
            tracing::warn!(vm_uuid = %spec.uuid, domid, "re-attaching the NICs of an adopted domain: {e}");
        }
        let state = if paused { DomainState::Paused } else { DomainState::Running };
        Ok(Some(DomainInfo { uuid: spec.uuid.clone(), domid, state }))
    }
}

#[derive(Default)]
struct Sampler {
    cpu: Option<(Instant, u64)>,
    /// Per device: when, bytes read and written, read and write requests.
    disks: HashMap<String, (Instant, u64, u64, u64, u64)>,
    /// Per NIC: when, bytes the guest received and sent.
    nics: HashMap<String, (Instant, u64, u64)>,
}

/// A NIC's byte counters, as the guest sees them (received, sent): its
/// tap's transmit and receive counters the other way round.
fn tap_counters(tap: &str) -> Option<(u64, u64)> {
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/class/net/{tap}/statistics/{f}")).ok()?.trim().parse().ok()
    };
    Some((read("tx_bytes")?, read("rx_bytes")?))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The host's available memory in bytes (MemAvailable), if /proc says.
fn available_memory() -> Option<i64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = m.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.split_whitespace().next()?;
    kib.parse::<i64>().ok().map(|k| k * 1024)
}

/// The taps of a domain's NICs (those that can be named).
fn nic_taps(spec: &DomainSpec, domid: i64) -> Vec<String> {
    spec.nics.iter().filter_map(|n| ports::tap_name(domid, &n.device).ok()).collect()
}

fn read_pid(layout: &Layout) -> Option<u32> {
    std::fs::read_to_string(layout.pidfile()).ok()?.trim().parse().ok()
}

/// Whether `pid` is a QEMU of this domain directory (not a recycled pid):
/// QEMU runs in its domain directory; one started by an earlier xapi-rs
/// (before QEMU ran there) names the directory's QMP socket instead.
fn owns(pid: u32, layout: &Layout) -> bool {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    let in_dir = cwd.is_some_and(|c| c == layout.dir || std::fs::canonicalize(&layout.dir).is_ok_and(|d| d == c));
    cmdline.contains("qemu") && (in_dir || cmdline.contains(&layout.qmp().display().to_string()))
}

/// Wait for job `id` (a disk copy) to conclude, then dismiss it; cancelled,
/// the job is cancelled first.
async fn wait_job(qmp: &Qmp, id: &str, cancel: &mut Option<Cancel>) -> Result<()> {
    let mut cancelled = false;
    loop {
        if !cancelled && cancellable_sleep(COPY_POLL, cancel).await.is_err() {
            cancelled = true;
            if let Err(e) = qmp.execute("job-cancel", json!({ "id": id })).await {
                tracing::warn!(job = id, "job-cancel: {e}");
            }
        } else if cancelled {
            tokio::time::sleep(COPY_POLL).await;
        }
        let jobs = qmp.execute("query-jobs", Value::Null).await.map_err(|e| hv("query-jobs", e))?;
        let Some(job) = jobs.as_array().into_iter().flatten().find(|j| j["id"].as_str() == Some(id)) else {
            return Err(BackendError::Hypervisor(format!("the disk copy job {id} vanished")));
        };
        if job["status"].as_str() != Some("concluded") {
            continue;
        }
        let error = job["error"].as_str().map(str::to_string);
        if let Err(e) = qmp.execute("job-dismiss", json!({ "id": id })).await {
            tracing::warn!(job = id, "job-dismiss: {e}");
        }
        return match (cancelled, error) {
            (true, _) => Err(BackendError::Cancelled),
            (false, Some(e)) => Err(BackendError::Hypervisor(format!("copying the disk: {e}"))),
            (false, None) => Ok(()),
        };
    }
}

/// Run file I/O off the runtime's threads.
async fn blocking_io(f: impl FnOnce() -> std::io::Result<()> + Send + 'static) -> std::io::Result<()> {
    tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)?
}

/// Give back the space of a raw copy's zeros. The backup job writes a
/// source's holes as zeroes without leave to unmap, which the file system
/// turns into allocated (unwritten) extents: a copy of a mostly empty 4 GiB
/// disk took 4 GiB. Those extents read as holes (SEEK_HOLE): punch them.
fn release_unwritten(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let fd = f.as_raw_fd();
    let size = f.metadata()?.len() as libc::off_t;
    let mut off: libc::off_t = 0;
    while off < size {
        // SAFETY: lseek and fallocate on a file descriptor we own.
        let hole = unsafe { libc::lseek(fd, off, libc::SEEK_HOLE) };
        if hole < 0 || hole >= size {
            break;
        }
        let data = unsafe { libc::lseek(fd, hole, libc::SEEK_DATA) };
        let end = if data < 0 { size } else { data };
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        if unsafe { libc::fallocate(fd, mode, hole, end - hole) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        off = end;
    }
    Ok(())
}

/// Remove a disk copy's target node and its fd set.
async fn drop_target(qmp: &Qmp, uuid: &str, device: &str, id: &str) {
    if let Err(e) = qmp.execute("blockdev-del", json!({ "node-name": id })).await {
        tracing::warn!(vm_uuid = %uuid, device, "blockdev-del of a copy's target: {e}");
    }
    remove_fdsets(qmp, uuid, id, None).await;
}

/// Remove a dirty bitmap; an export that still holds it lets go shortly.
async fn drop_bitmap(qmp: &Qmp, uuid: &str, node: &str, name: &str) {
    for _ in 0..20 {
        match qmp.execute("block-dirty-bitmap-remove", json!({ "node": node, "name": name })).await {
            Ok(_) => return,
            Err(e) if e.to_string().contains("busy") || e.to_string().contains("in use") => {
                tokio::time::sleep(COPY_POLL).await;
            }
            Err(e) => {
                tracing::warn!(vm_uuid = %uuid, bitmap = name, "block-dirty-bitmap-remove: {e}");
                return;
            }
        }
    }
    tracing::warn!(vm_uuid = %uuid, bitmap = name, "a dirty bitmap stays busy: left in QEMU");
}

/// A new dirty bitmap's name, unique within any QEMU (one adopted by a
/// restarted server keeps the bitmaps an earlier server made).
/// The tracking bitmaps an adopted QEMU records for the spec's tracked
/// disks, by device: the one recording bitmap of a disk, or none (a disk
/// without, or with others beside it, starts afresh at its next copy,
/// which counts every block as changed).
async fn recording_bitmaps(qmp: &Qmp, spec: &DomainSpec) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if !spec.disks.iter().any(Disk::tracked) {
        return out;
    }
    let nodes = match qmp.execute("query-named-block-nodes", json!({ "flat": true })).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(vm_uuid = %spec.uuid, "query-named-block-nodes: {e}: the disks' writes so far count as all");
            return out;
        }
    };
    for d in spec.disks.iter().filter(|d| d.tracked()) {
        let Ok(node) = argv::node_id(&d.device) else { continue };
        // A frozen bitmap beside the recording one is a copy the last
        // server did not finish: its blocks were handed to no snapshot.
        let found: Vec<(String, bool)> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["node-name"].as_str() == Some(node.as_str()))
            .flat_map(|n| n["dirty-bitmaps"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| {
                let name = b["name"].as_str().filter(|n| n.starts_with("cbt-"))?;
                Some((name.to_string(), b["recording"].as_bool() == Some(true)))
            })
            .collect();
        match found.as_slice() {
            [(one, true)] => {
                out.insert(d.device.clone(), one.clone());
            }
            [] => {}
            more => {
                tracing::warn!(vm_uuid = %spec.uuid, device = d.device, bitmaps = ?more, "tracking bitmaps not as left by a finished copy: none used")
            }
        }
    }
    out
}

fn bitmap_name() -> String {
    static N: AtomicI64 = AtomicI64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("cbt-{}-{}", now.as_nanos(), N.fetch_add(1, Ordering::Relaxed))
}

/// The arguments of `block-dirty-bitmap-add` for a tracking bitmap, whose
/// granularity is the changed-block log's block.
fn bitmap_add(node: &str, name: &str) -> Value {
    json!({ "node": node, "name": name, "granularity": 64 << 10 })
}

/// How often a disk copy's progress is looked at.
const COPY_POLL: Duration = Duration::from_millis(50);

/// Hand QEMU an image in a new fd set tagged with the device id; the set.
async fn add_fd(qmp: &Qmp, id: &str, fd: &OwnedFd) -> Result<i64> {
    let r = qmp.execute_with_fd("add-fd", json!({ "opaque": id }), fd.as_fd()).await.map_err(|e| hv("add-fd", e))?;
    r["fdset-id"].as_i64().ok_or_else(|| BackendError::Hypervisor(format!("add-fd answered {r}")))
}

/// Close the fd sets of device `id` (all, or all but `keep`): QEMU closes
/// the descriptors once nothing uses them. Failures only leak a descriptor.
async fn remove_fdsets(qmp: &Qmp, uuid: &str, id: &str, keep: Option<i64>) {
    let sets = match qmp.execute("query-fdsets", Value::Null).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(vm_uuid = %uuid, device = id, "query-fdsets: {e}");
            return;
        }
    };
    for set in sets.as_array().into_iter().flatten() {
        let Some(n) = set["fdset-id"].as_i64() else { continue };
        let ours = set["fds"].as_array().into_iter().flatten().any(|f| f["opaque"].as_str() == Some(id));
        if ours && Some(n) != keep {
            if let Err(e) = qmp.execute("remove-fd", json!({ "fdset-id": n })).await {
                tracing::warn!(vm_uuid = %uuid, device = id, fdset = n, "remove-fd: {e}");
            }
        }
    }
}

/// A disk image opened for QEMU (a qcow2 image must not name a backing file).
fn open_disk(path: &Path, format: DiskFormat, read_only: bool) -> Result<OwnedFd> {
    let fd = confine::open_image(path, read_only)?;
    if format == DiskFormat::Qcow2 {
        confine::check_no_backing(path, &fd)?;
    }
    Ok(fd)
}

/// Remove a domain directory's files, unless a new process already uses it.
fn remove_dir_files(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// What the agent says about the guest, in the shape guest metrics have.
async fn guest_report(a: &mut Agent, spec: &DomainSpec) -> std::result::Result<GuestInfo, QmpError> {
    let os = a.execute_timeout("guest-get-osinfo", Value::Null, AGENT_TIMEOUT).await?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut info = GuestInfo::default();
    let name = [s(&os, "pretty-name"), s(&os, "name")].into_iter().find(|n| !n.is_empty()).unwrap_or("Linux".into());
    info.os_version.insert("name".into(), name);
    info.os_version.insert("distro".into(), s(&os, "id"));
    let ver = s(&os, "version-id");
    let mut parts = ver.split('.');
    info.os_version.insert("major".into(), parts.next().unwrap_or_default().to_string());
    info.os_version.insert("minor".into(), parts.next().unwrap_or("0").to_string());
    info.os_version.insert("uname".into(), s(&os, "kernel-release"));
    if let Ok(v) = a.execute_timeout("guest-info", Value::Null, AGENT_TIMEOUT).await {
        let version = s(&v, "version");
        let mut p = version.split('.');
        for k in ["major", "minor", "micro"] {
            info.pv_drivers_version.insert(k.into(), p.next().unwrap_or("0").to_string());
        }
        info.pv_drivers_version.insert("build".into(), "qemu-guest-agent".into());
    }
    if let Ok(Value::Array(ifaces)) =
        a.execute_timeout("guest-network-get-interfaces", Value::Null, AGENT_TIMEOUT).await
    {
        for nic in &spec.nics {
            let mac = nic.mac.to_lowercase();
            let Some(i) = ifaces.iter().find(|i| s(i, "hardware-address").to_lowercase() == mac) else { continue };
            let addrs = i["ip-addresses"].as_array().cloned().unwrap_or_default();
            let of = |t: &str| -> Vec<String> {
                addrs.iter().filter(|a| a["ip-address-type"] == t).map(|a| s(a, "ip-address")).collect()
            };
            let (v4, v6) = (of("ipv4"), of("ipv6"));
            if let Some(ip) = v4.first().or(v6.first()) {
                info.networks.insert(format!("{}/ip", nic.device), ip.clone());
            }
            for (j, ip) in v4.iter().enumerate() {
                info.networks.insert(format!("{}/ipv4/{j}", nic.device), ip.clone());
            }
            for (j, ip) in v6.iter().enumerate() {
                info.networks.insert(format!("{}/ipv6/{j}", nic.device), ip.clone());
            }
        }
    }
    if let Some(m) = read_guest_file(a, "/proc/meminfo").await {
        let kib = |k: &str| {
            m.lines().find_map(|l| l.strip_prefix(k)).and_then(|r| r.split_whitespace().next()).map(str::to_string)
        };
        if let (Some(t), Some(f)) = (kib("MemTotal:"), kib("MemAvailable:").or_else(|| kib("MemFree:"))) {
            info.memory.insert("total".into(), t);
            info.memory.insert("free".into(), f);
        }
    }
    Ok(info)
}

/// A small text file inside the guest, through the agent's file commands.
async fn read_guest_file(a: &mut Agent, path: &str) -> Option<String> {
    let h = a.execute_timeout("guest-file-open", json!({ "path": path, "mode": "r" }), AGENT_TIMEOUT).await.ok()?;
    let r = a.execute_timeout("guest-file-read", json!({ "handle": h, "count": 65536 }), AGENT_TIMEOUT).await;
    let _ = a.execute_timeout("guest-file-close", json!({ "handle": h }), AGENT_TIMEOUT).await;
    let b64 = r.ok()?.get("buf-b64")?.as_str()?.to_string();
    String::from_utf8(unbase64(&b64)?).ok()
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decoding() {
        assert_eq!(unbase64("TWFu").unwrap(), b"Man");
        assert_eq!(unbase64("TWE=").unwrap(), b"Ma");
        assert_eq!(unbase64("TQ==").unwrap(), b"M");
        assert!(unbase64("T!==").is_none());
    }

    fn backend(run_dir: &Path, allowed: Vec<PathBuf>) -> Qemu {
        let inner = Inner {
            cfg: QemuConfig { run_dir: run_dir.to_path_buf(), ..Default::default() },
            user: None,
            private_mounts: false,
            probe: Probe {
                qemu: probe::QemuInfo { binary: "/bin/false".into(), version: (7, 2, 0), version_line: String::new() },
                accel: Accel::Tcg,
                reason: String::new(),
            },
            allowed,
            domains: Mutex::new(HashMap::new()),
            next_domid: AtomicI64::new(1),
            events: broadcast::channel(16).0,
            net: Net::new(None),
            meter: Mutex::new(host::Meter::default()),
            disk_writes: std::sync::OnceLock::new(),
        };
        Qemu(Arc::new(inner))
    }

    #[test]
    fn prune_drops_what_destroyed_vms_left() {
        let dir = std::env::temp_dir().join(format!("xapi-rs-qemu-prune-{}", std::process::id()));
        let (gone, empty, busy, kept) = (
            "00000000-0000-0000-0000-000000000001",
            "00000000-0000-0000-0000-000000000002",
            "00000000-0000-0000-0000-000000000003",
            "00000000-0000-0000-0000-000000000004",
        );
        for d in [empty, busy, kept] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join(busy).join("qmp.sock"), b"").unwrap();
        for l in [gone, kept] {
            std::fs::write(dir.join(format!("{l}.log")), b"x").unwrap();
        }
        std::fs::write(dir.join("notes"), b"not ours").unwrap();
        let q = backend(&dir, vec![]);
        q.prune(&[kept.to_string()].into_iter().collect());
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, vec![busy.to_string(), kept.to_string(), format!("{kept}.log"), "notes".into()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_domain_socket_counts_only_when_its_process_listens() {
        let dir = std::env::temp_dir().join(format!("xapi-rs-qemu-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vnc.sock");
        let _l = tokio::net::UnixListener::bind(&path).unwrap();
        assert!(Listener { path: path.clone(), pid: std::process::id() }.connect().await.is_ok());
        // A name swapped for another process's socket: this one is ours, not pid 1's.
        let e = Listener { path: path.clone(), pid: 1 }.connect().await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn kernel_paths_must_be_in_allowed_directories() {
        let dir = std::env::temp_dir().join(format!("xapi-rs-qemu-allowed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinuz"), b"k").unwrap();
        let q = backend(&dir, vec![PathBuf::from(GUEST_DIR), dir.clone()]);
        let k = dir.join("vmlinuz").display().to_string();
        assert!(q.guest_file(&k).is_ok());
        assert!(matches!(q.guest_file("/etc/passwd"), Err(BackendError::PathNotAllowed { .. })));
        assert!(matches!(q.guest_file("relative"), Err(BackendError::PathNotAllowed { .. })));
        let up = format!("{}/../{}/vmlinuz", dir.display(), dir.file_name().unwrap().to_string_lossy());
        assert!(matches!(q.guest_file(&up), Err(BackendError::PathNotAllowed { .. })));
        let missing = dir.join("nope").display().to_string();
        assert!(matches!(q.guest_file(&missing), Err(BackendError::MissingFile(_))));
        std::os::unix::fs::symlink("/etc/passwd", dir.join("escape")).unwrap();
        assert!(matches!(
            q.guest_file(&dir.join("escape").display().to_string()),
            Err(BackendError::PathNotAllowed { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A QMP peer that answers every command with an empty return and sends
    /// the events it is given; dropping the sender closes the connection.
    fn fake_qemu(stream: tokio::net::UnixStream) -> mpsc::UnboundedSender<Value> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let greeting = json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}});
            w.write_all(format!("{greeting}\n").as_bytes()).await.unwrap();
            let mut lines = BufReader::new(r).lines();
            loop {
                let out = tokio::select! {
                    l = lines.next_line() => match l {
                        Ok(Some(l)) => {
                            let req: Value = serde_json::from_str(&l).unwrap();
                            json!({"return": {}, "id": req["id"]})
                        }
                        _ => return,
                    },
                    e = rx.recv() => match e {
                        Some(e) => e,
                        None => return,
                    },
                };
                if w.write_all(format!("{out}\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        tx
    }

    /// A QMP peer whose answer to each command comes from `answer(command,
    /// how many times it came before)`; it records the commands.
    fn scripted_qemu(
        stream: tokio::net::UnixStream,
        answer: impl Fn(&str, usize) -> Value + Send + 'static,
    ) -> Arc<Mutex<Vec<String>>> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let greeting = json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}});
            w.write_all(format!("{greeting}\n").as_bytes()).await.unwrap();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let req: Value = serde_json::from_str(&l).unwrap();
                let cmd = req["execute"].as_str().unwrap_or_default().to_string();
                let n = {
                    let mut s = log.lock().unwrap();
                    s.push(cmd.clone());
                    s.iter().filter(|c| **c == cmd).count() - 1
                };
                let out = json!({"return": answer(&cmd, n), "id": req["id"]});
                if w.write_all(format!("{out}\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        seen
    }

    #[tokio::test]
    async fn a_disk_copy_waits_for_its_job_and_reports_its_error() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let seen = scripted_qemu(b, |cmd, n| match (cmd, n) {
            ("query-jobs", 0) => {
                json!([{"id": "copy-vbd-0", "status": "running"}, {"id": "other", "status": "concluded"}])
            }
            ("query-jobs", _) => {
                json!([{"id": "copy-vbd-0", "status": "concluded", "error": "No space left on device"}])
            }
            _ => json!({}),
        });
        let (qmp, _events) = Qmp::handshake(a, Duration::from_secs(5)).await.unwrap();
        let e = wait_job(&qmp, "copy-vbd-0", &mut None).await.unwrap_err();
        assert!(matches!(&e, BackendError::Hypervisor(m) if m.contains("No space left")), "{e:?}");
        // The concluded job is dismissed, not left in QEMU's list.
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, ["qmp_capabilities", "query-jobs", "query-jobs", "job-dismiss"]);
    }

    #[tokio::test]
    async fn a_cancelled_disk_copy_cancels_its_job() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let seen = scripted_qemu(b, |cmd, _| match cmd {
            "query-jobs" => json!([{"id": "copy-vbd-1", "status": "concluded", "error": "operation cancelled"}]),
            _ => json!({}),
        });
        let (qmp, _events) = Qmp::handshake(a, Duration::from_secs(5)).await.unwrap();
        let (tx, rx) = tokio::sync::watch::channel(true);
        let e = wait_job(&qmp, "copy-vbd-1", &mut Some(rx)).await.unwrap_err();
        drop(tx);
        assert!(matches!(e, BackendError::Cancelled), "{e:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, ["qmp_capabilities", "job-cancel", "query-jobs", "job-dismiss"]);
    }

    async fn recv(rx: &mut broadcast::Receiver<DomainEvent>) -> DomainEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn qmp_events_become_domain_events() {
        let run = std::env::temp_dir().join(format!("xapi-rs-qemu-events-{}", std::process::id()));
        let q = backend(&run, vec![]);
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let peer = fake_qemu(b);
        let (qmp, events) = Qmp::handshake(a, Duration::from_secs(5)).await.unwrap();
        let mut rx = q.events();
        let spec = DomainSpec { uuid: "u".into(), ..Default::default() };
        let layout = Layout::new(&run, "u");
        std::fs::create_dir_all(&layout.dir).unwrap();
        // pid 0: no process to watch, signal or sample.
        q.install(&spec, 7, 0, layout.clone(), Arc::new(qmp), events, None, false);
        // A pause we did not ask for, and the resume.
        peer.send(json!({"event": "STOP"})).unwrap();
        assert_eq!(recv(&mut rx).await, DomainEvent::Paused { uuid: "u".into(), domid: 7 });
        assert!(!q.is_running("u"));
        peer.send(json!({"event": "RESUME"})).unwrap();
        assert_eq!(recv(&mut rx).await, DomainEvent::Resumed { uuid: "u".into(), domid: 7 });
        // Our own pause is no event.
        q.pause("u").await.unwrap();
        peer.send(json!({"event": "STOP"})).unwrap();
        q.unpause("u").await.unwrap();
        peer.send(json!({"event": "RESUME"})).unwrap();
        let io = json!({"event": "BLOCK_IO_ERROR", "data": {"device": "", "node-name": "node-vbd-1", "operation": "write", "action": "stop", "reason": "No space left on device"}});
        peer.send(io).unwrap();
        assert_eq!(
            recv(&mut rx).await,
            DomainEvent::IoError {
                uuid: "u".into(),
                domid: 7,
                device: "1".into(),
                message: "write: No space left on device".into()
            }
        );
        peer.send(json!({"event": "DEVICE_DELETED", "data": {"device": "vbd-2", "path": "/machine/peripheral/vbd-2"}}))
            .unwrap();
        assert_eq!(
            recv(&mut rx).await,
            DomainEvent::DeviceRemoved { uuid: "u".into(), domid: 7, device: Device::Disk("2".into()) }
        );
        // The guest reboots: QEMU (-no-reboot) says why and goes.
        peer.send(json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}})).unwrap();
        drop(peer);
        assert_eq!(recv(&mut rx).await, DomainEvent::Halted { uuid: "u".into(), domid: 7, reason: HaltReason::Reboot });
        assert!(q.domains().is_empty());
        assert!(!layout.dir.exists());
        let _ = std::fs::remove_dir_all(&run);
    }
}

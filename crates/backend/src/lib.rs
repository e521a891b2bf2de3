//! Hypervisor backends.
//!
//! The server speaks to a backend in terms of domains (one per running VM),
//! keyed by the VM's uuid: create, unpause, pause, clean/hard shutdown,
//! reboot, suspend to an image, resume, migrate, hot-plug disks and NICs,
//! statistics and a console endpoint, and re-attaching to the domains that
//! outlived a restart of the server ([`Backend::adopt`]). Backends report
//! what happens without being asked (the guest agent reporting in, the guest
//! halting, a pause, a device leaving, an I/O error, a dead hypervisor
//! process) as [`DomainEvent`]s. The server decides, the backend acts: nothing
//! here speaks XenAPI; [`BackendError`]s are mapped to XenAPI errors by the
//! server.
//!
//! Backends form an enum rather than a trait object so calls stay static and
//! async-friendly; `sim` is the default, `qemu` runs real guests.

pub mod host;
pub mod linux;
pub mod net;
pub mod qemu;
pub mod sim;

pub use host::{HostFacts, HostMemory, HostStats};
pub use net::{BondMode, HostIp, HostNetwork, HostNic, Link, Locking, Switch};

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub type Map = BTreeMap<String, String>;

/// How a disk image is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiskFormat {
    #[default]
    Raw,
    Qcow2,
}

/// A disk as the backend sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Disk {
    /// The VBD's userdevice ("0", "1", "3"…).
    pub device: String,
    /// Backing file; `None` for an empty CD drive.
    pub path: Option<PathBuf>,
    pub format: DiskFormat,
    pub read_only: bool,
    pub cdrom: bool,
    /// Track which 64 KiB blocks the guest writes (changed block tracking:
    /// QEMU keeps a dirty bitmap, read at each [`Backend::copy_disk`] and
    /// handed to the [`DiskWrites`] sink when the disk's domain ends), as
    /// part of this batch of the disk's log (the server's token).
    pub change_batch: Option<String>,
}

/// Where the writes of a tracked disk go when the guest can write no more
/// (it powered off, rebooted or crashed, was shut down or suspended, or the
/// disk was unplugged): the disk's image, its [`Disk::change_batch`] and the
/// byte ranges written since the last copy (or the start). Called before
/// the domain's process ends; a disk whose writes cannot be read is not
/// handed over (its owner counts every block as changed).
pub type DiskWrites =
    std::sync::Arc<dyn Fn(&std::path::Path, &str, &[(u64, u64)]) -> std::io::Result<()> + Send + Sync>;

impl Disk {
    /// Whether the guest's writes to this disk are tracked.
    pub fn tracked(&self) -> bool {
        self.change_batch.is_some() && !self.read_only
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nic {
    pub device: String,
    pub mac: String,
    pub bridge: String,
    /// The MTU to configure (the VIF's `other_config:mtu`, else the network's).
    pub mtu: i64,
    /// Validated offload settings (`rx`, `tx`, `sg`, `tso`, `ufo`, `gso` → on/off).
    pub ethtool: Map,
    pub promiscuous: bool,
    /// What the guest may send through this NIC.
    pub locking: Locking,
}

/// Memory in bytes: the static range is what the domain is built for (its
/// maximum), the dynamic range what a balloon may move within, and the
/// target where it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub static_min: i64,
    pub static_max: i64,
    pub dynamic_min: i64,
    pub dynamic_max: i64,
    pub target: i64,
}

/// Virtual CPUs: built with `max`, `at_startup` of them online.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vcpus {
    pub max: i64,
    pub at_startup: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Firmware {
    #[default]
    Bios,
    Uefi,
}

/// The emulated graphics card.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vga {
    /// The Bochs/"standard" VGA with its linear framebuffer.
    #[default]
    Std,
    Cirrus,
}

/// The platform flags a backend acts on, parsed and checked by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    /// ACPI tables for the guest.
    pub acpi: bool,
    /// The CPU's no-execute bit.
    pub nx: bool,
    /// vCPUs per virtual socket (None: the hypervisor's default topology).
    pub cores_per_socket: Option<i64>,
    pub vga: Vga,
}

impl Default for Platform {
    fn default() -> Self {
        Platform { acpi: true, nx: true, cores_per_socket: None, vga: Vga::Std }
    }
}

/// Where firmware looks for something to boot, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootDevice {
    Disk,
    Cdrom,
    Network,
}

/// Everything needed to build a domain.
#[derive(Clone, Debug, Default)]
pub struct DomainSpec {
    pub uuid: String,
    pub name: String,
    pub vcpus: Vcpus,
    pub memory: Memory,
    /// Fully virtualised (emulated devices, firmware) rather than a kernel
    /// booted directly with paravirtual devices.
    pub hvm: bool,
    pub firmware: Firmware,
    pub boot_order: Vec<BootDevice>,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub platform: Platform,
    /// Key/value pairs for the guest to read (the VM's `vm-data/…`
    /// xenstore_data), e.g. `vm-data/hostname`.
    pub guest_data: Map,
    /// The VM's other_config: the simulator reads its fault and delay knobs here.
    pub other_config: Map,
    /// Direct kernel boot: kernel, initial ramdisk and command line.
    pub kernel: String,
    pub ramdisk: String,
    pub args: String,
}

/// A guest request that the guest has to carry out itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Shutdown,
    Suspend,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Request::Shutdown => "shutdown",
            Request::Suspend => "suspend",
        })
    }
}

/// Why a backend call failed, in the backend's own terms; the server maps
/// each to a XenAPI error in one place.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendError {
    /// The caller's cancellation signal fired.
    Cancelled,
    /// No domain exists for this VM.
    NoDomain(String),
    /// The guest did not carry out a request in time (it keeps running).
    NotAcknowledged(Request),
    /// A device with this name is already attached.
    DeviceAttached(String),
    /// The host has not enough free memory for the domain.
    NoMemory {
        needed: i64,
        free: i64,
    },
    /// A file the domain needs does not exist.
    MissingFile(PathBuf),
    /// A file lies outside the directories the backend may use for it.
    PathNotAllowed {
        path: PathBuf,
        allowed: Vec<PathBuf>,
    },
    /// The backend cannot do this (at all, or for this domain).
    Unsupported(String),
    /// The hypervisor failed (its process, its control channel).
    Hypervisor(String),
    /// The host's network could not be made as asked (a Linux link, bridge
    /// or filter command failed).
    Network(String),
    /// The change would take away an interface that carries the host's own
    /// connectivity (it has addresses, or the default route): refused.
    WouldCutHost {
        device: String,
    },
    /// A failure the simulator was scripted to give, with the error code and
    /// parameters the script named (its fault knobs).
    Scripted {
        code: String,
        params: Vec<String>,
    },
    Internal(String),
}

impl BackendError {
    pub fn internal(msg: impl Into<String>) -> Self {
        BackendError::Internal(msg.into())
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Cancelled => f.write_str("cancelled"),
            BackendError::NoDomain(u) => write!(f, "no domain for VM {u}"),
            BackendError::NotAcknowledged(r) => write!(f, "the guest did not acknowledge the {r} request in time"),
            BackendError::DeviceAttached(d) => write!(f, "device {d} is already attached"),
            BackendError::NoMemory { needed, free } => {
                write!(f, "not enough free memory: {needed} bytes needed, {free} free")
            }
            BackendError::MissingFile(p) => write!(f, "{}: no such file", p.display()),
            BackendError::PathNotAllowed { path, allowed } => {
                let dirs: Vec<String> = allowed.iter().map(|d| d.display().to_string()).collect();
                write!(f, "{} is not in an allowed directory ({})", path.display(), dirs.join(", "))
            }
            BackendError::Unsupported(w) => write!(f, "not supported by this backend: {w}"),
            BackendError::Hypervisor(m) => write!(f, "hypervisor failure: {m}"),
            BackendError::Network(m) => write!(f, "host network: {m}"),
            BackendError::WouldCutHost { device } => {
                write!(f, "{device} carries the host's own connectivity: not reconfigured")
            }
            BackendError::Scripted { code, params } => write!(f, "scripted failure {code} {params:?}"),
            BackendError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BackendError {}

pub type Result<T> = std::result::Result<T, BackendError>;

/// What the guest reports through its agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuestInfo {
    pub os_version: Map,
    pub pv_drivers_version: Map,
    pub networks: Map,
    pub memory: Map,
    pub disks: Map,
    pub other: Map,
}

/// A device of a domain, by the name the server gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    Disk(String),
    Nic(String),
}

/// What happens to domains without the server asking: the guest acting on
/// its own, the hypervisor, a device.
#[derive(Clone, Debug, PartialEq)]
pub enum DomainEvent {
    /// The guest agent reported in (after boot, or with fresh data).
    GuestInfo { uuid: String, domid: i64, info: GuestInfo },
    /// The domain is gone: the guest powered off, rebooted or crashed, or
    /// its hypervisor process died.
    Halted { uuid: String, domid: i64, reason: HaltReason },
    /// The domain stopped running without being asked (e.g. on an I/O error).
    Paused { uuid: String, domid: i64 },
    /// It runs again.
    Resumed { uuid: String, domid: i64 },
    /// A device went away (a guest-acknowledged unplug, or the guest ejecting).
    DeviceRemoved { uuid: String, domid: i64, device: Device },
    /// A disk reported an I/O error.
    IoError { uuid: String, domid: i64, device: String, message: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltReason {
    Shutdown,
    Reboot,
    Crash,
    /// The process running the domain died (killed, or failed).
    ProcessDied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    Running,
    Paused,
}

/// A domain the backend has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    pub uuid: String,
    pub domid: i64,
    pub state: DomainState,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Per-vCPU utilisation, 0..1.
    pub vcpus: Vec<f64>,
    pub memory_actual: i64,
    pub memory_internal_free: i64,
    /// (device, rx bytes/s, tx bytes/s)
    pub nics: Vec<(String, f64, f64)>,
    /// (device, read bytes/s, write bytes/s)
    pub disks: Vec<(String, f64, f64)>,
    /// (device, read requests/s, write requests/s), for backends that count them.
    pub disk_ops: Vec<(String, f64, f64)>,
}

/// Where a domain's console can be reached.
#[derive(Clone, Debug, PartialEq)]
pub enum Console {
    /// An in-process endpoint (the simulator): the server talks RFB itself.
    Simulated { width: u16, height: u16, name: String },
    /// A Unix socket speaking RFB (QEMU's VNC).
    Unix(Listener),
}

/// A Unix socket a domain's process listens on. Its directory is that
/// process's to write in, so the name may have been swapped for a link to
/// another socket (the server's own API socket, say): a connection counts
/// only when the listener is that process (SO_PEERCRED).
#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    pub path: PathBuf,
    pub pid: u32,
}

impl Listener {
    pub async fn connect(&self) -> std::io::Result<tokio::net::UnixStream> {
        let s = tokio::net::UnixStream::connect(&self.path).await?;
        let peer = s.peer_cred()?.pid();
        if peer != Some(self.pid as i32) {
            tracing::warn!(
                path = %self.path.display(),
                expected = self.pid,
                found = ?peer,
                "a socket in a domain's directory is not its process's: refused"
            );
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{} is not served by process {}", self.path.display(), self.pid),
            ));
        }
        Ok(s)
    }
}

/// Cooperative cancellation: long operations watch this and stop early.
pub type Cancel = watch::Receiver<bool>;

/// Wait for `d`, returning early with TASK_CANCELLED if cancelled.
pub async fn cancellable_sleep(d: Duration, cancel: &mut Option<Cancel>) -> Result<()> {
    match cancel {
        None => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Some(rx) => {
            let sleep = tokio::time::sleep(d);
            tokio::pin!(sleep);
            loop {
                if *rx.borrow_and_update() {
                    return Err(BackendError::Cancelled);
                }
                tokio::select! {
                    _ = &mut sleep => return Ok(()),
                    r = rx.changed() => if r.is_err() {
                        sleep.await;
                        return Ok(());
                    },
                }
            }
        }
    }
}

pub enum Backend {
    Sim(sim::Sim),
    Qemu(qemu::Qemu),
}

macro_rules! each {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Backend::Sim($b) => $e,
            Backend::Qemu($b) => $e,
        }
    };
}

impl Backend {
    /// The backends `--backend` knows.
    pub const NAMES: &'static [&'static str] = &["sim", "qemu"];

    /// The backend called `name`, or None for an unknown name. The QEMU
    /// backend probes QEMU and its accelerator first (a few seconds at most).
    pub async fn by_name(
        name: &str,
        sim: sim::SimConfig,
        qemu: qemu::QemuConfig,
    ) -> Option<std::result::Result<Backend, String>> {
        match name {
            "sim" => Some(Ok(Backend::Sim(sim::Sim::new(sim)))),
            "qemu" => Some(qemu::Qemu::start(qemu).await.map(Backend::Qemu)),
            _ => None,
        }
    }
    pub fn name(&self) -> &'static str {
        each!(self, b => b.name())
    }
    /// Whether a DHCP configuration of the host's own interfaces can be
    /// carried out: the simulator's host is made up, and the QEMU backend
    /// runs no DHCP client on the host's bridges (static addresses only).
    pub fn host_dhcp(&self) -> bool {
        matches!(self, Backend::Sim(_))
    }
    /// How guests are run: `kvm` or `tcg` for QEMU (as probed at start),
    /// `none` for the simulator.
    pub fn accelerator(&self) -> &'static str {
        match self {
            Backend::Sim(_) => "none",
            Backend::Qemu(q) => q.accel().as_arg(),
        }
    }
    /// The machine guests run on: the simulator's made-up one, or the real
    /// host's CPUs and memory for QEMU.
    pub fn host_facts(&self) -> HostFacts {
        let mut f = match self {
            Backend::Sim(_) => host::simulated(),
            Backend::Qemu(_) => host::read_local(),
        };
        f.nics = self.nics();
        f
    }
    /// Have tracked disks' writes handed to `sink` (see [`DiskWrites`]);
    /// the simulator's guests write no disk.
    pub fn on_disk_writes(&self, sink: DiskWrites) {
        match self {
            Backend::Sim(_) => {}
            Backend::Qemu(q) => q.on_disk_writes(sink),
        }
    }
    /// Events of every domain. A receiver that lags misses some: it must
    /// then re-read the state of every domain ([`Backend::domains`]).
    pub fn events(&self) -> broadcast::Receiver<DomainEvent> {
        each!(self, b => b.events())
    }
    /// Build a domain, paused. Returns its domid.
    pub async fn create(&self, spec: &DomainSpec, cancel: Option<Cancel>) -> Result<i64> {
        each!(self, b => b.create(spec, cancel).await)
    }
    pub async fn unpause(&self, uuid: &str) -> Result<()> {
        each!(self, b => b.unpause(uuid).await)
    }
    pub async fn pause(&self, uuid: &str) -> Result<()> {
        each!(self, b => b.pause(uuid).await)
    }
    /// Ask the guest to shut down and wait for it (clean), or destroy the domain (hard).
    pub async fn shutdown(&self, uuid: &str, clean: bool, cancel: Option<Cancel>) -> Result<()> {
        each!(self, b => b.shutdown(uuid, clean, cancel).await)
    }
    /// Reboot; returns the new domid.
    pub async fn reboot(&self, spec: &DomainSpec, clean: bool, cancel: Option<Cancel>) -> Result<i64> {
        each!(self, b => b.reboot(spec, clean, cancel).await)
    }
    /// Save memory to `image` and destroy the domain.
    pub async fn suspend(&self, uuid: &str, image: &std::path::Path, cancel: Option<Cancel>) -> Result<()> {
        each!(self, b => b.suspend(uuid, image, cancel).await)
    }
    /// Save memory to `image` while the domain keeps running (checkpoints).
    pub async fn save(&self, uuid: &str, image: &std::path::Path, cancel: Option<Cancel>) -> Result<()> {
        each!(self, b => b.save(uuid, image, cancel).await)
    }
    /// Rebuild a domain from `image`, paused. Returns the new domid.
    pub async fn resume(&self, spec: &DomainSpec, image: &std::path::Path, cancel: Option<Cancel>) -> Result<i64> {
        each!(self, b => b.resume(spec, image, cancel).await)
    }
    /// Move a domain to another host; on one host this rebuilds it. Returns the domid.
    pub async fn migrate(&self, spec: &DomainSpec, cancel: Option<Cancel>) -> Result<i64> {
        each!(self, b => b.migrate(spec, cancel).await)
    }
    /// Live migration, receiving side: a paused domain for `spec` that waits
    /// for the running guest's state. Returns its domid.
    pub async fn prepare_incoming(&self, spec: &DomainSpec, cancel: Option<Cancel>) -> Result<i64> {
        each!(self, b => b.prepare_incoming(spec, cancel).await)
    }
    /// Live migration, receiving side: feed the stream from the sending host
    /// into the waiting domain.
    pub async fn receive_stream<S>(&self, uuid: &str, conn: S) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    {
        each!(self, b => b.receive_stream(uuid, conn).await)
    }
    /// Live migration, receiving side: once the whole state is in, run it.
    pub async fn finish_incoming(&self, uuid: &str, cancel: Option<Cancel>) -> Result<()> {
        each!(self, b => b.finish_incoming(uuid, cancel).await)
    }
    /// Live migration, sending side: stream the running domain to `conn`.
    /// On success it is left stopped (destroy it once the other side runs
    /// it, or unpause it if that fails); on failure it runs on.
    pub async fn send_stream<S>(&self, uuid: &str, conn: S, cancel: Option<Cancel>) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        each!(self, b => b.send_stream(uuid, conn, cancel).await)
    }
    pub async fn plug_disk(&self, uuid: &str, disk: &Disk) -> Result<()> {
        each!(self, b => b.plug_disk(uuid, disk).await)
    }
    pub async fn unplug_disk(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        each!(self, b => b.unplug_disk(uuid, device, force).await)
    }
    /// Whether guests write their disks themselves (QEMU), so that a copy
    /// of a disk in use must come from the hypervisor ([`Backend::copy_disk`]);
    /// the simulator's guests write none.
    pub fn guests_write_disks(&self) -> bool {
        matches!(self, Backend::Qemu(_))
    }
    /// A point-in-time copy of a running domain's disk into `target`, made
    /// while the guest runs (QEMU only). With `track`, the blocks the guest
    /// wrote since tracking began or the last copy, up to the copy's instant,
    /// as byte ranges: None when unknown (tracking starts with this copy).
    pub async fn copy_disk(
        &self,
        uuid: &str,
        device: &str,
        target: &std::path::Path,
        format: DiskFormat,
        track: bool,
        cancel: Option<Cancel>,
    ) -> Result<Option<Vec<(u64, u64)>>> {
        match self {
            Backend::Sim(_) => Err(BackendError::Unsupported("the simulator's guests write no disk to copy".into())),
            Backend::Qemu(q) => q.copy_disk(uuid, device, target, format, track, cancel).await,
        }
    }
    /// Change the medium in a CD drive (None ejects).
    pub async fn set_cd(&self, uuid: &str, device: &str, path: Option<PathBuf>) -> Result<()> {
        each!(self, b => b.set_cd(uuid, device, path).await)
    }
    pub async fn plug_nic(&self, uuid: &str, nic: &Nic) -> Result<()> {
        each!(self, b => b.plug_nic(uuid, nic).await)
    }
    pub async fn unplug_nic(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        each!(self, b => b.unplug_nic(uuid, device, force).await)
    }
    pub async fn set_memory(&self, uuid: &str, target: i64) -> Result<()> {
        each!(self, b => b.set_memory(uuid, target).await)
    }
    pub async fn set_vcpus(&self, uuid: &str, n: i64) -> Result<()> {
        each!(self, b => b.set_vcpus(uuid, n).await)
    }
    /// Change what a plugged NIC may send, live.
    pub async fn set_nic_locking(&self, uuid: &str, device: &str, locking: &Locking) -> Result<()> {
        each!(self, b => b.set_nic_locking(uuid, device, locking).await)
    }
    /// The host's NICs: the simulator's four, or the real machine's.
    pub fn nics(&self) -> Vec<HostNic> {
        each!(self, b => b.nics())
    }
    /// Make the host's switches, VLANs and bonds what `net` says (idempotent).
    pub async fn apply_network(&self, net: &HostNetwork) -> Result<()> {
        each!(self, b => b.apply_network(net).await)
    }
    pub fn stats(&self, uuid: &str) -> Option<Stats> {
        each!(self, b => b.stats(uuid))
    }
    /// How busy the host is: made up from the guests' figures by the
    /// simulator, measured on this machine for QEMU. CPU and NIC rates are
    /// since the previous call (the server's sampler is the one caller).
    pub fn host_stats(&self) -> HostStats {
        each!(self, b => b.host_stats())
    }
    pub fn console(&self, uuid: &str) -> Option<Console> {
        each!(self, b => b.console(uuid))
    }
    /// The domain's text console (its first serial line) as a Unix socket
    /// carrying the raw bytes; the simulator has none.
    pub fn text_console(&self, uuid: &str) -> Option<Listener> {
        each!(self, b => b.text_console(uuid))
    }
    /// Whether the VM's domain exists and is running (not paused).
    pub fn is_running(&self, uuid: &str) -> bool {
        each!(self, b => b.is_running(uuid))
    }
    /// Every domain the backend has now.
    pub async fn domains(&self) -> Vec<DomainInfo> {
        each!(self, b => b.domains())
    }
    /// After a restart of the server: find the domain of this VM that kept
    /// running and take control of it again, or None if it is gone.
    pub async fn adopt(&self, spec: &DomainSpec) -> Result<Option<DomainInfo>> {
        each!(self, b => b.adopt(spec).await)
    }
    /// At start: drop what the backend kept of VMs that no longer exist
    /// (`known`: the uuids of every VM there is).
    pub fn prune(&self, known: &std::collections::HashSet<String>) {
        match self {
            Backend::Sim(_) => {}
            Backend::Qemu(q) => q.prune(known),
        }
    }
}

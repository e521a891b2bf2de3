//! Hypervisor backends.
//!
//! The server speaks to a backend in terms of domains (one per running VM),
//! keyed by the VM's uuid: create, unpause, pause, clean/hard shutdown,
//! reboot, suspend to an image, resume, migrate, hot-plug disks and NICs,
//! statistics and a console endpoint. Backends report guest-initiated changes
//! (the guest agent reporting in, the guest halting) as [`GuestEvent`]s.
//!
//! Backends form an enum rather than a trait object so calls stay static and
//! async-friendly; `sim` is the default.

pub mod qemu;
pub mod sim;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub type Map = BTreeMap<String, String>;

/// A disk as the backend sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Disk {
    /// The VBD's userdevice ("0", "1", "3"…).
    pub device: String,
    /// Backing file; `None` for an empty CD drive.
    pub path: Option<PathBuf>,
    pub read_only: bool,
    pub cdrom: bool,
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
}

/// Everything needed to build a domain.
#[derive(Clone, Debug, Default)]
pub struct DomainSpec {
    pub uuid: String,
    pub name: String,
    pub vcpus: i64,
    pub memory: i64,
    pub hvm: bool,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub platform: Map,
    /// The VM's other_config: the simulator reads its fault and delay knobs here.
    pub other_config: Map,
    pub kernel: String,
    pub ramdisk: String,
    pub args: String,
}

/// A failure the server turns into a XenAPI error.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendError {
    pub code: String,
    pub params: Vec<String>,
}

impl BackendError {
    pub fn new(code: &str, params: Vec<String>) -> Self {
        BackendError { code: code.to_string(), params }
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        BackendError::new("INTERNAL_ERROR", vec![msg.into()])
    }
    pub fn cancelled() -> Self {
        BackendError::new("TASK_CANCELLED", vec![])
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.code, self.params)
    }
}

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

/// Changes the guest makes on its own.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestEvent {
    /// The guest agent reported in (after boot, or with fresh data).
    Info { uuid: String, domid: i64, info: GuestInfo },
    /// The guest powered itself off, rebooted or crashed.
    Halted { uuid: String, domid: i64, reason: HaltReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltReason {
    Shutdown,
    Reboot,
    Crash,
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
}

/// Where a domain's console can be reached.
#[derive(Clone, Debug, PartialEq)]
pub enum Console {
    /// An in-process endpoint (the simulator): the server talks RFB itself.
    Simulated { width: u16, height: u16, name: String },
    /// A Unix socket speaking RFB (QEMU's VNC).
    Unix(PathBuf),
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
                    return Err(BackendError::cancelled());
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
}

macro_rules! each {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Backend::Sim($b) => $e,
        }
    };
}

impl Backend {
    pub fn by_name(name: &str, cfg: sim::SimConfig) -> Option<Backend> {
        match name {
            "sim" => Some(Backend::Sim(sim::Sim::new(cfg))),
            _ => None,
        }
    }
    pub fn name(&self) -> &'static str {
        each!(self, b => b.name())
    }
    pub fn events(&self) -> broadcast::Receiver<GuestEvent> {
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
    pub async fn plug_disk(&self, uuid: &str, disk: &Disk) -> Result<()> {
        each!(self, b => b.plug_disk(uuid, disk).await)
    }
    pub async fn unplug_disk(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        each!(self, b => b.unplug_disk(uuid, device, force).await)
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
    pub fn stats(&self, uuid: &str) -> Option<Stats> {
        each!(self, b => b.stats(uuid))
    }
    pub fn console(&self, uuid: &str) -> Option<Console> {
        each!(self, b => b.console(uuid))
    }
    /// Whether the VM's domain exists and is running (not paused).
    pub fn is_running(&self, uuid: &str) -> bool {
        each!(self, b => b.is_running(uuid))
    }
    /// Domains the backend has, with their domids (used to reconcile on start).
    pub fn domains(&self) -> Vec<(String, i64)> {
        each!(self, b => b.domains())
    }
}

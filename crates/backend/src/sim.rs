//! The simulator: domains live in memory, deterministically.
//!
//! Domids count up from 1. A started guest "boots" and its agent reports
//! guest metrics after a short delay. Client authors can inject faults and
//! delays through the VM's `other_config`:
//!
//! | key | effect |
//! |---|---|
//! | `sim:fail-<op>` = `CODE[,param…]` | `<op>` fails with that error code (the server answers it as is) |
//! | `sim:delay-<op>` = ms | `<op>` takes that long (cancellable) |
//! | `sim:guest-agent` = `false` | the guest never reports metrics |
//! | `sim:guest-delay-ms` = ms | delay before the agent reports |
//! | `sim:clean-shutdown` = `ignore` | clean shutdown/reboot requests time out |
//! | `sim:halt-after-ms` = ms | the guest powers itself off after that long |
//! | `sim:crash-after-ms` = ms | the guest crashes after that long |
//! | `sim:die-after-ms` = ms | the domain's (imaginary) hypervisor process dies after that long |
//! | `sim:pause-after-ms` = ms | the domain pauses on its own (as on a disk I/O error) after that long |
//! | `sim:os-name` = text | the OS name the agent reports |
//! | `sim:static-ip-setting` = `false` | the agent does not offer `feature-static-ip-setting` |
//!
//! `<op>` is one of `start`, `pause`, `unpause`, `clean_shutdown`,
//! `hard_shutdown`, `clean_reboot`, `hard_reboot`, `suspend`, `resume`,
//! `migrate`, `plug_disk`, `unplug_disk`, `plug_nic`, `unplug_nic`.

use crate::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Delay before a booted guest's agent reports.
    pub guest_delay: Duration,
    /// How long a clean shutdown request may take before it fails.
    pub shutdown_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { guest_delay: Duration::from_millis(200), shutdown_timeout: Duration::from_secs(1) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    Paused,
}

struct Domain {
    domid: i64,
    state: State,
    spec: DomainSpec,
}

struct Inner {
    cfg: SimConfig,
    domains: Mutex<HashMap<String, Domain>>,
    next_domid: AtomicI64,
    events: broadcast::Sender<DomainEvent>,
}

#[derive(Clone)]
pub struct Sim(Arc<Inner>);

/// The simulated host's NICs (device, MAC).
pub const SIM_NICS: &[(&str, &str)] = &[
    ("eth0", "02:16:3e:00:00:01"),
    ("eth1", "02:16:3e:00:00:02"),
    ("eth2", "02:16:3e:00:00:03"),
    ("eth3", "02:16:3e:00:00:04"),
];

fn knob<'a>(spec: &'a DomainSpec, key: &str) -> Option<&'a str> {
    spec.other_config.get(key).map(String::as_str)
}

/// What a simulated domain's state is on the wire between hosts.
fn stream_header(uuid: &str) -> String {
    format!("xapi-rs simulated domain {uuid}\n")
}

fn ms(v: Option<&str>) -> Option<Duration> {
    v.and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_millis)
}

/// Apply `sim:delay-<op>` and `sim:fail-<op>` for an operation.
async fn knobs(spec: &DomainSpec, op: &str, cancel: &mut Option<Cancel>) -> Result<()> {
    if let Some(d) = ms(knob(spec, &format!("sim:delay-{op}"))) {
        cancellable_sleep(d, cancel).await?;
    }
    if let Some(f) = knob(spec, &format!("sim:fail-{op}")) {
        let mut parts = f.split(',').map(|s| s.trim().to_string());
        let code = parts.next().filter(|c| !c.is_empty()).unwrap_or_else(|| "INTERNAL_ERROR".into());
        return Err(BackendError::Scripted { code, params: parts.collect() });
    }
    Ok(())
}

/// A deterministic private address for a MAC.
fn ip_for(mac: &str) -> String {
    let h = mac.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    format!("10.{}.{}.{}", (h >> 16) & 0xff, (h >> 8) & 0xff, (h & 0xfd) + 2)
}

fn guest_info(spec: &DomainSpec) -> GuestInfo {
    let name = knob(spec, "sim:os-name").map(str::to_string).unwrap_or_else(|| {
        let base = spec.other_config.get("base_template_name").cloned().unwrap_or_default();
        let n = if base.is_empty() { spec.name.clone() } else { base };
        let l = n.to_lowercase();
        if l.contains("windows") {
            "Microsoft Windows Server 2022 Standard".into()
        } else if l.contains("ubuntu") {
            "Ubuntu 24.04 LTS".into()
        } else if l.contains("debian") {
            "Debian GNU/Linux 12 (bookworm)".into()
        } else {
            "Linux".into()
        }
    });
    let windows = name.to_lowercase().contains("windows");
    let mut os = Map::new();
    os.insert("name".into(), name.clone());
    if windows {
        os.insert("distro".into(), "windows".into());
        os.insert("major".into(), "10".into());
        os.insert("minor".into(), "0".into());
    } else {
        os.insert("distro".into(), if name.contains("Ubuntu") { "ubuntu".into() } else { "debian".into() });
        os.insert("major".into(), "12".into());
        os.insert("minor".into(), "0".into());
        os.insert("uname".into(), "6.1.0-sim".into());
    }
    let mut pv = Map::new();
    for (k, v) in [("major", "9"), ("minor", "4"), ("micro", "0"), ("build", "sim")] {
        pv.insert(k.into(), v.into());
    }
    let mut net = Map::new();
    for nic in &spec.nics {
        let ip = ip_for(&nic.mac);
        net.insert(format!("{}/ip", nic.device), ip.clone());
        net.insert(format!("{}/ipv4/0", nic.device), ip);
        net.insert(
            format!("{}/ipv6/0", nic.device),
            format!("fe80::{}", nic.mac.replace(':', "").get(6..).unwrap_or("1")),
        );
    }
    // The agent advertises static IP setting (VIF.configure_ipv4/6 need it).
    let mut other = Map::new();
    if knob(spec, "sim:static-ip-setting") != Some("false") {
        other.insert("feature-static-ip-setting".into(), "1".into());
    }
    let mut mem = Map::new();
    mem.insert("total".into(), (spec.memory.target / 1024).to_string());
    mem.insert("free".into(), (spec.memory.target / 2048).to_string());
    GuestInfo { os_version: os, pv_drivers_version: pv, networks: net, memory: mem, disks: Map::new(), other }
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let (events, _) = broadcast::channel(1024);
        Sim(Arc::new(Inner { cfg, domains: Mutex::new(HashMap::new()), next_domid: AtomicI64::new(1), events }))
    }

    pub fn name(&self) -> &'static str {
        "sim"
    }

    pub fn events(&self) -> broadcast::Receiver<DomainEvent> {
        self.0.events.subscribe()
    }

    fn with<T>(&self, uuid: &str, f: impl FnOnce(&mut Domain) -> Result<T>) -> Result<T> {
        let mut m = self.0.domains.lock().map_err(|_| BackendError::internal("simulator state poisoned"))?;
        match m.get_mut(uuid) {
            Some(d) => f(d),
            None => Err(BackendError::NoDomain(uuid.to_string())),
        }
    }

    fn spec_of(&self, uuid: &str) -> Result<DomainSpec> {
        self.with(uuid, |d| Ok(d.spec.clone()))
    }

    fn domid_of(&self, uuid: &str) -> Option<i64> {
        self.0.domains.lock().ok().and_then(|m| m.get(uuid).map(|d| d.domid))
    }

    /// Start the guest's life: agent report and any scripted halts.
    fn boot(&self, spec: &DomainSpec, domid: i64) {
        let sim = self.clone();
        let spec = spec.clone();
        let guest_delay = ms(knob(&spec, "sim:guest-delay-ms")).unwrap_or(self.0.cfg.guest_delay);
        tokio::spawn(async move {
            if knob(&spec, "sim:guest-agent") != Some("false") {
                tokio::time::sleep(guest_delay).await;
                if sim.domid_of(&spec.uuid) == Some(domid) {
                    let _ = sim.0.events.send(DomainEvent::GuestInfo {
                        uuid: spec.uuid.clone(),
                        domid,
                        info: guest_info(&spec),
                    });
                }
            }
            if let Some(d) = ms(knob(&spec, "sim:pause-after-ms")) {
                tokio::time::sleep(d.saturating_sub(guest_delay)).await;
                let paused = sim.with(&spec.uuid, |dom| {
                    let was = dom.domid == domid && dom.state == State::Running;
                    if was {
                        dom.state = State::Paused;
                    }
                    Ok(was)
                });
                if paused == Ok(true) {
                    let _ = sim.0.events.send(DomainEvent::Paused { uuid: spec.uuid.clone(), domid });
                }
                return;
            }
            for (key, reason) in [
                ("sim:halt-after-ms", HaltReason::Shutdown),
                ("sim:crash-after-ms", HaltReason::Crash),
                ("sim:die-after-ms", HaltReason::ProcessDied),
            ] {
                if let Some(d) = ms(knob(&spec, key)) {
                    tokio::time::sleep(d.saturating_sub(guest_delay)).await;
                    let gone = sim.0.domains.lock().ok().map(|mut m| {
                        if m.get(&spec.uuid).map(|d| d.domid) == Some(domid) {
                            m.remove(&spec.uuid);
                            true
                        } else {
                            false
                        }
                    });
                    if gone == Some(true) {
                        let _ = sim.0.events.send(DomainEvent::Halted { uuid: spec.uuid.clone(), domid, reason });
                    }
                    return;
                }
            }
        });
    }

    fn insert(&self, spec: &DomainSpec, state: State) -> Result<i64> {
        let domid = self.0.next_domid.fetch_add(1, Ordering::SeqCst);
        let mut m = self.0.domains.lock().map_err(|_| BackendError::internal("simulator state poisoned"))?;
        m.insert(spec.uuid.clone(), Domain { domid, state, spec: spec.clone() });
        Ok(domid)
    }

    pub async fn create(&self, spec: &DomainSpec, mut cancel: Option<Cancel>) -> Result<i64> {
        knobs(spec, "start", &mut cancel).await?;
        if self.domid_of(&spec.uuid).is_some() {
            return Err(BackendError::internal(format!("domain for VM {} already exists", spec.uuid)));
        }
        self.insert(spec, State::Paused)
    }

    pub async fn unpause(&self, uuid: &str) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "unpause", &mut None).await?;
        let (booting, domid) = self.with(uuid, |d| {
            let first = d.state == State::Paused && !d.spec.other_config.contains_key("sim:booted");
            d.state = State::Running;
            d.spec.other_config.insert("sim:booted".into(), "true".into());
            Ok((first, d.domid))
        })?;
        if booting {
            self.boot(&spec, domid);
        }
        Ok(())
    }

    pub async fn pause(&self, uuid: &str) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "pause", &mut None).await?;
        self.with(uuid, |d| {
            d.state = State::Paused;
            Ok(())
        })
    }

    pub async fn shutdown(&self, uuid: &str, clean: bool, mut cancel: Option<Cancel>) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, if clean { "clean_shutdown" } else { "hard_shutdown" }, &mut cancel).await?;
        if clean && knob(&spec, "sim:clean-shutdown") == Some("ignore") {
            cancellable_sleep(self.0.cfg.shutdown_timeout, &mut cancel).await?;
            return Err(BackendError::NotAcknowledged(Request::Shutdown));
        }
        if let Ok(mut m) = self.0.domains.lock() {
            m.remove(uuid);
        }
        Ok(())
    }

    pub async fn reboot(&self, spec: &DomainSpec, clean: bool, mut cancel: Option<Cancel>) -> Result<i64> {
        let cur = self.spec_of(&spec.uuid)?;
        knobs(&cur, if clean { "clean_reboot" } else { "hard_reboot" }, &mut cancel).await?;
        if clean && knob(&cur, "sim:clean-shutdown") == Some("ignore") {
            cancellable_sleep(self.0.cfg.shutdown_timeout, &mut cancel).await?;
            return Err(BackendError::NotAcknowledged(Request::Shutdown));
        }
        if let Ok(mut m) = self.0.domains.lock() {
            m.remove(&spec.uuid);
        }
        let domid = self.insert(spec, State::Running)?;
        self.boot(spec, domid);
        Ok(domid)
    }

    pub async fn save(&self, uuid: &str, image: &Path, mut cancel: Option<Cancel>) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "suspend", &mut cancel).await?;
        write_image(&spec, image)
    }

    pub async fn suspend(&self, uuid: &str, image: &Path, mut cancel: Option<Cancel>) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "suspend", &mut cancel).await?;
        write_image(&spec, image)?;
        if let Ok(mut m) = self.0.domains.lock() {
            m.remove(uuid);
        }
        Ok(())
    }
}

/// A small header naming the VM, followed by a sparse "memory image" of the guest's size.
fn write_image(spec: &DomainSpec, image: &Path) -> Result<()> {
    {
        // A small header followed by a sparse "memory image" of the guest's size.
        let memory = spec.memory.target;
        let header = format!("xapi-rs simulated suspend image\nuuid={}\nmemory={memory}\n", spec.uuid);
        let write = || -> std::io::Result<()> {
            std::fs::write(image, header.as_bytes())?;
            let f = std::fs::OpenOptions::new().write(true).open(image)?;
            f.set_len((header.len() as i64).max(memory) as u64)?;
            f.sync_all()
        };
        write().map_err(|e| BackendError::internal(format!("writing suspend image {}: {e}", image.display())))
    }
}

impl Sim {
    pub async fn resume(&self, spec: &DomainSpec, image: &Path, mut cancel: Option<Cancel>) -> Result<i64> {
        knobs(spec, "resume", &mut cancel).await?;
        let head = std::fs::read(image)
            .map(|b| b.into_iter().take(256).collect::<Vec<u8>>())
            .map_err(|e| BackendError::internal(format!("reading suspend image {}: {e}", image.display())))?;
        if !String::from_utf8_lossy(&head).contains(&format!("uuid={}", spec.uuid)) {
            return Err(BackendError::internal("suspend image does not belong to this VM"));
        }
        let mut spec = spec.clone();
        // The guest was already booted before it was suspended.
        spec.other_config.insert("sim:booted".into(), "true".into());
        let domid = self.insert(&spec, State::Paused)?;
        let sim = self.clone();
        let (uuid, info) = (spec.uuid.clone(), guest_info(&spec));
        tokio::spawn(async move {
            if sim.domid_of(&uuid) == Some(domid) {
                let _ = sim.0.events.send(DomainEvent::GuestInfo { uuid, domid, info });
            }
        });
        Ok(domid)
    }

    pub async fn migrate(&self, spec: &DomainSpec, mut cancel: Option<Cancel>) -> Result<i64> {
        let cur = self.spec_of(&spec.uuid)?;
        knobs(&cur, "migrate", &mut cancel).await?;
        let state = self.with(&spec.uuid, |d| Ok(d.state))?;
        if let Ok(mut m) = self.0.domains.lock() {
            m.remove(&spec.uuid);
        }
        let mut spec = spec.clone();
        spec.other_config.insert("sim:booted".into(), "true".into());
        self.insert(&spec, state)
    }

    /// The receiving half of a move between hosts: a paused domain that
    /// waits for the running one's state.
    pub async fn prepare_incoming(&self, spec: &DomainSpec, mut cancel: Option<Cancel>) -> Result<i64> {
        knobs(spec, "migrate", &mut cancel).await?;
        if self.domid_of(&spec.uuid).is_some() {
            return Err(BackendError::internal(format!("domain for VM {} already exists", spec.uuid)));
        }
        let mut spec = spec.clone();
        spec.other_config.insert("sim:booted".into(), "true".into());
        self.insert(&spec, State::Paused)
    }

    /// Take in the state another host's simulator sends (one line naming
    /// the domain), and acknowledge it.
    pub async fn receive_stream<S>(&self, uuid: &str, mut conn: S) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.spec_of(uuid)?;
        let mut got = Vec::new();
        let read = async {
            let mut b = [0u8; 1];
            while got.len() < 256 && conn.read(&mut b).await? == 1 {
                got.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            std::io::Result::Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(60), read).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BackendError::internal(format!("receiving domain state: {e}"))),
            Err(_) => return Err(BackendError::internal("receiving domain state took too long")),
        }
        if got != stream_header(uuid).as_bytes() {
            return Err(BackendError::internal("the stream does not carry this domain's state"));
        }
        conn.write_all(b"ok\n").await.map_err(|e| BackendError::internal(format!("acknowledging: {e}")))?;
        conn.flush().await.map_err(|e| BackendError::internal(format!("acknowledging: {e}")))
    }

    /// Once the state is in: run the guest (it goes on where it was).
    pub async fn finish_incoming(&self, uuid: &str, _cancel: Option<Cancel>) -> Result<()> {
        self.unpause(uuid).await
    }

    /// The sending half: the domain stops, its state goes to `conn`; it
    /// runs on if the other side does not take it.
    pub async fn send_stream<S>(&self, uuid: &str, mut conn: S, mut cancel: Option<Cancel>) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "migrate", &mut cancel).await?;
        let before = self.with(uuid, |d| Ok(std::mem::replace(&mut d.state, State::Paused)))?;
        let sent = async {
            conn.write_all(stream_header(uuid).as_bytes()).await?;
            conn.flush().await?;
            let mut ack = [0u8; 3];
            conn.read_exact(&mut ack).await?;
            if &ack != b"ok\n" {
                return Err(std::io::Error::other("the other side did not take the domain"));
            }
            std::io::Result::Ok(())
        };
        let res = match tokio::time::timeout(Duration::from_secs(60), sent).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BackendError::internal(format!("sending domain state: {e}"))),
            Err(_) => Err(BackendError::internal("sending domain state took too long")),
        };
        if res.is_err() {
            self.with(uuid, |d| {
                d.state = before;
                Ok(())
            })?;
        }
        res
    }

    pub async fn plug_disk(&self, uuid: &str, disk: &Disk) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "plug_disk", &mut None).await?;
        self.with(uuid, |d| {
            if d.spec.disks.iter().any(|x| x.device == disk.device) {
                return Err(BackendError::DeviceAttached(disk.device.clone()));
            }
            d.spec.disks.push(disk.clone());
            Ok(())
        })
    }

    pub async fn unplug_disk(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        if !force {
            knobs(&spec, "unplug_disk", &mut None).await?;
        }
        self.with(uuid, |d| {
            d.spec.disks.retain(|x| x.device != device);
            Ok(())
        })
    }

    pub async fn set_cd(&self, uuid: &str, device: &str, path: Option<PathBuf>) -> Result<()> {
        self.with(uuid, |d| {
            if let Some(x) = d.spec.disks.iter_mut().find(|x| x.device == device) {
                x.path = path;
            }
            Ok(())
        })
    }

    pub async fn plug_nic(&self, uuid: &str, nic: &Nic) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        knobs(&spec, "plug_nic", &mut None).await?;
        let (domid, info) = self.with(uuid, |d| {
            d.spec.nics.retain(|x| x.device != nic.device);
            d.spec.nics.push(nic.clone());
            Ok((d.domid, guest_info(&d.spec)))
        })?;
        if knob(&spec, "sim:guest-agent") != Some("false") {
            let _ = self.0.events.send(DomainEvent::GuestInfo { uuid: uuid.to_string(), domid, info });
        }
        Ok(())
    }

    pub async fn unplug_nic(&self, uuid: &str, device: &str, force: bool) -> Result<()> {
        let spec = self.spec_of(uuid)?;
        if !force {
            knobs(&spec, "unplug_nic", &mut None).await?;
        }
        self.with(uuid, |d| {
            d.spec.nics.retain(|x| x.device != device);
            Ok(())
        })
    }

    pub async fn set_nic_locking(&self, uuid: &str, device: &str, locking: &crate::Locking) -> Result<()> {
        self.with(uuid, |d| match d.spec.nics.iter_mut().find(|n| n.device == device) {
            Some(n) => {
                n.locking = locking.clone();
                Ok(())
            }
            None => Err(BackendError::Internal(format!("no NIC {device} in domain {uuid}"))),
        })
    }

    /// The simulated host's NICs (eth0 is configured at first start).
    pub fn nics(&self) -> Vec<crate::HostNic> {
        SIM_NICS
            .iter()
            .enumerate()
            .map(|(i, (dev, mac))| crate::HostNic {
                device: dev.to_string(),
                mac: mac.to_string(),
                mtu: 1500,
                carrier: true,
                speed_mbps: Some(1000),
                full_duplex: Some(true),
                bus: format!("0000:00:{:02x}.0", 3 + i),
                vendor_id: "8086".into(),
                vendor_name: "Intel Corporation".into(),
                device_id: "10d3".into(),
                device_name: "82574L Gigabit Network Connection".into(),
            })
            .collect()
    }

    /// The simulator has no host network to change.
    pub async fn apply_network(&self, _net: &crate::HostNetwork) -> Result<()> {
        Ok(())
    }

    pub async fn set_memory(&self, uuid: &str, target: i64) -> Result<()> {
        self.with(uuid, |d| {
            d.spec.memory.target = target;
            Ok(())
        })
    }

    pub async fn set_vcpus(&self, uuid: &str, n: i64) -> Result<()> {
        self.with(uuid, |d| {
            d.spec.vcpus.at_startup = n;
            Ok(())
        })
    }

    /// Deterministic, gently varying numbers: a function of domid and time.
    pub fn stats(&self, uuid: &str) -> Option<Stats> {
        let m = self.0.domains.lock().ok()?;
        let d = m.get(uuid)?;
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let phase = ((t / 5 + d.domid as u64) % 20) as f64 / 20.0;
        let busy = if d.state == State::Running { 0.02 + 0.08 * phase } else { 0.0 };
        Some(Stats {
            vcpus: (0..d.spec.vcpus.at_startup.max(1)).map(|i| busy + 0.01 * i as f64).collect(),
            memory_actual: d.spec.memory.target,
            memory_internal_free: d.spec.memory.target / 2,
            nics: d.spec.nics.iter().map(|n| (n.device.clone(), 1000.0 * phase, 500.0 * phase)).collect(),
            disks: d.spec.disks.iter().map(|x| (x.device.clone(), 4096.0 * phase, 2048.0 * phase)).collect(),
            // The same traffic as 4 KiB requests.
            disk_ops: d.spec.disks.iter().map(|x| (x.device.clone(), phase, 0.5 * phase)).collect(),
        })
    }

    /// The made-up machine's load, from its guests' figures: each of the 8
    /// CPUs a little busy plus the guests' vCPU time spread over them, the
    /// load average that vCPU time, and all guest traffic on eth0. Memory is
    /// the server's own accounting.
    pub fn host_stats(&self) -> crate::HostStats {
        let guests: Vec<Stats> = self.domains().iter().filter_map(|d| self.stats(&d.uuid)).collect();
        let ncpu = crate::host::SIM_CPUS;
        let busy: f64 = guests.iter().flat_map(|g| g.vcpus.iter()).sum();
        let per_cpu = (0.005 + busy / ncpu as f64).min(1.0);
        let cpus = (0..ncpu).map(|i| (i as u32, (per_cpu + 0.001 * (i % 4) as f64).min(1.0))).collect();
        let rx: f64 = guests.iter().flat_map(|g| g.nics.iter()).map(|n| n.1).sum();
        let tx: f64 = guests.iter().flat_map(|g| g.nics.iter()).map(|n| n.2).sum();
        crate::HostStats {
            cpus,
            memory: crate::HostMemory::Accounted,
            loadavg: Some(busy),
            nics: vec![(SIM_NICS[0].0.to_string(), rx, tx)],
        }
    }

    pub fn console(&self, uuid: &str) -> Option<Console> {
        let m = self.0.domains.lock().ok()?;
        let d = m.get(uuid)?;
        Some(Console::Simulated { width: 640, height: 480, name: d.spec.name.clone() })
    }

    /// Simulated guests have no serial line.
    pub fn text_console(&self, _uuid: &str) -> Option<crate::Listener> {
        None
    }

    pub fn is_running(&self, uuid: &str) -> bool {
        self.0.domains.lock().map(|m| m.get(uuid).is_some_and(|d| d.state == State::Running)).unwrap_or(false)
    }

    pub fn domains(&self) -> Vec<DomainInfo> {
        let state = |s: State| match s {
            State::Running => DomainState::Running,
            State::Paused => DomainState::Paused,
        };
        self.0
            .domains
            .lock()
            .map(|m| {
                m.iter().map(|(u, d)| DomainInfo { uuid: u.clone(), domid: d.domid, state: state(d.state) }).collect()
            })
            .unwrap_or_default()
    }

    /// The simulator's domains live in the server's memory, so none outlives
    /// a restart; to behave as a hypervisor whose guests kept running while
    /// the toolstack restarted, it rebuilds the domain, already booted, in
    /// the state the server last recorded (running unless the spec says
    /// `sim:adopt-paused`). `sim:adopt` = `gone` plays a guest that died
    /// while the toolstack was down.
    pub async fn adopt(&self, spec: &DomainSpec) -> Result<Option<DomainInfo>> {
        if knob(spec, "sim:adopt") == Some("gone") {
            return Ok(None);
        }
        if let Some(domid) = self.domid_of(&spec.uuid) {
            let state = if self.is_running(&spec.uuid) { DomainState::Running } else { DomainState::Paused };
            return Ok(Some(DomainInfo { uuid: spec.uuid.clone(), domid, state }));
        }
        let mut spec = spec.clone();
        spec.other_config.insert("sim:booted".into(), "true".into());
        let paused = knob(&spec, "sim:adopt-paused") == Some("true");
        let domid = self.insert(&spec, if paused { State::Paused } else { State::Running })?;
        let sim = self.clone();
        let (uuid, info) = (spec.uuid.clone(), guest_info(&spec));
        if knob(&spec, "sim:guest-agent") != Some("false") {
            tokio::spawn(async move {
                if sim.domid_of(&uuid) == Some(domid) {
                    let _ = sim.0.events.send(DomainEvent::GuestInfo { uuid, domid, info });
                }
            });
        }
        let state = if paused { DomainState::Paused } else { DomainState::Running };
        Ok(Some(DomainInfo { uuid: spec.uuid, domid, state }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uuid: &str) -> DomainSpec {
        DomainSpec {
            uuid: uuid.into(),
            name: "Debian test".into(),
            vcpus: Vcpus { max: 2, at_startup: 2 },
            memory: Memory { static_max: 1 << 30, dynamic_max: 1 << 30, target: 1 << 30, ..Default::default() },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn lifecycle_domids_and_guest_report() {
        let sim = Sim::new(SimConfig { guest_delay: Duration::from_millis(10), ..Default::default() });
        let mut ev = sim.events();
        let mut s = spec("u1");
        s.nics.push(Nic {
            device: "0".into(),
            mac: "02:00:00:00:00:01".into(),
            bridge: "xenbr0".into(),
            mtu: 1500,
            ..Default::default()
        });
        let d1 = sim.create(&s, None).await.unwrap();
        sim.unpause("u1").await.unwrap();
        match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await.unwrap().unwrap() {
            DomainEvent::GuestInfo { uuid, domid, info } => {
                assert_eq!((uuid.as_str(), domid), ("u1", d1));
                assert!(info.networks.contains_key("0/ip"));
                assert_eq!(info.os_version["name"], "Debian GNU/Linux 12 (bookworm)");
            }
            e => panic!("{e:?}"),
        }
        let d2 = sim.reboot(&s, true, None).await.unwrap();
        assert_eq!(d2, d1 + 1);
        sim.shutdown("u1", true, None).await.unwrap();
        assert!(sim.domains().is_empty());
        // A domain that outlived a restart is adopted; one that died is not.
        assert_eq!(sim.adopt(&s).await.unwrap().map(|d| d.state), Some(DomainState::Running));
        let mut gone = spec("u9");
        gone.other_config.insert("sim:adopt".into(), "gone".into());
        assert_eq!(sim.adopt(&gone).await.unwrap(), None);
    }

    #[tokio::test]
    async fn injected_faults_and_delays() {
        let sim = Sim::new(SimConfig::default());
        let mut s = spec("u2");
        s.other_config.insert("sim:fail-start".into(), "NO_HOSTS_AVAILABLE".into());
        let e = sim.create(&s, None).await.unwrap_err();
        assert_eq!(e, BackendError::Scripted { code: "NO_HOSTS_AVAILABLE".into(), params: vec![] });
        s.other_config.remove("sim:fail-start");
        s.other_config.insert("sim:delay-start".into(), "5000".into());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let sim2 = sim.clone();
        let s2 = s.clone();
        let h = tokio::spawn(async move { sim2.create(&s2, Some(rx)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_replace(true);
        assert_eq!(h.await.unwrap().unwrap_err(), BackendError::Cancelled);
    }

    #[tokio::test]
    async fn suspend_writes_an_image_and_resume_checks_it() {
        let sim = Sim::new(SimConfig::default());
        let s = spec("u3");
        sim.create(&s, None).await.unwrap();
        sim.unpause("u3").await.unwrap();
        let dir = std::env::temp_dir().join(format!("sim-suspend-{}", std::process::id()));
        sim.suspend("u3", &dir, None).await.unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().len(), 1 << 30);
        assert!(sim.resume(&spec("other"), &dir, None).await.is_err());
        sim.resume(&s, &dir, None).await.unwrap();
        let _ = std::fs::remove_file(&dir);
    }
}

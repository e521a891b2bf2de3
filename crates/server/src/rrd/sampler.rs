//! The sampler: every `Config::rrd_interval` (5 s, as xapi's rrdd) it reads
//! each domain's statistics from the backend and the host's figures, and
//! updates the RRDs. A VM whose domain is gone keeps its RRD, fed unknown
//! values (NaN) so it stays on the shared timeline; the RRD is dropped when
//! the VM itself is destroyed. RRDs are archived (`persist`) when a VM's
//! domain stops, every `Config::rrd_save_interval`, and at clean shutdown.

use super::{now, persist, Rrd};
use crate::Server;
use backend::{HostMemory, HostStats, Stats};
use model::schema::{CLASS_HOST, CLASS_HOST_METRICS, CLASS_POOL, CLASS_SR, CLASS_VBD, CLASS_VM};
use model::types::fields;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Start sampling (one sample right away, then one per interval).
pub fn spawn(s: Server) {
    let every = s.cfg.rrd_interval.max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut state = State::default();
        let mut saved = tokio::time::Instant::now();
        loop {
            t.tick().await;
            let domains = s.backend.domains().await;
            let changes = sample(&s, every, domains, &mut state);
            if s.cfg.ephemeral {
                continue;
            }
            let due = saved.elapsed() >= s.cfg.rrd_save_interval;
            if due {
                saved = tokio::time::Instant::now();
            }
            if changes.stopped.is_empty() && changes.dropped.is_empty() && !due {
                continue;
            }
            let s2 = s.clone();
            let res = tokio::task::spawn_blocking(move || {
                let dir = persist::dir(&s2.cfg.data_dir);
                for (uuid, rrd) in &changes.stopped {
                    if let Err(e) = persist::save(&dir, uuid, rrd) {
                        tracing::warn!(uuid = %uuid, "cannot save the RRD of a stopped VM (the previous copy is kept): {e}");
                    }
                }
                for uuid in &changes.dropped {
                    persist::remove(&dir, uuid);
                }
                if due {
                    save_all(&s2);
                }
            })
            .await;
            if let Err(e) = res {
                tracing::error!("RRD archiving failed: {e}");
            }
        }
    });
}

/// The host's uuid, which names its RRD archive.
pub fn host_uuid(s: &Server) -> String {
    let hc = &CLASS_HOST;
    s.db.read().get(hc, &s.host).map(|r| r.read(fields::host::UUID)).unwrap_or_default()
}

/// Archive every RRD now (periodically, and at clean shutdown). Blocking.
pub fn save_all(s: &Server) {
    if s.cfg.ephemeral {
        return;
    }
    let copy = {
        let g = s.rrds.lock();
        super::Rrds { host: g.host.clone(), vms: g.vms.clone(), srs: g.srs.clone() }
    };
    let failed = persist::save_all(&persist::dir(&s.cfg.data_dir), &host_uuid(s), &copy);
    if failed > 0 {
        tracing::warn!("{failed} RRDs could not be archived");
    }
}

/// The uuids of every VM in the store.
fn vm_uuids(st: &store::State) -> BTreeSet<String> {
    let vmc = &CLASS_VM;
    let uuid = fields::vm::UUID.index;
    st.table(vmc).iter().filter_map(|(_, r)| r.get(uuid).as_str().map(str::to_string)).collect()
}

/// The uuids of every SR in the store.
fn sr_uuids(st: &store::State) -> BTreeSet<String> {
    let c = &CLASS_SR;
    let uuid = fields::sr::UUID.index;
    st.table(c).iter().filter_map(|(_, r)| r.get(uuid).as_str().map(str::to_string)).collect()
}

/// At start: the archived RRDs of the host and of VMs and SRs that still exist.
pub fn load(s: &Server) {
    if s.cfg.ephemeral {
        return;
    }
    let (vms, srs) = {
        let st = s.db.read();
        (vm_uuids(&st), sr_uuids(&st))
    };
    let kind = |u: &str| {
        if vms.contains(u) {
            Some(persist::Kind::Vm)
        } else if srs.contains(u) {
            Some(persist::Kind::Sr)
        } else {
            None
        }
    };
    let loaded = persist::load_all(&persist::dir(&s.cfg.data_dir), &host_uuid(s), kind);
    let n = loaded.vms.len() + loaded.srs.len() + usize::from(loaded.host.is_some());
    if n > 0 {
        tracing::info!("read {n} archived RRDs");
    }
    *s.rrds.lock() = loaded;
}

/// What a sample changed that the archive must follow.
#[derive(Default)]
pub struct Changes {
    /// VMs whose domain stopped since the last sample, with their RRDs.
    pub stopped: Vec<(String, Rrd)>,
    /// VMs and SRs destroyed: their RRDs are gone.
    pub dropped: Vec<String>,
}

/// What the sampler carries from one sample to the next.
#[derive(Default)]
pub struct State {
    /// VMs whose domain ran at the last sample.
    pub was_running: BTreeSet<String>,
    /// Each SR's I/O totals at the last sample, by SR ref, and when.
    pub io: HashMap<String, [u64; 4]>,
    pub io_at: Option<std::time::Instant>,
}

/// An SR's figures for its data sources.
struct SrSample {
    uuid: String,
    size: f64,
    utilisation: f64,
    /// read B/s, read ops/s, write B/s, write ops/s
    io: [f64; 4],
}

const MIB: f64 = 1024.0 * 1024.0;

/// The SR's own data sources (its RRD, `/sr_rrd`): throughput in MiB/s and
/// requests per second as xapi's iostat plugin reports them, and its space
/// in bytes.
fn sr_values(x: &SrSample) -> Vec<(String, f64)> {
    let [rb, ro, wb, wo] = x.io;
    vec![
        ("io_throughput_read".into(), rb / MIB),
        ("io_throughput_write".into(), wb / MIB),
        ("io_throughput_total".into(), (rb + wb) / MIB),
        ("iops_read".into(), ro),
        ("iops_write".into(), wo),
        ("iops_total".into(), ro + wo),
        ("physical_size".into(), x.size),
        ("physical_utilisation".into(), x.utilisation),
        ("free_space".into(), (x.size - x.utilisation).max(0.0)),
    ]
}

/// The per-SR sources xapi adds to the host's RRD, suffixed with the first
/// 8 characters of the SR's uuid.
fn host_sr_values(x: &SrSample) -> Vec<(String, f64)> {
    let short: String = x.uuid.chars().take(8).collect();
    sr_values(x).into_iter().take(6).map(|(n, v)| (format!("{n}_{short}"), v)).collect()
}

/// Every (non-ISO) SR's figures: the server's own I/O on its VDIs since the
/// last sample, plus the disk rates (bytes and requests) the backend reports
/// for running guests' disks on it.
fn sr_samples(s: &Server, guests: &[(String, Stats)], state: &mut State) -> Vec<SrSample> {
    let (src, vmc, vbdc) = (&CLASS_SR, &CLASS_VM, &CLASS_VBD);
    let st = s.db.read();
    let now = std::time::Instant::now();
    let secs = state.io_at.map(|t| now.duration_since(t).as_secs_f64());
    state.io_at = Some(now);
    let totals: HashMap<String, [u64; 4]> = s.sr_io.totals().into_iter().collect();
    // Guest disk rates by SR ref, through VM → VBD (userdevice) → VDI → SR:
    // (read B/s, read ops/s, write B/s, write ops/s).
    let mut guest_io: HashMap<String, [f64; 4]> = HashMap::new();
    let by_uuid: HashMap<&str, &Stats> = guests.iter().map(|(u, st)| (u.as_str(), st)).collect();
    if !by_uuid.is_empty() {
        for (_, vm) in st.table(vmc).iter() {
            let Some(stats) = by_uuid.get(vm.read(fields::vm::UUID).as_str()) else { continue };
            for vbd in crate::rows::members(vm.get(fields::vm::VBDS.index)) {
                let Some(b) = st.get(vbdc, &vbd) else { continue };
                let dev = b.read(fields::vbd::USERDEVICE);
                let Some((_, r, w)) = stats.disks.iter().find(|(d, _, _)| *d == dev) else { continue };
                let (ro, wo) = stats.disk_ops.iter().find(|(d, _, _)| *d == dev).map_or((0.0, 0.0), |x| (x.1, x.2));
                let Some(sr) = st.read(b.read(fields::vbd::VDI).as_str(), fields::vdi::SR) else { continue };
                let e = guest_io.entry(sr.into_string()).or_default();
                for (acc, v) in e.iter_mut().zip([r, &ro, w, &wo]) {
                    *acc += v;
                }
            }
        }
    }
    let mut out = vec![];
    for (r, row) in st.table(src).iter() {
        if row.read(fields::sr::CONTENT_TYPE) == "iso" {
            continue;
        }
        let uuid = row.read(fields::sr::UUID);
        let now_t = totals.get(r.as_str()).copied().unwrap_or_default();
        // The first sample only sets the baseline.
        let mut io = match (secs, state.io.get(r.as_str())) {
            (Some(secs), Some(prev)) => super::io::rates(*prev, now_t, secs),
            (Some(secs), None) => super::io::rates([0; 4], now_t, secs),
            (None, _) => [0.0; 4],
        };
        if let Some(g) = guest_io.get(r.as_str()) {
            for (acc, v) in io.iter_mut().zip(g) {
                *acc += v;
            }
        }
        out.push(SrSample {
            uuid: uuid.to_string(),
            size: row.read(fields::sr::PHYSICAL_SIZE) as f64,
            utilisation: row.read(fields::sr::PHYSICAL_UTILISATION) as f64,
            io,
        });
    }
    let known = |k: &str| st.get(src, k).is_some();
    s.sr_io.retain(known);
    state.io = totals.into_iter().filter(|(k, _)| known(k)).collect();
    out
}

/// A block device's name from its userdevice: 0 → xvda, 1 → xvdb…
fn disk_name(device: &str) -> String {
    match device.parse::<u8>() {
        Ok(n) if n < 26 => format!("xvd{}", (b'a' + n) as char),
        _ => device.to_string(),
    }
}

/// A VM's data sources, named as xapi names them.
pub fn vm_values(st: &Stats) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = st.vcpus.iter().enumerate().map(|(i, u)| (format!("cpu{i}"), *u)).collect();
    v.push(("memory".into(), st.memory_actual as f64));
    // xapi reports the guest's free memory in KiB.
    v.push(("memory_internal_free".into(), st.memory_internal_free as f64 / 1024.0));
    for (dev, rx, tx) in &st.nics {
        v.push((format!("vif_{dev}_rx"), *rx));
        v.push((format!("vif_{dev}_tx"), *tx));
    }
    for (dev, r, w) in &st.disks {
        let d = disk_name(dev);
        v.push((format!("vbd_{d}_read"), *r));
        v.push((format!("vbd_{d}_write"), *w));
    }
    v
}

/// The host's data sources, named as xapi names them, from the backend's
/// figures: the one place backend host statistics meet XenAPI names. A
/// figure the backend could not measure has no source this time.
/// `accounted` is the server's (total, free) memory in bytes, for a backend
/// that leaves memory to it.
fn host_values(hs: &HostStats, accounted: impl FnOnce() -> Option<(i64, i64)>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = hs.cpus.iter().map(|(n, u)| (format!("cpu{n}"), *u)).collect();
    if !hs.cpus.is_empty() {
        let avg = hs.cpus.iter().map(|(_, u)| u).sum::<f64>() / hs.cpus.len() as f64;
        v.push(("cpu_avg".into(), avg));
    }
    let memory = match hs.memory {
        HostMemory::Measured { total, free } => Some((total, free)),
        HostMemory::Accounted => accounted(),
        HostMemory::Unknown => None,
    };
    if let Some((total, free)) = memory {
        // xapi reports memory in KiB.
        v.push(("memory_total_kib".into(), total as f64 / 1024.0));
        v.push(("memory_free_kib".into(), free as f64 / 1024.0));
    }
    if let Some(l) = hs.loadavg {
        v.push(("loadavg".into(), l));
    }
    for (dev, rx, tx) in &hs.nics {
        v.push((format!("pif_{dev}_rx"), *rx));
        v.push((format!("pif_{dev}_tx"), *tx));
    }
    v
}

/// The host's memory as the server accounts it (host_metrics), in bytes.
fn accounted_memory(s: &Server) -> Option<(i64, i64)> {
    let st = s.db.read();
    let h = st.get(&CLASS_HOST, &s.host);
    let Some(m) = h.and_then(|h| st.get(&CLASS_HOST_METRICS, h.read(fields::host::METRICS).as_str())) else {
        tracing::warn!(host = %s.host, "the host has no host_metrics row: no memory sources in its RRD");
        return None;
    };
    Some((m.read(fields::host_metrics::MEMORY_TOTAL), m.read(fields::host_metrics::MEMORY_FREE)))
}

/// Take one sample of everything. `every` is the sampling interval: a new
/// RRD's first sample stands for the interval before it.
pub fn sample(s: &Server, every: Duration, domains: Vec<backend::DomainInfo>, state: &mut State) -> Changes {
    let t = now();
    let prev = t - every.as_secs_f64();
    let guests: Vec<(String, Stats)> =
        domains.into_iter().filter_map(|d| s.backend.stats(&d.uuid).map(|st| (d.uuid, st))).collect();
    let mut host = host_values(&s.backend.host_stats(), || accounted_memory(s));
    let srs = sr_samples(s, &guests, state);
    for x in &srs {
        host.extend(host_sr_values(x));
    }
    // Which VMs exist, and whether new RRDs get MIN/MAX archives: one read.
    let (known, min_max) = {
        let st = s.db.read();
        let pc = &CLASS_POOL;
        let min_max = st.get(pc, &s.pool).is_some_and(|p| {
            p.get(fields::pool::OTHER_CONFIG.index).map_str("create_min_max_in_new_VM_RRDs") == Some("true")
        });
        (vm_uuids(&st), min_max)
    };
    let mut g = s.rrds.lock();
    g.host.get_or_insert_with(|| Rrd::new(prev, min_max)).update(t, &host);
    for (uuid, st) in &guests {
        g.vms.entry(uuid.clone()).or_insert_with(|| Rrd::new(prev, min_max)).update(t, &vm_values(st));
    }
    for x in &srs {
        g.srs.entry(x.uuid.clone()).or_insert_with(|| Rrd::new(prev, min_max)).update(t, &sr_values(x));
    }
    let live_srs: BTreeSet<&str> = srs.iter().map(|x| x.uuid.as_str()).collect();
    let mut changes = Changes::default();
    g.srs.retain(|u, _| {
        let keep = live_srs.contains(u.as_str());
        if !keep {
            changes.dropped.push(u.clone());
        }
        keep
    });
    let running: BTreeSet<&str> = guests.iter().map(|(u, _)| u.as_str()).collect();
    g.vms.retain(|u, _| {
        let keep = running.contains(u.as_str()) || known.contains(u);
        if !keep {
            changes.dropped.push(u.clone());
        }
        keep
    });
    for (u, r) in g.vms.iter_mut() {
        if !running.contains(u.as_str()) {
            r.update(t, &[]);
            if state.was_running.contains(u) {
                changes.stopped.push((u.clone(), r.clone()));
            }
        }
    }
    state.was_running = running.into_iter().map(str::to_string).collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_names_and_units() {
        let x = SrSample {
            uuid: "492eb9be-11b7-4bd5-982a-b5153e909c01".into(),
            size: 100.0,
            utilisation: 30.0,
            io: [MIB, 2.0, 3.0 * MIB, 4.0],
        };
        let v: std::collections::HashMap<String, f64> = sr_values(&x).into_iter().collect();
        assert_eq!(v["io_throughput_read"], 1.0);
        assert_eq!(v["io_throughput_total"], 4.0);
        assert_eq!(v["iops_total"], 6.0);
        assert_eq!(v["free_space"], 70.0);
        let h: Vec<String> = host_sr_values(&x).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            h,
            [
                "io_throughput_read_492eb9be",
                "io_throughput_write_492eb9be",
                "io_throughput_total_492eb9be",
                "iops_read_492eb9be",
                "iops_write_492eb9be",
                "iops_total_492eb9be"
            ]
        );
    }

    #[test]
    fn vm_names() {
        let st = Stats {
            vcpus: vec![0.1, 0.2],
            memory_actual: 1 << 30,
            memory_internal_free: 1 << 29,
            nics: vec![("0".into(), 10.0, 20.0)],
            disks: vec![("1".into(), 1.0, 2.0)],
            disk_ops: vec![],
        };
        let names: Vec<String> = vm_values(&st).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "cpu0",
                "cpu1",
                "memory",
                "memory_internal_free",
                "vif_0_rx",
                "vif_0_tx",
                "vbd_xvdb_read",
                "vbd_xvdb_write"
            ]
        );
    }

    #[test]
    fn host_names() {
        let hs = HostStats {
            cpus: vec![(0, 0.25), (2, 0.75)],
            memory: HostMemory::Measured { total: 8 << 30, free: 2 << 30 },
            loadavg: Some(1.5),
            nics: vec![("eth1".into(), 100.0, 200.0)],
        };
        let v = host_values(&hs, || panic!("measured memory needs no accounting"));
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["cpu0", "cpu2", "cpu_avg", "memory_total_kib", "memory_free_kib", "loadavg", "pif_eth1_rx", "pif_eth1_tx"]
        );
        let m: HashMap<&str, f64> = v.iter().map(|(n, x)| (n.as_str(), *x)).collect();
        assert_eq!((m["cpu_avg"], m["memory_total_kib"], m["memory_free_kib"]), (0.5, 8388608.0, 2097152.0));
        // Nothing measured: no sources, none made up.
        assert!(host_values(&HostStats::default(), || Some((1, 1))).is_empty());
        let sim = HostStats { memory: HostMemory::Accounted, ..HostStats::default() };
        assert_eq!(
            host_values(&sim, || Some((2048, 1024))),
            [("memory_total_kib".to_string(), 2.0), ("memory_free_kib".to_string(), 1.0)]
        );
    }
}

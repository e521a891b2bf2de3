//! The sampler: every `Config::rrd_interval` (5 s, as xapi's rrdd) it reads
//! each domain's statistics from the backend and the host's figures, and
//! updates the RRDs. A VM whose domain is gone keeps its RRD, fed unknown
//! values (NaN) so it stays on the shared timeline; the RRD is dropped when
//! the VM itself is destroyed. RRDs are archived (`persist`) when a VM's
//! domain stops, every `Config::rrd_save_interval`, and at clean shutdown.

use super::{now, persist, Rrd};
use crate::{class, field, Server};
use backend::Stats;
use std::collections::BTreeSet;
use std::time::Duration;

/// Start sampling (one sample right away, then one per interval).
pub fn spawn(s: Server) {
    let every = s.cfg.rrd_interval.max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut was_running = BTreeSet::new();
        let mut saved = tokio::time::Instant::now();
        loop {
            t.tick().await;
            let domains = s.backend.domains().await;
            let changes = sample(&s, every, domains, &mut was_running);
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
    let hc = class("host");
    s.db.read().get(hc, &s.host).and_then(|r| r.get(field(hc, "uuid")).as_str().map(str::to_string)).unwrap_or_default()
}

/// Archive every RRD now (periodically, and at clean shutdown). Blocking.
pub fn save_all(s: &Server) {
    if s.cfg.ephemeral {
        return;
    }
    let copy = {
        let g = s.rrds.lock();
        super::Rrds { host: g.host.clone(), vms: g.vms.clone() }
    };
    let failed = persist::save_all(&persist::dir(&s.cfg.data_dir), &host_uuid(s), &copy);
    if failed > 0 {
        tracing::warn!("{failed} RRDs could not be archived");
    }
}

/// The uuids of every VM in the store.
fn vm_uuids(st: &store::State) -> BTreeSet<String> {
    let vmc = class("VM");
    let uuid = field(vmc, "uuid");
    st.table(vmc).iter().filter_map(|(_, r)| r.get(uuid).as_str().map(str::to_string)).collect()
}

/// At start: the archived RRDs of the host and of VMs that still exist.
pub fn load(s: &Server) {
    if s.cfg.ephemeral {
        return;
    }
    let known = vm_uuids(&s.db.read());
    let loaded = persist::load_all(&persist::dir(&s.cfg.data_dir), &host_uuid(s), |u| known.contains(u));
    let n = loaded.vms.len() + usize::from(loaded.host.is_some());
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
    /// VMs destroyed: their RRDs are gone.
    pub dropped: Vec<String>,
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

/// The host's data sources: memory from host_metrics, CPUs from the
/// host_cpu rows, and simulated load derived from the guests' figures.
fn host_values(s: &Server, guests: &[(String, Stats)]) -> Vec<(String, f64)> {
    let (hc, hm, cpu) = (class("host"), class("host_metrics"), class("host_cpu"));
    let st = s.db.read();
    let metrics = st.get(hc, &s.host).and_then(|h| h.get(field(hc, "metrics")).as_str().map(str::to_string));
    let mem = |name: &str| {
        metrics.as_deref().and_then(|m| st.get(hm, m)).and_then(|m| m.get(field(hm, name)).as_int()).unwrap_or(0) as f64
            / 1024.0
    };
    let ncpu =
        st.table(cpu).iter().filter(|(_, r)| r.get(field(cpu, "host")).as_str() == Some(s.host.as_str())).count();
    let ncpu = ncpu.max(1);
    let busy: f64 = guests.iter().flat_map(|(_, g)| g.vcpus.iter()).sum();
    let per_cpu = (0.005 + busy / ncpu as f64).min(1.0);
    let mut v: Vec<(String, f64)> =
        (0..ncpu).map(|i| (format!("cpu{i}"), (per_cpu + 0.001 * (i % 4) as f64).min(1.0))).collect();
    let avg = v.iter().map(|(_, u)| u).sum::<f64>() / ncpu as f64;
    v.push(("cpu_avg".into(), avg));
    v.push(("memory_total_kib".into(), mem("memory_total")));
    v.push(("memory_free_kib".into(), mem("memory_free")));
    v.push(("loadavg".into(), busy));
    let rx: f64 = guests.iter().flat_map(|(_, g)| g.nics.iter()).map(|n| n.1).sum();
    let tx: f64 = guests.iter().flat_map(|(_, g)| g.nics.iter()).map(|n| n.2).sum();
    v.push(("pif_eth0_rx".into(), rx));
    v.push(("pif_eth0_tx".into(), tx));
    v
}

/// Take one sample of everything. `every` is the sampling interval: a new
/// RRD's first sample stands for the interval before it.
pub fn sample(
    s: &Server,
    every: Duration,
    domains: Vec<backend::DomainInfo>,
    was_running: &mut BTreeSet<String>,
) -> Changes {
    let t = now();
    let prev = t - every.as_secs_f64();
    let guests: Vec<(String, Stats)> =
        domains.into_iter().filter_map(|d| s.backend.stats(&d.uuid).map(|st| (d.uuid, st))).collect();
    let host = host_values(s, &guests);
    // Which VMs exist, and whether new RRDs get MIN/MAX archives: one read.
    let (known, min_max) = {
        let st = s.db.read();
        let pc = class("pool");
        let min_max = st
            .get(pc, &s.pool)
            .is_some_and(|p| p.get(field(pc, "other_config")).map_str("create_min_max_in_new_VM_RRDs") == Some("true"));
        (vm_uuids(&st), min_max)
    };
    let mut g = s.rrds.lock();
    g.host.get_or_insert_with(|| Rrd::new(prev, min_max)).update(t, &host);
    for (uuid, st) in &guests {
        g.vms.entry(uuid.clone()).or_insert_with(|| Rrd::new(prev, min_max)).update(t, &vm_values(st));
    }
    let running: BTreeSet<&str> = guests.iter().map(|(u, _)| u.as_str()).collect();
    let mut changes = Changes::default();
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
            if was_running.contains(u) {
                changes.stopped.push((u.clone(), r.clone()));
            }
        }
    }
    *was_running = running.into_iter().map(str::to_string).collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names() {
        let st = Stats {
            vcpus: vec![0.1, 0.2],
            memory_actual: 1 << 30,
            memory_internal_free: 1 << 29,
            nics: vec![("0".into(), 10.0, 20.0)],
            disks: vec![("1".into(), 1.0, 2.0)],
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
}

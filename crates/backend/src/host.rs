//! The machine a backend runs guests on: its CPUs and memory, and how busy
//! it is ([`HostStats`]). The simulator reports a fixed, made-up machine; the
//! QEMU backend reads the real one from `/proc` and `/sys/class/net`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// One logical CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Cpu {
    pub vendor: String,
    pub model_name: String,
    pub speed_mhz: f64,
    pub family: i64,
    pub model: i64,
    pub stepping: String,
    pub flags: String,
}

/// CPUs and memory of the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostFacts {
    /// One entry per logical CPU, in `/proc/cpuinfo` order.
    pub cpus: Vec<Cpu>,
    pub sockets: u32,
    pub threads_per_core: u32,
    /// Bytes of RAM.
    pub memory_total: i64,
    /// Bytes the host itself keeps (the control domain's share).
    pub memory_host: i64,
    /// The NICs that can carry switches ([`crate::Backend::nics`]).
    pub nics: Vec<crate::HostNic>,
}

const SIM_FLAGS: &str = "fpu de tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2 ht \
                         syscall nx lm constant_tsc nopl pni vmx ssse3 cx16 sse4_1 sse4_2 x2apic popcnt hypervisor";

/// The simulator's machine: 8 CPUs, 32 GiB of which the control domain has 4.
/// How many CPUs the simulated host has.
pub const SIM_CPUS: usize = 8;

pub fn simulated() -> HostFacts {
    let cpu = Cpu {
        vendor: "GenuineIntel".into(),
        model_name: "Simulated CPU @ 2.60GHz".into(),
        speed_mhz: 2600.0,
        family: 6,
        model: 85,
        stepping: "7".into(),
        flags: SIM_FLAGS.into(),
    };
    HostFacts {
        cpus: vec![cpu; SIM_CPUS],
        sockets: 1,
        threads_per_core: 1,
        memory_total: 32 << 30,
        memory_host: 4 << 30,
        nics: Vec::new(),
    }
}

/// The CPUs of `/proc/cpuinfo` text (x86 layout: blocks separated by blank
/// lines, `key<tab>: value`), with the socket count (distinct `physical id`s)
/// and threads per core (`siblings` / `cpu cores`).
pub fn parse_cpuinfo(text: &str) -> (Vec<Cpu>, u32, u32) {
    let mut cpus = Vec::new();
    let mut sockets = std::collections::BTreeSet::new();
    let mut threads = 1;
    for block in text.split("\n\n") {
        let get = |k: &str| {
            block.lines().find_map(|l| {
                let (key, v) = l.split_once(':')?;
                (key.trim() == k).then(|| v.trim().to_string())
            })
        };
        if get("processor").is_none() {
            continue;
        }
        if let Some(p) = get("physical id") {
            sockets.insert(p);
        }
        let num = |k: &str| get(k).and_then(|v| v.parse::<u32>().ok());
        if let (Some(s), Some(c)) = (num("siblings"), num("cpu cores")) {
            if c > 0 && s >= c {
                threads = s / c;
            }
        }
        cpus.push(Cpu {
            vendor: get("vendor_id").unwrap_or_default(),
            model_name: get("model name").unwrap_or_default(),
            speed_mhz: get("cpu MHz").and_then(|v| v.parse().ok()).unwrap_or(0.0),
            family: get("cpu family").and_then(|v| v.parse().ok()).unwrap_or(0),
            model: get("model").and_then(|v| v.parse().ok()).unwrap_or(0),
            stepping: get("stepping").unwrap_or_default(),
            flags: get("flags").unwrap_or_default(),
        });
    }
    (cpus, sockets.len().max(1) as u32, threads)
}

/// `(MemTotal, MemAvailable)` in bytes from `/proc/meminfo` text.
pub fn parse_meminfo(text: &str) -> Option<(i64, i64)> {
    let kib = |k: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(k)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse::<i64>().ok()
        })
    };
    Some((kib("MemTotal")? * 1024, kib("MemAvailable").or_else(|| kib("MemFree"))? * 1024))
}

/// The machine this process runs on. What cannot be read is logged and
/// left out (no CPUs listed, or the memory as zero), never made up.
pub fn read_local() -> HostFacts {
    let (cpus, sockets, threads_per_core) = match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(t) => parse_cpuinfo(&t),
        Err(e) => {
            tracing::warn!("cannot read /proc/cpuinfo: {e}");
            (Vec::new(), 1, 1)
        }
    };
    let (memory_total, available) =
        match std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(parse_meminfo) {
            Some(m) => m,
            None => {
                tracing::warn!("cannot read the memory size from /proc/meminfo");
                (0, 0)
            }
        };
    HostFacts { cpus, sockets, threads_per_core, memory_total, memory_host: memory_total - available, nics: Vec::new() }
}

/// How busy the host is, as last measured. Whatever cannot be measured is
/// missing, never made up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostStats {
    /// (logical CPU number, fraction of its time spent busy since the last
    /// reading, 0..1).
    pub cpus: Vec<(u32, f64)>,
    pub memory: HostMemory,
    /// The 1-minute load average of the host's own processes.
    pub loadavg: Option<f64>,
    /// (NIC device, received bytes/s, sent bytes/s) for the NICs the backend
    /// lists ([`crate::Backend::nics`]).
    pub nics: Vec<(String, f64, f64)>,
}

/// The host's memory as a backend knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostMemory {
    /// Nothing to read: the machine is made up, and the server's own
    /// accounting of it is the figure (the simulator).
    Accounted,
    /// Bytes in all, and bytes available for new work (`MemAvailable`).
    Measured { total: i64, free: i64 },
    /// It could not be read.
    #[default]
    Unknown,
}

/// One CPU's time counters from `/proc/stat` (user, nice, system, idle,
/// iowait, irq, softirq, steal), in clock ticks. guest and guest_nice are
/// already counted in user and nice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes(pub [u64; 8]);

/// Per logical CPU (`cpuN` lines; the all-CPU `cpu` line is not one), in
/// the file's order. Malformed lines are skipped.
pub fn parse_stat(text: &str) -> Vec<(u32, CpuTimes)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(n) = words.next().and_then(|w| w.strip_prefix("cpu")).and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let mut t = [0u64; 8];
        let mut got = 0;
        for (slot, w) in t.iter_mut().zip(words) {
            match w.parse() {
                Ok(v) => *slot = v,
                Err(_) => break,
            }
            got += 1;
        }
        // Kernels since 2.6.11 give all eight; fewer is not this format.
        if got == t.len() {
            out.push((n, CpuTimes(t)));
        }
    }
    out
}

/// The fraction of the time a CPU was busy between two readings; None when
/// no time passed. Each counter's growth is taken on its own, a counter that
/// went backwards as growing by nothing: iowait is known to step back.
pub fn cpu_busy(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let d: [u64; 8] = std::array::from_fn(|i| after.0[i].saturating_sub(before.0[i]));
    let total: u64 = d.iter().sum();
    let idle = d[3] + d[4];
    (total > 0).then(|| (total - idle) as f64 / total as f64)
}

/// The 1-minute load average from `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Turns the host's counters into rates between one reading and the next.
#[derive(Debug, Default)]
pub struct Meter {
    cpus: HashMap<u32, CpuTimes>,
    /// Per NIC: when, bytes received and sent.
    nics: HashMap<String, (Instant, u64, u64)>,
}

impl Meter {
    /// Each CPU's utilisation since the last call (none for a CPU seen for
    /// the first time): the next call measures from these counters.
    pub fn cpus(&mut self, now: Vec<(u32, CpuTimes)>) -> Vec<(u32, f64)> {
        let out = now.iter().filter_map(|(n, t)| Some((*n, cpu_busy(*self.cpus.get(n)?, *t)?))).collect();
        self.cpus = now.into_iter().collect();
        out
    }

    /// A NIC's (received, sent) bytes/s since its last reading, or None the
    /// first time and when a counter went backwards (the interface was reset
    /// or recreated, or a 32-bit counter wrapped: the traffic in between is
    /// unknown, and the next reading measures from here).
    pub fn nic(&mut self, device: &str, at: Instant, rx: u64, tx: u64) -> Option<(f64, f64)> {
        let prev = self.nics.insert(device.to_string(), (at, rx, tx))?;
        let (t0, rx0, tx0) = prev;
        let secs = at.checked_duration_since(t0)?.as_secs_f64();
        if secs <= 0.0 || rx < rx0 || tx < tx0 {
            return None;
        }
        Some(((rx - rx0) as f64 / secs, (tx - tx0) as f64 / secs))
    }

    /// Forget the NICs not in `keep` (gone, or no longer listed).
    pub fn retain_nics(&mut self, keep: &[String]) {
        self.nics.retain(|d, _| keep.contains(d));
    }
}

/// A NIC's byte counters (received, sent) under a sysfs `class/net` root.
pub fn nic_counters(root: &Path, device: &str) -> Option<(u64, u64)> {
    let read = |f: &str| -> Option<u64> {
        let path = root.join(device).join("statistics").join(f);
        match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().ok(),
            // Debug only: a NIC may go between listing and reading, and
            // this repeats every sample.
            Err(e) => {
                tracing::debug!(path = %path.display(), "cannot read a NIC counter: {e}");
                None
            }
        }
    };
    Some((read("rx_bytes")?, read("tx_bytes")?))
}

/// Measure this host now: CPUs and NICs against the meter's last reading,
/// memory and load as they are. What cannot be read is logged and left out.
pub fn measure_local(meter: &mut Meter, sysfs_net: &Path, nics: &[String]) -> HostStats {
    let read = |path: &str| match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!("cannot read {path}: {e}");
            None
        }
    };
    let cpus = match read("/proc/stat").map(|t| parse_stat(&t)) {
        Some(times) if !times.is_empty() => meter.cpus(times),
        Some(_) => {
            tracing::warn!("no per-CPU lines in /proc/stat: no CPU figures");
            Vec::new()
        }
        None => Vec::new(),
    };
    let memory = match read("/proc/meminfo").as_deref().map(parse_meminfo) {
        Some(Some((total, free))) => HostMemory::Measured { total, free },
        Some(None) => {
            tracing::warn!("no MemTotal and MemAvailable in /proc/meminfo: no memory figures");
            HostMemory::Unknown
        }
        None => HostMemory::Unknown,
    };
    let loadavg = read("/proc/loadavg").and_then(|t| {
        let v = parse_loadavg(&t);
        if v.is_none() {
            tracing::warn!("cannot parse /proc/loadavg: {t:?}");
        }
        v
    });
    let at = Instant::now();
    meter.retain_nics(nics);
    let nics = nics
        .iter()
        .filter_map(|d| {
            let (rx, tx) = nic_counters(sysfs_net, d)?;
            let (r, t) = meter.nic(d, at, rx, tx)?;
            Some((d.clone(), r, t))
        })
        .collect();
    HostStats { cpus, memory, loadavg, nics }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\
        model name\t: AMD EPYC 7B13\nstepping\t: 0\ncpu MHz\t\t: 2450.000\nphysical id\t: 0\nsiblings\t: 2\n\
        cpu cores\t: 1\nflags\t\t: fpu vme de\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\
        model\t\t: 1\nmodel name\t: AMD EPYC 7B13\nstepping\t: 0\ncpu MHz\t\t: 2450.000\nphysical id\t: 0\n\
        siblings\t: 2\ncpu cores\t: 1\nflags\t\t: fpu vme de\n\n";

    #[test]
    fn cpuinfo() {
        let (cpus, sockets, threads) = parse_cpuinfo(CPUINFO);
        assert_eq!(cpus.len(), 2);
        assert_eq!((sockets, threads), (1, 2));
        assert_eq!(cpus[1].vendor, "AuthenticAMD");
        assert_eq!(cpus[0].model_name, "AMD EPYC 7B13");
        assert_eq!((cpus[0].family, cpus[0].model, cpus[0].speed_mhz), (25, 1, 2450.0));
        assert_eq!(cpus[0].flags, "fpu vme de");
    }

    #[test]
    fn meminfo() {
        let t = "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(parse_meminfo(t), Some((24_000_000 * 1024, 20_000_000 * 1024)));
        assert_eq!(parse_meminfo("nothing"), None);
    }

    #[test]
    fn this_machine() {
        let f = read_local();
        assert!(!f.cpus.is_empty() && f.memory_total > 0 && f.memory_host >= 0, "{f:?}");
    }

    const STAT: &str = "cpu  500 0 300 9000 100 0 0 0 0 0\n\
        cpu0 100 0 100 800 0 0 0 0 0 0\n\
        cpu1 400 0 200 8200 100 0 0 0 0 0\n\
        intr 12345 0 0\nctxt 999\nbtime 1700000000\ncpu2 1 2\n";

    #[test]
    fn stat_lines() {
        let v = parse_stat(STAT);
        // The all-CPU line and the short cpu2 line are no CPUs.
        assert_eq!(v.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(v[1].1, CpuTimes([400, 0, 200, 8200, 100, 0, 0, 0]));
        assert!(parse_stat("garbage\ncpuX 1 2 3 4 5 6 7 8\n").is_empty());
    }

    #[test]
    fn cpu_deltas() {
        let t = |user, system, idle, iowait| CpuTimes([user, 0, system, idle, iowait, 0, 0, 0]);
        // 100 ticks: 30 busy, 70 idle or waiting.
        assert_eq!(cpu_busy(t(100, 100, 800, 0), t(120, 110, 860, 10)), Some(0.3));
        assert_eq!(cpu_busy(t(1, 1, 1, 1), t(1, 1, 1, 1)), None);
        // iowait stepping back counts as no time, not as busy time.
        assert_eq!(cpu_busy(t(100, 100, 800, 50), t(100, 100, 900, 40)), Some(0.0));
        // Everything backwards (a CPU's counters restarted): no time passed.
        assert_eq!(cpu_busy(t(100, 100, 800, 50), t(1, 1, 1, 1)), None);

        let mut m = Meter::default();
        assert!(m.cpus(parse_stat(STAT)).is_empty(), "the first reading is the baseline");
        let later = "cpu0 150 0 150 900 0 0 0 0 0 0\ncpu1 400 0 200 8300 100 0 0 0 0 0\ncpu3 5 0 5 5 5 0 0 0\n";
        let v = m.cpus(parse_stat(later));
        assert_eq!(v, [(0, 0.5), (1, 0.0)]);
        assert!(v.iter().all(|(_, u)| (0.0..=1.0).contains(u)));
    }

    #[test]
    fn loadavg() {
        assert_eq!(parse_loadavg("0.52 0.81 1.78 2/345 6789\n"), Some(0.52));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("-1 0 0"), None);
    }

    #[test]
    fn nic_rates() {
        let mut m = Meter::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        assert_eq!(m.nic("eth0", at(0), 1000, 500), None, "the first reading is the baseline");
        assert_eq!(m.nic("eth0", at(5), 6000, 1500), Some((1000.0, 200.0)));
        // Reset (or a wrapped 32-bit counter): unknown, never negative...
        assert_eq!(m.nic("eth0", at(10), 100, 1600), None);
        // ...and measured again from there.
        assert_eq!(m.nic("eth0", at(15), 600, 1600), Some((100.0, 0.0)));
        // u64::MAX to a small count is the same case.
        m.nic("eth1", at(0), u64::MAX, 0);
        assert_eq!(m.nic("eth1", at(5), 10, 0), None);
        // A NIC no longer listed is forgotten: its next reading is a baseline.
        m.retain_nics(&["eth1".to_string()]);
        assert_eq!(m.nic("eth0", at(20), 700, 1700), None);
    }

    #[test]
    fn counters_from_sysfs() {
        let root = std::env::temp_dir().join(format!("xapi-rs-hoststats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("eth0/statistics");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rx_bytes"), "123\n").unwrap();
        std::fs::write(dir.join("tx_bytes"), "456\n").unwrap();
        assert_eq!(nic_counters(&root, "eth0"), Some((123, 456)));
        assert_eq!(nic_counters(&root, "eth9"), None);
        let mut m = Meter::default();
        let first = measure_local(&mut m, &root, &["eth0".to_string()]);
        assert!(first.nics.is_empty() && first.cpus.is_empty(), "{first:?}");
        assert!(matches!(first.memory, HostMemory::Measured { total, free } if total > 0 && free <= total));
        std::fs::write(dir.join("rx_bytes"), "1123\n").unwrap();
        let second = measure_local(&mut m, &root, &["eth0".to_string()]);
        assert_eq!(second.nics.len(), 1);
        assert!(second.nics[0].1 > 0.0 && second.nics[0].2 == 0.0, "{second:?}");
        assert!(second.loadavg.is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }
}

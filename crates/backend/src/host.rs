//! The machine a backend runs guests on: its CPUs and memory. The simulator
//! reports a fixed, made-up machine; the QEMU backend reads the real one
//! from `/proc`.

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
        cpus: vec![cpu; 8],
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
}

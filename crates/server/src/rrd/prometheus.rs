//! `GET /metrics`: the newest value of every data source of the host, of
//! each VM and of each SR, and each SR's size and use, in Prometheus' text exposition format
//! (version 0.0.4). Names follow Prometheus' conventions: a `xapi_` prefix,
//! base units (bytes, ratios), `_bytes_per_second` for rates; each object's
//! uuid and name are labels, devices (cpu, vif, vbd, pif) are labels too.

use super::{sources, Rrd};
use std::collections::BTreeMap;
use std::fmt::Write;

const MIB: f64 = 1024.0 * 1024.0;

/// An object whose RRD is exported.
pub struct Subject<'a> {
    /// `host`, `vm` or `sr`.
    pub kind: &'static str,
    pub uuid: &'a str,
    pub name: &'a str,
    pub rrd: &'a Rrd,
}

/// An SR's figures from the database.
pub struct SrFigures<'a> {
    pub uuid: &'a str,
    pub name: &'a str,
    pub size: i64,
    pub utilisation: i64,
}

/// A data source as (metric suffix, device label, scale to base units, help).
fn metric(kind: &str, ds: &str) -> (String, Option<(&'static str, String)>, f64, String) {
    let split = |rest: &str| rest.rsplit_once('_').map(|(d, x)| (d.to_string(), x.to_string()));
    if let Some(n) = ds.strip_prefix("cpu").filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        return ("cpu_usage_ratio".into(), Some(("cpu", n.into())), 1.0, "Utilisation of one CPU (0 to 1).".into());
    }
    for (prefix, label, what) in
        [("vif_", "vif", "virtual network interface"), ("pif_", "pif", "physical network interface")]
    {
        if let Some((dev, dir)) = ds.strip_prefix(prefix).and_then(split) {
            let (m, h) = if dir == "rx" { ("receive", "received") } else { ("transmit", "sent") };
            return (
                format!("network_{m}_bytes_per_second"),
                Some((label, dev)),
                1.0,
                format!("Bytes per second {h} on a {what}."),
            );
        }
    }
    if let Some((dev, dir)) = ds.strip_prefix("vbd_").and_then(split) {
        let m = if dir == "read" { "read" } else { "write" };
        return (
            format!("disk_{m}_bytes_per_second"),
            Some(("vbd", dev)),
            1.0,
            format!("Bytes per second {m} on a disk."),
        );
    }
    // SR I/O: the SR's own sources, and the host's copies suffixed with the
    // SR uuid's first 8 characters (a label here).
    for (prefix, m, scale, help) in [
        ("io_throughput_read", "read_bytes_per_second", MIB, "Bytes per second read from an SR."),
        ("io_throughput_write", "write_bytes_per_second", MIB, "Bytes per second written to an SR."),
        ("io_throughput_total", "io_bytes_per_second", MIB, "Bytes per second read from and written to an SR."),
        ("iops_read", "read_operations_per_second", 1.0, "Read requests per second on an SR."),
        ("iops_write", "write_operations_per_second", 1.0, "Write requests per second on an SR."),
        ("iops_total", "operations_per_second", 1.0, "I/O requests per second on an SR."),
    ] {
        match ds.strip_prefix(prefix) {
            Some("") => return (format!("disk_{m}"), None, scale, help.into()),
            Some(sr) if kind == "host" && sr.starts_with('_') => {
                return (format!("sr_{m}"), Some(("sr", sr[1..].to_string())), scale, help.into())
            }
            _ => {}
        }
    }
    match (kind, ds) {
        ("sr", "free_space") => ("free_bytes".into(), None, 1.0, "Free space in the storage repository.".into()),
        ("host", "cpu_avg") => {
            ("cpu_average_ratio".into(), None, 1.0, "Average utilisation of the host's CPUs.".into())
        }
        ("host", "loadavg") => ("load_average".into(), None, 1.0, "Load average of the control domain.".into()),
        ("host", "memory_total_kib") => ("memory_total_bytes".into(), None, 1024.0, "Memory of the host.".into()),
        ("host", "memory_free_kib") => ("memory_free_bytes".into(), None, 1024.0, "Free memory of the host.".into()),
        ("vm", "memory") => ("memory_bytes".into(), None, 1.0, "Memory allocated to the VM.".into()),
        ("vm", "memory_internal_free") => {
            ("memory_internal_free_bytes".into(), None, 1024.0, "Free memory as the guest reports it.".into())
        }
        _ => {
            let clean: String = ds
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' })
                .collect();
            (clean, None, 1.0, format!("The {ds} data source."))
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The whole exposition. Each metric family is written once, with its HELP
/// and TYPE, followed by all its samples.
pub fn render(subjects: &[Subject<'_>], srs: &[SrFigures<'_>]) -> String {
    // family name → (help, sample lines)
    let mut families: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for s in subjects {
        for ds in &s.rrd.dss {
            let Some(v) = sources::query(s.rrd, &ds.name) else { continue };
            if v.is_nan() {
                continue;
            }
            // The SR's size and use come from the database below.
            if s.kind == "sr" && matches!(ds.name.as_str(), "physical_size" | "physical_utilisation") {
                continue;
            }
            let (suffix, device, scale, help) = metric(s.kind, &ds.name);
            let name = format!("xapi_{}_{suffix}", s.kind);
            let mut labels = format!("uuid=\"{}\",name=\"{}\"", label(s.uuid), label(s.name));
            if let Some((k, d)) = device {
                let _ = write!(labels, ",{k}=\"{}\"", label(&d));
            }
            let e = families.entry(name.clone()).or_insert_with(|| (help, vec![]));
            e.1.push(format!("{name}{{{labels}}} {}", number(v * scale)));
        }
    }
    for sr in srs {
        let labels = format!("uuid=\"{}\",name=\"{}\"", label(sr.uuid), label(sr.name));
        for (name, help, v) in [
            ("xapi_sr_physical_size_bytes", "Size of the storage repository.", sr.size),
            ("xapi_sr_physical_utilisation_bytes", "Space used in the storage repository.", sr.utilisation),
        ] {
            let e = families.entry(name.into()).or_insert_with(|| (help.into(), vec![]));
            e.1.push(format!("{name}{{{labels}}} {v}"));
        }
    }
    let mut out = String::new();
    for (name, (help, lines)) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_labels_and_units() {
        let mut r = Rrd::new(1000.0, false);
        for i in 1..=3 {
            r.update(
                1000.0 + 5.0 * i as f64,
                &[("cpu0".into(), 0.5), ("memory_internal_free".into(), 2.0), ("vif_0_rx".into(), 10.0)],
            );
        }
        let mut sr = Rrd::new(1000.0, false);
        let mut host = Rrd::new(1000.0, false);
        for i in 1..=3 {
            let t = 1000.0 + 5.0 * i as f64;
            sr.update(
                t,
                &[("io_throughput_write".into(), 2.0), ("iops_read".into(), 3.0), ("physical_size".into(), 9.0)],
            );
            host.update(t, &[("io_throughput_read_abcdef01".into(), 0.5)]);
        }
        let vms = [
            Subject { kind: "vm", uuid: "u1", name: "a \"quoted\" name", rrd: &r },
            Subject { kind: "vm", uuid: "u2", name: "b", rrd: &r },
            Subject { kind: "sr", uuid: "s1", name: "Local", rrd: &sr },
            Subject { kind: "host", uuid: "h", name: "h", rrd: &host },
        ];
        let srs = [SrFigures { uuid: "s1", name: "Local", size: 100, utilisation: 40 }];
        let text = render(&vms, &srs);
        assert_eq!(text.matches("# TYPE xapi_vm_cpu_usage_ratio gauge").count(), 1);
        assert!(text.contains("xapi_vm_cpu_usage_ratio{uuid=\"u1\",name=\"a \\\"quoted\\\" name\",cpu=\"0\"} 0.5\n"));
        assert!(text.contains("xapi_vm_memory_internal_free_bytes{uuid=\"u2\",name=\"b\"} 2048\n"));
        assert!(text.contains(
            "xapi_vm_network_receive_bytes_per_second{uuid=\"u1\",name=\"a \\\"quoted\\\" name\",vif=\"0\"} 10\n"
        ));
        assert!(text.contains("xapi_sr_physical_utilisation_bytes{uuid=\"s1\",name=\"Local\"} 40\n"));
        assert!(text.contains("xapi_sr_disk_write_bytes_per_second{uuid=\"s1\",name=\"Local\"} 2097152\n"));
        assert!(text.contains("xapi_sr_disk_read_operations_per_second{uuid=\"s1\",name=\"Local\"} 3\n"));
        assert!(!text.contains("xapi_sr_physical_size{"), "the SR's size comes from the database only");
        assert!(text.contains("xapi_host_sr_read_bytes_per_second{uuid=\"h\",name=\"h\",sr=\"abcdef01\"} 524288\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
        }
    }
}

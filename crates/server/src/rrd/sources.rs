//! The data-source view of an RRD, for the API's `get_data_sources`,
//! `query_data_source`, `record_data_source` and
//! `forget_data_source_archives` (VM, host and SR). Every data source the
//! sampler makes is recorded from the start (xapi's "standard" ones), so
//! each is enabled and standard; recording one is a no-op that succeeds for
//! a name the RRD has.

use super::Rrd;
use crate::{ApiError, Result, Server};
use model::types::DataSourceRecord;

/// Whose RRD: the host's, or a VM's or an SR's by uuid.
pub enum Owner<'a> {
    Host,
    Vm(&'a str),
    Sr(&'a str),
}

fn missing(name: &str) -> ApiError {
    // xcp-rrdd's failure for a name it does not have reaches clients as an
    // internal error naming the source.
    crate::internal(format!("data source not found: {name}"))
}

/// Run `f` on the owner's RRD (None when it has none yet: a VM that never
/// ran here).
fn with_rrd<T>(s: &Server, owner: &Owner<'_>, f: impl FnOnce(Option<&mut Rrd>) -> T) -> T {
    let mut g = s.rrds.lock();
    match owner {
        Owner::Host => f(g.host.as_mut()),
        Owner::Vm(u) => f(g.vms.get_mut(*u)),
        Owner::Sr(u) => f(g.srs.get_mut(*u)),
    }
}

pub fn api_list(s: &Server, owner: Owner<'_>) -> Vec<DataSourceRecord> {
    with_rrd(s, &owner, |r| r.map(|r| list(r)).unwrap_or_default())
}

pub fn api_query(s: &Server, owner: Owner<'_>, name: &str) -> Result<f64> {
    with_rrd(s, &owner, |r| r.and_then(|r| query(r, name))).ok_or_else(|| missing(name))
}

/// Every source is recorded already; a name the RRD lacks is an error.
pub fn api_record(s: &Server, owner: Owner<'_>, name: &str) -> Result<()> {
    with_rrd(s, &owner, |r| r.is_some_and(|r| r.dss.iter().any(|d| d.name == name)))
        .then_some(())
        .ok_or_else(|| missing(name))
}

/// Forget a source's history, here and in the archive on disk.
pub async fn api_forget(s: &Server, owner: Owner<'_>, name: &str) -> Result<()> {
    let uuid = match owner {
        Owner::Host => super::sampler::host_uuid(s),
        Owner::Vm(u) | Owner::Sr(u) => u.to_string(),
    };
    let copy =
        with_rrd(s, &owner, |r| r.and_then(|r| forget(r, name).then(|| r.clone()))).ok_or_else(|| missing(name))?;
    if s.cfg.ephemeral {
        return Ok(());
    }
    let dir = super::persist::dir(&s.cfg.data_dir);
    let res = tokio::task::spawn_blocking(move || super::persist::save(&dir, &uuid, &copy)).await;
    match res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::internal(format!("cannot rewrite the RRD archive: {e}"))),
        Err(e) => Err(crate::internal(format!("RRD archive worker: {e}"))),
    }
}

/// What a data source measures and in which unit, by its name.
fn describe(name: &str) -> (String, &'static str) {
    let num = |p: &str| name.strip_prefix(p).map(str::to_string);
    if let Some(n) = num("cpu").filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty()) {
        return (format!("Physical CPU {n} utilisation"), "(fraction)");
    }
    if let Some(rest) = name.strip_prefix("vif_").or_else(|| name.strip_prefix("pif_")) {
        let (dev, dir) = rest.rsplit_once('_').unwrap_or((rest, ""));
        let what = if dir == "rx" { "Bytes per second received on" } else { "Bytes per second sent on" };
        return (format!("{what} network interface {dev}"), "B/s");
    }
    if let Some(rest) = name.strip_prefix("vbd_") {
        let (dev, dir) = rest.rsplit_once('_').unwrap_or((rest, ""));
        let what = if dir == "read" { "Reads from" } else { "Writes to" };
        return (format!("{what} device {dev} in bytes per second"), "B/s");
    }
    for (prefix, what, unit) in [
        ("io_throughput_read", "Data read from the SR", "MiB/s"),
        ("io_throughput_write", "Data written to the SR", "MiB/s"),
        ("io_throughput_total", "All SR I/O", "MiB/s"),
        ("iops_read", "Read requests per second", "requests/s"),
        ("iops_write", "Write requests per second", "requests/s"),
        ("iops_total", "I/O requests per second", "requests/s"),
    ] {
        match name.strip_prefix(prefix) {
            Some("") => return (what.into(), unit),
            Some(sr) if sr.starts_with('_') => return (format!("{what} {}", &sr[1..]), unit),
            _ => {}
        }
    }
    match name {
        "physical_size" => ("Size of the SR".into(), "B"),
        "physical_utilisation" => ("Space used on the SR".into(), "B"),
        "free_space" => ("Free space on the SR".into(), "B"),
        "memory" => ("Memory currently allocated to the VM".into(), "B"),
        "memory_internal_free" => ("Memory used as reported by the guest agent".into(), "KiB"),
        "memory_total_kib" => ("Total amount of memory in the host".into(), "KiB"),
        "memory_free_kib" => ("Total amount of free memory".into(), "KiB"),
        "cpu_avg" => ("Average physical CPU utilisation".into(), "(fraction)"),
        "loadavg" => ("Domain0 load average".into(), ""),
        _ => (String::new(), ""),
    }
}

pub fn list(rrd: &Rrd) -> Vec<DataSourceRecord> {
    rrd.dss
        .iter()
        .map(|ds| {
            let (name_description, units) = describe(&ds.name);
            DataSourceRecord {
                name_label: ds.name.clone(),
                name_description,
                enabled: true,
                standard: true,
                units: units.to_string(),
                min: ds.min,
                max: ds.max,
                value: query(rrd, &ds.name).unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The most recent value as xcp-rrdd answers it: the newest point of the
/// finest AVERAGE archive (what `/rrd_updates` shows), or the last reading
/// while that point is still unknown.
pub fn query(rrd: &Rrd, name: &str) -> Option<f64> {
    let i = rrd.dss.iter().position(|d| d.name == name)?;
    let newest = rrd.rras.iter().find(|a| a.cf == super::Cf::Average).map(|a| a.peek(i, 0)).unwrap_or(f64::NAN);
    Some(if newest.is_nan() { rrd.dss[i].last } else { newest })
}

/// Drop the history of one data source (its archived rows become unknown);
/// false if the RRD has no such source.
pub fn forget(rrd: &mut Rrd, name: &str) -> bool {
    let Some(i) = rrd.dss.iter().position(|d| d.name == name) else { return false };
    for rra in &mut rrd.rras {
        if let Some(ring) = rra.data.get_mut(i) {
            ring.iter_mut().for_each(|v| *v = f64::NAN);
        }
        if let Some(c) = rra.cdps.get_mut(i) {
            *c = super::Cdp { seen: c.seen, ..Default::default() };
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_forget() {
        let mut r = Rrd::new(1000.0, false);
        for i in 1..=10 {
            r.update(1000.0 + 5.0 * i as f64, &[("cpu0".into(), 0.25), ("vif_0_rx".into(), 100.0)]);
        }
        let l = list(&r);
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].units.as_str(), l[0].value), ("(fraction)", 0.25));
        assert!(l[1].name_description.contains("received"));
        assert_eq!(query(&r, "vif_0_rx"), Some(100.0));
        assert_eq!(query(&r, "nope"), None);
        assert!(forget(&mut r, "cpu0"));
        assert!(r.rras.iter().all(|a| a.data[0].iter().all(|v| v.is_nan())));
        assert!(!r.rras[0].peek(1, 0).is_nan(), "other sources keep theirs");
        assert!(!forget(&mut r, "nope"));
    }
}

//! RRDs on disk, as xapi archives them: each object's RRD as gzip-compressed
//! rrdtool dump XML (the `/host_rrd` layout), `<data dir>/rrd/<uuid>.gz`,
//! written atomically (temporary file, fsync, rename), so a failed write
//! (a full disk) leaves the last good copy. Written on clean shutdown, when
//! a VM's domain stops, and periodically; read back at start so graphs
//! continue. A file that cannot be read is moved aside with a warning and
//! its RRD starts afresh; the server starts either way.

use super::{export, Cdp, Cf, Ds, Rra, Rrd, Rrds, STEP};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("rrd")
}

fn file(dir: &Path, uuid: &str) -> PathBuf {
    dir.join(format!("{uuid}.gz"))
}

/// Uuids name the files; anything else could leave the directory.
fn safe_name(uuid: &str) -> bool {
    !uuid.is_empty() && uuid.len() <= 64 && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Write one RRD. On failure the previous file, if any, is untouched.
pub fn save(dir: &Path, uuid: &str, rrd: &Rrd) -> std::io::Result<()> {
    if !safe_name(uuid) {
        return Err(std::io::Error::other(format!("not a uuid: {uuid:?}")));
    }
    std::fs::create_dir_all(dir)?;
    let path = file(dir, uuid);
    let tmp = dir.join(format!(".{uuid}.gz.tmp"));
    let res = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        gz.write_all(export::dump_xml(rrd).as_bytes())?;
        gz.finish()?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Save the host's and every VM's and SR's RRD; failures are logged (the last good
/// copies stay) and counted.
pub fn save_all(dir: &Path, host_uuid: &str, rrds: &Rrds) -> usize {
    let mut failed = 0;
    let all = rrds
        .host
        .iter()
        .map(|r| (host_uuid, r))
        .chain(rrds.vms.iter().chain(rrds.srs.iter()).map(|(u, r)| (u.as_str(), r)));
    for (uuid, rrd) in all {
        if let Err(e) = save(dir, uuid, rrd) {
            tracing::warn!(uuid, "cannot save the RRD (the previous copy is kept): {e}");
            failed += 1;
        }
    }
    failed
}

/// Forget a destroyed VM's archive.
pub fn remove(dir: &Path, uuid: &str) {
    if !safe_name(uuid) {
        return;
    }
    match std::fs::remove_file(file(dir, uuid)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(uuid, "cannot remove the RRD archive: {e}"),
    }
}

/// Whose RRD an archive holds, besides the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vm,
    Sr,
}

/// Read every archived RRD: the host's (named by `host_uuid`) and those of
/// the VMs and SRs `kind` knows (the others' archives are removed).
/// Unreadable files are set aside.
pub fn load_all(dir: &Path, host_uuid: &str, kind: impl Fn(&str) -> Option<Kind>) -> Rrds {
    let mut out = Rrds::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            tracing::warn!("cannot read the RRD archive {}: {e}", dir.display());
            return out;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(uuid) = name.strip_suffix(".gz").filter(|u| safe_name(u)) else { continue };
        let path = entry.path();
        match read(&path) {
            Ok(rrd) if uuid == host_uuid => out.host = Some(rrd),
            Ok(rrd) => match kind(uuid) {
                Some(Kind::Vm) => {
                    out.vms.insert(uuid.to_string(), rrd);
                }
                Some(Kind::Sr) => {
                    out.srs.insert(uuid.to_string(), rrd);
                }
                None => remove(dir, uuid),
            },
            Err(e) => {
                let aside = dir.join(format!("{name}.corrupt-{}", super::now() as i64));
                tracing::warn!(
                    "RRD archive {} is unreadable ({e}); moved to {} and started afresh",
                    path.display(),
                    aside.display()
                );
                if let Err(e) = std::fs::rename(&path, &aside) {
                    tracing::warn!("cannot move {} aside: {e}", path.display());
                }
            }
        }
    }
    out
}

fn read(path: &Path) -> Result<Rrd, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut xml = String::new();
    // A bound well above any RRD we write (a few hundred KiB).
    flate2::read::GzDecoder::new(f)
        .take(64 << 20)
        .read_to_string(&mut xml)
        .map_err(|e| format!("not gzip-compressed text: {e}"))?;
    parse_dump(&xml)
}

fn num(s: &str) -> Result<f64, String> {
    match s.trim() {
        "NaN" | "nan" => Ok(f64::NAN),
        "Infinity" | "inf" => Ok(f64::INFINITY),
        "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
        t => t.parse::<f64>().map_err(|_| format!("not a number: {t:?}")),
    }
}

/// Read back what [`export::dump_xml`] writes (rrdtool's dump layout).
pub fn parse_dump(xml: &str) -> Result<Rrd, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut rrd = Rrd { last_updated: 0.0, dss: vec![], rras: vec![] };
    // The archive being read, and its rows (oldest first).
    let mut rra: Option<(Rra, Vec<Vec<f64>>)> = None;
    let mut row: Vec<f64> = Vec::new();
    // cdp_prep entries (value, unknown PDPs), and the one being read.
    let mut cdp_unknown: Vec<(f64, i64)> = Vec::new();
    let (mut cdp_value, mut cdp_unk) = (0.0, 0i64);
    let mut text = String::new();
    loop {
        let ev = reader.read_event().map_err(|e| format!("XML: {e}"))?;
        match ev {
            Event::Start(e) => {
                let name = e.name().0.to_string();
                match (path.last().map(String::as_str), name.as_str()) {
                    (Some("rrd"), "ds") => rrd.dss.push(Ds {
                        name: String::new(),
                        min: 0.0,
                        max: f64::INFINITY,
                        last: f64::NAN,
                        value: 0.0,
                        unknown_sec: 0.0,
                    }),
                    (Some("rrd"), "rra") => {
                        rra = Some((
                            Rra { cf: Cf::Average, pdp_cnt: 1, row_cnt: 0, xff: 0.5, cdps: vec![], data: vec![] },
                            vec![],
                        ))
                    }
                    (Some("database"), "row") => row.clear(),
                    _ => {}
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                text.push(match &*name {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => return Err(format!("unknown entity &{other};")),
                });
            }
            Event::End(_) => {
                let closed = path.pop().unwrap_or_default();
                let value = std::mem::take(&mut text);
                let parent = path.last().map(String::as_str);
                let in_cdp = path.iter().any(|p| p == "cdp_prep");
                match (parent, closed.as_str()) {
                    (Some("rrd"), "lastupdate") => rrd.last_updated = num(&value)?,
                    (Some("rrd"), "step") if value.trim() != STEP.to_string() => {
                        return Err(format!("step {} is not {STEP}", value.trim()))
                    }
                    (Some("ds"), f) if path.len() == 2 => {
                        let ds = rrd.dss.last_mut().ok_or("a data source field outside <ds>")?;
                        match f {
                            "name" => ds.name = value,
                            "min" => ds.min = num(&value)?,
                            "max" => ds.max = num(&value)?,
                            "last_ds" => ds.last = num(&value)?,
                            "value" => ds.value = num(&value)?,
                            "unknown_sec" => ds.unknown_sec = num(&value)?,
                            _ => {}
                        }
                    }
                    (Some("ds"), "value") if in_cdp => cdp_value = num(&value)?,
                    (Some("ds"), "unknown_datapoints") if in_cdp => {
                        cdp_unk = value.trim().parse().map_err(|_| format!("bad unknown_datapoints {value:?}"))?;
                    }
                    (Some("cdp_prep"), "ds") => {
                        cdp_unknown.push((cdp_value, cdp_unk));
                        (cdp_value, cdp_unk) = (0.0, 0);
                    }
                    (Some("rra"), "cf") => {
                        let cf = Cf::parse(value.trim()).ok_or_else(|| format!("unknown cf {value:?}"))?;
                        if let Some((a, _)) = &mut rra {
                            a.cf = cf;
                        }
                    }
                    (Some("rra"), "pdp_per_row") => {
                        if let Some((a, _)) = &mut rra {
                            a.pdp_cnt = value.trim().parse().map_err(|_| format!("bad pdp_per_row {value:?}"))?;
                        }
                    }
                    (Some("params"), "xff") => {
                        if let Some((a, _)) = &mut rra {
                            a.xff = num(&value)?;
                        }
                    }
                    (Some("row"), "v") => row.push(num(&value)?),
                    (Some("database"), "row") => {
                        if let Some((_, rows)) = &mut rra {
                            rows.push(std::mem::take(&mut row));
                        }
                    }
                    (Some("rrd"), "rra") => {
                        let (mut a, rows) = rra.take().ok_or("</rra> without <rra>")?;
                        let n = rrd.dss.len();
                        if rows.iter().any(|r| r.len() != n) || cdp_unknown.len() != n {
                            return Err(format!("an archive's rows or cdp_prep do not have {n} values"));
                        }
                        if a.pdp_cnt < 1 || rows.is_empty() {
                            return Err("an archive with no rows or a bad pdp_per_row".into());
                        }
                        a.row_cnt = rows.len();
                        // Newest first in memory.
                        a.data = (0..n).map(|d| rows.iter().rev().map(|r| r[d]).collect::<VecDeque<f64>>()).collect();
                        // PDPs of the open row so far follow from the last update.
                        let seen = a.open_row_pdps(rrd.last_updated);
                        a.cdps = cdp_unknown
                            .drain(..)
                            .map(|(sum, unknown)| Cdp { sum, known: (seen - unknown).max(0), seen })
                            .collect();
                        rrd.rras.push(a);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err("the XML ends inside an element".into());
    }
    if rrd.rras.is_empty() || rrd.dss.iter().any(|d| d.name.is_empty()) {
        return Err("no archives, or a data source without a name".into());
    }
    Ok(rrd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(min_max: bool) -> Rrd {
        let mut r = Rrd::new(1_700_000_000.0, min_max);
        let mut t = 1_700_000_000.0;
        for i in 0..200 {
            t += 5.0;
            r.update(t, &[("cpu0".into(), (i % 9) as f64 / 10.0), ("a&b<c>".into(), i as f64)]);
        }
        // The dump keeps whole seconds (as rrdtool's lastupdate), so updates here do too.
        r.update(t + 2.0, &[("cpu0".into(), 0.5)]);
        r
    }

    fn same(a: &Rrd, b: &Rrd) {
        assert_eq!(a.last_updated, b.last_updated);
        assert!(a.dss.iter().zip(&b.dss).all(|(x, y)| (x.value - y.value).abs() < 1e-9));
        assert_eq!(
            a.dss.iter().map(|d| &d.name).collect::<Vec<_>>(),
            b.dss.iter().map(|d| &d.name).collect::<Vec<_>>()
        );
        assert_eq!(a.rras.len(), b.rras.len());
        for (x, y) in a.rras.iter().zip(&b.rras) {
            assert_eq!((x.cf, x.pdp_cnt, x.row_cnt), (y.cf, y.pdp_cnt, y.row_cnt));
            for d in 0..a.dss.len() {
                for i in 0..x.row_cnt {
                    let (p, q) = (x.peek(d, i), y.peek(d, i));
                    // Values are written with 15 significant digits.
                    let close = (p - q).abs() <= 1e-12 * p.abs().max(q.abs()).max(1.0);
                    assert!(close || (p.is_nan() && q.is_nan()), "{:?} row {i}: {p} vs {q}", x.cf);
                }
            }
        }
    }

    #[test]
    fn a_dump_reads_back_and_continues_alike() {
        for min_max in [false, true] {
            let mut a = fed(min_max);
            let mut b = parse_dump(&export::dump_xml(&a)).unwrap();
            same(&a, &b);
            // Both go on the same way: the open PDP and CDPs came back too.
            let mut t = a.last_updated;
            for i in 0..500 {
                t += 5.0;
                let v = [("cpu0".to_string(), (i % 4) as f64), ("a&b<c>".to_string(), 1.0)];
                a.update(t, &v);
                b.update(t, &v);
            }
            same(&a, &b);
        }
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let good = export::dump_xml(&fed(false));
        for bad in [
            "",
            "<rrd>",
            "not xml <<<",
            &good.replace("<step>5</step>", "<step>60</step>"),
            &good.replace("<cf>AVERAGE</cf>", "<cf>MEDIAN</cf>"),
            &good.replacen("<v>", "<v>x", 1),
            &good.replacen("<row>", "<row><v>1</v>", 1),
        ] {
            assert!(parse_dump(bad).is_err(), "{}", &bad[..bad.len().min(80)]);
        }
    }

    #[test]
    fn save_is_atomic_and_load_sets_damage_aside() {
        let dir = tempfile::tempdir().unwrap();
        let r = fed(false);
        save(dir.path(), "11111111-2222-3333-4444-555555555555", &r).unwrap();
        save(dir.path(), "aaaaaaaa-2222-3333-4444-555555555555", &r).unwrap();
        std::fs::write(dir.path().join("bbbbbbbb-2222-3333-4444-555555555555.gz"), b"junk").unwrap();
        assert!(save(dir.path(), "../escape", &r).is_err());
        let got =
            load_all(dir.path(), "11111111-2222-3333-4444-555555555555", |u| u.starts_with('a').then_some(Kind::Vm));
        same(got.host.as_ref().unwrap(), &r);
        assert_eq!(got.vms.len(), 1);
        let names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert!(names.iter().any(|n| n.starts_with("bbbbbbbb-2222-3333-4444-555555555555.gz.corrupt-")));
        assert!(!names.iter().any(|n| n.ends_with(".tmp")));
    }
}

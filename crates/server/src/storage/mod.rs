//! Storage: SR drivers (like xapi's SM plugins) and the VDI operations the
//! rest of the server uses. A file-backed local SR (`ext`) keeps each VDI as
//! a sparse file `<sr dir>/<vdi uuid>.raw` (or `.qcow2`); an ISO library SR
//! (`iso`) is a directory of ISO images. The SR directory is the PBD's
//! `device_config:path` (or `location`), else `<data dir>/sr/<sr uuid>`.
//!
//! File I/O runs on the blocking pool, never inside a store transaction.
//! A VDI whose file is being created or removed is marked busy so that a
//! concurrent SR scan neither introduces nor forgets it halfway.

pub mod cbt;
pub mod driver;
mod ext;
pub mod files;
mod iso;
pub mod qemu;
pub mod scan;
pub mod sm;
pub mod vhd;

pub use driver::{Driver, Format};
pub use files::allocated;

use crate::{ApiError, Ctx, Result, Server};
use model::schema::{CLASS_PBD, CLASS_POOL, CLASS_SR, CLASS_VDI};
use model::types::fields;
use model::types::fields::{sr as SR, vdi as VDI};
use model::types::VdiType;
use model::{DateTime, Ref, Row, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use store::State;

/// A new VDI's description.
pub struct NewVdi<'a> {
    pub sr: &'a str,
    pub name_label: String,
    pub name_description: String,
    pub virtual_size: i64,
    pub vdi_type: &'a str,
    pub sharable: bool,
    pub read_only: bool,
    pub other_config: Value,
    pub sm_config: Value,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The directory holding an SR's files.
/// The directory of `sr` as `host` reaches it: its own PBD's first (in a
/// pool each host has its own), then any.
pub fn sr_dir(st: &State, data_dir: &std::path::Path, sr: &str, host: &str) -> Option<PathBuf> {
    let src = &CLASS_SR;
    let row = st.get(src, sr)?;
    let uuid = s(row.get(fields::sr::UUID.index));
    let pbd = &CLASS_PBD;
    let mut pbds = crate::rows::members(row.get(fields::sr::PBDS.index));
    pbds.sort_by_key(|p| st.get(pbd, p).is_none_or(|r| r.read(fields::pbd::HOST).as_str() != host));
    for p in pbds {
        if let Some(prow) = st.get(pbd, &p) {
            if let Some(dir) = configured_dir(prow.get(fields::pbd::DEVICE_CONFIG.index)) {
                return Some(dir);
            }
        }
    }
    Some(data_dir.join("sr").join(uuid))
}

/// The directory a device_config names (`path`, else `location`), if absolute.
pub fn configured_dir(device_config: &Value) -> Option<PathBuf> {
    let dc = device_config;
    dc.map_str("path").or_else(|| dc.map_str("location")).filter(|p| p.starts_with('/')).map(PathBuf::from)
}

/// Refuse an SR directory that is not at or under an allowed root (the data
/// dir's `sr/` and `--sr-root`s; links resolved, no `..`). Blocking.
///
/// XenServer has no such error because clients never choose where its SRs
/// live (SM mounts them itself); the closest are SM's own refusals of a bad
/// device_config path: ConfigDeviceInvalid (SR_BACKEND_FAILURE_91, "The
/// device is not a valid path") for a file SR, ISOLocalPath
/// (SR_BACKEND_FAILURE_226, "Invalid local path") for an ISO library, with
/// the allowed roots named in the reason.
pub fn check_sr_dir(roots: &[PathBuf], driver: Driver, dir: &Path) -> Result<()> {
    if files::within_roots(dir, roots) {
        return Ok(());
    }
    let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let why = format!("{} is not under an allowed SR root ({})", dir.display(), list.join(", "));
    tracing::info!("refusing SR directory: {why}");
    Err(match driver {
        Driver::Ext | Driver::File => driver::sm_error(91, "The device is not a valid path", Some(&why)),
        Driver::Iso => driver::sm_error(226, "Invalid local path", Some(&why)),
    })
}

/// The driver of an SR row, or SR_UNKNOWN_DRIVER [type].
pub fn driver_of(sr_row: &Row) -> Result<Driver> {
    let ty = s(sr_row.get(fields::sr::TYPE.index));
    Driver::of(&ty).ok_or(ApiError::SrUnknownDriver { driver: ty })
}

/// Where a VDI's data lives, if it has a file.
pub fn vdi_path(s: &Server, st: &State, vdi: &str) -> Option<PathBuf> {
    let c = &CLASS_VDI;
    let row = st.get(c, vdi)?;
    let sr = s_of(row.get(fields::vdi::SR.index));
    let loc = s_of(row.get(fields::vdi::LOCATION.index));
    if loc.is_empty() || loc.contains('/') || loc.contains("..") {
        return None;
    }
    let driver = driver_of(st.get(&CLASS_SR, &sr)?).ok()?;
    let dir = sr_dir(st, &s.cfg.data_dir, &sr, &s.host)?;
    Some(driver.vdi_file(&dir, &loc, Format::of_vdi(row.get(fields::vdi::SM_CONFIG.index))))
}

fn s_of(v: &Value) -> String {
    s(v)
}

/// SM's VDIUnavailable (46): a VDI file that leads out of its SR (a
/// symlink) or is not a regular file (a FIFO, a device node).
pub fn unavailable(path: &Path, e: std::io::Error) -> ApiError {
    tracing::warn!("refusing VDI file {}: {e}", path.display());
    driver::sm_error(46, "The VDI is not available", Some(&format!("{}: {e}", path.display())))
}

/// Check a VDI file before a path to it leaves this module (to the
/// hypervisor, qemu-img): it must stay inside its SR. A file that does not
/// exist passes (the caller reports that in its own way).
pub fn attachable(path: &Path) -> Result<()> {
    files::check_vdi(path).map(drop).map_err(|e| unavailable(path, e))
}

/// pool.default_SR, or DEFAULT_SR_NOT_FOUND.
pub fn default_sr(s: &Server) -> Result<String> {
    let pc = &CLASS_POOL;
    let st = s.db.read();
    let sr = st.get(pc, &s.pool).map(|r| s_of(r.get(fields::pool::DEFAULT_SR.index))).unwrap_or_default();
    if sr.is_empty() || sr == model::NULL_REF || st.get(&CLASS_SR, &sr).is_none() {
        return Err(ApiError::DefaultSrNotFound { sr });
    }
    Ok(sr)
}

/// The SR's PBD on `host` if it is plugged.
pub fn plugged_pbd(st: &State, sr: &str, host: &str) -> Option<String> {
    let (src, pc) = (&CLASS_SR, &CLASS_PBD);
    let row = st.get(src, sr)?;
    crate::rows::members(row.get(fields::sr::PBDS.index)).into_iter().find(|p| {
        st.get(pc, p)
            .is_some_and(|r| r.read(fields::pbd::HOST).as_str() == host && r.read(fields::pbd::CURRENTLY_ATTACHED))
    })
}

/// Where the data of these SRs is served: None when this host has each of
/// them plugged, else a host of the pool that has them all plugged (`prefer`
/// first), as xapi sends an export or import there; None too when no host
/// has (the transfer then fails here, naming what is missing).
pub fn host_with_srs(st: &State, srs: &BTreeSet<String>, me: &str, prefer: Option<&str>) -> Option<String> {
    let has_all = |h: &str| srs.iter().all(|sr| plugged_pbd(st, sr, h).is_some());
    if has_all(me) {
        return None;
    }
    if let Some(p) = prefer.filter(|p| *p != me && has_all(p)) {
        return Some(p.to_string());
    }
    st.table(&model::schema::CLASS_HOST).iter().map(|(h, _)| h).find(|h| *h != me && has_all(h)).cloned()
}

/// The SRs of a VM's disks.
pub fn disk_srs(st: &State, vm: &str) -> BTreeSet<String> {
    let vdis: Vec<String> = st
        .read(vm, fields::vm::VBDS)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| st.read(b.as_str(), fields::vbd::VDI).map(|v| v.into_string()))
        .collect();
    srs_of(st, &vdis)
}

/// The SRs of these VDIs (those that exist).
pub fn srs_of(st: &State, vdis: &[String]) -> BTreeSet<String> {
    vdis.iter().filter_map(|v| st.get(&CLASS_VDI, v).map(|r| r.read(fields::vdi::SR).into_string())).collect()
}

/// The SR must be attached on this host (xapi: SR_HAS_NO_PBDS [sr]).
pub fn assert_plugged(s: &Server, sr: &str) -> Result<()> {
    let st = s.db.read();
    st.get(&CLASS_SR, sr).ok_or_else(|| crate::handle_invalid(&CLASS_SR, sr))?;
    match plugged_pbd(&st, sr, &s.host) {
        Some(_) => Ok(()),
        None => Err(ApiError::SrHasNoPbds { sr: sr.to_string() }),
    }
}

/// Run blocking storage work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| crate::internal(format!("storage worker: {e}")))?
}

// ------------------------------------------------------------ busy marks

static BUSY: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// A VDI location whose file is being created or removed; unmarked on drop.
pub struct Busy(String, String);

impl Busy {
    pub fn mark(sr: &str, location: &str) -> Busy {
        if let Ok(mut b) = BUSY.lock() {
            b.insert((sr.to_string(), location.to_string()));
        }
        Busy(sr.to_string(), location.to_string())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut b) = BUSY.lock() {
            b.remove(&(std::mem::take(&mut self.0), std::mem::take(&mut self.1)));
        }
    }
}

/// The locations of an SR that are busy now.
pub fn busy_in(sr: &str) -> BTreeSet<String> {
    BUSY.lock().map(|b| b.iter().filter(|(s, _)| s == sr).map(|(_, l)| l.clone()).collect()).unwrap_or_default()
}

// ------------------------------------------------------------- usage

/// Keep an SR's utilisation figures true after a change.
pub fn refresh_sr_usage(ctx: &Ctx, sr: &str) -> Result<()> {
    let (src, vc) = (&CLASS_SR, &CLASS_VDI);
    ctx.write(|tx| {
        let Some(row) = tx.get(src, sr).cloned() else { return Ok(()) };
        let mut virt = 0i64;
        let mut phys = 0i64;
        for v in crate::rows::members(row.get(fields::sr::VDIS.index)) {
            if let Some(vr) = tx.get(vc, &v) {
                virt += vr.read(fields::vdi::VIRTUAL_SIZE);
                phys += vr.read(fields::vdi::PHYSICAL_UTILISATION);
            }
        }
        tx.update(src, sr, |r| {
            r.write(SR::VIRTUAL_ALLOCATION, virt);
            r.write(SR::PHYSICAL_UTILISATION, phys);
        });
        Ok(())
    })
}

/// Re-read a VDI's allocated bytes from its file.
pub async fn refresh_vdi_usage(ctx: &Ctx, vdi: &str) -> Result<()> {
    let Some(path) = vdi_path(&ctx.server, &ctx.server.db.read(), vdi) else { return Ok(()) };
    let phys = blocking(move || Ok(allocated(&path))).await?;
    let _vc = &CLASS_VDI;
    ctx.write(|tx| {
        tx.put(vdi, fields::vdi::PHYSICAL_UTILISATION, phys);
        Ok(())
    })
}

// ------------------------------------------------------------ create

/// Create a VDI: its backing file, then its record.
pub async fn create_vdi(ctx: &Ctx, v: NewVdi<'_>) -> Result<String> {
    let mut row = store::blank_row(&CLASS_VDI);
    row.write(VDI::SR, Ref::new(v.sr));
    row.write(VDI::NAME_LABEL, v.name_label);
    row.write(VDI::NAME_DESCRIPTION, v.name_description);
    row.write(VDI::VIRTUAL_SIZE, v.virtual_size);
    row.write(VDI::TYPE, VdiType::from(v.vdi_type));
    row.write(VDI::SHARABLE, v.sharable);
    row.write(VDI::READ_ONLY, v.read_only);
    // The maps go in as given, in their key order.
    row.fields[VDI::OTHER_CONFIG.index] = v.other_config;
    row.fields[VDI::SM_CONFIG.index] = v.sm_config;
    create_vdi_row(ctx, row).await
}

/// Create a VDI from a full row (as the constructor builds it): the driver
/// makes the file (choosing the format and rounding the size), then the
/// record is inserted with the server-maintained fields filled in.
pub async fn create_vdi_row(ctx: &Ctx, mut row: Row) -> Result<String> {
    let s = &ctx.server;
    let (_vc, src) = (&CLASS_VDI, &CLASS_SR);
    let sr = s_of(row.get(fields::vdi::SR.index));
    let (driver, dir, sr_format) = {
        let st = s.db.read();
        let sr_row = st.get(src, &sr).ok_or_else(|| crate::handle_invalid(src, &sr))?;
        let dir = sr_dir(&st, &s.cfg.data_dir, &sr, &s.host).ok_or_else(|| crate::internal("SR has no directory"))?;
        (driver_of(sr_row)?, dir, Format::requested(sr_row.get(fields::sr::SM_CONFIG.index)))
    };
    if !driver.has("VDI_CREATE") {
        return Err(ApiError::SrOperationNotSupported { sr });
    }
    let format = Format::requested(row.get(fields::vdi::SM_CONFIG.index)).or(sr_format).unwrap_or(Format::Raw);
    let uuid = model::new_uuid();
    let _busy = Busy::mark(&sr, &uuid);
    let requested = row.read(fields::vdi::VIRTUAL_SIZE);
    let path = driver.vdi_file(&dir, &uuid, format);
    let (u2, p2) = (uuid.clone(), path.clone());
    let (size, phys) = blocking(move || Ok((driver.vdi_create(&dir, &u2, requested, format)?, allocated(&p2)))).await?;
    if format == Format::Qcow2 {
        if let Value::Struct(m) = &mut row.fields[fields::vdi::SM_CONFIG.index] {
            m.retain(|(k, _)| k != "type");
            m.push(("type".into(), Value::from("qcow2")));
        }
    }
    row.write(VDI::UUID, uuid.clone());
    row.write(VDI::LOCATION, uuid.clone());
    row.write(VDI::VIRTUAL_SIZE, size);
    row.write(VDI::PHYSICAL_UTILISATION, phys);
    row.write(VDI::MANAGED, true);
    row.write(VDI::MISSING, false);
    let r = model::new_ref();
    let res = ctx.write(|tx| {
        tx.insert(&r, row);
        Ok(())
    });
    if let Err(e) = res {
        crate::logged("removing the file of a failed VDI create", blocking(move || driver.vdi_delete(&path)).await);
        return Err(e);
    }
    refresh_sr_usage(ctx, &sr)?;
    Ok(r)
}

// ----------------------------------------------------------- destroy

/// Remove a VDI's file and record.
pub async fn destroy_vdi(ctx: &Ctx, vdi: &str) -> Result<()> {
    let s = &ctx.server;
    let vc = &CLASS_VDI;
    let (path, sr, loc, driver) = {
        let st = s.db.read();
        let row = st.get(vc, vdi).ok_or_else(|| crate::handle_invalid(vc, vdi))?;
        let sr = s_of(row.get(fields::vdi::SR.index));
        let driver = st.get(&CLASS_SR, &sr).and_then(|r| driver_of(r).ok());
        (vdi_path(s, &st, vdi), sr, s_of(row.get(fields::vdi::LOCATION.index)), driver)
    };
    let _busy = Busy::mark(&sr, &loc);
    let s2 = s.clone();
    let v2 = vdi.to_string();
    blocking(move || cbt_on_destroy(&s2, &v2)).await?;
    ctx.write(|tx| {
        tx.delete(vc, vdi);
        Ok(())
    })?;
    if let (Some(p), Some(d)) = (path, driver) {
        blocking(move || d.vdi_delete(&p)).await?;
    }
    refresh_sr_usage(ctx, &sr)
}

// -------------------------------------------------------------- copies

/// Copy a VDI's data into a new VDI on `sr` (sparse: zero blocks stay holes).
async fn duplicate(ctx: &Ctx, vdi: &str, sr: &str, name_suffix: &str, snapshot: bool) -> Result<String> {
    let s = &ctx.server;
    let vc = &CLASS_VDI;
    let (row, src_path) = {
        let st = s.db.read();
        let row = st.get(vc, vdi).cloned().ok_or_else(|| crate::handle_invalid(vc, vdi))?;
        (row, vdi_path(s, &st, vdi))
    };
    let vdi_type = row.read(VDI::TYPE);
    let new = create_vdi(
        ctx,
        NewVdi {
            sr,
            name_label: format!("{}{name_suffix}", row.read(VDI::NAME_LABEL)),
            name_description: row.read(VDI::NAME_DESCRIPTION),
            virtual_size: row.read(VDI::VIRTUAL_SIZE),
            vdi_type: vdi_type.as_str(),
            sharable: row.read(VDI::SHARABLE),
            read_only: row.read(VDI::READ_ONLY),
            other_config: row.get(VDI::OTHER_CONFIG.index).clone(),
            sm_config: row.get(VDI::SM_CONFIG.index).clone(),
        },
    )
    .await?;
    // A disk a running guest writes is copied by its hypervisor, at one
    // instant; its changed-block log then comes from the guest's dirty
    // bitmap instead of the file's writers.
    let target = vdi_path(s, &s.db.read(), &new);
    let writer = match (&src_path, &target) {
        (Some(_), Some(_)) => crate::xenops::disk_writer(s, vdi),
        _ => None,
    };
    let live_log = writer.is_some() && src_path.as_ref().is_some_and(|p| cbt::log_path(p).exists());
    let tracked = if snapshot && writer.is_none() {
        let (s2, v, n) = (s.clone(), vdi.to_string(), new.clone());
        match blocking(move || cbt_snapshot(&s2, &v, &n, false)).await {
            Ok(t) => t,
            Err(e) => {
                crate::logged("removing a VDI made by a failed snapshot", destroy_vdi(ctx, &new).await);
                return Err(e);
            }
        }
    } else {
        false
    };
    if src_path.is_some() {
        let copied = match (&writer, &target) {
            (Some(w), Some(t)) => crate::xenops::copy_in_use(ctx, w, t, live_log).await,
            _ => copy_data(ctx, vdi, &new, None, true).await.map(|()| None),
        };
        let dirty = match copied {
            Ok(d) => d,
            Err(e) => {
                if tracked {
                    // The disk's log went to the snapshot: give it back.
                    let (s2, v, n) = (s.clone(), vdi.to_string(), new.clone());
                    if let Err(e) = blocking(move || cbt_snapshot(&s2, &n, &v, true)).await {
                        tracing::warn!("VDI {vdi}: could not return its CBT log after a failed snapshot: {e}");
                    }
                }
                crate::logged("removing a VDI made by a failed copy", destroy_vdi(ctx, &new).await);
                return Err(e);
            }
        };
        if let (true, Some(t)) = (live_log, target.clone()) {
            let (s2, v) = (s.clone(), vdi.to_string());
            blocking(move || cbt_live_copy(&s2, &v, &t, snapshot, dirty.as_deref())).await?;
        }
    }
    if tracked {
        let (s2, v, n) = (s.clone(), vdi.to_string(), new.clone());
        blocking(move || cbt_snapshot(&s2, &v, &n, true)).await?;
    }
    let tracked = tracked || (live_log && snapshot);
    ctx.write(|tx| {
        tx.update(vc, &new, |r| {
            // Metadata xapi carries over to clones and snapshots.
            for f in [VDI::XENSTORE_DATA.index, VDI::ON_BOOT.index, VDI::ALLOW_CACHING.index] {
                r.fields[f] = row.get(f).clone();
            }
            if tracked {
                r.write(VDI::CBT_ENABLED, true);
            }
            if snapshot {
                r.write(VDI::IS_A_SNAPSHOT, true);
                r.write(VDI::SNAPSHOT_OF, Ref::new(vdi));
                r.write(VDI::SNAPSHOT_TIME, DateTime::now());
            }
        });
        Ok(())
    })?;
    refresh_vdi_usage(ctx, &new).await?;
    refresh_sr_usage(ctx, sr)?;
    Ok(new)
}

/// Copy the data of VDI `from` into VDI `to`. With `base`, only blocks
/// where `from` differs from `base` are written (the target is assumed to
/// hold `base`'s data); `fresh` says the target is newly made (all holes).
/// Raw to raw copies block by block keeping holes, with task progress and
/// cancellation; anything involving qcow2 goes through qemu-img.
pub async fn copy_data(ctx: &Ctx, from: &str, to: &str, base: Option<&str>, fresh: bool) -> Result<()> {
    let s = &ctx.server;
    let vc = &CLASS_VDI;
    let (src, dst, base_path, src_fmt, dst_fmt) = {
        let st = s.db.read();
        let fmt =
            |v: &str| st.get(vc, v).map(|r| Format::of_vdi(r.get(fields::vdi::SM_CONFIG.index))).unwrap_or(Format::Raw);
        (vdi_path(s, &st, from), vdi_path(s, &st, to), base.and_then(|b| vdi_path(s, &st, b)), fmt(from), fmt(to))
    };
    let (Some(src), Some(dst)) = (src, dst) else { return Ok(()) };
    if !fresh {
        let (s2, t) = (s.clone(), to.to_string());
        blocking(move || cbt_mark(&s2, &t, None)).await?;
    }
    let task = ctx.task.clone();
    let srv = s.clone();
    let io = (s.sr_io.of_vdi(s, from), s.sr_io.of_vdi(s, to));
    blocking(move || {
        for p in [Some(&src), Some(&dst), base_path.as_ref()].into_iter().flatten() {
            attachable(p)?;
        }
        if src_fmt == Format::Raw && dst_fmt == Format::Raw {
            block_copy(&src, &dst, base_path.as_deref(), fresh, (&io.0, &io.1), |p| {
                if let Some(t) = &task {
                    if srv.tasks.is_cancelling(t) {
                        return false;
                    }
                    crate::task::set_progress(&srv, t, p);
                }
                true
            })
            .map_err(|e| match e {
                ApiError::TaskCancelled { .. } => ApiError::TaskCancelled { task: task.clone().unwrap_or_default() },
                e => e,
            })
        } else {
            qemu::convert(&src, src_fmt.name(), &dst, dst_fmt.name(), !fresh)
        }
    })
    .await
}

fn io(e: std::io::Error) -> ApiError {
    driver::io_error("copy", e)
}

/// Copy `from` to `to` in 1 MiB blocks, leaving all-zero blocks as holes.
/// `progress` gets 0..1 and returns false to cancel.
pub fn sparse_copy(from: &Path, to: &Path, progress: impl FnMut(f64) -> bool) -> Result<()> {
    let none = crate::rrd::io::Counters::default();
    block_copy(from, to, None, true, (&none, &none), progress)
}

/// The block copier behind [`sparse_copy`] and VDI.copy: a block is written
/// when it differs from the reference (`base`, else the target's current
/// content; for a fresh target, zeros, and the source's holes are skipped
/// without reading them). Progress is reported per percent. `counts` counts
/// the reads of the source's SR and the I/O on the target's (reference
/// reads of `base` included, as it lives beside the target).
pub fn block_copy(
    from: &Path,
    to: &Path,
    base: Option<&Path>,
    fresh: bool,
    counts: (&crate::rrd::io::Counters, &crate::rrd::io::Counters),
    mut progress: impl FnMut(f64) -> bool,
) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    const BLK: usize = 1 << 20;
    static ZERO: [u8; BLK] = [0; BLK];
    let mut src = files::open_vdi(from, false).map_err(|e| unavailable(from, e))?;
    let len = src.metadata().map_err(io)?.len();
    let mut dst = files::open_vdi(to, true).map_err(|e| unavailable(to, e))?;
    if fresh || dst.metadata().map_err(io)?.len() < len {
        dst.set_len(len).map_err(io)?;
    }
    let mut base = match base {
        Some(b) => Some(files::open_vdi(b, false).map_err(|e| unavailable(b, e))?),
        None => None,
    };
    let against_zero = fresh && base.is_none();
    let (mut buf, mut refb) = (vec![0u8; BLK], vec![0u8; BLK]);
    let mut off = 0u64;
    let mut last_pct = 0u64;
    while off < len {
        if against_zero {
            match files::next_data(&src, off) {
                Some(d) if d < len => off = d - d % BLK as u64,
                _ => off = len,
            }
        }
        if off < len {
            src.seek(SeekFrom::Start(off)).map_err(io)?;
            let n = read_full(&mut src, &mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            counts.0.read(n as u64);
            let differs = if against_zero {
                buf[..n] != ZERO[..n]
            } else {
                let r = match &mut base {
                    Some(b) => b,
                    None => &mut dst,
                };
                r.seek(SeekFrom::Start(off)).map_err(io)?;
                let m = read_full(r, &mut refb[..n]).map_err(io)?;
                counts.1.read(m as u64);
                refb[m..n].fill(0);
                buf[..n] != refb[..n]
            };
            if differs {
                dst.seek(SeekFrom::Start(off)).map_err(io)?;
                dst.write_all(&buf[..n]).map_err(io)?;
                counts.1.wrote(n as u64);
            }
            off += n as u64;
        }
        let pct = off * 100 / len.max(1);
        if pct != last_pct || off >= len {
            last_pct = pct;
            if !progress(off.min(len) as f64 / len.max(1) as f64) {
                return Err(ApiError::TaskCancelled { task: String::new() });
            }
        }
    }
    dst.sync_all().map_err(io)
}

/// Read until `buf` is full or the end of the file.
fn read_full(f: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub async fn clone_vdi(ctx: &Ctx, vdi: &str) -> Result<String> {
    let sr = sr_of(&ctx.server, vdi)?;
    duplicate(ctx, vdi, &sr, "", false).await
}

pub async fn snapshot_vdi(ctx: &Ctx, vdi: &str) -> Result<String> {
    let sr = sr_of(&ctx.server, vdi)?;
    duplicate(ctx, vdi, &sr, "", true).await
}

pub async fn copy_vdi(ctx: &Ctx, vdi: &str, sr: &str) -> Result<String> {
    duplicate(ctx, vdi, sr, "", false).await
}

// ------------------------------------------------------- raw transfers

/// A VDI's data as a raw file, for streaming it out or in. Raw VDIs are
/// used in place; a qcow2 VDI goes through a temporary raw file next to it
/// (converted from it before reading, into it by [`Raw::commit`]), which is
/// removed on drop.
pub struct Raw {
    pub path: PathBuf,
    pub size: u64,
    qcow2: Option<PathBuf>,
}

impl Raw {
    fn locate(s: &Server, vdi: &str) -> Result<(Option<PathBuf>, Format, u64)> {
        let vc = &CLASS_VDI;
        let st = s.db.read();
        let row = st.get(vc, vdi).ok_or_else(|| crate::handle_invalid(vc, vdi))?;
        let size = row.read(fields::vdi::VIRTUAL_SIZE).max(0) as u64;
        Ok((vdi_path(s, &st, vdi), Format::of_vdi(row.get(fields::vdi::SM_CONFIG.index)), size))
    }

    fn temp(next_to: &Path) -> PathBuf {
        next_to.with_file_name(format!(".xfer-{}.tmp", model::new_uuid()))
    }

    /// For reading (blocking: a qcow2 VDI is converted first). None: the VDI
    /// has no file (its data reads as zeros).
    pub fn for_reading(s: &Server, vdi: &str) -> Result<Option<Raw>> {
        let (path, format, size) = Raw::locate(s, vdi)?;
        let Some(path) = path else { return Ok(None) };
        attachable(&path)?;
        if format == Format::Raw {
            return Ok(Some(Raw { path, size, qcow2: None }));
        }
        let tmp = Raw::temp(&path);
        let raw = Raw { path: tmp.clone(), size, qcow2: Some(path.clone()) };
        qemu::convert(&path, "qcow2", &tmp, "raw", false)?;
        Ok(Some(raw))
    }

    /// For writing: the VDI's own file, or an empty sparse temporary one.
    pub fn for_writing(s: &Server, vdi: &str) -> Result<Option<Raw>> {
        let (path, format, size) = Raw::locate(s, vdi)?;
        let Some(path) = path else { return Ok(None) };
        attachable(&path)?;
        if format == Format::Raw {
            return Ok(Some(Raw { path, size, qcow2: None }));
        }
        let tmp = Raw::temp(&path);
        let f = std::fs::File::create(&tmp).map_err(io)?;
        f.set_len(size).map_err(io)?;
        Ok(Some(Raw { path: tmp, size, qcow2: Some(path) }))
    }

    /// Open the raw data: the VDI's own file only while it stays inside its
    /// SR (see [`files::open_vdi`]).
    /// A file that has gone is made again when writing.
    pub fn open(&self, write: bool) -> Result<std::fs::File> {
        match files::open_vdi(&self.path, write) {
            Err(e) if write && e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&self.path).map_err(io)
            }
            r => r.map_err(|e| unavailable(&self.path, e)),
        }
    }

    /// Whether this is the VDI's own file (a raw VDI), not a temporary copy.
    pub fn in_place(&self) -> bool {
        self.qcow2.is_none()
    }

    /// Put written data into a qcow2 VDI (nothing to do for raw ones).
    pub fn commit(&self) -> Result<()> {
        match &self.qcow2 {
            Some(q) => qemu::convert(&self.path, "raw", q, "qcow2", true),
            None => Ok(()),
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if self.qcow2.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A file to send for `/export_raw_vdi`: the raw data (`len` is the disk's
/// size), or a qcow2 image made from it (removed on drop).
pub struct ExportFile {
    pub path: PathBuf,
    pub len: u64,
    _raw: Option<Raw>,
    temp: bool,
}

impl Drop for ExportFile {
    fn drop(&mut self) {
        if self.temp {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl ExportFile {
    /// Open the file to send (checked as [`Raw::open`] is).
    pub fn open(&self) -> Result<std::fs::File> {
        files::open_vdi(&self.path, false).map_err(|e| unavailable(&self.path, e))
    }

    /// Whether this is the VDI's own file (a raw VDI read in place), so that
    /// every reader sees the same data.
    pub fn in_place(&self) -> bool {
        !self.temp && self._raw.as_ref().is_some_and(Raw::in_place)
    }
}

/// Prepare `/export_raw_vdi` in `format` (raw or qcow2). Blocking.
pub fn export_file(s: &Server, vdi: &str, format: &str) -> Result<ExportFile> {
    let bad = || ApiError::InvalidValue { field: "format".into(), value: format.to_string() };
    let raw = Raw::for_reading(s, vdi)?;
    let Some(raw) = raw else { return Err(ApiError::VdiMissing { sr: sr_of(s, vdi)?, vdi: vdi.to_string() }) };
    let out_fmt = match format {
        "raw" => return Ok(ExportFile { path: raw.path.clone(), len: raw.size, _raw: Some(raw), temp: false }),
        // VHD is made by [`vhd_export`].
        "qcow2" => "qcow2",
        _ => return Err(bad()),
    };
    let tmp = Raw::temp(&raw.path);
    let mut out = ExportFile { path: tmp.clone(), len: 0, _raw: None, temp: true };
    qemu::convert_with(&raw.path, "raw", &tmp, out_fmt, "")?;
    out.len = std::fs::metadata(&tmp).map_err(io)?.len();
    Ok(out)
}

/// The VDI a snapshot was taken of, else the VDI itself: snapshots of one
/// disk share that root, so one may serve as another's base.
fn chain_root(st: &State, vdi: &str) -> String {
    let vc = &CLASS_VDI;
    let Some(row) = st.get(vc, vdi) else { return vdi.to_string() };
    let of = s_of(row.get(fields::vdi::SNAPSHOT_OF.index));
    if row.read(fields::vdi::IS_A_SNAPSHOT) && st.get(vc, &of).is_some() {
        of
    } else {
        vdi.to_string()
    }
}

/// Whether `base` may be the base of a differencing export of `vdi`: the
/// same disk, a snapshot of it, or a sibling snapshot.
pub fn same_chain(s: &Server, vdi: &str, base: &str) -> bool {
    let st = s.db.read();
    chain_root(&st, vdi) == chain_root(&st, base)
}

/// A VHD to send for `/export_raw_vdi?format=vhd`: the layout (its length
/// is known before a byte is sent) and the raw data its blocks come from.
pub struct VhdExport {
    pub layout: vhd::Layout,
    pub file: std::fs::File,
    _raw: Raw,
}

impl VhdExport {
    /// Send the image to `out`; `progress` gets 0..1 and returns false to stop.
    pub fn write(&self, out: &mut impl std::io::Write, mut progress: impl FnMut(f64) -> bool) -> Result<()> {
        let ioe = |e: std::io::Error| driver::io_error("export", e);
        out.write_all(&self.layout.prologue()).map_err(ioe)?;
        let mut buf = Vec::new();
        let n = self.layout.blocks.len().max(1);
        for (i, b) in self.layout.blocks.iter().enumerate() {
            self.layout.write_block(&self.file, *b, &mut buf, out).map_err(ioe)?;
            if !progress((i + 1) as f64 / n as f64) {
                return Err(ApiError::TaskCancelled { task: String::new() });
            }
        }
        out.write_all(&self.layout.epilogue()).map_err(ioe)?;
        out.flush().map_err(ioe)
    }
}

/// Which blocks of `src` (a raw disk of `size` bytes) to send: those that
/// hold anything but zeros, or, against `base`, those that differ from it
/// (past the base's end it reads as zeros). Holes in both files are skipped
/// without reading. Blocking; `progress` as for [`block_copy`].
fn changed_blocks(
    src: &std::fs::File,
    size: u64,
    base: Option<&std::fs::File>,
    candidates: Option<&cbt::Bitmap>,
    mut progress: impl FnMut(f64) -> bool,
) -> Result<Vec<u64>> {
    use std::os::unix::fs::FileExt;
    let blk = vhd::BLOCK;
    let ioe = |e: std::io::Error| driver::io_error("export", e);
    let read = |f: &std::fs::File, off: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let mut n = 0;
        while n < buf.len() {
            match f.read_at(&mut buf[n..], off + n as u64)? {
                0 => break,
                k => n += k,
            }
        }
        buf[n..].fill(0);
        Ok(())
    };
    let (mut a, mut b) = (vec![0u8; blk as usize], vec![0u8; blk as usize]);
    let mut out = Vec::new();
    let mut off = 0u64;
    let mut last = 0u64;
    while off < size {
        // The next offset where either file holds data.
        let next = |f: &std::fs::File| files::next_data(f, off).unwrap_or(u64::MAX);
        let data = base.map(next).unwrap_or(u64::MAX).min(next(src));
        if data >= size {
            break;
        }
        off = data - data % blk;
        let n = (size - off).min(blk) as usize;
        // Changed-block tracking says which blocks can differ at all.
        if candidates.is_some_and(|c| !c.any_in_vhd_block(off / blk)) {
            off += n as u64;
            continue;
        }
        read(src, off, &mut a[..n]).map_err(ioe)?;
        let differs = match base {
            Some(bf) => {
                read(bf, off, &mut b[..n]).map_err(ioe)?;
                a[..n] != b[..n]
            }
            None => !xva::is_zero(&a[..n]),
        };
        if differs {
            out.push(off / blk);
        }
        off += n as u64;
        let pct = off * 100 / size.max(1);
        if pct != last {
            last = pct;
            if !progress(off as f64 / size as f64) {
                return Err(ApiError::TaskCancelled { task: String::new() });
            }
        }
    }
    Ok(out)
}

/// Prepare a VHD export of `vdi`: dynamic, or differencing against `base`
/// (checked by the caller to be of the same chain). Blocking.
pub fn vhd_export(s: &Server, vdi: &str, base: Option<&str>, progress: impl FnMut(f64) -> bool) -> Result<VhdExport> {
    let missing = |v: &str| -> Result<ApiError> { Ok(ApiError::VdiMissing { sr: sr_of(s, v)?, vdi: v.to_string() }) };
    let uuid = |v: &str| {
        let vc = &CLASS_VDI;
        s.db.read().get(vc, v).map(|r| vhd::uuid_bytes(&s_of(r.get(fields::vdi::UUID.index)))).unwrap_or([0; 16])
    };
    let Some(raw) = Raw::for_reading(s, vdi)? else { return Err(missing(vdi)?) };
    let file = raw.open(false)?;
    let base_raw = match base {
        Some(b) => match Raw::for_reading(s, b)? {
            Some(r) => Some(r),
            None => return Err(missing(b)?),
        },
        None => None,
    };
    let base_file = match &base_raw {
        Some(r) => Some(r.open(false)?),
        None => None,
    };
    // With CBT logs covering base..vdi only their blocks are compared.
    let candidates = base.and_then(|b| match cbt_changed(s, b, vdi) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!("delta export of {vdi}: no CBT shortcut ({e}); comparing every block");
            None
        }
    });
    let blocks = changed_blocks(&file, raw.size, base_file.as_ref(), candidates.as_ref(), progress)?;
    let disk_type = if base.is_some() { vhd::DiskType::Differencing } else { vhd::DiskType::Dynamic };
    let layout = vhd::Layout::new(raw.size, blocks, disk_type, vhd::uuid_bytes(&model::new_uuid()), base.map(uuid));
    Ok(VhdExport { layout, file, _raw: raw })
}

// ------------------------------------------------- changed block tracking

fn cbt_io(e: std::io::Error) -> ApiError {
    driver::io_error("changed block tracking", e)
}

/// The CBT log of a VDI (whether or not it exists).
fn cbt_log(s: &Server, st: &State, vdi: &str) -> Option<PathBuf> {
    vdi_path(s, st, vdi).map(|p| cbt::log_path(&p))
}

/// Note that byte ranges `(offset, length)` (None: all) of `vdi` are about
/// to be written: marked in its CBT log, if it keeps one, before the
/// caller writes. Blocking.
pub fn cbt_mark(s: &Server, vdi: &str, ranges: Option<&[(u64, u64)]>) -> Result<()> {
    let (path, size) = cbt_target(s, vdi);
    match path {
        Some(p) => cbt::mark(&p, size, ranges).map_err(cbt_io),
        None => Ok(()),
    }
}

/// The data file and size of `vdi`, for its CBT log.
fn cbt_target(s: &Server, vdi: &str) -> (Option<PathBuf>, u64) {
    let st = s.db.read();
    let size = st.get(&CLASS_VDI, vdi).map(|r| r.read(fields::vdi::VIRTUAL_SIZE)).unwrap_or(0).max(0);
    (vdi_path(s, &st, vdi), size as u64)
}

/// Open a batch of writes to `vdi` whose blocks are learnt as they are
/// written (`cbt::begin`); false if it keeps no log. Blocking.
pub fn cbt_begin(s: &Server, vdi: &str) -> Result<bool> {
    match cbt_target(s, vdi).0 {
        Some(p) => cbt::begin(&p).map_err(cbt_io),
        None => Ok(false),
    }
}

/// Close a batch with the byte ranges it wrote (`cbt::end`). Blocking.
pub fn cbt_end(s: &Server, vdi: &str, written: &[(u64, u64)]) -> Result<()> {
    match cbt_target(s, vdi) {
        (Some(p), size) => cbt::end(&p, size, written).map_err(cbt_io),
        (None, _) => Ok(()),
    }
}

/// Whether `vdi` keeps a changed-block log.
pub fn cbt_tracked(s: &Server, vdi: &str) -> bool {
    let log = cbt_log(s, &s.db.read(), vdi);
    log.is_some_and(|p| p.is_file())
}

/// A disk's chain for CBT: its snapshots oldest first, then the disk.
fn cbt_chain(st: &State, vdi: &str) -> Vec<String> {
    let vc = &CLASS_VDI;
    let root = chain_root(st, vdi);
    let mut snaps: Vec<(u64, String)> = st
        .table(vc)
        .iter()
        .filter(|(r, row)| {
            r.as_str() != root
                && row.read(fields::vdi::IS_A_SNAPSHOT)
                && row.read(fields::vdi::SNAPSHOT_OF).as_str() == root.as_str()
        })
        // Creation order: snapshot_time has only second resolution.
        .map(|(r, _)| (st.table(vc).rows.get(r.as_str()).map(|e| e.created).unwrap_or(0), r.clone()))
        .collect();
    snaps.sort();
    let mut out: Vec<String> = snaps.into_iter().map(|(_, r)| r).collect();
    out.push(root);
    out
}

/// VDI.enable_cbt: start an empty log (an existing one is kept). On a disk
/// a running guest writes, the log reads as every block changed until the
/// next snapshot, from which the guest's dirty bitmap takes over.
pub async fn cbt_enable(ctx: &Ctx, vdi: &str) -> Result<()> {
    let s = ctx.server.clone();
    let vc = &CLASS_VDI;
    let (data, size) = {
        let st = s.db.read();
        let row = st.get(vc, vdi).ok_or_else(|| crate::handle_invalid(vc, vdi))?;
        let size = row.read(fields::vdi::VIRTUAL_SIZE).max(0) as u64;
        let data = vdi_path(&s, &st, vdi)
            .ok_or_else(|| ApiError::VdiMissing { sr: sr_of(&s, vdi).unwrap_or_default(), vdi: vdi.to_string() })?;
        (data, size)
    };
    let running = crate::xenops::disk_writer(&s, vdi).is_some();
    blocking(move || {
        let log = cbt::log_path(&data);
        if cbt::read(&log).map_err(cbt_io)?.is_none() {
            cbt::write(&log, &cbt::Bitmap::new(size)).map_err(cbt_io)?;
        }
        if running {
            cbt::begin(&data).map_err(cbt_io)?;
        }
        Ok(())
    })
    .await?;
    ctx.write(|tx| {
        tx.put(vdi, fields::vdi::CBT_ENABLED, true);
        Ok(())
    })
}

/// VDI.disable_cbt: the disk's own log goes; its snapshots keep theirs.
pub async fn cbt_disable(ctx: &Ctx, vdi: &str) -> Result<()> {
    let s = ctx.server.clone();
    let _vc = &CLASS_VDI;
    let log = cbt_log(&s, &s.db.read(), vdi);
    ctx.write(|tx| {
        tx.put(vdi, fields::vdi::CBT_ENABLED, false);
        Ok(())
    })?;
    if let Some(log) = log {
        blocking(move || cbt::remove(&log).map_err(cbt_io)).await?;
    }
    Ok(())
}

/// At a snapshot of `vdi` into `snap`: the snapshot takes over the disk's
/// log (the changes up to now) and the disk starts an empty one. Blocks
/// written while the data was being copied are then added to the
/// snapshot's log too (`after_copy`), so neither side misses them.
fn cbt_snapshot(s: &Server, vdi: &str, snap: &str, after_copy: bool) -> Result<bool> {
    let (from, to) = {
        let st = s.db.read();
        (cbt_log(s, &st, vdi), cbt_log(s, &st, snap))
    };
    let (Some(from), Some(to)) = (from, to) else { return Ok(false) };
    let Some(live) = cbt::read(&from).map_err(cbt_io)? else { return Ok(false) };
    if after_copy {
        let mut taken = cbt::read(&to).map_err(cbt_io)?.unwrap_or_else(|| cbt::Bitmap::new(live.size));
        taken.union(&live);
        cbt::write(&to, &taken).map_err(cbt_io)?;
    } else {
        cbt::write(&to, &live).map_err(cbt_io)?;
        cbt::write(&from, &cbt::Bitmap::new(live.size)).map_err(cbt_io)?;
        // A batch cut short by a crash is in what the snapshot took.
        cbt::settled(&from).map_err(cbt_io)?;
    }
    Ok(true)
}

/// After a copy of `vdi` made by the guest's hypervisor while the guest
/// wrote it: `dirty` is what the guest wrote since the disk's last snapshot
/// (None: unknown, every block). A snapshot (its data at `copy`) takes the
/// disk's log with those blocks and the disk starts afresh; a plain copy
/// leaves the log to the disk, with those blocks added. The disk's batch
/// marker (the guest still runs) stays either way. Blocking.
fn cbt_live_copy(s: &Server, vdi: &str, copy: &Path, snapshot: bool, dirty: Option<&[(u64, u64)]>) -> Result<()> {
    let (Some(data), size) = cbt_target(s, vdi) else { return Ok(()) };
    if !snapshot {
        return cbt::mark(&data, size, dirty).map_err(cbt_io);
    }
    cbt::hand_over_running(&data, copy, size, dirty).map(|_| ()).map_err(cbt_io)
}

/// Before `vdi` (with a log) is destroyed: its blocks move to the next
/// newer member of its chain that keeps a log, so that range stays
/// answerable. Blocking.
fn cbt_on_destroy(s: &Server, vdi: &str) -> Result<()> {
    let (mine, next) = {
        let st = s.db.read();
        let chain = cbt_chain(&st, vdi);
        let next = chain.iter().position(|v| v == vdi).and_then(|i| chain.get(i + 1)).and_then(|n| cbt_log(s, &st, n));
        (cbt_log(s, &st, vdi), next)
    };
    let Some(mine) = mine else { return Ok(()) };
    let Some(map) = cbt::read(&mine).map_err(cbt_io)? else { return Ok(()) };
    if let Some(next) = next {
        if let Some(mut n) = cbt::read(&next).map_err(cbt_io)? {
            n.union(&map);
            cbt::write(&next, &n).map_err(cbt_io)?;
        }
    }
    cbt::remove(&mine).map_err(cbt_io)
}

/// The blocks changed between `from` and `to` (two members of one chain,
/// in either order), from the logs after the older up to the newer.
pub fn cbt_changed(s: &Server, from: &str, to: &str) -> Result<cbt::Bitmap> {
    let (logs, size) = {
        let st = s.db.read();
        let vc = &CLASS_VDI;
        let chain = cbt_chain(&st, to);
        let (Some(i), Some(j)) = (chain.iter().position(|v| v == from), chain.iter().position(|v| v == to)) else {
            return Err(ApiError::SrBackendFailure {
                status: "VDIs are not in the same CBT chain".into(),
                stdout: String::new(),
                stderr: format!("{from} and {to} are not snapshots of one disk"),
            });
        };
        let (lo, hi) = (i.min(j), i.max(j));
        let no_log = |v: &str| ApiError::VdiNoCbtMetadata { vdi: v.to_string() };
        let has = |v: &str| st.get(vc, v).is_some_and(|r| r.read(fields::vdi::CBT_ENABLED));
        if !has(&chain[lo]) {
            return Err(no_log(&chain[lo]));
        }
        let mut logs = Vec::new();
        for v in &chain[lo + 1..=hi] {
            if !has(v) {
                return Err(no_log(v));
            }
            logs.push((v.clone(), cbt_log(s, &st, v).ok_or_else(|| no_log(v))?));
        }
        let size = st.get(vc, to).and_then(|r| r.get(fields::vdi::VIRTUAL_SIZE.index).as_int()).unwrap_or(0).max(0);
        (logs, size as u64)
    };
    let mut out = cbt::Bitmap::new(size);
    for (v, log) in logs {
        match cbt::read(&log).map_err(cbt_io)? {
            Some(m) => out.union(&m),
            None => return Err(ApiError::VdiNoCbtMetadata { vdi: v }),
        }
    }
    Ok(out)
}

/// VDI.data_destroy: drop a snapshot's data, keep its record and CBT log.
pub async fn cbt_data_destroy(ctx: &Ctx, vdi: &str) -> Result<()> {
    let s = ctx.server.clone();
    let vc = &CLASS_VDI;
    let (path, driver) = {
        let st = s.db.read();
        let row = st.get(vc, vdi).ok_or_else(|| crate::handle_invalid(vc, vdi))?;
        if row.read(fields::vdi::TYPE) == VdiType::CbtMetadata {
            return Ok(());
        }
        if !row.read(VDI::IS_A_SNAPSHOT) {
            return Err(ApiError::OperationNotAllowed {
                reason: "VDI.data_destroy is only allowed on snapshots".into(),
            });
        }
        if !row.read(VDI::CBT_ENABLED) {
            return Err(ApiError::VdiNoCbtMetadata { vdi: vdi.to_string() });
        }
        let sr = s_of(row.get(fields::vdi::SR.index));
        let driver = st.get(&CLASS_SR, &sr).map(|r| driver_of(r)).transpose()?;
        (vdi_path(&s, &st, vdi), driver)
    };
    ctx.write(|tx| {
        tx.put(vdi, fields::vdi::TYPE, VdiType::CbtMetadata);
        Ok(())
    })?;
    if let (Some(p), Some(d)) = (path, driver) {
        blocking(move || d.vdi_delete(&p)).await?;
    }
    refresh_vdi_usage(ctx, vdi).await
}

pub fn sr_of(s: &Server, vdi: &str) -> Result<String> {
    let vc = &CLASS_VDI;
    let st = s.db.read();
    let row = st.get(vc, vdi).ok_or_else(|| crate::handle_invalid(vc, vdi))?;
    Ok(s_of(row.get(fields::vdi::SR.index)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_at(p: &Path, off: u64, data: &[u8]) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(data).unwrap();
    }

    #[test]
    fn sparse_copy_keeps_holes() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::File::create(&a).unwrap().set_len(8 << 20).unwrap();
        write_at(&a, 3 << 20, b"hello");
        std::fs::File::create(&b).unwrap();
        let mut calls = 0;
        sparse_copy(&a, &b, |_| {
            calls += 1;
            true
        })
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(allocated(&b) <= 1 << 20, "only the written block is allocated");
        assert!(calls <= 101);
        assert!(sparse_copy(&a, &b, |_| false).is_err(), "cancellation stops the copy");
    }

    #[test]
    fn block_copy_into_existing_target() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst, base) = (t.path().join("s"), t.path().join("d"), t.path().join("b"));
        for p in [&src, &dst, &base] {
            std::fs::File::create(p).unwrap().set_len(4 << 20).unwrap();
        }
        write_at(&src, 0, b"new");
        write_at(&dst, 2 << 20, b"stale");
        // Without a base the target ends up equal to the source, zeros included.
        let none = crate::rrd::io::Counters::default();
        block_copy(&src, &dst, None, false, (&none, &none), |_| true).unwrap();
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        // With a base only the blocks where the source differs from it are
        // written: block 2 is the same in both, so the target keeps its own.
        write_at(&src, 2 << 20, b"same!");
        write_at(&base, 2 << 20, b"same!");
        write_at(&dst, 2 << 20, b"local");
        write_at(&src, 1 << 20, b"delta");
        block_copy(&src, &dst, Some(&base), false, (&none, &none), |_| true).unwrap();
        assert!(none.totals()[3] > 0, "writes are counted");
        let d = std::fs::read(&dst).unwrap();
        assert_eq!(&d[0..3], b"new");
        assert_eq!(&d[1 << 20..(1 << 20) + 5], b"delta");
        assert_eq!(&d[2 << 20..(2 << 20) + 5], b"local");
    }
}

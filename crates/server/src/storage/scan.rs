//! SR.scan and SR.update: make the database agree with storage.
//!
//! A scan lists the driver's files, then in one transaction forgets VDIs
//! whose file vanished, introduces files that have no VDI, and refreshes
//! sizes. Files being created or removed right now (busy) are left alone,
//! and only VDIs that existed before the listing may be forgotten, so a scan
//! never races a concurrent VDI.create or VDI.destroy.

use super::driver::{Driver, Found};
use super::files::statvfs;
use super::{blocking, busy_in, driver_of, plugged_pbd, refresh_sr_usage, sr_dir};
use crate::rows::members;
use crate::{ApiError, Ctx, Result};
use model::schema::{CLASS_SR, CLASS_VBD, CLASS_VBD_METRICS, CLASS_VDI};
use model::types::fields;
use model::types::fields::vdi as VDI;
use model::types::VdiType;
use model::{Ref, Row, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use store::Txn;

/// The sm_config key recording a size given to SR.create / SR.set_physical_size.
pub const DECLARED_SIZE: &str = "declared-size";

/// What a scan or update needs to know about an attached SR.
struct Attached {
    driver: Driver,
    dir: PathBuf,
    declared: Option<i64>,
}

fn attached(ctx: &Ctx, sr: &str) -> Result<Attached> {
    let s = &ctx.server;
    let src = &CLASS_SR;
    let st = s.db.read();
    let row = st.get(src, sr).ok_or_else(|| crate::handle_invalid(src, sr))?;
    let driver = driver_of(row)?;
    if plugged_pbd(&st, sr, &s.host).is_none() {
        return Err(ApiError::SrHasNoPbds { sr: sr.to_string() });
    }
    let dir = sr_dir(&st, &s.cfg.data_dir, sr, &s.host).ok_or_else(|| crate::internal("SR has no directory"))?;
    let declared = row.get(fields::sr::SM_CONFIG.index).map_str(DECLARED_SIZE).and_then(|v| v.parse().ok());
    Ok(Attached { driver, dir, declared })
}

/// Delete a VDI record and the VBDs that point at it (xapi's database GC
/// removes such VBDs too). The file is not touched.
pub fn forget_vdi(tx: &mut Txn, vdi: &str) {
    let (vc, bc) = (&CLASS_VDI, &CLASS_VBD);
    let Some(row) = tx.get(vc, vdi).cloned() else { return };
    for b in members(row.get(fields::vdi::VBDS.index)) {
        if let Some(m) = tx.get(bc, &b).map(|r| r.read(fields::vbd::METRICS).into_string()) {
            tx.delete(&CLASS_VBD_METRICS, &m);
        }
        tx.delete(bc, &b);
    }
    tx.delete(vc, vdi);
}

/// The SR's VDIs by location, as a transaction sees them.
fn vdis_by_location(tx: &Txn, sr: &str, sr_row: &Row) -> BTreeMap<String, String> {
    let vc = &CLASS_VDI;
    let mut out = BTreeMap::new();
    for v in members(sr_row.get(fields::sr::VDIS.index)) {
        if let Some(r) = tx.get(vc, &v).filter(|r| r.read(fields::vdi::SR).as_str() == sr) {
            out.insert(r.read(fields::vdi::LOCATION), v);
        }
    }
    out
}

fn new_vdi_row(driver: Driver, f: &Found, uuid: String, sr: &str) -> Row {
    let iso = driver == Driver::Iso;
    let mut sm_config = BTreeMap::new();
    if f.format == super::Format::Qcow2 {
        sm_config.insert("type".to_string(), "qcow2".to_string());
    }
    let mut row = crate::rows::new_row(VDI::UUID);
    row.write(VDI::UUID, uuid);
    row.write(VDI::NAME_LABEL, if iso { f.location.clone() } else { String::new() });
    row.write(VDI::SR, Ref::new(sr));
    row.write(VDI::VIRTUAL_SIZE, f.virtual_size);
    row.write(VDI::PHYSICAL_UTILISATION, f.physical_utilisation);
    row.write(VDI::TYPE, VdiType::User);
    // ISO images are read-only media any number of VMs may use.
    row.write(VDI::SHARABLE, iso);
    row.write(VDI::READ_ONLY, iso);
    row.write(VDI::OTHER_CONFIG, BTreeMap::new());
    row.write(VDI::LOCATION, f.location.clone());
    row.write(VDI::MANAGED, true);
    row.write(VDI::SM_CONFIG, sm_config);
    row
}

pub async fn scan_sr(ctx: &Ctx, sr: &str) -> Result<()> {
    let a = attached(ctx, sr)?;
    let src = &CLASS_SR;
    // What existed before the listing: only these may be forgotten.
    let (before, busy_before) = {
        let st = ctx.server.db.read();
        let row = st.get(src, sr).ok_or_else(|| crate::handle_invalid(src, sr))?;
        let vc = &CLASS_VDI;
        let before: BTreeMap<String, String> = members(row.get(fields::sr::VDIS.index))
            .into_iter()
            .filter_map(|v| st.get(vc, &v).map(|r| (r, v)))
            // A snapshot whose data was destroyed keeps only its CBT log.
            .filter(|(r, _)| r.read(fields::vdi::TYPE) != VdiType::CbtMetadata)
            .map(|(r, v)| (r.read(fields::vdi::LOCATION), v))
            .collect();
        (before, busy_in(sr))
    };
    let (driver, dir) = (a.driver, a.dir.clone());
    let (found, total) = blocking(move || Ok((driver.scan(&dir)?, statvfs(&dir).map(|t| t.0).unwrap_or(0)))).await?;
    let vc = &CLASS_VDI;
    ctx.write(|tx| {
        let Some(row) = tx.get(src, sr).cloned() else { return Ok(()) };
        let busy_now = busy_in(sr);
        let now = vdis_by_location(tx, sr, &row);
        let seen: BTreeSet<&str> = found.iter().map(|f| f.location.as_str()).collect();
        for (loc, r) in &before {
            if !seen.contains(loc.as_str()) && !busy_now.contains(loc) && now.get(loc) == Some(r) {
                forget_vdi(tx, r);
            }
        }
        let mut taken = BTreeSet::new();
        for f in &found {
            let loc = &f.location;
            if let Some(r) = now.get(loc) {
                tx.update(vc, r, |row| {
                    row.write(VDI::VIRTUAL_SIZE, f.virtual_size);
                    row.write(VDI::PHYSICAL_UTILISATION, f.physical_utilisation);
                    row.write(VDI::MISSING, false);
                });
                continue;
            }
            if before.contains_key(loc) || busy_before.contains(loc) || busy_now.contains(loc) {
                continue;
            }
            // A file named by a free uuid keeps it as the VDI's uuid.
            let free = |u: &str| tx.state().table(vc).by_uuid(u).is_none() && !taken.contains(u);
            let uuid = if matches!(a.driver, Driver::Ext | Driver::File) && free(loc) {
                loc.clone()
            } else {
                model::new_uuid()
            };
            taken.insert(uuid.clone());
            tx.insert(&model::new_ref(), new_vdi_row(a.driver, f, uuid, sr));
        }
        tx.update(src, sr, |r| {
            r.write(fields::sr::PHYSICAL_SIZE, a.declared.unwrap_or(total));
            if let Value::Struct(m) = &mut r.fields[fields::sr::OTHER_CONFIG.index] {
                m.retain(|(k, _)| k != "dirty");
            }
        });
        Ok(())
    })?;
    refresh_sr_usage(ctx, sr)
}

/// SR.update: re-read sizes from storage (no VDIs are added or removed).
pub async fn update_sr(ctx: &Ctx, sr: &str) -> Result<()> {
    let a = attached(ctx, sr)?;
    let s = &ctx.server;
    let vc = &CLASS_VDI;
    let files: Vec<(String, PathBuf, super::Format)> = {
        let st = s.db.read();
        let row = st.get(&CLASS_SR, sr).ok_or_else(|| crate::handle_invalid(&CLASS_SR, sr))?;
        members(row.get(fields::sr::VDIS.index))
            .into_iter()
            .filter_map(|v| {
                let path = super::vdi_path(s, &st, &v)?;
                let fmt = st.get(vc, &v).map(|r| super::Format::of_vdi(r.get(fields::vdi::SM_CONFIG.index)))?;
                Some((v, path, fmt))
            })
            .collect()
    };
    let (driver, dir) = (a.driver, a.dir.clone());
    let (stats, total) = blocking(move || {
        let stats: Vec<(String, Option<(i64, i64)>)> =
            files.into_iter().map(|(v, p, f)| (v, driver.vdi_stat(&p, f).ok())).collect();
        Ok((stats, statvfs(&dir).map(|t| t.0).unwrap_or(0)))
    })
    .await?;
    ctx.write(|tx| {
        for (v, st) in &stats {
            tx.update(vc, v, |row| match st {
                Some((virt, phys)) => {
                    row.write(VDI::VIRTUAL_SIZE, *virt);
                    row.write(VDI::PHYSICAL_UTILISATION, *phys);
                    row.write(VDI::MISSING, false);
                }
                None => row.write(VDI::MISSING, true),
            });
        }
        tx.put(sr, fields::sr::PHYSICAL_SIZE, a.declared.unwrap_or(total));
        Ok(())
    })?;
    refresh_sr_usage(ctx, sr)
}

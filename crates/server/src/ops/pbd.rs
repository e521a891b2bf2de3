//! PBD: constructor/destructor rules, plug (attach the SR on the host, then
//! scan it), unplug (refused while a running VM uses the SR) and
//! set_device_config.

use crate::api::PbdApi;
use crate::implicit::Hooks;
use crate::lifecycle::{self, current_ops};
use crate::rows::members;
use crate::storage::{self, blocking, configured_dir};
use crate::{ApiError, Ctx, Result, Server};
use model::schema::{CLASS_HOST, CLASS_PBD, CLASS_SR, CLASS_VBD, CLASS_VDI, CLASS_VM};
use model::types::fields;
use model::types::*;
use model::{Ref, Row, Value, XenType};
use std::collections::BTreeMap;
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: None };

/// `SRmaster` is set by the server for the SM backend, never by clients.
pub fn assert_no_srmaster_key(dc: &BTreeMap<String, String>) -> Result<()> {
    match dc.get("SRmaster") {
        Some(v) => Err(ApiError::ValueNotSupported {
            field: "SRmaster".into(),
            value: v.clone(),
            reason: "This key is for internal use only".into(),
        }),
        None => Ok(()),
    }
}

/// Mark the SR changed so its allowed_operations are recomputed at commit.
fn touch_sr(tx: &mut Txn, sr: &str) {
    tx.update(&CLASS_SR, sr, |_| {});
}

/// PBD.create: valid host and SR, at most one PBD per SR and host.
fn create(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &mut Row) -> Result<()> {
    let (hc, src) = (&CLASS_HOST, &CLASS_SR);
    let host = row.read(fields::pbd::HOST).into_string();
    tx.get(hc, &host).ok_or_else(|| crate::handle_invalid(hc, &host))?;
    let sr = row.read(fields::pbd::SR).into_string();
    let sr_row = tx.get(src, &sr).cloned().ok_or_else(|| crate::handle_invalid(src, &sr))?;
    let dc = BTreeMap::<String, String>::from_value(row.get(fields::pbd::DEVICE_CONFIG.index)).unwrap_or_default();
    assert_no_srmaster_key(&dc)?;
    let existing = crate::lifecycle::sr::linked(tx, fields::pbd::SR, &sr, sr_row.get(fields::sr::PBDS.index))
        .into_iter()
        .find(|p| tx.read(p, fields::pbd::HOST).is_some_and(|h| h.as_str() == host.as_str()));
    if let Some(pbd) = existing {
        return Err(ApiError::PbdExists { sr, host, pbd });
    }
    row.fields[fields::pbd::CURRENTLY_ATTACHED.index] = Value::Bool(false);
    touch_sr(tx, &sr);
    Ok(())
}

fn destroy(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &Row) -> Result<()> {
    let _c = &CLASS_PBD;
    if row.read(fields::pbd::CURRENTLY_ATTACHED) {
        return Err(ApiError::OperationNotAllowed { reason: "PBD is currently attached".into() });
    }
    touch_sr(tx, &row.read(fields::pbd::SR).into_string());
    Ok(())
}

/// Attach the SR on the PBD's host, then scan it (as xapi does after the
/// first plug) so the database shows what is on storage.
pub async fn plug(ctx: &Ctx, pbd: &str) -> Result<()> {
    let s = &ctx.server;
    let (c, src) = (&CLASS_PBD, &CLASS_SR);
    let row = s.row(c, pbd)?;
    if row.read(fields::pbd::CURRENTLY_ATTACHED) {
        return Ok(());
    }
    let sr = row.read(fields::pbd::SR).into_string();
    let driver = storage::driver_of(&*s.row(src, &sr)?)?;
    lifecycle::with_op(ctx, &sr, StorageOperations::Plug, || async {
        let dir = {
            let st = s.db.read();
            let uuid = st.get(src, &sr).map(|r| r.read(fields::sr::UUID)).unwrap_or_default();
            configured_dir(row.get(fields::pbd::DEVICE_CONFIG.index))
                .unwrap_or_else(|| s.cfg.data_dir.join("sr").join(uuid))
        };
        let roots = s.cfg.allowed_sr_roots();
        blocking(move || {
            storage::check_sr_dir(&roots, driver, &dir)?;
            driver.attach(&dir)
        })
        .await?;
        ctx.write(|tx| {
            tx.put(pbd, fields::pbd::CURRENTLY_ATTACHED, true);
            Ok(())
        })
    })
    .await?;
    storage::scan::scan_sr(ctx, &sr).await
}

/// The VDIs of `sr` that VMs resident on `host` have attached.
fn active_vdis(tx: &Txn, sr: &str, host: &str) -> Vec<String> {
    let (vm, vbd, vdi) = (&CLASS_VM, &CLASS_VBD, &CLASS_VDI);
    let mut out = Vec::new();
    for v in tx.refs(vm) {
        let Some(vr) = tx.get(vm, &v) else { continue };
        if vr.read(fields::vm::RESIDENT_ON).as_str() != host {
            continue;
        }
        for b in members(vr.get(fields::vm::VBDS.index)) {
            let Some(br) = tx.get(vbd, &b) else { continue };
            if br.get(fields::vbd::CURRENTLY_ATTACHED.index).as_bool() != Some(true) || br.read(fields::vbd::EMPTY) {
                continue;
            }
            let d = br.read(fields::vbd::VDI).into_string();
            let in_sr = tx.get(vdi, &d).is_some_and(|r| {
                r.read(fields::vdi::SR).as_str() == sr && r.read(fields::vdi::TYPE) != VdiType::Metadata
            });
            if in_sr && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

pub async fn unplug(ctx: &Ctx, pbd: &str) -> Result<()> {
    let s = &ctx.server;
    let (c, src, vc) = (&CLASS_PBD, &CLASS_SR, &CLASS_VDI);
    let row = s.row(c, pbd)?;
    if row.get(fields::pbd::CURRENTLY_ATTACHED.index).as_bool() != Some(true) {
        return Ok(());
    }
    let sr = row.read(fields::pbd::SR).into_string();
    let host = row.read(fields::pbd::HOST).into_string();
    lifecycle::with_op(ctx, &sr, StorageOperations::Unplug, || async {
        ctx.write(|tx| {
            let sr_row = tx.get(src, &sr).cloned().ok_or_else(|| crate::handle_invalid(src, &sr))?;
            for v in members(sr_row.get(fields::sr::VDIS.index)) {
                let cur = tx.get(vc, &v).map(current_ops).unwrap_or_default();
                if !cur.is_empty() {
                    return Err(lifecycle::in_progress("VDI", &v, &cur));
                }
            }
            let used = active_vdis(tx, &sr, &host);
            if !used.is_empty() {
                // xapi lists every VDI in use.
                return Err(ApiError::Other { code: "VDI_IN_USE".into(), params: used });
            }
            tx.put(pbd, fields::pbd::CURRENTLY_ATTACHED, false);
            Ok(())
        })
    })
    .await
}

impl PbdApi for Server {
    async fn plug(&self, ctx: &Ctx, self_: Ref<Pbd>) -> Result<()> {
        plug(ctx, self_.as_str()).await
    }

    async fn unplug(&self, ctx: &Ctx, self_: Ref<Pbd>) -> Result<()> {
        unplug(ctx, self_.as_str()).await
    }

    async fn set_device_config(&self, ctx: &Ctx, self_: Ref<Pbd>, value: BTreeMap<String, String>) -> Result<()> {
        assert_no_srmaster_key(&value)?;
        let c = &CLASS_PBD;
        ctx.write(|tx| {
            if tx.set(c, self_.as_str(), fields::pbd::DEVICE_CONFIG.index, value.to_value()) {
                Ok(())
            } else {
                Err(crate::handle_invalid(c, self_.as_str()))
            }
        })
    }
}

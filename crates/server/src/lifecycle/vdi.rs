//! VDI operation rules (xapi's xapi_vdi checks) and the derived
//! `allowed_operations`, recomputed when a VDI, its VBDs or its SR change.

use super::sr::{sm_features, sr_supports, Links};
use crate::lifecycle::current_ops;
use crate::rows::members;
use crate::ApiError;
use model::schema::ClassDef;
use model::schema::{CLASS_PBD, CLASS_SR, CLASS_VBD, CLASS_VDI};
use model::types::fields;
use model::types::{OnBoot, VbdMode, Vdi, VdiType};
use model::{Field, Row, Value};
use std::collections::BTreeSet;
use store::Txn;

pub(crate) fn vdi_c() -> &'static ClassDef {
    &CLASS_VDI
}

pub(crate) fn sr_c() -> &'static ClassDef {
    &CLASS_SR
}

// ------------------------------------------------------------------ rules

/// The operations listed in allowed_operations (xapi's pre-Ely set, without
/// `blocked` and `force_unlock`).
pub const VDI_OPS: &[&str] = &[
    "clone",
    "copy",
    "resize",
    "resize_online",
    "snapshot",
    "mirror",
    "destroy",
    "forget",
    "update",
    "generate_config",
];

fn feature_for(op: &str) -> Option<&'static str> {
    Some(match op {
        "snapshot" => "VDI_SNAPSHOT",
        "destroy" => "VDI_DELETE",
        "resize" => "VDI_RESIZE",
        "update" => "VDI_UPDATE",
        "resize_online" => "VDI_RESIZE_ONLINE",
        "generate_config" => "VDI_GENERATE_CONFIG",
        "clone" => "VDI_CLONE",
        "mirror" => "VDI_MIRROR",
        "enable_cbt" | "disable_cbt" | "data_destroy" | "list_changed_blocks" => "VDI_CONFIG_CBT",
        "set_on_boot" => "VDI_RESET_ON_BOOT",
        _ => return None,
    })
}

/// What the VDI rules need beyond the row.
struct VdiFacts {
    sr: String,
    sr_row: Option<Row>,
    sr_features: BTreeSet<String>,
    sr_plugged: bool,
    /// (mode, currently_attached, has current operations) of each VBD.
    vbds: Vec<(VbdMode, bool, bool)>,
}

fn vdi_facts(tx: &Txn, r: &str, row: &Row, vbd_links: &Links) -> VdiFacts {
    let (_c, bc, pc) = (vdi_c(), &CLASS_VBD, &CLASS_PBD);
    let sr = row.read(fields::vdi::SR).into_string();
    let sr_row = tx.get(sr_c(), &sr).cloned();
    let sr_plugged = sr_row.as_ref().is_some_and(|s| {
        members(s.get(fields::sr::PBDS.index))
            .iter()
            .any(|p| tx.get(pc, p).is_some_and(|x| x.read(fields::pbd::CURRENTLY_ATTACHED)))
    });
    let vbds = vbd_links
        .of(tx, fields::vbd::VDI, r, row.get(fields::vdi::VBDS.index))
        .iter()
        .filter_map(|b| tx.get(bc, b))
        .map(|b| (b.read(fields::vbd::MODE), b.read(fields::vbd::CURRENTLY_ATTACHED), !current_ops(b).is_empty()))
        .collect();
    let sr_features = sr_row.as_ref().map(|s| sm_features(tx, s)).unwrap_or_default();
    VdiFacts { sr, sr_row, sr_features, sr_plugged, vbds }
}

fn vdi_check_with(r: &str, row: &Row, op: &str, f: &VdiFacts) -> Option<ApiError> {
    let ty = row.read(fields::vdi::TYPE);
    let b = |flag: Field<Vdi, bool>| row.read(flag);
    let cur = current_ops(row);
    if cur.iter().any(|(_, o)| o != "copy") {
        return Some(super::in_progress("VDI", r, &cur));
    }
    if op == "resize" && !f.sr_plugged {
        return Some(ApiError::SrHasNoPbds { sr: f.sr.clone() });
    }
    // Only "live" operations may run while a VBD has the disk attached;
    // copy only needs no read-write attachment. xapi reads a VDI being
    // copied through a read-only dom0 attachment; a running copy counts as one.
    let live = matches!(
        op,
        "snapshot" | "resize_online" | "blocked" | "clone" | "mirror" | "enable_cbt" | "disable_cbt" | "data_destroy"
    );
    let copying = !cur.is_empty();
    let blocked = if live {
        false
    } else if op == "copy" {
        f.vbds.iter().any(|(m, a, _)| *a && *m == VbdMode::Rw)
    } else {
        copying || f.vbds.iter().any(|(_, a, _)| *a)
    };
    if blocked {
        return Some(ApiError::VdiInUse { vdi: r.to_string(), operation: op.to_string() });
    }
    if op != "data_destroy" && f.vbds.iter().any(|(_, _, busy)| *busy) {
        return Some(super::in_progress("VDI", r, &cur));
    }
    if let Some(feat) = feature_for(op) {
        if !f.sr_row.as_ref().is_some_and(|s| sr_supports(s, &f.sr_features, feat)) {
            return Some(ApiError::SrOperationNotSupported { sr: f.sr.clone() });
        }
    }
    let cbt_ok = matches!(
        op,
        "blocked"
            | "data_destroy"
            | "destroy"
            | "list_changed_blocks"
            | "force_unlock"
            | "forget"
            | "generate_config"
            | "update"
    );
    if !cbt_ok && ty == VdiType::CbtMetadata {
        return Some(ApiError::VdiIncompatibleType { vdi: r.to_string(), r#type: ty.as_str().to_string() });
    }
    if matches!(op, "mirror" | "set_on_boot") && b(fields::vdi::CBT_ENABLED) {
        return Some(ApiError::VdiCbtEnabled { vdi: r.to_string() });
    }
    let tools = f.sr_row.as_ref().is_some_and(|s| s.get(fields::sr::IS_TOOLS_SR.index).as_bool() == Some(true));
    let reset = row.read(fields::vdi::ON_BOOT) == OnBoot::Reset;
    match op {
        "destroy" if tools => Some(ApiError::SrOperationNotSupported { sr: f.sr.clone() }),
        "destroy" | "forget" if ty == VdiType::Rrd => Some(ApiError::VdiHasRrds { vdi: r.to_string() }),
        // xapi names the VDI here although the datamodel lists no parameter.
        "snapshot" if b(fields::vdi::SHARABLE) => {
            Some(ApiError::Other { code: "VDI_IS_SHARABLE".into(), params: vec![r.to_string()] })
        }
        "snapshot" | "copy" if reset => Some(ApiError::VdiOnBootModeIncompatibleWithOperation),
        "snapshot" if cur.iter().any(|(_, o)| o == "copy") => {
            Some(ApiError::OperationNotAllowed { reason: "Snapshot operation not allowed during copy.".into() })
        }
        "copy" if matches!(ty, VdiType::HaStatefile | VdiType::RedoLog) => Some(ApiError::OperationNotAllowed {
            reason: "VDI containing HA statefile or redo log cannot be copied (check the VDI's allowed operations)."
                .into(),
        }),
        _ => None,
    }
}

pub fn vdi_check(tx: &Txn, r: &str, row: &Row, op: &str) -> Option<ApiError> {
    let f = vdi_facts(tx, r, row, &Links::pending(tx, fields::vbd::VDI));
    vdi_check_with(r, row, op, &f)
}

pub fn rules() -> super::Rules {
    super::Rules { check: vdi_check }
}

/// Recompute allowed_operations of the VDIs a transaction touched: changed
/// VDIs, the VDIs of changed VBDs, and the VDIs of SRs whose PBDs changed.
pub fn refresh_allowed(tx: &mut Txn) {
    let (c, bc, pc) = (vdi_c(), &CLASS_VBD, &CLASS_PBD);
    let mut vdis: BTreeSet<String> = tx.pending_refs(c).into_iter().collect();
    for b in tx.pending_refs(bc) {
        if let Some(v) = tx.get(bc, &b).map(|r| r.read(fields::vbd::VDI).into_string()) {
            vdis.insert(v);
        }
        if let Some(v) = tx.state().get(bc, &b).map(|r| r.read(fields::vbd::VDI).into_string()) {
            vdis.insert(v);
        }
    }
    for p in tx.pending_refs(pc) {
        let Some(sr) = tx.get(pc, &p).map(|r| r.read(fields::pbd::SR).into_string()) else { continue };
        if let Some(srow) = tx.get(sr_c(), &sr) {
            vdis.extend(members(srow.get(fields::sr::VDIS.index)));
        }
    }
    vdis.remove(model::NULL_REF);
    if vdis.is_empty() {
        return;
    }
    let links = Links::pending(tx, fields::vbd::VDI);
    let ai = fields::vdi::ALLOWED_OPERATIONS.index;
    for v in vdis {
        let Some(row) = tx.get(c, &v).cloned() else { continue };
        let facts = vdi_facts(tx, &v, &row, &links);
        let want = Value::Array(
            VDI_OPS
                .iter()
                .filter(|op| vdi_check_with(&v, &row, op, &facts).is_none())
                .map(|op| Value::from(*op))
                .collect(),
        );
        if row.get(ai) != &want {
            tx.set(c, &v, ai, want);
        }
    }
}

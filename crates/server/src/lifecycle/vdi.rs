//! VDI operation rules (xapi's xapi_vdi checks) and the derived
//! `allowed_operations`, recomputed when a VDI, its VBDs or its SR change.

use super::sr::{sm_features, sr_supports, Links};
use crate::lifecycle::current_ops;
use crate::rows::members;
use crate::ApiError;
use model::schema::ClassDef;
use model::schema::{CLASS_PBD, CLASS_SR, CLASS_VBD, CLASS_VDI};
use model::types::fields;
use model::types::{OnBoot, VbdMode, Vdi, VdiOperations as VO, VdiType};
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
/// `blocked` and `force_unlock`), in its order.
pub const VDI_OPS: &[VO] = &[
    VO::Clone,
    VO::Copy,
    VO::Resize,
    VO::ResizeOnline,
    VO::Snapshot,
    VO::Mirror,
    VO::Destroy,
    VO::Forget,
    VO::Update,
    VO::GenerateConfig,
];

/// How an operation goes with VBDs that have the disk attached.
#[derive(PartialEq)]
enum Attached {
    /// A "live" operation: runs while attached.
    Runs,
    /// Only no read-write attachment: a copy reads the disk through a
    /// read-only dom0 attachment (a running copy counts as one).
    ReadOnly,
    /// Not while attached or being copied.
    Refused,
}

/// What an operation needs: the SM feature (xapi's sm_cap_table), how it
/// goes with attachments, and whether a cbt_metadata VDI allows it.
struct Needs {
    feature: Option<&'static str>,
    attached: Attached,
    on_cbt_metadata: bool,
}

/// Exhaustive: a new operation does not compile until it says what it
/// needs; one the datamodel does not know is an error.
fn needs(op: &VO) -> Result<Needs, &str> {
    use Attached::{ReadOnly, Refused, Runs};
    let n = |feature, attached, on_cbt_metadata| Ok(Needs { feature, attached, on_cbt_metadata });
    let cbt = Some("VDI_CONFIG_CBT");
    match op {
        VO::Clone => n(Some("VDI_CLONE"), Runs, false),
        VO::Copy => n(None, ReadOnly, false),
        VO::Resize => n(Some("VDI_RESIZE"), Refused, false),
        VO::ResizeOnline => n(Some("VDI_RESIZE_ONLINE"), Runs, false),
        VO::Snapshot => n(Some("VDI_SNAPSHOT"), Runs, false),
        VO::Mirror => n(Some("VDI_MIRROR"), Runs, false),
        VO::Destroy => n(Some("VDI_DELETE"), Refused, true),
        VO::Forget => n(None, Refused, true),
        VO::Update => n(Some("VDI_UPDATE"), Refused, true),
        VO::ForceUnlock => n(None, Refused, true),
        VO::GenerateConfig => n(Some("VDI_GENERATE_CONFIG"), Refused, true),
        VO::EnableCbt | VO::DisableCbt => n(cbt, Runs, false),
        VO::DataDestroy => n(cbt, Runs, true),
        VO::ListChangedBlocks => n(cbt, Refused, true),
        VO::SetOnBoot => n(Some("VDI_RESET_ON_BOOT"), Refused, false),
        VO::Blocked => n(None, Runs, true),
        VO::Unknown(name) => Err(name),
    }
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

fn vdi_check_with(r: &str, row: &Row, op: &VO, f: &VdiFacts) -> Option<ApiError> {
    let needs = match needs(op) {
        Ok(n) => n,
        Err(name) => return Some(super::unknown_op("VDI", r, name)),
    };
    let ty = row.read(fields::vdi::TYPE);
    let b = |flag: Field<Vdi, bool>| row.read(flag);
    let cur = current_ops(row);
    let copy_running = |o: &str| VO::parse(o) == VO::Copy;
    if cur.iter().any(|(_, o)| !copy_running(o)) {
        return Some(super::in_progress("VDI", r, &cur));
    }
    if *op == VO::Resize && !f.sr_plugged {
        return Some(ApiError::SrHasNoPbds { sr: f.sr.clone() });
    }
    let copying = !cur.is_empty();
    let blocked = match needs.attached {
        Attached::Runs => false,
        Attached::ReadOnly => f.vbds.iter().any(|(m, a, _)| *a && *m == VbdMode::Rw),
        Attached::Refused => copying || f.vbds.iter().any(|(_, a, _)| *a),
    };
    if blocked {
        return Some(ApiError::VdiInUse { vdi: r.to_string(), operation: op.to_string() });
    }
    if *op != VO::DataDestroy && f.vbds.iter().any(|(_, _, busy)| *busy) {
        return Some(super::in_progress("VDI", r, &cur));
    }
    if let Some(feat) = needs.feature {
        if !f.sr_row.as_ref().is_some_and(|s| sr_supports(s, &f.sr_features, feat)) {
            return Some(ApiError::SrOperationNotSupported { sr: f.sr.clone() });
        }
    }
    if !needs.on_cbt_metadata && ty == VdiType::CbtMetadata {
        return Some(ApiError::VdiIncompatibleType { vdi: r.to_string(), r#type: ty.as_str().to_string() });
    }
    if matches!(op, VO::Mirror | VO::SetOnBoot) && b(fields::vdi::CBT_ENABLED) {
        return Some(ApiError::VdiCbtEnabled { vdi: r.to_string() });
    }
    let tools = f.sr_row.as_ref().is_some_and(|s| s.get(fields::sr::IS_TOOLS_SR.index).as_bool() == Some(true));
    let reset = row.read(fields::vdi::ON_BOOT) == OnBoot::Reset;
    // The rules of single operations; the rest have passed.
    match op {
        VO::Destroy if tools => Some(ApiError::SrOperationNotSupported { sr: f.sr.clone() }),
        VO::Destroy | VO::Forget if ty == VdiType::Rrd => Some(ApiError::VdiHasRrds { vdi: r.to_string() }),
        // xapi names the VDI here although the datamodel lists no parameter.
        VO::Snapshot if b(fields::vdi::SHARABLE) => {
            Some(ApiError::Other { code: "VDI_IS_SHARABLE".into(), params: vec![r.to_string()] })
        }
        VO::Snapshot | VO::Copy if reset => Some(ApiError::VdiOnBootModeIncompatibleWithOperation),
        VO::Snapshot if cur.iter().any(|(_, o)| copy_running(o)) => {
            Some(ApiError::OperationNotAllowed { reason: "Snapshot operation not allowed during copy.".into() })
        }
        VO::Copy if matches!(ty, VdiType::HaStatefile | VdiType::RedoLog) => Some(ApiError::OperationNotAllowed {
            reason: "VDI containing HA statefile or redo log cannot be copied (check the VDI's allowed operations)."
                .into(),
        }),
        _ => None,
    }
}

pub fn vdi_check(tx: &Txn, r: &str, row: &Row, op: &VO) -> Option<ApiError> {
    let f = vdi_facts(tx, r, row, &Links::pending(tx, fields::vbd::VDI));
    vdi_check_with(r, row, op, &f)
}

impl super::Rules for VO {
    fn check(tx: &Txn, r: &str, row: &Row, op: &VO) -> Option<ApiError> {
        vdi_check(tx, r, row, op)
    }
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
                .map(|op| Value::from(op.as_str()))
                .collect(),
        );
        if row.get(ai) != &want {
            tx.set(c, &v, ai, want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> VdiFacts {
        VdiFacts { sr: String::new(), sr_row: None, sr_features: BTreeSet::new(), sr_plugged: true, vbds: vec![] }
    }

    #[test]
    fn an_unknown_operation_is_refused() {
        let row = crate::rows::new_row(fields::vdi::UUID);
        let e = vdi_check_with("OpaqueRef:vdi", &row, &VO::parse("defrag"), &facts());
        assert!(matches!(e, Some(ApiError::InternalError { .. })), "{e:?}");
        assert_eq!(vdi_check_with("OpaqueRef:vdi", &row, &VO::Forget, &facts()), None);
    }

    #[test]
    fn a_copy_runs_beside_read_only_attachments_only() {
        let row = crate::rows::new_row(fields::vdi::UUID);
        let mut f = facts();
        f.vbds = vec![(VbdMode::Ro, true, false)];
        assert_eq!(vdi_check_with("OpaqueRef:vdi", &row, &VO::Copy, &f), None);
        let e = vdi_check_with("OpaqueRef:vdi", &row, &VO::Forget, &f);
        assert!(matches!(e, Some(ApiError::VdiInUse { ref operation, .. }) if operation == "forget"), "{e:?}");
        f.vbds = vec![(VbdMode::Rw, true, false)];
        assert!(matches!(vdi_check_with("OpaqueRef:vdi", &row, &VO::Copy, &f), Some(ApiError::VdiInUse { .. })));
    }
}

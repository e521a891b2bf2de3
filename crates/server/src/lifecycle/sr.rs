//! SR operation rules: SM features, attached PBDs, emptiness and
//! serialisation, and the derived `allowed_operations` (xapi's
//! xapi_sr_operations).

use crate::lifecycle::current_ops;
use crate::rows::members;
use crate::ApiError;
use model::schema::ClassDef;
use model::schema::{CLASS_PBD, CLASS_SR, CLASS_VDI};
use model::types::fields;
use model::types::fields::{sm as SM, sr as S};
use model::types::{StorageOperations as SO, VdiType};
use model::{Field, Ref, Row, Value};
use std::collections::{BTreeSet, HashMap};
use store::Txn;

fn sr_c() -> &'static ClassDef {
    &CLASS_SR
}

// ------------------------------------------------------------------ links

/// Children (objects whose `link` field names a parent) made or changed in
/// the current transaction, by parent: the derived reverse sets are only
/// updated at commit, so rules evaluated inside a transaction add these.
pub struct Links(HashMap<String, Vec<String>>);

impl Links {
    pub fn pending<C, P>(tx: &Txn, link: Field<C, Ref<P>>) -> Links {
        let (c, i) = (link.class, link.index);
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for r in tx.pending_refs(c) {
            if let Some(p) = tx.get(c, &r).and_then(|row| row.get(i).as_str().map(str::to_string)) {
                m.entry(p).or_default().push(r);
            }
        }
        Links(m)
    }

    /// The children of `parent` as the transaction sees them.
    pub fn of<C, P>(&self, tx: &Txn, link: Field<C, Ref<P>>, parent: &str, derived: &Value) -> Vec<String> {
        let (c, i) = (link.class, link.index);
        let mut out: Vec<String> = members(derived);
        if let Some(extra) = self.0.get(parent) {
            for x in extra {
                if !out.contains(x) {
                    out.push(x.clone());
                }
            }
        }
        out.retain(|x| tx.get(c, x).is_some_and(|r| r.get(i).as_str() == Some(parent)));
        out
    }
}

/// Children of one parent (for a single rule check).
pub fn linked<C, P>(tx: &Txn, link: Field<C, Ref<P>>, parent: &str, derived: &Value) -> Vec<String> {
    Links::pending(tx, link).of(tx, link, parent, derived)
}

// ------------------------------------------------------------------ rules

/// Every SR operation, in the order xapi lists them.
pub const SR_OPS: &[SO] = &[
    SO::Scan,
    SO::Destroy,
    SO::Forget,
    SO::Plug,
    SO::Unplug,
    SO::VdiCreate,
    SO::VdiDestroy,
    SO::VdiResize,
    SO::VdiClone,
    SO::VdiSnapshot,
    SO::VdiMirror,
    SO::VdiEnableCbt,
    SO::VdiDisableCbt,
    SO::VdiDataDestroy,
    SO::VdiListChangedBlocks,
    SO::VdiSetOnBoot,
    SO::VdiIntroduce,
    SO::Update,
    SO::PbdCreate,
    SO::PbdDestroy,
];

/// The SM feature an SR operation needs (xapi's sm_cap_table). Exhaustive:
/// a new operation does not compile until it says; one the datamodel does
/// not know is an error.
fn feature_for(op: &SO) -> Result<Option<&'static str>, &str> {
    Ok(Some(match op {
        SO::VdiCreate => "VDI_CREATE",
        SO::VdiDestroy => "VDI_DELETE",
        SO::VdiResize => "VDI_RESIZE",
        SO::VdiIntroduce => "VDI_INTRODUCE",
        SO::VdiMirror => "VDI_MIRROR",
        SO::VdiEnableCbt | SO::VdiDisableCbt | SO::VdiDataDestroy | SO::VdiListChangedBlocks => "VDI_CONFIG_CBT",
        SO::VdiSetOnBoot => "VDI_RESET_ON_BOOT",
        SO::Update => "SR_UPDATE",
        SO::VdiSnapshot => "VDI_SNAPSHOT",
        SO::Scan | SO::Destroy | SO::Forget | SO::Plug | SO::Unplug | SO::VdiClone | SO::PbdCreate | SO::PbdDestroy => {
            return Ok(None)
        }
        SO::Unknown(name) => return Err(name),
    }))
}

/// The features of the SR's driver, from its SM record (as xapi reads them);
/// none for a type that has no SM record.
pub fn sm_features(tx: &Txn, sr: &Row) -> BTreeSet<String> {
    let ty = sr.read(S::TYPE);
    let sm = SM::UUID.class;
    tx.state()
        .table(sm)
        .iter()
        .map(|(r, _)| r)
        .chain(tx.pending_refs(sm).iter())
        .filter_map(|r| tx.get(sm, r))
        .find(|row| row.read(SM::TYPE).eq_ignore_ascii_case(&ty))
        .map(|row| row.read(SM::FEATURES).into_keys().collect())
        .unwrap_or_default()
}

/// Does the SR's driver have `feature` (the tools SR never creates or deletes VDIs)?
pub fn sr_supports(row: &Row, features: &BTreeSet<String>, feature: &str) -> bool {
    if row.read(S::IS_TOOLS_SR) && matches!(feature, "VDI_CREATE" | "VDI_DELETE") {
        return false;
    }
    features.contains(feature)
}

/// What an SR check needs beyond the row.
struct SrFacts {
    features: BTreeSet<String>,
    pbds: Vec<(String, bool)>,
    has_managed_vdis: bool,
}

fn sr_facts(tx: &Txn, r: &str, row: &Row, pbd_links: &Links, vdi_links: &Links) -> SrFacts {
    let (_c, pc, vc) = (sr_c(), &CLASS_PBD, &CLASS_VDI);
    let pbds = pbd_links
        .of(tx, fields::pbd::SR, r, row.get(fields::sr::PBDS.index))
        .into_iter()
        .map(|p| {
            let att = tx.get(pc, &p).is_some_and(|x| x.read(fields::pbd::CURRENTLY_ATTACHED));
            (p, att)
        })
        .collect();
    let has_managed_vdis = vdi_links.of(tx, fields::vdi::SR, r, row.get(fields::sr::VDIS.index)).iter().any(|v| {
        tx.get(vc, v).is_some_and(|x| x.read(fields::vdi::MANAGED) && x.read(fields::vdi::TYPE) != VdiType::Rrd)
    });
    SrFacts { features: sm_features(tx, row), pbds, has_managed_vdis }
}

/// Why `op` cannot run on the SR now (xapi's first error), or None.
fn sr_check_with(r: &str, row: &Row, op: &SO, f: &SrFacts) -> Option<ApiError> {
    let feature = match feature_for(op) {
        Ok(feature) => feature,
        Err(name) => return Some(super::unknown_op("SR", r, name)),
    };
    if let Some(feat) = feature {
        if !sr_supports(row, &f.features, feat) {
            return Some(ApiError::SrOperationNotSupported { sr: r.to_string() });
        }
    }
    if matches!(op, SO::Destroy | SO::Forget) && f.pbds.iter().any(|(_, a)| *a) {
        return Some(ApiError::SrHasPbd { sr: r.to_string() });
    }
    if *op == SO::Destroy && f.pbds.is_empty() {
        return Some(ApiError::SrHasNoPbds { sr: r.to_string() });
    }
    if *op == SO::Destroy && f.has_managed_vdis {
        return Some(ApiError::SrNotEmpty);
    }
    // Anything runs alone, except that PBD plugs may overlap each other.
    let cur = current_ops(row);
    if !cur.is_empty() && (*op != SO::Plug || cur.iter().any(|(_, o)| SO::parse(o) != SO::Plug)) {
        return Some(super::in_progress("SR", r, &cur));
    }
    None
}

pub fn sr_check(tx: &Txn, r: &str, row: &Row, op: &SO) -> Option<ApiError> {
    let (pl, vl) = (Links::pending(tx, fields::pbd::SR), Links::pending(tx, fields::vdi::SR));
    let f = sr_facts(tx, r, row, &pl, &vl);
    sr_check_with(r, row, op, &f)
}

impl super::Rules for SO {
    fn check(tx: &Txn, r: &str, row: &Row, op: &SO) -> Option<ApiError> {
        sr_check(tx, r, row, op)
    }
}

/// Recompute allowed_operations of the SRs a transaction touched (directly,
/// or through their PBDs and VDIs).
pub fn refresh_allowed(tx: &mut Txn) {
    let (c, pc, vc) = (sr_c(), &CLASS_PBD, &CLASS_VDI);
    let mut srs: BTreeSet<String> = tx.pending_refs(c).into_iter().collect();
    for (cls, f) in [(pc, fields::pbd::SR.index), (vc, fields::vdi::SR.index)] {
        for x in tx.pending_refs(cls) {
            if let Some(sr) = tx.get(cls, &x).and_then(|r| r.get(f).as_str().map(str::to_string)) {
                srs.insert(sr);
            }
        }
    }
    if srs.is_empty() {
        return;
    }
    let (pl, vl) = (Links::pending(tx, fields::pbd::SR), Links::pending(tx, fields::vdi::SR));
    let ai = fields::sr::ALLOWED_OPERATIONS.index;
    for sr in srs {
        let Some(row) = tx.get(c, &sr).cloned() else { continue };
        let facts = sr_facts(tx, &sr, &row, &pl, &vl);
        let want = Value::Array(
            SR_OPS
                .iter()
                .filter(|op| sr_check_with(&sr, &row, op, &facts).is_none())
                .map(|op| Value::from(op.as_str()))
                .collect(),
        );
        if row.get(ai) != &want {
            tx.set(c, &sr, ai, want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> SrFacts {
        SrFacts { features: BTreeSet::new(), pbds: vec![], has_managed_vdis: false }
    }

    #[test]
    fn an_unknown_operation_is_refused() {
        let row = crate::rows::new_row(S::UUID);
        let e = sr_check_with("OpaqueRef:sr", &row, &SO::parse("vdi_frobnicate"), &facts());
        assert!(matches!(e, Some(ApiError::InternalError { .. })), "{e:?}");
        // A known one without a feature passes on an idle SR.
        assert_eq!(sr_check_with("OpaqueRef:sr", &row, &SO::Scan, &facts()), None);
    }
}

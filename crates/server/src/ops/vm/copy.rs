//! Copies of a VM: clone, copy, snapshot and checkpoint (disks through the
//! SR, devices and metadata as xapi copies them), and revert to a snapshot.

use super::*;
use model::schema::{CLASS_SR, CLASS_VBD, CLASS_VBD_METRICS, CLASS_VDI, CLASS_VIF};
use model::types::fields;
use model::types::fields::{vbd as VBD, vif as VIF, vm as VM};

/// A fresh VBD_metrics object for a copied VBD.
fn new_vbd_metrics(tx: &mut Txn) -> Ref<VbdMetrics> {
    let m = model::new_ref();
    tx.insert(&m, new_row(fields::vbd_metrics::UUID));
    Ref::new(m)
}

// ------------------------------------------------------------------ copies

/// A locally administered unicast MAC, unique among VIFs.
pub fn fresh_mac(tx: &Txn) -> String {
    let vif = &CLASS_VIF;
    let used: std::collections::HashSet<String> = tx
        .refs(vif)
        .iter()
        .filter_map(|r| tx.get(vif, r).map(|row| row.read(fields::vif::MAC).to_lowercase()))
        .collect();
    loop {
        let b = *uuid::Uuid::new_v4().as_bytes();
        let mac =
            format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]);
        if !used.contains(&mac) {
            return mac;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Clone,
    Copy,
    Snapshot,
}

/// The disks behind `vbds`, cloned, copied (into `sr`) or snapshotted; CDs,
/// ISOs and empty drives are shared, VDIs in `ignore` are left out. Returns
/// each kept VBD with its new VDI, and the VDIs made (to delete on failure).
pub(super) async fn dup_disks(
    ctx: &Ctx,
    vbds: &[Arc<Row>],
    kind: Kind,
    sr: Option<&str>,
    ignore: &[String],
) -> Result<(Vec<(Arc<Row>, Option<String>)>, Vec<String>)> {
    let s = &ctx.server;
    let (_vbd, vdi) = (&CLASS_VBD, &CLASS_VDI);
    let mut new_disks: Vec<(Arc<Row>, Option<String>)> = Vec::new();
    let mut created: Vec<String> = Vec::new();
    let total = vbds.len().max(1) as f64;
    for (i, br) in vbds.iter().enumerate() {
        let empty = br.read(fields::vbd::EMPTY);
        let vdi_ref = br.read(fields::vbd::VDI).into_string();
        let is_cd = br.read(fields::vbd::TYPE) == VbdType::Cd;
        let iso = s.db.read().get(vdi, &vdi_ref).map(|v| {
            let sr = v.read(fields::vdi::SR).into_string();
            s.db.read().get(&CLASS_SR, &sr).map(|r| r.read(fields::sr::CONTENT_TYPE)) == Some("iso".into())
        });
        let new_vdi = if empty || is_cd || iso == Some(true) || s.db.read().get(vdi, &vdi_ref).is_none() {
            // CDs and ISOs are shared, not copied.
            if empty || s.db.read().get(vdi, &vdi_ref).is_none() {
                None
            } else {
                Some(vdi_ref.clone())
            }
        } else if ignore.contains(&vdi_ref) {
            continue;
        } else {
            let r = match kind {
                Kind::Clone => storage::clone_vdi(ctx, &vdi_ref).await,
                Kind::Snapshot => storage::snapshot_vdi(ctx, &vdi_ref).await,
                Kind::Copy => {
                    let target = match sr {
                        Some(x) if !null(&Value::from(x)) => x.to_string(),
                        _ => storage::sr_of(s, &vdi_ref)?,
                    };
                    storage::copy_vdi(ctx, &vdi_ref, &target).await
                }
            };
            match r {
                Ok(v) => {
                    created.push(v.clone());
                    Some(v)
                }
                Err(e) => {
                    for v in created {
                        crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &v).await);
                    }
                    return Err(e);
                }
            }
        };
        new_disks.push((br.clone(), new_vdi));
        if let Some(t) = &ctx.task {
            crate::task::set_progress(s, t, (i + 1) as f64 / total * 0.9);
        }
    }
    Ok((new_disks, created))
}

/// Make a new VM from `src`: its record (reset as xapi's copy_vm_record
/// resets it), VBDs on cloned/copied/snapshotted disks, and VIFs (new MACs,
/// except that a snapshot keeps them). Returns the new ref.
pub(super) async fn duplicate(
    ctx: &Ctx,
    src: &str,
    new_name: &str,
    kind: Kind,
    sr: Option<&str>,
    ignore: &[String],
) -> Result<String> {
    let s = &ctx.server;
    let c = vm_c();
    let row = s.row(c, src)?;
    let (vbd, vif) = (&CLASS_VBD, &CLASS_VIF);
    // Disks first (outside the store lock: they may be large).
    let vbds: Vec<Arc<Row>> = {
        let st = s.db.read();
        members(row.get(VM::VBDS.index)).iter().filter_map(|b| st.get(vbd, b).cloned()).collect()
    };
    let (new_disks, created) = dup_disks(ctx, &vbds, kind, sr, ignore).await?;
    let snapshot = kind == Kind::Snapshot;
    let src_is_template = row.read(VM::IS_A_TEMPLATE);
    let src_name = row.read(VM::NAME_LABEL);
    let new_ref = model::new_ref();
    let res = ctx.write(|tx| {
        let mut r = (*row).clone();
        let now = DateTime::now();
        r.write(VM::UUID, model::new_uuid());
        r.write(VM::NAME_LABEL, new_name.to_string());
        r.write(VM::ALLOWED_OPERATIONS, vec![]);
        r.write(VM::CURRENT_OPERATIONS, BTreeMap::new());
        r.write(VM::BLOCKED_OPERATIONS, BTreeMap::new());
        r.write(VM::IS_DEFAULT_TEMPLATE, false);
        r.write(VM::RESIDENT_ON, Ref::null());
        r.write(VM::SCHEDULED_TO_BE_RESIDENT_ON, Ref::null());
        r.write(VM::DOMID, -1);
        r.write(VM::GUEST_METRICS, Ref::null());
        r.write(VM::SUSPEND_VDI, Ref::null());
        r.write(VM::POWER_STATE, VmPowerState::Halted);
        // The copy starts with no devices or descendants of its own.
        r.write(VM::VBDS, vec![]);
        r.write(VM::VIFS, vec![]);
        r.write(VM::CONSOLES, vec![]);
        r.write(VM::VTPMS, vec![]);
        r.write(VM::SNAPSHOTS, vec![]);
        r.write(VM::CHILDREN, vec![]);
        r.write(VM::CRASH_DUMPS, vec![]);
        r.write(VM::VUSBS, vec![]);
        r.write(VM::VGPUS, vec![]);
        r.write(VM::ATTACHED_PCIS, vec![]);
        let mut oc = row.read(VM::OTHER_CONFIG);
        oc.remove("default_template");
        oc.remove("xensource_internal");
        // A snapshot keeps the MAC seed (and its VIFs' MACs); copies get a new one.
        if !snapshot {
            oc.insert("mac_seed".into(), model::new_uuid());
        }
        if src_is_template {
            oc.entry("base_template_name".into()).or_insert_with(|| src_name.clone());
        }
        r.write(VM::OTHER_CONFIG, oc);
        // A copy of a template (or of a snapshot, which is one) is a template.
        r.write(VM::IS_A_TEMPLATE, snapshot || src_is_template);
        if snapshot {
            r.write(VM::IS_A_SNAPSHOT, true);
            r.write(VM::SNAPSHOT_OF, Ref::new(src));
            r.write(VM::SNAPSHOT_TIME, now);
            r.write(VM::TRANSPORTABLE_SNAPSHOT_ID, model::new_uuid());
            let ps = row.read(VM::POWER_STATE).as_str().to_string();
            r.write(
                VM::SNAPSHOT_INFO,
                BTreeMap::from([
                    ("disk-snapshot-type".to_string(), "crash_consistent".to_string()),
                    ("power-state-at-snapshot".to_string(), ps),
                ]),
            );
            r.write(VM::SNAPSHOT_METADATA, crate::ops::snapmeta::encode(src, &row));
        } else {
            r.write(VM::IS_A_SNAPSHOT, false);
            r.write(VM::SNAPSHOT_OF, Ref::null());
            r.write(VM::SNAPSHOT_TIME, DateTime::EPOCH);
            r.write(VM::SNAPSHOT_INFO, BTreeMap::new());
            r.write(VM::SNAPSHOT_METADATA, String::new());
        }
        let metrics = model::new_ref();
        let mut m = new_row(fields::vm_metrics::UUID);
        m.write(fields::vm_metrics::INSTALL_TIME, now);
        m.write(fields::vm_metrics::LAST_UPDATED, now);
        tx.insert(&metrics, m);
        // A snapshot keeps the vCPUs the VM had (a checkpoint's saved state
        // has that many, hot-plugged ones included; a revert restores it).
        let vcpus = fields::vm_metrics::VCPUS_NUMBER;
        if let Some(n) = tx.read(row.read(VM::METRICS).as_str(), vcpus).filter(|n| snapshot && *n > 0) {
            tx.put(&metrics, vcpus, n);
        }
        r.write(VM::METRICS, Ref::new(metrics));
        tx.insert(&new_ref, r);
        for (br, new_vdi) in &new_disks {
            let b = model::new_ref();
            let mut nb = (**br).clone();
            nb.write(VBD::UUID, model::new_uuid());
            nb.write(VBD::VM, Ref::new(new_ref.as_str()));
            nb.write(VBD::VDI, new_vdi.clone().map_or_else(Ref::null, Ref::new));
            nb.write(VBD::EMPTY, new_vdi.is_none());
            nb.write(VBD::CURRENTLY_ATTACHED, false);
            nb.write(VBD::DEVICE, String::new());
            nb.write(VBD::ALLOWED_OPERATIONS, vec![]);
            nb.write(VBD::CURRENT_OPERATIONS, BTreeMap::new());
            nb.write(VBD::METRICS, new_vbd_metrics(tx));
            tx.insert(&b, nb);
        }
        for v in members(row.get(VM::VIFS.index)) {
            let Some(vr) = tx.get(vif, &v).cloned() else { continue };
            let mut nv = vr.clone();
            nv.write(VIF::UUID, model::new_uuid());
            nv.write(VIF::VM, Ref::new(new_ref.as_str()));
            if snapshot {
                nv.write(VIF::MAC_AUTOGENERATED, false);
            } else {
                nv.write(VIF::MAC, fresh_mac(tx));
                nv.write(VIF::MAC_AUTOGENERATED, true);
            }
            nv.write(VIF::CURRENTLY_ATTACHED, false);
            nv.write(VIF::ALLOWED_OPERATIONS, vec![]);
            nv.write(VIF::CURRENT_OPERATIONS, BTreeMap::new());
            tx.insert(&model::new_ref(), nv);
        }
        Ok(())
    });
    if let Err(e) = res {
        for v in created {
            crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &v).await);
        }
        return Err(e);
    }
    Ok(new_ref)
}

// ------------------------------------------------------------------ revert

/// Columns VM.revert never copies from the snapshot's metadata (xapi's
/// xapi_vm_snapshot.ml do_not_copy): identity, runtime state, and the
/// devices, which are rebuilt from the snapshot's own.
pub(super) const REVERT_DO_NOT_COPY: &[&str] = &[
    "uuid",
    "_ref",
    "suspend_VDI",
    "power_state",
    "parent",
    "current_operations",
    "allowed_operations",
    "metrics",
    "guest_metrics",
    "resident_on",
    "domid",
    "protection_policy",
    "snapshot_schedule",
    "scheduled_to_be_resident_on",
    "snapshots",
    "tags",
    "affinity",
    "consoles",
    "VBDs",
    "VIFs",
    "VGPUs",
    "VUSBs",
    "VTPMs",
    "attached_PCIs",
    "is_snapshot_from_vmpp",
];

/// What is also kept when a snapshot has no metadata and its own record is
/// the source (xapi's extended_do_not_copy).
pub(super) const REVERT_DO_NOT_COPY_NO_METADATA: &[&str] = &[
    "name__label",
    "is_a_snapshot",
    "is_a_template",
    "is_default_template",
    "snapshot_of",
    "snapshot_time",
    "transportable_snapshot_id",
    "children",
];

/// The VM fields a revert writes back: from the snapshot's metadata (the
/// VM as it was), or from the snapshot record itself when it has none.
pub(super) fn revert_fields(snap: &Row) -> Result<Vec<(usize, Value)>> {
    let c = vm_c();
    let meta = snap.read(fields::vm::SNAPSHOT_METADATA);
    let (pairs, extended) = if meta.is_empty() {
        let all = c.fields.iter().enumerate().map(|(i, f)| (i, f.name, snap.get(i).clone())).collect();
        (all, true)
    } else {
        let bad = || ApiError::InvalidValue { field: "Invalid vm_string".into(), value: String::new() };
        (crate::ops::snapmeta::fields(c, &meta).ok_or_else(bad)?, false)
    };
    let mut out = Vec::new();
    for (i, _, v) in pairs {
        let f = &c.fields[i];
        let skip = REVERT_DO_NOT_COPY.contains(&f.column)
            || (extended && REVERT_DO_NOT_COPY_NO_METADATA.contains(&f.column))
            // Reverse-reference sets are derived, never written.
            || matches!(f.ty, Type::Set(Type::Ref(_)));
        if !skip {
            out.push((i, v));
        }
    }
    Ok(out)
}

/// Revert `vm` to `snapshot` (xapi's revert_vm_fields, then
/// Xapi_vm_snapshot.revert): stop it, restore its fields, replace its disks
/// with clones of the snapshot's (repointing the snapshots of the old disks
/// at the new ones), its VIFs with the snapshot's, its metrics with copies,
/// and give it the snapshot's power state.
pub(super) async fn revert_to(ctx: &Ctx, snapshot: &str, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    if s.row(c, vm)?.read(fields::vm::POWER_STATE) != VmPowerState::Halted {
        do_hard_shutdown(ctx, vm).await?;
    }
    let snap = s.row(c, snapshot)?;
    let fields = revert_fields(&snap)?;
    ctx.write(|tx| {
        tx.update(c, vm, |r| {
            for (i, v) in fields {
                r.fields[i] = v;
            }
            r.write(VM::HA_ALWAYS_RUN, false);
            // An unspecified domain type follows the boot policy.
            if r.read(fields::vm::DOMAIN_TYPE) == DomainType::Unspecified {
                let hvm = !r.read(fields::vm::HVM_BOOT_POLICY).is_empty();
                r.write(VM::DOMAIN_TYPE, if hvm { DomainType::Hvm } else { DomainType::Pv });
            }
        });
        // Refs to objects that are gone read as NULL.
        let row = tx.get(c, vm).cloned().ok_or_else(|| handle_invalid(c, vm))?;
        for (i, f) in c.fields.iter().enumerate() {
            if let Type::Ref(target) = f.ty {
                let r = row.get(i).as_str().unwrap_or("");
                let dangling = !null(row.get(i)) && model::schema::class(target).is_some_and(|tc| !tx.exists(tc, r));
                if dangling {
                    tx.set(c, vm, i, Value::from(model::NULL_REF));
                }
            }
        }
        Ok(())
    })?;
    let outcome = revert_devices(ctx, vm, &snap).await;
    // The snapshot's power state, or Halted if the devices could not be restored.
    let ps = if outcome.is_ok() { snap.read(VM::POWER_STATE) } else { VmPowerState::Halted };
    ctx.write(|tx| {
        let row = tx.get(c, vm).cloned().ok_or_else(|| handle_invalid(c, vm))?;
        tx.update(c, vm, |r| {
            r.write(VM::POWER_STATE, ps.clone());
            r.write(VM::RESIDENT_ON, Ref::null());
            r.write(VM::SCHEDULED_TO_BE_RESIDENT_ON, Ref::null());
            r.write(VM::DOMID, -1);
            r.write(VM::PARENT, Ref::new(snapshot));
            if ps == VmPowerState::Halted {
                r.write(VM::REQUIRES_REBOOT, false);
            }
        });
        if ps == VmPowerState::Halted {
            for b in members(row.get(fields::vm::VBDS.index)) {
                tx.put(&b, fields::vbd::CURRENTLY_ATTACHED, false);
            }
            for v in members(row.get(fields::vm::VIFS.index)) {
                tx.put(&v, fields::vif::CURRENTLY_ATTACHED, false);
            }
        }
        Ok(())
    })?;
    outcome.map_err(|e| match e.code() {
        "SR_BACKEND_FAILURE_44" | "SR_BACKEND_FAILURE_109" | "VDI_INCOMPATIBLE_TYPE" => e,
        // xapi sends [snapshot; vm], the reverse of the documented order.
        _ => ApiError::VmRevertFailed { vm: snapshot.to_string(), snapshot: vm.to_string() },
    })
}

/// The device half of a revert (xapi's update_vifs_vbds_vgpus_and_vusbs,
/// update_guest_metrics and update_metrics).
pub(super) async fn revert_devices(ctx: &Ctx, vm: &str, snap: &Row) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let (vbd, vdi, vif, src) = (&CLASS_VBD, &CLASS_VDI, &CLASS_VIF, &CLASS_SR);
    let cur = s.row(c, vm)?;
    let (snap_vbds, vm_vbds): (Vec<Arc<Row>>, Vec<Arc<Row>>) = {
        let st = s.db.read();
        let rows = |row: &Row| -> Vec<Arc<Row>> {
            members(row.get(fields::vm::VBDS.index)).iter().filter_map(|b| st.get(vbd, b).cloned()).collect()
        };
        (rows(snap), rows(&cur))
    };
    let is_disk = |b: &Row| b.read(fields::vbd::TYPE) == VbdType::Disk;
    let vdi_of = |b: &Row| b.read(fields::vbd::VDI).into_string();
    // What each of the snapshot's disks is a snapshot of.
    let snapshot_of = |d: &str| -> String {
        s.db.read().get(vdi, d).map(|r| r.read(fields::vdi::SNAPSHOT_OF).into_string()).unwrap_or_default()
    };
    let originals: Vec<String> =
        snap_vbds.iter().filter(|b| is_disk(b)).map(|b| snapshot_of(&vdi_of(b))).filter(|o| !o.is_empty()).collect();
    // The VM's disks that the snapshot has a copy of go (others stay, detached),
    // with its memory image; ISOs are never deleted.
    let doomed: Vec<String> = {
        let st = s.db.read();
        let mut v: Vec<String> =
            vm_vbds.iter().filter(|b| is_disk(b)).map(|b| vdi_of(b)).filter(|d| originals.contains(d)).collect();
        v.push(cur.read(fields::vm::SUSPEND_VDI).into_string());
        v.retain(|d| {
            st.get(vdi, d)
                .and_then(|r| st.get(src, r.read(fields::vdi::SR).as_str()))
                .is_some_and(|sr| sr.read(fields::sr::CONTENT_TYPE) != "iso")
        });
        v
    };
    // Clone the snapshot's disks (CDs and empty drives are shared as they are).
    let (cloned, created) = dup_disks(ctx, &snap_vbds, Kind::Clone, None, &[]).await?;
    let snap_susp = snap.read(fields::vm::SUSPEND_VDI).into_string();
    let mem_image = if s.db.read().get(vdi, &snap_susp).is_some() {
        match storage::clone_vdi(ctx, &snap_susp).await {
            Ok(v) => Some(v),
            Err(e) => {
                for v in created {
                    crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &v).await);
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    // (old disk, its replacement) for every cloned snapshot disk.
    let replaced: Vec<(String, String)> = cloned
        .iter()
        .filter(|(b, _)| is_disk(b))
        .filter_map(|(b, new)| Some((snapshot_of(&vdi_of(b)), new.clone()?)))
        .filter(|(old, _)| !old.is_empty() && !null(&Value::String(old.clone())))
        .collect();
    let snap_vifs = members(snap.get(fields::vm::VIFS.index));
    let res = ctx.write(|tx| {
        // Out with the VM's devices...
        for b in members(cur.get(fields::vm::VBDS.index)) {
            if let Some(m) = tx.get(vbd, &b).map(|r| r.read(fields::vbd::METRICS).into_string()) {
                tx.delete(&CLASS_VBD_METRICS, &m);
            }
            tx.delete(vbd, &b);
        }
        for v in members(cur.get(fields::vm::VIFS.index)) {
            tx.delete(vif, &v);
        }
        // ...in with copies of the snapshot's, on the cloned disks.
        for (br, new_vdi) in &cloned {
            let mut nb = (**br).clone();
            nb.write(VBD::UUID, model::new_uuid());
            nb.write(VBD::VM, Ref::new(vm));
            nb.write(VBD::VDI, new_vdi.clone().map_or_else(Ref::null, Ref::new));
            nb.write(VBD::EMPTY, new_vdi.is_none() || br.read(fields::vbd::EMPTY));
            nb.write(VBD::STATUS_CODE, 0);
            nb.write(VBD::STATUS_DETAIL, String::new());
            nb.write(VBD::ALLOWED_OPERATIONS, vec![]);
            nb.write(VBD::CURRENT_OPERATIONS, BTreeMap::new());
            nb.write(VBD::QOS_SUPPORTED_ALGORITHMS, vec![]);
            nb.write(VBD::RUNTIME_PROPERTIES, BTreeMap::new());
            nb.write(VBD::METRICS, new_vbd_metrics(tx));
            tx.insert(&model::new_ref(), nb);
        }
        // Every snapshot of an old disk is now a snapshot of its replacement.
        for (old, new) in &replaced {
            let tree: Vec<String> = tx
                .refs(vdi)
                .into_iter()
                .filter(|r| tx.get(vdi, r).is_some_and(|row| row.read(fields::vdi::SNAPSHOT_OF).as_str() == old))
                .collect();
            for r in tree {
                tx.set(vdi, &r, fields::vdi::SNAPSHOT_OF.index, Value::String(new.clone()));
            }
        }
        // The snapshot's VIFs, MACs and all.
        for v in &snap_vifs {
            let Some(mut nv) = tx.get(vif, v).cloned() else { continue };
            nv.write(VIF::UUID, model::new_uuid());
            nv.write(VIF::VM, Ref::new(vm));
            nv.write(VIF::MAC_AUTOGENERATED, false);
            nv.write(VIF::ALLOWED_OPERATIONS, vec![]);
            nv.write(VIF::CURRENT_OPERATIONS, BTreeMap::new());
            tx.insert(&model::new_ref(), nv);
        }
        let susp = mem_image.clone().unwrap_or_else(|| model::NULL_REF.into());
        tx.set(c, vm, fields::vm::SUSPEND_VDI.index, Value::String(susp));
        // Metrics: the VM's go, copies of the snapshot's take their place.
        let metrics = [
            (VM::GUEST_METRICS.index, &CLASS_VM_GUEST_METRICS, fields::vm_guest_metrics::UUID.index),
            (VM::METRICS.index, &CLASS_VM_METRICS, fields::vm_metrics::UUID.index),
        ];
        for (f, mcls, uuid) in metrics {
            tx.delete(mcls, cur.get(f).as_str().unwrap_or(""));
            let new = match tx.get(mcls, snap.get(f).as_str().unwrap_or("")).cloned() {
                Some(mut m) => {
                    let r = model::new_ref();
                    m.fields[uuid] = Value::from(model::new_uuid());
                    tx.insert(&r, m);
                    r
                }
                None => model::NULL_REF.to_string(),
            };
            tx.set(c, vm, f, Value::String(new));
        }
        Ok(())
    });
    if let Err(e) = res {
        for v in created.into_iter().chain(mem_image) {
            crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &v).await);
        }
        return Err(e);
    }
    for v in doomed {
        crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &v).await);
    }
    Ok(())
}

//! Rebuilding objects from an `ova.xml` (xapi's `import.ml`): SRs and
//! hosts are looked up, VDIs are created (full import) or found (metadata
//! import), networks are matched by name then bridge or created, and the
//! VMs with their VBDs and VIFs are created in one transaction. Everything
//! made is recorded in [`Created`] so a failed import can be undone.

use super::row_from_record;
use crate::{storage, ApiError, Ctx, Result};
use model::schema::{
    CLASS_HOST, CLASS_NETWORK, CLASS_SR, CLASS_TASK, CLASS_VBD, CLASS_VDI, CLASS_VIF, CLASS_VM, CLASS_VM_GUEST_METRICS,
};
use model::types::{fields, VbdType, VmOperations, VmPowerState};
use model::{Ref, Row, Value, NULL_REF};
use std::collections::{HashMap, HashSet};
use xva::{Header, Object};

pub enum Mode {
    /// Disks come with the stream and are created in this SR.
    Full { sr: String },
    /// Disks exist already: `vdi_map` maps exported VDI uuids to ours;
    /// otherwise the SR (by uuid) and the VDI's location find them.
    Metadata { vdi_map: HashMap<String, String>, dry_run: bool },
}

pub struct Config {
    pub mode: Mode,
    /// Keep uuids and MACs, replacing an older copy of the VM.
    pub restore: bool,
    /// Ignore what can be ignored, and leave objects behind on failure.
    pub force: bool,
    /// The import's task (recorded in `other_config:import_task`).
    pub task: String,
}

/// What an import made.
#[derive(Default, Debug)]
pub struct Created {
    /// File id → our ref.
    pub table: HashMap<String, String>,
    /// The VMs of the result (made, or default templates matched by name).
    pub vms: Vec<String>,
    made_vms: Vec<String>,
    vdis: Vec<String>,
    networks: Vec<String>,
    guest_metrics: Vec<String>,
    /// Disks to fill from the stream: (file id, VDI, declared size).
    pub disks: Vec<(String, String, u64)>,
}

impl Created {
    /// A disk made for file id (or legacy name) `id`, to be filled from the stream.
    pub fn note_vdi(&mut self, id: &str, vdi: &str, size: u64) {
        self.vdis.push(vdi.to_string());
        self.table.insert(id.to_string(), vdi.to_string());
        self.disks.push((id.to_string(), vdi.to_string(), size));
    }
    pub fn note_vm(&mut self, vm: &str) {
        self.made_vms.push(vm.to_string());
        self.vms.push(vm.to_string());
    }
}

/// Classes an ova.xml may hold; the ones we have no objects for are skipped.
const KNOWN: &[&str] = &[
    "host",
    "SR",
    "VDI",
    "VM_guest_metrics",
    "VM_metrics",
    "VM",
    "network",
    "GPU_group",
    "VBD",
    "VIF",
    "VGPU_type",
    "VGPU",
    "PVS_site",
    "PVS_proxy",
    "VTPM",
];

/// The largest disk an import may declare (64 TiB).
const MAX_DISK: i64 = 64 << 40;

fn s(v: Option<&Value>) -> String {
    v.and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn is_ref(v: &str) -> bool {
    !v.is_empty() && v != NULL_REF
}

/// Structural checks before anything is created: known classes, unique
/// ids, and every reference the import follows present in the file.
pub fn validate(h: &Header) -> Result<()> {
    let mut ids = HashSet::new();
    for o in &h.objects {
        if !KNOWN.contains(&o.class.as_str()) {
            return Err(ApiError::ImportError {
                msg: format!("ova.xml holds an object of unknown class {:?}", o.class),
            });
        }
        if o.id.is_empty() || !ids.insert(o.id.as_str()) {
            return Err(ApiError::ImportError { msg: format!("ova.xml repeats or lacks the object id {:?}", o.id) });
        }
    }
    let need = |o: &Object, f: &str| -> Result<()> {
        let r = s(o.snapshot.member(f));
        if is_ref(&r) && !ids.contains(r.as_str()) {
            return Err(ApiError::ImportErrorFailedToFindObject { id: r });
        }
        Ok(())
    };
    for o in &h.objects {
        match o.class.as_str() {
            "VBD" => {
                need(o, "VM")?;
                need(o, "VDI")?;
            }
            "VIF" => {
                need(o, "VM")?;
                need(o, "network")?;
            }
            "VDI" => need(o, "SR")?,
            _ => {}
        }
        if matches!(o.class.as_str(), "VBD" | "VIF") && !is_ref(&s(o.snapshot.member("VM"))) {
            return Err(ApiError::ImportErrorFailedToFindObject { id: o.id.clone() });
        }
    }
    Ok(())
}

enum VmPlan {
    Create { replace: Option<String> },
    Template(String),
    Skip,
}

fn vm_plan(ctx: &Ctx, cfg: &Config, o: &Object) -> Result<VmPlan> {
    let st = ctx.server.db.read();
    let vmc = &CLASS_VM;
    let rec = &o.snapshot;
    let b = |k: &str| rec.member(k).and_then(Value::as_bool).unwrap_or(false);
    let oc_default = rec.member("other_config").and_then(|m| m.map_str("default_template")) == Some("true");
    if b("is_default_template") || (b("is_a_template") && oc_default) {
        let name = s(rec.member("name_label"));
        let nl = fields::vm::NAME_LABEL.index;
        if let Some((r, _)) = st.table(vmc).iter().find(|(_, row)| row.get(nl).as_str() == Some(name.as_str())) {
            return Ok(VmPlan::Template(r.clone()));
        }
    }
    let uuid = s(rec.member("uuid"));
    if cfg.restore {
        if let Some(existing) = st.table(vmc).by_uuid(&uuid) {
            let row = st.get(vmc, existing).cloned().ok_or_else(|| crate::internal("VM vanished"))?;
            let ps = row.read(fields::vm::POWER_STATE);
            if ps != VmPowerState::Halted {
                if cfg.force {
                    return Ok(VmPlan::Skip);
                }
                return Err(ApiError::VmBadPowerState {
                    vm: existing.to_string(),
                    expected: "Halted".into(),
                    actual: ps.as_str().to_string(),
                });
            }
            let have = row.read(fields::vm::VERSION);
            let theirs = rec.member("version").and_then(Value::as_int).unwrap_or(0);
            if have >= theirs && !cfg.force {
                return Err(ApiError::VmToImportIsNotNewerVersion {
                    vm: existing.to_string(),
                    existing_version: have.to_string(),
                    version_to_import: theirs.to_string(),
                });
            }
            return Ok(VmPlan::Create { replace: Some(existing.to_string()) });
        }
    }
    Ok(VmPlan::Create { replace: None })
}

/// A restore must not bring a second VM with an existing VM's MAC seed.
fn assert_mac_seeds(ctx: &Ctx, h: &Header) -> Result<()> {
    let st = ctx.server.db.read();
    let vmc = &CLASS_VM;
    for o in h.objects.iter().filter(|o| o.class == "VM") {
        let rec = &o.snapshot;
        if rec.member("is_a_snapshot").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(seed) = rec.member("other_config").and_then(|m| m.map_str("mac_seed")) else { continue };
        let uuid = s(rec.member("uuid"));
        for (_, row) in st.table(vmc).iter() {
            let theirs = row.get(fields::vm::OTHER_CONFIG.index).map_str("mac_seed");
            let snapshot = row.read(fields::vm::IS_A_SNAPSHOT);
            if theirs == Some(seed) && !snapshot && row.read(fields::vm::UUID) != uuid {
                return Err(ApiError::DuplicateMacSeed { seed: seed.to_string() });
            }
        }
    }
    Ok(())
}

/// xapi's generation ids: two random 63-bit numbers.
fn fresh_genid() -> String {
    let b = *uuid::Uuid::new_v4().as_bytes();
    let a = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) >> 1;
    let c = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]) >> 1;
    format!("{a}:{c}")
}

fn with_key(v: &Value, key: &str, val: Option<&str>) -> Value {
    let mut m: Vec<(String, Value)> = v.as_struct().map(|m| m.to_vec()).unwrap_or_default();
    m.retain(|(k, _)| k != key);
    if let Some(x) = val {
        m.push((key.to_string(), Value::from(x)));
    }
    Value::Struct(m)
}

/// Create (or find) everything the header describes. On error, whatever
/// was made is undone unless `force`.
pub async fn create_objects(ctx: &Ctx, h: &Header, cfg: &Config) -> Result<Created> {
    validate(h)?;
    super::assert_compatible(h)?;
    if cfg.restore {
        assert_mac_seeds(ctx, h)?;
    }
    let mut out = Created::default();
    match build(ctx, h, cfg, &mut out).await {
        Ok(()) => Ok(out),
        Err(e) => {
            if !cfg.force {
                undo(ctx, &out).await;
            }
            Err(e)
        }
    }
}

async fn build(ctx: &Ctx, h: &Header, cfg: &Config, out: &mut Created) -> Result<()> {
    let s_ = &ctx.server;
    let of = |cls: &'static str| h.objects.iter().filter(move |o| o.class == cls);
    let dry_run = matches!(cfg.mode, Mode::Metadata { dry_run: true, .. });
    // Hosts and SRs are looked up, never created.
    {
        let st = s_.db.read();
        for o in of("host") {
            if let Some(r) = st.table(&CLASS_HOST).by_uuid(&s(o.snapshot.member("uuid"))) {
                out.table.insert(o.id.clone(), r.to_string());
            }
        }
        for o in of("SR") {
            let iso = s(o.snapshot.member("content_type")) == "iso";
            let r = match &cfg.mode {
                Mode::Full { sr } if !iso => Some(sr.clone()),
                Mode::Full { .. } => None,
                Mode::Metadata { .. } => st.table(&CLASS_SR).by_uuid(&s(o.snapshot.member("uuid"))).map(str::to_string),
            };
            if let Some(r) = r {
                out.table.insert(o.id.clone(), r);
            }
        }
    }
    // VM decisions first, so that a refused restore creates nothing.
    let mut plans = Vec::new();
    for o in of("VM") {
        plans.push((o, vm_plan(ctx, cfg, o)?));
    }
    // VDIs.
    let sr_of = |o: &Object| h.object(&s(o.snapshot.member("SR"))).cloned();
    for o in of("VDI") {
        let orig_sr = sr_of(o);
        let iso = orig_sr.as_ref().is_some_and(|sr| s(sr.snapshot.member("content_type")) == "iso");
        let location = s(o.snapshot.member("location"));
        if iso {
            // A CD: the same image in one of our ISO libraries, else ejected.
            if let Some(v) = find_iso(ctx, &location) {
                out.table.insert(o.id.clone(), v);
            }
            continue;
        }
        match &cfg.mode {
            Mode::Full { sr } => {
                if dry_run {
                    continue;
                }
                let mut row = row_from_record(&CLASS_VDI, &o.id, &o.snapshot, &out.table)?;
                let size = row.get(model::types::fields::vdi::VIRTUAL_SIZE.index).as_int().unwrap_or(-1);
                if !(0..=MAX_DISK).contains(&size) {
                    return Err(ApiError::ImportError {
                        msg: format!("VDI {}: virtual_size {size} is out of range", o.id),
                    });
                }
                row.write(fields::vdi::SR, Ref::new(sr.as_str()));
                row.write(fields::vdi::SNAPSHOT_OF, Ref::null());
                row.write(fields::vdi::PARENT, Ref::null());
                row.write(fields::vdi::CURRENT_OPERATIONS, Default::default());
                row.write(fields::vdi::ALLOWED_OPERATIONS, vec![]);
                let r = storage::create_vdi_row(ctx, row).await?;
                out.note_vdi(&o.id, &r, size as u64);
            }
            Mode::Metadata { vdi_map, .. } => {
                let uuid = s(o.snapshot.member("uuid"));
                let st = s_.db.read();
                let vdic = &CLASS_VDI;
                let by_map = vdi_map.get(&uuid).and_then(|u| st.table(vdic).by_uuid(u)).map(str::to_string);
                let sr = out.table.get(&s(o.snapshot.member("SR"))).cloned();
                let by_location = sr.as_ref().and_then(|sr| {
                    st.table(vdic)
                        .iter()
                        .find(|(_, r)| {
                            r.read(fields::vdi::SR).as_str() == sr && r.read(fields::vdi::LOCATION) == location
                        })
                        .map(|(r, _)| r.clone())
                });
                match by_map.or(by_location) {
                    Some(v) => {
                        out.table.insert(o.id.clone(), v);
                    }
                    None if cfg.force => {}
                    None => {
                        return Err(match sr {
                            Some(sr) => ApiError::VdiLocationMissing { sr, location },
                            None => ApiError::VdiContentIdMissing,
                        })
                    }
                }
            }
        }
    }
    if dry_run {
        return Ok(());
    }
    // Replaced VMs go first (a restore brings them back with their uuid).
    for (_, plan) in &plans {
        if let VmPlan::Create { replace: Some(old) } = plan {
            ctx.write(|tx| {
                if let Some(row) = tx.get(&CLASS_VM, old).cloned() {
                    crate::ops::vm::remove_devices(tx, &row);
                    tx.delete(&CLASS_VM, old);
                }
                Ok(())
            })?;
        }
    }
    // Refs for everything the transaction makes, so links resolve in one pass.
    let nets = match_networks(ctx, h, out);
    for (o, plan) in &plans {
        match plan {
            VmPlan::Create { .. } => {
                out.table.insert(o.id.clone(), model::new_ref());
            }
            VmPlan::Template(t) => {
                out.table.insert(o.id.clone(), t.clone());
                out.vms.push(t.clone());
            }
            VmPlan::Skip => {}
        }
    }
    for o in of("VM_guest_metrics") {
        out.table.insert(o.id.clone(), model::new_ref());
    }
    for (o, _) in &nets {
        out.table.insert(o.id.clone(), model::new_ref());
    }
    let table = out.table.clone();
    let made: Vec<String> = plans
        .iter()
        .filter(|(_, p)| matches!(p, VmPlan::Create { .. }))
        .filter_map(|(o, _)| table.get(&o.id).cloned())
        .collect();
    let gms: Vec<String> = of("VM_guest_metrics").filter_map(|o| table.get(&o.id).cloned()).collect();
    let new_nets: Vec<String> = nets.iter().filter_map(|(o, _)| table.get(&o.id).cloned()).collect();
    let res = ctx.write(|tx| {
        for o in of("VM_guest_metrics") {
            let mut row = row_from_record(&CLASS_VM_GUEST_METRICS, &o.id, &o.snapshot, &table)?;
            row.write(fields::vm_guest_metrics::UUID, model::new_uuid());
            tx.insert(&table[&o.id], row);
        }
        for (o, plan) in &plans {
            if let VmPlan::Create { .. } = plan {
                let row = vm_row(tx, cfg, o, &table)?;
                insert(ctx, tx, &table[&o.id], row)?;
            }
        }
        for (o, bridge_free) in &nets {
            let mut row = row_from_record(&CLASS_NETWORK, &o.id, &o.snapshot, &table)?;
            row.write(fields::network::UUID, model::new_uuid());
            if !bridge_free {
                row.write(fields::network::BRIDGE, String::new());
            }
            let oc =
                with_key(row.get(model::types::fields::network::OTHER_CONFIG.index), "import_task", Some(&cfg.task));
            // In the file's key order, with the task last.
            row.fields[fields::network::OTHER_CONFIG.index] = oc;
            insert(ctx, tx, &table[&o.id], row)?;
        }
        let mut made_devices = HashMap::new();
        for o in of("VBD") {
            if let Some(row) = vbd_row(tx, cfg, h, o, &table)? {
                let r = model::new_ref();
                insert(ctx, tx, &r, row)?;
                made_devices.insert(o.id.clone(), r);
            }
        }
        for o in of("VIF") {
            if let Some(row) = vif_row(tx, cfg, o, &table)? {
                let r = model::new_ref();
                insert(ctx, tx, &r, row)?;
                made_devices.insert(o.id.clone(), r);
            }
        }
        Ok(made_devices)
    });
    match res {
        Ok(devs) => {
            out.table.extend(devs);
            out.made_vms = made.clone();
            out.vms.extend(made);
            out.guest_metrics = gms;
            out.networks = new_nets;
        }
        Err(e) => return Err(e),
    }
    // Disk snapshots point at disks made above.
    let vdic = &CLASS_VDI;
    let links: Vec<(String, String)> = of("VDI")
        .filter_map(|o| {
            let mine = out.table.get(&o.id)?;
            let of_ = out.table.get(&s(o.snapshot.member("snapshot_of")))?;
            out.vdis.contains(mine).then(|| (mine.clone(), of_.clone()))
        })
        .collect();
    if !links.is_empty() {
        ctx.write(|tx| {
            for (v, of_) in &links {
                tx.set(vdic, v, fields::vdi::SNAPSHOT_OF.index, Value::from(of_.as_str()));
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A row through its class's constructor rules.
fn insert(ctx: &Ctx, tx: &mut store::Txn, r: &str, mut row: Row) -> Result<()> {
    if let Some(h) = crate::ops::hooks(row.class).create {
        h(ctx, tx, r, &mut row)?;
    }
    tx.insert(r, row);
    Ok(())
}

fn find_iso(ctx: &Ctx, location: &str) -> Option<String> {
    let st = ctx.server.db.read();
    let (vdic, src) = (&CLASS_VDI, &CLASS_SR);
    let found = st
        .table(vdic)
        .iter()
        .find(|(_, r)| {
            r.read(fields::vdi::LOCATION) == location
                && st
                    .get(src, r.read(fields::vdi::SR).as_str())
                    .is_some_and(|sr| sr.read(fields::sr::CONTENT_TYPE) == "iso")
        })
        .map(|(r, _)| r.clone());
    found
}

/// Networks by name_label, then bridge; the rest are created. Returns the
/// ones to create, each with whether its bridge name is free here.
fn match_networks<'h>(ctx: &Ctx, h: &'h Header, out: &mut Created) -> Vec<(&'h Object, bool)> {
    let st = ctx.server.db.read();
    let nc = &CLASS_NETWORK;
    let mut create = Vec::new();
    for o in h.objects.iter().filter(|o| o.class == "network") {
        let name = s(o.snapshot.member("name_label"));
        let bridge = s(o.snapshot.member("bridge"));
        let mut found: Vec<(&String, &std::sync::Arc<Row>)> =
            st.table(nc).iter().filter(|(_, r)| r.read(fields::network::NAME_LABEL) == name).collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        let by_bridge =
            || st.table(nc).iter().find(|(_, r)| !bridge.is_empty() && r.read(fields::network::BRIDGE) == bridge);
        match found.first().map(|(r, _)| (*r).clone()).or_else(|| by_bridge().map(|(r, _)| r.clone())) {
            Some(r) => {
                out.table.insert(o.id.clone(), r);
            }
            None => create.push((o, false)),
        }
    }
    create
}

fn vm_row(tx: &store::Txn, cfg: &Config, o: &Object, table: &HashMap<String, String>) -> Result<Row> {
    let vmc = &CLASS_VM;
    let mut row = row_from_record(vmc, &o.id, &o.snapshot, table)?;
    let uuid = s(o.snapshot.member("uuid"));
    let keep_uuid = cfg.restore && !uuid.is_empty() && tx.state().table(vmc).by_uuid(&uuid).is_none();
    row.write(fields::vm::UUID, if keep_uuid { uuid } else { model::new_uuid() });
    let mut oc = with_key(row.get(fields::vm::OTHER_CONFIG.index), "grant_api_access", None);
    if !cfg.restore {
        oc = with_key(&oc, "mac_seed", Some(&model::new_uuid()));
    }
    if !cfg.force {
        oc = with_key(&oc, "default_template", None);
        row.write(fields::vm::IS_DEFAULT_TEMPLATE, false);
    }
    oc = with_key(&oc, "import_task", Some(&cfg.task));
    // In the file's key order, changed keys last.
    row.fields[fields::vm::OTHER_CONFIG.index] = oc;
    let template = row.read(fields::vm::IS_A_TEMPLATE);
    if !template && !row.read(fields::vm::GENERATION_ID).is_empty() {
        row.write(fields::vm::GENERATION_ID, fresh_genid());
    }
    let version = row.read(fields::vm::VERSION);
    row.write(fields::vm::VERSION, if cfg.restore { version + 1 } else { 0 });
    row.write(fields::vm::APPLIANCE, Ref::null());
    row.write(fields::vm::PROTECTION_POLICY, Ref::null());
    row.write(fields::vm::SCHEDULED_TO_BE_RESIDENT_ON, Ref::null());
    row.write(fields::vm::METRICS, Ref::null());
    row.write(fields::vm::DOMID, -1);
    // Suspended only with its memory image; otherwise halted (or an error).
    let suspended = s(o.snapshot.member("power_state")) == "Suspended";
    let image = is_ref(row.read(fields::vm::SUSPEND_VDI).as_str());
    if suspended && !image && !cfg.force {
        return Err(ApiError::ImportError {
            msg: format!("Failed to find VM's suspend_VDI: {}", s(o.snapshot.member("suspend_VDI"))),
        });
    }
    if !(suspended && image) {
        row.write(fields::vm::POWER_STATE, VmPowerState::Halted);
        row.write(fields::vm::SUSPEND_VDI, Ref::null());
        row.write(fields::vm::RESIDENT_ON, Ref::null());
    }
    let ops = if cfg.force { vec![] } else { vec![(cfg.task.clone(), VmOperations::Import)] };
    row.write(fields::vm::CURRENT_OPERATIONS, ops.into_iter().collect());
    row.write(fields::vm::ALLOWED_OPERATIONS, vec![]);
    Ok(row)
}

fn vbd_row(
    tx: &store::Txn,
    cfg: &Config,
    h: &Header,
    o: &Object,
    table: &HashMap<String, String>,
) -> Result<Option<Row>> {
    let c = &CLASS_VBD;
    let vm = s(o.snapshot.member("VM"));
    if !table.contains_key(&vm) || h.object(&vm).is_none_or(|x| x.class != "VM") {
        return Ok(None);
    }
    let mut row = row_from_record(c, &o.id, &o.snapshot, table)?;
    let vdi = s(o.snapshot.member("VDI"));
    let ty = row.read(fields::vbd::TYPE);
    let attached = o.snapshot.member("currently_attached").and_then(Value::as_bool) == Some(true);
    if !table.contains_key(&vdi) {
        if attached && ty == VbdType::Disk && !cfg.force {
            return Err(ApiError::ImportErrorAttachedDisksNotFound);
        }
        if ty == VbdType::Disk {
            // A disk that did not come along (xapi omits it).
            return Ok(None);
        }
        row.write(fields::vbd::VDI, Ref::null());
        row.write(fields::vbd::EMPTY, true);
    }
    let uuid = s(o.snapshot.member("uuid"));
    let keep = cfg.restore && !uuid.is_empty() && tx.state().table(c).by_uuid(&uuid).is_none();
    row.write(fields::vbd::UUID, if keep { uuid } else { model::new_uuid() });
    row.write(fields::vbd::CURRENT_OPERATIONS, Default::default());
    row.write(fields::vbd::ALLOWED_OPERATIONS, vec![]);
    Ok(Some(row))
}

fn vif_row(tx: &store::Txn, cfg: &Config, o: &Object, table: &HashMap<String, String>) -> Result<Option<Row>> {
    let c = &CLASS_VIF;
    if !table.contains_key(&s(o.snapshot.member("VM"))) {
        return Ok(None);
    }
    let mut row = row_from_record(c, &o.id, &o.snapshot, table)?;
    if !cfg.restore {
        row.write(fields::vif::MAC, String::new());
    }
    let uuid = s(o.snapshot.member("uuid"));
    let keep = cfg.restore && !uuid.is_empty() && tx.state().table(c).by_uuid(&uuid).is_none();
    row.write(fields::vif::UUID, if keep { uuid } else { model::new_uuid() });
    row.write(fields::vif::CURRENT_OPERATIONS, Default::default());
    row.write(fields::vif::ALLOWED_OPERATIONS, vec![]);
    Ok(Some(row))
}

/// Remove what an import made (VMs with their devices, guest metrics,
/// networks, VDIs and their files).
pub async fn undo(ctx: &Ctx, c: &Created) {
    let _ = ctx.write(|tx| {
        for vm in &c.made_vms {
            if let Some(row) = tx.get(&CLASS_VM, vm).cloned() {
                crate::ops::vm::remove_devices(tx, &row);
                tx.delete(&CLASS_VM, vm);
            }
        }
        for gm in &c.guest_metrics {
            tx.delete(&CLASS_VM_GUEST_METRICS, gm);
        }
        for n in &c.networks {
            tx.delete(&CLASS_NETWORK, n);
        }
        Ok(())
    });
    for v in &c.vdis {
        if let Err(e) = storage::destroy_vdi(ctx, v).await {
            tracing::warn!("import cleanup: destroying VDI {v}: {e}");
        }
    }
}

/// The import is over: VMs leave the `import` operation, and the result is
/// the set of new VMs that are not snapshots.
pub fn complete(ctx: &Ctx, c: &Created, task: &str) -> Result<Value> {
    let vmc = &CLASS_VM;
    ctx.write(|tx| {
        for vm in &c.made_vms {
            tx.update(vmc, vm, |row| {
                if let Value::Struct(m) = &mut row.fields[fields::vm::CURRENT_OPERATIONS.index] {
                    m.retain(|(k, _)| k != task);
                }
            });
        }
        Ok(())
    })?;
    let st = ctx.server.db.read();
    let mut seen = HashSet::new();
    Ok(Value::Array(
        c.vms
            .iter()
            .filter(|v| seen.insert(v.as_str()))
            .filter(|v| st.get(vmc, v).is_some_and(|r| r.get(fields::vm::IS_A_SNAPSHOT.index).as_bool() != Some(true)))
            .map(|v| Value::String(v.clone()))
            .collect(),
    ))
}

/// Record on the task that the objects exist (the guide's
/// `other_config:object_creation`).
pub fn objects_created(ctx: &Ctx, task: &str) {
    let tc = &CLASS_TASK;
    let _ = ctx.write(|tx| {
        tx.update(tc, task, |row| {
            let oc = with_key(row.get(fields::task::OTHER_CONFIG.index), "object_creation", Some("complete"));
            row.fields[fields::task::OTHER_CONFIG.index] = oc;
        });
        Ok(())
    });
}

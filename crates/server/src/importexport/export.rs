//! The object graph of an export: which objects go into `ova.xml`, their
//! `Ref:<n>` ids, and their records as xapi writes them (refs rewritten,
//! runtime state blanked).

use super::{rewritten, set_member};
use crate::Server;
use model::schema::{
    ClassDef, CLASS_HOST, CLASS_NETWORK, CLASS_SR, CLASS_VBD, CLASS_VDI, CLASS_VIF, CLASS_VM, CLASS_VM_GUEST_METRICS,
};
use model::types::fields;
use model::types::fields::{vbd as VBD, vdi as VDI, vif as VIF, vm as VM};
use model::types::{VbdType, VmPowerState};
use model::{DateTime, Ref, Row, Value, NULL_REF};
use std::collections::HashMap;
use store::State;
use xva::{Header, Object};

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Metadata export: keep the snapshot fields and add the VM's snapshots.
    pub with_snapshot_metadata: bool,
    /// Keep power state, suspend image and attachment flags.
    pub preserve_power_state: bool,
}

/// A disk to stream: its id in the file, the VDI, and its size.
#[derive(Clone, Debug)]
pub struct Disk {
    pub id: String,
    pub vdi: String,
    pub size: u64,
}

/// Internal ref → `Ref:<n>`, numbered in the order objects are found.
#[derive(Default)]
struct Table {
    ids: HashMap<String, String>,
}

impl Table {
    fn add(&mut self, r: &str) {
        if r.is_empty() || r == NULL_REF || self.ids.contains_key(r) {
            return;
        }
        let id = format!("Ref:{}", self.ids.len());
        self.ids.insert(r.to_string(), id);
    }
    fn has(&self, r: &str) -> bool {
        self.ids.contains_key(r)
    }
}

/// The refs in a set-of-refs field.
fn refs<C, D>(row: &Row, f: model::Field<C, Vec<Ref<D>>>) -> Vec<String> {
    crate::rows::members(row.get(f.index))
}

/// Walk from a VM to everything its export needs, as xapi's
/// `update_table` does: VIFs and their networks, VBDs and their VDIs and
/// SRs, snapshots (metadata export), the suspend image (when kept), guest
/// metrics, and the hosts it is resident on or prefers.
fn walk(st: &State, t: &mut Table, vm: &str, include_snapshots: bool, preserve_power_state: bool) {
    let (vmc, vifc, vbdc, vdic) = (&CLASS_VM, &CLASS_VIF, &CLASS_VBD, &CLASS_VDI);
    if t.has(vm) {
        return;
    }
    let Some(row) = st.get(vmc, vm) else { return };
    t.add(vm);
    let add_vdi = |t: &mut Table, v: &str| {
        if let Some(vr) = st.get(vdic, v) {
            t.add(v);
            t.add(vr.read(VDI::SR).as_str());
        }
    };
    for vif in refs(row, VM::VIFS) {
        if let Some(vr) = st.get(vifc, &vif) {
            t.add(&vif);
            t.add(vr.read(VIF::NETWORK).as_str());
        }
    }
    for vbd in refs(row, VM::VBDS) {
        if let Some(br) = st.get(vbdc, &vbd) {
            t.add(&vbd);
            if br.get(fields::vbd::EMPTY.index).as_bool() != Some(true) {
                add_vdi(t, br.read(VBD::VDI).as_str());
            }
        }
    }
    if include_snapshots {
        for snap in refs(row, VM::SNAPSHOTS) {
            walk(st, t, &snap, false, preserve_power_state);
        }
    }
    if preserve_power_state && row.read(VM::POWER_STATE) == VmPowerState::Suspended {
        add_vdi(t, row.read(VM::SUSPEND_VDI).as_str());
    }
    let linked: [(String, &ClassDef); 3] = [
        (row.read(VM::GUEST_METRICS).into_string(), &CLASS_VM_GUEST_METRICS),
        (row.read(VM::RESIDENT_ON).into_string(), &CLASS_HOST),
        (row.read(VM::AFFINITY).into_string(), &CLASS_HOST),
    ];
    for (r, c) in linked {
        if st.get(c, &r).is_some() {
            t.add(&r);
        }
    }
    if include_snapshots {
        let parent = row.read(VM::PARENT).into_string();
        if st.get(vmc, &parent).is_some() {
            walk(st, t, &parent, false, preserve_power_state);
        }
    }
}

/// Build the header for exporting `vms`, and the disks a full export streams.
pub fn graph(s: &Server, vms: &[String], o: Options) -> (Header, Vec<Disk>) {
    let st = s.db.read();
    let mut t = Table::default();
    for vm in vms {
        walk(&st, &mut t, vm, o.with_snapshot_metadata, o.preserve_power_state);
    }
    let ids = &t.ids;
    // Objects grouped by class in xapi's order, by id within a class.
    let mut objects = Vec::new();
    let classes = [
        &CLASS_HOST,
        &CLASS_VM,
        &CLASS_VM_GUEST_METRICS,
        &CLASS_VBD,
        &CLASS_VIF,
        &CLASS_NETWORK,
        &CLASS_VDI,
        &CLASS_SR,
    ];
    for c in classes {
        let cls = c.name;
        let mut mine: Vec<(usize, &String, &String)> = ids
            .iter()
            .filter(|(r, _)| st.get(c, r).is_some())
            .map(|(r, id)| (id[4..].parse().unwrap_or(usize::MAX), r, id))
            .collect();
        mine.sort();
        for (_, r, id) in mine {
            let Some(row) = st.get(c, r) else { continue };
            let mut m = rewritten(row, ids);
            blank(cls, &mut m, row, o);
            objects.push(Object { class: cls.to_string(), id: id.clone(), snapshot: Value::Struct(m) });
        }
    }
    let mut disks = Vec::new();
    for vm in vms {
        disks.extend(streamed_disks(&st, vm, o, ids));
    }
    disks.sort_by(|a, b| a.id.cmp(&b.id));
    disks.dedup_by(|a, b| a.id == b.id);
    (Header { version: super::version(), objects }, disks)
}

/// The disks of a full export: the VM's non-CD VBDs' VDIs outside ISO SRs,
/// plus the suspend image when the power state is kept.
fn streamed_disks(st: &State, vm: &str, o: Options, ids: &HashMap<String, String>) -> Vec<Disk> {
    let (vmc, vbdc, vdic, src) = (&CLASS_VM, &CLASS_VBD, &CLASS_VDI, &CLASS_SR);
    let Some(row) = st.get(vmc, vm) else { return vec![] };
    let mut vdis: Vec<String> = refs(row, VM::VBDS)
        .iter()
        .filter_map(|b| st.get(vbdc, b))
        .filter(|b| b.read(VBD::TYPE) != VbdType::Cd && b.get(fields::vbd::EMPTY.index).as_bool() != Some(true))
        .map(|b| b.read(VBD::VDI).into_string())
        .collect();
    if o.preserve_power_state && row.read(VM::POWER_STATE) == VmPowerState::Suspended {
        vdis.push(row.read(VM::SUSPEND_VDI).into_string());
    }
    vdis.into_iter()
        .filter_map(|v| {
            let vr = st.get(vdic, &v)?;
            let sr = st.get(src, vr.read(VDI::SR).as_str())?;
            if sr.read(fields::sr::CONTENT_TYPE) == "iso" {
                return None;
            }
            let size = vr.read(fields::vdi::VIRTUAL_SIZE).max(0) as u64;
            Some(Disk { id: ids.get(&v)?.clone(), vdi: v, size })
        })
        .collect()
}

/// Runtime state an export does not carry (xapi's `make_*`).
fn blank(cls: &str, m: &mut [(String, Value)], row: &Row, o: Options) {
    let null = || Value::String(NULL_REF.into());
    set_member(m, "current_operations", Value::empty_map());
    set_member(m, "allowed_operations", Value::empty_set());
    match cls {
        "VM" => {
            if !o.preserve_power_state {
                set_member(m, "power_state", "Halted");
                set_member(m, "suspend_VDI", null());
            }
            if !o.with_snapshot_metadata {
                set_member(m, "is_a_snapshot", false);
                set_member(m, "snapshot_of", null());
                set_member(m, "snapshots", Value::empty_set());
                set_member(m, "snapshot_time", DateTime::EPOCH);
                set_member(m, "transportable_snapshot_id", "");
                set_member(m, "parent", null());
            }
            for f in ["crash_dumps", "consoles", "blobs"] {
                set_member(m, f, if f == "blobs" { Value::empty_map() } else { Value::empty_set() });
            }
            set_member(m, "metrics", null());
            set_member(m, "protection_policy", null());
            let _ = row;
        }
        "VBD" | "VIF" => {
            if !o.preserve_power_state {
                set_member(m, "currently_attached", false);
            }
            set_member(m, "metrics", null());
        }
        "VDI" => set_member(m, "crash_dumps", Value::empty_set()),
        "SR" => set_member(m, "PBDs", Value::empty_set()),
        "network" => set_member(m, "PIFs", Value::empty_set()),
        "host" => {
            for f in [
                "PIFs",
                "PBDs",
                "PGPUs",
                "PCIs",
                "host_CPUs",
                "patches",
                "crashdumps",
                "supported_bootloaders",
                "capabilities",
                "ha_statefiles",
                "ha_network_peers",
                "tags",
            ] {
                set_member(m, f, Value::empty_set());
            }
            for f in [
                "license_params",
                "blobs",
                "external_auth_configuration",
                "logging",
                "cpu_configuration",
                "other_config",
                "software_version",
            ] {
                set_member(m, f, Value::empty_map());
            }
            for f in ["external_auth_type", "external_auth_service_name", "sched_policy"] {
                set_member(m, f, "");
            }
            set_member(m, "metrics", null());
        }
        _ => {}
    }
}

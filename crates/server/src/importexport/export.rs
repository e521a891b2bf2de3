//! The object graph of an export: which objects go into `ova.xml`, their
//! `Ref:<n>` ids, and their records as xapi writes them (refs rewritten,
//! runtime state blanked).

use super::{rewritten, set_member};
use crate::{class, field, Server};
use model::schema::{CLASS_SR, CLASS_VBD, CLASS_VDI, CLASS_VIF, CLASS_VM};
use model::types::fields;
use model::{DateTime, Row, Value, NULL_REF};
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

fn s(row: &Row, name: &str) -> String {
    row.get(field(row.class, name)).as_str().unwrap_or("").to_string()
}

fn refs(row: &Row, name: &str) -> Vec<String> {
    crate::rows::members(row.get(field(row.class, name)))
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
            t.add(&s(vr, "SR"));
        }
    };
    for vif in refs(row, "VIFs") {
        if let Some(vr) = st.get(vifc, &vif) {
            t.add(&vif);
            t.add(&s(vr, "network"));
        }
    }
    for vbd in refs(row, "VBDs") {
        if let Some(br) = st.get(vbdc, &vbd) {
            t.add(&vbd);
            if br.get(fields::vbd::EMPTY.index).as_bool() != Some(true) {
                add_vdi(t, &s(br, "VDI"));
            }
        }
    }
    if include_snapshots {
        for snap in refs(row, "snapshots") {
            walk(st, t, &snap, false, preserve_power_state);
        }
    }
    if preserve_power_state && s(row, "power_state") == "Suspended" {
        add_vdi(t, &s(row, "suspend_VDI"));
    }
    for (f, c) in [("guest_metrics", "VM_guest_metrics"), ("resident_on", "host"), ("affinity", "host")] {
        let r = s(row, f);
        if st.get(class(c), &r).is_some() {
            t.add(&r);
        }
    }
    if include_snapshots {
        let parent = s(row, "parent");
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
    for cls in ["host", "VM", "VM_guest_metrics", "VBD", "VIF", "network", "VDI", "SR"] {
        let c = class(cls);
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
    let mut vdis: Vec<String> = refs(row, "VBDs")
        .iter()
        .filter_map(|b| st.get(vbdc, b))
        .filter(|b| s(b, "type") != "CD" && b.get(fields::vbd::EMPTY.index).as_bool() != Some(true))
        .map(|b| s(b, "VDI"))
        .collect();
    if o.preserve_power_state && s(row, "power_state") == "Suspended" {
        vdis.push(s(row, "suspend_VDI"));
    }
    vdis.into_iter()
        .filter_map(|v| {
            let vr = st.get(vdic, &v)?;
            let sr = st.get(src, &s(vr, "SR"))?;
            if s(sr, "content_type") == "iso" {
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

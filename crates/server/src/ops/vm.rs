//! VM: the lifecycle (start, pause, shutdown, reboot, suspend, resume,
//! migrate), copies (clone, copy, snapshot, checkpoint, revert), template
//! provisioning, memory and vCPU settings, and the constructor/destructor
//! rules. Each operation runs between `lifecycle::begin` and `end`, so
//! `current_operations` and `allowed_operations` stay true to xapi's rules.

use crate::api::VmApi;
use crate::implicit::Hooks;
use crate::lifecycle;
use crate::rows::members;
use crate::rows::obj;
use crate::rrd::sources::Owner;
use crate::storage::{self, NewVdi};
use crate::xenops::{be, be_vm, domain_spec};
use crate::xenops::{mark_running, mark_stopped};
use crate::{class, field, handle_invalid, put, ApiError, Ctx, Result, Server};
use backend::Cancel;
use model::schema::Type;
use model::types::*;
use model::{DateTime, Ref, Row, Value, XenType};
use std::collections::BTreeMap;
use std::sync::Arc;
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: Some(set_field) };

fn vm_c() -> &'static model::ClassDef {
    class("VM")
}

fn sv(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn null(v: &Value) -> bool {
    matches!(v.as_str(), None | Some("") | Some(model::NULL_REF))
}

/// The cancellation signal of the call's task.
pub fn cancel_of(ctx: &Ctx) -> Option<Cancel> {
    ctx.task.as_ref().map(|t| ctx.server.tasks.cancel_signal(t))
}

fn map_of(v: &Value) -> BTreeMap<String, String> {
    BTreeMap::<String, String>::from_value(v).unwrap_or_default()
}

// ------------------------------------------------------------------ hooks

/// VM.create: power_state is ignored unless Suspended; a VM_metrics object is
/// made; domain_type follows HVM_boot_policy when unspecified.
fn create(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &mut Row) -> Result<()> {
    let c = vm_c();
    let ps = field(c, "power_state");
    if row.get(ps).as_str() == Some("Suspended") {
        let incomplete = null(row.get(field(c, "suspend_VDI")))
            || sv(row.get(field(c, "last_booted_record"))).is_empty()
            || map_of(row.get(field(c, "last_boot_CPU_flags"))).is_empty();
        if incomplete {
            return Err(ApiError::VmBadPowerState {
                vm: r.to_string(),
                expected: "halted".into(),
                actual: "suspended".into(),
            });
        }
    } else {
        row.fields[ps] = Value::from("Halted");
    }
    let dt = field(c, "domain_type");
    if row.get(dt).as_str() == Some("unspecified") {
        let hvm = !sv(row.get(field(c, "HVM_boot_policy"))).is_empty();
        row.fields[dt] = Value::from(if hvm { "hvm" } else { "pv" });
    }
    // As xapi: a VM without a MAC seed gets one, so its VIFs' MACs are
    // derived from it.
    let mut oc = map_of(row.get(field(c, "other_config")));
    if !oc.contains_key("mac_seed") {
        oc.insert("mac_seed".into(), model::new_uuid());
        put(row, "other_config", oc.to_value());
    }
    let metrics = model::new_ref();
    let now = Value::DateTime(DateTime::now());
    obj(tx, "VM_metrics", &metrics, vec![("install_time", now.clone()), ("last_updated", now)]);
    put(row, "metrics", metrics);
    Ok(())
}

/// VM.destroy: as the lifecycle allows (Halted or Suspended, not a default
/// template); removes the VM's devices and metrics but not its VDIs.
fn destroy(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &Row) -> Result<()> {
    if let Some(e) = lifecycle::vm_check(tx, r, row, "destroy", false) {
        return Err(e);
    }
    remove_devices(tx, row);
    Ok(())
}

/// Rules for implicit setters on VM fields.
fn set_field(_ctx: &Ctx, _tx: &mut Txn, r: &str, i: usize, row: &mut Row) -> Result<()> {
    let c = vm_c();
    if i == field(c, "is_a_template") && row.get(i).as_bool() == Some(true) {
        // Turning a VM into a template needs it halted.
        let ps = sv(row.get(field(c, "power_state")));
        if ps != "Halted" {
            return Err(ApiError::VmBadPowerState {
                vm: r.to_string(),
                expected: "halted".into(),
                actual: ps.to_lowercase(),
            });
        }
    }
    Ok(())
}

/// Whether `host` is a host whose metrics say it is live.
fn host_is_live(s: &Server, host: &str) -> bool {
    let (hc, hm) = (class("host"), class("host_metrics"));
    let st = s.db.read();
    st.get(hc, host)
        .and_then(|h| st.get(hm, h.get(field(hc, "metrics")).as_str().unwrap_or("")))
        .is_some_and(|m| m.get(field(hm, "live")).as_bool() == Some(true))
}

/// The VCPU setters' error for a value out of range (xapi_vm.ml).
fn vcpu_value_error(value: i64) -> ApiError {
    ApiError::InvalidValue {
        field: "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max".into(),
        value: value.to_string(),
    }
}

/// lifecycle::vm_check against the committed state.
fn check_now(s: &Server, vm: &str, row: &Row, op: &str, ignore_running: bool) -> Option<ApiError> {
    let st = s.db.read();
    lifecycle::vm_check(&*st, vm, row, op, ignore_running)
}

/// Delete every object that belongs to a VM row (not its VDIs).
pub fn remove_devices(tx: &mut Txn, row: &Row) {
    let c = vm_c();
    for vbd in members(row.get(field(c, "VBDs"))) {
        let vc = class("VBD");
        if let Some(m) = tx.get(vc, &vbd).map(|b| sv(b.get(field(vc, "metrics")))) {
            tx.delete(class("VBD_metrics"), &m);
        }
        tx.delete(vc, &vbd);
    }
    for vif in members(row.get(field(c, "VIFs"))) {
        tx.delete(class("VIF"), &vif);
    }
    for v in members(row.get(field(c, "VTPMs"))) {
        tx.delete(class("VTPM"), &v);
    }
    for con in members(row.get(field(c, "consoles"))) {
        tx.delete(class("console"), &con);
    }
    for (f, mc) in [("metrics", "VM_metrics"), ("guest_metrics", "VM_guest_metrics")] {
        let m = sv(row.get(field(c, f)));
        if !null(&Value::String(m.clone())) {
            tx.delete(class(mc), &m);
        }
    }
}

fn vm_uuid(s: &Server, vm: &str) -> Result<String> {
    Ok(sv(s.row(vm_c(), vm)?.get(field(vm_c(), "uuid"))))
}

fn check_memory(s: &Server, vm: &str) -> Result<()> {
    let (c, hc, hm) = (vm_c(), class("host"), class("host_metrics"));
    let st = s.db.read();
    let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
    let needed = row.get(field(c, "memory_dynamic_max")).as_int().unwrap_or(0)
        + row.get(field(c, "memory_overhead")).as_int().unwrap_or(0);
    let metrics = st.get(hc, &s.host).map(|h| sv(h.get(field(hc, "metrics")))).unwrap_or_default();
    let free = st.get(hm, &metrics).and_then(|m| m.get(field(hm, "memory_free")).as_int()).unwrap_or(0);
    if needed > free {
        return Err(ApiError::HostNotEnoughFreeMemory { needed: needed.to_string(), available: free.to_string() });
    }
    Ok(())
}

/// OCaml's string_of_float: `%.12g`, with a trailing '.' when the result
/// would read as an integer ("1." for 1.0, "0.5" for 0.5).
pub fn ocaml_string_of_float(f: f64) -> String {
    let g = crate::ops::snapmeta::format_g(f, 12);
    if g.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        format!("{g}.")
    } else {
        g
    }
}

/// The checks xapi makes on a VM's settings before booting it
/// (validate_basic_parameters): vCPU counts, memory limits that can be made
/// consistent, the shadow multiplier and the crash action.
fn validate_basic_parameters(st: &store::State, row: &Row) -> Result<()> {
    let c = vm_c();
    let gi = |n: &str| row.get(field(c, n)).as_int().unwrap_or(0);
    let (vmax, vstart) = (gi("VCPUs_max"), gi("VCPUs_at_startup"));
    if vmax < 1 {
        return Err(ApiError::InvalidValue { field: "VCPUs_max".into(), value: vmax.to_string() });
    }
    if vstart < 1 {
        return Err(ApiError::InvalidValue { field: "VCPUs-at-startup".into(), value: vstart.to_string() });
    }
    if vstart > vmax {
        return Err(ApiError::ValueNotSupported {
            field: "VCPUs-at-startup".into(),
            value: vstart.to_string(),
            reason: "value greater than VCPUs-max".into(),
        });
    }
    // Limits the dynamic range can be clamped into are acceptable; crossed
    // static or dynamic limits are not. (xapi sends no parameter here.)
    if gi("memory_static_max") < gi("memory_static_min") || gi("memory_dynamic_max") < gi("memory_dynamic_min") {
        return Err(ApiError::Other { code: "MEMORY_CONSTRAINT_VIOLATION".into(), params: vec![] });
    }
    let shadow = row.get(field(c, "HVM_shadow_multiplier")).as_float().unwrap_or(1.0);
    if shadow < 1.0 {
        return Err(ApiError::InvalidValue {
            field: "HVM_shadow_multiplier".into(),
            value: ocaml_string_of_float(shadow),
        });
    }
    check_crash_action(st, row, row.get(field(c, "actions_after_crash")).as_str().unwrap_or(""))
}

/// xapi's validate_actions_after_crash.
fn check_crash_action(st: &store::State, row: &Row, action: &str) -> Result<()> {
    let unsupported = |reason: &str| {
        Err(ApiError::ValueNotSupported {
            field: "VM.actions_after_crash".into(),
            value: action.to_string(),
            reason: reason.to_string(),
        })
    };
    match action {
        "rename_restart" => unsupported("option would leak a domain; VMs and not domains are managed by this API"),
        "coredump_and_destroy" | "coredump_and_restart" if domain_type(st, row) != "pv" => {
            unsupported("cannot invoke a coredump of an HVM, PVH or PV-in-PVH domain")
        }
        _ => Ok(()),
    }
}

/// The VM's domain type: the one its domain runs with, or (Halted) the one
/// it is configured for.
fn domain_type(st: &store::State, row: &Row) -> String {
    let (c, mc) = (vm_c(), class("VM_metrics"));
    let live = !matches!(row.get(field(c, "power_state")).as_str(), Some("Halted") | None);
    let dt = if live {
        st.get(mc, row.get(field(c, "metrics")).as_str().unwrap_or(""))
            .map(|m| sv(m.get(field(mc, "current_domain_type"))))
            .unwrap_or_default()
    } else {
        sv(row.get(field(c, "domain_type")))
    };
    match dt.as_str() {
        "" | "unspecified" => {
            if sv(row.get(field(c, "HVM_boot_policy"))).is_empty() {
                "pv".into()
            } else {
                "hvm".into()
            }
        }
        _ => dt,
    }
}

/// Can this VM boot on `host` (xapi's assert_can_boot_here): sane settings,
/// a live host, an enabled one unless the VM is a control domain, reachable
/// storage and (if asked) enough free memory.
pub fn assert_can_boot(s: &Server, vm: &str, host: &str, memory_check: bool) -> Result<()> {
    let (c, hc, hm) = (vm_c(), class("host"), class("host_metrics"));
    {
        let st = s.db.read();
        let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
        let h = st.get(hc, host).ok_or_else(|| handle_invalid(hc, host))?;
        validate_basic_parameters(&st, row)?;
        let live = st
            .get(hm, h.get(field(hc, "metrics")).as_str().unwrap_or(""))
            .is_some_and(|m| m.get(field(hm, "live")).as_bool() == Some(true));
        if !live {
            return Err(ApiError::HostNotLive);
        }
        let control_domain = row.get(field(c, "is_control_domain")).as_bool() == Some(true);
        let local_live_migration = row.get(field(c, "power_state")).as_str() == Some("Running")
            && row.get(field(c, "resident_on")).as_str() == Some(host);
        if !control_domain && !local_live_migration && h.get(field(hc, "enabled")).as_bool() != Some(true) {
            return Err(ApiError::HostDisabled { host: host.to_string() });
        }
        // Every disk's SR must be attached here.
        let (vbd, vdi, src, pbd) = (class("VBD"), class("VDI"), class("SR"), class("PBD"));
        for b in members(row.get(field(c, "VBDs"))) {
            let Some(br) = st.get(vbd, &b) else { continue };
            if br.get(field(vbd, "empty")).as_bool() == Some(true) {
                continue;
            }
            let vdi_ref = sv(br.get(field(vbd, "VDI")));
            let Some(vr) = st.get(vdi, &vdi_ref) else { continue };
            let sr = sv(vr.get(field(vdi, "SR")));
            let attached = st
                .get(src, &sr)
                .map(|srow| {
                    members(srow.get(field(src, "PBDs"))).iter().any(|p| {
                        st.get(pbd, p).is_some_and(|pr| {
                            pr.get(field(pbd, "currently_attached")).as_bool() == Some(true)
                                && pr.get(field(pbd, "host")).as_str() == Some(host)
                        })
                    })
                })
                .unwrap_or(false);
            if !attached {
                return Err(ApiError::VmRequiresSr { vm: vm.to_string(), sr });
            }
        }
    }
    if memory_check {
        check_memory(s, vm)?;
    }
    Ok(())
}

/// Pick a host for a VM started or resumed without one (xapi's
/// choose_host_for_vm_no_wlb): a host where it can boot, preferring one with
/// the memory for it; NO_HOSTS_AVAILABLE if there is none.
fn choose_host(s: &Server, vm: &str) -> Result<String> {
    let hosts: Vec<String> = {
        let st = s.db.read();
        let mut h: Vec<String> = st.table(class("host")).iter().map(|(r, _)| r.clone()).collect();
        h.sort();
        // Ours first: it is the only one this server can run domains on.
        h.sort_by_key(|r| *r != s.host);
        h
    };
    for memory_check in [true, false] {
        if let Some(h) = hosts.iter().find(|h| assert_can_boot(s, vm, h, memory_check).is_ok()) {
            return Ok(h.clone());
        }
    }
    Err(ApiError::NoHostsAvailable)
}

async fn do_start(ctx: &Ctx, vm: &str, host: &str, paused: bool) -> Result<()> {
    let s = &ctx.server;
    if host != s.host {
        return Err(handle_invalid(class("host"), host));
    }
    assert_can_boot(s, vm, host, true)?;
    let spec = domain_spec(s, vm)?;
    let domid = s.backend.create(&spec, cancel_of(ctx)).await.map_err(|e| be(ctx, e))?;
    if !paused {
        if let Err(e) = s.backend.unpause(&spec.uuid).await {
            crate::logged("stopping the domain", s.backend.shutdown(&spec.uuid, false, None).await);
            return Err(be(ctx, e));
        }
    }
    ctx.write(|tx| {
        mark_running(tx, s, vm, domid, paused, true);
        Ok(())
    })
}

/// The SR for a suspend image: VM.suspend_SR, pool.suspend_image_SR, then the host's.
fn suspend_sr(s: &Server, vm: &str) -> Result<String> {
    let st = s.db.read();
    let (c, pc, hc) = (vm_c(), class("pool"), class("host"));
    let candidates = [
        st.get(c, vm).map(|r| sv(r.get(field(c, "suspend_SR")))),
        st.get(pc, &s.pool).map(|r| sv(r.get(field(pc, "suspend_image_SR")))),
        st.get(hc, &s.host).map(|r| sv(r.get(field(hc, "suspend_image_sr")))),
    ];
    for sr in candidates.into_iter().flatten() {
        if !null(&Value::String(sr.clone())) && st.get(class("SR"), &sr).is_some() {
            return Ok(sr);
        }
    }
    Err(ApiError::VmNoSuspendSr { vm: vm.to_string() })
}

async fn write_memory_image(ctx: &Ctx, vm: &str, keep_running: bool) -> Result<String> {
    let s = &ctx.server;
    let sr = suspend_sr(s, vm)?;
    let (uuid, name, mem) = {
        let row = s.row(vm_c(), vm)?;
        let c = vm_c();
        (
            sv(row.get(field(c, "uuid"))),
            sv(row.get(field(c, "name_label"))),
            row.get(field(c, "memory_dynamic_max")).as_int().unwrap_or(0),
        )
    };
    let vdi = storage::create_vdi(
        ctx,
        NewVdi {
            sr: &sr,
            name_label: format!("Suspend image for {name}"),
            name_description: String::new(),
            virtual_size: mem,
            vdi_type: "suspend",
            sharable: false,
            read_only: false,
            other_config: Value::empty_map(),
            sm_config: Value::Struct(vec![("vm".into(), Value::String(uuid.clone()))]),
        },
    )
    .await?;
    let path = storage::vdi_path(s, &s.db.read(), &vdi).ok_or_else(|| crate::internal("suspend VDI has no file"))?;
    let r = if keep_running {
        s.backend.save(&uuid, &path, cancel_of(ctx)).await
    } else {
        s.backend.suspend(&uuid, &path, cancel_of(ctx)).await
    };
    if let Err(e) = r {
        crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &vdi).await);
        return Err(be_vm(ctx, vm, e));
    }
    Ok(vdi)
}

async fn do_resume(ctx: &Ctx, vm: &str, host: &str, paused: bool) -> Result<()> {
    let s = &ctx.server;
    if host != s.host {
        return Err(handle_invalid(class("host"), host));
    }
    let c = vm_c();
    let vdi = sv(s.row(c, vm)?.get(field(c, "suspend_VDI")));
    let path =
        storage::vdi_path(s, &s.db.read(), &vdi).ok_or_else(|| ApiError::VmHasNoSuspendVdi { vm: vm.to_string() })?;
    storage::attachable(&path)?;
    assert_can_boot(s, vm, host, true)?;
    let spec = domain_spec(s, vm)?;
    let domid = s.backend.resume(&spec, &path, cancel_of(ctx)).await.map_err(|e| be(ctx, e))?;
    if !paused {
        s.backend.unpause(&spec.uuid).await.map_err(|e| be(ctx, e))?;
    }
    ctx.write(|tx| {
        mark_running(tx, s, vm, domid, paused, false);
        tx.set(c, vm, field(c, "suspend_VDI"), Value::from(model::NULL_REF));
        Ok(())
    })?;
    storage::destroy_vdi(ctx, &vdi).await
}

/// Cancel the tasks of operations a hard shutdown overrides.
fn cancel_soft_ops(s: &Server, vm: &str) {
    if let Ok(row) = s.row(vm_c(), vm) {
        for (task, op) in lifecycle::current_ops(&row) {
            if matches!(op.as_str(), "clean_shutdown" | "clean_reboot" | "hard_reboot" | "pool_migrate" | "call_plugin")
            {
                s.tasks.request_cancel(&task);
            }
        }
    }
}

async fn do_hard_shutdown(ctx: &Ctx, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let row = s.row(c, vm)?;
    if row.get(field(c, "power_state")).as_str() == Some("Suspended") {
        let vdi = sv(row.get(field(c, "suspend_VDI")));
        ctx.write(|tx| {
            mark_stopped(tx, vm, false);
            tx.set(c, vm, field(c, "suspend_VDI"), Value::from(model::NULL_REF));
            Ok(())
        })?;
        if !null(&Value::String(vdi.clone())) {
            crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &vdi).await);
        }
        return Ok(());
    }
    let uuid = sv(row.get(field(c, "uuid")));
    s.backend.shutdown(&uuid, false, None).await.map_err(|e| be(ctx, e))?;
    ctx.write(|tx| {
        mark_stopped(tx, vm, false);
        Ok(())
    })
}

async fn do_clean_shutdown(ctx: &Ctx, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let uuid = vm_uuid(s, vm)?;
    s.backend.shutdown(&uuid, true, cancel_of(ctx)).await.map_err(|e| be_vm(ctx, vm, e))?;
    ctx.write(|tx| {
        mark_stopped(tx, vm, false);
        Ok(())
    })
}

async fn do_reboot(ctx: &Ctx, vm: &str, clean: bool) -> Result<()> {
    let s = &ctx.server;
    let spec = domain_spec(s, vm)?;
    let domid = s.backend.reboot(&spec, clean, cancel_of(ctx)).await.map_err(|e| be_vm(ctx, vm, e))?;
    ctx.write(|tx| {
        let gm = tx.get(vm_c(), vm).map(|r| sv(r.get(field(vm_c(), "guest_metrics")))).unwrap_or_default();
        if !null(&Value::String(gm.clone())) {
            tx.delete(class("VM_guest_metrics"), &gm);
            tx.set(vm_c(), vm, field(vm_c(), "guest_metrics"), Value::from(model::NULL_REF));
        }
        mark_running(tx, s, vm, domid, false, true);
        Ok(())
    })
}

// ------------------------------------------------------------------ copies

/// A locally administered unicast MAC, unique among VIFs.
pub fn fresh_mac(tx: &Txn) -> String {
    let vif = class("VIF");
    let used: std::collections::HashSet<String> = tx
        .refs(vif)
        .iter()
        .filter_map(|r| tx.get(vif, r).map(|row| sv(row.get(field(vif, "MAC"))).to_lowercase()))
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
enum Kind {
    Clone,
    Copy,
    Snapshot,
}

/// The disks behind `vbds`, cloned, copied (into `sr`) or snapshotted; CDs,
/// ISOs and empty drives are shared, VDIs in `ignore` are left out. Returns
/// each kept VBD with its new VDI, and the VDIs made (to delete on failure).
async fn dup_disks(
    ctx: &Ctx,
    vbds: &[Arc<Row>],
    kind: Kind,
    sr: Option<&str>,
    ignore: &[String],
) -> Result<(Vec<(Arc<Row>, Option<String>)>, Vec<String>)> {
    let s = &ctx.server;
    let (vbd, vdi) = (class("VBD"), class("VDI"));
    let mut new_disks: Vec<(Arc<Row>, Option<String>)> = Vec::new();
    let mut created: Vec<String> = Vec::new();
    let total = vbds.len().max(1) as f64;
    for (i, br) in vbds.iter().enumerate() {
        let empty = br.get(field(vbd, "empty")).as_bool() == Some(true);
        let vdi_ref = sv(br.get(field(vbd, "VDI")));
        let is_cd = br.get(field(vbd, "type")).as_str() == Some("CD");
        let iso = s.db.read().get(vdi, &vdi_ref).map(|v| {
            let sr = sv(v.get(field(vdi, "SR")));
            s.db.read().get(class("SR"), &sr).map(|r| sv(r.get(field(class("SR"), "content_type"))))
                == Some("iso".into())
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
async fn duplicate(
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
    let g = |n: &str| row.get(field(c, n)).clone();
    let (vbd, vif) = (class("VBD"), class("VIF"));
    // Disks first (outside the store lock: they may be large).
    let vbds: Vec<Arc<Row>> = {
        let st = s.db.read();
        members(&g("VBDs")).iter().filter_map(|b| st.get(vbd, b).cloned()).collect()
    };
    let (new_disks, created) = dup_disks(ctx, &vbds, kind, sr, ignore).await?;
    let snapshot = kind == Kind::Snapshot;
    let src_is_template = g("is_a_template").as_bool() == Some(true);
    let src_name = sv(&g("name_label"));
    let new_ref = model::new_ref();
    let res = ctx.write(|tx| {
        let mut r = (*row).clone();
        let now = DateTime::now();
        put(&mut r, "uuid", model::new_uuid());
        put(&mut r, "name_label", new_name);
        put(&mut r, "allowed_operations", Value::empty_set());
        put(&mut r, "current_operations", Value::empty_map());
        put(&mut r, "blocked_operations", Value::empty_map());
        put(&mut r, "is_default_template", false);
        put(&mut r, "resident_on", model::NULL_REF);
        put(&mut r, "scheduled_to_be_resident_on", model::NULL_REF);
        put(&mut r, "domid", Value::Int(-1));
        put(&mut r, "guest_metrics", model::NULL_REF);
        put(&mut r, "suspend_VDI", model::NULL_REF);
        put(&mut r, "power_state", "Halted");
        for f in [
            "VBDs",
            "VIFs",
            "consoles",
            "VTPMs",
            "snapshots",
            "children",
            "crash_dumps",
            "VUSBs",
            "VGPUs",
            "attached_PCIs",
        ] {
            put(&mut r, f, Value::empty_set());
        }
        let mut oc = map_of(&g("other_config"));
        oc.remove("default_template");
        oc.remove("xensource_internal");
        // A snapshot keeps the MAC seed (and its VIFs' MACs); copies get a new one.
        if !snapshot {
            oc.insert("mac_seed".into(), model::new_uuid());
        }
        if src_is_template {
            oc.entry("base_template_name".into()).or_insert_with(|| src_name.clone());
        }
        put(&mut r, "other_config", oc.to_value());
        // A copy of a template (or of a snapshot, which is one) is a template.
        put(&mut r, "is_a_template", snapshot || src_is_template);
        if snapshot {
            put(&mut r, "is_a_snapshot", true);
            put(&mut r, "snapshot_of", src);
            put(&mut r, "snapshot_time", now);
            put(&mut r, "transportable_snapshot_id", model::new_uuid());
            let ps = sv(&g("power_state"));
            put(
                &mut r,
                "snapshot_info",
                Value::Struct(vec![
                    ("disk-snapshot-type".into(), Value::from("crash_consistent")),
                    ("power-state-at-snapshot".into(), Value::String(ps)),
                ]),
            );
            put(&mut r, "snapshot_metadata", crate::ops::snapmeta::encode(src, &row));
        } else {
            put(&mut r, "is_a_snapshot", false);
            put(&mut r, "snapshot_of", model::NULL_REF);
            put(&mut r, "snapshot_time", DateTime::EPOCH);
            put(&mut r, "snapshot_info", Value::empty_map());
            put(&mut r, "snapshot_metadata", "");
        }
        let metrics = model::new_ref();
        obj(
            tx,
            "VM_metrics",
            &metrics,
            vec![("install_time", Value::DateTime(now)), ("last_updated", Value::DateTime(now))],
        );
        put(&mut r, "metrics", metrics);
        tx.insert(&new_ref, r);
        for (br, new_vdi) in &new_disks {
            let b = model::new_ref();
            let mut nb = (**br).clone();
            put(&mut nb, "uuid", model::new_uuid());
            put(&mut nb, "VM", new_ref.as_str());
            put(&mut nb, "VDI", new_vdi.clone().unwrap_or_else(|| model::NULL_REF.into()));
            put(&mut nb, "empty", new_vdi.is_none());
            put(&mut nb, "currently_attached", false);
            put(&mut nb, "device", "");
            put(&mut nb, "allowed_operations", Value::empty_set());
            put(&mut nb, "current_operations", Value::empty_map());
            let m = model::new_ref();
            obj(tx, "VBD_metrics", &m, vec![]);
            put(&mut nb, "metrics", m);
            tx.insert(&b, nb);
        }
        for v in members(&g("VIFs")) {
            let Some(vr) = tx.get(vif, &v).cloned() else { continue };
            let mut nv = vr.clone();
            put(&mut nv, "uuid", model::new_uuid());
            put(&mut nv, "VM", new_ref.as_str());
            if snapshot {
                put(&mut nv, "MAC_autogenerated", false);
            } else {
                put(&mut nv, "MAC", fresh_mac(tx));
                put(&mut nv, "MAC_autogenerated", true);
            }
            put(&mut nv, "currently_attached", false);
            put(&mut nv, "allowed_operations", Value::empty_set());
            put(&mut nv, "current_operations", Value::empty_map());
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

// -------------------------------------------------------------- provision

struct ProvDisk {
    device: String,
    size: i64,
    sr: String,
    bootable: bool,
    ty: String,
}

/// Read `<provision><disk device=… size=… sr=… bootable=… type=…/></provision>`.
fn parse_provision(xml: &str) -> Result<Vec<ProvDisk>> {
    let bad = |m: &str| ApiError::InvalidValue { field: "other_config:disks".into(), value: m.to_string() };
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<disk") {
        rest = &rest[i + 5..];
        let end = rest.find('>').ok_or_else(|| bad("unterminated <disk>"))?;
        let attrs = &rest[..end];
        let get = |name: &str| -> Option<String> {
            let key = format!("{name}=\"");
            let p = attrs.find(&key)? + key.len();
            let q = attrs[p..].find('"')?;
            Some(attrs[p..p + q].to_string())
        };
        let size = get("size").and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| bad("disk without a valid size"))?;
        out.push(ProvDisk {
            device: get("device").ok_or_else(|| bad("disk without a device"))?,
            size,
            sr: get("sr").unwrap_or_default(),
            bootable: get("bootable").as_deref() == Some("true"),
            ty: get("type").unwrap_or_else(|| "system".into()),
        });
        rest = &rest[end..];
    }
    Ok(out)
}

async fn do_provision(ctx: &Ctx, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let row = s.row(c, vm)?;
    let oc = map_of(row.get(field(c, "other_config")));
    let uuid = sv(row.get(field(c, "uuid")));
    let disks = match oc.get("disks") {
        Some(x) if !x.trim().is_empty() => parse_provision(x)?,
        _ => vec![],
    };
    let mut made: Vec<(String, String)> = Vec::new();
    let outcome: Result<()> = async {
        for d in &disks {
            let sr = if d.sr.is_empty() {
                storage::default_sr(s)?
            } else {
                let st = s.db.read();
                st.table(class("SR"))
                    .by_uuid(&d.sr)
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::UuidInvalid { r#type: "sr".into(), uuid: d.sr.clone() })?
            };
            let ty = match d.ty.as_str() {
                "system" | "user" | "ephemeral" | "suspend" | "crashdump" => d.ty.clone(),
                _ => "system".into(),
            };
            let vdi = storage::create_vdi(
                ctx,
                NewVdi {
                    sr: &sr,
                    name_label: String::new(),
                    name_description: "Created by template provisioner".into(),
                    virtual_size: d.size,
                    vdi_type: &ty,
                    sharable: false,
                    read_only: false,
                    other_config: Value::empty_map(),
                    sm_config: Value::Struct(vec![("vmhint".into(), Value::String(uuid.clone()))]),
                },
            )
            .await?;
            let vbd = crate::ops::new_vbd(
                ctx,
                vm,
                &vdi,
                &d.device,
                d.bootable,
                "RW",
                "Disk",
                ty != "system",
                Value::Struct(vec![("owner".into(), Value::from(""))]),
            )?;
            // The disk is named after its device, as xapi's provisioner does.
            let vdc = class("VDI");
            ctx.write(|tx| {
                tx.set(vdc, &vdi, field(vdc, "name_label"), Value::String(d.device.clone()));
                Ok(())
            })?;
            made.push((vbd, vdi));
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        for (vbd, vdi) in made {
            crate::logged(
                "removing a VBD made by a failed operation",
                ctx.write(|tx| {
                    tx.delete(class("VBD"), &vbd);
                    Ok(())
                }),
            );
            crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &vdi).await);
        }
        return Err(e);
    }
    ctx.write(|tx| {
        tx.update(c, vm, |r| {
            put(r, "is_a_template", false);
            if let Value::Struct(m) = &mut r.fields[field(c, "other_config")] {
                m.retain(|(k, _)| k != "disks" && k != "postinstall");
            }
        });
        Ok(())
    })
}

// ---------------------------------------------------------------- memory

/// The memory limits a setter asks for, with what happens to memory_target.
struct Limits {
    smin: i64,
    smax: i64,
    dmin: i64,
    dmax: i64,
    /// xapi keeps memory_target at dynamic_min when the dynamic range changes.
    target_is_dmin: bool,
}

/// Whether the VM runs (or last ran) with nested virtualisation: its
/// VM_metrics say so, or, without metrics, its platform does.
fn nested_virt(tx: &Txn, row: &Row) -> bool {
    let (c, mc) = (vm_c(), class("VM_metrics"));
    match tx.get(mc, row.get(field(c, "metrics")).as_str().unwrap_or("")) {
        Some(m) => m.get(field(mc, "nested_virt")).as_bool() == Some(true),
        None => {
            let v = row.get(field(c, "platform")).map_str("nested-virt").unwrap_or("").to_ascii_lowercase();
            v == "true" || v == "1"
        }
    }
}

/// xapi's assert_valid_for_current_context: control domains and nested-virt
/// guests must keep all limits pinned at static_max; everyone else needs
/// static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max.
fn check_memory_limits(tx: &Txn, row: &Row, l: &Limits) -> Result<()> {
    let c = vm_c();
    let ordered = l.smin <= l.dmin && l.dmin <= l.dmax && l.dmax <= l.smax;
    let pinned_reason = if row.get(field(c, "is_control_domain")).as_bool() == Some(true) {
        Some("control domain")
    } else if nested_virt(tx, row) {
        Some("nested virt")
    } else {
        None
    };
    match pinned_reason {
        Some(reason) => {
            if !(l.smin <= l.dmin && l.dmin == l.dmax && l.dmax == l.smax) {
                return Err(ApiError::MemoryConstraintViolationMaxpin { reason: reason.into() });
            }
        }
        None => {
            if !ordered {
                return Err(ApiError::MemoryConstraintViolationOrder);
            }
        }
    }
    Ok(())
}

async fn set_memory_fields(ctx: &Ctx, vm: &Ref<Vm>, op: &str, f: impl Fn(i64, i64, i64, i64) -> Limits) -> Result<()> {
    let c = vm_c();
    lifecycle::with_op(ctx, c, vm.as_str(), op, || async {
        let row = ctx.server.row(c, vm.as_str())?;
        let running = row.get(field(c, "power_state")).as_str() == Some("Running");
        let control_domain = row.get(field(c, "is_control_domain")).as_bool() == Some(true);
        ctx.write(|tx| {
            let row = tx.get(c, vm.as_str()).cloned().ok_or_else(|| handle_invalid(c, vm.as_str()))?;
            let gi = |n: &str| row.get(field(c, n)).as_int().unwrap_or(0);
            let l =
                f(gi("memory_static_min"), gi("memory_static_max"), gi("memory_dynamic_min"), gi("memory_dynamic_max"));
            check_memory_limits(tx, &row, &l)?;
            let static_changed = l.smin != gi("memory_static_min") || l.smax != gi("memory_static_max");
            tx.update(c, vm.as_str(), |r| {
                put(r, "memory_static_min", Value::Int(l.smin));
                put(r, "memory_static_max", Value::Int(l.smax));
                put(r, "memory_dynamic_min", Value::Int(l.dmin));
                put(r, "memory_dynamic_max", Value::Int(l.dmax));
                if l.target_is_dmin {
                    put(r, "memory_target", Value::Int(l.dmin));
                }
                // A running control domain takes new static limits at its next boot.
                if control_domain && running && static_changed {
                    put(r, "requires_reboot", true);
                }
            });
            Ok(())
        })?;
        if running && !control_domain {
            let uuid = vm_uuid(&ctx.server, vm.as_str())?;
            let target = ctx.server.row(c, vm.as_str())?.get(field(c, "memory_dynamic_max")).as_int().unwrap_or(0);
            ctx.server.backend.set_memory(&uuid, target).await.map_err(|e| be(ctx, e))?;
        }
        Ok(())
    })
    .await
}

async fn simple_set(ctx: &Ctx, vm: &Ref<Vm>, op: Option<&str>, name: &str, v: Value) -> Result<()> {
    let c = vm_c();
    let write = || {
        ctx.write(|tx| {
            if !tx.set(c, vm.as_str(), field(c, name), v.clone()) {
                return Err(handle_invalid(c, vm.as_str()));
            }
            Ok(())
        })
    };
    match op {
        Some(op) => lifecycle::with_op(ctx, c, vm.as_str(), op, || async { write() }).await,
        None => {
            ctx.server.row(c, vm.as_str())?;
            write()
        }
    }
}

fn devices_in_use(s: &Server, vm: &str, devs: &str, dc: &str, key: &str) -> Result<Vec<String>> {
    let c = vm_c();
    let st = s.db.read();
    let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
    let d = class(dc);
    Ok(members(row.get(field(c, devs))).iter().filter_map(|x| st.get(d, x).map(|r| sv(r.get(field(d, key))))).collect())
}

// ----------------------------------------------------------- the messages

impl VmApi for Server {
    /// Import an XVA fetched over HTTP, exactly as `PUT /import` would.
    async fn import(
        &self,
        ctx: &Ctx,
        url: String,
        sr: Ref<Sr>,
        full_restore: bool,
        force: bool,
    ) -> Result<Vec<Ref<Vm>>> {
        let src = class("SR");
        let sr = if sr.is_null() {
            storage::default_sr(self)?
        } else {
            self.row(src, sr.as_str())?;
            sr.into_string()
        };
        let iso = self.row(src, &sr)?.get(field(src, "content_type")).as_str() == Some("iso");
        if iso {
            return Err(ApiError::SrOperationNotSupported { sr });
        }
        storage::assert_plugged(self, &sr)?;
        let task = ctx.task.clone().ok_or_else(|| crate::internal("VM.import runs without a task"))?;
        let (mut body, length) = crate::importexport::url::get(&url).await?;
        let mut inner =
            Ctx::new(<Server as std::clone::Clone>::clone(self), ctx.session.clone(), ctx.method.clone(), ctx.local);
        inner.task = Some(task.clone());
        let cfg = crate::importexport::import::Config {
            mode: crate::importexport::import::Mode::Full { sr },
            restore: full_restore,
            force,
            task: task.clone(),
        };
        let handle = crate::handlers::transfer::HttpTask::existing(&task);
        let v = crate::handlers::import::receive(self, Arc::new(inner), handle, cfg, length, &mut *body).await?;
        Ok(v.as_array().unwrap_or(&[]).iter().filter_map(|r| r.as_str()).map(Ref::new).collect())
    }

    async fn start(&self, ctx: &Ctx, vm: Ref<Vm>, start_paused: bool, _force: bool) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "start", || async {
            let host = choose_host(self, vm.as_str())?;
            do_start(ctx, vm.as_str(), &host, start_paused).await
        })
        .await
    }

    async fn start_on(&self, ctx: &Ctx, vm: Ref<Vm>, host: Ref<Host>, start_paused: bool, _force: bool) -> Result<()> {
        self.row(class("host"), host.as_str())?;
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "start_on", || {
            do_start(ctx, vm.as_str(), host.as_str(), start_paused)
        })
        .await
    }

    async fn pause(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "pause", || async {
            let uuid = vm_uuid(self, vm.as_str())?;
            self.backend.pause(&uuid).await.map_err(|e| be(ctx, e))?;
            let (c, mc) = (vm_c(), class("VM_metrics"));
            ctx.write(|tx| {
                tx.set(c, vm.as_str(), field(c, "power_state"), Value::from("Paused"));
                let m = tx.get(c, vm.as_str()).map(|r| sv(r.get(field(c, "metrics")))).unwrap_or_default();
                tx.set(mc, &m, field(mc, "state"), Value::Array(vec![Value::from("paused")]));
                Ok(())
            })
        })
        .await
    }

    async fn unpause(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "unpause", || async {
            let uuid = vm_uuid(self, vm.as_str())?;
            self.backend.unpause(&uuid).await.map_err(|e| be(ctx, e))?;
            let (c, mc) = (vm_c(), class("VM_metrics"));
            ctx.write(|tx| {
                tx.set(c, vm.as_str(), field(c, "power_state"), Value::from("Running"));
                let m = tx.get(c, vm.as_str()).map(|r| sv(r.get(field(c, "metrics")))).unwrap_or_default();
                tx.set(mc, &m, field(mc, "state"), Value::Array(vec![Value::from("running")]));
                Ok(())
            })
        })
        .await
    }

    async fn clean_shutdown(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "clean_shutdown", || do_clean_shutdown(ctx, vm.as_str())).await
    }

    async fn hard_shutdown(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        cancel_soft_ops(self, vm.as_str());
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "hard_shutdown", || do_hard_shutdown(ctx, vm.as_str())).await
    }

    async fn shutdown(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        // Try a clean shutdown first, then force it.
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "shutdown", || async {
            let clean = if self.row(vm_c(), vm.as_str())?.get(field(vm_c(), "power_state")).as_str() == Some("Running")
            {
                do_clean_shutdown(ctx, vm.as_str()).await
            } else {
                Err(crate::internal("not running"))
            };
            match clean {
                Ok(()) => Ok(()),
                Err(ApiError::TaskCancelled { task }) => Err(ApiError::TaskCancelled { task }),
                Err(_) => do_hard_shutdown(ctx, vm.as_str()).await,
            }
        })
        .await
    }

    async fn clean_reboot(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "clean_reboot", || do_reboot(ctx, vm.as_str(), true)).await
    }

    async fn hard_reboot(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        cancel_soft_ops(self, vm.as_str());
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "hard_reboot", || do_reboot(ctx, vm.as_str(), false)).await
    }

    async fn suspend(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "suspend", || async {
            let vdi = write_memory_image(ctx, vm.as_str(), false).await?;
            let c = vm_c();
            ctx.write(|tx| {
                mark_stopped(tx, vm.as_str(), true);
                tx.set(c, vm.as_str(), field(c, "suspend_VDI"), Value::String(vdi.clone()));
                Ok(())
            })
        })
        .await
    }

    async fn resume(&self, ctx: &Ctx, vm: Ref<Vm>, start_paused: bool, _force: bool) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "resume", || async {
            let host = choose_host(self, vm.as_str())?;
            do_resume(ctx, vm.as_str(), &host, start_paused).await
        })
        .await
    }

    async fn resume_on(&self, ctx: &Ctx, vm: Ref<Vm>, host: Ref<Host>, start_paused: bool, _force: bool) -> Result<()> {
        self.row(class("host"), host.as_str())?;
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "resume_on", || {
            do_resume(ctx, vm.as_str(), host.as_str(), start_paused)
        })
        .await
    }

    async fn pool_migrate(
        &self,
        ctx: &Ctx,
        vm: Ref<Vm>,
        host: Ref<Host>,
        _options: BTreeMap<String, String>,
    ) -> Result<()> {
        self.row(class("host"), host.as_str())?;
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "pool_migrate", || async {
            if host.as_str() != self.host {
                return Err(handle_invalid(class("host"), host.as_str()));
            }
            let spec = domain_spec(self, vm.as_str())?;
            let domid = self.backend.migrate(&spec, cancel_of(ctx)).await.map_err(|e| be(ctx, e))?;
            let c = vm_c();
            ctx.write(|tx| {
                tx.update(c, vm.as_str(), |r| {
                    put(r, "domid", Value::Int(domid));
                    put(r, "resident_on", host.as_str());
                });
                Ok(())
            })
        })
        .await
    }

    async fn power_state_reset(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        let c = vm_c();
        let row = self.row(c, vm.as_str())?;
        if row.get(field(c, "is_control_domain")).as_bool() == Some(true) {
            return Err(ApiError::CannotResetControlDomain { vm: vm.to_string() });
        }
        let uuid = sv(row.get(field(c, "uuid")));
        // A live VM is only forgotten if its domain is really gone (xapi_vm.ml):
        // never lose track of a running domain.
        if matches!(row.get(field(c, "power_state")).as_str(), Some("Running") | Some("Paused")) {
            let resident = sv(row.get(field(c, "resident_on")));
            if resident == self.host {
                if self.backend.is_running(&uuid) {
                    // xapi sends only the VM, although the datamodel documents [vm; domid].
                    return Err(ApiError::Other { code: "DOMAIN_EXISTS".into(), params: vec![vm.to_string()] });
                }
            } else if host_is_live(self, &resident) {
                return Err(ApiError::HostIsLive { host: resident });
            }
        }
        crate::logged("stopping the domain", self.backend.shutdown(&uuid, false, None).await);
        ctx.write(|tx| {
            mark_stopped(tx, vm.as_str(), false);
            tx.update(c, vm.as_str(), |r| {
                put(r, "suspend_VDI", model::NULL_REF);
                put(r, "current_operations", Value::empty_map());
            });
            Ok(())
        })
    }

    async fn clone(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String) -> Result<Ref<Vm>> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "clone", || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Clone, None, &[])
        })
        .await
        .map(Ref::new)
    }

    async fn copy(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String, sr: Ref<Sr>) -> Result<Ref<Vm>> {
        if !sr.is_null() {
            self.row(class("SR"), sr.as_str())?;
        }
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "copy", || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Copy, Some(sr.as_str()), &[])
        })
        .await
        .map(Ref::new)
    }

    async fn snapshot(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String, ignore_vdis: Vec<Ref<Vdi>>) -> Result<Ref<Vm>> {
        let ignore: Vec<String> = ignore_vdis.into_iter().map(Ref::into_string).collect();
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "snapshot", || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Snapshot, None, &ignore)
        })
        .await
        .map(Ref::new)
    }

    async fn snapshot_with_quiesce(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String) -> Result<Ref<Vm>> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "snapshot_with_quiesce", || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Snapshot, None, &[])
        })
        .await
        .map(Ref::new)
    }

    async fn checkpoint(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String) -> Result<Ref<Vm>> {
        let c = vm_c();
        lifecycle::with_op(ctx, c, vm.as_str(), "checkpoint", || async {
            let snap = duplicate(ctx, vm.as_str(), &new_name, Kind::Snapshot, None, &[]).await?;
            let ps = sv(self.row(c, vm.as_str())?.get(field(c, "power_state")));
            // The memory image: the running guest's, or a copy of the suspend image.
            let mem = if ps == "Suspended" {
                let sv_vdi = sv(self.row(c, vm.as_str())?.get(field(c, "suspend_VDI")));
                storage::clone_vdi(ctx, &sv_vdi).await?
            } else {
                write_memory_image(ctx, vm.as_str(), true).await?
            };
            ctx.write(|tx| {
                tx.update(c, &snap, |r| {
                    put(r, "power_state", "Suspended");
                    put(r, "suspend_VDI", mem.as_str());
                });
                Ok(())
            })?;
            Ok(snap)
        })
        .await
        .map(Ref::new)
    }

    async fn revert(&self, ctx: &Ctx, snapshot: Ref<Vm>) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, c, snapshot.as_str(), "revert", || async {
            let snap = self.row(c, snapshot.as_str())?;
            let target = sv(snap.get(field(c, "snapshot_of")));
            if self.row(c, &target).is_err() {
                return Err(ApiError::VmRevertFailed { vm: target.clone(), snapshot: snapshot.to_string() });
            }
            lifecycle::with_op(ctx, c, &target, "reverting", || revert_to(ctx, snapshot.as_str(), &target)).await
        })
        .await
    }

    async fn provision(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm_c(), vm.as_str(), "provision", || do_provision(ctx, vm.as_str())).await
    }

    async fn get_allowed_vbd_devices(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<Vec<String>> {
        let used = devices_in_use(self, vm.as_str(), "VBDs", "VBD", "userdevice")?;
        Ok((0..=254).map(|i: i32| i.to_string()).filter(|d| !used.contains(d)).collect())
    }

    async fn get_allowed_vif_devices(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<Vec<String>> {
        let used = devices_in_use(self, vm.as_str(), "VIFs", "VIF", "device")?;
        Ok((0..=6).map(|i: i32| i.to_string()).filter(|d| !used.contains(d)).collect())
    }

    async fn assert_can_boot_here(&self, _ctx: &Ctx, self_: Ref<Vm>, host: Ref<Host>) -> Result<()> {
        self.row(vm_c(), self_.as_str())?;
        assert_can_boot(self, self_.as_str(), host.as_str(), true)
    }

    async fn get_possible_hosts(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<Vec<Ref<Host>>> {
        Ok(if assert_can_boot(self, vm.as_str(), &self.host, true).is_ok() {
            vec![Ref::new(self.host.clone())]
        } else {
            vec![]
        })
    }

    async fn assert_agile(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<()> {
        self.row(vm_c(), self_.as_str()).map(|_| ())
    }

    async fn get_boot_record(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<VmRecord> {
        let row = self.row(vm_c(), self_.as_str())?;
        if let Some(e) = check_now(self, self_.as_str(), &row, "get_boot_record", true) {
            return Err(e);
        }
        VmRecord::from_value(&Value::Row(row)).map_err(|e| crate::internal(e.to_string()))
    }

    async fn assert_operation_valid(&self, _ctx: &Ctx, self_: Ref<Vm>, op: VmOperations) -> Result<()> {
        let row = self.row(vm_c(), self_.as_str())?;
        match check_now(self, self_.as_str(), &row, op.as_str(), false) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn update_allowed_operations(&self, ctx: &Ctx, self_: Ref<Vm>) -> Result<()> {
        let c = vm_c();
        ctx.write(|tx| {
            if !tx.touch(c, self_.as_str()) {
                return Err(handle_invalid(c, self_.as_str()));
            }
            Ok(())
        })
    }

    async fn set_memory_dynamic_range(&self, ctx: &Ctx, self_: Ref<Vm>, min: i64, max: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_dynamic_range", |smin, smax, _, _| Limits {
            smin,
            smax,
            dmin: min,
            dmax: max,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_dynamic_min(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_dynamic_range", |smin, smax, _, dmax| Limits {
            smin,
            smax,
            dmin: value,
            dmax,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_dynamic_max(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_dynamic_range", |smin, smax, dmin, _| Limits {
            smin,
            smax,
            dmin,
            dmax: value,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_static_range(&self, ctx: &Ctx, self_: Ref<Vm>, min: i64, max: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_static_range", |_, _, dmin, dmax| Limits {
            smin: min,
            smax: max,
            dmin,
            dmax,
            target_is_dmin: false,
        })
        .await
    }

    async fn set_memory_static_min(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_static_range", |_, smax, dmin, dmax| Limits {
            smin: value,
            smax,
            dmin,
            dmax,
            target_is_dmin: false,
        })
        .await
    }

    async fn set_memory_static_max(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_static_range", |smin, _, dmin, dmax| Limits {
            smin,
            smax: value,
            dmin,
            dmax,
            target_is_dmin: false,
        })
        .await
    }

    async fn set_memory_limits(
        &self,
        ctx: &Ctx,
        self_: Ref<Vm>,
        static_min: i64,
        static_max: i64,
        dynamic_min: i64,
        dynamic_max: i64,
    ) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_memory_limits", |_, _, _, _| Limits {
            smin: static_min,
            smax: static_max,
            dmin: dynamic_min,
            dmax: dynamic_max,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        // set_memory_limits with static_min kept and the other three at `value`.
        set_memory_fields(ctx, &self_, "changing_memory_limits", |smin, _, _, _| Limits {
            smin,
            smax: value,
            dmin: value,
            dmax: value,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_target_live(&self, ctx: &Ctx, self_: Ref<Vm>, target: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, "changing_memory_live", |smin, smax, dmin, _| Limits {
            smin,
            smax,
            dmin: dmin.min(target),
            dmax: target,
            target_is_dmin: false,
        })
        .await
    }

    async fn wait_memory_target_live(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<()> {
        self.row(vm_c(), self_.as_str()).map(|_| ())
    }

    async fn get_cooperative(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<bool> {
        self.row(vm_c(), self_.as_str()).map(|_| true)
    }

    async fn compute_memory_overhead(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<i64> {
        let c = vm_c();
        let row = self.row(c, vm.as_str())?;
        // About 1% of memory plus a per-vCPU amount, page aligned.
        let mem = row.get(field(c, "memory_static_max")).as_int().unwrap_or(0);
        let vcpus = row.get(field(c, "VCPUs_max")).as_int().unwrap_or(1);
        Ok(((mem / 100 + vcpus * (1 << 20) + (1 << 20)) + 4095) / 4096 * 4096)
    }

    async fn maximise_memory(&self, _ctx: &Ctx, self_: Ref<Vm>, total: i64, _approximate: bool) -> Result<i64> {
        self.row(vm_c(), self_.as_str())?;
        Ok((total - (total / 100)).max(0))
    }

    async fn set_vcpus_max(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, c, self_.as_str(), "changing_VCPUs", || async {
            ctx.write(|tx| {
                let row = tx.get(c, self_.as_str()).cloned().ok_or_else(|| handle_invalid(c, self_.as_str()))?;
                let at = row.get(field(c, "VCPUs_at_startup")).as_int().unwrap_or(1);
                if value < 1 || value < at {
                    return Err(vcpu_value_error(value));
                }
                let running_control_domain = row.get(field(c, "is_control_domain")).as_bool() == Some(true)
                    && row.get(field(c, "power_state")).as_str() == Some("Running");
                tx.update(c, self_.as_str(), |r| {
                    put(r, "VCPUs_max", Value::Int(value));
                    // A running control domain takes it at its next boot.
                    if running_control_domain {
                        put(r, "requires_reboot", true);
                    }
                });
                Ok(())
            })
        })
        .await
    }

    async fn set_vcpus_at_startup(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        // No operation lock (xapi does not take one for this setter).
        let c = vm_c();
        ctx.write(|tx| {
            let row = tx.get(c, self_.as_str()).cloned().ok_or_else(|| handle_invalid(c, self_.as_str()))?;
            if lifecycle::is_dom0(tx, self_.as_str(), &row) {
                return Err(ApiError::OperationNotAllowed {
                    reason: "set_VCPUs_at_startup is not allowed on dom0".into(),
                });
            }
            let max = row.get(field(c, "VCPUs_max")).as_int().unwrap_or(1);
            if value < 1 || value > max {
                return Err(vcpu_value_error(value));
            }
            tx.set(c, self_.as_str(), field(c, "VCPUs_at_startup"), Value::Int(value));
            Ok(())
        })
    }

    async fn set_vcpus_number_live(&self, ctx: &Ctx, self_: Ref<Vm>, nvcpu: i64) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, c, self_.as_str(), "changing_VCPUs_live", || async {
            let row = self.row(c, self_.as_str())?;
            let max = row.get(field(c, "VCPUs_max")).as_int().unwrap_or(1);
            if nvcpu < 1 || nvcpu > max {
                return Err(ApiError::InvalidValue { field: "nvcpu".into(), value: nvcpu.to_string() });
            }
            let uuid = sv(row.get(field(c, "uuid")));
            self.backend.set_vcpus(&uuid, nvcpu).await.map_err(|e| be(ctx, e))?;
            let mc = class("VM_metrics");
            ctx.write(|tx| {
                let m = tx.get(c, self_.as_str()).map(|r| sv(r.get(field(c, "metrics")))).unwrap_or_default();
                tx.set(mc, &m, field(mc, "VCPUs_number"), Value::Int(nvcpu));
                Ok(())
            })
        })
        .await
    }

    async fn add_to_vcpus_params_live(&self, ctx: &Ctx, self_: Ref<Vm>, key: String, value: String) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, c, self_.as_str(), "changing_VCPUs_live", || async {
            ctx.write(|tx| {
                tx.update(c, self_.as_str(), |r| {
                    if let Value::Struct(m) = &mut r.fields[field(c, "VCPUs_params")] {
                        m.retain(|(k, _)| *k != key);
                        m.push((key.clone(), Value::String(value.clone())));
                    }
                });
                Ok(())
            })
        })
        .await
    }

    async fn set_hvm_boot_policy(&self, ctx: &Ctx, self_: Ref<Vm>, value: String) -> Result<()> {
        let dt = if value.is_empty() { "pv" } else { "hvm" };
        simple_set(ctx, &self_, None, "HVM_boot_policy", Value::String(value)).await?;
        simple_set(ctx, &self_, None, "domain_type", Value::from(dt)).await
    }

    async fn set_domain_type(&self, ctx: &Ctx, self_: Ref<Vm>, value: DomainType) -> Result<()> {
        let policy = if matches!(value, DomainType::Hvm) { "BIOS order" } else { "" };
        simple_set(ctx, &self_, None, "domain_type", Value::from(value.as_str())).await?;
        simple_set(ctx, &self_, None, "HVM_boot_policy", Value::from(policy)).await
    }

    async fn set_actions_after_crash(&self, ctx: &Ctx, self_: Ref<Vm>, value: OnCrashBehaviour) -> Result<()> {
        simple_set(ctx, &self_, None, "actions_after_crash", Value::from(value.as_str())).await
    }

    async fn set_suspend_vdi(&self, ctx: &Ctx, self_: Ref<Vm>, value: Ref<Vdi>) -> Result<()> {
        self.row(class("VDI"), value.as_str())?;
        simple_set(ctx, &self_, None, "suspend_VDI", value.to_value()).await
    }

    async fn set_order(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        simple_set(ctx, &self_, None, "order", Value::Int(value)).await
    }

    async fn set_start_delay(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        simple_set(ctx, &self_, None, "start_delay", Value::Int(value)).await
    }

    async fn set_shutdown_delay(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        simple_set(ctx, &self_, None, "shutdown_delay", Value::Int(value)).await
    }

    async fn set_hvm_shadow_multiplier(&self, ctx: &Ctx, self_: Ref<Vm>, value: f64) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, c, self_.as_str(), "changing_shadow_memory", || async {
            if value < 1.0 {
                return Err(ApiError::InvalidValue { field: "multiplier".into(), value: ocaml_string_of_float(value) });
            }
            ctx.write(|tx| {
                if !tx.set(c, self_.as_str(), field(c, "HVM_shadow_multiplier"), Value::Float(value)) {
                    return Err(handle_invalid(c, self_.as_str()));
                }
                Ok(())
            })
        })
        .await
    }

    async fn set_shadow_multiplier_live(&self, ctx: &Ctx, self_: Ref<Vm>, multiplier: f64) -> Result<()> {
        simple_set(ctx, &self_, Some("changing_shadow_memory_live"), "HVM_shadow_multiplier", Value::Float(multiplier))
            .await
    }

    async fn set_ha_always_run(&self, ctx: &Ctx, self_: Ref<Vm>, value: bool) -> Result<()> {
        simple_set(ctx, &self_, None, "ha_always_run", Value::Bool(value)).await
    }

    async fn set_ha_restart_priority(&self, ctx: &Ctx, self_: Ref<Vm>, value: String) -> Result<()> {
        if !matches!(value.as_str(), "" | "restart" | "best-effort") {
            return Err(ApiError::InvalidValue { field: "ha_restart_priority".into(), value });
        }
        simple_set(ctx, &self_, None, "ha_restart_priority", Value::String(value)).await
    }

    async fn set_has_vendor_device(&self, ctx: &Ctx, self_: Ref<Vm>, value: bool) -> Result<()> {
        simple_set(ctx, &self_, Some("changing_NVRAM"), "has_vendor_device", Value::Bool(value)).await
    }

    async fn set_bios_strings(&self, ctx: &Ctx, self_: Ref<Vm>, value: BTreeMap<String, String>) -> Result<()> {
        simple_set(ctx, &self_, None, "bios_strings", value.to_value()).await
    }

    async fn copy_bios_strings(&self, ctx: &Ctx, vm: Ref<Vm>, host: Ref<Host>) -> Result<()> {
        let h = self.row(class("host"), host.as_str())?;
        let bs = h.get(field(class("host"), "bios_strings")).clone();
        simple_set(ctx, &vm, None, "bios_strings", bs).await
    }

    async fn set_nvram(&self, ctx: &Ctx, self_: Ref<Vm>, value: BTreeMap<String, String>) -> Result<()> {
        simple_set(ctx, &self_, Some("changing_NVRAM"), "NVRAM", value.to_value()).await
    }

    async fn add_to_nvram(&self, ctx: &Ctx, self_: Ref<Vm>, key: String, value: String) -> Result<()> {
        let mut m = map_of(self.row(vm_c(), self_.as_str())?.get(field(vm_c(), "NVRAM")));
        m.insert(key, value);
        simple_set(ctx, &self_, Some("changing_NVRAM"), "NVRAM", m.to_value()).await
    }

    async fn remove_from_nvram(&self, ctx: &Ctx, self_: Ref<Vm>, key: String) -> Result<()> {
        let mut m = map_of(self.row(vm_c(), self_.as_str())?.get(field(vm_c(), "NVRAM")));
        m.remove(&key);
        simple_set(ctx, &self_, Some("changing_NVRAM"), "NVRAM", m.to_value()).await
    }

    async fn query_services(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<BTreeMap<String, String>> {
        self.row(vm_c(), self_.as_str())?;
        Ok(BTreeMap::from([("rpc".to_string(), "VM RPC".to_string())]))
    }

    async fn get_data_sources(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<Vec<DataSourceRecord>> {
        let uuid = vm_uuid(self, self_.as_str())?;
        Ok(crate::rrd::sources::api_list(self, Owner::Vm(&uuid)))
    }

    async fn query_data_source(&self, _ctx: &Ctx, self_: Ref<Vm>, data_source: String) -> Result<f64> {
        let uuid = vm_uuid(self, self_.as_str())?;
        crate::rrd::sources::api_query(self, Owner::Vm(&uuid), &data_source)
    }

    async fn record_data_source(&self, _ctx: &Ctx, self_: Ref<Vm>, data_source: String) -> Result<()> {
        let uuid = vm_uuid(self, self_.as_str())?;
        crate::rrd::sources::api_record(self, Owner::Vm(&uuid), &data_source)
    }

    async fn forget_data_source_archives(&self, _ctx: &Ctx, self_: Ref<Vm>, data_source: String) -> Result<()> {
        let uuid = vm_uuid(self, self_.as_str())?;
        crate::rrd::sources::api_forget(self, Owner::Vm(&uuid), &data_source).await
    }

    async fn set_appliance(&self, ctx: &Ctx, self_: Ref<Vm>, value: Ref<VmAppliance>) -> Result<()> {
        if !value.is_null() {
            self.row(class("VM_appliance"), value.as_str())?;
        }
        simple_set(ctx, &self_, None, "appliance", value.to_value()).await
    }
}

// ------------------------------------------------------------------ revert

/// Columns VM.revert never copies from the snapshot's metadata (xapi's
/// xapi_vm_snapshot.ml do_not_copy): identity, runtime state, and the
/// devices, which are rebuilt from the snapshot's own.
const REVERT_DO_NOT_COPY: &[&str] = &[
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
const REVERT_DO_NOT_COPY_NO_METADATA: &[&str] = &[
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
fn revert_fields(snap: &Row) -> Result<Vec<(usize, Value)>> {
    let c = vm_c();
    let meta = sv(snap.get(field(c, "snapshot_metadata")));
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
async fn revert_to(ctx: &Ctx, snapshot: &str, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let (vbd, vif) = (class("VBD"), class("VIF"));
    if s.row(c, vm)?.get(field(c, "power_state")).as_str() != Some("Halted") {
        do_hard_shutdown(ctx, vm).await?;
    }
    let snap = s.row(c, snapshot)?;
    let fields = revert_fields(&snap)?;
    ctx.write(|tx| {
        tx.update(c, vm, |r| {
            for (i, v) in fields {
                r.fields[i] = v;
            }
            put(r, "ha_always_run", false);
            // An unspecified domain type follows the boot policy.
            if r.get(field(c, "domain_type")).as_str() == Some("unspecified") {
                let hvm = !sv(r.get(field(c, "HVM_boot_policy"))).is_empty();
                put(r, "domain_type", if hvm { "hvm" } else { "pv" });
            }
        });
        // Refs to objects that are gone read as NULL.
        let row = tx.get(c, vm).cloned().ok_or_else(|| handle_invalid(c, vm))?;
        for (i, f) in c.fields.iter().enumerate() {
            if let Type::Ref(target) = f.ty {
                let r = sv(row.get(i));
                let dangling = !null(row.get(i)) && model::schema::class(target).is_some_and(|tc| !tx.exists(tc, &r));
                if dangling {
                    tx.set(c, vm, i, Value::from(model::NULL_REF));
                }
            }
        }
        Ok(())
    })?;
    let outcome = revert_devices(ctx, vm, &snap).await;
    // The snapshot's power state, or Halted if the devices could not be restored.
    let ps = if outcome.is_ok() { sv(snap.get(field(c, "power_state"))) } else { "Halted".to_string() };
    ctx.write(|tx| {
        let row = tx.get(c, vm).cloned().ok_or_else(|| handle_invalid(c, vm))?;
        tx.update(c, vm, |r| {
            put(r, "power_state", ps.as_str());
            put(r, "resident_on", model::NULL_REF);
            put(r, "scheduled_to_be_resident_on", model::NULL_REF);
            put(r, "domid", Value::Int(-1));
            put(r, "parent", snapshot);
            if ps == "Halted" {
                put(r, "requires_reboot", false);
            }
        });
        if ps == "Halted" {
            for b in members(row.get(field(c, "VBDs"))) {
                tx.set(vbd, &b, field(vbd, "currently_attached"), Value::Bool(false));
            }
            for v in members(row.get(field(c, "VIFs"))) {
                tx.set(vif, &v, field(vif, "currently_attached"), Value::Bool(false));
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
async fn revert_devices(ctx: &Ctx, vm: &str, snap: &Row) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let (vbd, vdi, vif, src) = (class("VBD"), class("VDI"), class("VIF"), class("SR"));
    let cur = s.row(c, vm)?;
    let (snap_vbds, vm_vbds): (Vec<Arc<Row>>, Vec<Arc<Row>>) = {
        let st = s.db.read();
        let rows = |row: &Row| -> Vec<Arc<Row>> {
            members(row.get(field(c, "VBDs"))).iter().filter_map(|b| st.get(vbd, b).cloned()).collect()
        };
        (rows(snap), rows(&cur))
    };
    let is_disk = |b: &Row| b.get(field(vbd, "type")).as_str() == Some("Disk");
    let vdi_of = |b: &Row| sv(b.get(field(vbd, "VDI")));
    // What each of the snapshot's disks is a snapshot of.
    let snapshot_of = |d: &str| -> String {
        s.db.read().get(vdi, d).map(|r| sv(r.get(field(vdi, "snapshot_of")))).unwrap_or_default()
    };
    let originals: Vec<String> =
        snap_vbds.iter().filter(|b| is_disk(b)).map(|b| snapshot_of(&vdi_of(b))).filter(|o| !o.is_empty()).collect();
    // The VM's disks that the snapshot has a copy of go (others stay, detached),
    // with its memory image; ISOs are never deleted.
    let doomed: Vec<String> = {
        let st = s.db.read();
        let mut v: Vec<String> =
            vm_vbds.iter().filter(|b| is_disk(b)).map(|b| vdi_of(b)).filter(|d| originals.contains(d)).collect();
        v.push(sv(cur.get(field(c, "suspend_VDI"))));
        v.retain(|d| {
            st.get(vdi, d)
                .and_then(|r| st.get(src, r.get(field(vdi, "SR")).as_str().unwrap_or("")))
                .is_some_and(|sr| sr.get(field(src, "content_type")).as_str() != Some("iso"))
        });
        v
    };
    // Clone the snapshot's disks (CDs and empty drives are shared as they are).
    let (cloned, created) = dup_disks(ctx, &snap_vbds, Kind::Clone, None, &[]).await?;
    let snap_susp = sv(snap.get(field(c, "suspend_VDI")));
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
    let snap_vifs = members(snap.get(field(c, "VIFs")));
    let res = ctx.write(|tx| {
        // Out with the VM's devices...
        for b in members(cur.get(field(c, "VBDs"))) {
            if let Some(m) = tx.get(vbd, &b).map(|r| sv(r.get(field(vbd, "metrics")))) {
                tx.delete(class("VBD_metrics"), &m);
            }
            tx.delete(vbd, &b);
        }
        for v in members(cur.get(field(c, "VIFs"))) {
            tx.delete(vif, &v);
        }
        // ...in with copies of the snapshot's, on the cloned disks.
        for (br, new_vdi) in &cloned {
            let mut nb = (**br).clone();
            put(&mut nb, "uuid", model::new_uuid());
            put(&mut nb, "VM", vm);
            put(&mut nb, "VDI", new_vdi.clone().unwrap_or_else(|| model::NULL_REF.into()));
            put(&mut nb, "empty", new_vdi.is_none() || br.get(field(vbd, "empty")).as_bool() == Some(true));
            put(&mut nb, "status_code", Value::Int(0));
            put(&mut nb, "status_detail", "");
            put(&mut nb, "allowed_operations", Value::empty_set());
            put(&mut nb, "current_operations", Value::empty_map());
            put(&mut nb, "qos_supported_algorithms", Value::empty_set());
            put(&mut nb, "runtime_properties", Value::empty_map());
            let m = model::new_ref();
            obj(tx, "VBD_metrics", &m, vec![]);
            put(&mut nb, "metrics", m);
            tx.insert(&model::new_ref(), nb);
        }
        // Every snapshot of an old disk is now a snapshot of its replacement.
        for (old, new) in &replaced {
            let tree: Vec<String> = tx
                .refs(vdi)
                .into_iter()
                .filter(|r| tx.get(vdi, r).is_some_and(|row| row.get(field(vdi, "snapshot_of")).as_str() == Some(old)))
                .collect();
            for r in tree {
                tx.set(vdi, &r, field(vdi, "snapshot_of"), Value::String(new.clone()));
            }
        }
        // The snapshot's VIFs, MACs and all.
        for v in &snap_vifs {
            let Some(mut nv) = tx.get(vif, v).cloned() else { continue };
            put(&mut nv, "uuid", model::new_uuid());
            put(&mut nv, "VM", vm);
            put(&mut nv, "MAC_autogenerated", false);
            put(&mut nv, "allowed_operations", Value::empty_set());
            put(&mut nv, "current_operations", Value::empty_map());
            tx.insert(&model::new_ref(), nv);
        }
        let susp = mem_image.clone().unwrap_or_else(|| model::NULL_REF.into());
        tx.set(c, vm, field(c, "suspend_VDI"), Value::String(susp));
        // Metrics: the VM's go, copies of the snapshot's take their place.
        for (f, mc) in [("guest_metrics", "VM_guest_metrics"), ("metrics", "VM_metrics")] {
            let mcls = class(mc);
            tx.delete(mcls, &sv(cur.get(field(c, f))));
            let new = match tx.get(mcls, &sv(snap.get(field(c, f)))).cloned() {
                Some(mut m) => {
                    let r = model::new_ref();
                    put(&mut m, "uuid", model::new_uuid());
                    tx.insert(&r, m);
                    r
                }
                None => model::NULL_REF.to_string(),
            };
            tx.set(c, vm, field(c, f), Value::String(new));
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

// ------------------------------------------------------- host power-off

/// How long guests get to shut down cleanly before a host powers off.
pub const POWEROFF_CLEAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Guests resident on `host` whose domains are live (Running or Paused), not
/// control domains; `self_managed` includes those with
/// `other_config:auto_poweroff`, which manage their own power-off.
fn live_guests(s: &Server, host: &str, self_managed: bool) -> Vec<(String, bool)> {
    let c = vm_c();
    let st = s.db.read();
    let mut v: Vec<(String, bool)> = st
        .table(c)
        .iter()
        .filter(|(_, r)| {
            r.get(field(c, "resident_on")).as_str() == Some(host)
                && matches!(r.get(field(c, "power_state")).as_str(), Some("Running") | Some("Paused"))
                && r.get(field(c, "is_control_domain")).as_bool() != Some(true)
                && (self_managed || r.get(field(c, "other_config")).map_str("auto_poweroff").is_none())
        })
        .map(|(r, row)| {
            let clean = members(row.get(field(c, "allowed_operations"))).iter().any(|o| o == "clean_shutdown");
            (r.clone(), clean)
        })
        .collect();
    v.sort();
    v
}

/// A context for work the server does on its own behalf.
fn internal_ctx(s: &Server, method: &str) -> Ctx {
    Ctx::new(Clone::clone(s), String::new(), method.to_string(), true)
}

/// What a host does to its guests before it powers off (xapi's
/// prepare_for_poweroff, with nowhere to evacuate them to): ask those that
/// can to shut down cleanly, give them a minute, force off whatever is still
/// live, and finally account for guests that go down with the host.
pub async fn shut_down_guests(s: &Server, host: &str) {
    let mut set = tokio::task::JoinSet::new();
    let mut tasks = Vec::new();
    for (vm, _) in live_guests(s, host, false).into_iter().filter(|(_, clean)| *clean) {
        let mut ctx = internal_ctx(s, "VM.clean_shutdown");
        if let Ok(t) = crate::task::new_task(&ctx, "Async.VM.clean_shutdown", "") {
            tasks.push(t.clone());
            ctx.task = Some(t);
        }
        let s2 = Clone::clone(s);
        set.spawn(async move {
            crate::logged(
                "clean shutdown of a VM as the host stops",
                VmApi::clean_shutdown(&s2, &ctx, Ref::new(vm)).await,
            );
            if let Some(t) = &ctx.task {
                crate::task::finish_sync(&ctx, t);
            }
        });
    }
    let all = async { while set.join_next().await.is_some() {} };
    tokio::pin!(all);
    if tokio::time::timeout(POWEROFF_CLEAN_TIMEOUT, &mut all).await.is_err() {
        for t in &tasks {
            s.tasks.request_cancel(t);
        }
        all.await;
    }
    for (vm, _) in live_guests(s, host, false) {
        let ctx = internal_ctx(s, "VM.hard_shutdown");
        crate::logged("hard shutdown of a VM as the host stops", VmApi::hard_shutdown(s, &ctx, Ref::new(vm)).await);
    }
    // The rest (self-managed ones, or any that refused) stop with the host.
    for (vm, _) in live_guests(s, host, true) {
        if let Ok(uuid) = vm_uuid(s, &vm) {
            crate::logged("stopping the domain", s.backend.shutdown(&uuid, false, None).await);
        }
        crate::logged(
            "recording a VM halted as the host stops",
            s.db.write(|tx| {
                mark_stopped(tx, &vm, false);
                tx.set(vm_c(), &vm, field(vm_c(), "current_operations"), Value::empty_map());
                Ok::<_, ApiError>(())
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocaml_floats() {
        for (f, want) in [
            (1.0, "1."),
            (0.5, "0.5"),
            (0.0, "0."),
            (-2.0, "-2."),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.333333333333"),
            (123456789012.0, "123456789012."),
            (1e12, "1e+12"),
            (0.00001, "1e-05"),
            (0.0001, "0.0001"),
            (2.5e-7, "2.5e-07"),
        ] {
            assert_eq!(ocaml_string_of_float(f), want, "{f}");
        }
    }
}

//! Power orchestration: the checks before a boot, choosing a host, and
//! start, resume, suspend, shutdown and reboot as database transitions
//! around the xenops calls; guests stopped as their host powers off.

use super::*;
use model::schema::{
    CLASS_HOST, CLASS_HOST_METRICS, CLASS_PBD, CLASS_POOL, CLASS_SR, CLASS_VBD, CLASS_VDI, CLASS_VM_GUEST_METRICS,
    CLASS_VM_METRICS,
};
use model::types::fields;

/// HOST_NOT_ENOUGH_FREE_MEMORY unless `host` has the memory `vm` needs.
pub(super) fn check_memory(s: &Server, vm: &str, host: &str) -> Result<()> {
    let (c, hc, hm) = (vm_c(), &CLASS_HOST, &CLASS_HOST_METRICS);
    let st = s.db.read();
    let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
    let needed = row.read(fields::vm::MEMORY_DYNAMIC_MAX) + row.read(fields::vm::MEMORY_OVERHEAD);
    let metrics = st.get(hc, host).map(|h| h.read(fields::host::METRICS).into_string()).unwrap_or_default();
    let free = st.get(hm, &metrics).and_then(|m| m.get(fields::host_metrics::MEMORY_FREE.index).as_int()).unwrap_or(0);
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
pub(super) fn validate_basic_parameters(st: &store::State, row: &Row) -> Result<()> {
    use fields::vm as VM;
    let (vmax, vstart) = (row.read(VM::VCPUS_MAX), row.read(VM::VCPUS_AT_STARTUP));
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
    if row.read(VM::MEMORY_STATIC_MAX) < row.read(VM::MEMORY_STATIC_MIN)
        || row.read(VM::MEMORY_DYNAMIC_MAX) < row.read(VM::MEMORY_DYNAMIC_MIN)
    {
        return Err(ApiError::Other { code: "MEMORY_CONSTRAINT_VIOLATION".into(), params: vec![] });
    }
    let shadow = row.get(fields::vm::HVM_SHADOW_MULTIPLIER.index).as_float().unwrap_or(1.0);
    if shadow < 1.0 {
        return Err(ApiError::InvalidValue {
            field: "HVM_shadow_multiplier".into(),
            value: ocaml_string_of_float(shadow),
        });
    }
    check_crash_action(st, row, row.read(fields::vm::ACTIONS_AFTER_CRASH).as_str())
}

/// xapi's validate_actions_after_crash.
pub(super) fn check_crash_action(st: &store::State, row: &Row, action: &str) -> Result<()> {
    let unsupported = |reason: &str| {
        Err(ApiError::ValueNotSupported {
            field: "VM.actions_after_crash".into(),
            value: action.to_string(),
            reason: reason.to_string(),
        })
    };
    match action {
        "rename_restart" => unsupported("option would leak a domain; VMs and not domains are managed by this API"),
        "coredump_and_destroy" | "coredump_and_restart" if domain_type(st, row) != DomainType::Pv => {
            unsupported("cannot invoke a coredump of an HVM, PVH or PV-in-PVH domain")
        }
        _ => Ok(()),
    }
}

/// The VM's domain type: the one its domain runs with, or (Halted) the one
/// it is configured for.
pub(super) fn domain_type(st: &store::State, row: &Row) -> DomainType {
    let (_c, mc) = (vm_c(), &CLASS_VM_METRICS);
    let live = row.read(fields::vm::POWER_STATE) != VmPowerState::Halted;
    let dt = if live {
        st.get(mc, row.read(fields::vm::METRICS).as_str()).map(|m| m.read(fields::vm_metrics::CURRENT_DOMAIN_TYPE))
    } else {
        Some(row.read(fields::vm::DOMAIN_TYPE))
    };
    match dt {
        None | Some(DomainType::Unspecified) => {
            if row.read(fields::vm::HVM_BOOT_POLICY).is_empty() {
                DomainType::Pv
            } else {
                DomainType::Hvm
            }
        }
        Some(dt) => dt,
    }
}

/// Can this VM boot on `host` (xapi's assert_can_boot_here): sane settings,
/// a live host, an enabled one unless the VM is a control domain, reachable
/// storage and (if asked) enough free memory.
pub fn assert_can_boot(s: &Server, vm: &str, host: &str, memory_check: bool) -> Result<()> {
    let (c, hc, hm) = (vm_c(), &CLASS_HOST, &CLASS_HOST_METRICS);
    {
        let st = s.db.read();
        let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
        let h = st.get(hc, host).ok_or_else(|| handle_invalid(hc, host))?;
        validate_basic_parameters(&st, row)?;
        let live =
            st.get(hm, h.read(fields::host::METRICS).as_str()).is_some_and(|m| m.read(fields::host_metrics::LIVE));
        if !live {
            return Err(ApiError::HostNotLive);
        }
        let control_domain = row.read(fields::vm::IS_CONTROL_DOMAIN);
        let local_live_migration = row.read(fields::vm::POWER_STATE) == VmPowerState::Running
            && row.read(fields::vm::RESIDENT_ON).as_str() == host;
        if !control_domain && !local_live_migration && h.get(fields::host::ENABLED.index).as_bool() != Some(true) {
            return Err(ApiError::HostDisabled { host: host.to_string() });
        }
        // Every disk's SR must be attached here.
        let (vbd, vdi, src, pbd) = (&CLASS_VBD, &CLASS_VDI, &CLASS_SR, &CLASS_PBD);
        for b in members(row.get(fields::vm::VBDS.index)) {
            let Some(br) = st.get(vbd, &b) else { continue };
            if br.read(fields::vbd::EMPTY) {
                continue;
            }
            let vdi_ref = br.read(fields::vbd::VDI).into_string();
            let Some(vr) = st.get(vdi, &vdi_ref) else { continue };
            let sr = vr.read(fields::vdi::SR).into_string();
            let attached = st
                .get(src, &sr)
                .map(|srow| {
                    members(srow.get(fields::sr::PBDS.index)).iter().any(|p| {
                        st.get(pbd, p).is_some_and(|pr| {
                            pr.read(fields::pbd::CURRENTLY_ATTACHED) && pr.read(fields::pbd::HOST).as_str() == host
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
        check_memory(s, vm, host)?;
    }
    Ok(())
}

/// Pick a host for a VM started or resumed without one (xapi's
/// choose_host_for_vm_no_wlb): a host where it can boot, preferring one with
/// the memory for it; NO_HOSTS_AVAILABLE if there is none.
pub(super) fn choose_host(s: &Server, vm: &str) -> Result<String> {
    let hosts: Vec<String> = {
        let st = s.db.read();
        let mut h: Vec<String> = st.table(&CLASS_HOST).iter().map(|(r, _)| r.clone()).collect();
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

pub(super) async fn do_start(ctx: &Ctx, vm: &str, host: &str, paused: bool) -> Result<()> {
    let s = &ctx.server;
    if host != s.host {
        return Err(handle_invalid(&CLASS_HOST, host));
    }
    assert_can_boot(s, vm, host, true)?;
    crate::xenops::assert_disks_present(s, vm)?;
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
pub(super) fn suspend_sr(s: &Server, vm: &str) -> Result<String> {
    let st = s.db.read();
    let (c, pc, hc) = (vm_c(), &CLASS_POOL, &CLASS_HOST);
    let candidates = [
        st.get(c, vm).map(|r| r.read(fields::vm::SUSPEND_SR).into_string()),
        st.get(pc, &s.pool).map(|r| r.read(fields::pool::SUSPEND_IMAGE_SR).into_string()),
        st.get(hc, &s.host).map(|r| r.read(fields::host::SUSPEND_IMAGE_SR).into_string()),
    ];
    for sr in candidates.into_iter().flatten() {
        if !null(&Value::String(sr.clone())) && st.get(&CLASS_SR, &sr).is_some() {
            return Ok(sr);
        }
    }
    Err(ApiError::VmNoSuspendSr { vm: vm.to_string() })
}

pub(super) async fn write_memory_image(ctx: &Ctx, vm: &str, keep_running: bool) -> Result<String> {
    let s = &ctx.server;
    let sr = suspend_sr(s, vm)?;
    let (uuid, name, mem) = {
        let row = s.row(vm_c(), vm)?;
        let _c = vm_c();
        (row.read(fields::vm::UUID), row.read(fields::vm::NAME_LABEL), row.read(fields::vm::MEMORY_DYNAMIC_MAX))
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

pub(super) async fn do_resume(ctx: &Ctx, vm: &str, host: &str, paused: bool) -> Result<()> {
    let s = &ctx.server;
    if host != s.host {
        return Err(handle_invalid(&CLASS_HOST, host));
    }
    let c = vm_c();
    let vdi = s.row(c, vm)?.read(fields::vm::SUSPEND_VDI).into_string();
    let path =
        storage::vdi_path(s, &s.db.read(), &vdi).ok_or_else(|| ApiError::VmHasNoSuspendVdi { vm: vm.to_string() })?;
    storage::attachable(&path)?;
    assert_can_boot(s, vm, host, true)?;
    crate::xenops::assert_disks_present(s, vm)?;
    let spec = carried_on_spec(s, vm)?;
    let domid = s.backend.resume(&spec, &path, cancel_of(ctx)).await.map_err(|e| be(ctx, e))?;
    if !paused {
        s.backend.unpause(&spec.uuid).await.map_err(|e| be(ctx, e))?;
    }
    ctx.write(|tx| {
        mark_running(tx, s, vm, domid, paused, false);
        tx.put(vm, fields::vm::SUSPEND_VDI, Ref::null());
        Ok(())
    })?;
    storage::destroy_vdi(ctx, &vdi).await
}

/// Cancel the tasks of operations a hard shutdown overrides.
pub(super) fn cancel_soft_ops(s: &Server, vm: &str) {
    if let Ok(row) = s.row(vm_c(), vm) {
        for (task, op) in lifecycle::current_ops(&row) {
            use VmOperations as O;
            if matches!(
                VmOperations::parse(&op),
                O::CleanShutdown | O::CleanReboot | O::HardReboot | O::PoolMigrate | O::CallPlugin
            ) {
                s.tasks.request_cancel(&task);
            }
        }
    }
}

pub(super) async fn do_hard_shutdown(ctx: &Ctx, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let row = s.row(c, vm)?;
    if row.read(fields::vm::POWER_STATE) == VmPowerState::Suspended {
        let vdi = row.read(fields::vm::SUSPEND_VDI).into_string();
        ctx.write(|tx| {
            mark_stopped(tx, vm, false);
            tx.put(vm, fields::vm::SUSPEND_VDI, Ref::null());
            Ok(())
        })?;
        if !null(&Value::String(vdi.clone())) {
            crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &vdi).await);
        }
        return Ok(());
    }
    let uuid = row.read(fields::vm::UUID);
    s.backend.shutdown(&uuid, false, None).await.map_err(|e| be(ctx, e))?;
    ctx.write(|tx| {
        mark_stopped(tx, vm, false);
        Ok(())
    })
}

pub(super) async fn do_clean_shutdown(ctx: &Ctx, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let uuid = vm_uuid(s, vm)?;
    s.backend.shutdown(&uuid, true, cancel_of(ctx)).await.map_err(|e| be_vm(ctx, vm, e))?;
    ctx.write(|tx| {
        mark_stopped(tx, vm, false);
        Ok(())
    })
}

pub(super) async fn do_reboot(ctx: &Ctx, vm: &str, clean: bool) -> Result<()> {
    let s = &ctx.server;
    // The running domain hands its disks' writes over as it ends.
    let spec = crate::xenops::successor_spec(s, vm)?;
    let domid = s.backend.reboot(&spec, clean, cancel_of(ctx)).await.map_err(|e| be_vm(ctx, vm, e))?;
    ctx.write(|tx| {
        let gm = tx.get(vm_c(), vm).map(|r| r.read(fields::vm::GUEST_METRICS).into_string()).unwrap_or_default();
        if !null(&Value::String(gm.clone())) {
            tx.delete(&CLASS_VM_GUEST_METRICS, &gm);
            tx.put(vm, fields::vm::GUEST_METRICS, Ref::null());
        }
        mark_running(tx, s, vm, domid, false, true);
        Ok(())
    })
}

// ------------------------------------------------------- host power-off

/// How long guests get to shut down cleanly before a host powers off.
pub const POWEROFF_CLEAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Guests resident on `host` whose domains are live (Running or Paused), not
/// control domains; `self_managed` includes those with
/// `other_config:auto_poweroff`, which manage their own power-off.
pub(super) fn live_guests(s: &Server, host: &str, self_managed: bool) -> Vec<(String, bool)> {
    let c = vm_c();
    let st = s.db.read();
    let mut v: Vec<(String, bool)> = st
        .table(c)
        .iter()
        .filter(|(_, r)| {
            r.read(fields::vm::RESIDENT_ON).as_str() == host
                && matches!(r.read(fields::vm::POWER_STATE), VmPowerState::Running | VmPowerState::Paused)
                && r.get(fields::vm::IS_CONTROL_DOMAIN.index).as_bool() != Some(true)
                && (self_managed || r.get(fields::vm::OTHER_CONFIG.index).map_str("auto_poweroff").is_none())
        })
        .map(|(r, row)| {
            let clean = members(row.get(fields::vm::ALLOWED_OPERATIONS.index)).iter().any(|o| o == "clean_shutdown");
            (r.clone(), clean)
        })
        .collect();
    v.sort();
    v
}

/// A context for work the server does on its own behalf.
pub(super) fn internal_ctx(s: &Server, method: &str) -> Ctx {
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
                tx.set(vm_c(), &vm, fields::vm::CURRENT_OPERATIONS.index, Value::empty_map());
                Ok::<_, ApiError>(())
            }),
        );
    }
}

//! VM: the messages (thin: each checks, takes its operation and calls the
//! concern that does the work) and the constructor/destructor/setter hooks.
//! The work is split by concern: `power` (start, resume, suspend, shutdown,
//! reboot, host power-off), `copy` (clone, copy, snapshot, checkpoint,
//! revert), `provision` (template disks), `memory` (memory and vCPU rules);
//! what maps rows to domains is the xenops service (`crate::xenops`). Each
//! operation runs between `lifecycle::begin` and `end`, so
//! `current_operations` and `allowed_operations` stay true to xapi's rules.

use crate::api::VmApi;
use crate::implicit::Hooks;
use crate::lifecycle;
use crate::rows::{members, new_row};
use crate::rrd::sources::Owner;
use crate::storage::{self, NewVdi};
use crate::xenops::{be, be_vm, carried_on_spec, domain_spec};
use crate::xenops::{mark_running, mark_stopped};
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use backend::Cancel;
use model::schema::Type;
use model::types::*;
use model::{DateTime, Field, Ref, Row, Value, XenType};
use std::collections::BTreeMap;
use std::sync::Arc;
use store::Txn;

mod copy;
mod memory;
pub mod migrate;
mod power;
mod provision;

use copy::*;
use memory::*;
use model::schema::{
    CLASS_CONSOLE, CLASS_HOST, CLASS_HOST_METRICS, CLASS_SR, CLASS_VBD, CLASS_VBD_METRICS, CLASS_VDI, CLASS_VIF,
    CLASS_VM, CLASS_VM_APPLIANCE, CLASS_VM_GUEST_METRICS, CLASS_VM_METRICS, CLASS_VTPM,
};
use model::types::fields;
use power::*;
use provision::*;

pub use copy::fresh_mac;
pub use power::{assert_can_boot, ocaml_string_of_float, shut_down_guests, POWEROFF_CLEAN_TIMEOUT};

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: Some(set_field) };

fn vm_c() -> &'static model::ClassDef {
    &CLASS_VM
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
    let _c = vm_c();
    if row.read(fields::vm::POWER_STATE) == VmPowerState::Suspended {
        let incomplete = null(row.get(fields::vm::SUSPEND_VDI.index))
            || row.read(fields::vm::LAST_BOOTED_RECORD).is_empty()
            || row.read(fields::vm::LAST_BOOT_CPU_FLAGS).is_empty();
        if incomplete {
            return Err(ApiError::VmBadPowerState {
                vm: r.to_string(),
                expected: "halted".into(),
                actual: "suspended".into(),
            });
        }
    } else {
        row.write(fields::vm::POWER_STATE, VmPowerState::Halted);
    }
    if row.read(fields::vm::DOMAIN_TYPE) == DomainType::Unspecified {
        let hvm = !row.read(fields::vm::HVM_BOOT_POLICY).is_empty();
        row.write(fields::vm::DOMAIN_TYPE, if hvm { DomainType::Hvm } else { DomainType::Pv });
    }
    // As xapi: a VM without a MAC seed gets one, so its VIFs' MACs are
    // derived from it.
    let mut oc = row.read(fields::vm::OTHER_CONFIG);
    if !oc.contains_key("mac_seed") {
        oc.insert("mac_seed".into(), model::new_uuid());
        row.write(fields::vm::OTHER_CONFIG, oc);
    }
    let metrics = model::new_ref();
    let now = DateTime::now();
    let mut m = new_row(fields::vm_metrics::UUID);
    m.write(fields::vm_metrics::INSTALL_TIME, now);
    m.write(fields::vm_metrics::LAST_UPDATED, now);
    tx.insert(&metrics, m);
    row.write(fields::vm::METRICS, Ref::new(metrics));
    Ok(())
}

/// VM.destroy: as the lifecycle allows (Halted or Suspended, not a default
/// template); removes the VM's devices and metrics but not its VDIs.
fn destroy(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &Row) -> Result<()> {
    if let Some(e) = lifecycle::vm_check(tx, r, row, &VmOperations::Destroy, false) {
        return Err(e);
    }
    remove_devices(tx, row);
    Ok(())
}

/// Rules for implicit setters on VM fields.
fn set_field(_ctx: &Ctx, _tx: &mut Txn, r: &str, i: usize, row: &mut Row) -> Result<()> {
    let _c = vm_c();
    if i == fields::vm::IS_A_TEMPLATE.index && row.get(i).as_bool() == Some(true) {
        // Turning a VM into a template needs it halted.
        let ps = row.read(fields::vm::POWER_STATE);
        if ps != VmPowerState::Halted {
            return Err(ApiError::VmBadPowerState {
                vm: r.to_string(),
                expected: "halted".into(),
                actual: ps.as_str().to_lowercase(),
            });
        }
    }
    Ok(())
}

/// Whether `host` is a host whose metrics say it is live.
pub fn host_is_live(s: &Server, host: &str) -> bool {
    let (hc, hm) = (&CLASS_HOST, &CLASS_HOST_METRICS);
    let st = s.db.read();
    st.get(hc, host)
        .and_then(|h| st.get(hm, h.read(fields::host::METRICS).as_str()))
        .is_some_and(|m| m.read(fields::host_metrics::LIVE))
}

/// The VCPU setters' error for a value out of range (xapi_vm.ml).
fn vcpu_value_error(value: i64) -> ApiError {
    ApiError::InvalidValue {
        field: "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max".into(),
        value: value.to_string(),
    }
}

/// lifecycle::vm_check against the committed state.
fn check_now(s: &Server, vm: &str, row: &Row, op: &VmOperations, ignore_running: bool) -> Option<ApiError> {
    let st = s.db.read();
    lifecycle::vm_check(&*st, vm, row, op, ignore_running)
}

/// Delete every object that belongs to a VM row (not its VDIs).
pub fn remove_devices(tx: &mut Txn, row: &Row) {
    for vbd in members(row.get(fields::vm::VBDS.index)) {
        let vc = &CLASS_VBD;
        if let Some(m) = tx.get(vc, &vbd).map(|b| b.read(fields::vbd::METRICS).into_string()) {
            tx.delete(&CLASS_VBD_METRICS, &m);
        }
        tx.delete(vc, &vbd);
    }
    for vif in members(row.get(fields::vm::VIFS.index)) {
        tx.delete(&CLASS_VIF, &vif);
    }
    for v in members(row.get(fields::vm::VTPMS.index)) {
        tx.delete(&CLASS_VTPM, &v);
    }
    for con in members(row.get(fields::vm::CONSOLES.index)) {
        tx.delete(&CLASS_CONSOLE, &con);
    }
    let metrics = [
        (row.read(fields::vm::METRICS).into_string(), &CLASS_VM_METRICS),
        (row.read(fields::vm::GUEST_METRICS).into_string(), &CLASS_VM_GUEST_METRICS),
    ];
    for (m, mc) in metrics {
        if !null(&Value::String(m.clone())) {
            tx.delete(mc, &m);
        }
    }
}

fn vm_uuid(s: &Server, vm: &str) -> Result<String> {
    Ok(s.row(vm_c(), vm)?.read(fields::vm::UUID))
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
        let src = &CLASS_SR;
        let sr = if sr.is_null() {
            storage::default_sr(self)?
        } else {
            self.row(src, sr.as_str())?;
            sr.into_string()
        };
        let iso = self.row(src, &sr)?.read(fields::sr::CONTENT_TYPE) == "iso";
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
        let handle = crate::importexport::transfer::HttpTask::existing(&task);
        let v = crate::importexport::receive::receive(self, Arc::new(inner), handle, cfg, length, &mut *body).await?;
        Ok(v.as_array().unwrap_or(&[]).iter().filter_map(|r| r.as_str()).map(Ref::new).collect())
    }

    async fn start(&self, ctx: &Ctx, vm: Ref<Vm>, start_paused: bool, _force: bool) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Start, || async {
            let host = choose_host(self, vm.as_str())?;
            do_start(ctx, vm.as_str(), &host, start_paused).await
        })
        .await
    }

    async fn start_on(&self, ctx: &Ctx, vm: Ref<Vm>, host: Ref<Host>, start_paused: bool, _force: bool) -> Result<()> {
        self.row(&CLASS_HOST, host.as_str())?;
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::StartOn, || {
            do_start(ctx, vm.as_str(), host.as_str(), start_paused)
        })
        .await
    }

    async fn pause(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Pause, || async {
            let uuid = vm_uuid(self, vm.as_str())?;
            self.backend.pause(&uuid).await.map_err(|e| be(ctx, e))?;
            let c = vm_c();
            ctx.write(|tx| {
                tx.put(vm.as_str(), fields::vm::POWER_STATE, VmPowerState::Paused);
                let m = tx.get(c, vm.as_str()).map(|r| r.read(fields::vm::METRICS).into_string()).unwrap_or_default();
                tx.put(&m, fields::vm_metrics::STATE, vec!["paused".to_string()]);
                Ok(())
            })
        })
        .await
    }

    async fn unpause(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Unpause, || async {
            let uuid = vm_uuid(self, vm.as_str())?;
            self.backend.unpause(&uuid).await.map_err(|e| be(ctx, e))?;
            let c = vm_c();
            ctx.write(|tx| {
                tx.put(vm.as_str(), fields::vm::POWER_STATE, VmPowerState::Running);
                let m = tx.get(c, vm.as_str()).map(|r| r.read(fields::vm::METRICS).into_string()).unwrap_or_default();
                tx.put(&m, fields::vm_metrics::STATE, vec!["running".to_string()]);
                Ok(())
            })
        })
        .await
    }

    async fn clean_shutdown(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::CleanShutdown, || do_clean_shutdown(ctx, vm.as_str())).await
    }

    async fn hard_shutdown(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        cancel_soft_ops(self, vm.as_str());
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::HardShutdown, || do_hard_shutdown(ctx, vm.as_str())).await
    }

    async fn shutdown(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        // Try a clean shutdown first, then force it.
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Shutdown, || async {
            let clean = if self.row(vm_c(), vm.as_str())?.read(fields::vm::POWER_STATE) == VmPowerState::Running {
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
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::CleanReboot, || do_reboot(ctx, vm.as_str(), true)).await
    }

    async fn hard_reboot(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        cancel_soft_ops(self, vm.as_str());
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::HardReboot, || do_reboot(ctx, vm.as_str(), false)).await
    }

    async fn suspend(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Suspend, || async {
            let vdi = write_memory_image(ctx, vm.as_str(), false).await?;
            let c = vm_c();
            ctx.write(|tx| {
                mark_stopped(tx, vm.as_str(), true);
                tx.set(c, vm.as_str(), fields::vm::SUSPEND_VDI.index, Value::String(vdi.clone()));
                Ok(())
            })
        })
        .await
    }

    async fn resume(&self, ctx: &Ctx, vm: Ref<Vm>, start_paused: bool, _force: bool) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Resume, || async {
            let host = choose_host(self, vm.as_str())?;
            do_resume(ctx, vm.as_str(), &host, start_paused).await
        })
        .await
    }

    async fn resume_on(&self, ctx: &Ctx, vm: Ref<Vm>, host: Ref<Host>, start_paused: bool, _force: bool) -> Result<()> {
        self.row(&CLASS_HOST, host.as_str())?;
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::ResumeOn, || {
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
        self.row(&CLASS_HOST, host.as_str())?;
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::PoolMigrate, || async {
            if host.as_str() != self.host
                || self.db.read().read(vm.as_str(), fields::vm::RESIDENT_ON).is_some_and(|r| r.as_str() != self.host)
            {
                return migrate::move_to(ctx, vm.as_str(), host.as_str()).await;
            }
            let spec = carried_on_spec(self, vm.as_str())?;
            let domid = self.backend.migrate(&spec, cancel_of(ctx)).await.map_err(|e| be(ctx, e))?;
            let c = vm_c();
            ctx.write(|tx| {
                tx.update(c, vm.as_str(), |r| {
                    r.write(fields::vm::DOMID, domid);
                    r.write(fields::vm::RESIDENT_ON, host.clone());
                });
                Ok(())
            })
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn assert_can_migrate(
        &self,
        _ctx: &Ctx,
        vm: Ref<Vm>,
        dest: BTreeMap<String, String>,
        _live: bool,
        vdi_map: BTreeMap<Ref<Vdi>, Ref<Sr>>,
        vif_map: BTreeMap<Ref<Vif>, Ref<Network>>,
        _options: BTreeMap<String, String>,
        _vgpu_map: BTreeMap<Ref<Vgpu>, Ref<GpuGroup>>,
    ) -> Result<()> {
        migrate::check_send(self, vm.as_str(), &dest, &vdi_map, &vif_map).map(drop)
    }

    /// Within the pool and without storage motion, xapi's migrate_send is
    /// a pool_migrate (a live move of the running guest).
    #[allow(clippy::too_many_arguments)]
    async fn migrate_send(
        &self,
        ctx: &Ctx,
        vm: Ref<Vm>,
        dest: BTreeMap<String, String>,
        _live: bool,
        vdi_map: BTreeMap<Ref<Vdi>, Ref<Sr>>,
        vif_map: BTreeMap<Ref<Vif>, Ref<Network>>,
        _options: BTreeMap<String, String>,
        _vgpu_map: BTreeMap<Ref<Vgpu>, Ref<GpuGroup>>,
    ) -> Result<Ref<Vm>> {
        let host = migrate::check_send(self, vm.as_str(), &dest, &vdi_map, &vif_map)?;
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::MigrateSend, || async {
            migrate::move_to(ctx, vm.as_str(), &host).await
        })
        .await?;
        Ok(vm)
    }

    async fn power_state_reset(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        let c = vm_c();
        let row = self.row(c, vm.as_str())?;
        if row.read(fields::vm::IS_CONTROL_DOMAIN) {
            return Err(ApiError::CannotResetControlDomain { vm: vm.to_string() });
        }
        let uuid = row.read(fields::vm::UUID);
        // A live VM is only forgotten if its domain is really gone (xapi_vm.ml):
        // never lose track of a running domain.
        if matches!(row.read(fields::vm::POWER_STATE), VmPowerState::Running | VmPowerState::Paused) {
            let resident = row.read(fields::vm::RESIDENT_ON).into_string();
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
                r.write(fields::vm::SUSPEND_VDI, Ref::null());
                r.write(fields::vm::CURRENT_OPERATIONS, BTreeMap::new());
            });
            Ok(())
        })
    }

    async fn clone(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String) -> Result<Ref<Vm>> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Clone, || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Clone, None, &[])
        })
        .await
        .map(Ref::new)
    }

    async fn copy(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String, sr: Ref<Sr>) -> Result<Ref<Vm>> {
        if !sr.is_null() {
            self.row(&CLASS_SR, sr.as_str())?;
        }
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Copy, || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Copy, Some(sr.as_str()), &[])
        })
        .await
        .map(Ref::new)
    }

    async fn snapshot(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String, ignore_vdis: Vec<Ref<Vdi>>) -> Result<Ref<Vm>> {
        let ignore: Vec<String> = ignore_vdis.into_iter().map(Ref::into_string).collect();
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Snapshot, || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Snapshot, None, &ignore)
        })
        .await
        .map(Ref::new)
    }

    async fn snapshot_with_quiesce(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String) -> Result<Ref<Vm>> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::SnapshotWithQuiesce, || {
            duplicate(ctx, vm.as_str(), &new_name, Kind::Snapshot, None, &[])
        })
        .await
        .map(Ref::new)
    }

    async fn checkpoint(&self, ctx: &Ctx, vm: Ref<Vm>, new_name: String) -> Result<Ref<Vm>> {
        let c = vm_c();
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Checkpoint, || async {
            // Disks and memory of one instant: the guest stays stopped meanwhile.
            let (snap, mem) = crate::xenops::with_guest_stopped(ctx, vm.as_str(), async {
                let snap = duplicate(ctx, vm.as_str(), &new_name, Kind::Snapshot, None, &[]).await?;
                let ps = self.row(c, vm.as_str())?.read(fields::vm::POWER_STATE);
                // The memory image: the running guest's, or a copy of the suspend image.
                let mem = if ps == VmPowerState::Suspended {
                    let sv_vdi = self.row(c, vm.as_str())?.read(fields::vm::SUSPEND_VDI);
                    storage::clone_vdi(ctx, sv_vdi.as_str()).await?
                } else {
                    write_memory_image(ctx, vm.as_str(), true).await?
                };
                Ok((snap, mem))
            })
            .await?;
            ctx.write(|tx| {
                tx.update(c, &snap, |r| {
                    r.write(fields::vm::POWER_STATE, VmPowerState::Suspended);
                    r.write(fields::vm::SUSPEND_VDI, Ref::new(mem.as_str()));
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
        lifecycle::with_op(ctx, snapshot.as_str(), VmOperations::Revert, || async {
            let snap = self.row(c, snapshot.as_str())?;
            let target = snap.read(fields::vm::SNAPSHOT_OF).into_string();
            if self.row(c, &target).is_err() {
                return Err(ApiError::VmRevertFailed { vm: target.clone(), snapshot: snapshot.to_string() });
            }
            lifecycle::with_op(ctx, &target, VmOperations::Reverting, || revert_to(ctx, snapshot.as_str(), &target))
                .await
        })
        .await
    }

    async fn provision(&self, ctx: &Ctx, vm: Ref<Vm>) -> Result<()> {
        lifecycle::with_op(ctx, vm.as_str(), VmOperations::Provision, || do_provision(ctx, vm.as_str())).await
    }

    async fn get_allowed_vbd_devices(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<Vec<String>> {
        let used = devices_in_use(self, vm.as_str(), fields::vm::VBDS, fields::vbd::USERDEVICE)?;
        Ok((0..=254).map(|i: i32| i.to_string()).filter(|d| !used.contains(d)).collect())
    }

    async fn get_allowed_vif_devices(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<Vec<String>> {
        let used = devices_in_use(self, vm.as_str(), fields::vm::VIFS, fields::vif::DEVICE)?;
        Ok((0..=6).map(|i: i32| i.to_string()).filter(|d| !used.contains(d)).collect())
    }

    async fn assert_can_boot_here(&self, _ctx: &Ctx, self_: Ref<Vm>, host: Ref<Host>) -> Result<()> {
        self.row(vm_c(), self_.as_str())?;
        assert_can_boot(self, self_.as_str(), host.as_str(), true)
    }

    async fn get_possible_hosts(&self, _ctx: &Ctx, vm: Ref<Vm>) -> Result<Vec<Ref<Host>>> {
        self.row(vm_c(), vm.as_str())?;
        let hosts: Vec<String> = self.db.read().table(&CLASS_HOST).iter().map(|(h, _)| h.clone()).collect();
        Ok(hosts.into_iter().filter(|h| assert_can_boot(self, vm.as_str(), h, true).is_ok()).map(Ref::new).collect())
    }

    async fn assert_agile(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<()> {
        self.row(vm_c(), self_.as_str()).map(|_| ())
    }

    async fn get_boot_record(&self, _ctx: &Ctx, self_: Ref<Vm>) -> Result<VmRecord> {
        let row = self.row(vm_c(), self_.as_str())?;
        if let Some(e) = check_now(self, self_.as_str(), &row, &VmOperations::GetBootRecord, true) {
            return Err(e);
        }
        VmRecord::from_value(&Value::Row(row)).map_err(|e| crate::internal(e.to_string()))
    }

    async fn assert_operation_valid(&self, _ctx: &Ctx, self_: Ref<Vm>, op: VmOperations) -> Result<()> {
        let row = self.row(vm_c(), self_.as_str())?;
        match check_now(self, self_.as_str(), &row, &op, false) {
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
        set_memory_fields(ctx, &self_, VmOperations::ChangingDynamicRange, |smin, smax, _, _| Limits {
            smin,
            smax,
            dmin: min,
            dmax: max,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_dynamic_min(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, VmOperations::ChangingDynamicRange, |smin, smax, _, dmax| Limits {
            smin,
            smax,
            dmin: value,
            dmax,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_dynamic_max(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, VmOperations::ChangingDynamicRange, |smin, smax, dmin, _| Limits {
            smin,
            smax,
            dmin,
            dmax: value,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_static_range(&self, ctx: &Ctx, self_: Ref<Vm>, min: i64, max: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, VmOperations::ChangingStaticRange, |_, _, dmin, dmax| Limits {
            smin: min,
            smax: max,
            dmin,
            dmax,
            target_is_dmin: false,
        })
        .await
    }

    async fn set_memory_static_min(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, VmOperations::ChangingStaticRange, |_, smax, dmin, dmax| Limits {
            smin: value,
            smax,
            dmin,
            dmax,
            target_is_dmin: false,
        })
        .await
    }

    async fn set_memory_static_max(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, VmOperations::ChangingStaticRange, |smin, _, dmin, dmax| Limits {
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
        set_memory_fields(ctx, &self_, VmOperations::ChangingMemoryLimits, |_, _, _, _| Limits {
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
        set_memory_fields(ctx, &self_, VmOperations::ChangingMemoryLimits, |smin, _, _, _| Limits {
            smin,
            smax: value,
            dmin: value,
            dmax: value,
            target_is_dmin: true,
        })
        .await
    }

    async fn set_memory_target_live(&self, ctx: &Ctx, self_: Ref<Vm>, target: i64) -> Result<()> {
        set_memory_fields(ctx, &self_, VmOperations::ChangingMemoryLive, |smin, smax, dmin, _| Limits {
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
        let mem = row.read(fields::vm::MEMORY_STATIC_MAX);
        let vcpus = row.get(fields::vm::VCPUS_MAX.index).as_int().unwrap_or(1);
        Ok(((mem / 100 + vcpus * (1 << 20) + (1 << 20)) + 4095) / 4096 * 4096)
    }

    async fn maximise_memory(&self, _ctx: &Ctx, self_: Ref<Vm>, total: i64, _approximate: bool) -> Result<i64> {
        self.row(vm_c(), self_.as_str())?;
        Ok((total - (total / 100)).max(0))
    }

    async fn set_vcpus_max(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, self_.as_str(), VmOperations::ChangingVcpus, || async {
            ctx.write(|tx| {
                let row = tx.get(c, self_.as_str()).cloned().ok_or_else(|| handle_invalid(c, self_.as_str()))?;
                let at = row.get(fields::vm::VCPUS_AT_STARTUP.index).as_int().unwrap_or(1);
                if value < 1 || value < at {
                    return Err(vcpu_value_error(value));
                }
                let running_control_domain = row.read(fields::vm::IS_CONTROL_DOMAIN)
                    && row.read(fields::vm::POWER_STATE) == VmPowerState::Running;
                tx.update(c, self_.as_str(), |r| {
                    r.write(fields::vm::VCPUS_MAX, value);
                    // A running control domain takes it at its next boot.
                    if running_control_domain {
                        r.write(fields::vm::REQUIRES_REBOOT, true);
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
            let max = row.get(fields::vm::VCPUS_MAX.index).as_int().unwrap_or(1);
            if value < 1 || value > max {
                return Err(vcpu_value_error(value));
            }
            tx.put(self_.as_str(), fields::vm::VCPUS_AT_STARTUP, value);
            Ok(())
        })
    }

    async fn set_vcpus_number_live(&self, ctx: &Ctx, self_: Ref<Vm>, nvcpu: i64) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, self_.as_str(), VmOperations::ChangingVcpusLive, || async {
            let row = self.row(c, self_.as_str())?;
            let max = row.get(fields::vm::VCPUS_MAX.index).as_int().unwrap_or(1);
            if nvcpu < 1 || nvcpu > max {
                return Err(ApiError::InvalidValue { field: "nvcpu".into(), value: nvcpu.to_string() });
            }
            let uuid = row.read(fields::vm::UUID);
            self.backend.set_vcpus(&uuid, nvcpu).await.map_err(|e| be(ctx, e))?;
            ctx.write(|tx| {
                let m =
                    tx.get(c, self_.as_str()).map(|r| r.read(fields::vm::METRICS).into_string()).unwrap_or_default();
                tx.put(&m, fields::vm_metrics::VCPUS_NUMBER, nvcpu);
                Ok(())
            })
        })
        .await
    }

    async fn add_to_vcpus_params_live(&self, ctx: &Ctx, self_: Ref<Vm>, key: String, value: String) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, self_.as_str(), VmOperations::ChangingVcpusLive, || async {
            ctx.write(|tx| {
                tx.update(c, self_.as_str(), |r| {
                    if let Value::Struct(m) = &mut r.fields[fields::vm::VCPUS_PARAMS.index] {
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
        let dt = if value.is_empty() { DomainType::Pv } else { DomainType::Hvm };
        simple_set(ctx, &self_, None, fields::vm::HVM_BOOT_POLICY, value).await?;
        simple_set(ctx, &self_, None, fields::vm::DOMAIN_TYPE, dt).await
    }

    async fn set_domain_type(&self, ctx: &Ctx, self_: Ref<Vm>, value: DomainType) -> Result<()> {
        let policy = if matches!(value, DomainType::Hvm) { "BIOS order" } else { "" };
        simple_set(ctx, &self_, None, fields::vm::DOMAIN_TYPE, value).await?;
        simple_set(ctx, &self_, None, fields::vm::HVM_BOOT_POLICY, policy.to_string()).await
    }

    async fn set_actions_after_crash(&self, ctx: &Ctx, self_: Ref<Vm>, value: OnCrashBehaviour) -> Result<()> {
        simple_set(ctx, &self_, None, fields::vm::ACTIONS_AFTER_CRASH, value).await
    }

    async fn set_suspend_vdi(&self, ctx: &Ctx, self_: Ref<Vm>, value: Ref<Vdi>) -> Result<()> {
        self.row(&CLASS_VDI, value.as_str())?;
        simple_set(ctx, &self_, None, fields::vm::SUSPEND_VDI, value).await
    }

    async fn set_order(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        simple_set(ctx, &self_, None, fields::vm::ORDER, value).await
    }

    async fn set_start_delay(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        simple_set(ctx, &self_, None, fields::vm::START_DELAY, value).await
    }

    async fn set_shutdown_delay(&self, ctx: &Ctx, self_: Ref<Vm>, value: i64) -> Result<()> {
        simple_set(ctx, &self_, None, fields::vm::SHUTDOWN_DELAY, value).await
    }

    async fn set_hvm_shadow_multiplier(&self, ctx: &Ctx, self_: Ref<Vm>, value: f64) -> Result<()> {
        let c = vm_c();
        lifecycle::with_op(ctx, self_.as_str(), VmOperations::ChangingShadowMemory, || async {
            if value < 1.0 {
                return Err(ApiError::InvalidValue { field: "multiplier".into(), value: ocaml_string_of_float(value) });
            }
            ctx.write(|tx| {
                if !tx.put(self_.as_str(), fields::vm::HVM_SHADOW_MULTIPLIER, value) {
                    return Err(handle_invalid(c, self_.as_str()));
                }
                Ok(())
            })
        })
        .await
    }

    async fn set_shadow_multiplier_live(&self, ctx: &Ctx, self_: Ref<Vm>, multiplier: f64) -> Result<()> {
        let f = fields::vm::HVM_SHADOW_MULTIPLIER;
        simple_set(ctx, &self_, Some(VmOperations::ChangingShadowMemoryLive), f, multiplier).await
    }

    async fn set_ha_always_run(&self, ctx: &Ctx, self_: Ref<Vm>, value: bool) -> Result<()> {
        simple_set(ctx, &self_, None, fields::vm::HA_ALWAYS_RUN, value).await
    }

    async fn set_ha_restart_priority(&self, ctx: &Ctx, self_: Ref<Vm>, value: String) -> Result<()> {
        if !matches!(value.as_str(), "" | "restart" | "best-effort") {
            return Err(ApiError::InvalidValue { field: "ha_restart_priority".into(), value });
        }
        simple_set(ctx, &self_, None, fields::vm::HA_RESTART_PRIORITY, value).await
    }

    async fn set_has_vendor_device(&self, ctx: &Ctx, self_: Ref<Vm>, value: bool) -> Result<()> {
        simple_set(ctx, &self_, Some(VmOperations::ChangingNvram), fields::vm::HAS_VENDOR_DEVICE, value).await
    }

    async fn set_bios_strings(&self, ctx: &Ctx, self_: Ref<Vm>, value: BTreeMap<String, String>) -> Result<()> {
        simple_set(ctx, &self_, None, fields::vm::BIOS_STRINGS, value).await
    }

    async fn copy_bios_strings(&self, ctx: &Ctx, vm: Ref<Vm>, host: Ref<Host>) -> Result<()> {
        let h = self.row(&CLASS_HOST, host.as_str())?;
        // Copied as stored, in the host's key order.
        let bs = h.get(fields::host::BIOS_STRINGS.index).clone();
        simple_set_value(ctx, &vm, None, fields::vm::BIOS_STRINGS, bs).await
    }

    async fn set_nvram(&self, ctx: &Ctx, self_: Ref<Vm>, value: BTreeMap<String, String>) -> Result<()> {
        simple_set(ctx, &self_, Some(VmOperations::ChangingNvram), fields::vm::NVRAM, value).await
    }

    async fn add_to_nvram(&self, ctx: &Ctx, self_: Ref<Vm>, key: String, value: String) -> Result<()> {
        let mut m = map_of(self.row(vm_c(), self_.as_str())?.get(fields::vm::NVRAM.index));
        m.insert(key, value);
        simple_set(ctx, &self_, Some(VmOperations::ChangingNvram), fields::vm::NVRAM, m).await
    }

    async fn remove_from_nvram(&self, ctx: &Ctx, self_: Ref<Vm>, key: String) -> Result<()> {
        let mut m = map_of(self.row(vm_c(), self_.as_str())?.get(fields::vm::NVRAM.index));
        m.remove(&key);
        simple_set(ctx, &self_, Some(VmOperations::ChangingNvram), fields::vm::NVRAM, m).await
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
            self.row(&CLASS_VM_APPLIANCE, value.as_str())?;
        }
        simple_set(ctx, &self_, None, fields::vm::APPLIANCE, value).await
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

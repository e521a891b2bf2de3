//! VBD: constructor rules and device allocation, hotplug (plug, unplug,
//! unplug_force) on running VMs, CD media (insert, eject), set_mode,
//! assert_attachable, and xapi's VBD operation rules with the derived
//! `allowed_operations` (recomputed when the VBD, its VM or its VDI changes).

use crate::api::VbdApi;
use crate::implicit::Hooks;
use crate::lifecycle::vbd::*;
use crate::lifecycle::{self, current_ops};
use crate::rows::new_row;
use crate::storage;
use crate::xenops::be;
use crate::{ApiError, Ctx, Result, Server};
use model::schema::ClassDef;
use model::schema::{CLASS_VBD, CLASS_VBD_METRICS, CLASS_VDI, CLASS_VM};
use model::types::fields;
use model::types::*;
use model::{Ref, Row, Value};
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: None };

fn vbd_c() -> &'static ClassDef {
    &CLASS_VBD
}

// ----------------------------------------------------------------- hooks

/// VBD.create's checks in xapi's order (xapi_vbd.ml), device allocation,
/// and its VBD_metrics.
fn create(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &mut Row) -> Result<()> {
    let (c, vm_c, vdi_c) = (vbd_c(), &CLASS_VM, &CLASS_VDI);
    let vm = row.read(fields::vbd::VM).into_string();
    let vm_row = tx.get(vm_c, &vm).cloned().ok_or_else(|| crate::handle_invalid(vm_c, &vm))?;
    let empty = row.read(fields::vbd::EMPTY);
    let ty = row.read(fields::vbd::TYPE);
    let is_cd = ty == VbdType::Cd;
    let mode = row.read(fields::vbd::MODE);
    let vdi = row.read(fields::vbd::VDI).into_string();
    let vdi_row = if empty {
        None
    } else {
        Some(tx.get(vdi_c, &vdi).cloned().ok_or_else(|| crate::handle_invalid(vdi_c, &vdi))?)
    };
    if let Some(vr) = &vdi_row {
        let vty = vr.read(fields::vdi::TYPE);
        if !matches!(
            vty,
            VdiType::System
                | VdiType::User
                | VdiType::Ephemeral
                | VdiType::Suspend
                | VdiType::Crashdump
                | VdiType::Metadata
                | VdiType::Rrd
                | VdiType::PvsCache
        ) {
            return Err(ApiError::VdiIncompatibleType { vdi, r#type: vty.as_str().to_string() });
        }
    }
    if is_cd && mode != VbdMode::Ro {
        return Err(ApiError::VbdCdsMustBeReadonly);
    }
    if empty && !is_cd {
        return Err(ApiError::VbdNotRemovableMedia { vbd: "in constructor".into() });
    }
    if mode == VbdMode::Rw && vdi_row.as_ref().is_some_and(|vr| vr.read(fields::vdi::READ_ONLY)) {
        return Err(ApiError::VdiReadonly { vdi });
    }
    // No new disks while the VM is being migrated.
    let migrating: Vec<(String, String)> = current_ops(&vm_row)
        .into_iter()
        .filter(|(_, o)| matches!(VmOperations::parse(o), VmOperations::PoolMigrate | VmOperations::MigrateSend))
        .collect();
    if !migrating.is_empty() {
        return Err(lifecycle::in_progress("VM", &vm, &migrating[..1]));
    }
    let ud = row.read(fields::vbd::USERDEVICE);
    if !valid_device(&ud, &ty) {
        return Err(ApiError::InvalidDevice { device: ud });
    }
    let in_use: Vec<u32> = crate::lifecycle::sr::linked(tx, fields::vbd::VM, &vm, vm_row.get(fields::vm::VBDS.index))
        .iter()
        .filter_map(|b| tx.get(c, b).and_then(|br| device_number(&br.read(fields::vbd::USERDEVICE))))
        .collect();
    let ud = if ud == "autodetect" {
        (0..255)
            .find(|n| !in_use.contains(n))
            .map(|n| n.to_string())
            .ok_or_else(|| ApiError::InvalidDevice { device: ud.clone() })?
    } else {
        if device_number(&ud).is_some_and(|n| in_use.contains(&n)) {
            return Err(ApiError::DeviceAlreadyExists { device: ud });
        }
        ud
    };
    row.write(fields::vbd::USERDEVICE, ud);
    // The kernel device and attachment come from plugging, except for a
    // suspended VM whose disks stay attached.
    let suspended = vm_row.read(fields::vm::POWER_STATE) == VmPowerState::Suspended;
    if !suspended {
        row.write(fields::vbd::DEVICE, String::new());
        row.write(fields::vbd::CURRENTLY_ATTACHED, false);
    }
    // The SM may name the backend kind for the VDI's VBDs.
    if let Some(kind) =
        vdi_row.as_ref().and_then(|vr| vr.get(fields::vdi::SM_CONFIG.index).map_str("backend-kind").map(str::to_string))
    {
        if let Value::Struct(m) = &mut row.fields[fields::vbd::OTHER_CONFIG.index] {
            m.retain(|(k, _)| k != "backend-kind");
            m.insert(0, ("backend-kind".into(), Value::from(kind)));
        }
    }
    let m = model::new_ref();
    tx.insert(&m, new_row(fields::vbd_metrics::UUID));
    row.write(fields::vbd::METRICS, Ref::new(m));
    Ok(())
}

/// VBD.destroy: the user must unplug first.
fn destroy(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &Row) -> Result<()> {
    let _c = vbd_c();
    if row.read(fields::vbd::CURRENTLY_ATTACHED) {
        let vm = row.read(fields::vbd::VM).into_string();
        let vm_uuid = tx.get(&CLASS_VM, &vm).map(|v| v.read(fields::vm::UUID)).unwrap_or_default();
        return Err(ApiError::OperationNotAllowed {
            reason: format!("VBD '{}' still attached to '{vm_uuid}'", row.read(fields::vbd::UUID)),
        });
    }
    let m = row.read(fields::vbd::METRICS).into_string();
    tx.delete(&CLASS_VBD_METRICS, &m);
    Ok(())
}

/// Create a VBD through the same rules as VBD.create; returns its ref.
#[allow(clippy::too_many_arguments)]
pub fn new_vbd(
    ctx: &Ctx,
    vm: &str,
    vdi: &str,
    userdevice: &str,
    bootable: bool,
    mode: &str,
    ty: &str,
    unpluggable: bool,
    other_config: Value,
) -> Result<String> {
    let c = vbd_c();
    let rec = Value::Struct(vec![
        ("VM".into(), Value::from(vm)),
        ("VDI".into(), Value::from(vdi)),
        ("userdevice".into(), Value::from(userdevice)),
        ("bootable".into(), Value::Bool(bootable)),
        ("mode".into(), Value::from(mode)),
        ("type".into(), Value::from(ty)),
        ("unpluggable".into(), Value::Bool(unpluggable)),
        ("empty".into(), Value::Bool(false)),
        ("other_config".into(), other_config),
        ("qos_algorithm_type".into(), Value::from("")),
        ("qos_algorithm_params".into(), Value::empty_map()),
    ]);
    crate::implicit::create(ctx, c, rec)
}

// --------------------------------------------------------------- messages

/// The VM's uuid and the VBD row, for talking to the backend.
fn vm_and_row(s: &Server, vbd: &str) -> Result<(String, std::sync::Arc<Row>)> {
    let row = s.row(vbd_c(), vbd)?;
    let vm_row = s.row(&CLASS_VM, row.read(fields::vbd::VM).as_str())?;
    Ok((vm_row.read(fields::vm::UUID), row))
}

/// The backing file of a VDI whose SR must be attached here (SR_NOT_ATTACHED [sr]).
fn attachable_path(s: &Server, vdi: &str) -> Result<Option<std::path::PathBuf>> {
    let st = s.db.read();
    let Some(row) = st.get(&CLASS_VDI, vdi) else { return Ok(None) };
    let sr = row.read(fields::vdi::SR).into_string();
    if storage::plugged_pbd(&st, &sr, &s.host).is_none() {
        return Err(ApiError::SrNotAttached { sr });
    }
    let path = storage::vdi_path(s, &st, vdi);
    drop(st);
    if let Some(p) = &path {
        storage::attachable(p)?;
    }
    Ok(path)
}

async fn do_plug(ctx: &Ctx, vbd: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vbd_c();
    let (uuid, row) = vm_and_row(s, vbd)?;
    let empty = row.read(fields::vbd::EMPTY);
    let vdi = row.read(fields::vbd::VDI).into_string();
    let path = if empty { None } else { attachable_path(s, &vdi)? };
    let ud = row.read(fields::vbd::USERDEVICE);
    let read_only = row.read(fields::vbd::MODE) == VbdMode::Ro;
    let cdrom = row.read(fields::vbd::TYPE) == VbdType::Cd;
    // A guest's writes to a disk with a changed-block log are tracked as
    // at a start (see xenops::domain_spec).
    let change_batch = match &path {
        Some(p) if s.backend.guests_write_disks() && !read_only && !cdrom => {
            let p = p.clone();
            storage::blocking(move || {
                storage::cbt::begin_guest(&p).map_err(|e| storage::driver::io_error("changed block tracking", e))
            })
            .await?
        }
        _ => None,
    };
    let disk = backend::Disk {
        device: ud.clone(),
        format: crate::xenops::disk_format(path.as_deref()),
        path,
        read_only,
        cdrom,
        change_batch,
    };
    s.backend.plug_disk(&uuid, &disk).await.map_err(|e| be(ctx, e))?;
    ctx.write(|tx| {
        tx.update(c, vbd, |r| {
            r.write(fields::vbd::CURRENTLY_ATTACHED, true);
            r.write(fields::vbd::DEVICE, kernel_device(&ud));
        });
        Ok(())
    })
}

async fn do_unplug(ctx: &Ctx, vbd: &str, force: bool) -> Result<()> {
    let s = &ctx.server;
    let (uuid, row) = vm_and_row(s, vbd)?;
    s.backend.unplug_disk(&uuid, &row.read(fields::vbd::USERDEVICE), force).await.map_err(|e| be(ctx, e))?;
    ctx.write(|tx| {
        tx.put(vbd, fields::vbd::CURRENTLY_ATTACHED, false);
        Ok(())
    })
}

/// Change the media of a CD drive: in the database when the VM is halted,
/// through the backend too when it has a domain.
async fn set_media(ctx: &Ctx, vbd: &str, vdi: Option<&str>) -> Result<()> {
    let s = &ctx.server;
    let (c, vm_c) = (vbd_c(), &CLASS_VM);
    let row = s.row(c, vbd)?;
    let vm = row.read(fields::vbd::VM).into_string();
    let vm_row = s.row(vm_c, &vm)?;
    let ps = vm_row.read(fields::vm::POWER_STATE);
    if ps == VmPowerState::Suspended {
        return Err(ApiError::VmBadPowerState { vm, expected: "halted, running".into(), actual: "suspended".into() });
    }
    if row.read(fields::vbd::TYPE) != VbdType::Cd {
        return Err(ApiError::VbdNotRemovableMedia { vbd: vbd.to_string() });
    }
    let empty = row.read(fields::vbd::EMPTY);
    match vdi {
        Some(v) => {
            if !empty {
                return Err(ApiError::VbdNotEmpty { vbd: vbd.to_string() });
            }
            if s.row(&CLASS_VDI, v)?.get(fields::vdi::MANAGED.index).as_bool() != Some(true) {
                return Err(ApiError::VdiNotManaged { vdi: v.to_string() });
            }
        }
        None if empty => return Err(ApiError::VbdIsEmpty { vbd: vbd.to_string() }),
        None => {}
    }
    if ps != VmPowerState::Halted {
        let uuid = vm_row.read(fields::vm::UUID);
        let path = match vdi {
            Some(v) => attachable_path(s, v)?,
            None => None,
        };
        s.backend.set_cd(&uuid, &row.read(fields::vbd::USERDEVICE), path).await.map_err(|e| be(ctx, e))?;
    }
    ctx.write(|tx| {
        tx.update(c, vbd, |r| {
            r.write(fields::vbd::VDI, vdi.map_or_else(Ref::null, Ref::new));
            r.write(fields::vbd::EMPTY, vdi.is_none());
        });
        Ok(())
    })
}

impl VbdApi for Server {
    async fn plug(&self, ctx: &Ctx, self_: Ref<Vbd>) -> Result<()> {
        lifecycle::with_op(ctx, self_.as_str(), VbdOperations::Plug, || do_plug(ctx, self_.as_str())).await
    }

    async fn unplug(&self, ctx: &Ctx, self_: Ref<Vbd>) -> Result<()> {
        lifecycle::with_op(ctx, self_.as_str(), VbdOperations::Unplug, || do_unplug(ctx, self_.as_str(), false)).await
    }

    async fn unplug_force(&self, ctx: &Ctx, self_: Ref<Vbd>) -> Result<()> {
        lifecycle::with_op(ctx, self_.as_str(), VbdOperations::UnplugForce, || do_unplug(ctx, self_.as_str(), true))
            .await
    }

    async fn insert(&self, ctx: &Ctx, vbd: Ref<Vbd>, vdi: Ref<Vdi>) -> Result<()> {
        self.row(&CLASS_VDI, vdi.as_str())?;
        lifecycle::with_op(ctx, vbd.as_str(), VbdOperations::Insert, || {
            set_media(ctx, vbd.as_str(), Some(vdi.as_str()))
        })
        .await
    }

    async fn eject(&self, ctx: &Ctx, vbd: Ref<Vbd>) -> Result<()> {
        lifecycle::with_op(ctx, vbd.as_str(), VbdOperations::Eject, || set_media(ctx, vbd.as_str(), None)).await
    }

    async fn set_mode(&self, ctx: &Ctx, self_: Ref<Vbd>, value: VbdMode) -> Result<()> {
        let c = vbd_c();
        ctx.write(|tx| {
            let row = tx.get(c, self_.as_str()).cloned().ok_or_else(|| crate::handle_invalid(c, self_.as_str()))?;
            let vm = row.read(fields::vbd::VM).into_string();
            // A VM that is gone is not halted either (its power state reads as "").
            let ps = tx.read(&vm, fields::vm::POWER_STATE);
            if ps != Some(VmPowerState::Halted) {
                let actual = ps.map(|p| p.as_str().to_lowercase()).unwrap_or_default();
                return Err(ApiError::VmBadPowerState { vm, expected: "halted".into(), actual });
            }
            tx.put(self_.as_str(), fields::vbd::MODE, value);
            Ok(())
        })
    }

    async fn assert_attachable(&self, ctx: &Ctx, self_: Ref<Vbd>) -> Result<()> {
        let c = vbd_c();
        ctx.write(|tx| {
            let row = tx.get(c, self_.as_str()).cloned().ok_or_else(|| crate::handle_invalid(c, self_.as_str()))?;
            match vbd_check(tx, self_.as_str(), &row, &VbdOperations::Attach, true) {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(device_number("3"), Some(3));
        assert_eq!(device_number("xvdb"), Some(1));
        assert_eq!(device_number("hdd"), Some(3));
        assert_eq!(device_number("sda1"), Some(0));
        assert_eq!(device_number("fdb"), Some(1));
        assert_eq!(device_number("xvdq"), None);
        assert_eq!(device_number("fdc"), None);
        assert_eq!(device_number("xvda1x"), None);
        assert!(valid_device("autodetect", &VbdType::Disk));
        assert!(valid_device("-1", &VbdType::Disk), "xapi's range check accepts any integer");
        assert!(!valid_device("7", &VbdType::Floppy));
        assert!(valid_device("fda", &VbdType::Floppy));
        assert!(!valid_device("vda", &VbdType::Disk));
    }

    #[test]
    fn kernel_device_names() {
        assert_eq!(kernel_device("0"), "xvda");
        assert_eq!(kernel_device("3"), "xvdd");
        assert_eq!(kernel_device("25"), "xvdz");
        assert_eq!(kernel_device("26"), "xvdaa");
        assert_eq!(kernel_device("hdc"), "hdc");
    }
}

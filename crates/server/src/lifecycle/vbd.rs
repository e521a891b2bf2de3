//! VBD operation rules (xapi's xapi_vbd_helpers) and the derived
//! `allowed_operations`, recomputed when the VBD, its VM or its VDI change.

use super::sr::Links;
use crate::lifecycle::current_ops;
use crate::rows::members;
use crate::ApiError;
use model::schema::ClassDef;
use model::schema::{CLASS_VBD, CLASS_VDI, CLASS_VM, CLASS_VM_GUEST_METRICS};
use model::types::fields;
use model::types::{
    DomainType, TristateType, VbdMode, VbdOperations as BO, VbdType, VdiOperations, VmOperations, VmPowerState,
};
use model::{Row, Value};
use std::collections::BTreeSet;
use store::Txn;

fn vbd_c() -> &'static ClassDef {
    &CLASS_VBD
}

// ---------------------------------------------------------- device names

/// The disk a device name or number refers to (partitions of a disk count
/// as that disk): `3`, `xvdd`, `hdd`, `sdd3` all give 3.
pub fn device_number(d: &str) -> Option<u32> {
    if let Ok(n) = d.parse::<u32>() {
        return Some(n);
    }
    let (rest, last) =
        if let Some(r) = d.strip_prefix("xvd").or_else(|| d.strip_prefix("hd")).or_else(|| d.strip_prefix("sd")) {
            (r, 'p')
        } else {
            (d.strip_prefix("fd")?, 'b')
        };
    let mut chars = rest.chars();
    let c = chars.next()?;
    let part = chars.as_str();
    if !('a'..=last).contains(&c) || !(part.is_empty() || part.parse::<i64>().is_ok()) {
        return None;
    }
    Some(c as u32 - 'a' as u32)
}

/// xapi's `valid_device`: "autodetect", a device name (sd/xvd/hd a–p, fd
/// a–b, optionally with a partition number), or (not for floppies) any
/// integer.
pub fn valid_device(d: &str, ty: &VbdType) -> bool {
    d == "autodetect"
        || (device_number(d).is_some() && d.parse::<i64>().is_err())
        || (*ty != VbdType::Floppy && d.parse::<i64>().is_ok())
}

/// The kernel device name of a userdevice (`0` → `xvda`, `26` → `xvdaa`).
pub fn kernel_device(userdevice: &str) -> String {
    let Ok(mut n) = userdevice.parse::<u32>() else { return userdevice.to_string() };
    let mut letters = Vec::new();
    loop {
        letters.push((b'a' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    format!("xvd{}", letters.iter().rev().collect::<String>())
}

// ------------------------------------------------------------------ rules

/// The operations allowed_operations lists, in its order.
pub const VBD_OPS: &[BO] =
    &[BO::Attach, BO::Eject, BO::Unplug, BO::UnplugForce, BO::Insert, BO::Plug, BO::Pause, BO::Unpause];

/// The running operations an operation may overlap; exhaustive, so a new
/// operation does not compile until it says (one the datamodel does not
/// know is an error).
fn overlaps(op: &BO) -> Result<&'static [BO], &str> {
    Ok(match op {
        BO::Pause => &[BO::Pause, BO::Unpause],
        BO::Unpause => &[BO::Attach, BO::Pause, BO::Unpause],
        BO::Attach | BO::Eject | BO::Insert | BO::Plug | BO::Unplug | BO::UnplugForce => &[],
        BO::Unknown(name) => return Err(name),
    })
}

/// xapi's VDI_IN_USE from the sharing check has the VDI only.
fn vdi_in_use(vdi: &str) -> ApiError {
    ApiError::Other { code: "VDI_IN_USE".into(), params: vec![vdi.to_string()] }
}

/// Why `op` cannot run on the VBD now, in xapi's order (the first error set
/// for an operation wins); `sharing` adds the VDI sharing checks that xapi
/// skips when it only lists allowed operations.
pub fn vbd_check(tx: &Txn, r: &str, row: &Row, op: &BO, sharing: bool) -> Option<ApiError> {
    let (c, vm_c, vdi_c) = (vbd_c(), &CLASS_VM, &CLASS_VDI);
    let overlaps = match overlaps(op) {
        Ok(o) => o,
        Err(name) => return Some(super::unknown_op("VBD", r, name)),
    };
    let cur = current_ops(row);
    if cur.iter().any(|(_, o)| !overlaps.contains(&BO::parse(o))) {
        return Some(super::in_progress("VBD", r, &cur));
    }
    let vbd = || r.to_string();
    if row.get(fields::vbd::UNPLUGGABLE.index).as_bool() != Some(true) && matches!(op, BO::Unplug | BO::UnplugForce) {
        return Some(ApiError::VbdNotUnpluggable { vbd: vbd() });
    }
    let is_cd = row.read(fields::vbd::TYPE) == VbdType::Cd;
    if !is_cd && matches!(op, BO::Insert | BO::Eject) {
        return Some(ApiError::VbdNotRemovableMedia { vbd: vbd() });
    }
    let empty = row.read(fields::vbd::EMPTY);
    if empty && *op == BO::Eject {
        return Some(ApiError::VbdIsEmpty { vbd: vbd() });
    }
    if !empty && *op == BO::Insert {
        return Some(ApiError::VbdNotEmpty { vbd: vbd() });
    }
    let vm = row.read(fields::vbd::VM).into_string();
    let Some(vm_row) = tx.get(vm_c, &vm) else { return Some(crate::handle_invalid(vm_c, &vm)) };
    let ps = vm_row.read(fields::vm::POWER_STATE);
    let attached = row.read(fields::vbd::CURRENTLY_ATTACHED);
    let hotplug = matches!(op, BO::Plug | BO::Unplug | BO::UnplugForce);
    match (&ps, attached) {
        (VmPowerState::Running, true) if *op == BO::Plug => {
            return Some(ApiError::DeviceAlreadyAttached { device: vbd() })
        }
        (VmPowerState::Running, false) if matches!(op, BO::Unplug | BO::UnplugForce) => {
            return Some(ApiError::DeviceAlreadyDetached { device: vbd() })
        }
        (VmPowerState::Running, _) => {}
        _ if hotplug || (ps != VmPowerState::Paused && matches!(op, BO::Pause | BO::Unpause)) => {
            let actual = ps.as_str().to_lowercase();
            return Some(ApiError::VmBadPowerState { vm, expected: "running".into(), actual });
        }
        _ => {}
    }
    if matches!(op, BO::Plug | BO::Unplug) {
        if let Some((_, o)) = current_ops(vm_row).into_iter().find(|(_, o)| super::vm_stopping(&VmOperations::parse(o)))
        {
            return Some(ApiError::OperationNotAllowed { reason: format!("Current operation on VM:{vm} is {o}") });
        }
    }
    if ps == VmPowerState::Running && vm_row.read(fields::vm::DOMAIN_TYPE) == DomainType::Hvm && hotplug {
        // HVM guests hotplug only with PV drivers that say they can.
        let gc = &CLASS_VM_GUEST_METRICS;
        let gm = tx.get(gc, vm_row.read(fields::vm::GUEST_METRICS).as_str());
        match gm.map(|g| g.read(fields::vm_guest_metrics::CAN_USE_HOTPLUG_VBD)) {
            Some(TristateType::Yes) => {}
            Some(TristateType::No) => {
                return Some(ApiError::OperationNotAllowed {
                    reason: "VM states it does not support VBD hotplug.".into(),
                })
            }
            _ if gm.is_some_and(|g| g.read(fields::vm_guest_metrics::PV_DRIVERS_DETECTED)) => {}
            _ => return Some(ApiError::VmMissingPvDrivers { vm }),
        }
        if is_cd {
            return Some(ApiError::OperationNotAllowed {
                reason: "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected".into(),
            });
        }
    }
    if is_cd && ps == VmPowerState::Suspended && matches!(op, BO::Insert | BO::Eject) {
        return Some(ApiError::VmBadPowerState { vm, expected: "halted, running".into(), actual: "suspended".into() });
    }
    if empty {
        return None;
    }
    let vdi = row.read(fields::vbd::VDI).into_string();
    let vdi_row = tx.get(vdi_c, &vdi)?;
    if vdi_row.get(fields::vdi::MANAGED.index).as_bool() != Some(true) {
        // xapi names the VBD here.
        return Some(ApiError::VdiNotManaged { vdi: vbd() });
    }
    let attach_like = matches!(op, BO::Attach | BO::Plug | BO::Insert);
    let vdi_cur: Vec<(String, String)> = current_ops(vdi_row)
        .into_iter()
        .filter(|(_, o)| !matches!(VdiOperations::parse(o), VdiOperations::Mirror | VdiOperations::Copy))
        .collect();
    if attach_like && !vdi_cur.is_empty() {
        return Some(super::in_progress("VDI", &vdi, &vdi_cur));
    }
    if attached || !sharing || !attach_like {
        return None;
    }
    // Sharing: other VBDs using the VDI now (not this one, not a suspended
    // VM's, not a control domain's).
    let is_dom0 = |v: &str| tx.get(vm_c, v).is_some_and(|x| x.read(fields::vm::IS_CONTROL_DOMAIN));
    let others: Vec<&Row> = super::sr::linked(tx, fields::vbd::VDI, &vdi, vdi_row.get(fields::vdi::VBDS.index))
        .iter()
        .filter(|b| b.as_str() != r)
        .filter_map(|b| tx.get(c, b))
        .filter(|b| {
            let v = b.read(fields::vbd::VM).into_string();
            let suspended =
                tx.get(vm_c, &v).is_some_and(|x| x.read(fields::vm::POWER_STATE) == VmPowerState::Suspended);
            !suspended && !is_dom0(&v) && (b.read(fields::vbd::CURRENTLY_ATTACHED) || !current_ops(b).is_empty())
        })
        .collect();
    let someone_rw = others.iter().any(|b| b.read(fields::vbd::MODE) == VbdMode::Rw);
    let need_write = row.read(fields::vbd::MODE) == VbdMode::Rw;
    if vdi_row.get(fields::vdi::SHARABLE.index).as_bool() != Some(true)
        && !is_dom0(&vm)
        && (someone_rw || (need_write && !others.is_empty()))
    {
        return Some(vdi_in_use(&vdi));
    }
    if need_write && vdi_row.read(fields::vdi::READ_ONLY) {
        return Some(ApiError::VdiReadonly { vdi });
    }
    None
}

impl super::Rules for BO {
    fn check(tx: &Txn, r: &str, row: &Row, op: &BO) -> Option<ApiError> {
        vbd_check(tx, r, row, op, true)
    }
}

/// Recompute allowed_operations (and the kernel device name of attached
/// VBDs) for the VBDs a transaction touched: changed VBDs, the VBDs of
/// changed VMs, and the VBDs of changed VDIs.
pub fn refresh_allowed(tx: &mut Txn, vms: &[String]) {
    let (c, vm_c, vdi_c) = (vbd_c(), &CLASS_VM, &CLASS_VDI);
    let mut vbds: BTreeSet<String> = tx.pending_refs(c).into_iter().collect();
    if !vms.is_empty() {
        let vms_extra = Links::pending(tx, fields::vbd::VM);
        for vm in vms {
            if let Some(row) = tx.get(vm_c, vm) {
                vbds.extend(vms_extra.of(tx, fields::vbd::VM, vm, row.get(fields::vm::VBDS.index)));
            }
        }
    }
    for v in tx.pending_refs(vdi_c) {
        if let Some(row) = tx.get(vdi_c, &v) {
            vbds.extend(members(row.get(fields::vdi::VBDS.index)));
        }
    }
    let ai = fields::vbd::ALLOWED_OPERATIONS.index;
    for b in vbds {
        let Some(row) = tx.get(c, &b).cloned() else { continue };
        let want = Value::Array(
            VBD_OPS
                .iter()
                .filter(|op| vbd_check(tx, &b, &row, op, false).is_none())
                .map(|op| Value::from(op.as_str()))
                .collect(),
        );
        if row.get(ai) != &want {
            tx.set(c, &b, ai, want);
        }
        if row.read(fields::vbd::CURRENTLY_ATTACHED) && row.read(fields::vbd::DEVICE).is_empty() {
            tx.put(&b, fields::vbd::DEVICE, kernel_device(&row.read(fields::vbd::USERDEVICE)));
        }
    }
}

//! VBD: constructor rules and device allocation.

use crate::implicit::Hooks;
use crate::seed::obj;
use crate::{class, field, put, ApiError, Ctx, Result};
use model::{Row, Value};
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: None };

fn sv(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Device names xapi accepts for `userdevice`, mapped to their number.
pub fn device_number(d: &str) -> Option<u32> {
    if let Ok(n) = d.parse::<u32>() {
        return Some(n);
    }
    let letters = d.strip_prefix("xvd").or_else(|| d.strip_prefix("hd")).or_else(|| d.strip_prefix("sd"))?;
    let mut chars = letters.chars();
    let c = chars.next()?;
    if !c.is_ascii_lowercase() || chars.next().is_some() {
        return None;
    }
    Some(c as u32 - 'a' as u32)
}

/// VBD.create's checks (xapi_vbd.ml), device allocation, and its VBD_metrics.
fn create(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &mut Row) -> Result<()> {
    let (c, vm_c, vdi_c) = (class("VBD"), class("VM"), class("VDI"));
    let vm = sv(row.get(field(c, "VM")));
    let vm_row = tx.get(vm_c, &vm).cloned().ok_or_else(|| crate::handle_invalid(vm_c, &vm))?;
    let empty = row.get(field(c, "empty")).as_bool() == Some(true);
    let is_cd = row.get(field(c, "type")).as_str() == Some("CD");
    let mode = sv(row.get(field(c, "mode")));
    let vdi = sv(row.get(field(c, "VDI")));
    if !empty {
        let vr = tx.get(vdi_c, &vdi).cloned().ok_or_else(|| crate::handle_invalid(vdi_c, &vdi))?;
        let ty = sv(vr.get(field(vdi_c, "type")));
        if !matches!(
            ty.as_str(),
            "system" | "user" | "ephemeral" | "suspend" | "crashdump" | "metadata" | "rrd" | "pvs_cache"
        ) {
            return Err(ApiError::VdiIncompatibleType { vdi, r#type: ty });
        }
        if mode == "RW" && vr.get(field(vdi_c, "read_only")).as_bool() == Some(true) {
            return Err(ApiError::VdiReadonly { vdi });
        }
    }
    if is_cd && mode != "RO" {
        return Err(ApiError::VbdCdsMustBeReadonly);
    }
    if empty && !is_cd {
        return Err(ApiError::VbdNotRemovableMedia { vbd: "in constructor".into() });
    }
    let in_use: Vec<u32> = crate::lifecycle::members(vm_row.get(field(vm_c, "VBDs")))
        .iter()
        .filter_map(|b| tx.get(c, b).and_then(|br| device_number(&sv(br.get(field(c, "userdevice"))))))
        .collect();
    let ud = sv(row.get(field(c, "userdevice")));
    let ud = if ud == "autodetect" {
        (0..255)
            .find(|n| !in_use.contains(n))
            .map(|n| n.to_string())
            .ok_or_else(|| ApiError::InvalidDevice { device: ud.clone() })?
    } else {
        let n = device_number(&ud).ok_or_else(|| ApiError::InvalidDevice { device: ud.clone() })?;
        if in_use.contains(&n) {
            return Err(ApiError::DeviceAlreadyExists { device: ud });
        }
        ud
    };
    put(row, "userdevice", ud);
    // The kernel device and attachment come from plugging, except for a
    // suspended VM whose disks stay attached.
    let suspended = vm_row.get(field(vm_c, "power_state")).as_str() == Some("Suspended");
    if !suspended {
        put(row, "device", "");
        put(row, "currently_attached", false);
    }
    let m = model::new_ref();
    obj(tx, "VBD_metrics", &m, vec![]);
    put(row, "metrics", m);
    Ok(())
}

fn destroy(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &Row) -> Result<()> {
    let c = class("VBD");
    if row.get(field(c, "currently_attached")).as_bool() == Some(true) {
        let vm = sv(row.get(field(c, "VM")));
        let ps = tx.get(class("VM"), &vm).map(|v| sv(v.get(field(class("VM"), "power_state")))).unwrap_or_default();
        if ps == "Running" || ps == "Paused" {
            return Err(ApiError::OperationNotAllowed { reason: format!("VBD '{r}' still attached to '{vm}'") });
        }
    }
    let m = sv(row.get(field(c, "metrics")));
    tx.delete(class("VBD_metrics"), &m);
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
    let c = class("VBD");
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

//! VM: constructor and destructor rules (lifecycle operations follow).

use crate::implicit::Hooks;
use crate::seed::obj;
use crate::{class, field, put, ApiError, Ctx, Result};
use model::{Row, Value};
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: None };

/// VM.create: power_state is ignored unless Suspended; a VM_metrics object
/// is made; domain_type follows HVM_boot_policy when unspecified.
fn create(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &mut Row) -> Result<()> {
    let c = class("VM");
    let ps = field(c, "power_state");
    if row.get(ps).as_str() == Some("Suspended") {
        let missing = |n: &str| match row.get(field(c, n)) {
            Value::String(s) => s.is_empty() || s == model::NULL_REF,
            _ => true,
        };
        if missing("suspend_VDI")
            || missing("last_booted_record")
            || missing("last_boot_CPU_flags") && row.get(field(c, "last_boot_CPU_flags")) == &Value::Struct(vec![])
        {
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
        let hvm = row.get(field(c, "HVM_boot_policy")).as_str().is_some_and(|p| !p.is_empty());
        row.fields[dt] = Value::from(if hvm { "hvm" } else { "pv" });
    }
    let metrics = model::new_ref();
    obj(
        tx,
        "VM_metrics",
        &metrics,
        vec![
            ("install_time", Value::DateTime(model::DateTime::now())),
            ("last_updated", Value::DateTime(model::DateTime::now())),
        ],
    );
    put(row, "metrics", metrics);
    Ok(())
}

/// VM.destroy: only Halted or Suspended VMs; removes the VM's VBDs, VIFs,
/// VTPMs, consoles and metrics, but not its disks (VDIs).
fn destroy(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &Row) -> Result<()> {
    let c = class("VM");
    if row.get(field(c, "is_control_domain")).as_bool() == Some(true) {
        return Err(ApiError::OperationNotAllowed { reason: "This operation is not allowed on dom0".into() });
    }
    let ps = row.get(field(c, "power_state")).as_str().unwrap_or("Halted").to_string();
    if ps != "Halted" && ps != "Suspended" {
        return Err(ApiError::VmBadPowerState {
            vm: r.to_string(),
            expected: "halted, suspended".into(),
            actual: ps.to_lowercase(),
        });
    }
    remove_devices(tx, row);
    Ok(())
}

/// Delete every object that belongs to a VM row (not its VDIs).
pub fn remove_devices(tx: &mut Txn, row: &Row) {
    let c = class("VM");
    let refs = |name: &str| -> Vec<String> {
        row.get(field(c, name))
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    for vbd in refs("VBDs") {
        let vc = class("VBD");
        if let Some(m) = tx.get(vc, &vbd).and_then(|b| b.get(field(vc, "metrics")).as_str().map(str::to_string)) {
            tx.delete(class("VBD_metrics"), &m);
        }
        tx.delete(vc, &vbd);
    }
    for vif in refs("VIFs") {
        tx.delete(class("VIF"), &vif);
    }
    for v in refs("VTPMs") {
        tx.delete(class("VTPM"), &v);
    }
    for con in refs("consoles") {
        tx.delete(class("console"), &con);
    }
    for f in ["metrics", "guest_metrics"] {
        if let Some(m) = row.get(field(c, f)).as_str().filter(|m| *m != model::NULL_REF) {
            let mc = if f == "metrics" { "VM_metrics" } else { "VM_guest_metrics" };
            tx.delete(class(mc), m);
        }
    }
}

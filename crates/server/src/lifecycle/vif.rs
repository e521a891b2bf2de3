//! VIF operation rules (xapi's xapi_vif_helpers) and the derived
//! `allowed_operations`; the MTU a VIF comes up with.

use crate::{handle_invalid, ApiError};
use model::types::fields::{network as N, vif as F, vm as VM, vm_guest_metrics as GM};
use model::types::{DomainType, NetworkDefaultLockingMode, TristateType, VifLockingMode, VifOperations, VmPowerState};
use model::{Row, XenType};
use std::collections::BTreeSet;
use store::Txn;

/// The operations allowed_operations lists, in its order.
pub const OPS: &[VifOperations] = &[VifOperations::Attach, VifOperations::Plug, VifOperations::Unplug];

fn is_hvm(vm: &Row) -> bool {
    match vm.read(VM::DOMAIN_TYPE) {
        DomainType::Hvm => true,
        DomainType::Unspecified => !vm.read(VM::HVM_BOOT_POLICY).is_empty(),
        _ => false,
    }
}

/// Can a running HVM guest hot-plug NICs: its agent says so, or PV drivers
/// are present (xapi's guest-metrics test).
fn hotplug_error(tx: &Txn, vm: &str, vm_row: &Row) -> Option<ApiError> {
    let missing = || Some(ApiError::VmMissingPvDrivers { vm: vm.to_string() });
    let Some(gm) = tx.get(GM::UUID.class, vm_row.read(VM::GUEST_METRICS).as_str()) else { return missing() };
    match gm.read(GM::CAN_USE_HOTPLUG_VIF) {
        TristateType::Yes => None,
        TristateType::No => {
            Some(ApiError::OperationNotAllowed { reason: "VM states it does not support VIF hotplug.".into() })
        }
        _ if gm.read(GM::PV_DRIVERS_DETECTED) => None,
        _ => match gm.read(GM::PV_DRIVERS_VERSION).get("major").and_then(|m| m.parse::<i64>().ok()) {
            Some(_) => None,
            None => missing(),
        },
    }
}

/// Why `op` cannot run on this VIF now, in xapi's order; None if it can.
pub fn check(tx: &Txn, r: &str, row: &Row, op: &VifOperations) -> Option<ApiError> {
    // Exhaustive: a new operation does not compile until it has its rules.
    match op {
        VifOperations::Attach | VifOperations::Plug | VifOperations::Unplug => {}
        VifOperations::Unknown(name) => return Some(super::unknown_op("VIF", r, name)),
    }
    let cur = super::current_ops(row);
    if !cur.is_empty() {
        return Some(super::in_progress("VIF", r, &cur));
    }
    if *op == VifOperations::Attach {
        return None;
    }
    let vm = row.read(F::VM);
    let Some(vm_row) = tx.get(VM::UUID.class, vm.as_str()) else {
        return Some(handle_invalid(VM::UUID.class, vm.as_str()));
    };
    if *op == VifOperations::Plug && vm_row.read(VM::IS_CONTROL_DOMAIN) {
        return Some(ApiError::OperationNotAllowed { reason: "Control domain does not support hotplug".into() });
    }
    let ps = vm_row.read(VM::POWER_STATE);
    let running = ps == VmPowerState::Running;
    match (running, row.read(F::CURRENTLY_ATTACHED), op) {
        (true, true, VifOperations::Plug) => return Some(ApiError::DeviceAlreadyAttached { device: r.to_string() }),
        (true, false, VifOperations::Unplug) => return Some(ApiError::DeviceAlreadyDetached { device: r.to_string() }),
        (false, _, _) => {
            return Some(ApiError::VmBadPowerState {
                vm: vm.to_string(),
                expected: "running".into(),
                actual: ps.to_value().as_str().unwrap_or("").to_lowercase(),
            })
        }
        _ => {}
    }
    for vop in vm_row.read(VM::CURRENT_OPERATIONS).values() {
        if super::vm_stopping(vop) {
            let name = vop.to_value();
            let reason = format!("Current operation on VM:{vm} is {}", name.as_str().unwrap_or(""));
            return Some(ApiError::OperationNotAllowed { reason });
        }
    }
    if running && is_hvm(vm_row) {
        return hotplug_error(tx, vm.as_str(), vm_row);
    }
    None
}

impl super::Rules for VifOperations {
    fn check(tx: &Txn, r: &str, row: &Row, op: &VifOperations) -> Option<ApiError> {
        check(tx, r, row, op)
    }
}

fn allowed(tx: &Txn, r: &str, row: &Row) -> Vec<VifOperations> {
    OPS.iter().filter(|op| check(tx, r, row, op).is_none()).cloned().collect()
}

/// The locking mode that applies: `network_default` resolved by the VIF's
/// network (whose default is unlocked or disabled; no network: unlocked).
pub fn effective_locking(mode: VifLockingMode, net: Option<&Row>) -> VifLockingMode {
    match mode {
        VifLockingMode::NetworkDefault => match net.map(|n| n.read(N::DEFAULT_LOCKING_MODE)) {
            Some(NetworkDefaultLockingMode::Disabled) => VifLockingMode::Disabled,
            _ => VifLockingMode::Unlocked,
        },
        m => m,
    }
}

/// The guide's §6.5 device keys of an other-config (a VIF's or a PIF's):
/// the offloads `ethtool-<key>` (→ on/off) and `promiscuous`, values that
/// are not booleans ignored as the hotplug scripts do.
pub fn device_settings(
    oc: &std::collections::BTreeMap<String, String>,
) -> (std::collections::BTreeMap<String, String>, bool) {
    fn on(v: &str) -> Option<bool> {
        match v {
            "true" | "on" => Some(true),
            "false" | "off" => Some(false),
            _ => None,
        }
    }
    let ethtool = ["rx", "tx", "sg", "tso", "ufo", "gso"]
        .iter()
        .filter_map(|k| {
            Some((k.to_string(), if on(oc.get(&format!("ethtool-{k}"))?)? { "on" } else { "off" }.to_string()))
        })
        .collect();
    (ethtool, oc.get("promiscuous").and_then(|v| on(v)) == Some(true))
}

/// `other_config:mtu` if it is an integer, else the network's MTU (as xapi
/// hands it to xenopsd).
pub fn effective_mtu(vif: &Row, net: Option<&Row>) -> i64 {
    let net_mtu = net.map(|n| n.read(N::MTU)).unwrap_or(1500);
    vif.read(F::OTHER_CONFIG).get("mtu").and_then(|m| crate::rows::ocaml_int(m)).unwrap_or(net_mtu)
}

/// Keep VIF allowed_operations true for the VIFs this transaction touched and
/// those of the VMs it changed; sync the MTU of VIFs that just came up.
pub fn precommit(tx: &mut Txn, vms: &[String]) {
    let c = F::UUID.class;
    let mut vifs: BTreeSet<String> = tx.pending_refs(c).into_iter().collect();
    for vm in vms {
        vifs.extend(tx.read(vm, VM::VIFS).unwrap_or_default().into_iter().map(|v| v.into_string()));
    }
    for v in vifs {
        let Some(row) = tx.get(c, &v).cloned() else { continue };
        let want = allowed(tx, &v, &row);
        if row.read(F::ALLOWED_OPERATIONS) != want {
            tx.put(&v, F::ALLOWED_OPERATIONS, want);
        }
        let was_attached = tx.state().read(&v, F::CURRENTLY_ATTACHED).unwrap_or(false);
        let live = tx
            .read(row.read(F::VM).as_str(), VM::POWER_STATE)
            .is_some_and(|ps| matches!(ps, VmPowerState::Running | VmPowerState::Paused));
        if row.read(F::CURRENTLY_ATTACHED) && !was_attached && live {
            let mtu = effective_mtu(&row, tx.get(N::UUID.class, row.read(F::NETWORK).as_str()));
            if row.read(F::MTU) != mtu {
                tx.put(&v, F::MTU, mtu);
            }
        }
    }
}

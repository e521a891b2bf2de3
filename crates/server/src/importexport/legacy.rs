//! Objects for the SDK guide's legacy appliance (§3.5.1): one VM with its
//! memory, vCPUs and boot mode, one VDI per `<vdi>`, one VBD per `<vbd>`.

use super::import::Created;
use crate::{storage, ApiError, Ctx, Result};
use model::schema::{CLASS_VBD, CLASS_VM};
use model::types::{fields, DomainType, OnCrashBehaviour, OnNormalExit, VbdMode, VbdType, VmOperations};
use model::{Ref, Value};
use xva::legacy::LegacyVm;

/// The VBD userdevice of a guide device name (`sda`, `hdb`, `xvdc`…).
fn userdevice(device: &str) -> Option<String> {
    crate::lifecycle::vbd::device_number(device).map(|n| n.to_string())
}

/// Create the VM and its (empty) disks; the caller streams the data into
/// `Created::disks` (keyed by the `<vdi>` name).
pub async fn create_objects(ctx: &Ctx, vm: &LegacyVm, sr: &str, task: &str, force: bool) -> Result<Created> {
    let mut out = Created::default();
    match build(ctx, vm, sr, task, &mut out).await {
        Ok(()) => Ok(out),
        Err(e) => {
            if !force {
                super::import::undo(ctx, &out).await;
            }
            Err(e)
        }
    }
}

async fn build(ctx: &Ctx, vm: &LegacyVm, sr: &str, task: &str, out: &mut Created) -> Result<()> {
    for b in &vm.vbds {
        if userdevice(&b.device).is_none() {
            return Err(ApiError::ImportError { msg: format!("ova.xml: unusable device name {:?}", b.device) });
        }
    }
    if vm.mem_set < 16 << 20 {
        return Err(ApiError::ImportError { msg: format!("ova.xml: mem_set {} is too small", vm.mem_set) });
    }
    for v in &vm.vdis {
        let vdi = storage::create_vdi(
            ctx,
            storage::NewVdi {
                sr,
                name_label: v.name.clone(),
                name_description: String::new(),
                virtual_size: v.size as i64,
                vdi_type: "user",
                sharable: false,
                read_only: false,
                other_config: Value::empty_map(),
                sm_config: Value::empty_map(),
            },
        )
        .await?;
        out.note_vdi(&v.name, &vdi, v.size);
    }
    let vmc = &CLASS_VM;
    let r = model::new_ref();
    let mut row = crate::rows::new_row(fields::vm::UUID);
    let mem = vm.mem_set as i64;
    row.write(fields::vm::NAME_LABEL, if vm.label.is_empty() { vm.name.clone() } else { vm.label.clone() });
    row.write(fields::vm::NAME_DESCRIPTION, vm.shortdesc.clone());
    for f in [
        fields::vm::MEMORY_STATIC_MIN,
        fields::vm::MEMORY_STATIC_MAX,
        fields::vm::MEMORY_DYNAMIC_MIN,
        fields::vm::MEMORY_DYNAMIC_MAX,
        fields::vm::MEMORY_TARGET,
    ] {
        row.write(f, mem);
    }
    row.write(fields::vm::VCPUS_MAX, vm.vcpus as i64);
    row.write(fields::vm::VCPUS_AT_STARTUP, vm.vcpus as i64);
    row.write(fields::vm::ACTIONS_AFTER_SHUTDOWN, OnNormalExit::Destroy);
    row.write(fields::vm::ACTIONS_AFTER_REBOOT, OnNormalExit::Restart);
    row.write(fields::vm::ACTIONS_AFTER_CRASH, OnCrashBehaviour::Restart);
    row.write(fields::vm::USER_VERSION, 1);
    if vm.is_hvm {
        row.write(fields::vm::HVM_BOOT_POLICY, "BIOS order".to_string());
        row.write(fields::vm::HVM_BOOT_PARAMS, [("order".to_string(), "cd".to_string())].into());
        row.write(fields::vm::DOMAIN_TYPE, DomainType::Hvm);
    } else {
        row.write(fields::vm::PV_BOOTLOADER, "pygrub".to_string());
        row.write(fields::vm::PV_ARGS, vm.kernel_boot_cmdline.clone());
        row.write(fields::vm::DOMAIN_TYPE, DomainType::Pv);
    }
    // In this key order (a typed map write would sort the keys).
    row.fields[fields::vm::OTHER_CONFIG.index] =
        crate::rows::map(&[("mac_seed", &model::new_uuid()), ("import_task", task)]);
    row.write(fields::vm::CURRENT_OPERATIONS, [(task.to_string(), VmOperations::Import)].into());
    let table = out.table.clone();
    ctx.write(|tx| {
        if let Some(h) = crate::ops::hooks(vmc).create {
            h(ctx, tx, &r, &mut row)?;
        }
        tx.insert(&r, row);
        for b in &vm.vbds {
            let vdi = table.get(&b.vdi).map_or_else(Ref::null, |v| Ref::new(v.as_str()));
            let mut vbd = crate::rows::new_row(fields::vbd::UUID);
            vbd.write(fields::vbd::VM, Ref::new(r.as_str()));
            vbd.write(fields::vbd::VDI, vdi);
            vbd.write(fields::vbd::USERDEVICE, userdevice(&b.device).unwrap_or_default());
            vbd.write(fields::vbd::BOOTABLE, b.function == "root");
            vbd.write(fields::vbd::MODE, if b.mode == "ro" { VbdMode::Ro } else { VbdMode::Rw });
            vbd.write(fields::vbd::TYPE, VbdType::Disk);
            vbd.write(fields::vbd::UNPLUGGABLE, false);
            let vr = model::new_ref();
            if let Some(h) = crate::ops::hooks(&CLASS_VBD).create {
                h(ctx, tx, &vr, &mut vbd)?;
            }
            tx.insert(&vr, vbd);
        }
        Ok(())
    })?;
    out.note_vm(&r);
    Ok(())
}

//! Objects for the SDK guide's legacy appliance (§3.5.1): one VM with its
//! memory, vCPUs and boot mode, one VDI per `<vdi>`, one VBD per `<vbd>`.

use super::import::Created;
use crate::{put, storage, ApiError, Ctx, Result};
use model::schema::{CLASS_VBD, CLASS_VM};
use model::Value;
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
    let mut row = store::blank_row(vmc);
    let mem = Value::Int(vm.mem_set as i64);
    put(&mut row, "uuid", model::new_uuid());
    put(&mut row, "name_label", if vm.label.is_empty() { vm.name.as_str() } else { vm.label.as_str() });
    put(&mut row, "name_description", vm.shortdesc.as_str());
    for f in ["memory_static_min", "memory_static_max", "memory_dynamic_min", "memory_dynamic_max", "memory_target"] {
        put(&mut row, f, mem.clone());
    }
    put(&mut row, "VCPUs_max", Value::Int(vm.vcpus as i64));
    put(&mut row, "VCPUs_at_startup", Value::Int(vm.vcpus as i64));
    put(&mut row, "actions_after_shutdown", "destroy");
    put(&mut row, "actions_after_reboot", "restart");
    put(&mut row, "actions_after_crash", "restart");
    put(&mut row, "user_version", Value::Int(1));
    if vm.is_hvm {
        put(&mut row, "HVM_boot_policy", "BIOS order");
        put(&mut row, "HVM_boot_params", crate::rows::map(&[("order", "cd")]));
        put(&mut row, "domain_type", "hvm");
    } else {
        put(&mut row, "PV_bootloader", "pygrub");
        put(&mut row, "PV_args", vm.kernel_boot_cmdline.as_str());
        put(&mut row, "domain_type", "pv");
    }
    put(&mut row, "other_config", crate::rows::map(&[("mac_seed", &model::new_uuid()), ("import_task", task)]));
    put(&mut row, "current_operations", Value::Struct(vec![(task.to_string(), Value::from("import"))]));
    let table = out.table.clone();
    ctx.write(|tx| {
        if let Some(h) = crate::ops::hooks(vmc).create {
            h(ctx, tx, &r, &mut row)?;
        }
        tx.insert(&r, row);
        for b in &vm.vbds {
            let vdi = table.get(&b.vdi).cloned().unwrap_or_else(|| model::NULL_REF.into());
            let mut vbd = store::blank_row(&CLASS_VBD);
            put(&mut vbd, "uuid", model::new_uuid());
            put(&mut vbd, "VM", r.as_str());
            put(&mut vbd, "VDI", vdi);
            put(&mut vbd, "userdevice", userdevice(&b.device).unwrap_or_default());
            put(&mut vbd, "bootable", b.function == "root");
            put(&mut vbd, "mode", if b.mode == "ro" { "RO" } else { "RW" });
            put(&mut vbd, "type", "Disk");
            put(&mut vbd, "unpluggable", false);
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

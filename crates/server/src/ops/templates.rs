//! The default templates a fresh host ships with. Each is a halted VM with
//! `is_a_template`, `other_config:default_template=true` and a provisioning
//! spec in `other_config:disks`.

use crate::rows::map;
use crate::Result;
use model::types::fields::{vm as V, vm_metrics as VM};
use model::types::{DomainType, OnCrashBehaviour, OnNormalExit, VmPowerState};
use model::{DateTime, Ref};
use store::Txn;

struct Template {
    name: &'static str,
    description: &'static str,
    /// HVM ("BIOS order") or PV (pygrub).
    hvm: bool,
    memory_mib: i64,
    vcpus: i64,
    disk_gib: i64,
    distro: &'static str,
    windows: bool,
}

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

const TEMPLATES: &[Template] = &[
    Template {
        name: "Debian Etch 4.0",
        description: "Template for Debian Etch 4.0 (paravirtualised, pygrub)",
        hvm: false,
        memory_mib: 256,
        vcpus: 1,
        disk_gib: 4,
        distro: "debianlike",
        windows: false,
    },
    Template {
        name: "Debian Bookworm 12",
        description: "Template for Debian Bookworm 12",
        hvm: true,
        memory_mib: 2048,
        vcpus: 2,
        disk_gib: 10,
        distro: "debianlike",
        windows: false,
    },
    Template {
        name: "Ubuntu Noble Numbat 24.04",
        description: "Template for Ubuntu 24.04 LTS",
        hvm: true,
        memory_mib: 2048,
        vcpus: 2,
        disk_gib: 10,
        distro: "debianlike",
        windows: false,
    },
    Template {
        name: "Rocky Linux 9",
        description: "Template for Rocky Linux 9",
        hvm: true,
        memory_mib: 2048,
        vcpus: 2,
        disk_gib: 10,
        distro: "rhlike",
        windows: false,
    },
    Template {
        name: "Windows Server 2022 (64-bit)",
        description: "Template for Windows Server 2022 (64-bit)",
        hvm: true,
        memory_mib: 4096,
        vcpus: 2,
        disk_gib: 32,
        distro: "windows",
        windows: true,
    },
    Template {
        name: "Windows 11",
        description: "Template for Windows 11",
        hvm: true,
        memory_mib: 4096,
        vcpus: 2,
        disk_gib: 64,
        distro: "windows",
        windows: true,
    },
    Template {
        name: "Other install media",
        description: "Template for installing from any installation media",
        hvm: true,
        memory_mib: 1024,
        vcpus: 1,
        disk_gib: 8,
        distro: "",
        windows: false,
    },
];

/// Provisioning spec naming the SR by uuid (empty means the default SR).
pub fn disks_xml(size: i64, sr: &str) -> String {
    format!("<provision><disk device=\"0\" size=\"{size}\" sr=\"{sr}\" bootable=\"true\" type=\"system\"/></provision>")
}

pub fn seed(tx: &mut Txn, _local_sr_uuid: &str) -> Result<()> {
    let now = DateTime::now();
    for t in TEMPLATES {
        let r = model::new_ref();
        let metrics = model::new_ref();
        let mut row = crate::rows::new_row(VM::UUID);
        row.write(VM::INSTALL_TIME, now);
        row.write(VM::LAST_UPDATED, now);
        tx.insert(&metrics, row);
        let mem = t.memory_mib * MIB;
        let max = if t.windows { 128 * GIB } else { 64 * GIB };
        let recommendations = format!(
            "<restrictions><restriction field=\"memory-static-max\" max=\"{max}\"/><restriction field=\"vcpus-max\" max=\"32\"/><restriction property=\"number-of-vbds\" max=\"255\"/><restriction property=\"number-of-vifs\" max=\"7\"/></restrictions>"
        );
        let disks = disks_xml(t.disk_gib * GIB, "");
        let mut oc: Vec<(&str, &str)> =
            vec![("default_template", "true"), ("disks", &disks), ("install-methods", "cdrom,nfs,http,ftp")];
        if !t.distro.is_empty() && !t.windows {
            oc.push(("linux_template", "true"));
            oc.push(("install-distro", t.distro));
        }
        let platform: Vec<(&str, &str)> = if t.hvm {
            let mut p = vec![
                ("acpi", "1"),
                ("apic", "true"),
                ("pae", "true"),
                ("nx", "true"),
                ("hpet", "true"),
                ("device-model", "qemu-upstream-compat"),
            ];
            if t.windows {
                p.push(("viridian", "true"));
            }
            p
        } else {
            vec![("nx", "false"), ("acpi", "1"), ("apic", "true"), ("pae", "true")]
        };
        let mut row = crate::rows::new_row(V::UUID);
        row.write(V::NAME_LABEL, t.name.to_string());
        row.write(V::NAME_DESCRIPTION, t.description.to_string());
        row.write(V::POWER_STATE, VmPowerState::Halted);
        row.write(V::USER_VERSION, 1);
        row.write(V::IS_A_TEMPLATE, true);
        row.write(V::IS_DEFAULT_TEMPLATE, true);
        row.write(V::MEMORY_STATIC_MAX, mem);
        row.write(V::MEMORY_DYNAMIC_MAX, mem);
        row.write(V::MEMORY_DYNAMIC_MIN, mem);
        row.write(V::MEMORY_STATIC_MIN, if t.windows { 2048 * MIB } else { 256 * MIB }.min(mem));
        row.write(V::MEMORY_TARGET, mem);
        row.write(V::VCPUS_MAX, t.vcpus);
        row.write(V::VCPUS_AT_STARTUP, t.vcpus);
        row.write(V::ACTIONS_AFTER_SHUTDOWN, OnNormalExit::Destroy);
        row.write(V::ACTIONS_AFTER_REBOOT, OnNormalExit::Restart);
        row.write(V::ACTIONS_AFTER_CRASH, OnCrashBehaviour::Restart);
        row.write(V::PV_BOOTLOADER, if t.hvm { "" } else { "pygrub" }.to_string());
        row.write(V::HVM_BOOT_POLICY, if t.hvm { "BIOS order" } else { "" }.to_string());
        let boot_params = if t.hvm { vec![("order".to_string(), "cdn".to_string())] } else { vec![] };
        row.write(V::HVM_BOOT_PARAMS, boot_params.into_iter().collect());
        // platform and other_config keep the order written above (a typed
        // map write would sort their keys).
        row.fields[V::PLATFORM.index] = map(&platform);
        row.fields[V::OTHER_CONFIG.index] = map(&oc);
        row.write(V::RECOMMENDATIONS, recommendations);
        row.write(V::DOMAIN_TYPE, if t.hvm { DomainType::Hvm } else { DomainType::Pv });
        row.write(V::METRICS, Ref::new(metrics.as_str()));
        row.write(V::HAS_VENDOR_DEVICE, t.windows);
        tx.insert(&r, row);
    }
    Ok(())
}

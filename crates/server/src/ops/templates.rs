//! The default templates a fresh host ships with. Each is a halted VM with
//! `is_a_template`, `other_config:default_template=true` and a provisioning
//! spec in `other_config:disks`.

use crate::rows::{map, obj};
use crate::Result;
use model::{DateTime, Value};
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
        obj(
            tx,
            "VM_metrics",
            &metrics,
            vec![("install_time", Value::DateTime(now)), ("last_updated", Value::DateTime(now))],
        );
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
        obj(
            tx,
            "VM",
            &r,
            vec![
                ("name_label", Value::from(t.name)),
                ("name_description", Value::from(t.description)),
                ("power_state", Value::from("Halted")),
                ("user_version", Value::Int(1)),
                ("is_a_template", Value::Bool(true)),
                ("is_default_template", Value::Bool(true)),
                ("memory_static_max", Value::Int(mem)),
                ("memory_dynamic_max", Value::Int(mem)),
                ("memory_dynamic_min", Value::Int(mem)),
                ("memory_static_min", Value::Int(if t.windows { 2048 * MIB } else { 256 * MIB }.min(mem))),
                ("memory_target", Value::Int(mem)),
                ("VCPUs_max", Value::Int(t.vcpus)),
                ("VCPUs_at_startup", Value::Int(t.vcpus)),
                ("actions_after_shutdown", Value::from("destroy")),
                ("actions_after_reboot", Value::from("restart")),
                ("actions_after_crash", Value::from("restart")),
                ("PV_bootloader", Value::from(if t.hvm { "" } else { "pygrub" })),
                ("HVM_boot_policy", Value::from(if t.hvm { "BIOS order" } else { "" })),
                ("HVM_boot_params", if t.hvm { map(&[("order", "cdn")]) } else { Value::empty_map() }),
                ("platform", map(&platform)),
                ("other_config", map(&oc)),
                ("recommendations", Value::from(recommendations)),
                ("domain_type", Value::from(if t.hvm { "hvm" } else { "pv" })),
                ("metrics", Value::from(metrics.as_str())),
                ("has_vendor_device", Value::Bool(t.windows)),
            ],
        );
    }
    Ok(())
}

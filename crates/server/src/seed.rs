//! First-start seeding: one pool whose master is this host, with the records
//! real clients expect to find (host software and licence details, metrics,
//! CPUs, the control domain, local and ISO storage, the management network,
//! roles and the default templates). Runs once per data directory.

use crate::{class, field, put, roles, ApiError, Result};
use model::{DateTime, Row, Value};
use store::{Db, Txn};

/// The simulated machine.
pub const HOST_MEMORY: i64 = 32 << 30;
pub const HOST_CPUS: usize = 8;
pub const DOM0_MEMORY: i64 = 4 << 30;
pub const LOCAL_SR_SIZE: i64 = 1 << 40;

pub const PRODUCT_BRAND: &str = "xapi-rs";
pub const PRODUCT_VERSION: &str = "8.3.0";
pub const PLATFORM_VERSION: &str = "3.4.0";
pub const XAPI_VERSION: &str = "24.12";

pub fn map(kv: &[(&str, &str)]) -> Value {
    Value::Struct(kv.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
}

pub fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
}

/// Insert an object with a fresh uuid (unless given) and the given fields.
pub fn obj(tx: &mut Txn, cls: &str, r: &str, fields: Vec<(&str, Value)>) -> Row {
    let c = class(cls);
    let mut row = store::blank_row(c);
    if c.field_index("uuid").is_some() {
        put(&mut row, "uuid", model::new_uuid());
    }
    for (k, v) in fields {
        put(&mut row, k, v);
    }
    tx.insert(r, row.clone());
    row
}

/// Every licence restriction key, all lifted.
const RESTRICTIONS: &[&str] = &[
    "restrict_vswitch_controller",
    "restrict_lab",
    "restrict_stage",
    "restrict_storagelink",
    "restrict_storagelink_site_recovery",
    "restrict_web_selfservice",
    "restrict_web_selfservice_manager",
    "restrict_hotfix_apply",
    "restrict_export_resource_data",
    "restrict_read_caching",
    "restrict_cifs",
    "restrict_health_check",
    "restrict_xcm",
    "restrict_vm_memory_introspection",
    "restrict_batch_hotfix_apply",
    "restrict_management_on_vlan",
    "restrict_ws_proxy",
    "restrict_vlan",
    "restrict_qos",
    "restrict_pool_attached_storage",
    "restrict_netapp",
    "restrict_equalogic",
    "restrict_pooling",
    "restrict_marathon",
    "restrict_email_alerting",
    "restrict_historical_performance",
    "restrict_wlb",
    "restrict_rbac",
    "restrict_dmc",
    "restrict_checkpoint",
    "restrict_cpu_masking",
    "restrict_connection",
    "restrict_vmpr",
    "restrict_vmss",
    "restrict_intellicache",
    "restrict_gpu",
    "restrict_dr",
    "restrict_vif_locking",
    "restrict_storage_xen_motion",
    "restrict_vgpu",
    "restrict_integrated_gpu_passthrough",
    "restrict_vss",
    "restrict_guest_agent_auto_update",
    "restrict_pci_device_for_auto_update",
    "restrict_xen_motion",
    "restrict_guest_ip_setting",
    "restrict_ad",
    "restrict_nested_virt",
    "restrict_live_patching",
    "restrict_set_vcpus_number_live",
    "restrict_pvs_proxy",
    "restrict_igmp_snooping",
    "restrict_rpu",
    "restrict_pool_size",
    "restrict_cbt",
    "restrict_usb_passthrough",
    "restrict_network_sriov",
    "restrict_corosync",
    "restrict_zstd_export",
    "restrict_pool_secret_rotation",
    "restrict_certificate_verification",
    "restrict_updates",
    "restrict_internal_repository_access",
    "restrict_vtpm",
];

/// Features this server does not have: the pool says they are restricted,
/// so clients (Xen Orchestra) do not offer them (VTPM.create answers
/// NOT_IMPLEMENTED).
const UNAVAILABLE: &[&str] = &["restrict_vtpm"];

fn restrictions(extra: &[(&str, &str)]) -> Value {
    let mut kv: Vec<(&str, &str)> =
        RESTRICTIONS.iter().map(|k| (*k, if UNAVAILABLE.contains(k) { "true" } else { "false" })).collect();
    kv.push(("enable_xha", "true"));
    kv.push(("platform_filter", "false"));
    kv.push(("regular_nag_dialog", "false"));
    kv.extend_from_slice(extra);
    map(&kv)
}

/// What a fresh data directory gets. Returns (pool, host).
pub fn seed(db: &Db, hostname: &str, address: &str, data_dir: &std::path::Path) -> Result<(String, String)> {
    let (out, commit) = db.write(|tx| seed_tx(tx, hostname, address, data_dir))?;
    db.durable_blocking(commit).map_err(|e| crate::internal(e.to_string()))?;
    Ok(out)
}

fn seed_tx(tx: &mut Txn, hostname: &str, address: &str, data_dir: &std::path::Path) -> Result<(String, String)> {
    let now = DateTime::now();
    let boot = format!("{}.", now.secs);
    let host = model::new_ref();
    let pool = model::new_ref();
    let host_metrics = model::new_ref();
    let local_sr = model::new_ref();
    let iso_sr = model::new_ref();
    let network = model::new_ref();
    let dom0 = model::new_ref();

    roles::ensure(tx);

    // Host.
    let host_uuid = model::new_uuid();
    let sv = map(&[
        ("product_brand", PRODUCT_BRAND),
        ("product_version", PRODUCT_VERSION),
        ("product_version_text", "8.3"),
        ("product_version_text_short", "8.3"),
        ("platform_name", "XCP"),
        ("platform_version", PLATFORM_VERSION),
        ("build_number", "release/xapi-rs/0.1.0"),
        ("hostname", hostname),
        ("date", "2026-11-27"),
        ("xapi", XAPI_VERSION),
        ("xapi_build", "24.12.0"),
        ("xen", "4.17.5"),
        ("linux", "6.1.0"),
        ("xencenter_min", "2.21"),
        ("xencenter_max", "2.21"),
        ("network_backend", "bridge"),
        ("db_schema", "5.780"),
    ]);
    let mut license = vec![
        ("sku_type", "free"),
        ("sku_marketing_name", "xapi-rs (simulated, unrestricted)"),
        ("expiry", "20381231T00:00:00Z"),
        ("version", ""),
        ("productcode", ""),
        ("serialnumber", ""),
    ];
    license.push(("restrict_zstd_export", "false"));
    obj(
        tx,
        "host_metrics",
        &host_metrics,
        vec![
            ("memory_total", Value::Int(HOST_MEMORY)),
            ("memory_free", Value::Int(HOST_MEMORY - DOM0_MEMORY)),
            ("live", Value::Bool(true)),
            ("last_updated", Value::DateTime(now)),
        ],
    );
    let mut cpus = Vec::new();
    for i in 0..HOST_CPUS {
        let r = model::new_ref();
        obj(tx, "host_cpu", &r, vec![
            ("host", Value::from(host.as_str())),
            ("number", Value::Int(i as i64)),
            ("vendor", Value::from("GenuineIntel")),
            ("speed", Value::Int(2600)),
            ("modelname", Value::from("Simulated CPU @ 2.60GHz")),
            ("family", Value::Int(6)),
            ("model", Value::Int(85)),
            ("stepping", Value::from("7")),
            ("flags", Value::from("fpu de tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2 ht syscall nx lm constant_tsc nopl pni vmx ssse3 cx16 sse4_1 sse4_2 x2apic popcnt hypervisor")),
            ("features", Value::from("1fbee3ff-bfebfbff-00000001-2c100800")),
            ("utilisation", Value::Float(0.0)),
        ]);
        cpus.push(r);
    }
    let cpu_count = HOST_CPUS.to_string();
    let cpu_info = map(&[
        ("cpu_count", &cpu_count),
        ("socket_count", "1"),
        ("threads_per_core", "1"),
        ("vendor", "GenuineIntel"),
        ("speed", "2600.000"),
        ("modelname", "Simulated CPU @ 2.60GHz"),
        ("family", "6"),
        ("model", "85"),
        ("stepping", "7"),
        (
            "flags",
            "fpu de tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2 ht syscall nx lm",
        ),
        ("features_pv", "1fc8b3ff-bfebfbff-00000001-2c100800"),
        ("features_hvm", "1fcbfbff-bfebfbff-00000001-2c100800"),
        ("features_pv_host", "1fc8b3ff-bfebfbff-00000001-2c100800"),
        ("features_hvm_host", "1fcbfbff-bfebfbff-00000001-2c100800"),
    ]);
    let iqn = format!("iqn.2026-11.org.xapi-rs:{}", &host_uuid[..8]);
    obj(
        tx,
        "host",
        &host,
        vec![
            ("uuid", Value::from(host_uuid.as_str())),
            ("name_label", Value::from(hostname)),
            ("name_description", Value::from("Default install")),
            ("hostname", Value::from(hostname)),
            ("address", Value::from(address)),
            ("API_version_major", Value::Int(model::schema::API_VERSION_MAJOR)),
            ("API_version_minor", Value::Int(model::schema::API_VERSION_MINOR)),
            ("API_version_vendor", Value::from("XenSource")),
            ("enabled", Value::Bool(true)),
            ("software_version", sv),
            ("other_config", map(&[("boot_time", &boot), ("agent_start_time", &boot), ("iscsi_iqn", &iqn)])),
            ("logging", Value::empty_map()),
            ("capabilities", strs(&["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"])),
            ("cpu_configuration", Value::empty_map()),
            ("sched_policy", Value::from("credit")),
            ("supported_bootloaders", strs(&["pygrub", "eliloader"])),
            ("license_params", restrictions(&license)),
            ("license_server", map(&[("address", "localhost"), ("port", "27000")])),
            ("edition", Value::from("free")),
            ("metrics", Value::from(host_metrics.as_str())),
            ("cpu_info", cpu_info.clone()),
            ("chipset_info", map(&[("iommu", "false"), ("hvm", "true")])),
            (
                "bios_strings",
                map(&[
                    ("bios-vendor", "xapi-rs"),
                    ("bios-version", "1.0"),
                    ("system-manufacturer", "xapi-rs"),
                    ("system-product-name", "Simulated host"),
                    ("system-version", "1.0"),
                    ("system-serial-number", &host_uuid[..8]),
                    ("baseboard-manufacturer", "xapi-rs"),
                    ("hp-rombios", ""),
                    ("oem-1", "Xen"),
                    ("oem-2", "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d"),
                ]),
            ),
            ("external_auth_type", Value::from("")),
            ("external_auth_service_name", Value::from("")),
            ("power_on_mode", Value::from("")),
            ("iscsi_iqn", Value::from(iqn.as_str())),
            ("multipathing", Value::Bool(false)),
            ("virtual_hardware_platform_versions", Value::Array(vec![Value::Int(0), Value::Int(1), Value::Int(2)])),
            ("control_domain", Value::from(dom0.as_str())),
            ("ssl_legacy", Value::Bool(false)),
            ("tls_verification_enabled", Value::Bool(true)),
            ("last_software_update", Value::DateTime(now)),
            ("https_only", Value::Bool(false)),
            ("suspend_image_sr", Value::from(local_sr.as_str())),
            ("crash_dump_sr", Value::from(local_sr.as_str())),
        ],
    );

    // The control domain.
    let dom0_metrics = model::new_ref();
    obj(
        tx,
        "VM_metrics",
        &dom0_metrics,
        vec![
            ("memory_actual", Value::Int(DOM0_MEMORY)),
            ("VCPUs_number", Value::Int(HOST_CPUS as i64)),
            ("state", strs(&["running"])),
            ("start_time", Value::DateTime(now)),
            ("install_time", Value::DateTime(now)),
            ("last_updated", Value::DateTime(now)),
            ("current_domain_type", Value::from("pv")),
        ],
    );
    let vcpus = Value::Int(HOST_CPUS as i64);
    obj(
        tx,
        "VM",
        &dom0,
        vec![
            ("name_label", Value::from(format!("Control domain on host: {hostname}"))),
            ("name_description", Value::from("The domain which manages physical devices and manages other domains")),
            ("power_state", Value::from("Running")),
            ("is_control_domain", Value::Bool(true)),
            ("resident_on", Value::from(host.as_str())),
            ("domid", Value::Int(0)),
            ("memory_overhead", Value::Int(0)),
            ("memory_target", Value::Int(DOM0_MEMORY)),
            ("memory_static_max", Value::Int(DOM0_MEMORY)),
            ("memory_dynamic_max", Value::Int(DOM0_MEMORY)),
            ("memory_dynamic_min", Value::Int(DOM0_MEMORY)),
            ("memory_static_min", Value::Int(DOM0_MEMORY)),
            ("VCPUs_max", vcpus.clone()),
            ("VCPUs_at_startup", vcpus),
            ("actions_after_shutdown", Value::from("destroy")),
            ("actions_after_reboot", Value::from("destroy")),
            ("actions_after_crash", Value::from("destroy")),
            ("metrics", Value::from(dom0_metrics.as_str())),
            ("domain_type", Value::from("pv")),
            ("user_version", Value::Int(1)),
            ("is_a_template", Value::Bool(false)),
            ("other_config", map(&[("storage_driver_domain", &dom0)])),
        ],
    );
    let dom0_console = model::new_ref();
    let cuuid = model::new_uuid();
    obj(
        tx,
        "console",
        &dom0_console,
        vec![
            ("uuid", Value::from(cuuid.as_str())),
            ("protocol", Value::from("rfb")),
            ("location", Value::from(format!("https://{address}/console?uuid={cuuid}"))),
            ("VM", Value::from(dom0.as_str())),
        ],
    );

    // Storage: storage managers (one per driver), the local SR and the ISO library.
    crate::storage::sm::sync(tx);
    let sr_dir = data_dir.join("sr");
    let local_uuid = model::new_uuid();
    obj(
        tx,
        "SR",
        &local_sr,
        vec![
            ("uuid", Value::from(local_uuid.as_str())),
            ("name_label", Value::from("Local storage")),
            ("name_description", Value::from("")),
            ("type", Value::from("ext")),
            ("content_type", Value::from("user")),
            ("shared", Value::Bool(false)),
            ("physical_size", Value::Int(LOCAL_SR_SIZE)),
            ("physical_utilisation", Value::Int(0)),
            ("virtual_allocation", Value::Int(0)),
            (
                "other_config",
                map(&[("i18n-key", "local-storage"), ("i18n-original-value-name_label", "Local storage")]),
            ),
            ("sm_config", map(&[("devserial", "")])),
        ],
    );
    let iso_uuid = model::new_uuid();
    obj(
        tx,
        "SR",
        &iso_sr,
        vec![
            ("uuid", Value::from(iso_uuid.as_str())),
            ("name_label", Value::from("XenServer Tools")),
            ("name_description", Value::from("XenServer Tools ISOs")),
            ("type", Value::from("iso")),
            ("content_type", Value::from("iso")),
            ("shared", Value::Bool(true)),
            (
                "other_config",
                map(&[
                    ("xenserver_tools_sr", "true"),
                    ("i18n-key", "xenserver-tools"),
                    ("i18n-original-value-name_label", "XenServer Tools"),
                    ("i18n-original-value-name_description", "XenServer Tools ISOs"),
                ]),
            ),
            ("sm_config", Value::empty_map()),
        ],
    );
    let local_path = sr_dir.join(&local_uuid).to_string_lossy().to_string();
    let iso_path = sr_dir.join(&iso_uuid).to_string_lossy().to_string();
    for (sr, dc) in [
        (&local_sr, map(&[("device", "/dev/sda3"), ("path", &local_path)])),
        (&iso_sr, map(&[("location", &iso_path), ("legacy_mode", "true")])),
    ] {
        let r = model::new_ref();
        obj(
            tx,
            "PBD",
            &r,
            vec![
                ("host", Value::from(host.as_str())),
                ("SR", Value::from(sr.as_str())),
                ("device_config", dc),
                ("currently_attached", Value::Bool(true)),
            ],
        );
    }

    // The management network.
    let pif = model::new_ref();
    let pif_metrics = model::new_ref();
    obj(
        tx,
        "network",
        &network,
        vec![
            ("name_label", Value::from("Pool-wide network associated with eth0")),
            ("name_description", Value::from("")),
            ("bridge", Value::from("xenbr0")),
            ("MTU", Value::Int(1500)),
            ("managed", Value::Bool(true)),
            ("other_config", map(&[("automatic", "true")])),
            ("purpose", Value::Array(vec![])),
        ],
    );
    obj(
        tx,
        "PIF_metrics",
        &pif_metrics,
        vec![
            ("carrier", Value::Bool(true)),
            ("vendor_id", Value::from("8086")),
            ("vendor_name", Value::from("Intel Corporation")),
            ("device_id", Value::from("10d3")),
            ("device_name", Value::from("82574L Gigabit Network Connection")),
            ("speed", Value::Int(1000)),
            ("duplex", Value::Bool(true)),
            ("pci_bus_path", Value::from("0000:00:03.0")),
            ("last_updated", Value::DateTime(now)),
        ],
    );
    obj(
        tx,
        "PIF",
        &pif,
        vec![
            ("device", Value::from("eth0")),
            ("network", Value::from(network.as_str())),
            ("host", Value::from(host.as_str())),
            ("MAC", Value::from("02:16:3e:00:00:01")),
            ("MTU", Value::Int(1500)),
            ("VLAN", Value::Int(-1)),
            ("metrics", Value::from(pif_metrics.as_str())),
            ("physical", Value::Bool(true)),
            ("currently_attached", Value::Bool(true)),
            ("ip_configuration_mode", Value::from("Static")),
            ("IP", Value::from(address)),
            ("netmask", Value::from("255.0.0.0")),
            ("gateway", Value::from("")),
            ("DNS", Value::from("")),
            ("management", Value::Bool(true)),
            ("primary_address_type", Value::from("IPv4")),
            ("managed", Value::Bool(true)),
            ("properties", map(&[("gro", "on")])),
            ("capabilities", strs(&["fcoe"])),
            ("igmp_snooping_status", Value::from("disabled")),
        ],
    );

    // The pool.
    obj(
        tx,
        "pool",
        &pool,
        vec![
            ("name_label", Value::from("")),
            ("name_description", Value::from("")),
            ("master", Value::from(host.as_str())),
            ("default_SR", Value::from(local_sr.as_str())),
            ("suspend_image_SR", Value::from(local_sr.as_str())),
            ("crash_dump_SR", Value::from(local_sr.as_str())),
            ("restrictions", restrictions(&[])),
            ("cpu_info", cpu_info),
            ("ha_allow_overcommit", Value::Bool(false)),
            ("ha_host_failures_to_tolerate", Value::Int(0)),
            ("ha_plan_exists_for", Value::Int(0)),
            ("gui_config", Value::empty_map()),
            ("migration_compression", Value::Bool(false)),
            ("coordinator_bias", Value::Bool(true)),
            ("other_config", map(&[("memory-ratio-hvm", "0.25"), ("memory-ratio-pv", "0.25")])),
        ],
    );

    crate::ops::templates::seed(tx, &local_uuid)?;
    let _ = (field, cpus);
    Ok((pool, host))
}

/// The pool and host of an already seeded store.
pub fn find(db: &Db) -> Option<(String, String)> {
    let st = db.read();
    let pool_c = class("pool");
    let (pr, prow) = st.table(pool_c).iter().next()?;
    let host = prow.get(field(pool_c, "master")).as_str()?.to_string();
    Some((pr.clone(), host))
}

/// Make sure roles exist (they are regenerated from the datamodel on start).
pub fn refresh(db: &Db) -> Result<()> {
    let (_, c) = db.write(|tx| {
        roles::ensure(tx);
        // Stores seeded before these were restricted say so too.
        for (class_name, map_field) in [("pool", "restrictions"), ("host", "license_params")] {
            let c = class(class_name);
            let i = field(c, map_field);
            for r in tx.refs(c) {
                let stale = tx
                    .get(c, &r)
                    .is_some_and(|row| UNAVAILABLE.iter().any(|k| row.get(i).map_str(k).is_some_and(|v| v != "true")));
                if stale {
                    tx.update(c, &r, |row| {
                        if let Value::Struct(m) = &mut row.fields[i] {
                            for (k, v) in m.iter_mut() {
                                if UNAVAILABLE.contains(&k.as_str()) {
                                    *v = Value::from("true");
                                }
                            }
                        }
                    });
                }
            }
        }
        Ok::<_, ApiError>(())
    })?;
    db.durable_blocking(c).map_err(|e| crate::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_a_fresh_store_once() {
        let db = store::Db::memory();
        assert!(super::find(&db).is_none());
        let (pool, host) = super::seed(&db, "h", "127.0.0.1", std::path::Path::new("/tmp/x")).unwrap();
        assert_eq!(super::find(&db), Some((pool, host)));
    }
}

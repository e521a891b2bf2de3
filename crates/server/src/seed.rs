//! First-start seeding: one pool whose master is this host, with the records
//! real clients expect to find (host software and licence details, metrics,
//! CPUs, the control domain, local and ISO storage, the management network,
//! roles and the default templates). Runs once per data directory.

use crate::rows::{map, obj, strs, PLATFORM_VERSION, PRODUCT_BRAND, PRODUCT_VERSION, XAPI_VERSION};
use crate::{class, field, roles, ApiError, Result};
use backend::HostFacts;
use model::types::fields::{
    host as H, host_cpu as C, host_metrics as HM, pif as PIF, pif_metrics as PM, pool as P, vm as V, vm_metrics as VM,
};
use model::{DateTime, Ref, Value};
use store::{Db, Txn};

pub const LOCAL_SR_SIZE: i64 = 1 << 40;

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
pub fn seed(
    db: &Db,
    hostname: &str,
    address: &str,
    data_dir: &std::path::Path,
    facts: &HostFacts,
) -> Result<(String, String)> {
    let (out, commit) = db.write(|tx| seed_tx(tx, hostname, address, data_dir, facts))?;
    db.durable_blocking(commit).map_err(|e| crate::internal(e.to_string()))?;
    Ok(out)
}

fn seed_tx(
    tx: &mut Txn,
    hostname: &str,
    address: &str,
    data_dir: &std::path::Path,
    facts: &HostFacts,
) -> Result<(String, String)> {
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
    obj(tx, "host_metrics", &host_metrics, vec![("live", Value::Bool(true)), ("last_updated", Value::DateTime(now))]);
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
            ("state", strs(&["running"])),
            ("start_time", Value::DateTime(now)),
            ("install_time", Value::DateTime(now)),
            ("last_updated", Value::DateTime(now)),
            ("current_domain_type", Value::from("pv")),
        ],
    );
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

    // The management network, on the backend's first NIC (the simulator's
    // eth0; on a real host the first one, as an installer would propose).
    let nic = facts.nics.first().cloned().unwrap_or_else(|| backend::HostNic {
        device: "eth0".into(),
        mac: "02:16:3e:00:00:01".into(),
        mtu: 1500,
        carrier: true,
        ..Default::default()
    });
    let pif = model::new_ref();
    let pif_metrics = model::new_ref();
    obj(
        tx,
        "network",
        &network,
        vec![
            ("name_label", Value::from(format!("Pool-wide network associated with {}", nic.device))),
            ("name_description", Value::from("")),
            ("bridge", Value::from("xenbr0")),
            ("MTU", Value::Int(1500)),
            ("managed", Value::Bool(true)),
            ("other_config", map(&[("automatic", "true")])),
            ("purpose", Value::Array(vec![])),
        ],
    );
    obj(tx, "PIF_metrics", &pif_metrics, vec![("last_updated", Value::DateTime(now))]);
    obj(
        tx,
        "PIF",
        &pif,
        vec![
            ("device", Value::from(nic.device.as_str())),
            ("network", Value::from(network.as_str())),
            ("host", Value::from(host.as_str())),
            ("MAC", Value::from(nic.mac.as_str())),
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
    apply_host_facts(tx, &pool, &host, facts);
    Ok((pool, host))
}

/// Make the host's CPU, memory and control-domain records say what the
/// backend reports of the machine: at the first start and at every start
/// after, so a data dir moved to another machine, or memory added, shows
/// the truth. Free memory moves by as much as the total and the control
/// domain's share changed, keeping what running guests hold.
pub fn apply_host_facts(tx: &mut Txn, pool: &str, host: &str, f: &HostFacts) {
    let Some(hrow) = tx.get(H::UUID.class, host).cloned() else { return };
    // One host_cpu per logical CPU, kept by number.
    let mut existing: Vec<(i64, String)> = hrow
        .read(H::HOST_CPUS)
        .into_iter()
        .filter_map(|c| tx.read(c.as_str(), C::NUMBER).map(|n| (n, c.into_string())))
        .collect();
    existing.sort();
    for (i, cpu) in f.cpus.iter().enumerate() {
        let r = match existing.iter().find(|(n, _)| *n == i as i64) {
            Some((_, r)) => r.clone(),
            None => {
                let r = model::new_ref();
                let mut row = store::blank_row(C::UUID.class);
                row.write(C::UUID, model::new_uuid());
                row.write(C::HOST, Ref::new(host));
                row.write(C::NUMBER, i as i64);
                row.write(C::FEATURES, CPU_FEATURES.to_string());
                tx.insert(&r, row);
                r
            }
        };
        tx.update(C::UUID.class, &r, |row| {
            row.write(C::VENDOR, cpu.vendor.clone());
            row.write(C::SPEED, cpu.speed_mhz.round() as i64);
            row.write(C::MODELNAME, cpu.model_name.clone());
            row.write(C::FAMILY, cpu.family);
            row.write(C::MODEL, cpu.model);
            row.write(C::STEPPING, cpu.stepping.clone());
            row.write(C::FLAGS, cpu.flags.clone());
        });
    }
    for (n, r) in &existing {
        if *n < 0 || *n as usize >= f.cpus.len() {
            tx.delete(C::UUID.class, r);
        }
    }
    let mut info = hrow.read(H::CPU_INFO);
    info.insert("cpu_count".into(), f.cpus.len().to_string());
    info.insert("socket_count".into(), f.sockets.to_string());
    info.insert("threads_per_core".into(), f.threads_per_core.to_string());
    if let Some(c) = f.cpus.first() {
        info.insert("vendor".into(), c.vendor.clone());
        info.insert("speed".into(), format!("{:.3}", c.speed_mhz));
        info.insert("modelname".into(), c.model_name.clone());
        info.insert("family".into(), c.family.to_string());
        info.insert("model".into(), c.model.to_string());
        info.insert("stepping".into(), c.stepping.clone());
        info.insert("flags".into(), c.flags.clone());
    }
    for k in ["features_pv", "features_hvm", "features_pv_host", "features_hvm_host"] {
        info.entry(k.into()).or_insert_with(|| CPU_FEATURES.to_string());
    }
    tx.put(host, H::CPU_INFO, info.clone());
    tx.put(pool, P::CPU_INFO, info);

    let ncpu = f.cpus.len().max(1) as i64;
    let dom0 = hrow.read(H::CONTROL_DOMAIN);
    tx.update(V::UUID.class, dom0.as_str(), |r| {
        for fld in
            [V::MEMORY_TARGET, V::MEMORY_STATIC_MAX, V::MEMORY_DYNAMIC_MAX, V::MEMORY_DYNAMIC_MIN, V::MEMORY_STATIC_MIN]
        {
            r.write(fld, f.memory_host);
        }
        r.write(V::VCPUS_MAX, ncpu);
        r.write(V::VCPUS_AT_STARTUP, ncpu);
    });
    if let Some(m) = tx.read(dom0.as_str(), V::METRICS) {
        tx.update(VM::UUID.class, m.as_str(), |r| {
            r.write(VM::MEMORY_ACTUAL, f.memory_host);
            r.write(VM::VCPUS_NUMBER, ncpu);
            // xapi's create_misc gives the control domain a zero per CPU;
            // guests' stay empty (not filled from RRDs since 6.1).
            r.write(VM::VCPUS_UTILISATION, (0..ncpu).map(|i| (i, 0.0)).collect());
        });
    }
    // Free memory from scratch at every start: the machine's, less the
    // host's own (control domain included), less what the guests resident
    // here hold; later starts and stops move it (lifecycle::precommit).
    let guests: i64 = tx
        .refs(V::UUID.class)
        .iter()
        .filter_map(|r| tx.get(V::UUID.class, r).and_then(crate::lifecycle::domain_memory))
        .filter(|(h, _)| h == host)
        .map(|(_, m)| m)
        .sum();
    let metrics = hrow.read(H::METRICS);
    tx.update(HM::UUID.class, metrics.as_str(), |r| {
        r.write(HM::MEMORY_TOTAL, f.memory_total);
        r.write(HM::MEMORY_FREE, (f.memory_total - f.memory_host - guests).max(0));
    });
    apply_nic_facts(tx, host, &f.nics);
}

/// PIF_metrics of the host's physical PIFs, from the NICs of the same device
/// name (carrier, speed, duplex, PCI identity).
pub fn apply_nic_facts(tx: &mut Txn, host: &str, nics: &[backend::HostNic]) {
    let now = DateTime::now();
    for r in tx.refs(PIF::UUID.class) {
        let Some(row) = tx.get(PIF::UUID.class, &r) else { continue };
        if row.read(PIF::HOST).as_str() != host || !row.read(PIF::PHYSICAL) {
            continue;
        }
        let device = row.read(PIF::DEVICE);
        let metrics = row.read(PIF::METRICS);
        let Some(nic) = nics.iter().find(|n| n.device == device) else { continue };
        // Unchanged figures are not written: a restart makes no event.
        let same = tx.get(PM::UUID.class, metrics.as_str()).is_some_and(|m| {
            m.read(PM::CARRIER) == nic.carrier
                && m.read(PM::SPEED) == nic.speed_mbps.unwrap_or(0)
                && m.read(PM::DUPLEX) == nic.full_duplex.unwrap_or(false)
                && m.read(PM::VENDOR_ID) == nic.vendor_id
                && m.read(PM::VENDOR_NAME) == nic.vendor_name
                && m.read(PM::DEVICE_ID) == nic.device_id
                && m.read(PM::DEVICE_NAME) == nic.device_name
                && m.read(PM::PCI_BUS_PATH) == nic.bus
        });
        if same {
            continue;
        }
        tx.update(PM::UUID.class, metrics.as_str(), |m| {
            m.write(PM::CARRIER, nic.carrier);
            m.write(PM::SPEED, nic.speed_mbps.unwrap_or(0));
            m.write(PM::DUPLEX, nic.full_duplex.unwrap_or(false));
            m.write(PM::VENDOR_ID, nic.vendor_id.clone());
            m.write(PM::VENDOR_NAME, nic.vendor_name.clone());
            m.write(PM::DEVICE_ID, nic.device_id.clone());
            m.write(PM::DEVICE_NAME, nic.device_name.clone());
            m.write(PM::PCI_BUS_PATH, nic.bus.clone());
            m.write(PM::LAST_UPDATED, now);
        });
    }
}

/// The feature masks xapi's host_cpu and cpu_info carry (CPUID words as
/// Xen reports them); there is no Xen here, so a fixed value.
const CPU_FEATURES: &str = "1fbee3ff-bfebfbff-00000001-2c100800";

/// Re-read the machine at start (see [`apply_host_facts`]).
pub fn refresh_host_facts(db: &Db, pool: &str, host: &str, facts: &HostFacts) -> Result<()> {
    let (_, c) = db.write(|tx| {
        apply_host_facts(tx, pool, host, facts);
        Ok::<_, ApiError>(())
    })?;
    db.durable_blocking(c).map_err(|e| crate::internal(e.to_string()))
}

/// The pool and host of an already seeded store.
pub fn find(db: &Db) -> Option<(String, String)> {
    let st = db.read();
    let pool_c = &model::schema::CLASS_POOL;
    let (pr, prow) = st.table(pool_c).iter().next()?;
    let host = prow.get(model::types::fields::pool::MASTER.index).as_str()?.to_string();
    Some((pr.clone(), host))
}

/// A host of the store by uuid.
pub fn find_host(db: &Db, uuid: &str) -> Option<String> {
    db.read().table(&model::schema::CLASS_HOST).by_uuid(uuid).map(str::to_string)
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
        let facts = backend::host::simulated();
        let (pool, host) = super::seed(&db, "h", "127.0.0.1", std::path::Path::new("/tmp/x"), &facts).unwrap();
        assert_eq!(super::find(&db), Some((pool, host)));
    }
}

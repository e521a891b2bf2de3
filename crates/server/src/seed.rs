//! First-start seeding: one pool whose master is this host, with the records
//! real clients expect to find (host software and licence details, metrics,
//! CPUs, the control domain, local and ISO storage, the management network,
//! roles and the default templates). Runs once per data directory.

use crate::rows::{map, PLATFORM_VERSION, PRODUCT_BRAND, PRODUCT_VERSION, XAPI_VERSION};
use crate::{roles, ApiError, Result};
use backend::HostFacts;
use model::types::fields::{
    console as CON, host as H, host_cpu as C, host_metrics as HM, network as N, pbd as PBD, pif as PIF,
    pif_metrics as PM, pool as P, sr as SR, vm as V, vm_metrics as VM,
};
use model::types::{
    ConsoleProtocol, DomainType, IpConfigurationMode, OnCrashBehaviour, OnNormalExit, PifIgmpStatus,
    PrimaryAddressType, VmPowerState,
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

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

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
    let mut row = crate::rows::new_row(HM::UUID);
    row.write(HM::LIVE, true);
    row.write(HM::LAST_UPDATED, now);
    tx.insert(&host_metrics, row);
    let iqn = format!("iqn.2026-11.org.xapi-rs:{}", &host_uuid[..8]);
    // Maps of several keys go in as written here, in this key order (a
    // typed map write would sort them).
    let mut row = store::blank_row(H::UUID.class);
    row.write(H::UUID, host_uuid.clone());
    row.write(H::NAME_LABEL, hostname.to_string());
    row.write(H::NAME_DESCRIPTION, "Default install".to_string());
    row.write(H::HOSTNAME, hostname.to_string());
    row.write(H::ADDRESS, address.to_string());
    row.write(H::API_VERSION_MAJOR, model::schema::API_VERSION_MAJOR);
    row.write(H::API_VERSION_MINOR, model::schema::API_VERSION_MINOR);
    row.write(H::API_VERSION_VENDOR, "XenSource".to_string());
    row.write(H::ENABLED, true);
    row.fields[H::SOFTWARE_VERSION.index] = sv;
    row.fields[H::OTHER_CONFIG.index] = map(&[("boot_time", &boot), ("agent_start_time", &boot), ("iscsi_iqn", &iqn)]);
    row.write(H::LOGGING, Default::default());
    row.write(H::CAPABILITIES, strings(&["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"]));
    row.write(H::CPU_CONFIGURATION, Default::default());
    row.write(H::SCHED_POLICY, "credit".to_string());
    row.write(H::SUPPORTED_BOOTLOADERS, strings(&["pygrub", "eliloader"]));
    row.fields[H::LICENSE_PARAMS.index] = restrictions(&license);
    row.fields[H::LICENSE_SERVER.index] = map(&[("address", "localhost"), ("port", "27000")]);
    row.write(H::EDITION, "free".to_string());
    row.write(H::METRICS, Ref::new(host_metrics.as_str()));
    row.fields[H::CHIPSET_INFO.index] = map(&[("iommu", "false"), ("hvm", "true")]);
    row.fields[H::BIOS_STRINGS.index] = map(&[
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
    ]);
    row.write(H::EXTERNAL_AUTH_TYPE, String::new());
    row.write(H::EXTERNAL_AUTH_SERVICE_NAME, String::new());
    row.write(H::POWER_ON_MODE, String::new());
    row.write(H::ISCSI_IQN, iqn.clone());
    row.write(H::MULTIPATHING, false);
    row.write(H::VIRTUAL_HARDWARE_PLATFORM_VERSIONS, vec![0, 1, 2]);
    row.write(H::CONTROL_DOMAIN, Ref::new(dom0.as_str()));
    row.write(H::SSL_LEGACY, false);
    row.write(H::TLS_VERIFICATION_ENABLED, true);
    row.write(H::LAST_SOFTWARE_UPDATE, now);
    row.write(H::HTTPS_ONLY, false);
    row.write(H::SUSPEND_IMAGE_SR, Ref::new(local_sr.as_str()));
    row.write(H::CRASH_DUMP_SR, Ref::new(local_sr.as_str()));
    tx.insert(&host, row);

    // The control domain.
    let dom0_metrics = model::new_ref();
    let mut row = crate::rows::new_row(VM::UUID);
    row.write(VM::STATE, strings(&["running"]));
    row.write(VM::START_TIME, now);
    row.write(VM::INSTALL_TIME, now);
    row.write(VM::LAST_UPDATED, now);
    row.write(VM::CURRENT_DOMAIN_TYPE, DomainType::Pv);
    tx.insert(&dom0_metrics, row);
    let mut row = crate::rows::new_row(V::UUID);
    row.write(V::NAME_LABEL, format!("Control domain on host: {hostname}"));
    row.write(V::NAME_DESCRIPTION, "The domain which manages physical devices and manages other domains".to_string());
    row.write(V::POWER_STATE, VmPowerState::Running);
    row.write(V::IS_CONTROL_DOMAIN, true);
    row.write(V::RESIDENT_ON, Ref::new(host.as_str()));
    row.write(V::DOMID, 0);
    row.write(V::MEMORY_OVERHEAD, 0);
    row.write(V::ACTIONS_AFTER_SHUTDOWN, OnNormalExit::Destroy);
    row.write(V::ACTIONS_AFTER_REBOOT, OnNormalExit::Destroy);
    row.write(V::ACTIONS_AFTER_CRASH, OnCrashBehaviour::Destroy);
    row.write(V::METRICS, Ref::new(dom0_metrics.as_str()));
    row.write(V::DOMAIN_TYPE, DomainType::Pv);
    row.write(V::USER_VERSION, 1);
    row.write(V::IS_A_TEMPLATE, false);
    row.write(V::OTHER_CONFIG, [("storage_driver_domain".to_string(), dom0.clone())].into());
    tx.insert(&dom0, row);
    let dom0_console = model::new_ref();
    let cuuid = model::new_uuid();
    let mut row = store::blank_row(CON::UUID.class);
    row.write(CON::UUID, cuuid.clone());
    row.write(CON::PROTOCOL, ConsoleProtocol::Rfb);
    row.write(CON::LOCATION, format!("https://{address}/console?uuid={cuuid}"));
    row.write(CON::VM, Ref::new(dom0.as_str()));
    tx.insert(&dom0_console, row);

    // Storage: storage managers (one per driver), the local SR and the ISO library.
    crate::storage::sm::sync(tx);
    let sr_dir = data_dir.join("sr");
    let local_uuid = model::new_uuid();
    let mut row = store::blank_row(SR::UUID.class);
    row.write(SR::UUID, local_uuid.clone());
    row.write(SR::NAME_LABEL, "Local storage".to_string());
    row.write(SR::NAME_DESCRIPTION, String::new());
    row.write(SR::TYPE, "ext".to_string());
    row.write(SR::CONTENT_TYPE, "user".to_string());
    row.write(SR::SHARED, false);
    row.write(SR::PHYSICAL_SIZE, LOCAL_SR_SIZE);
    row.write(SR::PHYSICAL_UTILISATION, 0);
    row.write(SR::VIRTUAL_ALLOCATION, 0);
    row.fields[SR::OTHER_CONFIG.index] =
        map(&[("i18n-key", "local-storage"), ("i18n-original-value-name_label", "Local storage")]);
    row.write(SR::SM_CONFIG, [("devserial".to_string(), String::new())].into());
    tx.insert(&local_sr, row);
    let iso_uuid = model::new_uuid();
    let mut row = store::blank_row(SR::UUID.class);
    row.write(SR::UUID, iso_uuid.clone());
    row.write(SR::NAME_LABEL, "XenServer Tools".to_string());
    row.write(SR::NAME_DESCRIPTION, "XenServer Tools ISOs".to_string());
    row.write(SR::TYPE, "iso".to_string());
    row.write(SR::CONTENT_TYPE, "iso".to_string());
    row.write(SR::SHARED, true);
    row.fields[SR::OTHER_CONFIG.index] = map(&[
        ("xenserver_tools_sr", "true"),
        ("i18n-key", "xenserver-tools"),
        ("i18n-original-value-name_label", "XenServer Tools"),
        ("i18n-original-value-name_description", "XenServer Tools ISOs"),
    ]);
    row.write(SR::SM_CONFIG, Default::default());
    tx.insert(&iso_sr, row);
    let local_path = sr_dir.join(&local_uuid).to_string_lossy().to_string();
    let iso_path = sr_dir.join(&iso_uuid).to_string_lossy().to_string();
    for (sr, dc) in [
        (&local_sr, map(&[("device", "/dev/sda3"), ("path", &local_path)])),
        (&iso_sr, map(&[("location", &iso_path), ("legacy_mode", "true")])),
    ] {
        let mut row = crate::rows::new_row(PBD::UUID);
        row.write(PBD::HOST, Ref::new(host.as_str()));
        row.write(PBD::SR, Ref::new(sr.as_str()));
        row.fields[PBD::DEVICE_CONFIG.index] = dc;
        row.write(PBD::CURRENTLY_ATTACHED, true);
        tx.insert(&model::new_ref(), row);
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
    let mut row = crate::rows::new_row(N::UUID);
    row.write(N::NAME_LABEL, format!("Pool-wide network associated with {}", nic.device));
    row.write(N::NAME_DESCRIPTION, String::new());
    row.write(N::BRIDGE, "xenbr0".to_string());
    row.write(N::MTU, 1500);
    row.write(N::MANAGED, true);
    row.write(N::OTHER_CONFIG, [("automatic".to_string(), "true".to_string())].into());
    row.write(N::PURPOSE, vec![]);
    tx.insert(&network, row);
    let mut row = crate::rows::new_row(PM::UUID);
    row.write(PM::LAST_UPDATED, now);
    tx.insert(&pif_metrics, row);
    let mut row = crate::rows::new_row(PIF::UUID);
    row.write(PIF::DEVICE, nic.device.clone());
    row.write(PIF::NETWORK, Ref::new(network.as_str()));
    row.write(PIF::HOST, Ref::new(host.as_str()));
    row.write(PIF::MAC, nic.mac.clone());
    row.write(PIF::MTU, 1500);
    row.write(PIF::VLAN, -1);
    row.write(PIF::METRICS, Ref::new(pif_metrics.as_str()));
    row.write(PIF::PHYSICAL, true);
    row.write(PIF::CURRENTLY_ATTACHED, true);
    row.write(PIF::IP_CONFIGURATION_MODE, IpConfigurationMode::Static);
    row.write(PIF::IP, address.to_string());
    row.write(PIF::NETMASK, "255.0.0.0".to_string());
    row.write(PIF::GATEWAY, String::new());
    row.write(PIF::DNS, String::new());
    row.write(PIF::MANAGEMENT, true);
    row.write(PIF::PRIMARY_ADDRESS_TYPE, PrimaryAddressType::Ipv4);
    row.write(PIF::MANAGED, true);
    row.write(PIF::PROPERTIES, [("gro".to_string(), "on".to_string())].into());
    row.write(PIF::CAPABILITIES, strings(&["fcoe"]));
    row.write(PIF::IGMP_SNOOPING_STATUS, PifIgmpStatus::Disabled);
    tx.insert(&pif, row);

    // The pool.
    let mut row = crate::rows::new_row(P::UUID);
    row.write(P::NAME_LABEL, String::new());
    row.write(P::NAME_DESCRIPTION, String::new());
    row.write(P::MASTER, Ref::new(host.as_str()));
    row.write(P::DEFAULT_SR, Ref::new(local_sr.as_str()));
    row.write(P::SUSPEND_IMAGE_SR, Ref::new(local_sr.as_str()));
    row.write(P::CRASH_DUMP_SR, Ref::new(local_sr.as_str()));
    row.fields[P::RESTRICTIONS.index] = restrictions(&[]);
    row.write(P::HA_ALLOW_OVERCOMMIT, false);
    row.write(P::HA_HOST_FAILURES_TO_TOLERATE, 0);
    row.write(P::HA_PLAN_EXISTS_FOR, 0);
    row.write(P::GUI_CONFIG, Default::default());
    row.write(P::MIGRATION_COMPRESSION, false);
    row.write(P::COORDINATOR_BIAS, true);
    row.fields[P::OTHER_CONFIG.index] = map(&[("memory-ratio-hvm", "0.25"), ("memory-ratio-pv", "0.25")]);
    tx.insert(&pool, row);

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
    let host = prow.read(model::types::fields::pool::MASTER).into_string();
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
        for (c, i) in
            [(P::RESTRICTIONS.class, P::RESTRICTIONS.index), (H::LICENSE_PARAMS.class, H::LICENSE_PARAMS.index)]
        {
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

//! The xenops service: the one place that maps VM rows to backend domains
//! and back, as xapi's xapi_xenops does between xapi and xenopsd. It builds
//! the domain spec from a VM and its devices, turns backend failures into
//! XenAPI errors, re-attaches to domains that outlived a restart, follows
//! what domains do on their own (agent reports, halts, pauses, device
//! removal, I/O errors, a dead hypervisor process), and re-reads every
//! domain's state when it may have missed an event.

use crate::rows::members;
use crate::{handle_invalid, storage, ApiError, Ctx, Result, Server};
use backend::{
    BackendError, BootDevice, Device, Disk, DiskFormat, DomainEvent, DomainSpec, DomainState, Firmware, HaltReason,
    Memory, Platform, Request, Vcpus, Vga,
};
use model::schema::{CLASS_NETWORK, CLASS_VBD, CLASS_VDI, CLASS_VIF, CLASS_VM, CLASS_VM_GUEST_METRICS};
use model::types::fields;
use model::types::fields::{
    console as CO, host as H, network as N, vbd as B, vif as V, vm as F, vm_guest_metrics as GM, vm_metrics as M,
};
use model::types::{
    ConsoleProtocol, DomainType, OnCrashBehaviour, OnNormalExit, TristateType, VbdMode, VbdType, VmPowerState,
};
use model::{DateTime, Ref, Row, Value, XenType};
use std::collections::BTreeMap;
use store::Txn;

fn vm_c() -> &'static model::ClassDef {
    &CLASS_VM
}

// ---------------------------------------------------------------- errors

/// A backend failure as a XenAPI error. `vm` names the VM where xapi's error
/// carries it (it adds the VM when it re-raises xenopsd's acknowledgement
/// failures).
pub fn api_error(ctx: &Ctx, vm: &str, e: BackendError) -> ApiError {
    let wire = |code: &str, params: Vec<String>| {
        let mut w = vec![code.to_string()];
        w.extend(params);
        ApiError::from_wire(&w)
    };
    // A task whose cancel was asked for ends cancelled, however its backend
    // call failed: a hard shutdown cancels a clean one and takes its domain
    // away, and under load the clean one may see the domain gone before it
    // sees the cancel.
    if let Some(t) = ctx.task.as_ref().filter(|t| ctx.server.tasks.is_cancelling(t)) {
        tracing::info!(task = %t, "backend call failed after its task was cancelled: {e}");
        return ApiError::TaskCancelled { task: t.clone() };
    }
    match e {
        BackendError::Cancelled => ApiError::TaskCancelled { task: ctx.task.clone().unwrap_or_default() },
        BackendError::NotAcknowledged(Request::Shutdown) => {
            ApiError::VmFailedShutdownAcknowledgment { vm: vm.to_string() }
        }
        BackendError::NotAcknowledged(Request::Suspend) => {
            ApiError::VmFailedSuspendAcknowledgment { vm: vm.to_string() }
        }
        BackendError::DeviceAttached(d) => wire("DEVICE_ALREADY_ATTACHED", vec![d]),
        BackendError::NoMemory { needed, free } => {
            wire("HOST_NOT_ENOUGH_FREE_MEMORY", vec![needed.to_string(), free.to_string()])
        }
        BackendError::Unsupported(what) => ApiError::NotImplemented { function: what },
        // A scripted failure names its own code; the acknowledgement ones
        // still get the VM, as the real ones do.
        BackendError::Scripted { code, params } => match code.as_str() {
            "VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT" => ApiError::VmFailedShutdownAcknowledgment { vm: vm.to_string() },
            "VM_FAILED_SUSPEND_ACKNOWLEDGMENT" => ApiError::VmFailedSuspendAcknowledgment { vm: vm.to_string() },
            _ => wire(&code, params),
        },
        e @ (BackendError::NoDomain(_)
        | BackendError::MissingFile(_)
        | BackendError::PathNotAllowed { .. }
        | BackendError::Hypervisor(_)
        | BackendError::Network(_)
        | BackendError::Internal(_)) => ApiError::InternalError { message: e.to_string() },
        // xapi refuses to take the management interface away the same way.
        BackendError::WouldCutHost { device } => {
            ApiError::InternalError { message: format!("{device} carries the host's management connectivity") }
        }
    }
}

/// [`api_error`] for calls that do not concern one VM's acknowledgement.
pub fn be(ctx: &Ctx, e: BackendError) -> ApiError {
    api_error(ctx, "", e)
}

/// [`api_error`] for an operation on `vm`.
pub fn be_vm(ctx: &Ctx, vm: &str, e: BackendError) -> ApiError {
    api_error(ctx, vm, e)
}

// ------------------------------------------------------------ domain spec

/// HVM_boot_params' `order` ("cdn": CD, disk, network), as firmware reads it.
fn boot_order(order: &str) -> Vec<BootDevice> {
    let mut out = Vec::new();
    for c in order.chars() {
        let d = match c.to_ascii_lowercase() {
            'c' => BootDevice::Disk,
            'd' => BootDevice::Cdrom,
            'n' => BootDevice::Network,
            _ => continue,
        };
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The image format of a VDI file, by the name the SR driver gave it.
pub fn disk_format(path: Option<&std::path::Path>) -> DiskFormat {
    match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("qcow2") => DiskFormat::Qcow2,
        _ => DiskFormat::Raw,
    }
}

/// `HVM_boot_params:firmware`, checked as xapi's `firmware_of_vm` does.
fn firmware_of(boot_params: &BTreeMap<String, String>) -> Result<Firmware> {
    match boot_params.get("firmware").map(String::as_str) {
        None | Some("bios") => Ok(Firmware::Bios),
        Some("uefi") => Ok(Firmware::Uefi),
        Some(bad) => {
            Err(ApiError::InvalidValue { field: "HVM-boot-params['firmware']".into(), value: bad.to_string() })
        }
    }
}

/// The platform flags the backend acts on, read as xapi's `Vm_platform`
/// does: booleans are "true"/"1" or "false"/"0" (anything else is the
/// default), `vga` is `std` or `cirrus`, and `cores-per-socket` must be an
/// integer that divides VCPUs_max (INVALID_VALUE otherwise, as xapi's
/// sanity check; xapi checks it for HVM guests only, here every domain has
/// a virtual topology).
fn platform_of(platform: &BTreeMap<String, String>, vcpus_max: i64) -> Result<Platform> {
    let flag = |key: &str, default: bool| match platform.get(key).map(|v| v.to_ascii_lowercase()).as_deref() {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        _ => default,
    };
    let cores_per_socket = match platform.get("cores-per-socket") {
        None => None,
        Some(v) => {
            let bad = |value: String| ApiError::InvalidValue { field: "platform:cores-per-socket".into(), value };
            let cores = v.trim().parse::<i64>().ok().filter(|c| *c > 0);
            let cores = cores.ok_or_else(|| bad(format!("value = {v} is not a valid int")))?;
            if vcpus_max % cores != 0 {
                return Err(bad("VCPUs_max must be a multiple of this field".into()));
            }
            Some(cores)
        }
    };
    Ok(Platform {
        acpi: flag("acpi", true),
        nx: flag("nx", true),
        cores_per_socket,
        vga: match platform.get("vga").map(String::as_str) {
            Some("cirrus") => Vga::Cirrus,
            _ => Vga::Std,
        },
    })
}

/// What the backend needs to build the VM's domain. A real guest (QEMU)
/// writes its read-write disks: a disk with a changed-block log opens a
/// batch ([`storage::cbt::begin_guest`]: the log reads as every block
/// changed until a snapshot hands over what the guest's dirty bitmap
/// recorded, or the guest stops writing and the backend hands its writes
/// over ([`spawn_events`]); a batch left open by an earlier domain counts
/// as every block changed) and asks the backend to track the guest's
/// writes. The simulator's guests write no disk.
pub fn domain_spec(s: &Server, vm: &str) -> Result<DomainSpec> {
    spec_with_batches(s, vm, storage::cbt::begin_guest)
}

/// The spec of a domain that takes over from one that still runs (a
/// reboot's next domain): its disks' batches open beside the running
/// domain's ([`storage::cbt::join_guest`]), which hands its writes over
/// when it ends.
pub fn successor_spec(s: &Server, vm: &str) -> Result<DomainSpec> {
    spec_with_batches(s, vm, storage::cbt::join_guest)
}

/// The spec of a migration's destination domain: as [`carried_on_spec`],
/// its disks' batches open beside the source's.
pub fn incoming_spec(s: &Server, vm: &str) -> Result<DomainSpec> {
    carried_on(s, vm, successor_spec(s, vm)?)
}

/// `build_spec`, each tracked disk's batch from `open`.
fn spec_with_batches(
    s: &Server,
    vm: &str,
    open: fn(&std::path::Path) -> std::io::Result<Option<String>>,
) -> Result<DomainSpec> {
    let mut spec = build_spec(s, vm)?;
    if s.backend.guests_write_disks() {
        for d in spec.disks.iter_mut().filter(|d| !d.read_only && !d.cdrom) {
            if let Some(p) = &d.path {
                d.change_batch = open(p).map_err(|e| storage::driver::io_error("changed block tracking", e))?;
            }
        }
    }
    Ok(spec)
}

/// Every disk of the VM whose image should be a file is one (VDI_MISSING
/// otherwise, as xapi answers for a VDI its SR has lost), checked before a
/// domain is made, so nothing is left half-started. (The simulator's
/// guests read no disk.)
pub fn assert_disks_present(s: &Server, vm: &str) -> Result<()> {
    if !s.backend.guests_write_disks() {
        return Ok(());
    }
    let st = s.db.read();
    let row = st.get(vm_c(), vm).ok_or_else(|| handle_invalid(vm_c(), vm))?;
    for (_, vdi, path) in vm_disks(s, &st, row) {
        if let Some(p) = path.filter(|p| !p.exists()) {
            tracing::warn!(vm, vdi = %vdi, path = %p.display(), "a disk's image is missing");
            let sr = st.get(&CLASS_VDI, vdi.as_str()).map(|v| v.read(fields::vdi::SR).into_string());
            return Err(ApiError::VdiMissing { sr: sr.unwrap_or_default(), vdi: vdi.into_string() });
        }
    }
    Ok(())
}

/// The domain on this host whose running (or paused) guest has `vdi`
/// attached read-write: its VM's uuid and the disk's device. Such a disk
/// changes under any reader of its file.
pub fn disk_writer(s: &Server, vdi: &str) -> Option<(String, String)> {
    if !s.backend.guests_write_disks() {
        return None;
    }
    let st = s.db.read();
    let (uuid, device) = attached(&st, vdi).find_map(|(br, vm)| {
        let live = matches!(vm.read(F::POWER_STATE), VmPowerState::Running | VmPowerState::Paused);
        (br.read(B::MODE) != VbdMode::Ro && live && vm.read(F::RESIDENT_ON).as_str() == s.host)
            .then(|| (vm.read(F::UUID), br.read(B::USERDEVICE)))
    })?;
    s.backend.is_running(&uuid).then_some((uuid, device))
}

/// The currently attached VBDs of `vdi`, each with its VM.
pub fn attached<'a>(st: &'a store::State, vdi: &str) -> impl Iterator<Item = (&'a Row, &'a Row)> + 'a {
    let vbds = st.get(&CLASS_VDI, vdi).map(|r| r.read(fields::vdi::VBDS)).unwrap_or_default();
    vbds.into_iter().filter_map(move |b| {
        let br: &Row = st.get(&CLASS_VBD, b.as_str())?;
        let vm: &Row = st.get(vm_c(), br.read(B::VM).as_str())?;
        br.read(B::CURRENTLY_ATTACHED).then_some((br, vm))
    })
}

/// Copy the disk `device` of domain `uuid` ([`disk_writer`]) into the image
/// `target` while its guest runs: the hypervisor copies each block before
/// the guest overwrites it, so the copy is the disk at one instant, as
/// xapi's snapshot of a disk in use is (reading the file meanwhile would
/// mix states from the whole time the copy takes). With `track` (the disk
/// keeps a changed-block log), the blocks the guest wrote since the last
/// such copy or since it started, None if unknown.
pub async fn copy_in_use(
    ctx: &Ctx,
    (uuid, device): &(String, String),
    target: &std::path::Path,
    track: bool,
) -> Result<Option<Vec<(u64, u64)>>> {
    let s = &ctx.server;
    let cancel = ctx.task.as_ref().map(|t| s.tasks.cancel_signal(t));
    let format = disk_format(Some(target));
    tracing::info!(vm_uuid = %uuid, device = %device, "copying a disk in use through its domain");
    let dirty = s.backend.copy_disk(uuid, device, target, format, track, cancel).await.map_err(|e| be(ctx, e))?;
    // What QEMU wrote is in the page cache: on disk before the copy counts.
    let t = target.to_path_buf();
    storage::blocking(move || {
        std::fs::File::open(&t)
            .and_then(|f| f.sync_all())
            .map_err(|e| storage::driver::io_error("copying a disk in use", e))
    })
    .await?;
    Ok(dirty)
}

/// Run `f` with a running VM's guest stopped (its vCPUs halted, what QEMU
/// has in flight completed), so that what `f` copies, its disks and then its
/// memory, is of one instant: VM.checkpoint, whose revert resumes that
/// memory over those disks (disks older than the memory would lose writes
/// the guest believes made). A VM not Running, or a simulated one (its
/// guest writes no disk), is left as it is.
pub async fn with_guest_stopped<T>(ctx: &Ctx, vm: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let s = &ctx.server;
    let running = {
        let st = s.db.read();
        st.get(vm_c(), vm).filter(|r| r.read(F::POWER_STATE) == VmPowerState::Running).map(|r| r.read(F::UUID))
    };
    let Some(uuid) = running.filter(|u| s.backend.guests_write_disks() && s.backend.is_running(u)) else {
        return f.await;
    };
    s.backend.pause(&uuid).await.map_err(|e| be_vm(ctx, vm, e))?;
    let out = f.await;
    match s.backend.unpause(&uuid).await {
        Ok(()) => out,
        Err(e) if out.is_ok() => Err(be_vm(ctx, vm, e)),
        Err(e) => {
            tracing::error!(vm, "the guest stays paused after a failed checkpoint: {e}");
            out
        }
    }
}

/// A VM's VBDs with their VDI and the VDI's file (None for an empty drive
/// or a VDI that is gone).
fn vm_disks<'a>(
    s: &'a Server,
    st: &'a store::State,
    row: &Row,
) -> impl Iterator<Item = (&'a Row, Ref<model::types::Vdi>, Option<std::path::PathBuf>)> + 'a {
    row.read(F::VBDS).into_iter().filter_map(move |b| {
        let br: &Row = st.get(&CLASS_VBD, b.as_str())?;
        let vdi = br.read(B::VDI);
        let path = if br.read(B::EMPTY) || st.get(&CLASS_VDI, vdi.as_str()).is_none() {
            None
        } else {
            storage::vdi_path(s, st, vdi.as_str())
        };
        Some((br, vdi, path))
    })
}

/// The spec of a domain that carries on rather than boots (resume, adopt,
/// migration): the vCPUs it has now (VM_metrics.VCPUs_number, which
/// `set_VCPUs_number_live` moves), not the ones it boots with.
pub fn carried_on_spec(s: &Server, vm: &str) -> Result<DomainSpec> {
    carried_on(s, vm, domain_spec(s, vm)?)
}

/// The spec of a domain this server re-attaches to: its disks go on with
/// the batches they have open ([`storage::cbt::resume_guest`]; their QEMU
/// may still record their writes).
pub fn adopted_spec(s: &Server, vm: &str) -> Result<DomainSpec> {
    carried_on(s, vm, spec_with_batches(s, vm, storage::cbt::resume_guest)?)
}

fn carried_on(s: &Server, vm: &str, mut spec: DomainSpec) -> Result<DomainSpec> {
    let st = s.db.read();
    let live = st
        .get(vm_c(), vm)
        .and_then(|r| st.get(M::UUID.class, r.read(F::METRICS).as_str()).map(|m| m.read(M::VCPUS_NUMBER)));
    if let Some(n) = live.filter(|n| (1..=spec.vcpus.max).contains(n)) {
        spec.vcpus.at_startup = n;
    }
    Ok(spec)
}

fn build_spec(s: &Server, vm: &str) -> Result<DomainSpec> {
    let c = vm_c();
    let st = s.db.read();
    let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
    let (vif, net) = (&CLASS_VIF, &CLASS_NETWORK);
    let mut disks: Vec<Disk> = vm_disks(s, &st, row)
        .map(|(br, _, path)| Disk {
            device: br.read(B::USERDEVICE),
            format: disk_format(path.as_deref()),
            path,
            read_only: br.read(B::MODE) == VbdMode::Ro,
            cdrom: br.read(B::TYPE) == VbdType::Cd,
            change_batch: None,
        })
        .collect();
    let mut nics = Vec::new();
    for v in row.read(F::VIFS) {
        let Some(vr) = st.get(vif, v.as_str()) else { continue };
        let network = st.get(net, vr.read(V::NETWORK).as_str());
        nics.push(nic_of(vr, network.map(|n| &**n)));
    }
    // Devices in number order ("0" < "1" < "10"), not the set's order: the
    // guest names its disks and NICs in the order it finds them (vda, vdb;
    // eth0, eth1), so that order must follow userdevice / device.
    let by_number = |d: &str| (d.parse::<u32>().unwrap_or(u32::MAX), d.to_string());
    disks.sort_by_key(|d| by_number(&d.device));
    nics.sort_by_key(|n| by_number(&n.device));
    let target = row.read(F::MEMORY_DYNAMIC_MAX).max(row.read(F::MEMORY_TARGET));
    let boot_params = row.read(F::HVM_BOOT_PARAMS);
    let at_startup = row.read(F::VCPUS_AT_STARTUP).max(1);
    let vcpus_max = row.read(F::VCPUS_MAX).max(at_startup);
    let spec = DomainSpec {
        uuid: row.read(F::UUID),
        name: row.read(F::NAME_LABEL),
        vcpus: Vcpus { max: vcpus_max, at_startup },
        memory: Memory {
            static_min: row.read(F::MEMORY_STATIC_MIN),
            static_max: row.read(F::MEMORY_STATIC_MAX).max(target),
            dynamic_min: row.read(F::MEMORY_DYNAMIC_MIN),
            dynamic_max: row.read(F::MEMORY_DYNAMIC_MAX),
            target,
        },
        hvm: !row.read(F::HVM_BOOT_POLICY).is_empty(),
        firmware: firmware_of(&boot_params)?,
        boot_order: boot_order(boot_params.get("order").map(String::as_str).unwrap_or("")),
        disks,
        nics,
        platform: platform_of(&row.read(F::PLATFORM), vcpus_max)?,
        // What xapi writes under the domain's xenstore path for the guest.
        guest_data: row.read(F::XENSTORE_DATA).into_iter().filter(|(k, _)| k.starts_with("vm-data")).collect(),
        other_config: row.read(F::OTHER_CONFIG),
        kernel: row.read(F::PV_KERNEL),
        ramdisk: row.read(F::PV_RAMDISK),
        args: row.read(F::PV_ARGS),
    };
    drop(st);
    // Hand the hypervisor no file that leads out of its SR.
    for d in &spec.disks {
        if let Some(p) = &d.path {
            storage::attachable(p)?;
        }
    }
    Ok(spec)
}

// -------------------------------------------------------- after a restart

/// On start: VMs the store says are running or paused get their domains
/// back (the backend re-attaches to them); a VM whose domain is gone is
/// Halted, with a warning, never left Running.
pub fn adopt_all(s: &Server) {
    let c = vm_c();
    let live: Vec<(String, VmPowerState)> = {
        let st = s.db.read();
        st.table(c)
            .iter()
            .filter(|(_, r)| matches!(r.read(F::POWER_STATE), VmPowerState::Running | VmPowerState::Paused))
            .filter(|(_, r)| !r.read(F::IS_CONTROL_DOMAIN))
            // In a pool, each host adopts its own guests.
            .filter(|(_, r)| r.read(F::RESIDENT_ON).as_str() == s.host)
            .map(|(v, r)| (v.clone(), r.read(F::POWER_STATE)))
            .collect()
    };
    let known = s.db.read().table(c).iter().map(|(_, r)| r.read(F::UUID)).collect();
    s.backend.prune(&known);
    if live.is_empty() {
        return;
    }
    let s = Clone::clone(s);
    tokio::spawn(async move {
        for (vm, ps) in live {
            let spec = match adopted_spec(&s, &vm) {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::warn!(vm = %vm, "cannot describe the domain to adopt: {e}");
                    continue;
                }
            };
            let adopted = match s.backend.adopt(&spec).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(vm = %vm, "cannot re-attach to the domain: {e}; marking the VM Halted");
                    None
                }
            };
            let res = s.db.write(|tx| {
                match &adopted {
                    Some(d) => mark_running(tx, &s, &vm, d.domid, d.state == DomainState::Paused, false),
                    None => mark_stopped(tx, &vm, false),
                }
                Ok::<_, ApiError>(())
            });
            match (&adopted, res.map(|_| ())) {
                (_, Err(e)) => tracing::error!(vm = %vm, "cannot record the adopted domain: {e}"),
                (None, Ok(())) => tracing::warn!(vm = %vm, "was {} but its domain is gone: now Halted", ps.as_str()),
                (Some(d), Ok(())) if (d.state == DomainState::Paused) != (ps == VmPowerState::Paused) => {
                    tracing::warn!(vm = %vm, "was {} but its domain is {:?}", ps.as_str(), d.state)
                }
                _ => {}
            }
        }
    });
}

/// After missed events: make every VM's power state agree with the domains
/// the backend has now.
async fn resync(s: &Server) {
    let domains = s.backend.domains().await;
    let c = vm_c();
    let res = s.db.write(|tx| {
        let vms: Vec<String> = tx.refs(c);
        for vm in vms {
            let Some(row) = tx.get(c, &vm).cloned() else { continue };
            let ps = row.read(F::POWER_STATE);
            if row.read(F::IS_CONTROL_DOMAIN) || !matches!(ps, VmPowerState::Running | VmPowerState::Paused) {
                continue;
            }
            let uuid = row.read(F::UUID);
            match domains.iter().find(|d| d.uuid == uuid) {
                None => {
                    tracing::warn!(vm = %vm, "domain gone (found on resync): now Halted");
                    mark_stopped(tx, &vm, false);
                }
                Some(d) => {
                    let want =
                        if d.state == DomainState::Paused { VmPowerState::Paused } else { VmPowerState::Running };
                    if want != ps || row.read(F::DOMID) != d.domid {
                        mark_running(tx, s, &vm, d.domid, d.state == DomainState::Paused, false);
                    }
                }
            }
        }
        Ok::<_, ApiError>(())
    });
    if let Err(e) = res {
        tracing::error!("resync with the backend failed: {e}");
    }
}

// ------------------------------------------------------------ domain events

/// Follow what domains do on their own. A receiver that fell behind has
/// lost events: it re-reads every domain instead.
pub fn spawn_events(s: Server) {
    // A guest that stops writing a tracked disk: its writes close the
    // disk's batch (a batch a later domain opened stays open).
    s.backend.on_disk_writes(std::sync::Arc::new(|path: &std::path::Path, batch: &str, written: &[(u64, u64)]| {
        storage::cbt::end_guest(path, batch, written)
    }));
    let mut rx = s.backend.events();
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("missed {n} domain events: resynchronising");
                    resync(&s).await;
                    continue;
                }
                Err(_) => return,
            };
            match ev {
                DomainEvent::GuestInfo { uuid, domid, info } => guest_info(&s, &uuid, domid, info),
                DomainEvent::Halted { uuid, domid, reason } => halted(&s, &uuid, domid, reason).await,
                DomainEvent::Paused { uuid, domid } => paused(&s, &uuid, domid, true),
                DomainEvent::Resumed { uuid, domid } => paused(&s, &uuid, domid, false),
                DomainEvent::DeviceRemoved { uuid, domid, device } => device_removed(&s, &uuid, domid, device),
                DomainEvent::IoError { uuid, domid, device, message } => {
                    tracing::warn!(vm_uuid = %uuid, domid, device = %device, "disk I/O error: {message}");
                }
            }
        }
    });
}

/// The VM whose domain this is, if the store still says it runs it.
fn find_running(s: &Server, uuid: &str, domid: i64) -> Option<String> {
    let c = vm_c();
    let st = s.db.read();
    let r = st.table(c).by_uuid(uuid)?.to_string();
    let row = st.get(c, &r)?;
    (row.read(F::DOMID) == domid).then_some(r)
}

fn log_write<T>(what: &str, vm: &str, res: Result<T>) {
    if let Err(e) = res {
        tracing::error!(vm = %vm, "cannot record {what}: {e}");
    }
}

fn guest_info(s: &Server, uuid: &str, domid: i64, info: backend::GuestInfo) {
    let Some(vm) = find_running(s, uuid, domid) else { return };
    let c = vm_c();
    let gc = &CLASS_VM_GUEST_METRICS;
    let fill = |r: &mut Row| {
        r.write(GM::OS_VERSION, info.os_version.clone());
        r.write(GM::PV_DRIVERS_VERSION, info.pv_drivers_version.clone());
        r.write(GM::PV_DRIVERS_UP_TO_DATE, true);
        r.write(GM::PV_DRIVERS_DETECTED, true);
        r.write(GM::NETWORKS, info.networks.clone());
        r.write(GM::MEMORY, info.memory.clone());
        r.write(GM::DISKS, info.disks.clone());
        r.write(GM::OTHER, info.other.clone());
        r.write(GM::LAST_UPDATED, DateTime::now());
        r.write(GM::LIVE, true);
        r.write(GM::CAN_USE_HOTPLUG_VBD, TristateType::Yes);
        r.write(GM::CAN_USE_HOTPLUG_VIF, TristateType::Yes);
    };
    let res = s.db.write(|tx| {
        let existing = tx.get(c, &vm).map(|r| r.read(F::GUEST_METRICS)).unwrap_or_default();
        if tx.exists(gc, existing.as_str()) {
            tx.update(gc, existing.as_str(), fill);
        } else {
            let g = model::new_ref();
            let mut row = crate::rows::new_row(GM::UUID);
            fill(&mut row);
            tx.insert(&g, row);
            tx.put(&vm, F::GUEST_METRICS, Ref::new(g));
        }
        Ok(())
    });
    log_write("guest metrics", &vm, res);
}

/// The domain is gone: restart it or leave the VM Halted, per its
/// actions_after_* (a dead hypervisor process counts as a crash).
async fn halted(s: &Server, uuid: &str, domid: i64, reason: HaltReason) {
    let Some(vm) = find_running(s, uuid, domid) else { return };
    let Ok(row) = s.row(vm_c(), &vm) else { return };
    let normal = |b: OnNormalExit| b == OnNormalExit::Restart;
    let restart = match reason {
        HaltReason::Shutdown => normal(row.read(F::ACTIONS_AFTER_SHUTDOWN)),
        HaltReason::Reboot => normal(row.read(F::ACTIONS_AFTER_REBOOT)),
        HaltReason::Crash | HaltReason::ProcessDied => matches!(
            row.read(F::ACTIONS_AFTER_CRASH),
            OnCrashBehaviour::Restart | OnCrashBehaviour::CoredumpAndRestart | OnCrashBehaviour::RenameRestart
        ),
    };
    if reason == HaltReason::ProcessDied {
        tracing::warn!(vm = %vm, domid, "the domain's hypervisor process died");
    }
    if restart {
        match restart_domain(s, &vm).await {
            Ok(()) => return,
            Err(e) => tracing::error!(vm = %vm, "cannot restart the domain after {reason:?}: {e}; leaving it Halted"),
        }
    }
    let res = s.db.write(|tx| {
        mark_stopped(tx, &vm, false);
        Ok(())
    });
    log_write("the halt", &vm, res);
}

async fn restart_domain(s: &Server, vm: &str) -> std::result::Result<(), String> {
    let spec = domain_spec(s, vm).map_err(|e| e.to_string())?;
    let d = s.backend.create(&spec, None).await.map_err(|e| e.to_string())?;
    if let Err(e) = s.backend.unpause(&spec.uuid).await {
        if let Err(e2) = s.backend.shutdown(&spec.uuid, false, None).await {
            tracing::warn!(vm = %vm, "cannot destroy the domain that failed to start: {e2}");
        }
        return Err(e.to_string());
    }
    s.db.write(|tx| {
        mark_running(tx, s, vm, d, false, true);
        Ok::<_, ApiError>(())
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

fn paused(s: &Server, uuid: &str, domid: i64, now_paused: bool) {
    let Some(vm) = find_running(s, uuid, domid) else { return };
    let c = vm_c();
    let want = if now_paused { VmPowerState::Paused } else { VmPowerState::Running };
    let res = s.db.write(|tx| {
        if tx.get(c, &vm).is_some_and(|r| r.read(F::POWER_STATE) != want) {
            tx.set(c, &vm, F::POWER_STATE.index, want.to_value());
        }
        Ok(())
    });
    log_write("the pause state", &vm, res);
}

fn device_removed(s: &Server, uuid: &str, domid: i64, device: Device) {
    let Some(vm) = find_running(s, uuid, domid) else { return };
    let Ok(row) = s.row(vm_c(), &vm) else { return };
    // (class, the VM's list of them, the name field, currently_attached, device name)
    let (dc, list, dev, attached, name) = match &device {
        Device::Disk(d) => (B::USERDEVICE.class, F::VBDS.index, B::USERDEVICE.index, B::CURRENTLY_ATTACHED.index, d),
        Device::Nic(d) => (V::DEVICE.class, F::VIFS.index, V::DEVICE.index, V::CURRENTLY_ATTACHED.index, d),
    };
    let res = s.db.write(|tx| {
        for x in members(row.get(list)) {
            if tx.get(dc, &x).is_some_and(|r| r.get(dev).as_str() == Some(name.as_str())) {
                tx.set(dc, &x, attached, Value::Bool(false));
            }
        }
        Ok(())
    });
    log_write("the removed device", &vm, res);
}

// ------------------------------------------------------------ state changes

/// Record that the VM's domain now runs (or is paused) with `domid`.
pub(crate) fn mark_running(tx: &mut Txn, s: &Server, vm: &str, domid: i64, paused: bool, fresh_boot: bool) {
    let Some(row) = tx.get(vm_c(), vm).cloned() else { return };
    let now = DateTime::now();
    tx.update(vm_c(), vm, |r| {
        r.write(F::POWER_STATE, if paused { VmPowerState::Paused } else { VmPowerState::Running });
        r.write(F::DOMID, domid);
        r.write(F::RESIDENT_ON, Ref::new(s.host.as_str()));
        r.write(F::SCHEDULED_TO_BE_RESIDENT_ON, Ref::null());
    });
    for b in row.read(F::VBDS) {
        tx.put(b.as_str(), B::CURRENTLY_ATTACHED, true);
    }
    for v in row.read(F::VIFS) {
        tx.put(v.as_str(), V::CURRENTLY_ATTACHED, true);
    }
    ensure_console(tx, s, vm, &row);
    let vcpus = row.read(F::VCPUS_AT_STARTUP).max(1);
    let mem = row.read(F::MEMORY_DYNAMIC_MAX);
    let hvm = !row.read(F::HVM_BOOT_POLICY).is_empty();
    let dt = match row.read(F::DOMAIN_TYPE) {
        DomainType::Unspecified => DomainType::Pv,
        dt => dt,
    };
    tx.update(M::UUID.class, row.read(F::METRICS).as_str(), |r| {
        // A domain that carries on keeps the vCPUs it had (hot-plugged ones too).
        if fresh_boot || r.read(M::VCPUS_NUMBER) < 1 {
            r.write(M::VCPUS_NUMBER, vcpus);
        }
        if fresh_boot {
            r.write(M::START_TIME, now);
        }
        r.write(M::MEMORY_ACTUAL, mem);
        r.write(M::STATE, vec![if paused { "paused" } else { "running" }.to_string()]);
        r.write(M::LAST_UPDATED, now);
        r.write(M::HVM, hvm);
        r.write(M::CURRENT_DOMAIN_TYPE, dt);
    });
}

/// Where a console answers: on the host that runs its VM.
fn console_url(address: &str, uuid: &str) -> String {
    format!("https://{}/console?uuid={uuid}", crate::url_host(address))
}

/// After a move between hosts the VM's consoles answer on `host`, as xapi
/// records the consoles the new host's xenopsd reports.
pub fn relocate_consoles(tx: &mut Txn, vm: &str, host: &str) {
    let address = tx.read(host, H::ADDRESS).unwrap_or_default();
    for con in tx.read(vm, F::CONSOLES).unwrap_or_default() {
        if let Some(uuid) = tx.read(con.as_str(), CO::UUID) {
            tx.put(con.as_str(), CO::LOCATION, console_url(&address, &uuid));
        }
    }
}

/// A running domain has an RFB console, as xapi records the one xenopsd
/// reports (QEMU's VNC for HVM guests, vncterm for PV ones): protocol `rfb`,
/// location `https://<host address>/console?uuid=<console uuid>`; and, where
/// the backend has the guest's serial line (QEMU), a `vt100` one as XenServer
/// offers for text consoles (`xe console`). Kept across reboots and
/// migrations (the same protocol and URI), made only if missing.
fn ensure_console(tx: &mut Txn, s: &Server, vm: &str, row: &Row) {
    let has = |tx: &Txn, p: &ConsoleProtocol| {
        row.read(F::CONSOLES).iter().any(|con| tx.read(con.as_str(), CO::PROTOCOL).as_ref() == Some(p))
    };
    let mut wanted = vec![ConsoleProtocol::Rfb];
    if s.backend.text_console(&row.read(F::UUID)).is_some() {
        wanted.push(ConsoleProtocol::Vt100);
    }
    let address = tx.read(&s.host, H::ADDRESS).unwrap_or_default();
    for protocol in wanted {
        if has(tx, &protocol) {
            continue;
        }
        let uuid = model::new_uuid();
        let mut con = store::blank_row(CO::UUID.class);
        con.write(CO::LOCATION, console_url(&address, &uuid));
        con.write(CO::UUID, uuid);
        con.write(CO::PROTOCOL, protocol);
        con.write(CO::VM, Ref::new(vm));
        tx.insert(&model::new_ref(), con);
    }
}

/// Record that the VM's domain is gone and it is Halted (or Suspended).
/// Its consoles go with the domain.
pub(crate) fn mark_stopped(tx: &mut Txn, vm: &str, suspended: bool) {
    let Some(row) = tx.get(vm_c(), vm).cloned() else { return };
    for con in row.read(F::CONSOLES) {
        tx.delete(CO::UUID.class, con.as_str());
    }
    let now = DateTime::now();
    tx.update(vm_c(), vm, |r| {
        r.write(F::POWER_STATE, if suspended { VmPowerState::Suspended } else { VmPowerState::Halted });
        r.write(F::DOMID, -1);
        r.write(F::RESIDENT_ON, Ref::null());
        let mut oc = r.read(F::OTHER_CONFIG);
        oc.insert("last_shutdown_time".into(), now.to_string());
        r.write(F::OTHER_CONFIG, oc);
        if !suspended {
            r.write(F::GUEST_METRICS, Ref::null());
        }
    });
    if !suspended {
        for b in row.read(F::VBDS) {
            tx.put(b.as_str(), B::CURRENTLY_ATTACHED, false);
        }
        for v in row.read(F::VIFS) {
            tx.put(v.as_str(), V::CURRENTLY_ATTACHED, false);
        }
        let gm = row.read(F::GUEST_METRICS);
        if !gm.is_null() {
            tx.delete(GM::UUID.class, gm.as_str());
        }
    }
    tx.update(M::UUID.class, row.read(F::METRICS).as_str(), |r| {
        r.write(M::STATE, Vec::new());
        r.write(M::MEMORY_ACTUAL, 0);
        r.write(M::LAST_UPDATED, now);
    });
}

// ------------------------------------------------------------------ NICs

/// The NIC as the backend builds it: bridge, MTU and the guide's
/// other-config keys, with unusable values ignored as the hotplug script does.
pub(crate) fn nic_of(vif: &Row, net: Option<&Row>) -> backend::Nic {
    let (ethtool, promiscuous) = crate::lifecycle::vif::device_settings(&vif.read(V::OTHER_CONFIG));
    backend::Nic {
        device: vif.read(V::DEVICE),
        mac: vif.read(V::MAC),
        bridge: net.map(|n| n.read(N::BRIDGE)).unwrap_or_default(),
        mtu: crate::lifecycle::vif::effective_mtu(vif, net),
        ethtool,
        promiscuous,
        locking: locking_of(vif, net),
    }
}

/// What the VIF may send: its locking mode, network_default resolved by its
/// network (xapi's rule: a network's default is unlocked or disabled).
pub(crate) fn locking_of(vif: &Row, net: Option<&Row>) -> backend::Locking {
    use model::types::VifLockingMode;
    match crate::lifecycle::vif::effective_locking(vif.read(V::LOCKING_MODE), net) {
        VifLockingMode::Locked => {
            backend::Locking::Locked { ipv4: vif.read(V::IPV4_ALLOWED), ipv6: vif.read(V::IPV6_ALLOWED) }
        }
        VifLockingMode::Disabled => backend::Locking::Disabled,
        _ => backend::Locking::Unlocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_order_from_hvm_boot_params() {
        use BootDevice::*;
        assert_eq!(boot_order("cdn"), vec![Disk, Cdrom, Network]);
        assert_eq!(boot_order("DC"), vec![Cdrom, Disk]);
        assert_eq!(boot_order("ccx"), vec![Disk]);
        assert!(boot_order("").is_empty());
    }
}

//! VM commands: install, lifecycle, clone/copy/snapshot, uninstall, disks,
//! CDs, VIFs, memory, export/import.

use super::{
    bytes_of_string, ctor, describe, field_str, one_or_many, s, select_host, select_vms, sr_arg, transfer, uuid_of,
    vm_op,
};
use crate::cli::generic::{self, GenClass};
use crate::cli::{fail, records, CliError, CliResult, Cx};
use model::schema::{CLASS_CONSOLE, CLASS_HOST, CLASS_SR, CLASS_VBD, CLASS_VDI, CLASS_VIF, CLASS_VM};
use model::types::fields;
use model::Value;

pub async fn run(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    let force = cx.params.flag("force");
    match name {
        "vm-install" => install(cx).await,
        "vm-start" => {
            vm_op(cx, "VM.start", vec![Value::Bool(cx.params.flag("paused")), Value::Bool(force)], &["on", "paused"])
                .await
        }
        "vm-shutdown" => vm_op(cx, if force { "VM.hard_shutdown" } else { "VM.clean_shutdown" }, vec![], &[]).await,
        "vm-reboot" => vm_op(cx, if force { "VM.hard_reboot" } else { "VM.clean_reboot" }, vec![], &[]).await,
        "vm-suspend" => vm_op(cx, "VM.suspend", vec![], &[]).await,
        "vm-resume" => vm_op(cx, "VM.resume", vec![Value::Bool(false), Value::Bool(force)], &["on"]).await,
        "vm-pause" => vm_op(cx, "VM.pause", vec![], &[]).await,
        "vm-unpause" => vm_op(cx, "VM.unpause", vec![], &[]).await,
        "vm-clone" | "vm-copy" | "vm-snapshot" | "vm-checkpoint" => copy_like(cx, name).await,
        "snapshot-revert" => {
            let u = match cx.params.get("snapshot-uuid").or(cx.params.get("uuid")) {
                Some(u) => u.to_string(),
                None => return Err(CliError::ParamNotFound("snapshot-uuid".into())),
            };
            let (r, _) = generic::by_uuid(cx, &CLASS_VM, &u).await?;
            cx.call("VM.revert", vec![s(r)]).await.map(|_| ())
        }
        "vm-uninstall" => uninstall(cx).await,
        "vm-destroy" => {
            let (r, _) = generic::by_uuid(cx, &CLASS_VM, cx.params.reqd("uuid")?).await?;
            cx.call("VM.destroy", vec![s(r)]).await.map(|_| ())
        }
        "vm-migrate" => {
            let host = select_host_for_migrate(cx)?;
            let opts = Value::Struct(vec![
                ("live".into(), s(if cx.params.flag("live") { "true" } else { "false" })),
                ("force".into(), s(if force { "true" } else { "false" })),
            ]);
            vm_op(cx, "VM.pool_migrate", vec![s(host), opts], &["host", "host-uuid", "live"]).await
        }
        "vm-reset-powerstate" => {
            if !force {
                cx.stderr("This operation is extremely dangerous and may cause data loss. This operation must be forced (use --force).").await?;
                return Err(CliError::Exit(1));
            }
            vm_op(cx, "VM.power_state_reset", vec![], &[]).await
        }
        "vm-memory-set" => {
            let m = bytes_of_string("memory", cx.params.reqd("memory")?)?;
            vm_op(cx, "VM.set_memory", vec![Value::Int(m)], &["memory"]).await
        }
        // Sizes with units, as xapi's memory commands read them.
        "vm-memory-limits-set" => {
            let keys = ["static-min", "static-max", "dynamic-min", "dynamic-max"];
            let mut sizes = Vec::new();
            for k in keys {
                sizes.push(Value::Int(bytes_of_string(k, cx.params.reqd(k)?)?));
            }
            vm_op(cx, "VM.set_memory_limits", sizes, &keys).await
        }
        "vm-memory-static-range-set" | "vm-memory-dynamic-range-set" => {
            let min = bytes_of_string("min", cx.params.reqd("min")?)?;
            let max = bytes_of_string("max", cx.params.reqd("max")?)?;
            let m = if name == "vm-memory-static-range-set" {
                "VM.set_memory_static_range"
            } else {
                "VM.set_memory_dynamic_range"
            };
            vm_op(cx, m, vec![Value::Int(min), Value::Int(max)], &["min", "max"]).await
        }
        "vm-memory-target-set" => {
            let t = bytes_of_string("target", cx.params.reqd("target")?)?;
            vm_op(cx, "VM.set_memory_dynamic_range", vec![Value::Int(t), Value::Int(t)], &["target"]).await
        }
        "console" => console(cx).await,
        "vm-export" => export(cx).await,
        "vm-import" => import(cx).await,
        "vm-disk-add" => disk_add(cx).await,
        "vm-disk-list" => disk_list(cx).await,
        "vm-cd-add" => cd_add(cx).await,
        "vm-cd-insert" | "vm-cd-eject" => cd_media(cx, name == "vm-cd-insert").await,
        "vm-vif-list" => vif_list(cx).await,
        n if n.starts_with("vm-data-source-") => {
            let verb = n.trim_start_matches("vm-data-source-");
            let ignore: &[&str] = if verb == "list" { &[] } else { &["data-source"] };
            let vms = select_vms(cx, false, ignore)?;
            one_or_many(&vms, cx, false)?;
            let (vm, _) = vms.into_iter().next().ok_or_else(|| CliError::Failure("No matching VMs found".into()))?;
            super::data_source(cx, "VM", vm, verb).await
        }
        other => Err(CliError::UnknownCommand(other.to_string())),
    }
}

fn select_host_for_migrate(cx: &Cx<'_, '_>) -> CliResult<String> {
    if cx.params.get("host").is_none() && cx.params.get("host-uuid").is_none() {
        return Err(CliError::ParamNotFound("host".into()));
    }
    select_host(cx, &["host-uuid", "host"])
}

/// The template vm-install starts from, found as the real xe does:
/// `template-uuid=`, `template-name-label=`/`template-name=` (templates by
/// name), or `template=` (a uuid, else a name); it must be a template.
fn find_template(cx: &Cx<'_, '_>) -> CliResult<String> {
    let c = &CLASS_VM;
    let st = cx.s.db.read();
    let by_uuid = |u: &str| {
        generic::rows(&st, c)
            .into_iter()
            .find(|(_, row)| row.get_by_name("uuid").and_then(Value::as_str) == Some(u))
            .map(|(r, _)| r)
    };
    let by_name = |n: &str| -> CliResult<String> {
        let hits: Vec<String> = generic::rows(&st, c)
            .into_iter()
            .filter(|(_, row)| {
                row.get_by_name("is_a_template").and_then(Value::as_bool) == Some(true)
                    && row.get_by_name("is_control_domain").and_then(Value::as_bool) != Some(true)
                    && row.get_by_name("name_label").and_then(Value::as_str) == Some(n)
            })
            .map(|(r, _)| r)
            .collect();
        match hits.as_slice() {
            [] => fail("No templates matched"),
            [one] => Ok(one.clone()),
            _ => fail("More than one matching template found"),
        }
    };
    let p = &cx.params;
    let found = if let Some(u) = p.get("template-uuid") {
        by_uuid(u).ok_or_else(|| CliError::Failure("Cannot find template".into()))?
    } else if let Some(n) = p.get("template-name-label").or(p.get("template-name")) {
        by_name(n)?
    } else if let Some(t) = p.get("template") {
        match by_uuid(t) {
            Some(r) => r,
            None => by_name(t)?,
        }
    } else {
        return fail(
            "Template must be specified by parameter 'template-uuid', 'template-name', 'template-name-label' or 'template'",
        );
    };
    let is_template = st.get(c, &found).and_then(|r| r.get_by_name("is_a_template").and_then(Value::as_bool));
    if is_template != Some(true) {
        return fail("Can only install from templates");
    }
    Ok(found)
}

/// Point every disk of the provisioning XML at one SR.
fn rewrite_disks(xml: &str, sr_uuid: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(i) = rest.find("sr=\"") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str(sr_uuid);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The SR vm-install was given (`sr-uuid=` and/or `sr-name-label=`,
/// checked against each other as the real xe does), if any.
async fn install_sr(cx: &Cx<'_, '_>) -> CliResult<Option<String>> {
    let by_uuid = match cx.params.get("sr-uuid") {
        Some(u) => Some(generic::by_uuid(cx, &CLASS_SR, u).await?.0),
        None => None,
    };
    let Some(n) = cx.params.get("sr-name-label") else { return Ok(by_uuid) };
    let named: Vec<String> = {
        let st = cx.s.db.read();
        generic::rows(&st, &CLASS_SR)
            .into_iter()
            .filter(|(_, row)| row.get_by_name("name_label").and_then(Value::as_str) == Some(n))
            .map(|(r, _)| r)
            .collect()
    };
    match (by_uuid, named.as_slice()) {
        (_, []) => fail("No SR with that name-label found"),
        (Some(sr), _) if named.contains(&sr) => Ok(Some(sr)),
        (Some(_), _) => fail("SR specified via sr-uuid doesn't have the name specified via sr-name-label"),
        (None, [one]) => Ok(Some(one.clone())),
        (None, _) => fail("Multiple SRs with that name-label found"),
    }
}

/// vm-install as the real xe: a copy onto the given SR (a clone when none
/// is given), described "Installed via xe CLI", its suspend SR and the
/// provisioning XML's disks pointed at that SR (else the pool's default),
/// provisioned; anything failing after the copy destroys it again.
async fn install(cx: &mut Cx<'_, '_>) -> CliResult {
    let template = find_template(cx)?;
    let name = cx.params.reqd("new-name-label")?.to_string();
    let vc = &CLASS_VM;
    let (is_snapshot, tpl_suspend_sr, has_disks) = {
        let st = cx.s.db.read();
        let row = st.get(vc, &template);
        let g = |f: &str| row.and_then(|r| r.get_by_name(f).cloned());
        (
            g("is_a_snapshot").and_then(|v| v.as_bool()) == Some(true),
            g("suspend_SR").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| model::NULL_REF.into()),
            g("other_config").is_some_and(|m| m.map_str("disks").is_some()),
        )
    };
    let sr = if is_snapshot {
        if cx.params.has("sr-uuid") || cx.params.has("sr-name-label") {
            return fail(
                "Do not use the sr-name-label or sr-uuid argument when installing from a snapshot. By default, it will install each new disk on the same SR as the corresponding snapshot disks.",
            );
        }
        None
    } else {
        install_sr(cx).await?
    };
    let sr_uuid = match &sr {
        Some(r) => uuid_of(cx, &CLASS_SR, r),
        None => match super::default_sr(cx) {
            Some(d) => uuid_of(cx, &CLASS_SR, &d),
            None if has_disks => return fail(
                "Failed to find a valid default SR for the Pool. Please provide an sr-name-label or sr-uuid parameter.",
            ),
            None => String::new(),
        },
    };
    let vm = match &sr {
        Some(sr) => cx.call_str("VM.copy", vec![s(template), s(name), s(sr.clone())]).await?,
        None => cx.call_str("VM.clone", vec![s(template), s(name)]).await?,
    };
    let r: CliResult = async {
        cx.call("VM.set_name_description", vec![s(vm.clone()), s("Installed via xe CLI")]).await?;
        let suspend_sr = sr.clone().unwrap_or(tpl_suspend_sr);
        cx.call("VM.set_suspend_SR", vec![s(vm.clone()), s(suspend_sr)]).await?;
        let disks = {
            let st = cx.s.db.read();
            st.get(vc, &vm)
                .and_then(|row| row.get_by_name("other_config").and_then(|m| m.map_str("disks")).map(str::to_string))
        };
        if let Some(xml) = disks {
            cx.call("VM.remove_from_other_config", vec![s(vm.clone()), s("disks")]).await?;
            cx.call("VM.add_to_other_config", vec![s(vm.clone()), s("disks"), s(rewrite_disks(&xml, &sr_uuid))])
                .await?;
        }
        cx.call("VM.provision", vec![s(vm.clone())]).await?;
        if let Some(h) = cx.params.get("copy-bios-strings-from") {
            let (host, _) = generic::by_uuid(cx, &CLASS_HOST, h).await?;
            cx.call("VM.copy_bios_strings", vec![s(vm.clone()), s(host)]).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        if let Err(d) = cx.call("VM.destroy", vec![s(vm.clone())]).await {
            tracing::warn!("vm-install: cannot destroy {vm} after a failure: {d:?}");
        }
        return Err(e);
    }
    let uuid = uuid_of(cx, vc, &vm);
    cx.lines(vec![uuid]).await
}

async fn copy_like(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    let vms = select_vms(
        cx,
        name != "vm-checkpoint",
        &["new-name-label", "new-name-description", "sr-uuid", "ignore-vdi-uuids"],
    )?;
    one_or_many(&vms, cx, false)?;
    let Some((vm, _)) = vms.into_iter().next() else { return fail("No matching VMs found") };
    let new_name = cx.params.reqd("new-name-label")?.to_string();
    let new = match name {
        "vm-clone" => cx.call_str("VM.clone", vec![s(vm), s(new_name)]).await?,
        "vm-copy" => {
            let sr = match cx.params.get("sr-uuid") {
                Some(u) => generic::by_uuid(cx, &CLASS_SR, u).await?.0,
                None => model::NULL_REF.to_string(),
            };
            cx.call_str("VM.copy", vec![s(vm), s(new_name), s(sr)]).await?
        }
        "vm-checkpoint" => cx.call_str("VM.checkpoint", vec![s(vm), s(new_name)]).await?,
        _ => {
            let mut ignore = Vec::new();
            for u in cx.params.get("ignore-vdi-uuids").unwrap_or("").split(',').filter(|u| !u.is_empty()) {
                ignore.push(s(generic::by_uuid(cx, &CLASS_VDI, u).await?.0));
            }
            cx.call_str("VM.snapshot", vec![s(vm), s(new_name), Value::Array(ignore)]).await?
        }
    };
    if let Some(d) = cx.params.get("new-name-description") {
        cx.call("VM.set_name_description", vec![s(new.clone()), s(d)]).await?;
    }
    let uuid = uuid_of(cx, &CLASS_VM, &new);
    cx.lines(vec![uuid]).await
}

/// The VBD refs of a VM.
fn vbds_of(cx: &Cx<'_, '_>, vm: &str) -> Vec<String> {
    let c = &CLASS_VM;
    let st = cx.s.db.read();
    st.get(c, vm)
        .and_then(|row| {
            row.get_by_name("VBDs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        })
        .unwrap_or_default()
}

async fn uninstall(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, true, &[])?;
    one_or_many(&vms, cx, false)?;
    let Some((vm, vm_uuid)) = vms.into_iter().next() else { return fail("No matching VMs found") };
    let (vbd_c, vdi_c) = (&CLASS_VBD, &CLASS_VDI);
    // Disks written by this VM only are destroyed with it.
    let mut vdis: Vec<String> = Vec::new();
    {
        let st = cx.s.db.read();
        for vbd in vbds_of(cx, &vm) {
            let Some(row) = st.get(vbd_c, &vbd) else { continue };
            let vdi = row.get_by_name("VDI").and_then(Value::as_str).unwrap_or_default().to_string();
            let rw = row.get_by_name("mode").and_then(Value::as_str) == Some("RW");
            let Some(vrow) = st.get(vdi_c, &vdi) else { continue };
            let users = vrow.get_by_name("VBDs").and_then(Value::as_array).map(|a| a.len()).unwrap_or(0);
            if rw && users <= 1 {
                vdis.push(vdi);
            }
        }
    }
    let name = field_str(cx, &CLASS_VM, &vm, "name_label");
    let mut lines =
        vec!["The following items are about to be destroyed".to_string(), format!("VM : {vm_uuid} ({name})")];
    for v in &vdis {
        lines.push(format!("VDI: {} ({})", uuid_of(cx, vdi_c, v), field_str(cx, vdi_c, v, "name_label")));
    }
    for l in lines {
        cx.msg(l).await?;
    }
    if !cx.params.flag("force") && !cx.user_says_yes().await? {
        return Ok(());
    }
    if field_str(cx, &CLASS_VM, &vm, "power_state") != "Halted" {
        cx.call("VM.hard_shutdown", vec![s(vm.clone())]).await?;
    }
    cx.call("VM.destroy", vec![s(vm)]).await?;
    for v in vdis {
        cx.call("VDI.destroy", vec![s(v)]).await?;
    }
    cx.msg("All objects destroyed").await
}

/// `xe console`: the client attaches its terminal to the VM's `vt100`
/// console, as xapi's does: it is told to CONNECT to the console itself.
/// The path is sent without the host (a console is on the host the client
/// already reaches; its recorded address may not be reachable from there).
async fn console(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, false, &[])?;
    one_or_many(&vms, cx, false)?;
    let Some((vm, _)) = vms.into_iter().next() else { return fail("No matching VMs found") };
    let location = {
        let st = cx.s.db.read();
        let cons = st.get(&CLASS_VM, &vm).map(|r| crate::rows::members(r.get(fields::vm::CONSOLES.index)));
        cons.unwrap_or_default().into_iter().find_map(|c| {
            let row = st.get(&CLASS_CONSOLE, &c)?;
            (row.get(fields::console::PROTOCOL.index).as_str() == Some("vt100"))
                .then(|| row.get(fields::console::LOCATION.index).as_str().unwrap_or("").to_string())
        })
    };
    let Some(location) = location else { return fail("No text console available") };
    let path = match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_default(),
        None => location,
    };
    cx.p.send(cliproto::Command::HttpConnect(format!("{path}&session_id={}", cx.session))).await?;
    // The client sends heartbeats while the terminal is attached.
    match cx.p.response(crate::cli::protocol::TRANSFER_TIMEOUT).await? {
        cliproto::Response::Ok => Ok(()),
        _ => Err(CliError::Exit(1)),
    }
}

async fn export(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, true, &["filename", "compress", "preserve-power-state", "include-snapshots", "metadata"])?;
    one_or_many(&vms, cx, false)?;
    let Some((vm, uuid)) = vms.into_iter().next() else { return fail("No matching VMs found") };
    let filename = cx.params.reqd("filename")?.to_string();
    let compress = cx.params.get("compress").unwrap_or("false").to_string();
    let mut query = format!("ref={vm}&use_compression={compress}");
    if cx.params.flag("preserve-power-state") {
        query.push_str("&preserve_power_state=true");
    }
    let label = format!("Export of VM: {uuid}");
    transfer::run(cx, transfer::Dir::Get, &filename, "/export", &query, &label).await?;
    cx.msg("Export succeeded").await
}

async fn import(cx: &mut Cx<'_, '_>) -> CliResult {
    let sr = sr_arg(cx).await?;
    let (restore, force) = (cx.params.flag("preserve"), cx.params.flag("force"));
    let (metadata, dry_run) = (cx.params.flag("metadata"), cx.params.flag("dry-run"));
    let c = &CLASS_VM;
    if cx.params.get("url").is_some() && cx.params.get("filename").is_some() {
        cx.stderr("Invalid arguments. The 'url' and 'filename' parameters should not both be specified.\n").await?;
        return Err(CliError::Exit(1));
    }
    if let Some(url) = cx.params.get("url").map(str::to_string) {
        let refs = cx.call("VM.import", vec![s(url), s(sr), Value::Bool(restore), Value::Bool(force)]).await?;
        let uuids: Vec<String> = match refs {
            Value::Array(v) => v.iter().filter_map(Value::as_str).map(|r| uuid_of(cx, c, r)).collect(),
            _ => Vec::new(),
        };
        return cx.lines(vec![uuids.join(",")]).await;
    }
    let Some(filename) = cx.params.get("filename").map(str::to_string) else {
        return Err(CliError::ParamNotFound("filename".into()));
    };
    if !metadata && dry_run {
        cx.stderr("Only metadata import function support dry-run\n").await?;
        return Err(CliError::Exit(1));
    }
    // Someone pointing at a legacy appliance's ova.xml means its directory
    // (xe streams a directory as a tar).
    let filename = match filename.len().checked_sub("ova.xml".len()) {
        Some(n) if filename.to_ascii_lowercase().ends_with("ova.xml") => filename[..n].to_string(),
        _ => filename,
    };
    let mut query = format!("restore={restore}&force={force}&dry_run={dry_run}&sr_id={sr}");
    for (k, v) in cx.params.map("vdi") {
        query.push_str(&format!("&vdi:{k}={v}"));
    }
    let path = if metadata { "/import_metadata" } else { "/import" };
    let result = transfer::run(cx, transfer::Dir::Put, &filename, path, &query, "VM import").await?;
    let mut uuids: Vec<String> =
        transfer::refs_in(&result).iter().map(|r| uuid_of(cx, c, r)).filter(|u| !u.is_empty()).collect();
    if uuids.is_empty() && dry_run {
        uuids.push("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".into());
    }
    cx.lines(vec![uuids.join(",")]).await
}

/// Plug a new VBD into a running VM; as the real xe, a failure leaves it
/// created but unplugged (logged, not reported).
async fn hotplug(cx: &mut Cx<'_, '_>, vm: &str, vbd: &str) {
    let running = field_str(cx, &CLASS_VM, vm, "power_state") == "Running";
    if running {
        if let Err(e) = cx.call("VBD.plug", vec![s(vbd)]).await {
            tracing::info!("VBD {vbd} created but not hotplugged: {e:?}");
        }
    }
}

async fn disk_add(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, false, &["disk-size", "device", "sr-uuid"])?;
    one_or_many(&vms, cx, true)?;
    let size = bytes_of_string("disk-size", cx.params.reqd("disk-size")?)?;
    let device = cx.params.reqd("device")?.to_string();
    let sr = match cx.params.get("sr-uuid") {
        Some(_) => sr_arg(cx).await?,
        None => super::default_sr(cx).ok_or_else(|| {
            CliError::Failure("No default Pool SR set; you must specify an SR on the commandline".into())
        })?,
    };
    let (vdi_c, vbd_c) = (&CLASS_VDI, &CLASS_VBD);
    let mut fails = Vec::new();
    for (vm, uuid) in &vms {
        let r: CliResult = async {
            // As the real xe: the VM's uuid as the SM placement hint, the
            // VBD owning its disk, and the disk gone again if the VBD fails.
            let rec = ctor(
                vdi_c,
                vec![
                    ("name_label", s("Created by xe")),
                    ("name_description", s("Created by xe")),
                    ("SR", s(sr.clone())),
                    ("virtual_size", Value::Int(size)),
                    ("type", s("user")),
                    ("sm_config", Value::Struct(vec![("vmhint".into(), s(uuid.clone()))])),
                ],
            );
            let vdi = cx.call_str("VDI.create", vec![rec]).await?;
            let rec = ctor(
                vbd_c,
                vec![
                    ("VM", s(vm.clone())),
                    ("VDI", s(vdi.clone())),
                    // `autodetect` picks the next free slot (VBD.create).
                    ("userdevice", s(device.clone())),
                    ("mode", s("RW")),
                    ("type", s("Disk")),
                    ("unpluggable", Value::Bool(true)),
                    ("bootable", Value::Bool(false)),
                    ("other_config", Value::Struct(vec![("owner".into(), s(""))])),
                ],
            );
            let vbd = match cx.call_str("VBD.create", vec![rec]).await {
                Ok(v) => v,
                Err(e) => {
                    if let Err(d) = cx.call("VDI.destroy", vec![s(vdi)]).await {
                        tracing::warn!("vm-disk-add: cannot remove the new disk after a failed VBD.create: {d:?}");
                    }
                    return Err(e);
                }
            };
            hotplug(cx, vm, &vbd).await;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            if vms.len() == 1 {
                return Err(e);
            }
            fails.push((uuid.clone(), describe(cx, &e)));
        }
    }
    if fails.is_empty() {
        Ok(())
    } else {
        Err(CliError::Multiple(fails))
    }
}

fn gen_class(cli: &str) -> CliResult<&'static GenClass> {
    generic::GEN.iter().find(|g| g.cli == cli).ok_or_else(|| CliError::Failure(format!("no {cli} records")))
}

async fn disk_list(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, true, &["vbd-params", "vdi-params"])?;
    one_or_many(&vms, cx, true)?;
    let (vbd_c, vdi_c) = (&CLASS_VBD, &CLASS_VDI);
    let vbd_params = cx.params.get("vbd-params").unwrap_or("uuid,vm-name-label,userdevice,empty").to_string();
    let vdi_params = cx.params.get("vdi-params").unwrap_or("uuid,name-label,sr-name-label,virtual-size").to_string();
    let _ = gen_class("vbd")?;
    for (vm, _) in vms {
        let mut n = 0;
        for vbd in vbds_of(cx, &vm) {
            let out = {
                let st = cx.s.db.read();
                let Some(row) = st.get(vbd_c, &vbd) else { continue };
                if row.get_by_name("type").and_then(Value::as_str) != Some("Disk") {
                    continue;
                }
                let vbd_rec =
                    generic::record(&st, row, &generic::select(records::fields(vbd_c), Some(&vbd_params), &[]));
                let vdi = row.get_by_name("VDI").and_then(Value::as_str).unwrap_or_default();
                let vdi_rec = st.get(vdi_c, vdi).map(|vrow| {
                    let mut fs = generic::select(records::fields(vdi_c), Some(&vdi_params), &[]);
                    fs.retain(|f| f.name != "sr-name-label");
                    let mut rec = generic::record(&st, vrow, &fs);
                    if vdi_params.split(',').any(|p| p == "sr-name-label") {
                        let srn = records::lookup(vdi_c, "sr-name-label").map(|f| records::labelled(&st, vrow, f));
                        if let Some(x) = srn {
                            rec.push(x);
                        }
                    }
                    rec
                });
                (vbd_rec, vdi_rec)
            };
            if !cx.minimal {
                cx.msg(format!("Disk {n} VBD:")).await?;
            }
            cx.table(vec![out.0]).await?;
            if let Some(v) = out.1 {
                if !cx.minimal {
                    cx.msg(format!("Disk {n} VDI:")).await?;
                }
                cx.table(vec![v]).await?;
            }
            n += 1;
        }
    }
    Ok(())
}

/// A VDI by name in an ISO library SR (xapi looks CDs up by name-label).
/// The ISO VDI named `name`; with several, vm-cd-add takes the first as the
/// real xe does, vm-cd-insert (`first_ok` false) refuses.
fn find_cd(cx: &Cx<'_, '_>, name: &str, first_ok: bool) -> CliResult<String> {
    let (vdi_c, sr_c) = (&CLASS_VDI, &CLASS_SR);
    let st = cx.s.db.read();
    let hits: Vec<String> = generic::rows(&st, vdi_c)
        .into_iter()
        .filter(|(_, row)| row.get_by_name("name_label").and_then(Value::as_str) == Some(name))
        .filter(|(_, row)| {
            let sr = row.get_by_name("SR").and_then(Value::as_str).unwrap_or_default();
            st.get(sr_c, sr)
                .and_then(|s| s.get_by_name("content_type").and_then(Value::as_str).map(|t| t == "iso"))
                .unwrap_or(false)
        })
        .map(|(r, _)| r)
        .collect();
    match hits.as_slice() {
        [] => fail(format!("CD {name} not found")),
        [one, ..] if first_ok => Ok(one.clone()),
        [one] => Ok(one.clone()),
        _ => fail(format!("Multiple CDs named {name} found. Please use vbd-insert and specify uuids")),
    }
}

async fn cd_add(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, false, &["cd-name", "device"])?;
    one_or_many(&vms, cx, false)?;
    let Some((vm, _)) = vms.into_iter().next() else { return fail("No matching VMs found") };
    let cd = find_cd(cx, cx.params.reqd("cd-name")?, true)?;
    let rec = ctor(
        &CLASS_VBD,
        vec![
            ("VM", s(vm.clone())),
            ("VDI", s(cd)),
            ("userdevice", s(cx.params.reqd("device")?)),
            ("mode", s("RO")),
            ("type", s("CD")),
            ("unpluggable", Value::Bool(true)),
            ("bootable", Value::Bool(false)),
        ],
    );
    let vbd = cx.call_str("VBD.create", vec![rec]).await?;
    hotplug(cx, &vm, &vbd).await;
    Ok(())
}

async fn cd_media(cx: &mut Cx<'_, '_>, insert: bool) -> CliResult {
    let vms = select_vms(cx, false, &["cd-name"])?;
    one_or_many(&vms, cx, false)?;
    let Some((vm, _)) = vms.into_iter().next() else { return fail("No matching VMs found") };
    let vbd_c = &CLASS_VBD;
    let cds: Vec<(String, bool)> = {
        let st = cx.s.db.read();
        vbds_of(cx, &vm)
            .into_iter()
            .filter_map(|v| {
                let row = st.get(vbd_c, &v)?;
                (row.get_by_name("type").and_then(Value::as_str) == Some("CD"))
                    .then(|| (v.clone(), row.get_by_name("empty").and_then(Value::as_bool).unwrap_or(false)))
            })
            .collect()
    };
    // The real xe's messages and error for each case.
    if insert {
        let cd = find_cd(cx, cx.params.reqd("cd-name")?, false)?;
        let empty: Vec<&String> = cds.iter().filter(|(_, e)| *e).map(|(v, _)| v).collect();
        match empty.as_slice() {
            [] => Err(CliError::Api(crate::ApiError::VmNoEmptyCdVbd { vm })),
            [vbd] => cx.call("VBD.insert", vec![s((*vbd).clone()), s(cd)]).await.map(|_| ()),
            _ => fail("Two or more empty CD devices found. Please use vbd-insert"),
        }
    } else {
        match cds.as_slice() {
            [] => fail("No CDs found"),
            [(vbd, _)] => cx.call("VBD.eject", vec![s(vbd.clone())]).await.map(|_| ()),
            _ => fail("Two or more CDs found. Please use vbd-eject"),
        }
    }
}

async fn vif_list(cx: &mut Cx<'_, '_>) -> CliResult {
    let vms = select_vms(cx, true, &["params"])?;
    one_or_many(&vms, cx, true)?;
    let (vm_c, vif_c) = (&CLASS_VM, &CLASS_VIF);
    let g = gen_class("vif")?;
    let mut recs = Vec::new();
    {
        let st = cx.s.db.read();
        let fs = generic::select(records::fields(vif_c), cx.params.get("params"), g.defaults);
        for (vm, _) in &vms {
            let vifs: Vec<String> = st
                .get(vm_c, vm)
                .and_then(|row| {
                    row.get_by_name("VIFs")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                })
                .unwrap_or_default();
            for v in vifs {
                if let Some(row) = st.get(vif_c, &v) {
                    recs.push(generic::record(&st, row, &fs));
                }
            }
        }
    }
    cx.table(recs).await
}

//! Storage commands: VDIs (create, destroy, resize, raw import/export),
//! SRs, PBDs and VBDs.

use super::{bytes_of_string, class, ctor, map_arg, s, select_host, transfer, uuid_of};
use crate::cli::generic;
use crate::cli::{CliError, CliResult, Cx};
use model::schema::{CLASS_PBD, CLASS_SR, CLASS_VBD, CLASS_VDI};
use model::Value;

async fn obj(cx: &Cx<'_, '_>, c: &str, key: &str) -> CliResult<String> {
    Ok(generic::by_uuid(cx, class(c)?, cx.params.reqd(key)?).await?.0)
}

fn bool_param(cx: &Cx<'_, '_>, k: &str, default: bool) -> CliResult<bool> {
    cx.params.bool(k, default)
}

/// vdi-create's `type`: the four xe knows (default user).
fn vdi_type(t: Option<&str>) -> CliResult<&'static str> {
    match t {
        None => Ok("user"),
        Some("system") => Ok("system"),
        Some("user") => Ok("user"),
        Some("suspend") => Ok("suspend"),
        Some("crashdump") => Ok("crashdump"),
        Some(x) => Err(CliError::Failure(format!("Unknown vdi type: {x}"))),
    }
}

/// The one SR named by `sr=` (uuid or name-label) and SR field filters,
/// as xapi's Sr_selectors; `ignore` lists the command's own parameters.
fn select_sr(cx: &Cx<'_, '_>, ignore: &[&str]) -> CliResult<String> {
    let c = &CLASS_SR;
    let st = cx.s.db.read();
    let mut rows = generic::rows(&st, c);
    for (k, v) in &cx.params.0 {
        let stem = k.split(':').next().unwrap_or(k);
        if k == "sr" {
            rows.retain(|(_, row)| {
                row.get_by_name("uuid").and_then(Value::as_str) == Some(v.as_str())
                    || row.get_by_name("name_label").and_then(Value::as_str) == Some(v.as_str())
            });
        } else if !generic::STDPARAMS.contains(&stem) && !ignore.contains(&stem) {
            rows = generic::filter(&st, c, rows, k, v).map_err(|e| match e {
                CliError::Api(_) => CliError::Failure(format!(
                    "Parameter '{k}' is not a field of the SR class. Failed to select SR for operation."
                )),
                e => e,
            })?;
        }
    }
    match rows.len() {
        0 => Err(CliError::Failure("No matching SRs found".into())),
        1 => Ok(rows.into_iter().next().map(|(r, _)| r).unwrap_or_default()),
        _ => Err(CliError::Failure(
            "Multiple matches SRs found. Operation can only be performed on one SR at a time".into(),
        )),
    }
}

pub async fn run(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    match name {
        n if n.starts_with("sr-data-source-") => {
            let sr = select_sr(cx, &["data-source"])?;
            super::data_source(cx, "SR", sr, n.trim_start_matches("sr-data-source-")).await
        }
        "vdi-create" => {
            let sr = obj(cx, "SR", "sr-uuid").await?;
            let size = bytes_of_string("virtual-size", cx.params.reqd("virtual-size")?)?;
            let rec = ctor(
                &CLASS_VDI,
                vec![
                    ("name_label", s(cx.params.reqd("name-label")?)),
                    ("SR", s(sr)),
                    ("virtual_size", Value::Int(size)),
                    ("type", s(vdi_type(cx.params.get("type"))?)),
                    ("sharable", Value::Bool(bool_param(cx, "sharable", false)?)),
                    ("read_only", Value::Bool(bool_param(cx, "read-only", false)?)),
                    ("other_config", map_arg(cx, "other-config")),
                    ("sm_config", map_arg(cx, "sm-config")),
                    ("tags", Value::Array(cx.params.map("tags").into_iter().map(|(k, _)| s(k)).collect())),
                ],
            );
            let vdi = cx.call_str("VDI.create", vec![rec]).await?;
            let u = uuid_of(cx, &CLASS_VDI, &vdi);
            cx.lines(vec![u]).await
        }
        "vdi-destroy" => {
            let v = obj(cx, "VDI", "uuid").await?;
            cx.call("VDI.destroy", vec![s(v)]).await.map(|_| ())
        }
        "vdi-resize" => {
            let v = obj(cx, "VDI", "uuid").await?;
            let size = bytes_of_string("disk-size", cx.params.reqd("disk-size")?)?;
            let m = if cx.params.flag("online") { "VDI.resize_online" } else { "VDI.resize" };
            cx.call(m, vec![s(v), Value::Int(size)]).await.map(|_| ())
        }
        "vdi-import" | "vdi-export" => {
            let v = obj(cx, "VDI", "uuid").await?;
            let filename = cx.params.reqd("filename")?.to_string();
            let format = cx.params.get("format").unwrap_or("raw").to_string();
            let query = format!("vdi={v}&format={format}");
            let uuid = uuid_of(cx, &CLASS_VDI, &v);
            if name == "vdi-import" {
                transfer::run(
                    cx,
                    transfer::Dir::Put,
                    &filename,
                    "/import_raw_vdi",
                    &query,
                    &format!("VDI import {uuid}"),
                )
                .await?;
            } else {
                transfer::run(
                    cx,
                    transfer::Dir::Get,
                    &filename,
                    "/export_raw_vdi",
                    &query,
                    &format!("VDI export {uuid}"),
                )
                .await?;
            }
            Ok(())
        }
        "sr-create" => {
            let host = match cx.params.get("host-uuid") {
                Some(_) => obj(cx, "host", "host-uuid").await?,
                None => select_host(cx, &[])?,
            };
            let size = match cx.params.get("physical-size") {
                Some(p) => bytes_of_string("physical-size", p)?,
                None => 0,
            };
            let sr = cx
                .call_str(
                    "SR.create",
                    vec![
                        s(host),
                        map_arg(cx, "device-config"),
                        Value::Int(size),
                        s(cx.params.reqd("name-label")?),
                        s(cx.params.get("name-description").unwrap_or("")),
                        s(cx.params.reqd("type")?),
                        s(cx.params.get("content-type").unwrap_or("")),
                        Value::Bool(bool_param(cx, "shared", false)?),
                        map_arg(cx, "sm-config"),
                    ],
                )
                .await?;
            let u = uuid_of(cx, &CLASS_SR, &sr);
            cx.lines(vec![u]).await
        }
        "sr-scan" => {
            let sr = obj(cx, "SR", "uuid").await?;
            cx.call("SR.scan", vec![s(sr)]).await.map(|_| ())
        }
        "sr-introduce" => {
            let sr = cx
                .call_str(
                    "SR.introduce",
                    vec![
                        s(cx.params.reqd("uuid")?),
                        s(cx.params.reqd("name-label")?),
                        s(cx.params.get("name-description").unwrap_or("")),
                        s(cx.params.reqd("type")?),
                        s(cx.params.get("content-type").unwrap_or("")),
                        Value::Bool(bool_param(cx, "shared", false)?),
                        map_arg(cx, "sm-config"),
                    ],
                )
                .await?;
            let u = uuid_of(cx, &CLASS_SR, &sr);
            cx.lines(vec![u]).await
        }
        "sr-forget" => {
            let sr = obj(cx, "SR", "uuid").await?;
            cx.call("SR.forget", vec![s(sr)]).await.map(|_| ())
        }
        "pbd-create" => {
            let host = obj(cx, "host", "host-uuid").await?;
            let sr = obj(cx, "SR", "sr-uuid").await?;
            let rec = ctor(
                &CLASS_PBD,
                vec![("host", s(host)), ("SR", s(sr)), ("device_config", map_arg(cx, "device-config"))],
            );
            let pbd = cx.call_str("PBD.create", vec![rec]).await?;
            let u = uuid_of(cx, &CLASS_PBD, &pbd);
            cx.lines(vec![u]).await
        }
        "pbd-plug" | "pbd-unplug" => {
            let pbd = obj(cx, "PBD", "uuid").await?;
            let m = if name == "pbd-plug" { "PBD.plug" } else { "PBD.unplug" };
            cx.call(m, vec![s(pbd)]).await.map(|_| ())
        }
        "vbd-create" => {
            let vm = obj(cx, "VM", "vm-uuid").await?;
            let vdi = match cx.params.get("vdi-uuid") {
                Some(_) => obj(cx, "VDI", "vdi-uuid").await?,
                None => model::NULL_REF.to_string(),
            };
            let empty = vdi == model::NULL_REF;
            // xe's own spellings and checks (any case), before the API's.
            let mode = match cx.params.get("mode").map(str::to_ascii_lowercase).as_deref() {
                None | Some("rw") => "RW",
                Some("ro") => "RO",
                Some(_) => {
                    let x = cx.params.get("mode").unwrap_or_default();
                    return Err(CliError::Failure(format!("Unknown mode: {x} (should be \"ro\" or \"rw\"")));
                }
            };
            let ty = match cx.params.get("type").map(str::to_ascii_lowercase).as_deref() {
                None | Some("disk") => "Disk",
                Some("cd") => "CD",
                Some("floppy") => "Floppy",
                Some(_) => {
                    let x = cx.params.get("type").unwrap_or_default();
                    return Err(CliError::Failure(format!(
                        "\"Unknown type: {x} (should be \"cd\", \"disk\" or \"floppy\""
                    )));
                }
            };
            if ty == "Disk" && empty {
                return Err(CliError::Failure("Empty VBDs can only be made for type=CD".into()));
            }
            let rec = ctor(
                &CLASS_VBD,
                vec![
                    ("VM", s(vm)),
                    ("VDI", s(vdi)),
                    // `autodetect` picks the next free slot (VBD.create).
                    ("userdevice", s(cx.params.reqd("device")?)),
                    ("bootable", Value::Bool(bool_param(cx, "bootable", false)?)),
                    ("mode", s(mode)),
                    ("type", s(ty)),
                    ("unpluggable", Value::Bool(bool_param(cx, "unpluggable", true)?)),
                    ("empty", Value::Bool(empty)),
                ],
            );
            let vbd = cx.call_str("VBD.create", vec![rec]).await?;
            let u = uuid_of(cx, &CLASS_VBD, &vbd);
            cx.lines(vec![u]).await
        }
        "vbd-plug" | "vbd-destroy" => {
            let vbd = obj(cx, "VBD", "uuid").await?;
            let m = if name == "vbd-plug" { "VBD.plug" } else { "VBD.destroy" };
            cx.call(m, vec![s(vbd)]).await.map(|_| ())
        }
        "vbd-unplug" => {
            let vbd = obj(cx, "VBD", "uuid").await?;
            let m = if cx.params.flag("force") { "VBD.unplug_force" } else { "VBD.unplug" };
            cx.call(m, vec![s(vbd)]).await.map(|_| ())
        }
        other => Err(CliError::UnknownCommand(other.to_string())),
    }
}

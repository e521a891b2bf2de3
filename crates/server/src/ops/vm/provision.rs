//! Template provisioning: the disks a template's `other_config:disks`
//! asks for, made on the first start or by VM.provision.

use super::*;
use model::schema::{CLASS_SR, CLASS_VBD, CLASS_VDI};
use model::types::fields;

// -------------------------------------------------------------- provision

pub(super) struct ProvDisk {
    pub(super) device: String,
    pub(super) size: i64,
    pub(super) sr: String,
    pub(super) bootable: bool,
    pub(super) ty: String,
}

/// Read `<provision><disk device=… size=… sr=… bootable=… type=…/></provision>`.
pub(super) fn parse_provision(xml: &str) -> Result<Vec<ProvDisk>> {
    let bad = |m: &str| ApiError::InvalidValue { field: "other_config:disks".into(), value: m.to_string() };
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<disk") {
        rest = &rest[i + 5..];
        let end = rest.find('>').ok_or_else(|| bad("unterminated <disk>"))?;
        let attrs = &rest[..end];
        let get = |name: &str| -> Option<String> {
            let key = format!("{name}=\"");
            let p = attrs.find(&key)? + key.len();
            let q = attrs[p..].find('"')?;
            Some(attrs[p..p + q].to_string())
        };
        let size = get("size").and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| bad("disk without a valid size"))?;
        out.push(ProvDisk {
            device: get("device").ok_or_else(|| bad("disk without a device"))?,
            size,
            sr: get("sr").unwrap_or_default(),
            bootable: get("bootable").as_deref() == Some("true"),
            ty: get("type").unwrap_or_else(|| "system".into()),
        });
        rest = &rest[end..];
    }
    Ok(out)
}

pub(super) async fn do_provision(ctx: &Ctx, vm: &str) -> Result<()> {
    let s = &ctx.server;
    let c = vm_c();
    let row = s.row(c, vm)?;
    let oc = row.read(fields::vm::OTHER_CONFIG);
    let uuid = row.read(fields::vm::UUID);
    let disks = match oc.get("disks") {
        Some(x) if !x.trim().is_empty() => parse_provision(x)?,
        _ => vec![],
    };
    let mut made: Vec<(String, String)> = Vec::new();
    let outcome: Result<()> = async {
        for d in &disks {
            let sr = if d.sr.is_empty() {
                storage::default_sr(s)?
            } else {
                let st = s.db.read();
                st.table(&CLASS_SR)
                    .by_uuid(&d.sr)
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::UuidInvalid { r#type: "sr".into(), uuid: d.sr.clone() })?
            };
            let ty = match d.ty.as_str() {
                "system" | "user" | "ephemeral" | "suspend" | "crashdump" => d.ty.clone(),
                _ => "system".into(),
            };
            let vdi = storage::create_vdi(
                ctx,
                NewVdi {
                    sr: &sr,
                    name_label: String::new(),
                    name_description: "Created by template provisioner".into(),
                    virtual_size: d.size,
                    vdi_type: &ty,
                    sharable: false,
                    read_only: false,
                    other_config: Value::empty_map(),
                    sm_config: Value::Struct(vec![("vmhint".into(), Value::String(uuid.clone()))]),
                },
            )
            .await?;
            let vbd = crate::ops::new_vbd(
                ctx,
                vm,
                &vdi,
                &d.device,
                d.bootable,
                "RW",
                "Disk",
                ty != "system",
                Value::Struct(vec![("owner".into(), Value::from(""))]),
            )?;
            // The disk is named after its device, as xapi's provisioner does.
            let vdc = &CLASS_VDI;
            ctx.write(|tx| {
                tx.set(vdc, &vdi, fields::vdi::NAME_LABEL.index, Value::String(d.device.clone()));
                Ok(())
            })?;
            made.push((vbd, vdi));
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        for (vbd, vdi) in made {
            crate::logged(
                "removing a VBD made by a failed operation",
                ctx.write(|tx| {
                    tx.delete(&CLASS_VBD, &vbd);
                    Ok(())
                }),
            );
            crate::logged("removing a VDI made by a failed operation", storage::destroy_vdi(ctx, &vdi).await);
        }
        return Err(e);
    }
    ctx.write(|tx| {
        tx.update(c, vm, |r| {
            r.write(fields::vm::IS_A_TEMPLATE, false);
            if let Value::Struct(m) = &mut r.fields[fields::vm::OTHER_CONFIG.index] {
                m.retain(|(k, _)| k != "disks" && k != "postinstall");
            }
        });
        Ok(())
    })
}

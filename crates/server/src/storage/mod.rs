//! Storage: SR drivers (like xapi's SM plugins) and the VDI operations the
//! rest of the server uses. A file-backed local SR (`ext`) keeps each VDI as
//! a sparse file `<sr dir>/<vdi uuid>.raw`; the SR directory is the PBD's
//! `device_config:path`, or `<data dir>/sr/<sr uuid>`.

use crate::{class, field, put, ApiError, Ctx, Result, Server};
use model::{DateTime, Value};
use std::path::PathBuf;
use store::State;

/// A new VDI's description.
pub struct NewVdi<'a> {
    pub sr: &'a str,
    pub name_label: String,
    pub name_description: String,
    pub virtual_size: i64,
    pub vdi_type: &'a str,
    pub sharable: bool,
    pub read_only: bool,
    pub other_config: Value,
    pub sm_config: Value,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The directory holding an SR's files.
pub fn sr_dir(st: &State, data_dir: &std::path::Path, sr: &str) -> Option<PathBuf> {
    let src = class("SR");
    let row = st.get(src, sr)?;
    let uuid = s(row.get(field(src, "uuid")));
    let pbd = class("PBD");
    for p in crate::lifecycle::members(row.get(field(src, "PBDs"))) {
        if let Some(prow) = st.get(pbd, &p) {
            let dc = prow.get(field(pbd, "device_config"));
            if let Some(path) = dc.map_str("path").or_else(|| dc.map_str("location")).filter(|p| p.starts_with('/')) {
                return Some(PathBuf::from(path));
            }
        }
    }
    Some(data_dir.join("sr").join(uuid))
}

/// Where a VDI's data lives, if it has a file.
pub fn vdi_path(s: &Server, st: &State, vdi: &str) -> Option<PathBuf> {
    let c = class("VDI");
    let row = st.get(c, vdi)?;
    let sr = s_of(row.get(field(c, "SR")));
    let loc = s_of(row.get(field(c, "location")));
    let dir = sr_dir(st, &s.cfg.data_dir, &sr)?;
    if loc.contains('/') || loc.contains("..") {
        return None;
    }
    let ty = st.get(class("SR"), &sr).map(|r| s_of(r.get(field(class("SR"), "type")))).unwrap_or_default();
    Some(if ty == "iso" { dir.join(&loc) } else { dir.join(format!("{loc}.raw")) })
}

fn s_of(v: &Value) -> String {
    s(v)
}

/// pool.default_SR, or DEFAULT_SR_NOT_FOUND.
pub fn default_sr(s: &Server) -> Result<String> {
    let pc = class("pool");
    let st = s.db.read();
    let sr = st.get(pc, &s.pool).map(|r| s_of(r.get(field(pc, "default_SR")))).unwrap_or_default();
    if sr.is_empty() || sr == model::NULL_REF || st.get(class("SR"), &sr).is_none() {
        return Err(ApiError::DefaultSrNotFound { sr });
    }
    Ok(sr)
}

fn io(e: std::io::Error) -> ApiError {
    crate::internal(format!("storage: {e}"))
}

/// Keep an SR's utilisation figures true after a change.
pub fn refresh_sr_usage(ctx: &Ctx, sr: &str) -> Result<()> {
    let (src, vc) = (class("SR"), class("VDI"));
    ctx.write(|tx| {
        let Some(row) = tx.get(src, sr).cloned() else { return Ok(()) };
        let mut virt = 0i64;
        let mut phys = 0i64;
        for v in crate::lifecycle::members(row.get(field(src, "VDIs"))) {
            if let Some(vr) = tx.get(vc, &v) {
                virt += vr.get(field(vc, "virtual_size")).as_int().unwrap_or(0);
                phys += vr.get(field(vc, "physical_utilisation")).as_int().unwrap_or(0);
            }
        }
        tx.update(src, sr, |r| {
            put(r, "virtual_allocation", Value::Int(virt));
            put(r, "physical_utilisation", Value::Int(phys));
        });
        Ok(())
    })
}

/// Bytes actually allocated to a file.
pub fn allocated(path: &std::path::Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| (m.blocks() * 512) as i64).unwrap_or(0)
}

/// Create a VDI: its backing file, then its record.
pub async fn create_vdi(ctx: &Ctx, v: NewVdi<'_>) -> Result<String> {
    let s = &ctx.server;
    let uuid = model::new_uuid();
    let (dir, sr_type) = {
        let st = s.db.read();
        let row = st.get(class("SR"), v.sr).ok_or_else(|| crate::handle_invalid(class("SR"), v.sr))?;
        (sr_dir(&st, &s.cfg.data_dir, v.sr), s_of(row.get(field(class("SR"), "type"))))
    };
    if sr_type == "iso" {
        return Err(ApiError::SrOperationNotSupported { sr: v.sr.to_string() });
    }
    let dir = dir.ok_or_else(|| crate::internal("SR has no directory"))?;
    let path = dir.join(format!("{uuid}.raw"));
    let size = v.virtual_size.max(0);
    let p2 = path.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(p2.parent().unwrap_or(std::path::Path::new("/")))?;
        let f = std::fs::File::create(&p2)?;
        f.set_len(size as u64)?;
        f.sync_all()
    })
    .await
    .map_err(|e| crate::internal(e.to_string()))?
    .map_err(io)?;
    let r = model::new_ref();
    let now = DateTime::now();
    let res = ctx.write(|tx| {
        crate::seed::obj(
            tx,
            "VDI",
            &r,
            vec![
                ("uuid", Value::from(uuid.as_str())),
                ("name_label", Value::String(v.name_label)),
                ("name_description", Value::String(v.name_description)),
                ("SR", Value::from(v.sr)),
                ("virtual_size", Value::Int(size)),
                ("physical_utilisation", Value::Int(0)),
                ("type", Value::from(v.vdi_type)),
                ("sharable", Value::Bool(v.sharable)),
                ("read_only", Value::Bool(v.read_only)),
                ("other_config", v.other_config),
                ("sm_config", v.sm_config),
                ("location", Value::from(uuid.as_str())),
                ("managed", Value::Bool(true)),
                ("snapshot_time", Value::DateTime(now)),
            ],
        );
        Ok(())
    });
    if let Err(e) = res {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    refresh_sr_usage(ctx, v.sr)?;
    Ok(r)
}

/// Remove a VDI's file and record.
pub async fn destroy_vdi(ctx: &Ctx, vdi: &str) -> Result<()> {
    let s = &ctx.server;
    let (path, sr) = {
        let st = s.db.read();
        let row = st.get(class("VDI"), vdi).ok_or_else(|| crate::handle_invalid(class("VDI"), vdi))?;
        (vdi_path(s, &st, vdi), s_of(row.get(field(class("VDI"), "SR"))))
    };
    ctx.write(|tx| {
        tx.delete(class("VDI"), vdi);
        Ok(())
    })?;
    if let Some(p) = path {
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(p)).await;
    }
    refresh_sr_usage(ctx, &sr)
}

/// Copy a VDI's data into a new VDI on `sr` (sparse: zero blocks stay holes).
async fn duplicate(ctx: &Ctx, vdi: &str, sr: &str, name_suffix: &str, snapshot: bool) -> Result<String> {
    let s = &ctx.server;
    let vc = class("VDI");
    let (row, src_path) = {
        let st = s.db.read();
        let row = st.get(vc, vdi).cloned().ok_or_else(|| crate::handle_invalid(vc, vdi))?;
        (row, vdi_path(s, &st, vdi))
    };
    let get = |n: &str| row.get(field(vc, n)).clone();
    let new = create_vdi(
        ctx,
        NewVdi {
            sr,
            name_label: format!("{}{name_suffix}", s_of(&get("name_label"))),
            name_description: s_of(&get("name_description")),
            virtual_size: get("virtual_size").as_int().unwrap_or(0),
            vdi_type: get("type").as_str().unwrap_or("user"),
            sharable: get("sharable").as_bool().unwrap_or(false),
            read_only: get("read_only").as_bool().unwrap_or(false),
            other_config: get("other_config"),
            sm_config: get("sm_config"),
        },
    )
    .await?;
    let dst_path = vdi_path(s, &s.db.read(), &new);
    if let (Some(from), Some(to)) = (src_path, dst_path) {
        let task = ctx.task.clone();
        let srv = s.clone();
        let r = tokio::task::spawn_blocking(move || {
            sparse_copy(&from, &to, |p| {
                if let Some(t) = &task {
                    if srv.tasks.is_cancelling(t) {
                        return false;
                    }
                    crate::task::set_progress(&srv, t, p);
                }
                true
            })
        })
        .await
        .map_err(|e| crate::internal(e.to_string()))?;
        if let Err(e) = r {
            let _ = destroy_vdi(ctx, &new).await;
            return Err(e);
        }
    }
    if snapshot {
        ctx.write(|tx| {
            tx.update(vc, &new, |r| {
                put(r, "is_a_snapshot", true);
                put(r, "snapshot_of", vdi);
                put(r, "snapshot_time", DateTime::now());
            });
            Ok(())
        })?;
    }
    let phys = vdi_path(s, &s.db.read(), &new).map(|p| allocated(&p)).unwrap_or(0);
    ctx.write(|tx| {
        tx.set(vc, &new, field(vc, "physical_utilisation"), Value::Int(phys));
        Ok(())
    })?;
    refresh_sr_usage(ctx, sr)?;
    Ok(new)
}

/// Copy `from` to `to` in 1 MiB blocks, leaving all-zero blocks as holes.
/// `progress` gets 0..1 and returns false to cancel.
pub fn sparse_copy(from: &std::path::Path, to: &std::path::Path, mut progress: impl FnMut(f64) -> bool) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut src = std::fs::File::open(from).map_err(io)?;
    let len = src.metadata().map_err(io)?.len();
    let mut dst = std::fs::OpenOptions::new().write(true).open(to).map_err(io)?;
    dst.set_len(len).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < len {
        let n = src.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            dst.seek(SeekFrom::Start(off)).map_err(io)?;
            dst.write_all(&buf[..n]).map_err(io)?;
        }
        off += n as u64;
        if !progress(off as f64 / len.max(1) as f64) {
            return Err(ApiError::TaskCancelled { task: String::new() });
        }
    }
    dst.sync_all().map_err(io)
}

pub async fn clone_vdi(ctx: &Ctx, vdi: &str) -> Result<String> {
    let sr = sr_of(&ctx.server, vdi)?;
    duplicate(ctx, vdi, &sr, "", false).await
}

pub async fn snapshot_vdi(ctx: &Ctx, vdi: &str) -> Result<String> {
    let sr = sr_of(&ctx.server, vdi)?;
    duplicate(ctx, vdi, &sr, "", true).await
}

pub async fn copy_vdi(ctx: &Ctx, vdi: &str, sr: &str) -> Result<String> {
    duplicate(ctx, vdi, sr, "", false).await
}

pub fn sr_of(s: &Server, vdi: &str) -> Result<String> {
    let vc = class("VDI");
    let st = s.db.read();
    let row = st.get(vc, vdi).ok_or_else(|| crate::handle_invalid(vc, vdi))?;
    Ok(s_of(row.get(field(vc, "SR"))))
}

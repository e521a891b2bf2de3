//! `PUT /import` (an XVA, current or legacy, plain or compressed),
//! `PUT /import_metadata` (configuration onto existing disks) and
//! `PUT /import_raw_vdi` (one disk's bytes). As in xapi, the `200` head
//! goes out before the body is read; the outcome lands in the task.

use super::transfer::{self, HttpTask};
use super::{Auth, Head, Reply};
use crate::importexport::{self, import};
use crate::{storage, ApiError, Result, Server};
use model::schema::{CLASS_SR, CLASS_VBD, CLASS_VDI};
use model::types::fields;
use model::Value;
use std::io;
use std::sync::Arc;
use tokio::io::AsyncRead;

type Body<'a> = &'a mut (dyn AsyncRead + Unpin + Send);

fn flag(head: &Head, k: &str) -> bool {
    head.param(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Refuse before reading anything: the task fails, the client gets `code`
/// (500 for XenAPI errors, as xapi).
async fn refuse(s: &Server, task: &HttpTask, reply: &mut Reply<'_>, code: u16, e: ApiError) -> io::Result<()> {
    task.finish(s, &Err(e.clone()));
    match code {
        400 => reply.bad_request(&e.to_string()).await,
        403 => reply.forbidden().await,
        404 => reply.not_found().await,
        _ => reply.api_error(&e).await,
    }
}

fn ok_headers(task: &str) -> Vec<(&'static str, String)> {
    vec![
        ("connection", "close".to_string()),
        ("task-id", task.to_string()),
        ("content-type", "application/octet-stream".to_string()),
    ]
}

pub async fn import(s: &Server, head: &Head, body: Body<'_>, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "put_import").await? else { return Ok(()) };
    let out = import_vm(s, &auth, head, body, reply, false).await;
    super::release(s, &auth);
    out
}

pub async fn import_metadata(s: &Server, head: &Head, body: Body<'_>, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "put_import_metadata").await? else { return Ok(()) };
    let out = import_vm(s, &auth, head, body, reply, true).await;
    super::release(s, &auth);
    out
}

/// The SR named by `sr_id` / `sr_uuid`, else the pool's default SR.
fn target_sr(s: &Server, head: &Head) -> std::result::Result<String, (u16, ApiError)> {
    let src = &CLASS_SR;
    if let Some(r) = head.param("sr_id").filter(|v| !v.is_empty()) {
        return super::find_param(s, src, Some(r)).ok_or((404, crate::handle_invalid(src, r)));
    }
    if let Some(u) = head.param("sr_uuid").filter(|v| !v.is_empty()) {
        return s
            .db
            .read()
            .table(src)
            .by_uuid(u)
            .map(str::to_string)
            .ok_or((404, ApiError::UuidInvalid { r#type: "SR".into(), uuid: u.to_string() }));
    }
    storage::default_sr(s).map_err(|e| (500, e))
}

async fn import_vm(
    s: &Server,
    auth: &Auth,
    head: &Head,
    body: Body<'_>,
    reply: &mut Reply<'_>,
    metadata: bool,
) -> io::Result<()> {
    let label = if metadata { "VM.import_metadata" } else { "VM.import" };
    if !metadata {
        if let Ok(sr) = target_sr(s, head) {
            if super::sent_to_data(s, head, reply, &std::iter::once(sr).collect(), None).await? {
                return Ok(());
            }
        }
    }
    let mut ctx = transfer::context(s, auth, head, label, None);
    let task = match HttpTask::start(&ctx, head, label).await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    ctx.task = Some(task.r.clone());
    let (restore, force) = (flag(head, "restore"), flag(head, "force"));
    let mode = if metadata {
        // vdi:<exported uuid>=<our uuid> remaps disks.
        let vdi_map =
            head.query.iter().filter_map(|(k, v)| k.strip_prefix("vdi:").map(|k| (k.to_string(), v.clone()))).collect();
        import::Mode::Metadata { vdi_map, dry_run: flag(head, "dry_run") }
    } else {
        let sr = match target_sr(s, head) {
            Ok(sr) => sr,
            Err((code, e)) => return refuse(s, &task, reply, code, e).await,
        };
        let iso = s.db.read().get(&CLASS_SR, &sr).is_some_and(|r| r.read(fields::sr::CONTENT_TYPE) == "iso");
        if iso {
            return refuse(s, &task, reply, 400, ApiError::SrOperationNotSupported { sr }).await;
        }
        if let Err(e) = storage::assert_plugged(s, &sr) {
            return refuse(s, &task, reply, 500, e).await;
        }
        import::Mode::Full { sr }
    };
    if head.header("transfer-encoding").is_some() {
        return refuse(s, &task, reply, 403, ApiError::ImportErrorCannotHandleChunked).await;
    }
    reply.continue_100(head).await?;
    reply.head(200, "OK", &ok_headers(&task.r)).await?;
    let cfg = import::Config { mode, restore, force, task: task.r.clone() };
    let out = importexport::receive::receive(s, Arc::new(ctx), task.clone(), cfg, head.content_length(), body).await;
    if let Err(e) = &out {
        tracing::info!("{label} failed: {e}");
    }
    task.finish(s, &out);
    Ok(())
}

// ---------------------------------------------------------------- raw VDI

pub async fn import_raw_vdi(s: &Server, head: &Head, body: Body<'_>, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "put_import_raw_vdi").await? else { return Ok(()) };
    let out = raw_vdi(s, &auth, head, body, reply).await;
    super::release(s, &auth);
    out
}

async fn raw_vdi(s: &Server, auth: &Auth, head: &Head, body: Body<'_>, reply: &mut Reply<'_>) -> io::Result<()> {
    let vdic = &CLASS_VDI;
    let Some(vdi) = super::find_param(s, vdic, head.param("vdi")) else { return reply.not_found().await };
    let srs = storage::srs_of(&s.db.read(), std::slice::from_ref(&vdi));
    if super::sent_to_data(s, head, reply, &srs, None).await? {
        return Ok(());
    }
    let mut ctx = transfer::context(s, auth, head, "VDI.import_raw", None);
    let task = match HttpTask::start(&ctx, head, "VDI.import_raw").await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    ctx.task = Some(task.r.clone());
    let format = head.param("format").unwrap_or("raw").to_ascii_lowercase();
    if !matches!(format.as_str(), "raw" | "vhd" | "qcow2") {
        let e = ApiError::InvalidValue { field: "format".into(), value: format };
        return refuse(s, &task, reply, 400, e).await;
    }
    if head.header("transfer-encoding").is_some() {
        return refuse(s, &task, reply, 403, ApiError::ImportErrorCannotHandleChunked).await;
    }
    if let Some(e) = in_use(s, &vdi) {
        return refuse(s, &task, reply, 500, e).await;
    }
    reply.continue_100(head).await?;
    reply.head(200, "OK", &ok_headers(&task.r)).await?;
    let (tx, reader) = transfer::body_channel();
    let length = head.content_length();
    let (srv, t, v) = (s.clone(), task.clone(), vdi.clone());
    let work = tokio::task::spawn_blocking(move || write_raw(&srv, &t, &v, &format, length, reader));
    let (_, out) = tokio::join!(transfer::pump(body, length, tx), work);
    let out = out.map_err(|e| crate::internal(e.to_string())).and_then(|r| r);
    if out.is_ok() {
        let _ = storage::refresh_vdi_usage(&ctx, &vdi).await;
    }
    // The result is the VDI, as xapi's.
    task.finish(s, &out.map(|()| Value::String(vdi.clone())));
    Ok(())
}

/// A VDI plugged into a running VM is not written under it.
fn in_use(s: &Server, vdi: &str) -> Option<ApiError> {
    let (vdic, vbdc) = (&CLASS_VDI, &CLASS_VBD);
    let st = s.db.read();
    let row = st.get(vdic, vdi)?;
    let attached = crate::rows::members(row.get(fields::vdi::VBDS.index))
        .iter()
        .any(|b| st.get(vbdc, b).is_some_and(|br| br.read(fields::vbd::CURRENTLY_ATTACHED)));
    attached.then(|| ApiError::VdiInUse { vdi: vdi.to_string(), operation: "import".into() })
}

/// What xapi reports when its disk tool fails mid-transfer.
fn device_io_error() -> ApiError {
    ApiError::VdiIoError { reason: "Device I/O errors".into() }
}

fn write_raw(
    s: &Server,
    task: &HttpTask,
    vdi: &str,
    format: &str,
    length: Option<u64>,
    mut input: transfer::ChanReader,
) -> Result<()> {
    use std::io::Read;
    let raw = storage::Raw::for_writing(s, vdi)?
        .ok_or_else(|| ApiError::VdiMissing { sr: String::new(), vdi: vdi.to_string() })?;
    // With changed-block tracking on a raw VDI, raw data is compared with
    // what is there and only the differing 64 KiB blocks are written, in a
    // CBT batch that records them at the end (`cbt::begin`); a VHD is
    // checked first and marks what it writes (`apply_vhd`); anything else
    // rewrites, and marks, the whole disk.
    let tracked = format == "raw" && raw.in_place() && storage::cbt_tracked(s, vdi) && storage::cbt_begin(s, vdi)?;
    if format != "vhd" && !tracked {
        storage::cbt_mark(s, vdi, None)?;
    }
    let mut written: Vec<(u64, u64)> = Vec::new();
    let ioe = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => ApiError::ImportErrorPrematureEof,
        _ => storage::driver::io_error("import", e),
    };
    // An image (vhd, qcow2) lands in a temporary file, then is converted in.
    let image = (format != "raw").then(|| raw.path.with_extension(format!("{}.in", model::new_uuid())));
    let limit = if image.is_some() { u64::MAX } else { raw.size };
    // An image is written next to the VDI, in the same SR: both count.
    let counters = s.sr_io.of_vdi(s, vdi);
    let result = (|| -> Result<()> {
        let f = match &image {
            Some(img) => std::fs::OpenOptions::new().write(true).create_new(true).open(img).map_err(ioe)?,
            None => raw.open(true)?,
        };
        if image.is_none() && !tracked {
            // Start from all holes so skipped zero blocks read as zeros.
            f.set_len(0).map_err(ioe)?;
            f.set_len(raw.size).map_err(ioe)?;
        }
        let mut buf = vec![0u8; 1 << 20];
        // Where the file's data at or after the write position starts, as
        // found before this import wrote there (`write_changed`).
        let mut data_from = 0u64;
        let mut done = 0u64;
        // Whether the body ended before its Content-Length. Xen Orchestra
        // sends streams of unknown length with a 1 PiB Content-Length and
        // closes once done, expecting what xapi does: the data that came is
        // written, then VDI_IO_ERROR (which it ignores) — an image that came
        // whole is still converted in.
        let mut short = false;
        loop {
            let n = match input.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    short = true;
                    break;
                }
                Err(e) => return Err(ioe(e)),
            };
            if n == 0 {
                break;
            }
            if done + n as u64 > limit {
                return Err(ApiError::ImportError {
                    msg: format!("the data is larger than the VDI's {} bytes", raw.size),
                });
            }
            if tracked {
                // Compared as it comes (the batch records the blocks at the end).
                write_changed(&f, done, &buf[..n], &mut written, &mut data_from)?;
            } else if !xva::is_zero(&buf[..n]) {
                // Zero blocks stay holes.
                use std::os::unix::fs::FileExt;
                f.write_all_at(&buf[..n], done).map_err(ioe)?;
                counters.wrote(n as u64);
            }
            done += n as u64;
            if let Some(len) = length.filter(|l| *l > 0) {
                task.progress(s, done as f64 / len as f64);
            }
            if task.cancelling(s) {
                return Err(ApiError::TaskCancelled { task: task.r.clone() });
            }
        }
        if let Some(img) = &image {
            if format == "vhd" {
                drop(f);
                return apply_vhd(s, task, vdi, img, &raw);
            }
            let convert = || -> Result<()> {
                let size = storage::qemu::image_size(img, format)?;
                if size as u64 > raw.size {
                    return Err(ApiError::ImportError {
                        msg: format!("the image's {size} bytes do not fit the VDI's {} bytes", raw.size),
                    });
                }
                storage::qemu::convert(img, format, &raw.path, "raw", true)
            };
            // A short body whose image is incomplete is an I/O error, as xapi's.
            convert().map_err(|e| if short { device_io_error() } else { e })?;
            raw.commit()
        } else {
            if tracked {
                // What the stream did not cover reads as zeros afterwards,
                // as with the untracked path's emptied file.
                let zeros = vec![0u8; WINDOW];
                let mut off = done;
                while off < raw.size {
                    let n = (raw.size - off).min(zeros.len() as u64) as usize;
                    write_changed(&f, off, &zeros[..n], &mut written, &mut data_from)?;
                    off += n as u64;
                }
            }
            f.sync_all().map_err(ioe)?;
            raw.commit()?;
            if short {
                return Err(device_io_error());
            }
            Ok(())
        }
    })();
    if let Some(img) = &image {
        let _ = std::fs::remove_file(img);
    }
    if tracked {
        // Also after a failure: what was written is recorded. Should this
        // fail, the batch's marker stays and the log over-claims.
        let ended = storage::cbt_end(s, vdi, &written);
        if let Err(e) = &ended {
            tracing::warn!(vdi, "closing the import's changed-block batch: {e}");
        }
        return result.and(ended);
    }
    result
}

/// Write a received VHD into the VDI, sized from its footer (never from its
/// geometry, whatever its creator). A fixed or dynamic image is the whole
/// disk (the VDI is emptied first); a differencing one is applied over the
/// VDI's current data, as a delta restore onto a copy of its base needs.
/// A broken image fails before anything is written.
fn apply_vhd(s: &Server, task: &HttpTask, vdi: &str, img: &std::path::Path, raw: &storage::Raw) -> Result<()> {
    use storage::vhd;
    let bad = |e: vhd::Error| match e {
        vhd::Error::Cancelled => ApiError::TaskCancelled { task: task.r.clone() },
        e => {
            tracing::info!("VHD import into VDI {vdi} refused: {e}");
            ApiError::VdiIoError { reason: format!("Device I/O errors: {e}") }
        }
    };
    let ioe = |e: io::Error| storage::driver::io_error("import", e);
    let file = std::fs::File::open(img).map_err(ioe)?;
    let image = vhd::Image::open(&file).map_err(bad)?;
    let differencing = image.footer.disk_type == vhd::DiskType::Differencing;
    // A qcow2 VDI's data must be in the temporary raw file before a
    // differencing image lands on it.
    let updating = if differencing { storage::Raw::for_reading(s, vdi)? } else { None };
    let target = updating.as_ref().unwrap_or(raw);
    // Changed-block tracking hears of the writes before they happen.
    if differencing {
        storage::cbt_mark(s, vdi, Some(&image.extents()))?;
    } else {
        storage::cbt_mark(s, vdi, None)?;
    }
    let out = target.open(true)?;
    if !differencing {
        out.set_len(0).map_err(ioe)?;
        out.set_len(raw.size).map_err(ioe)?;
    }
    image
        .apply(&file, &out, raw.size, |p| {
            task.progress(s, p);
            !task.cancelling(s)
        })
        .map_err(bad)?;
    out.sync_all().map_err(ioe)?;
    target.commit()
}

/// How much of the disk a tracked import zeroes at a time past the data.
const WINDOW: usize = 16 << 20;

/// Write `data` at `off` into a VDI with a changed-block log: only the
/// 64 KiB blocks whose bytes differ are written, and added to `written`
/// (the import's CBT batch records them when it ends).
///
/// Writes go forward, so where the file's next data started when last
/// looked up (`data_from`, from an offset at or before `off`) still holds:
/// a first fill looks once, not per call.
fn write_changed(
    f: &std::fs::File,
    off: u64,
    data: &[u8],
    written: &mut Vec<(u64, u64)>,
    data_from: &mut u64,
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let ioe = |e: io::Error| storage::driver::io_error("import", e);
    let end = off + data.len() as u64;
    if *data_from < end {
        *data_from = storage::files::next_data(f, off).unwrap_or(u64::MAX);
    }
    // A range wholly in a hole (a first fill) is zeros: nothing to read.
    let hole = *data_from >= end;
    let mut old = vec![0u8; if hole { 0 } else { data.len() }];
    let mut n = 0;
    while n < old.len() {
        match f.read_at(&mut old[n..], off + n as u64).map_err(ioe)? {
            0 => break,
            k => n += k,
        }
    }
    // Segments cut at 64 KiB boundaries, so each lies in one tracked block.
    let blk = storage::cbt::BLOCK;
    let mut changed = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let pos = off + at as u64;
        let end = (at + (blk - pos % blk) as usize).min(data.len());
        let differs = if hole { !xva::is_zero(&data[at..end]) } else { data[at..end] != old[at..end] };
        if differs {
            changed.push((at, end));
        }
        at = end;
    }
    // Adjacent changed blocks go in one write.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (a, b) in changed {
        match runs.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => runs.push((a, b)),
        }
    }
    for (a, b) in runs {
        f.write_all_at(&data[a..b], off + a as u64).map_err(ioe)?;
        let (start, len) = (off + a as u64, (b - a) as u64);
        match written.last_mut() {
            Some(last) if last.0 + last.1 == start => last.1 += len,
            _ => written.push((start, len)),
        }
    }
    Ok(())
}

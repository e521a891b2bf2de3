//! `GET /export` (a VM as an XVA stream), `GET /export_metadata` (its
//! configuration only) and `GET /export_raw_vdi` (one disk's bytes).

use super::transfer::{self, HttpTask};
use super::{Auth, Head, Reply};
use crate::importexport::export::{self, Options};
use crate::{lifecycle, storage, ApiError, Result, Server};
use model::schema::{CLASS_VDI, CLASS_VM};
use model::types::fields;
use model::types::VmOperations;
use model::Value;
use std::io;
use xva::{Compression, DiskSource};

fn flag(head: &Head, k: &str, default: bool) -> bool {
    match head.param(k) {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => default,
    }
}

fn octet_headers(task: &str, length: Option<u64>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("connection", "close".to_string()),
        ("task-id", task.to_string()),
        ("server", format!("xapi/{}", crate::rows::XAPI_VERSION)),
        ("content-type", "application/octet-stream".to_string()),
        ("content-disposition", "attachment; filename=\"export.xva\"".to_string()),
    ];
    if let Some(n) = length {
        h.push(("content-length", n.to_string()));
    }
    h
}

/// A disk whose data is all zeros (a VDI without a file).
struct Zeros(u64);

impl DiskSource for Zeros {
    fn size(&self) -> u64 {
        self.0
    }
    fn read_at(&mut self, _: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        Ok(())
    }
    fn next_data(&mut self, _: u64) -> Option<u64> {
        None
    }
}

/// A VDI's data whose reads are counted against its SR.
struct Counted<D> {
    disk: D,
    io: std::sync::Arc<crate::rrd::io::Counters>,
}

impl<D: DiskSource> DiskSource for Counted<D> {
    fn size(&self) -> u64 {
        self.disk.size()
    }
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.disk.read_at(off, buf)?;
        self.io.read(buf.len() as u64);
        Ok(())
    }
    fn read_vec(&mut self, off: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        self.disk.read_vec(off, len, buf)?;
        self.io.read(len as u64);
        Ok(())
    }
    fn next_data(&mut self, off: u64) -> Option<u64> {
        self.disk.next_data(off)
    }
}

/// An XenAPI error before any data: the task fails and the client gets a 500
/// page naming the error (xapi's behaviour for errors escaping a handler).
async fn refuse(s: &Server, task: &HttpTask, reply: &mut Reply<'_>, e: ApiError) -> io::Result<()> {
    task.finish(s, &Err(e.clone()));
    reply.api_error(&e).await
}

pub async fn export(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_export").await? else { return Ok(()) };
    let out = export_vm(s, &auth, head, reply).await;
    super::release(s, &auth);
    out
}

async fn export_vm(s: &Server, auth: &Auth, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let vmc = &CLASS_VM;
    let Some(vm) = super::find_object(s, vmc, head) else { return reply.not_found().await };
    let (srs, resident) = {
        let st = s.db.read();
        (storage::disk_srs(&st, &vm), st.read(&vm, fields::vm::RESIDENT_ON).map(|h| h.into_string()))
    };
    if super::sent_to_data(s, head, reply, &srs, resident.as_deref()).await? {
        return Ok(());
    }
    let compression = Compression::from_param(head.param("use_compression")).unwrap_or(Compression::None);
    let preserve = flag(head, "preserve_power_state", false);
    let mut ctx = transfer::context(s, auth, head, "VM.export", None);
    let task = match HttpTask::start(&ctx, head, "VM.export").await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    ctx.task = Some(task.r.clone());
    let op = match lifecycle::begin(&ctx, &vm, VmOperations::Export).await {
        Ok(op) => op,
        Err(e) => return refuse(s, &task, reply, e).await,
    };
    let opts = Options { with_snapshot_metadata: false, preserve_power_state: preserve };
    let (header, disks) = export::graph(s, std::slice::from_ref(&vm), opts);
    reply.set_http10();
    let res = reply.head(200, "OK", &octet_headers(&task.r, None)).await;
    let out = match res {
        Ok(()) => stream(s, &task, header, disks, compression, reply).await,
        Err(e) => Err(crate::internal(format!("client gone: {e}"))),
    };
    lifecycle::end(&ctx, op);
    if let Err(e) = &out {
        tracing::warn!("export of VM {vm} failed: {e}");
    }
    task.finish(s, &out.map(|()| Value::String(String::new())));
    Ok(())
}

/// Write the XVA on a blocking thread while the connection drains it.
async fn stream(
    s: &Server,
    task: &HttpTask,
    header: xva::Header,
    disks: Vec<export::Disk>,
    compression: Compression,
    reply: &mut Reply<'_>,
) -> Result<()> {
    let (w, rx) = transfer::reply_channel();
    let total: u64 = disks.iter().map(|d| d.size).sum::<u64>().max(1);
    let (srv, t) = (s.clone(), task.clone());
    let work = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut xw = xva::write::Writer::new(w, compression, &header).map_err(write_error)?;
        let mut done = 0u64;
        for d in &disks {
            let raw = storage::Raw::for_reading(&srv, &d.vdi)?;
            let mut src: Box<dyn DiskSource> = match &raw {
                Some(r) => Box::new(Counted {
                    disk: xva::FileDisk::from_file(r.open(false)?, d.size),
                    io: srv.sr_io.of_vdi(&srv, &d.vdi),
                }),
                None => Box::new(Zeros(d.size)),
            };
            let base = done;
            xw.add_disk(&d.id, src.as_mut(), &mut |n| {
                t.progress(&srv, (base + n) as f64 / total as f64);
                !srv.tasks.is_cancelling(&t.r)
            })
            .map_err(write_error)?;
            done += d.size;
        }
        xw.finish().map_err(write_error)?;
        Ok(())
    });
    let sent = transfer::drain(s, task, rx, reply.body()).await;
    let out = work.await.map_err(|e| crate::internal(format!("export worker: {e}")))?;
    match (out, sent) {
        // Whatever broke the stream, a cancelled task reports the cancellation.
        (Err(_), _) | (_, false) if task.cancelling(s) => Err(ApiError::TaskCancelled { task: task.r.clone() }),
        (Err(e), _) => Err(e),
        (Ok(()), false) => Err(crate::internal("the client closed the connection")),
        (Ok(()), true) => Ok(()),
    }
}

fn write_error(e: xva::Error) -> ApiError {
    match e {
        xva::Error::Cancelled => ApiError::TaskCancelled { task: String::new() },
        e => crate::internal(format!("export: {e}")),
    }
}

// ---------------------------------------------------------------- metadata

pub async fn export_metadata(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_export_metadata").await? else { return Ok(()) };
    let out = metadata(s, &auth, head, reply).await;
    super::release(s, &auth);
    out
}

/// VMs whose metadata `all=true` exports: everything but default templates.
fn all_vms(s: &Server, include_dom0: bool) -> Vec<String> {
    let vmc = &CLASS_VM;
    let st = s.db.read();
    let mut out: Vec<String> = st
        .table(vmc)
        .iter()
        .filter(|(_, r)| {
            let default = r.read(fields::vm::IS_DEFAULT_TEMPLATE)
                || (r.read(fields::vm::IS_A_TEMPLATE)
                    && r.get(fields::vm::OTHER_CONFIG.index).map_str("default_template") == Some("true"));
            !default && (include_dom0 || !r.read(fields::vm::IS_CONTROL_DOMAIN)) && !r.read(fields::vm::IS_A_SNAPSHOT)
        })
        .map(|(r, _)| r.clone())
        .collect();
    out.sort();
    out
}

async fn metadata(s: &Server, auth: &Auth, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let vmc = &CLASS_VM;
    let vms = if flag(head, "all", false) {
        all_vms(s, flag(head, "include_dom0", true))
    } else {
        match super::find_object(s, vmc, head) {
            Some(v) => vec![v],
            None => return reply.not_found().await,
        }
    };
    let mut ctx = transfer::context(s, auth, head, "VM.export_metadata", None);
    let task = match HttpTask::start(&ctx, head, "VM.export_metadata").await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    ctx.task = Some(task.r.clone());
    if !flag(head, "all", false) {
        let snapshot = s.db.read().get(vmc, &vms[0]).is_some_and(|r| r.read(fields::vm::IS_A_SNAPSHOT));
        if snapshot {
            let e = ApiError::OperationNotAllowed { reason: "Exporting metadata of a snapshot is not allowed".into() };
            return refuse(s, &task, reply, e).await;
        }
    }
    let mut ops = Vec::new();
    for vm in &vms {
        match lifecycle::begin(&ctx, vm, VmOperations::MetadataExport).await {
            Ok(op) => ops.push(op),
            Err(e) => {
                for op in ops {
                    lifecycle::end(&ctx, op);
                }
                return refuse(s, &task, reply, e).await;
            }
        }
    }
    let opts = Options { with_snapshot_metadata: flag(head, "export_snapshots", true), preserve_power_state: true };
    let (header, _) = export::graph(s, &vms, opts);
    for op in ops {
        lifecycle::end(&ctx, op);
    }
    // Small: built in memory and sent with its length, as xapi does.
    let bytes = match metadata_tar(&header) {
        Ok(b) => b,
        Err(e) => return refuse(s, &task, reply, crate::internal(format!("export: {e}"))).await,
    };
    reply.set_http10();
    reply.head(200, "OK", &octet_headers(&task.r, Some(bytes.len() as u64))).await?;
    let sent = {
        use tokio::io::AsyncWriteExt;
        let w = reply.body();
        w.write_all(&bytes).await.and(w.flush().await)
    };
    task.finish(s, &sent.map(|()| Value::String(String::new())).map_err(|e| crate::internal(e.to_string())));
    Ok(())
}

/// A tar holding only ova.xml.
pub fn metadata_tar(header: &xva::Header) -> std::result::Result<Vec<u8>, xva::Error> {
    xva::write::Writer::new(Vec::new(), Compression::None, header)?.finish()
}

// ---------------------------------------------------------------- raw VDI

pub async fn export_raw_vdi(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_export_raw_vdi").await? else { return Ok(()) };
    let out = raw_vdi(s, &auth, head, reply).await;
    super::release(s, &auth);
    out
}

async fn raw_vdi(s: &Server, auth: &Auth, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let vdic = &CLASS_VDI;
    let Some(vdi) = super::find_param(s, vdic, head.param("vdi")) else { return reply.not_found().await };
    let srs = storage::srs_of(&s.db.read(), std::slice::from_ref(&vdi));
    if super::sent_to_data(s, head, reply, &srs, None).await? {
        return Ok(());
    }
    let format = head.param("format").unwrap_or("raw").to_ascii_lowercase();
    let mut ctx = transfer::context(s, auth, head, "VDI.export_raw", None);
    let task = match HttpTask::start(&ctx, head, "VDI.export_raw").await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    ctx.task = Some(task.r.clone());
    // `base`: a differencing export, only the blocks that differ from it.
    let base = match head.param("base").filter(|b| !b.is_empty() && *b != "OpaqueRef:NULL") {
        None => None,
        Some(b) => match super::find_param(s, vdic, Some(b)) {
            Some(r) => Some(r),
            None => return refuse(s, &task, reply, crate::handle_invalid(vdic, b)).await,
        },
    };
    if let Some(b) = &base {
        // Only VHD can say "unchanged"; a raw or qcow2 stream would have to
        // send the whole disk, which a client would take for a delta.
        if format != "vhd" {
            let e = ApiError::InvalidValue { field: "format".into(), value: format!("{format} (with base=)") };
            return refuse(s, &task, reply, e).await;
        }
        if !storage::same_chain(s, &vdi, b) {
            tracing::info!("export of VDI {vdi} relative to {b} refused: not in the same chain");
            let e = ApiError::VdiIoError {
                reason: format!("Device I/O errors: the base VDI {b} is not a snapshot in the chain of {vdi}"),
            };
            return refuse(s, &task, reply, e).await;
        }
    }
    let out = if format == "vhd" {
        vhd_out(s, &task, &vdi, base.as_deref(), reply).await
    } else {
        raw_out(s, &task, &vdi, &format, reply).await
    };
    match out {
        Ok(()) => task.finish(s, &Ok(Value::String(String::new()))),
        Err(e) if !reply.head_sent() => return refuse(s, &task, reply, e).await,
        Err(e) => task.finish(s, &Err(e)),
    }
    Ok(())
}

async fn raw_out(s: &Server, task: &HttpTask, vdi: &str, format: &str, reply: &mut Reply<'_>) -> Result<()> {
    let (srv, v, fmt) = (s.clone(), vdi.to_string(), format.to_string());
    // The file to send: the raw data, or a converted copy (vhd, qcow2).
    let file = storage::blocking(move || storage::export_file(&srv, &v, &fmt)).await?;
    let counters = s.sr_io.of_vdi(s, vdi);
    let len = file.len;
    let h: Vec<(&str, String)> = vec![
        ("connection", "close".to_string()),
        ("task-id", task.r.clone()),
        ("content-type", "application/octet-stream".to_string()),
        ("content-length", len.to_string()),
    ];
    reply.head(200, "OK", &h).await.map_err(|e| crate::internal(e.to_string()))?;
    let (w, rx) = transfer::reply_channel();
    let (srv, t) = (s.clone(), task.r.clone());
    let work = tokio::task::spawn_blocking(move || -> Result<()> {
        use std::io::{Read, Write};
        let mut w = w;
        let mut f = file.open()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        let mut last = -1i64;
        while done < len {
            let want = buf.len().min((len - done) as usize);
            let n = f.read(&mut buf[..want]).map_err(|e| storage::driver::io_error("export", e))?;
            if n > 0 {
                counters.read(n as u64);
            }
            if n == 0 {
                // A file shorter than the disk: the rest is zeros.
                buf[..want].fill(0);
                w.write_all(&buf[..want]).map_err(|e| crate::internal(e.to_string()))?;
                done += want as u64;
            } else {
                w.write_all(&buf[..n]).map_err(|e| crate::internal(e.to_string()))?;
                done += n as u64;
            }
            let pct = (done * 100 / len.max(1)) as i64;
            if pct != last {
                last = pct;
                crate::task::set_progress(&srv, &t, done as f64 / len.max(1) as f64);
                if srv.tasks.is_cancelling(&t) {
                    return Err(ApiError::TaskCancelled { task: t.clone() });
                }
            }
        }
        w.flush().map_err(|e| crate::internal(e.to_string()))?;
        drop(file);
        Ok(())
    });
    let sent = transfer::drain(s, task, rx, reply.body()).await;
    let out = work.await.map_err(|e| crate::internal(e.to_string()))?;
    if !sent && task.cancelling(s) {
        return Err(ApiError::TaskCancelled { task: task.r.clone() });
    }
    out?;
    if !sent {
        return Err(crate::internal("the client closed the connection"));
    }
    Ok(())
}

/// Send a VDI as a sparse VHD (dynamic, or differencing against `base`),
/// made block by block from the raw data: the blocks to send are found
/// first, so the length is known, then streamed.
async fn vhd_out(s: &Server, task: &HttpTask, vdi: &str, base: Option<&str>, reply: &mut Reply<'_>) -> Result<()> {
    let (srv, v, b, t) = (s.clone(), vdi.to_string(), base.map(str::to_string), task.r.clone());
    // Finding the blocks is the first half of the progress.
    let image = storage::blocking(move || {
        storage::vhd_export(&srv, &v, b.as_deref(), |p| {
            crate::task::set_progress(&srv, &t, p / 2.0);
            !srv.tasks.is_cancelling(&t)
        })
    })
    .await
    .map_err(|e| match e {
        ApiError::TaskCancelled { .. } => ApiError::TaskCancelled { task: task.r.clone() },
        e => e,
    })?;
    let h: Vec<(&str, String)> = vec![
        ("connection", "close".to_string()),
        ("task-id", task.r.clone()),
        ("content-type", "application/vhd".to_string()),
        ("content-length", image.layout.image_len().to_string()),
    ];
    reply.head(200, "OK", &h).await.map_err(|e| crate::internal(e.to_string()))?;
    let (w, rx) = transfer::reply_channel();
    let (srv, t) = (s.clone(), task.r.clone());
    let work = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut w = w;
        image.write(&mut w, |p| {
            crate::task::set_progress(&srv, &t, 0.5 + p / 2.0);
            !srv.tasks.is_cancelling(&t)
        })
    });
    let sent = transfer::drain(s, task, rx, reply.body()).await;
    let out = work.await.map_err(|e| crate::internal(e.to_string()))?;
    if !sent || matches!(out, Err(ApiError::TaskCancelled { .. })) {
        if task.cancelling(s) {
            return Err(ApiError::TaskCancelled { task: task.r.clone() });
        }
        out?;
        return Err(crate::internal("the client closed the connection"));
    }
    out
}

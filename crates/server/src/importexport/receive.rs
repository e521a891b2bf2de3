//! Receiving an XVA stream (current or legacy format): the objects are made
//! when its metadata arrives, then its disks are written, on a blocking
//! thread fed by the connection. Used by `PUT /import` and by VM.import of
//! a URL.

use super::transfer::{self, HttpTask};
use super::{import, legacy};
use crate::{storage, ApiError, Ctx, Result, Server};
use model::Value;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncRead;
use xva::read::{Meta, Target};
use xva::DiskSink;

type Body<'a> = &'a mut (dyn AsyncRead + Unpin + Send);

/// A disk being filled: the file (or a temporary raw one for qcow2).
struct RawSink {
    disk: xva::FileDisk,
    raw: storage::Raw,
    /// The SR's I/O counters.
    io: Arc<crate::rrd::io::Counters>,
}

impl DiskSink for RawSink {
    fn write_at(&mut self, off: u64, data: &[u8]) -> io::Result<()> {
        self.disk.write_at(off, data)?;
        self.io.wrote(data.len() as u64);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.disk.finish()?;
        self.raw.commit().map_err(|e| io::Error::other(e.to_string()))
    }
}

/// Read the stream on a blocking thread while the connection feeds it;
/// the result (the new VMs) is durable when this returns.
pub async fn receive(
    s: &Server,
    ctx: Arc<Ctx>,
    task: HttpTask,
    cfg: import::Config,
    length: Option<u64>,
    body: Body<'_>,
) -> Result<Value> {
    let (tx, reader) = transfer::body_channel();
    let rt = tokio::runtime::Handle::current();
    let (srv, c2) = (s.clone(), ctx.clone());
    let work = tokio::task::spawn_blocking(move || run(rt, srv, c2, task, cfg, length, reader));
    let (_, out) = tokio::join!(transfer::pump(body, length, tx), work);
    let out = out.map_err(|e| crate::internal(format!("import worker: {e}")))?;
    ctx.durable().await?;
    out
}

fn run(
    rt: tokio::runtime::Handle,
    s: Server,
    ctx: Arc<Ctx>,
    task: HttpTask,
    cfg: import::Config,
    length: Option<u64>,
    input: transfer::ChanReader,
) -> Result<Value> {
    let made: Arc<Mutex<Option<import::Created>>> = Arc::default();
    let failure: Arc<Mutex<Option<ApiError>>> = Arc::default();
    let (m2, f2, ctx2, s2) = (made.clone(), failure.clone(), ctx.clone(), s.clone());
    let force = cfg.force;
    let mut on_meta = move |meta: &Meta| -> xva::Result<HashMap<String, Target>> {
        let created = match (meta, &cfg.mode) {
            (Meta::Current(h), _) => rt.block_on(import::create_objects(&ctx2, h, &cfg)),
            (Meta::Legacy(vm), import::Mode::Full { sr }) => {
                rt.block_on(legacy::create_objects(&ctx2, vm, sr, &cfg.task, cfg.force))
            }
            (Meta::Legacy(_), import::Mode::Metadata { .. }) => {
                Err(ApiError::ImportError { msg: "a legacy appliance cannot be imported as metadata".into() })
            }
        };
        let stash = |e: ApiError| {
            let msg = e.to_string();
            if let Ok(mut f) = f2.lock() {
                *f = Some(e);
            }
            xva::Error::Invalid(msg)
        };
        let created = created.map_err(stash)?;
        import::objects_created(&ctx2, &cfg.task);
        let mut targets = HashMap::new();
        let mut fail = None;
        for (id, vdi, size) in &created.disks {
            match storage::Raw::for_writing(&s2, vdi) {
                Ok(Some(raw)) => match raw.open(true) {
                    Ok(f) => {
                        let disk = xva::FileDisk::from_file(f, *size);
                        let io = s2.sr_io.of_vdi(&s2, vdi);
                        targets.insert(id.clone(), Target { sink: Box::new(RawSink { disk, raw, io }), size: *size });
                    }
                    Err(e) => fail = Some(e),
                },
                Ok(None) => {}
                Err(e) => fail = Some(e),
            }
        }
        if let Ok(mut m) = m2.lock() {
            *m = Some(created);
        }
        match fail {
            Some(e) => Err(stash(e)),
            None => Ok(targets),
        }
    };
    let total = length.unwrap_or(0);
    let t2 = task.clone();
    let mut progress = |n: u64| {
        if total > 0 {
            t2.progress(&s, n as f64 / total as f64 * 0.99);
        }
        !t2.cancelling(&s)
    };
    let res = xva::read::read(input, !force, &mut on_meta, &mut progress);
    drop(on_meta);
    let created = made.lock().ok().and_then(|mut m| m.take());
    let res = match res {
        Ok(_) => match &created {
            Some(c) => import::complete(&ctx, c, &task.r),
            None => Ok(Value::Array(vec![])),
        },
        Err(e) => Err(failure.lock().ok().and_then(|mut f| f.take()).unwrap_or_else(|| super::xva_error(e))),
    };
    if res.is_err() && !force {
        if let Some(c) = &created {
            tokio::runtime::Handle::current().block_on(import::undo(&ctx, c));
        }
    }
    res.map_err(|e| match e {
        ApiError::TaskCancelled { .. } => ApiError::TaskCancelled { task: task.r.clone() },
        e => e,
    })
}

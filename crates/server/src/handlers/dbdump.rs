//! `GET /pool/xmldbdump` (a dump of the whole database, `xe
//! pool-dump-database`) and `PUT /pool/xmldbdump` (`xe
//! pool-restore-database`, with `dry_run=true` to only check it).
//!
//! The path and the flow are xapi's (`pool_db_backup.ml`); the content is
//! not its XML but our own dump (`store::Db::dump`: a version line and the
//! snapshot encoding in one checksummed frame). A restore is checked whole,
//! staged in the store directory, and applied at the next start, as xapi
//! restores on restart: the server exits after `Config::db_restore_fuse`.

use super::transfer::{self, HttpTask};
use super::{Auth, Head, Reply};
use crate::{ApiError, Result, Server};
use model::schema::{CLASS_HOST, CLASS_PBD, CLASS_POOL, CLASS_SR};
use model::types::fields;
use model::Value;
use std::io;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Largest dump accepted: the snapshot frame's length is 32 bits.
const MAX_DUMP: u64 = (u32::MAX as u64) + 4096;

fn headers(task: &str, length: Option<u64>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("connection", "close".to_string()),
        ("task-id", task.to_string()),
        ("content-type", "application/octet-stream".to_string()),
    ];
    if let Some(n) = length {
        h.push(("content-length", n.to_string()));
    }
    h
}

pub async fn dump(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_pool_xml_db_sync").await? else { return Ok(()) };
    let out = send(s, &auth, head, reply).await;
    super::release(s, &auth);
    out
}

async fn send(s: &Server, auth: &Auth, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let ctx = transfer::context(s, auth, head, "pool_xml_db_sync", None);
    let task = match HttpTask::start(&ctx, head, "Dumping database").await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    let srv = s.clone();
    let bytes = match tokio::task::spawn_blocking(move || srv.db.dump()).await {
        Ok(b) => b,
        Err(e) => {
            let e = crate::internal(format!("database dump failed: {e}"));
            task.finish(s, &Err(e.clone()));
            return reply.api_error(&e).await;
        }
    };
    reply.head(200, "OK", &headers(&task.r, Some(bytes.len() as u64))).await?;
    let w = reply.body();
    let sent = async {
        w.write_all(&bytes).await?;
        w.flush().await
    }
    .await;
    let out = sent.map(|()| Value::String(String::new())).map_err(|e| {
        tracing::info!("database dump not delivered: {e}");
        crate::internal(format!("client gone: {e}"))
    });
    task.finish(s, &out);
    Ok(())
}

pub async fn restore(
    s: &Server,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "put_pool_xml_db_sync").await? else { return Ok(()) };
    let out = receive(s, &auth, head, body, reply).await;
    super::release(s, &auth);
    out
}

async fn receive(
    s: &Server,
    auth: &Auth,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    let ctx = transfer::context(s, auth, head, "pool_xml_db_sync", None);
    let task = match HttpTask::start(&ctx, head, "Reading database").await {
        Ok(t) => t,
        Err(e) => return reply.api_error(&e).await,
    };
    // As xapi: the length must be known; a body that ends before it (Xen
    // Orchestra sends a huge length for a stream of unknown size) is taken
    // as it is, and the dump's own framing decides whether it is whole.
    let Some(len) = head.content_length() else {
        let why = "a database restore needs a Content-Length";
        task.finish(s, &Err(ApiError::RestoreScriptFailed { log: why.into() }));
        return reply.bad_request(why).await;
    };
    let dry_run = head.param("dry_run") == Some("true");
    reply.continue_100(head).await?;
    reply.head(200, "OK", &headers(&task.r, None)).await?;
    let mut buf = Vec::new();
    let read = body.take(len.min(MAX_DUMP + 1)).read_to_end(&mut buf).await;
    let out = match read {
        Err(e) => Err(ApiError::RestoreScriptFailed { log: format!("reading the dump: {e}") }),
        Ok(n) if n as u64 > MAX_DUMP => {
            Err(ApiError::RestoreScriptFailed { log: "the upload is larger than any database dump".into() })
        }
        Ok(_) => {
            let srv = s.clone();
            tokio::task::spawn_blocking(move || check_and_stage(&srv, &buf, dry_run))
                .await
                .unwrap_or_else(|e| Err(crate::internal(format!("restore failed: {e}"))))
        }
    };
    match &out {
        Ok(()) if !dry_run => {
            let fuse = s.cfg.db_restore_fuse;
            tracing::warn!(
                "a database restore is staged; xapid exits in {} s and applies it when it starts again",
                fuse.as_secs_f64()
            );
            let srv = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(fuse).await;
                srv.exit.send_replace(true);
            });
        }
        Ok(()) => {}
        Err(e) => tracing::info!("database restore refused: {e}"),
    }
    task.finish(s, &out.map(|()| Value::String(String::new())));
    Ok(())
}

/// Check a dump whole (format, checksum, every row, a pool whose master is
/// in it) and, unless a dry run, stage it for the next start.
fn check_and_stage(s: &Server, bytes: &[u8], dry_run: bool) -> Result<()> {
    let st = store::read_dump(bytes).map_err(|e| match e {
        store::DumpError::NotADump | store::DumpError::Version(_) => {
            tracing::info!("database restore: {e}");
            ApiError::RestoreIncompatibleVersion
        }
        e => ApiError::RestoreScriptFailed { log: e.to_string() },
    })?;
    let (pc, hc) = (&CLASS_POOL, &CLASS_HOST);
    let pools: Vec<_> = st.table(pc).iter().collect();
    let [(_, pool)] = pools.as_slice() else {
        return Err(ApiError::RestoreScriptFailed {
            log: format!("the dump holds {} pools, expected one", pools.len()),
        });
    };
    let master = pool.fields[fields::pool::MASTER.index].as_str().unwrap_or("").to_string();
    if st.get(hc, &master).is_none() {
        return Err(ApiError::RestoreScriptFailed { log: format!("the pool's master {master} is not in the dump") });
    }
    if dry_run {
        return Ok(());
    }
    s.db.stage_restore(bytes).map_err(|e| crate::internal(format!("staging the restore: {e}")))
}

/// After a restore: local SRs whose directory follows the seeded layout
/// (`<data dir>/sr/<SR uuid>`) of another data dir are moved to ours, so a
/// dump restored elsewhere never works on the source's disk files (as xapi
/// rewrites the restored host's identity to the machine it lands on). The
/// disks themselves are not in the dump; copy `sr/` over to keep them.
pub fn rehome_storage(db: &store::Db, data_dir: &Path) -> Result<()> {
    let (pbd, src) = (&CLASS_PBD, &CLASS_SR);
    let (dcf, srf, uuidf) = (fields::pbd::DEVICE_CONFIG.index, fields::pbd::SR.index, fields::sr::UUID.index);
    let (_, c) = db.write(|tx| {
        let st = tx.state();
        let mut changes = Vec::new();
        for (r, row) in st.table(pbd).iter() {
            let Some(srow) = row.get(srf).as_str().and_then(|sr| st.get(src, sr)) else { continue };
            let uuid = srow.get(uuidf).as_str().unwrap_or("").to_string();
            let Value::Struct(dc) = row.get(dcf) else { continue };
            let want = data_dir.join("sr").join(&uuid);
            let mut dc = dc.clone();
            let mut changed = false;
            for (k, v) in dc.iter_mut() {
                let Some(p) = v.as_str().filter(|_| k == "path" || k == "location").map(Path::new) else { continue };
                let seeded = !uuid.is_empty()
                    && p.file_name().is_some_and(|n| n == uuid.as_str())
                    && p.parent().and_then(Path::file_name).is_some_and(|n| n == "sr");
                if seeded && p != want {
                    tracing::warn!("restored SR {uuid}: {k} {} becomes {}", p.display(), want.display());
                    *v = Value::from(want.to_string_lossy().into_owned());
                    changed = true;
                }
            }
            if changed {
                changes.push((r.clone(), Value::Struct(dc)));
            }
        }
        for (r, v) in changes {
            tx.set(pbd, &r, dcf, v);
        }
        Ok::<_, ApiError>(())
    })?;
    db.durable_blocking(c).map_err(|e| crate::internal(e.to_string()))
}

//! Plumbing shared by transfers (the HTTP handlers' and VM.import's): the
//! task a transfer reports to, and the bridges between an async connection
//! and the blocking code that reads and writes disks.

use crate::{ApiError, Result, Server};
use bytes::Bytes;
use model::schema::CLASS_TASK;
use model::Value;
use std::io::{self, Read, Write};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The task behind a transfer: the caller's `task_id`, or one made for it
/// (and removed when the transfer ends, as xapi does).
#[derive(Clone)]
pub struct HttpTask {
    pub r: String,
    /// Made for the transfer: removed when it ends.
    pub(crate) own: bool,
    /// The master's task, copied here (a member doing the master's transfer).
    pub(crate) remote: bool,
    pub(crate) last_pct: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl HttpTask {
    /// A task that exists already and outlives the transfer (an API call's).
    pub fn existing(r: &str) -> HttpTask {
        HttpTask { r: r.to_string(), own: false, remote: false, last_pct: Default::default() }
    }

    /// Progress in 0..1, written at most once per percent (to the master's
    /// task every five).
    pub fn progress(&self, s: &Server, p: f64) {
        let pct = (p.clamp(0.0, 1.0) * 100.0) as i64 + 1;
        if self.last_pct.swap(pct, std::sync::atomic::Ordering::Relaxed) != pct {
            crate::task::set_progress(s, &self.r, p);
            if self.remote && pct % 5 == 0 {
                self.report(s, Value::Float(p.clamp(0.0, 1.0)));
            }
        }
    }

    /// Tell the master (in the background: progress comes from blocking
    /// threads, the outcome as the handler ends).
    fn report(&self, s: &Server, report: Value) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(task = %self.r, "no runtime to report the transfer's task to the master");
            return;
        };
        let (s, r) = (s.clone(), self.r.clone());
        rt.spawn(async move {
            match crate::pooling::report_task(&s, &r, report).await {
                // Cancelled on the master: the transfer here stops too.
                Ok(true) => s.tasks.request_cancel(&r),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(task = %r, "cannot report the transfer's task to the master: {:?}", e.to_wire())
                }
            }
        });
    }

    pub fn cancelling(&self, s: &Server) -> bool {
        s.tasks.is_cancelling(&self.r)
    }

    /// Record the outcome; a task made for the transfer goes away.
    pub fn finish(&self, s: &Server, out: &Result<Value>) {
        let out = match out {
            Err(ApiError::TaskCancelled { .. }) => Err(ApiError::TaskCancelled { task: self.r.clone() }),
            o => o.clone(),
        };
        crate::task::complete(s, &self.r, &out);
        if self.remote {
            self.report(s, crate::task::outcome_report(&out));
        }
        if self.own {
            let _ = s.db.write(|tx| {
                tx.delete(&CLASS_TASK, &self.r);
                Ok::<_, ApiError>(())
            });
            s.tasks.forget(&self.r);
        }
    }
}

// ------------------------------------------------------------ bridges

/// The blocking side of a request body the async side pumps in.
pub struct ChanReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

pub fn body_channel() -> (mpsc::Sender<io::Result<Bytes>>, ChanReader) {
    let (tx, rx) = mpsc::channel(16);
    (tx, ChanReader { rx, cur: Bytes::new() })
}

/// Feed a body (at most `limit` bytes) to a [`ChanReader`]. A body that ends
/// before its Content-Length reaches the reader as an unexpected EOF.
pub async fn pump(body: &mut (dyn AsyncRead + Unpin + Send), limit: Option<u64>, tx: mpsc::Sender<io::Result<Bytes>>) {
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let mut buf = vec![0u8; (256 << 10).min(left) as usize];
        match body.read(&mut buf).await {
            Ok(0) => {
                if limit.is_some() {
                    let _ = tx
                        .send(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the request body ended early")))
                        .await;
                }
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                left -= n as u64;
                if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                    return;
                }
            }
            // A body without a length ends when the stream does, and a TLS
            // peer that closes without close_notify (Python's ssl socket
            // close(), as the SDK's import sample does) still ended it:
            // xapi takes that as the end. With a length it stays an error.
            Err(e) if limit.is_none() && e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::debug!("length-less body ended without TLS close_notify: {e}");
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// The blocking side of a response body: writes are gathered into 1 MiB
/// pieces for the async side to send.
pub struct ChanWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const PIECE: usize = 1 << 20;

impl ChanWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.tx.blocking_send(Bytes::from(piece)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client gone"))
    }
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() && b.len() >= PIECE {
            // Large writes go out without a copy into the buffer.
            self.tx
                .blocking_send(Bytes::copy_from_slice(b))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client gone"))?;
            return Ok(b.len());
        }
        let n = b.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl xva::write::Sink for ChanWriter {
    /// A whole disk chunk goes out as its own piece, without a copy; what was
    /// gathered before it (tar headers) goes first.
    fn write_buf(&mut self, buf: Vec<u8>) -> io::Result<Vec<u8>> {
        if !self.buf.is_empty() {
            let pending = std::mem::replace(&mut self.buf, Vec::with_capacity(4096));
            self.tx
                .blocking_send(Bytes::from(pending))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client gone"))?;
        }
        let cap = buf.capacity();
        self.tx
            .blocking_send(Bytes::from(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(Vec::with_capacity(cap))
    }
}

impl Drop for ChanWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

pub fn reply_channel() -> (ChanWriter, mpsc::Receiver<Bytes>) {
    let (tx, rx) = mpsc::channel(8);
    (ChanWriter { tx, buf: Vec::with_capacity(PIECE) }, rx)
}

/// How long a write to a client that is not reading waits before the
/// transfer's task is checked for cancellation.
const STALL_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Send what a [`ChanWriter`] produces; returns false if the client went
/// away, or stopped reading and the task was cancelled (dropping the
/// receiver then stops the writer).
pub async fn drain(
    s: &Server,
    task: &HttpTask,
    mut rx: mpsc::Receiver<Bytes>,
    w: &mut (dyn AsyncWrite + Unpin + Send),
) -> bool {
    while let Some(b) = rx.recv().await {
        let mut pos = 0;
        while pos < b.len() {
            // A write that has not completed wrote nothing, so giving up on
            // it after a while loses no bytes.
            match tokio::time::timeout(STALL_CHECK, w.write(&b[pos..])).await {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(n)) => pos += n,
                Err(_) if task.cancelling(s) => return false,
                Err(_) => {}
            }
        }
    }
    w.flush().await.is_ok()
}

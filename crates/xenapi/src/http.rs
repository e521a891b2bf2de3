//! The HTTP side of the API: VM export/import (XVA), raw VDI transfer and
//! RRD statistics. Transfers stream (nothing is held in memory whole) and
//! report progress; the session authenticates them (`session_id`), and
//! imports and exports run under a task whose result or error they return.

use crate::transport::Body;
use crate::{Error, Result, Session, Task};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use model::types::{Sr, Vdi, Vm};
use model::Ref;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes done and, when known, the total.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, Option<u64>) + Send);

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", pct(v))).collect::<Vec<_>>().join("&")
}

impl Session {
    async fn get_stream(
        &self,
        path: &str,
        pairs: &[(&str, String)],
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: Progress<'_>,
    ) -> Result<u64> {
        let t = self.transport();
        let mut q = vec![("session_id", self.session_ref().into_string())];
        q.extend_from_slice(pairs);
        let req = Request::get(format!("{path}?{}", query(&q)))
            .header("host", t.endpoint.host_header())
            .body(crate::transport::full(Bytes::new()))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let resp = t.request(req).await?;
        if !resp.status().is_success() {
            return Err(Error::Status(resp.status().as_u16()));
        }
        let total = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let mut body = resp.into_body();
        let mut done = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Error::Http)?;
            if let Ok(data) = frame.into_data() {
                out.write_all(&data).await.map_err(Error::Io)?;
                done += data.len() as u64;
                progress(done, total);
            }
        }
        out.flush().await.map_err(Error::Io)?;
        Ok(done)
    }

    async fn put_stream(
        &self,
        path: &str,
        pairs: &[(&str, String)],
        mut input: impl AsyncRead + Unpin + Send + 'static,
        len: u64,
        progress: Progress<'_>,
    ) -> Result<()> {
        let t = self.transport();
        let mut q = vec![("session_id", self.session_ref().into_string())];
        q.extend_from_slice(pairs);
        let (tx, rx) = tokio::sync::mpsc::channel::<
            std::result::Result<hyper::body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>,
        >(8);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let body: Body = BodyExt::boxed(http_body_util::StreamBody::new(stream));
        let req = Request::put(format!("{path}?{}", query(&q)))
            .header("host", t.endpoint.host_header())
            .header("content-length", len)
            .body(body)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let send = tokio::spawn(async move { t.request(req).await });
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = input.read(&mut buf).await.map_err(Error::Io)?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(&buf[..n])))).await.is_err() {
                break;
            }
            progress(done, Some(len));
        }
        drop(tx);
        let resp = send.await.map_err(|e| Error::Protocol(e.to_string()))??;
        if !resp.status().is_success() {
            return Err(Error::Status(resp.status().as_u16()));
        }
        let _ = resp.into_body().collect().await;
        Ok(())
    }

    async fn http_task<T: model::XenType>(&self, label: &str) -> Result<Task<T>> {
        let r = self.task().create(label, "").await?;
        Ok(Task::new(self.clone(), r))
    }

    /// Export a VM as XVA into `out` (`compression`: None, "gzip" or "zstd").
    pub async fn export_vm(
        &self,
        vm: &Ref<Vm>,
        compression: Option<&str>,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: Progress<'_>,
    ) -> Result<u64> {
        let task: Task<String> = self.http_task("export").await?;
        let mut q = vec![("ref", vm.to_string()), ("task_id", task.task_ref().to_string())];
        if let Some(c) = compression {
            q.push(("use_compression", c.to_string()));
        }
        let n = self.get_stream("/export", &q, out, progress).await?;
        task.wait().await.map(|_| n).or_else(|e| if matches!(e, Error::Decode { .. }) { Ok(n) } else { Err(e) })
    }

    /// Import an XVA of `len` bytes; returns the new VMs.
    pub async fn import_vm(
        &self,
        input: impl AsyncRead + Unpin + Send + 'static,
        len: u64,
        sr: Option<&Ref<Sr>>,
        restore: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<Ref<Vm>>> {
        let task: Task<Vec<Ref<Vm>>> = self.http_task("import").await?;
        let mut q = vec![("task_id", task.task_ref().to_string())];
        if let Some(sr) = sr {
            q.push(("sr_id", sr.to_string()));
        }
        if restore {
            q.push(("restore", "true".to_string()));
        }
        self.put_stream("/import", &q, input, len, progress).await?;
        task.wait().await
    }

    /// Import an XVA file.
    pub async fn import_vm_file(
        &self,
        path: &std::path::Path,
        sr: Option<&Ref<Sr>>,
        progress: Progress<'_>,
    ) -> Result<Vec<Ref<Vm>>> {
        let f = tokio::fs::File::open(path).await.map_err(Error::Io)?;
        let len = f.metadata().await.map_err(Error::Io)?.len();
        self.import_vm(f, len, sr, false, progress).await
    }

    /// Download a VDI's contents (`format` "raw" or "vhd").
    pub async fn export_raw_vdi(
        &self,
        vdi: &Ref<Vdi>,
        format: &str,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: Progress<'_>,
    ) -> Result<u64> {
        self.get_stream("/export_raw_vdi", &[("vdi", vdi.to_string()), ("format", format.to_string())], out, progress)
            .await
    }

    /// Upload `len` bytes into an existing VDI.
    pub async fn import_raw_vdi(
        &self,
        vdi: &Ref<Vdi>,
        format: &str,
        input: impl AsyncRead + Unpin + Send + 'static,
        len: u64,
        progress: Progress<'_>,
    ) -> Result<()> {
        self.put_stream(
            "/import_raw_vdi",
            &[("vdi", vdi.to_string()), ("format", format.to_string())],
            input,
            len,
            progress,
        )
        .await
    }

    /// `/rrd_updates` as JSON text: statistics since `start` (Unix seconds).
    pub async fn rrd_updates(&self, start: i64, host: bool, cf: Option<&str>, interval: Option<u64>) -> Result<String> {
        let mut q = vec![("start", start.to_string()), ("json", "true".to_string())];
        if host {
            q.push(("host", "true".to_string()));
        }
        if let Some(c) = cf {
            q.push(("cf", c.to_string()));
        }
        if let Some(i) = interval {
            q.push(("interval", i.to_string()));
        }
        let mut out = Vec::new();
        self.get_stream("/rrd_updates", &q, &mut out, &mut |_, _| {}).await?;
        String::from_utf8(out).map_err(|e| Error::Protocol(e.to_string()))
    }
}

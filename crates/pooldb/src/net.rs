//! The engine's messages between hosts: JSON over HTTP POSTs to the
//! `/pool/…` paths of each host's HTTP listener, carrying the pool secret.

use crate::Tc;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The header that carries the pool secret.
pub const SECRET_HEADER: &str = "x-pool-secret";

/// POST `body` to `http://addr/path`; the status and body of the answer.
pub async fn post(
    addr: &str,
    path: &str,
    secret: &str,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    tokio::time::timeout(timeout, post_inner(addr, path, secret, body))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr} did not answer in time")))?
}

async fn post_inner(addr: &str, path: &str, secret: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    exchange(&mut s, addr, path, secret, body, false).await
}

/// The prefix of the paths whose connection becomes a raw stream.
pub const STREAM_PATH: &str = "/pool/stream/";

/// Open a raw stream: a request on `path`, then, after a 200 head, the
/// connection is the caller's (the head is read byte by byte so that no
/// byte of the stream is taken with it).
pub async fn open_stream(
    addr: &str,
    path: &str,
    secret: &str,
    timeout: Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{addr}: {m}"));
    let open = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{SECRET_HEADER}: {secret}\r\nContent-Length: 0\r\n\r\n");
        s.write_all(head.as_bytes()).await?;
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            if got.len() > 16384 {
                return Err(bad("the answer's head is too long".into()));
            }
            got.push(s.read_u8().await?);
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&got) {
            Ok(httparse::Status::Complete(_)) if resp.code == Some(200) => Ok(s),
            Ok(httparse::Status::Complete(_)) => Err(bad(format!("answered {}", resp.code.unwrap_or(0)))),
            _ => Err(bad("not an HTTP answer".into())),
        }
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr} did not answer in time")))?
}

/// One request and its answer on `s`; with `keep`, the connection stays
/// open for the next one (the answer must give its length).
async fn exchange(
    s: &mut tokio::net::TcpStream,
    addr: &str,
    path: &str,
    secret: &str,
    body: &[u8],
    keep: bool,
) -> std::io::Result<(u16, Vec<u8>)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{SECRET_HEADER}: {secret}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep { "keep-alive" } else { "close" }
    );
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    s.write_all(&msg).await?;
    // Read the head, then the body by its length (the other side may keep
    // the connection open), or to the end of the connection.
    let mut buf = Vec::with_capacity(4096);
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{addr}: {m}"));
    loop {
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("the connection closed before the answer's head"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return Err(bad("not an HTTP answer")),
        };
        let code = resp.code.ok_or_else(|| bad("no status"))?;
        let header = |k: &str| resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(k)).map(|h| h.value.to_vec());
        let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
        let len: Option<usize> =
            header("content-length").and_then(|v| std::str::from_utf8(&v).ok().and_then(|v| v.trim().parse().ok()));
        let mut body = buf.split_off(n);
        match len {
            Some(len) if !chunked => {
                if body.len() < len {
                    let mut rest = vec![0u8; len - body.len()];
                    s.read_exact(&mut rest).await?;
                    body.extend_from_slice(&rest);
                }
                body.truncate(len);
            }
            _ if keep => return Err(bad("an answer without a length on a kept connection")),
            _ => {
                s.read_to_end(&mut body).await?;
            }
        }
        return Ok((code, if chunked { dechunk(&body).ok_or_else(|| bad("bad chunked body"))? } else { body }));
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..nl]).ok()?.split(';').next()?.trim(), 16).ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Makes a connection object per peer.
#[derive(Clone)]
pub struct Net {
    pub(crate) secret: Arc<str>,
}

pub struct Conn {
    target: u64,
    addr: String,
    secret: Arc<str>,
    /// Kept open between messages (a replication stream sends many).
    stream: Option<tokio::net::TcpStream>,
}

impl RaftNetworkFactory<Tc> for Net {
    type Network = Conn;
    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Conn {
        Conn { target, addr: node.addr.clone(), secret: self.secret.clone(), stream: None }
    }
}

impl Conn {
    /// The message on the kept connection (a new one if it broke: once more
    /// only when the kept one had been used before).
    async fn send(&mut self, path: &str, body: &[u8], ttl: Duration) -> std::io::Result<(u16, Vec<u8>)> {
        let timed_out =
            |addr: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr} did not answer in time"));
        let deadline = tokio::time::Instant::now() + ttl;
        loop {
            let reused = self.stream.is_some();
            if self.stream.is_none() {
                let s = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(&self.addr))
                    .await
                    .map_err(|_| timed_out(&self.addr))??;
                s.set_nodelay(true)?;
                self.stream = Some(s);
            }
            let Some(s) = self.stream.as_mut() else { continue };
            let r = tokio::time::timeout_at(deadline, exchange(s, &self.addr, path, &self.secret, body, true)).await;
            match r {
                Ok(Ok(out)) => return Ok(out),
                Ok(Err(e)) => {
                    self.stream = None;
                    if !reused {
                        return Err(e);
                    }
                }
                Err(_) => {
                    self.stream = None;
                    return Err(timed_out(&self.addr));
                }
            }
        }
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &mut self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let (code, out) =
            self.send(path, &body, option.hard_ttl()).await.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        if code != 200 {
            let e = std::io::Error::other(format!(
                "{} answered {code}: {}",
                self.addr,
                String::from_utf8_lossy(&out[..out.len().min(200)])
            ));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let res: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&out).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<Tc> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("/pool/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Tc>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>> {
        self.call("/pool/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call("/pool/raft/vote", &rpc, &option).await
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(300)))
    }
}

/// Serve the engine's messages from the other hosts of the pool on
/// `listener` (its own port: a member must answer the engine before its
/// API is up, which needs the pool's database).
pub(crate) async fn serve(pool: std::sync::Weak<crate::Pool>, listener: tokio::net::TcpListener) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("the pool database's listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(p) = pool.upgrade() else { return };
        tokio::spawn(async move {
            if let Err(e) = serve_conn(&p, sock).await {
                tracing::debug!(%peer, "a pool database connection ended: {e}");
            }
        });
    }
}

async fn serve_conn(pool: &crate::Pool, mut s: tokio::net::TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    loop {
        // One request: head, then a body of Content-Length bytes.
        let (path, secret, len, n) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let header = |k: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(k))
                            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                    };
                    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    break (req.path.unwrap_or("").to_string(), header(SECRET_HEADER).unwrap_or_default(), len, n);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return answer(&mut s, 400, b"bad request").await,
            }
            let mut chunk = [0u8; 16384];
            let got = s.read(&mut chunk).await?;
            if got == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..got]);
        };
        if len > (1 << 30) {
            return answer(&mut s, 413, b"too large").await;
        }
        // The body into the same buffer (its pages stay mapped from one
        // message to the next: fresh ones would be zeroed by the kernel).
        let have = buf.len();
        if have < n + len {
            buf.resize(n + len, 0);
            s.read_exact(&mut buf[have..]).await?;
        }
        let former_ok = path == "/pool/rejoin" && pool.check_former(&secret);
        if !pool.check_secret(&secret) && !former_ok {
            tracing::warn!(%path, "a pool database message without the pool secret, refused");
            return answer(&mut s, 403, b"forbidden").await;
        }
        if path.starts_with(STREAM_PATH) {
            let Some(f) = pool.stream_fn() else { return answer(&mut s, 503, b"no streams here yet").await };
            if buf.len() > n + len {
                return answer(&mut s, 400, b"a stream starts after the answer").await;
            }
            let head = "HTTP/1.1 200 -\r\nContent-Length: 0\r\n\r\n";
            s.write_all(head.as_bytes()).await?;
            s.flush().await?;
            f(path, s).await;
            return Ok(());
        }
        let out = pool.handle(&path, &buf[n..n + len]).await;
        buf.drain(..n + len);
        match out {
            Ok(out) => answer(&mut s, 200, &out).await?,
            Err((code, why)) => {
                tracing::warn!(%path, code, "a pool database message failed: {why}");
                answer(&mut s, code, why.as_bytes()).await?
            }
        }
    }
}

async fn answer(s: &mut tokio::net::TcpStream, code: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 {code} -\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await
}

//! Listeners (HTTP, HTTPS, Unix socket) and HTTP routing.
//!
//! `POST /jsonrpc` is JSON-RPC; a POST to any other path is XML-RPC (xapi
//! routes by longest prefix and `/` is XML-RPC). Bodies need a
//! Content-Length and may be at most 300 KiB (413 beyond); malformed requests
//! get xapi's HTML 500 page.
//!
//! Denial of service: connections are capped per listener kind (TCP and TLS
//! together, the Unix socket apart), and a client beyond the cap gets a short
//! `503` rather than waiting in the kernel's backlog (xapi stops accepting
//! instead). Request heads must arrive within `header_timeout`, idle
//! keep-alive time included; request bodies may not stall (no byte for
//! `body_timeout` while the server waits for one), but time the server spends
//! computing a reply (an `event.from` long-poll) or not reading (a slow disk
//! behind an import) never counts.

use crate::handlers::{self, Head, Reply};
use crate::session::{peer, PEER};
use crate::{rpc, Server};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

type Body = BoxBody<Bytes, io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

fn html(status: StatusCode, reason: &str, body: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(format!(
        "<html><body><h1>HTTP {} {reason}</h1>{body}</body></html>",
        status.as_u16()
    ))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert("connection", HeaderValue::from_static("close"));
    h.insert("cache-control", HeaderValue::from_static("no-cache, no-store"));
    r
}

pub fn internal_error(extra: &str) -> Response<Body> {
    let extra = escape_html(extra);
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error",
        &format!("An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.<h1> Additional information </h1>{extra}"),
    )
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Pieces of a streamed reply: big enough to keep syscalls few, small enough
/// that the first bytes leave early and memory stays low.
const PIECE: usize = 256 << 10;
/// Pieces encoded ahead of the socket.
const AHEAD: usize = 8;

fn rpc_reply(reply: rpc::Reply, content_type: &'static str) -> Response<Body> {
    let body = match reply {
        rpc::Reply::Whole(b) => full(b),
        // Encoded on a blocking thread a few pieces ahead of the socket, so
        // encoding goes on while the client drains what was sent. No
        // Content-Length: HTTP/1.1 clients get it chunked. A client that goes
        // away drops the receiver, which stops the encoder.
        rpc::Reply::Streamed(mut s) => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(AHEAD);
            tokio::task::spawn_blocking(move || loop {
                let mut out = Vec::with_capacity(PIECE + (PIECE >> 2));
                if !s.next_piece(&mut out, PIECE) || tx.blocking_send(Bytes::from(out)).is_err() {
                    break;
                }
            });
            let frames = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok(hyper::body::Frame::data(b)), rx))
            });
            http_body_util::StreamBody::new(frames).boxed()
        }
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("X-Requested-With"));
    r
}

fn options(req: &Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    let requested = req
        .headers()
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .map(|s| format!("{s}, X-Requested-With"))
        .unwrap_or_else(|| "X-Requested-With".to_string());
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("PUT"));
    if let Ok(v) = HeaderValue::from_str(&requested) {
        h.insert("access-control-allow-headers", v);
    }
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// A handler request that arrived on a keep-alive connection hyper parsed:
/// its body becomes a reader, its reply a head plus a streamed body.
async fn via_hyper(server: Server, req: Request<Incoming>, local: bool) -> Response<Body> {
    let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let http10 = req.version() == hyper::Version::HTTP_10;
    let head = Head::from_target(req.method().as_str(), &target, headers, http10, local);
    let body = req.into_body().into_data_stream().map_err(io::Error::other);
    let mut reader = Stall::new(tokio_util::io::StreamReader::new(body), body_limit(&server, &head.method));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (w, r) = tokio::io::duplex(1 << 20);
    let handler = async move {
        let mut reply = Reply::Hyper { head: Some(tx), body: w };
        let _ = handlers::route(&server, head, &mut reader, &mut reply).await;
    };
    tokio::spawn(PEER.scope(peer(), handler));
    let Ok((code, hdrs)) = rx.await else {
        return internal_error("the handler ended without answering");
    };
    let stream = tokio_util::io::ReaderStream::new(r).map_ok(hyper::body::Frame::data);
    let mut resp = Response::new(http_body_util::StreamBody::new(stream).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // An answer with a length keeps the connection: hyper would close right
    // after the last byte, which can reach undici 6 (Xen Orchestra's client)
    // before it has read the body and kill its process (see `linger`).
    let framed = hdrs.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in hdrs {
        if framed && k.eq_ignore_ascii_case("connection") {
            continue;
        }
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

async fn handle(server: Server, req: Request<Incoming>, local: bool) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if handlers::is_handler_path(req.method().as_str(), &path) {
        return Ok(via_hyper(server, req, local).await);
    }
    let resp = match *req.method() {
        Method::OPTIONS => options(&req),
        Method::POST => post(&server, req, &path, local).await,
        Method::GET | Method::HEAD => match ui(&req, &path) {
            Some(r) => r,
            None => html(StatusCode::NOT_FOUND, "Not Found", "The requested resource was not found."),
        },
        Method::PUT => html(StatusCode::FORBIDDEN, "forbidden", "Access to the requested resource is forbidden."),
        _ => html(StatusCode::NOT_IMPLEMENTED, "not implemented", "This method is not supported."),
    };
    Ok(resp)
}

/// A file of the management page (`webui`), with its caching, encoding and
/// security headers. It carries no CORS header: no other origin needs it.
fn ui(req: &Request<Incoming>, path: &str) -> Option<Response<Body>> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let asset = webui::get(&webui::Request {
        path,
        accept_encoding: header("accept-encoding"),
        if_none_match: header("if-none-match"),
        host: header("host"),
    })?;
    // hyper leaves the body out of a HEAD answer itself.
    let body = match asset.body {
        std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
        std::borrow::Cow::Owned(b) => Bytes::from(b),
    };
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(asset.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in asset.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    Some(r)
}

async fn post(server: &Server, req: Request<Incoming>, path: &str, local: bool) -> Response<Body> {
    let len =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let Some(len) = len else {
        return internal_error("We require a content-length: HTTP header");
    };
    let max = server.cfg.max_rpc_body;
    if len > max as u64 {
        tracing::info!(len, max, peer = ?peer(), "RPC body over the limit");
        // Read a moderate body to its end (briefly) before answering, so
        // that a client still sending is not reset before it reads the 413.
        if len <= DRAIN_413 {
            let mut body = req.into_body();
            let deadline = tokio::time::Instant::now() + DRAIN_TIME.min(server.cfg.body_timeout);
            while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, body.frame()).await {}
        }
        return html(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request entity too large",
            &format!("The request body is over the limit of {max} bytes."),
        );
    }
    let mut body = req.into_body();
    let mut buf = Vec::with_capacity(len as usize);
    loop {
        // A timeout per frame: a body that stops arriving is given up,
        // however long a steady one takes.
        match tokio::time::timeout(server.cfg.body_timeout, body.frame()).await {
            Ok(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    if buf.len() + d.len() > max {
                        return internal_error("Client_requested_size_over_limit");
                    }
                    buf.extend_from_slice(d);
                }
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!("reading an RPC body: {e}");
                return internal_error(&format!("reading the request body failed: {e}"));
            }
            Err(_) => {
                tracing::info!(peer = ?peer(), got = buf.len(), len, "RPC body stalled");
                return html(
                    StatusCode::REQUEST_TIMEOUT,
                    "request timeout",
                    "The request body stopped arriving before its Content-Length.",
                );
            }
        }
    }
    let body = Bytes::from(buf);
    if path == "/jsonrpc" {
        match rpc::json(server, &body, local).await {
            Ok(out) => rpc_reply(out, "application/json"),
            Err(e) => internal_error(&e.0),
        }
    } else {
        match rpc::xml(server, &body, local).await {
            Ok(out) => rpc_reply(out, "text/xml"),
            Err(e) => internal_error(&format!("Xmlrpc.Parse_error({})", e.0)),
        }
    }
}

/// Over-limit RPC bodies up to this size are read (and dropped) before the
/// 413, so the client sees the answer rather than a reset.
const DRAIN_413: u64 = 4 << 20;
/// The longest such a body is read for: a client that is slow to send it
/// gets the 413 anyway.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The no-progress limit for a handler request's body: uploads (`PUT`) get
/// one; a console's bytes (which may rest while a viewer watches) and the
/// CLI protocol (its own timeouts) do not.
fn body_limit(server: &Server, method: &str) -> Option<Duration> {
    (method == "PUT").then_some(server.cfg.body_timeout)
}

/// A reader that fails with `TimedOut` once a read has waited `limit`
/// without a byte arriving. The clock runs only while a read is pending,
/// so a server that reads slowly (backpressure from the disk) is not a
/// stalled client.
pub struct Stall<R> {
    inner: R,
    limit: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<R> Stall<R> {
    pub fn new(inner: R, limit: Option<Duration>) -> Stall<R> {
        Stall { inner, limit, sleep: None }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Stall<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.sleep = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let Some(limit) = this.limit else { return Poll::Pending };
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.sleep = None;
                    tracing::info!(peer = ?peer(), "request body stalled for {} s", limit.as_secs());
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the request body stalled")));
                }
                Poll::Pending
            }
        }
    }
}

/// Resolves once the stop flag is raised (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// Bytes already read from a connection, served before the rest of it.
struct Prefixed<IO> {
    prefix: Vec<u8>,
    pos: usize,
    inner: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    // Forwarded so that hyper writes head and body with one writev instead of
    // copying the body into its own buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Largest request head accepted (xapi allows 1 KiB; browsers need more).
const MAX_HEAD: usize = 16 * 1024;

/// Read until the end of the first request head. Ok(None): the connection
/// closed (or timed out) before a request arrived; Err: the head is too large.
async fn read_head<IO: AsyncRead + Unpin>(
    io: &mut IO,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> Result<Option<usize>, ()> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
        if buf.len() > MAX_HEAD {
            return Err(());
        }
        let n = match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            _ => return Ok(None),
        };
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serve one connection until it closes or the server shuts down. The first
/// request decides: handler paths (`/cli`, `/import`, `/export`…) get the
/// raw connection; everything else goes to hyper with keep-alive.
pub async fn serve_conn<IO>(server: Server, mut io: IO, local: bool, stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = Vec::with_capacity(2048);
    let end = match read_head(&mut io, &mut buf, server.cfg.header_timeout).await {
        Ok(Some(end)) => end,
        Ok(None) => return,
        Err(()) => {
            let body = "<html><body><h1>HTTP 431 request header fields too large</h1>Exceeded the maximum header size.</body></html>";
            let _ = io
                .write_all(format!("HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/html\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
                .await;
            return;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let raw = match req.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(_)) => {
            let (m, t) = (req.method.unwrap_or(""), req.path.unwrap_or("/"));
            let path = t.split('?').next().unwrap_or("");
            if handlers::is_handler_path(m, path) {
                let hs = req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                Some(Head::from_target(m, t, hs, req.version == Some(0), local))
            } else {
                None
            }
        }
        _ => None,
    };
    let rest = buf.split_off(end);
    match raw {
        Some(head) => {
            let (r, mut w) = tokio::io::split(io);
            let limit = body_limit(&server, &head.method);
            let mut reader = Stall::new(Prefixed { prefix: rest, pos: 0, inner: r }, limit);
            let http10 = head.http10;
            let mut reply = Reply::Raw { w: &mut w, http10, sent: false, framed: false };
            let _ = handlers::route(&server, head, &mut reader, &mut reply).await;
            // HTTP/1.0 clients (xe among them) read to the end of stream.
            if reply.framed() && !http10 {
                let _ = w.flush().await;
                linger(&mut reader, stop).await;
            }
            let _ = w.shutdown().await;
        }
        None => {
            buf.extend_from_slice(&rest);
            serve_hyper(server, Prefixed { prefix: buf, pos: 0, inner: io }, local, stop).await
        }
    }
}

/// How long a connection whose answer had a length waits for the client to
/// close it.
const LINGER: Duration = Duration::from_secs(30);

/// After an answer with a Content-Length (and `connection: close`) to an
/// HTTP/1.1 request, let the client close first: closing at once can reach the client before it has
/// read the body, and undici 6 (Xen Orchestra's HTTP client) then dies on an
/// assertion it cannot catch. Whatever else the client sends is discarded;
/// the wait ends at its end of stream, after [`LINGER`], or at shutdown.
async fn linger(reader: &mut (impl AsyncRead + Unpin), mut stop: watch::Receiver<bool>) {
    let drain = async {
        let mut scratch = [0u8; 4096];
        loop {
            match reader.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = drain => {}
        _ = tokio::time::sleep(LINGER) => tracing::debug!(peer = ?peer(), "the client kept the connection open; closing"),
        _ = stop.changed() => {}
    }
}

async fn serve_hyper<IO>(server: Server, io: IO, local: bool, mut stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = server.cfg.header_timeout;
    let svc = hyper::service::service_fn(move |req| handle(server.clone(), req, local));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .max_buf_size(1 << 20)
        // Each later request's head (and the idle wait before it) is bounded
        // as the first one is in read_head.
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn).await;
        }
    }
}

/// Where the server ended up listening.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub unix: Vec<PathBuf>,
    /// The NBD listeners (bound by `nbd::listen`).
    pub nbd: Vec<SocketAddr>,
}

/// Connections over a listener kind's cap being refused at once at most;
/// beyond that they are just closed, so refusing costs little too.
const MAX_REFUSING: usize = 64;

/// How long a refusal (TLS handshake, 503, reading what the client sent)
/// may take.
const REFUSE_TIME: Duration = Duration::from_secs(5);

/// The connection slots of one kind of listener (TCP and TLS share one).
#[derive(Clone)]
struct Slots {
    kind: &'static str,
    open: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    refused: Arc<std::sync::atomic::AtomicU64>,
}

impl Slots {
    fn new(kind: &'static str, max: usize) -> Slots {
        Slots {
            kind,
            open: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            refused: Default::default(),
        }
    }

    /// A slot for a new connection, or None at the cap.
    fn take(&self) -> Option<OwnedSemaphorePermit> {
        let p = self.open.clone().try_acquire_owned().ok();
        if p.is_none() {
            let n = self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // One line per thousand refusals: a flood must not flood the log.
            if n.is_multiple_of(1000) {
                tracing::warn!(listener = self.kind, refused = n + 1, "connection limit reached: refusing with 503");
            }
        }
        p
    }

    /// Answer a connection over the cap in the background, if few are.
    fn refuse<IO>(&self, io: IO, tls: Option<tokio_rustls::TlsAcceptor>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            tracing::debug!(listener = self.kind, "closing a connection over the limit without an answer");
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let answer = async move {
                match tls {
                    None => busy(io).await,
                    Some(a) => {
                        if let Ok(t) = a.accept(io).await {
                            busy(t).await
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(REFUSE_TIME, answer).await;
        });
    }
}

/// A short `503` and close. What the client sent is read (up to a bound)
/// after our side is shut, so closing does not reset the connection before
/// the client has read the answer.
async fn busy<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO) {
    const PAGE: &str =
        "<html><body><h1>HTTP 503 service unavailable</h1>Too many connections; please try again later.</body></html>";
    let r = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/html\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{PAGE}",
        PAGE.len()
    );
    if let Err(e) = async {
        io.write_all(r.as_bytes()).await?;
        io.shutdown().await
    }
    .await
    {
        tracing::debug!("refusing a connection over the limit: {e}");
        return;
    }
    let mut sink = [0u8; 4096];
    let mut left = 64usize << 10;
    while left > 0 {
        match io.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Bind every configured listener and start accepting.
pub async fn listen(server: Server, stop: watch::Receiver<bool>) -> io::Result<Bound> {
    let mut bound = Bound::default();
    let tcp_slots = Slots::new("tcp", server.cfg.max_connections);
    for addr in server.cfg.http.clone() {
        let l = TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("http {addr}: {e}")))?;
        bound.http.push(l.local_addr()?);
        let (s, st, slots) = (server.clone(), stop.clone(), tcp_slots.clone());
        tokio::spawn(async move { accept_tcp(s, l, None, slots, st).await });
    }
    if !server.cfg.https.is_empty() {
        let tls = Arc::new(crate::http::tls::server_config(&server.cfg, &server.certs)?);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        for addr in server.cfg.https.clone() {
            let l =
                TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("https {addr}: {e}")))?;
            bound.https.push(l.local_addr()?);
            let (s, st, a, slots) = (server.clone(), stop.clone(), acceptor.clone(), tcp_slots.clone());
            tokio::spawn(async move { accept_tcp(s, l, Some(a), slots, st).await });
        }
    }
    let unix_slots = Slots::new("unix", server.cfg.max_unix_connections);
    for path in server.cfg.unix.clone() {
        if path.exists() {
            let _ = std::fs::remove_file(&path);
        }
        if let Some(d) = path.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let l =
            UnixListener::bind(&path).map_err(|e| io::Error::new(e.kind(), format!("unix {}: {e}", path.display())))?;
        bound.unix.push(path.clone());
        let (s, mut st, slots) = (server.clone(), stop.clone(), unix_slots.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, _)) => match slots.take() {
                            Some(permit) => {
                                let (s, st) = (s.clone(), st.clone());
                                tokio::spawn(async move {
                                    let _permit = permit;
                                    serve_conn(s, sock, true, st).await
                                });
                            }
                            None => slots.refuse(sock, None),
                        },
                        Err(e) => { tracing::warn!("unix accept: {e}"); tokio::time::sleep(Duration::from_millis(50)).await; }
                    },
                    _ = stopped(&mut st) => break,
                }
            }
            let _ = std::fs::remove_file(&path);
        });
    }
    Ok(bound)
}

tokio::task_local! {
    /// Set while serving a connection that came over TLS.
    static OVER_TLS: bool;
}

/// Whether the connection being served came over TLS.
pub fn over_tls() -> bool {
    OVER_TLS.try_with(|t| *t).unwrap_or(false)
}

async fn accept_tcp(
    s: Server,
    l: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slots: Slots,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((sock, addr)) => {
                    let _ = sock.set_nodelay(true);
                    let Some(permit) = slots.take() else {
                        slots.refuse(sock, tls.clone());
                        continue;
                    };
                    let (s, st, peer) = (s.clone(), stop.clone(), Some(addr.ip()));
                    match &tls {
                        // pool.set_https_only: plain HTTP is closed at once.
                        None if s.https_only.load(std::sync::atomic::Ordering::Relaxed) => {
                            drop(sock);
                            drop(permit);
                        }
                        None => {
                            tokio::spawn(PEER.scope(peer, async move {
                                let _permit = permit;
                                serve_conn(s, sock, false, st).await
                            }));
                        }
                        Some(a) => {
                            let a = a.clone();
                            tokio::spawn(PEER.scope(peer, OVER_TLS.scope(true, async move {
                                let _permit = permit;
                                match tokio::time::timeout(Duration::from_secs(10), a.accept(sock)).await {
                                    Ok(Ok(t)) => serve_conn(s, t, false, st).await,
                                    Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                                    Err(_) => tracing::debug!("TLS handshake timed out"),
                                }
                            })));
                        }
                    }
                }
                Err(e) => { tracing::warn!("accept: {e}"); tokio::time::sleep(Duration::from_millis(50)).await; }
            },
            _ = stopped(&mut stop) => break,
        }
    }
}

pub mod tls {
    //! TLS for the HTTPS listener: the configured certificate, or a
    //! self-signed one generated into the data directory on first start.

    use crate::Config;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io;
    use std::sync::Arc;

    fn err(e: impl std::fmt::Display) -> io::Error {
        io::Error::other(e.to_string())
    }

    /// Load the certificate into `store` and build a configuration that
    /// asks the store at every handshake (so a new one needs no restart).
    pub fn server_config(cfg: &Config, store: &Arc<crate::certs::CertStore>) -> io::Result<rustls::ServerConfig> {
        let (cert_path, key_path) = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => {
                let c = cfg.data_dir.join("tls-cert.pem");
                let k = cfg.data_dir.join("tls-key.pem");
                if !c.exists() || !k.exists() {
                    let names = vec![cfg.hostname.clone(), "localhost".to_string(), cfg.address.clone()];
                    let ck = rcgen::generate_simple_self_signed(names).map_err(err)?;
                    std::fs::write(&c, ck.cert.pem())?;
                    std::fs::write(&k, ck.signing_key.serialize_pem())?;
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600))?;
                    }
                }
                (c, k)
            }
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .map_err(|e| err(format!("{}: {e}", cert_path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(format!("{}: {e}", cert_path.display())))?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| err(format!("{}: {e}", key_path.display())))?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(err)?;
        let ck = rustls::sign::CertifiedKey::new(certs, signer);
        ck.keys_match().map_err(|e| err(format!("{} and {}: {e}", cert_path.display(), key_path.display())))?;
        store.set(Arc::new(ck));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_cert_resolver(store.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stall_ends_a_body_that_stops() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut r = Stall::new(server, Some(Duration::from_millis(200)));
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).await.unwrap(), 5);
        let t0 = std::time::Instant::now();
        let e = r.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(190));
    }

    #[tokio::test]
    async fn stall_spares_steady_bodies_and_unbounded_readers() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut r = Stall::new(server, Some(Duration::from_millis(300)));
        let writer = tokio::spawn(async move {
            // Four pieces 150 ms apart: 600 ms in all, never 300 ms idle.
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                client.write_all(b"abcd").await.unwrap();
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < 16 {
            let n = r.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        // No limit: a read may wait as long as it likes.
        let (_c, server) = tokio::io::duplex(64);
        let mut r = Stall::new(server, None);
        assert!(tokio::time::timeout(Duration::from_millis(300), r.read(&mut buf)).await.is_err());
    }
}

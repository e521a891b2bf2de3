//! Listeners (HTTP, HTTPS, Unix socket) and HTTP routing.
//!
//! `POST /jsonrpc` is JSON-RPC; a POST to any other path is XML-RPC (xapi
//! routes by longest prefix and `/` is XML-RPC). Bodies need a
//! Content-Length and may be at most 300 KiB; malformed requests get xapi's
//! HTML 500 page.

use crate::{rpc, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

type Body = Full<Bytes>;

fn html(status: StatusCode, reason: &str, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!(
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

fn rpc_reply(body: Vec<u8>, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("X-Requested-With"));
    r
}

fn options(req: &Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
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

async fn handle(server: Server, req: Request<Incoming>, local: bool) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let resp = match *req.method() {
        Method::OPTIONS => options(&req),
        Method::POST => post(&server, req, &path, local).await,
        Method::GET if path == "/" => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"<html><head><title>xapi-rs</title></head><body><h1>xapi-rs</h1><p>XenAPI server: XML-RPC at POST /, JSON-RPC at POST /jsonrpc.</p></body></html>",
            )));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Method::GET | Method::HEAD => html(StatusCode::NOT_FOUND, "Not Found", "The requested resource was not found."),
        Method::PUT => html(StatusCode::FORBIDDEN, "forbidden", "Access to the requested resource is forbidden."),
        _ => html(StatusCode::NOT_IMPLEMENTED, "not implemented", "This method is not supported."),
    };
    Ok(resp)
}

async fn post(server: &Server, req: Request<Incoming>, path: &str, local: bool) -> Response<Body> {
    let len =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let Some(len) = len else {
        return internal_error("We require a content-length: HTTP header");
    };
    if len > server.cfg.max_rpc_body as u64 {
        return internal_error("Client_requested_size_over_limit");
    }
    let body = match http_body_util::Limited::new(req.into_body(), server.cfg.max_rpc_body).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return internal_error(&format!("reading the request body failed: {e}")),
    };
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

/// Resolves once the stop flag is raised (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// Serve one connection until it closes or the server shuts down.
pub async fn serve_conn<IO>(server: Server, io: IO, local: bool, mut stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(server.clone(), req, local));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .max_buf_size(1 << 20)
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
}

/// Bind every configured listener and start accepting.
pub async fn listen(server: Server, stop: watch::Receiver<bool>) -> io::Result<Bound> {
    let mut bound = Bound::default();
    for addr in server.cfg.http.clone() {
        let l = TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("http {addr}: {e}")))?;
        bound.http.push(l.local_addr()?);
        let (s, st) = (server.clone(), stop.clone());
        tokio::spawn(async move { accept_tcp(s, l, None, st).await });
    }
    if !server.cfg.https.is_empty() {
        let tls = Arc::new(crate::http::tls::server_config(&server.cfg)?);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        for addr in server.cfg.https.clone() {
            let l =
                TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("https {addr}: {e}")))?;
            bound.https.push(l.local_addr()?);
            let (s, st, a) = (server.clone(), stop.clone(), acceptor.clone());
            tokio::spawn(async move { accept_tcp(s, l, Some(a), st).await });
        }
    }
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
        let (s, mut st) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, _)) => { tokio::spawn(serve_conn(s.clone(), sock, true, st.clone())); }
                        Err(e) => { tracing::warn!("unix accept: {e}"); tokio::time::sleep(std::time::Duration::from_millis(50)).await; }
                    },
                    _ = stopped(&mut st) => break,
                }
            }
            let _ = std::fs::remove_file(&path);
        });
    }
    Ok(bound)
}

async fn accept_tcp(
    s: Server,
    l: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    let (s, st) = (s.clone(), stop.clone());
                    match &tls {
                        None => { tokio::spawn(serve_conn(s, sock, false, st)); }
                        Some(a) => {
                            let a = a.clone();
                            tokio::spawn(async move {
                                match tokio::time::timeout(std::time::Duration::from_secs(10), a.accept(sock)).await {
                                    Ok(Ok(t)) => serve_conn(s, t, false, st).await,
                                    Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                                    Err(_) => tracing::debug!("TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => { tracing::warn!("accept: {e}"); tokio::time::sleep(std::time::Duration::from_millis(50)).await; }
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

    pub fn server_config(cfg: &Config) -> io::Result<rustls::ServerConfig> {
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(err)
    }
}

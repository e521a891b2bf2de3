//! HTTP(S) and Unix-socket connections with keep-alive reuse.

use crate::{Error, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpStream, UnixStream};

pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// How to verify the server's certificate.
#[derive(Clone)]
pub enum Tls {
    /// Trust these CA certificates (PEM); a self-signed server certificate works too.
    CaPem(Vec<u8>),
    /// Accept any certificate. Only for test hosts: the connection is
    /// encrypted but the server is not authenticated.
    DangerAcceptAny,
}

/// Where the server is.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp { host: String, port: u16, tls: bool },
    Unix(PathBuf),
}

impl Endpoint {
    /// `http://host[:port]`, `https://host[:port]`, `host[:port]` (HTTPS),
    /// or `unix:/path` (the local socket, e.g. `unix:/var/lib/xcp/xapi`).
    pub fn parse(url: &str) -> Result<Endpoint> {
        if let Some(p) = url.strip_prefix("unix:") {
            return Ok(Endpoint::Unix(PathBuf::from(p)));
        }
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            (true, url)
        };
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => (
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse::<u16>().map_err(|_| Error::Url(url.to_string()))?,
            ),
            _ => (hostport.trim_matches(|c| c == '[' || c == ']').to_string(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(Error::Url(url.to_string()));
        }
        Ok(Endpoint::Tcp { host, port, tls })
    }

    /// The same endpoint kind on another host (HOST_IS_SLAVE redirects).
    pub fn with_host(&self, new_host: &str) -> Endpoint {
        match self {
            Endpoint::Tcp { port, tls, .. } => Endpoint::Tcp { host: new_host.to_string(), port: *port, tls: *tls },
            e => e.clone(),
        }
    }

    pub fn host_header(&self) -> String {
        match self {
            Endpoint::Tcp { host, port, .. } => {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            Endpoint::Unix(_) => "localhost".into(),
        }
    }
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn client_config(tls: &Tls) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(match tls {
        Tls::DangerAcceptAny => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider))).with_no_client_auth()
        }
        Tls::CaPem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                roots.add(c.map_err(|e| Error::Tls(e.to_string()))?).map_err(|e| Error::Tls(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    })
}

/// Boxed IO over any stream kind.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub struct Transport {
    pub endpoint: Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<Vec<SendRequest<Body>>>,
}

impl Transport {
    pub fn new(endpoint: Endpoint, tls: Option<&Tls>) -> Result<Transport> {
        let tls = match (&endpoint, tls) {
            (Endpoint::Tcp { tls: true, .. }, Some(t)) => Some(Arc::new(client_config(t)?)),
            (Endpoint::Tcp { tls: true, .. }, None) => {
                return Err(Error::Tls("https needs a CA certificate or Tls::DangerAcceptAny".into()))
            }
            _ => None,
        };
        Ok(Transport { endpoint, tls, idle: Mutex::new(Vec::new()) })
    }

    /// A fresh stream to the server (TLS-wrapped when needed).
    pub async fn stream(&self) -> Result<Box<dyn Io>> {
        match &self.endpoint {
            Endpoint::Unix(p) => Ok(Box::new(UnixStream::connect(p).await.map_err(Error::Io)?)),
            Endpoint::Tcp { host, port, .. } => {
                let s = TcpStream::connect((host.as_str(), *port)).await.map_err(Error::Io)?;
                let _ = s.set_nodelay(true);
                match &self.tls {
                    None => Ok(Box::new(s)),
                    Some(cfg) => {
                        let name = rustls::pki_types::ServerName::try_from(host.clone())
                            .map_err(|e| Error::Tls(e.to_string()))?;
                        let t =
                            tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, s).await.map_err(Error::Io)?;
                        Ok(Box::new(t))
                    }
                }
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>> {
        let io = self.stream().await?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(Error::Http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }

    fn take_idle(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn give_back(&self, c: SendRequest<Body>) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 16 {
                idle.push(c);
            }
        }
    }

    /// POST a small body and read the whole reply, reusing an idle
    /// connection when there is one (retried once on a fresh connection if
    /// the reused one turned out to be dead).
    pub async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<(hyper::StatusCode, Bytes)> {
        let body = Bytes::from(body);
        for attempt in 0..2 {
            let (mut c, reused) = match self.take_idle() {
                Some(c) if attempt == 0 => (c, true),
                _ => (self.connect().await?, false),
            };
            if c.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(Error::Protocol("connection closed".into()));
            }
            let req = Request::post(path)
                .header("host", self.endpoint.host_header())
                .header("content-type", content_type)
                .header("content-length", body.len())
                .header("user-agent", concat!("xenapi-rs/", env!("CARGO_PKG_VERSION")))
                .body(full(body.clone()))
                .map_err(|e| Error::Protocol(e.to_string()))?;
            let resp = match c.send_request(req).await {
                Ok(r) => r,
                Err(e) if reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) => continue,
                Err(e) => return Err(Error::Http(e)),
            };
            let status = resp.status();
            let bytes = resp.into_body().collect().await.map_err(Error::Http)?.to_bytes();
            self.give_back(c);
            return Ok((status, bytes));
        }
        Err(Error::Protocol("no usable connection".into()))
    }

    /// Send a request on a dedicated connection and return the response with
    /// its body still streaming (exports, imports, RRDs).
    pub async fn request(&self, req: Request<Body>) -> Result<Response<hyper::body::Incoming>> {
        let mut c = self.connect().await?;
        c.ready().await.map_err(Error::Http)?;
        c.send_request(req).await.map_err(Error::Http)
    }
}

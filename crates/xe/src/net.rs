//! Connections: the Unix socket first when the server is 127.0.0.1, else
//! TCP, with TLS unless `--nossl` (never TLS on-host, as the reference
//! client). The server's certificate is not verified: the reference client
//! runs stunnel with verification off, and xapi servers present
//! self-signed certificates; set `XE_TLS_VERIFY=1` to refuse any
//! certificate (we ship no trust store, so that only proves the TLS path).

use crate::options::Options;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub const DEFAULT_SOCKET: &str = "/var/lib/xcp/xapi";

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if std::env::var("XE_TLS_VERIFY").is_ok_and(|v| v == "1") {
            return Err(rustls::Error::General("certificate verification requested but no trust store".into()));
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls(host: &str, tcp: TcpStream) -> io::Result<Box<dyn Stream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).map_err(io::Error::other)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

pub fn is_localhost(s: &str) -> bool {
    s == "127.0.0.1"
}

pub fn socket_path() -> String {
    std::env::var("XE_UNIX_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string())
}

/// TCP (or TLS) to the server.
pub fn open_tcp(o: &Options, host: &str) -> io::Result<Box<dyn Stream>> {
    let use_tls = o.ssl && !is_localhost(host);
    let port = o.port.unwrap_or(if use_tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare, port))?;
    let _ = tcp.set_nodelay(true);
    if use_tls {
        tls(host, tcp)
    } else {
        Ok(Box::new(tcp))
    }
}

/// The CLI connection (and transfer connections): the local socket first.
pub fn open(o: &Options, host: &str) -> io::Result<Box<dyn Stream>> {
    if is_localhost(host) {
        if let Ok(u) = UnixStream::connect(socket_path()) {
            return Ok(Box::new(u));
        }
    }
    open_tcp(o, host)
}

/// The socket under a connection, to set its read timeout once the
/// connection is in use (SO_RCVTIMEO is shared by the clone).
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(t),
            Socket::Unix(s) => s.set_read_timeout(t),
        }
    }
}

/// As [`open`], with a handle on the socket underneath.
pub fn open_with_socket(o: &Options, host: &str) -> io::Result<(Box<dyn Stream>, Socket)> {
    if is_localhost(host) {
        if let Ok(u) = UnixStream::connect(socket_path()) {
            let sock = Socket::Unix(u.try_clone()?);
            return Ok((Box::new(u), sock));
        }
    }
    let use_tls = o.ssl && !is_localhost(host);
    let port = o.port.unwrap_or(if use_tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare, port))?;
    let _ = tcp.set_nodelay(true);
    let sock = Socket::Tcp(tcp.try_clone()?);
    let stream = if use_tls { tls(host, tcp)? } else { Box::new(tcp) };
    Ok((stream, sock))
}

/// Read one CRLF line (without it).
pub fn read_line(r: &mut dyn Read) -> io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b)? == 0 {
            if out.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            break;
        }
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
        if out.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "header line too long"));
        }
    }
    if out.last() == Some(&b'\r') {
        out.pop();
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

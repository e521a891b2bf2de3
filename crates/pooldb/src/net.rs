//! The engine's messages between hosts: JSON over HTTP POSTs to the
//! `/pool/…` paths of each host's engine port, inside TLS, carrying the pool
//! secret.
//!
//! TLS 1.3 both ways: each host presents its own engine certificate, and a
//! host that connects accepts only a certificate the pool knows (the
//! caller's [`Trust`]: the pool database's `host_internal` certificates),
//! so the secret, the database and a migrating guest's memory go only to a
//! host of the pool, and nobody on the wire reads them.

use crate::Tc;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether a peer's certificate (DER) is one of the pool's.
pub type Trust = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// A connection between two hosts of the pool, either end.
pub type PeerStream = tokio_rustls::TlsStream<TcpStream>;

/// How long a peer has for its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// This host's side of the engine's TLS: its certificate for the
/// connections it takes, the pool's for those it makes.
#[derive(Clone)]
pub struct Tls {
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// The certificate the acceptor presents (replaced by [`Tls::present`]).
    own: Option<Arc<Own>>,
    connector: tokio_rustls::TlsConnector,
    /// Connections kept open after a message, by address (None: each
    /// message has its own connection).
    idle: Option<Arc<Idle>>,
}

/// Open connections to other hosts' engine ports, waiting for the next
/// message: a member's write, a forwarded call or a heartbeat would
/// otherwise pay a TCP and TLS handshake each (a VM start on a member
/// makes several).
#[derive(Default)]
struct Idle {
    by_addr: std::sync::Mutex<std::collections::HashMap<String, Vec<(std::time::Instant, PeerStream)>>>,
}

/// At most this many idle connections per address (more are closed).
const IDLE_PER_ADDR: usize = 16;
/// A connection is used for this long after it was made, then closed: it
/// was checked against the pool's certificates when it was made, and the
/// pool may have forgotten that host since.
const CONN_LIFE: Duration = Duration::from_secs(60);

impl Idle {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<(std::time::Instant, PeerStream)>>> {
        self.by_addr.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept connection to `addr` that is still open, and when it was
    /// made, if any.
    fn take(&self, addr: &str) -> Option<(std::time::Instant, PeerStream)> {
        loop {
            let (made, mut s) = self.lock().get_mut(addr)?.pop()?;
            if made.elapsed() < CONN_LIFE && still_open(&mut s) {
                return Some((made, s));
            }
        }
    }

    fn put(&self, addr: &str, made: std::time::Instant, s: PeerStream) {
        let mut g = self.lock();
        let list = g.entry(addr.to_string()).or_default();
        list.retain(|(made, _)| made.elapsed() < CONN_LIFE);
        if list.len() < IDLE_PER_ADDR && made.elapsed() < CONN_LIFE {
            list.push((made, s));
        }
    }
}

/// Whether an idle connection is still open: the other side has neither
/// closed it nor sent anything unasked (a restarted host's old
/// connections read as closed). TLS session tickets are taken in passing.
fn still_open(s: &mut PeerStream) -> bool {
    use std::task::{Context, Poll};
    let mut byte = [0u8; 1];
    let mut buf = tokio::io::ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    matches!(std::pin::Pin::new(s).poll_read(&mut cx, &mut buf), Poll::Pending)
}

impl Tls {
    /// `cert` and `key`: this host's engine certificate; `trust`: which
    /// certificates the hosts it connects to may present.
    pub fn new(cert: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, trust: Trust) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = &[&rustls::version::TLS13];
        let own = Arc::new(Own { current: std::sync::RwLock::new(certified(&provider, cert, key)?) });
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(own.clone());
        Ok(Tls {
            acceptor: Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))),
            own: Some(own),
            connector: connector(provider, versions, trust)?,
            idle: Some(Arc::default()),
        })
    }

    /// Present `cert` from the next connection on (connections made stay
    /// as they are).
    pub fn present(&self, cert: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<(), String> {
        let Some(own) = &self.own else { return Err("this TLS takes no connections".into()) };
        let provider = rustls::crypto::ring::default_provider();
        let ck = certified(&provider, cert, key)?;
        *own.current.write().unwrap_or_else(|p| p.into_inner()) = ck;
        Ok(())
    }

    /// A client that takes any certificate: for `pool.join`, whose caller
    /// names the master by address only (xapi's join with TLS verification
    /// off); the secret it gets back is the first thing it can trust.
    pub fn any_server() -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let any: Trust = Arc::new(|_: &[u8]| true);
        // The master's HTTPS server (not an engine port) may answer without
        // a length: one connection per message.
        Ok(Tls {
            acceptor: None,
            own: None,
            connector: connector(provider, rustls::DEFAULT_VERSIONS, any)?,
            idle: None,
        })
    }

    /// A TLS connection to `addr` (host:port).
    async fn connect(&self, addr: &str) -> std::io::Result<PeerStream> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
        let s = tokio::time::timeout(HANDSHAKE, self.connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr}: no TLS handshake")))??;
        Ok(tokio_rustls::TlsStream::Client(s))
    }
}

/// The certificate an engine port presents.
#[derive(Debug)]
struct Own {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl rustls::server::ResolvesServerCert for Own {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn certified(
    provider: &rustls::crypto::CryptoProvider,
    cert: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let key = provider.key_provider.load_private_key(key).map_err(|e| format!("the engine's key: {e}"))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(cert, key)))
}

/// A client of `versions` that accepts the server certificates `trust` takes.
fn connector(
    provider: Arc<rustls::crypto::CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    trust: Trust,
) -> Result<tokio_rustls::TlsConnector, String> {
    let verifier = Pinned { trust, algs: provider.signature_verification_algorithms };
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client)))
}

/// Accepts a server certificate the pool knows, whatever names it carries
/// (hosts are reached by address, and their certificates are self-signed);
/// the handshake's signature is checked as usual.
struct Pinned {
    trust: Trust,
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the pool's certificates")
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if (self.trust)(end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The header that carries the pool secret.
pub const SECRET_HEADER: &str = "x-pool-secret";

/// POST `body` to `https://addr/path`; the status and body of the answer.
pub async fn post(
    tls: &Tls,
    addr: &str,
    path: &str,
    secret: &str,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    tokio::time::timeout(timeout, post_inner(tls, addr, path, secret, body))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr} did not answer in time")))?
}

/// [`post`] of a message whose answer must be 200: its body; otherwise what
/// went wrong, naming `addr`.
pub async fn ask(
    tls: &Tls,
    addr: &str,
    path: &str,
    secret: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let (code, out) = post(tls, addr, path, secret, body, timeout).await.map_err(|e| format!("{addr}: {e}"))?;
    if code != 200 {
        return Err(format!("{addr} answered {code}: {}", String::from_utf8_lossy(&out)));
    }
    Ok(out)
}

async fn post_inner(tls: &Tls, addr: &str, path: &str, secret: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let Some(idle) = &tls.idle else {
        let mut s = tls.connect(addr).await?;
        return exchange(&mut s, addr, path, secret, body, false).await;
    };
    // No retry on a kept connection that fails: the message may have been
    // taken (a forwarded call must not run twice). One that was closed
    // before is never used (`still_open`).
    let (made, mut s) = match idle.take(addr) {
        Some(kept) => kept,
        None => (std::time::Instant::now(), tls.connect(addr).await?),
    };
    let out = exchange(&mut s, addr, path, secret, body, true).await?;
    idle.put(addr, made, s);
    Ok(out)
}

/// The prefix of the paths whose connection becomes a raw stream.
pub const STREAM_PATH: &str = "/pool/stream/";

/// Open a raw stream: a request on `path`, then, after a 200 head, the
/// connection is the caller's (the head is read byte by byte so that no
/// byte of the stream is taken with it).
pub async fn open_stream(
    tls: &Tls,
    addr: &str,
    path: &str,
    secret: &str,
    timeout: Duration,
) -> std::io::Result<PeerStream> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{addr}: {m}"));
    let open = async {
        let mut s = tls.connect(addr).await?;
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{SECRET_HEADER}: {secret}\r\nContent-Length: 0\r\n\r\n");
        s.write_all(head.as_bytes()).await?;
        s.flush().await?;
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
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
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
    s.flush().await?;
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
    pub(crate) tls: Tls,
    pub(crate) pace: Arc<Pace>,
    pub(crate) encoded: Arc<Encoded>,
}

pub struct Conn {
    target: u64,
    addr: String,
    secret: Arc<str>,
    tls: Tls,
    /// Kept open between messages (a replication stream sends many).
    stream: Option<PeerStream>,
    pace: Arc<Pace>,
    lane: Arc<Lane>,
    encoded: Arc<Encoded>,
}

impl RaftNetworkFactory<Tc> for Net {
    type Network = Conn;
    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Conn {
        Conn {
            target,
            addr: node.addr.clone(),
            secret: self.secret.clone(),
            tls: self.tls.clone(),
            stream: None,
            lane: self.pace.lane(target),
            pace: self.pace.clone(),
            encoded: self.encoded.clone(),
        }
    }
}

/// The leader's entries as JSON, encoded once for every replication stream
/// (each follower is sent the same entries: with 60 of them, encoding per
/// stream was a tenth of the master's CPU). Bounded; an entry that fell out
/// is encoded again.
#[derive(Default)]
pub(crate) struct Encoded {
    entries: std::sync::Mutex<Encodings>,
}

/// Each entry's encoding by index (with its id: another leader may have
/// written that index), and their total size.
type Encodings = (std::collections::BTreeMap<u64, (openraft::LogId<u64>, Arc<[u8]>)>, usize);

/// What the encoded entries may hold, in bytes.
const ENCODED_LIMIT: usize = 16 << 20;

impl Encoded {
    fn lock(&self) -> std::sync::MutexGuard<'_, Encodings> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn entry(&self, e: &openraft::Entry<Tc>) -> serde_json::Result<Arc<[u8]>> {
        if let Some((id, bytes)) = self.lock().0.get(&e.log_id.index) {
            if *id == e.log_id {
                return Ok(bytes.clone());
            }
        }
        let bytes: Arc<[u8]> = serde_json::to_vec(e)?.into();
        let mut g = self.lock();
        let (map, size) = &mut *g;
        *size += bytes.len();
        if let Some((_, old)) = map.insert(e.log_id.index, (e.log_id, bytes.clone())) {
            *size -= old.len();
        }
        while *size > ENCODED_LIMIT {
            let Some((_, (_, old))) = map.pop_first() else { break };
            *size -= old.len();
        }
        Ok(bytes)
    }

    /// The request as `serde_json` writes it, its entries from the cache.
    fn append_body(&self, rpc: &AppendEntriesRequest<Tc>) -> serde_json::Result<Vec<u8>> {
        const HOLE: &[u8] = b"\"entries\":[]";
        let bare = AppendEntriesRequest::<Tc> {
            vote: rpc.vote,
            prev_log_id: rpc.prev_log_id,
            leader_commit: rpc.leader_commit,
            entries: Vec::new(),
        };
        let head = serde_json::to_vec(&bare)?;
        let Some(at) = head.windows(HOLE.len()).position(|w| w == HOLE) else {
            return serde_json::to_vec(rpc);
        };
        let parts = rpc.entries.iter().map(|e| self.entry(e)).collect::<serde_json::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(head.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
        out.extend_from_slice(&head[..at + HOLE.len() - 1]);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&head[at + HOLE.len() - 1..]);
        Ok(out)
    }
}

/// How long the leader's append to a learner waits before it goes.
pub const LEARNER_PACE: Duration = Duration::from_millis(10);

/// The leader's appends to learners, paced. Nothing waits for a learner's
/// copy (the voters make a write durable), yet unpaced each entry costs
/// every learner two messages (the entry, then its commit) and the leader
/// two per learner: with 60 learners on shared CPUs that was most of a
/// pool's work. So an append to a learner waits LEARNER_PACE and carries
/// whatever the log and the commit point gained meanwhile, unless the
/// learner's host waits for its copy to reach an entry (a call the master
/// sends it, a write it forwarded, a read barrier: [`Pace::want`]): then
/// its appends go at once until that entry's commit has reached it.
#[derive(Default)]
pub(crate) struct Pace {
    view: std::sync::RwLock<View>,
    lanes: std::sync::Mutex<std::collections::HashMap<u64, Arc<Lane>>>,
}

/// The engine's membership as pacing needs it (until it is known, no
/// voters: nothing is paced).
#[derive(Default)]
struct View {
    voters: std::collections::BTreeSet<u64>,
    by_addr: std::collections::HashMap<String, u64>,
}

/// One target's pacing.
#[derive(Default)]
pub(crate) struct Lane {
    /// The host waits to have applied this entry…
    wanted: std::sync::atomic::AtomicU64,
    /// …and has been sent the commit point up to here (within its log).
    sent: std::sync::atomic::AtomicU64,
    kick: tokio::sync::Notify,
}

impl Pace {
    pub(crate) fn lane(&self, target: u64) -> Arc<Lane> {
        let mut l = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        l.entry(target).or_default().clone()
    }

    /// Take the engine's membership (voters and addresses) from `m`.
    pub(crate) fn learn(&self, m: &openraft::Membership<u64, BasicNode>) {
        let mut v = self.view.write().unwrap_or_else(|p| p.into_inner());
        v.voters = m.voter_ids().collect();
        v.by_addr = m.nodes().map(|(i, n)| (n.addr.clone(), *i)).collect();
    }

    /// Only a learner beside three voters or more: a 2-host pool's member
    /// is the only other copy of the database (all of it must be there if
    /// the master dies), and a joiner of a small pool soon votes.
    fn paced(&self, target: u64) -> bool {
        let v = self.view.read().unwrap_or_else(|p| p.into_inner());
        v.voters.len() >= 3 && !v.voters.contains(&target)
    }

    /// The host `target` waits to have applied entry `index`: send it the
    /// entries and commit point without pacing until it has them.
    pub(crate) fn want(&self, target: u64, index: u64) {
        let lane = self.lane(target);
        lane.wanted.fetch_max(index, std::sync::atomic::Ordering::SeqCst);
        lane.kick.notify_one();
    }

    /// [`Pace::want`] for the host whose engine address is `addr`.
    pub(crate) fn want_at(&self, addr: &str, index: u64) {
        let id = self.view.read().unwrap_or_else(|p| p.into_inner()).by_addr.get(addr).copied();
        if let Some(id) = id {
            self.want(id, index);
        }
    }
}

impl Lane {
    fn waited_for(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.wanted.load(SeqCst) > self.sent.load(SeqCst)
    }

    /// Wait LEARNER_PACE, or less if the host waits for an entry.
    async fn turn(&self) {
        let due = tokio::time::Instant::now() + LEARNER_PACE;
        // A kick between the check and the wait leaves a permit behind.
        while !self.waited_for() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => return,
                _ = self.kick.notified() => {}
            }
        }
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
                let s = tokio::time::timeout_at(deadline, self.tls.connect(&self.addr))
                    .await
                    .map_err(|_| timed_out(&self.addr))??;
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
        self.call_with(path, &body, option).await
    }

    async fn call_with<Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &mut self,
        path: &str,
        body: &[u8],
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        let (code, out) =
            self.send(path, body, option.hard_ttl()).await.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
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
        if self.pace.paced(self.target) {
            self.lane.turn().await;
        }
        // The commit point the target knows once it takes this (capped by
        // the end of its log then).
        let end = rpc.entries.last().map(|e| e.log_id.index).or(rpc.prev_log_id.map(|l| l.index));
        let reach = end.min(rpc.leader_commit.map(|l| l.index));
        let body = self.encoded.append_body(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let r = self.call_with("/pool/raft/append", &body, &option).await;
        if let (Ok(AppendEntriesResponse::Success), Some(reach)) = (&r, reach) {
            self.lane.sent.fetch_max(reach, std::sync::atomic::Ordering::SeqCst);
        }
        r
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
pub(crate) async fn serve(pool: std::sync::Weak<crate::Pool>, listener: tokio::net::TcpListener, tls: Tls) {
    let Some(acceptor) = tls.acceptor else {
        tracing::error!("the pool database's listener has no certificate: it takes no connections");
        return;
    };
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
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = sock.set_nodelay(true) {
                tracing::debug!(%peer, "a pool database connection: {e}");
            }
            let sock = match tokio::time::timeout(HANDSHAKE, acceptor.accept(sock)).await {
                Ok(Ok(s)) => tokio_rustls::TlsStream::Server(s),
                Ok(Err(e)) => {
                    tracing::warn!(%peer, "a pool database connection without a good TLS handshake: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "a pool database connection without a TLS handshake in time");
                    return;
                }
            };
            if let Err(e) = serve_conn(&p, sock).await {
                tracing::debug!(%peer, "a pool database connection ended: {e}");
            }
        });
    }
}

async fn serve_conn(pool: &crate::Pool, mut s: PeerStream) -> std::io::Result<()> {
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

async fn answer(s: &mut PeerStream, code: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 {code} -\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn host_tls() -> (Tls, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert =
            rcgen::CertificateParams::new(vec!["host".to_string()]).expect("params").self_signed(&key).expect("cert");
        let der = cert.der().to_vec();
        let known = der.clone();
        let trust: Trust = Arc::new(move |d: &[u8]| d == known.as_slice());
        let key = PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()));
        (Tls::new(vec![CertificateDer::from(der.clone())], key, trust).expect("tls"), der)
    }

    /// A server that answers `n` requests per connection (then closes it)
    /// and counts the connections it took.
    async fn server(tls: Tls, n: usize) -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let acceptor = tls.acceptor.clone().expect("acceptor");
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let mut s = tokio_rustls::TlsStream::Server(acceptor.accept(sock).await.expect("handshake"));
                    for _ in 0..n {
                        let mut buf = Vec::new();
                        while !buf.ends_with(b"\r\n\r\n") {
                            match s.read_u8().await {
                                Ok(b) => buf.push(b),
                                Err(_) => return,
                            }
                        }
                        answer(&mut s, 200, b"ok").await.expect("answer");
                    }
                    // Closed: the client must not use it again.
                });
            }
        });
        (addr, count)
    }

    #[test]
    fn an_append_encoded_from_the_shared_entries_is_what_serde_would_write() {
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
        let id = |i| LogId::new(CommittedLeaderId::new(3, 1), i);
        let entry = |i: u64| Entry::<Tc> {
            log_id: id(i),
            payload: EntryPayload::Normal(crate::Batch {
                origin: format!("run {i}"),
                records: vec![vec![i as u8; 5 + i as usize]],
                genesis: None,
            }),
        };
        let enc = Encoded::default();
        for (prev, entries) in [(None, vec![]), (Some(id(4)), vec![entry(5)]), (Some(id(4)), vec![entry(5), entry(6)])]
        {
            let rpc = AppendEntriesRequest::<Tc> {
                vote: Vote::new_committed(3, 1),
                prev_log_id: prev,
                leader_commit: Some(id(4)),
                entries,
            };
            // Twice: the second from the shared encodings.
            for _ in 0..2 {
                let body = enc.append_body(&rpc).expect("encode");
                assert_eq!(body, serde_json::to_vec(&rpc).expect("serde"));
                let back: AppendEntriesRequest<Tc> = serde_json::from_slice(&body).expect("decode");
                assert_eq!(back.entries.len(), rpc.entries.len());
            }
        }
        // Another leader's entry at a known index replaces the old encoding.
        let mut other = entry(5);
        other.log_id = LogId::new(CommittedLeaderId::new(4, 2), 5);
        let rpc = AppendEntriesRequest::<Tc> {
            vote: Vote::new_committed(4, 2),
            prev_log_id: Some(id(4)),
            leader_commit: None,
            entries: vec![other],
        };
        assert_eq!(enc.append_body(&rpc).expect("encode"), serde_json::to_vec(&rpc).expect("serde"));
    }

    #[tokio::test]
    async fn messages_share_a_connection_until_the_other_side_closes_it() {
        let (tls, _) = host_tls();
        let (addr, count) = server(tls.clone(), 3).await;
        for i in 0..3 {
            let (code, body) = post(&tls, &addr, "/x", "s", b"", Duration::from_secs(5)).await.expect("post");
            assert_eq!((code, body.as_slice()), (200, b"ok".as_slice()), "message {i}");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1, "three messages, one connection");
        // The server closed that connection after its third answer: the next
        // message goes on a new one, without an error.
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(&tls, &addr, "/x", "s", b"", Duration::from_secs(5)).await.expect("post after close");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_learners_append_waits_its_pace_unless_its_host_waits_for_an_entry() {
        use std::time::Instant;
        let pace = Arc::new(Pace::default());
        let (voters, learner) = ([1u64, 2, 3], 4u64);
        let m = openraft::Membership::new(
            vec![voters.into_iter().collect()],
            [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
                .into_iter()
                .map(|(i, a)| (i, BasicNode { addr: a.to_string() }))
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        pace.learn(&m);
        assert!(!pace.paced(2) && pace.paced(learner));
        let lane = pace.lane(learner);
        // Nobody waits: the append waits its pace.
        let t = Instant::now();
        lane.turn().await;
        assert!(t.elapsed() >= LEARNER_PACE);
        // The host waits for entry 7 (named by address): at once, until
        // the commit point sent reaches it.
        pace.want_at("d", 7);
        let t = Instant::now();
        lane.turn().await;
        assert!(t.elapsed() < LEARNER_PACE);
        lane.sent.store(7, std::sync::atomic::Ordering::SeqCst);
        // A wait that begins paced ends when the host comes to wait.
        let (p, l) = (pace.clone(), lane.clone());
        let kick = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            p.want(learner, 9);
        });
        let t = Instant::now();
        l.turn().await;
        let _ = kick.await;
        assert!(t.elapsed() < LEARNER_PACE, "{:?}", t.elapsed());
        // Beside fewer than three voters no learner is paced.
        let two = openraft::Membership::new(
            vec![[1u64].into_iter().collect()],
            [(1u64, BasicNode { addr: "a".into() }), (2, BasicNode { addr: "b".into() })]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        pace.learn(&two);
        assert!(!pace.paced(2));
    }
}

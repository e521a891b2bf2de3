//! The NBD server (xapi's xapi-nbd): read-only exports of VDIs over the
//! fixed-newstyle Network Block Device protocol, port 10809 by default.
//!
//! An export is named `/<vdi-uuid>?session_id=<session-ref>` (what
//! `VDI.get_nbd_info` hands out). Whether TLS is required follows the
//! networks' purposes at each connection, as xapi-nbd decides: `nbd` means
//! STARTTLS before anything else (the HTTPS listener's certificate store),
//! `insecure_nbd` means plain, neither (or both) means the connection is
//! closed at once. The session is validated and the caller's permission
//! checked (the authorisation function the server was started with) before
//! the VDI's data is opened; every refusal is an `NBD_REP_ERR_*` with a
//! message, nothing opened.
//!
//! Data comes from the VDI as `/export_raw_vdi?format=raw` reads it
//! ([`storage::export_file`]): a raw VDI's file in place, a qcow2 VDI through
//! a raw copy made when the export is opened. Writes are refused (EPERM).
//! Supported: NBD_OPT_GO/INFO/EXPORT_NAME/LIST/ABORT/STARTTLS,
//! structured replies and the `base:allocation` meta context (holes found
//! with SEEK_DATA/SEEK_HOLE), NBD_CMD_READ/DISC/FLUSH/CACHE/BLOCK_STATUS.
//! Bounds: [`MAX_CONNECTIONS`], [`MAX_REQUEST`] per request, [`IN_FLIGHT`]
//! bytes being read per connection, [`NEGOTIATION_TIME`] for the handshake
//! and [`IDLE_TIME`] between requests.
//!
//! On a plain connection a read's data goes from the file to the socket
//! with sendfile(2), on a thread of the blocking pool that writes that
//! connection's replies ([`write_plain`]): no copy through this process. A
//! read error there comes after the reply's header went out, so the
//! connection is closed (logged); under TLS the data is read first and an
//! error is an EIO reply.

use crate::{storage, ApiError, Server};
use model::schema::{CLASS_NETWORK, CLASS_VDI};
use model::types::{fields, NetworkPurpose, VdiType};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

/// Connections served at once; more are closed at once (and logged).
pub const MAX_CONNECTIONS: usize = 32;
/// The largest read request (also advertised as the maximum block size).
pub const MAX_REQUEST: u32 = 32 << 20;
/// Bytes being read for one connection at once (replies not yet sent).
pub const IN_FLIGHT: usize = 64 << 20;
/// The whole handshake, TLS included.
pub const NEGOTIATION_TIME: Duration = Duration::from_secs(30);
/// Silence allowed between two requests, and for a reply to be taken.
pub const IDLE_TIME: Duration = Duration::from_secs(300);
/// Options a client may send before it picks an export.
const MAX_OPTIONS: usize = 64;
/// The longest option payload accepted (an export name is at most 4 KiB).
const MAX_OPTION_LEN: u32 = 16 << 10;

// Protocol constants (the NBD protocol document).
const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const CLIENT_FLAGS_KNOWN: u32 = 3;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_STARTTLS: u32 = 5;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const OPT_STRUCTURED_REPLY: u32 = 8;
const OPT_LIST_META_CONTEXT: u32 = 9;
const OPT_SET_META_CONTEXT: u32 = 10;

const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_META_CONTEXT: u32 = 4;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const REP_ERR_POLICY: u32 = 0x8000_0002;
const REP_ERR_INVALID: u32 = 0x8000_0003;
const REP_ERR_TLS_REQD: u32 = 0x8000_0005;
const REP_ERR_UNKNOWN: u32 = 0x8000_0006;

const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;

const TFLAG_HAS_FLAGS: u16 = 1;
const TFLAG_READ_ONLY: u16 = 1 << 1;
const TFLAG_SEND_FLUSH: u16 = 1 << 2;
// Reads are always one chunk, so DF (don't fragment) holds by construction.
const TFLAG_SEND_DF: u16 = 1 << 7;
const TFLAG_CAN_MULTI_CONN: u16 = 1 << 8;
const TFLAG_SEND_CACHE: u16 = 1 << 10;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_CACHE: u16 = 5;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_BLOCK_STATUS: u16 = 7;
const CMD_FLAG_REQ_ONE: u16 = 8;

const REPLY_FLAG_DONE: u16 = 1;
const REPLY_TYPE_NONE: u16 = 0;
const REPLY_TYPE_OFFSET_DATA: u16 = 1;
const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
const REPLY_TYPE_ERROR: u16 = 0x8001;

const STATE_HOLE: u32 = 1;
const STATE_ZERO: u32 = 2;

const EPERM: u32 = 1;
const EIO: u32 = 5;
const EINVAL: u32 = 22;
const ENOTSUP: u32 = 95;

const BASE_ALLOCATION: &str = "base:allocation";
const ALLOCATION_ID: u32 = 1;

/// May this session read VDIs over NBD? (The server's RBAC check, given by
/// the caller so that this layer needs nothing above it.)
pub type Authorize = fn(&Server, &str) -> Result<(), ApiError>;

/// Whether exports need TLS, from the networks' purposes (xapi-nbd asks
/// xapi the same at every connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tls,
    Plain,
}

/// The NBD mode the networks' purposes ask for, or why there is none.
pub fn mode(s: &Server) -> Result<Mode, &'static str> {
    let st = s.db.read();
    let (mut tls, mut plain) = (false, false);
    for (_, row) in st.table(&CLASS_NETWORK).iter() {
        for p in row.read(fields::network::PURPOSE) {
            match p {
                NetworkPurpose::Nbd => tls = true,
                NetworkPurpose::InsecureNbd => plain = true,
                NetworkPurpose::Unknown(_) => {}
            }
        }
    }
    match (tls, plain) {
        (true, false) => Ok(Mode::Tls),
        (false, true) => Ok(Mode::Plain),
        (true, true) => Err("both nbd and insecure_nbd network purposes are set"),
        (false, false) => Err("no network has the purpose nbd or insecure_nbd"),
    }
}

/// What one listener needs for every connection.
struct Listener {
    server: Server,
    tls: tokio_rustls::TlsAcceptor,
    authorize: Authorize,
    slots: Arc<Semaphore>,
}

/// Bind `addrs` and serve NBD until `stop`; the addresses bound.
pub async fn listen(
    server: Server,
    addrs: &[SocketAddr],
    tls: Arc<rustls::ServerConfig>,
    authorize: Authorize,
    stop: watch::Receiver<bool>,
) -> io::Result<Vec<SocketAddr>> {
    let shared = Arc::new(Listener {
        server,
        tls: tokio_rustls::TlsAcceptor::from(tls),
        authorize,
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
    });
    let mut bound = Vec::new();
    for addr in addrs {
        let l = TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("nbd {addr}: {e}")))?;
        bound.push(l.local_addr()?);
        let (sh, mut st) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((sock, peer)) => {
                            let _ = sock.set_nodelay(true);
                            let Ok(permit) = sh.slots.clone().try_acquire_owned() else {
                                tracing::warn!(%peer, "NBD connection refused: {MAX_CONNECTIONS} already open");
                                continue;
                            };
                            let sh = sh.clone();
                            tokio::spawn(async move {
                                let _permit = permit;
                                if let Err(e) = serve(&sh, sock, peer).await {
                                    tracing::info!(%peer, "NBD connection ended: {e}");
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!("nbd accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    _ = stopped(&mut st) => break,
                }
            }
        });
    }
    Ok(bound)
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One connection: the handshake (within [`NEGOTIATION_TIME`]), then the
/// transmission phase on the plain or TLS stream.
async fn serve(l: &Listener, mut sock: TcpStream, peer: SocketAddr) -> io::Result<()> {
    let mode = match mode(&l.server) {
        Ok(m) => m,
        Err(why) => {
            tracing::info!(%peer, "NBD connection refused: {why}");
            return Ok(());
        }
    };
    let deadline = tokio::time::Instant::now() + NEGOTIATION_TIME;
    use tokio::time::timeout_at;
    let mut neg = Negotiation { mode, tls: false, structured: false, meta: false, no_zeroes: false, options: 0 };
    let step = timeout_at(deadline, async {
        greet(&mut sock, &mut neg).await?;
        neg.run(l, &mut sock, peer).await
    })
    .await
    .map_err(|_| bad("negotiation timed out"))??;
    match step {
        Step::Closed => Ok(()),
        Step::Serve(e) => {
            // The writer's own descriptor of the socket: it outlives this
            // task if the task is dropped, so it never names a reused number.
            let fd = std::os::fd::AsFd::as_fd(&sock).try_clone_to_owned()?;
            transmit(sock, Some(fd), e, neg.structured, neg.meta, peer).await
        }
        Step::StartTls => {
            let mut tls = timeout_at(deadline, l.tls.accept(sock))
                .await
                .map_err(|_| bad("TLS handshake timed out"))?
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))?;
            neg.tls = true;
            match timeout_at(deadline, neg.run(l, &mut tls, peer)).await.map_err(|_| bad("negotiation timed out"))?? {
                Step::Serve(e) => transmit(tls, None, e, neg.structured, neg.meta, peer).await,
                Step::Closed | Step::StartTls => Ok(()),
            }
        }
    }
}

async fn greet(sock: &mut TcpStream, neg: &mut Negotiation) -> io::Result<()> {
    let mut hello = Vec::with_capacity(18);
    hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
    hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
    hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    sock.write_all(&hello).await?;
    let flags = sock.read_u32().await?;
    if flags & !CLIENT_FLAGS_KNOWN != 0 || flags & u32::from(FLAG_FIXED_NEWSTYLE) == 0 {
        return Err(bad(format!("client flags {flags:#x} refused (fixed newstyle only)")));
    }
    neg.no_zeroes = flags & u32::from(FLAG_NO_ZEROES) != 0;
    Ok(())
}

/// An export opened for a client.
struct Export {
    vdi_uuid: String,
    size: u64,
    /// None: the VDI has no data (reads as zeros).
    file: Option<Arc<std::fs::File>>,
    multi_conn: bool,
    counters: Arc<crate::rrd::io::Counters>,
    /// Keeps a qcow2 VDI's raw copy until the connection ends.
    _source: Option<storage::ExportFile>,
}

impl Export {
    fn flags(&self) -> u16 {
        let mut f = TFLAG_HAS_FLAGS | TFLAG_READ_ONLY | TFLAG_SEND_FLUSH | TFLAG_SEND_CACHE | TFLAG_SEND_DF;
        if self.multi_conn {
            f |= TFLAG_CAN_MULTI_CONN;
        }
        f
    }
}

enum Step {
    Closed,
    StartTls,
    Serve(Export),
}

struct Negotiation {
    mode: Mode,
    tls: bool,
    structured: bool,
    meta: bool,
    no_zeroes: bool,
    options: usize,
}

/// A refusal to answer an option with: the reply type and its message.
struct Refusal(u32, String);

impl Negotiation {
    /// Answer options until the client picks an export, asks for TLS, or
    /// leaves.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        l: &Listener,
        io: &mut S,
        peer: SocketAddr,
    ) -> io::Result<Step> {
        loop {
            self.options += 1;
            if self.options > MAX_OPTIONS {
                return Err(bad("too many options"));
            }
            let magic = io.read_u64().await?;
            if magic != IHAVEOPT {
                return Err(bad(format!("bad option magic {magic:#x}")));
            }
            let opt = io.read_u32().await?;
            let len = io.read_u32().await?;
            if len > MAX_OPTION_LEN {
                return Err(bad(format!("option {opt} of {len} bytes")));
            }
            let mut data = vec![0u8; len as usize];
            io.read_exact(&mut data).await?;
            let tls_missing = self.mode == Mode::Tls && !self.tls;
            match opt {
                OPT_ABORT => {
                    // The reply is optional and the client may already be gone.
                    let _ = reply(io, opt, REP_ACK, &[]).await;
                    return Ok(Step::Closed);
                }
                OPT_EXPORT_NAME if tls_missing => {
                    return Err(bad("NBD_OPT_EXPORT_NAME without TLS on a TLS-only server"));
                }
                OPT_EXPORT_NAME => {
                    // No way to say why: the connection is closed (logged).
                    let name = String::from_utf8_lossy(&data).into_owned();
                    let e = open(l, &name, peer, true).await.map_err(|Refusal(_, m)| bad(m))?;
                    let mut out = Vec::with_capacity(134);
                    out.extend_from_slice(&e.size.to_be_bytes());
                    out.extend_from_slice(&e.flags().to_be_bytes());
                    if !self.no_zeroes {
                        out.extend_from_slice(&[0u8; 124]);
                    }
                    io.write_all(&out).await?;
                    return Ok(Step::Serve(e));
                }
                OPT_STARTTLS if self.tls => {
                    error(io, opt, REP_ERR_INVALID, "TLS is already in use").await?;
                }
                OPT_STARTTLS if self.mode == Mode::Plain => {
                    let m = "TLS is not offered: the NBD network purpose is insecure_nbd";
                    error(io, opt, REP_ERR_POLICY, m).await?;
                }
                OPT_STARTTLS if len != 0 => error(io, opt, REP_ERR_INVALID, "STARTTLS takes no data").await?,
                OPT_STARTTLS => {
                    reply(io, opt, REP_ACK, &[]).await?;
                    io.flush().await?;
                    return Ok(Step::StartTls);
                }
                _ if tls_missing => {
                    error(io, opt, REP_ERR_TLS_REQD, "TLS is required (the NBD network purpose is nbd)").await?;
                }
                OPT_LIST if len != 0 => error(io, opt, REP_ERR_INVALID, "LIST takes no data").await?,
                // Export names carry a session: there is nothing to list.
                OPT_LIST => reply(io, opt, REP_ACK, &[]).await?,
                OPT_STRUCTURED_REPLY if len != 0 => {
                    error(io, opt, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data").await?
                }
                OPT_STRUCTURED_REPLY if self.structured => {
                    error(io, opt, REP_ERR_INVALID, "structured replies are already on").await?
                }
                OPT_STRUCTURED_REPLY => {
                    self.structured = true;
                    reply(io, opt, REP_ACK, &[]).await?;
                }
                OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => {
                    let set = opt == OPT_SET_META_CONTEXT;
                    match meta_queries(&data) {
                        Err(m) => error(io, opt, REP_ERR_INVALID, &m).await?,
                        Ok(_) if !self.structured => {
                            error(io, opt, REP_ERR_INVALID, "structured replies must be negotiated first").await?
                        }
                        Ok(queries) => {
                            // An empty LIST query means "every context".
                            let wanted = queries.iter().any(|q| q == BASE_ALLOCATION || q == "base:")
                                || (!set && queries.is_empty());
                            if set {
                                self.meta = wanted;
                            }
                            if wanted {
                                let mut p = ALLOCATION_ID.to_be_bytes().to_vec();
                                p.extend_from_slice(BASE_ALLOCATION.as_bytes());
                                reply(io, opt, REP_META_CONTEXT, &p).await?;
                            }
                            reply(io, opt, REP_ACK, &[]).await?;
                        }
                    }
                }
                OPT_INFO | OPT_GO => {
                    let go = opt == OPT_GO;
                    let (name, infos) = match info_request(&data) {
                        Ok(x) => x,
                        Err(m) => {
                            error(io, opt, REP_ERR_INVALID, &m).await?;
                            continue;
                        }
                    };
                    let e = match open(l, &name, peer, go).await {
                        Ok(e) => e,
                        Err(Refusal(t, m)) => {
                            error(io, opt, t, &m).await?;
                            continue;
                        }
                    };
                    let mut p = INFO_EXPORT.to_be_bytes().to_vec();
                    p.extend_from_slice(&e.size.to_be_bytes());
                    p.extend_from_slice(&e.flags().to_be_bytes());
                    reply(io, opt, REP_INFO, &p).await?;
                    if infos.contains(&INFO_BLOCK_SIZE) {
                        let mut p = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
                        p.extend_from_slice(&1u32.to_be_bytes());
                        p.extend_from_slice(&4096u32.to_be_bytes());
                        p.extend_from_slice(&MAX_REQUEST.to_be_bytes());
                        reply(io, opt, REP_INFO, &p).await?;
                    }
                    reply(io, opt, REP_ACK, &[]).await?;
                    if go {
                        io.flush().await?;
                        return Ok(Step::Serve(e));
                    }
                }
                _ => error(io, opt, REP_ERR_UNSUP, &format!("option {opt} is not supported")).await?,
            }
            io.flush().await?;
        }
    }
}

async fn reply<S: AsyncWrite + Unpin>(io: &mut S, opt: u32, typ: u32, data: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(20 + data.len());
    out.extend_from_slice(&REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&opt.to_be_bytes());
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    io.write_all(&out).await
}

async fn error<S: AsyncWrite + Unpin>(io: &mut S, opt: u32, typ: u32, msg: &str) -> io::Result<()> {
    reply(io, opt, typ, msg.as_bytes()).await
}

fn take<'a>(d: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if d.len() < n {
        return Err("option data is truncated".into());
    }
    let (a, b) = d.split_at(n);
    *d = b;
    Ok(a)
}

fn take_u32(d: &mut &[u8]) -> Result<u32, String> {
    let b = take(d, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// NBD_OPT_INFO/GO data: the export name and the information requests.
fn info_request(data: &[u8]) -> Result<(String, Vec<u16>), String> {
    let mut d = data;
    let n = take_u32(&mut d)? as usize;
    let name = String::from_utf8(take(&mut d, n)?.to_vec()).map_err(|_| "the export name is not UTF-8")?;
    let count = take(&mut d, 2).map(|b| u16::from_be_bytes([b[0], b[1]]))? as usize;
    let mut infos = Vec::with_capacity(count);
    for _ in 0..count {
        let b = take(&mut d, 2)?;
        infos.push(u16::from_be_bytes([b[0], b[1]]));
    }
    if !d.is_empty() {
        return Err("option data is longer than its fields".into());
    }
    Ok((name, infos))
}

/// NBD_OPT_{LIST,SET}_META_CONTEXT data: the export name (not needed: the
/// only context is the same for every export) and the queries.
fn meta_queries(data: &[u8]) -> Result<Vec<String>, String> {
    let mut d = data;
    let n = take_u32(&mut d)? as usize;
    take(&mut d, n)?;
    let count = take_u32(&mut d)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let n = take_u32(&mut d)? as usize;
        out.push(String::from_utf8_lossy(take(&mut d, n)?).into_owned());
    }
    if !d.is_empty() {
        return Err("option data is longer than its fields".into());
    }
    Ok(out)
}

/// Decode %XX escapes (a client may have encoded the session ref's `:`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/<vdi-uuid>?session_id=<ref>` → (uuid, session).
pub fn parse_export_name(name: &str) -> Option<(String, String)> {
    let (path, query) = name.split_once('?')?;
    let uuid = path.strip_prefix('/').unwrap_or(path);
    let session = query.split('&').find_map(|kv| kv.strip_prefix("session_id="))?;
    let (uuid, session) = (unescape(uuid), unescape(session));
    if uuid.is_empty() || session.is_empty() {
        return None;
    }
    Some((uuid, session))
}

/// Check the export name's session, the caller's permission and the VDI,
/// then open its data (only for `data`: NBD_OPT_INFO needs the size alone,
/// and a qcow2 VDI would be copied for nothing). Every refusal is logged here.
async fn open(l: &Listener, name: &str, peer: SocketAddr, data: bool) -> Result<Export, Refusal> {
    let s = &l.server;
    let refuse = |t: u32, m: String| {
        tracing::info!(%peer, "NBD export refused: {m}");
        Refusal(t, m)
    };
    let Some((uuid, session)) = parse_export_name(name) else {
        return Err(refuse(REP_ERR_UNKNOWN, "the export name is not /<vdi-uuid>?session_id=<session>".into()));
    };
    if let Err(e) = s.sessions.validate(s, &session) {
        return Err(refuse(REP_ERR_POLICY, format!("{e}")));
    }
    if let Err(e) = (l.authorize)(s, &session) {
        return Err(refuse(REP_ERR_POLICY, format!("{e}")));
    }
    let (vdi, sr, size, raw) = {
        let st = s.db.read();
        let Some(vdi) = st.table(&CLASS_VDI).by_uuid(&uuid).map(str::to_string) else {
            return Err(refuse(REP_ERR_UNKNOWN, format!("UUID_INVALID [VDI; {uuid}]")));
        };
        let Some(row) = st.get(&CLASS_VDI, &vdi) else {
            return Err(refuse(REP_ERR_UNKNOWN, format!("UUID_INVALID [VDI; {uuid}]")));
        };
        if row.read(fields::vdi::TYPE) == VdiType::CbtMetadata {
            let e = ApiError::VdiIncompatibleType { vdi: vdi.clone(), r#type: "cbt_metadata".into() };
            return Err(refuse(REP_ERR_POLICY, format!("{e}")));
        }
        let raw = storage::Format::of_vdi(row.get(fields::vdi::SM_CONFIG.index)) == storage::Format::Raw;
        (vdi.clone(), row.read(fields::vdi::SR).into_string(), row.read(fields::vdi::VIRTUAL_SIZE).max(0) as u64, raw)
    };
    if let Err(e) = storage::assert_plugged(s, &sr) {
        return Err(refuse(REP_ERR_UNKNOWN, format!("{e}")));
    }
    let counters = s.sr_io.of_vdi(s, &vdi);
    if !data {
        return Ok(Export { vdi_uuid: uuid, size, file: None, multi_conn: raw, counters, _source: None });
    }
    let (srv, v) = (s.clone(), vdi.clone());
    let file = storage::blocking(move || storage::export_file(&srv, &v, "raw")).await;
    let (file, source, multi_conn) = match file {
        Ok(f) => {
            let opened = f.open().map_err(|e| refuse(REP_ERR_UNKNOWN, format!("{e}")))?;
            let in_place = f.in_place();
            (Some(Arc::new(opened)), Some(f), in_place)
        }
        // No file: the disk reads as zeros, as /export_raw_vdi would send.
        Err(ApiError::VdiMissing { .. }) => (None, None, true),
        Err(e) => return Err(refuse(REP_ERR_UNKNOWN, format!("{e}"))),
    };
    tracing::info!(%peer, vdi = %uuid, size, in_place = multi_conn, "NBD export opened");
    Ok(Export { vdi_uuid: uuid, size, file, multi_conn, counters, _source: source })
}

// ------------------------------------------------------------ transmission

/// A reply for the writer: built in memory, or (plain connections) a
/// read's header with its data to come from the export's file.
enum Out {
    Bytes(Vec<u8>),
    Read { head: Vec<u8>, offset: u64, len: u32 },
}

impl From<Vec<u8>> for Out {
    fn from(b: Vec<u8>) -> Out {
        Out::Bytes(b)
    }
}

/// The transmission phase: requests are read in order and served
/// concurrently (reads on the blocking pool, at most [`IN_FLIGHT`] bytes at
/// once, or straight from the file by the writer of a plain connection,
/// `plain` being its socket); replies go out as they are ready, through one
/// writer.
async fn transmit<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: S,
    plain: Option<std::os::fd::OwnedFd>,
    e: Export,
    structured: bool,
    meta: bool,
    peer: SocketAddr,
) -> io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let (tx, mut rx) = mpsc::channel::<Out>(64);
    let e = Arc::new(e);
    let sendfile = plain.is_some();
    let writer = match plain {
        Some(fd) => {
            let e = e.clone();
            tokio::task::spawn_blocking(move || write_plain(&fd, rx, &e))
        }
        None => tokio::spawn(async move {
            // A client that stops reading its replies is dropped after IDLE_TIME.
            let stalled = || bad("the client stopped reading replies");
            let bytes = |o: Out| match o {
                Out::Bytes(b) => Ok(b),
                Out::Read { .. } => Err(bad("a file read queued for a TLS connection")),
            };
            while let Some(out) = rx.recv().await {
                let buf = bytes(out)?;
                let sent = tokio::time::timeout(IDLE_TIME, async {
                    wr.write_all(&buf).await?;
                    // Gather what is ready before flushing (one TLS record flush).
                    while let Ok(out) = rx.try_recv() {
                        wr.write_all(&bytes(out)?).await?;
                    }
                    wr.flush().await
                });
                sent.await.map_err(|_| stalled())??;
            }
            tokio::time::timeout(IDLE_TIME, wr.shutdown()).await.map_err(|_| stalled())?
        }),
    };
    let budget = Arc::new(Semaphore::new(IN_FLIGHT));
    let out = loop {
        if tx.is_closed() {
            break Err(bad("the reply writer stopped"));
        }
        let mut hdr = [0u8; 28];
        match tokio::time::timeout(IDLE_TIME, rd.read_exact(&mut hdr)).await {
            Err(_) => break Err(bad("idle for too long")),
            Ok(Err(x)) if x.kind() == io::ErrorKind::UnexpectedEof => {
                break Err(bad("the client left without NBD_CMD_DISC"))
            }
            Ok(Err(x)) => break Err(x),
            Ok(Ok(_)) => {}
        }
        let be32 = |i: usize| u32::from_be_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
        let be16 = |i: usize| u16::from_be_bytes([hdr[i], hdr[i + 1]]);
        let magic = be32(0);
        if magic != REQUEST_MAGIC {
            break Err(bad(format!("bad request magic {magic:#x}")));
        }
        let (flags, cmd) = (be16(4), be16(6));
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&hdr[8..16]);
        let offset = u64::from_be_bytes([hdr[16], hdr[17], hdr[18], hdr[19], hdr[20], hdr[21], hdr[22], hdr[23]]);
        let len = be32(24);
        let r = Reply { cookie, structured };
        let in_bounds = offset.checked_add(u64::from(len)).is_some_and(|end| end <= e.size);
        match cmd {
            CMD_DISC => break Ok(()),
            CMD_WRITE => {
                // Read-only: the payload is skipped, the request refused.
                if len > MAX_REQUEST {
                    let _ = tx.send(r.error(EINVAL, "write request too large").into()).await;
                    break Err(bad(format!("a write of {len} bytes")));
                }
                let mut left = u64::from(len);
                let mut sink = [0u8; 16384];
                while left > 0 {
                    let n = (left as usize).min(sink.len());
                    if let Err(x) = rd.read_exact(&mut sink[..n]).await {
                        return finish(writer, tx, Err(x), &e, peer).await;
                    }
                    left -= n as u64;
                }
                let _ = tx.send(r.error(EPERM, "the export is read-only").into()).await;
            }
            CMD_TRIM | CMD_WRITE_ZEROES => {
                let _ = tx.send(r.error(EPERM, "the export is read-only").into()).await;
            }
            CMD_READ | CMD_BLOCK_STATUS | CMD_CACHE if !in_bounds => {
                let _ = tx.send(r.error(EINVAL, "the request goes past the end of the export").into()).await;
            }
            // Block status may ask about more: its answer is bounded (1024 extents).
            CMD_READ if len > MAX_REQUEST => {
                let _ = tx.send(r.error(EINVAL, "the request is larger than the maximum block size").into()).await;
            }
            CMD_READ if sendfile => {
                // The writer reads one request at a time: have the kernel
                // start reading this one from disk now, beside the others.
                if let Some(f) = &e.file {
                    use std::os::fd::AsRawFd;
                    let (o, l) = (offset as libc::off_t, libc::off_t::from(len));
                    // SAFETY: advice on an open descriptor.
                    unsafe { libc::posix_fadvise(f.as_raw_fd(), o, l, libc::POSIX_FADV_WILLNEED) };
                }
                let head = r.data_header(offset, len as usize);
                let _ = tx.send(Out::Read { head, offset, len }).await;
            }
            CMD_READ => {
                let Ok(permit) = budget.clone().acquire_many_owned(len.max(1)).await else {
                    break Err(bad("request budget closed"));
                };
                let (e, tx) = (e.clone(), tx.clone());
                tokio::spawn(async move {
                    let e2 = e.clone();
                    let data = tokio::task::spawn_blocking(move || read(&e2, r, offset, len)).await;
                    let buf = match data {
                        Ok(Ok(b)) => b,
                        Ok(Err(x)) => {
                            tracing::warn!(vdi = %e.vdi_uuid, offset, len, "NBD read failed: {x}");
                            r.error(EIO, "read error")
                        }
                        Err(x) => {
                            tracing::warn!(vdi = %e.vdi_uuid, "NBD read worker failed: {x}");
                            r.error(EIO, "read error")
                        }
                    };
                    let _ = tx.send(buf.into()).await;
                    drop(permit);
                });
            }
            CMD_BLOCK_STATUS if !meta => {
                let _ = tx.send(r.error(EINVAL, "no meta context was negotiated").into()).await;
            }
            CMD_BLOCK_STATUS => {
                let (e2, one) = (e.clone(), flags & CMD_FLAG_REQ_ONE != 0);
                let ext = tokio::task::spawn_blocking(move || extents(&e2, offset, len, one)).await;
                let buf = match ext {
                    Ok(Ok(x)) => r.block_status(&x),
                    Ok(Err(x)) => {
                        tracing::warn!(vdi = %e.vdi_uuid, offset, len, "NBD block status failed: {x}");
                        r.error(EIO, "block status error")
                    }
                    Err(x) => {
                        tracing::warn!(vdi = %e.vdi_uuid, "NBD block status worker failed: {x}");
                        r.error(EIO, "block status error")
                    }
                };
                let _ = tx.send(buf.into()).await;
            }
            // Nothing is cached or written: both succeed at once.
            CMD_FLUSH | CMD_CACHE => {
                let _ = tx.send(r.ok().into()).await;
            }
            _ => {
                let _ = tx.send(r.error(ENOTSUP, "command not supported").into()).await;
            }
        }
    };
    finish(writer, tx, out, &e, peer).await
}

/// The writer of a plain connection (see the module's comment): replies
/// with send(2), read data with sendfile(2) from the export's file (zeros
/// past its end), a client whose window stays full waited for with poll(2)
/// for at most [`IDLE_TIME`]. On the blocking pool: a read from disk blocks.
fn write_plain(fd: &std::os::fd::OwnedFd, mut rx: mpsc::Receiver<Out>, e: &Export) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let sock = fd.as_raw_fd();
    let res = (|| {
        while let Some(out) = rx.blocking_recv() {
            match out {
                Out::Bytes(b) => send_all(sock, &b, false)?,
                Out::Read { head, offset, len } => {
                    let len = u64::from(len);
                    send_all(sock, &head, len > 0)?;
                    let mut done = 0u64;
                    if let Some(f) = &e.file {
                        while done < len {
                            let mut off = (offset + done) as libc::off_t;
                            let want = (len - done) as usize;
                            // SAFETY: both descriptors are open; off is a valid pointer.
                            let n = unsafe { libc::sendfile(sock, f.as_raw_fd(), &mut off, want) };
                            match n {
                                0 => break, // past the file's end: zeros follow
                                n if n > 0 => done += n as u64,
                                _ => retry_or_fail(sock, io::Error::last_os_error()).map_err(|x| {
                                    tracing::warn!(vdi = %e.vdi_uuid, offset, len, "NBD read failed: {x}");
                                    x
                                })?,
                            }
                        }
                        e.counters.read(done);
                    }
                    while done < len {
                        let n = (len - done).min(ZEROS.len() as u64);
                        send_all(sock, &ZEROS[..n as usize], done + n < len)?;
                        done += n;
                    }
                }
            }
        }
        Ok(())
    })();
    // SAFETY: shutdown(2) on our own open descriptor.
    unsafe { libc::shutdown(sock, libc::SHUT_WR) };
    res
}

/// After a failed send: wait while the socket is full (EAGAIN), go on
/// after a signal, else the error.
fn retry_or_fail(sock: std::os::fd::RawFd, x: io::Error) -> io::Result<()> {
    match x.kind() {
        io::ErrorKind::WouldBlock => {
            let mut p = libc::pollfd { fd: sock, events: libc::POLLOUT, revents: 0 };
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut p, 1, IDLE_TIME.as_millis() as libc::c_int) } {
                0 => Err(bad("the client stopped reading replies")),
                n if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted => {
                    Err(io::Error::last_os_error())
                }
                // Ready (or an error the next send reports).
                _ => Ok(()),
            }
        }
        io::ErrorKind::Interrupted => Ok(()),
        _ => Err(x),
    }
}

/// All of `buf` to the socket; `more`: data follows at once (MSG_MORE, so
/// a header and its data leave in the same segments).
fn send_all(sock: std::os::fd::RawFd, mut buf: &[u8], more: bool) -> io::Result<()> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    while !buf.is_empty() {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::send(sock, buf.as_ptr().cast(), buf.len(), flags) };
        if n >= 0 {
            buf = &buf[n as usize..];
        } else {
            retry_or_fail(sock, io::Error::last_os_error())?;
        }
    }
    Ok(())
}

async fn finish(
    writer: tokio::task::JoinHandle<io::Result<()>>,
    tx: mpsc::Sender<Out>,
    out: io::Result<()>,
    e: &Export,
    peer: SocketAddr,
) -> io::Result<()> {
    // Replies still being read are sent before the connection closes.
    drop(tx);
    let w = writer.await.map_err(|x| bad(format!("writer: {x}")))?;
    tracing::info!(%peer, vdi = %e.vdi_uuid, "NBD export closed");
    out.and(w)
}

#[derive(Clone, Copy)]
struct Reply {
    cookie: [u8; 8],
    structured: bool,
}

impl Reply {
    /// A reply header with room for `extra` bytes after it.
    fn simple(&self, error: u32, extra: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + extra);
        b.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
        b.extend_from_slice(&error.to_be_bytes());
        b.extend_from_slice(&self.cookie);
        b
    }

    fn chunk(&self, flags: u16, typ: u16, len: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(20 + len);
        b.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&typ.to_be_bytes());
        b.extend_from_slice(&self.cookie);
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b
    }

    fn ok(&self) -> Vec<u8> {
        if self.structured {
            self.chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, 0)
        } else {
            self.simple(0, 0)
        }
    }

    fn error(&self, errno: u32, msg: &str) -> Vec<u8> {
        if !self.structured {
            return self.simple(errno, 0);
        }
        let mut b = self.chunk(REPLY_FLAG_DONE, REPLY_TYPE_ERROR, 6 + msg.len());
        b.extend_from_slice(&errno.to_be_bytes());
        b.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        b.extend_from_slice(msg.as_bytes());
        b
    }

    /// The header of a read's data; `len` bytes follow.
    fn data_header(&self, offset: u64, len: usize) -> Vec<u8> {
        if self.structured {
            let mut b = self.chunk(REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, 8 + len);
            b.extend_from_slice(&offset.to_be_bytes());
            b
        } else {
            self.simple(0, len)
        }
    }

    fn block_status(&self, ext: &[(u32, u32)]) -> Vec<u8> {
        let mut b = self.chunk(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, 4 + 8 * ext.len());
        b.extend_from_slice(&ALLOCATION_ID.to_be_bytes());
        for (len, flags) in ext {
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&flags.to_be_bytes());
        }
        b
    }
}

/// A read's whole reply: header and data (zeros past the file's end or
/// where there is no file).
fn read(e: &Export, r: Reply, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = r.data_header(offset, len as usize);
    let start = buf.len();
    buf.resize(start + len as usize, 0);
    if let Some(f) = &e.file {
        let data = &mut buf[start..];
        let mut n = 0;
        while n < data.len() {
            match f.read_at(&mut data[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(x) if x.kind() == io::ErrorKind::Interrupted => {}
                Err(x) => return Err(x),
            }
        }
        e.counters.read(n as u64);
    }
    Ok(buf)
}

/// `base:allocation` extents of [offset, offset+len): (length, flags),
/// from the file's holes (SEEK_DATA/SEEK_HOLE); data is reported as
/// allocated, holes and what lies past the file's end as zero holes.
fn extents(e: &Export, offset: u64, len: u32, one: bool) -> io::Result<Vec<(u32, u32)>> {
    let end = offset + u64::from(len);
    let hole = STATE_HOLE | STATE_ZERO;
    let Some(f) = &e.file else { return Ok(vec![(len, hole)]) };
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    let seek = |pos: u64, whence: libc::c_int| -> io::Result<Option<u64>> {
        // SAFETY: lseek on a descriptor this export owns; no memory is passed.
        let r = unsafe { libc::lseek(fd, pos as libc::off_t, whence) };
        if r >= 0 {
            return Ok(Some(r as u64));
        }
        let err = io::Error::last_os_error();
        // ENXIO: no data at or after `pos` (or `pos` is past the end).
        if err.raw_os_error() == Some(libc::ENXIO) {
            Ok(None)
        } else {
            Err(err)
        }
    };
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut pos = offset;
    while pos < end {
        let data_at = seek(pos, libc::SEEK_DATA)?.unwrap_or(end).min(end);
        if data_at > pos {
            out.push(((data_at - pos) as u32, hole));
            pos = data_at;
        } else {
            let hole_at = seek(pos, libc::SEEK_HOLE)?.unwrap_or(end).min(end).max(pos + 1);
            out.push(((hole_at - pos) as u32, 0));
            pos = hole_at;
        }
        if one || out.len() >= 1024 {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names() {
        assert_eq!(parse_export_name("/1234?session_id=OpaqueRef:abc"), Some(("1234".into(), "OpaqueRef:abc".into())));
        assert_eq!(
            parse_export_name("/1234?x=1&session_id=OpaqueRef%3Aabc"),
            Some(("1234".into(), "OpaqueRef:abc".into()))
        );
        assert_eq!(parse_export_name("/1234"), None);
        assert_eq!(parse_export_name("/?session_id=x"), None);
        assert_eq!(parse_export_name("/u?session_id="), None);
        assert_eq!(unescape("a%"), "a%");
        assert_eq!(unescape("a%4"), "a%4");
        assert_eq!(unescape("%41"), "A");
    }

    #[test]
    fn option_data() {
        let mut d = 3u32.to_be_bytes().to_vec();
        d.extend_from_slice(b"abc");
        d.extend_from_slice(&1u16.to_be_bytes());
        d.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
        assert_eq!(info_request(&d), Ok(("abc".into(), vec![INFO_BLOCK_SIZE])));
        assert!(info_request(&d[..6]).is_err());
        let mut m = 0u32.to_be_bytes().to_vec();
        m.extend_from_slice(&1u32.to_be_bytes());
        m.extend_from_slice(&15u32.to_be_bytes());
        m.extend_from_slice(BASE_ALLOCATION.as_bytes());
        assert_eq!(meta_queries(&m), Ok(vec![BASE_ALLOCATION.to_string()]));
        m.push(0);
        assert!(meta_queries(&m).is_err());
    }
}

//! A QMP client over a Unix socket.
//!
//! QMP is line-delimited JSON: a greeting, `qmp_capabilities`, then commands
//! (`{"execute", "arguments", "id"}`) answered by `{"return"|"error", "id"}`,
//! with asynchronous `{"event", "data", "timestamp"}` messages interleaved.
//! A reader task owns the socket's read half: it hands replies to the waiting
//! [`Qmp::execute`] calls by id and forwards events on a channel, so events
//! keep flowing while commands are in flight.

use super::{command_error, read_until_bounded, request, QmpError};
use serde_json::Value;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};

/// What QEMU says about itself when a client connects.
#[derive(Clone, Debug, PartialEq)]
pub struct Greeting {
    /// (major, minor, micro)
    pub version: (u64, u64, u64),
    /// The distribution's package string ("Debian 1:7.2+dfsg-7…"), may be empty.
    pub package: String,
    pub capabilities: Vec<String>,
}

/// An asynchronous event, as QEMU sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: String,
    /// The event's `data` object (`Null` when it has none).
    pub data: Value,
    /// QEMU's timestamp: (seconds, microseconds) since the epoch.
    pub timestamp: Option<(i64, i64)>,
}

/// The events a VM's lifecycle depends on, decoded; anything else is `Other`.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// The VM stopped running for good: `guest` is true when the guest asked
    /// (power off, panic with the default action), false for the host's `quit`
    /// or a signal. `reason` is QEMU's ShutdownCause ("guest-shutdown",
    /// "host-qmp-quit", "guest-panic", …).
    Shutdown {
        guest: bool,
        reason: String,
    },
    /// The VM was reset (a guest reboot when `guest` is true).
    Reset {
        guest: bool,
        reason: String,
    },
    /// An ACPI power button press was delivered (`system_powerdown`).
    Powerdown,
    Stop,
    Resume,
    /// The guest reported a panic (pvpanic); `action` is what QEMU does next
    /// ("pause", "poweroff", "run").
    GuestPanicked {
        action: String,
    },
    /// A device finished unplugging.
    DeviceDeleted {
        device: Option<String>,
        path: String,
    },
    BlockIoError {
        device: String,
        node_name: Option<String>,
        operation: String,
        action: String,
        reason: String,
    },
    Suspend,
    Wakeup,
    Other,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        let s = |k: &str| self.data.get(k).and_then(Value::as_str).map(str::to_string);
        let b = |k: &str| self.data.get(k).and_then(Value::as_bool).unwrap_or(false);
        match self.name.as_str() {
            "SHUTDOWN" => EventKind::Shutdown { guest: b("guest"), reason: s("reason").unwrap_or_default() },
            "RESET" => EventKind::Reset { guest: b("guest"), reason: s("reason").unwrap_or_default() },
            "POWERDOWN" => EventKind::Powerdown,
            "STOP" => EventKind::Stop,
            "RESUME" => EventKind::Resume,
            "GUEST_PANICKED" => EventKind::GuestPanicked { action: s("action").unwrap_or_default() },
            "DEVICE_DELETED" => EventKind::DeviceDeleted { device: s("device"), path: s("path").unwrap_or_default() },
            "BLOCK_IO_ERROR" => EventKind::BlockIoError {
                device: s("device").unwrap_or_default(),
                node_name: s("node-name"),
                operation: s("operation").unwrap_or_default(),
                action: s("action").unwrap_or_default(),
                reason: s("reason").unwrap_or_default(),
            },
            "SUSPEND" => EventKind::Suspend,
            "WAKEUP" => EventKind::Wakeup,
            _ => EventKind::Other,
        }
    }
}

type Reply = Result<Value, QmpError>;

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the reader has stopped: why the connection is gone.
    closed: Option<QmpError>,
}

struct Shared {
    pending: Mutex<Pending>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// A write was cut off part-way (timeout or error): the stream may hold half
    /// a command, so nothing more is written on it.
    broken: AtomicBool,
    next_id: AtomicU64,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // The lock only guards map updates that cannot panic half-way.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connected QMP monitor. Dropping it stops its reader task and closes the
/// connection; the event channel then ends.
pub struct Qmp {
    shared: Arc<Shared>,
    greeting: Greeting,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

/// Removes a waiter whose `execute` future ended early (timeout, drop).
struct WaiterGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending().waiters.remove(&self.id);
    }
}

impl Qmp {
    /// Connect to QEMU's `-qmp unix:PATH,server=on` socket and negotiate
    /// capabilities. `timeout` bounds the handshake and is the default for
    /// every command.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<(Qmp, mpsc::UnboundedReceiver<Event>), QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| QmpError::Timeout { command: "connect".into(), timeout })??;
        Qmp::handshake(stream, timeout).await
    }

    /// Greeting and `qmp_capabilities` on an already connected stream.
    ///
    /// Events go to an unbounded channel: QEMU itself rate-limits the noisy
    /// ones, and dropping a SHUTDOWN because a consumer was slow would lose a
    /// VM's state change.
    pub async fn handshake(
        stream: UnixStream,
        cmd_timeout: Duration,
    ) -> Result<(Qmp, mpsc::UnboundedReceiver<Event>), QmpError> {
        let (r, w) = stream.into_split();
        let mut reader = BufReader::new(r);
        let mut line = Vec::new();
        let got = timeout(cmd_timeout, read_until_bounded(&mut reader, b'\n', &mut line))
            .await
            .map_err(|_| QmpError::Timeout { command: "greeting".into(), timeout: cmd_timeout })??;
        if !got {
            return Err(QmpError::Closed);
        }
        let greeting = parse_greeting(&line)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            writer: tokio::sync::Mutex::new(w),
            broken: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(read_loop(reader, shared.clone(), tx));
        let qmp = Qmp { shared, greeting, timeout: cmd_timeout, reader: task };
        qmp.execute("qmp_capabilities", Value::Null).await?;
        Ok((qmp, rx))
    }

    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// Run a command with the default timeout. `arguments` is an object, or
    /// `Null` for none. Returns the `return` value.
    pub async fn execute(&self, command: &str, arguments: Value) -> Result<Value, QmpError> {
        self.execute_timeout(command, arguments, self.timeout).await
    }

    /// Run a command; `limit` bounds the write and the wait for its reply.
    /// After a timeout the reply, if it comes, is dropped.
    pub async fn execute_timeout(&self, command: &str, arguments: Value, limit: Duration) -> Result<Value, QmpError> {
        self.run(command, arguments, limit, None).await
    }

    /// Run a command that takes a descriptor (`add-fd`, `getfd`): `fd` goes
    /// with the command's bytes (SCM_RIGHTS); QEMU keeps its own copy.
    pub async fn execute_with_fd(
        &self,
        command: &str,
        arguments: Value,
        fd: BorrowedFd<'_>,
    ) -> Result<Value, QmpError> {
        self.run(command, arguments, self.timeout, Some(fd)).await
    }

    async fn run(
        &self,
        command: &str,
        arguments: Value,
        limit: Duration,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<Value, QmpError> {
        let deadline = Instant::now() + limit;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let line = request(command, arguments, id)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.pending();
            if let Some(e) = &p.closed {
                return Err(e.clone());
            }
            p.waiters.insert(id, tx);
        }
        let _guard = WaiterGuard { shared: &self.shared, id };
        let timed_out = || QmpError::Timeout { command: command.to_string(), timeout: limit };

        // Only a write that had begun can leave half a line behind; waiting
        // for the lock behind another command is harmless to cut off.
        let started = AtomicBool::new(false);
        let write = async {
            let mut w = self.shared.writer.lock().await;
            if self.shared.broken.load(Ordering::Acquire) {
                return Err(QmpError::Closed);
            }
            started.store(true, Ordering::Relaxed);
            let res = match fd {
                None => w.write_all(&line).await,
                Some(fd) => write_with_fd(&mut w, &line, fd).await,
            };
            if res.is_err() {
                self.shared.broken.store(true, Ordering::Release);
            }
            res.map_err(QmpError::from)
        };
        match timeout_at(deadline, write).await {
            Ok(r) => r?,
            Err(_) => {
                if started.load(Ordering::Relaxed) {
                    self.shared.broken.store(true, Ordering::Release);
                    tracing::warn!(command, "QMP write timed out part-way; connection unusable");
                }
                return Err(timed_out());
            }
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(self.shared.pending().closed.clone().unwrap_or(QmpError::Closed)),
            Err(_) => Err(timed_out()),
        }
    }

    /// Whether the connection has ended (QEMU exited or closed it).
    pub fn is_closed(&self) -> bool {
        self.shared.pending().closed.is_some() || self.shared.broken.load(Ordering::Acquire)
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Write `line`, its first bytes carrying `fd` as ancillary data.
async fn write_with_fd(w: &mut OwnedWriteHalf, line: &[u8], fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let stream: &UnixStream = w.as_ref();
    let sent = loop {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || send_fd(stream.as_raw_fd(), line, fd.as_raw_fd())) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => break r?,
        }
    };
    w.write_all(&line[sent..]).await
}

/// One sendmsg of `bytes` with `fd` in an SCM_RIGHTS message; bytes sent.
fn send_fd(sock: RawFd, bytes: &[u8], fd: RawFd) -> std::io::Result<usize> {
    // SAFETY: the iovec and control buffer live across the call and are
    // sized with CMSG_SPACE for one descriptor.
    unsafe {
        let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut control = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        let n = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

fn parse_greeting(line: &[u8]) -> Result<Greeting, QmpError> {
    let v: Value =
        serde_json::from_slice(line).map_err(|e| QmpError::Protocol(format!("greeting is not JSON: {e}")))?;
    let qmp = v.get("QMP").ok_or_else(|| QmpError::Protocol(format!("not a QMP greeting: {v}")))?;
    let ver = &qmp["version"]["qemu"];
    let n = |k: &str| ver.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(Greeting {
        version: (n("major"), n("minor"), n("micro")),
        package: qmp["version"]["package"].as_str().unwrap_or_default().trim().to_string(),
        capabilities: qmp["capabilities"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    })
}

async fn read_loop(mut reader: BufReader<OwnedReadHalf>, shared: Arc<Shared>, events: mpsc::UnboundedSender<Event>) {
    let mut line = Vec::new();
    let end = loop {
        match read_until_bounded(&mut reader, b'\n', &mut line).await {
            Ok(false) => break QmpError::Closed,
            Err(e) => break e,
            Ok(true) => {}
        }
        let msg: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => break QmpError::Protocol(format!("bad JSON from QEMU: {e}")),
        };
        if let Some(name) = msg.get("event").and_then(Value::as_str) {
            let ts = msg
                .get("timestamp")
                .map(|t| (t["seconds"].as_i64().unwrap_or(0), t["microseconds"].as_i64().unwrap_or(0)));
            let ev =
                Event { name: name.to_string(), data: msg.get("data").cloned().unwrap_or(Value::Null), timestamp: ts };
            tracing::debug!(event = %ev.name, data = %ev.data, "QMP event");
            // Nobody listening is fine: events are advisory to this client.
            let _ = events.send(ev);
            continue;
        }
        let reply = if let Some(ret) = msg.get("return") {
            Ok(ret.clone())
        } else if let Some(err) = msg.get("error") {
            Err(command_error(err))
        } else {
            tracing::warn!(%msg, "QMP message neither event nor reply; ignored");
            continue;
        };
        let Some(id) = msg.get("id").and_then(Value::as_u64) else {
            tracing::warn!(%msg, "QMP reply without our id; ignored");
            continue;
        };
        match shared.pending().waiters.remove(&id) {
            // The caller may have gone (dropped future) between lookup and send.
            Some(tx) => drop(tx.send(reply)),
            None => tracing::debug!(id, "QMP reply to a command no longer waited for"),
        }
    };
    if end != QmpError::Closed {
        tracing::warn!(error = %end, "QMP connection ended");
    }
    let mut p = shared.pending();
    p.closed = Some(end.clone());
    for (_, tx) in p.waiters.drain() {
        let _ = tx.send(Err(end.clone()));
    }
}

#[cfg(test)]
mod tests {
    //! Protocol edge cases against a scripted peer; the real QEMU is exercised
    //! in tests/qemu.rs.
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}"#;

    struct Peer {
        r: tokio::io::Lines<BufReader<OwnedReadHalf>>,
        w: OwnedWriteHalf,
    }

    impl Peer {
        async fn recv(&mut self) -> Value {
            let l = self.r.next_line().await.unwrap().unwrap();
            serde_json::from_str(&l).unwrap()
        }
        async fn send(&mut self, s: &str) {
            self.w.write_all(format!("{s}\r\n").as_bytes()).await.unwrap();
        }
    }

    async fn connected() -> (Qmp, mpsc::UnboundedReceiver<Event>, Peer) {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = b.into_split();
        let mut peer = Peer { r: BufReader::new(r).lines(), w };
        let server = async {
            peer.send(GREETING).await;
            let cap = peer.recv().await;
            assert_eq!(cap["execute"], "qmp_capabilities");
            peer.send(&format!(r#"{{"return": {{}}, "id": {}}}"#, cap["id"])).await;
        };
        let (res, ()) = tokio::join!(Qmp::handshake(a, Duration::from_secs(5)), server);
        let (qmp, events) = res.unwrap();
        (qmp, events, peer)
    }

    #[tokio::test]
    async fn replies_are_matched_by_id_with_events_in_between() {
        let (qmp, mut events, mut peer) = connected().await;
        assert_eq!(qmp.greeting().version, (7, 2, 22));
        assert_eq!(qmp.greeting().package, "Debian 1:7.2");
        let server = async {
            let a = peer.recv().await;
            let b = peer.recv().await;
            assert_eq!(a["execute"], "query-status");
            assert_eq!(b["arguments"], json!({"id": "disk1"}));
            // Answer out of order, an event first.
            peer.send(r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#).await;
            peer.send(&format!(r#"{{"error": {{"class": "DeviceNotFound", "desc": "no disk1"}}, "id": {}}}"#, b["id"]))
                .await;
            peer.send(&format!(r#"{{"return": {{"status": "paused", "running": false}}, "id": {}}}"#, a["id"])).await;
            peer.send(r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#).await;
        };
        let (a, b, ()) = tokio::join!(
            qmp.execute("query-status", Value::Null),
            qmp.execute("device_del", json!({"id": "disk1"})),
            server
        );
        assert_eq!(a.unwrap()["status"], "paused");
        assert_eq!(b, Err(QmpError::Command { class: "DeviceNotFound".into(), desc: "no disk1".into() }));
        let stop = events.recv().await.unwrap();
        assert_eq!((stop.kind(), stop.timestamp), (EventKind::Stop, Some((1, 2))));
        let shut = events.recv().await.unwrap();
        assert_eq!(shut.kind(), EventKind::Shutdown { guest: true, reason: "guest-shutdown".into() });
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_closed_one_fails_pending_commands() {
        let (qmp, mut events, mut peer) = connected().await;
        let r = qmp.execute_timeout("query-status", Value::Null, Duration::from_millis(100)).await;
        assert!(matches!(r, Err(QmpError::Timeout { .. })), "{r:?}");
        // The late reply is dropped quietly; the connection still works.
        let late = peer.recv().await;
        peer.send(&format!(r#"{{"return": {{}}, "id": {}}}"#, late["id"])).await;
        let server = async {
            let c = peer.recv().await;
            peer.send(&format!(r#"{{"return": 7, "id": {}}}"#, c["id"])).await;
            peer
        };
        let (r, mut peer) = tokio::join!(qmp.execute("x", Value::Null), server);
        assert_eq!(r, Ok(json!(7)));

        let server = async {
            peer.recv().await;
            drop(peer);
        };
        let (r, ()) = tokio::join!(qmp.execute("quit", Value::Null), server);
        assert_eq!(r, Err(QmpError::Closed));
        assert!(qmp.is_closed());
        assert_eq!(qmp.execute("query-status", Value::Null).await, Err(QmpError::Closed));
        assert_eq!(events.recv().await, None);
    }

    #[tokio::test]
    async fn bad_greetings_and_arguments_are_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_r, mut w) = b.into_split();
        w.write_all(b"{\"hello\": 1}\n").await.unwrap();
        let r = Qmp::handshake(a, Duration::from_secs(5)).await;
        assert!(matches!(r, Err(QmpError::Protocol(_))), "{:?}", r.err());

        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert_eq!(Qmp::handshake(a, Duration::from_secs(5)).await.err(), Some(QmpError::Closed));

        let (qmp, _events, _peer) = connected().await;
        let r = qmp.execute("x", json!([1])).await;
        assert!(matches!(r, Err(QmpError::Protocol(_))), "{r:?}");
    }

    #[tokio::test]
    async fn garbage_from_the_peer_ends_the_connection() {
        let (qmp, mut events, mut peer) = connected().await;
        let server = async {
            peer.recv().await;
            peer.send("{not json").await;
            peer
        };
        let (r, _peer) = tokio::join!(qmp.execute("query-status", Value::Null), server);
        assert!(matches!(r, Err(QmpError::Protocol(_))), "{r:?}");
        assert_eq!(events.recv().await, None);
    }
}

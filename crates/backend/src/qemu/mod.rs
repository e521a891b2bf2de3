//! The QEMU backend ([`Qemu`]: one QEMU process per domain) and its
//! building blocks, with no XenAPI vocabulary in them:
//!
//! * [`argv`]: a domain's QEMU command line, from its spec;
//! * [`qmp`]: an asynchronous QMP client (commands matched to replies by id,
//!   events delivered on a channel while commands are in flight);
//! * [`agent`]: a client for qemu-guest-agent on its virtio-serial channel
//!   (resynchronised with `guest-sync-delimited`);
//! * [`confine`]: QEMU's own unprivileged user, and the descriptors it is
//!   handed instead of opening host files;
//! * `nbdc`: just enough NBD client to read a dirty bitmap's bits;
//! * [`probe`]: finds `qemu-system-x86_64`, its version, and whether KVM
//!   really runs guests here or TCG must be used.

pub mod agent;
pub mod argv;
mod backend;
pub mod confine;
mod nbdc;
pub mod probe;
pub mod qmp;

pub use backend::{Qemu, QemuConfig, GUEST_DIR};

use std::io;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The longest message accepted from QEMU or the agent: bigger than any reply
/// they send (query-* lists, guest-get-* reports) and small enough that a
/// peer that never sends a newline cannot exhaust memory.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Why a QMP or guest-agent exchange failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QmpError {
    #[error("I/O error: {message}")]
    Io { kind: io::ErrorKind, message: String },
    /// The peer sent something that is not the protocol (bad JSON, a message
    /// too long, a greeting missing).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The command ran and failed: QMP's error class and description.
    #[error("{class}: {desc}")]
    Command { class: String, desc: String },
    #[error("no answer to {command} within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// The connection is gone (the process exited or the socket was closed).
    #[error("connection closed")]
    Closed,
}

impl From<io::Error> for QmpError {
    fn from(e: io::Error) -> Self {
        // Writing to a peer that has gone is the same as reading its end.
        if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
            return QmpError::Closed;
        }
        QmpError::Io { kind: e.kind(), message: e.to_string() }
    }
}

/// Read up to and including `delim` into `buf` (cleared first), refusing to
/// buffer more than [`MAX_MESSAGE`]. Returns false at end of stream with
/// nothing read; a partial message at end of stream is an error.
pub(crate) async fn read_until_bounded<R: AsyncBufRead + Unpin>(
    r: &mut R,
    delim: u8,
    buf: &mut Vec<u8>,
) -> Result<bool, QmpError> {
    buf.clear();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            if buf.is_empty() {
                return Ok(false);
            }
            return Err(QmpError::Io {
                kind: io::ErrorKind::UnexpectedEof,
                message: "connection closed in the middle of a message".into(),
            });
        }
        let (n, done) = match avail.iter().position(|&b| b == delim) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if buf.len() + n > MAX_MESSAGE {
            return Err(QmpError::Protocol(format!("message longer than {MAX_MESSAGE} bytes")));
        }
        buf.extend_from_slice(&avail[..n]);
        r.consume(n);
        if done {
            return Ok(true);
        }
    }
}

/// The error of a `{"error": {"class", "desc"}}` reply.
pub(crate) fn command_error(err: &serde_json::Value) -> QmpError {
    let field = |k: &str| err.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    QmpError::Command { class: field("class"), desc: field("desc") }
}

/// `{"execute": command, "arguments": arguments, "id": id}` and a newline;
/// null arguments are left out, other non-objects refused.
pub(crate) fn request(command: &str, arguments: serde_json::Value, id: u64) -> Result<Vec<u8>, QmpError> {
    let mut msg = serde_json::Map::new();
    msg.insert("execute".into(), command.into());
    match arguments {
        serde_json::Value::Null => {}
        serde_json::Value::Object(_) => {
            msg.insert("arguments".into(), arguments);
        }
        other => return Err(QmpError::Protocol(format!("arguments of {command} must be an object, not {other}"))),
    }
    msg.insert("id".into(), id.into());
    let mut line = serde_json::to_vec(&msg).map_err(|e| QmpError::Protocol(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

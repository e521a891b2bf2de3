//! A client for qemu-guest-agent on the host end of its virtio-serial port
//! (QEMU's `-chardev socket,…,server=on` bound to `org.qemu.guest_agent.0`).
//!
//! The agent speaks QMP's command syntax without greeting or events, one
//! command at a time. The channel outlives agents and clients: it may hold a
//! previous client's unread replies, or half a request the agent is still
//! parsing, and a guest agent that restarts (reboot) starts from scratch. So
//! the client resynchronises with `guest-sync-delimited` on first use and
//! after anything that leaves the stream in doubt (a timeout, a command that
//! does not answer): it sends 0xFF (which makes the agent drop any partial
//! input), then a sync with a fresh id, and skips everything up to the 0xFF
//! sentinel the agent puts before that id's reply.

use super::{command_error, read_until_bounded, request, QmpError};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::time::{timeout_at, Instant};

/// The byte the agent accepts as "forget partial input" and puts before a
/// `guest-sync-delimited` reply.
const SENTINEL: u8 = 0xFF;

pub struct Agent {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    next_id: u64,
    synced: bool,
}

impl Agent {
    /// Connect to the agent's chardev socket. Nothing is sent until the first
    /// command (the agent may not be running yet: requests wait in the channel
    /// until it starts). `timeout` is the default per command.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Agent, QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| QmpError::Timeout { command: "connect".into(), timeout })??;
        Ok(Agent::from_stream(stream, timeout))
    }

    pub fn from_stream(stream: UnixStream, timeout: Duration) -> Agent {
        let (r, w) = stream.into_split();
        // Ids differ between clients and runs, so a stale reply to an earlier
        // client's sync cannot be taken for ours.
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32);
        Agent {
            reader: BufReader::new(r),
            writer: w,
            timeout,
            // Kept within 2^47 so the id survives any JSON number handling.
            next_id: seed & 0x7fff_ffff_ffff,
            synced: false,
        }
    }

    fn take_id(&mut self) -> u64 {
        self.next_id = (self.next_id + 1) & 0x7fff_ffff_ffff;
        self.next_id
    }

    async fn write(&mut self, bytes: &[u8], deadline: Instant, command: &str, limit: Duration) -> Result<(), QmpError> {
        match timeout_at(deadline, self.writer.write_all(bytes)).await {
            Ok(r) => r.map_err(QmpError::from),
            Err(_) => Err(QmpError::Timeout { command: command.to_string(), timeout: limit }),
        }
    }

    /// Bring the stream into step with the agent, waiting up to `limit` for it
    /// to answer (it may still be starting).
    pub async fn sync(&mut self, limit: Duration) -> Result<(), QmpError> {
        self.synced = false;
        let deadline = Instant::now() + limit;
        let id = self.take_id();
        let mut msg = vec![SENTINEL];
        msg.extend(request("guest-sync-delimited", json!({ "id": id }), id)?);
        self.write(&msg, deadline, "guest-sync-delimited", limit).await?;
        let timed_out = || QmpError::Timeout { command: "guest-sync-delimited".into(), timeout: limit };
        let mut buf = Vec::new();
        loop {
            // Skip to the sentinel, then read the reply that follows it.
            for delim in [SENTINEL, b'\n'] {
                match timeout_at(deadline, read_until_bounded(&mut self.reader, delim, &mut buf)).await {
                    Err(_) => return Err(timed_out()),
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => return Err(QmpError::Closed),
                    Ok(Err(e)) => return Err(e),
                }
            }
            match serde_json::from_slice::<Value>(&buf) {
                Ok(v) if v.get("return").and_then(Value::as_u64) == Some(id) => {
                    self.synced = true;
                    return Ok(());
                }
                // An older sync's reply, or noise: keep looking.
                Ok(v) => tracing::debug!(%v, "skipping stale guest agent reply"),
                Err(_) => tracing::debug!("skipping unparsable guest agent data"),
            }
        }
    }

    /// Run a command with the default timeout; `arguments` is an object or
    /// `Null`. Returns the `return` value.
    pub async fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, QmpError> {
        self.execute_timeout(command, arguments, self.timeout).await
    }

    /// Run a command; `limit` bounds the sync (if needed), the write and the
    /// wait for the reply together.
    pub async fn execute_timeout(
        &mut self,
        command: &str,
        arguments: Value,
        limit: Duration,
    ) -> Result<Value, QmpError> {
        let deadline = Instant::now() + limit;
        if !self.synced {
            self.sync(limit).await?;
        }
        let id = self.take_id();
        let line = request(command, arguments, id)?;
        let res = self.exchange(&line, id, deadline, command, limit).await;
        if matches!(res, Err(ref e) if !matches!(e, QmpError::Command { .. })) {
            // A late reply would otherwise be read as the next command's.
            self.synced = false;
        }
        res
    }

    async fn exchange(
        &mut self,
        line: &[u8],
        id: u64,
        deadline: Instant,
        command: &str,
        limit: Duration,
    ) -> Result<Value, QmpError> {
        self.write(line, deadline, command, limit).await?;
        let mut buf = Vec::new();
        loop {
            match timeout_at(deadline, read_until_bounded(&mut self.reader, b'\n', &mut buf)).await {
                Err(_) => return Err(QmpError::Timeout { command: command.to_string(), timeout: limit }),
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Err(QmpError::Closed),
                Ok(Err(e)) => return Err(e),
            }
            let text = buf.strip_prefix(&[SENTINEL]).unwrap_or(&buf);
            let msg: Value = match serde_json::from_slice(text) {
                Ok(v) => v,
                Err(e) => return Err(QmpError::Protocol(format!("bad JSON from the guest agent: {e}"))),
            };
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                tracing::debug!(%msg, "skipping guest agent reply to another request");
                continue;
            }
            if let Some(ret) = msg.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = msg.get("error") {
                return Err(command_error(err));
            }
            return Err(QmpError::Protocol(format!("guest agent reply neither return nor error: {msg}")));
        }
    }

    /// Send a command that answers only when it fails (`guest-shutdown`,
    /// `guest-suspend-*`): success is the guest going away, which the caller
    /// sees elsewhere (QMP events). The stream is resynchronised before the
    /// next command.
    pub async fn send_no_reply(&mut self, command: &str, arguments: Value) -> Result<(), QmpError> {
        let limit = self.timeout;
        let deadline = Instant::now() + limit;
        if !self.synced {
            self.sync(limit).await?;
        }
        let id = self.take_id();
        let line = request(command, arguments, id)?;
        self.synced = false;
        self.write(&line, deadline, command, limit).await
    }
}

#[cfg(test)]
mod tests {
    //! The resynchronisation logic against a scripted peer; the real agent is
    //! exercised in tests/qemu.rs.
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    async fn recv(r: &mut BufReader<OwnedReadHalf>) -> Value {
        let mut buf = Vec::new();
        r.read_until(b'\n', &mut buf).await.unwrap();
        let text = buf.strip_prefix(&[SENTINEL]).unwrap_or(&buf);
        serde_json::from_slice(text).unwrap()
    }

    #[tokio::test]
    async fn stale_bytes_are_skipped_and_replies_matched_by_id() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut agent = Agent::from_stream(a, Duration::from_secs(5));
        let (r, mut w) = b.into_split();
        let mut r = BufReader::new(r);
        let peer = async {
            let sync = recv(&mut r).await;
            assert_eq!(sync["execute"], "guest-sync-delimited");
            let id = sync["arguments"]["id"].as_u64().unwrap();
            // Stale output first: half a reply, an old sync, a parse error.
            w.write_all(b"{\"return\": {\"half\"").await.unwrap();
            w.write_all(b"\n\xff{\"return\": 12}\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"stray\"}}\n")
                .await
                .unwrap();
            w.write_all(b"\0\0").await.unwrap();
            w.write_all(b"\xff").await.unwrap();
            w.write_all(format!("{{\"return\": {id}}}\n").as_bytes()).await.unwrap();
            let ping = recv(&mut r).await;
            assert_eq!(ping["execute"], "guest-get-osinfo");
            w.write_all(b"{\"return\": {\"id\": \"old\"}, \"id\": 1}\n").await.unwrap();
            w.write_all(format!("{{\"return\": {{\"id\": \"debian\"}}, \"id\": {}}}\n", ping["id"]).as_bytes())
                .await
                .unwrap();
            let bad = recv(&mut r).await;
            w.write_all(
                format!(
                    "{{\"error\": {{\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}, \"id\": {}}}\n",
                    bad["id"]
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            (r, w)
        };
        let client = async {
            let os = agent.execute("guest-get-osinfo", Value::Null).await;
            let bad = agent.execute("guest-nope", Value::Null).await;
            (os, bad)
        };
        let ((os, bad), (_r, _w)) = tokio::join!(client, peer);
        assert_eq!(os.unwrap()["id"], "debian");
        assert_eq!(bad, Err(QmpError::Command { class: "CommandNotFound".into(), desc: "nope".into() }));
        assert!(agent.synced, "a command error leaves the stream in step");
    }

    #[tokio::test]
    async fn a_silent_agent_times_out_and_the_next_command_resyncs() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut agent = Agent::from_stream(a, Duration::from_secs(5));
        let r = agent.execute_timeout("guest-ping", Value::Null, Duration::from_millis(100)).await;
        assert!(matches!(r, Err(QmpError::Timeout { .. })), "{r:?}");
        assert!(!agent.synced);
        drop(b);
        assert_eq!(agent.execute("guest-ping", Value::Null).await, Err(QmpError::Closed));
    }
}

//! The thin CLI protocol over the raw connection: the handshake, framed
//! commands out, responses and blobs in — every read under a timeout so a
//! silent or malformed client cannot hold the handler.

use cliproto::{Blob, Command, Message, Response};
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a client may take to answer the handshake or a prompt.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Between the heartbeats (`Wait`) a client sends during transfers; the
/// reference client sends one every 300 s.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(900);
/// Largest blob (`Load`, `Prompt`) accepted from a client.
pub const MAX_BLOB: usize = 16 << 20;

/// The connection halves sit in mutexes only so that `Proto` is `Sync`
/// (commands hold `&Cx` across awaits); they are reached through
/// `get_mut`, never locked.
pub struct Proto<'a> {
    r: Mutex<&'a mut (dyn AsyncRead + Unpin + Send)>,
    w: Mutex<&'a mut (dyn AsyncWrite + Unpin + Send)>,
}

fn timeout_err() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the CLI client did not answer in time")
}

impl<'a> Proto<'a> {
    pub fn new(r: &'a mut (dyn AsyncRead + Unpin + Send), w: &'a mut (dyn AsyncWrite + Unpin + Send)) -> Self {
        Proto { r: Mutex::new(r), w: Mutex::new(w) }
    }

    fn rw(&mut self) -> (&mut (dyn AsyncRead + Unpin + Send), &mut (dyn AsyncWrite + Unpin + Send)) {
        let r = self.r.get_mut().unwrap_or_else(PoisonError::into_inner);
        let w = self.w.get_mut().unwrap_or_else(PoisonError::into_inner);
        (&mut **r, &mut **w)
    }

    /// Send ours, then read and check the client's (major must match).
    pub async fn handshake(&mut self) -> io::Result<(i32, i32)> {
        let (r, w) = self.rw();
        w.write_all(&cliproto::handshake()).await?;
        w.flush().await?;
        let mut b = [0u8; cliproto::HANDSHAKE_LEN];
        tokio::time::timeout(REPLY_TIMEOUT, r.read_exact(&mut b)).await.map_err(|_| timeout_err())??;
        let (major, minor) = cliproto::parse_handshake(&b)?;
        if major != cliproto::MAJOR {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("client protocol {major}.{minor}")));
        }
        Ok((major, minor))
    }

    pub async fn send(&mut self, c: Command) -> io::Result<()> {
        let (_, w) = self.rw();
        w.write_all(&cliproto::frame(&Message::Command(c))).await?;
        w.flush().await
    }

    pub async fn recv(&mut self, limit: Duration) -> io::Result<Message> {
        let (r, _) = self.rw();
        let fut = async {
            let mut head = [0u8; 4];
            r.read_exact(&mut head).await?;
            let n = cliproto::frame_len(head)?;
            if n > 4096 {
                // Clients only send responses and blob headers.
                return Err(io::Error::new(io::ErrorKind::InvalidData, "oversized frame from client"));
            }
            let mut body = vec![0u8; n];
            r.read_exact(&mut body).await?;
            Ok(cliproto::decode(&body)?)
        };
        tokio::time::timeout(limit, fut).await.map_err(|_| timeout_err())?
    }

    /// Wait for the client's verdict on a command, skipping heartbeats.
    pub async fn response(&mut self, limit: Duration) -> io::Result<Response> {
        loop {
            match self.recv(limit).await? {
                Message::Response(Response::Wait) => continue,
                Message::Response(r) => return Ok(r),
                other => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected message {other:?}")))
                }
            }
        }
    }

    /// Read chunks up to `End` (after `Load` or `Prompt`).
    pub async fn blob(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.recv(REPLY_TIMEOUT).await? {
                Message::Blob(Blob::Chunk(n)) => {
                    let n = n as usize;
                    if out.len() + n > MAX_BLOB {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "blob too large"));
                    }
                    let start = out.len();
                    out.resize(start + n, 0);
                    tokio::time::timeout(REPLY_TIMEOUT, self.rw().0.read_exact(&mut out[start..]))
                        .await
                        .map_err(|_| timeout_err())??;
                }
                Message::Blob(Blob::End) => return Ok(out),
                Message::Response(Response::Wait) => continue,
                Message::Response(Response::Failed) => {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "the client could not read the file"))
                }
                other => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected message {other:?}")))
                }
            }
        }
    }
}

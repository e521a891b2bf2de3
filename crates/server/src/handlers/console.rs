//! `CONNECT /console` (and `GET /console`): a VM's console over the HTTP
//! connection, as xapi's `console.ml`. The query names a console or a VM
//! (`ref=` or `uuid=`; a VM means its `rfb` console). After `200 OK` the
//! connection carries the console protocol both ways: proxied to a Unix
//! socket (QEMU's VNC), or spoken here for the simulator ([`crate::rfb`]).
//! A `GET` with a WebSocket upgrade (Xen Orchestra, noVNC) gets `101` and
//! the same bytes as binary messages.

use super::{Head, Reply};
use crate::Server;
use backend::Console;
use model::schema::{CLASS_CONSOLE, CLASS_VM};
use model::types::fields;
use model::types::{ConsoleProtocol, VmPowerState};
use model::Value;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

fn s_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The console a request names: a console, or a VM's default (`rfb`) one.
fn console_of_request(s: &Server, head: &Head) -> Option<String> {
    let (cc, vmc) = (&CLASS_CONSOLE, &CLASS_VM);
    let params = [head.param("uuid"), head.param("ref")];
    for p in params.into_iter().flatten() {
        if let Some(con) = super::find_param(s, cc, Some(p)) {
            return Some(con);
        }
        if let Some(vm) = super::find_param(s, vmc, Some(p)) {
            let st = s.db.read();
            let row = st.get(vmc, &vm)?;
            let cons = crate::rows::members(row.get(fields::vm::CONSOLES.index));
            return cons
                .into_iter()
                .find(|c| st.get(cc, c).is_some_and(|r| r.read(fields::console::PROTOCOL) == ConsoleProtocol::Rfb));
        }
    }
    None
}

/// Where to reach a console whose VM runs here (power_state Running and
/// resident on this host, as xapi checks); None otherwise.
fn endpoint(s: &Server, console: &str) -> Option<(String, Console)> {
    let (cc, vmc) = (&CLASS_CONSOLE, &CLASS_VM);
    let (uuid, running, text) = {
        let st = s.db.read();
        let con = st.get(cc, console)?;
        let text = con.read(fields::console::PROTOCOL) == ConsoleProtocol::Vt100;
        let vm = s_of(con.get(fields::console::VM.index));
        let row = st.get(vmc, &vm)?;
        let running = row.read(fields::vm::POWER_STATE) == VmPowerState::Running
            && row.read(fields::vm::RESIDENT_ON).as_str() == s.host.as_str();
        (s_of(row.get(fields::vm::UUID.index)), running, text)
    };
    if !running {
        return None;
    }
    // A text console is the serial line's raw bytes, proxied as VNC is.
    let ep = if text { s.backend.text_console(&uuid).map(Console::Unix) } else { s.backend.console(&uuid) };
    ep.map(|c| (uuid, c))
}

/// Resolves once the VM's domain is gone (a simulated console then ends, as
/// a proxied one does when QEMU exits).
async fn domain_gone(s: &Server, uuid: &str) {
    while s.backend.console(uuid).is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

pub async fn console(
    s: &Server,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    let upgrade = head.header("upgrade").is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"));
    if head.method == "GET" && upgrade {
        return websocket(s, head, body, reply).await;
    }
    let Some(auth) = super::require_auth(s, head, reply, "connect_console").await? else { return Ok(()) };
    let out = connect(s, head, body, reply).await;
    super::release(s, &auth);
    out
}

/// The subprotocol a WebSocket console speaks: raw bytes in binary messages.
const BINARY: &str = "binary";

async fn websocket(
    s: &Server,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    // What this server cannot upgrade gets 501, as xapi answers a failed
    // upgrade: another WebSocket version, no key, a request that was not
    // the first on its connection, or only the old base64 subprotocol.
    let key = head.header("sec-websocket-key").map(str::trim).filter(|k| !k.is_empty());
    let version_ok = head.header("sec-websocket-version").is_some_and(|v| v.trim() == "13");
    let asked: Vec<&str> =
        head.header("sec-websocket-protocol").map(|p| p.split(',').map(str::trim).collect()).unwrap_or_default();
    let protocol_ok = asked.is_empty() || asked.iter().any(|p| p.eq_ignore_ascii_case(BINARY));
    let (Some(key), true, true, true) = (key, version_ok, protocol_ok, reply.owns_connection()) else {
        return reply.error_page(501, "Not Implemented", "The WebSocket upgrade failed.", &[]).await;
    };
    let Some(auth) = super::require_auth(s, head, reply, "connect_console_ws").await? else { return Ok(()) };
    let out = async {
        let Some(con) = console_of_request(s, head) else { return reply.not_found().await };
        let Some((uuid, ep)) = endpoint(s, &con) else { return reply.not_found().await };
        // A proxied console must answer before the upgrade is accepted.
        let sock = match &ep {
            Console::Unix(l) => match l.connect().await {
                Ok(sock) => Some(sock),
                Err(_) => return reply.not_found().await,
            },
            Console::Simulated { .. } => None,
        };
        let mut h = vec![
            ("Upgrade", "websocket".to_string()),
            ("Connection", "Upgrade".to_string()),
            ("Sec-WebSocket-Accept", tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())),
        ];
        if !asked.is_empty() {
            h.push(("Sec-WebSocket-Protocol", BINARY.to_string()));
        }
        reply.head(101, "Switching Protocols", &h).await?;
        reply.body().flush().await?;
        let io = tokio::io::join(body, reply.body());
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            io,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        match (ep, sock) {
            (_, Some(sock)) => ws_pump(ws, sock).await,
            (Console::Simulated { width, height, name }, None) => {
                // The simulator's RFB server talks through an in-memory pipe.
                let (ours, theirs) = tokio::io::duplex(64 << 10);
                let (mut r, mut w) = tokio::io::split(ours);
                tokio::select! {
                    r = crate::rfb::serve(&mut r, &mut w, width, height, &name) => r,
                    r = ws_pump(ws, theirs) => r,
                    _ = domain_gone(s, &uuid) => Ok(()),
                }
            }
            (Console::Unix(_), None) => Ok(()),
        }
    }
    .await;
    super::release(s, &auth);
    out
}

/// Carry bytes between WebSocket binary messages and a byte stream until
/// either side ends.
async fn ws_pump<IO, S>(ws: tokio_tungstenite::WebSocketStream<S>, io: IO) -> io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut tx, mut rx) = ws.split();
    let (mut r, mut w) = tokio::io::split(io);
    let up = async {
        while let Some(m) = rx.next().await {
            match m.map_err(io::Error::other)? {
                Message::Binary(b) => w.write_all(&b).await?,
                Message::Close(_) => break,
                // Text is not part of the binary subprotocol; pings are
                // answered by the WebSocket layer.
                _ => {}
            }
        }
        w.shutdown().await
    };
    let down = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            tx.send(Message::binary(buf[..n].to_vec())).await.map_err(io::Error::other)?;
        }
        tx.close().await.map_err(io::Error::other)
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

async fn connect(
    s: &Server,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    let Some(con) = console_of_request(s, head) else { return reply.not_found().await };
    let Some((uuid, ep)) = endpoint(s, &con) else { return reply.not_found().await };
    match ep {
        Console::Simulated { width, height, name } => {
            reply.console_ok().await?;
            tokio::select! {
                r = crate::rfb::serve(body, reply.body(), width, height, &name) => r,
                _ = domain_gone(s, &uuid) => Ok(()),
            }
        }
        Console::Unix(l) => {
            let Ok(sock) = l.connect().await else { return reply.not_found().await };
            reply.console_ok().await?;
            proxy(body, reply.body(), sock).await
        }
    }
}

/// Copy bytes both ways until either side ends.
async fn proxy(
    client_r: &mut (dyn AsyncRead + Unpin + Send),
    client_w: &mut (dyn AsyncWrite + Unpin + Send),
    sock: tokio::net::UnixStream,
) -> io::Result<()> {
    let (mut sr, mut sw) = sock.into_split();
    let up = async {
        tokio::io::copy(client_r, &mut sw).await?;
        sw.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut sr, client_w).await?;
        client_w.flush().await
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

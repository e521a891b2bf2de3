//! `CONNECT /console` (and `GET /console`): a VM's console over the HTTP
//! connection, as xapi's `console.ml`. The query names a console or a VM
//! (`ref=` or `uuid=`; a VM means its `rfb` console). After `200 OK` the
//! connection carries the console protocol both ways: proxied to a Unix
//! socket (QEMU's VNC), or spoken here for the simulator ([`crate::rfb`]).

use super::{Head, Reply};
use crate::{class, field, Server};
use backend::Console;
use model::Value;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

fn s_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The console a request names: a console, or a VM's default (`rfb`) one.
fn console_of_request(s: &Server, head: &Head) -> Option<String> {
    let (cc, vmc) = (class("console"), class("VM"));
    let params = [head.param("uuid"), head.param("ref")];
    for p in params.into_iter().flatten() {
        if let Some(con) = super::find_param(s, cc, Some(p)) {
            return Some(con);
        }
        if let Some(vm) = super::find_param(s, vmc, Some(p)) {
            let st = s.db.read();
            let row = st.get(vmc, &vm)?;
            let cons = crate::lifecycle::members(row.get(field(vmc, "consoles")));
            return cons
                .into_iter()
                .find(|c| st.get(cc, c).is_some_and(|r| r.get(field(cc, "protocol")).as_str() == Some("rfb")));
        }
    }
    None
}

/// Where to reach a console whose VM runs here (power_state Running and
/// resident on this host, as xapi checks); None otherwise.
fn endpoint(s: &Server, console: &str) -> Option<(String, Console)> {
    let (cc, vmc) = (class("console"), class("VM"));
    let (uuid, running) = {
        let st = s.db.read();
        let vm = s_of(st.get(cc, console)?.get(field(cc, "VM")));
        let row = st.get(vmc, &vm)?;
        let running = row.get(field(vmc, "power_state")).as_str() == Some("Running")
            && row.get(field(vmc, "resident_on")).as_str() == Some(s.host.as_str());
        (s_of(row.get(field(vmc, "uuid"))), running)
    };
    if !running {
        return None;
    }
    s.backend.console(&uuid).map(|c| (uuid, c))
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
    // A WebSocket upgrade needs xapi's wsproxy, which is not here: 501 as
    // xapi answers when the upgrade fails.
    if head.method == "GET" && head.header("upgrade").is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket")) {
        return reply.error_page(501, "Not Implemented", "WebSocket consoles are not supported.", &[]).await;
    }
    let Some(auth) = super::require_auth(s, head, reply, "connect_console").await? else { return Ok(()) };
    let out = connect(s, head, body, reply).await;
    super::release(s, &auth);
    out
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
        Console::Unix(path) => {
            let Ok(sock) = tokio::net::UnixStream::connect(&path).await else { return reply.not_found().await };
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

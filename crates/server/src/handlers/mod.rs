//! The HTTP interface beyond RPC: streaming handlers (export, import, raw
//! VDIs, the CLI, consoles) with xapi's authentication rules.
//!
//! A handler sees a parsed request [`Head`], a body reader and a [`Reply`].
//! The same handler serves a raw connection (what `xe`, `curl -T` and other
//! HTTP/1.0 clients need: bodies without Content-Length, binary protocols
//! after the request) and a request hyper already parsed on a keep-alive
//! connection.

pub mod console;
pub mod dbdump;
pub mod export;
pub mod import;
pub mod pool;
pub mod rrd;
pub mod transfer;

use crate::{ApiError, Server};
use std::io;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

impl Head {
    /// This request's path and query on another host, as xapi's redirects
    /// name it: `https://<address><path>?<query>`.
    pub fn url_on(&self, address: &str) -> String {
        let enc = |v: &str| {
            v.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        format!("https://{}{}?{}", crate::url_host(address), self.path, q.join("&"))
    }
}

/// A request line and headers.
#[derive(Clone, Debug, Default)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub http10: bool,
    /// Arrived on the Unix socket: pre-authenticated root.
    pub local: bool,
}

fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split `a=b&c=d` (percent-decoded).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (unpct(k), unpct(v)),
            None => (unpct(p), String::new()),
        })
        .collect()
}

impl Head {
    pub fn from_target(method: &str, target: &str, headers: Vec<(String, String)>, http10: bool, local: bool) -> Head {
        let (path, q) = target.split_once('?').unwrap_or((target, ""));
        Head { method: method.to_string(), path: path.to_string(), query: parse_query(q), headers, http10, local }
    }
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(a, _)| a.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }
    pub fn cookie(&self, k: &str) -> Option<String> {
        self.header("cookie").and_then(|c| {
            c.split(';').filter_map(|p| p.trim().split_once('=')).find(|(a, _)| *a == k).map(|(_, v)| v.to_string())
        })
    }
}

/// Where a handler writes its answer: straight to a raw connection, or
/// through hyper (head via a channel, body through a pipe).
pub enum Reply<'a> {
    /// `framed`: the head gave a Content-Length, so the client knows where
    /// the answer ends without waiting for the connection to close.
    Raw {
        w: &'a mut (dyn AsyncWrite + Unpin + Send),
        http10: bool,
        sent: bool,
        framed: bool,
    },
    Hyper {
        head: Option<tokio::sync::oneshot::Sender<StatusHead>>,
        body: tokio::io::DuplexStream,
    },
}

/// A response's status and headers.
pub type StatusHead = (u16, Vec<(String, String)>);

impl Reply<'_> {
    /// Send the status line and headers (once).
    pub async fn head(&mut self, code: u16, reason: &str, headers: &[(&str, String)]) -> io::Result<()> {
        match self {
            Reply::Raw { w, http10, sent, framed } => {
                if *sent {
                    return Ok(());
                }
                *sent = true;
                *framed = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
                let mut s = format!("HTTP/{} {code} {reason}\r\n", if *http10 { "1.0" } else { "1.1" });
                for (k, v) in headers {
                    s.push_str(&format!("{k}: {v}\r\n"));
                }
                s.push_str("\r\n");
                w.write_all(s.as_bytes()).await
            }
            Reply::Hyper { head, .. } => {
                if let Some(tx) = head.take() {
                    let _ = tx.send((code, headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()));
                }
                Ok(())
            }
        }
    }

    /// The body writer (after [`Reply::head`]).
    pub fn body(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Reply::Raw { w, .. } => &mut **w,
            Reply::Hyper { body, .. } => body,
        }
    }

    /// Answer as HTTP/1.0 (what xapi's export says), on a raw connection.
    pub fn set_http10(&mut self) {
        if let Reply::Raw { http10, .. } = self {
            *http10 = true;
        }
    }

    /// `Expect: 100-continue` on a raw connection: let the client send the
    /// body now (hyper does this itself when the body is read).
    pub async fn continue_100(&mut self, head: &Head) -> io::Result<()> {
        let expects = head.header("expect").is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        if let Reply::Raw { w, http10: false, sent: false, .. } = self {
            if expects {
                w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                w.flush().await?;
            }
        }
        Ok(())
    }

    /// The `200 OK` xapi sends before a console's bytes (`Http.http_200_ok`:
    /// HTTP/1.1 whatever the request said, no body framing). On a raw
    /// connection [`Reply::body`] is then the client's socket.
    pub async fn console_ok(&mut self) -> io::Result<()> {
        let cache = ("Cache-Control", "no-cache, no-store".to_string());
        match self {
            Reply::Raw { w, sent, .. } => {
                if *sent {
                    return Ok(());
                }
                *sent = true;
                w.write_all(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCache-Control: no-cache, no-store\r\n\r\n")
                    .await?;
                w.flush().await
            }
            Reply::Hyper { .. } => self.head(200, "OK", &[cache]).await,
        }
    }

    /// Whether this reply owns its connection (the first request on it),
    /// so that the connection can change protocol (a WebSocket upgrade).
    pub fn owns_connection(&self) -> bool {
        matches!(self, Reply::Raw { .. })
    }

    /// Whether a raw reply's head gave the body's length.
    pub fn framed(&self) -> bool {
        matches!(self, Reply::Raw { framed: true, .. })
    }

    pub fn head_sent(&self) -> bool {
        match self {
            Reply::Raw { sent, .. } => *sent,
            Reply::Hyper { head, .. } => head.is_none(),
        }
    }

    /// An HTML error page as xapi sends them (connection closes after).
    pub async fn error_page(
        &mut self,
        code: u16,
        reason: &str,
        text: &str,
        extra: &[(&str, String)],
    ) -> io::Result<()> {
        let body = format!("<html><body><h1>HTTP {code} {reason}</h1>{text}</body></html>");
        let mut h: Vec<(&str, String)> = vec![
            ("content-type", "text/html".into()),
            ("connection", "close".into()),
            ("cache-control", "no-cache, no-store".into()),
            ("content-length", body.len().to_string()),
        ];
        h.extend(extra.iter().cloned());
        self.head(code, reason, &h).await?;
        let w = self.body();
        w.write_all(body.as_bytes()).await?;
        w.flush().await
    }

    pub async fn unauthorised(&mut self, realm: &str) -> io::Result<()> {
        self.error_page(
            401,
            "Unauthorised",
            "Please check your credentials and retry.",
            &[("WWW-Authenticate", format!("Basic realm=\"{realm}\""))],
        )
        .await
    }

    pub async fn forbidden(&mut self) -> io::Result<()> {
        self.error_page(403, "Forbidden", "Access to the requested resource is forbidden.", &[]).await
    }

    /// 302 to `url` (xapi sends a host's statistics requests to the host
    /// that has them).
    pub async fn redirect(&mut self, url: &str) -> io::Result<()> {
        self.error_page(302, "Found", "The resource is on another host.", &[("location", url.to_string())]).await
    }

    pub async fn not_found(&mut self) -> io::Result<()> {
        self.error_page(404, "Not Found", "The requested resource was not found.", &[]).await
    }

    pub async fn bad_request(&mut self, why: &str) -> io::Result<()> {
        self.error_page(
            400,
            "Bad Request",
            &format!("The HTTP request was malformed. {}", crate::http::escape_html(why)),
            &[],
        )
        .await
    }

    /// A XenAPI error escaping a handler: xapi answers 500 with the error text.
    pub async fn api_error(&mut self, e: &ApiError) -> io::Result<()> {
        let text = format!("{}", e);
        self.error_page(500, "Internal Server Error", &crate::http::escape_html(&text), &[]).await
    }
}

/// A session a handler runs under, and whether it must be logged out after
/// (HTTP basic authentication makes a session for one request).
pub struct Auth {
    pub session: String,
    pub temporary: bool,
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// xapi's order: the Unix socket is root; then `session_id` (cookie, then
/// query); then HTTP basic auth (a temporary session). None: the caller
/// answers 401.
pub async fn authenticate(s: &Server, head: &Head) -> Result<Option<Auth>, ApiError> {
    let sid = head.cookie("session_id").or_else(|| head.param("session_id").map(str::to_string));
    if let Some(sid) = sid {
        crate::pooling::check_session(s, &sid).await?;
        return Ok(Some(Auth { session: sid, temporary: false }));
    }
    if let Some(basic) =
        head.header("authorization").and_then(|a| a.strip_prefix("Basic ").or_else(|| a.strip_prefix("basic ")))
    {
        let creds = base64_decode(basic.trim()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let (user, pw) = creds.split_once(':').unwrap_or((creds.as_str(), ""));
        let agent = head.header("user-agent").unwrap_or("client").to_string();
        let spec = crate::session::LoginSpec {
            user,
            password: pw,
            originator: &format!("{agent} using Basic auth"),
            local: head.local,
            pool: true,
        };
        let session = s.sessions.login(s, spec).await?;
        return Ok(Some(Auth { session, temporary: true }));
    }
    if head.local {
        let spec =
            crate::session::LoginSpec { user: "root", password: "", originator: "local HTTP", local: true, pool: true };
        let session = s.sessions.login(s, spec).await?;
        return Ok(Some(Auth { session, temporary: true }));
    }
    Ok(None)
}

pub fn release(s: &Server, a: &Auth) {
    if a.temporary {
        let _ = s.sessions.logout(s, &a.session);
    }
}

/// A transfer whose disks are on SRs this host has not plugged (a member's
/// local SR) goes to a host of the pool that has them, with a 302 as xapi
/// sends (the client's session and task are good there: members accept the
/// pool's sessions and report to the master's tasks). True when sent.
pub async fn sent_to_data(
    s: &Server,
    head: &Head,
    reply: &mut Reply<'_>,
    srs: &std::collections::BTreeSet<String>,
    prefer: Option<&str>,
) -> io::Result<bool> {
    let address = {
        let st = s.db.read();
        crate::storage::host_with_srs(&st, srs, &s.host, prefer)
            .and_then(|h| st.read(&h, model::types::fields::host::ADDRESS).filter(|a| !a.is_empty()))
    };
    let Some(address) = address else { return Ok(false) };
    tracing::info!(path = %head.path, host = %address, "the transfer's disks are on another host: redirected there");
    reply.redirect(&head.url_on(&address)).await?;
    Ok(true)
}

/// Authenticate a handler request; None means a 401 went out (and a task
/// the caller named failed with SESSION_AUTHENTICATION_FAILED).
///
/// Then the RBAC check of the action's permission (`http/<realm>`, xapi's
/// `Xapi_http.assert_credentials_ok`): a denial is a 403 (and fails the task).
pub async fn require_auth(s: &Server, head: &Head, reply: &mut Reply<'_>, realm: &str) -> io::Result<Option<Auth>> {
    match authenticate(s, head).await {
        Ok(Some(a)) => match permit(s, &a.session, realm) {
            Ok(()) => {
                // Reads of statistics and of the log itself are not audited.
                let audited = realm.starts_with("put_")
                    || realm.starts_with("get_export")
                    || realm.starts_with("connect_console")
                    || realm == "get_pool_xml_db_sync";
                if audited {
                    crate::audit::allowed_http(s, &a.session, realm);
                }
                Ok(Some(a))
            }
            Err(e) => {
                if let Some(t) = head.param("task_id") {
                    if s.db.read().get(&model::schema::CLASS_TASK, t).is_some() {
                        crate::task::complete(s, t, &Err(e));
                    }
                }
                release(s, &a);
                reply.forbidden().await?;
                Ok(None)
            }
        },
        Ok(None) | Err(_) => {
            if let Some(t) = head.param("task_id") {
                if s.db.read().get(&model::schema::CLASS_TASK, t).is_some() {
                    crate::task::complete(
                        s,
                        t,
                        &Err(ApiError::SessionAuthenticationFailed { uname: String::new(), message: String::new() }),
                    );
                }
            }
            reply.unauthorised(realm).await?;
            Ok(None)
        }
    }
}

/// May this session use the HTTP action? RBAC_PERMISSION_DENIED if not.
pub fn permit(s: &Server, session: &str, action: &str) -> Result<(), ApiError> {
    let have = match s.sessions.grant(s, session) {
        crate::session::Grant::Superuser => return Ok(()),
        crate::session::Grant::Role(r) => Some(r),
        crate::session::Grant::Nothing => None,
    };
    let perm = format!("http/{action}");
    let min = crate::roles::min_role(&perm).unwrap_or(model::schema::Role::Nobody);
    if have.is_some_and(|r| crate::roles::holds(r, min)) {
        return Ok(());
    }
    tracing::info!(permission = %perm, "RBAC: HTTP action denied");
    crate::audit::denied(s, session, &perm, &perm, &[]);
    Err(ApiError::RbacPermissionDenied {
        permission: perm,
        message: format!(
            "No permission in user session. (Roles with this permission: {})",
            crate::roles::roles_holding(min).join(", ")
        ),
    })
}

/// An object named by a ref, or by a uuid (also accepted where a ref is
/// expected: the SDK guide's own example passes a VM uuid as `ref`).
pub fn find_param(s: &Server, c: &model::schema::ClassDef, v: Option<&str>) -> Option<String> {
    let v = v?.trim();
    let st = s.db.read();
    if st.get(c, v).is_some() {
        return Some(v.to_string());
    }
    st.table(c).by_uuid(v).map(str::to_string)
}

/// The object of a `ref=` or `uuid=` query.
pub fn find_object(s: &Server, c: &model::schema::ClassDef, head: &Head) -> Option<String> {
    find_param(s, c, head.param("ref")).or_else(|| find_param(s, c, head.param("uuid")))
}

/// The paths handlers serve, by method (everything else is RPC).
const HANDLERS: [(&str, &str); 20] = [
    ("POST", "/pool/join"),
    ("POST", "/cli"),
    ("GET", "/export"),
    ("GET", "/export_metadata"),
    ("GET", "/export_raw_vdi"),
    ("PUT", "/import"),
    ("PUT", "/import_metadata"),
    ("PUT", "/import_raw_vdi"),
    ("CONNECT", "/console"),
    ("GET", "/console"),
    ("GET", "/rrd_updates"),
    ("GET", "/host_rrd"),
    ("GET", "/host_rrds"),
    ("GET", "/vm_rrd"),
    ("GET", "/vm_rrds"),
    ("GET", "/sr_rrd"),
    ("GET", "/metrics"),
    ("GET", "/pool/xmldbdump"),
    ("PUT", "/pool/xmldbdump"),
    ("GET", "/audit_log"),
];

/// The handler path a request path selects: the longest one it starts
/// with, as xapi's HTTP server looks handlers up (Xen Orchestra asks for
/// `/export/` and `/import/`).
fn handler_path(method: &str, path: &str) -> Option<&'static str> {
    HANDLERS.iter().filter(|(m, p)| *m == method && path.starts_with(p)).map(|(_, p)| *p).max_by_key(|p| p.len())
}

pub fn is_handler_path(method: &str, path: &str) -> bool {
    handler_path(method, path).is_some()
}

/// Serve one handler request.
pub async fn route(
    s: &Server,
    head: Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    let path = handler_path(&head.method, &head.path).unwrap_or("");
    // A transfer, console or statistics request the master sent here names
    // objects a client may have made through the master a moment ago (this
    // host's copy of the database may lag by an append). xe's calls pass the
    // barrier in dispatch, each.
    if path != "/cli" && crate::pooling::is_member(s) {
        crate::pooling::read_barrier(s).await;
    }
    match (head.method.as_str(), path) {
        ("POST", "/cli") => crate::cli::serve(s, &head, body, reply).await,
        ("GET", "/export") => export::export(s, &head, reply).await,
        ("GET", "/export_metadata") => export::export_metadata(s, &head, reply).await,
        ("GET", "/export_raw_vdi") => export::export_raw_vdi(s, &head, reply).await,
        ("PUT", "/import") => import::import(s, &head, body, reply).await,
        ("PUT", "/import_metadata") => import::import_metadata(s, &head, body, reply).await,
        ("PUT", "/import_raw_vdi") => import::import_raw_vdi(s, &head, body, reply).await,
        ("CONNECT" | "GET", "/console") => console::console(s, &head, body, reply).await,
        ("GET", "/rrd_updates") => rrd::rrd_updates(s, &head, reply).await,
        ("GET", "/host_rrd" | "/host_rrds") => rrd::host_rrd(s, &head, reply).await,
        ("GET", "/vm_rrd" | "/vm_rrds") => rrd::vm_rrd(s, &head, reply).await,
        ("GET", "/sr_rrd") => rrd::sr_rrd(s, &head, reply).await,
        ("GET", "/metrics") => rrd::metrics(s, &head, reply).await,
        ("GET", "/pool/xmldbdump") => dbdump::dump(s, &head, reply).await,
        ("PUT", "/pool/xmldbdump") => dbdump::restore(s, &head, body, reply).await,
        ("GET", "/audit_log") => audit_log(s, &head, reply).await,
        ("POST", "/pool/join") => pool::serve(s, &head, body, reply).await,
        _ => reply.not_found().await,
    }
}

/// `GET /audit_log[?since=<timestamp>]`: the audit log as plain text, as
/// xapi sends it (200, no length, connection closed after).
async fn audit_log(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = require_auth(s, head, reply, "get_audit_log").await? else { return Ok(()) };
    let since = head.param("since").unwrap_or("").to_string();
    let s2 = s.clone();
    let body = tokio::task::spawn_blocking(move || s2.audit.read_since(&since)).await.unwrap_or_else(|e| {
        tracing::error!("audit log read failed: {e}");
        Vec::new()
    });
    release(s, &auth);
    reply.head(200, "OK", &[("content-type", "text/plain".to_string()), ("connection", "close".to_string())]).await?;
    let w = reply.body();
    w.write_all(&body).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn queries_and_base64() {
        assert_eq!(
            parse_query("a=1&b=x%20y&c"),
            vec![("a".into(), "1".into()), ("b".into(), "x y".into()), ("c".into(), String::new())]
        );
        assert_eq!(base64_decode("cm9vdDpzZWNyZXQ=").unwrap(), b"root:secret");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
    }

    #[test]
    fn handlers_by_longest_prefix() {
        assert_eq!(handler_path("GET", "/export/"), Some("/export"));
        assert_eq!(handler_path("GET", "/export_raw_vdi"), Some("/export_raw_vdi"));
        assert_eq!(handler_path("PUT", "/import/"), Some("/import"));
        assert_eq!(handler_path("PUT", "/import_metadata/"), Some("/import_metadata"));
        assert_eq!(handler_path("GET", "/host_rrds"), Some("/host_rrds"));
        assert_eq!(handler_path("PUT", "/export"), None);
        assert_eq!(handler_path("GET", "/"), None);
    }
}

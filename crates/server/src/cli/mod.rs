//! The `xe` command-line interface, served at `POST /cli` with the thin CLI
//! protocol v0.2. As in xapi, the client only does I/O: argument parsing,
//! authentication, the commands and the output layout all live here.
//!
//! `serve` reads the argv body, exchanges handshakes, logs in (originator
//! `cli`) unless a `session_id=` line came first, runs the command through
//! the same dispatcher as API clients, and ends with `Exit`.

pub mod args;
mod commands;
mod generic;
mod help;
pub mod printer;
pub mod protocol;
pub mod records;
mod table;

use crate::handlers::{Head, Reply};
use crate::{ApiError, Server};
use args::Params;
use cliproto::Command;
use model::Value;
use printer::Record;
use protocol::Proto;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// xapi's `http_limit_max_cli_size`.
const MAX_BODY: u64 = 200 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a command stopped; each prints the way xapi's `exception_handler` does.
#[derive(Debug)]
pub enum CliError {
    /// An API error (friendly text when the code is in the catalogue).
    Api(ApiError),
    /// xapi's `failwith`: shown as INTERNAL_ERROR "Failure: …".
    Failure(String),
    /// `Cli_failure`: "Error: …".
    Cli(String),
    Syntax(String),
    ParamNotFound(String),
    UnknownCommand(String),
    /// (uuid, message) per failed object of a `--multiple` operation.
    Multiple(Vec<(String, String)>),
    /// Exit with this code; the message was already printed.
    Exit(i32),
    /// The connection failed: nothing more can be said to the client.
    Io(io::Error),
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> Self {
        CliError::Api(e)
    }
}
impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Io(e)
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

pub fn fail<T>(msg: impl Into<String>) -> CliResult<T> {
    Err(CliError::Failure(msg.into()))
}

/// One invocation's state: who runs it, its arguments and where output goes.
pub struct Cx<'p, 'a> {
    pub s: Server,
    pub session: String,
    pub local: bool,
    pub params: Params,
    pub minimal: bool,
    pub p: &'p mut Proto<'a>,
    /// `--minimal` output, printed once at the end as xapi does.
    buffer: Vec<String>,
}

impl Cx<'_, '_> {
    /// Run an API call in this invocation's session.
    pub async fn call(&self, method: &str, args: Vec<Value>) -> CliResult<Value> {
        let mut ps = Vec::with_capacity(args.len() + 1);
        ps.push(Value::String(self.session.clone()));
        ps.extend(args);
        // Boxed: the dispatcher's future is large, and every command's own
        // future would otherwise embed it (deep CLI paths overflowed the
        // worker's stack).
        match Box::pin(crate::dispatch::call(&self.s, method, ps, self.local)).await {
            wire::Outcome::Success(v) => Ok(v),
            wire::Outcome::Failure(w) => Err(CliError::Api(ApiError::from_wire(&w))),
        }
    }

    pub async fn call_str(&self, method: &str, args: Vec<Value>) -> CliResult<String> {
        Ok(self.call(method, args).await?.as_str().unwrap_or_default().to_string())
    }

    /// Records (xapi's `PTable`).
    pub async fn table(&mut self, rs: Vec<Record>) -> CliResult {
        if self.minimal {
            if let Some(line) = printer::minimal_table(&rs) {
                self.buffer.push(line);
            }
            return Ok(());
        }
        for r in rs {
            self.p.send(Command::Print(printer::record(&r))).await?;
        }
        Ok(())
    }

    /// Lines (`PList`).
    pub async fn lines(&mut self, ls: Vec<String>) -> CliResult {
        if self.minimal {
            self.buffer.push(ls.iter().map(|l| printer::escape_minimal(l)).collect::<Vec<_>>().join(","));
            return Ok(());
        }
        for l in ls {
            self.p.send(Command::Print(l)).await?;
        }
        Ok(())
    }

    /// A message (`PMsg`): not shown with `--minimal`.
    pub async fn msg(&mut self, s: impl Into<String>) -> CliResult {
        if !self.minimal {
            self.p.send(Command::Print(s.into())).await?;
        }
        Ok(())
    }

    pub async fn stderr(&mut self, s: impl Into<String>) -> CliResult {
        let mut s = s.into();
        s.push('\n');
        self.p.send(Command::PrintStderr(s)).await?;
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.minimal {
            let mut b = std::mem::take(&mut self.buffer);
            b.reverse();
            self.p.send(Command::Print(b.join(","))).await?;
        }
        Ok(())
    }

    /// Ask the user to type "yes" (xapi's `user_says_yes`).
    pub async fn user_says_yes(&mut self) -> CliResult<bool> {
        self.p.send(Command::Print("Type 'yes' to continue".into())).await?;
        self.p.send(Command::Prompt).await?;
        let answer = self.p.blob().await?;
        Ok(String::from_utf8_lossy(&answer).trim() == "yes")
    }
}

/// Serve one `xe` invocation.
pub async fn serve(
    s: &Server,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    // The protocol needs the connection both ways after the request, which
    // only the raw path gives (xe opens a fresh HTTP/1.0 connection).
    let Reply::Raw { w, .. } = reply else {
        return reply.bad_request("the CLI protocol needs a connection of its own").await;
    };
    let Some(len) = head.content_length() else {
        return reply.bad_request("a content-length is required").await;
    };
    if len > MAX_BODY {
        return reply.bad_request("the command line is too long").await;
    }
    let mut text = vec![0u8; len as usize];
    match tokio::time::timeout(BODY_TIMEOUT, body.read_exact(&mut text)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!("xe command line not read: {e}");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!("xe command line not sent within {BODY_TIMEOUT:?}");
            return Ok(());
        }
    }
    let w: &mut (dyn tokio::io::AsyncWrite + Unpin + Send) = &mut **w;
    let mut p = Proto::new(body, w);
    if let Err(e) = p.handshake().await {
        tracing::warn!("xe handshake failed: {e}");
        return Ok(());
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let code = match invocation(s, head.local, &text, &mut p).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("xe connection failed: {e}");
            return Ok(());
        }
    };
    p.send(Command::Exit(code)).await
}

/// Parse, authenticate, run and report. Err only when the connection broke.
async fn invocation(s: &Server, local: bool, body: &str, p: &mut Proto<'_>) -> io::Result<i32> {
    let inv = match args::parse(body) {
        Ok(i) => i,
        Err(e) => return report(s, p, e).await,
    };
    let minimal = inv.params.flag("minimal");
    if inv.cmd == "help" {
        let mut cx =
            Cx { s: s.clone(), session: String::new(), local, params: inv.params, minimal, p, buffer: Vec::new() };
        return match help::run(&mut cx).await {
            Ok(()) => cx.flush().await.map(|_| 0),
            Err(e) => report(s, cx.p, e).await,
        };
    }
    let Some(spec) = table::find(&inv.cmd) else {
        return report(s, p, CliError::UnknownCommand(inv.cmd)).await;
    };
    if let Some(missing) = spec.reqd.iter().find(|k| !inv.params.has(k)) {
        return report(s, p, CliError::ParamNotFound(missing.to_string())).await;
    }
    let (session, temporary) = match &inv.session {
        Some(sid) => match s.sessions.validate(s, sid) {
            Ok(()) => (sid.clone(), false),
            Err(e) => return report(s, p, e.into()).await,
        },
        None => {
            let spec = crate::session::LoginSpec {
                user: inv.params.get("username").unwrap_or(""),
                password: inv.params.get("password").unwrap_or(""),
                originator: "cli",
                local,
                pool: true,
            };
            match s.sessions.login(s, spec).await {
                Ok(r) => (r, true),
                Err(e) => return report(s, p, e.into()).await,
            }
        }
    };
    let mut cx =
        Cx { s: s.clone(), session: session.clone(), local, params: inv.params, minimal, p, buffer: Vec::new() };
    let out = table::run(&mut cx, spec).await;
    let out = match out {
        Ok(()) => cx.flush().await.map_err(CliError::Io),
        Err(e) => Err(e),
    };
    if temporary {
        let _ = s.sessions.logout(s, &session);
    }
    match out {
        Ok(()) => Ok(0),
        Err(e) => report(s, cx.p, e).await,
    }
}

/// `uuid (name)` for a ref the database knows, as xapi's `ref_convert`.
fn ref_convert(s: &Server, v: &str) -> String {
    if !v.starts_with("OpaqueRef:") {
        return v.to_string();
    }
    let st = s.db.read();
    let Some(c) = st.class_of(v) else { return v.to_string() };
    let Some(row) = st.get(c, v) else { return v.to_string() };
    let uuid = row.get_by_name("uuid").and_then(Value::as_str).unwrap_or(v).to_string();
    match row.get_by_name("name_label").and_then(Value::as_str) {
        Some(n) => format!("{uuid} ({n})"),
        None => uuid,
    }
}

/// Friendly text of an API error: its description and `param: value`
/// lines, or None for codes outside the catalogue.
pub fn friendly(s: &Server, code: &str, params: &[String]) -> Option<(String, Vec<String>)> {
    let def = model::schema::error_def(code)?;
    let mut lines = Vec::new();
    let n = def.params.len().max(params.len());
    for i in 0..n {
        let v = params.get(i).map(|v| ref_convert(s, v)).unwrap_or_else(|| "<unknown>".to_string());
        let name = def.params.get(i).copied().unwrap_or("<extra>");
        lines.push(format!("{name}: {v}"));
    }
    Some((def.doc.to_string(), lines))
}

async fn param_error(p: &mut Proto<'_>, what: &str, text: &str) -> io::Result<()> {
    let line = if what.is_empty() { text.to_string() } else { format!("{what}: {text}") };
    p.send(Command::PrintStderr(format!("{line}\n"))).await?;
    p.send(Command::PrintStderr("For usage run: 'xe help'\n".into())).await
}

async fn server_error(s: &Server, p: &mut Proto<'_>, code: &str, params: &[String]) -> io::Result<()> {
    match friendly(s, code, params) {
        Some((doc, lines)) => {
            p.send(Command::PrintStderr(format!("{doc}\n"))).await?;
            for l in lines {
                p.send(Command::PrintStderr(format!("{l}\n"))).await?;
            }
            Ok(())
        }
        None => p.send(Command::Error(code.to_string(), params.iter().map(|v| ref_convert(s, v)).collect())).await,
    }
}

/// Print an error as xapi does and give the exit code.
async fn report(s: &Server, p: &mut Proto<'_>, e: CliError) -> io::Result<i32> {
    match e {
        CliError::Exit(n) => return Ok(n),
        CliError::Io(e) => return Err(e),
        CliError::Api(ApiError::SessionAuthenticationFailed { uname, .. }) => {
            let text = if uname.is_empty() { "Username/password must be specified" } else { "Authentication failed" };
            param_error(p, "", text).await?
        }
        CliError::Api(e) => server_error(s, p, e.code(), &e.params()).await?,
        CliError::Failure(m) => server_error(s, p, "INTERNAL_ERROR", &[format!("Failure: {m}")]).await?,
        CliError::Cli(m) => p.send(Command::PrintStderr(format!("Error: {m}\n"))).await?,
        CliError::Syntax(m) => param_error(p, "Syntax error", &m).await?,
        CliError::ParamNotFound(m) => param_error(p, "Required parameter not found", &m).await?,
        CliError::UnknownCommand(m) => param_error(p, "Unknown command", &m).await?,
        CliError::Multiple(errs) => {
            for (uuid, msg) in errs {
                p.send(Command::Print(format!("operation failed on {uuid}: {msg}"))).await?;
            }
        }
    }
    Ok(1)
}

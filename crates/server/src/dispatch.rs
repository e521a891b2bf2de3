//! The call pipeline: method lookup → arity → argument types → session →
//! authorize → route → handler (in a task for `Async.` calls) → durable
//! commit. Errors carry xapi's codes and parameters. Each call runs in a
//! `call` span naming the method, the session's user and originator, and the
//! task it runs in.

use crate::rows::{coerce, lookup};
use crate::{ApiError, Ctx, Result, Server};
use model::schema::{ClassDef, Life, MsgDef, MsgKind};

use model::Value;
use tracing::Instrument;
use wire::Outcome;

fn count_mismatch(called: &str, expected: usize, received: i64) -> ApiError {
    ApiError::MessageParameterCountMismatch {
        method: called.to_string(),
        expected: expected.to_string(),
        received: received.to_string(),
    }
}

/// Check the number of arguments and coerce them; fills defaulted trailing
/// parameters and ignores extra ones where the message has defaults.
fn check_args(called: &str, m: &MsgDef, mut params: Vec<Value>) -> Result<Vec<Value>> {
    let given = params.len() as i64 - if m.session { 1 } else { 0 };
    let required = m.required_params();
    let has_defaults = required < m.params.len();
    let ok = if has_defaults { given >= required as i64 } else { given == m.params.len() as i64 };
    if !ok {
        return Err(count_mismatch(called, required, given));
    }
    let args: Vec<Value> = if m.session { params.split_off(1) } else { params };
    let mut out = Vec::with_capacity(m.params.len());
    let mut it = args.into_iter();
    for p in m.params {
        let v = match it.next() {
            Some(v) => coerce(v, p.ty, p.name)?,
            None => match p.default {
                Some(d) => d.to_value(),
                None => return Err(count_mismatch(called, required, given)),
            },
        };
        out.push(v);
    }
    Ok(out)
}

/// Run one call end to end and produce the outcome to encode.
pub async fn call(server: &Server, method: &str, params: Vec<Value>, local: bool) -> Outcome {
    match call_inner(server, method, params, local).await {
        Ok(v) => Outcome::Success(v),
        Err(e) => Outcome::Failure(e.to_wire()),
    }
}

async fn call_inner(server: &Server, method: &str, params: Vec<Value>, local: bool) -> Result<Value> {
    if let Some(rest) = method.strip_prefix("system.isAlive") {
        let _ = rest;
        return Ok(params.into_iter().next().unwrap_or(Value::String(String::new())));
    }
    let (is_async, name) = match method.strip_prefix("Async.") {
        Some(n) => (true, n),
        None => (false, method),
    };
    let Some((c, m)) =
        (if is_async { crate::rows::table().get(name).filter(|_| name.contains('.')).copied() } else { lookup(name) })
    else {
        // xapi treats an unknown method with arguments as a host extension:
        // the first argument must still be a valid session.
        if let Some(first) = params.first() {
            let s = match first {
                Value::String(s) => s.clone(),
                other => wire::xmlrpc::value_as_text(other),
            };
            server.sessions.validate(server, &s)?;
        }
        return Err(ApiError::MessageMethodUnknown { method: method.to_string() });
    };
    if is_async && !m.is_async {
        return Err(ApiError::Other {
            code: "Fault".into(),
            params: vec![format!("No async mode for this operation (rpc: {name})")],
        });
    }
    let session = if m.session {
        match params.first() {
            Some(Value::String(s)) => s.clone(),
            Some(other) => wire::xmlrpc::value_as_text(other),
            None => String::new(),
        }
    } else {
        String::new()
    };
    let args = check_args(name, m, params)?;
    if m.session {
        server.sessions.validate(server, &session)?;
    }
    if m.life == Life::Removed {
        return Err(ApiError::MessageRemoved);
    }
    let span = call_span(server, method, &session, local);
    async move {
        authorize(server, &session, local, c, m, &args)?;
        match route(server, c, m, &args) {
            Route::Local => {}
        }
        let ctx = Ctx::new(server.clone(), session, method.to_string(), local);
        if is_async {
            return spawn_async(ctx, c, m, args).await;
        }
        run_sync(ctx, method, c, m, args).await
    }
    .instrument(span)
    .await
}

/// A span for one call: who asked for what. The task field is filled in
/// when the call gets a task.
fn call_span(server: &Server, method: &str, session: &str, local: bool) -> tracing::Span {
    let sc = crate::class("session");
    let (user, originator) = match server.db.read().get(sc, session) {
        Some(row) => (
            row.get(crate::field(sc, "auth_user_name")).as_str().unwrap_or("").to_string(),
            row.get(crate::field(sc, "originator")).as_str().unwrap_or("").to_string(),
        ),
        None => (String::new(), String::new()),
    };
    tracing::info_span!("call", method, user = %user, originator = %originator, local, task = tracing::field::Empty)
}

/// May this session call this message on these arguments? The seam for
/// RBAC: every call and every Async call passes here after its session is
/// validated and before it is routed or run. Everything is allowed for now.
pub fn authorize(
    _server: &Server,
    _session: &str,
    _local: bool,
    _c: &'static ClassDef,
    _m: &'static MsgDef,
    _args: &[Value],
) -> Result<()> {
    Ok(())
}

/// Where a call runs.
pub enum Route {
    /// Here.
    Local,
}

/// Which host runs this call: the seam for pools (xapi's
/// message_forwarding). A single host runs everything itself.
pub fn route(_server: &Server, _c: &'static ClassDef, _m: &'static MsgDef, _args: &[Value]) -> Route {
    Route::Local
}

async fn run_sync(
    mut ctx: Ctx,
    method: &str,
    c: &'static ClassDef,
    m: &'static MsgDef,
    args: Vec<Value>,
) -> Result<Value> {
    // Synchronous calls of async-capable messages run inside a task row, as in
    // xapi, which is destroyed when the call returns.
    let sync_task = m.is_async && !matches!(c.name, "task" | "event");
    if sync_task {
        let t = crate::task::create_for_call(&ctx, method)?;
        tracing::Span::current().record("task", t.as_str());
        ctx.task = Some(t);
    }
    let out = run(&ctx, c, m, args).await;
    let out = ctx.settle(out).await;
    if let Some(t) = &ctx.task {
        crate::task::finish_sync(&ctx, t);
    }
    out
}

/// Execute a message's handler.
pub async fn run(ctx: &Ctx, c: &'static ClassDef, m: &'static MsgDef, args: Vec<Value>) -> Result<Value> {
    match m.kind {
        MsgKind::Explicit => crate::api::dispatch_explicit(&ctx.server, ctx, c.name, m.name, &args).await,
        _ => crate::implicit::call(ctx, c, m, args).await,
    }
}

/// Start an `Async.` call: the task ref is returned at once and the work runs
/// in the background; its result lands in the task record.
pub async fn spawn_async(mut ctx: Ctx, c: &'static ClassDef, m: &'static MsgDef, args: Vec<Value>) -> Result<Value> {
    let label = format!("Async.{}.{}", c.name, m.name);
    let task = crate::task::new_task(&ctx, &label, "")?;
    ctx.durable().await?;
    ctx.task = Some(task.clone());
    let s = ctx.server.clone();
    let reply = task.clone();
    tracing::Span::current().record("task", task.as_str());
    let span = tracing::info_span!(parent: &tracing::Span::current(), "task", task = %task);
    tokio::spawn(
        async move {
            let out = run(&ctx, c, m, args).await;
            let out = ctx.settle(out).await;
            if let Err(e) = &out {
                tracing::info!("task failed: {e}");
            }
            crate::task::complete(&s, &task, &out);
        }
        .instrument(span),
    );
    Ok(Value::String(reply))
}

//! The call pipeline: method lookup → arity → argument types → session →
//! authorize → route → handler (in a task for `Async.` calls) → durable
//! commit. Errors carry xapi's codes and parameters. Each call runs in a
//! `call` span naming the method, the session's user and originator, and the
//! task it runs in.

use crate::rows::{coerce, lookup};
use crate::{ApiError, Ctx, Result, Server};
use model::schema::{ClassDef, ClassId, Life, MsgDef, MsgKind, Role};
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

tokio::task_local! {
    /// Set while a member runs a call the master forwarded.
    static FROM_MASTER: ();
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
    // A pool member serves no API over the network: clients go to the
    // master (xapi answers before it checks the session or the password).
    if !local && crate::pooling::is_member(server) && !crate::pooling::runs_on_member(c.name, m.name) {
        return Err(ApiError::HostIsSlave { master_address: crate::pooling::master_address(server) });
    }
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
        // (A call the master forwarded already waited for what it had seen.)
        if local && crate::pooling::is_member(server) && FROM_MASTER.try_with(|_| ()).is_err() {
            crate::pooling::read_barrier(server).await;
        }
        let refused = match authorize(server, &session, local, c, m, &args) {
            Ok(()) => None,
            Err(e) if is_async => Some(e),
            Err(e) => return Err(e),
        };
        let ctx = Ctx::new(server.clone(), session, method.to_string(), local);
        if is_async {
            return spawn_async(ctx, c, m, args, refused).await;
        }
        run_sync(ctx, method, c, m, args).await
    }
    .instrument(span)
    .await
}

/// A span for one call: who asked for what. The task field is filled in
/// when the call gets a task.
fn call_span(server: &Server, method: &str, session: &str, local: bool) -> tracing::Span {
    let sc = &model::schema::CLASS_SESSION;
    let (user, originator) = match server.db.read().get(sc, session) {
        Some(row) => (
            row.read(model::types::fields::session::AUTH_USER_NAME),
            row.read(model::types::fields::session::ORIGINATOR),
        ),
        None => (String::new(), String::new()),
    };
    tracing::info_span!("call", method, user = %user, originator = %originator, local, task = tracing::field::Empty)
}

/// May this session call this message on these arguments? Every call and
/// every Async call passes here after its session is validated and before
/// it is routed or run (xapi checks Async calls inside the task; we answer
/// before the task exists, so a denied Async call makes no task).
///
/// The permission is the message's (lower-cased wire name); an
/// `add_to_`/`remove_from_` of a map key with its own role needs only that
/// key's permission (`…/key:<key>`, xapi's `permission_of_action`), and a
/// setter of such a map also needs the key permission of every protected
/// key whose value it changes (xapi checks `set_other_config` by hand so).
pub fn authorize(
    server: &Server,
    session: &str,
    _local: bool,
    c: &'static ClassDef,
    m: &'static MsgDef,
    args: &[Value],
) -> Result<()> {
    if !m.session {
        return Ok(());
    }
    let have = match server.sessions.grant(server, session) {
        crate::session::Grant::Superuser => return Ok(()),
        crate::session::Grant::Role(r) => Some(r),
        crate::session::Grant::Nothing => None,
    };
    let check = |perm: String, min: Role| -> Result<()> {
        if have.is_some_and(|r| crate::roles::holds(r, min)) {
            return Ok(());
        }
        Err(denied(server, session, c, m, args, perm, min))
    };
    let base = crate::roles::message_permission(c, m);
    if let Some(f) = crate::roles::keyed_field(c, m) {
        let key = args.get(1).map(wire::xmlrpc::value_as_text).unwrap_or_default();
        if let Some((pattern, min)) = f.key_role(&key) {
            return check(crate::roles::key_permission(&base, pattern), min);
        }
        return check(base, m.roles.min);
    }
    check(base, m.roles.min)?;
    if let MsgKind::Set(i) = m.kind {
        if let Some(f) = c.fields.get(i).filter(|f| !f.key_roles.is_empty()) {
            for (pattern, min) in changed_protected_keys(server, c, i, f, args) {
                let add = c.messages.iter().find(|x| x.kind == MsgKind::AddTo(i));
                let perm = match add {
                    Some(add) => crate::roles::key_permission(&crate::roles::message_permission(c, add), pattern),
                    None => crate::roles::key_permission(&crate::roles::message_permission(c, m), pattern),
                };
                check(perm, min)?;
            }
        }
    }
    Ok(())
}

/// The protected key patterns a map setter changes (adds, removes or
/// rewrites), comparing with the stored value.
fn changed_protected_keys(
    server: &Server,
    c: &'static ClassDef,
    i: usize,
    f: &'static model::schema::FieldDef,
    args: &[Value],
) -> Vec<(&'static str, Role)> {
    let Some(Value::String(self_ref)) = args.first() else { return Vec::new() };
    let new: Vec<(String, Value)> = match args.get(1) {
        Some(Value::Struct(m)) => m.clone(),
        _ => Vec::new(),
    };
    let old: Vec<(String, Value)> = match server.db.read().get(c, self_ref).map(|row| row.get(i).clone()) {
        Some(Value::Struct(m)) => m,
        _ => Vec::new(),
    };
    let mut out: Vec<(&'static str, Role)> = Vec::new();
    let mut consider = |k: &str| {
        let before = old.iter().find(|(a, _)| a == k).map(|(_, v)| v);
        let after = new.iter().find(|(a, _)| a == k).map(|(_, v)| v);
        if before != after {
            if let Some(kr) = f.key_role(k) {
                if !out.contains(&kr) {
                    out.push(kr);
                }
            }
        }
    };
    for (k, _) in old.iter().chain(new.iter()) {
        consider(k);
    }
    out
}

/// RBAC_PERMISSION_DENIED as xapi words it, recorded in the audit log.
fn denied(
    server: &Server,
    session: &str,
    c: &'static ClassDef,
    m: &'static MsgDef,
    args: &[Value],
    perm: String,
    min: Role,
) -> ApiError {
    let roles = crate::roles::roles_holding(min).join(", ");
    tracing::info!(permission = %perm, "RBAC: permission denied");
    crate::audit::denied(server, session, &format!("{}.{}", c.name, m.name), &perm, args);
    ApiError::RbacPermissionDenied {
        permission: perm,
        message: format!("No permission in user session. (Roles with this permission: {roles})"),
    }
}

/// Where a call runs.
pub enum Route {
    /// Here.
    Local,
    /// On this host of the pool (the master sends host-specific work there).
    Host(String),
}

/// VDI messages that work on the VDI's file: run where its SR is plugged.
const ON_SR_OF_VDI: &[&str] = &[
    "destroy",
    "clone",
    "snapshot",
    "resize",
    "resize_online",
    "data_destroy",
    "enable_cbt",
    "disable_cbt",
    "list_changed_blocks",
    "set_on_boot",
];

/// Messages that act on a running domain: they run where the VM runs.
/// host messages that act on the host they name (its certificates, its
/// agent, its statistics, its clock, its plugins): run there, as xapi's
/// message forwarding does; the others change the pool's database only.
const ON_NAMED_HOST: &[&str] = &[
    "install_server_certificate",
    "reset_server_certificate",
    "refresh_server_certificate",
    "get_server_certificate",
    "restart_agent",
    "set_https_only",
    "get_data_sources",
    "query_data_source",
    "record_data_source",
    "forget_data_source_archives",
    "backup_rrds",
    "get_servertime",
    "get_server_localtime",
    "call_plugin",
];

const ON_RESIDENT: &[&str] = &[
    "clean_shutdown",
    "hard_shutdown",
    "shutdown",
    "clean_reboot",
    "hard_reboot",
    "pause",
    "unpause",
    "suspend",
    "send_sysrq",
    "send_trigger",
    "call_plugin",
];

/// Which host runs this call (xapi's message_forwarding): on the master,
/// VM.start_on runs on the chosen host, VM.start on the VM's affinity host
/// when that is a live member, and operations on a running VM, its VBD or
/// its VIF, on the host the VM runs on; PBD.plug/unplug on the PBD's host;
/// work on a VDI a running VM has attached, on that VM's host.
/// Everything else, and everything on a lone host, runs here.
pub fn route(server: &Server, c: &'static ClassDef, m: &'static MsgDef, args: &[Value]) -> Route {
    use model::types::fields::{
        host as H, host_metrics as HM, pbd as PBD, vbd as VBD, vdi as VDI, vif as VIF, vm as VM,
    };
    if server.db.replicated() != Some(store::Role::Leader) {
        return Route::Local;
    }
    let arg = |i: usize| args.get(i).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let st = server.db.read();
    let live = |h: &str| st.read(h, H::METRICS).and_then(|m| st.read(m.as_str(), HM::LIVE)).unwrap_or(false);
    let resident = |vm: &str| st.read(vm, VM::RESIDENT_ON).map(|r| r.as_str().to_string()).unwrap_or_default();
    let sr_of = |vdi: &str| st.read(vdi, VDI::SR).map(|r| r.into_string());
    let on_srs = |srs: std::collections::BTreeSet<String>| {
        crate::storage::host_with_srs(&st, &srs, &server.host, None).unwrap_or_default()
    };
    let disk_srs = |vm: &str| crate::storage::disk_srs(&st, vm);
    // A VDI a running guest has attached is copied by that guest's
    // hypervisor (a copy at one instant; its CBT log follows the guest's
    // dirty bitmap): its work runs where the guest runs.
    let in_use_on = |vdi: &str| {
        crate::xenops::attached(&st, vdi).find_map(|(_, vm)| {
            let r = vm.read(VM::RESIDENT_ON).into_string();
            (!r.is_empty() && r != model::NULL_REF).then_some(r)
        })
    };
    let target = match (c.id, m.name) {
        (ClassId::Vm, "start_on") => arg(1),
        (ClassId::Vm, "start") => {
            st.read(&arg(0), VM::AFFINITY).map(|r| r.as_str().to_string()).filter(|h| live(h)).unwrap_or_default()
        }
        (ClassId::Vm, name) if ON_RESIDENT.contains(&name) => resident(&arg(0)),
        (ClassId::Host, name) if ON_NAMED_HOST.contains(&name) => arg(0),
        (ClassId::Vbd, "plug" | "unplug" | "unplug_force" | "insert" | "eject") => {
            st.read(&arg(0), VBD::VM).map(|v| resident(v.as_str())).unwrap_or_default()
        }
        (ClassId::Vif, "plug" | "unplug" | "unplug_force") => {
            st.read(&arg(0), VIF::VM).map(|v| resident(v.as_str())).unwrap_or_default()
        }
        (ClassId::Pbd, "plug" | "unplug") => {
            st.read(&arg(0), PBD::HOST).map(|h| h.as_str().to_string()).unwrap_or_default()
        }
        // Storage work runs where the SR is plugged (a member's local SR
        // on the member), as xapi forwards SR and VDI operations.
        (ClassId::Vdi, "create") => {
            let sr = args.first().and_then(|r| r.map_str("SR")).unwrap_or_default().to_string();
            on_srs(std::iter::once(sr).collect())
        }
        (ClassId::Vdi, "copy") => in_use_on(&arg(0)).unwrap_or_else(|| {
            on_srs(sr_of(&arg(0)).into_iter().chain(Some(arg(1)).filter(|s| !s.is_empty())).collect())
        }),
        (ClassId::Vdi, name) if ON_SR_OF_VDI.contains(&name) => {
            in_use_on(&arg(0)).unwrap_or_else(|| on_srs(sr_of(&arg(0)).into_iter().collect()))
        }
        (ClassId::Sr, "scan" | "update") => on_srs(std::iter::once(arg(0)).collect()),
        (ClassId::Vm, "clone" | "copy" | "snapshot" | "snapshot_with_quiesce" | "checkpoint" | "revert") => {
            match resident(&arg(0)) {
                r if !r.is_empty() && r != model::NULL_REF => r,
                _ => {
                    let vm = if m.name == "revert" {
                        st.read(&arg(0), VM::SNAPSHOT_OF).map(|v| v.into_string())
                    } else {
                        None
                    };
                    let mut srs = disk_srs(&arg(0));
                    srs.extend(vm.map(|v| disk_srs(&v)).unwrap_or_default());
                    if m.name == "copy" && !arg(2).is_empty() && arg(2) != model::NULL_REF {
                        srs.insert(arg(2));
                    }
                    on_srs(srs)
                }
            }
        }
        _ => String::new(),
    };
    if target.is_empty()
        || target == server.host
        || target == model::NULL_REF
        || st.get(&model::schema::CLASS_HOST, &target).is_none()
    {
        return Route::Local;
    }
    Route::Host(target)
}

/// Run the calls other hosts of the pool send here (`/pool/call`): the
/// master's forwarded API calls, as the pool's superuser (the master has
/// checked the caller's session and rights), the steps of a move between
/// hosts, and a member's question about one of the master's sessions.
pub fn serve_forwarded(server: &Server) {
    let s = server.clone();
    let f: pooldb::CallFn = std::sync::Arc::new(move |body: Vec<u8>| {
        let s = s.clone();
        Box::pin(async move {
            let mut out = Vec::new();
            let req = match wire::jsonrpc::parse_request(&body) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("a forwarded call that is not JSON-RPC: {e:?}");
                    let o = Outcome::Failure(vec!["INTERNAL_ERROR".into(), "bad forwarded call".into()]);
                    wire::jsonrpc::write_response(&mut out, wire::jsonrpc::Version::V2, &serde_json::Value::Null, &o);
                    return out;
                }
            };
            let arg = |i: usize| req.params.get(i).and_then(|v| v.as_str()).unwrap_or("").to_string();
            // Pool-internal questions, answered as a JSON document.
            let answer = if req.method == crate::pooling::VOUCH {
                Some(s.sessions.vouch(&s, &arg(1)).and_then(|v| as_json(&v)))
            } else if req.method == crate::pooling::TASK_REPORT {
                let report = req.params.get(2).cloned().unwrap_or(Value::Nil);
                Some(crate::task::reported(&s, &arg(1), &report).and_then(|c| as_json(&c)))
            } else if req.method == crate::pooling::REJOIN {
                Some(crate::pooling::readmit(&s, &arg(1), &arg(2)).await.and_then(|m| as_json(&m)))
            } else {
                None
            };
            if let Some(a) = answer {
                let o = match a {
                    Ok(j) => Outcome::Success(Value::from(j)),
                    Err(e) => Outcome::Failure(e.to_wire()),
                };
                wire::jsonrpc::write_response(&mut out, req.version, &req.id, &o);
                return out;
            }
            // The halves of a move between hosts are not API calls.
            if req.method.starts_with("internal.") {
                let o = match Box::pin(crate::ops::vm::migrate::domain_op(&s, &req.method, &arg(1), &arg(2))).await {
                    Ok(d) => Outcome::Success(Value::Int(d)),
                    Err(e) => Outcome::Failure(e.to_wire()),
                };
                wire::jsonrpc::write_response(&mut out, req.version, &req.id, &o);
                return out;
            }
            // The operation the master holds for this call, if it says so.
            let held = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| {
                let h = v.get(crate::pooling::HELD_KEY)?.as_array()?.clone();
                let part = |i: usize| h.get(i).and_then(|x| x.as_str()).map(str::to_string);
                Some((part(0)?, part(1)?, part(2)?))
            });
            let spec =
                crate::session::LoginSpec { user: "root", password: "", originator: "pool", local: true, pool: true };
            let o = match s.sessions.login(&s, spec).await {
                Ok(session) => {
                    let mut params = req.params;
                    if let Some(first) = params.first_mut() {
                        *first = Value::from(session.as_str());
                    }
                    let run = FROM_MASTER.scope((), call(&s, &req.method, params, true));
                    let o = match held {
                        Some(h) => crate::lifecycle::HELD.scope(h, run).await,
                        None => run.await,
                    };
                    crate::logged("ending the forwarded call's session", s.sessions.logout(&s, &session));
                    o
                }
                Err(e) => Outcome::Failure(e.to_wire()),
            };
            wire::jsonrpc::write_response(&mut out, req.version, &req.id, &o);
            out
        })
    });
    let _ = server.pool_calls.set(f.clone());
    if let Some(p) = server.replica.get() {
        p.serve_calls(f);
    }
}

fn as_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| crate::internal(e.to_string()))
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
/// Calls that change state are written to the audit log with their outcome.
pub async fn run(ctx: &Ctx, c: &'static ClassDef, m: &'static MsgDef, args: Vec<Value>) -> Result<Value> {
    if let Route::Host(h) = route(&ctx.server, c, m, &args) {
        let method = format!("{}.{}", c.name, m.name);
        let object = args.first().and_then(|a| a.as_str()).unwrap_or_default().to_string();
        // As xapi's master: the operation is checked and held here while
        // the host that owns the object runs the call.
        return match crate::lifecycle::held_op(c, m.name) {
            Some(op) => {
                let held = (c.name, object.as_str(), op.name());
                crate::lifecycle::with_held(ctx, &object, &op, || {
                    crate::pooling::forward_holding(&ctx.server, &h, &method, &args, Some(held))
                })
                .await
            }
            None => crate::pooling::forward(&ctx.server, &h, &method, &args).await,
        };
    }
    let audited = m.session && crate::audit::changes_state(c, m);
    let kept = if audited { args.clone() } else { Vec::new() };
    let out = match m.kind {
        MsgKind::Explicit => crate::api::dispatch_explicit(&ctx.server, ctx, c.name, m.name, &args).await,
        _ => crate::implicit::call(ctx, c, m, args).await,
    };
    if audited {
        let task = ctx.task.as_deref().unwrap_or("");
        crate::audit::allowed(&ctx.server, &ctx.session, task, c, m, &kept, out.as_ref().map(|_| ()));
    }
    out
}

/// Start an `Async.` call: the task ref is returned at once and the work runs
/// in the background; its result lands in the task record.
///
/// `refused` is an error found before the work started (an RBAC denial):
/// as in xapi, it lands in the task rather than in the reply.
pub async fn spawn_async(
    mut ctx: Ctx,
    c: &'static ClassDef,
    m: &'static MsgDef,
    args: Vec<Value>,
    refused: Option<ApiError>,
) -> Result<Value> {
    let label = format!("Async.{}.{}", c.name, m.name);
    let task = crate::task::new_task(&ctx, &label, "")?;
    if let Some(e) = refused {
        crate::task::complete(&ctx.server, &task, &Err(e));
        ctx.durable().await?;
        return Ok(Value::String(task));
    }
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

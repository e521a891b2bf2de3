//! Operations as state machines over the store, in one place per class (as
//! xapi's `xapi_vm_lifecycle`): which operations a power state allows, which
//! may run together, what templates and snapshots refuse, and the derived
//! `allowed_operations` / `current_operations` fields.
//!
//! An operation runs between [`begin`] (check, then record
//! `current_operations[task] = op`) and [`end`]. A conflicting operation
//! waits for the running one, as xapi retries OTHER_OPERATION_IN_PROGRESS.

pub mod sr;
pub mod vbd;
pub mod vdi;
pub mod vif;

use crate::{class, field, ApiError, Ctx, Result};
use model::schema::ClassDef;
use model::types::fields::vm as F;
use model::{Row, Value};
use std::time::Duration;
use store::Txn;

/// How long a conflicting operation waits for the one in progress (xapi: 2 h).
pub const CONFLICT_WAIT: Duration = Duration::from_secs(7200);

/// `(task, op)` pairs of an object's current_operations.
pub fn current_ops(row: &Row) -> Vec<(String, String)> {
    let i = row.class.field_index("current_operations");
    match i.map(|i| row.get(i)) {
        Some(Value::Struct(m)) => m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect(),
        _ => vec![],
    }
}

/// OTHER_OPERATION_IN_PROGRESS with xapi's parameters (brace lists when several).
pub fn in_progress(cls: &str, r: &str, ops: &[(String, String)]) -> ApiError {
    let (op, task) = if ops.len() == 1 {
        (ops[0].1.clone(), ops[0].0.clone())
    } else {
        (
            format!("{{{}}}", ops.iter().map(|o| o.1.as_str()).collect::<Vec<_>>().join(",")),
            format!("{{{}}}", ops.iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(",")),
        )
    };
    ApiError::OtherOperationInProgress { class: cls.to_string(), object: r.to_string(), operation: op, task }
}

// ------------------------------------------------------------------ VM rules

/// The operations allowed_operations may list, in the order it lists them.
/// xapi 24.12's update_allowed_operations checks a fixed list (everything
/// except the internal operations, and also except metadata_export; the
/// "all but an ignore list" form came later) and conses each allowed one
/// onto its result, so the field comes out in reverse list order.
const VM_LISTED: &[&str] = &[
    "create_vtpm",
    "changing_NVRAM",
    "changing_dynamic_range",
    "changing_shadow_memory",
    "changing_static_range",
    "make_into_template",
    "migrate_send",
    "pool_migrate",
    "changing_VCPUs_live",
    "provision",
    "destroy",
    "export",
    "resume_on",
    "resume",
    "suspend",
    "hard_reboot",
    "hard_shutdown",
    "clean_reboot",
    "clean_shutdown",
    "unpause",
    "pause",
    "start_on",
    "start",
    "snapshot_with_quiesce",
    "checkpoint",
    "revert",
    "clone",
    "copy",
    "snapshot",
];

const H: &str = "Halted";
const P: &str = "Paused";
const R: &str = "Running";
const S: &str = "Suspended";

/// The power states in which an operation may start.
pub fn vm_allowed_power_states(op: &str, is_snapshot: bool, is_control_domain: bool) -> &'static [&'static str] {
    match op {
        "start"
        | "start_on"
        | "provision"
        | "make_into_template"
        | "changing_shadow_memory"
        | "changing_NVRAM"
        | "create_vtpm" => &[H],
        "unpause" => &[P],
        "resume" | "resume_on" | "csvm" => &[S],
        "clean_shutdown"
        | "clean_reboot"
        | "pause"
        | "suspend"
        | "pool_migrate"
        | "send_sysrq"
        | "send_trigger"
        | "call_plugin"
        | "changing_memory_live"
        | "changing_VCPUs_live"
        | "snapshot_with_quiesce"
        | "awaiting_memory_live"
        | "changing_shadow_memory_live"
        | "data_source_op" => &[R],
        "hard_reboot" => &[P, R],
        "hard_shutdown" | "shutdown" | "checkpoint" | "get_boot_record" => &[P, S, R],
        "destroy" | "export" | "create_template" => &[H, S],
        "clone" | "copy" if is_snapshot => &[H, S],
        "clone" | "copy" => &[H],
        "changing_dynamic_range" => &[H, R],
        // A control domain may change these while it runs (they apply at its next boot).
        "changing_VCPUs" | "changing_static_range" | "changing_memory_limits" if is_control_domain => &[H, R],
        "changing_VCPUs" | "changing_static_range" | "changing_memory_limits" => &[H],
        "migrate_send" => &[H, S, R],
        "import" => &[],
        _ => &[H, P, R, S],
    }
}

fn allowed_concurrently(op: &str, running: &[&str]) -> bool {
    let group = |set: &[&str]| set.contains(&op) && running.iter().all(|r| set.contains(r));
    if group(&["clone", "copy", "export"]) || group(&["snapshot", "checkpoint"]) {
        return true;
    }
    match op {
        "get_boot_record" => running.iter().all(|r| *r == "get_boot_record"),
        "hard_shutdown" => !running.contains(&"hard_shutdown"),
        "hard_reboot" => !running.iter().any(|r| *r == "hard_shutdown" || *r == "hard_reboot"),
        // xapi's state machine: exactly this one operation in progress.
        "snapshot" => running == ["snapshot_with_quiesce"],
        "metadata_export" | "clean_shutdown" | "clean_reboot" => running == ["migrate_send"],
        _ => false,
    }
}

/// The operation name as xapi writes it in error parameters.
pub fn vm_op_label(op: &str) -> &str {
    match op {
        "assert_operation_valid" => "assertoperationvalid",
        "data_source_op" => "data_sources_op",
        "changing_VCPUs" | "changing_memory_limits" | "query_services" | "create_template" => "(unknown operation)",
        o => o,
    }
}

fn is_default_template(row: &Row) -> bool {
    row.get(F::IS_DEFAULT_TEMPLATE.index).as_bool() == Some(true)
        || row.get(F::OTHER_CONFIG.index).map_str("default_template") == Some("true")
}

fn vm_current_ops(row: &Row) -> Vec<(String, String)> {
    match row.get(F::CURRENT_OPERATIONS.index) {
        Value::Struct(m) => m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect(),
        _ => vec![],
    }
}

/// Why an operation is refused, before any text is built (allowed_operations
/// checks every operation on every change, so this path must not allocate).
enum Deny<'a> {
    Blocked(&'a str),
    BadPowerState(&'static [&'static str], &'a str),
    InProgress,
    Template,
    Snapshot,
    ProvisionNeedsTemplate,
    RevertNeedsSnapshot,
    Dom0,
    ControlDomain,
    Immobile,
    QuiesceUnsupported,
    VtpmLimit(usize),
}

fn vm_deny<'a>(row: &'a Row, op: &str, ignore_running: bool, dom0: bool) -> Option<Deny<'a>> {
    let b = |i: usize| row.get(i).as_bool() == Some(true);
    if let Some(reason) = row.get(F::BLOCKED_OPERATIONS.index).map_str(op) {
        return Some(Deny::Blocked(reason));
    }
    let snapshot = b(F::IS_A_SNAPSHOT.index);
    let control_domain = b(F::IS_CONTROL_DOMAIN.index);
    let ps = row.get(F::POWER_STATE.index).as_str().unwrap_or(H);
    let allowed = vm_allowed_power_states(op, snapshot, control_domain);
    if !allowed.contains(&ps) {
        return Some(Deny::BadPowerState(allowed, ps));
    }
    if !ignore_running {
        if let Value::Struct(cur) = row.get(F::CURRENT_OPERATIONS.index) {
            if !cur.is_empty() {
                let running: Vec<&str> = cur.iter().map(|(_, o)| o.as_str().unwrap_or("")).collect();
                if !allowed_concurrently(op, &running) {
                    return Some(Deny::InProgress);
                }
            }
        }
    }
    if b(F::IS_A_TEMPLATE.index) && !snapshot {
        let ok = matches!(
            op,
            "clone"
                | "copy"
                | "export"
                | "metadata_export"
                | "provision"
                | "changing_dynamic_range"
                | "changing_static_range"
                | "changing_memory_limits"
                | "changing_shadow_memory"
                | "changing_VCPUs"
                | "changing_NVRAM"
        ) || (matches!(op, "destroy" | "migrate_send") && !is_default_template(row));
        if !ok {
            return Some(Deny::Template);
        }
    }
    if snapshot
        && !matches!(op, "revert" | "clone" | "copy" | "export" | "destroy" | "hard_shutdown" | "metadata_export")
    {
        return Some(Deny::Snapshot);
    }
    if op == "provision" && !b(F::IS_A_TEMPLATE.index) {
        return Some(Deny::ProvisionNeedsTemplate);
    }
    if op == "revert" && !snapshot {
        return Some(Deny::RevertNeedsSnapshot);
    }
    if matches!(op, "suspend" | "checkpoint" | "pool_migrate" | "migrate_send") {
        let pl = row.get(F::PLATFORM.index);
        if pl.map_str("nomigrate") == Some("true") || pl.map_str("nested-virt") == Some("true") {
            return Some(Deny::Immobile);
        }
    }
    if dom0 && matches!(op, "changing_VCPUs" | "destroy") {
        return Some(Deny::Dom0);
    }
    if control_domain
        && !matches!(
            op,
            "data_source_op"
                | "changing_memory_live"
                | "awaiting_memory_live"
                | "metadata_export"
                | "changing_dynamic_range"
                | "changing_memory_limits"
                | "changing_static_range"
                | "start"
                | "start_on"
                | "changing_VCPUs"
                | "destroy"
        )
    {
        return Some(Deny::ControlDomain);
    }
    // Quiesced snapshots (VSS) are gone: always refused.
    if op == "snapshot_with_quiesce" {
        return Some(Deny::QuiesceUnsupported);
    }
    if op == "create_vtpm" {
        let n = row.get(F::VTPMS.index).as_array().map_or(0, |a| a.len());
        if n > 0 {
            return Some(Deny::VtpmLimit(n));
        }
    }
    None
}

/// Read access to rows, committed (`State`) or in a transaction (`Txn`).
pub trait Rows {
    fn row(&self, c: &ClassDef, r: &str) -> Option<&Row>;
}

impl Rows for store::State {
    fn row(&self, c: &ClassDef, r: &str) -> Option<&Row> {
        self.get(c, r).map(|a| &**a)
    }
}

impl Rows for Txn<'_> {
    fn row(&self, c: &ClassDef, r: &str) -> Option<&Row> {
        self.get(c, r)
    }
}

/// Whether `row` (the VM `r`) is its host's dom0: a control domain that is
/// the control_domain of the host it is resident on (Helpers.is_domain_zero).
pub fn is_dom0(st: &dyn Rows, r: &str, row: &Row) -> bool {
    if row.get(F::IS_CONTROL_DOMAIN.index).as_bool() != Some(true) {
        return false;
    }
    let hc = class("host");
    row.get(F::RESIDENT_ON.index)
        .as_str()
        .and_then(|h| st.row(hc, h))
        .is_some_and(|h| h.get(field(hc, "control_domain")).as_str() == Some(r))
}

/// Why `op` cannot run on this VM now, in xapi's check order and with its
/// error parameters; None if it can. `st` resolves the VM's host (dom0 rules).
pub fn vm_check(st: &dyn Rows, r: &str, row: &Row, op: &str, ignore_running: bool) -> Option<ApiError> {
    let label = || vm_op_label(op).to_string();
    Some(match vm_deny(row, op, ignore_running, is_dom0(st, r, row))? {
        Deny::Blocked(reason) => ApiError::OperationBlocked { r#ref: r.to_string(), code: reason.to_string() },
        Deny::BadPowerState(allowed, ps) => ApiError::VmBadPowerState {
            vm: r.to_string(),
            expected: allowed.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>().join(", "),
            actual: ps.to_lowercase(),
        },
        Deny::InProgress => in_progress("VM", r, &vm_current_ops(row)),
        Deny::Template => ApiError::VmIsTemplate { vm: r.to_string(), operation: label() },
        Deny::Snapshot => ApiError::VmIsSnapshot { vm: r.to_string(), operation: label() },
        Deny::ProvisionNeedsTemplate => ApiError::ProvisionOnlyAllowedOnTemplate,
        Deny::RevertNeedsSnapshot => ApiError::RevertOnlyAllowedOnSnapshot,
        Deny::Dom0 => ApiError::OperationNotAllowed { reason: "This operation is not allowed on dom0".into() },
        Deny::ControlDomain => {
            ApiError::OperationNotAllowed { reason: "This operation is not allowed on a control domain".into() }
        }
        Deny::Immobile => ApiError::VmIsImmobile { vm: r.to_string() },
        // xapi sends only the VM, although the datamodel documents [vm; error].
        Deny::QuiesceUnsupported => {
            ApiError::Other { code: "VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED".into(), params: vec![r.to_string()] }
        }
        Deny::VtpmLimit(n) => ApiError::VtpmMaxAmountReached { amount: n.to_string() },
    })
}

/// The operations that would pass their checks now, as allowed_operations lists them.
pub fn vm_allowed(st: &dyn Rows, r: &str, row: &Row) -> Vec<Value> {
    let dom0 = is_dom0(st, r, row);
    VM_LISTED.iter().filter(|op| vm_deny(row, op, false, dom0).is_none()).map(|op| Value::from(*op)).collect()
}

// --------------------------------------------------------- generic begin/end

/// The check and allowed-operations rules of a class that has operations.
pub struct Rules {
    pub check: fn(&Txn, &str, &Row, &str) -> Option<ApiError>,
}

fn rules(c: &ClassDef) -> Option<Rules> {
    match c.name {
        "VM" => Some(Rules { check: |tx, r, row, op| vm_check(tx, r, row, op, false) }),
        "VIF" => Some(Rules { check: vif::check }),
        "SR" => Some(sr::rules()),
        "VDI" => Some(vdi::rules()),
        "VBD" => Some(vbd::rules()),
        _ => None,
    }
}

/// A running operation; give it back to [`end`]. If it is dropped instead (a
/// handler that panicked, a call whose future was dropped when its client
/// went away), the entry is still removed, so no stale operation makes later
/// calls wait out the conflict timeout.
pub struct Op {
    pub class: &'static ClassDef,
    pub r: String,
    pub key: String,
    server: crate::Server,
    done: bool,
}

impl Op {
    /// Remove the entry; the commit, if any.
    fn release(&mut self) -> Option<store::Commit> {
        self.done = true;
        let c = self.class;
        let res = self.server.db.write(|tx| {
            tx.update(c, &self.r, |row| {
                if let Value::Struct(m) = &mut row.fields[field(c, "current_operations")] {
                    m.retain(|(k, _)| *k != self.key);
                }
            });
            Ok::<_, ApiError>(())
        });
        match res {
            Ok(((), commit)) => Some(commit),
            Err(e) => {
                // The entry stays until the next start clears it; say so.
                tracing::error!(class = c.name, r#ref = %self.r, op_key = %self.key, "cannot end operation: {e}");
                None
            }
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if !self.done {
            tracing::warn!(class = self.class.name, r#ref = %self.r, "operation ended without completing (caller gone or failed)");
            self.release();
        }
    }
}

/// Check `op` on an object and record it in current_operations under the
/// call's task. Waits while a conflicting operation is running.
pub async fn begin(ctx: &Ctx, c: &'static ClassDef, r: &str, op: &str) -> Result<Op> {
    let key = ctx.task.clone().unwrap_or_else(model::new_ref);
    let rules = rules(c).ok_or_else(|| crate::internal(format!("{} has no operation rules", c.name)))?;
    let deadline = tokio::time::Instant::now() + CONFLICT_WAIT;
    let mut rx = ctx.server.db.subscribe();
    loop {
        rx.borrow_and_update();
        let res = ctx.write(|tx| {
            let row = tx.get(c, r).cloned().ok_or_else(|| crate::handle_invalid(c, r))?;
            if let Some(e) = (rules.check)(tx, r, &row, op) {
                return Err(e);
            }
            tx.update(c, r, |row| {
                if let Value::Struct(m) = &mut row.fields[field(c, "current_operations")] {
                    m.push((key.clone(), Value::from(op)));
                }
            });
            Ok(())
        });
        match res {
            Ok(()) => {
                return Ok(Op { class: c, r: r.to_string(), key, server: ctx.server.clone(), done: false });
            }
            Err(ApiError::OtherOperationInProgress { .. }) if tokio::time::Instant::now() < deadline => {
                // Serialise behind the running operation, as xapi's retry loop does.
                tokio::select! {
                    _ = rx.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                if let Some(t) = &ctx.task {
                    if ctx.server.tasks.is_cancelling(t) {
                        return Err(ApiError::TaskCancelled { task: t.clone() });
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Remove a finished operation from current_operations; the reply waits for
/// that to be durable like any other write of the call.
pub fn end(ctx: &Ctx, mut op: Op) {
    if let Some(commit) = op.release() {
        ctx.note_commit(commit);
    }
}

/// Run `f` as operation `op` on an object: begin, run, end (even on failure,
/// and through the guard if this future is dropped).
pub async fn with_op<T, F, Fut>(ctx: &Ctx, c: &'static ClassDef, r: &str, op: &str, f: F) -> Result<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let token = begin(ctx, c, r, op).await?;
    let out = f().await;
    end(ctx, token);
    out
}

/// On start: no operation survives a restart (the process that ran it is
/// gone), so every class's current_operations is emptied; the commit's
/// precommit recomputes allowed_operations of the objects it touched.
pub fn clear_operations(db: &store::Db) -> Result<usize> {
    let (n, _) = db.write(|tx| {
        let mut n = 0;
        for &c in model::schema::CLASSES.iter() {
            let Some(co) = c.field_index("current_operations") else { continue };
            for r in tx.refs(c) {
                let stale = tx.get(c, &r).is_some_and(|row| matches!(row.get(co), Value::Struct(m) if !m.is_empty()));
                if stale {
                    tx.update(c, &r, |row| row.fields[co] = Value::empty_map());
                    n += 1;
                }
            }
        }
        Ok::<_, ApiError>(n)
    })?;
    Ok(n)
}

// ------------------------------------------------------- derived on commit

/// Run before every commit: keep derived fields true for the objects the
/// transaction changed (allowed_operations, host memory).
pub fn precommit(tx: &mut Txn) {
    let vm = class("VM");
    let changed_vms = tx.pending_refs(vm);
    // Memory the changed VMs' domains hold, before and after, per host.
    let mut delta: Vec<(String, i64)> = Vec::new();
    for r in &changed_vms {
        let Some(row) = tx.get(vm, r).cloned() else { continue };
        let want = Value::Array(vm_allowed(tx, r, &row));
        if row.get(F::ALLOWED_OPERATIONS.index) != &want {
            tx.set(vm, r, F::ALLOWED_OPERATIONS.index, want);
        }
        if let Some((h, m)) = tx.state().get(vm, r).and_then(|o| domain_memory(o)) {
            delta.push((h, m));
        }
        if let Some((h, m)) = domain_memory(&row) {
            delta.push((h, -m));
        }
    }
    vif::precommit(tx, &changed_vms);
    vbd::refresh_allowed(tx, &changed_vms);
    vdi::refresh_allowed(tx);
    sr::refresh_allowed(tx);
    adjust_host_memory(tx, delta);
}

/// (host, bytes) a VM's domain holds, if it has one.
fn domain_memory(row: &Row) -> Option<(String, i64)> {
    let running = matches!(row.get(F::POWER_STATE.index).as_str(), Some("Running") | Some("Paused"));
    if !running {
        return None;
    }
    let host = row.get(F::RESIDENT_ON.index).as_str()?.to_string();
    let m = row.get(F::MEMORY_DYNAMIC_MAX.index).as_int().unwrap_or(0)
        + row.get(F::MEMORY_OVERHEAD.index).as_int().unwrap_or(0);
    Some((host, m))
}

/// host_metrics.memory_free moves by what domains took or gave back.
fn adjust_host_memory(tx: &mut Txn, delta: Vec<(String, i64)>) {
    let (host, hm) = (class("host"), class("host_metrics"));
    let mut per_host: Vec<(String, i64)> = Vec::new();
    for (h, d) in delta {
        match per_host.iter_mut().find(|(x, _)| *x == h) {
            Some(e) => e.1 += d,
            None => per_host.push((h, d)),
        }
    }
    for (h, d) in per_host {
        if d == 0 {
            continue;
        }
        let Some(m) = tx.get(host, &h).and_then(|row| row.get(field(host, "metrics")).as_str().map(str::to_string))
        else {
            continue;
        };
        let i = field(hm, "memory_free");
        let Some(free) = tx.get(hm, &m).and_then(|row| row.get(i).as_int()) else { continue };
        tx.set(hm, &m, i, Value::Int(free + d));
    }
}

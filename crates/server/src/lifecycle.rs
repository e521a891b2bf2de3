//! Operations as state machines over the store, in one place per class (as
//! xapi's `xapi_vm_lifecycle`): which operations a power state allows, which
//! may run together, what templates and snapshots refuse, and the derived
//! `allowed_operations` / `current_operations` fields.
//!
//! An operation runs between [`begin`] (check, then record
//! `current_operations[task] = op`) and [`end`]. A conflicting operation
//! waits for the running one, as xapi retries OTHER_OPERATION_IN_PROGRESS.

use crate::{class, field, ApiError, Ctx, Result};
use model::schema::ClassDef;
use model::{Row, Value};
use std::time::Duration;
use store::Txn;

/// How long a conflicting operation waits for the one in progress (xapi: 2 h).
pub const CONFLICT_WAIT: Duration = Duration::from_secs(7200);

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// `(task, op)` pairs of an object's current_operations.
pub fn current_ops(row: &Row) -> Vec<(String, String)> {
    match row.get_by_name("current_operations") {
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

/// Every VM operation, as the enum lists them.
pub const VM_OPS: &[&str] = &[
    "snapshot",
    "clone",
    "copy",
    "create_template",
    "revert",
    "checkpoint",
    "snapshot_with_quiesce",
    "provision",
    "start",
    "start_on",
    "pause",
    "unpause",
    "clean_shutdown",
    "clean_reboot",
    "hard_shutdown",
    "power_state_reset",
    "hard_reboot",
    "suspend",
    "csvm",
    "resume",
    "resume_on",
    "pool_migrate",
    "migrate_send",
    "get_boot_record",
    "send_sysrq",
    "send_trigger",
    "query_services",
    "shutdown",
    "call_plugin",
    "changing_memory_live",
    "awaiting_memory_live",
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_shadow_memory",
    "changing_shadow_memory_live",
    "changing_VCPUs",
    "changing_VCPUs_live",
    "changing_NVRAM",
    "assert_operation_valid",
    "data_source_op",
    "update_allowed_operations",
    "make_into_template",
    "import",
    "export",
    "metadata_export",
    "reverting",
    "destroy",
    "create_vtpm",
];

/// Operations never listed in allowed_operations (xapi's ignore list).
const VM_IGNORED: &[&str] = &[
    "create_template",
    "power_state_reset",
    "csvm",
    "get_boot_record",
    "send_sysrq",
    "send_trigger",
    "query_services",
    "shutdown",
    "call_plugin",
    "changing_memory_live",
    "awaiting_memory_live",
    "changing_memory_limits",
    "changing_shadow_memory_live",
    "changing_VCPUs",
    "assert_operation_valid",
    "data_source_op",
    "update_allowed_operations",
    "import",
    "reverting",
];

const H: &str = "Halted";
const P: &str = "Paused";
const R: &str = "Running";
const S: &str = "Suspended";

/// The power states in which an operation may start.
pub fn vm_allowed_power_states(op: &str, is_snapshot: bool) -> &'static [&'static str] {
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
        | "changing_shadow_memory_live" => &[R],
        "hard_reboot" => &[P, R],
        "hard_shutdown" | "shutdown" | "checkpoint" | "get_boot_record" => &[P, S, R],
        "destroy" | "export" | "create_template" => &[H, S],
        "clone" | "copy" if is_snapshot => &[H, S],
        "clone" | "copy" => &[H],
        "changing_dynamic_range" => &[H, R],
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
    row.get_by_name("is_default_template").and_then(Value::as_bool) == Some(true)
        || row.get_by_name("other_config").and_then(|o| o.map_str("default_template")) == Some("true")
}

/// Why `op` cannot run on this VM now, in xapi's check order; None if it can.
pub fn vm_check(r: &str, row: &Row, op: &str, ignore_running: bool) -> Option<ApiError> {
    let c = row.class;
    let b = |n: &str| row.get(field(c, n)).as_bool() == Some(true);
    if let Some(reason) = row.get(field(c, "blocked_operations")).map_str(op) {
        return Some(ApiError::OperationBlocked { r#ref: r.to_string(), code: reason.to_string() });
    }
    let snapshot = b("is_a_snapshot");
    let ps = row.get(field(c, "power_state")).as_str().unwrap_or(H);
    let allowed = vm_allowed_power_states(op, snapshot);
    if !allowed.contains(&ps) {
        let expected = allowed.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>().join(", ");
        return Some(ApiError::VmBadPowerState { vm: r.to_string(), expected, actual: ps.to_lowercase() });
    }
    if !ignore_running {
        let cur = current_ops(row);
        let running: Vec<&str> = cur.iter().map(|(_, o)| o.as_str()).collect();
        if !cur.is_empty() && !allowed_concurrently(op, &running) {
            return Some(in_progress("VM", r, &cur));
        }
    }
    let label = vm_op_label(op).to_string();
    if b("is_a_template") && !snapshot {
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
                | "create_vtpm"
        ) || (matches!(op, "destroy" | "migrate_send") && !is_default_template(row));
        if !ok {
            return Some(ApiError::VmIsTemplate { vm: r.to_string(), operation: label });
        }
    }
    if snapshot
        && !matches!(op, "revert" | "clone" | "copy" | "export" | "destroy" | "hard_shutdown" | "metadata_export")
    {
        return Some(ApiError::VmIsSnapshot { vm: r.to_string(), operation: label });
    }
    if op == "provision" && !b("is_a_template") {
        return Some(ApiError::ProvisionOnlyAllowedOnTemplate);
    }
    if op == "revert" && !snapshot {
        return Some(ApiError::RevertOnlyAllowedOnSnapshot);
    }
    if b("is_control_domain")
        && !matches!(
            op,
            "changing_dynamic_range"
                | "changing_memory_live"
                | "changing_VCPUs_live"
                | "data_source_op"
                | "metadata_export"
        )
    {
        return Some(ApiError::OperationNotAllowed { reason: "This operation is not allowed on dom0".into() });
    }
    if matches!(op, "suspend" | "checkpoint" | "pool_migrate" | "migrate_send") {
        let pl = row.get(field(c, "platform"));
        if pl.map_str("nomigrate") == Some("true") || pl.map_str("nested-virt") == Some("true") {
            return Some(ApiError::VmIsImmobile { vm: r.to_string() });
        }
    }
    None
}

/// The operations that would pass their checks now.
pub fn vm_allowed(r: &str, row: &Row) -> Vec<Value> {
    VM_OPS
        .iter()
        .filter(|op| !VM_IGNORED.contains(op) && vm_check(r, row, op, false).is_none())
        .map(|op| Value::from(*op))
        .collect()
}

// --------------------------------------------------------- generic begin/end

/// The check and allowed-operations rules of a class that has operations.
pub struct Rules {
    pub check: fn(&Txn, &str, &Row, &str) -> Option<ApiError>,
}

fn rules(c: &ClassDef) -> Option<Rules> {
    match c.name {
        "VM" => Some(Rules { check: |_, r, row, op| vm_check(r, row, op, false) }),
        _ => crate::ops::rules(c),
    }
}

/// A running operation; give it back to [`end`].
pub struct Op {
    pub class: &'static ClassDef,
    pub r: String,
    pub key: String,
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
            Ok(()) => return Ok(Op { class: c, r: r.to_string(), key }),
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

/// Remove a finished operation from current_operations.
pub fn end(ctx: &Ctx, op: Op) {
    let c = op.class;
    let _ = ctx.write(|tx| {
        tx.update(c, &op.r, |row| {
            if let Value::Struct(m) = &mut row.fields[field(c, "current_operations")] {
                m.retain(|(k, _)| *k != op.key);
            }
        });
        Ok(())
    });
}

/// Run `f` as operation `op` on an object: begin, run, end (even on failure).
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

// ------------------------------------------------------- derived on commit

/// Run before every commit: keep derived fields true for the objects the
/// transaction changed (allowed_operations, host memory).
pub fn precommit(tx: &mut Txn) {
    let vm = class("VM");
    let changed_vms = tx.pending_refs(vm);
    let mut power_changed = false;
    for r in &changed_vms {
        let Some(row) = tx.get(vm, r).cloned() else { continue };
        let want = Value::Array(vm_allowed(r, &row));
        if row.get(field(vm, "allowed_operations")) != &want {
            tx.set(vm, r, field(vm, "allowed_operations"), want);
        }
        let old = tx.state().get(vm, r).cloned();
        let relevant = ["power_state", "resident_on", "memory_dynamic_max", "memory_target"];
        if old.is_none_or(|o| relevant.iter().any(|f| o.get(field(vm, f)) != row.get(field(vm, f)))) {
            power_changed = true;
        }
    }
    crate::ops::precommit(tx, &changed_vms);
    if power_changed {
        recompute_host_memory(tx);
    }
}

/// host_metrics.memory_free = total − memory of the domains resident on the host.
fn recompute_host_memory(tx: &mut Txn) {
    let (vm, host, hm) = (class("VM"), class("host"), class("host_metrics"));
    for h in tx.refs(host) {
        let Some(m) = tx.get(host, &h).and_then(|row| row.get(field(host, "metrics")).as_str().map(str::to_string))
        else {
            continue;
        };
        let Some(total) = tx.get(hm, &m).and_then(|row| row.get(field(hm, "memory_total")).as_int()) else { continue };
        let mut used = 0i64;
        for v in tx.refs(vm) {
            let Some(row) = tx.get(vm, &v) else { continue };
            let running = matches!(row.get(field(vm, "power_state")).as_str(), Some("Running") | Some("Paused"));
            if running && row.get(field(vm, "resident_on")).as_str() == Some(h.as_str()) {
                used += row.get(field(vm, "memory_dynamic_max")).as_int().unwrap_or(0)
                    + row.get(field(vm, "memory_overhead")).as_int().unwrap_or(0);
            }
        }
        let free = Value::Int((total - used).max(0));
        if tx.get(hm, &m).map(|row| row.get(field(hm, "memory_free")) != &free).unwrap_or(false) {
            tx.set(hm, &m, field(hm, "memory_free"), free);
        }
    }
}

/// The names of set members (for callers that need them).
pub fn members(v: &Value) -> Vec<String> {
    strs(v).into_iter().map(str::to_string).collect()
}

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

use crate::{field, ApiError, Ctx, Result};
use model::schema::{ClassDef, ClassId};
use model::schema::{CLASS_HOST, CLASS_HOST_METRICS, CLASS_VM};
use model::types::fields;
use model::types::fields::vm as F;
use model::types::{VbdOperations, VifOperations, VmOperations as O, VmPowerState as PS};
use model::{Operation, Row, Value};
use std::time::Duration;
use store::Txn;

/// How long a conflicting operation waits for the one in progress (xapi: 2 h).
pub const CONFLICT_WAIT: Duration = Duration::from_secs(7200);
const CONFLICT_SAY_AFTER: Duration = Duration::from_secs(10);

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
const VM_LISTED: &[O] = &[
    O::CreateVtpm,
    O::ChangingNvram,
    O::ChangingDynamicRange,
    O::ChangingShadowMemory,
    O::ChangingStaticRange,
    O::MakeIntoTemplate,
    O::MigrateSend,
    O::PoolMigrate,
    O::ChangingVcpusLive,
    O::Provision,
    O::Destroy,
    O::Export,
    O::ResumeOn,
    O::Resume,
    O::Suspend,
    O::HardReboot,
    O::HardShutdown,
    O::CleanReboot,
    O::CleanShutdown,
    O::Unpause,
    O::Pause,
    O::StartOn,
    O::Start,
    O::SnapshotWithQuiesce,
    O::Checkpoint,
    O::Revert,
    O::Clone,
    O::Copy,
    O::Snapshot,
];

const H: PS = PS::Halted;
const P: PS = PS::Paused;
const R: PS = PS::Running;
const S: PS = PS::Suspended;

/// The power states in which an operation may start. Exhaustive: a new
/// operation in the datamodel does not compile until it has its states.
pub fn vm_allowed_power_states(op: &O, is_snapshot: bool, is_control_domain: bool) -> &'static [PS] {
    match op {
        O::Start
        | O::StartOn
        | O::Provision
        | O::MakeIntoTemplate
        | O::ChangingShadowMemory
        | O::ChangingNvram
        | O::CreateVtpm => &[H],
        O::Unpause => &[P],
        O::Resume | O::ResumeOn | O::Csvm => &[S],
        O::CleanShutdown
        | O::CleanReboot
        | O::Pause
        | O::Suspend
        | O::PoolMigrate
        | O::SendSysrq
        | O::SendTrigger
        | O::CallPlugin
        | O::ChangingMemoryLive
        | O::ChangingVcpusLive
        | O::SnapshotWithQuiesce
        | O::AwaitingMemoryLive
        | O::ChangingShadowMemoryLive
        | O::DataSourceOp => &[R],
        O::HardReboot => &[P, R],
        O::HardShutdown | O::Shutdown | O::Checkpoint | O::GetBootRecord => &[P, S, R],
        O::Destroy | O::Export | O::CreateTemplate => &[H, S],
        O::Clone | O::Copy if is_snapshot => &[H, S],
        O::Clone | O::Copy => &[H],
        O::ChangingDynamicRange => &[H, R],
        // A control domain may change these while it runs (they apply at its next boot).
        O::ChangingVcpus | O::ChangingStaticRange | O::ChangingMemoryLimits if is_control_domain => &[H, R],
        O::ChangingVcpus | O::ChangingStaticRange | O::ChangingMemoryLimits => &[H],
        O::MigrateSend => &[H, S, R],
        O::Import => &[],
        // xapi's default: any power state.
        O::Snapshot
        | O::Revert
        | O::Reverting
        | O::PowerStateReset
        | O::QueryServices
        | O::AssertOperationValid
        | O::UpdateAllowedOperations
        | O::MetadataExport => &[H, P, R, S],
        // An operation this datamodel does not know is never allowed.
        O::Unknown(_) => &[],
    }
}

fn allowed_concurrently(op: &O, running: &[O]) -> bool {
    let all_in = |set: &[O]| set.contains(op) && running.iter().all(|r| set.contains(r));
    if all_in(&[O::Clone, O::Copy, O::Export]) || all_in(&[O::Snapshot, O::Checkpoint]) {
        return true;
    }
    match op {
        O::GetBootRecord => running.iter().all(|r| *r == O::GetBootRecord),
        O::HardShutdown => !running.contains(&O::HardShutdown),
        O::HardReboot => !running.iter().any(|r| matches!(r, O::HardShutdown | O::HardReboot)),
        // xapi's state machine: exactly this one operation in progress.
        O::Snapshot => running == [O::SnapshotWithQuiesce],
        O::MetadataExport | O::CleanShutdown | O::CleanReboot => running == [O::MigrateSend],
        _ => false,
    }
}

/// The operation name as xapi writes it in error parameters.
pub fn vm_op_label(op: &O) -> &str {
    match op {
        O::AssertOperationValid => "assertoperationvalid",
        O::DataSourceOp => "data_sources_op",
        O::ChangingVcpus | O::ChangingMemoryLimits | O::QueryServices | O::CreateTemplate => "(unknown operation)",
        o => o.as_str(),
    }
}

/// The VM operations during which its devices are not hot(un)plugged.
pub(crate) fn vm_stopping(op: &O) -> bool {
    matches!(op, O::CleanShutdown | O::HardShutdown | O::Suspend | O::Pause)
}

fn is_default_template(row: &Row) -> bool {
    row.read(F::IS_DEFAULT_TEMPLATE) || row.get(F::OTHER_CONFIG.index).map_str("default_template") == Some("true")
}

fn vm_current_ops(row: &Row) -> Vec<(String, String)> {
    row.read(F::CURRENT_OPERATIONS).into_iter().map(|(k, v)| (k, v.as_str().to_string())).collect()
}

/// Why an operation is refused, before any text is built (allowed_operations
/// checks every operation on every change, so this path must not allocate).
enum Deny<'a> {
    Blocked(&'a str),
    BadPowerState(&'static [PS], PS),
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

fn vm_deny<'a>(row: &'a Row, op: &O, ignore_running: bool, dom0: bool) -> Option<Deny<'a>> {
    if let Some(reason) = row.get(F::BLOCKED_OPERATIONS.index).map_str(op.as_str()) {
        return Some(Deny::Blocked(reason));
    }
    let snapshot = row.read(F::IS_A_SNAPSHOT);
    let control_domain = row.read(F::IS_CONTROL_DOMAIN);
    let ps = row.read(F::POWER_STATE);
    let allowed = vm_allowed_power_states(op, snapshot, control_domain);
    if !allowed.contains(&ps) {
        return Some(Deny::BadPowerState(allowed, ps));
    }
    if !ignore_running {
        if let Value::Struct(cur) = row.get(F::CURRENT_OPERATIONS.index) {
            if !cur.is_empty() {
                let running: Vec<O> = cur.iter().map(|(_, o)| O::parse(o.as_str().unwrap_or(""))).collect();
                if !allowed_concurrently(op, &running) {
                    return Some(Deny::InProgress);
                }
            }
        }
    }
    if row.read(F::IS_A_TEMPLATE) && !snapshot {
        let ok = matches!(
            op,
            O::Clone
                | O::Copy
                | O::Export
                | O::MetadataExport
                | O::Provision
                | O::ChangingDynamicRange
                | O::ChangingStaticRange
                | O::ChangingMemoryLimits
                | O::ChangingShadowMemory
                | O::ChangingVcpus
                | O::ChangingNvram
        ) || (matches!(op, O::Destroy | O::MigrateSend) && !is_default_template(row));
        if !ok {
            return Some(Deny::Template);
        }
    }
    if snapshot
        && !matches!(op, O::Revert | O::Clone | O::Copy | O::Export | O::Destroy | O::HardShutdown | O::MetadataExport)
    {
        return Some(Deny::Snapshot);
    }
    if *op == O::Provision && !row.read(F::IS_A_TEMPLATE) {
        return Some(Deny::ProvisionNeedsTemplate);
    }
    if *op == O::Revert && !snapshot {
        return Some(Deny::RevertNeedsSnapshot);
    }
    if matches!(op, O::Suspend | O::Checkpoint | O::PoolMigrate | O::MigrateSend) {
        let pl = row.get(F::PLATFORM.index);
        if pl.map_str("nomigrate") == Some("true") || pl.map_str("nested-virt") == Some("true") {
            return Some(Deny::Immobile);
        }
    }
    if dom0 && matches!(op, O::ChangingVcpus | O::Destroy) {
        return Some(Deny::Dom0);
    }
    if control_domain
        && !matches!(
            op,
            O::DataSourceOp
                | O::ChangingMemoryLive
                | O::AwaitingMemoryLive
                | O::MetadataExport
                | O::ChangingDynamicRange
                | O::ChangingMemoryLimits
                | O::ChangingStaticRange
                | O::Start
                | O::StartOn
                | O::ChangingVcpus
                | O::Destroy
        )
    {
        return Some(Deny::ControlDomain);
    }
    // Quiesced snapshots (VSS) are gone: always refused.
    if *op == O::SnapshotWithQuiesce {
        return Some(Deny::QuiesceUnsupported);
    }
    if *op == O::CreateVtpm {
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
    let hc = &CLASS_HOST;
    row.get(F::RESIDENT_ON.index)
        .as_str()
        .and_then(|h| st.row(hc, h))
        .is_some_and(|h| h.read(fields::host::CONTROL_DOMAIN).as_str() == r)
}

/// Why `op` cannot run on this VM now, in xapi's check order and with its
/// error parameters; None if it can. `st` resolves the VM's host (dom0 rules).
pub fn vm_check(st: &dyn Rows, r: &str, row: &Row, op: &O, ignore_running: bool) -> Option<ApiError> {
    let label = || vm_op_label(op).to_string();
    Some(match vm_deny(row, op, ignore_running, is_dom0(st, r, row))? {
        Deny::Blocked(reason) => ApiError::OperationBlocked { r#ref: r.to_string(), code: reason.to_string() },
        Deny::BadPowerState(allowed, ps) => ApiError::VmBadPowerState {
            vm: r.to_string(),
            expected: allowed.iter().map(|s| s.as_str().to_lowercase()).collect::<Vec<_>>().join(", "),
            actual: ps.as_str().to_lowercase(),
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
    VM_LISTED.iter().filter(|op| vm_deny(row, op, false, dom0).is_none()).map(|op| Value::from(op.as_str())).collect()
}

// --------------------------------------------------------- generic begin/end

/// The rules of a class's operations, implemented by the generated
/// operations enum of each class that has them: [`begin`] checks an
/// operation with its own class's rules, and a misspelt operation or a
/// class without rules does not compile.
pub trait Rules: Operation + Send + Sync {
    /// Why `op` cannot start on the object `r` (its `row`) now; None if it can.
    fn check(tx: &Txn, r: &str, row: &Row, op: &Self) -> Option<ApiError>;
}

impl Rules for O {
    fn check(tx: &Txn, r: &str, row: &Row, op: &O) -> Option<ApiError> {
        vm_check(tx, r, row, op, false)
    }
}

/// An operation the generated enum does not know (a newer peer's, or one
/// built from a name): refused, as INTERNAL_ERROR like any operation this
/// server cannot check, rather than let through by rules that decide on
/// known operations only.
pub(crate) fn unknown_op(class: &str, r: &str, name: &str) -> ApiError {
    tracing::warn!(class, r#ref = r, op = name, "refusing an operation the datamodel does not know");
    crate::internal(format!("{class} has no operation {name}"))
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

tokio::task_local! {
    /// In a call the master forwarded here: the operation (class, object,
    /// operation) the master checked and holds for it, as xapi's master
    /// holds the operations of the calls it forwards. This host's own
    /// `with_op` of the same operation then neither checks nor records it
    /// again (the entry is the master's: one write fewer each way).
    pub static HELD: (String, String, String);
}

/// The operation the master holds while a host runs a call it forwarded.
pub enum Held {
    Vm(O),
    Vbd(VbdOperations),
    Vif(VifOperations),
}

impl Held {
    /// The wire name, as the host is told it.
    pub fn name(&self) -> &str {
        match self {
            Held::Vm(o) => o.name(),
            Held::Vbd(o) => o.name(),
            Held::Vif(o) => o.name(),
        }
    }
}

/// The operation the master holds while a host runs a call on `c` it
/// forwarded (the first argument is the object): the one the handler's
/// own `with_op` uses.
pub fn held_op(c: &'static ClassDef, message: &str) -> Option<Held> {
    use VbdOperations as B;
    // The messages named as the operation they run.
    fn named<K: Operation + Clone>(ops: &[K], message: &str) -> Option<K> {
        ops.iter().find(|o| o.name() == message).cloned()
    }
    match c.id {
        ClassId::Vm => {
            const HELD_VM: [O; 10] = [
                O::Start,
                O::StartOn,
                O::CleanShutdown,
                O::HardShutdown,
                O::Shutdown,
                O::CleanReboot,
                O::HardReboot,
                O::Pause,
                O::Unpause,
                O::Suspend,
            ];
            named(&HELD_VM, message).map(Held::Vm)
        }
        ClassId::Vbd => named(&[B::Plug, B::Unplug, B::UnplugForce, B::Insert, B::Eject], message).map(Held::Vbd),
        ClassId::Vif => match message {
            "plug" => Some(Held::Vif(VifOperations::Plug)),
            // The handler records both as an unplug.
            "unplug" | "unplug_force" => Some(Held::Vif(VifOperations::Unplug)),
            _ => None,
        },
        _ => None,
    }
}

fn held_here(c: &'static ClassDef, r: &str, op: &str) -> bool {
    HELD.try_with(|(hc, hr, hop)| hc == c.name && hr == r && hop == op).unwrap_or(false)
}

impl Op {
    /// Remove the entry; the commit, if any.
    fn release(&mut self) -> Option<store::Commit> {
        self.done = true;
        if self.key.is_empty() {
            return None;
        }
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

/// Check `op` on an object of its class and record it in current_operations
/// under the call's task. Waits while a conflicting operation is running.
pub async fn begin<K: Rules>(ctx: &Ctx, r: &str, op: K) -> Result<Op> {
    let c = K::CLASS;
    let name = op.name();
    if held_here(c, r, name) {
        // The master checked it and holds it (no key: nothing to release).
        return Ok(Op { class: c, r: r.to_string(), key: String::new(), server: ctx.server.clone(), done: false });
    }
    let key = ctx.task.clone().unwrap_or_else(model::new_ref);
    let deadline = tokio::time::Instant::now() + CONFLICT_WAIT;
    let mut rx = ctx.server.db.subscribe();
    let mut said = false;
    let started = tokio::time::Instant::now();
    loop {
        rx.borrow_and_update();
        let res = ctx.write(|tx| {
            let row = tx.get(c, r).cloned().ok_or_else(|| crate::handle_invalid(c, r))?;
            if let Some(e) = K::check(tx, r, &row, &op) {
                return Err(e);
            }
            tx.update(c, r, |row| {
                if let Value::Struct(m) = &mut row.fields[field(c, "current_operations")] {
                    m.push((key.clone(), Value::from(name)));
                }
            });
            Ok(())
        });
        match res {
            Ok(()) => {
                return Ok(Op { class: c, r: r.to_string(), key, server: ctx.server.clone(), done: false });
            }
            Err(ApiError::OtherOperationInProgress { .. }) if tokio::time::Instant::now() < deadline => {
                if !said && started.elapsed() > CONFLICT_SAY_AFTER {
                    // A long wait is worth a line: which operations hold it.
                    said = true;
                    let held = ctx.server.db.read().get(c, r).map(|row| current_ops(row));
                    tracing::warn!(
                        class = c.name,
                        r#ref = r,
                        op = name,
                        ?held,
                        "still waiting for other operations to end"
                    );
                }
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

/// Run `f` as operation `op` on an object of its class: begin, run, end
/// (even on failure, and through the guard if this future is dropped).
pub async fn with_op<K, T, F, Fut>(ctx: &Ctx, r: &str, op: K, f: F) -> Result<T>
where
    K: Rules,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let token = begin(ctx, r, op).await?;
    let out = f().await;
    end(ctx, token);
    out
}

/// [`with_op`] of the operation the master holds for a call it forwards
/// ([`held_op`]).
pub async fn with_held<T, F, Fut>(ctx: &Ctx, r: &str, op: &Held, f: F) -> Result<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let token = match op {
        Held::Vm(o) => begin(ctx, r, o.clone()).await?,
        Held::Vbd(o) => begin(ctx, r, o.clone()).await?,
        Held::Vif(o) => begin(ctx, r, o.clone()).await?,
    };
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

/// On a pool member's start: the operations its previous run left on its
/// own objects (its host, the VMs it runs or was to run, with their VBDs
/// and VIFs) end, as a lone host clears all of its own. The rest
/// of the pool's objects are the master's. (A call the master forwards here
/// while this runs keeps its own entry on the master's side of the call.)
pub fn clear_operations_of_host(db: &store::Db, host: &str) -> Result<usize> {
    use model::types::fields::{host as H, vbd as VBD, vif as VIF};
    let (n, _) = db.write(|tx| {
        let st = tx.state();
        let mine = |r: &model::Ref<model::types::Host>| r.as_str() == host;
        let mut todo: Vec<(String, usize)> = vec![(host.to_string(), H::CURRENT_OPERATIONS.index)];
        for (r, v) in st.table(&CLASS_VM).iter() {
            if mine(&v.read(F::RESIDENT_ON)) || mine(&v.read(F::SCHEDULED_TO_BE_RESIDENT_ON)) {
                todo.push((r.clone(), F::CURRENT_OPERATIONS.index));
                todo.extend(v.read(F::VBDS).iter().map(|b| (b.as_str().to_string(), VBD::CURRENT_OPERATIONS.index)));
                todo.extend(v.read(F::VIFS).iter().map(|b| (b.as_str().to_string(), VIF::CURRENT_OPERATIONS.index)));
            }
        }
        let stale: Vec<(&'static ClassDef, String, usize)> = todo
            .into_iter()
            .filter_map(|(r, i)| {
                let c = st.class_of(&r)?;
                matches!(st.get(c, &r)?.get(i), Value::Struct(m) if !m.is_empty()).then_some((c, r, i))
            })
            .collect();
        let n = stale.len();
        for (c, r, i) in stale {
            tx.set(c, &r, i, Value::empty_map());
        }
        Ok::<_, ApiError>(n)
    })?;
    Ok(n)
}

// ------------------------------------------------------- derived on commit

/// Run before every commit: keep derived fields true for the objects the
/// transaction changed (allowed_operations, host memory).
pub fn precommit(tx: &mut Txn) {
    let vm = &CLASS_VM;
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

/// (host, bytes) a guest's domain holds, if it has one. A control
/// domain's memory is part of the host's own (`seed`), not a guest's.
pub(crate) fn domain_memory(row: &Row) -> Option<(String, i64)> {
    let running = matches!(row.read(F::POWER_STATE), PS::Running | PS::Paused);
    if !running || row.read(F::IS_CONTROL_DOMAIN) {
        return None;
    }
    let host = row.read(F::RESIDENT_ON).into_string();
    let m = row.get(F::MEMORY_DYNAMIC_MAX.index).as_int().unwrap_or(0)
        + row.get(F::MEMORY_OVERHEAD.index).as_int().unwrap_or(0);
    Some((host, m))
}

/// host_metrics.memory_free moves by what domains took or gave back.
fn adjust_host_memory(tx: &mut Txn, delta: Vec<(String, i64)>) {
    let (host, hm) = (&CLASS_HOST, &CLASS_HOST_METRICS);
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
        let Some(m) = tx.get(host, &h).map(|row| row.read(fields::host::METRICS).into_string()) else {
            continue;
        };
        let i = fields::host_metrics::MEMORY_FREE.index;
        let Some(free) = tx.get(hm, &m).and_then(|row| row.get(i).as_int()) else { continue };
        tx.set(hm, &m, i, Value::Int(free + d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<K: Operation>(ops: &[K]) -> Vec<&str> {
        ops.iter().map(|o| o.name()).collect()
    }

    /// allowed_operations lists keep the order xapi sends them in.
    #[test]
    fn listed_operations_keep_their_wire_order() {
        assert_eq!(
            names(sr::SR_OPS).join(" "),
            "scan destroy forget plug unplug vdi_create vdi_destroy vdi_resize vdi_clone vdi_snapshot vdi_mirror \
             vdi_enable_cbt vdi_disable_cbt vdi_data_destroy vdi_list_changed_blocks vdi_set_on_boot vdi_introduce \
             update pbd_create pbd_destroy"
        );
        assert_eq!(
            names(vdi::VDI_OPS).join(" "),
            "clone copy resize resize_online snapshot mirror destroy forget update generate_config"
        );
        assert_eq!(names(vbd::VBD_OPS).join(" "), "attach eject unplug unplug_force insert plug pause unpause");
        assert_eq!(names(vif::OPS).join(" "), "attach plug unplug");
    }

    #[test]
    fn held_operations_are_the_handlers_own() {
        use model::schema::{CLASS_VBD, CLASS_VIF};
        let held = |c, m| held_op(c, m).map(|h| h.name().to_string());
        assert_eq!(held(&CLASS_VM, "clean_reboot").as_deref(), Some("clean_reboot"));
        assert_eq!(held(&CLASS_VM, "clone"), None);
        assert_eq!(held(&CLASS_VBD, "unplug_force").as_deref(), Some("unplug_force"));
        assert_eq!(held(&CLASS_VBD, "destroy"), None);
        assert_eq!(held(&CLASS_VIF, "unplug_force").as_deref(), Some("unplug"));
        assert_eq!(held(&CLASS_HOST, "plug"), None);
    }
}

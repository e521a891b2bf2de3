//! Tasks: the records behind `Async.` calls (and synchronous calls of
//! async-capable messages), cancellation, and xapi's task GC (completed tasks
//! live 65 minutes; at most 200 once completed ones are trimmed).

use crate::{ApiError, Ctx, Result, Server};
use model::schema::CLASS_TASK;
use model::types::fields;
use model::types::fields::task as T;
use model::types::TaskStatusType;
use model::{DateTime, Ref, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio::sync::watch;

pub const MAX_TASKS: usize = 200;
pub const COMPLETED_TIMEOUT: i64 = 3900;
pub const PENDING_TIMEOUT: i64 = 86_400;

#[derive(Default)]
pub struct Tasks {
    /// task → owning session
    owner: Mutex<HashMap<String, String>>,
    /// task → cancellation signal
    cancel: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Tasks made by task.create: nothing server-side runs behind them.
    client: Mutex<HashSet<String>>,
}

impl Tasks {
    pub fn owner(&self, task: &str) -> Option<String> {
        self.owner.lock().ok().and_then(|m| m.get(task).cloned())
    }

    /// A receiver that turns true when the task is asked to cancel.
    pub fn cancel_signal(&self, task: &str) -> watch::Receiver<bool> {
        let mut m = match self.cancel.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(task.to_string()).or_insert_with(|| watch::channel(false).0).subscribe()
    }

    pub fn request_cancel(&self, task: &str) {
        if let Ok(m) = self.cancel.lock() {
            if let Some(tx) = m.get(task) {
                tx.send_replace(true);
            }
        }
    }

    pub fn is_cancelling(&self, task: &str) -> bool {
        self.cancel.lock().ok().and_then(|m| m.get(task).map(|t| *t.borrow())).unwrap_or(false)
    }

    pub fn mark_client(&self, task: &str) {
        if let Ok(mut m) = self.client.lock() {
            m.insert(task.to_string());
        }
    }

    /// Server-side work now runs behind `task` (a client's task passed to an
    /// HTTP handler): cancellation signals it instead of ending it at once.
    pub fn adopt(&self, task: &str) {
        if let Ok(mut m) = self.client.lock() {
            m.remove(task);
        }
        drop(self.cancel_signal(task));
    }

    pub fn is_client_task(&self, task: &str) -> bool {
        self.client.lock().map(|m| m.contains(task)).unwrap_or(false)
    }

    pub fn forget(&self, task: &str) {
        if let Ok(mut m) = self.client.lock() {
            m.remove(task);
        }
        if let Ok(mut m) = self.owner.lock() {
            m.remove(task);
        }
        if let Ok(mut m) = self.cancel.lock() {
            m.remove(task);
        }
    }

    pub fn sessions_with_pending_tasks(&self, s: &Server) -> HashSet<String> {
        let c = &CLASS_TASK;
        let status = fields::task::STATUS.index;
        let st = s.db.read();
        let owners = self.owner.lock().map(|m| m.clone()).unwrap_or_default();
        owners
            .into_iter()
            .filter(|(t, _)| st.get(c, t).map(|row| row.get(status).as_str() == Some("pending")).unwrap_or(false))
            .map(|(_, s)| s)
            .collect()
    }

    /// One GC pass over the task table.
    pub fn gc(&self, s: &Server) {
        let c = &CLASS_TASK;
        let (status, created, finished, current_ops) = (
            fields::task::STATUS.index,
            fields::task::CREATED.index,
            fields::task::FINISHED.index,
            fields::task::CURRENT_OPERATIONS.index,
        );
        let now = DateTime::now().secs;
        let secs = |v: &Value| match v {
            Value::DateTime(d) => d.secs,
            _ => 0,
        };
        let mut doomed = Vec::new();
        let mut completed: Vec<(i64, String)> = Vec::new();
        let mut young = 0usize;
        {
            let st = s.db.read();
            for (r, row) in st.table(c).iter() {
                let pending = matches!(row.get(status).as_str(), Some("pending") | Some("cancelling"));
                if pending {
                    if now - secs(row.get(created)) > PENDING_TIMEOUT {
                        doomed.push(r.clone());
                    } else {
                        young += 1;
                    }
                } else if marked_for_destroy(row.get(current_ops)) {
                    // task.destroy was called while it was pending: it goes as
                    // soon as it has completed (xapi's timeout_tasks).
                    doomed.push(r.clone());
                } else if now - secs(row.get(finished)) > COMPLETED_TIMEOUT {
                    doomed.push(r.clone());
                } else {
                    young += 1;
                    completed.push((secs(row.get(finished)), r.clone()));
                }
            }
        }
        if young > MAX_TASKS {
            completed.sort();
            doomed.extend(completed.into_iter().take(young - MAX_TASKS).map(|(_, r)| r));
        }
        if doomed.is_empty() {
            return;
        }
        crate::logged(
            "removing finished tasks past their lifetime",
            s.db.write(|tx| {
                for r in &doomed {
                    tx.delete(c, r);
                }
                Ok::<_, ApiError>(())
            }),
        );
        for r in &doomed {
            self.forget(r);
        }
    }
}

/// Whether a task's current_operations holds a `destroy` (set by task.destroy
/// on a pending task).
fn marked_for_destroy(ops: &Value) -> bool {
    match ops {
        Value::Struct(m) => m.iter().any(|(_, op)| op.as_str() == Some("destroy")),
        _ => false,
    }
}

/// Insert a pending task row owned by the caller's session.
pub fn new_task(ctx: &Ctx, label: &str, description: &str) -> Result<String> {
    new_task_as(ctx, &model::new_ref(), label, description)
}

/// [`new_task`] under a given ref: on a member, the local copy of a task of
/// the master's that a transfer the master sent here updates (see
/// `pooling::report_task`).
pub fn new_task_as(ctx: &Ctx, r: &str, label: &str, description: &str) -> Result<String> {
    let s = &ctx.server;
    let r = r.to_string();
    let mut row = crate::rows::new_row(T::UUID);
    row.write(T::NAME_LABEL, label.to_string());
    row.write(T::NAME_DESCRIPTION, description.to_string());
    row.write(T::CREATED, DateTime::now());
    row.write(T::STATUS, TaskStatusType::Pending);
    row.write(T::RESIDENT_ON, Ref::new(s.host.as_str()));
    row.write(T::TYPE, "<none/>".to_string());
    row.write(T::BACKTRACE, "()".to_string());
    ctx.write(|tx| {
        tx.insert(&r, row);
        Ok(())
    })?;
    if let Ok(mut m) = s.tasks.owner.lock() {
        m.insert(r.clone(), ctx.session.clone());
    }
    Ok(r)
}

pub fn create_for_call(ctx: &Ctx, label: &str) -> Result<String> {
    new_task(ctx, label, "")
}

/// The task behind a synchronous call is removed when the call returns.
pub fn finish_sync(ctx: &Ctx, task: &str) {
    let c = &CLASS_TASK;
    crate::logged(
        "destroying a synchronous call's task",
        ctx.server.db.write(|tx| {
            tx.delete(c, task);
            Ok::<_, ApiError>(())
        }),
    );
    ctx.server.tasks.forget(task);
}

/// Record a task's outcome.
pub fn complete(s: &Server, task: &str, outcome: &Result<Value>) {
    let c = &CLASS_TASK;
    let cancelled = matches!(outcome, Err(ApiError::TaskCancelled { .. }));
    crate::logged(
        "recording a task's result",
        s.db.write(|tx| {
            tx.update(c, task, |row| {
                row.write(T::FINISHED, DateTime::now());
                row.write(T::ALLOWED_OPERATIONS, vec![]);
                match outcome {
                    Ok(v) => {
                        row.write(T::STATUS, TaskStatusType::Success);
                        row.write(T::PROGRESS, 1.0);
                        row.write(T::RESULT, wire::xmlrpc::value_to_string(v));
                    }
                    Err(e) => {
                        row.write(
                            T::STATUS,
                            if cancelled { TaskStatusType::Cancelled } else { TaskStatusType::Failure },
                        );
                        row.write(T::PROGRESS, 1.0);
                        row.write(T::ERROR_INFO, e.to_wire());
                    }
                }
            });
            Ok::<_, ApiError>(())
        }),
    );
    if let Ok(mut m) = s.tasks.cancel.lock() {
        m.remove(task);
    }
}

/// A task's outcome as a member reports it to the master ([`reported`]).
pub fn outcome_report(out: &Result<Value>) -> Value {
    match out {
        Ok(v) => Value::Struct(vec![("success".into(), v.clone())]),
        Err(e) => {
            Value::Struct(vec![("failure".into(), Value::Array(e.to_wire().into_iter().map(Value::String).collect()))])
        }
    }
}

/// On the master: what a member reports of one of its tasks (a transfer
/// the master sent to the member): progress while the task is pending
/// (a late report does not move a finished task), then the outcome.
/// Whether the task is being (or was) cancelled here: the member's copy
/// is cancelled too.
pub fn reported(s: &Server, task: &str, report: &Value) -> Result<bool> {
    use model::types::TaskStatusType as T;
    let c = &CLASS_TASK;
    let status = s.db.read().get(c, task).ok_or_else(|| crate::handle_invalid(c, task))?.read(fields::task::STATUS);
    let pending = matches!(status, T::Pending | T::Cancelling);
    let cancel = matches!(status, T::Cancelling | T::Cancelled) || s.tasks.is_cancelling(task);
    match report {
        Value::Float(p) if pending => set_progress(s, task, *p),
        Value::Float(_) => {}
        Value::Struct(m) => match m.iter().find(|(k, _)| k == "failure") {
            Some((_, Value::Array(e))) => {
                let desc: Vec<String> = e.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
                complete(s, task, &Err(ApiError::from_wire(&desc)))
            }
            _ => complete(
                s,
                task,
                &Ok(m.iter().find(|(k, _)| k == "success").map(|(_, v)| v.clone()).unwrap_or(Value::from(""))),
            ),
        },
        // A question only: does the task exist.
        _ => {}
    }
    Ok(cancel)
}

/// Update a task's progress (0..1) during long work.
pub fn set_progress(s: &Server, task: &str, p: f64) {
    crate::logged(
        "recording a task's progress",
        s.db.write(|tx| {
            tx.put(task, fields::task::PROGRESS, p.clamp(0.0, 1.0));
            Ok::<_, ApiError>(())
        }),
    );
}

//! The HTTP side of transfers: a transfer's task from the request's
//! `task_id`, and the call context of a request. The rest of the plumbing
//! lives in `importexport::transfer`, which VM.import uses too.

use super::{Auth, Head};
use crate::{ApiError, Ctx, Result, Server};
use model::schema::CLASS_TASK;
use model::Value;

pub use crate::importexport::transfer::*;

impl HttpTask {
    pub async fn start(ctx: &Ctx, head: &Head, label: &str) -> Result<HttpTask> {
        let s = &ctx.server;
        let mut remote = false;
        let r = match head.param("task_id").filter(|t| !t.is_empty()) {
            Some(t) => {
                let c = &CLASS_TASK;
                if s.db.read().get(c, t).is_none() {
                    if !crate::pooling::is_member(s) {
                        return Err(crate::handle_invalid(c, t));
                    }
                    // The master sent this transfer here (its disks are
                    // here) with the client's task, which is the master's:
                    // a local copy, reported to the master as it goes.
                    if crate::pooling::report_task(s, t, Value::Nil).await? {
                        return Err(ApiError::TaskCancelled { task: t.to_string() });
                    }
                    crate::task::new_task_as(ctx, t, label, "")?;
                    remote = true;
                }
                t.to_string()
            }
            None => crate::task::new_task(ctx, label, "")?,
        };
        s.tasks.adopt(&r);
        let own = remote || head.param("task_id").is_none_or(str::is_empty);
        Ok(HttpTask { r, own, remote, last_pct: Default::default() })
    }
}

/// A call context for work done on behalf of an HTTP request.
pub fn context(s: &Server, auth: &Auth, head: &Head, method: &str, task: Option<&str>) -> Ctx {
    let mut ctx = Ctx::new(s.clone(), auth.session.clone(), method.to_string(), head.local);
    ctx.task = task.map(str::to_string);
    ctx
}

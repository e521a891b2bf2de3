//! Tasks behind `Async.` calls: wait for them through `event.from` (no
//! polling), watch their progress, cancel them.

use crate::{decode, ApiError, Error, Result, Session};
use model::types::{Task as TaskClass, TaskRecord, TaskStatusType};
use model::{Ref, Value, XenType};
use std::marker::PhantomData;

/// A running server-side task whose result decodes as `T`.
pub struct Task<T> {
    session: Session,
    r: Ref<TaskClass>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task { session: self.session.clone(), r: self.r.clone(), _t: PhantomData }
    }
}

impl<T: XenType> Task<T> {
    pub fn new(session: Session, r: Ref<TaskClass>) -> Self {
        Task { session, r, _t: PhantomData }
    }

    pub fn task_ref(&self) -> &Ref<TaskClass> {
        &self.r
    }

    pub async fn record(&self) -> Result<TaskRecord> {
        self.session.task().get_record(&self.r).await
    }

    /// Ask the server to cancel the task (cooperative).
    pub async fn cancel(&self) -> Result<()> {
        self.session.task().cancel(&self.r).await
    }

    /// Wait for the task to finish and return its result.
    pub async fn wait(&self) -> Result<T> {
        self.wait_with_progress(|_| {}).await
    }

    /// Like [`Task::wait`], calling `progress` with 0..1 as the task reports it.
    pub async fn wait_with_progress(&self, mut progress: impl FnMut(f64)) -> Result<T> {
        let sub = vec![Value::String(format!("task/{}", self.r))];
        let mut token = String::new();
        let mut last = -1.0;
        loop {
            let rec = self.record().await?;
            if rec.progress != last {
                last = rec.progress;
                progress(rec.progress);
            }
            if !matches!(rec.status, TaskStatusType::Pending | TaskStatusType::Cancelling) {
                return finish(&rec);
            }
            // Sleep until something happens to the task (or 30 s pass).
            let batch = self
                .session
                .call(
                    "event.from",
                    true,
                    vec![Value::Array(sub.clone()), Value::String(token.clone()), Value::Float(30.0)],
                )
                .await?;
            token = batch.member("token").and_then(Value::as_str).unwrap_or("").to_string();
        }
    }

    /// Destroy the finished task record.
    pub async fn destroy(&self) -> Result<()> {
        self.session.task().destroy(&self.r).await
    }
}

/// Turn a finished task record into its result or error.
pub fn finish<T: XenType>(rec: &TaskRecord) -> Result<T> {
    match rec.status {
        TaskStatusType::Success => {
            // The result is an XML-RPC fragment, even for JSON-RPC clients.
            let v = if rec.result.trim().is_empty() {
                Value::String(String::new())
            } else {
                wire::xmlrpc::parse_value(&rec.result).map_err(|e| Error::Protocol(format!("task result: {}", e.0)))?
            };
            decode("task result", &v)
        }
        _ => {
            let info = if rec.error_info.is_empty() {
                vec!["INTERNAL_ERROR".to_string(), format!("task {:?}", rec.status)]
            } else {
                rec.error_info.clone()
            };
            Err(Error::Api(ApiError::from_wire(&info)))
        }
    }
}

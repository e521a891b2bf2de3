//! task: client-created tasks, cancellation and the setters.

use crate::api::TaskApi;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::CLASS_TASK;
use model::types::fields;
use model::types::*;
use model::{Field, Ref, Value, XenType};

fn task_class() -> &'static model::ClassDef {
    &CLASS_TASK
}

impl Server {
    fn set_task_field<T: XenType>(&self, ctx: &Ctx, task: &Ref<Task>, f: Field<Task, T>, v: T) -> Result<()> {
        self.set_task_value(ctx, task, f, v.to_value())
    }

    /// [`Self::set_task_field`] with a value as built (a map keeps its key order).
    fn set_task_value<T>(&self, ctx: &Ctx, task: &Ref<Task>, f: Field<Task, T>, v: Value) -> Result<()> {
        let c = task_class();
        ctx.write(|tx| {
            if !tx.set(c, task.as_str(), f.index, v) {
                return Err(handle_invalid(c, task.as_str()));
            }
            Ok(())
        })
    }
}

impl TaskApi for Server {
    async fn create(&self, ctx: &Ctx, label: String, description: String) -> Result<Ref<Task>> {
        let t = crate::task::new_task(ctx, &label, &description)?;
        self.tasks.mark_client(&t);
        Ok(Ref::new(t))
    }

    async fn destroy(&self, ctx: &Ctx, self_: Ref<Task>) -> Result<()> {
        let c = task_class();
        let row = self.row(c, self_.as_str())?;
        let pending = row.read(fields::task::STATUS) == TaskStatusType::Pending;
        if pending {
            // A pending task is marked and removed by GC once it completes.
            let mut ops = match row.get(fields::task::CURRENT_OPERATIONS.index) {
                Value::Struct(m) => m.clone(),
                _ => vec![],
            };
            ops.push(("task".to_string(), Value::from("destroy")));
            return self.set_task_value(ctx, &self_, fields::task::CURRENT_OPERATIONS, Value::Struct(ops));
        }
        ctx.write(|tx| {
            tx.delete(c, self_.as_str());
            Ok(())
        })
    }

    async fn cancel(&self, ctx: &Ctx, task: Ref<Task>) -> Result<()> {
        let c = task_class();
        let row = self.row(c, task.as_str())?;
        if row.read(fields::task::STATUS) != TaskStatusType::Pending {
            return Ok(());
        }
        let mut ops = match row.get(fields::task::CURRENT_OPERATIONS.index) {
            Value::Struct(m) => m.clone(),
            _ => vec![],
        };
        ops.push((ctx.task.clone().unwrap_or_else(model::new_ref), Value::from("cancel")));
        self.set_task_value(ctx, &task, fields::task::CURRENT_OPERATIONS, Value::Struct(ops))?;
        self.tasks.request_cancel(task.as_str());
        // A task created by a client (no server-side work behind it) is
        // cancelled on the spot.
        if self.tasks.is_client_task(task.as_str()) {
            crate::task::complete(self, task.as_str(), &Err(ApiError::TaskCancelled { task: task.to_string() }));
        }
        Ok(())
    }

    async fn set_status(&self, ctx: &Ctx, self_: Ref<Task>, value: TaskStatusType) -> Result<()> {
        let done = !matches!(value, TaskStatusType::Pending | TaskStatusType::Cancelling);
        self.set_task_field(ctx, &self_, fields::task::STATUS, value)?;
        if done {
            self.set_task_field(ctx, &self_, fields::task::FINISHED, model::DateTime::now())?;
        }
        Ok(())
    }

    async fn set_progress(&self, ctx: &Ctx, self_: Ref<Task>, value: f64) -> Result<()> {
        self.set_task_field(ctx, &self_, fields::task::PROGRESS, value)
    }

    async fn set_result(&self, ctx: &Ctx, self_: Ref<Task>, value: String) -> Result<()> {
        self.set_task_field(ctx, &self_, fields::task::RESULT, value)
    }

    async fn set_error_info(&self, ctx: &Ctx, self_: Ref<Task>, value: Vec<String>) -> Result<()> {
        self.set_task_field(ctx, &self_, fields::task::ERROR_INFO, value)
    }
}

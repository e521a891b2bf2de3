//! event: the explicit messages, delegating to `crate::event`.

use crate::api::EventApi;
use crate::{Ctx, Result, Server};
use model::Value;

impl EventApi for Server {
    async fn from(&self, ctx: &Ctx, classes: Vec<String>, token: String, timeout: f64) -> Result<Value> {
        crate::event::from(ctx, classes, token, timeout).await
    }

    async fn inject(&self, ctx: &Ctx, class: String, r#ref: String) -> Result<String> {
        crate::event::inject(ctx, &class, &r#ref)
    }

    async fn get_current_id(&self, _ctx: &Ctx) -> Result<i64> {
        Ok(self.db.generation() as i64)
    }

    async fn register(&self, ctx: &Ctx, classes: Vec<String>) -> Result<()> {
        self.events.register(self, &ctx.session, classes);
        Ok(())
    }

    async fn unregister(&self, ctx: &Ctx, classes: Vec<String>) -> Result<()> {
        self.events.unregister(&ctx.session, classes);
        Ok(())
    }

    async fn next(&self, ctx: &Ctx) -> Result<Vec<Value>> {
        match crate::event::next(ctx).await? {
            Value::Array(a) => Ok(a),
            other => Ok(vec![other]),
        }
    }
}

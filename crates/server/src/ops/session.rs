//! session: login forms, logout, local logins, password changes.

use crate::api::SessionApi;
use crate::session::LoginSpec;
use crate::{ApiError, Ctx, Result, Server};
use model::types::*;
use model::Ref;

impl SessionApi for Server {
    async fn login_with_password(
        &self,
        ctx: &Ctx,
        uname: String,
        pwd: String,
        _version: String,
        originator: String,
    ) -> Result<Ref<Session>> {
        let spec = LoginSpec { user: &uname, password: &pwd, originator: &originator, local: ctx.local, pool: true };
        self.sessions.login(self, spec).await.map(Ref::new)
    }

    async fn slave_local_login_with_password(&self, ctx: &Ctx, uname: String, pwd: String) -> Result<Ref<Session>> {
        let spec = LoginSpec { user: &uname, password: &pwd, originator: "", local: ctx.local, pool: false };
        self.sessions.login(self, spec).await.map(Ref::new)
    }

    async fn logout(&self, ctx: &Ctx) -> Result<()> {
        self.sessions.logout(self, &ctx.session)
    }

    async fn local_logout(&self, ctx: &Ctx) -> Result<()> {
        self.sessions.logout(self, &ctx.session)
    }

    async fn change_password(&self, ctx: &Ctx, old_pwd: String, new_pwd: String) -> Result<()> {
        let c = &model::schema::CLASS_SESSION;
        let user = self.row(c, &ctx.session)?.read(model::types::fields::session::AUTH_USER_NAME);
        // Under the same hashing bounds as logins (a refused check is a
        // rejection).
        let ok = ctx.local
            || self.sessions.check_password(self, &user, &old_pwd, crate::session::peer()).await.unwrap_or(false);
        if !ok {
            tracing::info!(user, "change_password: old password rejected");
            return Err(ApiError::ChangePasswordRejected { msg: "Authentication failure".into() });
        }
        let p = self.clone();
        tokio::task::spawn_blocking(move || p.passwd.set(&user, &new_pwd))
            .await
            .map_err(|e| crate::internal(e.to_string()))?
            .map_err(crate::internal)
    }

    async fn get_all_subject_identifiers(&self, _ctx: &Ctx) -> Result<Vec<String>> {
        let c = &model::schema::CLASS_SESSION;
        let f = fields::session::AUTH_USER_SID.index;
        let st = self.db.read();
        let mut out: Vec<String> = st
            .table(c)
            .rows
            .values()
            .filter_map(|e| e.row.get(f).as_str().filter(|s| !s.is_empty()).map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn logout_subject_identifier(&self, ctx: &Ctx, subject_identifier: String) -> Result<()> {
        // Every session of that subject but the caller's.
        let n = self.sessions.logout_where(self, |r, row| {
            r != ctx.session && row.read(fields::session::AUTH_USER_SID).as_str() == subject_identifier.as_str()
        });
        tracing::info!(subject_identifier, sessions = n, "logout_subject_identifier");
        Ok(())
    }
}

//! role, subject and auth: the RBAC catalogue as objects, the subjects
//! (directory users and groups allowed to log in) and their roles, and
//! lookups in the external directory.

use crate::api::{AuthApi, RoleApi, SubjectApi};
use crate::extauth::AuthErr;
use crate::implicit::Hooks;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::types::*;
use model::{Ref, Row, Value};
use std::collections::BTreeMap;
use store::Txn;

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// A role's permissions (its subroles); empty for a permission.
fn perms_of(s: &Server, role: &str) -> Result<Vec<String>> {
    let rc = &model::schema::CLASS_ROLE;
    Ok(strs(s.row(rc, role)?.get(fields::role::SUBROLES.index)))
}

fn names_of(s: &Server, refs: &[String]) -> Vec<String> {
    let rc = &model::schema::CLASS_ROLE;
    let st = s.db.read();
    refs.iter().filter_map(|r| st.get(rc, r).map(|row| row.read(fields::role::NAME_LABEL))).collect()
}

/// Roles (not permissions) whose permissions include `perm`.
fn roles_with(s: &Server, perm: &str) -> Vec<Ref<Role>> {
    let rc = &model::schema::CLASS_ROLE;
    let sub = fields::role::SUBROLES.index;
    let st = s.db.read();
    let mut out: Vec<(usize, String)> = st
        .table(rc)
        .rows
        .iter()
        .filter(|(_, e)| matches!(e.row.get(sub), Value::Array(a) if a.iter().any(|x| x.as_str() == Some(perm))))
        .map(|(r, e)| {
            let name = e.row.read(fields::role::NAME_LABEL);
            (model::schema::Role::from_name(&name).map(|r| r as usize).unwrap_or(usize::MAX), r.clone())
        })
        .collect();
    // xapi's order: most privileged first.
    out.sort();
    out.into_iter().map(|(_, r)| Ref::new(r)).collect()
}

impl RoleApi for Server {
    async fn get_permissions(&self, _ctx: &Ctx, self_: Ref<Role>) -> Result<Vec<Ref<Role>>> {
        Ok(perms_of(self, self_.as_str())?.into_iter().map(Ref::new).collect())
    }

    async fn get_permissions_name_label(&self, _ctx: &Ctx, self_: Ref<Role>) -> Result<Vec<String>> {
        let perms = perms_of(self, self_.as_str())?;
        Ok(names_of(self, &perms))
    }

    async fn get_by_permission(&self, _ctx: &Ctx, permission: Ref<Role>) -> Result<Vec<Ref<Role>>> {
        self.row(&model::schema::CLASS_ROLE, permission.as_str())?;
        Ok(roles_with(self, permission.as_str()))
    }

    async fn get_by_permission_name_label(&self, _ctx: &Ctx, label: String) -> Result<Vec<Ref<Role>>> {
        let rc = &model::schema::CLASS_ROLE;
        let perm = {
            let st = self.db.read();
            st.table(rc)
                .rows
                .iter()
                .find(|(_, e)| {
                    e.row.read(fields::role::NAME_LABEL).as_str() == label.as_str()
                        && matches!(e.row.get(fields::role::SUBROLES.index), Value::Array(a) if a.is_empty())
                })
                .map(|(r, _)| r.clone())
        };
        Ok(perm.map(|p| roles_with(self, &p)).unwrap_or_default())
    }
}

/// Is `role` one of the roles (not a permission)?
fn is_role(s: &Server, role: &str) -> bool {
    let rc = &model::schema::CLASS_ROLE;
    s.db.read()
        .get(rc, role)
        .is_some_and(|row| matches!(row.get(fields::role::SUBROLES.index), Value::Array(a) if !a.is_empty()))
}

impl SubjectApi for Server {
    async fn add_to_roles(&self, ctx: &Ctx, self_: Ref<Subject>, role: Ref<Role>) -> Result<()> {
        let sc = &model::schema::CLASS_SUBJECT;
        self.row(sc, self_.as_str())?;
        if !is_role(self, role.as_str()) {
            return Err(ApiError::RoleNotFound);
        }
        let rf = fields::subject::ROLES.index;
        ctx.write(|tx| {
            let row = tx.get(sc, self_.as_str()).ok_or_else(|| handle_invalid(sc, self_.as_str()))?;
            let mut roles = strs(row.get(rf));
            if roles.iter().any(|r| r == role.as_str()) {
                return Err(ApiError::RoleAlreadyExists);
            }
            roles.push(role.as_str().to_string());
            tx.set(sc, self_.as_str(), rf, Value::Array(roles.into_iter().map(Value::String).collect()));
            Ok(())
        })
    }

    async fn remove_from_roles(&self, ctx: &Ctx, self_: Ref<Subject>, role: Ref<Role>) -> Result<()> {
        let sc = &model::schema::CLASS_SUBJECT;
        self.row(sc, self_.as_str())?;
        let rf = fields::subject::ROLES.index;
        ctx.write(|tx| {
            let row = tx.get(sc, self_.as_str()).ok_or_else(|| handle_invalid(sc, self_.as_str()))?;
            let mut roles = strs(row.get(rf));
            let before = roles.len();
            roles.retain(|r| r != role.as_str());
            if roles.len() == before {
                return Err(ApiError::RoleNotFound);
            }
            tx.set(sc, self_.as_str(), rf, Value::Array(roles.into_iter().map(Value::String).collect()));
            Ok(())
        })
    }

    async fn get_permissions_name_label(&self, _ctx: &Ctx, self_: Ref<Subject>) -> Result<Vec<String>> {
        let sc = &model::schema::CLASS_SUBJECT;
        let roles = strs(self.row(sc, self_.as_str())?.get(fields::subject::ROLES.index));
        let mut perms: Vec<String> = Vec::new();
        for r in roles {
            if let Ok(p) = perms_of(self, &r) {
                perms.extend(p);
            }
        }
        perms.sort();
        perms.dedup();
        Ok(names_of(self, &perms))
    }
}

/// A directory error as the auth class reports it.
fn auth_error(e: AuthErr) -> ApiError {
    match e {
        AuthErr::NotFound(m) => {
            tracing::info!("auth: {m}");
            ApiError::SubjectCannotBeResolved
        }
        AuthErr::Failure(m) | AuthErr::Service(m) => ApiError::AuthServiceError { message: m },
    }
}

fn require_enabled(s: &Server) -> Result<()> {
    if s.extauth.config().is_none() {
        return Err(ApiError::AuthIsDisabled);
    }
    Ok(())
}

impl AuthApi for Server {
    async fn get_subject_identifier(&self, _ctx: &Ctx, subject_name: String) -> Result<String> {
        require_enabled(self)?;
        crate::extauth::subject_identifier(self, &subject_name).await.map_err(auth_error)
    }

    async fn get_subject_information_from_identifier(
        &self,
        _ctx: &Ctx,
        subject_identifier: String,
    ) -> Result<BTreeMap<String, String>> {
        require_enabled(self)?;
        crate::extauth::subject_information(self, &subject_identifier).await.map_err(auth_error)
    }

    async fn get_group_membership(&self, _ctx: &Ctx, subject_identifier: String) -> Result<Vec<String>> {
        require_enabled(self)?;
        crate::extauth::group_membership(self, &subject_identifier).await.map_err(auth_error)
    }
}

/// subject.create: one subject per identifier (xapi's SUBJECT_ALREADY_EXISTS).
fn create_subject(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &mut Row) -> Result<()> {
    let sc = &model::schema::CLASS_SUBJECT;
    let f = fields::subject::SUBJECT_IDENTIFIER.index;
    let sid = row.get(f).as_str().unwrap_or("").to_string();
    if tx.state().table(sc).rows.iter().any(|(_, e)| e.row.get(f).as_str() == Some(sid.as_str())) {
        return Err(ApiError::SubjectAlreadyExists);
    }
    Ok(())
}

pub const SUBJECT_HOOKS: Hooks = Hooks { create: Some(create_subject), destroy: None, set: None };

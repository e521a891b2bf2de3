//! Sessions: login, validation, logout and xapi's garbage collection
//! (24 h idle expiry; at most 500 sessions per originator or per non-root
//! user, 400 anonymous; least recently active evicted first; sessions that
//! own pending tasks are never evicted).

use crate::{class, field, put, ApiError, Result, Server};
use model::{DateTime, Value};
use std::collections::HashMap;
use std::time::Duration;

/// `last_active` is only rewritten when older than this, to keep reads cheap.
const LAST_ACTIVE_REFRESH: i64 = 600;
pub const IDLE_EXPIRY: i64 = 86_400;
pub const PER_ORIGINATOR: usize = 500;
pub const PER_USER: usize = 500;
pub const ANONYMOUS: usize = 400;

#[derive(Default)]
pub struct Sessions {}

pub struct LoginSpec<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub originator: &'a str,
    pub local: bool,
    /// `slave_local_login*`: a session that is not a pool session.
    pub pool: bool,
}

impl Sessions {
    /// SESSION_INVALID unless `sref` is a live session; refreshes `last_active`.
    pub fn validate(&self, s: &Server, sref: &str) -> Result<()> {
        let c = class("session");
        let stale = {
            let st = s.db.read();
            let row = st.get(c, sref).ok_or_else(|| ApiError::SessionInvalid { handle: sref.to_string() })?;
            let la = match row.get(field(c, "last_active")) {
                Value::DateTime(d) => d.secs,
                _ => 0,
            };
            DateTime::now().secs - la > LAST_ACTIVE_REFRESH
        };
        if stale {
            let now = Value::DateTime(DateTime::now());
            let _ = s.db.write(|tx| {
                tx.set(c, sref, field(c, "last_active"), now);
                Ok::<_, ApiError>(())
            });
        }
        Ok(())
    }

    /// Check credentials and create a session.
    pub async fn login(&self, s: &Server, spec: LoginSpec<'_>) -> Result<String> {
        if !spec.local {
            let (user, pw) = (spec.user.to_string(), spec.password.to_string());
            let p = s.clone();
            let ok = tokio::task::spawn_blocking(move || p.passwd.check(&user, &pw))
                .await
                .map_err(|e| crate::internal(e.to_string()))?;
            if !ok {
                tokio::time::sleep(s.cfg.login_failure_delay).await;
                return Err(ApiError::SessionAuthenticationFailed {
                    uname: spec.user.to_string(),
                    message: "Authentication failure".into(),
                });
            }
        }
        let c = class("session");
        let r = model::new_ref();
        let mut row = store::blank_row(c);
        let now = Value::DateTime(DateTime::now());
        put(&mut row, "uuid", model::new_uuid());
        put(&mut row, "this_host", s.host.as_str());
        put(&mut row, "last_active", now.clone());
        put(&mut row, "validation_time", now);
        put(&mut row, "pool", false);
        put(&mut row, "is_local_superuser", true);
        put(&mut row, "auth_user_name", spec.user);
        put(&mut row, "originator", spec.originator);
        let _ = spec.pool;
        s.db.write(|tx| {
            tx.insert(&r, row);
            Ok::<_, ApiError>(())
        })?;
        Ok(r)
    }

    pub fn logout(&self, s: &Server, sref: &str) -> Result<()> {
        let c = class("session");
        s.db.write(|tx| {
            tx.delete(c, sref);
            Ok::<_, ApiError>(())
        })?;
        s.events.unregister_session(sref);
        Ok(())
    }

    /// One garbage-collection pass; returns how many sessions were destroyed.
    pub fn gc(&self, s: &Server) -> usize {
        let c = class("session");
        let busy = s.tasks.sessions_with_pending_tasks(s);
        let now = DateTime::now().secs;
        let (la, pool, user, orig) =
            (field(c, "last_active"), field(c, "pool"), field(c, "auth_user_name"), field(c, "originator"));
        let mut doomed: Vec<String> = Vec::new();
        let mut groups: HashMap<(u8, String), Vec<(i64, String)>> = HashMap::new();
        {
            let st = s.db.read();
            for (r, row) in st.table(c).iter() {
                if busy.contains(r) {
                    continue;
                }
                let last = match row.get(la) {
                    Value::DateTime(d) => d.secs,
                    _ => 0,
                };
                if now - last > IDLE_EXPIRY {
                    doomed.push(r.clone());
                    continue;
                }
                let u = row.get(user).as_str().unwrap_or("");
                let o = row.get(orig).as_str().unwrap_or("");
                let key = if row.get(pool).as_bool() == Some(true) {
                    (0, String::new())
                } else if (u.is_empty() || u == "root") && !o.is_empty() {
                    (1, o.to_string())
                } else if !u.is_empty() && u != "root" {
                    (2, u.to_string())
                } else {
                    (3, String::new())
                };
                groups.entry(key).or_default().push((last, r.clone()));
            }
        }
        for ((kind, _), mut members) in groups {
            let limit = match kind {
                1 => PER_ORIGINATOR,
                2 => PER_USER,
                _ => ANONYMOUS,
            };
            if members.len() > limit {
                members.sort();
                let excess = members.len() - limit;
                doomed.extend(members.into_iter().take(excess).map(|(_, r)| r));
            }
        }
        if doomed.is_empty() {
            return 0;
        }
        let _ = s.db.write(|tx| {
            for r in &doomed {
                tx.delete(c, r);
            }
            Ok::<_, ApiError>(())
        });
        for r in &doomed {
            s.events.unregister_session(r);
        }
        doomed.len()
    }
}

/// Run the session (and task) garbage collector periodically.
pub fn spawn_gc(s: Server, every: Duration) {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.tick().await;
        loop {
            t.tick().await;
            let n = s.sessions.gc(&s);
            if n > 0 {
                tracing::info!(destroyed = n, "session gc");
            }
            s.tasks.gc(&s);
        }
    });
}

//! Sessions: login, validation, logout and xapi's garbage collection
//! (24 h idle expiry; at most 500 sessions per originator or per non-root
//! user, 400 anonymous; least recently active evicted first; sessions that
//! own pending tasks are never evicted). The per-group limits are also
//! enforced at login, so a burst of logins never leaves more than the limit
//! valid until the next collection.
//!
//! Password checks are throttled: argon2 takes ~19 MiB per check, so only
//! `login_hash_threads` run at once (xapi likewise bounds PAM checks with its
//! `local_auth_max_threads` semaphore), at most `login_hash_queue` wait, and
//! an address with too many recent failures is refused without hashing.

use crate::{ApiError, Result, Server};
use model::schema::Role;
use model::types::fields;
use model::{DateTime, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

tokio::task_local! {
    /// The client's address for everything served on a TCP or TLS
    /// connection (None on the Unix socket). A task-local rather than a
    /// parameter so that logins deep in the dispatcher, the CLI and the
    /// handlers' basic auth see it without every call path carrying it.
    pub static PEER: Option<IpAddr>;
}

/// The address of the client whose request is being served, if it came
/// over TCP or TLS.
pub fn peer() -> Option<IpAddr> {
    PEER.try_with(|p| *p).ok().flatten()
}

/// `last_active` is only rewritten when older than this, to keep reads cheap.
const LAST_ACTIVE_REFRESH: i64 = 600;
pub const IDLE_EXPIRY: i64 = 86_400;
pub const PER_ORIGINATOR: usize = 500;
pub const PER_USER: usize = 500;
pub const ANONYMOUS: usize = 400;

/// Addresses tracked for failed logins at most; beyond it, new addresses
/// are not tracked (the hashing bound still caps what they cost).
const MAX_TRACKED_SOURCES: usize = 65_536;

pub struct Sessions {
    guard: LoginGuard,
    /// What each live session may do, fixed at login as xapi fixes a
    /// session's `rbac_permissions` (role changes apply from the next
    /// login). Kept beside the store so the per-call check reads no row.
    grants: RwLock<HashMap<String, Grant>>,
    /// On a pool member: the master's sessions it honours (for HTTP
    /// handlers: consoles, statistics), and when the master last vouched
    /// for each.
    mirrors: Mutex<HashMap<String, Instant>>,
}

/// How long a member honours a master's session before asking again (a
/// logout on the master reaches the member within this).
pub const MIRROR_TTL: Duration = Duration::from_secs(60);

/// What a member is told about one of the master's sessions.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Vouched {
    pub user: String,
    /// None: the local superuser.
    pub role: Option<String>,
}

/// What a session may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Local root or the local superuser: no RBAC check.
    Superuser,
    /// The most privileged role among the subject's and its groups' roles
    /// (roles form a chain, so this is their union).
    Role(Role),
    /// Nothing (a session this process did not log in).
    Nothing,
}

/// Why a password was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many recent failures from this address.
    Throttled,
    /// Every hashing slot is busy and the queue is full.
    Busy,
}

/// Failures from one address in the current window.
struct Window {
    start: Instant,
    failures: u32,
}

/// Bounds on password hashing: a semaphore of hashing slots, a bounded
/// queue in front of it, and per-address failure counts.
struct LoginGuard {
    /// None: unbounded (the configuration knob used to measure the bound).
    slots: Option<Arc<Semaphore>>,
    /// Checks waiting for or holding a slot.
    in_line: AtomicUsize,
    max_in_line: usize,
    per_source: u32,
    window: Duration,
    sources: Mutex<HashMap<IpAddr, Window>>,
}

impl LoginGuard {
    fn new(cfg: &crate::Config) -> LoginGuard {
        let threads = cfg.login_hash_threads;
        LoginGuard {
            slots: (threads > 0).then(|| Arc::new(Semaphore::new(threads))),
            in_line: AtomicUsize::new(0),
            max_in_line: threads + cfg.login_hash_queue,
            per_source: cfg.login_failures_per_source,
            window: cfg.login_failure_window,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn throttled(&self, peer: Option<IpAddr>) -> bool {
        let Some(ip) = peer else { return false };
        if self.per_source == 0 {
            return false;
        }
        let Ok(mut m) = self.sources.lock() else { return false };
        match m.get(&ip) {
            Some(w) if w.start.elapsed() >= self.window => {
                m.remove(&ip);
                false
            }
            Some(w) => w.failures >= self.per_source,
            None => false,
        }
    }

    fn record(&self, peer: Option<IpAddr>, ok: bool) {
        let Some(ip) = peer else { return };
        if self.per_source == 0 {
            return;
        }
        let Ok(mut m) = self.sources.lock() else { return };
        if ok {
            m.remove(&ip);
            return;
        }
        if m.len() >= MAX_TRACKED_SOURCES && !m.contains_key(&ip) {
            let window = self.window;
            m.retain(|_, w| w.start.elapsed() < window);
            if m.len() >= MAX_TRACKED_SOURCES {
                tracing::warn!(%ip, "too many addresses with failed logins to track another");
                return;
            }
        }
        let w = m.entry(ip).or_insert(Window { start: Instant::now(), failures: 0 });
        if w.start.elapsed() >= self.window {
            *w = Window { start: Instant::now(), failures: 0 };
        }
        w.failures += 1;
        if w.failures == self.per_source {
            tracing::warn!(%ip, failures = w.failures, "failed logins: refusing this address until its window ends");
        }
    }

    /// Check a password under the bounds. The caller applies the failure
    /// delay: it is served after the slot is released, so waiting clients
    /// never hold hashing capacity.
    async fn check(&self, s: &Server, user: &str, password: &str, peer: Option<IpAddr>) -> Result<bool, Refusal> {
        if self.throttled(peer) {
            return Err(Refusal::Throttled);
        }
        struct InLine<'a>(&'a AtomicUsize);
        impl Drop for InLine<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if self.in_line.fetch_add(1, Ordering::AcqRel) >= self.max_in_line && self.slots.is_some() {
            self.in_line.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        let _in_line = InLine(&self.in_line);
        let slot = match &self.slots {
            Some(sem) => Some(sem.clone().acquire_owned().await.map_err(|_| Refusal::Busy)?),
            None => None,
        };
        // Failures recorded while this one waited count too: the queue
        // behind a flood from one address drains without hashing.
        if self.throttled(peer) {
            return Err(Refusal::Throttled);
        }
        let (u, pw, p) = (user.to_string(), password.to_string(), s.clone());
        // The slot goes with the hash: a client that disconnects drops this
        // future, but the hash runs on and must keep its slot until done.
        let hash = move || {
            let _slot = slot;
            p.passwd.check(&u, &pw)
        };
        let ok = match tokio::task::spawn_blocking(hash).await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!("password check failed to run: {e}");
                false
            }
        };
        self.record(peer, ok);
        Ok(ok)
    }
}

pub struct LoginSpec<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub originator: &'a str,
    pub local: bool,
    /// `slave_local_login*`: a session that is not a pool session.
    pub pool: bool,
}

impl Sessions {
    pub fn new(cfg: &crate::Config) -> Sessions {
        Sessions { guard: LoginGuard::new(cfg), grants: RwLock::new(HashMap::new()), mirrors: Default::default() }
    }

    /// The grant of a live session (call after `validate`).
    pub fn grant(&self, s: &Server, sref: &str) -> Grant {
        if let Some(g) = self.grants.read().ok().and_then(|m| m.get(sref).copied()) {
            return g;
        }
        // Not logged in here: only the superuser flag can be trusted.
        let c = &model::schema::CLASS_SESSION;
        let superuser =
            s.db.read()
                .get(c, sref)
                .is_some_and(|row| row.get(fields::session::IS_LOCAL_SUPERUSER.index).as_bool() == Some(true));
        if superuser {
            Grant::Superuser
        } else {
            tracing::warn!(session = sref, "session without a recorded grant: no permissions");
            Grant::Nothing
        }
    }

    fn set_grant(&self, sref: &str, g: Grant) {
        if let Ok(mut m) = self.grants.write() {
            m.insert(sref.to_string(), g);
        }
    }

    /// On the master: what a member needs to honour `sref` (it must be live).
    pub fn vouch(&self, s: &Server, sref: &str) -> Result<Vouched> {
        self.validate(s, sref)?;
        let user = s.db.read().read(sref, model::types::fields::session::AUTH_USER_NAME).unwrap_or_default();
        let role = match self.grant(s, sref) {
            Grant::Superuser => None,
            Grant::Role(r) => Some(r.name().to_string()),
            Grant::Nothing => Some(String::new()),
        };
        Ok(Vouched { user, role })
    }

    /// On a member: honour the master's session `sref` as it was vouched for.
    pub fn mirror(&self, s: &Server, sref: &str, v: &Vouched) -> Result<()> {
        use model::types::fields::session as F;
        let grant = match &v.role {
            None => Grant::Superuser,
            Some(name) => Role::ALL.iter().find(|r| r.name() == name).map_or(Grant::Nothing, |r| Grant::Role(*r)),
        };
        let mut row = store::blank_row(F::UUID.class);
        let now = DateTime::now();
        row.write(F::UUID, model::new_uuid());
        row.write(F::THIS_HOST, model::Ref::new(s.host.clone()));
        row.write(F::LAST_ACTIVE, now);
        row.write(F::VALIDATION_TIME, now);
        row.write(F::POOL, true);
        row.write(F::IS_LOCAL_SUPERUSER, grant == Grant::Superuser);
        row.write(F::AUTH_USER_NAME, v.user.clone());
        row.write(F::ORIGINATOR, "the pool master".to_string());
        s.db.write(|tx| {
            tx.insert(sref, row);
            Ok::<_, ApiError>(())
        })?;
        self.set_grant(sref, grant);
        if let Ok(mut m) = self.mirrors.lock() {
            m.insert(sref.to_string(), Instant::now());
        }
        Ok(())
    }

    /// Whether `sref` is honoured here now: a live session of this host, or
    /// a master's session vouched for within MIRROR_TTL.
    pub fn honoured(&self, s: &Server, sref: &str) -> bool {
        let vouched = self.mirrors.lock().ok().and_then(|m| m.get(sref).copied());
        if vouched.is_some_and(|t| t.elapsed() > MIRROR_TTL) {
            return false;
        }
        self.validate(s, sref).is_ok()
    }

    /// Drop the grants of destroyed sessions.
    pub fn forget(&self, refs: &[String]) {
        if let Ok(mut m) = self.grants.write() {
            for r in refs {
                m.remove(r);
            }
        }
        if let Ok(mut m) = self.mirrors.lock() {
            for r in refs {
                m.remove(r);
            }
        }
    }

    /// Check a password under the hashing bounds (logins and
    /// `session.change_password`). `peer` is the client's address (None for
    /// the Unix socket and internal callers, which are not counted).
    pub async fn check_password(
        &self,
        s: &Server,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<bool, Refusal> {
        self.guard.check(s, user, password, peer).await
    }

    /// SESSION_INVALID unless `sref` is a live session; refreshes `last_active`.
    pub fn validate(&self, s: &Server, sref: &str) -> Result<()> {
        let c = &model::schema::CLASS_SESSION;
        let stale = {
            let st = s.db.read();
            let row = st.get(c, sref).ok_or_else(|| ApiError::SessionInvalid { handle: sref.to_string() })?;
            let la = match row.get(fields::session::LAST_ACTIVE.index) {
                Value::DateTime(d) => d.secs,
                _ => 0,
            };
            DateTime::now().secs - la > LAST_ACTIVE_REFRESH
        };
        if stale {
            let now = Value::DateTime(DateTime::now());
            let _ = s.db.write(|tx| {
                tx.set(c, sref, fields::session::LAST_ACTIVE.index, now);
                Ok::<_, ApiError>(())
            });
        }
        Ok(())
    }

    /// Check credentials and create a session. Local root (and, on the
    /// Unix socket, anyone) is the superuser; with external authentication
    /// enabled, any other name is a directory user whose roles come from
    /// its subjects (xapi's `login_with_password`).
    pub async fn login(&self, s: &Server, spec: LoginSpec<'_>) -> Result<String> {
        let directory = !spec.local && spec.user != "root" && s.extauth.config().is_some();
        let mut identity: Option<crate::extauth::Identity> = None;
        if directory {
            let peer = crate::session::peer();
            let outcome = if self.guard.throttled(peer) {
                tracing::info!(user = spec.user, ?peer, "directory login refused: too many failures");
                Err(ApiError::SessionAuthenticationFailed {
                    uname: spec.user.to_string(),
                    message: "Authentication failure".into(),
                })
            } else {
                crate::extauth::login(s, spec.user, spec.password).await
            };
            match outcome {
                Ok(id) => {
                    self.guard.record(peer, true);
                    identity = Some(id);
                }
                Err(e) => {
                    // Only wrong credentials count against the address.
                    if matches!(e, ApiError::SessionAuthenticationFailed { .. }) {
                        self.guard.record(peer, false);
                    }
                    tracing::info!(
                        user = spec.user,
                        ?peer,
                        originator = spec.originator,
                        "failed directory login: {e}"
                    );
                    tokio::time::sleep(s.cfg.login_failure_delay).await;
                    return Err(e);
                }
            }
        } else if !spec.local {
            let peer = crate::session::peer();
            let ok = match self.check_password(s, spec.user, spec.password, peer).await {
                Ok(ok) => ok,
                // Refused without hashing: the same answer and delay as a
                // wrong password, so a client learns nothing. A throttled
                // address is refused even with the right password until
                // its window ends (xapi has no such lockout; it only
                // counts failures for its alert).
                Err(why) => {
                    tracing::info!(user = spec.user, ?peer, ?why, "login refused without checking the password");
                    false
                }
            };
            if !ok {
                tracing::info!(user = spec.user, ?peer, originator = spec.originator, "failed login");
                tokio::time::sleep(s.cfg.login_failure_delay).await;
                return Err(ApiError::SessionAuthenticationFailed {
                    uname: spec.user.to_string(),
                    message: "Authentication failure".into(),
                });
            }
        }
        let c = &model::schema::CLASS_SESSION;
        let r = model::new_ref();
        let mut row = store::blank_row(c);
        let now = Value::DateTime(DateTime::now());
        row.fields[fields::session::UUID.index] = Value::from(model::new_uuid());
        row.fields[fields::session::THIS_HOST.index] = Value::from(s.host.as_str());
        row.fields[fields::session::LAST_ACTIVE.index] = now.clone();
        row.fields[fields::session::VALIDATION_TIME.index] = now;
        row.fields[fields::session::POOL.index] = Value::from(false);
        let grant = match &identity {
            None => {
                row.fields[fields::session::IS_LOCAL_SUPERUSER.index] = Value::from(true);
                Grant::Superuser
            }
            Some(id) => {
                row.fields[fields::session::IS_LOCAL_SUPERUSER.index] = Value::from(false);
                row.fields[fields::session::SUBJECT.index] = Value::from(id.subject.as_str());
                row.fields[fields::session::AUTH_USER_SID.index] = Value::from(id.sid.as_str());
                let perms = crate::roles::permission_names(id.role);
                row.fields[fields::session::RBAC_PERMISSIONS.index] =
                    Value::Array(perms.into_iter().map(Value::String).collect());
                Grant::Role(id.role)
            }
        };
        row.fields[fields::session::AUTH_USER_NAME.index] = Value::from(spec.user);
        row.fields[fields::session::ORIGINATOR.index] = Value::from(spec.originator);
        let _ = spec.pool;
        // The group's limit holds from the moment of login (xapi enforces
        // it only in its 30 s collector, so a burst of logins stays valid
        // until then): the least recently active sessions of the group
        // (oldest created among equals) make room, as that collector would
        // pick them. Sessions with pending tasks are never taken.
        let key = group_key(false, spec.user, spec.originator);
        let limit = group_limit(key.0);
        let busy = s.tasks.sessions_with_pending_tasks(s);
        let la = fields::session::LAST_ACTIVE.index;
        let (evicted, _) = s.db.write(|tx| {
            let mut members: Vec<Member> = tx
                .state()
                .table(c)
                .rows
                .iter()
                .filter(|(r, _)| !busy.contains(*r))
                .filter(|(_, e)| row_group(&e.row) == key)
                .map(|(r, e)| (secs(e.row.get(la)), e.created, r.clone()))
                .collect();
            let mut evicted = Vec::new();
            if members.len() >= limit {
                members.sort_unstable();
                let excess = members.len() + 1 - limit;
                for (_, _, old) in members.into_iter().take(excess) {
                    tx.delete(c, &old);
                    evicted.push(old);
                }
            }
            tx.insert(&r, row);
            Ok::<_, ApiError>(evicted)
        })?;
        self.set_grant(&r, grant);
        self.forget(&evicted);
        if !evicted.is_empty() {
            tracing::info!(originator = spec.originator, user = spec.user, evicted = evicted.len(), "session limit");
        }
        for old in &evicted {
            s.events.unregister_session(old);
        }
        Ok(r)
    }

    pub fn logout(&self, s: &Server, sref: &str) -> Result<()> {
        let c = &model::schema::CLASS_SESSION;
        s.db.write(|tx| {
            tx.delete(c, sref);
            Ok::<_, ApiError>(())
        })?;
        self.forget(&[sref.to_string()]);
        s.events.unregister_session(sref);
        Ok(())
    }

    /// End every session whose row matches; returns how many ended.
    pub fn logout_where(&self, s: &Server, pred: impl Fn(&str, &model::Row) -> bool) -> usize {
        let c = &model::schema::CLASS_SESSION;
        let doomed: Vec<String> = {
            let st = s.db.read();
            st.table(c).rows.iter().filter(|(r, e)| pred(r.as_str(), &e.row)).map(|(r, _)| r.clone()).collect()
        };
        if doomed.is_empty() {
            return 0;
        }
        let res = s.db.write(|tx| {
            for r in &doomed {
                tx.delete(c, r);
            }
            Ok::<_, ApiError>(())
        });
        if let Err(e) = res {
            tracing::warn!("could not end sessions: {e}");
            return 0;
        }
        self.forget(&doomed);
        for r in &doomed {
            s.events.unregister_session(r);
        }
        doomed.len()
    }

    /// One garbage-collection pass; returns how many sessions were destroyed.
    pub fn gc(&self, s: &Server) -> usize {
        let c = &model::schema::CLASS_SESSION;
        let busy = s.tasks.sessions_with_pending_tasks(s);
        let now = DateTime::now().secs;
        let la = fields::session::LAST_ACTIVE.index;
        let mut doomed: Vec<String> = Vec::new();
        let mut groups: HashMap<(u8, String), Vec<Member>> = HashMap::new();
        {
            let st = s.db.read();
            for (r, e) in st.table(c).rows.iter() {
                if busy.contains(r) {
                    continue;
                }
                let last = secs(e.row.get(la));
                if now - last > IDLE_EXPIRY {
                    doomed.push(r.clone());
                    continue;
                }
                groups.entry(row_group(&e.row)).or_default().push((last, e.created, r.clone()));
            }
        }
        for ((kind, _), mut members) in groups {
            let limit = group_limit(kind);
            if members.len() > limit {
                members.sort_unstable();
                let excess = members.len() - limit;
                doomed.extend(members.into_iter().take(excess).map(|(_, _, r)| r));
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
        self.forget(&doomed);
        for r in &doomed {
            s.events.unregister_session(r);
        }
        doomed.len()
    }
}

/// A session as eviction sees it: last active, created (generation), ref.
type Member = (i64, u64, String);

fn secs(v: &Value) -> i64 {
    match v {
        Value::DateTime(d) => d.secs,
        _ => 0,
    }
}

/// xapi's session groups (`db_gc_util.ml`): pool sessions (0); root or
/// nameless sessions with an originator, by originator (1); other users, by
/// name (2); root or nameless sessions without an originator (3). Only the
/// `originator` login parameter names a group: xapi does not fall back to
/// the User-Agent here (it only logs it with failed logins).
fn group_key(pool: bool, user: &str, originator: &str) -> (u8, String) {
    if pool {
        (0, String::new())
    } else if (user.is_empty() || user == "root") && !originator.is_empty() {
        (1, originator.to_string())
    } else if !user.is_empty() && user != "root" {
        (2, user.to_string())
    } else {
        (3, String::new())
    }
}

fn row_group(row: &model::Row) -> (u8, String) {
    group_key(
        row.get(fields::session::POOL.index).as_bool() == Some(true),
        row.read(fields::session::AUTH_USER_NAME).as_str(),
        row.read(fields::session::ORIGINATOR).as_str(),
    )
}

fn group_limit(kind: u8) -> usize {
    match kind {
        1 => PER_ORIGINATOR,
        2 => PER_USER,
        _ => ANONYMOUS,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_source: u32, window_ms: u64) -> LoginGuard {
        let cfg = crate::Config {
            login_failures_per_source: per_source,
            login_failure_window: Duration::from_millis(window_ms),
            ..Default::default()
        };
        LoginGuard::new(&cfg)
    }

    #[test]
    fn failures_throttle_one_address_for_one_window() {
        let g = guard(3, 300);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..2 {
            g.record(Some(a), false);
        }
        assert!(!g.throttled(Some(a)));
        g.record(Some(a), false);
        assert!(g.throttled(Some(a)));
        assert!(!g.throttled(Some(b)), "other addresses are not affected");
        assert!(!g.throttled(None), "the Unix socket and internal callers are never throttled");
        std::thread::sleep(Duration::from_millis(320));
        assert!(!g.throttled(Some(a)), "the window ended");
        // A success clears the count.
        g.record(Some(b), false);
        g.record(Some(b), false);
        g.record(Some(b), true);
        g.record(Some(b), false);
        assert!(!g.throttled(Some(b)));
    }

    #[test]
    fn zero_disables_the_per_address_limit() {
        let g = guard(0, 60_000);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..100 {
            g.record(Some(a), false);
        }
        assert!(!g.throttled(Some(a)));
    }

    #[test]
    fn group_keys_as_xapi() {
        assert_eq!(group_key(false, "root", "xo"), (1, "xo".into()));
        assert_eq!(group_key(false, "", "xo"), (1, "xo".into()));
        assert_eq!(group_key(false, "alice", "xo"), (2, "alice".into()));
        assert_eq!(group_key(false, "root", ""), (3, String::new()));
        assert_eq!(group_key(true, "root", "xo"), (0, String::new()));
        assert_eq!(group_limit(1), PER_ORIGINATOR);
        assert_eq!(group_limit(3), ANONYMOUS);
    }
}

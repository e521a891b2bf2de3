//! Events: `event.from` (generation tokens, coalesced add/mod/del, long-poll),
//! `event.inject`, `event.get_current_id`, and the legacy
//! `register`/`unregister`/`next`.
//!
//! There is no per-subscriber queue: every call asks the store what changed
//! since its token, as xapi does, and sleeps on the store's generation watch.

use crate::{ApiError, Ctx, Result, Server};
use model::schema::{ClassDef, CLASSES};
use model::schema::{CLASS_MESSAGE, CLASS_SESSION};
use model::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use store::{Change, State};

/// What a subscription string selects.
#[derive(Clone, Debug, PartialEq)]
pub enum Sub {
    All,
    Class(&'static ClassDef),
    Object(&'static ClassDef, String),
}

/// `"*"`, `"vm"` (any case) or `"vm/OpaqueRef:…"`. Unknown classes select nothing.
pub fn parse_subs(classes: &[String]) -> Vec<Sub> {
    let mut out = Vec::new();
    for s in classes {
        if s == "*" {
            out.push(Sub::All);
            continue;
        }
        let (cls, obj) = match s.split_once('/') {
            Some((c, r)) => (c, Some(r.to_string())),
            None => (s.as_str(), None),
        };
        if let Some(c) = model::schema::class_ci(cls) {
            out.push(match obj {
                Some(r) => Sub::Object(c, r),
                None => Sub::Class(c),
            });
        }
    }
    out
}

fn wants(subs: &[Sub], c: &ClassDef, r: &str) -> bool {
    subs.iter().any(|s| match s {
        Sub::All => true,
        Sub::Class(x) => x.index == c.index,
        Sub::Object(x, o) => x.index == c.index && o == r,
    })
}

/// A token is `<database generation>,<message generation>`, zero-padded so
/// tokens compare as strings. Messages count separately, as in xapi.
pub fn token(gen: u64, msg: u64) -> String {
    format!("{gen:020},{msg:020}")
}

fn current_token(st: &State) -> String {
    token(st.gen, st.last_change(&CLASS_MESSAGE))
}

pub fn parse_token(t: &str) -> Result<(u64, u64)> {
    if t.is_empty() {
        return Ok((0, 0));
    }
    let bad = || ApiError::EventFromTokenParseFailure { token: t.to_string() };
    let (a, b) = t.split_once(',').ok_or_else(bad)?;
    let m = b.trim().parse::<i64>().map_err(|_| bad())?;
    let g = a.trim().parse::<i64>().map_err(|_| bad())?;
    Ok((g.max(0) as u64, m.max(0) as u64))
}

/// One event record as xapi puts it on the wire.
fn event_record(id: String, timestamp: &str, c: &ClassDef, ch: Change, r: &str, snap: Option<Value>) -> Value {
    let mut m = vec![
        ("id".to_string(), Value::String(id)),
        ("timestamp".to_string(), Value::String(timestamp.to_string())),
        ("class".to_string(), Value::String(c.lower())),
        ("operation".to_string(), Value::String(ch.as_str().to_string())),
        ("ref".to_string(), Value::String(r.to_string())),
    ];
    if let Some(s) = snap {
        m.push(("snapshot".to_string(), s));
    }
    Value::Struct(m)
}

/// Events for `subs` since generations `since` (database) and `since_msg`
/// (messages), in generation order.
fn collect(st: &State, subs: &[Sub], since: u64, since_msg: u64, timestamp: &str) -> Vec<(u64, Value)> {
    let mut out = Vec::new();
    for c in CLASSES {
        // Messages are not `db` objects in xapi but still produce events;
        // static classes (roles) never do.
        if !c.events || c.is_static {
            continue;
        }
        if !subs.iter().any(|s| match s {
            Sub::All => true,
            Sub::Class(x) | Sub::Object(x, _) => x.index == c.index,
        }) {
            continue;
        }
        let is_msg = c.id == model::schema::ClassId::Message;
        for (ch, r, g, row) in st.changes_since(c, if is_msg { since_msg } else { since }) {
            if !wants(subs, c, &r) {
                continue;
            }
            // Message events carry id "0", as xapi's message store does.
            let id = if is_msg { "0".to_string() } else { g.to_string() };
            out.push((g, event_record(id, timestamp, c, ch, &r, row.map(Value::Row))));
        }
    }
    out.sort_by_key(|(g, _)| *g);
    out
}

fn valid_ref_counts(st: &State) -> Value {
    Value::Struct(
        CLASSES
            .iter()
            .filter(|c| c.db && !c.is_static)
            .map(|c| (c.lower(), Value::I32(st.table(c).len().min(i32::MAX as usize) as i32)))
            .collect(),
    )
}

fn deadline_after(timeout: f64) -> Instant {
    let d = if timeout.is_finite() && timeout >= 0.0 {
        Duration::from_secs_f64(timeout.min(86_400.0))
    } else {
        Duration::from_secs(86_400)
    };
    Instant::now() + d
}

fn session_gone(st: &State, session: &str) -> bool {
    st.get(&CLASS_SESSION, session).is_none()
}

/// `event.from(classes, token, timeout)`.
pub async fn from(ctx: &Ctx, classes: Vec<String>, token_s: String, timeout: f64) -> Result<Value> {
    let s = &ctx.server;
    let (since, since_msg) = parse_token(&token_s)?;
    let subs = parse_subs(&classes);
    let deadline = deadline_after(timeout);
    let mut rx = s.db.subscribe();
    loop {
        rx.borrow_and_update();
        {
            let st = s.db.read();
            if session_gone(&st, &ctx.session) {
                return Err(ApiError::SessionInvalid { handle: ctx.session.clone() });
            }
            // Waiters woken by the same change with the same token and
            // subscription get the same batch: build and encode it once.
            let key = format!("{}|{since}|{since_msg}|{}", canonical(&classes), st.gen);
            if let Some(hit) = s.events.cached(&key) {
                return Ok(Value::Cached(hit));
            }
            let evs = collect(&st, &subs, since, since_msg, "0.0");
            let found = !evs.is_empty();
            if found || Instant::now() >= deadline {
                let batch = Value::Struct(vec![
                    ("events".into(), Value::Array(evs.into_iter().map(|(_, e)| e).collect())),
                    ("valid_ref_counts".into(), valid_ref_counts(&st)),
                    ("token".into(), Value::String(current_token(&st))),
                ]);
                // Only non-empty batches are shared: an empty one is a timeout,
                // which is each waiter's own business.
                if !found {
                    return Ok(batch);
                }
                let shared = model::value::Cached::new(batch);
                s.events.remember(key, shared.clone());
                return Ok(Value::Cached(shared));
            }
        }
        tokio::select! {
            r = rx.changed() => { if r.is_err() { return Err(crate::internal("store closed")); } }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// `event.inject(class, ref)`: mark an object changed; returns a token just before it.
pub fn inject(ctx: &Ctx, cls: &str, r: &str) -> Result<String> {
    // The class must name the ref's table exactly (xapi compares table names).
    let invalid = || ApiError::HandleInvalid { class: cls.to_string(), handle: r.to_string() };
    let c = model::schema::class(cls).filter(|c| c.db && !c.is_static).ok_or_else(invalid)?;
    ctx.write(|tx| if tx.touch(c, r) { Ok(()) } else { Err(invalid()) })?;
    let g = ctx.server.db.generation();
    Ok(token(g.saturating_sub(1), 0))
}

fn canonical(classes: &[String]) -> String {
    let mut c: Vec<String> = classes.iter().map(|s| s.to_ascii_lowercase()).collect();
    c.sort();
    c.join(",")
}

/// Recent event.from batches kept for fan-out.
const BATCH_CACHE: usize = 16;

/// Legacy `event.register`/`next` state per session, and recent batches.
#[derive(Default)]
pub struct Registrations {
    by_session: Mutex<HashMap<String, Registration>>,
    batches: Mutex<std::collections::VecDeque<(String, std::sync::Arc<model::value::Cached>)>>,
}

#[derive(Clone)]
struct Registration {
    classes: Vec<String>,
    cursor: u64,
}

impl Registrations {
    fn cached(&self, key: &str) -> Option<std::sync::Arc<model::value::Cached>> {
        self.batches.lock().ok().and_then(|b| b.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    fn remember(&self, key: String, v: std::sync::Arc<model::value::Cached>) {
        if let Ok(mut b) = self.batches.lock() {
            if b.len() >= BATCH_CACHE {
                b.pop_front();
            }
            b.push_back((key, v));
        }
    }

    pub fn register(&self, s: &Server, session: &str, classes: Vec<String>) {
        let gen = s.db.generation();
        if let Ok(mut m) = self.by_session.lock() {
            let e = m.entry(session.to_string()).or_insert(Registration { classes: vec![], cursor: gen });
            for c in classes {
                if !e.classes.iter().any(|x| x.eq_ignore_ascii_case(&c)) {
                    e.classes.push(c);
                }
            }
        }
    }

    pub fn unregister(&self, session: &str, classes: Vec<String>) {
        if let Ok(mut m) = self.by_session.lock() {
            if let Some(e) = m.get_mut(session) {
                e.classes.retain(|x| !classes.iter().any(|c| c.eq_ignore_ascii_case(x)));
            }
        }
    }

    pub fn unregister_session(&self, session: &str) {
        if let Ok(mut m) = self.by_session.lock() {
            m.remove(session);
        }
    }

    fn get(&self, session: &str) -> Option<Registration> {
        self.by_session.lock().ok().and_then(|m| m.get(session).cloned())
    }

    fn advance(&self, session: &str, to: u64) {
        if let Ok(mut m) = self.by_session.lock() {
            if let Some(e) = m.get_mut(session) {
                e.cursor = to;
            }
        }
    }
}

/// The parameter of SESSION_NOT_REGISTERED: a hash of the session, not the ref.
fn trackid(session: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    session.hash(&mut h);
    format!("trackid={:016x}", h.finish())
}

/// `event.next()`: blocks until something the session registered for changes.
pub async fn next(ctx: &Ctx) -> Result<Value> {
    let s = &ctx.server;
    let mut rx = s.db.subscribe();
    loop {
        rx.borrow_and_update();
        {
            let st = s.db.read();
            if session_gone(&st, &ctx.session) {
                return Err(ApiError::SessionInvalid { handle: ctx.session.clone() });
            }
            let reg = s
                .events
                .get(&ctx.session)
                .ok_or_else(|| ApiError::SessionNotRegistered { handle: trackid(&ctx.session) })?;
            let subs = parse_subs(&reg.classes);
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let evs = collect(&st, &subs, reg.cursor, reg.cursor, &format!("{now}."));
            if !evs.is_empty() {
                s.events.advance(&ctx.session, st.gen);
                return Ok(Value::Array(evs.into_iter().map(|(_, e)| e).collect()));
            }
        }
        if rx.changed().await.is_err() {
            return Err(crate::internal("store closed"));
        }
    }
}

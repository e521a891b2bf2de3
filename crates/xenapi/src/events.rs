//! A stream of events from `event.from`: it keeps the token, long-polls,
//! re-syncs with a full dump when told to, and reconnects after failures.

use crate::{Error, Result, Session};
use futures_core::Stream;
use model::Value;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOp {
    Add,
    Mod,
    Del,
}

/// One change to one object.
#[derive(Clone, Debug)]
pub struct Event {
    /// Lower-case class name, as the server sends it (`vm`, `task`…).
    pub class: String,
    pub op: EventOp,
    pub r#ref: String,
    /// The object's record; absent for deletions.
    pub snapshot: Option<Value>,
}

impl Event {
    fn from_value(v: &Value) -> Option<Event> {
        let op = match v.member("operation")?.as_str()? {
            "add" => EventOp::Add,
            "mod" => EventOp::Mod,
            "del" => EventOp::Del,
            _ => return None,
        };
        Some(Event {
            class: v.member("class")?.as_str()?.to_string(),
            op,
            r#ref: v.member("ref")?.as_str()?.to_string(),
            snapshot: v.member("snapshot").cloned(),
        })
    }
}

/// Options of an event stream.
pub struct Events {
    session: Session,
    classes: Vec<String>,
    token: String,
    timeout: f64,
    buf: VecDeque<Event>,
}

impl Session {
    /// Every change to objects of `classes` (`"*"` for all, `"vm/OpaqueRef:…"`
    /// for one object). The first items are every current object as `Add`
    /// (use [`Events::from_now`] to skip them).
    pub fn events(&self, classes: &[&str]) -> Events {
        Events {
            session: self.clone(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
            token: String::new(),
            timeout: 30.0,
            buf: VecDeque::new(),
        }
    }
}

impl Events {
    /// Start from the current state instead of a full dump.
    pub async fn from_now(mut self) -> Result<Self> {
        let b = self.poll_once(0.0).await?;
        self.token = b.1;
        Ok(self)
    }

    /// How long each long-poll waits, in seconds.
    pub fn timeout(mut self, secs: f64) -> Self {
        self.timeout = secs;
        self
    }

    async fn poll_once(&self, timeout: f64) -> Result<(Vec<Event>, String)> {
        let classes = Value::Array(self.classes.iter().map(|c| Value::String(c.clone())).collect());
        let b = self
            .session
            .call("event.from", true, vec![classes, Value::String(self.token.clone()), Value::Float(timeout)])
            .await?;
        let token = b.member("token").and_then(Value::as_str).unwrap_or("").to_string();
        let evs = b
            .member("events")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Event::from_value).collect())
            .unwrap_or_default();
        Ok((evs, token))
    }

    /// The next event, waiting as long as it takes.
    pub async fn next(&mut self) -> Result<Event> {
        let mut failures = 0u32;
        loop {
            if let Some(e) = self.buf.pop_front() {
                return Ok(e);
            }
            match self.poll_once(self.timeout).await {
                Ok((evs, token)) => {
                    failures = 0;
                    self.token = token;
                    self.buf.extend(evs);
                }
                // Lost history: start again from a full dump.
                Err(Error::Api(crate::ApiError::EventsLost))
                | Err(Error::Api(crate::ApiError::EventFromTokenParseFailure { .. })) => {
                    self.token.clear();
                }
                Err(e @ Error::Api(_)) => return Err(e),
                // Transport trouble: back off and reconnect (the session
                // re-logs in by itself if it expired).
                Err(e) => {
                    failures += 1;
                    if failures > 10 {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                }
            }
        }
    }

    /// As a `futures_core::Stream`.
    pub fn into_stream(self) -> impl Stream<Item = Result<Event>> {
        futures_util::stream::unfold(self, |mut s| async move {
            let r = s.next().await;
            Some((r, s))
        })
    }
}

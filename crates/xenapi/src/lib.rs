//! A typed client for the XenAPI: XenServer, XCP-ng, and xapi-rs.
//!
//! Every class and message of the API is generated from the same datamodel
//! the xapi-rs server uses: records, enums (with an `Unknown` fallback so a
//! newer server cannot break an older client), typed refs (`Ref<Vm>`), one
//! method per message and an `_async` twin returning a [`Task`].
//!
//! ```no_run
//! # async fn demo() -> xenapi::Result<()> {
//! let s = xenapi::Session::builder("http://127.0.0.1:8080").login("root", "secret").await?;
//! for (vm, rec) in s.vm().get_all_records().await? {
//!     if !rec.is_a_template {
//!         println!("{vm}: {} is {}", rec.name_label, rec.power_state);
//!     }
//! }
//! s.logout().await?;
//! # Ok(()) }
//! ```
//!
//! JSON-RPC is the default protocol; XML-RPC is available
//! ([`Protocol::XmlRpc`]). HTTPS needs a CA certificate or, explicitly,
//! [`Tls::DangerAcceptAny`]; `unix:/var/lib/xcp/xapi` reaches the local socket.
//! An expired session is re-established and the call retried (at most 3
//! times), as the Python SDK does; a login sent to a pool member follows its
//! HOST_IS_SLAVE answer to the coordinator.

#![allow(hidden_glob_reexports)]

pub mod events;
pub mod http;
pub mod task;
pub mod transport;

#[cfg(feature = "blocking")]
pub mod blocking;

pub use events::{Event, EventOp, Events};
// Records, enums, class markers and ApiError. The markers `Session` and
// `Task` are shadowed here by the client types of the same name; reach them
// as `xenapi::types::Session` / `types::Task` (e.g. `Ref<types::Task>`).
pub use model::types::*;
pub mod types {
    pub use model::types::*;
}
pub use model::{DateTime, Ref, Value, XenType};
pub use task::Task;
pub use transport::{Endpoint, Tls};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use transport::Transport;
use wire::Outcome;

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a XenAPI error.
    #[error("{0}")]
    Api(ApiError),
    #[error("I/O: {0}")]
    Io(#[source] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("bad URL {0}")]
    Url(String),
    /// The reply could not be understood.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A value did not have the expected type.
    #[error("decoding {what}: {err}")]
    Decode { what: String, err: model::TypeError },
}

impl Error {
    /// The XenAPI error code, if this is an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(e.code()),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    JsonRpc,
    XmlRpc,
}

/// How to reach and log in to a server.
#[derive(Clone)]
pub struct Builder {
    url: String,
    protocol: Protocol,
    tls: Option<Tls>,
    originator: String,
    version: String,
}

#[derive(Clone)]
struct Credentials {
    user: String,
    password: String,
}

struct Inner {
    transport: RwLock<Arc<Transport>>,
    protocol: Protocol,
    tls: Option<Tls>,
    originator: String,
    version: String,
    session: RwLock<String>,
    creds: RwLock<Option<Credentials>>,
    next_id: AtomicU64,
}

/// A logged-in session. Cheap to clone; clones share the session.
#[derive(Clone)]
pub struct Session(Arc<Inner>);

/// Calls a session may retry after re-login.
const RELOGIN_RETRIES: usize = 3;

impl Builder {
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }
    pub fn tls(mut self, t: Tls) -> Self {
        self.tls = Some(t);
        self
    }
    /// Tag the session (xapi keeps separate session limits per originator).
    pub fn originator(mut self, o: impl Into<String>) -> Self {
        self.originator = o.into();
        self
    }

    fn session(&self) -> Result<Session> {
        let t = Transport::new(transport::Endpoint::parse(&self.url)?, self.tls.as_ref())?;
        Ok(Session(Arc::new(Inner {
            transport: RwLock::new(Arc::new(t)),
            protocol: self.protocol,
            tls: self.tls.clone(),
            originator: self.originator.clone(),
            version: self.version.clone(),
            session: RwLock::new(String::new()),
            creds: RwLock::new(None),
            next_id: AtomicU64::new(1),
        })))
    }

    /// Log in with a user name and password.
    pub async fn login(self, user: &str, password: &str) -> Result<Session> {
        let s = self.session()?;
        if let Ok(mut c) = s.0.creds.write() {
            *c = Some(Credentials { user: user.into(), password: password.into() });
        }
        s.relogin().await?;
        Ok(s)
    }

    /// Use an existing session ref (e.g. one handed over by another tool).
    pub fn with_session_ref(self, r: &str) -> Result<Session> {
        let s = self.session()?;
        if let Ok(mut g) = s.0.session.write() {
            *g = r.to_string();
        }
        Ok(s)
    }
}

impl Session {
    /// Start describing a connection: `http(s)://host[:port]` or `unix:/path`.
    pub fn builder(url: &str) -> Builder {
        Builder {
            url: url.to_string(),
            protocol: Protocol::JsonRpc,
            tls: None,
            originator: "xenapi-rs".into(),
            version: "1.0".into(),
        }
    }

    /// The session ref.
    pub fn session_ref(&self) -> Ref<model::types::Session> {
        Ref::new(self.0.session.read().map(|s| s.clone()).unwrap_or_default())
    }

    pub fn endpoint(&self) -> Endpoint {
        self.transport().endpoint.clone()
    }

    pub(crate) fn transport(&self) -> Arc<Transport> {
        match self.0.transport.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// One raw call: `[session?] + args` → value or XenAPI error.
    pub async fn call_raw(&self, method: &str, params: Vec<Value>) -> Result<Value> {
        let t = self.transport();
        let (path, ct, body) = match self.0.protocol {
            Protocol::JsonRpc => {
                let mut b = Vec::with_capacity(256);
                wire::jsonrpc::write_request(&mut b, self.0.next_id.fetch_add(1, Ordering::Relaxed), method, &params);
                ("/jsonrpc", "application/json", b)
            }
            Protocol::XmlRpc => {
                let mut b = Vec::with_capacity(256);
                wire::xmlrpc::write_call(&mut b, method, &params);
                ("/", "text/xml", b)
            }
        };
        let (status, reply) = t.post(path, ct, body).await?;
        if !status.is_success() {
            return Err(Error::Status(status.as_u16()));
        }
        let outcome = match self.0.protocol {
            Protocol::JsonRpc => wire::jsonrpc::parse_response(&reply),
            Protocol::XmlRpc => wire::xmlrpc::parse_response(&reply),
        }
        .map_err(|e| Error::Protocol(e.0))?;
        match outcome {
            Outcome::Success(v) => Ok(v),
            Outcome::Failure(desc) => Err(Error::Api(ApiError::from_wire(&desc))),
        }
    }

    /// (Re)establish the session from the stored credentials, following a
    /// HOST_IS_SLAVE answer to the coordinator once.
    async fn relogin(&self) -> Result<()> {
        let creds = self
            .0
            .creds
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| Error::Protocol("no credentials to log in again".into()))?;
        let args = || {
            vec![
                Value::from(creds.user.as_str()),
                Value::from(creds.password.as_str()),
                Value::from(self.0.version.as_str()),
                Value::from(self.0.originator.as_str()),
            ]
        };
        let r = match self.call_raw("session.login_with_password", args()).await {
            Err(Error::Api(ApiError::HostIsSlave { master_address })) => {
                let ep = self.transport().endpoint.with_host(&master_address);
                let t = Transport::new(ep, self.0.tls.as_ref())?;
                if let Ok(mut g) = self.0.transport.write() {
                    *g = Arc::new(t);
                }
                self.call_raw("session.login_with_password", args()).await?
            }
            other => other?,
        };
        let sref = r.as_str().ok_or_else(|| Error::Protocol("login did not return a session ref".into()))?.to_string();
        if let Ok(mut g) = self.0.session.write() {
            *g = sref;
        }
        Ok(())
    }

    /// Call a message: the session is prepended when the message takes one;
    /// SESSION_INVALID triggers a re-login and retry.
    pub async fn call(&self, method: &str, with_session: bool, args: Vec<Value>) -> Result<Value> {
        let mut tries = 0;
        loop {
            let mut params = Vec::with_capacity(args.len() + 1);
            if with_session {
                params.push(Value::String(self.session_ref().into_string()));
            }
            params.extend(args.iter().cloned());
            match self.call_raw(method, params).await {
                Err(Error::Api(ApiError::SessionInvalid { .. }))
                    if with_session
                        && tries < RELOGIN_RETRIES
                        && self.0.creds.read().map(|c| c.is_some()).unwrap_or(false) =>
                {
                    tries += 1;
                    self.relogin().await?;
                }
                other => return other,
            }
        }
    }

    /// Call and decode the result.
    pub async fn invoke<T: XenType>(&self, method: &str, with_session: bool, args: Vec<Value>) -> Result<T> {
        let v = self.call(method, with_session, args).await?;
        decode(method, &v)
    }

    /// Call an `Async.` form and return its task.
    pub async fn invoke_async<T: XenType>(&self, method: &str, args: Vec<Value>) -> Result<Task<T>> {
        let r: Ref<model::types::Task> = self.invoke(method, true, args).await?;
        Ok(Task::new(self.clone(), r))
    }

    /// End the session.
    pub async fn logout(&self) -> Result<()> {
        self.call("session.logout", true, vec![]).await.map(|_| ())?;
        if let Ok(mut c) = self.0.creds.write() {
            *c = None;
        }
        Ok(())
    }

    /// A guard that logs the session out when dropped (on the current Tokio
    /// runtime, in the background).
    pub fn logout_on_drop(&self) -> LogoutGuard {
        LogoutGuard(Some(self.clone()))
    }
}

/// Logs a session out when dropped.
pub struct LogoutGuard(Option<Session>);

impl Drop for LogoutGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = s.logout().await;
                });
            }
        }
    }
}

/// Decode a value, naming what failed.
pub fn decode<T: XenType>(what: &str, v: &Value) -> Result<T> {
    T::from_value(v).map_err(|err| Error::Decode { what: what.to_string(), err })
}

mod api {
    #![allow(clippy::all, unused_imports)]
    use crate::{Result, Session as SdkSession, Task as TaskHandle};
    use model::typed::{Ref, XenType};
    use model::types::*;
    use model::{DateTime, Value};
    use std::collections::BTreeMap;
    include!(concat!(env!("OUT_DIR"), "/api.rs"));
}
pub use api::*;

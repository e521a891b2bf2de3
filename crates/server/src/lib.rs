//! The XenAPI server.
//!
//! A call flows: listener (`http`) → protocol decode (`rpc`) → method lookup,
//! arity and type check against the schema, session check (`dispatch`) →
//! handler: generic for implicit messages (`implicit`), hand-written for
//! explicit ones (`ops`, through the traits generated from the datamodel) →
//! durable commit → encode.

pub mod audit;
pub mod certs;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod event;
pub mod extauth;
pub mod handlers;
pub mod http;
pub mod implicit;
pub mod importexport;
pub mod lifecycle;
pub mod nbd;
pub mod networkd;
pub mod ops;
pub mod passwd;
pub mod pooling;
pub mod rfb;
pub mod roles;
pub mod rows;
pub mod rpc;
pub mod rrd;
pub mod seed;
pub mod session;
pub mod storage;
pub mod task;
pub mod xenops;

pub use config::Config;
pub use model::types::ApiError;

use model::schema::ClassDef;
use model::{Row, Value};
use std::sync::{Arc, Mutex};
use store::{Commit, Db, Txn};

/// Generated API traits and dispatch glue.
pub mod api {
    #![allow(clippy::all, unused_imports)]
    use crate::rows::arg;
    use crate::{ApiError, Ctx, Server};
    use model::typed::{Ref, XenType};
    use model::types::*;
    use model::{DateTime, Value};
    use std::collections::BTreeMap;
    include!(concat!(env!("OUT_DIR"), "/api.rs"));
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

pub struct Inner {
    /// This host's store: its own database, or its replica of the pool's.
    pub db: Arc<Db>,
    /// This host's part in a pool's replicated database (none when alone).
    pub replica: std::sync::OnceLock<Arc<pooldb::Pool>>,
    /// How this host runs the calls other hosts of a pool send it (set at
    /// start by dispatch; given to the engine when this host founds a pool).
    pub pool_calls: std::sync::OnceLock<pooldb::CallFn>,
    pub cfg: Config,
    /// The hypervisor.
    pub backend: backend::Backend,
    /// The one host and pool this server is.
    pub host: String,
    pub pool: String,
    pub sessions: session::Sessions,
    /// The RBAC audit log.
    pub audit: audit::Audit,
    /// The external directory (LDAP), when external auth is enabled.
    pub extauth: extauth::ExtAuth,
    /// The HTTPS listener's certificate (swapped in place).
    pub certs: Arc<certs::CertStore>,
    /// `pool.set_https_only`: plain HTTP on TCP is refused.
    pub https_only: std::sync::atomic::AtomicBool,
    pub events: event::Registrations,
    pub tasks: task::Tasks,
    pub passwd: passwd::Passwd,
    /// Performance statistics (in memory only).
    pub rrds: rrd::Store,
    /// Disk I/O the server does on each SR's VDIs, for the SR statistics.
    pub sr_io: rrd::io::SrIo,
    pub started: std::time::Instant,
    /// Set when the server should exit (a staged database restore).
    pub exit: tokio::sync::watch::Sender<bool>,
    /// One host-network sync at a time (networkd).
    pub netsync: tokio::sync::Mutex<()>,
    /// The port the NBD server listens on (0: none), for VDI.get_nbd_info.
    pub nbd_port: std::sync::atomic::AtomicU16,
    /// The first HTTP listener's port (0: none), where other hosts of a pool
    /// reach this one.
    pub http_port: std::sync::atomic::AtomicU16,
}

/// A cheap handle on the running server.
#[derive(Clone)]
pub struct Server(pub Arc<Inner>);

impl std::ops::Deref for Server {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Everything a handler knows about the call it serves.
pub struct Ctx {
    pub server: Server,
    /// The caller's session ref ("" before login).
    pub session: String,
    /// The wire method name as called (`VM.start`, `Async.VM.start`).
    pub method: String,
    /// The task this call runs in, if any.
    pub task: Option<String>,
    /// Arrived on the local Unix socket (pre-authenticated root).
    pub local: bool,
    /// The highest commit made on behalf of this call; the reply waits for it
    /// to be durable.
    commit: Mutex<Option<Commit>>,
}

impl Ctx {
    pub fn new(server: Server, session: String, method: String, local: bool) -> Ctx {
        Ctx { server, session, method, task: None, local, commit: Mutex::new(None) }
    }

    pub fn note_commit(&self, c: Commit) {
        if c.seq.is_none() {
            return;
        }
        if let Ok(mut g) = self.commit.lock() {
            match *g {
                Some(old) if old.seq >= c.seq => {}
                _ => *g = Some(c),
            }
        }
    }

    /// Wait until everything this call wrote is on disk.
    pub async fn durable(&self) -> Result<()> {
        let c = self.commit.lock().ok().and_then(|mut g| g.take());
        if let Some(c) = c {
            self.server
                .db
                .durable(c)
                .await
                .map_err(|e| ApiError::InternalError { message: format!("durable write failed: {e}") })?;
        }
        Ok(())
    }

    /// The outcome of a call once what it wrote is durable. A failed call may
    /// still have committed partial progress (a task record): that is made
    /// durable too, and the failure answered either way.
    pub async fn settle(&self, out: Result<Value>) -> Result<Value> {
        match out {
            Ok(v) => self.durable().await.map(|_| v),
            Err(e) => {
                if let Err(d) = self.durable().await {
                    tracing::error!("{d} (after the call failed with {e})");
                }
                Err(e)
            }
        }
    }

    /// Run a transaction on behalf of this call.
    pub fn write<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        let (out, c) = self.server.db.write(f)?;
        self.note_commit(c);
        Ok(out)
    }
}

impl Server {
    /// Look an object up, or fail with HANDLE_INVALID [class, ref].
    pub fn row(&self, c: &'static ClassDef, r: &str) -> Result<Arc<Row>> {
        self.db.read().get(c, r).cloned().ok_or_else(|| handle_invalid(c, r))
    }
}

pub fn handle_invalid(c: &ClassDef, r: &str) -> ApiError {
    ApiError::HandleInvalid { class: c.name.to_string(), handle: r.to_string() }
}

/// A host address as the host part of a URL (IPv6 in brackets).
pub fn url_host(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

pub fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::InternalError { message: msg.into() }
}

/// A class by its exact datamodel name; panics only on a programming error
/// (a name that is not in the datamodel).
pub fn class(name: &str) -> &'static ClassDef {
    match model::schema::class(name) {
        Some(c) => c,
        None => panic!("class {name} is not in the datamodel"),
    }
}

pub fn field(c: &ClassDef, name: &str) -> usize {
    match c.field_index(name) {
        Some(i) => i,
        None => panic!("{}.{name} is not in the datamodel", c.name),
    }
}

/// Best-effort work whose failure is not the client's answer (rollback after
/// an error, cleanup, bookkeeping): the failure is logged, never dropped.
pub fn logged<T, E: std::fmt::Display>(what: &str, r: std::result::Result<T, E>) {
    if let Err(e) = r {
        tracing::warn!("{what} failed: {e}");
    }
}

static RESTART: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Ask the process to stop cleanly and start again (host.restart_agent),
/// after `pause`. The binary decides how: xapid re-executes itself.
pub fn request_restart(pause: std::time::Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(pause).await;
        tracing::warn!("restarting the agent (host.restart_agent)");
        RESTART.notify_one();
    });
}

/// Resolves when a restart has been asked for.
pub async fn restart_requested() {
    RESTART.notified().await
}

/// NBD reads a VDI as xapi-nbd does: with the caller's session it plugs a
/// read-only VBD into the control domain, so the caller needs VBD.create.
fn nbd_authorize(s: &Server, session: &str) -> Result<()> {
    let c = &model::schema::CLASS_VBD;
    let m =
        c.messages.iter().find(|m| m.name == "create").ok_or_else(|| internal("VBD.create is not in the datamodel"))?;
    dispatch::authorize(s, session, false, c, m, &[])
}

/// A started server: where it listens, and how to stop it.
pub struct Running {
    pub server: Server,
    pub bound: http::Bound,
    stop: tokio::sync::watch::Sender<bool>,
    /// The root password, when it was generated on first start.
    pub generated_password: Option<String>,
}

impl Running {
    /// Resolves when the server asks to be stopped (to apply a staged
    /// database restore at the next start).
    pub async fn exit_requested(&self) {
        let mut rx = self.server.exit.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }

    /// Stop accepting, let connections finish briefly, and flush the store.
    pub async fn shutdown(self) -> Result<(), String> {
        self.stop.send_replace(true);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let s = self.server.clone();
        tokio::task::spawn_blocking(move || rrd::sampler::save_all(&s)).await.map_err(|e| e.to_string())?;
        let s = self.server.clone();
        tokio::task::spawn_blocking(move || s.db.shutdown())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Open (or create) the state, seed it on first start, and start listening.
pub async fn start(cfg: Config) -> Result<Running, String> {
    let member = if cfg.ephemeral { None } else { pooling::read_member(&cfg.data_dir)? };
    let mut replica = None;
    let (db, passwd) = if cfg.ephemeral {
        (Arc::new(store::Db::memory()), passwd::Passwd::load(None)?)
    } else if let Some(m) = &member {
        let (db, pool) = pooling::open(&cfg, m).await?;
        replica = Some(pool);
        (db, passwd::Passwd::load(Some(&cfg.data_dir.join("passwd")))?)
    } else {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| format!("data dir {}: {e}", cfg.data_dir.display()))?;
        let probe = cfg.data_dir.join(".writable");
        std::fs::write(&probe, b"").map_err(|e| format!("data dir {} is not writable: {e}", cfg.data_dir.display()))?;
        let _ = std::fs::remove_file(&probe);
        let d = cfg.data_dir.clone();
        let recover = cfg.recover_store;
        let db = tokio::task::spawn_blocking(move || store::Db::open_with(&d.join("db"), recover))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                if e.is_damage() {
                    format!(
                        "refusing to start: {e}. Every file was left as it was. \
                         Restore a backup, or start with --recover-store: {}",
                        e.recovery_hint()
                    )
                } else {
                    format!("state in {}: {e}", cfg.data_dir.display())
                }
            })?;
        if db.restored() {
            handlers::dbdump::rehome_storage(&db, &cfg.data_dir).map_err(|e| e.to_string())?;
        }
        (Arc::new(db), passwd::Passwd::load(Some(&cfg.data_dir.join("passwd")))?)
    };
    let mut generated_password = None;
    if !passwd.has("root") {
        let pw = match &cfg.root_password {
            Some(p) => p.clone(),
            None => {
                let p = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
                generated_password = Some(p.clone());
                p
            }
        };
        passwd.set("root", &pw)?;
    }
    db.set_precommit(lifecycle::precommit);
    let member_of_pool = db.replicated() == Some(store::Role::Follower);
    // The pool's objects are the master's to clear (a member restarting
    // must not end operations running on other hosts).
    if !member_of_pool {
        match lifecycle::clear_operations(&db) {
            Ok(0) => {}
            Ok(n) => tracing::warn!("cleared the operations of {n} objects left by a previous run"),
            Err(e) => return Err(format!("cannot clear operations left by a previous run: {e}")),
        }
    }
    let gc_every = cfg.gc_interval;
    let qemu = backend::qemu::QemuConfig {
        run_dir: cfg.data_dir.join("qemu"),
        kernel_dirs: cfg.guest_kernel_dirs.clone(),
        nics: cfg.nics.clone(),
        user: Some(cfg.qemu_user.clone()),
        // The database, sessions' secrets, local SRs and every domain's directory.
        hide: vec![cfg.data_dir.clone()],
        ..Default::default()
    };
    let backend = backend::Backend::by_name(&cfg.backend, cfg.sim.clone(), qemu)
        .await
        .ok_or_else(|| format!("unknown backend {:?} (known: {})", cfg.backend, backend::Backend::NAMES.join(", ")))?
        .map_err(|e| format!("backend {}: {e}", cfg.backend))?;
    let facts = backend.host_facts();
    tracing::info!(
        cpus = facts.cpus.len(),
        memory_mib = facts.memory_total >> 20,
        "the {} backend's machine",
        backend.name()
    );
    let (pool, host) = match (&member, seed::find(&db)) {
        (Some(m), Some((pool, _master))) => {
            let host = seed::find_host(&db, &m.host_uuid)
                .ok_or_else(|| format!("this host ({}) is not in its pool's database", m.host_uuid))?;
            if member_of_pool {
                // Written through the master: a master out of reach leaves
                // the facts as they were, and says so.
                crate::logged(
                    "recording this host's machine in the pool",
                    seed::refresh_host_facts(&db, &pool, &host, &facts),
                );
                match lifecycle::clear_operations_of_host(&db, &host) {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!("cleared the operations of {n} objects left by a previous run"),
                    Err(e) => tracing::error!("cannot clear the operations left by a previous run: {e}"),
                }
            } else {
                seed::refresh(&db).map_err(|e| e.to_string())?;
                seed::refresh_host_facts(&db, &pool, &host, &facts).map_err(|e| e.to_string())?;
            }
            (pool, host)
        }
        (Some(m), None) => return Err(format!("the pool database has no pool yet (host {})", m.host_uuid)),
        (None, Some((pool, host))) => {
            seed::refresh(&db).map_err(|e| e.to_string())?;
            seed::refresh_host_facts(&db, &pool, &host, &facts).map_err(|e| e.to_string())?;
            (pool, host)
        }
        (None, None) => {
            seed::seed(&db, &cfg.hostname, &cfg.address, &cfg.data_dir, &facts).map_err(|e| e.to_string())?
        }
    };
    let sessions = session::Sessions::new(&cfg);
    let audit = audit::Audit::new(&cfg.data_dir, cfg.ephemeral);
    let extauth = extauth::ExtAuth::default();
    let server = Server(Arc::new(Inner {
        db,
        backend,
        audit,
        extauth,
        certs: Default::default(),
        https_only: Default::default(),
        cfg,
        host,
        pool,
        sessions,
        events: Default::default(),
        tasks: Default::default(),
        passwd,
        rrds: Default::default(),
        sr_io: Default::default(),
        started: std::time::Instant::now(),
        exit: tokio::sync::watch::channel(false).0,
        netsync: Default::default(),
        nbd_port: Default::default(),
        http_port: Default::default(),
        replica: Default::default(),
        pool_calls: Default::default(),
    }));
    if let Some(p) = replica {
        let _ = server.replica.set(p);
        pooling::watch_role(&server);
        pooling::spawn_liveness(&server);
        pooling::serve_streams(&server);
    }
    dispatch::serve_forwarded(&server);
    session::spawn_gc(server.clone(), gc_every);
    extauth::startup(&server);
    ops::host::startup(&server);
    ops::sr::startup(&server);
    networkd::startup(&server);
    xenops::adopt_all(&server);
    xenops::spawn_events(server.clone());
    rrd::sampler::load(&server);
    rrd::sampler::spawn(server.clone());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut bound = http::listen(server.clone(), stop_rx.clone()).await.map_err(|e| e.to_string())?;
    if let Some(a) = bound.http.first() {
        server.http_port.store(a.port(), std::sync::atomic::Ordering::Relaxed);
    }
    if !server.cfg.nbd.is_empty() {
        // The same certificate store as HTTPS: a new certificate applies to
        // the next NBD handshake too.
        let tls = http::tls::server_config(&server.cfg, &server.certs).map_err(|e| e.to_string())?;
        let addrs = server.cfg.nbd.clone();
        bound.nbd = nbd::listen(server.clone(), &addrs, Arc::new(tls), nbd_authorize, stop_rx)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(a) = bound.nbd.first() {
            server.nbd_port.store(a.port(), std::sync::atomic::Ordering::Relaxed);
        }
    }
    certs::startup(&server);
    Ok(Running { server, bound, stop, generated_password })
}

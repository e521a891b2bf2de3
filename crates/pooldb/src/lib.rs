//! The pool database: each host's store as one replica, kept in step by
//! openraft (see ARCHITECTURE.md, "Pools").
//!
//! The engine's leader is the pool master. Its commits are applied to its
//! store at once and their records proposed here in commit order; a
//! member's writes go to the master as field-level changes (`forward`);
//! every host applies the committed entries in log order. The first entry
//! of a pool carries the master's whole database ("genesis").
//!
//! A host whose role changes (a member elected, a master deposed) restarts,
//! as xapi does: its store is rebuilt from the engine's snapshot and log, so
//! a deposed master's uncommitted changes are gone with it.

mod net;
mod storage;

pub use net::{post, PeerStream, Tls, Trust, SECRET_HEADER};
pub use storage::Store;

use openraft::{BasicNode, Config, Raft, ServerState};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use store::{Db, Replicator, Role, WaitFuture};
use tokio::sync::{mpsc, watch};

/// One entry of the pool's log: the records of one or more commits made on
/// the host of `origin` (a process run), and for the first entry the whole
/// database.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Batch {
    pub origin: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "b64::list")]
    pub records: Vec<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64::opt")]
    pub genesis: Option<Vec<u8>>,
}

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} records from {}", self.records.len(), self.origin)
    }
}

openraft::declare_raft_types!(
    pub Tc:
        D = Batch,
        R = (),
);

/// How often the leader heartbeats, and how long a follower waits before it
/// stands for election (generous: hosts here may be slow emulated ones).
fn engine_config() -> Result<Arc<Config>, String> {
    let c = Config {
        cluster_name: "xapi-rs-pool".into(),
        heartbeat_interval: 250,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        install_snapshot_timeout: 20_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5_000),
        max_in_snapshot_log_to_keep: 500,
        ..Default::default()
    };
    c.validate().map(Arc::new).map_err(|e| e.to_string())
}

/// A commit not made after this long is reported (with the engine's
/// view), and after COMMIT_LIMIT given up: a pool that cannot commit
/// answers with an error, not never.
const COMMIT_PATIENCE: Duration = Duration::from_secs(10);
const COMMIT_LIMIT: Duration = Duration::from_secs(60);

/// What the committed proposals have reached.
#[derive(Clone, Debug, Default)]
struct Done {
    /// Proposals up to this number are committed…
    seq: u64,
    /// …by the entry at this log index (or a later one).
    index: u64,
    /// The engine refused a proposal: it and every later one fail.
    failed: Option<String>,
}

/// The store's view of the engine (see [`store::Replicator`]).
pub struct Rep {
    role: Role,
    /// This host's engine node id.
    id: u64,
    raft: Raft<Tc>,
    store: Store,
    secret: Arc<str>,
    tls: net::Tls,
    next: AtomicU64,
    queue: mpsc::UnboundedSender<(u64, Vec<u8>)>,
    done_tx: watch::Sender<Done>,
    done: (Mutex<Done>, Condvar),
    rt: tokio::runtime::Handle,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Rep {
    fn settle(&self, d: Done) {
        *lock(&self.done.0) = d.clone();
        self.done.1.notify_all();
        self.done_tx.send_replace(d);
    }

    fn check(d: &Done, seq: u64) -> Option<Result<(), String>> {
        if d.seq >= seq {
            Some(Ok(()))
        } else {
            d.failed.as_ref().map(|e| Err(e.clone()))
        }
    }

    /// Run `f` to completion from a thread that may block (a runtime worker
    /// gives its place up meanwhile).
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.rt.block_on(f))
            }
            _ => self.rt.block_on(f),
        }
    }

    /// A commit still waited for after `waited`: said once per period with
    /// the engine's view (a stall is diagnosed from it), and given up at
    /// COMMIT_LIMIT: the caller gets an error, not a hang (the entry may
    /// still commit later; the write stays in this host's store).
    fn slow_commit(&self, seq: u64, waited: Duration) -> Result<(), String> {
        let m = self.raft.metrics().borrow().clone();
        let done = self.done_tx.borrow().clone();
        tracing::warn!(
            seq,
            committed_seq = done.seq,
            committed_index = done.index,
            state = ?m.state,
            leader = ?m.current_leader,
            last_log = ?m.last_log_index,
            applied = ?m.last_applied.map(|l| l.index),
            replication = ?m.replication,
            voters = ?m.membership_config.membership().voter_ids().collect::<Vec<_>>(),
            "a write has waited {} s for the pool to commit it",
            waited.as_secs()
        );
        if waited >= COMMIT_LIMIT {
            return Err(format!("the pool did not commit the write in {} s", waited.as_secs()));
        }
        Ok(())
    }

    /// The HTTP address of the engine's current leader.
    pub fn leader_addr(&self) -> Option<String> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        m.membership_config.membership().get_node(&id).map(|n| n.addr.clone())
    }
}

impl Replicator for Rep {
    fn role(&self) -> Role {
        self.role
    }

    fn propose(&self, record: Vec<u8>) -> u64 {
        let seq = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        if self.queue.send((seq, record)).is_err() {
            tracing::error!(seq, "the pool's proposal queue is closed; the write is not replicated");
        }
        seq
    }

    fn wait(&self, seq: u64) -> WaitFuture<'_> {
        let mut rx = self.done_tx.subscribe();
        Box::pin(async move {
            let mut waited = Duration::ZERO;
            loop {
                match tokio::time::timeout(COMMIT_PATIENCE, rx.wait_for(|d| Self::check(d, seq).is_some())).await {
                    Ok(Ok(d)) => return Self::check(&d, seq).unwrap_or(Ok(())),
                    Ok(Err(_)) => return Err("the pool database stopped".to_string()),
                    Err(_) => {
                        waited += COMMIT_PATIENCE;
                        self.slow_commit(seq, waited)?;
                    }
                }
            }
        })
    }

    fn wait_blocking(&self, seq: u64) -> Result<(), String> {
        let (m, cv) = &self.done;
        let mut g = lock(m);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(r) = Self::check(&g, seq) {
                return r;
            }
            let (next, timeout) = match cv.wait_timeout(g, COMMIT_PATIENCE) {
                Ok(x) => x,
                Err(p) => p.into_inner(),
            };
            g = next;
            if timeout.timed_out() && Self::check(&g, seq).is_none() {
                waited += COMMIT_PATIENCE;
                drop(g);
                self.slow_commit(seq, waited)?;
                g = lock(m);
            }
        }
    }

    fn forward(&self, changes: Vec<u8>) -> Result<(), String> {
        let addr = self.leader_addr().ok_or_else(|| "no pool master is known".to_string())?;
        let body = self
            .block_on(net::ask(
                &self.tls,
                &addr,
                &format!("/pool/forward?from={}", self.id),
                &self.secret,
                &changes,
                Duration::from_secs(30),
            ))
            .map_err(|e| format!("the pool master did not take the write: {e}"))?;
        let index = log_index(&body).ok_or_else(|| format!("the pool master at {addr} gave no log index"))?;
        if !self.store.wait_applied_blocking(index, Duration::from_secs(30)) {
            return Err(format!("the pool's entry {index} did not reach this host in 30 s"));
        }
        Ok(())
    }
}

/// This host's part of a pool: the engine, its storage and the store's
/// replicator.
pub struct Pool {
    pub id: u64,
    pub raft: Raft<Tc>,
    pub store: Store,
    secret: Arc<str>,
    tls: net::Tls,
    rep: std::sync::OnceLock<Arc<Rep>>,
    /// On the leader: when each member (by the name it gives) last said it
    /// is alive.
    heard: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Set when the master tells this host it has left the pool.
    ejected: watch::Sender<bool>,
    /// The engine's secret from before an emergency transition: good only
    /// for `/pool/rejoin`.
    former: std::sync::OnceLock<Arc<str>>,
    /// Set when a new master (after an emergency transition) tells this
    /// host to follow it: the new master's engine address.
    reset: watch::Sender<Option<String>>,
    /// Runs an API call the master sends this host (`/pool/call`).
    calls: std::sync::OnceLock<CallFn>,
    /// Takes a raw stream another host opens (`/pool/stream/…`).
    streams: std::sync::OnceLock<StreamFn>,
    /// The leader's appends to learners (see [`net::Pace`]).
    pace: Arc<net::Pace>,
}

/// The host's API, for calls the master forwards: a JSON-RPC request in,
/// its response out.
pub type CallFn =
    Arc<dyn Fn(Vec<u8>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>> + Send + Sync>;

/// Takes a raw stream (a migrating guest's memory) that another host of
/// the pool opened on a `/pool/stream/…` path: the path (with its query)
/// and the connection, the answer's head already sent.
pub type StreamFn =
    Arc<dyn Fn(String, PeerStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// The message `/pool/rejoin` runs (see the server's pooling module).
pub const REJOIN_METHOD: &str = "internal.rejoin";

/// What a member must be told when it joins.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Membership {
    pub node_id: u64,
    pub secret: String,
}

impl Pool {
    /// Start the engine over the files in `dir` (new or not); `db` is rebuilt
    /// from them; `tls` secures its connections with the other hosts. No
    /// role yet: see [`Pool::found`] and [`Pool::settle`].
    pub async fn open(dir: &Path, db: Arc<Db>, id: u64, secret: &str, tls: net::Tls) -> Result<Arc<Pool>, String> {
        let boot = format!("{id}-{}-{}", std::process::id(), now_nanos());
        let st = Store::open(dir, db, boot, id)?;
        let secret: Arc<str> = secret.into();
        #[allow(deprecated)]
        let (log, sm) = openraft::storage::Adaptor::new(st.clone());
        let pace = Arc::new(net::Pace::default());
        let net =
            net::Net { secret: secret.clone(), tls: tls.clone(), pace: pace.clone(), encoded: Default::default() };
        let raft = Raft::new(id, engine_config()?, net, log, sm)
            .await
            .map_err(|e| format!("the pool database engine: {e}"))?;
        tokio::spawn(elect_guard(raft.clone(), id));
        tokio::spawn(follow_membership(raft.clone(), pace.clone()));
        Ok(Arc::new(Pool {
            id,
            raft,
            store: st,
            secret,
            tls,
            rep: Default::default(),
            heard: Default::default(),
            ejected: watch::channel(false).0,
            reset: watch::channel(None).0,
            former: Default::default(),
            calls: Default::default(),
            streams: Default::default(),
            pace,
        }))
    }

    /// Take the engine's messages from the other hosts on `bind`.
    pub async fn listen(self: &Arc<Pool>, bind: std::net::SocketAddr) -> Result<(), String> {
        let l =
            tokio::net::TcpListener::bind(bind).await.map_err(|e| format!("the pool database's port {bind}: {e}"))?;
        tokio::spawn(net::serve(Arc::downgrade(self), l, self.tls.clone()));
        Ok(())
    }

    /// Make this lone host the first member of a new pool (its master):
    /// the engine's first entry carries its whole database.
    pub async fn found(self: &Arc<Pool>, addr: &str) -> Result<(), String> {
        let mut nodes = BTreeMap::new();
        nodes.insert(self.id, BasicNode { addr: addr.to_string() });
        self.raft.initialize(nodes).await.map_err(|e| format!("cannot start the pool database: {e}"))?;
        self.wait_role(Duration::from_secs(30)).await?;
        // Replicate from now on; what was committed before is in the dump
        // (taken at the switch: records change fields of rows, so none may
        // apply twice).
        let (rep, rx) = self.replicator(Role::Leader);
        let dump = self.store.0.db.set_replicator_dump(rep.clone()).map_err(|e| e.to_string())?;
        let genesis = Batch { origin: self.store.0.boot.clone(), records: Vec::new(), genesis: Some(dump) };
        self.raft.client_write(genesis).await.map_err(|e| format!("the pool's first entry: {e}"))?;
        tokio::spawn(pump(rep, rx));
        Ok(())
    }

    /// A pool host's start: wait (up to `limit`) for a leader and for this
    /// host's store to catch up, then take the role the engine gives.
    pub async fn settle(self: &Arc<Pool>, limit: Duration) -> Result<Role, String> {
        let role = match self.wait_role(limit).await {
            Ok(r) => r,
            Err(e) => {
                // No quorum yet: serve what this host has as a member; the
                // role watch restarts it when a leader shows up as itself.
                tracing::warn!("{e}; starting as a pool member with the state this host has");
                Role::Follower
            }
        };
        let (rep, rx) = self.replicator(role);
        self.store.0.db.set_replicator(rep.clone()).map_err(|e| e.to_string())?;
        if role == Role::Leader {
            tokio::spawn(pump(rep, rx));
        }
        Ok(role)
    }

    /// Wait for a leader; as leader, also wait until every entry of the log
    /// is applied here.
    async fn wait_role(&self, limit: Duration) -> Result<Role, String> {
        let mut rx = self.raft.metrics();
        let id = self.id;
        let m = tokio::time::timeout(
            limit,
            rx.wait_for(|m| match m.current_leader {
                Some(l) if l == id => {
                    m.state == ServerState::Leader && m.last_applied.map(|a| a.index) >= m.last_log_index
                }
                Some(_) => true,
                None => false,
            }),
        )
        .await
        .map_err(|_| format!("no pool master elected in {} s", limit.as_secs()))?
        .map_err(|_| "the pool database engine stopped".to_string())?
        .clone();
        Ok(if m.current_leader == Some(id) { Role::Leader } else { Role::Follower })
    }

    fn replicator(self: &Arc<Pool>, role: Role) -> (Arc<Rep>, mpsc::UnboundedReceiver<(u64, Vec<u8>)>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let rep = Arc::new(Rep {
            role,
            id: self.id,
            raft: self.raft.clone(),
            store: self.store.clone(),
            secret: self.secret.clone(),
            tls: self.tls.clone(),
            next: AtomicU64::new(0),
            queue,
            done_tx: watch::channel(Done::default()).0,
            done: Default::default(),
            rt: tokio::runtime::Handle::current(),
        });
        let _ = self.rep.set(rep.clone());
        (rep, rx)
    }

    pub fn role(&self) -> Option<Role> {
        self.rep.get().map(|r| r.role)
    }

    /// The HTTP address of the pool master, as the engine knows it.
    pub fn leader_addr(&self) -> Option<String> {
        self.rep.get().and_then(|r| r.leader_addr())
    }

    /// Resolves when this host's role in the engine no longer matches the
    /// role it took (it was elected, or deposed): the host must restart.
    pub async fn role_lost(&self) {
        let Some(role) = self.role() else { return std::future::pending().await };
        let mut rx = self.raft.metrics();
        let id = self.id;
        let _ = rx
            .wait_for(|m| {
                let leading = m.current_leader == Some(id) && m.state == ServerState::Leader;
                match role {
                    Role::Leader => m.state != ServerState::Leader,
                    Role::Follower => leading,
                }
            })
            .await;
    }

    pub fn check_secret(&self, given: &str) -> bool {
        same(given, &self.secret)
    }

    /// Whether `given` is the engine's secret from before an emergency
    /// transition (good for `/pool/rejoin` only).
    pub fn check_former(&self, given: &str) -> bool {
        self.former.get().is_some_and(|f| same(given, f))
    }

    /// Also take the former secret for `/pool/rejoin` (after an emergency
    /// transition, the other hosts still hold it).
    pub fn accept_former(&self, former: Option<&str>) {
        if let Some(f) = former {
            let _ = self.former.set(Arc::from(f));
        }
    }

    /// Admit host `id` at `addr` as a learner (it gets every entry, has no
    /// vote); returns once the pool has committed the change.
    pub async fn admit(&self, id: u64, addr: &str) -> Result<(), String> {
        self.raft
            .add_learner(id, BasicNode { addr: addr.to_string() }, false)
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot add host {id} to the pool database: {e}"))
    }

    /// Once learner `id` has caught up (within `limit`): the voters are
    /// balanced again ([`choose_voters`]): from three hosts on the pool
    /// outlives the loss of any one of them.
    pub async fn promote(&self, id: u64, limit: Duration) -> Result<(), String> {
        let target = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let mut rx = self.raft.metrics();
        tokio::time::timeout(
            limit,
            rx.wait_for(|m| {
                m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten()).is_some_and(|l| l.index >= target)
            }),
        )
        .await
        .map_err(|_| format!("host {id} did not catch up in {} s", limit.as_secs()))?
        .map_err(|_| "the pool database engine stopped".to_string())?;
        self.voters_all().await
    }

    /// Remove host `id` from the engine (ejected or destroyed).
    pub async fn remove(&self, id: u64) -> Result<(), String> {
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        let mut voters: BTreeSet<u64> = mem.voter_ids().collect();
        if voters.remove(&id) {
            self.raft.change_membership(voters, false).await.map_err(|e| e.to_string())?;
        }
        let mut gone = BTreeSet::new();
        gone.insert(id);
        self.raft
            .change_membership(openraft::ChangeMembers::RemoveNodes(gone), false)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// A member: tell the leader this host (named `who`) is alive.
    pub async fn heartbeat(&self, who: &str) -> Result<(), String> {
        let addr = self.leader_addr().ok_or_else(|| "no pool master is known".to_string())?;
        net::ask(&self.tls, &addr, "/pool/heartbeat", &self.secret, who.as_bytes(), Duration::from_secs(5))
            .await
            .map(drop)
    }

    /// The leader: when each member last sent a heartbeat.
    pub fn heard(&self) -> std::collections::HashMap<String, std::time::Instant> {
        lock(&self.heard).clone()
    }

    /// Serve the calls the master forwards here with `f`.
    pub fn serve_calls(&self, f: CallFn) {
        let _ = self.calls.set(f);
    }

    /// Take the raw streams other hosts open here with `f`.
    pub fn serve_streams(&self, f: StreamFn) {
        let _ = self.streams.set(f);
    }

    pub(crate) fn stream_fn(&self) -> Option<StreamFn> {
        self.streams.get().cloned()
    }

    /// Open a raw stream to the host at `addr` on `path` (which starts with
    /// `/pool/stream/`): after the other side's 200, the connection is the
    /// stream.
    pub async fn open_stream(&self, addr: &str, path: &str) -> Result<PeerStream, String> {
        net::open_stream(&self.tls, addr, path, &self.secret, Duration::from_secs(30))
            .await
            .map_err(|e| format!("{addr}: {e}"))
    }

    /// The log index that holds everything this host has committed or
    /// applied (a caller that needs its own writes seen waits for them to
    /// be durable first).
    fn seen(&self) -> u64 {
        self.rep.get().map_or(0, |r| r.done_tx.borrow().index).max(self.store.applied_index())
    }

    /// Run an API call (a JSON-RPC request) on the host at `addr`; its
    /// JSON-RPC response.
    ///
    /// The other host runs it once it has applied everything this one has
    /// committed (so a caller whose writes are durable has them seen, such
    /// as the row the call names).
    pub async fn call(&self, addr: &str, request: &[u8], limit: Duration) -> Result<Vec<u8>, String> {
        let seen = self.seen();
        self.pace.want_at(addr, seen);
        let path = format!("/pool/call?seen={seen}");
        net::ask(&self.tls, addr, &path, &self.secret, request, limit).await
    }

    /// Present `cert` on this host's engine port from the next connection
    /// on (the pool must know it already: see `host_internal` rows).
    pub fn present(&self, cert: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<(), String> {
        self.tls.present(cert, key)
    }

    /// A leader: wait (up to `limit`) until every other host of the pool
    /// has this host's log up to its last entry (so all of them know what
    /// it wrote last). Hosts that do not answer are waited for until then.
    pub async fn replicated(&self, limit: Duration) -> Result<(), String> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let m = rx.borrow_and_update().clone();
            let (Some(last), Some(rep)) = (m.last_log_index, m.replication.as_ref()) else {
                return Ok(());
            };
            let behind: Vec<u64> = rep
                .iter()
                .filter(|(id, got)| **id != self.id && got.is_none_or(|l| l.index < last))
                .map(|(id, _)| *id)
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Err(format!("hosts {behind:?} did not take entry {last} in time"));
            }
        }
    }

    /// A member: wait (up to `limit`) until this host has applied every
    /// entry the master had committed when asked. A restarted member's log
    /// may hold entries it has not applied yet (the commit point comes from
    /// the master); what it does at start (ending the operations its last
    /// run left) must see them.
    pub async fn catch_up(&self, limit: Duration) -> Result<(), String> {
        let addr = self.leader_addr().ok_or_else(|| "no pool master is known".to_string())?;
        let path = format!("/pool/point?from={}", self.id);
        let body = net::ask(&self.tls, &addr, &path, &self.secret, b"", limit).await?;
        let point = log_index(&body).ok_or_else(|| format!("{addr} gave no log index"))?;
        self.store.wait_applied(point, limit).await
    }

    /// The leader's commit point (see [`Pool::seen`]).
    fn point(&self) -> Option<u64> {
        self.rep.get().filter(|r| r.role == Role::Leader).map(|_| self.seen())
    }

    /// Resolves when the master has told this host it left the pool.
    pub async fn ejected(&self) {
        let _ = self.ejected.subscribe().wait_for(|e| *e).await;
    }

    /// Resolves when a new master has told this host to follow it: that
    /// master's engine address.
    pub async fn reset_requested(&self) -> String {
        let mut rx = self.reset.subscribe();
        let got = rx.wait_for(|r| r.is_some()).await.map(|r| r.clone());
        match got {
            Ok(r) => r.unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Tell the host whose engine is at `addr` to follow the master whose
    /// engine is at `master` (`pool.recover_slaves`), with the secret it
    /// holds (the engine's from before the emergency transition).
    pub async fn tell_reset(&self, addr: &str, master: &str, secret: &str) -> Result<(), String> {
        net::ask(&self.tls, addr, "/pool/reset", secret, master.as_bytes(), Duration::from_secs(10)).await.map(drop)
    }

    /// Ask the master whose engine is at `addr` for a place in its engine
    /// (a JSON-RPC request of the rejoin message, run by its call handler);
    /// its JSON-RPC response.
    pub async fn rejoin(&self, addr: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        net::ask(&self.tls, addr, "/pool/rejoin", &self.secret, request, Duration::from_secs(60)).await
    }

    /// Tell the host at `addr` that it has left the pool.
    pub async fn tell_ejected(&self, addr: &str) -> Result<(), String> {
        net::ask(&self.tls, addr, "/pool/eject", &self.secret, b"", Duration::from_secs(10)).await.map(drop)
    }

    /// Hand the leadership to `id`: it becomes the only voter (the others
    /// learners), so it is elected, and this host steps down; the new leader
    /// balances the voters again when it starts ([`Pool::voters_all`]).
    pub async fn hand_over(&self, id: u64) -> Result<(), String> {
        let mut only = BTreeSet::new();
        only.insert(id);
        self.raft.change_membership(only, true).await.map(|_| ()).map_err(|e| format!("cannot hand the pool over: {e}"))
    }

    /// Every host a possible voter (after a join or a hand-over, before
    /// liveness is known): see [`Pool::balance_voters`].
    pub async fn voters_all(&self) -> Result<(), String> {
        // A new leader learns where each host's log stands from their first
        // answers: wait a little for them, so that hosts that have the whole
        // log (the former leader, after a hand-over) vote again at once.
        let mut rx = self.raft.metrics();
        let known = rx.wait_for(|m| {
            let (_, all, eligible) = electorate(m);
            eligible == all
        });
        let _ = tokio::time::timeout(Duration::from_secs(5), known).await;
        let m = self.raft.metrics().borrow().clone();
        let all: BTreeSet<u64> = m.membership_config.membership().nodes().map(|(i, _)| *i).collect();
        self.balance_voters(&all).await
    }

    /// Keep the voters as [`choose_voters`] wants them, given the hosts
    /// known to be alive: a dead voter gives its place to a live learner.
    ///
    /// Only a learner that has caught up with the log may become a voter:
    /// one still restarting into the pool (a joiner) would otherwise count
    /// towards every commit's quorum while it cannot answer, and with one
    /// more host down the pool would stop.
    pub async fn balance_voters(&self, live: &BTreeSet<u64>) -> Result<(), String> {
        let (voters, _, eligible) = electorate(&self.raft.metrics().borrow());
        let want = choose_voters(&voters, &eligible, live, self.id);
        if want != voters {
            tracing::info!(?voters, ?want, "changing the pool database's voters");
            self.raft
                .change_membership(want, true)
                .await
                .map_err(|e| format!("cannot change the pool database's voters: {e}"))?;
        }
        Ok(())
    }

    /// The engine node whose address is on host `ip`.
    pub fn node_at(&self, ip: &str) -> Option<(u64, String)> {
        self.members()
            .into_iter()
            .find(|(_, a, _)| a.rsplit_once(':').map(|(h, _)| h) == Some(ip))
            .map(|(i, a, _)| (i, a))
    }

    /// The next free engine node id.
    pub fn next_id(&self) -> u64 {
        let m = self.raft.metrics().borrow().clone();
        m.membership_config.membership().nodes().map(|(i, _)| *i).max().unwrap_or(self.id) + 1
    }

    /// Engine node ids and addresses, and which are voters.
    pub fn members(&self) -> Vec<(u64, String, bool)> {
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        let voters: BTreeSet<u64> = mem.voter_ids().collect();
        mem.nodes().map(|(i, n)| (*i, n.addr.clone(), voters.contains(i))).collect()
    }

    /// Serve one of the engine's requests from another host (`/pool/raft/…`)
    /// or a member's forwarded write (`/pool/forward`).
    pub async fn handle(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, (u16, String)> {
        fn bad(e: serde_json::Error) -> (u16, String) {
            (400, e.to_string())
        }
        fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, (u16, String)> {
            serde_json::to_vec(v).map_err(|e| (500, e.to_string()))
        }
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        // The member that sent a forwarded write or asks for the commit
        // point waits to apply what it is answered.
        let from: Option<u64> = query.strip_prefix("from=").and_then(|n| n.parse().ok());
        let wants = |index: u64| {
            if let Some(id) = from {
                self.pace.want(id, index);
            }
            index
        };
        match path {
            "/pool/raft/append" => enc(&self.raft.append_entries(serde_json::from_slice(body).map_err(bad)?).await),
            "/pool/raft/vote" => enc(&self.raft.vote(serde_json::from_slice(body).map_err(bad)?).await),
            "/pool/raft/snapshot" => enc(&self.raft.install_snapshot(serde_json::from_slice(body).map_err(bad)?).await),
            "/pool/forward" => self.apply_forwarded(body).await.map(|i| wants(i).to_string().into_bytes()),
            "/pool/point" => self
                .point()
                .map(|i| wants(i).to_string().into_bytes())
                .ok_or((503, "this host is not the pool master".into())),
            // Only the rejoin message: the caller may hold no more than the
            // former secret.
            "/pool/rejoin" => {
                let Some(f) = self.calls.get() else { return Err((503, "this host does not serve calls yet".into())) };
                let method = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("method").and_then(|m| m.as_str()).map(str::to_string));
                if method.as_deref() != Some(REJOIN_METHOD) {
                    return Err((400, "only the rejoin message goes to /pool/rejoin".into()));
                }
                Ok(f(body.to_vec()).await)
            }
            "/pool/call" => {
                let Some(f) = self.calls.get() else { return Err((503, "this host does not serve calls yet".into())) };
                let seen: u64 = query.strip_prefix("seen=").and_then(|n| n.parse().ok()).unwrap_or(0);
                self.store.wait_applied(seen, Duration::from_secs(30)).await.map_err(|e| (503, e))?;
                Ok(f(body.to_vec()).await)
            }
            "/pool/reset" => {
                let addr = String::from_utf8_lossy(body).trim().to_string();
                if addr.is_empty() {
                    return Err((400, "no master address".into()));
                }
                tracing::warn!(master = %addr, "a new pool master says this host now follows it");
                self.reset.send_replace(Some(addr));
                Ok(b"ok".to_vec())
            }
            "/pool/eject" => {
                tracing::warn!("the pool master says this host has left the pool");
                self.ejected.send_replace(true);
                Ok(b"ok".to_vec())
            }
            "/pool/heartbeat" => {
                let who = String::from_utf8_lossy(body).trim().to_string();
                lock(&self.heard).insert(who, std::time::Instant::now());
                Ok(b"ok".to_vec())
            }
            _ => Err((404, format!("no such pool path {path}"))),
        }
    }

    /// On the master: apply a member's changes; the log index the member
    /// waits for.
    async fn apply_forwarded(&self, body: &[u8]) -> Result<u64, (u16, String)> {
        if self.point().is_none() {
            return Err((503, "this host is not the pool master".into()));
        }
        let db = &self.store.0.db;
        let c = db.apply_changes(body).map_err(|e| (400, e.to_string()))?;
        db.durable(c).await.map_err(|e| (503, e.to_string()))?;
        // The engine sends every follower the new commit point by itself;
        // the member's own lane is unpaced for it (`handle`).
        Ok(self.point().unwrap_or(0))
    }
}

/// A learner this close to the end of the leader's log has caught up (a
/// busy pool always has a few entries in flight).
const CAUGHT_UP_SLACK: u64 = 64;

/// At most this many voters: a write waits for a majority of them only
/// (every host still gets every entry), and five outlive two failures.
pub const MAX_VOTERS: usize = 5;

/// The voters a pool of `all` hosts should have: none but the leader with
/// two hosts (a two-voter quorum would stop the pool whenever either host
/// stops), else an odd number, up to MAX_VOTERS (an even one outlives no
/// more failures and waits for one more host). Live voters keep their
/// place; live learners fill the rest, lowest id first; a dead voter goes
/// only when a live learner takes its place (the count stays odd). The
/// leader is always one.
pub fn choose_voters(voters: &BTreeSet<u64>, all: &BTreeSet<u64>, live: &BTreeSet<u64>, leader: u64) -> BTreeSet<u64> {
    let n = all.len();
    let size = match n {
        0..=2 => 1,
        _ => {
            let k = n.min(MAX_VOTERS);
            if k.is_multiple_of(2) {
                k - 1
            } else {
                k
            }
        }
    };
    let mut want: BTreeSet<u64> = BTreeSet::from([leader]);
    // Live voters first, then live learners, then (to keep the size) dead voters.
    let live_voters = voters.iter().filter(|v| live.contains(v));
    let live_learners = all.iter().filter(|v| !voters.contains(v) && live.contains(v));
    let dead_voters = voters.iter().filter(|v| !live.contains(v));
    for v in live_voters.chain(live_learners).chain(dead_voters) {
        if want.len() >= size {
            break;
        }
        if all.contains(v) {
            want.insert(*v);
        }
    }
    want
}

/// The hosts that may vote: the voters, and the learners whose log (as
/// far as the leader knows, `matched`) is within CAUGHT_UP_SLACK entries of
/// the leader's `last`.
pub fn caught_up(
    voters: &BTreeSet<u64>,
    all: &BTreeSet<u64>,
    matched: &BTreeMap<u64, u64>,
    last: u64,
) -> BTreeSet<u64> {
    all.iter()
        .copied()
        .filter(|i| voters.contains(i) || matched.get(i).is_some_and(|x| x + CAUGHT_UP_SLACK >= last))
        .collect()
}

/// The voters, every host, and the hosts that may vote ([`caught_up`]) as
/// the leader's engine sees them.
fn electorate(m: &openraft::RaftMetrics<u64, BasicNode>) -> (BTreeSet<u64>, BTreeSet<u64>, BTreeSet<u64>) {
    let mem = m.membership_config.membership();
    let voters: BTreeSet<u64> = mem.voter_ids().collect();
    let all: BTreeSet<u64> = mem.nodes().map(|(i, _)| *i).collect();
    let matched: BTreeMap<u64, u64> =
        m.replication.iter().flat_map(|r| r.iter()).filter_map(|(i, l)| l.map(|l| (*i, l.index))).collect();
    let eligible = caught_up(&voters, &all, &matched, m.last_log_index.unwrap_or(0));
    (voters, all, eligible)
}

/// A log index in an answer's body.
fn log_index(body: &[u8]) -> Option<u64> {
    std::str::from_utf8(body).ok().and_then(|s| s.trim().parse().ok())
}

/// Compare secrets in constant time.
fn same(given: &str, secret: &str) -> bool {
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keep the pacing's view of the membership (voters, addresses) current.
async fn follow_membership(raft: Raft<Tc>, pace: Arc<net::Pace>) {
    let mut rx = raft.metrics();
    let mut seen = None;
    loop {
        {
            let m = rx.borrow_and_update();
            let c = &m.membership_config;
            if seen.as_ref() != Some(c.log_id()) {
                seen = Some(*c.log_id());
                pace.learn(c.membership());
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// A host stands for election only while it reaches a majority of the
/// voters (itself included): one cut off from the others would otherwise
/// raise its term again and again, and depose the master when it comes
/// back (this engine has no pre-vote).
async fn elect_guard(raft: Raft<Tc>, me: u64) {
    let mut enabled = true;
    // Back in reach: stand again only after the leader has had time to
    // reach this host (its messages reset the election timer), so a host
    // coming back does not start an election the moment its link returns.
    let mut back_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let m = raft.metrics().borrow().clone();
        if m.running_state.is_err() {
            return;
        }
        let mem = m.membership_config.membership();
        let voters: Vec<u64> = mem.voter_ids().collect();
        if m.state == ServerState::Leader || !voters.contains(&me) {
            continue;
        }
        // The leader first: in reach of it, this host is in the pool (one
        // probe per round in a healthy pool of any size); otherwise count
        // the voters it reaches, stopping at a majority.
        let mut order: Vec<u64> = voters.iter().copied().filter(|v| *v != me).collect();
        order.sort_by_key(|v| Some(*v) != m.current_leader);
        let mut reach = 1;
        for v in order {
            if reach * 2 > voters.len() {
                break;
            }
            let Some(addr) = mem.get_node(&v).map(|n| n.addr.clone()) else { continue };
            let ok = tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr))
                .await
                .is_ok_and(|r| r.is_ok());
            if ok && Some(v) == m.current_leader {
                reach = voters.len();
                break;
            }
            if ok {
                reach += 1;
            }
        }
        let majority = reach * 2 > voters.len();
        let want = match (majority, enabled) {
            (false, _) => {
                back_since = None;
                false
            }
            (true, true) => true,
            (true, false) => {
                let since = *back_since.get_or_insert_with(tokio::time::Instant::now);
                since.elapsed() > Duration::from_millis(4_000)
            }
        };
        if want != enabled {
            back_since = None;
            tracing::info!(
                reach,
                voters = voters.len(),
                "{} standing for election",
                if want { "resuming" } else { "stopping" }
            );
            raft.runtime_config().elect(want);
            enabled = want;
        }
    }
}

/// Engine entries of the leader's that may be uncommitted at once: group
/// commit. While one is in flight, proposals gather for the next, so an
/// entry carries more records under load; every entry costs each voter a
/// log sync and each host an apply. One measured best (pool bench, 5
/// hosts: 2.2 ms of CPU per start over all hosts against 2.5–2.7 with two
/// or unbounded, and the most starts per second); a lone write waits for
/// nothing either way.
const IN_FLIGHT: usize = 1;

/// The leader's proposals, batched into engine entries in commit order.
/// Up to IN_FLIGHT entries are in flight at once; they are settled in
/// order as they commit.
async fn pump(rep: Arc<Rep>, mut rx: mpsc::UnboundedReceiver<(u64, Vec<u8>)>) {
    let origin = rep.store.0.boot.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let (order_tx, mut order_rx) = mpsc::unbounded_channel::<(
        u64,
        <openraft::impls::OneshotResponder<Tc> as openraft::raft::responder::Responder<Tc>>::Receiver,
        tokio::sync::OwnedSemaphorePermit,
    )>();
    let fail = |rep: &Rep, why: String| {
        // Lost leadership or stopped: these writes may not be the pool's.
        // Fail them and every later one; the role watch restarts the host.
        tracing::error!("the pool did not commit a write: {why}");
        let mut d = rep.done_tx.borrow().clone();
        d.failed = Some(format!("the pool did not commit the write: {why}"));
        rep.settle(d);
    };
    let settler = rep.clone();
    tokio::spawn(async move {
        while let Some((last, r, _slot)) = order_rx.recv().await {
            match r.await {
                Ok(Ok(resp)) => settler.settle(Done { seq: last, index: resp.log_id.index, failed: None }),
                Ok(Err(e)) => return fail(&settler, e.to_string()),
                Err(_) => return fail(&settler, "the engine dropped the write".into()),
            }
        }
    });
    while let Some((seq, rec)) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut last = seq;
        let mut records = vec![rec];
        let mut bytes = records[0].len();
        while bytes < (4 << 20) && records.len() < 512 {
            match rx.try_recv() {
                Ok((s, r)) => {
                    last = s;
                    bytes += r.len();
                    records.push(r);
                }
                Err(_) => break,
            }
        }
        match rep.raft.client_write_ff(Batch { origin: origin.clone(), records, genesis: None }).await {
            Ok(r) => {
                if order_tx.send((last, r, slot)).is_err() {
                    return;
                }
            }
            Err(e) => return fail(&rep, e.to_string()),
        }
    }
}

/// Bytes in the engine's JSON as base64 (a JSON array of numbers would be
/// three to four times the size).
mod b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(b: &[u8]) -> String {
        let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len() / 4 * 3);
        let (mut acc, mut bits) = (0u32, 0u32);
        for ch in s.bytes() {
            let v = match ch {
                b'A'..=b'Z' => ch - b'A',
                b'a'..=b'z' => ch - b'a' + 26,
                b'0'..=b'9' => ch - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => break,
                _ => return None,
            } as u32;
            acc = acc << 6 | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(out)
    }

    pub mod list {
        use super::*;
        pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|b| encode(b)))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
            let v: Vec<String> = Vec::deserialize(d)?;
            v.iter().map(|s| decode(s).ok_or_else(|| serde::de::Error::custom("bad base64"))).collect()
        }
    }

    pub mod opt {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_some(&encode(b)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            let v: Option<String> = Option::deserialize(d)?;
            v.map(|s| decode(&s).ok_or_else(|| serde::de::Error::custom("bad base64"))).transpose()
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips() {
            for n in 0..70usize {
                let b: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
                assert_eq!(super::decode(&super::encode(&b)).as_deref(), Some(&b[..]));
            }
            assert_eq!(super::encode(b"Man"), "TWFu");
            assert_eq!(super::encode(b"Ma"), "TWE=");
        }
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

#[cfg(test)]
mod voter_tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn odd_voters_up_to_five_and_dead_ones_replaced() {
        let all = |n: u64| (1..=n).collect::<BTreeSet<u64>>();
        assert_eq!(choose_voters(&set(&[1]), &all(2), &all(2), 1), set(&[1]));
        assert_eq!(choose_voters(&set(&[1]), &all(3), &all(3), 1), set(&[1, 2, 3]));
        assert_eq!(choose_voters(&set(&[1, 2, 3]), &all(4), &all(4), 1), set(&[1, 2, 3]));
        assert_eq!(choose_voters(&set(&[1, 2, 3]), &all(64), &all(64), 1), set(&[1, 2, 3, 4, 5]));
        // Voter 3 dead, learner 6 alive: 6 takes its place.
        let live: BTreeSet<u64> = all(64).into_iter().filter(|i| *i != 3).collect();
        assert_eq!(choose_voters(&set(&[1, 2, 3, 4, 5]), &all(64), &live, 1), set(&[1, 2, 4, 5, 6]));
        // No live learner: the dead voter stays (the size stays odd).
        assert_eq!(choose_voters(&set(&[1, 2, 3]), &all(3), &set(&[1, 2]), 1), set(&[1, 2, 3]));
        // A new leader (2) is always a voter.
        assert_eq!(choose_voters(&set(&[1, 3, 4]), &all(6), &set(&[2, 3, 4, 5, 6]), 2), set(&[2, 3, 4, 5, 6]));
    }

    /// A joiner still restarting into the pool (nothing matched yet, or far
    /// behind) is no voter: with three hosts of which one cannot answer yet,
    /// the pool keeps one voter, not three that need the third.
    #[test]
    fn only_learners_that_caught_up_vote() {
        let all = set(&[1, 2, 3]);
        let matched: BTreeMap<u64, u64> = [(2, 500), (3, 10)].into_iter().collect();
        let ok = caught_up(&set(&[1]), &all, &matched, 520);
        assert_eq!(ok, set(&[1, 2]));
        assert_eq!(choose_voters(&set(&[1]), &ok, &all, 1), set(&[1]));
        let matched: BTreeMap<u64, u64> = [(2, 520), (3, 519)].into_iter().collect();
        let ok = caught_up(&set(&[1]), &all, &matched, 520);
        assert_eq!(choose_voters(&set(&[1]), &ok, &all, 1), set(&[1, 2, 3]));
        // A voter stays one whatever it has matched (it is replaced only
        // when dead, by choose_voters).
        assert_eq!(caught_up(&set(&[1, 3]), &all, &BTreeMap::new(), 520), set(&[1, 3]));
    }
}

//! Pools of hosts: a host's membership, joining a pool, and the pool
//! database's service (the engine itself is the `pooldb` crate).
//!
//! A host that joins asks the master over HTTPS (`POST /pool/join`, with the
//! credentials the caller gave, its internal certificate and its whole
//! database); the master
//! checks it as xapi's pre-join checks do, in xapi's order, copies the
//! joiner's own objects (its host, CPUs, NICs, local SRs and disks, VMs)
//! into the pool database, admits it to the engine and answers with the
//! pool secret. The joiner writes its membership file, sets its own database
//! aside, and restarts as a member: its store is then the pool's.

use crate::{ApiError, Result, Server};
use model::schema::{Type, CLASSES};
use model::types::fields::{
    certificate as CE, console as CO, host as H, host_cpu as HC, network as N, pbd as PBD, pif as P, pool as PO,
    sr as SR, vbd as VBD, vdi as VDI, vif as VIF, vm as VM,
};
use model::types::VmPowerState;
use model::{Ref, Row, Value};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use store::{Db, State};

/// Under the data directory: the engine's files and the membership file.
pub const DIR: &str = "pool";
const MEMBER_FILE: &str = "member.json";
/// The database a member that takes over in an emergency starts its new
/// engine from.
const REFOUND_FILE: &str = "refound.dump";
/// The engine's own files in the pool directory (dropped when this host
/// starts over in a new engine).
const ENGINE_FILES: [&str; 4] = ["log", "vote", "committed", "snapshot"];
/// How long a pool host waits at start for a master before serving what it has.
const SETTLE: Duration = Duration::from_secs(60);

/// What makes this host part of a pool (absent on a lone host).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    pub node_id: u64,
    pub secret: String,
    /// This host's uuid in the pool database.
    pub host_uuid: String,
    /// After an emergency transition: the secret of the pool's engine
    /// before it, which the other hosts still hold. It is good only for
    /// asking to follow this master (`recover_slaves`, `/pool/rejoin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub former_secret: Option<String>,
}

fn pool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

pub fn read_member(data_dir: &Path) -> std::result::Result<Option<Member>, String> {
    let p = pool_dir(data_dir).join(MEMBER_FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

fn write_member(data_dir: &Path, m: &Member) -> std::result::Result<(), String> {
    let dir = pool_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| e.to_string())?;
    store::wal::write_atomic(&dir.join(MEMBER_FILE), &bytes).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Start as a pool host: the store is rebuilt from the engine's files (the
/// host's own database directory, from before it joined, is set aside).
pub async fn open(cfg: &crate::Config, m: &Member) -> std::result::Result<(Arc<Db>, Arc<pooldb::Pool>), String> {
    let data_dir = cfg.data_dir.as_path();
    let (bind, advertised) = engine_addr(cfg);
    let internal = crate::certs::internal(data_dir, &cfg.hostname, &cfg.address)?;
    let own = data_dir.join("db");
    if own.exists() {
        let aside = data_dir.join("db.before-pool");
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(&own, &aside).map_err(|e| format!("cannot set {} aside: {e}", own.display()))?;
        tracing::info!("this host is in a pool: its own database is kept in {}", aside.display());
    }
    let db = Arc::new(Db::memory());
    let tls = crate::certs::engine_tls(db.clone(), internal)?;
    let dir = pool_dir(data_dir);
    let refound = dir.join(REFOUND_FILE);
    if let Ok(dump) = std::fs::read(&refound) {
        // pool.emergency_transition_to_master: a new engine whose first
        // entry is the pool's database as this host last had it.
        tracing::warn!("taking over as the pool's master (emergency transition)");
        for f in ENGINE_FILES {
            let _ = std::fs::remove_file(dir.join(f));
        }
        db.install(&dump).map_err(|e| format!("{}: {e}", refound.display()))?;
        let pool = pooldb::Pool::open(&dir, db.clone(), m.node_id, &m.secret, tls).await?;
        pool.accept_former(m.former_secret.as_deref());
        pool.listen(bind).await?;
        pool.found(&advertised).await?;
        std::fs::remove_file(&refound).map_err(|e| format!("{}: {e}", refound.display()))?;
        return Ok((db, pool));
    }
    let pool = pooldb::Pool::open(&dir, db.clone(), m.node_id, &m.secret, tls).await?;
    pool.accept_former(m.former_secret.as_deref());
    pool.listen(bind).await?;
    let role = pool.settle(SETTLE).await?;
    // A member that just joined has its own host row once it has caught up
    // with the entry that added it.
    let deadline = tokio::time::Instant::now() + SETTLE;
    let arrived = |db: &Db| {
        let st = db.read();
        st.table(&model::schema::CLASS_HOST).by_uuid(&m.host_uuid).is_some()
            && !st.table(&model::schema::CLASS_POOL).is_empty()
    };
    while !arrived(&db) {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "this host ({}) did not receive the pool's database in {} s",
                m.host_uuid,
                SETTLE.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if role == store::Role::Follower {
        // A restarted member's log may hold entries it has not applied yet:
        // what it does at start (ending what its last run left) sees them.
        if let Err(e) = pool.catch_up(SETTLE).await {
            tracing::warn!("starting with the pool's state as this host has it: {e}");
        }
    }
    tracing::info!(node = m.node_id, ?role, "joined the pool database");
    Ok((db, pool))
}

/// Restart when the engine gives this host another role (xapi restarts
/// too), or when the master says it has left the pool: then as a lone host
/// with a fresh database (its database from before it joined stays aside).
pub fn watch_role(s: &Server) {
    let Some(p) = s.replica.get().cloned() else { return };
    let data_dir = s.cfg.data_dir.clone();
    let server = s.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = p.role_lost() => tracing::warn!("this host's role in the pool changed: restarting"),
            master = p.reset_requested() => {
                // reset_master restarts this host when it has its new place.
                if let Err(e) = reset_master(&server, &master).await {
                    tracing::error!(%master, "cannot follow the new master: {e}");
                }
                return;
            }
            _ = p.ejected() => {
                let f = pool_dir(&data_dir).join(MEMBER_FILE);
                if let Err(e) = std::fs::remove_file(&f) {
                    tracing::error!("cannot leave the pool: {}: {e}", f.display());
                    return;
                }
                tracing::warn!("ejected from the pool: restarting as a new pool of one");
            }
        }
        crate::request_restart(Duration::from_millis(100));
    });
}

/// The engine node of a host of the pool.
fn node_of(s: &Server, host: &str) -> Result<(Arc<pooldb::Pool>, u64, String)> {
    let p = s.replica.get().cloned().ok_or_else(|| crate::handle_invalid(&model::schema::CLASS_HOST, host))?;
    let address =
        s.db.read().read(host, H::ADDRESS).ok_or_else(|| crate::handle_invalid(&model::schema::CLASS_HOST, host))?;
    let (id, addr) =
        p.node_at(&address).ok_or_else(|| crate::internal(format!("host {address} is not in the pool database")))?;
    Ok((p, id, addr))
}

/// `pool.eject` on the master: the host is told to leave (it restarts as a
/// pool of its own), taken out of the engine, and its objects deleted:
/// the host with its metrics, CPUs, NICs and PBDs, its control domain, and
/// the SRs only it could reach, with their disks.
pub async fn eject(s: &Server, host: &str) -> Result<()> {
    if s.db.read().get(&model::schema::CLASS_HOST, host).is_none() {
        return Err(crate::handle_invalid(&model::schema::CLASS_HOST, host));
    }
    if host == s.host {
        return Err(ApiError::HostCannotDestroySelf { host: host.to_string() });
    }
    let resident = s.db.read().table(&model::schema::CLASS_VM).iter().any(|(_, v)| {
        v.read(VM::RESIDENT_ON).as_str() == host
            && !v.read(VM::IS_CONTROL_DOMAIN)
            && v.read(VM::POWER_STATE) != VmPowerState::Halted
    });
    if resident {
        return Err(ApiError::OperationNotAllowed { reason: "VM resident on host".into() });
    }
    let (p, id, addr) = node_of(s, host)?;
    p.tell_ejected(&addr).await.map_err(|e| {
        tracing::warn!("pool.eject: {e}");
        ApiError::CannotContactHost { host: host.to_string() }
    })?;
    p.remove(id).await.map_err(crate::internal)?;
    let h = host.to_string();
    let ((), c) = s.db.write(|tx| {
        forget_host(tx, &h);
        Ok::<_, ApiError>(())
    })?;
    s.db.durable(c).await.map_err(|e| crate::internal(e.to_string()))
}

/// `host.destroy` of a dead member: out of the engine (when it is still
/// there) and its objects deleted.
pub async fn forget(s: &Server, host: &str) -> Result<()> {
    if let Ok((p, id, _)) = node_of(s, host) {
        p.remove(id).await.map_err(crate::internal)?;
    }
    let h = host.to_string();
    let ((), c) = s.db.write(|tx| {
        forget_host(tx, &h);
        Ok::<_, ApiError>(())
    })?;
    s.db.durable(c).await.map_err(|e| crate::internal(e.to_string()))
}

fn forget_host(tx: &mut store::Txn, host: &str) {
    use model::schema::*;
    let st = tx.state();
    let mut gone: Vec<(&'static model::schema::ClassDef, String)> = Vec::new();
    if let Some(h) = st.get(&CLASS_HOST, host) {
        gone.push((&CLASS_HOST_METRICS, h.read(H::METRICS).as_str().to_string()));
    }
    gone.push((&CLASS_HOST, host.to_string()));
    for (r, row) in st.table(&CLASS_HOST_CPU).iter() {
        if row.read(HC::HOST).as_str() == host {
            gone.push((&CLASS_HOST_CPU, r.clone()));
        }
    }
    // Its certificates: the engine no longer accepts its internal one.
    for (r, row) in st.table(&CLASS_CERTIFICATE).iter() {
        if row.read(CE::HOST).as_str() == host {
            gone.push((&CLASS_CERTIFICATE, r.clone()));
        }
    }
    for (r, row) in st.table(&CLASS_PIF).iter() {
        if row.read(P::HOST).as_str() == host {
            gone.push((&CLASS_PIF, r.clone()));
            gone.push((&CLASS_PIF_METRICS, row.read(P::METRICS).as_str().to_string()));
        }
    }
    let mut srs = HashSet::new();
    for (r, row) in st.table(&CLASS_PBD).iter() {
        if row.read(PBD::HOST).as_str() == host {
            gone.push((&CLASS_PBD, r.clone()));
            srs.insert(row.read(PBD::SR).as_str().to_string());
        }
    }
    // SRs no other host reaches go, with their disks.
    srs.retain(|sr| {
        !st.table(&CLASS_PBD).iter().any(|(_, p)| p.read(PBD::SR).as_str() == sr && p.read(PBD::HOST).as_str() != host)
    });
    for sr in &srs {
        gone.push((&CLASS_SR, sr.clone()));
    }
    for (r, row) in st.table(&CLASS_VDI).iter() {
        if srs.contains(row.read(VDI::SR).as_str()) {
            gone.push((&CLASS_VDI, r.clone()));
        }
    }
    for (r, row) in st.table(&CLASS_VM).iter() {
        if row.read(VM::IS_CONTROL_DOMAIN) && row.read(VM::RESIDENT_ON).as_str() == host {
            gone.push((&CLASS_VM, r.clone()));
            gone.push((&CLASS_VM_METRICS, row.read(VM::METRICS).as_str().to_string()));
            for (c, crow) in st.table(&CLASS_CONSOLE).iter() {
                if crow.read(CO::VM).as_str() == r {
                    gone.push((&CLASS_CONSOLE, c.clone()));
                }
            }
        }
    }
    for (c, r) in gone {
        tx.delete(c, &r);
    }
}

/// How long a forwarded call may take (a real guest's start, a migration).
const CALL_LIMIT: Duration = Duration::from_secs(900);

/// Run `Class.message(args)` on another host of the pool (the master sends
/// host-specific work to the host that owns it, as xapi's
/// message_forwarding does); the host runs it as the pool's own superuser.
pub async fn forward(s: &Server, host: &str, method: &str, args: &[Value]) -> Result<Value> {
    forward_holding(s, host, method, args, None).await
}

/// Where a forwarded call names the operation the master holds for it.
pub const HELD_KEY: &str = "xapi_rs_held";

/// `forward`, telling the host which operation (class, object, operation)
/// the master checked and holds for the call (see `lifecycle::HELD`).
pub async fn forward_holding(
    s: &Server,
    host: &str,
    method: &str,
    args: &[Value],
    held: Option<(&str, &str, &str)>,
) -> Result<Value> {
    let (p, _, addr) = node_of(s, host)?;
    let mut params = vec![Value::from("")];
    params.extend_from_slice(args);
    let mut req = Vec::new();
    wire::jsonrpc::write_request(&mut req, 1, method, &params);
    if let Some((c, r, op)) = held {
        let mut v: serde_json::Value =
            serde_json::from_slice(&req).map_err(|e| crate::internal(format!("a forwarded call: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.insert(HELD_KEY.to_string(), serde_json::json!([c, r, op]));
        }
        req = serde_json::to_vec(&v).map_err(|e| crate::internal(format!("a forwarded call: {e}")))?;
    }
    tracing::info!(%method, %host, "running the call on the host that owns it");
    let out = p.call(&addr, &req, CALL_LIMIT).await.map_err(|e| {
        tracing::warn!(%method, "cannot forward the call: {e}");
        ApiError::CannotContactHost { host: host.to_string() }
    })?;
    answer_of(&out, host)
}

/// The value or error of another host's JSON-RPC response.
fn answer_of(out: &[u8], host: &str) -> Result<Value> {
    match wire::jsonrpc::parse_response(out) {
        Ok(wire::Outcome::Success(v)) => Ok(v),
        Ok(wire::Outcome::Failure(desc)) => Err(ApiError::from_wire(&desc)),
        Err(e) => Err(crate::internal(format!("the answer of {host}: {e:?}"))),
    }
}

/// The pool-internal message a member sends the master to learn about one
/// of its sessions (not part of the API).
pub const VOUCH: &str = "internal.session_vouch";

/// The pool's master host.
fn master_of(s: &Server) -> String {
    s.db.read().read(&s.pool, PO::MASTER).map(|r| r.into_string()).unwrap_or_default()
}

/// The pool-internal message a member sends the master about one of the
/// master's tasks that a transfer sent here updates: a question (does it
/// exist), a progress (a float), or the outcome (`{"success": v}` or
/// `{"failure": [...]}`). Tasks are each host's own; this keeps the one
/// the client watches on the master up to date.
pub const TASK_REPORT: &str = "internal.task_report";

/// Tell the master about one of its tasks (see [`TASK_REPORT`]); whether
/// the master has it cancelled.
pub async fn report_task(s: &Server, task: &str, report: Value) -> Result<bool> {
    let v = forward(s, &master_of(s), TASK_REPORT, &[Value::from(task), report]).await?;
    Ok(v.as_str() == Some("true"))
}

/// Check the session an HTTP request carries (a console, statistics): one
/// of this host's, or on a member one the master vouches for (xapi's
/// members accept the pool's sessions: clients reach consoles and RRDs on
/// the host that runs the VM with the session they got from the master).
pub async fn check_session(s: &Server, sid: &str) -> Result<()> {
    if s.sessions.honoured(s, sid) {
        return Ok(());
    }
    if !is_member(s) {
        return s.sessions.validate(s, sid);
    }
    match forward(s, &master_of(s), VOUCH, &[Value::from(sid)]).await {
        Ok(v) => {
            let vouched: crate::session::Vouched = serde_json::from_str(v.as_str().unwrap_or_default())
                .map_err(|e| crate::internal(format!("the master's answer about a session: {e}")))?;
            s.sessions.mirror(s, sid, &vouched)
        }
        Err(e) => {
            if s.db.read().get(&model::schema::CLASS_SESSION, sid).is_some() {
                crate::logged("dropping a session the master no longer vouches for", s.sessions.logout(s, sid));
            }
            tracing::info!(session = sid, "the master does not vouch for the session: {e}");
            Err(ApiError::SessionInvalid { handle: sid.to_string() })
        }
    }
}

/// Where a migrating guest's state is streamed to on the destination's
/// pool port (the VM's uuid follows).
pub const MIGRATE_STREAM: &str = "/pool/stream/migrate?vm=";

/// Take the streams other hosts open here: a migrating guest's state goes
/// into the domain waiting for it (made by the move's first step).
pub fn serve_streams(s: &Server) {
    let Some(p) = s.replica.get() else { return };
    let s = s.clone();
    p.serve_streams(Arc::new(move |path: String, conn: pooldb::PeerStream| {
        let s = s.clone();
        Box::pin(async move {
            let Some(uuid) = path.strip_prefix(MIGRATE_STREAM) else {
                tracing::warn!(path, "a pool stream on an unknown path, dropped");
                return;
            };
            if let Err(e) = s.backend.receive_stream(uuid, conn).await {
                tracing::error!(vm_uuid = uuid, "receiving a migrating guest failed: {e}");
            }
        })
    }));
}

/// A raw stream to another host of the pool (`path` under
/// `/pool/stream/`), on its pool port.
pub async fn open_stream(s: &Server, host: &str, path: &str) -> Result<pooldb::PeerStream> {
    let (p, _, addr) = node_of(s, host)?;
    p.open_stream(&addr, path).await.map_err(|e| {
        tracing::warn!(%host, path, "cannot open a stream to the host: {e}");
        ApiError::CannotContactHost { host: host.to_string() }
    })
}

/// The pool-internal message a host sends a new master to take its place
/// in the master's engine (`pool.emergency_reset_master`).
pub const REJOIN: &str = pooldb::REJOIN_METHOD;

/// `pool.emergency_reset_master` (or a new master's `recover_slaves`):
/// this host follows the master whose engine is at `master` (host:port): it
/// asks that master for a place in its engine, drops its own engine state
/// and restarts as a member, getting the pool's database from the master.
/// The pool secret is the credential, as xapi's members use it.
pub async fn reset_master(s: &Server, master: &str) -> Result<()> {
    let (Some(p), Some(m)) = (s.replica.get().cloned(), read_member(&s.cfg.data_dir).map_err(crate::internal)?) else {
        return Err(ApiError::OperationNotAllowed { reason: "this host is not in a pool".into() });
    };
    let (_, own) = engine_addr(&s.cfg);
    if master == own {
        return Err(ApiError::OperationNotAllowed { reason: "this host cannot follow itself".into() });
    }
    let params = [Value::from(""), Value::from(m.host_uuid.as_str()), Value::from(own.as_str())];
    let mut req = Vec::new();
    wire::jsonrpc::write_request(&mut req, 1, REJOIN, &params);
    let out = p.rejoin(master, &req).await.map_err(|e| {
        tracing::warn!(%master, "cannot reach the new master: {e}");
        ApiError::CannotContactHost { host: master.to_string() }
    })?;
    let v = answer_of(&out, master)?;
    let joined: pooldb::Membership = serde_json::from_str(v.as_str().unwrap_or_default())
        .map_err(|e| crate::internal(format!("the new master's answer: {e}")))?;
    let dir = pool_dir(&s.cfg.data_dir);
    for f in ENGINE_FILES {
        if let Err(e) = std::fs::remove_file(dir.join(f)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(crate::internal(format!("{}: {e}", dir.join(f).display())));
            }
        }
    }
    write_member(
        &s.cfg.data_dir,
        &Member { node_id: joined.node_id, secret: joined.secret, host_uuid: m.host_uuid, former_secret: None },
    )
    .map_err(crate::internal)?;
    tracing::warn!(%master, node = joined.node_id, "following the new pool master: restarting");
    crate::request_restart(Duration::from_millis(200));
    Ok(())
}

/// On the master: give host `host_uuid` (a host of this pool whose engine
/// is at `addr`) a place in the engine; what it must be told.
pub async fn readmit(s: &Server, host_uuid: &str, addr: &str) -> Result<pooldb::Membership> {
    if s.db.replicated() != Some(store::Role::Leader) {
        return Err(ApiError::HostIsSlave { master_address: master_address(s) });
    }
    if s.db.read().table(&model::schema::CLASS_HOST).by_uuid(host_uuid).is_none() {
        return Err(ApiError::UuidInvalid { r#type: "host".into(), uuid: host_uuid.to_string() });
    }
    let pool = s.replica.get().cloned().ok_or_else(|| crate::internal("no pool database"))?;
    let ip = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    if pool.node_at(ip).is_some() {
        return Err(ApiError::OperationNotAllowed { reason: format!("{addr} is already in the pool database") });
    }
    let joined = add_node(s, &pool, addr).await?;
    tracing::info!(host = host_uuid, node = joined.node_id, "a host of the pool follows this master again");
    Ok(joined)
}

/// `pool.recover_slaves` on a master after an emergency transition: every
/// other host of the pool that is not in this master's engine is told to
/// follow it; the hosts that were told.
pub async fn recover_slaves(s: &Server) -> Result<Vec<String>> {
    let Some(p) = s.replica.get().cloned() else { return Ok(vec![]) };
    // The hosts to recover hold the engine's secret from before the
    // emergency transition; without one, there is nobody to recover.
    let Some(former) = read_member(&s.cfg.data_dir).ok().flatten().and_then(|m| m.former_secret) else {
        return Ok(vec![]);
    };
    let (_, own) = engine_addr(&s.cfg);
    let hosts: Vec<(String, String)> = {
        let st = s.db.read();
        st.table(&model::schema::CLASS_HOST)
            .iter()
            .filter(|(h, _)| **h != s.host)
            .map(|(h, row)| (h.clone(), row.read(H::ADDRESS)))
            .collect()
    };
    let mut told = Vec::new();
    for (host, address) in hosts {
        if address.is_empty() || p.node_at(&address).is_some() {
            continue;
        }
        let addr = format!("{}:{}", crate::url_host(&address), s.cfg.pool_port);
        match p.tell_reset(&addr, &own, &former).await {
            Ok(()) => told.push(host),
            Err(e) => tracing::warn!(%host, "cannot tell the host to follow this master: {e}"),
        }
    }
    Ok(told)
}

/// `pool.emergency_transition_to_master` on a member whose master is gone
/// (with two hosts the member has no vote, so no election can replace the
/// master): the member restarts as the master of the same pool, from the
/// database it has. A master, or a lone host, has nothing to do.
pub async fn emergency_transition(s: &Server) -> Result<()> {
    if !is_member(s) {
        return Ok(());
    }
    let m =
        read_member(&s.cfg.data_dir).map_err(crate::internal)?.ok_or_else(|| crate::internal("no membership file"))?;
    let dump = s.db.dump();
    let dir = pool_dir(&s.cfg.data_dir);
    store::wal::write_atomic(&dir.join(REFOUND_FILE), &dump).map_err(|e| crate::internal(e.to_string()))?;
    // A new secret keeps the old engine's messages out of the new one; the
    // old secret stays good for recover_slaves' requests to follow.
    let secret = model::new_uuid() + &model::new_uuid();
    let m = Member { node_id: 1, secret, host_uuid: m.host_uuid, former_secret: Some(m.secret) };
    write_member(&s.cfg.data_dir, &m).map_err(crate::internal)?;
    tracing::warn!("emergency transition to master: restarting");
    crate::request_restart(Duration::from_secs(1));
    Ok(())
}

/// `pool.designate_new_master` on the master: the engine's leadership goes
/// to that host; every host restarts in its new role, as xapi's do.
pub async fn designate(s: &Server, host: &str) -> Result<()> {
    if s.db.read().get(&model::schema::CLASS_HOST, host).is_none() {
        return Err(crate::handle_invalid(&model::schema::CLASS_HOST, host));
    }
    if host == s.host {
        return Ok(());
    }
    let (p, id, _) = node_of(s, host)?;
    p.hand_over(id).await.map_err(crate::internal)
}

/// How often members say they are alive, and how long the master waits
/// before it marks a silent one not live (xapi: 30 s and 10 min; the
/// issue asks for 30 s at most).
const HEARTBEAT: Duration = Duration::from_secs(4);
const PRESUMED_DEAD: Duration = Duration::from_secs(16);

/// Liveness: members heartbeat to the master; the master keeps each host's
/// `host_metrics.live` in step (and makes the pool record name it master).
pub fn spawn_liveness(s: &Server) {
    let Some(p) = s.replica.get().cloned() else { return };
    let s = s.clone();
    match s.db.replicated() {
        Some(store::Role::Follower) => {
            let me = s.db.read().read(&s.host, H::UUID).unwrap_or_default();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = p.heartbeat(&me).await {
                        tracing::debug!("heartbeat to the pool master: {e}");
                    }
                    tokio::time::sleep(HEARTBEAT).await;
                }
            });
        }
        Some(store::Role::Leader) => {
            tokio::spawn(async move {
                if let Err(e) = claim_master(&s).await {
                    tracing::error!("cannot record this host as the pool's master: {e}");
                }
                if let Err(e) = p.voters_all().await {
                    tracing::warn!("{e}");
                }
                let started = std::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if let Err(e) = mark_liveness(&s, &p, started).await {
                        tracing::warn!("cannot record the hosts' liveness: {e}");
                    }
                    if let Err(e) = p.balance_voters(&live_nodes(&s, &p, started)).await {
                        tracing::warn!("{e}");
                    }
                }
            });
        }
        None => {}
    }
}

/// The engine's leader is the pool's master (after a failover too).
async fn claim_master(s: &Server) -> Result<()> {
    let host = s.host.clone();
    let pool = s.pool.clone();
    let ((), c) = s.db.write(|tx| {
        if tx.read(&pool, PO::MASTER).map(|m| m.as_str() != host).unwrap_or(false) {
            tracing::warn!("this host is the pool's master now");
            tx.put(&pool, PO::MASTER, model::typed::Ref::new(host.clone()));
        }
        Ok::<_, ApiError>(())
    })?;
    s.db.durable(c).await.map_err(|e| crate::internal(e.to_string()))
}

/// Whether the host `uuid` sent a heartbeat within PRESUMED_DEAD (a host
/// not heard from since the master started gets that long from the start).
fn heard_lately(
    heard: &HashMap<String, std::time::Instant>,
    uuid: &str,
    started: std::time::Instant,
    now: std::time::Instant,
) -> bool {
    now.duration_since(*heard.get(uuid).unwrap_or(&started)) < PRESUMED_DEAD
}

/// The engine nodes of the hosts heard from lately (this one included).
fn live_nodes(s: &Server, p: &pooldb::Pool, started: std::time::Instant) -> std::collections::BTreeSet<u64> {
    let heard = p.heard();
    let now = std::time::Instant::now();
    let st = s.db.read();
    let mut live = std::collections::BTreeSet::from([p.id]);
    for (_, row) in st.table(&model::schema::CLASS_HOST).iter() {
        if heard_lately(&heard, &row.read(H::UUID), started, now) {
            if let Some((id, _)) = p.node_at(&row.read(H::ADDRESS)) {
                live.insert(id);
            }
        }
    }
    live
}

async fn mark_liveness(s: &Server, p: &pooldb::Pool, started: std::time::Instant) -> Result<()> {
    let heard = p.heard();
    let now = std::time::Instant::now();
    let changes: Vec<(String, bool)> = {
        let st = s.db.read();
        st.table(&model::schema::CLASS_HOST)
            .iter()
            .filter_map(|(h, row)| {
                let alive = *h == s.host || heard_lately(&heard, &row.read(H::UUID), started, now);
                let metrics = row.read(H::METRICS);
                let was = st.read(metrics.as_str(), model::types::fields::host_metrics::LIVE)?;
                (was != alive).then(|| (metrics.as_str().to_string(), alive))
            })
            .collect()
    };
    if changes.is_empty() {
        return Ok(());
    }
    let ((), c) = s.db.write(|tx| {
        for (m, alive) in &changes {
            tracing::warn!(host_metrics = %m, live = alive, "a host's liveness changed");
            tx.put(m, model::types::fields::host_metrics::LIVE, *alive);
        }
        Ok::<_, ApiError>(())
    })?;
    s.db.durable(c).await.map_err(|e| crate::internal(e.to_string()))
}

/// A member of a pool (not its master).
pub fn is_member(s: &Server) -> bool {
    s.db.replicated() == Some(store::Role::Follower)
}

/// Before a member serves a call itself (one on its Unix socket) or an
/// HTTP request (a transfer, a console, statistics): its
/// replica holds everything the master had committed when asked, so what a
/// client did through the master a moment ago is seen here too (xapi's
/// members read the master's database). Without the master the call is
/// served from what this host has.
pub async fn read_barrier(s: &Server) {
    let Some(p) = s.replica.get() else { return };
    if let Err(e) = p.catch_up(Duration::from_secs(5)).await {
        tracing::warn!("serving a local call from this member's copy of the pool database, which may lag: {e}");
    }
}

/// The master's address, as HOST_IS_SLAVE gives it.
pub fn master_address(s: &Server) -> String {
    let st = s.db.read();
    let master = st.read(&s.pool, PO::MASTER).map(|r| r.as_str().to_string()).unwrap_or_default();
    st.read(&master, H::ADDRESS).unwrap_or_default()
}

/// The messages a member runs itself over TCP (xapi's emergency calls).
pub fn runs_on_member(class: &str, msg: &str) -> bool {
    matches!(
        (class, msg),
        ("pool", "emergency_transition_to_master" | "emergency_reset_master")
            | ("session", "slave_local_login_with_password" | "local_logout")
            | ("host", "is_in_emergency_mode" | "get_servertime" | "shutdown_agent")
    )
}

/// A fingerprint of this binary's schema: records name classes and fields
/// by position, so every host of a pool needs the same one.
pub fn schema_id() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in CLASSES.iter() {
        for b in c.name.bytes().chain(c.fields.iter().flat_map(|f| f.name.bytes().chain([0]))) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

// ------------------------------------------------------------------ joining

#[derive(Serialize, Deserialize)]
struct JoinRequest {
    user: String,
    password: String,
    /// Where the master reaches the joiner's engine (host:port).
    addr: String,
    schema: String,
    /// The joiner's internal certificate (PEM): what it presents on the
    /// engine's port.
    #[serde(default)]
    internal_cert: String,
}

#[derive(Serialize, Deserialize)]
enum JoinAnswer {
    Admitted(pooldb::Membership),
    Refused(Vec<String>),
}

/// Where this host's engine listens, and the address others reach it at.
pub fn engine_addr(cfg: &crate::Config) -> (std::net::SocketAddr, String) {
    let ip: std::net::IpAddr = cfg.address.parse().unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    (std::net::SocketAddr::new(ip, cfg.pool_port), format!("{}:{}", cfg.address, cfg.pool_port))
}

/// `pool.join` on the joining host.
pub async fn join(s: &Server, master_address: &str, user: &str, password: &str) -> Result<()> {
    // A member (reached over its Unix socket): xapi forwards the call to the
    // master, which finds it is joining itself.
    if is_member(s) {
        return Err(ApiError::OperationNotAllowed { reason: "Host is already part of a pool".into() });
    }
    // xapi's port unless the address names one; HTTPS either way: the
    // request carries the caller's password, the answer the pool secret.
    let target =
        if master_address.contains(':') { master_address.to_string() } else { format!("{master_address}:443") };
    let internal = crate::certs::internal(&s.cfg.data_dir, &s.cfg.hostname, &s.cfg.address).map_err(crate::internal)?;
    let req = JoinRequest {
        user: user.into(),
        password: password.into(),
        addr: engine_addr(&s.cfg).1,
        schema: schema_id(),
        internal_cert: internal.pem,
    };
    let mut body = serde_json::to_vec(&req).map_err(|e| crate::internal(e.to_string()))?;
    body.push(b'\n');
    let db = s.clone();
    body.extend(tokio::task::spawn_blocking(move || db.db.dump()).await.map_err(|e| crate::internal(e.to_string()))?);
    let tls = pooldb::Tls::any_server().map_err(crate::internal)?;
    let (code, out) =
        pooldb::post(&tls, &target, "/pool/join", "", &body, Duration::from_secs(60)).await.map_err(|e| {
            tracing::warn!("pool.join: cannot reach {target}: {e}");
            ApiError::JoiningHostConnectionFailed
        })?;
    if code != 200 {
        tracing::warn!(code, "pool.join: {target} answered {}", String::from_utf8_lossy(&out[..out.len().min(200)]));
        return Err(ApiError::JoiningHostServiceFailed);
    }
    let m = match serde_json::from_slice::<JoinAnswer>(&out) {
        Ok(JoinAnswer::Admitted(m)) => m,
        Ok(JoinAnswer::Refused(desc)) => return Err(ApiError::from_wire(&desc)),
        Err(e) => {
            tracing::warn!("pool.join: {target} gave an answer that is not ours: {e}");
            return Err(ApiError::JoiningHostServiceFailed);
        }
    };
    let host_uuid = s.db.read().read(&s.host, H::UUID).unwrap_or_default();
    write_member(&s.cfg.data_dir, &Member { node_id: m.node_id, secret: m.secret, host_uuid, former_secret: None })
        .map_err(crate::internal)?;
    tracing::warn!(master = %target, "joined a pool: restarting as a member");
    crate::request_restart(Duration::from_secs(2));
    Ok(())
}

static JOINS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /pool/join` on the master: the answer's JSON.
pub async fn admit(s: &Server, body: &[u8]) -> Vec<u8> {
    let answer = match admit_inner(s, body).await {
        Ok(m) => JoinAnswer::Admitted(m),
        Err(e) => {
            tracing::info!("refused a host's request to join: {e}");
            let mut d = vec![e.code().to_string()];
            d.extend(e.params());
            JoinAnswer::Refused(d)
        }
    };
    serde_json::to_vec(&answer).unwrap_or_default()
}

async fn admit_inner(s: &Server, body: &[u8]) -> Result<pooldb::Membership> {
    let nl = body.iter().position(|b| *b == b'\n').ok_or_else(|| crate::internal("a join request without a header"))?;
    let req: JoinRequest = serde_json::from_slice(&body[..nl]).map_err(|e| crate::internal(e.to_string()))?;
    if is_member(s) {
        return Err(ApiError::HostIsSlave { master_address: master_address(s) });
    }
    // The caller's credentials, checked as a login is (same errors, same
    // throttling); the session is not kept.
    let spec = crate::session::LoginSpec {
        user: &req.user,
        password: &req.password,
        originator: "pool.join",
        local: false,
        pool: true,
    };
    let session = s.sessions.login(s, spec).await?;
    crate::logged("logging the join's session out", s.sessions.logout(s, &session));
    let joiner =
        store::read_dump(&body[nl + 1..]).map_err(|e| crate::internal(format!("the joiner's database: {e}")))?;
    let _one_at_a_time = JOINS.lock().await;
    let jhost = pre_join_checks(s, &joiner, &req)?;
    let internal = crate::certs::describe_pem(&req.internal_cert).ok_or_else(|| {
        tracing::warn!("a host asked to join without a usable internal certificate");
        ApiError::JoiningHostServiceFailed
    })?;
    if s.replica.get().is_none() {
        found(s).await?;
    }
    let pool = s.replica.get().cloned().ok_or_else(|| crate::internal("the pool database did not start"))?;
    let ((), c) = s.db.write(|tx| {
        carry(tx, &joiner, &jhost)?;
        shared_pbds(tx, &jhost);
        // The certificate the engine will accept from the joiner.
        crate::certs::put_row(tx, &jhost, model::types::CertificateType::HostInternal, internal.clone());
        Ok::<_, ApiError>(())
    })?;
    s.db.durable(c).await.map_err(|e| crate::internal(e.to_string()))?;
    add_node(s, &pool, &req.addr).await
}

/// Give the host whose engine is at `addr` a place in the engine: a learner
/// now, a voter once it has caught up (if the pool wants one more); what
/// it must be told.
async fn add_node(s: &Server, pool: &Arc<pooldb::Pool>, addr: &str) -> Result<pooldb::Membership> {
    let id = pool.next_id();
    pool.admit(id, addr).await.map_err(crate::internal)?;
    let p2 = pool.clone();
    tokio::spawn(async move {
        if let Err(e) = p2.promote(id, Duration::from_secs(300)).await {
            tracing::warn!(node = id, "the host stays a learner of the pool database: {e}");
        }
    });
    let secret = read_member(&s.cfg.data_dir).ok().flatten().map(|m| m.secret).unwrap_or_default();
    Ok(pooldb::Membership { node_id: id, secret })
}

/// Make this lone host the master of a new pool.
async fn found(s: &Server) -> Result<()> {
    let secret = model::new_uuid() + &model::new_uuid();
    let host_uuid = s.db.read().read(&s.host, H::UUID).unwrap_or_default();
    let m = Member { node_id: 1, secret: secret.clone(), host_uuid, former_secret: None };
    let (bind, addr) = engine_addr(&s.cfg);
    // The engine's files first, then the membership file: a crash between
    // the two leaves a lone host with an unused pool directory.
    let dir = pool_dir(&s.cfg.data_dir);
    let _ = std::fs::remove_dir_all(&dir);
    let internal = crate::certs::internal(&s.cfg.data_dir, &s.cfg.hostname, &s.cfg.address).map_err(crate::internal)?;
    let tls = crate::certs::engine_tls(s.db.clone(), internal).map_err(crate::internal)?;
    let pool = pooldb::Pool::open(&dir, s.db.clone(), 1, &secret, tls).await.map_err(crate::internal)?;
    pool.listen(bind).await.map_err(crate::internal)?;
    pool.found(&addr).await.map_err(crate::internal)?;
    write_member(&s.cfg.data_dir, &m).map_err(crate::internal)?;
    if let Some(f) = s.pool_calls.get() {
        pool.serve_calls(f.clone());
    }
    let _ = s.replica.set(pool);
    watch_role(s);
    spawn_liveness(s);
    serve_streams(s);
    tracing::info!("this host is now the master of a pool");
    Ok(())
}

fn hosts_of(st: &State) -> Vec<String> {
    st.table(&model::schema::CLASS_HOST).iter().map(|(r, _)| r.clone()).collect()
}

fn sv(row: &Row, key: &str) -> String {
    row.read(H::SOFTWARE_VERSION).get(key).cloned().unwrap_or_default()
}

/// xapi's pre-join checks that apply here, in its order; the joiner's host.
fn pre_join_checks(s: &Server, j: &State, req: &JoinRequest) -> Result<String> {
    let st = s.db.read();
    let jhosts = hosts_of(j);
    let Some(jhost) = jhosts.first().cloned() else {
        return Err(crate::internal("the joiner's database has no host"));
    };
    let jrow = j.get(&model::schema::CLASS_HOST, &jhost).cloned().ok_or_else(|| crate::internal("no host row"))?;
    let my_host = st.get(&model::schema::CLASS_HOST, &s.host).cloned().ok_or_else(|| crate::internal("no host row"))?;
    let mgmt = |state: &State, h: &str| {
        state
            .table(&model::schema::CLASS_PIF)
            .iter()
            .any(|(_, p)| p.read(P::HOST).as_str() == h && p.read(P::MANAGEMENT))
    };
    if !mgmt(j, &jhost) {
        return Err(ApiError::HostStillBooting);
    }
    // Joining itself, or a host already in this pool.
    let juuid = jrow.read(H::UUID);
    if juuid == my_host.read(H::UUID) || st.table(&model::schema::CLASS_HOST).by_uuid(&juuid).is_some() {
        let reason = if hosts_of(&st).len() > 1 || jhosts.len() > 1 {
            "Host is already part of a pool"
        } else {
            "Host cannot become slave of itself"
        };
        return Err(ApiError::OperationNotAllowed { reason: reason.into() });
    }
    if jhosts.len() > 1 {
        return Err(ApiError::JoiningHostCannotBeMasterOfOtherHosts);
    }
    let vms = j.table(&model::schema::CLASS_VM);
    if vms.iter().any(|(_, v)| !v.read(VM::IS_CONTROL_DOMAIN) && v.read(VM::POWER_STATE) == VmPowerState::Running) {
        return Err(ApiError::JoiningHostCannotHaveRunningVms);
    }
    if vms.iter().any(|(_, v)| !v.read(VM::IS_CONTROL_DOMAIN) && !v.read(VM::CURRENT_OPERATIONS).is_empty()) {
        return Err(ApiError::JoiningHostCannotHaveVmsWithCurrentOperations);
    }
    for key in ["platform_version", "product_brand"] {
        if sv(&jrow, key) != sv(&my_host, key) {
            return Err(ApiError::HostsNotCompatible);
        }
    }
    let shared = j.table(&model::schema::CLASS_SR).iter().any(|(_, r)| {
        r.read(SR::SHARED) && r.read(SR::OTHER_CONFIG).get("xenserver_tools_sr").map(String::as_str) != Some("true")
    });
    if shared {
        return Err(ApiError::JoiningHostCannotContainSharedSrs);
    }
    if !j.table(&model::schema::CLASS_BOND).is_empty() {
        return Err(ApiError::PoolJoiningHostHasBonds);
    }
    if !j.table(&model::schema::CLASS_TUNNEL).is_empty() {
        return Err(ApiError::PoolJoiningHostHasTunnels);
    }
    let vlans = j.table(&model::schema::CLASS_PIF).iter().any(|(_, p)| p.read(P::VLAN) >= 0 && !p.read(P::MANAGEMENT));
    if vlans {
        return Err(ApiError::PoolJoiningHostHasNonManagementVlans);
    }
    let api = |r: &Row| format!("{}.{}", r.read(H::API_VERSION_MAJOR), r.read(H::API_VERSION_MINOR));
    if api(&jrow) != api(&my_host) {
        return Err(ApiError::PoolJoiningHostMustHaveSameApiVersion {
            host_api_version: api(&jrow),
            master_api_version: api(&my_host),
        });
    }
    if req.schema != schema_id() {
        return Err(ApiError::PoolJoiningHostMustHaveSameDbSchema {
            host_db_schema: req.schema.clone(),
            master_db_schema: schema_id(),
        });
    }
    Ok(jhost)
}

/// A PBD on `host` for each shared SR of the pool that has none there (the
/// device configuration of one it has elsewhere), as xapi gives a new
/// member the pool's shared storage; the member plugs them when it starts.
fn shared_pbds(tx: &mut store::Txn, host: &str) {
    use model::schema::{CLASS_PBD, CLASS_SR};
    let st = tx.state();
    let mut todo = Vec::new();
    for (sr, row) in st.table(&CLASS_SR).iter() {
        if !row.read(SR::SHARED)
            || row.read(SR::OTHER_CONFIG).get("xenserver_tools_sr").map(String::as_str) == Some("true")
        {
            continue;
        }
        let pbds: Vec<&Row> =
            st.table(&CLASS_PBD).iter().map(|(_, p)| &**p).filter(|p| p.read(PBD::SR).as_str() == sr).collect();
        if pbds.iter().any(|p| p.read(PBD::HOST).as_str() == host) {
            continue;
        }
        if let Some(p) = pbds.first() {
            todo.push((sr.clone(), p.get(PBD::DEVICE_CONFIG.index).clone()));
        }
    }
    for (sr, dc) in todo {
        let mut row = crate::rows::new_row(PBD::UUID);
        row.write(PBD::HOST, Ref::new(host));
        row.write(PBD::SR, Ref::new(sr));
        // As the other host's PBD has it, in its key order.
        row.fields[PBD::DEVICE_CONFIG.index] = dc;
        row.write(PBD::CURRENTLY_ATTACHED, false);
        tx.insert(&model::new_ref(), row);
    }
}

/// The joiner's own objects, copied into the pool database: its host with
/// its metrics and CPUs, its NICs (their networks matched to the pool's by
/// bridge, as xapi matches physical networks), its local SRs with their
/// PBDs and disks, its control domain and its VMs (not the default
/// templates: the pool has its own). References to anything left behind
/// become null.
fn carry(tx: &mut store::Txn, j: &State, jhost: &str) -> Result<()> {
    use model::schema::*;
    let mut take: HashMap<&'static str, Vec<String>> = HashMap::new();
    let add = |c: &'static ClassDef, r: &str, take: &mut HashMap<&'static str, Vec<String>>| {
        if r != model::NULL_REF && j.get(c, r).is_some() {
            take.entry(c.name).or_default().push(r.to_string());
        }
    };
    let hrow = j.get(&CLASS_HOST, jhost).cloned().ok_or_else(|| crate::internal("no host row"))?;
    add(&CLASS_HOST, jhost, &mut take);
    add(&CLASS_HOST_METRICS, hrow.read(H::METRICS).as_str(), &mut take);
    for (r, row) in j.table(&CLASS_HOST_CPU).iter() {
        if row.read(HC::HOST).as_str() == jhost {
            add(&CLASS_HOST_CPU, r, &mut take);
        }
    }
    // Networks: the pool's own where the bridge matches.
    let mut remap: HashMap<String, String> = HashMap::new();
    let pool_nets: HashMap<String, String> =
        tx.state().table(&CLASS_NETWORK).iter().map(|(r, row)| (row.read(N::BRIDGE), r.clone())).collect();
    for (r, row) in j.table(&CLASS_NETWORK).iter() {
        match pool_nets.get(&row.read(N::BRIDGE)) {
            Some(p) => {
                remap.insert(r.clone(), p.clone());
            }
            None => add(&CLASS_NETWORK, r, &mut take),
        }
    }
    for (r, row) in j.table(&CLASS_PIF).iter() {
        if row.read(P::HOST).as_str() == jhost {
            add(&CLASS_PIF, r, &mut take);
            add(&CLASS_PIF_METRICS, row.read(P::METRICS).as_str(), &mut take);
        }
    }
    // Local SRs come with their PBDs; the tools SR is the pool's, which
    // gets a PBD on the new host.
    let is_tools = |row: &Row| row.read(SR::OTHER_CONFIG).get("xenserver_tools_sr").map(String::as_str) == Some("true");
    let pool_tools = tx.state().table(&CLASS_SR).iter().find(|(_, row)| is_tools(row)).map(|(r, _)| r.clone());
    let mut srs = HashSet::new();
    for (r, row) in j.table(&CLASS_PBD).iter() {
        if row.read(PBD::HOST).as_str() != jhost {
            continue;
        }
        let sr = row.read(PBD::SR);
        let Some(srow) = j.get(&CLASS_SR, sr.as_str()) else { continue };
        if !srow.read(SR::SHARED) {
            add(&CLASS_PBD, r, &mut take);
            add(&CLASS_SR, sr.as_str(), &mut take);
            srs.insert(sr.as_str().to_string());
        } else if let (true, Some(t)) = (is_tools(srow), &pool_tools) {
            remap.insert(sr.as_str().to_string(), t.clone());
            add(&CLASS_PBD, r, &mut take);
        }
    }
    for (r, row) in j.table(&CLASS_VDI).iter() {
        if srs.contains(row.read(VDI::SR).as_str()) {
            add(&CLASS_VDI, r, &mut take);
        }
    }
    let mut vms = HashSet::new();
    for (r, row) in j.table(&CLASS_VM).iter() {
        let default_template = row.read(VM::IS_A_TEMPLATE)
            && row.read(VM::OTHER_CONFIG).get("default_template").map(String::as_str) == Some("true");
        let foreign_dom0 = row.read(VM::IS_CONTROL_DOMAIN) && row.read(VM::RESIDENT_ON).as_str() != jhost;
        if default_template || foreign_dom0 {
            continue;
        }
        add(&CLASS_VM, r, &mut take);
        add(&CLASS_VM_METRICS, row.read(VM::METRICS).as_str(), &mut take);
        add(&CLASS_VM_GUEST_METRICS, row.read(VM::GUEST_METRICS).as_str(), &mut take);
        vms.insert(r.clone());
    }
    for (r, row) in j.table(&CLASS_VBD).iter() {
        if vms.contains(row.read(VBD::VM).as_str()) {
            add(&CLASS_VBD, r, &mut take);
            add(&CLASS_VBD_METRICS, row.read(VBD::METRICS).as_str(), &mut take);
        }
    }
    for (r, row) in j.table(&CLASS_VIF).iter() {
        if vms.contains(row.read(VIF::VM).as_str()) {
            add(&CLASS_VIF, r, &mut take);
        }
    }
    for (r, row) in j.table(&CLASS_CONSOLE).iter() {
        if vms.contains(row.read(CO::VM).as_str()) {
            add(&CLASS_CONSOLE, r, &mut take);
        }
    }
    // Its server certificate's row (its internal one the master writes from
    // the join request).
    for (r, row) in j.table(&CLASS_CERTIFICATE).iter() {
        if row.read(CE::HOST).as_str() == jhost && row.read(CE::TYPE) == model::types::CertificateType::Host {
            add(&CLASS_CERTIFICATE, r, &mut take);
        }
    }
    let carried: HashSet<&str> = take.values().flatten().map(String::as_str).collect();
    let mut rows = Vec::new();
    {
        let st = tx.state();
        let keep = |v: &str| {
            if let Some(p) = remap.get(v) {
                return Some(p.clone());
            }
            (carried.contains(v) || st.class_of(v).is_some()).then(|| v.to_string())
        };
        for (cname, refs) in &take {
            let Some(c) = CLASSES.iter().find(|c| c.name == *cname) else { continue };
            for r in refs {
                let Some(row) = j.get(c, r) else { continue };
                let mut row = (**row).clone();
                for (i, f) in c.fields.iter().enumerate() {
                    fix_refs(&mut row.fields[i], f.ty, &keep);
                }
                rows.push((r.clone(), row));
            }
        }
    }
    for (r, row) in rows {
        tx.insert(&r, row);
    }
    Ok(())
}

/// Rewrite the references in `v` (of type `ty`): `keep` gives the new
/// reference, or None for one that must go (null, or dropped from a set).
fn fix_refs(v: &mut Value, ty: &Type, keep: &dyn Fn(&str) -> Option<String>) {
    match (ty, v) {
        (Type::Ref(_), Value::String(s)) if s != model::NULL_REF => {
            *s = keep(s).unwrap_or_else(|| model::NULL_REF.to_string());
        }
        (Type::Set(Type::Ref(_)), Value::Array(items)) => {
            items.retain_mut(|it| match it {
                Value::String(s) => match keep(s) {
                    Some(n) => {
                        *s = n;
                        true
                    }
                    None => false,
                },
                _ => true,
            });
        }
        _ => {}
    }
}

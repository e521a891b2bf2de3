//! The engine's log, vote and snapshot on disk, and the state machine: the
//! host's store.
//!
//! Files under the pool directory:
//! * `log`: one JSON line per change, fsynced before openraft is told:
//!   an entry, a truncation ("everything from index i is gone") or a purge
//!   ("everything up to this log id is in the snapshot"). Rewritten whole
//!   after a purge.
//! * `vote`: the latest value, replaced atomically.
//! * `committed`: the latest commit point, written over in place (once per
//!   commit: a file replaced each time cost an open and a rename per
//!   entry); one that does not parse is only a slower restart.
//! * `snapshot`: a JSON line of metadata, then the snapshot's data: a JSON
//!   line naming the commits the dump holds (see [`Covers`]), then the dump.
//!
//! The state machine is not saved apart: a host that starts rebuilds its
//! store from the snapshot and the committed entries after it.

// openraft's traits return its own (large) StorageError; the helpers here
// share it rather than convert at every call.
#![allow(clippy::result_large_err)]

use crate::{lock, Batch, Tc};
use openraft::storage::{LogState, RaftLogReader, RaftSnapshotBuilder, RaftStorage, Snapshot};
use openraft::{Entry, EntryPayload, LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use store::Db;

type Sto = StorageError<u64>;
type Meta = SnapshotMeta<u64, openraft::BasicNode>;

/// A line of the log file: read with owned entries, written with borrowed
/// ones (`LogLine<&Entry<Tc>>`).
#[derive(Serialize, Deserialize)]
enum LogLine<E = Entry<Tc>> {
    #[serde(rename = "e")]
    Entry(E),
    #[serde(rename = "t")]
    TruncateFrom(u64),
    #[serde(rename = "p")]
    Purged(LogId<u64>),
}

type LineOut<'a> = LogLine<&'a Entry<Tc>>;

#[derive(Default)]
struct Machine {
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, openraft::BasicNode>,
    /// The snapshot this store was rebuilt from also holds these commits
    /// of entries after its point (see [`Covers`]).
    covers: Option<Covers>,
}

/// Which commits beyond its log point a snapshot's dump holds. A host
/// applies the others' entries under the machine lock, so its dump holds
/// exactly the entries up to its point; but the leader's store is ahead of
/// the log (its commits apply at once, then become entries), so its dump
/// also holds its own commits up to generation `gen`. Records change fields
/// of rows, so those must not be applied again over the dump.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Covers {
    origin: String,
    gen: u64,
}

/// A snapshot's data: the covers line, then the dump. (A dump alone, as an
/// earlier version wrote, covers nothing beyond its point.)
fn snapshot_data(covers: &Covers, dump: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(covers).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(dump);
    out
}

fn split_data(data: &[u8]) -> Result<(Option<Covers>, &[u8]), String> {
    if data.first() != Some(&b'{') {
        return Ok((None, data));
    }
    let nl = data.iter().position(|b| *b == b'\n').ok_or("the pool snapshot's data has no covers line")?;
    let c: Covers = serde_json::from_slice(&data[..nl]).map_err(|e| format!("the pool snapshot's covers line: {e}"))?;
    Ok((Some(c), &data[nl + 1..]))
}

struct Log {
    entries: BTreeMap<u64, Entry<Tc>>,
    purged: Option<LogId<u64>>,
    file: File,
    /// Lines are encoded here, one append after another: its pages stay
    /// mapped (a fresh buffer per append cost the kernel's page zeroing).
    buf: Vec<u8>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    /// This host's node id, and whether the latest membership in the log
    /// makes it a voter: a learner's log need not reach the disk before it
    /// acknowledges (no commit waits for it, and a learner that lost its
    /// tail gets it again from the leader), which spares the disk one sync
    /// per entry per learner (59 of them in a pool of 64).
    id: u64,
    voter: std::sync::atomic::AtomicBool,
    pub(crate) db: Arc<Db>,
    /// This run of the process: entries it proposed itself are already in
    /// its store and are not applied again.
    pub(crate) boot: String,
    log: Mutex<Log>,
    vote: Mutex<Option<Vote<u64>>>,
    committed: Mutex<Option<LogId<u64>>>,
    committed_file: Mutex<std::fs::File>,
    machine: Mutex<Machine>,
    snapshot: Mutex<Option<(Meta, Vec<u8>)>>,
    /// The index of the last entry applied to the store, for writers that
    /// wait to see their own change.
    applied: (Mutex<u64>, Condvar),
    pub(crate) applied_tx: tokio::sync::watch::Sender<u64>,
}

/// The engine's storage (log and state machine together; openraft's
/// adaptor splits them).
#[derive(Clone)]
pub struct Store(pub(crate) Arc<Shared>);

fn io<E: std::error::Error + 'static>(e: E) -> Sto {
    StorageIOError::write(&e).into()
}

fn other(msg: String) -> Sto {
    io(std::io::Error::other(msg))
}

/// The length the commit point's file is written at.
const COMMITTED_LEN: usize = 160;

fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl Store {
    /// Open (or create) the files in `dir` and rebuild `db` from the
    /// snapshot; the committed entries after it are applied by the engine.
    pub fn open(dir: &Path, db: Arc<Db>, boot: String, id: u64) -> Result<Store, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut machine = Machine::default();
        let mut snapshot = None;
        let snap_path = dir.join("snapshot");
        match std::fs::read(&snap_path) {
            Ok(bytes) => {
                let nl = bytes.iter().position(|b| *b == b'\n').ok_or("the pool snapshot has no header")?;
                let meta: Meta = serde_json::from_slice(&bytes[..nl]).map_err(|e| format!("pool snapshot: {e}"))?;
                let data = bytes[nl + 1..].to_vec();
                let (covers, dump) = split_data(&data)?;
                db.install(dump).map_err(|e| format!("pool snapshot: {e}"))?;
                machine.applied = meta.last_log_id;
                machine.membership = meta.last_membership.clone();
                machine.covers = covers;
                snapshot = Some((meta, data));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", snap_path.display())),
        }
        let log_path = dir.join("log");
        let mut entries = BTreeMap::new();
        let mut purged = None;
        if let Ok(f) = File::open(&log_path) {
            for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line.map_err(|e| format!("{}: {e}", log_path.display()))?;
                let parsed: LogLine = match serde_json::from_str(&line) {
                    Ok(l) => l,
                    // A line cut short by a crash is the last one; it was
                    // never acknowledged (the fsync did not return).
                    Err(e) => {
                        tracing::warn!(line = n + 1, "the pool log ends with a partial line, ignored: {e}");
                        break;
                    }
                };
                match parsed {
                    LogLine::Entry(e) => {
                        entries.insert(e.log_id.index, e);
                    }
                    LogLine::TruncateFrom(i) => {
                        entries.split_off(&i);
                    }
                    LogLine::Purged(id) => {
                        entries = entries.split_off(&(id.index + 1));
                        purged = Some(id);
                    }
                }
            }
        }
        if purged.is_none() {
            purged = snapshot.as_ref().and_then(|(m, _): &(Meta, Vec<u8>)| m.last_log_id);
            if let Some(p) = purged {
                entries = entries.split_off(&(p.index + 1));
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let vote = read_json(&dir.join("vote"))?;
        let committed_path = dir.join("committed");
        let mut committed: Option<LogId<u64>> = read_json(&committed_path).unwrap_or_else(|e| {
            // Torn by a crash mid-write: the leader tells the point again.
            tracing::warn!("the pool's saved commit point is unreadable, starting without it: {e}");
            None
        });
        let committed_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&committed_path)
            .map_err(|e| format!("{}: {e}", committed_path.display()))?;
        // A learner's unsynced tail may be gone after a power loss: never
        // claim more committed than the log and snapshot hold.
        let last = entries.values().next_back().map(|e| e.log_id).or(purged);
        if committed.is_some_and(|c| last.is_none_or(|l| c.index > l.index)) {
            tracing::warn!(
                ?committed,
                ?last,
                "the pool log is shorter than its commit point: the leader resends the rest"
            );
            committed = last;
        }
        let membership = entries
            .values()
            .rev()
            .find_map(|e| match &e.payload {
                EntryPayload::Membership(m) => Some(m.clone()),
                _ => None,
            })
            .or_else(|| Some(machine.membership.membership().clone()).filter(|m| m.nodes().next().is_some()));
        let voter = membership.is_none_or(|m| m.voter_ids().any(|v| v == id));
        let idx = machine.applied.map(|l| l.index).unwrap_or(0);
        Ok(Store(Arc::new(Shared {
            dir: dir.to_path_buf(),
            id,
            voter: std::sync::atomic::AtomicBool::new(voter),
            db,
            boot,
            log: Mutex::new(Log { entries, purged, file, buf: Vec::new() }),
            vote: Mutex::new(vote),
            committed: Mutex::new(committed),
            committed_file: Mutex::new(committed_file),
            machine: Mutex::new(machine),
            snapshot: Mutex::new(snapshot),
            applied: (Mutex::new(idx), Condvar::new()),
            applied_tx: tokio::sync::watch::channel(idx).0,
        })))
    }

    fn append_lines(&self, lines: &[LineOut], sync: bool) -> Result<(), Sto> {
        let mut guard = lock(&self.0.log);
        let log = &mut *guard;
        log.buf.clear();
        for l in lines {
            serde_json::to_writer(&mut log.buf, l).map_err(io)?;
            log.buf.push(b'\n');
        }
        log.file.write_all(&log.buf).map_err(io)?;
        if log.buf.capacity() > (64 << 20) {
            log.buf = Vec::new();
        }
        if sync {
            log.file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// The index of the last entry applied to the store.
    pub fn applied_index(&self) -> u64 {
        *lock(&self.0.applied.0)
    }

    /// Block until entry `index` is applied here, or `timeout` passes.
    pub fn wait_applied_blocking(&self, index: u64, timeout: std::time::Duration) -> bool {
        let (m, cv) = &self.0.applied;
        let g = lock(m);
        match cv.wait_timeout_while(g, timeout, |a| *a < index) {
            Ok((g, _)) => *g >= index,
            Err(p) => *p.into_inner().0 >= index,
        }
    }

    /// Wait until entry `index` is applied here, `limit` at most.
    pub async fn wait_applied(&self, index: u64, limit: std::time::Duration) -> Result<(), String> {
        let mut applied = self.0.applied_tx.subscribe();
        let got = tokio::time::timeout(limit, applied.wait_for(|a| *a >= index)).await.map(|r| r.map(|_| ()));
        match got {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the pool database engine stopped".to_string()),
            Err(_) => Err(format!("this host has not applied the pool's entry {index} in {} s", limit.as_secs())),
        }
    }

    fn set_applied(&self, index: u64) {
        let (m, cv) = &self.0.applied;
        *lock(m) = index;
        cv.notify_all();
        self.0.applied_tx.send_replace(index);
    }

    fn apply_batch(&self, b: &Batch, covers: Option<&Covers>) -> Result<(), String> {
        if b.origin == self.0.boot {
            return Ok(());
        }
        if let Some(g) = &b.genesis {
            self.0.db.install(g).map_err(|e| format!("the pool's first state: {e}"))?;
        }
        // Commits the snapshot's dump already holds are not applied again.
        let held = covers.filter(|c| c.origin == b.origin).map(|c| c.gen);
        let fresh =
            b.records.iter().filter(|r| held.is_none_or(|g| store::replica::record_gen(r).is_none_or(|rg| rg > g)));
        self.0.db.apply_records(fresh.map(Vec::as_slice)).map_err(|e| format!("a pool record: {e}"))?;
        Ok(())
    }

    fn save_snapshot(&self, meta: &Meta, data: &[u8]) -> Result<(), Sto> {
        let mut bytes = serde_json::to_vec(meta).map_err(io)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(data);
        store::wal::write_atomic(&self.0.dir.join("snapshot"), &bytes).map_err(io)
    }
}

impl RaftLogReader<Tc> for Store {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Tc>>, Sto> {
        let log = lock(&self.0.log);
        Ok(log.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftSnapshotBuilder<Tc> for Store {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Tc>, Sto> {
        // The applied point and the dump together, under the machine lock
        // (entries apply under it): the dump holds exactly the others'
        // entries up to the point, and this host's own commits up to `gen`.
        // (Only the rows are taken under it; the encoding comes after: a
        // long hold stalls the engine, and a voter that misses heartbeats
        // meanwhile starts an election.)
        let (last, membership, frozen) = {
            let m = lock(&self.0.machine);
            (m.applied, m.membership.clone(), self.0.db.freeze())
        };
        let covers = Covers { origin: self.0.boot.clone(), gen: frozen.gen() };
        let data = snapshot_data(&covers, &frozen.dump());
        let id = format!("{}-{}", last.map(|l| l.index).unwrap_or(0), std::process::id());
        let meta = Meta { last_log_id: last, last_membership: membership, snapshot_id: id };
        self.save_snapshot(&meta, &data)?;
        *lock(&self.0.snapshot) = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

#[allow(deprecated)]
impl RaftStorage<Tc> for Store {
    type LogReader = Store;
    type SnapshotBuilder = Store;

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), Sto> {
        let b = serde_json::to_vec(vote).map_err(io)?;
        store::wal::write_atomic(&self.0.dir.join("vote"), &b).map_err(io)?;
        *lock(&self.0.vote) = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, Sto> {
        Ok(*lock(&self.0.vote))
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), Sto> {
        // Not fsynced: a committed point lost in a crash is learnt again
        // from the leader; it only speeds up a restart.
        // Padded to one length (JSON allows the trailing blanks), so a
        // shorter value leaves nothing of a longer one behind.
        let mut b = serde_json::to_vec(&committed).map_err(io)?;
        b.resize(b.len().max(COMMITTED_LEN), b' ');
        std::os::unix::fs::FileExt::write_all_at(&*lock(&self.0.committed_file), &b, 0).map_err(io)?;
        *lock(&self.0.committed) = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, Sto> {
        Ok(*lock(&self.0.committed))
    }

    async fn get_log_state(&mut self) -> Result<LogState<Tc>, Sto> {
        let log = lock(&self.0.log);
        let last = log.entries.values().next_back().map(|e| e.log_id).or(log.purged);
        Ok(LogState { last_purged_log_id: log.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn append_to_log<I>(&mut self, entries: I) -> Result<(), Sto>
    where
        I: IntoIterator<Item = Entry<Tc>> + Send,
    {
        let entries: Vec<Entry<Tc>> = entries.into_iter().collect();
        let lines: Vec<LineOut> = entries.iter().map(LogLine::Entry).collect();
        // A membership entry takes effect when appended (as openraft reads
        // it): one that makes this host a voter is synced with the rest.
        let was = self.0.voter.load(std::sync::atomic::Ordering::SeqCst);
        let mut now = was;
        for e in &entries {
            if let EntryPayload::Membership(m) = &e.payload {
                now = m.voter_ids().any(|v| v == self.0.id);
            }
        }
        self.0.voter.store(now, std::sync::atomic::Ordering::SeqCst);
        self.append_lines(&lines, was || now)?;
        let mut log = lock(&self.0.log);
        for e in entries {
            log.entries.insert(e.log_id.index, e);
        }
        Ok(())
    }

    async fn delete_conflict_logs_since(&mut self, log_id: LogId<u64>) -> Result<(), Sto> {
        self.append_lines(&[LogLine::TruncateFrom(log_id.index)], true)?;
        // The membership in force may be an earlier one now: sync until the
        // next membership entry says otherwise.
        self.0.voter.store(true, std::sync::atomic::Ordering::SeqCst);
        lock(&self.0.log).entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge_logs_upto(&mut self, log_id: LogId<u64>) -> Result<(), Sto> {
        let mut log = lock(&self.0.log);
        log.entries = log.entries.split_off(&(log_id.index + 1));
        log.purged = Some(log_id);
        // Rewrite the file with what is left, then switch to it.
        let mut buf = Vec::new();
        serde_json::to_writer(&mut buf, &LineOut::Purged(log_id)).map_err(io)?;
        buf.push(b'\n');
        for e in log.entries.values() {
            serde_json::to_writer(&mut buf, &LogLine::Entry(e)).map_err(io)?;
            buf.push(b'\n');
        }
        let path = self.0.dir.join("log");
        store::wal::write_atomic(&path, &buf).map_err(io)?;
        log.file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        Ok(())
    }

    async fn last_applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, openraft::BasicNode>), Sto> {
        let m = lock(&self.0.machine);
        Ok((m.applied, m.membership.clone()))
    }

    async fn apply_to_state_machine(&mut self, entries: &[Entry<Tc>]) -> Result<Vec<()>, Sto> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            {
                // Held while applying: a snapshot sees all of an entry or none.
                let mut m = lock(&self.0.machine);
                match &e.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(b) => {
                        if let Err(msg) = self.apply_batch(b, m.covers.as_ref()) {
                            // The engine stops on this error: the store can no
                            // longer follow the pool, and says so.
                            tracing::error!(index = e.log_id.index, "cannot apply the pool's entry: {msg}");
                            return Err(other(msg));
                        }
                    }
                    EntryPayload::Membership(mem) => {
                        m.membership = StoredMembership::new(Some(e.log_id), mem.clone());
                    }
                }
                m.applied = Some(e.log_id);
            }
            self.set_applied(e.log_id.index);
            out.push(());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Sto> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<Cursor<Vec<u8>>>) -> Result<(), Sto> {
        let data = snapshot.into_inner();
        let (covers, dump) = match split_data(&data) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("the pool's snapshot cannot be installed: {e}");
                return Err(other(e));
            }
        };
        {
            let mut m = lock(&self.0.machine);
            if let Err(e) = self.0.db.install(dump) {
                tracing::error!("the pool's snapshot cannot be installed: {e}");
                return Err(other(format!("pool snapshot: {e}")));
            }
            m.applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
            m.covers = covers;
        }
        self.save_snapshot(meta, &data)?;
        self.set_applied(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        *lock(&self.0.snapshot) = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Tc>>, Sto> {
        Ok(lock(&self.0.snapshot)
            .as_ref()
            .map(|(meta, dump)| Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(dump.clone())) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{Replicator, Role, WaitFuture};

    /// A leader's replicator that keeps the records it is given.
    #[derive(Default)]
    struct Keep(Mutex<Vec<Vec<u8>>>);
    impl Replicator for Keep {
        fn role(&self) -> Role {
            Role::Leader
        }
        fn propose(&self, record: Vec<u8>) -> u64 {
            let mut v = lock(&self.0);
            v.push(record);
            v.len() as u64
        }
        fn wait(&self, _seq: u64) -> WaitFuture<'_> {
            Box::pin(async { Ok(()) })
        }
        fn wait_blocking(&self, _seq: u64) -> Result<(), String> {
            Ok(())
        }
        fn forward(&self, _changes: Vec<u8>) -> Result<(), String> {
            Err("a leader".into())
        }
    }

    /// A snapshot of the leader's store holds commits whose entries come
    /// after the snapshot's point: a host rebuilt from it applies only the
    /// later ones (a field change to a row deleted since would not apply).
    #[test]
    fn entries_the_snapshot_holds_are_not_applied_again() {
        let vm = model::schema::class("VM").expect("VM");
        let name = vm.field_index("name_label").expect("name_label");
        let leader = Db::memory();
        let keep = Arc::new(Keep::default());
        leader.set_replicator(keep.clone()).expect("replicator");
        let write = |f: &dyn Fn(&mut store::Txn)| {
            leader
                .write(|tx| {
                    f(tx);
                    Ok::<_, store::Refused>(())
                })
                .expect("write");
        };
        let before = leader.dump();
        write(&|tx| tx.insert("OpaqueRef:a", store::blank_row(vm)));
        write(&|tx| {
            tx.set(vm, "OpaqueRef:a", name, model::Value::from("renamed"));
        });
        // The snapshot is taken here, with both commits; their entries
        // come after its point, with a third that deletes the row and a
        // fourth that makes another.
        let (dump, gen) = {
            let f = leader.freeze();
            (f.dump(), f.gen())
        };
        write(&|tx| {
            tx.delete(vm, "OpaqueRef:a");
        });
        write(&|tx| tx.insert("OpaqueRef:b", store::blank_row(vm)));
        let records = lock(&keep.0).clone();
        assert_eq!(records.len(), 4);

        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Db::memory());
        let host = Store::open(dir.path(), db.clone(), "member-run".into(), 2).expect("open");
        let covers = Covers { origin: "leader-run".into(), gen };
        let data = snapshot_data(&covers, &dump);
        let (c, d) = split_data(&data).expect("data");
        assert_eq!(c.as_ref(), Some(&covers));
        db.install(d).expect("install");
        let batch = Batch { origin: "leader-run".into(), records, genesis: None };
        host.apply_batch(&batch, c.as_ref()).expect("the later entries apply");
        assert!(db.read().get(vm, "OpaqueRef:a").is_none());
        assert!(db.read().get(vm, "OpaqueRef:b").is_some());

        // Without the covers line, the second record over a dump that holds
        // the third changes a row the dump no longer has: damage, reported.
        let db2 = Arc::new(Db::memory());
        let dir2 = tempfile::tempdir().expect("tempdir");
        let host2 = Store::open(dir2.path(), db2.clone(), "member-run".into(), 3).expect("open");
        let after = leader.dump();
        db2.install(&after).expect("install");
        // From a dump before them all: the four in one batch, each
        // building on the one before (a put, its change, its deletion).
        let db3 = Arc::new(Db::memory());
        let dir3 = tempfile::tempdir().expect("tempdir");
        let host3 = Store::open(dir3.path(), db3.clone(), "member-run".into(), 4).expect("open");
        db3.install(&before).expect("install");
        host3.apply_batch(&batch, None).expect("the whole batch applies");
        assert!(db3.read().get(vm, "OpaqueRef:a").is_none());
        assert!(db3.read().get(vm, "OpaqueRef:b").is_some());
        let two = Batch { records: batch.records[..2].to_vec(), ..batch.clone() };
        let db4 = Arc::new(Db::memory());
        let dir4 = tempfile::tempdir().expect("tempdir");
        let host4 = Store::open(dir4.path(), db4.clone(), "member-run".into(), 5).expect("open");
        db4.install(&before).expect("install");
        host4.apply_batch(&two, None).expect("a put and its change");
        assert_eq!(db4.read().get(vm, "OpaqueRef:a").expect("a").fields[name], model::Value::from("renamed"));

        let later = Batch { records: batch.records[1..].to_vec(), ..batch.clone() };
        let e = host2.apply_batch(&later, None).expect_err("a change to a deleted row");
        assert!(e.contains("does not have"), "{e}");
    }

    /// The commit point is written over in place: a shorter value leaves
    /// nothing of a longer one, and a file a crash left unreadable only
    /// means starting without it.
    #[tokio::test]
    async fn the_commit_point_is_written_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut st = Store::open(dir.path(), Arc::new(Db::memory()), "b".into(), 1).expect("open");
        let id = |term, index| Some(LogId::new(openraft::CommittedLeaderId::new(term, 1), index));
        st.save_committed(id(123_456, 987_654_321)).await.expect("save");
        st.save_committed(id(2, 7)).await.expect("save");
        let back: Option<Option<LogId<u64>>> = read_json(&dir.path().join("committed")).expect("parses");
        assert_eq!(back, Some(id(2, 7)));
        assert_eq!(st.read_committed().await.expect("read"), id(2, 7));
        drop(st);
        std::fs::write(dir.path().join("committed"), b"{\"leader_id\":{\"te").expect("write");
        Store::open(dir.path(), Arc::new(Db::memory()), "c".into(), 1).expect("opens without the point");
    }
}

//! The engine's log, vote and snapshot on disk, and the state machine: the
//! host's store.
//!
//! Files under the pool directory:
//! * `log`: one JSON line per change, fsynced before openraft is told:
//!   an entry, a truncation ("everything from index i is gone") or a purge
//!   ("everything up to this log id is in the snapshot"). Rewritten whole
//!   after a purge.
//! * `vote`, `committed`: the latest value, replaced atomically.
//! * `snapshot`: a JSON line of metadata, then a database dump.
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

#[derive(Serialize, Deserialize)]
enum LogLine {
    #[serde(rename = "e")]
    Entry(Entry<Tc>),
    #[serde(rename = "t")]
    TruncateFrom(u64),
    #[serde(rename = "p")]
    Purged(LogId<u64>),
}

#[derive(Default)]
struct Machine {
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, openraft::BasicNode>,
}

struct Log {
    entries: BTreeMap<u64, Entry<Tc>>,
    purged: Option<LogId<u64>>,
    file: File,
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
                let dump = bytes[nl + 1..].to_vec();
                db.install(&dump).map_err(|e| format!("pool snapshot: {e}"))?;
                machine.applied = meta.last_log_id;
                machine.membership = meta.last_membership.clone();
                snapshot = Some((meta, dump));
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
        let mut committed: Option<LogId<u64>> = read_json(&dir.join("committed"))?;
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
            log: Mutex::new(Log { entries, purged, file }),
            vote: Mutex::new(vote),
            committed: Mutex::new(committed),
            machine: Mutex::new(machine),
            snapshot: Mutex::new(snapshot),
            applied: (Mutex::new(idx), Condvar::new()),
            applied_tx: tokio::sync::watch::channel(idx).0,
        })))
    }

    fn append_lines(&self, lines: &[LogLine], sync: bool) -> Result<(), Sto> {
        let mut buf = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut buf, l).map_err(io)?;
            buf.push(b'\n');
        }
        let mut log = lock(&self.0.log);
        log.file.write_all(&buf).map_err(io)?;
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

    fn set_applied(&self, index: u64) {
        let (m, cv) = &self.0.applied;
        *lock(m) = index;
        cv.notify_all();
        self.0.applied_tx.send_replace(index);
    }

    fn apply_batch(&self, b: &Batch) -> Result<(), String> {
        if b.origin == self.0.boot {
            return Ok(());
        }
        if let Some(g) = &b.genesis {
            self.0.db.install(g).map_err(|e| format!("the pool's first state: {e}"))?;
        }
        for r in &b.records {
            self.0.db.apply_record(r).map_err(|e| format!("a pool record: {e}"))?;
        }
        Ok(())
    }

    fn save_snapshot(&self, meta: &Meta, dump: &[u8]) -> Result<(), Sto> {
        let mut bytes = serde_json::to_vec(meta).map_err(io)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(dump);
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
        // The applied point first, then the dump: the dump may hold later
        // commits too, which the entries after the point apply again
        // harmlessly (records put whole rows and delete by reference).
        let (last, membership) = {
            let m = lock(&self.0.machine);
            (m.applied, m.membership.clone())
        };
        let dump = self.0.db.dump();
        let id = format!("{}-{}", last.map(|l| l.index).unwrap_or(0), std::process::id());
        let meta = Meta { last_log_id: last, last_membership: membership, snapshot_id: id };
        self.save_snapshot(&meta, &dump)?;
        *lock(&self.0.snapshot) = Some((meta.clone(), dump.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(dump)) })
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
        let b = serde_json::to_vec(&committed).map_err(io)?;
        let tmp = self.0.dir.join("committed.tmp");
        std::fs::write(&tmp, &b).map_err(io)?;
        std::fs::rename(&tmp, self.0.dir.join("committed")).map_err(io)?;
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
        let lines: Vec<LogLine> = entries.iter().cloned().map(LogLine::Entry).collect();
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
        serde_json::to_writer(&mut buf, &LogLine::Purged(log_id)).map_err(io)?;
        buf.push(b'\n');
        for e in log.entries.values() {
            serde_json::to_writer(&mut buf, &LogLine::Entry(e.clone())).map_err(io)?;
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
            match &e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(b) => {
                    if let Err(msg) = self.apply_batch(b) {
                        // The engine stops on this error: the store can no
                        // longer follow the pool, and says so.
                        tracing::error!(index = e.log_id.index, "cannot apply the pool's entry: {msg}");
                        return Err(other(msg));
                    }
                }
                EntryPayload::Membership(m) => {
                    lock(&self.0.machine).membership = StoredMembership::new(Some(e.log_id), m.clone());
                }
            }
            lock(&self.0.machine).applied = Some(e.log_id);
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
        let dump = snapshot.into_inner();
        if let Err(e) = self.0.db.install(&dump) {
            tracing::error!("the pool's snapshot cannot be installed: {e}");
            return Err(other(format!("pool snapshot: {e}")));
        }
        self.save_snapshot(meta, &dump)?;
        {
            let mut m = lock(&self.0.machine);
            m.applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
        }
        self.set_applied(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        *lock(&self.0.snapshot) = Some((meta.clone(), dump));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Tc>>, Sto> {
        Ok(lock(&self.0.snapshot)
            .as_ref()
            .map(|(meta, dump)| Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(dump.clone())) }))
    }
}

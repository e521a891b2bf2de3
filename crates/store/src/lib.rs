//! The object store.
//!
//! Every object is a row (`Arc<Row>`) keyed by its ref in its class's table,
//! with a uuid index. Writes happen in transactions ([`Db::write`]) that commit
//! atomically under one generation number; every row remembers the generation
//! that created and last changed it, and deletions leave tombstones, so
//! "what changed since generation g" (event.from) is a range scan with no
//! per-subscriber queue. Reverse-reference sets (`VM.VBDs`, `SR.VDIs`, …) are
//! derived from the forward refs at commit and never written directly.
//!
//! Durability: each commit is appended to a log that is fsynced in batches
//! before the caller replies ([`Db::durable`]); snapshots compact the log.

pub mod codec;
pub mod filter;
pub mod replica;
mod startup;
pub mod wal;

pub use replica::{Refused, Replicator, Role, WaitFuture};

use codec::{put_str, put_uv, put_value, Reader};
use model::schema::{ClassDef, CLASSES, RELATIONS};
use model::typed::{Field, XenType};
use model::{Row, Value};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::watch;

/// Tombstones kept per table; a client further behind can miss deletions, as
/// with xapi (which keeps 256–512). `valid_ref_counts` lets it notice.
const MAX_TOMBSTONES: usize = 16384;

/// Log size that triggers a snapshot.
const COMPACT_AFTER: u64 = 256 << 20;

// A log record is the commit's generation, then operations: a new row whole
// (class, ref, creation generation, fields), a deletion (class, ref), or
// the changed fields of an existing row (class, ref, count, then field index
// and value). Derived sets are never in a record.
pub(crate) const REC_PUT: u8 = 1;
pub(crate) const REC_DELETE: u8 = 2;
pub(crate) const REC_PATCH: u8 = 3;
// Only in a member's change set, never in a record: map and set fields as
// what the member added and removed (see `replica::encode_changes`).
pub(crate) const OP_MERGE: u8 = 4;

/// Fields set in place on existing rows: (class index, ref, (field, value)).
pub(crate) type Patched = Vec<(usize, String, Vec<(usize, Value)>)>;

#[derive(Clone, Debug)]
pub struct Entry {
    pub row: Arc<Row>,
    pub created: u64,
    pub modified: u64,
}

#[derive(Default)]
pub struct Table {
    pub rows: HashMap<String, Entry>,
    uuid: HashMap<String, String>,
    /// (generation of last change, ref) for live rows and tombstones.
    changes: BTreeSet<(u64, String)>,
    /// ref → (created, deleted)
    tombs: HashMap<String, (u64, u64)>,
}

impl Table {
    /// Record that row `r` changed in generation `gen`.
    fn restamp(&mut self, r: &str, gen: u64) {
        let Some(e) = self.rows.get_mut(r) else { return };
        self.changes.remove(&(e.modified, r.to_string()));
        e.modified = gen;
        self.changes.insert((gen, r.to_string()));
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn get(&self, r: &str) -> Option<&Arc<Row>> {
        self.rows.get(r).map(|e| &e.row)
    }
    pub fn by_uuid(&self, uuid: &str) -> Option<&str> {
        self.uuid.get(uuid).map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Row>)> {
        self.rows.iter().map(|(r, e)| (r, &e.row))
    }
}

/// How an object changed since a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Mod,
    Del,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Mod => "mod",
            Change::Del => "del",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Relation {
    /// Class holding the forward ref field, and that field.
    pub src: usize,
    pub src_field: usize,
    /// Class holding the derived set, and that field.
    pub dst: usize,
    pub dst_field: usize,
}

pub struct State {
    pub gen: u64,
    tables: Vec<Table>,
    rels: Vec<Relation>,
    /// Per relation: target ref → refs pointing at it.
    rel_index: Vec<HashMap<String, BTreeSet<String>>>,
    /// Per class, per field: a set derived from a relation (never logged:
    /// whoever applies a record recomputes it from the forward refs).
    derived: Vec<Vec<bool>>,
}

fn relations() -> Vec<Relation> {
    let mut out = Vec::new();
    for (dst_class, dst_field, src_class, src_field) in RELATIONS {
        let (Some(d), Some(s)) = (model::schema::class(dst_class), model::schema::class(src_class)) else {
            continue;
        };
        let (Some(df), Some(sf)) = (d.field_index(dst_field), s.field_index(src_field)) else {
            continue;
        };
        out.push(Relation { src: s.index, src_field: sf, dst: d.index, dst_field: df });
    }
    out
}

impl State {
    fn new() -> State {
        let rels = relations();
        let mut derived: Vec<Vec<bool>> = CLASSES.iter().map(|c| vec![false; c.fields.len()]).collect();
        for r in &rels {
            derived[r.dst][r.dst_field] = true;
        }
        State {
            gen: 0,
            tables: CLASSES.iter().map(|_| Table::default()).collect(),
            rel_index: rels.iter().map(|_| HashMap::default()).collect(),
            rels,
            derived,
        }
    }

    /// Whether field `fi` of class `ci` is a set derived from a relation.
    pub(crate) fn is_derived(&self, ci: usize, fi: usize) -> bool {
        self.derived.get(ci).and_then(|c| c.get(fi)).copied().unwrap_or(false)
    }

    pub fn table(&self, c: &ClassDef) -> &Table {
        &self.tables[c.index]
    }

    pub fn get(&self, c: &ClassDef, r: &str) -> Option<&Arc<Row>> {
        self.tables[c.index].get(r)
    }

    /// One field through its typed handle; None if the object is gone.
    pub fn read<C, T: XenType>(&self, r: &str, f: Field<C, T>) -> Option<T> {
        self.get(f.class, r).map(|row| row.read(f))
    }

    pub fn entry(&self, c: &ClassDef, r: &str) -> Option<&Entry> {
        self.tables[c.index].rows.get(r)
    }

    /// Which class holds this ref, if any.
    pub fn class_of(&self, r: &str) -> Option<&'static ClassDef> {
        CLASSES.iter().copied().find(|c| self.tables[c.index].rows.contains_key(r))
    }

    /// The generation of the latest change (or deletion) in a table.
    pub fn last_change(&self, c: &ClassDef) -> u64 {
        self.tables[c.index].changes.iter().next_back().map(|(g, _)| *g).unwrap_or(0)
    }

    /// Changes to one table since generation `since`, coalesced per object:
    /// created after `since` → Add (even if changed later); existing then
    /// changed → Mod; existing then deleted → Del; created and deleted
    /// within the window → nothing.
    pub fn changes_since(&self, c: &ClassDef, since: u64) -> Vec<(Change, String, u64, Option<Arc<Row>>)> {
        let t = &self.tables[c.index];
        let mut out = Vec::new();
        for (g, r) in t.changes.range((since + 1, String::new())..) {
            if let Some(e) = t.rows.get(r) {
                let ch = if e.created > since { Change::Add } else { Change::Mod };
                out.push((ch, r.clone(), *g, Some(e.row.clone())));
            } else if let Some((created, _)) = t.tombs.get(r) {
                if *created <= since {
                    out.push((Change::Del, r.clone(), *g, None));
                }
            }
        }
        out
    }

    fn apply_put(&mut self, ci: usize, r: &str, row: Arc<Row>, gen: u64, created: Option<u64>) {
        let t = &mut self.tables[ci];
        let uuid_idx = row.class.field_index("uuid");
        let new_uuid = uuid_idx.and_then(|i| row.fields[i].as_str().map(str::to_string));
        match t.rows.get_mut(r) {
            Some(e) => {
                t.changes.remove(&(e.modified, r.to_string()));
                let old_uuid = uuid_idx.and_then(|i| e.row.fields[i].as_str().map(str::to_string));
                if old_uuid != new_uuid {
                    if let Some(u) = old_uuid {
                        t.uuid.remove(&u);
                    }
                    if let Some(u) = &new_uuid {
                        t.uuid.insert(u.clone(), r.to_string());
                    }
                }
                e.row = row;
                e.modified = gen;
            }
            None => {
                if let Some((_, deleted)) = t.tombs.remove(r) {
                    t.changes.remove(&(deleted, r.to_string()));
                }
                if let Some(u) = &new_uuid {
                    t.uuid.insert(u.clone(), r.to_string());
                }
                t.rows.insert(r.to_string(), Entry { row, created: created.unwrap_or(gen), modified: gen });
            }
        }
        t.changes.insert((gen, r.to_string()));
    }

    /// Set fields of an existing row in place (copying it only if a reader
    /// still holds it), keeping the relation indexes: a replica applying the
    /// leader's patches need not copy each changed row whole.
    fn patch_in_place(
        &mut self,
        ci: usize,
        r: &str,
        sets: Vec<(usize, Value)>,
        gen: u64,
        dirty: &mut BTreeSet<(usize, usize, String)>,
    ) {
        let Some(e) = self.tables[ci].rows.get(r) else { return };
        let moves = self.ref_moves(ci, &e.row, |f| sets.iter().rev().find(|(i, _)| *i == f).map(|(_, v)| v));
        let new_uuid = e.row.class.field_index("uuid").is_some_and(|u| sets.iter().any(|(i, _)| *i == u));
        self.move_refs(r, moves, dirty);
        let Some(e) = self.tables[ci].rows.get_mut(r) else { return };
        if new_uuid {
            // Never seen in practice: the whole-row path keeps the uuid index.
            let (mut row, created) = ((*e.row).clone(), Some(e.created));
            for (i, v) in sets {
                row.fields[i] = v;
            }
            return self.apply_put(ci, r, Arc::new(row), gen, created);
        }
        let row = Arc::make_mut(&mut e.row);
        for (i, v) in sets {
            row.fields[i] = v;
        }
        self.tables[ci].restamp(r, gen);
    }

    /// The relations of class `ci` whose ref field changes from `old` to what
    /// `new(field)` gives (None: unchanged): (relation, old target, new target).
    fn ref_moves<'v>(
        &self,
        ci: usize,
        old: &Row,
        new: impl Fn(usize) -> Option<&'v Value>,
    ) -> Vec<(usize, Option<String>, Option<String>)> {
        let mut out = Vec::new();
        for (ri, rel) in self.rels.iter().enumerate().filter(|(_, rel)| rel.src == ci) {
            let Some(v) = new(rel.src_field) else { continue };
            let old_t = State::ref_field(old, rel.src_field);
            let new_t = v.as_str().filter(|s| *s != model::NULL_REF);
            if old_t != new_t {
                out.push((ri, old_t.map(str::to_string), new_t.map(str::to_string)));
            }
        }
        out
    }

    /// Move row `r` between targets in the relation indexes, marking the
    /// targets whose derived sets must be recomputed.
    fn move_refs(
        &mut self,
        r: &str,
        moves: Vec<(usize, Option<String>, Option<String>)>,
        dirty: &mut BTreeSet<(usize, usize, String)>,
    ) {
        for (ri, old_t, new_t) in moves {
            let dst = self.rels[ri].dst;
            if let Some(t) = old_t {
                if let Some(set) = self.rel_index[ri].get_mut(&t) {
                    set.remove(r);
                }
                dirty.insert((ri, dst, t));
            }
            if let Some(t) = new_t {
                self.rel_index[ri].entry(t.clone()).or_default().insert(r.to_string());
                dirty.insert((ri, dst, t));
            }
        }
    }

    /// Set a derived field (one that no uuid is in) of a row in place:
    /// the row is copied only if a reader still holds it (a host's row is
    /// large, and every VM start changes its resident_VMs).
    fn set_derived(&mut self, ci: usize, r: &str, field: usize, v: Value, gen: u64) {
        let t = &mut self.tables[ci];
        let Some(e) = t.rows.get_mut(r) else { return };
        if e.row.fields[field] == v {
            return;
        }
        Arc::make_mut(&mut e.row).fields[field] = v;
        t.restamp(r, gen);
    }

    fn apply_delete(&mut self, ci: usize, r: &str, gen: u64) {
        let t = &mut self.tables[ci];
        if let Some(e) = t.rows.remove(r) {
            t.changes.remove(&(e.modified, r.to_string()));
            if let Some(u) = e.row.class.field_index("uuid").and_then(|i| e.row.fields[i].as_str()) {
                if t.uuid.get(u).map(String::as_str) == Some(r) {
                    t.uuid.remove(u);
                }
            }
            t.tombs.insert(r.to_string(), (e.created, gen));
            t.changes.insert((gen, r.to_string()));
            if t.tombs.len() > MAX_TOMBSTONES {
                self.trim_tombstones(ci);
            }
        }
    }

    fn trim_tombstones(&mut self, ci: usize) {
        let t = &mut self.tables[ci];
        let excess = t.tombs.len() - MAX_TOMBSTONES / 2;
        let victims: Vec<(u64, String)> =
            t.changes.iter().filter(|(_, r)| t.tombs.contains_key(r)).take(excess).cloned().collect();
        for (g, r) in victims {
            t.changes.remove(&(g, r.clone()));
            t.tombs.remove(&r);
        }
    }

    fn ref_field(row: &Row, idx: usize) -> Option<&str> {
        row.fields.get(idx).and_then(Value::as_str).filter(|s| *s != model::NULL_REF)
    }
}

/// A write transaction: reads see its own pending changes; nothing is
/// visible to others until [`Db::write`] commits it.
pub struct Txn<'a> {
    st: &'a State,
    /// Per class: ref → new row (None: deleted).
    pending: Vec<HashMap<String, Option<Row>>>,
    order: Vec<(usize, String)>,
    touched: Vec<(usize, String)>,
}

impl<'a> Txn<'a> {
    pub fn state(&self) -> &State {
        self.st
    }

    pub fn get(&self, c: &ClassDef, r: &str) -> Option<&Row> {
        match self.pending[c.index].get(r) {
            Some(Some(row)) => Some(row),
            Some(None) => None,
            None => self.st.get(c, r).map(|a| &**a),
        }
    }

    pub fn exists(&self, c: &ClassDef, r: &str) -> bool {
        self.get(c, r).is_some()
    }

    fn slot(&mut self, c: &ClassDef, r: &str) -> &mut Option<Row> {
        let st = self.st;
        let order = &mut self.order;
        self.pending[c.index].entry(r.to_string()).or_insert_with(|| {
            order.push((c.index, r.to_string()));
            st.get(c, r).map(|a| (**a).clone())
        })
    }

    /// Create (or replace) an object.
    pub fn insert(&mut self, r: &str, row: Row) {
        let c = row.class;
        *self.slot(c, r) = Some(row);
    }

    /// Change an object in place; false if it does not exist.
    pub fn update(&mut self, c: &ClassDef, r: &str, f: impl FnOnce(&mut Row)) -> bool {
        match self.slot(c, r) {
            Some(row) => {
                f(row);
                true
            }
            None => false,
        }
    }

    pub fn set(&mut self, c: &ClassDef, r: &str, field: usize, v: Value) -> bool {
        self.update(c, r, |row| row.fields[field] = v)
    }

    /// Set one field through its typed handle; false if the object is gone.
    pub fn put<C, T: XenType>(&mut self, r: &str, f: Field<C, T>, v: T) -> bool {
        self.set(f.class, r, f.index, v.to_value())
    }

    /// One field through its typed handle; None if the object is gone.
    pub fn read<C, T: XenType>(&self, r: &str, f: Field<C, T>) -> Option<T> {
        self.get(f.class, r).map(|row| row.read(f))
    }

    pub fn delete(&mut self, c: &ClassDef, r: &str) -> bool {
        let existed = self.get(c, r).is_some();
        *self.slot(c, r) = None;
        existed
    }

    /// Refs of a class this transaction created or changed (not deleted).
    pub fn pending_refs(&self, c: &ClassDef) -> Vec<String> {
        self.order
            .iter()
            .filter(|(ci, r)| *ci == c.index && matches!(self.pending[*ci].get(r), Some(Some(_))))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Mark an object changed without changing it (event.inject).
    pub fn touch(&mut self, c: &ClassDef, r: &str) -> bool {
        if self.get(c, r).is_none() {
            return false;
        }
        self.slot(c, r);
        self.touched.push((c.index, r.to_string()));
        true
    }

    /// Refs of a class as this transaction sees them.
    pub fn refs(&self, c: &ClassDef) -> Vec<String> {
        let mut out: Vec<String> = self
            .st
            .table(c)
            .rows
            .keys()
            .filter(|r| !matches!(self.pending[c.index].get(*r), Some(None)))
            .cloned()
            .collect();
        for (r, v) in &self.pending[c.index] {
            if v.is_some() && self.st.get(c, r).is_none() {
                out.push(r.clone());
            }
        }
        out
    }
}

/// What a commit produced: the generation and, when logged, the log sequence
/// to wait for before acknowledging.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commit {
    pub gen: u64,
    pub seq: Option<u64>,
    /// `seq` is the replicator's, not the local log's.
    pub replicated: bool,
}

pub struct Db {
    state: RwLock<State>,
    wal: Option<wal::Wal>,
    dir: Option<PathBuf>,
    gen_tx: watch::Sender<u64>,
    /// Bytes logged since the last snapshot.
    logged: std::sync::atomic::AtomicU64,
    /// Runs inside every transaction just before it commits (derived fields).
    precommit: std::sync::OnceLock<fn(&mut Txn)>,
    compacting: std::sync::Mutex<()>,
    /// This open applied a staged database restore.
    restored: bool,
    /// Set when this store is a replica of a pool database.
    replicator: std::sync::OnceLock<Arc<dyn Replicator>>,
}

/// What can go wrong opening or writing the store.
#[derive(Debug)]
pub enum StoreError {
    /// A file could not be read or written.
    Io { path: PathBuf, err: io::Error },
    /// A store file holds bytes that fail their checksum or do not decode,
    /// somewhere a crash cannot have left them.
    Damaged { file: PathBuf, offset: u64, detail: String },
    /// Log files without the snapshot they continue from.
    NoSnapshot { dir: PathBuf, logs: Vec<PathBuf> },
    /// The log the snapshot continues in is not there.
    MissingLog { expected: PathBuf, snapshot_gen: u64, found: Option<PathBuf> },
    /// The durable log stopped working while running.
    Log(String),
}

impl StoreError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |err| StoreError::Io { path: path.to_path_buf(), err }
    }

    /// A refusal to start on a damaged data dir (as opposed to an I/O error).
    pub fn is_damage(&self) -> bool {
        matches!(self, StoreError::Damaged { .. } | StoreError::NoSnapshot { .. } | StoreError::MissingLog { .. })
    }

    /// What opening with recovery would do about this damage.
    pub fn recovery_hint(&self) -> String {
        match self {
            StoreError::Damaged { file, .. } if file.file_name().is_some_and(|n| n == "snapshot") => format!(
                "recovery cannot use a damaged snapshot: it would move every store file aside and start empty (a fresh pool; {} is kept in the folder)",
                file.display()
            ),
            StoreError::Damaged { file, offset, .. } => format!(
                "recovery would keep the snapshot and the log records before byte {offset} of {} and move the store files aside",
                file.display()
            ),
            StoreError::NoSnapshot { .. } => {
                "recovery would move the logs aside and start empty (a fresh pool): logs cannot be replayed without the snapshot they continue".into()
            }
            StoreError::MissingLog { .. } => {
                "recovery would keep the snapshot alone and move the other store files aside".into()
            }
            _ => String::new(),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io { path, err } if path.as_os_str().is_empty() => write!(f, "{err}"),
            StoreError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            StoreError::Damaged { file, offset, detail } => {
                write!(f, "{} is damaged at byte offset {offset}: {detail}", file.display())
            }
            StoreError::NoSnapshot { dir, logs } => {
                let names: Vec<String> =
                    logs.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
                write!(
                    f,
                    "{} holds log files ({}) but no snapshot: expected {}/snapshot, the state those logs continue from",
                    dir.display(),
                    names.join(", "),
                    dir.display()
                )
            }
            StoreError::MissingLog { expected, snapshot_gen, found } => {
                write!(
                    f,
                    "{} is missing: the snapshot (generation {snapshot_gen}) continues in that log file",
                    expected.display()
                )?;
                match found {
                    Some(p) => write!(f, "; found {} instead", p.display()),
                    None => write!(f, "; no log file is left"),
                }
            }
            StoreError::Log(m) => write!(f, "durable log: {m}"),
        }
    }
}
impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(err: io::Error) -> Self {
        StoreError::Io { path: PathBuf::new(), err }
    }
}

/// Classes whose rows are not written to disk (xapi's PersistNothing).
fn persistent(c: &ClassDef) -> bool {
    !c.transient
}

fn schema_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"XAPIRS1");
    put_uv(&mut out, CLASSES.len() as u64);
    for c in CLASSES {
        put_str(&mut out, c.name);
        put_uv(&mut out, c.fields.len() as u64);
        for f in c.fields {
            put_str(&mut out, f.name);
        }
    }
    out
}

/// Maps a file's (class, field) positions onto ours.
struct Layout {
    /// Per class in the file: ours, and per field in the file: our index.
    classes: Vec<Option<ClassLayout>>,
}

type ClassLayout = (&'static ClassDef, Vec<Option<usize>>);

fn read_layout(r: &mut Reader) -> Result<Layout, codec::Corrupt> {
    if r.bytes(7)? != b"XAPIRS1" {
        return Err(codec::Corrupt("not a store file"));
    }
    let n = r.len()?;
    let mut classes = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?;
        let nf = r.len()?;
        let ours = model::schema::class(&name);
        let mut map = Vec::with_capacity(nf);
        for _ in 0..nf {
            let f = r.str()?;
            map.push(ours.and_then(|c| c.field_index(&f)));
        }
        classes.push(ours.map(|c| (c, map)));
    }
    Ok(Layout { classes })
}

fn encode_row(out: &mut Vec<u8>, row: &Row) {
    put_uv(out, row.fields.len() as u64);
    for v in &row.fields {
        put_value(out, v);
    }
}

fn decode_row(r: &mut Reader, class: &'static ClassDef, map: &[Option<usize>]) -> Result<Row, codec::Corrupt> {
    let n = r.len()?;
    let mut fields: Vec<Value> = class.fields.iter().map(|f| f.default_value()).collect();
    for i in 0..n {
        let v = r.value()?;
        if let Some(Some(to)) = map.get(i) {
            fields[*to] = v;
        }
    }
    Ok(Row::new(class, fields))
}

impl Db {
    /// An in-memory store (tests, benchmarks).
    pub fn memory() -> Db {
        Db::with(State::new(), None, None)
    }

    fn with(state: State, wal: Option<wal::Wal>, dir: Option<PathBuf>) -> Db {
        let (gen_tx, _) = watch::channel(state.gen);
        Db {
            state: RwLock::new(state),
            wal,
            dir,
            gen_tx,
            logged: Default::default(),
            precommit: std::sync::OnceLock::new(),
            compacting: std::sync::Mutex::new(()),
            restored: false,
            replicator: std::sync::OnceLock::new(),
        }
    }

    /// Open (or create) the store in `dir`, refusing a damaged one (see
    /// [`Db::open_with`]).
    pub fn open(dir: &Path) -> Result<Db, StoreError> {
        Db::open_with(dir, false)
    }

    /// Open (or create) the store in `dir`: check every file before writing
    /// anything, load the snapshot, replay the logs after it, start a new log
    /// and write a fresh snapshot. Damage a crash cannot explain refuses
    /// ([`StoreError::is_damage`]) unless `recover`, which starts from what
    /// is readable and moves the old files aside (`startup.rs`).
    pub fn open_with(dir: &Path, recover: bool) -> Result<Db, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let (st, w, restored) = startup::open(dir, recover)?;
        let mut db = Db::with(st, Some(w), Some(dir.to_path_buf()));
        db.restored = restored;
        Ok(db)
    }

    /// Whether this open replaced the store with a staged database dump.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// Install the hook run before every commit (once).
    pub fn set_precommit(&self, f: fn(&mut Txn)) {
        let _ = self.precommit.set(f);
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        match self.state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.read().gen
    }

    /// Receive the current generation whenever it changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.gen_tx.subscribe()
    }

    /// Run `f` as one atomic transaction. If it returns `Err`, nothing changes.
    pub fn write<T, E: From<Refused>>(&self, f: impl FnOnce(&mut Txn) -> Result<T, E>) -> Result<(T, Commit), E> {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (out, mut pending, mut order, touched) = {
            let mut tx = Txn {
                st: &guard,
                pending: CLASSES.iter().map(|_| HashMap::default()).collect(),
                order: Vec::new(),
                touched: Vec::new(),
            };
            let out = f(&mut tx)?;
            // Derived fields (allowed operations, host memory) are the
            // leader's to compute, against the pool's current state: a
            // member's changes would otherwise move host memory twice.
            let follower = self.replicator.get().is_some_and(|r| r.role() == Role::Follower);
            if let Some(p) = self.precommit.get().filter(|_| !follower) {
                p(&mut tx);
            }
            (out, tx.pending, tx.order, tx.touched)
        };
        if let Some(r) = self.replicator.get().filter(|r| r.role() == Role::Follower) {
            // A member: the pool's rows change on the leader; only transient
            // ones (sessions, tasks) are this host's own.
            let mut remote = Vec::new();
            order.retain(|(ci, rf)| {
                if persistent(CLASSES[*ci]) {
                    if let Some(row) = pending[*ci].remove(rf) {
                        remote.push((*ci, rf.clone(), row));
                    }
                    false
                } else {
                    true
                }
            });
            let changes = replica::encode_changes(&guard, &remote);
            if !changes.is_empty() {
                drop(guard);
                r.forward(changes).map_err(|e| E::from(Refused(e)))?;
                guard = match self.state.write() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
        }
        let commit = self.commit_as(&mut guard, pending, order, touched, true, Vec::new());
        drop(guard);
        if commit.gen != 0 {
            self.gen_tx.send_replace(commit.gen);
        }
        Ok((out, commit))
    }

    fn wal_active(&self) -> Option<&wal::Wal> {
        self.wal.as_ref().filter(|_| self.replicator.get().is_none())
    }

    /// Commit `pending` (whole rows, in `order`) and `patched` (fields set
    /// in place on existing rows, before `pending`: a replica's patches, which
    /// the leader made sure change something; it is not logged).
    fn commit_as(
        &self,
        st: &mut State,
        mut pending: Vec<HashMap<String, Option<Row>>>,
        order: Vec<(usize, String)>,
        touched: Vec<(usize, String)>,
        propose: bool,
        patched: Patched,
    ) -> Commit {
        let touched: BTreeSet<(usize, String)> = touched.into_iter().collect();
        // Drop no-op updates so they do not produce events or log records.
        let mut changes: Vec<(usize, String, Option<Row>)> = Vec::new();
        for key in order {
            let Some(new) = pending[key.0].remove(&key.1) else {
                continue;
            };
            let old = st.tables[key.0].get(&key.1);
            let same = match (&new, old) {
                (Some(n), Some(o)) => n.fields == o.fields,
                (None, None) => true,
                _ => false,
            };
            if same && !touched.contains(&key) {
                continue;
            }
            changes.push((key.0, key.1, new));
        }
        if changes.is_empty() && patched.is_empty() {
            return Commit::default();
        }
        let gen = st.gen + 1;
        // Relation bookkeeping: targets whose derived sets must be recomputed.
        let mut dirty: BTreeSet<(usize, usize, String)> = BTreeSet::new();
        for (ci, r, sets) in patched {
            st.patch_in_place(ci, &r, sets, gen, &mut dirty);
        }
        let mut moves = Vec::new();
        for (ci, r, new) in &changes {
            for (ri, rel) in st.rels.iter().enumerate() {
                if rel.src == *ci {
                    let old_t =
                        st.tables[*ci].get(r).and_then(|o| State::ref_field(o, rel.src_field)).map(str::to_string);
                    let new_t = new.as_ref().and_then(|n| State::ref_field(n, rel.src_field)).map(str::to_string);
                    if old_t != new_t {
                        moves.push((ri, old_t, new_t));
                    }
                }
                if rel.dst == *ci && new.is_some() && st.tables[*ci].get(r).is_none() {
                    dirty.insert((ri, rel.dst, r.clone()));
                }
            }
            st.move_refs(r, std::mem::take(&mut moves), &mut dirty);
        }
        let mut log = Vec::new();
        let leader = self.replicator.get().filter(|r| propose && r.role() == Role::Leader);
        let logging = self.wal_active().is_some() || leader.is_some();
        if logging {
            put_uv(&mut log, gen);
        }
        let mut logged_any = false;
        for (ci, r, new) in changes {
            let class = CLASSES[ci];
            match new {
                Some(row) => {
                    let old = st.tables[ci].rows.get(&r);
                    let created = old.map(|e| e.created);
                    if logging && persistent(class) {
                        match old {
                            None => {
                                log.push(REC_PUT);
                                put_uv(&mut log, ci as u64);
                                put_str(&mut log, &r);
                                put_uv(&mut log, gen);
                                encode_row(&mut log, &row);
                                logged_any = true;
                            }
                            Some(e) => {
                                // Only the fields that changed: a start must
                                // not log a VM's whole row three times.
                                let always = touched.contains(&(ci, r.clone()));
                                logged_any |= put_patch(&mut log, st, ci, &r, &e.row, &row, always);
                            }
                        }
                    }
                    st.apply_put(ci, &r, Arc::new(row), gen, created);
                }
                None => {
                    if logging && persistent(class) {
                        log.push(REC_DELETE);
                        put_uv(&mut log, ci as u64);
                        put_str(&mut log, &r);
                        logged_any = true;
                    }
                    st.apply_delete(ci, &r, gen);
                }
            }
        }
        for (ri, dst, target) in dirty {
            let field = st.rels[ri].dst_field;
            let want: Vec<Value> = st.rel_index[ri]
                .get(&target)
                .map(|s| s.iter().map(|r| Value::String(r.clone())).collect())
                .unwrap_or_default();
            // Not logged: replay and every replica recompute derived sets
            // (a host's resident_VMs would otherwise be logged whole on
            // every VM start).
            st.set_derived(dst, &target, field, Value::Array(want), gen);
        }
        st.gen = gen;
        if let (Some(r), true) = (leader, logged_any) {
            return Commit { gen, seq: Some(r.propose(log)), replicated: true };
        }
        let seq = match (self.wal_active(), logged_any) {
            (Some(w), true) => {
                let framed = wal::frame(&log);
                self.logged.fetch_add(framed.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Some(w.append(framed))
            }
            _ => None,
        };
        Commit { gen, seq, replicated: false }
    }

    /// Wait until a commit is on disk. In-memory stores return at once.
    pub async fn durable(&self, c: Commit) -> Result<(), StoreError> {
        if c.replicated {
            if let (Some(r), Some(seq)) = (self.replicator.get(), c.seq) {
                r.wait(seq).await.map_err(StoreError::Log)?;
            }
            return Ok(());
        }
        if let (Some(w), Some(seq)) = (self.wal_active(), c.seq) {
            w.wait(seq).await.map_err(StoreError::Log)?
        }
        if self.logged.load(std::sync::atomic::Ordering::Relaxed) > COMPACT_AFTER {
            self.compact()?;
        }
        Ok(())
    }

    /// Blocking form of [`Db::durable`].
    pub fn durable_blocking(&self, c: Commit) -> Result<(), StoreError> {
        if c.replicated {
            return match (self.replicator.get(), c.seq) {
                (Some(r), Some(seq)) => r.wait_blocking(seq).map_err(StoreError::Log),
                _ => Ok(()),
            };
        }
        match (self.wal_active(), c.seq) {
            (Some(w), Some(seq)) => w.wait_blocking(seq).map_err(StoreError::Log),
            _ => Ok(()),
        }
    }

    /// Write a snapshot and drop the logs it covers.
    pub fn compact(&self) -> Result<(), StoreError> {
        let (Some(w), Some(dir)) = (self.wal_active(), &self.dir) else {
            return Ok(());
        };
        let Ok(_only_one) = self.compacting.try_lock() else {
            return Ok(());
        };
        // Rotate under the read lock so no commit slips between the snapshot
        // and the new log file.
        let (frozen, gen, seq) = {
            let st = self.read();
            let seq = w.rotate(st.gen + 1, schema_bytes());
            (Frozen::of(&st), st.gen, seq)
        };
        let bytes = frozen.bytes();
        self.logged.store(0, std::sync::atomic::Ordering::Relaxed);
        w.wait_blocking(seq).map_err(StoreError::Log)?;
        wal::write_atomic(&dir.join("snapshot"), &wal::frame(&bytes))?;
        for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(g) = name.strip_prefix("log-").and_then(|g| g.parse::<u64>().ok()) {
                if g <= gen {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// The whole persistent state as a database dump: a version line, then
    /// the snapshot encoding in one checksummed frame.
    pub fn dump(&self) -> Vec<u8> {
        self.freeze().dump()
    }

    /// The persistent rows as they are now, to encode without the lock.
    pub fn freeze(&self) -> Frozen {
        Frozen::of(&self.read())
    }

    /// Check a dump and stage it to replace the whole store at the next
    /// open (as xapi restores on restart). Nothing else changes now.
    pub fn stage_restore(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else {
            return Err(StoreError::Log("an in-memory store cannot restore".into()));
        };
        let path = dir.join(RESTORE_FILE);
        read_dump(bytes).map_err(|e| StoreError::Damaged {
            file: path.clone(),
            offset: e.offset(),
            detail: e.to_string(),
        })?;
        wal::write_atomic(&path, bytes).map_err(StoreError::io(&path))
    }

    /// Flush the log, snapshot, and stop the flusher.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.compact()?;
        if let Some(w) = self.wal_active() {
            w.close();
        }
        Ok(())
    }
}

/// The first line of a database dump; the version follows it.
const DUMP_MAGIC: &[u8] = b"xapi-rs database dump v";
const DUMP_VERSION: &str = "1";
/// A validated dump waiting in the store directory for the next open.
pub const RESTORE_FILE: &str = "restore";

/// Why a database dump cannot be restored.
#[derive(Debug)]
pub enum DumpError {
    /// Not a dump of ours at all.
    NotADump,
    /// A dump format version we do not read.
    Version(String),
    /// A damaged or truncated dump (offset into the file).
    Damaged { offset: u64, detail: String },
}

impl DumpError {
    pub fn offset(&self) -> u64 {
        match self {
            DumpError::Damaged { offset, .. } => *offset,
            _ => 0,
        }
    }
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::NotADump => f.write_str("not an xapi-rs database dump"),
            DumpError::Version(v) => write!(f, "dump format version {v:?}, expected {DUMP_VERSION}"),
            DumpError::Damaged { offset, detail } => write!(f, "damaged dump at byte offset {offset}: {detail}"),
        }
    }
}
impl std::error::Error for DumpError {}

/// Decode and check a whole database dump: the magic line, the version, one
/// frame covering the rest exactly, its checksum, and every row.
pub fn read_dump(bytes: &[u8]) -> Result<State, DumpError> {
    let rest = bytes.strip_prefix(DUMP_MAGIC).ok_or(DumpError::NotADump)?;
    let nl = rest.iter().position(|b| *b == b'\n').filter(|n| *n <= 16).ok_or(DumpError::NotADump)?;
    let version = String::from_utf8_lossy(&rest[..nl]).into_owned();
    if version != DUMP_VERSION {
        return Err(DumpError::Version(version));
    }
    let base = (DUMP_MAGIC.len() + nl + 1) as u64;
    let body = &rest[nl + 1..];
    let parsed = wal::parse(body);
    let payload = match parsed.frames.first() {
        Some((_, p)) if parsed.end == body.len() as u64 => *p,
        Some(_) => {
            return Err(DumpError::Damaged {
                offset: base + parsed.end,
                detail: "unexpected bytes after the dump".into(),
            })
        }
        None => {
            let detail = match parsed.why {
                wal::End::Checksum => "the checksum does not match".to_string(),
                wal::End::Overrun(n) => format!("the dump is cut short (its record says {n} bytes)"),
                wal::End::Zero => "no dump record".to_string(),
            };
            return Err(DumpError::Damaged { offset: base, detail });
        }
    };
    let mut st = State::new();
    load_snapshot(&mut st, payload)
        .map_err(|e| DumpError::Damaged { offset: base + 12, detail: format!("does not decode: {}", e.0) })?;
    rebuild_relations(&mut st);
    Ok(st)
}

/// The persistent rows of a state at one generation, sharing the rows
/// themselves with the store (rows are copied on write): taking it is a
/// pass over the tables under the lock, encoding it needs no lock.
pub struct Frozen {
    gen: u64,
    /// Per class: (ref, created, modified, row).
    tables: Vec<Vec<FrozenRow>>,
}

type FrozenRow = (String, u64, u64, Arc<Row>);

impl Frozen {
    fn of(st: &State) -> Frozen {
        let tables = CLASSES
            .iter()
            .map(|c| {
                if !persistent(c) {
                    return Vec::new();
                }
                st.tables[c.index].rows.iter().map(|(r, e)| (r.clone(), e.created, e.modified, e.row.clone())).collect()
            })
            .collect();
        Frozen { gen: st.gen, tables }
    }

    /// The generation it holds every commit up to.
    pub fn gen(&self) -> u64 {
        self.gen
    }

    /// A database dump (see [`Db::dump`]).
    pub fn dump(&self) -> Vec<u8> {
        let mut out = DUMP_MAGIC.to_vec();
        out.extend_from_slice(DUMP_VERSION.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&wal::frame(&self.bytes()));
        out
    }

    /// The snapshot record: the schema, the generation, every class's rows.
    fn bytes(&self) -> Vec<u8> {
        let mut out = schema_bytes();
        put_uv(&mut out, self.gen);
        for rows in &self.tables {
            put_uv(&mut out, rows.len() as u64);
            for (r, created, modified, row) in rows {
                put_str(&mut out, r);
                put_uv(&mut out, *created);
                put_uv(&mut out, *modified);
                encode_row(&mut out, row);
            }
        }
        out
    }
}

fn snapshot_bytes(st: &State) -> Vec<u8> {
    Frozen::of(st).bytes()
}

fn load_snapshot(st: &mut State, payload: &[u8]) -> Result<(), codec::Corrupt> {
    let mut r = Reader::new(payload);
    let layout = read_layout(&mut r)?;
    st.gen = r.uv()?;
    for cl in &layout.classes {
        let n = r.len()?;
        for _ in 0..n {
            let rf = r.str()?;
            let created = r.uv()?;
            let modified = r.uv()?;
            match cl {
                Some((class, map)) => {
                    let row = decode_row(&mut r, class, map)?;
                    st.apply_put(class.index, &rf, Arc::new(row), modified, Some(created));
                }
                None => {
                    // A class we no longer know: skip its rows.
                    let nf = r.len()?;
                    for _ in 0..nf {
                        r.value()?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn replay(st: &mut State, layout: &Layout, rec: &[u8]) -> Result<(), codec::Corrupt> {
    let mut r = Reader::new(rec);
    let gen = r.uv()?;
    if gen <= st.gen {
        return Ok(());
    }
    while !r.done() {
        let op = r.u8()?;
        let ci = r.uv()? as usize;
        let rf = r.str()?;
        let cl = layout.classes.get(ci).ok_or(codec::Corrupt("bad class index"))?;
        match op {
            REC_PUT => {
                let created = r.uv()?;
                match cl {
                    Some((class, map)) => {
                        let row = decode_row(&mut r, class, map)?;
                        st.apply_put(class.index, &rf, Arc::new(row), gen, Some(created));
                    }
                    None => {
                        // A class we no longer know: skip its rows.
                        let nf = r.len()?;
                        for _ in 0..nf {
                            r.value()?;
                        }
                    }
                }
            }
            REC_DELETE => {
                if let Some((class, _)) = cl {
                    st.apply_delete(class.index, &rf, gen);
                }
            }
            REC_PATCH => {
                let sets = read_patch(&mut r)?;
                if let Some((class, map)) = cl {
                    let e = st.tables[class.index]
                        .rows
                        .get(&rf)
                        .ok_or(codec::Corrupt("a change to an object that the log never made"))?;
                    let created = e.created;
                    let mut row = (*e.row).clone();
                    for (i, v) in sets {
                        if let Some(Some(to)) = map.get(i) {
                            row.fields[*to] = v;
                        }
                    }
                    st.apply_put(class.index, &rf, Arc::new(row), gen, Some(created));
                }
            }
            _ => return Err(codec::Corrupt("bad op")),
        }
    }
    st.gen = gen;
    Ok(())
}

/// A patch operation: the fields of `new` that differ from `old`, derived
/// sets left out. Nothing is written when none differ, unless `always`.
pub(crate) fn put_patch(out: &mut Vec<u8>, st: &State, ci: usize, r: &str, old: &Row, new: &Row, always: bool) -> bool {
    let diff: Vec<(usize, &Value)> = (0..new.fields.len())
        .filter(|&i| !st.is_derived(ci, i) && new.fields[i] != old.fields[i])
        .map(|i| (i, &new.fields[i]))
        .collect();
    if diff.is_empty() && !always {
        return false;
    }
    put_fields(out, ci, r, &diff);
    true
}

/// A patch operation setting these fields of row `r` of class `ci`.
pub(crate) fn put_fields(out: &mut Vec<u8>, ci: usize, r: &str, fields: &[(usize, &Value)]) {
    out.push(REC_PATCH);
    put_uv(out, ci as u64);
    put_str(out, r);
    put_uv(out, fields.len() as u64);
    for (i, v) in fields {
        put_uv(out, *i as u64);
        put_value(out, v);
    }
}

/// The (field index, value) pairs of a patch operation.
pub(crate) fn read_patch(r: &mut Reader) -> Result<Vec<(usize, Value)>, codec::Corrupt> {
    let n = r.len()?;
    let mut sets = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let i = r.uv()? as usize;
        sets.push((i, r.value()?));
    }
    Ok(sets)
}

/// After loading, rebuild the reverse-reference index from the forward refs,
/// and the derived sets from it (records do not carry them).
fn rebuild_relations(st: &mut State) {
    for (ri, rel) in st.rels.clone().iter().enumerate() {
        let mut idx: HashMap<String, BTreeSet<String>> = HashMap::default();
        for (r, e) in &st.tables[rel.src].rows {
            if let Some(t) = State::ref_field(&e.row, rel.src_field) {
                idx.entry(t.to_string()).or_default().insert(r.clone());
            }
        }
        let t = &mut st.tables[rel.dst];
        for (r, e) in t.rows.iter_mut() {
            let want = Value::Array(
                idx.get(r).map(|s| s.iter().map(|x| Value::String(x.clone())).collect()).unwrap_or_default(),
            );
            if e.row.fields[rel.dst_field] != want {
                Arc::make_mut(&mut e.row).fields[rel.dst_field] = want;
            }
        }
        st.rel_index[ri] = idx;
    }
}

/// A fresh row of a class with every field at its default.
pub fn blank_row(c: &'static ClassDef) -> Row {
    Row::new(c, c.fields.iter().map(|f| f.default_value()).collect())
}

#[cfg(test)]
mod tests;

//! The store as one replica of a pool database.
//!
//! A pool's database is replicated by a consensus engine (the server's
//! `pool` service, on openraft); the store only knows three things about it:
//!
//! * On the leader (the pool master) a commit is applied at once, as on a
//!   lone host, and its record (the same bytes the log would get) goes to the
//!   [`Replicator`] under the commit lock, so records reach the engine in
//!   commit order. [`Db::durable`] then waits for the engine to commit it.
//! * On a follower (a member) a transaction's persistent changes are not
//!   applied here: they are sent to the leader as field-level changes
//!   ([`Replicator::forward`]; as xapi's members write single fields of the
//!   master's database), and the write returns once the leader's record for
//!   them has been applied here. Transient rows (sessions, tasks) stay local.
//! * Every replica applies the engine's committed records in log order
//!   ([`Db::apply_record`]); the leader skips its own, already applied.
//!
//! Records and change sets name classes and fields by their index in this
//! binary's schema, so every member of a pool runs the same schema (checked
//! at join).

use crate::codec::{put_str, put_uv, put_value, Corrupt, Reader};
use crate::{
    decode_row, encode_row, persistent, put_fields, read_patch, Commit, Db, State, OP_MERGE, REC_DELETE, REC_PATCH,
    REC_PUT,
};
use model::schema::{ClassDef, Type, CLASSES};
use model::{Row, Value};
use rustc_hash::FxHashMap as HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Where this replica stands in its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

/// Why a write could not be made on a replica.
#[derive(Debug, Clone)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the pool database refused the write: {}", self.0)
    }
}
impl std::error::Error for Refused {}

pub type WaitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// The consensus engine, as the store sees it.
pub trait Replicator: Send + Sync {
    fn role(&self) -> Role;
    /// Leader: take a commit's record, in commit order (called under the
    /// commit lock, so it must not block); the number to wait for.
    fn propose(&self, record: Vec<u8>) -> u64;
    /// Resolves when the proposal `seq` is committed by the pool.
    fn wait(&self, seq: u64) -> WaitFuture<'_>;
    /// [`Replicator::wait`] from a thread that may block.
    fn wait_blocking(&self, seq: u64) -> Result<(), String>;
    /// Follower: have the leader apply these changes (see [`Db::apply_changes`])
    /// and wait until its record is applied here. Blocks the calling thread.
    fn forward(&self, changes: Vec<u8>) -> Result<(), String>;
}

/// The persistent part of a transaction as field-level changes against
/// `st`, in the operations of a log record (without its generation, and a
/// put without its creation generation): new rows whole, changed rows as
/// the fields that differ (derived sets left out), deletions.
///
/// A changed map or set field goes as what this transaction added and
/// removed (OP_MERGE), applied by the leader to the value it has: the
/// member's copy may lag the leader's by a few entries, and its whole value
/// would undo what others did meanwhile (an operation another host began
/// would vanish from `current_operations`, or one ended come back, and
/// hold the object for ever).
pub(crate) fn encode_changes(st: &State, changes: &[(usize, String, Option<Row>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ci, r, new) in changes {
        let class = CLASSES[*ci];
        if !persistent(class) {
            continue;
        }
        match (new, st.tables[*ci].get(r)) {
            (Some(row), None) => {
                out.push(REC_PUT);
                put_uv(&mut out, *ci as u64);
                put_str(&mut out, r);
                encode_row(&mut out, row);
            }
            (Some(row), Some(o)) => {
                let (mut whole, mut merged) = (Vec::new(), Vec::new());
                for (i, f) in class.fields.iter().enumerate() {
                    if st.is_derived(*ci, i) || row.fields[i] == o.fields[i] {
                        continue;
                    }
                    match delta(f.ty, &o.fields[i], &row.fields[i]) {
                        Some(d) => merged.push((i, d)),
                        None => whole.push((i, &row.fields[i])),
                    }
                }
                if !whole.is_empty() {
                    put_fields(&mut out, *ci, r, &whole);
                }
                if !merged.is_empty() {
                    out.push(OP_MERGE);
                    put_uv(&mut out, *ci as u64);
                    put_str(&mut out, r);
                    put_uv(&mut out, merged.len() as u64);
                    for (i, d) in merged {
                        put_uv(&mut out, i as u64);
                        put_delta(&mut out, &d);
                    }
                }
            }
            (None, Some(_)) => {
                out.push(REC_DELETE);
                put_uv(&mut out, *ci as u64);
                put_str(&mut out, r);
            }
            (None, None) => {}
        }
    }
    out
}

/// What a transaction did to a map field (keys removed, keys set) or a set
/// field (members removed, members added).
#[derive(Debug, PartialEq)]
enum Delta {
    Map { removed: Vec<String>, set: Vec<(String, Value)> },
    Set { removed: Vec<Value>, added: Vec<Value> },
}

/// `old` to `new` as a delta, for a map or set field holding one.
fn delta(ty: &Type, old: &Value, new: &Value) -> Option<Delta> {
    match (ty, old, new) {
        (Type::Map(..), Value::Struct(o), Value::Struct(n)) => Some(Delta::Map {
            removed: o.iter().filter(|(k, _)| !n.iter().any(|(nk, _)| nk == k)).map(|(k, _)| k.clone()).collect(),
            set: n.iter().filter(|kv| !o.contains(kv)).cloned().collect(),
        }),
        (Type::Set(_), Value::Array(o), Value::Array(n)) => Some(Delta::Set {
            removed: o.iter().filter(|v| !n.contains(v)).cloned().collect(),
            added: n.iter().filter(|v| !o.contains(v)).cloned().collect(),
        }),
        _ => None,
    }
}

fn put_delta(out: &mut Vec<u8>, d: &Delta) {
    match d {
        Delta::Map { removed, set } => {
            put_uv(out, removed.len() as u64);
            removed.iter().for_each(|k| put_str(out, k));
            put_uv(out, set.len() as u64);
            for (k, v) in set {
                put_str(out, k);
                put_value(out, v);
            }
        }
        Delta::Set { removed, added } => {
            put_uv(out, removed.len() as u64);
            removed.iter().for_each(|v| put_value(out, v));
            put_uv(out, added.len() as u64);
            added.iter().for_each(|v| put_value(out, v));
        }
    }
}

fn read_delta(r: &mut Reader, ty: &Type) -> Result<Delta, Corrupt> {
    match ty {
        Type::Map(..) => {
            let removed = (0..r.len()?).map(|_| r.str()).collect::<Result<_, _>>()?;
            let set = (0..r.len()?).map(|_| Ok((r.str()?, r.value()?))).collect::<Result<_, Corrupt>>()?;
            Ok(Delta::Map { removed, set })
        }
        Type::Set(_) => {
            let removed = (0..r.len()?).map(|_| r.value()).collect::<Result<_, _>>()?;
            let added = (0..r.len()?).map(|_| r.value()).collect::<Result<_, _>>()?;
            Ok(Delta::Set { removed, added })
        }
        _ => Err(Corrupt("a merge of a field that is neither a map nor a set")),
    }
}

/// Apply a delta to the value the leader has (of the field's kind; any
/// other value is taken as empty).
fn merge(v: &mut Value, d: Delta) {
    match d {
        Delta::Map { removed, set } => {
            if !matches!(v, Value::Struct(_)) {
                *v = Value::Struct(Vec::new());
            }
            if let Value::Struct(m) = v {
                m.retain(|(k, _)| !removed.contains(k));
                for (k, x) in set {
                    match m.iter_mut().find(|(mk, _)| *mk == k) {
                        Some(slot) => slot.1 = x,
                        None => m.push((k, x)),
                    }
                }
            }
        }
        Delta::Set { removed, added } => {
            if !matches!(v, Value::Array(_)) {
                *v = Value::Array(Vec::new());
            }
            if let Value::Array(a) = v {
                a.retain(|x| !removed.contains(x));
                for x in added {
                    if !a.contains(&x) {
                        a.push(x);
                    }
                }
            }
        }
    }
}

fn identity(class: &'static model::schema::ClassDef) -> Vec<Option<usize>> {
    (0..class.fields.len()).map(Some).collect()
}

fn class_at(ci: u64) -> Result<&'static model::schema::ClassDef, Corrupt> {
    CLASSES.get(ci as usize).copied().ok_or(Corrupt("bad class index"))
}

/// The generation of the commit a record was made by (its first number).
pub fn record_gen(rec: &[u8]) -> Option<u64> {
    Reader::new(rec).uv().ok()
}

/// One operation of a committed record.
enum RecOp {
    Put(Row),
    Patch(Vec<(usize, Value)>),
    /// Change sets only: deltas of map and set fields.
    Merge(Vec<(usize, Delta)>),
    Delete,
}

/// The operations of a log record (`record`: a put carries its creation
/// generation) or of a member's change set, in order.
fn decode_ops(r: &mut Reader, record: bool) -> Result<Vec<(&'static ClassDef, String, RecOp)>, Corrupt> {
    let mut out = Vec::new();
    while !r.done() {
        let op = r.u8()?;
        let class = class_at(r.uv()?)?;
        let rf = r.str()?;
        match op {
            REC_PUT => {
                if record {
                    let _created = r.uv()?;
                }
                out.push((class, rf, RecOp::Put(decode_row(r, class, &identity(class))?)));
            }
            REC_DELETE => out.push((class, rf, RecOp::Delete)),
            REC_PATCH => {
                let sets = read_patch(r)?;
                if sets.iter().any(|(i, _)| *i >= class.fields.len()) {
                    return Err(Corrupt("bad field index"));
                }
                out.push((class, rf, RecOp::Patch(sets)));
            }
            OP_MERGE if !record => {
                let n = r.len()?;
                let mut deltas = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let i = r.uv()? as usize;
                    let f = class.fields.get(i).ok_or(Corrupt("bad field index"))?;
                    deltas.push((i, read_delta(r, f.ty)?));
                }
                out.push((class, rf, RecOp::Merge(deltas)));
            }
            _ => return Err(Corrupt("bad op")),
        }
    }
    Ok(out)
}

impl Db {
    /// Make this store one replica of a pool database (once). From now on
    /// commits are replicated, not logged to this store's own files.
    pub fn set_replicator(&self, r: Arc<dyn Replicator>) -> Result<(), Refused> {
        self.switch_to(r, |_| ())
    }

    /// [`Db::set_replicator`], with a dump of the state at that very point:
    /// every later commit is proposed, every earlier one is in the dump, so
    /// a pool's first entry plus the proposals apply each commit once.
    pub fn set_replicator_dump(&self, r: Arc<dyn Replicator>) -> Result<Vec<u8>, Refused> {
        self.switch_to(r, crate::Frozen::of).map(|f| f.dump())
    }

    /// Start replicating, and take `at` of the state at the switch.
    fn switch_to<T>(&self, r: Arc<dyn Replicator>, at: impl FnOnce(&State) -> T) -> Result<T, Refused> {
        // Under the write lock: no commit is half-way through when the WAL
        // stops and the replicator starts.
        let guard = match self.state.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        self.replicator.set(r).map_err(|_| Refused("this store is already replicated".into()))?;
        if let Some(w) = &self.wal {
            w.close();
        }
        Ok(at(&guard))
    }

    pub fn replicated(&self) -> Option<Role> {
        self.replicator.get().map(|r| r.role())
    }

    /// Apply a record committed by the pool (a follower, or the leader for
    /// records it did not make itself). Derived sets are recomputed here;
    /// generations are this replica's own (they number its events).
    pub fn apply_record(&self, rec: &[u8]) -> Result<u64, Corrupt> {
        self.apply_records([rec])
    }

    /// Apply several committed records, in order, as one commit of this
    /// replica (one generation, one wake-up of its event waiters).
    pub fn apply_records<'a>(&self, recs: impl IntoIterator<Item = &'a [u8]>) -> Result<u64, Corrupt> {
        let mut ops = Vec::new();
        for rec in recs {
            let mut r = Reader::new(rec);
            let _gen = r.uv()?;
            ops.extend(decode_ops(&mut r, true)?);
        }
        Ok(self.apply_ops(ops)?.gen)
    }

    /// Commit operations as they are, skipping the transaction machinery
    /// (and the replicator: they already are the pool's). Patches apply to
    /// the row as this replica has it (every replica applies the same
    /// records in the same order), or as an earlier operation left it.
    fn apply_ops(&self, ops: Vec<(&'static ClassDef, String, RecOp)>) -> Result<Commit, Corrupt> {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let gone = || Corrupt("a change to an object this replica does not have");
        let mut pending: Vec<HashMap<String, Option<Row>>> = CLASSES.iter().map(|_| HashMap::default()).collect();
        let mut order = Vec::new();
        // Patches to rows this batch has not put or deleted are set in place
        // at commit (before the whole rows, as they came first), unless this
        // store logs its own commits (not while replicated): the log needs
        // the rows' old and new fields.
        let logged = self.wal_active().is_some();
        let mut patched: crate::Patched = Vec::new();
        let mut patched_at: HashMap<(usize, String), usize> = HashMap::default();
        for (class, r, op) in ops {
            let ci = class.index;
            let new = match op {
                RecOp::Put(row) => Some(row),
                RecOp::Delete => None,
                RecOp::Merge(_) => return Err(Corrupt("a member's merge in a committed record")),
                RecOp::Patch(sets) => {
                    if pending[ci].contains_key(&r) || logged {
                        let row = match pending[ci].get_mut(&r) {
                            Some(slot) => slot.as_mut().ok_or_else(gone)?,
                            None => {
                                let row = guard.tables[ci].get(&r).map(|x| (**x).clone()).ok_or_else(gone)?;
                                order.push((ci, r.clone()));
                                pending[ci].entry(r).or_insert(Some(row)).as_mut().ok_or_else(gone)?
                            }
                        };
                        for (i, v) in sets {
                            row.fields[i] = v;
                        }
                    } else if let Some(&k) = patched_at.get(&(ci, r.clone())) {
                        patched[k].2.extend(sets);
                    } else {
                        guard.tables[ci].get(&r).ok_or_else(gone)?;
                        patched_at.insert((ci, r.clone()), patched.len());
                        patched.push((ci, r, sets));
                    }
                    continue;
                }
            };
            if pending[ci].insert(r.clone(), new).is_none() {
                order.push((ci, r));
            }
        }
        let commit = self.commit_as(&mut guard, pending, order, Vec::new(), false, patched);
        drop(guard);
        if commit.gen != 0 {
            self.gen_tx.send_replace(commit.gen);
        }
        Ok(commit)
    }

    /// On the leader: apply a member's change set (from [`Replicator::forward`])
    /// as one transaction of its own; a field set on an object deleted since is
    /// dropped, as the member's write would have failed on the master.
    pub fn apply_changes(&self, bytes: &[u8]) -> Result<Commit, Corrupt> {
        // Decode before taking any lock.
        let ops = decode_ops(&mut Reader::new(bytes), false)?;
        let ((), c) = self
            .write(|tx| {
                for (class, rf, op) in ops {
                    match op {
                        RecOp::Put(row) => tx.insert(&rf, row),
                        RecOp::Patch(fields) => {
                            if !tx.update(class, &rf, |row| {
                                for (i, v) in fields {
                                    row.fields[i] = v;
                                }
                            }) {
                                tracing::warn!(
                                    class = class.name,
                                    r#ref = rf,
                                    "a member wrote to an object deleted since"
                                );
                            }
                        }
                        RecOp::Merge(deltas) => {
                            if !tx.update(class, &rf, |row| {
                                for (i, d) in deltas {
                                    merge(&mut row.fields[i], d);
                                }
                            }) {
                                tracing::warn!(
                                    class = class.name,
                                    r#ref = rf,
                                    "a member wrote to an object deleted since"
                                );
                            }
                        }
                        RecOp::Delete => {
                            tx.delete(class, &rf);
                        }
                    }
                }
                Ok::<_, Refused>(())
            })
            .map_err(|_| Corrupt("the change set could not be applied"))?;
        Ok(c)
    }

    /// Replace the whole state with a pool snapshot (a database dump), as
    /// one change: rows gone are deleted, the others put.
    pub fn install(&self, dump: &[u8]) -> Result<(), crate::DumpError> {
        let new = crate::read_dump(dump)?;
        let mut ops = Vec::new();
        {
            let st = self.read();
            for c in CLASSES.iter().filter(|c| persistent(c)) {
                for r in st.tables[c.index].rows.keys() {
                    if new.tables[c.index].get(r).is_none() {
                        ops.push((*c, r.clone(), RecOp::Delete));
                    }
                }
            }
        }
        for c in CLASSES.iter().filter(|c| persistent(c)) {
            for (r, e) in new.tables[c.index].rows.iter() {
                ops.push((*c, r.clone(), RecOp::Put((*e.row).clone())));
            }
        }
        // Puts and deletions only: nothing here can name a missing row.
        if let Err(e) = self.apply_ops(ops) {
            tracing::error!("installing a pool snapshot: {}", e.0);
        }
        Ok(())
    }
}

/// A write the pool refused fails the call that made it.
impl From<Refused> for model::types::ApiError {
    fn from(e: Refused) -> Self {
        model::types::ApiError::InternalError { message: e.to_string() }
    }
}

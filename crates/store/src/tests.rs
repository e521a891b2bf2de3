use super::*;
use model::schema::class;

fn vm() -> &'static ClassDef {
    class("VM").unwrap()
}
fn vbd() -> &'static ClassDef {
    class("VBD").unwrap()
}

fn new_vm(db: &Db, name: &str) -> String {
    let r = model::new_ref();
    db.write(|tx| {
        let mut row = blank_row(vm());
        row.fields[vm().field_index("uuid").unwrap()] = Value::from(model::new_uuid());
        row.fields[vm().field_index("name_label").unwrap()] = Value::from(name);
        tx.insert(&r, row);
        Ok::<_, crate::Refused>(())
    })
    .unwrap();
    r
}

#[test]
fn crud_and_uuid_index() {
    let db = Db::memory();
    let r = new_vm(&db, "a");
    let st = db.read();
    let row = st.get(vm(), &r).unwrap();
    let uuid = row.get_by_name("uuid").unwrap().as_str().unwrap().to_string();
    assert_eq!(st.table(vm()).by_uuid(&uuid), Some(r.as_str()));
    drop(st);
    db.write(|tx| Ok::<_, crate::Refused>(tx.delete(vm(), &r))).unwrap();
    assert!(db.read().table(vm()).by_uuid(&uuid).is_none());
}

#[test]
fn failed_transaction_changes_nothing() {
    let db = Db::memory();
    let g = db.generation();
    let r: Result<((), Commit), crate::Refused> = db.write(|tx| {
        tx.insert("OpaqueRef:x", blank_row(vm()));
        Err(crate::Refused("no".into()))
    });
    assert!(r.is_err());
    assert_eq!(db.generation(), g);
    assert!(db.read().get(vm(), "OpaqueRef:x").is_none());
}

#[test]
fn relations_are_derived() {
    let db = Db::memory();
    let v = new_vm(&db, "a");
    let b = "OpaqueRef:vbd1".to_string();
    let vm_field = vbd().field_index("VM").unwrap();
    let vbds = vm().field_index("VBDs").unwrap();
    db.write(|tx| {
        let mut row = blank_row(vbd());
        row.fields[vm_field] = Value::from(v.as_str());
        tx.insert(&b, row);
        Ok::<_, crate::Refused>(())
    })
    .unwrap();
    assert_eq!(db.read().get(vm(), &v).unwrap().fields[vbds], Value::Array(vec![Value::from(b.as_str())]));
    db.write(|tx| Ok::<_, crate::Refused>(tx.delete(vbd(), &b))).unwrap();
    assert_eq!(db.read().get(vm(), &v).unwrap().fields[vbds], Value::Array(vec![]));
}

/// An update logs the fields it changed, not the row; derived sets are not
/// logged at all, and come back right after a reopen.
#[test]
fn updates_log_their_fields_and_derived_sets_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, name, vbds) = {
        let db = Db::open(dir.path()).unwrap();
        let a = new_vm(&db, "a");
        let b = new_vm(&db, "b");
        let vm_field = vbd().field_index("VM").unwrap();
        db.write(|tx| {
            for i in 0..200 {
                let mut row = blank_row(vbd());
                row.fields[vm_field] = Value::from(a.as_str());
                tx.insert(&format!("OpaqueRef:vbd-{i:03}"), row);
            }
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
        let name = vm().field_index("name_label").unwrap();
        let before = db.logged.load(std::sync::atomic::Ordering::Relaxed);
        db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &a, name, Value::from("renamed")))).unwrap();
        let one_field = db.logged.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(one_field < 120, "a one-field update logged {one_field} bytes");
        // Moving a VBD changes both VMs' derived sets; only the VBD is logged.
        let before = db.logged.load(std::sync::atomic::Ordering::Relaxed);
        db.write(|tx| Ok::<_, crate::Refused>(tx.set(vbd(), "OpaqueRef:vbd-007", vm_field, Value::from(b.as_str()))))
            .unwrap();
        let moved = db.logged.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(moved < 160, "moving a VBD logged {moved} bytes");
        let vbds = vm().field_index("VBDs").unwrap();
        assert_eq!(db.read().get(vm(), &b).unwrap().fields[vbds], Value::Array(vec![Value::from("OpaqueRef:vbd-007")]));
        let (_, c) = db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &b, name, Value::from("b2")))).unwrap();
        db.durable_blocking(c).unwrap();
        // No shutdown (which writes a snapshot): the reopen replays the log.
        std::mem::forget(db);
        (a, b, name, vbds)
    };
    let db = Db::open(dir.path()).unwrap();
    let st = db.read();
    let ra = st.get(vm(), &a).unwrap();
    assert_eq!(ra.fields[name], Value::from("renamed"));
    let Value::Array(on_a) = &ra.fields[vbds] else { panic!("VBDs is not a set") };
    assert_eq!(on_a.len(), 199);
    assert!(!on_a.contains(&Value::from("OpaqueRef:vbd-007")));
    assert_eq!(st.get(vm(), &b).unwrap().fields[vbds], Value::Array(vec![Value::from("OpaqueRef:vbd-007")]));
    assert_eq!(st.get(vm(), &b).unwrap().fields[name], Value::from("b2"));
}

/// A patch naming an object the log never made is damage, not a silent skip.
#[test]
fn a_patch_to_an_unknown_object_is_damage() {
    let mut st = State::new();
    let layout = read_layout(&mut Reader::new(&schema_bytes())).unwrap();
    let mut rec = Vec::new();
    put_uv(&mut rec, 5);
    rec.push(REC_PATCH);
    put_uv(&mut rec, vm().index as u64);
    put_str(&mut rec, "OpaqueRef:nobody");
    put_uv(&mut rec, 0);
    let e = replay(&mut st, &layout, &rec).unwrap_err();
    assert!(e.0.contains("never made"), "{}", e.0);
}

#[test]
fn event_coalescing() {
    let db = Db::memory();
    let a = new_vm(&db, "a");
    let g = db.generation();
    let name = vm().field_index("name_label").unwrap();
    db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &a, name, Value::from("a2")))).unwrap();
    db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &a, name, Value::from("a3")))).unwrap();
    let b = new_vm(&db, "b");
    db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &b, name, Value::from("b2")))).unwrap();
    let c = new_vm(&db, "c");
    db.write(|tx| Ok::<_, crate::Refused>(tx.delete(vm(), &c))).unwrap();
    let st = db.read();
    let ch: Vec<(Change, String)> = st.changes_since(vm(), g).into_iter().map(|(c, r, _, _)| (c, r)).collect();
    assert_eq!(ch, vec![(Change::Mod, a.clone()), (Change::Add, b.clone())]);
    // A no-op write produces no event.
    drop(st);
    let g2 = db.generation();
    db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &a, name, Value::from("a3")))).unwrap();
    assert!(db.read().changes_since(vm(), g2).is_empty());
    // Delete of something that existed at g2.
    db.write(|tx| Ok::<_, crate::Refused>(tx.delete(vm(), &a))).unwrap();
    let ch: Vec<Change> = db.read().changes_since(vm(), g2).into_iter().map(|c| c.0).collect();
    assert_eq!(ch, vec![Change::Del]);
}

#[test]
fn durable_across_reopen_and_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let name = vm().field_index("name_label").unwrap();
    let r;
    {
        let db = Db::open(dir.path()).unwrap();
        r = new_vm(&db, "persisted");
        let (_, c) = db.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &r, name, Value::from("renamed")))).unwrap();
        db.durable_blocking(c).unwrap();
        // No shutdown: simulates a crash after the acknowledgement.
        std::mem::forget(db);
    }
    // Garbage appended after the last record must be ignored.
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("log-"))
        .unwrap()
        .path();
    let data = std::fs::read(&log).unwrap();
    let end = wal::records(&data).iter().map(|r| r.len() + 12).sum::<usize>();
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[7, 0, 0, 0, 1, 2, 3], end as u64).unwrap();
    drop(f);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.read().get(vm(), &r).unwrap().fields[name], Value::from("renamed"));
    let g = db.generation();
    db.shutdown().unwrap();
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    // Each start takes one generation of its own (so its new log file comes
    // after every existing one); generations never go back.
    assert_eq!(db.generation(), g + 1);
    assert_eq!(db.read().get(vm(), &r).unwrap().fields[name], Value::from("renamed"));
}

#[test]
fn transient_classes_are_not_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let session = class("session").unwrap();
    {
        let db = Db::open(dir.path()).unwrap();
        let (_, c) = db
            .write(|tx| {
                tx.insert("OpaqueRef:s", blank_row(session));
                Ok::<_, crate::Refused>(())
            })
            .unwrap();
        db.durable_blocking(c).unwrap();
        db.shutdown().unwrap();
    }
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.read().get(session, "OpaqueRef:s").is_some(), !session.transient);
}

// ---- startup checks: each kind of damage on a store with acknowledged writes ----

/// Every file in a directory (not sub-folders), by name.
fn contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn names(db: &Db) -> std::collections::BTreeSet<String> {
    let name = vm().field_index("name_label").unwrap();
    db.read().table(vm()).iter().map(|(_, r)| r.fields[name].as_str().unwrap().to_string()).collect()
}

/// `n` acknowledged VM creations, then a crash (no shutdown).
fn crash_after(dir: &Path, prefix: &str, n: usize) {
    let db = Db::open(dir).unwrap();
    for i in 0..n {
        let name = format!("{prefix}{i}");
        let r = model::new_ref();
        let (_, c) = db
            .write(|tx| {
                let mut row = blank_row(vm());
                row.fields[vm().field_index("name_label").unwrap()] = Value::from(name.as_str());
                tx.insert(&r, row);
                Ok::<_, crate::Refused>(())
            })
            .unwrap();
        db.durable_blocking(c).unwrap();
    }
    std::mem::forget(db);
}

fn only_log(dir: &Path) -> PathBuf {
    let logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log-"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs[0].clone()
}

/// Offsets of the intact frames of a file.
fn frame_offsets(path: &Path) -> Vec<u64> {
    let data = std::fs::read(path).unwrap();
    wal::parse(&data).frames.iter().map(|(o, _)| *o).collect()
}

fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

fn set_aside_dir(dir: &Path) -> PathBuf {
    let d: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("damaged-"))
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    d[0].clone()
}

/// A store whose snapshot holds `a0..a{n}` and whose log holds `b0..b{m}`.
fn snapshot_and_log(dir: &Path, n: usize, m: usize) {
    crash_after(dir, "a", n);
    Db::open(dir).unwrap().shutdown().unwrap();
    crash_after(dir, "b", m);
}

#[test]
fn flipped_byte_mid_log_refuses_and_recovery_keeps_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    crash_after(dir.path(), "vm", 30);
    let log = only_log(dir.path());
    let offs = frame_offsets(&log);
    // Record 10 (after the schema record): a byte of its payload.
    let at = offs[11] + 20;
    flip(&log, at);
    let before = contents(dir.path());
    let e = Db::open(dir.path()).err().expect("a flipped byte must refuse");
    match &e {
        StoreError::Damaged { file, offset, .. } => {
            assert_eq!(file, &log);
            assert_eq!(*offset, offs[11]);
        }
        other => panic!("{other}"),
    }
    assert!(e.is_damage());
    assert!(e.to_string().contains(&format!("byte offset {}", offs[11])), "{e}");
    assert_eq!(contents(dir.path()), before, "a refusal must not change any file");
    // Recovery: records 0..10 stay, the rest is aside with the old files.
    let db = Db::open_with(dir.path(), true).unwrap();
    let want: std::collections::BTreeSet<String> = (0..10).map(|i| format!("vm{i}")).collect();
    assert_eq!(names(&db), want);
    db.shutdown().unwrap();
    drop(db);
    let aside = set_aside_dir(dir.path());
    assert_eq!(contents(&aside), before, "the damaged files are kept as they were");
    // And the recovered store opens cleanly afterwards.
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(names(&db), want);
}

#[test]
fn deleted_snapshot_refuses_and_recovery_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    snapshot_and_log(dir.path(), 5, 5);
    std::fs::remove_file(dir.path().join("snapshot")).unwrap();
    let before = contents(dir.path());
    let e = Db::open(dir.path()).err().expect("logs without a snapshot must refuse");
    assert!(matches!(e, StoreError::NoSnapshot { .. }), "{e}");
    assert!(e.to_string().contains("log-"), "{e}");
    assert_eq!(contents(dir.path()), before);
    let db = Db::open_with(dir.path(), true).unwrap();
    assert!(names(&db).is_empty(), "nothing is replayed without its snapshot");
    drop(db);
    assert_eq!(contents(&set_aside_dir(dir.path())), before);
}

#[test]
fn deleted_or_emptied_log_refuses_and_recovery_keeps_the_snapshot() {
    for truncate in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        snapshot_and_log(dir.path(), 4, 6);
        let log = only_log(dir.path());
        if truncate {
            std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
        } else {
            std::fs::remove_file(&log).unwrap();
        }
        let before = contents(dir.path());
        let e = Db::open(dir.path()).err().expect("a lost log must refuse");
        if truncate {
            assert!(matches!(&e, StoreError::Damaged { file, offset: 0, .. } if *file == log), "{e}");
        } else {
            assert!(matches!(&e, StoreError::MissingLog { expected, .. } if *expected == log), "{e}");
        }
        assert_eq!(contents(dir.path()), before);
        let db = Db::open_with(dir.path(), true).unwrap();
        let want: std::collections::BTreeSet<String> = (0..4).map(|i| format!("a{i}")).collect();
        assert_eq!(names(&db), want);
        drop(db);
        assert_eq!(contents(&set_aside_dir(dir.path())), before);
    }
}

#[test]
fn damaged_snapshot_refuses() {
    let dir = tempfile::tempdir().unwrap();
    snapshot_and_log(dir.path(), 3, 3);
    flip(&dir.path().join("snapshot"), 40);
    let before = contents(dir.path());
    let e = Db::open(dir.path()).err().expect("a damaged snapshot must refuse");
    assert!(matches!(&e, StoreError::Damaged { file, offset: 0, .. } if file.ends_with("snapshot")), "{e}");
    assert_eq!(contents(dir.path()), before);
}

#[test]
fn torn_tail_is_dropped_and_everything_acknowledged_kept() {
    let dir = tempfile::tempdir().unwrap();
    crash_after(dir.path(), "vm", 20);
    let log = only_log(dir.path());
    let data = std::fs::read(&log).unwrap();
    let end = wal::parse(&data).end;
    // Half a record: a length, a wrong checksum, some payload.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.write_all_at(&[200, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5], end).unwrap();
    drop(f);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(names(&db).len(), 20);
    std::mem::forget(db);
    // The torn bytes were cleared, so the next start is clean too.
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(names(&db).len(), 20);
}

#[test]
fn damage_in_an_older_log_file_refuses() {
    // A crash between a compaction's rotation and its snapshot leaves two
    // logs after the snapshot; the older one must be complete.
    let dir = tempfile::tempdir().unwrap();
    crash_after(dir.path(), "a", 5);
    let saved = contents(dir.path());
    let db = Db::open(dir.path()).unwrap();
    let name = vm().field_index("name_label").unwrap();
    for i in 0..3 {
        let r = model::new_ref();
        let (_, c) = db
            .write(|tx| {
                let mut row = blank_row(vm());
                row.fields[name] = Value::from(format!("b{i}"));
                tx.insert(&r, row);
                Ok::<_, crate::Refused>(())
            })
            .unwrap();
        db.durable_blocking(c).unwrap();
    }
    std::mem::forget(db);
    // Put the first run's snapshot and log back beside the second run's log.
    let log2 = only_log(dir.path());
    let data2 = std::fs::read(&log2).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()) {
        std::fs::remove_file(e.path()).unwrap();
    }
    for (n, d) in &saved {
        std::fs::write(dir.path().join(n), d).unwrap();
    }
    let log1 = only_log(dir.path());
    std::fs::write(&log2, &data2).unwrap();
    assert!(log1 < log2);
    let pristine = contents(dir.path());
    // Intact: both logs replay in order (the first run's five VMs are in
    // both its log and the second run's snapshot, which is gone here).
    {
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(names(&db).len(), 5 + 3);
        std::mem::forget(db);
    }
    for e in std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()) {
        std::fs::remove_file(e.path()).unwrap();
    }
    for (n, d) in &pristine {
        std::fs::write(dir.path().join(n), d).unwrap();
    }
    // The last record of the older file: a torn tail there is damage.
    let last = *frame_offsets(&log1).last().unwrap();
    flip(&log1, last + 14);
    let before = contents(dir.path());
    let e = Db::open(dir.path()).err().expect("damage in a finished log must refuse");
    assert!(matches!(&e, StoreError::Damaged { file, offset, .. } if *file == log1 && *offset == last), "{e}");
    assert_eq!(contents(dir.path()), before);
}

#[test]
fn interrupted_first_start_is_a_first_start() {
    let dir = tempfile::tempdir().unwrap();
    // The log the first start creates, with nothing after its schema record.
    std::fs::write(wal::log_path(dir.path(), 2), wal::frame(&schema_bytes())).unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert!(names(&db).is_empty());
    drop(db);
    // But a later log without a snapshot is a lost snapshot.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(wal::log_path(dir.path(), 9), wal::frame(&schema_bytes())).unwrap();
    assert!(matches!(Db::open(dir.path()), Err(StoreError::NoSnapshot { .. })));
}

#[test]
fn clean_restarts_keep_everything_and_leave_one_log() {
    let dir = tempfile::tempdir().unwrap();
    crash_after(dir.path(), "vm", 3);
    for _ in 0..3 {
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(names(&db).len(), 3);
        db.shutdown().unwrap();
    }
    only_log(dir.path());
}

#[test]
fn dump_restores_on_the_next_open() {
    let src = tempfile::tempdir().unwrap();
    crash_after(src.path(), "vm", 7);
    let db = Db::open(src.path()).unwrap();
    let dump = db.dump();
    let want = names(&db);
    drop(db);
    assert_eq!(read_dump(&dump).unwrap().table(vm()).len(), 7);
    // Damage of every kind is refused before anything is staged.
    let mut flipped = dump.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(matches!(read_dump(&flipped), Err(DumpError::Damaged { .. })));
    assert!(matches!(read_dump(&dump[..dump.len() - 5]), Err(DumpError::Damaged { .. })));
    assert!(matches!(read_dump(b"<database></database>"), Err(DumpError::NotADump)));
    let mut v2 = dump.clone();
    let at = DUMP_MAGIC.len();
    v2[at] = b'2';
    assert!(matches!(read_dump(&v2), Err(DumpError::Version(v)) if v == "2"));

    let dst = tempfile::tempdir().unwrap();
    crash_after(dst.path(), "other", 2);
    let db = Db::open(dst.path()).unwrap();
    assert!(db.stage_restore(&flipped).is_err());
    assert!(!dst.path().join(RESTORE_FILE).exists());
    db.stage_restore(&dump).unwrap();
    // Staged only: the running store is unchanged.
    assert_eq!(names(&db).len(), 2);
    let g = db.generation();
    db.shutdown().unwrap();
    drop(db);
    let db = Db::open(dst.path()).unwrap();
    assert_eq!(names(&db), want);
    assert!(db.generation() > g, "generations never go back");
    assert!(!dst.path().join(RESTORE_FILE).exists());
    drop(db);
    let replaced: Vec<_> = std::fs::read_dir(dst.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("replaced-"))
        .collect();
    assert_eq!(replaced.len(), 1, "the replaced store is kept");
}

#[test]
fn a_zeroed_length_mid_log_refuses_but_noise_after_the_end_does_not() {
    // A record length turned to 0 would silently end the log early.
    let dir = tempfile::tempdir().unwrap();
    crash_after(dir.path(), "vm", 12);
    let log = only_log(dir.path());
    let offs = frame_offsets(&log);
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.write_all_at(&[0, 0, 0, 0], offs[5]).unwrap();
    drop(f);
    let before = contents(dir.path());
    let e = Db::open(dir.path()).err().expect("a zeroed length with records after it must refuse");
    assert!(matches!(&e, StoreError::Damaged { offset, .. } if *offset == offs[5]), "{e}");
    assert!(e.to_string().contains("intact record follows"), "{e}");
    assert_eq!(contents(dir.path()), before);

    // A stray byte in the zeros after the last record loses nothing.
    let dir = tempfile::tempdir().unwrap();
    crash_after(dir.path(), "vm", 12);
    let log = only_log(dir.path());
    let data = std::fs::read(&log).unwrap();
    let end = wal::parse(&data).end;
    flip(&log, end + 1000);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(names(&db).len(), 12);
}

/// A two-replica pool in one process: the leader's records are applied by
/// the follower at once; the follower's writes go through the leader.
struct Lead(std::sync::Mutex<Vec<Vec<u8>>>);
impl Replicator for Lead {
    fn role(&self) -> Role {
        Role::Leader
    }
    fn propose(&self, record: Vec<u8>) -> u64 {
        let mut q = self.0.lock().unwrap();
        q.push(record);
        q.len() as u64
    }
    fn wait(&self, _seq: u64) -> replica::WaitFuture<'_> {
        Box::pin(async { Ok(()) })
    }
    fn wait_blocking(&self, _seq: u64) -> Result<(), String> {
        Ok(())
    }
    fn forward(&self, _changes: Vec<u8>) -> Result<(), String> {
        Err("not a follower".into())
    }
}

struct Follow {
    leader: Arc<Db>,
    lead: Arc<Lead>,
    me: std::sync::OnceLock<Arc<Db>>,
}
impl Replicator for Follow {
    fn role(&self) -> Role {
        Role::Follower
    }
    fn propose(&self, _record: Vec<u8>) -> u64 {
        unreachable!("a follower proposes nothing")
    }
    fn wait(&self, _seq: u64) -> replica::WaitFuture<'_> {
        Box::pin(async { Ok(()) })
    }
    fn wait_blocking(&self, _seq: u64) -> Result<(), String> {
        Ok(())
    }
    fn forward(&self, changes: Vec<u8>) -> Result<(), String> {
        self.leader.apply_changes(&changes).map_err(|e| e.0.to_string())?;
        sync(self.me.get().unwrap(), &self.lead);
        Ok(())
    }
}

fn sync(follower: &Db, lead: &Lead) {
    for rec in lead.0.lock().unwrap().drain(..) {
        follower.apply_record(&rec).unwrap();
    }
}

fn same(a: &Db, b: &Db) {
    let (sa, sb) = (a.read(), b.read());
    for c in CLASSES.iter().filter(|c| !c.transient) {
        let ta = &sa.table(c).rows;
        let tb = &sb.table(c).rows;
        assert_eq!(ta.len(), tb.len(), "{}", c.name);
        for (r, e) in ta.iter() {
            assert_eq!(e.row.fields, tb.get(r).unwrap_or_else(|| panic!("{} {r} missing", c.name)).row.fields);
        }
    }
}

#[test]
fn replicas_converge_through_the_leader() {
    let lead = Arc::new(Lead(Default::default()));
    let leader = Arc::new(Db::memory());
    let v = new_vm(&leader, "before the pool");
    leader.set_replicator(lead.clone()).unwrap();
    let follower = Arc::new(Db::memory());
    follower.install(&leader.dump()).unwrap();
    let f = Arc::new(Follow { leader: leader.clone(), lead: lead.clone(), me: Default::default() });
    let _ = f.me.set(follower.clone());
    follower.set_replicator(f).unwrap();
    assert_eq!(follower.replicated(), Some(Role::Follower));
    same(&leader, &follower);

    // The leader writes: applied there at once, here from its record.
    let w = new_vm(&leader, "on the leader");
    assert!(follower.read().get(vm(), &w).is_none());
    sync(&follower, &lead);
    same(&leader, &follower);

    // The follower writes a field and a new VBD: the leader applies them,
    // derives VM.VBDs itself, and the follower has the leader's rows.
    let name = vm().field_index("name_label").unwrap();
    let b = "OpaqueRef:vbd-from-member".to_string();
    let vm_field = vbd().field_index("VM").unwrap();
    follower
        .write(|tx| {
            tx.set(vm(), &v, name, Value::from("renamed on a member"));
            let mut row = blank_row(vbd());
            row.fields[vm_field] = Value::from(v.as_str());
            tx.insert(&b, row);
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
    assert_eq!(leader.read().get(vm(), &v).unwrap().fields[name], Value::from("renamed on a member"));
    let vbds = vm().field_index("VBDs").unwrap();
    assert_eq!(leader.read().get(vm(), &v).unwrap().fields[vbds], Value::Array(vec![Value::from(b.as_str())]));
    same(&leader, &follower);

    // A field set on the member does not undo another field set meanwhile on
    // the leader (field-level, as xapi's members write).
    let desc = vm().field_index("name_description").unwrap();
    leader.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &v, desc, Value::from("leader's")))).unwrap();
    follower.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &v, name, Value::from("member's")))).unwrap();
    let row = leader.read().get(vm(), &v).unwrap().clone();
    assert_eq!(row.fields[desc], Value::from("leader's"));
    assert_eq!(row.fields[name], Value::from("member's"));
    same(&leader, &follower);

    // A member whose copy lags (it has not applied the leader's last two
    // records) changes a map and a set: what it added and removed is
    // applied to the leader's values, not its stale whole values. An
    // operation the leader began meanwhile stays; one it ended does not
    // come back.
    let ops = vm().field_index("current_operations").unwrap();
    let tags = vm().field_index("tags").unwrap();
    let map = |kv: &[(&str, &str)]| Value::Struct(kv.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect());
    let set = |xs: &[&str]| Value::Array(xs.iter().map(|x| Value::from(*x)).collect());
    leader
        .write(|tx| {
            tx.set(vm(), &v, ops, map(&[("old-task", "pause")]));
            tx.set(vm(), &v, tags, set(&["a", "b"]));
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
    sync(&follower, &lead);
    leader
        .write(|tx| {
            tx.set(vm(), &v, ops, map(&[("leader-task", "start")]));
            tx.set(vm(), &v, tags, set(&["a", "b", "c"]));
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
    let stale = lead.0.lock().unwrap().split_off(0);
    follower
        .write(|tx| {
            tx.update(vm(), &v, |row| {
                if let Value::Struct(m) = &mut row.fields[ops] {
                    m.push(("member-task".into(), Value::from("clean_shutdown")));
                }
                row.fields[tags] = set(&["b", "d"]);
            });
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
    let row = leader.read().get(vm(), &v).unwrap().clone();
    assert_eq!(row.fields[ops], map(&[("leader-task", "start"), ("member-task", "clean_shutdown")]));
    assert_eq!(row.fields[tags], set(&["b", "c", "d"]));
    // (The member had the records in the wrong order here; start it again
    // from the leader's state, as a host rebuilt from a snapshot.)
    drop(stale);
    follower.install(&leader.dump()).unwrap();
    lead.0.lock().unwrap().clear();
    same(&leader, &follower);

    // Deletions travel both ways.
    follower.write(|tx| Ok::<_, crate::Refused>(tx.delete(vbd(), &b))).unwrap();
    leader.write(|tx| Ok::<_, crate::Refused>(tx.delete(vm(), &w))).unwrap();
    sync(&follower, &lead);
    assert_eq!(leader.read().get(vm(), &v).unwrap().fields[vbds], Value::Array(vec![]));
    same(&leader, &follower);
}

#[test]
fn a_replica_sets_patched_fields_in_place_keeping_derived_sets_and_events() {
    let lead = Arc::new(Lead(Default::default()));
    let leader = Arc::new(Db::memory());
    let (a, b) = (new_vm(&leader, "a"), new_vm(&leader, "b"));
    let d = "OpaqueRef:vbd-moving".to_string();
    let vm_field = vbd().field_index("VM").unwrap();
    leader
        .write(|tx| {
            let mut row = blank_row(vbd());
            row.fields[vm_field] = Value::from(a.as_str());
            tx.insert(&d, row);
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
    leader.set_replicator(lead.clone()).unwrap();
    let follower = Arc::new(Db::memory());
    follower.install(&leader.dump()).unwrap();
    let f = Arc::new(Follow { leader: leader.clone(), lead: lead.clone(), me: Default::default() });
    let _ = f.me.set(follower.clone());
    follower.set_replicator(f).unwrap();
    let vbds = vm().field_index("VBDs").unwrap();
    let name = vm().field_index("name_label").unwrap();
    assert_eq!(follower.read().get(vm(), &a).unwrap().fields[vbds], Value::Array(vec![Value::from(d.as_str())]));
    // A reader holding a row keeps the version it read.
    let held = follower.read().table(vm()).rows.get(&a).unwrap().row.clone();
    let since = follower.generation();

    // Three records applied as one batch: the disk moves to b, a is renamed
    // twice (the later name wins), then the disk is deleted and made again
    // on a.
    leader.write(|tx| Ok::<_, crate::Refused>(tx.set(vbd(), &d, vm_field, Value::from(b.as_str())))).unwrap();
    leader.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &a, name, Value::from("first")))).unwrap();
    leader.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &a, name, Value::from("second")))).unwrap();
    let recs: Vec<Vec<u8>> = lead.0.lock().unwrap().drain(..).collect();
    follower.apply_records(recs.iter().map(Vec::as_slice)).unwrap();
    same(&leader, &follower);
    {
        let st = follower.read();
        assert_eq!(st.get(vm(), &a).unwrap().fields[vbds], Value::Array(vec![]));
        assert_eq!(st.get(vm(), &b).unwrap().fields[vbds], Value::Array(vec![Value::from(d.as_str())]));
        assert_eq!(st.get(vm(), &a).unwrap().fields[name], Value::from("second"));
        let changed: Vec<String> = st.changes_since(vm(), since).into_iter().map(|(_, r, _, _)| r).collect();
        assert!(changed.contains(&a) && changed.contains(&b), "{changed:?}");
        assert_eq!(st.changes_since(vbd(), since).len(), 1);
    }
    assert_eq!(held.fields[name], Value::from("a"));

    leader.write(|tx| Ok::<_, crate::Refused>(tx.delete(vbd(), &d))).unwrap();
    leader
        .write(|tx| {
            let mut row = blank_row(vbd());
            row.fields[vm_field] = Value::from(a.as_str());
            tx.insert(&d, row);
            Ok::<_, crate::Refused>(())
        })
        .unwrap();
    leader.write(|tx| Ok::<_, crate::Refused>(tx.set(vm(), &b, name, Value::from("b again")))).unwrap();
    let recs: Vec<Vec<u8>> = lead.0.lock().unwrap().drain(..).collect();
    follower.apply_records(recs.iter().map(Vec::as_slice)).unwrap();
    same(&leader, &follower);
    assert_eq!(follower.read().get(vm(), &a).unwrap().fields[vbds], Value::Array(vec![Value::from(d.as_str())]));
    assert_eq!(follower.read().get(vm(), &b).unwrap().fields[vbds], Value::Array(vec![]));
}

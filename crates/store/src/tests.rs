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
        Ok::<_, ()>(())
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
    db.write(|tx| Ok::<_, ()>(tx.delete(vm(), &r))).unwrap();
    assert!(db.read().table(vm()).by_uuid(&uuid).is_none());
}

#[test]
fn failed_transaction_changes_nothing() {
    let db = Db::memory();
    let g = db.generation();
    let r: Result<((), Commit), &str> = db.write(|tx| {
        tx.insert("OpaqueRef:x", blank_row(vm()));
        Err("no")
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
        Ok::<_, ()>(())
    })
    .unwrap();
    assert_eq!(db.read().get(vm(), &v).unwrap().fields[vbds], Value::Array(vec![Value::from(b.as_str())]));
    db.write(|tx| Ok::<_, ()>(tx.delete(vbd(), &b))).unwrap();
    assert_eq!(db.read().get(vm(), &v).unwrap().fields[vbds], Value::Array(vec![]));
}

#[test]
fn event_coalescing() {
    let db = Db::memory();
    let a = new_vm(&db, "a");
    let g = db.generation();
    let name = vm().field_index("name_label").unwrap();
    db.write(|tx| Ok::<_, ()>(tx.set(vm(), &a, name, Value::from("a2")))).unwrap();
    db.write(|tx| Ok::<_, ()>(tx.set(vm(), &a, name, Value::from("a3")))).unwrap();
    let b = new_vm(&db, "b");
    db.write(|tx| Ok::<_, ()>(tx.set(vm(), &b, name, Value::from("b2")))).unwrap();
    let c = new_vm(&db, "c");
    db.write(|tx| Ok::<_, ()>(tx.delete(vm(), &c))).unwrap();
    let st = db.read();
    let ch: Vec<(Change, String)> = st.changes_since(vm(), g).into_iter().map(|(c, r, _, _)| (c, r)).collect();
    assert_eq!(ch, vec![(Change::Mod, a.clone()), (Change::Add, b.clone())]);
    // A no-op write produces no event.
    drop(st);
    let g2 = db.generation();
    db.write(|tx| Ok::<_, ()>(tx.set(vm(), &a, name, Value::from("a3")))).unwrap();
    assert!(db.read().changes_since(vm(), g2).is_empty());
    // Delete of something that existed at g2.
    db.write(|tx| Ok::<_, ()>(tx.delete(vm(), &a))).unwrap();
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
        let (_, c) = db.write(|tx| Ok::<_, ()>(tx.set(vm(), &r, name, Value::from("renamed")))).unwrap();
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
    assert_eq!(db.generation(), g);
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
                Ok::<_, ()>(())
            })
            .unwrap();
        db.durable_blocking(c).unwrap();
        db.shutdown().unwrap();
    }
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.read().get(session, "OpaqueRef:s").is_some(), !session.transient);
}

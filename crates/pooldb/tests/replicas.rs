//! Three replicas of a pool database in one process, each with its own
//! engine files and its own TCP port on loopback: the founder's database
//! reaches the others, the leader's and a member's writes reach everyone,
//! and after the leader stops, the other two elect a new one that still
//! holds every acknowledged write.

use model::schema::CLASS_VM;
use model::Value;
use pooldb::Pool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::{blank_row, Db, Refused, Role};

fn name_of(db: &Db, r: &str) -> Option<Value> {
    let i = CLASS_VM.field_index("name_label")?;
    db.read().get(&CLASS_VM, r).map(|row| row.fields[i].clone())
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn new_vm(db: &Db, r: &str, name: &str) {
    let i = CLASS_VM.field_index("name_label").expect("name_label");
    let (_, c) = db
        .write(|tx| {
            let mut row = blank_row(&CLASS_VM);
            row.fields[i] = Value::from(name);
            tx.insert(r, row);
            Ok::<_, Refused>(())
        })
        .expect("write");
    db.durable_blocking(c).expect("durable");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_agree_and_survive_the_leader() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| SocketAddr::from(([127, 0, 0, 1], free_port()))).collect();
    let dbs: Vec<Arc<Db>> = (0..3).map(|_| Arc::new(Db::memory())).collect();
    // What the founder had before the pool.
    new_vm(&dbs[0], "OpaqueRef:before", "made before the pool");
    let mut pools: Vec<Arc<Pool>> = Vec::new();
    for (i, (dir, db)) in dirs.iter().zip(&dbs).enumerate() {
        let p = Pool::open(dir.path(), db.clone(), i as u64 + 1, "secret").await.expect("open");
        p.listen(addrs[i]).await.expect("listen");
        pools.push(p);
    }
    pools[0].found(&addrs[0].to_string()).await.expect("found");
    for (i, a) in addrs.iter().enumerate().skip(1) {
        pools[0].admit(i as u64 + 1, &a.to_string()).await.expect("admit");
    }
    for p in &pools[1..] {
        assert_eq!(p.settle(Duration::from_secs(30)).await.expect("settle"), Role::Follower);
    }
    // Only learners that have caught up become voters: both, once each has.
    pools[0].promote(2, Duration::from_secs(30)).await.expect("promote");
    pools[0].promote(3, Duration::from_secs(30)).await.expect("promote");
    assert_eq!(pools[0].members().iter().filter(|(_, _, voter)| *voter).count(), 3);
    for db in &dbs[1..] {
        until("the founder's database", || name_of(db, "OpaqueRef:before").is_some()).await;
    }

    // A write on the leader, then one on a member (through the leader).
    let d0 = dbs[0].clone();
    tokio::task::spawn_blocking(move || new_vm(&d0, "OpaqueRef:lead", "on the leader")).await.expect("join");
    let d1 = dbs[1].clone();
    tokio::task::spawn_blocking(move || new_vm(&d1, "OpaqueRef:member", "on a member")).await.expect("join");
    for db in &dbs {
        until("both writes everywhere", || {
            name_of(db, "OpaqueRef:lead").is_some() && name_of(db, "OpaqueRef:member").is_some()
        })
        .await;
    }

    // The leader stops: the two others elect one of themselves, which has
    // every acknowledged write.
    pools[0].raft.shutdown().await.expect("shutdown");
    let survivors = [pools[1].clone(), pools[2].clone()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let leaders: Vec<u64> =
            survivors.iter().filter_map(|p| p.raft.metrics().borrow().current_leader).filter(|l| *l != 1).collect();
        if let Some(l) = leaders.first() {
            break *l;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(leader == 2 || leader == 3);
    let db = &dbs[leader as usize - 1];
    assert_eq!(name_of(db, "OpaqueRef:lead"), Some(Value::from("on the leader")));
    assert_eq!(name_of(db, "OpaqueRef:member"), Some(Value::from("on a member")));
    for p in survivors {
        let _ = p.raft.shutdown().await;
    }
}

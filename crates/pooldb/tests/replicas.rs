//! Three replicas of a pool database in one process, each with its own
//! engine files and its own TCP port on loopback: the founder's database
//! reaches the others, the leader's and a member's writes reach everyone,
//! and after the leader stops, the other two elect a new one that still
//! holds every acknowledged write. The engine's connections are TLS with
//! the pool's certificates only.

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

/// A certificate and key for one host, as its DER.
fn engine_cert() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(vec!["host".to_string()]).expect("params").self_signed(&key).expect("cert");
    (cert.der().to_vec(), key.serialize_der())
}

/// Host `own`'s TLS, trusting the certificates `pool`.
fn tls(own: &(Vec<u8>, Vec<u8>), pool: &[(Vec<u8>, Vec<u8>)]) -> pooldb::Tls {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let known: Vec<Vec<u8>> = pool.iter().map(|(c, _)| c.clone()).collect();
    let trust: pooldb::Trust = Arc::new(move |der: &[u8]| known.iter().any(|k| k == der));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(own.1.clone()));
    pooldb::Tls::new(vec![CertificateDer::from(own.0.clone())], key, trust).expect("tls")
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
    let certs: Vec<_> = (0..3).map(|_| engine_cert()).collect();
    let mut pools: Vec<Arc<Pool>> = Vec::new();
    for (i, (dir, db)) in dirs.iter().zip(&dbs).enumerate() {
        let p = Pool::open(dir.path(), db.clone(), i as u64 + 1, "secret", tls(&certs[i], &certs)).await.expect("open");
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

/// A host only talks to a host whose certificate the pool knows, and the
/// engine's port speaks nothing but TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_talks_tls_to_the_pools_certificates_only() {
    let (da, db_) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (ca, cb) = (engine_cert(), engine_cert());
    let (aa, ab) = (SocketAddr::from(([127, 0, 0, 1], free_port())), SocketAddr::from(([127, 0, 0, 1], free_port())));
    // A knows only itself; B (an outsider with the same secret) knows both.
    let a = Pool::open(da.path(), Arc::new(Db::memory()), 1, "secret", tls(&ca, std::slice::from_ref(&ca)))
        .await
        .expect("open");
    let b = Pool::open(db_.path(), Arc::new(Db::memory()), 1, "secret", tls(&cb, &[ca.clone(), cb.clone()]))
        .await
        .expect("open");
    a.listen(aa).await.expect("listen");
    b.listen(ab).await.expect("listen");
    let err = a.call(&ab.to_string(), b"{}", Duration::from_secs(5)).await.expect_err("A must refuse B's certificate");
    assert!(err.contains("certificate") || err.contains("Certificate"), "{err}");
    // B trusts A, and reaches it (the call itself has nothing to run it).
    let err = b.call(&aa.to_string(), b"{}", Duration::from_secs(5)).await.expect_err("A runs no calls");
    assert!(err.contains("answered"), "a TLS exchange that got an HTTP answer: {err}");
    // Plain HTTP on the engine's port gets no answer.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut plain = tokio::net::TcpStream::connect(aa).await.expect("connect");
    plain
        .write_all(b"POST /pool/point HTTP/1.1\r\nx-pool-secret: secret\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut got)).await;
    assert!(!got.starts_with(b"HTTP/"), "plain HTTP answered: {:?}", String::from_utf8_lossy(&got));
    let _ = a.raft.shutdown().await;
    let _ = b.raft.shutdown().await;
}

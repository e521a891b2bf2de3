//! API benchmarks (core server issue, part 9). Run with
//! `cargo bench -p bench --bench api [filter]`. Servers (xapid and the hyper
//! peer) run on a one-worker runtime pinned to CPU 0, load generators on CPU 1;
//! every number is printed beside its peer measured in the same run.

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::Value;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DUR: Duration = Duration::from_secs(3);
const ROUNDS: u32 = 6;

fn s(v: &str) -> Value {
    Value::from(v)
}

fn find(x: &Xapid, class: &str, name: Option<&str>) -> String {
    let st = x.running.server.db.read();
    let c = model::schema::class(class).expect("class");
    let nl = c.field_index("name_label");
    let r = st
        .table(c)
        .iter()
        .find(|(_, r)| name.is_none() || nl.and_then(|i| r.fields[i].as_str()) == name)
        .map(|(r, _)| r.clone())
        .expect("object");
    r
}

/// The calls of the round-trip sections: (message, protocol, request body).
fn small_calls(x: &Xapid) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let vm = find(x, "VM", Some("Debian Bookworm 12"));
    vec![
        ("VM.get_record", "XML-RPC", xml_call("VM.get_record", &[s(&x.session), s(&vm)])),
        ("VM.get_record", "JSON-RPC", json_call("VM.get_record", &[s(&x.session), s(&vm)])),
        ("session.get_this_host", "XML-RPC", xml_call("session.get_this_host", &[s(&x.session), s(&x.session)])),
        ("session.get_this_host", "JSON-RPC", json_call("session.get_this_host", &[s(&x.session), s(&x.session)])),
    ]
}

fn round_trips(rt: &Rts) {
    println!("\n## RPC round trips (keep-alive), xapid vs a minimal hyper server with the same parse and reply bytes");
    let x = rt.srv.block_on(start_xapid(false));
    let cases = small_calls(&x);
    println!("| call | protocol | conns | reply bytes | xapid req/s | hyper peer req/s | ratio |");
    println!("|---|---|---|---|---|---|---|");
    for (name, proto, body) in cases {
        let path = if proto == "JSON-RPC" { "/jsonrpc" } else { "/" };
        let reply = rt.cli.block_on(async {
            let mut c = Client::connect(x.addr).await;
            c.post(path, body.clone()).await
        });
        let len = reply.len();
        let peer = rt.srv.block_on(start_peer(reply.clone(), reply));
        for conns in [1usize, 16] {
            // Short alternating rounds, so that drift in this shared VM's speed
            // hits both sides alike.
            let (mut ours, mut theirs) = (0.0, 0.0);
            for _ in 0..ROUNDS {
                ours += rt.cli.block_on(load(x.addr, path, body.clone(), conns, DUR / ROUNDS)) / ROUNDS as f64;
                theirs += rt.cli.block_on(load(peer, path, body.clone(), conns, DUR / ROUNDS)) / ROUNDS as f64;
            }
            println!("| {name} | {proto} | {conns} | {len} | {ours:.0} | {theirs:.0} | {:.2} |", ours / theirs);
        }
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}

/// Where a round trip's server time goes: the same bodies through the
/// protocol layer in this thread, without HTTP or sockets.
fn in_process(rt: &Rts) {
    println!("\n## In-process cost per call (parse, dispatch, encode; no HTTP)");
    let x = rt.srv.block_on(start_xapid(false));
    let cases = small_calls(&x);
    let server = x.running.server.clone();
    let n: u32 = std::env::var("INPROC_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    for (name, proto, body) in &cases {
        let t = Instant::now();
        rt.srv.block_on(async {
            for _ in 0..n {
                let r = if *proto == "JSON-RPC" {
                    server::rpc::json(&server, body, false).await
                } else {
                    server::rpc::xml(&server, body, false).await
                };
                std::hint::black_box(r.is_ok());
            }
        });
        println!("- {name} {proto}: {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}

fn get_all_records(rt: &Rts) {
    println!("\n## VM.get_all_records with 10,000 VMs: wall time to last byte vs bare serialization in this process");
    let x = rt.srv.block_on(start_xapid(false));
    let server = x.running.server.clone();
    let c = model::schema::class("VM").expect("VM");
    let template = {
        let st = server.db.read();
        let nl = c.field_index("name_label").expect("name_label");
        let r = st
            .table(c)
            .iter()
            .find(|(_, r)| r.fields[nl].as_str() == Some("Debian Bookworm 12"))
            .map(|(_, r)| (**r).clone())
            .expect("template");
        r
    };
    let (uuid, nl, tmpl) = (
        c.field_index("uuid").expect("uuid"),
        c.field_index("name_label").expect("nl"),
        c.field_index("is_a_template").expect("t"),
    );
    server
        .db
        .write(|tx| {
            for i in 0..10_000 {
                let mut row = template.clone();
                row.fields[uuid] = Value::String(model::new_uuid());
                row.fields[nl] = Value::String(format!("bench-vm-{i}"));
                row.fields[tmpl] = Value::Bool(false);
                tx.insert(&model::new_ref(), row);
            }
            Ok::<_, store::Refused>(())
        })
        .expect("populate");
    // The stored rows themselves, as the server encodes them. (Bulk replies
    // make no kept encodings, and none of these rows was fetched alone, so
    // this is the full encoding work.)
    let all = || {
        let st = server.db.read();
        Value::Struct(st.table(c).iter().map(|(r, row)| (r.clone(), Value::Row(row.clone()))).collect())
    };
    println!("| protocol | reply MiB | bare serialize ms | server work ms | first get_all_records ms | ratio | later calls ms | ratio | peak RSS growth MiB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for proto in ["XML-RPC", "JSON-RPC"] {
        let mut bare = f64::MAX;
        let mut size = 0.0;
        for _ in 0..5 {
            let ok = wire::Outcome::Success(all());
            let t = Instant::now();
            let mut out = Vec::new();
            if proto == "XML-RPC" {
                wire::xmlrpc::write_response(&mut out, &ok);
            } else {
                wire::jsonrpc::write_response(&mut out, wire::jsonrpc::Version::V2, &serde_json::Value::from(1), &ok);
            }
            bare = bare.min(t.elapsed().as_secs_f64() * 1e3);
            size = out.len() as f64 / (1 << 20) as f64;
        }
        let (path, body) = if proto == "XML-RPC" {
            ("/", xml_call("VM.get_all_records", &[s(&x.session)]))
        } else {
            ("/jsonrpc", json_call("VM.get_all_records", &[s(&x.session)]))
        };
        // The server's own work for the call: dispatch and every piece encoded,
        // in this thread.
        let mut inproc = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let r = rt.srv.block_on(async {
                if proto == "XML-RPC" {
                    server::rpc::xml(&server, &body, false).await
                } else {
                    server::rpc::json(&server, &body, false).await
                }
            });
            let mut n = 0;
            match r {
                Ok(server::rpc::Reply::Streamed(mut s)) => {
                    let mut out = Vec::with_capacity(320 << 10);
                    while s.next_piece(&mut out, 256 << 10) {
                        n += out.len();
                        out.clear();
                    }
                }
                Ok(server::rpc::Reply::Whole(b)) => n = b.len(),
                Err(e) => panic!("{e}"),
            }
            std::hint::black_box(n);
            inproc = inproc.min(t.elapsed().as_secs_f64() * 1e3);
        }
        let (first, best, peak) = rt.cli.block_on(async {
            let mut cl = Client::connect(x.addr).await;
            reset_peak_rss();
            let before = peak_rss_kib();
            // The first call makes the rows' encodings for this protocol.
            let t = Instant::now();
            let _ = cl.post_len(path, body.clone()).await;
            let first = t.elapsed().as_secs_f64() * 1e3;
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                let r = cl.post_len(path, body.clone()).await;
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                assert!(r as f64 > size * 0.9 * (1 << 20) as f64);
            }
            (first, best, (peak_rss_kib().saturating_sub(before)) as f64 / 1024.0)
        });
        println!(
            "| {proto} | {size:.1} | {bare:.0} | {inproc:.0} | {first:.0} | {:.2} | {best:.0} | {:.2} | {peak:.0} |",
            first / bare,
            best / bare
        );
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}

fn fsync_rate(dir: &std::path::Path) -> f64 {
    use std::io::Write;
    let p = dir.join("fsync-peer");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).expect("open");
    let block = vec![7u8; 4096];
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(2) {
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    let _ = std::fs::remove_file(&p);
    n as f64 / t.elapsed().as_secs_f64()
}

fn durable_writes(rt: &Rts) {
    println!(
        "\n## Durable writes (VM.set_name_label over JSON-RPC, acknowledged once fsynced) vs single fdatasync rate"
    );
    let x = rt.srv.block_on(start_xapid(true));
    let peer = fsync_rate(&x.running.server.cfg.data_dir);
    let vms: Vec<String> = {
        let st = x.running.server.db.read();
        let c = model::schema::class("VM").expect("VM");
        let v = st.table(c).iter().map(|(r, _)| r.clone()).collect();
        v
    };
    println!("| clients | durable writes/s | 4 KiB append+fdatasync/s | ratio |");
    println!("|---|---|---|---|");
    for clients in [1usize, 16, 64] {
        let rate = rt.cli.block_on(async {
            let count = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + DUR;
            let mut tasks = Vec::new();
            for i in 0..clients {
                let (addr, sess, vm, count) = (x.addr, x.session.clone(), vms[i % vms.len()].clone(), count.clone());
                tasks.push(tokio::spawn(async move {
                    let mut c = Client::connect(addr).await;
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let body = json_call(
                            "VM.set_name_label",
                            &[Value::from(sess.as_str()), Value::from(vm.as_str()), Value::String(format!("w{i}-{n}"))],
                        );
                        let _ = c.post("/jsonrpc", body).await;
                        n += 1;
                    }
                    count.fetch_add(n, Ordering::Relaxed);
                }));
            }
            let t = Instant::now();
            for t in tasks {
                let _ = t.await;
            }
            count.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
        });
        println!("| {clients} | {rate:.0} | {peer:.0} | {:.1}x |", rate / peer);
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}

fn event_latency(rt: &Rts) {
    println!("\n## Event latency: pool.add_to_other_config → seen by event.from waiters (each on its own connection)");
    let x = rt.srv.block_on(start_xapid(false));
    let pool = find(&x, "pool", None);
    println!("| waiters | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for waiters in [1usize, 100] {
        let rounds = if waiters == 1 { 300 } else { 60 };
        let mut l = rt.cli.block_on(async {
            let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..rounds).map(|_| AtomicU64::new(0)).collect());
            let seen = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(tokio::sync::Notify::new());
            let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
            let epoch = Instant::now();
            let mut c0 = Client::connect(x.addr).await;
            let r = c0
                .post(
                    "/jsonrpc",
                    json_call("event.from", &[s(&x.session), Value::Array(vec![s("pool")]), s(""), Value::Float(0.0)]),
                )
                .await;
            let v: serde_json::Value = serde_json::from_slice(&r).expect("json");
            let token0 = v["result"]["token"].as_str().expect("token").to_string();
            let mut tasks = Vec::new();
            for _ in 0..waiters {
                let (addr, sess, sent_at, seen, lat, token0, done) = (
                    x.addr,
                    x.session.clone(),
                    sent_at.clone(),
                    seen.clone(),
                    lat.clone(),
                    token0.clone(),
                    done.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut c = Client::connect(addr).await;
                    let mut token = token0;
                    let mut got = 0usize;
                    while got < rounds {
                        let r = c
                            .post(
                                "/jsonrpc",
                                json_call(
                                    "event.from",
                                    &[
                                        Value::from(sess.as_str()),
                                        Value::Array(vec![Value::from("pool")]),
                                        Value::String(token.clone()),
                                        Value::Float(30.0),
                                    ],
                                ),
                            )
                            .await;
                        let now = epoch.elapsed().as_nanos() as u64;
                        // A scan of the reply instead of a full JSON parse: with
                        // 100 waiters on one client core, parsing every snapshot
                        // would queue later waiters behind earlier ones and
                        // measure the client, not the server.
                        let text = String::from_utf8_lossy(&r);
                        token = text
                            .rfind("\"token\":\"")
                            .and_then(|i| text[i + 9..].split('"').next())
                            .unwrap_or_default()
                            .to_string();
                        while got < rounds && text.contains(&format!("\"bench:{got}\"")) {
                            let t0 = sent_at[got].load(Ordering::Acquire);
                            lat.lock().expect("lock").push(now.saturating_sub(t0) as f64 / 1e6);
                            seen.fetch_add(1, Ordering::AcqRel);
                            got += 1;
                        }
                        if seen.load(Ordering::Acquire) % waiters == 0 {
                            done.notify_one();
                        }
                    }
                }));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut w = Client::connect(x.addr).await;
            for i in 0..rounds {
                sent_at[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
                let _ = w
                    .post(
                        "/jsonrpc",
                        json_call(
                            "pool.add_to_other_config",
                            &[s(&x.session), s(&pool), Value::String(format!("bench:{i}")), s("x")],
                        ),
                    )
                    .await;
                // Sleep (not spin) until every waiter has seen this round.
                while seen.load(Ordering::Acquire) < (i + 1) * waiters {
                    let _ = tokio::time::timeout(Duration::from_millis(50), done.notified()).await;
                }
            }
            for t in tasks {
                let _ = t.await;
            }
            let _ = w
                .post("/jsonrpc", json_call("pool.set_other_config", &[s(&x.session), s(&pool), Value::Struct(vec![])]))
                .await;
            let l = lat.lock().expect("lock").clone();
            l
        });
        l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!(
            "| {waiters} | {} | {:.2} | {:.2} | {:.2} |",
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l.last().copied().unwrap_or(0.0)
        );
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |n: &str| only.as_deref().is_none_or(|o| n.contains(o));
    let rt = Rts::new();
    if want("round_trips") {
        round_trips(&rt);
    }
    if want("in_process") {
        in_process(&rt);
    }
    if want("get_all_records") {
        get_all_records(&rt);
    }
    if want("durable_writes") {
        durable_writes(&rt);
    }
    if want("event_latency") {
        event_latency(&rt);
    }
}

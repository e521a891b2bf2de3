//! Async task throughput (lifecycle issue, part 9): Async.VM.start then
//! Async.VM.clean_shutdown of 1,000 simulated VMs at concurrency 16, each
//! task timed from its creation to its completion seen through event.from;
//! beside the same loop (create + shutdown of 1,000 domains, 16 threads)
//! against libvirt's test driver, run in the same invocation.
//!
//! `cargo bench -p bench --bench tasks`

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};

const VMS: usize = 1000;
const CONCURRENCY: usize = 16;

fn s(v: &str) -> Value {
    Value::from(v)
}

/// Tasks being waited for, and tasks seen finished before anyone waited.
#[derive(Default)]
struct Book {
    waiting: HashMap<String, oneshot::Sender<String>>,
    finished: HashMap<String, String>,
}
type Waiters = Arc<Mutex<Book>>;

/// One event.from loop on "task" that completes waiters when their task finishes.
async fn watch_tasks(
    addr: std::net::SocketAddr,
    session: String,
    waiters: Waiters,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut c = Client::connect(addr).await;
    let mut token = String::new();
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let r = c
            .post(
                "/jsonrpc",
                json_call(
                    "event.from",
                    &[s(&session), Value::Array(vec![s("task")]), Value::String(token.clone()), Value::Float(1.0)],
                ),
            )
            .await;
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r) else { continue };
        token = v["result"]["token"].as_str().unwrap_or_default().to_string();
        for e in v["result"]["events"].as_array().into_iter().flatten() {
            let status = e["snapshot"]["status"].as_str().unwrap_or("pending");
            if status != "pending" {
                let r = e["ref"].as_str().unwrap_or_default().to_string();
                let mut b = waiters.lock().expect("lock");
                match b.waiting.remove(&r) {
                    Some(tx) => {
                        let _ = tx.send(status.to_string());
                    }
                    None => {
                        b.finished.insert(r, status.to_string());
                    }
                }
            }
        }
    }
}

fn xapi_run(rt: &Rts) -> (f64, Vec<f64>) {
    let x = rt.srv.block_on(start_xapid(false));
    // 1,000 halted VMs made from a template's record (no disks: the task path is measured).
    let server = x.running.server.clone();
    let c = model::schema::class("VM").expect("VM");
    let (uuid, nl, tmpl, dt) = (
        c.field_index("uuid").expect("uuid"),
        c.field_index("name_label").expect("nl"),
        c.field_index("is_a_template").expect("t"),
        c.field_index("is_default_template").expect("d"),
    );
    let base = {
        let st = server.db.read();
        let r = st
            .table(c)
            .iter()
            .find(|(_, r)| r.fields[nl].as_str() == Some("Other install media"))
            .map(|(_, r)| (**r).clone())
            .expect("template");
        r
    };
    let mut vms = Vec::new();
    server
        .db
        .write(|tx| {
            for i in 0..VMS {
                let mut row = base.clone();
                row.fields[uuid] = Value::String(model::new_uuid());
                row.fields[nl] = Value::String(format!("task-bench-{i}"));
                row.fields[tmpl] = Value::Bool(false);
                row.fields[dt] = Value::Bool(false);
                let r = model::new_ref();
                tx.insert(&r, row);
                vms.push(r);
            }
            Ok::<_, store::Refused>(())
        })
        .expect("populate");
    let out = rt.cli.block_on(async {
        let waiters: Waiters = Arc::new(Mutex::new(Book::default()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = tokio::spawn(watch_tasks(x.addr, x.session.clone(), waiters.clone(), done.clone()));
        let queue = Arc::new(Mutex::new(vms.clone()));
        let lat = Arc::new(Mutex::new(Vec::new()));
        let sem = Arc::new(Semaphore::new(CONCURRENCY));
        let start = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..CONCURRENCY {
            let (q, w, lat, sess, addr, _sem) =
                (queue.clone(), waiters.clone(), lat.clone(), x.session.clone(), x.addr, sem.clone());
            workers.push(tokio::spawn(async move {
                let mut c = Client::connect(addr).await;
                loop {
                    let Some(vm) = q.lock().expect("lock").pop() else { break };
                    for method in ["Async.VM.start", "Async.VM.clean_shutdown"] {
                        let params = if method == "Async.VM.start" {
                            vec![
                                Value::from(sess.as_str()),
                                Value::from(vm.as_str()),
                                Value::Bool(false),
                                Value::Bool(false),
                            ]
                        } else {
                            vec![Value::from(sess.as_str()), Value::from(vm.as_str())]
                        };
                        let t0 = Instant::now();
                        let (tx, rx) = oneshot::channel();
                        let r = c.post("/jsonrpc", json_call(method, &params)).await;
                        let v: serde_json::Value = serde_json::from_slice(&r).expect("json");
                        let task = v["result"].as_str().expect("task ref").to_string();
                        {
                            let mut b = w.lock().expect("lock");
                            match b.finished.remove(&task) {
                                Some(st) => {
                                    let _ = tx.send(st);
                                }
                                None => {
                                    b.waiting.insert(task.clone(), tx);
                                }
                            }
                        }
                        // The watcher may have seen it finish before we registered.
                        let status = match tokio::time::timeout(Duration::from_secs(30), rx).await {
                            Ok(Ok(st)) => st,
                            _ => {
                                let r = c
                                    .post(
                                        "/jsonrpc",
                                        json_call(
                                            "task.get_status",
                                            &[Value::from(sess.as_str()), Value::from(task.as_str())],
                                        ),
                                    )
                                    .await;
                                let v: serde_json::Value = serde_json::from_slice(&r).expect("json");
                                v["result"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
                            }
                        };
                        assert_eq!(status, "success", "{method} {vm}");
                        lat.lock().expect("lock").push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
        let secs = start.elapsed().as_secs_f64();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = watcher.await;
        let mut l = lat.lock().expect("lock").clone();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        ((2 * VMS) as f64 / secs, l)
    });
    let _ = rt.srv.block_on(x.running.shutdown());
    out
}

const LIBVIRT_PEER: &str = r#"
import sys, threading, time
import libvirt
N, T = int(sys.argv[1]), int(sys.argv[2])
XML = "<domain type='test'><name>bench-%d-%d</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
def worker(t, n, out):
    conn = libvirt.open("test:///default")
    doms = [conn.defineXML(XML % (t, i)) for i in range(n)]
    start = time.perf_counter()
    for d in doms:
        d.create()
        d.shutdown()
    out[t] = time.perf_counter() - start
    conn.close()
out = {}
threads = [threading.Thread(target=worker, args=(t, N // T, out)) for t in range(T)]
t0 = time.perf_counter()
[t.start() for t in threads]
[t.join() for t in threads]
print(2 * (N // T) * T / (time.perf_counter() - t0))
"#;

fn libvirt_run() -> Option<f64> {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", LIBVIRT_PEER, &VMS.to_string(), &CONCURRENCY.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("libvirt peer unavailable: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let rt = Rts::new();
    println!("\n## Async task throughput: start + clean_shutdown of {VMS} simulated VMs, {CONCURRENCY} at a time, completion seen via event.from");
    let (rate, lat) = xapi_run(&rt);
    let peer = libvirt_run();
    println!("| system | operations/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    println!(
        "| xapi-rs (Async.VM.start / clean_shutdown tasks) | {rate:.0} | {:.2} | {:.2} |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    match peer {
        Some(p) => {
            println!(
                "| libvirt test:///default (create / shutdown, python3-libvirt, {CONCURRENCY} threads) | {p:.0} | | |"
            );
            println!("\nratio xapi-rs / libvirt: {:.2}", rate / p);
        }
        None => println!("| libvirt test driver | not available (install libvirt-clients python3-libvirt) | | |"),
    }
}

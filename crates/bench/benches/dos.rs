//! Denial of service (hardening issue), two rows:
//!
//! * logins: 100 concurrent wrong passwords against xapid with the hashing
//!   bounds as shipped ("after": a slot per core, a queue of 64, 10 failures
//!   a minute per address) and with them disabled through the same knobs
//!   ("before": every check hashes at once, as before the fix), in the same
//!   run: time for all 100 answers, peak RSS growth, the latency of a right
//!   password from another address during the flood, and valid-login
//!   throughput without a flood;
//! * connections: `VM.get_record` latency on one keep-alive connection with
//!   the server otherwise idle, then while it holds 1,000 idle connections
//!   and 200 slow ones (a request body trickling a byte every 500 ms); three
//!   rounds, p99 loaded against p99 idle of the same round.
//!
//! `cargo bench -p bench --bench dos` (optionally a section: logins, connections)

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const WRONG: usize = 100;
const IDLE: usize = 1000;
const SLOW: usize = 200;

fn login_body(pw: &str) -> Vec<u8> {
    json_call(
        "session.login_with_password",
        &[Value::from("root"), Value::from(pw), Value::from("1.0"), Value::from("bench")],
    )
}

/// A JSON-RPC 2.0 reply carrying SESSION_AUTHENTICATION_FAILED.
fn failed(reply: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(reply)
        .map(|v| v["error"]["message"] == "SESSION_AUTHENTICATION_FAILED")
        .unwrap_or(false)
}

struct LoginRow {
    answered_s: f64,
    peak_growth_mib: f64,
    right_ms: f64,
    logins_per_s: f64,
}

/// One configuration of the login row, on its own server.
async fn logins_once(bounded: bool) -> LoginRow {
    let x = start_xapid_with(false, |c| {
        if !bounded {
            c.login_hash_threads = 0;
            c.login_failures_per_source = 0;
        }
    })
    .await;
    let addr = x.addr;
    // Valid-login throughput, 4 clients for 3 s (no flood).
    let logins_per_s = load(addr, "/jsonrpc", login_body("pw"), 4, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    reset_peak_rss();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..WRONG {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let r = c.post("/jsonrpc", login_body(&format!("wrong-{i}"))).await;
            assert!(failed(&r), "a wrong password was not refused");
        }));
    }
    // The right password from another address, once the flood is queued.
    let right = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let other: IpAddr = "127.0.0.2".parse().expect("addr");
        let t = Instant::now();
        let mut c = Client::connect_from(addr, other).await;
        let r = c.post("/jsonrpc", login_body("pw")).await;
        assert!(!failed(&r), "the right password was refused");
        t.elapsed().as_secs_f64() * 1e3
    });
    for t in tasks {
        t.await.expect("flood task");
    }
    let answered_s = t0.elapsed().as_secs_f64();
    let right_ms = right.await.expect("right login");
    let peak = peak_rss_kib();
    let _ = x.running.shutdown().await;
    LoginRow { answered_s, peak_growth_mib: peak.saturating_sub(before) as f64 / 1024.0, right_ms, logins_per_s }
}

fn logins() {
    // Hashing uses the blocking pool, which must not inherit a CPU pinning:
    // one ordinary runtime for server and clients.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let threads = server::Config::default().login_hash_threads;
    println!("\n## Logins: {WRONG} concurrent wrong passwords (failure delay 2 s), before/after the hashing bounds");
    println!("after: {threads} hashing slots, queue 64, 10 failures/min per address; before: unbounded, no per-address limit\n");
    // After first: the unbounded run leaves the allocator holding more.
    let after = rt.block_on(logins_once(true));
    let before = rt.block_on(logins_once(false));
    println!("| | {WRONG} wrong answered in s | peak RSS growth MiB | right password (other address) during flood ms | valid logins/s (4 clients, no flood) |");
    println!("|---|---|---|---|---|");
    for (name, r) in [("before", &before), ("after", &after)] {
        println!(
            "| {name} | {:.2} | {:.0} | {:.0} | {:.0} |",
            r.answered_s, r.peak_growth_mib, r.right_ms, r.logins_per_s
        );
    }
    println!(
        "| after/before | {:.2} | {:.2} | {:.2} | {:.2} |",
        after.answered_s / before.answered_s,
        after.peak_growth_mib / before.peak_growth_mib.max(1.0),
        after.right_ms / before.right_ms,
        after.logins_per_s / before.logins_per_s
    );
}

/// `n` sequential VM.get_record calls on one keep-alive connection: (p50, p99) in µs.
async fn latency(addr: SocketAddr, body: Vec<u8>, n: usize) -> (f64, f64) {
    let mut c = Client::connect(addr).await;
    for _ in 0..200 {
        c.post("/", body.clone()).await;
    }
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        c.post("/", body.clone()).await;
        t.push(s.elapsed().as_secs_f64() * 1e6);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    (percentile(&t, 0.5), percentile(&t, 0.99))
}

/// Hold `IDLE` idle connections (connected, nothing sent) and `SLOW` slow
/// ones (a request body trickling a byte every 500 ms) until `stop`; returns
/// once all are open, with the idle sockets and the slow tasks.
async fn hold(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (Vec<tokio::net::TcpStream>, Vec<tokio::task::JoinHandle<bool>>) {
    let mut held = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        held.push(tokio::net::TcpStream::connect(addr).await.expect("idle connect"));
    }
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let stop = stop.clone();
        slow.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("slow connect");
            let head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n";
            if s.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            // Bounded: at most 200 bytes (100 s), stopped much earlier.
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                if s.write_all(b"<").await.is_err() {
                    return false;
                }
            }
            true
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    (held, slow)
}

fn connections() {
    let rt = Rts::new();
    // The cap is raised for this row (default 800, xapi's conn_limit_tcp) so
    // that all 1,200 connections are held rather than refused.
    let x = rt.srv.block_on(start_xapid_with(false, |c| c.max_connections = 1300));
    let vm = {
        let st = x.running.server.db.read();
        let c = model::schema::class("VM").expect("VM");
        let vm = st.table(c).iter().next().map(|(r, _)| r.clone()).expect("a VM");
        vm
    };
    let body = xml_call("VM.get_record", &[Value::from(x.session.as_str()), Value::from(vm.as_str())]);
    let addr = x.addr;
    const N: usize = 3000;
    const ROUNDS: usize = 3;
    println!("\n## {IDLE} idle + {SLOW} slow connections: VM.get_record (XML-RPC) latency on one connection");
    println!("{ROUNDS} rounds of {N} calls idle, then {N} calls with the connections held\n");
    println!("| round | idle p50 µs | idle p99 µs | loaded p50 µs | loaded p99 µs | p99 ratio | slow still sending | RSS for the connections MiB |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let idle = rt.cli.block_on(latency(addr, body.clone(), N));
        let rss0 = rss_kib();
        let stop = Arc::new(AtomicBool::new(false));
        let (held, slow) = rt.cli.block_on(hold(addr, stop.clone()));
        let rss1 = rss_kib();
        let loaded = rt.cli.block_on(latency(addr, body.clone(), N));
        stop.store(true, Ordering::Relaxed);
        let alive = rt.cli.block_on(async {
            let mut ok = 0;
            for t in slow {
                if t.await.unwrap_or(false) {
                    ok += 1;
                }
            }
            ok
        });
        drop(held);
        std::thread::sleep(Duration::from_millis(500));
        let ratio = loaded.1 / idle.1;
        ratios.push(ratio);
        println!(
            "| {round} | {:.0} | {:.0} | {:.0} | {:.0} | {ratio:.2} | {alive}/{SLOW} | {:.1} |",
            idle.0,
            idle.1,
            loaded.0,
            loaded.1,
            rss1.saturating_sub(rss0) as f64 / 1024.0
        );
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    println!("\nmedian p99 loaded / idle: {:.2} (target ≤ 2)", ratios[ratios.len() / 2]);
    rt.srv.block_on(async {
        let _ = x.running.shutdown().await;
    });
}

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |n: &str| only.as_deref().is_none_or(|o| n.contains(o));
    if want("logins") {
        logins();
    }
    if want("connections") {
        connections();
    }
}

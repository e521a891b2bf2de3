//! Pool benchmarks (issue 16): `cargo bench -p bench --bench pool [hosts]`
//! (default 64 hosts; `POOL_BENCH_VMS`, default 2,400; `POOL_BENCH_STARTS`,
//! default 1,000; `POOL_BENCH_KEEP=1` keeps each host's directory and log
//! in the temporary directory). Every host is a xapid process of the release build on its
//! own loopback address (127.0.1.<n>), so the pool database really travels
//! between processes; each figure is printed beside the same measure on a
//! lone xapid process holding the same VMs, in the same run.
//!
//! Sections: durable write latency with 1 (a lone host's own log), 2 (one
//! voter and a learner), 3 and 5 voters; then, with every host joined,
//! VM.get_all_records, event.from with 100 waiters, `xe vm-list`, and VM
//! starts spread over the hosts; the memory of every process.

use bench::{json_call, percentile, Client};
use model::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PW: &str = "pw";

struct Host {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The release xapid and xe (built here: `cargo bench` builds only benches).
fn build() -> (PathBuf, PathBuf) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Without the variables cargo set for this bench's run: ring's build
    // script watches CARGO_MANIFEST_DIR, so inheriting it rebuilt ring
    // and everything above it here and again at the next `cargo bench`.
    let mut cmd = Command::new(cargo);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k == "CARGO_MANIFEST_DIR"
            || k == "CARGO_MANIFEST_PATH"
            || k.starts_with("CARGO_PKG_")
            || k == "CARGO_CRATE_NAME"
        {
            cmd.env_remove(k);
        }
    }
    let st = cmd
        .args(["build", "--release", "-p", "xapid", "-p", "xe"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .status()
        .expect("run cargo build");
    assert!(st.success(), "cargo build --release -p xapid -p xe failed");
    let t = target_dir().join("release");
    (t.join("xapid"), t.join("xe"))
}

const HTTPS_PORT: u16 = 8443;

fn spawn(bin: &PathBuf, ip: Ipv4Addr) -> Host {
    // POOL_BENCH_KEEP=1 keeps each host's directory (its log) afterwards.
    let keep = std::env::var_os("POOL_BENCH_KEEP").is_some();
    let dir =
        tempfile::Builder::new().prefix(&format!("pool-bench-{ip}-")).disable_cleanup(keep).tempdir().expect("tempdir");
    let log = std::fs::File::create(dir.path().join("log")).expect("log file");
    let addr = SocketAddr::new(IpAddr::V4(ip), 8080);
    let child = Command::new(bin)
        .args(["--data-dir", dir.path().to_str().expect("utf-8 path")])
        .args(["--address", &ip.to_string(), "--http", &addr.to_string()])
        // A join goes to the master's HTTPS port.
        .args(["--https", &SocketAddr::new(IpAddr::V4(ip), HTTPS_PORT).to_string()])
        .args(["--unix", dir.path().join("sock").to_str().expect("utf-8 path")])
        .args(["--root-password", PW, "--login-failure-delay-ms", "0", "--hostname", &format!("h{}", ip.octets()[3])])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start xapid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "xapid at {addr} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Host { child, addr, _dir: dir }
}

async fn rpc(c: &mut Client, method: &str, params: &[Value]) -> serde_json::Value {
    let r = c.post("/jsonrpc", json_call(method, params)).await;
    serde_json::from_slice(&r).expect("a JSON-RPC reply")
}

async fn ok(c: &mut Client, method: &str, params: &[Value]) -> serde_json::Value {
    let v = rpc(c, method, params).await;
    assert!(v.get("error").is_none_or(|e| e.is_null()), "{method}: {v}");
    v["result"].clone()
}

/// A root session, or the error's code (HOST_IS_SLAVE on a member).
async fn login(addr: SocketAddr) -> Result<String, String> {
    // A host restarting (after a join) refuses connections for a moment,
    // or drops the one it had.
    let Some(mut c) = Client::try_connect(addr).await else { return Err("DOWN".into()) };
    let body = json_call("session.login_with_password", &[s("root"), s(PW)]);
    let Some(r) = c.try_post("/jsonrpc", body).await else { return Err("DOWN".into()) };
    let v: serde_json::Value = serde_json::from_slice(&r).map_err(|e| e.to_string())?;
    match v["result"].as_str() {
        Some(sess) => Ok(sess.to_string()),
        None => Err(v["error"]["message"].as_str().unwrap_or("?").to_string()),
    }
}

async fn join(master: &Host, h: &Host, count: usize) {
    let sess = login(h.addr).await.expect("login on the joiner");
    let mut c = Client::connect(h.addr).await;
    let master_https = SocketAddr::new(master.addr.ip(), HTTPS_PORT).to_string();
    ok(&mut c, "pool.join", &[s(&sess), s(&master_https), s("root"), s(PW)]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "{} did not join", h.addr);
        tokio::time::sleep(Duration::from_millis(200)).await;
        if login(h.addr).await.err().as_deref() != Some("HOST_IS_SLAVE") {
            continue;
        }
        let msess = login(master.addr).await.expect("master login");
        let mut m = Client::connect(master.addr).await;
        if ok(&mut m, "host.get_all", &[s(&msess)]).await.as_array().map_or(0, |a| a.len()) == count {
            return;
        }
    }
}

/// `n` halted, diskless VMs with small memory: the lone host runs both
/// start sections' VMs (2,000 with the defaults) in its 24 GiB.
async fn make_vms(addr: SocketAddr, n: usize) -> Vec<String> {
    let sess = login(addr).await.expect("login");
    let mut c = Client::connect(addr).await;
    let t = ok(&mut c, "VM.get_by_name_label", &[s(&sess), s("Other install media")]).await;
    let tmpl = t[0].as_str().expect("template").to_string();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let vm = ok(&mut c, "VM.clone", &[s(&sess), s(&tmpl), s(&format!("bench-{i}"))]).await;
        let vm = vm.as_str().expect("vm").to_string();
        ok(&mut c, "VM.set_is_a_template", &[s(&sess), s(&vm), Value::Bool(false)]).await;
        let mib = Value::Int(8 << 20);
        ok(&mut c, "VM.set_memory_limits", &[s(&sess), s(&vm), mib.clone(), mib.clone(), mib.clone(), mib]).await;
        out.push(vm);
    }
    out
}

/// Sequential durable writes: p50 and p99 in ms.
async fn write_latency(addr: SocketAddr, n: usize) -> (f64, f64) {
    let sess = login(addr).await.expect("login");
    let mut c = Client::connect(addr).await;
    let pool = ok(&mut c, "pool.get_all", &[s(&sess)]).await[0].as_str().expect("pool").to_string();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        ok(&mut c, "pool.set_name_description", &[s(&sess), s(&pool), s(&format!("write {i}"))]).await;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (percentile(&lat, 0.50), percentile(&lat, 0.99))
}

/// VM.get_all_records: the median of 5, in ms.
async fn get_all_records(addr: SocketAddr) -> f64 {
    let sess = login(addr).await.expect("login");
    let mut c = Client::connect(addr).await;
    let mut t = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        c.post_len("/jsonrpc", json_call("VM.get_all_records", &[s(&sess)])).await;
        t.push(start.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    t[2]
}

/// 100 event.from waiters on pool events, 30 changes 100 ms apart:
/// latency from the change's reply to each waiter's wake-up, p50 and p99 ms.
async fn event_latency(addr: SocketAddr) -> (f64, f64) {
    let sess = login(addr).await.expect("login");
    let mut c = Client::connect(addr).await;
    let pool = ok(&mut c, "pool.get_all", &[s(&sess)]).await[0].as_str().expect("pool").to_string();
    let first = ok(&mut c, "event.from", &[s(&sess), Value::Array(vec![s("pool")]), s(""), Value::Float(0.0)]).await;
    let token0 = first["token"].as_str().expect("token").to_string();
    let rounds = 30usize;
    let epoch = Instant::now();
    let sent: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new((0..rounds).map(|_| std::sync::atomic::AtomicU64::new(0)).collect());
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (sess, token0, sent, lat) = (sess.clone(), token0.clone(), sent.clone(), lat.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let mut token = token0;
            let mut got = 0;
            while got < rounds {
                let r = c
                    .post(
                        "/jsonrpc",
                        json_call(
                            "event.from",
                            &[s(&sess), Value::Array(vec![s("pool")]), s(&token), Value::Float(10.0)],
                        ),
                    )
                    .await;
                let now = epoch.elapsed().as_nanos() as u64;
                let text = String::from_utf8_lossy(&r);
                let Some(i) = text.rfind("\"token\":\"") else { break };
                token = text[i + 9..].split('"').next().unwrap_or("").to_string();
                // Every change names its round in the description.
                for part in text.split("\"round ").skip(1) {
                    if let Some(k) = part.split('"').next().and_then(|n| n.parse::<usize>().ok()) {
                        let at = sent[k].load(std::sync::atomic::Ordering::SeqCst);
                        if at > 0 && now > at {
                            lat.lock().expect("lock").push((now - at) as f64 / 1e6);
                        }
                        got = got.max(k + 1);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for k in 0..rounds {
        let desc = format!("round {k}");
        let t0 = epoch.elapsed().as_nanos() as u64;
        sent[k].store(t0, std::sync::atomic::Ordering::SeqCst);
        ok(&mut c, "pool.set_name_description", &[s(&sess), s(&pool), s(&desc)]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let mut l = lat.lock().expect("lock").clone();
    l.sort_by(|a, b| a.total_cmp(b));
    (percentile(&l, 0.50), percentile(&l, 0.99))
}

/// `xe vm-list` (every VM, all fields shown by default): wall time in ms.
fn xe_vm_list(xe: &PathBuf, addr: SocketAddr) -> f64 {
    let t = Instant::now();
    let out = Command::new(xe)
        .args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string(), "--nossl", "-u", "root", "-pw", PW])
        .arg("vm-list")
        .output()
        .expect("run xe");
    assert!(out.status.success(), "xe vm-list: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed().as_secs_f64() * 1e3
}

/// Start `vms[..n]` with 20 connections, each VM on `hosts[i % len]`
/// (VM.start_on); starts per second.
async fn starts(addr: SocketAddr, vms: &[String], hosts: &[String]) -> f64 {
    let sess = login(addr).await.expect("login");
    let vms = Arc::new(vms.to_vec());
    let hosts = Arc::new(hosts.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (sess, vms, hosts, next) = (sess.clone(), vms.clone(), hosts.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(vm) = vms.get(i) else { return };
                let h = &hosts[i % hosts.len()];
                ok(&mut c, "VM.start_on", &[s(&sess), s(vm), s(h), Value::Bool(false), Value::Bool(false)]).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("start task");
    }
    vms.len() as f64 / t.elapsed().as_secs_f64()
}

/// CPU seconds (user and system) process `pid` has used so far.
fn cpu_secs(pid: u32) -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        // The fields after the command's closing parenthesis: utime and stime
        // are the 12th and 13th of them.
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.to_string()))
        .map(|rest| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (n(11) + n(12)) / tick
        })
        .unwrap_or(0.0)
}

/// [`starts`], with the CPU time each of `pids` used meanwhile, in ms per start.
async fn starts_cpu(addr: SocketAddr, vms: &[String], hosts: &[String], pids: &[u32]) -> (f64, Vec<f64>) {
    let before: Vec<f64> = pids.iter().map(|p| cpu_secs(*p)).collect();
    let rate = starts(addr, vms, hosts).await;
    let used = pids.iter().zip(before).map(|(p, b)| (cpu_secs(*p) - b) * 1e3 / vms.len() as f64).collect();
    (rate, used)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

async fn host_refs(addr: SocketAddr) -> Vec<String> {
    let sess = login(addr).await.expect("login");
    let mut c = Client::connect(addr).await;
    let v = ok(&mut c, "host.get_all", &[s(&sess)]).await;
    let mut h: Vec<String> =
        v.as_array().expect("hosts").iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
    h.sort();
    h
}

fn main() {
    let hosts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .or_else(|| std::env::var("POOL_BENCH_HOSTS").ok().and_then(|v| v.parse().ok()))
        .unwrap_or(64);
    let vm_count: usize = std::env::var("POOL_BENCH_VMS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_400);
    let start_count: usize =
        std::env::var("POOL_BENCH_STARTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000).min(vm_count);
    assert!(hosts >= 5, "the pool benchmark needs at least 5 hosts");
    let (xapid, xe) = build();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        println!("\n## Pool of {hosts} xapid processes vs one lone xapid process ({vm_count} VMs each)");
        let lone = spawn(&xapid, Ipv4Addr::new(127, 0, 2, 1));
        let mut pool = vec![spawn(&xapid, Ipv4Addr::new(127, 0, 1, 1))];

        println!("\n### Durable write latency (pool.set_name_description, 200 sequential writes on the master)");
        println!("| replicas | p50 ms | p99 ms |");
        println!("|---|---|---|");
        let (p50, p99) = write_latency(pool[0].addr, 200).await;
        println!("| 1 (a lone host: its own log) | {p50:.2} | {p99:.2} |");
        for n in 2..=5 {
            let h = spawn(&xapid, Ipv4Addr::new(127, 0, 1, n as u8));
            join(&pool[0], &h, n).await;
            pool.push(h);
            if n == 2 || n == 3 || n == 5 {
                // Promotion to voters follows the learner's catch-up.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let (p50, p99) = write_latency(pool[0].addr, 200).await;
                let what = if n == 2 { "2 (one voter, one learner)".to_string() } else { format!("{n} voters") };
                println!("| {what} | {p50:.2} | {p99:.2} |");
            }
        }
        let t = Instant::now();
        for n in 6..=hosts {
            let h = spawn(&xapid, Ipv4Addr::new(127, 0, 1, n as u8));
            join(&pool[0], &h, n).await;
            pool.push(h);
        }
        println!("\n{hosts} hosts joined in {:.0} s (6th to last)", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let lone_vms = make_vms(lone.addr, vm_count).await;
        let lone_make = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let pool_vms = make_vms(pool[0].addr, vm_count).await;
        let pool_make = t.elapsed().as_secs_f64();
        println!("\n{vm_count} VMs made (clone, set_is_a_template, set_memory_limits): lone {lone_make:.1} s, pool {pool_make:.1} s");

        // What an idle pool costs the machine (heartbeats, the engine's
        // heartbeats, statistics): the share of the two cores a read
        // competes for.
        let pids: Vec<u32> = pool.iter().map(|h| h.child.id()).collect();
        let idle = |ps: Vec<u32>| async move {
            let before: Vec<f64> = ps.iter().map(|p| cpu_secs(*p)).collect();
            tokio::time::sleep(Duration::from_secs(5)).await;
            ps.iter().zip(before).map(|(p, b)| (cpu_secs(*p) - b) / 5.0 * 100.0).collect::<Vec<f64>>()
        };
        let pool_idle = idle(pids.clone()).await;
        let lone_idle = idle(vec![lone.child.id()]).await;
        println!(
            "\nIdle, % of one core over 5 s: pool {:.1} (master {:.1}), lone host {:.1}",
            pool_idle.iter().sum::<f64>(),
            pool_idle[0],
            lone_idle[0]
        );

        println!("\n| measure | pool master | lone host | ratio (pool/lone) | target |");
        println!("|---|---|---|---|---|");
        let (p, l) = (get_all_records(pool[0].addr).await, get_all_records(lone.addr).await);
        println!("| VM.get_all_records, median of 5, ms | {p:.1} | {l:.1} | {:.2} | ≤ 1.2 |", p / l);
        // The same read with the members stopped: the master's own cost
        // apart from what the other processes take of the cores.
        for h in &pool[1..] {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(h.child.id() as i32, libc::SIGSTOP) };
        }
        let alone = get_all_records(pool[0].addr).await;
        for h in &pool[1..] {
            // SAFETY: as above.
            unsafe { libc::kill(h.child.id() as i32, libc::SIGCONT) };
        }
        println!(
            "| VM.get_all_records, members stopped (SIGSTOP), ms | {alone:.1} | {l:.1} | {:.2} | (diagnostic) |",
            alone / l
        );
        let ((pp50, pp99), (lp50, lp99)) = (event_latency(pool[0].addr).await, event_latency(lone.addr).await);
        println!("| event.from, 100 waiters, p50 ms | {pp50:.2} | {lp50:.2} | {:.2} | |", pp50 / lp50);
        println!("| event.from, 100 waiters, p99 ms | {pp99:.2} | {lp99:.2} | {:.2} | p99 < 10 ms |", pp99 / lp99);
        let (px, lx) = (xe_vm_list(&xe, pool[0].addr), xe_vm_list(&xe, lone.addr));
        println!("| xe vm-list, ms | {px:.0} | {lx:.0} | {:.2} | |", px / lx);
        let all_hosts = host_refs(pool[0].addr).await;
        let lone_host = host_refs(lone.addr).await;
        // POOL_BENCH_PERF=FILE: `perf record` the master and the first
        // member (POOL_BENCH_PERF_PIDS=member: the member alone) through
        // this section (where their CPU time goes).
        let perf = std::env::var("POOL_BENCH_PERF").ok().map(|out| {
            let who = match std::env::var("POOL_BENCH_PERF_PIDS").as_deref() {
                Ok("member") => pids[1].to_string(),
                _ => format!("{},{}", pids[0], pids[1]),
            };
            Command::new("perf")
                .args(["record", "-q", "-F", "1999", "--call-graph", "dwarf,16384", "-o", &out, "-p", &who])
                .stdout(Stdio::null())
                .spawn()
                .expect("run perf")
        });
        let (ps, pcpu) = starts_cpu(pool[0].addr, &pool_vms[..start_count], &all_hosts, &pids).await;
        if let Some(mut p) = perf {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(p.id() as i32, libc::SIGINT) };
            let _ = p.wait();
        }
        let (ls, lcpu) = starts_cpu(lone.addr, &lone_vms[..start_count], &lone_host, &[lone.child.id()]).await;
        println!(
            "| {start_count} VM.start_on (20 connections; pool: over all hosts), starts/s | {ps:.1} | {ls:.1} | {:.2} | ≥ 0.5 |",
            ps / ls
        );
        // Where the time goes: the same on the master alone (the pool
        // database's commits, no forwarding).
        // VMs the first section did not start.
        let half = start_count.min(vm_count - start_count);
        let mref = {
            let sess = login(pool[0].addr).await.expect("login");
            let mut c = Client::connect(pool[0].addr).await;
            let p = ok(&mut c, "pool.get_all", &[s(&sess)]).await[0].as_str().expect("pool").to_string();
            ok(&mut c, "pool.get_master", &[s(&sess), s(&p)]).await.as_str().expect("master").to_string()
        };
        let rest = start_count..start_count + half;
        let (pm, pmcpu) = starts_cpu(pool[0].addr, &pool_vms[rest.clone()], std::slice::from_ref(&mref), &pids).await;
        let (lm, lmcpu) = starts_cpu(lone.addr, &lone_vms[rest], &lone_host, &[lone.child.id()]).await;
        println!(
            "| {half} VM.start_on (20 connections; pool: all on the master), starts/s | {pm:.1} | {lm:.1} | {:.2} | |",
            pm / lm
        );
        // CPU per start: on two shared cores the pool's start rate is bounded
        // by its CPU time per start (all hosts together).
        println!("\n### CPU time per start, ms (user + system)");
        println!("| section | lone host | pool: all hosts | pool: master | pool: members, mean |");
        println!("|---|---|---|---|---|");
        for (what, lone_ms, pool_ms) in [("over all hosts", &lcpu, &pcpu), ("all on the master", &lmcpu, &pmcpu)] {
            let total: f64 = pool_ms.iter().sum();
            let members = pool_ms[1..].iter().sum::<f64>() / (pool_ms.len() - 1) as f64;
            println!("| {what} | {:.2} | {total:.2} | {:.2} | {members:.2} |", lone_ms[0], pool_ms[0]);
        }

        let members: Vec<f64> = pool[1..].iter().map(|h| rss_mib(h.child.id())).collect();
        let mean = members.iter().sum::<f64>() / members.len() as f64;
        let max = members.iter().cloned().fold(0.0, f64::max);
        println!("\n### Memory (VmRSS, MiB)");
        println!("| lone host | pool master | members: mean | members: max |");
        println!("|---|---|---|---|");
        println!(
            "| {:.0} | {:.0} | {mean:.0} | {max:.0} |",
            rss_mib(lone.child.id()),
            rss_mib(pool[0].child.id())
        );
    });
}

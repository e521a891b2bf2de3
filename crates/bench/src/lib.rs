//! Shared pieces of the benchmarks: a keep-alive HTTP/1.1 load generator, a
//! minimal hyper "peer" server, an in-process xapid, and statistics.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// A started xapid (in this process) with a root session.
pub struct Xapid {
    pub running: server::Running,
    pub addr: SocketAddr,
    pub session: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn start_xapid(durable: bool) -> Xapid {
    start_xapid_with(durable, |_| {}).await
}

/// Like [`start_xapid`], with the configuration adjusted by `f` first.
pub async fn start_xapid_with(durable: bool, f: impl FnOnce(&mut server::Config)) -> Xapid {
    let dir = if durable { Some(tempfile::tempdir().expect("tempdir")) } else { None };
    let mut cfg = server::Config {
        data_dir: dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default(),
        http: vec!["127.0.0.1:0".parse().expect("addr")],
        root_password: Some("pw".into()),
        ephemeral: !durable,
        ..Default::default()
    };
    f(&mut cfg);
    let running = server::start(cfg).await.expect("server start");
    let addr = running.bound.http[0];
    let mut c = Client::connect(addr).await;
    let reply = c
        .post(
            "/jsonrpc",
            br#"{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","pw"],"id":1}"#.to_vec(),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&reply).expect("login reply");
    let session = v["result"].as_str().expect("session").to_string();
    Xapid { running, addr, session, _dir: dir }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Client {
    tx: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.expect("connect");
        Client::over(s, addr).await
    }

    /// A connection, or None while nothing listens at `addr`.
    pub async fn try_connect(addr: SocketAddr) -> Option<Client> {
        let s = TcpStream::connect(addr).await.ok()?;
        Some(Client::over(s, addr).await)
    }

    /// A connection from a chosen loopback source address (all of 127/8 is
    /// local on Linux), standing for another client host.
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> Client {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(source, 0)).expect("bind source");
        let s = sock.connect(addr).await.expect("connect");
        Client::over(s, addr).await
    }

    async fn over(s: TcpStream, addr: SocketAddr) -> Client {
        s.set_nodelay(true).expect("nodelay");
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await.expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Client { tx, host: addr.to_string() }
    }

    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> Bytes {
        let req = Request::post(path)
            .header("host", &self.host)
            .header("content-type", "text/xml")
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        self.tx.ready().await.expect("connection ready");
        let resp = self.tx.send_request(req).await.expect("send");
        resp.into_body().collect().await.expect("body").to_bytes()
    }

    /// Like `post`, but None when the connection fails.
    pub async fn try_post(&mut self, path: &str, body: Vec<u8>) -> Option<Bytes> {
        let req = Request::post(path)
            .header("host", &self.host)
            .header("content-type", "text/xml")
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        self.tx.ready().await.ok()?;
        let resp = self.tx.send_request(req).await.ok()?;
        Some(resp.into_body().collect().await.ok()?.to_bytes())
    }

    /// Like `post`, but only counts the reply's bytes as they arrive (for big
    /// replies, where joining them into one buffer would be the client's cost).
    pub async fn post_len(&mut self, path: &str, body: Vec<u8>) -> usize {
        let req = Request::post(path)
            .header("host", &self.host)
            .header("content-type", "text/xml")
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        self.tx.ready().await.expect("connection ready");
        let mut b = self.tx.send_request(req).await.expect("send").into_body();
        let mut n = 0;
        while let Some(f) = b.frame().await {
            n += f.expect("frame").data_ref().map_or(0, |d| d.len());
        }
        n
    }
}

/// One GET on a new connection (the statistics handlers close theirs);
/// returns the reply's status and byte count.
pub async fn get_len(addr: SocketAddr, path: &str) -> (u16, usize) {
    let mut c = Client::connect(addr).await;
    let req = Request::get(path).header("host", &c.host).body(Full::new(Bytes::new())).expect("request");
    c.tx.ready().await.expect("connection ready");
    let resp = c.tx.send_request(req).await.expect("send");
    let status = resp.status().as_u16();
    let mut b = resp.into_body();
    let mut n = 0;
    while let Some(f) = b.frame().await {
        n += f.expect("frame").data_ref().map_or(0, |d| d.len());
    }
    (status, n)
}

/// CPU time (user + system, seconds) of this process's threads whose name
/// starts with `prefix`, from /proc (clock ticks, so 10 ms resolution).
pub fn threads_cpu_secs(prefix: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    for e in dir.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15; what follows ")" starts at field 3.
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += n(11) + n(12);
    }
    total as f64 / tick
}

/// Run `conns` connections, each sending `body` to `path` back to back, for
/// `dur`; returns requests per second.
pub async fn load(addr: SocketAddr, path: &'static str, body: Vec<u8>, conns: usize, dur: Duration) -> f64 {
    let body = Arc::new(body);
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let b = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let _ = c.post(path, (*b).clone()).await;
                n += 1;
            }
            n
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total as f64 / start.elapsed().as_secs_f64().max(dur.as_secs_f64())
}

/// The peer: a minimal hyper server that reads the request body, scans it
/// with the same XML or JSON parser, and answers a fixed reply of the same
/// size and content type as xapid's.
pub async fn start_peer(xml_reply: Bytes, json_reply: Bytes) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { continue };
            let _ = s.set_nodelay(true);
            let (x, j) = (xml_reply.clone(), json_reply.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (x, j) = (x.clone(), j.clone());
                    async move {
                        let json = req.uri().path() == "/jsonrpc";
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let reply = if json {
                            let _ = wire::jsonrpc::parse_request(&body);
                            j
                        } else {
                            let _ = wire::xmlrpc::parse_call(&body);
                            x
                        };
                        let ct = if json { "application/json" } else { "text/xml" };
                        let mut r = Response::new(Full::new(reply));
                        r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(ct));
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
            });
        }
    });
    addr
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident memory of this process in KiB, and a way to reset it.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Resident memory of this process now, in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn xml_call(method: &str, params: &[model::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::xmlrpc::write_call(&mut out, method, params);
    out
}

pub fn json_call(method: &str, params: &[model::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::jsonrpc::write_request(&mut out, 1, method, params);
    out
}

/// Two single-worker runtimes: servers (xapid and the peer) on CPU 0, load
/// generators on CPU 1, so the server side is measured on one core.
pub struct Rts {
    pub srv: tokio::runtime::Runtime,
    pub cli: tokio::runtime::Runtime,
}

fn pinned(cpu: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .on_thread_start(move || pin(cpu))
        .enable_all()
        .build()
        .expect("runtime")
}

/// Pin the calling thread to one CPU (best effort).
pub fn pin(cpu: usize) {
    let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if n < 2 {
        return;
    }
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % n, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

impl Rts {
    pub fn new() -> Rts {
        Rts { srv: pinned(0, "bench-server"), cli: pinned(1, "bench-client") }
    }
}

impl Default for Rts {
    fn default() -> Self {
        Self::new()
    }
}

/// Where scripts/build-test-guest.sh puts the test guest (vmlinuz, initrd.img).
pub fn guest_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("XAPI_TEST_GUEST_DIR") {
        return d.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("xapi-rs/guest")
}

/// A program on PATH (or in /usr/sbin, where daemons live).
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin"])
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Run `run` in a network namespace of the bench's own: the first call
/// re-executes the bench under `unshare --net` and exits with its status, so
/// bridges and taps the bench makes never touch the machine's interfaces.
pub fn in_own_netns<F: std::future::Future<Output = ()>>(run: impl FnOnce() -> F) {
    if std::env::var_os("XRS_BENCH_NETNS").is_none() {
        let exe = std::env::current_exe().expect("current exe");
        // A mount namespace too: what a bench mounts (a config file over the
        // system's) stays inside it.
        let st = std::process::Command::new("unshare")
            .arg("--net")
            .arg("--mount")
            .arg("--")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env("XRS_BENCH_NETNS", "1")
            .status()
            .expect("unshare (util-linux) and root are needed");
        std::process::exit(st.code().unwrap_or(1));
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime").block_on(run());
}

/// The command line of a running QEMU of xapi-rs's (`pid`), made runnable by
/// hand in `new_dir` (its working directory: QEMU's sockets and logs are
/// named relative to it): what xapi-rs handed QEMU as descriptors becomes
/// the file again (`/proc/self/fd/N` the kernel; an `-add-fd` set the disk
/// image `disks` names for its device id, `vbd-<userdevice>`, copied into
/// `new_dir` since the running guest locks the original: QEMU closes the
/// set's own descriptor once its block layer holds a copy, so the number
/// says nothing later), a tap's `fd=N` a tap QEMU makes named `tap`.
/// Returns the binary and argv; `-S` is left out so the guest runs at once.
pub fn replay_argv(
    pid: u32,
    new_dir: &Path,
    tap: &str,
    disks: &std::collections::HashMap<String, String>,
) -> (String, Vec<String>) {
    std::fs::create_dir_all(new_dir).expect("run dir");
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let argv: Vec<String> =
        raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    let target = |fd: &str| -> String {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("a handed descriptor").to_string_lossy().into_owned()
    };
    let mut sets = std::collections::HashMap::new();
    for w in argv.windows(2).filter(|w| w[0] == "-add-fd") {
        let kv = |k: &str| w[1].split(',').find_map(|p| p.strip_prefix(k)).map(str::to_string);
        let image = disks.get(&kv("opaque=").expect("opaque")).expect("the disk's image").clone();
        sets.insert(kv("set=").expect("set"), image);
    }
    let mut out = Vec::new();
    let mut skip = false;
    for (i, a) in argv[1..].iter().enumerate() {
        if std::mem::take(&mut skip) || a == "-S" {
            continue;
        }
        if a == "-add-fd" {
            skip = true;
            continue;
        }
        let mut a = a.clone();
        if let Some(fd) = a.strip_prefix("/proc/self/fd/") {
            a = target(fd);
        }
        if let Some(at) = a.find("file.filename=/dev/fdset/") {
            let set = a[at + "file.filename=/dev/fdset/".len()..].split(',').next().unwrap_or_default().to_string();
            let copy = new_dir.join(format!("disk{i}"));
            let st = std::process::Command::new("cp")
                .args(["--sparse=always", &sets[&set], &copy.to_string_lossy()])
                .status()
                .expect("cp");
            assert!(st.success(), "copying a disk");
            a = a.replace(&format!("/dev/fdset/{set}"), &copy.to_string_lossy());
        }
        if a.starts_with("tap,") {
            let id = a.split(',').find_map(|kv| kv.strip_prefix("id=")).expect("netdev id").to_string();
            a = format!("tap,id={id},ifname={tap},script=no,downscript=no");
        }
        out.push(a);
    }
    (argv[0].clone(), out)
}

//! NBD read throughput against reading the VDI's file directly, in the same
//! run (XO backups issue: "NBD reads at disk speed"). A 1 GiB VDI of
//! pseudo-random data (every byte allocated, so nothing is skipped as a
//! hole) is filled through PUT /import_raw_vdi; then, alternating:
//!
//! * `nbdcopy <file> null:`: libnbd's copier reading the VDI's raw file
//!   itself (the peer: same client, same request sizes and parallelism);
//! * `nbdcopy nbd://…/<exportname> null:` through xapid's NBD server
//!   (`insecure_nbd`), and `nbds://…` with TLS (`nbd`);
//! * `nbdcopy nbd://… null:` through qemu-nbd serving the same file (warm
//!   rounds only): a peer that also crosses loopback TCP;
//! * a plain 1 MiB pread loop over the file in this process (for scale).
//!
//! Both with the page cache warm (NBD against a memory copy) and cold (the
//! file dropped from the cache with POSIX_FADV_DONTNEED before each copy,
//! so both read the disk: the "at disk speed").
//!
//! Target: NBD at least 0.9 of the file's throughput. Needs Debian's
//! libnbd-bin. `cargo bench -p bench --bench nbd`

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const GIB: u64 = 1 << 30;
const MIB: usize = 1 << 20;

fn call(rt: &tokio::runtime::Runtime, addr: SocketAddr, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let reply = rt.block_on(async {
        let mut c = Client::connect(addr).await;
        c.post("/jsonrpc", body.to_string().into_bytes()).await
    });
    let v: serde_json::Value = serde_json::from_slice(&reply).expect("json reply");
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        panic!("{method}: {e}");
    }
    v["result"].clone()
}

fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("create");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = vec![0u8; MIB];
    for _ in 0..(GIB as usize / MIB) {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        f.write_all(&buf).expect("write");
    }
}

fn put(addr: SocketAddr, path: &str, file: &Path) {
    let len = std::fs::metadata(file).expect("stat").len();
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "PUT {path} HTTP/1.0\r\nContent-Length: {len}\r\n\r\n").expect("send");
    std::io::copy(&mut std::fs::File::open(file).expect("open"), &mut s).expect("upload");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

/// Seconds `nbdcopy <src> null:` takes.
fn nbdcopy(src: &str) -> f64 {
    let t = Instant::now();
    let out = Command::new("nbdcopy").args([src, "null:"]).output().expect("run nbdcopy (apt-get install libnbd-bin)");
    assert!(out.status.success(), "nbdcopy {src}: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed().as_secs_f64()
}

/// Drop `path`'s pages from the page cache (written back first).
fn evict(path: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).expect("open");
    f.sync_all().expect("sync");
    // SAFETY: an open descriptor; advice only.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

fn pread_loop(path: &Path) -> f64 {
    use std::os::unix::fs::FileExt;
    let t = Instant::now();
    let f = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; MIB];
    let mut off = 0u64;
    while off < GIB {
        let n = f.read_at(&mut buf, off).expect("read");
        assert!(n > 0);
        off += n as u64;
    }
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let x = rt.block_on(start_xapid_with(true, |c| c.nbd = vec!["127.0.0.1:0".parse().expect("addr")]));
    let (addr, sid) = (x.addr, x.session.clone());
    let pool = call(&rt, addr, "pool.get_all", serde_json::json!([sid]))[0].as_str().map(str::to_string).expect("pool");
    let sr = call(&rt, addr, "pool.get_default_SR", serde_json::json!([sid, pool])).as_str().expect("sr").to_string();
    let vdi = call(
        &rt,
        addr,
        "VDI.create",
        serde_json::json!([sid, {"SR": sr, "name_label": "nbd bench", "name_description": "",
            "virtual_size": GIB.to_string(), "type": "user", "sharable": false, "read_only": false,
            "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": []}]),
    )
    .as_str()
    .expect("vdi")
    .to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("disk.raw");
    fill(&data);
    put(addr, &format!("/import_raw_vdi?session_id={sid}&vdi={vdi}&format=raw"), &data);
    drop(tmp);
    let s = &x.running.server;
    let file: PathBuf = server::storage::vdi_path(s, &s.db.read(), &vdi).expect("the VDI's file");
    assert_eq!(std::fs::metadata(&file).expect("stat").len(), GIB);

    let pifs = call(&rt, addr, "PIF.get_all_records", serde_json::json!([sid]));
    let net = pifs
        .as_object()
        .and_then(|m| m.values().find(|r| r["management"] == true))
        .and_then(|r| r["network"].as_str())
        .expect("management network")
        .to_string();
    let info = |purpose: &str| -> serde_json::Value {
        for p in ["nbd", "insecure_nbd"] {
            call(&rt, addr, "network.remove_purpose", serde_json::json!([sid, net, p]));
        }
        call(&rt, addr, "network.add_purpose", serde_json::json!([sid, net, purpose]));
        call(&rt, addr, "VDI.get_nbd_info", serde_json::json!([sid, vdi]))[0].clone()
    };
    let escape = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let plain = info("insecure_nbd");
    let uri = |scheme: &str, i: &serde_json::Value| {
        format!(
            "{scheme}://{}:{}/{}",
            i["address"].as_str().expect("address"),
            i["port"].as_i64().or_else(|| i["port"].as_str().and_then(|p| p.parse().ok())).expect("port"),
            escape(i["exportname"].as_str().expect("exportname"))
        )
    };
    let plain_uri = uri("nbd", &plain);
    let certs = tempfile::tempdir().expect("certs");
    let (mut file_t, mut nbd_t, mut pread_t, mut qemu_t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let src = file.to_str().expect("utf-8 path").to_string();
    // QEMU's own NBD server on the same file: a peer that also sends every
    // byte through loopback TCP on these two cores.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut qemu_nbd = Command::new("qemu-nbd")
        .args(["--read-only", "--persistent", "--format=raw", "--bind=127.0.0.1", "--shared=8"])
        .arg(format!("--port={port}"))
        .arg(&src)
        .spawn()
        .expect("run qemu-nbd (apt-get install qemu-utils)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "qemu-nbd does not listen on port {port}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let qemu_uri = format!("nbd://127.0.0.1:{port}");
    // Warm the page cache for all, then alternate.
    nbdcopy(&src);
    for _ in 0..5 {
        file_t.push(nbdcopy(&src));
        nbd_t.push(nbdcopy(&plain_uri));
        qemu_t.push(nbdcopy(&qemu_uri));
        pread_t.push(pread_loop(&file));
    }
    if let Err(e) = qemu_nbd.kill().and_then(|()| qemu_nbd.wait().map(drop)) {
        eprintln!("stopping qemu-nbd: {e}");
    }
    let (mut cold_file, mut cold_nbd) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        evict(&file);
        cold_file.push(nbdcopy(&src));
        evict(&file);
        cold_nbd.push(nbdcopy(&plain_uri));
    }
    let tls = info("nbd");
    std::fs::write(certs.path().join("ca-cert.pem"), tls["cert"].as_str().expect("cert")).expect("cert");
    let tls_uri = format!("{}?tls-certificates={}", uri("nbds", &tls), certs.path().display());
    let mut tls_t = Vec::new();
    let mut file2_t = Vec::new();
    for _ in 0..5 {
        file2_t.push(nbdcopy(&src));
        tls_t.push(nbdcopy(&tls_uri));
    }
    let mibs = |t: f64| GIB as f64 / MIB as f64 / t;
    let (f, n, p, f2, t) = (median(file_t), median(nbd_t), median(pread_t), median(file2_t), median(tls_t));
    let q = median(qemu_t);
    println!("# NBD read throughput, 1 GiB VDI (all allocated, page cache warm), medians of 5 alternating rounds");
    println!("nbdcopy <VDI file> null:           {:.3} s  {:7.0} MiB/s", f, mibs(f));
    println!(
        "nbdcopy nbd:// (insecure_nbd) null: {:.3} s  {:7.0} MiB/s | ratio to the file {:.2} (target >= 0.9)",
        n,
        mibs(n),
        f / n
    );
    println!(
        "nbdcopy nbd:// (qemu-nbd, same file): {:.3} s  {:7.0} MiB/s | xapid's ratio to qemu-nbd {:.2}",
        q,
        mibs(q),
        q / n
    );
    println!("1 MiB pread loop over the file:    {:.3} s  {:7.0} MiB/s (for scale)", p, mibs(p));
    println!(
        "nbdcopy nbds:// (nbd, TLS) null:    {:.3} s  {:7.0} MiB/s | ratio to the file ({:.3} s in the same rounds) {:.2}",
        t,
        mibs(t),
        f2,
        f2 / t
    );
    println!("# cold rounds (s): file {cold_file:.3?}, nbd {cold_nbd:.3?}");
    let (cf, cn) = (median(cold_file), median(cold_nbd));
    println!("# page cache cold (the file evicted before each copy), medians of 5 alternating rounds");
    println!("nbdcopy <VDI file> null:           {:.3} s  {:7.0} MiB/s", cf, mibs(cf));
    println!(
        "nbdcopy nbd:// (insecure_nbd) null: {:.3} s  {:7.0} MiB/s | ratio to the file {:.2} (target >= 0.9)",
        cn,
        mibs(cn),
        cf / cn
    );
}

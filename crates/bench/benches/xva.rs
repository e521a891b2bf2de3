//! XVA export and import throughput (HTTP interface issue, part 7), against
//! peers run in the same invocation on the same data: a 1 GiB VDI with mixed
//! content (zero runs, random bytes, compressible text and binary) and a
//! 5 GB empty VDI.
//!
//! * export, uncompressed   vs  reading the disk file sequentially (from the
//!   device with its page cache dropped, and from the page cache)
//! * export, zstd           vs  `tar cf - img | zstd -T2 -3`
//! * export, gzip           vs  `tar cf - img | gzip -6`
//! * import of the zstd XVA vs  `zstd -dc x | tar xf -`
//! * export of the empty 5 GB disk (target < 0.5 s)
//!
//! `cargo bench -p bench --bench xva`

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
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

/// Fill a disk file with 1 GiB of mixed content: per MiB, 30% left as holes,
/// 20% random bytes, 50% compressible (log-like text and structured binary).
fn fill(path: &Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("open disk");
    let mut x = 0x9E3779B97F4A7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut buf = vec![0u8; MIB];
    for i in 0..(GIB as usize / MIB) {
        let kind = next() % 10;
        if kind < 3 {
            continue;
        }
        if kind < 5 {
            for c in buf.chunks_mut(8) {
                c.copy_from_slice(&next().to_le_bytes()[..c.len()]);
            }
        } else if kind < 8 {
            let mut s = String::with_capacity(MIB + 200);
            while s.len() < MIB {
                let n = next();
                s.push_str(&format!(
                    "2026-11-27T10:{:02}:{:02} host{} service[{}]: request {} took {} ms status={}\n",
                    n % 60,
                    (n >> 8) % 60,
                    n % 7,
                    (n >> 16) % 5000,
                    n >> 40,
                    (n >> 24) % 900,
                    [200, 200, 200, 404, 500][(n >> 32) as usize % 5]
                ));
            }
            buf.copy_from_slice(&s.as_bytes()[..MIB]);
        } else {
            for (j, c) in buf.chunks_mut(16).enumerate() {
                let n = next() % 256;
                c.copy_from_slice(&[(j as u32).to_le_bytes(), [n as u8, 0, 0, 1], [0; 4], [7, 7, n as u8, 9]].concat());
            }
        }
        f.write_all_at(&buf, (i * MIB) as u64).expect("write");
    }
    f.sync_all().expect("sync");
}

/// Drop the file's pages from the page cache (no root needed), so the next
/// read comes from the device.
fn drop_cache(path: &Path) {
    use std::os::unix::io::AsRawFd;
    if let Ok(f) = std::fs::File::open(path) {
        // SAFETY: advisory call on an open descriptor we own.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// Bytes per second of one sequential read of the file.
fn read_rate(path: &Path) -> f64 {
    let mut f = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; MIB];
    let t = Instant::now();
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).expect("read");
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Rounds of the peer then ours, so that this VM's drifting speed hits
/// both alike; returns the medians of ours, the peer's and the ratios.
fn alternate(rounds: usize, mut peer: impl FnMut() -> f64, mut ours: impl FnMut() -> f64) -> (f64, f64, f64) {
    let (mut o, mut p, mut r) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let a = peer();
        let b = ours();
        p.push(a);
        o.push(b);
        r.push(b / a);
    }
    (median(o), median(p), median(r))
}

/// GET a path, discard the body; returns (bytes, seconds).
fn get(addr: SocketAddr, path: &str) -> (u64, f64) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").expect("send");
    let mut buf = vec![0u8; MIB];
    let mut n = 0u64;
    loop {
        let k = s.read(&mut buf).expect("read");
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    (n, t.elapsed().as_secs_f64())
}

/// PUT a file; the import is over when the server closes the connection.
fn put(addr: SocketAddr, path: &str, file: &Path) -> f64 {
    let len = std::fs::metadata(file).expect("stat").len();
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "PUT {path} HTTP/1.0\r\nContent-Length: {len}\r\n\r\n").expect("send");
    std::io::copy(&mut std::fs::File::open(file).expect("open"), &mut s).expect("upload");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    t.elapsed().as_secs_f64()
}

fn shell(cmd: &str) -> f64 {
    let t = Instant::now();
    let st = std::process::Command::new("sh").arg("-c").arg(cmd).status().expect("sh");
    assert!(st.success(), "{cmd}");
    t.elapsed().as_secs_f64()
}

fn best<T>(runs: usize, mut f: impl FnMut() -> (T, f64)) -> (T, f64) {
    let mut out = f();
    for _ in 1..runs {
        let o = f();
        if o.1 < out.1 {
            out = o;
        }
    }
    out
}

fn mb(bytes: f64, secs: f64) -> f64 {
    bytes / secs / 1e6
}

fn main() {
    for tool in ["zstd", "gzip", "tar"] {
        if std::process::Command::new(tool).arg("--version").output().is_err() {
            eprintln!("{tool} not installed: skipping the XVA benchmark");
            return;
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let x = rt.block_on(start_xapid(true));
    let (addr, sid) = (x.addr, x.session.clone());
    let data_dir = x.running.server.cfg.data_dir.clone();
    let sr = call(&rt, addr, "pool.get_all", serde_json::json!([sid]))[0].as_str().map(str::to_string).expect("pool");
    let sr = call(&rt, addr, "pool.get_default_SR", serde_json::json!([sid, sr])).as_str().expect("sr").to_string();
    let sr_uuid = call(&rt, addr, "SR.get_uuid", serde_json::json!([sid, sr])).as_str().expect("uuid").to_string();
    let vm_with_disk = |name: &str, size: u64| -> (String, PathBuf) {
        let tmpl = call(&rt, addr, "VM.get_by_name_label", serde_json::json!([sid, "Debian Etch 4.0"]))[0]
            .as_str()
            .expect("template")
            .to_string();
        let vm = call(&rt, addr, "VM.clone", serde_json::json!([sid, tmpl, name])).as_str().expect("vm").to_string();
        call(&rt, addr, "VM.set_is_a_template", serde_json::json!([sid, vm, false]));
        let vdi = call(
            &rt,
            addr,
            "VDI.create",
            serde_json::json!([sid, {"SR": sr, "name_label": name, "name_description": "", "virtual_size": size.to_string(),
                "type": "user", "sharable": false, "read_only": false, "other_config": {}, "xenstore_data": {},
                "sm_config": {}, "tags": []}]),
        )
        .as_str()
        .expect("vdi")
        .to_string();
        call(
            &rt,
            addr,
            "VBD.create",
            serde_json::json!([sid, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": true, "mode": "RW",
                "type": "Disk", "unpluggable": false, "empty": false, "other_config": {}, "qos_algorithm_type": "",
                "qos_algorithm_params": {}}]),
        );
        let loc = call(&rt, addr, "VDI.get_location", serde_json::json!([sid, vdi])).as_str().expect("loc").to_string();
        (vm, data_dir.join("sr").join(&sr_uuid).join(format!("{loc}.raw")))
    };
    let (vm, disk) = vm_with_disk("bench-1g", GIB);
    let (empty_vm, _) = vm_with_disk("bench-empty-5g", 5_000_000_000);
    fill(&disk);
    let size = GIB as f64;
    println!("# XVA export/import, 1 GiB mixed-content VDI (30% holes) + 5 GB empty VDI");
    reset_peak_rss();
    let rss_base = peak_rss_kib();
    let export = |q: &str| get(addr, &format!("/export?session_id={sid}&ref={vm}{q}"));
    // From the device (page cache dropped before each run), then from
    // memory; medians over alternating rounds.
    let (ours, peer, ratio) = alternate(
        5,
        || {
            drop_cache(&disk);
            mb(read_rate(&disk), 1.0)
        },
        || {
            drop_cache(&disk);
            mb(size, export("").1)
        },
    );
    println!(
        "export uncompressed, cold cache: {ours:.0} MB/s of disk | sequential read of the disk file: {peer:.0} MB/s | ratio {ratio:.2} (target >= 0.9 of the disk's read rate; medians of 5 alternating rounds)"
    );
    let n_plain = export("").0;
    let (ours, peer, ratio) = alternate(7, || mb(read_rate(&disk), 1.0), || mb(size, export("").1));
    println!(
        "export uncompressed, page cache: {ours:.0} MB/s of disk ({n_plain} bytes out) | sequential read of the disk file: {peer:.0} MB/s | ratio {ratio:.2} (both from memory, not the disk; medians of 7 alternating rounds)"
    );
    if std::env::var_os("XVA_BENCH_EXPORT_ONLY").is_some() {
        // For profiling the uncompressed export alone.
        return;
    }
    let dir = disk.parent().expect("dir").to_path_buf();
    let file = disk.file_name().and_then(|f| f.to_str()).expect("name").to_string();
    let ((n_zstd, ()), t_zstd) = best(2, || {
        let (n, t) = export("&use_compression=zstd");
        ((n, ()), t)
    });
    let t_cli_zstd =
        best(2, || ((), shell(&format!("tar cf - -C {} {file} | zstd -q -T2 -3 -c > /dev/null", dir.display())))).1;
    println!(
        "export zstd: {:.2} s ({} bytes) | tar | zstd -T2 -3: {:.2} s | ratio {:.2} (target >= 0.9)",
        t_zstd,
        n_zstd,
        t_cli_zstd,
        t_cli_zstd / t_zstd
    );
    let rss_export = peak_rss_kib();
    let ((n_gz, ()), t_gz) = best(2, || {
        let (n, t) = export("&use_compression=gzip");
        ((n, ()), t)
    });
    let t_cli_gz = shell(&format!("tar cf - -C {} {file} | gzip -6 -c > /dev/null", dir.display()));
    println!(
        "export gzip: {:.2} s ({} bytes) | tar | gzip -6: {:.2} s | ratio {:.2} (target >= 2)",
        t_gz,
        n_gz,
        t_cli_gz,
        t_cli_gz / t_gz
    );
    // Import of the zstd XVA, against decompressing and untarring it.
    let work = tempfile::tempdir_in(&data_dir).expect("tmp");
    let xva = work.path().join("vm.xva");
    {
        // Streamed to the file: the bench must not hold the XVA in memory
        // either, or the RSS figures below would be its, not the server's.
        let s = TcpStream::connect(addr).expect("connect");
        let mut r = std::io::BufReader::new(s);
        write!(r.get_mut(), "GET /export?session_id={sid}&ref={vm}&use_compression=zstd HTTP/1.0\r\n\r\n")
            .expect("send");
        let mut line = String::new();
        loop {
            line.clear();
            std::io::BufRead::read_line(&mut r, &mut line).expect("head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        std::io::copy(&mut r, &mut std::fs::File::create(&xva).expect("create")).expect("save");
    }
    reset_peak_rss();
    let rss_before_import = peak_rss_kib();
    let t_import = best(2, || ((), put(addr, &format!("/import?session_id={sid}"), &xva))).1;
    let rss_import = peak_rss_kib();
    let out = work.path().join("untar");
    let t_cli_import = best(2, || {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("mkdir");
        ((), shell(&format!("zstd -q -dc {} | tar xf - -C {}", xva.display(), out.display())))
    })
    .1;
    println!(
        "import zstd XVA: {:.0} MB/s of disk ({:.2} s) | zstd -dc | tar x: {:.2} s | ratio {:.2} (target >= 0.9)",
        mb(size, t_import),
        t_import,
        t_cli_import,
        t_cli_import / t_import
    );
    let ((n_empty, ()), t_empty) = best(3, || {
        let (n, t) = get(addr, &format!("/export?session_id={sid}&ref={empty_vm}"));
        ((n, ()), t)
    });
    println!("export of the empty 5 GB VDI: {:.3} s, {} bytes (target < 0.5 s)", t_empty, n_empty);
    println!(
        "peak RSS growth (server and client in this process): uncompressed+zstd exports {} MiB, zstd imports {} MiB",
        rss_export.saturating_sub(rss_base) / 1024,
        rss_import.saturating_sub(rss_before_import) / 1024
    );
    drop(x);
}

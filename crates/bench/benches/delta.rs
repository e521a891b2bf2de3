//! Delta (differencing VHD) export against a full VHD export of the same
//! disk, in the same run (XO incremental backups issue): a 1 GiB VDI with
//! mixed content (30% holes), snapshotted, then 5% of its 2 MiB VHD blocks
//! changed through PUT /import_raw_vdi and snapshotted again.
//!
//! * full:  GET /export_raw_vdi?vdi=<s2>&format=vhd
//! * delta with CBT on (the changed-block logs name the blocks to compare)
//! * delta without CBT (every allocated block of both snapshots compared)
//!
//! Target: the delta takes at most 10% of the full export's time. Also
//! printed: the time of the same raw import into a VDI with and without CBT.
//!
//! `cargo bench -p bench --bench delta`

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Instant;

const GIB: u64 = 1 << 30;
const MIB: usize = 1 << 20;
const VHD_BLOCK: u64 = 2 << 20;

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

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// 1 GiB of mixed content: per MiB, 30% zeros, the rest pseudo-random.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("create");
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; MIB];
    for _ in 0..(GIB as usize / MIB) {
        if next() % 10 < 3 {
            buf.fill(0);
        } else {
            for c in buf.chunks_mut(8) {
                c.copy_from_slice(&next().to_le_bytes()[..c.len()]);
            }
        }
        f.write_all(&buf).expect("write");
    }
}

/// Change a few bytes in 5% of the 2 MiB blocks (distinct, spread out).
fn change(path: &Path) -> usize {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("open");
    let blocks = GIB / VHD_BLOCK;
    let n = (blocks * 5).div_ceil(100);
    let mut next = xorshift(42);
    let mut chosen = std::collections::BTreeSet::new();
    while (chosen.len() as u64) < n {
        chosen.insert(next() % blocks);
    }
    for b in &chosen {
        f.write_all_at(b"changed by the delta benchmark", b * VHD_BLOCK + (next() % (VHD_BLOCK - 64))).expect("write");
    }
    chosen.len()
}

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
fn put(addr: SocketAddr, path: &str, file: &Path) {
    let len = std::fs::metadata(file).expect("stat").len();
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "PUT {path} HTTP/1.0\r\nContent-Length: {len}\r\n\r\n").expect("send");
    std::io::copy(&mut std::fs::File::open(file).expect("open"), &mut s).expect("upload");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let x = rt.block_on(start_xapid(true));
    let (addr, sid) = (x.addr, x.session.clone());
    let pool = call(&rt, addr, "pool.get_all", serde_json::json!([sid]))[0].as_str().map(str::to_string).expect("pool");
    let sr = call(&rt, addr, "pool.get_default_SR", serde_json::json!([sid, pool])).as_str().expect("sr").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("disk.raw");
    fill(&data);
    let new_vdi = |name: &str| -> String {
        call(
            &rt,
            addr,
            "VDI.create",
            serde_json::json!([sid, {"SR": sr, "name_label": name, "name_description": "", "virtual_size": GIB.to_string(),
                "type": "user", "sharable": false, "read_only": false, "other_config": {}, "xenstore_data": {},
                "sm_config": {}, "tags": []}]),
        )
        .as_str()
        .expect("vdi")
        .to_string()
    };
    // The source on disk before anything is timed (its writeback would
    // slow whichever import came first).
    std::fs::File::open(&data).and_then(|f| f.sync_all()).expect("sync the source");
    let import = |vdi: &str| put(addr, &format!("/import_raw_vdi?session_id={sid}&vdi={vdi}&format=raw"), &data);
    let snapshot = |vdi: &str| {
        call(&rt, addr, "VDI.snapshot", serde_json::json!([sid, vdi, {}])).as_str().expect("snap").to_string()
    };
    let timed = |vdi: &str| {
        let t = Instant::now();
        import(vdi);
        t.elapsed().as_secs_f64()
    };
    // CBT's cost on imports: the same upload into a tracked and a plain VDI,
    // fresh ones each round, the order alternating; the last pair goes on.
    let (mut cbt_t, mut plain_t) = (Vec::new(), Vec::new());
    let mut pair = None;
    for round in 0..5 {
        if let Some((t, p)) = pair.take() {
            for v in [t, p] {
                call(&rt, addr, "VDI.destroy", serde_json::json!([sid, v]));
            }
        }
        let (tracked, plain) = (new_vdi("with cbt"), new_vdi("without cbt"));
        call(&rt, addr, "VDI.enable_cbt", serde_json::json!([sid, tracked]));
        if round % 2 == 0 {
            cbt_t.push(timed(&tracked));
            plain_t.push(timed(&plain));
        } else {
            plain_t.push(timed(&plain));
            cbt_t.push(timed(&tracked));
        }
        pair = Some((tracked, plain));
    }
    let (tracked, plain) = pair.expect("five rounds ran");
    println!("# first imports (s): CBT on {cbt_t:.2?}, off {plain_t:.2?}");
    let (first_cbt, first_plain) = (median(cbt_t), median(plain_t));
    let (t1, p1) = (snapshot(&tracked), snapshot(&plain));
    let changed = change(&data);
    let (second_cbt, second_plain) = (timed(&tracked), timed(&plain));
    let (t2, p2) = (snapshot(&tracked), snapshot(&plain));
    println!("# CBT and raw imports (PUT /import_raw_vdi of the 1 GiB file)");
    println!(
        "into an empty VDI (medians of 5 alternating rounds): CBT on {first_cbt:.2} s | CBT off {first_plain:.2} s | ratio {:.2} (target <= 1.03)",
        first_cbt / first_plain
    );
    println!(
        "the same disk again with 5% changed: CBT on {second_cbt:.2} s | CBT off {second_plain:.2} s | ratio {:.2}",
        second_cbt / second_plain
    );

    println!(
        "# Delta VHD export, 1 GiB VDI (30% holes), {changed} of 512 2 MiB blocks (5%) changed between two snapshots"
    );
    let export = |vdi: &str, base: Option<&str>| {
        let b = base.map(|b| format!("&base={b}")).unwrap_or_default();
        get(addr, &format!("/export_raw_vdi?session_id={sid}&vdi={vdi}&format=vhd{b}"))
    };
    let (mut full, mut cbt, mut cmp) = (Vec::new(), Vec::new(), Vec::new());
    let (mut n_full, mut n_cbt, mut n_cmp) = (0, 0, 0);
    // Alternating rounds, all from the page cache (the files were just written).
    for _ in 0..5 {
        let (n, t) = export(&t2, None);
        n_full = n;
        full.push(t);
        let (n, t) = export(&t2, Some(&t1));
        n_cbt = n;
        cbt.push(t);
        let (n, t) = export(&p2, Some(&p1));
        n_cmp = n;
        cmp.push(t);
    }
    let (full, cbt, cmp) = (median(full), median(cbt), median(cmp));
    println!("full VHD export: {:.3} s, {} bytes", full, n_full);
    println!(
        "delta VHD export, CBT on: {:.3} s, {} bytes | ratio to full {:.3} (target <= 0.10; medians of 5 alternating rounds)",
        cbt,
        n_cbt,
        cbt / full
    );
    println!(
        "delta VHD export, CBT off (every block compared): {:.3} s, {} bytes | ratio to full {:.3}",
        cmp,
        n_cmp,
        cmp / full
    );
}

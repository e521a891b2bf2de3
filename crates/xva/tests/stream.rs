//! Write → read round trips and hostile streams, without a server.

use model::Value;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use xva::read::{self, Meta, Target};
use xva::{Compression, DiskSink, DiskSource, Error, Header, Object, CHUNK};

/// A disk in memory, shared so the test can look at it after the import.
#[derive(Clone, Default)]
struct Mem(Arc<Mutex<Vec<u8>>>);

impl DiskSink for Mem {
    fn write_at(&mut self, off: u64, data: &[u8]) -> std::io::Result<()> {
        let mut v = self.0.lock().unwrap();
        let end = off as usize + data.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[off as usize..end].copy_from_slice(data);
        Ok(())
    }
}

struct Src(Vec<u8>);
impl DiskSource for Src {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        buf.copy_from_slice(&self.0[off as usize..off as usize + buf.len()]);
        Ok(())
    }
}

fn header(disks: &[(&str, u64)]) -> Header {
    let mut objects = vec![Object {
        class: "VM".into(),
        id: "Ref:0".into(),
        snapshot: Value::Struct(vec![("name_label".into(), Value::String("vm".into()))]),
    }];
    for (id, size) in disks {
        objects.push(Object {
            class: "VDI".into(),
            id: id.to_string(),
            snapshot: Value::Struct(vec![("virtual_size".into(), Value::String(size.to_string()))]),
        });
    }
    Header { version: vec![("export_vsn".into(), Value::String("2".into()))], objects }
}

/// A disk with data in a few chunks and zeros elsewhere (so chunks get skipped).
fn disk(size: usize) -> Vec<u8> {
    let mut d = vec![0u8; size];
    let mut x = 0x2545F4914F6CDD1Du64;
    for range in [0..4096, CHUNK * 2 + 17..CHUNK * 2 + 9000, size - 100..size] {
        for b in &mut d[range] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    d
}

fn export(c: Compression, disks: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let h = header(&disks.iter().map(|(i, d)| (*i, d.len() as u64)).collect::<Vec<_>>());
    let mut w = xva::write::Writer::new(Vec::new(), c, &h).unwrap();
    for (id, d) in disks {
        w.add_disk(id, &mut Src(d.clone()), &mut |_| true).unwrap();
    }
    w.finish().unwrap()
}

fn import(stream: &[u8], verify: bool) -> Result<(HashMap<String, Mem>, read::Summary), Error> {
    let mems: Arc<Mutex<HashMap<String, Mem>>> = Default::default();
    let m2 = mems.clone();
    let mut on_meta = move |meta: &Meta| {
        let Meta::Current(h) = meta else { panic!("expected the current format") };
        let mut t = HashMap::new();
        for o in h.objects.iter().filter(|o| o.class == "VDI") {
            let size: u64 = o.snapshot.map_str("virtual_size").unwrap().parse().unwrap();
            let mem = Mem::default();
            m2.lock().unwrap().insert(o.id.clone(), mem.clone());
            t.insert(o.id.clone(), Target { sink: Box::new(mem), size });
        }
        Ok(t)
    };
    let sum = read::read(std::io::Cursor::new(stream.to_vec()), verify, &mut on_meta, &mut |_| true)?;
    let out = mems.lock().unwrap().clone();
    Ok((out, sum))
}

fn content(m: &Mem, size: usize) -> Vec<u8> {
    let mut v = m.0.lock().unwrap().clone();
    v.resize(size, 0);
    v
}

#[test]
fn round_trip_every_compression() {
    let a = disk(5 * CHUNK + 123);
    let b = disk(3 * CHUNK);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let s = export(c, &[("Ref:1", a.clone()), ("Ref:2", b.clone())]);
        let (mems, sum) = import(&s, true).unwrap();
        assert_eq!(content(&mems["Ref:1"], a.len()), a, "{c:?}");
        assert_eq!(content(&mems["Ref:2"], b.len()), b, "{c:?}");
        // a: chunks 0, 2 and 5 (first, data, last); b: 0 and 2 (first, data+last).
        assert_eq!(sum.chunks, 5, "{c:?}");
    }
}

/// The parallel gzip writer emits one member per block: the whole stream must
/// still be what `gzip -dc` (xapi's decompressor) turns back into the tar.
#[test]
fn gzip_members_decode_with_gzip() {
    use std::io::Write;
    let a = disk(7 * CHUNK + 5);
    let plain = export(Compression::None, &[("Ref:1", a.clone())]);
    let gz = export(Compression::Gzip, &[("Ref:1", a)]);
    let Ok(mut child) = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(std::env::var_os("CI").is_none(), "gzip is not installed and CI is set");
        eprintln!("gzip not installed; skipped");
        return;
    };
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&gz));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success());
    // Entry by entry: the two exports may be stamped with different seconds.
    assert!(tar_entries(&out.stdout) == tar_entries(&plain), "gzip -dc output differs from the plain export");
}

/// A tar stream's entries as (path, contents), mtimes left out.
fn tar_entries(stream: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut a = tar::Archive::new(stream);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

#[test]
fn layout_matches_xapi() {
    let a = disk(4 * CHUNK);
    let s = export(Compression::None, &[("Ref:1", a.clone())]);
    let mut ar = tar::Archive::new(&s[..]);
    let names: Vec<String> =
        ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "ova.xml",
            "Ref:1/00000000",
            "Ref:1/00000000.xxhash",
            "Ref:1/00000002",
            "Ref:1/00000002.xxhash",
            "Ref:1/00000003",
            "Ref:1/00000003.xxhash"
        ]
    );
    let mut ar = tar::Archive::new(&s[..]);
    let mut e = ar.entries().unwrap().nth(2).unwrap().unwrap();
    let mut sum = String::new();
    std::io::Read::read_to_string(&mut e, &mut sum).unwrap();
    assert_eq!(sum, xva::xxhash_hex(&a[..CHUNK]));
    assert_eq!(sum.len(), 16);
}

#[test]
fn empty_disk_has_first_and_last_chunk_only() {
    let s = export(Compression::None, &[("Ref:1", vec![0u8; 50 * CHUNK])]);
    let (_, sum) = import(&s, true).unwrap();
    assert_eq!(sum.chunks, 2);
}

/// Build a tar by hand from (name, data) entries.
fn tar_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses "..": write the raw name the way a hostile tool would.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn ova(size: u64) -> Vec<u8> {
    header(&[("Ref:1", size)]).to_xml().into_bytes()
}

fn chunk(n: u8) -> Vec<u8> {
    vec![n; CHUNK]
}

fn sum(d: &[u8]) -> Vec<u8> {
    xva::xxhash_hex(d).into_bytes()
}

fn invalid(r: Result<(HashMap<String, Mem>, read::Summary), Error>) -> String {
    match r {
        Err(Error::Invalid(m)) => m,
        Err(e) => panic!("expected Invalid, got {e}"),
        Ok(_) => panic!("expected Invalid, got success"),
    }
}

#[test]
fn checksum_mismatch_fails_unless_not_verifying() {
    let s = tar_of(&[
        ("ova.xml", ova(CHUNK as u64)),
        ("Ref:1/00000000", chunk(1)),
        ("Ref:1/00000000.xxhash", sum(&chunk(2))),
    ]);
    assert!(matches!(import(&s, true), Err(Error::Checksum { .. })));
    let (m, sum) = import(&s, false).unwrap();
    assert_eq!(sum.checksum_mismatches, 1);
    assert_eq!(content(&m["Ref:1"], CHUNK), chunk(1));
}

#[test]
fn keep_alive_chunks_and_missing_last_chunk() {
    // xapi may emit an empty chunk as a keep-alive; positions are sequential.
    let (a, b) = (chunk(1), chunk(2));
    let s = tar_of(&[
        ("ova.xml", ova(3 * CHUNK as u64)),
        ("Ref:1/00000000", a.clone()),
        ("Ref:1/00000000.xxhash", sum(&a)),
        ("Ref:1/00000001", vec![]),
        ("Ref:1/00000001.xxhash", sum(&[])),
        ("Ref:1/00000003", b.clone()),
        ("Ref:1/00000003.xxhash", sum(&b)),
    ]);
    let (m, _) = import(&s, true).unwrap();
    let got = content(&m["Ref:1"], 3 * CHUNK);
    assert_eq!(&got[..CHUNK], &a[..]);
    assert!(got[CHUNK..2 * CHUNK].iter().all(|b| *b == 0));
    assert_eq!(&got[2 * CHUNK..], &b[..]);
    // Without its last chunk the disk is incomplete.
    let s = tar_of(&[
        ("ova.xml", ova(3 * CHUNK as u64)),
        ("Ref:1/00000000", a.clone()),
        ("Ref:1/00000000.xxhash", sum(&a)),
    ]);
    assert!(invalid(import(&s, true)).contains("truncated"));
}

#[test]
fn sha1_checksums_are_accepted() {
    let c = chunk(7);
    let s = tar_of(&[
        ("ova.xml", ova(CHUNK as u64)),
        ("Ref:1/00000000", c.clone()),
        ("Ref:1/00000000.checksum", xva::sha1_hex(&c).into_bytes()),
    ]);
    let (m, _) = import(&s, true).unwrap();
    assert_eq!(content(&m["Ref:1"], CHUNK), c);
}

#[test]
fn hostile_streams() {
    let size = 4 * CHUNK as u64;
    let c = chunk(3);
    type Entries<'a> = Vec<(&'a str, Vec<u8>)>;
    let cases: Vec<(&str, Entries)> = vec![
        (
            "out of order",
            vec![
                ("Ref:1/00000002", c.clone()),
                ("Ref:1/00000002.xxhash", sum(&c)),
                ("Ref:1/00000001", c.clone()),
                ("Ref:1/00000001.xxhash", sum(&c)),
            ],
        ),
        (
            "repeated",
            vec![
                ("Ref:1/00000001", c.clone()),
                ("Ref:1/00000001.xxhash", sum(&c)),
                ("Ref:1/00000001", c.clone()),
                ("Ref:1/00000001.xxhash", sum(&c)),
            ],
        ),
        ("past the size", vec![("Ref:1/00000004", c.clone()), ("Ref:1/00000004.xxhash", sum(&c))]),
        ("unknown disk", vec![("Ref:9/00000000", c.clone()), ("Ref:9/00000000.xxhash", sum(&c))]),
        ("traversal", vec![("../../etc/passwd", b"x".to_vec())]),
        ("traversal in a disk", vec![("Ref:1/../../00000000", c.clone())]),
        ("no checksum", vec![("Ref:1/00000000", c.clone())]),
        ("checksum of another entry", vec![("Ref:1/00000000", c.clone()), ("Ref:1/00000001.xxhash", sum(&c))]),
        (
            "oversized chunk",
            vec![("Ref:1/00000000", vec![1u8; CHUNK + 1]), ("Ref:1/00000000.xxhash", sum(&[1u8; CHUNK + 1]))],
        ),
        ("bad chunk name", vec![("Ref:1/0000000x", c.clone())]),
        ("huge chunk number", vec![("Ref:1/99999999", c.clone()), ("Ref:1/99999999.xxhash", sum(&c))]),
    ];
    for (what, entries) in cases {
        let mut all = vec![("ova.xml", ova(size))];
        all.extend(entries);
        let m = invalid(import(&tar_of(&all), true));
        assert!(!m.is_empty(), "{what}");
    }
    // ova.xml must come first, be a struct with objects, and exist at all.
    invalid(import(&tar_of(&[("Ref:1/00000000", c.clone())]), true));
    invalid(import(&tar_of(&[("ova.xml", b"<value><int>1</int></value>".to_vec())]), true));
    invalid(import(&tar_of(&[("ova.xml", b"<value><struct>".to_vec())]), true));
    invalid(import(&[], true));
}

#[test]
fn truncated_streams_fail() {
    let a = disk(3 * CHUNK);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let s = export(c, &[("Ref:1", a.clone())]);
        for cut in [s.len() / 3, s.len() / 2, s.len() - 1100] {
            assert!(import(&s[..cut], true).is_err(), "{c:?} cut at {cut}");
        }
    }
}

#[test]
fn decompression_bomb_stops_at_the_declared_size() {
    // A 1 MiB disk, but the (tiny, compressed) stream holds 64 chunks.
    let mut entries = vec![("ova.xml".to_string(), ova(CHUNK as u64))];
    let z = vec![0u8; CHUNK];
    for i in 0..64 {
        entries.push((format!("Ref:1/{i:08}"), z.clone()));
        entries.push((format!("Ref:1/{i:08}.xxhash"), sum(&z)));
    }
    let refs: Vec<(&str, Vec<u8>)> = entries.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_of(&refs)).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let m = invalid(import(&bomb, true));
    assert!(m.contains("past the disk's size"), "{m}");
}

#[test]
fn legacy_stream_from_the_guide() {
    let xml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/guide-ova.xml")).unwrap();
    // Shrink the disks so the test stays small; the document is otherwise the guide's.
    let xml = xml.replace("5368709120", "3000").replace("size=\"536870912\" source", "size=\"10\" source");
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let s = tar_of(&[("ova.xml", xml.into_bytes()), ("sda/chunk-000000000.gz", gz.finish().unwrap())]);
    let mem = Mem::default();
    let m2 = mem.clone();
    let mut on_meta = move |meta: &Meta| {
        let Meta::Legacy(vm) = meta else { panic!("expected legacy") };
        assert_eq!(vm.label, "very simple Debian VM");
        assert_eq!(vm.vdis.len(), 2);
        Ok(HashMap::from([("vdi_sda".to_string(), Target { sink: Box::new(m2.clone()), size: 3000 })]))
    };
    read::read(std::io::Cursor::new(s.clone()), true, &mut on_meta, &mut |_| true).unwrap();
    assert_eq!(content(&mem, 3000), data);
}

#[test]
fn legacy_chunk_larger_than_its_disk_is_refused() {
    let xml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/guide-ova.xml")).unwrap();
    let xml = xml.replace("5368709120", "100");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![1u8; 5000]).unwrap();
    let s = tar_of(&[("ova.xml", xml.into_bytes()), ("sda/chunk000000000.gz", gz.finish().unwrap())]);
    let mut on_meta =
        |_: &Meta| Ok(HashMap::from([("vdi_sda".to_string(), Target { sink: Box::new(Mem::default()), size: 100 })]));
    assert!(matches!(
        read::read(std::io::Cursor::new(s.clone()), true, &mut on_meta, &mut |_| true),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn cancel_stops_export_and_import() {
    let a = disk(4 * CHUNK);
    let h = header(&[("Ref:1", a.len() as u64)]);
    let mut w = xva::write::Writer::new(Vec::new(), Compression::None, &h).unwrap();
    assert!(matches!(w.add_disk("Ref:1", &mut Src(a.clone()), &mut |_| false), Err(Error::Cancelled)));
    let s = export(Compression::None, &[("Ref:1", a)]);
    let mut on_meta = |_: &Meta| Ok(HashMap::new());
    assert!(matches!(
        read::read(std::io::Cursor::new(s.clone()), true, &mut on_meta, &mut |_| false),
        Err(Error::Cancelled)
    ));
}

#[test]
fn guide_document_is_verbatim() {
    // When the guide is at hand, the fixture must be its example, byte for byte.
    let guide = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/seed/xenserver-7.3-sdk-guide.txt");
    let Ok(text) = std::fs::read_to_string(guide) else { return };
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/guide-ova.xml")).unwrap();
    assert!(text.contains(&fixture));
}

/// Uncompressed chunks are written past the tar builder (the buffer is handed
/// to the sink whole): the stream must still be a tar any reader walks, with
/// a short last chunk padded to its block.
#[test]
fn plain_stream_is_a_standard_tar() {
    let a = disk(2 * CHUNK + 10_001);
    let s = export(Compression::None, &[("Ref:1", a.clone())]);
    let mut ar = tar::Archive::new(&s[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == "Ref:1/00000002" {
            assert_eq!(data, a[2 * CHUNK..]);
        }
        names.push(name);
    }
    assert_eq!(
        names,
        ["ova.xml", "Ref:1/00000000", "Ref:1/00000000.xxhash", "Ref:1/00000002", "Ref:1/00000002.xxhash"]
    );
}

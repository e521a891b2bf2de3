//! Reading an XVA stream, strictly: compression is detected from the first
//! bytes; `ova.xml` must come first; every disk entry must name a known
//! disk, with chunk numbers that strictly increase, each followed by a
//! checksum that matches (unless checks are off); nothing may be written
//! past a disk's declared size, so a decompression bomb stops at the size.

use crate::legacy::{self, LegacyVm};
use crate::{invalid, DiskSink, Error, Header, Result, CHUNK};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the stream describes.
pub enum Meta {
    Current(Header),
    Legacy(LegacyVm),
}

/// Where one disk goes, and how big it may be.
pub struct Target {
    pub sink: Box<dyn DiskSink + Send>,
    pub size: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Compressed bytes read from the input.
    pub bytes_in: u64,
    /// Disk bytes written.
    pub bytes_out: u64,
    pub chunks: u64,
    pub checksum_mismatches: u64,
}

/// Counts bytes read from the (possibly compressed) input.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

thread_local! {
    /// Input bytes consumed so far by this thread's import (counted where
    /// the input is read, which may be the decompression thread).
    static COUNTER: std::cell::RefCell<Arc<AtomicU64>> = Default::default();
}

fn consumed() -> u64 {
    COUNTER.with(|c| c.borrow().load(Ordering::Relaxed))
}

/// Decompressed blocks handed from the decompression thread.
const AHEAD_BLOCK: usize = 1 << 20;
const AHEAD_BLOCKS: usize = 4;

/// The reading end of a decompression thread that runs a few blocks ahead
/// of tar parsing, checksumming and disk writes, so that the two halves of
/// an import use two cores. An empty block marks the end.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    fn spawn(mut src: Box<dyn Read + Send>) -> std::io::Result<ReadAhead> {
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD_BLOCKS);
        // Detached: if the reader is dropped early the next send fails and
        // the thread ends (or it ends when its input does).
        std::thread::Builder::new().name("xva-decompress".into()).spawn(move || loop {
            let mut buf = vec![0u8; AHEAD_BLOCK];
            let mut n = 0;
            let r = loop {
                match src.read(&mut buf[n..]) {
                    Ok(0) => break Ok(()),
                    Ok(k) => {
                        n += k;
                        if n == buf.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            buf.truncate(n);
            let last = n == 0;
            let msg = match r {
                Ok(()) => Ok(buf),
                Err(e) if n == 0 => Err(e),
                // Deliver what was read; the error follows on the next turn.
                Err(e) => {
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                    Err(e)
                }
            };
            let failed = msg.is_err();
            if tx.send(msg).is_err() || last || failed {
                return;
            }
        })?;
        Ok(ReadAhead { rx, cur: Vec::new(), pos: 0, done: false })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.done = b.is_empty();
                    self.cur = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => return Err(std::io::Error::other("the decompression thread stopped")),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The largest `ova.xml` accepted.
const MAX_META: u64 = 64 << 20;

fn read_small(e: &mut impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    e.take(limit + 1).read_to_end(&mut v)?;
    if v.len() as u64 > limit {
        return invalid(format!("{what} is too large"));
    }
    Ok(v)
}

/// Detect compression and return a plain tar reader; a compressed stream
/// is decompressed on its own thread.
fn decompress(input: impl Read + Send + 'static, counter: Arc<AtomicU64>) -> Result<Box<dyn Read>> {
    let mut br = BufReader::with_capacity(1 << 20, Counting { inner: input, n: counter });
    let magic = br.fill_buf()?.get(..4).map(|m| m.to_vec()).unwrap_or_default();
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(ReadAhead::spawn(Box::new(flate2::bufread::MultiGzDecoder::new(br)))?)
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(ReadAhead::spawn(Box::new(zstd::stream::read::Decoder::with_buffer(br)?))?)
    } else {
        Box::new(br)
    })
}

struct DiskState {
    target: Option<Target>,
    last: Option<u64>,
    pos: u64,
    first_len: u64,
}

/// Read a whole XVA. `on_meta` sees the metadata first and returns where
/// each disk goes (keyed by `Ref:<n>` for the current format, by VDI name for
/// the legacy one); disks it leaves out are read and dropped. `progress`
/// gets the input bytes consumed and returns false to cancel.
pub fn read(
    input: impl Read + Send + 'static,
    verify: bool,
    on_meta: &mut dyn FnMut(&Meta) -> Result<HashMap<String, Target>>,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Summary> {
    let counter = Arc::new(AtomicU64::new(0));
    COUNTER.with(|c| *c.borrow_mut() = counter.clone());
    let plain = decompress(input, counter)?;
    let mut archive = tar::Archive::new(plain);
    let mut entries = archive.entries()?;
    let mut first = match entries.next() {
        Some(e) => e?,
        None => return invalid("empty stream"),
    };
    let name = first.path()?.to_string_lossy().trim_start_matches("./").to_string();
    if name != "ova.xml" {
        return invalid(format!("the first entry is {name:?}, not ova.xml"));
    }
    if first.header().size()? > MAX_META {
        return invalid("ova.xml is too large");
    }
    let xml = String::from_utf8(read_small(&mut first, MAX_META, "ova.xml")?)
        .map_err(|_| Error::Invalid("ova.xml is not UTF-8".into()))?;
    if legacy::is_legacy(&xml) {
        let vm = legacy::parse(&xml)?;
        let meta = Meta::Legacy(vm);
        let targets = on_meta(&meta)?;
        let Meta::Legacy(vm) = meta else { return invalid("unreachable") };
        return legacy::read_disks(&vm, entries, targets, progress, consumed);
    }
    let header = Header::parse(&xml)?;
    let meta = Meta::Current(header);
    let mut disks: HashMap<String, DiskState> = on_meta(&meta)?
        .into_iter()
        .map(|(k, t)| (k, DiskState { target: Some(t), last: None, pos: 0, first_len: 0 }))
        .collect();
    let Meta::Current(header) = meta else { return invalid("unreachable") };
    // Disks the caller does not want (CDs…) are still checked, then dropped.
    for o in &header.objects {
        if o.class == "VDI" {
            disks.entry(o.id.clone()).or_insert(DiskState { target: None, last: None, pos: 0, first_len: 0 });
        }
    }
    let mut sum = Summary::default();
    let mut data: Vec<u8> = Vec::with_capacity(CHUNK);
    // The data entry waiting for its checksum: (disk id, entry name).
    let mut awaiting: Option<(String, String)> = None;
    for e in entries {
        let mut e = e?;
        let path = e.path()?.to_string_lossy().trim_start_matches("./").to_string();
        let size = e.header().size()?;
        if let Some((disk, name)) = awaiting.take() {
            let (expected, actual) = if path == format!("{name}.xxhash") {
                (
                    String::from_utf8_lossy(&read_small(&mut e, 64, "checksum")?).trim().to_string(),
                    crate::xxhash_hex(&data),
                )
            } else if path == format!("{name}.checksum") {
                (
                    String::from_utf8_lossy(&read_small(&mut e, 128, "checksum")?).trim().to_ascii_lowercase(),
                    crate::sha1_hex(&data),
                )
            } else {
                return invalid(format!("{name} is not followed by its checksum (found {path:?})"));
            };
            if !expected.eq_ignore_ascii_case(&actual) {
                sum.checksum_mismatches += 1;
                if verify {
                    return Err(Error::Checksum { entry: name, expected, actual });
                }
            }
            let d = disks.get_mut(&disk).ok_or_else(|| Error::Invalid(format!("unknown disk {disk}")))?;
            if let Some(t) = d.target.as_mut() {
                if !data.is_empty() {
                    t.sink.write_at(d.pos, &data)?;
                    sum.bytes_out += data.len() as u64;
                }
            }
            d.pos += data.len() as u64;
            if !progress(consumed()) {
                return Err(Error::Cancelled);
            }
            continue;
        }
        let Some((disk, num)) = path.rsplit_once('/') else { return invalid(format!("unexpected entry {path:?}")) };
        if num.len() != 8 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("unexpected entry {path:?}"));
        }
        let n: u64 = num.parse().map_err(|_| Error::Invalid(format!("bad chunk number in {path:?}")))?;
        let d = disks.get_mut(disk).ok_or_else(|| Error::Invalid(format!("{path:?} names no disk in ova.xml")))?;
        if size > CHUNK as u64 {
            return invalid(format!("{path} is larger than a chunk"));
        }
        // Chunk numbers strictly increase. As in xapi, positions are tracked
        // sequentially: each skipped number stands for a zero chunk as long
        // as the disk's first chunk, and a chunk advances the position by
        // its own length (so zero-length keep-alive chunks are harmless).
        if matches!(d.last, Some(prev) if n <= prev) {
            return invalid(format!("{path}: chunk out of order or repeated"));
        }
        if d.last.is_none() {
            d.first_len = if size == 0 { CHUNK as u64 } else { size };
        }
        let skipped = n - d.last.map_or(0, |p| p + 1);
        d.last = Some(n);
        d.pos = skipped
            .checked_mul(d.first_len)
            .and_then(|s| s.checked_add(d.pos))
            .ok_or_else(|| Error::Invalid(format!("{path}: chunk number too large")))?;
        let limit = d.target.as_ref().map(|t| t.size).unwrap_or(u64::MAX);
        if d.pos + size > limit {
            return invalid(format!("{path} goes past the disk's size ({limit} bytes)"));
        }
        data.clear();
        e.read_to_end(&mut data)?;
        if data.len() as u64 != size {
            return invalid(format!("{path} is truncated"));
        }
        sum.chunks += 1;
        awaiting = Some((disk.to_string(), path));
    }
    if let Some((_, name)) = awaiting {
        return invalid(format!("{name} has no checksum (truncated stream?)"));
    }
    // xapi always writes a disk's last chunk, so a complete disk ends
    // exactly at its size; anything else is a cut stream.
    for (id, d) in disks.iter_mut() {
        if let Some(t) = d.target.as_mut() {
            if d.pos != t.size {
                return invalid(format!("disk {id} ends at byte {} of {} (truncated stream?)", d.pos, t.size));
            }
            t.sink.finish()?;
        }
    }
    sum.bytes_in = consumed();
    Ok(sum)
}

//! The durable log: commit records appended by writers, written and
//! `fdatasync`ed by one flusher thread in batches (group commit).
//!
//! File layout: `log-<start generation>`; each record is
//! `[u32 length][u64 xxh64 of payload][payload]`, and a zero length ends the
//! valid part (files are preallocated, so the tail is zeros). The first record
//! of every file is the schema it was written with; a file gets its name only
//! once that record is synced. What the startup checks conclude from this is
//! in `startup.rs`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::watch;

const PREALLOC: u64 = 64 << 20;

enum Item {
    Record(Vec<u8>),
    /// Start a new file for records of generation `gen` onwards; `schema` is its first record.
    Rotate {
        gen: u64,
        schema: Vec<u8>,
    },
}

struct Queue {
    items: Vec<Item>,
    last_seq: u64,
    stop: bool,
}

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
    durable: watch::Sender<u64>,
    failed: Mutex<Option<String>>,
}

pub struct Wal {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

pub fn log_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("log-{gen:020}"))
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh64::xxh64(payload, 0).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Split a log file into its valid records, stopping at the first damaged or
/// missing one.
pub fn records(data: &[u8]) -> Vec<&[u8]> {
    parse(data).frames.into_iter().map(|(_, p)| p).collect()
}

/// Why the valid part of a file ends where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A zero length (or fewer than a header's bytes left): the normal end
    /// of a preallocated file.
    Zero,
    /// A frame whose length runs past the end of the file.
    Overrun(u32),
    /// A frame whose checksum does not match its payload.
    Checksum,
}

/// The intact frames of a file (offset, payload) and where and why they end.
pub struct Parsed<'a> {
    pub frames: Vec<(u64, &'a [u8])>,
    pub end: u64,
    pub why: End,
}

fn frame_at(data: &[u8], i: usize) -> Result<Option<&[u8]>, End> {
    let Some(head) = data.get(i..i + 12) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if len == 0 {
        return Ok(None);
    }
    let mut h = [0u8; 8];
    h.copy_from_slice(&head[4..12]);
    let payload = data.get(i + 12..i + 12 + len as usize).ok_or(End::Overrun(len))?;
    if xxhash_rust::xxh64::xxh64(payload, 0) != u64::from_le_bytes(h) {
        return Err(End::Checksum);
    }
    Ok(Some(payload))
}

pub fn parse(data: &[u8]) -> Parsed<'_> {
    let mut frames = Vec::new();
    let mut i = 0usize;
    loop {
        match frame_at(data, i) {
            Ok(Some(p)) => {
                frames.push((i as u64, p));
                i += 12 + p.len();
            }
            Ok(None) => return Parsed { frames, end: i as u64, why: End::Zero },
            Err(why) => return Parsed { frames, end: i as u64, why },
        }
    }
}

/// Bytes hashed while looking for intact frames after damage; past this the
/// search gives up (and the caller must assume the worst).
const SEARCH_BUDGET: u64 = 1 << 30;

/// How far past the last non-zero byte a frame found after damage may end.
/// A record's payload can end in zero bytes (empty strings, zero numbers),
/// but only a few; without this bound every 4 bytes that read as a length
/// below the 64 MiB preallocation would be hashed. (A record whose payload
/// ends in more than this many zero bytes — a string of NULs — right after
/// a damaged one would be taken for part of a torn tail.)
const TAIL_SLACK: u64 = 4096;

/// What a search for intact frames after damage found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// An intact frame starts at this offset.
    Found(u64),
    /// None to the end of the data.
    Nothing,
    /// The search budget ran out first.
    GaveUp,
}

/// The first offset in `from..=until` where an intact frame starts (a
/// frame's length is not zero, so none starts after the last non-zero byte).
pub fn intact_after(data: &[u8], from: u64, until: u64) -> Search {
    let mut hashed = 0u64;
    let mut i = from as usize;
    while i as u64 <= until && i + 12 <= data.len() {
        let len = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
        let end = (i + 12 + len) as u64;
        if len != 0 && end <= data.len() as u64 && end <= until + 1 + TAIL_SLACK {
            hashed += len as u64;
            if hashed > SEARCH_BUDGET {
                return Search::GaveUp;
            }
            if let Ok(Some(_)) = frame_at(data, i) {
                return Search::Found(i as u64);
            }
        }
        i += 1;
    }
    Search::Nothing
}

/// The first and last non-zero byte at or after `from`.
pub fn nonzero_span(data: &[u8], from: u64) -> Option<(u64, u64)> {
    let rest = data.get(from as usize..)?;
    let first = rest.iter().position(|b| *b != 0)?;
    let last = rest.iter().rposition(|b| *b != 0)?;
    Some((from + first as u64, from + last as u64))
}

/// Overwrite `[from, to)` of a file with zeros and make it durable.
pub fn zero_range(path: &Path, from: u64, to: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new().write(true).open(path)?;
    let zeros = vec![0u8; 1 << 16];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    f.sync_data()
}

struct Writer {
    dir: PathBuf,
    /// The generation the file starts at (its name).
    gen: u64,
    file: File,
    offset: u64,
    allocated: u64,
}

impl Writer {
    /// Create `log-<gen>`. The file appears under its name only once its
    /// schema record is on disk, so a log file with a damaged or missing
    /// first record is damage, never a crash artefact; and an existing file
    /// is never truncated.
    fn open(dir: &Path, gen: u64, schema: &[u8]) -> io::Result<Writer> {
        let path = log_path(dir, gen);
        if path.exists() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} already exists", path.display())));
        }
        let tmp = path.with_extension("tmp");
        let file = OpenOptions::new().create(true).truncate(true).write(true).open(&tmp)?;
        let mut w = Writer { dir: dir.to_path_buf(), gen, file, offset: 0, allocated: 0 };
        w.write(&frame(schema))?;
        w.file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.offset + bytes.len() as u64;
        if end > self.allocated {
            // Preallocating keeps fdatasync from having to update the file size.
            let new = end.div_ceil(PREALLOC) * PREALLOC;
            // SAFETY: fallocate on an owned, open descriptor; failure is reported, not UB.
            let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, new as libc::off_t) };
            if rc != 0 {
                self.file.set_len(new)?;
            }
            self.allocated = new;
        }
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(bytes, self.offset)?;
        self.offset = end;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Start a log in `dir` whose first file holds generations from `gen`.
    pub fn start(dir: &Path, gen: u64, schema: Vec<u8>) -> io::Result<Wal> {
        let mut writer = Writer::open(dir, gen, &schema)?;
        let (durable, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            q: Mutex::new(Queue { items: Vec::new(), last_seq: 0, stop: false }),
            cv: Condvar::new(),
            durable,
            failed: Mutex::new(None),
        });
        let sh = shared.clone();
        let thread = std::thread::Builder::new().name("wal-flush".into()).spawn(move || {
            loop {
                let (items, seq, stop) = {
                    let mut q = match sh.q.lock() {
                        Ok(q) => q,
                        Err(p) => p.into_inner(),
                    };
                    while q.items.is_empty() && !q.stop {
                        q = match sh.cv.wait(q) {
                            Ok(q) => q,
                            Err(p) => p.into_inner(),
                        };
                    }
                    (std::mem::take(&mut q.items), q.last_seq, q.stop)
                };
                let res = (|| -> io::Result<()> {
                    let mut batch = Vec::new();
                    for it in items {
                        match it {
                            Item::Record(b) => batch.extend_from_slice(&b),
                            Item::Rotate { gen, schema } => {
                                writer.write(&batch)?;
                                batch.clear();
                                writer.sync()?;
                                // Nothing committed since this file began: it
                                // already is the file for `gen` on.
                                if gen != writer.gen {
                                    writer = Writer::open(&writer.dir.clone(), gen, &schema)?;
                                }
                            }
                        }
                    }
                    if !batch.is_empty() {
                        writer.write(&batch)?;
                    }
                    writer.sync()
                })();
                match res {
                    Ok(()) => {
                        sh.durable.send_replace(seq);
                    }
                    Err(e) => {
                        // A log that cannot be written must not acknowledge
                        // anything again: waiters see the failure.
                        tracing::error!("durable log write failed: {e}");
                        if let Ok(mut f) = sh.failed.lock() {
                            *f = Some(e.to_string());
                        }
                        sh.durable.send_replace(u64::MAX);
                        return;
                    }
                }
                if stop {
                    return;
                }
            }
        })?;
        Ok(Wal { shared, thread: Mutex::new(Some(thread)) })
    }

    fn push(&self, item: Item) -> u64 {
        let mut q = match self.shared.q.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        q.last_seq += 1;
        q.items.push(item);
        let seq = q.last_seq;
        drop(q);
        self.shared.cv.notify_one();
        seq
    }

    /// Queue a framed record; returns its sequence number.
    pub fn append(&self, framed: Vec<u8>) -> u64 {
        self.push(Item::Record(framed))
    }

    /// Switch to a new file for generations from `gen` on.
    pub fn rotate(&self, gen: u64, schema: Vec<u8>) -> u64 {
        self.push(Item::Rotate { gen, schema })
    }

    pub fn failure(&self) -> Option<String> {
        self.shared.failed.lock().ok().and_then(|f| f.clone())
    }

    /// Wait until record `seq` is on disk.
    pub async fn wait(&self, seq: u64) -> Result<(), String> {
        let mut rx = self.shared.durable.subscribe();
        let r = rx.wait_for(|d| *d >= seq).await.map(|d| *d);
        match r {
            Ok(u64::MAX) | Err(_) => Err(self.failure().unwrap_or_else(|| "log closed".into())),
            Ok(_) => Ok(()),
        }
    }

    /// Blocking form of [`Wal::wait`], for code outside the runtime.
    pub fn wait_blocking(&self, seq: u64) -> Result<(), String> {
        let mut rx = self.shared.durable.subscribe();
        loop {
            let d = *rx.borrow_and_update();
            if d == u64::MAX {
                return Err(self.failure().unwrap_or_else(|| "log closed".into()));
            }
            if d >= seq {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Flush everything queued and stop the flusher.
    pub fn close(&self) {
        if let Ok(mut q) = self.shared.q.lock() {
            q.stop = true;
        }
        self.shared.cv.notify_one();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close()
    }
}

/// Write `data` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(d) = path.parent() {
        sync_dir(d)?;
    }
    Ok(())
}

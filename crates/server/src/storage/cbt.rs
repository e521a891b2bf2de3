//! Changed block tracking: a log per VDI, `<location>.cbt` beside its data,
//! of the 64 KiB blocks written since the VDI's last snapshot (for a live
//! disk) or between the previous snapshot and this one (for a snapshot,
//! which takes over its disk's log when it is made). The blocks changed
//! between two snapshots of one disk are the union of the logs after the
//! older up to the newer, as xapi's CBT log chain answers.
//!
//! Writers mark blocks *before* they write them and the log is fsynced
//! first, so a crash can only over-claim; a writer whose ranges are not
//! known in advance marks the whole disk. The file is replaced atomically
//! (temporary file, fsync, rename) or has bits added in place.
//!
//! A writer that learns its blocks as it goes (a tracked import, which
//! compares before it writes) opens a batch instead ([`begin`]): a durable
//! marker `<location>.cbt-busy` beside the log, under which the log reads as
//! every block changed; [`end`] adds the blocks written, durably, then
//! removes the marker. A crash in between leaves the marker, so the log
//! over-claims (the next batch folds it in as all changed); one marker and
//! one log update per import instead of one fsync per window.

use super::vhd;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The tracking granularity (xapi's CBT bitmap).
pub const BLOCK: u64 = 64 << 10;
const MAGIC: &[u8; 8] = b"XRS-CBT1";

/// The log file of a VDI whose data is at `data`.
pub fn log_path(data: &Path) -> PathBuf {
    data.with_extension("cbt")
}

/// A changed-block bitmap for a disk of `size` bytes, most significant bit
/// first (block 0 is 0x80 of byte 0), as xapi's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub size: u64,
    pub bits: Vec<u8>,
}

impl Bitmap {
    pub fn new(size: u64) -> Bitmap {
        Bitmap { size, bits: vec![0; size.div_ceil(BLOCK).div_ceil(8) as usize] }
    }

    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(BLOCK)
    }

    /// Mark the blocks overlapping bytes `off..off+len`.
    pub fn mark(&mut self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = (off.saturating_add(len)).min(self.blocks() * BLOCK);
        let mut b = off / BLOCK;
        while b * BLOCK < end {
            if let Some(byte) = self.bits.get_mut((b / 8) as usize) {
                *byte |= 0x80 >> (b % 8);
            }
            b += 1;
        }
    }

    pub fn mark_all(&mut self) {
        self.mark(0, self.size);
    }

    pub fn get(&self, b: u64) -> bool {
        self.bits.get((b / 8) as usize).is_some_and(|v| v & (0x80 >> (b % 8)) != 0)
    }

    /// Add `other`'s blocks (a disk may have grown between the two).
    pub fn union(&mut self, other: &Bitmap) {
        if other.size > self.size {
            self.size = other.size;
            self.bits.resize(other.bits.len(), 0);
        }
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
    }

    /// Whether any 64 KiB block inside VHD block `index` changed.
    pub fn any_in_vhd_block(&self, index: u64) -> bool {
        let per = vhd::BLOCK / BLOCK;
        (index * per..(index + 1) * per).any(|b| self.get(b))
    }
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()))
}

/// The marker of a batch under way on the log at `log`.
fn busy_path(log: &Path) -> PathBuf {
    log.with_extension("cbt-busy")
}

/// Read a log as its readers see it: every block changed while a batch is
/// under way (or was cut short by a crash); None if there is none.
pub fn read(path: &Path) -> io::Result<Option<Bitmap>> {
    let mut map = read_bits(path)?;
    if let Some(m) = map.as_mut().filter(|_| busy_path(path).exists()) {
        m.mark_all();
    }
    Ok(map)
}

/// Remove a log and any batch marker beside it.
pub fn remove(path: &Path) -> io::Result<()> {
    for p in [busy_path(path), path.to_path_buf()] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// After the log at `path` was taken over (a snapshot took the changes so
/// far): a batch marker left by a crash belongs to what was taken.
pub fn settled(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(busy_path(path)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Open a batch of writes to the disk at `data` (see the module's
/// comment); false if the disk keeps no log. A marker left by a batch that
/// never ended is folded into the log as every block changed first.
pub fn begin(data: &Path) -> io::Result<bool> {
    let log = log_path(data);
    let Some(mut map) = read_bits(&log)? else { return Ok(false) };
    let busy = busy_path(&log);
    if busy.exists() {
        map.mark_all();
        write(&log, &map)?;
    } else {
        File::create(&busy)?.sync_all()?;
        if let Some(dir) = log.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(true)
}

/// The guest batches a marker names, one token a line; None if there is
/// no marker. An empty marker is a batch of no guest's (an import, or one
/// cut short): nobody will close it.
fn guest_batches(busy: &Path) -> io::Result<Option<Vec<String>>> {
    match std::fs::read_to_string(busy) {
        Ok(t) => Ok(Some(t.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replace the marker by one naming `tokens` (none: no marker), durably.
fn set_guest_batches(log: &Path, tokens: &[String]) -> io::Result<()> {
    if tokens.is_empty() {
        return settled(log);
    }
    replace(&busy_path(log), tokens.join("\n").as_bytes())
}

/// Open a batch for the writes of a guest that starts afresh on the disk at
/// `data`: as [`begin`], with a token of its own in the marker, which only
/// this batch's end ([`end_guest`]) takes out. Batches still open belong to
/// domains that are gone: folded in as every block changed. None if the
/// disk keeps no log.
pub fn begin_guest(data: &Path) -> io::Result<Option<String>> {
    open_guest(data, false)
}

/// Open a batch for a guest that takes over from one still running (a
/// reboot's next domain, a migration's destination): the open batches stay
/// open beside it, for their domains to hand their writes over.
pub fn join_guest(data: &Path) -> io::Result<Option<String>> {
    open_guest(data, true)
}

fn open_guest(data: &Path, join: bool) -> io::Result<Option<String>> {
    let log = log_path(data);
    let Some(mut map) = read_bits(&log)? else { return Ok(None) };
    let open = guest_batches(&busy_path(&log))?;
    let mut tokens = match open {
        // An empty marker: nobody will hand its writes over.
        Some(t) if !join || t.is_empty() => {
            map.mark_all();
            write(&log, &map)?;
            vec![]
        }
        Some(t) => t,
        None => vec![],
    };
    let token = model::new_uuid();
    tokens.push(token.clone());
    set_guest_batches(&log, &tokens)?;
    Ok(Some(token))
}

/// The batch of a guest that runs on while its server restarted: the one
/// open guest batch of the disk at `data` (the guest's QEMU may still hold
/// the bitmap of its writes); with none or several, which is its own is
/// unknown: a new one beside them ([`join_guest`]; the others stay open).
pub fn resume_guest(data: &Path) -> io::Result<Option<String>> {
    let log = log_path(data);
    if !log.exists() {
        return Ok(None);
    }
    match guest_batches(&busy_path(&log))? {
        Some(t) if t.len() == 1 => Ok(t.into_iter().next()),
        _ => join_guest(data),
    }
}

/// Close a guest's batch (`batch`, from [`begin_guest`] or [`join_guest`]):
/// the byte ranges it wrote go into the log durably, then its token leaves
/// the marker (which goes with the last one).
pub fn end_guest(data: &Path, batch: &str, written: &[(u64, u64)]) -> io::Result<()> {
    mark(data, 0, Some(written))?;
    let log = log_path(data);
    match guest_batches(&busy_path(&log))? {
        Some(t) if t.iter().any(|x| x == batch) => {
            let rest: Vec<String> = t.into_iter().filter(|x| x != batch).collect();
            set_guest_batches(&log, &rest)
        }
        _ => Ok(()),
    }
}

/// Close a batch: the byte ranges written go into the log durably, then
/// the marker goes (a crash before its removal is durable only over-claims),
/// unless guest batches are open in it: their domains close them.
pub fn end(data: &Path, size: u64, written: &[(u64, u64)]) -> io::Result<()> {
    mark(data, size, Some(written))?;
    let log = log_path(data);
    match guest_batches(&busy_path(&log))? {
        Some(t) if !t.is_empty() => Ok(()),
        _ => settled(&log),
    }
}

/// A snapshot of the disk at `data` while a guest writes it (under a batch
/// marker that stays as long as the guest runs): the snapshot's log (beside
/// `snap`) gets the disk's own bits and `dirty`, the blocks the guest wrote
/// since the last snapshot (None: every block); the disk's bits are emptied,
/// its marker kept. The snapshot's log is durable before the disk's is
/// emptied, so a crash in between only over-claims. False if the disk keeps
/// no log.
///
/// The running guest's batch must be the only one open: another is a
/// domain that has not handed its writes over yet (a reboot's or a
/// migration's predecessor, or one that ended without), whose blocks are
/// unknown, so the snapshot then gets every block.
pub fn hand_over_running(data: &Path, snap: &Path, size: u64, dirty: Option<&[(u64, u64)]>) -> io::Result<bool> {
    let log = log_path(data);
    let Some(own) = read_bits(&log)? else { return Ok(false) };
    let mut map = Bitmap::new(size.max(own.size));
    map.union(&own);
    let alone = guest_batches(&busy_path(&log))?.is_some_and(|t| t.len() == 1);
    match dirty.filter(|_| alone) {
        Some(rs) => rs.iter().for_each(|(off, len)| map.mark(*off, *len)),
        None => map.mark_all(),
    }
    write(&log_path(snap), &map)?;
    write(&log, &Bitmap::new(map.size))?;
    Ok(true)
}

/// The log's own bits, whatever batch is under way.
fn read_bits(path: &Path) -> io::Result<Option<Bitmap>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 16];
    f.read_exact(&mut head).map_err(|_| invalid(path, "short header"))?;
    if &head[..8] != MAGIC {
        return Err(invalid(path, "not a changed-block log"));
    }
    let size = u64::from_be_bytes([head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15]]);
    let mut map = Bitmap::new(size);
    f.read_exact(&mut map.bits).map_err(|_| invalid(path, "bitmap shorter than the disk"))?;
    Ok(Some(map))
}

/// Replace a log atomically and durably.
pub fn write(path: &Path, map: &Bitmap) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(16 + map.bits.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&map.size.to_be_bytes());
    bytes.extend_from_slice(&map.bits);
    replace(path, &bytes)
}

/// Replace the file at `path` by `bytes`, atomically and durably.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("cbt-{}.tmp", model::new_uuid()));
    let out = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if out.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    out
}

/// Record that byte ranges `(offset, length)` of the disk at `data` are
/// about to be written (None: the whole disk), if the disk keeps a log;
/// `size` is the disk's current size. Durable when this returns.
pub fn mark(data: &Path, size: u64, ranges: Option<&[(u64, u64)]>) -> io::Result<()> {
    let path = log_path(data);
    let Some(mut map) = read_bits(&path)? else { return Ok(()) };
    let grown = size > map.size;
    if grown {
        let mut grown = Bitmap::new(size);
        grown.union(&map);
        map = grown;
    }
    let before = map.clone();
    match ranges {
        Some(rs) => rs.iter().for_each(|(off, len)| map.mark(*off, *len)),
        None => map.mark_all(),
    }
    if map == before {
        return Ok(());
    }
    if grown {
        // A longer bitmap: the file is replaced whole.
        write(&path, &map)
    } else {
        set_in_place(&path, &before, &map)
    }
}

/// Set bits in the log where it lies, with one `fdatasync`: between
/// snapshots bits are only ever added, so whatever a crash leaves of this
/// write (any mix of old and new bytes) still holds every bit set before,
/// and the new ones count only once this returns. Replacing the file (a
/// temporary file, two fsyncs and a rename per call) made a tracked first
/// import four times slower than an untracked one.
fn set_in_place(path: &Path, before: &Bitmap, after: &Bitmap) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let differs = |i: &usize| before.bits.get(*i) != after.bits.get(*i);
    let (Some(first), Some(last)) = ((0..after.bits.len()).find(differs), (0..after.bits.len()).rev().find(differs))
    else {
        return Ok(());
    };
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all_at(&after.bits[first..=last], 16 + first as u64)?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_bits_and_files() {
        let mut m = Bitmap::new(10 * BLOCK + 1);
        assert_eq!(m.bits.len(), 2);
        m.mark(BLOCK - 1, 2); // blocks 0 and 1
        m.mark(10 * BLOCK, 1); // the partial last block
        assert_eq!(m.bits, vec![0xC0, 0x20]);
        assert!(m.any_in_vhd_block(0) && !m.any_in_vhd_block(1));
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("d.raw");
        assert_eq!(read(&log_path(&data)).unwrap(), None);
        write(&log_path(&data), &Bitmap::new(4 * BLOCK)).unwrap();
        mark(&data, 4 * BLOCK, Some(&[(2 * BLOCK, 10)])).unwrap();
        assert_eq!(read(&log_path(&data)).unwrap().unwrap().bits, vec![0x20]);
        mark(&data, 8 * BLOCK, None).unwrap();
        assert_eq!(read(&log_path(&data)).unwrap().unwrap(), Bitmap { size: 8 * BLOCK, bits: vec![0xFF] });
        std::fs::write(log_path(&data), b"XRS-CBT1\0\0\0\0\0\0\x10\0").unwrap();
        assert!(read(&log_path(&data)).is_err(), "a short bitmap is refused");
    }

    #[test]
    fn a_guests_batch_is_closed_only_by_its_own_hand_over() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("d.raw");
        let log = log_path(&data);
        assert_eq!(begin_guest(&data).unwrap(), None, "no log, no batch");
        write(&log, &Bitmap::new(8 * BLOCK)).unwrap();
        // A domain runs, stops, hands its writes over: exact.
        let one = begin_guest(&data).unwrap().unwrap();
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0xFF], "all, while it runs");
        end_guest(&data, &one, &[(BLOCK, 1)]).unwrap();
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0x40]);
        // A reboot through the API (or a migration): the next domain joins
        // while the old one runs; the old one's hand-over leaves the new
        // batch open, and each names exactly its own blocks.
        let two = begin_guest(&data).unwrap().unwrap();
        let three = join_guest(&data).unwrap().unwrap();
        assert_ne!(two, three);
        end_guest(&data, &two, &[(0, 1)]).unwrap();
        assert!(busy_path(&log).exists(), "the newer batch stays open");
        end_guest(&data, &three, &[(7 * BLOCK, 1)]).unwrap();
        assert!(!busy_path(&log).exists());
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0xC1]);
        // A domain that never handed over (its host died): the next start
        // folds its batch in as every block changed.
        let lost = begin_guest(&data).unwrap().unwrap();
        let next = begin_guest(&data).unwrap().unwrap();
        end_guest(&data, &lost, &[]).unwrap();
        assert!(busy_path(&log).exists());
        end_guest(&data, &next, &[]).unwrap();
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0xFF], "over-claimed, never under");
        // A restarted server goes on with a running guest's batch.
        write(&log, &Bitmap::new(8 * BLOCK)).unwrap();
        let four = begin_guest(&data).unwrap().unwrap();
        assert_eq!(resume_guest(&data).unwrap().as_deref(), Some(four.as_str()));
        end_guest(&data, &four, &[(2 * BLOCK, 1)]).unwrap();
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0x20]);
        // A batch of no guest's (an import) that ends leaves a guest's open.
        let g = begin_guest(&data).unwrap().unwrap();
        assert!(begin(&data).unwrap());
        end(&data, 8 * BLOCK, &[]).unwrap();
        assert!(busy_path(&log).exists(), "the guest's batch stays open");
        end_guest(&data, &g, &[]).unwrap();
        assert!(!busy_path(&log).exists());
        // Without an open guest batch, it opens one; with two, a third.
        let five = resume_guest(&data).unwrap().unwrap();
        assert_ne!(five, four);
        let six = join_guest(&data).unwrap().unwrap();
        let seven = resume_guest(&data).unwrap().unwrap();
        assert!(seven != five && seven != six);
        for t in [five, six, seven] {
            end_guest(&data, &t, &[]).unwrap();
        }
        assert!(!busy_path(&log).exists());
    }

    #[test]
    fn a_running_guests_snapshot_is_exact_only_while_its_batch_is_alone() {
        let t = tempfile::tempdir().unwrap();
        let (data, snap) = (t.path().join("d.raw"), t.path().join("s.raw"));
        let log = log_path(&data);
        write(&log, &Bitmap::new(8 * BLOCK)).unwrap();
        let one = begin_guest(&data).unwrap().unwrap();
        assert!(hand_over_running(&data, &snap, 8 * BLOCK, Some(&[(3 * BLOCK, 1)])).unwrap());
        assert_eq!(read_bits(&log_path(&snap)).unwrap().unwrap().bits, vec![0x10]);
        // A successor joined (a reboot under way): the predecessor's blocks
        // are not handed over yet, so the snapshot claims them all.
        let two = join_guest(&data).unwrap().unwrap();
        assert!(hand_over_running(&data, &snap, 8 * BLOCK, Some(&[(3 * BLOCK, 1)])).unwrap());
        assert_eq!(read_bits(&log_path(&snap)).unwrap().unwrap().bits, vec![0xFF]);
        end_guest(&data, &one, &[(4 * BLOCK, 1)]).unwrap();
        assert!(hand_over_running(&data, &snap, 8 * BLOCK, Some(&[(5 * BLOCK, 1)])).unwrap());
        assert_eq!(read_bits(&log_path(&snap)).unwrap().unwrap().bits, vec![0x0C]);
        end_guest(&data, &two, &[]).unwrap();
    }

    #[test]
    fn a_batch_over_claims_until_it_ends_and_after_a_crash() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("d.raw");
        let log = log_path(&data);
        assert!(!begin(&data).unwrap(), "no log, no batch");
        write(&log, &Bitmap::new(8 * BLOCK)).unwrap();
        assert!(begin(&data).unwrap());
        // Under way: every block reads as changed, the log itself is untouched.
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0xFF]);
        assert_eq!(read_bits(&log).unwrap().unwrap().bits, vec![0]);
        end(&data, 8 * BLOCK, &[(BLOCK, 2 * BLOCK)]).unwrap();
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0x60]);
        assert!(!busy_path(&log).exists());
        // A batch that never ended (a crash): the next one starts from all changed.
        assert!(begin(&data).unwrap());
        assert!(begin(&data).unwrap());
        assert_eq!(read_bits(&log).unwrap().unwrap().bits, vec![0xFF]);
        end(&data, 8 * BLOCK, &[]).unwrap();
        assert_eq!(read(&log).unwrap().unwrap().bits, vec![0xFF]);
        // A snapshot that took the log over takes a crashed batch with it.
        assert!(begin(&data).unwrap());
        settled(&log).unwrap();
        remove(&log).unwrap();
        assert_eq!(read(&log).unwrap(), None);
    }
}

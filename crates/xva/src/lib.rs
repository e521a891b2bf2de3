//! The XVA format: how xapi exports a VM (and imports it back).
//!
//! The current format (`export_vsn` 2) is a tar stream: `ova.xml` first (an
//! XML-RPC value describing the VM and the objects it needs), then each
//! disk as 1 MiB chunks `Ref:<n>/<%08d>` followed by a `.xxhash` entry
//! (XXH64, seed 0, 16 upper-case hex digits); all-zero chunks are skipped
//! except the first and the last. The whole stream may be gzip- or
//! zstd-compressed. Import also accepts SHA-1 `.checksum` entries, and the
//! legacy format of the XenServer 7.3 SDK guide (§3.5.1): an `ova.xml` with
//! `<appliance version="0.1">` and disks as directories of gzipped 10⁹-byte
//! chunks.
//!
//! Nothing here knows about the server: disks are read through
//! [`DiskSource`] and written through [`DiskSink`], and memory use stays
//! flat whatever the disk size.

pub mod header;
pub mod legacy;
pub mod read;
pub mod write;

pub use header::{Header, Object};

/// Bytes per chunk entry.
pub const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The stream is not a valid XVA (xapi: "Invalid XVA file").
    #[error("invalid XVA: {0}")]
    Invalid(String),
    #[error("checksum mismatch in {entry}: expected {expected}, computed {actual}")]
    Checksum { entry: String, expected: String, actual: String },
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(msg.into()))
}

/// A disk to export: its size and random-access reads. `next_data` lets
/// sparse sources skip holes (a hole reads as zeros).
pub trait DiskSource {
    fn size(&self) -> u64;
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> std::io::Result<()>;
    /// Replace `buf`'s contents with the `len` bytes at `off`.
    fn read_vec(&mut self, off: u64, len: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.clear();
        buf.resize(len, 0);
        self.read_at(off, buf)
    }
    /// The first offset ≥ `off` that may hold data (None: only zeros follow).
    fn next_data(&mut self, off: u64) -> Option<u64> {
        Some(off)
    }
}

/// Where an imported disk's data goes. Unwritten ranges must read as zeros
/// (a sparse file does).
pub trait DiskSink {
    fn write_at(&mut self, off: u64, data: &[u8]) -> std::io::Result<()>;
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A regular file as a disk: sparse-aware reads, positioned writes.
pub struct FileDisk {
    pub file: std::fs::File,
    pub size: u64,
    /// The span written since writeback was last started, and its bytes.
    unflushed: Option<(u64, u64, u64)>,
}

impl FileDisk {
    pub fn open(path: &std::path::Path) -> std::io::Result<FileDisk> {
        let file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        Ok(FileDisk { file, size, unflushed: None })
    }
    /// A disk over a file the caller opened (with its own checks).
    pub fn from_file(file: std::fs::File, size: u64) -> FileDisk {
        FileDisk { file, size, unflushed: None }
    }
    pub fn create(path: &std::path::Path, size: u64) -> std::io::Result<FileDisk> {
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
        Ok(FileDisk { file, size, unflushed: None })
    }
}

/// Written bytes after which an import starts their writeback.
const WRITEBACK: u64 = 16 * CHUNK as u64;

impl DiskSource for FileDisk {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        // Reads past the end of a short file are zeros (the disk is `size` long).
        let mut done = 0;
        while done < buf.len() {
            let n = self.file.read_at(&mut buf[done..], off + done as u64)?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }
    fn read_vec(&mut self, off: u64, len: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
        use std::io::{Read, Seek};
        // Read into the buffer's spare capacity: no zeroing pass before the
        // read (the buffer is often new, its old one having gone to the sink).
        buf.clear();
        buf.reserve(len);
        let mut f = &self.file;
        f.seek(std::io::SeekFrom::Start(off))?;
        f.take(len as u64).read_to_end(buf)?;
        // Past the end of a short file the disk reads as zeros.
        buf.resize(len, 0);
        Ok(())
    }
    fn next_data(&mut self, off: u64) -> Option<u64> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: lseek on an owned descriptor; the result is checked.
        let r = unsafe { libc::lseek(self.file.as_raw_fd(), off as libc::off_t, libc::SEEK_DATA) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // ENXIO: no data after `off`. Anything else: assume data (no SEEK_DATA support).
            return if e.raw_os_error() == Some(libc::ENXIO) { None } else { Some(off) };
        }
        Some(r as u64)
    }
}

impl DiskSink for FileDisk {
    fn write_at(&mut self, off: u64, data: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(data, off)?;
        // An import is acknowledged only once its disk is on stable storage
        // (`finish`). Starting writeback every few MiB lets the device work
        // while the stream is still decompressed, instead of all of it
        // waiting for the final fsync.
        let end = off + data.len() as u64;
        let (start, last, bytes) = match self.unflushed {
            Some((s, e, n)) => (s.min(off), e.max(end), n + data.len() as u64),
            None => (off, end, data.len() as u64),
        };
        if bytes >= WRITEBACK {
            use std::os::unix::io::AsRawFd;
            // SAFETY: advisory writeback request on an owned descriptor; a
            // failure only means the final fsync does the work.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    start as libc::off64_t,
                    (last - start) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.unflushed = None;
        } else {
            self.unflushed = Some((start, last, bytes));
        }
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

/// True if every byte is zero (a memcmp against a zero page: fast even in
/// unoptimised builds).
pub fn is_zero(mut b: &[u8]) -> bool {
    static ZERO: [u8; 64 << 10] = [0; 64 << 10];
    while !b.is_empty() {
        let n = b.len().min(ZERO.len());
        if b[..n] != ZERO[..n] {
            return false;
        }
        b = &b[n..];
    }
    true
}

/// XXH64 (seed 0) as xapi writes it: 16 upper-case hex digits.
pub fn xxhash_hex(data: &[u8]) -> String {
    format!("{:016X}", xxhash_rust::xxh64::xxh64(data, 0))
}

/// SHA-1 as legacy `.checksum` entries hold it: lower-case hex.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    let d = sha1::Sha1::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stream compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// `use_compression` as xapi reads it: `true` means gzip.
    pub fn from_param(p: Option<&str>) -> Option<Compression> {
        match p.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("false") => Some(Compression::None),
            Some("true") | Some("gzip") => Some(Compression::Gzip),
            Some("zstd") => Some(Compression::Zstd),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests() {
        assert_eq!(super::xxhash_hex(b""), "EF46DB3751D8E999");
        assert_eq!(super::sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(super::is_zero(&[0; 200_000]) && super::is_zero(&[]));
        let mut v = vec![0u8; 200_000];
        v[150_000] = 1;
        assert!(!super::is_zero(&v));
    }
}

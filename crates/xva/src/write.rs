//! Writing an XVA stream.

use crate::{Compression, DiskSource, Error, Header, Result, CHUNK};
use std::io::Write;

/// Where an XVA is written. A sink that can take a whole buffer without
/// copying it (an HTTP body made of owned pieces) overrides `write_buf`, so
/// uncompressed disk chunks go from the file read to the socket in one buffer.
pub trait Sink: Write {
    /// Write all of `buf`; return a buffer (this one or a new one) for the
    /// caller to fill next.
    fn write_buf(&mut self, buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.write_all(&buf)?;
        Ok(buf)
    }
}

impl Sink for Vec<u8> {}

/// Where the tar goes: plain, gzip (level 6, like xapi's gzip, one member
/// per block compressed on every core) or zstd (level 3, multithreaded).
enum Out<W: Write> {
    Plain(W),
    Gzip(ParGz<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// Bytes per gzip member.
const GZ_BLOCK: usize = 1 << 20;

type GzJob = (Vec<u8>, std::sync::mpsc::Sender<std::io::Result<Vec<u8>>>);

/// Parallel gzip: the input is cut into blocks, each compressed as its own
/// gzip member by a pool of threads and written in order. A concatenation of
/// members is a valid gzip stream (gunzip, zcat and xapi read it). At most
/// two blocks per thread are in flight, so memory stays bounded.
pub struct ParGz<W: Write> {
    inner: Option<W>,
    block: Vec<u8>,
    jobs: Option<std::sync::mpsc::SyncSender<GzJob>>,
    pending: std::collections::VecDeque<std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl<W: Write> ParGz<W> {
    pub fn new(inner: W, level: u32) -> ParGz<W> {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 16);
        let (tx, rx) = std::sync::mpsc::sync_channel::<GzJob>(n);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let workers = (0..n)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok((data, reply)) = job else { return };
                    let mut e = flate2::write::GzEncoder::new(
                        Vec::with_capacity(data.len() / 2 + 64),
                        flate2::Compression::new(level),
                    );
                    let out = e.write_all(&data).and_then(|()| e.finish());
                    let _ = reply.send(out);
                })
            })
            .collect();
        ParGz {
            inner: Some(inner),
            block: Vec::with_capacity(GZ_BLOCK),
            jobs: Some(tx),
            pending: Default::default(),
            workers,
        }
    }

    fn sink(&mut self) -> std::io::Result<&mut W> {
        self.inner.as_mut().ok_or_else(|| std::io::Error::other("gzip stream finished"))
    }

    fn write_one(&mut self) -> std::io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let out = rx.recv().map_err(|_| std::io::Error::other("gzip worker died"))??;
            self.sink()?.write_all(&out)?;
        }
        Ok(())
    }

    fn submit(&mut self) -> std::io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(GZ_BLOCK));
        let (tx, rx) = std::sync::mpsc::channel();
        let jobs = self.jobs.as_ref().ok_or_else(|| std::io::Error::other("gzip stream finished"))?;
        jobs.send((data, tx)).map_err(|_| std::io::Error::other("gzip workers gone"))?;
        self.pending.push_back(rx);
        while self.pending.len() > 2 * self.workers.len() {
            self.write_one()?;
        }
        Ok(())
    }

    /// Compress what is left, write everything, stop the workers.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.submit()?;
        while !self.pending.is_empty() {
            self.write_one()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let mut inner = self.inner.take().ok_or_else(|| std::io::Error::other("gzip stream finished"))?;
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for ParGz<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = b.len().min(GZ_BLOCK - self.block.len());
        self.block.extend_from_slice(&b[..n]);
        if self.block.len() == GZ_BLOCK {
            self.submit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.submit()?;
        while !self.pending.is_empty() {
            self.write_one()?;
        }
        self.sink()?.flush()
    }
}

impl<W: Write> Drop for ParGz<W> {
    fn drop(&mut self) {
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Plain(w) => w.write(b),
            Out::Gzip(w) => w.write(b),
            Out::Zstd(w) => w.write(b),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Plain(w) => w.write_all(b),
            Out::Gzip(w) => w.write_all(b),
            Out::Zstd(w) => w.write_all(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Plain(w) => w.flush(),
            Out::Gzip(w) => w.flush(),
            Out::Zstd(w) => w.flush(),
        }
    }
}

pub struct Writer<W: Sink> {
    tar: tar::Builder<Out<W>>,
    mtime: u64,
}

fn entry_header(size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

impl<W: Sink> Writer<W> {
    /// Start a stream with its `ova.xml`.
    pub fn new(w: W, compression: Compression, header: &Header) -> Result<Writer<W>> {
        let out = match compression {
            Compression::None => Out::Plain(w),
            Compression::Gzip => Out::Gzip(ParGz::new(w, 6)),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, 3)?;
                let threads = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
                if threads > 1 {
                    e.multithread(threads)?;
                }
                Out::Zstd(e)
            }
        };
        let mtime =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let xml = header.to_xml();
        tar.append_data(&mut entry_header(xml.len() as u64, mtime), "ova.xml", xml.as_bytes())?;
        Ok(Writer { tar, mtime })
    }

    fn entry(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let mut h = entry_header(data.len() as u64, self.mtime);
        self.tar.append_data(&mut h, name, data)?;
        Ok(())
    }

    /// An entry whose data is handed over whole: uncompressed, the buffer
    /// itself goes to the sink (no copy); returns a buffer to fill next.
    fn owned_entry(&mut self, name: &str, data: Vec<u8>) -> Result<Vec<u8>> {
        let mut h = entry_header(data.len() as u64, self.mtime);
        if !matches!(self.tar.get_ref(), Out::Plain(_)) || h.set_path(name).is_err() {
            // Compressed, or a name needing GNU long-name entries: the tar
            // builder copies it.
            self.entry(name, &data)?;
            return Ok(data);
        }
        h.set_cksum();
        let pad = (512 - data.len() % 512) % 512;
        let out = self.tar.get_mut();
        out.write_all(h.as_bytes())?;
        let back = match out {
            Out::Plain(w) => w.write_buf(data)?,
            _ => return Err(Error::Io(std::io::Error::other("not a plain stream"))),
        };
        out.write_all(&[0u8; 512][..pad])?;
        Ok(back)
    }

    /// Add a disk as `id/NNNNNNNN` chunks with `.xxhash` entries; all-zero
    /// chunks are skipped except the first and the last. `progress` gets
    /// the bytes of the disk covered so far and returns false to cancel.
    pub fn add_disk(
        &mut self,
        id: &str,
        src: &mut dyn DiskSource,
        progress: &mut dyn FnMut(u64) -> bool,
    ) -> Result<()> {
        let size = src.size();
        let chunks = size.div_ceil(CHUNK as u64).max(1);
        let mut buf = Vec::with_capacity(CHUNK);
        let mut i = 0u64;
        while i < chunks {
            let off = i * CHUNK as u64;
            let last = i + 1 == chunks;
            // Jump over holes: chunks in them are zeros and need no entry.
            if i != 0 && !last {
                match src.next_data(off) {
                    None => {
                        i = chunks - 1;
                        continue;
                    }
                    Some(d) if d >= off + CHUNK as u64 => {
                        i = (d / CHUNK as u64).min(chunks - 1);
                        continue;
                    }
                    _ => {}
                }
            }
            let len = (size - off).min(CHUNK as u64) as usize;
            src.read_vec(off, len, &mut buf)?;
            if i == 0 || last || !crate::is_zero(&buf) {
                let name = format!("{id}/{i:08}");
                let sum = crate::xxhash_hex(&buf);
                buf = self.owned_entry(&name, buf)?;
                self.entry(&format!("{name}.xxhash"), sum.as_bytes())?;
            }
            i += 1;
            if !progress(off + len as u64) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }

    /// End the archive and the compression stream; returns the inner writer.
    pub fn finish(self) -> Result<W> {
        let out = self.tar.into_inner()?;
        Ok(match out {
            Out::Plain(w) => w,
            Out::Gzip(w) => w.finish()?,
            Out::Zstd(w) => w.finish()?,
        })
    }
}

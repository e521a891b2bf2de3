//! Writing an XVA stream.

use crate::{Compression, DiskSource, Error, Header, Result, CHUNK};
use std::io::Write;

/// Where the tar goes: plain, gzip (level 6, like xapi's gzip) or zstd
/// (level 3, two worker threads).
enum Out<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
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

pub struct Writer<W: Write> {
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

impl<W: Write> Writer<W> {
    /// Start a stream with its `ova.xml`.
    pub fn new(w: W, compression: Compression, header: &Header) -> Result<Writer<W>> {
        let out = match compression {
            Compression::None => Out::Plain(w),
            Compression::Gzip => Out::Gzip(flate2::write::GzEncoder::new(w, flate2::Compression::new(6))),
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
        let mut buf = vec![0u8; CHUNK];
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
            let data = &mut buf[..len];
            src.read_at(off, data)?;
            if i == 0 || last || !crate::is_zero(data) {
                let name = format!("{id}/{i:08}");
                self.entry(&name, data)?;
                let sum = crate::xxhash_hex(data);
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

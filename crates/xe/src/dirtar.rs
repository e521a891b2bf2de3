//! A legacy XVA directory (ova.xml plus one sub-directory of gzipped chunks
//! per disk, as in the SDK guide §3.5.1) sent as the tar stream the server's
//! /import reads: ova.xml first, then each disk's files in name order, which
//! is chunk order. The size is known up front, so the upload carries an
//! exact Content-Length.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Tar member: its header block, then the file, then zero padding.
struct Member {
    header: [u8; 512],
    path: PathBuf,
    size: u64,
}

pub struct DirTar {
    members: Vec<Member>,
    /// Index of the member being sent, and how far into it we are
    /// (header, data and padding counted together).
    at: usize,
    pos: u64,
    file: Option<File>,
    len: u64,
}

fn member(name: &str, path: PathBuf, size: u64) -> io::Result<Member> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut header = [0u8; 512];
    header.copy_from_slice(h.as_bytes());
    Ok(Member { header, path, size })
}

fn padded(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

impl DirTar {
    /// Lay out the tar of `dir`, which must hold an ova.xml.
    pub fn new(dir: &Path) -> io::Result<DirTar> {
        let ova = dir.join("ova.xml");
        let size = std::fs::metadata(&ova)?.len();
        let mut members = vec![member("ova.xml", ova, size)?];
        let mut subdirs: Vec<_> =
            std::fs::read_dir(dir)?.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
        subdirs.sort_by_key(|e| e.file_name());
        for d in subdirs {
            let dname = d.file_name().to_string_lossy().into_owned();
            let mut files: Vec<_> = std::fs::read_dir(d.path())?
                .filter_map(|e| e.ok())
                .filter(|e| e.metadata().is_ok_and(|m| m.is_file()))
                .collect();
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let name = format!("{dname}/{}", f.file_name().to_string_lossy());
                members.push(member(&name, f.path(), f.metadata()?.len())?);
            }
        }
        let len = members.iter().map(|m| 512 + padded(m.size)).sum::<u64>() + 1024;
        Ok(DirTar { members, at: 0, pos: 0, file: None, len })
    }

    /// Bytes the whole stream will hold.
    pub fn len(&self) -> u64 {
        self.len
    }
}

impl Read for DirTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Step past a finished member (one whose data ends on a block boundary
        // needs no padding).
        if let Some(m) = self.members.get(self.at) {
            if self.pos == 512 + padded(m.size) {
                self.next_member();
            }
        }
        let Some(m) = self.members.get(self.at) else {
            // The two zero blocks that end a tar.
            let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        };
        // self.pos counts within the current member here.
        if self.pos < 512 {
            let from = self.pos as usize;
            let n = (512 - from).min(buf.len());
            buf[..n].copy_from_slice(&m.header[from..from + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let data_end = 512 + m.size;
        if self.pos < data_end {
            if self.file.is_none() {
                self.file = Some(File::open(&m.path)?);
            }
            let want = (data_end - self.pos).min(buf.len() as u64) as usize;
            let n = match self.file.as_mut() {
                Some(f) => f.read(&mut buf[..want])?,
                None => 0,
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while being sent", m.path.display()),
                ));
            }
            self.pos += n as u64;
            return Ok(n);
        }
        let member_end = 512 + padded(m.size);
        let n = (member_end - self.pos).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

impl DirTar {
    fn next_member(&mut self) {
        self.at += 1;
        self.pos = 0;
        self.file = None;
        if self.at == self.members.len() {
            // From here self.pos counts from the stream's start.
            self.pos = self.len - 1024;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_becomes_a_readable_tar_of_the_declared_length() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("ova.xml"), b"<appliance/>").unwrap();
        std::fs::create_dir(t.path().join("sdb")).unwrap();
        std::fs::create_dir(t.path().join("sda")).unwrap();
        std::fs::write(t.path().join("sda/chunk-000000001.gz"), vec![7u8; 700]).unwrap();
        std::fs::write(t.path().join("sda/chunk-000000000.gz"), vec![1u8; 512]).unwrap();
        std::fs::write(t.path().join("sdb/chunk-000000000.gz"), b"").unwrap();
        let mut d = DirTar::new(t.path()).unwrap();
        let len = d.len();
        let mut out = Vec::new();
        // Odd-sized reads cross every boundary.
        let mut buf = [0u8; 333];
        loop {
            let n = d.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out.len() as u64, len);
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<(String, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.size())
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("ova.xml".to_string(), 12),
                ("sda/chunk-000000000.gz".to_string(), 512),
                ("sda/chunk-000000001.gz".to_string(), 700),
                ("sdb/chunk-000000000.gz".to_string(), 0),
            ]
        );
    }
}

//! Small filesystem helpers for the file-backed drivers.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Component, Path, PathBuf};

/// Bytes actually allocated to a file (0 if it cannot be read, or is a
/// link out of its directory: its target is none of the SR's business).
pub fn allocated(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    open_vdi(path, false).and_then(|f| f.metadata()).map(|m| (m.blocks() * 512) as i64).unwrap_or(0)
}

fn cstr(p: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// Open a VDI file, `path` being `<SR directory>/<name>`, so that nothing
/// outside the SR directory is reached through it: a symlink is followed
/// only while it stays beneath that directory (openat2 with
/// RESOLVE_BENEATH, so an absolute link is refused too; on a kernel without
/// openat2 no link is followed at all), and only a regular file is accepted
/// (a FIFO or device node is refused without blocking on it).
pub fn open_vdi(path: &Path, write: bool) -> io::Result<File> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file in a directory"));
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })?;
    let name = cstr(name)?;
    let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let flags = access | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: zeroed is a valid open_how (all-integer fields); the struct is
    // non_exhaustive so it cannot be written as a literal.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid directory descriptor, NUL-terminated name and open_how
    // of the size passed.
    let mut fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    } as libc::c_int;
    if fd < 0 && matches!(io::Error::last_os_error().raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
        // No openat2 (old kernel, or a seccomp filter): follow no link.
        // SAFETY: as above.
        fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_NOFOLLOW) };
    }
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EXDEV | libc::ELOOP) => {
                io::Error::new(io::ErrorKind::PermissionDenied, "a link that leads out of the SR directory")
            }
            _ => e,
        });
    }
    // SAFETY: fd is a descriptor we just opened and own.
    let f = unsafe { File::from_raw_fd(fd) };
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    // Back to blocking I/O for the transfer itself.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(f)
}

/// Whether `path` is a VDI file [`open_vdi`] would open: Ok(false) when it
/// does not exist, an error when it exists but escapes or is not a regular
/// file.
pub fn check_vdi(path: &Path) -> io::Result<bool> {
    match open_vdi(path, false) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `dir` with symlinks resolved as far as it exists (the missing tail kept
/// as given), or None when it has `..`. A relative path (a relative
/// `--data-dir`) is taken from the working directory.
fn resolve_dir(dir: &Path) -> Option<PathBuf> {
    if dir.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let mut existing = std::path::absolute(dir).ok()?;
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            out.extend(tail.iter().rev());
            return Some(out);
        }
        tail.push(existing.file_name()?.to_os_string());
        if !existing.pop() {
            return None;
        }
    }
}

/// Whether an SR directory lies at or under one of `roots` once symlinks
/// are resolved (so a link inside a root that points elsewhere does not
/// count as inside).
pub fn within_roots(dir: &Path, roots: &[PathBuf]) -> bool {
    let Some(d) = resolve_dir(dir) else { return false };
    roots.iter().filter_map(|r| resolve_dir(r)).any(|r| d.starts_with(&r))
}

/// Total and free bytes of the filesystem holding `dir`.
pub fn statvfs(dir: &Path) -> std::io::Result<(i64, i64)> {
    let c = cstr(dir.as_os_str())?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as i64;
    Ok((st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize))
}

/// The first offset at or after `off` that holds data, skipping holes; None
/// when only holes remain. Filesystems without hole reporting treat the
/// whole file as data, which is still correct.
pub fn next_data(f: &std::fs::File, off: u64) -> Option<u64> {
    let Ok(o) = libc::off_t::try_from(off) else { return None };
    // SAFETY: lseek on a descriptor we own has no memory effects.
    let r = unsafe { libc::lseek(f.as_raw_fd(), o, libc::SEEK_DATA) };
    if r >= 0 {
        return Some(r as u64);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENXIO) => None,
        _ => Some(off),
    }
}

/// The canonical 8-4-4-4-12 lowercase-hex form.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Round `n` up to a multiple of `unit`.
pub fn round_up(n: i64, unit: i64) -> i64 {
    if n <= 0 {
        return 0;
    }
    ((n - 1) / unit + 1).saturating_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_rounding() {
        assert!(is_uuid("0a1b2c3d-0000-4000-8000-00000000abcd"));
        assert!(!is_uuid("0a1b2c3d-0000-4000-8000-00000000abc"));
        assert!(!is_uuid("0a1b2c3d_0000-4000-8000-00000000abcd"));
        assert_eq!(round_up(1, 4), 4);
        assert_eq!(round_up(8, 4), 8);
        assert_eq!(round_up(0, 4), 0);
    }

    #[test]
    fn holes_are_skipped() {
        use std::io::{Seek, SeekFrom, Write};
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let mut f = std::fs::File::create(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        f.seek(SeekFrom::Start(40 << 20)).unwrap();
        f.write_all(b"data").unwrap();
        f.sync_all().unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let d = next_data(&f, 0).unwrap();
        assert!(d <= 40 << 20);
        assert_eq!(next_data(&f, (40 << 20) + 4096), None);
    }

    #[test]
    fn vdi_files_stay_in_their_directory() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let sr = t.path().join("sr");
        std::fs::create_dir(&sr).unwrap();
        std::fs::write(sr.join("a.iso"), b"inside").unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::fs::create_dir(sr.join("sub")).unwrap();
        std::fs::write(sr.join("sub/b.iso"), b"nested").unwrap();
        symlink(outside.path().join("secret"), sr.join("abs.iso")).unwrap();
        symlink("../../secret", sr.join("rel.iso")).unwrap();
        symlink(outside.path(), sr.join("dir.iso")).unwrap();
        symlink("a.iso", sr.join("same.iso")).unwrap();
        symlink("sub/b.iso", sr.join("nested.iso")).unwrap();
        symlink("/dev/null", sr.join("dev.iso")).unwrap();
        let fifo = CString::new(sr.join("fifo.iso").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let read = |n: &str| {
            open_vdi(&sr.join(n), false).map(|mut f| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut f, &mut s).unwrap();
                s
            })
        };
        assert_eq!(read("a.iso").unwrap(), "inside");
        for bad in ["abs.iso", "rel.iso", "dir.iso", "dev.iso", "fifo.iso", "sub"] {
            assert!(read(bad).is_err(), "{bad} must not open");
        }
        assert_eq!(read("missing.iso").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(check_vdi(&sr.join("missing.iso")).is_ok_and(|e| !e));
        assert!(check_vdi(&sr.join("abs.iso")).is_err());
        // Links that stay inside are followed where the kernel has openat2.
        if let Ok(s) = read("same.iso") {
            assert_eq!(s, "inside");
            assert_eq!(read("nested.iso").unwrap(), "nested");
        }
        assert!(open_vdi(&sr.join("a.iso"), true).is_ok());
    }

    #[test]
    fn sr_directories_under_roots() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let roots = vec![root.clone()];
        assert!(within_roots(&root, &roots));
        assert!(within_roots(&root.join("new/deeper"), &roots));
        assert!(!within_roots(&root.join("../elsewhere"), &roots));
        assert!(!within_roots(Path::new("/etc"), &roots));
        assert!(!within_roots(Path::new("relative"), &roots));
        // A relative root (a relative --data-dir) is taken from the working directory.
        let cwd = std::env::current_dir().unwrap();
        assert!(within_roots(&cwd.join("sr/x"), &[PathBuf::from("sr")]));
        assert!(within_roots(Path::new("sr/x"), &[cwd.join("sr")]));
        assert!(!within_roots(&t.path().join("rootless"), &roots));
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert!(!within_roots(&root.join("link"), &roots));
        assert!(!within_roots(&root.join("link/new"), &roots));
    }

    #[test]
    fn statvfs_of_tmp() {
        let (total, free) = statvfs(Path::new("/tmp")).unwrap();
        assert!(total > 0 && free >= 0 && free <= total);
        assert!(statvfs(Path::new("/does/not/exist")).is_err());
    }
}

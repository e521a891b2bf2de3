//! Small filesystem helpers for the file-backed drivers.

use std::path::Path;

/// Bytes actually allocated to a file (0 if it cannot be read).
pub fn allocated(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| (m.blocks() * 512) as i64).unwrap_or(0)
}

/// Total and free bytes of the filesystem holding `dir`.
pub fn statvfs(dir: &Path) -> std::io::Result<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
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
    use std::os::unix::io::AsRawFd;
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
    fn statvfs_of_tmp() {
        let (total, free) = statvfs(Path::new("/tmp")).unwrap();
        assert!(total > 0 && free >= 0 && free <= total);
        assert!(statvfs(Path::new("/does/not/exist")).is_err());
    }
}

//! The local file-backed SR (`ext`): each VDI is `<dir>/<location>.raw`, a
//! sparse file, or `<dir>/<location>.qcow2` made by qemu-img. Sizes are
//! rounded up to 2 MiB (at least 2 MiB), as xapi's ext SR does for its VHDs.

use super::driver::{io_error, sm_error, Format, Found, SmInfo};
use super::files::{allocated, is_uuid, open_vdi, round_up};
use super::qemu;
use crate::Result;
use std::path::{Path, PathBuf};

pub const SM: SmInfo = SmInfo {
    ty: "ext",
    name: "Local EXT3 VHD",
    features: &[
        ("SR_PROBE", 1),
        ("SR_UPDATE", 1),
        ("VDI_CREATE", 1),
        ("VDI_DELETE", 1),
        ("VDI_ATTACH", 1),
        ("VDI_DETACH", 1),
        ("VDI_UPDATE", 1),
        ("VDI_CLONE", 1),
        ("VDI_SNAPSHOT", 1),
        ("VDI_RESIZE", 1),
        ("VDI_RESIZE_ONLINE", 1),
        ("VDI_GENERATE_CONFIG", 1),
        ("VDI_INTRODUCE", 1),
        ("VDI_RESET_ON_BOOT", 2),
        ("VDI_CONFIG_CBT", 1),
    ],
    configuration: &[
        ("device", "local device path (eg /dev/sda3); informational"),
        ("path", "directory holding the VDI files (default: under the server's data directory)"),
    ],
};

/// The file SR keeps its files as `ext` does; its directory may be one
/// that every host of a pool mounts (an SR with `shared` set).
pub const FILE_SM: SmInfo = SmInfo {
    ty: "file",
    name: "Local or shared directory",
    features: SM.features,
    configuration: &[("location", "the directory holding the VDI files, the same on every host of a shared SR")],
};

/// The allocation unit (a VHD block).
pub const BLOCK: i64 = 2 << 20;

pub fn file(dir: &Path, location: &str, format: Format) -> PathBuf {
    dir.join(format!("{location}.{}", format.name()))
}

/// Validate and round a requested virtual size.
pub fn round_size(size: i64) -> Result<i64> {
    if size < 0 {
        return Err(sm_error(79, "VDI Invalid size", Some(&format!("size {size} is negative"))));
    }
    Ok(round_up(size.max(BLOCK), BLOCK))
}

pub fn create(dir: &Path, location: &str, size: i64, format: Format) -> Result<i64> {
    let size = round_size(size)?;
    let fail = |e: std::io::Error| sm_error(78, "VDI Creation failed", Some(&e.to_string()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let path = file(dir, location, format);
    match format {
        Format::Raw => {
            let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(fail)?;
            f.set_len(size as u64).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        Format::Qcow2 => qemu::create(&path, size)?,
    }
    Ok(size)
}

pub fn resize(path: &Path, format: Format, current: i64, size: i64) -> Result<i64> {
    let size = round_size(size)?;
    if size < current {
        return Err(sm_error(79, "VDI Invalid size", Some("shrinking not allowed")));
    }
    match format {
        Format::Raw => {
            let fail = |e: std::io::Error| sm_error(110, "VDI resize failed", Some(&e.to_string()));
            let f = open_vdi(path, true).map_err(fail)?;
            f.set_len(size as u64).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        Format::Qcow2 => qemu::resize(path, size)?,
    }
    Ok(size)
}

/// Virtual size and allocated bytes.
pub fn stat(path: &Path, format: Format) -> Result<(i64, i64)> {
    // Our own files, but never read through a link someone put in their place.
    let f = open_vdi(path, false).map_err(|e| io_error("stat", e))?;
    let virt = match format {
        Format::Raw => f.metadata().map_err(|e| io_error("stat", e))?.len() as i64,
        Format::Qcow2 => qemu::virtual_size(path)?,
    };
    Ok((virt, allocated(path)))
}

/// Every `<uuid>.raw` / `<uuid>.qcow2` file in the directory.
pub fn scan(dir: &Path) -> Result<Vec<Found>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(sm_error(40, "The SR scan failed", Some(&e.to_string()))),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((stem, ext)) = name.rsplit_once('.') else { continue };
        let format = match ext {
            "raw" => Format::Raw,
            "qcow2" => Format::Qcow2,
            _ => continue,
        };
        if !is_uuid(stem) || !e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        let (virtual_size, physical_utilisation) = stat(&e.path(), format)?;
        out.push(Found { location: stem.to_string(), format, virtual_size, physical_utilisation });
    }
    out.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";

    #[test]
    fn raw_create_is_sparse_and_rounded() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(create(t.path(), U, 1, Format::Raw).unwrap(), BLOCK);
        let p = file(t.path(), U, Format::Raw);
        assert_eq!(std::fs::metadata(&p).unwrap().len() as i64, BLOCK);
        assert!(allocated(&p) < BLOCK);
        // A second create of the same location must not clobber the file.
        assert!(create(t.path(), U, 1, Format::Raw).is_err());
        assert!(create(t.path(), "x", -1, Format::Raw).is_err());
    }

    #[test]
    fn raw_resize_grows_but_never_shrinks() {
        let t = tempfile::tempdir().unwrap();
        let size = create(t.path(), U, 10 << 20, Format::Raw).unwrap();
        let p = file(t.path(), U, Format::Raw);
        assert_eq!(resize(&p, Format::Raw, size, (20 << 20) + 1).unwrap(), 22 << 20);
        assert_eq!(stat(&p, Format::Raw).unwrap().0, 22 << 20);
        let e = resize(&p, Format::Raw, 22 << 20, 4 << 20).unwrap_err();
        assert_eq!(e.to_wire()[0], "SR_BACKEND_FAILURE_79");
    }

    #[test]
    fn scan_finds_only_vdi_files() {
        let t = tempfile::tempdir().unwrap();
        create(t.path(), U, 4 << 20, Format::Raw).unwrap();
        std::fs::write(t.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(t.path().join("bogus.raw"), b"x").unwrap();
        let found = scan(t.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].location.as_str(), found[0].format, found[0].virtual_size), (U, Format::Raw, 4 << 20));
        assert!(scan(&t.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn qcow2_through_qemu_img() {
        if std::process::Command::new("qemu-img").arg("--version").output().is_err() {
            // A machine without it must not pass silently under CI
            // (scripts/test.sh installs qemu-utils).
            assert!(std::env::var_os("CI").is_none(), "qemu-img is not installed and CI is set");
            eprintln!("qemu-img not installed; skipped");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        assert_eq!(create(t.path(), U, 3 << 20, Format::Qcow2).unwrap(), 4 << 20);
        let p = file(t.path(), U, Format::Qcow2);
        assert_eq!(stat(&p, Format::Qcow2).unwrap().0, 4 << 20);
        assert_eq!(resize(&p, Format::Qcow2, 4 << 20, 8 << 20).unwrap(), 8 << 20);
        assert_eq!(scan(t.path()).unwrap()[0].virtual_size, 8 << 20);
    }
}

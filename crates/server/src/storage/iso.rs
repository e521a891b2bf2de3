//! The ISO library SR (`iso`): a directory of `*.iso` files. A scan
//! introduces one read-only VDI per file (location = the file name); VDIs are
//! never created or deleted through the API, only found.

use super::driver::{io_error, sm_error, Format, Found, SmInfo};
use super::files::allocated;
use crate::Result;
use std::path::Path;

pub const SM: SmInfo = SmInfo {
    ty: "iso",
    name: "ISO",
    features: &[
        ("VDI_ATTACH", 1),
        ("VDI_DETACH", 1),
        ("VDI_INTRODUCE", 1),
        ("SR_SCAN", 1),
        ("SR_ATTACH", 1),
        ("SR_DETACH", 1),
    ],
    configuration: &[
        ("location", "directory holding the ISO images (default: under the server's data directory)"),
        ("legacy_mode", "accepted for compatibility; ignored"),
    ],
};

pub fn is_iso(name: &str) -> bool {
    name.len() > 4 && name.to_ascii_lowercase().ends_with(".iso")
}

/// Size and allocated bytes of an image.
pub fn stat(path: &Path) -> Result<(i64, i64)> {
    let len = std::fs::metadata(path).map_err(|e| io_error("stat", e))?.len() as i64;
    Ok((len, allocated(path)))
}

pub fn scan(dir: &Path) -> Result<Vec<Found>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(sm_error(40, "The SR scan failed", Some(&e.to_string()))),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
        // Follow symlinks: a library is often a directory of links.
        if !is_iso(&name) || !e.path().is_file() {
            continue;
        }
        let Ok((virtual_size, physical_utilisation)) = stat(&e.path()) else { continue };
        out.push(Found { location: name, format: Format::Raw, virtual_size, physical_utilisation });
    }
    out.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_lists_iso_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("b.ISO"), vec![1u8; 4096]).unwrap();
        std::fs::write(t.path().join("a.iso"), b"x").unwrap();
        std::fs::write(t.path().join("readme.txt"), b"x").unwrap();
        std::fs::create_dir(t.path().join("dir.iso")).unwrap();
        let found = scan(t.path()).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(names, ["a.iso", "b.ISO"]);
        assert_eq!(found[1].virtual_size, 4096);
        assert!(scan(&t.path().join("missing")).unwrap().is_empty());
    }
}

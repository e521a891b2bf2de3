//! The ISO library SR (`iso`): a directory of `*.iso` files. A scan
//! introduces one read-only VDI per file (location = the file name); VDIs are
//! never created or deleted through the API, only found.

use super::driver::{io_error, sm_error, Format, Found, SmInfo};
use super::files::open_vdi;
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

/// Size and allocated bytes of an image, if it is one the SR may serve:
/// a regular file, or a link that stays inside the SR directory.
pub fn stat(path: &Path) -> Result<(i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let f = open_vdi(path, false).map_err(|e| io_error("stat", e))?;
    let m = f.metadata().map_err(|e| io_error("stat", e))?;
    Ok((m.len() as i64, (m.blocks() * 512) as i64))
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
        if !is_iso(&name) {
            continue;
        }
        // A library may be a directory of links, but only links to images
        // inside it are served: one leading out (to /etc/shadow, say) or to
        // something that is not a regular file is skipped.
        let (virtual_size, physical_utilisation) = match stat(&e.path()) {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!("ISO SR {}: skipping {name}: {:?}", dir.display(), err.to_wire());
                continue;
            }
        };
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
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), t.path().join("shadow.iso")).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("outdir.iso")).unwrap();
        let found = scan(t.path()).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(names, ["a.iso", "b.ISO"]);
        assert_eq!(found[1].virtual_size, 4096);
        assert!(scan(&t.path().join("missing")).unwrap().is_empty());
    }
}

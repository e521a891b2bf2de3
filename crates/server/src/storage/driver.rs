//! SR drivers, the counterpart of xapi's SM plugins: each SR type has a driver
//! that knows how its SR and VDIs live on disk, and an SM record describing
//! what it can do (its features gate SR and VDI operations, as in xapi).
//!
//! Everything here is blocking file I/O: callers run it on the blocking pool
//! and never inside a store transaction.

use super::{ext, iso};
use crate::{ApiError, Result};
use model::Value;
use std::path::{Path, PathBuf};

/// How a VDI's data is stored in a file-backed SR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
}

impl Format {
    /// The name qemu-img uses, also the file extension on ext SRs.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }

    /// The format an sm_config asks for: `type` (or `image-format`) = qcow2.
    pub fn requested(sm_config: &Value) -> Option<Format> {
        for key in ["image-format", "type"] {
            match sm_config.map_str(key).map(str::to_ascii_lowercase).as_deref() {
                Some("qcow2") => return Some(Format::Qcow2),
                Some("raw") => return Some(Format::Raw),
                _ => {}
            }
        }
        None
    }

    /// The format of an existing VDI, from its sm_config.
    pub fn of_vdi(sm_config: &Value) -> Format {
        Format::requested(sm_config).unwrap_or(Format::Raw)
    }
}

/// A VDI found on storage by a scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub location: String,
    pub format: Format,
    pub virtual_size: i64,
    pub physical_utilisation: i64,
}

/// The SM record of a driver.
pub struct SmInfo {
    pub ty: &'static str,
    pub name: &'static str,
    /// SMAPIv1 capabilities, with the version of each as `features`.
    pub features: &'static [(&'static str, i64)],
    /// The device_config keys the driver reads.
    pub configuration: &'static [(&'static str, &'static str)],
}

/// An SR_BACKEND_FAILURE_<code> error, as xapi reports an SMAPIv1 plugin's
/// failure: ["", reason, stderr].
pub fn sm_error(code: u32, reason: &str, opterr: Option<&str>) -> ApiError {
    let reason = match opterr {
        Some(o) => format!("{reason} [opterr={o}]"),
        None => reason.to_string(),
    };
    ApiError::Other { code: format!("SR_BACKEND_FAILURE_{code}"), params: vec![String::new(), reason, String::new()] }
}

/// An I/O failure inside a driver operation (SM's EIO, code 200).
pub fn io_error(what: &str, e: std::io::Error) -> ApiError {
    sm_error(200, "General IO error", Some(&format!("{what}: {e}")))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// Local file-backed SR: one sparse raw (or qcow2) file per VDI.
    Ext,
    /// A directory of ISO images, read-only media for CD drives.
    Iso,
    /// A directory of VDI files as `Ext` keeps them, which may be the same
    /// directory on every host of a pool (`shared`): XCP-ng's file SR.
    File,
}

impl Driver {
    pub const ALL: [Driver; 3] = [Driver::Ext, Driver::Iso, Driver::File];

    /// The driver for an SR type (types are matched case-insensitively, as xapi lowercases them).
    pub fn of(ty: &str) -> Option<Driver> {
        match ty.to_ascii_lowercase().as_str() {
            "ext" => Some(Driver::Ext),
            "iso" => Some(Driver::Iso),
            "file" => Some(Driver::File),
            _ => None,
        }
    }

    pub fn sm(self) -> SmInfo {
        match self {
            Driver::Ext => ext::SM,
            Driver::File => ext::FILE_SM,
            Driver::Iso => iso::SM,
        }
    }

    pub fn has(self, feature: &str) -> bool {
        self.sm().features.iter().any(|(f, _)| *f == feature)
    }

    /// Make a new SR's storage.
    pub fn create_sr(self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| sm_error(61, "File SR creation error", Some(&e.to_string())))
    }

    /// Attach the SR on this host (PBD.plug).
    pub fn attach(self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| match self {
            Driver::Ext | Driver::File => sm_error(47, "The SR is not available", Some(&e.to_string())),
            Driver::Iso => sm_error(222, "Could not mount the directory specified in Device Configuration", None),
        })
    }

    /// Remove the SR's storage: the driver's own files, then the directory if
    /// that leaves it empty (a user-supplied directory keeps anything else).
    pub fn destroy_sr(self, dir: &Path) -> Result<()> {
        if self != Driver::Iso {
            for f in ext::scan(dir)? {
                let path = ext::file(dir, &f.location, f.format);
                std::fs::remove_file(&path)
                    .map_err(|e| sm_error(63, "File SR deletion error", Some(&e.to_string())))?;
            }
        }
        let _ = std::fs::remove_dir(dir);
        Ok(())
    }

    /// The VDIs present on storage (a missing directory holds none).
    pub fn scan(self, dir: &Path) -> Result<Vec<Found>> {
        match self {
            Driver::Ext | Driver::File => ext::scan(dir),
            Driver::Iso => iso::scan(dir),
        }
    }

    /// The file holding a VDI.
    pub fn vdi_file(self, dir: &Path, location: &str, format: Format) -> PathBuf {
        match self {
            Driver::Ext | Driver::File => ext::file(dir, location, format),
            Driver::Iso => dir.join(location),
        }
    }

    /// Create a VDI's file; returns its virtual size after the driver's rounding.
    pub fn vdi_create(self, dir: &Path, location: &str, size: i64, format: Format) -> Result<i64> {
        match self {
            Driver::Ext | Driver::File => ext::create(dir, location, size, format),
            Driver::Iso => Err(sm_error(38, "The requested method is not supported/implemented", None)),
        }
    }

    /// Grow a VDI; returns the new virtual size.
    pub fn vdi_resize(self, path: &Path, format: Format, current: i64, size: i64) -> Result<i64> {
        match self {
            Driver::Ext | Driver::File => ext::resize(path, format, current, size),
            Driver::Iso => Err(sm_error(38, "The requested method is not supported/implemented", None)),
        }
    }

    /// Virtual size and allocated bytes of an existing VDI file.
    pub fn vdi_stat(self, path: &Path, format: Format) -> Result<(i64, i64)> {
        match self {
            Driver::Ext | Driver::File => ext::stat(path, format),
            Driver::Iso => iso::stat(path),
        }
    }

    pub fn vdi_delete(self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(sm_error(64, "Failed to remove VDI", Some(&e.to_string()))),
        }
    }
}

/// What SR.probe reports: the SRs found under a directory, as SM's
/// `srlist_toxml` prints them.
pub fn probe_xml(uuids: &[String]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" ?>\n<SRlist>\n");
    for u in uuids {
        out.push_str(&format!("\t<SR>\n\t\t<UUID>{u}</UUID>\n\t</SR>\n"));
    }
    out.push_str("</SRlist>\n");
    out
}

/// SR directories under `dir`: its subdirectories named by an SR uuid (and
/// `dir` itself when it is one).
pub fn probe_dir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
        if super::files::is_uuid(name) && dir.is_dir() {
            out.push(name.to_string());
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if super::files::is_uuid(&name) && e.path().is_dir() {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_sm_config() {
        let m = |k: &str, v: &str| Value::Struct(vec![(k.to_string(), Value::from(v))]);
        assert_eq!(Format::requested(&m("type", "qcow2")), Some(Format::Qcow2));
        assert_eq!(Format::requested(&m("image-format", "QCOW2")), Some(Format::Qcow2));
        assert_eq!(Format::requested(&m("type", "raw")), Some(Format::Raw));
        assert_eq!(Format::requested(&m("vm", "x")), None);
        assert_eq!(Format::of_vdi(&Value::empty_map()), Format::Raw);
    }

    #[test]
    fn drivers_by_type() {
        assert_eq!(Driver::of("EXT"), Some(Driver::Ext));
        assert_eq!(Driver::of("iso"), Some(Driver::Iso));
        assert_eq!(Driver::of("lvm"), None);
        assert_eq!(Driver::of("file"), Some(Driver::File));
        assert!(Driver::Ext.has("VDI_CREATE") && !Driver::Iso.has("VDI_CREATE"));
    }

    #[test]
    fn probe_lists_uuid_directories() {
        let t = tempfile::tempdir().unwrap();
        let u = "0a1b2c3d-0000-4000-8000-00000000abcd";
        std::fs::create_dir(t.path().join(u)).unwrap();
        std::fs::create_dir(t.path().join("other")).unwrap();
        assert_eq!(probe_dir(t.path()), vec![u.to_string()]);
        assert_eq!(
            probe_xml(&[u.to_string()]),
            format!("<?xml version=\"1.0\" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>{u}</UUID>\n\t</SR>\n</SRlist>\n")
        );
    }

    #[test]
    fn sm_errors_have_xapi_shape() {
        let e = sm_error(79, "VDI Invalid size", Some("shrinking not allowed"));
        assert_eq!(
            e.to_wire(),
            vec!["SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=shrinking not allowed]", ""]
        );
    }
}

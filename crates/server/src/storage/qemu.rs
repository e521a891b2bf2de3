//! qcow2 images through the `qemu-img` CLI. Failures surface as
//! SR_BACKEND_FAILURE [status; stdout; stderr], the shape xapi gives a storage
//! backend process that failed. The binary can be overridden with
//! `XAPID_QEMU_IMG` (tests use it to simulate a host without qemu-img).

use crate::{ApiError, Result};
use std::path::Path;
use std::process::Command;

fn binary() -> String {
    std::env::var("XAPID_QEMU_IMG").unwrap_or_else(|_| "qemu-img".to_string())
}

/// Run qemu-img with `args`; its stdout on success.
fn run(args: &[&str]) -> Result<String> {
    let bin = binary();
    let out = Command::new(&bin).args(args).output().map_err(|e| ApiError::SrBackendFailure {
        status: format!("cannot run {bin}: {e}"),
        stdout: String::new(),
        stderr: String::new(),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let status = match out.status.code() {
        Some(_) => "non-zero exit".to_string(),
        None => "received signal".to_string(),
    };
    Err(ApiError::SrBackendFailure { status, stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned() })
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap_or("")
}

pub fn create(path: &Path, size: i64) -> Result<()> {
    run(&["create", "-q", "-f", "qcow2", p(path), &size.to_string()]).map(drop)
}

pub fn resize(path: &Path, size: i64) -> Result<()> {
    run(&["resize", "-q", "-f", "qcow2", p(path), &size.to_string()]).map(drop)
}

/// The image's virtual size.
pub fn virtual_size(path: &Path) -> Result<i64> {
    image_size(path, "qcow2")
}

/// The virtual size of an image in format `fmt` (qemu-img's name).
pub fn image_size(path: &Path, fmt: &str) -> Result<i64> {
    let out = run(&["info", "--output=json", "-f", fmt, p(path)])?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| ApiError::SrBackendFailure {
        status: format!("unparsable qemu-img info: {e}"),
        stdout: out.clone(),
        stderr: String::new(),
    })?;
    v.get("virtual-size").and_then(serde_json::Value::as_i64).ok_or_else(|| ApiError::SrBackendFailure {
        status: "qemu-img info has no virtual-size".into(),
        stdout: out.clone(),
        stderr: String::new(),
    })
}

/// Convert with output options (`-o`), e.g. a dynamic VHD.
pub fn convert_with(from: &Path, from_fmt: &str, to: &Path, to_fmt: &str, opts: &str) -> Result<()> {
    let mut args = vec!["convert", "-q", "-f", from_fmt, "-O", to_fmt];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.push(p(from));
    args.push(p(to));
    run(&args).map(drop)
}

/// Convert (copy) an image between formats; `into_existing` writes into the
/// existing target instead of recreating it.
pub fn convert(from: &Path, from_fmt: &str, to: &Path, to_fmt: &str, into_existing: bool) -> Result<()> {
    let mut args = vec!["convert", "-q", "-f", from_fmt, "-O", to_fmt];
    if into_existing {
        args.push("-n");
    }
    args.push(p(from));
    args.push(p(to));
    run(&args).map(drop)
}

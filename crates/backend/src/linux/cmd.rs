//! The one way the host-network code runs `ip`, `nft` and `ethtool`: argv
//! only (no shell), stderr kept, a failure turned into
//! [`BackendError::Network`] naming the command, and logged.

use crate::{BackendError, Result};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// A tool is not installed (spawn said ENOENT).
#[derive(Debug)]
pub struct Missing;

/// Run `prog args…` (with `stdin` fed in when given) and return its stdout.
pub async fn run(prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    match try_run(prog, args, stdin).await {
        Ok(out) => Ok(out),
        Err(Err(e)) => Err(e),
        Err(Ok(Missing)) => {
            let e = BackendError::Network(format!("{prog} is not installed"));
            tracing::warn!("{e}");
            Err(e)
        }
    }
}

/// As [`run`], but telling a missing program apart (so that a caller that
/// does not need it can carry on).
pub async fn try_run(
    prog: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> std::result::Result<String, std::result::Result<Missing, BackendError>> {
    let line = || format!("{prog} {}", args.join(" "));
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Ok(Missing)),
        Err(e) => {
            let e = BackendError::Network(format!("{}: {e}", line()));
            tracing::warn!("{e}");
            return Err(Err(e));
        }
    };
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        // A program that exits early closes its stdin: its status tells why.
        if let Err(e) = w.write_all(text.as_bytes()).await {
            tracing::debug!("writing to {prog}: {e}");
        }
    }
    let out = child.wait_with_output().await.map_err(|e| {
        let e = BackendError::Network(format!("{}: {e}", line()));
        tracing::warn!("{e}");
        Err(e)
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', "; ");
        let e = BackendError::Network(format!("{}: {err}", line()));
        tracing::warn!("{e}");
        return Err(Err(e));
    }
    tracing::debug!("ran {}", line());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip args…`.
pub async fn ip(args: &[&str]) -> Result<String> {
    run("ip", args, None).await
}

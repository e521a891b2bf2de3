//! Finding QEMU and choosing its accelerator.
//!
//! `/dev/kvm` opening is not enough to use KVM: in nested or sandboxed
//! environments the device opens, VMs and vCPUs are created, `query-kvm`
//! says enabled, and yet a guest never makes progress, or runs real-mode
//! code but hangs on the way to long mode (seen on the machine this was
//! written on: firmware in 16/32-bit mode ran, a Linux kernel under
//! `-accel kvm` printed nothing in 90 s, while TCG booted it in 18 s). So the
//! probe runs a real guest: a 64 KiB firmware image that goes from the reset
//! vector through protected mode and paging into 64-bit long mode, then
//! writes to QEMU's `isa-debug-exit` port, which makes QEMU exit with a
//! known status. KVM is used only if that guest finishes under `-accel kvm`
//! within a few seconds; it takes about 0.1 s when KVM works.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How long the probe guest may take under KVM before KVM is judged unusable.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The value the probe guest writes to the debug-exit port; QEMU then exits
/// with `(value << 1) | 1`.
const EXIT_VALUE: u8 = 0x2a;
pub const PROBE_EXIT_STATUS: i32 = ((EXIT_VALUE as i32) << 1) | 1;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("qemu-system-x86_64 not found (searched PATH, /usr/libexec/qemu-kvm)")]
    NotFound,
    #[error("cannot run {binary}: {error}")]
    Spawn { binary: PathBuf, error: io::Error },
    #[error("{binary} --version said {output:?}, not a QEMU version")]
    Version { binary: PathBuf, output: String },
    #[error("probe image: {0}")]
    Image(io::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The value of QEMU's `-accel`.
    pub fn as_arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_arg())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct QemuInfo {
    pub binary: PathBuf,
    /// (major, minor, micro)
    pub version: (u32, u32, u32),
    /// The first line of `--version`, e.g. "QEMU emulator version 7.2.22 (Debian …)".
    pub version_line: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub qemu: QemuInfo,
    pub accel: Accel,
    /// Why this accelerator: what the KVM check saw.
    pub reason: String,
}

/// How a run of the probe guest ended.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestRun {
    /// It reached long mode and asked QEMU to exit.
    Finished { elapsed: Duration },
    /// QEMU exited otherwise (could not start the accelerator, …).
    Failed { status: Option<i32>, stderr: String },
    /// Still running when the time was up: the vCPU does not make progress.
    TimedOut,
}

/// `qemu-system-x86_64` on PATH, else the RHEL-style locations.
pub fn find_qemu() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("qemu-system-x86_64")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/libexec/qemu-kvm"), PathBuf::from("/usr/bin/qemu-kvm")])
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Run `binary --version` and parse it.
pub async fn qemu_info(binary: &Path) -> Result<QemuInfo, ProbeError> {
    let out = Command::new(binary).arg("--version").stdin(Stdio::null()).kill_on_drop(true).output();
    let out = tokio::time::timeout(KVM_PROBE_TIMEOUT, out)
        .await
        .map_err(|_| ProbeError::Spawn {
            binary: binary.to_path_buf(),
            error: io::Error::new(io::ErrorKind::TimedOut, "--version did not finish"),
        })?
        .map_err(|error| ProbeError::Spawn { binary: binary.to_path_buf(), error })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    let version = parse_version(&line)
        .ok_or_else(|| ProbeError::Version { binary: binary.to_path_buf(), output: line.clone() })?;
    Ok(QemuInfo { binary: binary.to_path_buf(), version, version_line: line })
}

/// "QEMU emulator version 7.2.22 (Debian …)" → (7, 2, 22).
fn parse_version(line: &str) -> Option<(u32, u32, u32)> {
    let rest = &line[line.find("version ")? + "version ".len()..];
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().and_then(Result::ok).unwrap_or(0);
    let micro = parts.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor, micro))
}

/// Find QEMU (or use `binary`), read its version and pick the accelerator.
pub async fn probe(binary: Option<&Path>) -> Result<Probe, ProbeError> {
    let binary = match binary {
        Some(b) => b.to_path_buf(),
        None => find_qemu().ok_or(ProbeError::NotFound)?,
    };
    let qemu = qemu_info(&binary).await?;
    let (accel, reason) = choose_accel(&binary).await?;
    tracing::info!(binary = %binary.display(), version = %qemu.version_line, %accel, %reason, "QEMU probed");
    Ok(Probe { qemu, accel, reason })
}

/// KVM if `/dev/kvm` opens and the probe guest finishes under it, else TCG.
pub async fn choose_accel(binary: &Path) -> Result<(Accel, String), ProbeError> {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Ok((Accel::Tcg, format!("cannot open /dev/kvm: {e}")));
    }
    Ok(match run_probe_guest(binary, Accel::Kvm, KVM_PROBE_TIMEOUT).await? {
        GuestRun::Finished { elapsed } => {
            (Accel::Kvm, format!("a 64-bit probe guest ran under KVM in {} ms", elapsed.as_millis()))
        }
        GuestRun::TimedOut => (
            Accel::Tcg,
            format!("/dev/kvm opens but a 64-bit probe guest did not finish within {KVM_PROBE_TIMEOUT:?} under KVM"),
        ),
        GuestRun::Failed { status, stderr } => {
            (Accel::Tcg, format!("QEMU with -accel kvm failed (exit status {status:?}): {}", stderr.trim()))
        }
    })
}

/// The probe firmware: 64 KiB (QEMU wants BIOS images in 64 KiB multiples),
/// mapped by the pc machine just below 1 MiB and 4 GiB. Written for GNU as,
/// linked at 0xF0000, and assembled into the bytes below:
///
/// ```text
/// .code16                      # at 0xF0000, reached from the reset vector
///     cli
///     lgdtl %cs:(gdt_desc - _start)
///     mov %cr0, %eax; or $1, %al; mov %eax, %cr0      # protected mode
///     ljmpl $0x08, $pm32
/// .code32
/// pm32:
///     mov $0x10, %ax; mov %ax, %ds; mov %ax, %es; mov %ax, %ss
///     movl $0x2003, 0x1000     # PML4[0] -> PDPT at 0x2000
///     movl $0x3003, 0x2000     # PDPT[0] -> PD at 0x3000
///     movl $0x83, 0x3000       # PD[0]: identity-map the first 2 MiB
///     mov $0x1000, %eax; mov %eax, %cr3
///     mov %cr4, %eax; or $0x20, %eax; mov %eax, %cr4  # PAE
///     mov $0xC0000080, %ecx; rdmsr; or $0x100, %eax; wrmsr  # EFER.LME
///     mov %cr0, %eax; or $0x80000000, %eax; mov %eax, %cr0  # paging: long mode
///     ljmp $0x18, $lm64
/// .code64
/// lm64:
///     mov $0x2a, %al; out %al, $0xf4   # isa-debug-exit
/// 1:  hlt; jmp 1b
/// gdt: null, 32-bit code, data, 64-bit code; gdt_desc: limit, base
/// ```
///
/// Guest RAM starts zeroed, so the page tables need only their first entries.
const PROBE_CODE: [u8; 158] = [
    // .code16 at 0xF0000
    0xfa, // cli
    0x2e, 0x66, 0x0f, 0x01, 0x16, 0x98, 0x00, // lgdtl %cs:0x98
    0x0f, 0x20, 0xc0, // mov %cr0,%eax
    0x0c, 0x01, // or $1,%al
    0x0f, 0x22, 0xc0, // mov %eax,%cr0
    0x66, 0xea, 0x18, 0x00, 0x0f, 0x00, 0x08, 0x00, // ljmpl $0x8,$0xf0018
    // .code32 at 0xF0018
    0x66, 0xb8, 0x10, 0x00, // mov $0x10,%ax
    0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, // mov %ax,%ds / %es / %ss
    0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, // movl $0x2003,0x1000
    0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00, // movl $0x3003,0x2000
    0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, // movl $0x83,0x3000
    0xb8, 0x00, 0x10, 0x00, 0x00, // mov $0x1000,%eax
    0x0f, 0x22, 0xd8, // mov %eax,%cr3
    0x0f, 0x20, 0xe0, // mov %cr4,%eax
    0x83, 0xc8, 0x20, // or $0x20,%eax
    0x0f, 0x22, 0xe0, // mov %eax,%cr4
    0xb9, 0x80, 0x00, 0x00, 0xc0, // mov $0xc0000080,%ecx
    0x0f, 0x32, // rdmsr
    0x0d, 0x00, 0x01, 0x00, 0x00, // or $0x100,%eax
    0x0f, 0x30, // wrmsr
    0x0f, 0x20, 0xc0, // mov %cr0,%eax
    0x0d, 0x00, 0x00, 0x00, 0x80, // or $0x80000000,%eax
    0x0f, 0x22, 0xc0, // mov %eax,%cr0
    0xea, 0x71, 0x00, 0x0f, 0x00, 0x18, 0x00, // ljmp $0x18,$0xf0071
    // .code64 at 0xF0071
    0xb0, EXIT_VALUE, // mov $0x2a,%al
    0xe6, 0xf4, // out %al,$0xf4
    0xf4, // hlt
    0xeb, 0xfd, // jmp hlt
    // GDT at 0xF0078
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // null
    0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, // 0x08: 32-bit code, flat
    0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, // 0x10: data, flat
    0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, // 0x18: 64-bit code
    // gdt_desc at 0xF0098
    0x1f, 0x00, 0x78, 0x00, 0x0f, 0x00, // limit 31, base 0xF0078
];

/// The whole firmware image: the code at its start, `ljmp $0xf000,$0` at the
/// reset vector (16 bytes from the end), `hlt` everywhere else.
pub fn probe_image() -> Vec<u8> {
    let mut img = vec![0xf4u8; 64 << 10];
    img[..PROBE_CODE.len()].copy_from_slice(&PROBE_CODE);
    let reset = img.len() - 16;
    img[reset..reset + 5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    img
}

/// Run the probe guest under `accel` for at most `limit`.
pub async fn run_probe_guest(binary: &Path, accel: Accel, limit: Duration) -> Result<GuestRun, ProbeError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let image = std::env::temp_dir().join(format!(
        "xapi-rs-probe-{}-{}.bin",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    write_new(&image, &probe_image()).map_err(ProbeError::Image)?;
    let res = run_image(binary, accel, &image, limit).await;
    if let Err(e) = std::fs::remove_file(&image) {
        tracing::warn!(path = %image.display(), error = %e, "cannot remove the probe image");
    }
    res
}

/// Write a fresh file in the shared temporary directory: a leftover of ours
/// is replaced, but a name planted there (a symlink) is never followed.
/// 64 KiB is small enough to write inline.
fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(data)
}

async fn run_image(binary: &Path, accel: Accel, image: &Path, limit: Duration) -> Result<GuestRun, ProbeError> {
    let start = Instant::now();
    let mut child = Command::new(binary)
        .args(["-accel", accel.as_arg(), "-machine", "pc", "-m", "16", "-bios"])
        .arg(image)
        .args(["-display", "none", "-nodefaults", "-no-user-config", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| ProbeError::Spawn { binary: binary.to_path_buf(), error })?;
    // Collect a bounded amount of stderr for the reason text.
    let stderr = child.stderr.take().map(|s| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Err(e) = s.take(16 << 10).read_to_end(&mut buf).await {
                tracing::debug!(error = %e, "reading the probe's stderr");
            }
            buf
        })
    });
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        Ok(Err(e)) => return Err(ProbeError::Spawn { binary: binary.to_path_buf(), error: e }),
        Err(_) => {
            if let Err(e) = child.kill().await {
                tracing::warn!(error = %e, "cannot kill the probe guest");
            }
            None
        }
    };
    let stderr = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    Ok(match status {
        None => GuestRun::TimedOut,
        Some(s) if s.code() == Some(PROBE_EXIT_STATUS) => GuestRun::Finished { elapsed: start.elapsed() },
        Some(s) => GuestRun::Failed { status: s.code(), stderr },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b2)"), Some((7, 2, 22)));
        assert_eq!(parse_version("QEMU emulator version 10.0.2"), Some((10, 0, 2)));
        assert_eq!(parse_version("QEMU emulator version 9.1"), Some((9, 1, 0)));
        assert_eq!(parse_version("qemu-img version"), None);
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn the_image_jumps_from_the_reset_vector_to_the_code() {
        let img = probe_image();
        assert_eq!(img.len(), 65536);
        assert_eq!(&img[0xfff0..0xfff5], &[0xea, 0, 0, 0, 0xf0]);
        assert_eq!(img[0], 0xfa);
        // The GDT descriptor's base points at the null descriptor.
        assert_eq!(&img[0x98..0x9e], &[0x1f, 0x00, 0x78, 0x00, 0x0f, 0x00]);
        assert_eq!(&img[0x78..0x80], &[0; 8]);
    }
}

//! What keeps a QEMU process to its own guest (the SDK guide's §6.4 for the
//! device model): it runs as an unprivileged user of its own, in its domain
//! directory, and opens no host file by name. The server (root) opens the
//! disks, CD images, kernel and ramdisk, and creates the NICs' taps, and
//! hands QEMU the descriptors: inherited at start (`-add-fd`, `fd=`,
//! `/proc/self/fd/N`), over QMP with SCM_RIGHTS when plugged later. So the
//! user needs no access to the SRs or the server's data directory, and what
//! the server checked (a kernel inside the allowed directories) is exactly
//! what QEMU reads.
//!
//! Each QEMU also gets a mount namespace of its own (as libvirt's
//! `namespaces = ["mount"]`): a /dev with only the nodes it needs, an empty
//! /tmp, and the server's data directory (every domain's directory, other
//! guests' sockets among them), the SRs of its disks and the kernel
//! directories covered by empty read-only mounts. QEMU still reaches its own
//! directory: it is its working directory, entered before the cover went on.

use crate::{BackendError, Result};
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The user QEMU runs as unless configured otherwise.
pub const DEFAULT_USER: &str = "xapi-qemu";

/// Who a QEMU process runs as.
#[derive(Clone, Debug, PartialEq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the group of /dev/kvm, so KVM works.
    pub groups: Vec<u32>,
}

/// A passwd entry (uid, gid, name) through one of the reentrant getpw*_r
/// calls, which `call` makes with the entry, buffer and result pointers.
fn passwd_entry(
    call: impl FnOnce(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
) -> Option<(u32, u32, String)> {
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let rc = call(&mut pwd, buf.as_mut_ptr(), buf.len(), &mut out);
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points into buf (still alive), NUL-terminated.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned();
    Some((pwd.pw_uid, pwd.pw_gid, name))
}

fn lookup(name: &str) -> Option<(u32, u32)> {
    let cname = CString::new(name).ok()?;
    // SAFETY: the pointers come from passwd_entry and cname, valid for the call.
    passwd_entry(|p, b, n, o| unsafe { libc::getpwnam_r(cname.as_ptr(), p, b, n, o) }).map(|(u, g, _)| (u, g))
}

/// The user `name`, created (a system user with a group of its own, no home
/// and no login shell) when it does not exist yet.
pub fn ensure_user(name: &str) -> std::result::Result<RunAs, String> {
    let (uid, gid) = match lookup(name) {
        Some(ids) => ids,
        None => {
            let out = std::process::Command::new("useradd")
                .args(["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"])
                .args(["--shell", "/usr/sbin/nologin", "--comment", "xapi-rs QEMU processes", name])
                .output()
                .map_err(|e| format!("cannot run useradd to create QEMU's user {name}: {e}"))?;
            if !out.status.success() {
                return Err(format!("useradd {name} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
            tracing::info!(user = name, "created the user QEMU runs as");
            lookup(name).ok_or_else(|| format!("useradd made no user {name}"))?
        }
    };
    if uid == 0 {
        return Err(format!("QEMU's user {name} is root; name an unprivileged user"));
    }
    let mut groups = vec![gid];
    if let Ok(m) = std::fs::metadata("/dev/kvm") {
        use std::os::unix::fs::MetadataExt;
        if m.gid() != 0 && m.gid() != gid {
            groups.push(m.gid());
        }
    }
    Ok(RunAs { name: name.to_string(), uid, gid, groups })
}

/// Whether `u` may open /dev/kvm (by its group or everyone's permission).
pub fn may_use_kvm(u: &RunAs) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/dev/kvm").is_ok_and(|m| {
        let mode = m.mode();
        mode & 0o006 == 0o006 || (u.groups.contains(&m.gid()) && mode & 0o060 == 0o060) || m.uid() == u.uid
    })
}

/// A file opened for QEMU: read-write, or read-only for read-only disks and
/// CDs (QEMU picks an fd of an fd set by its access mode).
pub fn open_image(path: &Path, read_only: bool) -> Result<OwnedFd> {
    let f = std::fs::OpenOptions::new().read(true).write(!read_only).open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackendError::MissingFile(path.to_path_buf()),
        _ => BackendError::Internal(format!("cannot open {}: {e}", path.display())),
    })?;
    Ok(f.into())
}

/// A qcow2 image that names a backing file would have QEMU open that file
/// by name, which it cannot (and should not: the name is the image's to
/// choose). The SRs make none; an imported one is refused.
pub fn check_no_backing(path: &Path, fd: &OwnedFd) -> Result<()> {
    let mut hdr = [0u8; 16];
    // SAFETY: hdr is valid for 16 bytes; pread does not move the offset.
    let n = unsafe { libc::pread(fd.as_raw_fd(), hdr.as_mut_ptr().cast(), hdr.len(), 0) };
    if n == 16 && &hdr[..4] == b"QFI\xfb" && hdr[8..16] != [0; 8] {
        return Err(BackendError::Unsupported(format!("the qcow2 image {} has a backing file", path.display())));
    }
    Ok(())
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// A new tap named `name`, as QEMU would make it: with virtio-net headers,
/// not persistent (it goes when the last descriptor closes, so a QEMU that
/// dies leaves none).
pub fn open_tap(name: &str) -> Result<OwnedFd> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(BackendError::Internal(format!("tap name {name:?} does not fit")));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| BackendError::Network(format!("cannot open /dev/net/tun: {e}")))?;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: req is a valid struct ifreq for TUNSETIFF.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF as _, &mut req) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(BackendError::Network(format!("cannot create tap {name}: {e}")));
    }
    Ok(f.into())
}

/// The device nodes a QEMU's /dev holds (besides /dev/kvm when it uses KVM).
const DEV_NODES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];
/// What stays in sight whatever a hidden directory's name: QEMU's binary,
/// libraries, firmware and modules, and the kernel's file systems.
const KEEP: [&str; 8] = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys"];

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| BackendError::Internal(format!("{} holds a NUL", p.display())))
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A QEMU's private mount namespace, prepared before the fork.
#[derive(Clone, Debug)]
pub struct Mounts {
    /// Nodes of the private /dev: path, permission bits, device, owner.
    nodes: Vec<(CString, libc::mode_t, libc::dev_t, u32, u32)>,
    /// Directories covered by an empty read-only tmpfs.
    hide: Vec<CString>,
}

impl Mounts {
    /// /dev with [`DEV_NODES`] (and kvm when `kvm`), a private /tmp, and
    /// the directories of `hide` that exist out of sight ([`covers`]).
    pub fn new(kvm: bool, hide: &[PathBuf]) -> Result<Mounts> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let mut nodes = Vec::new();
        for name in DEV_NODES.iter().copied().chain(kvm.then_some("kvm")) {
            let path = Path::new("/dev").join(name);
            let m = std::fs::metadata(&path).map_err(|e| BackendError::Internal(format!("{}: {e}", path.display())))?;
            if !m.file_type().is_char_device() {
                return Err(BackendError::Internal(format!("{} is no character device", path.display())));
            }
            nodes.push((cstr(&path)?, m.mode() & 0o7777, m.rdev(), m.uid(), m.gid()));
        }
        let fixed = [Path::new("/dev"), Path::new("/tmp")];
        Ok(Mounts { nodes, hide: covers(hide, &fixed).iter().map(|p| cstr(p)).collect::<Result<_>>()? })
    }

    /// In the child, as root, in its new namespace, after entering its
    /// working directory.
    ///
    /// # Safety
    /// Async-signal-safe calls only, on values prepared before the fork.
    unsafe fn apply(&self) -> std::io::Result<()> {
        let none = std::ptr::null();
        let tmpfs = c"tmpfs".as_ptr();
        let dev = c"/dev".as_ptr();
        // SAFETY: as the function's contract says.
        unsafe {
            let opts = c"mode=755,size=64k".as_ptr().cast();
            check(libc::mount(tmpfs, dev, tmpfs, libc::MS_NOSUID | libc::MS_NOEXEC, opts))?;
            for (path, mode, rdev, uid, gid) in &self.nodes {
                check(libc::mknod(path.as_ptr(), libc::S_IFCHR | mode, *rdev))?;
                check(libc::chown(path.as_ptr(), *uid, *gid))?;
                // mknod's mode went through the umask.
                check(libc::chmod(path.as_ptr(), *mode))?;
            }
            let ro = libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC;
            check(libc::mount(none, dev, none, ro, none.cast()))?;
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            let opts = c"mode=1777,size=16m".as_ptr().cast();
            check(libc::mount(tmpfs, c"/tmp".as_ptr(), tmpfs, flags, opts))?;
            for d in &self.hide {
                let opts = c"mode=755,size=4k,nr_inodes=16".as_ptr().cast();
                check(libc::mount(tmpfs, d.as_ptr(), tmpfs, flags | libc::MS_RDONLY, opts))?;
            }
        }
        Ok(())
    }
}

/// The directories of `hide` to cover: existing ones, by their real names,
/// none that holds or is in what must stay in sight, none inside another
/// cover or inside `fixed` (covered anyway: under a cover the path is gone).
fn covers(hide: &[PathBuf], fixed: &[&Path]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = hide
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| p.is_dir() && !KEEP.iter().any(|k| Path::new(k).starts_with(p) || p.starts_with(k)))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for d in dirs {
        if !fixed.iter().copied().chain(kept.iter().map(PathBuf::as_path)).any(|a| d.starts_with(a)) {
            kept.push(d);
        }
    }
    kept
}

/// Whether this process may give a child its own mount namespace (root
/// with CAP_SYS_ADMIN, not in a container that forbids it): tried once
/// with `binary -version` in the namespace QEMU would get.
pub fn mounts_work(binary: &Path) -> std::result::Result<(), String> {
    let m = Mounts::new(false, &[]).map_err(|e| e.to_string())?;
    let setup = ChildSetup::new(Path::new("/"), vec![], None, Some(m)).map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(binary);
    // SAFETY: `apply` makes only async-signal-safe calls.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || setup.apply()) };
    let out = cmd.arg("-version").output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// What the child does between fork and exec, as async-signal-safe calls
/// only: keep `keep` open across exec, enter a mount namespace of its own
/// (`mounts`), enter `dir`, and become `user`.
pub struct ChildSetup {
    dir: CString,
    keep: Vec<RawFd>,
    user: Option<RunAs>,
    mounts: Option<Mounts>,
}

impl ChildSetup {
    pub fn new(dir: &Path, keep: Vec<RawFd>, user: Option<RunAs>, mounts: Option<Mounts>) -> Result<ChildSetup> {
        Ok(ChildSetup { dir: cstr(dir)?, keep, user, mounts })
    }

    /// Runs in the forked child.
    pub fn apply(&self) -> std::io::Result<()> {
        // SAFETY: plain system calls on values prepared before the fork.
        unsafe {
            for &fd in &self.keep {
                check(libc::fcntl(fd, libc::F_SETFD, 0))?;
            }
            if self.mounts.is_some() {
                check(libc::unshare(libc::CLONE_NEWNS))?;
                // Nothing done below reaches the server's namespace.
                let none = std::ptr::null();
                check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none.cast()))?;
            }
            // Entered as root: QEMU's names are relative to it, so its user
            // needs no access to the directories above (which its mount
            // namespace then covers).
            check(libc::chdir(self.dir.as_ptr()))?;
            if let Some(m) = &self.mounts {
                m.apply()?;
            }
            if let Some(u) = &self.user {
                check(libc::setgroups(u.groups.len() as _, u.groups.as_ptr()))?;
                check(libc::setgid(u.gid))?;
                check(libc::setuid(u.uid))?;
            }
        }
        Ok(())
    }
}

/// Give the domain directory to QEMU's user (only it and root enter it).
pub fn hand_over(dir: &Path, user: Option<&RunAs>) -> Result<()> {
    let Some(u) = user else { return Ok(()) };
    std::os::unix::fs::chown(dir, Some(u.uid), Some(u.gid))
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| BackendError::Internal(format!("cannot give {} to {}: {e}", dir.display(), u.name)))
}

/// The name of user `uid`, for logs.
pub fn user_name(uid: u32) -> String {
    // SAFETY: as in lookup.
    passwd_entry(|p, b, n, o| unsafe { libc::getpwuid_r(uid, p, b, n, o) })
        .map_or_else(|| uid.to_string(), |(_, _, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcow2_with_a_backing_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("confine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.qcow2");
        let mut hdr = b"QFI\xfb\0\0\0\x03".to_vec();
        hdr.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x68]);
        std::fs::write(&p, &hdr).unwrap();
        let fd = open_image(&p, true).unwrap();
        assert!(matches!(check_no_backing(&p, &fd), Err(BackendError::Unsupported(_))));
        hdr[8..16].fill(0);
        std::fs::write(&p, &hdr).unwrap();
        let fd = open_image(&p, true).unwrap();
        assert!(check_no_backing(&p, &fd).is_ok());
        assert!(matches!(open_image(&dir.join("none"), true), Err(BackendError::MissingFile(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn covers_leave_the_system_in_sight_and_skip_nested_ones() {
        let dir = std::env::current_dir().unwrap().join(format!("target/covers-{}", std::process::id()));
        for d in ["a/b", "c"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let mut hide: Vec<PathBuf> = ["a/b", "a", "c", "c", "gone"].iter().map(|d| dir.join(d)).collect();
        hide.extend(["/", "/usr", "/usr/share"].map(PathBuf::from));
        let dir = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(covers(&hide, &[]), vec![dir.join("a"), dir.join("c")]);
        // Under a fixed cover (as /tmp is): nothing more to do.
        assert_eq!(covers(&hide, &[&dir.join("c")]), vec![dir.join("a")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

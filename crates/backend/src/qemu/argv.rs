//! The QEMU command line of a domain, as a pure function of its spec (tested
//! without QEMU).

use super::probe::Accel;
use crate::{BackendError, BootDevice, DiskFormat, DomainSpec, Nic, Result, Vga};
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// The files of one domain's directory (`<run dir>/<vm uuid>/`). QEMU runs
/// in that directory and is given the names relative to it (the consts).
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub dir: PathBuf,
}

pub const QMP: &str = "qmp.sock";
pub const NBD: &str = "nbd.sock";
pub const AGENT: &str = "qga.sock";
pub const VNC: &str = "vnc.sock";
pub const SERIAL: &str = "serial.sock";
pub const SERIAL_LOG: &str = "serial.log";
pub const PIDFILE: &str = "qemu.pid";
/// Where QEMU sends its state on suspend (we listen) or reads it on resume
/// (it listens).
pub const MIGRATION: &str = "migration.sock";

impl Layout {
    pub fn new(run_dir: &Path, uuid: &str) -> Layout {
        Layout { dir: run_dir.join(uuid) }
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join(QMP)
    }
    pub fn agent(&self) -> PathBuf {
        self.dir.join(AGENT)
    }
    pub fn vnc(&self) -> PathBuf {
        self.dir.join(VNC)
    }
    pub fn serial(&self) -> PathBuf {
        self.dir.join(SERIAL)
    }
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join(SERIAL_LOG)
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join(PIDFILE)
    }
    /// QEMU's own stderr.
    pub fn log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }
    /// QEMU's NBD server, started only while a dirty bitmap is read.
    pub fn nbd(&self) -> PathBuf {
        self.dir.join(NBD)
    }
    /// QEMU's log of the domain's last process, kept when it ends.
    pub fn last_log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }
    /// The domid, so that a restarted server reports the same one.
    pub fn domid(&self) -> PathBuf {
        self.dir.join("domid")
    }
    pub fn migration(&self) -> PathBuf {
        self.dir.join(MIGRATION)
    }
}

/// What the backend decided beyond the spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Launch {
    /// The kernel and ramdisk, already checked against the allowed directories.
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    /// UEFI firmware image, when the spec asks for UEFI.
    pub firmware: Option<PathBuf>,
    /// Wait for the state on the migration socket (`migrate-incoming`).
    pub incoming: bool,
    /// QEMU's seccomp filter.
    pub sandbox: bool,
    /// The domain's id: its NICs' taps are named after it.
    pub domid: i64,
    /// The descriptor QEMU inherits for each disk with an image (by
    /// device), and for each NIC's tap: it opens no host file by name.
    pub disk_fds: BTreeMap<String, RawFd>,
    pub tap_fds: BTreeMap<String, RawFd>,
}

/// Where a guest finds its data items in QEMU's firmware configuration
/// device: `opt/xenstore/<key>` (Linux: /sys/firmware/qemu_fw_cfg/by_name/,
/// with the qemu_fw_cfg module).
pub const GUEST_DATA_PREFIX: &str = "opt/xenstore/";
/// fw_cfg names hold at most 55 bytes; a few of its 32 file slots are
/// QEMU's own (kernel, boot order, ACPI, SMBIOS tables).
const FW_CFG_NAME_MAX: usize = 55;
const GUEST_DATA_MAX: usize = 16;

/// The fw_cfg items of the guest data, and the keys left out (too long, not
/// a plain path, or beyond the slots).
pub fn guest_data_items(spec: &DomainSpec) -> (Vec<(String, String)>, Vec<String>) {
    let (mut items, mut skipped) = (Vec::new(), Vec::new());
    for (k, v) in &spec.guest_data {
        let name = format!("{GUEST_DATA_PREFIX}{k}");
        let plain = k.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && k.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !plain || name.len() > FW_CFG_NAME_MAX || items.len() == GUEST_DATA_MAX {
            skipped.push(k.clone());
        } else {
            items.push((name, v.clone()));
        }
    }
    (items, skipped)
}

/// QEMU's option syntax doubles commas inside values.
fn esc(s: &str) -> String {
    s.replace(',', ",,")
}

/// The id QEMU knows a disk device by, from the VBD's userdevice.
pub fn disk_id(device: &str) -> Result<String> {
    if device.is_empty() || device.len() > 3 || !device.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BackendError::Internal(format!("disk device {device:?} is not a device number")));
    }
    Ok(format!("vbd-{device}"))
}

/// The block node behind a disk device.
pub fn node_id(device: &str) -> Result<String> {
    Ok(format!("node-{}", disk_id(device)?))
}

/// The id QEMU knows a network device by, from the VIF's device.
pub fn nic_id(device: &str) -> Result<String> {
    if device.is_empty() || device.len() > 3 || !device.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BackendError::Internal(format!("NIC device {device:?} is not a device number")));
    }
    Ok(format!("vif-{device}"))
}

/// The PCI slot of NIC `device` 0–15: 0x10 + device, so the guest finds
/// (and names) its NICs in device order whatever order they were plugged
/// in, and other devices keep the low slots QEMU hands out.
pub fn nic_slot(device: &str) -> Option<u32> {
    device.parse::<u32>().ok().filter(|d| *d < 16).map(|d| 0x10 + d)
}

/// The network backend of a NIC.
pub fn netdev_id(device: &str) -> Result<String> {
    Ok(format!("net-{}", nic_id(device)?))
}

/// A NIC's MAC must be six hex pairs.
pub fn check_mac(nic: &Nic) -> Result<()> {
    if is_mac(&nic.mac) {
        Ok(())
    } else {
        Err(BackendError::Internal(format!("NIC {} has no valid MAC ({:?})", nic.device, nic.mac)))
    }
}

/// Bus and unit of an emulated IDE position: the i440fx machine has two
/// buses of two units, so userdevices 0-3.
fn ide_slot(device: &str) -> Result<(u32, u32)> {
    match device.parse::<u32>() {
        Ok(n) if n < 4 => Ok((n / 2, n % 2)),
        _ => Err(BackendError::Unsupported(format!("emulated IDE device {device} (only 0-3 exist)"))),
    }
}

fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn mib(bytes: i64) -> i64 {
    (bytes + (1 << 20) - 1) >> 20
}

/// QEMU's name of a disk format.
pub fn format_name(format: DiskFormat) -> &'static str {
    match format {
        DiskFormat::Raw => "raw",
        DiskFormat::Qcow2 => "qcow2",
    }
}

/// The name QEMU opens fd set `set` by.
pub fn fdset_path(set: i64) -> String {
    format!("/dev/fdset/{set}")
}

/// The `-blockdev` value of a disk image in fd set `set`.
pub fn blockdev(node: &str, set: i64, format: DiskFormat, read_only: bool) -> String {
    let ro = if read_only { "on" } else { "off" };
    format!(
        "driver={},node-name={node},read-only={ro},file.driver=file,file.filename={}",
        format_name(format),
        fdset_path(set)
    )
}

/// A virtio disk's queues: QEMU's default follows the vCPUs at boot, which
/// a resumed or migrated domain with hot-plugged vCPUs would not match
/// (its saved device state would be refused); the most vCPUs (at most 16,
/// QEMU's own cap for the default) stays the same for the domain's life.
pub fn blk_queues(spec: &DomainSpec) -> i64 {
    spec.vcpus.max.clamp(1, 16)
}

/// The whole argv after the binary.
pub fn command_line(spec: &DomainSpec, accel: Accel, launch: &Launch) -> Result<Vec<String>> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    if spec.memory.target <= 0 {
        return Err(BackendError::Internal(format!("memory target {} is not positive", spec.memory.target)));
    }
    let vcpus = spec.vcpus.at_startup.max(1);
    let max_vcpus = spec.vcpus.max.max(vcpus);
    // Paused until the server unpauses; a guest reboot ends the guest (it
    // arrives as SHUTDOWN with reason guest-reset) so the server decides.
    // A guest that ends leaves QEMU stopped, not gone (-no-shutdown): its
    // disks' dirty bitmaps are read before the backend has it quit.
    push(&["-S", "-no-user-config", "-nodefaults", "-no-reboot", "-no-shutdown"]);
    let p = &spec.platform;
    let machine = if p.acpi { "pc".to_string() } else { "pc,acpi=off".to_string() };
    push(&["-machine", &machine, "-accel", accel.as_arg()]);
    // QEMU's default model, less what the platform flags take away. OVMF
    // sets up no-execute page protection and hangs on a CPU without NX, so
    // UEFI guests keep it (the backend logs that it ignores the flag).
    if !p.nx && launch.firmware.is_none() {
        push(&["-cpu", "qemu64,-nx"]);
    }
    push(&["-name", &format!("guest={},debug-threads=on", esc(&spec.name))]);
    if spec.uuid.len() == 36 && spec.uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        push(&["-uuid", &spec.uuid]);
    }
    // The static maximum, always: the balloon takes the guest down to its
    // target, live changes move only the balloon, and a domain that carries
    // on (resume, migration) has the RAM its saved state was taken with.
    let size = mib(spec.memory.static_max.max(spec.memory.target));
    push(&["-m", &format!("size={size}M")]);
    let topology = match p.cores_per_socket {
        Some(cores) if cores > 0 && max_vcpus % cores == 0 => {
            format!(",sockets={},cores={cores},threads=1", max_vcpus / cores)
        }
        Some(cores) => {
            return Err(BackendError::Internal(format!("{max_vcpus} vCPUs do not make sockets of {cores} cores")))
        }
        None => String::new(),
    };
    push(&["-smp", &format!("cpus={vcpus},maxcpus={max_vcpus}{topology}")]);
    if launch.sandbox {
        push(&["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]);
    }
    if let Some(fw) = &launch.firmware {
        push(&["-bios", &fw.display().to_string()]);
    }
    if let Some(k) = &launch.kernel {
        push(&["-kernel", &k.display().to_string()]);
        if let Some(r) = &launch.ramdisk {
            push(&["-initrd", &r.display().to_string()]);
        }
        if !spec.args.is_empty() {
            push(&["-append", &spec.args]);
        }
    } else {
        let mut order = String::new();
        for d in &spec.boot_order {
            order.push(match d {
                BootDevice::Disk => 'c',
                BootDevice::Cdrom => 'd',
                BootDevice::Network => 'n',
            });
        }
        if order.is_empty() {
            order.push_str("cd");
        }
        push(&["-boot", &format!("order={order}")]);
    }
    // Control and console channels: Unix sockets only, no TCP listener.
    // (No -pidfile: QEMU resolves its path from /, which its user may not
    // traverse; the backend writes it.)
    push(&["-qmp", &format!("unix:{QMP},server=on,wait=off")]);
    let vga = match p.vga {
        Vga::Std => "VGA",
        Vga::Cirrus => "cirrus-vga",
    };
    push(&["-display", "none", "-device", vga, "-vnc", &format!("unix:{VNC}")]);
    push(&[
        "-chardev",
        &format!("socket,id=ser0,path={SERIAL},server=on,wait=off,logfile={SERIAL_LOG},logappend=on"),
        "-serial",
        "chardev:ser0",
    ]);
    push(&[
        "-device",
        "virtio-serial-pci,id=vser0",
        "-chardev",
        &format!("socket,id=qga0,path={AGENT},server=on,wait=off"),
        "-device",
        "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
    ]);
    push(&["-device", "pvpanic", "-device", "virtio-balloon-pci,id=balloon0"]);
    for d in &spec.disks {
        let id = disk_id(&d.device)?;
        let node = node_id(&d.device)?;
        let drive = match &d.path {
            Some(_) => {
                let fd = *launch
                    .disk_fds
                    .get(&d.device)
                    .ok_or_else(|| BackendError::Internal(format!("disk {} was not opened", d.device)))?;
                // The fd set's id is the descriptor's number: unique, and
                // below the ids QEMU hands out for later plugs it is not.
                push(&["-add-fd", &format!("fd={fd},set={fd},opaque={id}")]);
                push(&["-blockdev", &blockdev(&node, fd.into(), d.format, d.read_only || d.cdrom)]);
                format!(",drive={node}")
            }
            None if d.cdrom => String::new(),
            None => return Err(BackendError::Internal(format!("disk {} has no image", d.device))),
        };
        let dev = if d.cdrom {
            let (bus, unit) = ide_slot(&d.device)?;
            format!("ide-cd,bus=ide.{bus},unit={unit},id={id}{drive}")
        } else if spec.hvm {
            let (bus, unit) = ide_slot(&d.device)?;
            format!("ide-hd,bus=ide.{bus},unit={unit},id={id}{drive}")
        } else {
            format!("virtio-blk-pci,id={id}{drive},num-queues={}", blk_queues(spec))
        };
        push(&["-device", &dev]);
    }
    if spec.nics.is_empty() {
        push(&["-nic", "none"]);
    }
    // Each NIC on a tap the backend made and QEMU holds (it goes when QEMU
    // exits, so a crash leaves none); the backend joins it to its bridge
    // before the guest runs.
    for n in &spec.nics {
        let (id, netdev) = (nic_id(&n.device)?, netdev_id(&n.device)?);
        check_mac(n)?;
        let fd = launch
            .tap_fds
            .get(&n.device)
            .ok_or_else(|| BackendError::Internal(format!("NIC {} has no tap", n.device)))?;
        let model = if spec.hvm { "e1000" } else { "virtio-net-pci" };
        push(&["-netdev", &format!("tap,id={netdev},fd={fd}")]);
        let addr = nic_slot(&n.device).map(|s| format!(",addr={s:#x}")).unwrap_or_default();
        push(&["-device", &format!("{model},netdev={netdev},mac={},id={id}{addr}", n.mac)]);
    }
    for (name, value) in guest_data_items(spec).0 {
        push(&["-fw_cfg", &format!("name={name},string={}", esc(&value))]);
    }
    if launch.incoming {
        push(&["-incoming", "defer"]);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Disk, Memory, Vcpus};

    fn spec() -> DomainSpec {
        DomainSpec {
            uuid: "0b6cf16a-6bd4-4f6c-9ad0-4a39f5a4d1e2".into(),
            name: "a, b".into(),
            vcpus: Vcpus { max: 4, at_startup: 2 },
            memory: Memory { static_max: 512 << 20, target: 256 << 20, ..Default::default() },
            args: "console=ttyS0".into(),
            ..Default::default()
        }
    }

    fn after<'a>(argv: &'a [String], flag: &str) -> Vec<&'a str> {
        argv.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
    }

    #[test]
    fn direct_kernel_boot_with_sockets_only() {
        let launch = Launch {
            kernel: Some("/var/lib/xcp/guest/vmlinuz".into()),
            ramdisk: Some("/var/lib/xcp/guest/initrd".into()),
            sandbox: true,
            ..Default::default()
        };
        let argv = command_line(&spec(), Accel::Tcg, &launch).unwrap();
        assert!(argv.contains(&"-S".to_string()) && argv.contains(&"-no-reboot".to_string()));
        assert!(argv.contains(&"-no-shutdown".to_string()));
        assert_eq!(after(&argv, "-accel"), ["tcg"]);
        assert_eq!(after(&argv, "-m"), ["size=512M"]);
        assert_eq!(after(&argv, "-smp"), ["cpus=2,maxcpus=4"]);
        assert_eq!(after(&argv, "-name"), ["guest=a,, b,debug-threads=on"]);
        assert_eq!(after(&argv, "-kernel"), ["/var/lib/xcp/guest/vmlinuz"]);
        assert_eq!(after(&argv, "-append"), ["console=ttyS0"]);
        // Names relative to the domain directory QEMU runs in.
        assert_eq!(after(&argv, "-qmp"), ["unix:qmp.sock,server=on,wait=off"]);
        assert_eq!(after(&argv, "-vnc"), ["unix:vnc.sock"]);
        assert!(after(&argv, "-pidfile").is_empty());
        assert_eq!(after(&argv, "-nic"), ["none"]);
        assert!(after(&argv, "-sandbox")[0].contains("spawn=deny"));
        assert!(after(&argv, "-boot").is_empty());
        assert!(!argv.iter().any(|a| a.contains("tcp:") || a.contains("127.0.0.1")));
        // The default platform: ACPI, QEMU's CPU model and topology, standard VGA.
        assert_eq!(after(&argv, "-machine"), ["pc"]);
        assert!(after(&argv, "-cpu").is_empty());
        assert!(after(&argv, "-device").contains(&"VGA"));
    }

    #[test]
    fn platform_flags() {
        let mut s = spec();
        s.platform = crate::Platform { acpi: false, nx: false, cores_per_socket: Some(2), vga: Vga::Cirrus };
        let argv = command_line(&s, Accel::Tcg, &Launch::default()).unwrap();
        assert_eq!(after(&argv, "-machine"), ["pc,acpi=off"]);
        assert_eq!(after(&argv, "-cpu"), ["qemu64,-nx"]);
        assert_eq!(after(&argv, "-smp"), ["cpus=2,maxcpus=4,sockets=2,cores=2,threads=1"]);
        let devs = after(&argv, "-device");
        assert!(devs.contains(&"cirrus-vga") && !devs.contains(&"VGA"), "{devs:?}");
        let uefi = Launch { firmware: Some("/usr/share/ovmf/OVMF.fd".into()), ..Default::default() };
        assert!(after(&command_line(&s, Accel::Tcg, &uefi).unwrap(), "-cpu").is_empty());
        s.guest_data = [
            ("vm-data/greeting", "hello, world"),
            ("vm-data/a,b", "x"),
            ("vm-data/../up", "x"),
            ("vm-data/a-key-far-too-long-for-a-fw-cfg-file-name", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let argv = command_line(&s, Accel::Tcg, &Launch::default()).unwrap();
        assert_eq!(after(&argv, "-fw_cfg"), ["name=opt/xenstore/vm-data/greeting,string=hello,, world"]);
        assert_eq!(guest_data_items(&s).1.len(), 3);
        s.platform.cores_per_socket = Some(3);
        assert!(command_line(&s, Accel::Tcg, &Launch::default()).is_err());
    }

    #[test]
    fn disks_cds_and_nics() {
        let mut s = spec();
        s.memory.static_max = s.memory.target;
        s.disks = vec![
            Disk {
                device: "0".into(),
                path: Some("/sr/a.qcow2".into()),
                format: DiskFormat::Qcow2,
                read_only: false,
                cdrom: false,
                change_batch: Some("b".into()),
            },
            Disk {
                device: "3".into(),
                path: None,
                format: DiskFormat::Raw,
                read_only: true,
                cdrom: true,
                change_batch: None,
            },
        ];
        s.nics = vec![Nic { device: "0".into(), mac: "02:00:00:00:00:01".into(), ..Default::default() }];
        let fds = |pairs: &[(&str, RawFd)]| pairs.iter().map(|(d, f)| (d.to_string(), *f)).collect();
        let mut launch = Launch {
            incoming: true,
            domid: 7,
            disk_fds: fds(&[("0", 21), ("5", 23)]),
            tap_fds: fds(&[("0", 22)]),
            ..Default::default()
        };
        let argv = command_line(&s, Accel::Kvm, &launch).unwrap();
        assert_eq!(after(&argv, "-m"), ["size=256M"]);
        assert_eq!(
            after(&argv, "-blockdev"),
            ["driver=qcow2,node-name=node-vbd-0,read-only=off,file.driver=file,file.filename=/dev/fdset/21"]
        );
        assert_eq!(after(&argv, "-add-fd"), ["fd=21,set=21,opaque=vbd-0"]);
        let devs = after(&argv, "-device");
        assert!(devs.contains(&"virtio-blk-pci,id=vbd-0,drive=node-vbd-0,num-queues=4"), "{devs:?}");
        assert!(devs.contains(&"ide-cd,bus=ide.1,unit=1,id=vbd-3"), "{devs:?}");
        assert!(devs.contains(&"virtio-net-pci,netdev=net-vif-0,mac=02:00:00:00:00:01,id=vif-0,addr=0x10"), "{devs:?}");
        assert_eq!(after(&argv, "-netdev"), ["tap,id=net-vif-0,fd=22"]);
        assert_eq!(after(&argv, "-boot"), ["order=cd"]);
        assert_eq!(after(&argv, "-incoming"), ["defer"]);
        assert!(after(&argv, "-nic").is_empty());

        // HVM disks are emulated IDE, which has four places.
        s.hvm = true;
        s.boot_order = vec![BootDevice::Cdrom, BootDevice::Disk];
        launch.incoming = false;
        let argv = command_line(&s, Accel::Kvm, &launch).unwrap();
        assert!(after(&argv, "-device").contains(&"ide-hd,bus=ide.0,unit=0,id=vbd-0,drive=node-vbd-0"));
        assert_eq!(after(&argv, "-boot"), ["order=dc"]);
        s.disks[0].device = "5".into();
        assert!(matches!(command_line(&s, Accel::Kvm, &launch), Err(BackendError::Unsupported(_))));
        s.disks[0].device = "x,y".into();
        assert!(matches!(command_line(&s, Accel::Kvm, &launch), Err(BackendError::Internal(_))));
        // Nothing is opened by name: a disk or NIC without its descriptor is a bug.
        s.disks[0].device = "1".into();
        assert!(matches!(command_line(&s, Accel::Kvm, &launch), Err(BackendError::Internal(_))));
        s.disks.clear();
        s.hvm = false;
        assert!(command_line(&s, Accel::Kvm, &Launch::default()).is_err());
        s.nics[0].mac = "nope".into();
        assert!(command_line(&s, Accel::Kvm, &Launch::default()).is_err());
        s.nics.clear();
        s.memory.target = 0;
        assert!(command_line(&s, Accel::Kvm, &Launch::default()).is_err());
    }
}

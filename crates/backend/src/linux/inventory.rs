//! The host's NICs, from sysfs (`/sys/class/net`): interfaces backed by a
//! device, or exactly the ones the administrator named (`--nics`, which
//! tests use with veths). Bridges, bonds, VLANs, taps and lo never count:
//! they are made on top of NICs, not NICs.

use crate::HostNic;
use std::path::Path;

pub const SYSFS_NET: &str = "/sys/class/net";

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok().map(|s| s.trim().to_string())
}

/// Whether the interface in `dir` is one we build ourselves or a loopback.
fn is_virtual_kind(dir: &Path) -> bool {
    let uevent = read(dir, "uevent").unwrap_or_default();
    let devtype = uevent.lines().find_map(|l| l.strip_prefix("DEVTYPE=")).unwrap_or_default();
    matches!(devtype, "bridge" | "bond" | "vlan")
        || dir.join("bridge").exists()
        || dir.join("bonding").exists()
        || dir.join("tun_flags").exists()
        // ARPHRD_LOOPBACK
        || read(dir, "type").as_deref() == Some("772")
}

/// "0x8086" → "8086".
fn pci_id(s: Option<String>) -> String {
    s.map(|v| v.trim_start_matches("0x").to_lowercase()).unwrap_or_default()
}

/// One NIC's facts; None when `dir` is no usable interface.
pub fn read_nic(dir: &Path) -> Option<HostNic> {
    let device = dir.file_name()?.to_str()?.to_string();
    let mac = read(dir, "address")?.to_lowercase();
    let dev = dir.join("device");
    let bus = std::fs::read_link(&dev)
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .unwrap_or_default();
    let (vendor_id, device_id) = (pci_id(read(&dev, "vendor")), pci_id(read(&dev, "device")));
    let (vendor_name, device_name) = pci_names(&vendor_id, &device_id);
    Some(HostNic {
        mtu: read(dir, "mtu").and_then(|m| m.parse().ok()).unwrap_or(0),
        // Reading carrier on a link that is down fails (EINVAL): no carrier.
        carrier: read(dir, "carrier").as_deref() == Some("1"),
        speed_mbps: read(dir, "speed").and_then(|s| s.parse::<i64>().ok()).filter(|&s| s > 0),
        full_duplex: match read(dir, "duplex").as_deref() {
            Some("full") => Some(true),
            Some("half") => Some(false),
            _ => None,
        },
        device,
        mac,
        bus,
        vendor_id,
        vendor_name,
        device_id,
        device_name,
    })
}

/// The interfaces to consider as NICs: `only` when given, else every one
/// with a `device` link, sorted.
fn candidates(root: &Path, only: Option<&[String]>) -> Vec<String> {
    match only {
        Some(list) => list.to_vec(),
        None => {
            let mut v: Vec<String> = match std::fs::read_dir(root) {
                Ok(rd) => rd.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect(),
                Err(e) => {
                    tracing::warn!("{}: {e}; no NICs found", root.display());
                    vec![]
                }
            };
            v.retain(|n| root.join(n).join("device").exists());
            v.sort();
            v
        }
    }
}

/// Why the interface `name` under `root` is not a NIC, or None if it is one.
fn not_a_nic(root: &Path, name: &str) -> Option<&'static str> {
    let dir = root.join(name);
    if !super::links::valid_ifname(name) || !dir.exists() {
        Some("not a network interface of this host: not listed as a NIC")
    } else if is_virtual_kind(&dir) {
        Some("a bridge, bond, VLAN, tap or loopback is not a NIC: not listed")
    } else {
        None
    }
}

/// The names of the NICs [`nics`] lists, without reading their attributes
/// (for the statistics, every few seconds; rejections are not logged again).
pub fn nic_names(root: &Path, only: Option<&[String]>) -> Vec<String> {
    let mut v = candidates(root, only);
    v.retain(|n| not_a_nic(root, n).is_none());
    v
}

/// The NICs under `root` (a sysfs `class/net` directory): the ones named
/// in `only` when given (in that order, those that exist), else every
/// interface with a `device` link; never a bridge, bond, VLAN, tap or lo.
pub fn nics(root: &Path, only: Option<&[String]>) -> Vec<HostNic> {
    let mut out = Vec::new();
    for n in candidates(root, only) {
        if let Some(why) = not_a_nic(root, &n) {
            tracing::warn!(device = %n, "{why}");
            continue;
        }
        let dir = root.join(&n);
        match read_nic(&dir) {
            Some(nic) => out.push(nic),
            None => tracing::warn!(device = %n, "cannot read its sysfs attributes: not listed"),
        }
    }
    out
}

/// Vendor and device names from the PCI id database, when installed.
fn pci_names(vendor: &str, device: &str) -> (String, String) {
    if vendor.is_empty() {
        return (String::new(), String::new());
    }
    let db =
        ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"].iter().find_map(|p| std::fs::read_to_string(p).ok());
    db.map(|t| lookup_pci(&t, vendor, device)).unwrap_or_default()
}

/// pci.ids: vendor lines start at column 0, their devices with one tab.
pub fn lookup_pci(db: &str, vendor: &str, device: &str) -> (String, String) {
    let (mut vname, mut dname, mut inside) = (String::new(), String::new(), false);
    for line in db.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if !line.starts_with('\t') {
            if inside {
                break;
            }
            if let Some(rest) = line.strip_prefix(vendor) {
                if rest.starts_with(' ') {
                    vname = rest.trim().to_string();
                    inside = true;
                }
            }
        } else if inside && !line.starts_with("\t\t") {
            if let Some(rest) = line[1..].strip_prefix(device) {
                if rest.starts_with(' ') {
                    dname = rest.trim().to_string();
                }
            }
        }
    }
    (vname, dname)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fake_sysfs() -> PathBuf {
        let root = std::env::temp_dir().join(format!("xapi-rs-sysfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let devs = root.join("devices");
        let net = root.join("class/net");
        let mk = |name: &str, files: &[(&str, &str)]| {
            let d = net.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (f, v) in files {
                std::fs::write(d.join(f), format!("{v}\n")).unwrap();
            }
            d
        };
        let eth0 = mk(
            "eth0",
            &[
                ("address", "52:54:00:AB:CD:EF"),
                ("mtu", "9000"),
                ("carrier", "1"),
                ("speed", "1000"),
                ("duplex", "full"),
            ],
        );
        let pci = devs.join("0000:00:03.0");
        std::fs::create_dir_all(&pci).unwrap();
        std::fs::write(pci.join("vendor"), "0x8086\n").unwrap();
        std::fs::write(pci.join("device"), "0x100E\n").unwrap();
        std::os::unix::fs::symlink(&pci, eth0.join("device")).unwrap();
        // Down: carrier unreadable, speed -1.
        let eth1 =
            mk("eth1", &[("address", "52:54:00:00:00:02"), ("mtu", "1500"), ("speed", "-1"), ("duplex", "unknown")]);
        std::os::unix::fs::symlink(&pci, eth1.join("device")).unwrap();
        mk("lo", &[("address", "00:00:00:00:00:00"), ("type", "772")]);
        let br = mk("xenbr0", &[("address", "52:54:00:ab:cd:ef"), ("uevent", "DEVTYPE=bridge\nINTERFACE=xenbr0")]);
        std::os::unix::fs::symlink(&pci, br.join("device")).unwrap();
        mk("veth0", &[("address", "02:00:00:00:00:09"), ("mtu", "1500"), ("carrier", "0")]);
        let tap = mk("vif1.0", &[("address", "fe:00:00:00:00:01"), ("tun_flags", "0x1002")]);
        let _ = tap;
        mk("bond0", &[("address", "02:00:00:00:00:0a")]);
        std::fs::create_dir_all(net.join("bond0/bonding")).unwrap();
        root
    }

    #[test]
    fn nics_from_sysfs() {
        let root = fake_sysfs();
        let net = root.join("class/net");
        let all = nics(&net, None);
        let names: Vec<&str> = all.iter().map(|n| n.device.as_str()).collect();
        assert_eq!(names, ["eth0", "eth1"]);
        let e = &all[0];
        assert_eq!((e.mac.as_str(), e.mtu, e.carrier), ("52:54:00:ab:cd:ef", 9000, true));
        assert_eq!((e.speed_mbps, e.full_duplex), (Some(1000), Some(true)));
        assert_eq!((e.bus.as_str(), e.vendor_id.as_str(), e.device_id.as_str()), ("0000:00:03.0", "8086", "100e"));
        let d = &all[1];
        assert_eq!((d.carrier, d.speed_mbps, d.full_duplex), (false, None, None));
        // An explicit list is exactly those, minus what is no NIC.
        let only: Vec<String> = ["veth0", "nope", "xenbr0", "vif1.0", "bond0", "lo", "eth1"].map(String::from).to_vec();
        let listed = nics(&net, Some(&only));
        let names: Vec<&str> = listed.iter().map(|n| n.device.as_str()).collect();
        assert_eq!(names, ["veth0", "eth1"]);
        assert_eq!(listed[0].bus, "");
        assert_eq!(nic_names(&net, None), ["eth0", "eth1"]);
        assert_eq!(nic_names(&net, Some(&only)), ["veth0", "eth1"]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn pci_names_lookup() {
        let db = "# comment\n8086  Intel Corporation\n\t100e  82540EM Gigabit Ethernet Controller\n\t\t1028 0002  sub\n\t10d3  82574L\n10ec  Realtek\n\t8139  RTL-8100\n";
        assert_eq!(lookup_pci(db, "8086", "10d3"), ("Intel Corporation".into(), "82574L".into()));
        assert_eq!(lookup_pci(db, "10ec", "100e"), ("Realtek".into(), String::new()));
        assert_eq!(lookup_pci(db, "1af4", "1000"), (String::new(), String::new()));
    }
}

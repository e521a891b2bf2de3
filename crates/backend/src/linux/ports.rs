//! Guest NICs as switch ports: QEMU makes a tap per NIC (named here), and
//! the backend joins it to its bridge with the NIC's MTU, offloads,
//! promiscuity and locking.

use super::cmd::ip;
use super::links::{check_ifname, Host, IFNAMSIZ};
use super::{filter, switches};
use crate::{BackendError, Nic, Result};

/// The tap of NIC `device` of domain `domid`: `vif<domid>.<device>`, as
/// xapi names its VIF interfaces.
pub fn tap_name(domid: i64, device: &str) -> Result<String> {
    let name = format!("vif{domid}.{device}");
    if domid < 0 || device.is_empty() || !device.bytes().all(|b| b.is_ascii_digit()) || name.len() > IFNAMSIZ {
        return Err(BackendError::Network(format!("no interface name for NIC {device:?} of domain {domid}")));
    }
    Ok(name)
}

/// The tap's own MAC: the guest's with the first octet `fe` (`fa` when the
/// guest's is `fe` already: a generated MAC starts with `fe` one time in 64).
/// The bridge learns the guest's MAC on the port; had the tap that MAC too,
/// the bridge would take frames for the guest as its own. Both are unicast,
/// locally administered, and large, so the bridge (whose address is its
/// lowest port's) keeps the uplink's MAC.
pub fn host_side_mac(guest: &str) -> Result<String> {
    let parts: Vec<&str> = guest.split(':').collect();
    if parts.len() != 6 || !parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(BackendError::Network(format!("{guest:?} is not a MAC address")));
    }
    let first = if parts[0].eq_ignore_ascii_case("fe") { "fa" } else { "fe" };
    Ok(format!("{first}:{}", parts[1..].join(":")).to_lowercase())
}

/// Join `tap` (it exists: QEMU made it) to `nic.bridge` (made if missing),
/// or move it there, and give it the NIC's settings and locking.
pub async fn attach(tap: &str, nic: &Nic) -> Result<()> {
    check_ifname(tap)?;
    let mac = host_side_mac(&nic.mac)?;
    // QEMU makes its taps while it starts; give it a moment.
    let mut tries = 0;
    let (host, l) = loop {
        let host = Host::read().await?;
        if let Some(l) = host.get(tap).cloned() {
            break (host, l);
        }
        tries += 1;
        if tries > 20 {
            return Err(BackendError::Network(format!("the tap {tap} of NIC {} does not exist", nic.device)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    switches::ensure_bridge(&host, &nic.bridge).await?;
    let mut args = vec!["link", "set", "dev", tap];
    if l.mac != mac {
        args.extend(["address", mac.as_str()]);
    }
    let mtu = nic.mtu.to_string();
    if nic.mtu > 0 && l.mtu != nic.mtu {
        args.extend(["mtu", mtu.as_str()]);
    }
    if l.master.as_deref() != Some(nic.bridge.as_str()) {
        args.extend(["master", nic.bridge.as_str()]);
    }
    args.push("up");
    ip(&args).await?;
    switches::ethtool(tap, &nic.ethtool).await?;
    if l.promisc != nic.promiscuous {
        ip(&["link", "set", "dev", tap, "promisc", if nic.promiscuous { "on" } else { "off" }]).await?;
    }
    filter::apply(tap, &nic.mac, &nic.locking).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit() {
        assert_eq!(tap_name(12, "0").unwrap(), "vif12.0");
        assert_eq!(tap_name(12345678, "999").unwrap(), "vif12345678.999");
        assert!(tap_name(123456789, "999").is_err(), "16 characters");
        assert!(tap_name(1, "a").is_err() && tap_name(1, "").is_err() && tap_name(-1, "0").is_err());
    }

    #[test]
    fn host_side_macs() {
        assert_eq!(host_side_mac("02:AB:cd:00:00:01").unwrap(), "fe:ab:cd:00:00:01");
        // Never the guest's own.
        assert_eq!(host_side_mac("FE:ab:cd:00:00:01").unwrap(), "fa:ab:cd:00:00:01");
        assert!(host_side_mac("02:ab:cd:00:00").is_err() && host_side_mac("zz:ab:cd:00:00:01").is_err());
    }
}

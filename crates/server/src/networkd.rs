//! The networkd service: what this host's switches should be, from the
//! database, handed to the backend in full after every change (as xapi hands
//! xcp-networkd a whole bridge and interface configuration). One switch per
//! network with a plugged PIF on this host: a physical NIC, a VLAN on the
//! tagged PIF's link, or a bond of its members. Private networks need no
//! entry: the backend makes their switch when a guest NIC needs it.

use crate::{xenops, Result, Server};
use backend::{HostIp, HostNetwork, Link, Switch};
use model::schema::{CLASS_BOND, CLASS_PIF};
use model::types::fields::{bond as BO, network as N, pif as P, vlan as VL};
use model::types::{BondMode, IpConfigurationMode, Ipv6ConfigurationMode};
use model::Row;
use store::State;

/// Linux interface names are at most 15 bytes.
fn ifname(s: &str) -> String {
    s.chars().take(15).collect()
}

/// The Linux link behind a PIF, or None where there is nothing to build
/// (tunnels and SR-IOV are not made on real hosts).
fn link_of(st: &State, pif: &str, depth: u8) -> Option<Link> {
    let row = st.get(&CLASS_PIF, pif)?;
    let device = row.read(P::DEVICE);
    let tag = row.read(P::VLAN);
    if tag >= 0 {
        // The untagged side of a VLAN: an 802.1Q link on the tagged PIF's.
        let vlan = row.read(P::VLAN_MASTER_OF);
        let tagged = st.read(vlan.as_str(), VL::TAGGED_PIF)?;
        let parent = if depth > 0 { link_of(st, tagged.as_str(), depth - 1)? } else { return None };
        let tag = u16::try_from(tag).ok()?;
        return Some(Link::Vlan {
            device: ifname(&format!("{}.{tag}", parent.device())),
            parent: Box::new(parent),
            tag,
        });
    }
    let bond = st
        .table(&CLASS_BOND)
        .iter()
        .find(|(_, b)| b.read(BO::MASTER).as_str() == pif)
        .map(|(r, b)| (r.clone(), b.clone()));
    if let Some((bond, brow)) = bond {
        let mut members: Vec<String> = st
            .table(&CLASS_PIF)
            .iter()
            .map(|(_, p)| p)
            .filter(|p| p.read(P::BOND_SLAVE_OF).as_str() == bond)
            .map(|p| p.read(P::DEVICE))
            .collect();
        members.sort();
        let mode = match brow.read(BO::MODE) {
            BondMode::ActiveBackup => backend::BondMode::ActiveBackup,
            BondMode::Lacp => backend::BondMode::Lacp,
            _ => backend::BondMode::SourceLoadBalance,
        };
        return Some(Link::Bond { device: ifname(&device), mode, members, props: brow.read(BO::PROPERTIES) });
    }
    row.read(P::PHYSICAL).then_some(Link::Nic { device })
}

/// The PIF `other_config` key that says its IP configuration was set
/// through the API (PIF.reconfigure_ip/_ipv6) and is applied to the host.
/// Without it the host's addresses are left as the machine has them: the
/// management PIF's first configuration is made up at first start, and a
/// host started on a laptop must not lose its network to it.
pub const HOST_IP_KEY: &str = "xapi-rs-host-ip";

/// "255.255.255.0" → 24; None for a mask that is not contiguous.
fn prefix_len(mask: &str) -> Option<u32> {
    let m = u32::from(mask.parse::<std::net::Ipv4Addr>().ok()?);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len)
}

/// The host's addresses on the PIF's bridge, when the API configured them.
fn host_ip_of(row: &Row) -> Option<HostIp> {
    if row.read(P::OTHER_CONFIG).get(HOST_IP_KEY).map(String::as_str) != Some("true") {
        return None;
    }
    let mut out = HostIp::default();
    if row.read(P::IP_CONFIGURATION_MODE) == IpConfigurationMode::Static {
        let (ip, mask) = (row.read(P::IP), row.read(P::NETMASK));
        match prefix_len(&mask) {
            Some(len) if !ip.is_empty() => out.addresses.push(format!("{ip}/{len}")),
            _ => tracing::warn!(ip, mask, "PIF address not applied: no address or a bad netmask"),
        }
        let gw = row.read(P::GATEWAY);
        if !gw.is_empty() {
            out.gateways.push(gw);
        }
    }
    if row.read(P::IPV6_CONFIGURATION_MODE) == Ipv6ConfigurationMode::Static {
        out.addresses.extend(row.read(P::IPV6).into_iter().filter(|a| a.contains('/')));
        let gw = row.read(P::IPV6_GATEWAY);
        if !gw.is_empty() {
            out.gateways.push(gw);
        }
    }
    Some(out)
}

fn switch_of(st: &State, pif: &str, row: &Row) -> Option<Switch> {
    let net = row.read(P::NETWORK);
    let bridge = st.read(net.as_str(), N::BRIDGE).filter(|b| !b.is_empty())?;
    let (ethtool, promiscuous) = crate::lifecycle::vif::device_settings(&row.read(P::OTHER_CONFIG));
    Some(Switch {
        bridge,
        mtu: row.read(P::MTU),
        uplink: link_of(st, pif, 2),
        ethtool,
        promiscuous,
        host_ip: host_ip_of(row),
    })
}

/// The switches `host` should have now.
pub fn plan(st: &State, host: &str) -> HostNetwork {
    let mut pifs: Vec<(&String, &Row)> = st
        .table(&CLASS_PIF)
        .iter()
        .filter(|(_, p)| p.read(P::HOST).as_str() == host && p.read(P::CURRENTLY_ATTACHED) && p.read(P::MANAGED))
        .map(|(r, p)| (r, &**p))
        .collect();
    pifs.sort_by_key(|(_, p)| p.read(P::DEVICE));
    HostNetwork { switches: pifs.into_iter().filter_map(|(r, p)| switch_of(st, r, p)).collect() }
}

/// Make this host's network what the database says. Calls are serialised,
/// each reading the database afresh, so the last one leaves the newest state.
pub async fn sync(s: &Server) -> std::result::Result<(), backend::BackendError> {
    let _one = s.netsync.lock().await;
    let want = plan(&s.db.read(), &s.host);
    s.backend.apply_network(&want).await
}

/// [`sync`] after an API call changed the network: its failure is the
/// call's (the database keeps the change; the next sync tries again).
pub async fn sync_for(ctx: &crate::Ctx) -> Result<()> {
    sync(&ctx.server).await.map_err(|e| {
        tracing::warn!("host network not applied: {e}");
        xenops::be(ctx, e)
    })
}

/// At start: the switches of plugged PIFs come back (after a reboot of the
/// machine, or a change made while xapid was down).
pub fn startup(s: &Server) {
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = sync(&s).await {
            tracing::warn!("host network at start: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::prefix_len;

    #[test]
    fn netmasks_become_prefix_lengths() {
        assert_eq!(prefix_len("255.255.255.0"), Some(24));
        assert_eq!(prefix_len("255.0.0.0"), Some(8));
        assert_eq!(prefix_len("255.255.255.255"), Some(32));
        assert_eq!(prefix_len("0.0.0.0"), Some(0));
        assert_eq!(prefix_len("255.0.255.0"), None);
        assert_eq!(prefix_len("nonsense"), None);
    }
}

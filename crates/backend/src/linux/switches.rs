//! Making the host's switches what the server wants ([`HostNetwork`]):
//! Linux bridges, with an uplink that is a NIC, a VLAN interface or a bond.
//! A reconcile, not a script: each step looks first and changes only what
//! differs, so applying the same plan twice changes nothing.
//!
//! Safety first: an interface that carries the host's own connectivity
//! (a global address or the default route, on it or on its master) is
//! never enslaved, bonded, released or given a new MTU, and a device we
//! made that carries it is never deleted; such a step is skipped with
//! [`BackendError::WouldCutHost`] while the rest of the plan goes on.
//! The one exception is explicit: a switch that carries the host's own
//! addresses ([`Switch::host_ip`], set by the server after a
//! `PIF.reconfigure_ip`) takes its NIC over, moving the addresses and
//! routes onto the bridge ([`addrs`]).

use super::addrs;
use super::cmd::{self, ip};
use super::links::{check_ifname, Host, Kind, MARK};
use crate::{BackendError, BondMode, HostNetwork, Link, Map, Result, Switch};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

/// Keep the first error (it is returned at the end), log the others, carry on.
fn keep(first: &mut Option<BackendError>, r: Result<()>) {
    if let Err(e) = r {
        if first.is_some() {
            tracing::warn!("host network: {e}");
        } else {
            *first = Some(e);
        }
    }
}

/// Linux's name for a bond mode.
pub fn bond_mode(mode: BondMode) -> &'static str {
    match mode {
        BondMode::ActiveBackup => "active-backup",
        // balance-slb has no Linux twin: adaptive load balancing also
        // spreads by source MAC and needs no switch support.
        BondMode::SourceLoadBalance => "balance-alb",
        BondMode::Lacp => "802.3ad",
    }
}

/// The bond options for `ip link add … type bond`, from xapi's properties,
/// as (ip's option name, value). Delays are rounded down to a multiple of
/// miimon, as the kernel does, so a re-apply sees what it asked for.
pub fn bond_options(mode: BondMode, props: &Map) -> Result<Vec<(&'static str, String)>> {
    let num = |k: &str, default: u32| -> Result<u32> {
        match props.get(k) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| BackendError::Network(format!("bond property {k}={v:?}"))),
        }
    };
    let miimon = num("miimon", 100)?;
    let round = |d: u32| d.checked_div(miimon).map_or(d, |n| n * miimon);
    let mut o = vec![
        ("miimon", miimon.to_string()),
        ("updelay", round(num("updelay", 0)?).to_string()),
        ("downdelay", round(num("downdelay", 0)?).to_string()),
    ];
    if mode == BondMode::Lacp {
        let rate = match props.get("lacp-time").map(String::as_str) {
            None | Some("slow") => "slow",
            Some("fast") => "fast",
            Some(v) => return Err(BackendError::Network(format!("bond property lacp-time={v:?}"))),
        };
        o.push(("lacp_rate", rate.into()));
    }
    if mode != BondMode::ActiveBackup {
        let default = if mode == BondMode::Lacp { "tcpudp_ports" } else { "src_mac" };
        let policy = match props.get("hashing_algorithm").map(String::as_str).unwrap_or(default) {
            "src_mac" => "layer2",
            "tcpudp_ports" => "layer3+4",
            v => return Err(BackendError::Network(format!("bond property hashing_algorithm={v:?}"))),
        };
        o.push(("xmit_hash_policy", policy.into()));
    }
    Ok(o)
}

/// ip's option name → the key `ip -d -j link` reports it under.
fn reported_as(opt: &str) -> &str {
    if opt == "lacp_rate" {
        "ad_lacp_rate"
    } else {
        opt
    }
}

/// Whether an existing bond already is what we want.
fn bond_matches(kind: &Kind, mode: &str, opts: &[(&'static str, String)]) -> bool {
    match kind {
        Kind::Bond { mode: m, opts: have } => {
            m == mode && opts.iter().all(|(k, v)| have.iter().any(|(hk, hv)| hk == reported_as(k) && hv == v))
        }
        _ => false,
    }
}

async fn set_up(dev: &str) -> Result<()> {
    ip(&["link", "set", "dev", dev, "up"]).await.map(drop)
}

/// The bridge, made (and marked as ours) when missing; up.
pub async fn ensure_bridge(host: &Host, name: &str) -> Result<()> {
    check_ifname(name)?;
    match host.get(name) {
        Some(l) if l.kind == Kind::Bridge => {
            if !l.up {
                set_up(name).await?;
            }
            Ok(())
        }
        Some(_) => Err(BackendError::Network(format!("{name} exists and is not a bridge"))),
        None => {
            tracing::info!(bridge = name, "creating bridge");
            ip(&["link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"]).await?;
            ip(&["link", "set", "dev", name, "alias", MARK]).await?;
            set_up(name).await
        }
    }
}

type Boxed<'a> = Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;

/// Make the chain of `link` exist; returns the device that joins the switch.
/// Member-level refusals (a bond member that carries the host) go to `errs`.
fn ensure_link<'a>(link: &'a Link, errs: &'a mut Option<BackendError>) -> Boxed<'a> {
    Box::pin(async move {
        let dev = link.device().to_string();
        check_ifname(&dev)?;
        match link {
            Link::Nic { device } => {
                let host = Host::read().await?;
                if host.get(device).is_none() {
                    return Err(BackendError::Network(format!("no interface {device} on this host")));
                }
            }
            Link::Vlan { device, parent, tag } => {
                let p = ensure_link(parent, errs).await?;
                let host = Host::read().await?;
                if host.get(&p).is_some_and(|l| !l.up) {
                    set_up(&p).await?;
                }
                let want = Kind::Vlan { parent: p.clone(), id: *tag };
                match host.get(device) {
                    Some(l) if l.kind == want => return Ok(dev),
                    Some(l) if l.ours => {
                        host.guard(device)?;
                        tracing::info!(device, "re-creating VLAN interface (parent or tag changed)");
                        ip(&["link", "del", "dev", device]).await?;
                    }
                    Some(_) => {
                        return Err(BackendError::Network(format!(
                            "{device} exists and is not VLAN {tag} on {p} (not made by xapi-rs: left alone)"
                        )))
                    }
                    None => {}
                }
                let tag = tag.to_string();
                ip(&["link", "add", "link", &p, "name", device, "type", "vlan", "id", &tag]).await?;
                ip(&["link", "set", "dev", device, "alias", MARK]).await?;
            }
            Link::Bond { device, mode, members, props } => {
                let mode_s = bond_mode(*mode);
                let opts = bond_options(*mode, props)?;
                let host = Host::read().await?;
                let mut create = true;
                if let Some(l) = host.get(device) {
                    if bond_matches(&l.kind, mode_s, &opts) || (!l.ours && matches!(l.kind, Kind::Bond { .. })) {
                        create = false;
                    } else if l.ours {
                        host.guard(device)?;
                        tracing::info!(device, "re-creating bond (mode or options changed)");
                        let old: Vec<String> = host.ports(device).iter().map(|p| p.name.clone()).collect();
                        ip(&["link", "del", "dev", device]).await?;
                        for m in old {
                            keep(errs, set_up(&m).await);
                        }
                    } else {
                        return Err(BackendError::Network(format!(
                            "{device} exists and is not a bond (not made by xapi-rs: left alone)"
                        )));
                    }
                }
                if create {
                    let mut args = vec!["link", "add", device.as_str(), "type", "bond", "mode", mode_s];
                    for (k, v) in &opts {
                        args.push(k);
                        args.push(v);
                    }
                    ip(&args).await?;
                    ip(&["link", "set", "dev", device, "alias", MARK]).await?;
                }
                let host = Host::read().await?;
                for m in members {
                    let r = async {
                        check_ifname(m)?;
                        let Some(l) = host.get(m) else {
                            return Err(BackendError::Network(format!("no interface {m} on this host")));
                        };
                        if l.master.as_deref() == Some(device.as_str()) {
                            return if l.up { Ok(()) } else { set_up(m).await };
                        }
                        host.guard(m)?;
                        ip(&["link", "set", "dev", m, "down"]).await?;
                        if l.master.is_some() {
                            ip(&["link", "set", "dev", m, "nomaster"]).await?;
                        }
                        ip(&["link", "set", "dev", m, "master", device]).await?;
                        set_up(m).await
                    }
                    .await;
                    keep(errs, r);
                }
                for p in host.ports(device) {
                    if !members.contains(&p.name) {
                        tracing::info!(bond = %device, member = %p.name, "releasing a former bond member");
                        let r = async {
                            ip(&["link", "set", "dev", &p.name, "nomaster"]).await?;
                            set_up(&p.name).await
                        }
                        .await;
                        keep(errs, r);
                    }
                }
            }
        }
        Ok(dev)
    })
}

/// `ethtool -K dev rx on tx off …`, when there is anything to set.
pub async fn ethtool(dev: &str, settings: &Map) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let mut args = vec!["-K", dev];
    for (k, v) in settings {
        let ok_key = matches!(k.as_str(), "rx" | "tx" | "sg" | "tso" | "ufo" | "gso" | "gro" | "lro");
        if !ok_key || !matches!(v.as_str(), "on" | "off") {
            return Err(BackendError::Network(format!("ethtool setting {k}={v} of {dev}")));
        }
        args.push(k);
        args.push(v);
    }
    cmd::run("ethtool", &args, None).await.map(drop)
}

async fn promisc(host: &Host, dev: &str, on: bool) -> Result<()> {
    match host.get(dev) {
        Some(l) if l.promisc == on => Ok(()),
        _ => ip(&["link", "set", "dev", dev, "promisc", if on { "on" } else { "off" }]).await.map(drop),
    }
}

/// One switch: its bridge, its uplink chain, the uplink enslaved, MTUs,
/// offloads and promiscuity.
async fn switch(sw: &Switch) -> Result<()> {
    let mut errs = None;
    let host = Host::read().await?;
    ensure_bridge(&host, &sw.bridge).await?;
    let mtu = sw.mtu.to_string();
    // A NIC that carries the host's own traffic (typically the management
    // NIC, whose address xapi would move onto the bridge) stays as it is and
    // the switch has no uplink: a warning, not an error, or every later
    // network change on this host would fail because of it.
    // Unless the server gave the switch the host's addresses (an explicit
    // PIF.reconfigure_ip): then they move from the NIC onto the bridge.
    let nic_carries_host = match &sw.uplink {
        Some(Link::Nic { device }) => {
            host.carries_host(device) && host.get(device).and_then(|l| l.master.as_deref()) != Some(&sw.bridge)
        }
        _ => false,
    };
    let moving = nic_carries_host && sw.host_ip.is_some();
    let nic_in_use = nic_carries_host && !moving;
    if nic_in_use {
        tracing::warn!(
            bridge = %sw.bridge,
            device = sw.uplink.as_ref().map(Link::device).unwrap_or_default(),
            "switch left without its uplink: the NIC carries the host's own connectivity"
        );
    }
    if let Some(up) = sw.uplink.as_ref().filter(|_| !nic_in_use) {
        let dev = ensure_link(up, &mut errs).await?;
        let host = Host::read().await?;
        let Some(l) = host.get(&dev).cloned() else {
            return Err(BackendError::Network(format!("{dev} vanished while being configured")));
        };
        if sw.mtu > 0 && l.mtu != sw.mtu {
            let r = match host.guard(&dev) {
                Ok(()) => ip(&["link", "set", "dev", &dev, "mtu", &mtu]).await.map(drop),
                Err(e) => Err(e),
            };
            keep(&mut errs, r);
        }
        let moved = l.master.as_deref() != Some(sw.bridge.as_str());
        if moved && moving {
            if let Some(want) = &sw.host_ip {
                let routes = addrs::start_move(&dev, &sw.bridge, want).await?;
                ip(&["link", "set", "dev", &dev, "master", &sw.bridge]).await?;
                keep(&mut errs, addrs::finish_move(&dev, &sw.bridge, &routes).await);
            }
        } else if moved {
            let r = match host.guard(&dev) {
                Ok(()) => ip(&["link", "set", "dev", &dev, "master", &sw.bridge]).await.map(drop),
                Err(e) => Err(e),
            };
            keep(&mut errs, r);
        }
        // Leaving a bond (the kernel releases a member on the move) takes
        // the device down, whatever it was before.
        if moved || !l.up {
            keep(&mut errs, set_up(&dev).await);
        }
        keep(&mut errs, ethtool(&dev, &sw.ethtool).await);
        keep(&mut errs, promisc(&host, &dev, sw.promiscuous).await);
    }
    let host = Host::read().await?;
    if sw.mtu > 0 && host.get(&sw.bridge).is_some_and(|b| b.mtu != sw.mtu) {
        keep(&mut errs, ip(&["link", "set", "dev", &sw.bridge, "mtu", &mtu]).await.map(drop));
    }
    if let Some(want) = &sw.host_ip {
        keep(&mut errs, addrs::reconcile(&sw.bridge, want).await);
    }
    errs.map_or(Ok(()), Err)
}

/// Every device name the plan uses: (bridges, VLAN and bond devices).
fn wanted(plan: &HostNetwork) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut bridges = BTreeSet::new();
    let mut devs = BTreeSet::new();
    for sw in &plan.switches {
        bridges.insert(sw.bridge.clone());
        let mut cur = sw.uplink.as_ref();
        while let Some(l) = cur {
            devs.insert(l.device().to_string());
            cur = match l {
                Link::Vlan { parent, .. } => Some(parent),
                _ => None,
            };
        }
    }
    (bridges, devs)
}

/// Apply the whole plan; the first error is returned after everything
/// else was done.
pub async fn apply(plan: &HostNetwork) -> Result<()> {
    let mut first = None;
    // Ports our bridges should no longer have (a former uplink), first, so
    // that they are free for the switch that wants them now.
    let host = Host::read().await?;
    for sw in &plan.switches {
        if !host.get(&sw.bridge).is_some_and(|b| b.ours && b.kind == Kind::Bridge) {
            continue;
        }
        let want = sw.uplink.as_ref().map(Link::device);
        for p in host.ports(&sw.bridge) {
            if p.kind == Kind::Tap || Some(p.name.as_str()) == want {
                continue;
            }
            tracing::info!(bridge = %sw.bridge, port = %p.name, "releasing a former uplink");
            let r = match host.guard(&p.name) {
                Ok(()) => ip(&["link", "set", "dev", &p.name, "nomaster"]).await.map(drop),
                Err(e) => Err(e),
            };
            keep(&mut first, r);
        }
    }
    for sw in &plan.switches {
        keep(&mut first, switch(sw).await);
    }
    keep(&mut first, collect(Some(plan)).await);
    first.map_or(Ok(()), Err)
}

/// Remove what we made and `plan` no longer wants: bridges without guest
/// ports, then VLANs and bonds that no kept bridge uses (bond members are
/// set up again). With no plan (none applied yet since start), only
/// bridges with no port at all go.
pub async fn collect(plan: Option<&HostNetwork>) -> Result<()> {
    let mut first = None;
    let (bridges, devs) = plan.map(wanted).unwrap_or_default();
    let host = Host::read().await?;
    for b in host.links.iter().filter(|l| l.ours && l.kind == Kind::Bridge && !bridges.contains(&l.name)) {
        let ports = host.ports(&b.name);
        if host.has_taps(&b.name) || (plan.is_none() && !ports.is_empty()) {
            continue;
        }
        let r = match host.guard(&b.name) {
            Ok(()) => {
                tracing::info!(bridge = %b.name, "removing a bridge no longer wanted");
                ip(&["link", "del", "dev", &b.name]).await.map(drop)
            }
            Err(e) => Err(e),
        };
        keep(&mut first, r);
    }
    if plan.is_none() {
        return first.map_or(Ok(()), Err);
    }
    // VLANs before bonds: a VLAN may sit on a bond.
    for pass in [0, 1] {
        let host = Host::read().await?;
        for l in &host.links {
            let kind_ok = matches!((&l.kind, pass), (Kind::Vlan { .. }, 0) | (Kind::Bond { .. }, 1));
            if !l.ours || !kind_ok || devs.contains(&l.name) {
                continue;
            }
            // Still the uplink of a bridge kept for its guests.
            if l.master.as_deref().is_some_and(|m| host.get(m).is_some()) {
                continue;
            }
            let members: Vec<String> = host.ports(&l.name).iter().map(|p| p.name.clone()).collect();
            let r = match host.guard(&l.name) {
                Ok(()) => {
                    tracing::info!(device = %l.name, "removing an interface no longer wanted");
                    ip(&["link", "del", "dev", &l.name]).await.map(drop)
                }
                Err(e) => Err(e),
            };
            let removed = r.is_ok();
            keep(&mut first, r);
            if removed {
                for m in members {
                    keep(&mut first, set_up(&m).await);
                }
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Map {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn bond_modes_and_options() {
        assert_eq!(bond_mode(BondMode::ActiveBackup), "active-backup");
        assert_eq!(bond_mode(BondMode::SourceLoadBalance), "balance-alb");
        assert_eq!(bond_mode(BondMode::Lacp), "802.3ad");
        let o = bond_options(BondMode::ActiveBackup, &Map::new()).unwrap();
        assert_eq!(o, [("miimon", "100".into()), ("updelay", "0".into()), ("downdelay", "0".into())]);
        let p = props(&[
            ("miimon", "50"),
            ("updelay", "120"),
            ("lacp-time", "fast"),
            ("hashing_algorithm", "src_mac"),
            ("x", "y"),
        ]);
        let o = bond_options(BondMode::Lacp, &p).unwrap();
        assert_eq!(
            o,
            [
                ("miimon", "50".into()),
                ("updelay", "100".into()),
                ("downdelay", "0".into()),
                ("lacp_rate", "fast".into()),
                ("xmit_hash_policy", "layer2".into())
            ]
        );
        let o = bond_options(BondMode::SourceLoadBalance, &props(&[("hashing_algorithm", "tcpudp_ports")])).unwrap();
        assert_eq!(o.last().unwrap(), &("xmit_hash_policy", "layer3+4".to_string()));
        assert_eq!(bond_options(BondMode::Lacp, &Map::new()).unwrap().last().unwrap().1, "layer3+4");
        assert!(bond_options(BondMode::Lacp, &props(&[("miimon", "-1")])).is_err());
        assert!(bond_options(BondMode::Lacp, &props(&[("lacp-time", "sometimes")])).is_err());
        assert!(bond_options(BondMode::Lacp, &props(&[("hashing_algorithm", "dst_ip")])).is_err());
    }

    #[test]
    fn bonds_compare_with_what_the_kernel_reports() {
        let opts = bond_options(BondMode::Lacp, &Map::new()).unwrap();
        let have = |rate: &str| Kind::Bond {
            mode: "802.3ad".into(),
            opts: vec![
                ("miimon".into(), "100".into()),
                ("updelay".into(), "0".into()),
                ("downdelay".into(), "0".into()),
                ("ad_lacp_rate".into(), rate.into()),
                ("xmit_hash_policy".into(), "layer3+4".into()),
            ],
        };
        assert!(bond_matches(&have("slow"), "802.3ad", &opts));
        assert!(!bond_matches(&have("fast"), "802.3ad", &opts));
        assert!(!bond_matches(&have("slow"), "active-backup", &opts));
        assert!(!bond_matches(&Kind::Bridge, "802.3ad", &opts));
    }

    #[test]
    fn wanted_devices_follow_the_chain() {
        let bond = Link::Bond {
            device: "bond0".into(),
            mode: BondMode::ActiveBackup,
            members: vec!["eth0".into(), "eth1".into()],
            props: Map::new(),
        };
        let plan = HostNetwork {
            switches: vec![
                Switch {
                    bridge: "xapi0".into(),
                    mtu: 1500,
                    uplink: Some(bond.clone()),
                    ethtool: Map::new(),
                    promiscuous: false,
                    host_ip: None,
                },
                Switch {
                    bridge: "xapi1".into(),
                    mtu: 1500,
                    uplink: Some(Link::Vlan { device: "bond0.5".into(), parent: Box::new(bond), tag: 5 }),
                    ethtool: Map::new(),
                    promiscuous: false,
                    host_ip: None,
                },
                Switch {
                    bridge: "xapi2".into(),
                    mtu: 1500,
                    uplink: None,
                    ethtool: Map::new(),
                    promiscuous: false,
                    host_ip: None,
                },
            ],
        };
        let (b, d) = wanted(&plan);
        assert_eq!(b.into_iter().collect::<Vec<_>>(), ["xapi0", "xapi1", "xapi2"]);
        assert_eq!(d.into_iter().collect::<Vec<_>>(), ["bond0", "bond0.5"]);
    }
}

//! The host's own addresses on a bridge (a PIF's IP configuration, as xapi
//! puts it on the PIF's bridge), and their move off a NIC that held them
//! when that NIC becomes the bridge's uplink: the management NIC of a host
//! installed without xapi-rs carries the address itself, and XenServer's
//! layout has it on xenbr0 with the NIC enslaved.

use super::cmd::ip;
use super::links::parse_json;
use crate::{HostIp, Result};

/// A route that leaves through a device via a gateway (what a move must
/// make again on the bridge; routes without a gateway follow the
/// addresses by themselves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: String,
    pub gateway: String,
    pub metric: Option<u64>,
}

fn is_v6(addr: &str) -> bool {
    addr.contains(':')
}

/// Global addresses with their prefix ("10.0.0.2/24") in `ip -j addr show dev X`.
pub fn parse_global_addrs(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for l in parse_json("ip -j addr", text)? {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            if a["scope"] != "global" {
                continue;
            }
            if let (Some(local), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64()) {
                out.push(format!("{local}/{len}"));
            }
        }
    }
    Ok(out)
}

/// Routes with a gateway in `ip -j route show dev X`.
pub fn parse_gateway_routes(text: &str) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for r in parse_json("ip -j route", text)? {
        let (Some(dst), Some(gw)) = (r["dst"].as_str(), r["gateway"].as_str()) else { continue };
        out.push(Route { dst: dst.to_string(), gateway: gw.to_string(), metric: r["metric"].as_u64() });
    }
    Ok(out)
}

/// Addresses are compared as the kernel prints them (IPv6 compressed,
/// lower case), so "FD00:0::2/64" and "fd00::2/64" are one address.
fn canonical(cidr: &str) -> String {
    let (a, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    let a = a.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).unwrap_or_else(|_| a.to_lowercase());
    format!("{a}/{len}")
}

pub async fn global_addrs(dev: &str) -> Result<Vec<String>> {
    parse_global_addrs(&ip(&["-j", "addr", "show", "dev", dev]).await?)
}

async fn gateway_routes(dev: &str) -> Result<Vec<Route>> {
    let mut v = parse_gateway_routes(&ip(&["-j", "-4", "route", "show", "dev", dev]).await?)?;
    v.extend(parse_gateway_routes(&ip(&["-j", "-6", "route", "show", "dev", dev]).await?)?);
    Ok(v)
}

async fn route_via(route: &Route, bridge: &str) -> Result<()> {
    let fam = if is_v6(&route.gateway) { "-6" } else { "-4" };
    let metric = route.metric.map(|m| m.to_string());
    let mut args = vec![fam, "route", "replace", route.dst.as_str(), "via", route.gateway.as_str(), "dev", bridge];
    if let Some(m) = &metric {
        args.extend(["metric", m.as_str()]);
    }
    ip(&args).await.map(drop)
}

/// Before `nic` joins `bridge` while it holds the host's addresses: the
/// bridge gets `want`'s addresses, and the NIC's gateway routes are
/// returned so that [`finish_move`] can make them again on the bridge.
pub async fn start_move(nic: &str, bridge: &str, want: &HostIp) -> Result<Vec<Route>> {
    let routes = gateway_routes(nic).await?;
    tracing::info!(nic, bridge, addresses = ?want.addresses, "moving the host's addresses onto the bridge");
    add_missing(bridge, &global_addrs(bridge).await?, want).await?;
    Ok(routes)
}

/// Add `want`'s addresses that `bridge` does not have yet (`have`).
async fn add_missing(bridge: &str, have: &[String], want: &HostIp) -> Result<()> {
    let have: Vec<String> = have.iter().map(|a| canonical(a)).collect();
    for a in &want.addresses {
        if !have.contains(&canonical(a)) {
            ip(&["addr", "add", a, "dev", bridge]).await?;
        }
    }
    Ok(())
}

/// After the NIC joined the bridge: its own global addresses go (the
/// bridge has them now) and its gateway routes are made through the bridge.
pub async fn finish_move(nic: &str, bridge: &str, routes: &[Route]) -> Result<()> {
    ip(&["addr", "flush", "dev", nic, "scope", "global"]).await?;
    let mut first = Ok(());
    for r in routes {
        if let Err(e) = route_via(r, bridge).await {
            tracing::warn!(nic, bridge, route = ?r, "a route of the moved NIC was not made again: {e}");
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// The bridge carries exactly `want`'s global addresses, and its default
/// routes go through `want`'s gateways.
pub async fn reconcile(bridge: &str, want: &HostIp) -> Result<()> {
    let have = global_addrs(bridge).await?;
    add_missing(bridge, &have, want).await?;
    let wanted: Vec<String> = want.addresses.iter().map(|a| canonical(a)).collect();
    for h in &have {
        if !wanted.contains(&canonical(h)) {
            tracing::info!(bridge, address = %h, "removing an address the PIF no longer has");
            ip(&["addr", "del", h, "dev", bridge]).await?;
        }
    }
    for gw in &want.gateways {
        let r = Route { dst: "default".into(), gateway: gw.clone(), metric: None };
        route_via(&r, bridge).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_routes_are_parsed() {
        let addrs = r#"[{"ifname":"eth0","addr_info":[
            {"family":"inet","local":"10.70.0.1","prefixlen":24,"scope":"global"},
            {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},
            {"family":"inet6","local":"fd00::2","prefixlen":64,"scope":"global"}]}]"#;
        assert_eq!(parse_global_addrs(addrs).unwrap(), ["10.70.0.1/24", "fd00::2/64"]);
        assert!(parse_global_addrs("").unwrap().is_empty());
        let routes = r#"[{"dst":"default","gateway":"10.70.0.254","dev":"eth0","metric":100},
            {"dst":"10.70.0.0/24","dev":"eth0","protocol":"kernel","scope":"link"},
            {"dst":"192.168.9.0/24","gateway":"10.70.0.9","dev":"eth0"}]"#;
        let r = parse_gateway_routes(routes).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], Route { dst: "default".into(), gateway: "10.70.0.254".into(), metric: Some(100) });
        assert_eq!(r[1].metric, None);
        assert!(parse_gateway_routes("{").is_err());
    }

    #[test]
    fn addresses_compare_as_the_kernel_prints_them() {
        assert_eq!(canonical("FD00:0::2/64"), "fd00::2/64");
        assert_eq!(canonical("10.0.0.1/8"), "10.0.0.1/8");
        assert_eq!(canonical("junk"), "junk/");
    }
}

//! What the host's links are now, read with `ip -j` (iproute2's JSON) and
//! parsed into the few facts the reconcile needs.

use super::cmd;
use crate::{BackendError, Result};
use serde_json::Value;
use std::collections::BTreeSet;

/// The ifalias that marks a link as made by us: a restarted server may
/// remove these, and never anything else.
pub const MARK: &str = "xapi-rs";

/// Linux's limit on interface names (IFNAMSIZ - 1).
pub const IFNAMSIZ: usize = 15;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    Bridge,
    Vlan {
        parent: String,
        id: u16,
    },
    Bond {
        mode: String,
        /// The options we set, as the kernel reports them (`miimon`, …).
        opts: Vec<(String, String)>,
    },
    Tap,
    #[default]
    Other,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    pub name: String,
    pub kind: Kind,
    pub master: Option<String>,
    pub mtu: i64,
    pub up: bool,
    pub promisc: bool,
    pub mac: String,
    pub ours: bool,
}

/// Whether `name` can be an interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAMSIZ
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

pub fn check_ifname(name: &str) -> Result<()> {
    if valid_ifname(name) {
        Ok(())
    } else {
        Err(BackendError::Network(format!("{name:?} is not a valid interface name")))
    }
}

pub(super) fn parse_json(what: &str, text: &str) -> Result<Vec<Value>> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) | Err(_) => {
            let e = BackendError::Network(format!("{what}: unexpected output"));
            tracing::warn!("{e}: {}", text.chars().take(200).collect::<String>());
            Err(e)
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The bond options we compare, as `ip -d -j` names them.
pub const BOND_OPTS: &[&str] = &["miimon", "updelay", "downdelay", "ad_lacp_rate", "xmit_hash_policy"];

/// `ip -j -d link show`'s array, parsed.
pub fn parse_links(text: &str) -> Result<Vec<LinkState>> {
    let mut out = Vec::new();
    for l in parse_json("ip -j -d link show", text)? {
        let name = s(&l, "ifname");
        if name.is_empty() {
            continue;
        }
        let info = &l["linkinfo"];
        let data = &info["info_data"];
        let kind = match info["info_kind"].as_str() {
            Some("bridge") => Kind::Bridge,
            Some("vlan") => Kind::Vlan { parent: s(&l, "link"), id: data["id"].as_u64().unwrap_or(0) as u16 },
            Some("bond") => Kind::Bond {
                mode: s(data, "mode"),
                opts: BOND_OPTS.iter().map(|k| (k.to_string(), s(data, k))).collect(),
            },
            Some("tun") => Kind::Tap,
            _ => Kind::Other,
        };
        let flags: Vec<&str> =
            l["flags"].as_array().map(|f| f.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        out.push(LinkState {
            master: Some(s(&l, "master")).filter(|m| !m.is_empty()),
            mtu: l["mtu"].as_i64().unwrap_or(0),
            up: flags.contains(&"UP"),
            promisc: l["promiscuity"].as_i64().is_some_and(|p| p > 0) && flags.contains(&"PROMISC"),
            mac: s(&l, "address").to_lowercase(),
            ours: s(&l, "ifalias") == MARK,
            kind,
            name,
        });
    }
    Ok(out)
}

/// Interfaces with a global-scope address (`ip -j addr`).
pub fn parse_addressed(text: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for l in parse_json("ip -j addr", text)? {
        let global = l["addr_info"].as_array().is_some_and(|a| a.iter().any(|x| x["scope"] == "global"));
        if global {
            out.insert(s(&l, "ifname"));
        }
    }
    Ok(out)
}

/// Interfaces a default route leaves through (`ip -j route show default`).
pub fn parse_route_devs(text: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for r in parse_json("ip -j route", text)? {
        out.insert(s(&r, "dev"));
        for h in r["nexthops"].as_array().into_iter().flatten() {
            out.insert(s(h, "dev"));
        }
    }
    out.remove("");
    Ok(out)
}

/// A snapshot of the host's links and which of them carry its own traffic.
#[derive(Clone, Debug, Default)]
pub struct Host {
    pub links: Vec<LinkState>,
    /// Devices with a global address or a default route.
    pub vital: BTreeSet<String>,
}

impl Host {
    pub async fn read() -> Result<Host> {
        let links = parse_links(&cmd::ip(&["-j", "-d", "link", "show"]).await?)?;
        let mut vital = parse_addressed(&cmd::ip(&["-j", "addr", "show"]).await?)?;
        vital.extend(parse_route_devs(&cmd::ip(&["-j", "-4", "route", "show", "default"]).await?)?);
        vital.extend(parse_route_devs(&cmd::ip(&["-j", "-6", "route", "show", "default"]).await?)?);
        Ok(Host { links, vital })
    }

    pub fn get(&self, name: &str) -> Option<&LinkState> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The links enslaved to `master`.
    pub fn ports(&self, master: &str) -> Vec<&LinkState> {
        self.links.iter().filter(|l| l.master.as_deref() == Some(master)).collect()
    }

    pub fn has_taps(&self, master: &str) -> bool {
        self.ports(master).iter().any(|l| l.kind == Kind::Tap)
    }

    /// Whether changing `dev` could cut the host off: it, or a master above
    /// it (a bridge or bond holding the address), carries an address or
    /// the default route.
    pub fn carries_host(&self, dev: &str) -> bool {
        let mut cur = Some(dev.to_string());
        let mut hops = 0;
        while let Some(d) = cur {
            if self.vital.contains(&d) {
                return true;
            }
            hops += 1;
            if hops > 8 {
                break;
            }
            cur = self.get(&d).and_then(|l| l.master.clone());
        }
        false
    }

    /// [`BackendError::WouldCutHost`] when [`Host::carries_host`].
    pub fn guard(&self, dev: &str) -> Result<()> {
        if self.carries_host(dev) {
            let e = BackendError::WouldCutHost { device: dev.to_string() };
            tracing::warn!("{e}");
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"address":"00:00:00:00:00:00"},
      {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","UP","LOWER_UP"],"mtu":1500,"master":"xenbr0","address":"52:54:00:AA:BB:CC","promiscuity":1},
      {"ifindex":3,"ifname":"xenbr0","flags":["UP"],"mtu":1500,"address":"52:54:00:aa:bb:cc","ifalias":"xapi-rs","linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}}},
      {"ifindex":4,"ifname":"eth0.5","link":"eth0","flags":["UP"],"mtu":1500,"address":"52:54:00:aa:bb:cc","ifalias":"xapi-rs","linkinfo":{"info_kind":"vlan","info_data":{"protocol":"802.1Q","id":5}}},
      {"ifindex":5,"ifname":"bond0","flags":["MASTER","UP"],"mtu":9000,"address":"02:00:00:00:00:01","linkinfo":{"info_kind":"bond","info_data":{"mode":"802.3ad","miimon":100,"updelay":0,"downdelay":0,"ad_lacp_rate":"fast","xmit_hash_policy":"layer3+4"}}},
      {"ifindex":6,"ifname":"vif3.0","flags":["UP","PROMISC"],"promiscuity":1,"mtu":1500,"master":"xenbr0","address":"fe:00:00:00:00:01","linkinfo":{"info_kind":"tun","info_data":{"type":"tap"}}}
    ]"#;

    #[test]
    fn links_are_parsed() {
        let l = parse_links(LINKS).unwrap();
        assert_eq!(l.len(), 6);
        assert_eq!(l[1].master.as_deref(), Some("xenbr0"));
        assert_eq!(l[1].mac, "52:54:00:aa:bb:cc");
        assert!(!l[1].ours && l[2].ours && l[2].kind == Kind::Bridge);
        assert_eq!(l[3].kind, Kind::Vlan { parent: "eth0".into(), id: 5 });
        match &l[4].kind {
            Kind::Bond { mode, opts } => {
                assert_eq!(mode, "802.3ad");
                assert!(opts.contains(&("miimon".into(), "100".into())));
                assert!(opts.contains(&("xmit_hash_policy".into(), "layer3+4".into())));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(l[5].kind, Kind::Tap);
        assert!(l[5].promisc && l[5].up);
        let h = Host { links: l, vital: BTreeSet::new() };
        assert!(h.has_taps("xenbr0"));
        assert_eq!(h.ports("xenbr0").len(), 2);
        assert!(parse_links("").unwrap().is_empty());
        assert!(parse_links("{").is_err());
    }

    #[test]
    fn vital_devices() {
        let addrs = r#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","scope":"host"}]},
          {"ifname":"xenbr0","addr_info":[{"family":"inet","local":"10.0.0.2","scope":"global"}]},
          {"ifname":"eth1","addr_info":[{"family":"inet6","local":"fe80::1","scope":"link"}]}]"#;
        let a = parse_addressed(addrs).unwrap();
        assert_eq!(a.into_iter().collect::<Vec<_>>(), ["xenbr0"]);
        let routes = r#"[{"dst":"default","gateway":"10.0.0.1","dev":"wlan0"},
          {"dst":"default","nexthops":[{"gateway":"10.0.0.1","dev":"eth2"},{"gateway":"10.0.1.1","dev":"eth3"}]}]"#;
        let r = parse_route_devs(routes).unwrap();
        assert_eq!(r.into_iter().collect::<Vec<_>>(), ["eth2", "eth3", "wlan0"]);
        let mut h = Host { links: parse_links(LINKS).unwrap(), vital: BTreeSet::new() };
        h.vital.insert("xenbr0".into());
        // eth0 is a port of the bridge holding the address.
        assert!(h.carries_host("eth0") && h.carries_host("xenbr0"));
        assert!(matches!(h.guard("eth0"), Err(BackendError::WouldCutHost { device }) if device == "eth0"));
        assert!(!h.carries_host("bond0") && h.guard("eth9").is_ok());
    }

    #[test]
    fn interface_names() {
        assert!(valid_ifname("vif123.4") && valid_ifname("xenbr0") && valid_ifname("123456789012345"));
        assert!(!valid_ifname("1234567890123456") && !valid_ifname("") && !valid_ifname("a b"));
        assert!(!valid_ifname("a/b") && !valid_ifname("a:b") && !valid_ifname(".."));
    }
}

//! VIF locking with nftables: one `bridge xapi_rs` table whose base chains
//! (prerouting: frames from a port; postrouting: frames to a port) jump
//! through a verdict map keyed by interface name to a chain per tap. A
//! change is one `nft -f -` script, applied atomically, and touches only
//! that tap's chains and map elements, so guests never see each other's
//! rules come and go.

use super::cmd;
use crate::{BackendError, Locking, Result};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};

pub const TABLE: &str = "xapi_rs";

/// The table, its maps and base chains (idempotent: `add` of what exists
/// is no change). The base rules are re-made (flush + add) only with
/// `base_rules`, so repeated scripts do not stack copies of them.
pub fn preamble(base_rules: bool) -> String {
    let t = format!("bridge {TABLE}");
    let mut s = format!("add table {t}\n");
    for (map, chain, hook, key) in
        [("ports_in", "prerouting", "prerouting", "iifname"), ("ports_out", "postrouting", "postrouting", "oifname")]
    {
        let _ = writeln!(s, "add map {t} {map} {{ type ifname : verdict; }}");
        let _ = writeln!(s, "add chain {t} {chain} {{ type filter hook {hook} priority 0; policy accept; }}");
        if base_rules {
            let _ = writeln!(s, "flush chain {t} {chain}");
            let _ = writeln!(s, "add rule {t} {chain} {key} vmap @{map}");
        }
    }
    s
}

fn chain(dir: &str, tap: &str) -> String {
    format!("{dir}-{tap}")
}

/// Remove whatever `tap` had: each element and chain is first made to
/// exist, so the deletes cannot fail on a tap that had none.
fn clear(s: &mut String, tap: &str) {
    let t = format!("bridge {TABLE}");
    for (dir, map) in [("in", "ports_in"), ("out", "ports_out")] {
        let c = chain(dir, tap);
        let _ = writeln!(s, "add chain {t} {c}");
        let _ = writeln!(s, "add element {t} {map} {{ \"{tap}\" : jump {c} }}");
        let _ = writeln!(s, "delete element {t} {map} {{ \"{tap}\" }}");
        let _ = writeln!(s, "delete chain {t} {c}");
    }
}

fn set<T: ToString>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", v.join(", "))
}

/// Checked addresses: a malformed one is an error, never script text.
fn addrs<T: std::str::FromStr>(list: &[String], what: &str) -> Result<Vec<T>> {
    list.iter()
        .map(|a| a.trim().parse::<T>().map_err(|_| BackendError::Network(format!("{a:?} is not an {what} address"))))
        .collect()
}

/// The rules of each chain `tap` needs under `locking`: (direction, rules).
pub fn rules(mac: &str, locking: &Locking) -> Result<Vec<(&'static str, Vec<String>)>> {
    Ok(match locking {
        Locking::Unlocked => vec![],
        Locking::Disabled => vec![("in", vec!["drop".into()]), ("out", vec!["drop".into()])],
        Locking::Locked { ipv4, ipv6 } => {
            let v4: Vec<Ipv4Addr> = addrs(ipv4, "IPv4")?;
            let v6: Vec<Ipv6Addr> = addrs(ipv6, "IPv6")?;
            let mut r = vec![format!("ether saddr != {mac} drop")];
            if !v4.is_empty() {
                r.push(format!("arp saddr ether {mac} arp saddr ip {} accept", set(&v4)));
            }
            r.push("ether type arp drop".into());
            if !v4.is_empty() {
                r.push(format!("ip saddr {} accept", set(&v4)));
            }
            // DHCP discovery, before the guest has an address.
            r.push("ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept".into());
            if !v6.is_empty() {
                r.push(format!("ip6 saddr {} accept", set(&v6)));
            }
            // Neighbour discovery from link-local addresses, and duplicate
            // address detection (from ::, with its MLD report).
            r.push(
                "ip6 saddr { fe80::/10, :: } icmpv6 type { nd-router-solicit, nd-neighbor-solicit, \
                 nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept"
                    .into(),
            );
            // Every other ethertype (VLAN tags included).
            r.push("drop".into());
            vec![("in", r)]
        }
    })
}

/// The script that gives `tap` (guest MAC `mac`) the rules of `locking`,
/// replacing what it had.
pub fn script(tap: &str, mac: &str, locking: &Locking, base_rules: bool) -> Result<String> {
    super::links::check_ifname(tap)?;
    let mac = mac.to_lowercase();
    let ok_mac =
        mac.split(':').count() == 6 && mac.split(':').all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok_mac {
        return Err(BackendError::Network(format!("{mac:?} is not a MAC address")));
    }
    let t = format!("bridge {TABLE}");
    let mut s = preamble(base_rules);
    clear(&mut s, tap);
    for (dir, rules) in rules(&mac, locking)? {
        let c = chain(dir, tap);
        let map = if dir == "in" { "ports_in" } else { "ports_out" };
        let _ = writeln!(s, "add chain {t} {c}");
        for r in rules {
            let _ = writeln!(s, "add rule {t} {c} {r}");
        }
        let _ = writeln!(s, "add element {t} {map} {{ \"{tap}\" : jump {c} }}");
    }
    Ok(s)
}

/// Whether this process has made the base rules (once per process: later
/// scripts only touch their own tap).
static BASE_READY: AtomicBool = AtomicBool::new(false);

/// Give `tap` the rules of `locking`, live. Without nft, only "unlocked"
/// (no rules) can be honoured.
pub async fn apply(tap: &str, mac: &str, locking: &Locking) -> Result<()> {
    let base = !BASE_READY.load(Ordering::SeqCst);
    let text = script(tap, mac, locking, base)?;
    match cmd::try_run("nft", &["-f", "-"], Some(&text)).await {
        Ok(_) => {
            BASE_READY.store(true, Ordering::SeqCst);
            Ok(())
        }
        Err(Ok(cmd::Missing)) if *locking == Locking::Unlocked => {
            tracing::debug!(tap, "nft is not installed: no locking rules to remove");
            Ok(())
        }
        Err(Ok(cmd::Missing)) => {
            let e = BackendError::Network(format!("VIF locking of {tap} needs nft (install nftables)"));
            tracing::warn!("{e}");
            Err(e)
        }
        Err(Err(e)) => Err(e),
    }
}

/// Drop `tap`'s rules (its NIC is gone or unplugged).
pub async fn remove(tap: &str) -> Result<()> {
    // Any MAC does for removal: no rule is written.
    apply(tap, "00:00:00:00:00:00", &Locking::Unlocked).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlocked_only_clears() {
        let s = script("vif3.0", "02:00:00:00:00:01", &Locking::Unlocked, true).unwrap();
        assert!(s.starts_with("add table bridge xapi_rs\n"));
        assert!(s.contains(
            "add chain bridge xapi_rs prerouting { type filter hook prerouting priority 0; policy accept; }"
        ));
        assert!(s.contains(
            "flush chain bridge xapi_rs prerouting\nadd rule bridge xapi_rs prerouting iifname vmap @ports_in\n"
        ));
        assert!(s.contains("add rule bridge xapi_rs postrouting oifname vmap @ports_out\n"));
        // Made to exist, then deleted: works whether or not it was there.
        assert!(
            s.ends_with(
                "add chain bridge xapi_rs out-vif3.0\n\
             add element bridge xapi_rs ports_out { \"vif3.0\" : jump out-vif3.0 }\n\
             delete element bridge xapi_rs ports_out { \"vif3.0\" }\n\
             delete chain bridge xapi_rs out-vif3.0\n"
            ),
            "{s}"
        );
        // Without the base rules, nothing but the tap's own objects changes.
        let s = script("vif3.0", "02:00:00:00:00:01", &Locking::Unlocked, false).unwrap();
        assert!(!s.contains("flush") && !s.contains("vmap"));
    }

    #[test]
    fn disabled_drops_both_ways() {
        let s = script("vif3.1", "02:00:00:00:00:01", &Locking::Disabled, false).unwrap();
        assert!(
            s.ends_with(
                "add chain bridge xapi_rs in-vif3.1\n\
             add rule bridge xapi_rs in-vif3.1 drop\n\
             add element bridge xapi_rs ports_in { \"vif3.1\" : jump in-vif3.1 }\n\
             add chain bridge xapi_rs out-vif3.1\n\
             add rule bridge xapi_rs out-vif3.1 drop\n\
             add element bridge xapi_rs ports_out { \"vif3.1\" : jump out-vif3.1 }\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn locked_allows_its_addresses_only() {
        let l = Locking::Locked { ipv4: vec!["10.0.0.5".into(), "10.0.0.6".into()], ipv6: vec!["2001:db8::5".into()] };
        let s = script("vif3.0", "02:AA:00:00:00:01", &l, false).unwrap();
        let rules: Vec<&str> = s.lines().filter_map(|l| l.strip_prefix("add rule bridge xapi_rs in-vif3.0 ")).collect();
        assert_eq!(
            rules,
            [
                "ether saddr != 02:aa:00:00:00:01 drop",
                "arp saddr ether 02:aa:00:00:00:01 arp saddr ip { 10.0.0.5, 10.0.0.6 } accept",
                "ether type arp drop",
                "ip saddr { 10.0.0.5, 10.0.0.6 } accept",
                "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
                "ip6 saddr { 2001:db8::5 } accept",
                "ip6 saddr { fe80::/10, :: } icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept",
                "drop",
            ]
        );
        assert!(s.contains("add element bridge xapi_rs ports_in { \"vif3.0\" : jump in-vif3.0 }"));
        // Nothing filtered towards the guest: its out chain is only cleared.
        assert!(!s.contains("add rule bridge xapi_rs out-vif3.0"));
        assert!(s.contains("delete chain bridge xapi_rs out-vif3.0\n"));
        // No addresses: DHCP and ND only.
        let s = script("vif3.0", "02:aa:00:00:00:01", &Locking::Locked { ipv4: vec![], ipv6: vec![] }, false).unwrap();
        assert!(!s.contains("arp saddr ip") && !s.contains("ip saddr {") && s.contains("ether type arp drop"));
    }

    #[test]
    fn bad_input_is_refused_not_scripted() {
        let l = Locking::Locked { ipv4: vec!["10.0.0.5; flush ruleset".into()], ipv6: vec![] };
        assert!(matches!(script("vif3.0", "02:00:00:00:00:01", &l, false), Err(BackendError::Network(_))));
        let l = Locking::Locked { ipv4: vec![], ipv6: vec!["10.0.0.1".into()] };
        assert!(script("vif3.0", "02:00:00:00:00:01", &l, false).is_err());
        assert!(script("vif3.0", "02:00:00:00:00:1", &Locking::Disabled, false).is_err());
        assert!(script("a b", "02:00:00:00:00:01", &Locking::Disabled, false).is_err());
    }
}

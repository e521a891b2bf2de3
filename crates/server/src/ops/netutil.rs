//! Shared pieces of the network classes: address, CIDR and MAC checks with
//! xapi's error codes, licence checks, and small ref and set helpers.

use crate::{ApiError, Result};
use model::schema::CLASS_POOL;
use model::types::fields;
use model::{Row, Value};
use std::net::{Ipv4Addr, Ipv6Addr};
use store::Txn;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    V4,
    V6,
}

pub fn is_null(r: &str) -> bool {
    r.is_empty() || r == model::NULL_REF
}

pub fn strs(items: &[String]) -> Value {
    Value::Array(items.iter().map(|x| Value::from(x.as_str())).collect())
}

pub fn is_ip(f: Family, a: &str) -> bool {
    match f {
        Family::V4 => a.parse::<Ipv4Addr>().is_ok(),
        Family::V6 => a.parse::<Ipv6Addr>().is_ok(),
    }
}

/// `address/prefix` as xapi's `parse_cidr` reads it (`%s@/%d`: the prefix is
/// the leading integer after the first slash).
pub fn parse_cidr(f: Family, cidr: &str) -> Option<(String, i64)> {
    let (addr, rest) = cidr.split_once('/')?;
    let sign_len = usize::from(rest.starts_with(['-', '+']));
    let digits = rest[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let prefix: i64 = rest[..sign_len + digits].parse().ok()?;
    let max = if f == Family::V4 { 32 } else { 128 };
    (is_ip(f, addr) && (0..=max).contains(&prefix)).then(|| (addr.to_string(), prefix))
}

/// INVALID_IP_ADDRESS_SPECIFIED [field] unless `a` is a plain address.
pub fn assert_ip(f: Family, name: &str, a: &str) -> Result<()> {
    if is_ip(f, a) {
        Ok(())
    } else {
        Err(ApiError::InvalidIpAddressSpecified { parameter: name.to_string() })
    }
}

/// INVALID_CIDR_ADDRESS_SPECIFIED [field] unless `a` is address/prefix.
pub fn assert_cidr(f: Family, name: &str, a: &str) -> Result<()> {
    match parse_cidr(f, a) {
        Some(_) => Ok(()),
        None => Err(ApiError::InvalidCidrAddressSpecified { parameter: name.to_string() }),
    }
}

/// An address or a CIDR, else INVALID_IP_ADDRESS_SPECIFIED [field].
pub fn assert_ip_or_cidr(f: Family, name: &str, a: &str) -> Result<()> {
    if is_ip(f, a) || parse_cidr(f, a).is_some() {
        Ok(())
    } else {
        Err(ApiError::InvalidIpAddressSpecified { parameter: name.to_string() })
    }
}

/// Six colon-separated pairs of hex digits (xapi's `is_valid_MAC`).
pub fn is_valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// The group bit of the first octet (of a MAC that [`is_valid_mac`]).
pub fn is_multicast_mac(mac: &str) -> bool {
    mac.get(..2).and_then(|o| u8::from_str_radix(o, 16).ok()).is_some_and(|o| o & 1 == 1)
}

/// The comma-separated DNS entries of one family.
pub fn dns_of(f: Family, dns: &str) -> Vec<String> {
    dns.split(',').filter(|a| !a.is_empty() && is_ip(f, a)).map(str::to_string).collect()
}

/// LICENCE_RESTRICTION [feature] when the pool's restrictions say so.
pub fn assert_licensed(tx: &Txn, restriction: &str, feature: &str) -> Result<()> {
    let pc = &CLASS_POOL;
    let restricted = tx
        .refs(pc)
        .iter()
        .filter_map(|p| tx.get(pc, p))
        .any(|row| row.get(fields::pool::RESTRICTIONS.index).map_str(restriction) == Some("true"));
    if restricted {
        return Err(ApiError::LicenceRestriction { feature: feature.to_string() });
    }
    Ok(())
}

/// HA_IS_ENABLED / REDO_LOG_IS_ENABLED for an attached PIF (reconfiguring it
/// could fence the host).
pub fn assert_no_protection(tx: &Txn, pif: &Row) -> Result<()> {
    if !pif.read(fields::pif::CURRENTLY_ATTACHED) {
        return Ok(());
    }
    let pc = &CLASS_POOL;
    for p in tx.refs(pc) {
        let Some(row) = tx.get(pc, &p) else { continue };
        if row.read(fields::pool::HA_ENABLED) {
            return Err(ApiError::HaIsEnabled);
        }
        if row.read(fields::pool::REDO_LOG_ENABLED) {
            return Err(ApiError::RedoLogIsEnabled);
        }
    }
    Ok(())
}

/// An error with several parameters where the typed variant has one slot
/// (NETWORK_CONTAINS_VIF and NETWORK_CONTAINS_PIF list every object).
pub fn listing(code: &str, items: Vec<String>) -> ApiError {
    ApiError::Other { code: code.to_string(), params: items }
}

/// The set with duplicates removed, keeping the last of each (xapi's setify).
pub fn setify(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, x) in v.iter().enumerate() {
        if !v[i + 1..].contains(x) {
            out.push(x.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_follows_xapi() {
        assert_eq!(parse_cidr(Family::V4, "10.0.0.1/24"), Some(("10.0.0.1".into(), 24)));
        assert_eq!(parse_cidr(Family::V4, "10.0.0.1/24junk"), Some(("10.0.0.1".into(), 24)));
        assert!(parse_cidr(Family::V4, "10.0.0.1/33").is_none());
        assert!(parse_cidr(Family::V4, "10.0.0.1").is_none());
        assert!(parse_cidr(Family::V4, "10.0.0.1/").is_none());
        assert!(parse_cidr(Family::V4, "fe80::1/64").is_none());
        assert_eq!(parse_cidr(Family::V6, "fe80::1/64"), Some(("fe80::1".into(), 64)));
        assert!(parse_cidr(Family::V6, "fe80::1/129").is_none());
    }

    #[test]
    fn macs() {
        assert!(is_valid_mac("02:aB:00:11:22:33"));
        assert!(!is_valid_mac("02:ab:00:11:22"));
        assert!(!is_valid_mac("02:ab:00:11:22:3g"));
        assert!(!is_valid_mac("02-ab-00-11-22-33"));
        assert!(!is_valid_mac(""));
    }

    #[test]
    fn setify_keeps_last() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(setify(v(&["a", "b", "a", "c"])), v(&["b", "a", "c"]));
    }
}

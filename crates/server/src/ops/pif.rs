//! PIF: the host's interfaces. Plug/unplug (bringing interfaces up and
//! down), IPv4/IPv6 reconfiguration, properties, introduce/forget/scan over
//! the simulated NIC inventory, and the deprecated VLAN forms (xapi_pif, nm).
//!
//! Everything runs inside one store transaction, so the derived reverse sets
//! (bond_master_of, VLAN_slave_of, …), which are only recomputed at commit,
//! are never read here: relations are found by scanning forward refs.

use crate::api::PifApi;
use crate::ops::netutil::{self, assert_no_protection, b, dns_of, is_null, map_get, s, strs, Family};
use crate::rows::obj;
use crate::rows::ocaml_int;
use crate::{class, field, handle_invalid, internal, put, ApiError, Ctx, Result, Server};
use model::schema::{
    CLASS_BOND, CLASS_HOST, CLASS_NETWORK, CLASS_PIF, CLASS_PIF_METRICS, CLASS_POOL, CLASS_TUNNEL, CLASS_VIF,
    CLASS_VLAN, CLASS_VM,
};
use model::types::fields;
use model::types::*;
use model::{ClassDef, DateTime, Ref, Row, Value, XenType};
use std::collections::BTreeMap;
use store::Txn;

/// The bridge management starts on (the installer's choice).
const DEFAULT_MANAGEMENT_BRIDGE: &str = "xenbr0";

/// Properties xapi lets clients set, and their values.
const PROPERTIES: &[(&str, &[&str])] = &[("gro", &["on", "off"])];

pub fn pif_c() -> &'static ClassDef {
    &CLASS_PIF
}

/// A PIF row or HANDLE_INVALID.
pub fn get(tx: &Txn, r: &str) -> Result<Row> {
    tx.get(pif_c(), r).cloned().ok_or_else(|| handle_invalid(pif_c(), r))
}

/// Every PIF matching `f`, as the transaction sees them.
pub fn pifs_where(tx: &Txn, f: impl Fn(&Row) -> bool) -> Vec<String> {
    let c = pif_c();
    let mut out: Vec<String> = tx.refs(c).into_iter().filter(|r| tx.get(c, r).is_some_and(&f)).collect();
    out.sort();
    out
}

/// Objects of `cls` whose ref field `name` points at `target`.
pub fn refs_to(tx: &Txn, cls: &str, name: &str, target: &str) -> Vec<String> {
    let c = class(cls);
    let i = field(c, name);
    let mut out: Vec<String> = tx
        .refs(c)
        .into_iter()
        .filter(|r| tx.get(c, r).is_some_and(|row| row.get(i).as_str() == Some(target)))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------- topology

/// What a PIF is, in xapi's precedence order.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    TunnelAccess(String),
    VlanUntagged(String),
    SriovLogical,
    BondMaster(String),
    Physical,
}

pub fn kind(tx: &Txn, r: &str, row: &Row) -> Result<Kind> {
    if let Some(t) = refs_to(tx, "tunnel", "access_PIF", r).into_iter().next() {
        return Ok(Kind::TunnelAccess(t));
    }
    let vlan = s(row, "VLAN_master_of");
    if !is_null(&vlan) {
        return Ok(Kind::VlanUntagged(vlan));
    }
    if !netutil::set(row, "sriov_logical_PIF_of").is_empty() {
        return Ok(Kind::SriovLogical);
    }
    if let Some(bond) = refs_to(tx, "Bond", "master", r).into_iter().next() {
        return Ok(Kind::BondMaster(bond));
    }
    if b(row, "physical") {
        return Ok(Kind::Physical);
    }
    Err(internal(format!("Cannot calculate PIF type of {}", s(row, "uuid"))))
}

/// PIF_UNMANAGED [pif] for interfaces xapi leaves alone.
pub fn assert_managed(r: &str, row: &Row) -> Result<()> {
    if b(row, "managed") {
        Ok(())
    } else {
        Err(ApiError::PifUnmanaged { pif: r.to_string() })
    }
}

/// NETWORK_ALREADY_CONNECTED: one PIF per network per host. xapi sends
/// [host, pif] although the datamodel names the first parameter `network`.
pub fn assert_no_other_local_pifs(tx: &Txn, host: &str, network: &str) -> Result<()> {
    match pifs_where(tx, |p| s(p, "network") == network && s(p, "host") == host).into_iter().next() {
        Some(p) => Err(ApiError::NetworkAlreadyConnected { network: host.to_string(), connected_pif: p }),
        None => Ok(()),
    }
}

/// NETWORK_UNMANAGED [network] (and HANDLE_INVALID for a bad ref).
pub fn assert_network_managed(tx: &Txn, network: &str) -> Result<()> {
    let c = &CLASS_NETWORK;
    let row = tx.get(c, network).ok_or_else(|| handle_invalid(c, network))?;
    if b(row, "managed") {
        Ok(())
    } else {
        Err(ApiError::NetworkUnmanaged { network: network.to_string() })
    }
}

// ------------------------------------------------------------ up and down

/// The MTU an interface gets: `other_config:mtu` if it reads as an integer,
/// else its network's.
fn effective_mtu(tx: &Txn, row: &Row) -> i64 {
    let net_mtu = tx.get(&CLASS_NETWORK, &s(row, "network")).and_then(|n| n.get(fields::network::MTU.index).as_int());
    map_get(row, "other_config", "mtu").and_then(|m| ocaml_int(&m)).or(net_mtu).unwrap_or(1500)
}

/// Bring an interface up (nm.bring_pif_up): a bond master takes its
/// members down and follows its primary member's MAC; a bond member takes
/// its master down; the MTU and IGMP snooping state follow the configuration.
pub fn bring_up(tx: &mut Txn, r: &str) -> Result<()> {
    let (c, bc, pc) = (pif_c(), &CLASS_BOND, &CLASS_POOL);
    let row = get(tx, r)?;
    if let Some(bond) = refs_to(tx, "Bond", "master", r).into_iter().next() {
        for m in refs_to(tx, "PIF", "bond_slave_of", &bond) {
            tx.put(&m, fields::pif::CURRENTLY_ATTACHED, false);
        }
        let brow = tx.get(bc, &bond).cloned();
        if let Some(brow) = brow.filter(|br| b(br, "auto_update_mac")) {
            if let Some(mac) = tx.get(c, &s(&brow, "primary_slave")).map(|p| s(p, "MAC")) {
                tx.set(c, r, fields::pif::MAC.index, Value::from(mac));
            }
        }
    }
    tx.put(r, fields::pif::CURRENTLY_ATTACHED, true);
    let master_bond = s(&row, "bond_slave_of");
    if let Some(master) = tx.get(bc, &master_bond).map(|br| s(br, "master")) {
        tx.put(&master, fields::pif::CURRENTLY_ATTACHED, false);
    }
    let mtu = effective_mtu(tx, &row);
    tx.put(r, fields::pif::MTU, mtu);
    if row.get(fields::pif::VLAN.index).as_int() == Some(-1) {
        let snooping = tx.refs(pc).iter().filter_map(|p| tx.get(pc, p)).any(|p| b(p, "igmp_snooping_enabled"));
        tx.set(
            c,
            r,
            fields::pif::IGMP_SNOOPING_STATUS.index,
            Value::from(if snooping { "enabled" } else { "disabled" }),
        );
    }
    Ok(())
}

pub fn bring_down(tx: &mut Txn, r: &str) {
    tx.put(r, fields::pif::CURRENTLY_ATTACHED, false);
}

/// PIF.plug: bring up what the interface needs first (a tunnel's transport),
/// never a bond member on its own.
pub fn plug_tx(tx: &mut Txn, r: &str) -> Result<()> {
    let row = get(tx, r)?;
    assert_managed(r, &row)?;
    match kind(tx, r, &row)? {
        Kind::TunnelAccess(t) => {
            let transport = tx.get(&CLASS_TUNNEL, &t).map(|tr| s(tr, "transport_PIF")).unwrap_or_default();
            let trow = get(tx, &transport)?;
            if s(&trow, "ip_configuration_mode") == "None" {
                return Err(ApiError::TransportPifNotConfigured { pif: transport });
            }
            plug_tx(tx, &transport)?;
        }
        Kind::Physical if !is_null(&s(&row, "bond_slave_of")) => {
            return Err(ApiError::CannotPlugBondSlave { pif: r.to_string() });
        }
        _ => {}
    }
    if is_null(&s(&row, "bond_slave_of")) {
        bring_up(tx, r)?;
    }
    Ok(())
}

/// VIF_IN_USE [network, vif] while a live VM here uses the network.
fn assert_no_vifs_in_use(tx: &Txn, network: &str, host: &str) -> Result<()> {
    let (vifc, vmc) = (&CLASS_VIF, &CLASS_VM);
    for v in refs_to(tx, "VIF", "network", network) {
        let Some(vr) = tx.get(vifc, &v) else { continue };
        let Some(vm) = tx.get(vmc, &s(vr, "VM")) else { continue };
        let here = s(vm, "resident_on") == host || s(vm, "scheduled_to_be_resident_on") == host;
        let attaching = crate::lifecycle::current_ops(vr).iter().any(|(_, op)| op == "attach");
        let live = matches!(s(vm, "power_state").as_str(), "Running" | "Paused");
        if (attaching && here) || (b(vr, "currently_attached") && s(vm, "resident_on") == host && live) {
            return Err(ApiError::VifInUse { network: network.to_string(), vif: v });
        }
    }
    Ok(())
}

/// PIF.unplug: not the management interface, nor one live VMs use or that
/// must stay up; a tunnel's access interfaces go down with its transport.
pub fn unplug_tx(tx: &mut Txn, r: &str) -> Result<()> {
    let row = get(tx, r)?;
    assert_managed(r, &row)?;
    assert_no_protection(tx, &row)?;
    if b(&row, "management") {
        return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
    }
    assert_no_vifs_in_use(tx, &s(&row, "network"), &s(&row, "host"))?;
    if b(&row, "disallow_unplug") {
        return Err(ApiError::PifDoesNotAllowUnplug { pif: r.to_string() });
    }
    let tc = &CLASS_TUNNEL;
    for t in refs_to(tx, "tunnel", "transport_PIF", r) {
        if let Some(access) = tx.get(tc, &t).map(|tr| s(tr, "access_PIF")) {
            unplug_tx(tx, &access)?;
        }
    }
    if is_null(&s(&row, "bond_slave_of")) {
        bring_down(tx, r);
    }
    Ok(())
}

// ------------------------------------------------------- records and moves

/// A fresh PIF_metrics object, as xapi makes for new interfaces.
pub fn new_metrics(tx: &mut Txn) -> String {
    let m = model::new_ref();
    obj(tx, "PIF_metrics", &m, vec![("last_updated", Value::DateTime(DateTime::EPOCH))]);
    m
}

/// Fields every new PIF row gets; callers override what differs.
pub fn new_pif(tx: &mut Txn, r: &str, fields: Vec<(&str, Value)>) {
    let mut all: Vec<(&str, Value)> = vec![
        ("currently_attached", Value::Bool(false)),
        ("igmp_snooping_status", Value::from("unknown")),
        ("ip_configuration_mode", Value::from("None")),
        ("bond_slave_of", Value::from(model::NULL_REF)),
        ("VLAN_master_of", Value::from(model::NULL_REF)),
        ("ipv6_configuration_mode", Value::from("None")),
        ("primary_address_type", Value::from("IPv4")),
        ("managed", Value::Bool(true)),
        ("PCI", Value::from(model::NULL_REF)),
    ];
    all.extend(fields);
    obj(tx, "PIF", r, all);
}

/// Move the IPv4 configuration from one PIF to another (bonds do this).
pub fn move_configuration(tx: &mut Txn, from: &str, to: &str) -> Result<()> {
    let c = pif_c();
    let src = get(tx, from)?;
    let keys = ["ip_configuration_mode", "IP", "netmask", "gateway", "DNS"];
    tx.update(c, to, |row| {
        for k in keys {
            row.fields[field(c, k)] = src.get(field(c, k)).clone();
        }
    });
    tx.update(c, from, |row| {
        put(row, "ip_configuration_mode", "None");
        for k in ["IP", "netmask", "gateway", "DNS"] {
            put(row, k, "");
        }
    });
    Ok(())
}

/// The bridge the management interface is on.
fn management_bridge(tx: &Txn, host: &str) -> String {
    let netc = &CLASS_NETWORK;
    pifs_where(tx, |p| b(p, "management") && s(p, "host") == host)
        .first()
        .and_then(|p| tx.get(pif_c(), p))
        .and_then(|p| tx.get(netc, &s(p, "network")))
        .map(|n| s(n, "bridge"))
        .unwrap_or_else(|| DEFAULT_MANAGEMENT_BRIDGE.into())
}

/// Management moves to `to` (bonding or unbonding the management NIC).
pub fn move_management(tx: &mut Txn, from: &str, to: &str) -> Result<()> {
    bring_up(tx, to)?;
    tx.put(from, fields::pif::MANAGEMENT, false);
    tx.put(to, fields::pif::MANAGEMENT, true);
    Ok(())
}

/// host.management_reconfigure: management moves to `r` (xapi's checks, in
/// its order). False when `r` already is the management PIF.
pub fn management_reconfigure_tx(tx: &mut Txn, r: &str) -> Result<bool> {
    use fields::pif as P;
    let row = get(tx, r)?;
    let pc = &CLASS_POOL;
    if tx.refs(pc).iter().filter_map(|p| tx.get(pc, p)).any(|p| p.read(fields::pool::HA_ENABLED)) {
        return Err(ApiError::HaIsEnabled);
    }
    let host = row.read(P::HOST);
    let primary = row.read(P::PRIMARY_ADDRESS_TYPE);
    if row.read(P::MANAGED) {
        if !row.read(P::BOND_SLAVE_OF).is_null() {
            return Err(ApiError::CannotPlugBondSlave { pif: r.to_string() });
        }
        match primary {
            PrimaryAddressType::Ipv6 if row.read(P::IPV6_CONFIGURATION_MODE) == Ipv6ConfigurationMode::None => {
                return Err(ApiError::PifHasNoV6NetworkConfiguration { pif: r.to_string() })
            }
            PrimaryAddressType::Ipv4 if row.read(P::IP_CONFIGURATION_MODE) == IpConfigurationMode::None => {
                return Err(ApiError::PifHasNoNetworkConfiguration { pif: r.to_string() })
            }
            _ => {}
        }
        let current = pifs_where(tx, |p| p.read(P::MANAGEMENT) && p.read(P::HOST) == host);
        if let Some(cur) = current.first().and_then(|c| tx.get(pif_c(), c)) {
            if cur.read(P::PRIMARY_ADDRESS_TYPE) != primary {
                return Err(ApiError::PifIncompatiblePrimaryAddressType { pif: r.to_string() });
            }
        }
    }
    if row.read(P::MANAGEMENT) {
        tracing::debug!(pif = r, "already the management PIF; nothing to do");
        return Ok(false);
    }
    match pifs_where(tx, |p| p.read(P::MANAGEMENT) && p.read(P::HOST) == host).first() {
        Some(old) => move_management(tx, old, r)?,
        None => {
            bring_up(tx, r)?;
            tx.put(r, P::MANAGEMENT, true);
        }
    }
    // host.address follows the management interface, as xapi's does.
    let address = match primary {
        PrimaryAddressType::Ipv6 => row.read(P::IPV6).first().and_then(|a| a.split('/').next().map(str::to_string)),
        _ => Some(row.read(P::IP)),
    };
    if let Some(a) = address.filter(|a| !a.is_empty()) {
        tx.put(host.as_str(), fields::host::ADDRESS, a);
    }
    Ok(true)
}

/// The network whose bridge is `bridge`, made if missing (xapi's convention
/// for newly found NICs).
fn find_or_create_network(tx: &mut Txn, bridge: &str, device: &str) -> String {
    let c = &CLASS_NETWORK;
    let found: Vec<String> =
        tx.refs(c).into_iter().filter(|n| tx.get(c, n).is_some_and(|row| s(row, "bridge") == bridge)).collect();
    if let [one] = found.as_slice() {
        return one.clone();
    }
    let n = model::new_ref();
    obj(
        tx,
        "network",
        &n,
        vec![
            ("name_label", Value::from(format!("Pool-wide network associated with {device}"))),
            ("MTU", Value::Int(1500)),
            ("bridge", Value::from(bridge)),
            ("managed", Value::Bool(true)),
        ],
    );
    n
}

/// xapi names a NIC's bridge `xenbrN` for `ethN`, else `br<device>`.
fn bridge_for(device: &str) -> String {
    match device.strip_prefix("eth") {
        Some(n) => format!("xenbr{n}"),
        None => format!("br{device}"),
    }
}

/// Record a physical NIC (introduce and scan).
fn introduce_nic(tx: &mut Txn, host: &str, mac: &str, device: &str, managed: bool) -> String {
    let mgmt_bridge = management_bridge(tx, host);
    let bridge = bridge_for(device);
    let network = find_or_create_network(tx, &bridge, device);
    let metrics = new_metrics(tx);
    let r = model::new_ref();
    let management = bridge == mgmt_bridge;
    new_pif(
        tx,
        &r,
        vec![
            ("device", Value::from(device)),
            ("network", Value::from(network.as_str())),
            ("host", Value::from(host)),
            ("MAC", Value::from(mac)),
            ("MTU", Value::Int(1500)),
            ("VLAN", Value::Int(-1)),
            ("metrics", Value::from(metrics.as_str())),
            ("physical", Value::Bool(true)),
            ("managed", Value::Bool(managed)),
            ("properties", crate::rows::map(&[("gro", "on")])),
            // A re-found management NIC is up and stays the management interface.
            ("management", Value::Bool(management)),
            ("currently_attached", Value::Bool(management)),
        ],
    );
    r
}

fn assert_host(tx: &Txn, host: &str) -> Result<()> {
    let hc = &CLASS_HOST;
    if tx.get(hc, host).is_none() {
        return Err(handle_invalid(hc, host));
    }
    Ok(())
}

/// Bonds this PIF belongs to or masters: PIF_ALREADY_BONDED.
pub fn assert_not_in_bond(tx: &Txn, r: &str, row: &Row) -> Result<()> {
    let bonded = tx.get(&CLASS_BOND, &s(row, "bond_slave_of")).is_some();
    if bonded || !refs_to(tx, "Bond", "master", r).is_empty() {
        return Err(ApiError::PifAlreadyBonded { pif: r.to_string() });
    }
    Ok(())
}

/// A DHCP configuration the backend cannot carry out is refused before
/// anything changes (the QEMU backend runs no DHCP client for the host).
fn assert_dhcp_possible(s: &Server, mode: &str) -> Result<()> {
    if mode == "DHCP" && !s.backend.host_dhcp() {
        return Err(ApiError::NotImplemented {
            function: format!("DHCP for the host's own addresses with the {} backend", s.backend.name()),
        });
    }
    Ok(())
}

/// From now on the PIF's IP configuration is the host's: networkd puts it
/// on the PIF's bridge (see [`crate::networkd::HOST_IP_KEY`]).
fn mark_host_ip(row: &mut Row) {
    let mut oc = row.read(fields::pif::OTHER_CONFIG);
    oc.insert(crate::networkd::HOST_IP_KEY.to_string(), "true".to_string());
    row.write(fields::pif::OTHER_CONFIG, oc);
}

/// An attached PIF's new addresses reach the host before the reply.
async fn apply_host_ip(ctx: &Ctx, attached: bool) -> Result<()> {
    if attached {
        crate::networkd::sync_for(ctx).await
    } else {
        Ok(())
    }
}

// ----------------------------------------------------------- the messages

impl PifApi for Server {
    async fn plug(&self, ctx: &Ctx, self_: Ref<Pif>) -> Result<()> {
        ctx.write(|tx| plug_tx(tx, self_.as_str()))?;
        crate::networkd::sync_for(ctx).await
    }

    async fn unplug(&self, ctx: &Ctx, self_: Ref<Pif>) -> Result<()> {
        ctx.write(|tx| unplug_tx(tx, self_.as_str()))?;
        crate::networkd::sync_for(ctx).await
    }

    async fn reconfigure_ip(
        &self,
        ctx: &Ctx,
        self_: Ref<Pif>,
        mode: IpConfigurationMode,
        ip: String,
        netmask: String,
        gateway: String,
        dns: String,
    ) -> Result<()> {
        let (c, r, mode) = (pif_c(), self_.as_str(), mode.as_str().to_string());
        assert_dhcp_possible(self, &mode)?;
        let attached = ctx.write(|tx| {
            let row = get(tx, r)?;
            assert_managed(r, &row)?;
            // Only a DNS change in unchanged static mode is safe under HA.
            let same = mode == "Static"
                && s(&row, "ip_configuration_mode") == mode
                && s(&row, "IP") == ip
                && s(&row, "netmask") == netmask
                && s(&row, "gateway") == gateway;
            if !same {
                assert_no_protection(tx, &row)?;
            }
            if mode == "Static" {
                netutil::assert_ip(Family::V4, "IP", &ip)?;
                netutil::assert_ip(Family::V4, "netmask", &netmask)?;
            }
            for (name, v) in [("IP", &ip), ("netmask", &netmask), ("gateway", &gateway)] {
                if !v.is_empty() {
                    netutil::assert_ip(Family::V4, name, v)?;
                }
            }
            if b(&row, "management") && mode == "None" && s(&row, "primary_address_type") == "IPv4" {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            let mut all_dns = dns_of(Family::V4, &dns);
            all_dns.extend(dns_of(Family::V6, &s(&row, "DNS")));
            tx.update(c, r, |row| {
                put(row, "ip_configuration_mode", mode.as_str());
                put(row, "IP", ip.as_str());
                put(row, "netmask", netmask.as_str());
                put(row, "gateway", gateway.as_str());
                put(row, "DNS", all_dns.join(","));
                mark_host_ip(row);
            });
            if b(&row, "management") && mode == "Static" {
                let host = s(&row, "host");
                tx.put(&host, fields::host::ADDRESS, ip.clone());
            }
            let attached = b(&row, "currently_attached");
            if attached {
                bring_up(tx, r)?;
            }
            Ok(attached)
        })?;
        apply_host_ip(ctx, attached).await
    }

    async fn reconfigure_ipv6(
        &self,
        ctx: &Ctx,
        self_: Ref<Pif>,
        mode: Ipv6ConfigurationMode,
        ipv6: String,
        gateway: String,
        dns: String,
    ) -> Result<()> {
        let (c, r, mode) = (pif_c(), self_.as_str(), mode.as_str().to_string());
        assert_dhcp_possible(self, &mode)?;
        let attached = ctx.write(|tx| {
            let row = get(tx, r)?;
            assert_managed(r, &row)?;
            let same = mode == "Static"
                && s(&row, "ipv6_configuration_mode") == mode
                && netutil::set(&row, "IPv6") == vec![ipv6.clone()]
                && s(&row, "ipv6_gateway") == gateway;
            if !same {
                assert_no_protection(tx, &row)?;
            }
            if !gateway.is_empty() {
                netutil::assert_ip(Family::V6, "gateway", &gateway)?;
            }
            if !ipv6.is_empty() {
                netutil::assert_cidr(Family::V6, "IPv6", &ipv6)?;
            }
            if b(&row, "management") && mode == "None" && s(&row, "primary_address_type") == "IPv6" {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            let mut all_dns = dns_of(Family::V6, &dns);
            all_dns.extend(dns_of(Family::V4, &s(&row, "DNS")));
            tx.update(c, r, |row| {
                put(row, "ipv6_configuration_mode", mode.as_str());
                put(row, "ipv6_gateway", gateway.as_str());
                // As xapi: the one address given, even when empty.
                put(row, "IPv6", strs(std::slice::from_ref(&ipv6)));
                put(row, "DNS", all_dns.join(","));
                mark_host_ip(row);
            });
            let attached = b(&row, "currently_attached");
            if attached {
                bring_up(tx, r)?;
            }
            Ok(attached)
        })?;
        apply_host_ip(ctx, attached).await
    }

    async fn set_primary_address_type(
        &self,
        ctx: &Ctx,
        self_: Ref<Pif>,
        primary_address_type: PrimaryAddressType,
    ) -> Result<()> {
        let (c, r) = (pif_c(), self_.as_str());
        ctx.write(|tx| {
            let row = get(tx, r)?;
            assert_no_protection(tx, &row)?;
            if b(&row, "management") {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            tx.set(c, r, fields::pif::PRIMARY_ADDRESS_TYPE.index, Value::from(primary_address_type.as_str()));
            Ok(())
        })
    }

    /// Only `gro` (on/off), on bond masters and unbonded physical PIFs; a
    /// bond's members follow their master.
    async fn set_property(&self, ctx: &Ctx, self_: Ref<Pif>, name: String, value: String) -> Result<()> {
        let (c, r) = (pif_c(), self_.as_str());
        ctx.write(|tx| {
            let row = get(tx, r)?;
            let valid = PROPERTIES.iter().any(|(k, vs)| *k == name && vs.contains(&value.as_str()));
            if !valid {
                return Err(ApiError::InvalidValue { field: "properties".into(), value: format!("{name} = {value}") });
            }
            let bonds = refs_to(tx, "Bond", "master", r);
            let has_properties = !bonds.is_empty() || b(&row, "physical");
            if !has_properties || !is_null(&s(&row, "bond_slave_of")) {
                return Err(ApiError::CannotChangePifProperties { pif: r.to_string() });
            }
            let mut props =
                BTreeMap::<String, String>::from_value(row.get(fields::pif::PROPERTIES.index)).unwrap_or_default();
            props.insert(name.clone(), value.clone());
            let pv = props.to_value();
            tx.set(c, r, fields::pif::PROPERTIES.index, pv.clone());
            for bond in &bonds {
                for m in refs_to(tx, "PIF", "bond_slave_of", bond) {
                    tx.set(c, &m, fields::pif::PROPERTIES.index, pv.clone());
                }
            }
            // Re-apply on the interface and the VLANs on top of it.
            let vlc = &CLASS_VLAN;
            let mut up: Vec<String> = vec![r.to_string()];
            up.extend(
                refs_to(tx, "VLAN", "tagged_PIF", r)
                    .iter()
                    .filter_map(|v| tx.get(vlc, v).map(|vr| s(vr, "untagged_PIF"))),
            );
            if b(&row, "currently_attached") {
                for p in up {
                    if tx.get(c, &p).is_some() {
                        bring_up(tx, &p)?;
                    }
                }
            }
            Ok(())
        })
    }

    async fn set_disallow_unplug(&self, ctx: &Ctx, self_: Ref<Pif>, value: bool) -> Result<()> {
        let r = self_.as_str();
        ctx.write(|tx| {
            get(tx, r)?;
            tx.put(r, fields::pif::DISALLOW_UNPLUG, value);
            Ok(())
        })
    }

    /// Record the host's NICs (the backend's: the simulator's four, or the
    /// machine's) that have no PIF yet.
    async fn scan(&self, ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        let h = host.as_str();
        let nics = self.backend.nics();
        ctx.write(|tx| {
            assert_host(tx, h)?;
            let known: Vec<String> = pifs_where(tx, |p| s(p, "host") == h && b(p, "physical"))
                .iter()
                .filter_map(|p| tx.get(pif_c(), p).map(|row| s(row, "device")))
                .collect();
            for n in &nics {
                if !known.contains(&n.device) {
                    introduce_nic(tx, h, &n.mac, &n.device, true);
                }
            }
            crate::seed::apply_nic_facts(tx, h, &nics);
            Ok(())
        })
    }

    async fn introduce(
        &self,
        ctx: &Ctx,
        host: Ref<Host>,
        mac: String,
        device: String,
        managed: bool,
    ) -> Result<Ref<Pif>> {
        let h = host.as_str();
        let mac = mac.to_lowercase();
        let nics = self.backend.nics();
        ctx.write(|tx| {
            assert_host(tx, h)?;
            let mac = if mac.is_empty() {
                nics.iter().find(|n| n.device == device).map(|n| n.mac.clone()).unwrap_or_default()
            } else {
                mac
            };
            if !netutil::is_valid_mac(&mac) {
                return Err(ApiError::MacInvalid { mac });
            }
            let dup = !pifs_where(tx, |p| s(p, "host") == h && b(p, "physical") && s(p, "device") == device).is_empty();
            if dup {
                return Err(ApiError::DuplicatePifDeviceName { device });
            }
            if !nics.iter().any(|n| n.device == device && n.mac == mac) {
                return Err(ApiError::CouldNotFindNetworkInterfaceWithSpecifiedDeviceNameAndMacAddress { device, mac });
            }
            let r = introduce_nic(tx, h, &mac, &device, managed);
            crate::seed::apply_nic_facts(tx, h, &nics);
            Ok(Ref::new(r))
        })
    }

    async fn forget(&self, ctx: &Ctx, self_: Ref<Pif>) -> Result<()> {
        let r = self_.as_str();
        ctx.write(|tx| {
            let row = get(tx, r)?;
            if b(&row, "management") {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            assert_not_in_bond(tx, r, &row)?;
            let vlan_tagged = row.get(fields::pif::VLAN.index).as_int().unwrap_or(-1) != -1;
            if !refs_to(tx, "VLAN", "tagged_PIF", r).is_empty() || vlan_tagged {
                return Err(ApiError::PifVlanStillExists { pif: r.to_string() });
            }
            let tunnels =
                refs_to(tx, "tunnel", "transport_PIF", r).len() + refs_to(tx, "tunnel", "access_PIF", r).len();
            if tunnels > 0 {
                return Err(ApiError::PifTunnelStillExists { pif: r.to_string() });
            }
            assert_no_protection(tx, &row)?;
            if b(&row, "managed") {
                bring_down(tx, r);
            }
            tx.delete(&CLASS_PIF_METRICS, &s(&row, "metrics"));
            tx.delete(pif_c(), r);
            Ok(())
        })
    }

    async fn db_forget(&self, ctx: &Ctx, self_: Ref<Pif>) -> Result<()> {
        let r = self_.as_str();
        ctx.write(|tx| {
            get(tx, r)?;
            tx.delete(pif_c(), r);
            Ok(())
        })
    }

    async fn db_introduce(
        &self,
        ctx: &Ctx,
        device: String,
        network: Ref<Network>,
        host: Ref<Host>,
        mac: String,
        mtu: i64,
        vlan: i64,
        physical: bool,
        ip_configuration_mode: IpConfigurationMode,
        ip: String,
        netmask: String,
        gateway: String,
        dns: String,
        _bond_slave_of: Ref<Bond>,
        vlan_master_of: Ref<Vlan>,
        management: bool,
        other_config: BTreeMap<String, String>,
        disallow_unplug: bool,
        ipv6_configuration_mode: Ipv6ConfigurationMode,
        ipv6: Vec<String>,
        ipv6_gateway: String,
        primary_address_type: PrimaryAddressType,
        managed: bool,
        properties: BTreeMap<String, String>,
    ) -> Result<Ref<Pif>> {
        // A database-only record: xapi stores what it is given (bond
        // membership excepted) without checks.
        ctx.write(|tx| {
            let metrics = new_metrics(tx);
            let r = model::new_ref();
            new_pif(
                tx,
                &r,
                vec![
                    ("device", Value::from(device.as_str())),
                    ("network", Value::from(network.as_str())),
                    ("host", Value::from(host.as_str())),
                    ("MAC", Value::from(mac.as_str())),
                    ("MTU", Value::Int(mtu)),
                    ("VLAN", Value::Int(vlan)),
                    ("metrics", Value::from(metrics.as_str())),
                    ("physical", Value::Bool(physical)),
                    ("ip_configuration_mode", Value::from(ip_configuration_mode.as_str())),
                    ("IP", Value::from(ip.as_str())),
                    ("netmask", Value::from(netmask.as_str())),
                    ("gateway", Value::from(gateway.as_str())),
                    ("DNS", Value::from(dns.as_str())),
                    ("VLAN_master_of", Value::from(vlan_master_of.as_str())),
                    ("management", Value::Bool(management)),
                    ("other_config", other_config.to_value()),
                    ("disallow_unplug", Value::Bool(disallow_unplug)),
                    ("ipv6_configuration_mode", Value::from(ipv6_configuration_mode.as_str())),
                    ("IPv6", ipv6.to_value()),
                    ("ipv6_gateway", Value::from(ipv6_gateway.as_str())),
                    ("primary_address_type", Value::from(primary_address_type.as_str())),
                    ("managed", Value::Bool(managed)),
                    ("properties", properties.to_value()),
                ],
            );
            Ok(Ref::new(r))
        })
    }

    /// Deprecated: destroys a VLAN PIF through its VLAN.
    async fn destroy(&self, ctx: &Ctx, self_: Ref<Pif>) -> Result<()> {
        let r = self_.as_str();
        ctx.write(|tx| {
            let row = get(tx, r)?;
            if row.get(fields::pif::VLAN.index).as_int().unwrap_or(-1) < 0 {
                // xapi sends this one without parameters.
                return Err(ApiError::Other { code: "PIF_IS_PHYSICAL".into(), params: vec![] });
            }
            crate::ops::vlan::destroy_tx(tx, &s(&row, "VLAN_master_of"))
        })?;
        crate::networkd::sync_for(ctx).await
    }

    /// Deprecated: VLAN.create on the host's untagged PIF of that device.
    async fn create_vlan(
        &self,
        ctx: &Ctx,
        device: String,
        network: Ref<Network>,
        host: Ref<Host>,
        vlan: i64,
    ) -> Result<Ref<Pif>> {
        let h = host.as_str();
        let r = ctx.write(|tx| {
            assert_host(tx, h)?;
            crate::ops::vlan::create_on_device(tx, &device, network.as_str(), h, vlan).map(Ref::new)
        })?;
        crate::networkd::sync_for(ctx).await?;
        Ok(r)
    }
}

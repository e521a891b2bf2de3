//! PIF: the host's interfaces. Plug/unplug (bringing interfaces up and
//! down), IPv4/IPv6 reconfiguration, properties, introduce/forget/scan over
//! the simulated NIC inventory, and the deprecated VLAN forms (xapi_pif, nm).
//!
//! Everything runs inside one store transaction, so the derived reverse sets
//! (bond_master_of, VLAN_slave_of, …), which are only recomputed at commit,
//! are never read here: relations are found by scanning forward refs.

use crate::api::PifApi;
use crate::ops::netutil::{self, assert_no_protection, dns_of, is_null, Family};
use crate::rows::{new_row, ocaml_int};
use crate::{handle_invalid, internal, ApiError, Ctx, Result, Server};
use model::schema::{
    CLASS_BOND, CLASS_HOST, CLASS_NETWORK, CLASS_PIF, CLASS_PIF_METRICS, CLASS_POOL, CLASS_VIF, CLASS_VLAN, CLASS_VM,
};
use model::types::fields;
use model::types::fields::{bond as B, network as N, pif as P, tunnel as T, vif as VIF, vlan as VL, vm as VM};
use model::types::*;
use model::{ClassDef, DateTime, Field, Ref, Row, Value, XenType};
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

/// Objects of the field's class whose ref field `f` points at `target`.
pub fn refs_to<C, D>(tx: &Txn, f: Field<C, Ref<D>>, target: &str) -> Vec<String> {
    let (c, i) = (f.class, f.index);
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
    if let Some(t) = refs_to(tx, T::ACCESS_PIF, r).into_iter().next() {
        return Ok(Kind::TunnelAccess(t));
    }
    let vlan = row.read(P::VLAN_MASTER_OF).into_string();
    if !is_null(&vlan) {
        return Ok(Kind::VlanUntagged(vlan));
    }
    if !row.read(P::SRIOV_LOGICAL_PIF_OF).is_empty() {
        return Ok(Kind::SriovLogical);
    }
    if let Some(bond) = refs_to(tx, B::MASTER, r).into_iter().next() {
        return Ok(Kind::BondMaster(bond));
    }
    if row.read(P::PHYSICAL) {
        return Ok(Kind::Physical);
    }
    Err(internal(format!("Cannot calculate PIF type of {}", row.read(P::UUID))))
}

/// PIF_UNMANAGED [pif] for interfaces xapi leaves alone.
pub fn assert_managed(r: &str, row: &Row) -> Result<()> {
    if row.read(P::MANAGED) {
        Ok(())
    } else {
        Err(ApiError::PifUnmanaged { pif: r.to_string() })
    }
}

/// NETWORK_ALREADY_CONNECTED: one PIF per network per host. xapi sends
/// [host, pif] although the datamodel names the first parameter `network`.
pub fn assert_no_other_local_pifs(tx: &Txn, host: &str, network: &str) -> Result<()> {
    match pifs_where(tx, |p| p.read(P::NETWORK).as_str() == network && p.read(P::HOST).as_str() == host)
        .into_iter()
        .next()
    {
        Some(p) => Err(ApiError::NetworkAlreadyConnected { network: host.to_string(), connected_pif: p }),
        None => Ok(()),
    }
}

/// NETWORK_UNMANAGED [network] (and HANDLE_INVALID for a bad ref).
pub fn assert_network_managed(tx: &Txn, network: &str) -> Result<()> {
    let c = &CLASS_NETWORK;
    let row = tx.get(c, network).ok_or_else(|| handle_invalid(c, network))?;
    if row.read(N::MANAGED) {
        Ok(())
    } else {
        Err(ApiError::NetworkUnmanaged { network: network.to_string() })
    }
}

// ------------------------------------------------------------ up and down

/// The MTU an interface gets: `other_config:mtu` if it reads as an integer,
/// else its network's.
fn effective_mtu(tx: &Txn, row: &Row) -> i64 {
    let net_mtu = tx.get(&CLASS_NETWORK, row.read(P::NETWORK).as_str()).and_then(|n| n.get(N::MTU.index).as_int());
    row.read(P::OTHER_CONFIG).get("mtu").and_then(|m| ocaml_int(m)).or(net_mtu).unwrap_or(1500)
}

/// Bring an interface up (nm.bring_pif_up): a bond master takes its
/// members down and follows its primary member's MAC; a bond member takes
/// its master down; the MTU and IGMP snooping state follow the configuration.
pub fn bring_up(tx: &mut Txn, r: &str) -> Result<()> {
    let (c, bc, pc) = (pif_c(), &CLASS_BOND, &CLASS_POOL);
    let row = get(tx, r)?;
    if let Some(bond) = refs_to(tx, B::MASTER, r).into_iter().next() {
        for m in refs_to(tx, P::BOND_SLAVE_OF, &bond) {
            tx.put(&m, fields::pif::CURRENTLY_ATTACHED, false);
        }
        let brow = tx.get(bc, &bond).cloned();
        if let Some(brow) = brow.filter(|br| br.read(B::AUTO_UPDATE_MAC)) {
            if let Some(mac) = tx.read(brow.read(B::PRIMARY_SLAVE).as_str(), P::MAC) {
                tx.set(c, r, fields::pif::MAC.index, Value::from(mac));
            }
        }
    }
    tx.put(r, fields::pif::CURRENTLY_ATTACHED, true);
    let master_bond = row.read(P::BOND_SLAVE_OF);
    if let Some(master) = tx.read(master_bond.as_str(), B::MASTER) {
        tx.put(master.as_str(), fields::pif::CURRENTLY_ATTACHED, false);
    }
    let mtu = effective_mtu(tx, &row);
    tx.put(r, fields::pif::MTU, mtu);
    if row.get(fields::pif::VLAN.index).as_int() == Some(-1) {
        let snooping =
            tx.refs(pc).iter().filter_map(|p| tx.get(pc, p)).any(|p| p.read(fields::pool::IGMP_SNOOPING_ENABLED));
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
            let transport = tx.read(&t, T::TRANSPORT_PIF).map(Ref::into_string).unwrap_or_default();
            let trow = get(tx, &transport)?;
            if trow.read(P::IP_CONFIGURATION_MODE) == IpConfigurationMode::None {
                return Err(ApiError::TransportPifNotConfigured { pif: transport });
            }
            plug_tx(tx, &transport)?;
        }
        Kind::Physical if !is_null(row.read(P::BOND_SLAVE_OF).as_str()) => {
            return Err(ApiError::CannotPlugBondSlave { pif: r.to_string() });
        }
        _ => {}
    }
    if is_null(row.read(P::BOND_SLAVE_OF).as_str()) {
        bring_up(tx, r)?;
    }
    Ok(())
}

/// VIF_IN_USE [network, vif] while a live VM here uses the network.
fn assert_no_vifs_in_use(tx: &Txn, network: &str, host: &str) -> Result<()> {
    let (vifc, vmc) = (&CLASS_VIF, &CLASS_VM);
    for v in refs_to(tx, VIF::NETWORK, network) {
        let Some(vr) = tx.get(vifc, &v) else { continue };
        let Some(vm) = tx.get(vmc, vr.read(VIF::VM).as_str()) else { continue };
        let resident_here = vm.read(VM::RESIDENT_ON).as_str() == host;
        let here = resident_here || vm.read(VM::SCHEDULED_TO_BE_RESIDENT_ON).as_str() == host;
        let attaching = vr.read(VIF::CURRENT_OPERATIONS).values().any(|op| *op == VifOperations::Attach);
        let live = matches!(vm.read(VM::POWER_STATE), VmPowerState::Running | VmPowerState::Paused);
        if (attaching && here) || (vr.read(VIF::CURRENTLY_ATTACHED) && resident_here && live) {
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
    if row.read(P::MANAGEMENT) {
        return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
    }
    assert_no_vifs_in_use(tx, row.read(P::NETWORK).as_str(), row.read(P::HOST).as_str())?;
    if row.read(P::DISALLOW_UNPLUG) {
        return Err(ApiError::PifDoesNotAllowUnplug { pif: r.to_string() });
    }
    for t in refs_to(tx, T::TRANSPORT_PIF, r) {
        if let Some(access) = tx.read(&t, T::ACCESS_PIF) {
            unplug_tx(tx, access.as_str())?;
        }
    }
    if is_null(row.read(P::BOND_SLAVE_OF).as_str()) {
        bring_down(tx, r);
    }
    Ok(())
}

// ------------------------------------------------------- records and moves

/// A fresh PIF_metrics object, as xapi makes for new interfaces.
pub fn new_metrics(tx: &mut Txn) -> String {
    let m = model::new_ref();
    let mut row = new_row(fields::pif_metrics::UUID);
    row.write(fields::pif_metrics::LAST_UPDATED, DateTime::EPOCH);
    tx.insert(&m, row);
    m
}

/// A new PIF row (fresh uuid) with the fields every new PIF gets; callers
/// write what differs and insert it.
pub fn new_pif() -> Row {
    let mut row = new_row(P::UUID);
    row.write(P::CURRENTLY_ATTACHED, false);
    row.write(P::IGMP_SNOOPING_STATUS, PifIgmpStatus::Unknown_);
    row.write(P::IP_CONFIGURATION_MODE, IpConfigurationMode::None);
    row.write(P::BOND_SLAVE_OF, Ref::null());
    row.write(P::VLAN_MASTER_OF, Ref::null());
    row.write(P::IPV6_CONFIGURATION_MODE, Ipv6ConfigurationMode::None);
    row.write(P::PRIMARY_ADDRESS_TYPE, PrimaryAddressType::Ipv4);
    row.write(P::MANAGED, true);
    row.write(P::PCI, Ref::null());
    row
}

/// The IPv4 configuration fields that move with it (besides the mode).
const IPV4_CONFIG: [Field<Pif, String>; 4] = [P::IP, P::NETMASK, P::GATEWAY, P::DNS];

/// Move the IPv4 configuration from one PIF to another (bonds do this).
pub fn move_configuration(tx: &mut Txn, from: &str, to: &str) -> Result<()> {
    let c = pif_c();
    let src = get(tx, from)?;
    tx.update(c, to, |row| {
        row.write(P::IP_CONFIGURATION_MODE, src.read(P::IP_CONFIGURATION_MODE));
        for f in IPV4_CONFIG {
            row.write(f, src.read(f));
        }
    });
    tx.update(c, from, |row| {
        row.write(P::IP_CONFIGURATION_MODE, IpConfigurationMode::None);
        for f in IPV4_CONFIG {
            row.write(f, String::new());
        }
    });
    Ok(())
}

/// The bridge the management interface is on.
fn management_bridge(tx: &Txn, host: &str) -> String {
    let netc = &CLASS_NETWORK;
    pifs_where(tx, |p| p.read(P::MANAGEMENT) && p.read(P::HOST).as_str() == host)
        .first()
        .and_then(|p| tx.get(pif_c(), p))
        .and_then(|p| tx.get(netc, p.read(P::NETWORK).as_str()))
        .map(|n| n.read(N::BRIDGE))
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
        tx.refs(c).into_iter().filter(|n| tx.get(c, n).is_some_and(|row| row.read(N::BRIDGE) == bridge)).collect();
    if let [one] = found.as_slice() {
        return one.clone();
    }
    let n = model::new_ref();
    let mut row = new_row(N::UUID);
    row.write(N::NAME_LABEL, format!("Pool-wide network associated with {device}"));
    row.write(N::MTU, 1500);
    row.write(N::BRIDGE, bridge.to_string());
    row.write(N::MANAGED, true);
    tx.insert(&n, row);
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
    let mut row = new_pif();
    row.write(P::DEVICE, device.to_string());
    row.write(P::NETWORK, Ref::new(network));
    row.write(P::HOST, Ref::new(host));
    row.write(P::MAC, mac.to_string());
    row.write(P::MTU, 1500);
    row.write(P::VLAN, -1);
    row.write(P::METRICS, Ref::new(metrics));
    row.write(P::PHYSICAL, true);
    row.write(P::MANAGED, managed);
    row.write(P::PROPERTIES, BTreeMap::from([("gro".to_string(), "on".to_string())]));
    // A re-found management NIC is up and stays the management interface.
    row.write(P::MANAGEMENT, management);
    row.write(P::CURRENTLY_ATTACHED, management);
    tx.insert(&r, row);
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
    let bonded = tx.get(&CLASS_BOND, row.read(P::BOND_SLAVE_OF).as_str()).is_some();
    if bonded || !refs_to(tx, B::MASTER, r).is_empty() {
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
        let (c, r) = (pif_c(), self_.as_str());
        assert_dhcp_possible(self, mode.as_str())?;
        let attached = ctx.write(|tx| {
            let row = get(tx, r)?;
            assert_managed(r, &row)?;
            // Only a DNS change in unchanged static mode is safe under HA.
            let same = mode == IpConfigurationMode::Static
                && row.read(P::IP_CONFIGURATION_MODE) == mode
                && row.read(P::IP) == ip
                && row.read(P::NETMASK) == netmask
                && row.read(P::GATEWAY) == gateway;
            if !same {
                assert_no_protection(tx, &row)?;
            }
            if mode == IpConfigurationMode::Static {
                netutil::assert_ip(Family::V4, "IP", &ip)?;
                netutil::assert_ip(Family::V4, "netmask", &netmask)?;
            }
            for (name, v) in [("IP", &ip), ("netmask", &netmask), ("gateway", &gateway)] {
                if !v.is_empty() {
                    netutil::assert_ip(Family::V4, name, v)?;
                }
            }
            let management = row.read(P::MANAGEMENT);
            if management
                && mode == IpConfigurationMode::None
                && row.read(P::PRIMARY_ADDRESS_TYPE) == PrimaryAddressType::Ipv4
            {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            let mut all_dns = dns_of(Family::V4, &dns);
            all_dns.extend(dns_of(Family::V6, &row.read(P::DNS)));
            tx.update(c, r, |row| {
                row.write(P::IP_CONFIGURATION_MODE, mode.clone());
                row.write(P::IP, ip.clone());
                row.write(P::NETMASK, netmask.clone());
                row.write(P::GATEWAY, gateway.clone());
                row.write(P::DNS, all_dns.join(","));
                mark_host_ip(row);
            });
            if management && mode == IpConfigurationMode::Static {
                let host = row.read(P::HOST);
                tx.put(host.as_str(), fields::host::ADDRESS, ip.clone());
            }
            let attached = row.read(P::CURRENTLY_ATTACHED);
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
        let (c, r) = (pif_c(), self_.as_str());
        assert_dhcp_possible(self, mode.as_str())?;
        let attached = ctx.write(|tx| {
            let row = get(tx, r)?;
            assert_managed(r, &row)?;
            let same = mode == Ipv6ConfigurationMode::Static
                && row.read(P::IPV6_CONFIGURATION_MODE) == mode
                && row.read(P::IPV6) == vec![ipv6.clone()]
                && row.read(P::IPV6_GATEWAY) == gateway;
            if !same {
                assert_no_protection(tx, &row)?;
            }
            if !gateway.is_empty() {
                netutil::assert_ip(Family::V6, "gateway", &gateway)?;
            }
            if !ipv6.is_empty() {
                netutil::assert_cidr(Family::V6, "IPv6", &ipv6)?;
            }
            if row.read(P::MANAGEMENT)
                && mode == Ipv6ConfigurationMode::None
                && row.read(P::PRIMARY_ADDRESS_TYPE) == PrimaryAddressType::Ipv6
            {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            let mut all_dns = dns_of(Family::V6, &dns);
            all_dns.extend(dns_of(Family::V4, &row.read(P::DNS)));
            tx.update(c, r, |row| {
                row.write(P::IPV6_CONFIGURATION_MODE, mode.clone());
                row.write(P::IPV6_GATEWAY, gateway.clone());
                // As xapi: the one address given, even when empty.
                row.write(P::IPV6, vec![ipv6.clone()]);
                row.write(P::DNS, all_dns.join(","));
                mark_host_ip(row);
            });
            let attached = row.read(P::CURRENTLY_ATTACHED);
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
            if row.read(P::MANAGEMENT) {
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
            let bonds = refs_to(tx, B::MASTER, r);
            let has_properties = !bonds.is_empty() || row.read(P::PHYSICAL);
            if !has_properties || !is_null(row.read(P::BOND_SLAVE_OF).as_str()) {
                return Err(ApiError::CannotChangePifProperties { pif: r.to_string() });
            }
            let mut props =
                BTreeMap::<String, String>::from_value(row.get(fields::pif::PROPERTIES.index)).unwrap_or_default();
            props.insert(name.clone(), value.clone());
            let pv = props.to_value();
            tx.set(c, r, fields::pif::PROPERTIES.index, pv.clone());
            for bond in &bonds {
                for m in refs_to(tx, P::BOND_SLAVE_OF, bond) {
                    tx.set(c, &m, fields::pif::PROPERTIES.index, pv.clone());
                }
            }
            // Re-apply on the interface and the VLANs on top of it.
            let vlc = &CLASS_VLAN;
            let mut up: Vec<String> = vec![r.to_string()];
            up.extend(
                refs_to(tx, VL::TAGGED_PIF, r)
                    .iter()
                    .filter_map(|v| tx.get(vlc, v).map(|vr| vr.read(VL::UNTAGGED_PIF).into_string())),
            );
            if row.read(P::CURRENTLY_ATTACHED) {
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
            let known: Vec<String> = pifs_where(tx, |p| p.read(P::HOST).as_str() == h && p.read(P::PHYSICAL))
                .iter()
                .filter_map(|p| tx.read(p, P::DEVICE))
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
            let dup = !pifs_where(tx, |p| {
                p.read(P::HOST).as_str() == h && p.read(P::PHYSICAL) && p.read(P::DEVICE) == device
            })
            .is_empty();
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
            if row.read(P::MANAGEMENT) {
                return Err(ApiError::PifIsManagementInterface { pif: r.to_string() });
            }
            assert_not_in_bond(tx, r, &row)?;
            let vlan_tagged = row.get(fields::pif::VLAN.index).as_int().unwrap_or(-1) != -1;
            if !refs_to(tx, VL::TAGGED_PIF, r).is_empty() || vlan_tagged {
                return Err(ApiError::PifVlanStillExists { pif: r.to_string() });
            }
            let tunnels = refs_to(tx, T::TRANSPORT_PIF, r).len() + refs_to(tx, T::ACCESS_PIF, r).len();
            if tunnels > 0 {
                return Err(ApiError::PifTunnelStillExists { pif: r.to_string() });
            }
            assert_no_protection(tx, &row)?;
            if row.read(P::MANAGED) {
                bring_down(tx, r);
            }
            tx.delete(&CLASS_PIF_METRICS, row.read(P::METRICS).as_str());
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
            let mut row = new_pif();
            row.write(P::DEVICE, device);
            row.write(P::NETWORK, network);
            row.write(P::HOST, host);
            row.write(P::MAC, mac);
            row.write(P::MTU, mtu);
            row.write(P::VLAN, vlan);
            row.write(P::METRICS, Ref::new(metrics));
            row.write(P::PHYSICAL, physical);
            row.write(P::IP_CONFIGURATION_MODE, ip_configuration_mode);
            row.write(P::IP, ip);
            row.write(P::NETMASK, netmask);
            row.write(P::GATEWAY, gateway);
            row.write(P::DNS, dns);
            row.write(P::VLAN_MASTER_OF, vlan_master_of);
            row.write(P::MANAGEMENT, management);
            row.write(P::OTHER_CONFIG, other_config);
            row.write(P::DISALLOW_UNPLUG, disallow_unplug);
            row.write(P::IPV6_CONFIGURATION_MODE, ipv6_configuration_mode);
            row.write(P::IPV6, ipv6);
            row.write(P::IPV6_GATEWAY, ipv6_gateway);
            row.write(P::PRIMARY_ADDRESS_TYPE, primary_address_type);
            row.write(P::MANAGED, managed);
            row.write(P::PROPERTIES, properties);
            tx.insert(&r, row);
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
            crate::ops::vlan::destroy_tx(tx, row.read(P::VLAN_MASTER_OF).as_str())
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

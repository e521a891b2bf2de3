//! Bond: create (a Bond record and its master PIF, members marked
//! bond_slave_of, IP configuration, management, VLANs and VIFs moved onto
//! the bond), destroy (all of it moved back), set_mode and set_property, as
//! xapi_bond does it.

use crate::api::BondApi;
use crate::ops::netutil::{self, is_null, setify};
use crate::ops::pif::{self, get, refs_to, Kind};
use crate::ops::vlan;
use crate::rows::new_row;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::{CLASS_BOND, CLASS_PIF_METRICS, CLASS_VIF, CLASS_VLAN, CLASS_VM};
use model::types::fields;
use model::types::fields::{bond as B, pif as P, vif as VIF, vlan as VL, vm as VM};
use model::types::*;
use model::{Ref, Value, XenType};
use std::collections::BTreeMap;
use store::Txn;

type Props = BTreeMap<String, String>;

/// Keys a mode accepts: (key, default, valid value?).
type Requirement = (&'static str, Option<&'static str>, fn(&str) -> bool);

fn requirements(mode: &str) -> &'static [Requirement] {
    match mode {
        "lacp" => &[
            ("hashing_algorithm", Some("tcpudp_ports"), |v| matches!(v, "src_mac" | "tcpudp_ports")),
            ("lacp-time", Some("slow"), |v| matches!(v, "fast" | "slow")),
            ("lacp-aggregation-key", None, |v| crate::rows::ocaml_int(v).is_some()),
            ("lacp-fallback-ab", Some("true"), |v| matches!(v, "true" | "false")),
        ],
        _ => &[],
    }
}

/// INVALID_VALUE ["properties", "k = v"] unless the mode knows the key and value.
fn validate(mode: &str, k: &str, v: &str) -> Result<()> {
    let ok = requirements(mode).iter().any(|(key, _, valid)| *key == k && valid(v));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidValue { field: "properties".into(), value: format!("{k} = {v}") })
    }
}

fn add_defaults(mode: &str, props: &mut Props) {
    for (key, default, _) in requirements(mode) {
        if let Some(d) = default {
            props.entry(key.to_string()).or_insert_with(|| d.to_string());
        }
    }
}

fn bond_c() -> &'static model::ClassDef {
    &CLASS_BOND
}

/// Members of a bond, as the transaction sees them.
fn members_of(tx: &Txn, bond: &str) -> Vec<String> {
    refs_to(tx, P::BOND_SLAVE_OF, bond)
}

/// VIFs of local VMs on these networks (every VM not running elsewhere is
/// local on a one-host pool).
fn local_vifs(tx: &Txn, host: &str, networks: &[String]) -> Vec<String> {
    let (vifc, vmc) = (&CLASS_VIF, &CLASS_VM);
    let mut out = Vec::new();
    for n in networks {
        for v in refs_to(tx, VIF::NETWORK, n) {
            let resident = tx
                .get(vifc, &v)
                .and_then(|vr| tx.get(vmc, vr.read(VIF::VM).as_str()))
                .map(|vm| vm.read(VM::RESIDENT_ON));
            if resident.is_some_and(|r| r.as_str() == host || is_null(r.as_str())) {
                out.push(v);
            }
        }
    }
    out
}

/// Point VIFs at another network; returns the ones whose backend must follow.
fn move_vifs(tx: &mut Txn, vifs: &[String], network: &str) -> Vec<String> {
    let (vifc, vmc) = (&CLASS_VIF, &CLASS_VM);
    let mut active = Vec::new();
    for v in vifs {
        let Some(vr) = tx.get(vifc, v).cloned() else { continue };
        let suspended = tx
            .get(vmc, vr.read(VIF::VM).as_str())
            .is_some_and(|vm| vm.read(VM::POWER_STATE) == VmPowerState::Suspended);
        if vr.read(VIF::CURRENTLY_ATTACHED) && !suspended {
            active.push(v.clone());
        }
        tx.set(vifc, v, fields::vif::NETWORK.index, Value::from(network));
    }
    active
}

/// Re-home a VLAN from its tagged PIF onto `new_slave` (the bond master, or
/// a member again), keeping its network and IP configuration.
fn move_vlan(tx: &mut Txn, host: &str, new_slave: &str, old_vlan: &str) -> Result<Vec<String>> {
    let vc = &CLASS_VLAN;
    let vrow = tx.get(vc, old_vlan).cloned().ok_or_else(|| handle_invalid(vc, old_vlan))?;
    let old_master = vrow.read(VL::UNTAGGED_PIF).into_string();
    let tag = vrow.get(fields::vlan::TAG.index).as_int().unwrap_or(-1);
    let orow = get(tx, &old_master)?;
    let network = orow.read(P::NETWORK).into_string();
    let (plugged, mgmt) = (orow.read(P::CURRENTLY_ATTACHED), orow.read(P::MANAGEMENT));
    if plugged && !mgmt {
        pif::bring_down(tx, &old_master);
    }
    let same_tag = refs_to(tx, VL::TAGGED_PIF, new_slave)
        .into_iter()
        .find(|v| tx.get(vc, v).is_some_and(|r| r.get(fields::vlan::TAG.index).as_int() == Some(tag)));
    let mut moved = Vec::new();
    let new_master = match same_tag {
        Some(v) => {
            let nm = tx.read(&v, VL::UNTAGGED_PIF).map(Ref::into_string).unwrap_or_default();
            let new_net = get(tx, &nm).map(|r| r.read(P::NETWORK).into_string())?;
            let vifs = local_vifs(tx, host, std::slice::from_ref(&network));
            moved.extend(move_vifs(tx, &vifs, &new_net));
            nm
        }
        None => {
            let device = get(tx, new_slave).map(|r| r.read(P::DEVICE))?;
            vlan::create_internal(tx, host, new_slave, tag, &network, &device)?.1
        }
    };
    pif::move_configuration(tx, &old_master, &new_master)?;
    tx.delete(vc, old_vlan);
    tx.delete(pif::pif_c(), &old_master);
    if plugged {
        if mgmt {
            pif::move_management(tx, &old_master, &new_master)?;
        } else {
            pif::bring_up(tx, &new_master)?;
        }
    }
    Ok(moved)
}

/// PIF_ALREADY_BONDED, PIF_VLAN_EXISTS, IS_TUNNEL_ACCESS_PIF, PIF_IS_SRIOV_LOGICAL.
fn assert_bondable(tx: &Txn, r: &str) -> Result<()> {
    let row = get(tx, r)?;
    match pif::kind(tx, r, &row)? {
        Kind::Physical if tx.get(bond_c(), row.read(P::BOND_SLAVE_OF).as_str()).is_some() => {
            Err(ApiError::PifAlreadyBonded { pif: r.to_string() })
        }
        Kind::VlanUntagged(_) => Err(ApiError::PifVlanExists { pif: row.read(P::DEVICE) }),
        Kind::TunnelAccess(_) => Err(ApiError::IsTunnelAccessPif { pif: r.to_string() }),
        Kind::SriovLogical => Err(ApiError::PifIsSriovLogical { pif: r.to_string() }),
        _ => Ok(()),
    }
}

fn has_ip_conf(row: &model::Row) -> bool {
    match row.read(P::PRIMARY_ADDRESS_TYPE) {
        PrimaryAddressType::Ipv6 => row.read(P::IPV6_CONFIGURATION_MODE) != Ipv6ConfigurationMode::None,
        _ => row.read(P::IP_CONFIGURATION_MODE) != IpConfigurationMode::None,
    }
}

/// Bond.create in one transaction; returns the bond and the VIFs whose
/// backend NIC must move to the bond's bridge.
fn create_tx(
    tx: &mut Txn,
    network: &str,
    members: Vec<String>,
    mac: &str,
    mode: &str,
    properties: Props,
) -> Result<(String, Vec<String>)> {
    let Some(first) = members.first().cloned() else { return Err(ApiError::PifBondNeedsMoreMembers) };
    let host = get(tx, &first)?.read(P::HOST).into_string();
    pif::assert_network_managed(tx, network)?;
    pif::assert_no_other_local_pifs(tx, &host, network)?;
    let user_mac = !mac.is_empty();
    if user_mac && !netutil::is_valid_mac(mac) {
        return Err(ApiError::MacInvalid { mac: mac.to_string() });
    }
    for (k, v) in &properties {
        validate(mode, k, v)?;
    }
    let mut properties = properties;
    add_defaults(mode, &mut properties);
    let members = setify(members);
    let rows: Vec<model::Row> = members.iter().map(|m| get(tx, m)).collect::<Result<_>>()?;
    let vc = &CLASS_VLAN;
    let local_vlans: Vec<String> = members.iter().flat_map(|m| refs_to(tx, VL::TAGGED_PIF, m)).collect();
    let mgmt_on_vlan = local_vlans.iter().any(|v| {
        tx.get(vc, v)
            .and_then(|vr| tx.get(pif::pif_c(), vr.read(VL::UNTAGGED_PIF).as_str()))
            .is_some_and(|p| p.read(P::MANAGEMENT))
    });
    let management = members.iter().zip(&rows).find(|(_, r)| r.read(P::MANAGEMENT)).map(|(m, _)| m.clone());
    let with_ip: Vec<&String> = members.iter().zip(&rows).filter(|(_, r)| has_ip_conf(r)).map(|(m, _)| m).collect();
    let primary = management.clone().or_else(|| with_ip.first().map(|m| (*m).clone())).unwrap_or(first);
    let primary_row = get(tx, &primary)?;
    let address_type = primary_row.read(P::PRIMARY_ADDRESS_TYPE);
    if let Some((m, _)) = members.iter().zip(&rows).find(|(_, r)| r.read(P::PRIMARY_ADDRESS_TYPE) != address_type) {
        return Err(ApiError::PifIncompatiblePrimaryAddressType { pif: m.clone() });
    }
    let (bond_mac, auto_update_mac) =
        if user_mac { (mac.to_string(), false) } else { (primary_row.read(P::MAC), true) };
    let disallow_unplug = rows.iter().any(|r| r.read(P::DISALLOW_UNPLUG));
    for (m, r) in members.iter().zip(&rows) {
        pif::assert_managed(m, r)?;
        assert_bondable(tx, m)?;
    }
    if rows.iter().any(|r| r.read(P::HOST).as_str() != host) {
        return Err(ApiError::PifCannotBondCrossHost);
    }
    let props_of = |r: &model::Row| Props::from_value(r.get(P::PROPERTIES.index)).unwrap_or_default();
    let pif_props = props_of(&rows[0]);
    if rows.iter().any(|r| props_of(r) != pif_props) {
        return Err(ApiError::IncompatiblePifProperties);
    }
    if with_ip.len() > 1 {
        return Err(ApiError::PifBondMoreThanOneIp);
    }
    // bond0, bond1, … by the devices of existing bond masters on the host.
    let taken: Vec<String> = tx
        .refs(bond_c())
        .iter()
        .filter_map(|bd| tx.read(bd, B::MASTER))
        .filter_map(|m| {
            tx.get(pif::pif_c(), m.as_str()).filter(|p| p.read(P::HOST).as_str() == host).map(|p| p.read(P::DEVICE))
        })
        .collect();
    let device = (0..).map(|n| format!("bond{n}")).find(|d| !taken.contains(d)).unwrap_or_default();
    let metrics = pif::new_metrics(tx);
    let (master, bond) = (model::new_ref(), model::new_ref());
    let mut row = pif::new_pif();
    row.write(P::DEVICE, device);
    row.write(P::NETWORK, Ref::new(network));
    row.write(P::HOST, Ref::new(host.as_str()));
    row.write(P::MAC, bond_mac);
    row.write(P::MTU, -1);
    row.write(P::VLAN, -1);
    row.write(P::METRICS, Ref::new(metrics));
    row.write(P::PHYSICAL, false);
    row.write(P::IPV6, vec![String::new()]);
    row.write(P::PRIMARY_ADDRESS_TYPE, address_type);
    row.write(P::PROPERTIES, pif_props);
    tx.insert(&master, row);
    let mut row = new_row(B::UUID);
    row.write(B::MASTER, Ref::new(master.as_str()));
    row.write(B::PRIMARY_SLAVE, Ref::new(primary.as_str()));
    row.write(B::MODE, BondMode::from(mode));
    row.write(B::PROPERTIES, properties);
    row.write(B::LINKS_UP, 0);
    row.write(B::AUTO_UPDATE_MAC, auto_update_mac);
    tx.insert(&bond, row);
    let pc = pif::pif_c();
    for m in &members {
        tx.set(pc, m, fields::pif::BOND_SLAVE_OF.index, Value::from(bond.as_str()));
    }
    pif::move_configuration(tx, &primary, &master)?;
    match &management {
        Some(mg) => pif::move_management(tx, mg, &master)?,
        None if !mgmt_on_vlan => pif::bring_up(tx, &master)?,
        None => {}
    }
    let member_networks: Vec<String> = rows.iter().map(|r| r.read(P::NETWORK).into_string()).collect();
    let vifs = local_vifs(tx, &host, &member_networks);
    let mut moved = Vec::new();
    for v in &local_vlans {
        moved.extend(move_vlan(tx, &host, &master, v)?);
    }
    if mgmt_on_vlan {
        pif::bring_up(tx, &master)?;
    }
    moved.extend(move_vifs(tx, &vifs, network));
    if disallow_unplug {
        tx.set(pc, &master, fields::pif::DISALLOW_UNPLUG.index, Value::Bool(true));
        for m in &members {
            tx.set(pc, m, fields::pif::DISALLOW_UNPLUG.index, Value::Bool(false));
        }
    }
    Ok((bond, moved))
}

/// Bond.destroy in one transaction: configuration, management, VLANs and
/// VIFs go back to the primary member.
fn destroy_tx(tx: &mut Txn, bond: &str) -> Result<Vec<String>> {
    let bc = bond_c();
    let brow = tx.get(bc, bond).cloned().ok_or_else(|| handle_invalid(bc, bond))?;
    let master = brow.read(B::MASTER).into_string();
    let mrow = get(tx, &master)?;
    let members = members_of(tx, bond);
    let primary = Some(brow.read(B::PRIMARY_SLAVE).into_string())
        .filter(|p| tx.get(pif::pif_c(), p).is_some())
        .or_else(|| members.first().cloned())
        .ok_or(ApiError::PifBondNeedsMoreMembers)?;
    let primary_network = get(tx, &primary)?.read(P::NETWORK).into_string();
    let host = mrow.read(P::HOST).into_string();
    let plugged = mrow.read(P::CURRENTLY_ATTACHED);
    let vifs = local_vifs(tx, &host, &[mrow.read(P::NETWORK).into_string()]);
    let vc = &CLASS_VLAN;
    let local_vlans = refs_to(tx, VL::TAGGED_PIF, &master);
    let mgmt_on_vlan = local_vlans.iter().any(|v| {
        tx.get(vc, v)
            .and_then(|vr| tx.get(pif::pif_c(), vr.read(VL::UNTAGGED_PIF).as_str()))
            .is_some_and(|p| p.read(P::MANAGEMENT))
    });
    pif::move_configuration(tx, &master, &primary)?;
    if mrow.read(P::MANAGEMENT) {
        pif::move_management(tx, &master, &primary)?;
        for m in members.iter().filter(|m| **m != primary) {
            pif::bring_up(tx, m)?;
        }
    } else if plugged && !mgmt_on_vlan {
        for m in &members {
            pif::bring_up(tx, m)?;
        }
    }
    let mut moved = Vec::new();
    for v in &local_vlans {
        moved.extend(move_vlan(tx, &host, &primary, v)?);
    }
    if mgmt_on_vlan {
        for m in &members {
            pif::bring_up(tx, m)?;
        }
    }
    moved.extend(move_vifs(tx, &vifs, &primary_network));
    let pc = pif::pif_c();
    if mrow.read(P::DISALLOW_UNPLUG) {
        tx.set(pc, &primary, fields::pif::DISALLOW_UNPLUG.index, Value::Bool(true));
    }
    tx.delete(bc, bond);
    tx.delete(&CLASS_PIF_METRICS, mrow.read(P::METRICS).as_str());
    tx.delete(pc, &master);
    for m in &members {
        tx.set(pc, m, fields::pif::BOND_SLAVE_OF.index, Value::from(model::NULL_REF));
    }
    Ok(moved)
}

/// Bring moved VIFs' backend NICs onto their new bridges (best effort, as
/// the records are already committed).
async fn follow(ctx: &Ctx, vifs: Vec<String>) {
    for v in vifs {
        if let Err(e) = crate::ops::vif::rebridge(ctx, &v).await {
            tracing::warn!("moving VIF {v} to its new bridge: {e}");
        }
    }
}

impl BondApi for Server {
    async fn create(
        &self,
        ctx: &Ctx,
        network: Ref<Network>,
        members: Vec<Ref<Pif>>,
        mac: String,
        mode: BondMode,
        properties: BTreeMap<String, String>,
    ) -> Result<Ref<Bond>> {
        let members: Vec<String> = members.into_iter().map(Ref::into_string).collect();
        let (bond, moved) =
            ctx.write(|tx| create_tx(tx, network.as_str(), members, &mac, mode.as_str(), properties))?;
        let synced = crate::networkd::sync_for(ctx).await;
        follow(ctx, moved).await;
        synced.map(|()| Ref::new(bond))
    }

    async fn destroy(&self, ctx: &Ctx, self_: Ref<Bond>) -> Result<()> {
        let moved = ctx.write(|tx| destroy_tx(tx, self_.as_str()))?;
        let synced = crate::networkd::sync_for(ctx).await;
        follow(ctx, moved).await;
        synced
    }

    /// Keep the properties the new mode accepts, add its defaults, re-apply.
    async fn set_mode(&self, ctx: &Ctx, self_: Ref<Bond>, value: BondMode) -> Result<()> {
        let (bc, r, mode) = (bond_c(), self_.as_str(), value.as_str().to_string());
        ctx.write(|tx| {
            let row = tx.get(bc, r).cloned().ok_or_else(|| handle_invalid(bc, r))?;
            let mut props: Props = Props::from_value(row.get(fields::bond::PROPERTIES.index))
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| validate(&mode, k, v).is_ok())
                .collect();
            add_defaults(&mode, &mut props);
            tx.update(bc, r, |row| {
                row.fields[fields::bond::MODE.index] = Value::from(mode.as_str());
                row.fields[fields::bond::PROPERTIES.index] = props.to_value();
            });
            pif::bring_up(tx, row.read(B::MASTER).as_str())
        })?;
        crate::networkd::sync_for(ctx).await
    }

    async fn set_property(&self, ctx: &Ctx, self_: Ref<Bond>, name: String, value: String) -> Result<()> {
        let (bc, r) = (bond_c(), self_.as_str());
        ctx.write(|tx| {
            let row = tx.get(bc, r).cloned().ok_or_else(|| handle_invalid(bc, r))?;
            validate(row.read(B::MODE).as_str(), &name, &value)?;
            let mut props = Props::from_value(row.get(fields::bond::PROPERTIES.index)).unwrap_or_default();
            props.insert(name.clone(), value.clone());
            tx.set(bc, r, fields::bond::PROPERTIES.index, props.to_value());
            pif::bring_up(tx, row.read(B::MASTER).as_str())
        })?;
        crate::networkd::sync_for(ctx).await
    }
}

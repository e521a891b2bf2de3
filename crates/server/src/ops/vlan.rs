//! VLAN: create (a VLAN record and its untagged PIF on the chosen network)
//! and destroy, with xapi_vlan's checks.

use crate::api::VlanApi;
use crate::ops::netutil::{assert_no_protection, is_null};
use crate::ops::pif::{self, assert_managed, get, Kind};
use crate::rows::new_row;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::{CLASS_HOST, CLASS_HOST_METRICS, CLASS_VLAN};
use model::types::fields;
use model::types::fields::{host as H, pif as P, vlan as VL};
use model::types::*;
use model::Ref;
use store::Txn;

/// The MAC every untagged VLAN PIF carries in xapi.
const VLAN_MAC: &str = "fe:ff:ff:ff:ff:ff";

/// Make the VLAN record and its untagged PIF (which shares the tagged PIF's
/// metrics and copies its MTU); nothing is checked or plugged.
pub fn create_internal(
    tx: &mut Txn,
    host: &str,
    tagged: &str,
    tag: i64,
    network: &str,
    device: &str,
) -> Result<(String, String)> {
    let trow = get(tx, tagged)?;
    let (vlan, untagged) = (model::new_ref(), model::new_ref());
    let mut row = pif::new_pif();
    row.write(P::DEVICE, device.to_string());
    row.write(P::NETWORK, Ref::new(network));
    row.write(P::HOST, Ref::new(host));
    row.write(P::MAC, VLAN_MAC.to_string());
    row.write(P::MTU, trow.read(P::MTU));
    row.write(P::VLAN, tag);
    row.write(P::METRICS, trow.read(P::METRICS));
    row.write(P::PHYSICAL, false);
    row.write(P::VLAN_MASTER_OF, Ref::new(vlan.as_str()));
    // xapi records one empty IPv6 address on the PIFs it derives.
    row.write(P::IPV6, vec![String::new()]);
    row.write(P::PRIMARY_ADDRESS_TYPE, trow.read(P::PRIMARY_ADDRESS_TYPE));
    tx.insert(&untagged, row);
    let mut row = new_row(VL::UUID);
    row.write(VL::TAGGED_PIF, Ref::new(tagged));
    row.write(VL::UNTAGGED_PIF, Ref::new(untagged.as_str()));
    row.write(VL::TAG, tag);
    tx.insert(&vlan, row);
    Ok((vlan, untagged))
}

/// VLAN.create's checks in xapi's order, then the records; the untagged PIF
/// is plugged. Returns (VLAN, untagged PIF).
pub fn create_tx(tx: &mut Txn, tagged: &str, tag: i64, network: &str) -> Result<(String, String)> {
    pif::assert_network_managed(tx, network)?;
    let trow = get(tx, tagged)?;
    let host = trow.read(P::HOST).into_string();
    pif::assert_no_other_local_pifs(tx, &host, network)?;
    assert_managed(tagged, &trow)?;
    match pif::kind(tx, tagged, &trow)? {
        Kind::Physical if !is_null(trow.read(P::BOND_SLAVE_OF).as_str()) => {
            return Err(ApiError::CannotAddVlanToBondSlave { pif: tagged.to_string() })
        }
        Kind::VlanUntagged(_) => return Err(ApiError::PifIsVlan { pif: tagged.to_string() }),
        Kind::TunnelAccess(_) => return Err(ApiError::IsTunnelAccessPif { pif: tagged.to_string() }),
        _ => {}
    }
    // 4095 is reserved by 802.1Q.
    if !(0..=4094).contains(&tag) {
        return Err(ApiError::VlanTagInvalid { vlan: tag.to_string() });
    }
    let device = trow.read(P::DEVICE);
    let vc = &CLASS_VLAN;
    let exists = pif::refs_to(tx, VL::TAGGED_PIF, tagged)
        .iter()
        .any(|v| tx.get(vc, v).is_some_and(|vr| vr.get(fields::vlan::TAG.index).as_int() == Some(tag)));
    if exists {
        return Err(ApiError::PifVlanExists { pif: device });
    }
    let (vlan, untagged) = create_internal(tx, &host, tagged, tag, network, &device)?;
    pif::plug_tx(tx, &untagged)?;
    Ok((vlan, untagged))
}

/// VLAN.destroy: unplug and remove the untagged PIF with the VLAN (an
/// orphaned VLAN record just goes).
pub fn destroy_tx(tx: &mut Txn, vlan: &str) -> Result<()> {
    let vc = &CLASS_VLAN;
    let vrow = tx.get(vc, vlan).cloned().ok_or_else(|| handle_invalid(vc, vlan))?;
    let untagged = vrow.read(VL::UNTAGGED_PIF).into_string();
    let Some(urow) = tx.get(pif::pif_c(), &untagged).cloned() else {
        tx.delete(vc, vlan);
        return Ok(());
    };
    pif::assert_not_in_bond(tx, &untagged, &urow)?;
    assert_no_protection(tx, &urow)?;
    if urow.get(P::VLAN.index).as_int().unwrap_or(-1) < 0 {
        return Err(ApiError::Other { code: "PIF_IS_PHYSICAL".into(), params: vec![] });
    }
    pif::unplug_tx(tx, &untagged)?;
    tx.delete(vc, urow.read(P::VLAN_MASTER_OF).as_str());
    tx.delete(vc, vlan);
    tx.delete(pif::pif_c(), &untagged);
    Ok(())
}

/// PIF.create_VLAN: a VLAN on the host's untagged PIF of that device;
/// returns the new untagged PIF.
pub fn create_on_device(tx: &mut Txn, device: &str, network: &str, host: &str, tag: i64) -> Result<String> {
    let base = pif::pifs_where(tx, |p| {
        p.read(P::HOST).as_str() == host && p.read(P::DEVICE) == device && p.get(P::VLAN.index).as_int() == Some(-1)
    });
    let Some(tagged) = base.into_iter().next() else {
        return Err(ApiError::InvalidValue { field: "device".into(), value: device.to_string() });
    };
    create_tx(tx, &tagged, tag, network).map(|(_, untagged)| untagged)
}

/// pool.create_VLAN: the VLAN on that device of every host. One
/// transaction, so a failure on any host leaves none behind (xapi destroys
/// what it made, best effort).
pub fn pool_create_on_device(tx: &mut Txn, device: &str, network: &str, tag: i64) -> Result<Vec<String>> {
    let hosts = tx.refs(&CLASS_HOST);
    hosts.iter().map(|h| create_on_device(tx, device, network, h, tag)).collect()
}

/// pool.create_VLAN_from_PIF: a VLAN on every live host's PIF on the same
/// network as `pif` (so bonds work too); returns the untagged PIFs.
pub fn pool_create_from_pif(tx: &mut Txn, pif: &str, network: &str, tag: i64) -> Result<Vec<String>> {
    let prow = get(tx, pif)?;
    let (hc, mc) = (&CLASS_HOST, &CLASS_HOST_METRICS);
    let live = |tx: &Txn, host: &str| {
        tx.get(hc, host)
            .and_then(|h| tx.get(mc, h.read(H::METRICS).as_str()).map(|m| m.read(fields::host_metrics::LIVE)))
            .unwrap_or(false)
    };
    let pifs: Vec<String> = pif::refs_to(tx, P::NETWORK, prow.read(P::NETWORK).as_str())
        .into_iter()
        .filter(|p| tx.get(pif::pif_c(), p).is_some_and(|r| live(tx, r.read(P::HOST).as_str())))
        .collect();
    pifs.iter().map(|p| create_tx(tx, p, tag, network).map(|(_, untagged)| untagged)).collect()
}

impl VlanApi for Server {
    async fn create(&self, ctx: &Ctx, tagged_pif: Ref<Pif>, tag: i64, network: Ref<Network>) -> Result<Ref<Vlan>> {
        let (v, _) = ctx.write(|tx| create_tx(tx, tagged_pif.as_str(), tag, network.as_str()))?;
        crate::networkd::sync_for(ctx).await?;
        Ok(Ref::new(v))
    }

    async fn destroy(&self, ctx: &Ctx, self_: Ref<Vlan>) -> Result<()> {
        ctx.write(|tx| destroy_tx(tx, self_.as_str()))?;
        crate::networkd::sync_for(ctx).await
    }
}

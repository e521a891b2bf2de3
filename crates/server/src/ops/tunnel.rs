//! tunnel: create (an access PIF on the network over a transport PIF) and
//! destroy. Tunnels need Open vSwitch on every host; our host runs the
//! bridge backend, so create ends in OPENVSWITCH_NOT_ACTIVE after xapi's
//! other checks, as it would on a real bridge-mode pool.

use crate::api::TunnelApi;
use crate::ops::netutil::is_null;
use crate::ops::pif::{self, get, Kind};
use crate::rows::new_row;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::{CLASS_HOST, CLASS_TUNNEL};
use model::types::fields::{host as H, pif as P, tunnel as T};
use model::types::*;
use model::Ref;
use std::collections::BTreeMap;
use store::Txn;

/// The access PIF and tunnel records (device tunnelN, a random local MAC).
fn create_internal(
    tx: &mut Txn,
    transport: &str,
    network: &str,
    host: &str,
    protocol: &str,
) -> Result<(String, String)> {
    let trow = get(tx, transport)?;
    let taken: Vec<String> = pif::pifs_where(tx, |p| p.read(P::HOST).as_str() == host)
        .into_iter()
        .filter(|p| !pif::refs_to(tx, T::ACCESS_PIF, p).is_empty())
        .filter_map(|p| tx.read(&p, P::DEVICE))
        .collect();
    let device = (0..).map(|n| format!("tunnel{n}")).find(|d| !taken.contains(d)).unwrap_or_default();
    let mac = crate::ops::vif::gen_mac(0, &model::new_uuid(), "0");
    let (tunnel, access) = (model::new_ref(), model::new_ref());
    let mut row = pif::new_pif();
    row.write(P::DEVICE, device);
    row.write(P::NETWORK, Ref::new(network));
    row.write(P::HOST, Ref::new(host));
    row.write(P::MAC, mac);
    row.write(P::MTU, -1);
    row.write(P::VLAN, -1);
    row.write(P::METRICS, trow.read(P::METRICS));
    row.write(P::PHYSICAL, false);
    row.write(P::IPV6, vec![String::new()]);
    row.write(P::PRIMARY_ADDRESS_TYPE, trow.read(P::PRIMARY_ADDRESS_TYPE));
    tx.insert(&access, row);
    let mut row = new_row(T::UUID);
    row.write(T::ACCESS_PIF, Ref::new(access.as_str()));
    row.write(T::TRANSPORT_PIF, Ref::new(transport));
    row.write(T::STATUS, BTreeMap::from([("active".to_string(), "false".to_string())]));
    row.write(T::PROTOCOL, TunnelProtocol::from(protocol));
    tx.insert(&tunnel, row);
    Ok((tunnel, access))
}

fn create_tx(tx: &mut Txn, transport: &str, network: &str, protocol: &str) -> Result<String> {
    pif::assert_network_managed(tx, network)?;
    let trow = get(tx, transport)?;
    let host = trow.read(P::HOST).into_string();
    pif::assert_no_other_local_pifs(tx, &host, network)?;
    pif::assert_managed(transport, &trow)?;
    match pif::kind(tx, transport, &trow)? {
        Kind::Physical if !is_null(trow.read(P::BOND_SLAVE_OF).as_str()) => {
            return Err(ApiError::CannotAddTunnelToBondSlave { pif: transport.to_string() })
        }
        Kind::TunnelAccess(_) => return Err(ApiError::IsTunnelAccessPif { pif: transport.to_string() }),
        Kind::SriovLogical => return Err(ApiError::CannotAddTunnelToSriovLogical { pif: transport.to_string() }),
        _ => {}
    }
    let hc = &CLASS_HOST;
    let all_ovs = tx
        .refs(hc)
        .iter()
        .filter_map(|h| tx.get(hc, h))
        .all(|h| h.read(H::SOFTWARE_VERSION).get("network_backend").map(String::as_str) == Some("openvswitch"));
    if !all_ovs {
        return Err(ApiError::OpenvswitchNotActive);
    }
    let (tunnel, access) = create_internal(tx, transport, network, &host, protocol)?;
    pif::plug_tx(tx, &access)?;
    Ok(tunnel)
}

impl TunnelApi for Server {
    async fn create(
        &self,
        ctx: &Ctx,
        transport_pif: Ref<Pif>,
        network: Ref<Network>,
        protocol: TunnelProtocol,
    ) -> Result<Ref<Tunnel>> {
        ctx.write(|tx| create_tx(tx, transport_pif.as_str(), network.as_str(), protocol.as_str())).map(Ref::new)
    }

    /// Unplug and remove the access PIF, then the tunnel.
    async fn destroy(&self, ctx: &Ctx, self_: Ref<Tunnel>) -> Result<()> {
        let tc = &CLASS_TUNNEL;
        let t = self_.as_str();
        ctx.write(|tx| {
            let row = tx.get(tc, t).cloned().ok_or_else(|| handle_invalid(tc, t))?;
            let access = row.read(T::ACCESS_PIF).into_string();
            if tx.get(pif::pif_c(), &access).is_some() {
                pif::unplug_tx(tx, &access)?;
                tx.delete(pif::pif_c(), &access);
            }
            tx.delete(tc, t);
            Ok(())
        })
    }
}

//! tunnel: create (an access PIF on the network over a transport PIF) and
//! destroy. Tunnels need Open vSwitch on every host; our host runs the
//! bridge backend, so create ends in OPENVSWITCH_NOT_ACTIVE after xapi's
//! other checks, as it would on a real bridge-mode pool.

use crate::api::TunnelApi;
use crate::ops::netutil::{is_null, map_get, s};
use crate::ops::pif::{self, get, Kind};
use crate::rows::obj;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::{CLASS_HOST, CLASS_TUNNEL};
use model::types::*;
use model::{Ref, Value};
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
    let taken: Vec<String> = pif::pifs_where(tx, |p| s(p, "host") == host)
        .into_iter()
        .filter(|p| !pif::refs_to(tx, "tunnel", "access_PIF", p).is_empty())
        .filter_map(|p| tx.get(pif::pif_c(), &p).map(|r| s(r, "device")))
        .collect();
    let device = (0..).map(|n| format!("tunnel{n}")).find(|d| !taken.contains(d)).unwrap_or_default();
    let mac = crate::ops::vif::gen_mac(0, &model::new_uuid(), "0");
    let (tunnel, access) = (model::new_ref(), model::new_ref());
    pif::new_pif(
        tx,
        &access,
        vec![
            ("device", Value::from(device)),
            ("network", Value::from(network)),
            ("host", Value::from(host)),
            ("MAC", Value::from(mac)),
            ("MTU", Value::Int(-1)),
            ("VLAN", Value::Int(-1)),
            ("metrics", trow.get(crate::field(pif::pif_c(), "metrics")).clone()),
            ("physical", Value::Bool(false)),
            ("IPv6", Value::Array(vec![Value::from("")])),
            ("primary_address_type", Value::from(s(&trow, "primary_address_type"))),
        ],
    );
    obj(
        tx,
        "tunnel",
        &tunnel,
        vec![
            ("access_PIF", Value::from(access.as_str())),
            ("transport_PIF", Value::from(transport)),
            ("status", crate::rows::map(&[("active", "false")])),
            ("protocol", Value::from(protocol)),
        ],
    );
    Ok((tunnel, access))
}

fn create_tx(tx: &mut Txn, transport: &str, network: &str, protocol: &str) -> Result<String> {
    pif::assert_network_managed(tx, network)?;
    let trow = get(tx, transport)?;
    let host = s(&trow, "host");
    pif::assert_no_other_local_pifs(tx, &host, network)?;
    pif::assert_managed(transport, &trow)?;
    match pif::kind(tx, transport, &trow)? {
        Kind::Physical if !is_null(&s(&trow, "bond_slave_of")) => {
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
        .all(|h| map_get(h, "software_version", "network_backend").as_deref() == Some("openvswitch"));
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
            let access = s(&row, "access_PIF");
            if tx.get(pif::pif_c(), &access).is_some() {
                pif::unplug_tx(tx, &access)?;
                tx.delete(pif::pif_c(), &access);
            }
            tx.delete(tc, t);
            Ok(())
        })
    }
}

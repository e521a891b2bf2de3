//! network: constructor rules (bridge naming and checks, default MTU),
//! destroy, purposes and the default locking mode (xapi_network).

use crate::api::NetworkApi;
use crate::implicit::Hooks;
use crate::ops::netutil::listing;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::{CLASS_NETWORK, CLASS_SESSION, CLASS_VIF};
use model::types::fields;
use model::types::fields::{network as N, vif as VIF};
use model::types::*;
use model::{Ref, Row, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: Some(destroy), set: None };

/// Prefixes a client may not give its own bridges (they are the host's).
const BRIDGE_BLACKLIST: &[&str] = &["xen", "xapi", "vif", "tap", "eth"];

/// xapi numbers new bridges `xapi<N>` from a counter that only moves forward
/// while the server runs, skipping names in use.
static BRIDGE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Sessions between pool members may name any bridge (VM import does).
fn is_internal_session(ctx: &Ctx, tx: &Txn) -> bool {
    let sc = &CLASS_SESSION;
    tx.get(sc, &ctx.session).map(|row| row.read(fields::session::POOL)).unwrap_or(true)
}

/// network.create: MTU ≤ 0 means 1500; an empty bridge gets the next
/// `xapi<N>`; a chosen one must be new, short and not look like the host's.
fn create(ctx: &Ctx, tx: &mut Txn, _r: &str, row: &mut Row) -> Result<()> {
    let c = &CLASS_NETWORK;
    if row.read(fields::network::MTU) <= 0 {
        row.write(N::MTU, 1500);
    }
    let used: Vec<String> = tx.refs(c).iter().filter_map(|r| tx.read(r, N::BRIDGE)).collect();
    let bridge = row.read(N::BRIDGE);
    if bridge.is_empty() {
        let name = loop {
            let n = format!("xapi{}", BRIDGE_COUNTER.fetch_add(1, Ordering::Relaxed));
            if !used.contains(&n) {
                break n;
            }
        };
        row.write(N::BRIDGE, name);
        return Ok(());
    }
    let suspicious = bridge.len() > 15 || BRIDGE_BLACKLIST.iter().any(|p| bridge.starts_with(p));
    if suspicious && !is_internal_session(ctx, tx) {
        return Err(ApiError::InvalidValue { field: "bridge".into(), value: bridge });
    }
    if used.contains(&bridge) {
        return Err(ApiError::BridgeNameExists { bridge });
    }
    Ok(())
}

/// network.destroy: not with attached VIFs or any PIF, not the host-internal
/// management network; remaining (detached) VIFs go with it, as in xapi.
fn destroy(_ctx: &Ctx, tx: &mut Txn, r: &str, row: &Row) -> Result<()> {
    let vifc = &CLASS_VIF;
    let vifs: Vec<String> = row.read(N::VIFS).into_iter().map(Ref::into_string).collect();
    let connected: Vec<String> =
        vifs.iter().filter(|v| tx.read(v, VIF::CURRENTLY_ATTACHED) == Some(true)).cloned().collect();
    if !connected.is_empty() {
        return Err(listing("NETWORK_CONTAINS_VIF", connected));
    }
    let pifs: Vec<String> = row.read(N::PIFS).into_iter().map(Ref::into_string).collect();
    if !pifs.is_empty() {
        return Err(listing("NETWORK_CONTAINS_PIF", pifs));
    }
    if row.read(N::OTHER_CONFIG).get("is_host_internal_management_network").is_some_and(|v| v == "true") {
        return Err(ApiError::CannotDestroySystemNetwork { network: r.to_string() });
    }
    for v in vifs {
        tx.delete(vifc, &v);
    }
    Ok(())
}

fn purposes(row: &Row) -> Vec<String> {
    row.read(N::PURPOSE).iter().map(|p| p.as_str().to_string()).collect()
}

impl NetworkApi for Server {
    async fn add_purpose(&self, ctx: &Ctx, self_: Ref<Network>, value: NetworkPurpose) -> Result<()> {
        let c = &CLASS_NETWORK;
        let (r, new) = (self_.as_str(), value.as_str().to_string());
        ctx.write(|tx| {
            let row = tx.get(c, r).cloned().ok_or_else(|| handle_invalid(c, r))?;
            let mut cur = purposes(&row);
            if cur.contains(&new) {
                return Ok(());
            }
            // NBD with and without TLS cannot both be offered in a pool.
            let bad = match new.as_str() {
                "nbd" => Some("insecure_nbd"),
                "insecure_nbd" => Some("nbd"),
                _ => None,
            };
            if let Some(bad) = bad {
                let clash =
                    tx.refs(c).iter().any(|n| tx.get(c, n).is_some_and(|nr| purposes(nr).iter().any(|p| p == bad)));
                if clash {
                    return Err(ApiError::NetworkIncompatiblePurposes {
                        new_purpose: new.clone(),
                        conflicting_purpose: bad.to_string(),
                    });
                }
            }
            cur.insert(0, new.clone());
            tx.set(c, r, fields::network::PURPOSE.index, crate::ops::netutil::strs(&cur));
            Ok(())
        })
    }

    async fn remove_purpose(&self, ctx: &Ctx, self_: Ref<Network>, value: NetworkPurpose) -> Result<()> {
        let c = &CLASS_NETWORK;
        let r = self_.as_str();
        ctx.write(|tx| {
            let row = tx.get(c, r).cloned().ok_or_else(|| handle_invalid(c, r))?;
            let mut cur = purposes(&row);
            cur.retain(|p| p != value.as_str());
            tx.set(c, r, fields::network::PURPOSE.index, crate::ops::netutil::strs(&cur));
            Ok(())
        })
    }

    /// Refused while any VIF on the network is attached (VIF_IN_USE).
    async fn set_default_locking_mode(
        &self,
        ctx: &Ctx,
        network: Ref<Network>,
        value: NetworkDefaultLockingMode,
    ) -> Result<()> {
        let (c, vifc) = (&CLASS_NETWORK, &CLASS_VIF);
        let r = network.as_str();
        ctx.write(|tx| {
            let row = tx.get(c, r).cloned().ok_or_else(|| handle_invalid(c, r))?;
            let attached = |v: &Ref<Vif>| tx.get(vifc, v.as_str()).is_some_and(|vr| vr.read(VIF::CURRENTLY_ATTACHED));
            if let Some(v) = row.read(N::VIFS).into_iter().find(attached) {
                return Err(ApiError::VifInUse { network: r.to_string(), vif: v.into_string() });
            }
            tx.set(c, r, fields::network::DEFAULT_LOCKING_MODE.index, Value::from(value.as_str()));
            Ok(())
        })
    }
}

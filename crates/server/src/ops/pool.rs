//! pool: the explicit messages of a one-host pool. Joining other pools and
//! HA are refused with the errors xapi gives when they cannot work.

use crate::api::PoolApi;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::types::*;
use model::{Field, Ref, Value, XenType};
use std::collections::BTreeMap;

fn pool_c() -> &'static model::ClassDef {
    &model::schema::CLASS_POOL
}

impl Server {
    fn set_pool_field<T: XenType>(&self, ctx: &Ctx, pool: &str, f: Field<Pool, T>, v: T) -> Result<()> {
        let c = pool_c();
        ctx.write(|tx| if tx.put(pool, f, v) { Ok(()) } else { Err(handle_invalid(c, pool)) })
    }

    fn edit_pool_map(
        &self,
        ctx: &Ctx,
        pool: &str,
        map: Field<Pool, BTreeMap<String, String>>,
        f: impl FnOnce(&mut Vec<(String, Value)>),
    ) -> Result<()> {
        let c = pool_c();
        ctx.write(|tx| {
            if !tx.update(c, pool, |r| {
                // Edited as stored, keeping its key order.
                if let Value::Struct(m) = &mut r.fields[map.index] {
                    f(m);
                }
            }) {
                return Err(handle_invalid(c, pool));
            }
            Ok(())
        })
    }
}

impl PoolApi for Server {
    async fn install_ca_certificate(&self, _ctx: &Ctx, name: String, cert: String) -> Result<()> {
        crate::certs::install_ca(self, &name, &cert)
    }

    async fn uninstall_ca_certificate(&self, _ctx: &Ctx, name: String) -> Result<()> {
        crate::certs::uninstall_ca(self, &name)
    }

    async fn set_https_only(&self, ctx: &Ctx, self_: Ref<Pool>, value: bool) -> Result<()> {
        self.row(&model::schema::CLASS_POOL, self_.as_str())?;
        apply_https_only(self, ctx, value)
    }

    async fn enable_external_auth(
        &self,
        _ctx: &Ctx,
        pool: Ref<Pool>,
        config: BTreeMap<String, String>,
        service_name: String,
        auth_type: String,
    ) -> Result<()> {
        self.row(&model::schema::CLASS_POOL, pool.as_str())?;
        // A pool of one host: xapi wraps each host's failure with the host.
        crate::extauth::enable(self, config, &service_name, &auth_type).await.map_err(|e| pool_auth_error(self, e))
    }

    async fn disable_external_auth(
        &self,
        _ctx: &Ctx,
        pool: Ref<Pool>,
        _config: BTreeMap<String, String>,
    ) -> Result<()> {
        self.row(&model::schema::CLASS_POOL, pool.as_str())?;
        crate::extauth::disable(self)
    }

    async fn audit_log_append(&self, _ctx: &Ctx, line: String) -> Result<()> {
        // One line: an embedded newline would forge another record.
        let line = line.replace(['\n', '\r'], " ");
        self.audit.append(&line);
        Ok(())
    }

    async fn create_vlan(&self, ctx: &Ctx, device: String, network: Ref<Network>, vlan: i64) -> Result<Vec<Ref<Pif>>> {
        ctx.write(|tx| crate::ops::vlan::pool_create_on_device(tx, &device, network.as_str(), vlan))
            .map(|v| v.into_iter().map(Ref::new).collect())
    }

    async fn create_vlan_from_pif(
        &self,
        ctx: &Ctx,
        pif: Ref<Pif>,
        network: Ref<Network>,
        vlan: i64,
    ) -> Result<Vec<Ref<Pif>>> {
        ctx.write(|tx| crate::ops::vlan::pool_create_from_pif(tx, pif.as_str(), network.as_str(), vlan))
            .map(|v| v.into_iter().map(Ref::new).collect())
    }

    async fn sync_database(&self, _ctx: &Ctx) -> Result<()> {
        // Every acknowledged write is already on disk.
        Ok(())
    }

    async fn designate_new_master(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        crate::pooling::designate(self, host.as_str()).await
    }

    async fn join(
        &self,
        _ctx: &Ctx,
        master_address: String,
        master_username: String,
        master_password: String,
    ) -> Result<()> {
        crate::pooling::join(self, &master_address, &master_username, &master_password).await
    }

    /// The checks join_force relaxes (homogeneity) are not made here at all.
    async fn join_force(
        &self,
        _ctx: &Ctx,
        master_address: String,
        master_username: String,
        master_password: String,
    ) -> Result<()> {
        crate::pooling::join(self, &master_address, &master_username, &master_password).await
    }

    /// Every host's management moves to its PIF on `network` (one host here).
    async fn management_reconfigure(&self, ctx: &Ctx, network: Ref<Network>) -> Result<()> {
        use model::types::fields::pif as P;
        let (host, net) = (self.host.clone(), network.as_str().to_string());
        let changed = ctx.write(|tx| {
            if tx.get(&model::schema::CLASS_NETWORK, &net).is_none() {
                return Err(crate::handle_invalid(&model::schema::CLASS_NETWORK, &net));
            }
            let pifs = crate::ops::pif::pifs_where(tx, |p| {
                p.read(P::NETWORK).as_str() == net && p.read(P::HOST).as_str() == host
            });
            let Some(pif) = pifs.first() else {
                return Err(ApiError::PifNotPresent { host: host.clone(), network: net.clone() });
            };
            crate::ops::pif::management_reconfigure_tx(tx, pif)
        })?;
        if changed {
            crate::networkd::sync_for(ctx).await?;
        }
        Ok(())
    }

    async fn eject(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        crate::pooling::eject(self, host.as_str()).await
    }

    async fn emergency_transition_to_master(&self, _ctx: &Ctx) -> Result<()> {
        crate::pooling::emergency_transition(self).await
    }

    async fn emergency_reset_master(&self, _ctx: &Ctx, master_address: String) -> Result<()> {
        let address = master_address.trim();
        if address.is_empty() {
            return Err(ApiError::InvalidValue { field: "master_address".into(), value: master_address.clone() });
        }
        let engine = format!("{}:{}", crate::url_host(address), self.cfg.pool_port);
        crate::pooling::reset_master(self, &engine).await
    }

    async fn recover_slaves(&self, _ctx: &Ctx) -> Result<Vec<Ref<Host>>> {
        Ok(crate::pooling::recover_slaves(self).await?.into_iter().map(Ref::new).collect())
    }

    async fn enable_ha(
        &self,
        _ctx: &Ctx,
        _heartbeat_srs: Vec<Ref<Sr>>,
        _configuration: BTreeMap<String, String>,
    ) -> Result<()> {
        Err(ApiError::HaNotInstalled { host: self.host.clone() })
    }

    async fn disable_ha(&self, _ctx: &Ctx) -> Result<()> {
        Err(ApiError::HaNotEnabled)
    }

    async fn ha_compute_max_host_failures_to_tolerate(&self, _ctx: &Ctx) -> Result<i64> {
        Ok(0)
    }

    async fn ha_failover_plan_exists(&self, _ctx: &Ctx, n: i64) -> Result<bool> {
        Ok(n <= 0)
    }

    async fn set_ha_host_failures_to_tolerate(&self, ctx: &Ctx, self_: Ref<Pool>, value: i64) -> Result<()> {
        if value < 0 {
            return Err(ApiError::InvalidValue {
                field: "ha_host_failures_to_tolerate".into(),
                value: value.to_string(),
            });
        }
        self.set_pool_field(ctx, self_.as_str(), fields::pool::HA_HOST_FAILURES_TO_TOLERATE, value)
    }

    async fn get_license_state(&self, _ctx: &Ctx, self_: Ref<Pool>) -> Result<BTreeMap<String, String>> {
        self.row(pool_c(), self_.as_str())?;
        Ok(BTreeMap::from([
            ("edition".to_string(), "free".to_string()),
            ("expiry".to_string(), "20381231T00:00:00Z".to_string()),
        ]))
    }

    async fn apply_edition(&self, ctx: &Ctx, self_: Ref<Pool>, edition: String) -> Result<()> {
        self.row(pool_c(), self_.as_str())?;
        // Every host of the pool, as host.apply_edition does it for one.
        let hc = &model::schema::CLASS_HOST;
        ctx.write(|tx| {
            for h in tx.refs(hc) {
                tx.set(hc, &h, fields::host::EDITION.index, Value::String(edition.clone()));
            }
            Ok(())
        })
    }

    async fn has_extension(&self, _ctx: &Ctx, self_: Ref<Pool>, _name: String) -> Result<bool> {
        self.row(pool_c(), self_.as_str()).map(|_| false)
    }

    async fn certificate_list(&self, _ctx: &Ctx) -> Result<Vec<String>> {
        Ok(vec![])
    }

    async fn crl_list(&self, _ctx: &Ctx) -> Result<Vec<String>> {
        Ok(vec![])
    }

    async fn enable_tls_verification(&self, ctx: &Ctx) -> Result<()> {
        // Verification is of the certificates pool hosts present to each
        // other, which they always check (each accepts only the internal
        // certificates the pool's host_internal rows name: see certs.rs), so
        // turning it on is recording it.
        let (pc, hc) = (pool_c(), &model::schema::CLASS_HOST);
        ctx.write(|tx| {
            for p in tx.refs(pc) {
                tx.set(pc, &p, fields::pool::TLS_VERIFICATION_ENABLED.index, Value::Bool(true));
            }
            for h in tx.refs(hc) {
                tx.set(hc, &h, fields::host::TLS_VERIFICATION_ENABLED.index, Value::Bool(true));
            }
            Ok(())
        })
    }

    async fn set_igmp_snooping_enabled(&self, ctx: &Ctx, self_: Ref<Pool>, value: bool) -> Result<()> {
        self.set_pool_field(ctx, self_.as_str(), fields::pool::IGMP_SNOOPING_ENABLED, value)
    }

    async fn set_update_sync_enabled(&self, ctx: &Ctx, self_: Ref<Pool>, value: bool) -> Result<()> {
        self.set_pool_field(ctx, self_.as_str(), fields::pool::UPDATE_SYNC_ENABLED, value)
    }

    async fn disable_ssl_legacy(&self, ctx: &Ctx, self_: Ref<Pool>) -> Result<()> {
        self.row(pool_c(), self_.as_str())?;
        // Our TLS listener never offers SSLv3 or legacy ciphers: the hosts'
        // ssl_legacy says so (enable_ssl_legacy is a removed message).
        let hc = &model::schema::CLASS_HOST;
        ctx.write(|tx| {
            for h in tx.refs(hc) {
                tx.set(hc, &h, fields::host::SSL_LEGACY.index, Value::Bool(false));
            }
            Ok(())
        })
    }

    async fn add_to_guest_agent_config(&self, ctx: &Ctx, self_: Ref<Pool>, key: String, value: String) -> Result<()> {
        self.edit_pool_map(ctx, self_.as_str(), fields::pool::GUEST_AGENT_CONFIG, |m| {
            m.retain(|(k, _)| *k != key);
            m.push((key.clone(), Value::String(value.clone())));
        })
    }

    async fn remove_from_guest_agent_config(&self, ctx: &Ctx, self_: Ref<Pool>, key: String) -> Result<()> {
        self.edit_pool_map(ctx, self_.as_str(), fields::pool::GUEST_AGENT_CONFIG, |m| m.retain(|(k, _)| *k != key))
    }
}

/// A host's external-auth error as `pool.enable_external_auth` reports it
/// (xapi's `POOL_AUTH_ENABLE_FAILED_*` with the host).
fn pool_auth_error(s: &Server, e: ApiError) -> ApiError {
    let host = s.host.clone();
    match e {
        ApiError::AuthEnableFailedUnavailable { message } => {
            ApiError::PoolAuthEnableFailedUnavailable { host, message }
        }
        ApiError::AuthEnableFailedWrongCredentials { message } => {
            ApiError::PoolAuthEnableFailedWrongCredentials { host, message }
        }
        ApiError::AuthEnableFailed { message } => ApiError::PoolAuthEnableFailed { host, message },
        ApiError::AuthAlreadyEnabled { .. } => ApiError::PoolAuthAlreadyEnabled { host },
        other => other,
    }
}

/// Close (or reopen) plain HTTP on TCP: new connections to the HTTP
/// listeners are closed at once (the Unix socket and HTTPS stay), and the
/// host's `https_only` says so (and applies again at the next start).
pub fn apply_https_only(s: &Server, ctx: &Ctx, value: bool) -> Result<()> {
    let hc = &model::schema::CLASS_HOST;
    let host = s.host.clone();
    ctx.write(|tx| {
        tx.set(hc, &host, fields::host::HTTPS_ONLY.index, Value::Bool(value));
        Ok(())
    })?;
    s.https_only.store(value, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(value, "https_only");
    Ok(())
}

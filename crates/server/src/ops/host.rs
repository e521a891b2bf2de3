//! host: the explicit messages management tools call: enable/disable,
//! evacuation, shutdown and reboot of the simulated host, time, licences,
//! plugins, renaming.

use crate::api::HostApi;
use crate::rows::members;
use crate::rrd::sources::Owner;
use crate::{handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::{CLASS_HOST, CLASS_HOST_METRICS, CLASS_PIF, CLASS_VM};
use model::types::fields::{host as H, host_metrics as HM, pif as PIFF, vm as VMF};
use model::types::*;
use model::{DateTime, Ref, Value, XenType};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long the simulated host stays down on reboot.
pub const DOWN_FOR: Duration = Duration::from_secs(2);

/// Between the reply to host.restart_agent and the restart (xapi waits
/// too, so that the reply reaches the caller).
const RESTART_PAUSE: Duration = Duration::from_millis(500);

/// On start: the agent's start time is now (clients compare it to see that
/// a restart happened), and software_version says which hypervisor backend
/// runs the guests and with which accelerator (`qemu`/`kvm`, `qemu`/`tcg`,
/// `sim`/`none`).
pub fn startup(s: &Server) {
    let c = host_c();
    let now = format!("{}.", DateTime::now().secs);
    let facts = [("hypervisor", s.backend.name()), ("accelerator", s.backend.accelerator())];
    let res = s.db.write(|tx| {
        tx.update(c, &s.host, |r| {
            if let Value::Struct(oc) = &mut r.fields[H::OTHER_CONFIG.index] {
                upsert(oc, "agent_start_time", &now);
            }
            if let Value::Struct(sv) = &mut r.fields[H::SOFTWARE_VERSION.index] {
                for (k, v) in facts {
                    upsert(sv, k, v);
                }
            }
        });
        Ok::<_, ApiError>(())
    });
    if let Err(e) = res {
        tracing::warn!("cannot record agent_start_time: {e}");
    }
}

fn host_c() -> &'static model::ClassDef {
    &CLASS_HOST
}

/// Running guests (not the control domain) resident on a host.
fn running_guests(s: &Server, host: &str) -> Vec<String> {
    let c = &CLASS_VM;
    let st = s.db.read();
    let mut v: Vec<String> = st
        .table(c)
        .iter()
        .filter(|(_, r)| {
            r.read(VMF::RESIDENT_ON).as_str() == host
                && matches!(r.read(VMF::POWER_STATE), VmPowerState::Running | VmPowerState::Paused)
                && !r.read(VMF::IS_CONTROL_DOMAIN)
        })
        .map(|(r, _)| r.clone())
        .collect();
    v.sort();
    v
}

/// Shutdown and reboot only need a disabled host (xapi's
/// prepare_for_poweroff_precheck); the guests are stopped on the way down.
fn assert_host_disabled(s: &Server, host: &str) -> Result<()> {
    let row = s.row(host_c(), host)?;
    if row.read(H::ENABLED) {
        return Err(ApiError::HostNotDisabled);
    }
    Ok(())
}

/// Set a key of a map field, replacing its value where it is already there.
fn upsert(m: &mut Vec<(String, Value)>, key: &str, value: &str) {
    match m.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = Value::from(value),
        None => m.push((key.to_string(), Value::from(value))),
    }
}

fn set_live(s: &Server, host: &str, live: bool) {
    let (hc, hm) = (host_c(), &CLASS_HOST_METRICS);
    let _ = s.db.write(|tx| {
        let m = tx.get(hc, host).map(|r| r.read(H::METRICS).to_string()).unwrap_or_default();
        tx.update(hm, &m, |r| {
            r.fields[HM::LIVE.index] = Value::from(live);
            r.fields[HM::LAST_UPDATED.index] = Value::from(DateTime::now());
        });
        if live {
            tx.update(hc, host, |r| {
                r.fields[H::ENABLED.index] = Value::from(true);
                let now = format!("{}.", DateTime::now().secs);
                if let Value::Struct(oc) = &mut r.fields[H::OTHER_CONFIG.index] {
                    upsert(oc, "boot_time", &now);
                    upsert(oc, "agent_start_time", &now);
                }
            });
        }
        Ok::<_, ApiError>(())
    });
}

/// The simulated host stops its guests (clean shutdown, then forced, as
/// xapi's prepare_for_poweroff), goes down, then comes back (enabled) after a
/// moment.
/// The simulated host stops its guests and stays down until host.power_on.
fn power_off(s: &Server, host: &str) {
    let (s2, h) = (Clone::clone(s), host.to_string());
    tokio::spawn(async move {
        crate::ops::vm::shut_down_guests(&s2, &h).await;
        set_live(&s2, &h, false);
    });
}

fn power_cycle(s: &Server, host: &str) {
    let (s2, h) = (Clone::clone(s), host.to_string());
    tokio::spawn(async move {
        crate::ops::vm::shut_down_guests(&s2, &h).await;
        set_live(&s2, &h, false);
        tokio::time::sleep(DOWN_FOR).await;
        set_live(&s2, &h, true);
    });
}

/// The running guests that have no other host to go to.
fn evacuation_blockers(s: &Server, host: &str) -> BTreeMap<Ref<Vm>, Vec<String>> {
    running_guests(s, host)
        .into_iter()
        .filter(|vm| crate::ops::vm::migrate::target_for(s, vm, host).is_none())
        .map(|vm| (Ref::new(vm.clone()), vec!["NO_HOSTS_AVAILABLE".to_string(), vm]))
        .collect()
}

/// A plan entry as the error it stands for.
fn plan_error(e: &[String]) -> ApiError {
    match e.split_first() {
        Some((code, params)) => ApiError::Other { code: code.clone(), params: params.to_vec() },
        None => crate::internal("empty evacuation plan error"),
    }
}

fn assert_evacuable(s: &Server, host: &str) -> Result<()> {
    s.row(host_c(), host)?;
    let blockers = evacuation_blockers(s, host);
    if blockers.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = blockers.values().map(|e| e.join(",")).collect();
    Err(ApiError::CannotEvacuateHost { errors: errors.join("|") })
}

impl HostApi for Server {
    async fn install_server_certificate(
        &self,
        _ctx: &Ctx,
        host: Ref<Host>,
        certificate: String,
        private_key: String,
        certificate_chain: String,
    ) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        let checked = crate::certs::check(&certificate, &private_key, &certificate_chain)?;
        crate::certs::install(self, &certificate, &private_key, &certificate_chain, checked)
    }

    async fn reset_server_certificate(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        crate::certs::reset(self)
    }

    async fn refresh_server_certificate(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        crate::certs::refresh_internal(self).await
    }

    async fn emergency_reset_server_certificate(&self, _ctx: &Ctx) -> Result<()> {
        crate::certs::reset(self)
    }

    async fn get_server_certificate(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<String> {
        self.row(host_c(), host.as_str())?;
        crate::certs::current_pem(self).ok_or_else(|| crate::internal("this host serves no HTTPS"))
    }

    async fn set_https_only(&self, ctx: &Ctx, self_: Ref<Host>, value: bool) -> Result<()> {
        self.row(host_c(), self_.as_str())?;
        crate::ops::pool::apply_https_only(self, ctx, value)
    }

    async fn enable_external_auth(
        &self,
        _ctx: &Ctx,
        host: Ref<Host>,
        config: BTreeMap<String, String>,
        service_name: String,
        auth_type: String,
    ) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        crate::extauth::enable(self, config, &service_name, &auth_type).await
    }

    async fn disable_external_auth(
        &self,
        _ctx: &Ctx,
        host: Ref<Host>,
        _config: BTreeMap<String, String>,
    ) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        crate::extauth::disable(self)
    }

    async fn get_data_sources(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<Vec<DataSourceRecord>> {
        self.row(host_c(), host.as_str())?;
        Ok(crate::rrd::sources::api_list(self, Owner::Host))
    }

    async fn query_data_source(&self, _ctx: &Ctx, host: Ref<Host>, data_source: String) -> Result<f64> {
        self.row(host_c(), host.as_str())?;
        crate::rrd::sources::api_query(self, Owner::Host, &data_source)
    }

    async fn record_data_source(&self, _ctx: &Ctx, host: Ref<Host>, data_source: String) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        crate::rrd::sources::api_record(self, Owner::Host, &data_source)
    }

    async fn forget_data_source_archives(&self, _ctx: &Ctx, host: Ref<Host>, data_source: String) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        crate::rrd::sources::api_forget(self, Owner::Host, &data_source).await
    }

    /// As xcp-rrdd: answer at once and archive every RRD after `delay`
    /// seconds (this host is its own master, so the archive is local).
    async fn backup_rrds(&self, _ctx: &Ctx, host: Ref<Host>, delay: f64) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        // A day at most: a later backup is as good as none.
        let delay = if delay.is_finite() { delay.clamp(0.0, 86400.0) } else { 0.0 };
        let s = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs_f64(delay)).await;
            if let Err(e) = tokio::task::spawn_blocking(move || crate::rrd::sampler::save_all(&s)).await {
                tracing::error!("RRD backup failed: {e}");
            }
        });
        Ok(())
    }

    async fn get_servertime(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<DateTime> {
        self.row(host_c(), host.as_str())?;
        Ok(DateTime::now())
    }

    async fn get_server_localtime(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<DateTime> {
        self.row(host_c(), host.as_str())?;
        Ok(local_now())
    }

    async fn disable(&self, ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        let c = host_c();
        ctx.write(|tx| {
            if tx.set(c, host.as_str(), H::ENABLED.index, Value::Bool(false)) {
                Ok(())
            } else {
                Err(handle_invalid(c, host.as_str()))
            }
        })
    }

    async fn enable(&self, ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        let c = host_c();
        ctx.write(|tx| {
            if tx.set(c, host.as_str(), H::ENABLED.index, Value::Bool(true)) {
                Ok(())
            } else {
                Err(handle_invalid(c, host.as_str()))
            }
        })
    }

    async fn get_vms_which_prevent_evacuation(
        &self,
        _ctx: &Ctx,
        self_: Ref<Host>,
    ) -> Result<BTreeMap<Ref<Vm>, Vec<String>>> {
        self.row(host_c(), self_.as_str())?;
        Ok(evacuation_blockers(self, self_.as_str()))
    }

    async fn assert_can_evacuate(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        assert_evacuable(self, host.as_str())
    }

    async fn migrate_receive(
        &self,
        ctx: &Ctx,
        host: Ref<Host>,
        network: Ref<Network>,
        _options: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        self.row(&model::schema::CLASS_NETWORK, network.as_str())?;
        crate::ops::vm::migrate::receive_map(self, &ctx.session, host.as_str())
    }

    async fn evacuate(
        &self,
        ctx: &Ctx,
        host: Ref<Host>,
        _network: Ref<Network>,
        _evacuate_batch_size: i64,
    ) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        // Unlike assert_can_evacuate, a VM that cannot move fails the call with
        // its own plan error (xapi_host.ml, evacuate).
        if let Some(e) = evacuation_blockers(self, host.as_str()).values().next() {
            return Err(plan_error(e));
        }
        // One at a time, each to the host with most free memory then.
        for vm in running_guests(self, host.as_str()) {
            let dest =
                crate::ops::vm::migrate::target_for(self, &vm, host.as_str()).ok_or(ApiError::NoHostsAvailable)?;
            let (v, d) = (vm.clone(), dest.clone());
            crate::lifecycle::with_op(ctx, &vm, VmOperations::PoolMigrate, || async move {
                crate::ops::vm::migrate::move_to(ctx, &v, &d).await
            })
            .await?;
        }
        Ok(())
    }

    async fn get_uncooperative_resident_vms(&self, _ctx: &Ctx, self_: Ref<Host>) -> Result<Vec<Ref<Vm>>> {
        self.row(host_c(), self_.as_str())?;
        Ok(vec![])
    }

    async fn shutdown(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        assert_host_disabled(self, host.as_str())?;
        power_off(self, host.as_str());
        Ok(())
    }

    async fn reboot(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        assert_host_disabled(self, host.as_str())?;
        power_cycle(self, host.as_str());
        Ok(())
    }

    async fn power_on(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        set_live(self, host.as_str(), true);
        Ok(())
    }

    async fn restart_agent(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        self.row(host_c(), host.as_str())?;
        // The reply goes out first; the binary then stops cleanly and starts
        // itself again (xapid's main), and the new process records a new
        // agent_start_time, which is what clients wait for.
        crate::request_restart(RESTART_PAUSE);
        Ok(())
    }

    async fn license_add(&self, ctx: &Ctx, host: Ref<Host>, contents: String) -> Result<()> {
        // Any well-formed base64 licence is accepted; it lifts nothing further
        // because the simulated host is unrestricted already.
        if contents.trim().is_empty()
            || !contents.trim().bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=\n\r".contains(&b))
        {
            return Err(ApiError::LicenseProcessingError);
        }
        let c = host_c();
        ctx.write(|tx| {
            if !tx.update(c, host.as_str(), |r| {
                if let Value::Struct(m) = &mut r.fields[H::LICENSE_PARAMS.index] {
                    m.retain(|(k, _)| k != "sku_type");
                    m.push(("sku_type".into(), Value::from("licensed")));
                }
                r.write(H::EDITION, "licensed".to_string());
            }) {
                return Err(handle_invalid(c, host.as_str()));
            }
            Ok(())
        })
    }

    async fn license_remove(&self, ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        let c = host_c();
        ctx.write(|tx| {
            if tx.put(host.as_str(), H::EDITION, "free".to_string()) {
                Ok(())
            } else {
                Err(handle_invalid(c, host.as_str()))
            }
        })
    }

    async fn apply_edition(&self, ctx: &Ctx, host: Ref<Host>, edition: String, _force: bool) -> Result<()> {
        let c = host_c();
        ctx.write(|tx| {
            if tx.set(c, host.as_str(), H::EDITION.index, Value::String(edition.clone())) {
                Ok(())
            } else {
                Err(handle_invalid(c, host.as_str()))
            }
        })
    }

    /// The documented `echo` plugin: function `echo` returns its arguments as
    /// `key=value` lines (sorted); function `ping` returns "pong".
    async fn call_plugin(
        &self,
        _ctx: &Ctx,
        host: Ref<Host>,
        plugin: String,
        r#fn: String,
        args: BTreeMap<String, String>,
    ) -> Result<String> {
        self.row(host_c(), host.as_str())?;
        if plugin != "echo" {
            return Err(ApiError::XenapiMissingPlugin { name: plugin });
        }
        match r#fn.as_str() {
            "echo" => Ok(args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")),
            "ping" => Ok("pong".into()),
            other => Err(ApiError::XenapiPluginFailure {
                status: "UnknownFunction".into(),
                stdout: String::new(),
                stderr: format!("the echo plugin has no function {other}"),
            }),
        }
    }

    async fn has_extension(&self, _ctx: &Ctx, host: Ref<Host>, _name: String) -> Result<bool> {
        self.row(host_c(), host.as_str()).map(|_| false)
    }

    async fn set_hostname_live(&self, ctx: &Ctx, host: Ref<Host>, hostname: String) -> Result<()> {
        let c = host_c();
        let row = self.row(c, host.as_str())?;
        // The AD plugin cannot follow a hostname change.
        let auth = row.read(H::EXTERNAL_AUTH_TYPE).to_string();
        if auth == "AD" {
            return Err(ApiError::AuthAlreadyEnabled {
                current_auth_type: auth,
                current_service_name: row.read(H::EXTERNAL_AUTH_SERVICE_NAME).to_string(),
            });
        }
        check_hostname(&hostname)?;
        let vm = &CLASS_VM;
        ctx.write(|tx| {
            if !tx.update(c, host.as_str(), |r| {
                r.fields[H::HOSTNAME.index] = Value::from(hostname.as_str());
                if let Value::Struct(m) = &mut r.fields[H::SOFTWARE_VERSION.index] {
                    m.retain(|(k, _)| k != "hostname");
                    m.push(("hostname".into(), Value::String(hostname.clone())));
                }
            }) {
                return Err(handle_invalid(c, host.as_str()));
            }
            // The control domain keeps its default name in step with the hostname
            // (a name the administrator chose is left alone).
            let dom0 = tx.get(c, host.as_str()).map(|r| r.read(H::CONTROL_DOMAIN).to_string()).unwrap_or_default();
            let label = tx.get(vm, &dom0).and_then(|r| {
                (r.read(VMF::RESIDENT_ON).as_str() == host.as_str()).then(|| r.read(VMF::NAME_LABEL).to_string())
            });
            let wanted = format!("{DOM0_NAME_STEM}{hostname}");
            if let Some(label) = label {
                if label.starts_with(DOM0_NAME_STEM) && label != wanted {
                    tx.set(vm, &dom0, VMF::NAME_LABEL.index, Value::String(wanted));
                }
            }
            Ok(())
        })
    }

    async fn compute_free_memory(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<i64> {
        let (hc, hm) = (host_c(), &CLASS_HOST_METRICS);
        let row = self.row(hc, host.as_str())?;
        let m = row.read(H::METRICS).to_string();
        Ok(self.row(hm, &m)?.get(HM::MEMORY_FREE.index).as_int().unwrap_or(0))
    }

    async fn compute_memory_overhead(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<i64> {
        let metrics = self.row(host_c(), host.as_str())?.read(model::types::fields::host::METRICS);
        let total = self.db.read().read(metrics.as_str(), model::types::fields::host_metrics::MEMORY_TOTAL);
        Ok(total.unwrap_or(0) / 100)
    }

    async fn management_reconfigure(&self, ctx: &Ctx, pif: Ref<Pif>) -> Result<()> {
        if ctx.write(|tx| crate::ops::pif::management_reconfigure_tx(tx, pif.as_str()))? {
            crate::networkd::sync_for(ctx).await?;
        }
        Ok(())
    }

    /// Only for a pool member cut off from its master (emergency mode),
    /// which a single host never is.
    async fn local_management_reconfigure(&self, _ctx: &Ctx, _interface: String) -> Result<()> {
        Err(ApiError::NotInEmergencyMode)
    }

    async fn get_management_interface(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<Ref<Pif>> {
        let (hc, pc) = (host_c(), &CLASS_PIF);
        let row = self.row(hc, host.as_str())?;
        let st = self.db.read();
        members(row.get(H::PIFS.index))
            .into_iter()
            .find(|p| st.get(pc, p).is_some_and(|r| r.read(PIFF::MANAGEMENT)))
            .map(Ref::new)
            .ok_or_else(|| ApiError::PifNotPresent { host: host.to_string(), network: String::new() })
    }

    async fn get_system_status_capabilities(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<String> {
        self.row(host_c(), host.as_str())?;
        Ok("<?xml version=\"1.0\" ?><system-status-capabilities></system-status-capabilities>".into())
    }

    async fn get_log(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<String> {
        self.row(host_c(), host.as_str()).map(|_| String::new())
    }

    async fn dmesg(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<String> {
        self.row(host_c(), host.as_str()).map(|_| "(simulated hypervisor: no messages)\n".to_string())
    }

    async fn dmesg_clear(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<String> {
        self.row(host_c(), host.as_str()).map(|_| String::new())
    }

    async fn list_methods(&self, _ctx: &Ctx) -> Result<Vec<String>> {
        Ok(crate::rows::list_methods().into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    }

    async fn set_power_on_mode(
        &self,
        ctx: &Ctx,
        self_: Ref<Host>,
        power_on_mode: String,
        power_on_config: BTreeMap<String, String>,
    ) -> Result<()> {
        let c = host_c();
        ctx.write(|tx| {
            if !tx.update(c, self_.as_str(), |r| {
                r.fields[H::POWER_ON_MODE.index] = Value::from(power_on_mode.as_str());
                r.fields[H::POWER_ON_CONFIG.index] = power_on_config.to_value();
            }) {
                return Err(handle_invalid(c, self_.as_str()));
            }
            Ok(())
        })
    }

    async fn set_iscsi_iqn(&self, ctx: &Ctx, host: Ref<Host>, value: String) -> Result<()> {
        if value.is_empty() {
            return Err(ApiError::InvalidValue { field: "value".into(), value });
        }
        let c = host_c();
        ctx.write(|tx| {
            if !tx.update(c, host.as_str(), |r| {
                r.fields[H::ISCSI_IQN.index] = Value::from(value.as_str());
                if let Value::Struct(m) = &mut r.fields[H::OTHER_CONFIG.index] {
                    m.retain(|(k, _)| k != "iscsi_iqn");
                    m.push(("iscsi_iqn".into(), Value::String(value.clone())));
                }
            }) {
                return Err(handle_invalid(c, host.as_str()));
            }
            Ok(())
        })
    }

    async fn enable_display(&self, ctx: &Ctx, host: Ref<Host>) -> Result<HostDisplay> {
        let c = host_c();
        ctx.write(|tx| {
            if tx.put(host.as_str(), H::DISPLAY, HostDisplay::Enabled) {
                Ok(())
            } else {
                Err(handle_invalid(c, host.as_str()))
            }
        })?;
        Ok(HostDisplay::Enabled)
    }

    async fn disable_display(&self, ctx: &Ctx, host: Ref<Host>) -> Result<HostDisplay> {
        let c = host_c();
        ctx.write(|tx| {
            if tx.put(host.as_str(), H::DISPLAY, HostDisplay::Disabled) {
                Ok(())
            } else {
                Err(handle_invalid(c, host.as_str()))
            }
        })?;
        Ok(HostDisplay::Disabled)
    }

    /// A dead member's record goes (xapi_host.ml destroy): never this host,
    /// nor one that is live, nor one that still has guests on it.
    async fn destroy(&self, _ctx: &Ctx, self_: Ref<Host>) -> Result<()> {
        let h = self_.as_str();
        self.row(host_c(), h)?;
        if h == self.host {
            return Err(ApiError::HostCannotDestroySelf { host: self_.to_string() });
        }
        if crate::ops::vm::host_is_live(self, h) {
            return Err(ApiError::HostIsLive { host: self_.to_string() });
        }
        if !running_guests(self, h).is_empty() {
            return Err(ApiError::HostHasResidentVms { host: self_.to_string() });
        }
        crate::pooling::forget(self, h).await
    }

    /// A member known to be dead: its guests are marked Halted and the host
    /// disabled (xapi_host.ml declare_dead); a live host is refused.
    async fn declare_dead(&self, ctx: &Ctx, host: Ref<Host>) -> Result<()> {
        let h = host.as_str();
        self.row(host_c(), h)?;
        if h == self.host || crate::ops::vm::host_is_live(self, h) {
            return Err(ApiError::HostIsLive { host: host.to_string() });
        }
        let guests = running_guests(self, h);
        ctx.write(|tx| {
            for vm in &guests {
                crate::xenops::mark_stopped(tx, vm, false);
            }
            tx.put(h, model::types::fields::host::ENABLED, false);
            Ok(())
        })
    }
}

/// The default name of a host's control domain, before the hostname.
pub const DOM0_NAME_STEM: &str = "Control domain on host: ";

/// xapi's hostname rules: not empty, at most 255 characters, only ASCII
/// letters, digits, '.' and '-', and no '-' at either end.
pub fn check_hostname(name: &str) -> Result<()> {
    let invalid = |reason: &str| Err(ApiError::HostNameInvalid { reason: reason.to_string() });
    if name.is_empty() {
        return invalid("hostname empty");
    }
    if name.len() > 255 {
        return invalid("hostname is too long");
    }
    let chars_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !chars_ok || name.starts_with('-') || name.ends_with('-') {
        return invalid("hostname contains invalid characters");
    }
    Ok(())
}

/// The host's local time, written without a zone (as xapi does).
pub fn local_now() -> DateTime {
    let now = DateTime::now();
    // SAFETY: localtime_r only reads `t` and writes the caller-owned `tm`.
    let offset = unsafe {
        let t = now.secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    };
    DateTime { secs: now.secs + offset, zone: model::datetime::Zone::Unqualified }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> Option<String> {
        match check_hostname(name) {
            Ok(()) => None,
            Err(ApiError::HostNameInvalid { reason }) => Some(reason),
            Err(e) => Some(e.to_string()),
        }
    }

    #[test]
    fn hostname_rules() {
        assert_eq!(reason(""), Some("hostname empty".into()));
        assert_eq!(reason(&"x".repeat(256)), Some("hostname is too long".into()));
        assert_eq!(reason(&"h".repeat(255)), None);
        assert_eq!(reason(&"h".repeat(64)), None);
        for bad in ["bad_name", "a b", "-abc", "abc-", "-", "h\u{e9}te"] {
            assert_eq!(reason(bad), Some("hostname contains invalid characters".into()), "{bad}");
        }
        for good in ["a", "sim-host.example", "a..b", ".lead", "trail.", "0-9"] {
            assert_eq!(reason(good), None, "{good}");
        }
    }
}

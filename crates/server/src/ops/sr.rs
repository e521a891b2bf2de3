//! SR: create/introduce/forget/destroy/scan/probe/update and the setters,
//! xapi's SR operation rules (SM features, attached PBDs, emptiness,
//! serialisation) and the derived `allowed_operations`.

use crate::api::SrApi;
use crate::lifecycle::sr::*;
use crate::lifecycle::{self};
use crate::rows::members;
use crate::rows::new_row;
use crate::storage::scan::{self, DECLARED_SIZE};
use crate::storage::{self, blocking, configured_dir, Driver};
use crate::{ApiError, Ctx, Result, Server};
use model::schema::ClassDef;
use model::schema::{CLASS_HOST, CLASS_PBD, CLASS_SR};
use model::types::fields;
use model::types::fields::{pbd as PBD, sr as SR};
use model::types::*;
use model::{Field, Ref, Value, XenType};
use std::collections::BTreeMap;
use store::Txn;

fn sr_c() -> &'static ClassDef {
    &CLASS_SR
}

// ---------------------------------------------------------------- helpers

/// Remove the SR's records: PBDs, VDIs (with their VBDs) and the SR.
fn really_forget(tx: &mut Txn, sr: &str) {
    let c = sr_c();
    let Some(row) = tx.get(c, sr).cloned() else { return };
    for p in members(row.get(fields::sr::PBDS.index)) {
        tx.delete(&CLASS_PBD, &p);
    }
    for v in members(row.get(fields::sr::VDIS.index)) {
        scan::forget_vdi(tx, &v);
    }
    tx.delete(c, sr);
}

fn map_value(m: &BTreeMap<String, String>) -> Value {
    m.to_value()
}

/// On start: refresh SM records and make plugged SRs' directories.
pub fn startup(s: &Server) {
    crate::logged(
        "refreshing the SM records",
        s.db.write(|tx| {
            storage::sm::sync(tx);
            Ok::<_, ApiError>(())
        }),
    );
    let dirs: Vec<(Driver, std::path::PathBuf)> = {
        let st = s.db.read();
        st.table(sr_c())
            .iter()
            .filter(|(r, _)| storage::plugged_pbd(&st, r, &s.host).is_some())
            .filter_map(|(r, row)| {
                Some((storage::driver_of(row).ok()?, storage::sr_dir(&st, &s.cfg.data_dir, r, &s.host)?))
            })
            .collect()
    };
    let roots = s.cfg.allowed_sr_roots();
    for (d, dir) in dirs {
        if let Err(e) = storage::check_sr_dir(&roots, d, &dir).and_then(|()| d.attach(&dir)) {
            tracing::warn!("cannot attach SR directory {}: {:?}", dir.display(), e.to_wire());
        }
    }
    if crate::pooling::is_member(s) {
        tokio::spawn(plug_shared(s.clone()));
    }
}

/// On a member: plug this host's PBDs of the pool's shared SRs that are not
/// attached (a new member's, made by the join), as xapi's hosts attach
/// their shared storage when they start. The master may not answer at
/// once, so a few tries.
async fn plug_shared(s: Server) {
    let todo: Vec<String> = {
        let st = s.db.read();
        st.table(&CLASS_PBD)
            .iter()
            .filter(|(_, p)| p.read(fields::pbd::HOST).as_str() == s.host && !p.read(fields::pbd::CURRENTLY_ATTACHED))
            .filter(|(_, p)| {
                st.get(sr_c(), p.read(fields::pbd::SR).as_str()).is_some_and(|r| r.read(fields::sr::SHARED))
            })
            .map(|(r, _)| r.clone())
            .collect()
    };
    for pbd in todo {
        let ctx = Ctx::new(s.clone(), String::new(), "PBD.plug".to_string(), true);
        for attempt in 1..=10 {
            match crate::ops::pbd::plug(&ctx, &pbd).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(pbd, attempt, "cannot plug this host's PBD of a shared SR: {:?}", e.to_wire());
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                }
            }
        }
    }
}

/// The SR's uuid, which names its RRD.
fn sr_uuid(s: &Server, sr: &str) -> Result<String> {
    Ok(s.row(sr_c(), sr)?.read(fields::sr::UUID))
}

// --------------------------------------------------------------- messages

impl SrApi for Server {
    async fn get_data_sources(&self, _ctx: &Ctx, sr: Ref<Sr>) -> Result<Vec<DataSourceRecord>> {
        let uuid = sr_uuid(self, sr.as_str())?;
        Ok(crate::rrd::sources::api_list(self, crate::rrd::sources::Owner::Sr(&uuid)))
    }

    async fn query_data_source(&self, _ctx: &Ctx, sr: Ref<Sr>, data_source: String) -> Result<f64> {
        let uuid = sr_uuid(self, sr.as_str())?;
        crate::rrd::sources::api_query(self, crate::rrd::sources::Owner::Sr(&uuid), &data_source)
    }

    async fn record_data_source(&self, _ctx: &Ctx, sr: Ref<Sr>, data_source: String) -> Result<()> {
        let uuid = sr_uuid(self, sr.as_str())?;
        crate::rrd::sources::api_record(self, crate::rrd::sources::Owner::Sr(&uuid), &data_source)
    }

    async fn forget_data_source_archives(&self, _ctx: &Ctx, sr: Ref<Sr>, data_source: String) -> Result<()> {
        let uuid = sr_uuid(self, sr.as_str())?;
        crate::rrd::sources::api_forget(self, crate::rrd::sources::Owner::Sr(&uuid), &data_source).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        ctx: &Ctx,
        host: Ref<Host>,
        device_config: BTreeMap<String, String>,
        physical_size: i64,
        name_label: String,
        name_description: String,
        r#type: String,
        content_type: String,
        shared: bool,
        sm_config: BTreeMap<String, String>,
    ) -> Result<Ref<Sr>> {
        self.row(&CLASS_HOST, host.as_str())?;
        let ty = r#type.to_ascii_lowercase();
        let driver = Driver::of(&ty).ok_or_else(|| ApiError::SrUnknownDriver { driver: ty.clone() })?;
        crate::ops::pbd::assert_no_srmaster_key(&device_config)?;
        let (sr, uuid) = (model::new_ref(), model::new_uuid());
        // A shared SR gets a PBD on every host of the pool, as xapi makes
        // them; each host attaches its own.
        let hosts: Vec<String> = if shared {
            let mut all: Vec<String> = self.db.read().table(&CLASS_HOST).iter().map(|(h, _)| h.clone()).collect();
            all.sort_by_key(|h| h != host.as_str());
            all
        } else {
            vec![host.as_str().to_string()]
        };
        let pbds: Vec<(String, String)> = hosts.into_iter().map(|h| (h, model::new_ref())).collect();
        let dc = map_value(&device_config);
        let dir = configured_dir(&dc).unwrap_or_else(|| self.cfg.data_dir.join("sr").join(&uuid));
        let (roots, d2) = (self.cfg.allowed_sr_roots(), dir.clone());
        blocking(move || storage::check_sr_dir(&roots, driver, &d2)).await?;
        let mut smc = sm_config;
        if physical_size > 0 {
            smc.insert(DECLARED_SIZE.to_string(), physical_size.to_string());
        }
        ctx.write(|tx| {
            let mut row = new_row(SR::UUID);
            row.write(SR::UUID, uuid.clone());
            row.write(SR::NAME_LABEL, name_label.clone());
            row.write(SR::NAME_DESCRIPTION, name_description.clone());
            row.write(SR::TYPE, ty.clone());
            row.write(SR::CONTENT_TYPE, content_type.clone());
            row.write(SR::SHARED, shared);
            row.write(SR::PHYSICAL_SIZE, physical_size.max(0));
            row.write(SR::OTHER_CONFIG, BTreeMap::new());
            row.write(SR::SM_CONFIG, smc.clone());
            tx.insert(&sr, row);
            for (h, pbd) in &pbds {
                let mut row = new_row(PBD::UUID);
                row.write(PBD::HOST, Ref::new(h.as_str()));
                row.write(PBD::SR, Ref::new(sr.as_str()));
                row.write(PBD::DEVICE_CONFIG, device_config.clone());
                row.write(PBD::CURRENTLY_ATTACHED, false);
                tx.insert(pbd, row);
            }
            Ok(())
        })?;
        let forget = || {
            ctx.write(|tx| {
                for (_, pbd) in &pbds {
                    tx.delete(&CLASS_PBD, pbd);
                }
                tx.delete(sr_c(), &sr);
                Ok(())
            })
        };
        let made = blocking(move || driver.create_sr(&dir)).await;
        if let Err(e) = made {
            crate::logged("removing an SR introduced by a failed create", forget());
            return Err(e);
        }
        // The other hosts plug PBDs they must see first.
        ctx.durable().await?;
        for (h, pbd) in &pbds {
            let plugged = if *h == self.host {
                crate::ops::pbd::plug(ctx, pbd).await
            } else {
                crate::pooling::forward(self, h, "PBD.plug", &[Value::from(pbd.as_str())]).await.map(drop)
            };
            if let Err(e) = plugged {
                // Not half made: the SR goes (its directory stays, as after
                // SR.forget); the error says why.
                tracing::warn!(host = %h, "a new SR's PBD did not plug: {:?}", e.to_wire());
                crate::logged("removing an SR whose PBDs did not plug", forget());
                return Err(e);
            }
        }
        Ok(Ref::new(sr))
    }

    async fn introduce(
        &self,
        ctx: &Ctx,
        uuid: String,
        name_label: String,
        name_description: String,
        r#type: String,
        content_type: String,
        shared: bool,
        sm_config: BTreeMap<String, String>,
    ) -> Result<Ref<Sr>> {
        let uuid = if uuid.is_empty() { model::new_uuid() } else { uuid };
        let sr = model::new_ref();
        ctx.write(|tx| {
            if tx.state().table(sr_c()).by_uuid(&uuid).is_some() {
                return Err(ApiError::SrUuidExists { uuid: uuid.clone() });
            }
            // Sizes are unknown until the SR is plugged and scanned.
            let mut row = new_row(SR::UUID);
            row.write(SR::UUID, uuid.clone());
            row.write(SR::NAME_LABEL, name_label.clone());
            row.write(SR::NAME_DESCRIPTION, name_description.clone());
            row.write(SR::TYPE, r#type.to_ascii_lowercase());
            row.write(SR::CONTENT_TYPE, content_type.clone());
            row.write(SR::SHARED, shared);
            row.write(SR::PHYSICAL_SIZE, -1);
            row.write(SR::PHYSICAL_UTILISATION, -1);
            row.write(SR::VIRTUAL_ALLOCATION, 0);
            row.write(SR::OTHER_CONFIG, BTreeMap::new());
            row.write(SR::SM_CONFIG, sm_config.clone());
            tx.insert(&sr, row);
            Ok(())
        })?;
        Ok(Ref::new(sr))
    }

    async fn make(
        &self,
        _ctx: &Ctx,
        _host: Ref<Host>,
        _device_config: BTreeMap<String, String>,
        _physical_size: i64,
        _name_label: String,
        _name_description: String,
        _type: String,
        _content_type: String,
        _sm_config: BTreeMap<String, String>,
    ) -> Result<String> {
        Err(ApiError::MessageDeprecated)
    }

    async fn forget(&self, ctx: &Ctx, sr: Ref<Sr>) -> Result<()> {
        lifecycle::with_op(ctx, sr.as_str(), StorageOperations::Forget, || async {
            ctx.write(|tx| {
                really_forget(tx, sr.as_str());
                Ok(())
            })
        })
        .await
    }

    async fn destroy(&self, ctx: &Ctx, sr: Ref<Sr>) -> Result<()> {
        lifecycle::with_op(ctx, sr.as_str(), StorageOperations::Destroy, || async {
            let (driver, dir) = {
                let st = self.db.read();
                let row = st.get(sr_c(), sr.as_str()).ok_or_else(|| crate::handle_invalid(sr_c(), sr.as_str()))?;
                let dir = storage::sr_dir(&st, &self.cfg.data_dir, sr.as_str(), &self.host)
                    .ok_or_else(|| crate::internal("SR has no directory"))?;
                (storage::driver_of(row)?, dir)
            };
            let roots = self.cfg.allowed_sr_roots();
            blocking(move || {
                storage::check_sr_dir(&roots, driver, &dir)?;
                driver.destroy_sr(&dir)
            })
            .await?;
            ctx.write(|tx| {
                really_forget(tx, sr.as_str());
                Ok(())
            })
        })
        .await
    }

    async fn scan(&self, ctx: &Ctx, sr: Ref<Sr>) -> Result<()> {
        lifecycle::with_op(ctx, sr.as_str(), StorageOperations::Scan, || scan::scan_sr(ctx, sr.as_str())).await
    }

    async fn update(&self, ctx: &Ctx, sr: Ref<Sr>) -> Result<()> {
        scan::update_sr(ctx, sr.as_str()).await
    }

    async fn probe(
        &self,
        _ctx: &Ctx,
        host: Ref<Host>,
        device_config: BTreeMap<String, String>,
        r#type: String,
        _sm_config: BTreeMap<String, String>,
    ) -> Result<String> {
        let found = self.probe_srs(&host, &device_config, &r#type).await?;
        Ok(storage::driver::probe_xml(&found.iter().map(|(u, _, _)| u.clone()).collect::<Vec<_>>()))
    }

    async fn probe_ext(
        &self,
        _ctx: &Ctx,
        host: Ref<Host>,
        device_config: BTreeMap<String, String>,
        r#type: String,
        _sm_config: BTreeMap<String, String>,
    ) -> Result<Vec<Value>> {
        let found = self.probe_srs(&host, &device_config, &r#type).await?;
        Ok(found
            .into_iter()
            .map(|(uuid, total, free)| {
                let sr = Value::Struct(vec![
                    ("uuid".into(), Value::from(uuid.as_str())),
                    ("name_label".into(), Value::from("")),
                    ("name_description".into(), Value::from("")),
                    ("total_space".into(), Value::Int(total)),
                    ("free_space".into(), Value::Int(free)),
                    ("clustered".into(), Value::Bool(false)),
                    ("health".into(), Value::from("healthy")),
                ]);
                Value::Struct(vec![
                    ("configuration".into(), map_value(&device_config)),
                    ("complete".into(), Value::Bool(true)),
                    ("sr".into(), sr),
                    ("extra_info".into(), Value::empty_map()),
                ])
            })
            .collect())
    }

    async fn get_supported_types(&self, _ctx: &Ctx) -> Result<Vec<String>> {
        Ok(Driver::ALL.iter().map(|d| d.sm().ty.to_string()).collect())
    }

    async fn set_name_label(&self, ctx: &Ctx, sr: Ref<Sr>, value: String) -> Result<()> {
        set_field(ctx, sr.as_str(), SR::NAME_LABEL, value)
    }

    async fn set_name_description(&self, ctx: &Ctx, sr: Ref<Sr>, value: String) -> Result<()> {
        set_field(ctx, sr.as_str(), SR::NAME_DESCRIPTION, value)
    }

    async fn set_shared(&self, ctx: &Ctx, sr: Ref<Sr>, value: bool) -> Result<()> {
        let c = sr_c();
        ctx.write(|tx| {
            let row = tx.get(c, sr.as_str()).cloned().ok_or_else(|| crate::handle_invalid(c, sr.as_str()))?;
            let pbds = linked(tx, PBD::SR, sr.as_str(), row.get(fields::sr::PBDS.index));
            if !value && pbds.len() > 1 {
                // xapi lists every PBD.
                return Err(ApiError::Other { code: "SR_HAS_MULTIPLE_PBDS".into(), params: pbds });
            }
            tx.put(sr.as_str(), fields::sr::SHARED, value);
            Ok(())
        })
    }

    async fn set_physical_size(&self, ctx: &Ctx, self_: Ref<Sr>, value: i64) -> Result<()> {
        let c = sr_c();
        ctx.write(|tx| {
            let found = tx.update(c, self_.as_str(), |row| {
                row.write(SR::PHYSICAL_SIZE, value);
                if let Value::Struct(m) = &mut row.fields[fields::sr::SM_CONFIG.index] {
                    m.retain(|(k, _)| k != DECLARED_SIZE);
                    m.push((DECLARED_SIZE.to_string(), Value::from(value.to_string())));
                }
            });
            if found {
                Ok(())
            } else {
                Err(crate::handle_invalid(c, self_.as_str()))
            }
        })
    }
}

fn set_field<T: XenType>(ctx: &Ctx, sr: &str, f: Field<Sr, T>, v: T) -> Result<()> {
    let c = sr_c();
    let v = v.to_value();
    ctx.write(|tx| if tx.set(c, sr, f.index, v) { Ok(()) } else { Err(crate::handle_invalid(c, sr)) })
}

impl Server {
    /// SRs found by a probe: (uuid, total bytes, free bytes) per SR
    /// directory under device_config:path/location (default: the data dir's).
    async fn probe_srs(
        &self,
        host: &Ref<Host>,
        device_config: &BTreeMap<String, String>,
        ty: &str,
    ) -> Result<Vec<(String, i64, i64)>> {
        self.row(&CLASS_HOST, host.as_str())?;
        let driver = Driver::of(ty).ok_or_else(|| ApiError::SrUnknownDriver { driver: ty.to_ascii_lowercase() })?;
        let dir = configured_dir(&map_value(device_config)).unwrap_or_else(|| self.cfg.data_dir.join("sr"));
        let roots = self.cfg.allowed_sr_roots();
        blocking(move || {
            storage::check_sr_dir(&roots, driver, &dir)?;
            Ok(storage::driver::probe_dir(&dir)
                .into_iter()
                .map(|u| {
                    let sub = if dir.ends_with(&u) { dir.clone() } else { dir.join(&u) };
                    let (t, f) = storage::files::statvfs(&sub).unwrap_or((0, 0));
                    (u, t, f)
                })
                .collect())
        })
        .await
    }
}

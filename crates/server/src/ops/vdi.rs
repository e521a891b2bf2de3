//! VDI: the constructor and destructor (which make and remove the file
//! through the SR's driver), resize, clone, snapshot, copy, introduce,
//! forget, update, the setters, and xapi's VDI operation rules with the
//! derived `allowed_operations`.
//!
//! As in xapi, an operation marks both the SR (`vdi_create`, `vdi_resize`…)
//! and the VDI, so conflicting work is serialised and SM features apply.

use crate::api::VdiApi;
use crate::lifecycle;
use crate::lifecycle::sr::linked;
use crate::lifecycle::vdi::{sr_c, vdi_c};
use crate::rows::members;
use crate::storage::{self, blocking, Format};
use crate::{ApiError, Ctx, Result, Server};
use model::schema::{CLASS_VBD, CLASS_VBD_METRICS, CLASS_VM};
use model::types::fields;
use model::types::*;
use model::{DateTime, Ref, Row, Value, XenType};
use std::collections::BTreeMap;

// ------------------------------------------------------- ctor and dtor

/// VDI.create: the SR is marked `vdi_create` (which checks the driver can
/// create VDIs), must be plugged, and the driver makes the file.
pub async fn create(ctx: &Ctx, rec: &Value) -> Result<String> {
    let c = vdi_c();
    let row = crate::implicit::row_from_ctor(c, rec)?;
    if row.read(fields::vdi::TYPE) == VdiType::CbtMetadata {
        return Err(ApiError::VdiIncompatibleType { vdi: String::new(), r#type: "cbt_metadata".into() });
    }
    let sr = row.read(fields::vdi::SR).into_string();
    ctx.server.row(sr_c(), &sr)?;
    lifecycle::with_op(ctx, &sr, StorageOperations::VdiCreate, || async {
        storage::assert_plugged(&ctx.server, &sr)?;
        storage::create_vdi_row(ctx, row).await
    })
    .await
}

fn assert_managed(row: &Row, vdi: &str) -> Result<()> {
    if row.get(fields::vdi::MANAGED.index).as_bool() == Some(true) {
        Ok(())
    } else {
        Err(ApiError::VdiNotManaged { vdi: vdi.to_string() })
    }
}

/// VDI.destroy: refused while attached; removes the file, the record, its
/// VBDs, and clears VMs' suspend_VDI references to it.
pub async fn destroy(ctx: &Ctx, vdi: &str) -> Result<()> {
    let s = &ctx.server;
    let sr = s.row(vdi_c(), vdi)?.read(fields::vdi::SR).into_string();
    lifecycle::with_op(ctx, &sr, StorageOperations::VdiDestroy, || {
        lifecycle::with_op(ctx, vdi, VdiOperations::Destroy, || async {
            storage::assert_plugged(s, &sr)?;
            assert_managed(&*s.row(vdi_c(), vdi)?, vdi)?;
            ctx.write(|tx| {
                let (c, bc, vm) = (vdi_c(), &CLASS_VBD, &CLASS_VM);
                let row = tx.get(c, vdi).cloned().ok_or_else(|| crate::handle_invalid(c, vdi))?;
                let vbds = linked(tx, fields::vbd::VDI, vdi, row.get(fields::vdi::VBDS.index));
                if vbds.iter().any(|b| tx.get(bc, b).is_some_and(|r| r.read(fields::vbd::CURRENTLY_ATTACHED))) {
                    return Err(ApiError::VdiInUse { vdi: vdi.to_string(), operation: "destroy".into() });
                }
                for b in vbds {
                    if let Some(m) = tx.get(bc, &b).map(|r| r.read(fields::vbd::METRICS).into_string()) {
                        tx.delete(&CLASS_VBD_METRICS, &m);
                    }
                    tx.delete(bc, &b);
                }
                let sus = fields::vm::SUSPEND_VDI.index;
                for v in tx.refs(vm) {
                    if tx.get(vm, &v).is_some_and(|r| r.get(sus).as_str() == Some(vdi)) {
                        tx.set(vm, &v, sus, Value::from(model::NULL_REF));
                    }
                }
                Ok(())
            })?;
            storage::destroy_vdi(ctx, vdi).await
        })
    })
    .await
}

/// VDIs may change these only while no VBD's VM is running (xapi:
/// VM_BAD_POWER_STATE [vm; "halted"; actual]).
fn assert_not_on_running_vm(s: &Server, vdi: &str) -> Result<()> {
    let (c, bc) = (vdi_c(), &CLASS_VBD);
    let st = s.db.read();
    let row = st.get(c, vdi).ok_or_else(|| crate::handle_invalid(c, vdi))?;
    for b in members(row.get(fields::vdi::VBDS.index)) {
        let Some(v) = st.get(bc, &b).map(|r| r.read(fields::vbd::VM).into_string()) else { continue };
        // A VM that is gone does not count.
        if let Some(ps) = st.read(&v, fields::vm::POWER_STATE).filter(|ps| *ps != VmPowerState::Halted) {
            let actual = ps.as_str().to_lowercase();
            return Err(ApiError::VmBadPowerState { vm: v, expected: "halted".into(), actual });
        }
    }
    Ok(())
}

fn set_field(ctx: &Ctx, vdi: &str, f: usize, v: Value) -> Result<()> {
    let c = vdi_c();
    ctx.write(|tx| if tx.set(c, vdi, f, v) { Ok(()) } else { Err(crate::handle_invalid(c, vdi)) })
}

/// Run `f` with the SR marked `sr_op` and the VDI marked `vdi_op`.
async fn with_sr_and_vdi<T, F, Fut>(
    ctx: &Ctx,
    vdi: &str,
    sr_op: StorageOperations,
    vdi_op: VdiOperations,
    f: F,
) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let sr = storage::sr_of(&ctx.server, vdi)?;
    let sr2 = sr.clone();
    lifecycle::with_op(ctx, &sr, sr_op, || lifecycle::with_op(ctx, vdi, vdi_op, || f(sr2))).await
}

async fn resize(ctx: &Ctx, vdi: &str, size: i64, op: VdiOperations) -> Result<()> {
    with_sr_and_vdi(ctx, vdi, StorageOperations::VdiResize, op, |sr| async move {
        let s = &ctx.server;
        storage::assert_plugged(s, &sr)?;
        let (driver, path, format, current) = {
            let st = s.db.read();
            let row = st.get(vdi_c(), vdi).ok_or_else(|| crate::handle_invalid(vdi_c(), vdi))?;
            assert_managed(row, vdi)?;
            let srow = st.get(sr_c(), &sr).ok_or_else(|| crate::handle_invalid(sr_c(), &sr))?;
            let path = storage::vdi_path(s, &st, vdi)
                .ok_or_else(|| ApiError::VdiMissing { sr: sr.clone(), vdi: vdi.to_string() })?;
            (
                storage::driver_of(srow)?,
                path,
                Format::of_vdi(row.get(fields::vdi::SM_CONFIG.index)),
                row.get(fields::vdi::VIRTUAL_SIZE.index).as_int().unwrap_or(0),
            )
        };
        let new = blocking(move || driver.vdi_resize(&path, format, current, size)).await?;
        set_field(ctx, vdi, fields::vdi::VIRTUAL_SIZE.index, Value::Int(new))?;
        if new > current {
            // The new space counts as changed for changed-block tracking.
            let (s2, v) = (<Server as Clone>::clone(s), vdi.to_string());
            let grown = [(current.max(0) as u64, (new - current) as u64)];
            blocking(move || storage::cbt_mark(&s2, &v, Some(&grown))).await?;
        }
        storage::refresh_vdi_usage(ctx, vdi).await?;
        storage::refresh_sr_usage(ctx, &sr)
    })
    .await
}

// --------------------------------------------------------------- messages

impl VdiApi for Server {
    async fn resize(&self, ctx: &Ctx, vdi: Ref<Vdi>, size: i64) -> Result<()> {
        resize(ctx, vdi.as_str(), size, VdiOperations::Resize).await
    }

    async fn resize_online(&self, ctx: &Ctx, vdi: Ref<Vdi>, size: i64) -> Result<()> {
        resize(ctx, vdi.as_str(), size, VdiOperations::ResizeOnline).await
    }

    async fn clone(&self, ctx: &Ctx, vdi: Ref<Vdi>, _driver_params: BTreeMap<String, String>) -> Result<Ref<Vdi>> {
        let v = vdi.as_str();
        with_sr_and_vdi(ctx, v, StorageOperations::VdiClone, VdiOperations::Clone, |sr| async move {
            storage::assert_plugged(self, &sr)?;
            assert_managed(&*self.row(vdi_c(), v)?, v)?;
            storage::clone_vdi(ctx, v).await
        })
        .await
        .map(Ref::new)
    }

    async fn snapshot(&self, ctx: &Ctx, vdi: Ref<Vdi>, _driver_params: BTreeMap<String, String>) -> Result<Ref<Vdi>> {
        let v = vdi.as_str();
        with_sr_and_vdi(ctx, v, StorageOperations::VdiSnapshot, VdiOperations::Snapshot, |sr| async move {
            storage::assert_plugged(self, &sr)?;
            assert_managed(&*self.row(vdi_c(), v)?, v)?;
            storage::snapshot_vdi(ctx, v).await
        })
        .await
        .map(Ref::new)
    }

    async fn enable_cbt(&self, ctx: &Ctx, vdi: Ref<Vdi>) -> Result<()> {
        let v = vdi.as_str();
        with_sr_and_vdi(ctx, v, StorageOperations::VdiEnableCbt, VdiOperations::EnableCbt, |sr| async move {
            storage::assert_plugged(self, &sr)?;
            let row = self.row(vdi_c(), v)?;
            if row.get(fields::vdi::IS_A_SNAPSHOT.index).as_bool() == Some(true) {
                return Err(ApiError::OperationNotAllowed { reason: "CBT cannot be enabled on a snapshot".into() });
            }
            if row.read(fields::vdi::ON_BOOT) == OnBoot::Reset {
                return Err(ApiError::VdiOnBootModeIncompatibleWithOperation);
            }
            storage::cbt_enable(ctx, v).await
        })
        .await
    }

    async fn disable_cbt(&self, ctx: &Ctx, vdi: Ref<Vdi>) -> Result<()> {
        let v = vdi.as_str();
        with_sr_and_vdi(ctx, v, StorageOperations::VdiDisableCbt, VdiOperations::DisableCbt, |sr| async move {
            storage::assert_plugged(self, &sr)?;
            if self.row(vdi_c(), v)?.read(fields::vdi::ON_BOOT) == OnBoot::Reset {
                return Err(ApiError::VdiOnBootModeIncompatibleWithOperation);
            }
            storage::cbt_disable(ctx, v).await
        })
        .await
    }

    /// xapi's get_nbd_info: one record per address of this host's attached
    /// PIFs on networks with an NBD purpose, when the VDI's SR is attached
    /// here. The export name carries the caller's session.
    async fn get_nbd_info(&self, ctx: &Ctx, self_: Ref<Vdi>) -> Result<Vec<Value>> {
        let vdi = self_.as_str();
        let (uuid, sr) = {
            let row = self.row(vdi_c(), vdi)?;
            if row.read(fields::vdi::TYPE) == VdiType::CbtMetadata {
                tracing::info!("VDI.get_nbd_info: {vdi} is a cbt_metadata VDI");
                return Err(ApiError::VdiIncompatibleType { vdi: vdi.to_string(), r#type: "cbt_metadata".into() });
            }
            (row.read(fields::vdi::UUID), row.read(fields::vdi::SR).into_string())
        };
        let port = self.nbd_port.load(std::sync::atomic::Ordering::Relaxed);
        let addresses = {
            let st = self.db.read();
            let attached_here = st.table(&model::schema::CLASS_PBD).iter().any(|(_, p)| {
                p.read(fields::pbd::SR).as_str() == sr
                    && p.read(fields::pbd::HOST).as_str() == self.host
                    && p.read(fields::pbd::CURRENTLY_ATTACHED)
            });
            let nbd_net = |n: &str| {
                st.get(&model::schema::CLASS_NETWORK, n).is_some_and(|r| {
                    r.read(fields::network::PURPOSE)
                        .iter()
                        .any(|p| matches!(p, NetworkPurpose::Nbd | NetworkPurpose::InsecureNbd))
                })
            };
            let mut out = Vec::new();
            if attached_here {
                for (_, pif) in st.table(&model::schema::CLASS_PIF).iter() {
                    if pif.read(fields::pif::HOST).as_str() != self.host
                        || !pif.read(fields::pif::CURRENTLY_ATTACHED)
                        || !nbd_net(pif.read(fields::pif::NETWORK).as_str())
                    {
                        continue;
                    }
                    let ip = pif.read(fields::pif::IP);
                    if !ip.is_empty() {
                        out.push(ip);
                    }
                    out.extend(pif.read(fields::pif::IPV6).into_iter().filter(|a| !a.is_empty()));
                }
            }
            out
        };
        if addresses.is_empty() {
            return Ok(vec![]);
        }
        if port == 0 {
            // Networks offer NBD but this server was started without one.
            tracing::warn!("VDI.get_nbd_info: NBD is offered on {addresses:?} but no NBD server runs (--nbd)");
            return Ok(vec![]);
        }
        let cert = crate::certs::current_pem(self).unwrap_or_default();
        let subject = crate::certs::subject_name(self).unwrap_or_else(|| {
            tracing::warn!("VDI.get_nbd_info: the server certificate names no host; using the host name");
            self.cfg.hostname.clone()
        });
        let exportname = format!("/{uuid}?session_id={}", ctx.session);
        Ok(addresses
            .into_iter()
            .map(|address| {
                Value::Struct(vec![
                    ("exportname".to_string(), Value::String(exportname.clone())),
                    ("address".to_string(), Value::String(address)),
                    ("port".to_string(), Value::Int(i64::from(port))),
                    ("cert".to_string(), Value::String(cert.clone())),
                    ("subject".to_string(), Value::String(subject.clone())),
                ])
            })
            .collect())
    }

    async fn list_changed_blocks(&self, ctx: &Ctx, vdi_from: Ref<Vdi>, vdi_to: Ref<Vdi>) -> Result<String> {
        let (from, to) = (vdi_from.as_str(), vdi_to.as_str());
        self.row(vdi_c(), from)?;
        with_sr_and_vdi(
            ctx,
            to,
            StorageOperations::VdiListChangedBlocks,
            VdiOperations::ListChangedBlocks,
            |sr| async move {
                storage::assert_plugged(self, &sr)?;
                let (s2, f, t) = (<Server as Clone>::clone(self), from.to_string(), to.to_string());
                let map = blocking(move || storage::cbt_changed(&s2, &f, &t)).await?;
                Ok(crate::importexport::url::base64(&map.bits))
            },
        )
        .await
    }

    async fn data_destroy(&self, ctx: &Ctx, vdi: Ref<Vdi>) -> Result<()> {
        let v = vdi.as_str();
        with_sr_and_vdi(ctx, v, StorageOperations::VdiDataDestroy, VdiOperations::DataDestroy, |sr| async move {
            storage::assert_plugged(self, &sr)?;
            let attached = {
                let st = self.db.read();
                let bc = &CLASS_VBD;
                st.get(vdi_c(), v).is_some_and(|r| {
                    members(r.get(fields::vdi::VBDS.index))
                        .iter()
                        .any(|b| st.get(bc, b).is_some_and(|x| x.read(fields::vbd::CURRENTLY_ATTACHED)))
                })
            };
            if attached {
                return Err(ApiError::VdiInUse { vdi: v.to_string(), operation: "data_destroy".into() });
            }
            storage::cbt_data_destroy(ctx, v).await
        })
        .await
    }

    async fn copy(
        &self,
        ctx: &Ctx,
        vdi: Ref<Vdi>,
        sr: Ref<Sr>,
        base_vdi: Ref<Vdi>,
        into_vdi: Ref<Vdi>,
    ) -> Result<Ref<Vdi>> {
        let src = self.row(vdi_c(), vdi.as_str())?;
        lifecycle::with_op(ctx, vdi.as_str(), VdiOperations::Copy, || async {
            assert_managed(&src, vdi.as_str())?;
            let c = vdi_c();
            let into_valid = !into_vdi.is_null() && self.db.read().get(c, into_vdi.as_str()).is_some();
            let (dst, made) = if into_valid {
                (into_vdi.as_str().to_string(), false)
            } else {
                (create_copy_target(ctx, &src, sr.as_str()).await?, true)
            };
            let out = copy_into(ctx, vdi.as_str(), &src, &dst, &base_vdi, made).await;
            match out {
                Ok(()) => Ok(Ref::new(dst)),
                Err(e) => {
                    if made {
                        crate::logged("removing a VDI made by a failed copy", storage::destroy_vdi(ctx, &dst).await);
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn introduce(
        &self,
        ctx: &Ctx,
        uuid: String,
        name_label: String,
        name_description: String,
        sr: Ref<Sr>,
        r#type: VdiType,
        sharable: bool,
        _read_only: bool,
        other_config: BTreeMap<String, String>,
        location: String,
        xenstore_data: BTreeMap<String, String>,
        sm_config: BTreeMap<String, String>,
        _managed: bool,
        _virtual_size: i64,
        _physical_utilisation: i64,
        _metadata_of_pool: Ref<Pool>,
        _is_a_snapshot: bool,
        _snapshot_time: DateTime,
        _snapshot_of: Ref<Vdi>,
    ) -> Result<Ref<Vdi>> {
        self.row(sr_c(), sr.as_str())?;
        let new = NewRecord {
            uuid,
            name_label,
            name_description,
            ty: r#type.as_str().to_string(),
            sharable,
            other_config: other_config.to_value(),
            location,
            xenstore_data: xenstore_data.to_value(),
            sm_config: sm_config.to_value(),
        };
        lifecycle::with_op(ctx, sr.as_str(), StorageOperations::VdiIntroduce, || introduce(ctx, sr.as_str(), new))
            .await
            .map(Ref::new)
    }

    async fn update(&self, ctx: &Ctx, vdi: Ref<Vdi>) -> Result<()> {
        lifecycle::with_op(ctx, vdi.as_str(), VdiOperations::Update, || async {
            let sr = storage::sr_of(self, vdi.as_str())?;
            storage::assert_plugged(self, &sr)?;
            let (driver, path, format) = {
                let st = self.db.read();
                let row = st.get(vdi_c(), vdi.as_str()).ok_or_else(|| crate::handle_invalid(vdi_c(), vdi.as_str()))?;
                let srow = st.get(sr_c(), &sr).ok_or_else(|| crate::handle_invalid(sr_c(), &sr))?;
                let path = storage::vdi_path(self, &st, vdi.as_str());
                (storage::driver_of(srow)?, path, Format::of_vdi(row.get(fields::vdi::SM_CONFIG.index)))
            };
            let missing = || ApiError::VdiMissing { sr: sr.clone(), vdi: vdi.as_str().to_string() };
            let path = path.ok_or_else(missing)?;
            let stat = blocking(move || Ok(driver.vdi_stat(&path, format).ok())).await?;
            let (virt, phys) = stat.ok_or_else(missing)?;
            ctx.write(|tx| {
                tx.update(vdi_c(), vdi.as_str(), |r| {
                    r.fields[fields::vdi::VIRTUAL_SIZE.index] = Value::Int(virt);
                    r.fields[fields::vdi::PHYSICAL_UTILISATION.index] = Value::Int(phys);
                    r.fields[fields::vdi::MISSING.index] = Value::from(false);
                });
                Ok(())
            })?;
            storage::refresh_sr_usage(ctx, &sr)
        })
        .await
    }

    async fn forget(&self, ctx: &Ctx, vdi: Ref<Vdi>) -> Result<()> {
        let sr = storage::sr_of(self, vdi.as_str())?;
        lifecycle::with_op(ctx, vdi.as_str(), VdiOperations::Forget, || async {
            ctx.write(|tx| {
                storage::scan::forget_vdi(tx, vdi.as_str());
                Ok(())
            })
        })
        .await?;
        storage::refresh_sr_usage(ctx, &sr)
    }

    async fn set_name_label(&self, ctx: &Ctx, self_: Ref<Vdi>, value: String) -> Result<()> {
        set_field(ctx, self_.as_str(), fields::vdi::NAME_LABEL.index, Value::from(value))
    }

    async fn set_name_description(&self, ctx: &Ctx, self_: Ref<Vdi>, value: String) -> Result<()> {
        set_field(ctx, self_.as_str(), fields::vdi::NAME_DESCRIPTION.index, Value::from(value))
    }

    async fn set_read_only(&self, ctx: &Ctx, self_: Ref<Vdi>, value: bool) -> Result<()> {
        set_field(ctx, self_.as_str(), fields::vdi::READ_ONLY.index, Value::Bool(value))
    }

    async fn set_sharable(&self, ctx: &Ctx, self_: Ref<Vdi>, value: bool) -> Result<()> {
        set_field(ctx, self_.as_str(), fields::vdi::SHARABLE.index, Value::Bool(value))
    }

    async fn set_on_boot(&self, ctx: &Ctx, self_: Ref<Vdi>, value: OnBoot) -> Result<()> {
        let v = self_.as_str();
        assert_not_on_running_vm(self, v)?;
        with_sr_and_vdi(ctx, v, StorageOperations::VdiSetOnBoot, VdiOperations::SetOnBoot, |sr| async move {
            storage::assert_plugged(self, &sr)?;
            set_field(ctx, v, fields::vdi::ON_BOOT.index, Value::from(value.as_str()))
        })
        .await
    }

    async fn set_allow_caching(&self, ctx: &Ctx, self_: Ref<Vdi>, value: bool) -> Result<()> {
        assert_not_on_running_vm(self, self_.as_str())?;
        set_field(ctx, self_.as_str(), fields::vdi::ALLOW_CACHING.index, Value::Bool(value))
    }
}

/// A fresh VDI on `sr` for VDI.copy, with the source's properties (xapi:
/// always read-write, no sm_config, its tags and on_boot/allow_caching).
async fn create_copy_target(ctx: &Ctx, src: &Row, sr: &str) -> Result<String> {
    let c = vdi_c();
    ctx.server.row(sr_c(), sr)?;
    let mut row = store::blank_row(c);
    use fields::vdi as V;
    for f in [
        V::NAME_LABEL.index,
        V::NAME_DESCRIPTION.index,
        V::VIRTUAL_SIZE.index,
        V::TYPE.index,
        V::SHARABLE.index,
        V::OTHER_CONFIG.index,
        V::XENSTORE_DATA.index,
        V::TAGS.index,
        V::ON_BOOT.index,
        V::ALLOW_CACHING.index,
    ] {
        row.fields[f] = src.get(f).clone();
    }
    row.fields[fields::vdi::SR.index] = Value::from(sr);
    row.fields[fields::vdi::READ_ONLY.index] = Value::from(false);
    row.fields[fields::vdi::SM_CONFIG.index] = Value::empty_map();
    lifecycle::with_op(ctx, sr, StorageOperations::VdiCreate, || async {
        storage::assert_plugged(&ctx.server, sr)?;
        storage::create_vdi_row(ctx, row).await
    })
    .await
}

/// VDI.copy's checks on the target, then the data copy.
async fn copy_into(ctx: &Ctx, vdi: &str, src: &Row, dst: &str, base: &Ref<Vdi>, fresh: bool) -> Result<()> {
    let c = vdi_c();
    let d = ctx.server.row(c, dst)?;
    if d.read(fields::vdi::READ_ONLY) {
        return Err(ApiError::VdiReadonly { vdi: dst.to_string() });
    }
    let need = src.read(fields::vdi::VIRTUAL_SIZE);
    if d.read(fields::vdi::VIRTUAL_SIZE) < need {
        return Err(ApiError::VdiTooSmall { vdi: dst.to_string(), minimum_size: need.to_string() });
    }
    let base = (!base.is_null() && ctx.server.db.read().get(c, base.as_str()).is_some()).then(|| base.as_str());
    storage::copy_data(ctx, vdi, dst, base, fresh).await?;
    storage::refresh_vdi_usage(ctx, dst).await?;
    let sr = storage::sr_of(&ctx.server, dst)?;
    storage::refresh_sr_usage(ctx, &sr)
}

/// The caller-supplied fields of VDI.introduce that xapi keeps.
struct NewRecord {
    uuid: String,
    name_label: String,
    name_description: String,
    ty: String,
    sharable: bool,
    other_config: Value,
    location: String,
    xenstore_data: Value,
    sm_config: Value,
}

/// VDI.introduce: a record for an image already on storage. The file must
/// exist at `location`; sizes come from it. Re-introducing a location that
/// has a record refreshes that record.
async fn introduce(ctx: &Ctx, sr: &str, n: NewRecord) -> Result<String> {
    let s = &ctx.server;
    let c = vdi_c();
    storage::assert_plugged(s, sr)?;
    if !n.uuid.is_empty() && !storage::files::is_uuid(&n.uuid.to_ascii_lowercase()) {
        return Err(ApiError::UuidInvalid { r#type: "VDI".into(), uuid: n.uuid });
    }
    if n.location.is_empty() || n.location.contains('/') || n.location.contains("..") {
        return Err(ApiError::VdiLocationMissing { sr: sr.to_string(), location: n.location });
    }
    let (driver, dir, existing) = {
        let st = s.db.read();
        let srow = st.get(sr_c(), sr).ok_or_else(|| crate::handle_invalid(sr_c(), sr))?;
        let mut existing = None;
        for v in members(srow.get(fields::sr::VDIS.index)) {
            let Some(r) = st.get(c, &v) else { continue };
            if r.read(fields::vdi::LOCATION).as_str() == n.location.as_str() {
                if !n.uuid.is_empty() && r.read(fields::vdi::UUID).as_str() != n.uuid.as_str() {
                    return Err(ApiError::LocationNotUnique { sr: sr.to_string(), location: n.location });
                }
                existing = Some(v);
            }
        }
        let dir =
            storage::sr_dir(&st, &s.cfg.data_dir, sr, &s.host).ok_or_else(|| crate::internal("SR has no directory"))?;
        (storage::driver_of(srow)?, dir, existing)
    };
    // Which file holds the image: ext tries each format, iso uses the name.
    let loc = n.location.clone();
    let wanted = Format::requested(&n.sm_config);
    let stat = blocking(move || {
        let formats = match wanted {
            Some(f) => vec![f],
            None => vec![Format::Raw, Format::Qcow2],
        };
        for f in formats {
            let p = driver.vdi_file(&dir, &loc, f);
            // A link out of the SR or a special file is refused, not introduced.
            if storage::files::check_vdi(&p).map_err(|e| storage::unavailable(&p, e))? {
                return Ok(Some((f, driver.vdi_stat(&p, f)?)));
            }
        }
        Ok(None)
    })
    .await?;
    let Some((format, (virt, phys))) = stat else {
        return Err(ApiError::VdiLocationMissing { sr: sr.to_string(), location: n.location });
    };
    let iso = driver == storage::Driver::Iso;
    let mut sm_config = n.sm_config.clone();
    if format == Format::Qcow2 {
        if let Value::Struct(m) = &mut sm_config {
            m.retain(|(k, _)| k != "type");
            m.push(("type".into(), Value::from("qcow2")));
        }
    }
    let r = existing.clone().unwrap_or_else(model::new_ref);
    ctx.write(|tx| {
        let uuid = if !n.uuid.is_empty() {
            n.uuid.to_ascii_lowercase()
        } else if !iso && storage::files::is_uuid(&n.location) {
            n.location.clone()
        } else {
            model::new_uuid()
        };
        if existing.is_none() {
            if let Some(other) = tx.state().table(c).by_uuid(&uuid) {
                return Err(ApiError::InternalError {
                    message: format!("Db_exn.Uniqueness_constraint_violation(\"VDI\", \"uuid\", \"{uuid}\") ({other})"),
                });
            }
            let label = if n.name_label.is_empty() && iso { n.location.clone() } else { n.name_label.clone() };
            let mut row = store::blank_row(c);
            row.write(fields::vdi::UUID, uuid);
            row.write(fields::vdi::NAME_LABEL, label);
            row.write(fields::vdi::NAME_DESCRIPTION, n.name_description.clone());
            row.write(fields::vdi::SR, Ref::new(sr));
            row.write(fields::vdi::READ_ONLY, iso);
            row.write(fields::vdi::LOCATION, n.location.clone());
            row.write(fields::vdi::MANAGED, true);
            tx.insert(&r, row);
        } else {
            tx.update(c, &r, |row| {
                if !n.name_label.is_empty() {
                    row.fields[fields::vdi::NAME_LABEL.index] = Value::from(n.name_label.clone());
                }
                if !n.name_description.is_empty() {
                    row.fields[fields::vdi::NAME_DESCRIPTION.index] = Value::from(n.name_description.clone());
                }
            });
        }
        tx.update(c, &r, |row| {
            row.fields[fields::vdi::TYPE.index] = Value::from(n.ty.clone());
            row.fields[fields::vdi::SHARABLE.index] = Value::from(n.sharable);
            row.fields[fields::vdi::OTHER_CONFIG.index] = n.other_config.clone();
            row.fields[fields::vdi::XENSTORE_DATA.index] = n.xenstore_data.clone();
            row.fields[fields::vdi::SM_CONFIG.index] = sm_config.clone();
            row.fields[fields::vdi::VIRTUAL_SIZE.index] = Value::Int(virt);
            row.fields[fields::vdi::PHYSICAL_UTILISATION.index] = Value::Int(phys);
            row.fields[fields::vdi::MISSING.index] = Value::from(false);
        });
        Ok(())
    })?;
    storage::refresh_sr_usage(ctx, sr)?;
    Ok(r)
}

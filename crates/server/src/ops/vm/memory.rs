//! Memory and vCPU settings: the static/dynamic ordering rules, live
//! changes on running domains, simple setters under an operation.

use super::*;
use model::schema::CLASS_VM_METRICS;
use model::types::fields;

// ---------------------------------------------------------------- memory

/// The memory limits a setter asks for, with what happens to memory_target.
pub(super) struct Limits {
    pub(super) smin: i64,
    pub(super) smax: i64,
    pub(super) dmin: i64,
    pub(super) dmax: i64,
    /// xapi keeps memory_target at dynamic_min when the dynamic range changes.
    pub(super) target_is_dmin: bool,
}

/// Whether the VM runs (or last ran) with nested virtualisation: its
/// VM_metrics say so, or, without metrics, its platform does.
pub(super) fn nested_virt(tx: &Txn, row: &Row) -> bool {
    let (_c, mc) = (vm_c(), &CLASS_VM_METRICS);
    match tx.get(mc, row.read(fields::vm::METRICS).as_str()) {
        Some(m) => m.read(fields::vm_metrics::NESTED_VIRT),
        None => {
            let v = row.get(fields::vm::PLATFORM.index).map_str("nested-virt").unwrap_or("").to_ascii_lowercase();
            v == "true" || v == "1"
        }
    }
}

/// xapi's assert_valid_for_current_context: control domains and nested-virt
/// guests must keep all limits pinned at static_max; everyone else needs
/// static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max.
pub(super) fn check_memory_limits(tx: &Txn, row: &Row, l: &Limits) -> Result<()> {
    let _c = vm_c();
    let ordered = l.smin <= l.dmin && l.dmin <= l.dmax && l.dmax <= l.smax;
    let pinned_reason = if row.read(fields::vm::IS_CONTROL_DOMAIN) {
        Some("control domain")
    } else if nested_virt(tx, row) {
        Some("nested virt")
    } else {
        None
    };
    match pinned_reason {
        Some(reason) => {
            if !(l.smin <= l.dmin && l.dmin == l.dmax && l.dmax == l.smax) {
                return Err(ApiError::MemoryConstraintViolationMaxpin { reason: reason.into() });
            }
        }
        None => {
            if !ordered {
                return Err(ApiError::MemoryConstraintViolationOrder);
            }
        }
    }
    Ok(())
}

pub(super) async fn set_memory_fields(
    ctx: &Ctx,
    vm: &Ref<Vm>,
    op: VmOperations,
    f: impl Fn(i64, i64, i64, i64) -> Limits,
) -> Result<()> {
    let c = vm_c();
    lifecycle::with_op(ctx, vm.as_str(), op, || async {
        let row = ctx.server.row(c, vm.as_str())?;
        let running = row.read(fields::vm::POWER_STATE) == VmPowerState::Running;
        let control_domain = row.read(fields::vm::IS_CONTROL_DOMAIN);
        ctx.write(|tx| {
            let row = tx.get(c, vm.as_str()).cloned().ok_or_else(|| handle_invalid(c, vm.as_str()))?;
            use fields::vm as VM;
            let (smin, smax) = (row.read(VM::MEMORY_STATIC_MIN), row.read(VM::MEMORY_STATIC_MAX));
            let l = f(smin, smax, row.read(VM::MEMORY_DYNAMIC_MIN), row.read(VM::MEMORY_DYNAMIC_MAX));
            check_memory_limits(tx, &row, &l)?;
            let static_changed = l.smin != smin || l.smax != smax;
            tx.update(c, vm.as_str(), |r| {
                r.write(VM::MEMORY_STATIC_MIN, l.smin);
                r.write(VM::MEMORY_STATIC_MAX, l.smax);
                r.write(VM::MEMORY_DYNAMIC_MIN, l.dmin);
                r.write(VM::MEMORY_DYNAMIC_MAX, l.dmax);
                if l.target_is_dmin {
                    r.write(VM::MEMORY_TARGET, l.dmin);
                }
                // A running control domain takes new static limits at its next boot.
                if control_domain && running && static_changed {
                    r.write(VM::REQUIRES_REBOOT, true);
                }
            });
            Ok(())
        })?;
        if running && !control_domain {
            let uuid = vm_uuid(&ctx.server, vm.as_str())?;
            let target =
                ctx.server.row(c, vm.as_str())?.get(fields::vm::MEMORY_DYNAMIC_MAX.index).as_int().unwrap_or(0);
            ctx.server.backend.set_memory(&uuid, target).await.map_err(|e| be(ctx, e))?;
        }
        Ok(())
    })
    .await
}

/// Set one VM field, under `op` when given.
pub(super) async fn simple_set<T: XenType>(
    ctx: &Ctx,
    vm: &Ref<Vm>,
    op: Option<VmOperations>,
    f: Field<Vm, T>,
    v: T,
) -> Result<()> {
    simple_set_value(ctx, vm, op, f, v.to_value()).await
}

/// [`simple_set`] with a value as stored elsewhere (a map keeps its key order).
pub(super) async fn simple_set_value<T>(
    ctx: &Ctx,
    vm: &Ref<Vm>,
    op: Option<VmOperations>,
    f: Field<Vm, T>,
    v: Value,
) -> Result<()> {
    let c = vm_c();
    let write = || {
        ctx.write(|tx| {
            if !tx.set(c, vm.as_str(), f.index, v.clone()) {
                return Err(handle_invalid(c, vm.as_str()));
            }
            Ok(())
        })
    };
    match op {
        Some(op) => lifecycle::with_op(ctx, vm.as_str(), op, || async { write() }).await,
        None => {
            ctx.server.row(c, vm.as_str())?;
            write()
        }
    }
}

/// The device names (field `key`) of a VM's devices in its set `devs`.
pub(super) fn devices_in_use<D>(
    s: &Server,
    vm: &str,
    devs: Field<Vm, Vec<Ref<D>>>,
    key: Field<D, String>,
) -> Result<Vec<String>> {
    let c = vm_c();
    let st = s.db.read();
    let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
    Ok(members(row.get(devs.index)).iter().filter_map(|x| st.get(key.class, x).map(|r| r.read(key))).collect())
}

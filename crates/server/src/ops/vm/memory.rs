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
    match tx.get(mc, row.get(fields::vm::METRICS.index).as_str().unwrap_or("")) {
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
    op: &str,
    f: impl Fn(i64, i64, i64, i64) -> Limits,
) -> Result<()> {
    let c = vm_c();
    lifecycle::with_op(ctx, c, vm.as_str(), op, || async {
        let row = ctx.server.row(c, vm.as_str())?;
        let running = row.get(fields::vm::POWER_STATE.index).as_str() == Some("Running");
        let control_domain = row.read(fields::vm::IS_CONTROL_DOMAIN);
        ctx.write(|tx| {
            let row = tx.get(c, vm.as_str()).cloned().ok_or_else(|| handle_invalid(c, vm.as_str()))?;
            let gi = |n: &str| row.get(field(c, n)).as_int().unwrap_or(0);
            let l =
                f(gi("memory_static_min"), gi("memory_static_max"), gi("memory_dynamic_min"), gi("memory_dynamic_max"));
            check_memory_limits(tx, &row, &l)?;
            let static_changed = l.smin != gi("memory_static_min") || l.smax != gi("memory_static_max");
            tx.update(c, vm.as_str(), |r| {
                put(r, "memory_static_min", Value::Int(l.smin));
                put(r, "memory_static_max", Value::Int(l.smax));
                put(r, "memory_dynamic_min", Value::Int(l.dmin));
                put(r, "memory_dynamic_max", Value::Int(l.dmax));
                if l.target_is_dmin {
                    put(r, "memory_target", Value::Int(l.dmin));
                }
                // A running control domain takes new static limits at its next boot.
                if control_domain && running && static_changed {
                    put(r, "requires_reboot", true);
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

pub(super) async fn simple_set(ctx: &Ctx, vm: &Ref<Vm>, op: Option<&str>, name: &str, v: Value) -> Result<()> {
    let c = vm_c();
    let write = || {
        ctx.write(|tx| {
            if !tx.set(c, vm.as_str(), field(c, name), v.clone()) {
                return Err(handle_invalid(c, vm.as_str()));
            }
            Ok(())
        })
    };
    match op {
        Some(op) => lifecycle::with_op(ctx, c, vm.as_str(), op, || async { write() }).await,
        None => {
            ctx.server.row(c, vm.as_str())?;
            write()
        }
    }
}

pub(super) fn devices_in_use(s: &Server, vm: &str, devs: &str, dc: &str, key: &str) -> Result<Vec<String>> {
    let c = vm_c();
    let st = s.db.read();
    let row = st.get(c, vm).ok_or_else(|| handle_invalid(c, vm))?;
    let d = class(dc);
    Ok(members(row.get(field(c, devs))).iter().filter_map(|x| st.get(d, x).map(|r| sv(r.get(field(d, key))))).collect())
}

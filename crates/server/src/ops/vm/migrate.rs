//! Moving a running VM to another host of the pool (VM.pool_migrate,
//! host.evacuate): the domain is made on the destination, then removed from
//! the source, each by the host that owns it; the VM's record follows.
//!
//! On the simulator the guest goes on as it was (its uptime continues). A
//! live move of a real guest needs the hypervisors to stream its memory
//! between hosts, which the QEMU backend does not do yet: it answers
//! NOT_IMPLEMENTED rather than reboot the guest on the way.

use super::*;
use model::schema::{CLASS_HOST, CLASS_HOST_METRICS};
use model::types::fields;

/// The pool-internal messages a host runs for a move (sent by the master
/// through the pool database's port; not part of the API).
pub const RECEIVE: &str = "internal.domain_receive";
pub const RELEASE: &str = "internal.domain_release";

/// Move running `vm` from the host it runs on to `dest`.
pub async fn move_to(ctx: &Ctx, vm: &str, dest: &str) -> Result<()> {
    let s = &ctx.server;
    let source = s.db.read().read(vm, fields::vm::RESIDENT_ON).map(|r| r.into_string()).unwrap_or_default();
    if source == dest {
        return Ok(());
    }
    if s.backend.name() != "sim" {
        return Err(ApiError::NotImplemented {
            function: format!("VM.pool_migrate between hosts on the {} backend", s.backend.name()),
        });
    }
    assert_can_boot(s, vm, dest, true)?;
    let domid = on_host(s, dest, RECEIVE, vm).await?;
    if let Err(e) = on_host(s, &source, RELEASE, vm).await {
        // The guest now runs on both: keep the destination's, say so.
        tracing::error!(vm, source = %source, "the source host did not release the moved domain: {e}");
    }
    ctx.write(|tx| {
        tx.put(vm, fields::vm::RESIDENT_ON, Ref::new(dest.to_string()));
        tx.put(vm, fields::vm::DOMID, domid);
        Ok(())
    })
}

async fn on_host(s: &Server, host: &str, op: &str, vm: &str) -> Result<i64> {
    if host == s.host {
        return domain_op(s, op, vm).await;
    }
    let v = crate::pooling::forward(s, host, op, &[Value::from(vm)]).await?;
    Ok(v.as_int().unwrap_or(-1))
}

/// This host's half of a move: make the domain here (its domid), or drop it.
pub async fn domain_op(s: &Server, op: &str, vm: &str) -> Result<i64> {
    let ctx = &Ctx::new(Clone::clone(s), String::new(), op.to_string(), true);
    let spec = domain_spec(s, vm)?;
    match op {
        RECEIVE => {
            let domid = s.backend.create(&spec, None).await.map_err(|e| be_vm(ctx, vm, e))?;
            if let Err(e) = s.backend.unpause(&spec.uuid).await {
                crate::logged("removing the half-received domain", s.backend.shutdown(&spec.uuid, false, None).await);
                return Err(be_vm(ctx, vm, e));
            }
            Ok(domid)
        }
        RELEASE => {
            s.backend.shutdown(&spec.uuid, false, None).await.map_err(|e| be_vm(ctx, vm, e))?;
            Ok(-1)
        }
        _ => Err(ApiError::MessageMethodUnknown { method: op.to_string() }),
    }
}

/// Where a running VM could go from `from`: another enabled, live host it
/// can boot on (the one with most free memory first).
pub fn target_for(s: &Server, vm: &str, from: &str) -> Option<String> {
    let mut hosts: Vec<(i64, String)> = {
        let st = s.db.read();
        st.table(&CLASS_HOST)
            .iter()
            .filter(|(h, row)| *h != from && row.read(fields::host::ENABLED))
            .filter_map(|(h, row)| {
                let m = st.get(&CLASS_HOST_METRICS, row.read(fields::host::METRICS).as_str())?;
                m.read(fields::host_metrics::LIVE).then(|| (m.read(fields::host_metrics::MEMORY_FREE), h.clone()))
            })
            .collect()
    };
    hosts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    hosts.into_iter().map(|(_, h)| h).find(|h| assert_can_boot(s, vm, h, true).is_ok())
}

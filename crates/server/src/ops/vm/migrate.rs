//! Moving a running VM to another host of the pool (VM.pool_migrate,
//! host.evacuate), as xapi and xenopsd do it: the destination makes a
//! paused domain that waits for the guest's state, the source streams the
//! running guest to it (QEMU's pre-copy migration: the guest runs on while
//! its memory is copied, and stops only for the last pages), the
//! destination runs the guest and the source's domain goes. Each step runs
//! on the host that owns it (the master sends them through the pool
//! database's port); the stream goes from host to host on that port too.
//! Disks are not copied: they must be on an SR both hosts reach.
//!
//! On the simulator the stream is one line and the guest goes on as it was
//! (its uptime continues), through the same steps.

use super::*;
use model::schema::{CLASS_HOST, CLASS_HOST_METRICS, CLASS_NETWORK};
use model::types::fields;

/// The pool-internal messages a host runs for a move (sent by the master
/// through the pool database's port; not part of the API).
pub const RECEIVE: &str = "internal.domain_receive";
pub const SEND: &str = "internal.domain_send";
pub const FINISH: &str = "internal.domain_finish";
pub const CONTINUE: &str = "internal.domain_continue";
pub const RELEASE: &str = "internal.domain_release";

/// Move running `vm` from the host it runs on to `dest`.
pub async fn move_to(ctx: &Ctx, vm: &str, dest: &str) -> Result<()> {
    let s = &ctx.server;
    let source = s.db.read().read(vm, fields::vm::RESIDENT_ON).map(|r| r.into_string()).unwrap_or_default();
    if source == dest {
        return Ok(());
    }
    assert_can_boot(s, vm, dest, true)?;
    let domid = on_host(s, dest, RECEIVE, vm, "").await?;
    if let Err(e) = on_host(s, &source, SEND, vm, dest).await {
        // The guest runs on at the source; the waiting domain goes.
        crate::logged("removing the domain that waited for a failed move", on_host(s, dest, RELEASE, vm, "").await);
        return Err(e);
    }
    if let Err(e) = on_host(s, dest, FINISH, vm, "").await {
        tracing::error!(vm, dest, "the destination could not run the moved guest: {e}; it runs on at the source");
        crate::logged("removing the domain that failed to run", on_host(s, dest, RELEASE, vm, "").await);
        crate::logged("running the guest on at the source", on_host(s, &source, CONTINUE, vm, "").await);
        return Err(e);
    }
    if let Err(e) = on_host(s, &source, RELEASE, vm, "").await {
        // The guest runs at the destination; the source's stopped copy is
        // left over and says so in the log.
        tracing::error!(vm, source = %source, "the source host did not release the moved domain: {e}");
    }
    ctx.write(|tx| {
        tx.put(vm, fields::vm::RESIDENT_ON, Ref::new(dest.to_string()));
        tx.put(vm, fields::vm::DOMID, domid);
        crate::xenops::relocate_consoles(tx, vm, dest);
        Ok(())
    })
}

async fn on_host(s: &Server, host: &str, op: &str, vm: &str, arg: &str) -> Result<i64> {
    if host == s.host {
        // Boxed: the backends' migration futures are large.
        return Box::pin(domain_op(s, op, vm, arg)).await;
    }
    let v = Box::pin(crate::pooling::forward(s, host, op, &[Value::from(vm), Value::from(arg)])).await?;
    Ok(v.as_int().unwrap_or(-1))
}

/// This host's part of a move (`arg`: the destination host, for SEND).
pub async fn domain_op(s: &Server, op: &str, vm: &str, arg: &str) -> Result<i64> {
    let ctx = &Ctx::new(Clone::clone(s), String::new(), op.to_string(), true);
    let uuid = &s.row(vm_c(), vm)?.read(fields::vm::UUID);
    let uuid = uuid.as_str();
    match op {
        // Only the destination's domain is made: its disks' batches open
        // beside the source's (which hands its writes over at RELEASE).
        RECEIVE => {
            let spec = crate::xenops::incoming_spec(s, vm)?;
            s.backend.prepare_incoming(&spec, None).await.map_err(|e| be_vm(ctx, vm, e))
        }
        SEND => {
            let conn =
                crate::pooling::open_stream(s, arg, &format!("{}{uuid}", crate::pooling::MIGRATE_STREAM)).await?;
            s.backend.send_stream(uuid, conn, None).await.map_err(|e| be_vm(ctx, vm, e))?;
            Ok(-1)
        }
        FINISH => {
            s.backend.finish_incoming(uuid, None).await.map_err(|e| be_vm(ctx, vm, e))?;
            Ok(-1)
        }
        CONTINUE => {
            s.backend.unpause(uuid).await.map_err(|e| be_vm(ctx, vm, e))?;
            Ok(-1)
        }
        RELEASE => {
            s.backend.shutdown(uuid, false, None).await.map_err(|e| be_vm(ctx, vm, e))?;
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

/// What `host.migrate_receive` answers: how to reach `host` (its pool's
/// master, the host itself) for a `VM.migrate_send`, under xapi's keys.
pub fn receive_map(s: &Server, session: &str, host: &str) -> Result<BTreeMap<String, String>> {
    let st = s.db.read();
    let address = st.read(host, fields::host::ADDRESS).ok_or_else(|| handle_invalid(&CLASS_HOST, host))?;
    let master = st.read(&s.pool, fields::pool::MASTER).map(|m| m.into_string()).unwrap_or_default();
    let master_address = st.read(&master, fields::host::ADDRESS).unwrap_or_else(|| address.clone());
    Ok(BTreeMap::from([
        ("host".to_string(), host.to_string()),
        ("session_id".to_string(), session.to_string()),
        ("master".to_string(), format!("http://{master_address}/")),
        ("xenops".to_string(), format!("http://{address}/services/xenops")),
        ("SM".to_string(), format!("http://{address}/services/SM")),
    ]))
}

/// The checks of `VM.assert_can_migrate` / `migrate_send`, as xapi makes
/// them for a move within the pool; the destination host. A move to
/// another pool, a disk that would change SR (storage motion), a NIC that
/// would change network and a move of a VM that is not running are not
/// done here: they answer NOT_IMPLEMENTED.
pub fn check_send(
    s: &Server,
    vm: &str,
    dest: &BTreeMap<String, String>,
    vdi_map: &BTreeMap<Ref<Vdi>, Ref<Sr>>,
    vif_map: &BTreeMap<Ref<Vif>, Ref<Network>>,
) -> Result<String> {
    let st = s.db.read();
    let row = st.get(&CLASS_VM, vm).ok_or_else(|| handle_invalid(&CLASS_VM, vm))?;
    let Some(host) = dest.get("host") else {
        // xapi's lookup of a missing key fails the same way.
        return Err(crate::internal("the destination has no \"host\" (use host.migrate_receive)"));
    };
    if st.get(&CLASS_HOST, host).is_none() {
        return Err(ApiError::NotImplemented { function: "VM.migrate_send to another pool".into() });
    }
    for (vdi, sr) in vdi_map {
        let vrow = st.get(&CLASS_VDI, vdi.as_str()).ok_or_else(|| handle_invalid(&CLASS_VDI, vdi.as_str()))?;
        if st.get(&CLASS_SR, sr.as_str()).is_none() {
            return Err(handle_invalid(&CLASS_SR, sr.as_str()));
        }
        if vrow.read(fields::vdi::SR).as_str() != sr.as_str() {
            return Err(ApiError::NotImplemented { function: "VM.migrate_send with storage motion".into() });
        }
    }
    for (vif, net) in vif_map {
        let vrow = st.get(&CLASS_VIF, vif.as_str()).ok_or_else(|| handle_invalid(&CLASS_VIF, vif.as_str()))?;
        if st.get(&CLASS_NETWORK, net.as_str()).is_none() {
            return Err(handle_invalid(&CLASS_NETWORK, net.as_str()));
        }
        if vrow.read(fields::vif::NETWORK).as_str() != net.as_str() {
            return Err(ApiError::NotImplemented { function: "VM.migrate_send to another network".into() });
        }
    }
    let power = row.read(fields::vm::POWER_STATE);
    if !matches!(power, VmPowerState::Running | VmPowerState::Paused) {
        return Err(ApiError::NotImplemented { function: "VM.migrate_send of a VM that is not running".into() });
    }
    let host = host.clone();
    drop(st);
    assert_can_boot(s, vm, &host, true)?;
    Ok(host)
}

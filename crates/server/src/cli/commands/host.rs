//! Host, task, event and message commands.

use super::{s, select_host, transfer};
use crate::cli::generic::{self, GEN};
use crate::cli::{fail, records, CliError, CliResult, Cx};
use crate::ApiError;
use model::schema::ClassDef;
use model::schema::{CLASS_HOST, CLASS_NETWORK, CLASS_PIF, CLASS_TASK};
use model::Value;

pub async fn run(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    match name {
        n if n.starts_with("host-data-source-") => {
            let host = select_host(cx, &["uuid", "host", "host-uuid"])?;
            super::data_source(cx, "host", host, n.trim_start_matches("host-data-source-")).await
        }
        "host-enable" | "host-disable" | "host-evacuate" => {
            let host = select_host(cx, &["uuid", "host"])?;
            match name {
                "host-enable" => cx.call("host.enable", vec![s(host)]).await?,
                "host-disable" => cx.call("host.disable", vec![s(host)]).await?,
                _ => {
                    let net = match cx.params.get("network-uuid") {
                        Some(u) => generic::by_uuid(cx, &CLASS_NETWORK, u).await?.0,
                        None => model::NULL_REF.to_string(),
                    };
                    cx.call("host.evacuate", vec![s(host), s(net)]).await?
                }
            };
            Ok(())
        }
        "host-management-reconfigure" => {
            let pif = generic::by_uuid(cx, &CLASS_PIF, cx.params.reqd("pif-uuid")?).await?.0;
            cx.call("host.management_reconfigure", vec![s(pif)]).await.map(|_| ())
        }
        "pool-management-reconfigure" => {
            let net = generic::by_uuid(cx, &CLASS_NETWORK, cx.params.reqd("network-uuid")?).await?.0;
            cx.call("pool.management_reconfigure", vec![s(net)]).await.map(|_| ())
        }
        "task-cancel" => {
            let t = generic::by_uuid(cx, &CLASS_TASK, cx.params.reqd("uuid")?).await?.0;
            cx.call("task.cancel", vec![s(t)]).await.map(|_| ())
        }
        "event-wait" => event_wait(cx).await,
        "message-create" => {
            let (cls, key) = [("VM", "vm-uuid"), ("Host", "host-uuid"), ("SR", "sr-uuid"), ("Pool", "pool-uuid")]
                .into_iter()
                .find(|(_, k)| cx.params.has(k))
                .ok_or_else(|| CliError::Failure("Need one of: vm-uuid, host-uuid, sr-uuid or pool-uuid".into()))?;
            let prio: i64 = cx
                .params
                .reqd("priority")?
                .parse()
                .map_err(|_| CliError::Failure("Parameter priority must be an integer".into()))?;
            cx.call(
                "message.create",
                vec![
                    s(cx.params.reqd("name")?),
                    Value::Int(prio),
                    s(cls),
                    s(cx.params.reqd(key)?),
                    s(cx.params.reqd("body")?),
                ],
            )
            .await
            .map(|_| ())
        }
        "pool-dump-database" => {
            let file = cx.params.reqd("file-name")?.to_string();
            transfer::run(cx, transfer::Dir::Get, &file, "/pool/xmldbdump", "", "dump database").await.map(|_| ())
        }
        "pool-restore-database" => restore_database(cx).await,
        "pool-join" => pool_join(cx).await,
        "pool-eject" => {
            let host = generic::by_uuid(cx, &CLASS_HOST, cx.params.reqd("host-uuid")?).await?.0;
            if !cx.params.flag("force") {
                return fail(
                    "Ejecting a host from the pool will reinitialise that host's local SRs: any data on them will be lost. \
                     Use --force to go ahead.",
                );
            }
            cx.call("pool.eject", vec![s(host)]).await?;
            cx.msg("Specified host will attempt to restart as a master of a new pool in 10.000 seconds...").await
        }
        "pool-designate-new-master" => {
            let host = generic::by_uuid(cx, &CLASS_HOST, cx.params.reqd("host-uuid")?).await?.0;
            cx.call("pool.designate_new_master", vec![s(host)]).await.map(|_| ())
        }
        "pool-emergency-transition-to-master" => {
            cx.call("pool.emergency_transition_to_master", vec![]).await.map(|_| ())
        }
        "pool-emergency-reset-master" => {
            cx.call("pool.emergency_reset_master", vec![s(cx.params.reqd("master-address")?)]).await.map(|_| ())
        }
        "pool-recover-slaves" => {
            let hosts = cx.call("pool.recover_slaves", vec![]).await?;
            for h in hosts.as_array().map(|a| a.to_vec()).unwrap_or_default() {
                let uuid = cx.call("host.get_uuid", vec![h]).await?;
                cx.msg(uuid.as_str().unwrap_or_default()).await?;
            }
            Ok(())
        }
        other => Err(CliError::UnknownCommand(other.to_string())),
    }
}

/// As xapi's CLI: an unreachable master is a message, not an error.
async fn pool_join(cx: &mut Cx<'_, '_>) -> CliResult {
    let method = if cx.params.flag("force") { "pool.join_force" } else { "pool.join" };
    let args = vec![
        s(cx.params.reqd("master-address")?),
        s(cx.params.reqd("master-username")?),
        s(cx.params.reqd("master-password")?),
    ];
    match cx.call(method, args).await {
        Ok(_) => cx.msg("Host agent will restart and attempt to join pool in 10.000 seconds...").await,
        Err(CliError::Api(ApiError::JoiningHostConnectionFailed)) => {
            cx.msg("Host cannot contact destination host: connection refused.").await?;
            cx.msg("Check destination host has services running and accessible from this host.").await
        }
        Err(e) => Err(e),
    }
}

/// As xapi: `dry-run` given at all means a dry run; a real restore needs
/// `--force`, since it replaces everything.
async fn restore_database(cx: &mut Cx<'_, '_>) -> CliResult {
    let dry_run = cx.params.has("dry-run");
    if !dry_run && !cx.params.flag("force") {
        return Err(CliError::Failure(
            "This operation will restore the database backup to this host, making it the master. \
             All slave hosts are assumed dead and they will be forgotten. This operation must be forced (use --force)."
                .into(),
        ));
    }
    let file = cx.params.reqd("file-name")?.to_string();
    let query = format!("dry_run={dry_run}");
    transfer::run(cx, transfer::Dir::Put, &file, "/pool/xmldbdump", &query, "restore database").await?;
    if dry_run {
        return cx.msg("Dry-run backup restore successful").await;
    }
    let secs = cx.s.cfg.db_restore_fuse.as_secs_f64();
    cx.msg(format!(
        "xapid will exit in {secs} seconds and start with the restored database when it is started again..."
    ))
    .await
}

fn event_class(name: &str) -> Option<&'static ClassDef> {
    GEN.iter().find(|g| g.cli == name).and_then(generic::class_of).or_else(|| model::schema::class_ci(name))
}

/// Whether any object of the class meets every `field=value` (or
/// `field=/=value`) condition.
fn satisfied(cx: &Cx<'_, '_>, c: &'static ClassDef, conds: &[(String, String)]) -> CliResult<bool> {
    let st = cx.s.db.read();
    let mut fields = Vec::new();
    for (k, v) in conds {
        let f = records::lookup(c, k).ok_or_else(|| generic::missing(k))?;
        fields.push((f, v));
    }
    Ok(generic::rows(&st, c).iter().any(|(_, row)| {
        fields.iter().all(|(f, v)| {
            let got = records::get(&st, row, f);
            match v.strip_prefix("/=") {
                Some(not) => got != not,
                None => got == **v,
            }
        })
    }))
}

/// Block until an object of `class=` matches the conditions, re-checking
/// after every change event.fromm reports.
async fn event_wait(cx: &mut Cx<'_, '_>) -> CliResult {
    let cname = cx.params.reqd("class")?.to_string();
    let Some(c) = event_class(&cname) else { return fail(format!("Unknown class {cname}")) };
    let conds: Vec<(String, String)> = cx
        .params
        .0
        .iter()
        .filter(|(k, _)| k != "class" && !generic::STDPARAMS.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut token = String::new();
    loop {
        if satisfied(cx, c, &conds)? {
            return Ok(());
        }
        let batch = cx
            .call(
                "event.from",
                vec![Value::Array(vec![s(c.name.to_ascii_lowercase())]), s(token.clone()), Value::Float(30.0)],
            )
            .await?;
        token = batch.member("token").and_then(Value::as_str).unwrap_or_default().to_string();
    }
}

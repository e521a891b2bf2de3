//! Migrating VMs simultaneously (guide §4.2.1): start `Async.VM.pool_migrate`
//! for every running VM at once, then wait for all the tasks. (On a one-host
//! pool each VM moves to the host it is on.)
//!
//! `cargo run -p xenapi --example migrate_all -- http://127.0.0.1:8080 root secret`

use std::collections::BTreeMap;
use xenapi::{Result, Session, VmPowerState};

pub async fn run(url: &str, user: &str, password: &str) -> Result<usize> {
    let s = Session::builder(url).login(user, password).await?;
    let host = s.host().get_all().await?.into_iter().next().ok_or_else(|| xenapi::Error::Protocol("no host".into()))?;
    let running: Vec<_> = s
        .vm()
        .get_all_records()
        .await?
        .into_iter()
        .filter(|(_, r)| r.power_state == VmPowerState::Running && !r.is_control_domain)
        .map(|(v, _)| v)
        .collect();
    let live = BTreeMap::from([("live".to_string(), "true".to_string())]);
    let mut tasks = Vec::new();
    for vm in &running {
        tasks.push(s.vm().pool_migrate_async(vm, &host, &live).await?);
    }
    for t in &tasks {
        t.wait().await?;
        t.destroy().await?;
    }
    println!("migrated {} VMs", tasks.len());
    s.logout().await?;
    Ok(tasks.len())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    run(a.get(1).map_or("http://127.0.0.1:8080", |s| s), a.get(2).map_or("root", |s| s), a.get(3).map_or("", |s| s))
        .await
        .map(|_| ())
}

//! The SDK guide's install-and-start cycle (§3.2): log in, find a template,
//! install a VM from it, take it through start, suspend, resume and shutdown,
//! and log out.
//!
//! `cargo run -p xenapi --example install_and_start -- http://127.0.0.1:8080 root secret`

use xenapi::{Result, Session, VmPowerState};

pub async fn run(url: &str, user: &str, password: &str) -> Result<()> {
    let s = Session::builder(url).originator("install-and-start example").login(user, password).await?;
    // Templates: VMs with is_a_template set; pick the one we want by name.
    let templates = s.vm().get_all_records_where(r#"field "is_a_template"="true""#).await?;
    let (template, rec) = templates
        .into_iter()
        .find(|(_, r)| r.name_label == "Debian Bookworm 12")
        .ok_or_else(|| xenapi::Error::Protocol("template not found".into()))?;
    println!("template {} ({})", rec.name_label, rec.uuid);
    // Install: clone the template, then let it provision its disks.
    let vm = s.vm().clone(&template, "new VM from the example").await?;
    s.vm().provision(&vm).await?;
    println!("installed {}", s.vm().get_uuid(&vm).await?);
    s.vm().start(&vm, false, false).await?;
    println!("started: {}", s.vm().get_power_state(&vm).await?);
    s.vm().suspend(&vm).await?;
    println!("suspended: {}", s.vm().get_power_state(&vm).await?);
    s.vm().resume(&vm, false, false).await?;
    println!("resumed: {}", s.vm().get_power_state(&vm).await?);
    s.vm().clean_shutdown(&vm).await?;
    let state = s.vm().get_power_state(&vm).await?;
    println!("shut down: {state}");
    assert_eq!(state, VmPowerState::Halted);
    s.logout().await
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    run(a.get(1).map_or("http://127.0.0.1:8080", |s| s), a.get(2).map_or("root", |s| s), a.get(3).map_or("", |s| s))
        .await
}

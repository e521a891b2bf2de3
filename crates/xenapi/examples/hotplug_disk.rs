//! Creating a disk and hot-plugging it into a running VM (guide §3.4.1):
//! VDI.create on the default SR, VBD.create, VBD.plug.
//!
//! `cargo run -p xenapi --example hotplug_disk -- http://127.0.0.1:8080 root secret`

use std::collections::BTreeMap;
use xenapi::{Ref, Result, Session, VbdMode, VbdRecord, VbdType, VdiRecord, VdiType};

pub async fn run(url: &str, user: &str, password: &str) -> Result<()> {
    let s = Session::builder(url).login(user, password).await?;
    // A paravirtualised guest: HVM guests need PV drivers before hotplug
    // (VM_MISSING_PV_DRIVERS).
    let template = s
        .vm()
        .get_by_name_label("Debian Etch 4.0")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| xenapi::Error::Protocol("no template".into()))?;
    let vm = s.vm().clone(&template, "hotplug example").await?;
    s.vm().provision(&vm).await?;
    s.vm().start(&vm, false, false).await?;
    // The pool's default SR holds new disks.
    let pool = s.pool().get_all().await?.into_iter().next().ok_or_else(|| xenapi::Error::Protocol("no pool".into()))?;
    let sr = s.pool().get_default_sr(&pool).await?;
    let vdi = s
        .vdi()
        .create(&VdiRecord {
            name_label: "data disk".into(),
            name_description: "made by the hotplug example".into(),
            sr,
            virtual_size: 64 << 20,
            r#type: VdiType::User,
            ..Default::default()
        })
        .await?;
    // A free device number for the new disk.
    let device = s.vm().get_allowed_vbd_devices(&vm).await?.into_iter().next().unwrap_or_else(|| "1".into());
    let vbd = s
        .vbd()
        .create(&VbdRecord {
            vm: vm.clone(),
            vdi: vdi.clone(),
            userdevice: device,
            bootable: false,
            mode: VbdMode::Rw,
            r#type: VbdType::Disk,
            unpluggable: true,
            other_config: BTreeMap::new(),
            ..Default::default()
        })
        .await?;
    s.vbd().plug(&vbd).await?;
    let attached = s.vbd().get_currently_attached(&vbd).await?;
    println!("disk {} attached as {}: {attached}", s.vdi().get_uuid(&vdi).await?, s.vbd().get_device(&vbd).await?);
    assert!(attached);
    s.vbd().unplug(&vbd).await?;
    s.vm().hard_shutdown(&vm).await?;
    let _: Ref<xenapi::Vm> = vm;
    s.logout().await
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    run(a.get(1).map_or("http://127.0.0.1:8080", |s| s), a.get(2).map_or("root", |s| s), a.get(3).map_or("", |s| s))
        .await
}

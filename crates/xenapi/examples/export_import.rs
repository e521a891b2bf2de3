//! Exporting and importing a VM (guide §3.5): stream a halted VM out as an
//! XVA file, then import it back as a new VM.
//!
//! `cargo run -p xenapi --example export_import -- http://127.0.0.1:8080 root secret [file.xva]`

use xenapi::{Result, Session};

pub async fn run(url: &str, user: &str, password: &str, file: &std::path::Path) -> Result<xenapi::Ref<xenapi::Vm>> {
    let s = Session::builder(url).login(user, password).await?;
    let template = s
        .vm()
        .get_by_name_label("Other install media")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| xenapi::Error::Protocol("no template".into()))?;
    let vm = s.vm().clone(&template, "export example").await?;
    s.vm().provision(&vm).await?;
    let mut out = tokio::fs::File::create(file).await.map_err(xenapi::Error::Io)?;
    let bytes = s.export_vm(&vm, Some("zstd"), &mut out, &mut |_, _| {}).await?;
    println!("exported {bytes} bytes to {}", file.display());
    let imported = s.import_vm_file(file, None, &mut |_, _| {}).await?;
    let new = imported.into_iter().next().ok_or_else(|| xenapi::Error::Protocol("import made no VM".into()))?;
    println!("imported as {} ({})", new, s.vm().get_name_label(&new).await?);
    s.logout().await?;
    Ok(new)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let file = std::path::PathBuf::from(a.get(4).map_or("export.xva", |s| s));
    run(
        a.get(1).map_or("http://127.0.0.1:8080", |s| s),
        a.get(2).map_or("root", |s| s),
        a.get(3).map_or("", |s| s),
        &file,
    )
    .await
    .map(|_| ())
}

//! Async calls and tasks (guide §4.1.5): start a long operation with its
//! `_async` form, follow its progress (a progress bar on a terminal), and
//! collect the result when the task finishes — without polling.
//!
//! `cargo run -p xenapi --example async_progress -- http://127.0.0.1:8080 root secret`

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use xenapi::{Result, Session};

pub async fn run(url: &str, user: &str, password: &str) -> Result<()> {
    let s = Session::builder(url).login(user, password).await?;
    let template = s
        .vm()
        .get_by_name_label("Debian Bookworm 12")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| xenapi::Error::Protocol("no template".into()))?;
    let vm = s.vm().clone(&template, "async example").await?;
    s.vm().provision(&vm).await?;
    // A full copy moves the disks' data, so it reports progress.
    let task = s.vm().copy_async(&vm, "async example (copy)", &xenapi::Ref::null()).await?;
    println!("task {}", task.task_ref());
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(100) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}%").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let copy = task.wait_with_progress(|p| bar.set_position((p * 100.0) as u64)).await?;
    bar.finish_and_clear();
    println!("copied to {} ({})", copy, s.vm().get_name_label(&copy).await?);
    task.destroy().await?;
    s.logout().await
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    run(a.get(1).map_or("http://127.0.0.1:8080", |s| s), a.get(2).map_or("root", |s| s), a.get(3).map_or("", |s| s))
        .await
}

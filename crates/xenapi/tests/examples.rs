//! Every example, run against a fresh server.

mod common;

#[path = "../examples/async_progress.rs"]
mod async_progress;
#[path = "../examples/export_import.rs"]
mod export_import;
#[path = "../examples/hotplug_disk.rs"]
mod hotplug_disk;
#[path = "../examples/install_and_start.rs"]
mod install_and_start;
#[path = "../examples/migrate_all.rs"]
mod migrate_all;
#[path = "../examples/watch_events.rs"]
mod watch_events;

use common::PASSWORD;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_and_start_cycle() {
    let s = common::start().await;
    install_and_start::run(&s.url, "root", PASSWORD).await.expect("example runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotplug_a_disk() {
    let s = common::start().await;
    hotplug_disk::run(&s.url, "root", PASSWORD).await.expect("example runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_with_progress() {
    let s = common::start().await;
    async_progress::run(&s.url, "root", PASSWORD).await.expect("example runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_events() {
    let s = common::start().await;
    let url = s.url.clone();
    let mut watcher = tokio::spawn(async move { watch_events::run(&url, "root", PASSWORD, Some(2)).await });
    let c = xenapi::Session::builder(&s.url).login("root", PASSWORD).await.expect("login");
    let pool = c.pool().get_all().await.expect("pools")[0].clone();
    // Changes made before the watcher's first event.from are one event
    // (its login may be slow on a loaded machine): change the pool until it
    // has seen two, for 10 s at most.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let seen = loop {
        c.pool().add_to_other_config(&pool, "example", "1").await.expect("write");
        c.pool().remove_from_other_config(&pool, "example").await.expect("write");
        match tokio::time::timeout(std::time::Duration::from_millis(300), &mut watcher).await {
            Ok(r) => break r.expect("joined").expect("example runs"),
            Err(_) => assert!(std::time::Instant::now() < deadline, "the watcher saw two changes in time"),
        }
    };
    assert_eq!(seen, vec![("pool".to_string(), xenapi::EventOp::Mod), ("pool".to_string(), xenapi::EventOp::Mod)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_migration() {
    let s = common::start().await;
    let c = xenapi::Session::builder(&s.url).login("root", PASSWORD).await.expect("login");
    let t = c.vm().get_by_name_label("Other install media").await.expect("lookup")[0].clone();
    for i in 0..3 {
        let vm = c.vm().clone(&t, &format!("m{i}")).await.expect("clone");
        c.vm().provision(&vm).await.expect("provision");
        c.vm().start(&vm, false, false).await.expect("start");
    }
    assert_eq!(migrate_all::run(&s.url, "root", PASSWORD).await.expect("example runs"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import() {
    let s = common::start().await;
    let file = s.dir.path().join("vm.xva");
    let new = export_import::run(&s.url, "root", PASSWORD, &file).await.expect("export then import");
    assert!(new.as_str().starts_with("OpaqueRef:"), "{new}");
    assert!(std::fs::metadata(&file).map(|m| m.len() > 0).unwrap_or(false));
}

//! The blocking facade from plain (non-async) code, against a live server
//! running on its own runtime. `cargo test -p xenapi --features blocking --test blocking`

#![cfg(feature = "blocking")]

mod common;

#[test]
fn blocking_session_lists_and_writes() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = rt.block_on(common::start());
    let s = xenapi::blocking::Session::login(xenapi::Session::builder(&server.url), "root", common::PASSWORD)
        .expect("login");
    let vms = s.run(|s| s.vm().get_all_records()).expect("records");
    assert!(vms.values().any(|v| v.is_control_domain), "the control domain is listed");
    let pool = s.run(|s| s.pool().get_all()).expect("pools")[0].clone();
    s.run(|s| s.pool().add_to_other_config(&pool, "blocking", "yes")).expect("write");
    let oc = s.run(|s| s.pool().get_other_config(&pool)).expect("read");
    assert_eq!(oc.get("blocking").map(String::as_str), Some("yes"));
    s.logout().expect("logout");
    rt.block_on(async move { drop(server) });
}

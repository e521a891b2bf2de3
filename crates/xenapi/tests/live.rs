//! The SDK against a live server: protocols, transports, re-login, typed
//! errors, tasks and events.

mod common;

use common::PASSWORD;
use std::collections::BTreeMap;
use xenapi::*;

async fn template(s: &Session, name: &str) -> Ref<Vm> {
    s.vm().get_by_name_label(name).await.expect("lookup").into_iter().next().expect("template exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protocols_read_the_same_records() {
    let srv = common::start().await;
    let j = Session::builder(&srv.url).login("root", PASSWORD).await.expect("json login");
    let x = Session::builder(&srv.url).protocol(Protocol::XmlRpc).login("root", PASSWORD).await.expect("xml login");
    let a = j.vm().get_all_records().await.expect("json records");
    let b = x.vm().get_all_records().await.expect("xml records");
    assert_eq!(a, b);
    let host = j.host().get_all().await.expect("hosts")[0].clone();
    let rec = x.host().get_record(&host).await.expect("host");
    assert_eq!(rec.api_version_major, 2);
    assert!(j.host().get_servertime(&host).await.expect("time").secs > 1_700_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_and_https() {
    let srv = common::start().await;
    let u = Session::builder(&format!("unix:{}", srv.unix.display()))
        .login("root", "anything: the socket is local root")
        .await
        .expect("unix login");
    assert!(!u.pool().get_all().await.expect("pools").is_empty());
    let insecure =
        Session::builder(&srv.https).tls(Tls::DangerAcceptAny).login("root", PASSWORD).await.expect("https, any cert");
    assert!(!insecure.vm().get_all().await.expect("vms").is_empty());
    let ca = std::fs::read(srv.dir.path().join("tls-cert.pem")).expect("generated cert");
    let https = srv.https.replace("127.0.0.1", "localhost");
    let pinned = Session::builder(&https).tls(Tls::CaPem(ca)).login("root", PASSWORD).await.expect("https, trusted CA");
    assert!(!pinned.network().get_all().await.expect("networks").is_empty());
    assert!(Session::builder(&srv.https).login("root", PASSWORD).await.is_err(), "https needs a trust decision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_errors() {
    let srv = common::start().await;
    let s = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    match s.vm().get_record(&Ref::new("OpaqueRef:nope")).await {
        Err(Error::Api(ApiError::HandleInvalid { class, handle })) => {
            assert_eq!((class.as_str(), handle.as_str()), ("VM", "OpaqueRef:nope"))
        }
        other => panic!("{other:?}"),
    }
    match Session::builder(&srv.url).login("root", "wrong").await {
        Err(Error::Api(ApiError::SessionAuthenticationFailed { uname, .. })) => assert_eq!(uname, "root"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("logged in with a wrong password"),
    }
    let t = template(&s, "Other install media").await;
    match s.vm().start(&t, false, false).await {
        Err(e) => assert_eq!(e.code(), Some("VM_IS_TEMPLATE")),
        Ok(()) => panic!("started a template"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_renewed() {
    let srv = common::start().await;
    let s = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    let old = s.session_ref();
    // Someone else ends our session behind our back.
    s.call_raw("session.logout", vec![Value::String(old.to_string())]).await.expect("logout");
    let pools = s.pool().get_all().await.expect("call after re-login");
    assert_eq!(pools.len(), 1);
    assert_ne!(s.session_ref(), old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_wait_through_events_and_cancel() {
    let srv = common::start().await;
    let s = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    let t = template(&s, "Other install media").await;
    let task = s.vm().clone_async(&t, "via a task").await.expect("async clone");
    let mut seen = Vec::new();
    let vm = task.wait_with_progress(|p| seen.push(p)).await.expect("task result");
    assert_eq!(s.vm().get_name_label(&vm).await.expect("name"), "via a task");
    assert_eq!(seen.last().copied(), Some(1.0));
    s.vm().set_is_a_template(&vm, false).await.expect("not a template");
    // A slow start (fault injection) cancelled while it runs.
    s.vm().add_to_other_config(&vm, "sim:delay-start", "5000").await.expect("knob");
    let start = s.vm().start_async(&vm, false, false).await.expect("async start");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    start.cancel().await.expect("cancel");
    match start.wait().await {
        Err(Error::Api(ApiError::TaskCancelled { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(start.record().await.expect("record").status, TaskStatusType::Cancelled);
    assert_eq!(s.vm().get_power_state(&vm).await.expect("state"), VmPowerState::Halted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_sees_changes() {
    let srv = common::start().await;
    let s = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    let mut ev = s.events(&["vm"]).from_now().await.expect("stream");
    let t = template(&s, "Other install media").await;
    let vm = s.vm().clone(&t, "watched").await.expect("clone");
    let e = tokio::time::timeout(std::time::Duration::from_secs(5), ev.next()).await.expect("in time").expect("event");
    assert_eq!((e.class.as_str(), e.op, e.r#ref.as_str()), ("vm", EventOp::Add, vm.as_str()));
    s.vm().destroy(&vm).await.expect("destroy");
    // Further changes to the new VM may come first; the deletion must follow.
    loop {
        let e =
            tokio::time::timeout(std::time::Duration::from_secs(5), ev.next()).await.expect("in time").expect("event");
        if e.op == EventOp::Del {
            assert_eq!(e.r#ref, vm.as_str());
            assert!(e.snapshot.is_none());
            break;
        }
        assert_eq!(e.op, EventOp::Mod);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_a_typed_record_and_logout_guard() {
    let srv = common::start().await;
    let s = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    let net = s
        .network()
        .create(&NetworkRecord {
            name_label: "sdk net".into(),
            other_config: BTreeMap::from([("k".into(), "v".into())]),
            ..Default::default()
        })
        .await
        .expect("create");
    let rec = s.network().get_record(&net).await.expect("record");
    assert_eq!(rec.name_label, "sdk net");
    assert!(rec.bridge.starts_with("xapi"));
    let r = s.session_ref();
    {
        let _g = s.logout_on_drop();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let other = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    match other.session().get_uuid(&r).await {
        Err(Error::Api(ApiError::HandleInvalid { .. })) | Err(Error::Api(ApiError::SessionInvalid { .. })) => {}
        x => panic!("session still alive: {x:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrd_updates_show_a_running_vm_and_the_host() {
    let srv = common::start().await;
    let s = Session::builder(&srv.url).login("root", PASSWORD).await.expect("login");
    let t = template(&s, "Other install media").await;
    let vm = s.vm().clone(&t, "rrd").await.expect("clone");
    s.vm().provision(&vm).await.expect("provision");
    s.vm().start(&vm, false, false).await.expect("start");
    let uuid = s.vm().get_uuid(&vm).await.expect("uuid");
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
            - 60;
    let cpu0 = format!("AVERAGE:vm:{uuid}:cpu0");
    // The sampler runs every 0.5 s here; a known value needs a 5 s step to end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = s.rrd_updates(since, true, Some("AVERAGE"), None).await.expect("rrd_updates");
        let j: serde_json::Value = serde_json::from_str(&text).expect("json");
        let legend: Vec<&str> =
            j["meta"]["legend"].as_array().expect("meta.legend").iter().filter_map(|v| v.as_str()).collect();
        assert!(legend.iter().any(|l| l.starts_with("AVERAGE:host:") && l.ends_with(":memory_free_kib")));
        assert_eq!(j["meta"]["columns"].as_str(), Some(legend.len().to_string().as_str()));
        assert_eq!(j["meta"]["step"], "5");
        let rows = j["data"].as_array().expect("data");
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r["values"].as_array().map(|v| v.len()) == Some(legend.len())));
        let known =
            legend.iter().position(|l| *l == cpu0).and_then(|i| rows[0]["values"][i].as_str()).map(|v| v != "NaN");
        if known == Some(true) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no known cpu0 value for the VM: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

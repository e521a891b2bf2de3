//! A fresh in-process xapid on a free loopback port for each test.

#![allow(dead_code)]

pub struct Server {
    pub running: Option<server::Running>,
    pub url: String,
    pub unix: std::path::PathBuf,
    pub https: String,
    pub dir: tempfile::TempDir,
}

pub const PASSWORD: &str = "sdk-test";

pub async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let unix = dir.path().join("xapi.sock");
    let cfg = server::Config {
        data_dir: dir.path().to_path_buf(),
        http: vec!["127.0.0.1:0".parse().expect("addr")],
        https: vec!["127.0.0.1:0".parse().expect("addr")],
        unix: vec![unix.clone()],
        root_password: Some(PASSWORD.into()),
        login_failure_delay: std::time::Duration::from_millis(10),
        rrd_interval: std::time::Duration::from_millis(500),
        sim: backend::sim::SimConfig { guest_delay: std::time::Duration::from_millis(20), ..Default::default() },
        ..Default::default()
    };
    let running = server::start(cfg).await.expect("server starts");
    let url = format!("http://{}", running.bound.http[0]);
    let https = format!("https://{}", running.bound.https[0]);
    Server { running: Some(running), url, unix, https, dir }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = r.shutdown().await;
                });
            }
        }
    }
}

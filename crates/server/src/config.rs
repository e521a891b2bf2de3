//! Server configuration (from `xapid`'s flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Directories besides `<data_dir>/sr` under which SR storage may live
    /// (device_config `path`/`location`). XenServer only uses its own mounts,
    /// so an SR path elsewhere is refused.
    pub sr_roots: Vec<PathBuf>,
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub unix: Vec<PathBuf>,
    /// Root's password on first start (ignored once set).
    pub root_password: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub backend: String,
    /// How long a failed login waits before answering (xapi: 5 s).
    pub login_failure_delay: Duration,
    /// Largest RPC body accepted (xapi: 300 KiB).
    pub max_rpc_body: usize,
    /// The host's name and management address as the API reports them.
    pub hostname: String,
    pub address: String,
    /// Keep everything in memory (tests and benchmarks); nothing is written.
    pub ephemeral: bool,
    /// How often sessions and tasks are garbage-collected (xapi: 30 s).
    pub gc_interval: Duration,
    /// How often the RRD sampler reads statistics (xapi: 5 s). The RRD step
    /// stays 5 s whatever this is.
    pub rrd_interval: Duration,
    /// How often every RRD is archived to disk besides clean shutdown and VM
    /// stops (xapi: daily).
    pub rrd_save_interval: Duration,
    /// Simulator settings (guest agent delay, shutdown timeout).
    pub sim: backend::sim::SimConfig,
    /// Start from what is readable of a damaged store, setting the damaged
    /// files aside, instead of refusing to start.
    pub recover_store: bool,
    /// How long after staging a database restore the server exits, so that
    /// the next start applies it (xapi: `db_restore_fuse_time`, 30 s).
    pub db_restore_fuse: Duration,
}

impl Config {
    /// Every directory SR storage may live under: the data dir's `sr/`
    /// first, then the `--sr-root` ones.
    pub fn allowed_sr_roots(&self) -> Vec<PathBuf> {
        let mut out = vec![self.data_dir.join("sr")];
        out.extend(self.sr_roots.iter().cloned());
        out
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/xapi-rs"),
            sr_roots: vec![],
            http: vec![],
            https: vec![],
            unix: vec![],
            root_password: None,
            tls_cert: None,
            tls_key: None,
            backend: "sim".into(),
            login_failure_delay: Duration::from_secs(2),
            max_rpc_body: 300 * 1024,
            hostname: "localhost".into(),
            address: "127.0.0.1".into(),
            ephemeral: false,
            gc_interval: Duration::from_secs(30),
            rrd_interval: Duration::from_secs(5),
            rrd_save_interval: Duration::from_secs(3600),
            sim: Default::default(),
            recover_store: false,
            db_restore_fuse: Duration::from_secs(30),
        }
    }
}

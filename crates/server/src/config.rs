//! Server configuration (from `xapid`'s flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
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
    /// Simulator settings (guest agent delay, shutdown timeout).
    pub sim: backend::sim::SimConfig,
    /// Directories besides /var/lib/xcp/guest that PV kernels and ramdisks
    /// may come from (the QEMU backend).
    pub guest_kernel_dirs: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/xapi-rs"),
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
            sim: Default::default(),
            guest_kernel_dirs: vec![],
        }
    }
}

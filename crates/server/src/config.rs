//! Server configuration (from `xapid`'s flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the pool database engine listens unless told otherwise.
pub const DEFAULT_POOL_PORT: u16 = 8998;
/// The user QEMU processes run as (the QEMU backend, when xapid is root).
pub const DEFAULT_QEMU_USER: &str = backend::qemu::confine::DEFAULT_USER;

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
    /// Where the NBD server listens (xapi: port 10809 on every address);
    /// empty: no NBD server, and `VDI.get_nbd_info` lists nothing.
    pub nbd: Vec<SocketAddr>,
    /// Root's password on first start (ignored once set).
    pub root_password: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub backend: String,
    /// How long a failed login waits before answering (xapi: 5 s).
    pub login_failure_delay: Duration,
    /// Largest RPC body accepted (xapi: 300 KiB); larger ones get 413.
    pub max_rpc_body: usize,
    /// Connections open at once on the TCP and TLS listeners together
    /// (xapi's `conn_limit_tcp`: 800); beyond it a client gets `503`.
    pub max_connections: usize,
    /// The same for the Unix socket (xapi's `conn_limit_unix`: 1024).
    pub max_unix_connections: usize,
    /// How long a request head may take to arrive (xapi's
    /// `header_total_timeout_tcp`: 60 s), idle keep-alive time included.
    pub header_timeout: Duration,
    /// How long a request body may go without a byte arriving while the
    /// server waits for it. A slow but steady upload is never cut.
    pub body_timeout: Duration,
    /// Password hashes computed at once (each argon2 check takes ~19 MiB);
    /// 0 leaves them unbounded (only to measure what the bound saves).
    pub login_hash_threads: usize,
    /// Logins waiting for a hashing slot; beyond this they fail at once
    /// (after the failure delay) without hashing.
    pub login_hash_queue: usize,
    /// Failed logins from one address within `login_failure_window` after
    /// which further attempts from it fail without hashing until the window
    /// ends; 0 disables this.
    pub login_failures_per_source: u32,
    pub login_failure_window: Duration,
    /// The host's name and management address as the API reports them.
    pub hostname: String,
    pub address: String,
    /// The port the pool database engine listens on, at `address` (hosts of
    /// a pool talk to each other there).
    pub pool_port: u16,
    /// Keep everything in memory (tests and benchmarks); nothing is written.
    pub ephemeral: bool,
    /// How often sessions and tasks are garbage-collected (xapi: 30 s).
    pub gc_interval: Duration,
    /// How often directory users' sessions are checked against the directory
    /// (xapi's `session_revalidation_interval`, 5 min); zero: never.
    pub session_revalidation_interval: Duration,
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
    /// Directories besides /var/lib/xcp/guest that PV kernels and ramdisks
    /// may come from (the QEMU backend).
    pub guest_kernel_dirs: Vec<PathBuf>,
    /// The interfaces that are this host's NICs (`--nics`), instead of the
    /// ones with a hardware device (the QEMU backend).
    pub nics: Option<Vec<String>>,
    /// The unprivileged user QEMU runs as when the server runs as root
    /// (`--qemu-user`; "root" keeps QEMU as root).
    pub qemu_user: String,
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
            nbd: vec![],
            root_password: None,
            tls_cert: None,
            tls_key: None,
            backend: "sim".into(),
            login_failure_delay: Duration::from_secs(2),
            max_rpc_body: 300 * 1024,
            max_connections: 800,
            max_unix_connections: 1024,
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            // Hashing is CPU-bound: more at once than cores only adds
            // memory. xapi's local_auth_max_threads (8) is the ceiling.
            login_hash_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8),
            login_hash_queue: 64,
            login_failures_per_source: 10,
            login_failure_window: Duration::from_secs(60),
            hostname: "localhost".into(),
            address: "127.0.0.1".into(),
            pool_port: DEFAULT_POOL_PORT,
            ephemeral: false,
            gc_interval: Duration::from_secs(30),
            session_revalidation_interval: Duration::from_secs(300),
            rrd_interval: Duration::from_secs(5),
            rrd_save_interval: Duration::from_secs(3600),
            sim: Default::default(),
            recover_store: false,
            db_restore_fuse: Duration::from_secs(30),
            guest_kernel_dirs: vec![],
            nics: None,
            qemu_user: DEFAULT_QEMU_USER.to_string(),
        }
    }
}

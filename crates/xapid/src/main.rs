//! `xapid`: the XenAPI server.

use clap::Parser;
use server::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// Rows are copied on write; mimalloc makes those many small allocations cheap
// (built without transparent huge pages: see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A XenAPI-compatible toolstack server.
#[derive(Parser, Debug)]
#[command(name = "xapid", version, about)]
struct Args {
    /// Where state lives (created if missing).
    #[arg(long, default_value = "/var/lib/xapi-rs")]
    data_dir: PathBuf,
    /// A directory under which SRs may keep their storage (device-config
    /// path/location), besides <data-dir>/sr (repeatable).
    #[arg(long, value_name = "DIR")]
    sr_root: Vec<PathBuf>,
    /// Plain HTTP listener, e.g. 127.0.0.1:8080 (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    http: Vec<SocketAddr>,
    /// HTTPS listener (repeatable). A self-signed certificate is generated
    /// into the data dir unless --tls-cert and --tls-key are given.
    #[arg(long, value_name = "ADDR:PORT")]
    https: Vec<SocketAddr>,
    /// Unix socket listener; connections on it are local root, like
    /// /var/lib/xcp/xapi (repeatable).
    #[arg(long, value_name = "PATH")]
    unix: Vec<PathBuf>,
    /// NBD server listener for VDI exports, e.g. 0.0.0.0:10809 (repeatable;
    /// with no listener flag at all, 0.0.0.0:10809 as xapi).
    #[arg(long, value_name = "ADDR:PORT")]
    nbd: Vec<SocketAddr>,
    /// Root's password, set on first start.
    #[arg(long, env = "XAPI_ROOT_PASSWORD", hide_env_values = true)]
    root_password: Option<String>,
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Hypervisor backend: `sim` simulates guests in-process, `qemu` runs
    /// each guest in its own qemu-system-x86_64 (KVM when it works, else TCG).
    #[arg(long, default_value = "sim", value_parser = ["sim", "qemu"])]
    backend: String,
    /// A directory PV kernels and ramdisks may come from besides
    /// /var/lib/xcp/guest (QEMU backend; repeatable).
    #[arg(long, value_name = "DIR")]
    guest_kernel_dir: Vec<PathBuf>,
    /// These interfaces are the host's NICs (QEMU backend; comma-separated,
    /// e.g. `--nics eth0,eth1`): the ones networks can be attached to.
    /// Without it, every interface backed by a device is a NIC. Tests use it
    /// with veths in a network namespace.
    #[arg(long, env = "XAPI_NICS", value_name = "IFACES", value_delimiter = ',')]
    nics: Option<Vec<String>>,
    /// The unprivileged user each QEMU process runs as when xapid runs as
    /// root (QEMU backend; made on first start if missing; `root` keeps
    /// QEMU as root).
    #[arg(long, value_name = "USER", default_value = server::config::DEFAULT_QEMU_USER)]
    qemu_user: String,
    /// The host name the API reports.
    #[arg(long)]
    hostname: Option<String>,
    /// The management address the API reports.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// The port, at --address, where the hosts of a pool run the pool
    /// database between themselves.
    #[arg(long, default_value_t = server::config::DEFAULT_POOL_PORT)]
    pool_port: u16,
    /// Delay before a failed login answers, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    login_failure_delay_ms: u64,
    /// Session and task garbage collection interval, in seconds.
    #[arg(long, default_value_t = 30)]
    gc_interval_secs: u64,
    /// How often directory (LDAP) users' sessions are checked against the
    /// directory, in seconds; a user removed, disabled or no longer a
    /// subject loses its sessions (xapi: 300). 0: never.
    #[arg(long, default_value_t = 300)]
    session_revalidation_secs: u64,
    /// How often every RRD is archived to disk, in seconds (also at clean
    /// shutdown and when a VM stops).
    #[arg(long, default_value_t = 3600)]
    rrd_save_interval_secs: u64,
    /// Log lines as plain text (coloured only on a terminal) or as one JSON
    /// object per line, for log collectors. The level comes from XAPI_LOG
    /// (e.g. `info`, `server=debug`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Start from what is readable of a damaged store (the snapshot and the
    /// log up to the damage; nothing without a valid snapshot), moving the
    /// old store files aside into <data-dir>/db/damaged-<time>/. Without it
    /// xapid refuses to start on damage a crash cannot explain.
    #[arg(long)]
    recover_store: bool,
    /// Seconds between staging a database restore (xe pool-restore-database)
    /// and exiting so that the next start applies it.
    #[arg(long, default_value_t = 30)]
    db_restore_fuse_secs: u64,
    /// Connections open at once on the TCP and TLS listeners together
    /// (xapi's conn_limit_tcp); a client beyond it gets 503.
    #[arg(long, default_value_t = 800)]
    max_connections: usize,
    /// Connections open at once on the Unix socket (xapi's conn_limit_unix).
    #[arg(long, default_value_t = 1024)]
    max_unix_connections: usize,
    /// Seconds a request head may take to arrive, idle keep-alive time included.
    #[arg(long, default_value_t = 60)]
    header_timeout_secs: u64,
    /// Seconds a request body may go without a byte arriving before the
    /// request is dropped (a steady slow upload is never cut).
    #[arg(long, default_value_t = 60)]
    body_timeout_secs: u64,
    /// Password hashes computed at once [default: the number of CPUs, at most 8];
    /// 0 leaves them unbounded.
    #[arg(long)]
    login_hash_threads: Option<usize>,
    /// Logins waiting for a hashing slot before further ones are refused.
    #[arg(long, default_value_t = 64)]
    login_hash_queue: usize,
    /// Failed logins from one address within the window after which its
    /// logins are refused (even with the right password) until the window
    /// ends; 0 disables this.
    #[arg(long, default_value_t = 10)]
    login_failures_per_source: u32,
    /// The window for --login-failures-per-source, in seconds.
    #[arg(long, default_value_t = 60)]
    login_failure_window_secs: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("XAPI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // Colour codes only where a person reads them: a file or the journal
        // would keep them as noise.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(true).init(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    // An API call that forwards to another host nests many futures (a
    // debug build's polls of them take more than the default 2 MiB).
    let rt = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(8 << 20).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xapid: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

fn default_listeners(cfg: &mut Config) {
    // Where XenServer listens, when we may.
    cfg.https.push(SocketAddr::from(([0, 0, 0, 0], 443)));
    cfg.http.push(SocketAddr::from(([0, 0, 0, 0], 80)));
    cfg.unix.push(PathBuf::from("/var/lib/xcp/xapi"));
    if cfg.nbd.is_empty() {
        cfg.nbd.push(SocketAddr::from(([0, 0, 0, 0], 10809)));
    }
}

async fn run(args: Args) -> ExitCode {
    let hostname = args.hostname.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into())
    });
    let mut cfg = Config {
        data_dir: args.data_dir,
        sr_roots: args.sr_root,
        http: args.http,
        https: args.https,
        unix: args.unix,
        nbd: args.nbd,
        root_password: args.root_password,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        backend: args.backend,
        guest_kernel_dirs: args.guest_kernel_dir,
        nics: args.nics,
        qemu_user: args.qemu_user,
        hostname,
        address: args.address,
        pool_port: args.pool_port,
        login_failure_delay: Duration::from_millis(args.login_failure_delay_ms),
        gc_interval: Duration::from_secs(args.gc_interval_secs.max(1)),
        session_revalidation_interval: Duration::from_secs(args.session_revalidation_secs),
        rrd_save_interval: Duration::from_secs(args.rrd_save_interval_secs.max(1)),
        recover_store: args.recover_store,
        db_restore_fuse: Duration::from_secs(args.db_restore_fuse_secs),
        max_connections: args.max_connections.max(1),
        max_unix_connections: args.max_unix_connections.max(1),
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
        login_hash_queue: args.login_hash_queue,
        login_failures_per_source: args.login_failures_per_source,
        login_failure_window: Duration::from_secs(args.login_failure_window_secs.max(1)),
        ..Config::default()
    };
    if let Some(n) = args.login_hash_threads {
        cfg.login_hash_threads = n;
    }
    let defaults = cfg.http.is_empty() && cfg.https.is_empty() && cfg.unix.is_empty();
    if defaults {
        default_listeners(&mut cfg);
    }
    let started = std::time::Instant::now();
    let running = match server::start(cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xapid: {e}");
            if defaults && !e.starts_with("refusing to start") {
                eprintln!("xapid: with no listener flags xapid uses XenServer's ports (443, 80 and /var/lib/xcp/xapi), which need root;");
                eprintln!("xapid: choose your own with e.g. --http 127.0.0.1:8080 --https 127.0.0.1:8443 --unix /tmp/xapi.sock");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Some(pw) = &running.generated_password {
        tracing::warn!("no --root-password given: root's password is {pw}");
    }
    for a in &running.bound.http {
        tracing::info!("listening on http://{a}");
    }
    for a in &running.bound.https {
        tracing::info!("listening on https://{a}");
    }
    for p in &running.bound.unix {
        tracing::info!("listening on unix:{}", p.display());
    }
    for a in &running.bound.nbd {
        tracing::info!("NBD server listening on {a}");
    }
    tracing::info!("ready in {} ms", started.elapsed().as_millis());
    // host.restart_agent and a staged database restore both end in a clean
    // stop and a fresh start of this binary (xapi restarts too).
    let restart = tokio::select! {
        _ = wait_for_signal() => false,
        _ = server::restart_requested() => true,
        _ = running.exit_requested() => {
            tracing::warn!("restarting to apply the staged database restore");
            true
        }
    };
    tracing::info!("shutting down");
    if let Err(e) = running.shutdown().await {
        eprintln!("xapid: shutdown: {e}");
        return ExitCode::FAILURE;
    }
    if restart {
        return reexec();
    }
    ExitCode::SUCCESS
}

/// Start this binary again in this process, with the same arguments
/// (host.restart_agent). Listening sockets are close-on-exec, so the new
/// image binds them afresh; only on failure does this return.
fn reexec() -> ExitCode {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xapid: cannot restart: no path to this binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A binary replaced on disk (an upgrade) shows as "<path> (deleted)":
    // start the new one at that path, as a service manager would.
    let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        Some(p) => PathBuf::from(p),
        None => exe,
    };
    let err = std::process::Command::new(&exe).args(std::env::args_os().skip(1)).exec();
    eprintln!("xapid: cannot restart {}: {err}", exe.display());
    ExitCode::FAILURE
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

//! A fresh xapid process per test (the binary built by `cargo build -p
//! xapid`, next to the xe binary), and the xe client pointed at it.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub port: u16,
    pub tls_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

pub fn xe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xe"))
}

impl Server {
    pub fn start() -> Server {
        let xapid = xe_bin().with_file_name("xapid");
        assert!(xapid.exists(), "{} is missing: run `cargo build -p xapid` first", xapid.display());
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("sock");
        let (port, tls_port) = (free_port(), free_port());
        let child = Command::new(&xapid)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--https")
            .arg(format!("127.0.0.1:{tls_port}"))
            .arg("--unix")
            .arg(&sock)
            .args(["--root-password", "pw", "--hostname", "golden", "--login-failure-delay-ms", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xapid");
        // A bound, not a timing: on a loaded 2-core machine several servers
        // starting at once (each generating its TLS key) took over 20 s.
        let deadline = Instant::now() + Duration::from_secs(90);
        // Until it answers, not until the file exists: the file is there
        // from bind(), before listen(), and a connect between them is
        // refused (seen once under CI).
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "xapid did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, dir, sock, port, tls_port }
    }

    /// Run xe with the Unix socket (local root) and an empty HOME.
    pub fn xe(&self, args: &[&str]) -> Output {
        Command::new(xe_bin())
            .args(args)
            .env("XE_UNIX_SOCKET", &self.sock)
            .env("HOME", self.dir.path())
            .env_remove("XE_EXTRA_ARGS")
            .stdin(Stdio::null())
            .output()
            .expect("run xe")
    }

    /// stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.xe(args);
        assert!(
            o.status.success(),
            "xe {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_hex(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_hexdigit)
}

/// Replace what differs between runs: uuids, datetimes and MACs.
pub fn normalise(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let uuid = rest.len() >= 36
            && [8, 13, 18, 23].iter().all(|&j| rest[j] == b'-')
            && [0..8, 9..13, 14..18, 19..23, 24..36].iter().all(|r| is_hex(&rest[r.clone()]));
        if uuid {
            out.push_str("<uuid>");
            i += 36;
            continue;
        }
        let time = rest.len() >= 17
            && rest[..8].iter().all(u8::is_ascii_digit)
            && rest[8] == b'T'
            && rest[11] == b':'
            && rest[14] == b':';
        if time {
            out.push_str("<time>");
            i += 17;
            if b.get(i) == Some(&b'Z') {
                i += 1;
            }
            continue;
        }
        let mac = rest.len() >= 17
            && (0..6).all(|k| is_hex(&rest[k * 3..k * 3 + 2]))
            && (0..5).all(|k| rest[k * 3 + 2] == b':');
        if mac {
            out.push_str("<mac>");
            i += 17;
            continue;
        }
        // Safe: we only ever stop on ASCII boundaries above.
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

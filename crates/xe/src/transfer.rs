//! HttpGet/HttpPut: stream a file to or from a URL the server named,
//! with a progress bar on a terminal and silence otherwise.

use crate::net::{self, Stream};
use crate::options::Options;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// Heartbeats keep the server's wait alive (the reference client sends
/// one every 300 s).
const HEARTBEAT: Duration = Duration::from_secs(60);

/// `https://host/path` → (host, path); a bare path goes to our server.
pub fn parse_url(o: &Options, url: &str) -> (String, String) {
    for scheme in ["https://", "http://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            return (host.to_string(), format!("/{path}"));
        }
    }
    (o.server.clone(), url.to_string())
}

fn bar(len: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
        b.set_style(style);
    }
    b
}

fn copy(src: &mut dyn Read, dst: &mut dyn Write, pb: &ProgressBar, heartbeat: &mut dyn FnMut()) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut last = Instant::now();
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])?;
        total += n as u64;
        pb.inc(n as u64);
        if last.elapsed() >= HEARTBEAT {
            heartbeat();
            last = Instant::now();
        }
    }
    dst.flush()?;
    pb.finish_and_clear();
    Ok(total)
}

/// Status code and headers of a response.
fn response_head(s: &mut dyn Stream) -> io::Result<(u16, Vec<(String, String)>)> {
    let status = net::read_line(s)?;
    let code = status.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("Bad response from HTTP server: {status}"))
    })?;
    let mut headers = Vec::new();
    loop {
        let l = net::read_line(s)?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((code, headers))
}

pub enum Outcome {
    Ok,
    /// The transfer failed; the server will explain over the CLI channel.
    Failed(String),
    /// Our side failed (e.g. the file is missing): say so and exit 1.
    ClientSide(String),
}

pub fn put(o: &Options, filename: &str, url: &str, heartbeat: &mut dyn FnMut()) -> Outcome {
    let mut url = url.to_string();
    for _ in 0..5 {
        let (mut f, len): (Box<dyn Read>, Option<u64>) = if std::path::Path::new(filename).is_dir() {
            match crate::dirtar::DirTar::new(std::path::Path::new(filename)) {
                Ok(d) => {
                    let n = d.len();
                    (Box::new(d), Some(n))
                }
                Err(e) => return Outcome::ClientSide(format!("directory '{filename}' is not an XVA appliance: {e}")),
            }
        } else {
            match File::open(filename) {
                Ok(f) => {
                    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                    (Box::new(f), len)
                }
                Err(_) => return Outcome::ClientSide(format!("file '{filename}' does not exist")),
            }
        };
        let (host, path) = parse_url(o, &url);
        let mut s = match net::open(o, &host) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let cl = len.map(|n| format!("\r\nContent-length: {n}")).unwrap_or_default();
        if let Err(e) = write!(s, "PUT {path} HTTP/1.0{cl}\r\n\r\n").and_then(|_| s.flush()) {
            return Outcome::Failed(e.to_string());
        }
        // Stream the body, then read the verdict (a server may answer first;
        // its answer waits in the socket either way).
        let pb = bar(len);
        let sent = copy(&mut f, &mut s, &pb, heartbeat);
        match response_head(&mut s) {
            Ok((200, _)) => {
                return match sent {
                    Ok(_) => Outcome::Ok,
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Ok((302, h)) => match h.iter().find(|(k, _)| k == "location") {
                Some((_, loc)) => url = loc.clone(),
                None => return Outcome::Failed("redirect without a location".into()),
            },
            Ok((code, _)) => return Outcome::Failed(format!("HTTP {code}")),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
    Outcome::Failed("too many redirects".into())
}

pub fn get(o: &Options, filename: &str, url: &str, heartbeat: &mut dyn FnMut()) -> Outcome {
    let mut url = url.to_string();
    for _ in 0..5 {
        let (host, path) = parse_url(o, &url);
        let mut s = match net::open(o, &host) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if let Err(e) = write!(s, "GET {path} HTTP/1.0\r\n\r\n").and_then(|_| s.flush()) {
            return Outcome::Failed(e.to_string());
        }
        match response_head(&mut s) {
            Ok((200, h)) => {
                let len = h.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok());
                let mut out: Box<dyn Write> = if filename.is_empty() {
                    Box::new(io::stdout())
                } else {
                    let mut oo = std::fs::OpenOptions::new();
                    oo.write(true).create_new(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::OpenOptionsExt;
                        oo.mode(0o600);
                    }
                    match oo.open(filename) {
                        Ok(f) => Box::new(io::BufWriter::new(f)),
                        Err(e) => return Outcome::ClientSide(format!("{filename}: {e}")),
                    }
                };
                let pb = bar(len);
                return match copy(&mut s, &mut out, &pb, heartbeat) {
                    Ok(_) => Outcome::Ok,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
            }
            Ok((302, h)) => match h.iter().find(|(k, _)| k == "location") {
                Some((_, loc)) => url = loc.clone(),
                None => return Outcome::Failed("redirect without a location".into()),
            },
            Ok((code, _)) => return Outcome::Failed(format!("HTTP {code}")),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
    Outcome::Failed("too many redirects".into())
}

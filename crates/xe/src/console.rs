//! HttpConnect (`xe console`): the terminal attached to a console the
//! server named, as the reference client does it: `CONNECT <path>`, then
//! the raw bytes both ways, the terminal in raw mode; Ctrl-] ends it.

use crate::net;
use crate::options::Options;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Ctrl-]: leaves the console.
const ESCAPE: u8 = 0x1d;
/// Heartbeats keep the server's wait for our verdict alive.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long a read from the console waits before the keyboard gets a turn.
const POLL: Duration = Duration::from_millis(50);

/// Whether the session ran (the server is told Ok) or not (Failed).
pub fn connect(o: &Options, url: &str, heartbeat: &mut dyn FnMut()) -> bool {
    let (host, path) = crate::transfer::parse_url(o, url);
    let raw = RawTerminal::enter();
    let out = session(o, &host, &path, heartbeat);
    if raw.is_some() {
        drop(raw);
        println!("\r");
    }
    match out {
        Ok(ran) => ran,
        Err(e) => {
            eprintln!("{e}");
            false
        }
    }
}

fn session(o: &Options, host: &str, path: &str, heartbeat: &mut dyn FnMut()) -> io::Result<bool> {
    let (mut s, sock) = net::open_with_socket(o, host)?;
    s.write_all(format!("CONNECT {path} HTTP/1.0\r\ncontent-length: 0\r\n\r\n").as_bytes())?;
    s.flush()?;
    let status = net::read_line(&mut *s)?;
    while !net::read_line(&mut *s)?.is_empty() {}
    match status.split(' ').nth(1) {
        Some("200") => {}
        Some("404") => {
            eprintln!("Server replied with HTTP 404: the console is not available");
            return Ok(false);
        }
        _ => {
            eprintln!("Server said: {status}");
            return Ok(false);
        }
    }
    sock.set_read_timeout(Some(POLL))?;
    // The keyboard is read by a thread of its own (a blocking read);
    // this one alternates between its bytes and the console's.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stdout = io::stdout();
    let mut buf = vec![0u8; 1 << 16];
    let mut last = Instant::now();
    loop {
        while let Ok(keys) = rx.try_recv() {
            if let Some(i) = keys.iter().position(|&b| b == ESCAPE) {
                s.write_all(&keys[..i])?;
                s.flush()?;
                return Ok(true);
            }
            s.write_all(&keys)?;
            s.flush()?;
        }
        match s.read(&mut buf) {
            // The console went away (the guest stopped): the session is over.
            Ok(0) => return Ok(true),
            Ok(n) => {
                stdout.write_all(&buf[..n])?;
                stdout.flush()?;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        if last.elapsed() >= HEARTBEAT {
            heartbeat();
            last = Instant::now();
        }
    }
}

/// The terminal in raw mode (keys such as Ctrl-C go to the guest) until
/// dropped; nothing when stdin is not a terminal.
struct RawTerminal(libc::termios);

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        if !io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawTerminal(saved))
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in enter().
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}

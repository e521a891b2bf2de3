//! `xe`: a thin client of the server's `POST /cli`. It resolves its own
//! options, sends the remaining arguments (plus username and password) as
//! the request body, then obeys the server: print, prompt, load a file,
//! transfer a file over HTTP, exit.

mod console;
mod dirtar;
mod net;
mod options;
mod transfer;

use cliproto::{Blob, Command, Message, Response};
use net::Stream;
use options::{OptError, Options};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

fn usage() {
    eprintln!("Usage: xe <cmd> [-s server] [-p port] ([-u username] [-pw password] or [-pwf <password file>]) <other arguments>");
    eprintln!("\nA full list of commands can be obtained by running \n\txe help -s <server> -p <port>");
}

fn absolute(p: &str) -> PathBuf {
    let p = Path::new(p);
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    // Lexical normalisation, as Fpath.normalize (no symlink resolution).
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The server may only read or write files the user named on the command line.
fn permitted(allowed: &[PathBuf], f: &str, permit_cwd: bool) -> bool {
    let want = absolute(f);
    allowed.contains(&want) || (permit_cwd && std::env::current_dir().map(|d| d == want).unwrap_or(false))
}

enum Fatal {
    Connect,
    Lost,
    NotCli,
    Version(String),
    NotPermitted(String),
    Unexpected(String),
    Io(io::Error),
}

impl From<io::Error> for Fatal {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Fatal::Lost
        } else {
            Fatal::Io(e)
        }
    }
}

fn send(s: &mut dyn Stream, m: Message) -> io::Result<()> {
    s.write_all(&cliproto::frame(&m))?;
    s.flush()
}

fn debug(o: &Options, msg: impl FnOnce() -> String) {
    if o.debug {
        eprintln!("{}", msg());
    }
}

fn main_loop(o: &Options, s: &mut dyn Stream, allowed: &[PathBuf]) -> Result<i32, Fatal> {
    let mut hs = [0u8; cliproto::HANDSHAKE_LEN];
    let mut got = 0;
    while got < hs.len() {
        let n = s.read(&mut hs[got..])?;
        if n == 0 {
            return Err(if got == 0 { Fatal::Connect } else { Fatal::Lost });
        }
        got += n;
    }
    let (major, minor) = match cliproto::parse_handshake(&hs) {
        Ok(v) => v,
        Err(cliproto::DecodeError::NotCli) if hs.starts_with(b"HTTP") => {
            return Err(Fatal::Unexpected("Server internal error.".into()))
        }
        Err(_) => return Err(Fatal::NotCli),
    };
    let msg =
        format!("Server has protocol version {major}.{minor}. Client has {}.{}", cliproto::MAJOR, cliproto::MINOR);
    debug(o, || msg.clone());
    if major != cliproto::MAJOR {
        return Err(Fatal::Version(msg));
    }
    s.write_all(&cliproto::handshake())?;
    s.flush()?;
    loop {
        let m = cliproto::read_message(s)?;
        debug(o, || format!("Read: {m:?}"));
        let Message::Command(c) = m else { return Err(Fatal::Unexpected(format!("{m:?}"))) };
        match c {
            Command::Print(x) => {
                let mut out = io::stdout().lock();
                if let Err(e) = writeln!(out, "{x}").and_then(|_| out.flush()) {
                    // The reader went away (`xe … | head`): stop quietly.
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(1);
                    }
                    return Err(e.into());
                }
            }
            Command::PrintStderr(x) => {
                eprint!("{x}");
            }
            Command::Debug(x) => debug(o, || format!("debug from server: {x}")),
            Command::Error(code, params) => {
                eprintln!("Error code: {code}");
                eprintln!("Error parameters: {}", params.join(", "));
            }
            Command::Exit(n) => return Ok(n),
            Command::Prompt => {
                let mut line = String::new();
                io::stdin().lock().read_line(&mut line)?;
                let line = line.trim_end_matches('\n').to_string();
                send(s, Message::Blob(Blob::Chunk(line.len() as u32)))?;
                s.write_all(line.as_bytes())?;
                send(s, Message::Blob(Blob::End))?;
            }
            Command::Load(f) => {
                if !permitted(allowed, &f, false) {
                    return Err(Fatal::NotPermitted(f));
                }
                match std::fs::read(&f) {
                    Ok(data) => {
                        send(s, Message::Response(Response::Ok))?;
                        send(s, Message::Blob(Blob::Chunk(data.len() as u32)))?;
                        s.write_all(&data)?;
                        send(s, Message::Blob(Blob::End))?;
                    }
                    Err(_) => send(s, Message::Response(Response::Failed))?,
                }
            }
            Command::HttpPut(f, url) => {
                // vm-import turns filename=<dir>/ova.xml into <dir>.
                let appliance = allowed.contains(&absolute(&f).join("ova.xml"));
                if !permitted(allowed, &f, false) && !appliance {
                    return Err(Fatal::NotPermitted(f));
                }
                let mut hb_err = None;
                let outcome = {
                    let mut hb = || {
                        if let Err(e) = send(s, Message::Response(Response::Wait)) {
                            hb_err = Some(e);
                        }
                    };
                    transfer::put(o, &f, &url, &mut hb)
                };
                if let Some(e) = hb_err {
                    return Err(e.into());
                }
                if let Some(code) = finish(o, s, outcome)? {
                    return Ok(code);
                }
            }
            Command::HttpGet(f, url) => {
                if !f.is_empty() && !permitted(allowed, &f, true) {
                    return Err(Fatal::NotPermitted(f));
                }
                let mut hb_err = None;
                let outcome = {
                    let mut hb = || {
                        if let Err(e) = send(s, Message::Response(Response::Wait)) {
                            hb_err = Some(e);
                        }
                    };
                    transfer::get(o, &f, &url, &mut hb)
                };
                if let Some(e) = hb_err {
                    return Err(e.into());
                }
                if let Some(code) = finish(o, s, outcome)? {
                    return Ok(code);
                }
            }
            Command::HttpConnect(url) => {
                let mut hb_err = None;
                let ran = {
                    let mut hb = || {
                        if let Err(e) = send(s, Message::Response(Response::Wait)) {
                            hb_err = Some(e);
                        }
                    };
                    console::connect(o, &url, &mut hb)
                };
                if let Some(e) = hb_err {
                    return Err(e.into());
                }
                send(s, Message::Response(if ran { Response::Ok } else { Response::Failed }))?;
            }
        }
    }
}

/// Report a transfer's outcome to the server; Some(code) ends the client.
fn finish(o: &Options, s: &mut dyn Stream, out: transfer::Outcome) -> Result<Option<i32>, Fatal> {
    match out {
        transfer::Outcome::Ok => {
            send(s, Message::Response(Response::Ok))?;
            Ok(None)
        }
        transfer::Outcome::Failed(why) => {
            debug(o, || format!("transfer failed: {why}"));
            send(s, Message::Response(Response::Failed))?;
            Ok(None)
        }
        transfer::Outcome::ClientSide(msg) => {
            send(s, Message::Response(Response::Failed))?;
            eprintln!("Operation failed. Error: {msg}");
            Ok(Some(1))
        }
    }
}

fn read_pwf(o: &mut Options) -> Result<(), i32> {
    let Ok(text) = std::fs::read_to_string(&o.passwordfile) else {
        eprintln!("Error opening password file '{}'", o.passwordfile);
        return Err(1);
    };
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(u), Some(p)) => {
            o.username = u.to_string();
            o.password = p.to_string();
            Ok(())
        }
        _ => {
            eprintln!("Error: password file format: expecting username on the first line, password on the second line");
            Err(1)
        }
    }
}

fn run() -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-version") {
        println!("ThinCLI protocol: {}.{}", cliproto::MAJOR, cliproto::MINOR);
        return 0;
    }
    let rc = options::read_rc(options::rc_path());
    let extra = std::env::var("XE_EXTRA_ARGS").ok();
    let (mut o, args, help) = match options::resolve(&argv, extra.as_deref(), &rc) {
        Ok(v) => v,
        Err(OptError::BadPort) => {
            eprintln!("Port number must be an integer (0-65535)");
            usage();
            return 0;
        }
    };
    if help || args.is_empty() {
        usage();
        return 0;
    }
    if !o.passwordfile.is_empty() {
        if let Err(c) = read_pwf(&mut o) {
            return c;
        }
    }
    let allowed: Vec<PathBuf> = args
        .iter()
        .filter_map(|a| a.split_once('=').map(|(_, v)| v))
        .filter(|v| !v.trim().is_empty())
        .map(absolute)
        .collect();
    let mut body_args = args.clone();
    body_args.push(format!("username={}", o.username));
    body_args.push(format!("password={}", o.password));
    let body = body_args.join("\n");
    let mut s = match net::open(&o, &o.server) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("Host '{}' not found.", o.server);
            return 1;
        }
        Err(e) => {
            eprintln!("Error: {e} (calling connect)");
            return 1;
        }
    };
    let head = format!(
        "POST /cli HTTP/1.0\r\nUser-agent: xe-cli/Unix/{}.{}\r\ncontent-length: {}\r\n\r\n",
        cliproto::MAJOR,
        cliproto::MINOR,
        body.len()
    );
    if let Err(e) = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body.as_bytes())).and_then(|_| s.flush()) {
        eprintln!("Error: {e} (calling write)");
        return 1;
    }
    match main_loop(&o, &mut *s, &allowed) {
        Ok(c) => c,
        Err(f) => {
            match f {
                Fatal::Connect => eprintln!("Unable to contact server. Please check server and port settings."),
                Fatal::Lost => eprintln!("Lost connection to the server."),
                Fatal::NotCli => {
                    eprintln!("Failed to contact a running management agent.");
                    eprintln!("Try specifying a server name and port.");
                    usage();
                }
                Fatal::Version(m) => {
                    eprintln!("Protocol version mismatch: {m}.");
                    eprintln!("Try specifying a server name and port on the command-line.");
                    usage();
                }
                Fatal::NotPermitted(f) => eprintln!("File not permitted: Blocked upload/download of the file {f}, which was requested by the server. The file name was not present on the command line."),
                Fatal::Unexpected(m) => eprintln!("Unexpected message from server: {m}"),
                Fatal::Io(e) => eprintln!("Error: {e}"),
            }
            1
        }
    }
}

fn main() {
    std::process::exit(run());
}

//! The wire as the reference xe client speaks it (newcli.ml): an HTTP/1.0
//! POST of the argv lines, the server's handshake with no status line, the
//! client's handshake, then length-prefixed frames. Byte-exact, so a real
//! xe binary keeps working; and malformed input gets a clean end.

mod common;

use common::Server;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const HANDSHAKE: &[u8] = b"XenSource thin CLI protocol\x00\x00\x00\x00\x02\x00\x00\x00";

fn connect(s: &Server) -> UnixStream {
    let c = UnixStream::connect(&s.sock).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    c
}

/// What newcli.ml writes for `xe <args>` with -u/-pw.
fn request(args: &[&str]) -> Vec<u8> {
    let mut lines: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    lines.push("username=root".into());
    lines.push("password=pw".into());
    let body = lines.join("\n");
    format!("POST /cli HTTP/1.0\r\nUser-agent: xe-cli/Unix/0.2\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

fn read_n(c: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    c.read_exact(&mut b).expect("read");
    b
}

/// Read one frame's raw payload.
fn frame(c: &mut UnixStream) -> Vec<u8> {
    let h = read_n(c, 4);
    let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    read_n(c, n)
}

fn le(n: i32) -> [u8; 4] {
    n.to_le_bytes()
}

fn string_payload(tag: i32, sub: i32, s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(le(tag));
    v.extend(le(sub));
    v.extend(le(s.len() as i32));
    v.extend(s.as_bytes());
    v
}

fn exit_payload(code: i32) -> Vec<u8> {
    [le(9), le(4), le(code)].concat()
}

/// The server closed the connection (rather than hanging or answering):
/// end of file, or a reset when it left unread bytes behind.
fn at_eof(c: &mut UnixStream) -> bool {
    let mut b = [0u8; 1];
    match c.read(&mut b) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn reference_client_bytes() {
    let s = Server::start();
    let hosts = s.ok(&["host-list", "params=uuid", "--minimal"]);
    let mut c = connect(&s);
    c.write_all(&request(&["host-list", "params=uuid", "--minimal"])).expect("write");
    // No HTTP status line: the handshake comes first.
    assert_eq!(read_n(&mut c, HANDSHAKE.len()), HANDSHAKE);
    c.write_all(HANDSHAKE).expect("handshake");
    // Command(Print uuid): tag 9, sub-tag 0, string.
    assert_eq!(frame(&mut c), string_payload(9, 0, hosts.trim_end()));
    // Command(Exit 0).
    assert_eq!(frame(&mut c), exit_payload(0));
    assert!(at_eof(&mut c));
}

#[test]
fn records_and_errors_on_the_wire() {
    let s = Server::start();
    let mut c = connect(&s);
    c.write_all(&request(&["pool-list", "params=name-label"])).expect("write");
    assert_eq!(read_n(&mut c, HANDSHAKE.len()), HANDSHAKE);
    c.write_all(HANDSHAKE).expect("handshake");
    // A record is one Print ending in a newline (the client adds another).
    let p = frame(&mut c);
    assert_eq!(&p[..8], [le(9), le(0)].concat().as_slice());
    assert!(String::from_utf8_lossy(&p[12..]).starts_with("name-label ( RW)    : "));
    assert!(p.ends_with(b"\n"));
    assert_eq!(frame(&mut c), exit_payload(0));

    // Unknown command: two PrintStderr frames (sub-tag 16), then Exit 1.
    let mut c = connect(&s);
    c.write_all(&request(&["no-such"])).expect("write");
    read_n(&mut c, HANDSHAKE.len());
    c.write_all(HANDSHAKE).expect("handshake");
    assert_eq!(frame(&mut c), string_payload(9, 16, "Unknown command: no-such\n"));
    assert_eq!(frame(&mut c), string_payload(9, 16, "For usage run: 'xe help'\n"));
    assert_eq!(frame(&mut c), exit_payload(1));

    // An error outside the catalogue: Command(Error (code, [params])), sub-tag 14.
    let mut c = connect(&s);
    c.write_all(&request(&["vm-list", "no-such-field=1"])).expect("write");
    read_n(&mut c, HANDSHAKE.len());
    c.write_all(HANDSHAKE).expect("handshake");
    let mut want = vec![];
    want.extend(le(9));
    want.extend(le(14));
    want.extend(le(17));
    want.extend(b"Missing parameter");
    want.extend(le(1));
    want.extend(le(13));
    want.extend(b"no-such-field");
    assert_eq!(frame(&mut c), want);
    assert_eq!(frame(&mut c), exit_payload(1));
}

#[test]
fn session_id_line_and_prompt() {
    let s = Server::start();
    // A session_id= first line replaces username/password.
    let mut c = connect(&s);
    let body = "session_id=OpaqueRef:nope\nvm-list";
    c.write_all(format!("POST /cli HTTP/1.0\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes()).expect("w");
    read_n(&mut c, HANDSHAKE.len());
    c.write_all(HANDSHAKE).expect("handshake");
    let p = frame(&mut c);
    assert_eq!(&p[..8], [le(9), le(16)].concat().as_slice(), "friendly SESSION_INVALID on stderr");
    let mut last = frame(&mut c);
    while last != exit_payload(1) {
        last = frame(&mut c);
    }

    // vm-uninstall without --force prompts; a Blob answer "no" keeps the VM.
    let tpl = s.ok(&["template-list", "--minimal"]);
    let tpl = tpl.split(',').next().unwrap_or_default().trim().to_string();
    let vm = s.ok(&["vm-install", &format!("template={tpl}"), "new-name-label=p"]).trim().to_string();
    let mut c = connect(&s);
    c.write_all(&request(&["vm-uninstall", &format!("uuid={vm}")])).expect("w");
    read_n(&mut c, HANDSHAKE.len());
    c.write_all(HANDSHAKE).expect("handshake");
    loop {
        let p = frame(&mut c);
        if p == [le(9), le(3)].concat() {
            break; // Prompt
        }
    }
    c.write_all(&[le(12), le(11), le(7), le(2)].concat()).expect("chunk");
    c.write_all(b"no").expect("data");
    c.write_all(&[le(8), le(11), le(8)].concat()).expect("end");
    assert_eq!(frame(&mut c), exit_payload(0));
    assert_eq!(s.ok(&["vm-list", &format!("uuid={vm}"), "--minimal"]).trim(), vm);
}

#[test]
fn malformed_input_ends_cleanly() {
    let s = Server::start();
    // Not our protocol: a bad handshake closes the connection.
    let mut c = connect(&s);
    c.write_all(&request(&["vm-list"])).expect("write");
    read_n(&mut c, HANDSHAKE.len());
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n.........").expect("junk");
    assert!(at_eof(&mut c));

    // Another major version.
    let mut c = connect(&s);
    c.write_all(&request(&["vm-list"])).expect("write");
    read_n(&mut c, HANDSHAKE.len());
    c.write_all(b"XenSource thin CLI protocol\x01\x00\x00\x00\x00\x00\x00\x00").expect("v1");
    assert!(at_eof(&mut c));

    // No content-length: an HTTP error, not the protocol.
    let mut c = connect(&s);
    c.write_all(b"POST /cli HTTP/1.0\r\n\r\nvm-list").expect("write");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.0 400"), "{out}");

    // A body shorter than announced, then the client goes away.
    let mut c = connect(&s);
    c.write_all(b"POST /cli HTTP/1.0\r\ncontent-length: 100\r\n\r\nvm-li").expect("write");
    drop(c);

    // Garbage frames where a Prompt answer should be: the server ends the
    // invocation instead of waiting or panicking.
    let tpl = s.ok(&["template-list", "--minimal"]);
    let tpl = tpl.split(',').next().unwrap_or_default().trim().to_string();
    let vm = s.ok(&["vm-install", &format!("template={tpl}"), "new-name-label=g"]).trim().to_string();
    for junk in [
        vec![0xff, 0xff, 0xff, 0x7f],                      // huge length
        [le(8), le(77), le(1)].concat(),                   // unknown message tag
        [le(12), le(11), le(7), le(0x7fff_ffff)].concat(), // absurd chunk
        [le(2), le(0)].concat(),                           // short frame
    ] {
        let mut c = connect(&s);
        c.write_all(&request(&["vm-uninstall", &format!("uuid={vm}")])).expect("w");
        read_n(&mut c, HANDSHAKE.len());
        c.write_all(HANDSHAKE).expect("handshake");
        loop {
            if frame(&mut c) == [le(9), le(3)].concat() {
                break;
            }
        }
        let _ = c.write_all(&junk);
        let _ = c.shutdown(std::net::Shutdown::Write);
        assert!(at_eof(&mut c), "server kept the connection after {junk:?}");
    }
    // And the server still serves.
    assert_eq!(s.ok(&["vm-list", &format!("uuid={vm}"), "--minimal"]).trim(), vm);
}

#[test]
fn tls_and_tcp_paths() {
    let s = Server::start();
    let tcp = s.xe(&["-p", &s.port.to_string(), "-pw", "pw", "pool-list", "--minimal", "server=localhost", "--nossl"]);
    assert!(tcp.status.success(), "{}", String::from_utf8_lossy(&tcp.stderr));
    // Not 127.0.0.1 and no --nossl: TLS, accepting the self-signed certificate.
    let tls =
        s.xe(&["-s", "localhost", "-p", &s.tls_port.to_string(), "-u", "root", "-pw", "pw", "pool-list", "--minimal"]);
    assert!(tls.status.success(), "{}", String::from_utf8_lossy(&tls.stderr));
    assert_eq!(tcp.stdout, tls.stdout);
    let bad = s.xe(&["-s", "localhost", "-p", &s.tls_port.to_string(), "-pw", "wrong", "pool-list"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&bad.stderr), "Authentication failed\nFor usage run: 'xe help'\n");
}

#[test]
fn options_from_rc_and_env() {
    let s = Server::start();
    // ~/.xe points at TCP with a wrong password; XE_EXTRA_ARGS fixes it; argv wins over both.
    std::fs::write(
        s.dir.path().join(".xe"),
        format!("server=localhost\nport={}\nnossl=true\npassword=wrong\n", s.port),
    )
    .expect("rc");
    let run = |extra: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new(common::xe_bin());
        cmd.args(args).env("HOME", s.dir.path()).env("XE_UNIX_SOCKET", "/nonexistent");
        match extra {
            Some(e) => cmd.env("XE_EXTRA_ARGS", e),
            None => cmd.env_remove("XE_EXTRA_ARGS"),
        };
        cmd.output().expect("xe")
    };
    assert_eq!(run(None, &["pool-list"]).status.code(), Some(1));
    assert!(run(Some("password=pw"), &["pool-list"]).status.success());
    assert!(run(Some("password=wrong"), &["pool-list", "-pw", "pw"]).status.success());
    assert!(run(None, &["pool-list", "password=pw"]).status.success());
    // A password file: user on the first line, password on the second.
    let pwf = s.dir.path().join("pwf");
    std::fs::write(&pwf, "root\npw\n").expect("pwf");
    assert!(run(None, &["pool-list", "-pwf", &pwf.to_string_lossy()]).status.success());
}

//! The "XenSource thin CLI protocol", version 0.2: what `xe` and the server's
//! `POST /cli` handler exchange after the HTTP request.
//!
//! After the request body the server sends the handshake (the prefix string,
//! then int32 major and minor, little-endian) with no HTTP status line; the
//! client answers with its own. Then every message is an int32 length and a
//! payload whose first int32 is the message tag (Command 9, Response 10,
//! Blob 11) followed by a sub-tag and its arguments. Strings are an int32
//! length plus bytes; lists an int32 count plus items. After a `Blob Chunk n`
//! message, `n` raw bytes follow outside any frame.
//!
//! Only pure encoding and decoding lives here, plus blocking readers for the
//! client; the server wraps the same functions in async I/O.

use std::fmt;
use std::io::{self, Read};

pub const PREFIX: &[u8] = b"XenSource thin CLI protocol";
pub const MAJOR: i32 = 0;
pub const MINOR: i32 = 2;
/// Length of the handshake on the wire.
pub const HANDSHAKE_LEN: usize = PREFIX.len() + 8;
/// Frames above this are refused (the largest legitimate ones are Print
/// lines of a long listing).
pub const MAX_FRAME: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Print(String),
    Debug(String),
    Load(String),
    /// (local file name, URL path on the server)
    HttpGet(String, String),
    HttpPut(String, String),
    HttpConnect(String),
    Prompt,
    Exit(i32),
    Error(String, Vec<String>),
    PrintStderr(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    Ok,
    Wait,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blob {
    Chunk(u32),
    End,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Command(Command),
    Response(Response),
    Blob(Blob),
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field.
    Truncated,
    /// A tag outside the protocol: (what, tag).
    UnknownTag(&'static str, i32),
    /// A negative or oversized length.
    BadLength(i64),
    /// The handshake does not start with the protocol prefix.
    NotCli,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated message"),
            DecodeError::UnknownTag(what, n) => write!(f, "unknown {what} tag {n}"),
            DecodeError::BadLength(n) => write!(f, "bad length {n}"),
            DecodeError::NotCli => write!(f, "not a thin CLI protocol peer"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for io::Error {
    fn from(e: DecodeError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn put_int(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_int(out, s.len() as i32);
    out.extend_from_slice(s.as_bytes());
}

/// The handshake both sides send: prefix, major, minor.
pub fn handshake() -> Vec<u8> {
    let mut v = PREFIX.to_vec();
    put_int(&mut v, MAJOR);
    put_int(&mut v, MINOR);
    v
}

/// Check a received handshake and return the peer's (major, minor).
pub fn parse_handshake(b: &[u8]) -> Result<(i32, i32), DecodeError> {
    if b.len() < HANDSHAKE_LEN {
        return Err(DecodeError::Truncated);
    }
    if &b[..PREFIX.len()] != PREFIX {
        return Err(DecodeError::NotCli);
    }
    let mut c = Cursor { b: &b[PREFIX.len()..], pos: 0 };
    Ok((c.int()?, c.int()?))
}

/// The payload of a message (without its length prefix).
pub fn payload(m: &Message) -> Vec<u8> {
    let mut o = Vec::with_capacity(16);
    match m {
        Message::Command(c) => {
            put_int(&mut o, 9);
            match c {
                Command::Print(s) => {
                    put_int(&mut o, 0);
                    put_str(&mut o, s)
                }
                Command::Load(s) => {
                    put_int(&mut o, 1);
                    put_str(&mut o, s)
                }
                Command::Prompt => put_int(&mut o, 3),
                Command::Exit(n) => {
                    put_int(&mut o, 4);
                    put_int(&mut o, *n)
                }
                Command::HttpGet(a, b) => {
                    put_int(&mut o, 12);
                    put_str(&mut o, a);
                    put_str(&mut o, b)
                }
                Command::HttpPut(a, b) => {
                    put_int(&mut o, 13);
                    put_str(&mut o, a);
                    put_str(&mut o, b)
                }
                Command::Error(code, params) => {
                    put_int(&mut o, 14);
                    put_str(&mut o, code);
                    put_int(&mut o, params.len() as i32);
                    for p in params {
                        put_str(&mut o, p);
                    }
                }
                Command::Debug(s) => {
                    put_int(&mut o, 15);
                    put_str(&mut o, s)
                }
                Command::PrintStderr(s) => {
                    put_int(&mut o, 16);
                    put_str(&mut o, s)
                }
                Command::HttpConnect(s) => {
                    put_int(&mut o, 17);
                    put_str(&mut o, s)
                }
            }
        }
        Message::Response(r) => {
            put_int(&mut o, 10);
            put_int(
                &mut o,
                match r {
                    Response::Ok => 5,
                    Response::Failed => 6,
                    Response::Wait => 18,
                },
            );
        }
        Message::Blob(b) => {
            put_int(&mut o, 11);
            match b {
                Blob::Chunk(n) => {
                    put_int(&mut o, 7);
                    o.extend_from_slice(&n.to_le_bytes());
                }
                Blob::End => put_int(&mut o, 8),
            }
        }
    }
    o
}

/// A whole frame: int32 length, then the payload.
pub fn frame(m: &Message) -> Vec<u8> {
    let p = payload(m);
    let mut o = Vec::with_capacity(p.len() + 4);
    put_int(&mut o, p.len() as i32);
    o.extend_from_slice(&p);
    o
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn int(&mut self) -> Result<i32, DecodeError> {
        let s = self.b.get(self.pos..self.pos + 4).ok_or(DecodeError::Truncated)?;
        self.pos += 4;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.int()?;
        if n < 0 || n as usize > self.b.len() {
            return Err(DecodeError::BadLength(n as i64));
        }
        Ok(n as usize)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let s = self.b.get(self.pos..self.pos + n).ok_or(DecodeError::Truncated)?;
        self.pos += n;
        Ok(String::from_utf8_lossy(s).into_owned())
    }
}

/// Decode a payload.
pub fn decode(payload: &[u8]) -> Result<Message, DecodeError> {
    let mut c = Cursor { b: payload, pos: 0 };
    Ok(match c.int()? {
        9 => Message::Command(match c.int()? {
            0 => Command::Print(c.string()?),
            1 => Command::Load(c.string()?),
            3 => Command::Prompt,
            4 => Command::Exit(c.int()?),
            12 => Command::HttpGet(c.string()?, c.string()?),
            13 => Command::HttpPut(c.string()?, c.string()?),
            14 => {
                let code = c.string()?;
                let n = c.len()?;
                let mut ps = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    ps.push(c.string()?);
                }
                Command::Error(code, ps)
            }
            15 => Command::Debug(c.string()?),
            16 => Command::PrintStderr(c.string()?),
            17 => Command::HttpConnect(c.string()?),
            n => return Err(DecodeError::UnknownTag("command", n)),
        }),
        10 => Message::Response(match c.int()? {
            5 => Response::Ok,
            6 => Response::Failed,
            18 => Response::Wait,
            n => return Err(DecodeError::UnknownTag("response", n)),
        }),
        11 => Message::Blob(match c.int()? {
            7 => Blob::Chunk(c.int()? as u32),
            8 => Blob::End,
            n => return Err(DecodeError::UnknownTag("blob_header", n)),
        }),
        n => return Err(DecodeError::UnknownTag("message", n)),
    })
}

/// Check a frame's length field.
pub fn frame_len(head: [u8; 4]) -> Result<usize, DecodeError> {
    let n = i32::from_le_bytes(head);
    if n < 4 || n as usize > MAX_FRAME {
        return Err(DecodeError::BadLength(n as i64));
    }
    Ok(n as usize)
}

/// Blocking: read one framed message.
pub fn read_message<R: Read + ?Sized>(r: &mut R) -> io::Result<Message> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)?;
    let n = frame_len(head)?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)?;
    Ok(decode(&body)?)
}

/// Blocking: read the peer's handshake.
pub fn read_handshake<R: Read + ?Sized>(r: &mut R) -> io::Result<(i32, i32)> {
    let mut b = [0u8; HANDSHAKE_LEN];
    r.read_exact(&mut b)?;
    Ok(parse_handshake(&b)?)
}

/// Split `--minimal` output back into values (`\,` and `\\` escapes).
pub fn split_minimal(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (it.next(), out.last_mut()) {
                    last.push(n);
                }
            }
            ',' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c)
                }
            }
        }
    }
    if out.len() == 1 && out[0].is_empty() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let all = [
            Message::Command(Command::Print("hello".into())),
            Message::Command(Command::Debug("d".into())),
            Message::Command(Command::Load("f".into())),
            Message::Command(Command::HttpGet("a".into(), "/export?x".into())),
            Message::Command(Command::HttpPut("a".into(), "/import?x".into())),
            Message::Command(Command::HttpConnect("/console".into())),
            Message::Command(Command::Prompt),
            Message::Command(Command::Exit(3)),
            Message::Command(Command::Error("E".into(), vec!["a".into(), "b".into()])),
            Message::Command(Command::PrintStderr("e\n".into())),
            Message::Response(Response::Ok),
            Message::Response(Response::Wait),
            Message::Response(Response::Failed),
            Message::Blob(Blob::Chunk(12)),
            Message::Blob(Blob::End),
        ];
        for m in all {
            let f = frame(&m);
            assert_eq!(frame_len([f[0], f[1], f[2], f[3]]).unwrap(), f.len() - 4);
            assert_eq!(decode(&f[4..]).unwrap(), m);
        }
    }

    #[test]
    fn exact_bytes() {
        // Print "hi": length 14 = tag 9, sub-tag 0, string length 2, "hi".
        assert_eq!(
            frame(&Message::Command(Command::Print("hi".into()))),
            [14, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'h', b'i']
        );
        assert_eq!(frame(&Message::Response(Response::Ok)), [8, 0, 0, 0, 10, 0, 0, 0, 5, 0, 0, 0]);
        let h = handshake();
        assert_eq!(&h[..27], b"XenSource thin CLI protocol");
        assert_eq!(&h[27..], [0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(parse_handshake(&h).unwrap(), (0, 2));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[9, 0, 0, 0, 99, 0, 0, 0]), Err(DecodeError::UnknownTag("command", 99)));
        assert!(decode(&[9, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 127]).is_err());
        assert!(frame_len([255, 255, 255, 255]).is_err());
        assert_eq!(parse_handshake(b"HTTP/1.1 404 Not Found\r\n\r\n..........."), Err(DecodeError::NotCli));
    }

    #[test]
    fn minimal_split() {
        assert_eq!(split_minimal("a,b\\,c,d\\\\"), vec!["a", "b,c", "d\\"]);
        assert!(split_minimal("").is_empty());
    }
}

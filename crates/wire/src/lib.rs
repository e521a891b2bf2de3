//! XML-RPC and JSON-RPC codecs: bytes ⇄ [`model::Value`].
//!
//! Encoders write what xapi writes (bare `<value>` strings, int64 as text,
//! `%.16g` doubles, compact XML; JSON numbers with literal `NaN`/`Infinity`).
//! Decoders accept what real clients send and reject malformed input with a
//! [`WireError`], never a panic.

pub mod float;
pub mod jsonrpc;
pub mod stream;
pub mod xmlrpc;

use std::fmt;

/// Malformed input. xapi answers such requests with HTTP 500.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WireError {}

pub(crate) fn werr<T>(msg: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(msg.into()))
}

/// Nesting limit for decoded values: deep enough for any real call, shallow
/// enough that hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// The outcome of a call as both protocols carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(model::Value),
    /// `[code, params…]`.
    Failure(Vec<String>),
}

/// Append a decimal integer without allocating.
pub fn put_int(out: &mut Vec<u8>, i: i64) {
    let mut buf = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Append a datetime in xapi's compact form.
pub fn put_datetime(out: &mut Vec<u8>, d: &model::DateTime) {
    use std::io::Write;
    let _ = write!(out, "{d}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn ints() {
        for i in [0i64, 7, -7, 10, 1234567890, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            super::put_int(&mut out, i);
            assert_eq!(String::from_utf8(out).unwrap(), i.to_string());
        }
    }
}

//! XML-RPC and JSON-RPC codecs: bytes ⇄ [`model::Value`].
//!
//! Encoders write what xapi writes (bare `<value>` strings, int64 as text,
//! `%.16g` doubles, compact XML; JSON numbers with literal `NaN`/`Infinity`).
//! Decoders accept what real clients send and reject malformed input with a
//! [`WireError`], never a panic.

pub mod float;
pub mod jsonrpc;
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

//! JSON-RPC 1.0 and 2.0 as xapi speaks them on `POST /jsonrpc`.
//!
//! v1 replies always carry `"error"` (null on success); v2 replies carry
//! `"jsonrpc":"2.0"` and omit `error` on success; v2 errors are
//! `{"code":1,"message":CODE,"data":[params…]}`. Ints are JSON numbers, floats
//! may be the bare tokens `NaN`, `Infinity`, `-Infinity`.

use crate::float::g16;
use crate::{werr, Outcome, WireError};
use model::Value;
use serde_json::Value as J;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub version: Version,
    /// Echoed back unchanged.
    pub id: J,
    pub method: String,
    pub params: Vec<Value>,
}

/// Parse a request body. Notifications (no id or null id) are rejected, as xapi does.
pub fn parse_request(body: &[u8]) -> Result<Request, WireError> {
    let j: J = serde_json::from_slice(body).map_err(|e| WireError(format!("JSON: {e}")))?;
    let J::Object(mut obj) = j else {
        return werr("JSON-RPC request must be an object");
    };
    let version = match obj.get("jsonrpc") {
        None => Version::V1,
        Some(J::String(s)) if s == "2.0" => Version::V2,
        Some(v) => return werr(format!("unsupported jsonrpc version {v}")),
    };
    let method = match obj.remove("method") {
        Some(J::String(m)) => m,
        _ => return werr("JSON-RPC request lacks a method"),
    };
    let id = match obj.remove("id") {
        Some(J::Null) | None => return werr("Malformed_method_request: notifications are not supported"),
        Some(id @ (J::String(_) | J::Number(_))) => id,
        Some(_) => return werr("JSON-RPC id must be a string or a number"),
    };
    let params = match (version, obj.remove("params")) {
        (_, Some(J::Array(a))) => a.iter().map(from_json).collect(),
        (Version::V2, None | Some(J::Null)) => vec![],
        (Version::V2, Some(o @ J::Object(_))) => vec![from_json(&o)],
        _ => return werr("JSON-RPC params must be an array"),
    };
    Ok(Request { version, id, method, params })
}

/// JSON → Value. Integers that fit i64 are ints; everything else numeric is a float.
pub fn from_json(j: &J) -> Value {
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        J::Object(o) => Value::Struct(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// Bytes a JSON string literal must escape.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Append a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| SPECIAL[b as usize]) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Cached(c) => out.extend_from_slice(c.encodings.json.get_or_init(|| {
            let mut b = Vec::new();
            write_value(&mut b, &c.value);
            b.into_boxed_slice()
        })),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => crate::put_int(out, *i),
        Value::I32(i) => crate::put_int(out, *i as i64),
        Value::Float(f) => {
            if f.is_nan() {
                out.extend_from_slice(b"NaN")
            } else if f.is_infinite() {
                out.extend_from_slice(if *f > 0.0 { b"Infinity" } else { b"-Infinity" })
            } else {
                let s = g16(*f);
                out.extend_from_slice(s.as_bytes());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::DateTime(d) => {
            out.push(b'"');
            crate::put_datetime(out, d);
            out.push(b'"');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, x);
            }
            out.push(b']');
        }
        Value::Struct(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, x);
            }
            out.push(b'}');
        }
        Value::Row(r) => match r.encodings.json.get() {
            Some(b) => out.extend_from_slice(b),
            None => write_row(out, r),
        },
    }
}

/// Make (once) and keep a row's encoding; see `xmlrpc::keep_row_encoding`.
pub fn keep_row_encoding(row: &model::value::Row) {
    row.encodings.json.get_or_init(|| {
        let mut b = Vec::with_capacity(32 * row.fields.len());
        write_row(&mut b, row);
        b.into_boxed_slice()
    });
}

fn write_row(out: &mut Vec<u8>, r: &model::value::Row) {
    out.push(b'{');
    // Keys are datamodel field names: nothing in them to escape.
    for (i, (k, x)) in r.members().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        write_value(out, x);
    }
    out.push(b'}');
}

fn write_id(out: &mut Vec<u8>, id: &J) {
    // Only strings and numbers get here, which serde_json cannot fail to write.
    let _ = serde_json::to_writer(&mut *out, id);
}

fn write_strs(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, s);
    }
    out.push(b']');
}

/// A reply in the request's dialect.
pub fn write_response(out: &mut Vec<u8>, version: Version, id: &J, o: &Outcome) {
    match (version, o) {
        (Version::V1, Outcome::Success(v)) => {
            out.extend_from_slice(b"{\"result\":");
            write_value(out, v);
            out.extend_from_slice(b",\"error\":null,\"id\":");
        }
        (Version::V2, Outcome::Success(v)) => {
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
            write_value(out, v);
            out.extend_from_slice(b",\"id\":");
        }
        (Version::V1, Outcome::Failure(desc)) => {
            out.extend_from_slice(b"{\"result\":null,\"error\":");
            write_strs(out, desc);
            out.extend_from_slice(b",\"id\":");
        }
        (Version::V2, Outcome::Failure(desc)) => {
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":");
            write_str(out, desc.first().map(String::as_str).unwrap_or("INTERNAL_ERROR"));
            out.extend_from_slice(b",\"data\":");
            write_strs(out, desc.get(1..).unwrap_or(&[]));
            out.extend_from_slice(b"},\"id\":");
        }
    }
    write_id(out, id);
    out.push(b'}');
}

/// The success envelope up to the first entry of a top-level object or array.
pub(crate) fn write_success_open(out: &mut Vec<u8>, version: Version, is_struct: bool) {
    out.extend_from_slice(match version {
        Version::V1 => b"{\"result\":",
        Version::V2 => b"{\"jsonrpc\":\"2.0\",\"result\":",
    });
    out.push(if is_struct { b'{' } else { b'[' });
}

/// Entry `i` of the top-level collection: a member (with a key) or an item.
pub(crate) fn write_entry(out: &mut Vec<u8>, i: usize, key: Option<&str>, v: &Value) {
    if i > 0 {
        out.push(b',');
    }
    if let Some(k) = key {
        write_str(out, k);
        out.push(b':');
    }
    write_value(out, v);
}

pub(crate) fn write_success_close(out: &mut Vec<u8>, version: Version, id: &J, is_struct: bool) {
    out.push(if is_struct { b'}' } else { b']' });
    out.extend_from_slice(match version {
        Version::V1 => b",\"error\":null,\"id\":",
        Version::V2 => b",\"id\":",
    });
    write_id(out, id);
    out.push(b'}');
}

/// A client request (always v2, which xapi answers in kind).
pub fn write_request(out: &mut Vec<u8>, id: u64, method: &str, params: &[Value]) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":");
    write_str(out, method);
    out.extend_from_slice(b",\"params\":");
    write_value(out, &Value::Array(params.to_vec()));
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.push(b'}');
}

/// Replace bare `NaN`/`Infinity`/`-Infinity` tokens outside strings with
/// quoted strings so a strict JSON parser accepts what xapi sends.
pub fn quote_special_floats(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let needs = body.windows(3).any(|w| w == b"NaN" || w == b"Inf");
    if !needs {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    let (mut in_str, mut esc, mut i) = (false, false, 0);
    while i < body.len() {
        let b = body[i];
        if in_str {
            out.push(b);
            if esc {
                esc = false
            } else if b == b'\\' {
                esc = true
            } else if b == b'"' {
                in_str = false
            }
            i += 1;
            continue;
        }
        let rest = &body[i..];
        let tok: Option<&[u8]> = [&b"-Infinity"[..], b"Infinity", b"NaN"].into_iter().find(|t| rest.starts_with(t));
        match tok {
            Some(t) => {
                out.push(b'"');
                out.extend_from_slice(t);
                out.push(b'"');
                i += t.len();
            }
            None => {
                if b == b'"' {
                    in_str = true;
                }
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Parse a reply as a client, in either dialect.
pub fn parse_response(body: &[u8]) -> Result<Outcome, WireError> {
    let body = quote_special_floats(body);
    let j: J = serde_json::from_slice(&body).map_err(|e| WireError(format!("JSON: {e}")))?;
    let J::Object(obj) = j else {
        return werr("JSON-RPC reply must be an object");
    };
    match obj.get("error") {
        None | Some(J::Null) => Ok(Outcome::Success(obj.get("result").map(from_json).unwrap_or(Value::Nil))),
        Some(J::Array(a)) => Ok(Outcome::Failure(a.iter().map(json_text).collect())),
        Some(J::Object(e)) => {
            let mut desc = vec![e.get("message").map(json_text).unwrap_or_else(|| "INTERNAL_ERROR".into())];
            if let Some(J::Array(d)) = e.get("data") {
                desc.extend(d.iter().map(json_text));
            }
            Ok(Outcome::Failure(desc))
        }
        Some(other) => Ok(Outcome::Failure(vec![json_text(other)])),
    }
}

fn json_text(j: &J) -> String {
    match j {
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(v: Version, o: &Outcome) -> String {
        let mut out = Vec::new();
        write_response(&mut out, v, &J::from(7), o);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn shapes() {
        let ok = Outcome::Success(Value::from("OpaqueRef:a"));
        assert_eq!(reply(Version::V1, &ok), r#"{"result":"OpaqueRef:a","error":null,"id":7}"#);
        assert_eq!(reply(Version::V2, &ok), r#"{"jsonrpc":"2.0","result":"OpaqueRef:a","id":7}"#);
        let bad = Outcome::Failure(vec!["SESSION_INVALID".into(), "x".into()]);
        assert_eq!(reply(Version::V1, &bad), r#"{"result":null,"error":["SESSION_INVALID","x"],"id":7}"#);
        assert_eq!(
            reply(Version::V2, &bad),
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["x"]},"id":7}"#
        );
        let fail_only = Outcome::Failure(vec!["X".into()]);
        assert!(reply(Version::V2, &fail_only).contains(r#""data":[]"#));
    }

    #[test]
    fn requests() {
        let r = parse_request(br#"{"jsonrpc":"2.0","method":"VM.get_all","params":["s",1,2.5,true,null],"id":"abc"}"#)
            .unwrap();
        assert_eq!(r.version, Version::V2);
        assert_eq!(r.id, J::from("abc"));
        assert_eq!(r.params, vec![Value::from("s"), Value::Int(1), Value::Float(2.5), Value::Bool(true), Value::Nil]);
        let r = parse_request(br#"{"method":"x","params":[],"id":1}"#).unwrap();
        assert_eq!(r.version, Version::V1);
        assert!(parse_request(br#"{"method":"x","params":[]}"#).is_err());
        assert!(parse_request(br#"{"method":"x","params":[],"id":null}"#).is_err());
        assert!(parse_request(br#"{"method":"x","params":{},"id":1}"#).is_err());
        assert_eq!(parse_request(br#"{"jsonrpc":"2.0","method":"x","id":1}"#).unwrap().params, vec![]);
        assert!(parse_request(br#"{"jsonrpc":"3.0","method":"x","id":1}"#).is_err());
        assert!(parse_request(b"{").is_err());
        assert!(parse_request(b"[]").is_err());
    }

    #[test]
    fn special_floats() {
        let mut out = Vec::new();
        write_value(
            &mut out,
            &Value::Array(vec![Value::Float(f64::NAN), Value::Float(f64::INFINITY), Value::Float(1.0)]),
        );
        assert_eq!(out, b"[NaN,Infinity,1]");
        let o =
            parse_response(br#"{"jsonrpc":"2.0","result":{"a":NaN,"b":-Infinity,"c":"NaN inside"},"id":1}"#).unwrap();
        let Outcome::Success(v) = o else { panic!() };
        assert_eq!(v.map_str("a"), Some("NaN"));
        assert_eq!(v.map_str("b"), Some("-Infinity"));
        assert_eq!(v.map_str("c"), Some("NaN inside"));
    }

    #[test]
    fn escapes() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}

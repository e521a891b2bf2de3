//! XML-RPC as xapi speaks it.
//!
//! Output: compact, strings and int64 as bare `<value>text</value>`, booleans as
//! `<boolean>1</boolean>`, doubles as `%.16g`, datetimes compact, records as
//! structs in datamodel order. Input: `<int>`, `<i4>`, `<i8>`, `<boolean>`
//! (true only for `1`), `<double>`, `<string>`, bare text, `<dateTime.iso8601>`,
//! `<base64>`, `<nil/>`, arrays and structs; attributes and inter-element
//! whitespace ignored.

use crate::float::g16;
use crate::{werr, Outcome, WireError, MAX_DEPTH};
use model::{DateTime, Value};
use quick_xml::events::Event;
use quick_xml::Reader;

// ---------------------------------------------------------------- encoding

/// Append `s` escaped as xapi escapes text: `< > & "` as entities, control
/// characters other than TAB, LF and CR dropped.
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Fast path: most strings need no escaping at all.
    if !bytes.iter().any(|&b| SPECIAL[b as usize]) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: Option<&[u8]> = match b {
            b'<' => Some(b"&lt;"),
            b'>' => Some(b"&gt;"),
            b'&' => Some(b"&amp;"),
            b'"' => Some(b"&quot;"),
            b'\t' | b'\n' | b'\r' => None,
            0..=0x1f => Some(b""),
            _ => None,
        };
        if let Some(rep) = rep {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(rep);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Bytes that `escape_into` rewrites or drops (one table lookup per byte).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = !matches!(b as u8, b'\t' | b'\n' | b'\r');
        b += 1;
    }
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[b'"' as usize] = true;
    t
};

/// Append one `<value>…</value>`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    if let Value::Cached(c) = v {
        out.extend_from_slice(c.encodings.xml.get_or_init(|| {
            let mut b = Vec::new();
            write_value(&mut b, &c.value);
            b.into_boxed_slice()
        }));
        return;
    }
    if let Some(b) = match v {
        Value::Row(row) => row.encodings.xml.get(),
        _ => None,
    } {
        out.extend_from_slice(b);
        return;
    }
    out.extend_from_slice(b"<value>");
    write_inner(out, v);
    out.extend_from_slice(b"</value>");
}

/// Make (once) and keep a row's `<value>` encoding, which later replies
/// carrying the same row copy instead of encoding it again. Used for
/// single-record replies; bulk replies use kept encodings but make none, so
/// memory only holds the records clients fetch one by one.
pub fn keep_row_encoding(row: &std::sync::Arc<model::value::Row>) {
    row.encodings.xml.get_or_init(|| {
        let mut b = Vec::with_capacity(64 * row.fields.len());
        b.extend_from_slice(b"<value>");
        write_inner(&mut b, &Value::Row(row.clone()));
        b.extend_from_slice(b"</value>");
        b.into_boxed_slice()
    });
}

fn write_inner(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => escape_into(out, s),
        Value::Int(i) => crate::put_int(out, *i),
        Value::I32(i) => {
            out.extend_from_slice(b"<i4>");
            crate::put_int(out, *i as i64);
            out.extend_from_slice(b"</i4>");
        }
        Value::Bool(b) => out.extend_from_slice(if *b { b"<boolean>1</boolean>" } else { b"<boolean>0</boolean>" }),
        Value::Float(f) => {
            out.extend_from_slice(b"<double>");
            out.extend_from_slice(g16(*f).as_bytes());
            out.extend_from_slice(b"</double>");
        }
        Value::DateTime(d) => {
            out.extend_from_slice(b"<dateTime.iso8601>");
            crate::put_datetime(out, d);
            out.extend_from_slice(b"</dateTime.iso8601>");
        }
        Value::Nil => out.extend_from_slice(b"<nil/>"),
        Value::Array(items) => {
            out.extend_from_slice(b"<array><data>");
            for it in items {
                write_value(out, it);
            }
            out.extend_from_slice(b"</data></array>");
        }
        Value::Struct(members) => {
            out.extend_from_slice(b"<struct>");
            for (k, v) in members {
                write_member(out, k, v);
            }
            out.extend_from_slice(b"</struct>");
        }
        Value::Cached(c) => write_inner(out, &c.value),
        Value::Row(row) => {
            out.extend_from_slice(b"<struct>");
            // Keys are datamodel field names: nothing in them to escape.
            for (k, v) in row.members() {
                out.extend_from_slice(b"<member><name>");
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b"</name>");
                write_value(out, v);
                out.extend_from_slice(b"</member>");
            }
            out.extend_from_slice(b"</struct>");
        }
    }
}

fn write_member(out: &mut Vec<u8>, k: &str, v: &Value) {
    out.extend_from_slice(b"<member><name>");
    escape_into(out, k);
    out.extend_from_slice(b"</name>");
    write_value(out, v);
    out.extend_from_slice(b"</member>");
}

/// A value as a standalone fragment (`task.result`, `ova.xml`).
pub fn value_to_string(v: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

const PROLOG: &[u8] = b"<?xml version=\"1.0\"?>";

/// A full `methodResponse` with xapi's `{Status, Value|ErrorDescription}` struct.
pub fn write_response(out: &mut Vec<u8>, o: &Outcome) {
    out.extend_from_slice(PROLOG);
    out.extend_from_slice(b"<methodResponse><params><param><value><struct>");
    match o {
        Outcome::Success(v) => {
            out.extend_from_slice(
                b"<member><name>Status</name><value>Success</value></member><member><name>Value</name>",
            );
            write_value(out, v);
            out.extend_from_slice(b"</member>");
        }
        Outcome::Failure(desc) => {
            out.extend_from_slice(b"<member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data>");
            for d in desc {
                out.extend_from_slice(b"<value>");
                escape_into(out, d);
                out.extend_from_slice(b"</value>");
            }
            out.extend_from_slice(b"</data></array></value></member>");
        }
    }
    out.extend_from_slice(b"</struct></value></param></params></methodResponse>");
}

/// The success envelope up to the first entry of a top-level struct or array.
pub(crate) fn write_success_open(out: &mut Vec<u8>, is_struct: bool) {
    out.extend_from_slice(PROLOG);
    out.extend_from_slice(b"<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>");
    out.extend_from_slice(if is_struct { b"<value><struct>" } else { b"<value><array><data>" });
}

/// One member (with a key) or item (without) of the top-level collection.
pub(crate) fn write_entry(out: &mut Vec<u8>, key: Option<&str>, v: &Value) {
    match key {
        Some(k) => write_member(out, k, v),
        None => write_value(out, v),
    }
}

pub(crate) fn write_success_close(out: &mut Vec<u8>, is_struct: bool) {
    out.extend_from_slice(if is_struct { b"</struct></value>" } else { b"</data></array></value>" });
    out.extend_from_slice(b"</member></struct></value></param></params></methodResponse>");
}

/// `system.listMethods` is answered without the Status wrapper.
pub fn write_bare_response(out: &mut Vec<u8>, v: &Value) {
    out.extend_from_slice(PROLOG);
    out.extend_from_slice(b"<methodResponse><params><param>");
    write_value(out, v);
    out.extend_from_slice(b"</param></params></methodResponse>");
}

/// A `methodCall`, as a client sends it. Ints go as strings, which xapi accepts
/// for int64 and which avoids XML-RPC's 32-bit `<int>` limit.
pub fn write_call(out: &mut Vec<u8>, method: &str, params: &[Value]) {
    out.extend_from_slice(PROLOG);
    out.extend_from_slice(b"<methodCall><methodName>");
    escape_into(out, method);
    out.extend_from_slice(b"</methodName><params>");
    for p in params {
        out.extend_from_slice(b"<param>");
        write_value(out, p);
        out.extend_from_slice(b"</param>");
    }
    out.extend_from_slice(b"</params></methodCall>");
}

// ---------------------------------------------------------------- decoding

/// Pull events, skipping the declaration, comments, PIs and doctype, and
/// folding entity references into text.
struct Parser<'a> {
    r: Reader<&'a [u8]>,
    peeked: Option<Tok>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Start(String),
    End(String),
    /// `<x/>`
    Empty(String),
    Text(String),
    Eof,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        let mut r = Reader::from_str(s);
        let c = r.config_mut();
        c.trim_text(false);
        c.check_end_names = true;
        c.expand_empty_elements = false;
        Parser { r, peeked: None }
    }

    fn raw(&mut self) -> Result<Tok, WireError> {
        let mut text: Option<String> = None;
        loop {
            let ev = self.r.read_event().map_err(|e| WireError(format!("XML: {e}")))?;
            let tok = match ev {
                Event::Text(t) => {
                    text.get_or_insert_with(String::new).push_str(&t.xml10_content());
                    continue;
                }
                Event::CData(t) => {
                    text.get_or_insert_with(String::new).push_str(&t.xml10_content());
                    continue;
                }
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    let ch = if r.is_char_ref() {
                        r.resolve_char_ref().map_err(|e| WireError(format!("XML: {e}")))?
                    } else {
                        match &*name {
                            "lt" => Some('<'),
                            "gt" => Some('>'),
                            "amp" => Some('&'),
                            "quot" => Some('"'),
                            "apos" => Some('\''),
                            _ => None,
                        }
                    };
                    match ch {
                        Some(c) => text.get_or_insert_with(String::new).push(c),
                        None => return werr(format!("XML: unknown entity &{name};")),
                    }
                    continue;
                }
                Event::Start(s) => Tok::Start(s.name().0.to_string()),
                Event::End(e) => Tok::End(e.name().0.to_string()),
                Event::Empty(s) => Tok::Empty(s.name().0.to_string()),
                Event::Eof => Tok::Eof,
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => continue,
            };
            if let Some(t) = text.take() {
                self.peeked = Some(tok);
                return Ok(Tok::Text(t));
            }
            return Ok(tok);
        }
    }

    fn next(&mut self) -> Result<Tok, WireError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.raw(),
        }
    }

    /// Next token that is not whitespace-only text.
    fn next_tag(&mut self) -> Result<Tok, WireError> {
        loop {
            match self.next()? {
                Tok::Text(t) if t.trim().is_empty() => continue,
                t => return Ok(t),
            }
        }
    }

    fn expect_start(&mut self, name: &str) -> Result<(), WireError> {
        match self.next_tag()? {
            Tok::Start(n) if n == name => Ok(()),
            t => werr(format!("expected <{name}>, found {t:?}")),
        }
    }

    fn expect_end(&mut self, name: &str) -> Result<(), WireError> {
        match self.next_tag()? {
            Tok::End(n) if n == name => Ok(()),
            t => werr(format!("expected </{name}>, found {t:?}")),
        }
    }

    /// Text content up to `</name>` (empty if none).
    fn text_until(&mut self, name: &str) -> Result<String, WireError> {
        match self.next()? {
            Tok::Text(t) => {
                self.expect_end(name)?;
                Ok(t)
            }
            Tok::End(n) if n == name => Ok(String::new()),
            t => werr(format!("expected text in <{name}>, found {t:?}")),
        }
    }

    /// Parse after `<value>` has been consumed, through `</value>`.
    fn value_body(&mut self, depth: usize) -> Result<Value, WireError> {
        if depth > MAX_DEPTH {
            return werr("XML-RPC value nested too deeply");
        }
        let first = self.next()?;
        let (lead, tok) = match first {
            Tok::Text(t) => (Some(t), self.next()?),
            t => (None, t),
        };
        let v = match tok {
            Tok::End(n) if n == "value" => return Ok(Value::String(lead.unwrap_or_default())),
            _ if lead.as_deref().is_some_and(|t| !t.trim().is_empty()) => {
                return werr("mixed text and elements in <value>")
            }
            Tok::Empty(n) => match n.as_str() {
                "nil" => Value::Nil,
                "string" | "base64" => Value::String(String::new()),
                "array" | "data" => Value::Array(vec![]),
                "struct" => Value::Struct(vec![]),
                _ => return werr(format!("unexpected <{n}/> in value")),
            },
            Tok::Start(n) => self.typed(&n, depth)?,
            t => return werr(format!("unexpected {t:?} in value")),
        };
        self.expect_end("value")?;
        Ok(v)
    }

    fn typed(&mut self, tag: &str, depth: usize) -> Result<Value, WireError> {
        Ok(match tag {
            "string" => Value::String(self.text_until(tag)?),
            "base64" => Value::String(self.text_until(tag)?),
            "int" | "i4" | "i8" => {
                let t = self.text_until(tag)?;
                Value::Int(t.trim().parse().map_err(|_| WireError(format!("bad <{tag}> {t:?}")))?)
            }
            "boolean" => Value::Bool(self.text_until(tag)?.trim() == "1"),
            "double" => {
                let t = self.text_until(tag)?;
                Value::Float(model::typed::parse_float(&t).ok_or_else(|| WireError(format!("bad <double> {t:?}")))?)
            }
            "dateTime.iso8601" => {
                let t = self.text_until(tag)?;
                Value::DateTime(DateTime::parse(&t).ok_or_else(|| WireError(format!("bad dateTime {t:?}")))?)
            }
            "nil" => {
                self.expect_end("nil")?;
                Value::Nil
            }
            "array" => {
                let mut items = Vec::new();
                match self.next_tag()? {
                    Tok::Empty(n) if n == "data" => {}
                    Tok::Start(n) if n == "data" => loop {
                        match self.next_tag()? {
                            Tok::Start(n) if n == "value" => items.push(self.value_body(depth + 1)?),
                            Tok::Empty(n) if n == "value" => items.push(Value::String(String::new())),
                            Tok::End(n) if n == "data" => break,
                            t => return werr(format!("unexpected {t:?} in <data>")),
                        }
                    },
                    t => return werr(format!("expected <data>, found {t:?}")),
                }
                self.expect_end("array")?;
                Value::Array(items)
            }
            "struct" => {
                let mut members = Vec::new();
                loop {
                    match self.next_tag()? {
                        Tok::Start(n) if n == "member" => {
                            self.expect_start("name")?;
                            let name = self.text_until("name")?;
                            let v = match self.next_tag()? {
                                Tok::Start(n) if n == "value" => self.value_body(depth + 1)?,
                                Tok::Empty(n) if n == "value" => Value::String(String::new()),
                                t => return werr(format!("expected <value> in member, found {t:?}")),
                            };
                            self.expect_end("member")?;
                            members.push((name, v));
                        }
                        Tok::End(n) if n == "struct" => break,
                        t => return werr(format!("unexpected {t:?} in <struct>")),
                    }
                }
                Value::Struct(members)
            }
            _ => return werr(format!("unknown value type <{tag}>")),
        })
    }

    /// `<value>` or `<value/>` expected next.
    fn value(&mut self) -> Result<Value, WireError> {
        match self.next_tag()? {
            Tok::Start(n) if n == "value" => self.value_body(0),
            Tok::Empty(n) if n == "value" => Ok(Value::String(String::new())),
            t => werr(format!("expected <value>, found {t:?}")),
        }
    }

    fn eof(&mut self) -> Result<(), WireError> {
        match self.next_tag()? {
            Tok::Eof => Ok(()),
            t => werr(format!("trailing content {t:?}")),
        }
    }
}

fn utf8(b: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(b).map_err(|_| WireError("request is not valid UTF-8".into()))
}

/// Parse a `methodCall`. `<params>` is required, as in xapi.
pub fn parse_call(body: &[u8]) -> Result<(String, Vec<Value>), WireError> {
    let mut p = Parser::new(utf8(body)?);
    p.expect_start("methodCall")?;
    p.expect_start("methodName")?;
    let name = p.text_until("methodName")?.trim().to_string();
    let mut params = Vec::new();
    match p.next_tag()? {
        Tok::Empty(n) if n == "params" => {}
        Tok::Start(n) if n == "params" => loop {
            match p.next_tag()? {
                Tok::Start(n) if n == "param" => {
                    params.push(p.value()?);
                    p.expect_end("param")?;
                }
                Tok::End(n) if n == "params" => break,
                t => return werr(format!("unexpected {t:?} in <params>")),
            }
        },
        t => return werr(format!("expected <params>, found {t:?}")),
    }
    p.expect_end("methodCall")?;
    p.eof()?;
    Ok((name, params))
}

/// Parse one standalone `<value>` fragment (task results, ova.xml).
pub fn parse_value(s: &str) -> Result<Value, WireError> {
    let mut p = Parser::new(s);
    let v = p.value()?;
    p.eof()?;
    Ok(v)
}

/// Parse a `methodResponse` as a client: the xapi envelope, a bare value
/// (`system.listMethods`), or a standard `<fault>`.
pub fn parse_response(body: &[u8]) -> Result<Outcome, WireError> {
    let mut p = Parser::new(utf8(body)?);
    p.expect_start("methodResponse")?;
    let v = match p.next_tag()? {
        Tok::Start(n) if n == "params" => {
            p.expect_start("param")?;
            let v = p.value()?;
            p.expect_end("param")?;
            p.expect_end("params")?;
            v
        }
        Tok::Start(n) if n == "fault" => {
            let f = p.value()?;
            p.expect_end("fault")?;
            let code = f.member("faultCode").map(|c| format!("{c:?}")).unwrap_or_default();
            let msg = f.map_str("faultString").unwrap_or("").to_string();
            return Ok(Outcome::Failure(vec!["XMLRPC_FAULT".into(), code, msg]));
        }
        t => return werr(format!("expected <params>, found {t:?}")),
    };
    p.expect_end("methodResponse")?;
    p.eof()?;
    Ok(envelope(v))
}

/// Interpret xapi's `{Status, Value|ErrorDescription}` struct; anything else is
/// taken as a bare success value.
pub fn envelope(v: Value) -> Outcome {
    match v.map_str("Status") {
        Some("Success") => Outcome::Success(v.member("Value").cloned().unwrap_or(Value::String(String::new()))),
        Some("Failure") => {
            let desc = match v.member("ErrorDescription") {
                Some(Value::Array(a)) => a.iter().map(value_as_text).collect(),
                _ => vec!["INTERNAL_ERROR".into(), "malformed ErrorDescription".into()],
            };
            Outcome::Failure(desc)
        }
        _ => Outcome::Success(v),
    }
}

/// Render a scalar as the text it travels as.
pub fn value_as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::I32(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => g16(*f),
        Value::DateTime(d) => d.to_string(),
        Value::Nil => String::new(),
        other => value_to_string(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(s: &str) -> Result<(String, Vec<Value>), WireError> {
        parse_call(s.as_bytes())
    }

    #[test]
    fn python_style_call() {
        let body = "<?xml version='1.0'?>\n<methodCall>\n<methodName>session.login_with_password</methodName>\n<params>\n<param>\n<value><string>root</string></value>\n</param>\n<param>\n<value><string>pw &amp; &lt;x&gt;</string></value>\n</param>\n<param><value><int>42</int></value></param><param><value><boolean>1</boolean></value></param><param><value><double>60.1</double></value></param><param><value><nil/></value></param></params>\n</methodCall>\n";
        let (m, p) = call(body).unwrap();
        assert_eq!(m, "session.login_with_password");
        assert_eq!(
            p,
            vec![
                Value::from("root"),
                Value::from("pw & <x>"),
                Value::Int(42),
                Value::Bool(true),
                Value::Float(60.1),
                Value::Nil
            ]
        );
    }

    #[test]
    fn bare_values_structs_arrays() {
        let (_, p) = call("<methodCall><methodName>x</methodName><params><param><value>bare</value></param><param><value/></param><param><value><struct><member><name>a</name><value><array><data><value>1</value><value><i8>2</i8></value></data></array></value></member><member><name>e</name><value/></member></struct></value></param><param><value><array><data/></array></value></param></params></methodCall>").unwrap();
        assert_eq!(p[0], Value::from("bare"));
        assert_eq!(p[1], Value::from(""));
        assert_eq!(
            p[2],
            Value::Struct(vec![
                ("a".into(), Value::Array(vec![Value::from("1"), Value::Int(2)])),
                ("e".into(), Value::from(""))
            ])
        );
        assert_eq!(p[3], Value::Array(vec![]));
    }

    #[test]
    fn boolean_true_only_for_1() {
        let (_, p) = call("<methodCall><methodName>x</methodName><params><param><value><boolean>true</boolean></value></param></params></methodCall>").unwrap();
        assert_eq!(p[0], Value::Bool(false));
    }

    #[test]
    fn params_required_and_errors_not_panics() {
        assert!(call("<methodCall><methodName>x</methodName></methodCall>").is_err());
        assert!(call("<methodCall><methodName>x</methodName><params>").is_err());
        assert!(call("garbage").is_err());
        assert!(call("").is_err());
        assert!(call("<methodCall><methodName>x</methodName><params><param><value><int>zz</int></value></param></params></methodCall>").is_err());
        assert!(parse_call(&[0xff, 0xfe]).is_err());
        let deep = format!(
            "<methodCall><methodName>x</methodName><params><param>{}{}</param></params></methodCall>",
            "<value><array><data>".repeat(200),
            "</data></array></value>".repeat(200)
        );
        assert!(call(&deep).is_err());
    }

    #[test]
    fn encode_like_xapi() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            &Outcome::Success(Value::Struct(vec![
                ("s".into(), Value::from("a<b>&\"c\u{1}")),
                ("i".into(), Value::Int(-5)),
                ("b".into(), Value::Bool(true)),
                ("f".into(), Value::Float(1.0)),
                ("d".into(), Value::DateTime(DateTime::EPOCH)),
                ("l".into(), Value::Array(vec![])),
            ])),
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct><member><name>s</name><value>a&lt;b&gt;&amp;&quot;c</value></member><member><name>i</name><value>-5</value></member><member><name>b</name><value><boolean>1</boolean></value></member><member><name>f</name><value><double>1</double></value></member><member><name>d</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member><member><name>l</name><value><array><data></data></array></value></member></struct></value></member></struct></value></param></params></methodResponse>"
        );
        let mut out = Vec::new();
        write_response(&mut out, &Outcome::Failure(vec!["SESSION_INVALID".into(), "OpaqueRef:x".into()]));
        assert_eq!(
            parse_response(&out).unwrap(),
            Outcome::Failure(vec!["SESSION_INVALID".into(), "OpaqueRef:x".into()])
        );
    }

    #[test]
    fn fragment_roundtrip() {
        let v = Value::Array(vec![Value::from("OpaqueRef:1")]);
        let s = value_to_string(&v);
        assert_eq!(s, "<value><array><data><value>OpaqueRef:1</value></data></array></value>");
        assert_eq!(parse_value(&s).unwrap(), v);
        assert_eq!(parse_value("<value></value>").unwrap(), Value::from(""));
    }
}

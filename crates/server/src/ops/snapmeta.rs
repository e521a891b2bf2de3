//! VM.snapshot_metadata: the source VM's record at snapshot time, in the form
//! xapi keeps it — an S-expression of `(column value)` pairs, one per database
//! column (descending column order, as xapi's row fold leaves them), each
//! value in its database text form. VM.revert copies the fields back from it.

use model::schema::{ClassDef, Type};
use model::{DateTime, Row, Value};

/// xapi's S-expression string escape: backslash, double and single quotes.
fn atom(out: &mut String, s: &str) {
    out.push('\'');
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// A list of atoms, or of `(a b)` pairs, as one S-expression.
fn list(items: &[Vec<String>]) -> String {
    let mut out = String::from("(");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if item.len() == 1 {
            atom(&mut out, &item[0]);
        } else {
            out.push('(');
            for (j, a) in item.iter().enumerate() {
                if j > 0 {
                    out.push(' ');
                }
                atom(&mut out, a);
            }
            out.push(')');
        }
    }
    out.push(')');
    out
}

/// C's `%.<precision>g`.
pub fn format_g(f: f64, precision: usize) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, f);
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |m: &str| -> String {
        if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            m.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        format!("{}e{}{:02}", trim(mant), if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, f))
    }
}

/// A value in the text form xapi's database stores it in.
pub fn db_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::I32(i) => i.to_string(),
        Value::Float(f) => format_g(*f, 18),
        Value::Bool(b) => b.to_string(),
        Value::DateTime(d) => d.to_string(),
        Value::Nil => String::new(),
        Value::Array(a) => list(&a.iter().map(|x| vec![db_string(x)]).collect::<Vec<_>>()),
        Value::Struct(m) => list(&m.iter().map(|(k, x)| vec![k.clone(), db_string(x)]).collect::<Vec<_>>()),
        Value::Row(r) => db_string(&r.to_struct()),
        Value::Cached(c) => db_string(&c.value),
    }
}

/// The metadata text for a VM row (`r` is its ref).
pub fn encode(r: &str, row: &Row) -> String {
    let mut cols: Vec<(&str, String)> = vec![("_ref", r.to_string())];
    for (i, f) in row.class.fields.iter().enumerate() {
        cols.push((f.column, db_string(row.get(i))));
    }
    cols.sort_by(|a, b| b.0.cmp(a.0));
    list(&cols.into_iter().map(|(k, v)| vec![k.to_string(), v]).collect::<Vec<_>>())
}

/// A parsed S-expression: an atom or a list.
#[derive(Debug, PartialEq)]
enum Sx {
    Atom(String),
    List(Vec<Sx>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn parse(&mut self) -> Option<Sx> {
        self.skip_ws();
        match *self.s.get(self.i)? {
            b'(' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if *self.s.get(self.i)? == b')' {
                        self.i += 1;
                        return Some(Sx::List(items));
                    }
                    items.push(self.parse()?);
                }
            }
            q @ (b'\'' | b'"') => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    let c = *self.s.get(self.i)?;
                    self.i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' {
                        out.push(*self.s.get(self.i)?);
                        self.i += 1;
                    } else {
                        out.push(c);
                    }
                }
                String::from_utf8(out).ok().map(Sx::Atom)
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')') {
                    self.i += 1;
                }
                String::from_utf8(self.s[start..self.i].to_vec()).ok().map(Sx::Atom)
            }
        }
    }
}

fn parse_sx(s: &str) -> Option<Sx> {
    let mut p = Parser { s: s.as_bytes(), i: 0 };
    let v = p.parse()?;
    p.skip_ws();
    (p.i == p.s.len()).then_some(v)
}

/// `(column, text)` pairs of a metadata string; None if it is malformed.
pub fn decode(s: &str) -> Option<Vec<(String, String)>> {
    let Sx::List(items) = parse_sx(s)? else { return None };
    items
        .into_iter()
        .map(|it| match it {
            Sx::List(mut kv) if kv.len() == 2 => match (kv.remove(0), kv.remove(0)) {
                (Sx::Atom(k), Sx::Atom(v)) => Some((k, v)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A field's database text back as a typed value.
pub fn value_of(ty: &Type, text: &str) -> Option<Value> {
    Some(match ty {
        Type::String | Type::Enum(_) | Type::Ref(_) => Value::String(text.to_string()),
        Type::Int => Value::Int(text.trim().parse().ok()?),
        Type::Float => Value::Float(text.trim().parse().ok()?),
        Type::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return None,
        },
        Type::DateTime => Value::DateTime(DateTime::parse(text)?),
        Type::Set(t) => {
            let Sx::List(items) = parse_sx(text)? else { return None };
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let Sx::Atom(a) = it else { return None };
                out.push(value_of(t, &a)?);
            }
            Value::Array(out)
        }
        Type::Map(_, vt) => {
            let Sx::List(items) = parse_sx(text)? else { return None };
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let Sx::List(mut kv) = it else { return None };
                if kv.len() != 2 {
                    return None;
                }
                let (Sx::Atom(k), Sx::Atom(v)) = (kv.remove(0), kv.remove(0)) else { return None };
                out.push((k, value_of(vt, &v)?));
            }
            Value::Struct(out)
        }
        Type::Record(_) | Type::Option(_) => return None,
    })
}

/// The `(field index, value)` pairs a metadata string holds for class `c`,
/// skipping columns the class does not have (removed fields) and values
/// that do not parse.
pub fn fields(c: &ClassDef, s: &str) -> Option<Vec<(usize, &'static str, Value)>> {
    let mut out = Vec::new();
    for (col, text) in decode(s)? {
        let Some(i) = c.field_by_column(&col) else { continue };
        let f = &c.fields[i];
        if let Some(v) = value_of(f.ty, &text) {
            out.push((i, f.name, v));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(format_g(1.0, 18), "1");
        assert_eq!(format_g(0.5, 18), "0.5");
        assert_eq!(format_g(0.1, 18), "0.100000000000000006");
        assert_eq!(format_g(1e20, 18), "1e+20");
        assert_eq!(format_g(1.0 / 3.0, 12), "0.333333333333");
    }

    #[test]
    fn strings_round_trip() {
        let v = Value::Struct(vec![
            ("a'b".into(), Value::String("c\"d\\e".into())),
            ("k".into(), Value::String(String::new())),
        ]);
        let text = db_string(&v);
        assert_eq!(text, r#"(('a\'b' 'c\"d\\e') ('k' ''))"#);
        let ty = Type::Map(&Type::String, &Type::String);
        assert_eq!(value_of(&ty, &text), Some(v));
        let set = Value::Array(vec![Value::String("x y".into()), Value::String("(z)".into())]);
        assert_eq!(value_of(&Type::Set(&Type::String), &db_string(&set)), Some(set));
        assert_eq!(value_of(&Type::Set(&Type::String), "()"), Some(Value::Array(vec![])));
    }

    #[test]
    fn decode_pairs() {
        let text = list(&[vec!["uuid".into(), "u".into()], vec!["other_config".into(), "(('k' 'v'))".into()]]);
        assert_eq!(text, r#"(('uuid' 'u') ('other_config' '((\'k\' \'v\'))'))"#);
        assert_eq!(
            decode(&text),
            Some(vec![("uuid".into(), "u".into()), ("other_config".into(), "(('k' 'v'))".into())])
        );
        assert_eq!(decode("(('a'))"), None);
        assert_eq!(decode("(('a' 'b')"), None);
        assert_eq!(decode(""), None);
    }
}

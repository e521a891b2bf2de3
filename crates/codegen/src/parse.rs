//! Parser for our datamodel language (see `datamodel/README.md`).
//!
//! Line-based: a keyword starts each line, indentation is cosmetic, `#` starts a
//! comment line, and ` -- ` separates a line's data from its description.

use crate::ast::*;
use std::fmt;

#[derive(Debug)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.msg)
    }
}

type R<T> = Result<T, String>;

enum Cursor {
    None,
    Class,
    Enum,
    Field,
    Message,
}

/// Parse one class file.
pub fn parse_class(file: &str, src: &str) -> Result<Class, ParseError> {
    let mut class: Option<Class> = None;
    let mut cur = Cursor::None;
    for (n, raw) in src.lines().enumerate() {
        let err = |msg: String| ParseError { file: file.to_string(), line: n + 1, msg };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (data, doc) = split_doc(line);
        let toks = tokenize(data).map_err(err)?;
        let Some(kw) = toks.first().map(String::as_str) else {
            continue;
        };
        let rest = &toks[1..];
        if kw == "class" {
            if class.is_some() {
                return Err(err("one class per file".into()));
            }
            let name = rest.first().ok_or_else(|| err("class needs a name".into()))?;
            class = Some(Class {
                name: name.clone(),
                doc: doc.to_string(),
                opts: ClassOpts::default(),
                life: Life::Published,
                fields: vec![],
                messages: vec![],
                enums: vec![],
            });
            cur = Cursor::Class;
            continue;
        }
        let c = class.as_mut().ok_or_else(|| err("expected `class` first".into()))?;
        match kw {
            "options" => {
                for o in rest {
                    match o.as_str() {
                        "db" => c.opts.db = true,
                        "getall" => c.opts.get_all = true,
                        "ctor" => c.opts.ctor = true,
                        "events" => c.opts.events = true,
                        "transient" => c.opts.transient = true,
                        "static" => c.opts.is_static = true,
                        "deprecated" | "removed" | "prototyped" => c.life = life(o).map_err(err)?,
                        _ if o.starts_with("read=") => c.opts.read = Some(parse_roles(&o[5..]).map_err(err)?),
                        _ if o.starts_with("write=") => c.opts.write = Some(parse_roles(&o[6..]).map_err(err)?),
                        _ => return Err(err(format!("unknown class option {o}"))),
                    }
                }
            }
            "doc" => {
                let text = line.strip_prefix("doc").unwrap_or("").trim();
                let target = match cur {
                    Cursor::Class | Cursor::None => &mut c.doc,
                    Cursor::Enum => &mut c.enums.last_mut().ok_or_else(|| err("no enum".into()))?.doc,
                    Cursor::Field => &mut c.fields.last_mut().ok_or_else(|| err("no field".into()))?.doc,
                    Cursor::Message => &mut c.messages.last_mut().ok_or_else(|| err("no message".into()))?.doc,
                };
                if !target.is_empty() {
                    target.push(' ');
                }
                target.push_str(text);
            }
            "enum" => {
                let name = rest.first().ok_or_else(|| err("enum needs a name".into()))?;
                c.enums.push(EnumDef { name: name.clone(), doc: doc.to_string(), values: vec![] });
                cur = Cursor::Enum;
            }
            "value" => {
                let Cursor::Enum = cur else {
                    return Err(err("`value` outside an enum".into()));
                };
                let name = rest.first().ok_or_else(|| err("value needs a name".into()))?;
                let e = c.enums.last_mut().ok_or_else(|| err("no enum".into()))?;
                e.values.push((name.clone(), doc.to_string()));
            }
            "field" => {
                c.fields.push(parse_field(rest, doc).map_err(err)?);
                cur = Cursor::Field;
            }
            "message" => {
                c.messages.push(parse_message(rest, doc).map_err(err)?);
                cur = Cursor::Message;
            }
            "param" | "result" | "errors" => {
                let Cursor::Message = cur else {
                    return Err(err(format!("`{kw}` outside a message")));
                };
                let m = c.messages.last_mut().ok_or_else(|| err("no message".into()))?;
                match kw {
                    "param" => m.params.push(parse_param(rest, doc).map_err(err)?),
                    "result" => m.result_doc = doc.to_string(),
                    _ => m.errors.extend(rest.iter().cloned()),
                }
            }
            _ => return Err(err(format!("unknown keyword {kw}"))),
        }
    }
    class.ok_or_else(|| ParseError { file: file.into(), line: 0, msg: "no class".into() })
}

/// Parse the error catalogue: `error CODE param… -- description`.
pub fn parse_errors(file: &str, src: &str) -> Result<Vec<ErrorDef>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in src.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (data, doc) = split_doc(line);
        let toks: Vec<&str> = data.split_whitespace().collect();
        match toks.as_slice() {
            ["error", code, params @ ..] => out.push(ErrorDef {
                code: code.to_string(),
                params: params.iter().map(|s| s.to_string()).collect(),
                doc: doc.to_string(),
            }),
            _ => {
                return Err(ParseError {
                    file: file.into(), line: n + 1, msg: "expected `error CODE params…`".into()
                })
            }
        }
    }
    Ok(out)
}

fn split_doc(line: &str) -> (&str, &str) {
    match line.find(" -- ") {
        Some(i) => (&line[..i], line[i + 4..].trim()),
        None => match line.strip_suffix(" --") {
            Some(d) => (d, ""),
            None => (line, ""),
        },
    }
}

/// Split on whitespace, keeping quoted strings and bracketed groups whole.
fn tokenize(s: &str) -> R<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut in_str = false;
    let mut esc = false;
    for ch in s.chars() {
        if in_str {
            cur.push(ch);
            if esc {
                esc = false;
            } else if ch == '\\' {
                esc = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        match ch {
            '"' => {
                in_str = true;
                cur.push(ch)
            }
            '<' | '[' | '{' | '(' => {
                depth += 1;
                cur.push(ch)
            }
            // `->` is an arrow, not a closing bracket.
            '>' | ']' | '}' | ')' if depth > 0 => {
                depth -= 1;
                cur.push(ch)
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if in_str || depth != 0 {
        return Err(format!("unbalanced quotes or brackets in `{s}`"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn life(s: &str) -> R<Life> {
    Ok(match s {
        "published" => Life::Published,
        "prototyped" => Life::Prototyped,
        "deprecated" => Life::Deprecated,
        "removed" => Life::Removed,
        _ => return Err(format!("unknown lifecycle {s}")),
    })
}

fn parse_field(toks: &[String], doc: &str) -> R<Field> {
    let [name, ty, qual, rest @ ..] = toks else {
        return Err("field NAME TYPE QUAL [= DEFAULT] [LIFE]".into());
    };
    let path: Vec<String> = name.split('/').map(str::to_string).collect();
    let ty = parse_ty(ty)?;
    let qual = match qual.as_str() {
        "rw" => Qual::Rw,
        "ro-ctor" => Qual::RoCtor,
        "ro-run" => Qual::RoRun,
        q => return Err(format!("unknown qualifier {q}")),
    };
    let mut f = Field {
        path,
        ty,
        qual,
        default: None,
        life: Life::Published,
        doc: doc.to_string(),
        write: None,
        read: None,
        key_roles: Vec::new(),
        inverse: None,
        one_to_many: false,
    };
    let mut rest = rest;
    while let Some(t) = rest.first() {
        if t == "=" {
            f.default = Some(parse_lit(rest.get(1).ok_or("`=` needs a value")?)?);
            rest = &rest[2..];
            continue;
        }
        if let Some(r) = t.strip_prefix("write=") {
            f.write = Some(parse_roles(r)?);
        } else if let Some(r) = t.strip_prefix("read=") {
            f.read = Some(parse_roles(r)?);
        } else if let Some(ks) = t.strip_prefix("keys=") {
            for kr in ks.split(',') {
                let (k, r) = kr.rsplit_once(':').ok_or("keys=KEY:ROLE,...")?;
                if k.is_empty() || !ROLE_ORDER.contains(&r) {
                    return Err(format!("bad key role {kr}"));
                }
                f.key_roles.push((k.to_string(), r.to_string()));
            }
        } else if let Some(inv) = t.strip_prefix("inverse=") {
            let (c, fl) = inv.split_once('.').ok_or("inverse=CLASS.FIELD")?;
            f.inverse = Some((c.to_string(), fl.to_string()));
        } else if t == "o2m" {
            f.one_to_many = true;
        } else {
            f.life = life(t)?;
        }
        rest = &rest[1..];
    }
    Ok(f)
}

fn parse_roles(r: &str) -> R<Roles> {
    let (r, cert) = match r.strip_suffix("+cert") {
        Some(r) => (r, true),
        None => (r, false),
    };
    let min = match r {
        "none" => None,
        _ if ROLE_ORDER.contains(&r) => Some(r.to_string()),
        _ => return Err(format!("unknown role {r}")),
    };
    Ok(Roles { min, cert })
}

fn parse_tail(mut rest: &[String]) -> R<(Option<Lit>, Life)> {
    let mut default = None;
    let mut lf = Life::Published;
    while let Some(t) = rest.first() {
        if t == "=" {
            let v = rest.get(1).ok_or("`=` needs a value")?;
            default = Some(parse_lit(v)?);
            rest = &rest[2..];
        } else {
            lf = life(t)?;
            rest = &rest[1..];
        }
    }
    Ok((default, lf))
}

fn parse_param(toks: &[String], doc: &str) -> R<Param> {
    let [name, ty, rest @ ..] = toks else {
        return Err("param NAME TYPE [= DEFAULT]".into());
    };
    let (default, _) = parse_tail(rest)?;
    Ok(Param { name: name.clone(), ty: parse_ty(ty)?, default, doc: doc.to_string() })
}

fn parse_message(toks: &[String], doc: &str) -> R<Message> {
    let name = toks.first().ok_or("message needs a name")?.clone();
    let mut m = Message {
        name,
        params: vec![],
        result: None,
        result_doc: String::new(),
        errors: vec![],
        roles: Roles { min: None, cert: false },
        is_async: false,
        session: true,
        hidden: false,
        life: Life::Published,
        doc: doc.to_string(),
    };
    let mut i = 1;
    while i < toks.len() {
        let t = toks[i].as_str();
        match t {
            "->" => {
                i += 1;
                let ty = toks.get(i).ok_or("`->` needs a type")?;
                m.result = if ty == "void" { None } else { Some(parse_ty(ty)?) };
            }
            "async" => m.is_async = true,
            "nosession" => m.session = false,
            "hidden" => m.hidden = true,
            "published" | "prototyped" | "deprecated" | "removed" => m.life = life(t)?,
            _ if t.starts_with("role=") => m.roles = parse_roles(&t[5..])?,
            _ => return Err(format!("unknown message flag {t}")),
        }
        i += 1;
    }
    Ok(m)
}

pub fn parse_ty(s: &str) -> R<Ty> {
    let inner = |pre: &str| s.strip_prefix(pre).and_then(|r| r.strip_suffix('>'));
    Ok(match s {
        "string" => Ty::String,
        "int" => Ty::Int,
        "float" => Ty::Float,
        "bool" => Ty::Bool,
        "datetime" => Ty::DateTime,
        _ => {
            if let Some(c) = inner("ref<") {
                Ty::Ref(c.to_string())
            } else if let Some(c) = inner("record<") {
                Ty::Record(c.to_string())
            } else if let Some(t) = inner("set<") {
                Ty::Set(Box::new(parse_ty(t)?))
            } else if let Some(t) = inner("option<") {
                Ty::Option(Box::new(parse_ty(t)?))
            } else if let Some(kv) = inner("map<") {
                let (k, v) = split_top_comma(kv).ok_or_else(|| format!("bad map type {s}"))?;
                Ty::Map(Box::new(parse_ty(k)?), Box::new(parse_ty(v)?))
            } else if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !s.is_empty() {
                Ty::Enum(s.to_string())
            } else {
                return Err(format!("bad type {s}"));
            }
        }
    })
}

fn split_top_comma(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

pub fn parse_lit(s: &str) -> R<Lit> {
    let s = s.trim();
    if let Some(body) = s.strip_prefix('"') {
        let body = body.strip_suffix('"').ok_or_else(|| format!("unterminated string {s}"))?;
        return Ok(Lit::Str(body.replace("\\\"", "\"").replace("\\\\", "\\")));
    }
    if let Some(body) = s.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        return Ok(Lit::Set(split_items(body).into_iter().map(parse_lit).collect::<R<_>>()?));
    }
    if let Some(body) = s.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
        let mut out = Vec::new();
        for item in split_items(body) {
            let (k, v) = split_colon(item).ok_or_else(|| format!("map item needs k: v in {s}"))?;
            out.push((parse_lit(k)?, parse_lit(v)?));
        }
        return Ok(Lit::Map(out));
    }
    Ok(match s {
        "true" => Lit::Bool(true),
        "false" => Lit::Bool(false),
        "NULL" => Lit::Null,
        _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-') => Lit::Num(s.to_string()),
        _ => Lit::Word(s.to_string()),
    })
}

fn split_items(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut start) = (0, false, 0);
    for (i, c) in body.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '[' | '{' if !in_str => depth += 1,
            ']' | '}' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = body[start..].trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// Split `key: value` at the first colon outside quotes; keys are usually quoted.
fn split_colon(item: &str) -> Option<(&str, &str)> {
    let mut in_str = false;
    for (i, c) in item.char_indices() {
        match c {
            '"' => in_str = !in_str,
            ':' if !in_str => return Some((&item[..i], &item[i + 1..])),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(
            parse_ty("map<ref<VDI>,set<string>>").unwrap(),
            Ty::Map(Box::new(Ty::Ref("VDI".into())), Box::new(Ty::Set(Box::new(Ty::String))))
        );
        assert_eq!(parse_ty("vm_power_state").unwrap(), Ty::Enum("vm_power_state".into()));
    }

    #[test]
    fn a_class() {
        let src = r#"
class VM -- A virtual machine
options db getall ctor events
enum vm_power_state -- Power state
  value Halted -- Off
field name/label string rw = "" -- Name
field other_config map<string,string> rw = {"a": "b c"} -- Extra
message start async role=vm-operator+cert -- Start it
  param vm ref<VM> -- The VM
  param force bool = false -- Skip checks
  errors VM_BAD_POWER_STATE VM_IS_TEMPLATE
message clone -> ref<VM> async role=vm-admin -- Clone it
  result -- The clone
"#;
        let c = parse_class("t", src).unwrap();
        assert_eq!(c.fields[0].wire(), "name_label");
        assert_eq!(c.fields[0].column(), "name__label");
        assert_eq!(c.fields[1].default, Some(Lit::Map(vec![(Lit::Str("a".into()), Lit::Str("b c".into()))])));
        assert_eq!(c.messages[0].params[1].default, Some(Lit::Bool(false)));
        assert_eq!(
            c.messages[0].roles.expand(),
            vec!["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "client-cert"]
        );
        assert_eq!(c.messages[1].result, Some(Ty::Ref("VM".into())));
    }
}

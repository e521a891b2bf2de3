//! Generates `model`'s schema tables (`schema.rs`) and typed items (`types.rs`).

use crate::ast::*;
use crate::names::{camel, lit, shout, snake};
use crate::{all_messages, Kind};
use std::collections::BTreeSet;
use std::fmt::Write;

fn enum_static(name: &str) -> String {
    format!("ENUM_{}", shout(name))
}
fn class_static(name: &str) -> String {
    format!("CLASS_{}", shout(name))
}

/// A `&'static Type` expression.
pub fn ty_expr(t: &Ty) -> String {
    match t {
        Ty::String => "&Type::String".into(),
        Ty::Int => "&Type::Int".into(),
        Ty::Float => "&Type::Float".into(),
        Ty::Bool => "&Type::Bool".into(),
        Ty::DateTime => "&Type::DateTime".into(),
        Ty::Enum(e) => format!("&Type::Enum(&{})", enum_static(e)),
        Ty::Ref(c) => format!("&Type::Ref({})", lit(c)),
        Ty::Record(c) => format!("&Type::Record({})", lit(c)),
        Ty::Set(t) => format!("&Type::Set({})", ty_expr(t)),
        Ty::Option(t) => format!("&Type::Option({})", ty_expr(t)),
        Ty::Map(k, v) => format!("&Type::Map({}, {})", ty_expr(k), ty_expr(v)),
    }
}

/// Seconds since the epoch for a compact `YYYYMMDDTHH:MM:SSZ` literal.
fn datetime_secs(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 17 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(12..14)?, num(15..17)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

fn lit_str(l: &Lit) -> String {
    match l {
        Lit::Str(s) | Lit::Num(s) | Lit::Word(s) => s.clone(),
        Lit::Bool(b) => b.to_string(),
        Lit::Null => crate::ast_null(),
        Lit::Set(_) | Lit::Map(_) => String::new(),
    }
}

/// A `&'static Default` expression for a literal of a type.
pub fn default_expr(l: &Lit, ty: &Ty) -> Result<String, String> {
    Ok(match (l, ty) {
        (Lit::Null, _) => "&Default::NullRef".into(),
        (Lit::Word(w), Ty::Ref(_)) if w == "OpaqueRef:NULL" => "&Default::NullRef".into(),
        (Lit::Bool(b), _) => format!("&Default::Bool({b})"),
        (l, Ty::DateTime) => {
            let s = lit_str(l);
            format!("&Default::DateTime({})", datetime_secs(&s).ok_or_else(|| format!("bad datetime default {s}"))?)
        }
        (Lit::Num(n), Ty::Int) => format!("&Default::Int({})", n.parse::<i64>().map_err(|_| format!("bad int {n}"))?),
        (Lit::Num(n), Ty::Float) => {
            let f: f64 = n.trim_end_matches('.').parse().map_err(|_| format!("bad float {n}"))?;
            format!("&Default::Float({f:?})")
        }
        (Lit::Set(items), Ty::Set(inner)) if **inner == Ty::Int => {
            let v: Vec<String> = items.iter().map(lit_str).collect();
            format!("&Default::IntSet(&[{}])", v.join(", "))
        }
        (Lit::Set(items), Ty::Set(_)) => {
            let v: Vec<String> = items.iter().map(|i| lit(&lit_str(i))).collect();
            format!("&Default::Set(&[{}])", v.join(", "))
        }
        (Lit::Map(kv), Ty::Map(_, _)) => {
            let v: Vec<String> =
                kv.iter().map(|(k, v)| format!("({}, {})", lit(&lit_str(k)), lit(&lit_str(v)))).collect();
            format!("&Default::Map(&[{}])", v.join(", "))
        }
        (l, Ty::String | Ty::Enum(_) | Ty::Ref(_)) => {
            format!("&Default::Str({})", lit(&lit_str(l)))
        }
        (l, t) => return Err(format!("default {l:?} does not fit {t:?}")),
    })
}

fn life_expr(l: Life) -> &'static str {
    match l {
        Life::Published => "Life::Published",
        Life::Prototyped => "Life::Prototyped",
        Life::Deprecated => "Life::Deprecated",
        Life::Removed => "Life::Removed",
    }
}

fn role_expr(r: Option<&str>) -> &'static str {
    match r {
        None => "Role::Nobody",
        Some("pool-admin") => "Role::PoolAdmin",
        Some("pool-operator") => "Role::PoolOperator",
        Some("vm-power-admin") => "Role::VmPowerAdmin",
        Some("vm-admin") => "Role::VmAdmin",
        Some("vm-operator") => "Role::VmOperator",
        Some(_) => "Role::ReadOnly",
    }
}

fn roles_expr(r: &Roles) -> String {
    format!("Roles {{ min: {}, cert: {} }}", role_expr(r.min.as_deref()), r.cert)
}

fn kind_expr(k: Kind) -> String {
    match k {
        Kind::Get(i) => format!("MsgKind::Get({i})"),
        Kind::Set(i) => format!("MsgKind::Set({i})"),
        Kind::AddTo(i) => format!("MsgKind::AddTo({i})"),
        Kind::RemoveFrom(i) => format!("MsgKind::RemoveFrom({i})"),
        Kind::Add(i) => format!("MsgKind::Add({i})"),
        Kind::Remove(i) => format!("MsgKind::Remove({i})"),
        k => format!("MsgKind::{k:?}"),
    }
}

/// `schema.rs`: enum, class and error tables.
pub fn gen_schema(api: &Api) -> Result<String, String> {
    let mut o = String::new();
    let w = &mut o;
    writeln!(w, "// Generated from datamodel/ by the codegen crate. Do not edit.").ok();
    writeln!(w, "pub const API_VERSION_MAJOR: i64 = {};", api.api_version.0).ok();
    writeln!(w, "pub const API_VERSION_MINOR: i64 = {};", api.api_version.1).ok();
    for e in api.enums() {
        let vals: Vec<String> = e.values.iter().map(|(v, d)| format!("({}, {})", lit(v), lit(d))).collect();
        writeln!(
            w,
            "pub static {}: EnumDef = EnumDef {{ name: {}, doc: {}, values: &[{}] }};",
            enum_static(&e.name),
            lit(&e.name),
            lit(&e.doc),
            vals.join(", ")
        )
        .ok();
    }
    writeln!(
        w,
        "pub static ENUMS: &[&EnumDef] = &[{}];",
        api.enums().map(|e| format!("&{}", enum_static(&e.name))).collect::<Vec<_>>().join(", ")
    )
    .ok();
    writeln!(w, "/// Every class, to match on a class by identity rather than by its name.").ok();
    writeln!(w, "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]").ok();
    writeln!(w, "pub enum ClassId {{ {} }}", api.classes.iter().map(|c| camel(&c.name)).collect::<Vec<_>>().join(", "))
        .ok();
    for (ci, c) in api.classes.iter().enumerate() {
        writeln!(w, "static FIELDS_{}: [FieldDef; {}] = [", shout(&c.name), c.fields.len()).ok();
        for f in &c.fields {
            let default = match &f.default {
                Some(l) => {
                    format!("Some({})", default_expr(l, &f.ty).map_err(|e| format!("{}.{}: {e}", c.name, f.wire()))?)
                }
                None => "None".into(),
            };
            writeln!(
                w,
                "  FieldDef {{ name: {}, column: {}, ty: {}, qual: Qual::{:?}, default: {default}, life: {}, doc: {}, write_role: {}, key_roles: &[{}] }},",
                lit(&f.wire()),
                lit(&f.column()),
                ty_expr(&f.ty),
                f.qual,
                life_expr(f.life),
                lit(&f.doc),
                roles_expr(&f.write.clone().unwrap_or_else(|| c.write_roles())),
                f.key_roles
                    .iter()
                    .map(|(k, r)| format!("({}, {})", lit(k), role_expr(Some(r))))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .ok();
        }
        writeln!(w, "];").ok();
        let msgs = all_messages(c);
        writeln!(w, "static MSGS_{}: [MsgDef; {}] = [", shout(&c.name), msgs.len()).ok();
        for d in &msgs {
            let m = &d.msg;
            let mut params = Vec::new();
            for p in &m.params {
                let default = match &p.default {
                    Some(l) => format!(
                        "Some({})",
                        default_expr(l, &p.ty).map_err(|e| format!("{}.{}({}): {e}", c.name, m.name, p.name))?
                    ),
                    None => "None".into(),
                };
                params.push(format!(
                    "ParamDef {{ name: {}, ty: {}, default: {default}, doc: {} }}",
                    lit(&p.name),
                    ty_expr(&p.ty),
                    lit(&p.doc)
                ));
            }
            let result = match &m.result {
                Some(t) => format!("Some({})", ty_expr(t)),
                None => "None".into(),
            };
            let errors: Vec<String> = m.errors.iter().map(|e| lit(e)).collect();
            writeln!(
                w,
                "  MsgDef {{ name: {}, kind: {}, params: &[{}], result: {result}, result_doc: {}, errors: &[{}], roles: {}, is_async: {}, session: {}, hidden: {}, life: {}, doc: {} }},",
                lit(&m.name),
                kind_expr(d.kind),
                params.join(", "),
                lit(&m.result_doc),
                errors.join(", "),
                roles_expr(&m.roles),
                m.is_async,
                m.session,
                m.hidden,
                life_expr(m.life),
                lit(&m.doc)
            )
            .ok();
        }
        writeln!(w, "];").ok();
        writeln!(
            w,
            "pub static {}: ClassDef = ClassDef {{ name: {}, id: ClassId::{}, doc: {}, index: {ci}, fields: &FIELDS_{}, messages: &MSGS_{}, db: {}, get_all: {}, ctor: {}, events: {}, transient: {}, is_static: {}, life: {} }};",
            class_static(&c.name),
            lit(&c.name),
            camel(&c.name),
            lit(&c.doc),
            shout(&c.name),
            shout(&c.name),
            c.opts.db,
            c.opts.get_all,
            c.opts.ctor,
            c.opts.events,
            c.opts.transient || c.opts.is_static,
            c.opts.is_static,
            life_expr(c.life)
        )
        .ok();
    }
    writeln!(
        w,
        "pub static CLASSES: &[&ClassDef] = &[{}];",
        api.classes.iter().map(|c| format!("&{}", class_static(&c.name))).collect::<Vec<_>>().join(", ")
    )
    .ok();
    writeln!(w, "pub static ERRORS: &[ErrorDef] = &[").ok();
    for e in &api.errors {
        let ps: Vec<String> = e.params.iter().map(|p| lit(p)).collect();
        writeln!(w, "  ErrorDef {{ code: {}, params: &[{}], doc: {} }},", lit(&e.code), ps.join(", "), lit(&e.doc))
            .ok();
    }
    writeln!(w, "];").ok();
    // Relations: (class, set field) is derived from (other class, ref field).
    writeln!(w, "/// (class, set field, other class, ref field): the set mirrors the ref.").ok();
    writeln!(w, "pub static RELATIONS: &[(&str, &str, &str, &str)] = &[").ok();
    for c in &api.classes {
        for f in &c.fields {
            if let Some((oc, of)) = &f.inverse {
                writeln!(w, "  ({}, {}, {}, {}),", lit(&c.name), lit(&f.wire()), lit(oc), lit(of)).ok();
            }
        }
    }
    writeln!(w, "];").ok();
    Ok(o)
}

/// Rust type for a datamodel type.
pub fn rust_ty(api: &Api, t: &Ty) -> String {
    match t {
        Ty::String => "String".into(),
        Ty::Int => "i64".into(),
        Ty::Float => "f64".into(),
        Ty::Bool => "bool".into(),
        Ty::DateTime => "DateTime".into(),
        Ty::Enum(e) => camel(e),
        Ty::Ref(c) => format!("Ref<{}>", camel(c)),
        // Event records carry xapi's own shapes (string ids), so stay untyped.
        Ty::Record(c) if c == "event" => "Value".into(),
        Ty::Record(c) if api.class(c).is_some() => format!("{}Record", camel(c)),
        Ty::Record(_) => "Value".into(),
        Ty::Set(t) => format!("Vec<{}>", rust_ty(api, t)),
        Ty::Option(t) => format!("Option<{}>", rust_ty(api, t)),
        Ty::Map(k, v) => {
            let k = match &**k {
                Ty::Float | Ty::Bool | Ty::DateTime => "String".into(),
                k => rust_ty(api, k),
            };
            format!("BTreeMap<{k}, {}>", rust_ty(api, v))
        }
    }
}

/// Class names referenced anywhere (markers are generated for all of them).
fn referenced_classes(api: &Api) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = api.classes.iter().map(|c| c.name.clone()).collect();
    let mut add = |t: &Ty| {
        crate::walk_ty(t, &mut |t| {
            if let Ty::Ref(c) | Ty::Record(c) = t {
                out.insert(c.clone());
            }
        })
    };
    for c in &api.classes {
        for f in &c.fields {
            add(&f.ty);
        }
        for m in &c.messages {
            m.params.iter().for_each(|p| add(&p.ty));
            if let Some(r) = &m.result {
                add(r);
            }
        }
    }
    out
}

/// Rust variant names for an enum, made unique.
pub fn variants(e: &EnumDef) -> Vec<String> {
    let mut seen = BTreeSet::new();
    e.values
        .iter()
        .map(|(v, _)| {
            let mut n = camel(v);
            if n == "Unknown" || n == "Self" {
                n.push('_');
            }
            while !seen.insert(n.clone()) {
                n.push('_');
            }
            n
        })
        .collect()
}

fn doc_comment(w: &mut String, indent: &str, doc: &str) {
    for line in doc.lines() {
        writeln!(w, "{indent}/// {line}").ok();
    }
    if doc.is_empty() {
        writeln!(w, "{indent}///").ok();
    }
}

/// The operations enum of each class whose `current_operations` field is a
/// map onto an enum: `(enum, class)` pairs, sorted by enum. An enum that
/// several classes' `current_operations` share is left out (its operations
/// would not name one class); so is a class whose field is typed otherwise.
pub fn operation_enums(api: &Api) -> Vec<(String, String)> {
    let mut by_enum: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for c in &api.classes {
        for f in c.fields.iter().filter(|f| f.wire() == "current_operations") {
            if let Ty::Map(_, v) = &f.ty {
                if let Ty::Enum(e) = &**v {
                    by_enum.entry(e.clone()).or_default().push(c.name.clone());
                }
            }
        }
    }
    by_enum.into_iter().filter(|(_, cs)| cs.len() == 1).map(|(e, mut cs)| (e, cs.remove(0))).collect()
}

/// `types.rs`: enums, class markers, records and field handles.
pub fn gen_types(api: &Api) -> String {
    let mut o = String::new();
    let w = &mut o;
    writeln!(w, "// Generated from datamodel/ by the codegen crate. Do not edit.").ok();
    for c in referenced_classes(api) {
        let doc = api.class(&c).map(|c| c.doc.clone()).unwrap_or_else(|| format!("The `{c}` class (not served here)."));
        doc_comment(w, "", &doc);
        writeln!(w, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub struct {};", camel(&c))
            .ok();
        writeln!(w, "impl Class for {} {{ const NAME: &'static str = {}; }}", camel(&c), lit(&c)).ok();
    }
    for e in api.enums() {
        let t = camel(&e.name);
        let vs = variants(e);
        doc_comment(w, "", &e.doc);
        writeln!(w, "#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum {t} {{").ok();
        for ((v, d), rv) in e.values.iter().zip(&vs) {
            doc_comment(w, "    ", if d.is_empty() { v } else { d });
            writeln!(w, "    {rv},").ok();
        }
        writeln!(w, "    /// A value this version does not know (sent by a newer server).\n    Unknown(String),\n}}")
            .ok();
        writeln!(w, "impl {t} {{").ok();
        writeln!(
            w,
            "    pub const VALUES: &'static [{t}] = &[{}];",
            vs.iter().map(|v| format!("{t}::{v}")).collect::<Vec<_>>().join(", ")
        )
        .ok();
        writeln!(w, "    pub fn def() -> &'static EnumDef {{ &{} }}", enum_static(&e.name)).ok();
        writeln!(w, "    /// The wire spelling.\n    pub fn as_str(&self) -> &str {{ match self {{").ok();
        for ((v, _), rv) in e.values.iter().zip(&vs) {
            writeln!(w, "        {t}::{rv} => {},", lit(v)).ok();
        }
        writeln!(w, "        {t}::Unknown(s) => s,\n    }} }}").ok();
        writeln!(w, "    /// Case-insensitive, as xapi matches enums; unknown values are kept.\n    pub fn parse(s: &str) -> {t} {{").ok();
        for ((v, _), rv) in e.values.iter().zip(&vs) {
            writeln!(w, "        if s.eq_ignore_ascii_case({}) {{ return {t}::{rv}; }}", lit(v)).ok();
        }
        writeln!(w, "        {t}::Unknown(s.to_string())\n    }}\n}}").ok();
        writeln!(w, "impl std::fmt::Display for {t} {{ fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{ f.write_str(self.as_str()) }} }}").ok();
        writeln!(w, "impl From<&str> for {t} {{ fn from(s: &str) -> Self {{ {t}::parse(s) }} }}").ok();
        writeln!(w, "impl XenType for {t} {{").ok();
        writeln!(w, "    fn from_value(v: &Value) -> Result<Self, TypeError> {{ match v.resolve() {{ Value::String(s) => Ok({t}::parse(s)), _ => Err(TypeError {{ expected: {}, got: format!(\"{{v:?}}\") }}) }} }}", lit(&e.name)).ok();
        writeln!(w, "    fn to_value(&self) -> Value {{ Value::String(self.as_str().to_string()) }}").ok();
        writeln!(
            w,
            "    fn zero() -> Self {{ {t}::{} }}",
            vs.first().cloned().unwrap_or_else(|| "Unknown(String::new())".into())
        )
        .ok();
        writeln!(w, "}}").ok();
        writeln!(w, "impl MapKey for {t} {{ fn from_key(s: &str) -> Result<Self, TypeError> {{ Ok({t}::parse(s)) }} fn to_key(&self) -> String {{ self.as_str().to_string() }} }}").ok();
    }
    for (e, c) in operation_enums(api) {
        writeln!(
            w,
            "impl Operation for {} {{ const CLASS: &'static ClassDef = &{}; fn name(&self) -> &str {{ self.as_str() }} }}",
            camel(&e),
            class_static(&c)
        )
        .ok();
    }
    for c in &api.classes {
        let rec = format!("{}Record", camel(&c.name));
        doc_comment(w, "", &format!("A whole `{}` record.", c.name));
        writeln!(w, "#[derive(Debug, Clone, PartialEq)]\npub struct {rec} {{").ok();
        for f in &c.fields {
            doc_comment(w, "    ", &f.doc);
            writeln!(w, "    pub {}: {},", snake(&f.wire()), rust_ty(api, &f.ty)).ok();
        }
        writeln!(w, "}}").ok();
        writeln!(w, "impl std::default::Default for {rec} {{ fn default() -> Self {{ Self {{").ok();
        for f in &c.fields {
            writeln!(w, "    {}: XenType::zero(),", snake(&f.wire())).ok();
        }
        writeln!(w, "}} }} }}").ok();
        writeln!(w, "impl XenType for {rec} {{").ok();
        writeln!(w, "    fn from_value(v: &Value) -> Result<Self, TypeError> {{").ok();
        writeln!(w, "        let v = v.resolve();").ok();
        writeln!(w, "        if let Value::Row(r) = v {{ let mut it = r.fields.iter(); let mut next = || it.next().unwrap_or(&Value::Nil); return Ok(Self {{").ok();
        for f in &c.fields {
            writeln!(w, "            {}: XenType::from_value(next())?,", snake(&f.wire())).ok();
        }
        writeln!(w, "        }}); }}").ok();
        writeln!(w, "        if !matches!(v, Value::Struct(_)) {{ return Err(TypeError {{ expected: {}, got: v.kind().to_string() }}); }}", lit(&format!("{} record", c.name))).ok();
        writeln!(w, "        Ok(Self {{").ok();
        for f in &c.fields {
            writeln!(w, "            {}: member(v, {})?,", snake(&f.wire()), lit(&f.wire())).ok();
        }
        writeln!(w, "        }})\n    }}").ok();
        writeln!(w, "    fn to_value(&self) -> Value {{ let mut m = Vec::with_capacity({});", c.fields.len()).ok();
        for f in &c.fields {
            writeln!(
                w,
                "        let v = self.{}.to_value(); if !matches!(v, Value::Nil) {{ m.push(({}.to_string(), v)); }}",
                snake(&f.wire()),
                lit(&f.wire())
            )
            .ok();
        }
        writeln!(w, "        Value::Struct(m)\n    }}").ok();
        writeln!(w, "    fn zero() -> Self {{ Self::default() }}\n}}").ok();
    }
    gen_errors(api, w);
    writeln!(w, "/// Typed handles on every field: `fields::vm::POWER_STATE`.\npub mod fields {{ use super::*;").ok();
    for c in &api.classes {
        writeln!(w, "pub mod {} {{ use super::*;", snake(&c.name)).ok();
        for (i, f) in c.fields.iter().enumerate() {
            writeln!(
                w,
                "    pub const {}: Field<{}, {}> = Field::new(&{}, {i});",
                shout(&f.wire()),
                camel(&c.name),
                rust_ty(api, &f.ty),
                class_static(&c.name)
            )
            .ok();
        }
        writeln!(w, "}}").ok();
    }
    writeln!(w, "}}").ok();
    o
}

/// The error enum: one variant per code in `errors.dm`, with its parameters.
fn gen_errors(api: &Api, w: &mut String) {
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for e in &api.errors {
        let mut v = camel(&e.code.to_lowercase());
        while !seen.insert(v.clone()) {
            v.push('_');
        }
        let mut fnames = BTreeSet::new();
        let fields: Vec<String> = e
            .params
            .iter()
            .map(|p| {
                let mut n = snake(p);
                while !fnames.insert(n.clone()) {
                    n.push('_');
                }
                n
            })
            .collect();
        rows.push((e, v, fields));
    }
    writeln!(w, "/// Every XenAPI error code with its parameters, as sent on the wire.").ok();
    writeln!(w, "#[derive(Debug, Clone, PartialEq, Eq)]\npub enum ApiError {{").ok();
    for (e, v, fields) in &rows {
        doc_comment(w, "    ", &format!("`{}`: {}", e.code, e.doc));
        if fields.is_empty() {
            writeln!(w, "    {v},").ok();
        } else {
            writeln!(
                w,
                "    {v} {{ {} }},",
                fields.iter().map(|f| format!("{f}: String")).collect::<Vec<_>>().join(", ")
            )
            .ok();
        }
    }
    writeln!(w, "    /// A code this version does not know.\n    Other {{ code: String, params: Vec<String> }},\n}}")
        .ok();
    writeln!(w, "impl ApiError {{").ok();
    writeln!(w, "    /// The wire code, e.g. `VM_BAD_POWER_STATE`.\n    pub fn code(&self) -> &str {{ match self {{")
        .ok();
    for (e, v, fields) in &rows {
        let pat = if fields.is_empty() { String::new() } else { " { .. }".into() };
        writeln!(w, "        ApiError::{v}{pat} => {},", lit(&e.code)).ok();
    }
    writeln!(w, "        ApiError::Other {{ code, .. }} => code,\n    }} }}").ok();
    writeln!(w, "    /// The parameters, in wire order.\n    pub fn params(&self) -> Vec<String> {{ match self {{")
        .ok();
    for (_, v, fields) in &rows {
        if fields.is_empty() {
            writeln!(w, "        ApiError::{v} => vec![],").ok();
        } else {
            writeln!(
                w,
                "        ApiError::{v} {{ {} }} => vec![{}],",
                fields.join(", "),
                fields.iter().map(|f| format!("{f}.clone()")).collect::<Vec<_>>().join(", ")
            )
            .ok();
        }
    }
    writeln!(w, "        ApiError::Other {{ params, .. }} => params.clone(),\n    }} }}").ok();
    writeln!(w, "    /// Decode `[code, params…]`. Missing parameters read as empty, extra ones are dropped;\n    /// unknown codes become `Other`.").ok();
    writeln!(w, "    pub fn from_wire(desc: &[String]) -> ApiError {{\n        let code = desc.first().map(String::as_str).unwrap_or(\"INTERNAL_ERROR\");\n        let p = |i: usize| desc.get(i + 1).cloned().unwrap_or_default();\n        match code {{").ok();
    for (e, v, fields) in &rows {
        if fields.is_empty() {
            writeln!(w, "            {} => ApiError::{v},", lit(&e.code)).ok();
        } else {
            let inits: Vec<String> = fields.iter().enumerate().map(|(i, f)| format!("{f}: p({i})")).collect();
            writeln!(w, "            {} => ApiError::{v} {{ {} }},", lit(&e.code), inits.join(", ")).ok();
        }
    }
    writeln!(w, "            _ => ApiError::Other {{ code: code.to_string(), params: desc.get(1..).unwrap_or(&[]).to_vec() }},\n        }}\n    }}").ok();
    writeln!(w, "    /// `[code, params…]` as both protocols carry it.\n    pub fn to_wire(&self) -> Vec<String> {{ let mut v = vec![self.code().to_string()]; v.extend(self.params()); v }}").ok();
    writeln!(w, "}}").ok();
    writeln!(w, "impl std::fmt::Display for ApiError {{ fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{ write!(f, \"{{}}\", self.code())?; let p = self.params(); if !p.is_empty() {{ write!(f, \" [{{}}]\", p.join(\"; \"))?; }} Ok(()) }} }}").ok();
    writeln!(w, "impl std::error::Error for ApiError {{}}").ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_class;

    #[test]
    fn operation_enums_pair_each_class_with_its_own_enum() {
        let a = parse_class(
            "a",
            "class A -- a\nenum a_ops -- ops\n  value go -- go\nfield current_operations map<string,a_ops> ro-run -- cur\n",
        )
        .unwrap();
        let b = parse_class(
            "b",
            "class B -- b\nenum shared_ops -- ops\n  value go -- go\nfield current_operations map<string,shared_ops> ro-run -- cur\n",
        )
        .unwrap();
        let c =
            parse_class("c", "class C -- c\nfield current_operations map<string,shared_ops> ro-run -- cur\n").unwrap();
        let d = parse_class("d", "class D -- d\nfield current_operations map<string,string> ro-run -- cur\n").unwrap();
        let api = Api { classes: vec![a, b, c, d], ..Default::default() };
        // shared_ops names two classes, D's field is not an enum: neither gets an impl.
        assert_eq!(operation_enums(&api), vec![("a_ops".to_string(), "A".to_string())]);
    }

    #[test]
    fn the_datamodel_operation_enums() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datamodel");
        let api = crate::load(&dir).unwrap();
        let pairs = operation_enums(&api);
        for (e, c) in [
            ("vm_operations", "VM"),
            ("vbd_operations", "VBD"),
            ("vdi_operations", "VDI"),
            ("vif_operations", "VIF"),
            ("storage_operations", "SR"),
        ] {
            assert!(pairs.contains(&(e.to_string(), c.to_string())), "{e} -> {c} in {pairs:?}");
        }
        // Every class with a current_operations map onto an enum has its enum.
        let with_ops = api
            .classes
            .iter()
            .filter(|c| {
                c.fields.iter().any(|f| {
                    f.wire() == "current_operations" && matches!(&f.ty, Ty::Map(_, v) if matches!(**v, Ty::Enum(_)))
                })
            })
            .count();
        assert_eq!(pairs.len(), with_ops);
    }
}
